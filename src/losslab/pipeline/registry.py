"""The claims registry, ``config/claims.yaml``: per claim its id, source, statement, the source's number, its
family and, per scale, the pass rule written before any run (:func:`check_for`). :func:`load_registry` validates it
when it loads (required keys, unique ids, declared regression tolerances) and names the culprit."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


from losslab.pipeline.config import ConfigError, read_yaml


# ------------------------------------------------------------------ registry --------------------------------

REQUIRED = ("id", "source", "statement", "reported", "family")


def load_registry(path: str | Path) -> list[dict[str, Any]]:
    """Read ``config/claims.yaml``: a list of claims, each with an id, source, statement, reported figure,
    family, and either ``rule`` (the Snakemake rule implementing it) with ``checks`` per scale, or
    ``pending`` (why it is not implemented yet)."""
    claims = read_yaml(path)
    if not isinstance(claims, list):
        raise ConfigError(f"{path}: expected a list of claims")
    seen: set[str] = set()
    for i, c in enumerate(claims):
        where = f"{path}: claim #{i + 1} ({c.get('id', '?') if isinstance(c, Mapping) else c!r})"
        if not isinstance(c, Mapping):
            raise ConfigError(f"{where}: expected a mapping")
        missing = [k for k in REQUIRED if k not in c]
        if missing:
            raise ConfigError(f"{where}: missing keys {missing}")
        if c["id"] in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(c["id"])
        if ("rule" in c) == ("pending" in c):
            raise ConfigError(f"{where}: needs exactly one of 'rule' (implemented) or 'pending' (why not yet)")
        if "rule" in c and not isinstance(c.get("checks"), Mapping):
            raise ConfigError(f"{where}: an implemented claim needs 'checks' (the pass rule per scale)")
        _check_tolerances(c.get("regression_tolerance", {}), where)
        if "rule" in c or "decision" in c:  # a pending claim may pre-register its decision before its rule exists
            check_decision(c.get("decision"), f"{where}: decision")
        _check_context(c.get("context", []), where)
    return list(claims)


DECISION_KEYS = {"alpha", "parts", "primary", "combine", "requires", "comparison", "replicates"}
PART_TEXT = ("name", "effect", "unit")
PART_OPTIONAL_TEXT = ("sesoi_basis", "tolerance_basis", "replicate", "how")
TESTS = ("t", "bootstrap", "normal", "tolerance")
# a tolerance given by a rule instead of a number (losslab.claims.verdicts.tolerance_of)
TOLERANCE_RULES = ("binomial",)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


def check_decision(block: Any, where: str) -> None:
    """A claim's pre-registered ``decision`` (its meaning: the comment at the top of ``config/claims.yaml``): known
    keys, ``alpha`` in (0, 0.5), at least one part, each with a name, effect, unit, a numeric ``margin``, and either
    ``test: tolerance`` with a ``tolerance`` (a number >= 0 or a rule of :data:`TOLERANCE_RULES`) or a test of
    :data:`TESTS` with a numeric ``sesoi >= margin``; ``primary`` names a part. Raises ConfigError naming the key."""
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: every implemented claim needs its pre-registered decision (a mapping with parts)")
    unknown = sorted(set(block) - DECISION_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(DECISION_KEYS)}")
    alpha = block.get("alpha", 0.05)
    if not (_number(alpha) and 0 < alpha < 0.5):
        raise ConfigError(f"{where}: alpha must be a number in (0, 0.5), not {alpha!r}")
    parts = block.get("parts")
    if not isinstance(parts, list) or not parts:
        raise ConfigError(f"{where}: parts must be a non-empty list of effects")
    names = []
    for k, part in enumerate(parts):
        here = f"{where}.parts[{k}]"
        if not isinstance(part, Mapping):
            raise ConfigError(f"{here}: expected a mapping")
        known = {*PART_TEXT, *PART_OPTIONAL_TEXT, "margin", "sesoi", "tolerance", "test"}
        if set(part) - known:
            raise ConfigError(f"{here}: unknown keys {sorted(set(part) - known)}; known: {sorted(known)}")
        for key in PART_TEXT:
            if not isinstance(part.get(key), str) or not part[key]:
                raise ConfigError(f"{here}: {key} must be given as text")
        here = f"{where}.parts[{k}] ({part['name']})"
        for key in PART_OPTIONAL_TEXT:
            if key in part and not isinstance(part[key], str):
                raise ConfigError(f"{here}: {key} must be text")
        test = part.get("test", "t")
        if test not in TESTS:
            raise ConfigError(f"{here}: test must be one of {TESTS}, not {test!r}")
        if not _number(part.get("margin")):
            raise ConfigError(f"{here}: margin must be a number, not {part.get('margin')!r}")
        if test == "tolerance":
            tol = part.get("tolerance")
            if not ((_number(tol) and tol >= 0) or tol in TOLERANCE_RULES):
                raise ConfigError(f"{here}: tolerance must be a number >= 0 or one of {TOLERANCE_RULES}, not {tol!r}")
        else:
            sesoi = part.get("sesoi")
            if not _number(sesoi) or sesoi < part["margin"]:
                raise ConfigError(f"{here}: sesoi (the smallest effect of interest) must be a number >= margin "
                                  f"({part['margin']!r}), not {sesoi!r}")
        names.append(part["name"])
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: part names must be unique: {names}")
    if "primary" in block and block["primary"] not in names:
        raise ConfigError(f"{where}: primary {block['primary']!r} names no part; parts: {names}")
    if block.get("combine", "holm") != "holm":
        raise ConfigError(f"{where}: combine must be 'holm', not {block['combine']!r}")
    for key in ("requires", "comparison", "replicates"):
        if key in block and not isinstance(block[key], str):
            raise ConfigError(f"{where}: {key} must be text")


def _check_context(context: Any, where: str) -> None:
    """``context``: a list of ``{ref, implies}``, the later papers printed under the claim's verdict."""
    ok = isinstance(context, list) and all(isinstance(c, Mapping) and set(c) == {"ref", "implies"}
                                           and all(isinstance(v, str) for v in c.values()) for c in context)
    if not ok:
        raise ConfigError(f"{where}: context must be a list of {{ref: <paper>, implies: <what it implies>}}")


def _check_tolerances(declared: Any, where: str) -> None:
    """``regression_tolerance``: glob of number names -> ``{abs: x}`` or ``{rel: x}``, x >= 0
    (:mod:`losslab.pipeline.regression`)."""
    if not isinstance(declared, Mapping):
        raise ConfigError(f"{where}: regression_tolerance must map number names (globs) to {{abs: x}} or {{rel: x}}")
    for glob, tol in declared.items():
        ok = (isinstance(tol, Mapping) and len(tol) == 1 and next(iter(tol)) in ("abs", "rel")
              and isinstance(next(iter(tol.values())), (int, float)) and next(iter(tol.values())) >= 0)
        if not ok:
            raise ConfigError(f"{where}: regression_tolerance[{glob!r}] = {tol!r}; expected {{abs: x}} or {{rel: x}} "
                              f"with a number x >= 0")


def check_for(claim: Mapping[str, Any], scale: str) -> Mapping[str, Any]:
    """The pass rule of ``claim`` at ``scale`` (``checks.<scale>``, falling back to ``checks.default``)."""
    checks = claim.get("checks", {})
    rule = checks.get(scale, checks.get("default"))
    if rule is None:
        raise ConfigError(f"claim {claim['id']}: no check for scale {scale!r} and no default")
    return rule


def registry_entry(registry: Sequence[Mapping[str, Any]], claim_id: str) -> Mapping[str, Any]:
    for c in registry:
        if c["id"] == claim_id:
            return c
    raise ConfigError(f"claim {claim_id!r} is not in the registry")
