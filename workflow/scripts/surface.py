"""A filter-normalized 2-D loss surface around a trained seed (or one shard of its tiles, or the merge of the
shards): thin glue around losslab.claims.surfaces.surface_job."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.surfaces import surface_job
from losslab.claims.runs import model_file
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
surface = surface_job(sm.params.run, model_file(sm.input.run, sm.wildcards.seed), sm.params.settings,
                      sm.output.surface, sm.output.directions, shards=list(getattr(sm.input, "shards", [])),
                      shard=int(sm.wildcards.shard) if "shard" in sm.wildcards.keys() else None,
                      progress=sm.params.progress)
log.info("surface %s: train loss %.4g .. %.4g", sm.output.surface, surface["train_loss"].min(),
         surface["train_loss"].max())
