"""Features users of Li et al.'s loss-landscape, PyHessian and Garipov et al.'s dnn-mode-connectivity expect, on
models that are not in losslab's zoo (a tiny conv net with batch norm, MLPs, a linear model): DataParallel
checkpoints, the loss along the top Hessian eigenvector, per-layer Hessian spectra, eigenvalue-ratio maps, the
plane of a curve, plot options and the ParaView export."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from torch import nn

from losslab import api
from losslab import io as lio
from losslab.core.curves import make_curve
from losslab.core.directions import random_directions
from losslab.core.eigenline import top_eigenpair
from losslab.core.hessian import TrainingLoss
from losslab.core.losses import evaluate
from losslab.core.surfaces import read_surface
from losslab.core.vtp import write_vtp
from losslab.core.weights import flatten
from losslab.plots.landscape import PlotOptions, line_figure, parse_levels, surface_figures


class TinyBNConv(nn.Module):
    """A conv net with batch norm (not one of losslab's models)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def tiny_bn_conv(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = TinyBNConv()
    with torch.no_grad():  # non-trivial running statistics
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


class Wrapped(nn.Module):
    """A model whose own keys start with ``module.`` (a submodule named so)."""

    def __init__(self):
        super().__init__()
        self.module = nn.Linear(3, 2)


# ---------------------------------------------------------------- 1. DataParallel checkpoints --------------

def test_dataparallel_checkpoints_lose_their_module_prefix(tmp_path):
    net = tiny_bn_conv(1)
    parallel = nn.DataParallel(net)  # on the CPU a plain wrapper: the same keys behind "module."
    state = parallel.state_dict()
    assert all(k.startswith("module.") for k in state)
    lio.save_torch(tmp_path / "dp.pt", state)
    lio.save_torch(tmp_path / "ddp_ckpt.pt", {"state_dict": state, "epoch": 3})
    for name in ("dp.pt", "ddp_ckpt.pt"):
        loaded = api.load_checkpoint(tiny_bn_conv(0), tmp_path / name)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_the_prefix_is_kept_when_the_model_has_it_or_not_every_key_has_it(tmp_path):
    own = Wrapped()
    lio.save_torch(tmp_path / "own.pt", own.state_dict())  # keys module.weight, module.bias: the model's own
    fresh = api.load_checkpoint(Wrapped(), tmp_path / "own.pt")
    assert torch.equal(fresh.module.weight, own.module.weight)
    state = {f"module.{k}" if k.startswith("conv") else k: v for k, v in tiny_bn_conv().state_dict().items()}
    lio.save_torch(tmp_path / "mixed.pt", state)
    with pytest.raises(api.CheckpointError, match=r"mixed\.pt: .*unexpected keys \['module\.conv"):
        api.load_checkpoint(tiny_bn_conv(), tmp_path / "mixed.pt")
    assert lio.strip_parallel_prefix({"module.a": 1}, {"module.a": 0}) == {"module.a": 1}
    assert lio.strip_parallel_prefix({"module.a": 1}, {"a": 0}) == {"a": 1}


# ---------------------------------------------------------------- 2. the loss along an eigenvector ----------

def linear_problem(seed: int = 0):
    """A linear model (float64) with the squared loss: the loss is exactly quadratic in the weights."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    y = torch.arange(40) % 2
    torch.manual_seed(seed)
    return nn.Linear(3, 2).double(), (x, y)


def test_the_line_along_the_top_eigenvector_is_the_quadratic_of_its_eigenvalue():
    model, data = linear_problem()
    alphas = np.linspace(-2.0, 2.0, 9)
    line = api.eigenvector_line(model, data, alpha=alphas, loss="mse", tol=1e-10)
    x, y = data
    f = TrainingLoss(model, x, y, loss="mse")
    exact = torch.linalg.eigvalsh(f.hessian_matrix())
    lam = float(line.attrs["eigenvalue"])
    assert lam == pytest.approx(float(exact[-1]), rel=1e-10) and bool(line.attrs["eigenvalue_certified"])
    _, v, _ = top_eigenpair(f, 1, tol=1e-10)
    assert float(v.norm()) == pytest.approx(1.0, abs=1e-12) and v[v.abs().argmax()] > 0
    l0, g = f.value_and_grad()
    expected = l0 + alphas * float(g @ v) + 0.5 * lam * alphas ** 2
    np.testing.assert_allclose(line["train_loss"], expected, rtol=1e-10, atol=1e-12)
    # at the least-squares minimum the gradient vanishes: L0 + lambda/2 alpha^2
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    target = nn.functional.one_hot(y, 2).double()
    sol = torch.linalg.lstsq(xb, target).solution
    with torch.no_grad():
        model.weight.copy_(sol[:3].T)
        model.bias.copy_(sol[3])
    at_min = api.eigenvector_line(model, data, alpha=alphas, loss="mse", tol=1e-10)
    l_min = float(TrainingLoss(model, x, y, loss="mse").value())
    np.testing.assert_allclose(at_min["train_loss"], l_min + 0.5 * float(at_min.attrs["eigenvalue"]) * alphas ** 2,
                               rtol=1e-9)


def test_the_kth_eigenvector_and_bad_k():
    model, data = linear_problem(1)
    x, y = data
    exact = torch.linalg.eigvalsh(TrainingLoss(model, x, y, loss="mse").hessian_matrix())
    second = api.eigenvector_line(model, data, alpha=(-1.0, 1.0, 3), k=2, loss="mse", tol=1e-10)
    assert float(second.attrs["eigenvalue"]) == pytest.approx(float(exact[-2]), rel=1e-8)
    assert second.attrs["k"] == 2 and second.attrs["direction"] == "hessian_eigenvector"
    with pytest.raises(ValueError, match=r"k=9: the Hessian has only 8 eigenvalues"):
        api.eigenvector_line(model, data, k=9, loss="mse")


# ---------------------------------------------------------------- 3. per-layer spectra ----------------------

def blobs(n: int = 24, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    return torch.randn(n, 1, 4, 4, generator=gen) + y.float().view(-1, 1, 1, 1), y


def exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Hessian of the mean cross-entropy in the flat weights, by torch.autograd.functional.hessian (eval
    mode: BN with its running statistics)."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    buffers = dict(model.named_buffers())

    def loss(w):
        parts = dict(zip(names, (p.view(s) for p, s in zip(w.split([s.numel() for s in shapes]), shapes))))
        out = torch.func.functional_call(model, {**parts, **buffers}, (x,))
        return nn.functional.cross_entropy(out, y)

    return torch.autograd.functional.hessian(loss, flatten(model).double().float())


def test_per_layer_spectra_are_the_exact_blocks_eigenvalues():
    model = tiny_bn_conv(2)
    x, y = blobs()
    h = exact_hessian(model, x, y).double()
    spectra = api.layer_spectra(model, (x, y), k=2, which="both", tol=1e-8, trace_probes=200)
    layout = [(n, p.numel()) for n, p in model.named_parameters()]
    assert [s.name for s in spectra] == [n for n, _ in layout]
    start = 0
    for s, (name, size) in zip(spectra, layout):
        block = h[start:start + size, start:start + size]
        start += size
        ev = torch.linalg.eigvalsh(block).numpy()
        k = min(2, size)
        want = np.concatenate([ev[::-1][:k], ev[:k]])
        np.testing.assert_allclose(s.values, want, rtol=1e-4, atol=1e-6 * max(1.0, abs(ev).max()), err_msg=name)
        assert s.size == size and s.converged
        trace = float(block.trace())
        assert abs(s.trace - trace) <= 4 * s.trace_stderr + 1e-6, (name, s.trace, trace)
    assert start == h.shape[0]
    record = spectra[0].record()
    assert record["name"] == "conv.weight" and record["size"] == 27 and len(record["values"]) == 4


def test_per_module_blocks_join_weight_and_bias():
    model = tiny_bn_conv(3)
    x, y = blobs(seed=1)
    h = exact_hessian(model, x, y).double()
    spectra = api.layer_spectra(model, (x, y), by="module", tol=1e-8)
    assert [(s.name, s.parameters, s.size) for s in spectra] == [
        ("conv", ("conv.weight", "conv.bias"), 30), ("bn", ("bn.weight", "bn.bias"), 6),
        ("head", ("head.weight", "head.bias"), 8)]
    assert spectra[0].values[0] == pytest.approx(float(torch.linalg.eigvalsh(h[:30, :30])[-1]), rel=1e-5)
    assert spectra[2].values[0] == pytest.approx(float(torch.linalg.eigvalsh(h[36:, 36:])[-1]), rel=1e-5)
    with pytest.raises(ValueError, match=r"unknown block kind by='layer'"):
        api.layer_spectra(model, (x, y), by="layer")


# ---------------------------------------------------------------- 4. eigenvalue-ratio maps -----------------

def test_the_ratio_map_holds_the_exact_hessians_ratio_at_its_points(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(30, 3, generator=gen), torch.arange(30) % 2
    s = api.ratio_map(model, (x, y), x=(-1.0, 1.0, 3), y=(-0.5, 0.5, 2), seed=7, tol=1e-8, path=tmp_path / "r.h5")
    assert s["ratio"].shape == (3, 2) and s["certified"].all()
    d = random_directions(model, 7, norm="filter", ignore="biasbn", dims=2)
    f = TrainingLoss(model, x, y)
    origin = flatten(model)
    for i, a in enumerate((-1.0, 0.0, 1.0)):
        for j, b in enumerate((-0.5, 0.5)):
            ev = torch.linalg.eigvalsh(f.hessian_matrix(origin + a * d.x + b * d.y).double())
            assert s["lambda_max"][i, j] == pytest.approx(float(ev[-1]), rel=1e-5)
            assert s["lambda_min"][i, j] == pytest.approx(float(ev[0]), rel=1e-4, abs=1e-7)
            assert s["ratio"][i, j] == pytest.approx(abs(float(ev[0] / ev[-1])), rel=1e-4, abs=1e-7)
    assert read_surface(tmp_path / "r.h5").spec["kind"] == "hessian_eigenvalue_ratio"
    files = api.plot(tmp_path / "r.h5", tmp_path / "fig")
    assert [p.name for p in files] == ["ratio.png", "ratio.pdf"]


# ---------------------------------------------------------------- 5. the plane of a curve -------------------

def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)).eval()


def test_the_plane_of_a_curve_has_its_points_gram_schmidt_coordinates_and_their_losses(tmp_path):
    a, b = mlp(0), mlp(1)
    w0, w1 = flatten(a), flatten(b)
    curve = make_curve("bezier", w0, w1, 1)
    with torch.no_grad():
        curve.bends[0] += 0.7 * torch.randn(w0.shape, generator=torch.Generator().manual_seed(2))
    bend = curve.bends.detach()[0]
    # Gram-Schmidt by hand, in float64
    u, w = (w1 - w0).double(), (bend - w0).double()
    e1 = u / u.norm()
    v = w - (w @ e1) * e1
    e2 = v / v.norm()
    coords = np.array([[0.0, 0.0], [float(u.norm()), 0.0], [float(w @ e1), float(w @ e2)]])
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(25, 3, generator=gen), torch.arange(25) % 2
    xs = np.sort(np.array([0.0, coords[1, 0], coords[2, 0]]))
    ys = np.array([0.0, coords[2, 1]])
    s = api.curve_plane(curve, a, (x, y), x=xs, y=ys, t=5, bn="running", path=tmp_path / "plane.h5")
    np.testing.assert_allclose(s.extra["point_coordinates"], coords, rtol=1e-6, atol=1e-6)
    # the curve's projection: exact for one bend, phi(t) = (1-t)^2 w0 + 2t(1-t) bend + t^2 w1
    t = np.linspace(0, 1, 5)[:, None]
    np.testing.assert_allclose(s.extra["curve_coordinates"], 2 * t * (1 - t) * coords[2] + t ** 2 * coords[1],
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(s.extra["curve_t"], t[:, 0])
    for point, (px, py) in zip((w0, w1, bend), coords):
        net = mlp(0)
        torch.nn.utils.vector_to_parameters(point, net.parameters())
        i, j = int(np.argmin(np.abs(xs - px))), int(np.argmin(np.abs(ys - py)))
        assert s["train_loss"][i, j] == pytest.approx(evaluate(net, x, y).loss, rel=1e-5)
    stored = read_surface(tmp_path / "plane.h5")
    assert stored.extra["curve_coordinates"].shape == (5, 2)
    figs = surface_figures(tmp_path / "plane.h5")
    lines = figs["contour"].axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_xydata(), s.extra["curve_coordinates"])


# ---------------------------------------------------------------- 6. plot options --------------------------

@pytest.fixture(scope="module")
def surface_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("surf") / "s.h5"
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 3, generator=gen), torch.arange(30) % 2
    api.surface(mlp(0), (x, y), x=(-1.0, 1.0, 5), y=(-1.0, 1.0, 4), path=path)
    return path


def contour_set(ax):
    from matplotlib.contour import ContourSet

    (cs,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    return cs


def test_plot_options_set_the_axes_levels_and_colour_range(surface_file):
    opts = PlotOptions(xlim=(-0.5, 0.25), ylim=(-0.75, 0.5), levels=(0.6, 0.7, 0.8, 0.9), vmin=0.5, vmax=1.0)
    figs = surface_figures(surface_file, options=opts)
    for name in ("contour", "filled"):
        ax = figs[name].axes[0]
        assert ax.get_xlim() == (-0.5, 0.25) and ax.get_ylim() == (-0.75, 0.5), name
        cs = contour_set(ax)
        np.testing.assert_array_equal(cs.levels, [0.6, 0.7, 0.8, 0.9])
        assert (cs.norm.vmin, cs.norm.vmax) == (0.5, 1.0)
    assert figs["line1d"].axes[0].get_xlim() == (-0.5, 0.25)
    z = read_surface(surface_file)["train_loss"]
    geometric = contour_set(surface_figures(surface_file, options=PlotOptions(levels="log:7"))["contour"].axes[0])
    np.testing.assert_allclose(geometric.levels, np.geomspace(z.min(), z.max(), 7))
    even = contour_set(surface_figures(surface_file, options=PlotOptions(levels=5, vmin=0.1, vmax=0.9))["contour"]
                       .axes[0])
    np.testing.assert_allclose(even.levels, np.linspace(0.1, 0.9, 5))
    assert parse_levels("12") == 12 and parse_levels("0.1,0.2") == (0.1, 0.2) and parse_levels("log") == "log:25"
    with pytest.raises(ValueError, match=r"levels '0.2,0.1': expected"):
        parse_levels("0.2,0.1")
    with pytest.raises(ValueError, match=r"xlim \(1, 0\): expected \(lo, hi\) with lo < hi"):
        PlotOptions(xlim=(1, 0))
    with pytest.raises(ValueError, match=r"levels \[1.0, 0.5\]: expected increasing values"):
        PlotOptions(levels=[1.0, 0.5])
    line = line_figure(np.linspace(-1, 1, 5), {"train": np.arange(5.0)}, {"train": np.ones(5)},
                       options=PlotOptions(xlim=(-0.5, 0.5), ylim=(1.0, 3.0)))
    assert line.axes[0].get_xlim() == (-0.5, 0.5) and line.axes[0].get_ylim() == (1.0, 3.0)


def test_api_plot_takes_the_options(surface_file, tmp_path):
    files = api.plot(surface_file, tmp_path, xlim=(-0.5, 0.5), levels="log:9", vmin=0.3, vmax=2.0)
    assert {p.name for p in files} >= {"contour.png", "filled.pdf", "surface3d.png", "line1d.png"}


# ---------------------------------------------------------------- 7. ParaView export -----------------------

def parse_vtp(path):
    root = ET.parse(path).getroot()
    piece = root.find("PolyData/Piece")

    def array(parent: str, name: str) -> np.ndarray:
        (node,) = [a for a in piece.find(parent).findall("DataArray") if a.get("Name") == name]
        return np.array((node.text or "").split(), dtype=float)

    return root, piece, array


def test_the_vtp_file_holds_the_grid_the_cells_and_the_values(tmp_path):
    x, y = np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])
    z = np.array([[0.5, 1.5], [2.5, 3.5], [4.5, 9.0]])  # z[i, j] at (x[i], y[j])
    write_vtp(tmp_path / "s.vtp", x, y, z, name="train_loss")
    root, piece, array = parse_vtp(tmp_path / "s.vtp")
    assert root.get("type") == "PolyData"
    assert piece.get("NumberOfPoints") == "6" and piece.get("NumberOfPolys") == "2"
    points = array("Points", "Points").reshape(-1, 3)
    # point j * nx + i is (x[i], y[j], z[i, j])
    expected = np.array([[x[i], y[j], z[i, j]] for j in range(2) for i in range(3)])
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_array_equal(array("PointData", "train_loss"), expected[:, 2])
    np.testing.assert_array_equal(array("Polys", "connectivity"), [0, 1, 4, 3, 1, 2, 5, 4])
    np.testing.assert_array_equal(array("Polys", "offsets"), [4, 8])
    np.testing.assert_allclose(array("CellData", "averaged train_loss"), [(0.5 + 2.5 + 3.5 + 1.5) / 4,
                                                                           (2.5 + 4.5 + 9.0 + 3.5) / 4])
    write_vtp(tmp_path / "log.vtp", x, y, z, name="train_loss", log=True, zmax=4.0)
    _, _, array = parse_vtp(tmp_path / "log.vtp")
    np.testing.assert_allclose(array("PointData", "train_loss"), np.log(np.minimum(expected[:, 2], 4.0) + 0.1),
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"1 non-finite value"):
        write_vtp(tmp_path / "bad.vtp", x, y, np.where(z > 8, np.inf, z))


def test_interpolation_resamples_by_the_bicubic_spline(tmp_path):
    x, y = np.linspace(-1, 1, 5), np.linspace(0, 2, 6)
    cubic = lambda a, b: 1 + a ** 3 - 2 * a * b + b ** 2  # noqa: E731  (a spline of degree 3 reproduces it)
    z = cubic(x[:, None], y[None, :])
    write_vtp(tmp_path / "i.vtp", x, y, z, interp=9)
    _, piece, array = parse_vtp(tmp_path / "i.vtp")
    assert piece.get("NumberOfPoints") == "81" and piece.get("NumberOfPolys") == "64"
    points = array("Points", "Points").reshape(-1, 3)
    np.testing.assert_allclose(points[:, 2], cubic(points[:, 0], points[:, 1]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.unique(points[:, 0]), np.linspace(-1, 1, 9), atol=1e-7)
    with pytest.raises(ValueError, match=r"at least 4 x 4 grid points, got 3 x 2"):
        write_vtp(tmp_path / "j.vtp", x[:3], y[:2], z[:3, :2], interp=9)


def test_export_vtp_of_a_surface_file(surface_file, tmp_path):
    out = api.export_vtp(surface_file, tmp_path / "s.vtp", name="train_acc")
    s = read_surface(surface_file)
    _, piece, array = parse_vtp(out)
    assert piece.get("NumberOfPoints") == "20" and piece.get("NumberOfPolys") == "12"
    np.testing.assert_allclose(array("PointData", "train_acc"), s["train_acc"].T.reshape(-1).astype(np.float32))
    with pytest.raises(ValueError, match=r"no surface named 'ratio'"):
        api.export_vtp(surface_file, tmp_path / "x.vtp", name="ratio")
