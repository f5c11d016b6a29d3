"""Verdict, table and figure of a lecture-family training claim (losslab.claims.lecture.trained), from its runs."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.lecture import trained as lecture
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.sharpness.spectra import seed_dirs
from losslab.claims.runs import read_history, read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
dirs = dict(sm.params.runs)
runs = {v: read_runs(d) for v, d in dirs.items()}
out_dir = Path(sm.output.verdict).parent
check = check_for(claim, scale)
cid = claim["id"]
if cid == "local-minima-cluster":
    result = lecture.local_minima_cluster(runs, check, scale, out_dir, claim_id=cid)
elif cid == "swa":
    lines, alphas = {}, None
    for v, d in dirs.items():
        lines[v] = {}
        for seed, seed_dir in seed_dirs(d):
            alphas, lines[v][seed] = lecture.flatness_lines(sm.params.specs[v], seed_dir, sm.params.lines,
                                                            out_dir / "lines" / v / f"seed{seed}",
                                                            data_dir=sm.params.data_dir, resources=sm.params.resources,
                                                            progress=sm.params.progress)
    result = lecture.swa_claim(runs, lines, alphas, check, scale, out_dir, claim_id=cid)
elif cid == "mixup":
    result = lecture.mixup_claim(runs, check, scale, out_dir, claim_id=cid)
elif cid == "mse-vs-cross-entropy":
    result = lecture.mse_vs_ce_claim(runs, check, scale, out_dir, claim_id=cid)
elif cid == "memorize-random-labels":
    histories = {v: [read_history(p) for _, p in seed_dirs(d)] for v, d in dirs.items()}
    result = lecture.memorize_claim(runs, histories, check, scale, out_dir, claim_id=cid)
else:
    raise ValueError(f"claim {cid!r} is not a lecture training claim")
result.write(sm.output.verdict)
log.info("%s: %s (%s)", cid, result.verdict, result.measured)
