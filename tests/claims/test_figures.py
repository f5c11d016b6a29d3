"""Figures drawn from stored data: `render` stores what `rerender` redraws, byte for byte, under a registered
name that survives moving the plot function."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from losslab.plots import figures
from losslab.claims import ingredients, summary
from losslab.io import CorruptFileError


def _ablation_data():
    rng = np.random.default_rng(0)
    return {"scale": "test", "n_seeds": 3,
            "acc": {v: rng.uniform(0.5, 0.9, 3) for v in ingredients.ABLATION_VARIANTS}}


def test_rerender_redraws_the_same_figure_from_the_stored_data(tmp_path):
    png, pdf = figures.render(ingredients.plot_ablation, _ablation_data(), tmp_path / "figure")
    stored = tmp_path / "figure.data.json"
    assert json.loads(stored.read_text())["plot"] == "ingredients.ablation"
    first = {p: open(p, "rb").read() for p in (png, pdf)}
    for p in (png, pdf):
        (tmp_path / p).unlink()
    assert sorted(figures.rerender_all(tmp_path)) == sorted([png, pdf])
    assert {p: open(p, "rb").read() for p in (png, pdf)} == first


@pytest.mark.parametrize("old_name", ["losslab.ingredients:plot_ablation",  # before the four wings
                                      "losslab.claims.ingredients:plot_ablation"])  # the wings, before names
def test_a_figure_stored_under_an_old_code_location_redraws(tmp_path, old_name):
    png, pdf = figures.render(ingredients.plot_ablation, _ablation_data(), tmp_path / "figure")
    first = open(png, "rb").read()
    stored = tmp_path / "figure.data.json"
    obj = json.loads(stored.read_text())
    stored.write_text(json.dumps({**obj, "plot": old_name}))
    (tmp_path / png).unlink()
    assert figures.rerender(stored) == [png, pdf]
    assert open(png, "rb").read() == first


def test_every_legacy_name_resolves_once_the_claims_are_imported():
    assert summary.PLOT_MODULES  # imported: every family has registered its plot functions
    unresolved = {old: new for old, new in figures.LEGACY.items() if new not in figures.PLOTS}
    assert not unresolved
    # every plot function older code stored under a module:function name has one; plots newer than the registry
    # (the decision figure of issue #18) never had one
    newer = {"claims.decision", "lecture.newton_saddles", "connectivity.walk", "sharpness.gauss_newton",
             "sharpness.directions_agree"}  # the decision figure (issue #18) and the claims of issue #19
    assert set(figures.LEGACY.values()) == set(figures.PLOTS) - newer


def test_render_refuses_an_unregistered_plot_function(tmp_path):
    def local_plot(data, stem):
        return []
    with pytest.raises(ValueError, match="not registered"):
        figures.render(local_plot, {}, tmp_path / "figure")
    assert not (tmp_path / "figure.data.json").exists()


def test_a_plot_name_is_registered_once():
    with pytest.raises(ValueError, match="ingredients.ablation.*is taken"):
        figures.register_plot("ingredients.ablation")(lambda data, stem: [])


@pytest.mark.parametrize("text, match, error", [
    ("{not json", "not a readable figure data file", CorruptFileError),
    ('{"plot": "os:system", "data": {}}', "no plot function is registered as 'os:system'", LookupError),
    ('{"plot": "ingredients.nothing", "data": {}}', "registered as 'ingredients.nothing'", LookupError),
    ('{"data": {}}', "not a readable figure data file", CorruptFileError),
])
def test_rerender_names_a_bad_data_file(tmp_path, text, match, error):
    bad = tmp_path / "figure.data.json"
    bad.write_text(text)
    with pytest.raises(error, match=match) as e:
        figures.rerender(bad)
    assert str(bad) in str(e.value)


def _line_plot(drawn: list):
    """A plot function that draws ``data["y"]`` and keeps each figure it saves in ``drawn``."""
    def plot(data, stem):
        fig, ax = figures.new_figure()
        ax.plot(data["y"])
        drawn.append(fig)
        return figures.save(fig, stem)
    return plot


def _badges(fig) -> list[tuple[str, tuple]]:
    return [(t.get_text().strip(), tuple(t.get_bbox_patch().get_facecolor()[:3])) for t in fig.texts
            if t.get_bbox_patch() is not None]


def test_verdict_badges_are_colour_coded():
    rgb = {"reproduced": (0.172549, 0.627451, 0.172549), "not reproduced": (0.839216, 0.152941, 0.156863),
           "inconclusive": (0.498039, 0.498039, 0.498039), "pending": (0.121569, 0.466667, 0.705882)}
    assert set(figures.VERDICT_COLORS) == set(rgb)
    for verdict, colour in rgb.items():
        fig, _ = figures.new_figure()
        figures.verdict_badge(fig, verdict)
        [(text, drawn)] = _badges(fig)
        assert text == f"verdict: {verdict}" and drawn == pytest.approx(colour, abs=1e-6)


def test_a_figure_rendered_with_a_verdict_carries_its_badge_and_keeps_it_when_redrawn(tmp_path, monkeypatch):
    drawn: list = []
    monkeypatch.setitem(figures.PLOTS, "tests.line", _line_plot(drawn))
    plot = figures.PLOTS["tests.line"]
    png, pdf = figures.render(plot, {"y": [1, 3, 2]}, tmp_path / "figure", verdict="not reproduced")
    assert [b[0] for b in _badges(drawn[-1])] == ["verdict: not reproduced"]
    stored = json.loads((tmp_path / "figure.data.json").read_text())
    assert stored == {"plot": "tests.line", "verdict": "not reproduced", "data": {"y": [1, 3, 2]}}
    first = open(png, "rb").read()
    assert figures.rerender(tmp_path / "figure.data.json", verdict="inconclusive") == [png, pdf]  # stored wins
    assert [b[0] for b in _badges(drawn[-1])] == ["verdict: not reproduced"] and open(png, "rb").read() == first
    figures.render(plot, {"y": [1, 3, 2]}, tmp_path / "plain")  # no verdict: no badge, none stored
    assert _badges(drawn[-1]) == [] and "verdict" not in json.loads((tmp_path / "plain.data.json").read_text())


def test_a_badge_needs_a_known_verdict(tmp_path, monkeypatch):
    monkeypatch.setitem(figures.PLOTS, "tests.line", _line_plot([]))
    with pytest.raises(ValueError, match="verdict 'maybe' has no badge; known: "):
        figures.render(figures.PLOTS["tests.line"], {"y": [1]}, tmp_path / "figure", verdict="maybe")
    assert not (tmp_path / "figure.data.json").exists()


def test_figures_stored_without_a_verdict_are_redrawn_with_their_claims(tmp_path, monkeypatch):
    """`snakemake figures` on results drawn before the badges: each claim folder's verdict is given."""
    drawn: list = []
    monkeypatch.setitem(figures.PLOTS, "tests.line", _line_plot(drawn))
    for claim in ("a", "b"):
        figures.render(figures.PLOTS["tests.line"], {"y": [1, 2]}, tmp_path / claim / "figure")
    drawn.clear()
    figures.rerender_all(tmp_path, {tmp_path / "a": "not reproduced"})
    assert [[b[0] for b in _badges(f)] for f in drawn] == [["verdict: not reproduced"], []]


def test_deferred_figures_are_drawn_once_with_the_verdict_decided_after_them(tmp_path, monkeypatch):
    """A claim job renders its figures before it decides (losslab.claims.jobs.run_claim): inside deferred(),
    render stores nothing and draws nothing but returns the paths; draw_deferred draws each once, with the badge,
    from the data as they were when rendered."""
    drawn: list = []
    monkeypatch.setitem(figures.PLOTS, "tests.line", _line_plot(drawn))
    data = {"y": [1, 2]}
    with figures.deferred() as pending:
        paths = figures.render(figures.PLOTS["tests.line"], data, tmp_path / "figure")
        data["y"].append(5)  # a caller changing its data afterwards does not change the figure
    assert paths == [str(tmp_path / "figure.png"), str(tmp_path / "figure.pdf")]
    assert drawn == [] and list(tmp_path.iterdir()) == []
    assert figures.draw_deferred(pending, "reproduced") == paths and pending == []
    assert len(drawn) == 1 and _badges(drawn[0])[0][0] == "verdict: reproduced"
    assert json.loads((tmp_path / "figure.data.json").read_text()) == {
        "plot": "tests.line", "verdict": "reproduced", "data": {"y": [1, 2]}}
    assert all(Path(p).stat().st_size > 0 for p in paths)


def test_a_deferred_figure_must_be_saved_where_render_said(tmp_path, monkeypatch):
    def elsewhere(data, stem):
        fig, _ = figures.new_figure()
        return figures.save(fig, Path(stem).with_name("other"))
    monkeypatch.setitem(figures.PLOTS, "tests.elsewhere", elsewhere)
    with figures.deferred() as pending:
        figures.render(elsewhere, {}, tmp_path / "figure")
    with pytest.raises(ValueError, match="plot function 'tests.elsewhere' wrote .*other.png"):
        figures.draw_deferred(pending, "inconclusive")


def test_colors_are_matplotlibs_tab10():
    import matplotlib

    assert figures.COLORS == matplotlib.colormaps["tab10"].colors


def test_importing_the_modules_that_draw_does_not_import_matplotlib():
    """matplotlib (~0.3 s) is paid by the first figure drawn, not by importing a module that can draw (summary
    imports every claim family)."""
    code = "import sys, losslab.claims.summary, losslab.api, losslab.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def rst_messages(text: str, source: str = "<caption>") -> str:
    """The docutils system messages (every level, from INFO up) of reStructuredText ``text`` rendered to HTML as
    Snakemake's report renders a caption, one per line; empty when there are none."""
    import io as _io

    import docutils.core

    err = _io.StringIO()
    docutils.core.publish_parts(text, source_path=source, writer_name="html",
                                settings_overrides={"warning_stream": err, "report_level": 1, "halt_level": 5})
    return err.getvalue()


def snakemake_caption(path: Path) -> str:
    """A caption file as Snakemake's report hands it to docutils: rendered by Jinja2 first (with the report's
    environment settings) with ``snakemake.config`` the default configuration; an undefined name is an error here
    (Snakemake would render it empty)."""
    import jinja2
    import yaml

    class Snakemake:
        config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "config.yaml").read_text())

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    return env.from_string(path.read_text()).render(snakemake=Snakemake)


def test_every_claim_has_a_caption_that_renders_without_errors():
    """The HTML report's captions (workflow/report/captions/<claim>.rst) and its description before a run
    (workflow/report/workflow.rst): one caption per implemented claim, and reStructuredText that docutils reads
    without any system message, from INFO up (a message shows up as a "Docutils System Messages" box in the
    report), after the Jinja2 rendering Snakemake gives them. Each failure names the file and the message."""
    from losslab.pipeline.registry import load_registry

    root = Path(__file__).resolve().parents[2]
    captions = root / "workflow" / "report" / "captions"
    implemented = [c["id"] for c in load_registry(root / "config" / "claims.yaml") if "rule" in c]
    assert [c for c in implemented if not (captions / f"{c}.rst").exists()] == []
    bad = {}
    for path in sorted(captions.glob("*.rst")) + [root / "workflow" / "report" / "workflow.rst"]:
        messages = rst_messages(snakemake_caption(path), source=path.name)
        if messages:
            bad[path.relative_to(root).as_posix()] = messages
    assert bad == {}


def test_the_caption_check_names_the_file_and_the_message():
    """The check above fails on the li-width-nonconvexity caption as it was before 492a3db (the report showed it
    as an ERROR/3 box): an undefined substitution, named with its file and the line of its paragraph."""
    old = ("Width and convexity (Li et al. 2018, Sec. 6): test error, the mean of Li et al.'s Hessian eigenvalue "
           "ratio\n|lambda_min/lambda_max| over a filter-normalized random plane.\n")
    messages = rst_messages(old, source="li-width-nonconvexity.rst")
    assert messages.startswith("li-width-nonconvexity.rst:1: (ERROR/3) Undefined substitution referenced: "
                               '"lambda_min/lambda_max".')
    assert rst_messages("A `link`_ nobody defines.\n").startswith("<caption>:1: (ERROR/3) Unknown target name")
