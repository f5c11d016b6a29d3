"""The ``losslab`` command line on a model that is not in losslab's zoo: every subcommand, its files, its errors,
and the README's "Your own model" commands run exactly as written."""

import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from losslab import api
from losslab.cli import AUTOCASTS, DEVICES, main
from losslab.core.curves import load_curve, read_curve_evaluation
from losslab.core.directions import load_directions, random_directions, save_directions
from losslab.io import file_hash
from losslab.core.losses import evaluate
from losslab.core.weights import flatten
from losslab.core.surfaces import read_surface

ROOT = Path(__file__).resolve().parents[2]
MODULE = "ll_user_net"  # the user's module, written from the definitions below into a scratch directory


# ---------------------------------------------------------------- the user's model and data ----------------

class GatedConvNet(nn.Module):
    """A tiny conv net with batch norm and a multiplicative gate (not one of losslab's models)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.gate = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.head(h * torch.sigmoid(self.gate(h)))


def make_model():
    return GatedConvNet()


def make_data():
    """Three classes of 6x6 noise images: dark, grey with a horizontal bar, bright; 96 training and 48 test
    samples."""
    gen = torch.Generator().manual_seed(0)
    n = 144
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 6, 6, generator=gen) + 1.2 * (y.float() - 1.0).view(-1, 1, 1, 1)
    x[y == 1, 0, 2:4, :] += 1.0
    return x[:96], y[:96], x[96:], y[96:]


def make_loaders():
    from torch.utils.data import DataLoader, TensorDataset

    x, y, xt, yt = make_data()
    return {"train": DataLoader(TensorDataset(x, y), batch_size=40),
            "test": DataLoader(TensorDataset(xt, yt), batch_size=40)}


def not_a_model():
    return 42


def broken_model():
    raise RuntimeError("no GPU here")


class OtherNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3)


def write_user_module(directory: Path) -> None:
    parts = ["import torch\nfrom torch import nn\n"] + [
        inspect.getsource(obj) for obj in (GatedConvNet, make_model, make_data, make_loaders, not_a_model,
                                           broken_model)]
    (directory / f"{MODULE}.py").write_text("\n\n".join(parts))


# ---------------------------------------------------------------- fixtures ---------------------------------

@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The user's module on sys.path and two models trained briefly through ``losslab train``."""
    root = tmp_path_factory.mktemp("lab")
    write_user_module(root)
    sys.path.insert(0, str(root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed, name in ((0, "a"), (1, "b")):
            assert main(["train", "--model", f"{MODULE}:make_model", "--data", f"{MODULE}:make_data",
                         "--epochs", "4", "--lr", "0.1", "--batch-size", "32", "--seed", str(seed),
                         "--out", str(root / name), "--no-progress"]) == 0
        yield root
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(root))
        sys.modules.pop(MODULE, None)


def cli(*args, out=None) -> int:
    argv = [a if isinstance(a, str) else str(a) for a in args]
    if out is not None:
        argv += ["--out", str(out)]
    return main(argv + ["--no-progress"])


def trained(lab: Path, name: str = "a") -> nn.Module:
    model = make_model()
    model.load_state_dict(torch.load(lab / name / "model.pt", weights_only=True))
    return model.eval()


M = ["--model", f"{MODULE}:make_model", "--data", f"{MODULE}:make_data"]


def assert_figure(stem: Path) -> None:
    for ext in ("png", "pdf"):
        path = stem.with_name(f"{stem.name}.{ext}")
        assert path.is_file() and path.stat().st_size > 1000, path


# ---------------------------------------------------------------- every subcommand ------------------------

def test_train_writes_a_checkpoint_and_its_history_and_learns(lab):
    history = json.loads((lab / "a" / "model.history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["batch_loss"]
    x, y, _, _ = make_data()
    assert evaluate(trained(lab), x, y).acc > 1 / 3 + 0.1  # better than chance after 4 epochs
    assert set(torch.load(lab / "a" / "model.pt", weights_only=True)) == set(make_model().state_dict())


def test_train_ends_with_its_result(lab, tmp_path, capsys):
    assert cli("train", *M, "--epochs", "1", "--batch-size", "32", out=tmp_path) == 0
    (row,) = json.loads((tmp_path / "model.history.json").read_text())
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"losslab train: epoch 1: train loss {row['train_loss']:.4g}, train accuracy {100 * row['train_acc']:.2f}%, "
        f"test accuracy {100 * row['test_acc']:.2f}%")


def test_surface_2d_around_a_checkpoint(lab, tmp_path, capsys):
    assert cli("surface", *M, "--checkpoint", lab / "a" / "model.pt", "--x=-1:1:5", "--y=-0.5:0.5:3",
               out=tmp_path) == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "surface.h5") in printed
    with h5py.File(tmp_path / "surface.h5") as f:
        assert f["xcoordinates"].shape == (5,) and f["ycoordinates"].shape == (3,)
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert f[key].shape == (5, 3) and np.isfinite(f[key][()]).all()
        assert f.attrs["norm"] == "filter" and f.attrs["bn"] == "running"
    s = read_surface(tmp_path / "surface.h5")
    x, y, xt, yt = make_data()
    model = trained(lab)
    # the centre of the surface is the model itself: its loss with its own running statistics
    assert s["train_loss"][2, 1] == pytest.approx(evaluate(model, x, y).loss, rel=1e-5)
    assert s["test_acc"][2, 1] == pytest.approx(evaluate(model, xt, yt).acc)
    assert s["train_loss"].max() > s["train_loss"][2, 1]  # alpha = +-1 filter-normalized steps leave the minimum
    for name in ("contour", "filled", "surface3d", "line1d"):
        assert_figure(tmp_path / "surface" / name)


def test_surface_1d_and_between_two_and_three_checkpoints(lab, tmp_path):
    a, b = lab / "a" / "model.pt", lab / "b" / "model.pt"
    assert cli("surface", *M, "--checkpoint", a, "--dims", "1", "--x=-1:1:5", "--name", "line", "--no-plot",
               out=tmp_path) == 0
    assert read_surface(tmp_path / "line.h5")["train_loss"].shape == (5,)

    assert cli("surface", *M, "--checkpoint", a, "--checkpoint", b, "--bn", "running", "--x=0:1:3",
               "--name", "between", "--no-plot", out=tmp_path) == 0
    s = read_surface(tmp_path / "between.h5")
    assert s.attrs["direction"] == "interpolation"
    x, y, _, _ = make_data()
    assert s["train_loss"][0] == pytest.approx(evaluate(trained(lab, "a"), x, y).loss, rel=1e-5)

    torch.manual_seed(5)
    third = tmp_path / "c.pt"
    torch.save(make_model().state_dict(), third)
    assert cli("surface", *M, "--checkpoint", a, "--checkpoint", b, "--checkpoint", third, "--n", "3",
               "--name", "plane", "--no-plot", out=tmp_path) == 0
    p = read_surface(tmp_path / "plane.h5")
    assert p["train_loss"].shape == (3, 3) and p.extra["point_coordinates"].shape == (3, 2)
    assert p.attrs["direction"] == "plane" and p.attrs["bn"] == "recompute"


def test_interpolate_has_both_models_at_zero_and_one(lab, tmp_path):
    assert cli("interpolate", *M, "--checkpoint", lab / "a" / "model.pt", "--checkpoint", lab / "b" / "model.pt",
               "--alpha=-0.5:1.5:5", out=tmp_path) == 0
    s = read_surface(tmp_path / "interpolation.h5")
    np.testing.assert_allclose(s.xcoordinates, [-0.5, 0.0, 0.5, 1.0, 1.5])
    x, y, xt, yt = make_data()
    data = api.as_data((x, y, xt, yt))
    ends = [api.surface(trained(lab, n), data, dims=1, x=[0.0], bn="recompute")["train_loss"][0] for n in "ab"]
    np.testing.assert_allclose(s["train_loss"][[1, 3]], ends, rtol=1e-6)
    assert_figure(tmp_path / "interpolation" / "line1d")


def test_hessian_uncertified_eigenvalues_are_written_as_such_with_a_warning(lab, tmp_path, capsys):
    assert cli("hessian", *M, "--checkpoint", lab / "a" / "model.pt", "--top-k", "3", "--max-iter", "4",
               out=tmp_path) == 0
    result = json.loads((tmp_path / "hessian.json").read_text())["eigenvalues"]
    assert result["converged"] is False and result["reason"] and result["products"] == 4
    assert len(result["certified"]) == 3 and len(result["tolerances"]) == 3
    err = capsys.readouterr().err
    assert "not certified" in err
    # the kernel pin is on by default, said on stderr and recorded with the numbers
    assert "losslab: cpu kernels pinned to" in err
    platform = json.loads((tmp_path / "hessian.json").read_text())["platform"]
    assert platform["cpu_kernels"] == "pinned" and platform["torch"] == torch.__version__.split("+")[0]


def test_hessian_eigenvalues_trace_and_density(lab, tmp_path):
    assert cli("hessian", *M, "--checkpoint", lab / "a" / "model.pt", "--top-k", "2", "--density-runs", "1",
               "--density-steps", "12", "--trace-probes", "8", out=tmp_path) == 0
    result = json.loads((tmp_path / "hessian.json").read_text())
    x, y, _, _ = make_data()
    model = trained(lab)
    eig = api.hessian_eigenvalues(model, (x, y), k=2)
    assert result["eigenvalues"]["values"] == pytest.approx(eig.values.tolist(), rel=1e-9)
    assert result["eigenvalues"]["converged"] and result["n"] == 96 and result["dim"] == 83
    # the top eigenvalue is the largest of the exact Hessian's (83 x 83 here)
    from losslab.core.hessian import TrainingLoss

    dense = np.linalg.eigvalsh(TrainingLoss(model, x, y).hessian_matrix().double().numpy())
    assert result["eigenvalues"]["values"][0] == pytest.approx(dense[-1], rel=1e-3)
    assert abs(result["trace"]["value"] - dense.sum()) < 4 * result["trace"]["stderr"] + 1e-6
    with h5py.File(tmp_path / "density.h5") as f:
        assert f["grid"].shape == f["density"].shape and f["nodes"].shape == (1, 12)
        assert f["weights"][()].sum() == pytest.approx(1.0)
    assert_figure(tmp_path / "density")


def test_sharpness_is_relative_to_the_models_loss(lab, tmp_path, capsys):
    assert cli("sharpness", *M, "--checkpoint", lab / "a" / "model.pt", "--eps", "1e-3", "--eps", "1e-2",
               "--maxiter", "3", out=tmp_path) == 0
    rows = json.loads((tmp_path / "sharpness.json").read_text())["values"]
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"losslab sharpness: epsilon-sharpness {rows[0]['value']:.4g}% at eps 0.001, {rows[1]['value']:.4g}% at eps "
        f"0.01 (loss at the centre {rows[0]['loss']:.4g})")
    x, y, _, _ = make_data()
    loss = evaluate(trained(lab), x, y).loss
    assert [r["eps"] for r in rows] == [1e-3, 1e-2]
    for r in rows:
        assert r["loss"] == pytest.approx(loss, rel=1e-5)
        assert r["max_loss"] >= r["loss"]
        assert r["value"] == pytest.approx((r["max_loss"] - r["loss"]) / (1 + r["loss"]) * 100)
    assert rows[1]["value"] > rows[0]["value"] > 0  # a larger box holds a higher loss
    for r in rows:  # the multistart default names the start that won and each start's best loss
        assert r["start"] in r["starts"] and r["starts"][r["start"]] == pytest.approx(r["max_loss"], rel=1e-12)
    assert cli("sharpness", *M, "--checkpoint", lab / "a" / "model.pt", "--eps", "1e-3", "--maxiter", "3",
               "--method", "keskar", out=tmp_path / "k") == 0
    (keskar,) = json.loads((tmp_path / "k" / "sharpness.json").read_text())["values"]
    assert list(keskar["starts"]) == ["zero"] and keskar["max_loss"] <= rows[0]["max_loss"]


def test_curve_is_trained_and_evaluated_with_bn_recomputed(lab, tmp_path, capsys):
    a, b = lab / "a" / "model.pt", lab / "b" / "model.pt"
    assert cli("curve", *M, "--checkpoint", a, "--checkpoint", b, "--epochs", "2", "--batch-size", "32",
               "--t", "5", "--kind", "polychain", out=tmp_path) == 0
    ev = read_curve_evaluation(tmp_path / "curve.h5")
    np.testing.assert_allclose(ev.t, np.linspace(0, 1, 5))
    assert ev.attrs["bn"] == "recompute" and ev.attrs["kind"] == "polychain"
    # phi(0) = w0 and phi(1) = w1: the curve and the segment agree at the ends
    for q in ("train_loss", "test_err"):
        assert ev.values[q][[0, -1]] == pytest.approx(ev.values[f"segment_{q}"][[0, -1]])
    curve = load_curve(tmp_path / "curve.pt")
    assert torch.equal(curve.point(0.0), flatten(trained(lab, "a")))
    assert not torch.equal(curve.point(0.5), 0.5 * (curve.w0 + curve.w1))  # the bend moved
    metrics = json.loads((tmp_path / "curve.json").read_text())["metrics"]
    assert metrics["train_loss_max"] == pytest.approx(ev.values["train_loss"].max())
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"losslab curve: polychain curve: train loss max {metrics['train_loss_max']:.4g} (barrier "
        f"{metrics['train_loss_barrier']:.4g}), segment barrier {metrics['segment_train_loss_barrier']:.4g}; "
        f"test error max {metrics['test_err_max']:.4g}")
    assert_figure(tmp_path / "curve")


def test_mpo_fits_a_plane_to_a_pattern(lab, tmp_path, capsys):
    assert cli("mpo", *M, "--pattern", "cross", "--size", "3", "--steps", "3", "--cells-per-step", "4",
               "--batch-size", "32", out=tmp_path) == 0
    with np.load(tmp_path / "mpo.npz") as f:
        assert f["train_acc"].shape == f["test_loss"].shape == (3, 3)
        assert set(np.unique(f["pattern"])) == {0, 1}
    metrics = json.loads((tmp_path / "mpo.json").read_text())["metrics"]
    assert 0.0 <= metrics["train_black_acc"] <= 1.0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"losslab mpo: pattern 3x3: train accuracy {100 * metrics['train_black_acc']:.1f}% in black cells, "
        f"{100 * metrics['train_white_acc']:.1f}% in white (test: {100 * metrics['test_black_acc']:.1f}%, "
        f"{100 * metrics['test_white_acc']:.1f}%)")
    assert_figure(tmp_path / "mpo")


def test_plot_redraws_the_figures_of_a_file(lab, tmp_path, capsys):
    assert cli("surface", *M, "--checkpoint", lab / "a" / "model.pt", "--x=-1:1:3", "--y=-1:1:3", "--no-plot",
               out=tmp_path) == 0
    s = read_surface(tmp_path / "surface.h5")
    loss = s["train_loss"]
    assert capsys.readouterr().err.splitlines()[-1] == (  # the centre is the model itself
        f"losslab surface: train loss {loss.min():.4g} to {loss.max():.4g} over 3 x 3 points; at the origin "
        f"{loss[1, 1]:.4g} (accuracy {100 * s['train_acc'][1, 1]:.2f}%)")
    x, y, _, _ = make_data()
    assert loss[1, 1] == pytest.approx(evaluate(trained(lab), x, y).loss, rel=1e-5)
    assert not (tmp_path / "surface").exists()
    assert cli("plot", tmp_path / "surface.h5", "--title", "mine", out=tmp_path / "figs") == 0
    for name in ("contour", "filled", "surface3d", "line1d"):
        assert_figure(tmp_path / "figs" / name)


def test_data_may_come_as_dataloaders(lab, tmp_path):
    assert cli("sharpness", "--model", f"{MODULE}:make_model", "--data", f"{MODULE}:make_loaders",
               "--checkpoint", lab / "a" / "model.pt", "--eps", "1e-3", "--maxiter", "2", out=tmp_path) == 0
    (row,) = json.loads((tmp_path / "sharpness.json").read_text())["values"]
    x, y, _, _ = make_data()
    assert row["loss"] == pytest.approx(evaluate(trained(lab), x, y).loss, rel=1e-5)


# ---------------------------------------------------------------- errors ----------------------------------

def _error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exc:
        cli(*args)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("model, message", [
    ("nosuch_pkg_xyz:fn", "--model 'nosuch_pkg_xyz:fn': module 'nosuch_pkg_xyz' not found"),
    (f"{MODULE}", f"--model '{MODULE}': expected an entry point 'package.module:function'"),
    (f"{MODULE}:nope", f"--model '{MODULE}:nope': module '{MODULE}' has no attribute 'nope'"),
    (f"{MODULE}:not_a_model", f"--model '{MODULE}:not_a_model': returned a int, not a torch.nn.Module"),
    (f"{MODULE}:broken_model", f"--model '{MODULE}:broken_model': calling it failed: RuntimeError: no GPU here"),
])
def test_a_bad_model_entry_point_is_named(lab, tmp_path, capsys, model, message):
    err = _error(capsys, "hessian", "--model", model, "--data", f"{MODULE}:make_data",
                 "--checkpoint", lab / "a" / "model.pt", "--out", tmp_path)
    assert "losslab hessian: error: " + message in err


def test_bad_data_and_checkpoints_are_named(lab, tmp_path, capsys):
    ck = lab / "a" / "model.pt"
    err = _error(capsys, "sharpness", "--model", f"{MODULE}:make_model", "--data", f"{MODULE}:make_model",
                 "--checkpoint", ck, "--out", tmp_path)
    assert f"--data '{MODULE}:make_model': train data: expected (x, y) tensors or a DataLoader" in err

    other = tmp_path / "other.pt"
    torch.save(OtherNet().state_dict(), other)
    err = _error(capsys, "sharpness", *M, "--checkpoint", other, "--out", tmp_path)
    assert f"--checkpoint '{other}'" in err and "another architecture than GatedConvNet" in err
    assert "missing keys ['bn.weight'" in err
    assert "shape mismatch conv.weight: file (5, 1, 3, 3), model (4, 1, 3, 3)" in err

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(ck.read_bytes()[:200])
    err = _error(capsys, "surface", *M, "--checkpoint", corrupt, "--out", tmp_path)
    assert f"--checkpoint '{corrupt}'" in err and "cannot be read as a checkpoint" in err

    err = _error(capsys, "surface", *M, "--checkpoint", tmp_path / "missing.pt", "--out", tmp_path)
    assert "missing.pt': no such file" in err
    err = _error(capsys, "curve", *M, "--checkpoint", ck, "--out", tmp_path)
    assert "--checkpoint: expected 2 checkpoint(s), got 1" in err
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--x", "1:2", "--out", tmp_path)
    assert "argument --x: expected START:STOP:NUM" in err
    err = _error(capsys, "plot", tmp_path / "other.pt", "--out", tmp_path)
    assert "other.pt" in err and "not an HDF5 file" in err


def test_a_surface_file_of_other_arguments_is_refused_not_reused(lab, tmp_path, capsys):
    ck = lab / "a" / "model.pt"
    assert cli("surface", *M, "--checkpoint", ck, "--dims", "1", "--x=-1:1:3", out=tmp_path) == 0
    assert cli("surface", *M, "--checkpoint", ck, "--dims", "1", "--x=-1:1:4", out=tmp_path) == 1
    err = capsys.readouterr().err
    assert "losslab surface: error: " in err and "holds surface.h5 computed with other arguments (--x: " in err


# ---------------------------------------------------------------- the installed command ---------------------

def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def test_the_console_script_lists_the_subcommands():
    exe = shutil.which("losslab")
    assert exe is not None, "the losslab console script is not installed (pip install -e .)"
    proc = subprocess.run([exe, "--help"], check=False, capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "surface", "interpolate", "hessian", "sharpness", "curve", "mpo", "plot", "ratio-map",
                    "curve-plane", "export-vtp", "convert"):
        assert re.search(rf"^\s+{command}\b", proc.stdout, re.MULTILINE), command


def test_parsing_any_option_imports_neither_numpy_nor_torch():
    """The parser runs before the CPU kernel pin (``cpu_kernels.apply``): an option type that imported NumPy
    (``plot --levels`` did) made the pin fail in the console script, though not in-process tests."""
    argvs = [["plot", "f.h5", "--out", "o", "--levels", "log:5", "--xlim=-1:1", "--ylim=0:2", "--vmin", "0.1"],
             ["surface", *M, "--out", "o", "--checkpoint", "c", "--x=-1:1:3", "--y=0:1:2", "--stats-batch", "all",
              "--directions", "d.h5"],
             ["hessian", *M, "--out", "o", "--checkpoint", "c", "--eigenvector-line=-1:1:3", "--chunk", "auto",
              "--per-layer"],
             ["ratio-map", *M, "--out", "o", "--checkpoint", "c", "--tol", "0.01"],
             ["export-vtp", "f.h5", "--out", "o", "--interp", "5", "--zmax", "3"],
             ["convert", "a.h5", "b.h5", "--to", "li"]]
    code = ("import sys, json\nfrom losslab.cli import make_parser\nparser, _ = make_parser()\n"
            f"for argv in json.loads({json.dumps(json.dumps(argvs))}):\n    parser.parse_args(argv)\n"
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                          env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_console_script_plots_with_contour_levels(lab, tmp_path):
    assert cli("surface", *M, "--checkpoint", lab / "a" / "model.pt", "--x=-1:1:3", "--y=-1:1:3", "--no-plot",
               out=tmp_path) == 0
    proc = subprocess.run([shutil.which("losslab"), "plot", str(tmp_path / "surface.h5"), "--levels", "log:5",
                           "--out", str(tmp_path / "figures")], check=False, capture_output=True, text=True,
                          timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "figures" / "contour.png").is_file()


def test_the_console_script_imports_the_users_module_from_the_current_directory(lab, tmp_path):
    """As ``python -m`` does: no PYTHONPATH, the module found in the working directory."""
    work = tmp_path / "project"
    work.mkdir()
    write_user_module(work)
    proc = subprocess.run(["losslab", "sharpness", *M, "--checkpoint", str(lab / "a" / "model.pt"), "--eps", "1e-3",
                           "--maxiter", "2", "--out", "out", "--threads", "1"], check=False, cwd=work,
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(Path("out") / "sharpness.json")]
    assert json.loads((work / "out" / "sharpness.json").read_text())["values"][0]["value"] >= 0


# ---------------------------------------------------------------- the README ------------------------------

def readme_commands() -> str:
    """The shell block(s) under the README's "## Your own model" heading."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Your own model\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert match, "README.md has no '## Your own model' section"
    blocks = re.findall(r"^```(?:bash|sh|shell)\n(.*?)^```", match.group(1), re.DOTALL | re.MULTILINE)
    assert blocks, "the 'Your own model' section has no ```bash block"
    return "\n".join(blocks)


def test_the_readme_commands_run_as_written(tmp_path):
    commands = readme_commands()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # what a clean clone holds
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], check=False, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    outs = re.findall(r"--out[ =](\S+)", commands)
    assert outs, "the README commands name no --out directory"
    written = [line for line in proc.stdout.split() if line]
    assert written and all((tmp_path / line).is_file() for line in written)
    for out in outs:
        assert any((tmp_path / out).iterdir()), out


def test_device_and_eval_autocast_options(lab, tmp_path, capsys):
    """``--eval-autocast bf16`` evaluates the surface in bfloat16 (recorded in the file's evaluator spec, and
    close to the exact float32 surface); ``--device cpu`` is the CPU; ``--device cuda`` without a GPU is a clear
    error, before any compute."""
    from losslab.core import placement as pl

    assert DEVICES == pl.DEVICES and AUTOCASTS == pl.AUTOCASTS
    ck = lab / "a" / "model.pt"
    args = ("surface", *M, "--checkpoint", ck, "--dims", "1", "--x=-1:1:3", "--no-plot")
    assert cli(*args, "--device", "cpu", out=tmp_path / "exact") == 0
    assert cli(*args, "--device", "cpu", "--eval-autocast", "bf16", out=tmp_path / "half") == 0
    exact, half = read_surface(tmp_path / "exact" / "surface.h5"), read_surface(tmp_path / "half" / "surface.h5")
    assert {s["autocast"] for s in half.spec["evaluators"].values()} == {"bf16"}
    assert "autocast" not in exact.spec["evaluators"]["train"]
    assert not np.array_equal(half["train_loss"], exact["train_loss"])
    np.testing.assert_allclose(half["train_loss"], exact["train_loss"], rtol=5e-2)
    if not torch.cuda.is_available():
        capsys.readouterr()
        assert cli(*args, "--device", "cuda", out=tmp_path / "gpu") == 1
        assert "--device: 'cuda' was requested but no CUDA GPU" in capsys.readouterr().err
        assert not (tmp_path / "gpu").exists()


# ---------------------------------------------------------------- convert (Li et al.'s files) --------------

def _their_surface(path: Path, xs: np.ndarray, ys: np.ndarray) -> None:
    """A surface file as Li et al.'s plot_surface writes it: shape (len(x), len(y)) filled in meshgrid(x, y)
    order, accuracies in percent; loss 3 + x + 0.1 y at (x, y)."""
    xm, ym = np.meshgrid(xs, ys)
    losses, accs = -np.ones((len(xs), len(ys))), -np.ones((len(xs), len(ys)))
    for ind in range(losses.size):
        losses.ravel()[ind] = 3.0 + xm.ravel()[ind] + 0.1 * ym.ravel()[ind]
        accs.ravel()[ind] = 100. * (40 + ind) / 97
    with h5py.File(path, "w") as f:
        f["dir_file"], f["xcoordinates"], f["ycoordinates"] = "model.t7_weights.h5", xs, ys
        f["train_loss"], f["train_acc"] = losses, accs


def test_convert_their_surface_to_losslab_and_back(tmp_path, capsys):
    xs, ys = np.linspace(-1, 1, 3), np.linspace(-2, 2, 5)
    _their_surface(tmp_path / "li.h5", xs, ys)
    assert cli("convert", tmp_path / "li.h5", tmp_path / "ours.h5") == 0
    cap = capsys.readouterr()
    assert cap.out.splitlines() == [str(tmp_path / "ours.h5")]
    assert cap.err.splitlines()[-1] == (f"losslab convert: wrote {tmp_path / 'ours.h5'} in losslab's layout: a "
                                        f"2-D surface of 3 x 5 points (train_loss, train_acc), 15 computed")
    s = read_surface(tmp_path / "ours.h5")
    assert s.spec["imported"] == "li" and s["train_loss"][2, 0] == 3.0 + 1.0 + 0.1 * -2.0
    assert cli("convert", tmp_path / "ours.h5", tmp_path / "back.h5") == 0
    assert capsys.readouterr().err.splitlines()[-1].endswith("(train_loss, train_acc; accuracies in percent), "
                                                             "15 computed")
    with h5py.File(tmp_path / "li.h5", "r") as a, h5py.File(tmp_path / "back.h5", "r") as b:
        assert sorted(a) == sorted(b)
        assert a["train_acc"][()].tobytes() == b["train_acc"][()].tobytes()  # bitwise, shape (5, 3) now
        assert b["train_loss"].shape == (5, 3)


def test_convert_directions_needs_the_model_for_li(lab, tmp_path, capsys):
    from losslab.core.directions import random_directions, save_directions

    save_directions(tmp_path / "d.h5", random_directions(make_model(), 0, dims=2))
    err = _error(capsys, "convert", tmp_path / "d.h5", tmp_path / "li.h5")
    assert f"losslab convert: error: --model: needed to write the direction file IN '{tmp_path / 'd.h5'}'" in err
    assert cli("convert", tmp_path / "d.h5", tmp_path / "li.h5", "--model", f"{MODULE}:make_model") == 0
    n = sum(p.numel() for p in make_model().parameters())
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"losslab convert: wrote {tmp_path / 'li.h5'} in Li et al.'s layout: 2 direction(s) of {n} weights, "
        f"{len(list(make_model().parameters()))} tensors each")
    with h5py.File(tmp_path / "li.h5", "r") as f:  # h5_util.read_list
        grp = f["xdirection"]
        assert [grp[str(i)].shape for i in range(len(grp))] == [p.shape for p in make_model().parameters()]
    assert cli("convert", tmp_path / "li.h5", tmp_path / "back.h5", "--to", "losslab") == 0


def test_convert_bad_inputs_are_named(lab, tmp_path, capsys):
    (tmp_path / "text.h5").write_text("no")
    assert f"error: IN '{tmp_path / 'text.h5'}': {tmp_path / 'text.h5'}: not an HDF5 file" in _error(
        capsys, "convert", tmp_path / "text.h5", tmp_path / "o.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["t"] = np.zeros(2)
    assert "neither a surface file (dataset xcoordinates) nor a direction file" in _error(
        capsys, "convert", tmp_path / "other.h5", tmp_path / "o.h5")
    assert f"IN '{tmp_path / 'nope.h5'}': {tmp_path / 'nope.h5'}: no such file" in _error(
        capsys, "convert", tmp_path / "nope.h5", tmp_path / "o.h5")
    _their_surface(tmp_path / "li.h5", np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    assert "--model: IN" in _error(capsys, "convert", tmp_path / "li.h5", tmp_path / "o.h5", "--model",
                                   f"{MODULE}:make_model")
    with h5py.File(tmp_path / "dirs.h5", "w") as f:  # one tensor too few for the model
        grp = f.create_group("xdirection")
        for i, p in enumerate(list(make_model().parameters())[:-1]):
            grp.create_dataset(str(i), data=np.zeros(tuple(p.shape), np.float32))
    err = _error(capsys, "convert", tmp_path / "dirs.h5", tmp_path / "o.h5", "--model", f"{MODULE}:make_model")
    assert f"IN '{tmp_path / 'dirs.h5'}': {tmp_path / 'dirs.h5'}: xdirection holds 7 tensors; GatedConvNet has 8" in err
    assert not (tmp_path / "o.h5").exists()


def test_convert_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--to {li,losslab} the layout of OUT: li or losslab (default: the other one than IN's)" in text
    assert "(default: none)" in text and "IN a surface or direction file in either layout (detected)" in text
# ---------------------------------------------------------------- directions across models ----------------

def _loss_at(model: nn.Module, vec: torch.Tensor) -> float:
    torch.nn.utils.vector_to_parameters(vec, model.parameters())
    x, y, _, _ = make_data()
    return evaluate(model.eval(), x, y).loss


def test_one_directions_file_is_reused_across_two_checkpoints(lab, tmp_path):
    """Two checkpoints of the user's BN conv net: the directions the first surface drew are written beside it and
    drive the second, exactly as saved (--no-renormalize) or re-normalized to the second's filters (default)."""
    grid = ["--x=-0.5:0.5:3", "--y=-0.5:0.5:3", "--no-plot"]
    assert cli("surface", *M, "--checkpoint", lab / "a" / "model.pt", *grid, out=tmp_path / "a") == 0
    shared = tmp_path / "a" / "surface.directions.h5"
    drawn = load_directions(shared)
    assert drawn.kind == "random" and drawn.norm == "filter" and drawn.seed == 0

    assert cli("surface", *M, "--checkpoint", lab / "b" / "model.pt", "--directions", shared, "--no-renormalize",
               *grid, out=tmp_path / "b") == 0
    used = load_directions(tmp_path / "b" / "surface.directions.h5")
    assert torch.equal(used.x, drawn.x) and torch.equal(used.y, drawn.y)  # the same direction vectors
    s = read_surface(tmp_path / "b" / "surface.h5")
    assert s.attrs["directions_sha256"] == file_hash(shared) and "renormalized" not in s.attrs
    b = trained(lab, "b")
    assert s["train_loss"][2, 0] == pytest.approx(_loss_at(b, flatten(b) + 0.5 * drawn.x - 0.5 * drawn.y), rel=1e-5)

    assert cli("surface", *M, "--checkpoint", lab / "b" / "model.pt", "--directions", shared, *grid,
               out=tmp_path / "b_per_network") == 0
    per_network = load_directions(tmp_path / "b_per_network" / "surface.directions.h5")
    fresh = random_directions(trained(lab, "b"), seed=0)  # b's own filter-normalized draw of the same seed
    torch.testing.assert_close(per_network.x, fresh.x, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(per_network.y, fresh.y, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(per_network.x, drawn.x)
    assert read_surface(tmp_path / "b_per_network" / "surface.h5").attrs["renormalized"]


def test_directions_of_another_model_or_in_the_wrong_place_are_named(lab, tmp_path, capsys):
    ck = lab / "a" / "model.pt"
    other = tmp_path / "other.h5"
    save_directions(other, random_directions(OtherNet(), seed=0))
    n_other, n_ours = flatten(OtherNet()).numel(), flatten(make_model()).numel()
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--directions", other, "--out", tmp_path)
    assert f"--directions: {other}: xdirection has {n_other} entries but the model has {n_ours} weights" in err
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--directions", tmp_path / "surface.directions.h5",
                 "--out", tmp_path)
    assert "no such file" in err
    (tmp_path / "surface.directions.h5").write_bytes(other.read_bytes())
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--directions", tmp_path / "surface.directions.h5",
                 "--out", tmp_path)
    assert "this surface writes its own directions there" in err
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--checkpoint", ck, "--directions", other,
                 "--out", tmp_path)
    assert "--directions: only around one checkpoint (got 2)" in err
    err = _error(capsys, "surface", *M, "--checkpoint", ck, "--bn", "interpolate", "--out", tmp_path)
    assert "--bn interpolate: only between two checkpoints" in err
    err = _error(capsys, "interpolate", *M, "--checkpoint", ck, "--checkpoint", ck, "--stats-batch", "half",
                 "--out", tmp_path)
    assert "argument --stats-batch: expected a positive integer or 'all', not 'half'" in err


def test_surface_on_the_pca_plane_of_a_users_trajectory(lab, tmp_path):
    """Li et al.'s Figure 9 for a model outside the zoo: checkpoints saved by the user, the final one last."""
    x, y, xt, yt = make_data()
    torch.manual_seed(3)
    model = make_model()
    snapshots = []
    for epoch in range(1, 5):
        api.train(model, (x, y, xt, yt), epochs=1, lr=0.1, batch_size=32, seed=epoch)
        snapshots.append(tmp_path / f"epoch{epoch}.pt")
        torch.save(model.state_dict(), snapshots[-1])
    assert cli("surface", *M, "--checkpoint", snapshots[-1], "--pca-trajectory", *snapshots, "--n", "3",
               out=tmp_path / "out") == 0
    s = read_surface(tmp_path / "out" / "surface.h5")
    pca = api.trajectory_directions(trained_from(snapshots[-1]), snapshots)
    np.testing.assert_allclose(s.extra["trajectory"], pca.coordinates)
    np.testing.assert_allclose(s.xcoordinates, pca.grid(3, 0.2)[0])
    assert s.attrs["direction"] == "pca" and s["train_loss"].shape == (3, 3)
    stored = load_directions(tmp_path / "out" / "surface.directions.h5")
    assert stored.kind == "pca" and torch.equal(stored.x, pca.directions.x)
    assert_figure(tmp_path / "out" / "surface" / "trajectory")


def trained_from(path: Path) -> nn.Module:
    model = make_model()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def test_interpolate_with_interpolated_bn_statistics_and_a_recorded_statistics_batch(lab, tmp_path):
    a, b = lab / "a" / "model.pt", lab / "b" / "model.pt"
    assert cli("interpolate", *M, "--checkpoint", a, "--checkpoint", b, "--bn", "interpolate", "--alpha=0:1:3",
               "--no-plot", out=tmp_path) == 0
    s = read_surface(tmp_path / "interpolation.h5")
    x, y, _, _ = make_data()
    assert s.attrs["bn"] == "interpolate"
    # the ends are the two models with their own running statistics
    np.testing.assert_allclose(s["train_loss"][[0, 2]], [evaluate(trained(lab, n), x, y).loss for n in "ab"],
                               rtol=1e-6)
    ab = load_directions(tmp_path / "interpolation.directions.h5")
    assert ab.kind == "interpolation" and torch.equal(ab.x, flatten(trained(lab, "b")) - flatten(trained(lab, "a")))
    assert cli("interpolate", *M, "--checkpoint", a, "--checkpoint", b, "--stats-batch", "all", "--alpha=0:1:3",
               "--no-plot", "--name", "all", out=tmp_path) == 0
    assert read_surface(tmp_path / "all.h5").spec["evaluators"]["train"]["stats_batch"] == "all"
# ---------------------------------------------------------------- parity with the papers' tools -----------
# hessian --eigenvector-line / --per-layer, ratio-map, curve-plane, export-vtp, plot options, DataParallel
# checkpoints, the summary line (tests/core/test_parity.py checks the numbers against exact answers)

def _summary(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_hessian_eigenvector_line_and_per_layer_spectra(lab, tmp_path, capsys):
    ck = lab / "a" / "model.pt"
    capsys.readouterr()
    assert cli("hessian", *M, "--checkpoint", ck, "--density-runs", "0", "--trace-probes", "0",
               "--eigenvector-line=-1:1:5", "--per-layer", "--per-layer-by", "module", "--per-layer-trace-probes", "3",
               "--no-plot", out=tmp_path) == 0
    summary = _summary(capsys)
    result = json.loads((tmp_path / "hessian.json").read_text())
    top = result["eigenvalues"]["values"][0]
    assert summary.startswith("losslab hessian: largest eigenvalue(s) ") and "4 layer blocks" in summary
    assert result["eigenvector_line"]["eigenvalue"] == pytest.approx(top, rel=1e-9)
    assert f"lambda_1 = {top:.6g}" in summary
    blocks = result["per_layer"]["blocks"]
    assert [(b["name"], b["size"]) for b in blocks] == [("conv", 40), ("bn", 8), ("gate", 20), ("head", 15)]
    assert all(b["values"][0] <= top * (1 + 1e-3) and "trace" in b for b in blocks)  # Cauchy interlacing
    line = read_surface(tmp_path / "eigenvector_line.h5")
    x, y, _, _ = make_data()
    assert line["train_loss"][2] == pytest.approx(evaluate(trained(lab), x, y).loss, rel=1e-5)
    assert line.attrs["direction"] == "hessian_eigenvector" and line.attrs["checkpoint_sha256"]


def test_ratio_map_curve_plane_export_and_plot_options(lab, tmp_path, capsys):
    from losslab.core.curves import make_curve, save_curve

    ck = lab / "a" / "model.pt"
    capsys.readouterr()
    assert cli("ratio-map", *M, "--checkpoint", ck, "--x=-1:1:2", "--y=-1:1:2", "--n-train", "24", out=tmp_path) == 0
    assert re.match(r"losslab ratio-map: ratio map 2x2: \|lambda_min / lambda_max\| mean \S+, max \S+; "
                    r"\d of 4 points certified$", _summary(capsys))
    m = read_surface(tmp_path / "ratio_map.h5")
    assert m["ratio"].shape == (2, 2) and np.all(m["ratio"] >= 0)
    assert_figure(tmp_path / "ratio_map" / "ratio")

    curve = make_curve("bezier", flatten(trained(lab, "a")), flatten(trained(lab, "b")), 1)
    with torch.no_grad():
        curve.bends[0] += 0.3
    save_curve(tmp_path / "curve.pt", curve)
    assert cli("curve-plane", *M, "--curve", tmp_path / "curve.pt", "--n", "3", "--t", "4", "--n-train", "24",
               "--n-test", "12", out=tmp_path / "plane") == 0
    assert _summary(capsys).startswith("losslab curve-plane: curve plane 3x3: train loss ")
    plane = read_surface(tmp_path / "plane" / "curve_plane.h5")
    assert plane.extra["curve_coordinates"].shape == (4, 2) and plane.attrs["bn"] == "recompute"
    assert_figure(tmp_path / "plane" / "curve_plane" / "contour")

    assert cli("export-vtp", tmp_path / "plane" / "curve_plane.h5", "--log", "--zmax", "5", out=tmp_path / "vtp") == 0
    assert (tmp_path / "vtp" / "curve_plane_train_loss_zmax=5_log.vtp").is_file()
    assert "ParaView surface train_loss (log)" in _summary(capsys)

    assert cli("plot", tmp_path / "plane" / "curve_plane.h5", "--xlim=-1:2", "--levels", "log:5", "--vmin", "0.1",
               out=tmp_path / "figs") == 0
    assert _summary(capsys) == f"losslab plot: 3 figure(s) of curve_plane.h5 in {tmp_path / 'figs'}"


def test_a_dataparallel_checkpoint_loads_through_the_cli(lab, tmp_path):
    from losslab import io as lio

    state = torch.load(lab / "a" / "model.pt", weights_only=True)
    lio.save_torch(tmp_path / "dp.pt", {f"module.{k}": v for k, v in state.items()})
    assert cli("surface", *M, "--checkpoint", tmp_path / "dp.pt", "--dims", "1", "--x=0:0:1", "--no-plot",
               out=tmp_path) == 0
    x, y, _, _ = make_data()
    assert read_surface(tmp_path / "surface.h5")["train_loss"][0] == pytest.approx(
        evaluate(trained(lab), x, y).loss, rel=1e-5)


@pytest.mark.parametrize("args, message", [
    (("plot", "FILE", "--xlim=1:0"), "argument --xlim: expected LO:HI with LO < HI"),
    (("plot", "FILE", "--levels", "0.3,0.1"), "--levels: levels '0.3,0.1': expected"),
    (("plot", "FILE", "--vmin", "2", "--vmax", "1"), "--vmin 2: must be below --vmax 1"),
    (("export-vtp", "FILE", "--name", "nosuch"), "no surface named 'nosuch'"),
    (("curve-plane", *M, "--curve", "gone.pt"), "--curve 'gone.pt': no such file"),
    (("curve-plane", *M, "--curve", "CURVE", "--bend", "2"), "--bend 2: the curve has 1 bend(s)"),
    (("hessian", *M, "--checkpoint", "CK", "--eigenvector-line", "1:2"), "argument --eigenvector-line: expected"),
    (("hessian", *M, "--checkpoint", "CK", "--per-layer", "--per-layer-trace-probes", "-1"),
     "--per-layer-trace-probes: must be >= 0"),
    (("ratio-map", *M, "--checkpoint", "CK", "--tol", "0"), "argument --tol: expected a positive number"),
    (("hessian", *M, "--checkpoint", "CK", "--eigenvector-line=-1:1:3", "--eigenvector-k", "84"),
     "--eigenvector-k 84: the Hessian of the --model has only 83 eigenvalues"),
    (("curve-plane", *M, "--curve", "FLAT"), "FLAT.pt': the three weight vectors are collinear"),
])
def test_bad_parity_arguments_are_named(lab, tmp_path, capsys, args, message):
    from losslab.core.curves import make_curve, save_curve

    w = flatten(trained(lab))
    save_curve(tmp_path / "curve.pt", make_curve("bezier", w, w + 1.0, 1))
    save_curve(tmp_path / "FLAT.pt", make_curve("bezier", w, w + 2.0, 1))  # bends on the segment
    api.surface(trained(lab), make_data(), dims=2, x=(-1.0, 1.0, 2), y=(-1.0, 1.0, 2), path=tmp_path / "s.h5")
    subst = {"FILE": tmp_path / "s.h5", "CURVE": tmp_path / "curve.pt", "CK": lab / "a" / "model.pt",
             "FLAT": tmp_path / "FLAT.pt"}
    err = _error(capsys, *[subst.get(a, a) for a in args], "--out", tmp_path / "out")
    assert message in err


def test_every_option_shows_its_default():
    from losslab.cli import _HelpFormatter, make_parser

    _, subs = make_parser()
    formatter = _HelpFormatter("losslab")
    for name, sub in subs.items():
        for action in sub._actions:
            if not action.option_strings or action.required or action.dest == "help":
                continue
            assert "default" in formatter._get_help_string(action), (name, action.option_strings)
    hessian = re.sub(r"\s+", " ", subs["hessian"].format_help())
    assert "default: none)" in hessian and "--which {largest,smallest,both} which (default: largest)" in hessian
    assert "--orthogonal make the second direction orthogonal to the first (default: off)" in re.sub(
        r"\s+", " ", subs["surface"].format_help())


# ---------------------------------------------------------------- nothing lost, nothing unexplained --------

def test_train_refuses_to_overwrite_a_model_without_force(lab, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(lab / "a", out)
    before = (out / "model.pt").read_bytes()
    args = ["train", *M, "--epochs", "1", "--batch-size", "32", "--seed", "3"]
    err = _error(capsys, *args, "--out", out)
    assert (f"losslab train: error: --out '{out}': {out}/model.pt exists (a trained model); give --force to "
            f"overwrite it, or another --out or --name") in err
    assert (out / "model.pt").read_bytes() == before
    assert cli(*args, "--force", out=out) == 0
    assert (out / "model.pt").read_bytes() != before


def test_reusing_an_output_directory_names_the_arguments_that_differ(lab, tmp_path, capsys):
    common = ["surface", *M, "--dims", "1", "--x=-1:1:3", "--n-train", "16", "--no-plot"]
    assert cli(*common, "--checkpoint", lab / "a" / "model.pt", out=tmp_path) == 0
    capsys.readouterr()
    assert cli(*common, "--checkpoint", lab / "b" / "model.pt", "--x=-1:1:5", out=tmp_path) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"losslab surface: error: --out '{tmp_path}' holds surface.h5 computed with other arguments "
                   f"(--checkpoint: ['{lab}/a/model.pt'] then, ['{lab}/b/model.pt'] now; --x: -1:1:3 then, "
                   f"-1:1:5 now); use another --out or --name, or delete surface.h5 to recompute it")
    assert "sha256" not in err


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_every_file_a_command_writes_takes_the_umask(lab, tmp_path, mask):
    """HDF5 surface, figures (png, pdf, figure data), the args record, checkpoint and history: each with the
    mode a plain open() gives under the umask (0666 & ~umask), each directory 0777 & ~umask."""
    old = os.umask(mask)
    try:
        assert cli("surface", *M, "--checkpoint", lab / "a" / "model.pt", "--dims", "1", "--x=-1:1:3",
                   "--n-train", "16", out=tmp_path / "s" / "deep") == 0
        assert cli("train", *M, "--epochs", "1", "--batch-size", "48", out=tmp_path / "t") == 0
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    files = {p for p in modes if (tmp_path / p).is_file()}
    assert {"s/deep/surface.h5", "s/deep/surface.args.json", "t/model.pt", "t/model.history.json"} <= files
    assert any(p.endswith(".png") for p in files) and any(p.endswith(".pdf") for p in files)
    assert {p: m for p, m in modes.items() if p in files} == {p: 0o666 & ~mask for p in files}
    assert {p: m for p, m in modes.items() if p not in files} == {p: 0o777 & ~mask for p in modes if p not in files}


# ---------------------------------------------------------------- progress of hessian, sharpness, mpo -------

class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("command", [
    ["hessian", "--top-k", "1", "--max-iter", "6", "--density-runs", "1", "--density-steps", "4",
     "--trace-probes", "3", "--no-plot"],
    ["sharpness", "--eps", "1e-3", "--maxiter", "2"],
])
def test_hessian_and_sharpness_draw_progress_on_a_terminal_only(lab, tmp_path, monkeypatch, command):
    argv = [str(a) for a in [*command, *M, "--checkpoint", lab / "a" / "model.pt", "--out", tmp_path]]
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(argv + ["--progress"]) == 0
    shown = terminal.getvalue()
    assert ("Lanczos, 1 largest eigenvalue(s)" in shown and "Hutchinson trace" in shown
            if command[0] == "hessian" else "sharpness eps 0.001, starts" in shown), shown
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(argv + ["--no-progress"]) == 0
    assert "Lanczos" not in quiet.getvalue() and "starts:" not in quiet.getvalue()


def test_mpo_draws_its_steps_on_a_terminal(lab, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["mpo", *M, "--pattern", "cross", "--size", "3", "--steps", "4", "--no-plot", "--out", str(tmp_path),
            "--progress"]
    assert main(argv) == 0
    assert "MPO fit" in terminal.getvalue()
