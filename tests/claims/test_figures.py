"""Figures drawn from stored data: `render` stores what `rerender` redraws, byte for byte, under a registered
name that survives moving the plot function."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from losslab.plots import figures
from losslab.claims import ingredients, summary
from losslab.io import CorruptFileError


def _ablation_data():
    rng = np.random.default_rng(0)
    return {"scale": "test", "n_seeds": 3,
            "acc": {v: rng.uniform(0.5, 0.9, 3) for v in ingredients.ABLATION_VARIANTS}}


def test_rerender_redraws_the_same_figure_from_the_stored_data(tmp_path):
    png, pdf = figures.render(ingredients.plot_ablation, _ablation_data(), tmp_path / "figure")
    stored = tmp_path / "figure.data.json"
    assert json.loads(stored.read_text())["plot"] == "ingredients.ablation"
    first = {p: open(p, "rb").read() for p in (png, pdf)}
    for p in (png, pdf):
        (tmp_path / p).unlink()
    assert sorted(figures.rerender_all(tmp_path)) == sorted([png, pdf])
    assert {p: open(p, "rb").read() for p in (png, pdf)} == first


@pytest.mark.parametrize("old_name", ["losslab.ingredients:plot_ablation",  # before the four wings
                                      "losslab.claims.ingredients:plot_ablation"])  # the wings, before names
def test_a_figure_stored_under_an_old_code_location_redraws(tmp_path, old_name):
    png, pdf = figures.render(ingredients.plot_ablation, _ablation_data(), tmp_path / "figure")
    first = open(png, "rb").read()
    stored = tmp_path / "figure.data.json"
    obj = json.loads(stored.read_text())
    stored.write_text(json.dumps({**obj, "plot": old_name}))
    (tmp_path / png).unlink()
    assert figures.rerender(stored) == [png, pdf]
    assert open(png, "rb").read() == first


def test_every_legacy_name_resolves_once_the_claims_are_imported():
    assert summary.PLOT_MODULES  # imported: every family has registered its plot functions
    unresolved = {old: new for old, new in figures.LEGACY.items() if new not in figures.PLOTS}
    assert not unresolved
    # every plot function older code stored under a module:function name has one; plots newer than the registry
    # (the decision figure of issue #18) never had one
    newer = {"claims.decision", "lecture.newton_saddles", "connectivity.walk", "sharpness.gauss_newton",
             "sharpness.directions_agree"}  # the decision figure (issue #18) and the claims of issue #19
    assert set(figures.LEGACY.values()) == set(figures.PLOTS) - newer


def test_render_refuses_an_unregistered_plot_function(tmp_path):
    def local_plot(data, stem):
        return []
    with pytest.raises(ValueError, match="not registered"):
        figures.render(local_plot, {}, tmp_path / "figure")
    assert not (tmp_path / "figure.data.json").exists()


def test_a_plot_name_is_registered_once():
    with pytest.raises(ValueError, match="ingredients.ablation.*is taken"):
        figures.register_plot("ingredients.ablation")(lambda data, stem: [])


@pytest.mark.parametrize("text, match, error", [
    ("{not json", "not a readable figure data file", CorruptFileError),
    ('{"plot": "os:system", "data": {}}', "no plot function is registered as 'os:system'", LookupError),
    ('{"plot": "ingredients.nothing", "data": {}}', "registered as 'ingredients.nothing'", LookupError),
    ('{"data": {}}', "not a readable figure data file", CorruptFileError),
])
def test_rerender_names_a_bad_data_file(tmp_path, text, match, error):
    bad = tmp_path / "figure.data.json"
    bad.write_text(text)
    with pytest.raises(error, match=match) as e:
        figures.rerender(bad)
    assert str(bad) in str(e.value)


def test_colors_are_matplotlibs_tab10():
    import matplotlib

    assert figures.COLORS == matplotlib.colormaps["tab10"].colors


def test_importing_the_modules_that_draw_does_not_import_matplotlib():
    """matplotlib (~0.3 s) is paid by the first figure drawn, not by importing a module that can draw (summary
    imports every claim family)."""
    code = "import sys, losslab.claims.summary, losslab.api, losslab.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_claim_has_a_caption_that_renders_without_errors():
    """The HTML report's captions (workflow/report/captions/<claim>.rst): one per implemented claim, and
    reStructuredText that docutils reads without an error (an error shows up as a red box in the report)."""
    import io as _io

    import docutils.core

    from losslab.pipeline.registry import load_registry

    root = Path(__file__).resolve().parents[2]
    captions = root / "workflow" / "report" / "captions"
    implemented = [c["id"] for c in load_registry(root / "config" / "claims.yaml") if "rule" in c]
    assert [c for c in implemented if not (captions / f"{c}.rst").exists()] == []
    bad = {}
    for path in sorted(captions.glob("*.rst")):
        err = _io.StringIO()
        docutils.core.publish_string(path.read_text(), writer_name="null",
                                     settings_overrides={"warning_stream": err, "report_level": 3})
        if err.getvalue():
            bad[path.name] = err.getvalue()
    assert bad == {}
