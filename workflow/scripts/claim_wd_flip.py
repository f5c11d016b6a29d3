"""Train loss along raw and filter-normalized random lines through every trained seed of the four variants (SB/LB
x weight decay off/on), then the verdict, table and figure of li-filter-normalization-wd-flip."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import spectra
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.runs import read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
claim, scale = sm.params.claim, sm.params.scale
lines, alphas = {}, None
for d in sm.input.runs:
    v = Path(d).name
    lines[v] = {}
    for seed, seed_dir in spectra.seed_dirs(d):
        alphas, lines[v][seed] = spectra.sharpness_lines(
            sm.params.runs[v], seed_dir, seed, sm.params.settings, Path(sm.output.lines) / v / f"seed{seed}",
            data_dir=sm.params.data_dir, resources=sm.params.resources, progress=sm.params.progress)
runs = {Path(d).name: read_runs(d) for d in sm.input.runs}
result = spectra.wd_flip_claim(lines, alphas, runs, check_for(claim, scale), scale, Path(sm.output.verdict).parent,
                               claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
