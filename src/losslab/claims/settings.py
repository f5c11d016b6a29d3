"""Settings of a claim family's jobs: frozen dataclasses whose defaults live on the class.

A block of the scale config (an experiment's ``surface``, ``trajectory``, ``random_lines`` ...) becomes one of
these at the door (:meth:`Settings.from_mapping`), which names an unknown key and the block it is in before any
compute. A block also holds keys that the workflow reads and the job does not (which variants and seeds get the
job, its compute resources): those are :data:`PLAN_KEYS`, accepted and left out. Model: the training recipe
(:class:`losslab.core.trainer.Recipe`). Imports nothing heavy: the DAG's parse reads the connectivity plan's
settings.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, TypeVar

# keys of a settings block that the DAG reads (which variants and seeds, the job's resources), not the job
PLAN_KEYS = frozenset({"variants", "seeds", "gpu", "mem_mb", "runtime", "threads"})

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """A settings block with a key its job does not know, or of the wrong type."""


@dataclass(frozen=True)
class Settings:
    """Base of the typed settings classes: :meth:`from_mapping` validates, :meth:`of` accepts either form."""

    @classmethod
    def from_mapping(cls: type[S], mapping: Mapping[str, Any], where: str | None = None) -> S:
        """The settings of ``mapping`` over the class's defaults. An unknown key (not a field, not one of
        :data:`PLAN_KEYS`) raises :class:`SettingsError` naming it and ``where``."""
        where = where or cls.__name__
        if not isinstance(mapping, Mapping):
            raise SettingsError(f"{where}: expected a mapping of settings, not {type(mapping).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(mapping) - known - PLAN_KEYS
        if unknown:
            raise SettingsError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: v for k, v in mapping.items() if k in known})

    @classmethod
    def of(cls: type[S], settings: S | Mapping[str, Any]) -> S:
        """``settings`` as this class: itself, or read from a mapping by :meth:`from_mapping`."""
        return settings if isinstance(settings, cls) else cls.from_mapping(settings)
