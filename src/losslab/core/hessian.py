"""Curvature of the training loss: Hessian-vector products, extreme eigenvalues, spectral density, trace,
epsilon-sharpness, and maps of the eigenvalue ratio over a plane.

Everything is computed through the functional view of :mod:`losslab.core.weights`: the model is never rewritten,
and :class:`TrainingLoss` evaluates the mean loss

    ``L(w) = (1/n) sum_i l(f(x_i; w), y_i) + (wd/2) ||w||^2``

of a stated dataset ``(x, y)`` at any flat weight vector ``w`` (chunk by chunk, one
``torch.func.functional_call`` of a private copy of the network per chunk), with its gradient, its
Hessian-vector products ``H v`` ("Pearlmutter's trick": the directional derivative of the gradient, here by
double backward) and, for tiny nets, its exact Hessian (``torch.func.hessian``). :meth:`TrainingLoss.hessian`
is the linear operator ``v -> H(w) v`` at one point; every iterative method below takes such an operator
(:class:`SymmetricOperator`) and counts the products it uses.

Batch normalisation: ``bn`` is :class:`losslab.core.weights.PointEvaluator`'s policy. The default ``running`` is
eval mode with the model's running statistics, as PyHessian (``model.eval()``) and Li et al.'s
``plot_hessian_eigen.py`` do: the Hessian is that of the loss the evaluated network computes, with the
statistics constants. ``recompute`` takes fresh statistics at each point (a train-mode pass over the
``recompute_data``) and also holds them constant; ``batch`` normalises each chunk by its own statistics and
differentiates through them (the train-mode loss for batches of ``chunk`` samples).

The methods:

* :func:`lanczos`: the Lanczos iteration with full reorthogonalisation for the ``k`` largest and/or
  smallest eigenvalues and their Ritz vectors, stopped when the wanted Ritz pairs and a guard band of the
  next ones have residuals ``||H y - theta y|| = beta_m |s_m|`` within tolerance, the Krylov space is at
  least ``2 (k + guard) + 1`` and the wanted values have stopped moving (certified: see its doc);
* :func:`slq_density`: stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019; Yao et al.'s
  PyHessian): "the Gaussian quadrature nodes and weights ``(theta_i, tau_i)`` of ``m`` Lanczos steps from a
  random start approximate the spectral density, smoothed by a Gaussian kernel", averaged over starts;
* :func:`hutchinson_trace`: ``tr(H) = E[z^T H z]`` over Rademacher probes ``z``;
* :func:`epsilon_sharpness`: Keskar et al. (2017)'s Metric 2.1, maximised by L-BFGS-B from the centre, the
  sign-gradient corner and random corners of the box (or, as the paper, from the centre alone);
* :func:`eigenvalue_ratio_surface`: Li et al. (2018)'s map of ``|lambda_min / lambda_max|`` over a 2-D span
  (their Fig. 7), tiled, resumable and mergeable like :func:`losslab.core.surfaces.compute_surface`.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import scipy.linalg
import scipy.optimize
import torch
import torch.func
from torch import nn

from losslab.core.progress import Progress, track
from losslab.core.weights import ParamLayout, PointEvaluator, TensorDict, chunks, flatten
from losslab.core.surfaces import AffineSpan, Surface, as_coordinates, compute_grid

log = logging.getLogger(__name__)

HVP_METHODS = ("double_backward", "jvp")
# Measured with tests/benchmarks/test_bench_hessian.py (convnet [8, 16] / [32], 2122 weights, 500 digits,
# chunk 250, one thread, torch 2.14 CPU, best of 5): double backward 10.1 ms a product, torch.func jvp of grad
# 14.0 ms; over three seeds and machine loads the jvp was 1.4-1.55x slower.
HVP_METHOD = "double_backward"
# The memory an autograd graph of Hessian-vector products may hold (bytes): ``chunk="auto"`` takes the largest
# chunk whose graph fits it (the whole sample set when it does), and the double-backward products at one point
# reuse their gradient graph (PyHessian's one ``create_graph`` gradient) when the graphs of all chunks fit it
# together. 512 MiB: a quarter of the smallest per-job memory of the scales (smoke, 2000 MB).
HVP_MEMORY = 512 << 20
WHICH = ("largest", "smallest", "both")
RELATIVE_TO = ("eigenvalue", "norm")
DEFAULT_MAX_ITER = 300


# ---------------------------------------------------------------- operators -------------------------------

class SymmetricOperator(Protocol):
    """What the iterative methods need: the dimension and ``v -> A v`` for a symmetric ``A``."""

    @property
    def dim(self) -> int: ...

    def matvec(self, v: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True, eq=False)
class DenseOperator:
    """A symmetric matrix as an operator (for checks, and for Hessians small enough to form)."""

    matrix: torch.Tensor

    @property
    def dim(self) -> int:
        return self.matrix.shape[0]

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.matrix @ v.to(self.matrix.dtype)


@dataclass(frozen=True, eq=False)
class HessianOperator:
    """``v -> H(w) v``: the Hessian of ``loss`` at the weight vector ``point``."""

    loss: "TrainingLoss"
    point: torch.Tensor

    @property
    def dim(self) -> int:
        return self.loss.dim

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.loss.hvp(v, self.point)

    def matrix(self) -> torch.Tensor:
        """The exact Hessian (``dim x dim``; tiny nets only)."""
        return self.loss.hessian_matrix(self.point)


@dataclass(frozen=True, eq=False)
class GaussNewtonOperator:
    """``v -> G(w) v``: the generalized Gauss-Newton matrix ``G = (1/n) sum_i J_i^T H_i J_i (+ wd I)`` of ``loss``
    at ``point`` (``J_i``: the Jacobian of sample i's outputs in the weights, ``H_i``: the Hessian of its loss in
    the outputs). ``H = G + (1/n) sum_i sum_c (dl_i / dz_ic) d^2 z_ic / dw^2``: the Hessian without its residual
    (functional) term."""

    loss: "TrainingLoss"
    point: torch.Tensor

    @property
    def dim(self) -> int:
        return self.loss.dim

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.loss.gnvp(v, self.point)

    def matrix(self) -> torch.Tensor:
        """``G`` formed column by column (``dim`` products; tiny nets only)."""
        return torch.stack([self.loss.gnvp(e, self.point) for e in torch.eye(self.dim, dtype=self.loss.dtype)], 1)


class TrainingLoss:
    """The mean loss ``L(w) = (1/n) sum_i l(f(x_i; w), y_i) + (wd/2) ||w||^2`` of ``model``'s architecture
    over ``(x, y)``, as a function of the flat weight vector ``w`` (laid out like
    :func:`losslab.core.weights.flatten`), with its gradient, Hessian-vector products and exact Hessian.

    ``loss`` is ``"ce"`` or ``"mse"`` (:func:`losslab.core.losses.per_sample_loss`); ``bn`` the batch-norm
    policy (default ``running``: eval mode with the model's running statistics, see the module doc);
    ``weight_decay`` the ``wd`` of the L2 term (it adds ``wd * v`` to ``H v``); ``chunk`` samples are
    processed at a time (the Hessian of the mean is the sum of the chunks' shares). ``method`` computes
    ``H v`` by double backward (``torch.autograd.grad`` with ``create_graph``) or by ``torch.func.jvp`` of
    ``torch.func.grad``; the default is the faster one on the CPU (:data:`HVP_METHOD`).

    Memory: ``memory`` (default :data:`HVP_MEMORY` bytes) bounds the autograd graph kept for products. Its
    size is measured, not guessed: the bytes of the tensors autograd saves for a gradient with
    ``create_graph`` (``torch.autograd.graph.saved_tensors_hooks``) on 8 and 16 samples give a per-sample and a
    constant part (:attr:`graph_bytes`). ``chunk="auto"`` (the default) is then the largest chunk whose graph fits
    ``memory``: all ``n`` samples in one chunk when they fit. With ``reuse`` (default True) and the graphs of
    all chunks fitting ``memory`` together, the double-backward product keeps each chunk's gradient graph for
    the point it was built at and only backpropagates ``v`` through it for the next product at that point
    (PyHessian's approach; a new point builds a new graph and frees the old): per product one backward pass
    instead of a forward and two backward passes, with results bitwise equal to building the graph anew (the
    same chunks, the same operations, summed in the same order). The Gauss-Newton product :meth:`gnvp` keeps
    its reverse-mode pullbacks likewise (one graph is kept at a time). :meth:`release` frees the kept graph.

    ``point`` is the model's own weights (the default of every method's ``w``). ``products`` counts the
    Hessian-vector products computed, ``evaluations`` the loss (and gradient) passes and ``graphs`` the
    gradient graphs built for reuse, for benchmarks.
    The model is not mutated: a private copy of it is evaluated.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str = "ce",
                 bn: str = "running", weight_decay: float = 0.0, chunk: int | str = "auto",
                 recompute_data: torch.Tensor | None = None, method: str = HVP_METHOD, memory: int = HVP_MEMORY,
                 reuse: bool = True):
        if method not in HVP_METHODS:
            raise ValueError(f"unknown Hessian-vector product method {method!r}; known: {list(HVP_METHODS)}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, not {weight_decay!r}")
        if not (chunk == "auto" or isinstance(chunk, int) and not isinstance(chunk, bool) and chunk >= 1):
            raise ValueError(f"chunk must be a number of samples >= 1 or 'auto', not {chunk!r}")
        if not memory >= 0:
            raise ValueError(f"memory must be a number of bytes >= 0, not {memory!r}")
        self._ev = PointEvaluator(model, x, y, loss=loss, bn=bn, chunk=max(len(y), 1) if chunk == "auto" else chunk,
                                  recompute_data=recompute_data, many="loop", labels="train labels")
        if bn == "batch":  # batch statistics, nothing stored: no in-place update for torch.func to refuse
            for m in self._ev.batchnorm_modules:
                m.track_running_stats = False
        self.layout: ParamLayout = self._ev.layout
        self.criterion, self.bn = loss, bn
        self.weight_decay, self.method = float(weight_decay), method
        self.memory, self.reuse = int(memory), bool(reuse)
        self.point = flatten(model)
        self.products = 0
        self.evaluations = 0
        self.graphs = 0
        self._graph_bytes: tuple[int, int] | None = None
        self._kept: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]] | None = None
        self._kept_pullbacks: tuple[torch.Tensor, dict[int, Callable[..., Any]]] | None = None
        if chunk == "auto":
            per_sample, constant = self.graph_bytes
            fits = (self.memory - constant) // per_sample if per_sample else self.n
            self._ev.chunk = int(min(max(fits, 1), max(self.n, 1)))

    @property
    def chunk(self) -> int:
        """Samples per chunk (``chunk="auto"`` resolved)."""
        return self._ev.chunk

    @property
    def graph_bytes(self) -> tuple[int, int]:
        """``(per_sample, constant)``: the bytes autograd saves for a gradient with ``create_graph`` of a chunk of
        ``b`` samples are ``per_sample * b + constant`` (measured once, on 8 and 16 samples, at the model's
        weights)."""
        if self._graph_bytes is None:
            small, large = min(8, self.n), min(16, self.n)
            b_small, b_large = self._saved_bytes(small), self._saved_bytes(large)
            per_sample = (b_large - b_small) // (large - small) if large > small else b_large // max(large, 1)
            per_sample = max(per_sample, 1)
            self._graph_bytes = (per_sample, max(b_large - per_sample * large, 0))
        return self._graph_bytes

    def release(self) -> None:
        """Free the graphs kept for reuse."""
        self._kept = self._kept_pullbacks = None

    @property
    def dim(self) -> int:
        """The number of weights (the Hessian is ``dim x dim``)."""
        return self.layout.size

    @property
    def n(self) -> int:
        """The number of samples the loss averages over."""
        return len(self._ev.y)

    @property
    def dtype(self) -> torch.dtype:
        return self.point.dtype

    def hessian(self, w: torch.Tensor | None = None) -> HessianOperator:
        """The Hessian at ``w`` (default: the model's weights) as an operator."""
        return HessianOperator(self, self._at(w))

    def value(self, w: torch.Tensor | None = None) -> float:
        """``L(w)``."""
        w = self._at(w)

        def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                return (self._chunk_loss(w, s, buffers),)

        self.evaluations += 1
        (total,) = self._sum_chunks(w, term)
        return float(total) + self._decay_value(w)

    def value_and_grad(self, w: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
        """``L(w)`` and ``grad L(w)`` (a flat vector)."""
        w_ = self._at(w).detach().requires_grad_(True)

        def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
            loss = self._chunk_loss(w_, s, buffers)
            return loss, *torch.autograd.grad(loss, w_, allow_unused=True, materialize_grads=True)

        self.evaluations += 1
        total, g = self._sum_chunks(w_, term)
        w = w_.detach()
        return float(total) + self._decay_value(w), g + self.weight_decay * w

    def hvp(self, v: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """The Hessian-vector product ``H(w) v`` (``w`` defaults to the model's weights)."""
        w = self._at(w).detach()
        v = v.to(self.dtype)
        if self.method == "jvp":
            def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
                grad = torch.func.grad(lambda u: self._chunk_loss(u, s, buffers))
                return (torch.func.jvp(grad, (w,), (v,))[1],)
        else:
            kept = self._gradient_graph(w)
            if kept is not None:
                self.products += 1
                return self._backward_through(kept, v) + self.weight_decay * v
            w_ = w.requires_grad_(True)

            def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
                (g,) = torch.autograd.grad(self._chunk_loss(w_, s, buffers), w_, create_graph=True)
                if not g.requires_grad:  # the chunk's loss is linear in w
                    return (torch.zeros_like(v),)
                return torch.autograd.grad(g, w_, grad_outputs=v, allow_unused=True, materialize_grads=True)

        self.products += 1
        (hv,) = self._sum_chunks(w, term)
        return hv + self.weight_decay * v

    def gauss_newton(self, w: torch.Tensor | None = None) -> GaussNewtonOperator:
        """The generalized Gauss-Newton matrix at ``w`` (default: the model's weights) as an operator."""
        return GaussNewtonOperator(self, self._at(w))

    def gnvp(self, v: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
        """The Gauss-Newton-vector product ``G(w) v = (1/n) sum_i J_i^T H_i J_i v (+ wd v)``: ``J v`` by a
        forward-mode product of the network's outputs, ``H_i`` by one of the loss's gradient in the outputs,
        ``J^T`` by a reverse-mode product (``torch.func``; the same functional call as every other evaluation).
        With ``reuse`` and the graphs fitting ``memory``, the reverse-mode pullbacks (independent of ``v``) are
        kept for the point and reused: the same bits, one forward pass per chunk fewer per product."""
        w = self._at(w).detach()
        v = v.to(self.dtype)
        ev = self._ev
        pullbacks = self._pullbacks(w)

        def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
            xb, yb = ev.x[s], ev.y[s]

            def outputs(u: torch.Tensor) -> torch.Tensor:
                return ev.apply(u, lambda net: net(xb), buffers)

            z, jv = torch.func.jvp(outputs, (w,), (v,))
            out_grad = torch.func.grad(lambda zz: ev.criterion(zz, yb).sum())
            _, hjv = torch.func.jvp(out_grad, (z.detach(),), (jv,))
            pullback = torch.func.vjp(outputs, w)[1] if pullbacks is None else pullbacks[s.start]
            return (pullback(hjv)[0],)

        self.products += 1
        (gv,) = self._sum_chunks(w, term)
        return gv / self.n + self.weight_decay * v

    def hessian_matrix(self, w: torch.Tensor | None = None) -> torch.Tensor:
        """The exact Hessian ``d^2 L / dw^2`` at ``w``, by ``torch.func.hessian`` of the flat-vector loss
        (``dim x dim``: tiny nets only). With train-mode BN (``bn="batch"``) ``torch.func``'s vmap, which
        ``torch.func.hessian`` uses, gets the batch statistics' derivatives wrong (torch 2.14), so there the
        columns ``H e_i`` are computed by :meth:`hvp` instead (``dim`` products, counted)."""
        w = self._at(w).detach()
        if self.bn == "batch" and self._ev.batchnorm_modules:
            return torch.stack([self.hvp(e, w) for e in torch.eye(self.dim, dtype=self.dtype)], dim=1)

        def term(s: slice, buffers: TensorDict) -> tuple[torch.Tensor, ...]:
            return (torch.func.hessian(lambda u: self._chunk_loss(u, s, buffers))(w),)

        (h,) = self._sum_chunks(w, term)
        return h + self.weight_decay * torch.eye(self.dim, dtype=h.dtype)

    def fingerprint(self) -> dict[str, Any]:
        """What determines this loss's numbers (model, data, BN policy and buffers, chunk, decay)."""
        out = {k: v for k, v in self._ev.fingerprint().items() if k not in ("many", "points_per_call")}
        return {**out, "weight_decay": self.weight_decay, "hvp": self.method}

    # ------------------------------------------------------------ internals

    def _at(self, w: torch.Tensor | None) -> torch.Tensor:
        if w is None:
            return self.point
        if w.shape != self.point.shape:
            raise ValueError(f"expected a flat vector of {self.dim} weights, got shape {tuple(w.shape)}")
        return w.to(self.dtype)

    def _decay_value(self, w: torch.Tensor) -> float:
        return 0.5 * self.weight_decay * float(w.detach().double().square().sum()) if self.weight_decay else 0.0

    def _buffers(self, w: torch.Tensor) -> TensorDict:
        """The network's buffers at ``w`` under the BN policy: constants, never differentiated."""
        with torch.no_grad():
            w = w.detach()
            return self._ev.buffers_at(w)

    def _chunk_loss(self, w: torch.Tensor, s: slice, buffers: TensorDict) -> torch.Tensor:
        """``(1/n) sum_{i in chunk} l_i(w)``, the chunk's share of the mean loss (one functional call)."""
        ev = self._ev
        xb, yb = ev.x[s], ev.y[s]
        return ev.apply(w, lambda net: ev.criterion(net(xb), yb).sum(), buffers) / self.n

    def _saved_bytes(self, k: int) -> int:
        """Bytes of the tensors autograd saves for a gradient with ``create_graph`` of the first ``k`` samples."""
        saved = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal saved
            saved += t.numel() * t.element_size()
            return t

        w_ = self.point.detach().clone().requires_grad_(True)
        buffers = self._buffers(w_)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            torch.autograd.grad(self._chunk_loss(w_, slice(0, k), buffers), w_, create_graph=True)
        return saved

    def _fits(self) -> bool:
        """Whether the graphs of all chunks together fit :attr:`memory`."""
        per_sample, constant = self.graph_bytes
        return per_sample * self.n + constant * math.ceil(self.n / self.chunk) <= self.memory

    def _pullbacks(self, w: torch.Tensor) -> dict[int, Callable[..., Any]] | None:
        """The kept reverse-mode pullbacks of the outputs at ``w`` (chunk start -> ``torch.func.vjp``'s function),
        built when they are not the kept ones; None when reuse is off or they do not fit :attr:`memory`."""
        if not self.reuse:
            return None
        if self._kept_pullbacks is not None and torch.equal(self._kept_pullbacks[0], w):
            return self._kept_pullbacks[1]
        self._kept = self._kept_pullbacks = None  # free the kept graphs before building the next
        if not self._fits():
            return None
        ev, buffers, kept = self._ev, self._buffers(w), {}
        with torch.enable_grad():
            for s in chunks(self.n, self.chunk):
                kept[s.start] = torch.func.vjp(lambda u, xb=ev.x[s]: ev.apply(u, lambda net: net(xb), buffers), w)[1]
        self.graphs += 1
        self._kept_pullbacks = (w.detach().clone(), kept)
        return kept

    def _gradient_graph(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]] | None:
        """The kept gradient graph at ``w`` (``(w, leaf, per-chunk gradients)``), built when it is not the kept
        one; None when reuse is off or the graphs of all chunks do not fit :attr:`memory`."""
        if not self.reuse:
            return None
        if self._kept is not None and torch.equal(self._kept[0], w):
            return self._kept
        self._kept = self._kept_pullbacks = None  # free the kept graphs before building the next
        if not self._fits():
            return None
        leaf = w.detach().clone().requires_grad_(True)
        buffers = self._buffers(leaf)
        grads: list[torch.Tensor | None] = []
        with torch.enable_grad():
            for s in chunks(self.n, self.chunk):
                (g,) = torch.autograd.grad(self._chunk_loss(leaf, s, buffers), leaf, create_graph=True)
                grads.append(g if g.requires_grad else None)  # None: the chunk's loss is linear in w
        self.graphs += 1
        self._kept = (w.detach().clone(), leaf, grads)
        return self._kept

    @staticmethod
    def _backward_through(kept: tuple[torch.Tensor, torch.Tensor, list[torch.Tensor | None]],
                          v: torch.Tensor) -> torch.Tensor:
        """``sum_chunks d(g_chunk . v)/dw`` through the kept graphs, chunk by chunk in order (as :meth:`hvp`
        sums them when it builds each chunk's graph anew)."""
        _, leaf, grads = kept
        total: torch.Tensor | None = None
        with torch.enable_grad():
            for g in grads:
                part = torch.zeros_like(v) if g is None else torch.autograd.grad(
                    g, leaf, grad_outputs=v, retain_graph=True, allow_unused=True, materialize_grads=True)[0].detach()
                total = part if total is None else total + part
        assert total is not None, "the loss needs at least one sample"
        return total

    def _sum_chunks(self, w: torch.Tensor, term: Callable[[slice, TensorDict], tuple[torch.Tensor, ...]]
                    ) -> tuple[torch.Tensor, ...]:
        """The sum over chunks of ``term(chunk, buffers)`` (tuples added entrywise), BN in the policy's mode."""
        buffers = self._buffers(w)
        total: tuple[torch.Tensor, ...] | None = None
        with torch.enable_grad():
            for s in chunks(self.n, self.chunk):
                parts = tuple(p.detach() for p in term(s, buffers))
                total = parts if total is None else tuple(a + b for a, b in zip(total, parts))
        assert total is not None, "the loss needs at least one sample"
        return total


# ---------------------------------------------------------------- Lanczos ---------------------------------

class _Krylov:
    """The Lanczos recurrence ``A Q_m = Q_m T_m + beta_m q_{m+1} e_m^T`` with full reorthogonalisation
    (every new vector is orthogonalised twice against the whole basis, "twice is enough"), in float64.

    ``T_m`` is tridiagonal with ``alphas`` on the diagonal and ``betas`` beside it; a coupling of 0 marks a
    restart after an invariant subspace was found.
    """

    def __init__(self, op: SymmetricOperator, start: torch.Tensor, capacity: int):
        self.op, self.capacity = op, capacity
        self.basis = torch.empty(min(capacity, 32), op.dim, dtype=torch.float64)
        self.alphas: list[float] = []
        self.betas: list[float] = []
        self.beta = 0.0  # ||r_m||, the norm of the pending residual vector
        self.products = 0
        self._q = self._unit(start.double())
        self._r = torch.zeros(0)

    @property
    def size(self) -> int:
        return len(self.alphas)

    @staticmethod
    def _unit(v: torch.Tensor) -> torch.Tensor:
        return v / v.norm()

    def _orthogonalize(self, w: torch.Tensor) -> torch.Tensor:
        q = self.basis[:self.size]
        for _ in range(2):
            w = w - q.T @ (q @ w)
        return w

    def step(self) -> None:
        """Append the pending ``q_m`` to the basis: ``alpha_m = q_m^T A q_m``, ``r_m``, ``beta_m = ||r_m||``."""
        j = self.size
        if j == len(self.basis):
            grown = torch.empty(min(2 * j, self.capacity), self.op.dim, dtype=torch.float64)
            grown[:j] = self.basis
            self.basis = grown
        q = self._q
        self.basis[j] = q
        w = self.op.matvec(q).double()
        self.products += 1
        alpha = float(w @ q)
        w = w - alpha * q
        if j > 0:
            w = w - self.betas[-1] * self.basis[j - 1]
        self.alphas.append(alpha)
        self._r = self._orthogonalize(w)
        self.beta = float(self._r.norm())

    def advance(self, restart: torch.Generator | None = None) -> bool:
        """Make ``q_{m+1} = r_m / beta_m`` pending. After a breakdown (``beta_m`` ~ 0: the Krylov space is
        invariant) restart from a random vector orthogonal to the basis (coupling 0) when a generator is
        given, else return False."""
        scale = max(map(abs, self.alphas)) + max(self.betas, default=0.0)
        if self.beta > 100 * torch.finfo(torch.float64).eps * scale * math.sqrt(self.op.dim):
            self.betas.append(self.beta)
            self._q = self._r / self.beta
            return True
        if restart is None or self.size >= self.op.dim:
            return False
        self.betas.append(0.0)
        self._q = self._unit(self._orthogonalize(torch.randn(self.op.dim, generator=restart,
                                                             dtype=torch.float64)))
        return True

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), the eigenvectors ``S`` of ``T_m`` (columns) and the residual norms
        ``||A y_i - theta_i y_i|| = beta_m |S[m, i]|``."""
        d = np.asarray(self.alphas)
        if self.size == 1:
            theta, s = d.copy(), np.ones((1, 1))
        else:
            theta, s = scipy.linalg.eigh_tridiagonal(d, np.asarray(self.betas[:self.size - 1]))
        return theta, s, self.beta * np.abs(s[-1])

    def vectors(self, s: np.ndarray) -> torch.Tensor:
        """The Ritz vectors ``Q_m s`` of the columns of ``s``, as unit rows."""
        y = torch.from_numpy(np.ascontiguousarray(s.T)) @ self.basis[:self.size]
        return y / y.norm(dim=1, keepdim=True)


@dataclass(frozen=True, eq=False)
class Eigenpairs:
    """Eigenvalues and unit eigenvectors (rows, float64) with their certificates, the Lanczos steps taken
    (one product each) and whether the answer is certified.

    Per value: ``residuals`` ``||H v - lambda v||`` (a rigorous bound: some eigenvalue of ``H`` lies within it
    of the returned value), ``gaps`` (the distance to the nearest other Ritz value of the final Krylov space,
    minus that value's residual), ``errors`` (the error estimate ``min(r, r^2 / gap)``: Kato-Temple's bound
    where the gap is a true spectral gap), ``tolerances`` (what each value had to meet) and ``certified`` (a
    boolean per value). ``converged`` is ``certified.all()``, with the guard band and stability conditions of
    :func:`lanczos`; ``reason`` says what was missing when it is False."""

    values: np.ndarray
    vectors: torch.Tensor
    residuals: np.ndarray
    converged: bool
    products: int
    gaps: np.ndarray | None = None
    errors: np.ndarray | None = None
    tolerances: np.ndarray | None = None
    certified: np.ndarray | None = None
    guard: int = 0
    reason: str = ""

    def certificate(self) -> dict[str, Any]:
        """The certificate as plain lists (for records and JSON files)."""
        def lst(a: np.ndarray | None) -> list | None:
            return None if a is None else np.asarray(a).tolist()

        return {"converged": bool(self.converged), "products": int(self.products), "guard": int(self.guard),
                "reason": self.reason, "residuals": lst(self.residuals), "gaps": lst(self.gaps),
                "errors": lst(self.errors), "tolerances": lst(self.tolerances), "certified": lst(self.certified)}


def _ends(n: int, count: int, which: str) -> list[np.ndarray]:
    """Indices into ascending Ritz values of the ``count`` most extreme at each wanted end, from the extreme
    inwards: ``[top]`` (descending), ``[bottom]`` (ascending) or ``[top, bottom]``."""
    count = min(count, n)
    top = np.arange(n - 1, n - 1 - count, -1)
    bottom = np.arange(count)
    return {"largest": [top], "smallest": [bottom], "both": [top, bottom]}[which]


def _ritz_gaps(theta: np.ndarray, res: np.ndarray) -> np.ndarray:
    """For each Ritz value, the distance to the nearest other one minus that one's residual (inf alone)."""
    if len(theta) < 2:
        return np.full(len(theta), np.inf)
    d = np.abs(theta[:, None] - theta[None, :]) - res[None, :]
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def check_eigen_count(k: int, dim: int, max_iter: int | None = None, names: tuple[str, str] = ("k=", "max_iter=")
                      ) -> None:
    """Refuse asking :func:`lanczos` for more eigenvalues (per end) than it can give: more than the operator's
    ``dim`` (the model's number of weights), or more than ``max_iter`` Lanczos steps (default ``min(dim, 300)``)
    can hold. ``names`` spell ``k`` and ``max_iter`` in the message (the CLI's ``--top-k ``, ``--max-iter ``)."""
    if k > dim:
        raise ValueError(f"{names[0]}{k}: the Hessian has only {dim} eigenvalues (the model's {dim} weights)")
    steps = min(dim, DEFAULT_MAX_ITER if max_iter is None else int(max_iter))
    if k > steps:
        raise ValueError(f"{names[0]}{k}: more eigenvalues than {names[1]}{steps} Lanczos steps can give; raise "
                         f"{names[1].rstrip('= ')} (at most {dim}, the number of weights)")


def lanczos(op: SymmetricOperator, k: int = 1, which: str = "largest", *, tol: float = 1e-3,
            relative_to: str = "eigenvalue", max_iter: int | None = None, seed: int = 0,
            guard: int | None = None, min_steps: int | None = None, floor: float = 0.0,
            progress: bool = False) -> Eigenpairs:
    """The ``k`` extreme eigenpairs of the symmetric ``op`` by the Lanczos iteration with full
    reorthogonalisation, from a seeded Gaussian start vector, certified to be the ``k`` extreme ones.

    ``which``: ``"largest"`` (values descending), ``"smallest"`` (the most negative first) or ``"both"``
    (the ``k`` largest descending, then the ``k`` smallest ascending; both ends come from one Krylov space).
    Value ``theta`` has tolerance ``tol * ref`` with ``ref = max(|theta|, floor * rho)`` (``relative_to=
    "eigenvalue"``, as ARPACK; ``floor`` keeps values near zero from needing an absolute accuracy near zero)
    or ``ref = rho`` (``"norm"``), ``rho = max |theta|`` the spectral radius.

    A Ritz pair with a small residual need not be one of the ``k`` extreme eigenpairs: a Ritz value of the
    bulk settles after a few steps while larger eigenvalues have not yet entered the Krylov space (the
    answer is then a list of eigenvalues with a gap in it, not the top ``k``). So the stop rule asks, at
    every wanted end, for three things (all must hold; each step costs one product):

    1. a Krylov space of at least ``min_steps`` vectors (default ``2 (k + guard) + 1`` per end, as
       ARPACK's ``ncv > 2k``), so that the iteration has seen past the wanted values;
    2. the ``k`` wanted values *and* a guard band of the next ``guard`` Ritz values (default ``max(k, 5)``)
       have residual ``||H y - theta y|| = beta_m |s_m|`` at most their tolerance (an eigenvalue within
       ``tol`` of each, and the values just inside the wanted ones settled too);
    3. the ``k`` wanted values are stable: none moved by more than its tolerance over the last
       ``k + guard`` steps. The ``j``-th largest Ritz value only grows with the Krylov space (Cauchy
       interlacing: it is a lower bound of ``lambda_j``), so an eigenvalue entering late shows as a jump.

    A Krylov method cannot prove that no eigenvector is (nearly) orthogonal to the space it built; (2) and
    (3) are the certificate that it was not seen, as ARPACK's guard vectors are. The returned
    :class:`Eigenpairs` carries per value its residual, its gap to the other Ritz values and the error
    estimate ``min(r, r^2 / gap)``. After ``max_iter`` steps (default ``min(dim, 300)``) without the three,
    the values are returned with ``converged=False``, ``certified`` per value, a ``reason``, and a warning.
    Once the Krylov space is the whole space (``dim`` steps, full reorthogonalisation) the Ritz values are
    the eigenvalues and the answer is certified by the residuals alone. ``progress``: a bar of the steps, up
    to ``max_iter`` (:class:`losslab.core.progress.Progress`).
    """
    if which not in WHICH:
        raise ValueError(f"unknown which {which!r}; known: {list(WHICH)}")
    if relative_to not in RELATIVE_TO:
        raise ValueError(f"unknown relative_to {relative_to!r}; known: {list(RELATIVE_TO)}")
    if k < 1 or tol <= 0 or not 0 <= floor <= 1:
        raise ValueError("k must be >= 1, tol > 0 and 0 <= floor <= 1")
    n = op.dim
    check_eigen_count(k, n, max_iter)
    guard = max(k, 5) if guard is None else int(guard)
    if guard < 0:
        raise ValueError(f"guard must be >= 0, not {guard}")
    per_end = k + guard
    min_steps = min(n, 2 * per_end + 1 if min_steps is None else int(min_steps))
    max_iter = min(n, DEFAULT_MAX_ITER if max_iter is None else max_iter)
    window = per_end
    gen = torch.Generator().manual_seed(seed)
    krylov = _Krylov(op, torch.randn(n, generator=gen, dtype=torch.float64), max_iter)
    history: list[np.ndarray] = []  # the wanted values after each step (NaN where the space is too small)
    bar = Progress(max_iter, f"Lanczos, {k} {which} eigenvalue(s)", enabled=progress, unit="step")
    while True:
        krylov.step()
        bar.update()
        theta, s, res = krylov.ritz()
        ends = _ends(len(theta), per_end, which)
        scale = float(np.abs(theta).max())
        if relative_to == "eigenvalue":
            limit = tol * np.maximum(np.abs(theta), floor * scale)
        else:
            limit = np.full(len(theta), tol * scale)
        wanted = np.concatenate([e[:k] for e in ends])
        now = theta[wanted] if len(wanted) == k * len(ends) else np.full(k * len(ends), np.nan)
        history.append(now)
        whole = krylov.size >= n
        settled = all(len(e) >= min(per_end, n) and np.all(res[e] <= limit[e]) for e in ends)
        past = history[-1 - window] if len(history) > window else None
        stable = past is not None and bool(np.all(np.abs(now - past) <= limit[wanted]))
        converged = bool(np.all(res[wanted] <= limit[wanted])) if whole else (
            krylov.size >= min_steps and settled and stable)
        if converged or krylov.size >= max_iter or not krylov.advance(restart=gen):
            break
    bar.close()
    idx = wanted
    within = res[idx] <= limit[idx]
    # per value: within tolerance, and the list is the extreme one (all conditions, or the whole space)
    certified = within & (converged or krylov.size >= n)
    reason = ""
    if not converged:
        reason = ("residuals above tolerance" if not within.all() else
                  "guard band not settled" if not settled else
                  f"values not stable over the last {window} steps" if not stable else
                  f"Krylov space smaller than {min_steps}")
        log.warning("Lanczos: %d of %d %s eigenvalue(s) not certified to tol %g after %d steps (%s; largest "
                    "residual %.3g)", int((~certified).sum()), len(idx), which, tol, krylov.size, reason,
                    float(res[idx].max()))
    gaps = _ritz_gaps(theta, res)[idx]
    errors = np.where(gaps > res[idx], np.minimum(res[idx], res[idx] ** 2 / np.maximum(gaps, 1e-300)),
                      res[idx])
    return Eigenpairs(theta[idx], krylov.vectors(s[:, idx]), res[idx], converged, krylov.products,
                      gaps=gaps, errors=errors, tolerances=limit[idx], certified=certified, guard=guard,
                      reason=reason)


# ---------------------------------------------------------------- spectral density and trace --------------

@dataclass(frozen=True, eq=False)
class SpectralDensity:
    """The smoothed spectral density ``phi(t) = (1/n_runs) sum_runs sum_i tau_i g_sigma(t - theta_i)`` on
    ``grid``, with the quadrature ``nodes`` (Ritz values) and ``weights`` (squared first components of the
    eigenvectors of ``T``) of each run and the kernel's variance ``sigma2``."""

    grid: np.ndarray
    density: np.ndarray
    nodes: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    sigma2: float
    products: int

    @property
    def mean(self) -> float:
        """The density's mean ``(1/n_runs) sum tau_i theta_i`` (= the average of ``v^T H v`` over the unit
        start vectors: an estimate of ``tr(H) / dim``)."""
        return float(np.mean([w @ t for w, t in zip(self.weights, self.nodes)]))


def _gaussian(t: np.ndarray, centres: np.ndarray, sigma2: float) -> np.ndarray:
    """``N(t; centre, sigma2)`` for every ``t`` (rows) and centre (columns)."""
    return np.exp(-(t[:, None] - centres[None, :]) ** 2 / (2 * sigma2)) / math.sqrt(2 * math.pi * sigma2)


def _rademacher(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=gen, dtype=torch.int8).double().mul_(2).sub_(1)


def slq_density(op: SymmetricOperator, *, n_runs: int = 5, n_steps: int = 90, sigma2: float = 1e-5,
                     n_grid: int = 10_000, margin: float = 0.01, seed: int = 0,
                progress: bool = False) -> SpectralDensity:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019, as in PyHessian's ``density``).

    For each of ``n_runs`` Rademacher start vectors, ``n_steps`` Lanczos steps (full reorthogonalisation;
    fewer if the Krylov space becomes invariant) give ``T = S diag(theta) S^T``; the nodes ``theta_i`` with
    weights ``tau_i = S[0, i]^2`` (summing to 1) are the Gaussian quadrature of the start vector's spectral
    measure. The density is their average smoothed by a Gaussian of variance ``sigma2 * max(1, spread)``
    (PyHessian's scaling) on ``n_grid`` points from the smallest node ``- margin - 5 sigma`` to the largest
    ``+ margin + 5 sigma``; it is not renormalised, so it integrates to 1 up to the grid's resolution.
    Costs ``n_runs * n_steps`` products (``progress``: a bar of them).
    """
    if n_runs < 1 or n_steps < 1 or n_grid < 2:
        raise ValueError("n_runs, n_steps must be >= 1 and n_grid >= 2")
    gen = torch.Generator().manual_seed(seed)
    steps = min(n_steps, op.dim)
    nodes, weights, products = [], [], 0
    with Progress(n_runs * steps, "spectral density (SLQ)", enabled=progress, unit="step") as bar:
        for _ in range(n_runs):
            krylov = _Krylov(op, _rademacher(op.dim, gen), steps)
            krylov.step()
            bar.update()
            while krylov.size < steps and krylov.advance():
                krylov.step()
                bar.update()
            theta, s, _ = krylov.ritz()
            nodes.append(theta)
            weights.append(s[0] ** 2)
            products += krylov.products
    lo, hi = min(t.min() for t in nodes), max(t.max() for t in nodes)
    var = sigma2 * max(1.0, hi - lo)
    pad = margin + 5 * math.sqrt(var)
    grid = np.linspace(lo - pad, hi + pad, n_grid)
    density = np.mean([_gaussian(grid, t, var) @ w for t, w in zip(nodes, weights)], axis=0)
    return SpectralDensity(grid, density, tuple(nodes), tuple(weights), var, products)


@dataclass(frozen=True, eq=False)
class TraceEstimate:
    """Hutchinson's estimate of ``tr(H)``: the mean of the probes' ``z^T H z``, its standard error, the
    samples."""

    value: float
    stderr: float
    samples: np.ndarray


def hutchinson_trace(op: SymmetricOperator, n_probes: int = 100, *, seed: int = 0,
                     progress: bool = False) -> TraceEstimate:
    """Hutchinson's trace estimator ``tr(H) = E[z^T H z]`` with ``n_probes`` Rademacher vectors ``z``
    (entries +-1; one product each), as PyHessian's ``trace`` (``progress``: a bar of the probes)."""
    if n_probes < 1:
        raise ValueError("n_probes must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in track(range(n_probes), "Hutchinson trace", enabled=progress, unit="probe"):
        z = _rademacher(op.dim, gen)
        samples.append(float(op.matvec(z).double() @ z))
    arr = np.asarray(samples)
    stderr = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else math.inf
    return TraceEstimate(float(arr.mean()), stderr, arr)


# ---------------------------------------------------------------- epsilon-sharpness -----------------------

SHARPNESS_METHODS = ("multistart", "keskar")


@dataclass(frozen=True, eq=False)
class Sharpness:
    """Keskar et al.'s ``phi_{x,f}(eps, A)`` (``value``, in percent) with ``f(x)``, the largest loss found
    in ``C_eps``, the maximiser ``y`` (p entries), the box half-widths ``eps (|(A^+ x)_i| + 1)``, the number
    of loss-and-gradient evaluations, the ``method``, the start whose run found the maximum (``start``) and
    the largest loss each start's run found (``starts``, start name -> loss)."""

    value: float
    loss: float
    max_loss: float
    eps: float
    subspace_dim: int | None
    y: np.ndarray
    half_widths: np.ndarray
    evaluations: int
    method: str = "keskar"
    start: str = "zero"
    starts: Mapping[str, float] | None = None


def epsilon_sharpness(loss: TrainingLoss, eps: float, w: torch.Tensor | None = None, *,
                      subspace_dim: int | None = None, seed: int = 0, maxiter: int = 10,
                      method: str = "multistart", random_starts: int = 2, progress: bool = False) -> Sharpness:
    """Keskar et al. (2017), Metric 2.1: "Given ``x``, ``eps > 0`` and ``A``, we define the
    ``(C_eps, A)``-sharpness of ``f`` at ``x`` as

        ``phi_{x,f}(eps, A) = (max_{y in C_eps} f(x + A y) - f(x)) / (1 + f(x)) * 100``",

    with the box ``C_eps = {z : -eps (|(A^+ x)_i| + 1) <= z_i <= eps (|(A^+ x)_i| + 1)}`` and ``A^+`` the
    pseudo-inverse of ``A``. ``subspace_dim=None`` is the full space (``A = I_n``); ``subspace_dim=p`` a
    random ``n x p`` Gaussian ``A`` drawn with ``seed`` (the paper uses ``p = 100``). ``f`` is ``loss`` (the
    paper: the full training set) at ``x = w`` (default: the model's weights).

    The maximum is sought by ``scipy.optimize.minimize(method="L-BFGS-B")`` on ``-f`` inside the box
    (gradient ``-A^T grad f`` from autograd; scipy's gradient and function tolerances 0 so that no run stops
    early at a nearly flat point), ``maxiter`` iterations per start:

    * ``method="keskar"``: the paper's setting, one run from ``y = 0``. Its known weakness: at a well-trained
      point (``f ~ 1e-5``) the gradient is tiny and 10 iterations barely leave the centre, so the value can
      be several times below the loss at a single corner of the box;
    * ``method="multistart"`` (default): runs from ``y = 0``, from the sign-gradient corner ``y = h
      sign(A^T grad f(x))`` (the box's maximiser of the first-order model, as one FGSM step) and from
      ``random_starts`` random corners (signs drawn from ``seed``); every run keeps its own best point.

    The largest ``f`` seen at any evaluated point of the box is reported (so the value is >= 0, and the
    multistart value is at least the sign-gradient corner's), with the start whose run found it.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0, not {eps!r}")
    if method not in SHARPNESS_METHODS:
        raise ValueError(f"unknown sharpness method {method!r}; known: {list(SHARPNESS_METHODS)}")
    if maxiter < 1 or random_starts < 0:
        raise ValueError("maxiter must be >= 1 and random_starts >= 0")
    x = loss._at(w).detach().double()
    if subspace_dim is None:
        a = None
        ax = x
    else:
        if not 1 <= subspace_dim <= loss.dim:
            raise ValueError(f"subspace_dim must lie in [1, {loss.dim}], not {subspace_dim}")
        a = torch.randn(loss.dim, subspace_dim, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        ax = torch.linalg.pinv(a) @ x
    half = (eps * (ax.abs() + 1.0)).numpy()
    f0 = loss.value(x)
    best = {"f": f0, "y": np.zeros_like(half), "evals": 0, "run": -math.inf}

    cache: dict[bytes, tuple[float, np.ndarray]] = {}  # the centre, evaluated once for its gradient

    def negative(y: np.ndarray) -> tuple[float, np.ndarray]:
        y = np.clip(y, -half, half)
        key = y.tobytes()
        if key in cache:
            f, minus_g = cache[key]
        else:
            yt = torch.from_numpy(y)
            f, g = loss.value_and_grad(x + (yt if a is None else a @ yt))
            best["evals"] += 1
            g = g.double()
            minus_g = -(g if a is None else a.T @ g).numpy()
            if not y.any():
                cache[key] = (f, minus_g)
        best["run"] = max(best["run"], f)
        if f > best["f"]:
            best["f"], best["y"] = f, y.copy()
        return -f, minus_g.copy()

    zero = np.zeros_like(half)
    starts = [("zero", zero)]
    if method == "multistart":
        _, minus_grad = negative(zero)
        starts.append(("sign_gradient", half * np.where(minus_grad > 0, -1.0, 1.0)))
        signs = np.random.default_rng([seed, 20170215]).choice([-1.0, 1.0], size=(random_starts, len(half)))
        starts += [(f"random_corner{r}", half * s) for r, s in enumerate(signs)]
    found: dict[str, float] = {}
    winner, top = "zero", f0
    for name, y0 in track(starts, f"sharpness eps {eps:g}, starts", enabled=progress, unit="start"):
        best["run"] = f0 if name == "zero" else -math.inf
        scipy.optimize.minimize(negative, y0, jac=True, method="L-BFGS-B",
                                bounds=scipy.optimize.Bounds(-half, half),
                                options={"maxiter": maxiter, "gtol": 0.0, "ftol": 0.0})
        found[name] = best["run"]
        if best["run"] > top:
            winner, top = name, best["run"]
    value = (best["f"] - f0) / (1.0 + f0) * 100.0
    return Sharpness(value, f0, best["f"], eps, subspace_dim, best["y"], half, best["evals"], method, winner,
                     found)


# ---------------------------------------------------------------- the eigenvalue-ratio map ----------------

RATIO_VALUES = ("lambda_max", "lambda_min", "ratio", "products", "certified")
RATIO_FORMAT_VERSION = 2  # 2: both ends certified (guard band, stability), relative to each value; `certified`
RATIO_FLOOR = 1e-3  # |lambda_min| below 1e-3 lambda_max needs only an absolute accuracy of tol * 1e-3 lambda_max


def eigenvalue_ratio_surface(path: str | os.PathLike, loss: TrainingLoss, span: AffineSpan,
                             xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, *,
                             tol: float = 1e-2, max_iter: int | None = None, seed: int = 0,
                             provenance: Mapping[str, Any] | None = None, tile_rows: int = 1,
                             tiles: Sequence[int] | None = None, progress: bool = True,
                             on_tile: Callable[[int], None] | None = None) -> Surface:
    """Li et al. (2018), Fig. 7: "the absolute ratio of the minimum and maximum eigenvalues of the Hessian,
    ``|lambda_min / lambda_max|``", mapped over the plane ``span`` (``origin + a dx + b dy``) on the grid
    ``xs`` x ``ys``: blue where the surface is convex, yellow where it has significant negative curvature.

    At every point one Lanczos run (:func:`lanczos` with ``which="both"``, certified: guard band, minimum
    Krylov size, stable values) converges both ends of the full Hessian's spectrum, each to ``tol`` relative
    to itself (as ARPACK's ``eigsh``, which Li et al. used with ``tol=1e-2``), so the ratio is accurate to
    about ``2 tol`` relative; a ``|lambda_min|`` below :data:`RATIO_FLOOR` ``lambda_max`` is taken to
    ``tol * RATIO_FLOOR * lambda_max`` (the ratio to ``tol * RATIO_FLOOR`` absolute). A tolerance relative to
    the spectral radius would accept a ``lambda_min`` from the bulk near 0 while the negative end has not yet
    entered the Krylov space. The file is the surfaces' format (datasets ``xcoordinates``, ``ycoordinates``,
    ``lambda_max``, ``lambda_min``, ``ratio``, ``products``, ``certified`` (1 where both ends were certified,
    0 where ``max_iter`` ran out first: the value is kept and shown as uncertified) of shape
    ``(len(xs), len(ys))``, a ``done`` mask per tile, a ``spec``), written tile by tile through
    the journal ``<name>.journal``: a killed run resumes where it stopped, a mismatched file raises
    :class:`losslab.core.surfaces.SurfaceMismatchError`, shards of ``tiles`` join with
    :func:`losslab.core.surfaces.merge_surfaces`, and :func:`losslab.core.surfaces.read_surface` reads it.
    """
    if span.dy is None:
        raise ValueError("the eigenvalue-ratio map needs a 2-D span")
    xs_arr, ys_arr = as_coordinates(xs, "xs"), as_coordinates(ys, "ys")
    lanczos_opts = {"tol": tol, "max_iter": max_iter, "seed": seed, "relative_to": "eigenvalue",
                    "floor": RATIO_FLOOR}
    spec = {
        "format": RATIO_FORMAT_VERSION, "kind": "hessian_eigenvalue_ratio", "shape": [len(xs_arr), len(ys_arr)],
        "xcoordinates": xs_arr.tolist(), "ycoordinates": ys_arr.tolist(), "tile_rows": tile_rows,
        "span": span.digest(), "values": list(RATIO_VALUES), "loss": loss.fingerprint(),
        "lanczos": lanczos_opts, "provenance": dict(provenance or {})}

    def fill(surface: Surface, rows: tuple[int, int], on_points: Callable[[int], None]) -> None:
        for i in range(*rows):
            for j, b in enumerate(ys_arr):
                ends = lanczos(loss.hessian(span.point(float(xs_arr[i]), float(b))), 1, "both", **lanczos_opts)
                lam_max, lam_min = (float(v) for v in ends.values)
                ratio = abs(lam_min / lam_max) if lam_max != 0 else math.nan
                for name, v in zip(RATIO_VALUES, (lam_max, lam_min, ratio, ends.products, float(ends.converged))):
                    surface.values[name][i, j] = v
                on_points(1)

    attrs = {**dict(provenance or {}), "bn": loss.bn, "loss": loss.criterion, "tol": tol}
    return compute_grid(path, spec, xs_arr, ys_arr, RATIO_VALUES, fill, attrs=attrs, tile_rows=tile_rows,
                        tiles=tiles, progress=progress, on_tile=on_tile)
