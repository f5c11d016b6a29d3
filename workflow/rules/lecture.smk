# The lecture family's training claims (losslab.claims.lecture.trained): local-minima-cluster, swa, mixup, memorize-random-labels,
# mse-vs-cross-entropy. One experiment per claim, trained by the usual `train` jobs (one per variant, every seed
# in it); each claim rule reads its experiment's runs, whose roles the library finds from the run specs.

LECTURE_CLAIMS = {
    "local-minima-cluster": "minima_width",
    "swa": "swa",
    "mixup": "mixup",
    "memorize-random-labels": "memorize",
    "mse-vs-cross-entropy": "mse_vs_ce",
}


def lecture_claim_rule(claim_id):
    name = LECTURE_CLAIMS[claim_id]
    return dict(
        input=lambda wc: run_dirs(name),
        params=dict(claim=claim_entry(claim_id), scale=SCALE, runs=lambda wc: variant_dirs(name),
                    specs=lambda wc: {v: run_spec(experiment(name), v) for v in variant_dirs(name)},
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


# The optimization-lecture toy claims of sources 002 and 000 (losslab.claims.lecture.toys): exact computations that need no
# training runs. Their sizes, step sizes and seeds come from the scale's `toys.<claim id>`; a claim whose key
# is absent there has no rule at this scale.

TOYS = CFG.get("toys", {})


def toy_params(claim_id):
    return dict(claim=claim_entry(claim_id), scale=SCALE, toy=TOYS[claim_id])


if "tanh-toy-surface" in TOYS:

    rule tanh_toy_claim:
        output:
            **claim_outputs("tanh-toy-surface", claim_entry("tanh-toy-surface")["family"]),
            trajectories=f"{claim_dir('tanh-toy-surface')}/trajectories.png",
            trajectories_pdf=f"{claim_dir('tanh-toy-surface')}/trajectories.pdf",
        params:
            **toy_params("tanh-toy-surface"),
        log:
            f"{LOGS}/claims/tanh-toy-surface.log",
        benchmark:
            f"{R}/benchmarks/claims/tanh-toy-surface.tsv"
        resources:
            **job_resources("tanh_toy_claim"),
        script:
            "../scripts/claim_toys.py"


if "saddles-dominate-high-dim" in TOYS:

    rule saddles_claim:
        output:
            **claim_outputs("saddles-dominate-high-dim", claim_entry("saddles-dominate-high-dim")["family"]),
        params:
            **toy_params("saddles-dominate-high-dim"),
        log:
            f"{LOGS}/claims/saddles-dominate-high-dim.log",
        benchmark:
            f"{R}/benchmarks/claims/saddles-dominate-high-dim.tsv"
        resources:
            **job_resources("saddles_claim"),
        script:
            "../scripts/claim_toys.py"


if "redundant-overparam-flatness" in TOYS:

    rule redundant_flatness_claim:
        output:
            **claim_outputs("redundant-overparam-flatness",
                            claim_entry("redundant-overparam-flatness")["family"]),
        params:
            **toy_params("redundant-overparam-flatness"),
        log:
            f"{LOGS}/claims/redundant-overparam-flatness.log",
        benchmark:
            f"{R}/benchmarks/claims/redundant-overparam-flatness.tsv"
        resources:
            **job_resources("redundant_flatness_claim"),
        script:
            "../scripts/claim_toys.py"


if "wilson-adaptive-generalize-worse" in TOYS:

    rule wilson_toy_claim:
        output:
            **claim_outputs("wilson-adaptive-generalize-worse",
                            claim_entry("wilson-adaptive-generalize-worse")["family"]),
        params:
            **toy_params("wilson-adaptive-generalize-worse"),
        log:
            f"{LOGS}/claims/wilson-adaptive-generalize-worse.log",
        benchmark:
            f"{R}/benchmarks/claims/wilson-adaptive-generalize-worse.tsv"
        resources:
            **job_resources("wilson_toy_claim"),
        script:
            "../scripts/claim_toys.py"
