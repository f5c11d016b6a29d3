"""The published report (results/published/<scale>): what publish writes, what check_published catches (each
check also failing on an injected change), and the repository's own published desk run and README table."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from losslab.claims import publish as pub

ROOT = Path(__file__).resolve().parents[2]
COMMIT = {"commit": "0" * 40, "dirty": False}
REGISTRY = """
- id: a
  family: f
  source: s
  statement: s
  reported: r
  rule: a_claim
  experiment: e
  checks: {default: {rule: r}}
  decision: {parts: [{name: p, effect: e, unit: u, margin: 0, sesoi: 0.1}]}
- id: b
  family: f
  source: s
  statement: s
  reported: r
  pending: not yet
"""


def _run(tmp: Path) -> tuple[Path, Path]:
    """A fake repository root (registry, scale file) and a finished run of scale `desk` in it."""
    root = tmp / "repo"
    (root / "config" / "scales").mkdir(parents=True)
    (root / "config" / "claims.yaml").write_text(REGISTRY)
    (root / "config" / "scales" / "desk.yaml").write_text("experiments: {}\n")
    res = tmp / "out" / "desk"
    (res / "report").mkdir(parents=True)
    (res / "claims" / "a").mkdir(parents=True)
    verdict = {"id": "a", "verdict": "reproduced", "measured": "x 1.0", "n_seeds": 3, "scale": "desk",
               "figures": [str(res / "claims" / "a" / "figure.png")],
               "tables": [str(res / "claims" / "a" / "table.csv")]}
    (res / "claims" / "a" / "verdict.json").write_text(json.dumps(verdict))
    (res / "claims" / "a" / "table.csv").write_text("k,v\nx,1.0\n")
    (res / "claims" / "a" / "figure.png").write_bytes(b"\x89PNG fake")
    (res / "claims" / "a" / "figure.pdf").write_bytes(b"%PDF fake")
    with open(res / "report" / "claims.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["claim", "family", "measured", "verdict"])
        w.writeheader()
        w.writerow({"claim": "a", "family": "f", "measured": "x 1.0 (n = 3 seeds)", "verdict": "reproduced"})
        w.writerow({"claim": "b", "family": "f", "measured": "pending: not yet", "verdict": "pending"})
    (res / "report" / "claims.md").write_text(
        "# claims\n[figure](../claims/a/figure.png) [pdf](../claims/a/figure.pdf) "
        "[surface](../surfaces/e/v/seed0/contour.png) [web](https://x.org/a.png)\n")
    (res / "surfaces" / "e" / "v" / "seed0").mkdir(parents=True)
    (res / "surfaces" / "e" / "v" / "seed0" / "contour.png").write_bytes(b"\x89PNG surface")
    (res / "surfaces" / "e" / "v" / "seed0" / "surface.h5").write_bytes(b"raw data, not linked")
    return root, res


def test_publish_then_check_catches_each_injected_change(tmp_path: Path) -> None:
    root, res = _run(tmp_path)
    dest = root / "results" / "published" / "desk"
    m = pub.publish(res, dest, wall_seconds=3600.0, command="snakemake --cores 2 --config scale=desk", root=root,
                    commit=COMMIT)
    assert m["verdicts"] == {"a": "reproduced", "b": "pending"} and m["wall_seconds"] == 3600.0
    # the claim's files, and what the report links to (its PDF, a surface figure); not the unlinked raw data
    assert set(m["files"]) == {"report/claims.csv", "report/claims.md", "claims/a/verdict.json", "claims/a/table.csv",
                               "claims/a/figure.png", "claims/a/figure.pdf", "surfaces/e/v/seed0/contour.png"}
    assert json.loads((dest / "claims" / "a" / "verdict.json").read_text())["figures"] == ["figure.png"]
    assert pub.check_published(dest, root) == []

    def broken(edit) -> list[str]:
        shutil.copytree(dest, tmp_path / "copy")
        edit(tmp_path / "copy")
        try:
            return pub.check_published(tmp_path / "copy", root)
        finally:
            shutil.rmtree(tmp_path / "copy")

    v = dest / "claims" / "a" / "verdict.json"
    flipped = json.loads(v.read_text()) | {"verdict": "not reproduced"}
    assert any("verdict.json gives verdict" in p for p in broken(
        lambda d: (d / "claims/a/verdict.json").write_text(json.dumps(flipped))))
    assert any("no figure.png" in p for p in broken(lambda d: (d / "claims/a/figure.png").unlink()))
    assert any("links to surfaces/e/v/seed0/contour.png" in p
               for p in broken(lambda d: (d / "surfaces/e/v/seed0/contour.png").unlink()))
    assert any("not in the manifest" in p for p in broken(lambda d: (d / "claims/a/extra.png").write_bytes(b"x")))
    assert any("changed since" in p for p in broken(lambda d: (d / "report/claims.md").write_text("edited\n")))
    # a decision edited after the run: its fingerprint no longer matches
    reg = root / "config" / "claims.yaml"
    reg.write_text(REGISTRY.replace("sesoi: 0.1", "sesoi: 0.2"))
    assert [p for p in pub.check_published(dest, root) if p.startswith("a: its registry entry")]
    reg.write_text(REGISTRY.replace("statement: s\n  reported: r\n  pending", "statement: t\n  reported: r\n  pending"))
    assert pub.check_published(dest, root) == []  # the statement is prose: not a rule version
    (root / "config" / "scales" / "desk.yaml").write_text("experiments: {x: 1}\n")
    assert any("desk.yaml is not the one" in p for p in pub.check_published(dest, root))


def test_publish_refuses_an_unfinished_run(tmp_path: Path) -> None:
    root, res = _run(tmp_path)
    (res / "claims" / "a" / "verdict.json").unlink()
    with pytest.raises(pub.PublishError, match=r"no verdict.json for \['a'\]"):
        pub.publish(res, tmp_path / "dest", wall_seconds=1.0, command="c", root=root, commit=COMMIT)


def test_wall_time_of_usr_bin_time() -> None:
    assert pub.wall_seconds_of("\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:23:45\n") == 5025.0
    assert pub.wall_seconds_of("Elapsed (wall clock) time (h:mm:ss or m:ss): 2:03.50") == 123.5
    with pytest.raises(pub.PublishError):
        pub.wall_seconds_of("no time here")


def test_the_published_desk_run_is_complete_and_made_by_this_registry() -> None:
    dest = ROOT / "results" / "published" / "desk"
    assert (dest / pub.MANIFEST).exists(), "results/published/desk has no manifest: publish the desk run"
    assert pub.check_published(dest, ROOT) == []
    manifest = json.loads((dest / pub.MANIFEST).read_text())
    assert manifest["wall_seconds"] < 2 * 3600 and manifest["machine"]["cores"] >= 1 and len(manifest["commit"]) == 40


def test_the_readme_shows_the_published_verdicts() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split(pub.README_START, 1)[1].split(pub.README_END, 1)[0].strip()
    assert table == pub.readme_table(ROOT, "desk")
