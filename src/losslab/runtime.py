"""Job-level set-up shared by every workflow script: logging to the job's log file, the thread count, and the
device and evaluation precision the config asks for (:func:`device_for`, :func:`autocast_for`)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from .jobserver import process_started  # noqa: E402 (torch-free; the job's process start)


def start_job(log_path: str | Path | None, threads: int = 1) -> logging.Logger:
    """Log to ``log_path`` (and stderr), fix torch's thread count (results differ bitwise between counts)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # matplotlib's PDF backend is chatty at INFO
    torch.set_num_threads(int(threads))
    log = logging.getLogger("losslab.job")
    log.info("torch %s, %d thread(s)", torch.__version__, torch.get_num_threads())
    # read by losslab.jobstats: the share of a run spent starting processes
    log.info("job start-up: %.2f s", max(0.0, time.time() - process_started()))
    return log


DEVICES = ("auto", "cpu", "cuda")
AUTOCASTS = ("none", "bf16")


class DeviceError(ValueError):
    """The config asks for a device or precision this machine cannot give."""


def device_for(config: Mapping[str, Any] | str | None = None) -> torch.device:
    """The torch device of the config key ``device``: ``cpu``, ``cuda`` (an error naming the key when no CUDA
    GPU is visible) or ``auto`` (the default: CUDA when available, else the CPU). The one place the choice is
    made; models and data are moved there once, not per batch."""
    choice = config.get("device", "auto") if isinstance(config, Mapping) else (config or "auto")
    if choice not in DEVICES:
        raise DeviceError(f"config key 'device': {choice!r} is not allowed; allowed values: {list(DEVICES)}")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"config key 'device': 'cuda' was requested but no CUDA GPU is available "
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
