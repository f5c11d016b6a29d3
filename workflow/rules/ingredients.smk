


CLAIM_RULES.update({
    "resnet56-ingredient-ablation": dict(input=dict(runs=lambda wc: run_dirs("ablation")),
                                         params=dict(dirs=lambda wc: variant_dirs("ablation"))),
    "bottou-sgd-beats-gd": dict(input=dict(runs=lambda wc: run_dirs("sgd_vs_gd")),
                                params=dict(dirs=lambda wc: variant_dirs("sgd_vs_gd"))),
})
