"""A filter-normalized 2-D loss surface around a trained seed (or one shard of its tiles, or the merge of the
shards): thin glue around losslab.claims.surfaces and losslab.core.surfaces."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.runs import load_trained
from losslab.claims.surfaces import save_run_directions, surface_of_run
from losslab.pipeline.job import start_job
from losslab.core.surfaces import merge_surfaces

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
model_path = Path(sm.input.run) / f"seed{sm.wildcards.seed}" / "model.pt"
shards = list(getattr(sm.input, "shards", []))
shard = int(sm.wildcards.shard) if "shard" in sm.wildcards.keys() else None
common = dict(data_dir=sm.params.data_dir, resources=sm.params.resources, progress=sm.params.progress)
if shards:  # merge the parallel shards; the directions are recomputed (seeded, cheap) beside them
    surface = merge_surfaces(sm.output.surface, shards)
    model, _ = load_trained(sm.params.run, model_path, sm.params.data_dir, sm.params.resources)
    save_run_directions(model, sm.params.settings, sm.output.directions)
else:
    surface = surface_of_run(sm.params.run, model_path, sm.params.settings, sm.output.surface,
                             sm.output.directions, shard=shard, **common)
log.info("surface %s: train loss %.4g .. %.4g", sm.output.surface, surface["train_loss"].min(),
         surface["train_loss"].max())
