"""Hessian spectra of every variant's trained seeds, then the claim's verdict, table and figure
(hessian-bulk-outliers or batchsize-larger-outliers): thin glue around losslab.claims.sharpness.spectra."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from pathlib import Path

from losslab.claims.sharpness import spectra
from losslab.pipeline.registry import check_for
from losslab.pipeline.job import start_job
from losslab.claims.runs import read_runs

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
claim, scale = sm.params.claim, sm.params.scale
dirs = {Path(d).name: d for d in sm.input.runs}
spectra_by_variant = {v: spectra.run_spectra(sm.params.runs[v], d, sm.params.settings, data_dir=sm.params.data_dir,
                                             resources=sm.params.resources) for v, d in dirs.items()}
spectra.write_spectra(sm.output.spectra, spectra_by_variant)
runs = {v: read_runs(d) for v, d in dirs.items()}
analysis = {"hessian_outliers_claim": spectra.hessian_outliers_claim,
            "batchsize_outliers_claim": spectra.batchsize_outliers_claim}[sm.rule]
result = analysis(spectra_by_variant, runs, check_for(claim, scale), scale, Path(sm.output.verdict).parent,
                  claim_id=claim["id"])
result.write(sm.output.verdict)
log.info("%s: %s (%s)", claim["id"], result.verdict, result.measured)
