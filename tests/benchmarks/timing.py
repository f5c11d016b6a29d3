"""Timing helpers shared by the benchmark scripts and the suite (tests/benchmarks/benchutil.py imports them)."""

from __future__ import annotations

import ctypes
import time
from typing import Callable


def round_seconds(fns: dict[str, Callable[[], object]], rounds: int,
                  clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds of each of ``rounds`` timed calls of each function, interleaved round by round (the machine is
    shared: a burst of load hits the contenders of a round alike). ``clock=time.thread_time`` counts the CPU
    time of this thread only (for single-threaded work: time spent descheduled by other processes is then not
    counted).

    The order of the contenders alternates from round to round: whichever runs first in a round was measured
    3-5% slower than the same code run second (caches and allocator state warmed by the other)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for r in range(rounds):
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return times


def best_seconds(fns: dict[str, Callable[[], object]], rounds: int,
                 clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """The fastest of the :func:`round_seconds` of each function: the least disturbed time."""
    return {name: min(ts) for name, ts in round_seconds(fns, rounds, clock).items()}


def median_ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """The median over rounds of ``times[slow][r] / times[fast][r]``: each round's pair shares the machine's
    load of that moment, so the paired ratio is steadier than a ratio of two minima."""
    ratios = sorted(a / b for a, b in zip(times[slow], times[fast]))
    mid = len(ratios) // 2
    return ratios[mid] if len(ratios) % 2 else 0.5 * (ratios[mid - 1] + ratios[mid])


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
