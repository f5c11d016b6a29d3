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
  :class:`ClaimResult` decided by the pass rule of ``config/claims.yaml``. :data:`CLAIMS` maps claim ids to
  the functions that load a claim's inputs and run its analysis.

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
from losslab.claims.verdicts import ClaimResult, Comparison, all_of, paired, rank_trend, threshold
from losslab.core.data import Prepared, prepare
from losslab.core.models import build
from losslab.core.weights import ParamLayout, flatten, has_batchnorm, tensor_digest
from losslab.claims.tables import fmt, mean_std, write_table
from losslab.core.surfaces import evaluators_for, read_surface
from losslab.core.trainer import Recipe, versions
from losslab.claims.runs import weights_file
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


def _describe(comps: Sequence[Comparison]) -> str:
    return "; ".join(c.describe() for c in comps)


# ---------------------------------------------------------------- Garipov: segment vs curves --------------

def garipov_checks(evals: Mapping[str, curves.CurveEvaluation], check: Mapping[str, Any]) -> list[Comparison]:
    """The pass rule: the segment's test-error barrier >= ``segment_min_pp``, each curve's <= ``curve_max_pp``."""
    seg = excess(evals[KINDS[0]], prefix="segment_")
    comps = [threshold("segment: max test error minus the worse endpoint's", seg, check["segment_min_pp"] / 100, True)]
    return comps + [threshold(f"{k}: max test error minus the worse endpoint's", excess(evals[k]),
                              check["curve_max_pp"] / 100, False) for k in KINDS]


def garipov_claim(evals: Mapping[str, curves.CurveEvaluation], check: Mapping[str, Any], scale: str,
                  out_dir: str | os.PathLike, planes: Mapping[str, tuple[str, str]] | None = None,
                  claim_id: str = GARIPOV) -> ClaimResult:
    """``evals``: kind (``bezier``, ``polychain``) -> the evaluation of that curve between the two independent
    modes (each holds the segment too); ``planes``: kind -> (plane HDF5, curve file) for the figure."""
    out_dir = Path(out_dir)
    missing = [k for k in KINDS if k not in evals]
    if missing:
        raise ValueError(f"{claim_id}: needs the {missing} curve evaluation(s)")
    first = evals[KINDS[0]]
    e0, e1 = endpoint_values(first, "test_err")
    seg = excess(first, prefix="segment_")
    comps = garipov_checks(evals, check)
    rows, numbers = [], {"endpoint0.test_err": e0, "endpoint1.test_err": e1}
    rows.append({"path": "endpoints (single models)", "test_err_min_%": _pct(min(e0, e1)), "test_err_int_%": "",
                 "test_err_max_%": _pct(max(e0, e1)), "test_err_barrier_pp": 0.0,
                 "train_loss_max": round(max(endpoint_values(first, "train_loss")), 4), "train_loss_barrier": 0.0,
                 "length_ratio": "", **_paper_cols("endpoints")})
    for name, ev, prefix in [("segment", first, "segment_")] + [(k, evals[k], "") for k in KINDS]:
        m = ev.metrics
        ratio = m[f"{prefix}length_ratio"]
        rows.append({"path": name, "test_err_min_%": _pct(m[f"{prefix}test_err_min"]),
                     "test_err_int_%": _pct(m[f"{prefix}test_err_int"]),
                     "test_err_max_%": _pct(m[f"{prefix}test_err_max"]),
                     "test_err_barrier_pp": _pct(m[f"{prefix}test_err_barrier"]),
                     "train_loss_max": round(m[f"{prefix}train_loss_max"], 4),
                     "train_loss_barrier": round(m[f"{prefix}train_loss_barrier"], 4),
                     "length_ratio": round(ratio, 3), **_paper_cols(name)})
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

    verdict = all_of(c.verdict for c in comps)
    measured = (f"endpoints {_pct(e0)}/{_pct(e1)}% test err; max on segment +{_pct(seg)} pp, "
                + ", ".join(f"{k} +{_pct(excess(evals[k]))} pp (length ratio {evals[k].metrics['length_ratio']:.2f})"
                            for k in KINDS))
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=1, comparisons=comps, numbers=numbers, figures=figs, tables=tables,
                       notes=_describe(comps))


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

def gotmare_checks(evals: Mapping[str, Mapping[str, curves.CurveEvaluation]], check: Mapping[str, Any],
                   reference: str = "G") -> list[Comparison]:
    """The pass rule: on every pair's ``check["kind"]`` curve the test-error barrier is <= ``max_pp``."""
    return [threshold(f"{reference}-{label} {check['kind']}: max test error minus the worse endpoint's",
                      excess(evals[label][check["kind"]]), check["max_pp"] / 100, False) for label in sorted(evals)]


def gotmare_claim(evals: Mapping[str, Mapping[str, curves.CurveEvaluation]], check: Mapping[str, Any], scale: str,
                  out_dir: str | os.PathLike, reference: str = "G", claim_id: str = GOTMARE) -> ClaimResult:
    """``evals``: label of the other model (A-F) -> kind -> the evaluation of the curve from ``reference``
    (endpoint ``a``, t = 0) to it (``b``, t = 1). The verdict reads the curves of ``check["kind"]``."""
    out_dir = Path(out_dir)
    kind = check["kind"]
    labels = sorted(evals)
    rows, numbers = [], {}
    for label in labels:
        by_kind = evals[label]
        if kind not in by_kind:
            raise ValueError(f"{claim_id}: pair {reference}-{label} has no {kind} curve evaluation")
        first = by_kind[kind]
        a, b = endpoint_values(first, "test_err")
        row = {"pair": f"{reference}-{label}", f"{reference}_test_acc_%": _pct(1 - a), "other_test_acc_%": _pct(1 - b),
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
    comps = gotmare_checks(evals, check, reference)
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
    verdict = all_of(c.verdict for c in comps)
    measured = f"{kind} max test error over the worse endpoint (pp): " + ", ".join(
        f"{label} {_pct(excess(evals[label][kind])):+.2f}" for label in labels) + "; segment: " + ", ".join(
        f"{label} {_pct(excess(evals[label][kind], prefix='segment_')):+.1f}" for label in labels)
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=1, comparisons=comps, numbers=numbers, figures=figs, tables=tables,
                       notes=_describe(comps))


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


def sgdr_checks(segments: Sequence[IterateSegment], check: Mapping[str, Any]) -> tuple[float, float, list[Comparison]]:
    """The fraction of SGDR pairs with a barrier (relative barrier > ``tol``), of step-decay pairs without one,
    and the pass rule: both fractions >= ``min_agree``."""
    tol = float(check["tol"])
    frac_sgdr = float(np.mean([s.relative_barrier > tol for s in segments if s.role == "sgdr"]))
    frac_step = float(np.mean([s.relative_barrier <= tol for s in segments if s.role == "step"]))
    return frac_sgdr, frac_step, [
        threshold(f"fraction of SGDR pairs with a barrier (> {tol:g} of the higher endpoint loss)", frac_sgdr,
                  check["min_agree"], True),
        threshold("fraction of step-decay pairs without one", frac_step, check["min_agree"], True)]


def sgdr_claim(segments: Sequence[IterateSegment], check: Mapping[str, Any], scale: str, out_dir: str | os.PathLike,
               claim_id: str = SGDR) -> ClaimResult:
    """Barriers on the segments between consecutive SGDR iterates (just before restarts) and between the
    step-decay run's iterates at the same epochs."""
    out_dir = Path(out_dir)
    tol = float(check["tol"])
    by_role = {r: [s for s in segments if s.role == r] for r in ("sgdr", "step")}
    if not by_role["sgdr"] or not by_role["step"]:
        raise ValueError(f"{claim_id}: needs segments of both the SGDR and the step-decay run")
    frac_sgdr, frac_step, comps = sgdr_checks(segments, check)
    rows, numbers = [], {"sgdr.fraction_with_barrier": frac_sgdr, "step.fraction_without_barrier": frac_step}
    for s in segments:
        l0, l1 = endpoint_values(s.evaluation, "train_loss")
        tag = f"{s.role}.seed{s.seed}.e{s.epochs[0]}-{s.epochs[1]}"
        numbers[f"{tag}.barrier"], numbers[f"{tag}.relative_barrier"] = s.barrier, s.relative_barrier
        rows.append({"run": s.role, "seed": s.seed, "iterates": f"w{s.epochs[0]} - w{s.epochs[1]}",
                     "train_loss_endpoints": f"{l0:.4g} / {l1:.4g}",
                     "train_loss_max": round(float(s.evaluation.metrics["train_loss_max"]), 5),
                     "barrier": round(s.barrier, 5), "relative_barrier": round(s.relative_barrier, 4),
                     "has_barrier": s.relative_barrier > tol})
    tables = write_table(rows, out_dir / "table", title=f"Loss barriers between iterates ({scale} scale)")
    data = {"scale": scale, "pairs": sorted({s.epochs for s in segments}),
            "segments": [{"epochs": s.epochs, "role": s.role, "seed": s.seed, "t": s.evaluation.t,
                          "train_loss": s.evaluation.values["train_loss"]} for s in segments]}
    figs = figures.render(plot_sgdr, data, out_dir / "figure")
    verdict = all_of(c.verdict for c in comps)
    med = {r: float(np.median([s.relative_barrier for s in by_role[r]])) for r in by_role}
    measured = (f"SGDR pairs with a barrier: {frac_sgdr:.0%} (median relative barrier {med['sgdr']:.3g}); "
                f"step-decay pairs without: {frac_step:.0%} (median {med['step']:.3g})")
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=len({s.seed for s in segments}), comparisons=comps, numbers=numbers, figures=figs,
                       tables=tables, notes=_describe(comps))


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

def width_checks(sweep: Sequence[tuple[float, int, curves.CurveEvaluation]]) -> list[Comparison]:
    """The pass rule: the curve's train-loss barrier and its length ratio both fall strictly with width."""
    sweep = sorted(sweep, key=lambda s: s[0])
    ks = [s[0] for s in sweep]
    return [rank_trend("curve train-loss barrier decreases", ks, [excess(s[2], "train_loss") for s in sweep]),
            rank_trend("curve length ratio decreases", ks, [float(s[2].metrics["length_ratio"]) for s in sweep])]


def width_claim(sweep: Sequence[tuple[float, int, curves.CurveEvaluation]], check: Mapping[str, Any], scale: str,
                out_dir: str | os.PathLike, claim_id: str = WIDTH) -> ClaimResult:
    """``sweep``: (relative width K, number of weights, evaluation of the curve between two modes of that
    width). The curve's train-loss barrier and length ratio should both fall with width."""
    out_dir = Path(out_dir)
    sweep = sorted(sweep, key=lambda s: s[0])
    ks = [s[0] for s in sweep]
    barrier = [excess(s[2], "train_loss") for s in sweep]
    ratio = [float(s[2].metrics["length_ratio"]) for s in sweep]
    comps = width_checks(sweep)
    rows, numbers = [], {}
    for (k, n, ev), b, r in zip(sweep, barrier, ratio):
        l0, l1 = endpoint_values(ev, "train_loss")
        rows.append({"width_K": k, "parameters": n, "endpoint_train_loss": f"{l0:.4g} / {l1:.4g}",
                     "curve_train_loss_max": round(float(ev.metrics["train_loss_max"]), 5),
                     "curve_train_loss_barrier": round(b, 5), "curve_test_err_barrier_pp": _pct(excess(ev)),
                     "segment_train_loss_barrier": round(excess(ev, "train_loss", "segment_"), 4),
                     "length_ratio": round(r, 4)})
        numbers[f"K{k:g}.train_loss_barrier"], numbers[f"K{k:g}.length_ratio"] = b, r
        numbers[f"K{k:g}.segment_train_loss_barrier"] = excess(ev, "train_loss", "segment_")
    tables = write_table(rows, out_dir / "table", title=f"Curve barrier and length ratio vs width ({scale} scale)")
    data = {"scale": scale, "widths": ks, "barrier": barrier, "length_ratio": ratio,
            "curves": [{"t": ev.t, "train_loss": ev.values["train_loss"],
                        "segment_train_loss": ev.values["segment_train_loss"]} for _, _, ev in sweep]}
    figs = figures.render(plot_width_connectivity, data, out_dir / "figure")
    verdict = all_of(c.verdict for c in comps)
    measured = "K: barrier / length ratio = " + ", ".join(
        f"{k:g}: {b:.3g} / {r:.3f}" for k, b, r in zip(ks, barrier, ratio))
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=1, comparisons=comps, numbers=numbers, figures=figs, tables=tables,
                       notes=_describe(comps))


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

def scaling_claim(model: nn.Module, data: Prepared, ts: Sequence[float], check: Mapping[str, Any], scale: str,
                  out_dir: str | os.PathLike, loss: str = "ce", claim_id: str = SCALING,
                  chunk: int = 250) -> ClaimResult:
    """Garipov et al.'s trivial path (A.8) from ``model``'s weights: labels, loss and error at each t of
    ``ts`` (in (0, 1], including 1)."""
    out_dir = Path(out_dir)
    ts = sorted(float(t) for t in ts)
    if ts[0] <= 0 or ts[-1] != 1.0:
        raise ValueError(f"{claim_id}: the t grid must lie in (0, 1] and end at 1, got {ts[0]}..{ts[-1]}")
    path = curves.scaling_path(model, ts)
    evs = evaluators_for(model, data, loss=loss, bn="running", chunk=chunk)
    res = {s: ev.evaluate_many(path) for s, ev in evs.items()}
    labels = {s: [curves.logits_at(ev, v).argmax(-1) for v in path] for s, ev in evs.items()}
    same = {s: all(torch.equal(lab, labels[s][-1]) for lab in labels[s]) for s in evs}
    train_loss = np.array([r.loss for r in res["train"]])
    increasing = bool(np.all(np.diff(train_loss) < 0))  # ts ascending: the loss falls towards t = 1
    factor = float(train_loss[0] / train_loss[-1])
    comps = [threshold("labels at every t equal those at t = 1 (train and test)", float(all(same.values())), 1.0, True),
             threshold("train loss increases strictly as t decreases", float(increasing), 1.0, True),
             threshold(f"L(t={ts[0]:g}) / L(1)", factor, check["min_factor"], True)]
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
               "test_err_range": float(np.ptp([r.err for r in res["test"]]))}
    drawn = {"scale": scale, "t": list(ts),
             "loss": {sp: [r.loss for r in res[sp]] for sp in ("train", "test")},
             "err": {sp: [r.err for r in res[sp]] for sp in ("train", "test")}}
    figs = figures.render(plot_scaling, drawn, Path(out_dir) / "figure")
    verdict = all_of(c.verdict for c in comps)
    measured = (f"labels constant on {len(ts)} t in [{ts[0]:g}, 1]: {all(same.values())}; train loss "
                f"{train_loss[-1]:.3g} at t=1 -> {train_loss[0]:.3g} at t={ts[0]:g} (x{factor:.1f}); test error "
                f"{100 * res['test'][-1].err:.2f}% throughout" if all(same.values()) else
                f"labels change along the path; train loss {train_loss[-1]:.3g} -> {train_loss[0]:.3g}")
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=1, comparisons=comps, numbers=numbers, figures=figs, tables=tables,
                       notes=_describe(comps))


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


def fge_checks(single_err: Mapping[int, float], fge_err: Mapping[int, float], fge_dis: Mapping[int, float],
               ind_dis: float, check: Mapping[str, Any]) -> list[Comparison]:
    """The pass rule, paired over seeds: FGE's ensemble error below the single model's, its members'
    disagreement below the independent models'."""
    seeds = sorted(fge_err)
    return [paired("FGE ensemble test error < single model's (same budget)", [single_err[s] for s in seeds],
                   [fge_err[s] for s in seeds], check["min_agree"]),
            paired("FGE members' disagreement < independent models'", [ind_dis] * len(seeds),
                   [fge_dis[s] for s in seeds], check["min_agree"])]


def fge_claim(inputs: EnsembleInputs, check: Mapping[str, Any], scale: str, out_dir: str | os.PathLike,
              claim_id: str = FGE) -> ClaimResult:
    out_dir = Path(out_dir)
    seeds = sorted(inputs.fge)
    y = inputs.y
    single = {s: curves.ensemble(inputs.single[s], y).err for s in seeds}
    fge = {s: curves.ensemble(inputs.fge[s], y) for s in seeds}
    fge_dis = {s: mean_disagreement(inputs.fge[s]) for s in seeds}
    ind_dis = mean_disagreement(inputs.independent)
    ind = curves.ensemble(inputs.independent, y)
    comps = fge_checks(single, {s: fge[s].err for s in seeds}, fge_dis, ind_dis, check)
    rows = [{"method": f"single model (seed {s})", "members": 1, "test_err_%": _pct(single[s]), "nll": "",
             "disagreement_%": ""} for s in seeds]
    rows += [{"method": f"FGE (seed {s})", "members": fge[s].size, "test_err_%": _pct(fge[s].err),
              "nll": round(fge[s].nll, 4), "disagreement_%": _pct(fge_dis[s])} for s in seeds]
    rows.append({"method": "independent models", "members": ind.size, "test_err_%": _pct(ind.err),
                 "nll": round(ind.nll, 4), "disagreement_%": _pct(ind_dis)})
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
                     "disagreement_%": _pct(mean_disagreement(inputs.curve))})
        numbers.update({"curve.err": curve_res.err, "curve.nll": curve_res.nll,
                        "curve.endpoint_err_mean": float(np.mean(ends))})
    tables = write_table(rows, out_dir / "table", title=f"Ensembles: FGE, independent models, along a curve "
                         f"({scale} scale; test error and disagreement in %)")
    data = {"scale": scale, "seeds": seeds, "single_err": [single[s] for s in seeds],
            "fge_err": [fge[s].err for s in seeds], "fge_disagreement": [fge_dis[s] for s in seeds],
            "independent": {"size": ind.size, "err": ind.err, "disagreement": ind_dis},
            "curve_err": None if curve_res is None else curve_res.err}
    figs = figures.render(plot_fge, data, out_dir / "figure")
    verdict = all_of(c.verdict for c in comps)
    m_single, m_fge = mean_std(list(single.values()))[0], mean_std([fge[s].err for s in seeds])[0]
    measured = (f"test err single {100 * m_single:.2f}% vs FGE {100 * m_fge:.2f}% (mean over {len(seeds)} seeds), "
                f"{ind.size} independent {100 * ind.err:.2f}%"
                + (f", curve {100 * curve_res.err:.2f}%" if curve_res is not None else "")
                + f"; disagreement FGE {100 * float(np.mean(list(fge_dis.values()))):.2f}% vs independent "
                  f"{100 * ind_dis:.2f}%")
    return ClaimResult(id=claim_id, scale=scale, verdict=verdict, rule=check["rule"], measured=measured,
                       n_seeds=len(seeds), comparisons=comps, numbers=numbers, figures=figs, tables=tables,
                       notes=_describe(comps))


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
    ax1.bar(range(len(errs)), errs, color=cols)
    ax1.set_xticks(range(len(errs)), names, fontsize=7)
    ax1.set_ylabel("test error (%)")
    lo = min(errs)
    ax1.set_ylim(max(0.0, lo - 0.6 * (max(errs) - lo + 1e-9) - 0.5), max(errs) + 0.3)
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


def run_garipov(job: ClaimJob) -> ClaimResult:
    pair, files = job.settings["pair"], job.params["files"]
    evals = _evaluations(job)[pair]
    planes = {kind: (plane, files["curves"][pair][kind]) for kind, plane in files["planes"][pair].items()}
    return garipov_claim(evals, job.check, job.scale, job.out_dir, planes, claim_id=job.claim["id"])


def run_gotmare(job: ClaimJob) -> ClaimResult:
    by_pair = _evaluations(job)
    evals = {label: by_pair[pair] for label, pair in job.settings["pairs"].items()}
    return gotmare_claim(evals, job.check, job.scale, job.out_dir, reference=job.settings["reference"],
                         claim_id=job.claim["id"])


def run_width(job: ClaimJob) -> ClaimResult:
    by_pair = _evaluations(job)
    kind = job.settings["kind"]
    records = {pair: lio.read_json(by_kind[kind]) for pair, by_kind in job.params["files"]["records"].items()}
    sweep = [(float(k), int(records[pair]["num_parameters"]), by_pair[pair][kind])
             for pair, k in job.settings["pairs"].items()]
    return width_claim(sweep, job.check, job.scale, job.out_dir, claim_id=job.claim["id"])


def run_sgdr(job: ClaimJob) -> ClaimResult:
    s = job.settings
    runs = {role: (job.runs[s[role]], job.dirs[s[role]]) for role in ("sgdr", "step")}
    segments = iterate_segments(runs, job.seeds, s["epochs"], int(s.get("points", job.curves["points"])),
                                bn=job.curves["bn"], n_train=job.curves["n_train"], n_test=job.curves["n_test"],
                                chunk=int(job.curves["chunk"]))
    return sgdr_claim(segments, job.check, job.scale, job.out_dir, claim_id=job.claim["id"])


def run_scaling(job: ClaimJob) -> ClaimResult:
    ep = Endpoint.parse(job.settings["endpoint"])
    run = job.runs[ep.variant]
    model, data = load_trained(run, ep.weights_file(job.dirs[ep.variant]))
    data = data.evaluation_subsets(job.curves.get("n_train"), job.curves.get("n_test"))
    return scaling_claim(model, data, grid(job.settings["t"]), job.check, job.scale, job.out_dir,
                         loss=run["recipe"].get("loss", "ce"), claim_id=job.claim["id"],
                         chunk=int(job.curves["chunk"]))


def run_fge(job: ClaimJob) -> ClaimResult:
    s = job.settings
    curve_ts = np.linspace(0.0, 1.0, int(s["curve"]["points"])).tolist()
    curve = job.params["files"]["curves"][s["curve"]["pair"]][s["curve"]["kind"]]
    inputs = ensemble_inputs(job.runs[s["variant"]], job.dirs[s["variant"]], job.files("fge")[0], job.seeds,
                             curve_file=curve, curve_ts=curve_ts, bn=job.curves["bn"],
                             n_test=job.curves["n_test"], chunk=int(job.curves["chunk"]))
    return fge_claim(inputs, job.check, job.scale, job.out_dir, claim_id=job.claim["id"])


CLAIMS: dict[str, Callable[[ClaimJob], ClaimResult]] = {
    GARIPOV: run_garipov, GOTMARE: run_gotmare, SGDR: run_sgdr, WIDTH: run_width, SCALING: run_scaling,
    FGE: run_fge}
