"""The optimization-lecture toys (losslab.claims.lecture.toys): the exact computations, then each claim function
end to end on tiny parameters."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.claims.claim_job import ClaimJob
from losslab.claims import tables
from losslab.claims.lecture import toys
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, decide_claim
from losslab.pipeline.registry import load_registry

ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- tanh toy surface --------------------------


def test_saddle_value_and_hessian_eigenvalues():
    s = toys.tanh_saddle()
    assert s["loss"] == pytest.approx(0.25, abs=1e-12)
    assert s["grad_norm"] == 0.0
    assert s["eig_min"] == pytest.approx(-0.5, abs=1e-9)
    assert s["eig_max"] == pytest.approx(0.5, abs=1e-9)
    # the Hessian itself: [[0, -1/2], [-1/2, 0]]
    np.testing.assert_allclose(toys.tanh_hessian((0.0, 0.0)), [[0.0, -0.5], [-0.5, 0.0]], atol=1e-12)


def test_plateau_limits():
    far = toys.tanh_plateaus(20.0)
    assert far["same_sign_dev"] < 1e-12 and far["opposite_sign_dev"] < 1e-12
    assert far["same_sign_loss"] == pytest.approx(0.25) and far["opposite_sign_loss"] == pytest.approx(2.25)
    assert far["grad_norm_max"] < 1e-12
    near = toys.tanh_plateaus(1.0)  # not yet on the plateaus
    assert near["same_sign_dev"] > 0.05 and near["opposite_sign_dev"] > 0.05


def test_ravine_points_have_zero_loss_and_rank_one_hessian():
    rows = toys.tanh_ravine([0.3, 1.0, 4.0, -0.3, -1.0, -4.0])
    for r in rows:
        assert r["loss"] < 1e-20
        assert (r["w1"] > 0) == (r["w2"] > 0)  # quadrants I and III
        assert abs(r["eig_min"]) < 1e-9 and r["eig_max"] > 0.1
        assert r["w1"] * math.tanh(r["w2"] / 2) == pytest.approx(toys.ATANH_HALF)
    # the mirror images have the same curvature; a point beside the ravine does not have zero loss
    assert rows[0]["eig_max"] == pytest.approx(rows[3]["eig_max"])
    assert toys.tanh_value(rows[1]["w1"] + 0.2, rows[1]["w2"]) > 1e-3
    with pytest.raises(ValueError):
        toys.ravine_points([0.0])


def test_gradient_descent_from_zero_stays_at_the_saddle():
    final, hist = toys.gradient_descent(toys.tanh_loss, np.zeros((1, 2)), lr=0.5, steps=200)
    assert np.all(final == 0.0)
    assert np.all(hist == 0.25)


def test_gradient_descent_small_init_converges_large_init_stalls():
    gd = {"small_init_std": 0.1, "large_init": 10.0}
    small = np.stack([toys.tanh_starts("small", s, gd) for s in (0, 1)])
    large = np.stack([toys.tanh_starts("large", s, gd) for s in (0, 1)])
    assert np.all(np.abs(large) >= 8.0) and np.all(np.abs(large) <= 12.0)
    _, h_small = toys.gradient_descent(toys.tanh_loss, small, lr=0.5, steps=400)
    _, h_large = toys.gradient_descent(toys.tanh_loss, large, lr=0.5, steps=400)
    assert np.all(h_small[-1] < 1e-6)
    assert np.all(h_large.min(axis=0) > 0.2)
    # the runs are independent: one start alone gives the same history
    _, h0 = toys.gradient_descent(toys.tanh_loss, small[:1], lr=0.5, steps=400)
    np.testing.assert_allclose(h0[:, 0], h_small[:, 0])


def test_optimizer_paths():
    for name in toys.OPTIMIZERS:
        path, losses = toys.optimizer_path(name, (-2.5, 2.5), lr=0.05, steps=10)
        assert path.shape == (11, 2) and losses.shape == (11,)
        assert np.all(path[0] == (-2.5, 2.5)) and not np.all(path[-1] == path[0])
        assert losses[0] == pytest.approx(toys.tanh_value(-2.5, 2.5))
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        toys.optimizer_path("lbfgs", (-2.5, 2.5), lr=0.05, steps=1)


# ---------------------------------------------------------------- GOE ---------------------------------------

def test_newton_jumps_to_the_saddle_where_gd_escapes():
    # near the origin L ~ 0.25 - w1 w2 / 2: Newton's step solves the quadratic model, whose critical point is the saddle
    path = toys.newton_path((0.05, -0.03), 10)
    assert np.abs(path[-1]).max() < 1e-12 and np.abs(path[1]).max() < 0.01  # one step lands next to it
    assert toys.tanh_value(*path[-1]) == pytest.approx(0.25, abs=1e-12)
    # GD from the same start reaches the ravine (loss 0)
    _, hist = toys.gradient_descent(toys.tanh_loss, np.array([[0.05, -0.03]]), 0.5, 2000)
    assert hist[-1, 0] < 1e-6
    # from a start on the far side of a ravine Newton does not come back to the saddle: the measure sees it
    far = toys.newton_path((3.0, 3.0), 30)[-1]
    m = toys.measure_newton(np.stack([far, np.zeros(2)]), np.array([0.0, 0.3]), 1e-6)
    assert m["newton_to_saddle"].value == 0.5 and m["gd_escapes"].value == 0.5


def test_newton_claim_decides_by_its_preregistration(tmp_path: Path):
    params = {"seeds": [0, 1, 2, 3], "small_init_std": 0.1, "newton_steps": 30, "gd_lr": 0.5, "gd_steps": 2000,
              "tol": 1e-6}
    res = toys.claim_newton_saddles(params, {}, DECISIONS["newton-attracted-to-saddles"], "smoke", tmp_path)
    assert res.verdict == REPRODUCED and "4/4 starts" in res.measured
    assert res.numbers["newton.fraction_at_saddle"] == 1.0 and (tmp_path / "figure.png").exists()
    first = (tmp_path / "table.md").read_bytes()  # `snakemake figures` redraws it from table.csv: the same bytes
    tables.rerender_table(tmp_path / "table.csv")
    assert (tmp_path / "table.md").read_bytes() == first
    # an injected change: starts far from the saddle (std 3) and Newton no longer ends there from most of them
    res = toys.claim_newton_saddles({**params, "small_init_std": 3.0}, {}, DECISIONS["newton-attracted-to-saddles"],
                                    "smoke", tmp_path)
    assert res.numbers["newton.fraction_at_saddle"] < 0.8 and res.verdict == NOT_REPRODUCED


def test_goe_matrices_are_symmetric_with_goe_variances():
    a = toys.goe(3, 40000, np.random.default_rng(0))
    assert a.shape == (40000, 3, 3)
    np.testing.assert_array_equal(a, np.swapaxes(a, 1, 2))
    assert a[:, 0, 0].var() == pytest.approx(1.0, rel=0.05)  # diagonal variance twice the off-diagonal one
    assert a[:, 0, 1].var() == pytest.approx(0.5, rel=0.05)


def test_goe_fraction_n1_is_half_and_n2_matches_the_exact_value():
    rows = toys.goe_fractions(2, 20000, seed=0)
    f1, f2 = rows[0], rows[1]
    assert abs(f1["fraction"] - 0.5) < 4 * f1["se"]
    # GOE(2): P(both eigenvalues > 0) = (2 - sqrt 2) / 4 (angular integral of |l1 - l2| over a quadrant)
    assert abs(f2["fraction"] - (2 - math.sqrt(2)) / 4) < 4 * f2["se"]
    assert rows[0]["half_pow_N"] == 0.5 and math.isnan(rows[0]["upper95_if_zero"])
    assert toys.goe_fractions(2, 20000, seed=0) == rows  # seeded


def test_monotone_rule():
    assert toys.monotone_decreasing([0.5, 0.1, 0.01, 0.0, 0.0])
    assert not toys.monotone_decreasing([0.5, 0.1, 0.1])
    assert not toys.monotone_decreasing([0.5, 0.0, 0.01])


# ---------------------------------------------------------------- redundant parametrisation -----------------

def test_product_loss_hessians():
    np.testing.assert_allclose(toys.product_hessian((1.0, 0.0)), [[0, 0], [0, 2]], atol=1e-12)
    np.testing.assert_allclose(toys.product_hessian((3.0, 0.0)), [[0, 0], [0, 18]], atol=1e-12)
    np.testing.assert_allclose(toys.product_hessian((0.0, 3.0)), [[18, 0], [0, 0]], atol=1e-12)
    # off the valley: [[2 w2^2, 4 w1 w2], [4 w1 w2, 2 w1^2]]
    np.testing.assert_allclose(toys.product_hessian((1.0, 2.0)), [[8, 8], [8, 2]], atol=1e-12)
    assert toys._hessian(toys.square_loss, (0.0,))[0, 0] == pytest.approx(2.0)
    assert np.all(toys.product_gradient((3.0, 0.0)) == 0.0)


MLP = {"in_features": 8, "widths": [8], "num_classes": 3, "n_inputs": 16, "seed": 0, "train_steps": 20,
       "train_lr": 0.5}


def test_relu_rescaling_keeps_outputs_but_not_parameters():
    model, x, _ = toys.tiny_mlp_problem(MLP)
    for c in (0.3, 3.7):
        m = toys.rescale_relu_mlp(model, c)
        with torch.no_grad():
            assert (m(x) - model(x)).abs().max() < 1e-12
        assert not torch.equal(toys.linear_layers(m)[0].weight, toys.linear_layers(model)[0].weight)
    # the original is untouched; a negative c is no symmetry of ReLU
    assert torch.equal(toys.linear_layers(toys.rescale_relu_mlp(model, 1.0))[1].weight,
                       toys.linear_layers(model)[1].weight)
    with pytest.raises(ValueError):
        toys.rescale_relu_mlp(model, -1.0)


def test_loss_hessian_matches_finite_differences_of_the_gradient():
    model, x, y = toys.tiny_mlp_problem(MLP)
    h = toys.loss_hessian(model, x, y)
    n = sum(p.numel() for p in model.parameters())
    assert h.shape == (n, n)
    torch.testing.assert_close(h, h.T)
    theta = toys.flatten(model)

    def grad_at(vec):
        vec = vec.clone().requires_grad_(True)
        out = torch.func.functional_call(model, toys.unflatten(model, vec), (x,))
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(out, y), vec)
        return g

    v = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 1e-6
    fd = (grad_at(theta + eps * v) - grad_at(theta - eps * v)) / (2 * eps)
    torch.testing.assert_close(h @ v, fd, atol=1e-6, rtol=1e-5)


def test_rescaling_sweep_changes_the_top_eigenvalue():
    model, x, y = toys.tiny_mlp_problem(MLP)
    rows = {r["c"]: r for r in toys.rescaling_sweep(model, x, y, [1.0, 4.0])}
    assert rows[4.0]["max_abs_output_diff"] < 1e-12
    assert rows[1.0]["top_eig"] > 0 and rows[4.0]["top_eig"] != pytest.approx(rows[1.0]["top_eig"])


# ---------------------------------------------------------------- Wilson et al.'s toy -----------------------

def test_wilson_data_construction():
    n, nt = 30, 20
    xtr, ytr, xte, yte = toys.wilson_data(n, 0.7, nt, np.random.default_rng(0))
    d = 6 * (n + nt)
    assert xtr.shape == (n, d) and xte.shape == (nt, d) and ytr.shape == (n,) and yte.shape == (nt,)
    x, y = np.vstack([xtr, xte]), np.concatenate([ytr, yte])
    assert set(np.unique(y)) == {-1.0, 1.0} and set(np.unique(x)) == {0.0, 1.0, -1.0}
    np.testing.assert_array_equal(x[:, 0], y)
    assert np.all(x[:, 1:3] == 1.0)
    unique = x[:, 3:]
    counts = unique.sum(axis=1)
    np.testing.assert_array_equal(counts, np.where(y > 0, 1, 5))  # one feature if y = +1, five if y = -1
    assert np.all(unique.sum(axis=0) <= 1)  # no two samples share a unique feature
    for i in range(n + nt):  # sample i owns the block 3 + 5 i ... (0-based)
        assert np.all(unique[i, 5 * i: 5 * i + int(counts[i])] == 1.0)
    # test samples' unique features are never touched by a training sample
    assert not np.any((xtr[:, 3:] != 0) & (xte[:, 3:] != 0).any(axis=0))
    assert 0.5 < np.mean(y > 0) < 0.9


def test_gd_on_the_wilson_toy_reaches_zero_train_and_test_error():
    xtr, ytr, xte, yte = toys.wilson_data(20, 0.7, 50, np.random.default_rng(3))
    w, hist = toys.wilson_fit("gd", xtr, ytr, {"lr": 0.5, "steps": 500})
    assert hist[0] == pytest.approx(0.5) and hist[-1] < 1e-12
    assert toys.wilson_evaluate(w, xtr, ytr)["error"] == 0.0
    assert toys.wilson_evaluate(w, xte, yte)["error"] == 0.0
    np.testing.assert_allclose(w, toys.min_norm_solution(xtr, ytr), atol=1e-6)  # GD from 0: minimum norm
    unseen = ~np.any(xtr != 0, axis=0)
    assert np.all(w[unseen] == 0.0)
    with pytest.raises(ValueError):
        toys.wilson_fit("lbfgs", xtr, ytr, {"lr": 0.1, "steps": 1})


def test_wilson_adaptive_methods_leave_unseen_features_at_zero():
    xtr, ytr, _, _ = toys.wilson_data(20, 0.7, 10, np.random.default_rng(0))
    unseen = ~np.any(xtr != 0, axis=0)
    for m, cfg in (("adagrad", {"lr": 0.1, "steps": 50}), ("adam", {"lr": 0.01, "steps": 50}),
                   ("sgd", {"lr": 0.1, "epochs": 3, "batch_size": 5})):
        w, hist = toys.wilson_fit(m, xtr, ytr, cfg, seed=0)
        assert np.all(w[unseen] == 0.0) and hist[-1] < hist[0]


# ---------------------------------------------------------------- decisions by the pre-registration ---------

DECISIONS = {c["id"]: c["decision"] for c in load_registry(ROOT / "config" / "claims.yaml") if c["id"] in toys.TOYS}


def decide(claim_id, measured):
    return decide_claim(DECISIONS[claim_id], measured)


def test_tanh_deviations_and_the_derived_ravine_curvature():
    ravine = toys.tanh_ravine([0.25, 1.0, -3.0])
    for r in ravine:  # the closed form 2 |grad r|^2 is the autograd eigenvalue
        assert r["eig_max"] == pytest.approx(r["derived_eig_max"], rel=1e-12)
    dev = toys.tanh_deviations(toys.tanh_saddle(), toys.tanh_plateaus(20.0), ravine)
    assert max(dev.values()) < 1e-12 and {"saddle.eig_min", "plateau.opposite_sign", "ravine2.quadrant"} <= set(dev)
    wrong = [{**ravine[0], "w1": -ravine[0]["w1"]}]  # a point off quadrants I/III deviates by |w1|
    assert toys.tanh_deviations(toys.tanh_saddle(), toys.tanh_plateaus(20.0), wrong)["ravine0.quadrant"] > 0.5
    near = toys.tanh_deviations(toys.tanh_saddle(), toys.tanh_plateaus(1.0), ravine)  # not yet on the plateaus
    assert near["plateau.same_sign"] > 0.05


def test_tanh_decision():
    exact = decide("tanh-toy-surface", toys.measure_tanh({"saddle.loss": 1e-15, "plateau.same_sign": 3e-16}))
    assert exact.verdict == REPRODUCED and [d.name for d in exact.decisions] == ["derived_values"]
    assert exact.decisions[0].interval.estimate == pytest.approx(-1e-15)
    off = decide("tanh-toy-surface", toys.measure_tanh({"saddle.loss": 1e-15, "plateau.same_sign": 0.05}))
    assert off.verdict == NOT_REPRODUCED
    assert decide("tanh-toy-surface", toys.measure_tanh({"saddle.loss": math.nan})).verdict == INCONCLUSIVE
    assert math.isnan(toys.largest_deviation({})) and toys.largest_deviation({"a": 0.0, "b": 2.0}) == 2.0


def test_saddles_decision():
    def rows(fractions, samples):
        return [{"N": n, "fraction": f, "samples": samples} for n, f in enumerate(fractions, start=1)]

    clear = decide("saddles-dominate-high-dim", toys.measure_saddles(rows([0.5, 0.146, 0.025, 0.002], 20000)))
    assert clear.verdict == REPRODUCED
    assert [d.name for d in clear.decisions] == ["pd_fraction N2", "pd_fraction N3", "pd_fraction N4"]  # N = 1 exempt
    # the binomial tolerance: 2 sqrt(0.25 * 0.75 / 20000) at N = 2
    assert clear.decisions[0].tolerance == pytest.approx(2 * math.sqrt(0.25 * 0.75 / 20000))
    reverse = decide("saddles-dominate-high-dim", toys.measure_saddles(rows([0.5, 0.146, 0.2, 0.002], 20000)))
    assert reverse.verdict == NOT_REPRODUCED and "pd_fraction N3" in reverse.reason
    # too few draws: 0.5^N - fraction (0.04 at N = 2) is within two binomial standard errors of 0 at 100 draws
    few = decide("saddles-dominate-high-dim", toys.measure_saddles(rows([0.5, 0.21, 0.09, 0.03], 100)))
    assert few.verdict == INCONCLUSIVE and few.decisions[0].verdict == INCONCLUSIVE
    none = decide("saddles-dominate-high-dim", toys.measure_saddles(rows([0.5], 100)))  # no N >= 2 measured
    assert none.verdict == INCONCLUSIVE and [d.name for d in none.decisions] == ["pd_fraction"]


def test_redundant_flatness_decision():
    clear = decide("redundant-overparam-flatness", toys.measure_redundant({"square.hessian": 0.0}, 7e-15, 13.0))
    assert clear.verdict == REPRODUCED
    assert [d.name for d in clear.decisions] == ["derived_values", "output_invariance", "lambda_max_factor"]
    flat = decide("redundant-overparam-flatness", toys.measure_redundant({"square.hessian": 0.0}, 7e-15, 1.2))
    assert flat.verdict == NOT_REPRODUCED and "lambda_max_factor" in flat.reason
    changed = decide("redundant-overparam-flatness", toys.measure_redundant({"square.hessian": 0.0}, 1e-3, 13.0))
    assert changed.verdict == NOT_REPRODUCED and "output_invariance" in changed.reason
    nan = decide("redundant-overparam-flatness", toys.measure_redundant({"square.hessian": 0.0}, 7e-15, math.nan))
    assert nan.verdict == INCONCLUSIVE


def test_redundant_deviations():
    valley = [{"a": 3.0, "eig_min": 0.0, "eig_max": 18.0, "derived_max": 18.0, "loss": 0.0, "grad_norm": 0.0}]
    dev = toys.redundant_deviations(2.0, valley, [(3.0, np.array([0.0, 18.0]))])
    assert max(dev.values()) == 0.0 and set(dev) >= {"valley.a3.eig_max", "valley_w2.a3.eig_max"}
    assert toys.redundant_deviations(2.0, valley, [(3.0, np.array([0.0, 17.0]))])["valley_w2.a3.eig_max"] == 1.0


def test_wilson_decision():
    rng = np.random.default_rng(0)
    gd = [0.0] * 5
    adaptive = list(0.3 + 0.01 * rng.standard_normal(5))
    clear = decide("wilson-adaptive-generalize-worse",
                   toys.measure_wilson({"gd": gd, "adagrad": adaptive, "adam": [a - 0.01 for a in adaptive]}))
    assert clear.verdict == REPRODUCED and [d.name for d in clear.decisions] == ["adaptive_worse"]
    # the worse (larger-error) adaptive method, minus GD, paired by seed
    assert clear.decisions[0].interval.estimate == pytest.approx(np.mean(adaptive))
    reverse = decide("wilson-adaptive-generalize-worse",
                     toys.measure_wilson({"gd": [0.05, 0.06, 0.04, 0.05, 0.05], "adagrad": [0.0] * 5,
                                          "adam": [0.01, 0.0, 0.02, 0.0, 0.01]}))
    assert reverse.verdict == NOT_REPRODUCED
    one = decide("wilson-adaptive-generalize-worse",
                 toys.measure_wilson({"gd": [0.0], "adagrad": [0.3], "adam": [0.3]}))
    assert one.verdict == INCONCLUSIVE and "at least 2" in one.decisions[0].reason
    wide = decide("wilson-adaptive-generalize-worse",
                  toys.measure_wilson({"gd": [0.0, 0.0], "adagrad": [0.1, 0.4], "adam": [0.05, 0.3]}))
    assert wide.verdict == INCONCLUSIVE
    nan = decide("wilson-adaptive-generalize-worse",
                 toys.measure_wilson({"gd": [0.0, math.nan, 0.0], "adagrad": [0.3] * 3, "adam": [0.3] * 3}))
    assert nan.verdict == INCONCLUSIVE and "missing" in nan.decisions[0].reason


def test_wilson_steps():
    assert toys.wilson_steps("gd", {"lr": 0.5, "steps": 200}, 20) == 200
    assert toys.wilson_steps("sgd", {"lr": 0.1, "epochs": 5, "batch_size": 6}, 20) == 5 * 4


# ---------------------------------------------------------------- claim functions end to end ----------------

TINY = {
    "tanh-toy-surface": {
        "grid": {"lim": 6.0, "points": 41}, "plateau_radius": 20.0, "ravine_w2": [1.0, -1.0],
        "gd": {"lr": 0.5, "steps": 300, "seeds": [0, 1], "small_init_std": 0.1, "large_init": 10.0},
        "trajectories": {"start": [-2.5, 2.5], "steps": 20, "momentum": 0.9,
                         "lr": {"gd": 0.5, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.01,
                                "adam": 0.05}}},
    "saddles-dominate-high-dim": {"n_max": 4, "samples": 2000, "seed": 0},
    "newton-attracted-to-saddles": {"seeds": [0, 1], "small_init_std": 0.1, "newton_steps": 10, "gd_lr": 0.5,
                                    "gd_steps": 500, "tol": 1e-6},
    "redundant-overparam-flatness": {"valley_points": [1.0, 3.0], "c_grid": [0.5, 2.0], "mlp": MLP},
    "wilson-adaptive-generalize-worse": {
        "n": 20, "p": 0.7, "n_test": 30, "seeds": [0],
        "methods": {"gd": {"lr": 0.5, "steps": 200}, "sgd": {"lr": 0.1, "epochs": 5, "batch_size": 5},
                    "adagrad": {"lr": 0.1, "steps": 200}, "adam": {"lr": 0.01, "steps": 200}}},
}
CHECKS = {
    "tanh-toy-surface": {"rule": "r", "tol": 1e-6, "converged_loss": 1e-6, "plateau_loss": 0.2},
    "saddles-dominate-high-dim": {"rule": "r", "from_n": 2},
    "newton-attracted-to-saddles": {"rule": "r"},
    "redundant-overparam-flatness": {"rule": "r", "tol": 1e-6, "output_tol": 1e-5, "c": 4.0, "min_factor": 2.0},
    "wilson-adaptive-generalize-worse": {"rule": "r", "adaptive_tol": 0.1, "min_positive_fraction": 0.95},
}


# tiny parameters: every part decided as at the smoke scale, except Wilson's one seed (a bound needs two)
TINY_VERDICTS = {"tanh-toy-surface": REPRODUCED, "saddles-dominate-high-dim": REPRODUCED,
                 "newton-attracted-to-saddles": REPRODUCED,
                 "redundant-overparam-flatness": REPRODUCED, "wilson-adaptive-generalize-worse": INCONCLUSIVE}


@pytest.mark.parametrize("claim_id", sorted(toys.TOYS))
def test_claim_function_writes_its_outputs(claim_id, tmp_path):
    res = toys.TOYS[claim_id](TINY[claim_id], CHECKS[claim_id], DECISIONS[claim_id], "smoke", tmp_path)
    assert res.id == claim_id and res.scale == "smoke" and res.rule.startswith("pre-registered decision")
    assert all(p["name"] in res.rule for p in DECISIONS[claim_id]["parts"])
    assert res.verdict == TINY_VERDICTS[claim_id], res.notes
    parts = [p["name"] for p in DECISIONS[claim_id]["parts"]]
    assert res.decisions and all(any(d["name"] == p or d["name"].startswith(p + " ") for d in res.decisions)
                                 for p in parts)
    assert res.regime and "\n" not in res.regime
    assert res.measured and "\n" not in res.measured
    stems = ["table", "figure"] + (["trajectories"] if claim_id == "tanh-toy-surface" else [])
    for stem in stems:
        for ext in ({"table": ("csv", "md")}.get(stem, ("png", "pdf"))):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0
    assert all(isinstance(v, float) for v in res.numbers.values()) and res.numbers
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] == res.verdict
    if claim_id == "tanh-toy-surface":  # the exact numbers do not depend on the run's size
        assert res.numbers["saddle.eig_min"] == pytest.approx(-0.5)
        assert res.numbers["plateau.opposite_sign_loss"] == pytest.approx(2.25)
        assert "trajectory.adam.final_loss" in res.numbers
    if claim_id == "redundant-overparam-flatness":
        assert res.numbers["valley.a3.eig_max"] == pytest.approx(18.0)
        assert "mlp.c4.top_eig" in res.numbers and "mlp.c1.top_eig" in res.numbers
    if claim_id == "saddles-dominate-high-dim":
        assert set(res.numbers) >= {"N1.fraction", "N4.fraction", "N4.se"}
    if claim_id == "wilson-adaptive-generalize-worse":
        assert "at least 2" in res.decisions[0]["reason"]
        assert "gd.seed0.error" in res.numbers and "adaptive_worse.seed0" in res.numbers
        assert "steps" in (tmp_path / "table.csv").read_text().splitlines()[0]


def test_run_toy_passes_the_claims_decision(tmp_path):
    claim = {"id": "redundant-overparam-flatness", "decision": DECISIONS["redundant-overparam-flatness"],
             "checks": {"default": CHECKS["redundant-overparam-flatness"]}}
    job = ClaimJob(claim=claim, scale="smoke", out_dir=tmp_path,
                   params={"toy": TINY["redundant-overparam-flatness"]})
    res = toys.CLAIMS["redundant-overparam-flatness"](job)
    assert res.verdict == REPRODUCED and [d["name"] for d in res.decisions] == [
        "derived_values", "output_invariance", "lambda_max_factor"]
