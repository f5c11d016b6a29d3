"""Losses and the chunked loss/accuracy pass over in-memory data that everything else uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

LOSSES = ("ce", "mse")

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_loss(name: str) -> Criterion:
    """``(logits, labels) -> per-sample loss``. ``mse`` is the squared error to the one-hot target, summed
    over classes (Bottou's squared loss)."""
    if name == "ce":
        return lambda out, y: nn.functional.cross_entropy(out, y, reduction="none")
    if name == "mse":
        def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = nn.functional.one_hot(y, out.shape[-1]).to(out.dtype)
            return ((out - target) ** 2).sum(-1)
        return mse
    raise ValueError(f"unknown loss {name!r}; known: {list(LOSSES)}")


@dataclass(frozen=True)
class LossAcc:
    loss: float
    acc: float

    @property
    def err(self) -> float:
        return 1.0 - self.acc


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "ce",
             chunk: int = 1000) -> LossAcc:
    """Mean loss and accuracy of ``model`` (in eval mode) over ``(x, y)``, ``chunk`` samples at a time."""
    crit = per_sample_loss(loss)
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(y), chunk):
        out = model(x[i:i + chunk])
        total += float(crit(out, y[i:i + chunk]).sum())
        correct += int((out.argmax(-1) == y[i:i + chunk]).sum())
    model.train(was_training)
    n = max(len(y), 1)
    return LossAcc(total / n, correct / n)


@torch.no_grad()
def predictions(model: nn.Module, x: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Predicted labels of ``model`` (eval mode) for ``x``."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + chunk]).argmax(-1) for i in range(0, len(x), chunk)])
    model.train(was_training)
    return out
