"""The skip-connection claim's landscape metrics and its table/figure/verdict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from losslab.claims import surfaces as sc
from losslab.claims.verdicts import REPRODUCED, VERDICTS
from losslab.plots import figures

XS = np.linspace(-1, 1, 21)
YS = np.linspace(-1, 1, 15)  # a non-square grid: [i, j] = (XS[i], YS[j])
XX, YY = np.meshgrid(XS, YS, indexing="ij")


def test_plane_hessian_of_a_quadratic_is_exact():
    z = 3 * XX ** 2 + XX * YY + 0.5 * YY ** 2
    eig = sc.plane_hessians(z, XS, YS)
    assert eig.shape == (19, 13, 2)
    expected = np.linalg.eigvalsh(np.array([[6.0, 1.0], [1.0, 1.0]]))
    assert np.allclose(eig, expected, atol=1e-8)


def test_nonconvex_fraction_of_bowl_saddle_and_ridge():
    assert sc.nonconvex_fraction(XX ** 2 + YY ** 2, XS, YS) == 0.0
    assert sc.nonconvex_fraction(XX ** 2 - YY ** 2, XS, YS) == 1.0
    # a bowl with ripples: partly non-convex
    rippled = XX ** 2 + YY ** 2 + 0.05 * np.sin(12 * XX)
    assert 0.2 < sc.nonconvex_fraction(rippled, XS, YS) < 0.8


def test_local_minima():
    assert sc.local_minima(XX ** 2 + YY ** 2) == 1
    egg_crate = np.cos(3 * np.pi * XX) * np.cos(3 * np.pi * YY)
    assert sc.local_minima(egg_crate) > 3
    assert sc.local_minima(np.zeros((5, 5))) == 0  # flat: no strict minimum


def _runs(depth, skip, errs):
    return [{"seed": s, "test_acc": 1 - e, "diverged": False,
             "run": {"model": {"name": "resnet", "depth": depth, "skip": skip}}} for s, e in enumerate(errs)]


def _surface(z):
    return {"xcoordinates": XS, "ycoordinates": YS, "train_loss": z}


def test_claim_writes_table_figure_and_verdict(tmp_path):
    bowl = 1 + XX ** 2 + YY ** 2
    rough = bowl + 0.2 * np.sin(9 * XX) * np.cos(7 * YY)
    runs = {"d8_skip": _runs(8, True, [0.05, 0.06, 0.05]), "d8_noskip": _runs(8, False, [0.06, 0.06, 0.06]),
            "d20_skip": _runs(20, True, [0.05, 0.05, 0.05]), "d20_noskip": _runs(20, False, [0.2, 0.3, 0.25])}
    surfaces = {"d8_skip": _surface(bowl), "d8_noskip": _surface(bowl), "d20_skip": _surface(bowl),
                "d20_noskip": _surface(rough)}
    check = {"rule": "written before", "min_agree": 0.8}
    res = sc.skip_depth_claim(runs, surfaces, check, "smoke", tmp_path)
    assert res.verdict == REPRODUCED
    assert res.numbers["d20.noskip.nonconvex_fraction"] > res.numbers["d20.skip.nonconvex_fraction"] == 0.0
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    assert "ResNet-56" in (tmp_path / "table.md").read_text()
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] in VERDICTS

    # the same errors with a smooth deep no-skip surface: the landscape half fails
    surfaces["d20_noskip"] = _surface(bowl)
    assert sc.skip_depth_claim(runs, surfaces, check, "smoke", tmp_path / "b").verdict == "not reproduced"


def test_claim_needs_both_skip_settings_at_every_depth(tmp_path):
    runs = {"a": _runs(8, True, [0.1]), "b": _runs(20, True, [0.1])}
    with pytest.raises(ValueError, match="with and without skips"):
        sc.skip_depth_claim(runs, {}, {"rule": "", "min_agree": 1}, "smoke", tmp_path)


# --- Li et al.'s width claim ------------------------------------------------------------------------------------

WIDTHS = (4, 8, 16)


def _wruns(width, skip, errs, diverged=False):
    return [{"seed": s, "test_acc": 1 - e, "diverged": diverged,
             "run": {"model": {"name": "resnet", "depth": 8, "width": width, "skip": skip}}}
            for s, e in enumerate(errs)]


def _ratio_map(level):
    return {"xcoordinates": XS[:5], "ycoordinates": YS[:5], "ratio": level * (1 + XX[:5, :5] ** 2)}


def _width_inputs(noskip_ratio=(0.4, 0.2, 0.1), top2=0.7):
    runs, maps, explained = {}, {}, {}
    for i, w in enumerate(WIDTHS):
        for skip in (True, False):
            v = f"w{w}_{'skip' if skip else 'noskip'}"
            base = (0.3 if skip else 0.4) - 0.1 * i
            runs[v] = _wruns(w, skip, [base, base + 0.01, base - 0.01])
            explained[v] = [(top2 - 0.2, 0.2)] * 3
            if not skip:
                maps[v] = [_ratio_map(noskip_ratio[i])]
    return runs, maps, explained


CHECK = {"rule": "written before", "min_agree": 0.8, "pca_threshold": 0.4}


def test_width_claim_reproduced_writes_table_figure_and_data(tmp_path):
    runs, maps, explained = _width_inputs()
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path)
    assert res.verdict == REPRODUCED
    assert len(res.comparisons) == 2 + 1 + 2 * len(WIDTHS)
    assert res.numbers["w4.noskip.ratio_mean"] > res.numbers["w16.noskip.ratio_mean"]
    assert res.numbers["w16.skip.test_err_mean"] == pytest.approx(0.1)
    assert res.numbers["w8.skip.pca_top2_mean"] == pytest.approx(0.7)
    assert "w4.skip.ratio_mean" not in res.numbers  # no map of the skip nets given
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf", "figure.data.json"):
        assert (tmp_path / f).stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "5.89 (k=1)" in table and "9.69 (k=4)" in table and "k=8" not in table
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] == REPRODUCED


@pytest.mark.parametrize("change, verdict", [
    ("ratio_up", "not reproduced"),      # (2) the widest no-skip net is the less convex one
    ("pca_low", "not reproduced"),       # (3) one width's trajectory spreads over many directions
    ("err_up", "not reproduced"),        # (1) the widest no-skip net generalises worse in every seed
    ("diverged", "inconclusive"),        # (1) a diverged widest run: the comparison cannot be made
])
def test_width_claim_each_check_can_fail(tmp_path, change, verdict):
    runs, maps, explained = _width_inputs(noskip_ratio=(0.1, 0.2, 0.4) if change == "ratio_up" else (0.4, 0.2, 0.1))
    if change == "pca_low":
        explained["w8_skip"] = [(0.25, 0.1)] * 3
    if change == "err_up":
        runs["w16_noskip"] = _wruns(16, False, [0.6, 0.6, 0.6])
    if change == "diverged":
        runs["w16_skip"] = _wruns(16, True, [0.1, 0.1, 0.1], diverged=True)
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path)
    assert res.verdict == verdict
    failing = [c for c in res.comparisons if c.verdict != REPRODUCED]
    assert len(failing) == 1


def test_width_claim_threshold_from_the_check(tmp_path):
    runs, maps, explained = _width_inputs(top2=0.5)
    assert sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path / "a").verdict == REPRODUCED
    strict = {**CHECK, "pca_threshold": 0.6}
    assert sc.width_nonconvexity(runs, maps, explained, strict, "smoke", tmp_path / "b").verdict == "not reproduced"


def test_width_claim_validates_its_inputs(tmp_path):
    runs, maps, explained = _width_inputs()
    with pytest.raises(ValueError, match="with and without skips"):
        sc.width_nonconvexity({k: v for k, v in runs.items() if k != "w8_skip"}, maps, explained, CHECK, "smoke",
                              tmp_path)
    with pytest.raises(ValueError, match="ratio map of the no-skip variant 'w16_noskip'"):
        sc.width_nonconvexity(runs, {"w4_noskip": maps["w4_noskip"]}, explained, CHECK, "smoke", tmp_path)
    with pytest.raises(ValueError, match="trajectory PCA of every variant"):
        sc.width_nonconvexity(runs, maps, {"w4_skip": explained["w4_skip"]}, CHECK, "smoke", tmp_path)


def test_plot_width_redraws_from_its_stored_data(tmp_path):
    runs, maps, explained = _width_inputs()
    maps["w4_skip"] = [_ratio_map(0.05)]  # skip maps, when given, are drawn (and tabulated) too
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path)
    assert res.numbers["w4.skip.ratio_mean"] == pytest.approx(0.05 * np.mean(1 + XX[:5, :5] ** 2))
    data = json.loads((tmp_path / "figure.data.json").read_text())
    assert data["plot"] == "surfaces.width"
    assert [m["label"] for m in data["data"]["maps"]] == ["w4_skip", "w4_noskip", "w8_noskip", "w16_noskip"]
    (tmp_path / "figure.png").unlink()
    written = figures.rerender(tmp_path / "figure.data.json")
    assert sorted(Path(p).name for p in written) == ["figure.pdf", "figure.png"]
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_trajectory_variance_of_a_straight_trajectory(tmp_path):
    """Snapshots on a line towards the final weights: one PCA direction explains (nearly) all the variance."""
    import torch

    from losslab import io as lio
    from losslab.claims.training import load_trained
    from losslab.core.models import build
    from losslab.core.weights import flatten, unflatten

    run = {"dataset": {"name": "digits", "preprocessing": ["normalize"]},
           "model": {"name": "mlp", "widths": [8]}, "recipe": {"loss": "ce"}}
    torch.manual_seed(0)
    model = build(run["model"], (64,), 10)
    lio.save_torch(tmp_path / "model.pt", model.state_dict())
    final = flatten(model)
    step = torch.randn_like(final)
    noise = torch.Generator().manual_seed(1)
    for epoch in range(1, 7):
        vec = final + (6 - epoch) * step + 1e-3 * torch.randn(final.shape, generator=noise)
        model.load_state_dict({**model.state_dict(), **unflatten(model, vec)})
        lio.save_torch(tmp_path / "snapshots" / f"epoch_{epoch}.pt", model.state_dict())
    pc1, pc2 = sc.trajectory_variance(run, tmp_path)
    assert pc1 > 0.99 and 0 <= pc2 < 0.01
    load_trained(run, tmp_path / "model.pt")  # the final weights are untouched


def test_width_claim_counts_and_shows_uncertified_ratio_cells(tmp_path):
    """A ratio-map cell whose Lanczos run was not certified is kept, counted in the table and the notes, and
    crossed out in the figure's data; certified maps say nothing."""
    runs, maps, explained = _width_inputs()
    clean = sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path / "clean")
    assert "not certified" not in clean.notes
    for v in maps:
        maps[v][0]["certified"] = np.ones((5, 5))
    maps["w8_noskip"][0]["certified"][1, 2] = 0.0
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, "smoke", tmp_path)
    assert "1 ratio-map cell(s) not certified" in res.notes
    with open(tmp_path / "table.csv", newline="") as f:
        cells = [r["ratio_cells_not_certified"] for r in csv.DictReader(f)]
    assert sorted(c for c in cells if c != "") == ["0", "0", "1"]
    data = json.loads((tmp_path / "figure.data.json").read_text())
    assert [int(np.sum(np.asarray(m["certified"]) < 1)) for m in data["data"]["maps"]] == [0, 1, 0]
