"""Figure style, set in one place, and atomic PNG + PDF output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import io as lio  # noqa: E402

STYLE = {
    "figure.figsize": (5.0, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.cmap": "viridis",
    "pdf.fonttype": 42,  # editable text in the PDFs
    "svg.hashsalt": "losslab",  # byte-stable output
}
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"
COLORS = plt.get_cmap("tab10").colors


def apply_style() -> None:
    plt.rcParams.update(STYLE)


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None,
               **kw):
    apply_style()
    w, h = STYLE["figure.figsize"]
    return plt.subplots(nrows, ncols, figsize=(width or w * ncols, height or h * nrows), **kw)


def save(fig, stem: str | Path) -> list[str]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; close the figure (if pyplot manages it); return the two
    paths."""
    stem = Path(stem)
    paths = []
    for ext in ("png", "pdf"):
        target = stem.with_name(f"{stem.name}.{ext}")
        with lio.atomic_path(target) as tmp:
            # a fixed creation date keeps the PDF byte-identical across reruns
            meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
            fig.savefig(tmp, format=ext, metadata=meta)
        paths.append(str(target))
    plt.close(fig)
    return paths
