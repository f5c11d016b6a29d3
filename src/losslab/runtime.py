"""Job-level set-up shared by every workflow script: logging to the job's log file, the thread count."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch


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
    return log
