"""Verdict, table and figure of a Keskar et al. claim (losslab.claims.sharpness.keskar), from the runs, their sharpness
files, warm starts and interpolations."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import keskar as sharpness
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
nets = {name: sharpness.load_net(spec) for name, spec in sm.params.nets.items()}
result = sharpness.claim(claim["id"], nets, check_for(claim, scale), scale, Path(sm.output.verdict).parent)
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
