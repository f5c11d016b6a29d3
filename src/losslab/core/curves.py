"""Mode connectivity: low-loss curves between two trained networks (Garipov et al. 2018; Gotmare et al. 2018).

Garipov et al. connect two independently trained networks ``w0`` and ``w1`` ("modes") by a parametric *curve*
``phi(t)``, ``t in [0, 1]``, with ``phi(0) = w0`` and ``phi(1) = w1`` fixed and trainable *bends* ``theta``:

* the *polygonal chain* (``Polychain``) is piecewise linear from ``w0`` through the bends to ``w1``; with one
  bend, ``phi(t) = 2 (t theta + (0.5 - t) w0)`` for ``t <= 0.5`` and ``2 ((t - 0.5) w1 + (1 - t) theta)``
  after;
* the *Bezier curve* (``Bezier``) has the bends as control points, ``phi(t) = sum_k C(n, k) t^k (1-t)^(n-k)
  theta_k`` with ``theta_0 = w0``, ``theta_n = w1`` (one bend: the quadratic curve ``(1-t)^2 w0 + 2t(1-t)
  theta + t^2 w1``).

The bends are trained to minimise the loss averaged along the curve, ``E_{t ~ U(0, 1)} L(phi(t))``, by drawing
one ``t`` per minibatch (:func:`fit_curve`). The curve is compared with the straight *segment* ``(1 - t) w0 +
t w1``, whose loss has a *barrier* between the modes (Goodfellow et al.'s interpolation): along a trained
curve the train loss and the test error stay close to the endpoints' (:func:`evaluate_along_curve`).

No layer is rewritten: the network is evaluated at the flat weight vector ``phi(t)`` through
``torch.func.functional_call`` (:mod:`losslab.core.weights`), so every model of the zoo can be connected. Curves
have ``point(t)`` and ``digest()``, so they are also *spans* of :func:`losslab.core.surfaces.compute_surface` (a
resumable, tiled surface along the curve).

Also here: the plane through ``w0``, ``w1`` and a bend with the curve drawn in it (:func:`curve_coordinates`),
ensembles of networks along a curve and the disagreement of two networks (Garipov et al. sec. 5-6), fast
geometric ensembling (:func:`fge_snapshots`: a cyclic learning rate, snapshots at the cycle minima) and the
trivial scaling path of a ReLU network (:func:`scaling_path`, Garipov et al. A.8).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from losslab._version import __version__
from losslab import io as lio
from losslab.core.data import Prepared
from losslab.core.losses import logits_hook, per_sample_loss
from losslab.core.optim import lr_at, make_optimizer
from losslab.core.weights import ParamLayout, PointEvaluator, flatten, has_batchnorm, tensor_digest
from losslab.core.placement import placement
from losslab.core.progress import track
from losslab.core.surfaces import Plane, Segment, Surface, evaluators_for, plane_surface, plane_through
from losslab.core.trainer import Recipe, batching, train_epoch

log = logging.getLogger(__name__)

QUANTITIES = ("train_loss", "train_err", "test_loss", "test_err")


class CurveMismatchError(ValueError):
    """A curve checkpoint belongs to another curve (kind, number of bends or endpoints differ)."""


# ---------------------------------------------------------------- curves -----------------------------------

class Curve(nn.Module):
    """A curve ``phi(t) = sum_k c_k(t) theta_k`` through the control points ``theta_0 = w0``, the bends
    ``theta_1 .. theta_n`` and ``theta_{n+1} = w1``.

    The endpoints are frozen buffers; the only parameter is ``bends`` (``n_bends x P``), initialised evenly
    spaced on the segment (bend ``k`` at ``(1 - k/(n+1)) w0 + k/(n+1) w1``, as Garipov et al.'s
    ``init_linear``), so an untrained curve *is* the segment. ``phi(0)`` and ``phi(1)`` are the endpoints
    bitwise. Subclasses define the coefficients ``c(t)``.
    """

    kind = "curve"

    def __init__(self, w0: torch.Tensor, w1: torch.Tensor, n_bends: int = 1):
        super().__init__()
        if w0.ndim != 1 or w0.shape != w1.shape or w0.dtype != w1.dtype:
            raise ValueError(f"endpoints must be flat vectors of one shape and dtype, got {tuple(w0.shape)} "
                             f"{w0.dtype} and {tuple(w1.shape)} {w1.dtype}")
        if not (isinstance(n_bends, int) and n_bends >= 1):
            raise ValueError(f"a curve needs at least one bend, not {n_bends!r}")
        self.register_buffer("w0", w0.detach().clone())
        self.register_buffer("w1", w1.detach().clone())
        segment = Segment(self.w0, self.w1)
        self.bends = nn.Parameter(torch.stack([segment.point(k / (n_bends + 1)) for k in range(1, n_bends + 1)]))

    @property
    def n_bends(self) -> int:
        return self.bends.shape[0]

    def coefficients(self, t: float) -> torch.Tensor:
        """The weights ``c_0(t) .. c_{n+1}(t)`` of ``w0``, the bends and ``w1`` (a 1-D tensor of ``n + 2``)."""
        raise NotImplementedError

    def forward(self, t: float) -> torch.Tensor:
        """``phi(t)``: the flat weight vector at ``t`` (differentiable in the bends)."""
        t = _check_t(t)
        c = self.coefficients(t).to(self.w0.dtype)
        phi = c[0] * self.w0 + c[-1] * self.w1 + c[1:-1] @ self.bends
        if t in (0.0, 1.0):  # the endpoints exactly (signed zeros included), the graph to the bends kept
            phi = torch.where(torch.ones((), dtype=torch.bool), self.w0 if t == 0.0 else self.w1, phi)
        return phi

    def point(self, t: float, b: float | None = None) -> torch.Tensor:
        """``phi(t)`` detached (the span interface of :mod:`losslab.core.surfaces`)."""
        if b is not None:
            raise ValueError("a curve has one coordinate")
        with torch.no_grad():
            return self(t).detach()

    def points(self, ts: Iterable[float]) -> Iterator[torch.Tensor]:
        """``phi(t)`` for each ``t`` of ``ts``, made one at a time."""
        return (self.point(float(t)) for t in ts)

    def control_points(self) -> torch.Tensor:
        """``(n + 2) x P``: ``w0``, the bends, ``w1``."""
        return torch.cat([self.w0[None], self.bends.detach(), self.w1[None]])

    def digest(self) -> dict[str, str]:
        return {"kind": self.kind, "n_bends": str(self.n_bends), "w0": tensor_digest(self.w0),
                "w1": tensor_digest(self.w1), "bends": tensor_digest(self.bends)}

    def endpoints_digest(self) -> str:
        return tensor_digest(self.w0, self.w1)


class Bezier(Curve):
    """Bezier curve with the bends as control points: ``c_k(t) = C(n+1, k) t^k (1 - t)^(n+1-k)`` (Bernstein
    polynomials, as Garipov et al.'s ``Bezier``); one bend gives the quadratic curve."""

    kind = "bezier"

    def coefficients(self, t: float) -> torch.Tensor:
        n = self.n_bends + 1
        return torch.tensor([math.comb(n, k) * t ** k * (1.0 - t) ** (n - k) for k in range(n + 1)],
                            dtype=torch.float64)


class Polychain(Curve):
    """Polygonal chain ``w0 -> bends -> w1``: ``c_k(t) = max(0, 1 - |t (n+1) - k|)`` (Garipov et al.'s
    ``PolyChain``); it passes through bend ``k`` at ``t = k / (n+1)``."""

    kind = "polychain"

    def coefficients(self, t: float) -> torch.Tensor:
        n = self.n_bends + 1
        return torch.tensor([max(0.0, 1.0 - abs(t * n - k)) for k in range(n + 1)], dtype=torch.float64)


CURVES: dict[str, type[Curve]] = {"bezier": Bezier, "polychain": Polychain}


def make_curve(kind: str, w0: torch.Tensor, w1: torch.Tensor, n_bends: int = 1) -> Curve:
    """A ``bezier`` or ``polychain`` curve between the modes ``w0`` and ``w1``."""
    if kind not in CURVES:
        raise ValueError(f"unknown curve {kind!r}; known: {list(CURVES)}")
    return CURVES[kind](w0, w1, n_bends)


def save_curve(path: str | os.PathLike, curve: Curve) -> None:
    """Write a curve (kind, endpoints, bends) atomically; read it back with :func:`load_curve`."""
    lio.save_torch(path, {"kind": curve.kind, "w0": curve.w0, "w1": curve.w1, "bends": curve.bends.detach()})


def load_curve(path: str | os.PathLike) -> Curve:
    saved = lio.load_torch(path)
    curve = make_curve(saved["kind"], saved["w0"], saved["w1"], int(saved["bends"].shape[0]))
    with torch.no_grad():
        curve.bends.copy_(saved["bends"])
    return curve


def _check_t(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must lie in [0, 1], not {t}")
    return t


# ---------------------------------------------------------------- training ---------------------------------

def garipov_lr(base_lr: float, epoch: float, epochs: int) -> float:
    """The learning rate of Garipov et al.'s curve training (their ``train.py``) in (fractional, 0-based)
    ``epoch``: with ``a = (floor(epoch) + 1) / epochs``, ``base_lr`` while ``a <= 0.5``, then down linearly to
    ``0.01 base_lr`` at ``a = 0.9``, then ``0.01 base_lr``. Constant within an epoch, as theirs."""
    a = (math.floor(epoch) + 1) / epochs
    if a <= 0.5:
        return base_lr
    if a <= 0.9:
        return base_lr * (1.0 - (a - 0.5) / 0.4 * 0.99)
    return base_lr * 0.01


def curve_lr_at(schedule: Mapping[str, Any], base_lr: float, epoch: float, epochs: int) -> float:
    """:func:`losslab.core.optim.lr_at`, plus the schedule ``{"name": "garipov"}`` (:func:`garipov_lr`) of curve
    training."""
    if schedule.get("name") == "garipov":
        return garipov_lr(base_lr, epoch, epochs)
    return lr_at(schedule, base_lr, epoch, epochs)


def _private_train_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in train mode whose own parameters are frozen (weights come via functional_call;
    its BN running statistics may be overwritten: they are never read)."""
    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad_(False)
    net.register_forward_hook(logits_hook)  # a (logits, ...) output as its logits (losses.py)
    return net


def fit_curve(curve: Curve, model: nn.Module, data: Prepared, recipe: Recipe, seed: int,
              ckpt_path: str | os.PathLike | None = None, progress: bool = False,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> dict[str, Any]:
    """Train the bends of ``curve`` in place to minimise ``E_{t ~ U(0,1)} L(phi(t))`` for ``model``'s
    architecture on ``data`` (Garipov et al. sec. 3.2). Returns the state (epoch, history, wall, diverged).

    Each minibatch draws one ``t ~ U(0, 1)`` from the seeded generator (which also orders the data and drives
    the augmentation) and takes a step on ``L(phi(t)) + 0.5 * weight_decay * ||phi(t)||^2``: the recipe's
    ``weight_decay`` is Garipov et al.'s ``l2`` regulariser on the weights *at t*, the optimizer itself
    (``make_optimizer`` over the bends only) gets none. The learning rate follows
    ``curve_lr_at(recipe.schedule, ...)`` per step (any schedule of :mod:`losslab.core.optim`, or Garipov et al.'s
    ``{"name": "garipov"}``). The network and data live on the job's device
    (:func:`losslab.core.placement.placement`), the curve on the CPU: each step's ``phi(t)`` goes there and its
    gradient comes back. The network runs in train mode: BN layers normalise by the minibatch statistics (as
    in Garipov et al.'s curve code), no running statistics are kept (evaluate with ``bn="recompute"``),
    dropout is active. ``recipe.eval_every``, ``snapshots`` and ``init_from`` do not apply.

    With ``ckpt_path`` set, the bends, optimizer state, RNG states, epoch and history are written atomically
    after every epoch and a present checkpoint is resumed from: a killed run ends with the same bends, bitwise,
    as an uninterrupted one (at the same thread count). A checkpoint of another curve (kind, number of bends,
    endpoints), recipe or seed raises :class:`CurveMismatchError`. The global RNG (dropout) is seeded inside
    a ``fork_rng`` block and left as it was.
    """
    recipe.validate()
    layout = ParamLayout.of(model)
    if layout.size != curve.w0.numel():
        raise ValueError(f"the curve has {curve.w0.numel()} weights, the model {layout.size}")
    device = placement().device  # the network and data there (moved once); the curve's tensors stay on the CPU
    net = _private_train_copy(model).to(device)
    data = data.to(device)
    crit = per_sample_loss(recipe.loss)
    opt = make_optimizer([curve.bends], recipe.optimizer, recipe.lr, momentum=recipe.momentum, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    bs, steps = batching(len(data.y_train), recipe.batch_size)
    identity = {"kind": curve.kind, "n_bends": curve.n_bends, "endpoints_sha256": curve.endpoints_digest(),
                "recipe": json.dumps(asdict(recipe), sort_keys=True, default=str), "seed": seed}
    ckpt = None if ckpt_path is None else Path(ckpt_path)

    def objective(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = float(torch.rand((), generator=gen, dtype=torch.float64))
        phi = curve(t)
        loss = crit(functional_call(net, layout.to_dict(phi.to(device)), (xb,)), yb).mean()
        if not recipe.weight_decay:
            return loss, loss
        return loss, loss + 0.5 * recipe.weight_decay * phi.pow(2).sum()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1_000_003)  # dropout, as train.fit
        state: dict[str, Any] = {"epoch": 0, "history": [], "wall": 0.0, "diverged": False}
        if ckpt is not None and ckpt.exists():
            ck = lio.load_torch(ckpt)
            diffs = [f"{k}: {ck.get(k)!r} != {v!r}" for k, v in identity.items() if ck.get(k) != v]
            if diffs:
                raise CurveMismatchError(f"{ckpt}: a checkpoint of another curve or recipe ({'; '.join(diffs)}); "
                                         f"delete it or use another path")
            with torch.no_grad():
                curve.bends.copy_(ck["bends"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["gen"])
            torch.set_rng_state(ck["torch_rng"])
            state = {k: ck[k] for k in ("epoch", "history", "wall", "diverged")}
            log.info("resumed %s at epoch %d", ckpt, state["epoch"])

        epochs: Iterable[int] = track(range(state["epoch"], recipe.epochs), "curve epochs", enabled=progress,
                                      unit="epoch", total=recipe.epochs, initial=state["epoch"])
        for epoch in epochs:
            if state["diverged"]:
                break
            t0 = time.perf_counter()
            batch_loss, diverged = train_epoch(
                data, gen, bs, steps, opt,
                lambda frac, e=epoch: curve_lr_at(recipe.schedule, recipe.lr, e + frac, recipe.epochs), objective)
            state["diverged"] = diverged
            state["epoch"] = epoch + 1
            row = {"epoch": epoch + 1, "lr": curve_lr_at(recipe.schedule, recipe.lr, epoch, recipe.epochs),
                   "batch_loss": batch_loss}
            state["wall"] += time.perf_counter() - t0
            state["history"].append(row)
            if ckpt is not None:
                lio.save_torch(ckpt, {**identity, "bends": curve.bends.detach().clone(),
                                      "optimizer": opt.state_dict(), "gen": gen.get_state(),
                                      "torch_rng": torch.get_rng_state(), **state})
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
    return state


# ---------------------------------------------------------------- metrics along a curve --------------------

def arc_increments(points: Sequence[torch.Tensor]) -> np.ndarray:
    """``dl[i] = ||phi(t_i) - phi(t_{i-1})||`` (float64), ``dl[0] = 0``: the curve's length element."""
    return np.asarray([0.0] + [_distance(a, b) for a, b in zip(points[:-1], points[1:])])


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((b.double() - a.double()).norm())


def path_stats(values: np.ndarray, dl: np.ndarray) -> dict[str, float]:
    """Garipov et al.'s statistics of a quantity along a curve: ``min``, ``max``, ``mean`` (over the grid of
    t), ``int`` (the arc-length-weighted integral, trapezoids: ``sum 0.5 (v[i-1] + v[i]) dl[i] / sum dl``)
    and the ``barrier``: ``max_t v(t)`` minus the larger of the two endpoint values."""
    values, dl = np.asarray(values, dtype=np.float64), np.asarray(dl, dtype=np.float64)
    if values.shape != dl.shape or len(values) < 2:
        raise ValueError("values and dl must be 1-D arrays of the same length >= 2")
    length = dl[1:].sum()
    integral = float(np.sum(0.5 * (values[:-1] + values[1:]) * dl[1:]) / length) if length > 0 else float(values[0])
    return {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
            "int": integral, "barrier": float(values.max() - max(values[0], values[-1]))}


def path_metrics(values: Mapping[str, np.ndarray], dl: np.ndarray, prefix: str = "") -> dict[str, float]:
    """:func:`path_stats` of every quantity, named ``{prefix}{quantity}_{stat}``."""
    return {f"{prefix}{q}_{s}": v for q, arr in values.items() for s, v in path_stats(arr, dl).items()}


@dataclass(eq=False)
class CurveEvaluation:
    """Loss and error along a curve and along the segment at the same ``t``, with their metrics.

    ``values`` holds ``train_loss``, ``train_err``, ``test_loss``, ``test_err`` (the curve) and the same with a
    ``segment_`` prefix; ``metrics`` the :func:`path_stats` of each (``train_loss_max``,
    ``segment_test_err_int``, ...) and ``length`` (numerical, from the grid), ``segment_length`` (``||w1 -
    w0||``), ``length_ratio`` (their ratio), ``segment_length_ratio`` (the segment's numerical length over
    ``||w1 - w0||``: 1 up to rounding)."""

    t: np.ndarray
    values: dict[str, np.ndarray]
    metrics: dict[str, float]
    dl: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.t if key == "t" else self.values[key]


def _grid(ts: int | Sequence[float] | np.ndarray) -> np.ndarray:
    grid = np.linspace(0.0, 1.0, ts) if isinstance(ts, (int, np.integer)) else np.asarray(ts, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2 or grid[0] != 0.0 or grid[-1] != 1.0 or np.any(np.diff(grid) <= 0):
        raise ValueError("the grid of t must increase from exactly 0 to exactly 1 (at least 2 points)")
    return grid


def _along(evaluators: Mapping[str, PointEvaluator], point_of: Callable[[float], torch.Tensor], grid: np.ndarray,
           prefix: str, out: dict[str, np.ndarray]) -> np.ndarray:
    """Fill ``{prefix}{split}_loss`` / ``_err`` at the points ``point_of(t)`` of the grid and return the
    path's :func:`arc_increments`. Points are made a group at a time (never all ``T`` in memory); each group
    is evaluated on every split in turn, so recomputed BN statistics are computed once per point."""
    group = max(ev.batch_points for ev in evaluators.values())
    for s in evaluators:
        out[f"{prefix}{s}_loss"], out[f"{prefix}{s}_err"] = np.full(len(grid), np.nan), np.full(len(grid), np.nan)
    dl, prev = np.zeros(len(grid)), None
    for start in range(0, len(grid), group):
        batch = [point_of(float(t)) for t in grid[start:start + group]]
        for i, vec in enumerate(batch, start):
            dl[i] = 0.0 if prev is None else _distance(prev, vec)
            prev = vec
        for s, ev in evaluators.items():
            for i, res in enumerate(ev.evaluate_many(batch), start):
                out[f"{prefix}{s}_loss"][i], out[f"{prefix}{s}_err"][i] = res.loss, res.err
    return dl


def evaluate_along_curve(curve: Curve, model: nn.Module, data: Prepared, ts: int | Sequence[float] = 61, *,
                   loss: str = "ce", bn: str = "recompute", chunk: int = 250, many: str = "auto",
                   path: str | os.PathLike | None = None, stats_batch: int | str | None = None) -> CurveEvaluation:
    """Train and test loss/error at ``phi(t)`` and on the segment ``(1 - t) w0 + t w1`` for ``t`` on a grid
    (``ts`` points from 0 to 1, or the values themselves; 61 as in Garipov et al.), with their metrics
    (:class:`CurveEvaluation`); written to ``path`` (HDF5, :func:`write_curve_evaluation`) when given.

    ``bn="recompute"`` (the default) recomputes the BN statistics at every ``t`` from the training inputs
    (Garipov et al.'s ``bn_update``): at ``t = 0`` the result equals the evaluation of the base network ``w0``
    with its statistics recomputed the same way. Statistics are properties of a point: an evaluation at
    ``phi(t)`` with the running statistics of another network (``bn="running"`` with ``model`` holding, e.g.,
    the statistics of ``w1`` or any stale ones) does not reproduce even the endpoint ``w0`` it stands on.
    Without BN layers the policy makes no difference. ``stats_batch`` is the batch of the statistics pass
    (default ``None``: the ``chunk``, which then changes the numbers; see
    :class:`losslab.core.weights.PointEvaluator`).
    """
    grid = _grid(ts)
    evaluators = evaluators_for(model, data, loss=loss, bn=bn, chunk=chunk, many=many, stats_batch=stats_batch)
    values: dict[str, np.ndarray] = {}
    dl = _along(evaluators, curve.point, grid, "", values)
    seg_dl = _along(evaluators, Segment(curve.w0, curve.w1).point, grid, "segment_", values)
    straight = float((curve.w1.double() - curve.w0.double()).norm())
    metrics = {**path_metrics({q: values[q] for q in QUANTITIES}, dl),
               **path_metrics({q: values[f"segment_{q}"] for q in QUANTITIES}, seg_dl, "segment_"),
               "length": float(dl.sum()), "segment_length": straight,
               "length_ratio": float(dl.sum()) / straight if straight > 0 else math.nan,
               "segment_length_ratio": float(seg_dl.sum()) / straight if straight > 0 else math.nan}
    first = evaluators["train"].fingerprint()
    attrs = {"kind": curve.kind, "n_bends": curve.n_bends, "bn": bn, "loss": loss, "chunk": chunk,
             "points": len(grid), "curve": curve.digest(), "evaluator": first,
             "threads": torch.get_num_threads(), "losslab_version": __version__}
    result = CurveEvaluation(grid, values, metrics, dl, attrs)
    if path is not None:
        write_curve_evaluation(path, result)
    return result


def evaluate_segment(w0: torch.Tensor, w1: torch.Tensor, model: nn.Module, data: Prepared,
                     ts: int | Sequence[float] = 61, *, loss: str = "ce", bn: str = "recompute", chunk: int = 250,
                     many: str = "auto", splits: Sequence[str] = ("train", "test")) -> CurveEvaluation:
    """Loss and error on the straight segment ``(1 - t) w0 + t w1`` alone (Goodfellow et al.'s interpolation,
    Gotmare et al.'s barrier test between two iterates), on the grid ``ts``: a :class:`CurveEvaluation` whose
    ``values`` are ``{split}_loss`` and ``{split}_err`` of the ``splits`` asked for and whose ``metrics`` are
    their :func:`path_stats` and the ``length`` ``||w1 - w0||`` (numerically, from the grid)."""
    grid = _grid(ts)
    evaluators = evaluators_for(model, data, loss=loss, bn=bn, chunk=chunk, many=many, splits=splits)
    values: dict[str, np.ndarray] = {}
    dl = _along(evaluators, Segment(w0, w1).point, grid, "", values)
    attrs = {"kind": "segment", "bn": bn, "loss": loss, "chunk": chunk, "points": len(grid),
             "segment": Segment(w0, w1).digest(), "evaluator": next(iter(evaluators.values())).fingerprint(),
             "threads": torch.get_num_threads(), "losslab_version": __version__}
    return CurveEvaluation(grid, values, {**path_metrics(values, dl), "length": float(dl.sum())}, dl, attrs)


def write_curve_evaluation(path: str | os.PathLike, result: CurveEvaluation) -> None:
    """HDF5, atomically: datasets ``t``, ``dl`` and every value (``train_loss``, ..., ``segment_test_err``);
    the metrics and the provenance as attributes (dicts as JSON)."""
    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("t", data=result.t)
        f.create_dataset("dl", data=result.dl)
        for name, arr in result.values.items():
            f.create_dataset(name, data=arr)
        for key, value in {**result.attrs, **result.metrics}.items():
            f.attrs[key] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, tuple)) else value
        f.attrs["metrics"] = json.dumps(sorted(result.metrics))


def read_curve_evaluation(path: str | os.PathLike) -> CurveEvaluation:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such curve evaluation")
    try:
        with h5py.File(path, "r") as f:
            names = set(json.loads(f.attrs["metrics"]))
            metrics = {k: float(f.attrs[k]) for k in names}
            attrs = {k: v for k, v in f.attrs.items() if k not in names and k != "metrics"}
            values = {k: f[k][()] for k in f.keys() if k not in ("t", "dl")}
            return CurveEvaluation(f["t"][()], values, metrics, f["dl"][()], attrs)
    except (OSError, KeyError, ValueError) as err:
        raise lio.CorruptFileError(f"{path}: not a readable curve evaluation ({err})") from err


# ---------------------------------------------------------------- the plane of a curve --------------------

def plane_points(curve: Curve, bend: int | None = None) -> list[torch.Tensor]:
    """``w0``, ``w1`` and bend ``bend`` (default: the middle one, index ``(n - 1) // 2``): the three networks
    whose plane Garipov et al. draw."""
    k = (curve.n_bends - 1) // 2 if bend is None else bend
    if not 0 <= k < curve.n_bends:
        raise ValueError(f"bend {bend} does not exist: the curve has {curve.n_bends}")
    return [curve.w0, curve.w1, curve.bends.detach()[k]]


def plane_of(curve: Curve, bend: int | None = None) -> Plane:
    """The plane through ``w0``, ``w1`` and a bend (:func:`losslab.core.surfaces.plane_through`: origin ``w0``, the
    first axis along ``w1 - w0``). An untrained curve's bends lie on the segment: no plane."""
    return plane_through(*plane_points(curve, bend))


def plane_coordinates(plane: Plane, vecs: Iterable[torch.Tensor]) -> np.ndarray:
    """``(K, 2)`` coordinates of the flat vectors ``vecs`` in ``plane`` (orthogonal projection, float64)."""
    o, u, v = plane.origin.double(), plane.u.double(), plane.v.double()
    return np.array([[float((x.double() - o) @ u), float((x.double() - o) @ v)] for x in vecs]).reshape(-1, 2)


def curve_coordinates(curve: Curve, ts: int | Sequence[float] = 61, plane: Plane | None = None,
                      bend: int | None = None) -> np.ndarray:
    """``(T, 2)`` coordinates of ``phi(t)`` on the grid ``ts`` in the plane of the curve (default
    :func:`plane_of`), for drawing the curve on its contour plot. A Bezier curve or polychain lies in the
    plane when it has one bend (then the projection is exact)."""
    return plane_coordinates(plane_of(curve, bend) if plane is None else plane, curve.points(_grid(ts)))


def curve_plane_surface(path: str | os.PathLike, evaluators: Mapping[str, PointEvaluator], curve: Curve,
                        bend: int | None = None, **run: Any) -> Surface:
    """The loss surface on the plane of the curve (:func:`losslab.core.surfaces.plane_surface` through ``w0``,
    ``w1`` and the bend; ``run`` takes its options). Draw the curve with :func:`curve_coordinates`."""
    return plane_surface(path, evaluators, plane_points(curve, bend), **run)


# ---------------------------------------------------------------- ensembles -------------------------------

def logits_at(evaluator: PointEvaluator, vec: torch.Tensor) -> torch.Tensor:
    """The network's outputs on ``evaluator.x`` at the flat vector ``vec`` under the evaluator's BN policy."""
    return evaluator.outputs(vec)


def member_probabilities(evaluator: PointEvaluator, vecs: Iterable[torch.Tensor]) -> torch.Tensor:
    """``(K, N, C)`` softmax outputs of the networks at ``vecs`` on ``evaluator.x``."""
    return torch.stack([torch.softmax(logits_at(evaluator, v), dim=-1) for v in vecs])


@dataclass(frozen=True)
class EnsembleResult:
    """Error and NLL of an ensemble (the average of its members' softmax outputs), and its members' errors."""

    err: float
    nll: float
    member_err: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.member_err)


def ensemble(probs: torch.Tensor, y: torch.Tensor) -> EnsembleResult:
    """The ensemble of members whose softmax outputs are ``probs`` (``K x N x C``) against labels ``y``."""
    if probs.ndim != 3 or probs.shape[1] != len(y):
        raise ValueError(f"expected K x N x C probabilities for {len(y)} labels, got {tuple(probs.shape)}")
    def err(p: torch.Tensor) -> float:  # as LossAcc.err: 1 - accuracy
        return 1.0 - int((p.argmax(-1) == y).sum()) / max(len(y), 1)

    mean = probs.mean(0)
    nll = float(-torch.log(mean.gather(1, y[:, None]).squeeze(1).clamp_min(1e-12)).double().mean())
    return EnsembleResult(err(mean), nll, tuple(err(p) for p in probs))


def disagreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of points where two networks' predicted labels differ (Garipov et al. sec. 6). ``a`` and
    ``b`` are outputs (``N x C``: logits or probabilities) or predicted labels (``N``)."""
    la = a.argmax(-1) if a.ndim == 2 else a
    lb = b.argmax(-1) if b.ndim == 2 else b
    if la.shape != lb.shape:
        raise ValueError(f"predictions of different shapes: {tuple(la.shape)} and {tuple(lb.shape)}")
    return float((la != lb).double().mean())


def curve_ensemble(curve: Curve, model: nn.Module, data: Prepared, ts: Sequence[float], *, bn: str = "recompute",
                   chunk: int = 250) -> EnsembleResult:
    """The ensemble of the networks at ``phi(t)``, ``t`` in ``ts``, on the test split, BN statistics
    recomputed per ``t`` from the training inputs (Garipov et al. A.6)."""
    test = evaluators_for(model, data, bn=bn, chunk=chunk, splits=("test",))["test"]
    return ensemble(member_probabilities(test, curve.points(_check_t(t) for t in ts)), data.y_test)


# ---------------------------------------------------------------- fast geometric ensembling ---------------

def cyclic_lr(epoch: float, cycle: int, lr1: float, lr2: float) -> float:
    """Garipov et al.'s triangular cyclic learning rate at (fractional, 0-based) ``epoch``: with ``t =
    (epoch mod c) / c``, ``(1 - 2t) lr1 + 2t lr2`` for ``t < 1/2`` and ``(2t - 1) lr1 + (2 - 2t) lr2`` after;
    from ``lr1`` down to ``lr2`` at mid-cycle and back."""
    t = (epoch % cycle) / cycle
    return (1 - 2 * t) * lr1 + 2 * t * lr2 if t < 0.5 else (2 * t - 1) * lr1 + (2 - 2 * t) * lr2


def fge_snapshots(model: nn.Module, data: Prepared, recipe: Recipe, seed: int, *, lr1: float, lr2: float,
                  cycle: int, n_snapshots: int) -> list[torch.Tensor]:
    """Fast geometric ensembling (Garipov et al. sec. 6): from the trained ``model`` (not modified), train-like
    steps (the recipe's optimizer, momentum, weight decay, batch size, loss; seeded data order, augmentation
    and dropout) with :func:`cyclic_lr` of cycle length ``cycle`` epochs (even) between ``lr1`` and ``lr2``;
    the flat weights at each cycle's minimum (the end of epoch ``k c + c/2``, as Garipov et al.'s ``fge.py``
    collects them) are returned, ``n_snapshots`` of them. BN running statistics are not returned: evaluate
    snapshots with ``bn="recompute"``."""
    recipe.validate()
    if not (isinstance(cycle, int) and cycle >= 2 and cycle % 2 == 0):
        raise ValueError(f"the cycle length must be an even number of epochs (minimum at mid-cycle), not {cycle!r}")
    if n_snapshots < 1:
        raise ValueError(f"n_snapshots must be >= 1, not {n_snapshots!r}")
    device = placement().device  # the copy and the data there; the snapshots come back to the CPU
    net = copy.deepcopy(model).train().to(device)
    data = data.to(device)
    crit = per_sample_loss(recipe.loss)
    opt = make_optimizer(net.parameters(), recipe.optimizer, lr1, momentum=recipe.momentum,
                         weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    bs, steps = batching(len(data.y_train), recipe.batch_size)

    def objective(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss = crit(net(xb), yb).mean()
        return loss, loss

    snapshots: list[torch.Tensor] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1_000_003)
        epoch = 0
        while len(snapshots) < n_snapshots:
            _, diverged = train_epoch(data, gen, bs, steps, opt,
                                       lambda frac, e=epoch: cyclic_lr(e + frac, cycle, lr1, lr2), objective)
            if diverged:
                raise FloatingPointError(f"FGE diverged in epoch {epoch} (lr1={lr1}, lr2={lr2})")
            if epoch % cycle + 1 == cycle // 2:
                snapshots.append(flatten(net).cpu())
            epoch += 1
    return snapshots


# ---------------------------------------------------------------- the trivial scaling path ----------------

# layers without weights that are positively homogeneous of degree 1 (f(t x) = t f(x) for t > 0); dropout is
# the identity in eval mode
_HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU, nn.Flatten, nn.Identity, nn.Dropout, nn.MaxPool1d, nn.MaxPool2d,
                nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d,
                nn.AdaptiveMaxPool2d)
_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def scaling_exponents(model: nn.Module) -> torch.Tensor:
    """Flat vector (``flatten`` layout) of the powers of ``t`` of Garipov et al.'s trivial path: 1 for the
    weights of every linear or convolutional layer, ``i`` for the bias of the ``i``-th (1-based,
    ``named_parameters`` order, which must be the order the layers are applied in, as in ``models.MLP``,
    ``models.ConvNet``, ``models.VGG`` or any ``nn.Sequential``). Between them only positively homogeneous
    layers (ReLU, max or average pooling, flatten, dropout) are allowed, so the argument holds for a ReLU MLP
    and for a ReLU convolutional network without batch norm alike."""
    if has_batchnorm(model):
        raise ValueError("the trivial scaling path needs a network without batch normalisation: BN undoes "
                         "the scaling of the weights")
    for name, m in model.named_modules():
        if not list(m.children()) and not isinstance(m, _AFFINE + _HOMOGENEOUS):
            raise ValueError(f"the trivial scaling path needs a ReLU network (linear or convolutional layers and "
                             f"positively homogeneous activations and pooling); {name or 'the model'} is a "
                             f"{type(m).__name__}")
    owners = {f"{mname}.{pname}" if mname else pname: m for mname, m in model.named_modules()
              for pname, _ in m.named_parameters(recurse=False)}
    layers: dict[int, int] = {}
    parts = []
    for name, p in model.named_parameters():
        m = owners[name]
        i = layers.setdefault(id(m), len(layers) + 1)
        parts.append(torch.full((p.numel(),), 1.0 if name.endswith("weight") else float(i), dtype=torch.float64))
    return torch.cat(parts)


def scaling_path(model: nn.Module, ts: Iterable[float], weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The flat vectors of Garipov et al.'s trivial path (A.8) for a ReLU network of ``n`` linear or
    convolutional layers (:func:`scaling_exponents`): ``W_i(t) = t W_i``, ``b_i(t) = t^i b_i``, so the logits
    are ``t^n o(x)``: the predicted labels are those of the
    network for every ``t`` in ``(0, 1]`` while the loss changes, and the path ends at the origin at ``t = 0``.
    ``weights`` default to the model's; ``t = 1`` gives them exactly."""
    w = flatten(model) if weights is None else weights
    exps = scaling_exponents(model)
    if exps.shape != w.shape:
        raise ValueError(f"weights of shape {tuple(w.shape)} do not fit the model ({exps.numel()} weights)")
    return [w * torch.pow(torch.tensor(float(t), dtype=torch.float64), exps).to(w.dtype) for t in ts]
