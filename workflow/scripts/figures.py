"""`snakemake figures`: every figure, table and the report again from stored results, nothing trained or
evaluated (losslab.claims.summary.regenerate)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.pipeline.registry import load_registry
from losslab.claims.summary import regenerate
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
regenerate(sm.params.results, load_registry(sm.params.registry), sm.params.scale, log=log)
