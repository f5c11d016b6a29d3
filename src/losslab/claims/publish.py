"""A run's report published in the repository, so that users read the verdicts without running anything.

``results/published/<scale>/`` holds a copy of one whole run's report: ``report/claims.md``, ``claims.csv``,
``index.md``, ``power.md`` and ``benchmarks.md`` when present, the HTML report when given, per claim its
``verdict.json``, ``table.csv``/``table.md`` and figure PNGs, and every file the report's pages link to (the
surface and curve-plane figures, the PDFs), at their places in the run's layout; no checkpoints, no raw data.
``MANIFEST.json`` says what made it: the commit, the date, the machine, the command and its wall time, a
fingerprint of every claim's registry entry (its rule, experiment, checks and pre-registered decision: the rule
versions) and of the scale file, and the SHA-256 of every published file. :func:`check_published` is what the test
suite asks of it: every registry claim present, each verdict.json equal to its row of ``claims.csv``, every link of
its pages resolved, the files unaltered, and the fingerprints those of the committed registry and scale file (a
changed decision or scale file needs a new run).

    python -m losslab.claims.publish publish results/desk --time /tmp/desk_time.txt --command "..."
    python -m losslab.claims.publish check results/published/desk
    python -m losslab.claims.publish readme          # the README's claims table, smoke beside desk
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

from losslab import io as lio
from losslab.claims.summary import measured_cell
from losslab.pipeline.registry import load_registry

ROOT = Path(__file__).resolve().parents[3]  # src/losslab/claims/ -> the checkout
PUBLISHED = Path("results") / "published"
MANIFEST = "MANIFEST.json"
REPORT_FILES = ("claims.md", "claims.csv", "index.md", "power.md", "benchmarks.md")
CLAIM_FILES = ("verdict.json", "table.csv", "table.md")
# what a claim's registry entry is fingerprinted on: what decides it (its notes and context only explain)
RULE_KEYS = ("rule", "experiment", "checks", "decision", "pending")
README_START, README_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


class PublishError(ValueError):
    """A published report that is incomplete, inconsistent or made by another registry."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_hash(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), its first 16 hex digits."""
    return _sha(json.dumps(obj, sort_keys=True, default=str).encode())[:16]


def rule_fingerprints(registry: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Per claim id, the fingerprint of what decides it (:data:`RULE_KEYS` of its registry entry)."""
    return {c["id"]: canonical_hash({k: c.get(k) for k in RULE_KEYS}) for c in registry}


def scale_fingerprint(root: str | Path, scale: str) -> str:
    return _sha((Path(root) / "config" / "scales" / f"{scale}.yaml").read_bytes())[:16]


def wall_seconds_of(time_output: str) -> float:
    """The elapsed wall time in ``/usr/bin/time -v`` output (``Elapsed (wall clock) time ...: h:mm:ss`` or
    ``m:ss.ss``), in seconds."""
    m = re.search(r"Elapsed \(wall clock\) time[^\n]*?\):\s*([0-9:.]+)", time_output)
    if not m:
        raise PublishError("no 'Elapsed (wall clock) time' line in the /usr/bin/time -v output")
    seconds = 0.0
    for field in m.group(1).split(":"):
        seconds = 60 * seconds + float(field)
    return seconds


def machine() -> dict[str, Any]:
    """The CPU model, logical cores, memory and OS of this machine."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        info["cpu"] = model.group(1).strip() if model else platform.processor()
        mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if mem:
            info["memory_gb"] = round(int(mem.group(1)) / 2**20, 1)
    except OSError:
        info["cpu"] = platform.processor()
    return info


def git_commit(root: str | Path) -> dict[str, Any]:
    """The checked-out commit and whether the tree had uncommitted changes to tracked files."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _relative_paths(verdict: dict[str, Any]) -> dict[str, Any]:
    """A verdict's figure and table paths relative to its claim directory (a run stores absolute paths)."""
    out = dict(verdict)
    for key in ("figures", "tables"):
        out[key] = [Path(p).name for p in verdict.get(key, [])]
    return out


def publish(results: str | Path, dest: str | Path | None = None, *, wall_seconds: float, command: str,
            root: str | Path = ROOT, html: str | Path | None = None,
            registry_path: str | Path | None = None, commit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Copy the report of the run in ``results`` (``<results>/<scale>``) to ``dest`` (default
    ``results/published/<scale>`` under ``root``) and write its manifest. The run must be complete: every
    implemented claim of the scale has its verdict (else :class:`PublishError`, naming the missing ones).
    ``commit``: ``{commit, dirty}`` of the code that made the run (default: ``root``'s checked-out commit)."""
    results, root = Path(results), Path(root)
    scale = results.name
    dest = Path(dest) if dest is not None else root / PUBLISHED / scale
    registry = load_registry(registry_path or root / "config" / "claims.yaml")
    rows = _read_rows(results / "report" / "claims.csv")
    missing = [c["id"] for c in registry if c["id"] not in rows]
    if missing:
        raise PublishError(f"{results}/report/claims.csv lacks claims {missing}: run the report rule first")
    decided = [cid for cid, r in rows.items() if r["verdict"] != "pending"]
    absent = [cid for cid in decided if not (results / "claims" / cid / "verdict.json").exists()]
    if absent:
        raise PublishError(f"{results}: no verdict.json for {absent}")
    if dest.exists():
        shutil.rmtree(dest)
    files: dict[str, str] = {}

    def put(rel: str, data: bytes) -> None:
        lio.write_bytes(dest / rel, data)
        files[rel] = _sha(data)

    for name in REPORT_FILES:
        if (results / "report" / name).exists():
            put(f"report/{name}", (results / "report" / name).read_bytes())
    if html is not None:
        put(f"report/{Path(html).name}", Path(html).read_bytes())
    for cid in decided:
        cdir = results / "claims" / cid
        verdict = _relative_paths(lio.read_json(cdir / "verdict.json"))
        put(f"claims/{cid}/verdict.json", lio.json_text(verdict).encode())
        for name in CLAIM_FILES[1:]:
            if (cdir / name).exists():
                put(f"claims/{cid}/{name}", (cdir / name).read_bytes())
        for png in sorted(cdir.glob("*.png")):
            put(f"claims/{cid}/{png.name}", png.read_bytes())
    for rel in linked_files(dest / "report"):  # what the report's pages link to: surfaces, curve planes, PDFs, tables
        if rel not in files and (results / rel).is_file():
            put(rel, (results / rel).read_bytes())
    manifest = {"scale": scale, **(commit if commit is not None else git_commit(root)),
                "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                "machine": machine(), "command": command, "wall_seconds": round(float(wall_seconds), 1),
                "scale_file": scale_fingerprint(root, scale), "rules": rule_fingerprints(registry),
                "verdicts": {cid: rows[cid]["verdict"] for cid in rows}, "files": dict(sorted(files.items()))}
    lio.write_text(dest / MANIFEST, lio.json_text(manifest) + "\n")
    return manifest


LINK = re.compile(r"\]\(([^)#\s]+)\)")


def linked_files(report_dir: Path) -> list[str]:
    """The files the markdown pages of ``report_dir`` link to, relative to its parent (the scale's directory):
    every relative link of every ``*.md`` page (web links excluded)."""
    out = set()
    for page in sorted(report_dir.glob("*.md")):
        for link in LINK.findall(page.read_text()):
            if "://" not in link:
                out.add(os.path.normpath(os.path.join("report", link)))
    return sorted(out)


def _read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {r["claim"]: r for r in csv.DictReader(f)}


def check_published(dest: str | Path, root: str | Path = ROOT, registry_path: str | Path | None = None) -> list[str]:
    """What is wrong with the published report in ``dest`` (empty: complete and consistent): a registry claim
    missing from ``claims.csv`` or, when decided, its files; a verdict.json whose id, verdict or measured differs
    from its row; a file changed since publication or not in the manifest; a claim whose registry entry, or the
    scale file, is not the one the run was made with."""
    dest, root = Path(dest), Path(root)
    problems: list[str] = []
    if not (dest / MANIFEST).exists():
        return [f"{dest}: no {MANIFEST}"]
    manifest = lio.read_json(dest / MANIFEST)
    registry = load_registry(registry_path or root / "config" / "claims.yaml")
    rows = _read_rows(dest / "report" / "claims.csv")
    for cid, fp in rule_fingerprints(registry).items():
        if cid not in rows:
            problems.append(f"{cid}: not in report/claims.csv")
            continue
        if manifest["rules"].get(cid) != fp:
            problems.append(f"{cid}: its registry entry (rule, checks or decision) is not the one the published run "
                            f"used: publish a new run")
        if rows[cid]["verdict"] == "pending":
            continue
        cdir = dest / "claims" / cid
        for name in ("verdict.json", "table.csv", "figure.png"):
            if not (cdir / name).exists():
                problems.append(f"{cid}: no {name}")
        if (cdir / "verdict.json").exists():
            v = lio.read_json(cdir / "verdict.json")
            cells = {"claim": str(v.get("id")), "verdict": str(v.get("verdict")), "measured": measured_cell(v)}
            for col, value in cells.items():
                if value != rows[cid][col]:
                    problems.append(f"{cid}: verdict.json gives {col} {value!r}, claims.csv {rows[cid][col]!r}")
            if v.get("scale") != manifest["scale"]:
                problems.append(f"{cid}: verdict.json scale {v.get('scale')!r} != {manifest['scale']!r}")
    for rel in linked_files(dest / "report"):
        if not (dest / rel).is_file():
            problems.append(f"report: a page links to {rel}, which is not published")
    if manifest["scale_file"] != scale_fingerprint(root, manifest["scale"]):
        problems.append(f"config/scales/{manifest['scale']}.yaml is not the one the published run used")
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.name != MANIFEST}
    for rel in sorted(on_disk - set(manifest["files"])):
        problems.append(f"{rel}: not in the manifest")
    for rel, sha in manifest["files"].items():
        if rel not in on_disk:
            problems.append(f"{rel}: in the manifest, missing")
        elif _sha((dest / rel).read_bytes()) != sha:
            problems.append(f"{rel}: changed since it was published")
    return problems


def readme_table(root: str | Path = ROOT, scale: str = "desk") -> str:
    """The README's claims table: per registry claim its family, the smoke baseline's verdict
    (results/baselines/smoke.json) and the published ``scale`` run's verdict with a link to its figure."""
    root = Path(root)
    registry = load_registry(root / "config" / "claims.yaml")
    baseline = lio.read_json(root / "results" / "baselines" / "smoke.json")["claims"]
    pub = root / PUBLISHED / scale
    manifest = lio.read_json(pub / MANIFEST)
    rows = _read_rows(pub / "report" / "claims.csv")
    lines = [f"| claim | family | smoke (CI baseline) | {scale} (published) | figure |", "|---|---|---|---|---|"]
    for c in registry:
        cid = c["id"]
        smoke = baseline.get(cid, {}).get("verdict", "pending" if "pending" in c else "not run")
        row = rows.get(cid)
        verdict = row["verdict"] if row else "not run"
        fig = pub / "claims" / cid / "figure.png"
        link = f"[figure]({fig.relative_to(root).as_posix()})" if fig.exists() else ""
        lines.append(f"| `{cid}` | {c['family']} | {smoke} | {verdict} | {link} |")
    when = manifest["date"][:10]
    mins = manifest["wall_seconds"] / 60
    lines.append("")
    lines.append(f"The {scale} column: `{manifest['command']}` at commit {manifest['commit'][:10]} on {when}, "
                 f"{mins:.0f} minutes wall on {manifest['machine'].get('cores')} cores "
                 f"({manifest['machine'].get('cpu', '?')}); its report: "
                 f"[{(pub / 'report' / 'claims.md').relative_to(root).as_posix()}]"
                 f"({(pub / 'report' / 'claims.md').relative_to(root).as_posix()}).")
    return "\n".join(lines)


def update_readme(root: str | Path = ROOT, scale: str = "desk") -> bool:
    """Replace the README's table between :data:`README_START` and :data:`README_END`; True when it changed."""
    path = Path(root) / "README.md"
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise PublishError(f"{path}: no {README_START} ... {README_END} markers")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{readme_table(root, scale)}\n{README_END}{tail}"
    if new != text:
        lio.write_text(path, new)
    return new != text


def publish_main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="action", required=True)
    p = sub.add_parser("publish", help="copy a finished run's report into results/published/<scale>")
    p.add_argument("results", help="the run's <results>/<scale> directory")
    p.add_argument("--dest", default=None)
    p.add_argument("--time", dest="time_file", help="the /usr/bin/time -v output of the run")
    p.add_argument("--wall-seconds", type=float, default=None)
    p.add_argument("--command", required=True, help="the command the run was made with")
    p.add_argument("--html", default=None, help="the run's HTML report (snakemake --report)")
    c = sub.add_parser("check", help="is a published report complete, consistent and made by this registry?")
    c.add_argument("dest")
    r = sub.add_parser("readme", help="rewrite the README's claims table from the published run")
    r.add_argument("--scale", default="desk")
    args = ap.parse_args(argv)
    if args.action == "publish":
        if (args.time_file is None) == (args.wall_seconds is None):
            ap.error("give exactly one of --time and --wall-seconds")
        wall = args.wall_seconds if args.time_file is None else wall_seconds_of(Path(args.time_file).read_text())
        m = publish(args.results, args.dest, wall_seconds=wall, command=args.command, html=args.html)
        print(f"published {len(m['files'])} files of {m['scale']} (commit {m['commit'][:10]}, {wall / 60:.1f} min)")
    elif args.action == "check":
        problems = check_published(args.dest)
        print("\n".join(problems) or "complete and consistent")
        raise SystemExit(1 if problems else 0)
    else:
        print("README table", "updated" if update_readme(scale=args.scale) else "unchanged")


if __name__ == "__main__":
    publish_main()
