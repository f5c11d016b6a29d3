"""The optimization-lecture toy claims (sources 002 and 000), computed exactly.

Four claims, each a ``claim_*(params, check, decision, scale, out_dir) -> ClaimResult`` that computes, writes
``table.csv``/``table.md`` and ``figure.png``/``figure.pdf`` into ``out_dir`` and decides by the claim's
pre-registered ``decision``. ``params`` is the scale's ``toys.<claim id>`` mapping (sizes, step sizes, seeds); the
thresholds live in the registry (``check``: the old rule's, e.g. the rescaling c; ``decision``: margins, tolerances).

* ``tanh-toy-surface`` (002): ``L(w1, w2) = (0.5 - tanh(w1 tanh(w2 / 2)))^2``. With ``u = w1 tanh(w2/2)``,
  near the origin ``u ~ w1 w2 / 2`` and ``L ~ 0.25 - w1 w2 / 2``: a saddle with value 0.25 and Hessian
  ``[[0, -1/2], [-1/2, 0]]`` (eigenvalues -1/2 and +1/2). Far away ``tanh(u) -> sign(w1 w2)``: plateaus at
  ``(0.5 - 1)^2 = 0.25`` (same signs) and ``(0.5 + 1)^2 = 2.25`` (opposite signs). ``L = 0`` exactly where
  ``u = atanh(0.5)``, i.e. ``w1 = atanh(0.5) / tanh(w2/2)``: one ravine in quadrant I (w2 > 0), its mirror
  image in quadrant III. There ``L = r^2`` with ``r = 0`` so the Hessian is ``2 grad(r) grad(r)^T``: rank
  one, eigenvalues ``(0, 2 |grad r|^2)``.
* ``saddles-dominate-high-dim`` (002): the fraction of positive-definite GOE matrices for N = 1..8.
* ``redundant-overparam-flatness`` (000): ``w^2`` vs ``(w1 w2)^2``, and the ReLU rescaling symmetry of an MLP.
* ``wilson-adaptive-generalize-worse`` (002, Wilson et al. 2017 Sec. 3.3): the separable least-squares toy on
  which gradient descent generalises perfectly and AdaGrad/Adam label every test point positive.

Every computation runs in float64. Each claim is decided by its pre-registered ``decision`` block of
``config/claims.yaml`` (:func:`losslab.claims.verdicts.decide_claim`): ``measure_<claim>`` turns what was computed
into the :class:`~losslab.claims.verdicts.Measured` effect of each part (a NaN makes its part inconclusive); the
quantities of the old ``checks`` rule that the decision does not name are shown in the tables only.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from losslab.plots import figures
from losslab.claims.verdicts import ClaimResult, Measured, binomial_tolerance, decide_claim
from losslab.core.models import build
from losslab.core.optim import make_optimizer
from losslab.core.weights import flatten, unflatten
from losslab.claims.tables import pm, write_table
from losslab.claims.claim_job import ClaimJob

DTYPE = torch.float64
ATANH_HALF = math.atanh(0.5)  # 0.5493061443340549


# ---------------------------------------------------------------- shared helpers ----------------------------

def largest_deviation(deviations: Mapping[str, float]) -> float:
    """The largest of ``deviations`` (each >= 0), NaN when any is NaN (it could not be measured)."""
    vals = [float(v) for v in deviations.values()]
    if not vals or any(math.isnan(v) for v in vals):
        return math.nan
    return max(vals)


def _hessian(fn: Callable[[torch.Tensor], torch.Tensor], point: Sequence[float]) -> np.ndarray:
    x = torch.tensor([float(v) for v in point], dtype=DTYPE)
    return torch.autograd.functional.hessian(fn, x).detach().numpy()


def _eigs(h: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(0.5 * (h + h.T))


# ---------------------------------------------------------------- 1. the tanh toy surface -------------------

def tanh_loss(w: torch.Tensor) -> torch.Tensor:
    """``(0.5 - tanh(w1 tanh(w2/2)))^2`` for ``w`` of shape (..., 2)."""
    return (0.5 - torch.tanh(w[..., 0] * torch.tanh(0.5 * w[..., 1]))) ** 2


def tanh_value(w1: float, w2: float) -> float:
    return float(tanh_loss(torch.tensor([w1, w2], dtype=DTYPE)))


def tanh_hessian(point: Sequence[float]) -> np.ndarray:
    return _hessian(tanh_loss, point)


def tanh_gradient(point: Sequence[float]) -> np.ndarray:
    w = torch.tensor([float(v) for v in point], dtype=DTYPE, requires_grad=True)
    (g,) = torch.autograd.grad(tanh_loss(w), w)
    return g.numpy()


def tanh_saddle() -> dict[str, float]:
    """Value, gradient norm and Hessian eigenvalues at the origin."""
    eig = _eigs(tanh_hessian((0.0, 0.0)))
    return {"loss": tanh_value(0.0, 0.0), "grad_norm": float(np.linalg.norm(tanh_gradient((0.0, 0.0)))),
            "eig_min": float(eig[0]), "eig_max": float(eig[1])}


def tanh_plateaus(radius: float) -> dict[str, float]:
    """The loss at the four points ``(+-radius, +-radius)``: the largest deviation from 0.25 where
    ``w1 w2 > 0`` and from 2.25 where ``w1 w2 < 0``, and the largest gradient norm there."""
    same = [tanh_value(s * radius, s * radius) for s in (1, -1)]
    opposite = [tanh_value(s * radius, -s * radius) for s in (1, -1)]
    grads = [np.linalg.norm(tanh_gradient((a * radius, b * radius))) for a in (1, -1) for b in (1, -1)]
    return {"radius": float(radius), "same_sign_loss": same[0], "opposite_sign_loss": opposite[0],
            "same_sign_dev": max(abs(v - 0.25) for v in same),
            "opposite_sign_dev": max(abs(v - 2.25) for v in opposite),
            "grad_norm_max": float(max(grads))}


def ravine_points(w2: Sequence[float]) -> np.ndarray:
    """Points ``(atanh(0.5) / tanh(w2/2), w2)`` of the zero-loss set, one per nonzero ``w2``."""
    w2 = np.asarray(w2, float)
    if np.any(w2 == 0):
        raise ValueError("the ravines do not cross w2 = 0")
    return np.stack([ATANH_HALF / np.tanh(0.5 * w2), w2], axis=1)


def ravine_eig_max(w1: float, w2: float) -> float:
    """The derived nonzero Hessian eigenvalue on the ravine, ``2 |grad r|^2`` with ``r = 0.5 - tanh(u)``,
    ``u = w1 tanh(w2/2)``: there ``tanh(u) = 0.5``, so ``dr/du = -(1 - 0.25)`` and
    ``grad u = (tanh(w2/2), w1 (1 - tanh(w2/2)^2) / 2)``."""
    t = math.tanh(0.5 * w2)
    return 2.0 * 0.75 ** 2 * (t ** 2 + (0.5 * w1 * (1.0 - t ** 2)) ** 2)


def tanh_ravine(w2: Sequence[float]) -> list[dict[str, float]]:
    """Loss and Hessian eigenvalues at ravine points, with the derived nonzero eigenvalue."""
    rows = []
    for w1_, w2_ in ravine_points(w2):
        eig = _eigs(tanh_hessian((w1_, w2_)))
        rows.append({"w1": float(w1_), "w2": float(w2_), "loss": tanh_value(w1_, w2_),
                     "eig_min": float(eig[0]), "eig_max": float(eig[1]),
                     "derived_eig_max": ravine_eig_max(float(w1_), float(w2_))})
    return rows


def tanh_deviations(saddle: Mapping[str, float], plateau: Mapping[str, float],
                    ravine: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The absolute deviation of every derived value from what was computed: the saddle (L = 0.25, gradient 0,
    eigenvalues -1/2 and +1/2), the plateaus (0.25 and 2.25), the ravine points (L = 0, eigenvalues 0 and
    ``2 |grad r|^2``, quadrant I or III: a point in the wrong quadrant deviates by its ``|w1|``)."""
    dev = {"saddle.loss": abs(saddle["loss"] - 0.25), "saddle.grad_norm": abs(saddle["grad_norm"]),
           "saddle.eig_min": abs(saddle["eig_min"] + 0.5), "saddle.eig_max": abs(saddle["eig_max"] - 0.5),
           "plateau.same_sign": plateau["same_sign_dev"], "plateau.opposite_sign": plateau["opposite_sign_dev"]}
    for k, r in enumerate(ravine):
        dev[f"ravine{k}.loss"] = abs(r["loss"])
        dev[f"ravine{k}.eig_min"] = abs(r["eig_min"])
        dev[f"ravine{k}.eig_max"] = abs(r["eig_max"] - r["derived_eig_max"])
        dev[f"ravine{k}.quadrant"] = 0.0 if (r["w1"] > 0) == (r["w2"] > 0) else abs(r["w1"])
    return {k: float(v) for k, v in dev.items()}


def measure_tanh(deviations: Mapping[str, float]) -> dict[str, Measured]:
    """``derived_values``: minus the largest deviation of every derived value (NaN: not measured)."""
    return {"derived_values": Measured(value=-largest_deviation(deviations))}


def gradient_descent(loss: Callable[[torch.Tensor], torch.Tensor], starts: np.ndarray, lr: float,
                     steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain gradient descent from each row of ``starts`` (independent runs, vectorised: the loss of row i
    depends only on row i). Returns the final points and the loss history, shape (steps + 1, runs)."""
    w = torch.tensor(np.asarray(starts, float), dtype=DTYPE).reshape(-1, 2).clone().requires_grad_(True)
    hist = np.empty((steps + 1, w.shape[0]))
    for t in range(steps + 1):
        per_run = loss(w)
        hist[t] = per_run.detach().numpy()
        if t == steps:
            break
        (g,) = torch.autograd.grad(per_run.sum(), w)
        with torch.no_grad():
            w -= lr * g
    return w.detach().numpy(), hist


def tanh_starts(kind: str, seed: int, params: Mapping[str, Any]) -> np.ndarray:
    """One starting point: ``zero``; ``small`` ~ N(0, small_init_std^2) per coordinate; ``large``: each
    coordinate a random sign times ``large_init * U(0.8, 1.2)``. Seeded per (kind, seed)."""
    if kind == "zero":
        return np.zeros(2)
    rng = np.random.default_rng([seed, {"small": 1, "large": 2}[kind]])
    if kind == "small":
        return rng.normal(0.0, float(params["small_init_std"]), 2)
    if kind == "large":
        return rng.choice([-1.0, 1.0], 2) * float(params["large_init"]) * rng.uniform(0.8, 1.2, 2)
    raise ValueError(f"unknown init kind {kind!r}")


def tanh_gd_runs(params: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """GD from zero, from small random inits and from large inits (one run per seed)."""
    gd = params["gd"]
    seeds = list(gd["seeds"])
    out = {}
    for kind in ("zero", "small", "large"):
        starts = np.stack([tanh_starts(kind, s, gd) for s in (seeds if kind != "zero" else [0])])
        final, hist = gradient_descent(tanh_loss, starts, float(gd["lr"]), int(gd["steps"]))
        out[kind] = {"start": starts, "final": final, "loss": hist}
    return out


OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# the lecture says "gd" for what losslab.core.optim calls "sgd": the full-batch gradient of a deterministic toy loss
OPTIMIZER_NAMES = {"gd": "sgd"}
OPT_LABELS = {"gd": "GD (SGD without noise)", "momentum": "momentum", "nesterov": "Nesterov",
              "adagrad": "Adagrad", "rmsprop": "RMSProp", "adam": "Adam"}


def optimizer_path(name: str, start: Sequence[float], lr: float, steps: int, momentum: float = 0.9,
                   loss: Callable[[torch.Tensor], torch.Tensor] = tanh_loss) -> tuple[np.ndarray, np.ndarray]:
    """The iterates (steps + 1, 2) and losses of ``torch.optim`` optimizer ``name`` on the 2 parameters."""
    w = torch.tensor([float(v) for v in start], dtype=DTYPE, requires_grad=True)
    opt = make_optimizer([w], OPTIMIZER_NAMES.get(name, name), lr, momentum)
    path, losses = [w.detach().numpy().copy()], []
    for _ in range(steps):
        opt.zero_grad()
        value = loss(w)
        losses.append(float(value.detach()))
        value.backward()
        opt.step()
        path.append(w.detach().numpy().copy())
    losses.append(float(loss(w.detach())))
    return np.array(path), np.array(losses)


def _tanh_grid(lim: float, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.linspace(-lim, lim, points)
    w1, w2 = np.meshgrid(g, g, indexing="xy")
    z = tanh_loss(torch.tensor(np.stack([w1, w2], -1), dtype=DTYPE)).numpy()
    return w1, w2, z


def _tanh_contour(ax, fig, lim: float, points: int):
    w1, w2, z = _tanh_grid(lim, points)
    cs = ax.contourf(w1, w2, z, levels=np.linspace(0, 2.25, 28), cmap=figures.SEQUENTIAL_CMAP)
    ax.contour(w1, w2, z, levels=[0.01, 0.1, 0.25, 1.0, 2.0], colors="k", linewidths=0.4, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="loss", ticks=[0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.25])
    for sign in (1, -1):  # the two ravines L = 0
        w2r = sign * np.linspace(0.05, lim, 400)
        w1r = ATANH_HALF / np.tanh(0.5 * w2r)
        keep = np.abs(w1r) <= lim
        ax.plot(w1r[keep], w2r[keep], "w--", lw=1.2, label="L = 0 ravine" if sign == 1 else None)
    ax.plot([0], [0], "rx", ms=8, mew=2, label="saddle (0, 0)")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    ax.set_aspect("equal")
    ax.grid(False)
    return z


def claim_tanh_surface(params: Mapping[str, Any], check: Mapping[str, Any], decision: Mapping[str, Any],
                       scale: str, out_dir: str | Path) -> ClaimResult:
    out_dir = Path(out_dir)
    saddle = tanh_saddle()
    plateau = tanh_plateaus(float(params["plateau_radius"]))
    ravine = tanh_ravine(params["ravine_w2"])
    runs = tanh_gd_runs(params)
    gd = params["gd"]
    seeds = list(gd["seeds"])

    zero_final_norm = float(np.abs(runs["zero"]["final"]).max())
    zero_loss = float(runs["zero"]["loss"][-1, 0])
    small_final = runs["small"]["loss"][-1]
    large_min = runs["large"]["loss"].min(axis=0)  # the lowest loss along each large-init run
    ravine_loss = max(r["loss"] for r in ravine)
    ravine_eig_min = max(abs(r["eig_min"]) for r in ravine)
    ravine_eig_max = min(r["eig_max"] for r in ravine)

    deviations = tanh_deviations(saddle, plateau, ravine)
    worst = max(deviations, key=lambda k: deviations[k])
    cd = decide_claim(decision, measure_tanh(deviations))
    gd_ok = (zero_final_norm == 0.0 and zero_loss == 0.25 and bool(np.all(small_final < float(check["converged_loss"])))
             and bool(np.all(large_min > float(check["plateau_loss"]))))
    notes = (f"largest deviation {deviations[worst]:.2g} ({worst}); shown only, not in the decision: gradient descent "
             f"(zero init stays, small init converges, large init stalls: {'yes' if gd_ok else 'no'})")

    # optimizer trajectories (figure and table only: not part of the pass rule)
    tr = params["trajectories"]
    paths = {name: optimizer_path(name, tr["start"], float(tr["lr"][name]), int(tr["steps"]),
                                  float(tr.get("momentum", 0.9))) for name in OPTIMIZERS}

    numbers: dict[str, float] = {f"saddle.{k}": v for k, v in saddle.items()}
    numbers.update({f"plateau.{k}": v for k, v in plateau.items()})
    numbers.update({"ravine.max_loss": ravine_loss, "ravine.max_abs_eig_min": ravine_eig_min,
                    "ravine.min_eig_max": ravine_eig_max, "gd.zero.final_abs_w": zero_final_norm,
                    "gd.zero.final_loss": zero_loss, "ravine.max_abs_eig_max_dev": max(
                        abs(r["eig_max"] - r["derived_eig_max"]) for r in ravine),
                    "derived.max_deviation": deviations[worst]})
    for i, s in enumerate(seeds):
        numbers[f"gd.small.seed{s}.final_loss"] = float(small_final[i])
        numbers[f"gd.large.seed{s}.final_loss"] = float(runs["large"]["loss"][-1, i])
        numbers[f"gd.large.seed{s}.min_loss"] = float(large_min[i])
    for name, (_, losses) in paths.items():
        numbers[f"trajectory.{name}.final_loss"] = float(losses[-1])

    rows = [
        {"quantity": "L(0,0)", "derived": 0.25, "measured": saddle["loss"], "detail": "saddle value"},
        {"quantity": "Hessian eigenvalues at (0,0)", "derived": "-0.5, +0.5",
         "measured": f"{saddle['eig_min']:+.9f}, {saddle['eig_max']:+.9f}", "detail": "torch autograd hessian"},
        {"quantity": f"L at (±{plateau['radius']:g}, ±{plateau['radius']:g}), w1 w2 > 0", "derived": 0.25,
         "measured": plateau["same_sign_loss"], "detail": f"max |dev| {plateau['same_sign_dev']:.2g}"},
        {"quantity": f"L at (±{plateau['radius']:g}, ∓{plateau['radius']:g}), w1 w2 < 0", "derived": 2.25,
         "measured": plateau["opposite_sign_loss"], "detail": f"max |dev| {plateau['opposite_sign_dev']:.2g}; "
         f"max |grad| on plateaus {plateau['grad_norm_max']:.2g}"},
    ]
    for r in ravine:
        rows.append({"quantity": f"ravine point ({r['w1']:.4f}, {r['w2']:.4g})",
                     "derived": f"L=0, eig (0, {r['derived_eig_max']:.6g})",
                     "measured": f"L={r['loss']:.2g}; eig ({r['eig_min']:.2g}, {r['eig_max']:.6g})",
                     "detail": "w1 tanh(w2/2) = atanh(0.5)"})
    rows.append({"quantity": "largest deviation from a derived value (decides)", "derived": 0.0,
                 "measured": deviations[worst], "detail": worst})
    rows.append({"quantity": "GD from (0,0) (shown only)", "derived": "stays, L=0.25",
                 "measured": f"|w| {zero_final_norm:.2g}, L={zero_loss:.9g}",
                 "detail": f"lr {gd['lr']}, {gd['steps']} steps"})
    rows.append({"quantity": f"GD from small init (std {gd['small_init_std']}), {len(seeds)} seeds",
                 "derived": f"L < {check['converged_loss']}",
                 "measured": f"final L max {small_final.max():.2g}", "detail": f"seeds {seeds}"})
    rows.append({"quantity": f"GD from large init (|w| ~ {gd['large_init']}), {len(seeds)} seeds",
                 "derived": f"L stays > {check['plateau_loss']}",
                 "measured": f"min L along runs {large_min.min():.4g}",
                 "detail": "final L " + ", ".join(f"{v:.4g}" for v in runs["large"]["loss"][-1])})
    for name, (path, losses) in paths.items():
        rows.append({"quantity": f"trajectory: {OPT_LABELS[name]}", "derived": "",
                     "measured": f"final L {losses[-1]:.3g}",
                     "detail": f"lr {tr['lr'][name]}, {tr['steps']} steps from {tuple(tr['start'])}, "
                               f"end ({path[-1, 0]:.3g}, {path[-1, 1]:.3g})"})
    tables = write_table(rows, out_dir / "table", title=f"tanh toy surface ({scale} scale): derived vs measured",
                         columns=("quantity", "derived", "measured", "detail"))

    lim, pts = float(params["grid"]["lim"]), int(params["grid"]["points"])
    data = {"scale": scale, "lim": lim, "points": pts, "gd": {k: gd[k] for k in ("lr", "large_init", "small_init_std")},
            "n_seeds": len(seeds), "converged_loss": float(check["converged_loss"]),
            "small_starts": runs["small"]["start"], "losses": {k: runs[k]["loss"] for k in ("large", "small", "zero")}}
    figs = figures.render(plot_tanh_surface, data, out_dir / "figure")
    data = {"lim": lim, "points": pts, "start": list(tr["start"]), "steps": tr["steps"],
            "paths": [{"name": name, "label": OPT_LABELS[name], "path": path, "final_loss": float(losses[-1])}
                      for name, (path, losses) in paths.items()]}
    figs += figures.render(plot_tanh_trajectories, data, out_dir / "trajectories")

    measured = (f"L(0,0)={saddle['loss']:.6g}, eig {saddle['eig_min']:+.6g}/{saddle['eig_max']:+.6g}; plateaus "
                f"{plateau['same_sign_loss']:.6g}/{plateau['opposite_sign_loss']:.6g}; ravine max L "
                f"{ravine_loss:.1g}; GD: from 0 |w|={zero_final_norm:.1g}, L={zero_loss:.6g}; small init "
                f"{int(np.sum(small_final < float(check['converged_loss'])))}/{len(seeds)} seeds L < "
                f"{check['converged_loss']:g} (max {small_final.max():.1g}); large init "
                f"{int(np.sum(large_min > float(check['plateau_loss'])))}/{len(seeds)} seeds stay > "
                f"{check['plateau_loss']:g} (min {large_min.min():.4g})")
    regime = (f"exact float64 values at the derived points (no training); gradient descent shown only: lr {gd['lr']}, "
              f"{gd['steps']} full-batch steps, final train loss {zero_loss:.3g} from (0,0), max "
              f"{small_final.max():.2g} from small inits, min along the run {large_min.min():.3g} from large inits "
              f"({len(seeds)} seeds each)")
    return ClaimResult.from_decision(cd, notes=notes, id="tanh-toy-surface", scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs,
                                     tables=tables, regime=regime)


# ---------------------------------------------------------------- 1b. Newton's method and the saddle --------

def newton_path(start: Sequence[float], steps: int) -> np.ndarray:
    """Newton's method with full steps on the tanh toy, ``w <- w - H(w)^-1 g(w)`` (exact float64 Hessian and
    gradient; a singular Hessian takes the least-squares step). Returns the points, shape (steps + 1, 2)."""
    w = np.asarray(start, float).copy()
    path = [w.copy()]
    for _ in range(steps):
        g, h = tanh_gradient(w), tanh_hessian(w)
        step = np.linalg.lstsq(h, g, rcond=None)[0]
        w = w - step
        path.append(w.copy())
        if not np.all(np.isfinite(w)):
            break
    return np.asarray(path)


def measure_newton(newton_final: np.ndarray, gd_final_loss: np.ndarray, tol: float) -> dict[str, Measured]:
    """``newton_to_saddle``: the fraction of starts whose Newton run ends within ``tol`` (max norm) of the saddle;
    ``gd_escapes``: the fraction whose GD run ends at a minimum (loss < ``tol``)."""
    at_saddle = np.all(np.abs(newton_final) <= tol, axis=1)
    return {"newton_to_saddle": Measured(value=float(np.mean(at_saddle))),
            "gd_escapes": Measured(value=float(np.mean(np.asarray(gd_final_loss) < tol)))}


def claim_newton_saddles(params: Mapping[str, Any], check: Mapping[str, Any], decision: Mapping[str, Any],
                         scale: str, out_dir: str | Path) -> ClaimResult:
    """Newton's method vs gradient descent from the same small random starts near the tanh toy's saddle (those of
    tanh-toy-surface's small-init GD runs: ``tanh_starts("small", seed, ...)``)."""
    out_dir = Path(out_dir)
    seeds, std = list(params["seeds"]), float(params["small_init_std"])
    tol, lr, gd_steps, newton_steps = (float(params["tol"]), float(params["gd_lr"]), int(params["gd_steps"]),
                                       int(params["newton_steps"]))
    starts = np.stack([tanh_starts("small", s, {"small_init_std": std}) for s in seeds])
    paths = [newton_path(st, newton_steps) for st in starts]
    newton_final = np.stack([p[-1] for p in paths])
    newton_loss = np.array([tanh_value(*w) for w in newton_final])
    gd_final, gd_hist = gradient_descent(tanh_loss, starts, lr, gd_steps)
    cd = decide_claim(decision, measure_newton(newton_final, gd_hist[-1], tol))
    n_saddle = int(np.sum(np.all(np.abs(newton_final) <= tol, axis=1)))
    n_min = int(np.sum(gd_hist[-1] < tol))
    rows: list[dict[str, Any]] = []
    numbers = {"newton.fraction_at_saddle": n_saddle / len(seeds), "gd.fraction_at_minimum": n_min / len(seeds)}
    for i, s in enumerate(seeds):
        numbers[f"newton.seed{s}.final_abs_w"] = float(np.abs(newton_final[i]).max())
        numbers[f"gd.seed{s}.final_loss"] = float(gd_hist[-1, i])
        rows.append({"seed": s, "start": f"({starts[i, 0]:+.4f}, {starts[i, 1]:+.4f})",
                     "newton_end": f"({newton_final[i, 0]:+.2e}, {newton_final[i, 1]:+.2e})",
                     "newton_loss": round(float(newton_loss[i]), 6), "gd_end": f"({gd_final[i, 0]:+.3f}, "
                     f"{gd_final[i, 1]:+.3f})", "gd_loss": float(gd_hist[-1, i])})
    tables = write_table(rows, out_dir / "table", title=f"Newton's method vs gradient descent from small starts near "
                         f"the saddle ({scale} scale)")
    data = {"scale": scale, "tol": tol, "starts": starts, "newton": [p.tolist() for p in paths],
            "gd_lr": lr, "newton_dist": [np.abs(p).max(axis=1).tolist() for p in paths], "gd_loss": gd_hist.T.tolist()}
    figs = figures.render(plot_newton_saddles, data, out_dir / "figure")
    measured = (f"Newton ends at the saddle (|w| <= {tol:g}, loss {np.median(newton_loss):.4g}) from "
                f"{n_saddle}/{len(seeds)} starts; GD reaches a minimum (loss < {tol:g}) from {n_min}/{len(seeds)}")
    regime = (f"exact float64; starts N(0, {std:g}^2) per coordinate; Newton {newton_steps} full steps, GD lr {lr:g} "
              f"for {gd_steps} steps")
    return ClaimResult.from_decision(cd, id="newton-attracted-to-saddles", scale=scale, measured=measured,
                                     n_seeds=len(seeds), numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("lecture.newton_saddles")
def plot_newton_saddles(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Newton's paths over the tanh toy's (closed-form) loss near its saddle, and the distance to the saddle per
    Newton iteration beside GD's loss per step."""
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=11, height=4.4, layout="constrained")
    _tanh_contour(ax1, fig, 1.0, 161)
    for i, p in enumerate(data["newton"]):
        p = np.asarray(p, float)
        ax1.plot(p[:, 0], p[:, 1], "-o", color=figures.COLORS[1], ms=2, lw=0.8, label="Newton" if i == 0 else None)
    st = np.asarray(data["starts"], float)
    ax1.plot(st[:, 0], st[:, 1], "o", color=figures.COLORS[0], ms=3, label="starts")
    ax1.legend(loc="lower left", fontsize=7, framealpha=0.8)
    ax1.set_title("Newton's method from small starts")
    for i, d in enumerate(data["newton_dist"]):
        ax2.plot(np.arange(len(d)), np.maximum(d, 1e-34), color=figures.COLORS[1], lw=1,
                 label="Newton: distance to the saddle" if i == 0 else None)
    for i, h in enumerate(data["gd_loss"]):
        ax2.plot(np.arange(len(h)), np.maximum(h, 1e-34), color=figures.COLORS[0], lw=1, alpha=0.7,
                 label=f"GD (lr {data['gd_lr']:g}): loss" if i == 0 else None)
    ax2.axhline(data["tol"], color="k", ls=":", lw=0.8, label=f"tolerance {data['tol']:g}")
    ax2.set_xscale("symlog", linthresh=10)
    ax2.set_yscale("log")
    ax2.set_xlabel("iteration (Newton) / step (GD)")
    ax2.set_ylabel("max |w| (Newton) or loss (GD)")
    ax2.set_title(f"{data['scale']}: Newton converges to the saddle, GD to the minima", fontsize=9)
    ax2.legend(loc="best", fontsize=7)
    return figures.save(fig, stem)


@figures.register_plot("lecture.tanh_surface")
def plot_tanh_surface(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """The tanh toy's loss on [-lim, lim]^2 (its ravines, saddle and plateaus, the small inits) and the loss
    along gradient descent from zero, small and large initialisations. The surface is the closed-form loss
    on the stored grid size, not an evaluation of a model."""
    lim, pts, gd = data["lim"], data["points"], data["gd"]
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=11, height=4.4, layout="constrained")
    _tanh_contour(ax1, fig, lim, pts)
    ax1.text(0.97 * lim, 0.97 * lim, "plateau 0.25", ha="right", va="top", color="w", fontsize=8)
    ax1.text(0.97 * lim, -0.97 * lim, "plateau 2.25", ha="right", va="bottom", color="k", fontsize=8)
    for i, st in enumerate(data["small_starts"]):
        ax1.plot(st[0], st[1], "o", color=figures.COLORS[1], ms=3, label="small inits" if i == 0 else None)
    ax1.legend(loc="lower left", fontsize=7, framealpha=0.8)
    ax1.set_title(r"$L=(0.5-\tanh(w_1\tanh(w_2/2)))^2$")
    losses = {k: np.asarray(v, float) for k, v in data["losses"].items()}
    steps = np.arange(losses["zero"].shape[0])
    for kind, color, ls, label in (("large", 3, "-", f"large init (|w| ~ {gd['large_init']:g})"),
                                   ("small", 1, "-", f"small init (std {gd['small_init_std']:g})"),
                                   ("zero", 0, "--", "from (0, 0)")):
        for i in range(losses[kind].shape[1]):
            ax2.plot(steps, np.maximum(losses[kind][:, i], 1e-34), color=figures.COLORS[color], ls=ls,
                     lw=1.5 if kind == "zero" else 1, alpha=0.8, label=label if i == 0 else None)
    ax2.axhline(data["converged_loss"], color="k", ls=":", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_xlabel("gradient-descent step")
    ax2.set_ylabel("loss")
    ax2.set_title(f"GD, lr {gd['lr']:g}, {data['n_seeds']} seeds: saddle, convergence, plateau "
                  f"(loss 0 drawn at 1e-34)", fontsize=9)
    ax2.legend(loc="best")
    return figures.save(fig, stem)


@figures.register_plot("lecture.tanh_trajectories")
def plot_tanh_trajectories(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """The paths of each optimizer from one start over the tanh toy's (closed-form) loss contours."""
    lim, pts = data["lim"], data["points"]
    paths = [(p["label"], np.asarray(p["path"], float), p["final_loss"]) for p in data["paths"]]
    fig, ax = figures.new_figure(width=6.5, height=5.2, layout="constrained")
    tlim = max(lim, float(np.abs(np.concatenate([path for _, path, _ in paths])).max()) * 1.05)
    _tanh_contour(ax, fig, tlim, pts)
    for k, (label, path, final) in enumerate(paths):
        ax.plot(path[:, 0], path[:, 1], "-", color=figures.COLORS[k], lw=1.3, label=f"{label} (final L {final:.2g})")
        ax.plot(path[-1, 0], path[-1, 1], "o", color=figures.COLORS[k], ms=4)
    ax.plot(*data["start"], "ks", ms=5)
    ax.legend(loc="lower left", fontsize=6.5, framealpha=0.85)
    ax.set_title(f"optimizers from {tuple(data['start'])}, {data['steps']} steps")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- 2. saddles dominate in high dimension -----

def goe(n: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` GOE matrices of size n: ``(G + G^T) / 2`` with G iid N(0, 1) (diagonal variance 1,
    off-diagonal variance 1/2; positive definiteness does not depend on the overall scale)."""
    g = rng.standard_normal((samples, n, n))
    return 0.5 * (g + np.swapaxes(g, 1, 2))


def positive_definite_count(n: int, samples: int, rng: np.random.Generator, chunk: int = 20000) -> int:
    """How many of ``samples`` GOE(n) matrices have all eigenvalues > 0."""
    count, left = 0, samples
    while left > 0:
        m = min(chunk, left)
        count += int((np.linalg.eigvalsh(goe(n, m, rng))[:, 0] > 0).sum())
        left -= m
    return count


def goe_fractions(n_max: int, samples: int, seed: int) -> list[dict[str, float]]:
    """Per N = 1..n_max: count and fraction positive definite, binomial standard error, and the 95% upper
    bound 3/samples when the count is 0 (rule of three). Each N has its own seeded stream."""
    rows = []
    for n in range(1, n_max + 1):
        count = positive_definite_count(n, samples, np.random.default_rng([seed, n]))
        f = count / samples
        rows.append({"N": n, "count": count, "samples": samples, "fraction": f,
                     "se": math.sqrt(f * (1 - f) / samples),
                     "upper95_if_zero": 3.0 / samples if count == 0 else math.nan,
                     "half_pow_N": 0.5 ** n})
    return rows


def monotone_decreasing(fractions: Sequence[float]) -> bool:
    """Strictly decreasing while positive; a zero must be followed by zeros (it cannot decrease further)."""
    return all(b < a or (a == 0 and b == 0) for a, b in zip(fractions, fractions[1:]))


SADDLES_FROM_N = 2  # the decision's pd_fraction: "at every N >= 2" (checks.default.from_n)


def measure_saddles(rows: Sequence[Mapping[str, float]],
                    from_n: int = SADDLES_FROM_N) -> dict[str, Measured | dict[str, Measured]]:
    """``pd_fraction`` per N >= ``from_n`` (label ``N<n>``): 0.5^N minus the fraction of positive-definite draws,
    with the ``binomial`` tolerance, two binomial standard errors of a fraction 0.5^N over the draws. No such N
    measured: one NaN (inconclusive)."""
    out: dict[str, Measured] = {}
    for r in rows:
        if r["N"] >= from_n:
            half = 0.5 ** r["N"]
            out[f"N{r['N']}"] = Measured(value=half - float(r["fraction"]),
                                         tolerance=binomial_tolerance(half, int(r["samples"])))
    return {"pd_fraction": out or Measured(value=math.nan, tolerance=0.0)}


def claim_saddles_high_dim(params: Mapping[str, Any], check: Mapping[str, Any], decision: Mapping[str, Any],
                           scale: str, out_dir: str | Path) -> ClaimResult:
    out_dir = Path(out_dir)
    rows = goe_fractions(int(params["n_max"]), int(params["samples"]), int(params["seed"]))
    fr = [r["fraction"] for r in rows]
    from_n = SADDLES_FROM_N
    measured_parts = measure_saddles(rows, from_n)
    cd = decide_claim(decision, measured_parts)
    notes = ("shown only, not in the decision: the fraction decreases monotonically in N: "
             + ("yes" if monotone_decreasing(fr) else "no"))
    zeros = [r["N"] for r in rows if r["count"] == 0]
    if zeros:
        notes += (f"; fraction is 0 (0 of {params['samples']}, 95% upper bound {3 / params['samples']:.2g}) "
                  f"for N = {zeros}")

    numbers: dict[str, float] = {}
    for r in rows:
        numbers[f"N{r['N']}.fraction"] = float(r["fraction"])
        numbers[f"N{r['N']}.se"] = float(r["se"])
        if r["N"] >= from_n:
            numbers[f"N{r['N']}.tolerance"] = float(measured_parts["pd_fraction"][f"N{r['N']}"].tolerance)
    table_rows = [{"N": r["N"], "positive_definite": f"{r['count']} of {r['samples']}",
                   "fraction": r["fraction"], "binomial_se": r["se"],
                   "note": (f"0 observed; 95% upper bound {r['upper95_if_zero']:.2g}" if r["count"] == 0 else ""),
                   "0.5^N": r["half_pow_N"],
                   "below_0.5^N": ("" if r["N"] < from_n else ("yes" if r["fraction"] < r["half_pow_N"] else "no")),
                   "effect_0.5^N-fraction": ("" if r["N"] < from_n else r["half_pow_N"] - r["fraction"]),
                   "tolerance": ("" if r["N"] < from_n
                                 else measured_parts["pd_fraction"][f"N{r['N']}"].tolerance)}
                  for r in rows]
    tables = write_table(table_rows, out_dir / "table", title=f"Fraction of positive-definite GOE matrices "
                         f"({scale} scale, {params['samples']} samples per N, seed {params['seed']})")

    figs = figures.render(plot_saddles, {"rows": rows, "samples": params["samples"]}, out_dir / "figure")

    measured = "fraction PD " + ", ".join(
        f"N={r['N']}: {r['fraction']:.3g}" if r["count"] else f"N={r['N']}: 0 (95% bound {3 / r['samples']:.2g})"
        for r in rows)
    regime = (f"no training: {params['samples']} seeded GOE draws per N = 1..{params['n_max']} (seed "
              f"{params['seed']}), eigenvalues by numpy eigvalsh")
    return ClaimResult.from_decision(cd, notes=notes, id="saddles-dominate-high-dim", scale=scale,
                                     measured=measured, n_seeds=1, numbers=numbers,
                                     figures=figs, tables=tables, regime=regime)


@figures.register_plot("lecture.saddles")
def plot_saddles(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """The fraction of positive-definite GOE matrices against N (± binomial se; where none was observed, the
    95% upper bound) beside 0.5^N, log scale."""
    rows, samples = data["rows"], data["samples"]
    fig, ax = figures.new_figure()
    ns = np.array([r["N"] for r in rows])
    pos = np.array([r["count"] > 0 for r in rows])
    f = np.array([r["fraction"] for r in rows])
    se = np.array([r["se"] for r in rows])
    ax.errorbar(ns[pos], f[pos], yerr=se[pos], fmt="o-", color=figures.COLORS[0], capsize=3,
                label="GOE: fraction positive definite (± binomial se)")
    if (~pos).any():
        ax.plot(ns[~pos], np.full((~pos).sum(), 3.0 / samples), "v", color=figures.COLORS[0],
                label=f"0 observed: 95% upper bound 3/{samples}")
    ax.plot(ns, 0.5 ** ns, "--", color=figures.COLORS[1], label="$0.5^N$ (independent signs)")
    ax.set_yscale("log")
    ax.set_xlabel("N (matrix size)")
    ax.set_ylabel("fraction with all eigenvalues > 0")
    ax.set_xticks(ns)
    floor = min([v for v in f[pos]] + [3.0 / samples] + [0.5 ** ns[-1]])
    ax.set_ylim(floor / 100, 1.0)  # room for the legend below the data
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title("random symmetric Hessians: minima become rare")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- 3. redundant parametrisation -------------

def square_loss(w: torch.Tensor) -> torch.Tensor:
    return (w ** 2).sum()


def product_loss(w: torch.Tensor) -> torch.Tensor:
    """``(w1 w2)^2``."""
    return (w[0] * w[1]) ** 2


def product_hessian(point: Sequence[float]) -> np.ndarray:
    return _hessian(product_loss, point)


def product_gradient(point: Sequence[float]) -> np.ndarray:
    w = torch.tensor([float(v) for v in point], dtype=DTYPE, requires_grad=True)
    (g,) = torch.autograd.grad(product_loss(w), w)
    return g.numpy()


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def rescale_relu_mlp(model: nn.Module, c: float) -> nn.Module:
    """A copy of a one-hidden-layer ReLU MLP with layer 1's weight and bias times ``c`` and layer 2's weight
    divided by ``c``: for c > 0 the same function, since relu(c z) = c relu(z)."""
    if c <= 0:
        raise ValueError("the ReLU rescaling needs c > 0")
    out = copy.deepcopy(model)
    lin = linear_layers(out)
    if len(lin) != 2:
        raise ValueError(f"expected a one-hidden-layer MLP (2 linear layers), found {len(lin)}")
    with torch.no_grad():
        lin[0].weight.mul_(c)
        lin[0].bias.mul_(c)
        lin[1].weight.div_(c)
    return out


def loss_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The exact Hessian of the mean cross-entropy w.r.t. all parameters (flattened, ``named_parameters``
    order), via ``torch.func.hessian`` of a ``functional_call`` on the flat vector."""
    theta = flatten(model)

    def loss_at(vec: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(model, unflatten(model, vec), (x,)), y)

    return torch.func.hessian(loss_at)(theta)


def top_eigenvalue(h: torch.Tensor) -> float:
    return float(torch.linalg.eigvalsh(0.5 * (h + h.T))[-1])


def tiny_mlp_problem(mlp: Mapping[str, Any]) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The seeded tiny ReLU MLP (widths, in_features -> num_classes, float64), random inputs and labels, and
    ``train_steps`` of full-batch GD on the cross-entropy at ``train_lr`` (0 steps: the initialisation)."""
    gen = torch.Generator().manual_seed(int(mlp["seed"]))
    x = torch.randn(int(mlp["n_inputs"]), int(mlp["in_features"]), generator=gen, dtype=DTYPE)
    y = torch.randint(0, int(mlp["num_classes"]), (int(mlp["n_inputs"]),), generator=gen)
    torch.manual_seed(int(mlp["seed"]))
    model = build({"name": "mlp", "widths": list(mlp["widths"])}, (int(mlp["in_features"]),),
                  int(mlp["num_classes"])).to(DTYPE)
    opt = torch.optim.SGD(model.parameters(), lr=float(mlp.get("train_lr", 0.1)))
    for _ in range(int(mlp.get("train_steps", 0))):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


def rescaling_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    cs: Sequence[float]) -> list[dict[str, float]]:
    """Per c: the max abs output difference to the original net and the top Hessian eigenvalue."""
    with torch.no_grad():
        ref = model(x)
    rows = []
    for c in cs:
        m = rescale_relu_mlp(model, float(c))
        with torch.no_grad():
            diff = float((m(x) - ref).abs().max())
        rows.append({"c": float(c), "max_abs_output_diff": diff, "top_eig": top_eigenvalue(loss_hessian(m, x, y))})
    return rows


def redundant_deviations(sq: float, valley: Sequence[Mapping[str, float]],
                         other: Sequence[tuple[float, np.ndarray]]) -> dict[str, float]:
    """The absolute deviation of every derived value: the Hessian 2 of w^2; on the valley of (w1 w2)^2 at (a, 0)
    loss 0, gradient 0 and eigenvalues (0, 2a^2); at (0, a) eigenvalues (0, 2a^2) (``other``: (a, eigenvalues))."""
    dev = {"square.hessian": abs(sq - 2.0)}
    for v in valley:
        key = f"valley.a{v['a']:g}"
        dev.update({f"{key}.eig_min": abs(v["eig_min"]), f"{key}.eig_max": abs(v["eig_max"] - v["derived_max"]),
                    f"{key}.loss": abs(v["loss"]), f"{key}.grad_norm": abs(v["grad_norm"])})
    for a, e in other:
        dev.update({f"valley_w2.a{a:g}.eig_min": abs(float(e[0])),
                    f"valley_w2.a{a:g}.eig_max": abs(float(e[1]) - 2.0 * float(a) ** 2)})
    return {k: float(v) for k, v in dev.items()}


def measure_redundant(deviations: Mapping[str, float], max_output_diff: float,
                      eig_ratio: float) -> dict[str, Measured]:
    """``derived_values``: minus the largest deviation; ``output_invariance``: minus the largest output difference
    after the rescaling; ``lambda_max_factor``: the top Hessian eigenvalue after the rescaling / before."""
    return {"derived_values": Measured(value=-largest_deviation(deviations)),
            "output_invariance": Measured(value=-float(max_output_diff)),
            "lambda_max_factor": Measured(value=float(eig_ratio))}


def claim_redundant_flatness(params: Mapping[str, Any], check: Mapping[str, Any], decision: Mapping[str, Any],
                             scale: str, out_dir: str | Path) -> ClaimResult:
    out_dir = Path(out_dir)
    c_check = float(check["c"])

    sq = float(_hessian(square_loss, (0.0,))[0, 0])
    valley = []
    for a in params["valley_points"]:
        eig = _eigs(product_hessian((a, 0.0)))
        valley.append({"a": float(a), "eig_min": float(eig[0]), "eig_max": float(eig[1]),
                       "derived_max": 2.0 * float(a) ** 2,
                       "loss": float(product_loss(torch.tensor([a, 0.0], dtype=DTYPE))),
                       "grad_norm": float(np.linalg.norm(product_gradient((a, 0.0))))})
    # also on the other branch of the valley, {w1 = 0}: Hessian at (0, a) = diag(2 a^2, 0)
    other = [_eigs(product_hessian((0.0, a))) for a in params["valley_points"]]

    model, x, y = tiny_mlp_problem(params["mlp"])
    with torch.no_grad():
        logits = model(x)
        train_loss = float(nn.functional.cross_entropy(logits, y))
        train_acc = float((logits.argmax(1) == y).double().mean())
    cs = sorted({float(c) for c in params["c_grid"]} | {1.0, c_check})
    sweep = rescaling_sweep(model, x, y, cs)
    by_c = {r["c"]: r for r in sweep}
    ratio = by_c[c_check]["top_eig"] / by_c[1.0]["top_eig"]
    max_diff = max(r["max_abs_output_diff"] for r in sweep)
    n_params = sum(p.numel() for p in model.parameters())

    deviations = redundant_deviations(sq, valley, list(zip(params["valley_points"], other)))
    worst = max(deviations, key=lambda k: deviations[k])
    cd = decide_claim(decision, measure_redundant(deviations, max_diff, ratio))
    notes = f"largest deviation from a derived value {deviations[worst]:.2g} ({worst})"

    numbers: dict[str, float] = {"square.hessian": sq, "mlp.n_params": float(n_params),
                                 "mlp.top_eig_ratio_at_c": float(ratio), "mlp.max_abs_output_diff": max_diff,
                                 "derived.max_deviation": deviations[worst], "mlp.train_loss": train_loss,
                                 "mlp.train_accuracy": train_acc}
    for v in valley:
        numbers[f"valley.a{v['a']:g}.eig_min"] = v["eig_min"]
        numbers[f"valley.a{v['a']:g}.eig_max"] = v["eig_max"]
    for r in sweep:
        numbers[f"mlp.c{r['c']:g}.top_eig"] = r["top_eig"]
        numbers[f"mlp.c{r['c']:g}.max_abs_output_diff"] = r["max_abs_output_diff"]

    rows = [{"part": "w^2 at w=0", "point": "0", "derived": "Hessian 2", "measured": f"{sq:.9g}", "detail": ""}]
    for v in valley:
        rows.append({"part": "(w1 w2)^2 on the valley", "point": f"({v['a']:g}, 0)",
                     "derived": f"eig (0, {v['derived_max']:g})",
                     "measured": f"eig ({v['eig_min']:.3g}, {v['eig_max']:.9g})",
                     "detail": f"L={v['loss']:.2g}, |grad|={v['grad_norm']:.2g}"})
    for e, a in zip(other, params["valley_points"]):
        rows.append({"part": "(w1 w2)^2 on the valley", "point": f"(0, {a:g})", "derived": f"eig (0, {2 * a * a:g})",
                     "measured": f"eig ({e[0]:.3g}, {e[1]:.9g})", "detail": ""})
    rows.append({"part": "largest deviation from a derived value (decides)", "point": worst, "derived": 0.0,
                 "measured": f"{deviations[worst]:.3g}", "detail": ""})
    mlp = params["mlp"]
    rows.append({"part": "ReLU MLP training", "point": f"{mlp.get('train_steps', 0)} GD steps, lr "
                 f"{mlp.get('train_lr', 0.1)}", "derived": "", "measured": f"train loss {train_loss:.4g}",
                 "detail": f"train accuracy {100 * train_acc:.0f}% on {mlp['n_inputs']} random inputs"})
    for r in sweep:
        rows.append({"part": f"ReLU MLP {mlp['in_features']}-{'-'.join(map(str, mlp['widths']))}-"
                             f"{mlp['num_classes']} ({n_params} params)",
                     "point": f"c = {r['c']:g}", "derived": "same outputs",
                     "measured": f"top Hessian eig {r['top_eig']:.5g}",
                     "detail": f"max |output diff| {r['max_abs_output_diff']:.2g}"})
    tables = write_table(rows, out_dir / "table", title=f"Redundant parametrisation ({scale} scale)",
                         columns=("part", "point", "derived", "measured", "detail"))

    data = {"lim": 1.2 * max(abs(float(a)) for a in params["valley_points"]), "square_hessian": sq,
            "valley": [{"a": v["a"], "eig_max": v["eig_max"]} for v in valley],
            "sweep": [{"c": r["c"], "top_eig": r["top_eig"]} for r in sweep], "c_check": c_check,
            "max_diff": max_diff, "ratio": ratio}
    figs = figures.render(plot_redundant_flatness, data, out_dir / "figure")

    measured = (f"w^2 Hessian {sq:.6g}; (w1w2)^2 eig " + ", ".join(
        f"({v['a']:g},0): ({v['eig_min']:.2g}, {v['eig_max']:.6g})" for v in valley)
        + f"; MLP rescaling: max output diff {max_diff:.1g}, top eig c=1 {by_c[1.0]['top_eig']:.4g} -> "
          f"c={c_check:g} {by_c[c_check]['top_eig']:.4g} (x{ratio:.3g})")
    regime = (f"exact float64 autograd Hessians of w^2 and (w1 w2)^2 (no training); the ReLU MLP after "
              f"{mlp.get('train_steps', 0)} full-batch GD steps at lr {mlp.get('train_lr', 0.1)} on "
              f"{mlp['n_inputs']} random inputs (seed {mlp['seed']}): train loss {train_loss:.3g}, train accuracy "
              f"{100 * train_acc:.0f}%")
    return ClaimResult.from_decision(cd, notes=notes, id="redundant-overparam-flatness", scale=scale,
                                     measured=measured, n_seeds=1, numbers=numbers,
                                     figures=figs, tables=tables, regime=regime)


@figures.register_plot("lecture.redundant_flatness")
def plot_redundant_flatness(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """(w1 w2)^2 (closed form) with its valley of minima and the Hessian's eigenvalues at the checked points;
    the top Hessian eigenvalue of the ReLU MLP against the rescaling c (same outputs)."""
    lim, sq, valley, sweep = data["lim"], data["square_hessian"], data["valley"], data["sweep"]
    c_check, max_diff, ratio = data["c_check"], data["max_diff"], data["ratio"]
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=11, height=4.4, layout="constrained")
    g = np.linspace(-lim, lim, 301)
    w1, w2 = np.meshgrid(g, g)
    z = (w1 * w2) ** 2
    cs_ = ax1.contourf(w1, w2, np.log10(z + 1e-3), levels=30, cmap=figures.SEQUENTIAL_CMAP)
    fig.colorbar(cs_, ax=ax1, label=r"$\log_{10}((w_1 w_2)^2 + 10^{-3})$")
    ax1.axhline(0, color="w", lw=2)
    ax1.axvline(0, color="w", lw=2, label="valley of minima (L = 0)")
    for k, v in enumerate(valley):
        ax1.plot(v["a"], 0, "o", color=figures.COLORS[3], ms=5)
        ax1.annotate(f"({v['a']:g}, 0)\nHessian eig (0, {v['eig_max']:.3g})", (v["a"], 0),
                     xytext=(0, 14 if k % 2 else -30), textcoords="offset points", color="w", fontsize=7.5,
                     ha="right" if v["a"] > 0.5 * lim else ("left" if v["a"] < -0.5 * lim else "center"))
    ax1.set_xlabel("$w_1$")
    ax1.set_ylabel("$w_2$")
    ax1.set_aspect("equal")
    ax1.grid(False)
    ax1.legend(loc="lower left", fontsize=7)
    ax1.set_title(r"$(w_1 w_2)^2$: a valley of minima, curvature $2a^2$ at $(a, 0)$"
                  f"\n($w^2$: one isolated minimum, Hessian {sq:.3g})", fontsize=9)
    cc = np.array([r["c"] for r in sweep])
    ax2.plot(cc, [r["top_eig"] for r in sweep], "o-", color=figures.COLORS[0], label="top Hessian eigenvalue")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("rescaling c (layer 1 × c, layer 2 weight / c)")
    ax2.set_ylabel("top eigenvalue of the loss Hessian")
    ax2.axvline(c_check, color="k", ls=":", lw=0.8)
    ax2.set_title(f"ReLU rescaling: same outputs (max diff {max_diff:.1g}),\ndifferent top eigenvalue "
                  f"(x{ratio:.3g} at c = {c_check:g})", fontsize=9)
    ax2.legend(loc="best")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- 4. Wilson et al.'s separable toy ----------

def wilson_data(n: int, p: float, n_test: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Wilson et al. (2017) Sec. 3.3: y_i = +1 with probability p, else -1; x_i1 = y_i, x_i2 = x_i3 = 1, and
    sample i owns the features 4 + 5(i-1), ..., 4 + 5(i-1) + 2(1 - y_i) (1-based): one feature set to 1 if
    y_i = +1, five if y_i = -1; every other feature is 0. Training and test samples are drawn together
    (n + n_test of them, dimension d = 6 (n + n_test) as in the reference code), so every test sample has
    unique features of its own that no training sample touches. Returns X_train, y_train, X_test, y_test."""
    total = n + n_test
    y = np.where(rng.random(total) < p, 1.0, -1.0)
    x = np.zeros((total, 6 * total))
    x[:, 0] = y
    x[:, 1:3] = 1.0
    for i in range(total):
        k = 1 if y[i] > 0 else 5
        x[i, 3 + 5 * i: 3 + 5 * i + k] = 1.0
    return x[:n], y[:n], x[n:], y[n:]


def ls_loss(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Least squares ``||X w - y||^2 / (2 n)``."""
    return 0.5 * ((x @ w - y) ** 2).mean()


WILSON_METHODS = ("gd", "sgd", "adagrad", "adam")
WILSON_LABELS = {"gd": "GD", "sgd": "SGD", "adagrad": "AdaGrad", "adam": "Adam"}
ADAPTIVE = ("adagrad", "adam")


def wilson_fit(method: str, x: np.ndarray, y: np.ndarray, cfg: Mapping[str, Any],
               seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Minimise the least-squares loss from w = 0 with ``method``. gd/adagrad/adam: ``steps`` full-batch
    steps at ``lr``; sgd: ``epochs`` of shuffled minibatches of ``batch_size`` at ``lr`` (seeded). Returns
    the weights and the training loss after each step / epoch (index 0: at w = 0)."""
    xt, yt = torch.tensor(x, dtype=DTYPE), torch.tensor(y, dtype=DTYPE)
    w = torch.zeros(x.shape[1], dtype=DTYPE, requires_grad=True)
    lr = float(cfg["lr"])
    opt = {"gd": lambda: torch.optim.SGD([w], lr=lr), "sgd": lambda: torch.optim.SGD([w], lr=lr),
           "adagrad": lambda: torch.optim.Adagrad([w], lr=lr), "adam": lambda: torch.optim.Adam([w], lr=lr)}
    if method not in opt:
        raise ValueError(f"unknown method {method!r}; known: {WILSON_METHODS}")
    opt = opt[method]()
    hist = [float(ls_loss(xt, yt, w.detach()))]
    if method == "sgd":
        gen = torch.Generator().manual_seed(int(seed))
        bs = int(cfg["batch_size"])
        for _ in range(int(cfg["epochs"])):
            for idx in torch.randperm(len(yt), generator=gen).split(bs):
                opt.zero_grad()
                ls_loss(xt[idx], yt[idx], w).backward()
                opt.step()
            hist.append(float(ls_loss(xt, yt, w.detach())))
    else:
        for t in range(int(cfg["steps"])):
            opt.zero_grad()
            loss = ls_loss(xt, yt, w)
            if t:
                hist.append(float(loss.detach()))  # the loss at the current iterate (index t)
            loss.backward()
            opt.step()
        hist.append(float(ls_loss(xt, yt, w.detach())))
    return w.detach().numpy(), hist


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """+1 where x.w > 0, else -1."""
    return np.where(x @ w > 0, 1.0, -1.0)


def wilson_evaluate(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = predict(w, x)
    return {"error": float(np.mean(pred != y)), "frac_positive": float(np.mean(pred > 0))}


def min_norm_solution(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.pinv(x) @ y


def wilson_seed(params: Mapping[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """All methods on one seed's data. Also records, per method, the largest |weight| on the features no
    training sample touches (0 exactly: their gradient is 0, so no method can move them)."""
    xtr, ytr, xte, yte = wilson_data(int(params["n"]), float(params["p"]), int(params["n_test"]),
                                     np.random.default_rng(seed))
    unseen = ~np.any(xtr != 0, axis=0)
    w_mn = min_norm_solution(xtr, ytr)
    out = {}
    for m in WILSON_METHODS:
        w, hist = wilson_fit(m, xtr, ytr, params["methods"][m], seed=seed)
        out[m] = {"w": w, "hist": hist, "train_loss": hist[-1], **wilson_evaluate(w, xte, yte),
                  "train_error": wilson_evaluate(w, xtr, ytr)["error"],
                  "unseen_weight_max": float(np.abs(w[unseen]).max()) if unseen.any() else 0.0,
                  "dist_to_min_norm": float(np.linalg.norm(w - w_mn))}
    out["_data"] = {"n_pos": int((ytr > 0).sum()), "n_test": len(yte), "test_neg_frac": float(np.mean(yte < 0)),
                    "min_norm_test_error": wilson_evaluate(w_mn, xte, yte)["error"]}
    return out


def wilson_steps(method: str, cfg: Mapping[str, Any], n: int) -> int:
    """The optimizer steps of ``method``: ``steps`` full-batch steps, or (sgd) ``epochs`` x minibatches."""
    if method == "sgd":
        return int(cfg["epochs"]) * math.ceil(n / int(cfg["batch_size"]))
    return int(cfg["steps"])


def measure_wilson(errors: Mapping[str, Sequence[float]]) -> dict[str, Measured]:
    """``adaptive_worse``, one sample per seed: the test error of the worse adaptive method (AdaGrad, Adam) minus
    GD's, paired by seed (``errors``: method -> test error per seed, same seed order; NaN stays NaN)."""
    worse = np.max(np.stack([np.asarray(errors[m], float) for m in ADAPTIVE]), axis=0)
    return {"adaptive_worse": Measured(samples=[float(v) for v in worse - np.asarray(errors["gd"], float)])}


def claim_wilson_toy(params: Mapping[str, Any], check: Mapping[str, Any], decision: Mapping[str, Any],
                     scale: str, out_dir: str | Path) -> ClaimResult:
    out_dir = Path(out_dir)
    seeds = list(params["seeds"])
    p = float(params["p"])
    res = {s: wilson_seed(params, s) for s in seeds}
    get = {m: {k: [res[s][m][k] for s in seeds] for k in ("error", "frac_positive", "train_loss", "train_error",
                                                           "unseen_weight_max", "dist_to_min_norm")}
           for m in WILSON_METHODS}
    measured_parts = measure_wilson({m: get[m]["error"] for m in WILSON_METHODS})
    cd = decide_claim(decision, measured_parts)
    tol, min_pos = float(check["adaptive_tol"]), float(check["min_positive_fraction"])
    shown = [f"GD test error 0 in every seed: {'yes' if all(e == 0.0 for e in get['gd']['error']) else 'no'}"]
    for m in ADAPTIVE:
        err, pos = get[m]["error"], get[m]["frac_positive"]
        held = all(abs(e - (1 - p)) <= tol for e in err) and all(f >= min_pos for f in pos)
        shown.append(f"{WILSON_LABELS[m]} within {tol:g} of 1-p and predicting + on >= {min_pos:.0%} of the test "
                     f"points in every seed: {'yes' if held else 'no'}")
    notes = "shown only, not in the decision (the old checks): " + "; ".join(shown)
    steps = {m: wilson_steps(m, params["methods"][m], int(params["n"])) for m in WILSON_METHODS}

    numbers: dict[str, float] = {}
    for m in WILSON_METHODS:
        for k, vals in get[m].items():
            for s, v in zip(seeds, vals):
                numbers[f"{m}.seed{s}.{k}"] = float(v)
    for s, d in zip(seeds, measured_parts["adaptive_worse"].samples):
        numbers[f"adaptive_worse.seed{s}"] = float(d)
    for s in seeds:
        numbers[f"data.seed{s}.test_neg_frac"] = res[s]["_data"]["test_neg_frac"]
        numbers[f"data.seed{s}.min_norm_test_error"] = res[s]["_data"]["min_norm_test_error"]

    rows = []
    for m in WILSON_METHODS:
        cfg = params["methods"][m]
        budget = (f"lr {cfg['lr']}, {cfg['epochs']} epochs, batch {cfg['batch_size']}" if m == "sgd"
                  else f"lr {cfg['lr']}, {cfg['steps']} steps")
        rows.append({"method": WILSON_LABELS[m], "train_loss_max": max(get[m]["train_loss"]),
                     "train_error": pm(get[m]["train_error"], 100, 1) + "%",
                     "test_error": pm(get[m]["error"], 100, 1) + "%",
                     "frac_predicted_positive": pm(get[m]["frac_positive"], 100, 1) + "%",
                     "dist_to_min_norm": pm(get[m]["dist_to_min_norm"], 1, 3), "budget": budget,
                     "seeds": len(seeds), "steps": steps[m],
                     "train_loss": pm(get[m]["train_loss"], 1, 3),
                     "train_accuracy": pm([1 - e for e in get[m]["train_error"]], 100, 1) + "%",
                     "test_accuracy": pm([1 - e for e in get[m]["error"]], 100, 1) + "%"})
    neg = [res[s]["_data"]["test_neg_frac"] for s in seeds]
    rows.append({"method": "(test negatives = error of 'always +')", "train_loss_max": "", "train_error": "",
                 "test_error": pm(neg, 100, 1) + "%", "frac_predicted_positive": "", "dist_to_min_norm": "",
                 "budget": f"1-p = {100 * (1 - p):.0f}%", "seeds": len(seeds), "steps": "", "train_loss": "",
                 "train_accuracy": "", "test_accuracy": ""})
    tables = write_table(rows, out_dir / "table", title=(
        f"Wilson et al. toy ({scale} scale): n={params['n']}, p={p}, d=6(n+n_test), {params['n_test']} test "
        f"points, least squares from w=0, seeds {seeds}"))

    data = {"p": p, "seed": seeds[0], "n_seeds": len(seeds),
            "error": {m: get[m]["error"] for m in WILSON_METHODS},
            "frac_positive": {m: get[m]["frac_positive"] for m in WILSON_METHODS},
            "hist": {m: res[seeds[0]][m]["hist"] for m in WILSON_METHODS}}
    figs = figures.render(plot_wilson, data, out_dir / "figure")

    measured = "test error (predicted +): " + "; ".join(
        f"{WILSON_LABELS[m]} {pm(get[m]['error'], 100, 1)}% ({pm(get[m]['frac_positive'], 100, 0)}%)"
        for m in WILSON_METHODS) + f"; 1-p = {100 * (1 - p):.0f}%"
    regime = (f"least squares from w = 0 on n={params['n']} training points, {len(seeds)} seeds: " + "; ".join(
        f"{WILSON_LABELS[m]} {steps[m]} steps, train loss <= {max(get[m]['train_loss']):.2g}, train accuracy >= "
        f"{100 * (1 - max(get[m]['train_error'])):.0f}%, mean test accuracy {100 * (1 - np.mean(get[m]['error'])):.1f}%"
        for m in WILSON_METHODS))
    return ClaimResult.from_decision(cd, notes=notes, id="wilson-adaptive-generalize-worse", scale=scale,
                                     measured=measured, n_seeds=len(seeds),
                                     numbers=numbers, figures=figs, tables=tables, regime=regime)


@figures.register_plot("lecture.wilson")
def plot_wilson(data: Mapping[str, Any], stem: str | Path) -> list[str]:
    """Test error of each method (bars: means, dots: seeds, with the share it predicts positive) against the
    error of always predicting +, and the training loss of one seed per step (SGD: per epoch)."""
    p, s0 = data["p"], data["seed"]
    fig, (ax1, ax2) = figures.new_figure(ncols=2, width=10.5, height=4.0, layout="constrained")
    x = np.arange(len(WILSON_METHODS))
    for i, m in enumerate(WILSON_METHODS):
        e = 100 * np.array(data["error"][m])
        ax1.bar(i, e.mean(), color=figures.COLORS[i], alpha=0.7)
        ax1.plot(np.full(len(e), i), e, "k.", ms=4)
        ax1.text(i, e.max() + 1, f"predicts +\n{100 * np.mean(data['frac_positive'][m]):.0f}%", ha="center",
                 va="bottom", fontsize=7.5)
    ax1.axhline(100 * (1 - p), color="k", ls="--", lw=0.8, label=f"1 - p = {100 * (1 - p):.0f}% (always +)")
    ax1.set_xticks(x, [WILSON_LABELS[m] for m in WILSON_METHODS])
    ax1.set_ylabel("test error (%)")
    ax1.set_ylim(0, max(45.0, 100 * max(max(data["error"][m]) for m in WILSON_METHODS) + 12))
    ax1.legend(loc="upper left")
    ax1.set_title(f"test error, {data['n_seeds']} seeds (dots)")
    for i, m in enumerate(WILSON_METHODS):
        h = np.maximum(np.array(data["hist"][m], dtype=float), 1e-32)
        ax2.plot(np.arange(len(h)), h, color=figures.COLORS[i],
                 label=f"{WILSON_LABELS[m]}" + (" (per epoch)" if m == "sgd" else " (per step)"))
    ax2.set_xscale("symlog", linthresh=10)
    ax2.set_yscale("log")
    ax2.set_xlabel("step (SGD: epoch)")
    ax2.set_ylabel("training loss")
    ax2.set_title(f"training loss, seed {s0}")
    ax2.legend(loc="best")
    return figures.save(fig, stem)


# ---------------------------------------------------------------- dispatch ----------------------------------

TOYS: dict[str, Callable[..., ClaimResult]] = {
    "tanh-toy-surface": claim_tanh_surface,
    "newton-attracted-to-saddles": claim_newton_saddles,
    "saddles-dominate-high-dim": claim_saddles_high_dim,
    "redundant-overparam-flatness": claim_redundant_flatness,
    "wilson-adaptive-generalize-worse": claim_wilson_toy,
}


def run_toy(job: ClaimJob) -> ClaimResult:
    """The toy claim with the scale's ``toys.<claim id>`` settings (the rule's ``toy``), decided by the claim's
    pre-registered ``decision``."""
    return TOYS[job.id](job.params["toy"], job.check, job.claim["decision"], job.scale, job.out_dir)


CLAIMS = {claim_id: run_toy for claim_id in TOYS}
