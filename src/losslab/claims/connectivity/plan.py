"""What the mode-connectivity family plans, without torch: the DAG's parse reads this module.

One experiment of the scale trains every mode as a variant: Gotmare et al.'s models A-G, an SGDR run,
narrower copies of G for the width sweep. Its ``connectivity`` key says what to do with them: the curve settings
(:func:`curve_settings`), the *pairs* of endpoints and the curve kinds between them (:func:`pairs`), an
:class:`Endpoint` being ``<variant>/seed<k>`` (the run's final weights) or ``<variant>/seed<k>/epoch<e>`` (a
snapshot its recipe keeps); one key per claim id with that claim's settings. :func:`check_settings` validates it
all when the DAG is parsed. The jobs and analyses are in :mod:`losslab.claims.connectivity.analysis`."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from losslab.claims.runs import weights_file
from losslab.claims.settings import Settings
from losslab.pipeline.config import ConfigError, run_spec

log = logging.getLogger(__name__)

KINDS = ("bezier", "polychain")
ENDPOINT_PATTERN = r"(?P<variant>[A-Za-z0-9_]+)/seed(?P<seed>[0-9]+)(?:/epoch(?P<epoch>[0-9]+))?"
GARIPOV = "garipov-segment-barrier-and-curves"
GOTMARE = "gotmare-resilient-connectivity"
SGDR = "gotmare-sgdr-barriers"
WIDTH = "garipov-overparam-connectivity"
SCALING = "trivial-scaling-path"
FGE = "fge-ensembles"
CLAIM_IDS = (GARIPOV, GOTMARE, SGDR, WIDTH, SCALING, FGE)


# ---------------------------------------------------------------- endpoints and settings ------------------

@dataclass(frozen=True)
class Endpoint:
    """One end of a curve: the final weights of ``variant`` seed ``seed``, or its snapshot after ``epoch``."""

    variant: str
    seed: int
    epoch: int | None = None

    @classmethod
    def parse(cls, ref: str) -> "Endpoint":
        m = re.fullmatch(ENDPOINT_PATTERN, str(ref))
        if m is None:
            raise ConfigError(f"endpoint {ref!r}: expected '<variant>/seed<k>' or '<variant>/seed<k>/epoch<e>'")
        return cls(m["variant"], int(m["seed"]), None if m["epoch"] is None else int(m["epoch"]))

    def __str__(self) -> str:
        return f"{self.variant}/seed{self.seed}" + ("" if self.epoch is None else f"/epoch{self.epoch}")

    def weights_file(self, run_dir: str | os.PathLike) -> Path:
        """The state_dict file under the variant's run directory (the output of the ``train`` rule)."""
        return weights_file(run_dir, self.seed, self.epoch)


def _variants(experiment: Mapping[str, Any]) -> Mapping[str, Any]:
    return experiment.get("variants", {"default": {}})


def _keeps(experiment: Mapping[str, Any], variant: str, epoch: int) -> bool:
    recipe = run_spec(experiment, variant)["recipe"]
    snaps = recipe.get("snapshots", ())
    return (snaps == "all" and 0 <= epoch <= recipe["epochs"]) or (snaps != "all" and epoch in set(snaps or ()))


def check_endpoint(experiment: Mapping[str, Any], ep: Endpoint, where: str) -> None:
    """The endpoint names a variant and seed the experiment trains, and a snapshot its recipe keeps."""
    if ep.variant not in _variants(experiment):
        raise ConfigError(f"{where}: endpoint {ep}: no variant {ep.variant!r}; known: {sorted(_variants(experiment))}")
    if ep.seed not in experiment["seeds"]:
        raise ConfigError(f"{where}: endpoint {ep}: seed {ep.seed} is not trained; seeds: {experiment['seeds']}")
    if ep.epoch is not None and not _keeps(experiment, ep.variant, ep.epoch):
        raise ConfigError(f"{where}: endpoint {ep}: variant {ep.variant!r} keeps no snapshot of epoch {ep.epoch} "
                          f"(add it to its recipe's `snapshots`)")


@dataclass(frozen=True)
class PlaneSettings(Settings):
    """``connectivity.curves.plane``: the grid of the plane through a curve's endpoints and bend."""

    n: int = 21
    margin: float = 0.2


@dataclass(frozen=True)
class CurveSettings(Settings):
    """An experiment's ``connectivity.curves`` block: the pairs, and how every curve is trained (recipe, bends,
    seed), evaluated (points, bn, n_train, n_test, chunk) and drawn in its plane (tile_rows, plane)."""

    pairs: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    bends: int = 1
    seed: int = 0
    points: int = 61
    bn: str = "recompute"
    n_train: int | None = None
    n_test: int | None = None
    chunk: int = 250
    tile_rows: int = 1
    plane: PlaneSettings = PlaneSettings()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], where: str | None = None) -> CurveSettings:
        where = where or "connectivity.curves"
        if isinstance(mapping, Mapping) and "plane" in mapping:
            mapping = {**mapping, "plane": PlaneSettings.of(mapping["plane"])}
        return super().from_mapping(mapping, where)

    def subset(self, keys: Iterable[str]) -> dict[str, Any]:
        """The settings ``keys`` as plain data: what a job depends on (and only that: an edit elsewhere does not
        rerun it)."""
        d = asdict(self)
        return {k: d[k] for k in keys}


def curve_settings(experiment: Mapping[str, Any]) -> CurveSettings:
    """The experiment's ``connectivity.curves`` (:class:`CurveSettings`; an unknown key is named)."""
    conn = experiment.get("connectivity")
    if conn is None or "curves" not in conn:
        raise ConfigError("this experiment has no `connectivity.curves` settings")
    return CurveSettings.from_mapping(conn["curves"])


def pairs(experiment: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``pair -> {a, b (Endpoint), kinds, plane}``, every endpoint checked."""
    out = {}
    for name, spec in curve_settings(experiment).pairs.items():
        a, b = Endpoint.parse(spec["a"]), Endpoint.parse(spec["b"])
        for ep in (a, b):
            check_endpoint(experiment, ep, f"connectivity.curves.pairs.{name}")
        if a == b:
            raise ConfigError(f"connectivity.curves.pairs.{name}: both endpoints are {a}")
        out[name] = {"a": a, "b": b, "kinds": list(spec["kinds"]), "plane": bool(spec.get("plane", False))}
    return out


def pair_curves(experiment: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (pair, kind) the experiment trains a curve for."""
    return [(p, k) for p, spec in pairs(experiment).items() for k in spec["kinds"]]


def plane_curves(experiment: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every (pair, kind) whose plane is drawn (pairs with ``plane: true``)."""
    return [(p, k) for p, spec in pairs(experiment).items() if spec["plane"] for k in spec["kinds"]]


def _need_curve(all_pairs: Mapping[str, Any], pair: str, kind: str, where: str) -> None:
    if pair not in all_pairs:
        raise ConfigError(f"{where}: pair {pair!r} is not in connectivity.curves.pairs ({sorted(all_pairs)})")
    if kind not in all_pairs[pair]["kinds"]:
        raise ConfigError(f"{where}: pair {pair!r} trains no {kind} curve (kinds: {all_pairs[pair]['kinds']})")


def check_settings(experiment: Mapping[str, Any]) -> None:
    """Every reference of the experiment's ``connectivity`` settings resolves (before any job runs)."""
    conn = experiment["connectivity"]
    ps = pairs(experiment)
    if GARIPOV in conn:
        for kind in KINDS:
            _need_curve(ps, conn[GARIPOV]["pair"], kind, f"connectivity.{GARIPOV}")
    if GOTMARE in conn:
        for label, pair in conn[GOTMARE]["pairs"].items():
            if pair not in ps:
                raise ConfigError(f"connectivity.{GOTMARE}.pairs.{label}: no pair {pair!r}")
    if WIDTH in conn:
        for pair in conn[WIDTH]["pairs"]:
            _need_curve(ps, pair, conn[WIDTH]["kind"], f"connectivity.{WIDTH}")
    if SGDR in conn:
        s = conn[SGDR]
        for role in ("sgdr", "step"):
            for seed in experiment["seeds"]:
                for e in s["epochs"]:
                    check_endpoint(experiment, Endpoint(s[role], seed, e), f"connectivity.{SGDR}.{role}")
    if SCALING in conn:
        check_endpoint(experiment, Endpoint.parse(conn[SCALING]["endpoint"]), f"connectivity.{SCALING}")
    if FGE in conn:
        s = conn[FGE]
        for seed in experiment["seeds"]:
            check_endpoint(experiment, Endpoint(s["variant"], seed, s["start_epoch"]), f"connectivity.{FGE}")
        if s["cycle"] % 2 or s["epochs"] // s["cycle"] < 2:
            raise ConfigError(f"connectivity.{FGE}: the cycle must be even and fit at least twice into `epochs` "
                              f"(two snapshots), not cycle {s['cycle']} in {s['epochs']} epochs")
        _need_curve(ps, s["curve"]["pair"], s["curve"]["kind"], f"connectivity.{FGE}.curve")
