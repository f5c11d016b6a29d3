"""Tables: CSV + Markdown side by side (:func:`write_table`), and the mean-and-spread cells they show."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from losslab import io as lio


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


def read_table_csv(path: str | Path) -> tuple[list[dict[str, str]], list[str]]:
    import csv
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader), list(reader.fieldnames or [])


def rerender_table(csv_path: str | Path) -> list[str]:
    """``table.md`` again from ``table.csv``, keeping the title line of the existing ``table.md``."""
    csv_path = Path(csv_path)
    md = csv_path.with_suffix(".md")
    title = ""
    if md.exists():
        first = md.read_text().splitlines()[:1]
        if first and first[0].startswith("### "):
            title = first[0][4:]
    rows, columns = read_table_csv(csv_path)
    return write_table(rows, csv_path.with_suffix(""), title=title, columns=columns)
