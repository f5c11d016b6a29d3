"""Where a run's time goes: Snakemake's per-job benchmark files summarized per rule family.

Every rule writes ``<results>/<scale>/benchmarks/<rule>/...tsv`` (claim rules: ``benchmarks/claims/<claim
id>.tsv``) and logs ``job start-up: <s> s`` (``losslab.pipeline.job.start_job``: the seconds from the job's
process start to its first line of work: interpreter, imports). A family is the rules file that defines the
rule (``workflow/rules/<family>.smk``); a claim's family is its registry entry's.

    python -m losslab.pipeline.jobstats results/smoke logs/smoke [--out results/smoke/report/benchmarks.md]
    python -m losslab.pipeline.jobstats results/smoke --by experiment

``--by experiment`` sums the same files per experiment of the scale's config instead (labelled with the claim
the experiment is for; the claim jobs together in one row): what each claim's analogue costs.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from losslab import io as lio
from losslab.pipeline.registry import load_registry

ROOT = Path(__file__).resolve().parents[3]  # src/losslab/pipeline/ -> the checkout
STARTUP = re.compile(r"job start-up: ([0-9.]+) s")


@dataclass
class Family:
    jobs: int = 0
    seconds: float = 0.0
    startup: float = 0.0


def rule_families(rules_dir: Path) -> dict[str, str]:
    """Rule name -> the stem of the .smk file that defines it."""
    out = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        for m in re.finditer(r"^\s*rule (\w+):", smk.read_text(), re.M):
            out[m.group(1)] = smk.stem
    return out


def _family(rel: Path, rules: dict[str, str], claims: dict[str, str]) -> str:
    first = rel.parts[0] if len(rel.parts) > 1 else rel.name.split(".")[0]
    if first == "claims" and len(rel.parts) > 1:
        return claims.get(rel.stem.split(".")[0], "claims")
    return rules.get(first, first)


def experiment_key(scale_config: Mapping[str, Any] | None = None) -> Callable[[Path], str]:
    """A benchmark or log path (relative to ``benchmarks/`` or the logs) -> its experiment, labelled with the
    claim the scale's config says it is for: ``<rule>/<experiment>/...`` or ``<rule>/<kind>/<experiment>/...``
    (``mpo_fit`` jobs: ``patterns``); every ``claims/<id>`` job -> ``claim jobs``; a rule without an
    experiment (``report``) -> the rule."""
    experiments = (scale_config or {}).get("experiments", {})

    def key(rel: Path) -> str:
        parts = rel.parts
        if len(parts) == 1:
            return rel.name.split(".")[0]
        if parts[0] == "claims":
            return "claim jobs"
        name = "patterns" if parts[0] == "mpo_fit" else parts[1].split(".")[0]
        if name not in experiments and len(parts) > 2 and parts[2] in experiments:  # sharpness/<kind>/<experiment>
            name = parts[2]
        exp = experiments.get(name)
        claim = exp.get("claim") if isinstance(exp, Mapping) else None
        return f"{name} ({claim})" if claim else name

    return key


def summarize(results: Path, logs: Path | None = None, rules_dir: Path | None = None,
              registry: Path | None = None, key: Callable[[Path], str] | None = None) -> dict[str, Family]:
    """Jobs, job seconds and start-up seconds per rule family (or per ``key(path)`` of each benchmark and log
    file, e.g. :func:`experiment_key`)."""
    if key is None:
        rules = rule_families(rules_dir or ROOT / "workflow" / "rules")
        claims = {c["id"]: c["family"] for c in load_registry(registry or ROOT / "config" / "claims.yaml")}

        def key(rel: Path) -> str:
            return _family(rel, rules, claims)

    fams: dict[str, Family] = defaultdict(Family)
    bench = results / "benchmarks"
    for f in sorted(bench.rglob("*.tsv")):
        rows = list(csv.DictReader(f.open(), delimiter="\t"))
        if not rows:
            continue
        fam = fams[key(f.relative_to(bench))]
        fam.jobs += 1
        fam.seconds += float(rows[-1]["s"])
    if logs is not None and logs.is_dir():
        for f in sorted(logs.rglob("*.log")):
            found = STARTUP.findall(f.read_text(errors="replace"))
            if not found:
                continue
            fam = fams[key(f.relative_to(logs))]
            fam.startup += float(found[-1])  # the last run's (logs are appended to across reruns)
    return dict(fams)


def table(fams: dict[str, Family], what: str = "family") -> str:
    total = sum(f.seconds for f in fams.values()) or 1.0
    lines = [f"| {what} | jobs | job seconds | share | start-up seconds | start-up share of the {what} |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, f in sorted(fams.items(), key=lambda kv: -kv[1].seconds):
        share = f"{100 * f.startup / f.seconds:.0f}%" if f.seconds else "-"
        lines.append(f"| {name} | {f.jobs} | {f.seconds:.1f} | {100 * f.seconds / total:.0f}% | "
                     f"{f.startup:.1f} | {share} |")
    s = sum(f.startup for f in fams.values())
    lines.append(f"| **all** | {sum(f.jobs for f in fams.values())} | {total:.1f} | 100% | {s:.1f} | "
                 f"{100 * s / total:.0f}% |")
    return "\n".join(lines) + "\n"


def jobstats_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m losslab.pipeline.jobstats", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="a scale's results directory, e.g. results/smoke")
    ap.add_argument("logs", type=Path, nargs="?", help="its logs directory, e.g. logs/smoke")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    ap.add_argument("--by", choices=("family", "experiment"), default="family",
                    help="rows: rule families, or the experiments of the scale's config (default: family)")
    ap.add_argument("--config", type=Path, help="the scale's config for --by experiment (default: "
                                                "config/scales/<name of RESULTS>.yaml)")
    a = ap.parse_args(argv)
    if not (a.results / "benchmarks").is_dir():
        ap.error(f"results: {a.results / 'benchmarks'} does not exist (run the DAG first)")
    key = None
    if a.by == "experiment":
        from losslab.pipeline.config import read_yaml

        path = a.config or ROOT / "config" / "scales" / f"{a.results.resolve().name}.yaml"
        key = experiment_key(read_yaml(path) if path.exists() else None)
    text = table(summarize(a.results, a.logs, key=key), a.by)
    sys.stdout.write(text)
    if a.out:
        lio.write_text(a.out, f"# Job seconds per rule {a.by} ({a.results})\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(jobstats_main())
