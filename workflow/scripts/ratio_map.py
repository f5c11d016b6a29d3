"""Li et al.'s |lambda_min/lambda_max| map on the plane of one seed's 2-D surface: thin glue around
losslab.claims.sharpness.spectra.ratio_map_of_run."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.sharpness import spectra
from losslab.claims.runs import model_file
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
surface = spectra.ratio_map_of_run(sm.params.run, model_file(sm.input.run, sm.wildcards.seed),
                                   sm.input.directions, sm.params.settings, sm.output[0], progress=sm.params.progress)
log.info("ratio map %s: ratio %.3g .. %.3g, %d Hessian-vector products", sm.output[0], surface["ratio"].min(),
         surface["ratio"].max(), int(surface["products"].sum()))
