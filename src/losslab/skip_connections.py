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
from typing import Any, Mapping, Sequence

import numpy as np

from . import figures
from .claims import ClaimResult, all_of, paired
from .landscape_plots import draw_contour, shared_levels
from .report import mean_std, pm, write_table

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


def claim(runs: Mapping[str, Sequence[Mapping[str, Any]]], surfaces: Mapping[str, Any],
          check: Mapping[str, Any], scale: str, out_dir: str | Path,
          claim_id: str = "li-skip-depth-chaos") -> ClaimResult:
    """``runs``: variant -> per-seed metrics; ``surfaces``: variant -> :class:`losslab.surfaces.Surface` (one
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
            numbers[f"{tag}.test_err_mean"] = mean_std(err[k])[0]
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

    levels = shared_levels(list(z.values()), num=25, log=True)
    fig, axes = figures.new_figure(ncols=len(depths), nrows=2, width=3.3 * len(depths) + 1, height=7.0,
                                   squeeze=False, layout="constrained")
    for col, d in enumerate(depths):
        for row, skip in enumerate((True, False)):
            ax = axes[row][col]
            cs = draw_contour(ax, xs, ys, z[(d, skip)], levels, inline_labels=False, cmap=figures.SEQUENTIAL_CMAP,
                              log=True)
            ax.set_title(f"depth {d}, {'skip' if skip else 'no skip'}\nnon-convex fraction {chaos[(d, skip)]:.2f}",
                         fontsize=8)
            if row == 1:
                ax.set_xlabel(r"$\alpha$ (filter-normalized)")
            if col == 0:
                ax.set_ylabel(r"$\beta$ (filter-normalized)")
            ax.set_aspect("equal")
    fig.colorbar(cs, ax=axes, label="train loss (shared log-spaced levels)", shrink=0.8)
    fig.suptitle(f"train loss around the minimizer ({scale})")
    figs = figures.save(fig, out_dir / "figure")

    verdict = all_of(c.verdict for c in comps)
    measured = "; ".join(
        f"d{d}: err {100 * mean_std(err[(d, True)])[0]:.1f}/{100 * mean_std(err[(d, False)])[0]:.1f}% "
        f"non-convex {chaos[(d, True)]:.2f}/{chaos[(d, False)]:.2f}" for d in depths) + " (skip/no-skip)"
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=len(err[(deep, True)]), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes="; ".join(c.describe() for c in comps))
