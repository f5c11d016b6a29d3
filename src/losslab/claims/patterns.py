"""Loss patterns (Skorokhodov & Burtsev 2019, source 004): the two claims built on multi-point optimization.

* ``mpo-arbitrary-patterns``: a binary picture can be fitted into the loss surface of a plane of networks as
  low-loss (black) and high-loss (white) cells, and the train and test maps are nearly identical.
* ``mpo-bn-harder-to-fit``: random masks are fitted less well with batch norm (a smaller black-white accuracy
  gap at every fill probability ``p``), although the BN nets score higher (white cells included).

The computation is :mod:`losslab.core.patterns`; this module runs it for the workflow (:func:`run_job`: every seed
of one (architecture, pattern), resumable through :func:`losslab.core.patterns.fit_plane`'s checkpoints) and
turns the runs into tables, figures and :class:`losslab.claims.verdicts.ClaimResult` verdicts.

A job is described by a plain mapping (built by ``workflow/rules/patterns.smk`` from the scale's
``patterns`` block)::

    {"architecture": "plain", "pattern_key": "p0.3", "dataset": {...}, "model": {...}, "mpo": {...},
     "pattern": {"kind": "random", "size": 10, "p": 0.3}}

Seeds: run seed ``k`` draws the random mask from seed ``k`` (:func:`losslab.core.patterns.random_mask`, so masks of
one seed are nested across ``p``: a cell black at ``p`` is black at every larger ``p``), initialises the plane
from the three model seeds ``3k, 3k+1, 3k+2`` (:func:`init_seeds`) and samples cells and minibatches from
seed ``k``. Both architectures of a seed therefore see the same mask and the same minibatch sequence: the
comparison of the BN claim is paired by seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from losslab.plots import figures
from losslab import io as lio
from losslab.core import patterns as pt
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, seed_mean
from losslab.core.data import prepare
from losslab.core.models import build, count_parameters
from losslab.core.weights import has_batchnorm
from losslab.claims.tables import mean_std, pm, write_table
from losslab.claims.claim_job import ClaimJob
from losslab.claims.runs import HISTORY, METRICS, read_runs, seed_dir

log = logging.getLogger(__name__)

PICTURE = "picture"
ARCHITECTURES = ("plain", "bn")  # without BN, with BN

# Skorokhodov & Burtsev 2019, Fig. 4 (FashionMNIST, 30x30 random masks, 5 runs), digitized from the PDF's
# vector paths (config/claims.yaml `reported`): black-minus-white validation accuracy at fill probability p.
REPORTED_GAP = {
    "plain": {0.1: .462, 0.2: .414, 0.3: .368, 0.4: .340, 0.5: .310, 0.6: .305, 0.7: .317, 0.8: .311, 0.9: .343},
    "bn": {0.1: .308, 0.2: .274, 0.3: .250, 0.4: .223, 0.5: .221, 0.6: .221, 0.7: .218, 0.8: .223, 0.9: .244},
}


# ---------------------------------------------------------------- jobs -------------------------------------

def pattern_key(p: float) -> str:
    """The name of the random-mask pattern of fill probability ``p`` (``p0.3``): a path component."""
    return f"p{float(p):g}"


def init_seeds(seed: int) -> tuple[int, int, int]:
    """The three model seeds (origin, u, v) of run seed ``seed``: ``3 seed, 3 seed + 1, 3 seed + 2`` (no two
    runs share an initialisation)."""
    return 3 * int(seed), 3 * int(seed) + 1, 3 * int(seed) + 2


def mpo_config(mpo: Mapping[str, Any], seed: int) -> pt.MPOConfig:
    """The :class:`losslab.core.patterns.MPOConfig` of one run: the config's ``mpo`` settings with the run's
    :func:`init_seeds` (a config may not set ``init_seeds`` itself)."""
    if "init_seeds" in mpo:
        raise ValueError("mpo config: init_seeds is derived from the run seed (3k, 3k+1, 3k+2); do not set it")
    return replace(pt.MPOConfig.from_mapping(mpo), init_seeds=init_seeds(seed))


def run_pattern(spec: Mapping[str, Any], seed: int) -> np.ndarray:
    """The pattern of one run: a random mask drawn from ``seed``, any other kind as specified."""
    spec = dict(spec)
    if spec.get("kind") == "random":
        spec["seed"] = int(seed)
    return pt.make_pattern(spec)


def checkpoint_key(job: Mapping[str, Any], seed: int) -> str:
    """A short hash of what determines a run's trajectory (dataset, model, pattern, seed and the MPO settings
    that change the trajectory: not ``steps``, so that a run given more steps resumes)."""
    config = mpo_config(job["mpo"], seed)
    text = json.dumps({"dataset": job["dataset"], "model": job["model"], "pattern": job["pattern"],
                       "seed": int(seed), "mpo": pt.trajectory_settings(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_history(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    columns = ("step", "scale", "black_loss", "white_loss", "black_acc", "white_acc")
    lio.write_csv(path, [{k: row.get(k) for k in columns} for row in history], columns)


def run_job(job: Mapping[str, Any], seeds: Sequence[int], out_dir: str | Path,
            ckpt_dir: str | Path) -> list[dict[str, Any]]:
    """Fit and evaluate every seed of one (architecture, pattern) job.

    Per seed, into ``out_dir/seed<k>/``: ``maps.npz`` (:class:`losslab.core.patterns.PatternMaps` plus the
    ``pattern``), ``metrics.json`` (:func:`losslab.core.patterns.fit_metrics` and the run's facts) and
    ``history.csv`` (per step: the sampled cells' minibatch loss and accuracy, the scale ``s``). The
    optimisation checkpoints into ``ckpt_dir/<checkpoint key>.pt`` (outside the job's output): a killed job,
    rerun, resumes every seed where it stopped. Returns the per-seed metrics."""
    out_dir, ckpt_dir = Path(out_dir), Path(ckpt_dir)
    data = prepare(job["dataset"])

    def factory() -> torch.nn.Module:
        return build(job["model"], data.input_shape, data.num_classes)

    model = factory()
    results = []
    for seed in seeds:
        config = mpo_config(job["mpo"], seed)
        pattern = run_pattern(job["pattern"], seed)
        plane = config.plane(factory)
        t0 = time.perf_counter()
        state = pt.fit_plane(plane, model, pattern, data, config, seed=int(seed),
                               ckpt_path=ckpt_dir / f"{checkpoint_key(job, seed)}.pt")
        t1 = time.perf_counter()
        maps = pt.evaluate_pattern(plane, model, data, pattern.shape, bn=config.eval_bn, chunk=config.eval_chunk,
                                   method=config.eval_method, n_train=config.n_eval_train,
                                   n_test=config.n_eval_test)
        t2 = time.perf_counter()
        metrics = pt.fit_metrics(pattern, maps)
        if state["diverged"]:  # the maps of an unfinished plane do not count
            metrics = {k: math.nan for k in metrics}
        where = seed_dir(out_dir, seed)
        maps.save(where / "maps.npz", pattern=pattern)
        _write_history(where / HISTORY, state["history"])
        record = {
            "architecture": job["architecture"], "pattern_key": job["pattern_key"], "pattern": dict(job["pattern"]),
            "p": job["pattern"].get("p"), "seed": int(seed), "init_seeds": list(config.init_seeds),
            "shape": list(pattern.shape), "black_fraction": float(pattern.mean()),
            "steps": int(state["step"]), "diverged": bool(state["diverged"]), "method": state["method"],
            "final_scale": float(plane.scale.detach()), "fit_seconds": round(t1 - t0, 3),
            "fit_seconds_total": round(float(state["wall"]), 3), "eval_seconds": round(t2 - t1, 3),
            "n_params": count_parameters(model), "batchnorm": has_batchnorm(model),
            "model": dict(job["model"]), "mpo": asdict(config), **metrics,
        }
        lio.write_record(where / METRICS, record)
        log.info("%s %s seed %d: %d steps (%.1f s fit, %.1f s maps); test acc black %.3f white %.3f, gap %.3f, "
                 "train/test corr %.3f%s", job["architecture"], job["pattern_key"], seed, state["step"], t1 - t0,
                 t2 - t1, metrics["test_black_acc"], metrics["test_white_acc"], metrics["test_acc_gap"],
                 metrics["train_test_corr_acc"], " (DIVERGED)" if state["diverged"] else "")
        results.append(record)
    return results


def read_job(job_dir: str | Path) -> list[dict[str, Any]]:
    """The ``metrics.json`` of every seed of a job directory, in seed order."""
    return read_runs(job_dir, made_by="mpo_fit")


def read_maps(where: str | Path) -> tuple[np.ndarray, pt.PatternMaps]:
    """``(pattern, maps)`` of one seed directory."""
    path = Path(where) / "maps.npz"
    with np.load(path) as f:
        pattern = pt.validate_pattern(f["pattern"], name=str(path))
    return pattern, pt.PatternMaps.load(path)


def _value(record: Mapping[str, Any], key: str) -> float:
    """A metric of a run, NaN when missing, null (NaN written as JSON) or the run diverged."""
    v = record.get(key)
    return math.nan if v is None or record.get("diverged") else float(v)


# ---------------------------------------------------------------- claim: pictures ---------------------------

def _heatmap(ax, values: np.ndarray, vmin: float, vmax: float, cmap: str, title: str):
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
    return image


def picture_figure(runs: Sequence[tuple[Mapping[str, Any], np.ndarray, pt.PatternMaps]], stem: str | Path,
                   title: str) -> list[str]:
    """:func:`plot_picture` of ``runs`` (record, pattern, maps per seed), through
    :func:`losslab.plots.figures.render` so that `snakemake figures` redraws it; PNG + PDF."""
    keys = ("train_black_acc", "train_white_acc", "test_black_acc", "test_white_acc", "train_test_corr_acc",
            "train_test_corr_loss")
    data = {"title": title,
            "caps": [float(r["mpo"]["cap"]) for r, _, _ in runs if isinstance(r.get("mpo"), Mapping)
                     and "cap" in r["mpo"]],
            "rows": [{"seed": r["seed"], "diverged": bool(r.get("diverged")), "values": {k: _value(r, k) for k in keys},
                      "pattern": pattern, "train_acc": m.train_acc, "test_acc": m.test_acc,
                      "train_loss": m.train_loss, "test_loss": m.test_loss} for r, pattern, m in runs]}
    return figures.render(plot_picture, data, stem)


@figures.register_plot("patterns.picture")
def plot_picture(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """One row per seed: the target and the train and test accuracy maps on one shared ``[0, 1]`` grey scale
    (dark = black = low loss / high accuracy), then the train and test loss maps on one shared scale (dark =
    low loss) clipped at twice the white cells' cap (the objective ignores cross-entropy above the cap; the
    99th percentile when the runs do not record a cap)."""
    runs = data["rows"]
    n = len(runs)
    maps = [{k: np.asarray(r[k], float) for k in ("pattern", "train_acc", "test_acc", "train_loss", "test_loss")}
            for r in runs]
    if data["caps"]:
        lmax = 2.0 * max(data["caps"])
    else:
        losses = np.concatenate([np.ravel(m["train_loss"]) for m in maps] + [np.ravel(m["test_loss"]) for m in maps])
        finite = losses[np.isfinite(losses)]
        lmax = max(float(np.quantile(finite, 0.99)) if finite.size else 1.0, 1e-6)
    fig, axes = figures.new_figure(ncols=5, nrows=n, width=12.5, height=2.7 * n + 0.6, squeeze=False,
                                   layout="constrained")
    acc_im = loss_im = None
    for row, (record, m) in enumerate(zip(runs, maps)):
        v = record["values"]
        tag = f"seed {record['seed']}" + (", DIVERGED" if record["diverged"] else "")
        acc_im = _heatmap(axes[row][0], m["pattern"], 0, 1, "Greys", f"target ({tag})\nblack = low loss")
        _heatmap(axes[row][1], m["train_acc"], 0, 1, "Greys",
                 f"train accuracy\nblack {v['train_black_acc']:.2f} / white {v['train_white_acc']:.2f}")
        _heatmap(axes[row][2], m["test_acc"], 0, 1, "Greys",
                 f"test accuracy\nblack {v['test_black_acc']:.2f} / white {v['test_white_acc']:.2f}")
        loss_im = _heatmap(axes[row][3], m["train_loss"], 0, lmax, "Greys_r", "train loss")
        _heatmap(axes[row][4], m["test_loss"], 0, lmax, "Greys_r",
                 f"test loss\ntrain/test corr: acc {v['train_test_corr_acc']:.3f}, "
                 f"loss {v['train_test_corr_loss']:.3f}")
    fig.colorbar(acc_im, ax=[axes[r][c] for r in range(n) for c in range(3)], shrink=0.8,
                 label="pattern value / accuracy (shared scale)")
    fig.colorbar(loss_im, ax=[axes[r][c] for r in range(n) for c in (3, 4)], shrink=0.8,
                 label=f"cross-entropy (shared scale, clipped at {lmax:.2f})")
    fig.suptitle(data["title"])
    return figures.save(fig, stem)


def picture_claim(job_dir: str | Path, check: Mapping[str, Any], decision: Mapping[str, Any], scale: str,
                  out_dir: str | Path, claim_id: str = "mpo-arbitrary-patterns", figure: bool = True) -> ClaimResult:
    """Verdict, table and figure of the picture claim from the picture job of the net without BN (every
    seed), decided by the claim's pre-registered ``decision`` (config/claims.yaml), one replicate per seed:
    ``black_low_loss`` the mean test accuracy over the black cells (margin 0.7), ``white_high_loss`` minus the
    mean test accuracy over the white cells (margin -0.4), ``train_test_agree`` the correlation over cells of the
    train and test accuracy maps (margin 0.9). A diverged seed is NaN (inconclusive); one seed is one replicate
    (inconclusive). ``figure=False`` skips the figure."""
    out_dir = Path(out_dir)
    records = read_job(job_dir)
    runs = [(r, *read_maps(seed_dir(job_dir, r["seed"]))) for r in records]
    lo_black, hi_white, lo_corr = (float(check[k]) for k in ("min_black_acc", "max_white_acc", "min_corr"))
    rows, numbers = [], {}
    blacks, whites, corrs = [], [], []
    for r in records:
        black, white, corr = (_value(r, k) for k in ("test_black_acc", "test_white_acc", "train_test_corr_acc"))
        blacks.append(black)
        whites.append(white)
        corrs.append(corr)
        values = (black, white, corr)
        meets = (black > lo_black and white < hi_white and corr > lo_corr) if all(map(math.isfinite, values)) \
            else "NaN"
        s = r["seed"]
        numbers.update({f"seed{s}.test_black_acc": black, f"seed{s}.test_white_acc": white,
                        f"seed{s}.train_test_corr_acc": corr,
                        f"seed{s}.train_black_acc": _value(r, "train_black_acc"),
                        f"seed{s}.train_white_acc": _value(r, "train_white_acc"),
                        f"seed{s}.train_test_corr_loss": _value(r, "train_test_corr_loss"),
                        f"seed{s}.test_loss_gap": _value(r, "test_loss_gap")})
        rows.append({
            "seed": s, "pattern": f"{r['pattern'].get('kind')} {r['pattern'].get('name', r['pattern'].get('text', ''))}"
                                  f" {r['shape'][0]}x{r['shape'][1]}",
            "black_cells": int(round(r["black_fraction"] * r["shape"][0] * r["shape"][1])),
            "steps": r["steps"], "diverged": r["diverged"],
            "train_acc_black": _value(r, "train_black_acc"), "train_acc_white": _value(r, "train_white_acc"),
            "train_loss_black": _value(r, "train_black_loss"), "train_loss_white": _value(r, "train_white_loss"),
            f"test_acc_black (> {lo_black:g})": black, f"test_acc_white (< {hi_white:g})": white,
            f"train/test corr acc (> {lo_corr:g})": corr, "train/test corr loss": _value(r, "train_test_corr_loss"),
            "test_loss_black": _value(r, "test_black_loss"), "test_loss_white": _value(r, "test_white_loss"),
            "meets_all_three_bars": meets,
        })
    cd = decide_claim(decision, {"black_low_loss": Measured(samples=blacks),
                                 "white_high_loss": Measured(samples=[-w for w in whites]),
                                 "train_test_agree": Measured(samples=corrs)})
    tables = write_table(rows, out_dir / "table",
                         title=f"A picture in the loss landscape: net without BN ({scale} scale)")
    figs = picture_figure(runs, out_dir / "figure",
                          f"multi-point optimization of a picture, net without BN ({scale})") if figure else []
    measured = (f"test acc black {pm(blacks)} / white {pm(whites)}; train/test map corr {pm(corrs, digits=3)} "
                f"({len(records)} seed{'s' if len(records) != 1 else ''}, {records[0]['shape'][0]}x"
                f"{records[0]['shape'][1]} picture)")
    regime = _mpo_regime("net without BN", records)
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(records), numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


def _mpo_regime(label: str, records: Sequence[Mapping[str, Any]]) -> str:
    """One arm's part of a claim's ``regime``: the fitted plane's optimizer steps and its train accuracy and loss
    over black / white cells (means over seeds; the test accuracies are the claim's numbers)."""
    def mean(key: str) -> float:
        return float(seed_mean([_value(r, key) for r in records]))

    steps = seed_mean([float(r.get("steps", math.nan)) for r in records])
    diverged = sum(bool(r.get("diverged")) for r in records)
    return (f"{label}: {float(steps):.0f} MPO steps, train acc black/white {mean('train_black_acc'):.3f}/"
            f"{mean('train_white_acc'):.3f}, train loss black/white {mean('train_black_loss'):.3g}/"
            f"{mean('train_white_loss'):.3g}, test acc black/white {mean('test_black_acc'):.3f}/"
            f"{mean('test_white_acc'):.3f} ({len(records)} runs" + (f", {diverged} diverged)" if diverged else ")"))


# ---------------------------------------------------------------- claim: BN is harder to fit ---------------

def _by_p(job_dirs: Sequence[str | Path]) -> dict[float, list[dict[str, Any]]]:
    out: dict[float, list[dict[str, Any]]] = {}
    for d in job_dirs:
        records = read_job(d)
        p = records[0].get("p")
        if p is None:
            raise ValueError(f"{d}: not a random-mask job (no fill probability p)")
        out[float(p)] = records
    return dict(sorted(out.items()))


def _paired_values(plain: Sequence[Mapping[str, Any]], bn: Sequence[Mapping[str, Any]], key: str
                   ) -> tuple[list[int], list[float], list[float]]:
    """Per-seed values of ``key`` for the seeds both architectures ran, in seed order."""
    a, b = {r["seed"]: r for r in plain}, {r["seed"]: r for r in bn}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed in common between the nets without and with BN")
    return seeds, [_value(a[s], key) for s in seeds], [_value(b[s], key) for s in seeds]


def bn_figure(ps: Sequence[float], measured: Mapping[str, Mapping[str, np.ndarray]], stem: str | Path,
              title: str) -> list[str]:
    """:func:`plot_bn` through :func:`losslab.plots.figures.render`. ``measured[arch][key]`` is a ``(len(ps), seeds)``
    array for key in gap / black / white."""
    return figures.render(plot_bn, {"ps": ps, "measured": measured, "title": title}, stem)


@figures.register_plot("patterns.bn")
def plot_bn(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """(a) measured black-minus-white test accuracy gap vs p, mean over seeds with a min-max band; (b) the
    paper's digitized Fig. 4 values; (c) black and white accuracy vs p; (a) and (b) on the same y limits."""
    ps, title = data["ps"], data["title"]
    measured = {a: {k: np.asarray(v, float) for k, v in data["measured"][a].items()} for a in ARCHITECTURES}
    labels = {"plain": "without BN", "bn": "with BN"}
    colours = {"plain": figures.COLORS[0], "bn": figures.COLORS[1]}
    fig, axes = figures.new_figure(ncols=3, width=13.0, height=3.8, layout="constrained")
    x = np.asarray(ps, float)
    for arch in ARCHITECTURES:
        gap = measured[arch]["gap"]
        m = np.nanmean(gap, axis=1)
        axes[0].plot(x, m, "o-", color=colours[arch], label=f"{labels[arch]} (mean, {gap.shape[1]} seeds)")
        axes[0].fill_between(x, np.nanmin(gap, axis=1), np.nanmax(gap, axis=1), color=colours[arch], alpha=0.2,
                             lw=0, label=f"{labels[arch]}: min-max over seeds")
        rp = sorted(REPORTED_GAP[arch])
        axes[1].plot(rp, [REPORTED_GAP[arch][p] for p in rp], "s--", color=colours[arch], label=labels[arch])
        for key, style, name in (("black", "o-", "black cells"), ("white", "v:", "white cells")):
            vals = measured[arch][key]
            axes[2].plot(x, np.nanmean(vals, axis=1), style, color=colours[arch], label=f"{labels[arch]}, {name}")
            axes[2].fill_between(x, np.nanmin(vals, axis=1), np.nanmax(vals, axis=1), color=colours[arch],
                                 alpha=0.12, lw=0)
    axes[0].set_title("measured: black minus white test accuracy")
    axes[1].set_title("paper (Fig. 4, FashionMNIST 30x30, digitized)\nbands of about ±0.02-0.04 not drawn",
                      fontsize=8)
    axes[2].set_title("measured: mean test accuracy of black / white cells")
    for ax in axes:
        ax.set_xlabel("fill probability p (fraction of black cells)")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel("accuracy gap (black - white)")
    axes[1].set_ylabel("accuracy gap (black - white)")
    axes[2].set_ylabel("test accuracy")
    lo = min(0.0, float(np.nanmin([np.nanmin(measured[a]["gap"]) for a in ARCHITECTURES] + [0.0])))
    hi = max(0.5, float(np.nanmax([np.nanmax(measured[a]["gap"]) for a in ARCHITECTURES] + [0.5])))
    for ax in axes[:2]:
        ax.set_ylim(lo - 0.02, hi + 0.02)
    axes[2].set_ylim(0, 1)
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return figures.save(fig, stem)


def bn_claim(plain_dirs: Sequence[str | Path], bn_dirs: Sequence[str | Path], check: Mapping[str, Any],
             decision: Mapping[str, Any], scale: str, out_dir: str | Path, claim_id: str = "mpo-bn-harder-to-fit",
             figure: bool = True) -> ClaimResult:
    """Verdict, table and figure of the BN claim from the random-mask jobs of both nets (one directory per
    p each), decided by the claim's pre-registered ``decision`` (config/claims.yaml), one replicate per seed
    (paired: a seed fixes the mask, the initialisations and the minibatch sequence of both nets):
    ``gap_smaller_with_bn`` the black-white test-accuracy gap without BN minus with BN, averaged over p;
    ``bn_scores_higher`` the white-cell test accuracy with BN minus without, averaged over p. A seed with a diverged
    run at some p is NaN (inconclusive). The per-p differences are tabulated, not decided. ``figure=False`` skips
    the figure."""
    out_dir = Path(out_dir)
    plain, bn = _by_p(plain_dirs), _by_p(bn_dirs)
    if sorted(plain) != sorted(bn):
        raise ValueError(f"the nets without and with BN ran different p: {sorted(plain)} vs {sorted(bn)}")
    for arch, runs in (("plain", plain), ("bn", bn)):
        flags = {bool(r.get("batchnorm")) for rs in runs.values() for r in rs}
        if flags != {arch == "bn"}:
            raise ValueError(f"architecture {arch!r} should {'' if arch == 'bn' else 'not '}have batch norm")
    ps = sorted(plain)
    measured: dict[str, dict[str, list[list[float]]]] = {a: {"gap": [], "black": [], "white": []}
                                                         for a in ARCHITECTURES}
    rows, numbers = [], {}
    gap_diff_by_p: list[list[float]] = []
    seeds_all: list[int] | None = None
    for p in ps:
        seeds, g_plain, g_bn = _paired_values(plain[p], bn[p], "test_acc_gap")
        if seeds_all is None:
            seeds_all = seeds
        elif seeds != seeds_all:
            raise ValueError(f"p={p:g}: seeds {seeds} differ from the other p's {seeds_all}")
        _, b_plain, b_bn = _paired_values(plain[p], bn[p], "test_black_acc")
        _, w_plain, w_bn = _paired_values(plain[p], bn[p], "test_white_acc")
        diff = [a - b for a, b in zip(g_plain, g_bn)]
        gap_diff_by_p.append(diff)
        for arch, g, b, w in (("plain", g_plain, b_plain, w_plain), ("bn", g_bn, b_bn, w_bn)):
            measured[arch]["gap"].append(g)
            measured[arch]["black"].append(b)
            measured[arch]["white"].append(w)
            numbers[f"p{p:g}.{arch}.gap_mean"] = seed_mean(g)
            numbers[f"p{p:g}.{arch}.black_acc_mean"] = seed_mean(b)
            numbers[f"p{p:g}.{arch}.white_acc_mean"] = seed_mean(w)
        paper = {a: REPORTED_GAP[a].get(round(p, 2)) for a in ARCHITECTURES}
        d = seed_mean(diff)
        rows.append({
            "p": p, "gap_without_BN": pm(g_plain, digits=3), "gap_with_BN": pm(g_bn, digits=3),
            "diff (without - with)": f"{float(d):+.3f} ± {d.se:.3f} (se)",
            "seeds_agree": f"{sum(x > 0 for x in diff)}/{len(diff)}",
            "verdict": "shown only (decided averaged over p)",
            "paper_gap_without_BN": "" if paper["plain"] is None else paper["plain"],
            "paper_gap_with_BN": "" if paper["bn"] is None else paper["bn"],
            "black_acc without/with BN": f"{mean_std(b_plain)[0]:.3f} / {mean_std(b_bn)[0]:.3f}",
            "white_acc without/with BN": f"{mean_std(w_plain)[0]:.3f} / {mean_std(w_bn)[0]:.3f}",
            **_mpo_columns(plain[p], bn[p]),
            "diverged without/with BN": f"{sum(bool(r.get('diverged')) for r in plain[p])}/"
                                        f"{sum(bool(r.get('diverged')) for r in bn[p])}",
        })
    assert seeds_all is not None
    # per seed, averaged over p (NaN if any p's run of that seed diverged)
    white_mean = {a: list(np.mean(np.asarray(measured[a]["white"], float), axis=0)) for a in ARCHITECTURES}
    gap_smaller = [float(x) for x in np.mean(np.asarray(gap_diff_by_p, float), axis=0)]
    bn_higher = [b - a for a, b in zip(white_mean["plain"], white_mean["bn"])]
    cd = decide_claim(decision, {"gap_smaller_with_bn": Measured(samples=gap_smaller),
                                 "bn_scores_higher": Measured(samples=bn_higher)})
    verdicts = {x.name: x.verdict for x in cd.decisions}
    numbers["white_acc_mean_over_p.plain"] = seed_mean(white_mean["plain"])
    numbers["white_acc_mean_over_p.bn"] = seed_mean(white_mean["bn"])
    numbers["gap_diff_mean_over_p"] = seed_mean(gap_smaller)
    g = seed_mean(gap_smaller)
    rows.append({"p": "mean over p", "gap_without_BN": "", "gap_with_BN": "",
                 "diff (without - with)": f"gap without - with BN: {float(g):+.3f} ± {g.se:.3f} (se)",
                 "seeds_agree": f"{sum(x > 0 for x in gap_smaller)}/{len(gap_smaller)}",
                 "verdict": f"gap_smaller_with_bn: {verdicts['gap_smaller_with_bn']}",
                 "paper_gap_without_BN": "", "paper_gap_with_BN": "", "black_acc without/with BN": "",
                 "white_acc without/with BN": "", "diverged without/with BN": ""})
    w = seed_mean(bn_higher)
    rows.append({"p": "mean over p", "gap_without_BN": "", "gap_with_BN": "",
                 "diff (without - with)": f"white acc with - without BN: {float(w):+.3f} ± {w.se:.3f} (se)",
                 "seeds_agree": f"{sum(x > 0 for x in bn_higher)}/{len(bn_higher)}",
                 "verdict": f"bn_scores_higher: {verdicts['bn_scores_higher']}",
                 "paper_gap_without_BN": "", "paper_gap_with_BN": "",
                 "black_acc without/with BN": "",
                 "white_acc without/with BN": f"{pm(white_mean['plain'], digits=3)} / {pm(white_mean['bn'], digits=3)}",
                 "diverged without/with BN": ""})
    tables = write_table(rows, out_dir / "table", title=f"Random masks without and with BN ({scale} scale, "
                                                        f"seeds {seeds_all})")
    arrays = {a: {k: np.asarray(v, float) for k, v in measured[a].items()} for a in ARCHITECTURES}
    size = plain[ps[0]][0]["shape"]
    figs = bn_figure(ps, arrays, out_dir / "figure", f"random {size[0]}x{size[1]} masks fitted without and with "
                     f"BN ({scale}, {len(seeds_all)} seeds)") if figure else []
    gaps = ", ".join(f"{p:g}: {numbers[f'p{p:g}.plain.gap_mean']:.3f}/{numbers[f'p{p:g}.bn.gap_mean']:.3f}"
                     for p in ps)
    measured_text = (f"test acc gap without/with BN at p {gaps}; white acc (mean over p) "
                     f"{numbers['white_acc_mean_over_p.plain']:.3f}/{numbers['white_acc_mean_over_p.bn']:.3f}")
    regime = "; ".join(_mpo_regime(label, [r for p in ps for r in runs[p]])
                       for label, runs in (("net without BN", plain), ("net with BN", bn)))
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured_text,
                                     n_seeds=len(seeds_all), numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


def _mpo_columns(plain: Sequence[Mapping[str, Any]], bn: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Table columns of the fitted planes of one p: steps and train accuracy over black / white cells, both nets."""
    def mean(records: Sequence[Mapping[str, Any]], key: str) -> float:
        return float(seed_mean([_value(r, key) if key != "steps" else float(r.get(key, math.nan))
                                for r in records]))

    return {"steps without/with BN": f"{mean(plain, 'steps'):.0f} / {mean(bn, 'steps'):.0f}",
            "train_acc_black without/with BN": f"{mean(plain, 'train_black_acc'):.3f} / "
                                               f"{mean(bn, 'train_black_acc'):.3f}",
            "train_acc_white without/with BN": f"{mean(plain, 'train_white_acc'):.3f} / "
                                               f"{mean(bn, 'train_white_acc'):.3f}"}


# ---------------------------------------------------------------- claim jobs ---------------------------------

def run_picture(job: ClaimJob) -> ClaimResult:
    return picture_claim(job.files("runs")[0], job.check, job.claim["decision"], job.scale, job.out_dir,
                         claim_id=job.id)


def run_bn(job: ClaimJob) -> ClaimResult:
    return bn_claim(job.inputs["plain"], job.inputs["bn"], job.check, job.claim["decision"], job.scale,
                    job.out_dir, claim_id=job.id)


CLAIMS = {"mpo-arbitrary-patterns": run_picture, "mpo-bn-harder-to-fit": run_bn}
