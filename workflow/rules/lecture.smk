# The lecture family's training claims (losslab.lecture): local-minima-cluster, swa, mixup, memorize-random-labels,
# mse-vs-cross-entropy. One experiment per claim; each claim rule reads its experiment's runs, whose roles the
# library finds from the run specs. An experiment with `group: <name>` is trained, with every other experiment of
# that group, by one `train_group` job (every variant and seed in one process: at the smoke scale the torch
# start-up of a job per variant would cost more than the training); without it, by the usual `train` jobs.

LECTURE_CLAIMS = {
    "local-minima-cluster": "minima_width",
    "swa": "swa",
    "mixup": "mixup",
    "memorize-random-labels": "memorize",
    "mse-vs-cross-entropy": "mse_vs_ce",
}


def group_members(group):
    members = [n for n, e in EXP.items() if e.get("group") == group]
    if not members:
        raise ValueError(f"no experiment of the {SCALE} scale has `group: {group}`")
    return members


def lecture_run_dirs(name):
    """variant -> the run directory of that variant of experiment `name` (grouped or not)."""
    exp = experiment(name)
    g = exp.get("group")
    base = f"{R}/groups/{g}/{name}" if g else f"{R}/runs/{name}"
    return {v: f"{base}/{v}" for v in exp.get("variants", {"default": {}})}


def lecture_inputs(name):
    g = experiment(name).get("group")
    return [f"{R}/groups/{g}"] if g else run_dirs(name)


rule train_group:
    output:
        directory(f"{R}/groups/{{group}}"),
    wildcard_constraints:
        group="[A-Za-z0-9_]+",
    params:
        runs=lambda wc: {n: {v: run_spec(EXP[n], v) for v in EXP[n].get("variants", {"default": {}})}
                         for n in group_members(wc.group)},
        seeds=lambda wc: {n: EXP[n]["seeds"] for n in group_members(wc.group)},
        checkpoints=f"{R}/checkpoints",
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/train_group/{{group}}.log",
    benchmark:
        f"{R}/benchmarks/train_group/{{group}}.tsv"
    threads: job_threads("train_group")
    resources:
        **job_resources("train_group"),
    script:
        "../scripts/train_group.py"


def lecture_claim_rule(claim_id):
    name = LECTURE_CLAIMS[claim_id]
    return dict(
        input=lambda wc: lecture_inputs(name),
        params=dict(claim=claim_entry(claim_id), scale=SCALE, runs=lambda wc: lecture_run_dirs(name),
                    specs=lambda wc: {v: run_spec(experiment(name), v) for v in lecture_run_dirs(name)},
                    lines=lambda wc: experiment(name).get("random_lines", {}),
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False)),
    )


rule local_minima_claim:
    input:
        lecture_claim_rule("local-minima-cluster")["input"],
    output:
        **claim_outputs("local-minima-cluster", "lecture"),
    params:
        **lecture_claim_rule("local-minima-cluster")["params"],
    log:
        f"{LOGS}/claims/local-minima-cluster.log",
    benchmark:
        f"{R}/benchmarks/claims/local-minima-cluster.tsv"
    resources:
        **job_resources("local_minima_claim"),
    script:
        "../scripts/claim_lecture.py"


rule swa_claim:
    input:
        lecture_claim_rule("swa")["input"],
    output:
        **claim_outputs("swa", "lecture"),
    params:
        **lecture_claim_rule("swa")["params"],
    log:
        f"{LOGS}/claims/swa.log",
    benchmark:
        f"{R}/benchmarks/claims/swa.tsv"
    resources:
        **job_resources("swa_claim"),
    script:
        "../scripts/claim_lecture.py"


rule mixup_claim:
    input:
        lecture_claim_rule("mixup")["input"],
    output:
        **claim_outputs("mixup", "lecture"),
    params:
        **lecture_claim_rule("mixup")["params"],
    log:
        f"{LOGS}/claims/mixup.log",
    benchmark:
        f"{R}/benchmarks/claims/mixup.tsv"
    resources:
        **job_resources("mixup_claim"),
    script:
        "../scripts/claim_lecture.py"


rule memorize_claim:
    input:
        lecture_claim_rule("memorize-random-labels")["input"],
    output:
        **claim_outputs("memorize-random-labels", "lecture"),
    params:
        **lecture_claim_rule("memorize-random-labels")["params"],
    log:
        f"{LOGS}/claims/memorize-random-labels.log",
    benchmark:
        f"{R}/benchmarks/claims/memorize-random-labels.tsv"
    resources:
        **job_resources("memorize_claim"),
    script:
        "../scripts/claim_lecture.py"


rule mse_vs_ce_claim:
    input:
        lecture_claim_rule("mse-vs-cross-entropy")["input"],
    output:
        **claim_outputs("mse-vs-cross-entropy", "lecture"),
    params:
        **lecture_claim_rule("mse-vs-cross-entropy")["params"],
    log:
        f"{LOGS}/claims/mse-vs-cross-entropy.log",
    benchmark:
        f"{R}/benchmarks/claims/mse-vs-cross-entropy.tsv"
    resources:
        **job_resources("mse_vs_ce_claim"),
    script:
        "../scripts/claim_lecture.py"
