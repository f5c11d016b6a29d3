"""Figures drawn from stored data: `render` stores what `rerender` redraws, byte for byte."""
import json

import numpy as np
import pytest

from losslab.plots import figures
from losslab.claims import ingredients
from losslab.io import CorruptFileError


def _ablation_data():
    rng = np.random.default_rng(0)
    return {"scale": "test", "n_seeds": 3,
            "acc": {v: rng.uniform(0.5, 0.9, 3) for v in ingredients.ABLATION_VARIANTS}}


def test_rerender_redraws_the_same_figure_from_the_stored_data(tmp_path):
    png, pdf = figures.render(ingredients.plot_ablation, _ablation_data(), tmp_path / "figure")
    stored = tmp_path / "figure.data.json"
    assert json.loads(stored.read_text())["plot"] == "losslab.claims.ingredients:plot_ablation"
    first = {p: open(p, "rb").read() for p in (png, pdf)}
    for p in (png, pdf):
        (tmp_path / p).unlink()
    assert sorted(figures.rerender_all(tmp_path)) == sorted([png, pdf])
    assert {p: open(p, "rb").read() for p in (png, pdf)} == first


def test_render_refuses_a_plot_function_it_could_not_find_again(tmp_path):
    def local_plot(data, stem):
        return []
    with pytest.raises(ValueError, match="module-level function of losslab"):
        figures.render(local_plot, {}, tmp_path / "figure")


@pytest.mark.parametrize("text, match", [
    ("{not json", "not a readable figure data file"),
    ('{"plot": "os:system", "data": {}}', "not part of losslab"),
    ('{"data": {}}', "not a readable figure data file"),
])
def test_rerender_names_a_bad_data_file(tmp_path, text, match):
    bad = tmp_path / "figure.data.json"
    bad.write_text(text)
    with pytest.raises(CorruptFileError, match=match) as e:
        figures.rerender(bad)
    assert str(bad) in str(e.value)
