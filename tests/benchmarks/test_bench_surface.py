"""Surface points per second: losslab's engine vs the loss-landscape loop, same model, data and grid.

(a) :func:`losslab.core.surfaces.surface_2d` (``compute_grid`` over :class:`losslab.core.weights.PointEvaluator`:
    functional calls on in-memory chunks, the resumable HDF5 file written tile by tile included);
(b) Li et al.'s ``plot_surface.py`` loop: per point the weights copied into the model (``p.data.copy_``),
    then a ``DataLoader`` pass with batch 128 (:func:`benchutil.loss_landscape_loop`);
(c) the floor: as many plain ``model(x)`` passes over the same chunks, nothing else (recorded as
    ``floor_points_per_s``: how close the engine is to the forward passes it cannot avoid).

Setups: the smoke scale's skip-connection surface (1-D ResNet-20, width 8, MNIST-1D, 1000 samples) and a 2-D
ResNet-8 (width 8) on the 8x8 digits. glibc's malloc thresholds are pinned first (see tests/benchmarks/timing.py):
otherwise the same forward pass takes 6 or 13 ms depending on earlier allocations.
"""

from __future__ import annotations

import itertools
import time
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchutil import best_seconds, loss_landscape_loop, pin_malloc, record
from losslab.core.data import prepare
from losslab.core.directions import random_directions
from losslab.core.models import build, count_parameters
from losslab.core.weights import flatten
from losslab.core.surfaces import evaluators_for, surface_2d

SETUPS = {
    "mnist1d-resnet20": ({"name": "mnist1d", "n_train": 1000}, {"name": "resnet", "depth": 20, "width": 8}),
    "digits-resnet8": ({"name": "digits", "n_train": 1000, "preprocessing": ["normalize"]},
                       {"name": "resnet", "depth": 8, "width": 8}),
}
GRID, CHUNK, ROUNDS = 4, 250, 3


@pytest.mark.parametrize("setup", list(SETUPS))
def test_surface_points_per_second(benchmark, setup, tmp_path):
    pinned = pin_malloc()
    data_spec, model_spec = SETUPS[setup]
    data = prepare(data_spec, resources=Path(tempfile.gettempdir()) / "losslab-bench")
    torch.manual_seed(0)
    model = build(model_spec, data.input_shape, data.num_classes).eval()
    origin, dirs = flatten(model), random_directions(model, seed=0)
    xs = ys = np.linspace(-1, 1, GRID)
    points = [origin + float(a) * dirs.x + float(b) * dirs.y for a in xs for b in ys]
    evaluators = evaluators_for(model, data, splits=("train",), chunk=CHUNK)
    files = (tmp_path / f"s{i}.h5" for i in itertools.count())

    def engine():  # a fresh file each time: nothing is resumed
        return surface_2d(next(files), evaluators, origin, dirs, xs, ys, progress=False)

    def baseline():
        return loss_landscape_loop(model, data.x_train, data.y_train, points)

    surface = engine()
    reference = baseline()
    np.testing.assert_allclose(surface["train_loss"].reshape(-1), [r[0] for r in reference], rtol=1e-4)
    np.testing.assert_allclose(surface["train_acc"].reshape(-1), [r[1] for r in reference], atol=1e-9)

    def floor():
        with torch.no_grad():
            for _ in points:
                for i in range(0, len(data.y_train), CHUNK):
                    model(data.x_train[i:i + CHUNK])

    seconds = best_seconds({"losslab": engine, "loss_landscape": baseline, "floor": floor}, ROUNDS,
                           time.thread_time)
    rate = {k: len(points) / s for k, s in seconds.items()}
    benchmark.pedantic(engine, rounds=1, iterations=1)
    record(benchmark, f"surface {setup} ({count_parameters(model)} weights, n={len(data.y_train)}, "
                      f"{GRID}x{GRID} grid, malloc pinned {pinned})",
           losslab_points_per_s=rate["losslab"], loss_landscape_points_per_s=rate["loss_landscape"],
           floor_points_per_s=rate["floor"], ratio=rate["losslab"] / rate["loss_landscape"],
           engine_over_floor=rate["losslab"] / rate["floor"])
