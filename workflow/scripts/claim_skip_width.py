"""Verdict, table and figure of Li et al.'s width claim: the ratio maps and trajectory PCA of the width sweep's
runs (losslab.claims.surfaces.width_analysis), then the claim (width_nonconvexity)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims import surfaces as skip_connections
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.runs import read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
claim, scale = sm.params.claim, sm.params.scale
run_dirs = {Path(d).name: d for d in sm.input.runs}
runs = {v: read_runs(d) for v, d in run_dirs.items()}
ratio_maps, explained = skip_connections.width_analysis(
    sm.params.runs, run_dirs, sm.params.settings, sm.output.analysis, data_dir=sm.params.data_dir,
    resources=sm.params.resources, progress=sm.params.progress)
result = skip_connections.width_nonconvexity(runs, ratio_maps, explained, check_for(claim, scale), scale,
                                             Path(sm.output.verdict).parent, claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
