"""1-D and 2-D loss surfaces: layout, the papers' properties, resumption after a kill, shards, figures."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterable

import h5py
import numpy as np
import pytest
import torch

from losslab import io as lio
from losslab.plots import landscape as lp
from losslab.core.data import Prepared
from losslab.core.directions import Directions, random_directions
from losslab.core.losses import LossAcc, evaluate
from losslab.core.models import build
from losslab.core.weights import PointEvaluator, flatten
from losslab.core.surfaces import (AffineSpan, SurfaceMismatchError, compute_surface, default_tile_rows,
    evaluators_for, interpolation, journal_path, merge_surfaces, plane_surface, plane_through, read_surface,
    surface_1d, surface_2d, tile_ranges)

torch.set_num_threads(1)

SHAPE = (1, 8, 8)
TESTS_DIR = Path(__file__).resolve().parent


def _data(n_train: int = 120, n_test: int = 60, seed: int = 0) -> Prepared:
    g = torch.Generator().manual_seed(seed)
    return Prepared("random", torch.randn(n_train, *SHAPE, generator=g), torch.randint(0, 10, (n_train,), generator=g),
                    torch.randn(n_test, *SHAPE, generator=g), torch.randint(0, 10, (n_test,), generator=g), 10)


def _bn_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build({"name": "convnet", "channels": [4, 6], "hidden": [12], "bn": True}, SHAPE, 10).eval()


def _mlp(seed: int = 0, widths: tuple[int, ...] = (16,)) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build({"name": "mlp", "widths": list(widths)}, SHAPE, 10)


def grid_setup() -> tuple[dict[str, PointEvaluator], torch.Tensor, Directions, np.ndarray, np.ndarray]:
    """The 2-D surface of the resume tests (also imported by the subprocess that gets killed)."""
    model = _bn_net(seed=3)
    evaluators = evaluators_for(model, _data(), bn="recompute", chunk=50)
    return evaluators, flatten(model), random_directions(model, seed=5), np.linspace(-1, 1, 6), \
        np.linspace(-0.5, 0.5, 4)


class Counting:
    """An evaluator wrapper that counts point evaluations."""

    def __init__(self, inner: PointEvaluator):
        self.inner, self.points = inner, 0
        self.batch_points = inner.batch_points

    def evaluate_many(self, vecs: Iterable[torch.Tensor]) -> list[LossAcc]:
        out = self.inner.evaluate_many(vecs)
        self.points += len(out)
        return out

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ---------------------------------------------------------------- layout -----------------------------------

def test_default_tiles_hold_at_least_64_points(tmp_path: Path) -> None:
    assert [default_tile_rows(21, 21), default_tile_rows(11, 11), default_tile_rows(4, 4), default_tile_rows(31, 1),
            default_tile_rows(200, 64), default_tile_rows(200, 100)] == [4, 6, 4, 31, 1, 1]
    model, data = _mlp(), _data()
    s = surface_2d(tmp_path / "s.h5", evaluators_for(model, data), flatten(model), random_directions(model, seed=1),
                   np.linspace(-1, 1, 7), np.linspace(-1, 1, 11), progress=False)
    assert s.tile_rows == 6 and s.done.tolist() == [True, True]


def test_tile_ranges() -> None:
    assert tile_ranges(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert tile_ranges(3, 10) == [(0, 3)]
    with pytest.raises(ValueError):
        tile_ranges(3, 0)


def test_non_square_grid_is_indexed_x_then_y(tmp_path: Path) -> None:
    model = _mlp()
    data = _data()
    evs = evaluators_for(model, data)
    dirs = random_directions(model, seed=1)
    xs, ys = np.linspace(-1, 1, 3), np.linspace(-2, 2, 5)
    surface_2d(tmp_path / "s.h5", evs, flatten(model), dirs, xs, ys, tile_rows=2, progress=False)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_acc", "test_loss", "test_acc",
                "done"} <= set(f.keys())
        assert f["train_loss"].shape == (3, 5) and f["test_acc"].shape == (3, 5)
        assert f.attrs["bn"] == "running" and f.attrs["norm"] == "filter" and f.attrs["seed"] == 1
        assert f.attrs["direction"] == "random" and f.attrs["ignore"] == "biasbn"
    s = read_surface(tmp_path / "s.h5")
    assert s.complete and not journal_path(tmp_path / "s.h5").exists()
    single = PointEvaluator(model, data.x_test, data.y_test, many="loop")
    for i, j in [(0, 4), (2, 1), (1, 3)]:
        point = flatten(model) + float(xs[i]) * dirs.x + float(ys[j]) * dirs.y
        expected = single.evaluate(point)
        assert s["test_loss"][i, j] == pytest.approx(expected.loss, rel=1e-5)
        assert s["test_acc"][i, j] == pytest.approx(expected.acc)


def test_one_dimensional_surface_has_no_y(tmp_path: Path) -> None:
    model = _bn_net()
    dirs = random_directions(model, seed=2, dims=1)
    s = surface_1d(tmp_path / "c.h5", evaluators_for(model, _data(), splits=("train",)), flatten(model), dirs,
                   np.linspace(-1, 1, 7), tile_rows=3, progress=False)
    assert s["train_loss"].shape == (7,) and s.ycoordinates is None and s.done.shape == (3,)
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert "ycoordinates" not in f and "test_loss" not in f and f["train_acc"].shape == (7,)
    assert s["train_loss"][3] == pytest.approx(evaluate(model, _data().x_train, _data().y_train).loss, rel=1e-6)


def test_interpolation_endpoints_reproduce_both_networks(tmp_path: Path) -> None:
    a, b = _bn_net(seed=0), _bn_net(seed=1)
    data = _data()
    alphas = np.linspace(-1, 2, 7)  # contains 0 and 1
    s = interpolation(tmp_path / "i.h5", evaluators_for(a, data, chunk=1000), flatten(a), flatten(b), alphas,
                      progress=False)
    for alpha, model in ((0.0, a), (1.0, b)):
        k = int(np.flatnonzero(alphas == alpha)[0])
        assert s["train_loss"][k] == evaluate(model, data.x_train, data.y_train).loss
        assert s["test_acc"][k] == evaluate(model, data.x_test, data.y_test).acc
    assert read_surface(tmp_path / "i.h5").attrs["direction"] == "interpolation"


def test_plane_passes_through_its_three_points(tmp_path: Path) -> None:
    models = [_mlp(seed=k) for k in range(3)]
    thetas = [flatten(m) for m in models]
    plane = plane_through(*thetas)
    assert plane.coordinates.shape == (3, 2)
    assert np.allclose(plane.coordinates[0], 0.0) and plane.coordinates[1, 1] == 0.0
    assert float(torch.dot(plane.u, plane.v)) == pytest.approx(0.0, abs=1e-6)
    for theta, (cx, cy) in zip(thetas, plane.coordinates):
        assert torch.allclose(plane.span.point(float(cx), float(cy)), theta, atol=1e-5)
    xs, ys = np.unique(plane.coordinates[:, 0]), np.unique(plane.coordinates[:, 1])
    data = _data()
    s = plane_surface(tmp_path / "p.h5", evaluators_for(models[0], data, splits=("train",)), thetas, xs, ys,
                      progress=False)
    assert np.array_equal(s.extra["point_coordinates"], plane.coordinates)
    for model, (cx, cy) in zip(models, plane.coordinates):
        i, j = int(np.flatnonzero(xs == cx)[0]), int(np.flatnonzero(ys == cy)[0])
        assert s["train_loss"][i, j] == pytest.approx(evaluate(model, data.x_train, data.y_train).loss, rel=1e-4)
    with pytest.raises(ValueError, match="collinear"):
        plane_through(thetas[0], thetas[1], 2 * thetas[1] - thetas[0])


# ---------------------------------------------------------------- the paper's property --------------------

def test_filter_normalized_curve_is_invariant_to_relu_rescaling(tmp_path: Path) -> None:
    """Li et al.: scaling a ReLU layer by c and the next by 1/c leaves the network's function unchanged;
    filter-normalised directions give the same curve, raw directions do not."""
    model = _mlp(widths=(16,))
    scaled = copy.deepcopy(model)
    c = 10.0
    with torch.no_grad():
        first, second = scaled.net[1], scaled.net[3]
        first.weight.mul_(c)
        first.bias.mul_(c)
        second.weight.div_(c)
    data = _data()
    assert torch.allclose(model(data.x_test), scaled(data.x_test), atol=1e-5)
    xs = np.linspace(-1, 1, 9)

    def curve(net: torch.nn.Module, norm: str, name: str) -> np.ndarray:
        dirs = random_directions(net, seed=21, norm=norm, dims=1)
        return surface_1d(tmp_path / f"{name}_{norm}.h5", evaluators_for(net, data, splits=("test",)),
                          flatten(net), dirs, xs, progress=False)["test_loss"]

    np.testing.assert_allclose(curve(model, "filter", "a"), curve(scaled, "filter", "b"), rtol=1e-4)
    raw_a, raw_b = curve(model, "none", "a"), curve(scaled, "none", "b")
    assert np.abs(raw_a - raw_b).max() > 0.1


# ---------------------------------------------------------------- resumption -------------------------------

KILL_SCRIPT = """
import os, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from test_surfaces import grid_setup
from losslab.core.surfaces import surface_2d

evaluators, origin, dirs, xs, ys = grid_setup()
finished = []

def hook(tile):
    finished.append(tile)
    if len(finished) == {kill_after}:
        os.kill(os.getpid(), 9)

surface_2d({path!r}, evaluators, origin, dirs, xs, ys, tile_rows=2, progress=False, on_tile=hook)
"""


def test_resume_after_a_kill_computes_only_missing_tiles_and_matches_bitwise(tmp_path: Path) -> None:
    target = tmp_path / "killed.h5"
    script = textwrap.dedent(KILL_SCRIPT).format(tests=str(TESTS_DIR), kill_after=1, path=str(target))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -9, proc.stderr
    assert not target.exists() and journal_path(target).exists()
    assert read_surface(journal_path(target)).done.tolist() == [True, False, False]

    evaluators, origin, dirs, xs, ys = grid_setup()
    counting = {k: Counting(v) for k, v in evaluators.items()}
    resumed = surface_2d(target, counting, origin, dirs, xs, ys, tile_rows=2, progress=False)
    assert counting["train"].points == counting["test"].points == 4 * len(ys)  # two tiles of two rows
    assert target.exists() and not journal_path(target).exists() and resumed.complete

    evaluators, origin, dirs, xs, ys = grid_setup()
    whole = surface_2d(tmp_path / "whole.h5", evaluators, origin, dirs, xs, ys, tile_rows=2, progress=False)
    on_disk = read_surface(target)
    for key in whole.values:
        assert _same_bits(on_disk[key], whole[key]), key
    assert not np.isnan(on_disk["train_loss"]).any()

    counting = {k: Counting(v) for k, v in evaluators.items()}
    surface_2d(target, counting, origin, dirs, xs, ys, tile_rows=2, progress=False)  # complete: no work
    assert counting["train"].points == 0


def test_journal_lives_beside_the_target_until_done(tmp_path: Path) -> None:
    evaluators, origin, dirs, xs, ys = grid_setup()
    target = tmp_path / "s.h5"
    seen = []

    def hook(tile: int) -> None:
        journal = journal_path(target)
        seen.append((tile, target.exists(), read_surface(journal).done.sum(), journal.stat().st_size))

    surface_2d(target, evaluators, origin, dirs, xs, ys, tile_rows=4, progress=False, on_tile=hook)
    assert [s[:3] for s in seen] == [(0, False, 1), (1, False, 2)]
    # append-only: the second tile adds its record (index, 4 values x 2 rows x 4 points, frame) to the first
    assert seen[1][3] - seen[0][3] == 8 + 4 + 4 * 2 * 4 * 8
    assert journal_path(target).name == "s.h5.journal" and sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]


def test_the_final_file_keeps_its_layout(tmp_path: Path) -> None:
    """The journal changes nothing in the finished HDF5 file: the datasets, the done mask, spec and attributes."""
    evaluators, origin, dirs, xs, ys = grid_setup()
    surface_2d(tmp_path / "s.h5", evaluators, origin, dirs, xs, ys, tile_rows=4, progress=False)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert sorted(f.keys()) == ["done", "test_acc", "test_loss", "train_acc", "train_loss", "xcoordinates",
                                    "ycoordinates"]
        assert f["done"][()].tolist() == [True, True] and f["train_loss"].shape == (6, 4)
        assert {"spec", "complete", "threads", "losslab_version", "bn", "seed"} <= set(f.attrs)


def _killed_after_first_tile(target: Path, tile_rows: int = 2, ys_slice: slice = slice(None)) -> None:
    evaluators, origin, dirs, xs, ys = grid_setup()

    class Killed(Exception):
        pass

    def hook(tile: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        surface_2d(target, evaluators, origin, dirs, xs, ys[ys_slice], tile_rows=tile_rows, progress=False,
                   on_tile=hook)


@pytest.mark.parametrize("torn", [1, 8, 20])
def test_a_torn_last_record_is_dropped_and_its_tile_recomputed(tmp_path: Path, torn: int) -> None:
    target = tmp_path / "s.h5"
    _killed_after_first_tile(target)
    journal = journal_path(target)
    one_tile = journal.stat().st_size
    evaluators, origin, dirs, xs, ys = grid_setup()
    counting = {k: Counting(v) for k, v in evaluators.items()}

    def stop_after_second(tile: int) -> None:
        if tile == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        surface_2d(target, counting, origin, dirs, xs, ys, tile_rows=2, progress=False, on_tile=stop_after_second)
    two_tiles = journal.read_bytes()
    journal.write_bytes(two_tiles[:one_tile + torn])  # the second record torn: `torn` of its bytes written
    assert read_surface(journal).done.tolist() == [True, False, False]
    counting = {k: Counting(v) for k, v in evaluators.items()}
    resumed = surface_2d(target, counting, origin, dirs, xs, ys, tile_rows=2, progress=False)
    assert counting["train"].points == 4 * len(ys) and not journal.exists()
    whole = surface_2d(tmp_path / "whole.h5", evaluators, origin, dirs, xs, ys, tile_rows=2, progress=False)
    for key in whole.values:
        assert _same_bits(resumed[key], whole[key]) and _same_bits(read_surface(target)[key], whole[key]), key


def test_a_journal_with_a_damaged_header_is_an_error_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "s.h5"
    _killed_after_first_tile(target)
    journal = journal_path(target)
    journal.write_bytes(journal.read_bytes()[:60])
    evaluators, origin, dirs, xs, ys = grid_setup()
    with pytest.raises(lio.CorruptFileError, match=rf"{journal}: journal header truncated"):
        surface_2d(target, evaluators, origin, dirs, xs, ys, tile_rows=2, progress=False)


@pytest.mark.parametrize("change", ["seed", "ys", "tile_rows", "bn"])
def test_a_mismatched_rerun_is_an_error_naming_the_file(tmp_path: Path, change: str) -> None:
    model = _mlp()
    data = _data()
    target = tmp_path / "s.h5"
    args: dict[str, Any] = dict(seed=1, ys=np.linspace(-1, 1, 3), tile_rows=1, bn="running")
    for attempt in range(2):
        if attempt:
            args[change] = {"seed": 2, "ys": np.linspace(-1, 1, 4), "tile_rows": 2, "bn": "batch"}[change]
        evs = evaluators_for(model, data, bn=args["bn"])
        dirs = random_directions(model, seed=args["seed"])
        call = lambda: surface_2d(target, evs, flatten(model), dirs, np.linspace(-1, 1, 3), args["ys"],  # noqa
                                  tile_rows=args["tile_rows"], progress=False)
        if attempt == 0:
            call()
        else:
            with pytest.raises(SurfaceMismatchError, match=str(target)):
                call()


def test_a_mismatched_journal_is_refused_too(tmp_path: Path) -> None:
    target = tmp_path / "s.h5"
    _killed_after_first_tile(target)
    evaluators, origin, dirs, xs, ys = grid_setup()
    with pytest.raises(SurfaceMismatchError, match="s.h5.journal"):
        surface_2d(target, evaluators, origin, dirs, xs, ys[:3], tile_rows=2, progress=False)
    assert read_surface(journal_path(target)).done.tolist() == [True, False, False]  # left as it was


def test_a_shard_and_its_journal_resume_together(tmp_path: Path) -> None:
    """A shard file of tiles [0] and a killed run adding tile 2 to it: the rerun keeps both and computes 1."""
    evaluators, origin, dirs, xs, ys = grid_setup()
    target = tmp_path / "s.h5"
    surface_2d(target, evaluators, origin, dirs, xs, ys, tiles=[0], tile_rows=2, progress=False)

    def hook(tile: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        surface_2d(target, evaluators, origin, dirs, xs, ys, tiles=[2, 1], tile_rows=2, progress=False, on_tile=hook)
    assert read_surface(target).done.tolist() == [True, False, False]
    assert read_surface(journal_path(target)).done.tolist() == [False, True, False]
    counting = {k: Counting(v) for k, v in evaluators.items()}
    resumed = surface_2d(target, counting, origin, dirs, xs, ys, tile_rows=2, progress=False)
    assert counting["train"].points == 2 * len(ys) and resumed.complete and not journal_path(target).exists()
    whole = surface_2d(tmp_path / "whole.h5", evaluators, origin, dirs, xs, ys, tile_rows=2, progress=False)
    for key in whole.values:
        assert _same_bits(read_surface(target)[key], whole[key]), key


def test_shards_merge_into_the_whole_surface(tmp_path: Path) -> None:
    evaluators, origin, dirs, xs, ys = grid_setup()
    run = dict(tile_rows=2, progress=False)
    shard_a = surface_2d(tmp_path / "a.h5", evaluators, origin, dirs, xs, ys, tiles=[0, 2], **run)
    assert shard_a.done.tolist() == [True, False, True] and (tmp_path / "a.h5").exists()
    surface_2d(tmp_path / "b.h5", evaluators, origin, dirs, xs, ys, tiles=[1], **run)
    merged = merge_surfaces(tmp_path / "merged.h5", [tmp_path / "a.h5", tmp_path / "b.h5"])
    whole = surface_2d(tmp_path / "whole.h5", evaluators, origin, dirs, xs, ys, **run)
    assert merged.complete
    for key in whole.values:
        assert _same_bits(read_surface(tmp_path / "merged.h5")[key], whole[key])
    with pytest.raises(ValueError, match=r"tiles \[1\]"):
        merge_surfaces(tmp_path / "bad.h5", [tmp_path / "a.h5"])
    with pytest.raises(ValueError, match="tiles must lie"):
        surface_2d(tmp_path / "c.h5", evaluators, origin, dirs, xs, ys, tiles=[3], **run)


def test_compute_surface_with_a_raw_span(tmp_path: Path) -> None:
    model = _mlp()
    data = _data()
    vec = flatten(model)
    span = AffineSpan(vec, torch.ones_like(vec) * 1e-3)
    s = compute_surface(tmp_path / "r.h5", evaluators_for(model, data, splits=("train",)), span, [0.0, 1.0],
                        provenance={"direction": "ones"}, progress=False)
    assert s["train_loss"][0] == pytest.approx(evaluate(model, data.x_train, data.y_train).loss, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        AffineSpan(vec, torch.ones(3))


# ---------------------------------------------------------------- figures ----------------------------------

def test_figures_are_written_as_png_and_pdf(tmp_path: Path) -> None:
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4)
    z = np.add.outer(xs ** 2, 2 * ys ** 2) + 0.1
    levels = lp.shared_levels([z, z * 1.5], num=8)
    made = [
        lp.plot_1d(tmp_path / "one", xs, {"train": xs ** 2, "test": xs ** 2 + 0.1},
                   {"train": 1 - xs ** 2 / 2, "test": 0.9 - xs ** 2 / 2}),
        lp.plot_contour(tmp_path / "contour", xs, ys, z, levels, points=np.array([[0, 0], [0.5, 0.2]])),
        lp.plot_heatmap(tmp_path / "filled", xs, ys, z, levels),
        lp.plot_heatmap(tmp_path / "heat", xs, ys, z, None),
        lp.plot_surface_3d(tmp_path / "3d", xs, ys, z, zmax=2.0),
        lp.plot_trajectory(tmp_path / "traj", xs, ys, z, np.array([[1.0, 0.5], [0.5, 0.2], [0, 0]]), (0.8, 0.15),
                           levels, epochs=[0, 5, 10]),
    ]
    for paths in made:
        assert [p.suffix for p in paths] == [".png", ".pdf"]
        assert all(p.stat().st_size > 0 for p in paths)
    assert len(list(tmp_path.iterdir())) == 12  # no temporary files left
    assert len(levels) == 8 and levels[0] == pytest.approx(z.min())
    with pytest.raises(ValueError, match="shape"):
        lp.plot_contour(tmp_path / "bad", xs, ys, z.T, levels)
