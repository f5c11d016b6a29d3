# Keskar et al. (ICLR 2017): large-batch training, the generalization gap and sharp minima (losslab.claims.sharpness.keskar).
# Every experiment of the scale with a `sharpness` block is one network of the family: its variants differ by
# batch size and the block names their roles (network, small, large, sweep, warmstart) and the sharpness and
# interpolation settings. An experiment whose block has `baseline: <experiment>` holds the augmented SB/LB pair
# of the remedies claim for that network. Jobs: `sharpness` (Metric 2.1 of every seed of one run directory),
# `warmstart` (LB runs from the SB snapshots), `keskar_interpolation` (the parametric plot's line, every seed),
# and one rule per claim.


def keskar_settings(name):
    """The experiment's `sharpness` block, checked: its roles name variants of the experiment, and the small
    variant keeps a snapshot of every warm-start epoch."""
    exp = experiment(name)
    s = exp.get("sharpness")
    if s is None:
        raise ValueError(f"experiment {name!r} has no `sharpness` settings in the {SCALE} scale")
    variants = exp.get("variants", {"default": {}})
    named = [s["small"], s["large"], *s.get("sweep", [])]
    unknown = [v for v in named if v not in variants]
    if unknown:
        raise ValueError(f"experiment {name!r}: sharpness names variants {unknown}; it has {sorted(variants)}")
    if "warmstart" in s:
        snaps = run_spec(exp, s["small"])["recipe"].get("snapshots", [])
        missing = [] if snaps == "all" else [k for k in s["warmstart"]["epochs"] if k not in snaps]
        if missing:
            raise ValueError(f"experiment {name!r}: warm starts from epochs {missing} of variant {s['small']!r}, "
                             f"but its recipe.snapshots is {snaps!r}")
    return s


def keskar_nets(*needs, augmented=False):
    """The family's experiments at this scale (those with a `sharpness` block): the primary networks, or with
    `augmented` those holding an augmented pair (`baseline`); only those whose block has every key of `needs`."""
    nets = [n for n, e in EXP.items() if "sharpness" in e and ("baseline" in e["sharpness"]) == augmented
            and all(k in e["sharpness"] for k in needs)]
    if not nets:
        raise ValueError(f"no experiment of the {SCALE} scale has a `sharpness` block with {list(needs)}"
                         + (" and `baseline`" if augmented else ""))
    return nets


def sharpness_json(name, variant, kind="runs"):
    return f"{R}/sharpness/{kind}/{name}/{variant}.json"


def keskar_net(name, variants=(), sharpness=(), warmstart=False, interpolation=False):
    """What a claim reads of one network (losslab.claims.sharpness.keskar.load_net's spec): run dirs, sharpness files."""
    s = keskar_settings(name)
    spec = {"settings": s, "runs": {v: f"{R}/runs/{name}/{v}" for v in variants},
            "sharpness": {v: sharpness_json(name, v) for v in sharpness}}
    if warmstart:
        spec["warmstart"] = sharpness_json(name, s["large"], "warmstart")
    if interpolation:
        spec["interpolation"] = f"{R}/interpolation/{name}"
    return spec


def keskar_files(nets):
    """Every input path of the specs ``nets`` (name -> keskar_net spec), for the rule's input."""
    out = []
    for spec in nets.values():
        out += list(spec["runs"].values()) + list(spec["sharpness"].values())
        out += [spec[k] for k in ("warmstart", "interpolation") if k in spec]
    return out


def keskar_claim_nets(claim_id):
    """name -> spec of every network the claim reads, at this scale."""
    if claim_id == "keskar-lb-generalization-gap":
        return {n: keskar_net(n, [keskar_settings(n)["small"], keskar_settings(n)["large"]])
                for n in keskar_nets()}
    if claim_id == "keskar-sharpness-metric":
        return {n: keskar_net(n, *[[keskar_settings(n)["small"], keskar_settings(n)["large"]]] * 2)
                for n in keskar_nets()}
    if claim_id == "keskar-parametric-plot":
        return {n: keskar_net(n, interpolation=True) for n in keskar_nets()}
    if claim_id == "keskar-batch-threshold-and-warmstart":
        out = {}
        for n in keskar_nets("sweep", "warmstart"):
            s = keskar_settings(n)
            vs = list(dict.fromkeys([*s["sweep"], s["small"], s["large"]]))
            out[n] = keskar_net(n, vs, vs, warmstart=True)
        return out
    if claim_id == "keskar-remedies":
        out = {}
        for n in keskar_nets(augmented=True):
            s = keskar_settings(n)
            b = s["baseline"]
            pair = [keskar_settings(b)["small"], keskar_settings(b)["large"]]
            out[b] = keskar_net(b, pair, pair)
            out[n] = keskar_net(n, [s["small"], s["large"]], [s["small"], s["large"]])
        return out
    raise ValueError(f"{claim_id!r} is not a Keskar claim")


rule sharpness:
    input:
        f"{R}/{{kind}}/{{experiment}}/{{variant}}",
    output:
        sharpness_json("{experiment}", "{variant}", "{kind}"),
    wildcard_constraints:
        kind="runs|warmstart",
    params:
        settings=lambda wc: keskar_settings(wc.experiment),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
    log:
        f"{LOGS}/sharpness/{{kind}}/{{experiment}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/sharpness/{{kind}}/{{experiment}}/{{variant}}.tsv"
    threads: job_threads("sharpness")
    resources:
        **job_resources("sharpness"),
    script:
        "../scripts/sharpness.py"


rule warmstart:
    input:
        source=lambda wc: f"{R}/runs/{wc.experiment}/{keskar_settings(wc.experiment)['small']}",
    output:
        directory(f"{R}/warmstart/{{experiment}}/{{variant}}"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        epochs=lambda wc: keskar_settings(wc.experiment)["warmstart"]["epochs"],
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        checkpoints=lambda wc: f"{R}/checkpoints/{wc.experiment}/warmstart/{wc.variant}",
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/warmstart/{{experiment}}/{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/warmstart/{{experiment}}/{{variant}}.tsv"
    threads: job_threads("warmstart")
    resources:
        **job_resources("warmstart"),
    script:
        "../scripts/warmstart.py"


rule keskar_interpolation:
    input:
        small=lambda wc: f"{R}/runs/{wc.experiment}/{keskar_settings(wc.experiment)['small']}",
        large=lambda wc: f"{R}/runs/{wc.experiment}/{keskar_settings(wc.experiment)['large']}",
    output:
        directory(f"{R}/interpolation/{{experiment}}"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), keskar_settings(wc.experiment)["small"]),
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        settings=lambda wc: keskar_settings(wc.experiment).get("interpolation", {}),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/keskar_interpolation/{{experiment}}.log",
    benchmark:
        f"{R}/benchmarks/keskar_interpolation/{{experiment}}.tsv"
    threads: job_threads("keskar_interpolation")
    resources:
        **job_resources("keskar_interpolation"),
    script:
        "../scripts/keskar_interpolation.py"


rule keskar_gap_claim:
    input:
        lambda wc: keskar_files(keskar_claim_nets("keskar-lb-generalization-gap")),
    output:
        **claim_outputs("keskar-lb-generalization-gap", "sharpness"),
    params:
        claim=claim_entry("keskar-lb-generalization-gap"),
        scale=SCALE,
        nets=lambda wc: keskar_claim_nets("keskar-lb-generalization-gap"),
    log:
        f"{LOGS}/claims/keskar-lb-generalization-gap.log",
    benchmark:
        f"{R}/benchmarks/claims/keskar-lb-generalization-gap.tsv"
    resources:
        **job_resources("keskar_gap_claim"),
    script:
        "../scripts/claim_keskar.py"


rule keskar_sharpness_claim:
    input:
        lambda wc: keskar_files(keskar_claim_nets("keskar-sharpness-metric")),
    output:
        **claim_outputs("keskar-sharpness-metric", "sharpness"),
    params:
        claim=claim_entry("keskar-sharpness-metric"),
        scale=SCALE,
        nets=lambda wc: keskar_claim_nets("keskar-sharpness-metric"),
    log:
        f"{LOGS}/claims/keskar-sharpness-metric.log",
    benchmark:
        f"{R}/benchmarks/claims/keskar-sharpness-metric.tsv"
    resources:
        **job_resources("keskar_sharpness_claim"),
    script:
        "../scripts/claim_keskar.py"


rule keskar_parametric_claim:
    input:
        lambda wc: keskar_files(keskar_claim_nets("keskar-parametric-plot")),
    output:
        **claim_outputs("keskar-parametric-plot", "sharpness"),
    params:
        claim=claim_entry("keskar-parametric-plot"),
        scale=SCALE,
        nets=lambda wc: keskar_claim_nets("keskar-parametric-plot"),
    log:
        f"{LOGS}/claims/keskar-parametric-plot.log",
    benchmark:
        f"{R}/benchmarks/claims/keskar-parametric-plot.tsv"
    resources:
        **job_resources("keskar_parametric_claim"),
    script:
        "../scripts/claim_keskar.py"


rule keskar_threshold_claim:
    input:
        lambda wc: keskar_files(keskar_claim_nets("keskar-batch-threshold-and-warmstart")),
    output:
        **claim_outputs("keskar-batch-threshold-and-warmstart", "sharpness"),
    params:
        claim=claim_entry("keskar-batch-threshold-and-warmstart"),
        scale=SCALE,
        nets=lambda wc: keskar_claim_nets("keskar-batch-threshold-and-warmstart"),
    log:
        f"{LOGS}/claims/keskar-batch-threshold-and-warmstart.log",
    benchmark:
        f"{R}/benchmarks/claims/keskar-batch-threshold-and-warmstart.tsv"
    resources:
        **job_resources("keskar_threshold_claim"),
    script:
        "../scripts/claim_keskar.py"


rule keskar_remedies_claim:
    input:
        lambda wc: keskar_files(keskar_claim_nets("keskar-remedies")),
    output:
        **claim_outputs("keskar-remedies", "sharpness"),
    params:
        claim=claim_entry("keskar-remedies"),
        scale=SCALE,
        nets=lambda wc: keskar_claim_nets("keskar-remedies"),
    log:
        f"{LOGS}/claims/keskar-remedies.log",
    benchmark:
        f"{R}/benchmarks/claims/keskar-remedies.tsv"
    resources:
        **job_resources("keskar_remedies_claim"),
    script:
        "../scripts/claim_keskar.py"
