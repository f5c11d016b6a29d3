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
        input=dict(runs=lambda wc: run_dirs(name)),
        params=dict(runs=lambda wc: variant_dirs(name),
                    specs=lambda wc: {v: run_spec(experiment(name), v) for v in variant_dirs(name)},
                    lines=lambda wc: experiment(name).get("random_lines", {}),
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False)),
    )


# The optimization-lecture toy claims of sources 002 and 000 (losslab.claims.lecture.toys): exact computations that need no
# training runs. Their sizes, step sizes and seeds come from the scale's `toys.<claim id>`; a claim whose key
# is absent there has no rule at this scale.

TOYS = CFG.get("toys", {})


def toy_claim(claim_id, **outputs):
    """A toy claim's rule: its settings (the scale's toys.<claim id>) and any extra outputs."""
    return dict(params=dict(toy=TOYS[claim_id]), output=outputs)


CLAIM_RULES.update({c: lecture_claim_rule(c) for c in LECTURE_CLAIMS})
TOY_OUTPUTS = {"tanh-toy-surface": dict(trajectories=f"{claim_dir('tanh-toy-surface')}/trajectories.png",
                                        trajectories_pdf=f"{claim_dir('tanh-toy-surface')}/trajectories.pdf")}
CLAIM_RULES.update({c: toy_claim(c, **TOY_OUTPUTS.get(c, {})) for c in TOYS})
