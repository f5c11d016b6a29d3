"""CI regression of reproduced numbers: the comparison, a test of it, and the smoke DAG against its baseline."""

from __future__ import annotations

import copy
import json
import math
import os

import pytest
import yaml

from conftest import ROOT, SMALL, snakemake
from losslab.pipeline import cpu_kernels
from losslab.pipeline.regression import (check, collect, compare, declared_tolerances, family, kernel_noise,
                                         regression_main, same_platform, tolerance)

BASE = {"scale": "smoke", "claims": {
    "a": {"verdict": "reproduced", "numbers": {"x": 1.0, "y": 0.5, "z": None}},
    "b": {"verdict": "not reproduced", "numbers": {"w": 3.0}},
}}


def test_identical_runs_compare_clean():
    assert compare(BASE, copy.deepcopy(BASE)) == []


def test_every_kind_of_difference_is_named():
    cur = copy.deepcopy(BASE)
    cur["claims"]["a"]["numbers"]["x"] = 1.0 + 1e-3
    cur["claims"]["a"]["numbers"]["z"] = 2.0
    cur["claims"]["a"]["verdict"] = "inconclusive"
    del cur["claims"]["b"]
    cur["claims"]["c"] = {"verdict": "reproduced", "numbers": {}}
    problems = "\n".join(compare(BASE, cur))
    assert "a: x moved: 1.0 -> 1.001" in problems
    assert "a: z moved: None -> 2.0" in problems
    assert "a: verdict changed: 'reproduced' -> 'inconclusive'" in problems
    assert "b: in the baseline, missing from this run" in problems
    assert "c: new in this run" in problems


def test_tolerance_is_stated_and_applied():
    cur = copy.deepcopy(BASE)
    cur["claims"]["a"]["numbers"]["x"] = 1.0 + 1e-8
    assert compare(BASE, cur) == []  # within the default rtol 1e-6
    assert compare(BASE, cur, rtol=1e-12, atol=0) != []


PLATFORM = {"torch": "2.14.1", "cpu_kernels": "pinned", "level": "avx2", "settings": {"ATEN_CPU_CAPABILITY": "avx2"},
            "aten_capability": "AVX2", "threads": 1, "cpu_isa": "avx512", "cpu_vendor": "AuthenticAMD",
            "os": "linux", "arch": "x86_64"}
STAT = {"scale": "smoke", "platform": PLATFORM, "claims": {
    "a": {"verdict": "reproduced", "numbers": {"acc_mean": 0.90, "seed0.loss": 1.0, "seed1.loss": 1.2,
                                               "seed2.loss": 1.1, "barrier": 0.5, "exact": 3.0},
          "uncertainty": {"acc_mean": 0.01},
          "comparisons": [{"name": "acc > chance", "mean": 0.02, "se": 0.01, "verdict": "reproduced"}]},
}}


def test_the_platform_decides_the_mode_and_the_output_says_why():
    same, why = same_platform(PLATFORM, dict(PLATFORM, cpu_isa="avx2"))
    assert same and "kernels pinned to avx2 on AuthenticAMD" in why  # pinned: the instruction set does not matter
    same, why = same_platform(PLATFORM, dict(PLATFORM, cpu_vendor="GenuineIntel"))  # the vendor does (measured)
    assert not same and "cpu_vendor 'AuthenticAMD' -> 'GenuineIntel'" in why
    same, why = same_platform(PLATFORM, dict(PLATFORM, scipy="1.17.1"))  # a baseline without library versions
    assert not same and "scipy None -> '1.17.1'" in why
    same, why = same_platform(PLATFORM, dict(PLATFORM, torch="2.15.0", threads=2))
    assert not same and "torch '2.14.1' -> '2.15.0'" in why and "threads 1 -> 2" in why
    native = dict(PLATFORM, cpu_kernels="native", level=None)
    assert same_platform(native, native)[0]
    same, why = same_platform(native, dict(native, cpu_isa="avx2"))  # native: the CPU matters
    assert not same and "cpu_isa 'avx512' -> 'avx2'" in why
    assert same_platform(None, PLATFORM) == (False, "the baseline records no platform")
    assert check(STAT, copy.deepcopy(STAT)).mode == "bitwise"
    other = copy.deepcopy(STAT)
    other["platform"]["cpu_kernels"] = "native"
    outcome = check(STAT, other)
    assert outcome.mode == "statistical" and "cpu_kernels 'pinned' -> 'native'" in outcome.reason and outcome.ok


def test_statistical_tolerances_come_from_what_the_claim_measured():
    base = STAT["claims"]["a"]
    sd = 0.1  # of the seed family 1.0, 1.2, 1.1
    tol, why = tolerance("acc_mean", base, base, {})
    assert tol == pytest.approx(4 * 0.01 * 2 ** 0.5) and "standard error" in why  # both runs' se: 0.01 each
    tol, why = tolerance("seed1.loss", base, base, {})
    assert tol == pytest.approx(4 * sd * 2 ** 0.5) and "seed spread" in why
    tol, why = tolerance("barrier", base, base, {"bar*": {"abs": 0.05}})
    assert tol == 0.05 and why == "declared abs 0.05"
    assert tolerance("barrier", base, base, {"bar*": {"rel": 0.1}})[0] == pytest.approx(0.05)
    assert tolerance("barrier", base, base, {}) is None


def test_statistical_mode_passes_noise_and_fails_a_real_move_naming_claim_and_number():
    cur = copy.deepcopy(STAT)
    n = cur["claims"]["a"]["numbers"]
    n["acc_mean"] += 0.04  # 2.8 standard errors of a difference: noise at Z = 4
    n["seed2.loss"] += 0.3  # 2.1 seed spreads of a difference
    assert check(STAT, cur, mode="statistical").ok
    n["acc_mean"] += 0.03  # 5 standard errors
    n["exact"] += 1e-3  # no uncertainty known: compared bitwise
    outcome = check(STAT, cur, mode="statistical")
    text = "\n".join(outcome.failures)
    assert "a: acc_mean moved by +0.07 (0.9 -> 0.97" in text and "more than its tolerance 0.0566" in text
    assert "a: exact moved: 3.0 -> 3.001 (no uncertainty known, so compared bitwise: declare" in text
    assert len(outcome.failures) == 2


def test_a_verdict_at_the_edge_is_reported_with_its_margin_not_failed():
    cur = copy.deepcopy(STAT)
    cur["claims"]["a"]["verdict"] = "inconclusive"
    cur["claims"]["a"]["comparisons"][0].update(mean=0.005, se=0.008, verdict="inconclusive")
    outcome = check(STAT, cur, mode="statistical")
    assert outcome.ok and len(outcome.notices) == 1
    assert ("a: verdict changed: 'reproduced' -> 'inconclusive'; margin: acc > chance: mean +0.02 (se 0.01, "
            "reproduced) -> +0.005 (se 0.008, inconclusive)") in outcome.notices[0]
    cur["claims"]["a"]["numbers"]["acc_mean"] = 0.5  # and with a number beyond its tolerance it fails
    assert any("verdict changed" in f for f in check(STAT, cur, mode="statistical").failures)
    assert not check(STAT, cur).ok  # same platform: bitwise, the verdict change alone fails


def test_collect_reads_the_decided_parts_as_the_comparisons_a_notice_names(tmp_path):
    claim = tmp_path / "smoke" / "claims" / "a"
    claim.mkdir(parents=True)
    part = {"name": "gap F1", "estimate": 0.12, "se": 0.04, "verdict": "reproduced", "lower": 0.05, "upper": 0.2}
    entry = {"id": "a", "verdict": "reproduced", "numbers": {"x": 1.0}, "decisions": [part], "platform": PLATFORM}
    (claim / "verdict.json").write_text(json.dumps(entry))
    got = collect(tmp_path / "smoke")["claims"]["a"]["comparisons"]
    assert got == [{"name": "gap F1", "mean": 0.12, "se": 0.04, "verdict": "reproduced"}]


def test_the_cli_says_which_mode_ran(tmp_path, capsys):
    results = tmp_path / "smoke"
    for cid, claim in STAT["claims"].items():
        (results / "claims" / cid).mkdir(parents=True)
        entry = {"id": cid, **claim, "platform": PLATFORM}
        (results / "claims" / cid / "verdict.json").write_text(json.dumps(entry))
    baseline = tmp_path / "baseline.json"
    assert regression_main(["update", str(results), str(baseline)]) == 0
    assert json.loads(baseline.read_text())["platform"] == PLATFORM
    assert regression_main(["check", str(results), str(baseline)]) == 0
    assert "bitwise comparison: the platforms match (torch 2.14.1, kernels pinned to avx2" in capsys.readouterr().out
    moved = json.loads(baseline.read_text())
    moved["platform"]["torch"] = "2.13.0"
    baseline.write_text(json.dumps(moved))
    assert regression_main(["check", str(results), str(baseline)]) == 0
    assert "statistical comparison: the platforms differ: torch '2.13.0' -> '2.14.1'" in capsys.readouterr().out


def test_noise_between_two_platforms_suggests_tolerances_per_family():
    assert family("d20.noskip.nonconvex_fraction") == "*.noskip.nonconvex_fraction"
    assert family("K0.25.length_ratio") == "*.length_ratio" and family("seed3.test_white_acc") == "*.test_white_acc"
    assert family("loss_factor") == "loss_factor"

    def run(values):
        return {"claims": {"c": {"verdict": "reproduced", "numbers": values, "uncertainty": {"m_mean": 0.1},
                                 "comparisons": []}}}
    a = run({"A.barrier": 1.0, "B.barrier": 2.0, "C.barrier": 3.0, "m_mean": 5.0, "exact": 7.0,
             "seed0.acc": 0.5, "seed1.acc": 0.7})
    b = run({"A.barrier": 1.03, "B.barrier": 1.96, "C.barrier": 3.0, "m_mean": 9.0, "exact": 7.0,
             "seed0.acc": 0.9, "seed1.acc": 0.1})
    noise = kernel_noise(a, [b])
    # the barriers' family: three samples of the noise (one of them 0); means and seed families have their own
    # error bars, and a number that did not move has no family of its own
    assert set(noise) == {"c"} and set(noise["c"]) == {"*.barrier"}
    fam = noise["c"]["*.barrier"]
    rms = math.sqrt((0.03 ** 2 + 0.04 ** 2) / 3)
    assert fam["n"] == 3 and fam["rms"] == pytest.approx(rms) and fam["max"] == pytest.approx(0.04)
    assert fam["abs"] >= 4 * rms and fam["abs"] == pytest.approx(4 * rms, rel=0.1)
    # declared, it lets the noise through and fails a real move
    declared = {"c": {"*.barrier": {"abs": fam["abs"]}}}
    b["claims"]["c"]["numbers"].update(m_mean=5.0, **{"seed0.acc": 0.5, "seed1.acc": 0.7})
    assert check(a, b, declared, mode="statistical").ok
    b["claims"]["c"]["numbers"]["B.barrier"] = 2.2
    assert check(a, b, declared, mode="statistical").failures == [
        f"c: B.barrier moved by +0.2 (2.0 -> 2.2), more than its tolerance {fam['abs']:.3g} (declared abs "
        f"{fam['abs']:g})"]


@pytest.mark.dag
def test_a_changed_recipe_fails_the_comparison_and_names_the_numbers(small_dag, tmp_path):
    """The test of the test: momentum 0.9 -> 0.5 in the ablation moves its numbers, and only those."""
    workdir, cfg = small_dag
    baseline = tmp_path / "baseline.json"
    assert regression_main(["update", str(workdir / "results" / "smoke"), str(baseline)]) == 0
    assert regression_main(["check", str(workdir / "results" / "smoke"), str(baseline)]) == 0

    changed = yaml.safe_load(cfg.read_text())
    changed["experiments"]["ablation"]["recipe"]["momentum"] = 0.5
    cfg2 = tmp_path / "changed.yaml"
    cfg2.write_text(yaml.safe_dump(changed))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(cfg2))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    problems = compare(json.loads(baseline.read_text()), collect(workdir / "results" / "smoke"))
    assert problems, "a changed recipe must move the reproduced numbers"
    assert any(p.startswith("resnet56-ingredient-ablation: full.test_acc_mean moved") for p in problems), problems
    assert all(p.startswith("resnet56-ingredient-ablation") for p in problems), problems
    # put the small DAG back as it was for other tests
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(cfg))
    assert proc.returncode == 0


SMOKE = yaml.safe_load((ROOT / "config" / "scales" / "smoke.yaml").read_text())

# claims whose numbers come from conv nets (oneDNN), MLPs (MKL), every ATen kernel and Lanczos (OpenBLAS)
KERNEL_CLAIMS = ("resnet56-ingredient-ablation", "bottou-sgd-beats-gd", "batchsize-larger-outliers",
                 "mse-vs-cross-entropy")
# what another machine's kernels would be, simulated on this one: ATen's baseline level, oneDNN at SSE4.1, OpenBLAS
# for Core 2
OTHER_MACHINE = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "OPENBLAS_CORETYPE": "Core2"}


def _run_claims(workdir, cfg, claims, *config: str, machine: dict[str, str] | None = None):
    """Run only ``claims`` of the small DAG in ``workdir`` in an environment with ``machine``'s kernel settings
    and none of this test process's pin; returns the collected results of those claims."""
    env = {k: v for k, v in os.environ.items() if k not in (*cpu_kernels.VARIABLES, cpu_kernels.MODE_ENV)}
    env.update(machine or {})
    targets = [f"results/smoke/claims/{c}/verdict.json" for c in claims]
    proc = snakemake(workdir, *targets, "--cores", "2", "--configfile", str(cfg),
                     *(["--config", *config] if config else []), env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return collect(workdir / "results" / "smoke")


def _only(results, claims):
    return {**results, "claims": {c: results["claims"][c] for c in claims}}


@pytest.mark.dag
@pytest.mark.skipif(cpu_kernels.level_for() != "avx2", reason="needs an AVX2 CPU to compare kernel levels")
def test_pinned_runs_agree_bit_for_bit_and_unpinned_ones_statistically(small_dag, tmp_path):
    """On another machine's kernel choice (simulated), the pinned run gives the small DAG's numbers bit for bit;
    without the pin the numbers differ, the bitwise check fails and the statistical one passes."""
    workdir, cfg = small_dag
    reference = _only(collect(workdir / "results" / "smoke"), KERNEL_CLAIMS)
    pinned = _run_claims(tmp_path / "pinned", cfg, KERNEL_CLAIMS, machine=OTHER_MACHINE)
    outcome = check(reference, pinned, rtol=0.0, atol=0.0)  # the very same bits, not merely within 1e-6
    assert outcome.mode == "bitwise" and outcome.ok, outcome.failures

    native = _run_claims(tmp_path / "native", cfg, KERNEL_CLAIMS, "cpu_kernels=native", machine=OTHER_MACHINE)
    assert native["platform"]["cpu_kernels"] == "native" and native["platform"]["aten_capability"] == "DEFAULT"
    # the kernels matter: other low bits (at this tiny scale, two epochs, mostly below the bitwise mode's rtol 1e-6;
    # on the whole smoke DAG they move 186 numbers beyond it)
    bitwise = check(reference, native, mode="bitwise", rtol=0.0, atol=0.0)
    assert len(bitwise.failures) >= 5, bitwise.failures
    outcome = check(reference, native)
    assert outcome.mode == "statistical" and "cpu_kernels 'pinned' -> 'native'" in outcome.reason
    assert outcome.ok, outcome.failures


@pytest.mark.dag
def test_an_injected_change_fails_both_modes_naming_the_claim_and_its_numbers(small_dag, tmp_path):
    """The test of the check (a check that passes both ways proves nothing), with the issue's two example changes
    in the small DAG's Keskar experiment (Adam, 3 epochs on 400 digits, two seeds, every arm still learning):
    one fewer epoch fails the statistical mode too; a learning rate 20% lower fails the bitwise mode (what CI runs
    on any x86-64 CPU with the pin) but is within the statistical mode's resolution here, 4 standard errors of a
    two-seed difference (measured: it passes; README, Regression)."""
    workdir, cfg = small_dag
    claim = "keskar-lb-generalization-gap"
    reference = _only(collect(workdir / "results" / "smoke"), (claim,))
    for change, statistical_too in (({"epochs": SMALL["experiments"]["keskar"]["recipe"]["epochs"] - 1}, True),
                                    ({"lr": 0.8 * SMOKE["experiments"]["keskar"]["recipe"]["lr"]}, False)):
        changed = copy.deepcopy(SMALL)
        changed["experiments"]["keskar"]["recipe"].update(change)
        cfg2 = tmp_path / f"{next(iter(change))}.yaml"
        cfg2.write_text(yaml.safe_dump(changed))
        result = _only(_run_claims(tmp_path / cfg2.stem, cfg2, (claim,)), (claim,))
        bitwise = check(reference, result)
        assert bitwise.mode == "bitwise" and not bitwise.ok, change
        assert any(f.startswith(f"{claim}: keskar.SB.train_acc_mean moved") for f in bitwise.failures), bitwise
        if statistical_too:
            outcome = check(reference, result, mode="statistical")
            assert not outcome.ok and all(f.startswith(f"{claim}: ") for f in outcome.failures), outcome
            assert any(f.startswith(f"{claim}: keskar.SB.train_acc_mean moved by -") and "more than its tolerance"
                       in f for f in outcome.failures), outcome.failures


SKIP_FULL = pytest.mark.skipif(os.environ.get("LOSSLAB_SKIP_FULL_SMOKE") == "1", reason="LOSSLAB_SKIP_FULL_SMOKE=1")


@pytest.fixture(scope="module")
def full_smoke(tmp_path_factory):
    """The whole smoke DAG from scratch (2 cores, 1 torch thread per job)."""
    root = tmp_path_factory.mktemp("full_smoke")
    proc = snakemake(root, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "results" / "smoke"


@pytest.mark.dag
@SKIP_FULL
def test_smoke_dag_reproduces_the_committed_baseline(full_smoke):
    """The whole smoke DAG from scratch, compared with results/baselines/smoke.json as `regression check` compares
    it: bitwise (every number within rtol 1e-6, every verdict exactly) on the baseline's platform, which with the
    kernel pin is any x86-64 CPU with AVX2 and torch 2.14.1; statistically elsewhere. After an intended change,
    update the baseline with
    `python -m losslab.pipeline.regression update results/smoke results/baselines/smoke.json`."""
    baseline = json.loads((ROOT / "results" / "baselines" / "smoke.json").read_text())
    outcome = check(baseline, collect(full_smoke), declared_tolerances(ROOT / "config" / "claims.yaml"))
    print(f"{outcome.mode} comparison: {outcome.reason}", *outcome.notices, sep="\n")
    assert outcome.ok, f"{outcome.mode} comparison ({outcome.reason}):\n" + "\n".join(outcome.failures)


@pytest.mark.dag
@SKIP_FULL
def test_the_whole_smoke_dag_twice_gives_byte_identical_results(full_smoke, tmp_path):
    """A second run of the whole smoke DAG, compared file by file with the first as tests/pipeline/test_determinism.py
    compares two small runs: metrics, tables, verdicts, the report, weights and figures byte for byte, HDF5 and
    npz arrays bitwise (only clock readings, Snakemake's benchmarks and internal checkpoints are left out)."""
    from .test_determinism import differences

    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = differences(full_smoke, tmp_path / "results" / "smoke")
    assert not problems, f"{len(problems)} differences between two runs:\n  " + "\n  ".join(problems[:40])
