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
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from torch.optim.optimizer import register_optimizer_step_pre_hook
import yaml

from conftest import snakemake
from losslab import io as lio
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
