"""Keskar's epsilon-sharpness (Metric 2.1) of every seed of one run directory: thin glue around
losslab.claims.sharpness.keskar."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab import io as lio
from losslab.pipeline.job import start_job
from losslab.claims.sharpness.keskar import sharpness_of_dir

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
result = sharpness_of_dir(sm.input[0], sm.params.settings, log=log)
lio.write_json(sm.output[0], result)
