"""Verdict, table and figure of a mode-connectivity claim (losslab.claims.connectivity.analysis.CLAIMS)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.connectivity import analysis as conn
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim = sm.params.claim
if claim["id"] not in conn.CLAIMS:
    raise ValueError(f"claim {claim['id']!r} is not a connectivity claim; known: {sorted(conn.CLAIMS)}")
job = conn.ClaimJob(claim=claim, scale=sm.params.scale, settings=sm.params.settings, curves=sm.params.curves,
                    runs=sm.params.runs, seeds=sm.params.seeds, inputs=dict(sm.input.items()),
                    out_dir=Path(sm.output.verdict).parent, data_dir=sm.params.data_dir,
                    resources=sm.params.resources)
result = conn.CLAIMS[claim["id"]](job)
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
