"""The lecture family's training claims (sources 000 and 002): spread of final losses by width (Choromanska et
al.'s figure), stochastic weight averaging, mixup, memorizing random labels, and MSE vs cross-entropy.

Each claim function takes the metrics of the finished runs (``variant -> one metrics.json per seed, in seed
order``), finds each variant's role from its own run spec (model size, ``recipe.swa``, ``recipe.mixup_alpha``,
``recipe.loss``, ``dataset.random_labels``: no variant name is special), measures every part of the claim's
pre-registered ``decision`` (``config/claims.yaml``) as it is written there, decides it by
:func:`losslab.claims.verdicts.decide_claim`, and writes the claim's table, figure (through
:func:`losslab.plots.figures.render`) and verdict.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from losslab.plots import figures
from losslab.claims.ingredients import arm_regime, log_ratio, optimizer_steps, regime_columns
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, seed_mean
from losslab.claims.tables import mean_std, pm, write_table
from losslab.core.surfaces import grid_index, line_sharpness
from losslab.claims.settings import Settings
from losslab.claims.claim_job import ClaimJob
from losslab.claims.runs import MODEL, read_history, read_runs, seed_dir, trained_seeds
from losslab.core.directions import random_directions
from losslab.core.surfaces import evaluators_for, grid, random_lines
from losslab.claims.training import load_trained
from losslab.core.weights import flatten

Runs = Mapping[str, Sequence[Mapping[str, Any]]]
Histories = Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]


def _seeds(runs: Runs, names: Sequence[str]) -> list[int]:
    """The common seed list of the variants ``names`` (pairing needs the same seeds in every arm)."""
    seeds = [r["seed"] for r in runs[names[0]]]
    for n in names:
        if [r["seed"] for r in runs[n]] != seeds:
            raise ValueError(f"variant {n!r} has seeds {[r['seed'] for r in runs[n]]}, expected {seeds}")
    return seeds


def _metric(runs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """Per-seed metric; a diverged run is NaN (its comparisons are then inconclusive)."""
    return [math.nan if r.get("diverged") else float(r[key]) for r in runs]


def two_roles(runs: Runs, is_treatment: Callable[[Mapping[str, Any]], bool], what: str) -> tuple[str, str]:
    """``(baseline, treatment)`` variants of a two-arm experiment, told apart by ``is_treatment(metrics)``."""
    treated = [v for v, rs in runs.items() if is_treatment(rs[0])]
    base = [v for v in runs if v not in treated]
    if len(runs) != 2 or len(treated) != 1:
        raise ValueError(f"need exactly two variants, one {what} and one without; have {sorted(runs)} "
                         f"({what}: {treated})")
    return base[0], treated[0]


# ---------------------------------------------------------------- local minima cluster (Choromanska) -------

def log_std_ratio(small: Sequence[float], large: Sequence[float]) -> Measured:
    """``ln(std(small) / std(large))`` (ddof 1) with its normal-theory standard error
    ``sqrt(1 / (2 (n_small - 1)) + 1 / (2 (n_large - 1)))`` (the ``normal`` test of the local-minima claim); NaN
    when a value is NaN (a diverged run), a spread is zero, or a size has fewer than two initialisations."""
    a, b = np.asarray(small, float), np.asarray(large, float)
    if a.size < 2 or b.size < 2:
        return Measured(estimate=math.nan, se=math.nan, n=int(min(a.size, b.size)))
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(np.log(np.std(a, ddof=1) / np.std(b, ddof=1)))
    se = math.sqrt(1 / (2 * (a.size - 1)) + 1 / (2 * (b.size - 1)))
    return Measured(estimate=est if math.isfinite(est) else math.nan, se=se, n=int(min(a.size, b.size)))


def local_minima_cluster(runs: Runs, check: Mapping[str, Any], decision: Mapping[str, Any], scale: str,
                         out_dir: str | Path, claim_id: str = "local-minima-cluster") -> ClaimResult:
    """Spread (std over initialisations) of the final train loss of nets of increasing size: the claim is that
    it shrinks as the number of parameters grows. Decided by its pre-registration: ln(std at the smallest size /
    at the largest), normal test with the standard error of a log standard deviation; the steps between
    neighbouring sizes are shown in the notes."""
    out_dir = Path(out_dir)
    order = sorted(runs, key=lambda v: runs[v][0]["num_parameters"])
    if len(order) < 2:
        raise ValueError(f"need at least two network sizes; have {order}")
    params = {v: int(runs[v][0]["num_parameters"]) for v in order}
    if len(set(params.values())) != len(order):
        raise ValueError(f"two variants have the same number of parameters: {params}")
    train = {v: _metric(runs[v], "train_loss") for v in order}
    test = {v: _metric(runs[v], "test_loss") for v in order}
    std = {v: float(np.std(train[v], ddof=1)) if len(train[v]) > 1 else math.nan for v in order}
    steps = [(a, b, std[a] - std[b]) for a, b in zip(order, order[1:])]
    cd = decide_claim(decision, {"spread_shrinks": log_std_ratio(train[order[0]], train[order[-1]])})
    numbers, rows = {}, []
    for v in order:
        numbers[f"{v}.train_loss_std"] = std[v]
        numbers[f"{v}.train_loss_mean"] = seed_mean(train[v])
        numbers[f"{v}.test_loss_std"] = mean_std(test[v])[1]
        numbers[f"{v}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        cols = regime_columns(runs[v])
        rows.append({"variant": v, "parameters": params[v], "inits": len(train[v]),
                     "train_loss_std": std[v], "train_loss": pm(train[v], digits=4),
                     "train_loss_min_max": f"{np.nanmin(train[v]):.4f} - {np.nanmax(train[v]):.4f}",
                     "test_loss": pm(test[v], digits=4), "diverged": sum(bool(r.get("diverged")) for r in runs[v]),
                     "steps": cols["steps"], "train_acc_%": cols["train_acc_%"], "test_acc_%": cols["test_acc_%"]})
    tables = write_table(rows, out_dir / "table", title=f"Final losses over initialisations by network size "
                         f"({scale} scale)")
    data = {"scale": scale, "variants": order, "parameters": [params[v] for v in order],
            "train_loss": [train[v] for v in order], "test_loss": [test[v] for v in order]}
    figs = figures.render(plot_minima, data, out_dir / "figure")
    measured = "std of final train loss: " + ", ".join(f"{params[v]} params {std[v]:.3g}" for v in order)
    notes = "shown, not decided: " + "; ".join(f"std {a} - std {b} = {d:+.3g}" for a, b, d in steps)
    regime = "; ".join(arm_regime(f"{v} ({params[v]} params)", runs[v]) for v in order)
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(train[order[0]]), numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


@figures.register_plot("lecture.minima")
def plot_minima(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Histograms of the final train loss per network size (shared bins) and its std against #params."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    losses = [np.asarray(v, float) for v in data["train_loss"]]
    finite = np.concatenate([x[np.isfinite(x)] for x in losses]) if losses else np.zeros(0)
    log_bins = finite.size and finite.min() > 0
    bins = (np.geomspace(float(finite.min()), float(finite.max()) * 1.001, 40) if log_bins
            else np.linspace(float(finite.min()), float(finite.max()) + 1e-12, 30) if finite.size else 10)
    for k, (v, x, n) in enumerate(zip(data["variants"], losses, data["parameters"])):
        ax1.hist(x[np.isfinite(x)], bins=bins, alpha=0.55, color=figures.COLORS[k % len(figures.COLORS)],
                 label=f"{v} ({n} params)")
    if log_bins:
        ax1.set_xscale("log")
    ax1.set_xlabel("final train loss (cross-entropy)")
    ax1.set_ylabel("initialisations")
    ax1.legend()
    ax1.set_title(f"final train loss of every init ({data['scale']})")
    stds = [float(np.nanstd(x, ddof=1)) if np.isfinite(x).sum() > 1 else np.nan for x in losses]
    ax2.plot(data["parameters"], stds, "o-", color=figures.COLORS[0], label="train loss")
    test_stds = [float(np.nanstd(np.asarray(x, float), ddof=1)) for x in data["test_loss"]]
    ax2.plot(data["parameters"], test_stds, "s--", color=figures.COLORS[1], label="test loss (not tested)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.tick_params(axis="x", which="minor", labelbottom=False)
    ax2.set_xticks(data["parameters"], [str(n) for n in data["parameters"]])
    ax2.set_xlabel("parameters")
    ax2.set_ylabel("std over initialisations of the final loss")
    ax2.legend()
    ax2.set_title("spread of the final loss vs network size")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- SWA -------------------------------------

@dataclass(frozen=True)
class FlatnessLineSettings(Settings):
    """An experiment's ``random_lines`` block for the SWA claim: filter-normalized random lines through a solution."""

    directions: int = 4
    alphas: Sequence[float] = (-1.0, 1.0, 9)  # [start, stop, num] along each line
    direction_seed: int = 0  # line j is drawn with seed direction_seed + j, the same for every network
    n_train: int | None = None
    bn: str = "recompute"
    chunk: int = 1000



def flatness_lines(run: Mapping[str, Any], seed_dir: str | os.PathLike, settings: Mapping[str, Any],
                   out_dir: str | os.PathLike, *, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Train loss along ``directions`` filter-normalized random lines (Li et al.; bias/BN entries zero) through
    a trained seed, direction ``j`` drawn with seed ``direction_seed + j`` (the same draws for every network):
    one :func:`losslab.core.surfaces.surface_1d` file ``<out_dir>/dir<j>.h5`` per line, evaluated by
    :class:`losslab.core.weights.PointEvaluator` with the ``bn`` policy. Returns the alphas and ``losses[j, i]``."""
    s = FlatnessLineSettings.of(settings)
    seed_dir, out_dir = Path(seed_dir), Path(out_dir)
    model, data = load_trained(run, seed_dir / MODEL)
    data = data.evaluation_subsets(s.n_train)
    loss = run.get("recipe", {}).get("loss", "ce")
    evaluators = evaluators_for(model, data, loss=loss, bn=s.bn, chunk=s.chunk, splits=("train",))
    xs, theta = grid(s.alphas), flatten(model)
    js = range(int(s.directions))
    return xs, random_lines(evaluators, theta,
                            [random_directions(model, int(s.direction_seed) + j, "filter", "biasbn", dims=1)
                             for j in js],
                            xs, [out_dir / f"dir{j}.h5" for j in js], checkpoint=seed_dir / MODEL,
                            progress=progress)


def swa_claim(runs: Runs, lines: Mapping[str, Mapping[int, Sequence[Sequence[float]]]], alphas: Sequence[float],
              check: Mapping[str, Any], decision: Mapping[str, Any], scale: str, out_dir: str | Path,
              claim_id: str = "swa") -> ClaimResult:
    """SWA vs SGD with the same budget, paired over seeds: test accuracy, and the filter-normalized loss rise
    around each solution (``lines[variant][seed][j][i]``: train loss along line ``j`` at ``alphas[i]``). Decided by
    its pre-registration: ``accuracy`` = ln(test error of SGD / of SWA) per seed; ``flatness`` = ln(loss rise of
    SGD / of SWA) per seed on the loss-normalised rise (the rise divided by the train loss at the solution, the
    lines' centre: the ``comparison`` of the decision), the raw ratio shown beside it."""
    out_dir = Path(out_dir)
    sgd, swa = two_roles(runs, lambda m: bool(m["recipe"].get("swa")), "with recipe.swa")
    seeds = _seeds(runs, (sgd, swa))
    for v in (sgd, swa):
        missing = [s for s in seeds if s not in lines.get(v, {})]
        if missing:
            raise ValueError(f"variant {v!r}: no random lines for seeds {missing}")
    radius = float(check["radius"])
    acc = {v: _metric(runs[v], "test_acc") for v in (sgd, swa)}
    rise = {v: [line_sharpness(alphas, np.asarray(lines[v][s], float), radius)
                if not r.get("diverged") else math.nan for s, r in zip(seeds, runs[v])] for v in (sgd, swa)}
    i0 = grid_index(np.asarray(alphas, float), 0.0)
    centre = {v: [float(np.mean(np.atleast_2d(np.asarray(lines[v][s], float))[:, i0])) for s in seeds]
              for v in (sgd, swa)}
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = {v: [x / c for x, c in zip(rise[v], centre[v])] for v in (sgd, swa)}
    err = {v: [1 - a for a in acc[v]] for v in (sgd, swa)}
    raw_flatness = log_ratio(rise[sgd], rise[swa])
    cd = decide_claim(decision, {"accuracy": Measured(samples=log_ratio(err[sgd], err[swa])),
                                 "flatness": Measured(samples=log_ratio(norm[sgd], norm[swa]))})
    numbers, rows = {}, []
    for role, v in (("sgd", sgd), ("swa", swa)):
        numbers[f"{role}.test_acc_mean"] = seed_mean(acc[v])
        numbers[f"{role}.loss_rise_mean"] = seed_mean(rise[v])
        numbers[f"{role}.train_loss_mean"] = seed_mean(_metric(runs[v], "train_loss"))
        numbers[f"{role}.loss_rise_normalised_mean"] = seed_mean(norm[v])
        numbers[f"{role}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        rows.append({"method": role.upper(), "variant": v, "test_acc_%": pm(acc[v], 100),
                     "train_acc_%": pm(_metric(runs[v], "train_acc"), 100),
                     "train_loss": pm(_metric(runs[v], "train_loss"), digits=4),
                     f"loss_rise_at_{radius:g}": pm(rise[v], digits=4),
                     "swa_iterates": runs[v][0].get("swa_iterates", 0), "epochs": runs[v][0]["recipe"]["epochs"],
                     "seeds": len(seeds), "steps": regime_columns(runs[v])["steps"],
                     "line_centre_loss": pm(centre[v], digits=4),
                     "loss_rise_/_centre_loss": pm(norm[v], digits=4)})
    numbers["flatness_raw.ln_ratio_mean"] = seed_mean(raw_flatness)
    tables = write_table(rows, out_dir / "table", title=f"SGD vs SWA ({scale} scale), same epoch budget; loss rise: "
                         f"mean train-loss increase at distance {radius:g} along filter-normalized random directions; "
                         f"loss-normalised: divided by the train loss at the centre of the lines (decides flatness)")
    mean_lines = {v: np.mean([np.mean(np.asarray(lines[v][s], float), axis=0) for s in seeds], axis=0)
                  for v in (sgd, swa)}
    data = {"scale": scale, "alphas": list(alphas), "radius": radius, "labels": ["SGD", "SWA"],
            "lines": [mean_lines[sgd], mean_lines[swa]], "acc": [acc[sgd], acc[swa]], "rise": [rise[sgd], rise[swa]]}
    figs = figures.render(plot_swa, data, out_dir / "figure")
    measured = (f"test acc SGD {pm(acc[sgd], 100)}% vs SWA {pm(acc[swa], 100)}%; loss rise at {radius:g} SGD "
                f"{pm(rise[sgd], digits=4)} vs SWA {pm(rise[swa], digits=4)}")
    raw = seed_mean(raw_flatness)
    notes = (f"raw (not loss-normalised) flatness ln(rise SGD / rise SWA): {pm(raw_flatness, digits=3)}"
             if math.isfinite(raw) else "raw flatness ratio not finite (a rise <= 0 or a diverged run)")
    regime = "; ".join(arm_regime(role, runs[v]) for role, v in (("SGD", sgd), ("SWA", swa)))
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


@figures.register_plot("lecture.swa")
def plot_swa(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Mean train loss along the filter-normalized lines (SGD vs SWA), and the per-seed test accuracy."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    a = np.asarray(data["alphas"], float)
    for k, (label, line) in enumerate(zip(data["labels"], data["lines"])):
        ax1.plot(a, np.asarray(line, float), "o-", color=figures.COLORS[k], label=label)
    for r in (-data["radius"], data["radius"]):
        ax1.axvline(r, color="k", ls=":", lw=0.8)
    ax1.set_xlabel("alpha (filter-normalized direction units)")
    ax1.set_ylabel("train loss (mean over directions and seeds)")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title(f"loss along random directions ({data['scale']})")
    for k, (label, acc) in enumerate(zip(data["labels"], data["acc"])):
        acc = 100 * np.asarray(acc, float)
        ax2.plot(np.full(len(acc), k), acc, ".", color=figures.COLORS[k], ms=6)
    pairs = 100 * np.asarray(data["acc"], float)
    for j in range(pairs.shape[1]):
        ax2.plot([0, 1], pairs[:, j], "-", color="0.6", lw=0.8)
    ax2.set_xticks([0, 1], data["labels"])
    ax2.set_xlim(-0.5, 1.5)
    ax2.set_ylabel("test accuracy (%)")
    ax2.set_title("test accuracy, lines join a seed's pair")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- two-arm comparisons (mixup, MSE vs CE) ---

def _two_arm(runs: Runs, better: str, worse: str, labels: Mapping[str, str], check: Mapping[str, Any],
             decision: Mapping[str, Any], scale: str, out_dir: Path, claim_id: str, title: str) -> ClaimResult:
    """A two-arm claim decided by its pre-registration's one part ``accuracy``: ln(test error of ``worse`` / of
    ``better``) per seed, paired by seed."""
    seeds = _seeds(runs, (better, worse))
    acc = {v: _metric(runs[v], "test_acc") for v in (better, worse)}
    effect = log_ratio([1 - a for a in acc[worse]], [1 - a for a in acc[better]])
    cd = decide_claim(decision, {"accuracy": Measured(samples=effect)})
    numbers, rows = {}, []
    for v in (worse, better):
        numbers[f"{v}.test_acc_mean"] = seed_mean(acc[v])
        numbers[f"{v}.train_acc_mean"] = seed_mean(_metric(runs[v], "train_acc"))
        numbers[f"{v}.train_loss_mean"] = seed_mean(_metric(runs[v], "train_loss"))
        numbers[f"{v}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        cols = regime_columns(runs[v])
        rows.append({"method": labels[v], "variant": v, "test_err_%": pm([1 - a for a in acc[v]], 100),
                     "test_acc_%": pm(acc[v], 100), "train_acc_%": pm(_metric(runs[v], "train_acc"), 100),
                     "epochs": runs[v][0]["recipe"]["epochs"],
                     "diverged": sum(bool(r.get("diverged")) for r in runs[v]), "seeds": len(seeds),
                     "train_loss": cols["train_loss"], "steps": cols["steps"]})
    tables = write_table(rows, out_dir / "table", title=f"{title} ({scale} scale), paired over seeds {seeds}")
    data = {"scale": scale, "labels": [labels[worse], labels[better]], "acc": [acc[worse], acc[better]],
            "title": title}
    figs = figures.render(plot_two_arms, data, out_dir / "figure")
    diff = [100 * (b - w) for b, w in zip(acc[better], acc[worse])]
    agree = sum(d > 0 for d in diff)
    measured = (f"test acc {labels[better]} {pm(acc[better], 100)}% vs {labels[worse]} {pm(acc[worse], 100)}% "
                f"(paired diff {pm(diff)} pp, {agree}/{len(seeds)} seeds)")
    regime = "; ".join(arm_regime(labels[v], runs[v]) for v in (worse, better))
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("lecture.two_arms")
def plot_two_arms(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per-seed test error of two arms (lines join a seed's pair) and the paired difference."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    err = 100 * (1 - np.asarray(data["acc"], float))
    for k, label in enumerate(data["labels"]):
        ax1.plot(np.full(err.shape[1], k), err[k], ".", color=figures.COLORS[k], ms=7)
    for j in range(err.shape[1]):
        ax1.plot([0, 1], err[:, j], "-", color="0.6", lw=0.8)
    ax1.set_xticks([0, 1], data["labels"])
    ax1.set_xlim(-0.5, 1.5)
    ax1.set_ylabel("test error (%)")
    ax1.set_title(f"{data['title']} ({data['scale']})")
    d = err[0] - err[1]
    ax2.bar(np.arange(len(d)), d, color=figures.COLORS[0])
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xlabel("seed (index)")
    ax2.set_ylabel(f"test error {data['labels'][0]} - {data['labels'][1]} (pp)")
    ax2.set_title("paired difference (> 0: the claim's direction)")
    return figures.save(fig, stem)


def mixup_claim(runs: Runs, check: Mapping[str, Any], decision: Mapping[str, Any], scale: str, out_dir: str | Path,
                claim_id: str = "mixup") -> ClaimResult:
    """Mixup vs ERM (same net, recipe and seeds): mixup's test accuracy is higher, paired over seeds."""
    erm, mix = two_roles(runs, lambda m: float(m["recipe"].get("mixup_alpha", 0.0)) > 0, "with recipe.mixup_alpha")
    alpha = runs[mix][0]["recipe"]["mixup_alpha"]
    return _two_arm(runs, mix, erm, {mix: f"mixup (alpha {alpha:g})", erm: "ERM"}, check, decision, scale,
                    Path(out_dir), claim_id, "mixup vs ERM")


def mse_vs_ce_claim(runs: Runs, check: Mapping[str, Any], decision: Mapping[str, Any], scale: str,
                    out_dir: str | Path, claim_id: str = "mse-vs-cross-entropy") -> ClaimResult:
    """Cross-entropy vs squared error on one-hot targets (same net, optimizer, budget and seeds)."""
    ce, mse = two_roles(runs, lambda m: m["recipe"].get("loss") == "mse", "with recipe.loss mse")
    if runs[ce][0]["recipe"].get("loss", "ce") != "ce":
        raise ValueError(f"variant {ce!r} must train with cross-entropy (recipe.loss ce)")
    return _two_arm(runs, ce, mse, {ce: "cross-entropy", mse: "MSE"}, check, decision, scale, Path(out_dir),
                    claim_id, "cross-entropy vs MSE")


# ---------------------------------------------------------------- memorizing random labels ----------------

def epochs_to_fit(history: Sequence[Mapping[str, Any]], target: float) -> float:
    """The first epoch whose train accuracy is >= ``target`` (``inf`` if none is)."""
    for row in history:
        acc = row.get("train_acc")
        if acc not in (None, "") and float(acc) >= target:
            return float(row["epoch"])
    return math.inf


def memorize_claim(runs: Runs, histories: Histories, check: Mapping[str, Any], decision: Mapping[str, Any],
                   scale: str, out_dir: str | Path, claim_id: str = "memorize-random-labels") -> ClaimResult:
    """Epochs to reach the target train accuracy with true and with random labels, by network size. Decided by its
    pre-registration: ``fits_random`` = the final train accuracy of every random-label run (one decision per
    random-label size), ``slower_than_true`` = ln(epochs to fit random / true labels) at the true-label size, and
    ``wider_faster`` = ln(epochs to fit random labels at the smallest / at the largest size), per seed (a run that
    does not fit within its budget has no epochs to fit: its ratio is missing, so that part is inconclusive)."""
    out_dir = Path(out_dir)
    target = float(check["target_train_acc"])
    is_random = {v: bool(rs[0]["run"]["dataset"].get("random_labels")) for v, rs in runs.items()}
    size = {v: int(rs[0]["num_parameters"]) for v, rs in runs.items()}
    rand = sorted((v for v in runs if is_random[v]), key=size.get)
    true = [v for v in runs if not is_random[v]]
    if len(rand) < 2 or not true:
        raise ValueError(f"need >= 2 random-label variants of different sizes and a true-label one; have "
                         f"random {rand}, true {true}")
    seeds = _seeds(runs, list(runs))
    epochs = {v: [math.nan if r.get("diverged") else epochs_to_fit(h, target) for r, h in zip(runs[v], histories[v])]
              for v in runs}
    budget = {v: int(runs[v][0]["recipe"]["epochs"]) for v in runs}
    fitted = [v for v in rand if all(math.isfinite(e) for e in epochs[v])]
    slower = {}
    for t in true:
        same = [v for v in rand if size[v] == size[t]]
        if not same:
            raise ValueError(f"true-label variant {t!r} ({size[t]} params) has no random-label variant of its size")
        slower[t] = Measured(samples=log_ratio(epochs[same[0]], epochs[t]))
    cd = decide_claim(decision, {
        "fits_random": {v: Measured(samples=_metric(runs[v], "train_acc")) for v in rand},
        "slower_than_true": slower[true[0]] if len(true) == 1 else slower,
        "wider_faster": Measured(samples=log_ratio(epochs[rand[0]], epochs[rand[-1]]))})
    numbers, rows = {}, []
    for v in sorted(runs, key=lambda v: (is_random[v], size[v])):
        finite = [e for e in epochs[v] if math.isfinite(e)]
        numbers[f"{v}.fitted_fraction"] = len(finite) / len(epochs[v])
        if finite and len(finite) == len(epochs[v]):  # (no infinities in the JSON: a run that never fits has none)
            numbers[f"{v}.epochs_to_fit_mean"] = seed_mean(finite)
        numbers[f"{v}.test_acc_mean"] = seed_mean(_metric(runs[v], "test_acc"))
        numbers[f"{v}.train_acc_mean"] = seed_mean(_metric(runs[v], "train_acc"))
        numbers[f"{v}.train_loss_mean"] = seed_mean(_metric(runs[v], "train_loss"))
        numbers[f"{v}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        cols = regime_columns(runs[v])
        rows.append({"variant": v, "labels": "random" if is_random[v] else "true", "parameters": size[v],
                     "epochs_to_fit": pm(finite, digits=1) if finite else "-",
                     "fitted": f"{len(finite)}/{len(epochs[v])}", "budget": budget[v],
                     "train_acc_%": pm(_metric(runs[v], "train_acc"), 100),
                     "test_acc_%": pm(_metric(runs[v], "test_acc"), 100), "seeds": len(seeds),
                     "train_loss": cols["train_loss"], "steps": cols["steps"]})
    tables = write_table(rows, out_dir / "table", title=f"Epochs to {100 * target:g}% train accuracy, true vs random "
                         f"labels ({scale} scale); test accuracy on the true test labels")
    curves = {v: [[[float(r["epoch"]), float(r["train_acc"])] for r in h if r.get("train_acc") not in (None, "")]
                  for h in histories[v]] for v in runs}
    data = {"scale": scale, "target": target,
            "variants": [{"name": v, "random": is_random[v], "parameters": size[v], "curves": curves[v],
                          "epochs": [e if math.isfinite(e) else None for e in epochs[v]]}
                         for v in sorted(runs, key=lambda v: (is_random[v], size[v]))]}
    figs = figures.render(plot_memorize, data, out_dir / "figure")
    def fit_epochs(v: str) -> str:
        return pm([e for e in epochs[v] if math.isfinite(e)], digits=1) if fitted or not is_random[v] else "-"

    measured = "; ".join(f"{'random' if is_random[v] else 'true'} labels, {size[v]} params: {fit_epochs(v)}"
                         f" epochs ({sum(math.isfinite(e) for e in epochs[v])}/{len(epochs[v])} fitted)"
                         for v in sorted(runs, key=lambda v: (is_random[v], size[v])))
    unfit = sum(not math.isfinite(e) for v in runs for e in epochs[v])
    notes = (f"{unfit} run(s) did not reach {100 * target:g}% train accuracy within the budget (or diverged): their "
             "epochs-to-fit ratios are missing" if unfit else "")
    regime = "; ".join(arm_regime(f"{'random' if is_random[v] else 'true'} labels, {size[v]} params", runs[v])
                       for v in sorted(runs, key=lambda v: (is_random[v], size[v])))
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


@figures.register_plot("lecture.memorize")
def plot_memorize(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Train accuracy per epoch (one line per seed) for true and random labels, and the epochs to fit."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    for k, v in enumerate(data["variants"]):
        color = figures.COLORS[k % len(figures.COLORS)]
        for i, c in enumerate(v["curves"]):
            c = np.asarray(c, float).reshape(-1, 2)
            label = f"{'random' if v['random'] else 'true'} labels, {v['parameters']} params"
            ax1.plot(c[:, 0], 100 * c[:, 1], color=color, ls="--" if v["random"] else "-", lw=1, alpha=0.7,
                     label=label if i == 0 else None)
        e = np.asarray([np.nan if x is None else x for x in v["epochs"]], float)
        ax2.plot(np.full(len(e), k), e, "o", color=color)
    ax1.axhline(100 * data["target"], color="k", ls=":", lw=0.8)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train accuracy (%)")
    ax1.legend(fontsize=8)
    ax1.set_title(f"fitting true and random labels ({data['scale']})")
    ax2.set_xticks(range(len(data["variants"])),
                   [f"{'rand' if v['random'] else 'true'}\n{v['parameters']}" for v in data["variants"]])
    ax2.set_ylabel(f"epochs to {100 * data['target']:g}% train accuracy")
    ax2.set_title("epochs to fit (missing: not within the budget)")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- claim jobs ---------------------------------
# The rule's params: ``runs`` (variant -> run directory), ``specs`` (variant -> run spec), ``lines`` (the
# experiment's random-line settings).

def _runs(job: ClaimJob) -> dict[str, Any]:
    return {v: read_runs(d) for v, d in job.params["runs"].items()}


def run_local_minima(job: ClaimJob) -> ClaimResult:
    return local_minima_cluster(_runs(job), job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


def run_swa(job: ClaimJob) -> ClaimResult:
    runs = _runs(job)
    lines, alphas = {}, None
    for v, d in job.params["runs"].items():
        lines[v] = {}
        for seed, where in trained_seeds(d):
            alphas, lines[v][seed] = flatness_lines(job.params["specs"][v], where, job.params["lines"],
                                                    seed_dir(job.out_dir / "lines" / v, seed), progress=job.progress)
    return swa_claim(runs, lines, alphas, job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


def run_mixup(job: ClaimJob) -> ClaimResult:
    return mixup_claim(_runs(job), job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


def run_mse_vs_ce(job: ClaimJob) -> ClaimResult:
    return mse_vs_ce_claim(_runs(job), job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


def run_memorize(job: ClaimJob) -> ClaimResult:
    runs = _runs(job)
    histories = {v: [read_history(p) for _, p in trained_seeds(d)] for v, d in job.params["runs"].items()}
    return memorize_claim(runs, histories, job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


CLAIMS = {"local-minima-cluster": run_local_minima, "swa": run_swa, "mixup": run_mixup,
          "memorize-random-labels": run_memorize, "mse-vs-cross-entropy": run_mse_vs_ce}
