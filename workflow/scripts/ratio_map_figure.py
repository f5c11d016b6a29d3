"""The figure of an experiment's eigenvalue-ratio maps side by side on one colour scale, each labelled by the
rule's `labels` (variant and seed)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import spectra
from losslab.pipeline.job import start_job
from losslab.core.surfaces import read_surface

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], config=sm.config)
maps = {label: read_surface(p) for label, p in zip(sm.params.labels, sm.input)}
files = spectra.plot_ratio_maps(maps, Path(sm.output.png).with_suffix(""),
                                title=f"{sm.wildcards.experiment}: Hessian eigenvalue ratio ({sm.params.scale})")
log.info("wrote %s", files)
