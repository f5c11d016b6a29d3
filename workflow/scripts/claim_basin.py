"""The line from each seed's large-batch end point through its small-batch continuation (alpha in the
interpolation grid), then the verdict, table and figure of lb-to-sb-same-basin."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import spectra
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.runs import read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
claim, scale = sm.params.claim, sm.params.scale
lines = {seed: spectra.basin_line(sm.params.run, lb / "model.pt", Path(sm.input.sb) / lb.name / "model.pt",
                                  sm.params.settings, Path(sm.output.lines) / f"{lb.name}.h5",
                                  data_dir=sm.params.data_dir, resources=sm.params.resources,
                                  progress=sm.params.progress)
         for seed, lb in spectra.seed_dirs(sm.input.lb)}
result = spectra.lb_sb_basin_claim(lines, read_runs(sm.input.lb), read_runs(sm.input.sb), check_for(claim, scale),
                                   scale, Path(sm.output.verdict).parent, claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
