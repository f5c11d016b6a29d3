"""Figure style, set in one place, and atomic PNG + PDF output."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from losslab import io as lio  # noqa: E402

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


# --- figures that can be redrawn from stored results ------------------------------------------------------
# A claim's figure is drawn by a plot function ``plot(data, stem) -> [png, pdf]`` from plain data (numbers,
# lists, strings). ``render`` stores that data beside the figure as ``<stem>.data.json`` and draws it;
# ``rerender`` redraws a figure from the stored file alone, so that `snakemake figures` can restyle every
# figure without training or evaluating anything again.

DATA_SUFFIX = ".data.json"


def render(plot: Callable[[Mapping[str, Any], Path], list[str]], data: Mapping[str, Any],
           stem: str | Path) -> list[str]:
    """Draw ``plot(data, stem)`` and store ``data`` as ``<stem>.data.json`` so that :func:`rerender` can draw
    it again. The plot function sees the data after a JSON round trip (arrays become lists), exactly what
    a redraw will see, so the first drawing and every redraw are the same."""
    name = f"{plot.__module__}:{plot.__qualname__}"
    if not plot.__module__.startswith("losslab.") or "<" in plot.__qualname__:
        raise ValueError(f"plot function {name} must be a module-level function of losslab")
    stem = Path(stem)
    text = lio.json_text({"plot": name, "data": data}, indent=1, keep_nan=True, str_keys=True)
    lio.write_text(stem.with_name(stem.name + DATA_SUFFIX), text)
    return plot(json.loads(text)["data"], stem)


def rerender(data_file: str | Path) -> list[str]:
    """Redraw the figure whose data :func:`render` stored in ``data_file`` (``<stem>.data.json``)."""
    data_file = Path(data_file)
    if not data_file.name.endswith(DATA_SUFFIX):
        raise ValueError(f"{data_file}: not a figure data file (*{DATA_SUFFIX})")
    try:
        obj = json.loads(data_file.read_text())
        module, func = obj["plot"].split(":")
        data = obj["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise lio.CorruptFileError(f"{data_file}: not a readable figure data file ({e})") from e
    if not module.startswith("losslab."):  # a stored name is looked up, never evaluated
        raise lio.CorruptFileError(f"{data_file}: plot function {obj['plot']!r} is not part of losslab")
    plot = getattr(importlib.import_module(module), func)
    return plot(data, data_file.with_name(data_file.name[: -len(DATA_SUFFIX)]))


def rerender_all(root: str | Path) -> list[str]:
    """Redraw every figure under ``root`` that has stored data; return the files written."""
    written: list[str] = []
    for f in sorted(Path(root).rglob("*" + DATA_SUFFIX)):
        written += rerender(f)
    return written
