"""The lecture family's training claims: the trainer options they need (mixup, SWA, stop at a train accuracy,
random labels) and each claim function on synthetic run metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from losslab.claims.lecture import trained as lecture
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from losslab.core.data import DataError, Prepared, prepare, random_labels
from losslab.core.losses import per_sample_loss
from losslab.core.models import build
from losslab.core.optim import RecipeError
from losslab.core.trainer import Recipe, fit, mixup_lambda, mixup_loss, swa_update
from losslab.pipeline.registry import load_registry, registry_entry

CHECK = {"rule": "synthetic", "min_agree": 0.8}
REGISTRY = load_registry(Path(__file__).resolve().parents[2] / "config" / "claims.yaml")


def _data(n: int = 96, seed: int = 0) -> Prepared:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.flatten(1).sum(1) > 0).long() + 2 * (x[:, 0, 0, 0] > 0).long()
    return Prepared("toy", x[: n - 32], y[: n - 32], x[n - 32:], y[n - 32:], 4)


def _model(bn: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build({"name": "mlp", "widths": [8], "bn": bn}, (1, 4, 4), 4)


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------- trainer options ----------------------------

def test_mixup_loss_is_the_mixed_loss_of_the_mixed_batch():
    model, data = _model(), _data()
    x, y = data.x_train[:16], data.y_train[:16]
    crit = per_sample_loss("ce")
    gen = torch.Generator().manual_seed(3)
    twin = torch.Generator().manual_seed(3)
    got = mixup_loss(model, crit, x, y, 1.0, gen)
    lam = mixup_lambda(1.0, twin)
    perm = torch.randperm(16, generator=twin)
    out = model(lam * x + (1 - lam) * x[perm])
    want = (lam * nn.functional.cross_entropy(out, y, reduction="none")
            + (1 - lam) * nn.functional.cross_entropy(out, y[perm], reduction="none")).mean()
    assert 0 < lam < 1 and not torch.equal(perm, torch.arange(16))
    assert torch.allclose(got, want)
    assert not torch.allclose(got, crit(model(x), y).mean())  # it is not the plain loss
    assert torch.equal(gen.get_state(), twin.get_state())  # the draws come from the run's generator only


def test_mixup_lambda_follows_beta():
    gen = torch.Generator().manual_seed(0)
    lams = np.array([mixup_lambda(0.2, gen) for _ in range(2000)])
    # Beta(0.2, 0.2): mean 1/2, mass near the ends (P(lam < 0.1) ~ 0.39)
    assert abs(lams.mean() - 0.5) < 0.03 and 0.33 < (lams < 0.1).mean() < 0.45


def test_mixup_changes_training_and_zero_is_off():
    data = _data()
    states = {}
    for alpha in (0.0, 1.0):
        m = _model()
        fit(m, data, Recipe(optimizer="sgd", lr=0.1, batch_size=16, epochs=2, mixup_alpha=alpha), seed=0)
        states[alpha] = _params(m)
    plain = _model()
    fit(plain, data, Recipe(optimizer="sgd", lr=0.1, batch_size=16, epochs=2), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(states[0.0], _params(plain)))
    assert not all(torch.equal(a, b) for a, b in zip(states[0.0], states[1.0]))


def test_swa_update_is_the_running_mean():
    model = _model()
    iterates, avg = [], None
    for n in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        iterates.append(_params(model))
        avg = swa_update(avg, n, model)
    for k, a in enumerate(avg):
        assert torch.allclose(a, torch.stack([it[k] for it in iterates]).mean(0), atol=1e-6)


def test_swa_final_model_is_the_mean_of_the_iterates(tmp_path):
    """SWA from epoch 2 of 5: the final weights are the mean of the iterates at the end of epochs 3, 4, 5 (taken
    from a 6-epoch twin whose first 5 epochs are the same run), and the lr is the constant SWA lr there."""
    data = _data()
    base = dict(optimizer="momentum", lr=0.05, batch_size=16, swa={"start": 2, "lr": 0.01})
    swa_model = _model()
    state = fit(swa_model, data, Recipe(epochs=5, **base), seed=1)
    twin = _model()
    fit(twin, data, Recipe(epochs=6, snapshots=[3, 4, 5], **base), seed=1, out_dir=tmp_path)
    snaps = [torch.load(tmp_path / "snapshots" / f"epoch_{e}.pt", weights_only=True) for e in (3, 4, 5)]
    for name, p in swa_model.named_parameters():
        assert torch.allclose(p, torch.stack([s[name] for s in snaps]).mean(0), atol=1e-6), name
    assert [r["lr"] for r in state["history"]] == [0.05, 0.05, 0.01, 0.01, 0.01]
    assert state["swa_n"] == 3


def test_swa_recomputes_batchnorm_statistics_of_the_average():
    data = _data()
    model = _model(bn=True)
    fit(model, data, Recipe(optimizer="momentum", lr=0.05, batch_size=16, epochs=4, swa={"start": 1, "lr": 0.02}),
        seed=0)
    pre = model.net[1](data.x_train.flatten(1)).detach()  # inputs of the first BN layer, averaged weights
    bn = model.net[2]
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, pre.var(0, unbiased=True), rtol=1e-4, atol=1e-5)


class _Stop(Exception):
    pass


def test_swa_and_mixup_resume_bitwise(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CHECKPOINT_EVERY", "0")  # a checkpoint after every epoch: resume from epoch 4's
    data = _data()
    recipe = Recipe(optimizer="momentum", lr=0.05, batch_size=16, epochs=6, mixup_alpha=1.0,
                    swa={"start": 2, "lr": 0.01})
    straight = _model(bn=True)
    fit(straight, data, recipe, seed=2)

    def interrupt(epoch, row):
        if epoch == 4:
            raise _Stop

    ck = tmp_path / "ck.pt"
    with pytest.raises(_Stop):
        fit(_model(bn=True), data, recipe, seed=2, ckpt_path=ck, on_epoch_end=interrupt)
    resumed = _model(bn=True)
    epochs = []
    fit(resumed, data, recipe, seed=2, ckpt_path=ck, on_epoch_end=lambda e, r: epochs.append(e))
    assert epochs == [5, 6]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_stop_at_train_acc(tmp_path):
    data = _data()
    model = _model()
    state = fit(model, data, Recipe(optimizer="adam", lr=0.01, batch_size=16, epochs=200, stop_at_train_acc=0.9),
                seed=0)
    assert state["stopped"] and state["epoch"] < 200
    assert state["history"][-1]["train_acc"] >= 0.9
    assert all(r["train_acc"] < 0.9 for r in state["history"][:-1])


@pytest.mark.parametrize("spec, match", [
    ({"mixup_alpha": -1.0}, "mixup_alpha"),
    ({"swa": {"start": 10, "lr": 0.01}}, "swa.start"),
    ({"swa": {"start": 1}}, "recipe.swa"),
    ({"swa": {"start": 1, "lr": 0.0}}, "swa.lr"),
    ({"stop_at_train_acc": 1.5}, "stop_at_train_acc"),
])
def test_recipe_rejects_bad_lecture_options(spec, match):
    with pytest.raises(RecipeError, match=match):
        Recipe.from_mapping({"epochs": 5, **spec})


def test_random_labels_are_seeded_and_only_in_train(tmp_path):
    y = torch.arange(1000) % 10
    a, b = random_labels(y, 10, 1.0, 0), random_labels(y, 10, 1.0, 0)
    assert torch.equal(a, b) and not torch.equal(a, random_labels(y, 10, 1.0, 1))
    assert 0.85 < (a != y).float().mean() < 0.95  # a uniform redraw keeps ~1/10 by chance
    half = random_labels(y, 10, 0.5, 0)
    assert (half != y).float().mean() < 0.5
    with pytest.raises(DataError, match="fraction"):
        random_labels(y, 10, 0.0, 0)
    true = prepare({"name": "digits", "preprocessing": ["normalize"]}, resources=tmp_path)
    rand = prepare({"name": "digits", "preprocessing": ["normalize"], "random_labels": {"fraction": 1.0, "seed": 0}},
                   resources=tmp_path)
    assert torch.equal(true.x_train, rand.x_train) and torch.equal(true.x_test, rand.x_test)
    assert torch.equal(true.y_test, rand.y_test)
    assert (true.y_train != rand.y_train).float().mean() > 0.8
    with pytest.raises(DataError, match="random_labels"):
        prepare({"name": "digits", "random_labels": {"share": 1.0}}, resources=tmp_path)


# ---------------------------------------------------------------- claim functions on synthetic runs -------
# Each claim is decided by its pre-registration, the decision block of config/claims.yaml as written there.

def _decision(claim_id):
    return registry_entry(REGISTRY, claim_id)["decision"]


def _run(seed, **kw):
    base = {"seed": seed, "diverged": False, "num_parameters": 100, "train_loss": 0.1, "test_loss": 0.2,
            "train_acc": 1.0, "test_acc": 0.9, "epochs": 10, "train_size": 320,
            "recipe": {"epochs": 10, "loss": "ce", "batch_size": 32}, "run": {"dataset": {"name": "digits"}}}
    return {**base, **kw}


def _verdict(result, tmp_path, parts):
    assert (tmp_path / "figure.png").stat().st_size > 0 and (tmp_path / "table.csv").exists()
    assert json.loads((tmp_path / "figure.data.json").read_text())["plot"].startswith("lecture.")
    assert [d["name"] for d in result.decisions] == parts
    assert result.regime and "train loss" in result.regime
    return result.verdict


@pytest.mark.parametrize("spreads, inits, verdict", [
    ((0.3, 0.1, 0.01), 20, REPRODUCED),
    ((0.1, 0.2, 0.3), 20, NOT_REPRODUCED),  # the spread grows with size
    ((0.3, 0.1, 0.2), 3, INCONCLUSIVE),     # three inits: ln(1.5) within the normal interval
])
def test_local_minima_cluster(tmp_path, spreads, inits, verdict):
    rng = np.random.default_rng(0)
    runs = {}
    for name, n, s in zip(("w4", "w16", "w64"), (300, 1200, 5000), spreads):
        z = rng.standard_normal(inits)
        losses = 0.5 + s * (z - z.mean()) / z.std(ddof=1)
        runs[name] = [_run(k, num_parameters=n, train_loss=float(v)) for k, v in enumerate(losses)]
    decision = _decision("local-minima-cluster")
    res = lecture.local_minima_cluster(dict(reversed(list(runs.items()))), CHECK, decision, "smoke", tmp_path)
    assert _verdict(res, tmp_path, ["spread_shrinks"]) == verdict
    assert res.numbers["w16.train_loss_std"] == pytest.approx(spreads[1])
    assert res.numbers["effect.spread_shrinks.estimate"] == pytest.approx(math.log(spreads[0] / spreads[2]))
    assert res.decisions[0]["se"] == pytest.approx(math.sqrt(2 / (2 * (inits - 1))))
    assert "100 steps" in res.regime
    runs["w64"][1]["diverged"] = True
    assert lecture.local_minima_cluster(runs, CHECK, decision, "smoke", tmp_path).verdict == INCONCLUSIVE


def _swa_runs(acc_sgd, acc_swa):
    return {"sgd": [_run(s, test_acc=a) for s, a in enumerate(acc_sgd)],
            "swa": [_run(s, test_acc=a, recipe={"epochs": 10, "swa": {"start": 7, "lr": 0.01}})
                    for s, a in enumerate(acc_swa)]}


def _lines(curv, centre=(0.1, 0.1), n_seeds=3):
    alphas = np.linspace(-1, 1, 9)
    return alphas, {v: {s: [list(c0 + c * (1 + 0.1 * j) * alphas ** 2) for j in range(2)] for s in range(n_seeds)}
                    for v, c, c0 in zip(("sgd", "swa"), curv, centre)}


@pytest.mark.parametrize("curv, acc, verdict", [
    ((2.0, 1.0), ((0.90, 0.91, 0.92), (0.92, 0.93, 0.93)), REPRODUCED),
    ((1.0, 2.0), ((0.90, 0.91, 0.92), (0.92, 0.93, 0.93)), NOT_REPRODUCED),   # SWA sharper
    ((2.0, 1.0), ((0.92, 0.93, 0.93), (0.90, 0.91, 0.92)), NOT_REPRODUCED),   # SWA tests worse
    ((2.0, 1.0), ((0.90, 0.92), (0.91, 0.91)), INCONCLUSIVE),                 # two seeds, one each way
])
def test_swa_claim(tmp_path, curv, acc, verdict):
    runs = _swa_runs(*acc)
    alphas, lines = _lines(curv, n_seeds=len(acc[0]))
    res = lecture.swa_claim(runs, lines, alphas, {**CHECK, "radius": 0.5}, _decision("swa"), "smoke", tmp_path)
    assert _verdict(res, tmp_path, ["accuracy", "flatness"]) == verdict
    assert res.numbers["sgd.loss_rise_mean"] == pytest.approx(curv[0] * 1.05 * 0.25)
    assert res.numbers["effect.flatness.estimate"] == pytest.approx(math.log(curv[0] / curv[1]))


def test_swa_flatness_is_decided_on_the_loss_normalised_rise(tmp_path):
    """SWA's rise is half SGD's, but so is its train loss at the centre: flatter raw, not loss-normalised."""
    runs = _swa_runs((0.90, 0.91, 0.92), (0.92, 0.93, 0.93))
    alphas, lines = _lines((2.0, 1.0), centre=(0.1, 0.05))
    res = lecture.swa_claim(runs, lines, alphas, {**CHECK, "radius": 0.5}, _decision("swa"), "smoke", tmp_path)
    parts = {d["name"]: d for d in res.decisions}
    assert parts["flatness"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert parts["flatness"]["verdict"] == NOT_REPRODUCED and parts["accuracy"]["verdict"] == REPRODUCED
    assert res.verdict == NOT_REPRODUCED
    assert res.numbers["flatness_raw.ln_ratio_mean"] == pytest.approx(math.log(2))
    assert "raw" in res.notes


def test_swa_claim_needs_one_swa_variant(tmp_path):
    runs = _swa_runs((0.9,), (0.9,))
    runs["swa"][0]["recipe"] = {"epochs": 10}
    with pytest.raises(ValueError, match="recipe.swa"):
        lecture.swa_claim(runs, {}, [0.0], {**CHECK, "radius": 0.5}, _decision("swa"), "smoke", tmp_path)


@pytest.mark.parametrize("erm, mix, verdict", [
    ((0.90, 0.91, 0.92, 0.90, 0.91), (0.92, 0.93, 0.93, 0.92, 0.92), REPRODUCED),
    ((0.92, 0.93, 0.93, 0.92, 0.92), (0.90, 0.91, 0.92, 0.90, 0.91), NOT_REPRODUCED),
    ((0.90, 0.92), (0.91, 0.91), INCONCLUSIVE),  # two seeds, one each way
])
def test_mixup_claim(tmp_path, erm, mix, verdict):
    runs = {"mixup": [_run(s, test_acc=a, recipe={"epochs": 10, "mixup_alpha": 1.0, "batch_size": 32})
                      for s, a in enumerate(mix)],
            "erm": [_run(s, test_acc=a) for s, a in enumerate(erm)]}
    res = lecture.mixup_claim(runs, CHECK, _decision("mixup"), "smoke", tmp_path)
    assert _verdict(res, tmp_path, ["accuracy"]) == verdict
    want = np.mean([math.log((1 - e) / (1 - m)) for e, m in zip(erm, mix)])
    assert res.numbers["effect.accuracy.estimate"] == pytest.approx(want)
    assert "100 steps" in res.regime and "steps" in (tmp_path / "table.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("ce, mse, verdict", [
    ((0.95, 0.96, 0.95), (0.93, 0.94, 0.94), REPRODUCED),
    ((0.93, 0.94, 0.94), (0.95, 0.96, 0.95), NOT_REPRODUCED),
    ((0.95,), (0.93,), INCONCLUSIVE),  # one seed: no confidence bound
])
def test_mse_vs_ce_claim(tmp_path, ce, mse, verdict):
    runs = {"ce": [_run(s, test_acc=a) for s, a in enumerate(ce)],
            "mse": [_run(s, test_acc=a, recipe={"epochs": 10, "loss": "mse"}) for s, a in enumerate(mse)]}
    res = lecture.mse_vs_ce_claim(runs, CHECK, _decision("mse-vs-cross-entropy"), "smoke", tmp_path)
    assert _verdict(res, tmp_path, ["accuracy"]) == verdict
    want = np.mean([math.log((1 - m) / (1 - c)) for c, m in zip(ce, mse)])
    if len(ce) > 1:  # a part's effect joins the numbers when it has a standard error (two or more replicates)
        assert res.numbers["effect.accuracy.estimate"] == pytest.approx(want)
    else:
        assert "effect.accuracy.estimate" not in res.numbers


def _history(fit_epoch, budget):
    """Train accuracy rising linearly to 1 at ``fit_epoch`` (never, if it is beyond the budget)."""
    return [{"epoch": str(e), "train_acc": str(min(1.0, e / fit_epoch))} for e in range(1, budget + 1)]


@pytest.mark.parametrize("fits, verdict", [
    ({"true_w64": (5, 6, 5), "random_w64": (50, 60, 55), "random_w512": (20, 25, 22)}, REPRODUCED),
    ({"true_w64": (5, 6, 5), "random_w64": (999, 999, 999), "random_w512": (20, 25, 22)}, NOT_REPRODUCED),  # no fit
    ({"true_w64": (5, 6, 5), "random_w64": (20, 25, 22), "random_w512": (50, 60, 55)}, NOT_REPRODUCED),  # wider slower
    ({"true_w64": (5, 6, 5), "random_w64": (50, 20, 55), "random_w512": (20, 25, 22)}, INCONCLUSIVE),
    ({"true_w64": (5, 6, 5), "random_w64": (50, 999, 55), "random_w512": (20, 25, 22)}, INCONCLUSIVE),  # one unfit
    ({"true_w64": (5,), "random_w64": (50,), "random_w512": (20,)}, INCONCLUSIVE),  # one seed
])
def test_memorize_claim(tmp_path, fits, verdict):
    size = {"true_w64": 4810, "random_w64": 4810, "random_w512": 38410}
    runs, hist = {}, {}
    for v, eps in fits.items():
        ds = {"name": "digits", **({"random_labels": {"fraction": 1.0}} if v.startswith("random") else {})}
        runs[v] = [_run(s, num_parameters=size[v], recipe={"epochs": 100}, run={"dataset": ds},
                        train_acc=1.0 if e <= 100 else 0.5) for s, e in enumerate(eps)]
        hist[v] = [_history(e, min(e, 100)) for e in eps]
    res = lecture.memorize_claim(runs, hist, {**CHECK, "target_train_acc": 1.0}, _decision("memorize-random-labels"),
                                 "smoke", tmp_path)
    assert _verdict(res, tmp_path, ["fits_random random_w64", "fits_random random_w512", "slower_than_true",
                                    "wider_faster"]) == verdict
    if verdict == REPRODUCED:
        assert res.numbers["random_w64.epochs_to_fit_mean"] == pytest.approx(55.0)
        assert res.numbers["effect.slower_than_true.estimate"] == pytest.approx(
            np.mean([math.log(50 / 5), math.log(60 / 6), math.log(55 / 5)]))


def test_the_job_reads_run_directories_and_decides_by_the_registry(tmp_path):
    """run_claim on synthetic run directories (the rule's ``runs``): mixup decided by the registry's block."""
    from losslab import io as lio
    from losslab.claims import jobs
    from losslab.claims.claim_job import ClaimJob
    from losslab.claims.runs import METRICS, seed_dir

    accs = {"erm": (0.92, 0.93, 0.93, 0.92, 0.92), "mixup": (0.90, 0.91, 0.92, 0.90, 0.91)}
    dirs = {}
    for v, acc in accs.items():
        dirs[v] = str(tmp_path / "runs" / v)
        for s, a in enumerate(acc):
            (d := seed_dir(dirs[v], s)).mkdir(parents=True)
            recipe = {"epochs": 10, "batch_size": 32, **({"mixup_alpha": 1.0} if v == "mixup" else {})}
            lio.write_json(d / METRICS, _run(s, test_acc=a, recipe=recipe))
    job = ClaimJob(claim=registry_entry(REGISTRY, "mixup"), scale="smoke", out_dir=tmp_path / "out",
                   params={"runs": dirs})
    res = jobs.run_claim(job)
    assert res.verdict == NOT_REPRODUCED and [d["name"] for d in res.decisions] == ["accuracy"]
    assert (tmp_path / "out" / "decision.png").exists()


def test_epochs_to_fit():
    assert lecture.epochs_to_fit(_history(7, 20), 1.0) == 7
    assert lecture.epochs_to_fit(_history(30, 20), 1.0) == math.inf
    assert lecture.epochs_to_fit([{"epoch": "1", "train_acc": ""}, {"epoch": "2", "train_acc": "1.0"}], 1.0) == 2


def test_swa_batchnorm_statistics_come_from_the_augmented_inputs():
    """bn_update runs over the training pipeline: with a random shift the recomputed statistics are those of
    shifted inputs (load_average on the inputs it is given), not of the clean ones."""
    from dataclasses import replace

    from losslab.core.trainer import load_average

    data = replace(_data(), random_steps=[("shift", {"pad": 1})])
    model = _model(bn=True)
    fit(model, data, Recipe(optimizer="momentum", lr=0.05, batch_size=16, epochs=3, swa={"start": 1, "lr": 0.02}),
        seed=0)
    clean = model.net[1](data.x_train.flatten(1)).detach()
    assert not torch.allclose(model.net[2].running_mean, clean.mean(0), atol=1e-4)
    shifted = data.augment(data.x_train, torch.Generator().manual_seed(5))
    load_average(model, _params(model), shifted)
    pre = model.net[1](shifted.flatten(1)).detach()
    assert torch.allclose(model.net[2].running_mean, pre.mean(0), atol=1e-5)
    assert torch.allclose(model.net[2].running_var, pre.var(0, unbiased=True), rtol=1e-4, atol=1e-5)
