"""Loss surfaces of trained runs: load a run's model, pick directions (random filter-normalized, or the PCA
plane of its training trajectory), evaluate the grid, and draw the standard figures of a surface file.

This is where the workflow's surface jobs meet the engine (:mod:`losslab.surfaces`): a run spec (dataset,
model, recipe) and its ``model.pt`` go in, an HDF5 surface with loss-landscape's names and the directions in
their own HDF5 file come out. Settings (one mapping, the experiment's ``surface`` key in the config):

* ``x``, ``y``: ``[start, stop, num]`` of the grid in units of the (filter-normalized) directions;
* ``direction_seed``, ``norm`` (filter / layer / weight / none), ``ignore`` (biasbn / copy / keep);
* ``bn``: running / recompute / batch (see :mod:`losslab.params`);
* ``n_train``, ``n_test``: evaluate on fixed subsets of the splits (None: all of it);
* ``chunk``, ``tile_rows``;
* ``jobs``: split the grid's tiles over this many parallel jobs (shard ``k`` of ``n`` computes the tiles
  ``k, k + n, ...``; :func:`losslab.surfaces.merge_surfaces` joins them).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from torch import nn

from . import io as lio
from . import landscape_plots as plots
from .data import Prepared, prepare, subset
from .directions import Directions, pca_directions, project, random_directions, save_directions
from .models import build
from .params import flatten
from .surfaces import Surface, evaluators_for, grid_around, read_surface, surface_2d

DEFAULTS: dict[str, Any] = {"x": [-1.0, 1.0, 21], "y": [-1.0, 1.0, 21], "direction_seed": 0, "norm": "filter",
                            "ignore": "biasbn", "bn": "running", "n_train": None, "n_test": None, "chunk": 250,
                            "tile_rows": 1, "jobs": 1}


def grid(spec: Any) -> np.ndarray:
    start, stop, num = spec
    return np.linspace(float(start), float(stop), int(num))


def load_trained(run: Mapping[str, Any], model_path: str | os.PathLike, data_dir: str | None = None,
                 resources: str = "resources"):
    """The trained model of a run (built from its spec, weights from ``model_path``) and its data."""
    data = prepare(run["dataset"], data_dir=data_dir, resources=resources)
    model = build(run["model"], data.input_shape, data.num_classes)
    lio.load_state_dict(model, model_path)
    model.eval()
    return model, data


def _evaluation_subsets(data: Prepared, settings: Mapping[str, Any]) -> Prepared:
    """The data restricted to the fixed evaluation subsets ``n_train`` / ``n_test`` of the settings."""
    x_tr, y_tr = subset(data.x_train, data.y_train, settings["n_train"], seed=3)
    x_te, y_te = subset(data.x_test, data.y_test, settings["n_test"], seed=4)
    return replace(data, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)


def save_run_directions(model: nn.Module, settings: Mapping[str, Any],
                        out: str | os.PathLike) -> Directions:
    """The two seeded random directions of ``settings`` for ``model``, written to ``out`` (HDF5)."""
    s = {**DEFAULTS, **settings}
    directions = random_directions(model, s["direction_seed"], s["norm"], s["ignore"], dims=2)
    save_directions(out, directions)
    return directions


def shard_tiles(settings: Mapping[str, Any], shard: int) -> list[int]:
    """The tile indices that shard ``shard`` of ``settings["jobs"]`` computes."""
    s = {**DEFAULTS, **settings}
    n_tiles = -(-int(s["x"][2]) // int(s["tile_rows"]))
    if not 0 <= shard < s["jobs"]:
        raise ValueError(f"shard {shard} out of range for {s['jobs']} jobs")
    return list(range(shard, n_tiles, s["jobs"]))


def surface_of_run(run: Mapping[str, Any], model_path: str | os.PathLike, settings: Mapping[str, Any],
                   out: str | os.PathLike, directions_out: str | os.PathLike, *, data_dir: str | None = None,
                   resources: str = "resources", progress: bool = False, shard: int | None = None) -> Surface:
    """Li et al.'s 2-D surface around a trained run: ``theta* + alpha*delta + beta*eta`` over the grid (with
    ``shard``, only that shard's tiles: see ``jobs``)."""
    s = {**DEFAULTS, **settings}
    model, data = load_trained(run, model_path, data_dir, resources)
    data = _evaluation_subsets(data, s)
    loss = run.get("recipe", {}).get("loss", "ce")
    evaluators = evaluators_for(model, data, loss=loss, bn=s["bn"], chunk=s["chunk"])
    directions = save_run_directions(model, s, directions_out)
    return surface_2d(Path(out), evaluators, flatten(model), directions, grid(s["x"]), grid(s["y"]),
                      checkpoint=model_path, tile_rows=s["tile_rows"], progress=progress,
                      tiles=None if shard is None else shard_tiles(s, shard))


TRAJECTORY_DEFAULTS: dict[str, Any] = {"n": 15, "margin": 0.3, "bn": "running", "n_train": None,
                                       "n_test": None, "chunk": 250, "tile_rows": 1}


def snapshots(seed_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of a run's weight snapshots, in epoch order."""
    found = sorted((int(p.stem.split("_")[1]), p) for p in (Path(seed_dir) / "snapshots").glob("epoch_*.pt"))
    if len(found) < 3:
        raise FileNotFoundError(f"{seed_dir}/snapshots: need >= 3 epoch_*.pt snapshots for PCA directions "
                                f"(set `snapshots: all` in the recipe), found {len(found)}")
    return found


def trajectory_of_run(run: Mapping[str, Any], seed_dir: str | os.PathLike, settings: Mapping[str, Any],
                      out: str | os.PathLike, directions_out: str | os.PathLike, *, data_dir: str | None = None,
                      resources: str = "resources", progress: bool = False) -> Surface:
    """Li et al.'s Figure 9: PCA directions of the training trajectory (snapshots minus the final weights),
    the loss surface on that plane around the final weights, and the trajectory's coordinates in it (stored
    in the surface file as ``trajectory`` and ``trajectory_epochs``)."""
    s = {**TRAJECTORY_DEFAULTS, **settings}
    seed_dir = Path(seed_dir)
    model, data = load_trained(run, seed_dir / "model.pt", data_dir, resources)
    epochs, paths = zip(*snapshots(seed_dir))
    traj = []
    for p in paths:
        lio.load_state_dict(model, p)
        traj.append(flatten(model))
    lio.load_state_dict(model, seed_dir / "model.pt")
    final = flatten(model)
    directions = pca_directions(traj, final=final, model=model)
    save_directions(directions_out, directions)
    coords = project(traj, final, directions.x, directions.y).numpy()
    xs, ys = grid_around(coords, s["n"], s["n"], s["margin"])
    data = _evaluation_subsets(data, s)
    evaluators = evaluators_for(model, data, loss=run.get("recipe", {}).get("loss", "ce"), bn=s["bn"],
                                chunk=s["chunk"])
    return surface_2d(Path(out), evaluators, final, directions, xs, ys, checkpoint=seed_dir / "model.pt",
                      tile_rows=s["tile_rows"], progress=progress,
                      extra={"trajectory": coords, "trajectory_epochs": np.asarray(epochs)})


SURFACE_FIGURES = ("contour", "filled", "surface3d", "line1d")
ZMAX_3D = 10.0  # loss-landscape's default vmax: the 3-D view clips the loss here so the basin stays visible


def plot_surface_file(path: str | os.PathLike, out_dir: str | os.PathLike, title: str = "") -> list[Path]:
    """The standard figures of a 2-D surface file, into ``out_dir``: ``contour``, ``filled`` (filled
    contours), ``surface3d``, ``line1d`` (the row beta = 0: loss and accuracy along the first direction, on
    twin axes). PNG and PDF each."""
    s = read_surface(path)
    out_dir = Path(out_dir)
    xs, ys, z = s.xcoordinates, s.ycoordinates, s["train_loss"]
    pca = "trajectory" in s.extra
    labels = (("1st PC", "2nd PC") if pca else
              (r"$\alpha$ (filter-normalized)", r"$\beta$ (filter-normalized)"))
    levels = plots.shared_levels([z], num=25, log=bool(np.all(z > 0)))
    files = plots.plot_contour(out_dir / "contour", xs, ys, z, levels, xlabel=labels[0], ylabel=labels[1],
                               title=f"{title} train loss")
    files += plots.plot_heatmap(out_dir / "filled", xs, ys, z, levels, xlabel=labels[0], ylabel=labels[1],
                                title=f"{title} train loss", cbar_label="train loss")
    files += plots.plot_surface_3d(out_dir / "surface3d", xs, ys, z, xlabel=labels[0], ylabel=labels[1],
                                   zlabel=f"train loss (clipped at {ZMAX_3D:g})", title=title, zmax=ZMAX_3D)
    row = int(np.argmin(np.abs(ys)))
    files += plots.plot_1d(out_dir / "line1d", xs,
                           {sp: s[f"{sp}_loss"][:, row] for sp in ("train", "test") if f"{sp}_loss" in s.values},
                           {sp: s[f"{sp}_acc"][:, row] for sp in ("train", "test") if f"{sp}_acc" in s.values},
                           xlabel=labels[0], title=f"{title} ({labels[1]} = {ys[row]:.2g})")
    return files


def plot_trajectory_file(path: str | os.PathLike, stem: str | os.PathLike, title: str = "") -> list[Path]:
    """Li et al.'s Figure 9 from a PCA-plane surface file: the training trajectory over the train-loss
    contours, the explained variance of each component on its axis."""
    s = read_surface(path)
    if "trajectory" not in s.extra:
        raise ValueError(f"{path}: not a PCA-plane surface (no stored trajectory)")
    z = s["train_loss"]
    levels = plots.shared_levels([z], num=25, log=bool(np.all(z > 0)))
    return plots.plot_trajectory(stem, s.xcoordinates, s.ycoordinates, z, s.extra["trajectory"],
                                 s.extra["explained_variance_ratio_"], levels, title=title,
                                 epochs=[int(e) for e in s.extra["trajectory_epochs"]])
