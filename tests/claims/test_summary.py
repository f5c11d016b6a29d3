"""The verdict report (claims.md / claims.csv / index.md) and `snakemake figures` (summary.regenerate): every
figure, table and the report again from stored results, with nothing trained or evaluated."""

from __future__ import annotations

import csv
import math
import json
from pathlib import Path

import numpy as np
import pytest

from losslab.plots import figures
from losslab.claims import ingredients, summary, tables
from losslab.claims.verdicts import ClaimResult

REGISTRY = [
    {"id": "claim-a", "family": "ingredients", "source": "paper A", "statement": "A holds.", "reported": "93.1%"},
    {"id": "claim-b", "family": "sharpness", "source": "paper B", "statement": "B holds.", "reported": "x2"},
    {"id": "claim-c", "family": "sharpness", "source": "paper C", "statement": "C holds.", "reported": "-",
     "pending": "needs ImageNet"},
]


def _claim_outputs(results: Path, claim_id: str, verdict: str, rng: np.random.Generator) -> dict:
    """A claim directory as a claim rule leaves it: figure (+ its data, with the verdict's badge), table,
    verdict.json."""
    out = results / "claims" / claim_id
    data = {"scale": "test", "n_seeds": 3, "acc": {v: rng.uniform(0.5, 0.9, 3) for v in ingredients.ABLATION_VARIANTS}}
    figs = figures.render(ingredients.plot_ablation, data, out / "figure", verdict=verdict)
    tabs = tables.write_table([{"variant": "full", "test_acc_%": "90.00 ± 1.00"}], out / "table", title="a table")
    res = ClaimResult(id=claim_id, scale="test", verdict=verdict, rule="a rule", measured="90.0 ± 1.0%",
                      n_seeds=3, figures=figs, tables=tabs)
    res.write(out / "verdict.json")
    return json.loads((out / "verdict.json").read_text())


@pytest.fixture
def results(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "results" / "test"
    stored = {"claim-a": _claim_outputs(root, "claim-a", "reproduced", rng),
              "claim-b": _claim_outputs(root, "claim-b", "not reproduced", rng)}
    return root, stored


def test_report_columns_pending_reasons_and_relative_links(results):
    root, stored = results
    counts = summary.build_report(REGISTRY, stored, root / "report", "test", results_dir=root)
    assert counts == {"reproduced": 1, "not reproduced": 1, "inconclusive": 0, "pending": 1}
    with open(root / "report" / "claims.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["claim", "family", "source", "statement", "reported", "measured", "verdict",
                                 "decision", "regime", "figure"]
    by_id = {r["claim"]: r for r in rows}
    assert by_id["claim-a"]["measured"] == "90.0 ± 1.0% (n = 3 seeds)"
    assert by_id["claim-b"]["verdict"] == "not reproduced"
    assert by_id["claim-c"]["verdict"] == "pending" and "needs ImageNet" in by_id["claim-c"]["measured"]
    for cid in ("claim-a", "claim-b"):  # the link resolves from the report directory
        assert by_id[cid]["figure"] == f"../claims/{cid}/figure.png"
        assert (root / "report" / by_id[cid]["figure"]).is_file()
    assert by_id["claim-c"]["figure"] == ""
    md = (root / "report" / "claims.md").read_text()
    assert "[figure](../claims/claim-a/figure.png)" in md and "needs ImageNet" in md


def test_index_groups_figures_by_family(results):
    root, stored = results
    summary.build_report(REGISTRY, stored, root / "report", "test", results_dir=root)
    index = (root / "report" / "index.md").read_text()
    sections = [line for line in index.splitlines() if line.startswith("## ")]
    assert sections == ["## ingredients", "## sharpness"]
    ingredients_part, sharpness_part = index.split("## sharpness")
    assert "### claim-a: reproduced" in ingredients_part.split("## ingredients")[1]
    assert "![claim-a: figure](../claims/claim-a/figure.png)" in ingredients_part
    assert "[table.md](../claims/claim-a/table.md)" in ingredients_part
    assert "### claim-b: not reproduced" in sharpness_part and "### claim-c: pending" in sharpness_part
    assert "claim-a" not in sharpness_part


def test_links_hold_when_results_moved(results, tmp_path):
    """verdict.json lists paths as the workflow saw them; the report links from the claim directory."""
    root, stored = results
    moved = {k: {**v, "figures": [f"elsewhere/claims/{k}/figure.png"]} for k, v in stored.items()}
    summary.build_report(REGISTRY, moved, root / "report", "test", results_dir=root)
    assert "../claims/claim-a/figure.png" in (root / "report" / "claims.csv").read_text()


def test_the_html_reports_landing_page_is_the_verdict_table(results):
    """landing.rst (the description Snakemake's report opens on, workflow/rules/report.smk): one row per claim
    with its verdict coloured as the figures' badges, its estimates with their one-sided bounds (or its measured
    text, or why it is pending) and links that open its figure and decision by their report paths; valid
    reStructuredText without any docutils message, and left as it is by the Jinja2 rendering Snakemake gives it
    (braces of claim texts as character references)."""
    import docutils.core
    import io as _io
    import jinja2

    from losslab.claims.verdicts import Measured, decide_claim

    root, stored = results
    block = {"parts": [{"name": "gap", "effect": "e", "unit": "ln", "margin": 0, "sesoi": 0.1}]}
    cd = decide_claim(block, {"gap": Measured(samples=[0.2, 0.3, 0.25])})
    decision_png = str(root / "claims" / "claim-b" / "decision.png")
    stored["claim-b"] = {**stored["claim-b"], "verdict": cd.verdict, "decisions": cd.records(),
                         "figures": stored["claim-b"]["figures"] + [decision_png]}
    registry = [*REGISTRY[:1], {**REGISTRY[1], "statement": "B holds {{ always }} <here>."}, REGISTRY[2]]
    summary.build_report(registry, stored, root / "report", "test", results_dir=root)
    text = (root / "report" / "landing.rst").read_text()
    assert text.startswith("losslab verdicts at scale test\n==============================\n\n.. raw:: html\n")
    assert "<p>3 claims; reproduced: 2, pending: 1." in text

    def row(claim):
        return text[text.index(f'<tr id="verdict-{claim}">'):].split("</tr>")[0]

    def link(claim, name):
        p = json.dumps(str(root / "claims" / claim / name)).replace('"', "&quot;")
        return (f"javascript:app.setView(&#123;navbarMode: &#x27;resultinfo&#x27;, resultPath: {p}, content: "
                f"&#x27;img&#x27;, contentPath: results[{p}].data_uri&#125;)")

    assert summary.verdict_badge_html("reproduced") == ('<span class="losslab-verdict verdict-reproduced" '
                                                        'style="background:#2ca02c">reproduced</span>')
    assert summary.verdict_badge_html("not reproduced").startswith(
        '<span class="losslab-verdict verdict-not-reproduced" style="background:#d62728">')
    assert row("claim-a") == (
        '<tr id="verdict-claim-a"><td class="claim" title="A holds.">claim-a</td><td>ingredients</td>'
        f'<td class="verdict">{summary.verdict_badge_html("reproduced")}</td>'
        "<td><div>90.0 ± 1.0% (n = 3 seeds)</div></td>"
        f'<td><a href="{link("claim-a", "figure.png")}">figure</a></td>')
    assert row("claim-b") == (
        '<tr id="verdict-claim-b"><td class="claim" title="B holds &#123;&#123; always &#125;&#125; &lt;here&gt;.">'
        f'claim-b</td><td>sharpness</td><td class="verdict">{summary.verdict_badge_html("reproduced")}</td>'
        "<td><div>gap: 0.25 [0.166, 0.334] ln (n = 3)</div></td>"
        f'<td><a href="{link("claim-b", "figure.png")}">figure</a><a href="{link("claim-b", "decision.png")}">'
        "decision</a></td>")
    assert row("claim-c") == (
        '<tr id="verdict-claim-c"><td class="claim" title="C holds.">claim-c</td><td>sharpness</td>'
        f'<td class="verdict">{summary.verdict_badge_html("pending")}</td>'
        "<td><div>pending: needs ImageNet</div></td><td></td>")
    err = _io.StringIO()
    parts = docutils.core.publish_parts(text, writer_name="html",
                                        settings_overrides={"warning_stream": err, "report_level": 1})
    assert err.getvalue() == "" and row("claim-b") in parts["html_body"]
    # Snakemake's Jinja2 environment (snakemake/report/__init__.py auto_report) drops the final newline only
    assert jinja2.Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render() == text[:-1]


def test_a_claim_figures_report_labels_carry_its_verdict(tmp_path):
    from losslab.io import CorruptFileError
    from losslab.pipeline.report_items import report_labels

    verdict = tmp_path / "claim-b" / "verdict.json"
    ClaimResult(id="claim-b", scale="test", verdict="not reproduced", rule="a rule", measured="1", n_seeds=2
                ).write(verdict)
    assert report_labels(verdict, "decision") == {"claim": "claim-b", "figure": "decision",
                                                  "verdict": "not reproduced"}
    bad = tmp_path / "verdict.json"
    bad.write_text('{"id": "claim-b"}')
    with pytest.raises(CorruptFileError, match=f"{bad}: not a claim's verdict file \\(no 'verdict'\\)"):
        report_labels(bad, "figure")


def test_regenerate_redraws_everything_without_training_or_evaluating(results, monkeypatch):
    root, _ = results
    import torch

    from losslab.core import weights as params

    def forbidden(*args, **kwargs):
        raise AssertionError("regenerate must not build or evaluate a model")

    monkeypatch.setattr(params.PointEvaluator, "__init__", forbidden)
    monkeypatch.setattr(torch.nn.Module, "__init__", forbidden)
    assert not (root / "checkpoints").exists() and not (root / "runs").exists()
    png = root / "claims" / "claim-a" / "figure.png"
    first = png.read_bytes()
    png.unlink()
    (root / "claims" / "claim-b" / "table.md").write_text("### a table\n\nstale rows")  # the title is kept
    done = summary.regenerate(root, REGISTRY, "test")
    assert png.read_bytes() == first  # the same figure, from its stored data alone
    assert str(png) in done["data"] and len(done["data"]) == 4
    assert (root / "claims" / "claim-b" / "table.md").read_text().startswith("### a table\n\n| variant |")
    assert {Path(p).name for p in done["report"]} == {"claims.md", "claims.csv", "index.md", "power.md",
                                                      "landing.rst"}
    assert "claim-b" in (root / "report" / "claims.csv").read_text()


def test_regenerate_names_a_missing_results_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results directory"):
        summary.regenerate(tmp_path / "nope", REGISTRY, "test")


@pytest.fixture(scope="module")
def small_report(small_dag, tmp_path_factory):
    """`snakemake figures`, then `snakemake --report report.html`, on the finished small run (once per module)."""
    from conftest import snakemake

    workdir, cfg = small_dag
    figures_run = snakemake(workdir, "figures", "--cores", "1", "--configfile", str(cfg))  # --configfile: 1+ values
    html = tmp_path_factory.mktemp("report") / "report.html"
    report_run = snakemake(workdir, "--cores", "1", "--configfile", str(cfg), "--report", str(html))
    return workdir, html, figures_run, report_run


def _verdicts(workdir: Path) -> dict[str, str]:
    """claim id -> the verdict of its verdict.json, for every claim the small run decided."""
    return {v.parent.name: json.loads(v.read_text())["verdict"]
            for v in sorted((workdir / "results" / "smoke" / "claims").glob("*/verdict.json"))}


def _report_results(html: Path) -> dict:
    """The report's `results` (path -> entry: caption, labels, data_uri...), as its page script holds them."""
    text = html.read_text(errors="replace")
    start = text.index("var results = ", text.index('<script id="results">')) + len("var results = ")
    return json.loads(text[start:text.index("</script>", start)].strip().rstrip(";"))


@pytest.mark.dag
def test_snakemake_figures_and_report_on_the_small_dag(small_report):
    """`snakemake figures` redraws the finished small run, each claim figure with its verdict's badge;
    `snakemake --report` builds the HTML report with each claim's figure under its family, labelled with its
    verdict, every caption rendered without a docutils message."""
    workdir, html, figures_run, report_run = small_report
    data_files = sorted((workdir / "results").rglob("*.data.json"))
    assert data_files, "the small DAG's claims store no figure data"
    assert figures_run.returncode == 0, figures_run.stdout[-3000:] + figures_run.stderr[-3000:]
    assert "figures" in figures_run.stdout + figures_run.stderr
    assert report_run.returncode == 0, report_run.stdout[-3000:] + report_run.stderr[-3000:]
    text = html.read_text(errors="replace")
    for needle in ("ingredients", "resnet56-ingredient-ablation", "Training-ingredient ablation"):
        assert needle in text
    verdicts = _verdicts(workdir)
    for claim, verdict in verdicts.items():  # the figure data keep the verdict the claim job drew
        stored = json.loads((workdir / "results" / "smoke" / "claims" / claim / "figure.data.json").read_text())
        assert stored["verdict"] == verdict, claim
    results = _report_results(html)
    labelled = {(e["labels"]["claim"], e["labels"]["figure"]): e["labels"]["verdict"] for e in results.values()}
    assert labelled == {(c, f): v for c, v in verdicts.items() for f in ("claim figure", "decision")}
    messages = {path: e["caption"] for path, e in results.items() if "system-message" in e["caption"]}
    assert messages == {}


@pytest.mark.dag
def test_the_html_report_opens_on_the_verdict_table(small_report):
    """The report as a browser shows it (Debian's chromium, headless, --dump-dom): it opens on the verdict table,
    above the rule graph, one row per claim with the verdict of its verdict.json and links that open its figure
    and decision (paths the report's results hold)."""
    import re
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it): the HTML report "
                    "is not rendered in a browser")
    workdir, html, _, report_run = small_report
    assert report_run.returncode == 0, report_run.stdout[-3000:] + report_run.stderr[-3000:]
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=300).stdout
    start = dom.index('<div id="app">')
    app = dom[start:dom.index("<script", start)]  # what React rendered (the page's scripts follow it)
    assert "losslab verdicts at scale smoke" in app
    assert 'id="rulegraph"' in app and app.index('class="losslab-verdicts"') < app.index('id="rulegraph"')
    rows = dict(re.findall(r'<tr id="verdict-([^"]+)">(.*?)</tr>', app))
    verdicts = _verdicts(workdir)
    shown = {claim: re.search(r'class="losslab-verdict[^"]*"[^>]*>([^<]+)<', row).group(1)
             for claim, row in rows.items()}
    assert {c: v for c, v in shown.items() if c in verdicts} == verdicts
    assert {v for c, v in shown.items() if c not in verdicts} == {"pending"}
    results = _report_results(html)
    for claim in verdicts:
        links = re.findall(r'resultPath: &quot;([^&]+)&quot;', rows[claim])
        assert [Path(p).name for p in links] == ["figure.png", "decision.png"], claim
        assert all(p in results for p in links), (claim, links)


def test_a_table_redrawn_from_its_csv_is_the_table_first_written(tmp_path):
    """`snakemake figures` rewrites table.md from table.csv: numbers are read back as numbers, so the Markdown
    is the claim's own, byte for byte (it was not: 92.0 came back as "92.0" instead of "92", 4.54867 unrounded);
    pre-formatted cells stay as written."""
    rows = [{"name": "a", "n": 8, "loss": 4.548671, "acc": 92.0, "f32": np.float32(1.0), "spread": "40.56 ± 1.96",
             "pre": "0.090", "sci": 1e-05, "nan": math.nan, "flag": True, "none": ""}]
    tables.write_table(rows, tmp_path / "table", title="a table")
    first = (tmp_path / "table.md").read_bytes()
    assert b"| a | 8 | 4.55 | 92 | 1 | 40.56 \xc2\xb1 1.96 | 0.090 | 1e-05 | nan | True |  |" in first
    tables.rerender_table(tmp_path / "table.csv")
    assert (tmp_path / "table.md").read_bytes() == first
    assert [tables.csv_cell(t) for t in ("8", "92.0", "0.090", "1e-05", "x", "")] == [8, 92.0, "0.090", 1e-05, "x", ""]


def test_power_table_marks_underpowered_scales():
    from losslab.claims.summary import power_rows
    from losslab.claims.verdicts import Measured, decide_claim

    block = {"parts": [{"name": "gap", "effect": "ln error ratio", "unit": "ln", "margin": 0, "sesoi": 0.1},
                       {"name": "fits", "effect": "train acc", "unit": "fraction", "margin": 0.99, "sesoi": 0.99}]}
    cd = decide_claim(block, {"gap": Measured(samples=[0.05, 0.2, 0.1, 0.3, 0.0]),
                              "fits": Measured(samples=[1.0, 1.0, 0.995])})
    registry = [{"id": "c", "experiment": "e", "decision": block}]
    rows, scales = power_rows(registry, {"c": {"decisions": cd.records()}}, {"smoke": {"e": 5}, "cpu": {"e": 1000}})
    assert scales == ["smoke", "cpu"] and len(rows) == 1  # the "at least" part has no effect size to power for
    needed = rows[0]["seeds for 80% power"]
    assert isinstance(needed, int) and 5 < needed < 1000
    assert rows[0]["smoke"] == "5 (underpowered)" and rows[0]["cpu"] == "1000"


def test_an_undecided_claim_says_why_and_which_scale_decides_it():
    from losslab.claims.verdicts import undecided_note
    from losslab.claims.verdicts import Measured, decide_claim

    block = {"parts": [{"name": "gap", "effect": "ln error ratio", "unit": "ln", "margin": 0, "sesoi": 0.1}]}
    claim = {"id": "c", "experiment": "e", "decision": block}
    seeds = {"smoke": {"e": 3}, "desk": {"e": 8}, "cpu": {"e": 40}}
    cd = decide_claim(block, {"gap": Measured(samples=[0.05, 0.2, 0.1])})  # sd 0.076: ~6 seeds for 80% power
    res = {"verdict": cd.verdict, "decisions": cd.records()}
    assert cd.verdict == "inconclusive"
    needed = cd.records()[0]["seeds_needed"]
    note = undecided_note(claim, res, seeds)
    assert f"gap: needs {needed} seeds, which the desk scale gives" in note
    # more seeds than any scale: said so
    assert "more than any scale gives" in undecided_note(claim, res, {"smoke": {"e": 3}})
    # one replicate: no power estimate, the count named
    one = decide_claim(block, {"gap": Measured(samples=[0.3])})
    assert "1 replicate (seed)" in undecided_note(claim, {"verdict": one.verdict, "decisions": one.records()}, seeds)
    # a decided claim has no note
    assert undecided_note(claim, {"verdict": "reproduced", "decisions": []}, seeds) == ""
