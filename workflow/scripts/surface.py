"""One filter-normalized 2-D loss surface around a trained seed: thin glue around losslab.landscape."""
from pathlib import Path

from losslab.landscape import surface_of_run
from losslab.runtime import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads)
model_path = Path(sm.input.run) / f"seed{sm.wildcards.seed}" / "model.pt"
surface = surface_of_run(sm.params.run, model_path, sm.params.settings, sm.output.surface, sm.output.directions,
                         data_dir=sm.params.data_dir, resources=sm.params.resources, progress=sm.params.progress)
log.info("surface %s: train loss %.4g .. %.4g", sm.output.surface, surface["train_loss"].min(),
         surface["train_loss"].max())
