"""Multi-point optimization of every seed of one (architecture, pattern): thin glue around
losslab.claims.patterns.run_job."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.patterns import run_job
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
job = sm.params.job
log.info("mpo %s / %s: seeds %s, mpo %s", job["architecture"], job["pattern_key"], list(sm.params.seeds), job["mpo"])
run_job(job, sm.params.seeds, sm.output[0], sm.params.checkpoints)
