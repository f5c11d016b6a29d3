"""Loss patterns by multi-point optimization (MPO): fitting a binary picture into the loss surface of a plane.

Skorokhodov & Burtsev (2019) optimise a whole *plane* of networks at once: "w(alpha, beta) = w_O + alpha w_right
+ beta w_up", whose origin and two directions start from three ordinary initialisations of the model, with
``w_up`` orthogonalised against ``w_right`` and given the same norm. A binary picture (a *landscape pattern*)
of K x K cells is laid on the plane; the loss is minimised in its black cells and maximised in its white
cells, and the plane that comes out carries the picture as low- and high-loss regions, on the training data
and (nearly identically) on the test data.

Here (:class:`PatternPlane`):

* the plane is ``w(x, y) = origin + s (x u + y v)`` with ``origin``, ``u``, ``v`` full flat weight vectors from
  three seeded initialisations (:func:`losslab.core.weights.flatten`), ``v`` replaced by its Gram-Schmidt
  component orthogonal to ``u`` rescaled to ``|u|`` *inside the forward computation* (so the gradients flow
  into ``origin``, ``u`` and ``v`` through the orthogonalisation), and a learned scalar scale ``s``
  (initialised at 0.1).
* Cell ``(i, j)`` of an ``H x W`` pattern is the point ``(x_i, y_j) = (i - (H-1)/2, j - (W-1)/2)``
  (:func:`cell_coordinates`): the paper's coordinates, cell indices in units of the scale ``s`` (its code puts
  cell ``(i, j)`` at ``s (i w_up + j w_right)``), centred as with its ``should_center_origin`` option and made
  symmetric for even ``K``, so that the plane's origin is the centre of the picture. Neighbouring cells are
  ``s |u|`` apart; ``[-1, 1]`` coordinates would make the initial plane ``(K-1)/2`` times smaller and leave
  it to ``s`` to grow.
* Batch normalisation: BN's scale ``gamma`` is the one parameter a fresh initialisation sets to a constant
  (1), so the three initialisations agree on it and a direction made of them carries a large non-zero-mean
  ``gamma`` part. The paper (appendix C; PyTorch up to 1.1 initialised ``gamma ~ U[0, 1]``)
  reparametrises ``gamma = gamma_plane + 0.5``. Here ``gamma = gamma_plane + gamma_shift`` with
  ``gamma_plane ~ U[-gamma_spread, gamma_spread]`` drawn for each of origin, u and v; the default
  ``gamma_shift = 1`` centres the plane at ``gamma = 1`` (PyTorch's present initialisation), and
  ``gamma_shift = 0.5, gamma_spread = 0.5`` is the paper's setting exactly; ``gamma_shift = None`` keeps
  ``gamma`` as a plain weight.

  Statistics: during optimisation every cell's network normalises each minibatch by its own batch statistics
  (nothing is stored: ``torch.func.replace_all_batch_norm_modules_`` on a private copy). For the maps,
  :func:`evaluate_pattern` takes ``bn``: ``recompute`` (the default) gives every cell fresh running
  statistics from a train-mode pass over the training inputs (Garipov et al.'s ``bn_update``) and then
  evaluates it in eval mode, so a cell is an ordinary classifier whose test accuracy does not depend on how
  the test set is chunked or on test-batch statistics; ``batch`` normalises every evaluation chunk by its own
  statistics (cheaper, exactly the optimisation's mode when the chunk is a minibatch, but transductive on
  test data).

The objective (:func:`cell_objective`, :func:`fit_plane`): at each step a seeded random subset of cells
(half black, half white when both exist, as the paper's code draws equal numbers) is evaluated on one
minibatch; the loss is ``mean_black CE - mean_white min(CE, cap)``, where CE is a cell's mean cross-entropy on
the minibatch and the cap (2.5 in the paper) stops white cells from diverging: above it their gradient is
zero. Adam updates ``origin``, ``u``, ``v`` and ``s``. The run is deterministic and resumable: every
``ckpt_every`` steps the plane, Adam's state and the sampler's RNG are written atomically, and a restarted
run continues to bitwise-identical parameters (at a fixed thread count).

Several cells of a step are evaluated either one after another (``loop``) or in one ``torch.vmap``-ed pass
(``vmap``, ``cells_per_call`` cells at a time, the default: faster on this CPU for every net measured);
:func:`cell_throughput` measures both.

Patterns without downloads: :func:`shape_pattern` (ring, cross, disk, square, smiley, full), :func:`glyph_pattern`
(text in PIL's default font), :func:`random_mask` (fill probability ``p``), :func:`load_pattern` (``.npy``,
``.txt``/``.csv``, black-and-white images); :func:`validate_pattern` refuses anything not made of 0 and 1.
Pattern value 1 = black = low loss.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

from losslab import io as lio
from losslab.core.data import Prepared
from losslab.core.directions import orthogonalize
from losslab.core.losses import check_outputs, logits_hook, outputs_as_logits
from losslab.core.weights import ParamLayout, PointEvaluator, flatten, has_batchnorm, tensor_digest
from losslab.core.placement import placement
from losslab.core.progress import Progress

log = logging.getLogger(__name__)

METHODS = ("auto", "loop", "vmap")
EVAL_BN = ("recompute", "batch")
SHAPES = ("full", "disk", "ring", "cross", "square", "smiley")
PATTERN_KINDS = ("shape", "glyph", "random", "file")
FORMAT_VERSION = 1

_BatchNorm = nn.modules.batchnorm._BatchNorm

# ``method="auto"`` in training is ``vmap``: the gradient pass (forward + backward) of a step's cells batched
# by torch.vmap beat one-cell-at-a-time autograd in every setup measured on this 2-core CPU (shared with other
# jobs: +-15%), 1 thread, torch 2.14, 16 cells a step on a minibatch of 64 8x8 digits, in cells/s:
#   fit_plane end to end (sampling, plane, gradients, Adam), 12x12 smiley:
#     convnet [8, 16] (hidden 64, 3.0k weights):    loop 620-750,  vmap 1250-1350
#     the same with BN:                             loop 600-650,  vmap 860-1040
#   cell_throughput (the gradient pass alone):
#     convnet [8, 16]:                              loop 860-890,  vmap 980-1170 (4, 8 or 16 cells a call)
#     convnet [8, 16] + BN:                         loop 615-755,  vmap 1125-1220 (16 a call), 820-1010 (4-8)
#     convnet [8, 16], pooled 4x4, hidden 128 (35k): loop 625,     vmap 930-940 (16), 640-785 (4-8)
#     the same + BN:                                loop 580-590,  vmap 775-785 (16), 525-675 (4-8)
#     MLP 64-32-10 (2.4k weights):                  loop 4.0k,     vmap 12k (16), 3.7k-7.4k (4-8)
# so a call takes the whole step (``cells_per_call`` 16); lower it to bound memory (vmap holds that many
# cells' activations at once). The maps (forward only) go through PointEvaluator, whose ``auto`` rule stands:
# there the loop was level or ahead (convnet [8, 16], 144 cells over 1437 + 360 digits: loop 137 cells/s,
# vmap 121; with BN and recomputed statistics, loop only: 62).
DEFAULT_CELLS_PER_CALL = 16


class PatternError(ValueError):
    """A pattern is not a binary picture (or cannot be made or read)."""


class PatternMismatchError(ValueError):
    """A checkpoint was written by a run with other settings than the one asked to resume it."""


# ---------------------------------------------------------------- the plane ---------------------------------

def cell_coordinates(shape: Sequence[int]) -> torch.Tensor:
    """Plane coordinates of the cells of an ``H x W`` pattern, shape ``(H, W, 2)``: cell ``(i, j)`` is the
    point ``(x_i, y_j) = (i - (H-1)/2, j - (W-1)/2)`` (cell indices centred on the plane's origin, in units
    of the scale ``s``)."""
    h, w = (int(n) for n in shape)
    if h < 1 or w < 1:
        raise PatternError(f"a pattern needs at least one cell, not shape {tuple(shape)}")
    x = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    y = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    return torch.stack(torch.meshgrid(x, y, indexing="ij"), dim=-1)


def gamma_mask(model: nn.Module) -> torch.Tensor:
    """Flat boolean mask (``named_parameters`` order) of the BN scale (``gamma``, i.e. BN ``weight``) entries."""
    gammas = {id(m.weight) for m in model.modules() if isinstance(m, _BatchNorm) and m.weight is not None}
    return torch.cat([torch.full((p.numel(),), id(p) in gammas) for p in model.parameters()])


class PatternPlane(nn.Module):
    """The plane ``w(x, y) = shift + origin + s (x u + y v_hat)`` of multi-point optimization.

    ``origin``, ``u`` and ``v`` are flat vectors in ``layout`` (the model's ``named_parameters`` order) and
    ``s`` (``scale``) a scalar, all learned. ``v_hat`` is ``v``'s Gram-Schmidt component orthogonal to ``u``,
    rescaled to ``|u|`` (:meth:`directions`), recomputed in every forward pass. ``shift`` is a constant
    vector: ``gamma_shift`` on the BN scale entries (the reparametrisation ``gamma = gamma_plane + shift``),
    zero elsewhere. Build one from three seeded initialisations with :meth:`from_inits`.
    """

    def __init__(self, layout: ParamLayout, origin: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
                 scale: float = 0.1, shift: torch.Tensor | None = None):
        super().__init__()
        for name, t in (("origin", origin), ("u", u), ("v", v)) + ((("shift", shift),) if shift is not None else ()):
            if t.ndim != 1 or t.shape[0] != layout.size:
                raise ValueError(f"{name}: expected a flat vector of {layout.size} weights, got {tuple(t.shape)}")
        self.layout = layout
        self.origin = nn.Parameter(origin.detach().clone().float())
        self.u = nn.Parameter(u.detach().clone().float())
        self.v = nn.Parameter(v.detach().clone().float())
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.register_buffer("shift", torch.zeros(layout.size) if shift is None else shift.detach().clone().float())

    @classmethod
    def from_inits(cls, factory: Callable[[], nn.Module], seeds: Sequence[int] = (0, 1, 2), scale: float = 0.1,
                   gamma_shift: float | None = 1.0, gamma_spread: float = 0.5) -> "PatternPlane":
        """The plane whose origin, ``u`` and ``v`` are the flat weights of ``factory()`` built after
        ``torch.manual_seed(seed)`` for each of the three ``seeds`` (the global RNG is restored afterwards).

        For a model with batch norm and ``gamma_shift`` not None, each vector's BN scale entries are
        replaced by ``gamma_plane ~ U[-gamma_spread, gamma_spread]`` (drawn from ``seed``) and the plane adds
        ``gamma_shift`` to them: the plane is centred at ``gamma = gamma_shift`` (1 by default; the paper's
        appendix C uses 0.5 with ``gamma_spread = 0.5``)."""
        if len(seeds) != 3:
            raise ValueError(f"the plane needs three seeds (origin, u, v), got {list(seeds)}")
        if gamma_spread < 0:
            raise ValueError(f"gamma_spread must be >= 0, not {gamma_spread}")
        vectors, layout, mask = [], None, None
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                model = factory()
            vec = flatten(model).float()
            if layout is None:
                layout, mask = ParamLayout.of(model), gamma_mask(model)
            elif ParamLayout.of(model) != layout:
                raise ValueError("factory() built models of different architectures for different seeds")
            if gamma_shift is not None and bool(mask.any()):
                gen = torch.Generator().manual_seed(int(seed))
                vec[mask] = (torch.rand(int(mask.sum()), generator=gen) * 2 - 1) * gamma_spread
            vectors.append(vec)
        assert layout is not None and mask is not None
        shift = mask.float() * gamma_shift if gamma_shift is not None else None
        return cls(layout, *vectors, scale=scale, shift=shift)

    def directions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, v_hat)``: ``v_hat`` is ``v`` minus its projection on ``u`` (Gram-Schmidt), rescaled to ``|u|``;
        differentiable in ``u`` and ``v``."""
        v_perp = orthogonalize(self.v, self.u)
        return self.u, v_perp * (self.u.norm() / v_perp.norm())

    def weights(self, coords: torch.Tensor) -> torch.Tensor:
        """Flat network weights at plane coordinates ``coords`` (shape ``(..., 2)``): shape ``(..., P)``."""
        u, v_hat = self.directions()
        return self.shift + self.origin + self.scale * (coords[..., :1] * u + coords[..., 1:] * v_hat)

    def cell_weights(self, shape: Sequence[int]) -> torch.Tensor:
        """Flat weights of every cell of an ``H x W`` pattern, row-major: shape ``(H * W, P)``."""
        return self.weights(cell_coordinates(shape).reshape(-1, 2))

    def check_model(self, model: nn.Module) -> None:
        """Raise unless ``model`` has this plane's parameter layout."""
        if ParamLayout.of(model) != self.layout:
            raise ValueError(f"{type(model).__name__} does not have the plane's parameter layout "
                             f"({len(self.layout.names)} tensors, {self.layout.size} weights)")


# ---------------------------------------------------------------- the objective -----------------------------

def cell_objective(ce: torch.Tensor, black: torch.Tensor, cap: float) -> torch.Tensor:
    """Per-cell term of the MPO loss: ``CE`` in black cells (minimised), ``-min(CE, cap)`` in white cells
    (the capped cross-entropy maximised; zero gradient above the cap)."""
    return torch.where(black, ce, -torch.clamp(ce, max=cap))


class CellNet:
    """The model evaluated at cell weights during optimisation: a private eval-mode copy (no dropout) whose
    BN layers use each minibatch's own statistics and store none, so that cells can be ``torch.vmap``-ed.
    The copy lives on ``device`` (default: the job's :func:`losslab.core.placement.placement`); cells and minibatches
    are moved there for a call and the results come back to the cells' device."""

    def __init__(self, model: nn.Module, cap: float = 2.5, device: str | torch.device | None = None):
        self.layout = ParamLayout.of(model)
        self.device = placement().device if device is None else torch.device(device)
        self.net = copy.deepcopy(model).eval().to(self.device)
        self.net.register_forward_hook(logits_hook)  # a (logits, ...) output as its logits (losses.py)
        replace_all_batch_norm_modules_(self.net)
        self.cap = float(cap)
        self._grad = grad(self._term, has_aux=True)
        self._vgrad = vmap(self._grad, in_dims=(0, 0, 0, None, None))

    @staticmethod
    def resolve(method: str) -> str:
        """``auto`` -> ``vmap`` (measured faster for every net tried; see the module's timing table)."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; known: {list(METHODS)}")
        return "vmap" if method == "auto" else method

    def _term(self, w: torch.Tensor, black: torch.Tensor, weight: torch.Tensor, xb: torch.Tensor,
              yb: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out = functional_call(self.net, self.layout.to_dict(w), (xb,))
        ce = nn.functional.cross_entropy(out, yb)
        acc = (out.argmax(-1) == yb).float().mean()
        return weight * cell_objective(ce, black, self.cap), (ce, acc)

    def _one(self, w: torch.Tensor, black: torch.Tensor, weight: torch.Tensor, xb: torch.Tensor,
             yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One cell by ordinary autograd (faster than ``torch.func.grad`` one cell at a time)."""
        w = w.detach().requires_grad_()
        with torch.enable_grad():
            value, (ce, acc) = self._term(w, black, weight, xb, yb)
            (g,) = torch.autograd.grad(value, w)
        return g, ce.detach(), acc.detach()

    def gradients(self, cells: torch.Tensor, black: torch.Tensor, weight: torch.Tensor, xb: torch.Tensor,
                  yb: torch.Tensor, method: str = "auto", cells_per_call: int = DEFAULT_CELLS_PER_CALL
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gradient of ``sum_i weight_i * cell_objective(CE_i)`` with respect to each cell's flat weights
        ``cells`` (``(n, P)``, no graph needed), and each cell's CE and accuracy on ``(xb, yb)``.

        ``loop`` takes one cell after another, ``vmap`` ``cells_per_call`` at a time; both hold one call's
        activations in memory at once."""
        home = cells.device
        cells, black, weight, xb, yb = (t.detach().to(self.device) for t in (cells, black, weight, xb, yb))
        if self.resolve(method) == "loop":
            parts = [self._one(cells[i], black[i], weight[i], xb, yb) for i in range(len(cells))]
            return tuple(torch.stack(t).to(home) for t in zip(*parts))
        gs, ces, accs = [], [], []
        step = max(1, cells_per_call)
        for start in range(0, len(cells), step):
            sl = slice(start, start + step)
            g, (ce, acc) = self._vgrad(cells[sl], black[sl], weight[sl], xb, yb)
            gs.append(g)
            ces.append(ce)
            accs.append(acc)
        return torch.cat(gs).to(home), torch.cat(ces).detach().to(home), torch.cat(accs).to(home)


def cell_throughput(plane: PatternPlane, model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_cells: int = 16,
                    method: str = "loop", cells_per_call: int = DEFAULT_CELLS_PER_CALL, repeats: int = 5,
                    cap: float = 2.5) -> float:
    """Cells per second of one MPO gradient pass (forward and backward of ``n_cells`` cells on the minibatch
    ``(x, y)``, half of them black), by ``method``: the best of ``repeats`` timed passes after a warm-up."""
    plane.check_model(model)
    net = CellNet(model, cap)
    side = math.ceil(math.sqrt(n_cells))
    cells = plane.cell_weights((side, side))[:n_cells].detach()
    black = torch.arange(n_cells) % 2 == 0
    weight = torch.full((n_cells,), 1.0 / n_cells)
    net.gradients(cells, black, weight, x, y, method, cells_per_call)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        net.gradients(cells, black, weight, x, y, method, cells_per_call)
        best = min(best, time.perf_counter() - t0)
    return n_cells / best


# ---------------------------------------------------------------- optimisation ------------------------------

@dataclass(frozen=True)
class MPOConfig:
    """Settings of one multi-point optimization run (a config mapping's keys; anything else is refused).

    Plane: ``init_seeds`` (origin, u, v), ``scale`` (initial ``s``), ``gamma_shift`` / ``gamma_spread`` (BN
    reparametrisation; ``gamma_shift: null`` for none). Optimisation: ``steps`` of Adam with ``lr``, a
    ``batch_size`` minibatch and ``cells_per_step`` cells per step, white cells' CE capped at ``cap``;
    ``method`` / ``cells_per_call`` (loop or vmap over cells); a checkpoint every ``ckpt_every`` steps.
    Maps: ``eval_bn`` (``recompute`` or ``batch``), ``eval_chunk``, ``eval_method``, and ``n_eval_train`` /
    ``n_eval_test`` (fixed subsets; all when null)."""

    steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 64
    cells_per_step: int = 16
    cap: float = 2.5
    init_seeds: tuple[int, int, int] = (0, 1, 2)
    scale: float = 0.1
    gamma_shift: float | None = 1.0
    gamma_spread: float = 0.5
    method: str = "auto"
    cells_per_call: int = DEFAULT_CELLS_PER_CALL
    ckpt_every: int = 50
    eval_bn: str = "recompute"
    eval_chunk: int = 500
    eval_method: str = "auto"
    n_eval_train: int | None = None
    n_eval_test: int | None = None

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> "MPOConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"mpo config: unknown key(s) {unknown}; known: {sorted(known)}")
        spec = dict(spec)
        if "init_seeds" in spec:
            spec["init_seeds"] = tuple(int(s) for s in spec["init_seeds"])
        config = cls(**spec)
        config.validate()
        return config

    def validate(self) -> None:
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"mpo config: {name} must be a positive integer, not {v!r}")

        for name in ("steps", "batch_size", "cells_per_step", "cells_per_call", "ckpt_every", "eval_chunk"):
            positive_int(name)
        for name in ("lr", "cap", "scale"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"mpo config: {name} must be a finite positive number, not {v!r}")
        if len(self.init_seeds) != 3:
            raise ValueError(f"mpo config: init_seeds must be three seeds, not {self.init_seeds!r}")
        if self.method not in METHODS or self.eval_method not in METHODS:
            raise ValueError(f"mpo config: method / eval_method must be one of {list(METHODS)}")
        if self.eval_bn not in EVAL_BN:
            raise ValueError(f"mpo config: eval_bn must be one of {list(EVAL_BN)}, not {self.eval_bn!r}")
        if self.gamma_spread < 0:
            raise ValueError(f"mpo config: gamma_spread must be >= 0, not {self.gamma_spread!r}")

    def plane(self, factory: Callable[[], nn.Module]) -> PatternPlane:
        """The initial plane of this run."""
        return PatternPlane.from_inits(factory, self.init_seeds, self.scale, self.gamma_shift, self.gamma_spread)


def sample_cells(pattern: np.ndarray, n: int, generator: torch.Generator) -> torch.Tensor:
    """Flat (row-major) indices of ``n`` cells drawn without replacement: half black, half white when both
    exist (an odd one black), topped up from the other colour when one has too few."""
    flat = torch.as_tensor(np.asarray(pattern).reshape(-1))
    black, white = torch.nonzero(flat == 1).flatten(), torch.nonzero(flat == 0).flatten()
    n_black = min(len(black), n - min(len(white), n // 2))
    n_white = min(len(white), n - n_black)
    pick_b = black[torch.randperm(len(black), generator=generator)[:n_black]]
    pick_w = white[torch.randperm(len(white), generator=generator)[:n_white]]
    return torch.cat([pick_b, pick_w])


# settings that do not change the optimisation's trajectory: a run may be resumed with other values (e.g. more steps)
_NOT_IN_TRAJECTORY = ("steps", "ckpt_every", "eval_bn", "eval_chunk", "eval_method", "n_eval_train", "n_eval_test")


def trajectory_settings(config: MPOConfig) -> dict[str, Any]:
    """The settings of ``config`` that determine the optimisation's trajectory: all but ``steps``, the
    checkpoint interval and the maps' settings (a run may be resumed, or continued, with other values of
    those). Use it to name a run's checkpoint."""
    return {k: v for k, v in asdict(config).items() if k not in _NOT_IN_TRAJECTORY}


def _fingerprint(plane: PatternPlane, pattern: np.ndarray, data: Prepared, config: MPOConfig, seed: int,
                 method: str) -> dict[str, Any]:
    """What determines the trajectory of a run: a checkpoint is only resumed by a run with the same one."""
    trajectory = trajectory_settings(config)
    return {"format": FORMAT_VERSION, "config": json.dumps(trajectory, sort_keys=True), "seed": int(seed),
            "method": method, "pattern_sha256": tensor_digest(torch.as_tensor(pattern)),
            "data_sha256": tensor_digest(data.x_train, data.y_train),
            "layout": json.dumps([[n, list(s)] for n, s in zip(plane.layout.names, plane.layout.shapes)]),
            "initial_plane_sha256": tensor_digest(*(plane.state_dict()[k] for k in sorted(plane.state_dict())))}


def fit_plane(plane: PatternPlane, model: nn.Module, pattern: np.ndarray, data: Prepared, config: MPOConfig,
                seed: int = 0, ckpt_path: str | Path | None = None,
                on_step: Callable[[int, dict[str, float]], None] | None = None,
                progress: bool = False) -> dict[str, Any]:
    """Multi-point optimization of ``plane`` (in place) to the landscape ``pattern`` on ``data``'s training split.

    Each step draws ``config.cells_per_step`` cells (:func:`sample_cells`) and a ``config.batch_size``
    minibatch (augmented by ``data``'s random steps) from ``torch.Generator().manual_seed(seed)``, and takes
    one Adam step on ``mean_black CE - mean_white min(CE, cap)``. ``model`` gives the architecture (its
    weights are not used). With ``ckpt_path``, the state is written atomically every ``config.ckpt_every``
    steps and at the end, and an existing checkpoint is resumed (refused with :class:`PatternMismatchError`
    when written with settings that change the trajectory; ``steps`` may grow). ``on_step(step, row)`` is
    called after every step; ``progress``: a bar of the steps (:class:`losslab.core.progress.Progress`).

    Returns ``{"step", "history", "wall", "diverged", "method"}``; ``history`` has one row per step: the
    sampled cells' mean black / white minibatch CE and accuracy, and ``s``.
    """
    pattern = validate_pattern(pattern)
    config.validate()
    plane.check_model(model)
    data.check_finite()
    with outputs_as_logits(model):  # the model probed once on one sample (its weights are not used here)
        check_outputs(model, data.x_train[:1], {"train labels": data.y_train, "test labels": data.y_test})
    net = CellNet(model, config.cap)
    method = net.resolve(config.method)
    coords = cell_coordinates(pattern.shape).reshape(-1, 2)
    is_black_cell = torch.as_tensor(pattern.reshape(-1) == 1)
    fingerprint = _fingerprint(plane, pattern, data, config, seed, method)
    opt = torch.optim.Adam(plane.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(int(seed))
    state: dict[str, Any] = {"step": 0, "history": [], "wall": 0.0, "diverged": False}
    ckpt_path = Path(ckpt_path) if ckpt_path is not None else None
    if ckpt_path is not None and ckpt_path.exists():
        ck = lio.load_torch(ckpt_path)
        if ck.get("fingerprint") != fingerprint:
            diff = sorted(k for k in fingerprint if ck.get("fingerprint", {}).get(k) != fingerprint[k])
            raise PatternMismatchError(f"{ckpt_path}: checkpoint of another run (differs in {diff}); "
                                       f"delete it or use another path")
        plane.load_state_dict(ck["plane"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["gen"])
        state = {k: ck[k] for k in ("step", "history", "wall", "diverged")}
        log.info("resumed %s at step %d", ckpt_path, state["step"])

    def save() -> None:
        if ckpt_path is not None:
            lio.save_torch(ckpt_path, {"plane": plane.state_dict(), "optimizer": opt.state_dict(),
                                       "gen": gen.get_state(), "fingerprint": fingerprint, **state})

    n = len(data.y_train)
    bs = min(config.batch_size, n)
    bar = Progress(config.steps, "MPO fit", enabled=progress, unit="step", initial=state["step"])
    while state["step"] < config.steps and not state["diverged"]:
        t0 = time.perf_counter()
        idx = sample_cells(pattern, config.cells_per_step, gen)
        batch = torch.randperm(n, generator=gen)[:bs]
        xb, yb = data.augment(data.x_train[batch], gen), data.y_train[batch]
        black = is_black_cell[idx]
        n_black, n_white = int(black.sum()), int((~black).sum())
        weight = torch.where(black, 1.0 / max(n_black, 1), 1.0 / max(n_white, 1))
        cells = plane.weights(coords[idx])
        g, ce, acc = net.gradients(cells, black, weight, xb, yb, method, config.cells_per_call)
        if not bool(torch.isfinite(ce).all()):
            state["diverged"] = True
            log.warning("non-finite cross-entropy at step %d: run diverged", state["step"])
            break
        opt.zero_grad(set_to_none=True)
        cells.backward(g)
        opt.step()
        state["step"] += 1
        nan = float("nan")
        row = {"step": state["step"], "scale": float(plane.scale.detach()),
               "black_loss": float(ce[black].mean()) if n_black else nan,
               "white_loss": float(ce[~black].mean()) if n_white else nan,
               "black_acc": float(acc[black].mean()) if n_black else nan,
               "white_acc": float(acc[~black].mean()) if n_white else nan}
        state["history"].append(row)
        state["wall"] += time.perf_counter() - t0
        if state["step"] % config.ckpt_every == 0 or state["step"] == config.steps:
            save()
        if on_step is not None:
            on_step(state["step"], row)
        bar.update()
    bar.close()
    if state["diverged"]:
        save()
    return {**state, "method": method}


# ---------------------------------------------------------------- maps and metrics --------------------------

@dataclass(frozen=True)
class PatternMaps:
    """Per-cell loss and accuracy of the fitted plane, arrays shaped like the pattern (``[i, j]`` = cell
    ``(x_i, y_j)``), on the training and test data."""

    train_loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray

    def save(self, path: str | Path, **extra: np.ndarray) -> None:
        """Write the four maps (and ``extra`` arrays, e.g. ``pattern``) to an ``.npz`` file atomically."""
        with lio.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **asdict(self), **extra)

    @classmethod
    def load(cls, path: str | Path) -> "PatternMaps":
        with np.load(path) as f:
            return cls(**{k.name: f[k.name] for k in fields(cls)})


def evaluate_pattern(plane: PatternPlane, model: nn.Module, data: Prepared, shape: Sequence[int],
                     bn: str = "recompute", chunk: int = 500, method: str = "auto", n_train: int | None = None,
                     n_test: int | None = None) -> PatternMaps:
    """Loss and accuracy of every cell of an ``H x W`` pattern on the training and test split (fixed subsets
    of ``n_train`` / ``n_test`` samples when given), through :class:`losslab.core.weights.PointEvaluator`.

    ``bn`` (models with batch norm): ``recompute`` gives each cell fresh running statistics from a
    train-mode pass over the (evaluated) training inputs, then evaluates in eval mode; ``batch`` normalises
    each ``chunk`` by its own statistics. ``method`` is the evaluator's ``many`` (vmap is only available
    without BN)."""
    if bn not in EVAL_BN:
        raise ValueError(f"unknown evaluation BN policy {bn!r}; known: {list(EVAL_BN)}")
    plane.check_model(model)
    ev = data.evaluation_subsets(n_train, n_test)
    x_tr, y_tr, x_te, y_te = ev.x_train, ev.y_train, ev.x_test, ev.y_test
    many = "loop" if has_batchnorm(model) else method
    train_ev = PointEvaluator(model, x_tr, y_tr, loss="ce", bn=bn, chunk=chunk, many=many)
    test_ev = train_ev.with_data(x_te, y_te)
    with torch.no_grad():
        vecs = plane.cell_weights(shape).detach()
    if train_ev.many == "vmap":
        train, test = train_ev.evaluate_many(vecs), test_ev.evaluate_many(vecs)
    else:  # cell by cell, train then test: recomputed BN statistics are computed once per cell
        pairs = [(train_ev.evaluate(v), test_ev.evaluate(v)) for v in vecs]
        train, test = [p[0] for p in pairs], [p[1] for p in pairs]
    h, w = (int(n) for n in shape)

    def grid(results: list, attr: str) -> np.ndarray:
        return np.array([getattr(r, attr) for r in results], dtype=np.float64).reshape(h, w)

    return PatternMaps(grid(train, "loss"), grid(train, "acc"), grid(test, "loss"), grid(test, "acc"))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1) - a.mean(), b.reshape(-1) - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def fit_metrics(pattern: np.ndarray, maps: PatternMaps) -> dict[str, float]:
    """How well the plane carries the pattern, per split (``train``, ``test``):

    * ``{split}_black_acc`` / ``{split}_white_acc``: mean accuracy over black / white cells, and the
      pattern-fit gap ``{split}_acc_gap`` = black minus white (1 for a perfect fit; NaN without white cells);
    * the same for the loss: ``{split}_black_loss``, ``{split}_white_loss``, ``{split}_loss_gap`` = black
      minus white (negative when fitted);
    * ``train_test_corr_acc`` / ``train_test_corr_loss``: Pearson correlation over cells between the train
      and test maps (NaN when a map is constant).
    """
    pattern = validate_pattern(pattern)
    black, white = pattern == 1, pattern == 0
    out: dict[str, float] = {}
    for split in ("train", "test"):
        for metric in ("acc", "loss"):
            m = getattr(maps, f"{split}_{metric}")
            if m.shape != pattern.shape:
                raise ValueError(f"{split}_{metric} map has shape {m.shape}, the pattern {pattern.shape}")
            b = float(m[black].mean()) if black.any() else float("nan")
            w = float(m[white].mean()) if white.any() else float("nan")
            out.update({f"{split}_black_{metric}": b, f"{split}_white_{metric}": w, f"{split}_{metric}_gap": b - w})
    out["train_test_corr_acc"] = _correlation(maps.train_acc, maps.test_acc)
    out["train_test_corr_loss"] = _correlation(maps.train_loss, maps.test_loss)
    return out


# ---------------------------------------------------------------- patterns ---------------------------------

def validate_pattern(pattern: Any, name: str = "pattern") -> np.ndarray:
    """``pattern`` as a 2-D ``uint8`` array of 0 (white, high loss) and 1 (black, low loss); a
    :class:`PatternError` naming ``name`` (e.g. the file) if it is not 2-D or holds any other value."""
    try:
        arr = np.asarray(pattern, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise PatternError(f"{name}: not a numeric array ({err})") from err
    if arr.ndim != 2 or arr.size == 0:
        raise PatternError(f"{name}: a pattern must be a non-empty 2-D array, got shape {arr.shape}")
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        values = np.unique(arr[bad])[:5]
        raise PatternError(f"{name}: not a binary pattern: {int(bad.sum())} of {arr.size} cells hold values "
                           f"other than 0 and 1 (e.g. {', '.join(f'{v:g}' for v in values)})")
    return arr.astype(np.uint8)


_IMAGE_SUFFIXES = (".png", ".pbm", ".bmp", ".gif", ".tif", ".tiff")


def load_pattern(path: str | Path) -> np.ndarray:
    """A pattern from a file: ``.npy``, ``.txt`` / ``.csv`` (0/1 values), or a black-and-white image (only
    pure black and pure white pixels; black = 1). Anything not binary raises :class:`PatternError` naming
    the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such pattern file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".txt", ".csv"):
            arr = np.loadtxt(path, delimiter="," if suffix == ".csv" else None, ndmin=2)
        elif suffix in _IMAGE_SUFFIXES:
            from PIL import Image

            with Image.open(path) as img:
                grey = np.asarray(img.convert("L"), dtype=np.float64)
            if not np.isin(grey, (0.0, 255.0)).all():
                raise PatternError(f"{path}: not a binary pattern: the image has grey levels other than pure "
                                   f"black and white ({', '.join(f'{v:g}' for v in np.unique(grey)[:5])}, ...)")
            arr = (grey == 0).astype(np.uint8)
        else:
            raise PatternError(f"{path}: unknown pattern format {suffix!r}; use .npy, .txt, .csv or an image")
    except PatternError:
        raise
    except Exception as err:
        raise PatternError(f"{path}: cannot be read as a pattern ({err})") from err
    return validate_pattern(arr, name=str(path))


def save_pattern(path: str | Path, pattern: np.ndarray) -> None:
    """Write a pattern atomically as ``.npy`` or as a black-and-white ``.png`` (black = 1)."""
    pattern = validate_pattern(pattern)
    path = Path(path)
    with lio.atomic_path(path) as tmp:
        if path.suffix.lower() == ".png":
            from PIL import Image

            Image.fromarray(((1 - pattern) * 255).astype(np.uint8), mode="L").save(tmp, format="PNG")
        elif path.suffix.lower() == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, pattern)
        else:
            raise PatternError(f"{path}: save a pattern as .npy or .png")


def _downsample(img: Any, size: int, threshold: float) -> np.ndarray:
    """A white-on-black ``L`` image, area-averaged to ``size x size`` and thresholded (ink fraction)."""
    from PIL import Image

    small = img.resize((size, size), Image.Resampling.BOX)
    return (np.asarray(small, dtype=np.float64) / 255.0 >= threshold).astype(np.uint8)


def _check_size(size: int) -> int:
    if not (isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 2):
        raise PatternError(f"pattern size must be an integer >= 2, not {size!r}")
    return int(size)


def shape_pattern(name: str, size: int, threshold: float = 0.5) -> np.ndarray:
    """A simple shape drawn with PIL on a fine canvas, area-downsampled to ``size x size`` and thresholded:
    ``full`` (every cell black: the trivial pattern), ``disk``, ``ring``, ``cross``, ``square`` (a frame),
    ``smiley``. Strokes are about 1.5 cells wide (the frame: one) so they survive the downsampling."""
    from PIL import Image, ImageDraw

    size = _check_size(size)
    if name not in SHAPES:
        raise PatternError(f"unknown shape {name!r}; known: {list(SHAPES)}")
    if name == "full":
        return np.ones((size, size), dtype=np.uint8)
    cell = 16
    r = size * cell
    img = Image.new("L", (r, r), 0)
    d = ImageDraw.Draw(img)
    m, stroke = cell // 2, int(1.5 * cell)  # margin half a cell
    box = (m, m, r - 1 - m, r - 1 - m)
    if name == "disk":
        d.ellipse(box, fill=255)
    elif name == "ring":
        d.ellipse(box, outline=255, width=stroke)
    elif name == "cross":
        lo, hi = (r - stroke) // 2, (r + stroke) // 2
        d.rectangle((m, lo, r - 1 - m, hi), fill=255)
        d.rectangle((lo, m, hi, r - 1 - m), fill=255)
    elif name == "square":  # a frame one cell wide, one cell in from the border
        d.rectangle((cell, cell, r - 1 - cell, r - 1 - cell), outline=255, width=cell)
    else:  # smiley: face outline, two eyes, a smile
        d.ellipse(box, outline=255, width=stroke)
        eye = max(stroke, r // 8)
        for cx in (0.35 * r, 0.65 * r):
            d.ellipse((cx - eye / 2, 0.32 * r - eye / 2, cx + eye / 2, 0.32 * r + eye / 2), fill=255)
        d.arc((0.27 * r, 0.3 * r, 0.73 * r, 0.76 * r), start=20, end=160, fill=255, width=stroke)
    return _downsample(img, size, threshold)


def glyph_pattern(text: str, size: int, threshold: float = 0.5, margin: float = 0.1) -> np.ndarray:
    """``text`` (e.g. one letter) rendered with PIL's default font, cropped to its ink, centred on a square with
    ``margin`` (a fraction of its side) on each side, area-downsampled to ``size x size`` and thresholded.

    The font is Pillow's bundled scalable default (drawn about 16 pixels a cell, strokes thickened to about a
    cell so that thin lines survive the downsampling), or, without FreeType, its bitmap font upsampled."""
    from PIL import Image, ImageDraw, ImageFont, features

    size = _check_size(size)
    if not text:
        raise PatternError("glyph_pattern needs a non-empty text")
    if features.check("freetype2"):
        px = min(16 * size, 1024)
        font: Any = ImageFont.load_default(size=px)
        stroke = round(0.03 * px)
    else:
        px, font, stroke = 11, ImageFont.load_default(), 0
    canvas = Image.new("L", ((len(text) + 1) * px, 2 * px), 0)
    ImageDraw.Draw(canvas).text((px // 2, px // 2), text, fill=255, font=font, stroke_width=stroke,
                                stroke_fill=255)
    bbox = canvas.getbbox()
    if bbox is None:
        raise PatternError(f"text {text!r} draws no ink in PIL's default font")
    ink = canvas.crop(bbox)
    side = max(ink.size)
    pad = int(math.ceil(margin * side))
    square = Image.new("L", (side + 2 * pad,) * 2, 0)
    square.paste(ink, (pad + (side - ink.size[0]) // 2, pad + (side - ink.size[1]) // 2))
    factor = max(1, math.ceil(8 * size / square.size[0]))  # box-averaging needs several pixels a cell
    if factor > 1:
        square = square.resize((square.size[0] * factor,) * 2, Image.Resampling.NEAREST)
    return _downsample(square, size, threshold)


def random_mask(size: int, p: float, seed: int) -> np.ndarray:
    """A ``size x size`` random pattern: each cell black (1) with probability ``p``, independently, drawn from
    ``torch.Generator().manual_seed(seed)``."""
    size = _check_size(size)
    if not 0.0 <= p <= 1.0:
        raise PatternError(f"fill probability must be in [0, 1], not {p!r}")
    gen = torch.Generator().manual_seed(int(seed))
    return (torch.rand((size, size), generator=gen) < p).numpy().astype(np.uint8)


def make_pattern(spec: Mapping[str, Any]) -> np.ndarray:
    """A pattern from a config mapping: ``{kind: shape, name: ring, size: 12}``, ``{kind: glyph, text: A,
    size: 12}``, ``{kind: random, p: 0.5, size: 12, seed: 0}`` or ``{kind: file, path: ...}``."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    allowed = {"shape": {"name", "size", "threshold"}, "glyph": {"text", "size", "threshold", "margin"},
               "random": {"size", "p", "seed"}, "file": {"path"}}
    if kind not in allowed:
        raise PatternError(f"unknown pattern kind {kind!r}; known: {list(PATTERN_KINDS)}")
    unknown = sorted(set(spec) - allowed[kind])
    if unknown:
        raise PatternError(f"pattern kind {kind!r}: unknown option(s) {unknown}; known: {sorted(allowed[kind])}")
    if kind == "shape":
        return shape_pattern(**spec)
    if kind == "glyph":
        return glyph_pattern(**spec)
    if kind == "random":
        return random_mask(**spec)
    return load_pattern(**spec)
