# Source 000's training-ingredient claims: the ablation (momentum, weight decay, preprocessing) and SGD vs GD.


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
