"""Bad input: a clear error before any compute. One test per row of docs/bad-inputs.md.

Every row checks three things:

* the message names the file or the config key at fault and what is allowed (the ``needles``);
* it stops before any compute: config errors stop ``snakemake`` (non-zero exit) while the Snakefile is read,
  before any job is planned; file errors are raised where the job loads the file, before its first training
  step or grid point (the job's outputs and checkpoints do not appear);
* nothing already computed is deleted: a results tree with finished outputs (sentinels) is byte-for-byte
  the same afterwards, and the bad file itself is left where it was for the user to inspect.

Every config row is checked against the library's validation (``losslab.pipeline.config.resolve``, what the Snakefile
calls first; fast, not ``dag``); seven representative ones also run the real Snakefile (marked ``dag``, ~4 s
each on an idle machine).

The user rows (a researcher's own model and data through the API, the command line and the training loop) check
their message exactly, and that docs/bad-inputs.md's table holds exactly these messages.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
import yaml

from conftest import snakemake
from losslab import api, io as lio
from losslab.cli import main
from losslab.core.data import Prepared
from losslab.core.trainer import Recipe, fit
from losslab.pipeline.registry import load_registry
from losslab.pipeline.config import ConfigError, deep_merge, resolve, run_spec
from losslab.core.data import DataError, use_data_roots
from losslab.claims.surfaces import surface_of_run
from losslab.claims.patterns import run_pattern
from losslab.core.patterns import PatternError
from losslab.core.surfaces import compute_grid, journal_path, read_surface
from losslab.claims.runs import run_key
from losslab.claims.training import prepare_run, train_run

ROOT = Path(__file__).resolve().parents[2]
BASE = {"scale": "smoke", "data_dir": "data", "results": "results", "resources": "resources", "logs": "logs",
        "threads": 1, "progress": False}


# ---------------------------------------------------------------- config rows (the Snakefile refuses) -----

@dataclass
class ConfigRow:
    id: str
    override: dict[str, Any] = field(default_factory=dict)  # written as a --configfile
    args: tuple[str, ...] = ()  # or given as --config key=value
    needles: tuple[str, ...] = ()


def recipe(**kw: Any) -> dict:
    return {"experiments": {"ablation": {"recipe": kw}}}


CONFIG_ROWS = [
    ConfigRow("unknown-scale", args=("scale=huge",),
              needles=("config key 'scale'", "'huge' is not allowed",
                       "allowed values: ['smoke', 'desk', 'cpu', 'paper']")),
    ConfigRow("unknown-model", {"experiments": {"ablation": {"model": {"name": "transformer"}}}},
              needles=("config key 'experiments.ablation.model.name'", "'transformer' is not allowed",
                       "allowed values: ['resnet', 'vgg', 'alexnet', 'convnet', 'mlp']")),
    ConfigRow("unknown-dataset", {"experiments": {"ablation": {"dataset": {"name": "imagenet"}}}},
              needles=("config key 'experiments.ablation.dataset.name'", "'imagenet' is not allowed",
                       "allowed values:", "'cifar10'")),
    ConfigRow("zero-epochs", recipe(epochs=0),
              needles=("config key 'experiments.ablation.recipe.epochs'", "0 is out of range (minimum 1)")),
    ConfigRow("negative-epochs", recipe(epochs=-3),
              needles=("config key 'experiments.ablation.recipe.epochs'", "-3 is out of range (minimum 1)")),
    ConfigRow("nan-lr", recipe(lr=math.nan),
              needles=("config key 'experiments.ablation.recipe.lr'", "nan is not a finite number",
                       "NaN and infinity are not allowed")),
    ConfigRow("negative-lr", recipe(lr=-0.1),
              needles=("config key 'experiments.ablation.recipe.lr'", "-0.1 is out of range (exclusiveMinimum 0)")),
    ConfigRow("unknown-optimizer", recipe(optimizer="lbfgs"),
              needles=("config key 'experiments.ablation.recipe.optimizer'", "'lbfgs' is not allowed",
                       "['sgd', 'momentum', 'nesterov', 'adam', 'adagrad', 'rmsprop']")),
    ConfigRow("misspelt-recipe-key", recipe(momentun=0.9),
              needles=("config key 'experiments.ablation.recipe'", "'momentun' was unexpected", "allowed keys:",
                       "'momentum'")),
    ConfigRow("grid-with-zero-points", {"experiments": {"skip_depth": {"surface": {"x": [-1.0, 1.0, 0]}}}},
              needles=("config key 'experiments.skip_depth.surface.x.2'", "0 is out of range (minimum 3)",
                       "[start, stop, number of points]")),
    ConfigRow("grid-axis-too-short", {"experiments": {"skip_depth": {"surface": {"y": [-1.0, 1.0]}}}},
              needles=("config key 'experiments.skip_depth.surface.y'", "at least 3 item(s) required")),
    ConfigRow("empty-lr-search-grid", {"experiments": {"sgd_vs_gd": {"lr_search": {"grid": []}}}},
              needles=("config key 'experiments.sgd_vs_gd.lr_search.grid'", "at least 1 item(s) required")),
    ConfigRow("empty-seeds", {"experiments": {"ablation": {"seeds": []}}},
              needles=("config key 'experiments.ablation.seeds'", "at least 1 item(s) required")),
    ConfigRow("repeated-seeds", {"experiments": {"ablation": {"seeds": [0, 0]}}},
              needles=("config key 'experiments.ablation.seeds'", "the items must be distinct")),
    ConfigRow("negative-seed", {"experiments": {"ablation": {"seeds": [-1]}}},
              needles=("config key 'experiments.ablation.seeds.0'", "-1 is out of range (minimum 0)")),
    ConfigRow("seeds-not-a-list", {"experiments": {"ablation": {"seeds": "0,1"}}},
              needles=("config key 'experiments.ablation.seeds'", "is not of type 'array'")),
    ConfigRow("threads-not-an-integer", args=("threads=two",),
              needles=("config key 'threads'", "'two' is not of type 'integer'", "torch threads per job")),
    ConfigRow("zero-threads", args=("threads=0",),
              needles=("config key 'threads'", "0 is out of range (minimum 1)")),
    ConfigRow("unknown-experiment", {"experiments": {"ablaton": {"recipe": {"epochs": 3}}}},
              needles=("config key 'experiments.ablaton': unknown experiment 'ablaton' (known: ablation, "
                       "batch_outliers, ",)),
    ConfigRow("unknown-top-level-key", args=("tresholds=1",),
              needles=("config key '<top level>'", "'tresholds' was unexpected", "allowed keys:")),
]


def _as_config(row: ConfigRow) -> dict:
    """The row as the Snakemake config would hold it (--config values are parsed as YAML scalars)."""
    cfg = deep_merge(BASE, row.override)
    for arg in row.args:
        key, value = arg.split("=", 1)
        cfg[key] = yaml.safe_load(value)
    return cfg


def _sentinels(results: Path) -> dict[Path, bytes]:
    """Finished outputs of an earlier run: a trained seed and a claim's verdict."""
    files = {results / "smoke" / "runs" / "ablation" / "full" / "seed0" / "metrics.json": b'{"test_acc": 0.9}\n',
             results / "smoke" / "claims" / "resnet56-ingredient-ablation" / "verdict.json": b'{"verdict": "x"}\n'}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("row", CONFIG_ROWS, ids=lambda r: r.id)
def test_bad_config_is_named_by_the_library(row):
    with pytest.raises(ConfigError) as err:
        resolve(_as_config(row), ROOT)
    for needle in row.needles:
        assert needle in str(err.value), str(err.value)


# through the real Snakefile (~4 s each on an idle machine): one row per way a value arrives (--config, a
# --configfile) and per kind of check (enum, type, range, NaN, list size, nested grid axis); the others differ
# only in the schema entry, which the library test above checks row by row
SNAKEMAKE_ROWS = ("unknown-scale", "threads-not-an-integer", "unknown-model", "nan-lr", "grid-with-zero-points",
                  "empty-seeds", "misspelt-recipe-key")


@pytest.mark.dag
@pytest.mark.parametrize("row", [r for r in CONFIG_ROWS if r.id in SNAKEMAKE_ROWS], ids=lambda r: r.id)
def test_bad_config_stops_snakemake_before_any_job(tmp_path, row):
    results = tmp_path / "results"
    _sentinels(results)
    before = _tree(results)
    args = ["--cores", "1"]
    if row.override:
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(yaml.safe_dump(row.override))
        args += ["--configfile", str(cfg)]
    if row.args:
        args += ["--config", *row.args]
    proc = snakemake(tmp_path, *args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    for needle in row.needles:
        assert needle in out, out[-3000:]
    assert "Building DAG of jobs" not in out  # refused while reading the Snakefile: no job was even planned
    assert _tree(results) == before  # nothing deleted, nothing new
    assert not (tmp_path / "logs").exists()


# ---------------------------------------------------------------- file rows (the job refuses at load) -----

@pytest.fixture(scope="module")
def smoke():
    return resolve(BASE, ROOT)


@pytest.fixture(scope="module")
def paper():
    return resolve({**BASE, "scale": "paper"}, ROOT)


def _ablation(smoke) -> dict:
    return run_spec(smoke["experiments"]["ablation"], "full")


def _write_model(path: Path, run: dict) -> None:
    model, _, _ = prepare_run(run, 0)
    lio.save_torch(path, model.state_dict())


def _flip_tensor_bytes(path: Path) -> None:
    """Flip 16 bytes inside the largest tensor's data (not the zip's metadata): torch alone loads such a file."""
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[start:start + 16] = bytes(b ^ 0xFF for b in raw[start:start + 16])
    path.write_bytes(bytes(raw))


def _surface_job(smoke, tmp_path: Path, run: dict, model_path: Path) -> tuple[Callable[[], Any], list[Path]]:
    """The surface job's entry (workflow/scripts/surface.py) and the outputs it must not write."""
    settings = dict(smoke["experiments"]["skip_depth"]["surface"])
    out, dirs = tmp_path / "out" / "surface.h5", tmp_path / "out" / "directions.h5"

    def job():
        return surface_of_run(run, model_path, settings, out, dirs)

    return job, [out, dirs, journal_path(out)]


def row_truncated_checkpoint(smoke, tmp_path):
    run = _ablation(smoke)
    bad = tmp_path / "runs" / "seed0" / "model.pt"
    _write_model(bad, run)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    job, outputs = _surface_job(smoke, tmp_path, run, bad)
    return job, bad, outputs, (str(bad), "cannot be read as a checkpoint", "truncated", "expected a checkpoint "
                               "written by losslab", "weights_only=True"), lio.CorruptFileError


def row_corrupted_checkpoint_bytes(smoke, tmp_path):
    run = _ablation(smoke)
    bad = tmp_path / "runs" / "seed0" / "model.pt"
    _write_model(bad, run)
    _flip_tensor_bytes(bad)
    job, outputs = _surface_job(smoke, tmp_path, run, bad)
    return job, bad, outputs, (str(bad), "corrupted checkpoint", "CRC-32 mismatch",
                               "delete the file to have it recomputed"), lio.CorruptFileError


def row_checkpoint_of_another_architecture(smoke, tmp_path):
    run = _ablation(smoke)
    bad = tmp_path / "runs" / "seed0" / "model.pt"
    _write_model(bad, run)
    other = deep_merge(run, {"model": {"channels": [8, 16]}})  # the config now asks for a narrower net
    job, outputs = _surface_job(smoke, tmp_path, other, bad)
    return job, bad, outputs, (str(bad), "weights of another architecture", "shape mismatch",
                               "same model settings"), lio.CheckpointError


def row_truncated_training_checkpoint(smoke, tmp_path):
    run = deep_merge(_ablation(smoke), {"recipe": {"epochs": 2}})
    ckpt_dir, out = tmp_path / "checkpoints", tmp_path / "runs" / "seed0"
    bad = ckpt_dir / f"{run_key(run, 0)}.pt"
    train_run(run, 0, tmp_path / "scratch", ckpt_dir)  # a finished checkpoint, then damaged
    bad.write_bytes(bad.read_bytes()[:100])
    return (lambda: train_run(run, 0, out, ckpt_dir)), bad, [out / "model.pt", out / "metrics.json"], (
        str(bad), "cannot be read as a checkpoint", "delete the file"), lio.CorruptFileError


def _tiny_grid(path: Path) -> None:
    def fill(surface, rows, on_points):
        for name in surface.values:
            surface.values[name][rows[0]:rows[1]] = 1.0

    compute_grid(path, {"what": "test"}, np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), ["train_loss"], fill,
                 progress=False)


def row_truncated_hdf5_surface(smoke, tmp_path):
    bad = tmp_path / "surfaces" / "surface.h5"
    _tiny_grid(bad)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    # read by the figure and claim jobs; a rerun of the grid job (compute_grid) reads it the same way first
    return (lambda: read_surface(bad)), bad, [], (str(bad), "not a readable surface file", "truncated",
                                                   "delete it to have it recomputed"), lio.CorruptFileError


def row_truncated_tile_journal(smoke, tmp_path):
    target = tmp_path / "surfaces" / "surface.h5"

    def fill(surface, rows, on_points):
        for name in surface.values:
            surface.values[name][rows[0]:rows[1]] = 1.0

    def killed(tile):
        raise KeyboardInterrupt  # as if killed after its first tile: the journal stays

    with pytest.raises(KeyboardInterrupt):
        compute_grid(target, {"what": "test"}, np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), ["train_loss"], fill,
                     progress=False, on_tile=killed)
    bad = journal_path(target)
    bad.write_bytes(bad.read_bytes()[:40])  # then damaged inside its header

    def job():
        def no_fill(surface, rows, on_points):
            raise AssertionError("a tile was computed")

        compute_grid(target, {"what": "test"}, np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), ["train_loss"],
                     no_fill, progress=False)

    return job, bad, [target], (str(bad), "journal header truncated or damaged", "delete it"), lio.CorruptFileError


def row_claim_without_rule_or_pending(smoke, tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("- {id: my-claim, source: s, statement: t, reported: r, family: f}\n")
    return (lambda: load_registry(bad)), bad, [], (str(bad), "my-claim", "exactly one of 'rule' (implemented) "
                                                   "or 'pending' (why not yet)"), ConfigError


def row_claim_with_rule_but_no_checks(smoke, tmp_path):
    bad = tmp_path / "claims.yaml"
    bad.write_text("- {id: my-claim, source: s, statement: t, reported: r, family: f, rule: my_rule}\n")
    return (lambda: load_registry(bad)), bad, [], (str(bad), "my-claim", "needs 'checks'"), ConfigError


def row_pattern_file_not_binary(smoke, tmp_path):
    bad = tmp_path / "picture.txt"
    bad.write_text("0 1 1\n1 0.5 0\n0 1 2\n")
    return (lambda: run_pattern({"kind": "file", "path": str(bad)}, 0)), bad, [], (
        str(bad), "not a binary pattern", "other than 0 and 1"), PatternError


def row_pattern_image_with_grey(smoke, tmp_path):
    from PIL import Image

    bad = tmp_path / "picture.png"
    Image.fromarray(np.array([[0, 128], [255, 0]], dtype=np.uint8), mode="L").save(bad)
    return (lambda: run_pattern({"kind": "file", "path": str(bad)}, 0)), bad, [], (
        str(bad), "not a binary pattern", "pure black and white"), PatternError


def _train_reading_from(data_dir: Path | None, *args: Any) -> dict:
    """``train_run`` in a job whose config's ``data_dir`` is ``data_dir`` (:func:`losslab.pipeline.job.start_job`)."""
    with use_data_roots(data_dir=data_dir):
        return train_run(*args)


def row_cifar10_data_dir_missing(paper, tmp_path):
    run = run_spec(paper["experiments"]["ablation"], "full")
    missing = tmp_path / "no-such-data"
    out, ckpt_dir = tmp_path / "runs" / "seed0", tmp_path / "checkpoints"
    return (lambda: _train_reading_from(str(missing), run, 0, out, ckpt_dir)), None, [out, ckpt_dir, missing], (
        str(missing), "cifar-10-batches-py", "download: true"), DataError


def row_cifar10_without_data_dir(paper, tmp_path):
    run = run_spec(paper["experiments"]["ablation"], "full")
    out, ckpt_dir = tmp_path / "runs" / "seed0", tmp_path / "checkpoints"
    return (lambda: _train_reading_from(None, run, 0, out, ckpt_dir)), None, [out, ckpt_dir], (
        "cifar10", "needs a data directory", "data_dir"), DataError


FILE_ROWS = {
    "truncated-checkpoint": (row_truncated_checkpoint, "smoke"),
    "corrupted-checkpoint-bytes": (row_corrupted_checkpoint_bytes, "smoke"),
    "checkpoint-of-another-architecture": (row_checkpoint_of_another_architecture, "smoke"),
    "truncated-training-checkpoint": (row_truncated_training_checkpoint, "smoke"),
    "truncated-hdf5-surface": (row_truncated_hdf5_surface, "smoke"),
    "truncated-tile-journal": (row_truncated_tile_journal, "smoke"),
    "claim-without-rule-or-pending": (row_claim_without_rule_or_pending, "smoke"),
    "claim-rule-without-checks": (row_claim_with_rule_but_no_checks, "smoke"),
    "pattern-file-not-binary": (row_pattern_file_not_binary, "smoke"),
    "pattern-image-with-grey": (row_pattern_image_with_grey, "smoke"),
    "cifar10-data-dir-missing": (row_cifar10_data_dir_missing, "paper"),
    "cifar10-without-data-dir": (row_cifar10_without_data_dir, "paper"),
}


@pytest.mark.parametrize("row", list(FILE_ROWS))
def test_bad_file_is_named_before_any_compute(request, tmp_path, row):
    make, scale = FILE_ROWS[row]
    results = tmp_path / "results"
    sentinels = _sentinels(results)
    job, bad, outputs, needles, error = make(request.getfixturevalue(scale), tmp_path)
    bad_bytes = bad.read_bytes() if bad is not None else None
    computed = []  # a global optimizer hook counts any training step taken before the error
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: computed.append(1))
    try:
        with pytest.raises(error) as err:
            job()
    finally:
        handle.remove()
    msg = str(err.value)
    for needle in needles:
        assert needle in msg, msg
    assert not computed, "a training step ran before the error"
    for out in outputs:
        assert not out.exists(), f"{out} was written before the error"
    if bad is not None:
        assert bad.read_bytes() == bad_bytes, "the bad file was changed or deleted"
    for path, data in sentinels.items():
        assert path.read_bytes() == data, f"{path}: an earlier result was touched"


# ---------------------------------------------------------------- your own model and data (API, CLI, trainer) --
# The rows of docs/bad-inputs.md's "Your own model and data": a researcher's conv net with BatchNorm and Dropout
# through losslab.api, the losslab command line and the training loop the workflow runs
# (losslab.core.trainer.fit). Each row's message is checked exactly; `<dir>` stands for the test's directory.

USER_MODULE = "ll_bad_inputs_user"


class SmallNet(nn.Module):
    """A tiny conv net with batch norm and dropout, 5 classes: 56 weights."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(self.drop(h))


class DictNet(SmallNet):
    def forward(self, x):
        return {"logits": super().forward(x)}


class WideOutputNet(SmallNet):
    def forward(self, x):
        return super().forward(x).view(-1, 5, 1)


def small_model():
    torch.manual_seed(0)
    return SmallNet()


def small_data(n: int = 24, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 12, 1, 4, 4, generator=gen)
    y = torch.arange(n + 12) % 5
    return x[:n], y[:n], x[n:], y[n:]


def with_nan_inputs():
    x, y, xt, yt = small_data()
    x[17, 0, 1, :3] = float("nan")
    return x, y, xt, yt


def nan_weights(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        model.fc.bias[1:3] = float("nan")
    return model


@dataclass
class UserCase:
    run: Callable[[], Any]
    error: type | int  # an exception type (API, trainer) or the CLI's exit status
    message: str  # exact; <dir> is the test's directory
    outputs: tuple[Path, ...] = ()  # must not be written


def _api(fn: Callable[[], Any], error: type, message: str) -> Callable[[Path], UserCase]:
    return lambda tmp: UserCase(fn, error, message)


def user_row_nan_checkpoint(tmp: Path) -> UserCase:
    path = tmp / "net.pt"
    torch.save(nan_weights(small_model()).state_dict(), path)
    return UserCase(lambda: api.load_checkpoint(SmallNet(), path), lio.CheckpointError,
                    "<dir>/net.pt: weight 'fc.bias' has 2 NaN entries; the weights must be finite (a diverged run?)")


def user_row_whole_module_checkpoint(tmp: Path) -> UserCase:
    path = tmp / "whole.pt"
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(16, 5)), path)
    return UserCase(lambda: api.load_checkpoint(SmallNet(), path), lio.CheckpointError,
                    "<dir>/whole.pt: holds a pickled torch.nn.modules.container.Sequential object (a whole module "
                    "saved with torch.save(model)?), not a state_dict; save model.state_dict() instead (losslab reads "
                    "checkpoints with weights_only=True and runs no code from them)")


def user_row_trainer_labels(tmp: Path) -> UserCase:
    x, y, xt, yt = small_data()
    data = Prepared("custom", x, y * 2, xt, yt, 10)  # labels up to 8 for 5 outputs
    return UserCase(lambda: fit(small_model(), data, Recipe(epochs=1, batch_size=8), 0), ValueError,
                    "train labels: the largest label is 8 but the model has 5 outputs (classes 0 to 4)")


def user_row_trainer_nan_inputs(tmp: Path) -> UserCase:
    data = Prepared("custom", *with_nan_inputs(), 5)
    return UserCase(lambda: fit(small_model(), data, Recipe(epochs=1, batch_size=8), 0), DataError,
                    "train inputs: 3 NaN values (first at sample 17); the data must be finite numbers")


def _user_cli(args: Sequence[str], status: int, message: str,
              outputs: Sequence[str] = ()) -> Callable[[Path], UserCase]:
    def make(tmp: Path) -> UserCase:
        path = tmp / "net.pt"
        if not path.exists():
            torch.save(small_model().state_dict(), path)
        argv = [a.replace("<dir>", str(tmp)) for a in args] + ["--out", str(tmp / "out"), "--no-progress"]
        return UserCase(lambda: main(argv), status, message, tuple(tmp / "out" / o for o in outputs))
    return make


UM = ["--model", f"{USER_MODULE}:small_model", "--data", f"{USER_MODULE}:small_data"]


def _user_cli_checkpoint(model: Callable[[], Any], message: str) -> Callable[[Path], UserCase]:
    """``losslab surface`` around the checkpoint ``torch.save(model())`` at ``<dir>/bad.pt``."""
    def make(tmp: Path) -> UserCase:
        torch.save(model(), tmp / "bad.pt")
        return _user_cli(["surface", *UM, "--checkpoint", "<dir>/bad.pt"], 2, message, ["surface.h5"])(tmp)
    return make

USER_ROWS: dict[str, Callable[[Path], UserCase]] = {
    "nan-in-the-data": _api(lambda: api.surface(small_model(), with_nan_inputs(), x=(-1, 1, 3), y=(-1, 1, 3)),
                            DataError, "train inputs: 3 NaN values (first at sample 17); the data must be finite "
                                       "numbers"),
    "infinity-in-test-inputs": _api(
        lambda: api.as_data(small_data()[:2] + (small_data()[2] / 0.0, small_data()[3])), DataError,
        "test inputs: 192 infinite values (first at sample 0); the data must be finite numbers"),
    "nan-in-the-data-when-training": user_row_trainer_nan_inputs,
    "nan-weight-in-a-checkpoint": user_row_nan_checkpoint,
    "nan-weight-in-a-model": _api(lambda: api.hessian_eigenvalues(nan_weights(small_model()), small_data()),
                                  ValueError, "model: weight 'fc.bias' has 2 NaN entries; the weights must be finite"),
    "nan-grid-spec": _api(lambda: api.surface(small_model(), small_data(), dims=1, x=(0, float("nan"), 5)),
                          ValueError, "x=(0, nan, 5): start and stop must be finite numbers"),
    "nan-coordinate": _api(lambda: api.interpolate(small_model(), SmallNet(), small_data(), alpha=[0, float("nan")]),
                           ValueError, "alpha: 1 of 2 coordinates are not finite (first nan at index 1); coordinates "
                                       "must be finite numbers"),
    "label-beyond-the-outputs": _api(
        lambda: api.surface(SmallNet(classes=3), small_data(), x=(-1, 1, 3), y=(-1, 1, 3)), ValueError,
        "train labels: the largest label is 4 but the model has 3 outputs (classes 0 to 2)"),
    "label-beyond-the-outputs-when-training": user_row_trainer_labels,
    "negative-label": _api(
        lambda: api.hessian_trace(small_model(), (small_data()[0], small_data()[1] - 1)), ValueError,
        "train labels: label -1 is negative; the model has 5 outputs (classes 0 to 4)"),
    "output-not-logits": _api(lambda: api.surface(WideOutputNet(), small_data(), dims=1, x=(-1, 1, 3)), ValueError,
                              "the model's output for one sample has shape (1, 5, 1); losslab needs logits of shape "
                              "(batch, classes), here (1, classes)"),
    "inputs-the-model-cannot-take": _api(
        lambda: api.surface(small_model(), (small_data()[0].double(), small_data()[1]), dims=1, x=(-1, 1, 3)),
        ValueError, "the model fails on one sample of the data (shape (1, 4, 4), torch.float64): Input type (double) "
                    "and bias type (float) should be the same"),
    "output-a-dict": _api(lambda: api.sharpness(DictNet(), small_data()), TypeError,
                          "the model returns a dict; losslab needs its logits: a tensor (batch, classes), or a tuple "
                          "or list whose first element is that tensor"),
    "whole-module-checkpoint": user_row_whole_module_checkpoint,
    "top-k-beyond-the-weights": _api(lambda: api.hessian_eigenvalues(small_model(), small_data(), k=5000),
                                     ValueError, "k=5000: the Hessian has only 56 eigenvalues (the model's 56 "
                                                 "weights)"),
    "top-k-beyond-the-lanczos-steps": _api(
        lambda: api.hessian_eigenvalues(small_model(), small_data(), k=30, max_iter=20), ValueError,
        "k=30: more eigenvalues than max_iter=20 Lanczos steps can give; raise max_iter (at most 56, the number "
        "of weights)"),
    "cli-nan-grid-spec": _user_cli(["surface", *UM, "--checkpoint", "<dir>/net.pt", "--x=0:nan:5"], 2,
                                   "losslab surface: error: argument --x: expected START:STOP:NUM with finite START, "
                                   "STOP and NUM >= 1 (e.g. -1:1:21), not '0:nan:5'"),
    "cli-top-k-beyond-the-weights": _user_cli(
        ["hessian", *UM, "--checkpoint", "<dir>/net.pt", "--top-k", "5000"], 2,
        "losslab hessian: error: --top-k 5000: the Hessian has only 56 eigenvalues (the model's 56 weights)",
        ["hessian.json"]),
    "cli-nan-data": _user_cli(
        ["surface", *UM[:2], "--data", f"{USER_MODULE}:with_nan_inputs", "--checkpoint", "<dir>/net.pt"], 2,
        f"losslab surface: error: --data '{USER_MODULE}:with_nan_inputs': train inputs: 3 NaN values (first at "
        f"sample 17); the data must be finite numbers", ["surface.h5"]),
    "cli-nan-weight-in-a-checkpoint": _user_cli_checkpoint(
        lambda: nan_weights(small_model()).state_dict(),
        "losslab surface: error: --checkpoint '<dir>/bad.pt': <dir>/bad.pt: weight 'fc.bias' has 2 NaN entries; the "
        "weights must be finite (a diverged run?)"),
    "cli-whole-module-checkpoint": _user_cli_checkpoint(
        lambda: importlib.import_module(USER_MODULE).small_model(),  # pickled as the user's class
        f"losslab surface: error: --checkpoint '<dir>/bad.pt': <dir>/bad.pt: holds a pickled {USER_MODULE}.SmallNet "
        "object (a whole module saved with torch.save(model)?), not a state_dict; save model.state_dict() instead "
        "(losslab reads checkpoints with weights_only=True and runs no code from them)"),
    "cli-train-diverges": _user_cli(["train", *UM, "--lr", "1e38", "--epochs", "2", "--batch-size", "8"], 1,
                                    "losslab train: error: the run diverged in epoch 1 (the training loss became NaN "
                                    "or infinite); no model written: lower --lr or check the data", ["model.pt"]),
    "cli-unknown-optimizer": _user_cli(
        ["train", *UM, "--optimizer", "adamw"], 2,
        "losslab train: error: argument --optimizer: invalid choice: 'adamw' (choose from 'sgd', 'momentum', "
        "'nesterov', 'adam', 'adagrad', 'rmsprop')", ["model.pt"]),
}


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    """The user's model and data as a module on sys.path (the CLI imports them as entry points)."""
    root = tmp_path_factory.mktemp("user")
    source = ["import torch\nfrom torch import nn\n"] + [
        inspect.getsource(obj) for obj in (SmallNet, small_model, small_data, with_nan_inputs)]
    (root / f"{USER_MODULE}.py").write_text("\n\n".join(source))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    sys.modules.pop(USER_MODULE, None)


@pytest.mark.parametrize("row", list(USER_ROWS))
def test_bad_user_input_is_named_before_any_compute(user_module, tmp_path, capsys, row):
    torch.set_num_threads(1)
    case = USER_ROWS[row](tmp_path)
    expected = case.message.replace("<dir>", str(tmp_path))
    steps = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: steps.append(1))
    try:
        if isinstance(case.error, int):
            try:
                status = case.run()
            except SystemExit as exit_:
                status = exit_.code
            assert status == case.error
            lines = capsys.readouterr().err.strip().splitlines()
            assert expected in lines, lines[-3:]
        else:
            with pytest.raises(case.error) as err:
                case.run()
            assert str(err.value) == expected
    finally:
        handle.remove()
    if row != "cli-train-diverges":  # the one row found by training: it diverges at its second step
        assert not steps, "a training step ran before the error"
    for out in case.outputs:
        assert not out.exists(), f"{out} was written"


def _doc_rows(section: str) -> dict[str, str]:
    """``row id -> message`` of a table of docs/bad-inputs.md under the heading ``section``."""
    text = (ROOT / "docs" / "bad-inputs.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells[3][1:-1]  # the message, without its backticks
    return rows


def test_the_user_input_table_matches_the_tests(user_module, tmp_path):
    assert _doc_rows("Your own model and data (API, command line, training loop)") == {
        row: make(tmp_path).message for row, make in USER_ROWS.items()}
