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


@pytest.mark.dag
@pytest.mark.skipif(os.environ.get("LOSSLAB_SKIP_FULL_SMOKE") == "1", reason="LOSSLAB_SKIP_FULL_SMOKE=1")
def test_smoke_dag_reproduces_the_committed_baseline(tmp_path):
    """The whole smoke DAG from scratch, compared with results/baselines/smoke.json: every number within
    rtol 1e-6 and every verdict exactly. After an intended change, update the baseline with
    `python -m losslab.regression update results/smoke results/baselines/smoke.json`."""
    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    baseline = json.loads((ROOT / "results" / "baselines" / "smoke.json").read_text())
    problems = compare(baseline, collect(tmp_path / "results" / "smoke"))
    assert not problems, "\n".join(problems)
