"""Surfaces of trained runs, as the workflow's surface jobs compute them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from losslab.core.directions import load_directions
from losslab.core.losses import evaluate
from losslab.claims.training import load_trained
from losslab.claims.surfaces import surface_of_run
from losslab.core.surfaces import read_surface
from losslab.claims.training import train_run

RUN = {"dataset": {"name": "digits", "preprocessing": ["normalize"], "n_train": 200},
       "model": {"name": "convnet", "channels": [4, 8], "hidden": [16], "bn": True},
       "recipe": {"optimizer": "momentum", "lr": 0.05, "batch_size": 32, "epochs": 2}}


def test_surface_of_a_trained_run(tmp_path):
    train_run(RUN, 0, tmp_path / "run", tmp_path / "ck")
    settings = {"x": [-1, 1, 5], "y": [-0.5, 0.5, 3], "n_train": 100, "direction_seed": 7}
    s = surface_of_run(RUN, tmp_path / "run" / "model.pt", settings, tmp_path / "s.h5", tmp_path / "d.h5")
    assert s["train_loss"].shape == (5, 3) and s["test_acc"].shape == (5, 3)
    with h5py.File(tmp_path / "s.h5") as f:
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_acc", "test_loss", "test_acc"} <= set(f)
        assert f.attrs["norm"] == "filter" and f.attrs["bn"] == "running"
    d = load_directions(tmp_path / "d.h5")
    assert d.seed == 7 and d.y is not None
    # the centre of the grid is the trained model itself: same test loss as a plain evaluation
    model, data = load_trained(RUN, tmp_path / "run" / "model.pt")
    ref = evaluate(model, data.x_test, data.y_test)
    assert np.isclose(s["test_loss"][2, 1], ref.loss, rtol=1e-5)
    # rerun: the finished file is reused, not recomputed, and read back equal
    again = surface_of_run(RUN, tmp_path / "run" / "model.pt", settings, tmp_path / "s.h5", tmp_path / "d.h5")
    assert np.array_equal(again["train_loss"], read_surface(tmp_path / "s.h5")["train_loss"])
    assert torch.equal(load_directions(tmp_path / "d.h5").x, d.x)


def test_trajectory_surface_and_figures(tmp_path):
    from losslab.plots.landscape import SURFACE_FIGURES, plot_surface_file, plot_trajectory_file
    from losslab.claims.surfaces import trajectory_of_run

    run = {**RUN, "recipe": {**RUN["recipe"], "epochs": 4, "snapshots": "all"}}
    train_run(run, 0, tmp_path / "seed0", tmp_path / "ck")
    settings = {"n": 5, "margin": 0.3, "n_train": 100, "n_test": 50}
    s = trajectory_of_run(run, tmp_path / "seed0", settings, tmp_path / "pca.h5", tmp_path / "pca_dirs.h5")
    traj = s.extra["trajectory"]
    assert traj.shape == (5, 2)  # epochs 0..4
    assert np.allclose(traj[-1], 0.0, atol=1e-6)  # the final weights are the origin of the plane
    assert list(s.extra["trajectory_epochs"]) == [0, 1, 2, 3, 4]
    evr = s.extra["explained_variance_ratio_"]
    assert 0 < evr[1] <= evr[0] <= 1 and evr.sum() <= 1 + 1e-9
    # the grid covers the whole trajectory
    assert s.xcoordinates.min() < traj[:, 0].min() and s.xcoordinates.max() > traj[:, 0].max()
    files = plot_surface_file(tmp_path / "pca.h5", tmp_path / "fig", title="test")
    files += plot_trajectory_file(tmp_path / "pca.h5", tmp_path / "fig" / "trajectory", title="test")
    names = {p.name for p in files}
    for stem in (*SURFACE_FIGURES, "trajectory"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    assert all(p.stat().st_size > 0 for p in files)


def test_trajectory_needs_snapshots(tmp_path):
    import pytest
    from losslab.claims.surfaces import trajectory_of_run

    train_run(RUN, 0, tmp_path / "seed0", tmp_path / "ck")
    with pytest.raises(FileNotFoundError, match="snapshots: all"):
        trajectory_of_run(RUN, tmp_path / "seed0", {}, tmp_path / "p.h5", tmp_path / "d.h5")


def test_sharded_surface_merges_to_the_unsharded_one(tmp_path):
    from losslab.claims.surfaces import shard_tiles
    from losslab.core.surfaces import merge_surfaces

    train_run(RUN, 0, tmp_path / "run", tmp_path / "ck")
    settings = {"x": [-1, 1, 5], "y": [-1, 1, 3], "n_train": 60, "n_test": 30, "jobs": 2}
    assert shard_tiles(settings, 0) == [0, 2, 4] and shard_tiles(settings, 1) == [1, 3]
    shards = []
    for k in range(2):
        part = surface_of_run(RUN, tmp_path / "run" / "model.pt", settings, tmp_path / f"shard{k}.h5",
                              tmp_path / f"d{k}.h5", shard=k)
        assert part.done.sum() == len(shard_tiles(settings, k))
        shards.append(tmp_path / f"shard{k}.h5")
    merged = merge_surfaces(tmp_path / "merged.h5", shards)
    whole = surface_of_run(RUN, tmp_path / "run" / "model.pt", settings, tmp_path / "whole.h5",
                           tmp_path / "dw.h5")
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert np.array_equal(merged[key], whole[key]), key


def test_surface_settings_name_an_unknown_key_and_keep_the_defaults():
    """A settings block is read at the door: an unknown key is named with its block; the workflow's plan keys
    (which variants and seeds, the job's resources) are accepted and left out; the rest keeps the class defaults."""
    from losslab.claims.settings import SettingsError
    from losslab.claims.surfaces import SurfaceSettings

    s = SurfaceSettings.from_mapping({"x": [-1, 1, 5], "seeds": [0], "mem_mb": 100}, "surface")
    assert s.x == [-1, 1, 5] and s.y == (-1.0, 1.0, 21) and s.norm == "filter"
    assert SurfaceSettings.of(s) is s
    with pytest.raises(SettingsError, match=r"surface: unknown keys \['xx'\]"):
        SurfaceSettings.from_mapping({"xx": 1}, "surface")
