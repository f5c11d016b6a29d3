"""What a full reproduction at a scale costs: counted FLOPs per forward pass times the work each experiment
does, converted to GPU-hours at a stated throughput.

``python -m losslab.pipeline.cost config/scales/paper.yaml`` writes ``docs/gpu-hours.md``. Everything is derived from
the scale file: the models are built from their specs and their forward pass is counted by
``torch.utils.flop_counter.FlopCounterMode`` (batch 1, at the dataset's input size, on the ``meta`` device: no
arithmetic is done); the work is read from the recipes (epochs, batch sizes, evaluation cadence), seeds and
variants, and the analysis blocks (surface grids, Lanczos and SLQ runs, sharpness, curves, patterns).

Conventions (written in the table too):

* FLOPs are those FlopCounterMode counts: 2 per multiply-add of matmuls and convolutions (normalisation,
  activations, pooling and optimizer updates are not counted: a few percent for these nets);
* a training step costs 3 forward passes (forward + backward, the backward twice the forward);
* a Hessian-vector product costs :data:`HVP_FORWARDS` forward passes per sample (double backward: a
  forward-backward pass and the backward of the backward, about twice a gradient);
* the numbers of Lanczos steps are assumed (the runs stop at a tolerance, not a count):
  :data:`LANCZOS_STEPS_PER_EIGENVALUE` per requested eigenvalue (13 products for the top 5 at tol 1e-3 in
  tests/benchmarks/test_bench_hessian.py) and :data:`RATIO_MAP_STEPS` per point of a ratio map (both ends at
  tol 1e-2) unless ``max_iter`` caps them;
  L-BFGS-B in Metric 2.1 costs :data:`LBFGS_EVALS_PER_ITER` loss-and-gradient passes per iteration.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from losslab.pipeline.config import deep_merge, read_yaml, run_spec
from losslab.core.models import build

# the datasets' own sizes: input shape, classes, training and test samples (mnist1d: its generator's default
# 5000 samples split 80/20; digits: losslab's fixed 1437/360 split)
DATASETS: dict[str, tuple[tuple[int, ...], int, int, int]] = {
    "cifar10": ((3, 32, 32), 10, 50_000, 10_000),
    "mnist": ((1, 28, 28), 10, 60_000, 10_000),
    "fashion_mnist": ((1, 28, 28), 10, 60_000, 10_000),
    "digits": ((1, 8, 8), 10, 1437, 360),
    "mnist1d": ((1, 40), 10, 4000, 1000),
}
# experiment keys whose work is counted (anything else is named in the table's notes as not counted)
COUNTED_KEYS = {"claim", "description", "dataset", "model", "recipe", "seeds", "variants", "lr_search", "surface",
                "trajectory", "ratio_map", "width_analysis", "spectrum", "random_lines", "random_directions",
                "continuation", "basin", "sharpness", "connectivity"}
TRAIN_FORWARDS = 3
HVP_FORWARDS = 6
LANCZOS_STEPS_PER_EIGENVALUE = 3
RATIO_MAP_STEPS = 40
LBFGS_EVALS_PER_ITER = 2
GPU = "NVIDIA A100"
ACHIEVED_TFLOPS = 20.0  # sustained on these small CIFAR/MNIST nets (peak: 156 TF32, 312 bf16)


# ---------------------------------------------------------------- FLOPs of one forward pass -----------------

def forward_flops(model: torch.nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of ``model`` on one sample of ``input_shape`` (counted on the meta device:
    nothing is computed, ``model`` is not changed)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.zeros(1, *input_shape, device="meta"))
    return int(counter.get_total_flops())


_FLOPS_CACHE: dict[str, int] = {}


def spec_flops(model_spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> int:
    key = json.dumps([model_spec, list(input_shape), num_classes], sort_keys=True, default=str)
    if key not in _FLOPS_CACHE:
        with torch.device("meta"):
            model = build(model_spec, input_shape, num_classes)
        _FLOPS_CACHE[key] = forward_flops(model, input_shape)
    return _FLOPS_CACHE[key]


# ---------------------------------------------------------------- work of a run ------------------------------

@dataclass
class Sizes:
    input_shape: tuple[int, ...]
    num_classes: int
    n_train: int
    n_test: int


def sizes(dataset: Mapping[str, Any]) -> Sizes:
    name = dataset["name"]
    if name not in DATASETS:
        raise ValueError(f"cost: no size known for dataset {name!r}; known: {sorted(DATASETS)}")
    shape, classes, n_tr, n_te = DATASETS[name]
    if name == "mnist1d" and "num_samples" in dataset.get("options", {}):
        n = int(dataset["options"]["num_samples"])
        n_tr, n_te = int(0.8 * n), n - int(0.8 * n)
    if dataset.get("classes"):
        k = len(dataset["classes"])
        n_tr, n_te, classes = n_tr * k // classes, n_te * k // classes, k
    n_tr = min(n_tr, dataset.get("n_train") or n_tr)
    n_te = min(n_te, dataset.get("n_test") or n_te)
    return Sizes(tuple(shape), classes, n_tr, n_te)


@dataclass
class Cost:
    """Forward-pass-equivalents of one sample, split by what they are for, and the FLOPs they come to."""

    training: float = 0.0
    analyses: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, other: "Cost") -> None:
        self.training += other.training
        self.analyses += other.analyses
        self.notes += [n for n in other.notes if n not in self.notes]


def training_flops(run: Mapping[str, Any], epochs: int | None = None, n_train: int | None = None) -> float:
    """FLOPs of training ``run`` once: epochs x samples x 3 forwards, plus its evaluations of both splits."""
    sz = sizes(run["dataset"])
    recipe = run.get("recipe", {})
    f = spec_flops(run["model"], sz.input_shape, sz.num_classes)
    epochs = int(recipe.get("epochs", 10) if epochs is None else epochs)
    n = sz.n_train if n_train is None else n_train
    evals = math.ceil(epochs / int(recipe.get("eval_every", 1)))
    return f * (epochs * n * TRAIN_FORWARDS + evals * (n + sz.n_test))


def _n(values: Any, default: int) -> int:
    return int(values) if values is not None else default


def _grid_points(axis: Sequence[float]) -> int:
    return int(axis[2])


def experiment_cost(name: str, exp: Mapping[str, Any]) -> Cost:
    """FLOPs of one experiment of a scale: its training runs and every analysis block it has."""
    variants = list((exp.get("variants") or {"default": {}}).keys())
    seeds = list(exp.get("seeds", [0]))
    runs = {v: run_spec(exp, v) for v in variants}
    cost = Cost()
    for v, run in runs.items():
        cost.training += len(seeds) * training_flops(run)
        if "lr_search" in run:
            ls = run["lr_search"]
            n_fit = int(sizes(run["dataset"]).n_train * (1 - float(ls.get("val_fraction", 0.2))))
            cost.training += len(ls["grid"]) * training_flops(run, n_train=n_fit)
    base = runs[variants[0]]
    sz = sizes(base["dataset"])

    def fwd(v: str) -> int:
        r = runs.get(v, base)
        s = sizes(r["dataset"])
        return spec_flops(r["model"], s.input_shape, s.num_classes)

    def pts(n_tr: int | None, n_te: int | None, bn: str = "running", test: bool = True) -> int:
        """Samples forwarded per point: train (+ test) split, plus a BN-statistics pass when recomputed."""
        tr = min(_n(n_tr, sz.n_train), sz.n_train)
        te = min(_n(n_te, sz.n_test), sz.n_test) if test else 0
        return tr + te + (tr if bn == "recompute" else 0)

    if "surface" in exp:
        s = exp["surface"]
        for v in variants:
            cost.analyses += len(s.get("seeds", seeds)) * fwd(v) * _grid_points(s["x"]) * _grid_points(s["y"]) * \
                pts(s.get("n_train"), s.get("n_test"), s.get("bn", "running"))
    if "trajectory" in exp:
        t = exp["trajectory"]
        for v in t.get("variants", variants):
            cost.analyses += len(t.get("seeds", seeds)) * fwd(v) * int(t["n"]) ** 2 * \
                pts(t.get("n_train"), t.get("n_test"), t.get("bn", "running"))
    ratio_maps = [exp["ratio_map"]] if "ratio_map" in exp else []
    if "width_analysis" in exp and "ratio_map" in exp["width_analysis"]:
        ratio_maps.append(exp["width_analysis"]["ratio_map"])
    for rm in ratio_maps:
        steps = min(_n(rm.get("max_iter"), RATIO_MAP_STEPS), RATIO_MAP_STEPS)
        for v in rm.get("variants", variants):
            cost.analyses += len(rm.get("seeds", seeds)) * fwd(v) * _grid_points(rm["x"]) * _grid_points(rm["y"]) \
                * steps * HVP_FORWARDS * min(_n(rm.get("n_train"), sz.n_train), sz.n_train)
        cost.notes.append(f"ratio map: {steps} Lanczos steps a point (assumed)")
    if "spectrum" in exp:
        s = exp["spectrum"]
        products = LANCZOS_STEPS_PER_EIGENVALUE * int(s["top_k"]) + \
            int(s.get("slq_runs", 0)) * int(s.get("slq_steps", 0))
        for v in variants:
            n = min(_n(s.get("n_train"), sizes(runs[v]["dataset"]).n_train), sizes(runs[v]["dataset"]).n_train)
            cost.analyses += len(seeds) * fwd(v) * products * HVP_FORWARDS * n
        cost.notes.append(f"spectrum: {LANCZOS_STEPS_PER_EIGENVALUE} Lanczos steps per eigenvalue (assumed) + SLQ")
    for key in ("random_lines", "random_directions"):  # raw and filter-normalized lines
        if key in exp:
            s = exp[key]
            for v in variants:
                cost.analyses += 2 * len(seeds) * fwd(v) * int(s["directions"]) * _grid_points(s["alphas"]) * \
                    pts(s.get("n_train"), 0, s.get("bn", "running"), test=False)
    if "continuation" in exp:
        c = exp["continuation"]
        run = deep_merge(runs[c["from"]], {"recipe": c.get("recipe", {})})
        cost.training += len(seeds) * training_flops(run)
    if "basin" in exp:
        b = exp["basin"]
        cost.analyses += len(seeds) * fwd(variants[0]) * _grid_points(b["alphas"]) * \
            pts(b.get("n_train"), b.get("n_test"), b.get("bn", "running"))
    if "sharpness" in exp:
        cost.add(_sharpness_cost(exp["sharpness"], runs, seeds, fwd, sz, pts))
    if "connectivity" in exp:
        cost.add(_connectivity_cost(exp["connectivity"], runs, fwd, sz, pts))
    uncounted = sorted(set(exp) - COUNTED_KEYS)
    if uncounted:
        cost.notes.append(f"not counted: {', '.join(uncounted)}")
    return cost


def _sharpness_cost(s: Mapping[str, Any], runs: Mapping[str, Any], seeds: list, fwd, sz: Sizes, pts) -> Cost:
    cost = Cost()
    nets = list(s.get("sweep", [s["small"], s["large"]]))
    n = min(_n(s.get("n_train"), sz.n_train), sz.n_train)
    starts = 1 if s.get("method", "multistart") == "keskar" else 2 + int(s.get("random_starts", 2))
    per_net = len(s.get("eps", [1e-3])) * (2 if s.get("subspace_dim") else 1) * int(s.get("maxiter", 10)) * \
        starts * LBFGS_EVALS_PER_ITER * TRAIN_FORWARDS * n
    for v in nets:
        cost.analyses += len(seeds) * fwd(v) * per_net
    if "warmstart" in s:  # the LB recipe trained from each listed SB snapshot, every seed
        cost.training += len(s["warmstart"]["epochs"]) * len(seeds) * training_flops(runs[s["large"]])
    if "interpolation" in s:
        i = s["interpolation"]
        cost.analyses += len(seeds) * fwd(s["small"]) * _grid_points(i["alphas"]) * \
            pts(i.get("n_train"), i.get("n_test"), i.get("bn", "running"))
    cost.notes.append(f"Metric 2.1: {LBFGS_EVALS_PER_ITER} loss+gradient passes per L-BFGS-B iteration (assumed)")
    return cost


def _connectivity_cost(c: Mapping[str, Any], runs: Mapping[str, Any], fwd, sz: Sizes, pts) -> Cost:
    cost = Cost()
    curves = c.get("curves", {})
    if curves:
        crun = deep_merge(runs[next(iter(runs))], {"recipe": curves["recipe"]})
        per_point = pts(curves.get("n_train"), curves.get("n_test"), curves.get("bn", "recompute"))
        plane = curves.get("plane", {})
        for pair in curves.get("pairs", {}).values():
            v = pair["a"].split("/")[0]
            for _ in pair.get("kinds", ["bezier"]):
                cost.training += training_flops({**crun, "model": runs[v]["model"]})
                cost.analyses += fwd(v) * int(curves.get("points", 61)) * per_point
            if pair.get("plane"):
                cost.analyses += fwd(v) * int(plane.get("n", 21)) ** 2 * per_point
    fge = c.get("fge-ensembles")
    if fge:
        v = fge["variant"]
        cost.training += training_flops(runs[v], epochs=int(fge["epochs"]))
    tsp = c.get("trivial-scaling-path")
    if tsp:
        cost.analyses += fwd(tsp["endpoint"].split("/")[0]) * _grid_points(tsp["t"]) * pts(None, None)
    cost.notes.append("curve training: one network's forward and backward per sample (the curve's weights are "
                      "combined once per step)")
    return cost


def patterns_cost(p: Mapping[str, Any]) -> Cost:
    """Multi-point optimization: per architecture and run, steps x batch x cells x 3 forwards, plus the maps
    (every cell of the pattern evaluated on both splits, BN statistics recomputed per cell for the BN net)."""
    sz = sizes(p["dataset"])
    mpo = p["mpo"]
    runs = [(p["picture"], int(p["picture"]["pattern"]["size"]), len(p["picture"]["seeds"]))]
    runs += [(p["random"], int(p["random"]["size"]), len(p["random"]["p"]) * len(p["random"]["seeds"]))]
    cost = Cost()
    for arch in p["architectures"].values():
        f = spec_flops(arch, sz.input_shape, sz.num_classes)
        for block, size, n_runs in runs:
            m = {**mpo, **block.get("mpo", {})}
            cost.training += n_runs * f * int(m["steps"]) * int(m["batch_size"]) * int(m["cells_per_step"]) * \
                TRAIN_FORWARDS
            n_tr = min(_n(m.get("n_eval_train"), sz.n_train), sz.n_train)
            n_te = min(_n(m.get("n_eval_test"), sz.n_test), sz.n_test)
            recompute = n_tr if arch.get("bn") and m.get("eval_bn", "recompute") == "recompute" else 0
            cost.analyses += n_runs * f * size * size * (n_tr + n_te + recompute)
    return cost


# ---------------------------------------------------------------- the table ---------------------------------

def gpu_hours(flops: float, tflops: float = ACHIEVED_TFLOPS) -> float:
    return flops / (tflops * 1e12) / 3600.0


def scale_costs(scale: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per experiment (and one for the loss patterns; the toys are CPU seconds): the claims it
    serves, its model's forward FLOPs, training and analysis FLOPs."""
    rows = []
    for name, exp in scale.get("experiments", {}).items():
        cost = experiment_cost(name, exp)
        base = run_spec(exp, next(iter(exp.get("variants") or {"default": {}})))
        sz = sizes(base["dataset"])
        per_variant = []
        for v in exp.get("variants") or {"default": {}}:
            run = run_spec(exp, v)
            s = sizes(run["dataset"])
            per_variant.append(spec_flops(run["model"], s.input_shape, s.num_classes))
        rows.append({"experiment": name, "claim": exp.get("claim", ""), "dataset": base["dataset"]["name"],
                     "model": _model_label(base["model"]) + (" (first variant)" if len(set(per_variant)) > 1
                                                             else ""),
                     "forward_flops": (min(per_variant), max(per_variant)),
                     "runs": len(exp.get("variants") or {"default": {}}) * len(exp.get("seeds", [0])),
                     "training": cost.training, "analyses": cost.analyses, "notes": cost.notes})
    if "patterns" in scale:
        p = scale["patterns"]
        cost = patterns_cost(p)
        sz = sizes(p["dataset"])
        arch_flops = [spec_flops(a, sz.input_shape, sz.num_classes) for a in p["architectures"].values()]
        rows.append({"experiment": "patterns", "claim": "mpo-arbitrary-patterns, mpo-bn-harder-to-fit",
                     "dataset": p["dataset"]["name"], "model": " / ".join(_model_label(a) for a in
                                                                          p["architectures"].values()),
                     "forward_flops": (min(arch_flops), max(arch_flops)),
                     "runs": len(p["architectures"]) * (len(p["picture"]["seeds"]) + len(p["random"]["p"]) *
                                                        len(p["random"]["seeds"])),
                     "training": cost.training, "analyses": cost.analyses, "notes": cost.notes})
    return rows


def _model_label(spec: Mapping[str, Any]) -> str:
    keys = [k for k in ("depth", "config", "widths", "channels", "width", "bn") if k in spec]
    return spec["name"] + " " + " ".join(f"{k}={spec[k]}" for k in keys)


def _fmt_flops(x: float) -> str:
    for unit, scale in (("EFLOP", 1e18), ("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOP"


def _fmt_range(lo_hi: tuple[float, ...]) -> str:
    lo, hi = _fmt_flops(lo_hi[0]), _fmt_flops(lo_hi[-1])
    return lo if lo == hi else f"{lo} - {hi}"


def markdown(rows: list[dict[str, Any]], scale_file: str, claims: Mapping[str, list[str]] | None = None,
             tflops: float = ACHIEVED_TFLOPS) -> str:
    claims = claims or {}
    total = sum(r["training"] + r["analyses"] for r in rows)
    lines = [
        f"# GPU-hours of a full reproduction at `{scale_file}`",
        "",
        f"Generated by `python -m losslab.pipeline.cost {scale_file}` (do not edit by hand). FLOPs are counted, the "
        f"throughput is an assumption: **one {GPU} sustaining {tflops:g} TFLOP/s** on these small CIFAR/MNIST "
        f"networks (its peak is 156 TFLOP/s in TF32 and 312 in bf16; small convolutions at batch 128 use a "
        f"fraction of it). GPU-hours scale as 1/throughput: at {2 * tflops:g} TFLOP/s halve them. Tiny "
        f"fully connected nets are bound by kernel launches, not FLOPs: their rows are lower bounds.",
        "",
        "How the FLOPs are counted: `torch.utils.flop_counter.FlopCounterMode` on each model's forward pass "
        "(batch 1, the dataset's input size, meta device; 2 FLOPs per multiply-add of matmuls and convolutions, "
        "normalisation and activations not counted), times the samples each job forwards, read from the scale "
        f"file: a training step is {TRAIN_FORWARDS} forward passes, a Hessian-vector product {HVP_FORWARDS}, "
        "every evaluation pass (surface points, lines, curves, BN-statistics recomputation) one. Assumed where the "
        f"config does not say: {LANCZOS_STEPS_PER_EIGENVALUE} Lanczos steps per requested eigenvalue, "
        f"{RATIO_MAP_STEPS} per ratio-map point, {LBFGS_EVALS_PER_ITER} loss+gradient passes per L-BFGS-B "
        "iteration. The toys (exact computations) take CPU seconds and are not listed.",
        "",
        "Claims that share an experiment share its cost (it is paid once).",
        "",
        "| experiment | claims | data | model | forward / sample | runs | training | analyses | GPU-hours |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: -(r["training"] + r["analyses"])):
        ids = ", ".join(claims.get(r["experiment"], [])) or r["claim"]
        lines.append(f"| `{r['experiment']}` | {ids} | {r['dataset']} | {r['model']} | "
                     f"{_fmt_range(r['forward_flops'])} | {r['runs']} | {_fmt_flops(r['training'])} | "
                     f"{_fmt_flops(r['analyses'])} | {gpu_hours(r['training'] + r['analyses'], tflops):,.1f} |")
    lines += [f"| **total** | | | | | {sum(r['runs'] for r in rows)} | "
              f"{_fmt_flops(sum(r['training'] for r in rows))} | {_fmt_flops(sum(r['analyses'] for r in rows))} | "
              f"**{gpu_hours(total, tflops):,.0f}** |", ""]
    notes = [f"* `{r['experiment']}`: " + "; ".join(r["notes"]) for r in rows if r["notes"]]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    return "\n".join(lines)


def claims_by_experiment(claims_file: str | Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if Path(claims_file).exists():
        for c in read_yaml(claims_file) or []:
            if c.get("experiment"):
                out.setdefault(c["experiment"], []).append(c["id"])
    return out


def cost_main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scale_file", help="config/scales/<scale>.yaml")
    ap.add_argument("--out", default="docs/gpu-hours.md")
    ap.add_argument("--claims", default="config/claims.yaml", help="claim registry (claim ids per experiment)")
    ap.add_argument("--tflops", type=float, default=ACHIEVED_TFLOPS, help="assumed sustained TFLOP/s of one GPU")
    args = ap.parse_args(argv)
    scale = read_yaml(args.scale_file)
    rows = scale_costs(scale)
    text = markdown(rows, args.scale_file, claims_by_experiment(args.claims), args.tflops)
    from losslab import io as lio

    lio.write_text(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    cost_main()
