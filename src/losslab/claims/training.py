"""Training a run of the registry into its run directory (the layout is :mod:`losslab.claims.runs`'s).

A *run* is ``{"dataset": ..., "model": ..., "recipe": ...}`` plus a seed. :func:`train_run` trains it
(:func:`losslab.core.trainer.fit`) and writes, atomically, into its seed directory
(:func:`losslab.claims.runs.seed_dir`):

* ``model.pt``: the final ``state_dict`` (load with ``weights_only=True``; :func:`load_trained`);
* ``metrics.json``: final train/test loss and accuracy, epochs, the full run spec, seed,
  package versions, and ``diverged`` (true when the loss became NaN or infinite: training stops there and
  the run is reported, not crashed); its wall-clock seconds go to ``metrics.timing.json`` so that
  ``metrics.json`` is byte-identical between two runs (:func:`losslab.claims.runs.read_runs`);
* ``history.csv``: one row per epoch (:func:`losslab.claims.runs.read_history`);
* ``snapshots/epoch_{k}.pt`` when the recipe keeps them (:func:`losslab.claims.runs.snapshots`).

Into ``ckpt_dir`` it writes ``<run key>.pt`` (:func:`losslab.claims.runs.run_key`) as the trainer checkpoints; a
restarted run resumes from it."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from losslab import io as lio
from losslab.claims.runs import HISTORY, HISTORY_COLUMNS, METRICS, MODEL, run_key, seed_dir
from losslab.core.data import Prepared, prepare
from losslab.core.models import build
from losslab.core.optim import RecipeError
from losslab.core.placement import placement
from losslab.core.trainer import Recipe, fit, holdout, set_threads, versions

log = logging.getLogger(__name__)


def prepare_run(run: Mapping[str, Any], seed: int,
                device: str | torch.device | None = None) -> tuple[nn.Module, Prepared, Recipe]:
    """Data (read from the job's :func:`losslab.core.data.data_roots`), freshly initialised model (seeded; on
    ``device``, default the job's :func:`losslab.core.placement.placement`: :func:`fit` then moves the data there
    too) and recipe of a run spec."""
    recipe = Recipe.from_mapping(run.get("recipe", {}))
    data = prepare(run["dataset"])
    torch.manual_seed(seed)
    model = build(run["model"], data.input_shape, data.num_classes)
    if recipe.init_from:
        lio.load_state_dict(model, recipe.init_from)
    return model.to(placement().device if device is None else device), data, recipe


def select_lr(run: Mapping[str, Any], grid: Sequence[float], val_fraction: float = 0.2,
              seed: int = 0) -> tuple[float, list[dict]]:
    """Pick the learning rate of ``grid`` with the best validation accuracy (ties: the smaller loss), training
    ``run`` with ``seed`` on a held-out part of the training split. Diverged runs are never picked."""
    trials = []
    for lr in grid:
        spec = {**run, "recipe": {**run.get("recipe", {}), "lr": float(lr)}}
        model, data, recipe = prepare_run(spec, seed)
        state = fit(model, holdout(data, val_fraction, seed), recipe, seed)
        last = state["history"][-1]
        trials.append({"lr": float(lr), "diverged": bool(state["diverged"]),
                       "val_acc": last.get("test_acc", math.nan), "val_loss": last.get("test_loss", math.nan)})
        log.info("lr search: lr %g -> val acc %s diverged %s", lr, trials[-1]["val_acc"], state["diverged"])
    ok = [t for t in trials if not t["diverged"] and math.isfinite(t["val_acc"])]
    if not ok:
        raise RecipeError(f"lr search: every learning rate in {list(grid)} diverged")
    best = max(ok, key=lambda t: (t["val_acc"], -t["val_loss"]))
    return best["lr"], trials


def train_run(run: Mapping[str, Any], seed: int, out_dir: str | os.PathLike, ckpt_dir: str | os.PathLike,
              threads: int = 1, progress: bool = False, on_epoch_end: Callable[[int, dict], None] | None = None,
              device: str | torch.device | None = None) -> dict:
    """Train one run with one seed; write model.pt, metrics.json and history.csv into ``out_dir`` (its seed
    directory). ``device``
    is where the model and the data live; default the job's (:func:`losslab.core.placement.placement`)."""
    set_threads(threads)
    out_dir = Path(out_dir)
    # the checkpoint is keyed by what the run is: an edited recipe never resumes a stale checkpoint
    ckpt_path = Path(ckpt_dir) / f"{run_key(run, seed)}.pt"
    model, data, recipe = prepare_run(run, seed, device)
    state = fit(model, data, recipe, seed, ckpt_path=ckpt_path, out_dir=out_dir, progress=progress,
                on_epoch_end=on_epoch_end)
    final = state["history"][-1] if state["history"] else {}
    metrics = {
        "seed": seed,
        "run": run,
        "recipe": asdict(recipe),
        "epochs": state["epoch"],
        "diverged": bool(state["diverged"]),
        "stopped_early": bool(state.get("stopped", False)),
        "swa_iterates": int(state.get("swa_n", 0)),
        "wall_seconds": state["wall"],
        "threads": threads,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "train_size": len(data.y_train),
        "test_size": len(data.y_test),
        "versions": versions(),
        **{k: final.get(k, math.nan) for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
    }
    lio.save_torch(out_dir / MODEL, model.state_dict())
    lio.write_csv(out_dir / HISTORY, [{c: r.get(c, "") for c in HISTORY_COLUMNS} for r in state["history"]],
                  HISTORY_COLUMNS)
    lio.write_record(out_dir / METRICS, metrics)
    return metrics



def train_variant(run: Mapping[str, Any], seeds: Sequence[int], out_dir: str | os.PathLike,
                  ckpt_dir: str | os.PathLike, *, threads: int = 1, progress: bool = False) -> None:
    """Train every seed of one (experiment, variant) (rule ``train``) into ``out_dir/seed<k>``; with the run's
    ``lr_search``, first pick its learning rate (:func:`select_lr`, recorded in ``lr_search.json``).

    The seeds are written into a staging directory that replaces ``out_dir`` whole once every seed is trained
    (:func:`losslab.io.atomic_dir`): a failed job leaves the last complete run directory (the rule's output is
    ``update()``-flagged, so Snakemake neither deletes it first nor after the failure)."""
    run = dict(run)
    search = run.pop("lr_search", None)
    with lio.atomic_dir(out_dir, key=lio.json_text({"run": run, "lr_search": search, "seeds": list(seeds)})) as out:
        if search:
            lr, trials = select_lr(run, search["grid"], search.get("val_fraction", 0.2), search.get("seed", 0))
            lio.write_json(out / "lr_search.json", {"selected_lr": lr, "trials": trials, **search})
            run["recipe"] = {**run["recipe"], "lr": lr}
            log.info("lr search selected lr %g", lr)
        for seed in seeds:
            m = train_run(run, seed, seed_dir(out, seed), ckpt_dir, threads=threads, progress=progress)
            log.info("seed %d: train acc %.4f test acc %.4f diverged %s (%.1f s)", seed, m["train_acc"],
                     m["test_acc"], m["diverged"], m["wall_seconds"])


def load_trained(run: Mapping[str, Any], model_path: str | os.PathLike):
    """The trained model of a run (built from its spec, weights from ``model_path``) and its data (read from the
    job's :func:`losslab.core.data.data_roots`)."""
    data = prepare(run["dataset"])
    model = build(run["model"], data.input_shape, data.num_classes)
    lio.load_state_dict(model, model_path)
    model.eval()
    return model, data
