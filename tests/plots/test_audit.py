"""The figure audit (:func:`losslab.plots.figures.audit`): each check fails on a figure with its defect injected
and passes on the repaired one; then every landscape figure kind, drawn from small synthetic surface files (one
spanning five decades, a plane through three models), passes it."""

import numpy as np
import pytest
from matplotlib.colors import LogNorm, Normalize

from losslab.core.surfaces import Surface, write_surface
from losslab.plots import figures, landscape

X = np.linspace(-1.0, 1.0, 9)
XX, YY = np.meshgrid(X, X, indexing="ij")
FIVE_DECADES = 10.0 ** (5 * (XX ** 2 + YY ** 2) / 2)  # 1 at the centre, 1e5 in the corners


def _mesh(z, norm, **cb):
    fig, ax = figures.new_figure()
    m = ax.pcolormesh(XX, YY, z, shading="nearest", norm=norm)
    return fig, ax, m


# ---------------------------------------------------------------- each check, on an injected defect ------------

def test_a_colour_bar_with_one_labelled_tick_is_a_defect():
    fig, ax, m = _mesh(1.2 + 0.1 * XX, Normalize())
    fig.colorbar(m, ax=ax, label="loss", ticks=[1.25])
    (problem,) = figures.audit(fig)
    assert "colour bar 'loss': 1 labelled tick(s)" in problem
    fig, ax, m = _mesh(1.2 + 0.1 * XX, Normalize())
    figures.colorbar(fig, m, ax, "loss")
    assert figures.audit(fig) == []


def test_a_log_colour_bar_within_a_decade_gets_three_labels():
    """matplotlib's own log colour bar over 1.2..1.4 labels a tick or none (the published li-skip-depth-chaos
    figure: one label, "1.22651 x 10^0"); figures.colorbar labels round values."""
    fig, ax, m = _mesh(1.2 + 0.1 * (XX + 1), LogNorm(1.2, 1.4))
    cb = figures.colorbar(fig, m, ax, "loss")
    fig.canvas.draw()
    assert [t.get_text() for t in cb.ax.get_yticklabels()] == ["1.2", "1.25", "1.3", "1.35", "1.4"]
    assert figures.audit(fig) == []


def test_a_linear_colour_scale_over_five_decades_is_a_defect():
    fig, ax, m = _mesh(FIVE_DECADES, Normalize())
    figures.colorbar(fig, m, ax, "loss")
    (problem,) = figures.audit(fig)
    assert "a linear colour scale over 5.0 decades (1 to 1e+05)" in problem
    fig, ax, m = _mesh(FIVE_DECADES, LogNorm())
    figures.colorbar(fig, m, ax, "loss")
    assert figures.audit(fig) == []


def test_a_clipped_colour_scale_must_say_so():
    fig, ax, m = _mesh(FIVE_DECADES, Normalize(1.0, 10.0))
    figures.colorbar(fig, m, ax, "loss")
    (problem,) = figures.audit(fig)
    assert "colours clipped at 10 below the largest value 1e+05, and no title or colour bar says so" in problem
    fig, ax, m = _mesh(FIVE_DECADES, Normalize(1.0, 10.0))
    figures.colorbar(fig, m, ax, "loss (clipped at 10)")
    assert figures.audit(fig) == []


def test_a_truncated_bar_axis_is_a_defect():
    fig, ax = figures.new_figure()
    ax.bar([0, 1], [61.0, 68.0])
    ax.set_ylim(60, 70)
    (problem,) = figures.audit(fig)
    assert "2 bar(s) start at 0, outside the value axis (60.0, 70.0): start bars at zero, or draw dots" in problem
    ax.set_ylim(0, 70)
    assert figures.audit(fig) == []
    fig, ax = figures.new_figure()  # dots may sit on a truncated axis
    ax.plot([0, 1], [61.0, 68.0], "o")
    ax.set_ylim(60, 70)
    assert figures.audit(fig) == []


@pytest.mark.parametrize("norm, label, bad", [
    ("none", r"$\alpha$ (filter-normalized)", True),
    ("layer", r"$\alpha$ (filter-normalized)", True),
    ("filter", r"$\alpha$ (filter-normalized)", False),
    ("none", "plane coordinate u", False),
    (None, r"$\alpha$ (filter-normalized)", False),  # not checked
])
def test_an_axis_label_naming_a_normalisation_the_data_lacked_is_a_defect(norm, label, bad):
    fig, ax = figures.new_figure()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel(label)
    problems = figures.audit(fig, norm=norm)
    assert problems == ([f"panel 'axes': label {label!r} names filter-normalized directions, but the data had "
                         f"norm {norm!r}"] if bad else [])


@pytest.mark.parametrize("lo, hi, log, ticks", [
    (1.2, 1.4, True, [1.2, 1.25, 1.3, 1.35, 1.4]),  # within a decade: round numbers evenly spaced
    (0.02, 800, True, [0.1, 1, 10, 100]),
    (1, 27731, True, [1, 10, 100, 1000, 10000]),
    (0.3, 4.0, True, [0.5, 1, 2]),
    (0.0, 1.0, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
])
def test_nice_ticks(lo, hi, log, ticks):
    np.testing.assert_allclose(figures.nice_ticks(lo, hi, log), ticks, rtol=2e-3)


def test_colour_norm_goes_log_past_three_decades():
    assert type(figures.colour_norm([1.0, 999.0])) is Normalize
    assert isinstance(figures.colour_norm([1.0, 1001.0]), LogNorm)
    assert type(figures.colour_norm([0.0, 1e6])) is Normalize  # a range that reaches zero has no decades
    assert type(figures.colour_norm(FIVE_DECADES, vmax=10.0)) is Normalize  # clipped to one decade


# ---------------------------------------------------------------- the landscape figures ------------------------

def _surface_file(path, z, attrs, extra=None):
    values = {"train_loss": z, "test_loss": 1.1 * z, "train_acc": 1 / (1 + z), "test_acc": 0.9 / (1 + z)}
    spec = {"tile_rows": len(X), "values": list(values)}
    write_surface(path, Surface(X, X, values, np.ones(1, bool), spec, attrs, extra or {}))
    return path


@pytest.mark.parametrize("z", [1.0 + XX ** 2 + YY ** 2, FIVE_DECADES, 0.05 + 0.01 * (XX ** 2 + YY ** 2)],
                         ids=["one decade", "five decades", "within a decade"])
@pytest.mark.parametrize("norm", ["filter", "layer", "none"])
def test_every_figure_of_a_surface_file_passes_the_audit(tmp_path, z, norm):
    path = _surface_file(tmp_path / "s.h5", z, {"direction": "random", "norm": norm})
    figs = landscape.surface_figures(path, "test")
    assert set(figs) == {"contour", "filled", "surface3d", "line1d"}
    assert {name: figures.audit(fig, norm=norm) for name, fig in figs.items()} == {name: [] for name in figs}


def test_the_filled_contours_of_five_decades_are_coloured_on_a_log_scale(tmp_path):
    """The published d38_noskip filled contour spanned 1-27731 on one linear colour scale: one colour."""
    fig = landscape.surface_figures(_surface_file(tmp_path / "s.h5", FIVE_DECADES, {"norm": "filter"}))["filled"]
    (m,) = [c for c in fig.axes[0].collections if c.get_array() is not None]
    assert isinstance(m.norm, LogNorm) and m.norm.vmin == pytest.approx(1.0) and m.norm.vmax == pytest.approx(1e5)


def test_a_clipped_colour_range_is_stated_on_the_colour_bar(tmp_path):
    path = _surface_file(tmp_path / "s.h5", FIVE_DECADES, {"norm": "filter"})
    fig = landscape.surface_figures(path, options=landscape.PlotOptions(vmax=10.0))["filled"]
    assert fig.axes[1].get_ylabel() == "train loss (colours clipped to [1, 10])"
    assert figures.audit(fig, norm="filter") == []


def test_the_plane_through_three_models_names_its_axes_and_marks_the_models(tmp_path):
    """A plane (api.plane; `losslab surface` with three checkpoints) has norm none: its axes are the plane's
    coordinates, the three models are marked, and there is no 1-D slice."""
    points = np.array([[0.0, 0.0], [0.8, 0.0], [0.3, 0.7]])
    path = _surface_file(tmp_path / "plane.h5", 1.0 + XX ** 2 + YY ** 2, {"direction": "plane", "norm": "none"},
                         {"point_coordinates": points})
    figs = landscape.surface_figures(path, "plane")
    assert set(figs) == {"contour", "filled", "surface3d"}
    for name in ("contour", "filled"):
        ax = figs[name].axes[0]
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("plane coordinate u", "plane coordinate v")
        marks = [t for t in ax.texts if t.get_text().startswith("model")]  # beside the contour labels
        assert [(t.get_text(), t.xy) for t in marks] == [("model 1", (0.0, 0.0)), ("model 2", (0.8, 0.0)),
                                                         ("model 3", (0.3, 0.7))]
    assert {name: figures.audit(fig, norm="none") for name, fig in figs.items()} == {name: [] for name in figs}


def test_a_trajectory_over_five_decades_passes_the_audit(tmp_path):
    levels = landscape.shared_levels([FIVE_DECADES], num=25, log=True)
    saved = {}
    original = landscape._saved
    landscape._saved = lambda fig, stem: saved.setdefault("fig", fig) and original(fig, stem)
    try:
        landscape.plot_trajectory(tmp_path / "t", X, X, FIVE_DECADES, np.c_[X, X], (0.6, 0.3), levels)
    finally:
        landscape._saved = original
    assert figures.audit(saved["fig"]) == []


def test_a_heatmap_without_levels_passes_the_audit():
    fig = landscape.heatmap_figure(X, X, FIVE_DECADES, None, cbar_label="ratio")
    assert figures.audit(fig) == []


# ---------------------------------------------------------------- claim figures the user found defective --------
# (each drawn from data shaped as the published desk figures' data; each failed the audit before its fix)

def _audited(plot, data, tmp_path):
    found = []
    save = figures.save

    def audited(fig, stem):
        found.extend(figures.audit(fig))
        return save(fig, stem)

    figures.save = audited
    try:
        plot(data, tmp_path / "figure")
    finally:
        figures.save = save
    return found


def test_li_skip_depth_chaos_has_a_labelled_shared_colour_bar(tmp_path):
    """Published: one shared log colour bar labelled at a single odd value ("1.31168 x 10^2")."""
    from losslab.claims import surfaces

    panels = [{"depth": d, "skip": s, "nonconvex": 0.1, "z": (0.02 * np.exp(3.7 * (XX ** 2 + YY ** 2))).tolist()}
              for d in (8, 20) for s in (True, False)]
    data = {"depths": [8, 20], "xs": X.tolist(), "ys": X.tolist(), "panels": panels, "scale": "test"}
    assert _audited(surfaces.plot_claim, data, tmp_path) == []


def test_keskar_generalization_gap_bars_start_at_zero(tmp_path):
    from losslab.claims.sharpness import keskar

    acc = {"train_acc": [[0.99, 0.988, 0.991], [0.962, 0.958, 0.965]],
           "test_acc": [[0.68, 0.67, 0.69], [0.62, 0.61, 0.63]]}
    data = {"panels": [{"title": "keskar (F1 analogue)", "acc": acc}], "scale": "test"}
    assert _audited(keskar.plot_generalization_gap, data, tmp_path) == []


def test_fge_errors_are_dots_on_their_truncated_axis(tmp_path):
    from losslab.claims.connectivity import analysis

    data = {"seeds": [0, 1], "single_err": [0.082, 0.076], "fge_err": [0.080, 0.074], "curve_err": 0.074,
            "independent": {"size": 2, "err": 0.062, "disagreement": 0.07}, "fge_disagreement": [0.019, 0.015],
            "scale": "test"}
    assert _audited(analysis.plot_fge, data, tmp_path) == []


@pytest.mark.parametrize("attrs, pca, labels", [
    ({"direction": "random", "norm": "filter"}, False,
     (r"$\alpha$ (filter-normalized)", r"$\beta$ (filter-normalized)")),
    ({"direction": "random", "norm": "layer"}, False, (r"$\alpha$ (layer-normalized)", r"$\beta$ (layer-normalized)")),
    ({"direction": "given", "norm": "none"}, False, (r"$\alpha$", r"$\beta$")),
    ({}, False, (r"$\alpha$", r"$\beta$")),  # a file of Li et al.'s code: the normalisation is not recorded
    ({"direction": "plane", "norm": "none"}, False, ("plane coordinate u", "plane coordinate v")),
    ({"direction": "random", "norm": "none"}, True, ("1st PC", "2nd PC")),
])
def test_axis_labels_name_the_normalisation_the_file_records(attrs, pca, labels):
    assert landscape.axis_labels(attrs, pca) == labels
