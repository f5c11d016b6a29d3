"""The loss along a Hessian eigenvector: the 1-D surface ``L(theta* + alpha v_k)`` through a model along the unit
eigenvector ``v_k`` of its ``k``-th largest Hessian eigenvalue ``lambda_k``.

PyHessian's example (Yao et al. 2020, ``example_pyhessian_analysis``: "perturb the model along the top
eigenvector and plot the loss") and Li et al. (2018)'s remark that random directions miss the sharpest
direction both draw this line. Near a minimum, ``L(theta* + alpha v_k) ~ L(theta*) + alpha g.v_k +
(lambda_k / 2) alpha^2``: exact for a loss quadratic in the weights (a linear model with the squared loss),
so the line's curvature at ``alpha = 0`` is ``lambda_k``.

Conventions: the eigenpair comes from :func:`losslab.core.hessian.lanczos` (``which="largest"``, seeded) on the
Hessian of :class:`losslab.core.hessian.TrainingLoss` at the model's weights, so the same BN policy and data
define both the Hessian and the line's evaluators. ``v_k`` is unit length in the flat weight space (no filter
normalization: the curvature ``lambda_k`` is per unit of weight) and its sign is fixed by making its entry of
largest magnitude positive. The line is an ordinary 1-D surface file (:func:`losslab.core.surfaces.compute_surface`:
resumable, its spec checked), with ``direction = "hessian_eigenvector"``, ``k``, ``eigenvalue`` and the
Lanczos certificate's ``eigenvalue_residual`` / ``eigenvalue_certified`` among its attributes.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from losslab.core.hessian import Eigenpairs, TrainingLoss, lanczos
from losslab.core.surfaces import AffineSpan, Evaluator, Surface, compute_surface

DIRECTION = "hessian_eigenvector"


def signed_unit(vec: torch.Tensor) -> torch.Tensor:
    """``vec / ||vec||`` with the sign that makes its entry of largest magnitude positive (an eigenvector's sign
    is arbitrary; this one is reproducible)."""
    unit = vec / vec.norm()
    return -unit if unit[int(unit.abs().argmax())] < 0 else unit


def top_eigenpair(loss: TrainingLoss, k: int = 1, *, tol: float = 1e-3, max_iter: int | None = None,
                  seed: int = 0) -> tuple[float, torch.Tensor, Eigenpairs]:
    """``(lambda_k, v_k, eigenpairs)``: the ``k``-th largest eigenvalue of ``loss``'s Hessian at its point, its
    unit eigenvector (:func:`signed_unit`, in the weights' dtype) and the whole Lanczos answer."""
    if k < 1:
        raise ValueError(f"k must be >= 1 (1: the top eigenvector), not {k}")
    if k > loss.dim:
        raise ValueError(f"k={k}: the Hessian has only {loss.dim} eigenvalues")
    pairs = lanczos(loss.hessian(), k, "largest", tol=tol, max_iter=max_iter, seed=seed)
    return float(pairs.values[k - 1]), signed_unit(pairs.vectors[k - 1].double()).to(loss.dtype), pairs


def loss_along_eigenvector(path: str | os.PathLike, loss: TrainingLoss, evaluators: Mapping[str, Evaluator],
                     alphas: Sequence[float] | np.ndarray, *, k: int = 1, tol: float = 1e-3,
                     max_iter: int | None = None, seed: int = 0, provenance: Mapping[str, Any] | None = None,
                     **run: Any) -> Surface:
    """The loss (and accuracy) of every split of ``evaluators`` at ``theta* + alpha v_k`` for ``alpha`` in
    ``alphas``, ``theta*`` = ``loss.point``, ``v_k`` of :func:`top_eigenpair`; written to ``path`` as a 1-D
    surface whose attributes hold ``eigenvalue`` (``lambda_k``) and its certificate. ``run`` takes
    :func:`losslab.core.surfaces.compute_surface`'s options (``tile_rows``, ``progress``, ...)."""
    value, vec, pairs = top_eigenpair(loss, k, tol=tol, max_iter=max_iter, seed=seed)
    info = {"direction": DIRECTION, "norm": "unit", "ignore": "keep", "seed": seed, "k": int(k),
            "eigenvalue": value, "eigenvalue_residual": float(pairs.residuals[k - 1]),
            "eigenvalue_certified": bool(pairs.converged), "lanczos_tol": tol, **dict(provenance or {})}
    return compute_surface(path, evaluators, AffineSpan(loss.point, vec), alphas, provenance=info, **run)
