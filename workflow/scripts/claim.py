"""Verdict, table and figure of any claim: its family's function (losslab.claims.jobs.run_claim) on the job the
rule hands over (named inputs and outputs, the registry entry, the per-claim params)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.jobs import ClaimJob, run_claim
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
job = ClaimJob.of_rule(dict(sm.input.items()), dict(sm.output.items()), dict(sm.params.items()))
result = run_claim(job)
result.write(sm.output.verdict)
log.info("%s: %s (%s)", job.id, result.verdict, result.measured)
