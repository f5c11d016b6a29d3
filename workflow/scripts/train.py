"""Train every seed of one (experiment, variant): thin glue around losslab.core.trainer."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab import io as lio
from losslab.pipeline.job import start_job
from losslab.claims.runs import select_lr, train_run

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)  # the config's `device`: where models and data live
out = Path(sm.output[0])
run = dict(sm.params.run)
common = dict(data_dir=sm.params.data_dir, resources=sm.params.resources)
search = run.pop("lr_search", None)
if search:
    lr, trials = select_lr(run, search["grid"], search.get("val_fraction", 0.2), search.get("seed", 0), **common)
    lio.write_json(out / "lr_search.json", {"selected_lr": lr, "trials": trials, **search})
    run["recipe"] = {**run["recipe"], "lr": lr}
    log.info("lr search selected lr %g", lr)
for seed in sm.params.seeds:
    m = train_run(run, seed, out / f"seed{seed}", sm.params.checkpoints, threads=sm.threads,
                  progress=sm.params.progress, **common)
    log.info("seed %d: train acc %.4f test acc %.4f diverged %s (%.1f s)", seed, m["train_acc"], m["test_acc"],
             m["diverged"], m["wall_seconds"])
