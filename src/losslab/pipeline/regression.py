"""Regression of reproduced numbers: does this code still produce the numbers it produced before?

A different question from a verdict. ``results/baselines/<scale>.json`` holds, for every claim of a run, its
verdict, every number its analysis measured (``ClaimResult.numbers``) with the standard error of those that are
means over seeds, its comparisons, and the **platform** the run was made on (:func:`losslab.pipeline.cpu_kernels.
platform_record`: torch version, CPU kernel mode and level, thread count, CPU instruction set, OS and
architecture). :func:`check` compares a new run with it in one of two modes, and says which and why:

* **bitwise** when the platforms match (:func:`same_platform`): every number within ``rtol`` 1e-6 and every
  verdict exactly. The CPU runs are bitwise deterministic at a fixed thread count and, with the kernel pin
  (``cpu_kernels: pinned``, the default), on every x86-64 CPU; so any difference is a change of the code.
* **statistical** otherwise (another torch version, native kernels on another CPU, another architecture): low
  bits differ and training amplifies them, so a number fails only when it moves by more than ``Z`` (4) standard
  errors of a difference, ``Z * sqrt(se_baseline**2 + se_run**2)``, where the standard error is, in this order,
  a tolerance the claim declares (``regression_tolerance`` in ``config/claims.yaml``: ``{glob: {abs: x}}`` or
  ``{glob: {rel: x}}``), the number's own standard error (a mean over seeds), or, for a per-seed number
  (``...seed3...``), the spread of its seed family (the other seeds' values). A number with none of these is
  compared bitwise and the line says so (``noise`` measures the tolerance to declare for it). With normal errors
  and known standard errors ``Z = 4`` fails an unchanged number once in 16,000; standard errors estimated from
  few seeds make it more often (once in 250 with five seeds a side, t with 8 degrees of freedom; once in 17 with
  two). A verdict that changes while no number moved beyond its tolerance is reported with the margin of each
  comparison that changed (mean and standard error before and after) and does not fail: the claim sits at the
  edge of its decision. The mode's resolution is therefore what the claim measured: a change of the code that
  moves a number by less than its tolerance passes.

Update the baseline after an intended change (one command)::

    python -m losslab.pipeline.regression update results/smoke results/baselines/smoke.json

and check a run against it::

    python -m losslab.pipeline.regression check results/smoke results/baselines/smoke.json
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from losslab import io as lio
from losslab.pipeline.registry import load_registry

RTOL = 1e-6
ATOL = 1e-9
Z = 4.0
# the registry of the current directory's checkout, else of the checkout this module runs from
REGISTRY = next((p for p in (Path("config") / "claims.yaml",
                             Path(__file__).resolve().parents[3] / "config" / "claims.yaml") if p.exists()),
                Path("config") / "claims.yaml")
# the platform fields that must agree for a bitwise comparison; with native kernels the CPU's instruction set too.
# The CPU's vendor is one of them under the pin as well: the smoke run of one commit, pinned to AVX2, gave 76
# numbers that differ between an AMD EPYC (the baseline of 7a197ea) and an Intel Xeon (issue #18), and the NumPy
# and SciPy versions (the sharpness optimiser is SciPy's L-BFGS-B) may move numbers as torch's does.
PLATFORM_KEYS = ("torch", "numpy", "scipy", "cpu_kernels", "level", "settings", "aten_capability", "threads",
                 "cpu_vendor", "os", "arch")
NATIVE_KEYS = ("cpu_isa",)
_SEED = re.compile(r"(^|\.)seed\d+(\.|$)")


def _parts(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A verdict's decided parts (``decisions``: estimate and standard error) as the comparisons whose verdict
    changes :func:`_margins` names; a verdict file written before the pre-registered decisions gives its
    ``comparisons`` (mean and se)."""
    parts = [{"name": d["name"], "mean": d.get("estimate"), "se": d.get("se"), "verdict": d["verdict"]}
             for d in result.get("decisions", [])]
    return parts + [{k: c[k] for k in ("name", "mean", "se", "verdict")} for c in result.get("comparisons", [])]


def collect(results: str | Path) -> dict[str, Any]:
    """Verdicts, numbers, uncertainties, comparisons and platform of every claim under ``results``
    (``<results>/claims/<id>/verdict.json``). ``platform`` is the run's when every verdict agrees on it, else
    None with ``platform_problem`` saying why."""
    results = Path(results)
    found = sorted(results.glob("claims/*/verdict.json"))
    if not found:
        raise FileNotFoundError(f"{results}: no claims/*/verdict.json (has the DAG run?)")
    claims, platforms = {}, {}
    for path in found:
        r = lio.read_json(path)
        claims[r["id"]] = {"verdict": r["verdict"], "numbers": r["numbers"],
                           "uncertainty": r.get("uncertainty", {}),
                           "comparisons": _parts(r)}
        platforms[r["id"]] = r.get("platform")
    distinct = {repr(sorted(p.items())) if p else None for p in platforms.values()}
    out: dict[str, Any] = {"scale": results.name, "platform": None, "claims": claims}
    if distinct == {None}:
        out["platform_problem"] = "the verdicts record no platform (written before losslab recorded it)"
    elif len(distinct) > 1:
        out["platform_problem"] = "the verdicts were made on different platforms (a run resumed elsewhere?)"
    else:
        out["platform"] = next(p for p in platforms.values() if p)
    return out


def same_platform(baseline: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether two platform records allow a bitwise comparison, and the reason in words."""
    if not baseline or not current:
        return False, f"the {'baseline' if not baseline else 'run'} records no platform"
    keys = PLATFORM_KEYS + (NATIVE_KEYS if "native" in (baseline.get("cpu_kernels"), current.get("cpu_kernels"))
                            else ())
    differ = [f"{k} {baseline.get(k)!r} -> {current.get(k)!r}" for k in keys if baseline.get(k) != current.get(k)]
    if differ:
        return False, "the platforms differ: " + "; ".join(differ)
    pin = (f"kernels pinned to {current.get('level')} on {current.get('cpu_vendor')}"
           if current.get("cpu_kernels") == "pinned"
           else f"native kernels on the same CPU kind ({current.get('cpu_isa')}, {current.get('cpu_vendor')})")
    return True, (f"the platforms match (torch {current.get('torch')}, {pin}, {current.get('threads')} thread(s), "
                  f"{current.get('os')}/{current.get('arch')})")


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if a is None or b is None:  # NaN / inf are stored as null in JSON
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)


def _presence(cid: str, base: Mapping[str, Any], cur: Mapping[str, Any]) -> list[str]:
    if cid not in cur:
        return [f"{cid}: in the baseline, missing from this run"]
    if cid not in base:
        return [f"{cid}: new in this run, not in the baseline (update the baseline)"]
    return []


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any], rtol: float = RTOL,
            atol: float = ATOL) -> list[str]:
    """The bitwise mode: every difference of ``current`` from ``baseline``, one line each (empty: none)."""
    problems = []
    base, cur = baseline["claims"], current["claims"]
    for cid in sorted(set(base) | set(cur)):
        missing = _presence(cid, base, cur)
        if missing:
            problems += missing
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


def _family_spread(numbers: Mapping[str, Any], key: str) -> float | None:
    """The standard deviation over seeds of the per-seed number ``key``'s family (None if not per-seed)."""
    if not _SEED.search(key):
        return None
    pattern = _SEED.sub(lambda m: f"{m.group(1)}seed*{m.group(2)}", key)
    vals = [float(v) for k, v in numbers.items() if v is not None and fnmatch.fnmatchcase(k, pattern)]
    vals = [v for v in vals if math.isfinite(v)]
    if len(vals) < 2:
        return None
    m = sum(vals) / len(vals)
    return math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def tolerance(key: str, base: Mapping[str, Any], cur: Mapping[str, Any], declared: Mapping[str, Any],
              z: float = Z) -> tuple[float, str] | None:
    """How far number ``key`` of a claim (``base``/``cur``: its baseline and run entries) may move in the
    statistical mode, and where that comes from; None when nothing is known (compare bitwise)."""
    for glob, tol in declared.items():
        if fnmatch.fnmatchcase(key, glob):
            if "abs" in tol:
                return float(tol["abs"]), f"declared abs {tol['abs']:g}"
            ref = abs(float(base["numbers"][key] or 0.0))
            return float(tol["rel"]) * ref, f"declared rel {tol['rel']:g}"
    ses = [e["uncertainty"][key] for e in (base, cur) if key in e.get("uncertainty", {})]
    if ses:
        se = math.sqrt(sum(s * s for s in ses) + (ses[0] ** 2 if len(ses) == 1 else 0.0))
        return z * se, f"{z:g} x the standard error of the difference ({se:.3g})"
    spreads = [s for s in (_family_spread(e["numbers"], key) for e in (base, cur)) if s is not None]
    if spreads:
        sd = math.sqrt(sum(s * s for s in spreads) + (spreads[0] ** 2 if len(spreads) == 1 else 0.0))
        return z * sd, f"{z:g} x the seed spread of a difference ({sd:.3g})"
    return None


def _margins(base: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    """The comparisons whose verdict changed, with mean and standard error before and after."""
    before = {c["name"]: c for c in base.get("comparisons", [])}
    parts = []
    for c in cur.get("comparisons", []):
        b = before.get(c["name"])
        if b is not None and b["verdict"] != c["verdict"]:
            parts.append(f"{c['name']}: mean {b['mean']:+.4g} (se {b['se']:.2g}, {b['verdict']}) -> "
                         f"{c['mean']:+.4g} (se {c['se']:.2g}, {c['verdict']})"
                         if None not in (b["mean"], c["mean"], b["se"], c["se"]) else
                         f"{c['name']}: {b['verdict']} -> {c['verdict']} (a value is missing)")
    return "; ".join(parts) or "no single comparison changed its verdict"


def compare_statistical(baseline: Mapping[str, Any], current: Mapping[str, Any],
                        declared: Mapping[str, Mapping[str, Any]] | None = None, z: float = Z,
                        rtol: float = RTOL, atol: float = ATOL) -> tuple[list[str], list[str]]:
    """The statistical mode: (failures, notices). ``declared``: claim id -> its ``regression_tolerance``."""
    failures, notices = [], []
    base, cur = baseline["claims"], current["claims"]
    declared = declared or {}
    for cid in sorted(set(base) | set(cur)):
        missing = _presence(cid, base, cur)
        if missing:
            failures += missing
            continue
        moved = []
        bn, cn = base[cid]["numbers"], cur[cid]["numbers"]
        for key in sorted(set(bn) | set(cn)):
            if key not in cn or key not in bn:
                moved.append(f"{cid}: number {key} {'missing' if key not in cn else 'new'}")
                continue
            a, b = bn[key], cn[key]
            if (a is None) != (b is None):
                moved.append(f"{cid}: {key} moved: {a!r} -> {b!r} (a value became or stopped being NaN)")
                continue
            if a is None or _close(a, b, rtol, atol):
                continue
            tol = tolerance(key, base[cid], cur[cid], declared.get(cid, {}), z)
            if tol is None:
                moved.append(f"{cid}: {key} moved: {a!r} -> {b!r} (no uncertainty known, so compared bitwise: "
                             f"declare regression_tolerance for it in config/claims.yaml)")
            elif abs(b - a) > tol[0]:
                moved.append(f"{cid}: {key} moved by {b - a:+.4g} ({a!r} -> {b!r}), more than its tolerance "
                             f"{tol[0]:.3g} ({tol[1]})")
        failures += moved
        if base[cid]["verdict"] != cur[cid]["verdict"]:
            line = (f"{cid}: verdict changed: {base[cid]['verdict']!r} -> {cur[cid]['verdict']!r}; margin: "
                    f"{_margins(base[cid], cur[cid])}")
            if moved:
                failures.append(line)
            else:
                notices.append(line + " (every number within its tolerance: the claim is at the edge of its "
                               "decision)")
    return failures, notices


# the leading member label of a number's key (a model, depth, width, seed...): A., d20., K0.25., seed3., curve.
_MEMBER = re.compile(r"^[A-Za-z]+\d*(?:\.\d+)?\.(?=[A-Za-z])")


def family(key: str) -> str:
    """The glob of a number's family: its key with the leading member label replaced by ``*``
    (``d20.noskip.nonconvex_fraction`` -> ``*.noskip.nonconvex_fraction``, ``K0.25.length_ratio`` ->
    ``*.length_ratio``); a key without one is its own family."""
    return _MEMBER.sub("*.", key, count=1)


def kernel_noise(reference: Mapping[str, Any], others: Sequence[Mapping[str, Any]],
                 z: float = Z) -> dict[str, dict[str, dict[str, Any]]]:
    """What runs of the same code on other platforms (``others``, :func:`collect` results) say about the numbers
    of ``reference`` without a standard error: claim id -> family glob -> ``{"n", "rms", "max", "abs"}``, where
    ``rms`` is the root mean square of the differences from the reference over the family's members and the other
    runs (each a sample of the platform noise), ``max`` the largest, and ``abs`` the tolerance ``z * rms`` (two
    significant digits, rounded up) to declare as ``regression_tolerance``. Families none of whose members moved
    beyond the bitwise mode's ``rtol`` are left out."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cid in sorted(reference["claims"]):
        ea = reference["claims"][cid]
        diffs: dict[str, list[float]] = {}
        moved: set[str] = set()
        for other in others:
            eb = other["claims"].get(cid)
            if eb is None:
                continue
            for key in sorted(set(ea["numbers"]) & set(eb["numbers"])):
                x, y = ea["numbers"][key], eb["numbers"][key]
                if x is None or y is None or tolerance(key, ea, eb, {}) is not None:  # it has an error bar
                    continue
                diffs.setdefault(family(key), []).append(float(y) - float(x))
                if not _close(x, y, RTOL, ATOL):
                    moved.add(family(key))
        for fam, d in diffs.items():
            rms = math.sqrt(sum(v * v for v in d) / len(d))
            if fam in moved:
                tol = z * rms
                step = 10.0 ** (math.floor(math.log10(tol)) - 1)
                out.setdefault(cid, {})[fam] = {"n": len(d), "rms": rms, "max": max(map(abs, d)),
                                                "abs": float(f"{math.ceil(tol / step) * step:.2g}")}
    return out


@dataclass
class Outcome:
    """What :func:`check` found: the mode it ran in and why, the failures and the notices."""

    mode: str
    reason: str
    failures: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def declared_tolerances(registry: str | Path | Sequence[Mapping[str, Any]] = REGISTRY) -> dict[str, Any]:
    """Claim id -> its ``regression_tolerance`` (glob -> ``{abs: x}`` or ``{rel: x}``) from the registry."""
    claims = load_registry(registry) if isinstance(registry, (str, Path)) else registry
    return {c["id"]: c["regression_tolerance"] for c in claims if c.get("regression_tolerance")}


def check(baseline: Mapping[str, Any], current: Mapping[str, Any], declared: Mapping[str, Any] | None = None,
          mode: str = "auto", rtol: float = RTOL, atol: float = ATOL, z: float = Z) -> Outcome:
    """Compare a run with a baseline: bitwise when the platforms match, else statistically (``mode`` forces
    ``bitwise`` or ``statistical``)."""
    same, why = same_platform(baseline.get("platform"), current.get("platform"))
    if mode == "auto":
        mode = "bitwise" if same else "statistical"
    elif mode not in ("bitwise", "statistical"):
        raise ValueError(f"mode {mode!r}: use auto, bitwise or statistical")
    else:
        why = f"{mode} requested ({why})"
    for what, record in (("baseline", baseline), ("run", current)):
        if record.get("platform_problem"):
            why += f"; {what}: {record['platform_problem']}"
    if mode == "bitwise":
        return Outcome(mode, why, compare(baseline, current, rtol, atol))
    failures, notices = compare_statistical(baseline, current, declared, z, rtol, atol)
    return Outcome(mode, why, failures, notices)


def regression_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m losslab.pipeline.regression", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["update", "check", "noise"],
                        help="update: write the baseline; check: compare a run with it; noise: measure the platform "
                        "noise of the numbers without a standard error between two runs of the same code "
                        "(results, baseline: two results directories) and print regression_tolerance entries")
    parser.add_argument("results", help="a run's results directory, e.g. results/smoke")
    parser.add_argument("baseline", help="the baseline file, e.g. results/baselines/smoke.json (noise: a second "
                        "results directory)")
    parser.add_argument("--more", action="append", default=[], metavar="RESULTS",
                        help="noise: a further results directory of the same code on another platform (repeatable)")
    parser.add_argument("--mode", choices=["auto", "bitwise", "statistical"], default="auto",
                        help="auto (default): bitwise when the platforms match, else statistical")
    parser.add_argument("--registry", default=str(REGISTRY),
                        help="claims registry with the declared tolerances (default: config/claims.yaml)")
    parser.add_argument("--rtol", type=float, default=RTOL)
    parser.add_argument("--atol", type=float, default=ATOL)
    parser.add_argument("--z", type=float, default=Z, help="standard errors a number may move (statistical mode)")
    args = parser.parse_args(argv)
    current = collect(args.results)
    if args.action == "noise":
        others = [collect(d) for d in (args.baseline, *args.more)]
        for d, other in zip((args.baseline, *args.more), others):
            print(f"# {d}: {same_platform(current.get('platform'), other.get('platform'))[1]}")
        print(f"# platform noise of {args.results}'s numbers without a standard error; per family: samples "
              f"(members x runs), rms and max difference; the tolerance is {args.z:g} x rms")
        for cid, fams in kernel_noise(current, others, args.z).items():
            print(f"{cid}:")
            for fam, v in fams.items():
                print(f"  {json.dumps(fam)}: {{abs: {v['abs']:g}}}  # n {v['n']}, rms {v['rms']:.3g}, "
                      f"max {v['max']:.3g}")
        return 0
    if args.action == "update":
        if current.get("platform_problem"):
            print(f"{args.results}: {current['platform_problem']}; refusing to write a baseline without one "
                  f"platform", file=sys.stderr)
            return 1
        lio.write_json(args.baseline, current)
        print(f"wrote {args.baseline}: {len(current['claims'])} claims, platform {current['platform']}")
        return 0
    registry = Path(args.registry)
    declared = declared_tolerances(registry) if registry.exists() else {}
    outcome = check(lio.read_json(args.baseline), current, declared, args.mode, args.rtol, args.atol, args.z)
    print(f"{outcome.mode} comparison: {outcome.reason}")
    for line in outcome.failures:
        print(line)
    for line in outcome.notices:
        print(f"notice: {line}")
    print(f"{len(current['claims'])} claims compared with {args.baseline} ({outcome.mode}): "
          f"{'no change' if outcome.ok else f'{len(outcome.failures)} differences'}"
          + (f", {len(outcome.notices)} notices" if outcome.notices else ""))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(regression_main())
