"""The verdict logic: every decision rule, and the verdict record (:class:`ClaimResult`).

A verdict is one of ``reproduced``, ``not reproduced`` or ``inconclusive``. The rules are written in
``config/claims.yaml`` before any run, per claim and per scale; this module only applies them.

The workhorse is the paired comparison over seeds (:func:`paired`): for a claim "A is larger than B", each seed
gives a difference ``d_i = A_i - B_i`` (same seed, same initialisation for both arms). With ``n`` seeds, mean
``m`` and standard error ``se``:

* ``reproduced`` when ``m > 0`` and at least ``min_agree`` of the ``n`` differences are positive;
* ``not reproduced`` when ``m < 0`` by more than one standard error (the effect is reversed), or when
  ``m <= 0`` with a spread of zero (deterministically absent or reversed);
* ``inconclusive`` otherwise: the spread over seeds covers the effect, or a value is missing (NaN: e.g. a
  diverged run), so the comparison cannot be made.

Claims made of several comparisons combine with :func:`all_of`: reproduced only if every part is, not
reproduced if any part is not, inconclusive otherwise."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from losslab.pipeline import cpu_kernels
from losslab import io as lio

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)


@dataclass
class Comparison:
    """One directional comparison over seeds and its verdict."""

    name: str
    diffs: list[float]
    mean: float
    se: float
    agree: int
    min_agree: int
    verdict: str

    def describe(self) -> str:
        return (f"{self.name}: mean diff {self.mean:+.4g} (se {self.se:.2g}), "
                f"{self.agree}/{len(self.diffs)} seeds agree (need {self.min_agree}) -> {self.verdict}")


def paired(name: str, larger: Sequence[float], smaller: Sequence[float], min_agree: int | float) -> Comparison:
    """Verdict for the claim "``larger`` exceeds ``smaller``", paired by seed.

    ``min_agree`` is a count of seeds, or a fraction of them when below 1.
    """
    a, b = np.asarray(larger, float), np.asarray(smaller, float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"{name}: paired comparison needs equal, non-empty seed lists ({a.size} vs {b.size})")
    d = a - b
    n = d.size
    need = int(math.ceil(min_agree * n)) if min_agree < 1 else int(min_agree)
    need = min(need, n)
    finite = bool(np.isfinite(d).all())
    m = float(d.mean()) if finite else math.nan
    se = float(d.std(ddof=1) / math.sqrt(n)) if finite and n > 1 else 0.0
    agree = int((d > 0).sum())
    if not finite:  # a diverged or missing run: the comparison cannot be made
        verdict = INCONCLUSIVE
    elif m > 0 and agree >= need:
        verdict = REPRODUCED
    elif m < 0 and (-m > se or se == 0.0):
        verdict = NOT_REPRODUCED
    elif m == 0 and se == 0.0:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Comparison(name, [float(x) for x in d], m, se, agree, need, verdict)


def all_of(verdicts: Iterable[str]) -> str:
    vs = list(verdicts)
    if vs and all(v == REPRODUCED for v in vs):
        return REPRODUCED
    if any(v == NOT_REPRODUCED for v in vs):
        return NOT_REPRODUCED
    return INCONCLUSIVE


# ---------------------------------------------------------------- deterministic and per-seed checks ----------

def verdict_of(ok: bool | None) -> str:
    """A sub-check's verdict word: None (could not be evaluated, e.g. NaN) is inconclusive."""
    if ok is None:
        return INCONCLUSIVE
    return REPRODUCED if ok else NOT_REPRODUCED


def threshold(name: str, value: float, limit: float, at_least: bool) -> Comparison:
    """One deterministic check ``value >= limit`` (``at_least``) or ``value <= limit``: reproduced or not
    (inconclusive when the value is NaN). Float noise below 1e-12 counts as equality."""
    diff = (value - limit) if at_least else (limit - value)
    if not math.isfinite(diff):
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if diff >= -1e-12 else NOT_REPRODUCED
    return Comparison(f"{name} ({value:.4g} {'>=' if at_least else '<='} {limit:.4g})", [float(diff)],
                      float(diff), 0.0, int(diff >= -1e-12), 1, verdict)


def at_least(name: str, value: float, bound: float, fail: str = NOT_REPRODUCED) -> Comparison:
    """A deterministic check ``value >= bound`` in the form of a comparison (NaN: inconclusive)."""
    d = float(value) - float(bound)
    if not math.isfinite(d):
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if d >= 0 else fail
    return Comparison(name, [d], d if math.isfinite(d) else math.nan, 0.0, int(d >= 0), 1, verdict)


def every_seed_at_least(name: str, values: Sequence[float], bound: float, fail: str = INCONCLUSIVE) -> Comparison:
    """``value >= bound`` in every seed; ``fail`` (default inconclusive) when a seed misses it."""
    d = np.asarray(values, float) - bound
    n = len(d)
    finite = bool(np.isfinite(d).all())
    agree = int((d >= 0).sum())
    verdict = INCONCLUSIVE if not finite else (REPRODUCED if agree == n else fail)
    se = float(d.std(ddof=1) / math.sqrt(n)) if finite and n > 1 else 0.0
    return Comparison(name, [float(x) for x in d], float(d.mean()) if finite else math.nan, se, agree, n, verdict)


def seed_check(name: str, margins: Sequence[float], min_agree: float) -> Comparison:
    """A per-seed pass/fail check as a :class:`losslab.claims.verdicts.Comparison`: seed ``i`` passes when
    ``margins[i] > 0``. Reproduced when at least ``min_agree`` (a count, or a fraction when below 1) of the
    seeds pass, not reproduced otherwise, inconclusive when a margin is NaN (a quantity could not be
    measured). For deterministic thresholds, where a paired mean has no meaning."""
    d = np.asarray(margins, float)
    n = d.size
    if n == 0:
        raise ValueError(f"{name}: no seeds")
    need = min(n, math.ceil(min_agree * n) if min_agree < 1 else int(min_agree))
    agree = int((d > 0).sum())
    finite = bool(np.isfinite(d).all())
    verdict = INCONCLUSIVE if not finite else (REPRODUCED if agree >= need else NOT_REPRODUCED)
    se = float(d.std(ddof=1) / math.sqrt(n)) if finite and n > 1 else 0.0
    return Comparison(name, [float(x) for x in d], float(d.mean()) if finite else math.nan, se, agree, need,
                      verdict)


def ratio_at_least(name: str, larger: Sequence[float], smaller: Sequence[float], ratio: float,
                   min_agree: float) -> Comparison:
    """"``larger`` >= ``ratio`` x ``smaller``", paired by seed on a log scale: the per-seed log-ratio minus
    ``log(ratio)`` must be positive on average and in ``min_agree`` of the seeds (:func:`paired`)."""
    a = np.log(np.maximum(np.asarray(larger, float), 1e-12))
    b = np.log(np.maximum(np.asarray(smaller, float), 1e-12)) + math.log(ratio)
    return paired(name, a, b, min_agree)


def rank_trend(name: str, widths: Sequence[float], values: Sequence[float]) -> Comparison:
    """"``values`` decrease with ``widths``": reproduced when the Spearman rank correlation is -1 (strictly
    decreasing), not reproduced when it is >= 0, inconclusive in between or when a value is NaN."""
    if len(widths) < 3:
        raise ValueError(f"{name}: a trend needs at least three widths, got {len(widths)}")
    from scipy.stats import spearmanr  # SciPy's stats: ~0.3 s to import, only this rule needs it

    rho = float(spearmanr(widths, values).statistic) if np.all(np.isfinite(values)) else math.nan
    if not math.isfinite(rho):
        verdict = INCONCLUSIVE
    elif rho <= -1 + 1e-12:
        verdict = REPRODUCED
    elif rho >= 0:
        verdict = NOT_REPRODUCED
    else:
        verdict = INCONCLUSIVE
    return Comparison(f"{name} (Spearman rho {rho:+.2f} with width)", [rho], rho, 0.0, int(rho < 0), 1, verdict)


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
    comparisons: list[Comparison] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)  # every number the regression test compares
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    notes: str = ""
    # the standard error of each number that is a mean over seeds (filled from the numbers given as Estimate)
    uncertainty: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {self.verdict!r}")
        for key, value in self.numbers.items():
            if isinstance(value, Estimate) and math.isfinite(value.se):
                self.uncertainty.setdefault(key, value.se)
        self.numbers = {k: float(v) if isinstance(v, Estimate) else v for k, v in self.numbers.items()}

    @classmethod
    def from_comparison(cls, comp: Comparison, **fields: Any) -> ClaimResult:
        """The result of a claim decided by the one paired comparison ``comp``: its verdict, ``comp`` as the
        only comparison and its description as the notes; ``fields`` are the other fields (``id``, ``scale``,
        ``rule``, ``measured``, ``n_seeds``, ``numbers``, ``figures``, ``tables``)."""
        return cls(verdict=comp.verdict, comparisons=[comp], notes=comp.describe(), **fields)

    def write(self, path: str | Path) -> None:
        """``verdict.json``: the result and the platform its numbers were made on (losslab.pipeline.cpu_kernels)."""
        lio.write_json(path, {**asdict(self), "platform": cpu_kernels.platform_record()})


def load_result(path: str | Path) -> dict[str, Any]:
    return lio.read_json(path)
