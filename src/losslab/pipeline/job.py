"""Job-level set-up shared by every workflow script (:func:`start_job`): logging to the job's log file, the
thread count, the CPU kernel pin (:mod:`losslab.pipeline.cpu_kernels`), the job's evaluation placement
(:mod:`losslab.core.placement`) and its data roots (:class:`losslab.core.data.DataRoots`), all checked at the door
before any compute."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from losslab.core.data import DataRoots, data_roots, set_data_roots
from losslab.core import progress
from losslab.core.placement import place_job, placement
from losslab.pipeline import cpu_kernels
from losslab.pipeline.jobserver import process_started  # noqa: E402 (torch-free; the job's process start)


def start_job(log_path: str | Path | None, threads: int = 1,
              config: Mapping[str, Any] | None = None) -> logging.Logger:
    """Log to ``log_path`` (and stderr), fix torch's thread count (results differ bitwise between counts) and,
    given the workflow ``config``, the job's evaluation :class:`Placement` (its ``device`` and
    ``eval_autocast`` keys, checked here, before any compute) and its :class:`DataRoots` (its ``data_dir`` and
    ``resources`` keys: every dataset the job prepares is read from there). Confirms the CPU kernel pin of
    :mod:`losslab.pipeline.cpu_kernels` (the workflow puts it in the environment; a job started elsewhere with a
    ``config`` applies its ``cpu_kernels`` key here, which holds only if nothing was computed yet) and logs it.
    Every long loop of the job then logs its progress every :data:`losslab.core.progress.LOG_EVERY` seconds
    (:func:`losslab.core.progress.log_to`), so that the log file of a job running minutes shows where it is."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # matplotlib's PDF backend is chatty at INFO
    torch.set_num_threads(int(threads))
    log = logging.getLogger("losslab.job")
    progress.log_to(logging.getLogger("losslab.progress"))
    if config is not None:
        place_job(config)
        set_data_roots(DataRoots.of_config(config))
        if cpu_kernels.MODE_ENV not in os.environ:  # a job started outside the workflow: pin it here
            cpu_kernels.apply(cpu_kernels.mode_for(config))
    where = placement()
    log.info("torch %s, %d thread(s), evaluations on %s (autocast %s)", torch.__version__,
             torch.get_num_threads(), where.device, where.autocast or "none")
    roots = data_roots()
    log.info("data: data_dir %s, resources %s", roots.data_dir, roots.resources)
    log.info(cpu_kernels.verify_pin())  # raises when the pin was asked for and does not hold
    # read by losslab.pipeline.jobstats: the share of a run spent starting processes
    log.info("job start-up: %.2f s", max(0.0, time.time() - process_started()))
    return log
