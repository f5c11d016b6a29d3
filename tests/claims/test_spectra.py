"""The sharpness family's Hessian and line claims (losslab.claims.sharpness.spectra): the pass-rule metrics on known
inputs, the spectra against the exact Hessian of a tiny net, the job-level functions on tiny trained runs, and every
claim's table/figure/verdict on synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.claims.sharpness import spectra as sp
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from losslab.core.directions import Directions, biasbn_mask, save_directions
from losslab.core.hessian import DenseOperator, SpectralDensity, TrainingLoss, slq_density
from losslab.core.surfaces import line_sharpness
from losslab.io import load_torch
from losslab.core.models import build
from losslab.core.weights import flatten
from losslab.core.surfaces import Surface, read_surface
from losslab.claims.training import train_run
from losslab.pipeline.registry import load_registry, registry_entry

SHAPE = (1, 4, 4)


def _data(n: int = 40, k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g, dtype=torch.float64), torch.randint(0, k, (n,), generator=g)


def _mlp(seed: int = 0, bn: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build({"name": "mlp", "widths": [6], "bn": bn}, SHAPE, 3).double()


# ---------------------------------------------------------------- the pass-rule metrics -------------------

def test_outlier_count_is_the_largest_relative_gap_above_the_floor():
    assert sp.outlier_count([10, 9, 8, 0.5, 0.4, 0.3]) == 3
    assert sp.outlier_count([0.4, 8, 10, 0.3, 9, 0.5]) == 3  # order does not matter
    # below the floor (1e-2 lambda_1) ratios do not count: 1e-6 / 1e-8 is no gap
    assert sp.outlier_count([10, 1, 1e-3, 1e-9], floor_rel=1e-12) == 3
    assert sp.outlier_count([10, 1, 1e-3, 1e-9]) == 1  # with the floor: 10/1 = 1/0.1 (a tie), 1e-3/0.1
    assert sp.outlier_count([4, 2, 1, 0.5]) == 1  # equal ratios: the smallest i
    assert sp.outlier_count([-1.0, -2.0]) == 0
    with pytest.raises(ValueError):
        sp.outlier_count([1.0])


def test_bulk_mass_of_a_known_spectrum():
    """95 eigenvalues near zero and 5 outliers: SLQ puts ~95% of the mass below 1e-2 lambda_max."""
    eig = torch.cat([torch.linspace(-1e-3, 1e-3, 95, dtype=torch.float64),
                     torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)])
    q, _ = torch.linalg.qr(torch.randn(100, 100, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    op = DenseOperator(q @ torch.diag(eig) @ q.T)
    density = slq_density(op, n_runs=20, n_steps=20, seed=1)
    assert sp.bulk_mass(density, 5.0, 1e-2) == pytest.approx(0.95, abs=0.03)
    made = SpectralDensity(np.zeros(2), np.zeros(2), (np.array([0.0, 1.0]),), (np.array([0.7, 0.3]),), 1e-5, 0)
    assert sp.bulk_mass(made, 1.0, 0.5) == pytest.approx(0.7)


def test_line_sharpness_of_quadratics():
    alphas = np.linspace(-1, 1, 21)
    losses = np.stack([1.0 + c * alphas ** 2 for c in (1.0, 3.0)])
    assert line_sharpness(alphas, losses, 0.5) == pytest.approx(0.25 * 2.0)
    assert line_sharpness(alphas, losses[0], 1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no point at 0.55"):
        line_sharpness(alphas, losses, 0.55)


def test_end_rise_and_barrier():
    alphas = np.linspace(-1, 2, 25)
    steep_lb = np.where(alphas < 0, 4 * alphas ** 2, np.where(alphas > 1, (alphas - 1) ** 2, 0.0)) + 0.1
    lb, sb = sp.end_rise(alphas, steep_lb, 0.5)
    assert lb == pytest.approx(1.0) and sb == pytest.approx(0.25)
    assert sp.barrier(alphas, steep_lb) == pytest.approx(0.0)
    bump = steep_lb + np.where((alphas > 0) & (alphas < 1), np.sin(np.pi * alphas), 0.0)
    assert sp.barrier(alphas, bump) == pytest.approx(1.0, abs=1e-2)


# ---------------------------------------------------------------- spectra vs the exact Hessian ------------

def test_spectrum_matches_the_exact_hessian():
    x, y = _data()
    loss = TrainingLoss(_mlp(), x, y, chunk=16)
    exact = torch.linalg.eigvalsh(loss.hessian_matrix()).flip(0).numpy()
    s = sp.spectrum(loss, {"top_k": 5, "tol": 1e-8, "slq_runs": 2, "slq_steps": 20}, seed=0, num_classes=3)
    assert s.converged and s.num_parameters == loss.dim == 123 and s.n_samples == 40
    assert np.allclose(s.top, exact[:5], rtol=1e-6, atol=1e-9 * exact[0])
    assert s.lambda_max == pytest.approx(exact[0], rel=1e-8)
    assert len(s.density.nodes) == 2
    assert s.density.grid.min() <= exact[-1] and s.density.grid.max() >= exact[0]
    # the quadrature weights count every eigenvalue once: the bulk mass is the fraction of |lambda| small
    mass = sp.bulk_mass(s.density, s.lambda_max, 0.3)
    assert 0 < mass < 1


def test_line_directions_raw_are_network_independent_and_filter_follows_the_weights():
    net = _mlp(0, bn=True)
    init = flatten(_mlp(1, bn=True))
    scaled = _mlp(0, bn=True)
    with torch.no_grad():
        scaled.net[1].weight.mul_(5.0)  # a scale-invariant layer (BN follows) with larger weights
    mask = biasbn_mask(net)
    raw_a, raw_b = (sp.line_direction(m, init, 3, "raw") for m in (net, scaled))
    assert torch.equal(raw_a.x, raw_b.x) and raw_a.norm == "none"
    assert float(raw_a.x.norm()) == pytest.approx(float(init[mask].norm()), rel=1e-6)
    assert torch.all(raw_a.x[~mask] == 0)
    fa, fb = (sp.line_direction(m, init, 3, "filter") for m in (net, scaled))
    first = slice(0, 16 * 6)
    assert float(fb.x[first].norm()) == pytest.approx(5 * float(fa.x[first].norm()), rel=1e-9)
    with pytest.raises(ValueError):
        sp.line_direction(net, init, 3, "layer")


# ---------------------------------------------------------------- tiny trained runs -----------------------

DIGITS = {"name": "digits", "preprocessing": ["normalize"], "n_train": 60, "n_test": 40}
RUN = {"dataset": DIGITS, "model": {"name": "mlp", "widths": [8]},
       "recipe": {"optimizer": "momentum", "lr": 0.05, "batch_size": 20, "epochs": 2, "loss": "ce"}}
BN_RUN = {**RUN, "model": {"name": "mlp", "widths": [8], "bn": True}}


def _train(root: Path, name: str, run, seeds=(0, 1)) -> Path:
    for s in seeds:
        train_run(run, s, root / name / f"seed{s}", root / "ckpt" / name)
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, {"plain": _train(root, "plain", RUN), "bn": _train(root, "bn", BN_RUN, seeds=(0,))}


def test_run_spectra_and_their_file(runs, tmp_path):
    _, dirs = runs
    spectra = sp.run_spectra(RUN, dirs["plain"], {"top_k": 4, "slq_runs": 1, "slq_steps": 10, "n_train": 30})
    assert [s.seed for s in spectra] == [0, 1]
    assert all(s.num_classes == 10 and s.n_samples == 30 and len(s.top) == 4 for s in spectra)
    assert all(np.all(np.diff(s.top) <= 0) for s in spectra)
    sp.write_spectra(tmp_path / "spectra.h5", {"plain": spectra})
    import h5py

    with h5py.File(tmp_path / "spectra.h5") as f:
        assert np.allclose(f["plain/seed1/top"][()], spectra[1].top)
        assert "nodes_0" in f["plain/seed0"] and f["plain/seed0"].attrs["num_classes"] == 10


def test_sharpness_lines_write_one_surface_per_direction(runs, tmp_path):
    _, dirs = runs
    settings = {"directions": 2, "alphas": [-0.5, 0.5, 3], "n_train": 30}
    alphas, lines = sp.sharpness_lines(BN_RUN, dirs["bn"] / "seed0", 0, settings, tmp_path)
    assert list(alphas) == [-0.5, 0.0, 0.5] and set(lines) == {"raw", "filter"}
    assert all(z.shape == (2, 3) for z in lines.values())
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["filter_dir0.h5", "filter_dir1.h5", "raw_dir0.h5",
                                                             "raw_dir1.h5"]
    # at alpha 0 every line is the network itself
    assert np.allclose(lines["raw"][:, 1], lines["filter"][0, 1], rtol=1e-6)
    assert read_surface(tmp_path / "raw_dir0.h5").attrs["norm"] == "none"


def test_continuation_starts_from_the_given_weights(runs, tmp_path):
    _, dirs = runs
    spec = sp.continuation_spec(RUN, {"batch_size": 5, "lr": 1e-9, "epochs": 1}, "start.pt")
    assert spec["recipe"]["init_from"] == "start.pt" and spec["recipe"]["batch_size"] == 5
    assert spec["recipe"]["optimizer"] == "momentum" and "init_from" not in RUN["recipe"]
    out = sp.continue_runs(RUN, dirs["plain"], {"batch_size": 5, "lr": 1e-9, "epochs": 1}, [0, 1], tmp_path / "sb",
                           tmp_path / "ckpt")
    assert [m["seed"] for m in out] == [0, 1]
    for s in (0, 1):
        start = load_torch(dirs["plain"] / f"seed{s}" / "model.pt")
        end = load_torch(tmp_path / "sb" / f"seed{s}" / "model.pt")
        assert all(torch.allclose(start[k], end[k], atol=1e-6) for k in start)

    line = sp.basin_line(RUN, dirs["plain"] / "seed0" / "model.pt", dirs["plain"] / "seed1" / "model.pt",
                         {"alphas": [-1.0, 2.0, 7]}, tmp_path / "line.h5")
    assert list(line.xcoordinates) == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert set(line.values) == {"train_loss", "train_acc", "test_loss", "test_acc"}
    assert read_surface(tmp_path / "line.h5").extra["distance"][0] > 0


def test_ratio_map_on_a_surface_plane_and_its_figure(runs, tmp_path):
    _, dirs = runs
    model_path = dirs["plain"] / "seed0" / "model.pt"
    torch.manual_seed(0)
    net = build(RUN["model"], (1, 8, 8), 10)
    net.load_state_dict(load_torch(model_path))
    g = torch.Generator().manual_seed(5)
    n = flatten(net).numel()
    save_directions(tmp_path / "dirs.h5", Directions(0.1 * torch.randn(n, generator=g),
                                                     0.1 * torch.randn(n, generator=g), "random"))
    settings = {"x": [-1.0, 1.0, 3], "y": [-1.0, 1.0, 3], "n_train": 20, "tol": 1e-5}
    m = sp.ratio_map_of_run(RUN, model_path, tmp_path / "dirs.h5", settings, tmp_path / "ratio.h5")
    assert m["ratio"].shape == (3, 3) and np.all(np.isfinite(m["ratio"]))
    # the centre is the trained network: its ratio is that of the exact Hessian's extreme eigenvalues
    from losslab.core.data import prepare, subset

    data = prepare(RUN["dataset"])
    x, y = subset(data.x_train, data.y_train, 20, seed=3)
    eig = torch.linalg.eigvalsh(TrainingLoss(net, x, y).hessian_matrix())
    assert m["ratio"][1, 1] == pytest.approx(abs(float(eig[0] / eig[-1])), rel=1e-3, abs=1e-4)
    files = sp.plot_ratio_maps({"a": m, "b": read_surface(tmp_path / "ratio.h5")}, tmp_path / "fig")
    assert all(Path(f).stat().st_size > 0 for f in files)


# ---------------------------------------------------------------- the claims on synthetic data ------------

ROOT = Path(__file__).resolve().parents[2]


def _decision(claim_id: str) -> dict:
    return registry_entry(load_registry(ROOT / "config" / "claims.yaml"), claim_id)["decision"]


def _spectrum(seed: int, top, k: int, bulk: float = 0.97) -> sp.Spectrum:
    top = np.asarray(top, float)
    nodes = (np.array([0.0, *top]),)
    weights = (np.array([bulk, *np.full(len(top), (1 - bulk) / len(top))]),)
    grid = np.linspace(-0.1, top[0] + 0.1, 50)
    density = SpectralDensity(grid, np.ones_like(grid), nodes, weights, 1e-4, 0)
    return sp.Spectrum(seed, top, np.zeros_like(top), True, density, 10, 100, k, 50)


def _edge_spectrum(seed: int, n_out: int, k: int, m: int = 20, bulk: float = 0.97) -> sp.Spectrum:
    """``n_out`` outliers above a bulk edge at 0.06 (the density's 0.99 mass quantile), then bulk eigenvalues
    below it: ``m`` Lanczos eigenvalues; ``bulk`` of the mass at 0."""
    top = np.array([10.0 - 0.1 * i for i in range(n_out)] + [0.05 * 0.8 ** i for i in range(m - n_out)])[:m]
    nodes = (np.array([0.0, 0.06, *top[:n_out]]),)
    weights = (np.array([bulk, 0.995 - bulk, *np.full(n_out, 0.005 / max(n_out, 1))]),)
    grid = np.linspace(-0.1, 10.1, 50)
    density = SpectralDensity(grid, np.ones_like(grid), nodes, weights, 1e-4, 0)
    return sp.Spectrum(seed, top, np.zeros_like(top), True, density, 10, 2410, k, 50)


def _metrics(seed: int, bs, wd: float = 0.0, test_acc: float = 0.9, epochs: int = 10) -> dict:
    return {"seed": seed, "recipe": {"batch_size": bs, "weight_decay": wd, "epochs": epochs}, "train_size": 64,
            "diverged": False, "train_acc": 1.0, "test_acc": test_acc, "train_loss": 0.01}


def _outliers(k: int, m: int = 12) -> list[float]:
    """k outliers, then a bulk decaying from 0.5: m eigenvalues."""
    return [10.0 - i for i in range(k)] + [0.5 * 0.8 ** i for i in range(m - k)]


HESSIAN_CHECK = {"rule": "written before", "bulk_rel": 1e-2, "bulk_mass": 0.9, "gap_floor": 1e-2, "window": [-1, 2],
                 "min_agree": 0.8}


def _hessian(tmp_path, counts: dict[int, list[int]], m: int = 20):
    spectra = {f"k{k}": [_edge_spectrum(s, n, k, m, bulk=0.97 + 0.002 * s) for s, n in enumerate(ns)]
               for k, ns in counts.items()}
    runs = {v: [_metrics(s, 32) for s in range(len(spectra[v]))] for v in spectra}
    return sp.hessian_outliers_claim(spectra, runs, HESSIAN_CHECK, "smoke", tmp_path,
                                     decision=_decision("hessian-bulk-outliers"))


def test_bulk_edge_and_the_outliers_above_it():
    s = _edge_spectrum(0, 4, 3)
    assert sp.bulk_edge(s.density) == pytest.approx(0.06)
    assert sp.outliers_above_edge(s) == 4.0
    assert math.isnan(sp.outliers_above_edge(_edge_spectrum(0, 10, 10, m=10)))  # every top_k above: censored
    assert sp.count_above_edge(_edge_spectrum(0, 10, 10, m=10)) == 10.0  # the number kept: the censored count
    unconverged = sp.Spectrum(0, s.top, s.residuals, False, s.density, 0, 100, 3, 50)
    assert math.isnan(sp.outliers_above_edge(unconverged)) and math.isnan(sp.count_above_edge(unconverged))


def test_hessian_outliers_claim(tmp_path):
    res = _hessian(tmp_path, {3: [3, 4, 3, 4], 5: [5, 6, 5, 5], 10: [10, 10, 11, 10]})
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == ["bulk_mass", "outliers_track_classes"]
    assert res.numbers["k10.seed2.outliers_above_edge"] == 11.0 and "k5.seed1.outliers" in res.numbers
    assert res.numbers["effect.outliers_track_classes.estimate"] == pytest.approx(6.75)
    assert "steps" in res.regime and "k=10" in res.regime
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (tmp_path / f).stat().st_size > 0
    assert "train_loss" in (tmp_path / "table.csv").read_text()
    # the reverse: fewer outliers with more classes
    assert _hessian(tmp_path, {3: [10, 10, 11, 10], 10: [3, 4, 3, 4]}).verdict == NOT_REPRODUCED
    # one seed: no interval
    assert _hessian(tmp_path, {3: [3], 10: [10]}).verdict == INCONCLUSIVE
    # censored at top_k (every Lanczos eigenvalue above the edge): the part is NaN, inconclusive
    res = _hessian(tmp_path, {3: [3, 4, 3, 4], 10: [10, 10, 10, 10]}, m=10)
    assert res.verdict == INCONCLUSIVE and res.decisions[1]["verdict"] == INCONCLUSIVE
    assert res.decisions[0]["verdict"] == REPRODUCED


def _batch(tmp_path, factor: float, seeds=range(5), matched: bool = True, raw_factor: float = 3.0):
    arms = {"small_batch": (8, 10, 1.0), "full_batch": ("full", 10, raw_factor)}
    if matched:
        arms["full_batch_steps"] = ("full", 80, factor)
    spectra = {v: [_spectrum(s, [f * (1.0 + 0.1 * s * (v != "small_batch") + 0.05 * s), 0.5], 10) for s in seeds]
               for v, (_, _, f) in arms.items()}
    runs = {v: [_metrics(s, bs, epochs=e) for s in seeds] for v, (bs, e, _) in arms.items()}
    return sp.batchsize_outliers_claim(spectra, runs, {"rule": "r"}, "smoke", tmp_path,
                                       decision=_decision("batchsize-larger-outliers"))


def test_batch_arms_by_steps():
    runs = {"a": [_metrics(0, 8)], "b": [_metrics(0, "full")], "c": [_metrics(0, "full", epochs=80)]}
    assert sp.batch_arms(runs) == sp.BatchArms("a", "b", "c")
    assert sp.batch_arms({k: runs[k] for k in "ab"}) == sp.BatchArms("a", "b", None)
    assert sp.batch_arms({**runs, "d": [_metrics(0, "full", epochs=7)]}) == sp.BatchArms("a", "b", "c", ("d",))
    with pytest.raises(ValueError):
        sp.batch_arms({"a": runs["a"], "b": [_metrics(0, 8)]})  # no batch smaller than all others


def test_batchsize_outliers_claim(tmp_path):
    # the step-matched arm decides: larger there even though the equal-epoch arm is smaller
    res = _batch(tmp_path, 3.0, raw_factor=0.3)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == ["lambda_max"]
    assert res.numbers["matched.log10_lambda_max_ratio_mean"] > 0.4 > 0 > res.numbers["raw.log10_lambda_max_ratio_mean"]
    assert "full_batch_steps.seed4.lambda_max" in res.numbers and "80 steps" in res.regime
    assert (tmp_path / "figure.png").exists() and "steps" in (tmp_path / "table.csv").read_text()
    assert _batch(tmp_path, 0.3, raw_factor=3.0).verdict == NOT_REPRODUCED  # the reverse
    assert _batch(tmp_path, 3.0, seeds=[0]).verdict == INCONCLUSIVE  # one seed
    res = _batch(tmp_path, 3.0, matched=False)  # no step-matched arm: no matched comparison
    assert res.verdict == INCONCLUSIVE and "no matched comparison" in res.notes


def _wd_flip(tmp_path, seeds=(0, 1, 2, 3), reverse: bool = False):
    alphas = np.linspace(-1, 1, 5)

    def bowl(c_raw, c_filter, s=0, jitter=0.0):
        f = 1.0 + jitter * s
        return {"raw": np.stack([0.1 + f * c_raw * alphas ** 2] * 2),
                "filter": np.stack([0.1 + f * c_filter * alphas ** 2] * 2)}

    # Li et al.'s picture: raw LB sharper at WD 0, SB sharper with WD; filter LB sharper in both; SB better
    sb0, lb0, sbw, lbw = (0.1, 1.0), (1.0, 2.0), (3.0, 1.0), (1.0, 2.0)
    sb_acc, lb_acc = 0.95, 0.9
    if reverse:
        sb0, lb0, sbw, lbw, sb_acc, lb_acc = lb0, sb0, lbw, sbw, lb_acc, sb_acc
    lines = {"sb0": {s: bowl(*sb0) for s in seeds}, "lb0": {s: bowl(*lb0, s, 0.1) for s in seeds},
             "sbw": {s: bowl(*sbw) for s in seeds}, "lbw": {s: bowl(*lbw, s, 0.1) for s in seeds}}
    runs = {"sb0": [_metrics(s, 8, 0.0, sb_acc) for s in seeds],
            "lb0": [_metrics(s, "full", 0.0, lb_acc - 0.01 * s) for s in seeds],
            "sbw": [_metrics(s, 8, 0.01, sb_acc + 0.01) for s in seeds],
            "lbw": [_metrics(s, "full", 0.01, lb_acc - 0.01 * s) for s in seeds]}
    return sp.wd_flip_claim(lines, alphas, runs, {"rule": "r", "radius": 0.5}, "smoke", tmp_path,
                            decision=_decision("li-filter-normalization-wd-flip"))


def test_wd_flip_claim(tmp_path):
    res = _wd_flip(tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == [
        "raw_flip", "filter_normalized_lb_sharper wd0", "filter_normalized_lb_sharper wd",
        "sb_generalizes_better wd0", "sb_generalizes_better wd"]
    assert res.numbers["sbw.sharpness_raw_mean"] == pytest.approx(0.75)
    assert res.numbers["sbw.sharpness_raw_normalised_mean"] == pytest.approx(7.5)
    assert (tmp_path / "figure.pdf").exists() and "train_loss" in (tmp_path / "table.csv").read_text()
    assert "steps" in res.regime
    assert _wd_flip(tmp_path, reverse=True).verdict == NOT_REPRODUCED
    assert _wd_flip(tmp_path, seeds=(0,)).verdict == INCONCLUSIVE
    runs = {v: [_metrics(0, 8)] for v in ("a", "b")}
    with pytest.raises(ValueError, match="four variants"):
        sp.wd_flip_measures({v: {0: {}} for v in runs}, np.linspace(-1, 1, 5), runs, {"radius": 0.5})


def _line(alphas: np.ndarray, z: np.ndarray) -> Surface:
    return Surface(alphas, None, {"train_loss": z, "train_acc": np.ones_like(z)}, np.ones(1, bool), {},
                   extra={"distance": np.array([2.0])})


def _basin(tmp_path, seeds=(0, 1, 2, 3), lb_c: float = 4.0, sb_c: float = 1.0, bump: float = 0.0):
    alphas = np.linspace(-1, 2, 25)
    inside = (alphas > 0) & (alphas < 1)

    def z(s):
        rise = np.where(alphas < 0, (lb_c + 0.2 * s) * alphas ** 2, np.where(alphas > 1, sb_c * (alphas - 1) ** 2, 0.0))
        return (rise + 0.05 + np.where(inside, (bump + 2e-4 * s) * np.sin(np.pi * alphas), 0.0))

    lines = {s: _line(alphas, z(s)) for s in seeds}
    check = {"rule": "r", "deltas": [0.25, 0.5], "barrier_tol": 0.05}
    lb = [_metrics(s, "full") for s in seeds]
    sb = [_metrics(s, 8) for s in seeds]
    return sp.lb_sb_basin_claim(lines, lb, sb, check, "smoke", tmp_path, decision=_decision("lb-to-sb-same-basin"))


def test_lb_sb_basin_claim(tmp_path):
    res = _basin(tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == ["lb_end_steeper", "no_barrier"]
    assert res.numbers["seed0.barrier"] == pytest.approx(0.0)
    assert res.numbers["seed0.lb_end_steeper"] == pytest.approx(math.log(4.0))
    rows = (tmp_path / "table.csv").read_text()
    assert "distance_LB_SB" in rows and "LB_steps" in rows
    assert json.loads(json.dumps(res.numbers))  # JSON-able
    assert "SB continuation" in res.regime
    # the reverse: the SB end steeper and a barrier
    assert _basin(tmp_path, lb_c=0.25, sb_c=4.0, bump=0.5).verdict == NOT_REPRODUCED
    assert _basin(tmp_path, seeds=(0,)).verdict == INCONCLUSIVE
    rises, bars, effects = sp.basin_measures({s: _line(np.linspace(-1, 2, 25), np.full(25, 0.1)) for s in (0, 1)},
                                             [0.25])
    assert set(rises) == {0.25, 0.5} and bars == [0.0, 0.0] and math.isnan(effects["lb_end_steeper"][0])


def test_gauss_newton_claim_decides_by_its_preregistration(tmp_path):
    from losslab.claims.sharpness.spectra import GaussNewtonTop, gauss_newton_claim
    from losslab.pipeline.registry import load_registry

    dec = next(c["decision"] for c in load_registry(Path(__file__).resolve().parents[2] / "config" / "claims.yaml")
               if c["id"] == "gauss-newton-outliers")
    runs = {"k3": [{"train_acc": 1.0, "test_acc": 0.9, "train_loss": 0.01, "epochs": 20, "train_size": 100,
                    "recipe": {"batch_size": 10, "epochs": 20}}]}
    h = np.array([5.0, 3.0, 2.0, 0.1])

    def tops(rel: float, certified: bool = True) -> list:
        return [GaussNewtonTop("k3", s, 3, h, h * (1 - rel * (1 + 0.1 * s)), certified, 40) for s in range(5)]

    agree = gauss_newton_claim(tops(0.01), runs, "smoke", tmp_path, dec)
    assert agree.verdict == "reproduced" and agree.numbers["k3.seed0.relative_difference"] == pytest.approx(0.01)
    assert (tmp_path / "figure.png").exists() and "k=3" in agree.measured
    _redraws_the_same(tmp_path)
    apart = gauss_newton_claim(tops(0.5), runs, "smoke", tmp_path, dec)  # the residual term moves the outliers
    assert apart.verdict == "not reproduced"
    uncertified = gauss_newton_claim(tops(0.01, certified=False), runs, "smoke", tmp_path, dec)
    assert uncertified.verdict == "inconclusive"


def test_directions_agree_claim_decides_by_its_preregistration(tmp_path):
    from losslab.claims.sharpness.spectra import coefficient_of_variation, direction_rises, directions_agree_claim
    from losslab.pipeline.registry import load_registry

    dec = next(c["decision"] for c in load_registry(Path(__file__).resolve().parents[2] / "config" / "claims.yaml")
               if c["id"] == "random-directions-agree")
    alphas = np.linspace(-1, 1, 21)
    assert direction_rises(alphas, [alphas ** 2])[0] == pytest.approx(0.25)  # (0.25 + 0.25) / 2 - 0
    assert coefficient_of_variation([1.0, 1.0]) == 0.0 and np.isnan(coefficient_of_variation([1.0]))
    runs = {v: [{"train_acc": 1.0, "test_acc": 0.9, "train_loss": 0.01, "train_size": 100,
                 "recipe": {"batch_size": 10, "epochs": 20}}] for v in ("sb", "lb")}

    def lines(spread: float) -> dict:
        return {v: {s: {norm: np.stack([(1 + spread * ((j % 2) * 2 - 1)) * (1 + 0.01 * s) * alphas ** 2
                                        for j in range(10)]) for norm in ("raw", "filter")}
                    for s in range(4)} for v in ("sb", "lb")}

    same = directions_agree_claim(lines(0.02), alphas, runs, "smoke", tmp_path, dec)
    assert same.verdict == "reproduced" and same.numbers["sb.seed0.filter_cv"] == pytest.approx(0.021, abs=1e-3)
    assert (tmp_path / "figure.png").exists() and "10 filter-normalized directions" in same.measured
    _redraws_the_same(tmp_path)
    apart = directions_agree_claim(lines(0.6), alphas, runs, "smoke", tmp_path, dec)  # curves far apart
    assert apart.verdict == "not reproduced"


def _redraws_the_same(out_dir):
    """`snakemake figures` rewrites table.md from table.csv: a claim's table must come back byte for byte (a cell
    pre-formatted to 4 digits did not, and the small DAG twice differed)."""
    from losslab.claims import tables

    first = (out_dir / "table.md").read_bytes()
    tables.rerender_table(out_dir / "table.csv")
    assert (out_dir / "table.md").read_bytes() == first
