"""Tables: CSV + Markdown side by side (:func:`write_table`), and the mean-and-spread cells they show."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from losslab import io as lio


def fmt(x: Any, digits: int = 3) -> str:
    """A table cell: a real number (Python's or NumPy's float) to ``digits`` significant digits, else as is."""
    if isinstance(x, (float, np.floating)):
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


def csv_cell(text: str) -> Any:
    """A cell of a table.csv as :func:`write_table` had it: an int or a float when the text is exactly how Python
    writes that number (so that :func:`fmt` shows it as the first table.md did), else the text itself (a
    pre-formatted ``"0.090"`` or ``"40.56 ± 1.96"`` stays as written)."""
    for kind, show in ((int, str), (float, repr)):
        try:
            value = kind(text)
        except ValueError:
            continue
        if show(value) == text:
            return value
    return text


def rerender_table(csv_path: str | Path) -> list[str]:
    """``table.md`` again from ``table.csv``, keeping the title line of the existing ``table.md``: the same
    Markdown as the claim's first writing (numbers read back as numbers, :func:`csv_cell`)."""
    csv_path = Path(csv_path)
    md = csv_path.with_suffix(".md")
    title = ""
    if md.exists():
        first = md.read_text().splitlines()[:1]
        if first and first[0].startswith("### "):
            title = first[0][4:]
    rows, columns = read_table_csv(csv_path)
    rows = [{k: csv_cell(v) for k, v in row.items()} for row in rows]
    return write_table(rows, csv_path.with_suffix(""), title=title, columns=columns)
