"""The one owner of the results layout: where a run's files are, made by one function each and parsed by one.

::

    <results>/runs/<experiment>/<variant>/          run_dir       (rule ``train``; training: losslab.claims.training)
        seed<k>/                                    seed_dir
            model.pt  metrics.json  history.csv     model_file, METRICS, HISTORY
            snapshots/epoch_<e>.pt                  weights_file(run_dir, k, e), snapshots
    <results>/surfaces/<experiment>/<variant>/seed<k>/   surface_dir (surface.h5, directions.h5, ratio_map.h5 ...)

A *run directory* holds one variant's seeds. Seeds are read in numeric order (seed2 before seed10), and the one
place a seed is read back from a directory name is :func:`seed_of`. Torch-free: the workflow's DAG reads it when it
is parsed (``snakemake -n`` does not import torch)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from losslab import io as lio

MODEL, METRICS, HISTORY = "model.pt", "metrics.json", "history.csv"
HISTORY_COLUMNS = ["epoch", "lr", "batch_loss", "train_loss", "train_acc", "test_loss", "test_acc"]
_SEED, _EPOCH = "seed", "epoch"


def run_key(run: Mapping[str, Any], seed: int) -> str:
    """A short hash of a run spec and seed (the name of its resumable checkpoint)."""
    text = json.dumps({"run": run, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_dir(results: str | os.PathLike, experiment: str, variant: str) -> Path:
    """``<results>/runs/<experiment>/<variant>``: the seeds of one variant (a Snakemake wildcard such as
    ``"{variant}"`` may stand for a name)."""
    return Path(results) / "runs" / experiment / variant


def surface_dir(results: str | os.PathLike, experiment: str, variant: str, seed: int | str) -> Path:
    """``<results>/surfaces/<experiment>/<variant>/seed<k>``: the surfaces, directions and maps around one seed."""
    return seed_dir(Path(results) / "surfaces" / experiment / variant, seed)


def seed_dir(parent: str | os.PathLike, seed: int | str) -> Path:
    """``<parent>/seed<k>``: one seed's directory under a run (or surface, or job) directory."""
    return Path(parent) / f"{_SEED}{seed}"


def seed_of(path: str | os.PathLike) -> int | None:
    """The seed ``k`` of a ``seed<k>`` directory, None for any other name (the one parser of :func:`seed_dir`)."""
    name = Path(path).name
    digits = name[len(_SEED):]
    return int(digits) if name.startswith(_SEED) and digits.isdigit() else None


def seed_title(experiment: str, variant: str, seed: int | str) -> str:
    """How a figure names one seed of one variant: ``"<experiment> <variant> seed <k>"``."""
    return f"{experiment} {variant} seed {seed}"


def epoch_group(epoch: int) -> str:
    """``epoch<e>``: the group directory of networks started from a run's epoch-``e`` snapshot (Keskar's warm
    starts: ``<out>/epoch<e>/seed<k>``; :func:`trained_networks` reads them)."""
    return f"{_EPOCH}{epoch}"


def epoch_of(group: str | os.PathLike) -> int | None:
    """The epoch ``e`` of an ``epoch<e>`` group directory, None for any other name (the one parser of
    :func:`epoch_group`)."""
    name = Path(group).name
    digits = name[len(_EPOCH):]
    return int(digits) if name.startswith(_EPOCH) and digits.isdigit() else None


def model_file(run_dir: str | os.PathLike, seed: int) -> Path:
    """``<run_dir>/seed<k>/model.pt``: the final weights of one seed."""
    return seed_dir(run_dir, seed) / MODEL


def weights_file(run_dir: str | os.PathLike, seed: int, epoch: int | None = None) -> Path:
    """The final weights of one seed (``epoch`` None: :func:`model_file`) or its snapshot of ``epoch``
    (``seed<k>/snapshots/epoch_<e>.pt``, kept by the recipe's ``snapshots``)."""
    if epoch is None:
        return model_file(run_dir, seed)
    return seed_dir(run_dir, seed) / "snapshots" / f"epoch_{epoch}.pt"


def seed_dirs(parent: str | os.PathLike) -> list[Path]:
    """The ``seed<k>/`` subdirectories of ``parent`` in numeric seed order (seed2 before seed10)."""
    found = [p for p in Path(parent).glob(f"{_SEED}*") if p.is_dir() and seed_of(p) is not None]
    return sorted(found, key=seed_of)


def read_runs(parent: str | os.PathLike, made_by: str = "train") -> list[dict[str, Any]]:
    """The ``metrics.json`` of every seed under ``parent`` (its ``seed<k>/`` subdirectories), in seed order; the
    error names the job (``made_by``) that should have written them."""
    found = [d / METRICS for d in seed_dirs(parent) if (d / METRICS).exists()]
    if not found:
        raise FileNotFoundError(f"{parent}: no seed*/{METRICS} (has the {made_by} job run?)")
    return [lio.read_json(p) for p in found]


def trained_seeds(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(seed, seed directory)`` of every trained seed under ``run_dir`` (those with a ``metrics.json``), in seed
    order."""
    return [(int(m["seed"]), seed_dir(run_dir, m["seed"])) for m in read_runs(run_dir)]


def trained_networks(root: str | os.PathLike) -> list[Path]:
    """Every trained network under ``root`` at any depth (a ``metrics.json`` beside a ``model.pt``): the seed
    directories of a run directory, or of its groups (e.g. Keskar's warm starts, ``epoch<e>/seed<k>``), in
    numeric order of the path's parts (group epoch, then seed)."""
    root = Path(root)

    def key(d: Path) -> tuple[int, ...]:
        return tuple(int("".join(c for c in part if c.isdigit()) or -1) for part in d.relative_to(root).parts)

    found = [p.parent for p in root.rglob(METRICS) if (p.parent / MODEL).exists()]
    if not found:
        raise FileNotFoundError(f"{root}: no trained networks ({METRICS} + {MODEL}) under it")
    return sorted(found, key=key)


def read_history(seed_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The per-epoch rows of one seed's ``history.csv``."""
    with open(Path(seed_dir) / HISTORY, newline="") as fh:
        return list(csv.DictReader(fh))


def snapshots(seed_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of a run's weight snapshots, in epoch order (at least three: PCA directions need them)."""
    found = sorted((int(p.stem.split("_")[1]), p) for p in (Path(seed_dir) / "snapshots").glob("epoch_*.pt"))
    if len(found) < 3:
        raise FileNotFoundError(f"{seed_dir}/snapshots: need >= 3 epoch_*.pt snapshots for PCA directions "
                                f"(set `snapshots: all` in the recipe), found {len(found)}")
    return found


def surface_files(results: str | os.PathLike) -> Iterator[tuple[str, str, int, Path]]:
    """``(experiment, variant, seed, h5 file)`` of every HDF5 file in a results tree's surface directories."""
    for h5 in sorted((Path(results) / "surfaces").glob(f"*/*/{_SEED}*/*.h5")):
        seed = seed_of(h5.parent)
        if seed is not None:
            yield h5.parent.parent.parent.name, h5.parent.parent.name, seed, h5
