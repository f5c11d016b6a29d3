"""The training-ingredient claims of source 000: the ablation of momentum, weight decay and preprocessing,
and Bottou's per-example SGD vs full-batch GD.

Each function takes the metrics of the finished runs (one list per variant, one entry per seed, in seed
order), measures every part of the claim's pre-registered ``decision`` (``config/claims.yaml``) per seed, decides
it by :func:`losslab.claims.verdicts.decide_claim`, and writes the claim's table, figure and verdict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from losslab.plots import figures
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, seed_mean
from losslab.claims.tables import mean_std, pm, write_table
from losslab.claims.claim_job import ClaimJob
from losslab.claims.runs import read_history, read_runs, seed_dirs
from losslab.core.trainer import batching

Runs = Mapping[str, Sequence[Mapping[str, Any]]]

ABLATION_VARIANTS = ("full", "no_momentum", "no_weight_decay", "no_preprocessing", "none")
ABLATION_LABELS = {"full": "all ingredients", "no_momentum": "- momentum", "no_weight_decay": "- weight decay",
                   "no_preprocessing": "- preprocessing", "none": "- all three"}
# source 000, ResNet-56 on CIFAR-10: 93.1 % with everything, and the drop in points for each removal
ABLATION_REPORTED = {"full": 93.1, "no_momentum": -1.5, "no_weight_decay": -3.2, "no_preprocessing": -6.3,
                     "none": -12.5}


def _acc(runs: Sequence[Mapping[str, Any]], key: str = "test_acc") -> list[float]:
    """Per-seed accuracy; a diverged run is NaN, which makes its comparisons inconclusive (and is counted in
    the table's ``diverged`` column)."""
    return [math.nan if r.get("diverged") else float(r[key]) for r in runs]


def log_ratio(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-seed ``ln(a_i / b_i)`` (paired by seed). A NaN (diverged run), a zero or a negative value gives a
    non-finite sample, which the pre-registered decision counts as missing (inconclusive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return [float(x) for x in np.log(np.asarray(a, float) / np.asarray(b, float))]


def error_rate(runs: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per-seed test error ``1 - test_acc`` (NaN for a diverged run)."""
    return [1 - a for a in _acc(runs)]


def optimizer_steps(run: Mapping[str, Any]) -> float:
    """The optimizer steps a run took: its epochs times the steps per epoch of its batch size
    (:func:`losslab.core.trainer.batching`); NaN when the metrics do not say."""
    try:
        return float(int(run["epochs"]) * batching(int(run["train_size"]), run["recipe"]["batch_size"])[1])
    except (KeyError, TypeError, ValueError):
        return math.nan


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if math.isfinite(x) else "?"


def regime_columns(runs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The table columns saying where an arm's numbers were measured: its final train loss, optimizer steps,
    and train and test accuracy (mean ± std over seeds)."""
    steps = [optimizer_steps(r) for r in runs]
    return {"train_loss": pm(_acc(runs, "train_loss"), digits=4),
            "steps": _fmt(float(np.mean(steps)), ".0f") if steps else "?",
            "train_acc_%": pm(_acc(runs, "train_acc"), 100), "test_acc_%": pm(_acc(runs), 100)}


def arm_regime(label: str, runs: Sequence[Mapping[str, Any]]) -> str:
    """One arm's regime for :attr:`ClaimResult.regime`: mean train loss, steps, train and test accuracy."""
    steps = [optimizer_steps(r) for r in runs]
    return (f"{label}: train loss {_fmt(mean_std(_acc(runs, 'train_loss'))[0], '.3g')}, "
            f"{_fmt(float(np.mean(steps)) if steps else math.nan, '.0f')} steps, "
            f"train acc {_fmt(100 * mean_std(_acc(runs, 'train_acc'))[0], '.1f')}%, "
            f"test acc {_fmt(100 * mean_std(_acc(runs))[0], '.1f')}%")


def _check_seeds(runs: Runs, names: Sequence[str]) -> list[int]:
    seeds = [r["seed"] for r in runs[names[0]]]
    for n in names:
        if [r["seed"] for r in runs[n]] != seeds:
            raise ValueError(f"variant {n!r} has seeds {[r['seed'] for r in runs[n]]}, expected {seeds}")
    return seeds


# the parts of the ablation's decision: (part, the arm whose test error is the numerator, the denominator)
ABLATION_PARTS = (("momentum", "no_momentum", "full"), ("weight_decay", "no_weight_decay", "full"),
                  ("preprocessing", "no_preprocessing", "full"), ("all_vs_momentum", "none", "no_momentum"),
                  ("all_vs_weight_decay", "none", "no_weight_decay"),
                  ("all_vs_preprocessing", "none", "no_preprocessing"))


def ablation(runs: Runs, check: Mapping[str, Any], decision: Mapping[str, Any], scale: str, out_dir: str | Path,
             claim_id: str = "resnet56-ingredient-ablation") -> ClaimResult:
    """The ablation decided by its pre-registration: six parts, each ln(test error of the arm with less / of the
    arm with more) per seed (paired by seed), combined by Holm."""
    out_dir = Path(out_dir)
    seeds = _check_seeds(runs, ABLATION_VARIANTS)
    acc = {v: _acc(runs[v]) for v in ABLATION_VARIANTS}
    err = {v: error_rate(runs[v]) for v in ABLATION_VARIANTS}
    effects = {part: log_ratio(err[num], err[den]) for part, num, den in ABLATION_PARTS}
    cd = decide_claim(decision, {part: Measured(samples=x) for part, x in effects.items()})

    rows, numbers = [], {}
    for v in ABLATION_VARIANTS:
        drop = [100 * (a - f) for a, f in zip(acc[v], acc["full"])]
        numbers[f"{v}.test_acc_mean"] = seed_mean(acc[v])
        numbers[f"{v}.train_acc_mean"] = seed_mean(_acc(runs[v], "train_acc"))
        numbers[f"{v}.train_loss_mean"] = seed_mean(_acc(runs[v], "train_loss"))
        numbers[f"{v}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        rows.append({
            "variant": ABLATION_LABELS[v],
            "test_acc_%": pm(acc[v], 100),
            "train_acc_%": pm(_acc(runs[v], "train_acc"), 100),
            "change_vs_full_pp": "" if v == "full" else pm(drop),
            "reported": f"{ABLATION_REPORTED[v]:.1f}%" if v == "full" else f"{ABLATION_REPORTED[v]:+.1f} pp",
            "diverged": sum(bool(r.get("diverged")) for r in runs[v]),
            "seeds": len(seeds),
            "train_loss": regime_columns(runs[v])["train_loss"],
            "steps": regime_columns(runs[v])["steps"],
        })
    tables = write_table(rows, out_dir / "table", title=f"Ingredient ablation ({scale} scale), test accuracy "
                         f"over seeds {seeds}")

    data = {"scale": scale, "n_seeds": len(seeds), "acc": {v: acc[v] for v in ABLATION_VARIANTS}}
    figs = figures.render(plot_ablation, data, out_dir / "figure")

    measured = f"full {pm(acc['full'], 100, 1)}%; " + "; ".join(
        f"{ABLATION_LABELS[v]} {100 * (mean_std(acc[v])[0] - mean_std(acc['full'])[0]):+.1f} pp"
        for v in ABLATION_VARIANTS[1:])
    regime = "; ".join(arm_regime(ABLATION_LABELS[v], runs[v]) for v in ABLATION_VARIANTS)
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("ingredients.ablation")
def plot_ablation(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Measured test accuracy per variant (bars: mean ± std, dots: seeds) and the change from removing each
    ingredient beside the reported one."""
    scale, acc = data["scale"], {v: np.asarray(a, dtype=float) for v, a in data["acc"].items()}
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    x = np.arange(len(ABLATION_VARIANTS))
    means = [100 * mean_std(acc[v])[0] for v in ABLATION_VARIANTS]
    stds = [100 * mean_std(acc[v])[1] for v in ABLATION_VARIANTS]
    ax1.bar(x, means, yerr=stds, color=figures.COLORS[0], alpha=0.7, capsize=3)
    for i, v in enumerate(ABLATION_VARIANTS):
        ax1.plot(np.full(len(acc[v]), i), 100 * acc[v], "k.", ms=4)
    ax1.set_xticks(x, [ABLATION_LABELS[v] for v in ABLATION_VARIANTS], rotation=20, ha="right")
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_ylim(0, 100)  # bars start at zero
    ax1.set_title(f"measured ({scale}), mean ± std over {data['n_seeds']} seeds")
    removals = ABLATION_VARIANTS[1:]
    measured_drop = [100 * (mean_std(acc[v])[0] - mean_std(acc["full"])[0]) for v in removals]
    w = 0.38
    xr = np.arange(len(removals))
    ax2.bar(xr - w / 2, [ABLATION_REPORTED[v] for v in removals], w, label="reported (ResNet-56, CIFAR-10)",
            color=figures.COLORS[1])
    ax2.bar(xr + w / 2, measured_drop, w, label=f"measured ({scale})", color=figures.COLORS[0])
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xticks(xr, [ABLATION_LABELS[v] for v in removals], rotation=20, ha="right")
    ax2.set_ylabel("test accuracy change vs all ingredients (pp)")
    ax2.legend(loc="best")
    ax2.set_title("removing an ingredient")
    return figures.save(fig, stem)


def sgd_vs_gd(runs: Runs, histories: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
              check: Mapping[str, Any], decision: Mapping[str, Any], scale: str, out_dir: str | Path,
              claim_id: str = "bottou-sgd-beats-gd") -> ClaimResult:
    """Test mistakes of per-example SGD vs full-batch GD (Bottou 1991 as quoted by source 000: 174 vs 194), decided
    by its pre-registration: ln(GD mistakes / SGD mistakes) per seed, paired by seed, at the same epochs. A variant
    ``gd_converged`` (full-batch GD run to convergence, when the scale has it) is reported beside it, undecided: the
    converged comparison."""
    out_dir = Path(out_dir)
    arms = ("sgd", "gd") + (("gd_converged",) if "gd_converged" in runs else ())
    seeds = _check_seeds(runs, arms)
    test_n = runs["sgd"][0]["test_size"]
    mistakes = {v: [(1 - a) * r["test_size"] for a, r in zip(_acc(runs[v]), runs[v])] for v in arms}
    cd = decide_claim(decision, {"equal_epochs": Measured(samples=log_ratio(mistakes["gd"], mistakes["sgd"]))})
    reported = {"sgd": 174, "gd": 194, "gd_converged": ""}
    labels = {"sgd": "SGD (batch 1)", "gd": "GD (full batch)", "gd_converged": "GD (full batch), converged"}
    labels = {v: labels[v] for v in arms}
    rows, numbers = [], {}
    for v in arms:
        numbers[f"{v}.test_mistakes_mean"] = seed_mean(mistakes[v])
        numbers[f"{v}.train_acc_mean"] = seed_mean(_acc(runs[v], "train_acc"))
        numbers[f"{v}.train_loss_mean"] = seed_mean(_acc(runs[v], "train_loss"))
        numbers[f"{v}.steps"] = float(np.mean([optimizer_steps(r) for r in runs[v]]))
        rows.append({"method": labels[v], "test_mistakes": pm(mistakes[v], 1, 1), "test_set": test_n,
                     "train_acc_%": pm(_acc(runs[v], "train_acc"), 100), "reported_mistakes": reported[v],
                     "lr": runs[v][0]["recipe"]["lr"], "epochs": runs[v][0]["recipe"]["epochs"],
                     "diverged": sum(bool(r.get("diverged")) for r in runs[v]), "seeds": len(seeds),
                     "train_loss": regime_columns(runs[v])["train_loss"], "steps": regime_columns(runs[v])["steps"],
                     "test_acc_%": regime_columns(runs[v])["test_acc_%"]})
    tables = write_table(rows, out_dir / "table", title=f"SGD vs GD ({scale} scale), test mistakes out of "
                         f"{test_n}; reported: Bottou 1991, out of an unknown test-set size")

    curves = {v: [{"epoch": [int(r["epoch"]) for r in h if r.get("test_acc") not in ("", None)],
                   "err": [100 * (1 - float(r["test_acc"])) for r in h if r.get("test_acc") not in ("", None)]}
                  for h in histories[v]] for v in arms}
    data = {"scale": scale, "test_n": test_n, "labels": labels, "curves": curves, "mistakes": mistakes}
    figs = figures.render(plot_sgd_vs_gd, data, out_dir / "figure")

    measured = (f"SGD {pm(mistakes['sgd'], 1, 1)} vs GD {pm(mistakes['gd'], 1, 1)} test mistakes "
                f"(of {test_n})")
    if "gd_converged" in arms:
        steps = int(np.mean([optimizer_steps(r) for r in runs["gd_converged"]]))
        measured += (f"; GD run to {steps} steps (not decided): {pm(mistakes['gd_converged'], 1, 1)}, "
                     f"ln ratio to SGD {pm(log_ratio(mistakes['gd_converged'], mistakes['sgd']), 1, 3)}")
    regime = "; ".join(arm_regime(labels[v], runs[v]) for v in arms)
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("ingredients.sgd_vs_gd")
def plot_sgd_vs_gd(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Test error per epoch of each seed's SGD and GD run (left) and the final test mistakes per seed with
    their mean ± std (right)."""
    scale, test_n, labels = data["scale"], data["test_n"], data["labels"]
    mistakes = {v: np.asarray(m, dtype=float) for v, m in data["mistakes"].items()}
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    arms = list(labels)
    for k, v in enumerate(arms):
        for i, c in enumerate(data["curves"][v]):
            ax1.plot(c["epoch"], c["err"], color=figures.COLORS[k], alpha=0.6, lw=1,
                     label=labels[v] if i == 0 else None)
    if "gd_converged" in labels:  # 40 and 2000 epochs on one axis
        ax1.set_xscale("symlog", linthresh=1)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("test error (%)")
    ax1.legend()
    ax1.set_title("test error during training (one line per seed)")
    for k, v in enumerate(arms):
        ax2.plot(np.full(len(mistakes[v]), k), mistakes[v], ".", color=figures.COLORS[k], ms=6)
        ax2.errorbar(k + 0.15, mean_std(mistakes[v])[0], yerr=mean_std(mistakes[v])[1], fmt="o",
                     color=figures.COLORS[k], capsize=3)
    ax2.set_xticks(range(len(arms)), [labels[v] for v in arms])
    ax2.set_xlim(-0.5, len(arms) - 0.5)
    ax2.set_ylabel(f"test mistakes (out of {test_n})")
    ax2.set_title(f"final test mistakes ({scale}); reported 174 vs 194")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- claim jobs ---------------------------------

def run_ablation(job: ClaimJob) -> ClaimResult:
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    return ablation(runs, job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


def run_sgd_vs_gd(job: ClaimJob) -> ClaimResult:
    runs = {v: read_runs(d) for v, d in job.dirs.items()}
    histories = {v: [read_history(p) for p in seed_dirs(d)] for v, d in job.dirs.items()}
    return sgd_vs_gd(runs, histories, job.check, job.claim["decision"], job.scale, job.out_dir, claim_id=job.id)


CLAIMS = {"resnet56-ingredient-ablation": run_ablation, "bottou-sgd-beats-gd": run_sgd_vs_gd}
