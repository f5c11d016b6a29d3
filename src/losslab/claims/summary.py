"""The verdict report ``claims.md`` / ``claims.csv`` (one row per claim: the reported number beside the measured
one, the verdict, the figure), its index of every figure, and the landing page of Snakemake's HTML report
(``landing.rst``: the verdict table, :func:`landing_page`); :func:`regenerate` redraws every figure, table and the
report from stored results (`snakemake figures`)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from losslab import io as lio
from losslab.claims import ingredients, patterns, runs, surfaces
from losslab.claims.connectivity import analysis as connectivity
from losslab.claims.lecture import toys, trained
from losslab.claims.sharpness import keskar, spectra
from losslab.claims.verdicts import VERDICTS, load_result, undecided_note
from losslab.claims.tables import markdown_table, rerender_table
from losslab.pipeline.config import scale_seeds
from losslab.plots import figures
from losslab.plots import decisions as decision_plots
from losslab.plots import patterns as pattern_plots
from losslab.plots.landscape import plot_surface_file, plot_trajectory_file

# The modules that define the plot functions :func:`regenerate` redraws; importing them registers each function
# under its stored name (:func:`losslab.plots.figures.register_plot`)
PLOT_MODULES = (ingredients, surfaces, keskar, spectra, connectivity, patterns, trained, toys, pattern_plots,
                decision_plots)

REPORT_COLUMNS = ("claim", "family", "source", "statement", "reported", "measured", "verdict", "decision", "regime",
                  "figure")
DECISION_COLUMNS = ("part", "effect", "estimate", "one-sided 95% bounds", "margin", "smallest effect of interest", "n",
                    "power at sesoi", "seeds for 80%", "verdict")


def _g(x: Any) -> str:
    return "" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))


def decision_line(res: Mapping[str, Any]) -> str:
    """The claim's pre-registered decision in one line: every part's estimate, bounds, n and power, then the reason
    (empty for a result decided by the earlier rule)."""
    parts = []
    for d in res.get("decisions", []):
        unit = f" {d['unit']}" if d.get("unit") else ""
        bounds = f" [{_g(d.get('lower'))}, {_g(d.get('upper'))}]" if (d.get("n") or 0) > 1 else ""
        power = f", power {_g(d['power'])}" if d.get("power") is not None else ""
        parts.append(f"{d['name']} {_g(d.get('estimate'))}{bounds}{unit} (n {d.get('n')}{power}): {d['verdict']}")
    return "; ".join(parts)


def decision_rows(res: Mapping[str, Any], claim: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per decided part (:data:`DECISION_COLUMNS`), the pre-registration's words beside the numbers."""
    effects = {p["name"]: p for p in claim.get("decision", {}).get("parts", [])}
    rows = []
    for d in res.get("decisions", []):
        pre = d.get("prereg") or {}
        spec = effects.get(d["name"].split(" ")[0], {})
        sesoi = pre.get("sesoi") if d.get("tolerance") is None else f"tolerance {_g(d['tolerance'])}"
        rows.append({"part": d["name"], "effect": spec.get("effect", ""), "estimate": f"{_g(d.get('estimate'))} "
                     f"{d.get('unit', '')}".strip(),
                     "one-sided 95% bounds": f"[{_g(d.get('lower'))}, {_g(d.get('upper'))}]" if (d.get("n") or 0) > 1
                     else "", "margin": _g(d.get("margin")), "smallest effect of interest": _g(sesoi),
                     "n": d.get("n"), "power at sesoi": _g(d.get("power")), "seeds for 80%": _g(d.get("seeds_needed")),
                     "verdict": d["verdict"]})
    return rows


def _link(res: Mapping[str, Any], path: str, out_dir: Path, results_dir: Path | None) -> str:
    """``path`` (as a verdict.json lists it, relative to the workflow's working directory or absolute)
    relative to ``out_dir``. A claim's outputs sit in ``<results>/claims/<id>/``; the link is made from that,
    so it holds wherever the results directory was moved."""
    base = (results_dir if results_dir is not None else out_dir.parent) / "claims" / res["id"]
    return os.path.relpath(base / Path(path).name, out_dir)


def measured_cell(res: Mapping[str, Any]) -> str:
    """A result's ``measured`` text as the report's table shows it: with its number of seeds."""
    n = res.get("n_seeds")
    return f"{res['measured']} (n = {n} seed{'s' if n != 1 else ''})" if n not in (None, "") else res["measured"]


def report_rows(registry: Sequence[Mapping[str, Any]], results: Mapping[str, Mapping[str, Any]],
                out_dir: str | Path, results_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per registry claim (:data:`REPORT_COLUMNS`, plus ``rule``, ``figures``, ``tables``, ``decisions``
    (:func:`decision_rows`) and ``parts``, the result's decision records): the verdict of its result, or ``pending``
    and why in ``measured``."""
    out_dir = Path(out_dir)
    rdir = Path(results_dir) if results_dir is not None else None
    rows = []
    for claim in registry:
        res = results.get(claim["id"])
        row = {"claim": claim["id"], "family": claim["family"], "source": claim["source"],
               "statement": claim["statement"], "reported": claim["reported"]}
        if res is None:
            why = claim.get("pending") or "not run at this scale (its experiment is not in this scale's config)"
            row.update(measured=f"pending: {why}", verdict="pending", figure="", rule="", figures=[], tables=[],
                       decision="", regime="", reason="", decisions=[], parts=[])
        else:
            figs = [_link(res, f, out_dir, rdir) for f in res.get("figures", [])]
            tables = [_link(res, t, out_dir, rdir) for t in res.get("tables", [])]
            pngs = [f for f in figs if f.endswith(".png")]
            row.update(measured=measured_cell(res), verdict=res["verdict"], figure=(pngs or figs or [""])[0],
                       rule=res.get("rule", ""), figures=figs, tables=tables, decision=decision_line(res),
                       regime=res.get("regime", ""), reason=res.get("notes", "") if res.get("decisions") else "",
                       decisions=decision_rows(res, claim), parts=res.get("decisions", []))
        row["context"], row["notes"] = claim.get("context", []), claim.get("notes", "")
        rows.append(row)
    return rows


POWER_COLUMNS = ("claim", "part", "replicate", "sd per replicate", "smallest effect of interest", "seeds for 80% power")


def power_rows(registry: Sequence[Mapping[str, Any]], results: Mapping[str, Mapping[str, Any]],
               seeds_by_scale: Mapping[str, Mapping[str, int]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per decided part of a pre-registered claim: the spread this run measured per replicate, the seeds 80%
    power at the smallest effect of interest needs with it, and the seeds each scale gives the claim's experiment
    (``seeds_by_scale``: :func:`losslab.pipeline.config.scale_seeds`), marked "underpowered" where fewer. Parts
    replicated over something else than seeds show their count at this run only. Returns the rows and the scale
    columns."""
    scales = list(seeds_by_scale)
    rows = []
    for claim in registry:
        res = results.get(claim["id"])
        for d in (res or {}).get("decisions", []):
            pre = d.get("prereg") or {}
            if d.get("tolerance") is not None or pre.get("sesoi") == d.get("margin"):
                continue  # a tolerance part or an "at least" part: no effect size to be powered for
            needed = d.get("seeds_needed")
            row = {"claim": claim["id"], "part": d["name"], "replicate": pre.get("replicate", "seed"),
                   "sd per replicate": _g(d.get("sd")), "smallest effect of interest": _g(pre.get("sesoi")),
                   "seeds for 80% power": "out of reach" if needed is None else needed}
            for sc in scales:
                n = seeds_by_scale[sc].get(claim.get("experiment", ""), None) if row["replicate"] == "seed" else None
                row[sc] = "" if n is None else (f"{n} (underpowered)" if needed is None or n < needed else str(n))
            rows.append(row)
    return rows, scales


def platform_line(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence on where the verdicts' numbers were made (their ``platform``; losslab.pipeline.cpu_kernels)."""
    platforms = {repr(sorted(r["platform"].items())): r["platform"] for r in results.values() if r.get("platform")}
    if len(platforms) != 1:
        return ("Platform: " + ("not recorded." if not platforms else
                                f"{len(platforms)} different platforms among the verdicts (a run resumed elsewhere)."))
    p = next(iter(platforms.values()))
    kernels = (f"CPU kernels pinned to {p['level']}" if p["cpu_kernels"] == "pinned" else
               f"native CPU kernels (ATen {p['aten_capability']} on a {p['cpu_isa']} CPU)")
    return (f"Platform: torch {p['torch']}, {kernels}, {p['threads']} thread(s) per claim job, "
            f"{p['os']}/{p['arch']} (`python -m losslab.pipeline.regression` compares bitwise on a matching platform).")


def build_report(registry: Sequence[Mapping[str, Any]], results: Mapping[str, Mapping[str, Any]],
                 out_dir: str | Path, scale: str, results_dir: str | Path | None = None,
                 seeds_by_scale: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, int]:
    """Write ``claims.md``, ``claims.csv``, ``index.md`` and ``power.md`` into ``out_dir`` (by default
    ``<results_dir>/report``): one row per registry claim, with the verdict of its result file or the reason
    it is pending, and the figures grouped by claim family; the power of each decided part at every scale of
    ``seeds_by_scale`` (:func:`power_rows`). Returns the count of each verdict."""
    out_dir = Path(out_dir)
    rows = report_rows(registry, results, out_dir, results_dir)
    counts = {v: 0 for v in (*VERDICTS, "pending")}
    for r in rows:
        counts[r["verdict"]] += 1
    lio.write_csv(out_dir / "claims.csv", [{c: r[c] for c in REPORT_COLUMNS} for r in rows], REPORT_COLUMNS)

    summary = ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
    md = [f"# losslab claims at scale `{scale}`", "", f"{len(rows)} claims; {summary}. Figures by claim family: "
          "[index.md](index.md); the power of each test at every scale: [power.md](power.md).", "",
          platform_line(results), ""]
    notes = {c["id"]: undecided_note(c, results.get(c["id"]), seeds_by_scale or {}) for c in registry}
    md.append(markdown_table(
        [{**r, "figure": f"[figure]({r['figure']})" if r["figure"] else "",
          "verdict": r["verdict"] + (f" ({notes[r['claim']]})" if notes.get(r["claim"]) else "")} for r in rows],
        ("claim", "family", "source", "reported", "measured", "verdict", "figure")))
    md += ["", "## Decisions", "", "Each claim's test was pre-registered in `config/claims.yaml` before its run: "
           "reproduced when the one-sided 95% lower bound of the effect exceeds the margin, not reproduced when the "
           "upper bound is below the smallest effect of interest, inconclusive otherwise "
           "(losslab.claims.verdicts.decide_claim).", ""]
    for r in rows:
        md += [f"### {r['claim']}: {r['verdict']}", "", r["statement"], ""]
        if notes.get(r["claim"]):
            md += [f"Not decided at this scale: {notes[r['claim']].removeprefix('undecided: ')}.", ""]
        if r["decisions"]:
            md += [f"Why: {r['reason']}", "", markdown_table(r["decisions"], DECISION_COLUMNS), ""]
            pngs = [f for f in r["figures"] if f.endswith("decision.png")]
            md += [f"![{r['claim']}: decision]({pngs[0]})", ""] if pngs else []
        elif r["verdict"] != "pending":
            md += [f"Decided by the earlier rule (not yet by its pre-registration): {r['rule']}", ""]
        else:
            md += [r["measured"], ""]
        if r["regime"]:
            md += [f"Regime: {r['regime']}", ""]
        if r["context"]:
            md += ["Context:"] + [f"- {c['ref']}: {c['implies']}" for c in r["context"]] + [""]
        if r["notes"]:
            md += [f"Notes: {r['notes']}", ""]
    lio.write_text(out_dir / "claims.md", "\n".join(md) + "\n")
    prows, scales = power_rows(registry, results, seeds_by_scale or {})
    power = [f"# Power of the pre-registered tests (measured at scale `{scale}`)", "",
             "For every decided part: the spread of the effect over its replicates in this run, the replicates 80% "
             "power at the smallest effect of interest needs with that spread (one-sided t, alpha 0.05), and the "
             "seeds each scale gives the claim's experiment (\"underpowered\" where fewer).", "",
             markdown_table(prows, (*POWER_COLUMNS, *scales)) if prows else "No claim was decided by its "
             "pre-registration in this run."]
    lio.write_text(out_dir / "power.md", "\n".join(power) + "\n")
    write_index(rows, out_dir, scale, results_dir)
    claims_dir = (Path(results_dir) if results_dir is not None else out_dir.parent) / "claims"
    lio.write_text(out_dir / LANDING, landing_page(rows, scale, claims_dir, notes, counts))
    return counts


# --- the landing page of Snakemake's HTML report (`snakemake --report report.html`) -----------------------------
# Snakemake 9 shows the workflow's description (the Snakefile's `report:` file, reStructuredText) first: beside the
# rule graph, or above the `--report-metadata` entries when there are any (snakemake/report/html_reporter/template/
# components/content.js, metadata.js). workflow/rules/report.smk names this page there once the report rule has
# written it. The page is the verdict table as raw HTML (so that no claim text is read as reStructuredText markup,
# or as Jinja2, which Snakemake renders the description with first: braces are written as character references),
# with a style sheet that lays the description above the rule graph at full width. Its links open a figure the way
# the report's own result buttons do: `app.setView` with the figure's entry of the report's `results`, keyed by the
# path of the rule's output (`<results>/<scale>/claims/<id>/figure.png`, the path the report's items are declared
# with in workflow/rules/common.smk).

LANDING = "landing.rst"
# the report items of a claim (workflow/rules/common.smk claim_outputs) and their link texts
REPORT_FIGURES = (("figure.png", "figure"), ("decision.png", "decision"))
LANDING_STYLE = """\
/* losslab: the verdict table is the landing page (workflow/rules/report.smk): the description at full width and
   top-aligned, the rule graph below it */
div.justify-center.h-screen:has(.losslab-verdicts) { align-items: flex-start; justify-content: flex-start; }
div.items-start:has(> div.py-2 .losslab-verdicts) { flex-direction: column; }
div.prose:has(.losslab-verdicts) { max-width: 80rem; }
table.losslab-verdicts { font-size: 0.8rem; margin-top: 0.5rem; }
table.losslab-verdicts th, table.losslab-verdicts td { padding: 0.2rem 0.5rem; vertical-align: top; }
table.losslab-verdicts td.claim { white-space: nowrap; font-weight: 600; }
table.losslab-verdicts td.verdict { max-width: 16rem; }
table.losslab-verdicts .note { color: #555; font-size: 0.72rem; }
table.losslab-verdicts a { cursor: pointer; margin-right: 0.6rem; }
.losslab-verdict { display: inline-block; padding: 0.05rem 0.45rem; border-radius: 0.3rem; color: white;
                   font-weight: 700; white-space: nowrap; }"""


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgb)


def _h(text: Any) -> str:
    """``text`` as HTML text or attribute value: escaped, and its braces as character references (Snakemake renders
    the page with Jinja2 before docutils reads it)."""
    return html.escape(str(text), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def verdict_badge_html(verdict: str) -> str:
    """A verdict as the landing page shows it: white on its colour (:data:`losslab.plots.figures.VERDICT_COLORS`,
    the colours of the figures' badges)."""
    slug = verdict.replace(" ", "-")
    return (f'<span class="losslab-verdict verdict-{slug}" style="background:{_hex(figures.VERDICT_COLORS[verdict])}">'
            f"{_h(verdict)}</span>")


def estimate_lines(row: Mapping[str, Any]) -> list[str]:
    """A report row's estimates as the landing page shows them, one line per pre-registered part (its decision
    record): the estimate, its one-sided 95% bounds when it is over two or more replicates, its unit and n; a claim
    decided by the earlier rule gives its measured text, a pending claim why it is pending."""
    if not row["parts"]:
        return [str(row["measured"])]
    lines = []
    for d in row["parts"]:
        bounds = f" [{_g(d.get('lower'))}, {_g(d.get('upper'))}]" if (d.get("n") or 0) > 1 else ""
        unit = f" {d['unit']}" if d.get("unit") else ""
        lines.append(f"{d['name']}: {_g(d.get('estimate'))}{bounds}{unit} (n = {d.get('n')})")
    return lines


def report_item_path(claims_dir: str | Path, claim_id: str, name: str) -> str:
    """The path of a claim's report item as Snakemake's report keys it: the rule's output path,
    ``<claims_dir>/<id>/<name>`` (claims_dir as the workflow names it, ``<results>/<scale>/claims``)."""
    return Path(claims_dir, claim_id, name).as_posix()


def _figure_link(path: str, text: str) -> str:
    p = json.dumps(path)
    js = (f"javascript:app.setView({{navbarMode: 'resultinfo', resultPath: {p}, content: 'img', "
          f"contentPath: results[{p}].data_uri}})")
    return f'<a href="{_h(js)}">{_h(text)}</a>'


def landing_page(rows: Sequence[Mapping[str, Any]], scale: str, claims_dir: str | Path,
                 notes: Mapping[str, str], counts: Mapping[str, int]) -> str:
    """The landing page of Snakemake's HTML report (reStructuredText, with the table as raw HTML): per claim of the
    report rows (:func:`report_rows`) its verdict (coloured as the figures' badges), why it is undecided
    (``notes``, :func:`losslab.claims.verdicts.undecided_note`), its estimates with their bounds
    (:func:`estimate_lines`) and links that open its figure and decision in the report (``claims_dir``: the
    claims folder as the workflow names it, :func:`report_item_path`)."""
    title = f"losslab verdicts at scale {scale}"
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items() if v)
    body = [f'<div class="losslab-landing"><p>{len(rows)} claims; {_h(summary)}. Estimates: the pre-registered '
            "effect of each part, with its one-sided 95% bounds and number of replicates "
            "(losslab.claims.verdicts.decide_claim). A claim's figures: its links here, or under its family in "
            f"the menu. Every column, with the reported numbers: {_h(Path(claims_dir).parent.as_posix())}"
            "/report/claims.md.</p>",
            '<table class="losslab-verdicts">',
            "<thead><tr><th>claim</th><th>family</th><th>verdict</th><th>estimate [one-sided 95% bounds]</th>"
            "<th>figures</th></tr></thead>", "<tbody>"]
    for r in rows:
        note = notes.get(r["claim"], "")
        verdict = verdict_badge_html(r["verdict"]) + (f'<div class="note">{_h(note)}</div>' if note else "")
        estimates = "".join(f"<div>{_h(line)}</div>" for line in estimate_lines(r))
        names = {Path(f).name for f in r["figures"]}
        links = "".join(_figure_link(report_item_path(claims_dir, r["claim"], name), text)
                        for name, text in REPORT_FIGURES if name in names)
        body.append(f'<tr id="verdict-{_h(r["claim"])}"><td class="claim" title="{_h(r["statement"])}">'
                    f'{_h(r["claim"])}</td><td>{_h(r["family"])}</td><td class="verdict">{verdict}</td>'
                    f"<td>{estimates}</td><td>{links}</td></tr>")
    body += ["</tbody>", "</table>", "</div>"]
    lines = [title, "=" * len(title), "", ".. raw:: html", "", "   <style>"]
    lines += ["   " + line for line in LANDING_STYLE.splitlines()]
    lines += ["   </style>"] + ["   " + line for line in body]
    return "\n".join(lines) + "\n"


def _other_figures(results_dir: Path, out_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """PNG figures outside the claim directories (surfaces, trajectories, ratio maps, curve planes), by the
    results subdirectory they are in: (name within it, link relative to ``out_dir``)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for png in sorted(results_dir.rglob("*.png")):
        rel = png.relative_to(results_dir)
        if rel.parts[0] in ("claims", "report"):
            continue
        groups.setdefault(rel.parts[0], []).append((Path(*rel.parts[1:]).as_posix(), os.path.relpath(png, out_dir)))
    return groups


def write_index(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, scale: str,
                results_dir: str | Path | None = None) -> str:
    """``index.md``: a section per claim family, per claim its verdict, measured figure, embedded figures
    and linked tables; then the figures that belong to no single claim (surfaces, curve planes, ...)."""
    out_dir = Path(out_dir)
    families: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    md = [f"# losslab figures at scale `{scale}`, by claim family", "",
          "Verdicts and columns: [claims.md](claims.md), [claims.csv](claims.csv). Every figure here is redrawn "
          "from stored results by `snakemake figures`.", ""]
    md += [f"- [{fam}](#{fam}): " + ", ".join(f"{r['claim']} ({r['verdict']})" for r in fam_rows)
           for fam, fam_rows in families.items()]
    for fam, fam_rows in families.items():
        md += ["", f"## {fam}", ""]
        for r in fam_rows:
            md += [f"### {r['claim']}: {r['verdict']}", "", f"{r['statement']}", "",
                   f"- source: {r['source']}", f"- reported: {r['reported']}", f"- measured: {r['measured']}"]
            tables = [t for t in r.get("tables", []) if t.endswith(".md")] or r.get("tables", [])
            if tables:
                md.append("- tables: " + ", ".join(f"[{Path(t).name}]({t})" for t in tables))
            pdfs = [f for f in r.get("figures", []) if f.endswith(".pdf")]
            if pdfs:
                md.append("- PDF: " + ", ".join(f"[{Path(f).name}]({f})" for f in pdfs))
            md.append("")
            md += [f"![{r['claim']}: {Path(f).stem}]({f})" + "\n" for f in r.get("figures", [])
                   if f.endswith(".png")]
    base = Path(results_dir) if results_dir is not None else out_dir.parent
    other = _other_figures(base, out_dir) if base.is_dir() else {}
    if other:
        md += ["", "## Other figures", "",
               "Surfaces, trajectories, eigenvalue-ratio maps and curve planes that belong to no single claim.", ""]
        for group, pngs in other.items():
            md += [f"### {group}", ""] + [f"- [{name}]({link})" for name, link in pngs] + [""]
    text = "\n".join(md).rstrip() + "\n"
    lio.write_text(out_dir / "index.md", text)
    return text


def regenerate(results_dir: str | Path, registry: Sequence[Mapping[str, Any]], scale: str,
               log: Any = None) -> dict[str, list[str]]:
    """Re-render every figure, table and the report of a finished run from stored results alone, without
    training or evaluating anything (`snakemake figures`): (1) every figure with stored data
    (``*.data.json``, :func:`losslab.plots.figures.rerender`), a claim's with its verdict's badge; (2) the
    surface and trajectory figures from their HDF5 files, where the workflow drew them; (3) each claim's
    ``table.md`` from its ``table.csv``; (4) the report (``claims.md``, ``claims.csv``, ``index.md``,
    ``power.md``, ``landing.rst``) from the claims' ``verdict.json``. Returns the files written by kind."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no results directory to regenerate")
    results = {}
    for v in sorted((results_dir / "claims").glob("*/verdict.json")):
        res = load_result(v)
        results[res["id"]] = res
    # each claim's figures with its verdict's badge (figure data stored before the badges has no verdict of its own)
    verdicts = {results_dir / "claims" / claim_id: res["verdict"] for claim_id, res in results.items()}
    done: dict[str, list[str]] = {"data": figures.rerender_all(results_dir, verdicts), "surfaces": [],
                                  "tables": []}
    for experiment, variant, seed, h5 in runs.surface_files(results_dir):
        title = runs.seed_title(experiment, variant, seed)
        figs = h5.parent / "figures"
        if h5.stem in ("surface", "pca_surface") and (figs / h5.stem / "contour.png").exists():
            done["surfaces"] += map(str, plot_surface_file(h5, figs / h5.stem, title=title))
        if h5.stem == "pca_surface" and (figs / "trajectory.png").exists():
            done["surfaces"] += map(str, plot_trajectory_file(h5, figs / "trajectory", title=title))
    for csv_path in sorted((results_dir / "claims").glob("**/*.csv")):
        if csv_path.with_suffix(".md").exists():  # a table of write_table
            done["tables"] += rerender_table(csv_path)
    out = results_dir / "report"
    build_report(registry, results, out, scale, results_dir=results_dir, seeds_by_scale=scale_seeds())
    done["report"] = [str(out / n) for n in ("claims.md", "claims.csv", "index.md", "power.md", LANDING)]
    if log is not None:
        for k, v in done.items():
            log.info("regenerated %d %s files", len(v), k)
    return done
