"""Loss and error along one curve and along the segment beside it (HDF5): thin glue around
losslab.claims.connectivity.analysis.evaluate_pair_curve."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.connectivity import analysis as conn
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
pair = {"a": sm.params.a, "b": sm.params.b}
res = conn.evaluate_pair_curve(sm.params.run_a, sm.input.curve, sm.params.settings, sm.output[0], pair=pair)
m = res.metrics
log.info("%s: test err max %.4f (segment %.4f), train loss barrier %.4g (segment %.4g), length ratio %.3f",
         sm.output[0], m["test_err_max"], m["segment_test_err_max"], m["train_loss_barrier"],
         m["segment_train_loss_barrier"], m["length_ratio"])
