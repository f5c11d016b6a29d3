"""Figures: one style (:data:`STYLE`), one :func:`new_figure`, one :func:`save` (atomic PNG + PDF), and the
plot functions that draw a figure from stored data, registered under stable names (:func:`register_plot`,
:func:`render`, :func:`rerender`). A claim's figures carry its verdict in a badge (:func:`verdict_badge`, one
colour per verdict in :data:`VERDICT_COLORS`), drawn by :func:`save` for every figure rendered with a verdict.

Figures are drawn with matplotlib's object API on the Agg canvas: no pyplot, no global backend switch, nothing
to close. matplotlib is imported inside :func:`new_figure`, the one function that needs it, so that importing a
module that draws (every claim family, ``api``, ``cli``) does not pay for it (0.3-0.4 s and 171 modules,
matplotlib with PIL, fontTools, kiwisolver...: ``python -X importtime -c "import losslab.claims.ingredients"``
before and after); a job that draws pays once, at its first figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from losslab import io as lio

STYLE = {
    "figure.figsize": (5.0, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "pdf.fonttype": 42,  # editable text in the PDFs
    "svg.hashsalt": "losslab",  # byte-stable output
}
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"
# matplotlib's "tab10" colours (``matplotlib.colormaps["tab10"].colors``), written out so that a plot module
# can name them without importing matplotlib; tests/claims/test_figures.py checks them against matplotlib's
COLORS = ((0.12156862745098039, 0.4666666666666667, 0.7058823529411765),
          (1.0, 0.4980392156862745, 0.054901960784313725),
          (0.17254901960784313, 0.6274509803921569, 0.17254901960784313),
          (0.8392156862745098, 0.15294117647058825, 0.1568627450980392),
          (0.5803921568627451, 0.403921568627451, 0.7411764705882353),
          (0.5490196078431373, 0.33725490196078434, 0.29411764705882354),
          (0.8901960784313725, 0.4666666666666667, 0.7607843137254902),
          (0.4980392156862745, 0.4980392156862745, 0.4980392156862745),
          (0.7372549019607844, 0.7411764705882353, 0.13333333333333333),
          (0.09019607843137255, 0.7450980392156863, 0.8117647058823529))

# verdict -> colour of its badge (and of the decision figure's parts): reproduced green, not reproduced red,
# inconclusive grey, pending (not run at this scale) blue; the badge's text is white on it
# (losslab.claims.summary's HTML landing page shows the same colours)
VERDICT_COLORS = {"reproduced": COLORS[2], "not reproduced": COLORS[3], "inconclusive": COLORS[7],
                  "pending": COLORS[0]}

# Figure.subplots' own keywords; every other keyword of new_figure goes to the Figure (layout, ...)
_SUBPLOTS_KEYS = ("sharex", "sharey", "squeeze", "width_ratios", "height_ratios", "subplot_kw", "gridspec_kw")


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None,
               projection: str | None = None, **kw):
    """``(fig, axes)`` in the project's style on the Agg canvas, as ``pyplot.subplots`` returns them: an
    ``nrows x ncols`` grid of axes (one axes when 1 x 1, unless ``squeeze=False``), ``width`` x ``height``
    inches (default: :data:`STYLE`'s figure size per panel); ``projection="3d"`` for surfaces. Keywords of
    ``Figure.subplots`` (``sharey``, ``squeeze``, ...) go there, the rest (``layout``, ...) to the ``Figure``."""
    # matplotlib costs 0.3-0.4 s and 171 modules at import (python -X importtime): paid here, by the first
    # figure, not by every module that can draw
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(STYLE)
    if projection == "3d":
        import mpl_toolkits.mplot3d  # noqa: F401  (registers the projection)
    w, h = STYLE["figure.figsize"]
    subplots = {k: kw.pop(k) for k in _SUBPLOTS_KEYS if k in kw}
    if projection is not None:
        subplots["subplot_kw"] = {**subplots.get("subplot_kw", {}), "projection": projection}
    fig = Figure(figsize=(width or w * ncols, height or h * nrows), **kw)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplots)


def verdict_badge(fig, verdict: str) -> None:
    """The verdict of the claim a figure shows, as a badge above its top right corner: the verdict in bold white
    on its colour (:data:`VERDICT_COLORS`). It sits above the figure's area, so it covers no title or axes; the
    tight bounding box of :func:`save` takes it in."""
    if verdict not in VERDICT_COLORS:
        raise ValueError(f"verdict {verdict!r} has no badge; known: {sorted(VERDICT_COLORS)}")
    fig.text(1.0, 1.0, f" verdict: {verdict} ", ha="right", va="bottom", fontsize=10, fontweight="bold",
             color="white", bbox={"boxstyle": "round,pad=0.3", "facecolor": VERDICT_COLORS[verdict],
                                  "edgecolor": "none"})


def figure_paths(stem: str | Path) -> list[str]:
    """The files :func:`save` writes for ``stem``: ``stem.png`` and ``stem.pdf``."""
    stem = Path(stem)
    return [str(stem.with_name(f"{stem.name}.{ext}")) for ext in ("png", "pdf")]


# The verdict whose badge save() draws: set by render()/rerender() around the plot function they call (a plot
# function calls save itself, and takes only its data and stem)
_VERDICT: ContextVar[str | None] = ContextVar("losslab_figure_verdict", default=None)


def save(fig, stem: str | Path) -> list[str]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; return the two paths. Inside :func:`render` or
    :func:`rerender` of a figure with a verdict, the figure gets its :func:`verdict_badge` first."""
    verdict = _VERDICT.get()
    if verdict is not None:
        verdict_badge(fig, verdict)
    paths = figure_paths(stem)
    for ext, target in zip(("png", "pdf"), map(Path, paths)):
        with lio.atomic_path(target) as tmp:
            # a fixed creation date keeps the PDF byte-identical across reruns
            meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=meta)
    return paths


# --- figures that can be redrawn from stored results ------------------------------------------------------
# A claim's figure is drawn by a plot function ``plot(data, stem) -> [png, pdf]`` from plain data (numbers,
# lists, strings). ``render`` stores that data beside the figure as ``<stem>.data.json``, under the plot
# function's registered name (and the claim's verdict, when it is given: the badge), and draws it; ``rerender``
# redraws a figure from the stored file alone, so that `snakemake figures` can restyle every figure without
# training or evaluating anything again. A claim job renders its figures before its verdict is known: inside
# ``deferred()`` render only records them, and ``draw_deferred`` draws each once, with the verdict. The stored name
# is a stable one given by ``@register_plot("family.what")``, never a code location, so a plot function can move
# without orphaning the figures drawn before; the registry is filled by importing the modules that define the
# plot functions (losslab.claims.summary imports every family before it redraws).

DATA_SUFFIX = ".data.json"
PlotFunction = Callable[[Mapping[str, Any], Path], list[str]]
PLOTS: dict[str, PlotFunction] = {}

# The names figures stored before plot functions had stable names ("module:function"), and the stable name of
# each: results made then still redraw.
LEGACY = {
    # the flat package (before the four wings, a79a4ef~1)
    "losslab.connectivity:plot_curve_plane": "connectivity.curve_plane",
    "losslab.connectivity:plot_garipov": "connectivity.garipov",
    "losslab.connectivity:plot_gotmare": "connectivity.gotmare",
    "losslab.connectivity:plot_sgdr": "connectivity.sgdr",
    "losslab.connectivity:plot_width": "connectivity.width",
    "losslab.connectivity:plot_scaling": "connectivity.scaling",
    "losslab.connectivity:plot_fge": "connectivity.fge",
    "losslab.ingredients:plot_ablation": "ingredients.ablation",
    "losslab.ingredients:plot_sgd_vs_gd": "ingredients.sgd_vs_gd",
    "losslab.lecture:plot_minima": "lecture.minima",
    "losslab.lecture:plot_swa": "lecture.swa",
    "losslab.lecture:plot_two_arms": "lecture.two_arms",
    "losslab.lecture:plot_memorize": "lecture.memorize",
    "losslab.toys:plot_tanh_surface": "lecture.tanh_surface",
    "losslab.toys:plot_tanh_trajectories": "lecture.tanh_trajectories",
    "losslab.toys:plot_saddles": "lecture.saddles",
    "losslab.toys:plot_redundant_flatness": "lecture.redundant_flatness",
    "losslab.toys:plot_wilson": "lecture.wilson",
    "losslab.pattern_claims:plot_picture": "patterns.picture",
    "losslab.pattern_claims:plot_bn": "patterns.bn",
    "losslab.patterns:draw_pattern_fit": "patterns.fit",
    "losslab.sharpness:plot_generalization_gap": "sharpness.generalization_gap",
    "losslab.sharpness:plot_sharpness_metric": "sharpness.sharpness_metric",
    "losslab.sharpness:plot_parametric": "sharpness.parametric",
    "losslab.sharpness:plot_threshold_and_warmstart": "sharpness.threshold_and_warmstart",
    "losslab.sharpness:plot_remedies": "sharpness.remedies",
    "losslab.spectra:plot_hessian_outliers": "sharpness.hessian_outliers",
    "losslab.spectra:plot_batchsize_outliers": "sharpness.batchsize_outliers",
    "losslab.spectra:plot_wd_flip": "sharpness.wd_flip",
    "losslab.spectra:plot_lb_sb_basin": "sharpness.lb_sb_basin",
    "losslab.spectra:draw_ratio_maps": "sharpness.ratio_maps",
    "losslab.skip_connections:plot_claim": "surfaces.skip_depth",
    "losslab.skip_connections:plot_width": "surfaces.width",
    # the four wings before the registry (a79a4ef)
    "losslab.claims.connectivity.analysis:plot_curve_plane": "connectivity.curve_plane",
    "losslab.claims.connectivity.analysis:plot_garipov": "connectivity.garipov",
    "losslab.claims.connectivity.analysis:plot_gotmare": "connectivity.gotmare",
    "losslab.claims.connectivity.analysis:plot_sgdr": "connectivity.sgdr",
    "losslab.claims.connectivity.analysis:plot_width": "connectivity.width",
    "losslab.claims.connectivity.analysis:plot_scaling": "connectivity.scaling",
    "losslab.claims.connectivity.analysis:plot_fge": "connectivity.fge",
    "losslab.claims.ingredients:plot_ablation": "ingredients.ablation",
    "losslab.claims.ingredients:plot_sgd_vs_gd": "ingredients.sgd_vs_gd",
    "losslab.claims.lecture.trained:plot_minima": "lecture.minima",
    "losslab.claims.lecture.trained:plot_swa": "lecture.swa",
    "losslab.claims.lecture.trained:plot_two_arms": "lecture.two_arms",
    "losslab.claims.lecture.trained:plot_memorize": "lecture.memorize",
    "losslab.claims.lecture.toys:plot_tanh_surface": "lecture.tanh_surface",
    "losslab.claims.lecture.toys:plot_tanh_trajectories": "lecture.tanh_trajectories",
    "losslab.claims.lecture.toys:plot_saddles": "lecture.saddles",
    "losslab.claims.lecture.toys:plot_redundant_flatness": "lecture.redundant_flatness",
    "losslab.claims.lecture.toys:plot_wilson": "lecture.wilson",
    "losslab.claims.patterns:plot_picture": "patterns.picture",
    "losslab.claims.patterns:plot_bn": "patterns.bn",
    "losslab.plots.patterns:draw_pattern_fit": "patterns.fit",
    "losslab.claims.sharpness.keskar:plot_generalization_gap": "sharpness.generalization_gap",
    "losslab.claims.sharpness.keskar:plot_sharpness_metric": "sharpness.sharpness_metric",
    "losslab.claims.sharpness.keskar:plot_parametric": "sharpness.parametric",
    "losslab.claims.sharpness.keskar:plot_threshold_and_warmstart": "sharpness.threshold_and_warmstart",
    "losslab.claims.sharpness.keskar:plot_remedies": "sharpness.remedies",
    "losslab.claims.sharpness.spectra:plot_hessian_outliers": "sharpness.hessian_outliers",
    "losslab.claims.sharpness.spectra:plot_batchsize_outliers": "sharpness.batchsize_outliers",
    "losslab.claims.sharpness.spectra:plot_wd_flip": "sharpness.wd_flip",
    "losslab.claims.sharpness.spectra:plot_lb_sb_basin": "sharpness.lb_sb_basin",
    "losslab.claims.sharpness.spectra:draw_ratio_maps": "sharpness.ratio_maps",
    "losslab.claims.surfaces:plot_claim": "surfaces.skip_depth",
    "losslab.claims.surfaces:plot_width": "surfaces.width",
}


def register_plot(name: str) -> Callable[[PlotFunction], PlotFunction]:
    """Register the decorated plot function ``fn(data, stem) -> [png, pdf]`` under the stable ``name``
    (``"<family>.<figure>"``), the name :func:`render` stores and :func:`rerender` looks up."""
    def register(fn: PlotFunction) -> PlotFunction:
        if PLOTS.get(name, fn) is not fn:
            raise ValueError(f"plot name {name!r} is taken by {PLOTS[name].__module__}.{PLOTS[name].__qualname__}")
        PLOTS[name] = fn
        return fn
    return register


def plot_name(fn: PlotFunction) -> str:
    """The registered name of the plot function ``fn``; a ValueError if it has none."""
    for name, registered in PLOTS.items():
        if registered is fn:
            return name
    raise ValueError(f"plot function {fn.__module__}.{fn.__qualname__} is not registered: decorate it with "
                     "@figures.register_plot(name) so that its figures can be redrawn")


# the figures rendered inside deferred(): (plot function, data, stem), in order
Pending = list[tuple[PlotFunction, Mapping[str, Any], Path]]
_PENDING: ContextVar[Pending | None] = ContextVar("losslab_pending_figures", default=None)


def render(plot: PlotFunction, data: Mapping[str, Any], stem: str | Path, verdict: str | None = None) -> list[str]:
    """Draw ``plot(data, stem)`` and store ``data`` as ``<stem>.data.json`` under the plot function's
    registered name, so that :func:`rerender` can draw it again; with a ``verdict``, the figure carries its badge
    (:func:`verdict_badge`) and the stored file the verdict. The plot function sees the data after a JSON
    round trip (arrays become lists), exactly what a redraw will see, so the first drawing and every redraw are
    the same. Inside :func:`deferred`, the drawing waits for :func:`draw_deferred` and the paths ``plot`` will
    write are returned (:func:`figure_paths`)."""
    name = plot_name(plot)
    if verdict is not None and verdict not in VERDICT_COLORS:
        raise ValueError(f"verdict {verdict!r} has no badge; known: {sorted(VERDICT_COLORS)}")
    stem = Path(stem)
    stored = {"plot": name, "data": data} if verdict is None else {"plot": name, "verdict": verdict, "data": data}
    text = lio.json_text(stored, indent=1, keep_nan=True, str_keys=True)
    pending = _PENDING.get()
    if pending is not None:  # the data as they are now (a caller may change its dict afterwards)
        pending.append((plot, json.loads(text)["data"], stem))
        return figure_paths(stem)
    lio.write_text(stem.with_name(stem.name + DATA_SUFFIX), text)
    return _draw(plot, json.loads(text)["data"], stem, verdict)


def _draw(plot: PlotFunction, data: Mapping[str, Any], stem: Path, verdict: str | None) -> list[str]:
    token = _VERDICT.set(verdict)
    try:
        return plot(data, stem)
    finally:
        _VERDICT.reset(token)


@contextmanager
def deferred() -> Iterator[Pending]:
    """Within the block, :func:`render` records each figure instead of drawing it (and returns the paths it will
    have); the yielded list holds them for :func:`draw_deferred`. A claim job uses it to draw its figures once,
    after its verdict is decided, with the verdict's badge."""
    pending: Pending = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def draw_deferred(pending: Pending, verdict: str | None) -> list[str]:
    """Render every figure :func:`deferred` recorded, with ``verdict``'s badge; return the files written. A plot
    function that writes other files than :func:`figure_paths` of its stem is an error naming it (render
    promised those paths)."""
    written: list[str] = []
    for plot, data, stem in pending:
        paths = render(plot, data, stem, verdict=verdict)
        if sorted(paths) != sorted(figure_paths(stem)):
            raise ValueError(f"plot function {plot_name(plot)!r} wrote {paths}, not {figure_paths(stem)}: a figure "
                             "rendered in figures.deferred() must be saved by one figures.save(fig, stem)")
        written += paths
    pending.clear()
    return written


def rerender(data_file: str | Path, verdict: str | None = None) -> list[str]:
    """Redraw the figure whose data :func:`render` stored in ``data_file`` (``<stem>.data.json``), with the
    badge of the verdict stored there (else of ``verdict``, for a file stored before figures had badges); a
    stored name from before the registry is read through :data:`LEGACY`."""
    data_file = Path(data_file)
    if not data_file.name.endswith(DATA_SUFFIX):
        raise ValueError(f"{data_file}: not a figure data file (*{DATA_SUFFIX})")
    try:
        obj = json.loads(data_file.read_text())
        stored, data = obj["plot"], obj["data"]
        name = LEGACY.get(stored, stored)
        verdict = obj.get("verdict", verdict)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise lio.CorruptFileError(f"{data_file}: not a readable figure data file ({e})") from e
    if name not in PLOTS:  # a stored name is looked up, never imported or evaluated
        raise LookupError(f"{data_file}: no plot function is registered as {stored!r} (registered: "
                          f"{len(PLOTS)}; the module that defines it must be imported first)")
    return _draw(PLOTS[name], data, data_file.with_name(data_file.name[: -len(DATA_SUFFIX)]), verdict)


def rerender_all(root: str | Path, verdicts: Mapping[Path, str] | None = None) -> list[str]:
    """Redraw every figure under ``root`` that has stored data; return the files written. ``verdicts``: folder ->
    the verdict of the claim whose figures it holds, for data files stored without one (:func:`rerender`)."""
    written: list[str] = []
    for f in sorted(Path(root).rglob("*" + DATA_SUFFIX)):
        written += rerender(f, (verdicts or {}).get(f.parent))
    return written


# --- colour scales and the figure audit -------------------------------------------------------------------
# A colour scale maps values to colours; on a linear scale over more than about three decades every value but
# the largest few shares one colour (a loss surface from 1 to 27731 is one flat colour). Such a range is drawn
# on a log scale (:func:`colour_norm`), or clipped with the clip stated, and a colour bar carries at least three
# labelled ticks (:func:`colorbar`). :func:`audit` checks a drawn figure for these defects and two more: a bar
# whose base is cut off by the axis (bars start at zero, or are drawn as dots) and an axis label naming a
# normalisation of the directions that the data did not have.

MAX_DECADES = 3.0  # the widest range a linear colour scale may span (max / min of positive values)
MIN_COLORBAR_LABELS = 3
NORMALISATIONS = ("filter", "layer", "weight")  # the direction normalisations (losslab.core.directions)
_NORM_LABEL = re.compile(r"\b(filter|layer|weight)[- ]normali[sz]ed", re.IGNORECASE)


def decades(values: Any) -> float:
    """``log10(max / min)`` of the finite values when all are positive; 0 when there are none or any is <= 0
    (a range that reaches zero has no decades to count)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() <= 0:
        return 0.0
    return float(np.log10(v.max() / v.min()))


def colour_norm(values: Any, vmin: float | None = None, vmax: float | None = None):
    """The colour scale for ``values`` within ``[vmin, vmax]`` (default: their finite range): a log scale
    (``LogNorm``) when they are all positive and span more than :data:`MAX_DECADES`, else a linear one."""
    from matplotlib.colors import LogNorm, Normalize  # matplotlib is loaded by new_figure already

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo = float(v.min()) if vmin is None and v.size else vmin
    hi = float(v.max()) if vmax is None and v.size else vmax
    inside = v[(v >= (lo if lo is not None else -np.inf)) & (v <= (hi if hi is not None else np.inf))]
    if lo is not None and lo > 0 and decades(inside) > MAX_DECADES:
        return LogNorm(lo, hi)
    return Normalize(lo, hi)


def nice_ticks(lo: float, hi: float, log: bool, num: int = MIN_COLORBAR_LABELS) -> np.ndarray:
    """At least ``num`` round tick values within ``[lo, hi]``: on a log scale the 1-2-5 values of each decade
    (thinned to the decades when there are many; evenly spaced round numbers within a decade), else evenly
    spaced round numbers (``num`` evenly spaced values when none fit)."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if log and lo > 0:
        e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        for mantissas in ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
            ticks = np.array([m * 10.0 ** e for e in range(e0, e1 + 1) for m in mantissas])
            ticks = ticks[(ticks >= lo * (1 - 1e-9)) & (ticks <= hi * (1 + 1e-9))]
            if len(ticks) >= num:
                return ticks
        return nice_ticks(lo, hi, False, num)  # within a decade: round numbers evenly spaced
    for n in range(num + 2, 12):
        step = (hi - lo) / n
        if step <= 0:
            break
        mag = 10.0 ** np.floor(np.log10(step))
        step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= step), default=step)
        ticks = np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)
        if len(ticks) >= num:
            return ticks
    return np.linspace(lo, hi, num)


def colorbar(fig, mappable, ax, label: str, **kw):
    """``fig.colorbar(mappable, ax=ax, label=label, **kw)`` with at least :data:`MIN_COLORBAR_LABELS`
    labelled round ticks (:func:`nice_ticks`) written plainly (``%g``, as many digits as tell them apart), on
    the mappable's log or linear scale: matplotlib's log colour bar over less than a decade labels one tick, or
    none."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    cb = fig.colorbar(mappable, ax=ax, label=label, **kw)
    norm = mappable.norm
    lo, hi = (float(mappable.levels[0]), float(mappable.levels[-1])) if hasattr(mappable, "levels") and \
        len(getattr(mappable, "levels", ())) > 1 else (float(norm.vmin), float(norm.vmax))
    ticks = nice_ticks(lo, hi, isinstance(norm, LogNorm))
    long_axis = cb.ax.yaxis if cb.orientation == "vertical" else cb.ax.xaxis
    long_axis.set_major_locator(FixedLocator(ticks))
    long_axis.set_minor_locator(NullLocator())
    digits = next((d for d in range(3, 10) if len({f"{v:.{d}g}" for v in ticks}) == len(ticks)), 10)
    long_axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.{digits}g}"))
    return cb


def _is_linear(norm) -> bool:
    from matplotlib.colors import Normalize

    return type(norm) is Normalize


def _in_view(locs: np.ndarray, view: tuple[float, float]) -> np.ndarray:
    lo, hi = min(view), max(view)
    span = hi - lo
    return (locs >= lo - 1e-9 * span) & (locs <= hi + 1e-9 * span)


def _colorbar_labels(cb) -> list[str]:
    """The non-empty tick labels along a colour bar's long axis, within its range, as drawn."""
    axis = cb.ax.yaxis if cb.orientation == "vertical" else cb.ax.xaxis
    view = axis.get_view_interval()
    labels = []
    for which in ("major", "minor"):
        locator = axis.get_major_locator() if which == "major" else axis.get_minor_locator()
        formatter = axis.get_major_formatter() if which == "major" else axis.get_minor_formatter()
        locs = np.asarray(locator(), dtype=float)
        locs = locs[_in_view(locs, view)]
        if locs.size:
            labels += [t for t in formatter.format_ticks(list(locs)) if t.strip()]
    return labels


def _panel(ax) -> str:
    return repr(ax.get_title() or ax.get_ylabel() or ax.get_label() or "axes")


def audit(fig, *, norm: str | None = None, max_decades: float = MAX_DECADES) -> list[str]:
    """The defects of a drawn figure, one line each (empty: none found):

    * a colour bar with fewer than :data:`MIN_COLORBAR_LABELS` labelled ticks;
    * a linear colour scale over more than ``max_decades`` decades of positive values (log or clip it), or a
      clipped colour scale (values above its top) whose colour bar, panel or figure title does not say "clip";
    * a bar whose base lies outside its value axis (a truncated bar axis: start bars at zero, or draw dots);
    * an axis label, title or colour-bar label naming a normalisation (``filter-normalized``, ...) other than
      ``norm``, the one the data had (``"none"`` for a plane or an interpolation; ``None``: not checked).

    3-D axes are left out of the colour checks: their colour repeats the height, which the z axis labels."""
    from matplotlib.container import BarContainer

    fig.canvas.draw()  # tick labels and limits are settled when drawn
    problems: list[str] = []
    colorbars = {id(ax._colorbar): ax._colorbar for ax in fig.axes if getattr(ax, "_colorbar", None) is not None}
    # a shared colour bar speaks for every mappable of its colour range (the bar is drawn for one of them)
    cb_labels: dict[tuple[Any, Any], str] = {}
    for cb in colorbars.values():
        key = (cb.mappable.norm.vmin, cb.mappable.norm.vmax)
        cb_labels[key] = cb_labels.get(key, "") + " " + cb.ax.get_ylabel() + " " + cb.ax.get_xlabel()
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    texts = [("figure title", suptitle)]
    for cb in colorbars.values():
        labels = _colorbar_labels(cb)
        if len(labels) < MIN_COLORBAR_LABELS:
            problems.append(f"colour bar {cb.ax.get_ylabel() or cb.ax.get_xlabel()!r}: {len(labels)} labelled "
                            f"tick(s) {labels}, fewer than {MIN_COLORBAR_LABELS}")
    for ax in fig.axes:
        if getattr(ax, "_colorbar", None) is not None:
            cb = ax._colorbar
            texts.append(("colour bar", cb.ax.get_ylabel() if cb.orientation == "vertical" else cb.ax.get_xlabel()))
            continue
        texts += [(f"panel {_panel(ax)}", t) for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(),
                                                      getattr(ax, "get_zlabel", lambda: "")())]
        if ax.name != "3d":
            for m in list(ax.images) + list(ax.collections):
                values = getattr(m, "levels", None)
                if values is None:
                    values = m.get_array() if hasattr(m, "get_array") else None
                if values is None or getattr(m, "norm", None) is None or not _is_linear(m.norm):
                    continue
                v = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan).ravel()
                v = v[np.isfinite(v)]
                if v.size == 0:
                    continue
                lo, hi = m.norm.vmin, m.norm.vmax
                shown = v[(v >= lo) & (v <= hi)] if lo is not None and hi is not None else v
                if decades(shown) > max_decades:
                    problems.append(f"panel {_panel(ax)}: a linear colour scale over {decades(shown):.1f} decades "
                                    f"({shown.min():.3g} to {shown.max():.3g}); use a log scale or clip it")
                stated = " ".join([ax.get_title(), suptitle, cb_labels.get((lo, hi), "")])
                if hi is not None and v.max() > hi * (1 + 1e-9) and "clip" not in stated.lower():
                    problems.append(f"panel {_panel(ax)}: colours clipped at {hi:.3g} below the largest value "
                                    f"{v.max():.3g}, and no title or colour bar says so")
        for c in ax.containers:
            if not isinstance(c, BarContainer):
                continue
            horizontal = getattr(c, "orientation", "vertical") == "horizontal"
            if (ax.get_xscale() if horizontal else ax.get_yscale()) != "linear":
                continue
            view = ax.get_xlim() if horizontal else ax.get_ylim()
            bases = np.array([p.get_x() if horizontal else p.get_y() for p in c.patches], dtype=float)
            cut = ~_in_view(bases, view)
            if cut.any():
                problems.append(f"panel {_panel(ax)}: {int(cut.sum())} bar(s) start at {bases[cut][0]:g}, outside "
                                f"the value axis {tuple(round(float(v), 4) for v in view)}: start bars at zero, "
                                "or draw dots")
    if norm is not None:
        for where, text in texts:
            for named in {m.group(1).lower() for m in _NORM_LABEL.finditer(text or "")}:
                if named != norm:
                    problems.append(f"{where}: label {text!r} names {named}-normalized directions, but the "
                                    f"data had norm {norm!r}")
    return problems
