# Loss surfaces (Li et al. 2018): a filter-normalized 2-D surface around chosen seeds of each variant of an
# experiment that has a `surface` key, and the skip-connection claim built on them.


def surface_settings(name):
    settings = experiment(name).get("surface")
    if settings is None:
        raise ValueError(f"experiment {name!r} has no `surface` settings in the {SCALE} scale")
    return settings


def surface_files(name):
    return [surface_path(name, v, s, "surface.h5")
            for v in experiment(name).get("variants", {"default": {}}) for s in surface_settings(name)["seeds"]]


def variant_surfaces(name):
    """variant -> the surface of its first surface seed (what the skip-depth claim reads of each variant)."""
    seed = surface_settings(name)["seeds"][0]
    return {v: surface_path(name, v, seed, "surface.h5") for v in variant_dirs(name)}


def trajectory_files(name):
    t = experiment(name).get("trajectory")
    return [] if t is None else [surface_path(name, v, s, "pca_surface.h5")
                                 for v in t["variants"] for s in t["seeds"]]


def surface_figures():
    """The standard figures of every surface and trajectory surface of this scale (rule `all` asks for them)."""
    out = []
    for name, exp in EXP.items():
        stems = (surface_files(name) if "surface" in exp else []) + trajectory_files(name)
        for h5 in stems:
            kind = Path(h5).stem  # surface or pca_surface
            out.append(f"{Path(h5).parent}/figures/{kind}/contour.png")
        out += [f"{Path(h5).parent}/figures/trajectory.png" for h5 in trajectory_files(name)]
    return out


def surface_shards(wc):
    """With `jobs: n > 1` in the surface settings, the n shard files the surface is merged from."""
    jobs = surface_settings(wc.experiment).get("jobs", 1)
    base = surface_path(wc.experiment, wc.variant, wc.seed, "shards")
    return [f"{base}/shard{k}.h5" for k in range(jobs)] if jobs > 1 else []


rule surface_shard:
    input:
        run=run_dir("{experiment}", "{variant}"),
    output:
        surface=surface_path("{experiment}", "{variant}", "{seed}", f"shards/shard{{shard}}.h5"),
        directions=surface_path("{experiment}", "{variant}", "{seed}", f"shards/directions{{shard}}.h5"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        settings=lambda wc: surface_settings(wc.experiment),
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/surface_shard/{{experiment}}/{{variant}}/seed{{seed}}.shard{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/surface_shard/{{experiment}}/{{variant}}/seed{{seed}}.shard{{shard}}.tsv"
    threads: job_threads("surface_shard")
    resources:
        **job_resources("surface_shard"),
    script:
        "../scripts/surface.py"


rule surface:
    input:
        run=run_dir("{experiment}", "{variant}"),
        shards=surface_shards,
    output:
        surface=surface_path("{experiment}", "{variant}", "{seed}", "surface.h5"),
        directions=surface_path("{experiment}", "{variant}", "{seed}", "directions.h5"),
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
    threads: job_threads("surface")
    resources:
        **job_resources("surface"),
    script:
        "../scripts/surface.py"


rule trajectory:
    input:
        run=run_dir("{experiment}", "{variant}"),
    output:
        surface=surface_path("{experiment}", "{variant}", "{seed}", "pca_surface.h5"),
        directions=surface_path("{experiment}", "{variant}", "{seed}", "pca_directions.h5"),
    params:
        run=lambda wc: run_spec(experiment(wc.experiment), wc.variant),
        settings=lambda wc: experiment(wc.experiment)["trajectory"],
        data_dir=CFG.get("data_dir"),
        resources=CFG.get("resources", "resources"),
        progress=CFG.get("progress", False),
    log:
        f"{LOGS}/trajectory/{{experiment}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{R}/benchmarks/trajectory/{{experiment}}/{{variant}}/seed{{seed}}.tsv"
    threads: job_threads("trajectory")
    resources:
        **job_resources("trajectory"),
    script:
        "../scripts/trajectory.py"


rule surface_figures:
    input:
        surface_path("{experiment}", "{variant}", "{seed}", f"{{kind}}.h5"),
    output:
        **{f"{stem}_{ext}": surface_path("{experiment}", "{variant}", "{seed}", f"figures/{{kind}}/{stem}.{ext}")
           for stem in ("contour", "filled", "surface3d", "line1d") for ext in ("png", "pdf")},
    wildcard_constraints:
        kind="surface|pca_surface",
    log:
        f"{LOGS}/surface_figures/{{experiment}}/{{variant}}/seed{{seed}}/{{kind}}.log",
    benchmark:
        f"{R}/benchmarks/surface_figures/{{experiment}}/{{variant}}/seed{{seed}}/{{kind}}.tsv"
    script:
        "../scripts/surface_figures.py"


rule trajectory_figure:
    input:
        surface_path("{experiment}", "{variant}", "{seed}", "pca_surface.h5"),
    output:
        png=surface_path("{experiment}", "{variant}", "{seed}", "figures/trajectory.png"),
        pdf=surface_path("{experiment}", "{variant}", "{seed}", "figures/trajectory.pdf"),
    log:
        f"{LOGS}/trajectory_figure/{{experiment}}/{{variant}}/seed{{seed}}/trajectory.log",
    benchmark:
        f"{R}/benchmarks/trajectory_figure/{{experiment}}/{{variant}}/seed{{seed}}/trajectory.tsv"
    script:
        "../scripts/surface_figures.py"


# Li et al.'s width claim: the width sweep's runs, with the ratio maps and the trajectories' PCA computed in the
# claim's own job (settings: the experiment's `width_analysis` key) and kept beside the verdict.
WIDTH_EXPERIMENT = claim_entry("li-width-nonconvexity")["experiment"]

CLAIM_RULES.update({
    "li-skip-depth-chaos": dict(
        input=dict(runs=lambda wc: run_dirs("skip_depth"), surfaces=lambda wc: surface_files("skip_depth")),
        params=dict(dirs=lambda wc: variant_dirs("skip_depth"), surfaces=lambda wc: variant_surfaces("skip_depth"))),
    "li-width-nonconvexity": dict(
        input=dict(runs=lambda wc: run_dirs(WIDTH_EXPERIMENT)),
        output=dict(analysis=directory(f"{claim_dir('li-width-nonconvexity')}/analysis")),
        params=dict(runs=lambda wc: {v: run_spec(experiment(WIDTH_EXPERIMENT), v)
                                     for v in experiment(WIDTH_EXPERIMENT)["variants"]},
                    settings=lambda wc: experiment(WIDTH_EXPERIMENT)["width_analysis"],
                    data_dir=CFG.get("data_dir"), resources=CFG.get("resources", "resources"),
                    progress=CFG.get("progress", False), dirs=lambda wc: variant_dirs(WIDTH_EXPERIMENT)),
        threads=True),
})
