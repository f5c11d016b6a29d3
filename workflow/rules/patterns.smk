# Loss patterns (Skorokhodov & Burtsev 2019, source 004): multi-point optimization (MPO) of a plane of networks
# to a binary pattern, and the two claims built on it. Settings: the scale's top-level `patterns` block (no block,
# no rules). One job per (architecture, pattern) fits every seed of it (torch start-up, ~2.5 s, is as long as a
# smoke run); its optimisation checkpoints live outside the job's output, so a killed job, rerun, resumes.
#   results/<scale>/patterns/<architecture>/<pattern>/seed<k>/{maps.npz, metrics.json, history.csv}
# with <architecture> plain (without BN) or bn, <pattern> `picture` or p<fill probability> (p0.3).

PAT = CFG.get("patterns")

if PAT is not None:

    def random_keys():
        """Pattern key -> fill probability of the random masks."""
        return {f"p{float(p):g}": float(p) for p in PAT["random"]["p"]}

    def pattern_job(arch, key):
        """What one mpo_fit job runs (losslab.claims.patterns.run_job): architecture, dataset, model, MPO
        settings (the block's `mpo` under the section's own `mpo` overrides) and the pattern spec."""
        if arch not in PAT["architectures"]:
            raise ValueError(f"unknown architecture {arch!r}; the {SCALE} scale's patterns define "
                             f"{sorted(PAT['architectures'])}")
        if key == "picture":
            section, pattern = PAT["picture"], dict(PAT["picture"]["pattern"])
        elif key in random_keys():
            section = PAT["random"]
            pattern = {"kind": "random", "size": PAT["random"]["size"], "p": random_keys()[key]}
        else:
            raise ValueError(f"unknown pattern {key!r}; the {SCALE} scale has picture and {sorted(random_keys())}")
        return dict(architecture=arch, pattern_key=key, dataset=PAT["dataset"], model=PAT["architectures"][arch],
                    mpo={**PAT["mpo"], **section.get("mpo", {})}, pattern=pattern)

    def pattern_seeds(key):
        return PAT["picture"]["seeds"] if key == "picture" else PAT["random"]["seeds"]

    def pattern_dirs(arch, keys):
        return [f"{R}/patterns/{arch}/{k}" for k in keys]

    rule mpo_fit:
        output:
            directory(f"{R}/patterns/{{arch}}/{{pattern}}"),
        wildcard_constraints:
            arch="plain|bn",
            pattern=r"picture|p[0-9.]+",
        params:
            job=lambda wc: pattern_job(wc.arch, wc.pattern),
            seeds=lambda wc: pattern_seeds(wc.pattern),
            checkpoints=f"{R}/checkpoints/patterns",
            data_dir=CFG.get("data_dir"),
            resources=CFG.get("resources", "resources"),
        log:
            f"{LOGS}/mpo_fit/{{arch}}/{{pattern}}.log",
        benchmark:
            f"{R}/benchmarks/mpo_fit/{{arch}}/{{pattern}}.tsv"
        threads: job_threads("mpo_fit")
        resources:
            **job_resources("mpo_fit"),
        script:
            "../scripts/mpo_fit.py"

    CLAIM_RULES.update({
        "mpo-arbitrary-patterns": dict(input=dict(runs=pattern_dirs("plain", ["picture"]))),
        "mpo-bn-harder-to-fit": dict(input=dict(plain=pattern_dirs("plain", random_keys()),
                                                bn=pattern_dirs("bn", random_keys()))),
    })
