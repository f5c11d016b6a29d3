"""The loss surface on the PCA plane of a run's training trajectory: thin glue around losslab.claims.surfaces."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.surfaces import trajectory_of_run
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
seed_dir = Path(sm.input.run) / f"seed{sm.wildcards.seed}"
surface = trajectory_of_run(sm.params.run, seed_dir, sm.params.settings, sm.output.surface, sm.output.directions,
                            progress=sm.params.progress)
log.info("PCA plane of %s: explained variance %s", seed_dir, surface.extra["explained_variance_ratio_"])
