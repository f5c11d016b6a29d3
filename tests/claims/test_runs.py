"""The results layout (losslab.claims.runs): every path made by one function and read back by its one parser, in
numeric order, without torch (the workflow's DAG is parsed with it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from losslab.claims import runs


@pytest.mark.parametrize("seed", [0, 7, 10, 123])
def test_seed_dir_and_its_parser_round_trip(tmp_path: Path, seed: int) -> None:
    d = runs.seed_dir(tmp_path, seed)
    assert d.parent == tmp_path and runs.seed_of(d) == seed
    assert runs.epoch_of(runs.epoch_group(seed)) == seed


@pytest.mark.parametrize("name", ["seed", "seedx", "sed1", "seed1a", "epoch3", "figures"])
def test_other_names_are_no_seed(name: str) -> None:
    assert runs.seed_of(name) is None


def test_files_of_a_run_and_their_order(tmp_path: Path) -> None:
    run = runs.run_dir(tmp_path, "keskar", "small")
    assert run == tmp_path / "runs" / "keskar" / "small"
    for seed in (10, 2, 1):
        for f in (runs.model_file(run, seed), runs.seed_dir(run, seed) / runs.METRICS):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(f'{{"seed": {seed}}}')
    (run / "seedling").mkdir()  # not a seed directory
    assert [runs.seed_of(d) for d in runs.seed_dirs(run)] == [1, 2, 10]
    assert [s for s, _ in runs.trained_seeds(run)] == [1, 2, 10]
    assert runs.weights_file(run, 2) == runs.model_file(run, 2) == run / "seed2" / "model.pt"
    assert runs.weights_file(run, 2, 5) == run / "seed2" / "snapshots" / "epoch_5.pt"
    # warm-start groups: group epoch first, then seed, both numerically
    groups = tmp_path / "warm"
    for epoch in (10, 3):
        for seed in (11, 0):
            d = runs.seed_dir(groups / runs.epoch_group(epoch), seed)
            d.mkdir(parents=True)
            (d / runs.METRICS).write_text("{}")
            (d / runs.MODEL).write_text("")
    found = [(runs.epoch_of(d.parent), runs.seed_of(d)) for d in runs.trained_networks(groups)]
    assert found == [(3, 0), (3, 11), (10, 0), (10, 11)]


def test_missing_runs_name_the_job_that_writes_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mpo_fit job"):
        runs.read_runs(tmp_path, made_by="mpo_fit")
    with pytest.raises(FileNotFoundError, match="no trained networks"):
        runs.trained_networks(tmp_path)


def test_surface_files_are_found_with_their_experiment_variant_and_seed(tmp_path: Path) -> None:
    made = runs.surface_dir(tmp_path, "li", "d20_skip", 3) / "surface.h5"
    made.parent.mkdir(parents=True)
    made.write_bytes(b"")
    (tmp_path / "surfaces" / "li" / "figures").mkdir()
    assert list(runs.surface_files(tmp_path)) == [("li", "d20_skip", 3, made)]
    assert runs.seed_title("li", "d20_skip", 3) == "li d20_skip seed 3"


def test_the_layout_loads_without_torch() -> None:
    code = "import sys, losslab.claims.runs, losslab.claims.connectivity.plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
