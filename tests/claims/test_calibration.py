"""Calibration of the pre-registered verdicts (losslab.claims.inference, losslab.claims.verdicts.decide/combine).

The simulations draw per-seed effects from a normal distribution with a fixed NumPy seed and count how often each
verdict comes out. A rate is checked against its target with a Monte-Carlo allowance of three standard errors
(``3 * sqrt(p (1 - p) / reps)``), so a test fails by chance about once in a thousand runs of an unchanged library,
and never with the fixed seeds here. The large simulations compute the t bounds of 20000 datasets at once with
:func:`losslab.claims.inference.t_bounds`, the function :func:`losslab.claims.inference.mean_interval` uses, and
:func:`test_decide_applies_the_rule_to_the_bounds` ties :func:`decide` to those bounds; the multi-part and
bootstrap simulations call the library itself in a loop on fewer datasets. The last simulations show why the rule
changed: the old rule (``old_paired`` below, the project's rule before issue #18) fails the same checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from losslab.claims.inference import (BOOTSTRAP_MIN_N, holm, holm_adjust, mean_interval, power, seeds_for_power,
                                      t_bounds, welch_interval)
from losslab.claims.verdicts import (INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, ClaimResult, Preregistration, combine,
                                     decide, decide_estimate, decide_tolerance)
from losslab.pipeline.regression import collect

ALPHA = 0.05
MARGIN, SESOI, SD = 0.0, 1.0, 2.0  # a standardised smallest effect of 0.5: power climbs over n = 3 ... 20
PREREG = Preregistration(effect="gain", unit="pp", margin=MARGIN, sesoi=SESOI, alpha=ALPHA)
REPS = 20000


def mc_allowance(p: float, reps: int) -> float:
    """Three Monte-Carlo standard errors of a rate ``p`` estimated from ``reps`` datasets."""
    return 3 * math.sqrt(p * (1 - p) / reps)


def simulated_bounds(mu: float, n: int, seed: int, reps: int = REPS, sd: float = SD) -> tuple[np.ndarray, np.ndarray]:
    """The one-sided t bounds of ``reps`` simulated datasets of ``n`` normal effects (mean ``mu``)."""
    x = np.random.default_rng(seed).normal(mu, sd, size=(reps, n))
    return t_bounds(x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n), n - 1, ALPHA)


# ---------------------------------------------------------------- levels and power of the t rule -----------------

@pytest.mark.parametrize("n", [2, 3, 5, 10, 20])
def test_no_effect_is_reproduced_at_most_alpha_of_the_time(n):
    lower, _ = simulated_bounds(MARGIN, n, seed=100 + n)
    rate = float((lower > MARGIN).mean())
    # the t bound is exact for normal effects: the rate sits at alpha, not merely under it
    assert abs(rate - ALPHA) <= mc_allowance(ALPHA, REPS)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 20])
def test_an_effect_at_the_sesoi_is_not_reproduced_at_most_alpha_of_the_time(n):
    _, upper = simulated_bounds(SESOI, n, seed=200 + n)
    rate = float((upper < SESOI).mean())
    assert abs(rate - ALPHA) <= mc_allowance(ALPHA, REPS)


def test_power_rises_with_seeds_and_matches_the_noncentral_t():
    simulated, predicted = [], []
    for n in (3, 5, 10, 20):
        lower, _ = simulated_bounds(SESOI, n, seed=300 + n)
        simulated.append(float((lower > MARGIN).mean()))
        predicted.append(power(SESOI, SD, n, ALPHA, MARGIN))
        assert abs(simulated[-1] - predicted[-1]) <= mc_allowance(predicted[-1], REPS)
    assert np.all(np.diff(simulated) > 0) and np.all(np.diff(predicted) > 0)
    assert predicted[0] < 0.25 and predicted[-1] > 0.65  # the range the simulation spans
    assert power(MARGIN, SD, 7, ALPHA, MARGIN) == pytest.approx(ALPHA)  # at no effect, power is the level


@pytest.mark.parametrize("effect, sd", [(1.0, 2.0), (1.0, 1.0)])
def test_seeds_for_power_is_the_smallest_n_that_reaches_80_percent(effect, sd):
    n = seeds_for_power(effect, sd, ALPHA, target=0.8, margin=MARGIN)
    assert n is not None and n >= 2
    lower, _ = simulated_bounds(effect, n, seed=400 + n, sd=sd)
    assert float((lower > MARGIN).mean()) >= 0.8 - mc_allowance(0.8, REPS)
    if n > 2:
        assert power(effect, sd, n - 1, ALPHA, MARGIN) < 0.8
        lower, _ = simulated_bounds(effect, n - 1, seed=500 + n, sd=sd)
        assert float((lower > MARGIN).mean()) < 0.8 + mc_allowance(0.8, REPS)
    # the search agrees with a plain scan of the noncentral t
    scan = next(m for m in range(2, 200) if power(effect, sd, m, ALPHA, MARGIN) >= 0.8)
    assert n == scan


def test_seeds_for_power_edge_cases():
    assert seeds_for_power(1.0, 0.0, ALPHA) == 2  # deterministic replicates
    assert seeds_for_power(0.0, 0.0, ALPHA) is None
    assert seeds_for_power(1.0, math.nan, ALPHA) is None
    assert seeds_for_power(-1.0, 1.0, ALPHA) is None  # no effect in the claimed direction: power stays <= alpha
    assert seeds_for_power(0.01, 1.0, ALPHA, n_max=1000) is None  # ~62000 seeds would do
    assert seeds_for_power(10.0, 1.0, ALPHA) == 2
    assert seeds_for_power(2.0, 1.0, ALPHA, margin=1.0) == seeds_for_power(1.0, 1.0, ALPHA)  # only effect - margin
    assert power(1.0, 0.0, 3, ALPHA) == 1.0 and power(0.0, 0.0, 3, ALPHA) == 0.0
    assert math.isnan(power(1.0, 1.0, 1, ALPHA)) and math.isnan(power(1.0, math.nan, 5, ALPHA))


def test_decide_applies_the_rule_to_the_bounds():
    """decide's verdicts are those of the bounds the simulations above count (same data, 400 datasets)."""
    rng = np.random.default_rng(600)
    seen = set()
    for _ in range(400):
        n = int(rng.integers(2, 8))
        x = rng.normal(rng.uniform(-1.0, 2.5), SD, size=n)
        lower, upper = t_bounds(x.mean(), x.std(ddof=1) / math.sqrt(n), n - 1, ALPHA)
        d = decide("gain", x, PREREG)
        expected = NOT_REPRODUCED if upper < SESOI else REPRODUCED if lower > MARGIN else INCONCLUSIVE
        assert d.verdict == expected
        assert d.interval.lower == pytest.approx(float(lower)) and d.interval.upper == pytest.approx(float(upper))
        assert (d.p_above_margin < ALPHA) == (float(lower) > MARGIN)
        assert (d.p_below_sesoi < ALPHA) == (float(upper) < SESOI)
        seen.add(d.verdict)
    assert seen == {REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE}


# ---------------------------------------------------------------- several parts --------------------------------

COMBINE_REPS = 800


def _parts(mus: list[float], n: int, rng: np.random.Generator) -> list:
    return [decide(f"part{i}", rng.normal(mu, SD, size=n), PREREG) for i, mu in enumerate(mus)]


def test_combine_keeps_the_family_wise_level_over_six_parts():
    """Six parts whose effect sits at the sesoi (the null of "not reproduced"): a claim is wrongly called not
    reproduced at most alpha of the time (Holm); each part alone would be about alpha, six unadjusted about
    1 - 0.95**6 = 26%. And with one part at the margin (the null of "reproduced") and five clearly reproduced,
    the claim is reproduced at most alpha of the time (intersection-union: no adjustment needed)."""
    rng = np.random.default_rng(700)
    not_rep = sum(combine(_parts([SESOI] * 6, 5, rng), ALPHA)[0] == NOT_REPRODUCED for _ in range(COMBINE_REPS))
    assert not_rep / COMBINE_REPS <= ALPHA + mc_allowance(ALPHA, COMBINE_REPS)
    rep = sum(combine(_parts([MARGIN] + [20.0] * 5, 5, rng), ALPHA)[0] == REPRODUCED for _ in range(COMBINE_REPS))
    assert rep / COMBINE_REPS <= ALPHA + mc_allowance(ALPHA, COMBINE_REPS)
    assert rep > 0  # the five strong parts do pass: the level is spent on the null part, as it should be


def test_combine_rules():
    p = PREREG
    yes = decide("yes", [1.2, 0.9, 1.5, 1.1, 1.3], p)
    no = decide("no", [0.1, -0.2, 0.05, 0.0, 0.1, -0.1, 0.15, 0.02], p)
    open_ = decide("open", [0.5, -0.4, 2.1], p)
    missing = decide("missing", [1.0, math.nan, 2.0], p)
    assert (yes.verdict, no.verdict, open_.verdict, missing.verdict) == (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE,
                                                                         INCONCLUSIVE)
    assert combine([yes, yes], ALPHA)[0] == REPRODUCED
    verdict, reason = combine([yes, no, open_], ALPHA)
    assert verdict == NOT_REPRODUCED and "no (Holm-adjusted p" in reason and "yes" not in reason
    verdict, reason = combine([yes, open_, missing], ALPHA)
    assert verdict == INCONCLUSIVE and "open (inconclusive)" in reason and "missing (inconclusive)" in reason
    assert combine([no, yes], ALPHA, primary="yes") == (REPRODUCED, f"primary part yes: {yes.reason}; "
                                                        "1 other part(s) shown only")
    # one part: its own decision and reason; a part not reproduced alone but not after Holm is named so
    assert combine([open_], ALPHA) == (INCONCLUSIVE, f"open: {open_.reason}")
    assert combine([no], ALPHA) == (NOT_REPRODUCED, f"no: {no.reason}")
    weak = decide_estimate("weak", 0.825, 0.1, 30, p)  # P(effect >= sesoi) = 0.04: below alpha alone, not twice
    assert weak.verdict == NOT_REPRODUCED and weak.p_below_sesoi == pytest.approx(0.04, abs=0.001)
    verdict, reason = combine([weak, open_], ALPHA)
    assert verdict == INCONCLUSIVE and "weak (not reproduced alone, Holm-adjusted p 0.08" in reason
    # a primary part measured per label decides by its labels (every one reproduced; one below: not reproduced)
    a, b = decide("yes F1", [1.2, 0.9, 1.5], p), decide("yes C1", [1.1, 1.3, 1.0], p)
    lower = decide("yes C2", [0.1, -0.2, 0.05, 0.0, 0.1, -0.1, 0.15, 0.02], p)
    verdict, reason = combine([no, a, b], ALPHA, primary="yes")
    assert verdict == REPRODUCED and reason.startswith("primary part yes (2 labels): every part reproduced")
    assert reason.endswith("1 other part(s) shown only")
    assert combine([a, b, lower], ALPHA, primary="yes")[0] == NOT_REPRODUCED
    assert combine([a, open_], ALPHA, primary="yes")[0] == REPRODUCED  # "open" is not a label of "yes"
    # a tolerance part: not reproduced counts as p = 0, anything else as p = 1
    assert combine([yes, decide_tolerance("t", 0.1, 0.5, 0.1, "")], ALPHA)[0] == NOT_REPRODUCED
    assert combine([yes, decide_tolerance("t", 0.9, 0.5, 0.1, "")], ALPHA)[0] == REPRODUCED
    assert combine([yes, decide_tolerance("t", 0.5, 0.5, 0.1, "")], ALPHA)[0] == INCONCLUSIVE
    with pytest.raises(ValueError, match="primary part 'nope'"):
        combine([yes], ALPHA, primary="nope")
    with pytest.raises(ValueError):
        combine([], ALPHA)


# ---------------------------------------------------------------- the bootstrap ----------------------------------

BOOT_REPS = 2000
BOOT_TOLERANCE = 0.015  # |level - alpha| allowed beyond Monte-Carlo error, at the fewest seeds the bootstrap takes


def test_the_bootstrap_keeps_its_level_at_its_minimum_n():
    """The studentized bootstrap at BOOTSTRAP_MIN_N = 5 seeds, normal effects, 999 resamples: both one-sided
    levels within BOOT_TOLERANCE of alpha (measured 0.045-0.048 over 5000 datasets)."""
    rng = np.random.default_rng(800)
    n = BOOTSTRAP_MIN_N
    low = high = 0
    for i in range(BOOT_REPS):
        iv = mean_interval(rng.normal(0.0, SD, size=n), ALPHA, "bootstrap", seed=i, resamples=999)
        low += iv.lower > 0.0
        high += iv.upper < 0.0
    for count in (low, high):
        assert abs(count / BOOT_REPS - ALPHA) <= BOOT_TOLERANCE + mc_allowance(ALPHA, BOOT_REPS)


def test_the_bootstrap_is_deterministic_and_consistent_with_its_p_values():
    x = [0.3, 1.9, 0.8, 1.4, -0.2, 1.1]
    a, b = (mean_interval(x, ALPHA, "bootstrap", seed=3) for _ in range(2))
    assert (a.lower, a.upper) == (b.lower, b.upper) and a.lower < np.mean(x) < a.upper
    assert mean_interval(x, ALPHA, "bootstrap", seed=4).lower != a.lower
    for eps in (1e-9, -1e-9):
        assert (a.p_above(a.lower + eps) < ALPHA) == (a.lower > a.lower + eps)
        assert (a.p_below(a.upper + eps) < ALPHA) == (a.upper < a.upper + eps)
    few = mean_interval(x[:BOOTSTRAP_MIN_N - 1], ALPHA, "bootstrap")
    assert math.isnan(few.lower) and math.isnan(few.upper)
    boot = Preregistration(effect="gain", unit="pp", sesoi=1.0, test="bootstrap")
    d = decide("gain", x[:3], boot)
    assert d.verdict == INCONCLUSIVE and d.reason == f"the bootstrap needs at least {BOOTSTRAP_MIN_N} replicates, got 3"


# ---------------------------------------------------------------- why the rule changed --------------------------

OLD_REPS = 4000


def old_paired(d: np.ndarray, min_agree: float = 0.8) -> str:
    """The rule before issue #18 (``verdicts.paired``, removed), on paired differences ``d``: reproduced when the
    mean is positive and ``min_agree`` of them agree; not reproduced when the mean is negative by more than one
    standard error (or no effect with no spread); inconclusive otherwise."""
    n = d.size
    m, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    if m > 0 and int((d > 0).sum()) >= min(n, math.ceil(min_agree * n)):
        return REPRODUCED
    if (m < 0 and (-m > se or se == 0.0)) or (m == 0 and se == 0.0):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def old_all_of(verdicts: list[str]) -> str:
    """The old combination of parts: reproduced if every part is, not reproduced if any part is."""
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE


def test_the_reference_old_rule_is_the_one_that_was_used():
    assert old_paired(np.array([1.0, 1, 1, 1, 1])) == REPRODUCED
    assert old_paired(np.array([10.0, -1, -1, -1, 1])) == INCONCLUSIVE  # mean > 0, 2 of 5 agree
    assert old_paired(np.array([-1.0, -1, -1, -1, -1.5])) == NOT_REPRODUCED
    assert old_paired(np.array([-1.0, 1, -1, 1, -0.1])) == INCONCLUSIVE  # reversed within one se
    assert old_all_of([REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED]) == NOT_REPRODUCED


def _old_rates(mu: float, n: int, rng: np.random.Generator) -> dict[str, float]:
    verdicts = [old_paired(rng.normal(mu, 1.0, size=n)) for _ in range(OLD_REPS)]
    return {v: verdicts.count(v) / OLD_REPS for v in (REPRODUCED, NOT_REPRODUCED)}


def test_the_old_rule_is_not_calibrated():
    """The old rule (reproduced when the mean is positive and 80% of the seeds agree; not reproduced when the
    mean is negative by more than one standard error) under no effect at all."""
    rng = np.random.default_rng(900)
    two, five = _old_rates(0.0, 2, rng), _old_rates(0.0, 5, rng)
    assert two[REPRODUCED] > 0.2  # 25% of the two-seed runs of a null effect are "reproduced" (new rule: 5%)
    assert two[NOT_REPRODUCED] > 0.15 and five[NOT_REPRODUCED] > 0.15  # "reversed" when nothing is
    # six such parts combined by all_of: most null claims come out "not reproduced"
    six = [old_all_of([old_paired(rng.normal(0.0, 1.0, 5)) for _ in range(6)]) for _ in range(1000)]
    assert six.count(NOT_REPRODUCED) / 1000 > 0.6
    # and power can fall with more seeds: a standardised effect of 0.5 at 2 and at 10 seeds
    assert _old_rates(0.5, 10, rng)[REPRODUCED] < _old_rates(0.5, 2, rng)[REPRODUCED]


# ---------------------------------------------------------------- exact answers ----------------------------------

def test_t_bound_against_a_hand_computed_value():
    x = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sd sqrt(5/3), se sqrt(5/12)
    iv = mean_interval(x, ALPHA)
    half = stats.t.ppf(0.95, 3) * math.sqrt(5 / 12)  # 2.353363 * 0.645497 = 1.519090
    assert iv.lower == pytest.approx(2.5 - half) and iv.upper == pytest.approx(2.5 + half)
    assert iv.lower == pytest.approx(0.980910, abs=1e-6)
    assert (iv.estimate, iv.n, iv.dof, iv.method) == (2.5, 4, 3.0, "t")
    assert iv.p_above(iv.lower) == pytest.approx(ALPHA) and iv.p_below(iv.upper) == pytest.approx(ALPHA)
    assert iv.p_above(0.0) == pytest.approx(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue)
    assert iv.p_below(5.0) == pytest.approx(stats.ttest_1samp(x, 5.0, alternative="less").pvalue)


def test_welch_interval_matches_scipys_welch_test():
    a, b = [2.1, 3.4, 2.8, 3.9, 2.2], [1.0, 2.9, 1.1]
    iv = welch_interval(a, b, ALPHA)
    assert iv.estimate == pytest.approx(np.mean(a) - np.mean(b)) and iv.n == 8 and iv.method == "welch"
    assert iv.p_above(0.0) == pytest.approx(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    assert iv.p_above(iv.lower) == pytest.approx(ALPHA)
    assert math.isnan(welch_interval(a, [1.0], ALPHA).lower)
    assert welch_interval([1.0, 1.0], [0.0, 0.0], ALPHA).lower == 1.0


def test_holm_on_the_textbook_example():
    p = [0.01, 0.04, 0.03, 0.005]  # m = 4: 0.005*4, 0.01*3, 0.03*2, max(0.04*1, 0.06)
    assert holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p, 0.05) == [True, False, False, True]
    assert holm([0.04], 0.05) == [True] and holm([math.nan, 0.001], 0.05) == [False, True]
    assert holm_adjust([]) == []


@pytest.mark.parametrize("mapping, match", [
    ({"effect": "gain", "unit": "pp", "sesoi": 1.0, "sesio": 2.0}, r"ingredients/momentum: unknown .*'sesio'"),
    ({"effect": "gain", "unit": "pp", "sesoi": -0.5}, r"ingredients/momentum: .*sesoi .* must not be below margin"),
    ({"effect": "gain", "unit": "pp", "sesoi": 1.0, "margin": 2.0}, r"ingredients/momentum: .*sesoi"),
    ({"effect": "gain", "unit": "pp", "sesoi": "1 pp"}, r"ingredients/momentum: .*'sesoi' must be a number"),
    ({"effect": "gain", "unit": "pp", "sesoi": 1.0, "alpha": True}, r"ingredients/momentum: .*'alpha' must be a"),
    ({"effect": "gain", "unit": "pp"}, r"ingredients/momentum: pre-registration lacks \['sesoi'\]"),
    ({"effect": "gain", "unit": "pp", "sesoi": 1.0, "test": "z"}, r"ingredients/momentum: .*test must be one of"),
])
def test_preregistration_from_mapping_names_where_and_the_key(mapping, match):
    with pytest.raises(ValueError, match=match):
        Preregistration.from_mapping(mapping, "ingredients/momentum")


def test_preregistration_from_mapping_reads_a_valid_block():
    p = Preregistration.from_mapping({"effect": "gain", "unit": "pp", "sesoi": 1, "margin": 0, "test": "bootstrap",
                                      "sesoi_basis": "a tenth of the paper's 10 pp"}, "x")
    assert p == Preregistration(effect="gain", unit="pp", sesoi=1.0, margin=0.0, alpha=0.05, test="bootstrap",
                                sesoi_basis="a tenth of the paper's 10 pp")
    assert isinstance(p.sesoi, float)


def test_decide_tolerance_has_three_outcomes_and_nan():
    up, down, within = (decide_tolerance("ratio", v, 1.0, 0.1, "x") for v in (1.2, 0.8, 1.05))
    assert (up.verdict, down.verdict, within.verdict) == (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    assert "within the stated tolerance" in within.reason
    assert up.interval.n == 1 and up.interval.lower == up.interval.upper == 1.2 and math.isnan(up.power)
    nan = decide_tolerance("ratio", math.nan, 1.0, 0.1, "x")
    assert nan.verdict == INCONCLUSIVE and "missing" in nan.reason
    with pytest.raises(ValueError):
        decide_tolerance("ratio", 1.0, 1.0, -0.1, "x")


def test_missing_values_too_few_seeds_and_zero_spread():
    iv = mean_interval([1.0, math.nan, 2.0], ALPHA)
    assert math.isnan(iv.lower) and math.isnan(iv.upper) and math.isnan(iv.p_above(0.0))
    d = decide("gain", [1.0, math.nan, 2.0], PREREG)
    assert d.verdict == INCONCLUSIVE and d.reason.startswith("a value is missing") and d.underpowered
    one = decide("gain", [3.0], PREREG)
    assert one.verdict == INCONCLUSIVE and "at least 2" in one.reason
    # deterministic replicates: the bounds are the value
    same = mean_interval([0.5, 0.5, 0.5], ALPHA)
    assert same.lower == same.upper == 0.5 and same.p_above(0.0) == 0.0 and same.p_above(0.5) == 1.0
    assert decide("gain", [2.0, 2.0], PREREG).verdict == REPRODUCED
    assert decide("gain", [0.5, 0.5], PREREG).verdict == NOT_REPRODUCED  # shown below the sesoi of 1
    assert decide("gain", [-0.5, -0.5], PREREG).reason.endswith("the interval is on the wrong side")


def test_an_underpowered_inconclusive_decision_says_how_many_seeds():
    d = decide("gain", [0.5, -0.4, 2.1], PREREG)
    assert d.verdict == INCONCLUSIVE and d.underpowered and d.seeds_needed == seeds_for_power(
        SESOI, d.interval.sd, ALPHA, 0.8, MARGIN)
    assert d.reason.startswith("too few seeds: 3 seeds, interval [")
    assert f"80% power needs {d.seeds_needed} seeds (underpowered at this scale)" in d.reason
    assert d.power == pytest.approx(power(SESOI, d.interval.sd, 3, ALPHA, MARGIN))
    assert d.describe().startswith("gain: 0.733 pp [") and "-> inconclusive (too few seeds" in d.describe()


def test_decisions_travel_in_the_verdict_file(tmp_path):
    """Decision.as_record is strict JSON; verdict.json with and without decisions reads back for the regression
    check and the report."""
    records = [decide("gain", [1.0, math.nan], PREREG).as_record(), decide("gain", [1.2, 0.9, 1.5], PREREG).as_record()]
    json.dumps(records, allow_nan=False)
    assert records[0]["estimate"] is None and records[1]["prereg"]["sesoi"] == 1.0
    new = ClaimResult(id="new", scale="smoke", verdict=REPRODUCED, rule="r", measured="m", n_seeds=3,
                      decisions=records)
    new.write(tmp_path / "claims" / "new" / "verdict.json")
    old = ClaimResult(id="old", scale="smoke", verdict=INCONCLUSIVE, rule="r", measured="m", n_seeds=3)
    old.write(tmp_path / "claims" / "old" / "verdict.json")
    text = json.loads((tmp_path / "claims" / "old" / "verdict.json").read_text())
    del text["decisions"]  # as written before the field existed
    (tmp_path / "claims" / "old" / "verdict.json").write_text(json.dumps(text))
    found = collect(tmp_path)
    assert {k: v["verdict"] for k, v in found["claims"].items()} == {"new": REPRODUCED, "old": INCONCLUSIVE}
    back = json.loads((tmp_path / "claims" / "new" / "verdict.json").read_text())
    assert back["decisions"] == records


# ---------------------------------------------------------------- "at least" claims and normal estimates ---------

def test_an_at_least_claim_is_decided_against_its_margin_alone() -> None:
    prereg = Preregistration(effect="log10 ratio", unit="log10", margin=0.477, sesoi=0.477)
    assert decide("ratio", [1.0, 1.1, 0.9, 1.05], prereg).verdict == REPRODUCED
    below = decide("ratio", [0.1, 0.2, 0.15, 0.12], prereg)
    assert below.verdict == NOT_REPRODUCED and "wrong side" in below.reason
    wide = decide("ratio", [0.1, 0.9, 0.3, 0.8], prereg)
    assert wide.verdict == INCONCLUSIVE and "covers 0.477" in wide.reason
    assert math.isnan(wide.power) and wide.seeds_needed is None and not wide.underpowered


def test_an_at_least_claim_is_calibrated_at_its_margin() -> None:
    """At mu = margin = sesoi, each wrong answer has probability alpha (t, n = 5)."""
    rng = np.random.default_rng(11)
    prereg = Preregistration(effect="x", unit="u", margin=1.0, sesoi=1.0)
    verdicts = [decide("x", 1.0 + rng.normal(0, 1, 5), prereg).verdict for _ in range(4000)]
    mc = 3 * math.sqrt(ALPHA * (1 - ALPHA) / 4000)
    assert verdicts.count(REPRODUCED) / 4000 <= ALPHA + mc
    assert verdicts.count(NOT_REPRODUCED) / 4000 <= ALPHA + mc


def test_a_normal_estimate_uses_z_bounds() -> None:
    prereg = Preregistration(effect="ln sd ratio", unit="ln", margin=0.0, sesoi=0.35, test="normal")
    d = decide_estimate("spread", 0.9, 0.3, 10, prereg)
    z = 1.6448536269514722
    assert d.interval.lower == pytest.approx(0.9 - z * 0.3) and d.verdict == REPRODUCED
    assert decide_estimate("spread", -0.6, 0.3, 10, prereg).verdict == NOT_REPRODUCED
    assert decide_estimate("spread", 0.2, 0.3, 10, prereg).verdict == INCONCLUSIVE
    assert decide_estimate("spread", math.nan, 0.3, 10, prereg).verdict == INCONCLUSIVE
    with pytest.raises(ValueError, match="decide_estimate"):
        decide("spread", [0.1, 0.2], prereg)


# ---------------------------------------------------------------- a claim's decision from its registry block ------

def test_decide_claim_applies_the_registry_block() -> None:
    from losslab.claims.verdicts import Measured, binomial_tolerance, decide_claim

    block = {"alpha": 0.05, "parts": [
        {"name": "gap", "effect": "ln error ratio", "unit": "ln", "margin": 0, "sesoi": 0.05, "test": "t"},
        {"name": "barrier", "effect": "segment barrier", "unit": "pp", "margin": 10, "tolerance": "binomial",
         "test": "tolerance"}]}
    per_network = {"F1": Measured(samples=[0.3, 0.4, 0.35]), "C1": Measured(samples=[0.2, 0.3, 0.25])}
    rep = decide_claim(block, {"gap": per_network,
                               "barrier": Measured(value=40.0, tolerance=100 * binomial_tolerance(0.5, 360))})
    assert rep.verdict == REPRODUCED and [d.name for d in rep.decisions] == ["gap F1", "gap C1", "barrier"]
    assert rep.decisions[2].tolerance == pytest.approx(100 * 2 * math.sqrt(0.25 / 360))
    low = decide_claim(block, {"gap": Measured(samples=[0.3, 0.4, 0.35]),
                               "barrier": Measured(value=2.0, tolerance=5.3)})
    assert low.verdict == NOT_REPRODUCED and "barrier" in low.reason
    gated = decide_claim(block | {"requires": "train accuracy >= 99%"},
                         {"gap": Measured(samples=[0.3, 0.4, 0.35]), "barrier": Measured(value=40.0, tolerance=5.3)},
                         requires=False)
    assert gated.verdict == INCONCLUSIVE and gated.reason.startswith("precondition not met (train accuracy >= 99%)")
    with pytest.raises(ValueError, match="were not measured"):
        decide_claim(block, {"gap": Measured(samples=[0.1, 0.2])})
    with pytest.raises(ValueError, match="needs the tolerance it gives"):
        decide_claim(block, {"gap": Measured(samples=[0.1, 0.2]), "barrier": Measured(value=3.0)})


def test_a_claim_result_carries_its_decision() -> None:
    from losslab.claims.verdicts import Measured, decide_claim

    block = {"parts": [{"name": "gap", "effect": "ln error ratio", "unit": "ln", "margin": 0, "sesoi": 0.05}]}
    cd = decide_claim(block, {"gap": {"F1": Measured(samples=[0.3, 0.4, 0.35])}})
    res = ClaimResult.from_decision(cd, notes="more", id="c", scale="smoke", rule="r", measured="m", n_seeds=3,
                                    numbers={"x": 1.0})
    assert res.verdict == REPRODUCED and res.notes == f"{cd.reason}; more" and res.decisions == cd.records()
    assert res.numbers["x"] == 1.0 and res.numbers["effect.gap.F1.estimate"] == pytest.approx(0.35)
    assert res.numbers["effect.gap.F1.lower"] < 0.35 < res.numbers["effect.gap.F1.upper"]
    se = 0.05 / math.sqrt(3)  # sd of (0.3, 0.4, 0.35) over sqrt(n): the scale the statistical regression mode uses
    assert res.uncertainty == {f"effect.gap.F1.{b}": pytest.approx(se) for b in ("estimate", "lower", "upper")}


def test_replicates_are_named_in_the_plural_with_their_gloss():
    from losslab.claims.verdicts import _plural

    assert _plural("seed") == "seeds"
    assert _plural("pair (the six recipes)") == "pairs (the six recipes)"
    assert _plural("pair x seed") == "pair x seeds"
    assert _plural("seeds") == "seeds"
    p = Preregistration(name="x", effect="e", unit="", margin=0.0, sesoi=1.0, replicate="pair (the six recipes)")
    reason = decide("x", [0.5, -0.4, 2.1], p).reason
    assert "3 pairs (the six recipes)" in reason and "recipes)s" not in reason and "too few replicates" in reason
