"""The Snakemake DAG: planning every scale, refusing a bad config, running a small DAG end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import CLAIMS_IN_SMOKE, TEST_CONFIG, snakemake

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.dag


def test_paper_scale_plans_without_data(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "8", "--configfile", str(TEST_CONFIG), "--config", "scale=paper",
                     "data_dir=/nonexistent/data")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "train" in out and "ablation_claim" in out and "report" in out
    # one training job per (experiment, variant): 5 ablation variants + sgd and gd
    assert "paper/runs/ablation/no_weight_decay" in out and "paper/runs/sgd_vs_gd/gd" in out


@pytest.mark.parametrize("args, needle", [
    (["--config", "scale=huge"],
     "config key 'scale': 'huge' is not allowed; allowed values: ['smoke', 'desk', 'cpu', 'paper']"),
    (["--config", "threads=0"], "config key 'threads'"),
])
def test_bad_config_stops_before_any_job(tmp_path, args, needle):
    proc = snakemake(tmp_path, "--cores", "1", *args)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_bad_nested_value_in_a_configfile(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": {"ablation": {"recipe": {"epochs": 0}}}}))
    proc = snakemake(tmp_path, "--cores", "1", "--configfile", str(TEST_CONFIG), str(bad))
    assert proc.returncode != 0
    assert "config key 'experiments.ablation.recipe.epochs'" in proc.stdout + proc.stderr


def test_small_dag_end_to_end(small_dag):
    """The whole smoke DAG's rules on shrunken experiments: every output is written, a rerun has nothing to do."""
    tmp_path, cfg = small_dag
    res = tmp_path / "results" / "smoke"
    for claim in CLAIMS_IN_SMOKE:
        d = res / "claims" / claim
        for f in ("verdict.json", "table.csv", "table.md", "figure.png", "figure.pdf"):
            assert (d / f).stat().st_size > 0, d / f
        verdict = json.loads((d / "verdict.json").read_text())
        assert verdict["verdict"] in ("reproduced", "not reproduced", "inconclusive")
        assert verdict["numbers"]
        if claim in ("resnet56-ingredient-ablation", "bottou-sgd-beats-gd", "li-skip-depth-chaos"):
            assert verdict["n_seeds"] == 2
    for variant in ("d8_skip", "d38_noskip"):
        assert (res / "surfaces" / "skip_depth" / variant / "seed0" / "surface.h5").exists()
    for variant in ("full", "no_momentum", "no_weight_decay", "no_preprocessing", "none"):
        for seed in (0, 1):
            m = json.loads((res / "runs" / "ablation" / variant / f"seed{seed}" / "metrics.json").read_text())
            assert m["epochs"] == 2 and m["train_size"] == 200
    assert (res / "runs" / "sgd_vs_gd" / "gd" / "lr_search.json").exists()
    md = (res / "report" / "claims.md").read_text()
    assert all(c in md for c in CLAIMS_IN_SMOKE) and "pending" in md
    assert (tmp_path / "logs" / "smoke" / "train" / "ablation" / "full.log").exists()
    assert list((res / "benchmarks" / "train").rglob("*.tsv"))

    again = snakemake(tmp_path, "--cores", "2", "--configfile", str(TEST_CONFIG), str(cfg))
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
