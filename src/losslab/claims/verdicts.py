"""The verdict logic: every decision rule, and the verdict record (:class:`ClaimResult`).

A verdict is one of ``reproduced``, ``not reproduced`` or ``inconclusive``. The rules are written in
``config/claims.yaml`` before any run (each claim's ``decision`` block, validated by
:func:`losslab.pipeline.registry.check_decision`); this module only applies them (:func:`decide_claim`).

The pre-registered rule (:func:`decide`) is calibrated where the rule before it was not (a paired mean > 0 with
80% of the seeds agreeing said "reproduced" for a quarter of the two-seed runs under no effect, and its power fell
with more seeds for a standardised effect below 0.84; ``tests/claims/test_calibration.py`` keeps it as the
reference that fails). A :class:`Preregistration` states the primary
effect, its unit, the ``margin`` the claim says it exceeds and the smallest effect of interest ``sesoi`` (> margin),
the level ``alpha`` and the test (Student t or studentized bootstrap, :mod:`losslab.claims.inference`). With the
one-sided ``(1 - alpha)`` lower bound ``L`` and upper bound ``U`` on the mean effect over ``n`` seeds, in this order:

* inconclusive when a value is missing (NaN: a diverged run) or ``n < 2``;
* ``not reproduced`` when ``U < sesoi``: the effect is shown smaller than the smallest effect of interest (or,
  when ``U < margin``, on the wrong side);
* ``reproduced`` when ``L > margin``;
* inconclusive otherwise: too few seeds (fewer than 80% power at the sesoi needs), or the interval is too wide.

So P(reproduced | mu = margin) <= alpha and P(not reproduced | mu = sesoi) <= alpha at every ``n``
(``tests/claims/test_calibration.py`` measures both). A multi-part claim combines with :func:`combine`: its primary
part decides, or else every part must be reproduced (an intersection-union test, level alpha without adjustment)
and "not reproduced" needs a part whose test survives Holm's adjustment over the parts. A deterministic single
number with a stated tolerance is decided by :func:`decide_tolerance`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from losslab.claims.inference import (BOOTSTRAP_MIN_N, METHODS, Interval, holm_adjust, mean_interval,
                                      normal_interval, power, seeds_for_power)
from losslab.pipeline import cpu_kernels
from losslab import io as lio

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


class Estimate(float):
    """A number measured as the mean over seeds, carrying its standard error ``se`` (NaN with one seed).

    It is a float everywhere; :class:`ClaimResult` moves ``se`` into its ``uncertainty``, from which
    :mod:`losslab.pipeline.regression` derives how far the number may move on another platform."""

    se: float

    def __new__(cls, mean: float, se: float) -> Estimate:
        obj = super().__new__(cls, mean)
        obj.se = float(se)
        return obj

    def scaled(self, factor: float) -> Estimate:
        """``factor`` times this estimate (e.g. 100 for percentage points), its standard error scaled too."""
        return Estimate(factor * float(self), abs(factor) * self.se)


def seed_mean(values: Sequence[float | None]) -> Estimate:
    """The mean of the finite ``values`` (one per seed) with its standard error ``std / sqrt(n)``."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return Estimate(math.nan, math.nan)
    n = len(vals)
    m = sum(vals) / n
    se = math.sqrt(sum((v - m) ** 2 for v in vals) / (n - 1) / n) if n > 1 else math.nan
    return Estimate(m, se)


def ratio_estimate(num: Estimate, den: Estimate) -> Estimate:
    """``num / den`` with the first-order (delta-method) standard error of a ratio of independent means,
    ``|r| * sqrt((se_num / num)**2 + (se_den / den)**2)``; infinite when ``den`` is 0."""
    if not float(den):
        return Estimate(math.inf, math.nan)
    r = float(num) / float(den)
    rel = [e.se / float(e) if float(e) else math.nan for e in (num, den)]
    return Estimate(r, abs(r) * math.sqrt(rel[0] ** 2 + rel[1] ** 2))


@dataclass
class ClaimResult:
    """What a claim's analysis measured and decided: written as ``verdict.json`` beside its table/figure."""

    id: str
    scale: str
    verdict: str
    rule: str
    measured: str  # one line, e.g. "full 97.2±0.3%; -momentum -0.4 pp; ..."
    n_seeds: int
    numbers: dict[str, float] = field(default_factory=dict)  # every number the regression test compares
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    notes: str = ""
    # the standard error of each number that is a mean over seeds (filled from the numbers given as Estimate)
    uncertainty: dict[str, float] = field(default_factory=dict)
    # where the numbers were measured: train loss, optimizer steps, accuracies of the arms (one line)
    regime: str = ""
    # the pre-registered decisions (Decision.as_record), for the claims decided by decide/combine
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        for key, value in self.numbers.items():
            if isinstance(value, Estimate) and math.isfinite(value.se):
                self.uncertainty.setdefault(key, value.se)
        self.numbers = {k: float(v) if isinstance(v, Estimate) else v for k, v in self.numbers.items()}

    @classmethod
    def from_decision(cls, decision: ClaimDecision, notes: str = "", **fields: Any) -> ClaimResult:
        """The result of a claim decided by its pre-registration (:func:`decide_claim`): its verdict, every part's
        record, and the reason first in the notes (``notes`` after it); ``fields`` are the other fields (``id``,
        ``scale``, ``measured``, ``n_seeds``, ``numbers``, ``figures``, ``tables``, ``regime``). Every
        part decided over two or more replicates adds its estimate and bounds to the numbers as
        ``effect.<part>[.<label>].{estimate,lower,upper}``, with the estimate's standard error as their uncertainty
        (the statistical regression mode's scale for them). A part of one value (a tolerance part, one replicate)
        adds none: it has no standard error, and it is made of numbers the claim reports with their tolerance."""
        numbers = dict(fields.pop("numbers", {}))
        uncertainty = dict(fields.pop("uncertainty", {}))
        for d in decision.decisions:  # every part's estimate and bounds join the numbers the regression test compares
            if d.prereg is None or d.interval.n < 2:  # one value (a tolerance part, one replicate): a transform of
                continue  # numbers the claim reports, which carry their own tolerance; no standard error of its own
            key = "effect." + d.name.replace(" ", ".")
            numbers.update({f"{key}.estimate": d.interval.estimate, f"{key}.lower": d.interval.lower,
                            f"{key}.upper": d.interval.upper})
            if math.isfinite(d.interval.se) and d.interval.se > 0:  # a bound moves with the estimate, by its se
                uncertainty.update({f"{key}.{b}": d.interval.se for b in ("estimate", "lower", "upper")})
        fields.setdefault("rule", decision.rule)
        return cls(verdict=decision.verdict, decisions=decision.records(), numbers=numbers, uncertainty=uncertainty,
                   notes="; ".join(x for x in (decision.reason, notes) if x), **fields)

    def write(self, path: str | Path) -> None:
        """``verdict.json``: the result and the platform its numbers were made on (losslab.pipeline.cpu_kernels)."""
        lio.write_json(path, {**asdict(self), "platform": cpu_kernels.platform_record()})


def load_result(path: str | Path) -> dict[str, Any]:
    return lio.read_json(path)


# ---------------------------------------------------------------- the pre-registered decision ----------------

TARGET_POWER = 0.8  # the power :attr:`Decision.seeds_needed` is computed for


@dataclass(frozen=True, kw_only=True)
class Preregistration:
    """What one part of a claim's test is, written before the runs: the claim is "``effect`` > ``margin``" (in
    ``unit``), measured once per ``replicate``.

    ``sesoi`` is the smallest effect of interest (>= ``margin``; equal for an "at least x" claim, whose margin is
    x): an effect shown below it counts against the claim; ``sesoi_basis`` says how it was scaled from the paper.
    ``alpha`` is the one-sided level of each test and ``test`` its method (``"t"``, ``"bootstrap"`` or ``"normal"``,
    :mod:`losslab.claims.inference`). ``name`` names the part, ``how`` says what the measurement needs that the effect
    does not. The meaning of every key: the comment at the top of ``config/claims.yaml``."""

    effect: str
    unit: str
    sesoi: float
    margin: float = 0.0
    alpha: float = 0.05
    test: str = "t"
    sesoi_basis: str = ""
    name: str = ""
    replicate: str = "seed"
    how: str = ""

    def __post_init__(self) -> None:
        for name in ("sesoi", "margin", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{self.effect}: {name} must be a finite number, not {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.sesoi >= self.margin:
            raise ValueError(f"{self.effect}: sesoi (the smallest effect of interest, {self.sesoi:g}) must not be "
                             f"below margin ({self.margin:g})")
        if not 0 < self.alpha < 0.5:
            raise ValueError(f"{self.effect}: alpha must lie in (0, 0.5), not {self.alpha:g}")
        if self.test not in (*METHODS, "normal"):
            raise ValueError(f"{self.effect}: test must be one of {(*METHODS, 'normal')}, not {self.test!r}")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str) -> Preregistration:
        """The pre-registration of ``mapping`` (e.g. a part of a claim's ``decision`` in ``config/claims.yaml``). An
        unknown or missing key, a value of the wrong type, or a ``sesoi`` below ``margin`` raises ValueError naming
        ``where`` and the key."""
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{where}: expected a mapping for the pre-registration, not {type(mapping).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(mapping) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown pre-registration key(s) {unknown}; known: {sorted(known)}")
        missing = sorted(k for k in ("effect", "unit", "sesoi") if k not in mapping)
        if missing:
            raise ValueError(f"{where}: pre-registration lacks {missing}")
        for key, value in mapping.items():
            numeric = key in ("sesoi", "margin", "alpha")
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (is_number if numeric else isinstance(value, str)):
                raise ValueError(f"{where}: pre-registration key {key!r} must be {'a number' if numeric else 'text'}"
                                 f", not {type(value).__name__} ({value!r})")
        try:
            return cls(**mapping)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def _plural(replicate: str) -> str:
    """``"seed"`` -> ``"seeds"``; a replicate with a gloss pluralises its head: ``"pair (the six recipes)"`` ->
    ``"pairs (the six recipes)"``, ``"pair x seed"`` -> ``"pair x seeds"``."""
    head, sep, gloss = replicate.partition(" (")
    return (head if head.endswith("s") else head + "s") + sep + gloss


def _num(x: float, unit: str = "") -> str:
    text = "NaN" if isinstance(x, float) and math.isnan(x) else f"{x:.3g}"
    return f"{text} {unit}".rstrip()


@dataclass
class Decision:
    """One pre-registered decision (:func:`decide`, :func:`decide_tolerance`) and why.

    ``power`` is the probability of ``reproduced`` at the smallest effect of interest with the measured spread and
    this number of seeds (t test); ``seeds_needed`` the seeds 80% of it needs (None: out of reach, or no spread
    measured); ``underpowered``: fewer seeds than that, or out of reach. ``p_above_margin`` is the one-sided
    p-value of H0 "effect <= margin" and ``p_below_sesoi`` of H0 "effect >= sesoi" (:func:`combine` adjusts the
    latter). ``prereg`` is None for a tolerance decision, whose ``tolerance`` is set."""

    name: str
    verdict: str
    interval: Interval
    prereg: Preregistration | None
    power: float
    seeds_needed: int | None
    reason: str
    underpowered: bool
    p_above_margin: float
    p_below_sesoi: float
    unit: str = ""
    margin: float = 0.0
    tolerance: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def describe(self) -> str:
        """One line: the name, the estimate with its interval and seeds, the verdict and the reason."""
        iv = self.interval
        span = f" [{_num(iv.lower)}, {_num(iv.upper)}]" if iv.n > 1 and iv.valid else ""
        seeds = f", {iv.n} seeds" if iv.n > 1 else ""
        return f"{self.name}: {_num(iv.estimate, self.unit)}{span}{seeds} -> {self.verdict} ({self.reason})"

    def as_record(self) -> dict[str, Any]:
        """A JSON-able dict for ``verdict.json`` (:attr:`ClaimResult.decisions`): the interval's numbers flat,
        the pre-registration as a dict. A NaN or infinite number is None, as :func:`losslab.io.write_json` writes
        it."""
        record = {"name": self.name, "verdict": self.verdict, "reason": self.reason, **self.interval.as_record(),
                  "power": self.power, "seeds_needed": self.seeds_needed, "underpowered": self.underpowered,
                  "p_above_margin": self.p_above_margin, "p_below_sesoi": self.p_below_sesoi, "unit": self.unit,
                  "margin": self.margin, "tolerance": self.tolerance,
                  "prereg": asdict(self.prereg) if self.prereg is not None else None}
        return lio.plain(record)


def decide(name: str, samples: Sequence[float], prereg: Preregistration) -> Decision:
    """The pre-registered verdict on the mean of ``samples`` (one effect per replicate: for a paired design, the
    per-seed differences), by ``prereg.test`` (t or bootstrap) and the rule of :func:`decide_interval`. The bootstrap
    (seed 0) needs :data:`losslab.claims.inference.BOOTSTRAP_MIN_N` replicates, inconclusive below."""
    if prereg.test == "normal":
        raise ValueError(f"{name}: a 'normal' test decides an estimate with its standard error: use decide_estimate")
    x = np.asarray(samples, float).ravel()
    return decide_interval(name, mean_interval(x, prereg.alpha, prereg.test), prereg,
                           missing=int((~np.isfinite(x)).sum()))


def decide_estimate(name: str, estimate: float, se: float, n: int, prereg: Preregistration) -> Decision:
    """The pre-registered verdict on one estimate whose standard error comes from theory (``test: normal``, e.g. a
    log ratio of standard deviations over ``n`` seeds), by the rule of :func:`decide_interval`."""
    iv = normal_interval(float(estimate), float(se), int(n), prereg.alpha)
    return decide_interval(name, iv, prereg, missing=0 if math.isfinite(estimate) and math.isfinite(se) else 1)


def decide_interval(name: str, iv: Interval, prereg: Preregistration, missing: int = 0) -> Decision:
    """The pre-registered verdict on an interval: a missing value or no interval (fewer than 2 replicates) ->
    inconclusive; upper bound < sesoi -> not reproduced; lower bound > margin -> reproduced; else inconclusive,
    saying whether more replicates would decide it (80% power at the sesoi, from the measured spread). For an "at
    least" claim (sesoi = margin) power has no reference effect and is not computed."""
    p, n, u = prereg, iv.n, prereg.unit
    at_least = p.sesoi == p.margin
    sd = iv.sd if iv.method != "normal" else iv.se * math.sqrt(max(n, 1))
    pw = math.nan if at_least else power(p.sesoi, sd, n, p.alpha, p.margin)
    needed = None if at_least else seeds_for_power(p.sesoi, sd, p.alpha, TARGET_POWER, p.margin)
    under = False if at_least else (needed is None or n < needed)
    level = f"{100 * (1 - p.alpha):g}%"
    if missing:
        verdict, reason = INCONCLUSIVE, f"a value is missing ({missing} of {n}: a diverged run?)"
    elif n < 2 and iv.method != "normal":
        verdict, reason = INCONCLUSIVE, f"{n} {p.replicate}{'s' if n != 1 else ''}: a confidence bound needs at least 2"
    elif not iv.valid:  # the bootstrap below its minimum
        verdict, reason = INCONCLUSIVE, f"the bootstrap needs at least {BOOTSTRAP_MIN_N} replicates, got {n}"
    elif iv.upper < p.sesoi:
        verdict = NOT_REPRODUCED
        if iv.upper < p.margin or at_least:
            reason = f"{level} upper bound {_num(iv.upper, u)} < {_num(p.margin, u)}: the interval is on the wrong side"
        else:
            reason = (f"{level} upper bound {_num(iv.upper, u)} < smallest effect of interest {_num(p.sesoi, u)}: "
                      f"smaller than the smallest effect of interest")
    elif iv.lower > p.margin:
        verdict, reason = REPRODUCED, f"{level} lower bound {_num(iv.lower, u)} > {_num(p.margin, u)}"
    elif at_least:
        verdict = INCONCLUSIVE
        reason = (f"interval too wide: {n} {_plural(p.replicate)}, interval [{_num(iv.lower)}, "
                  f"{_num(iv.upper, u)}] covers {_num(p.margin, u)}")
    else:
        verdict = INCONCLUSIVE
        why = ("too few seeds" if p.replicate == "seed" else "too few replicates") if under else "interval too wide"
        need = (f"80% power needs {needed} {_plural(p.replicate)}" if needed is not None else
                "80% power is out of reach within 1000 replicates")
        reason = (f"{why}: {n} {_plural(p.replicate)}, interval [{_num(iv.lower)}, {_num(iv.upper, u)}] covers "
                  f"{_num(p.margin, u)} and {_num(p.sesoi, u)}; {need}" + (" (underpowered at this scale)" if under
                                                                           else ""))
    return Decision(name, verdict, iv, p, pw, needed, reason, under, iv.p_above(p.margin), iv.p_below(p.sesoi),
                    unit=u, margin=p.margin)


def decide_tolerance(name: str, value: float, margin: float, tolerance: float, unit: str) -> Decision:
    """The verdict on one deterministic number that the pre-registration gives a stated ``tolerance``:
    reproduced when ``value > margin + tolerance``, not reproduced when ``value < margin - tolerance``,
    inconclusive within (or when ``value`` is NaN). Its interval has ``n = 1`` and bounds equal to the value;
    its p-values are 0 for the verdict it reached and 1 otherwise (:func:`combine` reads them so)."""
    if not (math.isfinite(tolerance) and tolerance >= 0) or not math.isfinite(margin):
        raise ValueError(f"{name}: the margin must be finite and the tolerance finite and >= 0 "
                         f"(got {margin!r}, {tolerance!r})")
    v = float(value)
    iv = Interval(v, 0.0, 1, v, v, math.nan, "tolerance")
    band = f"{_num(margin, unit)} +- {_num(tolerance, unit)}"
    if math.isnan(v):
        verdict, reason = INCONCLUSIVE, "a value is missing (NaN)"
    elif v > margin + tolerance:
        verdict, reason = REPRODUCED, f"{_num(v, unit)} > {band}"
    elif v < margin - tolerance:
        verdict, reason = NOT_REPRODUCED, f"{_num(v, unit)} < {band}"
    else:
        verdict, reason = INCONCLUSIVE, f"{_num(v, unit)} is within the stated tolerance ({band})"
    return Decision(name, verdict, iv, None, math.nan, None, reason, False,
                    0.0 if verdict == REPRODUCED else 1.0, 0.0 if verdict == NOT_REPRODUCED else 1.0,
                    unit=unit, margin=float(margin), tolerance=float(tolerance))


def combine(decisions: Sequence[Decision], alpha: float, primary: str | None = None) -> tuple[str, str]:
    """The verdict of a claim made of several decisions, with a one-line reason naming the deciding part(s).

    With ``primary`` (a part's name) that part decides and the others are shown only; a primary part measured per
    label (decisions named ``"<primary> <label>"``) decides by combining its labels as below. Otherwise an
    intersection-union test: reproduced only if every part is (level ``alpha`` without adjustment); not
    reproduced when some part's p-value of H0 "effect >= sesoi" (:attr:`Decision.p_below_sesoi`) is below
    ``alpha`` after Holm's adjustment over the parts (a tolerance part counts as p = 0 when not reproduced, 1
    otherwise); inconclusive otherwise."""
    parts = list(decisions)
    if not parts:
        raise ValueError("combine needs at least one decision")
    if primary is not None:
        chosen = [d for d in parts if d.name == primary or d.name.startswith(primary + " ")]
        if not chosen:
            raise ValueError(f"primary part {primary!r} is not among {[d.name for d in parts]}")
        others = len(parts) - len(chosen)
        shown = f"; {others} other part(s) shown only" if others else ""
        if len(chosen) == 1:
            return chosen[0].verdict, f"primary part {chosen[0].name}: {chosen[0].reason}" + shown
        verdict, reason = combine(chosen, alpha)  # a primary part measured per label: its labels by Holm
        return verdict, f"primary part {primary} ({len(chosen)} labels): {reason}" + shown
    if all(d.verdict == REPRODUCED for d in parts):
        return REPRODUCED, f"every part reproduced ({', '.join(d.name for d in parts)})"
    adjusted = holm_adjust([d.p_below_sesoi for d in parts])
    against = [(d, p) for d, p in zip(parts, adjusted) if p < alpha]
    if len(parts) == 1:  # one part: its own decision, which the rules below give too
        d = parts[0]
        return (NOT_REPRODUCED if against else INCONCLUSIVE), f"{d.name}: {d.reason}"
    if against:
        named = ", ".join(f"{d.name} (Holm-adjusted p {p:.3g})" for d, p in against)
        return NOT_REPRODUCED, f"not reproduced by {named} < {alpha:g} over {len(parts)} parts"
    named = ", ".join(f"{d.name} ({d.verdict} alone, Holm-adjusted p {p:.3g})" if d.verdict == NOT_REPRODUCED
                      else f"{d.name} ({d.verdict})" for d, p in zip(parts, adjusted) if d.verdict != REPRODUCED)
    return INCONCLUSIVE, (f"not every part reproduced: {named}; no part is shown below its smallest effect of "
                          f"interest after Holm's adjustment over {len(parts)} parts")


# ---------------------------------------------------------------- a claim's pre-registered decision --------------

def binomial_tolerance(p: float, n: int) -> float:
    """The tolerance rule ``binomial`` of ``config/claims.yaml``: two binomial standard errors of a fraction ``p``
    measured on ``n`` items, ``2 sqrt(p (1 - p) / n)`` (e.g. a test error on ``n`` test images)."""
    if n < 1 or not 0 <= p <= 1:
        raise ValueError(f"binomial tolerance needs 0 <= p <= 1 and n >= 1, got p={p!r}, n={n!r}")
    return 2.0 * math.sqrt(p * (1 - p) / n)


@dataclass(frozen=True)
class Measured:
    """What a claim measured for one part of its decision, in the form its ``test`` needs: ``samples`` (one effect
    per replicate: t, bootstrap), an ``estimate`` with its theoretical ``se`` over ``n`` (normal), or one
    deterministic ``value`` with the ``tolerance`` a named rule gave it (tolerance; None: the pre-registered number)."""

    samples: Sequence[float] = ()
    estimate: float = math.nan
    se: float = math.nan
    n: int = 0
    value: float = math.nan
    tolerance: float | None = None


@dataclass
class ClaimDecision:
    """A claim's verdict by its pre-registration: the verdict, the reason, and every part's :class:`Decision`."""

    verdict: str
    reason: str
    decisions: list[Decision]
    rule: str = ""  # the pre-registered decision in one line (decision_rule)

    def records(self) -> list[dict[str, Any]]:
        return [d.as_record() for d in self.decisions]


def decide_claim(decision: Mapping[str, Any], measured: Mapping[str, Measured | Mapping[str, Measured]],
                 requires: bool | None = True) -> ClaimDecision:
    """Apply a claim's pre-registered ``decision`` (its block of ``config/claims.yaml``, validated by
    :func:`losslab.pipeline.registry.check_decision`) to what it ``measured``: part name -> :class:`Measured`, or
    label -> :class:`Measured` for a part measured once per network (or per anything: one decision each, named
    ``"<part> <label>"``). ``requires`` is whether the claim's precondition held (False: inconclusive; None: it could
    not be checked). Every part must be measured. The parts combine by :func:`combine` (``primary``, or Holm)."""
    alpha = float(decision.get("alpha", 0.05))
    missing = [p["name"] for p in decision["parts"] if p["name"] not in measured]
    if missing:
        raise ValueError(f"the decision's parts {missing} were not measured (measured: {sorted(measured)})")
    out: list[Decision] = []
    for part in decision["parts"]:
        got = measured[part["name"]]
        labelled = got.items() if isinstance(got, Mapping) else [(None, got)]
        for label, m in labelled:
            name = part["name"] if label is None else f"{part['name']} {label}"
            if part.get("test", "t") == "tolerance":
                tol = part["tolerance"] if m.tolerance is None else m.tolerance
                if isinstance(tol, str):
                    raise ValueError(f"{name}: the tolerance rule {tol!r} needs the tolerance it gives, measured")
                out.append(decide_tolerance(name, m.value, float(part["margin"]), float(tol), part["unit"]))
                continue
            fields_ = {k: v for k, v in part.items() if k != "tolerance"}
            prereg = Preregistration.from_mapping({**fields_, "alpha": alpha}, name)
            if prereg.test == "normal":
                out.append(decide_estimate(name, m.estimate, m.se, m.n, prereg))
            else:
                out.append(decide(name, m.samples, prereg))
    primary = decision.get("primary")
    verdict, reason = combine(out, alpha, primary)
    if requires is not True:
        what = decision.get("requires", "the claim's precondition")
        verdict = INCONCLUSIVE
        reason = (f"precondition not met ({what})" if requires is False else f"precondition not checked ({what})") \
            + f"; the parts alone: {reason}"
    return ClaimDecision(verdict, reason, out, decision_rule(decision))


def decision_rule(decision: Mapping[str, Any]) -> str:
    """A claim's pre-registered ``decision`` block in one line, the ``rule`` of its :class:`ClaimResult`: each
    part's effect, margin and test, how the parts combine, the precondition and the comparison that decides."""
    parts = []
    for p in decision["parts"]:
        how = (f"tolerance {p['tolerance']}" if p.get("test") == "tolerance" else
               f"{p.get('test', 't')} test over {_plural(p.get('replicate', 'seed'))}, sesoi {p['sesoi']:g}")
        parts.append(f"{p['name']}: {p['effect']} > {p['margin']:g} {p['unit']} ({how})")
    combined = (f"primary part {decision['primary']}" if decision.get("primary") else
                "reproduced when every part is, not reproduced when one is below its sesoi after Holm")
    return (f"pre-registered decision (config/claims.yaml, alpha {decision.get('alpha', 0.05):g}; {combined}): "
            + "; ".join(parts) + (f"; requires: {decision['requires']}" if decision.get("requires") else "")
            + (f"; comparison: {decision['comparison']}" if decision.get("comparison") else ""))


# ---------------------------------------------------------------- what an undecided claim would need --------

SCALE_ORDER = ("smoke", "desk", "cpu", "paper")


def undecided_note(claim: Mapping[str, Any], result: Mapping[str, Any] | None,
                   seeds_by_scale: Mapping[str, Mapping[str, int]]) -> str:
    """Why an inconclusive claim is not decided, and the smallest scale whose seeds give its undecided parts 80%
    power at their smallest effect of interest (with this run's spread), or that none does. Empty for a decided or
    pending claim."""
    if not result or result.get("verdict") != INCONCLUSIVE:
        return ""
    parts = [d for d in result.get("decisions", []) if d.get("verdict") == INCONCLUSIVE]
    if not parts:  # every part decided, the claim not: a precondition or the combination
        return "undecided: " + (result.get("notes") or "see its decision")
    exp = claim.get("experiment", "")
    scales = [sc for sc in SCALE_ORDER if sc in seeds_by_scale] + [sc for sc in seeds_by_scale if sc not in SCALE_ORDER]
    out = []
    for d in parts:
        pre = d.get("prereg") or {}
        needed = d.get("seeds_needed")
        if pre.get("replicate", "seed") != "seed" or needed is None:
            n = d.get("n")
            why = (f"{n} replicate{'s' if n != 1 else ''} ({pre.get('replicate', 'seed')})" if n is not None and n < 2
                   else "no power estimate")
            out.append(f"{d['name']}: {why}")
            continue
        enough = [sc for sc in scales if seeds_by_scale[sc].get(exp, 0) >= needed]
        out.append(f"{d['name']}: needs {needed} seeds" + (f", which the {enough[0]} scale gives" if enough
                                                            else ", more than any scale gives"))
    return "undecided: " + "; ".join(out)
