"""Mode connectivity in the workflow: six claims of Garipov et al. (2018) and Gotmare et al. (2018), their jobs
and analyses (what they read is planned in :mod:`losslab.claims.connectivity.plan`).

The workflow's jobs are thin calls of:

* :func:`train_pair_curve` (rule ``curve``): one curve per (pair, kind), resumable (:func:`curves.fit_curve`);
* :func:`evaluate_pair_curve` (rule ``curve_eval``): loss and error along t on the curve and on the segment
  beside it, one HDF5 per curve (:func:`curves.evaluate_along_curve`);
* :func:`pair_curve_plane` (rule ``curve_plane``): the plane through the endpoints and the bend, the curve
  drawn on its contour plot;
* :func:`fge_of_runs` (rule ``fge``): fast geometric ensembling from the snapshot at the start epoch;
* the claim analyses (``*_claim``), each writing ``table.csv/md``, ``figure.png/pdf`` and returning a
  :class:`ClaimResult` decided by its pre-registration (its ``decision`` in ``config/claims.yaml``, applied by
  :func:`decide_claim`). :data:`CLAIMS` maps claim ids to the functions that load a claim's inputs and run its
  analysis.

Everything numerical is in :mod:`losslab.core.curves`; this module wires it to runs, files and verdicts. Matplotlib
and SciPy are imported where they are used: the curve, evaluation and FGE jobs never draw, and at the smoke
scale their start-up is most of what such a job costs."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from losslab.core import curves
from losslab import io as lio
from losslab.claims.claim_job import ClaimJob
from losslab.claims.verdicts import ClaimResult, Measured, binomial_tolerance, decide_claim
from losslab.core.data import Prepared, prepare
from losslab.core.models import build
from losslab.core.weights import ParamLayout, flatten, has_batchnorm, tensor_digest
from losslab.claims.tables import fmt, mean_std, write_table
from losslab.core.surfaces import evaluators_for, read_surface
from losslab.core.trainer import Recipe, batching, versions
from losslab.claims.runs import METRICS, weights_file
from losslab.claims.training import load_trained
from losslab.plots import figures
from losslab.plots.landscape import draw_contour, shared_levels
from losslab.claims.connectivity.plan import (KINDS, CurveSettings, Endpoint, FGE, GARIPOV, GOTMARE, SCALING, SGDR,
                                              WIDTH)
from losslab.core.surfaces import grid

log = logging.getLogger(__name__)

# Garipov et al., supp. Table 2, VGG-16 on CIFAR-10: test error (%) min / int / max, and the range of length
# ratios over their architectures (text of sec. 4)
PAPER_GARIPOV = {"endpoints": {"min": 6.87, "int": None, "max": 7.01, "length_ratio": None},
                 "segment": {"min": 6.87, "int": 63.75, "max": 90.0, "length_ratio": 1.0},
                 "bezier": {"min": 6.59, "int": 6.77, "max": 7.01, "length_ratio": "1.30-2.13"},
                 "polychain": {"min": 6.54, "int": 6.89, "max": 7.28, "length_ratio": "1.64-3.48"}}


# ---------------------------------------------------------------- loading ---------------------------------

def load_pair(run_a: Mapping[str, Any], run_b: Mapping[str, Any], file_a: str | os.PathLike,
              file_b: str | os.PathLike) -> tuple[nn.Module, Prepared, torch.Tensor, torch.Tensor]:
    """The model (endpoint ``a``'s architecture, with its weights and buffers), ``a``'s data and the flat
    weights of both endpoints. The two runs may differ in anything but the architecture (e.g. ``init_scale``)."""
    model, data = load_trained(run_a, file_a)
    other = build(run_b["model"], data.input_shape, data.num_classes)
    lio.load_state_dict(other, file_b)
    if ParamLayout.of(model) != ParamLayout.of(other):
        raise ValueError(f"{file_a} and {file_b}: the endpoints have different architectures; a curve needs one")
    return model, data, flatten(model), flatten(other)


def curve_identity(kind: str, pair: Mapping[str, Any], settings: Mapping[str, Any], w0: torch.Tensor,
                   w1: torch.Tensor) -> str:
    """A short hash of what a curve is (kind, bends, endpoints, recipe, seed): its checkpoint's name, so an
    edited recipe or retrained endpoint never resumes a stale checkpoint."""
    s = CurveSettings.of(settings)
    text = json.dumps({"kind": kind, "bends": s.bends, "recipe": s.recipe,
                       "seed": s.seed, "a": str(pair["a"]), "b": str(pair["b"]),
                       "w": tensor_digest(w0, w1)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- the jobs --------------------------------

def train_pair_curve(run_a: Mapping[str, Any], run_b: Mapping[str, Any], pair: Mapping[str, Any], kind: str,
                     settings: Mapping[str, Any], file_a: str | os.PathLike, file_b: str | os.PathLike,
                     out_curve: str | os.PathLike, out_json: str | os.PathLike, ckpt_dir: str | os.PathLike, *,
                     progress: bool = False) -> dict:
    """Train the ``kind`` curve between the pair's endpoints on endpoint ``a``'s data (its augmentation too)
    with the settings' recipe; checkpoint after every epoch in ``ckpt_dir`` (resumed when present); write the
    curve (``curves.save_curve``) and its training record (history, wall seconds, endpoints and their file
    hashes) as JSON."""
    s = CurveSettings.of(settings)
    model, data, w0, w1 = load_pair(run_a, run_b, file_a, file_b)
    recipe = Recipe.from_mapping(s.recipe)
    curve = curves.make_curve(kind, w0, w1, int(s.bends))
    ckpt = Path(ckpt_dir) / f"{kind}-{curve_identity(kind, pair, s, w0, w1)}.pt"
    state = curves.fit_curve(curve, model, data, recipe, int(s.seed), ckpt_path=ckpt, progress=progress)
    curves.save_curve(out_curve, curve)
    record = {"kind": kind, "n_bends": curve.n_bends, "a": str(pair["a"]), "b": str(pair["b"]),
              "a_sha256": lio.file_hash(file_a), "b_sha256": lio.file_hash(file_b), "recipe": s.recipe,
              "seed": s.seed, "epochs": state["epoch"], "diverged": bool(state["diverged"]),
              "wall_seconds": state["wall"], "num_parameters": int(w0.numel()),
              "distance": float((w1.double() - w0.double()).norm()), "history": state["history"],
              "versions": versions()}
    lio.write_record(out_json, record)
    return record


def evaluate_pair_curve(run_a: Mapping[str, Any], curve_file: str | os.PathLike, settings: Mapping[str, Any],
                        out: str | os.PathLike, *, pair: Mapping[str, Any] | None = None) -> curves.CurveEvaluation:
    """Loss and error on the curve and on the segment at ``settings["points"]`` values of t (BN statistics
    per t by the settings' ``bn``), written to ``out`` (HDF5, :func:`curves.write_curve_evaluation`) with
    the pair's endpoints as attributes."""
    s = CurveSettings.of(settings)
    curve = curves.load_curve(curve_file)
    model, data = _architecture(run_a, s.bn)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    res = curves.evaluate_along_curve(curve, model, data, int(s.points), loss=run_a["recipe"].get("loss", "ce"),
                                      bn=s.bn, chunk=int(s.chunk))
    res.attrs["n_test"] = len(data.y_test)  # the test-set size: the claims' binomial tolerances need it
    if pair is not None:
        res.attrs.update(a=str(pair["a"]), b=str(pair["b"]))
    curves.write_curve_evaluation(out, res)
    return res


def _architecture(run: Mapping[str, Any], bn: str) -> tuple[nn.Module, Prepared]:
    """A freshly built model of the run's architecture (its weights are never read: the points come from a
    curve) and the run's data. Its BN running statistics are fresh too, so a model with BN layers needs the
    policy ``recompute`` (Garipov et al.'s, per point) or ``batch``."""
    data = prepare(run["dataset"])
    model = build(run["model"], data.input_shape, data.num_classes).eval()
    if bn == "running" and has_batchnorm(model):
        raise ValueError("bn='running' along a curve would use a freshly built model's statistics: use 'recompute'")
    return model, data


def pair_curve_plane(run_a: Mapping[str, Any], curve_file: str | os.PathLike, settings: Mapping[str, Any],
                     out_h5: str | os.PathLike, out_stem: str | os.PathLike, *, title: str = "", progress: bool = False
                     ) -> list[str]:
    """The surface on the plane through ``w0``, ``w1`` and the (middle) bend (resumable, tiled:
    :func:`curves.curve_plane_surface`), and its figure: train loss and test error contours with the curve,
    the segment and the three points drawn in."""
    s = CurveSettings.of(settings)
    curve = curves.load_curve(curve_file)
    model, data = _architecture(run_a, s.bn)
    data = data.evaluation_subsets(s.n_train, s.n_test)
    evaluators = evaluators_for(model, data, loss=run_a["recipe"].get("loss", "ce"), bn=s.bn, chunk=int(s.chunk))
    try:
        curves.curve_plane_surface(out_h5, evaluators, curve, n=int(s.plane.n), margin=float(s.plane.margin),
                                   tile_rows=int(s.tile_rows),
                                   progress=progress)
    except ValueError as err:
        if "collinear" not in str(err):
            raise
        raise ValueError(f"{curve_file}: the bend has not left the segment, so there is no plane to draw (train "
                         f"the curve longer, or with a larger learning rate): {err}") from err
    data = {"title": title or f"{curve.kind} curve in the plane of its endpoints and bend",
            "panels": [plane_data(out_h5, curve_file, quantity) for quantity in ("train_loss", "test_err")]}
    return figures.render(plot_curve_plane, data, out_stem)


@figures.register_plot("connectivity.curve_plane")
def plot_curve_plane(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """A curve's plane: train loss and test error contours (each panel its own levels: they are different
    quantities) with the curve, the segment and the three points drawn in (:func:`plane_data`)."""
    fig, axes = figures.new_figure(ncols=2, width=9.5, height=4.0, layout="constrained")
    for ax, panel in zip(axes, data["panels"]):
        draw_plane_data(ax, panel)
    fig.suptitle(data["title"])
    return figures.save(fig, stem)


def plane_data(plane_h5: str | os.PathLike, curve_file: str | os.PathLike, quantity: str = "train_loss",
               points: int = 61) -> dict[str, Any]:
    """What :func:`draw_plane_data` draws of ``quantity`` (``train_loss``, ``test_loss``, ``train_err``,
    ``test_err``) on a curve's plane, as plain data: the grid, the values, the curve's and the three points'
    coordinates in the plane."""
    s = read_surface(plane_h5)
    curve = curves.load_curve(curve_file)
    split, what = quantity.split("_")
    z = s[f"{split}_loss"] if what == "loss" else 1.0 - s[f"{split}_acc"]
    return {"quantity": quantity, "kind": curve.kind, "x": s.xcoordinates, "y": s.ycoordinates, "z": z,
            "curve": curves.curve_coordinates(curve, points), "points": s.extra["point_coordinates"]}


def draw_plane_data(ax, d: Mapping[str, Any]) -> None:
    """Contours of :func:`plane_data`'s quantity on a curve's plane with the curve (solid), the segment (dashed)
    and ``w0``, ``w1``, the bend drawn in."""
    split, what = d["quantity"].split("_")
    z = np.asarray(d["z"], float)
    x, y = np.asarray(d["x"], float), np.asarray(d["y"], float)
    log_scale = what == "loss" and bool(np.all(z > 0))
    levels = shared_levels([z], num=20, log=log_scale)
    cs = draw_contour(ax, x, y, z, levels, inline_labels=False, cmap=figures.SEQUENTIAL_CMAP, log=log_scale)
    cb = ax.figure.colorbar(cs, ax=ax, label=f"{split} {'loss' if what == 'loss' else 'error'}", shrink=0.85)
    cb.ax.minorticks_off()
    ticks = levels[::max(1, len(levels) // 5)]
    cb.set_ticks(ticks, labels=[f"{v:.3g}" for v in ticks])
    coords = np.asarray(d["curve"], float)
    pts = np.asarray(d["points"], float)
    ax.plot(coords[:, 0], coords[:, 1], "-", color="tab:red", lw=1.6, label=f"{d['kind']} curve")
    ax.plot(pts[:2, 0], pts[:2, 1], "--", color="k", lw=1.0, label="segment")
    ax.scatter(pts[:, 0], pts[:, 1], color="k", s=16, zorder=3)
    for (px, py), name in zip(pts, (r"$w_0$", r"$w_1$", r"$\theta$")):
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel(r"$\hat u$ (along $w_1 - w_0$)")
    ax.set_ylabel(r"$\hat v$ (axes not to scale)")
    ax.legend(loc="best", fontsize=7)


def fge_of_runs(run: Mapping[str, Any], run_dir: str | os.PathLike, seeds: Sequence[int],
                settings: Mapping[str, Any], out_dir: str | os.PathLike) -> dict[str, Any]:
    """Fast geometric ensembling (:func:`curves.fge_snapshots`) from each seed's snapshot after
    ``start_epoch``: ``epochs`` more epochs of the run's recipe under the cyclic learning rate (``lr1`` to
    ``lr2``, ``cycle`` epochs), a snapshot at each cycle's minimum; ``out_dir/seed<k>.pt`` holds the stacked
    flat snapshots, ``out_dir/fge.json`` the settings and CPU time."""
    out_dir = Path(out_dir)
    recipe = Recipe.from_mapping(run["recipe"])
    n = int(settings["epochs"]) // int(settings["cycle"])
    record: dict[str, Any] = {"settings": dict(settings), "seeds": {}}
    for seed in seeds:
        start = weights_file(run_dir, seed, int(settings["start_epoch"]))
        model, data = load_trained(run, start)
        t0 = time.process_time()
        snaps = curves.fge_snapshots(model, data, recipe, seed, lr1=float(settings["lr1"]),
                                     lr2=float(settings["lr2"]), cycle=int(settings["cycle"]), n_snapshots=n)
        lio.save_torch(out_dir / f"seed{seed}.pt", torch.stack(snaps))
        record["seeds"][str(seed)] = {"start": str(start), "start_sha256": lio.file_hash(start),
                                      "snapshots": len(snaps), "cpu_seconds": time.process_time() - t0}
    lio.write_record(out_dir / "fge.json", record)
    return record


# ---------------------------------------------------------------- verdict helpers -------------------------

def excess(ev: curves.CurveEvaluation, quantity: str = "test_err", prefix: str = "") -> float:
    """``max_t`` of a quantity on the curve (or, with ``prefix="segment_"``, the segment) minus the larger
    of its two endpoint values: Garipov et al.'s barrier."""
    return float(ev.metrics[f"{prefix}{quantity}_barrier"])


def endpoint_values(ev: curves.CurveEvaluation, quantity: str) -> tuple[float, float]:
    v = ev.values[quantity]
    return float(v[0]), float(v[-1])


def _pct(x: float) -> float:
    return round(100.0 * x, 2) if math.isfinite(x) else math.nan


def evaluation_test_size(ev: curves.CurveEvaluation) -> int:
    """The number of test inputs an evaluation's test errors were measured on: its ``n_test`` attribute
    (:func:`evaluate_pair_curve` records it), or, for an evaluation written before it did, the smallest ``n`` at
    which every test error along the curve and the segment is a whole number of inputs out of ``n`` (the errors are
    ``1 - correct / n``; a common factor of all the counts and ``n`` would make it smaller, and the tolerance
    it gives wider, never narrower)."""
    if "n_test" in ev.attrs:
        return int(ev.attrs["n_test"])
    errs = np.concatenate([np.asarray(v, float).ravel() for k, v in ev.values.items() if k.endswith("test_err")])
    errs = errs[np.isfinite(errs)]
    ns = np.arange(1, 200_001, dtype=float)
    for start in range(0, len(ns), 20_000):
        block = ns[start:start + 20_000]
        counts = np.outer(block, errs)
        whole = np.all(np.abs(counts - np.round(counts)) < 1e-6, axis=1)
        if whole.any():
            return int(block[np.argmax(whole)])
    raise ValueError("the test-set size of the curve evaluation is unknown (no n_test attribute) and could not be "
                     "inferred from its test errors")


def endpoint_regime(ev: curves.CurveEvaluation, names: tuple[str, str] = ("w0", "w1")) -> str:
    """Where a curve's numbers were measured: its endpoints' train loss, train and test accuracy (on the evaluation's
    subsets, BN statistics as the evaluation has them)."""
    tl, tr, te = (endpoint_values(ev, q) for q in ("train_loss", "train_err", "test_err"))
    return (f"endpoints {names[0]} / {names[1]}: train loss {tl[0]:.3g} / {tl[1]:.3g}, train acc "
            f"{100 * (1 - tr[0]):.1f}% / {100 * (1 - tr[1]):.1f}%, test acc {100 * (1 - te[0]):.1f}% / "
            f"{100 * (1 - te[1]):.1f}%")


def _curve_epochs(records: Mapping[str, Mapping[str, Any]] | None) -> str:
    """The curves' training (epochs, final batch loss) from their records, when given."""
    if not records:
        return ""
    return "; curves trained " + ", ".join(
        f"{kind} {r.get('epochs')} epochs (last epoch's batch loss "
        f"{(r.get('history') or [{}])[-1].get('batch_loss', math.nan):.3g})" for kind, r in sorted(records.items()))


# ---------------------------------------------------------------- Garipov: segment vs curves --------------

def garipov_measured(evals: Mapping[str, curves.CurveEvaluation], n_test: int) -> dict[str, Measured]:
    """The decision's parts, each one number with the tolerance of the rule ``binomial`` (two binomial standard errors
    of the test error at the path's worst point over ``n_test`` inputs), in pp: the segment's max test error minus
    the worse endpoint's, and minus that of each trained curve (an "at most" claim turned "at least")."""
    first = evals[KINDS[0]]

    def part(ev: curves.CurveEvaluation, prefix: str, sign: float) -> Measured:
        worst = float(ev.metrics[f"{prefix}test_err_max"])
        tol = 100 * binomial_tolerance(worst, n_test) if math.isfinite(worst) else 0.0
        return Measured(value=sign * 100 * excess(ev, prefix=prefix), tolerance=tol)

    return {"segment_barrier": part(first, "segment_", 1.0),
            **{f"{k}_flat": part(evals[k], "", -1.0) for k in KINDS}}


def garipov_claim(evals: Mapping[str, curves.CurveEvaluation], decision: Mapping[str, Any], scale: str,
                  out_dir: str | os.PathLike, planes: Mapping[str, tuple[str, str]] | None = None,
                  claim_id: str = GARIPOV, records: Mapping[str, Mapping[str, Any]] | None = None) -> ClaimResult:
    """``evals``: kind (``bezier``, ``polychain``) -> the evaluation of that curve between the two independent
    modes (each holds the segment too); ``planes``: kind -> (plane HDF5, curve file) for the figure; ``records``:
    kind -> the curve's training record (its epochs, for the regime line), when at hand. Decided by the claim's
    pre-registered ``decision`` (:func:`garipov_measured`)."""
    out_dir = Path(out_dir)
    missing = [k for k in KINDS if k not in evals]
    if missing:
        raise ValueError(f"{claim_id}: needs the {missing} curve evaluation(s)")
    first = evals[KINDS[0]]
    e0, e1 = endpoint_values(first, "test_err")
    seg = excess(first, prefix="segment_")
    n_test = evaluation_test_size(first)
    cd = decide_claim(decision, garipov_measured(evals, n_test))
    rows, numbers = [], {"endpoint0.test_err": e0, "endpoint1.test_err": e1, "n_test": float(n_test)}
    tl0, tl1 = endpoint_values(first, "train_loss")
    tr0, tr1 = endpoint_values(first, "train_err")
    rows.append({"path": "endpoints (single models)", "test_err_min_%": _pct(min(e0, e1)), "test_err_int_%": "",
                 "test_err_max_%": _pct(max(e0, e1)), "test_err_barrier_pp": 0.0,
                 "train_loss_max": round(max(tl0, tl1), 4), "train_loss_barrier": 0.0,
                 "length_ratio": "", "endpoint_train_loss": f"{tl0:.4g} / {tl1:.4g}",
                 "endpoint_train_acc_%": f"{_pct(1 - tr0)} / {_pct(1 - tr1)}",
                 "endpoint_test_acc_%": f"{_pct(1 - e0)} / {_pct(1 - e1)}", "curve_epochs": "",
                 "tolerance_pp": "", **_paper_cols("endpoints")})
    tolerance = {d.name: d.tolerance for d in cd.decisions}
    for name, ev, prefix in [("segment", first, "segment_")] + [(k, evals[k], "") for k in KINDS]:
        m = ev.metrics
        ratio = m[f"{prefix}length_ratio"]
        part = "segment_barrier" if name == "segment" else f"{name}_flat"
        rows.append({"path": name, "test_err_min_%": _pct(m[f"{prefix}test_err_min"]),
                     "test_err_int_%": _pct(m[f"{prefix}test_err_int"]),
                     "test_err_max_%": _pct(m[f"{prefix}test_err_max"]),
                     "test_err_barrier_pp": _pct(m[f"{prefix}test_err_barrier"]),
                     "train_loss_max": round(m[f"{prefix}train_loss_max"], 4),
                     "train_loss_barrier": round(m[f"{prefix}train_loss_barrier"], 4),
                     "length_ratio": round(ratio, 3), "endpoint_train_loss": "", "endpoint_train_acc_%": "",
                     "endpoint_test_acc_%": "",
                     "curve_epochs": (records or {}).get(name, {}).get("epochs", "") if prefix == "" else "",
                     "tolerance_pp": round(tolerance[part], 2), **_paper_cols(name)})
        for q in ("test_err_min", "test_err_int", "test_err_max", "test_err_barrier", "train_loss_max",
                  "train_loss_barrier"):
            numbers[f"{name}.{q}"] = float(m[f"{prefix}{q}"])
        numbers[f"{name}.length_ratio"] = float(ratio)
    tables = write_table(rows, out_dir / "table", title=f"Segment vs trained curves between two independent "
                         f"modes ({scale} scale; paper: VGG-16 on CIFAR-10, Garipov et al. supp. Table 2)")

    planes = planes or {}
    data = {"scale": scale, "kinds": list(KINDS),
            "t": {k: evals[k].t for k in KINDS}, "segment_t": first.t,
            "segment": {q: first.values[f"segment_{q}"] for q in ("test_err", "train_loss")},
            "curves": {k: {q: evals[k].values[q] for q in ("test_err", "train_loss")} for k in KINDS},
            "planes": [{"kind": kind, **plane_data(plane_h5, curve_file, "train_loss")}
                       for kind, (plane_h5, curve_file) in sorted(planes.items())]}
    figs = figures.render(plot_garipov, data, out_dir / "figure")

    measured = (f"endpoints {_pct(e0)}/{_pct(e1)}% test err; max on segment +{_pct(seg)} pp, "
                + ", ".join(f"{k} +{_pct(excess(evals[k]))} pp (length ratio {evals[k].metrics['length_ratio']:.2f})"
                            for k in KINDS))
    regime = (endpoint_regime(first) + f"; test errors on {n_test} test inputs, {len(first.t)} points of t"
              + _curve_epochs(records))
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=1, numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("connectivity.garipov")
def plot_garipov(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Test error and train loss along the segment (dashed) and each trained curve between two modes, and
    the train loss in each curve's plane."""
    planes = data["planes"]
    fig, axes = figures.new_figure(ncols=2 + len(planes), width=4.3 * (2 + len(planes)), height=3.9,
                                   layout="constrained")
    for ax, q, label in ((axes[0], "test_err", "test error (%)"), (axes[1], "train_loss", "train loss")):
        scale_ = 100.0 if q == "test_err" else 1.0
        ax.plot(data["segment_t"], scale_ * np.asarray(data["segment"][q], float), "--", color="k", label="segment")
        for i, k in enumerate(data["kinds"]):
            ax.plot(data["t"][k], scale_ * np.asarray(data["curves"][k][q], float), "-", color=figures.COLORS[i],
                    label=k)
        ax.set_xlabel("t")
        ax.set_ylabel(label)
        if q == "train_loss":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0].set_title("test error along the paths")
    axes[1].set_title("train loss along the paths")
    for ax, plane in zip(axes[2:], planes):
        draw_plane_data(ax, plane)
        ax.set_title(f"{plane['kind']}: train loss in its plane")
    fig.suptitle(f"Mode connectivity between two independently trained modes ({data['scale']})")
    return figures.save(fig, stem)


def _paper_cols(path: str) -> dict[str, Any]:
    p = PAPER_GARIPOV[path]
    return {"paper_min/int/max_%": "/".join("-" if p[k] is None else f"{p[k]:g}" for k in ("min", "int", "max")),
            # the paper's number as the table shows numbers ("1", not "1.0": a cell that reads as a float is read
            # back as one when `snakemake figures` redraws the table, losslab.claims.tables.csv_cell)
            "paper_length_ratio": "" if p["length_ratio"] is None else fmt(p["length_ratio"])}


# ---------------------------------------------------------------- Gotmare: resilient connectivity ---------

def gotmare_measured(evals: Mapping[str, Mapping[str, curves.CurveEvaluation]], kind: str) -> dict[str, Measured]:
    """The decision's one part: minus (the max test error on each pair's ``kind`` curve minus the worse endpoint's),
    in pp, one sample per pair (the pre-registration's replicate: the pairs of the six recipes, sorted by label)."""
    return {"polychain_flat": Measured(samples=[-100 * excess(evals[label][kind]) for label in sorted(evals)])}


def gotmare_claim(evals: Mapping[str, Mapping[str, curves.CurveEvaluation]], decision: Mapping[str, Any],
                  scale: str, out_dir: str | os.PathLike, reference: str = "G", claim_id: str = GOTMARE,
                  kind: str = "polychain") -> ClaimResult:
    """``evals``: label of the other model (A-F) -> kind -> the evaluation of the curve from ``reference``
    (endpoint ``a``, t = 0) to it (``b``, t = 1). Decided by the pre-registered ``decision`` on the curves of
    ``kind`` (:func:`gotmare_measured`): a t test on the mean over the pairs."""
    out_dir = Path(out_dir)
    labels = sorted(evals)
    rows, numbers = [], {}
    for label in labels:
        by_kind = evals[label]
        if kind not in by_kind:
            raise ValueError(f"{claim_id}: pair {reference}-{label} has no {kind} curve evaluation")
        first = by_kind[kind]
        a, b = endpoint_values(first, "test_err")
        tl, tr = endpoint_values(first, "train_loss"), endpoint_values(first, "train_err")
        row = {"pair": f"{reference}-{label}", f"{reference}_test_acc_%": _pct(1 - a), "other_test_acc_%": _pct(1 - b),
               f"{reference}_train_acc_%": _pct(1 - tr[0]), "other_train_acc_%": _pct(1 - tr[1]),
               f"{reference}_train_loss": round(tl[0], 4), "other_train_loss": round(tl[1], 4),
               "segment_test_err_barrier_pp": _pct(excess(first, prefix="segment_")),
               "segment_train_loss_barrier": round(excess(first, "train_loss", "segment_"), 4)}
        numbers[f"{label}.{reference}_test_err"], numbers[f"{label}.test_err"] = a, b
        numbers[f"{label}.segment.test_err_barrier"] = excess(first, prefix="segment_")
        numbers[f"{label}.segment.train_loss_barrier"] = excess(first, "train_loss", "segment_")
        for k in KINDS:
            ev = by_kind.get(k)
            row[f"{k}_test_err_barrier_pp"] = _pct(excess(ev)) if ev else "not trained"
            row[f"{k}_train_loss_barrier"] = round(excess(ev, "train_loss"), 4) if ev else "not trained"
            if ev:
                numbers[f"{label}.{k}.test_err_barrier"] = excess(ev)
                numbers[f"{label}.{k}.train_loss_barrier"] = excess(ev, "train_loss")
                numbers[f"{label}.{k}.length_ratio"] = float(ev.metrics["length_ratio"])
        rows.append(row)
    cd = decide_claim(decision, gotmare_measured(evals, kind))
    tables = write_table(rows, out_dir / "table", title=f"Connectivity of differently trained modes "
                         f"({scale} scale; Gotmare et al. models A-F against G)")

    data = {"scale": scale, "reference": reference,
            "pairs": [{"label": label, "segment_t": evals[label][kind].t,
                       "segment": 100 * np.asarray(evals[label][kind].values["segment_test_err"]),
                       "curves": [{"kind": k, "t": evals[label][k].t,
                                   "test_err": 100 * np.asarray(evals[label][k].values["test_err"]),
                                   "color": j} for j, k in enumerate(KINDS) if k in evals[label]]}
                      for label in labels]}
    figs = figures.render(plot_gotmare, data, out_dir / "figure")
    measured = f"{kind} max test error over the worse endpoint (pp): " + ", ".join(
        f"{label} {_pct(excess(evals[label][kind])):+.2f}" for label in labels) + "; segment: " + ", ".join(
        f"{label} {_pct(excess(evals[label][kind], prefix='segment_')):+.1f}" for label in labels)
    worst = max(labels, key=lambda label: excess(evals[label][kind]))
    ref = evals[labels[0]][kind]

    def arm(ev: curves.CurveEvaluation, i: int) -> str:
        return (f"train loss {endpoint_values(ev, 'train_loss')[i]:.3g}, train acc "
                f"{100 * (1 - endpoint_values(ev, 'train_err')[i]):.1f}%, test acc "
                f"{100 * (1 - endpoint_values(ev, 'test_err')[i]):.1f}%")

    regime = (f"{reference} (t = 0 of every pair): {arm(ref, 0)}; "
              + "; ".join(f"{label} (t = 1): {arm(evals[label][kind], 1)}" for label in labels)
              + (f"; test errors on {ref.attrs['n_test']} test inputs" if "n_test" in ref.attrs else ""))
    notes = (f"the pre-registered test is on the mean over the {len(labels)} pairs, not on every pair (the earlier "
             f"rule's): the worst pair, {reference}-{worst}, has {_pct(excess(evals[worst][kind])):+.2f} pp")
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=1,
                                     numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


# ---------------------------------------------------------------- Gotmare: SGDR barriers ------------------

@dataclass(frozen=True)
class IterateSegment:
    """The segment between two iterates of one run: ``role`` (``sgdr`` or ``step``), seed, epochs, values."""

    role: str
    seed: int
    epochs: tuple[int, int]
    evaluation: curves.CurveEvaluation

    @property
    def barrier(self) -> float:
        return excess(self.evaluation, "train_loss")

    @property
    def relative_barrier(self) -> float:
        return self.barrier / max(endpoint_values(self.evaluation, "train_loss"))


@figures.register_plot("connectivity.gotmare")
def plot_gotmare(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Test error along the segment (dashed) and the trained curves (solid) from the reference model to each
    other model, one panel per pair on a shared y axis."""
    pairs_, reference = data["pairs"], data["reference"]
    ncols = min(3, len(pairs_))
    nrows = math.ceil(len(pairs_) / ncols)
    fig, axes = figures.new_figure(ncols=ncols, nrows=nrows, width=4.0 * ncols, height=3.2 * nrows,
                                   squeeze=False, layout="constrained", sharey=True)
    for i, pair in enumerate(pairs_):
        ax = axes[i // ncols][i % ncols]
        ax.plot(pair["segment_t"], pair["segment"], "--", color="k", label="segment")
        for c in pair["curves"]:
            ax.plot(c["t"], c["test_err"], "-", color=figures.COLORS[c["color"]], label=c["kind"])
        ax.set_title(f"{reference} (t=0) to {pair['label']} (t=1)", fontsize=9)
        ax.set_xlabel("t")
        if i % ncols == 0:
            ax.set_ylabel("test error (%)")
        if i == 0:
            ax.legend(fontsize=7)
    for j in range(len(pairs_), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    labels = [pair["label"] for pair in pairs_]
    fig.suptitle(f"Test error along segments and curves between {reference} and models {', '.join(labels)} "
                 f"({data['scale']})")
    return figures.save(fig, stem)


def iterate_segments(runs: Mapping[str, tuple[Mapping[str, Any], str | os.PathLike]], seeds: Sequence[int],
                     epochs: Sequence[int], points: int, *, bn: str = "recompute", n_train: int | None = None,
                     n_test: int | None = None, chunk: int = 250) -> list[IterateSegment]:
    """For each ``role -> (run spec, run directory)`` and seed, the train/test loss on the segment between the
    snapshots of consecutive ``epochs`` (:func:`curves.evaluate_segment`)."""
    out = []
    for role, (run, run_dir) in runs.items():
        for seed in seeds:
            files = [weights_file(run_dir, seed, e) for e in epochs]
            model, data = load_trained(run, files[0])
            data = data.evaluation_subsets(n_train, n_test)
            vecs = [_flat_of(model, f) for f in files]
            for i in range(len(epochs) - 1):
                ev = curves.evaluate_segment(vecs[i], vecs[i + 1], model, data, points,
                                             loss=run["recipe"].get("loss", "ce"), bn=bn, chunk=chunk)
                out.append(IterateSegment(role, seed, (epochs[i], epochs[i + 1]), ev))
    return out


def _flat_of(model: nn.Module, state_file: str | os.PathLike) -> torch.Tensor:
    lio.load_state_dict(model, state_file)
    return flatten(model)


def sgdr_measured(segments: Sequence[IterateSegment]) -> dict[str, Measured]:
    """The decision's parts, one sample per (pair of consecutive iterates, seed): the relative barrier (train-loss
    barrier / the larger endpoint loss) between SGDR's iterates, and minus that between the step-decay run's."""
    return {"sgdr_barrier": Measured(samples=[s.relative_barrier for s in segments if s.role == "sgdr"]),
            "step_no_barrier": Measured(samples=[-s.relative_barrier for s in segments if s.role == "step"])}


def run_metrics(run: Mapping[str, Any], run_dir: str | os.PathLike, seed: int) -> dict[str, float]:
    """A trained run's final train loss, train and test accuracy (its ``metrics.json``) and its optimizer steps
    per epoch (its recipe's batch size on its training set)."""
    m = lio.read_json(Path(run_dir) / f"seed{seed}" / METRICS)
    _, per_epoch = batching(int(m["train_size"]), run["recipe"].get("batch_size", m["recipe"]["batch_size"]))
    return {"train_loss": float(m["train_loss"]), "train_acc": float(m["train_acc"]),
            "test_acc": float(m["test_acc"]), "epochs": int(m["epochs"]), "steps_per_epoch": int(per_epoch)}


# An SGDR iterate counts as a converged minimum (the gotmare-sgdr-barriers precondition, pre-registered with the desk
# scale before its first run, issue #19) when its train accuracy is at least this fraction of the final train
# accuracy of the step-decay run of the same seed (trained to the end of its schedule: the converged reference).
CONVERGED_FRACTION = 0.95


def sgdr_iterates_converged(segments: Sequence[IterateSegment],
                            runs: Mapping[tuple[str, int], Mapping[str, float]]) -> bool | None:
    """Whether every SGDR iterate of ``segments`` is a converged minimum: its train accuracy (the segment's
    endpoint) >= :data:`CONVERGED_FRACTION` x the step-decay run's final train accuracy of the same seed. None when
    a seed's step-decay metrics are not in ``runs``."""
    ok = True
    for s in segments:
        if s.role != "sgdr":
            continue
        ref = runs.get(("step", s.seed))
        if ref is None:
            return None
        accs = [1 - e for e in endpoint_values(s.evaluation, "train_err")]
        ok = ok and min(accs) >= CONVERGED_FRACTION * float(ref["train_acc"])
    return ok


def sgdr_claim(segments: Sequence[IterateSegment], decision: Mapping[str, Any], scale: str,
               out_dir: str | os.PathLike, claim_id: str = SGDR,
               runs: Mapping[tuple[str, int], Mapping[str, float]] | None = None) -> ClaimResult:
    """Barriers on the segments between consecutive SGDR iterates (just before restarts) and between the
    step-decay run's iterates at the same epochs, decided by the pre-registered ``decision``
    (:func:`sgdr_measured`). Its precondition, the SGDR iterates are converged minima (Gotmare et al. compare minima
    at the ends of cycles), is checked by :func:`sgdr_iterates_converged` when ``runs`` is at hand, else the claim
    is inconclusive whatever the parts say. ``runs``: (role, seed) -> :func:`run_metrics`, for the precondition, the
    optimizer steps and the regime line."""
    out_dir = Path(out_dir)
    by_role = {r: [s for s in segments if s.role == r] for r in ("sgdr", "step")}
    if not by_role["sgdr"] or not by_role["step"]:
        raise ValueError(f"{claim_id}: needs segments of both the SGDR and the step-decay run")
    tol = next(float(p["margin"]) for p in decision["parts"] if p["name"] == "sgdr_barrier")
    runs = runs or {}
    converged = sgdr_iterates_converged(segments, runs)
    cd = decide_claim(decision, sgdr_measured(segments), requires=converged)
    frac_sgdr = float(np.mean([s.relative_barrier > tol for s in by_role["sgdr"]]))
    frac_step = float(np.mean([s.relative_barrier <= tol for s in by_role["step"]]))
    rows, numbers = [], {"sgdr.fraction_with_barrier": frac_sgdr, "step.fraction_without_barrier": frac_step}
    for s in segments:
        l0, l1 = endpoint_values(s.evaluation, "train_loss")
        a0, a1 = (1 - e for e in endpoint_values(s.evaluation, "train_err"))
        per_epoch = runs.get((s.role, s.seed), {}).get("steps_per_epoch")
        tag = f"{s.role}.seed{s.seed}.e{s.epochs[0]}-{s.epochs[1]}"
        numbers[f"{tag}.barrier"], numbers[f"{tag}.relative_barrier"] = s.barrier, s.relative_barrier
        rows.append({"run": s.role, "seed": s.seed, "iterates": f"w{s.epochs[0]} - w{s.epochs[1]}",
                     "steps": "" if per_epoch is None else f"{per_epoch * s.epochs[0]} / {per_epoch * s.epochs[1]}",
                     "train_loss_endpoints": f"{l0:.4g} / {l1:.4g}",
                     "train_acc_endpoints_%": f"{_pct(a0)} / {_pct(a1)}",
                     "train_loss_max": round(float(s.evaluation.metrics["train_loss_max"]), 5),
                     "barrier": round(s.barrier, 5), "relative_barrier": round(s.relative_barrier, 4),
                     "has_barrier": s.relative_barrier > tol})
    tables = write_table(rows, out_dir / "table", title=f"Loss barriers between iterates ({scale} scale)")
    data = {"scale": scale, "pairs": sorted({s.epochs for s in segments}),
            "segments": [{"epochs": s.epochs, "role": s.role, "seed": s.seed, "t": s.evaluation.t,
                          "train_loss": s.evaluation.values["train_loss"]} for s in segments]}
    figs = figures.render(plot_sgdr, data, out_dir / "figure")
    med = {r: float(np.median([s.relative_barrier for s in by_role[r]])) for r in by_role}
    measured = (f"SGDR pairs with a barrier: {frac_sgdr:.0%} (median relative barrier {med['sgdr']:.3g}); "
                f"step-decay pairs without: {frac_step:.0%} (median {med['step']:.3g})")
    iterates = sorted({e for s in segments for e in s.epochs})
    def losses(r: str) -> list[float]:
        return [x for s in by_role[r] for x in endpoint_values(s.evaluation, "train_loss")]

    regime = "; ".join(
        f"{r}: iterates w{', w'.join(map(str, iterates))}, their train loss {min(losses(r)):.3g} to "
        f"{max(losses(r)):.3g}"
        + "".join(f"; seed {seed} at the end: {m['epochs'] * m['steps_per_epoch']} steps, train loss "
                  f"{m['train_loss']:.3g}, train acc {100 * m['train_acc']:.1f}%, test acc {100 * m['test_acc']:.1f}%"
                  for (role, seed), m in sorted(runs.items()) if role == r)
        for r in ("sgdr", "step"))
    worst = min((1 - e for s in by_role["sgdr"] for e in endpoint_values(s.evaluation, "train_err")), default=0.0)
    notes = ("the precondition (SGDR iterates are converged minima, issue #19) is not checked: the runs' metrics are "
             "not at hand" if converged is None else
             f"precondition (every SGDR iterate at >= {CONVERGED_FRACTION:.0%} of the step-decay run's final train "
             f"accuracy, same seed): {'met' if converged else 'not met'} (lowest iterate train accuracy "
             f"{100 * worst:.1f}%)")
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len({s.seed for s in segments}), numbers=numbers,
                                     figures=figs, tables=tables, regime=regime)


@figures.register_plot("connectivity.sgdr")
def plot_sgdr(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Train loss on the segment between two iterates, one panel per pair of epochs: SGDR's (solid) and the
    step-decay run's (dashed), one line per seed."""
    pairs_ = [tuple(ep) for ep in data["pairs"]]
    fig, axes = figures.new_figure(ncols=len(pairs_), width=4.3 * len(pairs_), height=3.6, squeeze=False,
                                   layout="constrained")
    for ax, ep in zip(axes[0], pairs_):
        for s in data["segments"]:
            if tuple(s["epochs"]) != ep:
                continue
            sgdr = s["role"] == "sgdr"
            ax.plot(s["t"], s["train_loss"], "-" if sgdr else "--", color=figures.COLORS[0 if sgdr else 1],
                    alpha=0.5 + 0.5 / (1 + s["seed"]), label=f"{'SGDR' if sgdr else 'step decay'} seed {s['seed']}")
        ax.set_yscale("log")
        ax.set_xlabel(f"t: (1 - t) w{ep[0]} + t w{ep[1]}")
        ax.set_ylabel("train loss")
        ax.set_title(f"segment w{ep[0]} - w{ep[1]}")
        ax.legend(fontsize=7)
    fig.suptitle(f"Train loss between iterates before SGDR restarts vs step-decay iterates ({data['scale']})")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- Garipov: width --------------------------

def relative_barrier(ev: curves.CurveEvaluation) -> float:
    """A curve's train-loss barrier over its larger endpoint loss."""
    return excess(ev, "train_loss") / max(endpoint_values(ev, "train_loss"))


def width_measured(by_width: Mapping[float, Sequence[curves.CurveEvaluation]]) -> dict[str, Measured]:
    """The decision's parts, one sample per pair of modes: the relative curve barrier and the length ratio at the
    narrowest width minus at the widest, the ``i``-th pair of one paired with the ``i``-th of the other (as many
    samples as the width with fewer pairs has). ``by_width``: relative width K -> its pairs' curve evaluations."""
    ks = sorted(by_width)
    lo, hi = by_width[ks[0]], by_width[ks[-1]]
    n = min(len(lo), len(hi))
    return {"barrier_falls": Measured(samples=[relative_barrier(lo[i]) - relative_barrier(hi[i]) for i in range(n)]),
            "length_ratio_falls": Measured(samples=[float(lo[i].metrics["length_ratio"])
                                                    - float(hi[i].metrics["length_ratio"]) for i in range(n)])}


def width_claim(sweep: Sequence[tuple[float, int, curves.CurveEvaluation]], decision: Mapping[str, Any], scale: str,
                out_dir: str | os.PathLike, claim_id: str = WIDTH) -> ClaimResult:
    """``sweep``: (relative width K, number of weights, evaluation of the curve between two modes of that
    width), one entry per pair (a width may have several). The curve's relative train-loss barrier and length
    ratio should both be lower at the widest width than at the narrowest (:func:`width_measured`); with one pair
    per width the t test has one replicate and the claim is inconclusive."""
    out_dir = Path(out_dir)
    sweep = sorted(sweep, key=lambda s: s[0])
    ks = [s[0] for s in sweep]
    barrier = [excess(s[2], "train_loss") for s in sweep]
    ratio = [float(s[2].metrics["length_ratio"]) for s in sweep]
    by_width: dict[float, list[curves.CurveEvaluation]] = {}
    for k, _, ev in sweep:
        by_width.setdefault(k, []).append(ev)
    cd = decide_claim(decision, width_measured(by_width))
    rows, numbers = [], {}
    for (k, n, ev), b, r in zip(sweep, barrier, ratio):
        l0, l1 = endpoint_values(ev, "train_loss")
        a0, a1 = (1 - e for e in endpoint_values(ev, "train_err"))
        t0, t1 = (1 - e for e in endpoint_values(ev, "test_err"))
        rows.append({"width_K": k, "parameters": n, "endpoint_train_loss": f"{l0:.4g} / {l1:.4g}",
                     "endpoint_train_acc_%": f"{_pct(a0)} / {_pct(a1)}",
                     "endpoint_test_acc_%": f"{_pct(t0)} / {_pct(t1)}",
                     "curve_train_loss_max": round(float(ev.metrics["train_loss_max"]), 5),
                     "curve_train_loss_barrier": round(b, 5),
                     "curve_relative_barrier": round(relative_barrier(ev), 4),
                     "curve_test_err_barrier_pp": _pct(excess(ev)),
                     "segment_train_loss_barrier": round(excess(ev, "train_loss", "segment_"), 4),
                     "length_ratio": round(r, 4)})
        numbers[f"K{k:g}.train_loss_barrier"], numbers[f"K{k:g}.length_ratio"] = b, r
        numbers[f"K{k:g}.segment_train_loss_barrier"] = excess(ev, "train_loss", "segment_")
        numbers[f"K{k:g}.relative_barrier"] = relative_barrier(ev)
    tables = write_table(rows, out_dir / "table", title=f"Curve barrier and length ratio vs width ({scale} scale)")
    data = {"scale": scale, "widths": ks, "barrier": barrier, "length_ratio": ratio,
            "curves": [{"t": ev.t, "train_loss": ev.values["train_loss"],
                        "segment_train_loss": ev.values["segment_train_loss"]} for _, _, ev in sweep]}
    figs = figures.render(plot_width_connectivity, data, out_dir / "figure")
    measured = "K: barrier / length ratio = " + ", ".join(
        f"{k:g}: {b:.3g} / {r:.3f}" for k, b, r in zip(ks, barrier, ratio))
    regime = "; ".join(f"K {k:g}: " + endpoint_regime(ev) for k, _, ev in sweep)
    pairs_per_width = {k: len(v) for k, v in by_width.items()}
    notes = ""
    if min(pairs_per_width.values()) < 2:
        notes = (f"pairs per width {', '.join(f'K {k:g}: {n}' for k, n in sorted(pairs_per_width.items()))}: the "
                 f"pre-registered t test needs at least 2 pairs at the narrowest and the widest width (>= 3 for power)")
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=1,
                                     numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


@figures.register_plot("connectivity.width")
def plot_width_connectivity(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Train loss along the curve (solid) and the segment (dotted) for each width K, and the curve's
    train-loss barrier and length ratio against K."""
    ks = data["widths"]
    fig, axes = figures.new_figure(ncols=3, width=12.5, height=3.6, layout="constrained")
    for i, (k, c) in enumerate(zip(ks, data["curves"])):
        axes[0].plot(c["t"], c["train_loss"], "-", color=figures.COLORS[i], label=f"K = {k:g}")
        axes[0].plot(c["t"], c["segment_train_loss"], ":", color=figures.COLORS[i])
    axes[0].set_yscale("log")
    axes[0].set_xlabel("t (curve solid, segment dotted)")
    axes[0].set_ylabel("train loss")
    axes[0].legend(fontsize=7)
    axes[1].plot(ks, data["barrier"], "o-")
    axes[1].set_xlabel("relative width K")
    axes[1].set_ylabel("curve train-loss barrier")
    axes[2].plot(ks, data["length_ratio"], "o-", color=figures.COLORS[1])
    axes[2].set_xlabel("relative width K")
    axes[2].set_ylabel("curve length / segment length")
    fig.suptitle(f"Wider networks: lower barrier on the curve, straighter curve? ({data['scale']})")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- the trivial scaling path ----------------

def scaling_claim(model: nn.Module, data: Prepared, ts: Sequence[float], decision: Mapping[str, Any], scale: str,
                  out_dir: str | os.PathLike, loss: str = "ce", claim_id: str = SCALING,
                  chunk: int = 250, trained: Mapping[str, float] | None = None) -> ClaimResult:
    """Garipov et al.'s trivial path (A.8) from ``model``'s weights: labels, loss and error at each t of
    ``ts`` (in (0, 1], including 1), decided by the pre-registered ``decision``: minus the number of train and test
    inputs whose predicted label at some t differs from that at t = 1, and L(t_min) / L(1), each one number with the
    stated tolerance. ``trained``: the endpoint run's :func:`run_metrics`, for the regime line, when at hand."""
    out_dir = Path(out_dir)
    ts = sorted(float(t) for t in ts)
    if ts[0] <= 0 or ts[-1] != 1.0:
        raise ValueError(f"{claim_id}: the t grid must lie in (0, 1] and end at 1, got {ts[0]}..{ts[-1]}")
    path = curves.scaling_path(model, ts)
    evs = evaluators_for(model, data, loss=loss, bn="running", chunk=chunk)
    res = {s: ev.evaluate_many(path) for s, ev in evs.items()}
    labels = {s: [curves.logits_at(ev, v).argmax(-1) for v in path] for s, ev in evs.items()}
    changed = {s: int((torch.stack(labels[s]) != labels[s][-1]).any(0).sum()) for s in evs}
    same = {s: changed[s] == 0 for s in evs}
    train_loss = np.array([r.loss for r in res["train"]])
    increasing = bool(np.all(np.diff(train_loss) < 0))  # ts ascending: the loss falls towards t = 1
    factor = float(train_loss[0] / train_loss[-1])
    cd = decide_claim(decision, {"labels_constant": Measured(value=-float(sum(changed.values()))),
                                 "loss_rises": Measured(value=factor)})
    n_layers = int(curves.scaling_exponents(model).max())
    rows = [{"t": round(t, 4), "train_loss": round(a.loss, 6), "train_err_%": _pct(a.err),
             "test_loss": round(b.loss, 6), "test_err_%": _pct(b.err)}
            for t, a, b in zip(ts, res["train"], res["test"])]
    tables = write_table(rows, out_dir / "table", title=f"Trivial scaling path of a ReLU network without BN "
                         f"({n_layers} layers: logits scale as t^{n_layers}; {scale} scale)")
    numbers = {"train_loss_t1": float(train_loss[-1]), "train_loss_tmin": float(train_loss[0]),
               "loss_factor": factor, "labels_constant": float(all(same.values())),
               "train_err": res["train"][-1].err, "test_err": res["test"][-1].err,
               "train_err_range": float(np.ptp([r.err for r in res["train"]])),
               "test_err_range": float(np.ptp([r.err for r in res["test"]])),
               "labels_changed": float(sum(changed.values())), "loss_increasing": float(increasing)}
    drawn = {"scale": scale, "t": list(ts),
             "loss": {sp: [r.loss for r in res[sp]] for sp in ("train", "test")},
             "err": {sp: [r.err for r in res[sp]] for sp in ("train", "test")}}
    figs = figures.render(plot_scaling, drawn, Path(out_dir) / "figure")
    measured = (f"labels constant on {len(ts)} t in [{ts[0]:g}, 1]: {all(same.values())}; train loss "
                f"{train_loss[-1]:.3g} at t=1 -> {train_loss[0]:.3g} at t={ts[0]:g} (x{factor:.1f}); test error "
                f"{100 * res['test'][-1].err:.2f}% throughout" if all(same.values()) else
                f"labels change along the path ({changed['train']} train, {changed['test']} test inputs); train loss "
                f"{train_loss[-1]:.3g} -> {train_loss[0]:.3g}")
    regime = (f"the endpoint at t = 1: train loss {train_loss[-1]:.3g}, train acc "
              f"{100 * (1 - res['train'][-1].err):.1f}%, test acc {100 * (1 - res['test'][-1].err):.1f}% on "
              f"{len(data.y_train)} train / {len(data.y_test)} test inputs")
    if trained:
        regime += (f"; trained {trained['epochs'] * trained['steps_per_epoch']} optimizer steps "
                   f"({trained['epochs']} epochs)")
    notes = "" if increasing else "the train loss does not rise strictly as t decreases (reported, not decided)"
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=1,
                                     numbers=numbers, figures=figs, tables=tables,
                                     regime=regime)


# ---------------------------------------------------------------- ensembles and FGE -----------------------

@figures.register_plot("connectivity.scaling")
def plot_scaling(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Train and test loss (log scale, left axis) and error (right axis) along the trivial scaling path."""
    ts, loss, err = data["t"], data["loss"], data["err"]
    fig, ax = figures.new_figure(width=5.5, height=3.8, layout="constrained")
    ax.plot(ts, loss["train"], "o-", ms=3, color="tab:blue", label="train loss")
    ax.plot(ts, loss["test"], "s--", ms=3, color="tab:blue", label="test loss")
    ax.set_yscale("log")
    ax.set_xlabel(r"t: $W_i(t) = t W_i$, $b_i(t) = t^i b_i$")
    ax.set_ylabel("loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(ts, [100 * e for e in err["train"]], "o-", ms=3, color="tab:red", label="train error")
    ax2.plot(ts, [100 * e for e in err["test"]], "s--", ms=3, color="tab:red", label="test error")
    ax2.set_ylabel("error (%)", color="tab:red")
    hi = max(5.0, 100 * max(err["test"]) * 1.5)
    ax2.set_ylim(0, hi)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    ax.set_title(f"Trivial path towards the origin ({data['scale']})")
    return figures.save(fig, stem)


def mean_disagreement(probs: torch.Tensor) -> float:
    """Mean of :func:`curves.disagreement` over all pairs of the ``K x N x C`` members."""
    pairs_ = list(itertools.combinations(range(len(probs)), 2))
    if not pairs_:
        raise ValueError("disagreement needs at least two members")
    return float(np.mean([curves.disagreement(probs[i], probs[j]) for i, j in pairs_]))


@dataclass
class EnsembleInputs:
    """Softmax outputs on the test set (``K x N x C`` each): per seed of the run, its final model (``single``,
    one member) and its FGE snapshots; the final models of all seeds (``independent``); the networks along a
    curve (``curve``, optional)."""

    y: torch.Tensor
    single: dict[int, torch.Tensor]
    fge: dict[int, torch.Tensor]
    independent: torch.Tensor
    curve: torch.Tensor | None = None
    curve_ts: Sequence[float] = ()


def fge_measured(single_err: Mapping[int, float], fge_err: Mapping[int, float], fge_dis: Mapping[int, float],
                 ind_dis: float) -> tuple[dict[str, Measured], str]:
    """The decision's parts, one sample per seed, and a note: ln(the single model's test error / the FGE
    ensemble's), and ln(the independent models' mean pairwise disagreement / the FGE members'). The second part's
    samples share one number, the independent models' disagreement (made of all the seeds' final models), so they
    are not independent replicates: their spread shows the FGE side's only. When it is zero the t test would take the
    mean as certain, so the part is made inconclusive (NaN samples) and the note says why."""
    seeds = sorted(fge_err)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero error or disagreement: an infinite log
        gain = [float(np.log(np.float64(single_err[s]) / np.float64(fge_err[s]))) for s in seeds]
        div = [float(np.log(np.float64(ind_dis) / np.float64(fge_dis[s]))) for s in seeds]
    notes = []
    if not all(math.isfinite(x) for x in gain + div):
        notes.append("a ratio has a zero error or disagreement on the test set, so its log is not finite: that part "
                     "cannot be measured as written")
    if len(div) > 1 and all(math.isfinite(x) for x in div) and float(np.ptp(div)) == 0.0:
        notes.append(f"fge_less_diverse: the {len(div)} seeds' samples are equal ({div[0]:.4g}); they share the "
                     f"independent models' disagreement, so they are not independent replicates and a zero spread "
                     f"is no certainty: the part is inconclusive")
        div = [math.nan] * len(div)
    return {"fge_beats_single": Measured(samples=gain), "fge_less_diverse": Measured(samples=div)}, "; ".join(notes)


def fge_claim(inputs: EnsembleInputs, decision: Mapping[str, Any], scale: str, out_dir: str | os.PathLike,
              claim_id: str = FGE, trained: Mapping[int, Mapping[str, float]] | None = None,
              fge_epochs: int | None = None) -> ClaimResult:
    """FGE against the single model of each seed and against the independent models, decided by the
    pre-registered ``decision`` (:func:`fge_measured`). ``trained``: seed -> the run's :func:`run_metrics` and
    ``fge_epochs`` FGE's epochs (of the same budget), for the steps and the regime line, when at hand."""
    out_dir = Path(out_dir)
    seeds = sorted(inputs.fge)
    y = inputs.y
    single = {s: curves.ensemble(inputs.single[s], y).err for s in seeds}
    fge = {s: curves.ensemble(inputs.fge[s], y) for s in seeds}
    fge_dis = {s: mean_disagreement(inputs.fge[s]) for s in seeds}
    ind_dis = mean_disagreement(inputs.independent)
    ind = curves.ensemble(inputs.independent, y)
    measured_parts, notes = fge_measured(single, {s: fge[s].err for s in seeds}, fge_dis, ind_dis)
    cd = decide_claim(decision, measured_parts)
    trained = trained or {}

    def steps(s: int, fge_part: bool = False) -> Any:
        m = trained.get(s)
        if m is None:
            return ""
        total = m["epochs"] * m["steps_per_epoch"]
        if fge_part and fge_epochs is not None:
            start = (m["epochs"] - fge_epochs) * m["steps_per_epoch"]
            return f"{start} + {fge_epochs * m['steps_per_epoch']}"
        return total

    def run_cols(s: int) -> dict[str, Any]:
        m = trained.get(s, {})
        return {"train_loss": round(m["train_loss"], 4) if m else "",
                "train_acc_%": _pct(m["train_acc"]) if m else ""}

    rows = [{"method": f"single model (seed {s})", "members": 1, "test_err_%": _pct(single[s]), "nll": "",
             "disagreement_%": "", "steps": steps(s), **run_cols(s)} for s in seeds]
    rows += [{"method": f"FGE (seed {s})", "members": fge[s].size, "test_err_%": _pct(fge[s].err),
              "nll": round(fge[s].nll, 4), "disagreement_%": _pct(fge_dis[s]), "steps": steps(s, True),
              "train_loss": "", "train_acc_%": ""} for s in seeds]
    rows.append({"method": "independent models", "members": ind.size, "test_err_%": _pct(ind.err),
                 "nll": round(ind.nll, 4), "disagreement_%": _pct(ind_dis), "steps": "", "train_loss": "",
                 "train_acc_%": ""})
    numbers: dict[str, float] = {"independent.err": ind.err, "independent.nll": ind.nll,
                                 "independent.disagreement": ind_dis}
    for s in seeds:
        numbers[f"seed{s}.single_err"], numbers[f"seed{s}.fge_err"] = single[s], fge[s].err
        numbers[f"seed{s}.fge_nll"], numbers[f"seed{s}.fge_disagreement"] = fge[s].nll, fge_dis[s]
    curve_res = None
    if inputs.curve is not None:
        curve_res = curves.ensemble(inputs.curve, y)
        ends = curve_res.member_err[0], curve_res.member_err[-1]
        rows.append({"method": f"curve ({len(inputs.curve_ts)} points, t = "
                               f"{', '.join(f'{t:g}' for t in inputs.curve_ts)})", "members": curve_res.size,
                     "test_err_%": _pct(curve_res.err), "nll": round(curve_res.nll, 4),
                     "disagreement_%": _pct(mean_disagreement(inputs.curve)), "steps": "", "train_loss": "",
                     "train_acc_%": ""})
        numbers.update({"curve.err": curve_res.err, "curve.nll": curve_res.nll,
                        "curve.endpoint_err_mean": float(np.mean(ends))})
    tables = write_table(rows, out_dir / "table", title=f"Ensembles: FGE, independent models, along a curve "
                         f"({scale} scale; test error and disagreement in %)")
    data = {"scale": scale, "seeds": seeds, "single_err": [single[s] for s in seeds],
            "fge_err": [fge[s].err for s in seeds], "fge_disagreement": [fge_dis[s] for s in seeds],
            "independent": {"size": ind.size, "err": ind.err, "disagreement": ind_dis},
            "curve_err": None if curve_res is None else curve_res.err}
    figs = figures.render(plot_fge, data, out_dir / "figure")
    m_single, m_fge = mean_std(list(single.values()))[0], mean_std([fge[s].err for s in seeds])[0]
    measured = (f"test err single {100 * m_single:.2f}% vs FGE {100 * m_fge:.2f}% (mean over {len(seeds)} seeds), "
                f"{ind.size} independent {100 * ind.err:.2f}%"
                + (f", curve {100 * curve_res.err:.2f}%" if curve_res is not None else "")
                + f"; disagreement FGE {100 * float(np.mean(list(fge_dis.values()))):.2f}% vs independent "
                  f"{100 * ind_dis:.2f}%")
    regime = (f"{len(seeds)} seeds, test errors on {len(y)} test inputs; single models: " + ", ".join(
        f"seed {s} {steps(s)} steps, train loss {trained[s]['train_loss']:.3g}, train acc "
        f"{100 * trained[s]['train_acc']:.1f}%, test acc {100 * (1 - single[s]):.1f}%" if s in trained else
        f"seed {s} test acc {100 * (1 - single[s]):.1f}%" for s in seeds)
        + (f"; FGE: the last {fge_epochs} epochs of the same budget" if fge_epochs is not None else ""))
    return ClaimResult.from_decision(cd, notes=notes, id=claim_id, scale=scale, measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


@figures.register_plot("connectivity.fge")
def plot_fge(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Test error of each single model, each FGE ensemble, the independent models together and the curve
    ensemble; and the mean pairwise disagreement of FGE's members and of the independent models."""
    seeds, ind = data["seeds"], data["independent"]
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10.5, height=3.8, layout="constrained")
    names, errs, cols = [], [], []
    for s, e_single, e_fge in zip(seeds, data["single_err"], data["fge_err"]):
        names += [f"single\nseed {s}", f"FGE\nseed {s}"]
        errs += [100 * e_single, 100 * e_fge]
        cols += [figures.COLORS[0], figures.COLORS[1]]
    names.append(f"{ind['size']} indep.")
    errs.append(100 * ind["err"])
    cols.append(figures.COLORS[2])
    if data["curve_err"] is not None:
        names.append("curve")
        errs.append(100 * data["curve_err"])
        cols.append(figures.COLORS[3])
    # dots, not bars: the errors differ by a point or two on a base of several, so the axis does not start at zero
    ax1.scatter(range(len(errs)), errs, c=cols, s=40, zorder=3)
    ax1.set_xticks(range(len(errs)), names, fontsize=7)
    ax1.set_ylabel("test error (%)")
    lo = min(errs)
    ax1.set_ylim(max(0.0, lo - 0.6 * (max(errs) - lo + 1e-9) - 0.5), max(errs) + 0.3)
    ax1.set_xlim(-0.5, len(errs) - 0.5)
    ax1.set_title("ensemble test error")
    dn = [f"FGE\nseed {s}" for s in seeds] + ["independent"]
    ax2.bar(range(len(dn)), [100 * d for d in data["fge_disagreement"]] + [100 * ind["disagreement"]],
            color=[figures.COLORS[1]] * len(seeds) + [figures.COLORS[2]])
    ax2.set_xticks(range(len(dn)), dn, fontsize=7)
    ax2.set_ylabel("mean pairwise disagreement (%)")
    ax2.set_title("members' disagreement on the test set")
    fig.suptitle(f"Fast geometric ensembling vs single and independent models ({data['scale']})")
    return figures.save(fig, stem)


def ensemble_inputs(run: Mapping[str, Any], run_dir: str | os.PathLike, fge_dir: str | os.PathLike,
                    seeds: Sequence[int], *, curve_file: str | os.PathLike | None = None,
                    curve_ts: Sequence[float] = (), bn: str = "recompute", n_test: int | None = None,
                    chunk: int = 250) -> EnsembleInputs:
    """Test-set softmax outputs of the run's final models, its FGE snapshots and the networks along a curve,
    BN statistics recomputed per network from the training inputs."""
    model, data = load_trained(run, weights_file(run_dir, seeds[0]))
    data = data.evaluation_subsets(None, n_test)
    test = evaluators_for(model, data, loss=run["recipe"].get("loss", "ce"), bn=bn, chunk=chunk,
                          splits=("test",))["test"]
    finals = {s: _flat_of(model, weights_file(run_dir, s)) for s in seeds}
    single = {s: curves.member_probabilities(test, [finals[s]]) for s in seeds}
    fge = {s: curves.member_probabilities(test, list(lio.load_torch(Path(fge_dir) / f"seed{s}.pt"))) for s in seeds}
    independent = torch.cat([single[s] for s in seeds])
    curve_probs = None
    if curve_file is not None:
        curve = curves.load_curve(curve_file)
        curve_probs = curves.member_probabilities(test, curve.points(curve_ts))
    return EnsembleInputs(data.y_test, single, fge, independent, curve_probs, list(curve_ts))


# ---------------------------------------------------------------- claim jobs: inputs -> verdict ------------

def _evaluations(job: ClaimJob) -> dict[str, dict[str, curves.CurveEvaluation]]:
    """``pair -> kind -> evaluation`` of the curves the claim reads (its ``files`` param names them)."""
    return {pair: {kind: curves.read_curve_evaluation(f) for kind, f in by_kind.items()}
            for pair, by_kind in job.params["files"]["evaluations"].items()}


def _records(job: ClaimJob, pair: str) -> dict[str, Mapping[str, Any]]:
    """kind -> the training record of the pair's curves that exist (``train.json``, written beside the curve the
    evaluation read): for the regime line only."""
    files = job.params["files"].get("records", {}).get(pair, {})
    return {kind: lio.read_json(f) for kind, f in files.items() if Path(f).exists()}


def run_garipov(job: ClaimJob) -> ClaimResult:
    pair, files = job.settings["pair"], job.params["files"]
    evals = _evaluations(job)[pair]
    planes = {kind: (plane, files["curves"][pair][kind]) for kind, plane in files["planes"][pair].items()}
    return garipov_claim(evals, job.claim["decision"], job.scale, job.out_dir, planes, claim_id=job.claim["id"],
                         records=_records(job, pair))


def run_gotmare(job: ClaimJob) -> ClaimResult:
    by_pair = _evaluations(job)
    evals = {label: by_pair[pair] for label, pair in job.settings["pairs"].items()}
    return gotmare_claim(evals, job.claim["decision"], job.scale, job.out_dir, reference=job.settings["reference"],
                         claim_id=job.claim["id"])


def run_width(job: ClaimJob) -> ClaimResult:
    by_pair = _evaluations(job)
    kind = job.settings["kind"]
    records = {pair: lio.read_json(by_kind[kind]) for pair, by_kind in job.params["files"]["records"].items()}
    sweep = [(float(k), int(records[pair]["num_parameters"]), by_pair[pair][kind])
             for pair, k in job.settings["pairs"].items()]
    return width_claim(sweep, job.claim["decision"], job.scale, job.out_dir, claim_id=job.claim["id"])


def walk_claim(segments: Sequence[IterateSegment], decision: Mapping[str, Any], scale: str,
               out_dir: str | os.PathLike, claim_id: str = "sgd-walk-no-barrier",
               runs: Mapping[tuple[str, int], Mapping[str, float]] | None = None) -> ClaimResult:
    """"A walk with SGD" (Xing et al. 2018): the train-loss barrier on the segment between consecutive epoch
    snapshots of one SGD run, relative to the larger endpoint loss, one replicate per (pair of epochs, seed),
    decided by the pre-registered ``no_barrier`` (minus the relative barrier). ``runs``: (role, seed) ->
    :func:`run_metrics`, for the regime line."""
    out_dir = Path(out_dir)
    if not segments:
        raise ValueError(f"{claim_id}: no segments between consecutive snapshots")
    cd = decide_claim(decision, {"no_barrier": Measured(samples=[-s.relative_barrier for s in segments])})
    rows, numbers = [], {}
    for s in segments:
        l0, l1 = endpoint_values(s.evaluation, "train_loss")
        numbers[f"seed{s.seed}.e{s.epochs[0]}-{s.epochs[1]}.relative_barrier"] = s.relative_barrier
        rows.append({"run": s.role, "seed": s.seed, "epochs": f"{s.epochs[0]} - {s.epochs[1]}",
                     "train_loss_endpoints": f"{l0:.4g} / {l1:.4g}",
                     "train_loss_max": round(float(s.evaluation.metrics["train_loss_max"]), 5),
                     "barrier": f"{s.barrier:.3g}", "relative_barrier": f"{s.relative_barrier:.3g}"})
    tables = write_table(rows, out_dir / "table", title=f"Barriers between consecutive SGD iterates ({scale} scale)")
    data = {"scale": scale, "segments": [{"epochs": list(s.epochs), "seed": s.seed, "t": list(s.evaluation.t),
                                          "train_loss": list(s.evaluation.values["train_loss"]),
                                          "relative_barrier": s.relative_barrier} for s in segments],
            "bound": -float(next(p["margin"] for p in decision["parts"]))}
    figs = figures.render(plot_walk, data, out_dir / "figure")
    rel = np.array([s.relative_barrier for s in segments])
    role = segments[0].role
    measured = (f"{role}: relative train-loss barrier between consecutive epochs: median {np.median(rel):.3g}, max "
                f"{rel.max():.3g}; {int(np.sum(rel > data['bound']))}/{len(rel)} segments above "
                f"{data['bound']:g}")
    regime = "; ".join(f"seed {seed}: {m['epochs'] * m['steps_per_epoch']} steps, train loss {m['train_loss']:.3g}, "
                       f"train acc {100 * m['train_acc']:.1f}%, test acc {100 * m['test_acc']:.1f}%"
                       for (_, seed), m in sorted((runs or {}).items()))
    return ClaimResult.from_decision(cd, id=claim_id, scale=scale, measured=measured,
                                     n_seeds=len({s.seed for s in segments}), numbers=numbers, figures=figs,
                                     tables=tables, regime=regime or f"{role}: epochs {segments[0].epochs[0]}-"
                                     f"{segments[-1].epochs[1]}")


@figures.register_plot("connectivity.walk")
def plot_walk(data: Mapping[str, Any], stem: str | os.PathLike) -> list[str]:
    """Left: the train loss on every segment between consecutive epochs of the first seed (faint to opaque with the
    epoch); right: each segment's relative barrier by its first epoch, every seed, with the
    pre-registered bound."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10)
    segs = data["segments"]
    first = [s for s in segs if s["seed"] == segs[0]["seed"]]
    for i, s in enumerate(first):
        ax1.plot(s["t"], s["train_loss"], color=figures.COLORS[0], alpha=0.25 + 0.75 * i / max(1, len(first) - 1),
                 lw=1, label=f"epochs {s['epochs'][0]}-{s['epochs'][1]}" if i in (0, len(first) - 1) else None)
    ax1.set_yscale("log")
    ax1.set_xlabel("t on the segment (0: epoch e, 1: epoch e + 1)")
    ax1.set_ylabel("train loss")
    ax1.set_title(f"seed {segs[0]['seed']}: segments between consecutive epochs")
    ax1.legend(fontsize=7)
    for k, seed in enumerate(sorted({s["seed"] for s in segs})):
        mine = [s for s in segs if s["seed"] == seed]
        ax2.plot([s["epochs"][0] for s in mine], [s["relative_barrier"] for s in mine], "o-", ms=3,
                 color=figures.COLORS[k % len(figures.COLORS)], label=f"seed {seed}")
    ax2.axhline(data["bound"], color="k", ls=":", lw=0.8, label=f"bound {data['bound']:g}")
    ax2.set_xlabel("first epoch of the pair")
    ax2.set_ylabel("relative barrier (barrier / larger endpoint loss)")
    ax2.set_title(f"{data['scale']}: barriers along the SGD walk")
    ax2.legend(fontsize=7)
    return figures.save(fig, stem)


def run_walk(job: ClaimJob) -> ClaimResult:
    """Segments between the consecutive epoch snapshots of the settings' ``variant`` (every seed), then the claim."""
    s = job.settings
    v = s["variant"]
    first, last = (int(e) for e in s["epochs"])
    trained = int(job.runs[v]["recipe"]["epochs"])
    if not 0 <= first < last <= trained:
        raise ValueError(f"{job.claim['id']}: walk epochs [{first}, {last}] must lie within the {trained} epochs "
                         f"{v!r} trains (experiment key `walk.epochs`)")
    segments = iterate_segments({"sgd": (job.runs[v], job.dirs[v])}, job.seeds, list(range(first, last + 1)),
                                int(s.get("points", 11)), bn=s.get("bn", "recompute"), n_train=s.get("n_train"),
                                n_test=s.get("n_test"), chunk=int(s.get("chunk", 250)))
    trained = {("sgd", seed): run_metrics(job.runs[v], job.dirs[v], seed) for seed in job.seeds}
    return walk_claim(segments, job.claim["decision"], job.scale, job.out_dir, claim_id=job.claim["id"], runs=trained)


def run_sgdr(job: ClaimJob) -> ClaimResult:
    s = job.settings
    runs = {role: (job.runs[s[role]], job.dirs[s[role]]) for role in ("sgdr", "step")}
    segments = iterate_segments(runs, job.seeds, s["epochs"], int(s.get("points", job.curves["points"])),
                                bn=job.curves["bn"], n_train=job.curves["n_train"], n_test=job.curves["n_test"],
                                chunk=int(job.curves["chunk"]))
    trained = {(role, seed): run_metrics(run, run_dir, seed) for role, (run, run_dir) in runs.items()
               for seed in job.seeds}
    return sgdr_claim(segments, job.claim["decision"], job.scale, job.out_dir, claim_id=job.claim["id"],
                      runs=trained)


def run_scaling(job: ClaimJob) -> ClaimResult:
    ep = Endpoint.parse(job.settings["endpoint"])
    run = job.runs[ep.variant]
    model, data = load_trained(run, ep.weights_file(job.dirs[ep.variant]))
    data = data.evaluation_subsets(job.curves.get("n_train"), job.curves.get("n_test"))
    trained = run_metrics(run, job.dirs[ep.variant], ep.seed) if ep.epoch is None else None
    return scaling_claim(model, data, grid(job.settings["t"]), job.claim["decision"], job.scale, job.out_dir,
                         loss=run["recipe"].get("loss", "ce"), claim_id=job.claim["id"],
                         chunk=int(job.curves["chunk"]), trained=trained)


def run_fge(job: ClaimJob) -> ClaimResult:
    s = job.settings
    curve_ts = np.linspace(0.0, 1.0, int(s["curve"]["points"])).tolist()
    curve = job.params["files"]["curves"][s["curve"]["pair"]][s["curve"]["kind"]]
    run, run_dir = job.runs[s["variant"]], job.dirs[s["variant"]]
    inputs = ensemble_inputs(run, run_dir, job.files("fge")[0], job.seeds,
                             curve_file=curve, curve_ts=curve_ts, bn=job.curves["bn"],
                             n_test=job.curves["n_test"], chunk=int(job.curves["chunk"]))
    trained = {seed: run_metrics(run, run_dir, seed) for seed in job.seeds}
    return fge_claim(inputs, job.claim["decision"], job.scale, job.out_dir, claim_id=job.claim["id"],
                     trained=trained, fge_epochs=int(s["epochs"]))


CLAIMS: dict[str, Callable[[ClaimJob], ClaimResult]] = {
    GARIPOV: run_garipov, GOTMARE: run_gotmare, SGDR: run_sgdr, WIDTH: run_width, SCALING: run_scaling,
    FGE: run_fge, "sgd-walk-no-barrier": run_walk}
