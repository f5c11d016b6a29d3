"""Curvature tools (losslab.core.hessian) checked against the exact Hessian of tiny float64 nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.core.hessian import (DenseOperator, TrainingLoss, eigenvalue_ratio_surface, epsilon_sharpness,
    hutchinson_trace, lanczos, slq_density)
from losslab.core.models import build
from losslab.core.weights import PointEvaluator
from losslab.core.surfaces import AffineSpan, SurfaceMismatchError, journal_path, read_surface

SHAPE = (1, 4, 4)
N_CLASSES = 3


def _data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, *SHAPE, generator=g, dtype=torch.float64),
            torch.randint(0, N_CLASSES, (n,), generator=g))


def _mlp(activation: str = "tanh", widths: tuple[int, ...] = (8,), seed: int = 0) -> torch.nn.Module:
    """16 inputs, 8 hidden, 3 classes: 163 weights."""
    torch.manual_seed(seed)
    return build({"name": "mlp", "widths": list(widths), "activation": activation}, SHAPE, N_CLASSES).double()


@pytest.fixture(scope="module")
def tiny() -> tuple[TrainingLoss, torch.Tensor, torch.Tensor]:
    """The mean cross-entropy of a tanh MLP over 40 samples (3 chunks), its exact Hessian and spectrum."""
    x, y = _data()
    loss = TrainingLoss(_mlp(), x, y, chunk=16)
    h = loss.hessian_matrix()
    return loss, h, torch.linalg.eigvalsh(h)


# ---------------------------------------------------------------- the loss and its products ---------------

@pytest.mark.parametrize("method", ["double_backward", "jvp"])
def test_hvp_equals_exact_hessian_times_v(tiny, method: str) -> None:
    ref, h, _ = tiny
    x, y = _data()
    loss = TrainingLoss(_mlp(), x, y, chunk=16, method=method)
    assert loss.dim == 163 and torch.allclose(h, h.T, atol=1e-12)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(loss.dim, generator=g, dtype=torch.float64)
        assert torch.allclose(loss.hvp(v), h @ v, rtol=1e-9, atol=1e-12)
    assert loss.products == 3
    # at another point, through the operator
    w = loss.point + 0.1 * torch.randn(loss.dim, generator=g, dtype=torch.float64)
    v = torch.randn(loss.dim, generator=g, dtype=torch.float64)
    assert torch.allclose(loss.hessian(w).matvec(v), loss.hessian_matrix(w) @ v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bn", ["running", "batch"])
def test_reused_gradient_graph_gives_the_same_products_bitwise(bn: str) -> None:
    """Products at one point reuse one gradient graph (PyHessian's approach): the bits of building it anew for
    every product, and the exact Hessian's values; a new point builds a new graph; memory=0 turns reuse off."""
    x, y = _data()
    torch.manual_seed(0)
    net = (build({"name": "convnet", "channels": [2, 4], "hidden": [8], "bn": True}, SHAPE, N_CLASSES).double()
           if bn == "batch" else _mlp())
    kept = TrainingLoss(net, x, y, chunk=16, bn=bn)
    fresh = TrainingLoss(net, x, y, chunk=16, bn=bn, reuse=False)
    tight = TrainingLoss(net, x, y, chunk=16, bn=bn, memory=0)
    g = torch.Generator().manual_seed(3)
    vs = [torch.randn(kept.dim, generator=g, dtype=kept.dtype) for _ in range(3)]
    w = kept.point + 0.05 * torch.randn(kept.dim, generator=g, dtype=kept.dtype)
    for point in (None, w):
        for v in vs:
            a, b, c = kept.hvp(v, point), fresh.hvp(v, point), tight.hvp(v, point)
            assert torch.equal(a, b) and torch.equal(a, c)
    assert (kept.graphs, fresh.graphs, tight.graphs) == (2, 0, 0) and kept.products == 6
    if bn == "running":
        h = kept.hessian_matrix(w)
        assert torch.allclose(kept.hessian(w).matvec(vs[0]), h @ vs[0], rtol=1e-9, atol=1e-12)
        assert kept.graphs == 2  # the operator at w found the kept graph
    kept.release()
    kept.hvp(vs[0], w)
    assert kept.graphs == 3
    for point in (None, w):  # the Gauss-Newton products keep their pullbacks the same way
        for v in vs:
            a, b, c = kept.gnvp(v, point), fresh.gnvp(v, point), tight.gnvp(v, point)
            assert torch.equal(a, b) and torch.equal(a, c)
    assert (kept.graphs, fresh.graphs, tight.graphs) == (5, 0, 0)


def test_auto_chunk_is_the_largest_whose_graph_fits_the_memory() -> None:
    x, y = _data()
    whole = TrainingLoss(_mlp(), x, y)  # the default memory: the 40 samples fit in one chunk
    per_sample, constant = whole.graph_bytes
    assert whole.chunk == 40 and per_sample > 0
    budget = constant + 10 * per_sample
    assert TrainingLoss(_mlp(), x, y, memory=budget).chunk == 10
    assert TrainingLoss(_mlp(), x, y, memory=0).chunk == 1
    ref = TrainingLoss(_mlp(), x, y, chunk=16)
    v = torch.randn(ref.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(whole.hvp(v), ref.hvp(v), rtol=1e-12, atol=1e-15)
    for bad in (0, -1, "big", 2.5):
        with pytest.raises(ValueError, match=r"chunk must be a number of samples >= 1 or 'auto'"):
            TrainingLoss(_mlp(), x, y, chunk=bad)


@pytest.mark.parametrize("criterion", ["ce", "mse"])
def test_gauss_newton_is_jt_h_j_and_the_hessian_of_a_linear_model(criterion: str) -> None:
    x, y = _data()
    # the MLP: G = (1/n) sum_i J_i^T H_i J_i from explicit Jacobians, + wd I; symmetric positive semi-definite
    loss = TrainingLoss(_mlp(), x, y, loss=criterion, chunk=16, weight_decay=0.01)
    g = loss.gauss_newton().matrix()
    ev = PointEvaluator(_mlp(), x, y, loss=criterion)
    w = loss.point

    def outputs(u: torch.Tensor) -> torch.Tensor:
        return ev.apply(u, lambda net: net(x), ev.buffers_at(w))

    jac = torch.func.jacrev(outputs)(w)                                  # (n, C, dim)
    z = outputs(w).detach()
    h_out = torch.stack([torch.func.hessian(lambda zi, i=i: ev.criterion(zi[None], y[i:i + 1]).sum())(z[i])
                         for i in range(len(y))])
    explicit = torch.einsum("ncp,ncd,ndq->pq", jac, h_out, jac) / len(y) + 0.01 * torch.eye(loss.dim, dtype=w.dtype)
    assert torch.allclose(g, explicit, rtol=1e-9, atol=1e-12) and torch.allclose(g, g.T, atol=1e-12)
    assert float(torch.linalg.eigvalsh(g).min()) >= 0.01 - 1e-9
    assert not torch.allclose(g, loss.hessian_matrix(), atol=1e-3)  # the tanh net's residual term is not zero
    # a linear model's outputs have no curvature in the weights: G is its Hessian, exactly
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, N_CLASSES)).double()
    lin_loss = TrainingLoss(lin, x, y, loss=criterion, chunk=16)
    assert torch.allclose(lin_loss.gauss_newton().matrix(), lin_loss.hessian_matrix(), rtol=1e-9, atol=1e-12)


def test_value_and_gradient_match_the_evaluator_and_autograd(tiny) -> None:
    loss, _, _ = tiny
    model, (x, y) = _mlp(), _data()
    assert loss.value() == pytest.approx(PointEvaluator(model, x, y).evaluate(loss.point).loss, rel=1e-12)
    value, grad = loss.value_and_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert value == pytest.approx(loss.value(), rel=1e-12)
    assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-12)


def test_weight_decay_adds_wd_times_identity(tiny) -> None:
    plain, h, _ = tiny
    wd = 0.03
    x, y = _data()
    decayed = TrainingLoss(_mlp(), x, y, chunk=16, weight_decay=wd)
    assert torch.allclose(decayed.hessian_matrix() - h, wd * torch.eye(plain.dim, dtype=torch.float64), atol=1e-12)
    v = torch.randn(plain.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert torch.allclose(decayed.hvp(v) - plain.hvp(v), wd * v, atol=1e-12)
    w = plain.point
    (f0, g0), (f1, g1) = plain.value_and_grad(), decayed.value_and_grad()
    assert f1 - f0 == pytest.approx(0.5 * wd * float(w @ w), rel=1e-10)
    assert torch.allclose(g1 - g0, wd * w, atol=1e-12)


def test_batchnorm_model_in_eval_mode_is_not_mutated() -> None:
    torch.manual_seed(0)
    model = build({"name": "convnet", "channels": [2, 4], "hidden": [8], "bn": True}, (1, 6, 6), 5).double()
    x = torch.randn(24, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    y = torch.randint(0, 5, (24,), generator=torch.Generator().manual_seed(4))
    model.train()
    with torch.no_grad():
        model(2 * x + 0.5)  # running statistics that are not the defaults
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)

    running = TrainingLoss(model, x, y, chunk=12)  # the default: eval mode, the running statistics
    assert running.bn == "running"
    assert torch.allclose(running.hvp(v), running.hessian_matrix() @ v, rtol=1e-9, atol=1e-12)
    batch = TrainingLoss(model, x, y, chunk=12, bn="batch")  # differentiated through the batch statistics
    step = 1e-5
    grad_at = lambda w: batch.value_and_grad(w)[1]  # noqa: E731
    fd = (grad_at(batch.point + step * v) - grad_at(batch.point - step * v)) / (2 * step)
    hv = batch.hvp(v)
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-7) and not torch.allclose(hv, running.hvp(v), atol=1e-3)

    after = model.state_dict()
    assert not model.training and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


# ---------------------------------------------------------------- Lanczos ---------------------------------

def test_lanczos_top5_match_the_exact_hessian(tiny) -> None:
    loss, h, eig = tiny
    tol = 1e-4
    result = lanczos(loss.hessian(), 5, tol=tol)
    exact = eig.flip(0)[:5].numpy()
    assert result.converged and result.products < loss.dim
    assert np.all(np.abs(result.values - exact) <= tol * np.abs(exact))
    # Rayleigh quotients and residuals of the returned vectors
    vecs = result.vectors
    assert torch.allclose(vecs @ vecs.T, torch.eye(5, dtype=torch.float64), atol=1e-10)
    for lam, v, res in zip(result.values, vecs, result.residuals):
        hv = h @ v
        assert float(v @ hv) / float(v @ v) == pytest.approx(lam, rel=1e-8)
        assert float((hv - lam * v).norm()) <= tol * abs(lam)
        assert float((hv - lam * v).norm()) == pytest.approx(res, rel=1e-3, abs=1e-10)


def test_lanczos_smallest_and_both_ends(tiny) -> None:
    loss, _, eig = tiny
    assert eig[0] < 0  # the tiny net is not at a minimum: negative curvature
    smallest = lanczos(loss.hessian(), 1, "smallest", tol=1e-4)
    assert smallest.converged and smallest.values[0] == pytest.approx(float(eig[0]), rel=1e-4)
    both = lanczos(loss.hessian(), 1, "both", tol=1e-4, relative_to="norm")
    assert both.values == pytest.approx([float(eig[-1]), float(eig[0])], abs=1e-4 * float(eig.abs().max()))


def test_lanczos_on_a_dense_matrix_with_a_known_spectrum() -> None:
    g = torch.Generator().manual_seed(6)
    q, _ = torch.linalg.qr(torch.randn(60, 60, generator=g, dtype=torch.float64))
    spectrum = torch.cat([torch.tensor([10.0, 7.0, -3.0], dtype=torch.float64), torch.linspace(-1, 1, 57).double()])
    op = DenseOperator(q @ torch.diag(spectrum) @ q.T)
    top = lanczos(op, 2, tol=1e-8)
    assert top.values == pytest.approx([10.0, 7.0], rel=1e-8)
    assert lanczos(op, 1, "smallest", tol=1e-8).values == pytest.approx([-3.0], rel=1e-8)
    capped = lanczos(op, 1, "smallest", tol=1e-14, max_iter=3)
    assert not capped.converged and capped.products == 3


@pytest.fixture(scope="module")
def trained_bulk():
    """A 64-16-3 MLP trained to a minimum of 300 digits (3 classes), in float64: its Hessian has a dominant
    outlier, a dense bulk of small positive eigenvalues and a large near-null space (1091 weights), the
    spectrum on which a residual-only stop rule returns bulk Ritz values in place of larger eigenvalues.
    Returns the loss on all 300 samples, its exact spectrum (descending), the model and the data."""
    from losslab.core.data import prepare
    from losslab.core.trainer import Recipe, fit

    data = prepare({"name": "digits", "n_train": 300, "classes": [0, 1, 2], "preprocessing": ["normalize"]})
    torch.manual_seed(0)
    model = build({"name": "mlp", "widths": [16]}, data.input_shape, data.num_classes)
    fit(model, data, Recipe(optimizer="momentum", lr=0.05, momentum=0.9, batch_size=32, epochs=20), seed=0)
    loss = TrainingLoss(model.double(), data.x_train.double(), data.y_train)
    return loss, torch.linalg.eigvalsh(loss.hessian_matrix()).flip(0).numpy(), model, data


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lanczos_top20_of_a_dense_bulk_are_the_top20(trained_bulk, seed: int) -> None:
    """The smoke setting (top 20, tol 1e-3 of the spectral radius): every returned value is the matching
    eigenvalue of the exact Hessian to its tolerance, in fact to 1e-6 of lambda_max. The stop rule before
    the guard band returned converged lists 8e-4 to 4e-3 of lambda_max off (bulk values in place of larger
    ones)."""
    loss, exact, _, _ = trained_bulk
    assert exact[0] > 20 * exact[19] > 0  # a dominant outlier above a bulk
    top = lanczos(loss.hessian(), 20, tol=1e-3, relative_to="norm", seed=seed)
    assert top.converged and top.certified.all() and top.reason == ""
    err = np.abs(top.values - exact[:20])
    assert np.all(err <= top.tolerances)
    assert err.max() <= 1e-6 * exact[0]
    assert np.all(top.residuals <= top.tolerances) and np.all(top.errors <= top.residuals)


def _planted(seed: int) -> tuple[DenseOperator, np.ndarray]:
    """A random symmetric matrix with a planted spectrum: 1-5 outliers in [0.2, 1], 10-40 bulk values of
    1e-3 to 1e-2 (a fifth of them negative) and a near-null rest, in a random basis."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(60, 300))
    n_out, n_bulk = int(rng.integers(1, 6)), int(rng.integers(10, 40))
    bulk = rng.uniform(1e-3, 1e-2, n_bulk) * rng.choice([1.0, -0.3], n_bulk, p=[0.8, 0.2])
    spectrum = np.concatenate([rng.uniform(0.2, 1.0, n_out), bulk, rng.normal(0, 1e-7, n - n_out - n_bulk)])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(spectrum) @ q.T
    return DenseOperator(torch.from_numpy((a + a.T) / 2)), np.linalg.eigvalsh((a + a.T) / 2)


def test_lanczos_top_k_equals_eigvalsh_on_random_planted_spectra() -> None:
    """Property: on 40 random problems (random k of 1-11, both ends) a certified answer is eigvalsh's k
    extreme values, each to its tolerance (the residual-only rule failed 56 of these 80 cases)."""
    for seed in range(40):
        op, exact = _planted(seed)
        k = int(np.random.default_rng(seed + 100).integers(1, 12))
        for which, ref in (("largest", exact[::-1][:k]), ("smallest", exact[:k])):
            r = lanczos(op, k, which, tol=1e-3, relative_to="norm", seed=seed)
            assert r.converged, (seed, which, r.reason)
            assert np.all(np.abs(r.values - ref) <= r.tolerances), (seed, which)


def test_lanczos_not_certified_says_why_and_per_value() -> None:
    op, _ = _planted(3)
    capped = lanczos(op, 5, tol=1e-3, relative_to="norm", max_iter=8)
    assert not capped.converged and capped.products == 8
    assert capped.reason and not capped.certified.all()
    record = capped.certificate()
    assert record["converged"] is False and len(record["residuals"]) == 5 and record["reason"] == capped.reason


def test_lanczos_whole_space_is_certified_by_residuals() -> None:
    """Once the Krylov space is the whole space the Ritz values are the eigenvalues."""
    spectrum = torch.tensor([3.0, 1.0, 0.5, -0.25, 1e-9], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    r = lanczos(DenseOperator(q @ torch.diag(spectrum) @ q.T), 3, tol=1e-10)
    assert r.converged and r.products == 5
    assert r.values == pytest.approx([3.0, 1.0, 0.5], abs=1e-12)


# ---------------------------------------------------------------- trace and density -----------------------

@pytest.fixture(scope="module")
def squared() -> tuple[TrainingLoss, torch.Tensor]:
    """The squared loss of a ReLU MLP: its Hessian's diagonal dominates enough for few-% trace estimates."""
    x, y = _data()
    loss = TrainingLoss(_mlp("relu"), x, y, loss="mse", chunk=40)
    return loss, loss.hessian_matrix()


def test_hutchinson_trace_converges_to_the_exact_trace(squared) -> None:
    loss, h = squared
    trace = float(h.trace())
    estimate = hutchinson_trace(loss.hessian(), 500, seed=0)
    assert len(estimate.samples) == 500 and loss.products >= 500
    assert abs(estimate.value - trace) <= 0.05 * trace
    assert abs(estimate.value - trace) <= 3 * estimate.stderr
    assert estimate.stderr < hutchinson_trace(loss.hessian(), 50, seed=0).stderr


def test_slq_density_integrates_to_one_and_its_mean_estimates_trace_over_n(squared) -> None:
    loss, h = squared
    eig = torch.linalg.eigvalsh(h)
    runs = 30
    density = slq_density(loss.hessian(), n_runs=runs, n_steps=12, seed=3)
    assert density.products == runs * 12 and len(density.nodes) == runs
    assert all(w.sum() == pytest.approx(1.0, rel=1e-10) for w in density.weights)
    assert np.trapezoid(density.density, density.grid) == pytest.approx(1.0, abs=1e-3)
    assert np.trapezoid(density.grid * density.density, density.grid) == pytest.approx(density.mean, abs=1e-6)
    # the mean is Hutchinson's estimator with the same Rademacher probes, divided by n
    same_probes = hutchinson_trace(loss.hessian(), runs, seed=3)
    assert density.mean * loss.dim == pytest.approx(same_probes.value, rel=1e-9)
    assert density.mean == pytest.approx(float(h.trace()) / loss.dim, rel=0.15)
    # the extreme nodes converge to the extreme eigenvalues, and no node lies outside the spectrum
    nodes = np.concatenate(density.nodes)
    assert nodes.max() == pytest.approx(float(eig[-1]), rel=1e-3)
    assert nodes.min() >= float(eig[0]) - 1e-9 and nodes.max() <= float(eig[-1]) + 1e-9


# ---------------------------------------------------------------- epsilon-sharpness -----------------------

def test_epsilon_sharpness_is_nonnegative_vanishes_for_small_eps_and_grows(tiny) -> None:
    loss, _, _ = tiny
    values = [epsilon_sharpness(loss, eps).value for eps in (1e-9, 1e-4, 5e-4, 1e-3, 1e-2)]
    assert all(v >= 0 for v in values)
    assert values[0] < 1e-5
    assert all(a < b for a, b in zip(values, values[1:]))


def _least_squares(scale: float) -> tuple[TrainingLoss, torch.Tensor]:
    """A linear model under the squared loss on inputs ``scale * x`` (curvature ``scale^2``), at the point
    whose predictions are the same for every scale: near the least-squares solution, not exactly on it."""
    x, y = _data(60, seed=7)
    feats = torch.cat([x.reshape(len(x), -1), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    target = torch.nn.functional.one_hot(y, N_CLASSES).double()
    sol = torch.linalg.lstsq(feats, target).solution.T  # (classes, 17): weights | bias
    sol = sol + 0.05 * torch.randn(sol.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    model = _mlp(widths=())
    loss = TrainingLoss(model, scale * x, y, loss="mse")
    return loss, loss.layout.cat([sol[:, :-1] / scale, sol[:, -1]])


def test_epsilon_sharpness_is_larger_for_a_sharper_quadratic() -> None:
    (flat, w_flat), (sharp, w_sharp) = _least_squares(1.0), _least_squares(4.0)
    assert flat.value(w_flat) == pytest.approx(sharp.value(w_sharp), rel=1e-10)  # the same f(x)
    for eps in (5e-4, 1e-3):
        phi_flat, phi_sharp = epsilon_sharpness(flat, eps, w_flat), epsilon_sharpness(sharp, eps, w_sharp)
        assert phi_sharp.value > 2 * phi_flat.value > 0


def test_subspace_sharpness_respects_the_box(tiny) -> None:
    loss, _, _ = tiny
    p, eps = 10, 1e-3
    result = epsilon_sharpness(loss, eps, subspace_dim=p, seed=4)
    a = torch.randn(loss.dim, p, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    half = eps * ((torch.linalg.pinv(a) @ loss.point).abs() + 1)
    assert result.subspace_dim == p and result.y.shape == (p,)
    assert np.allclose(result.half_widths, half.numpy())
    assert np.all(np.abs(result.y) <= result.half_widths * (1 + 1e-12))
    assert result.value >= 0
    assert result.max_loss == pytest.approx(loss.value(loss.point + a @ torch.from_numpy(result.y)))
    assert epsilon_sharpness(loss, eps, subspace_dim=p, seed=4).value == result.value  # seeded


def test_sharpness_multistart_beats_keskars_ten_iterations_at_a_trained_point(trained_bulk) -> None:
    """At a well-trained point the gradient is tiny and L-BFGS-B from y = 0 (Keskar's 10 iterations) barely
    leaves the centre: the sign-gradient corner of the box alone has a higher loss. The multistart maximum is
    at least that corner's loss, names the start that won, and counts its evaluations."""
    loss, _, _, _ = trained_bulk
    eps = 1e-3
    keskar = epsilon_sharpness(loss, eps, method="keskar", maxiter=10)
    multi = epsilon_sharpness(loss, eps, maxiter=10)
    x = loss.point.double()
    _, g = loss.value_and_grad(x)
    corner = x + torch.from_numpy(keskar.half_widths) * torch.where(g >= 0, 1.0, -1.0).double()
    f_corner = loss.value(corner)
    assert keskar.max_loss < f_corner  # the paper's setting misses the maximum
    assert multi.max_loss >= f_corner and multi.value > 1.2 * keskar.value
    assert multi.start in multi.starts and multi.starts[multi.start] == multi.max_loss
    assert set(multi.starts) == {"zero", "sign_gradient", "random_corner0", "random_corner1"}
    assert multi.evaluations > keskar.evaluations and multi.method == "multistart" and keskar.start == "zero"
    assert np.all(np.abs(multi.y) <= multi.half_widths * (1 + 1e-12))
    assert multi.max_loss == pytest.approx(loss.value(x + torch.from_numpy(multi.y)), rel=1e-12)


def test_sharpness_keskar_method_is_the_single_run_from_the_centre(tiny) -> None:
    loss, _, _ = tiny
    r = epsilon_sharpness(loss, 1e-3, method="keskar", maxiter=10)
    assert r.starts is not None and list(r.starts) == ["zero"] and r.start == "zero"
    with pytest.raises(ValueError, match="unknown sharpness method"):
        epsilon_sharpness(loss, 1e-3, method="sam")


# ---------------------------------------------------------------- the ratio map ---------------------------

def test_eigenvalue_ratio_surface_matches_exact_and_resumes(tiny, tmp_path: Path) -> None:
    x, y = _data()
    loss = TrainingLoss(_mlp(), x, y, chunk=40)
    g = torch.Generator().manual_seed(9)
    span = AffineSpan(loss.point, *(0.3 * torch.randn(2, loss.dim, generator=g, dtype=torch.float64)))
    xs, ys = [-1.0, 1.0], [0.0, 0.5]
    target = tmp_path / "ratio.h5"
    tol = 1e-4

    shard = eigenvalue_ratio_surface(target, loss, span, xs, ys, tol=tol, tiles=[0], progress=False)
    assert shard.done.tolist() == [True, False] and np.isnan(shard["ratio"][1]).all()
    first = loss.products
    surface = eigenvalue_ratio_surface(target, loss, span, xs, ys, tol=tol, progress=False)
    assert surface.complete and not journal_path(target).exists()
    assert loss.products - first == int(surface["products"][1].sum())  # only the missing tile was computed

    stored = read_surface(target)
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            eig = torch.linalg.eigvalsh(loss.hessian_matrix(span.point(a, b)))
            radius = float(eig.abs().max())
            assert stored["lambda_max"][i, j] == pytest.approx(float(eig[-1]), abs=tol * radius)
            assert stored["lambda_min"][i, j] == pytest.approx(float(eig[0]), abs=tol * radius)
            assert stored["ratio"][i, j] == pytest.approx(abs(float(eig[0]) / float(eig[-1])), abs=3 * tol)
    with pytest.raises(SurfaceMismatchError):
        eigenvalue_ratio_surface(target, loss, span, xs, ys, tol=1e-3, progress=False)


def test_both_ends_find_a_negative_end_far_below_the_bulk() -> None:
    """The shape of a no-skip ResNet's Hessian on a few samples (lambda_max 100, lambda_min -3.27, a bulk of
    small negative values and a large null space): with tolerances relative to each value the negative end is
    found from every start; a rule relative to the spectral radius stopped after 3-6 products at -0.11 or
    +0.03 from some starts."""
    rng = np.random.default_rng(0)
    n = 400
    spectrum = np.concatenate([[100.0, 50.0, 20.0], rng.uniform(0.01, 1.0, 30), [-3.27, -1.0, -0.5],
                               rng.uniform(-0.07, 0, 40)])
    spectrum = np.concatenate([spectrum, rng.normal(0, 1e-8, n - len(spectrum))])
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = q @ np.diag(spectrum) @ q.T
    op = DenseOperator(torch.from_numpy((a + a.T) / 2))
    for seed in range(5):
        ends = lanczos(op, 1, "both", tol=1e-2, relative_to="eigenvalue", floor=1e-3, seed=seed)
        assert ends.converged
        assert ends.values == pytest.approx([100.0, -3.27], rel=1e-2)


def test_ratio_map_lambda_min_to_its_own_tolerance(trained_bulk, tmp_path: Path) -> None:
    """A trained MLP's Hessian on 8 samples around its minimum: lambda_min is ~2% of lambda_max and sits
    below a bulk. Every cell's lambda_min is the exact one to tol relative to itself, and certified (the rule
    relative to the spectral radius was 1.6% off at the centre with tol 1e-2)."""
    _, _, model, data = trained_bulk
    loss = TrainingLoss(model, data.x_train.double()[:8], data.y_train[:8])
    g = torch.Generator().manual_seed(1)
    d = torch.randn(2, loss.dim, generator=g, dtype=torch.float64)
    span = AffineSpan(loss.point, *(0.5 * d * loss.point.norm() / d.norm(dim=1, keepdim=True)))
    xs, ys, tol = [0.0, 1.0], [0.0], 1e-2
    m = eigenvalue_ratio_surface(tmp_path / "ratio.h5", loss, span, xs, ys, tol=tol, progress=False)
    assert np.all(m["certified"] == 1)
    for i, a in enumerate(xs):
        eig = torch.linalg.eigvalsh(loss.hessian_matrix(span.point(a, 0.0))).numpy()
        assert eig[0] < -0.01 * eig[-1]
        assert m["lambda_min"][i, 0] == pytest.approx(eig[0], rel=tol)
        assert m["lambda_max"][i, 0] == pytest.approx(eig[-1], rel=tol)
        assert m["ratio"][i, 0] == pytest.approx(abs(eig[0] / eig[-1]), rel=2 * tol)
