"""Directions in weight space: random (filter-normalised) and PCA of an optimisation trajectory.

Li et al. (2018) perturb a minimiser ``theta*`` along a random Gaussian direction ``d`` "with the same
dimensions as theta", after *filter normalisation*: "each filter in d is normalised to have the same norm of
the corresponding filter in theta", ``d_ij <- d_ij / ||d_ij|| * ||theta_ij||`` (a filter = one output slice
of a convolution, one row of a fully connected weight). This removes the scale invariance of ReLU networks
with BN, so that curves of different networks become comparable. Biases and BN parameters (1-D tensors) get
a zero direction ("we do not perturb them", ``ignore="biasbn"``) or, as in their code's alternative, a copy of
the weights.

For optimisation trajectories random directions are useless ("nearly orthogonal" to the path), so they use
PCA: the matrix of ``theta_i - theta_n`` over the saved epochs, its top two principal components as
directions, and the explained variance on the axes.

Directions are flat vectors laid out like :func:`losslab.core.weights.flatten`; :class:`Directions` carries one or
two of them with their provenance, and :func:`save_directions` / :func:`load_directions` store them in HDF5
(one flat dataset each, ``xdirection`` and ``ydirection``, the names of Li et al.'s ``*.h5`` direction files).
Li et al.'s own files (a group of per-tensor datasets per direction) are read by :func:`load_directions` too and
written by :func:`losslab.core.li_files.write_li_directions` (see :mod:`losslab.core.li_files`).

Reusing directions on another network. Filter normalisation is relative to the weights the directions were
drawn for. :func:`renormalize` scales saved directions to another model's filters by their recorded ``norm`` and
``ignore``; for ``filter`` and ``layer`` this is exactly the same Gaussian draw normalised for that model
(the scale of each filter of the saved direction cancels), which is how Li et al. make the plots of
different networks comparable. Used as saved instead, the same vectors are added to both networks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import torch
from torch import nn

from losslab import io as lio
from losslab.core import li_files
from losslab.core.weights import ParamLayout, flatten, layout_of

NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "copy", "keep")
KINDS = ("random", "pca", "interpolation", "plane", "given")


# ---------------------------------------------------------------- random directions -----------------------

def random_like(model: nn.Module | ParamLayout, generator: torch.Generator) -> list[torch.Tensor]:
    """A Gaussian direction, one ``N(0, 1)`` tensor per parameter (same shapes, ``named_parameters`` order)."""
    return [torch.randn(shape, generator=generator) for shape in layout_of(model).shapes]


def _normalize_tensor(d: torch.Tensor, w: torch.Tensor, norm: str) -> torch.Tensor:
    """One parameter's direction ``d`` normalised against its weights ``w``.

    ``filter``: every slice along dim 0 scaled to the norm of the same slice of ``w``; ``layer``: the whole
    tensor scaled to ``||w||``; ``weight``: ``d * w`` elementwise; ``none``: ``d`` unchanged.
    """
    if norm == "none":
        return d.clone()
    if norm == "weight":
        return d * w
    if norm == "layer" or d.ndim <= 1:
        return _scale_to(d.reshape(1, -1), w.reshape(1, -1)).view_as(d)
    return _scale_to(d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)).view_as(d)


def _scale_to(d_rows: torch.Tensor, w_rows: torch.Tensor) -> torch.Tensor:
    """Each row of ``d_rows`` scaled to the norm of the same row of ``w_rows`` (a zero row stays zero)."""
    d_norm = d_rows.norm(dim=1, keepdim=True)
    w_norm = w_rows.norm(dim=1, keepdim=True)
    scale = torch.where(d_norm > 0, w_norm / d_norm.clamp_min(torch.finfo(d_rows.dtype).tiny),
                        torch.zeros_like(d_norm))
    return d_rows * scale


def normalize(direction: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], norm: str = "filter",
              ignore: str = "biasbn") -> list[torch.Tensor]:
    """Li et al.'s ``normalize_directions_for_weights``: a new per-parameter direction.

    Tensors of 2 or more dimensions are normalised by ``norm`` (see :func:`_normalize_tensor`). 1-D tensors
    (biases, BN weight and bias) are zeroed (``ignore="biasbn"``), replaced by a copy of the weights
    (``"copy"``, the code's alternative), or kept and normalised like the rest with the whole vector as one
    filter (``"keep"``).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown normalization {norm!r}; known: {list(NORMS)}")
    if ignore not in IGNORES:
        raise ValueError(f"unknown ignore {ignore!r}; known: {list(IGNORES)}")
    if len(direction) != len(weights):
        raise ValueError(f"direction has {len(direction)} tensors, weights {len(weights)}")
    out = []
    for d, w in zip(direction, weights):
        if d.shape != w.shape:
            raise ValueError(f"direction shape {tuple(d.shape)} != weight shape {tuple(w.shape)}")
        if d.ndim <= 1 and ignore == "biasbn":
            out.append(torch.zeros_like(d))
        elif d.ndim <= 1 and ignore == "copy":
            out.append(w.detach().clone())
        else:
            out.append(_normalize_tensor(d, w.detach(), norm))
    return out


def random_direction(model: nn.Module, generator: torch.Generator, norm: str = "filter",
                     ignore: str = "biasbn", flat: bool = True) -> torch.Tensor | list[torch.Tensor]:
    """A normalised random Gaussian direction for ``model``'s weights, as a flat vector or a list."""
    layout = ParamLayout.of(model)
    weights = layout.split(flatten(model))
    d = normalize(random_like(layout, generator), weights, norm, ignore)
    return layout.cat(d) if flat else d


def orthogonalize(d: torch.Tensor, against: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt: ``d`` minus its projection on ``against`` (flat vectors; computed in float64)."""
    a = against.double()
    denom = torch.dot(a, a)
    if denom == 0:
        raise ValueError("cannot orthogonalize against a zero vector")
    return (d.double() - torch.dot(d.double(), a) / denom * a).to(d.dtype)


def biasbn_mask(model: nn.Module | ParamLayout) -> torch.Tensor:
    """Flat boolean mask of the entries that belong to tensors of 2 or more dimensions (not biases or BN)."""
    layout = layout_of(model)
    return torch.cat([torch.full((s.numel(),), len(s) > 1) for s in layout.shapes])


# ---------------------------------------------------------------- Directions -------------------------------

@dataclass(frozen=True, eq=False)
class Directions:
    """One (``y is None``) or two flat directions with how they were made; ``extra``: further arrays of their
    file (Li et al.'s PCA ``singular_values_``, ``explained_variance_``), stored with them."""

    x: torch.Tensor
    y: torch.Tensor | None = None
    kind: str = "given"
    norm: str = "none"
    ignore: str = "keep"
    seed: int | None = None
    orthogonalized: bool = False
    explained_variance_ratio: tuple[float, float] | None = None
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    file_sha256: str | None = None  # the direction file they were read from (losslab.io.file_hash)
    renormalized: bool = False  # re-normalised to another model's weights (:func:`renormalize`)

    @property
    def dims(self) -> int:
        return 1 if self.y is None else 2

    def provenance(self) -> dict[str, Any]:
        """Attributes describing the directions, for surface files (the file and re-normalisation only when
        set, so that surfaces of drawn directions keep their attributes)."""
        out: dict[str, Any] = {"direction": self.kind, "norm": self.norm, "ignore": self.ignore,
                               "seed": self.seed, "orthogonalized": self.orthogonalized}
        if self.explained_variance_ratio is not None:
            out["explained_variance_ratio"] = list(self.explained_variance_ratio)
        if self.file_sha256 is not None:
            out["directions_sha256"] = self.file_sha256
        if self.renormalized:
            out["renormalized"] = True
        return out


def check_directions(directions: Directions, model: nn.Module | ParamLayout, source: str = "directions") -> None:
    """A ``ValueError`` naming ``source`` (e.g. the direction file) unless every direction is a flat vector of
    the model's number of weights."""
    size = layout_of(model).size
    for name, d in (("xdirection", directions.x), ("ydirection", directions.y)):
        if d is not None and (d.ndim != 1 or d.numel() != size):
            raise ValueError(f"{source}: {name} has {d.numel()} entries but the model has {size} weights: the "
                             f"directions were made for another architecture")


def renormalize(directions: Directions, model: nn.Module, source: str = "directions") -> Directions:
    """``directions`` re-normalised to ``model``'s weights by their recorded ``norm`` and ``ignore``.

    For ``norm`` ``filter`` or ``layer`` the result is the direction the same Gaussian draw would have given
    for ``model`` (each saved filter's scale cancels). Directions of ``norm="none"`` (PCA, interpolation,
    plane, given) are not relative to weights and come back unchanged. ``weight``-normalised directions
    (``d * w``) and orthogonalised pairs cannot be re-normalised (the weights they were made for are not
    stored; Gram-Schmidt mixed the pair): a ``ValueError`` naming ``source`` says so."""
    check_directions(directions, model, source)
    if directions.norm == "none":
        return directions
    if directions.norm not in ("filter", "layer"):
        raise ValueError(f"{source}: {directions.norm!r}-normalized directions cannot be re-normalized to another "
                         f"model (the weights they were made for are not stored); use them as saved")
    if directions.orthogonalized:
        raise ValueError(f"{source}: the second direction was orthogonalized to the first, so it cannot be "
                         f"re-normalized to another model's filters; use them as saved")
    layout = ParamLayout.of(model)
    weights = layout.split(flatten(model))

    def again(d: torch.Tensor) -> torch.Tensor:
        return layout.cat(normalize(layout.split(d.to(weights[0].dtype)), weights, directions.norm,
                                    directions.ignore))

    return replace(directions, x=again(directions.x), y=None if directions.y is None else again(directions.y),
                   renormalized=True)


def random_directions(model: nn.Module, seed: int, norm: str = "filter", ignore: str = "biasbn",
                      dims: int = 2, orthogonal: bool = False) -> Directions:
    """``dims`` (1 or 2) normalised random directions drawn from ``torch.Generator().manual_seed(seed)``; with
    ``orthogonal`` the second is made orthogonal to the first by Gram-Schmidt (which leaves it no longer
    exactly filter-normalised; in high dimension the two are nearly orthogonal anyway)."""
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 or 2, not {dims}")
    gen = torch.Generator().manual_seed(seed)
    x = random_direction(model, gen, norm, ignore)
    y = random_direction(model, gen, norm, ignore) if dims == 2 else None
    if y is not None and orthogonal:
        y = orthogonalize(y, x)
    return Directions(x, y, "random", norm, ignore, seed, bool(orthogonal and y is not None))


# ---------------------------------------------------------------- PCA of a trajectory ----------------------

def pca_directions(trajectory: Sequence[torch.Tensor], final: torch.Tensor | None = None,
                   model: nn.Module | ParamLayout | None = None, ignore: str = "biasbn") -> Directions:
    """The top two principal components of ``theta_i - theta_final`` over a trajectory of flat weights.

    As in Li et al.'s ``setup_PCA_directions``: the rows are each weight vector minus the final one
    (``final`` defaults to the last), entries of biases and BN parameters are zeroed first when ``model`` is
    given and ``ignore="biasbn"``, and the rows are mean-centred (sklearn's PCA). Returns unit-norm
    directions with their explained variance ratios; the sign of each makes its largest entry positive.
    """
    if len(trajectory) < 3:
        raise ValueError(f"PCA directions need at least 3 weight vectors, got {len(trajectory)}")
    final = trajectory[-1] if final is None else final
    rows = torch.stack([(w - final).double() for w in trajectory])
    if model is not None and ignore == "biasbn":
        rows[:, ~biasbn_mask(model)] = 0.0
    rows -= rows.mean(dim=0, keepdim=True)
    eigvals, eigvecs = torch.linalg.eigh(rows @ rows.T)  # ascending; the Gram matrix is n x n
    eigvals, eigvecs = eigvals.flip(0).clamp_min(0.0), eigvecs.flip(1)
    if eigvals[1] <= eigvals[0] * 1e-12:
        raise ValueError("the trajectory spans fewer than two dimensions: no second principal component")
    comps = []
    for k in range(2):
        c = rows.T @ eigvecs[:, k]
        c = c / c.norm()
        comps.append((c * torch.sign(c[c.abs().argmax()])).to(trajectory[0].dtype))
    ratio = eigvals / eigvals.sum()
    return Directions(comps[0], comps[1], "pca", "none", ignore if model is not None else "keep",
                      explained_variance_ratio=(float(ratio[0]), float(ratio[1])))


def project(points: Sequence[torch.Tensor], origin: torch.Tensor, dx: torch.Tensor,
            dy: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinates ``(a, b)`` of each point in the frame ``origin + a*dx + b*dy`` (least squares, float64;
    for orthonormal ``dx, dy`` these are the dot products Li et al. use to draw a trajectory). Shape
    ``(len(points), 2)`` (or ``(len(points), 1)`` without ``dy``)."""
    basis = torch.stack([dx.double()] + ([dy.double()] if dy is not None else []), dim=1)  # P x k
    diffs = torch.stack([(p - origin).double() for p in points], dim=1)  # P x n
    gram = basis.T @ basis
    return torch.linalg.solve(gram, basis.T @ diffs).T


# ---------------------------------------------------------------- HDF5 ------------------------------------

def save_directions(path: str | os.PathLike, directions: Directions) -> None:
    """Write ``xdirection`` (and ``ydirection``, ``explained_variance_ratio_``, the ``extra`` arrays) and the
    provenance as attributes, atomically."""
    with lio.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("xdirection", data=directions.x.numpy())
            if directions.y is not None:
                f.create_dataset("ydirection", data=directions.y.numpy())
            if directions.explained_variance_ratio is not None:
                f.create_dataset("explained_variance_ratio_", data=list(directions.explained_variance_ratio))
            for name, arr in directions.extra.items():
                f.create_dataset(name, data=arr)
            for key in ("kind", "norm", "ignore"):
                f.attrs[key] = getattr(directions, key)
            f.attrs["orthogonalized"] = directions.orthogonalized
            if directions.seed is not None:
                f.attrs["seed"] = directions.seed


def load_directions(path: str | os.PathLike, model: nn.Module | ParamLayout | None = None) -> Directions:
    """Read a file written by :func:`save_directions`, or a direction file of Li et al.'s code (groups of
    per-tensor datasets, weights or states type: :func:`losslab.core.li_files.read_li_directions`).

    ``model`` (an ``nn.Module`` or its ``ParamLayout``), when given, is checked against the file: a direction
    of another length (losslab's file) or with other tensor shapes (Li et al.'s) raises ValueError naming the
    file. Li et al.'s states-type files need it (an ``nn.Module``) to pick the parameters among the
    ``state_dict`` entries."""
    if li_files.is_li_directions(path):
        return Directions(**li_files.read_li_directions(path, model))
    known = ("xdirection", "ydirection", "explained_variance_ratio_")
    try:
        with h5py.File(path, "r") as f:
            x = torch.from_numpy(f["xdirection"][()])
            y = torch.from_numpy(f["ydirection"][()]) if "ydirection" in f else None
            evr = tuple(float(v) for v in f["explained_variance_ratio_"][()]) \
                if "explained_variance_ratio_" in f else None
            extra = {k: f[k][()] for k in f.keys() if k not in known and isinstance(f[k], h5py.Dataset)}
            attrs = dict(f.attrs)
    except (OSError, KeyError) as err:
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such direction file") from err
        raise lio.CorruptFileError(f"{path}: not a direction file ({err})") from err
    directions = Directions(x, y, str(attrs.get("kind", "given")), str(attrs.get("norm", "none")),
                            str(attrs.get("ignore", "keep")), int(attrs["seed"]) if "seed" in attrs else None,
                            bool(attrs.get("orthogonalized", False)), evr, extra)  # type: ignore[arg-type]
    if model is not None:
        check_directions(directions, model, os.fspath(path))
    return directions
