"""Train every variant and seed of every experiment of one group in this one job: thin glue around losslab.train."""
from losslab.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.jobserver)
from pathlib import Path

from losslab.runtime import start_job
from losslab.train import train_run

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)  # the config's `device`: where models and data live
out = Path(sm.output[0])
common = dict(data_dir=sm.params.data_dir, resources=sm.params.resources)
for name, variants in sm.params.runs.items():
    for variant, run in variants.items():
        if "lr_search" in run:
            raise ValueError(f"experiment {name!r}: lr_search is not supported in a group; train it without `group`")
        for seed in sm.params.seeds[name]:
            m = train_run(run, seed, out / name / variant / f"seed{seed}", f"{sm.params.checkpoints}/{name}/{variant}",
                          threads=sm.threads, progress=sm.params.progress, **common)
            log.info("%s/%s seed %d: train acc %.4f test acc %.4f epochs %d diverged %s (%.1f s)", name, variant,
                     seed, m["train_acc"], m["test_acc"], m["epochs"], m["diverged"], m["wall_seconds"])
