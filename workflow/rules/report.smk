# The verdict report: one row per claim of the registry, implemented or pending.

# The HTML report's landing page (`snakemake --report report.html` opens on it): the verdict table rule `report`
# writes (losslab.claims.summary.landing_page), once it is there; before, a page that says how to make it.
LANDING_PAGE = Path(f"{R}/report/landing.rst")
report: str(LANDING_PAGE.resolve()) if LANDING_PAGE.exists() else "../report/workflow.rst"


def implemented_claims():
    """Claims with a rule whose experiment (or toy settings) this scale defines."""
    return [c for c in CLAIMS if "rule" in c and (c.get("experiment") in EXP
            or (c.get("experiment") == "toys" and c["id"] in CFG.get("toys", {}))
            or (c.get("experiment") == "patterns" and "patterns" in CFG))]


rule report:
    input:
        verdicts=lambda wc: [f"{claim_dir(c['id'])}/verdict.json" for c in implemented_claims()],
        # index.md lists every figure outside the claims: they are inputs, else the list would depend on which
        # jobs happened to finish first (two runs of the DAG gave different index.md files)
        other_figures=lambda wc: surface_figures() + ratio_map_figures() + connectivity_planes(),
    output:
        md=f"{R}/report/claims.md",
        csv=f"{R}/report/claims.csv",
        index=f"{R}/report/index.md",
        power=f"{R}/report/power.md",
        landing=str(LANDING_PAGE),
    params:
        scale=SCALE,
        results=R,
        seeds=scale_seeds(),
        # the registry by content, not by path: the path (absolute, or relative to the working directory) changes
        # when the checkout or the results tree is moved or copied, and Snakemake would re-plan the report
        registry=CLAIMS,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{R}/benchmarks/report.tsv"
    script:
        "../scripts/report.py"


# `snakemake figures`: every figure, table and the report again from the stored results of this scale (after a
# style change in losslab.plots.figures.STYLE, say). No outputs, so it runs whenever it is named; it trains and
# evaluates nothing, and is not part of `all`.
rule figures:
    params:
        results=R,
        registry=REGISTRY,
        scale=SCALE,
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    script:
        "../scripts/figures.py"
