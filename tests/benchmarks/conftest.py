"""The benchmark suite: marked ``benchmark``, deselected unless the ``-m`` expression names it.

Run it with ``pytest -m benchmark tests/benchmarks`` (one thread, as every test). Each benchmark times the
losslab path and its baseline in the same run, in interleaved rounds keeping the fastest, as CPU time of the
one working thread (``time.thread_time``: on a shared machine, wall time also counts the time other
processes hold the core, which made the same ratio swing between 0.65 and 1.0 from round to round),
stores both rates and their ratio in ``benchmark.extra_info`` (kept by ``--benchmark-json``) and prints the
ratios in a summary at the end. Benchmarks never pass or fail on time; they assert only that both paths
compute the same thing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))  # timing.py: the helpers shared with benchmarks/pattern_speed.py

from benchutil import RATIOS  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m filters on the marker added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/benchmarks ``benchmark``; deselect it unless ``-m`` mentions benchmark
    (so plain ``pytest`` and ``pytest -m "not dag"`` never run it)."""
    wanted = "benchmark" in (config.option.markexpr or "")
    keep, drop = [], []
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.benchmark)
            (keep if wanted else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if RATIOS:
        terminalreporter.section("losslab benchmark ratios (measured in this run)")
        for line in RATIOS:
            terminalreporter.write_line(line)
