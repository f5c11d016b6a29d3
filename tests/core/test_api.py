"""losslab.api on a user's model with data as tensors and as a DataLoader: plain results, the workflow's files,
checked against direct computations (the exact Hessian of a tiny net, the models' own losses)."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import losslab
from losslab import api
from losslab import io as lio
from losslab.api import CheckpointError
from losslab.core.curves import make_curve
from losslab.core.data import Prepared
from losslab.core.directions import load_directions, pca_directions, project, random_directions
from losslab.core.losses import evaluate
from losslab.core.hessian import TrainingLoss
from losslab.core.weights import flatten
from losslab.core.surfaces import read_surface


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    return centres[y] + torch.randn(n, 4, generator=gen), y


X, Y = blobs(90, 0)
XT, YT = blobs(45, 1)
DATA = (X, Y, XT, YT)


@pytest.fixture(scope="module")
def models():
    out = []
    for seed in (0, 1):
        m = tiny_mlp(seed)
        api.train(m, DATA, epochs=5, lr=0.1, batch_size=30, seed=seed)
        out.append(m)
    return out


# ---------------------------------------------------------------- data ------------------------------------

def test_every_accepted_form_of_data_gives_the_same_tensors():
    loader = DataLoader(TensorDataset(X, Y), batch_size=20)
    test_loader = DataLoader(TensorDataset(XT, YT), batch_size=7)
    forms = [DATA, ((X, Y), (XT, YT)), {"train": (X, Y), "test": (XT, YT)}, {"train": loader, "test": test_loader},
             (loader, test_loader), (X.numpy(), Y.numpy(), XT.numpy(), YT.numpy())]
    for form in forms:
        d = api.as_data(form)
        assert isinstance(d, Prepared) and d.num_classes == 3
        for got, want in ((d.x_train, X), (d.y_train, Y), (d.x_test, XT), (d.y_test, YT)):
            assert torch.equal(got, want) and got.dtype == want.dtype
    train_only = api.as_data(loader)
    assert torch.equal(train_only.x_train, X) and len(train_only.y_test) == 0
    assert api.as_data((X, Y), (XT, YT)).x_test.shape == XT.shape
    ints = api.as_data((torch.ones(3, 2, dtype=torch.uint8), torch.tensor([0, 1, 1], dtype=torch.int32)))
    assert ints.x_train.dtype == torch.float32 and ints.y_train.dtype == torch.int64


def test_bad_data_is_refused_with_a_message():
    with pytest.raises(ValueError, match="more than max_samples=50"):
        api.as_data(DataLoader(TensorDataset(X, Y), batch_size=20), max_samples=50)
    with pytest.raises(ValueError, match="90 inputs but 89 labels"):
        api.as_data((X, Y[:-1]))
    with pytest.raises(TypeError, match="batch 0 is a Tensor"):
        api.as_data(DataLoader(X, batch_size=10))
    with pytest.raises(ValueError, match="key 'train'"):
        api.as_data({"training": (X, Y)})
    with pytest.raises(ValueError, match="test inputs have shape"):
        api.as_data((X, Y, XT[:, :3], YT))


# ---------------------------------------------------------------- surfaces --------------------------------

def test_surface_around_a_model_on_tensors_and_on_a_dataloader(models, tmp_path):
    model = models[0]
    s = api.surface(model, DATA, x=(-1.0, 1.0, 5), y=[-0.5, 0.0, 0.5], path=tmp_path / "s.h5")
    assert s["train_loss"].shape == s["test_acc"].shape == (5, 3)
    assert s["train_loss"][2, 1] == pytest.approx(evaluate(model, X, Y).loss, rel=1e-5)
    assert s["test_acc"][2, 1] == pytest.approx(evaluate(model, XT, YT).acc)
    stored = read_surface(tmp_path / "s.h5")
    np.testing.assert_array_equal(stored["train_loss"], s["train_loss"])
    assert stored.attrs["norm"] == "filter" and stored.attrs["direction"] == "random"
    loaders = {"train": DataLoader(TensorDataset(X, Y), batch_size=32), "test": DataLoader(TensorDataset(XT, YT))}
    again = api.surface(model, loaders, x=(-1.0, 1.0, 5), y=[-0.5, 0.0, 0.5])
    np.testing.assert_array_equal(again["train_loss"], s["train_loss"])
    other = api.surface(model, DATA, x=(-1.0, 1.0, 5), y=[-0.5, 0.0, 0.5], seed=1)
    assert not np.array_equal(other["train_loss"], s["train_loss"])  # other directions
    line = api.surface(model, (X, Y), dims=1, x=[-1.0, 0.0, 1.0], norm="layer")
    assert set(line.values) == {"train_loss", "train_acc"} and line.ycoordinates is None
    assert line["train_loss"][1] == pytest.approx(s["train_loss"][2, 1])


def test_interpolation_and_plane_between_models(models):
    a, b = models
    s = api.interpolate(a, b, DATA, alpha=(0.0, 1.0, 3))
    np.testing.assert_allclose(s["train_loss"][[0, 2]], [evaluate(a, X, Y).loss, evaluate(b, X, Y).loss],
                               rtol=1e-5)
    assert api.surface_between([a, b], DATA, alpha=[0.0, 1.0])["test_loss"][1] == pytest.approx(
        evaluate(b, XT, YT).loss, rel=1e-5)
    p = api.surface_between([a, b, tiny_mlp(7)], DATA, n=3)
    assert p["train_loss"].shape == (3, 3) and p.extra["point_coordinates"].shape == (3, 2)
    with pytest.raises(ValueError, match="parameter layout"):
        api.interpolate(a, bn_net(), DATA)
    with pytest.raises(ValueError, match="two or three"):
        api.surface_between([a], DATA)


def test_interpolation_of_bn_models_recomputes_the_statistics():
    a, b = bn_net(0), bn_net(1)
    for m, seed in ((a, 0), (b, 1)):
        api.train(m, DATA, epochs=2, lr=0.1, batch_size=30, seed=seed)
    s = api.interpolate(a, b, (X, Y), alpha=[0.0, 1.0])
    assert s.attrs["bn"] == "recompute"
    # at alpha = 1 the statistics are b's recomputed ones, not a's running ones
    running = api.interpolate(a, b, (X, Y), alpha=[0.0, 1.0], bn="running")
    assert s["train_loss"][1] != running["train_loss"][1]


# ---------------------------------------------------------------- curvature -------------------------------

def test_hessian_eigenvalues_match_the_exact_hessian(models):
    model = models[0]
    exact = np.linalg.eigvalsh(TrainingLoss(model, X, Y).hessian_matrix().double().numpy())
    top = api.hessian_eigenvalues(model, (X, Y), k=3, tol=1e-6)
    np.testing.assert_allclose(top.values, exact[::-1][:3], rtol=1e-4)
    assert top.converged and top.vectors.shape == (3, 51)
    low = api.hessian_eigenvalues(model, DATA, k=1, which="smallest", tol=1e-4, max_iter=51)
    assert low.values[0] == pytest.approx(exact[0], abs=1e-4 * abs(exact).max())
    loader = DataLoader(TensorDataset(X, Y), batch_size=16)
    assert api.hessian_eigenvalues(model, loader, k=1, tol=1e-6).values[0] == pytest.approx(exact[-1], rel=1e-4)
    trace = api.hessian_trace(model, (X, Y), n_probes=200, seed=1)
    assert abs(trace.value - exact.sum()) < 4 * trace.stderr
    density = api.spectral_density(model, (X, Y), n_runs=2, n_steps=51, n_grid=4000)
    assert np.trapezoid(density.density, density.grid) == pytest.approx(1.0, abs=0.02)
    assert density.mean == pytest.approx(exact.mean(), rel=0.5)  # the estimate of tr(H) / dim, 2 probes


def test_sharpness_grows_with_the_box(models):
    small = api.sharpness(models[0], (X, Y), eps=1e-3, maxiter=5)
    large = api.sharpness(models[0], (X, Y), eps=1e-1, maxiter=5)
    assert small.loss == pytest.approx(evaluate(models[0], X, Y).loss, rel=1e-5)
    for r in (small, large):
        assert r.value == pytest.approx((r.max_loss - r.loss) / (1 + r.loss) * 100)
    assert large.value > small.value > 0
    sub = api.sharpness(models[0], (X, Y), eps=1e-3, subspace_dim=10, maxiter=3)
    assert sub.subspace_dim == 10 and sub.y.shape == (10,)


# ---------------------------------------------------------------- curves and MPO ---------------------------

def test_a_trained_curve_and_its_evaluation(models, tmp_path):
    a, b = models
    curve = api.train_curve(a, b, DATA, kind="bezier", bends=2, epochs=2, batch_size=30)
    assert curve.n_bends == 2
    assert torch.equal(curve.point(0.0), flatten(a)) and torch.equal(curve.point(1.0), flatten(b))
    ev = api.evaluate_curve(curve, a, DATA, t=5, path=tmp_path / "curve.h5")
    assert ev.values["train_loss"][0] == pytest.approx(evaluate(a, X, Y).loss, rel=1e-5)
    assert ev.values["test_err"][-1] == pytest.approx(evaluate(b, XT, YT).err)
    assert ev.metrics["length"] >= ev.metrics["segment_length"] * (1 - 1e-9)
    with pytest.raises(ValueError, match="needs a test split"):
        api.evaluate_curve(curve, a, (X, Y), t=3)
    files = api.plot(tmp_path / "curve.h5", tmp_path / "figs")
    assert [f.name for f in files] == ["curve.png", "curve.pdf"]


def test_a_pattern_fitted_by_mpo():
    pattern = np.array([[1, 0], [0, 1]])
    fit = api.fit_pattern(lambda: nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)), DATA, pattern,
                          steps=4, cells_per_step=4, batch_size=30, lr=1e-2)
    assert isinstance(fit, api.PatternFit) and len(fit.history) == 4
    assert fit.maps.train_acc.shape == fit.maps.test_loss.shape == (2, 2)
    assert {"train_acc_gap", "test_loss_gap", "train_test_corr_acc"} <= set(fit.metrics)
    with pytest.raises(ValueError, match="not a binary pattern"):
        api.fit_pattern(tiny_mlp, DATA, [[0, 2]], steps=1)


# ---------------------------------------------------------------- checkpoints, files, exports ---------------

def test_checkpoints_are_loaded_or_named_in_the_error(models, tmp_path):
    sd = models[0].state_dict()
    torch.save(sd, tmp_path / "plain.pt")
    torch.save({"model": sd, "epoch": 3}, tmp_path / "nested.pt")
    for name in ("plain.pt", "nested.pt"):
        assert torch.equal(flatten(api.load_checkpoint(tiny_mlp(5), tmp_path / name)), flatten(models[0]))
    with pytest.raises(api.CheckpointError, match=r"plain\.pt: weights of another architecture than Sequential"):
        api.load_checkpoint(bn_net(), tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(api.CheckpointError, match=r"junk\.pt: cannot be read"):
        api.load_checkpoint(tiny_mlp(), tmp_path / "junk.pt")
    with pytest.raises(api.CheckpointError, match=r"gone\.pt: no such checkpoint"):
        api.load_checkpoint(tiny_mlp(), tmp_path / "gone.pt")


def test_plot_draws_every_kind_of_file(models, tmp_path):
    api.surface(models[0], DATA, x=(-1.0, 1.0, 3), y=(-1.0, 1.0, 3), path=tmp_path / "s2.h5")
    api.interpolate(*models, (X, Y), alpha=(0.0, 1.0, 3), path=tmp_path / "s1.h5")
    api.write_spectral_density(tmp_path / "d.h5", api.spectral_density(models[0], (X, Y), n_runs=1, n_steps=8))
    names = {p.name for p in api.plot(tmp_path / "s2.h5", tmp_path / "f2")}
    assert names == {f"{n}.{e}" for n in ("contour", "filled", "surface3d", "line1d") for e in ("png", "pdf")}
    assert {p.name for p in api.plot(tmp_path / "s1.h5", tmp_path / "f1")} == {"line1d.png", "line1d.pdf"}
    assert {p.name for p in api.plot(tmp_path / "d.h5", tmp_path / "fd")} == {"density.png", "density.pdf"}
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(ValueError, match="other.h5: not a losslab"):
        api.plot(tmp_path / "other.h5", tmp_path)


def test_the_api_is_exported_lazily_from_the_package():
    assert losslab.surface is api.surface and losslab.hessian_eigenvalues is api.hessian_eigenvalues
    assert "surface" in dir(losslab)
    with pytest.raises(AttributeError):
        losslab.no_such_thing


# ---------------------------------------------------------------- directions in and out -------------------

def _moved(model: nn.Module, vec: torch.Tensor) -> nn.Module:
    out = tiny_mlp()
    torch.nn.utils.vector_to_parameters(vec, out.parameters())
    return out.eval()


def test_surfaces_return_and_reuse_their_directions_as_saved_or_renormalized(models, tmp_path):
    a, b = models
    grid = dict(x=[-0.5, 0.0, 0.5], y=[-0.5, 0.5])
    s = api.surface(a, DATA, **grid, save_directions=tmp_path / "d.h5")
    saved = load_directions(tmp_path / "d.h5")
    assert s.directions.kind == "random" and torch.equal(saved.x, s.directions.x)
    assert torch.equal(saved.y, random_directions(a, 0).y)
    # the same file on the same model reproduces the surface; the file is recorded by its hash
    again = api.surface(a, DATA, **grid, directions=tmp_path / "d.h5", renormalize=False)
    np.testing.assert_array_equal(again["train_loss"], s["train_loss"])
    assert again.directions.provenance()["directions_sha256"] == lio.file_hash(tmp_path / "d.h5")
    # on another model, as saved: the very same vectors are added to b's weights
    as_saved = api.surface(b, DATA, **grid, directions=tmp_path / "d.h5", renormalize=False)
    assert torch.equal(as_saved.directions.x, saved.x) and torch.equal(as_saved.directions.y, saved.y)
    corner = _moved(b, flatten(b) + 0.5 * saved.x + 0.5 * saved.y)
    assert as_saved["train_loss"][2, 1] == pytest.approx(evaluate(corner, X, Y).loss, rel=1e-5)
    # the default re-normalizes them to b's filters: the same Gaussian draw, filter-normalized for b
    per_network = api.surface(b, DATA, **grid, directions=tmp_path / "d.h5")
    fresh = api.surface(b, DATA, **grid, seed=0)
    assert per_network.directions.renormalized
    torch.testing.assert_close(per_network.directions.x, fresh.directions.x, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(per_network["train_loss"], fresh["train_loss"], rtol=1e-5)
    assert not np.allclose(as_saved["train_loss"], per_network["train_loss"], rtol=1e-4)
    # a Directions object works the same; a pair may draw a 1-D line along its first direction
    line = api.surface(b, DATA, x=[0.5], directions=saved, renormalize=False, dims=1)
    assert line.ycoordinates is None and line.directions.y is None
    assert line["train_loss"][0] == pytest.approx(evaluate(_moved(b, flatten(b) + 0.5 * saved.x), X, Y).loss,
                                                  rel=1e-5)
    one = api.surface(a, DATA, dims=1, x=[0.0], save_directions=tmp_path / "one.h5")
    assert one.directions.y is None and api.surface(a, DATA, x=[0.0], directions=tmp_path / "one.h5").ycoordinates \
        is None  # dims defaults to the number of given directions
    with pytest.raises(ValueError, match="one.h5: one direction only; a 2-D surface needs two"):
        api.surface(a, DATA, dims=2, x=[0.0], directions=tmp_path / "one.h5")


def test_directions_of_another_architecture_are_refused_naming_the_file_and_both_sizes(models, tmp_path):
    api.surface(bn_net(), DATA, x=[0.0], y=[0.0], save_directions=tmp_path / "bn.h5")
    n_bn, n_mlp = flatten(bn_net()).numel(), flatten(models[0]).numel()
    with pytest.raises(ValueError, match=rf"{tmp_path / 'bn.h5'}: xdirection has {n_bn} entries "
                                         rf"but the model has {n_mlp} weights"):
        api.surface(models[0], DATA, x=[0.0], y=[0.0], directions=tmp_path / "bn.h5")
    with pytest.raises(FileNotFoundError, match="nowhere.h5: no such direction file"):
        api.surface(models[0], DATA, directions=tmp_path / "nowhere.h5")
    with pytest.raises(TypeError, match="directions: expected Directions"):
        api.surface(models[0], DATA, directions=42)


def test_interpolation_and_plane_return_their_directions(models, tmp_path):
    a, b = models
    s = api.interpolate(a, b, DATA, alpha=[0.0, 1.0], save_directions=tmp_path / "ab.h5")
    assert s.directions.kind == "interpolation" and torch.equal(s.directions.x, flatten(b) - flatten(a))
    assert torch.equal(load_directions(tmp_path / "ab.h5").x, s.directions.x)
    # reused around a (as saved), alpha = 1 along it is b itself
    along = api.surface(a, DATA, x=[1.0], directions=tmp_path / "ab.h5")
    assert along["train_loss"][0] == pytest.approx(s["train_loss"][1], rel=1e-5)
    c = tiny_mlp(7)
    p = api.plane([a, b, c], DATA, n=3, save_directions=tmp_path / "plane.h5")
    u, v = p.directions.x.double(), p.directions.y.double()
    assert p.directions.kind == "plane" and abs(float(u @ v)) < 1e-6 and float(u.norm()) == pytest.approx(1.0)
    coords = project([flatten(m) for m in (a, b, c)], flatten(a), p.directions.x, p.directions.y).numpy()
    np.testing.assert_allclose(coords, p.extra["point_coordinates"], atol=1e-4)
    assert load_directions(tmp_path / "plane.h5").kind == "plane"


# ---------------------------------------------------------------- batch norm between two models --------------

@pytest.fixture(scope="module")
def bn_models():
    out = []
    for seed in (0, 1):
        m = bn_net(seed)
        api.train(m, DATA, epochs=2, lr=0.1, batch_size=30, seed=seed)
        out.append(m)
    return out


def _averaged(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    out = bn_net()
    sb = b.state_dict()
    out.load_state_dict({k: v if k.endswith("num_batches_tracked") else (1 - alpha) * v + alpha * sb[k]
                         for k, v in a.state_dict().items()})
    return out.eval()


def test_interpolated_bn_statistics_give_the_endpoints_and_the_averaged_model(bn_models, models):
    without_bn = {bn: api.interpolate(*models, DATA, alpha=(-1.0, 2.0, 4), bn=bn)["train_loss"]
                  for bn in ("interpolate", "running")}
    np.testing.assert_array_equal(without_bn["interpolate"], without_bn["running"])  # no statistics to interpolate
    a, b = bn_models
    s = api.interpolate(a, b, DATA, alpha=[0.0, 0.5, 1.0], bn="interpolate")
    assert s.attrs["bn"] == "interpolate"
    assert s["train_loss"][0] == evaluate(a, X, Y).loss and s["test_acc"][0] == evaluate(a, XT, YT).acc
    assert s["train_loss"][2] == evaluate(b, X, Y).loss and s["test_loss"][2] == evaluate(b, XT, YT).loss
    assert s["train_loss"][1] == pytest.approx(evaluate(_averaged(a, b, 0.5), X, Y).loss, rel=1e-5)
    assert s["train_loss"][1] != pytest.approx(evaluate(_averaged(a, a, 0.0), X, Y).loss, rel=1e-3)
    recomputed = api.interpolate(a, b, DATA, alpha=[0.0, 0.5, 1.0])
    assert recomputed["train_loss"][0] != s["train_loss"][0]  # at a, fresh statistics are not a's running ones
    for call in (lambda: api.surface(a, DATA, bn="interpolate"), lambda: api.plane([a, b, bn_net(3)], DATA,
                                                                                  bn="interpolate")):
        with pytest.raises(ValueError, match="bn='interpolate' interpolates the running statistics between two"):
            call()


def test_the_statistics_batch_not_the_chunk_sets_the_recomputed_statistics(bn_models):
    a, b = bn_models
    grid = dict(alpha=[0.3, 1.5])
    base = api.interpolate(a, b, DATA, **grid)
    assert base.spec["evaluators"]["train"]["stats_batch"] == 250  # recorded in the file's spec
    np.testing.assert_allclose(api.interpolate(a, b, DATA, chunk=20, **grid)["train_loss"], base["train_loss"],
                               rtol=1e-6)  # a memory knob only
    small = api.interpolate(a, b, DATA, stats_batch=20, **grid)["train_loss"]
    assert np.abs(small - base["train_loss"]).max() > 1e-4  # the statistics batch changes the numbers
    everything = api.interpolate(a, b, DATA, stats_batch="all", **grid)
    np.testing.assert_array_equal(everything["train_loss"], base["train_loss"])  # 90 samples: one batch either way
    curve = make_curve("bezier", flatten(a), flatten(b), 1)
    ts = [0.0, 0.5, 1.0]
    ev = {c: api.evaluate_curve(curve, a, DATA, t=ts, chunk=c).values["train_loss"] for c in (20, 250)}
    np.testing.assert_allclose(ev[20], ev[250], rtol=1e-6)
    assert api.evaluate_curve(curve, a, DATA, t=ts, stats_batch=20).values["train_loss"][1] != \
        pytest.approx(ev[250][1], rel=1e-5)


# ---------------------------------------------------------------- trajectory PCA ------------------------------

def test_trajectory_pca_of_a_users_checkpoints_and_its_surface(tmp_path):
    model = tiny_mlp(3)
    paths = []
    for epoch in range(1, 5):
        api.train(model, DATA, epochs=1, lr=0.2, batch_size=30, seed=epoch)
        paths.append(tmp_path / f"epoch{epoch}.pt")
        torch.save(model.state_dict(), paths[-1])
    pca = api.trajectory_directions(model, paths, save_directions=tmp_path / "pca.h5")
    vectors = [flatten(api.load_checkpoint(tiny_mlp(), p)) for p in paths]
    direct = pca_directions(vectors, final=flatten(model), model=model)
    assert torch.equal(pca.directions.x, direct.x) and pca.explained_variance_ratio == direct.explained_variance_ratio
    assert 0 < pca.explained_variance_ratio[1] <= pca.explained_variance_ratio[0] < 1
    np.testing.assert_allclose(pca.coordinates[-1], [0.0, 0.0], atol=1e-6)  # the final checkpoint is the centre
    assert pca.coordinates.shape == (4, 2) and list(pca.epochs) == [1, 2, 3, 4]
    stored = load_directions(tmp_path / "pca.h5")
    assert stored.kind == "pca" and stored.explained_variance_ratio == pytest.approx(pca.explained_variance_ratio)
    xs, ys = pca.grid(n=4, margin=0.3)
    assert xs.min() < pca.coordinates[:, 0].min() and ys.max() > pca.coordinates[:, 1].max()
    s = api.surface(model, DATA, x=xs, y=ys, directions=pca, path=tmp_path / "pca_surface.h5")
    np.testing.assert_array_equal(read_surface(tmp_path / "pca_surface.h5").extra["trajectory"], pca.coordinates)
    assert s.directions.kind == "pca" and s.attrs["direction"] == "pca"
    drawn = api.plot(tmp_path / "pca_surface.h5", tmp_path / "figs")
    assert tmp_path / "figs" / "trajectory.png" in drawn
    with pytest.raises(ValueError, match="centred at other weights than the model's"):
        api.surface(tiny_mlp(4), DATA, x=xs, y=ys, directions=pca)
    with pytest.raises(ValueError, match="at least 3 weight vectors"):
        api.trajectory_directions(model, paths[:2])
    with pytest.raises(CheckpointError, match="epoch9.pt"):
        api.trajectory_directions(model, paths + [tmp_path / "epoch9.pt"])
