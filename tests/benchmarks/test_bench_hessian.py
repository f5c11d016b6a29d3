"""Hessian-vector products for the top-5 eigenvalues: losslab's Lanczos vs PyHessian's power iteration.

Same model, data and point: a small conv net (channels [8, 16], hidden [32]) on 500 normalised digits,
trained 30 epochs with :func:`losslab.core.trainer.fit` so that it sits near a minimum; the Hessian of the mean
cross-entropy over those 500 samples.

(a) :func:`losslab.core.hessian.lanczos` with full reorthogonalisation, top 5, certified: every Ritz pair's
    residual ``||H y - theta y|| <= 1e-3 |theta|`` for the 5 and a guard band of 5 more, a Krylov space of
    at least 21 vectors, the 5 values stable over the last 10 steps;
(b) PyHessian's ``eigenvalues(maxIter=100, tol=1e-3, top_n=5)``: deflated power iteration, stopped when
    the Rayleigh quotient changes by less than 1e-3 relative (:func:`benchutil.power_iteration_deflated`).

First one product is timed by double backward and by ``torch.func`` (jvp of grad), both recorded:
:data:`losslab.core.hessian.HVP_METHOD` names the faster. Records products and seconds of each and their ratios,
and both methods' largest relative error against a tight Lanczos reference (tol 1e-8). The assertion is on
correctness only: Lanczos's eigenvalues are within its tolerance of the reference.

:func:`test_hvp_vs_plain_double_backward`: ``PRODUCTS`` products at one point (as an iterative method asks for
them) by :class:`losslab.core.hessian.TrainingLoss` with its defaults (``chunk="auto"``: the whole set when its
graph fits ``HVP_MEMORY``; the gradient graph reused across the products), by the same with the former fixed
``chunk=250`` and no reuse, by a plain double backward per product over all samples
(:func:`benchutil.double_backward_hvps`) and by PyHessian's reuse of one ``create_graph`` gradient
(:func:`benchutil.reused_gradient_hvps`); and Gauss-Newton products with their pullbacks kept vs rebuilt per
product. Medians over alternating rounds of the paired ratios of thread time (``losslab_over_plain`` = losslab's
time / the plain double backward's: below 1 losslab is faster).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchutil import (best_seconds, double_backward_hvps, median_ratio, power_iteration_deflated, record,
                       reused_gradient_hvps, round_seconds)
from losslab.core.data import prepare
from losslab.core.hessian import HVP_METHOD, HVP_METHODS, TrainingLoss, lanczos
from losslab.core.models import build, count_parameters
from losslab.core.trainer import Recipe, fit

K, TOL, SEED = 5, 1e-3, 0


def test_top5_eigenvalues_products(benchmark):
    data = prepare({"name": "digits", "n_train": 500, "preprocessing": ["normalize"]})
    torch.manual_seed(SEED)
    model = build({"name": "convnet", "channels": [8, 16], "hidden": [32]}, data.input_shape, data.num_classes)
    fit(model, data, Recipe(lr=0.1, batch_size=32, epochs=30), seed=SEED)
    model.eval()
    per_method = {m: TrainingLoss(model, data.x_train, data.y_train, chunk=250, method=m) for m in HVP_METHODS}
    v = torch.randn(per_method[HVP_METHOD].dim, generator=torch.Generator().manual_seed(1))
    products = [t.hvp(v) for t in per_method.values()]
    torch.testing.assert_close(products[0], products[1], rtol=1e-4, atol=1e-6)
    one = best_seconds({m: (lambda t=t: t.hvp(v)) for m, t in per_method.items()}, 5, time.thread_time)

    loss = TrainingLoss(model, data.x_train, data.y_train, chunk=250)
    op = loss.hessian()

    def ours():
        return lanczos(op, K, tol=TOL, seed=SEED)

    before = loss.products
    t0 = time.thread_time()
    found = ours()
    t_ours, n_ours = time.thread_time() - t0, loss.products - before
    before = loss.products
    t0 = time.thread_time()
    theirs, n_theirs = power_iteration_deflated(op, K, tol=TOL, seed=SEED)
    t_theirs = time.thread_time() - t0
    assert loss.products - before == n_theirs
    reference = lanczos(op, K, tol=1e-8, seed=SEED + 1).values

    err_ours = float(np.max(np.abs(found.values - reference) / np.abs(reference)))
    err_theirs = float(np.max(np.abs(np.asarray(theirs) - reference) / np.abs(reference)))
    assert found.converged and err_ours <= 10 * TOL

    benchmark.pedantic(ours, rounds=1, iterations=1)
    record(benchmark, f"hessian top-{K} ({count_parameters(model)} weights, n={len(data.y_train)}, tol {TOL:g})",
           lanczos_products=n_ours, power_iteration_products=n_theirs, products_ratio=n_ours / n_theirs,
           lanczos_s=t_ours, power_iteration_s=t_theirs, seconds_ratio=t_ours / t_theirs,
           lanczos_max_rel_err=err_ours, power_iteration_max_rel_err=err_theirs,
           **{f"hvp_ms_{m}": 1e3 * t for m, t in one.items()}, hvp_method=HVP_METHOD)


PRODUCTS, HVP_ROUNDS = 10, 7


def test_hvp_vs_plain_double_backward(benchmark):
    torch.set_num_threads(1)
    data = prepare({"name": "digits", "n_train": 512, "preprocessing": ["normalize"]})
    torch.manual_seed(SEED)
    model = build({"name": "convnet", "channels": [8, 16], "hidden": [32]}, data.input_shape,
                  data.num_classes).eval()
    x, y = data.x_train, data.y_train
    ours = TrainingLoss(model, x, y)
    before = TrainingLoss(model, x, y, chunk=250, reuse=False)
    gen = torch.Generator().manual_seed(1)
    vs = [torch.randn(ours.dim, generator=gen) for _ in range(PRODUCTS)]
    w = ours.point

    def losslab_default():
        ours.release()  # each round starts at a new point: the graph is built once, then reused
        op = ours.hessian(w)
        return [op.matvec(v) for v in vs]

    def losslab_chunk250():
        op = before.hessian(w)
        return [op.matvec(v) for v in vs]

    def plain():
        return double_backward_hvps(model, x, y, w, vs)

    def pyhessian():
        return reused_gradient_hvps(model, x, y, w, vs)

    fns = {"losslab": losslab_default, "losslab_chunk250": losslab_chunk250, "plain": plain, "pyhessian": pyhessian}
    results = {k: f() for k, f in fns.items()}
    for k in fns:
        for a, b in zip(results[k], results["plain"]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    gn_fresh = TrainingLoss(model, x, y, reuse=False)

    def gauss_newton():
        ours.release()
        op = ours.gauss_newton(w)
        return [op.matvec(v) for v in vs]

    def gauss_newton_fresh():
        op = gn_fresh.gauss_newton(w)
        return [op.matvec(v) for v in vs]

    for a, b in zip(gauss_newton(), gauss_newton_fresh()):
        assert torch.equal(a, b)
    fns.update(gauss_newton=gauss_newton, gauss_newton_fresh=gauss_newton_fresh)
    times = round_seconds(fns, HVP_ROUNDS, time.thread_time)
    ms = {k: 1e3 * float(np.median(t)) / PRODUCTS for k, t in times.items()}
    benchmark.pedantic(losslab_default, rounds=1, iterations=1)
    record(benchmark, f"hvp ({count_parameters(model)} weights, n={len(y)}, {PRODUCTS} products at one point, "
                      f"{HVP_ROUNDS} rounds; losslab chunk {ours.chunk})",
           **{f"ms_per_product_{k}": v for k, v in ms.items()},
           losslab_over_plain=median_ratio(times, "losslab", "plain"),
           losslab_over_pyhessian=median_ratio(times, "losslab", "pyhessian"),
           chunk250_over_plain=median_ratio(times, "losslab_chunk250", "plain"),
           gauss_newton_kept_over_fresh=median_ratio(times, "gauss_newton", "gauss_newton_fresh"))
