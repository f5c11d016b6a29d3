"""A network seen as a point in weight space: one way to evaluate a model at any weight vector.

Li et al. (2018) plot the loss at ``theta* + alpha*delta + beta*eta`` for many ``(alpha, beta)``: each point of
a surface is a *weight vector*, not a checkpoint. This module flattens a model's parameters into one 1-D
vector (:func:`flatten`), cuts such a vector back into per-parameter views (:func:`unflatten`), and evaluates
the model's loss and accuracy at any vector (:class:`PointEvaluator`) with ``torch.func.functional_call``:
the data stay in memory as tensors and are processed in chunks, and no ``state_dict`` is loaded, no
``DataLoader`` is built and nothing is read from disk per point.

Batch normalisation needs a decision the papers make differently; :class:`PointEvaluator` names it ``bn``:

* ``running``: the reference model's running statistics (eval mode), as Li et al.'s code does;
* ``recompute``: fresh running statistics for this very point, from a train-mode pass over the training
  inputs with a cumulative (sample-weighted) average, then eval mode, as Garipov et al.'s and Izmailov et
  al.'s (SWA) ``bn_update`` do;
* ``batch``: each chunk normalised by its own batch statistics (train-mode BN, nothing stored);
* ``interpolate``: between two networks, the running statistics interpolated with the same ``alpha`` as the
  weights, ``(1 - alpha) r_0 + alpha r_1``, in eval mode, as Li et al.'s README prescribes for 1-D
  interpolation (their ``--dir_type states`` direction holds ``running_mean`` and ``running_var`` too). The
  evaluator then takes *state vectors* (:func:`state_vector`: the flat weights followed by the running
  statistics, :func:`running_stats`), so a point carries its own statistics and no model is rewritten.

The statistics of ``recompute`` depend on the batch of the statistics pass: the stored running variance is
the sample-weighted mean of the per-batch (unbiased) variances, which misses the spread of the batch means,
so batches of 128 and of 250 give different statistics, and different losses at the same point. That
batch is ``stats_batch``, recorded in the fingerprint: an integer (:data:`STATS_BATCH` = 250 at the front
doors) or ``"all"`` (one batch of the whole statistics data: the exact full-data mean and unbiased
variance); the default ``None`` takes the evaluation ``chunk``, as the workflow's stored numbers were made
(there the memory knob ``chunk`` is also the statistics batch).

The reference model is never mutated: the evaluator works on a private copy of it and on copies of its
buffers, taken when it is built.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from losslab.core.losses import LOSSES, LossAcc, check_labels, check_outputs, logits_hook, per_sample_loss
from losslab.core.placement import placement

BN_POLICIES = ("running", "recompute", "batch", "interpolate")
STATS_BATCH = 250  # the statistics batch of bn="recompute" at the front doors (api, cli): today's default chunk
MANY_METHODS = ("auto", "loop", "vmap")
AUTOCAST_DTYPES = {None: None, "none": None, "bf16": torch.bfloat16}  # PointEvaluator(autocast=...)


def _full_precision(out: torch.Tensor) -> torch.Tensor:
    """Autocast's half-precision logits as float32 (losses are summed in float32); float32 and float64 as they
    are (the exact Hessians of the tests run in float64)."""
    return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out


_BatchNorm = nn.modules.batchnorm._BatchNorm  # BatchNorm1d/2d/3d and SyncBatchNorm
_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

TensorDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------- a model as a flat vector ------------------

@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of a model's parameters, in ``named_parameters`` order: the map between the flat
    weight vector and the per-parameter tensors."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @classmethod
    def of(cls, model: nn.Module) -> "ParamLayout":
        named = list(model.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(p.shape for _, p in named))

    @property
    def numels(self) -> list[int]:
        return [s.numel() for s in self.shapes]

    @property
    def size(self) -> int:
        """Length of the flat vector (the number of parameters)."""
        return sum(self.numels)

    def split(self, vec: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter views of the flat vector ``vec``, shaped like the parameters."""
        if vec.ndim != 1 or vec.shape[0] != self.size:
            raise ValueError(f"expected a flat vector of {self.size} weights, got shape {tuple(vec.shape)}")
        return [part.view(shape) for part, shape in zip(vec.split(self.numels), self.shapes)]

    def to_dict(self, vec: torch.Tensor) -> TensorDict:
        """``name -> view`` of the flat vector ``vec`` (works on vmap-batched vectors too)."""
        return dict(zip(self.names, (p.view(s) for p, s in zip(vec.split(self.numels, dim=-1), self.shapes))))

    def cat(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """The flat vector of per-parameter tensors (the inverse of :meth:`split`)."""
        if len(tensors) != len(self.shapes):
            raise ValueError(f"expected {len(self.shapes)} tensors, got {len(tensors)}")
        for name, t, s in zip(self.names, tensors, self.shapes):
            if t.shape != s:
                raise ValueError(f"{name}: expected shape {tuple(s)}, got {tuple(t.shape)}")
        return torch.cat([t.reshape(-1) for t in tensors])


def layout_of(model_or_layout: nn.Module | ParamLayout) -> ParamLayout:
    return model_or_layout if isinstance(model_or_layout, ParamLayout) else ParamLayout.of(model_or_layout)


def flatten(model: nn.Module) -> torch.Tensor:
    """The model's parameters (not buffers), in ``named_parameters`` order, as one new 1-D tensor."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def unflatten(model: nn.Module | ParamLayout, vec: torch.Tensor) -> TensorDict:
    """``name -> tensor`` views of the flat vector ``vec``, shaped like ``model``'s parameters."""
    return dict(zip(layout_of(model).names, layout_of(model).split(vec)))


def running_stat_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the BN running statistics (``running_mean``, ``running_var`` of every BN layer that tracks
    them), in ``named_buffers`` order: the tail of a :func:`state_vector`."""
    tracked = {f"{name}.{stat}" if name else stat for name, m in model.named_modules()
               if isinstance(m, _BatchNorm) and m.track_running_stats for stat in ("running_mean", "running_var")}
    return tuple(n for n, _ in model.named_buffers() if n in tracked)


def running_stats(model: nn.Module) -> torch.Tensor:
    """The BN running statistics of :func:`running_stat_names` as one new flat vector (empty without BN)."""
    buffers = dict(model.named_buffers())
    names = running_stat_names(model)
    if not names:
        return torch.zeros(0)
    return torch.cat([buffers[n].detach().reshape(-1) for n in names]).clone()


def state_vector(model: nn.Module) -> torch.Tensor:
    """The flat weights followed by the BN running statistics: a point of :class:`PointEvaluator`'s
    ``bn="interpolate"`` policy (Li et al.'s ``states``)."""
    weights = flatten(model)
    return torch.cat([weights, running_stats(model).to(weights.dtype)])


def tensor_digest(*tensors: torch.Tensor | None) -> str:
    """SHA-256 of the tensors' dtypes, shapes and bytes: a fingerprint for provenance and resume checks."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none;")
            continue
        t = t.detach().contiguous().cpu()
        h.update(f"{t.dtype};{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def is_dense(model: nn.Module) -> bool:
    """True for a model without convolutions or batch normalisation (an MLP)."""
    return not any(isinstance(m, _CONV_TYPES + (_BatchNorm,)) for m in model.modules())


# ``many="auto"`` uses vmap for a dense net when parameters x samples per chunk is at most this. Measured on
# this 2-core CPU, 1 thread, torch 2.14, glibc malloc pinned (tests/benchmarks/test_bench_surface.py): vmap /
# loop speed was 1.2-1.5x for MLPs of 2k-18k weights on chunks of 100 samples (work <= 1.8M), 0.9-1.07x for the
# same nets on chunks of 250-1000 samples, 0.86-0.98x for a 190k-weight MLP, and 0.75-0.9x for conv nets
# (ResNet-8 width 8 on 8x8 digits: 7.3 ms a point looped, 8.9-9.6 ms vmapped, 4-16 points a call).
VMAP_WORK_LIMIT = 2_000_000


def has_tied_weights(model: nn.Module) -> bool:
    """True when one parameter is registered under several names (e.g. tied embeddings)."""
    return len(list(model.named_parameters(remove_duplicate=False))) != len(list(model.named_parameters()))


def chunks(n: int, chunk: int) -> Iterator[slice]:
    """Slices ``[0, chunk), [chunk, 2 chunk), ...`` covering ``n`` samples."""
    for i in range(0, n, chunk):
        yield slice(i, min(i + chunk, n))


def _groups(items: Iterable[torch.Tensor], size: int) -> Iterator[list[torch.Tensor]]:
    group: list[torch.Tensor] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


# ---------------------------------------------------------------- BN statistics ----------------------------

class _StatsCache:
    """The recomputed BN buffers of the last point, shared by evaluators of the same model (train and test
    splits) so that one point's statistics are computed once."""

    def __init__(self) -> None:
        self.vec: torch.Tensor | None = None
        self.buffers: TensorDict | None = None

    def get(self, vec: torch.Tensor) -> TensorDict | None:
        if self.vec is not None and self.vec.shape == vec.shape and torch.equal(self.vec, vec):
            return self.buffers
        return None

    def put(self, vec: torch.Tensor, buffers: TensorDict) -> None:
        self.vec, self.buffers = vec.detach().clone(), buffers


def check_stats_batch(stats_batch: int | str | None) -> int | str | None:
    """``stats_batch`` validated: ``None``, ``"all"`` or an integer >= 1 (a ``ValueError`` naming it)."""
    if stats_batch is None or stats_batch == "all":
        return stats_batch
    if isinstance(stats_batch, bool) or not isinstance(stats_batch, int) or stats_batch < 1:
        raise ValueError(f"stats_batch must be a positive integer or 'all', not {stats_batch!r}")
    return int(stats_batch)


def _fresh_bn_buffers(module: nn.Module, buffers: TensorDict) -> TensorDict:
    """Copies of ``buffers`` with every BN layer's running statistics reset (mean 0, variance 1, count 0)."""
    fresh = {n: b.clone() for n, b in buffers.items()}
    for mname, m in module.named_modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            prefix = f"{mname}." if mname else ""
            fresh[prefix + "running_mean"].zero_()
            fresh[prefix + "running_var"].fill_(1.0)
            fresh[prefix + "num_batches_tracked"].zero_()
    return fresh


# ---------------------------------------------------------------- the evaluator ----------------------------

class PointEvaluator:
    """Loss and accuracy of ``model``'s architecture at any flat weight vector, on ``(x, y)``.

    ``bn`` is the batch-norm policy (``running``, ``recompute``, ``batch`` or ``interpolate``, see the module
    doc); ``recompute_data`` are the inputs of the BN-statistics pass (default ``x``: give the training inputs
    to an evaluator of test data, or build it with :meth:`with_data`). ``chunk`` samples are forwarded at a
    time; with ``bn="batch"`` it is also the batch whose statistics normalise it. ``stats_batch`` is the batch
    of the ``recompute`` statistics pass: an integer, ``"all"`` (the whole statistics data in one batch: the
    exact full-data statistics) or ``None`` (the default: ``chunk``, so that ``chunk`` then changes the
    statistics and with them the numbers; give an integer to make ``chunk`` a pure memory knob). With
    ``bn="interpolate"`` every point is a :func:`state_vector` (weights, then running statistics).

    ``many`` chooses how :meth:`evaluate_many` treats many points: ``loop`` (one point after another),
    ``vmap`` (``points_per_call`` points in one ``torch.vmap``-ed forward pass; only without BN or with
    ``bn="running"``) or ``auto`` (the default): vmap for small dense nets (no convolution, no BN, at most
    :data:`VMAP_WORK_LIMIT` weights x samples per chunk), where it is faster on the CPU, and the loop
    otherwise (vmap over convolution weights, or batched matmuls of wider nets, are slower than a loop).

    ``autocast="bf16"`` runs the forward passes under ``torch.autocast`` with bfloat16 on the evaluator's device
    (CPU or GPU; the losses are summed in float32); the default ``None`` is exact float32.

    ``device`` is where the evaluator's private copy of the network and its data live (moved there once, at
    construction; default: the job's :func:`losslab.core.placement.placement`, the CPU unless the config names a GPU).
    Weight vectors are given and results returned where the caller keeps them (the CPU): each point's vector
    is moved to the device for its pass, and gradients flow back through that move.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "ce",
                 bn: str = "running", chunk: int = 250, recompute_data: torch.Tensor | None = None,
                 many: str = "auto", points_per_call: int = 8, autocast: str | None = None,
                 device: str | torch.device | None = None, stats_batch: int | str | None = None,
                 labels: str = "labels"):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; known: {list(LOSSES)}")
        if bn not in BN_POLICIES:
            raise ValueError(f"unknown BN policy {bn!r}; known: {list(BN_POLICIES)}")
        if chunk < 1 or points_per_call < 1:
            raise ValueError("chunk and points_per_call must be >= 1")
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"unknown autocast {autocast!r}; known: {list(AUTOCAST_DTYPES)}")
        self.stats_batch = check_stats_batch(stats_batch)
        self.autocast = AUTOCAST_DTYPES[autocast] and autocast
        self.layout = ParamLayout.of(model)
        self.loss, self.bn, self.chunk, self.points_per_call = loss, bn, chunk, points_per_call
        self.device = placement().device if device is None else torch.device(device)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.recompute_data = self.x if recompute_data is None else recompute_data.to(self.device)
        self._runner = _Runner(copy.deepcopy(model).eval()).to(self.device)
        self._runner.net.register_forward_hook(logits_hook)  # a (logits, ...) output as its logits (losses.py)
        self.width = check_outputs(self._runner.net, self.x, {labels: self.y})  # before any compute
        self._names = tuple(f"{_Runner.PREFIX}{n}" for n in self.layout.names)
        self._bn_modules = [m for m in self._runner.modules() if isinstance(m, _BatchNorm)]
        self._tied = has_tied_weights(model)  # untying costs ~0.1 ms a call: only when needed
        self._buffers: TensorDict = {f"{_Runner.PREFIX}{n}": b.detach().to(self.device, copy=True)
                                     for n, b in model.named_buffers()}
        self._scratch: TensorDict = {n: b.clone() for n, b in self._buffers.items()}  # written by "batch"
        stat_names = running_stat_names(model) if bn == "interpolate" else ()
        self._stats = ParamLayout(tuple(f"{_Runner.PREFIX}{n}" for n in stat_names),
                                  tuple(self._buffers[f"{_Runner.PREFIX}{n}"].shape for n in stat_names))
        self._crit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = per_sample_loss(loss)
        self._cache = _StatsCache()
        self._model_name = type(model).__name__
        self._vmap_pays = is_dense(model) and self.layout.size * min(chunk, max(len(y), 1)) <= VMAP_WORK_LIMIT
        self.many = self._resolve_many(many)

    def _resolve_many(self, many: str) -> str:
        if many not in MANY_METHODS:
            raise ValueError(f"unknown evaluate_many method {many!r}; known: {list(MANY_METHODS)}")
        if many == "auto":
            return "vmap" if self._vmap_pays else "loop"
        if many == "vmap" and self._bn_modules and self.bn != "running":
            raise ValueError(f"many='vmap' needs bn='running' for a model with batch norm (bn={self.bn!r} "
                             f"gives every point its own statistics); use many='loop'")
        return many

    def with_data(self, x: torch.Tensor, y: torch.Tensor, labels: str = "labels") -> "PointEvaluator":
        """An evaluator of the same model, policy and BN-statistics data on other samples (e.g. the test
        split), sharing the recomputed statistics of the current point. ``labels`` names ``y`` in the message
        refusing labels beyond the model's outputs."""
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        if self.width:
            check_labels(y, self.width, labels)
        other = copy.copy(self)
        other.x, other.y = x.to(self.device), y.to(self.device)
        other.__dict__.pop("_data_digest", None)
        return other

    # ------------------------------------------------------------ public API

    @property
    def batch_points(self) -> int:
        """How many points :meth:`evaluate_many` prefers to receive at once."""
        return self.points_per_call if self.many == "vmap" else 1

    @torch.no_grad()
    def evaluate(self, vec: torch.Tensor) -> LossAcc:
        """Mean loss and accuracy over ``(x, y)`` of the network whose weights are the flat vector ``vec``."""
        params = self._params(vec)
        buffers = self._buffers_at(vec, params)
        with self._bn_train(self.bn == "batch"):
            total, correct = self._call(params, buffers, self._sums)
        return self._result(total, correct)

    @torch.no_grad()
    def outputs(self, vec: torch.Tensor) -> torch.Tensor:
        """The network's outputs (logits) on ``x`` at the flat vector ``vec``, under the BN policy
        (``recompute``: statistics recomputed at ``vec``, shared with sibling evaluators)."""
        return self.apply(vec, lambda net: torch.cat([_full_precision(net(self.x[s]))
                                                      for s in chunks(len(self.y), self.chunk)])).to(vec.device)

    def apply(self, vec: torch.Tensor, fn: Callable[[nn.Module], Any],
              buffers: TensorDict | None = None) -> Any:
        """``fn(net)`` for the network whose weights are ``vec`` (differentiable in ``vec`` when gradients
        are enabled), its BN layers in the policy's mode and its buffers those of the policy at ``vec`` (or
        ``buffers``, from :meth:`buffers_at`)."""
        params = self._params(vec)
        if buffers is None:
            with torch.no_grad():
                buffers = self._buffers_at(vec.detach(), self._params(vec.detach()))
        with self._bn_train(self.bn == "batch"):
            return self._call(params, buffers, fn)

    @torch.no_grad()
    def buffers_at(self, vec: torch.Tensor) -> TensorDict:
        """The network's buffers at ``vec`` under the BN policy: constants, never differentiated (the
        reference model's, freshly recomputed ones, or a scratch copy that batch statistics write to)."""
        vec = vec.detach()
        return self._buffers_at(vec, self._params(vec))

    @property
    def batchnorm_modules(self) -> list[nn.Module]:
        """The BN layers of the evaluator's private copy of the network."""
        return self._bn_modules

    @property
    def criterion(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``(outputs, labels) -> per-sample loss`` of this evaluator's loss."""
        return self._crit

    def evaluate_many(self, vecs: Iterable[torch.Tensor], method: str | None = None) -> list[LossAcc]:
        """:meth:`evaluate` at each of ``vecs`` (an iterable, consumed lazily), by ``method`` (default: the
        evaluator's ``many``)."""
        method = self.many if method is None else self._resolve_many(method)
        if method == "loop":
            return [self.evaluate(v) for v in vecs]
        out: list[LossAcc] = []
        for group in _groups(vecs, self.points_per_call):
            out += self._evaluate_vmap(torch.stack(group))
        return out

    def fingerprint(self) -> dict[str, Any]:
        """What determines this evaluator's numbers (for provenance and for refusing a mismatched resume)."""
        found = {"model": self._model_name, "loss": self.loss, "bn": self.bn, "chunk": self.chunk,
                 "many": self.many, "points_per_call": self.points_per_call if self.many == "vmap" else None,
                 "n": len(self.y), "data_sha256": self._data_digest, "buffers_sha256": self._buffers_digest,
                 "recompute_data_sha256": tensor_digest(self.recompute_data) if self.bn == "recompute" else None}
        if self.stats_batch is not None and self.bn == "recompute":  # only when set, like autocast
            found["stats_batch"] = self.stats_batch
        if self.autocast:  # only when set: float32 fingerprints (and the files that store them) are unchanged
            found["autocast"] = self.autocast
        if self.device.type != "cpu":  # likewise: a GPU's sums differ in the last bits from the CPU's
            found["device"] = self.device.type
        return found

    # ------------------------------------------------------------ internals

    @property
    def _data_digest(self) -> str:
        if "_data_digest" not in self.__dict__:
            self.__dict__["_data_digest"] = tensor_digest(self.x, self.y)
        return self.__dict__["_data_digest"]

    @property
    def _buffers_digest(self) -> str:
        return tensor_digest(*(self._buffers[n] for n in sorted(self._buffers)))

    def _call(self, params: TensorDict, buffers: TensorDict, fn: Callable[[nn.Module], Any]) -> Any:
        """``fn(net)`` with the network's parameters and buffers replaced by these (one functional_call)."""
        if self.autocast:
            with torch.autocast(self.device.type, dtype=AUTOCAST_DTYPES[self.autocast]):
                return functional_call(self._runner, (params, buffers), (fn,), tie_weights=self._tied)
        return functional_call(self._runner, (params, buffers), (fn,), tie_weights=self._tied)

    def _params(self, vec: torch.Tensor) -> TensorDict:
        vec = vec.to(self.device)
        if self.bn == "interpolate":  # a state vector: the weights, then the running statistics
            if vec.shape[-1] != self.layout.size + self._stats.size:
                raise ValueError(f"bn='interpolate' evaluates state vectors (losslab.core.weights.state_vector) of "
                                 f"{self.layout.size} weights + {self._stats.size} running statistics, got a "
                                 f"vector of {vec.shape[-1]}")
            vec = vec[..., :self.layout.size]
        return dict(zip(self._names, self.layout.split(vec)))

    def _sums(self, net: nn.Module) -> tuple[float, int]:
        """Summed loss and number of correct predictions of ``net`` over ``(x, y)``, chunk by chunk."""
        total, correct = 0.0, 0
        for s in chunks(len(self.y), self.chunk):
            out = _full_precision(net(self.x[s]))
            total += float(self._crit(out, self.y[s]).sum())
            correct += int((out.argmax(-1) == self.y[s]).sum())
        return total, correct

    def _result(self, total: float, correct: int) -> LossAcc:
        n = max(len(self.y), 1)
        return LossAcc(total / n, correct / n)

    def _bn_train(self, train: bool) -> "_BNMode":
        return _BNMode(self._bn_modules, train)

    def _buffers_at(self, vec: torch.Tensor, params: TensorDict) -> TensorDict:
        if self.bn == "interpolate" and self._stats.size:
            tail = vec.to(self.device)[self.layout.size:]
            return {**self._buffers, **dict(zip(self._stats.names, self._stats.split(tail)))}
        if self.bn in ("running", "interpolate") or not self._bn_modules:
            return self._buffers
        if self.bn == "batch":
            return self._scratch  # train-mode BN writes its running statistics here; nobody reads them
        cached = self._cache.get(vec)
        if cached is None:
            cached = self._recompute(params)
            self._cache.put(vec, cached)
        return cached

    def _recompute(self, params: TensorDict) -> TensorDict:
        """Running statistics of the network at ``params``: reset, then one train-mode pass over the
        recompute data in batches of ``stats_batch`` (default: ``chunk``) with momentum ``b / (n + b)`` for a
        batch of ``b`` after ``n`` samples, so that the stored statistics are the sample-weighted average over
        batches (Garipov et al.'s ``bn_update``); they depend on the batch size unless it is ``"all"``."""
        buffers = _fresh_bn_buffers(self._runner, self._buffers)
        with self._bn_train(True):
            self._call(params, buffers, self._update_stats)
        return buffers

    def _update_stats(self, net: nn.Module) -> None:
        seen = 0
        n = len(self.recompute_data)
        batch = self.chunk if self.stats_batch is None else max(n, 1) if self.stats_batch == "all" \
            else self.stats_batch
        for s in chunks(n, batch):
            xb = self.recompute_data[s]
            for m in self._bn_modules:
                m.momentum = len(xb) / (seen + len(xb))
            net(xb)
            seen += len(xb)

    def _evaluate_vmap(self, stacked: torch.Tensor) -> list[LossAcc]:
        """Only the forward pass is vmapped; the loss and the argmax run once on the stacked logits ``(points,
        chunk, classes)``: the same per-row kernels, so the same bits, without the vmapped cross-entropy's
        decomposition (9-17% of a small MLP's points, tests/benchmarks/test_bench_surface.py)."""
        def logits(vec: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
            return self._call(self._params(vec), self._buffers, lambda net: net(xb))

        batched = vmap(logits, in_dims=(0, None))
        totals, corrects = [0.0] * len(stacked), [0] * len(stacked)
        with torch.no_grad():
            for s in chunks(len(self.y), self.chunk):
                out, yb = _full_precision(batched(stacked.to(self.device), self.x[s])), self.y[s]
                points, size = out.shape[:2]
                loss_sums = self._crit(out.reshape(points * size, -1), yb.repeat(points)).view(points, size).sum(1)
                correct_sums = (out.argmax(-1) == yb).sum(1)
                totals = [t + float(v) for t, v in zip(totals, loss_sums)]
                corrects = [c + int(v) for c, v in zip(corrects, correct_sums)]
        return [self._result(t, c) for t, c in zip(totals, corrects)]


class _Runner(nn.Module):
    """Holds the private copy of the network as ``net``; ``forward(fn)`` returns ``fn(net)``. One
    ``functional_call`` of it swaps a point's weights in for a whole pass over the data (swapping them once
    per chunk costs ~0.7 ms a call: a third of a ResNet-8 forward pass over 250 digits)."""

    PREFIX = "net."

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, fn: Callable[[nn.Module], Any]) -> Any:
        return fn(self.net)


class _BNMode:
    """Context: the private copy's BN layers in train mode (``train=True``) for the block, eval after."""

    def __init__(self, modules: list[nn.Module], train: bool):
        self.modules, self.train = modules, train

    def __enter__(self) -> None:
        if self.train:
            for m in self.modules:
                m.train()

    def __exit__(self, *exc: object) -> None:
        if self.train:
            for m in self.modules:
                m.eval()
