"""Interchange with the files of Li et al.'s loss-landscape code (losslab.core.li_files, the readers that accept
them, api.convert_surface / convert_directions).

Their files are made here the way their code makes them (plot_surface.setup_surface_file and crunch with
scheduler.get_unplotted_indices; h5_util.write_list; projection.setup_PCA_directions' extras), and losslab's
exports are read back the way their plot_2D, plot_1D and h5_util.read_list read them. The grid is 3 x 5 and every
value names its point, so a transposed reading fails."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from losslab import api
from losslab.core import li_files
from losslab.core.directions import Directions, load_directions, pca_directions, random_directions, save_directions
from losslab.core.surfaces import AffineSpan, Surface, read_surface, write_surface
from losslab.core.weights import ParamLayout, PointEvaluator, flatten
from losslab.io import CorruptFileError

torch.set_num_threads(1)

XS = np.linspace(-1.0, 1.0, 3)
YS = np.linspace(-2.0, 2.0, 5)
TOTAL = 97  # samples of their eval_loss: accuracies 100. * correct / 97


def their_loss(x: float, y: float) -> float:
    return 3.0 + x + 0.1 * y  # distinct at every point of XS x YS, positive (their scheduler redoes <= 0)


def their_acc(x: float, y: float) -> float:
    return 100. * (50 + round(10 * x) + round(y)) / TOTAL  # evaluation.eval_loss's percent


# ---------------------------------------------------------------- their code, as they wrote it -------------

def li_surface_file(path, xs, ys, stop=None, dir_file="resnet56/model_300.t7_weights.h5"):
    """plot_surface.setup_surface_file, then crunch(..., 'train_loss', 'train_acc') over the points in
    scheduler.get_unplotted_indices order (meshgrid(x, y) raveled), stopping after ``stop`` points."""
    with h5py.File(path, "a") as f:
        f["dir_file"] = dir_file
        f["xcoordinates"] = np.asarray(xs)
        if ys is not None:
            f["ycoordinates"] = np.asarray(ys)
    with h5py.File(path, "r+") as f:
        x = f["xcoordinates"][:]
        y = f["ycoordinates"][:] if "ycoordinates" in f.keys() else None
        shape = x.shape if y is None else (len(x), len(y))
        losses, accuracies = -np.ones(shape=shape), -np.ones(shape=shape)
        f["train_loss"], f["train_acc"] = losses, accuracies
        inds = np.array(range(losses.size))[losses.ravel() <= 0]
        if y is not None:
            xm, ym = np.meshgrid(x, y)
            coords = np.c_[xm.ravel()[inds], ym.ravel()[inds]]
        else:
            coords = x.ravel()[inds]
        for count, ind in enumerate(inds[:stop]):
            coord = coords[count]
            pt = (coord[0], coord[1]) if y is not None else (coord, 0.0)
            losses.ravel()[ind] = their_loss(*pt)
            accuracies.ravel()[ind] = their_acc(*pt)
            f["train_loss"][:] = losses
            f["train_acc"][:] = accuracies


def write_list(f, name, direction):
    """h5_util.write_list."""
    grp = f.create_group(name)
    for i, t in enumerate(direction):
        if isinstance(t, torch.Tensor):
            t = t.numpy()
        grp.create_dataset(str(i), data=t)


def read_list(f, name):
    """h5_util.read_list."""
    grp = f[name]
    return [grp[str(i)] for i in range(len(grp))]


def li_direction_file(path, x, y=None, pca=None):
    """net_plotter.setup_direction (or projection.setup_PCA_directions with its sklearn extras)."""
    with h5py.File(path, "w") as f:
        write_list(f, "xdirection", x)
        if y is not None:
            write_list(f, "ydirection", y)
        if pca is not None:
            for key, value in pca.items():
                f[key] = value


def datasets(path):
    """Every dataset of a file: name -> (dtype, shape, bytes) (strings as text)."""
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            v = obj[()]
            out[name] = v.decode() if isinstance(v, bytes) else (obj.dtype.str, obj.shape, np.asarray(v).tobytes())
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


# ---------------------------------------------------------------- a model --------------------------------

def tiny_net(seed: int = 0) -> nn.Module:
    """Conv, BN (buffers: running mean and variance, the 0-d num_batches_tracked), linear."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def tiny_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(40, 1, 6, 6, generator=g), torch.randint(0, 3, (40,), generator=g)


def assert_same_surface(a: Surface, b: Surface) -> None:
    for name in ("xcoordinates", "ycoordinates"):
        assert (getattr(a, name) is None) == (getattr(b, name) is None)
        if getattr(a, name) is not None:
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert list(a.values) == list(b.values)
    for k in a.values:
        assert a.values[k].dtype == b.values[k].dtype and a.values[k].shape == b.values[k].shape
        assert np.array_equal(np.isnan(a.values[k]), np.isnan(b.values[k]))
        assert a.values[k][~np.isnan(a.values[k])].tobytes() == b.values[k][~np.isnan(b.values[k])].tobytes(), k
    assert np.array_equal(a.done, b.done) and a.spec == b.spec
    assert set(a.attrs) == set(b.attrs) and all(np.array_equal(a.attrs[k], b.attrs[k]) for k in a.attrs)
    assert set(a.extra) == set(b.extra) and all(a.extra[k].tobytes() == b.extra[k].tobytes() for k in a.extra)


# ---------------------------------------------------------------- their surfaces, read by losslab -------------

def test_their_2d_surface_reads_transposed_with_fractions(tmp_path):
    path = tmp_path / "li.h5"
    li_surface_file(path, XS, YS)
    with h5py.File(path, "r") as f:  # their file as their crunch leaves it: declared (len(x), len(y))
        assert f["train_loss"].shape == (3, 5)
    s = read_surface(path)
    assert s["train_loss"].shape == s["train_acc"].shape == (3, 5)
    for i, x in enumerate(XS):
        for j, y in enumerate(YS):
            assert s["train_loss"][i, j] == their_loss(x, y)
            assert s["train_acc"][i, j] == their_acc(x, y) / 100
    assert s.spec["imported"] == "li" and s.spec["values"] == ["train_loss", "train_acc"]
    assert s.complete and s.tile_rows == 1 and s.attrs["dir_file"] == "resnet56/model_300.t7_weights.h5"
    assert s.extra["train_acc_percent"][2, 4] == their_acc(1.0, 2.0)  # their own numbers, kept
    assert li_files.identify(path) == ("surface", "li")


def test_their_partial_surface_has_nan_where_not_computed(tmp_path):
    path = tmp_path / "li.h5"
    li_surface_file(path, XS, YS, stop=7)  # meshgrid order: all x at y[0], y[1], then x[0] at y[2]
    s = read_surface(path)
    computed = np.zeros((3, 5), bool)
    computed[:, :2] = True
    computed[0, 2] = True
    assert np.array_equal(~np.isnan(s["train_loss"]), computed)
    assert np.array_equal(~np.isnan(s["train_acc"]), computed)
    assert s["train_loss"][0, 2] == their_loss(-1.0, 0.0)
    assert not s.done.any() and not s.complete


def test_their_1d_surface(tmp_path):
    path = tmp_path / "li1d.h5"
    li_surface_file(path, np.linspace(-1, 1, 7), None)
    s = read_surface(path)
    assert s.ycoordinates is None and s["train_loss"].shape == (7,)
    assert [float(v) for v in s["train_loss"]] == [their_loss(x, 0.0) for x in np.linspace(-1, 1, 7)]
    assert [float(v) for v in s["train_acc"]] == [their_acc(x, 0.0) / 100 for x in np.linspace(-1, 1, 7)]


def test_api_plot_draws_their_surface(tmp_path):
    path = tmp_path / "li.h5"
    li_surface_file(path, XS, YS)
    files = api.plot(path, tmp_path / "fig")
    assert {p.name for p in files} >= {"contour.png", "line1d.pdf"}


# ---------------------------------------------------------------- losslab's surfaces, read by their code ------

@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """A 3 x 5 surface and a 1-D line computed by losslab on a tiny net (train and test splits)."""
    root = tmp_path_factory.mktemp("surf")
    model = tiny_net().eval()
    x, y = tiny_data()
    data = (x[:30], y[:30], x[30:], y[30:])
    s2 = api.surface(model, data, x=(-1.0, 1.0, 3), y=(-0.5, 0.5, 5), seed=3, path=root / "s2.h5")
    s1 = api.surface(model, data, dims=1, x=(-1.0, 1.0, 4), seed=3, path=root / "s1.h5")
    return root, model, data, s2, s1


def test_plot_2D_reads_losslab_export_at_the_right_points(computed, tmp_path):
    root, model, data, s, _ = computed
    out = tmp_path / "li.h5"
    api.convert_surface(root / "s2.h5", out)  # to Li's layout: the other one
    with h5py.File(out, "r") as f:  # plot_2D.plot_2d_contour
        x = np.array(f["xcoordinates"][:])
        y = np.array(f["ycoordinates"][:])
        X, Y = np.meshgrid(x, y)
        Z = np.array(f["train_loss"][:])
        acc = np.array(f["train_acc"][:])
        test_acc = np.array(f["test_acc"][:])
    assert Z.shape == X.shape == (5, 3)
    d = random_directions(model, 3, norm="filter", ignore="biasbn", dims=2)
    span = AffineSpan(flatten(model), d.x, d.y)
    ev = PointEvaluator(model, data[0], data[1])
    for i in range(5):
        for j in range(3):
            assert (X[i, j], Y[i, j]) == (s.xcoordinates[j], s.ycoordinates[i])
            assert Z[i, j] == s["train_loss"][j, i]  # the loss losslab computed at (x[j], y[i])
            assert Z[i, j] == pytest.approx(ev.evaluate(span.point(X[i, j], Y[i, j])).loss, rel=1e-6)
            assert acc[i, j] == 100 * s["train_acc"][j, i]
            assert test_acc[i, j] == 100 * s["test_acc"][j, i]
    assert Z[0, 2] != pytest.approx(float(s["train_loss"][0, 2]), rel=1e-6)  # a transposed reading is wrong
    correct = acc * 30 / 100  # percent of 30 training samples: 100 * correct / total
    assert np.allclose(correct, np.round(correct), atol=1e-9) and acc.max() > 1


def test_plot_1D_reads_losslab_1d_export_in_percent(computed, tmp_path):
    root, _, _, _, s = computed
    out = tmp_path / "li1d.h5"
    api.convert_surface(root / "s1.h5", out, to="li")
    with h5py.File(out, "r") as f:  # plot_1D.plot_1d_loss_err
        x = f["xcoordinates"][:]
        train_loss, train_acc = f["train_loss"][:], f["train_acc"][:]
        test_acc = f["test_acc"][:]
    assert x.tolist() == s.xcoordinates.tolist()
    assert train_loss.tobytes() == s["train_loss"].tobytes()
    assert train_acc.tolist() == [100 * v for v in s["train_acc"]] and test_acc.tolist() == [
        100 * v for v in s["test_acc"]]


# ---------------------------------------------------------------- round trips ---------------------------------

def test_losslab_surface_round_trip_through_li_is_bitwise(computed, tmp_path):
    root = computed[0]
    for name in ("s2.h5", "s1.h5"):
        api.convert_surface(root / name, tmp_path / f"li_{name}")
        back = api.convert_surface(tmp_path / f"li_{name}", tmp_path / f"back_{name}")
        assert back.spec.get("imported") is None  # the losslab surface it was, not an import
        assert_same_surface(read_surface(root / name), read_surface(tmp_path / f"back_{name}"))


def test_partial_losslab_surface_with_awkward_fractions_round_trips(tmp_path):
    """Fractions k/97 whose percent does not divide back exactly, NaN where not computed."""
    frac = (np.arange(15, dtype=float) + 40) / TOTAL
    assert any((frac * 100) / 100 != frac)  # without the group, a round trip would not be bitwise
    acc = frac.reshape(3, 5).copy()
    loss = np.arange(15, dtype=float).reshape(3, 5) / 7
    acc[2], loss[2] = np.nan, np.nan
    s = Surface(XS, YS, {"train_loss": loss, "train_acc": acc}, np.array([True, True, False]),
                {"format": 1, "tile_rows": 1, "values": ["train_loss", "train_acc"], "seed": None},
                {"direction": "random", "seed": None, "threads": 1}, {"point_coordinates": np.eye(3, 2)})
    write_surface(tmp_path / "s.h5", s)
    api.convert_surface(tmp_path / "s.h5", tmp_path / "li.h5")
    with h5py.File(tmp_path / "li.h5", "r") as f:
        assert f["train_loss"][:, 2].tolist() == [-1.0] * 5  # their "not computed"
        assert f["train_acc"][0, 1] == 100 * acc[1, 0]
    api.convert_surface(tmp_path / "li.h5", tmp_path / "back.h5")
    assert_same_surface(read_surface(tmp_path / "s.h5"), read_surface(tmp_path / "back.h5"))


def test_their_surface_round_trip_through_losslab_is_bitwise(tmp_path):
    for name, ys, stop in (("2d", YS, None), ("partial", YS, 9), ("1d", None, None)):
        li = tmp_path / f"{name}.h5"
        li_surface_file(li, XS, ys, stop=stop)
        percent = np.array([their_acc(x, y) for x in XS for y in YS])
        assert any((percent / 100) * 100 != percent)  # plain arithmetic would not give their numbers back
        api.convert_surface(li, tmp_path / f"{name}.losslab.h5")
        assert read_surface(tmp_path / f"{name}.losslab.h5").spec["imported"] == "li"
        api.convert_surface(tmp_path / f"{name}.losslab.h5", tmp_path / f"{name}.back.h5")
        theirs, back = datasets(li), datasets(tmp_path / f"{name}.back.h5")
        assert set(theirs) == set(back)
        for k in theirs:
            if k in ("train_loss", "train_acc") and ys is not None:  # their declared shape was (3, 5)
                assert back[k][1] == (5, 3) and back[k][0] == theirs[k][0] and back[k][2] == theirs[k][2]
            else:
                assert back[k] == theirs[k], k


def test_a_li_export_changed_by_their_code_reads_as_theirs(computed, tmp_path, caplog):
    root = computed[0]
    out = tmp_path / "li.h5"
    api.convert_surface(root / "s2.h5", out)
    with h5py.File(out, "r+") as f:  # their crunch resumed the file and changed a value
        f["train_loss"][0, 0] = 7.0
    with caplog.at_level(logging.WARNING):
        s = read_surface(out)
    assert s.spec["imported"] == "li" and s["train_loss"][0, 0] == 7.0
    assert "changed after losslab wrote it" in caplog.text


# ---------------------------------------------------------------- directions --------------------------------

def test_their_weights_direction_file_reads_flat_in_parameter_order(tmp_path):
    model = tiny_net()
    g = torch.Generator().manual_seed(0)
    dx = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    dy = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    li_direction_file(tmp_path / "d.h5", dx, dy)
    for with_model in (None, model, ParamLayout.of(model)):
        d = load_directions(tmp_path / "d.h5", with_model)
        assert torch.equal(d.x, torch.cat([t.reshape(-1) for t in dx]))
        assert torch.equal(d.y, torch.cat([t.reshape(-1) for t in dy]))
    assert d.x.shape == flatten(model).shape and d.kind == "given"
    assert ParamLayout.of(model).split(d.x)[2].shape == model[1].weight.shape


def test_their_states_direction_file_needs_the_model_and_drops_buffers(tmp_path, caplog):
    model = tiny_net()
    states = model.state_dict()
    g = torch.Generator().manual_seed(0)
    d = [torch.randn(v.size(), generator=g) for k, v in states.items()]  # net_plotter.get_random_states
    li_direction_file(tmp_path / "s.h5", d)
    with pytest.raises(ValueError, match=r"s\.h5: xdirection holds 0-d tensors.*pass the model"):
        load_directions(tmp_path / "s.h5")
    with pytest.raises(ValueError, match=r"s\.h5: .*needs the model itself"):
        load_directions(tmp_path / "s.h5", ParamLayout.of(model))
    with caplog.at_level(logging.WARNING):
        got = load_directions(tmp_path / "s.h5", model)
    keys = list(states)
    params = [d[keys.index(n)] for n, _ in model.named_parameters()]
    assert torch.equal(got.x, torch.cat([t.reshape(-1) for t in params]))
    assert "1.running_mean" in caplog.text and "dropped" in caplog.text


def test_direction_files_of_another_architecture_are_refused_naming_the_file(tmp_path):
    model = tiny_net()
    dx = [torch.randn(p.shape) for p in model.parameters()]
    li_direction_file(tmp_path / "short.h5", dx[:-1])
    with pytest.raises(ValueError, match=r"short\.h5: xdirection holds 5 tensors; Sequential has 6 parameters "
                                         r"\(dir_type 'weights'\) and 9 state_dict entries"):
        load_directions(tmp_path / "short.h5", model)
    li_direction_file(tmp_path / "other.h5", [t.reshape(-1) if i == 0 else t for i, t in enumerate(dx)])
    with pytest.raises(ValueError, match=r"other\.h5: xdirection tensor 0 has shape \(18,\), Sequential's "
                                         r"parameter '0.weight' \(2, 1, 3, 3\)"):
        load_directions(tmp_path / "other.h5", model)
    save_directions(tmp_path / "flat.h5", Directions(torch.zeros(5)))
    with pytest.raises(ValueError, match=r"flat\.h5: xdirection has 5 entries but the model has 123 weights"):
        load_directions(tmp_path / "flat.h5", model)
    with h5py.File(tmp_path / "names.h5", "w") as f:
        f.create_group("xdirection").create_dataset("weight", data=np.zeros(3))
    with pytest.raises(CorruptFileError, match=r"names\.h5: group xdirection must hold datasets named '0'"):
        load_directions(tmp_path / "names.h5")


def test_read_list_reads_losslab_export_as_parameter_tensors(tmp_path):
    model = tiny_net()
    d = random_directions(model, 5, dims=2)
    save_directions(tmp_path / "d.h5", d)
    api.convert_directions(tmp_path / "d.h5", tmp_path / "li.h5", model)
    with h5py.File(tmp_path / "li.h5", "r") as f:  # net_plotter.load_directions
        xd, yd = read_list(f, "xdirection"), read_list(f, "ydirection")
        assert len(xd) == len(list(model.parameters()))
        for t, p, part in zip(xd, model.parameters(), ParamLayout.of(model).split(d.x)):
            assert t.shape == p.shape and np.array_equal(t[()], part.numpy())
        assert all(np.array_equal(t[()], part.numpy()) for t, part in zip(yd, ParamLayout.of(model).split(d.y)))
    assert li_files.identify(tmp_path / "li.h5") == ("directions", "li")


def test_direction_round_trips_are_bitwise(tmp_path):
    model = tiny_net()
    traj = [flatten(tiny_net(s)) for s in range(4)]
    for name, d in (("random", random_directions(model, 2, dims=2, orthogonal=True)),
                    ("pca", pca_directions(traj, model=model))):
        save_directions(tmp_path / f"{name}.h5", d)
        api.convert_directions(tmp_path / f"{name}.h5", tmp_path / f"{name}.li.h5", model)
        back = api.convert_directions(tmp_path / f"{name}.li.h5", tmp_path / f"{name}.back.h5")
        again = load_directions(tmp_path / f"{name}.back.h5")
        for e in (back, again):
            assert torch.equal(e.x, d.x) and torch.equal(e.y, d.y) and e.x.dtype == d.x.dtype
            assert (e.kind, e.norm, e.ignore, e.seed, e.orthogonalized, e.explained_variance_ratio) == \
                (d.kind, d.norm, d.ignore, d.seed, d.orthogonalized, d.explained_variance_ratio)
    # theirs (PCA, with sklearn's extras) -> losslab -> theirs
    g = torch.Generator().manual_seed(0)
    dx = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    dy = [torch.randn(p.shape, generator=g) for p in model.parameters()]
    pca = {"explained_variance_ratio_": np.array([0.61234, 0.2]), "singular_values_": np.array([3.5, 1.25]),
           "explained_variance_": np.array([4.0, 1.3])}
    li_direction_file(tmp_path / "theirs.h5", dx, dy, pca)
    d = api.convert_directions(tmp_path / "theirs.h5", tmp_path / "theirs.losslab.h5")
    assert d.kind == "pca" and d.explained_variance_ratio == (0.61234, 0.2)
    api.convert_directions(tmp_path / "theirs.losslab.h5", tmp_path / "theirs.back.h5", model)
    assert datasets(tmp_path / "theirs.back.h5") == datasets(tmp_path / "theirs.h5")


# ---------------------------------------------------------------- bad inputs --------------------------------

def test_files_of_neither_layout_are_named(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["t"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other\.h5: neither a surface file .* nor a direction file"):
        api.convert_surface(tmp_path / "other.h5", tmp_path / "x.h5")
    with pytest.raises(CorruptFileError, match=r"other\.h5: not a readable surface file"):
        read_surface(tmp_path / "other.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(CorruptFileError, match=r"text\.h5: not an HDF5 file"):
        api.convert_directions(tmp_path / "text.h5", tmp_path / "x.h5")
    li_direction_file(tmp_path / "d.h5", [torch.zeros(2)])
    with pytest.raises(ValueError, match=r"d\.h5: a directions file, not a surface file \(use convert_directions\)"):
        api.convert_surface(tmp_path / "d.h5", tmp_path / "x.h5")
    with pytest.raises(ValueError, match=r"d\.h5: writing Li et al.'s per-tensor direction groups needs .*model"):
        api.convert_directions(tmp_path / "d.h5", tmp_path / "x.h5", to="li")
    with pytest.raises(ValueError, match=r"to='vtk': expected one of \['li', 'losslab'\]"):
        api.convert_directions(tmp_path / "d.h5", tmp_path / "x.h5", to="vtk")
    li_surface_file(tmp_path / "bad.h5", XS, YS)
    with h5py.File(tmp_path / "bad.h5", "r+") as f:
        del f["train_acc"]
        f["train_acc"] = np.zeros((4, 4))
    with pytest.raises(CorruptFileError, match=r"bad\.h5: dataset train_acc has shape \(4, 4\), not one value "
                                               r"per point of the 3 x 5 grid"):
        read_surface(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as f:  # setup_surface_file done, crunch not begun
        f["dir_file"], f["xcoordinates"] = "d.h5", XS
    with pytest.raises(CorruptFileError, match=r"empty\.h5: a Li et al. surface file without train_loss"):
        read_surface(tmp_path / "empty.h5")
