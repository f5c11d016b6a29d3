# Source 000's training-ingredient claims: the ablation (momentum, weight decay, preprocessing) and SGD vs GD.


def claim_entry(claim_id):
    return next(c for c in CLAIMS if c["id"] == claim_id)


def claim_outputs(claim_id, family):
    d = claim_dir(claim_id)
    return dict(
        verdict=f"{d}/verdict.json",
        table=f"{d}/table.csv",
        table_md=f"{d}/table.md",
        figure=report(f"{d}/figure.png", category=family, subcategory=claim_id,
                      caption="../report/captions/" + claim_id + ".rst"),
        figure_pdf=f"{d}/figure.pdf",
    )


rule ablation_claim:
    input:
        runs=lambda wc: run_dirs("ablation"),
    output:
        **claim_outputs("resnet56-ingredient-ablation", "ingredients"),
    params:
        claim=claim_entry("resnet56-ingredient-ablation"),
        scale=SCALE,
    log:
        f"{LOGS}/claims/resnet56-ingredient-ablation.log",
    benchmark:
        f"{R}/benchmarks/claims/resnet56-ingredient-ablation.tsv"
    resources:
        **job_resources("ablation_claim"),
    script:
        "../scripts/claim_ingredients.py"


rule sgd_vs_gd_claim:
    input:
        runs=lambda wc: run_dirs("sgd_vs_gd"),
    output:
        **claim_outputs("bottou-sgd-beats-gd", "ingredients"),
    params:
        claim=claim_entry("bottou-sgd-beats-gd"),
        scale=SCALE,
    log:
        f"{LOGS}/claims/bottou-sgd-beats-gd.log",
    benchmark:
        f"{R}/benchmarks/claims/bottou-sgd-beats-gd.tsv"
    resources:
        **job_resources("sgd_vs_gd_claim"),
    script:
        "../scripts/claim_ingredients.py"
