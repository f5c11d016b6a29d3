"""The training-ingredient claims (ablation, Bottou's SGD vs GD) decided by their pre-registrations in
config/claims.yaml, on synthetic run metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import ROOT
from losslab.claims import ingredients
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, decision_rule
from losslab.pipeline.registry import load_registry, registry_entry

REGISTRY = load_registry(ROOT / "config" / "claims.yaml")


def _claim(claim_id):
    entry = registry_entry(REGISTRY, claim_id)
    return {"rule": "synthetic"}, entry["decision"]


def _run(seed, test_acc, **kw):
    base = {"seed": seed, "diverged": False, "train_loss": 0.01, "train_acc": 0.999, "test_acc": test_acc,
            "epochs": 10, "train_size": 1000, "test_size": 500,
            "recipe": {"epochs": 10, "batch_size": 100, "lr": 0.1}}
    return {**base, **kw}


# test error per variant: as the paper's (6.9, 8.4, 10.1, 13.2, 19.4 %) with a small seed-to-seed jitter
PAPER_ERR = {"full": 0.069, "no_momentum": 0.084, "no_weight_decay": 0.101, "no_preprocessing": 0.132,
             "none": 0.194}


def _ablation_runs(err, n_seeds, jitter=0.002):
    rng = np.random.default_rng(1)
    return {v: [_run(s, 1 - e - jitter * rng.standard_normal()) for s in range(n_seeds)] for v, e in err.items()}


@pytest.mark.parametrize("err, n_seeds, verdict", [
    (PAPER_ERR, 5, REPRODUCED),
    # every removal helps, by as much as the paper's removals hurt: reversed
    ({v: PAPER_ERR["full"] ** 2 / e for v, e in PAPER_ERR.items()}, 5, NOT_REPRODUCED),
    (PAPER_ERR, 1, INCONCLUSIVE),  # one seed: no confidence bound
])
def test_ablation_decides_by_its_preregistration(tmp_path, err, n_seeds, verdict):
    check, decision = _claim("resnet56-ingredient-ablation")
    res = ingredients.ablation(_ablation_runs(err, n_seeds), check, decision, "smoke", tmp_path)
    assert res.verdict == verdict
    assert [d["name"] for d in res.decisions] == ["momentum", "weight_decay", "preprocessing", "all_vs_momentum",
                                                   "all_vs_weight_decay", "all_vs_preprocessing"]
    assert (tmp_path / "figure.png").stat().st_size > 0 and (tmp_path / "table.csv").exists()
    # the old numbers stay, the effects and the regime are added
    assert "none.test_acc_mean" in res.numbers
    # a part's effect joins the numbers when it has two or more replicates (a standard error)
    assert ("effect.momentum.estimate" in res.numbers) == (n_seeds > 1)
    if n_seeds > 1:
        mom = res.numbers["effect.momentum.estimate"]
        want = np.mean([math.log((1 - a) / (1 - f)) for a, f in
                        zip([r["test_acc"] for r in _ablation_runs(err, n_seeds)["no_momentum"]],
                            [r["test_acc"] for r in _ablation_runs(err, n_seeds)["full"]])])
        assert mom == pytest.approx(want)
    assert "train loss" in res.regime and "100 steps" in res.regime
    assert "steps" in (tmp_path / "table.csv").read_text().splitlines()[0]


def test_ablation_diverged_run_is_inconclusive(tmp_path):
    check, decision = _claim("resnet56-ingredient-ablation")
    runs = _ablation_runs(PAPER_ERR, 5)
    runs["none"][2]["diverged"] = True
    res = ingredients.ablation(runs, check, decision, "smoke", tmp_path)
    assert res.verdict == INCONCLUSIVE
    assert {d["name"]: d["verdict"] for d in res.decisions}["momentum"] == REPRODUCED


@pytest.mark.parametrize("sgd, gd, verdict", [
    ((0.650, 0.655, 0.648, 0.652, 0.651), (0.610, 0.612, 0.611, 0.608, 0.613), REPRODUCED),  # 174 vs 194 of 500
    ((0.610, 0.612, 0.611, 0.608, 0.613), (0.650, 0.655, 0.648, 0.652, 0.651), NOT_REPRODUCED),
    ((0.650, 0.612), (0.610, 0.655), INCONCLUSIVE),  # two seeds, one each way
])
def test_sgd_vs_gd_decides_by_its_preregistration(tmp_path, sgd, gd, verdict):
    check, decision = _claim("bottou-sgd-beats-gd")
    runs = {"sgd": [_run(s, a, recipe={"epochs": 10, "batch_size": 1, "lr": 0.01}) for s, a in enumerate(sgd)],
            "gd": [_run(s, a, recipe={"epochs": 10, "batch_size": "full", "lr": 1.0}) for s, a in enumerate(gd)]}
    hist = {v: [[{"epoch": "1", "test_acc": "0.5"}, {"epoch": "2", "test_acc": "0.6"}] for _ in rs]
            for v, rs in runs.items()}
    res = ingredients.sgd_vs_gd(runs, hist, check, decision, "smoke", tmp_path)
    assert res.verdict == verdict
    assert [d["name"] for d in res.decisions] == ["equal_epochs"]
    want = np.mean([math.log((1 - g) / (1 - s)) for s, g in zip(sgd, gd)])
    assert res.numbers["effect.equal_epochs.estimate"] == pytest.approx(want)
    assert "sgd.test_mistakes_mean" in res.numbers
    assert "10000 steps" in res.regime and "10 steps" in res.regime  # batch 1 vs full batch, 10 epochs
    assert json.loads((tmp_path / "figure.data.json").read_text())["plot"] == "ingredients.sgd_vs_gd"


def test_optimizer_steps():
    assert ingredients.optimizer_steps(_run(0, 0.9)) == 100
    assert ingredients.optimizer_steps(_run(0, 0.9, recipe={"batch_size": "full"})) == 10
    assert math.isnan(ingredients.optimizer_steps({"epochs": 3}))


def test_the_job_reads_run_directories_and_decides_by_the_registry(tmp_path):
    """run_claim on synthetic run directories: the registry entry's decision block decides, and the decision
    figure is drawn beside the claim's own."""
    from losslab import io as lio
    from losslab.claims import jobs
    from losslab.claims.claim_job import ClaimJob
    from losslab.claims.runs import HISTORY, METRICS, seed_dir

    accs = {"sgd": (0.650, 0.655, 0.648, 0.652, 0.651), "gd": (0.610, 0.612, 0.611, 0.608, 0.613)}
    dirs = {}
    for v, acc in accs.items():
        dirs[v] = str(tmp_path / "runs" / v)
        for s, a in enumerate(acc):
            d = seed_dir(dirs[v], s)
            d.mkdir(parents=True)
            lio.write_json(d / METRICS, _run(s, a, recipe={"epochs": 10, "lr": 0.1,
                                                           "batch_size": 1 if v == "sgd" else "full"}))
            (d / HISTORY).write_text("epoch,test_acc\n1,0.5\n2,0.6\n")
    claim = registry_entry(REGISTRY, "bottou-sgd-beats-gd")
    job = ClaimJob(claim=claim, scale="smoke", out_dir=tmp_path / "out", params={"dirs": dirs})
    res = jobs.run_claim(job)
    assert res.verdict == REPRODUCED and [d["name"] for d in res.decisions] == ["equal_epochs"]
    assert res.rule == decision_rule(claim["decision"])
    assert (tmp_path / "out" / "decision.png").exists() and (tmp_path / "out" / "figure.png").exists()
