# The verdict report: one row per claim of the registry, implemented or pending.


def implemented_claims():
    """Claims with a rule whose experiment (or toy settings) this scale defines."""
    return [c for c in CLAIMS if "rule" in c and (c.get("experiment") in EXP
            or (c.get("experiment") == "toys" and c["id"] in CFG.get("toys", {}))
            or (c.get("experiment") == "patterns" and "patterns" in CFG))]


rule report:
    input:
        verdicts=lambda wc: [f"{claim_dir(c['id'])}/verdict.json" for c in implemented_claims()],
        registry=REGISTRY,
    output:
        md=f"{R}/report/claims.md",
        csv=f"{R}/report/claims.csv",
    params:
        scale=SCALE,
    log:
        f"{LOGS}/report.log",
    script:
        "../scripts/report.py"
