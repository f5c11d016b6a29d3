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
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, seed_mean
from losslab.plots.landscape import draw_contour, shared_levels
from losslab.claims.tables import mean_std, pm, write_table
import os
from torch import nn
from losslab import io as lio
from losslab.core.directions import Directions, pca_directions, project, random_directions, save_directions
from losslab.core.weights import flatten
from losslab.core.surfaces import Surface, evaluators_for, grid_around, surface_2d
from losslab.core.surfaces import grid
from losslab.claims.runs import MODEL, model_file, read_runs, seed_dir, seed_dirs, seed_of, snapshots
from losslab.core.trainer import batching
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


def _test_err(record: Mapping[str, Any]) -> float:
    """A run's test error, NaN when it diverged (its comparison cannot be made)."""
    return math.nan if record.get("diverged") else 1 - float(record["test_acc"])


def _ln_ratio(a: float, b: float) -> float:
    """``ln(a / b)``, NaN unless both are finite and positive (a diverged run, a zero error)."""
    return math.log(a / b) if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0 else math.nan


def _by_seed(records: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    return {int(r.get("seed", i)): r for i, r in enumerate(records)}


def _common_seeds(*arms: Sequence[Mapping[str, Any]]) -> list[int]:
    """The seeds every arm ran, in order: the replicates of a comparison paired by seed."""
    seeds = set(_by_seed(arms[0]))
    for arm in arms[1:]:
        seeds &= set(_by_seed(arm))
    return sorted(seeds)


def _steps(record: Mapping[str, Any]) -> float:
    """The optimizer steps of a trained run: epochs x steps per epoch (:func:`losslab.core.trainer.batching`)."""
    try:
        per_epoch = batching(int(record["train_size"]), record.get("recipe", {}).get("batch_size", 128))[1]
        return float(int(record["epochs"]) * per_epoch)
    except (KeyError, TypeError, ValueError):
        return math.nan


def _record_value(record: Mapping[str, Any], key: str) -> float:
    v = record.get(key)
    return math.nan if v is None else float(v)


def _fmt(x: float, spec: str) -> str:
    return "NaN" if not math.isfinite(x) else format(x, spec)


def _regime_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Table columns of one trained arm: final train loss, optimizer steps, train and test accuracy (over seeds)."""
    return {"train_loss": pm([_record_value(r, "train_loss") for r in records], 1, 4),
            "steps": pm([_steps(r) for r in records], 1, 0),
            "train_acc_%": pm([_record_value(r, "train_acc") for r in records], 100),
            "test_acc_%": pm([_record_value(r, "test_acc") for r in records], 100)}


def _regime_of(label: str, records: Sequence[Mapping[str, Any]]) -> str:
    """One arm's part of a claim's ``regime``: mean final train loss, optimizer steps, train/test accuracy."""
    loss = seed_mean([_record_value(r, "train_loss") for r in records])
    steps = seed_mean([_steps(r) for r in records])
    tr = seed_mean([_record_value(r, "train_acc") for r in records])
    te = seed_mean([_record_value(r, "test_acc") for r in records])
    return (f"{label}: train loss {_fmt(loss, '.3g')}, {_fmt(steps, '.0f')} steps, train/test acc "
            f"{_fmt(100 * tr, '.1f')}/{_fmt(100 * te, '.1f')}%")


def _surface_list(value: Any) -> list[Any]:
    """A variant's surfaces in surface-seed order: a list as given, or one surface."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def skip_depth_claim(runs: Mapping[str, Sequence[Mapping[str, Any]]], surfaces: Mapping[str, Any],
                     check: Mapping[str, Any], decision: Mapping[str, Any], scale: str, out_dir: str | Path,
                     claim_id: str = "li-skip-depth-chaos") -> ClaimResult:
    """``runs``: variant -> per-seed metrics; ``surfaces``: variant -> :class:`losslab.core.surfaces.Surface`, or a
    list of them in surface-seed order (the same seeds for every variant). Variants are told apart by their model's
    depth and skip switch. Decided by the claim's pre-registered ``decision`` (config/claims.yaml):

    * ``gap_grows_with_depth``: per run seed, ln(no-skip / skip test error) at the deepest depth minus at the
      shallowest (paired by seed; a diverged run is NaN, so inconclusive);
    * ``chaos``: per surface seed, the :func:`nonconvex_fraction` of the deepest no-skip surface minus that of the
      deepest skip surface (one surface seed: one replicate, inconclusive)."""
    out_dir = Path(out_dir)
    by_key = {_variant_key(r): v for v, r in runs.items()}
    depths = sorted({d for d, _ in by_key})
    if len(depths) < 2 or any((d, s) not in by_key for d in depths for s in (True, False)):
        raise ValueError(f"need every depth with and without skips; have {sorted(by_key)}")
    surf = {k: _surface_list(surfaces[v]) for k, v in by_key.items()}
    n_surf = {len(x) for x in surf.values()}
    if len(n_surf) != 1:
        raise ValueError(f"need the same number of surface seeds for every variant; have {sorted(n_surf)}")
    err = {k: [_test_err(r) for r in runs[v]] for k, v in by_key.items()}
    z = {k: [np.asarray(s["train_loss"]) for s in surf[k]] for k in by_key}
    first = surf[(depths[0], True)][0]
    xs = np.asarray(first["xcoordinates"])
    ys = np.asarray(first["ycoordinates"])
    chaos = {k: [nonconvex_fraction(zz, xs, ys) for zz in z[k]] for k in by_key}
    minima = {k: [float(local_minima(zz)) for zz in z[k]] for k in by_key}
    center = {k: [float(zz[len(xs) // 2, len(ys) // 2]) for zz in z[k]] for k in by_key}

    shallow, deep = depths[0], depths[-1]
    arms = {k: _by_seed(runs[v]) for k, v in by_key.items()}
    seeds = _common_seeds(*(runs[v] for v in by_key.values()))

    def ln_gap(d: int, s: int) -> float:
        return _ln_ratio(_test_err(arms[(d, False)][s]), _test_err(arms[(d, True)][s]))

    gap_growth = [ln_gap(deep, s) - ln_gap(shallow, s) for s in seeds]
    chaos_diff = [a - b for a, b in zip(chaos[(deep, False)], chaos[(deep, True)])]
    cd = decide_claim(decision, {"gap_grows_with_depth": Measured(samples=gap_growth),
                                 "chaos": Measured(samples=chaos_diff)})

    paper_depths = sorted(REPORTED_ERR)
    rows, numbers = [], {}
    for rank, d in enumerate(depths):
        pd = paper_depths[min(rank, len(paper_depths) - 1)] if len(depths) <= 3 else None
        for skip in (True, False):
            k = (d, skip)
            tag = f"d{d}.{'skip' if skip else 'noskip'}"
            numbers[f"{tag}.test_err_mean"] = seed_mean(err[k])
            numbers[f"{tag}.nonconvex_fraction"] = seed_mean(chaos[k])
            numbers[f"{tag}.local_minima"] = seed_mean(minima[k])
            numbers[f"{tag}.center_train_loss"] = seed_mean(center[k])
            rows.append({
                "depth": d, "skip": skip, "test_err_%": pm(err[k], 100),
                "reported_err_% (paper depth)": (f"{REPORTED_ERR[pd][0 if skip else 1]} (ResNet-{pd})"
                                                 if pd else ""),
                "nonconvex_fraction": pm(chaos[k], 1, 4) if len(chaos[k]) > 1 else round(chaos[k][0], 4),
                "local_minima": pm(minima[k], 1, 1) if len(minima[k]) > 1 else int(minima[k][0]),
                **_regime_columns(runs[by_key[k]]),
                "diverged": sum(bool(r.get("diverged")) for r in runs[by_key[k]]),
                "seeds": len(err[k]), "surface_seeds": len(chaos[k]),
            })
    tables = write_table(rows, out_dir / "table", title=f"Skip connections and depth ({scale} scale)")

    data = {"scale": scale, "depths": depths, "xs": xs, "ys": ys,
            "panels": [{"depth": d, "skip": skip, "z": z[(d, skip)][0], "nonconvex": chaos[(d, skip)][0]}
                       for d in depths for skip in (True, False)]}
    figs = figures.render(plot_claim, data, out_dir / "figure")

    measured = "; ".join(
        f"d{d}: err {100 * mean_std(err[(d, True)])[0]:.1f}/{100 * mean_std(err[(d, False)])[0]:.1f}% "
        f"non-convex {float(seed_mean(chaos[(d, True)])):.2f}/{float(seed_mean(chaos[(d, False)])):.2f}"
        for d in depths) + f" (skip/no-skip; {len(chaos_diff)} surface seed{'s' if len(chaos_diff) != 1 else ''})"
    regime = "; ".join(_regime_of(f"d{d} {'skip' if s else 'no-skip'}", runs[by_key[(d, s)]])
                       for d in depths for s in (True, False))
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


# --------------------------------------------------------------------------------------------------------------
# Li et al. (2018), Sec. 6 / Table 1 (Wide-ResNet-56 on CIFAR-10): wider networks have lower test error and
# smoother, more convex surfaces (|lambda_min/lambda_max| near 0 over the plane); p.11: 40-90% of the training
# trajectory's variance lies in its top two PCA directions.

# CIFAR-10 test error (%) with / without skip connections, width multiplier k
REPORTED_WIDTH_ERR = {1: (5.89, 13.31), 2: (5.07, 10.26), 4: (4.34, 9.69), 8: (3.93, 8.70)}


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
    figures.colorbar(fig, cs, axes, "train loss (shared log-spaced levels)", shrink=0.8)
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


def _part(decision: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for part in decision["parts"]:
        if part["name"] == name:
            return part
    raise ValueError(f"the decision has no part {name!r} (parts: {[p['name'] for p in decision['parts']]})")


def width_nonconvexity(runs: Mapping[str, Sequence[Mapping[str, Any]]], ratio_maps: Mapping[str, Sequence[Any]],
                       explained: Mapping[str, Sequence[Sequence[float]]], check: Mapping[str, Any],
                       decision: Mapping[str, Any], scale: str, out_dir: str | Path,
                       claim_id: str = "li-width-nonconvexity") -> ClaimResult:
    """Li et al.'s width claim. ``runs``: variant -> per-seed metrics (variants told apart by their model's
    ``width`` and ``skip``; at least two widths, each with and without skips); ``ratio_maps``: variant ->
    |lambda_min/lambda_max| maps (mappings with ``ratio``, ``xcoordinates``, ``ycoordinates``) in seed order,
    for at least the narrowest and widest no-skip variants; ``explained``: variant -> ``(pc1, pc2)`` explained
    variance ratios of each seed's trajectory (every variant).

    Decided by the claim's pre-registered ``decision`` (config/claims.yaml):

    * ``wider_better`` (labels ``skip``, ``noskip``): per seed, ln(test error of the narrowest / of the widest net),
      paired by seed (a diverged run is NaN: inconclusive);
    * ``wider_more_convex``: per ratio-map seed, the mean ratio over the map of the narrowest no-skip net minus that
      of the widest (one ratio-map seed: one replicate, inconclusive);
    * ``pca_variance``: the top-2 PCA explained variance of every run's trajectory, one replicate per seed and
      variant, against the part's margin (0.40)."""
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
    threshold = float(_part(decision, "pca_variance")["margin"])
    err = {k: [_test_err(r) for r in runs[v]] for k, v in by_key.items()}
    ratio_mean = {k: [float(np.nanmean(np.asarray(m["ratio"], float))) for m in ratio_maps[v]]
                  for k, v in by_key.items() if v in ratio_maps}
    top2 = {k: [float(a) + float(b) for a, b in explained[v]] for k, v in by_key.items()}
    uncertified = {k: sum(int(np.sum(np.asarray(m["certified"], float) < 1)) for m in ratio_maps[v]
                          if m.get("certified") is not None)
                   for k, v in by_key.items() if v in ratio_maps}

    better = {}
    for s in (True, False):
        a, b = _by_seed(runs[by_key[(narrow, s)]]), _by_seed(runs[by_key[(wide, s)]])
        seeds = _common_seeds(runs[by_key[(narrow, s)]], runs[by_key[(wide, s)]])
        better["skip" if s else "noskip"] = Measured(
            samples=[_ln_ratio(_test_err(a[k]), _test_err(b[k])) for k in seeds])
    convex = [a - b for a, b in zip(ratio_mean[(narrow, False)], ratio_mean[(wide, False)])]
    pooled = [x for w in widths for s in (True, False) for x in top2[(w, s)]]
    cd = decide_claim(decision, {"wider_better": better, "wider_more_convex": Measured(samples=convex),
                                 "pca_variance": Measured(samples=pooled)})

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
                "ratio_map_seeds": len(ratio_mean[k]) if k in ratio_mean else "",
                "ratio_cells_not_certified": uncertified[k] if k in uncertified else "",
                "pca_top2_%": pm(top2[k], 100), "reported_pca_top2_%": "40-90",
                **_regime_columns(runs[by_key[k]]),
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

    measured = "; ".join(
        f"w{w}: err {100 * mean_std(err[(w, True)])[0]:.1f}/{100 * mean_std(err[(w, False)])[0]:.1f}%"
        + (f" ratio {mean_std(ratio_mean[(w, False)])[0]:.3f}" if (w, False) in ratio_mean else "")
        + f" PCA top-2 {100 * min(mean_std(top2[(w, True)])[0], mean_std(top2[(w, False)])[0]):.0f}%+"
        for w in widths) + (f" (err skip/no-skip, ratio no-skip over {len(convex)} map seed"
                            f"{'s' if len(convex) != 1 else ''}, PCA min of both)")
    regime = "; ".join(_regime_of(f"w{w} {'skip' if s else 'no-skip'}", runs[by_key[(w, s)]])
                       for w in widths for s in (True, False))
    n_bad = sum(uncertified.values())
    notes = f"{n_bad} ratio-map cell(s) not certified (their eigenvalues are kept but uncertain)" if n_bad else ""
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(err[(wide, True)]), numbers=numbers,
                                     figures=figs, tables=tables, regime=regime)


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

def variant_surface_files(first: Mapping[str, str | os.PathLike], files: Sequence[str | os.PathLike]
                          ) -> dict[str, list[Path]]:
    """variant -> its surface files in surface-seed order: ``first`` (the rule's ``surfaces`` param: variant -> the
    surface of its first surface seed) names each variant's surface directory; ``files`` (the rule's ``surfaces``
    input: every surface seed of every variant) adds the variant's other seeds, the ``seed<k>`` siblings of it."""
    out = {}
    for v, f in first.items():
        home = Path(f).parent.parent
        mine = {Path(x) for x in files if Path(x).parent.parent == home and Path(x).name == Path(f).name}
        out[v] = sorted(mine | {Path(f)}, key=lambda x: seed_of(x.parent) or 0)
    return out


def run_skip_depth(job: ClaimJob) -> ClaimResult:
    """The runs of every variant and every surface seed's surface of each (the rule's ``surfaces`` param names the
    variants' first surface seed, its ``surfaces`` input lists them all)."""
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    files = variant_surface_files(job.params["surfaces"], job.files("surfaces"))
    surfaces = {v: [read_surface(p) for p in fs] for v, fs in files.items()}
    return skip_depth_claim(runs, surfaces, job.check, job.claim["decision"], job.scale, job.out_dir,
                            claim_id=job.id)


def run_width_nonconvexity(job: ClaimJob) -> ClaimResult:
    """The ratio maps and trajectory PCA of the width sweep (kept in the ``analysis`` output), then the claim."""
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    ratio_maps, explained = width_analysis(job.runs, dict(job.dirs), job.settings, job.outputs["analysis"],
                                           progress=job.progress)
    return width_nonconvexity(runs, ratio_maps, explained, job.check, job.claim["decision"], job.scale, job.out_dir,
                              claim_id=job.id)


CLAIMS = {"li-skip-depth-chaos": run_skip_depth, "li-width-nonconvexity": run_width_nonconvexity}
