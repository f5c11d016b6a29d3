"""What a claim's workflow job hands over to its family's function: one calling convention for every claim.

The rule of a claim (generated from the registry, ``workflow/rules/claims.smk``) passes its registry entry and
scale, its named inputs and outputs and the per-claim params its family's rule file gives it (settings, run specs,
run directories by variant, ...); ``progress`` is passed once, here. The rule's ``data_dir`` and ``resources``
params only record what the job's data depend on (so that changing them reruns it): the job reads its data from
the roots :func:`losslab.pipeline.job.start_job` set from the config (:func:`losslab.core.data.data_roots`).
:func:`losslab.claims.jobs.run_claim` looks the claim id up in its family's ``CLAIMS = {id: fn(job)}``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from losslab.pipeline.registry import check_for


@dataclass(frozen=True)
class ClaimJob:
    """The registry entry, the scale, the job's named inputs and outputs (file paths, or lists of them), its
    per-claim ``params`` and where the outputs go (the verdict's folder)."""

    claim: Mapping[str, Any]
    scale: str
    out_dir: Path
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = False

    @classmethod
    def of_rule(cls, inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]) -> ClaimJob:
        """The job of a claim rule from its named inputs, outputs and params (``claim``, ``scale`` and the
        optional ``progress`` among them; the optional ``data_dir`` and ``resources`` are dropped: the job's data
        roots come from its config, :func:`losslab.pipeline.job.start_job`)."""
        p = dict(params)
        for recorded in ("data_dir", "resources"):
            p.pop(recorded, None)
        return cls(claim=p.pop("claim"), scale=p.pop("scale"), out_dir=Path(outputs["verdict"]).parent,
                   inputs=dict(inputs), outputs=dict(outputs), progress=p.pop("progress", False), params=p)

    @property
    def id(self) -> str:
        return self.claim["id"]

    @property
    def check(self) -> Mapping[str, Any]:
        """The claim's pass rule at this scale (``checks`` of its registry entry)."""
        return check_for(self.claim, self.scale)

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.params["settings"]

    @property
    def curves(self) -> Mapping[str, Any]:
        return self.params["curves"]

    @property
    def runs(self) -> Mapping[str, Mapping[str, Any]]:
        """``variant -> run spec`` of the runs the claim reads."""
        return self.params["runs"]

    @property
    def dirs(self) -> Mapping[str, str]:
        """``variant -> run directory`` of the runs the claim reads (the rule's ``dirs``)."""
        return self.params["dirs"]

    @property
    def seeds(self) -> Sequence[int]:
        return self.params["seeds"]

    def files(self, name: str) -> list[str]:
        value = self.inputs.get(name, [])
        return [str(value)] if isinstance(value, (str, os.PathLike)) else [str(v) for v in value]
