"""Verdict, table and figure of a loss-pattern claim (losslab.claims.patterns) from its mpo_fit jobs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims import patterns as pattern_claims
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
check = check_for(claim, scale)
out_dir = Path(sm.output.verdict).parent
if claim["id"] == "mpo-arbitrary-patterns":
    result = pattern_claims.picture_claim(sm.input.runs[0], check, scale, out_dir, claim_id=claim["id"])
elif claim["id"] == "mpo-bn-harder-to-fit":
    result = pattern_claims.bn_claim(sm.input.plain, sm.input.bn, check, scale, out_dir, claim_id=claim["id"])
else:
    raise ValueError(f"claim {claim['id']!r} is not a loss-pattern claim")
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
