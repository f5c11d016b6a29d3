"""The trainer: recipes, schedules, determinism, resume after a kill, divergence, outputs."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from losslab import io as lio
from losslab.pipeline.config import read_yaml, run_spec
from losslab.core.optim import RecipeError, lr_at, sgdr_restart_epochs
from losslab.core.trainer import Recipe, holdout
from losslab.claims.runs import read_runs, run_key, seed_dirs
from losslab.claims.training import prepare_run, select_lr, train_run

ROOT = Path(__file__).resolve().parents[2]

# a small run with every source of randomness the trainer handles: init, data order, shift augmentation,
# dropout (global RNG), momentum buffers
RUN = {
    "dataset": {"name": "digits", "preprocessing": ["normalize", "shift"], "n_train": 300},
    "model": {"name": "alexnet", "channels": [4, 8], "dense": [16], "bn": True, "dropout": 0.3, "kernel": 3},
    "recipe": {"optimizer": "momentum", "lr": 0.05, "batch_size": 32, "epochs": 6, "weight_decay": 5e-4,
               "schedule": {"name": "cosine"}},
}


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------ schedules ------------------------------

def test_paper_recipe_step_schedule():
    """The paper scale's ResNet-56 recipe: lr 0.1, x0.1 at epochs 150, 225, 275 (0-based epoch indices)."""
    paper = read_yaml(ROOT / "config" / "scales" / "paper.yaml")
    recipe = Recipe.from_mapping(run_spec(paper["experiments"]["ablation"], "full")["recipe"])
    assert (recipe.optimizer, recipe.momentum, recipe.weight_decay, recipe.batch_size, recipe.epochs) == (
        "momentum", 0.9, 5e-4, 128, 300)
    lr = lambda e: lr_at(recipe.schedule, recipe.lr, e, recipe.epochs)  # noqa: E731
    assert lr(0) == pytest.approx(0.1)
    assert lr(149) == pytest.approx(0.1)
    assert lr(149.99) == pytest.approx(0.1)
    assert lr(150) == pytest.approx(0.01)
    assert lr(224) == pytest.approx(0.01)
    assert lr(225) == pytest.approx(0.001)
    assert lr(275) == pytest.approx(0.0001)
    assert lr(299.9) == pytest.approx(0.0001)


def test_paper_ablation_variants_remove_one_ingredient_each():
    paper = read_yaml(ROOT / "config" / "scales" / "paper.yaml")["experiments"]["ablation"]
    full = run_spec(paper, "full")
    assert full["dataset"]["name"] == "cifar10"
    assert full["dataset"]["preprocessing"] == ["normalize", {"shift": 4}, "flip"]
    assert full["model"] == {"name": "resnet", "depth": 56, "width": 16, "skip": True}
    assert run_spec(paper, "no_momentum")["recipe"]["optimizer"] == "sgd"
    assert run_spec(paper, "no_weight_decay")["recipe"]["weight_decay"] == 0.0
    assert run_spec(paper, "no_preprocessing")["dataset"]["preprocessing"] == []
    none = run_spec(paper, "none")
    assert (none["recipe"]["optimizer"], none["recipe"]["weight_decay"], none["dataset"]["preprocessing"]) == (
        "sgd", 0.0, [])
    # removing one ingredient touches nothing else
    for v in ("no_momentum", "no_weight_decay", "no_preprocessing"):
        spec = run_spec(paper, v)
        assert spec["model"] == full["model"]
        assert spec["recipe"]["lr"] == full["recipe"]["lr"] and spec["recipe"]["epochs"] == 300


def test_schedules():
    cos = {"name": "cosine"}
    assert lr_at(cos, 0.1, 0, 10) == pytest.approx(0.1)
    assert lr_at(cos, 0.1, 5, 10) == pytest.approx(0.05)
    assert lr_at(cos, 0.1, 10, 10) == pytest.approx(0.0)
    lin = {"name": "linear", "final": 0.01}
    assert lr_at(lin, 0.1, 5, 10) == pytest.approx(0.055)
    assert lr_at({"name": "constant"}, 0.3, 7, 10) == 0.3
    sgdr = {"name": "sgdr", "T0": 5, "Tmult": 2, "eta_min": 0.0}
    assert sgdr_restart_epochs(sgdr, 35) == [5, 15]
    assert lr_at(sgdr, 0.05, 0, 35) == pytest.approx(0.05)
    assert lr_at(sgdr, 0.05, 4.999, 35) < 1e-6
    assert lr_at(sgdr, 0.05, 5, 35) == pytest.approx(0.05)  # restart
    assert lr_at(sgdr, 0.05, 10, 35) == pytest.approx(0.025)  # half-way through the 10-epoch period
    with pytest.raises(RecipeError, match="unknown lr schedule"):
        lr_at({"name": "warmup"}, 0.1, 0, 1)


@pytest.mark.parametrize("bad, match", [
    ({"optimizer": "lbfgs"}, "recipe.optimizer"),
    ({"lr": float("nan")}, "recipe.lr"),
    ({"lr": -0.1}, "recipe.lr"),
    ({"epochs": 0}, "recipe.epochs"),
    ({"batch_size": "half"}, "recipe.batch_size"),
    ({"loss": "hinge"}, "recipe.loss"),
    ({"momentun": 0.9}, "unknown keys"),
])
def test_recipe_rejects_bad_values(bad, match):
    with pytest.raises(RecipeError, match=match):
        Recipe.from_mapping({**RUN["recipe"], **bad})


# ------------------------------------------------------------------ training --------------------------------

def test_outputs_and_determinism(tmp_path):
    m1 = train_run(RUN, 3, tmp_path / "a", tmp_path / "ck_a")
    m2 = train_run(RUN, 3, tmp_path / "b", tmp_path / "ck_b")
    assert_bitwise_equal(state(tmp_path / "a" / "model.pt"), state(tmp_path / "b" / "model.pt"))
    for k in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert m1[k] == m2[k]
    assert m1["epochs"] == 6 and not m1["diverged"] and m1["seed"] == 3 and m1["threads"] == 1
    assert m1["recipe"]["lr"] == 0.05 and m1["run"] == RUN and "torch" in m1["versions"]
    on_disk = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert on_disk["test_acc"] == m1["test_acc"]
    rows = (tmp_path / "a" / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,batch_loss,train_loss") and len(rows) == 1 + 6
    # learning something: better than chance (10 classes)
    assert m1["train_acc"] > 0.3
    # another seed gives other weights
    train_run(RUN, 4, tmp_path / "c", tmp_path / "ck_c")
    assert not torch.equal(state(tmp_path / "a" / "model.pt")["classifier.1.weight"],
                           state(tmp_path / "c" / "model.pt")["classifier.1.weight"])


def test_read_runs_orders_seeds(tmp_path):
    for s in (10, 2):
        lio.write_json(tmp_path / f"seed{s}" / "metrics.json", {"seed": s})
    assert [r["seed"] for r in read_runs(tmp_path)] == [2, 10]
    (tmp_path / "seed_notes").mkdir()  # not a seed directory
    # every reader of a run's seeds shares this order (the Bottou claim once read histories as seed10, seed2)
    assert [d.name for d in seed_dirs(tmp_path)] == ["seed2", "seed10"]
    with pytest.raises(FileNotFoundError, match="no seed"):
        read_runs(tmp_path / "missing")


def test_full_batch_means_one_step_per_epoch(tmp_path):
    run = {**RUN, "recipe": {**RUN["recipe"], "batch_size": "full", "optimizer": "sgd", "epochs": 2}}
    steps = []
    model, data, recipe = prepare_run(run, 0)
    orig = torch.optim.SGD.step

    def counting_step(self, *a, **k):
        steps.append(1)
        return orig(self, *a, **k)

    torch.optim.SGD.step = counting_step
    try:
        from losslab.core.trainer import fit
        fit(model, data, recipe, 0)
    finally:
        torch.optim.SGD.step = orig
    assert len(steps) == 2


def test_divergence_is_reported_not_raised(tmp_path):
    run = {**RUN, "recipe": {**RUN["recipe"], "lr": 1e6, "schedule": {"name": "constant"}}}
    m = train_run(run, 0, tmp_path / "out", tmp_path / "ck")
    assert m["diverged"] is True
    assert m["epochs"] < 6
    assert (tmp_path / "out" / "model.pt").exists()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["diverged"] is True


def test_snapshots_and_init_from(tmp_path):
    run = {**RUN, "recipe": {**RUN["recipe"], "epochs": 3, "snapshots": [0, 2]}}
    train_run(run, 0, tmp_path / "out", tmp_path / "ck")
    snaps = sorted(p.name for p in (tmp_path / "out" / "snapshots").iterdir())
    assert snaps == ["epoch_0.pt", "epoch_2.pt"]
    warm = {**RUN, "recipe": {**RUN["recipe"], "init_from": str(tmp_path / "out" / "snapshots" / "epoch_2.pt")}}
    model, _, _ = prepare_run(warm, 7)
    assert_bitwise_equal(model.state_dict(), state(tmp_path / "out" / "snapshots" / "epoch_2.pt"))


def test_changed_recipe_never_resumes_a_stale_checkpoint(tmp_path):
    assert run_key(RUN, 0) != run_key(RUN, 1)
    other = {**RUN, "recipe": {**RUN["recipe"], "lr": 0.02}}
    assert run_key(RUN, 0) != run_key(other, 0)
    train_run(RUN, 0, tmp_path / "a", tmp_path / "ck")
    train_run(other, 0, tmp_path / "b", tmp_path / "ck")
    fresh = train_run(other, 0, tmp_path / "c", tmp_path / "ck_fresh")
    assert_bitwise_equal(state(tmp_path / "b" / "model.pt"), state(tmp_path / "c" / "model.pt"))
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["test_acc"] == fresh["test_acc"]


def test_checkpoints_are_written_every_so_many_seconds_and_any_resumes_bitwise(tmp_path, monkeypatch):
    """A run of many short epochs is checkpointed after its first and last epoch and every CHECKPOINT_EVERY
    seconds (not once per epoch); resuming from a checkpoint of any epoch ends bitwise equal to a straight run."""
    from losslab.core import trainer

    written: list[int] = []
    save = lio.save_torch

    def counting(path, obj):
        if isinstance(obj, dict) and "optimizer" in obj:  # a checkpoint (not a model file or snapshot)
            written.append(obj["epoch"])
        return save(path, obj)

    monkeypatch.setattr(trainer.lio, "save_torch", counting)
    run = {**RUN, "recipe": {**RUN["recipe"], "epochs": 6}}
    train_run(run, 5, tmp_path / "a", tmp_path / "ck_a")
    assert written == [1, 6]  # the default interval (30 s) is longer than this whole run
    written.clear()
    monkeypatch.setenv("LOSSLAB_CHECKPOINT_EVERY", "0")
    train_run(run, 5, tmp_path / "b", tmp_path / "ck_b")
    assert written == [1, 2, 3, 4, 5, 6]
    # a run that dies in epoch 3 left only epoch 1's checkpoint: the rerun redoes epochs 2-6, to the same weights
    monkeypatch.delenv("LOSSLAB_CHECKPOINT_EVERY")
    written.clear()

    def die(epoch, row):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(run, 5, tmp_path / "c", tmp_path / "ck_c", on_epoch_end=die)
    assert written == [1]
    epochs_run: list[int] = []
    train_run(run, 5, tmp_path / "c", tmp_path / "ck_c", on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [2, 3, 4, 5, 6]
    assert_bitwise_equal(state(tmp_path / "c" / "model.pt"), state(tmp_path / "a" / "model.pt"))


KILL_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from losslab.claims.training import train_run
    run, out, ck = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    # slow each epoch down so the parent can kill the process between two checkpoints
    train_run(run, 5, out, ck, on_epoch_end=lambda epoch, row: time.sleep(0.4))
""")


def test_killed_run_resumes_to_identical_weights(tmp_path):
    """kill -9 a training process mid-way; the rerun resumes from the last checkpoint and ends bitwise equal to
    an uninterrupted run."""
    run = {**RUN, "recipe": {**RUN["recipe"], "epochs": 8}}
    ck = tmp_path / "ck"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(run), str(tmp_path / "killed"),
                             str(ck)], env={**os.environ, "OMP_NUM_THREADS": "1", "LOSSLAB_CHECKPOINT_EVERY": "0"})
    ckpt = ck / f"{run_key(run, 5)}.pt"
    deadline = time.time() + 120
    epoch = 0
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            epoch = lio.load_torch(ckpt)["epoch"]
            if epoch >= 3:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the training process ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "model.pt").exists()
    killed_at = lio.load_torch(ckpt)["epoch"]
    assert 3 <= killed_at < 8

    epochs_run = []
    resumed = train_run(run, 5, tmp_path / "killed", ck, on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == list(range(killed_at + 1, 9)), "the rerun must start after the last checkpoint"
    straight = train_run(run, 5, tmp_path / "straight", tmp_path / "ck2")
    assert_bitwise_equal(state(tmp_path / "killed" / "model.pt"), state(tmp_path / "straight" / "model.pt"))
    assert resumed["test_loss"] == straight["test_loss"]
    hist_a = (tmp_path / "killed" / "history.csv").read_text()
    hist_b = (tmp_path / "straight" / "history.csv").read_text()
    assert hist_a == hist_b


@pytest.mark.parametrize("optimizer", ["nesterov", "adam", "adagrad", "rmsprop", "sgd"])
def test_every_optimizer_trains_and_resumes(tmp_path, monkeypatch, optimizer):
    monkeypatch.setenv("LOSSLAB_CHECKPOINT_EVERY", "0")  # a checkpoint after every epoch
    lr = {"adam": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-3}.get(optimizer, 0.05)
    run = {**RUN, "model": {"name": "mlp", "widths": [16]},
           "recipe": {"optimizer": optimizer, "lr": lr, "batch_size": 64, "epochs": 4}}
    straight = train_run(run, 0, tmp_path / "s", tmp_path / "ck_s")

    def halt(epoch, row):  # interrupted right after the checkpoint of epoch 2 was written
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(run, 0, tmp_path / "r", tmp_path / "ck_r", on_epoch_end=halt)
    assert lio.load_torch(tmp_path / "ck_r" / f"{run_key(run, 0)}.pt")["epoch"] == 2
    resumed = train_run(run, 0, tmp_path / "r", tmp_path / "ck_r")
    assert_bitwise_equal(state(tmp_path / "s" / "model.pt"), state(tmp_path / "r" / "model.pt"))
    assert resumed["test_acc"] == straight["test_acc"]
    assert math.isfinite(straight["train_loss"])


def test_holdout_and_lr_search():
    _, data, _ = prepare_run(RUN, 0)
    h = holdout(data, 0.25)
    assert len(h.y_train) + len(h.y_test) == len(data.y_train)
    assert len(h.y_test) == 75
    # the validation part comes from the train split, never from the test split
    joined = torch.cat([h.x_train, h.x_test])
    assert joined.shape[0] == data.x_train.shape[0]
    assert sorted(joined.flatten(1).sum(1).tolist()) == pytest.approx(sorted(data.x_train.flatten(1).sum(1).tolist()))
    run = {**RUN, "recipe": {**RUN["recipe"], "epochs": 2}}
    lr, trials = select_lr(run, [1e6, 0.05], val_fraction=0.25)
    assert lr == 0.05
    assert trials[0]["diverged"] and not trials[1]["diverged"]
    with pytest.raises(RecipeError, match="diverged"):
        select_lr(run, [1e6], val_fraction=0.25)
