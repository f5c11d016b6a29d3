"""Loss surfaces: 1-D curves and 2-D grids of loss and accuracy around weight vectors, resumable on disk.

Li et al. (2018) plot ``f(alpha) = L(theta* + alpha*delta)`` (1-D) and ``f(alpha, beta) = L(theta* +
alpha*delta + beta*eta)`` (2-D) with filter-normalised random directions; Goodfellow et al.'s linear
interpolation ``theta(alpha) = (1 - alpha) theta_0 + alpha theta_1`` (for alpha in e.g. [-1, 2]) is the 1-D
surface along the segment; Garipov et al. draw the plane through three networks (origin at the first, an
orthonormal Gram-Schmidt basis of the differences).

Every surface here is one call of :func:`compute_surface` over a *span* (the map from coordinates to a flat
weight vector: :class:`AffineSpan` or :class:`Segment`) and a mapping ``split -> evaluator``
(:func:`evaluators_for`). The HDF5 output uses Li et al.'s names: ``xcoordinates``, ``ycoordinates`` (2-D
only), ``train_loss``, ``train_acc``, ``test_loss``, ``test_acc`` of shape ``(len(x), len(y))`` with ``[i, j]``
the point ``(x[i], y[j])`` (shape ``(len(x),)`` in 1-D), plus a ``done`` mask with one entry per *tile* (a
block of ``tile_rows`` rows of x) and provenance attributes.

Crash safety and resumption: the grid is computed tile by tile, and each finished tile is appended to a
journal beside the target, ``<name>.journal`` (:func:`journal_path`; a :class:`losslab.io.Journal`: its
header holds the spec, the coordinates and the attributes as JSON, each record a tile's index and values,
checksummed and fsynced per tile; it is written atomically with the first finished tile, so it never exists
empty). The HDF5 file is written once, atomically, when every requested tile is
done, and the journal is then removed. Rerun with the same arguments, a killed job reads the journal (a
record torn by the kill is dropped), computes only the missing tiles, and the result equals an
uninterrupted run's bitwise (at a fixed thread count). Arguments that do not match an existing file or
journal (the ``spec``: coordinates, weights, directions, data, evaluators, tile size, provenance) raise
:class:`SurfaceMismatchError` naming it: nothing is ever silently reused. Parallel jobs compute disjoint
``tiles`` into shard files, which :func:`merge_surfaces` joins. (The journal replaced an in-progress HDF5
file, ``<stem>.partial.h5``, rewritten whole and fsynced after every tile: two thirds of a small MLP's
surface time went there.)

:func:`read_surface` also reads the surface files of Li et al.'s code (transposed, their percent accuracies as
fractions, a spec marking the surface as imported; :mod:`losslab.core.li_files`, which writes theirs too).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import h5py
import numpy as np
import torch
from torch import nn

from losslab._version import __version__
from losslab import io as lio
from losslab.core.data import Prepared
from losslab.core import li_files
from losslab.core.directions import Directions, orthogonalize
from losslab.core.losses import LossAcc
from losslab.core.weights import PointEvaluator, tensor_digest
from losslab.core.placement import placement
from losslab.core.progress import Progress

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
METRICS = ("loss", "acc")
FORMAT_VERSION = 1


class SurfaceMismatchError(ValueError):
    """An existing surface file was computed with other arguments than the ones given now."""


class Evaluator(Protocol):
    """What a surface needs from an evaluator (a :class:`losslab.core.weights.PointEvaluator`)."""

    batch_points: int

    def evaluate_many(self, vecs: Iterable[torch.Tensor]) -> list[LossAcc]: ...

    def fingerprint(self) -> dict[str, Any]: ...


def evaluators_for(model: nn.Module, data: Prepared, *, loss: str = "ce", bn: str = "running",
                   chunk: int = 250, many: str = "auto", autocast: str | None = "placement",
                   splits: Sequence[str] = SPLITS, stats_batch: int | str | None = None) -> dict[str, PointEvaluator]:
    """``split -> evaluator`` for ``data``'s train and/or test split; with ``bn="recompute"`` both use the
    training inputs for the BN statistics, computed once per point in batches of ``stats_batch`` (default
    ``None``: the ``chunk``; see :class:`~losslab.core.weights.PointEvaluator`). ``autocast``: see
    :class:`~losslab.core.weights.PointEvaluator`; the default ``"placement"`` takes the job's (the config's
    ``eval_autocast``, see :func:`losslab.core.placement.placement`). The evaluators run on the placement's device."""
    if autocast == "placement":
        autocast = placement().autocast
    train = PointEvaluator(model, data.x_train, data.y_train, loss=loss, bn=bn, chunk=chunk,
                           recompute_data=data.x_train, many=many, autocast=autocast, stats_batch=stats_batch,
                           labels="train labels")
    made = {"train": train, "test": train.with_data(data.x_test, data.y_test, labels="test labels")}
    unknown = set(splits) - set(made)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; known: {list(made)}")
    return {s: made[s] for s in splits}


# ---------------------------------------------------------------- spans: coordinates -> weights ------------

@dataclass(frozen=True, eq=False)
class AffineSpan:
    """The points ``origin + a*dx`` (1-D) or ``origin + a*dx + b*dy`` (2-D)."""

    origin: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for name in ("dx", "dy"):
            d = getattr(self, name)
            if d is not None and d.shape != self.origin.shape:
                raise ValueError(f"{name} has shape {tuple(d.shape)}, the origin {tuple(self.origin.shape)}")

    def point(self, a: float, b: float | None = None) -> torch.Tensor:
        vec = self.origin.add(self.dx, alpha=a)
        if b is not None:
            if self.dy is None:
                raise ValueError("a 1-D span has no second coordinate")
            vec.add_(self.dy, alpha=b)
        return vec

    def digest(self) -> dict[str, str]:
        return {"kind": "affine", "origin": tensor_digest(self.origin), "dx": tensor_digest(self.dx),
                "dy": tensor_digest(self.dy)}


@dataclass(frozen=True, eq=False)
class Segment:
    """The line ``(1 - a) theta0 + a theta1``: exactly ``theta0`` at 0 and ``theta1`` at 1."""

    theta0: torch.Tensor
    theta1: torch.Tensor

    def point(self, a: float, b: float | None = None) -> torch.Tensor:
        if b is not None:
            raise ValueError("a segment has one coordinate")
        return self.theta0.mul(1.0 - a).add_(self.theta1, alpha=a)

    def digest(self) -> dict[str, str]:
        return {"kind": "segment", "theta0": tensor_digest(self.theta0), "theta1": tensor_digest(self.theta1)}


Span = AffineSpan | Segment


@dataclass(frozen=True, eq=False)
class Plane:
    """The plane through three weight vectors: ``origin`` = the first, orthonormal ``u, v`` (Gram-Schmidt of
    ``theta1 - theta0``, ``theta2 - theta0``), and the three points' coordinates ``(3, 2)`` in it."""

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    coordinates: np.ndarray

    @property
    def span(self) -> AffineSpan:
        return AffineSpan(self.origin, self.u, self.v)


def plane_through(theta0: torch.Tensor, theta1: torch.Tensor, theta2: torch.Tensor) -> Plane:
    """Garipov et al.'s plane through three networks (see :class:`Plane`)."""
    u, w = (theta1 - theta0).double(), (theta2 - theta0).double()
    v = orthogonalize(w, u)
    if u.norm() == 0 or v.norm() <= 100 * torch.finfo(theta0.dtype).eps * w.norm():
        raise ValueError("the three weight vectors are collinear (or equal): they do not span a plane")
    u_hat, v_hat = u / u.norm(), v / v.norm()
    coords = np.array([[0.0, 0.0], [float(u.norm()), 0.0], [float(w @ u_hat), float(w @ v_hat)]])
    return Plane(theta0, u_hat.to(theta0.dtype), v_hat.to(theta0.dtype), coords)


def grid_around(coordinates: np.ndarray, nx: int, ny: int, margin: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates covering the points ``coordinates`` (n x 2) with a relative ``margin`` on each side."""
    lo, hi = coordinates.min(axis=0), coordinates.max(axis=0)
    pad = (hi - lo) * margin
    return np.linspace(lo[0] - pad[0], hi[0] + pad[0], nx), np.linspace(lo[1] - pad[1], hi[1] + pad[1], ny)


# ---------------------------------------------------------------- the file ---------------------------------

@dataclass(eq=False)
class Surface:
    """The content of a surface file (complete or not)."""

    xcoordinates: np.ndarray
    ycoordinates: np.ndarray | None
    values: dict[str, np.ndarray]  # "train_loss", "train_acc", ...
    done: np.ndarray  # bool, one per tile
    spec: dict[str, Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "point_coordinates" of a plane
    directions: Directions | None = None  # the directions a computation used (not stored in the file: None when read)

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    @property
    def tile_rows(self) -> int:
        return int(self.spec["tile_rows"])

    def __getitem__(self, key: str) -> np.ndarray:
        """A dataset by its file name: ``xcoordinates``, ``ycoordinates``, ``train_loss``, ..."""
        if key in ("xcoordinates", "ycoordinates"):
            return getattr(self, key)
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        return key in ("xcoordinates", "ycoordinates") or key in self.values

    def get(self, key: str, default: Any = None) -> Any:
        """A dataset by its file name, or ``default`` when the file has none (as ``dict.get``)."""
        return self[key] if key in self else default


def journal_path(path: str | os.PathLike) -> Path:
    """Where the journal of the surface ``path``'s finished tiles lives until it is complete:
    ``<name>.journal`` beside it (``surface.h5.journal``)."""
    path = Path(path)
    return path.with_name(f"{path.name}.journal")


TILE_POINTS = 64  # compute_surface's default tile: the fewest whole rows holding at least this many points


def default_tile_rows(n_rows: int, row_points: int) -> int:
    """Rows per tile when none are given: the fewest holding :data:`TILE_POINTS` points (all rows of a smaller
    grid). Bigger tiles than one row amortise the per-tile journal record and fsync and fill the vmapped
    batches of small nets (rows of 11 points make batches of 8 and 3); a kill loses at most one tile."""
    return max(1, min(n_rows, -(-TILE_POINTS // max(row_points, 1))))


def tile_ranges(n_rows: int, tile_rows: int) -> list[tuple[int, int]]:
    """The tiles of a grid with ``n_rows`` x-coordinates: ``[start, stop)`` row ranges of ``tile_rows``."""
    if tile_rows < 1:
        raise ValueError(f"tile_rows must be >= 1, not {tile_rows}")
    return [(i, min(i + tile_rows, n_rows)) for i in range(0, n_rows, tile_rows)]



def write_surface(path: str | os.PathLike, surface: Surface) -> None:
    """Write ``surface`` to ``path`` atomically."""
    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("xcoordinates", data=surface.xcoordinates)
        if surface.ycoordinates is not None:
            f.create_dataset("ycoordinates", data=surface.ycoordinates)
        for name, arr in {**surface.values, **surface.extra}.items():
            f.create_dataset(name, data=arr)
        f.create_dataset("done", data=surface.done)
        f.attrs["spec"] = json.dumps(surface.spec, sort_keys=True)
        f.attrs["complete"] = surface.complete
        for key, value in surface.attrs.items():
            f.attrs[key] = lio.hdf5_attribute(value)


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file (complete or a shard), the tiles of a journal (:func:`journal_path`; the tiles
    not yet done are NaN), or a surface file of Li et al.'s code (:func:`losslab.core.li_files.read_li_surface`:
    ``spec["imported"] == "li"``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such surface file")
    if _is_journal(path):
        return _read_journal(lio.Journal(path))
    if li_files.is_li_surface(path):
        return Surface(**li_files.read_li_surface(path))
    try:
        with h5py.File(path, "r") as f:
            spec = json.loads(f.attrs["spec"])
            known = {"xcoordinates", "ycoordinates", "done"}
            values = {k: f[k][()] for k in spec["values"]}
            extra = {k: f[k][()] for k in f.keys() if k not in known and k not in values}
            return Surface(f["xcoordinates"][()], f["ycoordinates"][()] if "ycoordinates" in f else None,
                           values, f["done"][()].astype(bool), spec,
                           {k: v for k, v in f.attrs.items() if k not in ("spec", "complete")}, extra)
    except (OSError, KeyError, ValueError) as err:
        raise lio.CorruptFileError(f"{path}: not a readable surface file (truncated, or not an HDF5 surface written "
                                   f"by losslab: {err}); delete it to have it recomputed") from err


def _canonical(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, keys strings), for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _flat_items(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat_items(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def _check_spec(path: Path, found: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    if found == wanted:
        return
    a, b = _flat_items(found), _flat_items(wanted)
    diffs = [f"{k}: file has {a.get(k)!r}, now {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    raise SurfaceMismatchError(
        f"{path}: exists but was computed with different arguments ({'; '.join(diffs[:6])}"
        f"{'; ...' if len(diffs) > 6 else ''}). Delete it or write to another path; it is never reused.")


# ---------------------------------------------------------------- the journal of finished tiles ------------

_TILE = struct.Struct("<I")  # a record: the tile's index, then each value's rows of the tile as float64


def _is_journal(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(lio.JOURNAL_MAGIC)) == lio.JOURNAL_MAGIC


def _journal_header(surface: Surface) -> bytes:
    """The journal's header: the spec, the grid, the value names and the attributes (JSON)."""
    return json.dumps({"spec": surface.spec, "xcoordinates": surface.xcoordinates.tolist(),
                       "ycoordinates": None if surface.ycoordinates is None else surface.ycoordinates.tolist(),
                       "values": list(surface.values), "tiles": len(surface.done),
                       "attrs": lio.plain(surface.attrs, keep_nan=True)}, sort_keys=True).encode()


def _tile_record(surface: Surface, t: int, rows: tuple[int, int]) -> bytes:
    a, b = rows
    return _TILE.pack(t) + b"".join(np.ascontiguousarray(v[a:b], dtype="<f8").tobytes()
                                    for v in surface.values.values())


def _new_surface(xs: np.ndarray, ys: np.ndarray | None, values: Sequence[str], n_tiles: int,
                 spec: dict[str, Any], attrs: Mapping[str, Any], extra: Mapping[str, np.ndarray]) -> Surface:
    shape = (len(xs),) if ys is None else (len(xs), len(ys))
    return Surface(xs, ys, {name: np.full(shape, np.nan) for name in values}, np.zeros(n_tiles, dtype=bool),
                   spec, dict(attrs), dict(extra))


def _apply_records(surface: Surface, records: Sequence[bytes], where: Path) -> None:
    """Fill ``surface`` with the journal's tiles."""
    ranges = tile_ranges(len(surface.xcoordinates), surface.tile_rows)
    row = 1 if surface.ycoordinates is None else len(surface.ycoordinates)
    for rec in records:
        (t,) = _TILE.unpack_from(rec)
        a, b = ranges[t] if t < len(ranges) else (0, -1)
        size = (b - a) * row
        if t >= len(ranges) or len(rec) != _TILE.size + 8 * size * len(surface.values):
            raise lio.CorruptFileError(f"{where}: a record of tile {t} does not fit the grid of its header; "
                                       f"delete it to have it recomputed")
        flat = np.frombuffer(rec, dtype="<f8", offset=_TILE.size).reshape(len(surface.values), size)
        for k, arr in enumerate(surface.values.values()):
            arr[a:b] = flat[k].reshape(arr[a:b].shape)
        surface.done[t] = True


def _read_journal(journal: lio.Journal, spec: dict[str, Any] | None = None) -> Surface:
    """The surface of a journal's tiles; its header's spec checked against ``spec`` when given."""
    header, records = journal.read()
    try:
        head = json.loads(header)
        found = head["spec"]
    except (ValueError, KeyError, TypeError) as err:
        raise lio.CorruptFileError(f"{journal.path}: not a surface journal ({err}); delete it to have it "
                                   f"recomputed") from err
    if spec is not None:
        _check_spec(journal.path, found, spec)
    ys = head["ycoordinates"]
    surface = _new_surface(np.asarray(head["xcoordinates"], dtype=np.float64),
                           None if ys is None else np.asarray(ys, dtype=np.float64), head["values"], head["tiles"],
                           found, head["attrs"], {})
    _apply_records(surface, records, journal.path)
    if journal.dropped:
        log.warning("%s: dropped %d bytes after its last complete tile (torn by a kill)", journal.path,
                    journal.dropped)
    return surface


# ---------------------------------------------------------------- computing --------------------------------

def _load_existing(path: Path, journal: lio.Journal, spec: dict[str, Any]) -> Surface | None:
    """The finished (or shard) file with the journal's tiles added, each checked against ``spec``; None when
    neither exists."""
    surface = None
    if path.exists():
        surface = read_surface(path)
        _check_spec(path, surface.spec, spec)
    if journal.exists():
        logged = _read_journal(journal, spec)
        if surface is None:
            return logged
        for t in np.flatnonzero(logged.done & ~surface.done):
            a, b = tile_ranges(len(surface.xcoordinates), surface.tile_rows)[t]
            for key in surface.values:
                surface.values[key][a:b] = logged.values[key][a:b]
            surface.done[t] = True
    return surface


def _tile_cells(rows: tuple[int, int], ny: int | None) -> list[tuple[int, ...]]:
    return [(i,) if ny is None else (i, j) for i in range(*rows) for j in range(ny or 1)]


def _batches(items: Sequence[tuple[int, ...]], size: int) -> Iterator[Sequence[tuple[int, ...]]]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


def _compute_tile(surface: Surface, evaluators: Mapping[str, Evaluator], span: Span, rows: tuple[int, int],
                  on_points: Callable[[int], None]) -> None:
    """Fill the rows ``rows`` of every split's loss and accuracy; each group of points is evaluated on all
    splits in turn (so recomputed BN statistics are shared between splits)."""
    xs, ys = surface.xcoordinates, surface.ycoordinates
    cells = _tile_cells(rows, None if ys is None else len(ys))
    group = max(getattr(ev, "batch_points", 1) for ev in evaluators.values())
    for batch in _batches(cells, group):
        vecs = [span.point(float(xs[c[0]]), None if ys is None else float(ys[c[1]])) for c in batch]
        for split, ev in evaluators.items():
            for cell, res in zip(batch, ev.evaluate_many(vecs)):
                surface.values[f"{split}_loss"][cell] = res.loss
                surface.values[f"{split}_acc"][cell] = res.acc
        on_points(len(batch))


def as_coordinates(values: Sequence[float] | np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    arr = np.asarray(values.tolist() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of coordinates")
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise ValueError(f"{name}: {len(bad)} of {len(arr)} coordinates are not finite (first {arr[bad[0]]} at index "
                         f"{bad[0]}); coordinates must be finite numbers")
    return arr


def _selected_tiles(tiles: Sequence[int] | None, n_tiles: int) -> list[int]:
    wanted = list(range(n_tiles)) if tiles is None else sorted(set(int(t) for t in tiles))
    if any(t < 0 or t >= n_tiles for t in wanted):
        raise ValueError(f"tiles must lie in [0, {n_tiles}), got {list(tiles or [])}")
    return wanted


def _make_spec(xs: np.ndarray, ys: np.ndarray | None, tile_rows: int, span: Span,
               evaluators: Mapping[str, Evaluator], provenance: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that determines a surface file's numbers; a file is resumed only under an equal spec."""
    return _canonical({
        "format": FORMAT_VERSION, "shape": [len(xs)] + ([] if ys is None else [len(ys)]),
        "xcoordinates": tensor_digest(torch.from_numpy(xs)),
        "ycoordinates": None if ys is None else tensor_digest(torch.from_numpy(ys)),
        "tile_rows": tile_rows, "span": span.digest(),
        "values": [f"{s}_{m}" for s in evaluators for m in METRICS],
        "evaluators": {s: ev.fingerprint() for s, ev in evaluators.items()}, "provenance": dict(provenance)})


TileFiller = Callable[[Surface, tuple[int, int], Callable[[int], None]], None]


def compute_grid(path: str | os.PathLike, spec: Mapping[str, Any], xs: np.ndarray, ys: np.ndarray | None,
                 values: Sequence[str], fill_tile: TileFiller, *, attrs: Mapping[str, Any] | None = None,
                 extra: Mapping[str, np.ndarray] | None = None, tile_rows: int = 1,
                 tiles: Sequence[int] | None = None, progress: bool = True,
                 on_tile: Callable[[int], None] | None = None) -> Surface:
    """The resumable, tiled grid every surface-like file is computed on.

    ``fill_tile(surface, rows, on_points)`` fills ``surface.values[name][rows]`` for every name of
    ``values`` (calling ``on_points(k)`` as it goes, for the progress bar). The grid is done tile by tile (a
    tile = ``tile_rows`` rows of x; only ``tiles`` when given, a parallel shard), each finished tile appended
    to the journal :func:`journal_path` (fsynced); ``path`` is written once the wanted tiles are done, and
    the journal removed. An existing file or journal is resumed only under an equal ``spec``, else
    :class:`SurfaceMismatchError` names it.
    """
    path = Path(path)
    ranges = tile_ranges(len(xs), tile_rows)
    wanted = _selected_tiles(tiles, len(ranges))
    spec = _canonical(spec)
    journal = lio.Journal(journal_path(path))
    surface = _load_existing(path, journal, spec)
    if surface is None:
        surface = _new_surface(xs, ys, values, len(ranges), spec,
                               {**dict(attrs or {}), "threads": torch.get_num_threads(),
                                "losslab_version": __version__}, {})
    surface.extra = {**surface.extra, **dict(extra or {})}
    todo = [t for t in wanted if not surface.done[t]]
    if todo and surface.done.any() and surface.attrs.get("threads") != torch.get_num_threads():
        log.warning("%s: resuming with %d threads, begun with %s: tiles may differ in the last bits",
                    path, torch.get_num_threads(), surface.attrs.get("threads"))
    n_points = sum((b - a) * (1 if ys is None else len(ys)) for a, b in (ranges[t] for t in todo))
    with Progress(n_points, path.name, enabled=progress, unit="pt") as bar:
        header = _journal_header(surface) if todo else b""
        for t in todo:
            fill_tile(surface, ranges[t], bar.update)
            surface.done[t] = True
            journal.append(_tile_record(surface, t, ranges[t]), header)
            if on_tile is not None:
                on_tile(t)
    if todo or journal.exists() or not path.exists():
        write_surface(path, surface)
    journal.discard()
    return surface


def compute_surface(path: str | os.PathLike, evaluators: Mapping[str, Evaluator], span: Span,
                    xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray | None = None, *,
                    provenance: Mapping[str, Any] | None = None, extra: Mapping[str, np.ndarray] | None = None,
                    tile_rows: int | None = None, tiles: Sequence[int] | None = None, progress: bool = True,
                    on_tile: Callable[[int], None] | None = None) -> Surface:
    """Evaluate every split at every point of ``span`` on the grid ``xs`` (x ``ys``) and write ``path``
    (loss and accuracy per split), on the resumable tiled grid of :func:`compute_grid`.

    ``provenance`` (JSON-able) is stored as attributes and is part of the spec; ``extra`` arrays are stored
    as datasets. ``tile_rows`` defaults to :func:`default_tile_rows` (tiles of at least :data:`TILE_POINTS`
    points); it is part of the spec, so a resumed or sharded surface must be given the same.
    """
    xs_arr = as_coordinates(xs, "xs")
    ys_arr = None if ys is None else as_coordinates(ys, "ys")
    if tile_rows is None:
        tile_rows = default_tile_rows(len(xs_arr), 1 if ys_arr is None else len(ys_arr))
    spec = _make_spec(xs_arr, ys_arr, tile_rows, span, evaluators, provenance or {})
    first = next(iter(spec["evaluators"].values()))
    attrs = {**spec["provenance"], "bn": first.get("bn"), "loss": first.get("loss")}

    def fill(surface: Surface, rows: tuple[int, int], on_points: Callable[[int], None]) -> None:
        _compute_tile(surface, evaluators, span, rows, on_points)

    return compute_grid(path, spec, xs_arr, ys_arr, [f"{s}_{m}" for s in evaluators for m in METRICS], fill,
                        attrs=attrs, extra=extra, tile_rows=tile_rows, tiles=tiles, progress=progress,
                        on_tile=on_tile)


def merge_surfaces(target: str | os.PathLike, shards: Sequence[str | os.PathLike]) -> Surface:
    """Join shard files of one surface (computed with disjoint ``tiles``) into the complete ``target``.

    All shards must have the same spec (else :class:`SurfaceMismatchError` naming the odd one); a tile
    present in none of them is an error.
    """
    if not shards:
        raise ValueError("merge_surfaces needs at least one shard")
    merged = read_surface(shards[0])
    ranges = tile_ranges(len(merged.xcoordinates), merged.tile_rows)
    for shard in shards[1:]:
        part = read_surface(shard)
        _check_spec(Path(shard), part.spec, merged.spec)
        for t in np.flatnonzero(part.done & ~merged.done):
            a, b = ranges[t]
            for key in merged.values:
                merged.values[key][a:b] = part.values[key][a:b]
            merged.done[t] = True
    missing = np.flatnonzero(~merged.done).tolist()
    if missing:
        raise ValueError(f"cannot merge into {target}: tiles {missing} are in none of {list(map(str, shards))}")
    write_surface(target, merged)
    return merged


# ---------------------------------------------------------------- the surfaces of the papers --------------

def _checkpoint_provenance(checkpoints: Mapping[str, str | os.PathLike | None]) -> dict[str, str]:
    return {f"{key}_sha256": lio.file_hash(p) for key, p in checkpoints.items() if p is not None}


def surface_1d(path: str | os.PathLike, evaluators: Mapping[str, Evaluator], origin: torch.Tensor,
               directions: Directions, xs: Sequence[float] | np.ndarray, *,
               checkpoint: str | os.PathLike | None = None, **run: Any) -> Surface:
    """Li et al.'s 1-D plot: loss and accuracy at ``origin + alpha * directions.x`` for ``alpha`` in ``xs``.
    ``run`` takes :func:`compute_surface`'s keyword options."""
    provenance = {**directions.provenance(), **_checkpoint_provenance({"checkpoint": checkpoint})}
    return compute_surface(path, evaluators, AffineSpan(origin, directions.x), xs, provenance=provenance, **run)


def surface_2d(path: str | os.PathLike, evaluators: Mapping[str, Evaluator], origin: torch.Tensor,
               directions: Directions, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray, *,
               checkpoint: str | os.PathLike | None = None, **run: Any) -> Surface:
    """Li et al.'s 2-D plot: loss and accuracy at ``origin + alpha*x + beta*y`` over the grid ``xs`` x ``ys``
    (any sizes; ``[i, j]`` is ``(xs[i], ys[j])``)."""
    if directions.y is None:
        raise ValueError("a 2-D surface needs two directions")
    provenance = {**directions.provenance(), **_checkpoint_provenance({"checkpoint": checkpoint})}
    extra = {}
    if directions.explained_variance_ratio is not None:
        extra["explained_variance_ratio_"] = np.asarray(directions.explained_variance_ratio)
    return compute_surface(path, evaluators, AffineSpan(origin, directions.x, directions.y), xs, ys,
                           provenance=provenance, extra={**extra, **run.pop("extra", {})}, **run)


def interpolation(path: str | os.PathLike, evaluators: Mapping[str, Evaluator], theta0: torch.Tensor,
                  theta1: torch.Tensor, alphas: Sequence[float] | np.ndarray | None = None, *,
                  checkpoints: tuple[str | os.PathLike | None, str | os.PathLike | None] = (None, None),
                  **run: Any) -> Surface:
    """Goodfellow et al.'s linear interpolation ``(1 - alpha) theta0 + alpha theta1`` for ``alpha`` in
    ``alphas`` (default 31 values over [-1, 2]; exactly the two networks at 0 and 1)."""
    alphas = np.linspace(-1.0, 2.0, 31) if alphas is None else alphas
    provenance = {"direction": "interpolation", "norm": "none", "ignore": "keep", "seed": None,
                  **_checkpoint_provenance({"checkpoint0": checkpoints[0], "checkpoint1": checkpoints[1]})}
    return compute_surface(path, evaluators, Segment(theta0, theta1), alphas, provenance=provenance, **run)


def plane_surface(path: str | os.PathLike, evaluators: Mapping[str, Evaluator],
                  thetas: Sequence[torch.Tensor], xs: Sequence[float] | np.ndarray | None = None,
                  ys: Sequence[float] | np.ndarray | None = None, *, n: int = 21, margin: float = 0.2,
                  checkpoints: Sequence[str | os.PathLike | None] = (None, None, None), **run: Any) -> Surface:
    """The surface on the plane through three networks (:func:`plane_through`); the grid defaults to ``n`` x
    ``n`` points covering the three with ``margin``. Their coordinates are stored as ``point_coordinates``, beside
    the arrays of ``run``'s ``extra`` (e.g. a curve's projection)."""
    if len(thetas) != 3:
        raise ValueError(f"a plane needs three weight vectors, got {len(thetas)}")
    plane = plane_through(*thetas)
    if xs is None or ys is None:
        gx, gy = grid_around(plane.coordinates, n, n, margin)
        xs, ys = (gx if xs is None else xs), (gy if ys is None else ys)
    provenance = {"direction": "plane", "norm": "none", "ignore": "keep", "seed": None,
                  **_checkpoint_provenance({f"checkpoint{k}": c for k, c in enumerate(checkpoints)})}
    return compute_surface(path, evaluators, plane.span, xs, ys, provenance=provenance,
                           extra={"point_coordinates": plane.coordinates, **run.pop("extra", {})}, **run)


def grid(spec: Any) -> np.ndarray:
    start, stop, num = spec
    return np.linspace(float(start), float(stop), int(num))


# ---------------------------------------------------------------- random lines ------------------------------

def random_lines(evaluators: Mapping[str, Evaluator], origin: torch.Tensor, directions: Sequence[Directions],
                 xs: Sequence[float] | np.ndarray, files: Sequence[str | os.PathLike], *,
                 checkpoint: str | os.PathLike | None = None, progress: bool = False,
                 quantity: str = "train_loss") -> np.ndarray:
    """``losses[j, i]``: ``quantity`` at ``origin + xs[i] * directions[j].x``, one :func:`surface_1d` file per
    line (``files[j]``, resumable like any surface). Random lines through a trained network (Li et al.'s 1-D
    plots, repeated over directions) are how the sharpness claims measure a loss rise (:func:`line_sharpness`)."""
    if len(directions) != len(files):
        raise ValueError(f"{len(directions)} directions but {len(files)} files")
    rows = []
    for d, path in zip(directions, files):
        surf = surface_1d(path, evaluators, origin, d, xs, checkpoint=checkpoint, tile_rows=len(xs), progress=progress)
        rows.append(np.asarray(surf[quantity], float))
    return np.stack(rows)


def grid_index(alphas: np.ndarray, value: float) -> int:
    i = int(np.argmin(np.abs(alphas - value)))
    if abs(alphas[i] - value) > 1e-9 * max(1.0, abs(value)):
        raise ValueError(f"the alpha grid {alphas.tolist()} has no point at {value}")
    return i


def line_sharpness(alphas: Sequence[float], losses: np.ndarray, radius: float) -> float:
    """``mean_j [(L(+r) + L(-r)) / 2 - L(0)]`` over the rows ``j`` (directions) of ``losses[j, i]`` = the
    loss at ``alphas[i]``: the mean loss rise at distance ``r`` on both sides. The grid must contain
    ``0`` and ``+-r``."""
    a = np.asarray(alphas, float)
    z = np.atleast_2d(np.asarray(losses, float))
    i0, ip, im = grid_index(a, 0.0), grid_index(a, radius), grid_index(a, -radius)
    return float(np.mean((z[:, ip] + z[:, im]) / 2 - z[:, i0]))
