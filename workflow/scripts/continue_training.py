"""Continue every seed of a trained run with another recipe from its final weights: thin glue around
losslab.claims.sharpness.spectra.continue_runs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.pipeline.job import start_job
from losslab.claims.sharpness.spectra import continue_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
for m in continue_runs(sm.params.run, sm.input.start, sm.params.recipe, sm.params.seeds, sm.output[0],
                       sm.params.checkpoints, threads=sm.threads, progress=sm.params.progress):
    log.info("seed %d continued: train acc %.4f test acc %.4f diverged %s (%.1f s)", m["seed"], m["train_acc"],
             m["test_acc"], m["diverged"], m["wall_seconds"])
