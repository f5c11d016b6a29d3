"""claims.md and claims.csv from the registry and every claim's verdict.json."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.verdicts import load_result
from losslab.claims.summary import build_report
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
results = {r["id"]: r for r in map(load_result, sm.input.verdicts)}
counts = build_report(sm.params.registry, results, Path(sm.output.md).parent, sm.params.scale,
                      results_dir=sm.params.results, seeds_by_scale=sm.params.seeds)
log.info("report: %s", counts)
