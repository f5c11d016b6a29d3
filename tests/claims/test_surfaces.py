"""The skip-connection claim's landscape metrics and its table/figure/verdict."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from losslab.claims import surfaces as sc
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, VERDICTS
from losslab.pipeline.registry import load_registry, registry_entry
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


ROOT = Path(__file__).resolve().parents[2]
REGISTRY = load_registry(ROOT / "config" / "claims.yaml")
SKIP_DECISION = registry_entry(REGISTRY, "li-skip-depth-chaos")["decision"]
WIDTH_DECISION = registry_entry(REGISTRY, "li-width-nonconvexity")["decision"]


def _runs(depth, skip, errs, diverged=()):
    return [{"seed": s, "test_acc": 1 - e, "diverged": s in diverged, "train_loss": 0.01, "train_acc": 0.99,
             "epochs": 3, "train_size": 1000, "recipe": {"batch_size": 100},
             "run": {"model": {"name": "resnet", "depth": depth, "skip": skip}}} for s, e in enumerate(errs)]


def _surface(z):
    return {"xcoordinates": XS, "ycoordinates": YS, "train_loss": z}


BOWL = 1 + XX ** 2 + YY ** 2


def _rough(k):
    return BOWL + (0.2 + 0.02 * k) * np.sin((9 + k) * XX) * np.cos(7 * YY)


def _skip_inputs(n_surface=3, rough_deep_noskip=True, deep_noskip_err=(0.2, 0.3, 0.25)):
    runs = {"d8_skip": _runs(8, True, [0.05, 0.06, 0.05]), "d8_noskip": _runs(8, False, [0.06, 0.065, 0.06]),
            "d20_skip": _runs(20, True, [0.05, 0.05, 0.055]), "d20_noskip": _runs(20, False, deep_noskip_err)}
    smooth = [_surface(BOWL)] * n_surface
    rough = [_surface(_rough(k)) for k in range(n_surface)]
    surfaces = {"d8_skip": smooth, "d8_noskip": smooth, "d20_skip": smooth if rough_deep_noskip else rough,
                "d20_noskip": rough if rough_deep_noskip else smooth}
    return runs, surfaces


CHECK_RULE = {"rule": "written before", "min_agree": 0.8}


def test_claim_writes_table_figure_and_verdict(tmp_path):
    runs, surfaces = _skip_inputs()
    res = sc.skip_depth_claim(runs, surfaces, CHECK_RULE, SKIP_DECISION, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == ["gap_grows_with_depth", "chaos"]
    assert all(d["verdict"] == REPRODUCED for d in res.decisions)
    assert res.numbers["d20.noskip.nonconvex_fraction"] > res.numbers["d20.skip.nonconvex_fraction"] == 0.0
    growth = [np.log(e / s) - np.log(e8 / s8) for e, s, e8, s8 in
              zip((0.2, 0.3, 0.25), (0.05, 0.05, 0.055), (0.06, 0.065, 0.06), (0.05, 0.06, 0.05))]
    assert res.numbers["effect.gap_grows_with_depth.estimate"] == pytest.approx(np.mean(growth))
    assert res.n_seeds == 3 and "d20 no-skip: train loss 0.01, 30 steps, train/test acc 99.0/" in res.regime
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "ResNet-56" in table and "train_loss" in table and "steps" in table and "surface_seeds" in table
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] in VERDICTS


def test_claim_not_reproduced_when_the_skip_surface_is_the_chaotic_one(tmp_path):
    runs, surfaces = _skip_inputs(rough_deep_noskip=False)
    res = sc.skip_depth_claim(runs, surfaces, CHECK_RULE, SKIP_DECISION, "smoke", tmp_path)
    assert res.verdict == NOT_REPRODUCED, res.notes
    assert {d["name"]: d["verdict"] for d in res.decisions} == {"gap_grows_with_depth": REPRODUCED,
                                                              "chaos": NOT_REPRODUCED}


def test_claim_not_reproduced_when_the_deep_gap_shrinks(tmp_path):
    runs, surfaces = _skip_inputs(deep_noskip_err=(0.05, 0.052, 0.054))
    res = sc.skip_depth_claim(runs, surfaces, CHECK_RULE, SKIP_DECISION, "smoke", tmp_path)
    assert res.verdict == NOT_REPRODUCED, res.notes
    assert res.decisions[0]["name"] == "gap_grows_with_depth" and res.decisions[0]["verdict"] == NOT_REPRODUCED


def test_claim_with_one_surface_seed_is_inconclusive(tmp_path):
    """Every scale lists one surface seed: the chaos part has one replicate and cannot be decided."""
    runs, surfaces = _skip_inputs(n_surface=1)
    one = {v: s[0] for v, s in surfaces.items()}  # a single surface per variant, not a list
    res = sc.skip_depth_claim(runs, one, CHECK_RULE, SKIP_DECISION, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE
    chaos = {d["name"]: d for d in res.decisions}["chaos"]
    assert chaos["verdict"] == INCONCLUSIVE and chaos["n"] == 1 and "1 surface seed" in chaos["reason"]
    assert res.numbers["d20.noskip.nonconvex_fraction"] > 0


def test_claim_with_a_diverged_run_is_inconclusive(tmp_path):
    runs, surfaces = _skip_inputs()
    runs["d20_noskip"] = _runs(20, False, [0.2, 0.3, 0.25], diverged=(1,))
    res = sc.skip_depth_claim(runs, surfaces, CHECK_RULE, SKIP_DECISION, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE
    assert res.decisions[0]["verdict"] == INCONCLUSIVE and "missing" in res.decisions[0]["reason"]


def test_claim_needs_both_skip_settings_at_every_depth(tmp_path):
    runs = {"a": _runs(8, True, [0.1]), "b": _runs(20, True, [0.1])}
    with pytest.raises(ValueError, match="with and without skips"):
        sc.skip_depth_claim(runs, {}, {"rule": "", "min_agree": 1}, SKIP_DECISION, "smoke", tmp_path)


def test_variant_surface_files_groups_every_surface_seed():
    base = Path("/r/surfaces/skip_depth")
    first = {v: base / v / "seed0" / "surface.h5" for v in ("a", "b")}
    files = [base / v / f"seed{k}" / "surface.h5" for v in ("a", "b") for k in (10, 2, 0)]
    got = sc.variant_surface_files(first, files)
    assert got == {v: [base / v / f"seed{k}" / "surface.h5" for k in (0, 2, 10)] for v in ("a", "b")}


# --- Li et al.'s width claim ------------------------------------------------------------------------------------

WIDTHS = (4, 8, 16)


def _wruns(width, skip, errs, diverged=False):
    return [{"seed": s, "test_acc": 1 - e, "diverged": diverged, "train_loss": 0.02, "train_acc": 0.98,
             "epochs": 2, "train_size": 500, "recipe": {"batch_size": 50},
             "run": {"model": {"name": "resnet", "depth": 8, "width": width, "skip": skip}}}
            for s, e in enumerate(errs)]


def _ratio_map(level):
    return {"xcoordinates": XS[:5], "ycoordinates": YS[:5], "ratio": level * (1 + XX[:5, :5] ** 2)}


def _width_inputs(noskip_ratio=(0.4, 0.2, 0.1), top2=0.7, map_seeds=3):
    runs, maps, explained = {}, {}, {}
    for i, w in enumerate(WIDTHS):
        for skip in (True, False):
            v = f"w{w}_{'skip' if skip else 'noskip'}"
            base = (0.3 if skip else 0.4) - 0.1 * i
            runs[v] = _wruns(w, skip, [base, base + 0.01, base - 0.01])
            explained[v] = [(top2 - 0.2 + 0.01 * k, 0.2) for k in range(3)]
            if not skip:
                maps[v] = [_ratio_map(noskip_ratio[i] * (1 + 0.05 * k)) for k in range(map_seeds)]
    return runs, maps, explained


CHECK = {"rule": "written before", "min_agree": 0.8, "pca_threshold": 0.4}
WIDTH_PARTS = ["wider_better skip", "wider_better noskip", "wider_more_convex", "pca_variance"]


def test_width_claim_reproduced_writes_table_figure_and_data(tmp_path):
    runs, maps, explained = _width_inputs()
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, WIDTH_DECISION, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == WIDTH_PARTS
    assert res.numbers["effect.wider_better.noskip.estimate"] == pytest.approx(
        np.mean([np.log(0.4 / 0.2), np.log(0.41 / 0.21), np.log(0.39 / 0.19)]))
    assert res.numbers["w4.noskip.ratio_mean"] > res.numbers["w16.noskip.ratio_mean"]
    assert res.numbers["w16.skip.test_err_mean"] == pytest.approx(0.1)
    assert res.numbers["w8.skip.pca_top2_mean"] == pytest.approx(0.71)
    assert "w4.skip.ratio_mean" not in res.numbers  # no map of the skip nets given
    assert "w16 no-skip: train loss 0.02, 20 steps, train/test acc 98.0/" in res.regime
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf", "figure.data.json"):
        assert (tmp_path / f).stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "5.89 (k=1)" in table and "9.69 (k=4)" in table and "k=8" not in table
    assert "train_loss" in table and "steps" in table and "ratio_map_seeds" in table
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] == REPRODUCED


@pytest.mark.parametrize("change, part, verdict", [
    ("ratio_up", "wider_more_convex", NOT_REPRODUCED),    # the widest no-skip net is the less convex one
    ("pca_low", "pca_variance", NOT_REPRODUCED),          # every trajectory spreads over many directions
    ("err_up", "wider_better noskip", NOT_REPRODUCED),    # the widest no-skip net generalises worse in every seed
    ("diverged", "wider_better skip", INCONCLUSIVE),      # a diverged widest run: the comparison cannot be made
    ("one_map", "wider_more_convex", INCONCLUSIVE),       # one ratio-map seed: one replicate (every scale's case)
])
def test_width_claim_each_part_can_fail(tmp_path, change, part, verdict):
    runs, maps, explained = _width_inputs(noskip_ratio=(0.1, 0.2, 0.4) if change == "ratio_up" else (0.4, 0.2, 0.1),
                                          top2=0.3 if change == "pca_low" else 0.7,
                                          map_seeds=1 if change == "one_map" else 3)
    if change == "err_up":
        runs["w16_noskip"] = _wruns(16, False, [0.6, 0.61, 0.59])
    if change == "diverged":
        runs["w16_skip"] = _wruns(16, True, [0.1, 0.1, 0.1], diverged=True)
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, WIDTH_DECISION, "smoke", tmp_path)
    assert res.verdict == verdict, res.notes
    verdicts = {d["name"]: d["verdict"] for d in res.decisions}
    assert verdicts.pop(part) == verdict
    assert set(verdicts.values()) == {REPRODUCED}
    if change == "one_map":
        assert "1 ratio-map seed" in {d["name"]: d for d in res.decisions}[part]["reason"]


def test_width_claim_validates_its_inputs(tmp_path):
    runs, maps, explained = _width_inputs()
    with pytest.raises(ValueError, match="with and without skips"):
        sc.width_nonconvexity({k: v for k, v in runs.items() if k != "w8_skip"}, maps, explained, CHECK,
                              WIDTH_DECISION, "smoke", tmp_path)
    with pytest.raises(ValueError, match="ratio map of the no-skip variant 'w16_noskip'"):
        sc.width_nonconvexity(runs, {"w4_noskip": maps["w4_noskip"]}, explained, CHECK, WIDTH_DECISION, "smoke",
                              tmp_path)
    with pytest.raises(ValueError, match="trajectory PCA of every variant"):
        sc.width_nonconvexity(runs, maps, {"w4_skip": explained["w4_skip"]}, CHECK, WIDTH_DECISION, "smoke",
                              tmp_path)


def test_plot_width_redraws_from_its_stored_data(tmp_path):
    runs, maps, explained = _width_inputs()
    maps["w4_skip"] = [_ratio_map(0.05)]  # skip maps, when given, are drawn (and tabulated) too
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, WIDTH_DECISION, "smoke", tmp_path)
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
    clean = sc.width_nonconvexity(runs, maps, explained, CHECK, WIDTH_DECISION, "smoke", tmp_path / "clean")
    assert "not certified" not in clean.notes
    for v in maps:
        maps[v][0]["certified"] = np.ones((5, 5))
    maps["w8_noskip"][0]["certified"][1, 2] = 0.0
    res = sc.width_nonconvexity(runs, maps, explained, CHECK, WIDTH_DECISION, "smoke", tmp_path)
    assert "1 ratio-map cell(s) not certified" in res.notes
    with open(tmp_path / "table.csv", newline="") as f:
        cells = [r["ratio_cells_not_certified"] for r in csv.DictReader(f)]
    assert sorted(c for c in cells if c != "") == ["0", "0", "1"]
    data = json.loads((tmp_path / "figure.data.json").read_text())
    assert [int(np.sum(np.asarray(m["certified"]) < 1)) for m in data["data"]["maps"]] == [0, 1, 0]
