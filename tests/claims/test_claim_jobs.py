"""One calling convention for every claim job (losslab.claims.jobs): every claim the registry gives a rule has a
function, found by its id, and a rule's inputs, outputs and params become one ClaimJob."""

from pathlib import Path

import pytest

from conftest import ROOT
from losslab.claims import jobs
from losslab.claims.claim_job import ClaimJob
from losslab.pipeline.registry import load_registry


def test_every_claim_with_a_rule_has_a_claim_function():
    ruled = {c["id"] for c in load_registry(ROOT / "config" / "claims.yaml") if "rule" in c}
    assert ruled == set(jobs.CLAIMS)


def test_a_rule_becomes_one_job():
    claim = {"id": "swa", "checks": {"default": {"rule": "r"}}}
    job = ClaimJob.of_rule({"runs": ["r/a", "r/b"]}, {"verdict": "out/swa/verdict.json"},
                           {"claim": claim, "scale": "smoke", "data_dir": "/d", "progress": True, "runs": {"a": "r/a"}})
    assert job.out_dir == Path("out/swa") and job.id == "swa" and job.scale == "smoke"
    assert job.progress  # data_dir and resources only record the job's data: its roots come from the config
    assert job.params == {"runs": {"a": "r/a"}} and job.files("runs") == ["r/a", "r/b"]


def test_an_unknown_claim_is_named():
    job = ClaimJob(claim={"id": "nope"}, scale="smoke", out_dir=Path("x"))
    with pytest.raises(ValueError, match="'nope' has no claim function"):
        jobs.run_claim(job)
