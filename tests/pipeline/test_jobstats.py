"""The per-family summary of a run's benchmark files and logged start-up times."""
from losslab.pipeline import jobstats

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t1\t1\t1\t1\t0\t0\t0\t0\n")


def _log(path, *startups):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"x losslab.job INFO job start-up: {s} s\n" for s in startups))


def test_seconds_and_start_up_per_family(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "train.smk").write_text("rule train:\n    output: 'x'\n")
    (rules / "toys.smk").write_text("if True:\n\n    rule saddles_claim:\n        output: 'y'\n")
    registry = tmp_path / "claims.yaml"
    registry.write_text("- id: c1\n  family: lecture\n  source: s\n  statement: s\n  reported: r\n  kind: directional\n"
                        "  pending: not yet\n")
    res, logs = tmp_path / "results", tmp_path / "logs"
    _bench(res / "benchmarks/train/exp/a.tsv", 10.0)
    _bench(res / "benchmarks/train/exp/b.tsv", 20.0)
    _bench(res / "benchmarks/claims/c1.tsv", 5.0)
    _bench(res / "benchmarks/saddles_claim/x.tsv", 5.0)
    _log(logs / "train/exp/a.log", 3.0, 1.0)  # appended across reruns: the last one counts
    _log(logs / "train/exp/b.log", 1.5)
    _log(logs / "claims/c1.log", 0.5)
    fams = jobstats.summarize(res, logs, rules_dir=rules, registry=registry)
    assert fams["train"].jobs == 2 and fams["train"].seconds == 30.0 and fams["train"].startup == 2.5
    assert fams["lecture"].seconds == 5.0 and fams["lecture"].startup == 0.5
    assert fams["toys"].seconds == 5.0
    text = jobstats.table(fams)
    assert "| train | 2 | 30.0 | 75% | 2.5 | 8% |" in text
    assert "| **all** | 4 | 40.0 | 100% | 3.0 | 8% |" in text


def test_every_rule_writes_a_benchmark_file_that_names_its_rule():
    """benchmarks/<rule>/... (claims: benchmarks/claims/<claim id>), so that jobstats can name the family: each
    .smk file has one benchmark file per rule that jobstats.rule_families finds in it, each under a rule of that
    file (or claims/, or train/ for a continued training run)."""
    import re
    from collections import Counter
    from pathlib import Path

    rules_dir = Path(__file__).parents[2] / "workflow" / "rules"
    families = jobstats.rule_families(rules_dir)
    assert len(families) >= 15  # the claim rules are generated (rules/claims.smk), not named in the files
    for smk in sorted(rules_dir.glob("*.smk")):
        rules = sorted(r for r, fam in families.items() if fam == smk.stem)
        firsts = [m.split(".")[0] for m in
                  re.findall(r"benchmark:\s*\n\s*f\"\{R\}/benchmarks/([^/\"]+)", smk.read_text())]
        if smk.stem == "claims":  # the claim rules, generated in one loop: benchmarks/claims/<claim id>
            assert firsts == ["claims"] and not rules, (smk.name, firsts, rules)
            continue
        assert len(firsts) == len(rules), (f"{smk.name}: {len(rules)} rules {rules} but {len(firsts)} benchmark "
                                           f"files under {{R}}/benchmarks/ {firsts}")
        own = Counter(f for f in firsts if f not in ("claims", "train"))
        assert set(own) <= set(rules), f"{smk.name}: benchmarks under {sorted(set(own) - set(rules))}/"
        assert max(own.values(), default=1) == 1, f"{smk.name}: two rules benchmark under one name: {own}"


def test_seconds_per_experiment_named_by_its_claim(tmp_path):
    """``--by experiment``: a rule's files count for the experiment in their path (``<rule>/<experiment>/`` or
    ``<rule>/<kind>/<experiment>/``), labelled with the claim the config gives it; claim jobs share one row."""
    res = tmp_path / "results"
    _bench(res / "benchmarks/train/deep/a.tsv", 10.0)
    _bench(res / "benchmarks/surface/deep/a/seed0.tsv", 4.0)
    _bench(res / "benchmarks/sharpness/runs/kes/lb.tsv", 3.0)
    _bench(res / "benchmarks/fge/conn.tsv", 2.0)
    _bench(res / "benchmarks/mpo_fit/bn/p0.5.tsv", 1.5)
    _bench(res / "benchmarks/claims/c1.tsv", 1.0)
    _bench(res / "benchmarks/claims/c2.tsv", 0.5)
    _bench(res / "benchmarks/report.tsv", 0.25)
    config = {"experiments": {"deep": {"claim": "skip-chaos"}, "kes": {"claim": "keskar-gap"}, "conn": {}}}
    rows = jobstats.summarize(res, key=jobstats.experiment_key(config))
    assert {k: (f.jobs, f.seconds) for k, f in rows.items()} == {
        "deep (skip-chaos)": (2, 14.0), "kes (keskar-gap)": (1, 3.0), "conn": (1, 2.0), "patterns": (1, 1.5),
        "claim jobs": (2, 1.5), "report": (1, 0.25)}
    assert jobstats.table(rows, "experiment").startswith("| experiment | jobs |")
    assert jobstats.jobstats_main([str(res), "--by", "experiment", "--config", str(tmp_path / "none.yaml")]) == 0


def test_the_checkout_root_is_found_from_the_package():
    """ROOT is the checkout (its registry and rules), not src/: the per-family table reads both."""
    from losslab.claims import publish
    from losslab.pipeline import jobstats

    for root in (jobstats.ROOT, publish.ROOT):
        assert (root / "config" / "claims.yaml").exists() and (root / "workflow" / "rules").is_dir()
