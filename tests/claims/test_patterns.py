"""Tests for losslab.claims.patterns: run seeds and checkpoint keys, the resumable per-job runner, the two claims'
verdict logic on synthetic runs (reproduced / not reproduced / inconclusive), their tables and figures, and the
scales' `patterns` blocks against the schema. Tiny models; seconds."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from losslab import io as lio
from losslab.claims import patterns as pc
from losslab.core import patterns as pt
from losslab.claims.verdicts import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from losslab.pipeline.config import resolve
from losslab.pipeline.registry import load_registry, registry_entry

ROOT = Path(__file__).resolve().parents[2]

JOB = {
    "architecture": "plain", "pattern_key": "p0.5",
    "dataset": {"name": "digits", "preprocessing": ["normalize"], "n_train": 200, "n_test": 100},
    "model": {"name": "mlp", "widths": [8]},
    "mpo": {"steps": 6, "lr": 0.01, "batch_size": 32, "cells_per_step": 4, "ckpt_every": 2, "n_eval_train": 60},
    "pattern": {"kind": "random", "size": 3, "p": 0.5},
}
PICTURE_CHECK = {"rule": "picture rule", "min_black_acc": 0.7, "max_white_acc": 0.4, "min_corr": 0.9}
BN_CHECK = {"rule": "bn rule", "min_agree": 0.8}
_REGISTRY = load_registry(ROOT / "config" / "claims.yaml")
PICTURE_DECISION = registry_entry(_REGISTRY, "mpo-arbitrary-patterns")["decision"]
BN_DECISION = registry_entry(_REGISTRY, "mpo-bn-harder-to-fit")["decision"]
PICTURE_PARTS = ["black_low_loss", "white_high_loss", "train_test_agree"]


# ---------------------------------------------------------------- seeds, configs, patterns

def test_run_seed_fixes_init_seeds_and_checkpoint_key():
    assert pc.init_seeds(0) == (0, 1, 2) and pc.init_seeds(2) == (6, 7, 8)
    config = pc.mpo_config({"lr": 0.01, "cap": 2.5}, seed=1)
    assert config.init_seeds == (3, 4, 5) and config.cap == 2.5
    with pytest.raises(ValueError, match="init_seeds"):
        pc.mpo_config({"init_seeds": [0, 1, 2]}, seed=0)
    with pytest.raises(ValueError, match="unknown key"):
        pc.mpo_config({"learning_rate": 0.1}, seed=0)
    key = pc.checkpoint_key(JOB, 0)
    assert key == pc.checkpoint_key(json.loads(json.dumps(JOB)), 0)
    assert key == pc.checkpoint_key({**JOB, "mpo": {**JOB["mpo"], "steps": 60, "n_eval_train": 10}}, 0)
    assert key != pc.checkpoint_key(JOB, 1)
    assert key != pc.checkpoint_key({**JOB, "mpo": {**JOB["mpo"], "lr": 0.02}}, 0)
    assert key != pc.checkpoint_key({**JOB, "model": {"name": "mlp", "widths": [8], "bn": True}}, 0)
    assert pc.pattern_key(0.3) == "p0.3" and pc.pattern_key(0.25) == "p0.25"


def test_random_masks_follow_the_run_seed_and_nest_across_p():
    spec = {"kind": "random", "size": 10}
    a = pc.run_pattern({**spec, "p": 0.3}, seed=4)
    assert np.array_equal(a, pt.random_mask(10, 0.3, 4))
    assert not np.array_equal(a, pc.run_pattern({**spec, "p": 0.3}, seed=5))
    b = pc.run_pattern({**spec, "p": 0.7}, seed=4)
    assert bool((b >= a).all()) and b.sum() > a.sum()  # the same draws: black at 0.3 stays black at 0.7
    smiley = {"kind": "shape", "name": "smiley", "size": 12}
    assert np.array_equal(pc.run_pattern(smiley, 0), pc.run_pattern(smiley, 7))  # pictures ignore the seed


# ---------------------------------------------------------------- the job runner

def test_run_job_writes_every_seed_and_resumes_from_checkpoints(tmp_path):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    first = pc.run_job(JOB, [0, 1], out, ckpt)
    assert [r["seed"] for r in first] == [0, 1] and all(r["steps"] == 6 for r in first)
    assert [r["seed"] for r in pc.read_job(out)] == [0, 1]
    r0 = first[0]
    assert r0["init_seeds"] == [0, 1, 2] and r0["p"] == 0.5 and r0["batchnorm"] is False
    assert r0["mpo"]["cap"] == 2.5 and r0["shape"] == [3, 3]
    for key in ("test_black_acc", "test_white_acc", "test_acc_gap", "train_test_corr_acc"):
        assert key in r0
    pattern, maps = pc.read_maps(out / "seed0")
    assert np.array_equal(pattern, pt.random_mask(3, 0.5, 0)) and maps.test_acc.shape == (3, 3)
    assert len(lio.read_json(out / "seed1" / "metrics.json")) == len([k for k in r0 if k not in lio.TIMING_KEYS])
    assert (out / "seed0" / "history.csv").read_text().count("\n") == 7  # header + 6 steps
    assert len(list(ckpt.glob("*.pt"))) == 2

    # a rerun (the job's output deleted, its checkpoints kept) resumes at the last step: same maps
    again = pc.run_job(JOB, [0, 1], tmp_path / "again", ckpt)
    assert [r["test_acc_gap"] for r in again] == [r["test_acc_gap"] for r in first]
    assert [r["fit_seconds_total"] for r in again] == [r["fit_seconds_total"] for r in first]  # no new steps
    longer = pc.run_job({**JOB, "mpo": {**JOB["mpo"], "steps": 8}}, [0], tmp_path / "longer", ckpt)
    assert longer[0]["steps"] == 8
    assert len(list(ckpt.glob("*.pt"))) == 2  # more steps continue the same checkpoint


def test_run_job_with_batchnorm_records_it(tmp_path):
    job = {**JOB, "architecture": "bn", "model": {"name": "mlp", "widths": [8], "bn": True},
           "mpo": {**JOB["mpo"], "steps": 2, "gamma_shift": 0.5}}
    (rec,) = pc.run_job(job, [0], tmp_path / "bn", tmp_path / "ckpt")
    assert rec["batchnorm"] is True and rec["mpo"]["gamma_shift"] == 0.5
    assert np.isfinite(rec["test_acc_gap"])


# ---------------------------------------------------------------- synthetic runs for the claims

def write_seed(job_dir: Path, seed: int, pattern: np.ndarray, train_acc: np.ndarray, test_acc: np.ndarray,
               p: float | None = None, batchnorm: bool = False, diverged: bool = False) -> None:
    maps = pt.PatternMaps(train_loss=2.0 - 2.0 * train_acc, train_acc=train_acc, test_loss=2.0 - 2.0 * test_acc,
                          test_acc=test_acc)
    d = job_dir / f"seed{seed}"
    maps.save(d / "maps.npz", pattern=pattern)
    metrics = pt.fit_metrics(pattern, maps)
    record = {"architecture": "bn" if batchnorm else "plain", "pattern_key": job_dir.name,
              "pattern": {"kind": "random", "size": pattern.shape[0], "p": p} if p is not None
              else {"kind": "shape", "name": "smiley", "size": pattern.shape[0]},
              "p": p, "seed": seed, "shape": list(pattern.shape), "black_fraction": float(pattern.mean()),
              "steps": 10, "diverged": diverged, "batchnorm": batchnorm, **metrics}
    lio.write_json(d / "metrics.json", record)


def fitted(pattern: np.ndarray, black: float, white: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.where(pattern == 1, black, white) + rng.normal(0, noise, pattern.shape), 0, 1)


def picture_job(tmp_path: Path, black: float, white: float, seeds=(0, 1), diverged_seed=None) -> Path:
    job = tmp_path / "plain" / "picture"
    pattern = pt.shape_pattern("smiley", 8)
    for s in seeds:
        write_seed(job, s, pattern, fitted(pattern, black, white, 0.02, s), fitted(pattern, black, white, 0.03, 10 + s),
                   diverged=s == diverged_seed)
    return job


@pytest.mark.parametrize("black, white, diverged_seed, verdict, failing", [
    (0.9, 0.1, None, REPRODUCED, None),
    (0.9, 0.5, None, NOT_REPRODUCED, "white_high_loss"),   # white cells too accurate
    (0.4, 0.1, None, NOT_REPRODUCED, "black_low_loss"),    # black cells not accurate enough
    (0.9, 0.1, 1, INCONCLUSIVE, None),                     # one seed diverged: every part misses a value
])
def test_picture_claim_verdicts(tmp_path, black, white, diverged_seed, verdict, failing):
    job = picture_job(tmp_path, black, white, diverged_seed=diverged_seed)
    draw = diverged_seed is not None  # one figure is enough (drawing takes seconds): the one with a NaN seed
    res = pc.picture_claim(job, PICTURE_CHECK, PICTURE_DECISION, "smoke", tmp_path / "claim", figure=draw)
    assert res.verdict == verdict, res.notes
    assert res.n_seeds == 2 and res.rule.startswith("pre-registered decision")
    assert [d["name"] for d in res.decisions] == PICTURE_PARTS
    if failing:
        assert {d["name"]: d["verdict"] for d in res.decisions}[failing] == NOT_REPRODUCED
    if diverged_seed is None:
        assert res.numbers["seed0.test_black_acc"] == pytest.approx(black, abs=0.05)
        assert res.numbers["seed0.train_test_corr_acc"] > 0.9
        assert res.numbers["effect.white_high_loss.estimate"] == pytest.approx(-white, abs=0.05)
    else:
        assert math.isnan(res.numbers["seed1.test_black_acc"])
        assert all(d["verdict"] == INCONCLUSIVE for d in res.decisions)
    assert res.regime.startswith("net without BN: 10 MPO steps, train acc black/white")
    for name in ("table.csv", "table.md") + (("figure.png", "figure.pdf") if draw else ()):
        assert (tmp_path / "claim" / name).stat().st_size > 0
    assert "train_loss_black" in (tmp_path / "claim" / "table.md").read_text()
    assert len(res.figures) == (2 if draw else 0)


def test_picture_claim_with_one_seed_is_inconclusive(tmp_path):
    """The smoke scale fits the picture once: one replicate, no confidence bound."""
    job = picture_job(tmp_path, 0.9, 0.1, seeds=(0,))
    res = pc.picture_claim(job, PICTURE_CHECK, PICTURE_DECISION, "smoke", tmp_path / "claim", figure=False)
    assert res.verdict == INCONCLUSIVE
    assert [d["name"] for d in res.decisions] == PICTURE_PARTS
    assert all(d["verdict"] == INCONCLUSIVE and d["n"] == 1 for d in res.decisions)


def test_picture_claim_needs_train_and_test_maps_to_agree(tmp_path):
    job = tmp_path / "plain" / "picture"
    pattern = pt.shape_pattern("ring", 8)
    rng = np.random.default_rng(0)
    for s in (0, 1):  # black/white levels right on the test split, but the test map unrelated to the train map
        test = fitted(pattern, 0.9, 0.1, 0.02, s)
        train = np.clip(0.5 + rng.normal(0, 0.2, pattern.shape), 0, 1)
        write_seed(job, s, pattern, train, test)
    res = pc.picture_claim(job, PICTURE_CHECK, PICTURE_DECISION, "smoke", tmp_path / "claim", figure=False)
    assert res.verdict == NOT_REPRODUCED
    assert {d["name"]: d["verdict"] for d in res.decisions}["train_test_agree"] == NOT_REPRODUCED
    assert res.numbers["seed0.train_test_corr_acc"] < 0.9


def bn_jobs(tmp_path: Path, ps, gaps_plain, gaps_bn, white_plain=0.2, white_bn=0.3, seeds=(0, 1, 2),
            nan_at=None) -> tuple[list[Path], list[Path]]:
    """One job directory per (architecture, p) whose test maps have exactly the given black-white gaps
    (plus a per-seed jitter that keeps the ordering)."""
    dirs = {"plain": [], "bn": []}
    for arch, gaps, white in (("plain", gaps_plain, white_plain), ("bn", gaps_bn, white_bn)):
        for p, gap in zip(ps, gaps):
            job = tmp_path / arch / pc.pattern_key(p)
            for s in seeds:
                pattern = pt.random_mask(6, p, s)
                if pattern.all() or not pattern.any():
                    pattern[0, 0] = 1 - pattern[0, 0]
                w = white + 0.01 * s
                acc = np.where(pattern == 1, w + gap, w).astype(float)
                write_seed(job, s, pattern, acc, acc, p=p, batchnorm=arch == "bn",
                           diverged=(arch, p, s) == nan_at)
            dirs[arch].append(job)
    return dirs["plain"], dirs["bn"]


BN_PARTS = ["gap_smaller_with_bn", "bn_scores_higher"]


def test_bn_claim_reproduced_when_bn_gap_smaller_at_every_p_and_white_higher(tmp_path):
    ps = [0.1, 0.5, 0.9]
    plain, bn = bn_jobs(tmp_path, ps, [0.45, 0.31, 0.34], [0.30, 0.22, 0.24])
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "claim", figure=False)
    assert res.verdict == REPRODUCED, res.notes
    assert [d["name"] for d in res.decisions] == BN_PARTS and res.n_seeds == 3
    assert res.numbers["effect.gap_smaller_with_bn.estimate"] == pytest.approx((0.15 + 0.09 + 0.10) / 3)
    assert res.numbers["effect.bn_scores_higher.estimate"] == pytest.approx(0.1)
    assert res.numbers["p0.1.plain.gap_mean"] == pytest.approx(0.45)
    assert res.numbers["p0.9.bn.gap_mean"] == pytest.approx(0.24)
    assert res.numbers["white_acc_mean_over_p.bn"] > res.numbers["white_acc_mean_over_p.plain"]
    assert "net without BN: 10 MPO steps" in res.regime and "net with BN: 10 MPO steps" in res.regime
    table = (tmp_path / "claim" / "table.md").read_text()
    assert "0.462" in table and "0.308" in table  # the paper's digitized values beside the measured ones
    assert "steps without/with BN" in table and "train_acc_white without/with BN" in table
    assert (tmp_path / "claim" / "table.csv").stat().st_size > 0 and res.figures == []


def test_bn_claim_not_reproduced_when_bn_gap_larger_or_white_lower(tmp_path):
    plain, bn = bn_jobs(tmp_path / "a", [0.1, 0.5], [0.25, 0.20], [0.40, 0.35])
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "a" / "claim", figure=False)
    assert res.verdict == NOT_REPRODUCED
    assert [d["verdict"] for d in res.decisions] == [NOT_REPRODUCED, REPRODUCED]
    plain, bn = bn_jobs(tmp_path / "b", [0.1, 0.5], [0.45, 0.31], [0.30, 0.22], white_plain=0.4, white_bn=0.2)
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "b" / "claim", figure=False)
    assert res.verdict == NOT_REPRODUCED and [d["verdict"] for d in res.decisions] == [REPRODUCED, NOT_REPRODUCED]


def test_bn_claim_decides_the_gap_averaged_over_p(tmp_path):
    """Reversed at one p but smaller with BN on average: the pre-registered effect is the mean over p."""
    plain, bn = bn_jobs(tmp_path / "a", [0.1, 0.5], [0.50, 0.20], [0.30, 0.25])
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "a" / "claim", figure=False)
    assert res.numbers["effect.gap_smaller_with_bn.estimate"] == pytest.approx(0.075)
    assert res.decisions[0]["verdict"] == REPRODUCED
    # a mean difference below the smallest effect of interest (0.0565), without spread: shown too small
    plain, bn = bn_jobs(tmp_path / "b", [0.1, 0.5], [0.45, 0.20], [0.30, 0.25])
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "b" / "claim", figure=False)
    assert res.numbers["effect.gap_smaller_with_bn.estimate"] == pytest.approx(0.05)
    assert res.decisions[0]["verdict"] == NOT_REPRODUCED


def test_bn_claim_inconclusive_when_a_run_diverged_or_one_seed(tmp_path):
    plain, bn = bn_jobs(tmp_path / "a", [0.3, 0.7], [0.4, 0.3], [0.3, 0.2], nan_at=("bn", 0.7, 1))
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "a" / "claim", figure=True)  # NaN bands
    assert res.verdict == INCONCLUSIVE
    assert [d["name"] for d in res.decisions] == BN_PARTS
    assert [d["verdict"] for d in res.decisions] == [INCONCLUSIVE, INCONCLUSIVE]
    assert [Path(f).name for f in res.figures] == ["figure.png", "figure.pdf"]
    assert all(Path(f).stat().st_size > 0 for f in res.figures)
    plain, bn = bn_jobs(tmp_path / "b", [0.3, 0.7], [0.4, 0.3], [0.3, 0.2], seeds=(0,))
    res = pc.bn_claim(plain, bn, BN_CHECK, BN_DECISION, "smoke", tmp_path / "b" / "claim", figure=False)
    assert res.verdict == INCONCLUSIVE and all(d["n"] == 1 for d in res.decisions)


def test_bn_claim_refuses_mismatched_runs(tmp_path):
    plain, bn = bn_jobs(tmp_path / "a", [0.3, 0.7], [0.4, 0.3], [0.3, 0.2])
    with pytest.raises(ValueError, match="different p"):
        pc.bn_claim(plain, bn[:1], BN_CHECK, BN_DECISION, "smoke", tmp_path / "claim")
    with pytest.raises(ValueError, match="batch norm"):
        pc.bn_claim(bn, plain, BN_CHECK, BN_DECISION, "smoke", tmp_path / "claim")


# ---------------------------------------------------------------- the scales' patterns blocks

@pytest.mark.parametrize("scale", ["smoke", "desk", "cpu", "paper"])
def test_every_scale_has_a_valid_patterns_block(scale):
    cfg = resolve({"scale": scale, "data_dir": "/x"}, root=ROOT)
    pat = cfg["patterns"]
    assert pat["mpo"]["cap"] == 2.5  # the paper's text
    assert not pat["architectures"]["plain"].get("bn", False) and pat["architectures"]["bn"]["bn"] is True
    assert len(pat["random"]["seeds"]) >= 3 and len(pat["random"]["p"]) >= 3
    pt.make_pattern(pat["picture"]["pattern"])  # drawn without downloads
    for section in ("picture", "random"):
        pc.mpo_config({**pat["mpo"], **pat[section].get("mpo", {})}, seed=0)  # valid MPOConfig settings


def test_schema_refuses_unknown_and_bad_patterns_keys():
    from losslab.pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="patterns.mpo"):
        resolve({"scale": "smoke", "patterns": {"mpo": {"learning_rate": 0.1}}}, root=ROOT)
    with pytest.raises(ConfigError, match="patterns.random.p"):
        resolve({"scale": "smoke", "patterns": {"random": {"p": [0.5, 1.0]}}}, root=ROOT)
    with pytest.raises(ConfigError, match="patterns.picture.pattern"):
        resolve({"scale": "smoke", "patterns": {"picture": {"pattern": {"kind": "shape", "name": "photo",
                                                                         "size": 12}}}}, root=ROOT)
