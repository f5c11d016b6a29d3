"""Job-level set-up shared by every workflow script: logging to the job's log file, the thread count."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

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
