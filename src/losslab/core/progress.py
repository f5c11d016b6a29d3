"""Progress of a long loop, for the researcher who waits on it: a tqdm bar on a terminal, and in a workflow
job (whose stderr is a log file, not a terminal) a log line every :data:`LOG_EVERY` seconds.

One helper, :class:`Progress`, serves every long loop (surface tiles, training epochs, curve epochs, Lanczos
steps, spectral-density runs, trace probes, sharpness starts, MPO steps). It reports and never computes: it
draws no random number and changes no result. Conventions:

* ``enabled=True`` (a command's ``--progress``, an API's ``progress=True``): a tqdm bar on stderr when stderr
  is a terminal; nothing when it is not (a bar's carriage returns make a log file unreadable);
* a workflow job (:func:`losslab.pipeline.job.start_job` calls :func:`log_to` with the job's logger): every
  loop also logs ``<what>: <done>/<total> <unit> (<pct>), <elapsed> elapsed[, ~<left> left]`` at most every
  :data:`LOG_EVERY` seconds, and a last line when the loop took that long, whether or not its bar is on;
* ``enabled=False`` outside a job: silent.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TypeVar

from tqdm import tqdm

LOG_EVERY = 30.0  # seconds between a job's progress lines

T = TypeVar("T")
_job: dict[str, Any] = {"logger": None, "every": LOG_EVERY}


def log_to(logger: logging.Logger | None, every: float = LOG_EVERY) -> None:
    """Log the progress of every loop to ``logger`` (at INFO) at most every ``every`` seconds; ``None``
    stops it. Called by :func:`losslab.pipeline.job.start_job` for the job's log file."""
    if every <= 0:
        raise ValueError(f"every {every}: must be > 0 seconds")
    _job.update(logger=logger, every=float(every))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """The progress of ``total`` steps (``None``: unknown) of ``desc`` (see the module docstring for where
    it goes). ``update(n)`` after each ``n`` steps, ``close()`` at the end (or use it as a context manager);
    ``clock`` and ``stream`` are for tests (default: ``time.monotonic`` and ``sys.stderr``)."""

    def __init__(self, total: int | None, desc: str, *, enabled: bool = False, unit: str = "it", initial: int = 0,
                 logger: logging.Logger | None = None, every: float | None = None,
                 clock: Callable[[], float] = time.monotonic, stream: Any = None) -> None:
        stream = sys.stderr if stream is None else stream
        self.total, self.desc, self.unit, self.n = total, desc, unit, int(initial)
        self.logger = logger if logger is not None else _job["logger"]
        self.every = float(every if every is not None else _job["every"])
        self.clock = clock
        self.start = self.last = clock()
        self._initial = int(initial)
        self.logged = 0
        terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = (tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, file=stream,
                         mininterval=0.5) if enabled and terminal else None)

    def line(self, now: float | None = None) -> str:
        """The progress as one log line (at time ``now``, default: the clock's)."""
        elapsed = (self.clock() if now is None else now) - self.start
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {done} {self.unit}"
        if self.total:
            text += f" ({100.0 * self.n / self.total:.0f}%)"
        text += f", {_duration(elapsed)} elapsed"
        fresh = self.n - self._initial
        if self.total and 0 < fresh and self.n < self.total:
            text += f", ~{_duration(elapsed / fresh * (self.total - self.n))} left"
        return text

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        if self.bar is not None:
            self.bar.update(n)
        if self.logger is not None:
            now = self.clock()
            if now - self.last >= self.every:
                self.last = now
                self.logged += 1
                self.logger.info(self.line(now))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.logger is not None:
            elapsed = self.clock() - self.start
            if self.logged or elapsed >= self.every:
                self.logger.info(f"{self.desc}: done, {self.n} {self.unit} in {_duration(elapsed)}")
            self.logger = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(items: Iterable[T], desc: str, *, total: int | None = None, enabled: bool = False, unit: str = "it",
          **options: Any) -> Iterator[T]:
    """``items``, one :meth:`Progress.update` after each (``total``: default ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, enabled=enabled, unit=unit, **options) as p:
        for item in items:
            yield item
            p.update()
