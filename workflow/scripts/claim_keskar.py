"""Verdict, table and figure of a Keskar et al. claim (losslab.sharpness), from the runs, their sharpness
files, warm starts and interpolations."""
from losslab.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.jobserver)
from pathlib import Path

from losslab import sharpness
from losslab.claims import check_for
from losslab.runtime import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
nets = {name: sharpness.load_net(spec) for name, spec in sm.params.nets.items()}
result = sharpness.claim(claim["id"], nets, check_for(claim, scale), scale, Path(sm.output.verdict).parent)
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
