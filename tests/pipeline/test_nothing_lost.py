"""Nothing lost, nothing unexplained: what a failed job leaves, what the DAG compares, what a run prints.

* A failed training job leaves the last complete run directory and the resumable state in place: the rule's
  output is ``update()``-flagged (Snakemake 9 otherwise deletes a job's outputs before it runs, and
  ``--keep-incomplete`` would keep the failed job's partial output instead) and the job publishes the directory
  whole only on success (:func:`losslab.io.atomic_dir`).
* Nothing the DAG compares names an absolute path: a checkout moved or copied elsewhere re-plans nothing.
* The profiles print no shell commands: every rule is a ``script:`` rule, for which Snakemake 9 prints
  "Shell command: None" once a job.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TEST_CONFIG, snakemake
from losslab.claims.runs import run_key
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
    """Every job's input and output path is relative (Snakemake reruns a job whose set of input paths changed:
    the report named config/claims.yaml by its absolute path, so a copied checkout re-planned it)."""
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--configfile", str(TEST_CONFIG))
    assert proc.returncode == 0, proc.stderr[-3000:]
    paths = [p.strip() for line in proc.stdout.splitlines() if re.match(r"\s+(input|output): ", line)
             for p in line.split(":", 1)[1].split(",")]
    assert any(p.endswith("claims.yaml") for p in paths)
    assert [p for p in paths if p.startswith("/")] == []


@pytest.mark.dag
def test_failed_training_job_keeps_the_last_good_run_and_the_resumable_state(tmp_path):
    target = RES / "runs" / "ablation" / "full"
    small = {"experiments": {"ablation": {"dataset": {"n_train": 64, "n_test": 32}, "recipe": {"epochs": 1},
                                          "seeds": [0]}}}
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(small))
    args = (str(target), "--cores", "1", "--configfile", str(TEST_CONFIG), str(cfg))
    first = snakemake(tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    good = _tree(tmp_path / target)
    assert "seed0/model.pt" in good

    # a rerun (the recipe changed) whose job fails: its resumable checkpoint is damaged
    changed = deep_merge(small, {"experiments": {"ablation": {"recipe": {"epochs": 2}}}})
    cfg.write_text(yaml.safe_dump(changed))
    config = resolve(deep_merge(yaml.safe_load(TEST_CONFIG.read_text()), changed), ROOT)
    key = run_key(run_spec(config["experiments"]["ablation"], "full"), 0)
    ckpt = tmp_path / RES / "checkpoints" / "ablation" / "full" / f"{key}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"not a checkpoint")
    checkpoints = _tree(ckpt.parent)
    failed = snakemake(tmp_path, *args)
    assert failed.returncode != 0
    assert "cannot be read as a checkpoint" in failed.stdout + failed.stderr
    assert "Restored previous version" in failed.stdout + failed.stderr
    assert {k: v for k, v in _tree(tmp_path / target).items() if k != ".snakemake_timestamp"} == \
        {k: v for k, v in good.items() if k != ".snakemake_timestamp"}
    assert _tree(ckpt.parent) == checkpoints  # the resumable state (and the damaged file, for the user) is kept
