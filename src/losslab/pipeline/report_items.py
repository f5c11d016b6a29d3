"""The items of Snakemake's HTML report (`snakemake --report report.html`): each claim's figure and decision figure,
filed under its family and claim (``report(..., category=, subcategory=)`` in workflow/rules/common.smk) and
labelled by :func:`report_labels` with its claim, which figure it is and its verdict. Snakemake evaluates a
``labels=`` function only when it makes the report, when every claim's ``verdict.json`` is there; the report shows
the labels as columns of each family's list and above each figure's caption.

This module is imported when the Snakefile is parsed (every `snakemake` call), so it reads the verdict file with
:mod:`losslab.io` alone: the verdict logic (:mod:`losslab.claims.verdicts`) brings SciPy, and the report
(:mod:`losslab.claims.summary`) every claim family with torch, seconds of import for each call."""

from __future__ import annotations

from pathlib import Path

from losslab import io as lio


def report_labels(verdict_file: str | Path, figure: str) -> dict[str, str]:
    """The labels of one of a claim's figures in the HTML report: ``claim`` (its id), ``figure`` (which of its
    figures: ``figure``) and ``verdict``, from the claim's ``verdict.json``."""
    res = lio.read_json(verdict_file)
    try:
        return {"claim": res["id"], "figure": figure, "verdict": res["verdict"]}
    except (KeyError, TypeError) as e:
        raise lio.CorruptFileError(f"{verdict_file}: not a claim's verdict file (no {e})") from e
