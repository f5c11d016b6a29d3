"""CI regression of reproduced numbers: the comparison, a test of it, and the smoke DAG against its baseline."""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml

from conftest import ROOT, snakemake
from losslab.regression import collect, compare, main

BASE = {"scale": "smoke", "claims": {
    "a": {"verdict": "reproduced", "numbers": {"x": 1.0, "y": 0.5, "z": None}},
    "b": {"verdict": "not reproduced", "numbers": {"w": 3.0}},
}}


def test_identical_runs_compare_clean():
    assert compare(BASE, copy.deepcopy(BASE)) == []


def test_every_kind_of_difference_is_named():
    cur = copy.deepcopy(BASE)
    cur["claims"]["a"]["numbers"]["x"] = 1.0 + 1e-3
    cur["claims"]["a"]["numbers"]["z"] = 2.0
    cur["claims"]["a"]["verdict"] = "inconclusive"
    del cur["claims"]["b"]
    cur["claims"]["c"] = {"verdict": "reproduced", "numbers": {}}
    problems = "\n".join(compare(BASE, cur))
    assert "a: x moved: 1.0 -> 1.001" in problems
    assert "a: z moved: None -> 2.0" in problems
    assert "a: verdict changed: 'reproduced' -> 'inconclusive'" in problems
    assert "b: in the baseline, missing from this run" in problems
    assert "c: new in this run" in problems


def test_tolerance_is_stated_and_applied():
    cur = copy.deepcopy(BASE)
    cur["claims"]["a"]["numbers"]["x"] = 1.0 + 1e-8
    assert compare(BASE, cur) == []  # within the default rtol 1e-6
    assert compare(BASE, cur, rtol=1e-12, atol=0) != []


@pytest.mark.dag
def test_a_changed_recipe_fails_the_comparison_and_names_the_numbers(small_dag, tmp_path):
    """The test of the test: momentum 0.9 -> 0.5 in the ablation moves its numbers, and only those."""
    workdir, cfg = small_dag
    baseline = tmp_path / "baseline.json"
    assert main(["update", str(workdir / "results" / "smoke"), str(baseline)]) == 0
    assert main(["check", str(workdir / "results" / "smoke"), str(baseline)]) == 0

    changed = yaml.safe_load(cfg.read_text())
    changed["experiments"]["ablation"]["recipe"]["momentum"] = 0.5
    cfg2 = tmp_path / "changed.yaml"
    cfg2.write_text(yaml.safe_dump(changed))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(cfg2))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    problems = compare(json.loads(baseline.read_text()), collect(workdir / "results" / "smoke"))
    assert problems, "a changed recipe must move the reproduced numbers"
    assert any(p.startswith("resnet56-ingredient-ablation: full.test_acc_mean moved") for p in problems), problems
    assert all(p.startswith("resnet56-ingredient-ablation") for p in problems), problems
    # put the small DAG back as it was for other tests
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0


SKIP_FULL = pytest.mark.skipif(os.environ.get("LOSSLAB_SKIP_FULL_SMOKE") == "1", reason="LOSSLAB_SKIP_FULL_SMOKE=1")


@pytest.fixture(scope="module")
def full_smoke(tmp_path_factory):
    """The whole smoke DAG from scratch (2 cores, 1 torch thread per job)."""
    root = tmp_path_factory.mktemp("full_smoke")
    proc = snakemake(root, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "results" / "smoke"


@pytest.mark.dag
@SKIP_FULL
def test_smoke_dag_reproduces_the_committed_baseline(full_smoke):
    """The whole smoke DAG from scratch, compared with results/baselines/smoke.json: every number within
    rtol 1e-6 and every verdict exactly. After an intended change, update the baseline with
    `python -m losslab.regression update results/smoke results/baselines/smoke.json`."""
    baseline = json.loads((ROOT / "results" / "baselines" / "smoke.json").read_text())
    problems = compare(baseline, collect(full_smoke))
    assert not problems, "\n".join(problems)


@pytest.mark.dag
@SKIP_FULL
def test_the_whole_smoke_dag_twice_gives_byte_identical_results(full_smoke, tmp_path):
    """A second run of the whole smoke DAG, compared file by file with the first as tests/test_determinism.py
    compares two small runs: metrics, tables, verdicts, the report, weights and figures byte for byte, HDF5 and
    npz arrays bitwise (only clock readings, Snakemake's benchmarks and internal checkpoints are left out)."""
    from test_determinism import differences

    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = differences(full_smoke, tmp_path / "results" / "smoke")
    assert not problems, f"{len(problems)} differences between two runs:\n  " + "\n  ".join(problems[:40])
