"""LB runs warm-started from the SB run's snapshots (Keskar et al. Fig. 5): thin glue around
losslab.claims.sharpness.keskar.warm_start."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.pipeline.job import start_job
from losslab.claims.sharpness.keskar import warm_start

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
warm_start(dict(sm.params.run), sm.input.source, sm.params.epochs, sm.params.seeds, sm.output[0],
           sm.params.checkpoints, threads=sm.threads, log=log, progress=sm.params.progress)
