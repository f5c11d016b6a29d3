"""Keskar et al. (ICLR 2017), "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima":
small-batch (SB) and large-batch (LB) Adam reach similar training accuracy, LB tests worse, and LB minimizers
are sharper.

One experiment of a scale with a ``sharpness`` settings block is one of Keskar's networks (or its analogue):
its variants differ by batch size, and the block names their roles (the ``network`` whose reported numbers
the tables quote, the ``small`` and ``large`` variants, the batch-size ``sweep``, the ``warmstart`` epochs of
the small variant's snapshots; for an augmented SB/LB pair of the remedies claim, the ``baseline`` experiment
without augmentation) and the sharpness and interpolation settings. The computations:

* :func:`sharpness_of_dir`: Metric 2.1 (:func:`losslab.core.hessian.epsilon_sharpness`, L-BFGS-B from several
  starts, ``maxiter`` iterations each; ``method: keskar`` for the paper's single run) of every trained
  network under a run directory, at each ``eps``, in the full space and in a random
  ``subspace_dim``-dimensional subspace, on the training loss (optionally a fixed subset of it);
* :func:`warm_start`: LB runs started from the SB run's snapshots (``recipe.init_from``), Keskar's Fig. 5;
* :func:`interpolate_pair`: the parametric plot ``f(alpha x_LB + (1 - alpha) x_SB)`` (Fig. 3), i.e.
  :func:`losslab.core.surfaces.interpolation` from ``x_SB`` (alpha 0) to ``x_LB`` (alpha 1);

and one function per claim (:func:`generalization_gap`, :func:`sharpness_metric`, :func:`parametric_plot`,
:func:`threshold_and_warmstart`, :func:`remedies`) that applies the registry's pass rule and writes the table,
the figure and the :class:`losslab.claims.verdicts.ClaimResult`. They take ``nets``: experiment name -> the loaded
outputs of that network (:func:`load_net`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from losslab.plots import figures
from losslab.plots.landscape import ACC_COLOR, LOSS_COLOR, SPLIT_STYLES
from losslab import io as lio
from losslab.claims.verdicts import (ClaimResult, Comparison, all_of,
                                     at_least, every_seed_at_least, paired, ratio_at_least, ratio_estimate, seed_mean)
from losslab.claims.tables import mean_std, pm, write_table
from losslab.claims.settings import Settings
from losslab.claims.claim_job import ClaimJob
from losslab.core.hessian import TrainingLoss, epsilon_sharpness
from losslab.core.data import prepare
from losslab.core.models import build
from losslab.claims.runs import (METRICS, MODEL, epoch_group, epoch_of, read_runs, seed_dir, trained_networks,
                                 weights_file)
from losslab.claims.training import load_trained, train_run
from losslab.core.surfaces import evaluators_for, grid, interpolation, read_surface
from losslab.core.weights import flatten

SPACES = ("full", "subspace")
# method: "multistart" (L-BFGS-B from the centre, the sign-gradient corner and `random_starts` random corners,
# `maxiter` iterations each: a real maximum in the box) or "keskar" (the paper's one run from the centre, which
# stays near it at a well-trained point); see losslab.core.hessian.epsilon_sharpness.
# the keys of an experiment's `sharpness` block that name the family's roles (which variants, the warm starts, the
# interpolation block, the remedies' baseline), beside the Metric 2.1 settings (SharpnessSettings)
ROLE_KEYS = frozenset({"network", "small", "large", "sweep", "warmstart", "interpolation", "baseline"})


@dataclass(frozen=True)
class SharpnessSettings(Settings):
    """Metric 2.1's keys of an experiment's ``sharpness`` block (:meth:`of_block`)."""

    eps: Sequence[float] = (1e-3, 5e-4)
    subspace_dim: int = 100
    subspace_seed: int = 0
    maxiter: int = 10
    method: str = "multistart"
    random_starts: int = 2
    n_train: int | None = None
    bn: str = "running"
    chunk: int = 1000

    @classmethod
    def of_block(cls, block: SharpnessSettings | Mapping[str, Any]) -> SharpnessSettings:
        """The settings of an experiment's whole ``sharpness`` block (its :data:`ROLE_KEYS` left out; any other
        unknown key is named)."""
        if isinstance(block, cls):
            return block
        return cls.from_mapping({k: v for k, v in block.items() if k not in ROLE_KEYS}, where="sharpness")


@dataclass(frozen=True)
class InterpolationSettings(Settings):
    """The ``sharpness.interpolation`` block: Keskar et al.'s parametric line from the SB to the LB solution."""

    alphas: Sequence[float] = (-1.0, 2.0, 25)
    bn: str = "recompute"
    n_train: int | None = None
    n_test: int | None = None
    chunk: int = 1000
    tile_rows: int = 5


# Keskar et al. 2017, Table 2: (train acc SB, LB), (test acc SB, LB), each (mean, std) in %
REPORTED_ACC = {
    "F1": {"train": ((99.66, 0.05), (99.92, 0.01)), "test": ((98.03, 0.07), (97.81, 0.07))},
    "F2": {"train": ((99.99, 0.03), (98.35, 2.08)), "test": ((64.02, 0.2), (59.45, 1.05))},
    "C1": {"train": ((99.89, 0.02), (99.66, 0.2)), "test": ((80.04, 0.12), (77.26, 0.42))},
    "C2": {"train": ((99.99, 0.04), (99.99, 0.01)), "test": ((89.24, 0.12), (87.26, 0.07))},
    "C3": {"train": ((99.56, 0.44), (99.88, 0.30)), "test": ((49.58, 0.39), (46.45, 0.43))},
    "C4": {"train": ((99.10, 1.23), (99.57, 1.84)), "test": ((63.08, 0.5), (57.81, 0.17))},
}
# Tables 3 (full space) and 4 (random 100-dim subspace): (space, eps) -> (SB, LB) sharpness
REPORTED_SHARPNESS = {
    "F1": {("full", 1e-3): (1.23, 205.14), ("full", 5e-4): (0.61, 42.90), ("subspace", 1e-3): (0.11, 9.22)},
    "F2": {("full", 1e-3): (1.39, 310.64), ("full", 5e-4): (0.90, 93.15), ("subspace", 1e-3): (0.29, 23.63)},
    "C1": {("full", 1e-3): (28.58, 707.23), ("full", 5e-4): (7.08, 227.31), ("subspace", 1e-3): (2.18, 137.25)},
    "C2": {("full", 1e-3): (8.68, 925.32), ("full", 5e-4): (2.07, 175.31), ("subspace", 1e-3): (0.95, 25.09)},
    "C3": {("full", 1e-3): (29.85, 258.75), ("full", 5e-4): (8.56, 105.11), ("subspace", 1e-3): (17.02, 236.03)},
    "C4": {("full", 1e-3): (12.83, 421.84), ("full", 5e-4): (4.07, 109.35), ("subspace", 1e-3): (6.05, 72.99)},
}
# Appendix E, Tables 6-7: test acc (%) with data augmentation SB / LB, and the augmented LB's sharpness (1e-3)
REPORTED_AUGMENTED = {"C1": ((83.63, 82.50), 231.77), "C2": ((89.82, 90.26), 468.65),
                      "C3": ((54.55, 53.03), 103.68), "C4": ((63.05, 65.88), 271.06)}

Net = Mapping[str, Any]


# ---------------------------------------------------------------- computations ----------------------------

def sharpness_of_model(model, x, y, settings: SharpnessSettings | Mapping[str, Any],
                       loss: str = "ce") -> dict[str, Any]:
    """Metric 2.1 of ``model`` on the training loss over ``(x, y)``: one record per space and ``eps``."""
    s = SharpnessSettings.of_block(settings)
    f = TrainingLoss(model, x, y, loss=loss, bn=s.bn, chunk=s.chunk)
    values = []
    for space in SPACES:
        p = None if space == "full" else min(int(s.subspace_dim), f.dim)
        for eps in s.eps:
            r = epsilon_sharpness(f, float(eps), subspace_dim=p, seed=s.subspace_seed, maxiter=s.maxiter,
                                  method=s.method, random_starts=int(s.random_starts))
            values.append({"space": space, "eps": float(eps), "p": p, "value": r.value, "loss": r.loss,
                           "max_loss": r.max_loss, "evaluations": r.evaluations, "method": r.method,
                           "start": r.start})
    return {"n": f.n, "dim": f.dim, "values": values}


def sharpness_of_dir(run_dir: str | os.PathLike, settings: Mapping[str, Any], *, log=None) -> dict[str, Any]:
    """:func:`sharpness_of_model` of every seed (and warm-start group) under ``run_dir``, each network built
    from its own ``metrics.json`` run spec. A diverged run gets NaN values."""
    run_dir = Path(run_dir)
    s = SharpnessSettings.of_block(settings)
    records, data_cache = [], {}
    for d in trained_networks(run_dir):
        m = lio.read_json(d / METRICS)
        run = m["run"]
        key = repr(sorted(run["dataset"].items()))
        if key not in data_cache:
            data = prepare(run["dataset"])
            ev = data.evaluation_subsets(s.n_train)
            data_cache[key] = (data, ev.x_train, ev.y_train)
        data, x, y = data_cache[key]
        rel = d.relative_to(run_dir)
        rec = {"dir": str(rel), "group": str(rel.parent) if str(rel.parent) != "." else "", "seed": m["seed"],
               "diverged": bool(m.get("diverged")), "batch_size": m["recipe"]["batch_size"],
               "train_size": m["train_size"],
               **{k: m.get(k) for k in ("train_acc", "test_acc", "train_loss", "test_loss", "epochs")}}
        if rec["diverged"]:
            rec["values"] = [{"space": sp, "eps": float(e), "value": math.nan} for sp in SPACES for e in s.eps]
        else:
            model = build(run["model"], data.input_shape, data.num_classes)
            lio.load_state_dict(model, d / MODEL)
            model.eval()
            rec.update(sharpness_of_model(model, x, y, s, run.get("recipe", {}).get("loss", "ce")))
        if log is not None:
            log.info("%s: %s", rel, ", ".join(f"{v['space']} eps {v['eps']:g}: {v['value']:.4g}"
                                              for v in rec["values"]))
        records.append(rec)
    return {"run_dir": str(run_dir), "settings": asdict(s), "runs": records}


def warm_start(run: Mapping[str, Any], source_dir: str | os.PathLike, epochs: Sequence[int],
               seeds: Sequence[int], out_dir: str | os.PathLike, ckpt_dir: str | os.PathLike, *,
               threads: int = 1, progress: bool = False, log=None) -> list[dict]:
    """Keskar's Fig. 5: for each ``epoch`` k and seed, train ``run`` (the LB recipe) from the SB run's
    snapshot ``source_dir/seed<s>/snapshots/epoch_<k>.pt`` into ``out_dir/epoch<k>/seed<s>``."""
    run = {k: v for k, v in run.items() if k != "lr_search"}
    out = []
    for k in epochs:
        for seed in seeds:
            snap = weights_file(source_dir, seed, k)
            if not snap.exists():
                raise FileNotFoundError(f"{snap}: no snapshot of epoch {k}; list the warm-start epochs in the "
                                        f"small variant's recipe.snapshots")
            spec = {**run, "recipe": {**run["recipe"], "init_from": str(snap)}}
            m = train_run(spec, seed, seed_dir(Path(out_dir) / epoch_group(k), seed), ckpt_dir, threads=threads,
                          progress=progress)
            if log is not None:
                log.info("warm start from epoch %d, seed %d: train acc %.4f test acc %.4f", k, seed,
                         m["train_acc"], m["test_acc"])
            out.append(m)
    return out


def interpolate_pair(run: Mapping[str, Any], small: str | os.PathLike, large: str | os.PathLike,
                     out: str | os.PathLike, settings: Mapping[str, Any], *, progress: bool = False):
    """Keskar's parametric plot between two trained networks of one architecture (``small`` = x_SB at
    alpha 0, ``large`` = x_LB at alpha 1): :func:`losslab.core.surfaces.interpolation` on the settings' alpha
    grid, BN per the settings' policy (default ``recompute``: fresh statistics at every point)."""
    s = InterpolationSettings.of(settings)
    model, data = load_trained(run, small)
    theta_sb = flatten(model)
    other, _ = load_trained(run, large)
    theta_lb = flatten(other)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    evaluators = evaluators_for(model, data, loss=run.get("recipe", {}).get("loss", "ce"), bn=s.bn,
                                chunk=s.chunk)
    return interpolation(out, evaluators, theta_sb, theta_lb, grid(s.alphas), checkpoints=(small, large),
                         tile_rows=s.tile_rows, progress=progress)


# ---------------------------------------------------------------- loading ---------------------------------

def load_net(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of one network, from ``spec``: ``settings`` (the experiment's ``sharpness`` block),
    ``runs`` (variant -> run dir), ``sharpness`` (variant -> sharpness JSON), optionally ``warmstart`` (its
    sharpness JSON, which carries the runs' accuracies) and ``interpolation`` (a directory of
    ``seed<k>.h5``). Run metrics are read with :func:`losslab.claims.runs.read_runs`."""
    net: dict[str, Any] = {"settings": dict(spec["settings"])}
    net["runs"] = {v: read_runs(d) for v, d in spec.get("runs", {}).items()}
    net["sharpness"] = {v: lio.read_json(p) for v, p in spec.get("sharpness", {}).items()}
    if spec.get("warmstart"):
        net["warmstart"] = lio.read_json(spec["warmstart"])
    if spec.get("interpolation"):
        found = sorted(Path(spec["interpolation"]).glob("seed*.h5"), key=lambda p: int(p.stem[4:]))
        net["interpolation"] = {int(p.stem[4:]): read_surface(p) for p in found}
    return net


# ---------------------------------------------------------------- helpers ---------------------------------

def _acc(runs: Sequence[Mapping[str, Any]], key: str = "test_acc") -> list[float]:
    return [math.nan if r.get("diverged") else float(r[key]) for r in runs]


def _seeds(runs: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(r["seed"]) for r in runs]


def _same_seeds(name: str, *lists: Sequence[Mapping[str, Any]]) -> list[int]:
    seeds = _seeds(lists[0])
    for other in lists[1:]:
        if _seeds(other) != seeds:
            raise ValueError(f"{name}: the arms have seeds {seeds} and {_seeds(other)}; they must be paired")
    return seeds


def _batch(runs: Sequence[Mapping[str, Any]]) -> int:
    r = runs[0]
    bs = r["recipe"]["batch_size"]
    return int(r["train_size"]) if bs == "full" else min(int(bs), int(r["train_size"]))


def phi(records: Mapping[str, Any] | Sequence[Mapping[str, Any]], space: str, eps: float,
        group: str | None = None, seeds: Sequence[int] | None = None) -> list[float]:
    """Per-seed sharpness values of a sharpness file (or its ``runs`` list) in one setting, in seed order
    (``group``: a warm-start epoch directory; ``seeds``: check the order against these)."""
    runs = records["runs"] if isinstance(records, Mapping) else records
    if group is not None:
        runs = [r for r in runs if r["group"] == group]
    runs = sorted(runs, key=lambda r: r["seed"])
    if seeds is not None and [r["seed"] for r in runs] != list(seeds):
        raise ValueError(f"sharpness records have seeds {[r['seed'] for r in runs]}, expected {list(seeds)}")
    out = []
    for r in runs:
        match = [v["value"] for v in r["values"] if v["space"] == space and math.isclose(v["eps"], eps)]
        if not match:
            raise KeyError(f"no sharpness for space {space!r}, eps {eps:g} in {r['dir']} (settings: "
                           f"{sorted({(v['space'], v['eps']) for v in r['values']})})")
        out.append(float(match[0]) if match[0] is not None else math.nan)
    return out


def _label(net: Net) -> str:
    return str(net["settings"].get("network", "?"))


def _title(name: str, net: Net) -> str:
    return f"{name} ({_label(net)} analogue)" if name else _label(net)


def _result(claim_id: str, scale: str, check: Mapping[str, Any], comps: list[Comparison], measured: str,
            n_seeds: int, numbers: dict[str, float], figs: list[str], tables: list[str]) -> ClaimResult:
    return ClaimResult(id=claim_id, scale=scale, verdict=all_of(c.verdict for c in comps), rule=check["rule"],
                       measured=measured, n_seeds=n_seeds, comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes="; ".join(c.describe() for c in comps))


def _dots(ax, x: float, values: Sequence[float], scale: float = 1.0) -> None:
    ax.plot(np.full(len(values), x), scale * np.asarray(values, float), "k.", ms=4, zorder=3)


def _fmt_reported(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"{pair[0]:g} / {pair[1]:g} ({pair[1] / pair[0]:.0f}x)"


# ---------------------------------------------------------------- the claims ------------------------------

def generalization_gap(nets: Mapping[str, Net], check: Mapping[str, Any], scale: str, out_dir: str | Path,
                       claim_id: str = "keskar-lb-generalization-gap") -> ClaimResult:
    """Table 2: SB and LB reach similar (high) train accuracy, LB tests worse. Per network: both arms reach
    ``min_train_acc`` in every seed (else inconclusive: not the claim's regime) and SB test accuracy exceeds
    LB's, paired over seeds (``min_agree``)."""
    out_dir = Path(out_dir)
    comps, rows, numbers, measured, n_seeds = [], [], {}, [], 0
    for name, net in nets.items():
        s = net["settings"]
        sb, lb = net["runs"][s["small"]], net["runs"][s["large"]]
        seeds = _same_seeds(name, sb, lb)
        n_seeds = n_seeds or len(seeds)
        rep = REPORTED_ACC.get(_label(net))
        comps += [every_seed_at_least(f"{name}: SB train acc >= {check['min_train_acc']:g} in every seed",
                                      _acc(sb, "train_acc"), check["min_train_acc"]),
                  every_seed_at_least(f"{name}: LB train acc >= {check['min_train_acc']:g} in every seed",
                                      _acc(lb, "train_acc"), check["min_train_acc"]),
                  paired(f"{name}: SB test acc > LB test acc", _acc(sb), _acc(lb), check["min_agree"])]
        for arm, runs, i in (("SB", sb, 0), ("LB", lb, 1)):
            numbers[f"{name}.{arm}.train_acc_mean"] = seed_mean(_acc(runs, "train_acc"))
            numbers[f"{name}.{arm}.test_acc_mean"] = seed_mean(_acc(runs))
            rows.append({"network": _title(name, net), "arm": arm, "batch": _batch(runs),
                         "train_acc_%": pm(_acc(runs, "train_acc"), 100), "test_acc_%": pm(_acc(runs), 100),
                         "reported_train_%": "" if rep is None else "{} ± {}".format(*rep["train"][i]),
                         "reported_test_%": "" if rep is None else "{} ± {}".format(*rep["test"][i]),
                         "diverged": sum(bool(r.get("diverged")) for r in runs), "seeds": len(seeds)})
        gap = [a - b for a, b in zip(_acc(sb), _acc(lb))]
        numbers[f"{name}.gap_pp_mean"] = seed_mean(gap).scaled(100)
        tr = [100 * numbers[f"{name}.{arm}.train_acc_mean"] for arm in ("SB", "LB")]
        te = [100 * numbers[f"{name}.{arm}.test_acc_mean"] for arm in ("SB", "LB")]
        measured.append(f"{name}: train SB/LB {tr[0]:.2f}/{tr[1]:.2f}%, test {te[0]:.2f}/{te[1]:.2f}% "
                        f"(gap {pm(gap, 100)} pp)")
    tables = write_table(rows, out_dir / "table", title=f"SB vs LB accuracy ({scale} scale), mean ± std over "
                         "seeds, next to Keskar et al.'s Table 2")

    panels = []
    for name, net in nets.items():
        s = net["settings"]
        panels.append({"title": _title(name, net),
                       "acc": {key: [_acc(net["runs"][v], key) for v in (s["small"], s["large"])]
                               for key in ("train_acc", "test_acc")}})
    figs = figures.render(plot_generalization_gap, {"scale": scale, "panels": panels}, out_dir / "figure")
    return _result(claim_id, scale, check, comps, "; ".join(measured), n_seeds, numbers, figs, tables)


@figures.register_plot("sharpness.generalization_gap")
def plot_generalization_gap(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per network, train and test accuracy of SB and LB (bars: mean ± std, dots: seeds, lines join the two
    runs of one seed)."""
    panels = data["panels"]
    fig, axes = figures.new_figure(ncols=len(panels), width=4.2 * len(panels) + 0.5, height=3.6, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for j, key in enumerate(("train_acc", "test_acc")):
            pair = [np.asarray(a, dtype=float) for a in panel["acc"][key]]
            for i, acc in enumerate(pair):
                x = 3 * j + i
                ax.bar(x, 100 * mean_std(acc)[0], yerr=100 * mean_std(acc)[1], color=figures.COLORS[i],
                       alpha=0.7, capsize=3, label=("SB", "LB")[i] if j == 0 else None)
                _dots(ax, x, acc, 100)
            for a, b in zip(*pair):
                ax.plot([3 * j, 3 * j + 1], [100 * a, 100 * b], "k-", lw=0.5, alpha=0.4)
        ax.set_xticks([0.5, 3.5], ["train", "test"])
        shown = [a for i in range(2) for k in ("train_acc", "test_acc") for a in panel["acc"][k][i]
                 if math.isfinite(a)]
        ax.set_ylim(max(0.0, 100 * min(shown, default=0.0) - 2), 100.5)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(panel["title"])
        ax.legend()
    fig.suptitle(f"small vs large batch, Adam ({data['scale']}); lines join seeds")
    return figures.save(fig, stem)


def sharpness_metric(nets: Mapping[str, Net], check: Mapping[str, Any], scale: str, out_dir: str | Path,
                     claim_id: str = "keskar-sharpness-metric") -> ClaimResult:
    """Tables 3-4: LB minimizers are sharper. Per network, space (full, subspace) and ``eps``: LB sharpness
    at least ``min_ratio`` times SB's, paired over seeds on a log scale (:func:`ratio_at_least`)."""
    out_dir = Path(out_dir)
    comps, rows, numbers, measured, n_seeds = [], [], {}, [], 0
    for name, net in nets.items():
        s = net["settings"]
        seeds = _same_seeds(name, net["runs"][s["small"]], net["runs"][s["large"]])
        n_seeds = n_seeds or len(seeds)
        sh = net["sharpness"]
        rep = REPORTED_SHARPNESS.get(_label(net), {})
        for space in SPACES:
            for eps in SharpnessSettings.of_block(s).eps:
                sb = phi(sh[s["small"]], space, eps, seeds=seeds)
                lb = phi(sh[s["large"]], space, eps, seeds=seeds)
                tag = f"{name}.{space}.eps{eps:g}"
                comps.append(ratio_at_least(f"{name}: LB >= {check['min_ratio']:g} x SB sharpness ({space}, "
                                            f"eps {eps:g})", lb, sb, check["min_ratio"], check["min_agree"]))
                m_sb, m_lb = seed_mean(sb), seed_mean(lb)
                ratio = ratio_estimate(m_lb, m_sb)
                numbers.update({f"{tag}.SB_mean": m_sb, f"{tag}.LB_mean": m_lb, f"{tag}.ratio_of_means": ratio})
                p = next(v["p"] for v in sh[s["small"]]["runs"][0]["values"] if v["space"] == space)
                rows.append({"network": _title(name, net), "space": space if p is None else f"subspace p={p}",
                             "eps": eps, "SB": pm(sb, 1, 3), "LB": pm(lb, 1, 3), "LB/SB": round(ratio, 2),
                             "seeds LB >= ratio x SB": f"{comps[-1].agree}/{len(seeds)}",
                             "reported SB / LB": _fmt_reported(rep.get((space, eps)))})
                measured.append(f"{name} {space} eps {eps:g}: SB {m_sb:.3g}, LB {m_lb:.3g}"
                                f" ({ratio:.1f}x)")
    tables = write_table(rows, out_dir / "table", title=f"epsilon-sharpness (Metric 2.1, L-BFGS-B) of SB and LB "
                         f"minimizers ({scale} scale), mean ± std over seeds; Keskar et al. Tables 3-4")

    settings = [(sp, e) for sp in SPACES for e in SharpnessSettings.of_block(next(iter(nets.values()))["settings"]).eps]
    panels = [{"title": _title(name, net),
               "phi": [[phi(net["sharpness"][v], space, eps) for v in (net["settings"]["small"],
                                                                       net["settings"]["large"])]
                       for space, eps in settings]} for name, net in nets.items()]
    figs = figures.render(plot_sharpness_metric, {"scale": scale, "settings": settings, "panels": panels},
                          out_dir / "figure")
    return _result(claim_id, scale, check, comps, "; ".join(measured), n_seeds, numbers, figs, tables)


@figures.register_plot("sharpness.sharpness_metric")
def plot_sharpness_metric(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per network, the epsilon-sharpness of SB and LB in each (space, eps) setting on a log scale (bars:
    means, dots: seeds)."""
    settings, panels = data["settings"], data["panels"]
    fig, axes = figures.new_figure(ncols=len(panels), width=4.8 * len(panels) + 0.5, height=3.8, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for k in range(len(settings)):
            for i, vals in enumerate(panel["phi"][k]):
                x = 3 * k + i
                ax.bar(x, mean_std(vals)[0], color=figures.COLORS[i], alpha=0.7,
                       label=("SB", "LB")[i] if k == 0 else None)
                _dots(ax, x, vals)
        ax.set_yscale("log")
        ax.set_xticks([3 * k + 0.5 for k in range(len(settings))],
                      [f"{sp}\neps {e:g}" for sp, e in settings], fontsize=7)
        ax.set_ylabel("sharpness (Metric 2.1, %)")
        ax.set_title(panel["title"])
        ax.legend()
    fig.suptitle(f"epsilon-sharpness of SB and LB minimizers ({data['scale']})")
    return figures.save(fig, stem)


def _at(alphas: np.ndarray, a: float) -> int:
    i = int(np.argmin(np.abs(alphas - a)))
    if not math.isclose(float(alphas[i]), a, abs_tol=1e-9):
        raise ValueError(f"the interpolation grid has no alpha = {a:g} (grid {alphas.tolist()}); choose a grid "
                         "through 0, 1 and the checked deltas")
    return i


def parametric_plot(nets: Mapping[str, Net], check: Mapping[str, Any], scale: str, out_dir: str | Path,
                    claim_id: str = "keskar-parametric-plot") -> ClaimResult:
    """Fig. 3: along ``f(alpha x_LB + (1 - alpha) x_SB)`` the loss rises faster beyond the LB end. For each
    ``delta`` of the check: ``f(1 + delta) - f(1) > f(-delta) - f(0)`` on the ``split`` loss, paired over
    seeds."""
    out_dir = Path(out_dir)
    split = check.get("split", "train")
    comps, rows, numbers, measured, n_seeds = [], [], {}, [], 0
    for name, net in nets.items():
        surf = net["interpolation"]
        seeds = sorted(surf)
        n_seeds = n_seeds or len(seeds)
        for delta in check["deltas"]:
            rise_lb, rise_sb = [], []
            for sd in seeds:
                a, f = np.asarray(surf[sd]["xcoordinates"]), np.asarray(surf[sd][f"{split}_loss"])
                rise_lb.append(float(f[_at(a, 1 + delta)] - f[_at(a, 1.0)]))
                rise_sb.append(float(f[_at(a, -delta)] - f[_at(a, 0.0)]))
            comps.append(paired(f"{name}: {split}-loss rise beyond LB > beyond SB (delta {delta:g})", rise_lb,
                                rise_sb, check["min_agree"]))
            numbers[f"{name}.delta{delta:g}.rise_LB_mean"] = seed_mean(rise_lb)
            numbers[f"{name}.delta{delta:g}.rise_SB_mean"] = seed_mean(rise_sb)
            rows.append({"network": _title(name, net), "delta": delta,
                         f"{split} loss f(1+d)-f(1) (LB end)": pm(rise_lb, 1, 4),
                         f"{split} loss f(-d)-f(0) (SB end)": pm(rise_sb, 1, 4),
                         "seeds LB end steeper": f"{comps[-1].agree}/{len(seeds)}"})
            measured.append(f"{name} delta {delta:g}: rise LB {mean_std(rise_lb)[0]:.3g} vs SB "
                            f"{mean_std(rise_sb)[0]:.3g}")
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            for a_ in (0.0, 1.0):
                vals = [float(np.asarray(surf[sd][key])[_at(np.asarray(surf[sd]["xcoordinates"]), a_)])
                        for sd in seeds]
                numbers[f"{name}.alpha{a_:g}.{key}_mean"] = seed_mean(vals)
    tables = write_table(rows, out_dir / "table", title=f"parametric plot f(alpha x_LB + (1-alpha) x_SB) "
                         f"({scale} scale): loss rise beyond each end, mean ± std over seeds")

    panels = []
    for name, net in nets.items():
        surf = net["interpolation"]
        seeds = sorted(surf)
        panels.append({"title": _title(name, net), "n_seeds": len(seeds),
                       "alpha": np.asarray(surf[seeds[0]]["xcoordinates"]),
                       "loss": {sp: np.array([surf[sd][f"{sp}_loss"] for sd in seeds]) for sp in ("train", "test")},
                       "acc": {sp: np.array([surf[sd][f"{sp}_acc"] for sd in seeds]) for sp in ("train", "test")}})
    figs = figures.render(plot_parametric, {"scale": scale, "panels": panels}, out_dir / "figure")
    return _result(claim_id, scale, check, comps, "; ".join(measured), n_seeds, numbers, figs, tables)


@figures.register_plot("sharpness.parametric")
def plot_parametric(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per network, cross-entropy (log scale, thin: each seed) and accuracy of the train and test sets along
    alpha x_LB + (1 - alpha) x_SB, means over seeds."""
    panels = data["panels"]
    fig, axes = figures.new_figure(ncols=len(panels), width=5.0 * len(panels) + 0.5, height=3.8, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        a = np.asarray(panel["alpha"], dtype=float)
        ax2 = ax.twinx()
        for sp in ("train", "test"):
            loss = np.asarray(panel["loss"][sp], dtype=float)
            acc = np.asarray(panel["acc"][sp], dtype=float)
            for row in loss:
                ax.plot(a, row, SPLIT_STYLES[sp], color=LOSS_COLOR, lw=0.5, alpha=0.3)
            ax.plot(a, loss.mean(0), SPLIT_STYLES[sp], color=LOSS_COLOR, lw=1.6, label=f"{sp} loss")
            ax2.plot(a, 100 * acc.mean(0), SPLIT_STYLES[sp], color=ACC_COLOR, lw=1.6, label=f"{sp} accuracy")
        ax.set_yscale("log")
        for x0, txt in ((0.0, "SB"), (1.0, "LB")):
            ax.axvline(x0, color="0.5", lw=0.8, ls=":")
            ax.annotate(txt, (x0, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8)
        ax.set_xlabel(r"$\alpha$:  $\alpha\, x_{LB} + (1-\alpha)\, x_{SB}$")
        ax.set_ylabel("cross-entropy (log)", color=LOSS_COLOR)
        ax2.set_ylabel("accuracy (%)", color=ACC_COLOR)
        ax2.grid(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center left")
        ax.set_title(f"{panel['title']}, {panel['n_seeds']} seeds (thin: each seed's loss)", fontsize=9)
    fig.suptitle(f"Keskar parametric plot ({data['scale']})")
    return figures.save(fig, stem)


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.nan
    return float(spearmanr(x, y).statistic)


def threshold_and_warmstart(nets: Mapping[str, Net], check: Mapping[str, Any], scale: str, out_dir: str | Path,
                            claim_id: str = "keskar-batch-threshold-and-warmstart") -> ClaimResult:
    """Figs. 4-5. Sweep: test accuracy falls and sharpness (``space``, ``eps`` of the check) rises with the
    batch size: largest vs smallest batch paired over seeds, and the Spearman correlation of batch size with
    the mean test accuracy <= -``min_rho`` and with the mean sharpness >= ``min_rho``. Warm start: LB started
    from the SB iterate of the last listed epoch tests better and is flatter than LB from scratch (the
    ``large`` variant), paired over seeds."""
    out_dir = Path(out_dir)
    space, eps, md = check.get("space", "full"), float(check["eps"]), check["min_agree"]
    comps, rows, numbers, measured, n_seeds = [], [], {}, [], 0
    panels = []
    for name, net in nets.items():
        s = net["settings"]
        sweep = list(s["sweep"])
        seeds = _same_seeds(name, *(net["runs"][v] for v in sweep))
        n_seeds = n_seeds or len(seeds)
        batches = [_batch(net["runs"][v]) for v in sweep]
        if batches != sorted(batches) or len(set(batches)) != len(batches):
            raise ValueError(f"{name}: sweep variants {sweep} must have strictly increasing batch sizes, got {batches}")
        acc = {v: _acc(net["runs"][v]) for v in sweep}
        sharp = {v: phi(net["sharpness"][v], space, eps, seeds=seeds) for v in sweep}
        mean_acc = [mean_std(acc[v])[0] for v in sweep]
        mean_sharp = [mean_std(sharp[v])[0] for v in sweep]
        rho_acc, rho_sharp = _spearman(batches, mean_acc), _spearman(batches, mean_sharp)
        first, last = sweep[0], sweep[-1]
        comps += [paired(f"{name}: test acc batch {batches[0]} > batch {batches[-1]}", acc[first], acc[last], md),
                  paired(f"{name}: sharpness batch {batches[-1]} > batch {batches[0]}", sharp[last], sharp[first],
                         md),
                  at_least(f"{name}: -Spearman(batch, mean test acc) >= {check['min_rho']:g}", -rho_acc,
                           check["min_rho"]),
                  at_least(f"{name}: Spearman(batch, mean sharpness) >= {check['min_rho']:g}", rho_sharp,
                           check["min_rho"])]
        numbers[f"{name}.spearman_acc"], numbers[f"{name}.spearman_sharpness"] = rho_acc, rho_sharp
        for v, b in zip(sweep, batches):
            numbers[f"{name}.b{b}.test_acc_mean"] = seed_mean(acc[v])
            numbers[f"{name}.b{b}.sharpness_mean"] = seed_mean(sharp[v])
            rows.append({"network": _title(name, net), "part": "sweep", "run": f"{v} (batch {b})",
                         "train_acc_%": pm(_acc(net["runs"][v], "train_acc"), 100), "test_acc_%": pm(acc[v], 100),
                         f"sharpness ({space}, eps {eps:g})": pm(sharp[v], 1, 3)})
        measured.append(f"{name} sweep {batches}: test acc " + "/".join(f"{100 * m:.1f}" for m in mean_acc)
                        + "%, sharpness " + "/".join(f"{m:.3g}" for m in mean_sharp))

        ws = net["warmstart"]
        epochs = sorted({epoch_of(r["group"]) for r in ws["runs"]})
        lb_acc, lb_sharp = _acc(net["runs"][s["large"]]), phi(net["sharpness"][s["large"]], space, eps, seeds=seeds)
        w_acc, w_sharp = {}, {}
        for k in epochs:
            recs = sorted((r for r in ws["runs"] if r["group"] == epoch_group(k)), key=lambda r: r["seed"])
            if [r["seed"] for r in recs] != seeds:
                raise ValueError(f"{name}: warm starts from epoch {k} have seeds {[r['seed'] for r in recs]}, "
                                 f"expected {seeds}")
            w_acc[k] = [math.nan if r["diverged"] else float(r["test_acc"]) for r in recs]
            w_sharp[k] = phi(recs, space, eps)
            numbers[f"{name}.warm{k}.test_acc_mean"] = seed_mean(w_acc[k])
            numbers[f"{name}.warm{k}.sharpness_mean"] = seed_mean(w_sharp[k])
            rows.append({"network": _title(name, net), "part": "warm start",
                         "run": f"{s['large']} from {s['small']} epoch {k}",
                         "train_acc_%": pm([math.nan if r["diverged"] else r["train_acc"] for r in recs], 100),
                         "test_acc_%": pm(w_acc[k], 100), f"sharpness ({space}, eps {eps:g})": pm(w_sharp[k], 1, 3)})
        k = epochs[-1]
        comps += [paired(f"{name}: test acc LB warm-started at SB epoch {k} > LB from scratch", w_acc[k], lb_acc, md),
                  paired(f"{name}: sharpness LB from scratch > LB warm-started at SB epoch {k}", lb_sharp,
                         w_sharp[k], md)]
        measured.append(f"{name} warm start epochs {epochs}: test acc "
                        + "/".join(f"{100 * mean_std(w_acc[e])[0]:.1f}" for e in epochs)
                        + f"% vs LB scratch {100 * mean_std(lb_acc)[0]:.1f}%, sharpness "
                        + "/".join(f"{mean_std(w_sharp[e])[0]:.3g}" for e in epochs)
                        + f" vs {mean_std(lb_sharp)[0]:.3g}")
        panels.append({"title": _title(name, net), "batches": batches, "acc": [acc[v] for v in sweep],
                       "sharp": [sharp[v] for v in sweep], "epochs": epochs, "w_acc": [w_acc[e] for e in epochs],
                       "w_sharp": [w_sharp[e] for e in epochs], "lb_acc": lb_acc, "lb_sharp": lb_sharp,
                       "sb_acc": _acc(net["runs"][s["small"]]),
                       "sb_sharp": phi(net["sharpness"][s["small"]], space, eps, seeds=seeds)})
    tables = write_table(rows, out_dir / "table", title=f"batch-size sweep and LB warm starts ({scale} scale), "
                         "mean ± std over seeds")

    figs = figures.render(plot_threshold_and_warmstart, {"scale": scale, "space": space, "eps": eps,
                                                         "panels": panels}, out_dir / "figure")
    return _result(claim_id, scale, check, comps, "; ".join(measured), n_seeds, numbers, figs, tables)


@figures.register_plot("sharpness.threshold_and_warmstart")
def plot_threshold_and_warmstart(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per network: test accuracy and sharpness against the batch size of the sweep (dots: seeds), and of the
    LB runs warm-started from the SB iterate at each epoch (0: from scratch) with the SB run's as a dashed
    line."""
    space, eps, panels = data["space"], data["eps"], data["panels"]
    fig, axes = figures.new_figure(ncols=2, nrows=2 * len(panels), width=9.0, height=6.4 * len(panels),
                                   squeeze=False, layout="constrained")
    for p, panel in enumerate(panels):
        batches, epochs = panel["batches"], panel["epochs"]
        a1, a2 = axes[2 * p]
        for ax, vals, scale_, lab in ((a1, panel["acc"], 100, "test accuracy (%)"),
                                      (a2, panel["sharp"], 1, f"sharpness ({space}, eps {eps:g})")):
            means = [scale_ * mean_std(v)[0] for v in vals]
            ax.plot(batches, means, "o-", color=figures.COLORS[0])
            for b, v in zip(batches, vals):
                ax.plot(np.full(len(v), b), scale_ * np.asarray(v, dtype=float), "k.", ms=3)
            ax.set_xscale("log")
            ax.set_xlabel("batch size")
            ax.set_ylabel(lab)
            ax.set_title(f"{panel['title']}: batch-size sweep", fontsize=9)
        a2.set_yscale("log")
        b1, b2 = axes[2 * p + 1]
        for ax, vals, lbv, sbv, scale_, lab in ((b1, panel["w_acc"], panel["lb_acc"], panel["sb_acc"], 100,
                                                 "test accuracy (%)"),
                                                (b2, panel["w_sharp"], panel["lb_sharp"], panel["sb_sharp"], 1,
                                                 f"sharpness ({space}, eps {eps:g})")):
            xs = [0] + list(epochs)
            means = [scale_ * mean_std(lbv)[0]] + [scale_ * mean_std(v)[0] for v in vals]
            ax.plot(xs, means, "o-", color=figures.COLORS[1], label="LB from SB iterate (0: from scratch)")
            ax.axhline(scale_ * mean_std(sbv)[0], color=figures.COLORS[0], ls="--", label="SB")
            ax.set_xlabel("SB epoch the LB run starts from")
            ax.set_ylabel(lab)
            ax.set_title(f"{panel['title']}: warm-started LB", fontsize=9)
            ax.legend(fontsize=7)
        b2.set_yscale("log")
    fig.suptitle(f"batch-size threshold and warm starts ({data['scale']})")
    return figures.save(fig, stem)


def remedies(nets: Mapping[str, Net], check: Mapping[str, Any], scale: str, out_dir: str | Path,
             claim_id: str = "keskar-remedies") -> ClaimResult:
    """Appendix E. ``nets`` holds augmented pairs (settings with ``baseline``: the experiment of the same
    network without augmentation, also in ``nets``). Over the augmented pair's seeds: the SB-LB test gap
    without augmentation exceeds the gap with it (paired over seeds), and the augmented LB minimizer stays
    sharp, at least ``min_ratio`` times the augmented SB's sharpness (``space``, ``eps`` of the check; paired
    over seeds on a log scale)."""
    out_dir = Path(out_dir)
    space, eps, md = check.get("space", "full"), float(check["eps"]), check["min_agree"]
    comps, rows, numbers, measured, n_seeds = [], [], {}, [], 0
    panels = []
    augmented = {n: net for n, net in nets.items() if "baseline" in net["settings"]}
    if not augmented:
        raise ValueError("no augmented pair (an experiment whose sharpness block has `baseline`)")
    for name, net in augmented.items():
        s = net["settings"]
        base = nets[s["baseline"]]
        seeds = _same_seeds(name, net["runs"][s["small"]], net["runs"][s["large"]])
        n_seeds = n_seeds or len(seeds)
        arms = {}  # (augmented, arm) -> (per-seed runs, sharpness file)
        for aug, src in ((False, base), (True, net)):
            for arm, v in (("SB", src["settings"]["small"]), ("LB", src["settings"]["large"])):
                by_seed = {int(r["seed"]): r for r in src["runs"][v]}
                missing = [sd for sd in seeds if sd not in by_seed]
                if missing:
                    raise ValueError(f"{name}: baseline {s['baseline']!r} variant {v!r} lacks seeds {missing}")
                recs = [r for r in src["sharpness"][v]["runs"] if int(r["seed"]) in seeds]
                arms[(aug, arm)] = ([by_seed[sd] for sd in seeds], recs)
        acc = {k: _acc(r) for k, (r, _) in arms.items()}
        sh = {k: phi(f, space, eps, seeds=seeds) for k, (_, f) in arms.items()}
        gap = [a - b for a, b in zip(acc[(False, "SB")], acc[(False, "LB")])]
        gap_aug = [a - b for a, b in zip(acc[(True, "SB")], acc[(True, "LB")])]
        comps += [paired(f"{name}: SB-LB test gap without augmentation > with", gap, gap_aug, md),
                  ratio_at_least(f"{name}: augmented LB >= {check['min_ratio']:g} x augmented SB sharpness "
                                 f"({space}, eps {eps:g})", sh[(True, "LB")], sh[(True, "SB")], check["min_ratio"],
                                 md)]
        rep = REPORTED_AUGMENTED.get(_label(net))
        for (aug, arm), (runs, _) in arms.items():
            tag = f"{name}.{arm}{'.aug' if aug else ''}"
            numbers[f"{tag}.test_acc_mean"] = seed_mean(acc[(aug, arm)])
            numbers[f"{tag}.sharpness_mean"] = seed_mean(sh[(aug, arm)])
            rows.append({"network": _title(name if aug else s["baseline"], net), "arm": arm, "augmentation": aug,
                         "train_acc_%": pm(_acc(runs, "train_acc"), 100), "test_acc_%": pm(acc[(aug, arm)], 100),
                         f"sharpness ({space}, eps {eps:g})": pm(sh[(aug, arm)], 1, 3),
                         "reported aug. test %": (f"{rep[0][0 if arm == 'SB' else 1]}" if rep and aug else ""),
                         "reported aug. LB sharpness": (f"{rep[1]}" if rep and aug and arm == "LB" else "")})
        numbers[f"{name}.gap_baseline_pp_mean"] = seed_mean(gap).scaled(100)
        numbers[f"{name}.gap_pp_mean"] = seed_mean(gap_aug).scaled(100)
        measured.append(f"{name}: SB-LB gap {pm(gap, 100)} pp without ({s['baseline']}), {pm(gap_aug, 100)} pp with "
                        f"augmentation; augmented sharpness SB {mean_std(sh[(True, 'SB')])[0]:.3g}, LB "
                        f"{mean_std(sh[(True, 'LB')])[0]:.3g}")
        panels.append({"title": _title(name, net), "gap": gap, "gap_aug": gap_aug,
                       "sharp": [sh[k] for k in ((False, "SB"), (False, "LB"), (True, "SB"), (True, "LB"))]})
    tables = write_table(rows, out_dir / "table", title=f"data augmentation as a remedy ({scale} scale), mean ± "
                         "std over seeds; Keskar et al. Tables 6-7")

    figs = figures.render(plot_remedies, {"scale": scale, "space": space, "eps": eps, "panels": panels},
                          out_dir / "figure")
    return _result(claim_id, scale, check, comps, "; ".join(measured), n_seeds, numbers, figs, tables)


@figures.register_plot("sharpness.remedies")
def plot_remedies(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per augmented network: the SB - LB test-accuracy gap without and with augmentation (lines join seeds),
    and the sharpness of SB and LB without and with augmentation (log scale; bars: means, dots: seeds)."""
    space, eps, panels = data["space"], data["eps"], data["panels"]
    fig, axes = figures.new_figure(ncols=2, nrows=len(panels), width=9.0, height=3.6 * len(panels), squeeze=False)
    keys = ((False, "SB"), (False, "LB"), (True, "SB"), (True, "LB"))
    for (a1, a2), panel in zip(axes, panels):
        gap, gap_aug = panel["gap"], panel["gap_aug"]
        for i, vals in enumerate((gap, gap_aug)):
            a1.bar(i, 100 * mean_std(vals)[0], yerr=100 * mean_std(vals)[1], color=figures.COLORS[i], alpha=0.7,
                   capsize=3)
            _dots(a1, i, vals, 100)
        for a, b in zip(gap, gap_aug):
            a1.plot([0, 1], [100 * a, 100 * b], "k-", lw=0.5, alpha=0.4)
        a1.set_xticks([0, 1], ["no augmentation", "augmentation"])
        a1.set_ylabel("SB - LB test accuracy (pp)")
        a1.set_title(f"{panel['title']}: generalization gap", fontsize=9)
        for i, (key, vals) in enumerate(zip(keys, panel["sharp"])):
            a2.bar(i, mean_std(vals)[0], color=figures.COLORS[i % 2], alpha=0.8 if key[0] else 0.4)
            _dots(a2, i, vals)
        a2.set_xticks(range(4), ["SB", "LB", "SB aug.", "LB aug."])
        a2.set_yscale("log")
        a2.set_ylabel(f"sharpness ({space}, eps {eps:g})")
        a2.set_title(f"{panel['title']}: sharpness", fontsize=9)
    fig.suptitle(f"data augmentation: LB gap and sharpness ({data['scale']})")
    return figures.save(fig, stem)


ANALYSES = {
    "keskar-lb-generalization-gap": generalization_gap,
    "keskar-sharpness-metric": sharpness_metric,
    "keskar-parametric-plot": parametric_plot,
    "keskar-batch-threshold-and-warmstart": threshold_and_warmstart,
    "keskar-remedies": remedies,
}


def keskar_analysis(claim_id: str, nets: Mapping[str, Net], check: Mapping[str, Any], scale: str,
          out_dir: str | Path) -> ClaimResult:
    """The analysis of the Keskar claim ``claim_id``."""
    if claim_id not in ANALYSES:
        raise ValueError(f"{claim_id!r} is not a Keskar claim; known: {sorted(ANALYSES)}")
    return ANALYSES[claim_id](nets, check, scale, out_dir, claim_id=claim_id)


def run_keskar(job: ClaimJob) -> ClaimResult:
    """The networks of the rule's ``nets`` (name -> :func:`load_net` spec), then the claim's analysis."""
    nets = {name: load_net(spec) for name, spec in job.params["nets"].items()}
    return keskar_analysis(job.id, nets, job.check, job.scale, job.out_dir)


CLAIMS = {claim_id: run_keskar for claim_id in ANALYSES}
