"""Timing helpers shared by the benchmark scripts (imported as ``timing`` when a script runs from here)."""

from __future__ import annotations

import ctypes
import time
from typing import Callable


def best_seconds(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """The fastest of ``rounds`` timed calls of each function, interleaved round by round: the machine is
    shared, so a burst of load hits all contenders alike and the minimum is the least disturbed time."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def pin_malloc() -> bool:
    """Stop glibc from returning/re-mapping activation-sized blocks between forward passes (Linux only): the
    same pass otherwise takes 6 ms or 13 ms depending on what was allocated before (see surface_speed.py)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))
