"""Optimizers and learning-rate schedules named in a recipe.

The schedule is a pure function of the (fractional) epoch, ``lr_at(schedule, base_lr, epoch, epochs)``, so a
resumed run needs no scheduler state: the learning rate at any step follows from where the run is.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

import torch

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adagrad", "rmsprop")
SCHEDULES = ("constant", "step", "linear", "cosine", "sgdr")


class RecipeError(ValueError):
    pass


def make_optimizer(params: Iterable[torch.nn.Parameter], name: str, lr: float, momentum: float = 0.9,
                   weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                   eps: float = 1e-8) -> torch.optim.Optimizer:
    """``sgd`` is plain SGD (no momentum, whatever ``momentum`` says); ``momentum`` is heavy-ball SGD."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay, eps=1e-10)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=eps, weight_decay=weight_decay)
    raise RecipeError(f"unknown optimizer {name!r}; known: {list(OPTIMIZERS)}")


def lr_at(schedule: Mapping[str, Any], base_lr: float, epoch: float, epochs: int) -> float:
    """Learning rate at fractional ``epoch`` (0-based: epoch 0.5 is half-way through the first epoch).

    * ``constant``
    * ``step``: multiply by ``factor`` (default 0.1) at each of ``milestones`` (whole epochs: from epoch
      ``m`` on, i.e. the epoch numbered ``m`` counting from 0 already uses the decayed rate)
    * ``linear``: from ``base_lr`` down to ``final`` (default 0) at the end of training
    * ``cosine``: half a cosine from ``base_lr`` to ``eta_min`` (default 0)
    * ``sgdr``: cosine restarts (Loshchilov & Hutter) with first period ``T0`` epochs and period multiplier
      ``Tmult``, from ``base_lr`` to ``eta_min``
    """
    name = schedule.get("name", "constant")
    if name == "constant":
        return base_lr
    if name == "step":
        factor = float(schedule.get("factor", 0.1))
        passed = sum(1 for m in schedule.get("milestones", []) if math.floor(epoch) >= m)
        return base_lr * factor ** passed
    if name == "linear":
        final = float(schedule.get("final", 0.0))
        frac = min(max(epoch / epochs, 0.0), 1.0)
        return base_lr + (final - base_lr) * frac
    if name == "cosine":
        eta_min = float(schedule.get("eta_min", 0.0))
        frac = min(max(epoch / epochs, 0.0), 1.0)
        return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * frac))
    if name == "sgdr":
        eta_min = float(schedule.get("eta_min", 0.0))
        period = float(schedule.get("T0", 10))
        mult = float(schedule.get("Tmult", 2))
        t = epoch
        while t >= period:
            t -= period
            period *= mult
        return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * t / period))
    raise RecipeError(f"unknown lr schedule {name!r}; known: {list(SCHEDULES)}")


def sgdr_restart_epochs(schedule: Mapping[str, Any], epochs: int) -> list[int]:
    """Epochs (0-based) at which an SGDR schedule restarts, within ``epochs``."""
    out, start, period = [], 0.0, float(schedule.get("T0", 10))
    while start + period < epochs:
        start += period
        out.append(int(round(start)))
        period *= float(schedule.get("Tmult", 2))
    return out
