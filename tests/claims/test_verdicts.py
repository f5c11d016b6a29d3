"""Verdict logic, the registry, and the report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from losslab.claims.verdicts import (REPRODUCED, ClaimResult, Estimate, Preregistration,
                                     ratio_estimate, seed_mean)
from losslab.pipeline.registry import check_decision, check_for, load_registry
from losslab.pipeline.config import ConfigError
from losslab.claims.summary import build_report
from losslab.claims.tables import markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_registry_lists_every_reference_claim():
    reg = load_registry(ROOT / "config" / "claims.yaml")
    ids = [c["id"] for c in reg]
    reference = [line[5:].strip() for line in (ROOT.parent / "shared" / "claims-reference.yaml").read_text()
                 .splitlines() if line.startswith("- id:")] if (ROOT.parent / "shared").exists() else []
    assert len(ids) >= 30  # the reference's 28 and two questions of source 000 (issue #7)
    assert {"memorize-random-labels", "mse-vs-cross-entropy"} <= set(ids)
    assert set(reference) <= set(ids)
    for c in reg:
        if "rule" in c:
            rule = check_for(c, "smoke")
            assert rule["rule"], c["id"]


@pytest.mark.parametrize("text, match", [
    ("- {id: a, source: s, statement: t, reported: r, family: f}\n", "exactly one of 'rule'"),
    ("- {id: a, source: s, statement: t, reported: r, family: f, rule: x}\n", "needs 'checks'"),
    ("- {id: a, source: s, statement: t, family: f, pending: why}\n", "missing keys \\['reported'\\]"),
    ("- {id: a, source: s, statement: t, reported: r, family: f, pending: w}\n"
     "- {id: a, source: s, statement: t, reported: r, family: f, pending: w}\n", "duplicate id"),
    ("{a: 1}\n", "expected a list"),
])
def test_registry_errors_name_the_claim(tmp_path, text, match):
    p = tmp_path / "claims.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_registry(p)


GOOD_PART = {"name": "gap", "effect": "ln error ratio", "unit": "ln", "margin": 0, "sesoi": 0.05, "test": "t"}


def test_every_implemented_claim_is_pre_registered_with_context():
    for c in load_registry(ROOT / "config" / "claims.yaml"):
        if "rule" in c:
            assert c["decision"]["parts"] and c["context"], c["id"]
            for part in c["decision"]["parts"]:
                if part.get("test", "t") != "tolerance":  # the verdict module reads every statistical part
                    Preregistration.from_mapping({k: v for k, v in part.items()}, c["id"])


@pytest.mark.parametrize("decision, match", [
    (None, "needs its pre-registered decision"),
    ({"parts": []}, "non-empty list"),
    ({"parts": [GOOD_PART], "alpha": 0.7}, "alpha must be a number in"),
    ({"parts": [GOOD_PART], "power": 0.8}, "unknown keys \\['power'\\]"),
    ({"parts": [{**GOOD_PART, "sesoi": -1}]}, "parts\\[0\\] \\(gap\\): sesoi .* >= margin"),
    ({"parts": [{**GOOD_PART, "test": "z"}]}, "test must be one of"),
    ({"parts": [{**GOOD_PART, "test": "tolerance"}]}, "tolerance must be a number >= 0"),
    ({"parts": [{k: v for k, v in GOOD_PART.items() if k != "unit"}]}, "unit must be given as text"),
    ({"parts": [GOOD_PART, GOOD_PART]}, "part names must be unique"),
    ({"parts": [GOOD_PART], "primary": "other"}, "primary 'other' names no part"),
])
def test_a_bad_decision_is_named_at_the_door(decision, match):
    with pytest.raises(ConfigError, match=match):
        check_decision(decision, "claims.yaml: claim #1 (a): decision")
    check_decision({"parts": [GOOD_PART], "primary": "gap"}, "fine")


def test_result_rejects_unknown_verdict():
    with pytest.raises(ValueError, match="verdict must be one of"):
        ClaimResult(id="x", scale="smoke", verdict="sort of", rule="r", measured="m", n_seeds=1)


def test_report_has_a_row_per_claim(tmp_path):
    registry = [
        {"id": "a", "family": "f", "source": "s", "statement": "A holds.", "reported": "1", "rule": "r",
         "checks": {"default": {"rule": "a > b"}}},
        {"id": "b", "family": "f", "source": "s", "statement": "B holds.", "reported": "2", "pending": "later"},
    ]
    res = ClaimResult(id="a", scale="smoke", verdict=REPRODUCED, rule="a > b", measured="1.5 ± 0.1",
                      n_seeds=3, figures=[str(tmp_path / "claims" / "a" / "figure.png")])
    res.write(tmp_path / "a.json")
    import json
    counts = build_report(registry, {"a": json.loads((tmp_path / "a.json").read_text())}, tmp_path / "report",
                          "smoke")
    assert counts[REPRODUCED] == 1 and counts["pending"] == 1
    md = (tmp_path / "report" / "claims.md").read_text()
    assert "| a |" in md and "1.5 ± 0.1" in md and "[figure](../claims/a/figure.png)" in md
    assert "| b |" in md and "later" in md
    csv_lines = (tmp_path / "report" / "claims.csv").read_text().splitlines()
    assert csv_lines[0].startswith("claim,family,source") and len(csv_lines) == 3


def test_markdown_table_escapes_pipes():
    assert "a \\| b" in markdown_table([{"x": "a | b"}])


def test_seed_means_carry_their_standard_error_into_the_verdict_file():
    m = seed_mean([1.0, 2.0, 3.0, None, math.nan])
    assert float(m) == 2.0 and m.se == pytest.approx(1.0 / math.sqrt(3))
    assert m.scaled(-100) == -200.0 and m.scaled(-100).se == pytest.approx(100 / math.sqrt(3))
    assert math.isnan(seed_mean([4.0]).se) and math.isnan(seed_mean([None]))
    r = ratio_estimate(Estimate(4.0, 0.4), Estimate(2.0, 0.1))
    assert float(r) == 2.0 and r.se == pytest.approx(2.0 * math.sqrt(0.1 ** 2 + 0.05 ** 2))
    assert ratio_estimate(Estimate(1.0, 0.1), Estimate(0.0, 0.1)) == math.inf
    res = ClaimResult(id="c", scale="smoke", verdict=REPRODUCED, rule="r", measured="m", n_seeds=3,
                      numbers={"a_mean": m, "one_seed": seed_mean([4.0]), "plain": 1.5})
    assert res.uncertainty == {"a_mean": pytest.approx(1.0 / math.sqrt(3))}  # NaN (one seed) is not an error bar
    assert all(type(v) is float for v in res.numbers.values())
