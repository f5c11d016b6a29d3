"""One training loop, driven by a recipe; deterministic on the CPU and resumable after a kill.

:func:`fit` trains a model on prepared data with a :class:`Recipe` (typed settings, validated, naming the key).
Given a checkpoint path it writes the model, optimizer, RNG states, history and wall time (after the first and the
last epoch, and every ``CHECKPOINT_EVERY`` seconds between), and a restarted fit resumes from it and ends bitwise
equal to an uninterrupted one at the same thread count. Snapshots
of the weights at chosen epochs (``recipe.snapshots``) go to ``out_dir/snapshots/epoch_{k}.pt`` (epoch 0 is the
initialisation), for trajectories (PCA directions), warm starts and ensembles. The run directory around a fit
(metrics, history, model file) is :mod:`losslab.claims.runs`'s."""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from losslab._version import __version__
from losslab import io as lio
from losslab.core.data import Prepared
from losslab.core.losses import LOSSES, check_outputs, evaluate, outputs_as_logits, per_sample_loss
from losslab.core.optim import OPTIMIZERS, RecipeError, lr_at, make_optimizer
from losslab.core.progress import track
from losslab.core.weights import PointEvaluator, _Runner, has_batchnorm

log = logging.getLogger(__name__)

# seconds of training between two checkpoints (besides the first and the last epoch's); the environment variable
# LOSSLAB_CHECKPOINT_EVERY sets another default (0: after every epoch, e.g. on a machine that is often preempted)
CHECKPOINT_EVERY = 30.0


@dataclass(frozen=True)
class Recipe:
    optimizer: str = "momentum"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int | str = 128  # "full": full-batch gradient descent
    epochs: int = 10
    schedule: Mapping[str, Any] = field(default_factory=lambda: {"name": "constant"})
    loss: str = "ce"
    eval_every: int = 1  # evaluate train/test metrics every k epochs (and always at the end)
    eval_chunk: int = 1000
    snapshots: Sequence[int] | str = ()  # epochs whose weights are kept; "all" for every epoch
    init_from: str | None = None  # start from this state_dict instead of a fresh initialisation
    mixup_alpha: float = 0.0  # mixup (Zhang et al. 2018): lambda ~ Beta(alpha, alpha) per batch; 0 = off
    # SWA (Izmailov et al. 2018): {"start": k, "lr": c}: epochs k+1..epochs run at the constant lr c and the
    # weights at the end of each are averaged; the average, its BN statistics recomputed on one pass over the
    # (augmented) training inputs, is the final model
    swa: Mapping[str, Any] | None = None
    stop_at_train_acc: float | None = None  # stop after the first evaluated epoch with train accuracy >= this

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> "Recipe":
        known = set(cls.__dataclass_fields__)
        unknown = set(spec) - known
        if unknown:
            raise RecipeError(f"recipe: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        recipe = cls(**dict(spec))
        recipe.validate()
        return recipe

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise RecipeError(f"recipe.optimizer: {self.optimizer!r} is not one of {list(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise RecipeError(f"recipe.loss: {self.loss!r} is not one of {list(LOSSES)}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise RecipeError(f"recipe.lr: must be a finite positive number, not {self.lr!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise RecipeError(f"recipe.epochs: must be a positive integer, not {self.epochs!r}")
        if not (self.batch_size == "full" or (isinstance(self.batch_size, int) and self.batch_size >= 1)):
            raise RecipeError(f"recipe.batch_size: a positive integer or 'full', not {self.batch_size!r}")
        if self.weight_decay < 0:
            raise RecipeError(f"recipe.weight_decay: must be >= 0, not {self.weight_decay!r}")
        if not (isinstance(self.mixup_alpha, (int, float)) and math.isfinite(self.mixup_alpha)
                and self.mixup_alpha >= 0):
            raise RecipeError(f"recipe.mixup_alpha: must be a finite number >= 0 (0: off), not {self.mixup_alpha!r}")
        if self.swa is not None:
            if not isinstance(self.swa, Mapping) or set(self.swa) != {"start", "lr"}:
                raise RecipeError(f"recipe.swa: expected {{start: epoch, lr: constant lr}}, not {self.swa!r}")
            start, lr = self.swa["start"], self.swa["lr"]
            if not (isinstance(start, int) and 0 <= start < self.epochs):
                raise RecipeError(f"recipe.swa.start: an epoch in [0, epochs={self.epochs}), not {start!r}")
            if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
                raise RecipeError(f"recipe.swa.lr: must be a finite positive number, not {lr!r}")
        if self.stop_at_train_acc is not None and not 0 < self.stop_at_train_acc <= 1:
            raise RecipeError(f"recipe.stop_at_train_acc: must be in (0, 1], not {self.stop_at_train_acc!r}")

    def keeps_snapshot(self, epoch: int) -> bool:
        return self.snapshots == "all" or epoch in set(self.snapshots or ())


def versions() -> dict[str, str]:
    import numpy

    return {"losslab": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def set_threads(threads: int) -> None:
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _save_snapshot(model: nn.Module, out_dir: Path, epoch: int) -> None:
    lio.save_torch(out_dir / "snapshots" / f"epoch_{epoch}.pt", model.state_dict())


def batching(n: int, batch_size: int | str) -> tuple[int, int]:
    """Batch size and steps per epoch for ``n`` samples (``"full"``: one batch of all). A trailing batch of
    one sample is dropped: batch norm cannot train on a batch of one."""
    bs = n if batch_size == "full" else min(int(batch_size), n)
    steps = math.ceil(n / bs)
    if bs > 1 and n % bs == 1:
        steps -= 1
    return bs, steps


Objective = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def mixup_lambda(alpha: float, gen: torch.Generator) -> float:
    """``lambda ~ Beta(alpha, alpha)``, drawn from ``gen`` (through a seed for numpy's Beta sampler, so that
    the draw is a function of the generator's state and a resumed run draws the same)."""
    import numpy as np

    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup_loss(model: nn.Module, crit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
               y: torch.Tensor, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """Mixup's loss of a batch: ``lam * l(f(x_mix), y) + (1 - lam) * l(f(x_mix), y[perm])`` with
    ``x_mix = lam * x + (1 - lam) * x[perm]``, ``lam ~ Beta(alpha, alpha)`` and ``perm`` a random permutation
    of the batch (both from ``gen``)."""
    lam = mixup_lambda(alpha, gen)
    perm = torch.randperm(len(y), generator=gen)
    out = model(lam * x + (1 - lam) * x[perm])
    return (lam * crit(out, y) + (1 - lam) * crit(out, y[perm])).mean()


def swa_update(avg: list[torch.Tensor] | None, n: int, model: nn.Module) -> list[torch.Tensor]:
    """The running mean of the parameters after one more iterate (``n`` iterates averaged so far)."""
    params = [p.detach() for p in model.parameters()]
    if avg is None or n == 0:
        return [p.clone() for p in params]
    return [a + (p - a) / (n + 1) for a, p in zip(avg, params)]


def load_average(model: nn.Module, avg: Sequence[torch.Tensor], x_train: torch.Tensor, chunk: int = 1000) -> None:
    """Put the averaged weights into ``model`` and recompute its BN statistics on ``x_train`` (SWA's
    ``bn_update``, through :class:`losslab.core.weights.PointEvaluator`'s ``recompute`` policy). Give the training
    inputs as training sees them (augmented): ``bn_update`` runs over the training loader, and statistics of
    un-augmented inputs do not match what the network was trained to normalise."""
    with torch.no_grad():
        for p, a in zip(model.parameters(), avg):
            p.copy_(a)
    if has_batchnorm(model):
        ev = PointEvaluator(model, x_train, torch.zeros(len(x_train), dtype=torch.long), bn="recompute",
                            chunk=chunk, device=x_train.device)  # where training runs
        fresh = ev.buffers_at(torch.cat([a.reshape(-1) for a in avg]))
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(fresh[_Runner.PREFIX + name])


def train_epoch(data: Prepared, gen: torch.Generator, bs: int, steps: int, opt: torch.optim.Optimizer,
                lr_of: Callable[[float], float], objective: Objective) -> tuple[float, bool]:
    """One epoch of minibatch steps: a permutation and the augmentation drawn from ``gen``, the learning rate
    ``lr_of(i / steps)`` at step ``i``, ``objective(x, y) -> (data loss, loss to minimise)``. Returns the mean
    data loss and whether the loss became non-finite (training stops there: the run diverged)."""
    perm = torch.randperm(len(data.y_train), generator=gen).to(data.y_train.device)  # CPU draw, one move
    running, seen, lr = 0.0, 0, None
    for i in range(steps):
        idx = perm[i * bs:(i + 1) * bs]
        if (step_lr := lr_of(i / steps)) != lr:  # set when it changes (every step under a schedule)
            lr = step_lr
            for group in opt.param_groups:
                group["lr"] = lr
        loss, total = objective(data.augment(data.x_train[idx], gen), data.y_train[idx])
        value = total.item()  # one read a step (torch.isfinite + bool cost 10x more, 5% of a step)
        if not math.isfinite(value):
            log.warning("loss is %s at step %d of the epoch: run diverged", value, i)
            return math.nan, True
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        running += (value if loss is total else loss.item()) * len(idx)
        seen += len(idx)
    return running / max(seen, 1), False


def fit(model: nn.Module, data: Prepared, recipe: Recipe, seed: int, ckpt_path: Path | None = None,
        out_dir: Path | None = None, progress: bool = False,
        on_epoch_end: Callable[[int, dict], None] | None = None,
        checkpoint_every: float | None = None) -> dict[str, Any]:
    """Train ``model`` in place on ``data`` following ``recipe``. Returns the final state (history etc.).

    With ``ckpt_path`` set, a present checkpoint is resumed from, and state is checkpointed after the first epoch,
    then after the first epoch that ends ``checkpoint_every`` seconds (wall clock; default
    ``$LOSSLAB_CHECKPOINT_EVERY`` or :data:`CHECKPOINT_EVERY`) after the last checkpoint, and after the last epoch.
    When a checkpoint is written never changes the result (a resumed run is bitwise equal to an uninterrupted one
    from any epoch); it bounds the work a kill loses and spares a run of many short epochs (a full batch: one step
    each) a write and fsync per epoch.

    Before the first step, the data are checked finite (:meth:`losslab.core.data.Prepared.check_finite`) and the
    model is probed once on one sample (:func:`losslab.core.losses.check_outputs`: logits of shape ``(batch,
    classes)``, the labels of both splits below ``classes``); a model returning ``(logits, ...)`` is trained on
    its first element (:func:`losslab.core.losses.outputs_as_logits`).
    """
    recipe.validate()
    data.check_finite()
    first = next(model.parameters(), None)
    probe = data.x_train[:1] if first is None else data.x_train[:1].to(first.device)
    with outputs_as_logits(model):
        check_outputs(model, probe, {"train labels": data.y_train, "test labels": data.y_test})
        return _fit(model, data, recipe, seed, ckpt_path, out_dir, progress, on_epoch_end, checkpoint_every)


def _fit(model: nn.Module, data: Prepared, recipe: Recipe, seed: int, ckpt_path: Path | None,
         out_dir: Path | None, progress: bool, on_epoch_end: Callable[[int, dict], None] | None,
         checkpoint_every: float | None) -> dict[str, Any]:
    """:func:`fit`'s loop, on checked data and a model returning its logits."""
    first = next(model.parameters(), None)
    if first is not None:  # the data go where the model is, once (a GPU): batches are then indexed there
        data = data.to(first.device)
    opt = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, momentum=recipe.momentum,
                         weight_decay=recipe.weight_decay)
    crit = per_sample_loss(recipe.loss)
    gen = torch.Generator().manual_seed(seed)  # data order and augmentation
    torch.manual_seed(seed + 1_000_003)  # dropout and anything else on the global RNG
    bs, steps = batching(len(data.y_train), recipe.batch_size)

    state: dict[str, Any] = {"epoch": 0, "history": [], "wall": 0.0, "diverged": False, "stopped": False,
                             "swa_n": 0, "swa_avg": None}
    if ckpt_path is not None and ckpt_path.exists():
        ck = lio.load_torch(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        state = {**state, **{k: ck[k] for k in ("epoch", "history", "wall", "diverged")},
                 **{k: ck[k] for k in ("stopped", "swa_n", "swa_avg") if k in ck}}
        log.info("resumed %s at epoch %d", ckpt_path, state["epoch"])
    elif out_dir is not None and recipe.keeps_snapshot(0):
        _save_snapshot(model, out_dir, 0)

    if checkpoint_every is None:
        checkpoint_every = float(os.environ.get("LOSSLAB_CHECKPOINT_EVERY", CHECKPOINT_EVERY))
    saved_at = -math.inf  # the first epoch run is checkpointed
    epochs_iter = track(range(state["epoch"], recipe.epochs), "training epochs", enabled=progress, unit="epoch",
                        total=recipe.epochs, initial=state["epoch"])
    for epoch in epochs_iter:
        if state["diverged"] or state["stopped"]:
            break
        t0 = time.perf_counter()
        model.train()
        in_swa = recipe.swa is not None and epoch >= recipe.swa["start"]

        def objective(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if recipe.mixup_alpha > 0:
                loss = mixup_loss(model, crit, xb, yb, recipe.mixup_alpha, gen)
            else:
                loss = crit(model(xb), yb).mean()
            return loss, loss

        def lr_of(frac: float) -> float:
            return float(recipe.swa["lr"]) if in_swa else lr_at(recipe.schedule, recipe.lr, epoch + frac,
                                                                   recipe.epochs)

        batch_loss, state["diverged"] = train_epoch(data, gen, bs, steps, opt, lr_of, objective)
        state["epoch"] = epoch + 1
        row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr_of(0.0), "batch_loss": batch_loss}
        last = state["epoch"] == recipe.epochs or state["diverged"]
        if in_swa and not state["diverged"]:
            state["swa_avg"] = swa_update(state["swa_avg"], state["swa_n"], model)
            state["swa_n"] += 1
            if last:  # the final model is the average, with its own BN statistics
                load_average(model, state["swa_avg"], data.augment(data.x_train, gen), recipe.eval_chunk)
        if last or (epoch + 1) % recipe.eval_every == 0:
            tr = evaluate(model, data.x_train, data.y_train, recipe.loss, recipe.eval_chunk)
            te = evaluate(model, data.x_test, data.y_test, recipe.loss, recipe.eval_chunk)
            row.update(train_loss=tr.loss, train_acc=tr.acc, test_loss=te.loss, test_acc=te.acc)
            if recipe.stop_at_train_acc is not None and tr.acc >= recipe.stop_at_train_acc:
                state["stopped"] = True
        state["wall"] += time.perf_counter() - t0
        state["history"].append(row)
        if out_dir is not None and recipe.keeps_snapshot(epoch + 1):
            _save_snapshot(model, out_dir, epoch + 1)
        done = last or state["stopped"]
        if ckpt_path is not None and (done or time.monotonic() - saved_at >= checkpoint_every):
            lio.save_torch(ckpt_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), **state})
            saved_at = time.monotonic()
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, row)
    return state


def holdout(data: Prepared, fraction: float, seed: int = 0) -> Prepared:
    """The training split cut in two by a fixed permutation: the rest to train on, ``fraction`` to validate on
    (as the "test" split of the returned data). The real test split is never used for selection."""
    if not 0 < fraction < 1:
        raise RecipeError(f"validation fraction must be in (0, 1), not {fraction!r}")
    n = len(data.y_train)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(10_000 + seed))
    n_val = max(1, int(round(fraction * n)))
    val, tr = perm[:n_val].sort().values, perm[n_val:].sort().values
    return replace(data, x_train=data.x_train[tr], y_train=data.y_train[tr], x_test=data.x_train[val],
                   y_test=data.y_train[val])
