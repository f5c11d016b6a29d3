"""How fast is multi-point optimization? Cells per second, batched (``torch.vmap``) vs one cell at a time (loop),
measured in one process on the smoke scale's loss-pattern setup (``patterns`` in config/scales/smoke.yaml: the
8x8 digits, the two tiny CNNs without and with BN, the MPO batch size and cells per step).

Three measurements per net, each timed for both methods in interleaved rounds (the machine is shared: a burst
of load hits both alike, and the fastest round is kept):

(1) the gradient pass alone (:func:`losslab.core.patterns.cell_throughput`: forward and backward of one step's
    cells on one minibatch);
(2) :func:`losslab.core.patterns.fit_plane` end to end (cell and minibatch sampling, the plane, gradients, Adam)
    for ``--steps`` steps on a random mask of the smoke size;
(3) the maps (:func:`losslab.core.patterns.evaluate_pattern`, forward only over the evaluated train and test
    digits): vmap only exists without BN; with BN every cell gets recomputed statistics, loop only.

One thread (``--threads``). Not a test: ``python tests/benchmarks/pattern_speed.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from losslab.claims import patterns as pc
from losslab.core import patterns as pt
from losslab.pipeline.config import resolve
from losslab.core.data import prepare
from losslab.core.models import build, count_parameters
from losslab.core.weights import has_batchnorm
from timing import best_seconds, pin_malloc

ROOT = Path(__file__).resolve().parents[2]






def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="smoke", help="scale whose `patterns` block is measured (default smoke)")
    ap.add_argument("--steps", type=int, default=30, help="fit_plane steps per timed fit (default 30)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the fastest is kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resources", default="resources", help="cache directory of the generated data")
    ap.add_argument("--no-pin-malloc", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    pinned = False if args.no_pin_malloc else pin_malloc()
    cfg = resolve({"scale": args.scale}, root=ROOT)["patterns"]
    data = prepare(cfg["dataset"], resources=args.resources)
    mpo = pc.mpo_config({**cfg["mpo"], **cfg["random"].get("mpo", {})}, seed=0)
    size, p = cfg["random"]["size"], cfg["random"]["p"][len(cfg["random"]["p"]) // 2]
    pattern = pt.random_mask(size, p, seed=0)
    bs, cells = mpo.batch_size, mpo.cells_per_step
    xb, yb = data.x_train[:bs], data.y_train[:bs]
    n_tr = min(mpo.n_eval_train or len(data.y_train), len(data.y_train))
    n_te = min(mpo.n_eval_test or len(data.y_test), len(data.y_test))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), malloc pinned: {pinned}; scale "
          f"{args.scale}: {cfg['dataset']['name']}, {size}x{size} mask (p={p:g}), {cells} cells a step "
          f"(cells_per_call {mpo.cells_per_call}), minibatch {bs}; maps over {n_tr} train + {n_te} test inputs; "
          f"best of {args.rounds} interleaved rounds")
    print(f"{'net':<34} {'measurement':<30} {'loop cells/s':>12} {'vmap cells/s':>12} {'vmap/loop':>9}")
    for arch, spec in cfg["architectures"].items():
        def factory(spec=spec) -> torch.nn.Module:
            return build(spec, data.input_shape, data.num_classes)

        model = factory()
        plane = mpo.plane(factory)
        label = f"{arch} ({count_parameters(model)} weights)"

        def grad_pass(method: str) -> Callable[[], object]:
            return lambda: pt.cell_throughput(plane, model, xb, yb, n_cells=cells, method=method,
                                              cells_per_call=mpo.cells_per_call, repeats=1, cap=mpo.cap)

        # cell_throughput times its own passes (best of `repeats` after a warm-up): use its figure directly
        rates = {m: 0.0 for m in ("loop", "vmap")}
        for _ in range(args.rounds):
            for m in rates:
                rates[m] = max(rates[m], grad_pass(m)())
        print(f"{label:<34} {'(1) gradient pass':<30} {rates['loop']:>12.0f} {rates['vmap']:>12.0f} "
              f"{rates['vmap'] / rates['loop']:>9.2f}")

        def fit(method: str) -> Callable[[], object]:
            config = replace(mpo, steps=args.steps, method=method)
            return lambda: pt.fit_plane(mpo.plane(factory), model, pattern, data, config, seed=0)

        fit("vmap")()  # warm-up (vmap's first call traces)
        secs = best_seconds({m: fit(m) for m in ("loop", "vmap")}, args.rounds)
        fit_rates = {m: args.steps * cells / s for m, s in secs.items()}
        print(f"{label:<34} {f'(2) fit_plane, {args.steps} steps':<30} {fit_rates['loop']:>12.0f} "
              f"{fit_rates['vmap']:>12.0f} {fit_rates['vmap'] / fit_rates['loop']:>9.2f}")

        bn = has_batchnorm(model)  # evaluate_pattern loops over BN cells (recomputed statistics per cell)
        methods = ("loop",) if bn else ("loop", "vmap")

        def maps_of(method: str) -> Callable[[], object]:
            return lambda: pt.evaluate_pattern(plane, model, data, (size, size), bn=mpo.eval_bn,
                                               chunk=mpo.eval_chunk, method=method, n_train=mpo.n_eval_train,
                                               n_test=mpo.n_eval_test)

        secs = best_seconds({m: maps_of(m) for m in methods}, max(1, args.rounds - 1))
        maps = {m: size * size / s for m, s in secs.items()}
        vm = f"{maps['vmap']:>12.1f} {maps['vmap'] / maps['loop']:>9.2f}" if "vmap" in maps else f"{'n/a':>12} {'':>9}"
        what = f"(3) maps, BN stats {mpo.eval_bn}" if bn else "(3) maps"
        print(f"{label:<34} {what:<30} {maps['loop']:>12.1f} {vm}")


if __name__ == "__main__":
    main()
