"""Keskar et al.'s large-batch claims (losslab.claims.sharpness.keskar): the sharpness files, warm
starts and the parametric line of tiny runs, and each claim's table/figure/verdict on synthetic inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.claims.sharpness import keskar as ks
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, VERDICTS
from losslab.pipeline.registry import load_registry, registry_entry

SEEDS = [0, 1, 2, 3, 4]
EPS = [1e-3, 5e-4]


# ---------------------------------------------------------------- synthetic nets --------------------------

REGISTRY = load_registry(Path(__file__).resolve().parents[2] / "config" / "claims.yaml")


def _claim(claim_id):
    return registry_entry(REGISTRY, claim_id)


def _run(seed, test_acc, train_acc=1.0, batch=32, n=1437, epochs=40, train_loss=0.01):
    return {"seed": seed, "test_acc": test_acc, "train_acc": train_acc, "diverged": False, "epochs": epochs,
            "recipe": {"batch_size": batch, "lr": 1e-3}, "train_size": n, "train_loss": train_loss}


def _sharp(values, group="", accs=None, seeds=SEEDS, losses=None):
    """A sharpness file: values[seed] is the full-space eps 1e-3 value; the other settings scale it; losses[seed]
    is the train loss at the point (default 0.01)."""
    runs = []
    for i, (seed, v) in enumerate(zip(seeds, values)):
        loss = (losses or [0.01] * len(seeds))[i]
        vals = [{"space": sp, "eps": e, "p": None if sp == "full" else 100, "loss": loss,
                 "value": v * (e / 1e-3) * (1.0 if sp == "full" else 0.1)} for sp in ks.SPACES for e in EPS]
        runs.append({"seed": seed, "group": group, "dir": f"{group}/seed{seed}".lstrip("/"), "diverged": False,
                     "test_acc": (accs or [0.9] * len(seeds))[i], "train_acc": 1.0, "train_loss": loss,
                     "batch_size": 359, "train_size": 1437, "epochs": 40, "values": vals})
    return {"settings": {"eps": EPS}, "runs": runs}


def _net(sb_sharp=1.0, lb_sharp=10.0, sb_acc=0.97, lb_acc=0.95, matched=None, seeds=SEEDS, jitter=None):
    """A network's runs and sharpness files; ``matched``: the step-matched LB's sharpness (per seed, or one value
    for all), None for no matched arm."""
    jitter = np.linspace(-0.002, 0.002, len(seeds)) if jitter is None else np.asarray(jitter)
    accs = {"sb": sb_acc, "b128": (sb_acc + lb_acc) / 2, "lb": lb_acc, "full": lb_acc - 0.05}
    batches = {"sb": 32, "b128": 128, "lb": 359, "full": "full"}
    sharp = {"sb": sb_sharp, "b128": (sb_sharp + lb_sharp) / 2, "lb": lb_sharp, "full": 2 * lb_sharp}
    runs = {v: [_run(s, accs[v] + j, batch=batches[v]) for s, j in zip(seeds, jitter)] for v in accs}
    sh = {v: _sharp([sharp[v] * (1 + j) for j in jitter], seeds=seeds) for v in accs}
    warm = {"runs": []}
    for k, (acc, val) in {2: (lb_acc, lb_sharp), 10: ((sb_acc + lb_acc) / 2, 3.0), 30: (sb_acc, sb_sharp)}.items():
        warm["runs"] += _sharp([val * (1 + j) for j in jitter], group=f"epoch{k}", accs=[acc + j for j in jitter],
                               seeds=seeds)["runs"]
    settings = {"network": "F1", "small": "sb", "large": "lb", "sweep": ["sb", "b128", "lb", "full"],
                "warmstart": {"epochs": [2, 10, 30]}, "eps": EPS}
    if matched is not None:
        per_seed = matched if isinstance(matched, list) else [matched * (1 + j) for j in jitter]
        runs["lb_steps"] = [_run(s, lb_acc + j, batch=359, epochs=450) for s, j in zip(seeds, jitter)]
        sh["lb_steps"] = _sharp(per_seed, seeds=seeds)
        settings["matched"] = "lb_steps"
    return {"settings": settings, "runs": runs, "sharpness": sh, "warmstart": warm}


def _files(d):
    for f in ("table.csv", "table.md", "figure.png", "figure.pdf"):
        assert (d / f).stat().st_size > 0, f


def _parts(res):
    return {d["name"].split(" ")[0] for d in res.decisions}


def test_generalization_gap_claim(tmp_path):
    claim = _claim("keskar-lb-generalization-gap")
    res = ks.generalization_gap({"keskar": _net(matched=5.0)}, claim, "smoke", tmp_path)
    assert res.verdict == REPRODUCED and res.n_seeds == 5, res.notes
    assert _parts(res) == {"gap"} and [d["name"] for d in res.decisions] == ["gap keskar"]
    assert res.numbers["keskar.gap_pp_mean"] == pytest.approx(2.0)
    assert res.numbers["keskar.ln_err_ratio_mean"] == pytest.approx(math.log(0.05 / 0.03), abs=1e-3)
    assert "keskar: SB batch 32, 1800 steps (40 epochs)" in res.regime and "LB steps-matched" in res.regime
    _files(tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "98.03 ± 0.07" in table and "steps" in table and "1800" in table  # Keskar's F1 numbers beside ours
    res.write(tmp_path / "verdict.json")
    assert json.loads((tmp_path / "verdict.json").read_text())["verdict"] in VERDICTS
    # LB tests better: not reproduced
    rev = ks.generalization_gap({"k": _net(sb_acc=0.95, lb_acc=0.97)}, claim, "smoke", tmp_path / "b")
    assert rev.verdict == NOT_REPRODUCED and _parts(rev) == {"gap"}
    # LB short of 99% train accuracy: not the claim's regime
    low = _net()
    low["runs"]["lb"][0]["train_acc"] = 0.95
    res = ks.generalization_gap({"k": low}, claim, "smoke", tmp_path / "c")
    assert res.verdict == INCONCLUSIVE and "precondition not met" in res.notes
    # two seeds with opposite gaps: too few to decide
    few = _net(seeds=[0, 1], jitter=[-0.02, 0.02], sb_acc=0.97, lb_acc=0.965)
    assert ks.generalization_gap({"k": few}, claim, "smoke", tmp_path / "d").verdict == INCONCLUSIVE


def test_sharpness_metric_claim(tmp_path):
    claim = _claim("keskar-sharpness-metric")
    res = ks.sharpness_metric({"keskar": _net(1.0, 10.0, matched=10.0)}, claim, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert _parts(res) == {"full_eps1e-3", "full_eps5e-4", "subspace_eps1e-3", "subspace_eps5e-4"}
    assert res.numbers["keskar.full.eps0.001.ratio_of_means"] == pytest.approx(10.0)
    assert res.numbers["keskar.full.eps0.001.matched_log10_ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert res.numbers["effect.full_eps1e-3.keskar.estimate"] == pytest.approx(1.0, abs=1e-3)
    _files(tmp_path)
    assert "205.14" in (tmp_path / "table.md").read_text()
    assert "1800" in (tmp_path / "arms.md").read_text()  # the matched arm's steps equal SB's
    # the equal-epoch LB sharper, the step-matched one not: decided on the matched arm, not reproduced
    rev = ks.sharpness_metric({"k": _net(1.0, 10.0, matched=1.2)}, claim, "smoke", tmp_path / "b")
    assert rev.verdict == NOT_REPRODUCED
    # no matched arm: nothing decided
    res = ks.sharpness_metric({"k": _net(1.0, 10.0)}, claim, "smoke", tmp_path / "c")
    assert res.verdict == INCONCLUSIVE and "no matched comparison" in res.notes
    assert res.numbers["k.full.eps0.001.ratio_of_means"] == pytest.approx(10.0)  # the raw comparison still shown
    # two seeds, 10x and 1x: too few to decide
    few = _net(1.0, 10.0, matched=[10.0, 1.0], seeds=[0, 1])
    assert ks.sharpness_metric({"k": few}, claim, "smoke", tmp_path / "d").verdict == INCONCLUSIVE


class _Line(dict):
    """A stand-in for a 1-D surface file (its datasets by name)."""


def _line(curv_sb, curv_lb, seed):
    a = np.linspace(-1, 2, 25)
    loss = 0.01 + np.where(a < 0.5, curv_sb * a ** 2, curv_lb * (a - 1) ** 2) + 0.001 * seed
    return _Line(xcoordinates=a, train_loss=loss, test_loss=loss + 0.1, train_acc=1 - loss / 10,
                 test_acc=0.9 - loss / 10)


def _lines(curv_sb, curv_lb, seeds=SEEDS):
    if isinstance(curv_lb, list):
        return {s: _line(curv_sb, c, s) for s, c in zip(seeds, curv_lb)}
    return {s: _line(curv_sb, curv_lb * (1 + 0.01 * s), s) for s in seeds}


def test_parametric_plot_claim(tmp_path):
    claim = _claim("keskar-parametric-plot")
    net = {"settings": {"network": "F1"}, "interpolation": _lines(1.0, 8.0), "interpolation_matched": _lines(1.0, 8.0)}
    res = ks.parametric_plot({"keskar": net}, claim, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert _parts(res) == {"delta_0.5", "delta_0.25"}
    assert res.numbers["keskar.delta0.5.rise_SB_mean"] == pytest.approx(0.25)
    assert res.numbers["effect.delta_0.5.keskar.estimate"] == pytest.approx(math.log(8 * 1.02), abs=0.01)
    _files(tmp_path)
    # the equal-epoch line steep at LB, the step-matched one flatter there: decided on the matched line
    flat = {**net, "interpolation_matched": _lines(8.0, 1.0)}
    assert ks.parametric_plot({"k": flat}, claim, "smoke", tmp_path / "b").verdict == NOT_REPRODUCED
    # no matched line: nothing decided
    res = ks.parametric_plot({"k": {"settings": {"network": "F1"}, "interpolation": _lines(1.0, 8.0)}}, claim,
                             "smoke", tmp_path / "c")
    assert res.verdict == INCONCLUSIVE and "no matched comparison" in res.notes
    assert res.numbers["k.delta0.5.rise_LB_mean"] == pytest.approx(8 * 0.25 * 1.02)
    # two seeds, 8x and 0.5x: too few to decide
    few = {**net, "interpolation_matched": _lines(1.0, [8.0, 0.5], seeds=[0, 1])}
    assert ks.parametric_plot({"k": few}, claim, "smoke", tmp_path / "d").verdict == INCONCLUSIVE


def test_threshold_and_warmstart_claim(tmp_path):
    claim = _claim("keskar-batch-threshold-and-warmstart")
    res = ks.threshold_and_warmstart({"keskar": _net()}, claim, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert _parts(res) == {"accuracy_drop", "sharpness_rise", "warmstart_accuracy", "warmstart_flatness"}
    assert res.numbers["keskar.spearman_acc"] == pytest.approx(-1.0)
    assert res.numbers["keskar.spearman_sharpness"] == pytest.approx(1.0)
    assert res.numbers["keskar.b1437.test_acc_mean"] == pytest.approx(0.90)
    assert res.numbers["keskar.b32.sharpness_normalised_mean"] == pytest.approx(100.0)  # 1.0 / loss 0.01
    _files(tmp_path)
    # sharpness falling with the batch size: the sweep's sharpness part is reversed
    flat = _net(sb_sharp=10.0, lb_sharp=1.0)
    assert ks.threshold_and_warmstart({"k": flat}, claim, "smoke", tmp_path / "b").verdict == NOT_REPRODUCED
    # raw sharpness rising, but only because the large batch stops at a 10x higher loss: the normalised measure
    # decides (no rise), so the claim is not reproduced
    lossy = _net(sb_sharp=1.0, lb_sharp=10.0)
    lossy["sharpness"]["full"] = _sharp([20.0] * 5, losses=[0.2] * 5)
    lossy["sharpness"]["sb"] = _sharp([1.0] * 5, losses=[0.01] * 5)
    res = ks.threshold_and_warmstart({"k": lossy}, claim, "smoke", tmp_path / "d")
    sr = next(d for d in res.decisions if d["name"].startswith("sharpness_rise"))
    assert res.verdict == NOT_REPRODUCED and sr["verdict"] == NOT_REPRODUCED
    # two seeds: too few to decide
    few = _net(seeds=[0, 1], jitter=[-0.02, 0.02], sb_acc=0.955, lb_acc=0.95)
    few["sharpness"]["full"] = _sharp([40.0, 0.2], seeds=[0, 1])
    few["warmstart"]["runs"] = [r for r in few["warmstart"]["runs"] if r["group"] != "epoch30"]
    few["warmstart"]["runs"] += _sharp([20.0, 0.5], group="epoch30", accs=[0.97, 0.93], seeds=[0, 1])["runs"]
    assert ks.threshold_and_warmstart({"k": few}, claim, "smoke", tmp_path / "e").verdict == INCONCLUSIVE
    bad = _net()
    bad["settings"] = {**bad["settings"], "sweep": ["lb", "sb"]}
    with pytest.raises(ValueError, match="increasing batch"):
        ks.threshold_and_warmstart({"k": bad}, claim, "smoke", tmp_path / "c")


def test_remedies_claim(tmp_path):
    claim = _claim("keskar-remedies")
    base = _net(sb_acc=0.97, lb_acc=0.94)
    aug = _net(sb_acc=0.975, lb_acc=0.97)
    aug["settings"] = {"network": "F1", "small": "sb", "large": "lb", "baseline": "keskar", "eps": EPS}
    nets = {"keskar": base, "keskar_aug": aug}
    res = ks.remedies(nets, claim, "smoke", tmp_path)
    assert res.verdict == REPRODUCED, res.notes
    assert _parts(res) == {"gap_narrows", "lb_stays_sharp"}
    assert res.numbers["keskar_aug.gap_pp_mean"] == pytest.approx(0.5)
    assert res.numbers["keskar_aug.gap_baseline_pp_mean"] == pytest.approx(3.0)
    _files(tmp_path)
    # augmentation that widens the gap: not reproduced
    nets = {"keskar": _net(sb_acc=0.97, lb_acc=0.965), "keskar_aug": aug}
    assert ks.remedies(nets, claim, "smoke", tmp_path / "b").verdict == NOT_REPRODUCED
    # two seeds: too few to decide
    base2 = _net(sb_acc=0.97, lb_acc=0.955, seeds=[0, 1], jitter=[-0.01, 0.01])
    aug2 = _net(sb_acc=0.975, lb_acc=0.965, seeds=[0, 1], jitter=[-0.01, 0.01])
    aug2["settings"] = {"network": "F1", "small": "sb", "large": "lb", "baseline": "keskar", "eps": EPS}
    aug2["runs"]["lb"][0]["test_acc"] = 0.90
    res = ks.remedies({"keskar": base2, "keskar_aug": aug2}, claim, "smoke", tmp_path / "c")
    assert res.verdict == INCONCLUSIVE, res.notes


def test_phi_reads_one_setting_in_seed_order():
    f = _sharp([1.0, 2.0, 3.0, 4.0, 5.0])
    f["runs"].reverse()
    assert ks.phi(f, "full", 1e-3) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert ks.phi(f, "subspace", 5e-4) == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.25])
    with pytest.raises(ValueError, match="expected"):
        ks.phi(f, "full", 1e-3, seeds=[0, 1])
    with pytest.raises(KeyError, match="no sharpness"):
        ks.phi(f, "full", 1e-2)


# ---------------------------------------------------------------- tiny real runs --------------------------

def test_sharpness_of_model_grid_and_box():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(2))
    out = ks.sharpness_of_model(model, x, y, {"eps": [1e-3, 1e-2], "subspace_dim": 5, "maxiter": 5})
    assert out["n"] == 30 and out["dim"] == 4 * 6 + 6 + 6 * 3 + 3
    assert [(v["space"], v["eps"]) for v in out["values"]] == [(s, e) for s in ks.SPACES for e in (1e-3, 1e-2)]
    assert all(v["value"] >= 0 for v in out["values"])
    full = {v["eps"]: v["value"] for v in out["values"] if v["space"] == "full"}
    assert full[1e-2] > full[1e-3] > 0  # a larger box: a larger rise
    assert all(v["p"] == 5 for v in out["values"] if v["space"] == "subspace")


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """An SB run (with a snapshot) and an LB run of a tiny BN MLP on 64 digits, two seeds, two epochs."""
    from losslab.claims.training import train_run

    root = tmp_path_factory.mktemp("keskar")
    run = {"dataset": {"name": "digits", "preprocessing": ["normalize"], "n_train": 64, "n_test": 40},
           "model": {"name": "mlp", "widths": [8], "bn": True},
           "recipe": {"optimizer": "adam", "lr": 1e-2, "batch_size": 32, "epochs": 2, "loss": "ce"}}
    sb = {**run, "recipe": {**run["recipe"], "batch_size": 8, "snapshots": [1]}}
    for name, spec in (("sb", sb), ("lb", run)):
        for seed in (0, 1):
            train_run(spec, seed, root / "runs" / name / f"seed{seed}", root / "ckpt")
    return root, run


def test_warm_start_sharpness_of_dir_and_interpolation(tiny_runs):
    root, run = tiny_runs
    ks.warm_start(run, root / "runs" / "sb", [1], [0, 1], root / "warm", root / "ckpt")
    m = json.loads((root / "warm" / "epoch1" / "seed1" / "metrics.json").read_text())
    assert m["run"]["recipe"]["init_from"].endswith("sb/seed1/snapshots/epoch_1.pt") and m["epochs"] == 2
    with pytest.raises(FileNotFoundError, match="recipe.snapshots"):
        ks.warm_start(run, root / "runs" / "sb", [2], [0], root / "warm2", root / "ckpt")

    settings = {"eps": [1e-3], "subspace_dim": 4, "maxiter": 2, "n_train": 32}
    warm = ks.sharpness_of_dir(root / "warm", settings)
    assert [(r["group"], r["seed"]) for r in warm["runs"]] == [("epoch1", 0), ("epoch1", 1)]
    assert warm["runs"][0]["n"] == 32 and warm["settings"]["maxiter"] == 2
    plain = ks.sharpness_of_dir(root / "runs" / "lb", settings)
    assert [r["group"] for r in plain["runs"]] == ["", ""]
    assert len(ks.phi(plain, "subspace", 1e-3, seeds=[0, 1])) == 2

    s = ks.interpolate_pair(run, root / "runs" / "sb" / "seed0" / "model.pt",
                            root / "runs" / "lb" / "seed0" / "model.pt", root / "line.h5",
                            {"alphas": [-1.0, 2.0, 7], "n_train": 32, "n_test": 20})
    assert s["xcoordinates"].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert np.isfinite(s["train_loss"]).all() and s["test_acc"].shape == (7,)
    net = ks.load_net({"settings": {"network": "F1"}, "runs": {"lb": str(root / "runs" / "lb")},
                       "sharpness": {}, "interpolation": str(root), "interpolation_matched": str(root)})
    assert [r["seed"] for r in net["runs"]["lb"]] == [0, 1] and net["interpolation"] == {}
    assert net["interpolation_matched"] == {}


def test_matched_is_a_role_key_of_the_sharpness_block():
    s = ks.SharpnessSettings.of_block({"network": "F1", "small": "sb", "large": "lb", "matched": "lb_steps",
                                       "eps": [1e-3]})
    assert list(s.eps) == [1e-3]
    with pytest.raises(Exception, match="machted"):
        ks.SharpnessSettings.of_block({"machted": "lb_steps"})


def test_steps_and_log_ratios():
    assert ks._steps({"train_size": 1437, "epochs": 450, "recipe": {"batch_size": 359}}) == 1800  # 4 a epoch
    assert ks._steps({"train_size": 1437, "epochs": 40, "recipe": {"batch_size": 32}}) == 1800
    assert ks._steps({"epochs": 40}) is None
    out = ks._log_ratios([10.0, 1.0, -1.0], [1.0, 0.0, 1.0], math.log10)
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1]) and math.isnan(out[2])
