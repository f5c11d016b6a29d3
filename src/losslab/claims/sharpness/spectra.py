"""The Hessian-spectrum and sharpness claims (issue #4): the analyses, tables, figures and verdicts of

* ``hessian-bulk-outliers`` (Sagun et al. 2016/2017 via source 000): at the end of training the Hessian's
  spectrum is a bulk near zero plus a few outliers, about as many as the classes;
* ``batchsize-larger-outliers`` (source 000): a larger batch ends with larger top eigenvalues;
* ``li-filter-normalization-wd-flip`` (Li et al. 2018): with raw directions the apparent sharpness of the
  small-batch (SB) and large-batch (LB) minimizers flips when weight decay is turned on; with
  filter-normalized directions LB is sharper in both cases; SB generalizes better in all four;
* ``lb-to-sb-same-basin`` (source 000): LB training continued with a small batch ends in the same basin: the
  line from the LB to the SB end point has no barrier, and the LB end is the steeper one;

and Li et al.'s Fig. 7 map of ``|lambda_min / lambda_max|`` over the plane of a 2-D surface, an extra output of
``li-skip-depth-chaos``.

Nothing here re-implements curvature or surfaces: eigenvalues come from :func:`losslab.core.hessian.lanczos`,
densities from :func:`losslab.core.hessian.slq_density` (stochastic Lanczos quadrature), the ratio maps from
:func:`losslab.core.hessian.eigenvalue_ratio_surface`, all on :class:`losslab.core.hessian.TrainingLoss`; 1-D lines
are :func:`losslab.core.surfaces.surface_1d` and :func:`losslab.core.surfaces.interpolation` files. The metrics that
the pass rules of ``config/claims.yaml`` apply are small pure functions (:func:`outlier_count`,
:func:`bulk_mass`, :func:`line_sharpness`, :func:`end_rise`, :func:`barrier`), each with its definition.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np
import torch

from losslab.plots import figures
from losslab import io as lio
from losslab.claims.verdicts import (ClaimResult, Comparison, all_of,
                                     paired, seed_check, seed_mean)
from losslab.pipeline.config import deep_merge
from losslab.core.data import Prepared
from losslab.core.directions import Directions, biasbn_mask, load_directions, random_directions
from losslab.core.hessian import SpectralDensity, TrainingLoss, eigenvalue_ratio_surface, lanczos, slq_density
from losslab.core.surfaces import grid
from losslab.claims.training import load_trained
from losslab.core.weights import flatten
from losslab.claims.tables import mean_std, pm, write_table
from losslab.core.surfaces import (AffineSpan, Surface, evaluators_for, grid_index, interpolation, line_sharpness,
                                    random_lines)
from losslab.claims.runs import MODEL, model_file, read_runs, trained_seeds
from losslab.claims.training import prepare_run, train_run
from losslab.claims.settings import Settings
from losslab.claims.claim_job import ClaimJob

log = logging.getLogger(__name__)

Runs = Mapping[str, Sequence[Mapping[str, Any]]]


# ---------------------------------------------------------------- shared helpers ---------------------------

def batch_of(metrics: Mapping[str, Any]) -> int:
    """The batch size a run trained with (``"full"`` is its training-set size)."""
    bs = metrics["recipe"]["batch_size"]
    return int(metrics["train_size"]) if bs == "full" else int(bs)


def _loss_name(run: Mapping[str, Any]) -> str:
    return run.get("recipe", {}).get("loss", "ce")


def _errors(runs: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per-seed test error; a diverged run is NaN (its comparisons become inconclusive)."""
    return [math.nan if r.get("diverged") else 1.0 - float(r["test_acc"]) for r in runs]


def evaluation_loss(model: torch.nn.Module, data: Prepared, loss: str, n_train: int | None, bn: str = "running",
                    chunk: int = 1000) -> TrainingLoss:
    """The training loss (no weight-decay term) of ``model`` on the fixed evaluation subset of ``n_train``
    training samples (the one :mod:`losslab.claims.surfaces` evaluates surfaces on; all of it when None)."""
    ev = data.evaluation_subsets(n_train)
    return TrainingLoss(model, ev.x_train, ev.y_train, loss=loss, bn=bn, chunk=chunk)


# ---------------------------------------------------------------- spectra ---------------------------------

@dataclass(frozen=True)
class SpectrumSettings(Settings):
    """An experiment's ``spectrum`` block: top Hessian eigenvalues (Lanczos) and the SLQ spectral density."""

    top_k: int = 20
    tol: float = 1e-3
    max_iter: int | None = None
    slq_runs: int = 2  # 0: no density
    slq_steps: int = 60
    n_train: int | None = None
    bn: str = "running"
    chunk: int = 1000
    seed: int = 0



@dataclass(frozen=True, eq=False)
class Spectrum:
    """The Hessian of one trained network's training loss: its ``top`` eigenvalues (descending, Lanczos, to
    ``tol`` times the spectral radius) with residuals and convergence, and its smoothed spectral density
    (stochastic Lanczos quadrature; None when ``slq_runs`` is 0)."""

    seed: int
    top: np.ndarray
    residuals: np.ndarray
    converged: bool
    density: SpectralDensity | None
    products: int
    num_parameters: int
    num_classes: int
    n_samples: int
    tolerances: np.ndarray | None = None  # what each value had to meet (tol * lambda_max)
    certified: np.ndarray | None = None  # per value (losslab.core.hessian.lanczos's certificate)

    @property
    def lambda_max(self) -> float:
        return float(self.top[0])


def spectrum(loss: TrainingLoss, settings: Mapping[str, Any], *, seed: int = 0, num_classes: int = 0
             ) -> Spectrum:
    """The top ``top_k`` eigenvalues (Lanczos, ``relative_to="norm"``: each to ``tol * lambda_max``, so that
    eigenvalues near the bulk converge too) and the SLQ density (``slq_runs`` start vectors of ``slq_steps``
    steps) of ``loss``'s Hessian at the model's weights."""
    s = SpectrumSettings.of(settings)
    top = lanczos(loss.hessian(), int(s.top_k), "largest", tol=float(s.tol), relative_to="norm",
                  max_iter=s.max_iter, seed=int(s.seed))
    density = (slq_density(loss.hessian(), n_runs=int(s.slq_runs), n_steps=int(s.slq_steps),
                                seed=int(s.seed)) if s.slq_runs else None)
    return Spectrum(seed, np.asarray(top.values, float), np.asarray(top.residuals, float), bool(top.converged),
                    density, top.products + (density.products if density else 0), loss.dim, num_classes, loss.n,
                    tolerances=np.asarray(top.tolerances, float), certified=np.asarray(top.certified, bool))


def run_spectra(run: Mapping[str, Any], run_dir: str | os.PathLike, settings: Mapping[str, Any]) -> list[Spectrum]:
    """:func:`spectrum` of every seed's final network under ``run_dir`` (a trained run of spec ``run``)."""
    out = []
    for seed, d in trained_seeds(run_dir):
        model, data = load_trained(run, d / MODEL)
        s = SpectrumSettings.of(settings)
        loss = evaluation_loss(model, data, _loss_name(run), s.n_train, s.bn, s.chunk)
        out.append(spectrum(loss, settings, seed=seed, num_classes=data.num_classes))
        log.info("%s seed %d: top eigenvalues %s (%d products, converged %s)", run_dir, seed,
                 np.array2string(out[-1].top[:6], precision=4), out[-1].products, out[-1].converged)
    return out


def write_spectra(path: str | os.PathLike, spectra: Mapping[str, Sequence[Spectrum]]) -> None:
    """All spectra of a claim in one HDF5 file: ``<variant>/seed<k>/`` with ``top``, ``residuals``, the
    Lanczos certificate (``tolerances``, ``certified`` per value; attribute ``converged``) and, with
    a density, ``density_grid``, ``density`` and the quadrature ``nodes_<r>``/``weights_<r>`` of each run."""
    with lio.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for variant, items in spectra.items():
            for sp in items:
                g = f.create_group(f"{variant}/seed{sp.seed}")
                g.create_dataset("top", data=sp.top)
                g.create_dataset("residuals", data=sp.residuals)
                if sp.certified is not None:
                    g.create_dataset("tolerances", data=sp.tolerances)
                    g.create_dataset("certified", data=sp.certified.astype(np.uint8))
                for key in ("converged", "products", "num_parameters", "num_classes", "n_samples"):
                    g.attrs[key] = getattr(sp, key)
                if sp.density is not None:
                    g.create_dataset("density_grid", data=sp.density.grid)
                    g.create_dataset("density", data=sp.density.density)
                    g.attrs["sigma2"] = sp.density.sigma2
                    for r, (t, w) in enumerate(zip(sp.density.nodes, sp.density.weights)):
                        g.create_dataset(f"nodes_{r}", data=t)
                        g.create_dataset(f"weights_{r}", data=w)


def outlier_count(top: Sequence[float], floor_rel: float = 1e-2) -> int:
    """The gap rule: with the eigenvalues sorted ``lambda_1 >= ... >= lambda_m`` and the floor
    ``f = floor_rel * lambda_1``, the number of outliers is the ``i < m`` that maximises
    ``lambda_i / max(lambda_{i+1}, f)`` (the largest relative gap; the smallest ``i`` on ties). The floor
    keeps ratios between near-zero bulk eigenvalues from counting as gaps. 0 when ``lambda_1 <= 0``."""
    lam = np.sort(np.asarray(top, float))[::-1]
    if lam.size < 2:
        raise ValueError("the gap rule needs at least two eigenvalues")
    if not np.isfinite(lam).all():
        raise ValueError("the gap rule needs finite eigenvalues")
    if lam[0] <= 0:
        return 0
    ratios = lam[:-1] / np.maximum(lam[1:], floor_rel * lam[0])
    return int(np.argmax(ratios)) + 1


def bulk_mass(density: SpectralDensity, lambda_max: float, rel: float = 1e-2) -> float:
    """The fraction of the spectral mass at ``|lambda| < rel * lambda_max``: the SLQ quadrature weights of the
    nodes there, averaged over start vectors (each run's weights sum to 1)."""
    thr = rel * abs(lambda_max)
    return float(np.mean([w[np.abs(t) < thr].sum() for t, w in zip(density.nodes, density.weights)]))


def _spectrum_data(sp: Spectrum) -> dict[str, Any]:
    """What the figures draw of a spectrum, as plain data (:func:`losslab.plots.figures.render`)."""
    return {"seed": sp.seed, "num_classes": sp.num_classes, "top": sp.top, "lambda_max": sp.lambda_max,
            "grid": None if sp.density is None else sp.density.grid,
            "density": None if sp.density is None else sp.density.density}


def _draw_density(ax, sp: Mapping[str, Any], color, label: str, bulk_rel: float | None = None) -> None:
    """The SLQ density on a log scale (PyHessian's plot), the Lanczos eigenvalues as ticks at the top
    (``sp``: :func:`_spectrum_data`)."""
    if sp["density"] is not None:
        ax.semilogy(np.asarray(sp["grid"], float), np.asarray(sp["density"], float) + 1e-7, color=color, lw=1,
                    label=label)
    for lam in sp["top"]:
        ax.axvline(lam, ymin=0.93, ymax=1.0, color=color, lw=0.8)
    if bulk_rel is not None:
        for sign in (-1, 1):
            ax.axvline(sign * bulk_rel * sp["lambda_max"], color="0.5", ls=":", lw=0.8)


# ---------------------------------------------------------------- claim: bulk and outliers ----------------

def outlier_checks(spectra: Mapping[str, Sequence[Spectrum]], check: Mapping[str, Any]
                   ) -> tuple[list[Comparison], dict[str, dict[str, list]]]:
    """The pass rule per class count: one :func:`seed_check` per variant (bulk mass and outlier window in each
    seed; NaN, hence inconclusive, when Lanczos did not converge or there is no density), and per variant the
    outlier counts and bulk masses of its seeds. Variants come in order of their class count."""
    lo, hi = check["window"]
    comps, measured = [], {}
    for v in sorted(spectra, key=lambda v: spectra[v][0].num_classes):
        k = spectra[v][0].num_classes
        counts = [outlier_count(sp.top, check["gap_floor"]) for sp in spectra[v]]
        masses = [bulk_mass(sp.density, sp.lambda_max, check["bulk_rel"]) if sp.density else math.nan
                  for sp in spectra[v]]
        margins = [math.nan if not sp.converged or not math.isfinite(m) else
                   (1.0 if k + lo <= n <= k + hi and m >= check["bulk_mass"] else -1.0)
                   for sp, n, m in zip(spectra[v], counts, masses)]
        comps.append(seed_check(f"k={k}: bulk mass >= {check['bulk_mass']} at |lambda| < "
                                f"{check['bulk_rel']:g} lambda_max and outliers in [{k + lo}, {k + hi}]",
                                margins, check["min_agree"]))
        measured[v] = {"k": k, "outliers": counts, "bulk_mass": masses}
    return comps, measured


def hessian_outliers_claim(spectra: Mapping[str, Sequence[Spectrum]], runs: Runs, check: Mapping[str, Any],
                           scale: str, out_dir: str | Path, claim_id: str = "hessian-bulk-outliers"
                           ) -> ClaimResult:
    """``spectra`` and ``runs``: variant -> per seed (same order); each variant is one class count ``k``
    (from its spectra's ``num_classes``). Applies the bulk-mass and outlier-window rule per ``k``."""
    out_dir = Path(out_dir)
    comps, measured_by = outlier_checks(spectra, check)
    by_k = list(measured_by)
    lo, hi = check["window"]
    rows, numbers = [], {}
    for v, comp in zip(by_k, comps):
        k, counts, masses = measured_by[v]["k"], measured_by[v]["outliers"], measured_by[v]["bulk_mass"]
        for sp, n_out, mass in zip(spectra[v], counts, masses):
            tag = f"k{k}.seed{sp.seed}"
            numbers[f"{tag}.lambda_max"] = sp.lambda_max
            numbers[f"{tag}.outliers"] = float(n_out)
            numbers[f"{tag}.bulk_mass"] = mass
        top_mean = np.mean([sp.top for sp in spectra[v]], axis=0)
        rows.append({
            "classes": k, "parameters": spectra[v][0].num_parameters, "hessian_samples": spectra[v][0].n_samples,
            "lambda_max": pm([sp.lambda_max for sp in spectra[v]], digits=4),
            "outliers_per_seed": " ".join(map(str, counts)), "window": f"[{k + lo}, {k + hi}]",
            "bulk_mass_per_seed": " ".join(f"{m:.3f}" for m in masses),
            "top_k+3_over_lambda_max (seed mean)": " ".join(f"{x:.3g}" for x in (top_mean / top_mean[0])[:k + 3]),
            "train_acc_%": pm([r["train_acc"] for r in runs[v]], 100),
            "test_acc_%": pm([r["test_acc"] for r in runs[v]], 100),
            "certified_seeds": sum(bool(sp.converged) for sp in spectra[v]),
            "seeds": len(spectra[v]), "verdict": comp.verdict,
        })
    tables = write_table(rows, out_dir / "table", title=f"Hessian bulk and outliers by class count ({scale} scale)")

    data = {"scale": scale, "gap_floor": check["gap_floor"], "bulk_rel": check["bulk_rel"],
            "spectra": [[_spectrum_data(sp) for sp in spectra[v]] for v in by_k]}
    figs = figures.render(plot_hessian_outliers, data, out_dir / "figure")

    verdict = all_of(c.verdict for c in comps)
    measured = "; ".join(
        f"k={m['k']}: outliers {'/'.join(map(str, m['outliers']))}, bulk mass {min(m['bulk_mass']):.3f} (min)"
        for m in measured_by.values())
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=min(len(s) for s in spectra.values()), comparisons=comps, numbers=numbers,
                       figures=figs, tables=tables, notes="; ".join(c.describe() for c in comps))


# ---------------------------------------------------------------- claim: batch size and outliers ----------

def _two_batch_sizes(runs: Runs) -> tuple[str, str]:
    """(small-batch variant, large-batch variant) of a two-variant experiment, by the batch they used."""
    if len(runs) != 2:
        raise ValueError(f"need exactly two variants (small and large batch), have {sorted(runs)}")
    small, large = sorted(runs, key=lambda v: batch_of(runs[v][0]))
    if batch_of(runs[small][0]) == batch_of(runs[large][0]):
        raise ValueError(f"variants {small!r} and {large!r} use the same batch size")
    return small, large


def _lambda_max(spectra: Sequence[Spectrum]) -> list[float]:
    """Per-seed lambda_max; NaN where Lanczos did not converge (the comparison becomes inconclusive)."""
    return [sp.lambda_max if sp.converged else math.nan for sp in spectra]


def batchsize_check(spectra: Mapping[str, Sequence[Spectrum]], runs: Runs, check: Mapping[str, Any]
                    ) -> Comparison:
    """The pass rule: ``lambda_max`` of the larger-batch variant exceeds the smaller-batch one's, paired by
    seed (:func:`losslab.claims.verdicts.paired`)."""
    small, large = _two_batch_sizes(runs)
    seeds = [sp.seed for sp in spectra[small]]
    if [sp.seed for sp in spectra[large]] != seeds:
        raise ValueError(f"the two variants have different seeds: {seeds} vs {[sp.seed for sp in spectra[large]]}")
    return paired(f"lambda_max: batch {batch_of(runs[large][0])} > batch {batch_of(runs[small][0])}",
                  _lambda_max(spectra[large]), _lambda_max(spectra[small]), check["min_agree"])


@figures.register_plot("sharpness.hessian_outliers")
def plot_hessian_outliers(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per class count, the spectral density of the first seed (dotted: the bulk's bound); last panel, the top
    eigenvalues over lambda_max of every seed with the last outlier of the gap rule circled."""
    by_k, gap_floor = data["spectra"], data["gap_floor"]
    ncols = len(by_k) + 1
    fig, axes = figures.new_figure(ncols=ncols, width=3.4 * ncols, height=3.4, layout="constrained")
    for col, sps in enumerate(by_k):
        ax, sp = axes[col], sps[0]
        n_out = outlier_count(sp["top"], gap_floor)
        _draw_density(ax, sp, figures.COLORS[col], f"seed {sp['seed']}", data["bulk_rel"])
        ax.set_title(f"k = {sp['num_classes']} classes: {n_out} outlier{'s' if n_out != 1 else ''} "
                     f"(seed {sp['seed']})", fontsize=9)
        ax.set_xlabel(r"eigenvalue $\lambda$")
        if col == 0:
            ax.set_ylabel("spectral density (SLQ)")
    ax = axes[-1]
    for col, sps in enumerate(by_k):
        for i, sp in enumerate(sps):
            top, lmax = np.asarray(sp["top"], float), sp["lambda_max"]
            n_out = outlier_count(top, gap_floor)
            idx = np.arange(1, len(top) + 1)
            ax.semilogy(idx, np.maximum(top / lmax, 1e-6), ".-", color=figures.COLORS[col], lw=0.7,
                        ms=3, label=f"k = {sp['num_classes']}" if i == 0 else None)
            ax.plot(n_out, max(top[n_out - 1] / lmax, 1e-6), "o", mfc="none", color=figures.COLORS[col])
    ax.axhline(gap_floor, color="0.5", ls=":", lw=0.8)
    ax.set_xlabel("index i (Lanczos, descending)")
    ax.set_ylabel(r"$\lambda_i / \lambda_{max}$")
    ax.set_title("top eigenvalues; circle = last outlier (gap rule)", fontsize=9)
    ax.legend()
    fig.suptitle(f"Hessian spectrum at the end of training ({data['scale']})")
    return figures.save(fig, stem)


def batchsize_outliers_claim(spectra: Mapping[str, Sequence[Spectrum]], runs: Runs, check: Mapping[str, Any],
                             scale: str, out_dir: str | Path, claim_id: str = "batchsize-larger-outliers"
                             ) -> ClaimResult:
    """Paired comparison of ``lambda_max`` between the large- and small-batch variant, seed by seed."""
    out_dir = Path(out_dir)
    comp = batchsize_check(spectra, runs, check)
    small, large = _two_batch_sizes(runs)
    seeds = [sp.seed for sp in spectra[small]]

    def lam(v: str) -> list[float]:
        return _lambda_max(spectra[v])

    rows, numbers = [], {}
    for v in (small, large):
        for sp, r in zip(spectra[v], runs[v]):
            numbers[f"{v}.seed{sp.seed}.lambda_max"] = sp.lambda_max
            rows.append({"variant": v, "batch": batch_of(r), "seed": sp.seed,
                         "lambda_max": round(sp.lambda_max, 5),
                         "top5": " ".join(f"{x:.4g}" for x in sp.top[:5]),
                         "train_loss": round(float(r["train_loss"]), 5), "train_acc_%": round(100 * r["train_acc"], 2),
                         "test_acc_%": round(100 * r["test_acc"], 2), "converged": sp.converged})
        numbers[f"{v}.lambda_max_mean"] = seed_mean(lam(v))
    tables = write_table(rows, out_dir / "table", title=f"Top Hessian eigenvalues by batch size ({scale} scale)")

    data = {"scale": scale, "seed": seeds[0], "batches": [batch_of(runs[v][0]) for v in (small, large)],
            "lambda_max": [lam(v) for v in (small, large)],
            "tops": [np.array([sp.top for sp in spectra[v]]) for v in (small, large)],
            "first": [_spectrum_data(spectra[v][0]) for v in (small, large)]}
    figs = figures.render(plot_batchsize_outliers, data, out_dir / "figure")

    measured = (f"lambda_max batch {batch_of(runs[small][0])} {pm(lam(small), digits=3)} vs batch "
                f"{batch_of(runs[large][0])} {pm(lam(large), digits=3)}; larger in {comp.agree}/{len(seeds)} seeds")
    return ClaimResult.from_comparison(comp, id=claim_id, scale=scale, rule=check["rule"], measured=measured,
                                       n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables)


@figures.register_plot("sharpness.batchsize_outliers")
def plot_batchsize_outliers(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """lambda_max of the small- and large-batch run of each seed (paired), the top eigenvalues (mean ± std over
    seeds) and the spectral densities of one seed."""
    batches = data["batches"]
    fig, axes = figures.new_figure(ncols=3, width=11, height=3.5, layout="constrained")
    ax = axes[0]
    for a, b in zip(*data["lambda_max"]):
        ax.plot([0, 1], [a, b], "o-", color="0.4", ms=4, lw=0.8)
    ax.set_xticks([0, 1], [f"batch {batches[0]}", f"batch {batches[1]}"])
    ax.set_xlim(-0.4, 1.4)
    ax.set_yscale("log")
    ax.set_ylabel(r"$\lambda_{max}$")
    ax.set_title("per seed (paired)", fontsize=9)
    ax = axes[1]
    for col in range(2):
        tops = np.asarray(data["tops"][col], float)
        idx = np.arange(1, tops.shape[1] + 1)
        ax.errorbar(idx, tops.mean(0), yerr=tops.std(0), fmt="o-", color=figures.COLORS[col], capsize=3,
                    label=f"batch {batches[col]}")
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel(r"$\lambda_i$ (mean ± std over seeds)")
    ax.legend()
    ax = axes[2]
    for col in range(2):
        _draw_density(ax, data["first"][col], figures.COLORS[col], f"batch {batches[col]}")
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel("spectral density (SLQ)")
    ax.set_title(f"seed {data['seed']}", fontsize=9)
    ax.legend()
    fig.suptitle(f"Hessian at the end of training: small vs large batch ({data['scale']})")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- sharpness along random lines ------------

@dataclass(frozen=True)
class SharpnessLineSettings(Settings):
    """An experiment's ``random_lines`` block for Li et al.'s weight-decay claim: raw and filter-normalized lines."""

    directions: int = 4
    alphas: Sequence[float] = (-1.0, 1.0, 21)
    direction_seed: int = 0
    n_train: int | None = None
    bn: str = "running"
    chunk: int = 1000

LINE_NORMS = ("raw", "filter")


def line_direction(model: torch.nn.Module, init: torch.Tensor, seed: int, norm: str) -> Directions:
    """One random direction for ``model``: ``filter``-normalized (Li et al.; bias/BN entries zero), or
    ``raw``: the same Gaussian draw unnormalized (bias/BN entries zero) and scaled, as a whole, to the norm of
    the non-bias/BN entries of ``init`` (the weights the run started from). The raw scale is a constant of
    the initialisation, the same for every network trained from it: the perturbation is not adapted to the
    network's own weights, which is what Li et al. call unnormalized."""
    if norm == "filter":
        return random_directions(model, seed, "filter", "biasbn", dims=1)
    if norm != "raw":
        raise ValueError(f"unknown line normalization {norm!r}; known: {list(LINE_NORMS)}")
    d = random_directions(model, seed, "none", "biasbn", dims=1)
    mask = biasbn_mask(model)
    return replace(d, x=d.x * (init[mask].norm() / d.x.norm()))


def sharpness_lines(run: Mapping[str, Any], seed_dir: str | os.PathLike, seed: int, settings: Mapping[str, Any],
                    out_dir: str | os.PathLike, *, progress: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train loss along ``directions`` random lines of each normalization through a trained seed: one
    :func:`losslab.core.surfaces.surface_1d` file ``<out_dir>/<norm>_dir<j>.h5`` per line; direction ``j`` is
    drawn with seed ``direction_seed + j`` for every network. Returns the alphas and ``norm -> losses[j, i]``."""
    s = SharpnessLineSettings.of(settings)
    seed_dir, out_dir = Path(seed_dir), Path(out_dir)
    model, data = load_trained(run, seed_dir / MODEL)
    init = flatten(prepare_run(run, seed)[0])
    data = data.evaluation_subsets(s.n_train)
    evaluators = evaluators_for(model, data, loss=_loss_name(run), bn=s.bn, chunk=s.chunk, splits=("train",))
    xs, theta = grid(s.alphas), flatten(model)
    out = {}
    for norm in LINE_NORMS:
        js = range(int(s.directions))
        out[norm] = random_lines(evaluators, theta, [line_direction(model, init, int(s.direction_seed) + j, norm)
                                                     for j in js],
                                 xs, [out_dir / f"{norm}_dir{j}.h5" for j in js], checkpoint=seed_dir / MODEL,
                                 progress=progress)
    return xs, out


def _four_roles(runs: Runs) -> dict[tuple[str, bool], str]:
    """``(batch "SB"/"LB", weight decay on) -> variant`` of the four-variant experiment."""
    batches = sorted({batch_of(r[0]) for r in runs.values()})
    if len(runs) != 4 or len(batches) != 2:
        raise ValueError(f"need four variants: two batch sizes x weight decay off/on; have {sorted(runs)}")
    roles = {("SB" if batch_of(r[0]) == batches[0] else "LB", float(r[0]["recipe"]["weight_decay"]) > 0): v
             for v, r in runs.items()}
    if len(roles) != 4:
        raise ValueError(f"variants {sorted(runs)} do not cover SB/LB x weight decay off/on")
    return roles


def wd_flip_checks(lines: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], alphas: Sequence[float],
                   runs: Runs, check: Mapping[str, Any]
                   ) -> tuple[list[Comparison], dict[tuple[str, str], list[float]], dict[str, list[float]],
                              dict[tuple[str, bool], str]]:
    """The six paired comparisons of the pass rule, with the per-seed sharpness ``(variant, norm) -> [S]``,
    test errors ``variant -> [err]`` and the roles ``(SB/LB, weight decay on) -> variant``."""
    roles = _four_roles(runs)
    seeds = [r["seed"] for r in runs[roles[("SB", False)]]]
    for v, r in runs.items():
        if [m["seed"] for m in r] != seeds or sorted(lines[v]) != sorted(seeds):
            raise ValueError(f"variant {v!r}: seeds differ from {seeds}")
    radius, agree = float(check["radius"]), check["min_agree"]
    sharp = {(v, norm): [line_sharpness(alphas, lines[v][s][norm], radius) for s in seeds]
             for v in runs for norm in LINE_NORMS}
    err = {v: _errors(runs[v]) for v in runs}
    wd_name = {False: "WD 0", True: "WD on"}
    comps = []
    for wd in (False, True):
        comps.append(paired(f"{wd_name[wd]}: test error LB > SB", err[roles[("LB", wd)]], err[roles[("SB", wd)]],
                            agree))
    sb, lb = roles[("SB", False)], roles[("LB", False)]
    comps.append(paired("raw, WD 0: LB sharper than SB", sharp[(lb, "raw")], sharp[(sb, "raw")], agree))
    sb, lb = roles[("SB", True)], roles[("LB", True)]
    comps.append(paired("raw, WD on: SB sharper than LB (the flip)", sharp[(sb, "raw")], sharp[(lb, "raw")], agree))
    for wd in (False, True):
        sb, lb = roles[("SB", wd)], roles[("LB", wd)]
        comps.append(paired(f"filter-normalized, {wd_name[wd]}: LB sharper than SB", sharp[(lb, "filter")],
                            sharp[(sb, "filter")], agree))
    return comps, sharp, err, roles


def wd_flip_claim(lines: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], alphas: Sequence[float],
                  runs: Runs, check: Mapping[str, Any], scale: str, out_dir: str | Path,
                  claim_id: str = "li-filter-normalization-wd-flip") -> ClaimResult:
    """``lines``: variant -> seed -> norm (raw / filter) -> ``losses[j, i]`` along direction ``j`` at
    ``alphas[i]``. Applies the six paired comparisons of the pass rule."""
    out_dir = Path(out_dir)
    comps, sharp, err, roles = wd_flip_checks(lines, alphas, runs, check)
    seeds = [r["seed"] for r in runs[roles[("SB", False)]]]
    radius = float(check["radius"])
    wd_name = {False: "WD 0", True: "WD on"}

    rows, numbers = [], {}
    for (b, wd), v in sorted(roles.items(), key=lambda kv: (kv[0][1], kv[0][0] == "LB")):
        r0 = runs[v][0]
        for norm in LINE_NORMS:
            numbers[f"{v}.sharpness_{norm}_mean"] = seed_mean(sharp[(v, norm)])
        numbers[f"{v}.test_err_mean"] = seed_mean(err[v])
        rows.append({"variant": v, "batch": batch_of(r0), "weight_decay": r0["recipe"]["weight_decay"],
                     "test_err_%": pm(err[v], 100), "train_acc_%": pm([r["train_acc"] for r in runs[v]], 100),
                     f"raw_sharpness@{radius:g}": pm(sharp[(v, 'raw')], digits=4),
                     f"filter_sharpness@{radius:g}": pm(sharp[(v, 'filter')], digits=4), "seeds": len(seeds)})
    tables = write_table(rows, out_dir / "table",
                         title=f"SB vs LB with and without weight decay: sharpness along raw and filter-normalized "
                               f"random directions ({scale} scale)")

    s0 = seeds[0]
    order = [("SB", False), ("LB", False), ("SB", True), ("LB", True)]
    data = {"scale": scale, "alphas": alphas, "radius": radius, "seed": s0,
            "arms": [{"batch": b, "wd": wd, "batch_size": batch_of(runs[roles[(b, wd)]][0]),
                      "test_err": err[roles[(b, wd)]][0],
                      "lines": {norm: lines[roles[(b, wd)]][s0][norm] for norm in LINE_NORMS},
                      "sharpness": {norm: sharp[(roles[(b, wd)], norm)] for norm in LINE_NORMS}}
                     for b, wd in order]}
    figs = figures.render(plot_wd_flip, data, out_dir / "figure")

    def mean(v: str, norm: str) -> float:
        return mean_std(sharp[(v, norm)])[0]

    measured = "; ".join(
        f"{wd_name[wd]}: err SB/LB {100 * mean_std(err[roles[('SB', wd)]])[0]:.1f}/"
        f"{100 * mean_std(err[roles[('LB', wd)]])[0]:.1f}%, raw S {mean(roles[('SB', wd)], 'raw'):.3g}/"
        f"{mean(roles[('LB', wd)], 'raw'):.3g}, filter S {mean(roles[('SB', wd)], 'filter'):.3g}/"
        f"{mean(roles[('LB', wd)], 'filter'):.3g}" for wd in (False, True))
    return ClaimResult(id=claim_id, scale=scale, verdict=all_of(c.verdict for c in comps), rule=check["rule"],
                       measured=measured, n_seeds=len(seeds), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes="; ".join(c.describe() for c in comps))


@figures.register_plot("sharpness.wd_flip")
def plot_wd_flip(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Train loss along random raw (top) and filter-normalized (bottom) directions through the SB and LB
    networks of one seed without and with weight decay (thin: each direction, thick: their mean; dotted: the
    rule's radius), and the sharpness of every seed (right)."""
    a, radius, s0 = np.asarray(data["alphas"], float), data["radius"], data["seed"]
    arms = {(arm["batch"], bool(arm["wd"])): arm for arm in data["arms"]}
    wd_name = {False: "WD 0", True: "WD on"}
    fig, axes = figures.new_figure(ncols=3, nrows=2, width=11, height=6.4, squeeze=False, layout="constrained")
    for row, norm in enumerate(LINE_NORMS):
        for col, wd in enumerate((False, True)):
            ax = axes[row][col]
            for c, b in enumerate(("SB", "LB")):
                arm = arms[(b, wd)]
                z = np.asarray(arm["lines"][norm], float)
                for zj in z:
                    ax.plot(a, zj, color=figures.COLORS[c], lw=0.5, alpha=0.35)
                ax.plot(a, z.mean(0), color=figures.COLORS[c], lw=1.6,
                        label=f"{b} (batch {arm['batch_size']}), test err {100 * arm['test_err']:.1f}%")
            for x in (-radius, radius):
                ax.axvline(x, color="0.5", ls=":", lw=0.8)
            ax.set_yscale("log")
            ax.set_title(f"{'raw' if norm == 'raw' else 'filter-normalized'} directions, {wd_name[wd]} "
                         f"(seed {s0})", fontsize=9)
            ax.set_xlabel(r"$\alpha$")
            if col == 0:
                ax.set_ylabel("train loss")
            ax.legend(fontsize=7)
        ax = axes[row][2]
        for i, arm in enumerate(data["arms"]):
            vals = arm["sharpness"][norm]
            ax.bar(i, np.mean(vals), color=figures.COLORS[i % 2], alpha=0.6)
            ax.plot(np.full(len(vals), i), vals, "k.", ms=4)
        ax.set_xticks(range(4), ["SB WD0", "LB WD0", "SB WD", "LB WD"])
        ax.set_yscale("log")
        ax.set_ylabel(f"mean loss rise at |alpha| = {radius:g}")
        ax.set_title(f"{norm} sharpness, every seed", fontsize=9)
    fig.suptitle(f"Li et al.'s weight-decay flip ({data['scale']}): SB vs LB along random directions")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- LB then SB: continuation and basin ------

def continuation_spec(run: Mapping[str, Any], recipe: Mapping[str, Any], start: str | os.PathLike
                      ) -> dict[str, Any]:
    """The run spec of a continuation: ``run`` (the run it continues) with the ``recipe`` keys replaced and
    the weights initialised from the state dict ``start`` (``recipe.init_from``)."""
    return deep_merge(run, {"recipe": {**dict(recipe), "init_from": str(start)}})


def continue_runs(run: Mapping[str, Any], start_dir: str | os.PathLike, recipe: Mapping[str, Any],
                  seeds: Sequence[int], out_dir: str | os.PathLike, ckpt_dir: str | os.PathLike, *,
                  threads: int = 1, progress: bool = False) -> list[dict[str, Any]]:
    """Continue every seed of a trained run (``start_dir/seed<k>/model.pt``) with ``recipe`` (e.g. a small
    batch): ``out_dir/seed<k>/`` gets the usual :func:`losslab.claims.training.train_run` files."""
    out = []
    for seed in seeds:
        spec = continuation_spec(run, recipe, model_file(start_dir, seed))
        out.append(train_run(spec, seed, Path(out_dir) / f"seed{seed}", ckpt_dir, threads=threads, progress=progress))
    return out


@dataclass(frozen=True)
class BasinSettings(Settings):
    """An experiment's ``basin`` block: the segment from a large-batch solution to the small-batch one trained on."""

    alphas: Sequence[float] = (-1.0, 2.0, 25)
    n_train: int | None = None
    n_test: int | None = None
    bn: str = "running"
    chunk: int = 1000



def basin_line(run: Mapping[str, Any], start_model: str | os.PathLike, end_model: str | os.PathLike,
               settings: Mapping[str, Any], out: str | os.PathLike, *, progress: bool = False) -> Surface:
    """Train and test loss and accuracy on ``(1 - alpha) theta_start + alpha theta_end`` for the ``alphas``
    of ``settings`` (:func:`losslab.core.surfaces.interpolation`); BN statistics by ``settings["bn"]``
    (``recompute`` for networks with BN: the two end points' running statistics differ)."""
    s = BasinSettings.of(settings)
    model, data = load_trained(run, start_model)
    theta0 = flatten(model)
    end, _ = load_trained(run, end_model)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    evaluators = evaluators_for(model, data, loss=_loss_name(run), bn=s.bn, chunk=s.chunk)
    theta1, xs = flatten(end), grid(s.alphas)
    return interpolation(out, evaluators, theta0, theta1, xs, checkpoints=(start_model, end_model),
                         extra={"distance": np.array([float((theta1 - theta0).double().norm())])},
                         tile_rows=len(xs), progress=progress)


def end_rise(alphas: Sequence[float], losses: Sequence[float], delta: float) -> tuple[float, float]:
    """``(L(-delta) - L(0), L(1 + delta) - L(1))``: how fast the loss rises moving away from each end point of
    the segment (the same distance, ``delta`` times the segment's length, beyond each end)."""
    a, z = np.asarray(alphas, float), np.asarray(losses, float)
    return (float(z[grid_index(a, -delta)] - z[grid_index(a, 0.0)]),
            float(z[grid_index(a, 1.0 + delta)] - z[grid_index(a, 1.0)]))


def barrier(alphas: Sequence[float], losses: Sequence[float]) -> float:
    """``max_{alpha in [0, 1]} L(alpha) - max(L(0), L(1))`` over the grid points (0 when the loss never rises
    above the higher end point between them)."""
    a, z = np.asarray(alphas, float), np.asarray(losses, float)
    inside = (a >= -1e-12) & (a <= 1 + 1e-12)
    return float(z[inside].max() - max(z[grid_index(a, 0.0)], z[grid_index(a, 1.0)]))


def basin_checks(lines: Mapping[int, Surface], check: Mapping[str, Any], seeds: Sequence[int] | None = None
                 ) -> tuple[list[Comparison], dict[float, list[tuple[float, float]]], list[float]]:
    """The pass rule on the lines of ``seeds`` (default: all, in order): a paired comparison of the rises
    beyond the LB and the SB end per ``delta``, and a :func:`seed_check` of the barrier. Returns the
    comparisons, ``delta -> [(LB rise, SB rise)]`` and the barriers, per seed."""
    seeds = sorted(lines) if seeds is None else list(seeds)
    if sorted(lines) != sorted(seeds):
        raise ValueError(f"lines have seeds {sorted(lines)}, expected {sorted(seeds)}")
    a = np.asarray(lines[seeds[0]].xcoordinates, float)
    z = {s: np.asarray(lines[s]["train_loss"], float) for s in seeds}
    rises = {d: [end_rise(a, z[s], d) for s in seeds] for d in check["deltas"]}
    comps = [paired(f"delta {d:g}: loss rises faster beyond the LB end than beyond the SB end",
                    [r[0] for r in rises[d]], [r[1] for r in rises[d]], check["min_agree"]) for d in check["deltas"]]
    bars = [barrier(a, z[s]) for s in seeds]
    comps.append(seed_check(f"no barrier: max loss on [0, 1] - max(end points) <= {check['barrier_tol']:g}",
                            [check["barrier_tol"] - b for b in bars], check["min_agree"]))
    return comps, rises, bars


def lb_sb_basin_claim(lines: Mapping[int, Surface], lb_runs: Sequence[Mapping[str, Any]],
                      sb_runs: Sequence[Mapping[str, Any]], check: Mapping[str, Any], scale: str,
                      out_dir: str | Path, claim_id: str = "lb-to-sb-same-basin") -> ClaimResult:
    """``lines``: seed -> the interpolation surface from the LB end point (alpha 0) to its SB continuation
    (alpha 1)."""
    out_dir = Path(out_dir)
    seeds = [int(r["seed"]) for r in lb_runs]
    if [int(r["seed"]) for r in sb_runs] != seeds:
        raise ValueError(f"LB and SB runs must have the same seeds ({seeds})")
    comps, rises, bars = basin_checks(lines, check, seeds)
    a = np.asarray(lines[seeds[0]].xcoordinates, float)
    z = {s: np.asarray(lines[s]["train_loss"], float) for s in seeds}
    numbers: dict[str, float] = {}
    rows = []
    for i, s in enumerate(seeds):
        row = {"seed": s, "LB_train_loss": round(float(z[s][grid_index(a, 0.0)]), 5),
               "SB_train_loss": round(float(z[s][grid_index(a, 1.0)]), 5),
               "LB_test_acc_%": round(100 * lb_runs[i]["test_acc"], 2),
               "SB_test_acc_%": round(100 * sb_runs[i]["test_acc"], 2),
               "barrier": round(bars[i], 5)}
        if "distance" in lines[s].extra:
            row["distance_LB_SB"] = round(float(np.asarray(lines[s].extra["distance"]).ravel()[0]), 5)
        for d in check["deltas"]:
            lb_rise, sb_rise = rises[d][i]
            row[f"rise_LB@{d:g}"] = round(lb_rise, 5)
            row[f"rise_SB@{d:g}"] = round(sb_rise, 5)
            numbers[f"seed{s}.rise_lb_{d:g}"] = lb_rise
            numbers[f"seed{s}.rise_sb_{d:g}"] = sb_rise
        numbers[f"seed{s}.barrier"] = bars[i]
        rows.append(row)
    tables = write_table(rows, out_dir / "table", title=f"Large batch, then small batch: the line through both end "
                                                        f"points ({scale} scale)")

    data = {"scale": scale, "alpha": a,
            "seeds": [{"seed": s, "train_loss": z[s], "train_acc": lines[s]["train_acc"],
                       "test_loss": lines[s]["test_loss"] if "test_loss" in lines[s].values else None,
                       "test_acc": lines[s]["test_acc"] if "test_acc" in lines[s].values else None}
                      for s in seeds]}
    figs = figures.render(plot_lb_sb_basin, data, out_dir / "figure")

    d_last = check["deltas"][-1]
    measured = (f"rise beyond LB/SB at delta {d_last:g}: {pm([r[0] for r in rises[d_last]], digits=3)} / "
                f"{pm([r[1] for r in rises[d_last]], digits=3)}; barrier max {max(bars):.3g} "
                f"(train loss at LB {pm([z[s][grid_index(a, 0.0)] for s in seeds], digits=3)}, "
                f"SB {pm([z[s][grid_index(a, 1.0)] for s in seeds], digits=3)})")
    return ClaimResult(id=claim_id, scale=scale, verdict=all_of(c.verdict for c in comps), rule=check["rule"],
                       measured=measured, n_seeds=len(seeds), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes="; ".join(c.describe() for c in comps))


@figures.register_plot("sharpness.lb_sb_basin")
def plot_lb_sb_basin(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Loss (log) and accuracy on the line through the LB end point (alpha 0) and its SB continuation
    (alpha 1), train (solid) and test (dashed), one colour per seed; the segment between them shaded."""
    a = np.asarray(data["alpha"], float)
    fig, axes = figures.new_figure(ncols=2, width=10, height=3.6, layout="constrained")
    for i, line in enumerate(data["seeds"]):
        s, c = line["seed"], figures.COLORS[i % len(figures.COLORS)]
        axes[0].plot(a, np.asarray(line["train_loss"], float), "-", color=c, lw=1.2, label=f"seed {s} train")
        if line["test_loss"] is not None:
            axes[0].plot(a, np.asarray(line["test_loss"], float), "--", color=c, lw=0.8, label=f"seed {s} test")
        if line["test_acc"] is not None:
            axes[1].plot(a, 100 * np.asarray(line["test_acc"], float), "--", color=c, lw=0.8,
                         label=f"seed {s} test")
        axes[1].plot(a, 100 * np.asarray(line["train_acc"], float), "-", color=c, lw=1.2, label=f"seed {s} train")
    for ax in axes:
        ax.axvspan(0, 1, color="0.9", zorder=0)
        ax.axvline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8)
        ax.set_xlabel(r"$\alpha$: $(1-\alpha)\,\theta_{LB} + \alpha\,\theta_{SB}$")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("loss")
    axes[0].set_title("away from LB (alpha < 0) | between | away from SB (alpha > 1)", fontsize=9)
    axes[1].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"LB end point and its small-batch continuation ({data['scale']})")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- eigenvalue-ratio maps (Li et al. Fig. 7) -

@dataclass(frozen=True)
class RatioMapSettings(Settings):
    """An experiment's ``ratio_map`` block: Li et al.'s |lambda_min / lambda_max| map on a surface's plane."""

    x: Sequence[float] = (-1.0, 1.0, 7)
    y: Sequence[float] = (-1.0, 1.0, 7)
    n_train: int | None = 100
    tol: float = 1e-2
    max_iter: int | None = None
    bn: str = "running"
    chunk: int = 1000
    tile_rows: int = 1
    seed: int = 0



def ratio_map_of_run(run: Mapping[str, Any], model_path: str | os.PathLike, directions_path: str | os.PathLike,
                     settings: Mapping[str, Any], out: str | os.PathLike, *, progress: bool = False) -> Surface:
    """Li et al.'s map of ``|lambda_min / lambda_max|`` (:func:`losslab.core.hessian.eigenvalue_ratio_surface`)
    on the plane of an existing 2-D surface: the trained weights plus the surface's own directions
    (``directions_path``), the Hessian of the training loss on the fixed subset ``n_train``."""
    s = RatioMapSettings.of(settings)
    model, data = load_trained(run, model_path)
    loss = evaluation_loss(model, data, _loss_name(run), s.n_train, s.bn, s.chunk)
    d = load_directions(directions_path)
    if d.y is None:
        raise ValueError(f"{directions_path}: a ratio map needs two directions")
    provenance = {**d.provenance(), "checkpoint_sha256": lio.file_hash(model_path),
                  "directions_sha256": lio.file_hash(directions_path), "n_train": s.n_train}
    return eigenvalue_ratio_surface(out, loss, AffineSpan(flatten(model), d.x, d.y), grid(s.x), grid(s.y),
                                    tol=float(s.tol), max_iter=s.max_iter, seed=int(s.seed),
                                    provenance=provenance, tile_rows=int(s.tile_rows), progress=progress)


def ratio_map_data(label: str, m: Any) -> dict[str, Any]:
    """The plain data of one ratio map for a figure: label, coordinates, ratios and (format 2 on) the mask of
    the cells whose two ends were certified."""
    out = {"label": label, "x": m["xcoordinates"], "y": m["ycoordinates"], "ratio": m["ratio"]}
    if "certified" in m:
        out["certified"] = m["certified"]
    return out


def mark_uncertified(ax: Any, m: Mapping[str, Any]) -> int:
    """Cross out the cells of a drawn ratio map whose eigenvalues were not certified; their number."""
    if m.get("certified") is None:
        return 0
    bad = np.argwhere(np.asarray(m["certified"], float) < 1)
    xs, ys = np.asarray(m["x"], float), np.asarray(m["y"], float)
    if len(bad):
        ax.plot(xs[bad[:, 0]], ys[bad[:, 1]], "x", color="red", ms=7, mew=1.5, label="not certified")
    return len(bad)


def plot_ratio_maps(maps: Mapping[str, Surface], stem: str | os.PathLike, title: str = "") -> list[str]:
    """The maps side by side on one colour scale (:func:`draw_ratio_maps`), drawn through
    :func:`losslab.plots.figures.render` so that `snakemake figures` redraws them."""
    if not maps:
        raise ValueError("no ratio maps to plot")
    data = {"title": title, "maps": [ratio_map_data(k, m) for k, m in maps.items()]}
    return figures.render(draw_ratio_maps, data, stem)


@figures.register_plot("sharpness.ratio_maps")
def draw_ratio_maps(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """The maps side by side on one colour scale (0 to the largest finite ratio of any map), each titled
    with its mean ratio (cells whose eigenvalues were not certified crossed out in red): blue where the
    surface is convex, yellow where it has significant negative curvature (Li et al.'s Fig. 7)."""
    maps = data["maps"]
    if not maps:
        raise ValueError("no ratio maps to plot")
    ratios = [np.asarray(m["ratio"], float) for m in maps]
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    n = len(maps)
    fig, axes = figures.new_figure(ncols=n, width=3.4 * n + 0.8, height=3.4, squeeze=False, layout="constrained")
    mesh = None
    for ax, m, ratio in zip(axes[0], maps, ratios):
        xs, ys = np.asarray(m["x"], float), np.asarray(m["y"], float)
        mesh = ax.pcolormesh(xs, ys, ratio.T, shading="nearest", cmap=figures.SEQUENTIAL_CMAP,
                             vmin=0.0, vmax=vmax)
        ax.plot(0, 0, "k+", ms=8)
        ax.grid(False)
        bad = mark_uncertified(ax, m)
        ax.set_title(f"{m['label']}\nmean ratio {np.nanmean(ratio):.3f}"
                     + (f" ({bad} cells not certified, x)" if bad else ""), fontsize=9)
        ax.set_xlabel(r"$\alpha$")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel(r"$\beta$")
    fig.colorbar(mesh, ax=axes[0].tolist(), label=r"$|\lambda_{min} / \lambda_{max}|$ (shared scale)", shrink=0.85)
    if data["title"]:
        fig.suptitle(data["title"])
    return figures.save(fig, stem)


# ---------------------------------------------------------------- claim jobs ---------------------------------

def _spectra_job(job: ClaimJob, analysis) -> ClaimResult:
    """Hessian spectra of every variant's trained seeds (kept in the ``spectra`` output), then ``analysis``."""
    spectra_by_variant = {v: run_spectra(job.runs[v], d, job.settings) for v, d in job.dirs.items()}
    write_spectra(job.outputs["spectra"], spectra_by_variant)
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    return analysis(spectra_by_variant, runs, job.check, job.scale, job.out_dir, claim_id=job.id)


def run_hessian_outliers(job: ClaimJob) -> ClaimResult:
    return _spectra_job(job, hessian_outliers_claim)


def run_batchsize_outliers(job: ClaimJob) -> ClaimResult:
    return _spectra_job(job, batchsize_outliers_claim)


def run_wd_flip(job: ClaimJob) -> ClaimResult:
    """Train loss along raw and filter-normalized random lines through every trained seed of every variant
    (kept in the ``lines`` output), then the claim."""
    lines, alphas = {}, None
    for v, d in job.dirs.items():
        lines[v] = {}
        for seed, seed_dir in trained_seeds(d):
            alphas, lines[v][seed] = sharpness_lines(
                job.runs[v], seed_dir, seed, job.settings, Path(job.outputs["lines"]) / v / f"seed{seed}",
                progress=job.progress)
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    return wd_flip_claim(lines, alphas, runs, job.check, job.scale, job.out_dir, claim_id=job.id)


def run_lb_sb_basin(job: ClaimJob) -> ClaimResult:
    """The line from each seed's large-batch end point (input ``lb``) through its small-batch continuation
    (input ``sb``), kept in the ``lines`` output, then the claim."""
    lb_dir, sb_dir = job.inputs["lb"], job.inputs["sb"]
    lines = {seed: basin_line(job.params["run"], lb / MODEL, model_file(sb_dir, seed),
                              job.settings, Path(job.outputs["lines"]) / f"seed{seed}.h5", progress=job.progress)
             for seed, lb in trained_seeds(lb_dir)}
    return lb_sb_basin_claim(lines, read_runs(lb_dir), read_runs(sb_dir), job.check, job.scale, job.out_dir,
                             claim_id=job.id)


CLAIMS = {"hessian-bulk-outliers": run_hessian_outliers, "batchsize-larger-outliers": run_batchsize_outliers,
          "li-filter-normalization-wd-flip": run_wd_flip, "lb-to-sb-same-basin": run_lb_sb_basin}
