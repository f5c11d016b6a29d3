"""The plane through a curve's endpoints and bend, and its contour figure with the curve drawn: thin glue
around losslab.claims.connectivity.analysis.pair_curve_plane."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.connectivity import analysis as conn
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
files = conn.pair_curve_plane(sm.params.run_a, sm.input.curve, sm.params.settings, sm.output.h5,
                              Path(sm.output.png).with_suffix(""), title=sm.params.title, progress=sm.params.progress)
log.info("plane %s and %s", sm.output.h5, files)
