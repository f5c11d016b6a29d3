"""How many Hessian-vector products do the top-5 Hessian eigenvalues cost? losslab's Lanczos vs PyHessian.

Same model, data and point for both: a small conv net (channels [8, 16], hidden [32]) on 500 normalised
digits images, trained a few epochs with :func:`losslab.train.fit` so that it sits near a minimum (where the
top of the spectrum is what PyHessian is used for; at a random initialisation the spectrum is different and
the comparison would be beside the point). The Hessian is that of the mean cross-entropy over the 500
training samples, BN-free (eval-mode conventions do not matter here).

(a) :func:`losslab.hessian.lanczos` with full reorthogonalisation, top 5, relative tolerance 1e-3 on every
    Ritz pair's residual (``||H y - theta y|| <= 1e-3 |theta|``);
(b) PyHessian's ``hessian.eigenvalues(maxIter=100, tol=1e-3, top_n=5)``, reimplemented here: for each
    eigenvalue in turn, power iteration from a fresh random vector, Gram-Schmidt deflation against the
    eigenvectors already found before every product, stopped when the Rayleigh quotient changes by less
    than ``tol`` relative to the previous one (``|lambda - lambda_prev| / (|lambda_prev| + 1e-6) < tol``)
    or after 100 products.

Prints products, seconds, seconds per eigenvalue, the ratio of products, and both methods' eigenvalues
with their relative errors against a tight Lanczos reference (tol 1e-8). It first times one product by
double backward and by ``torch.func`` (jvp of grad): :data:`losslab.hessian.HVP_METHOD` is the faster.
Not a test: ``python benchmarks/hessian_speed.py``. One thread; the machine is shared, so timings take the
best of interleaved rounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from losslab.data import prepare
from losslab.hessian import Eigenpairs, HessianOperator, TrainingLoss, lanczos
from losslab.models import build, count_parameters
from losslab.train import Recipe, fit
from timing import best_seconds




def power_iteration_deflated(op: HessianOperator, top_n: int, tol: float = 1e-3, max_iter: int = 100,
                             seed: int = 0) -> tuple[list[float], int]:
    """PyHessian's top-``top_n`` eigenvalues: deflated power iteration (see the module doc). Returns the
    eigenvalues and the number of products used."""
    gen = torch.Generator().manual_seed(seed)
    found: list[torch.Tensor] = []
    values: list[float] = []
    products = 0
    for _ in range(top_n):
        v = torch.randn(op.dim, generator=gen, dtype=op.loss.dtype)
        v /= v.norm()
        eigenvalue: float | None = None
        for _ in range(max_iter):
            for u in found:  # deflation: Gram-Schmidt against the eigenvectors already found
                v = v - (v @ u) * u
            v /= v.norm()
            hv = op.matvec(v)
            products += 1
            rayleigh = float(hv @ v)
            v = hv / hv.norm()
            if eigenvalue is not None and abs(eigenvalue - rayleigh) / (abs(eigenvalue) + 1e-6) < tol:
                break
            eigenvalue = rayleigh
        values.append(float(eigenvalue))  # PyHessian keeps the previous quotient when it stops
        found.append(v)
    return values, products


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="training epochs before the measurement")
    parser.add_argument("--k", type=int, default=5, help="top eigenvalues")
    parser.add_argument("--tol", type=float, default=1e-3, help="relative tolerance of both methods")
    parser.add_argument("--chunk", type=int, default=250, help="samples per functional call")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds of one product")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = prepare({"name": "digits", "n_train": 500, "preprocessing": ["normalize"]})
    torch.manual_seed(args.seed)
    model = build({"name": "convnet", "channels": [8, 16], "hidden": [32]}, data.input_shape, data.num_classes)
    state = fit(model, data, Recipe(lr=0.1, batch_size=32, epochs=args.epochs), seed=args.seed)
    model.eval()
    last = state["history"][-1]
    print(f"convnet [8, 16] / [32] ({count_parameters(model)} weights), digits n={len(data.y_train)}, "
          f"trained {args.epochs} epochs (momentum SGD, lr 0.1, batch 32): train loss {last['train_loss']:.4f}, "
          f"acc {last['train_acc']:.3f}; threads {torch.get_num_threads()}, torch {torch.__version__}")

    losses = {m: TrainingLoss(model, data.x_train, data.y_train, chunk=args.chunk, method=m)
              for m in ("double_backward", "jvp")}
    v = torch.randn(losses["jvp"].dim, generator=torch.Generator().manual_seed(1))
    agree = torch.allclose(losses["double_backward"].hvp(v), losses["jvp"].hvp(v), rtol=1e-4, atol=1e-6)
    hvp_s = best_seconds({m: (lambda loss=loss: loss.hvp(v)) for m, loss in losses.items()}, args.rounds)
    print(f"one product: double backward {1e3 * hvp_s['double_backward']:.1f} ms, torch.func jvp(grad) "
          f"{1e3 * hvp_s['jvp']:.1f} ms (best of {args.rounds}; same product: {agree})")

    loss = TrainingLoss(model, data.x_train, data.y_train, chunk=args.chunk)
    op = loss.hessian()
    t0 = time.perf_counter()
    ours: Eigenpairs = lanczos(op, args.k, tol=args.tol, seed=args.seed)
    t_ours = time.perf_counter() - t0
    products_ours = loss.products
    t0 = time.perf_counter()
    theirs, products_theirs = power_iteration_deflated(op, args.k, tol=args.tol, seed=args.seed)
    t_theirs = time.perf_counter() - t0
    reference = lanczos(op, args.k, tol=1e-8, seed=args.seed + 1).values

    def errors(values: np.ndarray | list[float]) -> str:
        return ", ".join(f"{abs(a - b) / abs(b):.1e}" for a, b in zip(values, reference))

    print(f"reference eigenvalues (Lanczos, tol 1e-8): {np.array2string(reference, precision=5)}")
    print(f"(a) losslab Lanczos (full reorth., tol {args.tol:g}): {products_ours:4d} products, {t_ours:6.2f} s, "
          f"{t_ours / args.k:5.2f} s/eigenvalue, converged {ours.converged}; relative errors {errors(ours.values)}")
    print(f"(b) PyHessian power iteration + deflation      : {products_theirs:4d} products, {t_theirs:6.2f} s, "
          f"{t_theirs / args.k:5.2f} s/eigenvalue; relative errors {errors(theirs)}")
    print(f"products (a)/(b) = {products_ours / products_theirs:.3f}  (goal: <= 1/3)")


if __name__ == "__main__":
    main()
