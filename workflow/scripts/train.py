"""Train every seed of one (experiment, variant): thin glue around losslab.claims.training.train_variant."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.pipeline.job import start_job
from losslab.claims.training import train_variant

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)  # the config's `device` and `data_dir`/`resources`
train_variant(sm.params.run, sm.params.seeds, sm.output[0], sm.params.checkpoints, threads=sm.threads,
              progress=sm.params.progress)
log.info("trained %s: seeds %s", sm.output[0], list(sm.params.seeds))
