"""Verdict, table and figure of an optimization-lecture toy claim (losslab.claims.lecture.toys): no runs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.lecture import toys
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
params = sm.params.toy  # the scale's toys.<claim id>
check = check_for(claim, scale)
if claim["id"] not in toys.CLAIMS:
    raise ValueError(f"claim {claim['id']!r} is not a toy claim; known: {sorted(toys.CLAIMS)}")
out_dir = Path(sm.output.verdict).parent
result = toys.CLAIMS[claim["id"]](params, check, scale, out_dir)
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
