"""Figures of loss landscapes, after Li et al. (2018): 1-D curves of loss and accuracy on twin axes, 2-D
contour lines (with levels passed in, so that several networks share them), filled contours or heatmaps, 3-D
surfaces, and an optimisation trajectory over the contours of its PCA plane with the explained variance on
the axes.

Each function draws on :func:`losslab.plots.figures.new_figure` (the project's style, matplotlib's object API
on the Agg canvas) and saves ``<stem>.png`` and ``<stem>.pdf`` atomically (:func:`losslab.plots.figures.save`).
Arrays follow the surface files: ``z[i, j]`` is the value at ``(x[i], y[j])``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from losslab.core.surfaces import read_surface
from losslab.plots.figures import colorbar, colour_norm, new_figure, save

if TYPE_CHECKING:  # matplotlib is imported by new_figure, when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOSS_COLOR, ACC_COLOR = "tab:blue", "tab:red"
SPLIT_STYLES = {"train": "-", "test": "--"}


SIZE = (5.0, 4.0)  # inches, every landscape figure but the 3-D one
SIZE_3D = (6.0, 5.0)


def _saved(fig, stem: str | os.PathLike) -> list[Path]:
    return [Path(p) for p in save(fig, stem)]


def _grid(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = np.asarray(x), np.asarray(y), np.asarray(z)
    if z.shape != (len(x), len(y)):
        raise ValueError(f"z has shape {z.shape}, expected (len(x), len(y)) = ({len(x)}, {len(y)})")
    xx, yy = np.meshgrid(x, y, indexing="ij")
    return xx, yy, z


def shared_levels(surfaces: Sequence[np.ndarray], num: int = 30, vmin: float | None = None,
                  vmax: float | None = None, log: bool = False) -> np.ndarray:
    """Contour levels common to several surfaces (``num`` levels spanning their finite range, or
    ``[vmin, vmax]``; geometric spacing with ``log``), so their contour plots compare level for level."""
    finite = np.concatenate([np.asarray(s, dtype=float)[np.isfinite(s)] for s in surfaces])
    if finite.size == 0:
        raise ValueError("no finite values to choose levels from")
    lo = float(finite.min()) if vmin is None else vmin
    hi = float(finite.max()) if vmax is None else vmax
    if log:
        lo = max(lo, 1e-8)
        return np.geomspace(lo, max(hi, lo * (1 + 1e-6)), num)
    return np.linspace(lo, max(hi, lo + 1e-12), num)


# ---------------------------------------------------------------- plot options ---------------------------

DEFAULT_LEVELS = 25


def parse_levels(text: str) -> int | tuple[float, ...] | str:
    """Contour levels as the command line gives them: ``N`` (that many, evenly spaced), ``a,b,c`` (those
    values), ``log`` or ``log:N`` (``N`` geometrically spaced, default :data:`DEFAULT_LEVELS`)."""
    text = text.strip()
    try:
        if text == "log" or text.startswith("log:"):
            num = int(text[4:]) if text != "log" else DEFAULT_LEVELS
            if num < 2:
                raise ValueError
            return f"log:{num}"
        if "," in text:
            values = tuple(float(v) for v in text.split(","))
            if len(values) < 1 or any(b <= a for a, b in zip(values, values[1:])):
                raise ValueError
            return values
        num = int(text)
        if num < 2:
            raise ValueError
        return num
    except ValueError:
        raise ValueError(f"levels {text!r}: expected a number >= 2, increasing values 'a,b,c', or 'log[:N]'") from None


@dataclass(frozen=True)
class PlotOptions:
    """Li et al.'s ``plot_2D`` options for a surface's figures: axis limits ``xlim``, ``ylim`` (``(lo, hi)``;
    on a 1-D figure ``ylim`` limits the loss axis), contour ``levels`` (a number of evenly spaced levels, the
    values themselves, or ``"log"`` / ``"log:N"`` for geometric spacing; default: 25, geometric when the loss
    is positive) and the colour range ``vmin``, ``vmax`` (also the range the levels span)."""

    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    levels: int | Sequence[float] | str | None = None
    vmin: float | None = None
    vmax: float | None = None

    def __post_init__(self) -> None:
        for name in ("xlim", "ylim"):
            lim = getattr(self, name)
            if lim is not None and (len(lim) != 2 or not float(lim[0]) < float(lim[1])):
                raise ValueError(f"{name} {lim!r}: expected (lo, hi) with lo < hi")
        if self.vmin is not None and self.vmax is not None and not self.vmin < self.vmax:
            raise ValueError(f"vmin {self.vmin} must be below vmax {self.vmax}")
        if isinstance(self.levels, str):
            parse_levels(self.levels)
        elif isinstance(self.levels, (int, np.integer)) and not isinstance(self.levels, bool):
            if self.levels < 2:
                raise ValueError(f"levels {self.levels}: at least 2")
        elif self.levels is not None:
            values = np.asarray(self.levels, dtype=float)
            if values.ndim != 1 or values.size == 0 or np.any(np.diff(values) <= 0):
                raise ValueError(f"levels {list(self.levels)!r}: expected increasing values")

    def contour_levels(self, z: np.ndarray) -> np.ndarray:
        """The levels for ``z``: the given values, or evenly / geometrically spaced between ``vmin`` (default:
        the smallest finite value) and ``vmax`` (the largest)."""
        spec = parse_levels(self.levels) if isinstance(self.levels, str) else self.levels
        if spec is None:
            return shared_levels([z], num=DEFAULT_LEVELS, vmin=self.vmin, vmax=self.vmax,
                                 log=bool(np.all(np.asarray(z) > 0)))
        if isinstance(spec, str):
            return shared_levels([z], num=int(spec[4:]), vmin=self.vmin, vmax=self.vmax, log=True)
        if isinstance(spec, (int, np.integer)):
            return shared_levels([z], num=int(spec), vmin=self.vmin, vmax=self.vmax)
        return np.asarray(spec, dtype=float)

    def limit(self, ax: Axes) -> None:
        """Apply the axis limits to ``ax``."""
        if self.xlim is not None:
            ax.set_xlim(*map(float, self.xlim))
        if self.ylim is not None:
            ax.set_ylim(*map(float, self.ylim))


# ---------------------------------------------------------------- 1-D ------------------------------------

def plot_1d(stem: str | os.PathLike, x: np.ndarray, losses: Mapping[str, np.ndarray],
            accs: Mapping[str, np.ndarray] | None = None, **options: Any) -> list[Path]:
    """Loss (left axis) and accuracy (right axis) along a 1-D surface, one line style per split (train
    solid, test dashed), as in Li et al.'s 1-D figures (:func:`line_figure`, saved)."""
    return _saved(line_figure(x, losses, accs, **options), stem)


def line_figure(x: np.ndarray, losses: Mapping[str, np.ndarray], accs: Mapping[str, np.ndarray] | None = None, *,
                xlabel: str = r"$\alpha$", loss_label: str = "loss", title: str | None = None,
                log_loss: bool = False, acc_percent: bool = True, options: PlotOptions | None = None) -> Figure:
    """The figure of :func:`plot_1d`; ``options``' ``xlim`` limits alpha, its ``ylim`` the loss axis."""
    fig, ax = new_figure(width=SIZE[0], height=SIZE[1])
    for split, values in losses.items():
        ax.plot(x, values, SPLIT_STYLES.get(split, ":"), color=LOSS_COLOR, label=f"{split} loss")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(loss_label, color=LOSS_COLOR)
    ax.tick_params(axis="y", labelcolor=LOSS_COLOR)
    if log_loss:
        ax.set_yscale("log")
    handles, labels = ax.get_legend_handles_labels()
    if accs:
        ax2 = ax.twinx()
        scale = 100.0 if acc_percent else 1.0
        for split, values in accs.items():
            ax2.plot(x, np.asarray(values) * scale, SPLIT_STYLES.get(split, ":"), color=ACC_COLOR,
                     label=f"{split} accuracy")
        ax2.set_ylabel("accuracy (%)" if acc_percent else "accuracy", color=ACC_COLOR)
        ax2.tick_params(axis="y", labelcolor=ACC_COLOR)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best", fontsize="small")
    if title:
        ax.set_title(title)
    (options or PlotOptions()).limit(ax)
    return fig


# ---------------------------------------------------------------- 2-D ------------------------------------

def _label_2d(ax: Axes, xlabel: str, ylabel: str, title: str | None) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def _mark_points(ax: Axes, points: np.ndarray | None, labels: Sequence[str] | None) -> None:
    if points is None:
        return
    points = np.asarray(points)
    ax.scatter(points[:, 0], points[:, 1], marker="o", color="k", zorder=3, s=20)
    for k, (px, py) in enumerate(points):
        ax.annotate(labels[k] if labels else str(k), (px, py), textcoords="offset points", xytext=(4, 4))


def plot_contour(stem: str | os.PathLike, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 levels: np.ndarray | int = 30, *, xlabel: str = r"$\alpha$", ylabel: str = r"$\beta$",
                 title: str | None = None, points: np.ndarray | None = None,
                 point_labels: Sequence[str] | None = None, inline_labels: bool = True) -> list[Path]:
    """Contour lines of ``z`` at ``levels`` (pass :func:`shared_levels` to compare networks); ``points``
    (n x 2) are marked, e.g. the three networks of a plane."""
    return _saved(contour_figure(x, y, z, levels, xlabel=xlabel, ylabel=ylabel, title=title, points=points,
                                 point_labels=point_labels, inline_labels=inline_labels), stem)


def contour_figure(x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: np.ndarray | int = 30, *,
                   xlabel: str = r"$\alpha$", ylabel: str = r"$\beta$", title: str | None = None,
                   points: np.ndarray | None = None, point_labels: Sequence[str] | None = None,
                   inline_labels: bool = True, options: PlotOptions | None = None,
                   path_xy: np.ndarray | None = None) -> Figure:
    """The figure of :func:`plot_contour` (``options``: axis limits and colour range; ``path_xy``, (T x 2), a
    path drawn over the contours, e.g. a curve in its plane)."""
    options = options or PlotOptions()
    fig, ax = new_figure(width=SIZE[0], height=SIZE[1])
    draw_contour(ax, x, y, z, levels, inline_labels=inline_labels, vmin=options.vmin, vmax=options.vmax)
    if path_xy is not None:
        ax.plot(np.asarray(path_xy)[:, 0], np.asarray(path_xy)[:, 1], "-", color="tab:red", linewidth=1.2)
    _mark_points(ax, points, point_labels)
    _label_2d(ax, xlabel, ylabel, title)
    options.limit(ax)
    return fig


def draw_contour(ax: Axes, x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: np.ndarray | int = 30, *,
                 inline_labels: bool = True, cmap: str = "summer", log: bool | None = None, vmin: float | None = None,
                 vmax: float | None = None):
    """Contour lines of ``z[i, j]`` at ``(x[i], y[j])`` on ``ax`` (``log``: colours on a log scale, for
    geometric levels; ``None``: a log scale when the levels, or ``z``, span more than
    :data:`losslab.plots.figures.MAX_DECADES` decades of positive values, :func:`~losslab.plots.figures.colour_norm`;
    ``vmin``, ``vmax``: the colour range); returns the contour set."""
    xx, yy, z = _grid(x, y, z)
    values = z if isinstance(levels, (int, np.integer)) else np.asarray(levels, dtype=float)
    from matplotlib.colors import LogNorm, Normalize  # matplotlib is loaded already: ax is drawn on

    if log is None:
        norm = colour_norm(values, vmin, vmax)
    elif log and not isinstance(levels, (int, np.integer)):
        norm = LogNorm(float(levels[0]), float(levels[-1]))
    else:
        norm = Normalize(vmin, vmax)
    cs = ax.contour(xx, yy, z, levels=levels, cmap=cmap, norm=norm)
    if inline_labels:
        ax.clabel(cs, inline=True, fontsize=7, fmt="%.3g")
    return cs


def plot_heatmap(stem: str | os.PathLike, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 levels: np.ndarray | int | None = 30, *, xlabel: str = r"$\alpha$", ylabel: str = r"$\beta$",
                 title: str | None = None, cbar_label: str = "loss", points: np.ndarray | None = None,
                 point_labels: Sequence[str] | None = None, options: PlotOptions | None = None) -> list[Path]:
    """Filled contours of ``z`` at ``levels``, or (``levels=None``) a heatmap of the grid cells, with a
    labelled colour bar."""
    return _saved(heatmap_figure(x, y, z, levels, xlabel=xlabel, ylabel=ylabel, title=title, cbar_label=cbar_label,
                                 points=points, point_labels=point_labels, options=options), stem)


def heatmap_figure(x: np.ndarray, y: np.ndarray, z: np.ndarray, levels: np.ndarray | int | None = 30, *,
                   xlabel: str = r"$\alpha$", ylabel: str = r"$\beta$", title: str | None = None,
                   cbar_label: str = "loss", points: np.ndarray | None = None,
                   point_labels: Sequence[str] | None = None, options: PlotOptions | None = None) -> Figure:
    """The figure of :func:`plot_heatmap` (``options``: axis limits and colour range). Values over more than
    :data:`losslab.plots.figures.MAX_DECADES` decades are coloured on a log scale; a colour range narrower than
    the values is stated on the colour bar ("clipped")."""
    options = options or PlotOptions()
    xx, yy, z = _grid(x, y, z)
    fig, ax = new_figure(width=SIZE[0], height=SIZE[1])
    finite = z[np.isfinite(z)]
    given = levels is not None and not isinstance(levels, (int, np.integer))  # the values: their ends, unless
    lo = float(levels[0]) if given and options.vmin is None else options.vmin  # a colour range is given
    hi = float(levels[-1]) if given and options.vmax is None else options.vmax
    norm = colour_norm(z, lo, hi)
    clipped = finite.size and ((norm.vmax is not None and finite.max() > norm.vmax * (1 + 1e-9)) or
                               (norm.vmin is not None and finite.min() < norm.vmin * (1 - 1e-9)))
    if clipped:
        cbar_label = f"{cbar_label} (colours clipped to [{norm.vmin:.3g}, {norm.vmax:.3g}])"
    if levels is None:
        mappable = ax.pcolormesh(xx, yy, z, shading="nearest", cmap="viridis", norm=norm)
    else:
        below = bool(finite.size and norm.vmin is not None and finite.min() < norm.vmin)
        above = bool(finite.size and norm.vmax is not None and finite.max() > norm.vmax)
        extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")
        mappable = ax.contourf(xx, yy, z, levels=levels, cmap="viridis", norm=norm, extend=extend)
    colorbar(fig, mappable, ax, cbar_label)
    _mark_points(ax, points, point_labels)
    _label_2d(ax, xlabel, ylabel, title)
    options.limit(ax)
    return fig


def plot_surface_3d(stem: str | os.PathLike, x: np.ndarray, y: np.ndarray, z: np.ndarray, *,
                    xlabel: str = r"$\alpha$", ylabel: str = r"$\beta$", zlabel: str = "loss",
                    title: str | None = None, zmax: float | None = None) -> list[Path]:
    """Li et al.'s 3-D surface plot of ``z`` (values above ``zmax`` clipped to it)."""
    return _saved(surface3d_figure(x, y, z, xlabel=xlabel, ylabel=ylabel, zlabel=zlabel, title=title, zmax=zmax),
                  stem)


def surface3d_figure(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, xlabel: str = r"$\alpha$",
                     ylabel: str = r"$\beta$", zlabel: str = "loss", title: str | None = None,
                     zmax: float | None = None, options: PlotOptions | None = None) -> Figure:
    """The figure of :func:`plot_surface_3d` (``options``: axis limits and colour range)."""
    options = options or PlotOptions()
    xx, yy, z = _grid(x, y, z)
    if zmax is not None:
        z = np.minimum(z, zmax)
    fig, ax = new_figure(width=SIZE_3D[0], height=SIZE_3D[1], projection="3d")
    ax.plot_surface(xx, yy, z, cmap="coolwarm", linewidth=0, antialiased=True, vmin=options.vmin,
                    vmax=options.vmax)
    ax.set_zlabel(zlabel)
    _label_2d(ax, xlabel, ylabel, title)
    options.limit(ax)
    return fig


def plot_trajectory(stem: str | os.PathLike, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                    trajectory: np.ndarray, explained_variance_ratio: Sequence[float],
                    levels: np.ndarray | int = 30, *, title: str | None = None,
                    epochs: Sequence[int] | None = None) -> list[Path]:
    """An optimisation path (n x 2 coordinates in the PCA plane) over the contour lines of the loss on that
    plane; the axes name the components with their explained variance, as in Li et al.'s Figure 9."""
    xx, yy, z = _grid(x, y, z)
    trajectory = np.asarray(trajectory)
    fig, ax = new_figure(width=SIZE[0], height=SIZE[1])
    draw_contour(ax, x, y, z, levels)
    ax.plot(trajectory[:, 0], trajectory[:, 1], "-o", color="tab:red", markersize=3, linewidth=1)
    if epochs is not None:
        for e, (px, py) in zip(epochs, trajectory):
            ax.annotate(str(e), (px, py), textcoords="offset points", xytext=(3, 3), fontsize=6)
    r1, r2 = explained_variance_ratio[:2]
    _label_2d(ax, f"1st PC: {100 * r1:.2f} %", f"2nd PC: {100 * r2:.2f} %", title)
    return _saved(fig, stem)


SURFACE_FIGURES = ("contour", "filled", "surface3d", "line1d")
ZMAX_3D = 10.0  # loss-landscape's default vmax: the 3-D view clips the loss here so the basin stays visible


def plot_surface_file(path: str | os.PathLike, out_dir: str | os.PathLike, title: str = "",
                      options: PlotOptions | None = None) -> list[Path]:
    """The standard figures of a 2-D surface file, into ``out_dir``: ``contour``, ``filled`` (filled
    contours), ``surface3d``, ``line1d`` (the row beta = 0: loss and accuracy along the first direction, on
    twin axes; not for a plane, :func:`surface_figures`). PNG and PDF each. ``options``: :class:`PlotOptions`
    (axis limits, contour levels, colour range)."""
    out_dir = Path(out_dir)
    return [p for name, fig in surface_figures(path, title, options).items() for p in _saved(fig, out_dir / name)]


def axis_labels(attrs: Mapping[str, Any], pca: bool = False) -> tuple[str, str]:
    """The axis labels of a surface whose file ``attrs`` are given: the principal components of a trajectory's
    PCA plane, the plane's orthonormal coordinates through three models (``direction "plane"``, no
    normalisation), or alpha and beta named with the normalisation the directions had (``norm`` filter / layer
    / weight; none: unnamed)."""
    if pca:
        return "1st PC", "2nd PC"
    if attrs.get("direction") == "plane":
        return "plane coordinate u", "plane coordinate v"
    norm = str(attrs.get("norm", "none"))
    suffix = f" ({norm}-normalized)" if norm in ("filter", "layer", "weight") else ""
    return rf"$\alpha${suffix}", rf"$\beta${suffix}"


def surface_figures(path: str | os.PathLike, title: str = "", options: PlotOptions | None = None
                    ) -> dict[str, Figure]:
    """The figures of :func:`plot_surface_file` by name, unsaved (for inspection). A plane through three models
    (:func:`losslab.api.plane`) has them marked on its 2-D figures and no 1-D slice (its beta = 0 row is no
    direction anyone chose); a plane through a curve (``curve_coordinates`` stored,
    :func:`losslab.api.curve_plane`) has the curve drawn on its contours too. The axes name the normalisation
    the file's directions had (:func:`axis_labels`)."""
    options = options or PlotOptions()
    s = read_surface(path)
    xs, ys, z = s.xcoordinates, s.ycoordinates, s["train_loss"]
    labels = axis_labels(s.attrs, pca="trajectory" in s.extra)
    levels = options.contour_levels(z)
    curve = s.extra.get("curve_coordinates")
    points = s.extra.get("point_coordinates")
    plane = s.attrs.get("direction") == "plane" or curve is not None
    point_labels = None
    if points is not None:
        point_labels = ("w0", "w1", "bend") if curve is not None else ("model 1", "model 2", "model 3")
    figs = {"contour": contour_figure(xs, ys, z, levels, xlabel=labels[0], ylabel=labels[1],
                                      title=f"{title} train loss", options=options, path_xy=curve, points=points,
                                      point_labels=point_labels),
            "filled": heatmap_figure(xs, ys, z, levels, xlabel=labels[0], ylabel=labels[1],
                                     title=f"{title} train loss", cbar_label="train loss", options=options,
                                     points=points, point_labels=point_labels),
            "surface3d": surface3d_figure(xs, ys, z, xlabel=labels[0], ylabel=labels[1],
                                          zlabel=f"train loss (clipped at {ZMAX_3D:g})", title=title, zmax=ZMAX_3D,
                                          options=options)}
    if not plane:
        row = int(np.argmin(np.abs(ys)))
        figs["line1d"] = line_figure(
            xs, {sp: s[f"{sp}_loss"][:, row] for sp in ("train", "test") if f"{sp}_loss" in s.values},
            {sp: s[f"{sp}_acc"][:, row] for sp in ("train", "test") if f"{sp}_acc" in s.values},
            xlabel=labels[0], title=f"{title} ({labels[1]} = {ys[row]:.2g})",
            options=PlotOptions(xlim=options.xlim))
    return figs


def plot_trajectory_file(path: str | os.PathLike, stem: str | os.PathLike, title: str = "") -> list[Path]:
    """Li et al.'s Figure 9 from a PCA-plane surface file: the training trajectory over the train-loss
    contours, the explained variance of each component on its axis."""
    s = read_surface(path)
    if "trajectory" not in s.extra:
        raise ValueError(f"{path}: not a PCA-plane surface (no stored trajectory)")
    z = s["train_loss"]
    levels = shared_levels([z], num=25, log=bool(np.all(z > 0)))
    return plot_trajectory(stem, s.xcoordinates, s.ycoordinates, z, s.extra["trajectory"],
                                 s.extra["explained_variance_ratio_"], levels, title=title,
                                 epochs=[int(e) for e in s.extra["trajectory_epochs"]])
