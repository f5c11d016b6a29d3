# The sharpness family's Hessian and line claims (issue #4, losslab.claims.sharpness.spectra): Hessian spectra of trained runs,
# sharpness along raw and filter-normalized random lines, a large-batch run continued with a small batch, and
# Li et al.'s eigenvalue-ratio maps (Fig. 7) for experiments with a `ratio_map` key. Each claim reads the
# experiment its registry entry names; its analysis (spectra, lines, interpolations) runs in the claim's own job
# and is kept beside the verdict as an extra output.


def claim_experiment(claim_id):
    return claim_entry(claim_id)["experiment"]


def experiment_key(name, key):
    settings = experiment(name).get(key)
    if settings is None:
        raise ValueError(f"experiment {name!r} has no `{key}` settings in the {SCALE} scale")
    return settings


def variant_specs(name):
    """variant -> run spec of every variant of an experiment."""
    return {v: run_spec(experiment(name), v) for v in experiment(name).get("variants", {"default": {}})}


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
    return [f"{R}/surfaces/{name}/{v}/seed{k}/ratio_map.h5" for v in s["variants"] for k in s["seeds"]]


def ratio_map_figures():
    """The eigenvalue-ratio figure of every experiment with a `ratio_map` key (for rule `all`)."""
    return [f"{R}/surfaces/{name}/figures/ratio_map.png" for name, exp in EXP.items() if "ratio_map" in exp]


def spectra_claim_params(claim_id):
    return dict(
        claim=claim_entry(claim_id),
        scale=SCALE,
        runs=lambda wc: variant_specs(claim_experiment(claim_id)),
        settings=lambda wc: experiment_key(claim_experiment(claim_id), "spectrum"),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
    )


rule hessian_outliers_claim:
    input:
        runs=lambda wc: run_dirs(claim_experiment("hessian-bulk-outliers")),
    output:
        **claim_outputs("hessian-bulk-outliers", "sharpness"),
        spectra=f"{claim_dir('hessian-bulk-outliers')}/spectra.h5",
    params:
        **spectra_claim_params("hessian-bulk-outliers"),
    log:
        f"{LOGS}/claims/hessian-bulk-outliers.log",
    benchmark:
        f"{R}/benchmarks/claims/hessian-bulk-outliers.tsv"
    threads: job_threads("hessian_outliers_claim")
    resources:
        **job_resources("hessian_outliers_claim"),
    script:
        "../scripts/claim_spectra.py"


rule batchsize_outliers_claim:
    input:
        runs=lambda wc: run_dirs(claim_experiment("batchsize-larger-outliers")),
    output:
        **claim_outputs("batchsize-larger-outliers", "sharpness"),
        spectra=f"{claim_dir('batchsize-larger-outliers')}/spectra.h5",
    params:
        **spectra_claim_params("batchsize-larger-outliers"),
    log:
        f"{LOGS}/claims/batchsize-larger-outliers.log",
    benchmark:
        f"{R}/benchmarks/claims/batchsize-larger-outliers.tsv"
    threads: job_threads("batchsize_outliers_claim")
    resources:
        **job_resources("batchsize_outliers_claim"),
    script:
        "../scripts/claim_spectra.py"


rule wd_flip_claim:
    input:
        runs=lambda wc: run_dirs(claim_experiment("li-filter-normalization-wd-flip")),
    output:
        **claim_outputs("li-filter-normalization-wd-flip", "sharpness"),
        lines=directory(f"{claim_dir('li-filter-normalization-wd-flip')}/lines"),
    params:
        claim=claim_entry("li-filter-normalization-wd-flip"),
        scale=SCALE,
        runs=lambda wc: variant_specs(claim_experiment("li-filter-normalization-wd-flip")),
        settings=lambda wc: experiment_key(claim_experiment("li-filter-normalization-wd-flip"), "random_lines"),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/claims/li-filter-normalization-wd-flip.log",
    benchmark:
        f"{R}/benchmarks/claims/li-filter-normalization-wd-flip.tsv"
    threads: job_threads("wd_flip_claim")
    resources:
        **job_resources("wd_flip_claim"),
    script:
        "../scripts/claim_wd_flip.py"


# A trained run continued with another recipe (e.g. a small batch) from each seed's final weights
# (recipe.init_from): experiment key `continuation: {from: <variant>, name: <name>, recipe: {...}}`.
# Checkpoints live outside the output, as for `train`, so a killed job resumes.
rule continue_training:
    input:
        start=lambda wc: f"{R}/runs/{wc.experiment}/{continuation(wc.experiment)['from']}",
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


rule lb_sb_basin_claim:
    input:
        lb=lambda wc: f"{R}/runs/{claim_experiment('lb-to-sb-same-basin')}/"
                      f"{continuation(claim_experiment('lb-to-sb-same-basin'))['from']}",
        sb=lambda wc: continued_dir(claim_experiment("lb-to-sb-same-basin")),
    output:
        **claim_outputs("lb-to-sb-same-basin", "sharpness"),
        lines=directory(f"{claim_dir('lb-to-sb-same-basin')}/lines"),
    params:
        claim=claim_entry("lb-to-sb-same-basin"),
        scale=SCALE,
        run=lambda wc: run_spec(experiment(claim_experiment("lb-to-sb-same-basin")),
                                continuation(claim_experiment("lb-to-sb-same-basin"))["from"]),
        settings=lambda wc: experiment(claim_experiment("lb-to-sb-same-basin")).get("basin", {}),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/claims/lb-to-sb-same-basin.log",
    benchmark:
        f"{R}/benchmarks/claims/lb-to-sb-same-basin.tsv"
    threads: job_threads("lb_sb_basin_claim")
    resources:
        **job_resources("lb_sb_basin_claim"),
    script:
        "../scripts/claim_basin.py"


# Li et al.'s Fig. 7: |lambda_min / lambda_max| over the plane of a variant's 2-D surface (its directions.h5),
# for the variants and seeds of the experiment's `ratio_map` key, and one figure of them on a shared scale.
rule ratio_map:
    input:
        run=f"{R}/runs/{{experiment}}/{{variant}}",
        directions=f"{R}/surfaces/{{experiment}}/{{variant}}/seed{{seed}}/directions.h5",
    output:
        f"{R}/surfaces/{{experiment}}/{{variant}}/seed{{seed}}/ratio_map.h5",
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
    log:
        f"{LOGS}/ratio_map_figure/{{experiment}}/ratio_map.log",
    benchmark:
        f"{R}/benchmarks/ratio_map_figure/{{experiment}}/ratio_map.tsv"
    script:
        "../scripts/ratio_map.py"
