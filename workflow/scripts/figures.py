"""`snakemake figures`: every figure, table and the report again from stored results, nothing trained or
evaluated (losslab.report.regenerate)."""
from losslab.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.jobserver)
from losslab.claims import load_registry
from losslab.report import regenerate
from losslab.runtime import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
regenerate(sm.params.results, load_registry(sm.params.registry), sm.params.scale, log=log)
