"""The figure of a claim's pre-registered decision: one row per part, its estimate with the one-sided bounds
(:mod:`losslab.claims.inference`) against the margin the claim must exceed and the smallest effect of interest,
coloured by the part's verdict (:data:`losslab.plots.figures.VERDICT_COLORS`), the claim's verdict in the title.
Drawn from the decision records of its
``verdict.json`` (:meth:`losslab.claims.verdicts.Decision.as_record`)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from losslab.plots import figures

def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@figures.register_plot("claims.decision")
def plot_decision(data: Mapping[str, Any], stem: str) -> list[str]:
    """``data``: ``claim``, ``verdict``, ``reason`` and ``parts`` (decision records: name, verdict, estimate,
    lower, upper, n, unit, margin, tolerance and the pre-registration's sesoi). Each part gets its own row and x
    axis in its own unit, since parts differ in units."""
    parts = list(data["parts"])
    fig, axes = figures.new_figure(1, len(parts), width=6.4, height=1.0 * len(parts) + 1.2, squeeze=False)
    for ax, part in zip(axes[:, 0], parts):
        colour = figures.VERDICT_COLORS.get(part["verdict"], figures.COLORS[7])
        est, lo, hi = part.get("estimate"), part.get("lower"), part.get("upper")
        margin = part.get("margin")
        sesoi = (part.get("prereg") or {}).get("sesoi")
        tol = part.get("tolerance")
        xs = [v for v in (est, lo, hi, margin, sesoi) if _finite(v)]
        if _finite(tol) and _finite(margin):
            ax.axvspan(margin - tol, margin + tol, color=figures.COLORS[7], alpha=0.2, lw=0,
                       label="stated tolerance")
            xs += [margin - tol, margin + tol]
        if _finite(margin):
            ax.axvline(margin, color="black", lw=1.0, label="margin (claim: effect > margin)")
        if _finite(sesoi) and sesoi != margin:
            ax.axvline(sesoi, color="black", lw=1.0, ls="--", label="smallest effect of interest")
        if _finite(lo) and _finite(hi) and part.get("n", 0) > 1:
            ax.plot([lo, hi], [0, 0], color=colour, lw=3, solid_capstyle="butt")
        if _finite(est):
            ax.plot([est], [0], "o", color=colour, ms=6)
        else:
            ax.text(0.5, 0.5, "not measured (NaN)", transform=ax.transAxes, ha="center", va="center")
        if xs:
            span = (max(xs) - min(xs)) or abs(max(xs)) or 1.0
            ax.set_xlim(min(xs) - 0.15 * span, max(xs) + 0.15 * span)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.grid(axis="y", visible=False)
        n = part.get("n", 0)
        ax.set_title(f"{part['name']}: {part['verdict']} (n = {n})", loc="left", fontsize=8, color=colour)
        ax.set_xlabel(part.get("unit", ""), fontsize=8, labelpad=1)
    handles: dict[str, Any] = {}
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=3, fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"{data['claim']}: {data['verdict']}\n95% one-sided bounds of each pre-registered effect",
                 fontsize=9, color=figures.VERDICT_COLORS.get(data["verdict"], "black"))
    fig.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    return figures.save(fig, stem)
