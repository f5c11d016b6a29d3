"""The figures of one surface file: contour, filled, 3-D and 1-D; or the trajectory of a PCA-plane surface."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.plots.landscape import plot_surface_file, plot_trajectory_file
from losslab.claims.runs import seed_title
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
wc = sm.wildcards
title = seed_title(wc.experiment, wc.variant, wc.seed)
if sm.rule == "trajectory_figure":
    files = plot_trajectory_file(sm.input[0], Path(sm.output.png).with_suffix(""), title=title)
else:
    files = plot_surface_file(sm.input[0], Path(sm.output.contour_png).parent, title=title)
log.info("wrote %d figure files", len(files))
