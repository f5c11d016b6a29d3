# Keskar et al. (ICLR 2017): large-batch training, the generalization gap and sharp minima (losslab.claims.sharpness.keskar).
# Every experiment of the scale with a `sharpness` block is one network of the family: its variants differ by
# batch size and the block names their roles (network, small, large, the optional step-matched LB `matched`,
# sweep, warmstart) and the sharpness and interpolation settings. An experiment whose block has `baseline: <experiment>` holds the augmented SB/LB pair
# of the remedies claim for that network. Jobs: `sharpness` (Metric 2.1 of every seed of one run directory),
# `warmstart` (LB runs from the SB snapshots), `keskar_interpolation` (the parametric plot's line from SB to LB,
# every seed; `interpolation_matched`: to the step-matched LB), and one rule per claim.


def keskar_settings(name):
    """The experiment's `sharpness` block, checked: its roles name variants of the experiment, and the small
    variant keeps a snapshot of every warm-start epoch."""
    exp = experiment(name)
    s = exp.get("sharpness")
    if s is None:
        raise ValueError(f"experiment {name!r} has no `sharpness` settings in the {SCALE} scale")
    variants = exp.get("variants", {"default": {}})
    named = [s["small"], s["large"], *([s["matched"]] if "matched" in s else []), *s.get("sweep", [])]
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
    spec = {"settings": s, "runs": {v: run_dir(name, v) for v in variants},
            "sharpness": {v: sharpness_json(name, v) for v in sharpness}}
    if warmstart:
        spec["warmstart"] = sharpness_json(name, s["large"], "warmstart")
    if interpolation:
        spec["interpolation"] = f"{R}/interpolation/{name}"
        if "matched" in s:
            spec["interpolation_matched"] = f"{R}/interpolation_matched/{name}"
    return spec


def keskar_files(nets):
    """Every input path of the specs ``nets`` (name -> keskar_net spec), for the rule's input."""
    out = []
    for spec in nets.values():
        out += list(spec["runs"].values()) + list(spec["sharpness"].values())
        out += [spec[k] for k in ("warmstart", "interpolation", "interpolation_matched") if k in spec]
    return out


def keskar_arms(name):
    """The SB and LB variants of the network, and its step-matched LB when it has one."""
    s = keskar_settings(name)
    return [s["small"], s["large"], *([s["matched"]] if "matched" in s else [])]


def keskar_claim_nets(claim_id):
    """name -> spec of every network the claim reads, at this scale."""
    if claim_id == "keskar-lb-generalization-gap":
        return {n: keskar_net(n, keskar_arms(n)) for n in keskar_nets()}
    if claim_id == "keskar-sharpness-metric":
        return {n: keskar_net(n, keskar_arms(n), keskar_arms(n)) for n in keskar_nets()}
    if claim_id == "keskar-parametric-plot":
        return {n: keskar_net(n, keskar_arms(n), interpolation=True) for n in keskar_nets()}
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
        source=lambda wc: run_dir(wc.experiment, keskar_settings(wc.experiment)["small"]),
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


# kind `interpolation`: the line from SB to the LB variant (`large`); `interpolation_matched`: to the step-matched
# LB (`matched`)
rule keskar_interpolation:
    input:
        small=lambda wc: run_dir(wc.experiment, keskar_settings(wc.experiment)["small"]),
        large=lambda wc: run_dir(wc.experiment, keskar_settings(wc.experiment)[
            "matched" if wc.kind == "interpolation_matched" else "large"]),
    output:
        directory(f"{R}/{{kind}}/{{experiment}}"),
    wildcard_constraints:
        kind="interpolation|interpolation_matched",
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), keskar_settings(wc.experiment)["small"]),
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        settings=lambda wc: keskar_settings(wc.experiment).get("interpolation", {}),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/keskar_interpolation/{{experiment}}/{{kind}}.log",
    benchmark:
        f"{R}/benchmarks/keskar_interpolation/{{experiment}}/{{kind}}.tsv"
    threads: job_threads("keskar_interpolation")
    resources:
        **job_resources("keskar_interpolation"),
    script:
        "../scripts/keskar_interpolation.py"


# The sharpness family's Hessian and line claims (issue #4, losslab.claims.sharpness.spectra): Hessian spectra of trained runs,
# sharpness along raw and filter-normalized random lines, a large-batch run continued with a small batch, and
# Li et al.'s eigenvalue-ratio maps (Fig. 7) for experiments with a `ratio_map` key. Each claim reads the
# experiment its registry entry names; its analysis (spectra, lines, interpolations) runs in the claim's own job
# and is kept beside the verdict as an extra output.


def continuation(name):
    return experiment_key(name, "continuation")


def continuation_recipe(name, variant):
    c = continuation(name)
    if variant != c["name"]:
        raise ValueError(f"experiment {name!r} is continued as {c['name']!r}, not {variant!r}")
    return c.get("recipe", {})


def continued_dir(name):
    return f"{R}/continued/{name}/{continuation(name)['name']}"


def ratio_map_files(name):
    s = experiment_key(name, "ratio_map")
    return [surface_path(name, v, k, "ratio_map.h5") for v in s["variants"] for k in s["seeds"]]


def ratio_map_labels(name):
    """The label of each of ratio_map_files(name), in its order."""
    s = experiment_key(name, "ratio_map")
    return [f"{v} seed {k}" for v in s["variants"] for k in s["seeds"]]


def ratio_map_figures():
    """The eigenvalue-ratio figure of every experiment with a `ratio_map` key (for rule `all`)."""
    return [f"{R}/surfaces/{name}/figures/ratio_map.png" for name, exp in EXP.items() if "ratio_map" in exp]


def spectra_claim_params(claim_id):
    return dict(
        runs=lambda wc: variant_specs(claim_experiment(claim_id)),
        settings=lambda wc: experiment_key(claim_experiment(claim_id), "spectrum"),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        dirs=lambda wc: variant_dirs(claim_experiment(claim_id)),
    )


# A trained run continued with another recipe (e.g. a small batch) from each seed's final weights
# (recipe.init_from): experiment key `continuation: {from: <variant>, name: <name>, recipe: {...}}`.
# Checkpoints live outside the output, as for `train`, so a killed job resumes.
rule continue_training:
    input:
        start=lambda wc: run_dir(wc.experiment, continuation(wc.experiment)["from"]),
    output:
        directory(f"{R}/continued/{{experiment}}/{{variant}}"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), continuation(wc.experiment)["from"]),
        recipe=lambda wc: continuation_recipe(wc.experiment, wc.variant),
        seeds=lambda wc: experiment(wc.experiment)["seeds"],
        checkpoints=lambda wc: f"{R}/checkpoints/{wc.experiment}/continued_{wc.variant}",
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/train/{{experiment}}/continued_{{variant}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{experiment}}/continued_{{variant}}.tsv"
    threads: job_threads("continue_training")
    resources:
        **job_resources("continue_training"),
    script:
        "../scripts/continue_training.py"


# Li et al.'s Fig. 7: |lambda_min / lambda_max| over the plane of a variant's 2-D surface (its directions.h5),
# for the variants and seeds of the experiment's `ratio_map` key, and one figure of them on a shared scale.
rule ratio_map:
    input:
        run=run_dir("{experiment}", "{variant}"),
        directions=surface_path("{experiment}", "{variant}", "{seed}", "directions.h5"),
    output:
        surface_path("{experiment}", "{variant}", "{seed}", "ratio_map.h5"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        settings=lambda wc: experiment_key(wc.experiment, "ratio_map"),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/ratio_map/{{experiment}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/ratio_map/{{experiment}}/{{variant}}/seed{{seed}}.tsv"
    threads: job_threads("ratio_map")
    resources:
        **job_resources("ratio_map"),
    script:
        "../scripts/ratio_map.py"


rule ratio_map_figure:
    input:
        lambda wc: ratio_map_files(wc.experiment),
    output:
        png=f"{R}/surfaces/{{experiment}}/figures/ratio_map.png",
        pdf=f"{R}/surfaces/{{experiment}}/figures/ratio_map.pdf",
    params:
        scale=SCALE,
        labels=lambda wc: ratio_map_labels(wc.experiment),
    log:
        f"{LOGS}/ratio_map_figure/{{experiment}}/ratio_map.log",
    benchmark:
        f"{R}/benchmarks/ratio_map_figure/{{experiment}}/ratio_map.tsv"
    script:
        "../scripts/ratio_map_figure.py"


def keskar_claim(claim_id):
    return dict(input=dict(files=lambda wc: keskar_files(keskar_claim_nets(claim_id))),
                params=dict(nets=lambda wc: keskar_claim_nets(claim_id)))


BASIN = claim_entry("lb-to-sb-same-basin")["experiment"]
WD_FLIP = claim_entry("li-filter-normalization-wd-flip")["experiment"]

CLAIM_RULES.update({
    **{c: keskar_claim(c) for c in ("keskar-lb-generalization-gap", "keskar-sharpness-metric", "keskar-parametric-plot",
                                    "keskar-batch-threshold-and-warmstart", "keskar-remedies")},
    **{c: dict(input=dict(runs=lambda wc, c=c: run_dirs(claim_experiment(c))),
               output=dict(spectra=f"{claim_dir(c)}/spectra.h5"), params=spectra_claim_params(c), threads=True)
       for c in ("hessian-bulk-outliers", "batchsize-larger-outliers")},
    "random-directions-agree": dict(
        input=dict(runs=lambda wc: run_dirs(WD_FLIP)),
        output=dict(lines=directory(f"{claim_dir('random-directions-agree')}/lines")),
        params=dict(runs=lambda wc: variant_specs(WD_FLIP),
                    settings=lambda wc: experiment_key(WD_FLIP, "random_directions"),
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False), dirs=lambda wc: variant_dirs(WD_FLIP))),
    "gauss-newton-outliers": dict(input=dict(runs=lambda wc: run_dirs(claim_experiment("gauss-newton-outliers"))),
                                  params=spectra_claim_params("gauss-newton-outliers"), threads=True),
    "li-filter-normalization-wd-flip": dict(
        input=dict(runs=lambda wc: run_dirs(WD_FLIP)),
        output=dict(lines=directory(f"{claim_dir('li-filter-normalization-wd-flip')}/lines")),
        params=dict(runs=lambda wc: variant_specs(WD_FLIP),
                    settings=lambda wc: experiment_key(WD_FLIP, "random_lines"),
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False), dirs=lambda wc: variant_dirs(WD_FLIP)),
        threads=True),
    "lb-to-sb-same-basin": dict(
        input=dict(lb=lambda wc: run_dir(BASIN, continuation(BASIN)["from"]),
                   sb=lambda wc: continued_dir(BASIN)),
        output=dict(lines=directory(f"{claim_dir('lb-to-sb-same-basin')}/lines")),
        params=dict(run=lambda wc: run_spec(experiment(BASIN), continuation(BASIN)["from"]),
                    settings=lambda wc: experiment(BASIN).get("basin", {}),
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False)),
        threads=True),
})
