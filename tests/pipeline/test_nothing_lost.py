"""Nothing lost, nothing unexplained: what a failed job leaves, what the DAG compares, what a run prints.

* A failed training job leaves the last complete run directory and the resumable state in place: the rule's
  output is ``update()``-flagged (Snakemake 9 otherwise deletes a job's outputs before it runs, and
  ``--keep-incomplete`` would keep the failed job's partial output instead) and the job publishes the directory
  whole only on success (:func:`losslab.io.atomic_dir`).
* Nothing the DAG compares names a path outside the working directory: a checkout moved or copied elsewhere
  re-plans nothing (the report takes the claims registry by content, as a param, not by its path).
* A finished output damaged since (a file deleted from a run directory, a truncated surface) is named when the
  Snakefile is read, ``snakemake -n`` included, instead of being taken as done (:mod:`losslab.pipeline.integrity`).
* The profiles print no shell commands: every rule is a ``script:`` rule, for which Snakemake 9 prints
  "Shell command: None" once a job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TEST_CONFIG, snakemake
from losslab import io as lio
from losslab.claims.runs import run_dir, run_key, surface_dir
from losslab.pipeline.config import deep_merge, resolve, run_spec

RES = Path("results") / "smoke"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_profiles_print_no_shell_command_of_script_rules():
    rules = "".join(p.read_text() for p in (ROOT / "workflow").rglob("*.smk")) + \
        (ROOT / "workflow" / "Snakefile").read_text()
    assert not re.search(r"^\s+shell:", rules, re.M), "a shell rule: printshellcmds would print something useful"
    for profile in (ROOT / "profiles").glob("*/config.yaml"):
        assert not (yaml.safe_load(profile.read_text()) or {}).get("printshellcmds"), profile


@pytest.mark.dag
def test_dry_run_plans_no_absolute_path(tmp_path):
    """Every job's input and output path is relative to the working directory, and none is outside it (Snakemake
    reruns a job whose set of input paths changed: the report named config/claims.yaml by its absolute path, so a
    copied checkout re-planned it; the registry is now a param, by content)."""
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(TEST_CONFIG))
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = [p.strip() for line in proc.stdout.splitlines() if re.match(r"\s+(input|output): ", line)
             for p in line.split(":", 1)[1].split(",")]
    assert any(p.endswith("claims.md") for p in paths)
    assert [p for p in paths if p.startswith("/") or p.startswith("..")] == []


@pytest.mark.dag
def test_failed_training_job_keeps_the_last_good_run_and_the_resumable_state(tmp_path):
    """A finished run directory, then a rerun of its job (forced here; a changed setting does the same) that fails
    at its start, on a damaged resumable checkpoint: the run directory and the checkpoints are as they were."""
    target = RES / "runs" / "ablation" / "full"
    _finished_run(tmp_path / target)
    good = _tree(tmp_path / target)
    small = {"experiments": {"ablation": {"dataset": {"n_train": 64, "n_test": 32}, "recipe": {"epochs": 1},
                                          "seeds": [0]}}}
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(small))
    config = resolve(deep_merge(yaml.safe_load(TEST_CONFIG.read_text()), small), ROOT)
    key = run_key(run_spec(config["experiments"]["ablation"], "full"), 0)
    ckpt = tmp_path / RES / "checkpoints" / "ablation" / "full" / f"{key}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"not a checkpoint")
    checkpoints = _tree(ckpt.parent)
    failed = snakemake(tmp_path, str(target), "--forcerun", "train", "--cores", "1",
                       "--configfile", str(TEST_CONFIG), str(cfg))
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "cannot be read as a checkpoint" in out
    assert f"Restored previous version of {target} (updating job failed)" in out
    assert _tree(tmp_path / target) == good
    assert _tree(ckpt.parent) == checkpoints  # the resumable state (and the damaged file, for the user) is kept


def _finished_run(directory: Path) -> None:
    with lio.atomic_dir(directory) as staging:
        for name in ("model.pt", "metrics.json", "history.csv"):
            lio.write_bytes(staging / "seed0" / name, b"0123456789")


@pytest.mark.dag
def test_dry_run_names_a_deleted_model_and_a_truncated_surface(tmp_path):
    config = resolve(yaml.safe_load(TEST_CONFIG.read_text()), ROOT)
    runs = run_dir(RES, "ablation", "full")
    _finished_run(tmp_path / runs)
    args = ("-n", "--cores", "1", "--configfile", str(TEST_CONFIG))
    assert snakemake(tmp_path, str(runs), *args).returncode == 0  # a complete run directory: accepted
    skip = config["experiments"]["skip_depth"]
    variant, seed = next(iter(skip["variants"])), skip["surface"]["seeds"][0]
    surface = surface_dir(RES, "skip_depth", variant, seed) / "surface.h5"
    (tmp_path / surface).parent.mkdir(parents=True)
    (tmp_path / surface).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # an HDF5 signature cut short
    (tmp_path / runs / "seed0" / "model.pt").unlink()
    proc = snakemake(tmp_path, str(surface), *args)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"{runs}/seed0/model.pt: missing; delete {runs} to have it recomputed" in out
    assert f"{surface}: not a readable HDF5 file (truncated or overwritten: " in out
    assert "Nothing to be done" not in out
