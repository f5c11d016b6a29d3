"""Verdict, table and figure of the skip-connection claim, from the runs and their surfaces."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims import surfaces as skip_connections
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.core.surfaces import read_surface
from losslab.claims.runs import read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
claim, scale = sm.params.claim, sm.params.scale
runs = {Path(d).name: read_runs(d) for d in sm.input.runs}
# surfaces/<experiment>/<variant>/seed<k>/surface.h5: one surface per variant (the first seed listed)
surfaces = {}
for path in sm.input.surfaces:
    surfaces.setdefault(Path(path).parent.parent.name, read_surface(path))
result = skip_connections.claim(runs, surfaces, check_for(claim, scale), scale, Path(sm.output.verdict).parent,
                                claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
