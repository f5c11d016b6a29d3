# Training: one job per (experiment, variant) trains every seed of it (seeds are small work at the small
# scales; torch start-up would dominate one job per seed). Checkpoints live outside the job's output so that a
# killed job, rerun, resumes instead of restarting. The run directory is `update()`-flagged: Snakemake neither
# deletes it before a rerun nor after a failed one (it restores its backup), and the job replaces it whole only once
# every seed is trained (losslab.io.atomic_dir), so a failed rerun leaves the last complete run in place.


rule train:
    output:
        update(directory(run_dir("{experiment}", "{variant}"))),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        checkpoints=lambda wc: f"{R}/checkpoints/{wc.experiment}/{wc.variant}",
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/train/{{experiment}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{experiment}}/{{variant}}.tsv"
    threads: job_threads("train")
    resources:
        **job_resources("train"),
    script:
        "../scripts/train.py"
