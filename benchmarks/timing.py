"""Timing helpers shared by the benchmark scripts (imported as ``timing`` when a script runs from here)."""

from __future__ import annotations

import ctypes
import time
from typing import Callable


def best_seconds(fns: dict[str, Callable[[], object]], rounds: int,
                 clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """The fastest of ``rounds`` timed calls of each function, interleaved round by round: the machine is
    shared, so a burst of load hits all contenders alike and the minimum is the least disturbed time.
    ``clock=time.thread_time`` counts the CPU time of this thread only (for single-threaded work: time spent
    descheduled by other processes is then not counted).

    The order of the contenders alternates from round to round: whichever runs first in a round was measured
    3-5% slower than the same code run second (caches and allocator state warmed by the other)."""
    best = {name: float("inf") for name in fns}
    order = list(fns.items())
    for r in range(rounds):
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            t0 = clock()
            fn()
            best[name] = min(best[name], clock() - t0)
    return best


def pin_malloc() -> bool:
    """Stop glibc from returning/re-mapping activation-sized blocks between forward passes (Linux only): the
    same pass otherwise takes 6 ms or 13 ms depending on what was allocated before
    (tests/benchmarks/test_bench_surface.py)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
