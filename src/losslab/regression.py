"""Regression of reproduced numbers: does this code still produce the numbers it produced before?

A different question from a verdict. ``results/baselines/<scale>.json`` holds, for every claim of a run, its
verdict and every number its analysis measured (``ClaimResult.numbers``). :func:`compare` checks a new run
against it: every number within ``rtol``/``atol`` and every verdict exactly. CPU runs are bitwise
deterministic at a fixed thread count on one machine, so the default tolerance is tight.

Update the baseline after an intended change (one command)::

    python -m losslab.regression update results/smoke results/baselines/smoke.json

and check a run against it::

    python -m losslab.regression check results/smoke results/baselines/smoke.json
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Mapping

from . import io as lio

RTOL = 1e-6
ATOL = 1e-9


def collect(results: str | Path) -> dict[str, Any]:
    """Verdicts and numbers of every claim under ``results`` (``<results>/claims/<id>/verdict.json``)."""
    results = Path(results)
    found = sorted(results.glob("claims/*/verdict.json"))
    if not found:
        raise FileNotFoundError(f"{results}: no claims/*/verdict.json (has the DAG run?)")
    claims = {}
    for path in found:
        r = lio.read_json(path)
        claims[r["id"]] = {"verdict": r["verdict"], "numbers": r["numbers"]}
    return {"scale": results.name, "claims": claims}


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if a is None or b is None:  # NaN / inf are stored as null in JSON
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any], rtol: float = RTOL,
            atol: float = ATOL) -> list[str]:
    """Every difference of ``current`` from ``baseline``, one line each (empty: no regression)."""
    problems = []
    base, cur = baseline["claims"], current["claims"]
    for cid in sorted(set(base) | set(cur)):
        if cid not in cur:
            problems.append(f"{cid}: in the baseline, missing from this run")
            continue
        if cid not in base:
            problems.append(f"{cid}: new in this run, not in the baseline (update the baseline)")
            continue
        if base[cid]["verdict"] != cur[cid]["verdict"]:
            problems.append(f"{cid}: verdict changed: {base[cid]['verdict']!r} -> {cur[cid]['verdict']!r}")
        bn, cn = base[cid]["numbers"], cur[cid]["numbers"]
        for key in sorted(set(bn) | set(cn)):
            if key not in cn or key not in bn:
                problems.append(f"{cid}: number {key} {'missing' if key not in cn else 'new'}")
            elif not _close(bn[key], cn[key], rtol, atol):
                problems.append(f"{cid}: {key} moved: {bn[key]!r} -> {cn[key]!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m losslab.regression", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["update", "check"])
    parser.add_argument("results", help="a run's results directory, e.g. results/smoke")
    parser.add_argument("baseline", help="the baseline file, e.g. results/baselines/smoke.json")
    parser.add_argument("--rtol", type=float, default=RTOL)
    parser.add_argument("--atol", type=float, default=ATOL)
    args = parser.parse_args(argv)
    current = collect(args.results)
    if args.action == "update":
        lio.write_json(args.baseline, current)
        print(f"wrote {args.baseline}: {len(current['claims'])} claims")
        return 0
    problems = compare(lio.read_json(args.baseline), current, args.rtol, args.atol)
    for line in problems:
        print(line)
    print(f"{len(current['claims'])} claims compared with {args.baseline}: "
          f"{'no change' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
