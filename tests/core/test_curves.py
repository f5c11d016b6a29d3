"""Mode connectivity: curves with exact endpoints, curve training (Garipov's claim on a toy), resume after a
kill, evaluation along t with recomputed BN, metrics, the plane of a curve, ensembles, FGE, the trivial path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call

from losslab.core.curves import (Bezier, CurveMismatchError, Polychain, arc_increments, curve_coordinates,
    curve_ensemble, curve_lr_at, curve_plane_surface, cyclic_lr, disagreement, ensemble, evaluate_along_curve,
    evaluate_segment, fge_snapshots, fit_curve, garipov_lr, load_curve, make_curve, member_probabilities, path_stats,
    plane_of, read_curve_evaluation, save_curve, scaling_exponents, scaling_path)
from losslab.core.data import Prepared, prepare
from losslab.core.models import build
from losslab.core.weights import ParamLayout, PointEvaluator, flatten
from losslab.core.surfaces import evaluators_for
from losslab.core.trainer import Recipe, fit

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (1, 8, 8)


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().numpy().tobytes()


def _random_data(n_train: int = 96, n_test: int = 48, seed: int = 0, steps: tuple = ()) -> Prepared:
    g = torch.Generator().manual_seed(seed)
    return Prepared("random", torch.randn(n_train, *SHAPE, generator=g), torch.randint(0, 10, (n_train,), generator=g),
                    torch.randn(n_test, *SHAPE, generator=g), torch.randint(0, 10, (n_test,), generator=g), 10,
                    list(steps))


def _net(spec: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build(spec, SHAPE, 10)


def _endpoints(spec: dict, seeds: tuple[int, int] = (1, 2)) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    a, b = _net(spec, seeds[0]), _net(spec, seeds[1])
    return a, flatten(a), flatten(b)


def _bent(curve: Bezier | Polychain, seed: int = 0, scale: float = 0.5) -> Bezier | Polychain:
    """The curve with its bends moved off the segment."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        curve.bends.add_(scale * torch.randn(curve.bends.shape, generator=g))
    return curve


# ---------------------------------------------------------------- the curves -------------------------------

@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("n_bends", [1, 2, 3])
def test_endpoints_are_exact(kind: str, n_bends: int) -> None:
    g = torch.Generator().manual_seed(n_bends)
    w0, w1 = torch.randn(50, generator=g), torch.randn(50, generator=g) * 3
    w0[:3], w1[3:6] = -0.0, -0.0  # signed zeros survive too
    curve = _bent(make_curve(kind, w0, w1, n_bends))
    assert _bits(curve(0.0)) == _bits(w0) and _bits(curve(1.0)) == _bits(w1)
    assert _bits(curve.point(0)) == _bits(w0) and _bits(curve.point(1)) == _bits(w1)
    with pytest.raises(ValueError):
        curve(1.5)


@pytest.mark.parametrize("n_bends", [1, 2, 3, 5])
def test_bezier_coefficients_are_bernstein_and_sum_to_one(n_bends: int) -> None:
    curve = Bezier(torch.zeros(4), torch.ones(4), n_bends)
    ts = [0.0, 1e-7, 0.1, 1 / 3, 0.5, 0.77, 1 - 1e-7, 1.0]
    ts += torch.rand(20, generator=torch.Generator().manual_seed(0)).tolist()
    for t in ts:
        c = curve.coefficients(t)
        assert len(c) == n_bends + 2 and bool((c >= 0).all())
        assert float(c.sum()) == pytest.approx(1.0, abs=1e-12)
    t = 0.3
    np.testing.assert_allclose(Bezier(torch.zeros(4), torch.ones(4), 1).coefficients(t).numpy(),
                               [(1 - t) ** 2, 2 * t * (1 - t), t ** 2], rtol=1e-15)


@pytest.mark.parametrize("n_bends", [1, 2, 4])
def test_polychain_passes_through_bends_and_is_linear_between(n_bends: int) -> None:
    g = torch.Generator().manual_seed(0)
    curve = _bent(Polychain(torch.randn(30, generator=g), torch.randn(30, generator=g), n_bends))
    pts = curve.control_points()
    for k in range(1, n_bends + 1):
        torch.testing.assert_close(curve.point(k / (n_bends + 1)), pts[k], rtol=0, atol=1e-6)
    # half-way between control points k and k+1
    h = 0.5 / (n_bends + 1)
    torch.testing.assert_close(curve.point(h), 0.5 * (pts[0] + pts[1]), rtol=0, atol=1e-6)
    c = curve.coefficients(0.5 * (1 + 2) / (n_bends + 1))  # inside the segment bend 1 -> 2
    assert int((c != 0).sum()) <= 2


def test_untrained_curves_lie_on_the_segment() -> None:
    """Bends start evenly spaced on the segment: Bezier (linear precision of Bernstein polynomials) and
    polychain are then the segment itself."""
    g = torch.Generator().manual_seed(0)
    w0, w1 = torch.randn(40, generator=g), torch.randn(40, generator=g)
    for curve in (Bezier(w0, w1, 1), Bezier(w0, w1, 3), Polychain(w0, w1, 2)):
        for t in (0.1, 0.25, 0.6, 0.9):
            torch.testing.assert_close(curve.point(t), (1 - t) * w0 + t * w1, rtol=0, atol=1e-6)


def test_gradients_flow_to_the_bends_only() -> None:
    model, w0, w1 = _endpoints({"name": "mlp", "widths": [8]})
    curve = make_curve("bezier", w0, w1, 2)
    assert [n for n, _ in curve.named_parameters()] == ["bends"]
    assert not curve.w0.requires_grad and not curve.w1.requires_grad
    data = _random_data()
    layout = ParamLayout.of(model)
    for t in (0.37, 0.0):
        curve.zero_grad(set_to_none=True)
        out = functional_call(model, layout.to_dict(curve(t)), (data.x_train,))
        torch.nn.functional.cross_entropy(out, data.y_train).backward()
        assert curve.bends.grad is not None and curve.w0.grad is None and curve.w1.grad is None
        assert all(p.grad is None for p in model.parameters())
        assert bool(curve.bends.grad.abs().sum() > 0) == (t != 0.0)  # at t = 0 the curve is w0: no gradient


def test_save_and_load_curve(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    curve = _bent(Polychain(torch.randn(20, generator=g), torch.randn(20, generator=g), 2))
    save_curve(tmp_path / "c.pt", curve)
    back = load_curve(tmp_path / "c.pt")
    assert isinstance(back, Polychain) and back.digest() == curve.digest()


# ---------------------------------------------------------------- Garipov's claim on a toy ------------------

DIGITS_MLP = {"name": "mlp", "widths": [16]}
ENDPOINT_RECIPE = Recipe(optimizer="momentum", lr=0.05, batch_size=64, epochs=8, eval_every=8)
CURVE_RECIPE = Recipe(optimizer="momentum", lr=0.05, batch_size=64, epochs=10)


@pytest.fixture(scope="module")
def digits() -> Prepared:
    """The 8x8 digits (1437 train / 360 test), from the checkout's cache when present (read only)."""
    cached = ROOT / "resources"
    resources = cached if (cached / "digits_split0.npz").exists() else "resources"
    return prepare({"name": "digits", "preprocessing": ["normalize"]}, resources=resources)


@pytest.fixture(scope="module")
def modes(digits: Prepared) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """Two independently trained MLPs (different initialisations and data orders)."""
    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        net = build(DIGITS_MLP, digits.input_shape, digits.num_classes)
        fit(net, digits, ENDPOINT_RECIPE, seed=seed)
        nets.append(net)
    return nets[0], flatten(nets[0]), flatten(nets[1])


@pytest.fixture(scope="module")
def trained_curves(digits: Prepared, modes) -> dict[str, Bezier | Polychain]:
    model, w0, w1 = modes
    curves = {}
    for kind in ("bezier", "polychain"):
        curves[kind] = make_curve(kind, w0, w1, 1)
        state = fit_curve(curves[kind], model, digits, CURVE_RECIPE, seed=0)
        assert not state["diverged"] and len(state["history"]) == CURVE_RECIPE.epochs
    return curves


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_trained_curve_has_lower_max_train_loss_than_the_segment(kind: str, digits: Prepared, modes,
                                                                  trained_curves, tmp_path: Path) -> None:
    """Garipov et al.: the segment between two modes crosses a high-loss barrier; a trained curve does not."""
    model, w0, w1 = modes
    curve = trained_curves[kind]
    assert _bits(curve.w0) == _bits(w0) and _bits(curve.w1) == _bits(w1)  # the endpoints never moved
    res = evaluate_along_curve(curve, model, digits, 21, path=tmp_path / "curve.h5")
    m = res.metrics
    assert m["train_loss_max"] < m["segment_train_loss_max"]
    assert m["train_loss_barrier"] < 0.5 * m["segment_train_loss_barrier"]
    assert m["test_err_max"] < m["segment_test_err_max"]
    # the endpoints are the same networks on both paths
    for q in ("train_loss", "train_err", "test_loss", "test_err"):
        assert res.values[q][0] == res.values[f"segment_{q}"][0] and res.values[q][-1] == res.values[f"segment_{q}"][-1]
    assert m["length_ratio"] > 1.0 and m["segment_length_ratio"] == pytest.approx(1.0, rel=1e-5)
    # the file
    back = read_curve_evaluation(tmp_path / "curve.h5")
    np.testing.assert_array_equal(back.t, np.linspace(0, 1, 21))
    for key, arr in res.values.items():
        np.testing.assert_array_equal(back[key], arr)
    assert back.metrics == m and back.attrs["kind"] == kind and back.attrs["bn"] == "recompute"


def test_curve_ensemble_and_disagreement(digits: Prepared, modes, trained_curves) -> None:
    model, w0, w1 = modes
    test = evaluators_for(model, digits, bn="recompute", splits=("test",))["test"]
    single = test.evaluate(w0)
    same = ensemble(member_probabilities(test, [w0, w0, w0]), digits.y_test)
    assert same.err == pytest.approx(single.err, abs=0) and same.member_err == (single.err,) * 3
    p0, p1 = member_probabilities(test, [w0, w1])
    assert disagreement(p0, p0) == 0.0
    assert 0.0 < disagreement(p0, p1) < 0.5
    curve = trained_curves["bezier"]
    res = curve_ensemble(curve, model, digits, [0.0, 0.5, 1.0])
    assert res.size == 3 and res.member_err[0] == pytest.approx(single.err, abs=0)
    assert res.member_err[2] == pytest.approx(test.evaluate(w1).err, abs=0)
    assert 0.0 <= res.err < 0.2 and math.isfinite(res.nll)


# ---------------------------------------------------------------- BN: recomputed statistics at t -----------

BN_NET = {"name": "convnet", "channels": [4, 6], "hidden": [12], "bn": True}


def test_t0_with_recomputed_bn_equals_the_base_model() -> None:
    data = _random_data()
    base, w0, w1 = _endpoints(BN_NET)
    curve = _bent(make_curve("bezier", w0, w1, 1), scale=0.1)
    res = evaluate_along_curve(curve, base, data, 5, chunk=32)
    evs = evaluators_for(base, data, bn="recompute", chunk=32)
    ref = {s: evs[s].evaluate(flatten(base)) for s in ("train", "test")}
    assert (res["train_loss"][0], res["train_err"][0]) == (ref["train"].loss, ref["train"].err)
    assert (res["test_loss"][0], res["test_err"][0]) == (ref["test"].loss, ref["test"].err)
    # stale statistics (here those of the other mode) do not reproduce the base network at t = 0
    other = _net(BN_NET, 2)
    with torch.no_grad():  # give the other network's BN layers non-trivial running statistics
        other.train()(data.x_train)
    stale = PointEvaluator(other.eval(), data.x_train, data.y_train, bn="running", chunk=32).evaluate(curve.point(0.0))
    assert stale.loss != ref["train"].loss


# ---------------------------------------------------------------- resume after a kill ---------------------

RESUME_NET = {"name": "mlp", "widths": [12], "bn": True}
RESUME_RECIPE = Recipe(optimizer="momentum", lr=0.05, batch_size=16, epochs=4, weight_decay=5e-4,
                       schedule={"name": "cosine"})


def _resume_setup() -> tuple[torch.nn.Module, Polychain, Prepared]:
    model, w0, w1 = _endpoints(RESUME_NET)
    return model, make_curve("polychain", w0, w1, 2), _random_data(n_train=90, steps=[("shift", {"pad": 1})])


def test_resume_after_interrupt_gives_bitwise_identical_bends(tmp_path: Path) -> None:
    model, straight, data = _resume_setup()
    state = fit_curve(straight, model, data, RESUME_RECIPE, seed=3)
    assert len(state["history"]) == 4

    class Killed(KeyboardInterrupt):
        pass

    def kill_after_two(epoch: int, row: dict) -> None:
        if epoch == 2:
            raise Killed

    model, interrupted, data = _resume_setup()
    before = torch.get_rng_state()
    with pytest.raises(Killed):
        fit_curve(interrupted, model, data, RESUME_RECIPE, seed=3, ckpt_path=tmp_path / "curve.pt",
                  on_epoch_end=kill_after_two)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left as it was
    model, resumed, data = _resume_setup()  # a fresh process: bends back on the segment
    state2 = fit_curve(resumed, model, data, RESUME_RECIPE, seed=3, ckpt_path=tmp_path / "curve.pt")
    assert _bits(resumed.bends) == _bits(straight.bends)
    assert [r["batch_loss"] for r in state2["history"]] == [r["batch_loss"] for r in state["history"]]
    # a checkpoint of another curve is refused
    other = make_curve("bezier", resumed.w0, resumed.w1, 2)
    with pytest.raises(CurveMismatchError, match="kind"):
        fit_curve(other, model, data, RESUME_RECIPE, seed=3, ckpt_path=tmp_path / "curve.pt")
    with pytest.raises(CurveMismatchError, match="seed"):
        fit_curve(resumed, model, data, RESUME_RECIPE, seed=4, ckpt_path=tmp_path / "curve.pt")


# ---------------------------------------------------------------- metrics ---------------------------------

def test_path_stats_on_known_values() -> None:
    s = path_stats(np.array([1.0, 3.0, 2.0]), np.array([0.0, 1.0, 1.0]))
    assert s == {"min": 1.0, "max": 3.0, "mean": 2.0, "int": 2.25, "barrier": 1.0}
    # arc-length weighting: the long second piece counts three times as much
    assert path_stats(np.array([0.0, 0.0, 2.0]), np.array([0.0, 1.0, 3.0]))["int"] == pytest.approx(0.75)
    pts = [torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0]), torch.tensor([3.0, 5.0])]
    np.testing.assert_allclose(arc_increments(pts), [0.0, 5.0, 1.0])


def test_straight_curve_has_length_ratio_one_and_the_segments_barrier() -> None:
    data = _random_data()
    model, w0, w1 = _endpoints({"name": "mlp", "widths": [8]})
    res = evaluate_along_curve(make_curve("bezier", w0, w1, 1), model, data, 11)  # untrained: the segment
    m = res.metrics
    assert m["length_ratio"] == pytest.approx(1.0, rel=1e-5)
    for q in ("train_loss", "train_err", "test_loss", "test_err"):
        np.testing.assert_allclose(res.values[q], res.values[f"segment_{q}"], rtol=1e-5, atol=1e-6)
        assert m[f"{q}_barrier"] == pytest.approx(m[f"segment_{q}_barrier"], rel=1e-4, abs=1e-6)
        assert m[f"{q}_int"] == pytest.approx(m[f"segment_{q}_int"], rel=1e-4, abs=1e-6)
    with pytest.raises(ValueError):
        evaluate_along_curve(make_curve("bezier", w0, w1, 1), model, data, [0.1, 1.0])


# ---------------------------------------------------------------- the plane -------------------------------

def test_curve_in_its_plane(tmp_path: Path) -> None:
    model, w0, w1 = _endpoints({"name": "mlp", "widths": [6]})
    for kind in ("bezier", "polychain"):
        curve = _bent(make_curve(kind, w0, w1, 1))
        plane = plane_of(curve)
        coords = curve_coordinates(curve, 11, plane)
        assert coords.shape == (11, 2)
        np.testing.assert_allclose(coords[0], [0.0, 0.0], atol=1e-9)
        np.testing.assert_allclose(coords[-1], plane.coordinates[1], rtol=1e-6, atol=1e-6)
        # a one-bend curve lies in the plane: the coordinates give back phi(t)
        for t, (a, b) in zip(np.linspace(0, 1, 11), coords):
            torch.testing.assert_close(plane.span.point(float(a), float(b)), curve.point(float(t)), rtol=0, atol=1e-5)
        if kind == "polychain":
            np.testing.assert_allclose(coords[5], plane.coordinates[2], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="collinear"):
        plane_of(make_curve("bezier", w0, w1, 1))  # untrained: the bend is on the segment
    surface = curve_plane_surface(tmp_path / "plane.h5", evaluators_for(model, _random_data(), splits=("train",)),
                                  curve, n=3, progress=False)
    assert surface.complete and surface["train_loss"].shape == (3, 3)
    np.testing.assert_allclose(surface.extra["point_coordinates"], plane.coordinates)


# ---------------------------------------------------------------- FGE --------------------------------------

def test_cyclic_learning_rate() -> None:
    assert cyclic_lr(0.0, 4, 0.05, 0.001) == 0.05
    assert cyclic_lr(2.0, 4, 0.05, 0.001) == pytest.approx(0.001)
    assert cyclic_lr(1.0, 4, 0.05, 0.001) == pytest.approx(0.0255)
    assert cyclic_lr(3.0, 4, 0.05, 0.001) == pytest.approx(0.0255)
    assert cyclic_lr(4.0, 4, 0.05, 0.001) == 0.05


def test_fge_snapshots_are_deterministic_and_leave_the_model_alone() -> None:
    data = _random_data(n_train=64, steps=[("shift", {"pad": 1})])
    model = _net({"name": "mlp", "widths": [8]}, 0)
    w = flatten(model)
    recipe = Recipe(optimizer="momentum", lr=0.05, batch_size=16, weight_decay=5e-4)
    a = fge_snapshots(model, data, recipe, seed=0, lr1=0.05, lr2=0.001, cycle=2, n_snapshots=3)
    b = fge_snapshots(model, data, recipe, seed=0, lr1=0.05, lr2=0.001, cycle=2, n_snapshots=3)
    assert len(a) == 3 and all(_bits(x) == _bits(y) for x, y in zip(a, b))
    assert _bits(flatten(model)) == _bits(w)
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])
    with pytest.raises(ValueError):
        fge_snapshots(model, data, recipe, seed=0, lr1=0.05, lr2=0.001, cycle=3, n_snapshots=1)


# ---------------------------------------------------------------- the trivial scaling path ----------------

def test_trivial_scaling_path_keeps_labels_and_changes_the_loss(digits: Prepared, modes) -> None:
    model, w, _ = modes
    net = _net({"name": "mlp", "widths": [16, 12]}, 0)  # three linear layers: logits t^3 o(x)
    ev = PointEvaluator(model, digits.x_test, digits.y_test)
    ts = [0.1, 0.3, 0.5, 0.8, 1.0]
    path = scaling_path(model, ts)
    assert _bits(path[-1]) == _bits(w)
    layout = ParamLayout.of(model)
    labels = [functional_call(model, layout.to_dict(v), (digits.x_test,)).argmax(-1) for v in path]
    assert all(torch.equal(lab, labels[-1]) for lab in labels)
    losses = [r.loss for r in ev.evaluate_many(path)]
    assert losses[0] > 2 * losses[-1] and len(set(losses)) == len(losses)
    errs = {r.err for r in ev.evaluate_many(path)}
    assert len(errs) == 1
    x = digits.x_test[:20]
    o = net(x).detach()
    for t, v in zip(ts, scaling_path(net, ts)):
        torch.testing.assert_close(functional_call(net, ParamLayout.of(net).to_dict(v), (x,)), t ** 3 * o,
                                   rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="batch normalisation"):
        scaling_path(_net({"name": "mlp", "widths": [8], "bn": True}, 0), [0.5])
    with pytest.raises(ValueError, match="ReLU"):
        scaling_path(_net({"name": "mlp", "widths": [8], "activation": "tanh"}, 0), [0.5])


def test_trivial_scaling_path_of_a_relu_convnet() -> None:
    """Max/average pooling and convolutions are positively homogeneous too: the logits of a ReLU convnet without
    BN scale as t^n along the path (n = conv + linear layers)."""
    net = _net({"name": "convnet", "channels": [3, 4], "hidden": [6], "pooled_size": 2}, 0)
    exps = scaling_exponents(net)
    assert int(exps.max()) == 4 and exps.numel() == sum(p.numel() for p in net.parameters())
    x = _random_data().x_test[:16]
    o = net(x).detach()
    for t, v in zip((0.2, 0.7, 1.0), scaling_path(net, (0.2, 0.7, 1.0))):
        out = functional_call(net, ParamLayout.of(net).to_dict(v), (x,))
        torch.testing.assert_close(out, t ** 4 * o, rtol=1e-4, atol=1e-7)
        assert torch.equal(out.argmax(-1), o.argmax(-1))
    with pytest.raises(ValueError, match="batch normalisation"):
        scaling_path(_net({"name": "convnet", "channels": [3], "hidden": [], "bn": True}, 0), [0.5])


def test_garipov_learning_rate_schedule() -> None:
    """Garipov et al.'s train.py: lr while (e + 1) / E <= 0.5, linearly to 1% at 0.9, then 1% (per epoch)."""
    lrs = [garipov_lr(0.1, e, 10) for e in range(10)]
    np.testing.assert_allclose(lrs, [0.1] * 5 + [0.1 * (1 - (a - 0.5) / 0.4 * 0.99) for a in (0.6, 0.7, 0.8, 0.9)]
                               + [0.001], rtol=1e-12)
    assert garipov_lr(0.1, 5.7, 10) == garipov_lr(0.1, 5.0, 10)  # constant within an epoch
    assert curve_lr_at({"name": "garipov"}, 0.1, 9.5, 10) == pytest.approx(0.001)
    assert curve_lr_at({"name": "cosine"}, 0.1, 5.0, 10) == pytest.approx(0.05)  # the others: optim.lr_at


def test_segment_evaluation_matches_the_curve_evaluations_segment() -> None:
    data = _random_data()
    model, w0, w1 = _endpoints({"name": "mlp", "widths": [8]})
    both = evaluate_along_curve(_bent(make_curve("polychain", w0, w1, 1)), model, data, 7)
    seg = evaluate_segment(w0, w1, model, data, 7)
    for q in ("train_loss", "train_err", "test_loss", "test_err"):
        np.testing.assert_array_equal(seg.values[q], both.values[f"segment_{q}"])
        assert seg.metrics[f"{q}_barrier"] == both.metrics[f"segment_{q}_barrier"]
    assert seg.metrics["length"] == pytest.approx(float((w1 - w0).norm()), rel=1e-5)
    train_only = evaluate_segment(w0, w1, model, data, 3, splits=("train",))
    assert sorted(train_only.values) == ["train_err", "train_loss"]
