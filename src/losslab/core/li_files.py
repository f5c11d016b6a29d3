"""Interchange with the HDF5 files of Li et al.'s loss-landscape code (github.com/tomgoldstein/loss-landscape).

Li et al. (2018) published the code behind their figures; its files are what their plotting scripts
(``plot_2D.py``, ``plot_1D.py``, ``h52vtp.py``) read and what their ``plot_surface.py`` resumes. This module
reads their surface and direction files into losslab's and writes losslab's in their layout, so that either
code draws, and continues, the other's results. :func:`losslab.core.surfaces.read_surface` and
:func:`losslab.core.directions.load_directions` accept their files directly through it.

**Their surface file** (``plot_surface.setup_surface_file`` and ``crunch``):

* ``dir_file``: a string dataset, the path of the direction file;
* ``xcoordinates = np.linspace(xmin, xmax, xnum)``, ``ycoordinates`` likewise (2-D only);
* ``train_loss``, ``train_acc`` (``test_loss``, ``test_acc`` when crunched on the test loader) are created as
  ``-np.ones((len(x), len(y)))``, -1 meaning "not computed yet" (``scheduler.get_unplotted_indices``
  recomputes every entry ``<= 0``), and filled through ``losses.ravel()[ind]``, ``ind`` an index into the
  raveled ``np.meshgrid(x, y)``: the flat C-order entry ``k`` is the point ``(x[k % len(x)], y[k // len(x)])``,
  so ``Z[i, j]`` is at ``(x[j], y[i])``, as ``plot_2D`` draws it (``X, Y = np.meshgrid(x, y)``,
  ``contour(X, Y, Z)``). On a non-square grid their declared shape ``(len(x), len(y))`` contradicts that
  order (and ``plot_2D`` fails); this module reads the flat data in meshgrid order whatever the declared
  shape, and writes shape ``(len(y), len(x))``, which their ``plot_2D`` draws and their ``crunch`` resumes
  (the flat order is the same);
* accuracies in percent: ``evaluation.eval_loss`` returns ``100. * correct / total``;
* ``plot_hessian_eigen.py`` adds ``max_eig`` (created as -1) and ``min_eig`` (created as +1) on the same grid.

losslab's (:mod:`losslab.core.surfaces`) has the same dataset names, but shape ``(len(x), len(y))`` with
``[i, j]`` at ``(x[i], y[j])``, accuracies as fractions, NaN where not computed, a ``done`` mask per tile and
a ``spec`` attribute. :func:`read_li_surface` transposes, divides accuracies by 100 (and keeps their own
percent numbers, transposed, as ``extra["<name>_percent"]``: ``p / 100 * 100`` is not ``p`` in the last bit
for about one value in seven, and writing back must give their file bitwise), turns the "not computed" fill
into NaN, marks a row done when all its points are computed (``tile_rows`` 1), and gives a spec marking the
surface as imported (``"imported": "li"``: never taken for a computation to resume). :func:`write_li_surface`
does the converse and adds a group ``losslab`` (spec, done, attributes, the exact fractional accuracies)
that their code never opens; reading such a file back restores the losslab surface bitwise, unless its Li
datasets changed since (their SHA-256 is in the group; e.g. resumed by their ``crunch``): then it is read as
theirs, with a warning.

**Their direction file** (``net_plotter.setup_direction``, ``h5_util.write_list``,
``projection.setup_PCA_directions``): a GROUP ``xdirection`` (and ``ydirection`` in 2-D) holding one dataset
per tensor, named ``'0'``, ``'1'``, ... (``h5_util.read_list`` reads ``grp[str(i)]`` for ``i < len(grp)``).
With ``dir_type='weights'`` the tensors are ``net.parameters()`` in order; with ``'states'`` they are the
``state_dict()`` entries, buffers included (BN running statistics and the 0-d ``num_batches_tracked``).
PCA files add ``explained_variance_ratio_``, ``singular_values_`` and ``explained_variance_``. losslab's
(:mod:`losslab.core.directions`) is one flat dataset ``xdirection`` in ``named_parameters`` order
(:func:`losslab.core.weights.flatten`, the order of ``parameters()``). :func:`read_li_directions`
concatenates the parameters' tensors; a states-type file needs the model to tell its parameters from its
buffers (losslab perturbs parameters only: the buffers' entries are dropped, with a warning when they are
not zero). :func:`write_li_directions` writes weights type, one dataset per parameter with its shape, which
needs the model's :class:`~losslab.core.weights.ParamLayout`.

This module sits below :mod:`~losslab.core.surfaces` and :mod:`~losslab.core.directions` (their readers call
it): its readers return the fields of a ``Surface`` / ``Directions`` as a dict, its writers take any object
with their attributes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Protocol

import h5py
import numpy as np
import torch
from torch import nn

from losslab import io as lio
from losslab.core.weights import ParamLayout, layout_of

log = logging.getLogger(__name__)

LAYOUTS = ("li", "losslab")  # the two layouts of a surface or direction file
IMPORTED = "li"  # spec["imported"] of a surface read from their file
IMPORT_FORMAT = 1
LOSSLAB_GROUP = "losslab"  # in a Li-layout file written by losslab: what restores the losslab surface
COORDINATES = ("xcoordinates", "ycoordinates")
PCA_RATIO = "explained_variance_ratio_"
_DIRECTION_GROUPS = ("xdirection", "ydirection")
_DIRECTION_ATTRS = ("kind", "norm", "ignore", "orthogonalized", "seed")


class SurfaceLike(Protocol):
    """What :func:`write_li_surface` needs of a :class:`losslab.core.surfaces.Surface`."""

    xcoordinates: np.ndarray
    ycoordinates: np.ndarray | None
    values: dict[str, np.ndarray]
    done: np.ndarray
    spec: dict[str, Any]
    attrs: dict[str, Any]
    extra: dict[str, np.ndarray]


class DirectionsLike(Protocol):
    """What :func:`write_li_directions` needs of a :class:`losslab.core.directions.Directions`."""

    x: torch.Tensor
    y: torch.Tensor | None
    kind: str
    norm: str
    ignore: str
    seed: int | None
    orthogonalized: bool
    explained_variance_ratio: tuple[float, ...] | None
    extra: Mapping[str, np.ndarray]


# ---------------------------------------------------------------- which file is this ----------------------

def classify(f: h5py.File) -> tuple[str, str] | None:
    """``(kind, layout)`` of an open HDF5 file: kind ``"surface"`` or ``"directions"``, layout ``"li"`` or
    ``"losslab"``; None when it is neither (a curve evaluation, a spectral density, anything else)."""
    if isinstance(f.get("xcoordinates"), h5py.Dataset):
        return "surface", "losslab" if "spec" in f.attrs or "done" in f else "li"
    if "xdirection" in f:
        return "directions", "li" if isinstance(f["xdirection"], h5py.Group) else "losslab"
    return None


def identify(path: str | os.PathLike) -> tuple[str, str]:
    """:func:`classify` of the file ``path``; a missing file raises FileNotFoundError, a file that is not
    HDF5 :class:`losslab.io.CorruptFileError`, an HDF5 file of neither kind ValueError, each naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            found = classify(f)
    except OSError as err:
        raise lio.CorruptFileError(f"{path}: not an HDF5 file ({err})") from err
    if found is None:
        raise ValueError(f"{path}: neither a surface file (dataset xcoordinates) nor a direction file (xdirection), "
                         f"in losslab's or Li et al.'s layout")
    return found


def _is(path: str | os.PathLike, wanted: tuple[str, str]) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return classify(f) == wanted
    except OSError:  # missing or not HDF5: the caller's own reader says so
        return False


def is_li_surface(path: str | os.PathLike) -> bool:
    """True for a surface file in Li et al.'s layout (``xcoordinates`` without losslab's ``spec``/``done``)."""
    return _is(path, ("surface", "li"))


def is_li_directions(path: str | os.PathLike) -> bool:
    """True for a direction file in Li et al.'s layout (a group ``xdirection``)."""
    return _is(path, ("directions", "li"))


# ---------------------------------------------------------------- surfaces --------------------------------

def fill_value(name: str) -> float | None:
    """The "not computed" value their code creates the dataset ``name`` with: -1 for ``*_loss``, ``*_acc`` and
    ``max_eig``, +1 for ``min_eig``; None for any other dataset (copied as it is)."""
    if name.endswith(("_loss", "_acc")) or name == "max_eig":
        return -1.0
    return 1.0 if name == "min_eig" else None


def _is_percent(name: str) -> bool:
    return name.endswith("_acc")


def _value_order(names: list[str]) -> list[str]:
    """losslab's order: train_loss, train_acc, test_loss, test_acc, then the rest by name."""
    first = [f"{s}_{m}" for s in ("train", "test") for m in ("loss", "acc")]
    return [n for n in first if n in names] + sorted(n for n in names if n not in first)



def _percent_matches(percent: np.ndarray, fractions: np.ndarray) -> bool:
    """True when ``fractions`` are exactly what reading ``percent`` gives (fill -1 as NaN, else ``/ 100``)."""
    if percent.shape != fractions.shape:
        return False
    read = np.where(percent == -1.0, np.nan, percent / 100)
    return np.array_equal(read, fractions, equal_nan=True)


def li_arrays(surface: SurfaceLike) -> dict[str, np.ndarray]:
    """The value datasets of ``surface`` as their code stores them: shape ``(len(y), len(x))`` with ``[j, i]``
    at ``(x[i], y[j])`` (1-D as it is), accuracies in percent, NaN as the fill value (-1; +1 for min_eig)."""
    out = {}
    for name, arr in surface.values.items():
        arr = np.asarray(arr)
        kept = surface.extra.get(f"{name}_percent") if _is_percent(name) else None
        if kept is not None and _percent_matches(np.asarray(kept), arr):
            arr = np.asarray(kept)  # their own numbers, read from their file
        else:
            arr = arr * 100 if _is_percent(name) else arr
            fill = fill_value(name)
            if fill is not None:
                arr = np.where(np.isnan(arr), np.asarray(fill, arr.dtype), arr)
        out[name] = arr if surface.ycoordinates is None else np.ascontiguousarray(arr.T)
    return out


def _from_li(raw: np.ndarray, name: str, nx: int, ny: int | None, path: Path,
             keep_fill: bool = False) -> np.ndarray:
    """Their dataset ``name`` in losslab's orientation (``[i, j]`` at ``(x[i], y[j])``), the fill as NaN
    (unless ``keep_fill``)."""
    raw = np.asarray(raw)
    want = nx if ny is None else nx * ny
    if raw.size != want or raw.ndim != (1 if ny is None else 2):
        grid = f"{nx}" if ny is None else f"{nx} x {ny}"
        raise lio.CorruptFileError(f"{path}: dataset {name} has shape {raw.shape}, not one value per point of the "
                                   f"{grid} grid")
    arr = raw.reshape(-1) if ny is None else raw.reshape(ny, nx).T.copy()
    return arr if keep_fill else _unfilled(arr, name)


def _unfilled(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` with the fill value of ``name`` (:func:`fill_value`) as NaN."""
    fill = fill_value(name)
    if fill is None or not np.issubdtype(arr.dtype, np.floating):
        return arr
    return np.where(arr == fill, np.asarray(np.nan, arr.dtype), arr)


def _read_root(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any] | None]:
    """The root datasets of a Li-layout surface file, and the ``losslab`` group's content (or None)."""
    try:
        with h5py.File(path, "r") as f:
            if classify(f) != ("surface", "li"):
                raise lio.CorruptFileError(f"{path}: not a surface file in Li et al.'s layout")
            root = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
            group = None
            if isinstance(f.get(LOSSLAB_GROUP), h5py.Group):
                g = f[LOSSLAB_GROUP]
                group = {"attrs": dict(g.attrs), "data": {k: g[k][()] for k in g.keys()}}
    except OSError as err:
        raise lio.CorruptFileError(f"{path}: not a readable HDF5 file ({err})") from err
    return root, group


def _coordinates(root: dict[str, np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    xs = np.asarray(root.pop("xcoordinates"))
    ys = np.asarray(root.pop("ycoordinates")) if "ycoordinates" in root else None
    for name, c in (("xcoordinates", xs), ("ycoordinates", ys)):
        if c is not None and (c.ndim != 1 or len(c) == 0):
            raise lio.CorruptFileError(f"{path}: {name} has shape {c.shape}, not a non-empty list of coordinates")
    return xs, ys


def _text(value: Any) -> str:
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def read_li_surface(path: str | os.PathLike) -> dict[str, Any]:
    """The fields of a :class:`losslab.core.surfaces.Surface` (``Surface(**fields)``) read from a surface
    file in Li et al.'s layout (see the module doc): transposed to ``[i, j]`` at ``(x[i], y[j])``,
    accuracies as fractions (their percent numbers kept as ``extra["<name>_percent"]``, e.g.
    ``train_acc_percent``), "not computed" as NaN, ``done`` per row, ``spec["imported"] == "li"``,
    ``attrs["dir_file"]`` their direction file's path.
    A file losslab wrote (:func:`write_li_surface`) comes back as the losslab surface it was."""
    path = Path(path)
    root, group = _read_root(path)
    xs, ys = _coordinates(root, path)
    if group is not None:
        restored = _restore(path, dict(root), xs, ys, group)
        if restored is not None:
            return restored
    dir_file = _text(root.pop("dir_file")) if "dir_file" in root else None
    names = _value_order([k for k in root if fill_value(k) is not None])
    if not any(fill_value(n) == -1.0 for n in names):
        raise lio.CorruptFileError(f"{path}: a Li et al. surface file without train_loss (or any *_loss, *_acc, "
                                   f"max_eig dataset): no point has been computed yet")
    nx, ny = len(xs), None if ys is None else len(ys)
    oriented = {n: _from_li(root.pop(n), n, nx, ny, path, keep_fill=True) for n in names}
    values = {n: _unfilled(a, n) / 100 if _is_percent(n) else _unfilled(a, n) for n, a in oriented.items()}
    extra = {**root, **{f"{n}_percent": a for n, a in oriented.items() if _is_percent(n)}}
    computed = np.stack([~np.isnan(v) for n, v in values.items() if fill_value(n) is not None])
    done = computed.all(axis=0) if ny is None else computed.all(axis=(0, 2))
    spec = {"format": IMPORT_FORMAT, "imported": IMPORTED, "shape": [nx] + ([] if ny is None else [ny]),
            "tile_rows": 1, "values": names}
    return {"xcoordinates": xs, "ycoordinates": ys, "values": values, "done": done, "spec": spec,
            "attrs": {} if dir_file is None else {"dir_file": dir_file}, "extra": extra}


def _restore(path: Path, root: dict[str, np.ndarray], xs: np.ndarray, ys: np.ndarray | None,
             group: dict[str, Any]) -> dict[str, Any] | None:
    """The losslab surface a Li-layout file was written from, if its group ``losslab`` still matches the
    file's Li datasets (else None, with a warning: the file changed since, e.g. resumed by their code)."""
    try:
        attrs = dict(group["attrs"])
        spec = json.loads(attrs.pop("spec"))
        attrs.pop("complete", None)
        names = list(spec["values"])
        missing = [n for n in names if n not in root]
        if missing:
            raise KeyError(f"no dataset {missing[0]}")
        unchanged = _digest({n: root[n] for n in names}) == attrs.pop("li_sha256", None)
        root.pop("dir_file", None)  # attrs["dir_file"] of the group, if the surface had one
        nx, ny = len(xs), None if ys is None else len(ys)
        values = {n: np.asarray(group["data"][n]) if _is_percent(n) else _from_li(root.pop(n), n, nx, ny, path)
                  for n in names}
        for n in names:
            root.pop(n, None)
        fields = {"xcoordinates": xs, "ycoordinates": ys, "values": values,
                  "done": np.asarray(group["data"]["done"]).astype(bool), "spec": spec, "attrs": attrs,
                  "extra": root}
    except (KeyError, ValueError, TypeError, lio.CorruptFileError) as err:
        log.warning("%s: its group %r is not a readable losslab surface (%s): read as Li et al.'s file",
                    path, LOSSLAB_GROUP, err)
        return None
    if not unchanged:
        log.warning("%s: its Li datasets changed after losslab wrote it (e.g. resumed by their crunch): read as "
                    "Li et al.'s file, not as the losslab surface of its group %r", path, LOSSLAB_GROUP)
        return None
    return fields


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the value datasets as written (names, dtypes, shapes, bytes): what tells a Li-layout file
    losslab wrote from one changed since."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(f"{name};{arr.dtype.str};{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def write_li_surface(path: str | os.PathLike, surface: SurfaceLike) -> None:
    """Write ``surface`` (a :class:`losslab.core.surfaces.Surface`) in Li et al.'s layout, atomically:
    ``dir_file`` (when known: ``attrs["dir_file"]``), ``xcoordinates``, ``ycoordinates``, the values by
    :func:`li_arrays` (``[j, i]`` at ``(x[i], y[j])``, accuracies in percent, -1 where not computed), the
    extra datasets, and, for a surface losslab computed, the group ``losslab`` that restores it."""
    arrays = li_arrays(surface)
    consumed = {f"{n}_percent" for n in surface.values if _is_percent(n)}
    dir_file = surface.attrs.get("dir_file")
    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        if dir_file is not None:
            f["dir_file"] = _text(dir_file)
        f["xcoordinates"] = np.asarray(surface.xcoordinates)
        if surface.ycoordinates is not None:
            f["ycoordinates"] = np.asarray(surface.ycoordinates)
        for name, arr in arrays.items():
            f[name] = arr
        for name, arr in surface.extra.items():
            if name not in consumed:
                f[name] = arr
        if surface.spec.get("imported") != IMPORTED:
            g = f.create_group(LOSSLAB_GROUP)
            g.attrs["spec"] = json.dumps(surface.spec, sort_keys=True)
            g.attrs["complete"] = bool(np.asarray(surface.done).all())
            g.attrs["li_sha256"] = _digest(arrays)
            for key, value in surface.attrs.items():
                if key not in ("spec", "complete"):
                    g.attrs[key] = lio.hdf5_attribute(value)
            g["done"] = np.asarray(surface.done)
            for name in surface.values:
                if _is_percent(name):
                    g[name] = np.asarray(surface.values[name])


# ---------------------------------------------------------------- directions ------------------------------

def _read_list(f: h5py.File, name: str, path: Path) -> list[torch.Tensor]:
    """``h5_util.read_list``: the datasets '0' .. 'n-1' of the group ``name``, as tensors."""
    grp = f[name]
    if not isinstance(grp, h5py.Group):
        raise lio.CorruptFileError(f"{path}: {name} is a dataset in a file whose xdirection is a group")
    wanted = [str(i) for i in range(len(grp))]
    if sorted(grp.keys()) != sorted(wanted) or not all(isinstance(grp[k], h5py.Dataset) for k in wanted):
        raise lio.CorruptFileError(f"{path}: group {name} must hold datasets named '0' to '{len(grp) - 1}' "
                                   f"(h5_util.write_list), found {sorted(grp.keys())[:6]}")
    return [torch.from_numpy(np.array(grp[k][()])) for k in wanted]


def _parameters_of(tensors: list[torch.Tensor], model: nn.Module | ParamLayout | None, path: Path,
                   name: str) -> list[torch.Tensor]:
    """The parameters' tensors among a direction's ``tensors`` (weights or states type; see the module doc)."""
    n = len(tensors)
    if model is None:
        if any(t.ndim == 0 for t in tensors):
            raise ValueError(f"{path}: {name} holds 0-d tensors, as a states-type file does (BN's "
                             f"num_batches_tracked among the state_dict entries): pass the model "
                             f"(load_directions(path, model), losslab convert --model) to pick its parameters")
        return tensors
    layout = layout_of(model)
    what = type(model).__name__ if isinstance(model, nn.Module) else "the model"
    if n == len(layout.shapes):  # dir_type 'weights': net.parameters()
        for i, (t, shape, pname) in enumerate(zip(tensors, layout.shapes, layout.names)):
            if tuple(t.shape) != tuple(shape):
                raise ValueError(f"{path}: {name} tensor {i} has shape {tuple(t.shape)}, {what}'s parameter "
                                 f"{pname!r} {tuple(shape)}: a direction of another architecture")
        return tensors
    if not isinstance(model, nn.Module):
        raise ValueError(f"{path}: {name} holds {n} tensors, the layout {len(layout.shapes)} parameters; a "
                         f"states-type file needs the model itself (its state_dict), not its ParamLayout")
    state = model.state_dict()
    if n != len(state):
        raise ValueError(f"{path}: {name} holds {n} tensors; {what} has {len(layout.shapes)} parameters "
                         f"(dir_type 'weights') and {len(state)} state_dict entries (dir_type 'states'): a "
                         f"direction of another architecture")
    keys = list(state)
    for i, (t, key) in enumerate(zip(tensors, keys)):
        if tuple(t.shape) != tuple(state[key].shape):
            raise ValueError(f"{path}: {name} tensor {i} has shape {tuple(t.shape)}, {what}'s state_dict entry "
                             f"{key!r} {tuple(state[key].shape)}: a direction of another architecture")
    picked = [keys.index(p) for p in layout.names]
    dropped = [keys[i] for i in range(n) if i not in set(picked) and bool(tensors[i].ne(0).any())]
    if dropped:
        log.warning("%s: %s is a states-type direction with nonzero entries on buffers (%s%s); losslab perturbs "
                    "parameters only: they are dropped", path, name, ", ".join(dropped[:4]),
                    " ..." if len(dropped) > 4 else "")
    return [tensors[i] for i in picked]


def read_li_directions(path: str | os.PathLike, model: nn.Module | ParamLayout | None = None) -> dict[str, Any]:
    """The fields of a :class:`losslab.core.directions.Directions` (``Directions(**fields)``) read from a
    direction file in Li et al.'s layout: each group's parameter tensors concatenated in ``named_parameters``
    order (flat, losslab's layout). ``model`` (an ``nn.Module``, or its ``ParamLayout`` for weights type)
    checks the tensors' count and shapes and picks the parameters of a states-type file; without it a file
    is read as weights type, and a states-type file (0-d tensors) raises ValueError asking for the model.
    ``explained_variance_ratio_`` and the other PCA datasets come along."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if classify(f) != ("directions", "li"):
                raise lio.CorruptFileError(f"{path}: not a direction file in Li et al.'s layout")
            lists = {g: _read_list(f, g, path) for g in _DIRECTION_GROUPS if g in f}
            root = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
            attrs = dict(f.attrs)
    except OSError as err:
        raise lio.CorruptFileError(f"{path}: not a readable HDF5 file ({err})") from err
    flat = {}
    for g, tensors in lists.items():
        if not tensors:
            raise lio.CorruptFileError(f"{path}: group {g} is empty")
        flat[g] = torch.cat([t.reshape(-1) for t in _parameters_of(tensors, model, path, g)])
    ratio = root.pop(PCA_RATIO, None)
    return {"x": flat["xdirection"], "y": flat.get("ydirection"),
            "kind": _text(attrs.get("kind", "pca" if ratio is not None else "given")),
            "norm": _text(attrs.get("norm", "none")), "ignore": _text(attrs.get("ignore", "keep")),
            "seed": int(attrs["seed"]) if "seed" in attrs else None,
            "orthogonalized": bool(attrs.get("orthogonalized", False)),
            "explained_variance_ratio": None if ratio is None else tuple(float(v) for v in np.ravel(ratio)),
            "extra": root}


def write_li_directions(path: str | os.PathLike, directions: DirectionsLike,
                        model: nn.Module | ParamLayout) -> None:
    """Write ``directions`` in Li et al.'s layout, atomically: groups ``xdirection`` (``ydirection``) with one
    dataset per parameter of ``model``, shaped like it (their ``dir_type='weights'``, as ``h5_util.write_list``
    writes it), ``explained_variance_ratio_`` and the other extra datasets, and losslab's provenance as
    attributes (which their code ignores)."""
    layout = layout_of(model)
    for name, d in (("xdirection", directions.x), ("ydirection", directions.y)):
        if d is not None and (d.ndim != 1 or d.numel() != layout.size):
            raise ValueError(f"{path}: {name} has {d.numel()} entries, the model {layout.size} parameters: "
                             f"directions of another architecture")
    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, d in (("xdirection", directions.x), ("ydirection", directions.y)):
            if d is None:
                continue
            grp = f.create_group(name)
            for i, t in enumerate(layout.split(d.detach().cpu())):
                grp.create_dataset(str(i), data=t.numpy())
        if directions.explained_variance_ratio is not None:
            f[PCA_RATIO] = np.asarray(directions.explained_variance_ratio, dtype=np.float64)
        for name, arr in directions.extra.items():
            f[name] = arr
        for key in _DIRECTION_ATTRS:
            value = getattr(directions, key)
            if value is not None:
                f.attrs[key] = value
