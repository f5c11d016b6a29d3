# Loss surfaces (Li et al. 2018): a filter-normalized 2-D surface around chosen seeds of each variant of an
# experiment that has a `surface` key, and the skip-connection claim built on them.


def surface_settings(name):
    settings = experiment(name).get("surface")
    if settings is None:
        raise ValueError(f"experiment {name!r} has no `surface` settings in the {SCALE} scale")
    return settings


def surface_files(name):
    return [f"{R}/surfaces/{name}/{v}/seed{s}/surface.h5"
            for v in experiment(name).get("variants", {"default": {}}) for s in surface_settings(name)["seeds"]]


rule surface:
    input:
        run=f"{R}/runs/{{experiment}}/{{variant}}",
    output:
        surface=f"{R}/surfaces/{{experiment}}/{{variant}}/seed{{seed}}/surface.h5",
        directions=f"{R}/surfaces/{{experiment}}/{{variant}}/seed{{seed}}/directions.h5",
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        settings=lambda wc: surface_settings(wc.experiment),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/surface/{{experiment}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/surface/{{experiment}}/{{variant}}/seed{{seed}}.tsv"
    threads: THREADS
    script:
        "../scripts/surface.py"


rule skip_depth_claim:
    input:
        runs=lambda wc: run_dirs("skip_depth"),
        surfaces=lambda wc: surface_files("skip_depth"),
    output:
        **claim_outputs("li-skip-depth-chaos", "surfaces"),
    params:
        claim=claim_entry("li-skip-depth-chaos"),
        scale=SCALE,
    log:
        f"{LOGS}/claims/li-skip-depth-chaos.log",
    script:
        "../scripts/claim_skip_depth.py"
