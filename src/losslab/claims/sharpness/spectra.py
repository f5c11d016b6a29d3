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
are :func:`losslab.core.surfaces.surface_1d` and :func:`losslab.core.surfaces.interpolation` files. The metrics
that the claims' pre-registered decisions (``decision`` in ``config/claims.yaml``) measure are small pure functions
(:func:`bulk_edge`, :func:`outliers_above_edge`, :func:`bulk_mass`, :func:`line_sharpness`, :func:`end_rise`,
:func:`barrier`; :func:`outlier_count`, the old rule's, is shown), each with its definition.
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
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, seed_mean
from losslab.pipeline.config import deep_merge
from losslab.core.data import Prepared
from losslab.core.directions import Directions, biasbn_mask, load_directions, random_directions
from losslab.core.hessian import SpectralDensity, TrainingLoss, eigenvalue_ratio_surface, lanczos, slq_density
from losslab.core.surfaces import grid
from losslab.claims.training import load_trained
from losslab.core.trainer import batching
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

BULK_EDGE_QUANTILE = 0.99  # the pre-registration's bulk edge: this quantile of the SLQ density's mass


def _lambda_max_certified(sp: Spectrum) -> bool:
    """Whether ``lambda_max`` met its tolerance (the first value's certificate; without one, ``converged``)."""
    return bool(sp.certified[0]) if sp.certified is not None and len(sp.certified) else bool(sp.converged)


def bulk_edge(density: SpectralDensity, quantile: float = BULK_EDGE_QUANTILE) -> float:
    """The ``quantile`` of the spectral mass: the smallest quadrature node at which the cumulative SLQ weight (the
    nodes and weights of every start vector, each run's weights averaged) reaches ``quantile``."""
    t = np.concatenate([np.asarray(x, float) for x in density.nodes])
    w = np.concatenate([np.asarray(x, float) / len(density.nodes) for x in density.weights])
    order = np.argsort(t)
    t, c = t[order], np.cumsum(w[order])
    return float(t[min(int(np.searchsorted(c, quantile * c[-1])), len(t) - 1)])


def outliers_above_edge(sp: Spectrum, quantile: float = BULK_EDGE_QUANTILE) -> float:
    """The pre-registered outlier count: the Lanczos eigenvalues above :func:`bulk_edge`. NaN when it cannot be
    measured: no density, Lanczos not converged, or every one of the ``top_k`` eigenvalues lies above the edge
    (the count is censored at ``top_k``: the true count is at least that)."""
    n = count_above_edge(sp, quantile)
    return math.nan if math.isnan(n) or n >= len(sp.top) else n


def count_above_edge(sp: Spectrum, quantile: float = BULK_EDGE_QUANTILE) -> float:
    """The Lanczos eigenvalues above :func:`bulk_edge`, censored or not (at most ``top_k``); NaN without a density
    or a converged Lanczos. The number a table and the regression test keep: unlike the decision's
    :func:`outliers_above_edge` it does not turn NaN when a platform's low bits move it onto the censoring bound."""
    if sp.density is None or not sp.converged:
        return math.nan
    return float(np.sum(np.asarray(sp.top, float) > bulk_edge(sp.density, quantile)))


def outlier_measures(spectra: Mapping[str, Sequence[Spectrum]], check: Mapping[str, Any]
                     ) -> dict[str, dict[str, Any]]:
    """Per variant (in order of class count): ``k``, the gap-rule outlier counts (:func:`outlier_count`, shown),
    the outliers above the bulk edge (:func:`outliers_above_edge`, the decision's), the edges and the bulk masses
    (NaN where lambda_max was not certified or there is no density) of its seeds."""
    out = {}
    for v in sorted(spectra, key=lambda v: spectra[v][0].num_classes):
        out[v] = {"k": spectra[v][0].num_classes,
                  "outliers": [outlier_count(sp.top, check["gap_floor"]) for sp in spectra[v]],
                  "above_edge": [outliers_above_edge(sp) for sp in spectra[v]],
                  "counted_above_edge": [count_above_edge(sp) for sp in spectra[v]],
                  "edge": [bulk_edge(sp.density) if sp.density is not None else math.nan for sp in spectra[v]],
                  "bulk_mass": [bulk_mass(sp.density, sp.lambda_max, check["bulk_rel"])
                                if sp.density is not None and _lambda_max_certified(sp) else math.nan
                                for sp in spectra[v]]}
    return out


def outlier_effects(spectra: Mapping[str, Sequence[Spectrum]], measures: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, Measured]:
    """The decision's parts: ``bulk_mass`` (every seed x class count), ``outliers_track_classes`` (outliers
    above the edge at k = 10 minus at k = 3, paired by seed; NaN when either class count is missing or a
    count is censored)."""
    by_k = {m["k"]: v for v, m in measures.items()}
    masses = [x for m in measures.values() for x in m["bulk_mass"]]
    if 10 in by_k and 3 in by_k:
        hi, lo = by_k[10], by_k[3]
        seeds_lo = {sp.seed: n for sp, n in zip(spectra[lo], measures[lo]["above_edge"])}
        diffs = [n - seeds_lo.get(sp.seed, math.nan) for sp, n in zip(spectra[hi], measures[hi]["above_edge"])]
    else:
        diffs = [math.nan]
    return {"bulk_mass": Measured(samples=masses), "outliers_track_classes": Measured(samples=diffs)}


def _run_regime(label: str, runs: Sequence[Mapping[str, Any]]) -> str:
    """One arm's part of a ``regime`` line: optimizer steps, train loss, train and test accuracy (seed means)."""
    steps = sorted({_steps(r) for r in runs})
    return (f"{label}: {steps[0] if len(steps) == 1 else pm(steps, digits=0)} steps, train loss "
            f"{mean_std([r.get('train_loss', math.nan) for r in runs])[0]:.3g}, train/test acc "
            f"{100 * mean_std([r['train_acc'] for r in runs])[0]:.1f}/"
            f"{100 * mean_std([r['test_acc'] for r in runs])[0]:.1f}%")


def hessian_outliers_claim(spectra: Mapping[str, Sequence[Spectrum]], runs: Runs, check: Mapping[str, Any],
                           scale: str, out_dir: str | Path, claim_id: str = "hessian-bulk-outliers", *,
                           decision: Mapping[str, Any]) -> ClaimResult:
    """``spectra`` and ``runs``: variant -> per seed (same order); each variant is one class count ``k``
    (from its spectra's ``num_classes``). Decided by the claim's pre-registered ``decision``: the bulk mass of
    every seed and class count, and the outliers above the bulk edge at k = 10 minus at k = 3."""
    out_dir = Path(out_dir)
    measured_by = outlier_measures(spectra, check)
    by_k = list(measured_by)
    lo, hi = check["window"]
    rows, numbers = [], {}
    for v in by_k:
        m = measured_by[v]
        k, counts, masses = m["k"], m["outliers"], m["bulk_mass"]
        for sp, n_out, mass, n_edge, edge in zip(spectra[v], counts, masses, m["counted_above_edge"], m["edge"]):
            tag = f"k{k}.seed{sp.seed}"
            numbers[f"{tag}.lambda_max"] = sp.lambda_max
            numbers[f"{tag}.outliers"] = float(n_out)
            numbers[f"{tag}.bulk_mass"] = mass
            numbers[f"{tag}.outliers_above_edge"] = n_edge
            numbers[f"{tag}.bulk_edge"] = edge
        top_mean = np.mean([sp.top for sp in spectra[v]], axis=0)
        rows.append({
            "classes": k, "parameters": spectra[v][0].num_parameters, "hessian_samples": spectra[v][0].n_samples,
            "lambda_max": pm([sp.lambda_max for sp in spectra[v]], digits=4),
            "outliers_per_seed": " ".join(map(str, counts)), "window": f"[{k + lo}, {k + hi}]",
            "above_edge_per_seed": " ".join("censored" if math.isnan(n) else str(int(n)) for n in m["above_edge"]),
            "top_k": len(spectra[v][0].top),
            "bulk_mass_per_seed": " ".join(f"{x:.3f}" for x in masses),
            "top_k+3_over_lambda_max (seed mean)": " ".join(f"{x:.3g}" for x in (top_mean / top_mean[0])[:k + 3]),
            "train_loss": pm([r.get("train_loss", math.nan) for r in runs[v]], digits=4),
            "steps": pm([_steps(r) for r in runs[v]], digits=0),
            "train_acc_%": pm([r["train_acc"] for r in runs[v]], 100),
            "test_acc_%": pm([r["test_acc"] for r in runs[v]], 100),
            "certified_seeds": sum(bool(sp.converged) for sp in spectra[v]),
            "seeds": len(spectra[v]),
        })
    tables = write_table(rows, out_dir / "table", title=f"Hessian bulk and outliers by class count ({scale} scale)")

    data = {"scale": scale, "gap_floor": check["gap_floor"], "bulk_rel": check["bulk_rel"],
            "spectra": [[_spectrum_data(sp) for sp in spectra[v]] for v in by_k]}
    figs = figures.render(plot_hessian_outliers, data, out_dir / "figure")

    cd = decide_claim(decision, outlier_effects(spectra, measured_by))
    measured = "; ".join(
        f"k={m['k']}: outliers above the edge "
        f"{'/'.join('c' if math.isnan(n) else str(int(n)) for n in m['above_edge'])} (c: censored at top_k), "
        f"gap rule {'/'.join(map(str, m['outliers']))}, bulk mass {np.nanmin(m['bulk_mass'] + [math.inf]):.3f} (min)"
        for m in measured_by.values())
    regime = "; ".join(_run_regime(f"k={measured_by[v]['k']}", runs[v]) for v in by_k)
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=min(len(s) for s in spectra.values()), numbers=numbers,
                                     figures=figs, tables=tables, regime=regime)


# ---------------------------------------------------------------- claim: batch size and outliers ----------

def _steps(metrics: Mapping[str, Any]) -> int:
    """The optimizer steps a run was planned for: its recipe's epochs times its steps per epoch
    (:func:`losslab.core.trainer.batching` of its training-set size and batch)."""
    return int(metrics["recipe"]["epochs"]) * batching(int(metrics["train_size"]), metrics["recipe"]["batch_size"])[1]


@dataclass(frozen=True)
class BatchArms:
    """The arms of the batch-size experiment: the small batch, the large batch trained for as many epochs
    (``raw``, shown), the large batch trained for as many optimizer steps (``matched``, the decision's
    comparison; None when the scale trains no such arm) and any other larger-batch arm (shown)."""

    small: str
    raw: str | None
    matched: str | None
    other: tuple[str, ...] = ()

    def large(self) -> list[str]:
        return [v for v in (self.raw, self.matched) if v is not None] + list(self.other)


def batch_arms(runs: Runs) -> BatchArms:
    """The roles of the variants, by their batch, epochs and optimizer steps: the smallest batch is ``small``;
    of the larger batches, the first with as many steps as ``small`` is ``matched``, the first with as many
    epochs ``raw``; the rest (e.g. an arm whose steps a scale override changed) are ``other``."""
    if len(runs) < 2:
        raise ValueError(f"need a small-batch and a large-batch variant, have {sorted(runs)}")
    small = min(runs, key=lambda v: batch_of(runs[v][0]))
    larger = [v for v in runs if v != small]
    if any(batch_of(runs[v][0]) <= batch_of(runs[small][0]) for v in larger):
        raise ValueError(f"variants {sorted(runs)}: one batch must be smaller than all others")
    matched = [v for v in larger if _steps(runs[v][0]) == _steps(runs[small][0])]
    raw = [v for v in larger if int(runs[v][0]["recipe"]["epochs"]) == int(runs[small][0]["recipe"]["epochs"])
           and v not in matched]
    chosen = matched[:1] + raw[:1]
    other = tuple(v for v in larger if v not in chosen)
    if other:
        log.warning("batch-size claim: variants %s match the small batch's (%s) steps and epochs in no single "
                    "role; shown, not decided", list(other), small)
    return BatchArms(small, raw[0] if raw else None, matched[0] if matched else None, other)


def _lambda_max(spectra: Sequence[Spectrum]) -> list[float]:
    """Per-seed lambda_max; NaN where Lanczos did not converge (the comparison becomes inconclusive)."""
    return [sp.lambda_max if sp.converged else math.nan for sp in spectra]


def _log10_ratio(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """``log10(num / den)`` per seed; NaN where either is not a positive finite number."""
    return [math.log10(a / b) if a > 0 and b > 0 and math.isfinite(a / b) else math.nan for a, b in zip(num, den)]


def batch_effects(spectra: Mapping[str, Sequence[Spectrum]], runs: Runs, arms: BatchArms
                  ) -> dict[str, dict[str, list[float]]]:
    """Per large-batch arm: ``lambda_max`` (log10 of the large over the small batch's, paired by seed) and
    ``loss_normalised`` (the same of lambda_max / final train loss)."""
    seeds = [sp.seed for sp in spectra[arms.small]]
    out = {}
    for v in arms.large():
        if [sp.seed for sp in spectra[v]] != seeds:
            raise ValueError(f"variants {arms.small!r} and {v!r} have different seeds")
        lam_l, lam_s = _lambda_max(spectra[v]), _lambda_max(spectra[arms.small])
        loss_l = [float(r.get("train_loss", math.nan)) for r in runs[v]]
        loss_s = [float(r.get("train_loss", math.nan)) for r in runs[arms.small]]
        out[v] = {"lambda_max": _log10_ratio(lam_l, lam_s),
                  "loss_normalised": _log10_ratio([a / b if b > 0 else math.nan for a, b in zip(lam_l, loss_l)],
                                                  [a / b if b > 0 else math.nan for a, b in zip(lam_s, loss_s)])}
    return out


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
                             scale: str, out_dir: str | Path, claim_id: str = "batchsize-larger-outliers", *,
                             decision: Mapping[str, Any]) -> ClaimResult:
    """``log10`` of the full-batch over the small-batch ``lambda_max``, paired by seed, decided on the
    step-matched arm (:func:`batch_arms`; inconclusive without one); the equal-epoch arm and the loss-normalised
    measure are shown beside it."""
    out_dir = Path(out_dir)
    arms = batch_arms(runs)
    order = [arms.small, *arms.large()]
    role = {arms.small: "small batch", arms.raw: "large batch, equal epochs",
            arms.matched: "large batch, equal steps (decides)", **{v: "large batch, other (shown)" for v in arms.other}}
    seeds = [sp.seed for sp in spectra[arms.small]]
    effects = batch_effects(spectra, runs, arms)

    def lam(v: str) -> list[float]:
        return _lambda_max(spectra[v])

    rows, numbers = [], {}
    for v in order:
        for sp, r in zip(spectra[v], runs[v]):
            numbers[f"{v}.seed{sp.seed}.lambda_max"] = sp.lambda_max
            rows.append({"variant": v, "role": role[v], "batch": batch_of(r), "seed": sp.seed,
                         "epochs": int(r["recipe"]["epochs"]), "steps": _steps(r),
                         "lambda_max": round(sp.lambda_max, 5),
                         "top5": " ".join(f"{x:.4g}" for x in sp.top[:5]),
                         "train_loss": round(float(r["train_loss"]), 5), "train_acc_%": round(100 * r["train_acc"], 2),
                         "test_acc_%": round(100 * r["test_acc"], 2), "converged": sp.converged})
        numbers[f"{v}.lambda_max_mean"] = seed_mean(lam(v))
    for v, eff in effects.items():
        key = "matched" if v == arms.matched else "raw" if v == arms.raw else v
        numbers[f"{key}.log10_lambda_max_ratio_mean"] = seed_mean(eff["lambda_max"])
        numbers[f"{key}.log10_loss_normalised_ratio_mean"] = seed_mean(eff["loss_normalised"])
    tables = write_table(rows, out_dir / "table", title=f"Top Hessian eigenvalues by batch size ({scale} scale)")

    data = {"scale": scale, "seed": seeds[0], "batches": [batch_of(runs[v][0]) for v in order],
            "labels": [f"batch {batch_of(runs[v][0])}, {_steps(runs[v][0])} steps" for v in order],
            "lambda_max": [lam(v) for v in order],
            "tops": [np.array([sp.top for sp in spectra[v]]) for v in order],
            "first": [_spectrum_data(spectra[v][0]) for v in order]}
    figs = figures.render(plot_batchsize_outliers, data, out_dir / "figure")

    decided = effects[arms.matched]["lambda_max"] if arms.matched else [math.nan]
    cd = decide_claim(decision, {"lambda_max": Measured(samples=decided)})
    shown = [f"{role[v]} ({v}): log10 lambda_max ratio "
             f"{pm(eff['lambda_max'], digits=3)}, loss-normalised {pm(eff['loss_normalised'], digits=3)}"
             for v, eff in effects.items()]
    notes = "; ".join(([] if arms.matched else ["no matched comparison: this scale trains no step-matched "
                                                "large-batch arm"]) + shown)
    measured = (f"lambda_max batch {batch_of(runs[arms.small][0])} {pm(lam(arms.small), digits=3)} vs "
                + ", ".join(f"batch {batch_of(runs[v][0])} x {_steps(runs[v][0])} steps {pm(lam(v), digits=3)}"
                            for v in arms.large()))
    regime = "; ".join(_run_regime(f"{v} (batch {batch_of(runs[v][0])})", runs[v]) for v in order)
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


@figures.register_plot("sharpness.batchsize_outliers")
def plot_batchsize_outliers(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """lambda_max of every arm (small batch first) of each seed (paired), the top eigenvalues (mean ± std over
    seeds) and the spectral densities of one seed."""
    batches = data["batches"]
    labels = data.get("labels") or [f"batch {b}" for b in batches]
    n = len(batches)
    fig, axes = figures.new_figure(ncols=3, width=11, height=3.5, layout="constrained")
    ax = axes[0]
    for vals in zip(*data["lambda_max"]):
        ax.plot(range(n), vals, "o-", color="0.4", ms=4, lw=0.8)
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_xlim(-0.4, n - 0.6)
    ax.set_yscale("log")
    ax.set_ylabel(r"$\lambda_{max}$")
    ax.set_title("per seed (paired)", fontsize=9)
    ax = axes[1]
    for col in range(n):
        tops = np.asarray(data["tops"][col], float)
        idx = np.arange(1, tops.shape[1] + 1)
        ax.errorbar(idx, tops.mean(0), yerr=tops.std(0), fmt="o-", color=figures.COLORS[col], capsize=3,
                    label=labels[col])
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel(r"$\lambda_i$ (mean ± std over seeds)")
    ax.legend(fontsize=7)
    ax = axes[2]
    for col in range(n):
        _draw_density(ax, data["first"][col], figures.COLORS[col], labels[col])
    ax.set_xlabel(r"eigenvalue $\lambda$")
    ax.set_ylabel("spectral density (SLQ)")
    ax.set_title(f"seed {data['seed']}", fontsize=9)
    ax.legend(fontsize=7)
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


def wd_flip_measures(lines: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], alphas: Sequence[float],
                     runs: Runs, check: Mapping[str, Any]
                     ) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], list[float]],
                                dict[str, list[float]], dict[tuple[str, bool], str]]:
    """Per seed: the sharpness ``(variant, norm) -> [S]`` (:func:`line_sharpness` at ``check["radius"]``), the
    loss-normalised sharpness ``S / L(theta)`` (L at alpha 0 of the same lines), the test errors
    ``variant -> [err]`` and the roles ``(SB/LB, weight decay on) -> variant``."""
    roles = _four_roles(runs)
    seeds = [r["seed"] for r in runs[roles[("SB", False)]]]
    for v, r in runs.items():
        if [m["seed"] for m in r] != seeds or sorted(lines[v]) != sorted(seeds):
            raise ValueError(f"variant {v!r}: seeds differ from {seeds}")
    radius, a = float(check["radius"]), np.asarray(alphas, float)
    i0 = grid_index(a, 0.0)
    sharp = {(v, norm): [line_sharpness(alphas, lines[v][s][norm], radius) for s in seeds]
             for v in runs for norm in LINE_NORMS}
    centre = {(v, norm): [float(np.mean(np.atleast_2d(np.asarray(lines[v][s][norm], float))[:, i0])) for s in seeds]
              for v in runs for norm in LINE_NORMS}
    normalised = {key: [x / c if c > 0 else math.nan for x, c in zip(sharp[key], centre[key])] for key in sharp}
    return sharp, normalised, {v: _errors(runs[v]) for v in runs}, roles


WD_LABELS = {False: "wd0", True: "wd"}


def wd_flip_effects(normalised: Mapping[tuple[str, str], Sequence[float]], err: Mapping[str, Sequence[float]],
                    roles: Mapping[tuple[str, bool], str]) -> dict[str, Any]:
    """The decision's parts, per seed, on the loss-normalised sharpness (its ``comparison``): ``raw_flip``
    (log10 raw LB/SB at WD 0 minus at WD on), ``filter_normalized_lb_sharper`` and ``sb_generalizes_better``
    (ln LB/SB test error) per weight decay (labels ``wd0``, ``wd``)."""
    def ratio(norm: str, wd: bool) -> list[float]:
        return _log10_ratio(normalised[(roles[("LB", wd)], norm)], normalised[(roles[("SB", wd)], norm)])

    flip = [a - b for a, b in zip(ratio("raw", False), ratio("raw", True))]
    gen = {WD_LABELS[wd]: [math.log(a / b) if a > 0 and b > 0 else math.nan
                           for a, b in zip(err[roles[("LB", wd)]], err[roles[("SB", wd)]])] for wd in (False, True)}
    return {"raw_flip": Measured(samples=flip),
            "filter_normalized_lb_sharper": {WD_LABELS[wd]: Measured(samples=ratio("filter", wd))
                                             for wd in (False, True)},
            "sb_generalizes_better": {k: Measured(samples=v) for k, v in gen.items()}}


def wd_flip_claim(lines: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], alphas: Sequence[float],
                  runs: Runs, check: Mapping[str, Any], scale: str, out_dir: str | Path,
                  claim_id: str = "li-filter-normalization-wd-flip", *, decision: Mapping[str, Any]) -> ClaimResult:
    """``lines``: variant -> seed -> norm (raw / filter) -> ``losses[j, i]`` along direction ``j`` at
    ``alphas[i]``. Decided by the pre-registered ``decision`` on the loss-normalised sharpness (raw shown)."""
    out_dir = Path(out_dir)
    sharp, normalised, err, roles = wd_flip_measures(lines, alphas, runs, check)
    seeds = [r["seed"] for r in runs[roles[("SB", False)]]]
    radius = float(check["radius"])
    wd_name = {False: "WD 0", True: "WD on"}

    rows, numbers = [], {}
    for (b, wd), v in sorted(roles.items(), key=lambda kv: (kv[0][1], kv[0][0] == "LB")):
        r0 = runs[v][0]
        for norm in LINE_NORMS:
            numbers[f"{v}.sharpness_{norm}_mean"] = seed_mean(sharp[(v, norm)])
            numbers[f"{v}.sharpness_{norm}_normalised_mean"] = seed_mean(normalised[(v, norm)])
        numbers[f"{v}.test_err_mean"] = seed_mean(err[v])
        rows.append({"variant": v, "batch": batch_of(r0), "weight_decay": r0["recipe"]["weight_decay"],
                     "test_err_%": pm(err[v], 100), "train_acc_%": pm([r["train_acc"] for r in runs[v]], 100),
                     "train_loss": pm([r.get("train_loss", math.nan) for r in runs[v]], digits=4),
                     "steps": pm([_steps(r) for r in runs[v]], digits=0),
                     f"raw_sharpness@{radius:g}": pm(sharp[(v, 'raw')], digits=4),
                     f"filter_sharpness@{radius:g}": pm(sharp[(v, 'filter')], digits=4),
                     f"raw_sharpness/loss@{radius:g}": pm(normalised[(v, 'raw')], digits=4),
                     f"filter_sharpness/loss@{radius:g}": pm(normalised[(v, 'filter')], digits=4),
                     "seeds": len(seeds)})
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

    cd = decide_claim(decision, wd_flip_effects(normalised, err, roles))
    raw_effects = wd_flip_effects(sharp, err, roles)
    shown = "raw (not loss-normalised) sharpness: " + ", ".join(
        f"{name}{' ' + label if label else ''} {pm(m.samples, digits=3)}"
        for name in ("raw_flip", "filter_normalized_lb_sharper")
        for label, m in (raw_effects[name].items() if isinstance(raw_effects[name], Mapping)
                         else [("", raw_effects[name])]))
    measured = "; ".join(
        f"{wd_name[wd]}: err SB/LB {100 * mean_std(err[roles[('SB', wd)]])[0]:.1f}/"
        f"{100 * mean_std(err[roles[('LB', wd)]])[0]:.1f}%, raw S {mean(roles[('SB', wd)], 'raw'):.3g}/"
        f"{mean(roles[('LB', wd)], 'raw'):.3g}, filter S {mean(roles[('SB', wd)], 'filter'):.3g}/"
        f"{mean(roles[('LB', wd)], 'filter'):.3g}" for wd in (False, True))
    regime = "; ".join(_run_regime(f"{b} {wd_name[wd]} (batch {batch_of(runs[roles[(b, wd)]][0])})",
                                   runs[roles[(b, wd)]]) for b, wd in order)
    return ClaimResult.from_decision(cd, notes=shown, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


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


BASIN_DELTA = 0.5  # the pre-registration's steepness part: the rises at alpha = -0.5 and 1.5


def basin_measures(lines: Mapping[int, Surface], deltas: Sequence[float], seeds: Sequence[int] | None = None
                   ) -> tuple[dict[float, list[tuple[float, float]]], list[float], dict[str, list[float]]]:
    """On the lines of ``seeds`` (default: all, in order): ``delta -> [(LB rise, SB rise)]`` (:func:`end_rise`,
    shown for every ``delta`` and :data:`BASIN_DELTA`), the barriers (:func:`barrier`) and the decision's
    effects per seed: ``lb_end_steeper`` (ln of the LB over the SB rise at :data:`BASIN_DELTA`, each rise over
    its end point's loss: the loss-normalised comparison), ``lb_end_steeper_raw`` (the same without the
    normalisation, shown) and ``no_barrier`` (minus the barrier over the higher end point's loss). A log of a
    rise that is not positive is NaN."""
    seeds = sorted(lines) if seeds is None else list(seeds)
    if sorted(lines) != sorted(seeds):
        raise ValueError(f"lines have seeds {sorted(lines)}, expected {sorted(seeds)}")
    a = np.asarray(lines[seeds[0]].xcoordinates, float)
    z = {s: np.asarray(lines[s]["train_loss"], float) for s in seeds}
    rises = {d: [end_rise(a, z[s], d) for s in seeds] for d in dict.fromkeys([*deltas, BASIN_DELTA])}
    bars = [barrier(a, z[s]) for s in seeds]
    ends = [(float(z[s][grid_index(a, 0.0)]), float(z[s][grid_index(a, 1.0)])) for s in seeds]

    def ln_ratio(x: float, y: float) -> float:
        return math.log(x / y) if x > 0 and y > 0 and math.isfinite(x / y) else math.nan

    raw = [ln_ratio(lb, sb) for lb, sb in rises[BASIN_DELTA]]
    norm = [ln_ratio(lb / l0 if l0 > 0 else math.nan, sb / l1 if l1 > 0 else math.nan)
            for (lb, sb), (l0, l1) in zip(rises[BASIN_DELTA], ends)]
    no_bar = [-b / max(l0, l1) if max(l0, l1) > 0 else math.nan for b, (l0, l1) in zip(bars, ends)]
    return rises, bars, {"lb_end_steeper": norm, "lb_end_steeper_raw": raw, "no_barrier": no_bar}


def lb_sb_basin_claim(lines: Mapping[int, Surface], lb_runs: Sequence[Mapping[str, Any]],
                      sb_runs: Sequence[Mapping[str, Any]], check: Mapping[str, Any], scale: str,
                      out_dir: str | Path, claim_id: str = "lb-to-sb-same-basin", *,
                      decision: Mapping[str, Any]) -> ClaimResult:
    """``lines``: seed -> the interpolation surface from the LB end point (alpha 0) to its SB continuation
    (alpha 1). Decided by the pre-registered ``decision`` (the steepness part on the loss-normalised rises)."""
    out_dir = Path(out_dir)
    seeds = [int(r["seed"]) for r in lb_runs]
    if [int(r["seed"]) for r in sb_runs] != seeds:
        raise ValueError(f"LB and SB runs must have the same seeds ({seeds})")
    rises, bars, effects = basin_measures(lines, check["deltas"], seeds)
    a = np.asarray(lines[seeds[0]].xcoordinates, float)
    z = {s: np.asarray(lines[s]["train_loss"], float) for s in seeds}
    numbers: dict[str, float] = {}
    rows = []
    for i, s in enumerate(seeds):
        row = {"seed": s, "LB_train_loss": round(float(z[s][grid_index(a, 0.0)]), 5),
               "SB_train_loss": round(float(z[s][grid_index(a, 1.0)]), 5),
               "LB_steps": _steps(lb_runs[i]), "SB_steps": _steps(sb_runs[i]),
               "LB_train_acc_%": round(100 * lb_runs[i]["train_acc"], 2),
               "SB_train_acc_%": round(100 * sb_runs[i]["train_acc"], 2),
               "LB_test_acc_%": round(100 * lb_runs[i]["test_acc"], 2),
               "SB_test_acc_%": round(100 * sb_runs[i]["test_acc"], 2),
               "barrier": round(bars[i], 5)}
        if "distance" in lines[s].extra:
            row["distance_LB_SB"] = round(float(np.asarray(lines[s].extra["distance"]).ravel()[0]), 5)
        for d in rises:
            lb_rise, sb_rise = rises[d][i]
            row[f"rise_LB@{d:g}"] = round(lb_rise, 5)
            row[f"rise_SB@{d:g}"] = round(sb_rise, 5)
            numbers[f"seed{s}.rise_lb_{d:g}"] = lb_rise
            numbers[f"seed{s}.rise_sb_{d:g}"] = sb_rise
        for name, values in effects.items():
            row[name] = round(values[i], 5)
            numbers[f"seed{s}.{name}"] = values[i]
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

    cd = decide_claim(decision, {"lb_end_steeper": Measured(samples=effects["lb_end_steeper"]),
                                 "no_barrier": Measured(samples=effects["no_barrier"])})
    d = BASIN_DELTA
    measured = (f"rise beyond LB/SB at delta {d:g}: {pm([r[0] for r in rises[d]], digits=3)} / "
                f"{pm([r[1] for r in rises[d]], digits=3)}; barrier max {max(bars):.3g} "
                f"(train loss at LB {pm([z[s][grid_index(a, 0.0)] for s in seeds], digits=3)}, "
                f"SB {pm([z[s][grid_index(a, 1.0)] for s in seeds], digits=3)})")
    notes = f"raw (not loss-normalised) ln rise ratio at delta {d:g}: {pm(effects['lb_end_steeper_raw'], digits=3)}"
    regime = "; ".join(_run_regime(label, r) for label, r in (("LB", lb_runs), ("SB continuation", sb_runs)))
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


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

# ---------------------------------------------------------------- the outliers and the Gauss-Newton term -----

@dataclass(frozen=True, eq=False)
class GaussNewtonTop:
    """The top ``k`` eigenvalues (Lanczos) of one network's training-loss Hessian and of its Gauss-Newton term, with
    whether both were certified (:func:`losslab.core.hessian.lanczos`)."""

    variant: str
    seed: int
    k: int
    hessian: np.ndarray
    gauss_newton: np.ndarray
    certified: bool
    products: int

    @property
    def relative_difference(self) -> float:
        """``max_i |lambda_i(H) - lambda_i(G)| / |lambda_i(H)|`` over the top ``k``; NaN when either set is not
        certified (an uncertified eigenvalue decides nothing)."""
        if not self.certified:
            return math.nan
        h, g = self.hessian[: self.k], self.gauss_newton[: self.k]
        return float(np.max(np.abs(h - g) / np.abs(h)))


def gauss_newton_top(loss: TrainingLoss, k: int, settings: Mapping[str, Any], *, variant: str = "",
                     seed: int = 0) -> GaussNewtonTop:
    """The top ``k`` eigenvalues of ``loss``'s Hessian and Gauss-Newton matrix at the model's weights, each by
    Lanczos to the spectrum settings' ``tol`` (relative to the largest) from the same start."""
    s = SpectrumSettings.of(settings)
    tops = [lanczos(op, k, "largest", tol=float(s.tol), relative_to="norm", max_iter=s.max_iter, seed=int(s.seed))
            for op in (loss.hessian(), loss.gauss_newton())]
    return GaussNewtonTop(variant, seed, k, np.asarray(tops[0].values, float), np.asarray(tops[1].values, float),
                          bool(tops[0].converged and tops[1].converged), tops[0].products + tops[1].products)


def gauss_newton_claim(tops: Sequence[GaussNewtonTop], runs: Runs, scale: str, out_dir: str | os.PathLike,
                       decision: Mapping[str, Any], claim_id: str = "gauss-newton-outliers") -> ClaimResult:
    """Whether the Hessian's top ``k`` eigenvalues (``k`` = the classes) are those of its Gauss-Newton term, per
    network, decided by the pre-registered ``outliers_are_gauss_newton`` (minus the largest relative difference)."""
    out_dir = Path(out_dir)
    diffs = [t.relative_difference for t in tops]
    cd = decide_claim(decision, {"outliers_are_gauss_newton": Measured(samples=[-d for d in diffs])})
    rows, numbers = [], {}
    for t, d in zip(tops, diffs):
        numbers[f"{t.variant}.seed{t.seed}.relative_difference"] = d
        numbers[f"{t.variant}.seed{t.seed}.lambda_max_hessian"] = float(t.hessian[0])
        numbers[f"{t.variant}.seed{t.seed}.lambda_max_gauss_newton"] = float(t.gauss_newton[0])
        rows.append({"network": t.variant, "classes": t.k, "seed": t.seed,
                     "hessian_top": " ".join(f"{v:.4g}" for v in t.hessian[: t.k]),
                     "gauss_newton_top": " ".join(f"{v:.4g}" for v in t.gauss_newton[: t.k]),
                     "max_relative_difference": f"{d:.3g}", "certified": t.certified, "products": t.products})
    tables = write_table(rows, out_dir / "table", title=f"Top eigenvalues of the Hessian and of its Gauss-Newton term "
                         f"({scale} scale), k = the number of classes")
    data = {"scale": scale, "networks": [{"variant": t.variant, "seed": t.seed, "k": t.k,
                                          "hessian": t.hessian[: t.k].tolist(),
                                          "gauss_newton": t.gauss_newton[: t.k].tolist(), "difference": d}
                                         for t, d in zip(tops, diffs)],
            "margin": -float(next(p["margin"] for p in decision["parts"]))}
    figs = figures.render(plot_gauss_newton, data, out_dir / "figure")
    finite = [d for d in diffs if d == d]
    by_k = {}
    for t, d in zip(tops, diffs):
        by_k.setdefault(t.k, []).append(d)
    measured = (f"largest relative difference of the top-k eigenvalues, Hessian vs Gauss-Newton: median "
                f"{np.median(finite) if finite else math.nan:.3g}, max {max(finite) if finite else math.nan:.3g} over "
                f"{len(finite)}/{len(tops)} certified networks; "
                + ", ".join(f"k={k}: {np.nanmax(v):.3g}" for k, v in sorted(by_k.items())))
    regime = "; ".join(_run_regime(v, rs) for v, rs in runs.items())
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured, n_seeds=len(tops),
                                     numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("sharpness.gauss_newton")
def plot_gauss_newton(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Left: every network's top-k Gauss-Newton eigenvalues against the Hessian's (log-log, the diagonal drawn);
    right: each network's largest relative difference by class count, with the pre-registered bound."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    ks = sorted({n["k"] for n in data["networks"]})
    for i, k in enumerate(ks):
        nets = [n for n in data["networks"] if n["k"] == k]
        h = np.concatenate([n["hessian"] for n in nets])
        g = np.concatenate([n["gauss_newton"] for n in nets])
        ax1.loglog(h, g, "o", ms=4, color=figures.COLORS[i], label=f"k = {k} classes")
        ax2.plot(np.full(len(nets), i) + np.linspace(-0.1, 0.1, len(nets)), [n["difference"] for n in nets], "o",
                 color=figures.COLORS[i])
    lims = [v for n in data["networks"] for v in n["hessian"] + n["gauss_newton"] if v > 0]
    if lims:
        ax1.plot([min(lims), max(lims)], [min(lims), max(lims)], "k--", lw=0.8, label="equal")
    ax1.set_xlabel("Hessian eigenvalue")
    ax1.set_ylabel("Gauss-Newton eigenvalue")
    ax1.set_title("top-k eigenvalues, one point each")
    ax1.legend()
    ax2.axhline(data["margin"], color="k", ls=":", lw=0.8, label=f"bound {data['margin']:g}")
    ax2.set_xticks(range(len(ks)), [f"k = {k}" for k in ks])
    ax2.set_ylabel("max relative difference (top k)")
    ax2.set_yscale("log")
    ax2.set_title(f"{data['scale']}: Hessian vs Gauss-Newton, per network")
    ax2.legend()
    return figures.save(fig, stem)


def run_gauss_newton(job: ClaimJob) -> ClaimResult:
    """The top-k eigenvalues (k = the classes) of the Hessian and of its Gauss-Newton term for every trained seed of
    every variant, on the experiment's spectrum settings, then the claim."""
    s = SpectrumSettings.of(job.settings)
    tops = []
    for v, d in job.dirs.items():
        for seed, seed_dir in trained_seeds(d):
            model, data = load_trained(job.runs[v], seed_dir / MODEL)
            loss = evaluation_loss(model, data, _loss_name(job.runs[v]), s.n_train, s.bn, s.chunk)
            tops.append(gauss_newton_top(loss, data.num_classes, job.settings, variant=v, seed=seed))
            log.info("%s seed %d: H %s, G %s (certified %s)", v, seed, np.array2string(tops[-1].hessian, precision=4),
                     np.array2string(tops[-1].gauss_newton, precision=4), tops[-1].certified)
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    return gauss_newton_claim(tops, runs, job.scale, job.out_dir, job.claim["decision"], claim_id=job.id)


# ---------------------------------------------------------------- do random directions agree? -------------

# the decision's distance (random-directions-agree: "the train-loss rise at alpha = +-0.5")
AGREE_RADIUS = 0.5


def direction_rises(alphas: Sequence[float], losses: np.ndarray, radius: float = AGREE_RADIUS) -> np.ndarray:
    """Per direction ``j`` of ``losses[j, i]``: the mean rise ``(L(+r) + L(-r)) / 2 - L(0)``."""
    a, z = np.asarray(alphas, float), np.atleast_2d(np.asarray(losses, float))
    i0, ip, im = grid_index(a, 0.0), grid_index(a, radius), grid_index(a, -radius)
    return (z[:, ip] + z[:, im]) / 2 - z[:, i0]


def coefficient_of_variation(x: Sequence[float]) -> float:
    """``sd / mean`` (sample sd) of ``x``; NaN for fewer than two values or a mean that is not positive."""
    x = np.asarray(x, float)
    if len(x) < 2 or not np.mean(x) > 0:
        return math.nan
    return float(np.std(x, ddof=1) / np.mean(x))


def directions_agree_claim(lines: Mapping[str, Mapping[int, Mapping[str, np.ndarray]]], alphas: Sequence[float],
                           runs: Runs, scale: str, out_dir: str | os.PathLike, decision: Mapping[str, Any],
                           claim_id: str = "random-directions-agree") -> ClaimResult:
    """Whether the 1-D train-loss curves along different filter-normalized random directions through a network
    agree: per network, the coefficient of variation over directions of the rise at +-:data:`AGREE_RADIUS`,
    decided by the pre-registered ``curves_agree`` (minus that coefficient). Raw directions are shown beside."""
    out_dir = Path(out_dir)
    rows, numbers, cvs, data_nets = [], {}, [], []
    for v, by_seed in lines.items():
        for seed, norms in sorted(by_seed.items()):
            cv = {norm: coefficient_of_variation(direction_rises(alphas, norms[norm])) for norm in LINE_NORMS}
            rises = direction_rises(alphas, norms["filter"])
            cvs.append(cv["filter"])
            numbers[f"{v}.seed{seed}.filter_cv"], numbers[f"{v}.seed{seed}.raw_cv"] = cv["filter"], cv["raw"]
            numbers[f"{v}.seed{seed}.filter_rise_mean"] = float(np.mean(rises))
            rows.append({"network": v, "seed": seed, "directions": len(rises),
                         "filter_rise_mean": float(np.mean(rises)), "filter_rise_range": f"{rises.min():.4g} - "
                         f"{rises.max():.4g}", "filter_cv": f"{cv['filter']:.3g}", "raw_cv": f"{cv['raw']:.3g}"})
            data_nets.append({"variant": v, "seed": seed, "filter": np.asarray(norms["filter"]).tolist(),
                              "cv": cv["filter"]})
    cd = decide_claim(decision, {"curves_agree": Measured(samples=[-c for c in cvs])})
    tables = write_table(rows, out_dir / "table", title=f"Loss rise at alpha = +-{AGREE_RADIUS:g} along random "
                         f"directions, per network ({scale} scale)")
    data = {"scale": scale, "alphas": np.asarray(alphas, float).tolist(), "networks": data_nets,
            "bound": -float(next(p["margin"] for p in decision["parts"]))}
    figs = figures.render(plot_directions_agree, data, out_dir / "figure")
    finite = [c for c in cvs if c == c]
    n_dir = rows[0]["directions"] if rows else 0
    measured = (f"coefficient of variation over {n_dir} filter-normalized directions of the rise at "
                f"+-{AGREE_RADIUS:g}: median {np.median(finite) if finite else math.nan:.3g}, max "
                f"{max(finite) if finite else math.nan:.3g} over {len(cvs)} networks")
    regime = "; ".join(_run_regime(v, rs) for v, rs in runs.items())
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured, n_seeds=len(cvs),
                                     numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("sharpness.directions_agree")
def plot_directions_agree(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Left: the train loss along every filter-normalized direction through the first network of each variant
    (one colour per variant); right: each network's coefficient of variation of the rise, with the bound."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    a = np.asarray(data["alphas"], float)
    variants = list(dict.fromkeys(n["variant"] for n in data["networks"]))
    for i, v in enumerate(variants):
        nets = [n for n in data["networks"] if n["variant"] == v]
        for j, curve in enumerate(nets[0]["filter"]):
            ax1.plot(a, curve, color=figures.COLORS[i % len(figures.COLORS)], lw=0.8, alpha=0.7,
                     label=f"{v} seed {nets[0]['seed']}" if j == 0 else None)
        ax2.plot(np.full(len(nets), i) + np.linspace(-0.1, 0.1, len(nets)), [n["cv"] for n in nets], "o",
                 color=figures.COLORS[i % len(figures.COLORS)])
    ax1.set_xlabel("alpha (filter-normalized direction)")
    ax1.set_ylabel("train loss")
    ax1.set_title("one curve per random direction")
    ax1.legend(fontsize=7)
    ax2.axhline(data["bound"], color="k", ls=":", lw=0.8, label=f"bound {data['bound']:g}")
    ax2.set_xticks(range(len(variants)), variants)
    ax2.set_ylabel(f"coefficient of variation of the rise at +-{AGREE_RADIUS:g}")
    ax2.set_title(f"{data['scale']}: spread over directions, per network")
    ax2.legend()
    return figures.save(fig, stem)


def run_directions_agree(job: ClaimJob) -> ClaimResult:
    """Random lines (the experiment's ``random_directions``) through every trained seed, then the claim."""
    alphas, lines, runs = _all_lines(job)
    return directions_agree_claim(lines, alphas, runs, job.scale, job.out_dir, job.claim["decision"], claim_id=job.id)


def _spectra_job(job: ClaimJob, analysis) -> ClaimResult:
    """Hessian spectra of every variant's trained seeds (kept in the ``spectra`` output), then ``analysis``."""
    spectra_by_variant = {v: run_spectra(job.runs[v], d, job.settings) for v, d in job.dirs.items()}
    write_spectra(job.outputs["spectra"], spectra_by_variant)
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    return analysis(spectra_by_variant, runs, job.check, job.scale, job.out_dir, claim_id=job.id,
                    decision=job.claim["decision"])


def run_hessian_outliers(job: ClaimJob) -> ClaimResult:
    return _spectra_job(job, hessian_outliers_claim)


def run_batchsize_outliers(job: ClaimJob) -> ClaimResult:
    return _spectra_job(job, batchsize_outliers_claim)


def _all_lines(job: ClaimJob) -> tuple[np.ndarray, dict[str, dict[int, dict[str, np.ndarray]]], Runs]:
    """Raw and filter-normalized random lines (the job's settings) through every trained seed of every variant, kept
    in the ``lines`` output: the alphas, ``variant -> seed -> norm -> losses[j, i]`` and the runs."""
    lines, alphas = {}, None
    for v, d in job.dirs.items():
        lines[v] = {}
        for seed, seed_dir in trained_seeds(d):
            alphas, lines[v][seed] = sharpness_lines(
                job.runs[v], seed_dir, seed, job.settings, Path(job.outputs["lines"]) / v / f"seed{seed}",
                progress=job.progress)
    return alphas, lines, {v: read_runs(d) for v, d in job.dirs.items()}


def run_wd_flip(job: ClaimJob) -> ClaimResult:
    """Train loss along raw and filter-normalized random lines through every trained seed of every variant
    (kept in the ``lines`` output), then the claim."""
    alphas, lines, runs = _all_lines(job)
    return wd_flip_claim(lines, alphas, runs, job.check, job.scale, job.out_dir, claim_id=job.id,
                         decision=job.claim["decision"])


def run_lb_sb_basin(job: ClaimJob) -> ClaimResult:
    """The line from each seed's large-batch end point (input ``lb``) through its small-batch continuation
    (input ``sb``), kept in the ``lines`` output, then the claim."""
    lb_dir, sb_dir = job.inputs["lb"], job.inputs["sb"]
    lines = {seed: basin_line(job.params["run"], lb / MODEL, model_file(sb_dir, seed),
                              job.settings, Path(job.outputs["lines"]) / f"seed{seed}.h5", progress=job.progress)
             for seed, lb in trained_seeds(lb_dir)}
    return lb_sb_basin_claim(lines, read_runs(lb_dir), read_runs(sb_dir), job.check, job.scale, job.out_dir,
                             claim_id=job.id, decision=job.claim["decision"])


CLAIMS = {"hessian-bulk-outliers": run_hessian_outliers, "batchsize-larger-outliers": run_batchsize_outliers,
          "li-filter-normalization-wd-flip": run_wd_flip, "lb-to-sb-same-basin": run_lb_sb_basin,
          "gauss-newton-outliers": run_gauss_newton, "random-directions-agree": run_directions_agree}
