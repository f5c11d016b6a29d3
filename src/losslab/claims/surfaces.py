"""Li et al. (2018): skip connections keep deep loss landscapes smooth; without them, deeper nets get chaotic
landscapes and worse test error.

How chaotic a surface is: :func:`nonconvex_fraction`, the fraction of interior grid points of a 2-D surface
where the surface's own Hessian in the plotted plane (central finite differences on the grid) has a negative
eigenvalue. A convex bowl scores 0; Li et al.'s "chaotic" surfaces, full of ridges and local minima, score
high. :func:`local_minima` counts the grid's strict local minima (a secondary number).
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from losslab.plots import figures
from losslab.claims.sharpness import spectra
from losslab.claims.verdicts import ClaimResult, all_of, paired, seed_mean
from losslab.plots.landscape import draw_contour, shared_levels
from losslab.claims.tables import mean_std, pm, write_table
import os
from torch import nn
from losslab import io as lio
from losslab.core.directions import Directions, pca_directions, project, random_directions, save_directions
from losslab.core.weights import flatten
from losslab.core.surfaces import Surface, evaluators_for, grid_around, surface_2d
from losslab.core.surfaces import grid
from losslab.claims.runs import MODEL, model_file, read_runs, seed_dir, seed_dirs, snapshots
from losslab.claims.training import load_trained
from losslab.claims.settings import Settings
from losslab.claims.claim_job import ClaimJob
from losslab.core.surfaces import merge_surfaces, read_surface
from losslab.io import load_torch
from losslab.claims.sharpness.spectra import ratio_map_of_run

# Li et al. 2018 (source 003), CIFAR-10 test error (%) with / without skip connections
REPORTED_ERR = {20: (7.37, 8.18), 56: (5.89, 13.31), 110: (5.79, 16.44)}


def plane_hessians(z: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Eigenvalues (ascending, shape (nx-2, ny-2, 2)) of the 2x2 finite-difference Hessian of ``z[i, j]`` =
    f(xs[i], ys[j]) at every interior grid point (uniform spacing assumed)."""
    z = np.asarray(z, float)
    hx, hy = float(xs[1] - xs[0]), float(ys[1] - ys[0])
    fxx = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / hx ** 2
    fyy = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / hy ** 2
    fxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * hx * hy)
    h = np.stack([np.stack([fxx, fxy], -1), np.stack([fxy, fyy], -1)], -2)
    return np.linalg.eigvalsh(h)


def nonconvex_fraction(z: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> float:
    """Fraction of interior grid points where the plane Hessian has a negative eigenvalue."""
    eig = plane_hessians(z, xs, ys)
    return float((eig[..., 0] < 0).mean())


def local_minima(z: np.ndarray) -> int:
    """Interior grid points strictly lower than all eight neighbours."""
    z = np.asarray(z, float)
    c = z[1:-1, 1:-1]
    lower = np.ones_like(c, dtype=bool)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                lower &= c < z[1 + di:z.shape[0] - 1 + di, 1 + dj:z.shape[1] - 1 + dj]
    return int(lower.sum())


def _variant_key(runs: Sequence[Mapping[str, Any]]) -> tuple[int, bool]:
    model = runs[0]["run"]["model"]
    return int(model["depth"]), bool(model.get("skip", True))


def skip_depth_claim(runs: Mapping[str, Sequence[Mapping[str, Any]]], surfaces: Mapping[str, Any],
          check: Mapping[str, Any], scale: str, out_dir: str | Path,
          claim_id: str = "li-skip-depth-chaos") -> ClaimResult:
    """``runs``: variant -> per-seed metrics; ``surfaces``: variant -> :class:`losslab.core.surfaces.Surface` (one
    seed's). Variants are told apart by their model's depth and skip switch."""
    out_dir = Path(out_dir)
    by_key = {_variant_key(r): v for v, r in runs.items()}
    depths = sorted({d for d, _ in by_key})
    if len(depths) < 2 or any((d, s) not in by_key for d in depths for s in (True, False)):
        raise ValueError(f"need every depth with and without skips; have {sorted(by_key)}")
    err = {k: [math.nan if r.get("diverged") else 1 - r["test_acc"] for r in runs[v]] for k, v in by_key.items()}
    z = {k: np.asarray(surfaces[v]["train_loss"]) for k, v in by_key.items()}
    xs = np.asarray(surfaces[by_key[(depths[0], True)]]["xcoordinates"])
    ys = np.asarray(surfaces[by_key[(depths[0], True)]]["ycoordinates"])
    chaos = {k: nonconvex_fraction(z[k], xs, ys) for k in by_key}
    minima = {k: local_minima(z[k]) for k in by_key}

    shallow, deep = depths[0], depths[-1]
    gap = {d: [a - b for a, b in zip(err[(d, False)], err[(d, True)])] for d in depths}
    comps = [
        paired(f"no-skip minus skip test error grows from depth {shallow} to {deep}", gap[deep], gap[shallow],
               check["min_agree"]),
        paired(f"non-convex fraction at depth {deep}: no-skip > skip", [chaos[(deep, False)]],
               [chaos[(deep, True)]], 1),
    ]
    paper_depths = sorted(REPORTED_ERR)
    rows, numbers = [], {}
    for rank, d in enumerate(depths):
        pd = paper_depths[min(rank, len(paper_depths) - 1)] if len(depths) <= 3 else None
        for skip in (True, False):
            k = (d, skip)
            tag = f"d{d}.{'skip' if skip else 'noskip'}"
            numbers[f"{tag}.test_err_mean"] = seed_mean(err[k])
            numbers[f"{tag}.nonconvex_fraction"] = chaos[k]
            numbers[f"{tag}.local_minima"] = float(minima[k])
            numbers[f"{tag}.center_train_loss"] = float(z[k][len(xs) // 2, len(ys) // 2])
            rows.append({
                "depth": d, "skip": skip, "test_err_%": pm(err[k], 100),
                "reported_err_% (paper depth)": (f"{REPORTED_ERR[pd][0 if skip else 1]} (ResNet-{pd})"
                                                 if pd else ""),
                "nonconvex_fraction": round(chaos[k], 4), "local_minima": minima[k],
                "diverged": sum(bool(r.get("diverged")) for r in runs[by_key[k]]),
                "seeds": len(err[k]),
            })
    tables = write_table(rows, out_dir / "table", title=f"Skip connections and depth ({scale} scale)")

    data = {"scale": scale, "depths": depths, "xs": xs, "ys": ys,
            "panels": [{"depth": d, "skip": skip, "z": z[(d, skip)], "nonconvex": chaos[(d, skip)]}
                       for d in depths for skip in (True, False)]}
    figs = figures.render(plot_claim, data, out_dir / "figure")

    verdict = all_of(c.verdict for c in comps)
    measured = "; ".join(
        f"d{d}: err {100 * mean_std(err[(d, True)])[0]:.1f}/{100 * mean_std(err[(d, False)])[0]:.1f}% "
        f"non-convex {chaos[(d, True)]:.2f}/{chaos[(d, False)]:.2f}" for d in depths) + " (skip/no-skip)"
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=len(err[(deep, True)]), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes="; ".join(c.describe() for c in comps))


# --------------------------------------------------------------------------------------------------------------
# Li et al. (2018), Sec. 6 / Table 1 (Wide-ResNet-56 on CIFAR-10): wider networks have lower test error and
# smoother, more convex surfaces (|lambda_min/lambda_max| near 0 over the plane); p.11: 40-90% of the training
# trajectory's variance lies in its top two PCA directions.

# CIFAR-10 test error (%) with / without skip connections, width multiplier k
REPORTED_WIDTH_ERR = {1: (5.89, 13.31), 2: (5.07, 10.26), 4: (4.34, 9.69), 8: (3.93, 8.70)}
PCA_THRESHOLD = 0.40  # the low end of Li et al.'s "40-90%" of trajectory variance in two PCA directions


@figures.register_plot("surfaces.skip_depth")
def plot_claim(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """The train-loss surface around each minimizer, a column per depth, with (top) and without (bottom) skip
    connections, on contour levels shared by every panel, each titled with its non-convex fraction."""
    depths, xs, ys = data["depths"], np.asarray(data["xs"], dtype=float), np.asarray(data["ys"], dtype=float)
    panels = {(p["depth"], bool(p["skip"])): p for p in data["panels"]}
    z = {k: np.asarray(p["z"], dtype=float) for k, p in panels.items()}
    levels = shared_levels(list(z.values()), num=25, log=True)
    fig, axes = figures.new_figure(ncols=len(depths), nrows=2, width=3.3 * len(depths) + 1, height=7.0,
                                   squeeze=False, layout="constrained")
    for col, d in enumerate(depths):
        for row, skip in enumerate((True, False)):
            ax = axes[row][col]
            cs = draw_contour(ax, xs, ys, z[(d, skip)], levels, inline_labels=False, cmap=figures.SEQUENTIAL_CMAP,
                              log=True)
            ax.set_title(f"depth {d}, {'skip' if skip else 'no skip'}\n"
                         f"non-convex fraction {panels[(d, skip)]['nonconvex']:.2f}", fontsize=8)
            if row == 1:
                ax.set_xlabel(r"$\alpha$ (filter-normalized)")
            if col == 0:
                ax.set_ylabel(r"$\beta$ (filter-normalized)")
            ax.set_aspect("equal")
    fig.colorbar(cs, ax=axes, label="train loss (shared log-spaced levels)", shrink=0.8)
    fig.suptitle(f"train loss around the minimizer ({data['scale']})")
    return figures.save(fig, stem)


def _width_key(runs: Sequence[Mapping[str, Any]]) -> tuple[int, bool]:
    model = runs[0]["run"]["model"]
    return int(model["width"]), bool(model.get("skip", True))


def trajectory_variance(run: Mapping[str, Any], seed_dir: str | Path) -> tuple[float, float]:
    """Explained variance ratios of the top two PCA directions of a run's training trajectory (its epoch
    snapshots minus the final weights, biases and BN parameters ignored: Li et al.'s ``setup_PCA_directions``,
    :func:`losslab.core.directions.pca_directions`)."""
    seed_dir = Path(seed_dir)
    model, _ = load_trained(run, seed_dir / MODEL)
    final = flatten(model)
    traj = []
    for _, path in snapshots(seed_dir):
        model.load_state_dict(load_torch(path))
        traj.append(flatten(model))
    ratio = pca_directions(traj, final=final, model=model).explained_variance_ratio
    return float(ratio[0]), float(ratio[1])


def width_analysis(specs: Mapping[str, Mapping[str, Any]], run_dirs: Mapping[str, str | Path],
                   settings: Mapping[str, Any], out_dir: str | Path, *, progress: bool = False
                   ) -> tuple[dict[str, list[Any]], dict[str, list[tuple[float, float]]]]:
    """The measurements of :func:`width_nonconvexity` from trained runs (``specs``: variant -> run spec,
    ``run_dirs``: variant -> runs/<experiment>/<variant>), written under ``out_dir``:

    * for the variants and seeds of ``settings["ratio_map"]``: the seeded random plane of ``settings["plane"]``
      (:func:`losslab.claims.surfaces.save_run_directions`) and Li et al.'s |lambda_min/lambda_max| map on it
      (:func:`losslab.claims.sharpness.spectra.ratio_map_of_run`), ``<variant>/seed<k>/{directions,ratio_map}.h5``;
    * for every variant and seed: the top-2 PCA explained variance of its trajectory.

    Returns ``(ratio_maps, explained)``: variant -> ratio-map surfaces in seed order, variant -> one
    ``(pc1, pc2)`` per seed in seed order."""
    out_dir = Path(out_dir)
    rm = settings["ratio_map"]
    unknown = [v for v in rm["variants"] if v not in specs]
    if unknown:
        raise ValueError(f"width_analysis.ratio_map.variants: {unknown} are not variants of the experiment "
                         f"({sorted(specs)})")
    ratio_maps: dict[str, list[Any]] = {}
    for v in rm["variants"]:
        for seed in rm["seeds"]:
            model_path = model_file(run_dirs[v], seed)
            where = seed_dir(out_dir / v, seed)
            model, _ = load_trained(specs[v], model_path)
            save_run_directions(model, settings.get("plane", {}), where / "directions.h5")
            ratio_settings = {k: x for k, x in rm.items() if k not in ("variants", "seeds")}
            ratio_maps.setdefault(v, []).append(
                ratio_map_of_run(specs[v], model_path, where / "directions.h5", ratio_settings,
                                 where / "ratio_map.h5", progress=progress))
    explained = {}
    for v, spec in specs.items():
        explained[v] = [trajectory_variance(spec, d) for d in seed_dirs(run_dirs[v])]
    return ratio_maps, explained


def width_nonconvexity(runs: Mapping[str, Sequence[Mapping[str, Any]]], ratio_maps: Mapping[str, Sequence[Any]],
                       explained: Mapping[str, Sequence[Sequence[float]]], check: Mapping[str, Any], scale: str,
                       out_dir: str | Path, claim_id: str = "li-width-nonconvexity") -> ClaimResult:
    """Li et al.'s width claim. ``runs``: variant -> per-seed metrics (variants told apart by their model's
    ``width`` and ``skip``; at least two widths, each with and without skips); ``ratio_maps``: variant ->
    |lambda_min/lambda_max| maps (mappings with ``ratio``, ``xcoordinates``, ``ycoordinates``) in seed order,
    for at least the narrowest and widest no-skip variants; ``explained``: variant -> ``(pc1, pc2)`` explained
    variance ratios of each seed's trajectory (every variant).

    Checks (the registry's rule): (1) test error of the narrowest minus the widest net > 0, paired over seeds
    (``min_agree``), with and without skips; (2) the mean ratio over the map of the narrowest no-skip net minus
    that of the widest > 0, paired over the maps' seeds (all of them); (3) for every variant, the top-2
    explained variance exceeds ``pca_threshold`` (0.40), paired over seeds (``min_agree``)."""
    out_dir = Path(out_dir)
    by_key = {_width_key(r): v for v, r in runs.items()}
    widths = sorted({w for w, _ in by_key})
    if len(widths) < 2 or any((w, s) not in by_key for w in widths for s in (True, False)):
        raise ValueError(f"need at least two widths, each with and without skips; have {sorted(by_key)}")
    narrow, wide = widths[0], widths[-1]
    for w in (narrow, wide):
        if by_key[(w, False)] not in ratio_maps:
            raise ValueError(f"need the ratio map of the no-skip variant {by_key[(w, False)]!r} (width {w}); "
                             f"have {sorted(ratio_maps)}")
    missing = [v for v in runs if v not in explained]
    if missing:
        raise ValueError(f"need the trajectory PCA of every variant; missing {missing}")
    threshold = float(check.get("pca_threshold", PCA_THRESHOLD))
    err = {k: [math.nan if r.get("diverged") else 1 - r["test_acc"] for r in runs[v]] for k, v in by_key.items()}
    ratio_mean = {k: [float(np.nanmean(np.asarray(m["ratio"], float))) for m in ratio_maps[v]]
                  for k, v in by_key.items() if v in ratio_maps}
    top2 = {k: [float(a) + float(b) for a, b in explained[v]] for k, v in by_key.items()}
    uncertified = {k: sum(int(np.sum(np.asarray(m["certified"], float) < 1)) for m in ratio_maps[v]
                          if m.get("certified") is not None)
                   for k, v in by_key.items() if v in ratio_maps}

    comps = [paired(f"test error, {'skip' if s else 'no skip'}: width {narrow} > width {wide}",
                    err[(narrow, s)], err[(wide, s)], check["min_agree"]) for s in (True, False)]
    comps.append(paired(f"mean |lambda_min/lambda_max| over the ratio map, no skip: width {narrow} > width {wide}",
                        ratio_mean[(narrow, False)], ratio_mean[(wide, False)], 1.0))
    comps += [paired(f"top-2 PCA explained variance of the trajectory > {threshold:g}: width {w}, "
                     f"{'skip' if s else 'no skip'}", top2[(w, s)], [threshold] * len(top2[(w, s)]),
                     check["min_agree"]) for w in widths for s in (True, False)]

    rows, numbers = [], {}
    for w in widths:
        k_mult = w // narrow if w % narrow == 0 else None
        for skip in (True, False):
            k = (w, skip)
            tag = f"w{w}.{'skip' if skip else 'noskip'}"
            numbers[f"{tag}.test_err_mean"] = seed_mean(err[k])
            numbers[f"{tag}.pca_top2_mean"] = seed_mean(top2[k])
            if k in ratio_mean:
                numbers[f"{tag}.ratio_mean"] = seed_mean(ratio_mean[k])
            rep = REPORTED_WIDTH_ERR.get(k_mult) if k_mult else None
            rows.append({
                "width": w, "skip": skip, "test_err_%": pm(err[k], 100),
                "reported_err_% (WRN-56, k)": f"{rep[0 if skip else 1]} (k={k_mult})" if rep else "",
                "ratio_map_mean": pm(ratio_mean[k], 1, 4) if k in ratio_mean else "",
                "ratio_cells_not_certified": uncertified[k] if k in uncertified else "",
                "pca_top2_%": pm(top2[k], 100), "reported_pca_top2_%": "40-90",
                "diverged": sum(bool(r.get("diverged")) for r in runs[by_key[k]]), "seeds": len(err[k]),
            })
    tables = write_table(rows, out_dir / "table", title=f"Width, skip connections and convexity ({scale} scale)")

    first_maps = {by_key[k]: ratio_maps[by_key[k]][0] for k in sorted(ratio_mean, key=lambda k: (not k[1], k[0]))}
    data = {
        "scale": scale, "widths": widths, "threshold": threshold,
        "err": {("skip" if s else "noskip"): [err[(w, s)] for w in widths] for s in (True, False)},
        "top2": {("skip" if s else "noskip"): [top2[(w, s)] for w in widths] for s in (True, False)},
        "ratio_mean": {("skip" if s else "noskip"): [[w, ratio_mean[(w, s)]] for w in widths if (w, s) in ratio_mean]
                       for s in (True, False)},
        "maps": [spectra.ratio_map_data(v, m) for v, m in first_maps.items()],
    }
    figs = figures.render(plot_width_nonconvexity, data, out_dir / "figure")

    verdict = all_of(c.verdict for c in comps)
    measured = "; ".join(
        f"w{w}: err {100 * mean_std(err[(w, True)])[0]:.1f}/{100 * mean_std(err[(w, False)])[0]:.1f}%"
        + (f" ratio {mean_std(ratio_mean[(w, False)])[0]:.3f}" if (w, False) in ratio_mean else "")
        + f" PCA top-2 {100 * min(mean_std(top2[(w, True)])[0], mean_std(top2[(w, False)])[0]):.0f}%+"
        for w in widths) + " (err skip/no-skip, ratio no-skip, PCA min of both)"
    n_bad = sum(uncertified.values())
    notes = "; ".join(c.describe() for c in comps)
    if n_bad:
        notes += f"; {n_bad} ratio-map cell(s) not certified (their eigenvalues are kept but uncertain)"
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=len(err[(wide, True)]), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes=notes)


def _finite_mean(values: Any) -> float:
    v = np.asarray(values, float)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else math.nan


@figures.register_plot("surfaces.width")
def plot_width_nonconvexity(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Top row: test error, mean |lambda_min/lambda_max| over the ratio map, and the trajectory's top-2 PCA
    explained variance against width (with / without skips; lines: means, dots: seeds). Bottom row: the
    ratio maps on one colour scale."""
    widths = np.asarray(data["widths"], float)
    maps = data["maps"]
    ncols = max(3, len(maps))
    fig, axes = figures.new_figure(ncols=ncols, nrows=2, width=3.3 * ncols + 0.8, height=6.8, squeeze=False,
                                   layout="constrained")
    styles = {"skip": (figures.COLORS[0], "skip"), "noskip": (figures.COLORS[1], "no skip")}
    for ax, key, scale_by, ylabel in ((axes[0][0], "err", 100, "test error (%)"),
                                      (axes[0][2], "top2", 100, "top-2 PCA explained variance (%)")):
        for fam, (color, label) in styles.items():
            vals = [np.asarray(v, float) * scale_by for v in data[key][fam]]
            ax.plot(widths, [_finite_mean(v) for v in vals], "-o", color=color, label=label)
            for w, v in zip(widths, vals):
                ax.plot(np.full(len(v), w), v, ".", color=color, alpha=0.5, ms=4)
        ax.set_ylabel(ylabel)
    axes[0][2].axhline(100 * float(data["threshold"]), color="k", lw=0.8, ls="--",
                       label=f"pass threshold ({100 * float(data['threshold']):.0f}%)")
    axes[0][0].set_title(f"test error ({data['scale']})")
    axes[0][2].set_title("trajectory PCA")
    ax = axes[0][1]
    for fam, (color, label) in styles.items():
        pts = data["ratio_mean"][fam]
        if pts:
            ws = [p[0] for p in pts]
            vals = [np.asarray(p[1], float) for p in pts]
            ax.plot(ws, [_finite_mean(v) for v in vals], "-o", color=color, label=label)
    ax.set_ylabel(r"mean $|\lambda_{min}/\lambda_{max}|$ over the map")
    ax.set_title("non-convexity (ratio map)")
    for ax in axes[0][:3]:
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths, [f"{w:g}" for w in widths])
        ax.set_xlabel("width (channels of the first stage)")
        ax.legend(loc="best", fontsize=7)
    for ax in axes[0][3:]:
        ax.axis("off")
    ratios = [np.asarray(m["ratio"], float) for m in maps]
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios]) if ratios else np.zeros(0)
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    mesh = None
    for ax, m, r in zip(axes[1], maps, ratios):
        mesh = ax.pcolormesh(np.asarray(m["x"], float), np.asarray(m["y"], float), r.T, shading="nearest",
                             cmap=figures.SEQUENTIAL_CMAP, vmin=0.0, vmax=vmax)
        ax.plot(0, 0, "k+", ms=8)
        ax.grid(False)
        bad = spectra.mark_uncertified(ax, m)
        ax.set_title(f"{m['label']}: mean {np.nanmean(r):.3f}" + (f", {bad} not certified (x)" if bad else ""),
                     fontsize=8)
        ax.set_xlabel(r"$\alpha$ (filter-normalized)")
        ax.set_ylabel(r"$\beta$ (filter-normalized)")
        ax.set_aspect("equal")
    for ax in axes[1][len(maps):]:
        ax.axis("off")
    if mesh is not None:
        fig.colorbar(mesh, ax=axes[1].tolist(), label=r"$|\lambda_{min}/\lambda_{max}|$ (shared scale)", shrink=0.85)
    return figures.save(fig, stem)


@dataclass(frozen=True)
class SurfaceSettings(Settings):
    """An experiment's ``surface`` block: Li et al.'s 2-D surface around a trained run."""

    x: Sequence[float] = (-1.0, 1.0, 21)  # [start, stop, num] in units of the (filter-normalized) directions
    y: Sequence[float] = (-1.0, 1.0, 21)
    direction_seed: int = 0
    norm: str = "filter"  # filter / layer / weight / none (losslab.core.directions)
    ignore: str = "biasbn"  # biasbn / copy / keep
    bn: str = "running"  # running / recompute / batch (losslab.core.weights)
    n_train: int | None = None  # the fixed evaluation subsets (None: the whole split)
    n_test: int | None = None
    chunk: int = 250
    tile_rows: int = 1
    jobs: int = 1  # shards of the grid's tiles over parallel jobs: shard k of n computes tiles k, k + n, ...


def save_run_directions(model: nn.Module, settings: Mapping[str, Any],
                        out: str | os.PathLike) -> Directions:
    """The two seeded random directions of ``settings`` for ``model``, written to ``out`` (HDF5)."""
    s = SurfaceSettings.of(settings)
    directions = random_directions(model, s.direction_seed, s.norm, s.ignore, dims=2)
    save_directions(out, directions)
    return directions


def shard_tiles(settings: Mapping[str, Any], shard: int) -> list[int]:
    """The tile indices that shard ``shard`` of ``settings["jobs"]`` computes."""
    s = SurfaceSettings.of(settings)
    n_tiles = -(-int(s.x[2]) // int(s.tile_rows))
    if not 0 <= shard < s.jobs:
        raise ValueError(f"shard {shard} out of range for {s.jobs} jobs")
    return list(range(shard, n_tiles, s.jobs))


def surface_of_run(run: Mapping[str, Any], model_path: str | os.PathLike, settings: Mapping[str, Any],
                   out: str | os.PathLike, directions_out: str | os.PathLike, *, progress: bool = False,
                   shard: int | None = None) -> Surface:
    """Li et al.'s 2-D surface around a trained run: ``theta* + alpha*delta + beta*eta`` over the grid (with
    ``shard``, only that shard's tiles: see ``jobs``)."""
    s = SurfaceSettings.of(settings)
    model, data = load_trained(run, model_path)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    loss = run.get("recipe", {}).get("loss", "ce")
    evaluators = evaluators_for(model, data, loss=loss, bn=s.bn, chunk=s.chunk)
    directions = save_run_directions(model, s, directions_out)
    return surface_2d(Path(out), evaluators, flatten(model), directions, grid(s.x), grid(s.y),
                      checkpoint=model_path, tile_rows=s.tile_rows, progress=progress,
                      tiles=None if shard is None else shard_tiles(s, shard))


def surface_job(run: Mapping[str, Any], model_path: str | os.PathLike, settings: Mapping[str, Any],
                out: str | os.PathLike, directions_out: str | os.PathLike, *, shards: Sequence[str] = (),
                shard: int | None = None, progress: bool = False) -> Surface:
    """Rules ``surface`` and ``surface_shard``: with ``shards``, merge them (the directions are recomputed,
    seeded and cheap, beside them); else the surface (or, with ``shard``, that shard's tiles) of the run."""
    if shards:
        surface = merge_surfaces(out, shards)
        model, _ = load_trained(run, model_path)
        save_run_directions(model, settings, directions_out)
        return surface
    return surface_of_run(run, model_path, settings, out, directions_out, shard=shard, progress=progress)


@dataclass(frozen=True)
class TrajectorySettings(Settings):
    """An experiment's ``trajectory`` block: Li et al.'s Figure 9, the surface on the PCA plane of a run."""

    n: int = 15  # grid points per axis, around the trajectory's extent
    margin: float = 0.3  # of the extent, on each side
    bn: str = "running"
    n_train: int | None = None
    n_test: int | None = None
    chunk: int = 250
    tile_rows: int = 1


def trajectory_of_run(run: Mapping[str, Any], seed_dir: str | os.PathLike, settings: Mapping[str, Any],
                      out: str | os.PathLike, directions_out: str | os.PathLike, *, progress: bool = False) -> Surface:
    """Li et al.'s Figure 9: PCA directions of the training trajectory (snapshots minus the final weights),
    the loss surface on that plane around the final weights, and the trajectory's coordinates in it (stored
    in the surface file as ``trajectory`` and ``trajectory_epochs``)."""
    s = TrajectorySettings.of(settings)
    seed_dir = Path(seed_dir)
    model, data = load_trained(run, seed_dir / MODEL)
    epochs, paths = zip(*snapshots(seed_dir))
    traj = []
    for p in paths:
        lio.load_state_dict(model, p)
        traj.append(flatten(model))
    lio.load_state_dict(model, seed_dir / MODEL)
    final = flatten(model)
    directions = pca_directions(traj, final=final, model=model)
    save_directions(directions_out, directions)
    coords = project(traj, final, directions.x, directions.y).numpy()
    xs, ys = grid_around(coords, s.n, s.n, s.margin)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    evaluators = evaluators_for(model, data, loss=run.get("recipe", {}).get("loss", "ce"), bn=s.bn,
                                chunk=s.chunk)
    return surface_2d(Path(out), evaluators, final, directions, xs, ys, checkpoint=seed_dir / MODEL,
                      tile_rows=s.tile_rows, progress=progress,
                      extra={"trajectory": coords, "trajectory_epochs": np.asarray(epochs)})


# ---------------------------------------------------------------- claim jobs ---------------------------------

def run_skip_depth(job: ClaimJob) -> ClaimResult:
    """The runs of every variant and one surface per variant (the rule's ``surfaces``: variant -> file)."""
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    surfaces = {v: read_surface(p) for v, p in job.params["surfaces"].items()}
    return skip_depth_claim(runs, surfaces, job.check, job.scale, job.out_dir, claim_id=job.id)


def run_width_nonconvexity(job: ClaimJob) -> ClaimResult:
    """The ratio maps and trajectory PCA of the width sweep (kept in the ``analysis`` output), then the claim."""
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    ratio_maps, explained = width_analysis(job.runs, dict(job.dirs), job.settings, job.outputs["analysis"],
                                           progress=job.progress)
    return width_nonconvexity(runs, ratio_maps, explained, job.check, job.scale, job.out_dir, claim_id=job.id)


CLAIMS = {"li-skip-depth-chaos": run_skip_depth, "li-width-nonconvexity": run_width_nonconvexity}
