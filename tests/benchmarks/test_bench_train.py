"""The trainer's samples per second vs a bare PyTorch loop on the same model, data, batches and optimizer.

(a) :func:`losslab.core.trainer.fit` (no checkpoint, no snapshot; ``eval_every`` past the end, so only the final
    evaluation of the train and test splits, which the baseline does too);
(b) :func:`benchutil.bare_training`: ``randperm`` from the same seeded generator, ``model(x[idx])``, mean
    cross-entropy, ``zero_grad / backward / step``, then the same final evaluation.

``ratio`` divides the two fastest rounds; ``median_paired_ratio`` is the median over rounds of the ratio
within a round (steadier on a loaded machine, where single rounds of either swing by 10%).

Setups: the smoke ablation's CNN (digits, batch 32, momentum, weight decay) and a small MLP at batch 8
(where per-step overhead weighs most). Goal: ratio (a)/(b) >= 0.95. Both runs must end at bitwise-equal
weights (the assertion); time is only recorded.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch

from benchutil import bare_training, median_ratio, record, round_seconds
from losslab.core.data import prepare
from losslab.core.losses import evaluate
from losslab.core.models import build, count_parameters
from losslab.core.optim import make_optimizer
from losslab.core.trainer import Recipe, batching, fit

SETUPS = {
    "cnn-b32": ({"name": "convnet", "channels": [16, 32], "hidden": [64]},
                Recipe(optimizer="momentum", lr=0.05, weight_decay=5e-4, batch_size=32, epochs=2, eval_every=100)),
    "mlp-b8": ({"name": "mlp", "widths": [32]},
               Recipe(optimizer="momentum", lr=0.05, batch_size=8, epochs=2, eval_every=100)),
}
SEED, ROUNDS = 0, 15


@pytest.mark.parametrize("setup", list(SETUPS))
def test_trainer_vs_bare_loop(benchmark, setup):
    spec, recipe = SETUPS[setup]
    data = prepare({"name": "digits", "preprocessing": ["normalize"]})
    torch.manual_seed(SEED)
    init = build(spec, data.input_shape, data.num_classes)
    models: dict[str, torch.nn.Module] = {}

    def trainer():
        models["losslab"] = model = copy.deepcopy(init)
        fit(model, data, recipe, SEED)

    def bare():
        models["bare"] = model = copy.deepcopy(init)
        opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, momentum=recipe.momentum,
                             weight_decay=recipe.weight_decay)
        bare_training(model, data.x_train, data.y_train, opt, recipe.batch_size, recipe.epochs, SEED)
        evaluate(model, data.x_train, data.y_train, "ce", recipe.eval_chunk)
        evaluate(model, data.x_test, data.y_test, "ce", recipe.eval_chunk)

    trainer(), bare()  # warm-up, and the check below
    for (name, a), b in zip(models["losslab"].state_dict().items(), models["bare"].state_dict().values()):
        assert torch.equal(a, b), f"{name} differs between the trainer and the bare loop"

    times = round_seconds({"losslab": trainer, "bare": bare}, ROUNDS, time.thread_time)
    seconds = {k: min(ts) for k, ts in times.items()}
    bs, steps = batching(len(data.y_train), recipe.batch_size)
    samples = min(steps * bs, len(data.y_train)) * recipe.epochs
    rate = {k: samples / s for k, s in seconds.items()}
    benchmark.pedantic(trainer, rounds=1, iterations=1)
    record(benchmark, f"train {setup} ({count_parameters(init)} weights, n={len(data.y_train)}, "
                      f"{recipe.epochs} epochs)",
           losslab_samples_per_s=rate["losslab"], bare_samples_per_s=rate["bare"],
           ratio=rate["losslab"] / rate["bare"], median_paired_ratio=median_ratio(times, "bare", "losslab"),
           goal=">= 0.95")
