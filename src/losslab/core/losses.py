"""Losses and the chunked loss/accuracy pass over in-memory data that everything else uses.

A model's output is its *logits*: a tensor of shape ``(batch, classes)``. A model that returns a tuple or a list
(``(logits, features)``, torchvision's Inception with ``aux_logits``, ...) has its **first element** taken as the
logits (:func:`logits`); anything else is refused. The rule is applied in one place, a forward hook
(:func:`logits_hook`) on the network that losslab runs: the evaluator's private copy
(:class:`losslab.core.weights.PointEvaluator`, so surfaces, curves and Hessians), and the trained model for the
duration of :func:`losslab.core.trainer.fit` (:func:`outputs_as_logits`). :func:`check_outputs` probes a model
once on one sample before any compute: the output's shape, and the labels within its width.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

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


# ---------------------------------------------------------------- the model's output -----------------------

def logits(out: Any) -> torch.Tensor:
    """The logits in a model's output ``out``: ``out`` itself when a tensor, the first element of a tuple or list
    (the documented rule, module doc); a TypeError naming what was returned otherwise."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    kind = type(out).__name__ + (f" whose first element is a {type(out[0]).__name__}"
                                 if isinstance(out, (tuple, list)) and out else "")
    raise TypeError(f"the model returns a {kind}; losslab needs its logits: a tensor (batch, classes), or a tuple "
                    f"or list whose first element is that tensor")


def logits_hook(module: nn.Module, args: Any, out: Any) -> torch.Tensor:
    """A forward hook replacing ``module``'s output by :func:`logits` of it."""
    return logits(out)


@contextlib.contextmanager
def outputs_as_logits(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` returning :func:`logits` of its output inside the block (a forward hook, removed after)."""
    with model.register_forward_hook(logits_hook):  # the handle removes the hook on exit, raised or not
        yield model


def check_labels(y: torch.Tensor, width: int, what: str) -> None:
    """Refuse class labels outside ``0 .. width - 1`` for a model with ``width`` outputs, naming the largest (or
    a negative) label: ``train labels: the largest label is 7 but the model has 5 outputs (classes 0 to 4)``."""
    if y.is_floating_point() or y.numel() == 0 or y.is_meta:  # meta tensors (shapes only) hold no labels
        return
    top, low = int(y.max()), int(y.min())
    allowed = f"the model has {width} output{'s' if width != 1 else ''} (classes 0 to {width - 1})"
    if top >= width:
        raise ValueError(f"{what}: the largest label is {top} but {allowed}")
    if low < 0:
        raise ValueError(f"{what}: label {low} is negative; {allowed}")


@torch.no_grad()
def check_outputs(model: nn.Module, x: torch.Tensor, ys: dict[str, torch.Tensor] | None = None) -> int:
    """Probe ``model`` once on the first sample of ``x`` (in eval mode, gradients off: no state changes, no
    random draw) and return its output width; refuse an output that is not ``(1, classes)`` logits
    (:func:`logits`) and labels beyond it (``ys``: what -> labels, :func:`check_labels`). Nothing is
    checked on empty ``x``."""
    if len(x) == 0:
        return 0
    was_training = model.training
    model.eval()
    try:
        raw = model(x[:1])
    except (RuntimeError, ValueError, IndexError) as err:  # e.g. inputs of another shape or dtype than it takes
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"the model fails on one sample of the data (shape {tuple(x.shape[1:])}, {x.dtype}): "
                         f"{first}") from err
    finally:
        model.train(was_training)
    out = logits(raw)
    if out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(f"the model's output for one sample has shape {tuple(out.shape)}; losslab needs logits "
                         f"of shape (batch, classes), here (1, classes)")
    for what, y in (ys or {}).items():
        check_labels(y, int(out.shape[1]), what)
    return int(out.shape[1])


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
