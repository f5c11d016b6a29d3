"""Li et al.'s |lambda_min/lambda_max| map on the plane of one seed's 2-D surface (rule ratio_map), or the figure
of an experiment's maps side by side on one colour scale (rule ratio_map_figure)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import spectra
from losslab.pipeline.job import start_job
from losslab.core.surfaces import read_surface

sm = snakemake  # noqa: F821 (provided by Snakemake)
if sm.rule == "ratio_map":
    log = start_job(sm.log[0], sm.threads, sm.config)
    wc = sm.wildcards
    surface = spectra.ratio_map_of_run(sm.params.run, Path(sm.input.run) / f"seed{wc.seed}" / "model.pt",
                                       sm.input.directions, sm.params.settings, sm.output[0],
                                       data_dir=sm.params.data_dir, resources=sm.params.resources,
                                       progress=sm.params.progress)
    log.info("ratio map %s: ratio %.3g .. %.3g, %d Hessian-vector products", sm.output[0], surface["ratio"].min(),
             surface["ratio"].max(), int(surface["products"].sum()))
else:
    log = start_job(sm.log[0], config=sm.config)
    # surfaces/<experiment>/<variant>/seed<k>/ratio_map.h5
    maps = {f"{Path(p).parent.parent.name} seed {Path(p).parent.name[4:]}": read_surface(p) for p in sm.input}
    files = spectra.plot_ratio_maps(maps, Path(sm.output.png).with_suffix(""),
                                    title=f"{sm.wildcards.experiment}: Hessian eigenvalue ratio ({sm.params.scale})")
    log.info("wrote %s", files)
