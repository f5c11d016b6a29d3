# Training: one job per (experiment, variant) trains every seed of it (seeds are small work at the small
# scales; torch start-up would dominate one job per seed). Checkpoints live outside the job's output so that a
# killed job, rerun, resumes instead of restarting.


def experiment(name):
    if name not in EXP:
        raise ValueError(f"unknown experiment {name!r}; the {SCALE} scale defines {sorted(EXP)}")
    return EXP[name]


def variant_dirs(name):
    """variant -> the run directory of that variant of experiment `name`."""
    return {v: f"{R}/runs/{name}/{v}" for v in experiment(name).get("variants", {"default": {}})}


def run_dirs(name):
    return list(variant_dirs(name).values())


rule train:
    output:
        directory(f"{R}/runs/{{experiment}}/{{variant}}"),
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
