# The shared helpers of every rule file (included first: the family files may come in any order after it):
# the validated config, the compute block, experiments and their run directories, claim outputs.
from pathlib import Path

from losslab.claims import runs
from losslab.pipeline import cpu_kernels, integrity
from losslab.pipeline.registry import load_registry
from losslab.pipeline.report_items import report_labels
from losslab.pipeline.config import resolve, run_spec, scale_seeds

# validated before any job runs: a bad key stops here with a message naming it
CFG = resolve(config, root=ROOT)
# the CPU kernel pin goes into this process's environment, which every job (and the job server) inherits: it must
# be there before a job imports NumPy or torch (losslab.pipeline.cpu_kernels)
cpu_kernels.apply(cpu_kernels.mode_for(CFG))
SCALE = CFG["scale"]
R = f"{CFG['results']}/{SCALE}"
LOGS = f"{CFG['logs']}/{SCALE}"
EXP = CFG["experiments"]
# not an input of any rule: the report takes the registry's content as a param (a changed entry reruns it), since
# Snakemake reruns a job whose set of input paths changed and this path moves with the checkout
REGISTRY = str(ROOT / "config" / "claims.yaml")
CLAIMS = load_registry(REGISTRY)
THREADS = CFG.get("threads", 1)
# rules' data_dir=/resources= params only record what a job's data depend on (a change reruns it): see DataRoots
COMPUTE = CFG["compute"]
_COMPUTED, _THREADED = set(), set()  # rules that asked for their resources / their threads (checked at the end)

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

def check_finished_outputs():
    """Refuse to plan over a damaged finished output (losslab.pipeline.integrity): a file deleted from a run
    directory or a truncated surface would otherwise be taken as done. Called at the end of the Snakefile."""
    directories = [d for name in EXP for d in run_dirs(name)]
    surfaces = [f for name in EXP if "surface" in EXP[name] for f in surface_files(name)]
    surfaces += [f for name in EXP for f in trajectory_files(name)]
    integrity.check_finished_outputs(directories, surfaces)

wildcard_constraints:
    experiment="[A-Za-z0-9_]+",
    variant="[A-Za-z0-9_]+",


def claim_dir(claim_id):
    return f"{R}/claims/{claim_id}"


def claim_entry(claim_id):
    return next(c for c in CLAIMS if c["id"] == claim_id)


def claim_experiment(claim_id):
    """The experiment a claim's registry entry names."""
    return claim_entry(claim_id)["experiment"]


def claim_outputs(claim_id, family):
    d = claim_dir(claim_id)
    return dict(
        verdict=f"{d}/verdict.json",
        table=f"{d}/table.csv",
        table_md=f"{d}/table.md",
        # in the HTML report under its family and claim, labelled with its verdict (read from verdict.json when the
        # report is made: losslab.pipeline.report_items)
        figure=report(f"{d}/figure.png", category=family, subcategory=claim_id,
                      caption="../report/captions/" + claim_id + ".rst",
                      labels=lambda wildcards, output: report_labels(output.verdict, "claim figure")),
        figure_pdf=f"{d}/figure.pdf",
        # the pre-registered decision: each part's interval against its margin and smallest effect of interest
        decision=report(f"{d}/decision.png", category=family, subcategory=claim_id,
                        caption="../report/captions/decision.rst",
                        labels=lambda wildcards, output: report_labels(output.verdict, "decision")),
        decision_pdf=f"{d}/decision.pdf",
    )


def experiment(name):
    if name not in EXP:
        raise ValueError(f"unknown experiment {name!r}; the {SCALE} scale defines {sorted(EXP)}")
    return EXP[name]


def run_dir(name, variant):
    """The run directory of one variant of experiment `name` (losslab.claims.runs.run_dir; a wildcard such as
    "{experiment}" may stand for a name)."""
    return str(runs.run_dir(R, name, variant))


def surface_path(name, variant, seed, what):
    """`what` in the surface directory of one seed of one variant (losslab.claims.runs.surface_dir)."""
    return str(runs.surface_dir(R, name, variant, seed) / what)


def variant_dirs(name):
    """variant -> the run directory of that variant of experiment `name`."""
    return {v: run_dir(name, v) for v in experiment(name).get("variants", {"default": {}})}


def run_dirs(name):
    return list(variant_dirs(name).values())


def variant_specs(name):
    """variant -> run spec of every variant of an experiment."""
    return {v: run_spec(experiment(name), v) for v in experiment(name).get("variants", {"default": {}})}


def experiment_key(name, key):
    """The `key` settings block of experiment `name` (an error naming both when the scale lacks it)."""
    settings = experiment(name).get(key)
    if settings is None:
        raise ValueError(f"experiment {name!r} has no `{key}` settings in the {SCALE} scale")
    return settings


# The claim rules: one per registry entry with a `rule`, made in one loop (rules/claims.smk) from the common body
# (the claim's verdict, table and figure, its log, benchmark and resources) and what the family's rule file puts
# in this table for it: claim id -> {input: named inputs, output: extra outputs, params: per-claim params,
# threads: True when it takes `compute.rules.<rule>.threads`}. A claim absent from the table has no rule at this
# scale (its family's settings are not defined there).
CLAIM_RULES = {}
