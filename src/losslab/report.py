"""Tables (CSV + Markdown) and the verdict report ``claims.md`` / ``claims.csv``."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import io as lio
from .claims import VERDICTS


def fmt(x: Any, digits: int = 3) -> str:
    if isinstance(x, float):
        if not math.isfinite(x):
            return "nan"
        return f"{x:.{digits}g}"
    return str(x)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c, "")).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[Mapping[str, Any]], stem: str | Path, title: str = "",
                columns: Sequence[str] | None = None) -> list[str]:
    """Write ``stem.csv`` and ``stem.md`` (with an optional title line); return both paths."""
    stem = Path(stem)
    columns = list(columns or (rows[0].keys() if rows else []))
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    lio.write_csv(csv_path, rows, columns)
    head = f"### {title}\n\n" if title else ""
    lio.write_text(md_path, head + markdown_table(rows, columns))
    return [str(csv_path), str(md_path)]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, s


def pm(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± std`` of ``values`` times ``scale``, as text."""
    m, s = mean_std(values)
    return f"{m * scale:.{digits}f} ± {s * scale:.{digits}f}"


REPORT_COLUMNS = ("claim", "family", "source", "statement", "reported", "measured", "n_seeds", "verdict",
                  "rule", "figure")


def build_report(registry: Sequence[Mapping[str, Any]], results: Mapping[str, Mapping[str, Any]],
                 out_dir: str | Path, scale: str) -> dict[str, int]:
    """Write ``claims.md`` and ``claims.csv`` into ``out_dir``: one row per registry claim, with the verdict
    of its result file or the reason it is pending. Returns the count of each verdict."""
    out_dir = Path(out_dir)
    rows, counts = [], {v: 0 for v in (*VERDICTS, "pending")}
    for claim in registry:
        res = results.get(claim["id"])
        if res is None:
            verdict, measured, rule, fig, n = "pending", claim.get("pending", "not run at this scale"), "", "", ""
        else:
            verdict, measured, rule, n = res["verdict"], res["measured"], res["rule"], res["n_seeds"]
            fig = os.path.relpath(res["figures"][0], out_dir) if res.get("figures") else ""
        counts[verdict] += 1
        rows.append({"claim": claim["id"], "family": claim["family"], "source": claim["source"],
                     "statement": claim["statement"], "reported": claim["reported"], "measured": measured,
                     "n_seeds": n, "verdict": verdict, "rule": rule, "figure": fig})
    lio.write_csv(out_dir / "claims.csv", rows, REPORT_COLUMNS)

    summary = ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
    md = [f"# losslab claims at scale `{scale}`", "", f"{len(rows)} claims; {summary}.", ""]
    md.append(markdown_table(
        [{**r, "figure": f"[figure]({r['figure']})" if r["figure"] else ""} for r in rows],
        ("claim", "source", "reported", "measured", "n_seeds", "verdict", "figure")))
    md += ["", "## Rules", ""]
    for r in rows:
        md.append(f"- **{r['claim']}** ({r['verdict']}): {r['statement']} Rule: {r['rule'] or r['measured']}")
    lio.write_text(out_dir / "claims.md", "\n".join(md) + "\n")
    return counts
