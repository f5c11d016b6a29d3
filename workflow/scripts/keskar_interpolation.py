"""Keskar's parametric plot line f(alpha x_LB + (1 - alpha) x_SB) for every seed: thin glue around
losslab.claims.sharpness.keskar.interpolate_pair."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.runs import model_file
from losslab.pipeline.job import start_job
from losslab.claims.sharpness.keskar import interpolate_pair

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
out = Path(sm.output[0])
for seed in sm.params.seeds:
    s = interpolate_pair(sm.params.run, model_file(sm.input.small, seed),
                         model_file(sm.input.large, seed), out / f"seed{seed}.h5",
                         sm.params.settings, progress=sm.params.progress)
    log.info("seed %d: train loss along the line %.4g .. %.4g", seed, s["train_loss"].min(), s["train_loss"].max())
