"""Verdict, table and figure of a training-ingredient claim, from the finished runs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims import ingredients
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.runs import read_history, read_runs, seed_dirs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
runs = {Path(d).name: read_runs(d) for d in sm.input.runs}
out_dir = Path(sm.output.verdict).parent
check = check_for(claim, scale)
if claim["id"] == "resnet56-ingredient-ablation":
    result = ingredients.ablation(runs, check, scale, out_dir, claim_id=claim["id"])
else:
    histories = {Path(d).name: [read_history(p) for p in seed_dirs(d)] for d in sm.input.runs}
    result = ingredients.sgd_vs_gd(runs, histories, check, scale, out_dir, claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
