"""Faults lose nothing: a Snakemake job killed with SIGKILL (the whole process group: Snakemake and the job's
script), rerun with the same command, resumes from its last checkpoint or tile and ends bitwise equal to an
uninterrupted run. One test each for a training job, a surface job and a curve-training job, all through the
real Snakefile on the smoke scale shrunk further (1 core, 1 torch thread).

The kill point is found by polling, not by a hook in the library: the job's checkpoint directory (training,
curves) or the surface's journal of finished tiles ``surface.h5.journal``; the moment the first one appears the
process group gets SIGKILL. The sizes are chosen so that the job has seconds of work left at that moment; each
test checks that it really was interrupted (no output yet, a checkpoint strictly between start and end).

A Snakemake killed with SIGKILL leaves its lock behind, so the rerun is ``snakemake --unlock`` and then the
same command with ``--rerun-incomplete`` (the default profile sets it too). Numbers are compared bitwise;
the only fields left out are wall-clock seconds (``wall_seconds`` of metrics.json and the curve's
train.json), which measure time, not results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch
import yaml

from conftest import SMALL, SNAKEFILE, snakemake
from losslab.pipeline.config import deep_merge
from losslab.core.surfaces import journal_path, read_surface

pytestmark = pytest.mark.dag

RES = Path("results") / "smoke"
TIMING_FIELDS = ("wall_seconds",)  # seconds of wall clock: differ between any two runs, killed or not


def _cmd(workdir: Path, target: str, cfg: Path) -> list[str]:
    return [target, "--cores", "1", "--configfile", str(cfg), "--rerun-incomplete"]


def run_ok(workdir: Path, target: str, cfg: Path) -> subprocess.CompletedProcess:
    proc = snakemake(workdir, *_cmd(workdir, target, cfg), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def kill_when(workdir: Path, target: str, cfg: Path, ready: Callable[[], bool], timeout: float = 600) -> None:
    """Start the Snakemake run of ``target`` in its own process group; SIGKILL the group once ``ready()``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir),
           *_cmd(workdir, target, cfg)]
    with open(workdir / "killed-run.out", "w") as out:  # test scratch output, not a project file
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if proc.poll() is not None:
                    pytest.fail(f"the job ended (exit {proc.returncode}) before it could be killed: "
                                + (workdir / "killed-run.out").read_text()[-3000:])
                if time.monotonic() > deadline:
                    pytest.fail("no checkpoint appeared in time")
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def rerun_after_kill(workdir: Path, target: str, cfg: Path) -> subprocess.CompletedProcess:
    """What a user does after kill -9: remove Snakemake's stale lock, then the same command again."""
    unlock = snakemake(workdir, "--unlock", "--cores", "1", "--configfile", str(cfg))
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    return run_ok(workdir, target, cfg)


def write_cfg(workdir: Path, cfg: dict) -> Path:
    path = workdir / "fault.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def without_timing(path: Path) -> dict:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in TIMING_FIELDS}


def job_log(workdir: Path, tail: str) -> Path:
    """The job's log, ``logs/smoke/<rule>/<tail>`` (found by its tail: the rule's folder name is the rule's)."""
    found = [p for p in (workdir / "logs").rglob("*.log") if p.as_posix().endswith("/" + tail)]
    assert len(found) == 1, found
    return found[0]


def log_says_resumed(log: Path) -> list[int]:
    """The epochs the job's log says it resumed at (losslab.core.trainer / losslab.core.curves log
    'resumed ... at epoch k')."""
    return [int(line.rsplit("epoch", 1)[1]) for line in log.read_text().splitlines() if " resumed " in line]


# ------------------------------------------------------------------------------------------ training ------

TRAIN_CFG = {"experiments": {"ablation": {"dataset": {"n_train": 1000}, "recipe": {"epochs": 12},
                                          "seeds": [0, 1]}}}


def test_killed_training_job_resumes_bitwise(tmp_path):
    cfg = write_cfg(tmp_path, TRAIN_CFG)
    target = str(RES / "runs" / "ablation" / "full")
    out, ckpts = tmp_path / target, tmp_path / RES / "checkpoints" / "ablation" / "full"

    run_ok(tmp_path, target, cfg)  # uninterrupted
    straight = tmp_path / "straight"
    shutil.move(out, straight)
    shutil.rmtree(ckpts)  # else the next run would resume from the finished checkpoints

    kill_when(tmp_path, target, cfg, lambda: ckpts.exists() and any(ckpts.glob("*.pt")))
    assert not (out / "seed1" / "metrics.json").exists(), "the job finished before the kill"
    (ckpt,) = ckpts.glob("*.pt")
    killed_at = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= killed_at < 12

    rerun_after_kill(tmp_path, target, cfg)
    log = job_log(tmp_path, "ablation/full.log")
    resumed = log_says_resumed(log)
    # the checkpoint read right after the kill, or a later one if the dying job still finished an epoch
    assert resumed and killed_at <= resumed[0] < 12, log.read_text()[-2000:]
    for seed in (0, 1):
        a, b = out / f"seed{seed}", straight / f"seed{seed}"
        assert_state_equal(torch.load(a / "model.pt", weights_only=True),
                           torch.load(b / "model.pt", weights_only=True))
        assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()
        assert without_timing(a / "metrics.json") == without_timing(b / "metrics.json")


# ------------------------------------------------------------------------------------------ surface -------

SURFACE_CFG = {"experiments": {"skip_depth": {
    "dataset": {"options": {"num_samples": 300}}, "recipe": {"epochs": 1}, "seeds": [0],
    "surface": {"seeds": [0], "x": [-1, 1, 9], "y": [-1, 1, 9], "n_train": 240, "n_test": 60, "jobs": 1,
                "tile_rows": 1}}}}


def read_h5(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f.keys()}


def test_killed_surface_job_computes_only_missing_tiles_bitwise(tmp_path):
    cfg = write_cfg(tmp_path, SURFACE_CFG)
    seed_dir = RES / "surfaces" / "skip_depth" / "d8_skip" / "seed0"
    target = str(seed_dir / "surface.h5")
    out = tmp_path / seed_dir
    partial = journal_path(out / "surface.h5")

    run_ok(tmp_path, target, cfg)  # trains d8_skip, then the surface uninterrupted
    straight = read_h5(out / "surface.h5")
    straight_dirs = read_h5(out / "directions.h5")
    for f in ("surface.h5", "directions.h5"):
        (out / f).unlink()

    kill_when(tmp_path, target, cfg, partial.exists)
    assert not (out / "surface.h5").exists(), "the job finished before the kill"
    kept = read_surface(partial)
    n_done = int(kept.done.sum())
    assert 1 <= n_done < 9, n_done

    rerun_after_kill(tmp_path, target, cfg)
    assert not partial.exists()
    final = read_h5(out / "surface.h5")
    assert final.keys() == straight.keys()
    for k in straight:
        assert np.array_equal(final[k], straight[k], equal_nan=True), k
    for k, v in read_h5(out / "directions.h5").items():
        assert np.array_equal(v, straight_dirs[k]), k
    # the tiles done before the kill are in the final file as they were: kept, not recomputed differently
    rows = np.flatnonzero(kept.done)
    for k in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert np.array_equal(kept[k][rows], final[k][rows]), k


# ------------------------------------------------------------------------------------------ curve ---------

CURVE_CFG = {"experiments": {"connectivity": deep_merge(SMALL["experiments"]["connectivity"], {
    "dataset": {"n_train": 600}, "connectivity": {"curves": {"recipe": {"epochs": 10}}}})}}


def test_killed_curve_training_job_resumes_bitwise(tmp_path):
    cfg = write_cfg(tmp_path, CURVE_CFG)
    curve_dir = RES / "curves" / "connectivity" / "w025" / "bezier"
    target = str(curve_dir / "curve.pt")
    out, ckpts = tmp_path / curve_dir, tmp_path / RES / "checkpoints" / "curves" / "connectivity" / "w025"

    run_ok(tmp_path, target, cfg)  # trains the two w025 endpoints, then the curve uninterrupted
    straight_curve = torch.load(out / "curve.pt", weights_only=True)
    straight_record = without_timing(out / "train.json")
    for f in ("curve.pt", "train.json"):
        (out / f).unlink()
    shutil.rmtree(ckpts)

    kill_when(tmp_path, target, cfg, lambda: ckpts.exists() and any(ckpts.glob("*.pt")))
    assert not (out / "curve.pt").exists(), "the job finished before the kill"
    (ckpt,) = ckpts.glob("*.pt")
    killed_at = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= killed_at < 10

    rerun_after_kill(tmp_path, target, cfg)
    log = job_log(tmp_path, "connectivity/w025/bezier.log")
    resumed = log_says_resumed(log)
    assert resumed and killed_at <= resumed[0] < 10, log.read_text()[-2000:]
    assert_state_equal(torch.load(out / "curve.pt", weights_only=True), straight_curve)
    assert without_timing(out / "train.json") == straight_record
