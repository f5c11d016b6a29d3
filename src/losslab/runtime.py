"""Job-level set-up shared by every workflow script: logging to the job's log file, the thread count, and the
device and evaluation precision the config asks for (:func:`device_for`, :func:`autocast_for`).

The device and precision of a job's evaluations are its :class:`Placement`, set once at the door by
:func:`start_job` from the config (or, in a library session, by the :func:`placed` context manager). Every
:class:`losslab.params.PointEvaluator` built without an explicit ``device`` holds its copy of the network and
its data there, and :func:`losslab.surfaces.evaluators_for` takes the evaluation autocast from it: surfaces,
interpolations, curves, MPO planes and Hessians all follow the config's ``device`` and ``eval_autocast``
without each analysis passing them down. Weight vectors, directions and results stay on the CPU; only the
evaluator's network and data live on the device."""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch

from . import cpu_kernels
from .jobserver import process_started  # noqa: E402 (torch-free; the job's process start)


def start_job(log_path: str | Path | None, threads: int = 1,
              config: Mapping[str, Any] | None = None) -> logging.Logger:
    """Log to ``log_path`` (and stderr), fix torch's thread count (results differ bitwise between counts) and,
    given the workflow ``config``, the job's evaluation :class:`Placement` (its ``device`` and
    ``eval_autocast`` keys, checked here, before any compute). Confirms the CPU kernel pin of
    :mod:`losslab.cpu_kernels` (the workflow puts it in the environment; a job started elsewhere with a
    ``config`` applies its ``cpu_kernels`` key here, which holds only if nothing was computed yet) and logs it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # matplotlib's PDF backend is chatty at INFO
    torch.set_num_threads(int(threads))
    log = logging.getLogger("losslab.job")
    if config is not None:
        _PLACEMENT.set(Placement(device_for(config), autocast_for(config)))
        if cpu_kernels.MODE_ENV not in os.environ:  # a job started outside the workflow: pin it here
            cpu_kernels.apply(cpu_kernels.mode_for(config))
    where = placement()
    log.info("torch %s, %d thread(s), evaluations on %s (autocast %s)", torch.__version__,
             torch.get_num_threads(), where.device, where.autocast or "none")
    log.info(cpu_kernels.check())  # raises when the pin was asked for and does not hold
    # read by losslab.jobstats: the share of a run spent starting processes
    log.info("job start-up: %.2f s", max(0.0, time.time() - process_started()))
    return log


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
    :class:`losslab.params.PointEvaluator`, on the CPU as on a GPU)."""
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
