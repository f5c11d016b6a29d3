"""One entry for every claim job: the claim id, looked up in its family module's ``CLAIMS = {id: fn(job)}``,
names the function that reads the job's inputs and decides the verdict (``workflow/scripts/claim.py``)."""

from __future__ import annotations

from typing import Callable

from losslab.claims import ingredients, patterns, surfaces
from losslab.claims.claim_job import ClaimJob
from losslab.claims.connectivity import analysis as connectivity
from losslab.claims.lecture import toys, trained
from losslab.claims.sharpness import keskar, spectra
from losslab.claims.verdicts import ClaimResult
from losslab.plots import figures
from losslab.plots.decisions import plot_decision

FAMILY_MODULES = (ingredients, surfaces, keskar, spectra, connectivity, patterns, trained, toys)
CLAIMS: dict[str, Callable[[ClaimJob], ClaimResult]] = {
    claim_id: fn for module in FAMILY_MODULES for claim_id, fn in module.CLAIMS.items()}


def run_claim(job: ClaimJob) -> ClaimResult:
    """The verdict (with its table and figures written beside it) of the claim ``job.claim``; a claim decided by its
    pre-registration also gets the figure of its decision (``decision.png``/``.pdf``,
    :func:`losslab.plots.decisions.plot_decision`). Every figure of the claim carries its verdict's badge: the
    claim function's figures are drawn once, after it has decided (:func:`losslab.plots.figures.deferred`)."""
    if job.id not in CLAIMS:
        raise ValueError(f"claim {job.id!r} has no claim function; known: {sorted(CLAIMS)}")
    with figures.deferred() as pending:
        result = CLAIMS[job.id](job)
    figures.draw_deferred(pending, result.verdict)
    if result.decisions:
        data = {"claim": job.id, "verdict": result.verdict, "reason": result.notes, "parts": result.decisions}
        result.figures += figures.render(plot_decision, data, job.out_dir / "decision", verdict=result.verdict)
    return result
