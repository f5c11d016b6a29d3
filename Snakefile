# losslab: every claim of the five loss-landscape documents as one DAG.
#   snakemake --cores 2                        (scale smoke: CPU, minutes, embedded data)
#   snakemake --cores 8 --config scale=cpu     (hours on a workstation)
#   snakemake --profile profiles/slurm --config scale=paper data_dir=/data
import os
from pathlib import Path

from losslab.pipeline import cpu_kernels
from losslab.pipeline.registry import load_registry
from losslab.pipeline.config import resolve, run_spec

configfile: os.path.join(workflow.basedir, "config", "config.yaml")

# validated before any job runs: a bad key stops here with a message naming it
CFG = resolve(config, root=workflow.basedir)
# the CPU kernel pin goes into this process's environment, which every job (and the job server) inherits: it must
# be there before a job imports NumPy or torch (losslab.pipeline.cpu_kernels)
cpu_kernels.apply(cpu_kernels.mode_for(CFG))
SCALE = CFG["scale"]
R = f"{CFG['results']}/{SCALE}"
LOGS = f"{CFG['logs']}/{SCALE}"
EXP = CFG["experiments"]
REGISTRY = str(Path(workflow.basedir) / "config" / "claims.yaml")
CLAIMS = load_registry(REGISTRY)
THREADS = CFG.get("threads", 1)
COMPUTE = CFG["compute"]
_COMPUTED, _THREADED = set(), set()  # rules that asked for their resources / their threads (checked at the end)

# Rules that run inside the Snakemake process itself, never submitted to a cluster (a job each would be mostly
# queueing): the report and the figures drawn from stored data. Every other rule takes its resources from the
# scale's `compute` block (tests/test_slurm.py checks that none is missing).
localrules: all, report, figures, surface_figures, trajectory_figure, ratio_map_figure


def job_compute(rule_name):
    """The scale's `compute.default` under `compute.rules.<rule_name>`."""
    return {**COMPUTE["default"], **COMPUTE.get("rules", {}).get(rule_name, {})}


def job_resources(rule_name):
    """A rule's `resources:` (mem_mb, runtime in minutes, gpu) from the scale's `compute` block."""
    _COMPUTED.add(rule_name)
    return {k: v for k, v in job_compute(rule_name).items() if k != "threads"}


def job_threads(rule_name):
    """A rule's `threads:`: `compute.rules.<rule_name>.threads`, else the top-level `threads`."""
    _THREADED.add(rule_name)
    return job_compute(rule_name).get("threads", THREADS)


def check_compute():
    """Every `compute.rules` key names a rule that takes its resources from it (and its threads, if it sets them)."""
    for name, settings in COMPUTE.get("rules", {}).items():
        if name not in _COMPUTED:
            raise ValueError(f"config key 'compute.rules.{name}': no rule {name!r} takes its resources from the "
                             f"compute block; rules that do: {sorted(_COMPUTED)}")
        if "threads" in settings and name not in _THREADED:
            raise ValueError(f"config key 'compute.rules.{name}.threads': rule {name!r} is single-threaded "
                             f"(it has no `threads: job_threads(...)`)")

wildcard_constraints:
    experiment="[A-Za-z0-9_]+",
    variant="[A-Za-z0-9_]+",


def claim_dir(claim_id):
    return f"{R}/claims/{claim_id}"


include: "workflow/rules/train.smk"
include: "workflow/rules/ingredients.smk"
include: "workflow/rules/surfaces.smk"
include: "workflow/rules/spectra.smk"
include: "workflow/rules/toys.smk"
include: "workflow/rules/sharpness.smk"
include: "workflow/rules/patterns.smk"
include: "workflow/rules/connectivity.smk"
include: "workflow/rules/lecture.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{R}/report/claims.md",
        surface_figures(),
        ratio_map_figures(),
        connectivity_planes(),
    default_target: True


check_compute()
