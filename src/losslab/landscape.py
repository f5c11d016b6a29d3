"""Loss surfaces of trained runs: load a run's model, pick directions, evaluate the grid.

This is where the workflow's surface jobs meet the engine (:mod:`losslab.surfaces`): a run spec (dataset,
model, recipe) and its ``model.pt`` go in, an HDF5 surface with loss-landscape's names and the directions in
their own HDF5 file come out. Settings (one mapping, the experiment's ``surface`` key in the config):

* ``x``, ``y``: ``[start, stop, num]`` of the grid in units of the (filter-normalized) directions;
* ``direction_seed``, ``norm`` (filter / layer / weight / none), ``ignore`` (biasbn / copy / keep);
* ``bn``: running / recompute / batch (see :mod:`losslab.params`);
* ``n_train``, ``n_test``: evaluate on fixed subsets of the splits (None: all of it);
* ``chunk``, ``tile_rows``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import io as lio
from .data import prepare, subset
from .directions import random_directions, save_directions
from .models import build
from .params import flatten
from .surfaces import Surface, evaluators_for, surface_2d

DEFAULTS: dict[str, Any] = {"x": [-1.0, 1.0, 21], "y": [-1.0, 1.0, 21], "direction_seed": 0, "norm": "filter",
                            "ignore": "biasbn", "bn": "running", "n_train": None, "n_test": None, "chunk": 250,
                            "tile_rows": 1}


def grid(spec: Any) -> np.ndarray:
    start, stop, num = spec
    return np.linspace(float(start), float(stop), int(num))


def load_trained(run: Mapping[str, Any], model_path: str | os.PathLike, data_dir: str | None = None,
                 resources: str = "resources"):
    """The trained model of a run (built from its spec, weights from ``model_path``) and its data."""
    data = prepare(run["dataset"], data_dir=data_dir, resources=resources)
    model = build(run["model"], data.input_shape, data.num_classes)
    model.load_state_dict(lio.load_torch(model_path))
    model.eval()
    return model, data


def surface_of_run(run: Mapping[str, Any], model_path: str | os.PathLike, settings: Mapping[str, Any],
                   out: str | os.PathLike, directions_out: str | os.PathLike, *, data_dir: str | None = None,
                   resources: str = "resources", progress: bool = False) -> Surface:
    """Li et al.'s 2-D surface around a trained run: ``theta* + alpha*delta + beta*eta`` over the grid."""
    s = {**DEFAULTS, **settings}
    model, data = load_trained(run, model_path, data_dir, resources)
    x_tr, y_tr = subset(data.x_train, data.y_train, s["n_train"], seed=3)
    x_te, y_te = subset(data.x_test, data.y_test, s["n_test"], seed=4)
    data = replace(data, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    loss = run.get("recipe", {}).get("loss", "ce")
    evaluators = evaluators_for(model, data, loss=loss, bn=s["bn"], chunk=s["chunk"])
    directions = random_directions(model, s["direction_seed"], s["norm"], s["ignore"], dims=2)
    save_directions(directions_out, directions)
    return surface_2d(Path(out), evaluators, flatten(model), directions, grid(s["x"]), grid(s["y"]),
                      checkpoint=model_path, tile_rows=s["tile_rows"], progress=progress)
