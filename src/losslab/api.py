"""losslab on your own model: the analyses of the papers for any ``torch.nn.Module`` and any data.

This is the small, stable surface of losslab for a researcher who brings a model and data (the workflow's
model zoo and datasets are not needed). Every function takes a model (an ``nn.Module``; it is never
mutated) and data given as tensors or a ``DataLoader`` (:func:`as_data`), and returns plain results: NumPy
arrays in dataclasses. Functions that compute a surface or a curve also write the same HDF5 files as the
Snakemake workflow when given a ``path``, and :func:`plot` draws the workflow's figures from such a file.

Data. ``data`` is any of

* ``(x, y)``: training inputs and labels (tensors or NumPy arrays); no test split;
* ``(x_train, y_train, x_test, y_test)``;
* ``((x, y), (x_test, y_test))`` or ``{"train": ..., "test": ...}``, each split a pair or a ``DataLoader``;
* a ``DataLoader`` yielding ``(x, y)`` batches (the training split), or a :class:`losslab.core.data.Prepared`.

A ``DataLoader`` is read once into tensors (at most ``max_samples`` samples, else a ``ValueError`` says how
many it holds); everything is then evaluated in memory, chunk by chunk. Without a test split, surfaces hold
only ``train_loss`` / ``train_acc``; a curve evaluation and a pattern fit need one.

The analyses, in the papers' words:

* :func:`surface`: Li et al. (2018)'s 1-D or 2-D surface ``L(theta* + alpha delta + beta eta)`` around a
  model, along random directions with filter normalization (``norm``, ``ignore``) or given ones (a
  :class:`losslab.core.directions.Directions`, a direction file, re-normalized to the model's filters or as
  saved); every surface carries the directions it used (``s.directions``, written by ``save_directions``);
* :func:`trajectory_directions`: Li et al.'s PCA plane of a training trajectory (saved checkpoints) with the
  trajectory's coordinates in it, for :func:`surface`;
* :func:`interpolate`: Goodfellow et al.'s linear interpolation ``(1 - alpha) theta_0 + alpha theta_1``
  between two models; :func:`plane`: the plane through three models (Garipov et al.);
  :func:`surface_between` picks one of the two by the number of models;
* :func:`hessian_eigenvalues` (Lanczos: top-k or smallest), :func:`spectral_density` (stochastic Lanczos
  quadrature), :func:`hessian_trace` (Hutchinson), :func:`sharpness` (Keskar et al.'s epsilon-sharpness);
* :func:`train_curve` and :func:`evaluate_curve`: a Bezier or polygonal-chain curve with ``bends`` between two
  models, trained, then evaluated over ``t`` with the BN statistics recomputed at every point;
* :func:`fit_pattern`: a multi-point-optimization (MPO) plane fitted to a binary pattern (Skorokhodov &
  Burtsev 2019);
* :func:`eigenvector_line` (the loss along a Hessian eigenvector, PyHessian's plot), :func:`layer_spectra`
  (per-layer Hessian blocks), :func:`ratio_map` (Li et al.'s Fig. 7), :func:`curve_plane` (Garipov et al.'s
  ``plane.py``), :func:`export_vtp` (Li et al.'s ``h52vtp.py``);
* :func:`train` (a plain training loop, to make the models), :func:`load_checkpoint`, :func:`plot`;
* :func:`convert_surface` and :func:`convert_directions`: surface and direction files between losslab's layout
  and that of Li et al.'s code (github.com/tomgoldstein/loss-landscape: their ``plot_2D`` / ``plot_1D`` draw
  losslab's surfaces, losslab reads and plots theirs; :mod:`losslab.core.li_files`). losslab's readers and
  :func:`plot` take their files directly.

Batch normalisation is the ``bn`` argument everywhere (:mod:`losslab.core.weights`): ``running`` (the model's own
running statistics, Li et al.'s and PyHessian's choice), ``recompute`` (fresh statistics at every point from
the training inputs, Garipov et al.'s ``bn_update``) or ``batch``; :func:`interpolate` also offers
``interpolate`` (the two models' running statistics interpolated like the weights, Li et al.'s README). Around
one model the default is ``running``; between models (whose statistics belong to one end only) it is
``recompute``. Recomputed statistics depend on the batch they are taken in: the surfaces and curves here take
them in batches of ``stats_batch`` (default 250, or ``"all"``), recorded in the files, and never in the
evaluation ``chunk``, which is a memory knob only (the curvature functions still take them chunk by chunk).

Curvature (Hessian eigenvalues, density, trace, sharpness, per-layer spectra, ratio maps, the eigenvector line)
is computed on autograd graphs of ``chunk`` samples; the default ``"auto"`` is the most samples whose graph fits
:data:`losslab.core.hessian.HVP_MEMORY` (all of them when they fit), and the gradient graph is then reused across
the Hessian-vector products at one point (PyHessian's approach; bitwise equal to rebuilding it). With
``bn="batch"`` or ``"recompute"`` the chunk is also the batch of the statistics: give a number there to fix it.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from losslab import io as lio
from losslab.core.data import Prepared, float32_inputs
from losslab.plots import figures, landscape, patterns as pattern_plots
from losslab.core.curves import evaluate_along_curve, fit_curve, make_curve, read_curve_evaluation
from losslab.core import directions as core_directions
from losslab.core.directions import (Directions, check_directions, load_directions, pca_directions, project,
                                     random_directions, save_directions)
from losslab.core.li_files import LAYOUTS, classify, identify, write_li_directions, write_li_surface
from losslab.core.hessian import TrainingLoss, epsilon_sharpness, hutchinson_trace, lanczos, slq_density
from losslab.core.patterns import MPOConfig, evaluate_pattern, fit_metrics, fit_plane, validate_pattern
from losslab.core.placement import placement
from losslab.core.surfaces import (as_coordinates, evaluators_for, interpolation, plane_surface, read_surface,
                                   surface_1d, surface_2d, write_surface)
from losslab.core.surfaces import grid_around, plane_through
from losslab.core.trainer import Recipe, fit
from losslab.core.weights import STATS_BATCH, ParamLayout, flatten, running_stat_names, state_vector
from losslab.core.curves import Curve, curve_coordinates, curve_plane_surface, plane_of
from losslab.core.eigenline import loss_along_eigenvector
from losslab.core.hessian import eigenvalue_ratio_surface
from losslab.core.hessian_blocks import block_spectra
from losslab.core.surfaces import AffineSpan
from losslab.core.vtp import write_vtp
from losslab.plots.landscape import PlotOptions

__all__ = [
    "CheckpointError",
    "PatternFit",
    "TrajectoryPCA",
    "PlotOptions",
    "curve_plane",
    "eigenvector_line",
    "export_vtp",
    "layer_spectra",
    "ratio_map",
    "as_data",
    "convert_directions",
    "convert_surface",
    "evaluate_curve",
    "fit_pattern",
    "hessian_eigenvalues",
    "hessian_trace",
    "interpolate",
    "load_checkpoint",
    "plane",
    "plot",
    "read_spectral_density",
    "sharpness",
    "spectral_density",
    "surface",
    "surface_between",
    "train",
    "train_curve",
    "trajectory_directions",
    "write_spectral_density",
]

DEFAULT_MAX_SAMPLES = 100_000
Grid = Sequence[float] | np.ndarray
DataLike = Any


CheckpointError = lio.CheckpointError  # the one checkpoint error (losslab.io): unreadable, not weights, other net


# ---------------------------------------------------------------- data ------------------------------------

def _tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(float32_inputs(value, what))
    raise TypeError(f"{what}: expected a tensor or a NumPy array, got {type(value).__name__}")


def _is_loader(obj: Any) -> bool:
    return isinstance(obj, torch.utils.data.DataLoader) or (
        hasattr(obj, "__iter__") and not isinstance(obj, (tuple, list, dict, torch.Tensor, np.ndarray)))


def _is_array(obj: Any) -> bool:
    return isinstance(obj, (torch.Tensor, np.ndarray))


def _materialize(loader: Iterable, what: str, max_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(x, y)`` batches of ``loader`` concatenated, refusing more than ``max_samples`` samples."""
    xs, ys, n = [], [], 0
    for k, batch in enumerate(loader):
        if isinstance(batch, Mapping) and {"x", "y"} <= set(batch):
            batch = (batch["x"], batch["y"])
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise TypeError(f"{what}: batch {k} is a {type(batch).__name__}; a DataLoader must yield (x, y) pairs")
        x, y = _tensor(batch[0], f"{what} batch {k} inputs"), _tensor(batch[1], f"{what} batch {k} labels")
        n += len(x)
        if n > max_samples:
            raise ValueError(f"{what}: the DataLoader yields more than max_samples={max_samples} samples; losslab "
                             f"evaluates data in memory: pass a subset (or raise max_samples)")
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"{what}: the DataLoader yielded no batches")
    return torch.cat(xs), torch.cat(ys)


def _split(obj: Any, what: str, max_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(_is_array(o) for o in obj):
        x, y = _tensor(obj[0], f"{what} inputs"), _tensor(obj[1], f"{what} labels")
    elif _is_loader(obj):
        x, y = _materialize(obj, what, max_samples)
    else:
        raise TypeError(f"{what}: expected (x, y) tensors or a DataLoader, got {type(obj).__name__}")
    if len(x) != len(y):
        raise ValueError(f"{what}: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise ValueError(f"{what}: no samples")
    if len(x) > max_samples:
        raise ValueError(f"{what}: {len(x)} samples, more than max_samples={max_samples}; pass a subset "
                         f"(or raise max_samples)")
    if not x.is_floating_point():
        x = x.float()
    if not y.is_floating_point():
        y = y.long()
    return x.contiguous(), y


def as_data(data: DataLike, test: DataLike = None, *, max_samples: int = DEFAULT_MAX_SAMPLES) -> Prepared:
    """``data`` (and an optional separate ``test`` split) as a :class:`losslab.core.data.Prepared` of tensors.

    Accepted forms are listed in the module doc: ``(x, y)``, ``(x_train, y_train, x_test, y_test)``,
    ``(train, test)``, ``{"train": ..., "test": ...}``, a ``DataLoader`` (read once, at most
    ``max_samples`` samples per split), or a ``Prepared`` (returned as is). Integer labels become ``int64``
    (class indices of the cross-entropy), integer inputs ``float32``, NumPy ``float64`` arrays ``float32`` (with a
    logged note). Without a test split the returned test tensors are empty. NaN or infinite inputs (or float
    labels) are refused naming the split, the count and the first sample
    (:meth:`losslab.core.data.Prepared.check_finite`)."""
    if isinstance(data, Prepared):
        if test is not None:
            raise ValueError("as_data: a Prepared dataset already has its test split")
        return data.check_finite()
    train_part: Any = data
    if isinstance(data, Mapping):
        unknown = set(data) - {"train", "test"}
        if "train" not in data or unknown:
            raise ValueError(f"data: a dict needs the key 'train' (and optionally 'test'), got {sorted(data)}")
        train_part, test = data["train"], data.get("test", test)
    elif isinstance(data, (tuple, list)) and len(data) == 4 and all(_is_array(o) for o in data):
        if test is not None:
            raise ValueError("data: four tensors already hold the test split")
        train_part, test = (data[0], data[1]), (data[2], data[3])
    elif (isinstance(data, (tuple, list)) and len(data) == 2 and not all(_is_array(o) for o in data)):
        if test is not None:
            raise ValueError("data: a (train, test) pair already holds the test split")
        train_part, test = data
    x_tr, y_tr = _split(train_part, "train data", max_samples)
    if test is None:
        x_te, y_te = x_tr[:0], y_tr[:0]
    else:
        x_te, y_te = _split(test, "test data", max_samples)
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise ValueError(f"test inputs have shape {tuple(x_te.shape[1:])} per sample, the training inputs "
                             f"{tuple(x_tr.shape[1:])}")
    labels = torch.cat([y_tr, y_te])
    num_classes = int(labels.max()) + 1 if not labels.is_floating_point() else int(np.prod(y_tr.shape[1:]) or 1)
    return Prepared("custom", x_tr, y_tr, x_te, y_te, num_classes).check_finite()


def _has_test(data: Prepared) -> bool:
    return len(data.y_test) > 0


def _splits(data: Prepared) -> tuple[str, ...]:
    return ("train", "test") if _has_test(data) else ("train",)


def _need_test(data: Prepared, what: str) -> None:
    if not _has_test(data):
        raise ValueError(f"{what} needs a test split: pass data as (x_train, y_train, x_test, y_test) or "
                         f"{{'train': ..., 'test': ...}}")


def _subsets(data: Prepared, n_train: int | None, n_test: int | None) -> Prepared:
    """Fixed random subsets of ``n_train`` / ``n_test`` samples (all when None), as the workflow draws them."""
    if n_train is None and n_test is None:
        return data
    return data.evaluation_subsets(n_train, n_test if _has_test(data) else None)


# ---------------------------------------------------------------- validation at the door ------------------
# Every entry point that takes a model (decorated with @_checking_models) refuses, before any compute, a model
# whose weights (or BN statistics) hold NaN or infinity: a single NaN weight makes every point of a surface NaN.
# The data are checked by as_data (finite inputs, NumPy float64 cast to float32), the model's output and the
# labels by the evaluator and the trainer (losslab.core.losses.check_outputs), the grids by _grid, the
# checkpoints by load_checkpoint.

_MODEL_ARGUMENTS = ("model", "model_a", "model_b", "models")


def check_finite_model(model: nn.Module, what: str = "model") -> nn.Module:
    """``model``, after refusing NaN or infinite weights or buffers with one line naming the first such tensor
    (``model: weight 'fc.bias' has 2 NaN entries``)."""
    found = lio.nonfinite_entries(model.state_dict(keep_vars=False), [n for n, _ in model.named_parameters()])
    if found:
        raise ValueError(f"{what}: {found}; the weights must be finite")
    return model


def _checking_models(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` refusing non-finite models among its arguments named in :data:`_MODEL_ARGUMENTS` first."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(*args, **kwargs).arguments
        for name in _MODEL_ARGUMENTS:
            given = bound.get(name)
            if isinstance(given, nn.Module):
                check_finite_model(given, name)
            elif name == "models" and isinstance(given, (list, tuple)):
                for k, m in enumerate(given):
                    if isinstance(m, nn.Module):
                        check_finite_model(m, f"models[{k}]")
        return fn(*args, **kwargs)

    return checked


# ---------------------------------------------------------------- models ----------------------------------

def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the weights at ``path`` into ``model`` (in place; returned, in eval mode).

    The file is read with ``torch.load(weights_only=True)`` (no code from it is run) and holds a
    ``state_dict``, or a dict with one under ``"model"`` or ``"state_dict"`` (a training checkpoint). A
    missing, corrupt or foreign file, or weights of another architecture, raise :class:`CheckpointError`
    naming the file."""
    try:
        lio.load_state_dict(model, path, finite=True)
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no such checkpoint file") from err
    return model.eval()


def _flat(model: nn.Module) -> torch.Tensor:
    return flatten(model)


def _same_layout(models: Sequence[nn.Module]) -> None:
    first = ParamLayout.of(models[0])
    for k, m in enumerate(models[1:], 1):
        if ParamLayout.of(m) != first:
            raise ValueError(f"model {k} ({type(m).__name__}) does not have model 0's parameter layout "
                             f"({type(models[0]).__name__}): the models must share one architecture")


@_checking_models
def train(model: nn.Module, data: DataLike, *, epochs: int = 10, lr: float = 0.1, optimizer: str = "momentum",
          momentum: float = 0.9, weight_decay: float = 0.0, batch_size: int | str = 128, loss: str = "ce",
          seed: int = 0, progress: bool = False) -> list[dict[str, Any]]:
    """Train ``model`` in place with minibatch SGD (``optimizer``: ``sgd``, ``momentum``, ``adam``, ...; see
    :mod:`losslab.core.optim`) for ``epochs`` at a constant ``lr``, the data order drawn from ``seed``. Returns
    the history, one row per epoch (``batch_loss``, ``train_loss``, ``train_acc``, ``test_loss``,
    ``test_acc``). The workflow's :func:`losslab.core.trainer.fit`, on the device of
    :func:`losslab.core.placement.placement` when that is a GPU (inside ``losslab.core.placement.placed("cuda")``: the
    model is moved there), else on the model's own device."""
    prepared = as_data(data)
    if not _has_test(prepared):  # fit reports test metrics: report the training split's instead
        prepared = Prepared(prepared.name, prepared.x_train, prepared.y_train, prepared.x_train,
                            prepared.y_train, prepared.num_classes)
    recipe = Recipe(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    batch_size=batch_size, epochs=epochs, loss=loss)
    if placement().device.type != "cpu":  # inside placed("cuda"); a model already on a GPU stays there
        model.to(placement().device)  # fit moves the data to the model
    with torch.random.fork_rng(devices=[]):
        state = fit(model, prepared, recipe, seed, progress=progress)
    model.eval()
    return state["history"]


# ---------------------------------------------------------------- surfaces --------------------------------

def _grid(spec: Grid | tuple[float, float, int], name: str) -> np.ndarray:
    """Coordinates: a sequence of values, or ``(start, stop, num)`` (a tuple with an integer third entry)."""
    if isinstance(spec, tuple) and len(spec) == 3 and isinstance(spec[2], (int, np.integer)) \
            and not isinstance(spec[2], bool):
        start, stop, num = spec
        if num < 1:
            raise ValueError(f"{name}: the number of points must be >= 1, not {num}")
        if not (np.isfinite(float(start)) and np.isfinite(float(stop))):
            raise ValueError(f"{name}=({start}, {stop}, {num}): start and stop must be finite numbers")
        return np.linspace(float(start), float(stop), int(num))
    return as_coordinates(spec, name)


def _run_surface(path: str | os.PathLike | None, compute: Callable[[Path], Any]) -> Any:
    if path is not None:
        return compute(Path(path))
    with tempfile.TemporaryDirectory(prefix="losslab-") as tmp:
        return compute(Path(tmp) / "surface.h5")


@_checking_models
def surface(model: nn.Module, data: DataLike, *, dims: int | None = None, x: Grid | tuple = (-1.0, 1.0, 21),
            y: Grid | tuple = (-1.0, 1.0, 21), seed: int = 0, norm: str = "filter", ignore: str = "biasbn",
            orthogonal: bool = False, bn: str = "running", loss: str = "ce", chunk: int = 250,
            path: str | os.PathLike | None = None, checkpoint: str | os.PathLike | None = None,
            progress: bool = False, directions: Any = None, renormalize: bool = True,
            save_directions: str | os.PathLike | None = None, stats_batch: int | str = STATS_BATCH):
    """Li et al. (2018)'s loss surface around ``model``: loss and accuracy at ``theta* + alpha delta`` (1-D,
    ``dims=1``) or ``theta* + alpha delta + beta eta`` (2-D) for ``alpha`` in ``x`` and ``beta`` in ``y``.

    The directions ``delta``, ``eta`` are Gaussian, drawn from ``seed``, with *filter normalization*
    (``norm="filter"``: each filter of the direction scaled to the norm of the same filter of the weights;
    also ``layer``, ``weight``, ``none``); ``ignore="biasbn"`` zeroes the direction on biases and BN
    parameters (``copy``, ``keep``: Li et al.'s alternatives); ``orthogonal`` makes ``eta`` orthogonal to
    ``delta``. ``x``, ``y`` are coordinates or ``(start, stop, num)``.

    Given directions. ``directions`` (then ``seed``, ``norm``, ``ignore`` and ``orthogonal`` are not used) is a
    :class:`losslab.core.directions.Directions`, the path of a direction file
    (:func:`losslab.core.directions.load_directions`, e.g. one written by ``save_directions``) or a
    :class:`TrajectoryPCA` (the trajectory is then stored in the file and drawn by :func:`plot`). Their length
    must be the model's number of weights. ``dims`` defaults to 2, or to the number of given directions (a pair
    may draw a 1-D line along its first). Filter normalization is relative to the weights: with
    ``renormalize=True`` (the default) directions recorded as ``filter``- or ``layer``-normalized are
    re-normalized to *this* model's filters (:func:`losslab.core.directions.renormalize`: for directions drawn
    for another network, exactly the same Gaussian draw normalized per network, as Li et al. compare
    networks); ``renormalize=False`` adds them exactly as saved (what Li et al.'s ``--dir_file`` does).
    Directions of norm ``none`` (PCA, interpolation, plane) are always used as saved.

    Returns a :class:`losslab.core.surfaces.Surface`: ``xcoordinates``, ``ycoordinates`` (None in 1-D) and
    ``s["train_loss"]``, ``s["train_acc"]`` (and ``test_*`` with a test split), arrays of shape
    ``(len(x), len(y))`` (``[i, j]`` at ``(x[i], y[j])``) or ``(len(x),)``, and ``s.directions``, the
    directions used (``save_directions`` writes them, a file ``directions=`` reads back). With ``path`` the
    HDF5 surface file of the workflow is written there (Li et al.'s dataset names; rerunning resumes it, and
    different arguments are refused); ``checkpoint`` (the weights' file) is recorded in it by its hash.
    ``bn="recompute"`` takes the statistics in batches of ``stats_batch`` (not ``chunk``: the chunk is a memory
    knob only; ``"all"`` for one batch of the whole training split)."""
    _one_model_bn(bn, "surface")
    prepared = as_data(data)
    origin = _flat(model)
    used, trajectory = _surface_directions(model, origin, directions, renormalize, dims, seed, norm, ignore,
                                           orthogonal)
    evaluators = evaluators_for(model, prepared, loss=loss, bn=bn, chunk=chunk, splits=_splits(prepared),
                                stats_batch=stats_batch)
    xs = _grid(x, "x")

    def compute(target: Path):
        if used.y is None:
            return surface_1d(target, evaluators, origin, used, xs, checkpoint=checkpoint, progress=progress)
        extra = {} if trajectory is None else {"trajectory": trajectory.coordinates,
                                               "trajectory_epochs": np.asarray(trajectory.epochs)}
        return surface_2d(target, evaluators, origin, used, xs, _grid(y, "y"), checkpoint=checkpoint,
                          progress=progress, extra=extra)

    return _with_directions(_run_surface(path, compute), used, save_directions)


@_checking_models
def interpolate(model_a: nn.Module, model_b: nn.Module, data: DataLike, *, alpha: Grid | tuple = (-1.0, 2.0, 31),
                bn: str = "recompute", loss: str = "ce", chunk: int = 250, path: str | os.PathLike | None = None,
                checkpoints: tuple[Any, Any] = (None, None), progress: bool = False,
                save_directions: str | os.PathLike | None = None, stats_batch: int | str = STATS_BATCH):
    """Goodfellow et al. (2015)'s linear interpolation ``theta(alpha) = (1 - alpha) theta_a + alpha theta_b``
    for ``alpha`` in ``alpha`` (default 31 values over ``[-1, 2]``: exactly ``model_a`` at 0 and ``model_b``
    at 1). ``model_a`` gives the architecture. Batch norm (``bn``): ``recompute`` (the default) takes fresh
    statistics at every point, in batches of ``stats_batch`` of the training inputs; ``interpolate``
    interpolates the running statistics with the same ``alpha``, ``(1 - alpha) r_a + alpha r_b``, in eval mode
    (Li et al.'s README for 1-D interpolation: exactly each model's own evaluation at 0 and 1; a variance
    extrapolated beyond them can turn negative, and its points come out NaN); ``running`` uses
    ``model_a``'s statistics everywhere. Returns the 1-D :class:`losslab.core.surfaces.Surface`
    (``xcoordinates`` = alpha) with ``s.directions`` the direction ``theta_b - theta_a`` (``kind
    "interpolation"``; ``save_directions`` writes it: Li et al.'s direction between two models, reusable with
    :func:`surface` on a third); ``path`` writes its HDF5 file."""
    _same_layout([model_a, model_b])
    prepared = as_data(data)
    evaluators = evaluators_for(model_a, prepared, loss=loss, bn=bn, chunk=chunk, splits=_splits(prepared),
                                stats_batch=stats_batch)
    alphas = _grid(alpha, "alpha")
    if bn == "interpolate":
        _same_running_stats(model_a, model_b)
        ends = state_vector(model_a), state_vector(model_b)
    else:
        ends = _flat(model_a), _flat(model_b)
    s = _run_surface(path, lambda target: interpolation(target, evaluators, ends[0], ends[1], alphas,
                                                        checkpoints=checkpoints, progress=progress))
    used = Directions(_flat(model_b) - _flat(model_a), kind="interpolation")
    return _with_directions(s, used, save_directions)


@_checking_models
def plane(models: Sequence[nn.Module], data: DataLike, *, n: int = 21, margin: float = 0.2,
          x: Grid | tuple | None = None, y: Grid | tuple | None = None, bn: str = "recompute", loss: str = "ce",
          chunk: int = 250, path: str | os.PathLike | None = None, checkpoints: Sequence[Any] = (None, None, None),
          progress: bool = False, save_directions: str | os.PathLike | None = None,
          stats_batch: int | str = STATS_BATCH):
    """The loss on the plane through three models (Garipov et al. 2018): origin at the first, an
    orthonormal basis of the differences; the grid is ``n`` x ``n`` points covering the three with a relative
    ``margin`` (or ``x``, ``y`` in the plane's units). Returns the 2-D :class:`losslab.core.surfaces.Surface`; the
    three models' coordinates are ``s.extra["point_coordinates"]``, the basis ``s.directions`` (``kind
    "plane"``; ``save_directions`` writes it). ``bn="recompute"`` takes the statistics in batches of
    ``stats_batch``."""
    if len(models) != 3:
        raise ValueError(f"a plane goes through three models, got {len(models)}")
    _one_model_bn(bn, "plane")
    _same_layout(models)
    prepared = as_data(data)
    evaluators = evaluators_for(models[0], prepared, loss=loss, bn=bn, chunk=chunk, splits=_splits(prepared),
                                stats_batch=stats_batch)
    xs = None if x is None else _grid(x, "x")
    ys = None if y is None else _grid(y, "y")
    thetas = [_flat(m) for m in models]
    s = _run_surface(path, lambda target: plane_surface(target, evaluators, thetas, xs, ys, n=n, margin=margin,
                                                        checkpoints=tuple(checkpoints), progress=progress))
    basis = plane_through(*thetas)
    return _with_directions(s, Directions(basis.u, basis.v, kind="plane"), save_directions)


@_checking_models
def surface_between(models: Sequence[nn.Module], data: DataLike, **options: Any):
    """The surface between two models (:func:`interpolate`) or three (:func:`plane`)."""
    if len(models) == 2:
        return interpolate(models[0], models[1], data, **options)
    if len(models) == 3:
        return plane(models, data, **options)
    raise ValueError(f"a surface between models needs two or three of them, got {len(models)}")


# ---------------------------------------------------------------- directions --------------------------------

def _one_model_bn(bn: str, what: str) -> None:
    if bn == "interpolate":
        raise ValueError(f"{what}: bn='interpolate' interpolates the running statistics between two models; it is "
                         f"a policy of interpolate() only")


def _surface_directions(model: nn.Module, origin: torch.Tensor, directions: Any, renormalize: bool,
                        dims: int | None, seed: int, norm: str, ignore: str, orthogonal: bool
                        ) -> tuple[Directions, "TrajectoryPCA | None"]:
    """The directions of :func:`surface`: drawn from ``seed``, or the given ones checked against the model's
    layout, re-normalized to it (``renormalize``), cut to ``dims``; and the trajectory of a :class:`TrajectoryPCA`."""
    if dims not in (None, 1, 2):
        raise ValueError(f"dims must be 1 or 2, not {dims}")
    if directions is None:
        return random_directions(model, seed, norm=norm, ignore=ignore, dims=dims or 2, orthogonal=orthogonal), None
    trajectory = None
    if isinstance(directions, TrajectoryPCA):
        trajectory, given, source = directions, directions.directions, "the trajectory's PCA directions"
        if directions.origin.shape != origin.shape or not torch.equal(directions.origin, origin):
            raise ValueError("the trajectory's PCA plane is centred at other weights than the model's: compute it "
                             "with trajectory_directions(model, ...) for this model (its final weights)")
    elif isinstance(directions, Directions):
        given, source = directions, "directions"
    elif isinstance(directions, (str, os.PathLike)):
        source = f"directions file {os.fspath(directions)}"
        if not Path(directions).is_file():
            raise FileNotFoundError(f"{os.fspath(directions)}: no such direction file")
        given = replace(load_directions(directions, model), file_sha256=lio.file_hash(directions))
    else:
        raise TypeError(f"directions: expected Directions, a TrajectoryPCA or a direction file's path, got "
                        f"{type(directions).__name__}")
    check_directions(given, model, source)
    if renormalize:
        given = core_directions.renormalize(given, model, source)
    dtype = origin.dtype
    given = replace(given, x=given.x.to(dtype), y=None if given.y is None else given.y.to(dtype))
    if dims == 2 and given.y is None:
        raise ValueError(f"{source}: one direction only; a 2-D surface needs two (pass dims=1)")
    if dims == 1 and given.y is not None:
        given, trajectory = replace(given, y=None), None
    return given, trajectory


def _with_directions(s: Any, used: Directions, save_to: str | os.PathLike | None) -> Any:
    """The surface ``s`` carrying the directions it was computed along, which are written to ``save_to``."""
    s.directions = used
    if save_to is not None:
        core_directions.save_directions(save_to, used)
    return s


def _same_running_stats(model_a: nn.Module, model_b: nn.Module) -> None:
    buffers_a, buffers_b = dict(model_a.named_buffers()), dict(model_b.named_buffers())
    names = running_stat_names(model_a)
    if names != running_stat_names(model_b) or any(buffers_a[n].shape != buffers_b[n].shape for n in names):
        raise ValueError("bn='interpolate': the two models' BN running statistics differ in names or shapes")


@dataclass(eq=False)
class TrajectoryPCA:
    """Li et al. (2018, sec. 7)'s plane of an optimisation trajectory: the top two principal components of
    ``theta_i - theta_final`` over the saved checkpoints (``directions``, unit norm, with their
    ``explained_variance_ratio``), centred at the final weights ``origin``, and the checkpoints' ``coordinates``
    in it (``(n, 2)``, the projections Li et al. draw over the contours), labelled by ``epochs``."""

    directions: Directions
    coordinates: np.ndarray
    origin: torch.Tensor
    epochs: np.ndarray

    @property
    def explained_variance_ratio(self) -> tuple[float, float]:
        return self.directions.explained_variance_ratio  # type: ignore[return-value]

    def grid(self, n: int = 21, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
        """``n`` x ``n`` coordinates covering the trajectory with a relative ``margin`` on each side."""
        return grid_around(self.coordinates, n, n, margin)


def _trajectory_point(model: nn.Module, point: Any, k: int) -> torch.Tensor:
    if isinstance(point, (str, os.PathLike)):
        holder = load_checkpoint(copy.deepcopy(model), point)
        return _flat(holder)
    if isinstance(point, nn.Module):
        _same_layout([model, point])
        return _flat(point)
    if isinstance(point, torch.Tensor):
        check_directions(Directions(point), model, f"trajectory point {k}")
        return point.detach().to(_flat(model).dtype)
    raise TypeError(f"trajectory point {k}: expected a checkpoint path, a model or a flat weight vector, got "
                    f"{type(point).__name__}")


@_checking_models
def trajectory_directions(model: nn.Module, checkpoints: Sequence[Any], *, ignore: str = "biasbn",
                          epochs: Sequence[int] | None = None,
                          save_directions: str | os.PathLike | None = None) -> TrajectoryPCA:
    """Li et al.'s PCA directions of a training trajectory for ``model``, which holds the final weights.

    ``checkpoints`` are the saved points of the run in order (at least three: checkpoint files of ``model``'s
    architecture, models, or flat weight vectors; include the final checkpoint last to draw the path into the
    centre, as Li et al.'s list of epochs does). The rows ``theta_i - theta_final`` (biases and BN parameters
    zeroed with ``ignore="biasbn"``, kept with ``"keep"``) are mean-centred and their top two principal
    components are the directions (:func:`losslab.core.directions.pca_directions`); the checkpoints are
    projected on that plane (:func:`losslab.core.directions.project`). ``epochs`` label the points (default
    1, 2, ...). Returns a :class:`TrajectoryPCA`; ``save_directions`` writes its directions (with the explained
    variance) as a direction file. Draw the surface with ``surface(model, data, directions=pca,
    x=xs, y=ys)`` over ``xs, ys = pca.grid(n)``."""
    if ignore not in ("biasbn", "keep"):
        raise ValueError(f"ignore must be 'biasbn' or 'keep' for PCA directions, not {ignore!r}")
    points = [_trajectory_point(model, c, k) for k, c in enumerate(checkpoints)]
    labels = np.arange(1, len(points) + 1) if epochs is None else np.asarray(list(epochs), dtype=np.int64)
    if len(labels) != len(points):
        raise ValueError(f"{len(labels)} epochs for {len(points)} checkpoints")
    final = _flat(model)
    found = pca_directions(points, final=final, model=model if ignore == "biasbn" else None, ignore=ignore)
    coordinates = project(points, final, found.x, found.y).numpy()
    if save_directions is not None:
        core_directions.save_directions(save_directions, found)
    return TrajectoryPCA(found, coordinates, final, labels)


# ---------------------------------------------------------------- curvature -------------------------------

def _training_loss(model: nn.Module, data: DataLike, loss: str, bn: str, weight_decay: float,
                   chunk: int | str):
    prepared = as_data(data)
    return TrainingLoss(model, prepared.x_train, prepared.y_train, loss=loss, bn=bn, weight_decay=weight_decay,
                        chunk=chunk)


@_checking_models
def hessian_eigenvalues(model: nn.Module, data: DataLike, k: int = 1, which: str = "largest", *,
                        tol: float = 1e-3, max_iter: int | None = None, seed: int = 0, bn: str = "running",
                        loss: str = "ce", weight_decay: float = 0.0, chunk: int | str = "auto",
                        progress: bool = False):
    """The ``k`` largest (``which="largest"``), smallest (``"smallest"``: the most negative first) or both
    ends' (``"both"``) eigenvalues of the Hessian of the training loss at ``model``'s weights, by the Lanczos
    iteration with Hessian-vector products (PyHessian's method), to relative residual ``tol``.

    Returns :class:`losslab.core.hessian.Eigenpairs`: ``values`` (NumPy), ``vectors`` (rows, flat),
    ``residuals``, ``converged``, ``products``. The loss is the mean over the training split of ``data``
    (plus ``weight_decay/2 ||w||^2``). ``progress``: a bar of the Lanczos steps on a terminal."""
    f = _training_loss(model, data, loss, bn, weight_decay, chunk)
    return lanczos(f.hessian(), k, which, tol=tol, max_iter=max_iter, seed=seed, progress=progress)


@_checking_models
def spectral_density(model: nn.Module, data: DataLike, *, n_runs: int = 5, n_steps: int = 90,
                     sigma2: float = 1e-5, n_grid: int = 10_000, seed: int = 0, bn: str = "running",
                     loss: str = "ce", weight_decay: float = 0.0, chunk: int | str = "auto", progress: bool = False):
    """The Hessian's spectral density by stochastic Lanczos quadrature (Ghorbani et al. 2019): ``n_runs``
    Rademacher starts, ``n_steps`` Lanczos steps each, Gaussian smoothing of variance ``sigma2``. Returns
    :class:`losslab.core.hessian.SpectralDensity` (``grid``, ``density``, the quadrature ``nodes`` and
    ``weights``). ``progress``: a bar of the Lanczos steps on a terminal."""
    f = _training_loss(model, data, loss, bn, weight_decay, chunk)
    return slq_density(f.hessian(), n_runs=n_runs, n_steps=n_steps, sigma2=sigma2, n_grid=n_grid, seed=seed,
                       progress=progress)


@_checking_models
def hessian_trace(model: nn.Module, data: DataLike, *, n_probes: int = 100, seed: int = 0, bn: str = "running",
                  loss: str = "ce", weight_decay: float = 0.0, chunk: int | str = "auto", progress: bool = False):
    """Hutchinson's estimate of the Hessian's trace ``E[z^T H z]`` over ``n_probes`` Rademacher vectors.
    Returns :class:`losslab.core.hessian.TraceEstimate` (``value``, ``stderr``, ``samples``); ``progress``: a
    bar of the probes on a terminal."""
    f = _training_loss(model, data, loss, bn, weight_decay, chunk)
    return hutchinson_trace(f.hessian(), n_probes, seed=seed, progress=progress)


@_checking_models
def sharpness(model: nn.Module, data: DataLike, eps: float = 1e-3, *, subspace_dim: int | None = None,
              maxiter: int = 10, seed: int = 0, bn: str = "running", loss: str = "ce", chunk: int | str = "auto",
              method: str = "multistart", random_starts: int = 2, progress: bool = False):
    """Keskar et al. (2017)'s epsilon-sharpness (Metric 2.1): ``(max_{y in C_eps} f(x + A y) - f(x)) / (1 +
    f(x)) * 100`` with the box ``C_eps`` of half-widths ``eps (|(A^+ x)_i| + 1)``, maximised by L-BFGS-B
    (``maxiter`` iterations per start) from the centre, the sign-gradient corner and ``random_starts`` random
    corners (``method="multistart"``), or from the centre alone as the paper did (``"keskar"``: at a
    well-trained point it barely leaves the centre, so the value can be far below the box's maximum).
    ``subspace_dim=None`` is the full space (``A = I``), ``p`` a random ``n x p`` ``A`` drawn from ``seed``
    (the paper: ``p = 100``). Returns :class:`losslab.core.hessian.Sharpness` (``value`` in percent, ``loss`` =
    f(x), ``max_loss``, the winning ``start`` and each start's ``starts``); ``progress``: a bar of the starts
    on a terminal."""
    f = _training_loss(model, data, loss, bn, 0.0, chunk)
    if subspace_dim is not None:
        subspace_dim = min(int(subspace_dim), f.dim)
    return epsilon_sharpness(f, eps, subspace_dim=subspace_dim, seed=seed, maxiter=maxiter, method=method,
                             random_starts=random_starts, progress=progress)


# ---------------------------------------------------------------- density files ---------------------------

def write_spectral_density(path: str | os.PathLike, density: Any) -> None:
    """An HDF5 file of a :class:`losslab.core.hessian.SpectralDensity`: ``grid``, ``density``, ``nodes`` and
    ``weights`` (``n_runs x n_steps``) and ``sigma2`` (attribute), atomically."""
    import h5py

    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("grid", data=density.grid)
        f.create_dataset("density", data=density.density)
        f.create_dataset("nodes", data=np.stack(density.nodes))
        f.create_dataset("weights", data=np.stack(density.weights))
        f.attrs["kind"] = "spectral_density"
        f.attrs["sigma2"] = density.sigma2
        f.attrs["products"] = density.products


def read_spectral_density(path: str | os.PathLike) -> dict[str, Any]:
    """The arrays of :func:`write_spectral_density`'s file (``grid``, ``density``, ``nodes``, ``weights``)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("grid", "density", "nodes", "weights")} | {"sigma2": float(f.attrs["sigma2"])}


# ---------------------------------------------------------------- curves ----------------------------------

@_checking_models
def train_curve(model_a: nn.Module, model_b: nn.Module, data: DataLike, *, kind: str = "bezier", bends: int = 1,
                epochs: int = 10, lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 0.0,
                batch_size: int | str = 128, loss: str = "ce", seed: int = 0,
                checkpoint_path: str | os.PathLike | None = None, progress: bool = False):
    """A curve ``phi(t)``, ``t in [0, 1]``, from ``model_a`` (``phi(0)``) to ``model_b`` (``phi(1)``) with
    ``bends`` trainable control points, trained to minimise ``E_{t ~ U(0, 1)} L(phi(t))`` (Garipov et al.
    2018): one ``t`` per minibatch, SGD with momentum at ``lr`` (Garipov et al.'s schedule: constant for half
    the ``epochs``, then down to 1 %). ``kind`` is ``bezier`` (the bends are Bezier control points) or
    ``polychain`` (a polygonal chain through them). The bends start on the segment. With
    ``checkpoint_path`` every epoch is checkpointed and a killed run resumes.

    Returns the :class:`losslab.core.curves.Curve` (an ``nn.Module``; ``curve.point(t)`` is the flat weight
    vector at ``t``); evaluate it with :func:`evaluate_curve`, save it with
    :func:`losslab.core.curves.save_curve`."""
    _same_layout([model_a, model_b])
    prepared = as_data(data)
    curve = make_curve(kind, _flat(model_a), _flat(model_b), int(bends))
    recipe = Recipe(optimizer="momentum", lr=lr, momentum=momentum, weight_decay=weight_decay,
                    batch_size=batch_size, epochs=epochs, loss=loss, schedule={"name": "garipov"})
    fit_curve(curve, model_a, prepared, recipe, seed, ckpt_path=checkpoint_path, progress=progress)
    return curve


@_checking_models
def evaluate_curve(curve: Any, model: nn.Module, data: DataLike, *, t: int | Grid = 61, bn: str = "recompute",
                   loss: str = "ce", chunk: int = 250, path: str | os.PathLike | None = None,
                   stats_batch: int | str = STATS_BATCH):
    """Train and test loss and error along ``curve`` at ``t`` (``t`` points from 0 to 1, or the values) and
    along the straight segment at the same ``t``, with the BN statistics recomputed at every point (``bn``;
    Garipov et al.'s ``bn_update``). ``model`` gives the architecture. Returns
    :class:`losslab.core.curves.CurveEvaluation`: ``t``, ``values["train_loss"]``, ``values["segment_test_err"]``,
    ..., and ``metrics`` (``train_loss_max``, ``segment_train_loss_barrier``, ``length``, ...); ``path`` writes
    the workflow's HDF5 file. The statistics are taken in batches of ``stats_batch`` training inputs (``"all"``:
    one batch); ``chunk`` only sets how many samples are forwarded at a time."""
    prepared = as_data(data)
    _need_test(prepared, "evaluate_curve")
    return evaluate_along_curve(curve, model, prepared, t, loss=loss, bn=bn, chunk=chunk, path=path,
                                stats_batch=stats_batch)


# ---------------------------------------------------------------- MPO -------------------------------------

@dataclass(eq=False)
class PatternFit:
    """A plane fitted to a pattern: the :class:`losslab.core.patterns.PatternPlane`, the per-cell ``maps``
    (:class:`losslab.core.patterns.PatternMaps`), their ``metrics`` (:func:`losslab.core.patterns.fit_metrics`) and the
    optimisation ``history`` (one row per step)."""

    plane: Any
    pattern: np.ndarray
    maps: Any
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)

    def figure(self, stem: str | os.PathLike, title: str | None = None) -> list[Path]:
        """The target pattern beside the fitted train and test accuracy maps, ``<stem>.png`` and ``<stem>.pdf``
        (:func:`losslab.plots.patterns.plot_pattern_fit`, redrawn by ``snakemake figures``)."""
        return [Path(p) for p in pattern_plots.plot_pattern_fit(self.pattern, self.maps, stem, title=title)]


def fit_pattern(model_fn: Callable[[], nn.Module], data: DataLike, pattern: Any, *, steps: int = 1000,
                lr: float = 1e-3, batch_size: int = 64, cells_per_step: int = 16, cap: float = 2.5,
                init_seeds: Sequence[int] = (0, 1, 2), scale: float = 0.1, seed: int = 0, bn: str = "recompute",
                n_eval_train: int | None = None, n_eval_test: int | None = None,
                checkpoint_path: str | os.PathLike | None = None, progress: bool = False) -> PatternFit:
    """Multi-point optimization (Skorokhodov & Burtsev 2019): the plane ``w(x, y) = origin + s (x u + y v)``,
    whose origin and directions start from three initialisations ``model_fn()`` under ``init_seeds``, is
    trained (Adam, ``lr``, ``steps``) so that the loss is low in the black cells (1) of the binary ``pattern``
    (a 2-D array of 0 and 1, e.g. :func:`losslab.core.patterns.shape_pattern`) and high in the white ones (cross-
    entropy capped at ``cap``). Returns a :class:`PatternFit`; the maps are evaluated with ``bn``
    (``recompute`` or ``batch``) on fixed subsets of ``n_eval_train`` / ``n_eval_test`` samples. ``progress``:
    a bar of the steps on a terminal (:class:`losslab.core.progress.Progress`)."""
    prepared = as_data(data)
    _need_test(prepared, "fit_pattern")
    pattern = validate_pattern(pattern)
    config = MPOConfig(steps=steps, lr=lr, batch_size=batch_size, cells_per_step=cells_per_step, cap=cap,
                       init_seeds=tuple(int(s) for s in init_seeds), scale=scale, eval_bn=bn,
                       n_eval_train=n_eval_train, n_eval_test=n_eval_test, ckpt_every=max(1, min(50, steps)))
    config.validate()
    the_plane = config.plane(model_fn)
    model = model_fn()
    state = fit_plane(the_plane, model, pattern, prepared, config, seed=seed, ckpt_path=checkpoint_path,
                      progress=progress)
    maps = evaluate_pattern(the_plane, model, prepared, pattern.shape, bn=bn, chunk=config.eval_chunk,
                            n_train=n_eval_train, n_test=n_eval_test)
    return PatternFit(the_plane, pattern, maps, fit_metrics(pattern, maps), state["history"])


# ---------------------------------------------------------------- parity with the papers' tools ----------
# The loss along the top Hessian eigenvector and per-layer spectra (PyHessian), eigenvalue-ratio maps
# (Li et al.'s Fig. 7), the plane of a trained curve (Garipov et al.'s plane.py), the ParaView export (h52vtp).

@_checking_models
def eigenvector_line(model: nn.Module, data: DataLike, *, alpha: Grid | tuple = (-1.0, 1.0, 21), k: int = 1,
                     tol: float = 1e-3, max_iter: int | None = None, seed: int = 0, bn: str = "running",
                     loss: str = "ce", chunk: int | str = "auto", path: str | os.PathLike | None = None,
                     checkpoint: str | os.PathLike | None = None, progress: bool = False):
    """The loss along the ``k``-th Hessian eigenvector (``k=1``: the top one, PyHessian's example plot):
    ``L(theta* + alpha v_k)`` for ``alpha`` in ``alpha``, ``v_k`` the unit eigenvector of the ``k``-th largest
    eigenvalue ``lambda_k`` of the training loss's Hessian (Lanczos to ``tol``; the entry of largest magnitude
    positive). Returns the 1-D :class:`losslab.core.surfaces.Surface`; ``s.attrs["eigenvalue"]`` is
    ``lambda_k`` (``eigenvalue_certified``, ``eigenvalue_residual`` its certificate). For a loss quadratic in
    the weights the line is ``L0 + alpha g.v_k + lambda_k alpha^2 / 2`` exactly
    (:mod:`losslab.core.eigenline`)."""
    prepared = as_data(data)
    f = TrainingLoss(model, prepared.x_train, prepared.y_train, loss=loss, bn=bn, chunk=chunk)
    evaluators = evaluators_for(model, prepared, loss=loss, bn=bn, chunk=f.chunk, splits=_splits(prepared))
    alphas = _grid(alpha, "alpha")
    provenance = {"checkpoint_sha256": lio.file_hash(checkpoint)} if checkpoint is not None else {}
    return _run_surface(path, lambda target: loss_along_eigenvector(
        target, f, evaluators, alphas, k=k, tol=tol, max_iter=max_iter, seed=seed, provenance=provenance,
        progress=progress))


@_checking_models
def layer_spectra(model: nn.Module, data: DataLike, *, by: str = "parameter", k: int = 1,
                  which: str = "largest", trace_probes: int = 0, tol: float = 1e-3, max_iter: int | None = None,
                  seed: int = 0, bn: str = "running", loss: str = "ce", weight_decay: float = 0.0,
                  chunk: int | str = "auto"):
    """The Hessian spectrum of every layer: for each diagonal block ``H_BB`` (``by="parameter"``: one per
    parameter tensor, ``"module"``: one per module, weight and bias together) its ``k`` extreme eigenvalues
    (``which``: ``largest``, ``smallest``, ``both``) by Lanczos on the block's Hessian-vector product, and with
    ``trace_probes > 0`` its Hutchinson trace. Returns a list of
    :class:`losslab.core.hessian_blocks.BlockSpectrum` (``name``, ``size``, ``values``, ``converged``,
    ``trace``; ``.record()`` for JSON)."""
    f = _training_loss(model, data, loss, bn, weight_decay, chunk)
    return block_spectra(f, by=by, k=k, which=which, tol=tol, max_iter=max_iter, seed=seed,
                         trace_probes=trace_probes)


@_checking_models
def ratio_map(model: nn.Module, data: DataLike, *, x: Grid | tuple = (-1.0, 1.0, 11),
              y: Grid | tuple = (-1.0, 1.0, 11), seed: int = 0, norm: str = "filter", ignore: str = "biasbn",
              orthogonal: bool = False, tol: float = 1e-2, max_iter: int | None = None, bn: str = "running",
              loss: str = "ce", chunk: int | str = "auto", path: str | os.PathLike | None = None,
              checkpoint: str | os.PathLike | None = None, progress: bool = False):
    """Li et al. (2018)'s Fig. 7 on your model: ``|lambda_min / lambda_max|`` of the training loss's Hessian at
    every point ``theta* + alpha delta + beta eta`` of the 2-D grid ``x`` x ``y``, along the same filter-normalized
    random directions as :func:`surface` with the same ``seed``, ``norm``, ``ignore`` and ``orthogonal`` (so the
    map lies over that surface). One certified two-ended Lanczos run per point to ``tol``
    (:func:`losslab.core.hessian.eigenvalue_ratio_surface`; the start vector from ``seed``). Returns the
    :class:`losslab.core.surfaces.Surface` with ``lambda_max``, ``lambda_min``, ``ratio``, ``certified``,
    ``products`` of shape ``(len(x), len(y))``; ``path`` writes (and resumes) its HDF5 file."""
    prepared = as_data(data)
    d = random_directions(model, seed, norm=norm, ignore=ignore, dims=2, orthogonal=orthogonal)
    f = TrainingLoss(model, prepared.x_train, prepared.y_train, loss=loss, bn=bn, chunk=chunk)
    provenance = {**d.provenance(), **({"checkpoint_sha256": lio.file_hash(checkpoint)} if checkpoint else {})}
    xs, ys = _grid(x, "x"), _grid(y, "y")
    return _run_surface(path, lambda target: eigenvalue_ratio_surface(
        target, f, AffineSpan(_flat(model), d.x, d.y), xs, ys, tol=tol, max_iter=max_iter, seed=seed,
        provenance=provenance, progress=progress))


@_checking_models
def curve_plane(curve: Curve, model: nn.Module, data: DataLike, *, n: int = 21, margin: float = 0.2,
                x: Grid | tuple | None = None, y: Grid | tuple | None = None, bend: int | None = None,
                t: int | Grid = 61, bn: str = "recompute", loss: str = "ce", chunk: int = 250,
                path: str | os.PathLike | None = None, progress: bool = False):
    """Garipov et al.'s ``plane.py``: the loss on the plane through a trained curve's endpoints ``w0``, ``w1`` and
    its middle bend (``bend``: another one), origin ``w0``, axes by Gram-Schmidt of ``w1 - w0`` and
    ``bend - w0`` (:func:`losslab.core.curves.plane_of`), on ``n`` x ``n`` points covering the three with
    ``margin`` (or ``x``, ``y`` in the plane's units), BN recomputed at every point by default. ``model`` gives
    the architecture. Returns the 2-D :class:`losslab.core.surfaces.Surface`; ``s.extra`` holds
    ``point_coordinates`` (w0, w1, bend: ``(3, 2)``), ``curve_coordinates`` (the curve at ``t`` projected on
    the plane: ``(T, 2)``; exact for one bend) and ``curve_t``. :func:`plot` draws the curve on the contours."""
    prepared = as_data(data)
    evaluators = evaluators_for(model, prepared, loss=loss, bn=bn, chunk=chunk, splits=_splits(prepared))
    ts = np.linspace(0.0, 1.0, int(t)) if isinstance(t, (int, np.integer)) else as_coordinates(t, "t")
    grid = {"xs": None if x is None else _grid(x, "x"), "ys": None if y is None else _grid(y, "y")}
    extra = {"curve_coordinates": curve_coordinates(curve, ts, plane_of(curve, bend)), "curve_t": ts}
    return _run_surface(path, lambda target: curve_plane_surface(
        target, evaluators, curve, bend, n=n, margin=margin, extra=extra, progress=progress, **grid))


def export_vtp(path: str | os.PathLike, out: str | os.PathLike, *, name: str = "train_loss", log: bool = False,
               zmax: float | None = None, interp: int | None = None) -> Path:
    """A 2-D surface file's ``name`` (``train_loss``, ``test_acc``, a ratio map's ``ratio``, ...) as a ParaView
    ``.vtp`` file at ``out`` (Li et al.'s ``h52vtp.py``: the grid's points at height ``z``, ``log(z + 0.1)``
    with ``log``, clipped at ``zmax`` first; quadrilateral cells; the value as point data; interpolation off
    unless ``interp=n``, a bicubic resampling to ``n`` x ``n`` points; :mod:`losslab.core.vtp`). Returns
    ``out``."""
    s = read_surface(path)
    if s.ycoordinates is None:
        raise ValueError(f"{path}: a 1-D surface; the VTP export needs a 2-D one")
    if name not in s.values:
        raise ValueError(f"{path}: no surface named {name!r}; it has {sorted(s.values)}")
    write_vtp(out, s.xcoordinates, s.ycoordinates, s[name], name=name, log=log, zmax=zmax, interp=interp)
    return Path(out)


# ---------------------------------------------------------------- figures ---------------------------------

def _file_kind(path: Path) -> str:
    import h5py

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            if ("spec" in f.attrs and "xcoordinates" in f) or classify(f) == ("surface", "li"):
                return "surface2d" if "ycoordinates" in f else "surface1d"
            if "t" in f and "metrics" in f.attrs:
                return "curve"
            if f.attrs.get("kind") == "spectral_density":
                return "density"
    except OSError as err:
        raise lio.CorruptFileError(f"{path}: not an HDF5 file ({err})") from err
    raise ValueError(f"{path}: not a losslab surface, curve evaluation or spectral density file (nor a surface file "
                     f"of Li et al.'s code)")


def plot(path: str | os.PathLike, out_dir: str | os.PathLike, title: str = "", *,
         xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None,
         levels: int | Sequence[float] | str | None = None, vmin: float | None = None,
         vmax: float | None = None) -> list[Path]:
    """The standard figures of a losslab HDF5 file into ``out_dir`` (PNG and PDF each):

    * a 2-D surface: ``contour``, ``filled``, ``surface3d`` and ``line1d`` (Li et al.'s figures; a curve's
      plane with the curve on the contours), and ``trajectory`` (the path over the contours, Li et al.'s
      Figure 9) when it is on a trajectory's PCA plane; a surface file of Li et al.'s code is drawn the same
      way (:func:`losslab.core.surfaces.read_surface` reads it);
    * an eigenvalue-ratio map (:func:`ratio_map`): ``ratio`` (a heatmap of ``|lambda_min / lambda_max|``);
    * a 1-D surface or interpolation: ``line1d`` (loss and accuracy on twin axes, train solid, test dashed);
    * a curve evaluation: ``curve`` (loss and error along the curve and the segment over ``t``);
    * a spectral density: ``density`` (log scale, as Ghorbani et al. and PyHessian draw it).

    Li et al.'s ``plot_2D`` options (:class:`losslab.plots.landscape.PlotOptions`): axis limits ``xlim``,
    ``ylim`` (a 1-D figure: alpha and the loss axis), contour ``levels`` (a number, the values, or ``"log"`` /
    ``"log:N"``), colour range ``vmin``, ``vmax``. Returns the written paths."""
    path, out_dir = Path(path), Path(out_dir)
    options = PlotOptions(xlim=xlim, ylim=ylim, levels=levels, vmin=vmin, vmax=vmax)
    kind = _file_kind(path)
    if kind == "surface2d" and read_surface(path).spec.get("kind") == "hessian_eigenvalue_ratio":
        s = read_surface(path)
        return landscape.plot_heatmap(out_dir / "ratio", s.xcoordinates, s.ycoordinates, s["ratio"], None,
                                      title=title or r"Hessian $|\lambda_{min} / \lambda_{max}|$",
                                      cbar_label=r"$|\lambda_{min} / \lambda_{max}|$", options=options)
    if kind == "surface2d":
        files = landscape.plot_surface_file(path, out_dir, title, options)
        if "trajectory" in read_surface(path).extra:
            files += landscape.plot_trajectory_file(path, out_dir / "trajectory", title)
        return files
    if kind == "surface1d":
        s = read_surface(path)
        interp = s.attrs.get("direction") == "interpolation"
        splits = [sp for sp in ("train", "test") if f"{sp}_loss" in s.values]
        return landscape.plot_1d(out_dir / "line1d", s.xcoordinates, {sp: s[f"{sp}_loss"] for sp in splits},
                             {sp: s[f"{sp}_acc"] for sp in splits},
                             xlabel=(r"$\alpha$ (interpolation)" if interp else
                                     r"$\alpha$ (Hessian eigenvector)" if s.attrs.get("direction") ==
                                     "hessian_eigenvector" else landscape.axis_labels(s.attrs)[0]),
                             title=title or None, options=options)
    if kind == "curve":
        return _plot_curve(path, out_dir / "curve", title)
    return _plot_density(path, out_dir / "density", title)


def _plot_curve(path: Path, stem: Path, title: str) -> list[Path]:
    ev = read_curve_evaluation(path)
    fig, ax = figures.new_figure(width=landscape.SIZE[0], height=landscape.SIZE[1])
    for prefix, color, name in (("", "tab:blue", "curve"), ("segment_", "tab:grey", "segment")):
        for split, style in (("train", "-"), ("test", "--")):
            key = f"{prefix}{split}_loss"
            if key in ev.values:
                ax.plot(ev.t, ev.values[key], style, color=color, label=f"{name}, {split}")
    ax.set_xlabel("t (curve parameter)")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small")
    ax.set_title(title or f"{ev.attrs.get('kind', 'curve')} curve vs segment")
    return [Path(p) for p in figures.save(fig, stem)]


def _plot_density(path: Path, stem: Path, title: str) -> list[Path]:
    d = read_spectral_density(path)
    fig, ax = figures.new_figure(width=landscape.SIZE[0], height=landscape.SIZE[1])
    floor = max(float(d["density"].max()) * 1e-12, 1e-300)
    ax.semilogy(d["grid"], np.maximum(d["density"], floor), color="tab:blue")
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log scale)")
    ax.set_title(title or "Hessian spectral density (SLQ)")
    return [Path(p) for p in figures.save(fig, stem)]


# ---------------------------------------------------------------- files of Li et al.'s code ---------------

def _target_layout(path: str | os.PathLike, layout: str, to: str | None) -> str:
    if to is None:
        return "losslab" if layout == "li" else "li"
    if to not in LAYOUTS:
        raise ValueError(f"to={to!r}: expected one of {list(LAYOUTS)} (or None: the other layout than {path}'s)")
    return to


def _source_layout(path: str | os.PathLike, kind: str) -> str:
    found, layout = identify(path)
    if found != kind:
        other = "convert_directions" if found == "directions" else "convert_surface"
        raise ValueError(f"{path}: a {found} file, not a {kind} file (use {other})")
    return layout


def convert_surface(src: str | os.PathLike, dst: str | os.PathLike, to: str | None = None):
    """Write the surface file ``src`` to ``dst`` in the layout ``to``: ``"li"`` (Li et al.'s code:
    ``Z[j, i]`` at ``(x[i], y[j])`` as their ``plot_2D`` draws it with ``meshgrid(x, y)``, accuracies in
    percent, -1 where not computed) or ``"losslab"`` (``[i, j]`` at ``(x[i], y[j])``, fractions, NaN); None
    (the default) converts to the other layout than ``src``'s. Round trips are bitwise: a losslab surface
    written in their layout carries a group ``losslab`` their code ignores, and one of theirs read by losslab
    keeps their percent numbers. Returns the :class:`losslab.core.surfaces.Surface` (``spec["imported"] ==
    "li"`` when read from their file). ``src`` of neither layout, or a direction file, raises ValueError
    naming it."""
    target = _target_layout(src, _source_layout(src, "surface"), to)
    s = read_surface(src)
    (write_li_surface if target == "li" else write_surface)(dst, s)
    return s


def convert_directions(src: str | os.PathLike, dst: str | os.PathLike, model: nn.Module | None = None,
                       to: str | None = None):
    """Write the direction file ``src`` to ``dst`` in the layout ``to`` (``"li"``, ``"losslab"``, or None for
    the other one than ``src``'s). Li et al.'s layout is a group per direction with one dataset per tensor
    (``h5_util.write_list``); losslab writes their ``dir_type='weights'`` (one dataset per parameter of
    ``model``, its shape), so ``to="li"`` needs ``model``. Reading theirs, ``model`` checks the tensors'
    count and shapes and picks the parameters of a ``'states'`` file (which needs it). Returns the
    :class:`losslab.core.directions.Directions` (flat, ``named_parameters`` order)."""
    target = _target_layout(src, _source_layout(src, "directions"), to)
    if target == "li" and model is None:
        raise ValueError(f"{src}: writing Li et al.'s per-tensor direction groups needs the parameters' shapes: "
                         f"pass the model")
    d = load_directions(src, model)
    if target == "li":
        write_li_directions(dst, d, model)
    else:
        save_directions(dst, d)
    return d
