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
