"""Shared test set-up: torch on one thread, a scratch working directory, and Snakemake runs of the DAG."""

import subprocess
import sys
from pathlib import Path

import pytest

from losslab.pipeline import cpu_kernels

# the CPU kernel pin before NumPy and torch load (losslab.pipeline.cpu_kernels): tests compute what the workflow
# computes
cpu_kernels.apply("pinned")

import torch  # noqa: E402
import yaml  # noqa: E402

from losslab.core.data import use_data_roots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
TEST_CONFIG = ROOT / ".test" / "config" / "config.yaml"  # the small test configuration: smoke, outputs here


def pytest_sessionstart(session):
    """Stop at once if the pin does not hold (a plugin computed with torch, or loaded NumPy, before this file)."""
    cpu_kernels.verify_pin()


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _work_in_a_scratch_directory(tmp_path_factory):
    """Relative defaults (``resources/`` caches, ...) land in a scratch directory, not in the checkout."""
    import os

    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)


@pytest.fixture(scope="module")
def cached_resources():
    """The data roots of a module's library calls (:func:`losslab.core.data.use_data_roots`, as a job's
    ``start_job`` sets them): the checkout's cached generated datasets (``resources/``) when they are there, else
    ``resources/`` in the scratch working directory."""
    cached = ROOT / "resources"
    with use_data_roots(resources=str(cached) if (cached / "digits_split0.npz").exists() else "resources") as roots:
        yield roots


def snakemake(workdir: Path, *args: str, timeout: int = 1800,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run this checkout's Snakefile with ``workdir`` as the working directory (outputs land there); ``env``
    replaces the environment (default: this process's)."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


SMALL = {
    "experiments": {
        "ablation": {"dataset": {"n_train": 200}, "recipe": {"epochs": 2}, "seeds": [0, 1]},
        "sgd_vs_gd": {"dataset": {"n_train": 100}, "recipe": {"epochs": 2}, "seeds": [0, 1],
                      "lr_search": {"grid": [0.1, 1.0]}},
        "skip_depth": {"dataset": {"options": {"num_samples": 300}}, "recipe": {"epochs": 2}, "seeds": [0, 1],
                       "surface": {"x": [-1, 1, 5], "y": [-1, 1, 5], "n_train": 50, "n_test": 50, "jobs": 2},
                       "ratio_map": {"x": [-1, 1, 3], "y": [-1, 1, 3], "n_train": 8, "max_iter": 8},
                       "walk": {"epochs": [1, 2], "points": 3, "n_train": 50, "n_test": 50}},
        "skip_width": {"dataset": {"options": {"num_samples": 300}}, "recipe": {"epochs": 3, "eval_every": 3},
                       "seeds": [0, 1], "width_analysis": {"ratio_map": {"x": [-1, 1, 3], "y": [-1, 1, 3], "n_train": 8,
                                                                         "max_iter": 8}}},
        "hessian_classes": {"dataset": {"n_train": 120}, "recipe": {"epochs": 2}, "seeds": [0],
                            "spectrum": {"top_k": 12, "slq_runs": 1, "slq_steps": 10, "n_train": 60}},
        "batch_outliers": {"dataset": {"n_train": 64}, "recipe": {"epochs": 2}, "seeds": [0, 1],
                           # the step-matched arm: batch 8 x 2 epochs = 16 steps
                           "variants": {"full_batch_steps": {"recipe": {"epochs": 16, "eval_every": 16}}},
                           "spectrum": {"top_k": 3, "slq_runs": 1, "slq_steps": 10}},
        "batch_wd": {"dataset": {"n_train": 64}, "recipe": {"epochs": 2, "schedule": {"milestones": [1]}},
                     "seeds": [0, 1], "random_lines": {"directions": 1, "alphas": [-0.5, 0.5, 3]},
                     "random_directions": {"directions": 3, "alphas": [-0.5, 0.5, 3]}},
        # Keskar family: 3 epochs on 400 digits, two seeds, a two-point sweep (no extra batch sizes to train)
        "keskar": {"dataset": {"n_train": 400}, "recipe": {"epochs": 3}, "seeds": [0, 1],
                   # the step-matched arm: sb takes 13 x 3 = 39 steps, lb 2 an epoch
                   "variants": {"sb": {"recipe": {"snapshots": [1, 2]}},
                                "lb_steps": {"recipe": {"epochs": 20, "eval_every": 20}}},
                   "sharpness": {"sweep": ["sb", "lb"], "warmstart": {"epochs": [1, 2]}, "n_train": 100,
                                 "subspace_dim": 10, "maxiter": 3,
                                 "interpolation": {"alphas": [-1.0, 2.0, 13], "n_train": 100, "n_test": 100}}},
        "lb_sb_basin": {"dataset": {"n_train": 64}, "recipe": {"epochs": 2}, "seeds": [0, 1],
                        "continuation": {"recipe": {"epochs": 1}}, "basin": {"alphas": [-1.0, 2.0, 13]}},
        "connectivity": {
            "dataset": {"n_train": 200, "n_test": 100},
            "recipe": {"epochs": 4, "schedule": {"milestones": [1, 2, 3]}, "snapshots": [1, 3, 4]},
            "variants": {"sgdr": {"recipe": {"schedule": {"T0": 1}}}},  # cycles end at 1, 3, 7
            "connectivity": {"curves": {"recipe": {"epochs": 2, "schedule": {"name": "constant"}}, "points": 5,
                                        "plane": {"n": 3}},
                             "gotmare-sgdr-barriers": {"epochs": [1, 3]},
                             "trivial-scaling-path": {"t": [0.1, 1.0, 4]},
                             "fge-ensembles": {"start_epoch": 3, "epochs": 4}},
        },
        # the lecture family's training claims
        "minima_width": {"dataset": {"n_train": 100}, "recipe": {"epochs": 1, "eval_every": 1}, "seeds": [0, 1, 2]},
        "swa": {"dataset": {"n_train": 100}, "recipe": {"epochs": 4, "eval_every": 4}, "seeds": [0, 1],
                "variants": {"swa": {"recipe": {"swa": {"start": 3}}}},
                "random_lines": {"directions": 1, "alphas": [-0.5, 0.5, 3]}},
        "mixup": {"dataset": {"n_train": 100}, "recipe": {"epochs": 2, "eval_every": 2}, "seeds": [0, 1]},
        "mse_vs_ce": {"dataset": {"n_train": 100}, "recipe": {"epochs": 2, "eval_every": 2}, "seeds": [0, 1]},
        "memorize": {"dataset": {"n_train": 32}, "recipe": {"epochs": 5}, "seeds": [0, 1]},
    },
    "patterns": {
        "mpo": {"steps": 4, "cells_per_step": 4, "ckpt_every": 2, "n_eval_train": 50, "n_eval_test": 50},
        "picture": {"pattern": {"kind": "shape", "name": "ring", "size": 5}, "mpo": {"steps": 4}},
        "random": {"size": 4, "p": [0.5], "seeds": [0, 1]},
    },
    "toys": {
        "tanh-toy-surface": {"grid": {"points": 41}, "gd": {"steps": 300, "seeds": [0]}},
        "saddles-dominate-high-dim": {"samples": 2000},
        "wilson-adaptive-generalize-worse": {"n": 20, "n_test": 50, "seeds": [0]},
    },
}
CLAIMS_IN_SMOKE = ("resnet56-ingredient-ablation", "bottou-sgd-beats-gd", "li-skip-depth-chaos",
                   "tanh-toy-surface", "saddles-dominate-high-dim", "redundant-overparam-flatness",
                   "wilson-adaptive-generalize-worse", "hessian-bulk-outliers", "batchsize-larger-outliers",
                   "li-filter-normalization-wd-flip", "lb-to-sb-same-basin", "keskar-lb-generalization-gap",
                   "keskar-sharpness-metric", "keskar-parametric-plot", "keskar-batch-threshold-and-warmstart",
                   "mpo-arbitrary-patterns", "mpo-bn-harder-to-fit",
                   "garipov-segment-barrier-and-curves", "gotmare-resilient-connectivity", "gotmare-sgdr-barriers",
                   "garipov-overparam-connectivity", "trivial-scaling-path", "fge-ensembles",
                   "local-minima-cluster", "swa", "mixup", "memorize-random-labels", "mse-vs-cross-entropy",
                   "li-width-nonconvexity")




@pytest.fixture(scope="session")
def small_dag(tmp_path_factory):
    """The smoke DAG on shrunken experiments (every rule kind, about a minute), run once per session."""
    workdir = tmp_path_factory.mktemp("small_dag")
    cfg = workdir / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(TEST_CONFIG), str(cfg))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir, cfg


# ---------------------------------------------------------------- the benchmark suite (tests/benchmarks) -------
# Marked `benchmark` and deselected unless the -m expression names it: `pytest -m benchmark tests/benchmarks`.
# (The hooks live here, not in a tests/benchmarks/conftest.py: a second module named `conftest` would shadow
# this one for the test modules that import from it.)
BENCHMARKS = ROOT / "tests" / "benchmarks"


@pytest.hookimpl(tryfirst=True)  # before -m filters on the marker added here
def pytest_collection_modifyitems(config, items):
    wanted = "benchmark" in (config.option.markexpr or "")
    keep, drop = [], []
    for item in items:
        if BENCHMARKS in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.benchmark)
            (keep if wanted else drop).append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = getattr(sys.modules.get("benchutil"), "RATIOS", [])  # tests/benchmarks/benchutil.py's record()
    if lines:
        terminalreporter.section("losslab benchmark ratios (measured in this run)")
        for line in lines:
            terminalreporter.write_line(line)
