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
    return list(claims)


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
