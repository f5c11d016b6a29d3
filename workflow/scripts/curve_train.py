"""Train one curve (Bezier or polychain) between the two endpoints of a pair: thin glue around
losslab.claims.connectivity.analysis.train_pair_curve (resumable from its checkpoint)."""
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)  # noqa: E402,E702,F821 (see losslab.pipeline.jobserver)
from losslab.claims.connectivity import analysis as conn
from losslab.claims.connectivity import plan
from losslab.pipeline.job import start_job

sm = snakemake  # noqa: F821 (provided by Snakemake)
log = start_job(sm.log[0], sm.threads, sm.config)
ends = {"a": plan.Endpoint.parse(sm.params.a), "b": plan.Endpoint.parse(sm.params.b)}
record = conn.train_pair_curve(
    sm.params.run_a, sm.params.run_b, ends, sm.wildcards.kind, sm.params.settings,
    ends["a"].weights_file(sm.input.run_a), ends["b"].weights_file(sm.input.run_b),
    sm.output.curve, sm.output.record, sm.params.checkpoints, progress=sm.params.progress)
last = record["history"][-1]["batch_loss"] if record["history"] else float("nan")
log.info("%s curve %s -> %s: %d epochs, last batch loss %.4g, diverged %s (%.1f s)", record["kind"], record["a"],
         record["b"], record["epochs"], last, record["diverged"], record["wall_seconds"])
