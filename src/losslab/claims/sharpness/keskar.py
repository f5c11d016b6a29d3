"""Keskar et al. (ICLR 2017), "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima":
small-batch (SB) and large-batch (LB) Adam reach similar training accuracy, LB tests worse, and LB minimizers
are sharper.

One experiment of a scale with a ``sharpness`` settings block is one of Keskar's networks (or its analogue):
its variants differ by batch size, and the block names their roles (the ``network`` whose reported numbers
the tables quote, the ``small`` and ``large`` variants, the optional ``matched`` variant (the large batch trained
for as many optimizer steps as the small one, lr scaled by sqrt(B_large / B_small): the step-matched comparison
the sharpness and parametric-plot claims are decided on), the batch-size ``sweep``, the ``warmstart`` epochs of
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
:func:`threshold_and_warmstart`, :func:`remedies`) that measures each part of the claim's pre-registered
``decision`` per seed, decides it (:func:`losslab.claims.verdicts.decide_claim`) and writes the table, the figure
and the :class:`losslab.claims.verdicts.ClaimResult`. They take ``nets``: experiment name -> the loaded outputs of
that network (:func:`load_net`) and ``claim``: the claim's registry entry.
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
from losslab.claims.verdicts import ClaimResult, Measured, decide_claim, ratio_estimate, seed_mean
from losslab.claims.tables import mean_std, pm, write_table
from losslab.claims.settings import Settings
from losslab.claims.claim_job import ClaimJob
from losslab.core.hessian import TrainingLoss, epsilon_sharpness
from losslab.core.trainer import batching
from losslab.pipeline.registry import check_for
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
# (`matched`: the step-matched LB variant, trained for as many optimizer steps as the small variant with the lr
# scaled by sqrt(B_large / B_small), Hoffer et al. 2017; the sharpness and parametric-plot claims are decided on it)
ROLE_KEYS = frozenset({"network", "small", "large", "matched", "sweep", "warmstart", "interpolation", "baseline"})


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
    sharpness JSON, which carries the runs' accuracies), ``interpolation`` (a directory of ``seed<k>.h5``: the line
    from SB to the equal-epoch LB) and ``interpolation_matched`` (the line from SB to the step-matched LB). Run
    metrics are read with :func:`losslab.claims.runs.read_runs`."""
    net: dict[str, Any] = {"settings": dict(spec["settings"])}
    net["runs"] = {v: read_runs(d) for v, d in spec.get("runs", {}).items()}
    net["sharpness"] = {v: lio.read_json(p) for v, p in spec.get("sharpness", {}).items()}
    if spec.get("warmstart"):
        net["warmstart"] = lio.read_json(spec["warmstart"])
    for key in ("interpolation", "interpolation_matched"):
        if spec.get(key):
            found = sorted(Path(spec[key]).glob("seed*.h5"), key=lambda p: int(p.stem[4:]))
            net[key] = {int(p.stem[4:]): read_surface(p) for p in found}
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
        group: str | None = None, seeds: Sequence[int] | None = None, normalised: bool = False) -> list[float]:
    """Per-seed sharpness values of a sharpness file (or its ``runs`` list) in one setting, in seed order
    (``group``: a warm-start epoch directory; ``seeds``: check the order against these). ``normalised``: Metric 2.1
    divided by the training loss at the point (the loss at the box's centre the sharpness was measured from, else
    the run's train loss): near zero loss the cross-entropy Hessian scales with the loss."""
    runs = records["runs"] if isinstance(records, Mapping) else records
    if group is not None:
        runs = [r for r in runs if r["group"] == group]
    runs = sorted(runs, key=lambda r: r["seed"])
    if seeds is not None and [r["seed"] for r in runs] != list(seeds):
        raise ValueError(f"sharpness records have seeds {[r['seed'] for r in runs]}, expected {list(seeds)}")
    out = []
    for r in runs:
        match = [v for v in r["values"] if v["space"] == space and math.isclose(v["eps"], eps)]
        if not match:
            raise KeyError(f"no sharpness for space {space!r}, eps {eps:g} in {r['dir']} (settings: "
                           f"{sorted({(v['space'], v['eps']) for v in r['values']})})")
        value = math.nan if match[0]["value"] is None else float(match[0]["value"])
        if normalised:
            loss = match[0].get("loss")
            loss = r.get("train_loss") if loss is None else loss
            value = value / float(loss) if loss is not None and float(loss) > 0 else math.nan
        out.append(value)
    return out


def _label(net: Net) -> str:
    return str(net["settings"].get("network", "?"))


def _title(name: str, net: Net) -> str:
    return f"{name} ({_label(net)} analogue)" if name else _label(net)


def _log_ratios(num: Sequence[float], den: Sequence[float], log=math.log) -> list[float]:
    """Per-replicate ``log(num / den)``; NaN where either is not a positive finite number."""
    return [log(a / b) if math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0 else math.nan
            for a, b in zip(num, den)]


def _errors(runs: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per-seed test error (1 - test accuracy; NaN for a diverged run)."""
    return [1.0 - a for a in _acc(runs)]


def _ln_err(num: Sequence[Mapping[str, Any]], den: Sequence[Mapping[str, Any]]) -> list[float]:
    """Per-seed ln(test error of ``num`` / of ``den``), paired by seed (NaN where an error is 0)."""
    return _log_ratios(_errors(num), _errors(den))


def _nan(n: int) -> Measured:
    return Measured(samples=[math.nan] * max(int(n), 1))


def _matched(net: Net, *keys: str) -> str | None:
    """The step-matched LB variant of ``net`` (its settings' ``matched``) when ``net`` has it loaded under every
    one of ``keys`` (``runs``, ``sharpness``), else None."""
    v = net["settings"].get("matched")
    return v if v is not None and all(v in net.get(k, {}) for k in keys) else None


def _steps(run: Mapping[str, Any]) -> int | None:
    """Optimizer steps of one trained run (its batch size, train-set size and epochs)."""
    try:
        return batching(int(run["train_size"]), run["recipe"]["batch_size"])[1] * int(run["epochs"])
    except (KeyError, TypeError, ValueError):
        return None


def _arm(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Where one trained arm stands: batch, epochs, optimizer steps, lr, train loss and train/test accuracy
    (means over seeds)."""
    steps = {_steps(r) for r in runs}
    epochs = {r.get("epochs") for r in runs}
    return {"batch": _batch(runs), "epochs": "/".join(str(e) for e in sorted(epochs, key=str)),
            "steps": "/".join(str(s) for s in sorted(steps, key=str)),
            "lr": runs[0].get("recipe", {}).get("lr", ""),
            "train_loss": pm([math.nan if r.get("diverged") else float(r.get("train_loss", math.nan))
                              for r in runs], 1, 4),
            "train_acc_%": pm(_acc(runs, "train_acc"), 100), "test_acc_%": pm(_acc(runs), 100)}


def _regime(name: str, arms: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """One clause per arm: batch, steps, train loss and train/test accuracy."""
    parts = []
    for label, runs in arms.items():
        a = _arm(runs)
        parts.append(f"{label} batch {a['batch']}, {a['steps']} steps ({a['epochs']} epochs), train loss "
                     f"{a['train_loss']}, train/test acc {a['train_acc_%']}/{a['test_acc_%']}%")
    return f"{name}: " + "; ".join(parts)


def _result(claim: Mapping[str, Any], scale: str, measured_parts: Mapping[str, Any], *, requires: bool | None = True,
            notes: Sequence[str] = (), **fields: Any) -> ClaimResult:
    cd = decide_claim(claim["decision"], measured_parts, requires=requires)
    return ClaimResult.from_decision(cd, notes="; ".join(n for n in notes if n), id=claim["id"], scale=scale,
                                     **fields)


NO_MATCH = ("no matched comparison: {what} (the pre-registration decides on the large batch trained for as many "
            "optimizer steps as the small batch; name it in the sharpness block's `matched`)")


def _dots(ax, x: float, values: Sequence[float], scale: float = 1.0) -> None:
    ax.plot(np.full(len(values), x), scale * np.asarray(values, float), "k.", ms=4, zorder=3)


def _fmt_reported(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"{pair[0]:g} / {pair[1]:g} ({pair[1] / pair[0]:.0f}x)"


# ---------------------------------------------------------------- the claims ------------------------------

def generalization_gap(nets: Mapping[str, Net], claim: Mapping[str, Any], scale: str, out_dir: str | Path
                       ) -> ClaimResult:
    """Table 2: SB and LB reach similar (high) train accuracy, LB tests worse. Precondition: both arms reach the
    check's ``min_train_acc`` in every seed of every network (else inconclusive: not the claim's regime). Part
    ``gap``: ln(LB test error / SB test error) per seed (paired), one decision per network. The step-matched LB
    (``matched``), when trained, is shown beside them."""
    out_dir = Path(out_dir)
    check = check_for(claim, scale)
    min_train = float(check["min_train_acc"])
    rows, numbers, measured, regime, gap, n_seeds, requires = [], {}, [], [], {}, 0, True
    for name, net in nets.items():
        s = net["settings"]
        sb, lb = net["runs"][s["small"]], net["runs"][s["large"]]
        seeds = _same_seeds(name, sb, lb)
        n_seeds = n_seeds or len(seeds)
        if not all(math.isfinite(a) and a >= min_train for runs in (sb, lb) for a in _acc(runs, "train_acc")):
            requires = False
        gap[name] = Measured(samples=_ln_err(lb, sb))
        rep = REPORTED_ACC.get(_label(net))
        arms = {"SB": sb, "LB": lb}
        mv = _matched(net, "runs")
        if mv is not None:
            arms["LB steps-matched"] = net["runs"][mv]
        for arm, runs in arms.items():
            i = {"SB": 0, "LB": 1}.get(arm)
            if i is not None:
                numbers[f"{name}.{arm}.train_acc_mean"] = seed_mean(_acc(runs, "train_acc"))
                numbers[f"{name}.{arm}.test_acc_mean"] = seed_mean(_acc(runs))
            a = _arm(runs)
            rows.append({"network": _title(name, net), "arm": arm, "batch": a["batch"], "epochs": a["epochs"],
                         "steps": a["steps"], "lr": a["lr"], "train_loss": a["train_loss"],
                         "train_acc_%": a["train_acc_%"], "test_acc_%": a["test_acc_%"],
                         "ln(test error / SB's)": "" if arm == "SB" else pm(_ln_err(runs, sb), 1, 3),
                         "reported_train_%": "" if rep is None or i is None else "{} ± {}".format(*rep["train"][i]),
                         "reported_test_%": "" if rep is None or i is None else "{} ± {}".format(*rep["test"][i]),
                         "diverged": sum(bool(r.get("diverged")) for r in runs), "seeds": len(runs)})
        diff = [a - b for a, b in zip(_acc(sb), _acc(lb))]
        numbers[f"{name}.gap_pp_mean"] = seed_mean(diff).scaled(100)
        numbers[f"{name}.ln_err_ratio_mean"] = seed_mean(gap[name].samples)
        if mv is not None:
            numbers[f"{name}.matched.ln_err_ratio_mean"] = seed_mean(_ln_err(arms["LB steps-matched"], sb))
        tr = [100 * numbers[f"{name}.{arm}.train_acc_mean"] for arm in ("SB", "LB")]
        te = [100 * numbers[f"{name}.{arm}.test_acc_mean"] for arm in ("SB", "LB")]
        measured.append(f"{name}: train SB/LB {tr[0]:.2f}/{tr[1]:.2f}%, test {te[0]:.2f}/{te[1]:.2f}% "
                        f"(gap {pm(diff, 100)} pp, ln error ratio {pm(gap[name].samples, 1, 3)})")
        regime.append(_regime(name, arms))
    tables = write_table(rows, out_dir / "table", title=f"SB vs LB accuracy ({scale} scale), mean ± std over "
                         "seeds, next to Keskar et al.'s Table 2 (the step-matched LB shown, not deciding)")

    panels = []
    for name, net in nets.items():
        s = net["settings"]
        panels.append({"title": _title(name, net),
                       "acc": {key: [_acc(net["runs"][v], key) for v in (s["small"], s["large"])]
                               for key in ("train_acc", "test_acc")}})
    figs = figures.render(plot_generalization_gap, {"scale": scale, "panels": panels}, out_dir / "figure")
    return _result(claim, scale, {"gap": gap}, requires=requires, measured="; ".join(measured),
                   n_seeds=n_seeds, numbers=numbers, figures=figs, tables=tables, regime=" | ".join(regime))


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
        ax.set_ylim(0.0, 100.5)  # bars start at zero
        ax.set_ylabel("accuracy (%)")
        ax.set_title(panel["title"])
        ax.legend()
    fig.suptitle(f"small vs large batch, Adam ({data['scale']}); lines join seeds")
    return figures.save(fig, stem)


def _part_setting(part: str) -> tuple[str, float]:
    """``full_eps1e-3`` -> ("full", 1e-3): the space and eps a sharpness part of the decision names."""
    space, _, eps = part.partition("_eps")
    if space not in SPACES or not eps:
        raise ValueError(f"decision part {part!r} names no sharpness setting (<space>_eps<eps>)")
    return space, float(eps)


def sharpness_metric(nets: Mapping[str, Net], claim: Mapping[str, Any], scale: str, out_dir: str | Path
                     ) -> ClaimResult:
    """Tables 3-4: LB minimizers are sharper. Each part (a space and ``eps``): log10(Metric 2.1 of the
    step-matched LB / of SB) per seed, one decision per network (primary ``full_eps1e-3``). The equal-epoch LB
    (``large``) and the loss-normalised values (Metric 2.1 / train loss at the point) are shown beside it. A
    network without a step-matched arm decides nothing (NaN: inconclusive)."""
    out_dir = Path(out_dir)
    check = check_for(claim, scale)
    min_ratio = float(check.get("min_ratio", 3.0))
    parts = [p["name"] for p in claim["decision"]["parts"]]
    rows, arm_rows, numbers, measured, regime, notes, n_seeds = [], [], {}, [], [], [], 0
    decided: dict[str, dict[str, Measured]] = {p: {} for p in parts}
    for name, net in nets.items():
        s = net["settings"]
        runs_sb, runs_lb = net["runs"][s["small"]], net["runs"][s["large"]]
        seeds = _same_seeds(name, runs_sb, runs_lb)
        n_seeds = n_seeds or len(seeds)
        sh = net["sharpness"]
        mv = _matched(net, "runs", "sharpness")
        if mv is None:
            notes.append(NO_MATCH.format(what=f"{name} trains no step-matched LB"))
        else:
            _same_seeds(name, runs_sb, net["runs"][mv])
        eps_list = list(SharpnessSettings.of_block(s).eps)
        for part in parts:
            space, eps = _part_setting(part)
            if mv is None or not any(math.isclose(eps, e) for e in eps_list):
                if mv is not None:
                    notes.append(f"{name}: no sharpness at eps {eps:g} ({part} not measured)")
                decided[part][name] = _nan(len(seeds))
                continue
            decided[part][name] = Measured(samples=_log_ratios(phi(sh[mv], space, eps, seeds=seeds),
                                                               phi(sh[s["small"]], space, eps, seeds=seeds),
                                                               math.log10))
        rep = REPORTED_SHARPNESS.get(_label(net), {})
        for space in SPACES:
            for eps in eps_list:
                sb = phi(sh[s["small"]], space, eps, seeds=seeds)
                lb = phi(sh[s["large"]], space, eps, seeds=seeds)
                mt = phi(sh[mv], space, eps, seeds=seeds) if mv else [math.nan] * len(seeds)
                norm = {arm: phi(sh[v], space, eps, seeds=seeds, normalised=True) if v else [math.nan] * len(seeds)
                        for arm, v in (("SB", s["small"]), ("LB", s["large"]), ("matched", mv))}
                tag = f"{name}.{space}.eps{eps:g}"
                m_sb, m_lb, m_mt = seed_mean(sb), seed_mean(lb), seed_mean(mt)
                ratio, ratio_mt = ratio_estimate(m_lb, m_sb), ratio_estimate(m_mt, m_sb)
                numbers.update({f"{tag}.SB_mean": m_sb, f"{tag}.LB_mean": m_lb, f"{tag}.ratio_of_means": ratio})
                numbers.update({f"{tag}.{arm}_normalised_mean": seed_mean(v) for arm, v in norm.items() if
                                arm != "matched" or mv})
                if mv:
                    numbers.update({f"{tag}.matched_mean": m_mt, f"{tag}.matched_ratio_of_means": ratio_mt,
                                    f"{tag}.matched_log10_ratio_mean": seed_mean(_log_ratios(mt, sb, math.log10))})
                p = next(v["p"] for v in sh[s["small"]]["runs"][0]["values"] if v["space"] == space)
                agree = sum(1 for a, b in zip(lb, sb) if b > 0 and a / b >= min_ratio)
                rows.append({"network": _title(name, net), "space": space if p is None else f"subspace p={p}",
                             "eps": eps, "SB": pm(sb, 1, 3), "LB": pm(lb, 1, 3), "LB/SB": round(ratio, 2),
                             f"seeds LB >= {min_ratio:g} x SB": f"{agree}/{len(seeds)}",
                             "LB steps-matched": pm(mt, 1, 3), "matched/SB": round(ratio_mt, 2),
                             "log10(matched/SB)": pm(_log_ratios(mt, sb, math.log10), 1, 3),
                             "SB / train loss": pm(norm["SB"], 1, 3), "LB / train loss": pm(norm["LB"], 1, 3),
                             "matched / train loss": pm(norm["matched"], 1, 3),
                             "reported SB / LB": _fmt_reported(rep.get((space, eps)))})
                measured.append(f"{name} {space} eps {eps:g}: SB {m_sb:.3g}, LB {m_lb:.3g} ({ratio:.1f}x)"
                                + (f", step-matched LB {m_mt:.3g} ({ratio_mt:.1f}x)" if mv else ""))
        arms = {"SB": runs_sb, "LB": runs_lb, **({"LB steps-matched": net["runs"][mv]} if mv else {})}
        arm_rows += [{"network": _title(name, net), "arm": arm, **_arm(runs)} for arm, runs in arms.items()]
        regime.append(_regime(name, arms))
    tables = write_table(rows, out_dir / "table", title=f"epsilon-sharpness (Metric 2.1, L-BFGS-B) of SB and LB "
                         f"minimizers ({scale} scale), mean ± std over seeds; Keskar et al. Tables 3-4. Decided on "
                         "the step-matched LB; the equal-epoch LB and the loss-normalised values are shown")
    tables += write_table(arm_rows, out_dir / "arms", title=f"the arms compared ({scale} scale): optimizer steps, "
                          "train loss and accuracy, mean ± std over seeds")

    settings = [(sp, e) for sp in SPACES for e in SharpnessSettings.of_block(next(iter(nets.values()))["settings"]).eps]
    panels = []
    for name, net in nets.items():
        s = net["settings"]
        mv = _matched(net, "runs", "sharpness")
        variants = [s["small"], s["large"]] + ([mv] if mv else [])
        panels.append({"title": _title(name, net), "labels": ["SB", "LB", "LB steps-matched"][:len(variants)],
                       "phi": [[phi(net["sharpness"][v], space, eps) for v in variants] for space, eps in settings]})
    figs = figures.render(plot_sharpness_metric, {"scale": scale, "settings": settings, "panels": panels},
                          out_dir / "figure")
    return _result(claim, scale, decided, notes=notes, measured="; ".join(measured), n_seeds=n_seeds,
                   numbers=numbers, figures=figs, tables=tables, regime=" | ".join(regime))


@figures.register_plot("sharpness.sharpness_metric")
def plot_sharpness_metric(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Per network, the epsilon-sharpness of SB, LB (and the step-matched LB) in each (space, eps) setting on a
    log scale (bars: means, dots: seeds)."""
    settings, panels = data["settings"], data["panels"]
    fig, axes = figures.new_figure(ncols=len(panels), width=4.8 * len(panels) + 0.5, height=3.8, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        labels = panel.get("labels", ("SB", "LB"))
        w = len(labels) + 1
        for k in range(len(settings)):
            for i, vals in enumerate(panel["phi"][k]):
                x = w * k + i
                ax.bar(x, mean_std(vals)[0], color=figures.COLORS[i], alpha=0.7,
                       label=labels[i] if k == 0 else None)
                _dots(ax, x, vals)
        ax.set_yscale("log")
        ax.set_xticks([w * k + (len(labels) - 1) / 2 for k in range(len(settings))],
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


def _rises(surf: Mapping[int, Any], seeds: Sequence[int], split: str, delta: float, normalised: bool = False
           ) -> tuple[list[float], list[float]]:
    """Per seed, the ``split``-loss rise beyond the LB end f(1 + delta) - f(1) and beyond the SB end
    f(-delta) - f(0) (``normalised``: each divided by the loss at its end)."""
    rise_lb, rise_sb = [], []
    for sd in seeds:
        a, f = np.asarray(surf[sd]["xcoordinates"]), np.asarray(surf[sd][f"{split}_loss"], dtype=float)
        f1, f0 = float(f[_at(a, 1.0)]), float(f[_at(a, 0.0)])
        lb, sb = float(f[_at(a, 1 + delta)]) - f1, float(f[_at(a, -delta)]) - f0
        rise_lb.append(lb / f1 if normalised else lb)
        rise_sb.append(sb / f0 if normalised else sb)
    return rise_lb, rise_sb


def parametric_plot(nets: Mapping[str, Net], claim: Mapping[str, Any], scale: str, out_dir: str | Path
                    ) -> ClaimResult:
    """Fig. 3: along ``f(alpha x_LB + (1 - alpha) x_SB)`` the loss rises faster beyond the LB end. Each part
    ``delta_<d>``: ln[(f(1 + d) - f(1)) / (f(-d) - f(0))] on the ``split`` loss per seed, on the line from SB to
    the step-matched LB (``interpolation_matched``), one decision per network (primary ``delta_0.5``); a seed whose
    rise is not positive at either end has no ln ratio (NaN: inconclusive). The line to the equal-epoch LB and the
    loss-normalised rises (rise / loss at that end) are shown beside it."""
    out_dir = Path(out_dir)
    split = check_for(claim, scale).get("split", "train")
    parts = [p["name"] for p in claim["decision"]["parts"]]
    decided: dict[str, dict[str, Measured]] = {p: {} for p in parts}
    rows, numbers, measured, regime, notes, n_seeds = [], {}, [], [], [], 0
    for name, net in nets.items():
        lines = {"LB": net["interpolation"]}
        if net.get("interpolation_matched"):
            lines["LB steps-matched"] = net["interpolation_matched"]
        else:
            notes.append(NO_MATCH.format(what=f"{name} has no line from SB to a step-matched LB"))
            for part in parts:
                decided[part][name] = _nan(len(net["interpolation"]))
        for line, surf in lines.items():
            seeds = sorted(surf)
            n_seeds = n_seeds or len(seeds)
            prefix = f"{name}." if line == "LB" else f"{name}.matched."
            for part in parts:
                delta = float(part.partition("_")[2])
                rise_lb, rise_sb = _rises(surf, seeds, split, delta)
                norm_lb, norm_sb = _rises(surf, seeds, split, delta, normalised=True)
                ln_ratio = _log_ratios(rise_lb, rise_sb)
                if line != "LB":
                    decided[part][name] = Measured(samples=ln_ratio)
                    bad = [sd for sd, x in zip(seeds, ln_ratio) if not math.isfinite(x)]
                    if bad:
                        notes.append(f"{name} {part}: no ln ratio in seeds {bad} (a loss rise <= 0)")
                numbers[f"{prefix}delta{delta:g}.rise_LB_mean"] = seed_mean(rise_lb)
                numbers[f"{prefix}delta{delta:g}.rise_SB_mean"] = seed_mean(rise_sb)
                rows.append({"network": _title(name, net), "line": f"SB to {line}", "delta": delta,
                             f"{split} loss f(1+d)-f(1) (LB end)": pm(rise_lb, 1, 4),
                             f"{split} loss f(-d)-f(0) (SB end)": pm(rise_sb, 1, 4),
                             "ln ratio of rises": pm(ln_ratio, 1, 3),
                             "seeds LB end steeper": f"{sum(a > b for a, b in zip(rise_lb, rise_sb))}/{len(seeds)}",
                             "rise / loss at end (LB, SB)": f"{pm(norm_lb, 1, 3)}, {pm(norm_sb, 1, 3)}",
                             "deciding": "yes" if line != "LB" else "no (shown)"})
                measured.append(f"{name} SB-{line} delta {delta:g}: rise LB {mean_std(rise_lb)[0]:.3g} vs SB "
                                f"{mean_std(rise_sb)[0]:.3g}")
            ends = []
            for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
                for a_ in (0.0, 1.0):
                    vals = [float(np.asarray(surf[sd][key])[_at(np.asarray(surf[sd]["xcoordinates"]), a_)])
                            for sd in seeds]
                    numbers[f"{prefix}alpha{a_:g}.{key}_mean"] = seed_mean(vals)
                    if key != "test_loss":
                        ends.append(f"{key} at alpha {a_:g} {pm(vals, *((100, 2) if 'acc' in key else (1, 4)))}")
            regime.append(f"{name} line SB to {line}: " + ", ".join(ends))
        s = net["settings"]
        arms = {arm: net["runs"][v] for arm, v in (("SB", s.get("small")), ("LB", s.get("large")),
                                                    ("LB steps-matched", s.get("matched")))
                if v in net.get("runs", {})}
        if arms:
            regime.append(_regime(name, arms))
    tables = write_table(rows, out_dir / "table", title=f"parametric plot f(alpha x_LB + (1-alpha) x_SB) "
                         f"({scale} scale): loss rise beyond each end, mean ± std over seeds; decided on the line to "
                         "the step-matched LB")

    panels = []
    for name, net in nets.items():
        for line, surf in (("", net["interpolation"]), (", step-matched LB", net.get("interpolation_matched"))):
            if not surf:
                continue
            seeds = sorted(surf)
            panels.append({"title": _title(name, net) + line, "n_seeds": len(seeds),
                           "alpha": np.asarray(surf[seeds[0]]["xcoordinates"]),
                           "loss": {sp: np.array([surf[sd][f"{sp}_loss"] for sd in seeds]) for sp in ("train", "test")},
                           "acc": {sp: np.array([surf[sd][f"{sp}_acc"] for sd in seeds]) for sp in ("train", "test")}})
    figs = figures.render(plot_parametric, {"scale": scale, "panels": panels}, out_dir / "figure")
    return _result(claim, scale, decided, notes=notes, measured="; ".join(measured), n_seeds=n_seeds,
                   numbers=numbers, figures=figs, tables=tables, regime=" | ".join(regime))


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


def threshold_and_warmstart(nets: Mapping[str, Net], claim: Mapping[str, Any], scale: str, out_dir: str | Path
                            ) -> ClaimResult:
    """Figs. 4-5, per network (the parts combined by Holm). Sweep: ``accuracy_drop`` ln(test error at the largest
    batch / at the smallest) and ``sharpness_rise`` log10(loss-normalised Metric 2.1 at the largest batch / at the
    smallest), per seed. Warm start: ``warmstart_accuracy`` ln(test error of LB from scratch / of LB warm-started
    from the SB snapshot of the last listed epoch) and ``warmstart_flatness`` log10(loss-normalised Metric 2.1 of
    LB from scratch / of the warm-started LB), per seed. Sharpness at the check's ``space`` and ``eps``; the raw
    Metric 2.1 and the Spearman correlations of batch size with the mean test accuracy and sharpness are shown."""
    out_dir = Path(out_dir)
    check = check_for(claim, scale)
    space, eps = check.get("space", "full"), float(check["eps"])
    decided: dict[str, dict[str, Measured]] = {p["name"]: {} for p in claim["decision"]["parts"]}
    rows, numbers, measured, regime, n_seeds, panels = [], {}, [], [], 0, []
    sh_col, nm_col = f"sharpness ({space}, eps {eps:g})", "sharpness / train loss"
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
        norm = {v: phi(net["sharpness"][v], space, eps, seeds=seeds, normalised=True) for v in sweep}
        mean_acc = [mean_std(acc[v])[0] for v in sweep]
        mean_sharp = [mean_std(sharp[v])[0] for v in sweep]
        rho_acc, rho_sharp = _spearman(batches, mean_acc), _spearman(batches, mean_sharp)
        first, last = sweep[0], sweep[-1]
        decided["accuracy_drop"][name] = Measured(samples=_ln_err(net["runs"][last], net["runs"][first]))
        decided["sharpness_rise"][name] = Measured(samples=_log_ratios(norm[last], norm[first], math.log10))
        numbers[f"{name}.spearman_acc"], numbers[f"{name}.spearman_sharpness"] = rho_acc, rho_sharp
        numbers[f"{name}.spearman_sharpness_normalised"] = _spearman(batches, [mean_std(norm[v])[0] for v in sweep])
        for v, b in zip(sweep, batches):
            numbers[f"{name}.b{b}.test_acc_mean"] = seed_mean(acc[v])
            numbers[f"{name}.b{b}.sharpness_mean"] = seed_mean(sharp[v])
            numbers[f"{name}.b{b}.sharpness_normalised_mean"] = seed_mean(norm[v])
            a = _arm(net["runs"][v])
            rows.append({"network": _title(name, net), "part": "sweep", "run": f"{v} (batch {b})",
                         "steps": a["steps"], "train_loss": a["train_loss"], "train_acc_%": a["train_acc_%"],
                         "test_acc_%": a["test_acc_%"], sh_col: pm(sharp[v], 1, 3), nm_col: pm(norm[v], 1, 3)})
        measured.append(f"{name} sweep {batches}: test acc " + "/".join(f"{100 * m:.1f}" for m in mean_acc)
                        + "%, sharpness " + "/".join(f"{m:.3g}" for m in mean_sharp) + ", normalised "
                        + "/".join(f"{mean_std(norm[v])[0]:.3g}" for v in sweep))

        ws = net["warmstart"]
        epochs = sorted({epoch_of(r["group"]) for r in ws["runs"]})
        lb_runs = net["runs"][s["large"]]
        lb_acc = _acc(lb_runs)
        lb_sharp = phi(net["sharpness"][s["large"]], space, eps, seeds=seeds)
        lb_norm = phi(net["sharpness"][s["large"]], space, eps, seeds=seeds, normalised=True)
        w_acc, w_sharp, w_norm, w_recs = {}, {}, {}, {}
        for k in epochs:
            recs = sorted((r for r in ws["runs"] if r["group"] == epoch_group(k)), key=lambda r: r["seed"])
            if [r["seed"] for r in recs] != seeds:
                raise ValueError(f"{name}: warm starts from epoch {k} have seeds {[r['seed'] for r in recs]}, "
                                 f"expected {seeds}")
            w_recs[k] = recs
            w_acc[k] = [math.nan if r["diverged"] else float(r["test_acc"]) for r in recs]
            w_sharp[k], w_norm[k] = phi(recs, space, eps), phi(recs, space, eps, normalised=True)
            numbers[f"{name}.warm{k}.test_acc_mean"] = seed_mean(w_acc[k])
            numbers[f"{name}.warm{k}.sharpness_mean"] = seed_mean(w_sharp[k])
            numbers[f"{name}.warm{k}.sharpness_normalised_mean"] = seed_mean(w_norm[k])
            losses = [math.nan if r["diverged"] else float(r.get("train_loss", math.nan)) for r in recs]
            rows.append({"network": _title(name, net), "part": "warm start",
                         "run": f"{s['large']} from {s['small']} epoch {k}",
                         "steps": "/".join(sorted({str(_steps({**r, "recipe": {"batch_size": r.get("batch_size")}}))
                                                   for r in recs})),
                         "train_loss": pm(losses, 1, 4),
                         "train_acc_%": pm([math.nan if r["diverged"] else r["train_acc"] for r in recs], 100),
                         "test_acc_%": pm(w_acc[k], 100), sh_col: pm(w_sharp[k], 1, 3), nm_col: pm(w_norm[k], 1, 3)})
        k = epochs[-1]
        lb_err = [1.0 - a for a in lb_acc]
        decided["warmstart_accuracy"][name] = Measured(samples=_log_ratios(lb_err, [1.0 - a for a in w_acc[k]]))
        decided["warmstart_flatness"][name] = Measured(samples=_log_ratios(lb_norm, w_norm[k], math.log10))
        measured.append(f"{name} warm start epochs {epochs}: test acc "
                        + "/".join(f"{100 * mean_std(w_acc[e])[0]:.1f}" for e in epochs)
                        + f"% vs LB scratch {100 * mean_std(lb_acc)[0]:.1f}%, sharpness "
                        + "/".join(f"{mean_std(w_sharp[e])[0]:.3g}" for e in epochs)
                        + f" vs {mean_std(lb_sharp)[0]:.3g} (normalised "
                        + "/".join(f"{mean_std(w_norm[e])[0]:.3g}" for e in epochs)
                        + f" vs {mean_std(lb_norm)[0]:.3g})")
        regime.append(_regime(name, {v: net["runs"][v] for v in sweep})
                      + f"; LB warm-started at SB epoch {k}: train loss "
                      + pm([math.nan if r["diverged"] else float(r.get("train_loss", math.nan)) for r in w_recs[k]],
                           1, 4))
        panels.append({"title": _title(name, net), "batches": batches, "acc": [acc[v] for v in sweep],
                       "sharp": [sharp[v] for v in sweep], "epochs": epochs, "w_acc": [w_acc[e] for e in epochs],
                       "w_sharp": [w_sharp[e] for e in epochs], "lb_acc": lb_acc, "lb_sharp": lb_sharp,
                       "sb_acc": _acc(net["runs"][s["small"]]),
                       "sb_sharp": phi(net["sharpness"][s["small"]], space, eps, seeds=seeds)})
    tables = write_table(rows, out_dir / "table", title=f"batch-size sweep and LB warm starts ({scale} scale), "
                         "mean ± std over seeds; the sharpness parts are decided on sharpness / train loss")

    figs = figures.render(plot_threshold_and_warmstart, {"scale": scale, "space": space, "eps": eps,
                                                         "panels": panels}, out_dir / "figure")
    return _result(claim, scale, decided, measured="; ".join(measured), n_seeds=n_seeds, numbers=numbers,
                   figures=figs, tables=tables, regime=" | ".join(regime))


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


def remedies(nets: Mapping[str, Net], claim: Mapping[str, Any], scale: str, out_dir: str | Path) -> ClaimResult:
    """Appendix E. ``nets`` holds augmented pairs (settings with ``baseline``: the experiment of the same
    network without augmentation, also in ``nets``). Per augmented pair, over its seeds (the parts combined by
    Holm): ``gap_narrows`` ln(LB/SB test error) without augmentation minus with it, and ``lb_stays_sharp``
    log10(loss-normalised Metric 2.1 of the augmented LB / of the augmented SB) (the check's ``space``, ``eps``;
    the raw Metric 2.1 shown)."""
    out_dir = Path(out_dir)
    check = check_for(claim, scale)
    space, eps = check.get("space", "full"), float(check["eps"])
    decided: dict[str, dict[str, Measured]] = {p["name"]: {} for p in claim["decision"]["parts"]}
    rows, numbers, measured, regime, n_seeds, panels = [], {}, [], [], 0, []
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
        nm = {k: phi(f, space, eps, seeds=seeds, normalised=True) for k, (_, f) in arms.items()}
        ln_base = _ln_err(arms[(False, "LB")][0], arms[(False, "SB")][0])
        ln_aug = _ln_err(arms[(True, "LB")][0], arms[(True, "SB")][0])
        decided["gap_narrows"][name] = Measured(samples=[a - b for a, b in zip(ln_base, ln_aug)])
        decided["lb_stays_sharp"][name] = Measured(samples=_log_ratios(nm[(True, "LB")], nm[(True, "SB")],
                                                                       math.log10))
        gap = [a - b for a, b in zip(acc[(False, "SB")], acc[(False, "LB")])]
        gap_aug = [a - b for a, b in zip(acc[(True, "SB")], acc[(True, "LB")])]
        rep = REPORTED_AUGMENTED.get(_label(net))
        for (aug, arm), (runs, _) in arms.items():
            tag = f"{name}.{arm}{'.aug' if aug else ''}"
            numbers[f"{tag}.test_acc_mean"] = seed_mean(acc[(aug, arm)])
            numbers[f"{tag}.sharpness_mean"] = seed_mean(sh[(aug, arm)])
            numbers[f"{tag}.sharpness_normalised_mean"] = seed_mean(nm[(aug, arm)])
            a = _arm(runs)
            rows.append({"network": _title(name if aug else s["baseline"], net), "arm": arm, "augmentation": aug,
                         "steps": a["steps"], "train_loss": a["train_loss"], "train_acc_%": a["train_acc_%"],
                         "test_acc_%": a["test_acc_%"], f"sharpness ({space}, eps {eps:g})": pm(sh[(aug, arm)], 1, 3),
                         "sharpness / train loss": pm(nm[(aug, arm)], 1, 3),
                         "reported aug. test %": (f"{rep[0][0 if arm == 'SB' else 1]}" if rep and aug else ""),
                         "reported aug. LB sharpness": (f"{rep[1]}" if rep and aug and arm == "LB" else "")})
        numbers[f"{name}.gap_baseline_pp_mean"] = seed_mean(gap).scaled(100)
        numbers[f"{name}.gap_pp_mean"] = seed_mean(gap_aug).scaled(100)
        numbers[f"{name}.ln_err_ratio_baseline_mean"] = seed_mean(ln_base)
        numbers[f"{name}.ln_err_ratio_mean"] = seed_mean(ln_aug)
        measured.append(f"{name}: SB-LB gap {pm(gap, 100)} pp without ({s['baseline']}), {pm(gap_aug, 100)} pp with "
                        f"augmentation; augmented sharpness SB {mean_std(sh[(True, 'SB')])[0]:.3g}, LB "
                        f"{mean_std(sh[(True, 'LB')])[0]:.3g} (normalised {mean_std(nm[(True, 'SB')])[0]:.3g}, "
                        f"{mean_std(nm[(True, 'LB')])[0]:.3g})")
        regime.append(_regime(name, {f"{arm}{' aug.' if aug else ''}": runs for (aug, arm), (runs, _) in arms.items()}))
        panels.append({"title": _title(name, net), "gap": gap, "gap_aug": gap_aug,
                       "sharp": [sh[k] for k in ((False, "SB"), (False, "LB"), (True, "SB"), (True, "LB"))]})
    tables = write_table(rows, out_dir / "table", title=f"data augmentation as a remedy ({scale} scale), mean ± "
                         "std over seeds; Keskar et al. Tables 6-7; the sharpness part is decided on sharpness / "
                         "train loss")

    figs = figures.render(plot_remedies, {"scale": scale, "space": space, "eps": eps, "panels": panels},
                          out_dir / "figure")
    return _result(claim, scale, decided, measured="; ".join(measured), n_seeds=n_seeds, numbers=numbers,
                   figures=figs, tables=tables, regime=" | ".join(regime))


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


def keskar_analysis(claim: Mapping[str, Any], nets: Mapping[str, Net], scale: str, out_dir: str | Path
                    ) -> ClaimResult:
    """The analysis of the Keskar claim ``claim`` (its registry entry, with its ``decision`` block)."""
    if claim["id"] not in ANALYSES:
        raise ValueError(f"{claim['id']!r} is not a Keskar claim; known: {sorted(ANALYSES)}")
    return ANALYSES[claim["id"]](nets, claim, scale, out_dir)


def run_keskar(job: ClaimJob) -> ClaimResult:
    """The networks of the rule's ``nets`` (name -> :func:`load_net` spec), then the claim's analysis."""
    nets = {name: load_net(spec) for name, spec in job.params["nets"].items()}
    return keskar_analysis(job.claim, nets, job.scale, job.out_dir)


CLAIMS = {claim_id: run_keskar for claim_id in ANALYSES}
