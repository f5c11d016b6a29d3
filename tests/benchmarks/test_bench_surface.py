"""Surface points per second: losslab's engine vs a plain functional-call loop and Li et al.'s loop, same model,
data and grid.

(a) :func:`losslab.core.surfaces.surface_2d` (``compute_grid`` over :class:`losslab.core.weights.PointEvaluator`:
    functional calls on in-memory chunks, with everything a surface job does: the spec and its hashes, the
    journal of finished tiles fsynced per tile, the HDF5 file written at the end; a fresh file each call);
(b) the plain loop a user writes with ``torch.func`` (:func:`benchutil.functional_call_loop`: per point the
    vector cut into views, per chunk of 250 a ``functional_call``, its summed loss and correct count);
(c) Li et al.'s ``plot_surface.py`` loop: per point the weights copied into the model (``p.data.copy_``),
    then a ``DataLoader`` pass with batch 128 (:func:`benchutil.loss_landscape_loop`);
(d) the floor: as many plain ``model(x)`` passes over the same chunks, nothing else.

Timed as wall time (the engine's fsyncs wait on the disk, which thread time does not count) in ``ROUNDS``
alternating rounds; the ratios are the medians over rounds of the paired ratios (``engine_vs_plain`` = plain
loop time / engine time: above 1 the engine is faster). Setups: a small MLP and a ResNet-8 (batch norm,
running statistics) on 1000 normalised 8x8 digits, and the smoke scale's 1-D ResNet-20 on MNIST-1D. glibc's
malloc thresholds are pinned first (see tests/benchmarks/timing.py): otherwise the same forward pass takes 6 or
13 ms depending on earlier allocations.
"""

from __future__ import annotations

import itertools
import time
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchutil import functional_call_loop, loss_landscape_loop, median_ratio, pin_malloc, record, round_seconds
from losslab.core.data import prepare
from losslab.core.directions import random_directions
from losslab.core.models import build, count_parameters
from losslab.core.weights import flatten
from losslab.core.surfaces import evaluators_for, surface_2d

DIGITS = {"name": "digits", "n_train": 1000, "preprocessing": ["normalize"]}
SETUPS = {  # data, model, grid side
    "digits-mlp": (DIGITS, {"name": "mlp", "widths": [32]}, 8),
    "digits-resnet8": (DIGITS, {"name": "resnet", "depth": 8, "width": 8}, 4),
    "mnist1d-resnet20": ({"name": "mnist1d", "n_train": 1000}, {"name": "resnet", "depth": 20, "width": 8}, 4),
}
CHUNK, ROUNDS = 250, 5


@pytest.mark.parametrize("setup", list(SETUPS))
def test_surface_points_per_second(benchmark, setup, tmp_path):
    torch.set_num_threads(1)
    pinned = pin_malloc()
    data_spec, model_spec, side = SETUPS[setup]
    data = prepare(data_spec, resources=Path(tempfile.gettempdir()) / "losslab-bench")
    torch.manual_seed(0)
    model = build(model_spec, data.input_shape, data.num_classes).eval()
    origin, dirs = flatten(model), random_directions(model, seed=0)
    xs = ys = np.linspace(-1, 1, side)
    points = [origin + float(a) * dirs.x + float(b) * dirs.y for a in xs for b in ys]
    evaluators = evaluators_for(model, data, splits=("train",), chunk=CHUNK)
    files = (tmp_path / f"s{i}.h5" for i in itertools.count())

    def engine():  # a fresh file each time: nothing is resumed
        return surface_2d(next(files), evaluators, origin, dirs, xs, ys, progress=False)

    def plain():
        return functional_call_loop(model, data.x_train, data.y_train, points, CHUNK)

    def loss_landscape():
        return loss_landscape_loop(model, data.x_train, data.y_train, points)

    def floor():
        with torch.no_grad():
            for _ in points:
                for i in range(0, len(data.y_train), CHUNK):
                    model(data.x_train[i:i + CHUNK])

    surface = engine()
    for reference in (plain(), loss_landscape()):
        np.testing.assert_allclose(surface["train_loss"].reshape(-1), [r[0] for r in reference], rtol=1e-4)
        np.testing.assert_allclose(surface["train_acc"].reshape(-1), [r[1] for r in reference], atol=1e-9)

    times = round_seconds({"losslab": engine, "plain": plain, "loss_landscape": loss_landscape, "floor": floor},
                          ROUNDS, time.perf_counter)
    rate = {k: len(points) / float(np.median(ts)) for k, ts in times.items()}
    benchmark.pedantic(engine, rounds=1, iterations=1)
    record(benchmark, f"surface {setup} ({count_parameters(model)} weights, n={len(data.y_train)}, "
                      f"{side}x{side} grid, {ROUNDS} rounds, malloc pinned {pinned})",
           losslab_points_per_s=rate["losslab"], plain_points_per_s=rate["plain"],
           loss_landscape_points_per_s=rate["loss_landscape"], floor_points_per_s=rate["floor"],
           engine_vs_plain=median_ratio(times, "plain", "losslab"),
           engine_vs_loss_landscape=median_ratio(times, "loss_landscape", "losslab"),
           engine_vs_floor=median_ratio(times, "floor", "losslab"))
