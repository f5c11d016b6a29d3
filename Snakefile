# losslab: every claim of the five loss-landscape documents as one DAG.
#   snakemake --cores 2                        (scale smoke: CPU, minutes, embedded data)
#   snakemake --cores 8 --config scale=cpu     (hours on a workstation)
#   snakemake --profile profiles/slurm --config scale=paper data_dir=/data
import os
from pathlib import Path

from losslab.claims import load_registry
from losslab.config import resolve, run_spec

configfile: os.path.join(workflow.basedir, "config", "config.yaml")

# validated before any job runs: a bad key stops here with a message naming it
CFG = resolve(config, root=workflow.basedir)
SCALE = CFG["scale"]
R = f"{CFG['results']}/{SCALE}"
LOGS = f"{CFG['logs']}/{SCALE}"
EXP = CFG["experiments"]
REGISTRY = str(Path(workflow.basedir) / "config" / "claims.yaml")
CLAIMS = load_registry(REGISTRY)
THREADS = CFG.get("threads", 1)

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
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{R}/report/claims.md",
        surface_figures(),
        ratio_map_figures(),
        connectivity_planes(),
    default_target: True
