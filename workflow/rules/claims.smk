# Every claim rule, generated from the registry (config/claims.yaml) in one loop: the entry's `rule` is the rule
# name (compute.rules.<rule> in config/scales/*.yaml refers to it), its `family` the report's category, and
# CLAIM_RULES (filled by the family rule files, included before this one) what differs per claim.

for _claim in CLAIMS:
    if "rule" not in _claim or _claim["id"] not in CLAIM_RULES:
        continue
    _spec = CLAIM_RULES[_claim["id"]]

    rule:
        name: _claim["rule"]
        input:
            **_spec.get("input", {}),
        output:
            **claim_outputs(_claim["id"], _claim["family"]),
            **_spec.get("output", {}),
        params:
            claim=_claim,
            scale=SCALE,
            **_spec.get("params", {}),
        log:
            f"{LOGS}/claims/{_claim['id']}.log",
        benchmark:
            f"{R}/benchmarks/claims/{_claim['id']}.tsv"
        threads: job_threads(_claim["rule"]) if _spec.get("threads") else 1
        resources:
            **job_resources(_claim["rule"]),
        script:
            "../scripts/claim.py"
