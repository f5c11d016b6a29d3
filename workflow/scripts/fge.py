"""Fast geometric ensembling from each seed's snapshot of one run: thin glue around
losslab.claims.connectivity.analysis.fge_of_runs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.connectivity import analysis as conn
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
record = conn.fge_of_runs(sm.params.run, sm.input.run, sm.params.seeds, sm.params.settings, sm.output[0])
log.info("FGE: %s", record["seeds"])
