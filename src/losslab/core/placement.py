"""Where a job's evaluations run: the device and evaluation precision the config asks for (:func:`device_for`,
:func:`autocast_for`).

The device and precision of a job's evaluations are its :class:`Placement`, set once at the door by
:func:`losslab.pipeline.job.start_job` from the config (:func:`place_job`), or, in a library session, by the
:func:`placed` context manager. Every
:class:`losslab.core.weights.PointEvaluator` built without an explicit ``device`` holds its copy of the network and
its data there, and :func:`losslab.core.surfaces.evaluators_for` takes the evaluation autocast from it: surfaces,
interpolations, curves, MPO planes and Hessians all follow the config's ``device`` and ``eval_autocast``
without each analysis passing them down. Weight vectors, directions and results stay on the CPU; only the
evaluator's network and data live on the device."""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch



DEVICES = ("auto", "cpu", "cuda")
AUTOCASTS = ("none", "bf16")


class DeviceError(ValueError):
    """The config asks for a device or precision this machine cannot give."""


def device_for(config: Mapping[str, Any] | str | None = None, source: str = "config key 'device'") -> torch.device:
    """The torch device of the config key ``device``: ``cpu``, ``cuda`` (an error naming the key when no CUDA
    GPU is visible) or ``auto`` (the default: CUDA when available, else the CPU). The one place the choice is
    made; models and data are moved there once, not per batch. ``source`` names the setting in errors."""
    choice = config.get("device", "auto") if isinstance(config, Mapping) else (config or "auto")
    if choice not in DEVICES:
        raise DeviceError(f"{source}: {choice!r} is not allowed; allowed values: {list(DEVICES)}")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"{source}: 'cuda' was requested but no CUDA GPU is available "
                          f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}, "
                          f"torch.cuda.is_available() is False); set device: cpu or auto")
    return torch.device(choice)


def autocast_for(config: Mapping[str, Any] | str | None = None) -> str | None:
    """The evaluation precision of the config key ``eval_autocast``: ``None`` for exact float32 (``none``,
    the default) or ``"bf16"`` (bfloat16 autocast of the forward passes of
    :class:`losslab.core.weights.PointEvaluator`, on the CPU as on a GPU)."""
    choice = config.get("eval_autocast", "none") if isinstance(config, Mapping) else (config or "none")
    if choice not in AUTOCASTS:
        raise DeviceError(f"config key 'eval_autocast': {choice!r} is not allowed; allowed values: "
                          f"{list(AUTOCASTS)}")
    return None if choice == "none" else choice


@dataclass(frozen=True)
class Placement:
    """Where a job's evaluations run: the ``device`` of the evaluators' network and data, and the ``autocast``
    of surface-type evaluations (None: exact float32; Hessians are always exact)."""

    device: torch.device = torch.device("cpu")
    autocast: str | None = None


_PLACEMENT: contextvars.ContextVar[Placement] = contextvars.ContextVar("losslab_placement", default=Placement())


def place_job(config: Mapping[str, Any]) -> Placement:
    """Set this job's placement from the config's ``device`` and ``eval_autocast`` keys (checked here)."""
    _PLACEMENT.set(Placement(device_for(config), autocast_for(config)))
    return _PLACEMENT.get()


def placement() -> Placement:
    """The current evaluation placement (the CPU and float32 unless a job or :func:`placed` set another)."""
    return _PLACEMENT.get()


@contextmanager
def placed(device: str | torch.device = "cpu", autocast: str | None = None) -> Iterator[Placement]:
    """Run evaluations built inside the block on ``device`` with ``autocast`` (``None`` or ``"bf16"``)."""
    if autocast not in (None, *AUTOCASTS[1:]):
        raise DeviceError(f"autocast {autocast!r} is not allowed; allowed values: None, {list(AUTOCASTS[1:])}")
    token = _PLACEMENT.set(Placement(torch.device(device), autocast))
    try:
        yield _PLACEMENT.get()
    finally:
        _PLACEMENT.reset(token)
