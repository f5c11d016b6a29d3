"""An independent recomputation of a finished run's curvature numbers (issue #15's review, as a tool).

    python tests/benchmarks/curvature_audit.py results/smoke [--config config/scales/smoke.yaml] [--skip-maps]

Three checks, each by a method other than the one that produced the stored numbers:

1. **Hessian spectra** (``claims/*/spectra.h5``): the stored top-k of every network against the exact Hessian
   (``TrainingLoss.hessian_matrix`` + ``numpy.linalg.eigvalsh``) on the same loss (the experiment's
   ``spectrum`` settings); prints the largest ``|stored - exact| / lambda_max`` and whether the file says
   converged.
2. **Eigenvalue-ratio maps** (every ``ratio_map.h5`` under the results): ``lambda_max`` and ``lambda_min`` of
   every cell by ARPACK (``scipy.sparse.linalg.eigsh`` on the Hessian-vector product, ``tol=1e-8``, a
   20-vector basis) against the stored ones, relative to each value.
3. **Epsilon-sharpness** (``sharpness/**.json``): for every network, space and ``eps``, the loss at the box's
   sign-gradient corner ``y = h sign(A^T grad f)``; the stored maximum must be at least that.

A line per item and a summary; the exit status is 1 when any stored value that says it is converged (or any
sharpness maximum) fails its check. One thread. Not a test (minutes of CPU on the smoke results).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse.linalg
import torch
import yaml

from losslab import io as lio
from losslab.claims.sharpness import spectra
from losslab.core.data import prepare, subset
from losslab.core.directions import load_directions
from losslab.core.hessian import TrainingLoss
from losslab.core.models import build
from losslab.core.weights import flatten
from losslab.core.surfaces import AffineSpan, read_surface


def _model(run: dict, path: Path):
    return spectra.load_trained(run, path)


def audit_spectra(root: Path, experiments: dict) -> list[str]:
    failures = []
    for path in sorted(root.glob("claims/*/spectra.h5")):
        claim = path.parent.name
        exp = next(n for n, e in experiments.items() if e.get("claim") == claim)
        settings = {**spectra.SPECTRUM_DEFAULTS, **experiments[exp]["spectrum"]}
        with h5py.File(path) as f:
            for variant in f:
                for seed_key in f[variant]:
                    g = f[variant][seed_key]
                    top, converged = g["top"][()], bool(g.attrs["converged"])
                    d = root / "runs" / exp / variant / seed_key
                    run = lio.read_json(d / "metrics.json")["run"]
                    model, data = _model(run, d / "model.pt")
                    loss = spectra.evaluation_loss(model, data, spectra._loss_name(run), settings)
                    exact = np.linalg.eigvalsh(loss.hessian_matrix().double().numpy())[::-1][:len(top)]
                    err = float(np.max(np.abs(top - exact)) / exact[0])
                    ok = err <= float(settings["tol"]) or not converged
                    print(f"spectrum {claim} {variant} {seed_key}: dim {loss.dim}, max |stored - exact| / "
                          f"lambda_max = {err:.2e} (tol {settings['tol']:g}), converged {converged}"
                          + ("" if ok else "  <-- FAIL"))
                    if not ok:
                        failures.append(f"{claim} {variant} {seed_key}")
    return failures


def _arpack(loss: TrainingLoss, w: torch.Tensor, which: str) -> float:
    op = scipy.sparse.linalg.LinearOperator(
        (loss.dim, loss.dim), dtype=np.float64,
        matvec=lambda v: loss.hvp(torch.from_numpy(np.ascontiguousarray(v).ravel()), w).double().numpy())
    v0 = np.random.default_rng(0).standard_normal(loss.dim)
    return float(scipy.sparse.linalg.eigsh(op, k=1, which=which, tol=1e-8, ncv=20, v0=v0,
                                           return_eigenvectors=False)[0])


def audit_ratio_maps(root: Path, experiments: dict) -> list[str]:
    failures = []
    for path in sorted(root.rglob("ratio_map.h5")):
        m = read_surface(path)
        directions = path.with_name("directions.h5")
        seed_dir, variant = path.parent.name, path.parent.parent.name
        exp = next(n for n, e in experiments.items() if variant in e.get("variants", {}))
        d = root / "runs" / exp / variant / seed_dir
        run = lio.read_json(d / "metrics.json")["run"]
        model, data = _model(run, d / "model.pt")
        spec = json.loads(m.spec) if isinstance(m.spec, str) else m.spec
        n_train = spec["provenance"]["n_train"]
        x, y = subset(data.x_train, data.y_train, n_train, seed=3)
        loss = TrainingLoss(model, x, y, loss=spectra._loss_name(run), bn=spec["loss"]["bn"],
                            chunk=spec["loss"].get("chunk", 1000))
        dirs = load_directions(directions)
        span = AffineSpan(flatten(model), dirs.x, dirs.y)
        tol = float(spec["lanczos"]["tol"])
        certified = m.get("certified")
        worst, bad = 0.0, 0
        for i, a in enumerate(m.xcoordinates):
            for j, b in enumerate(m.ycoordinates):
                w = span.point(float(a), float(b))
                hi, lo = _arpack(loss, w, "LA"), _arpack(loss, w, "SA")
                floor = 1e-3 * abs(hi)
                e_hi = abs(m["lambda_max"][i, j] - hi) / abs(hi)
                e_lo = abs(m["lambda_min"][i, j] - lo) / max(abs(lo), floor)
                worst = max(worst, e_hi, e_lo)
                claims_ok = certified is None or certified[i, j] == 1
                if max(e_hi, e_lo) > 2 * tol and claims_ok:
                    bad += 1
        print(f"ratio map {path.relative_to(root)}: dim {loss.dim}, worst relative error of an end {worst:.2e} "
              f"(tol {tol:g}), {bad} certified cell(s) off by more than 2 tol"
              + (f", {int(np.sum(certified < 1))} uncertified" if certified is not None else ", no certificate")
              + ("  <-- FAIL" if bad else ""))
        if bad:
            failures.append(str(path.relative_to(root)))
    return failures


def audit_sharpness(root: Path) -> list[str]:
    failures = []
    for path in sorted(root.glob("sharpness/**/*.json")):
        rec = lio.read_json(path)
        if "runs" not in rec:
            continue
        s = rec["settings"]
        cache = {}
        for r in rec["runs"]:
            if r["diverged"]:
                continue
            d = Path(rec["run_dir"]) / r["dir"]
            m = lio.read_json(d / "metrics.json")
            run = m["run"]
            key = repr(sorted(run["dataset"].items()))
            if key not in cache:
                data = prepare(run["dataset"], data_dir=None, resources="resources")
                cache[key] = (data, *subset(data.x_train, data.y_train, s["n_train"], seed=3))
            data, x, y = cache[key]
            model = build(run["model"], data.input_shape, data.num_classes)
            lio.load_state_dict(model, d / "model.pt")
            model.eval()
            loss = TrainingLoss(model, x, y, loss=run.get("recipe", {}).get("loss", "ce"), bn=s["bn"],
                                chunk=s["chunk"])
            x0 = loss.point.double()
            _, g = loss.value_and_grad(x0)
            g = g.double()
            for v in r["values"]:
                eps = v["eps"]
                if v["space"] == "full":
                    corner = x0 + eps * (x0.abs() + 1) * torch.where(g >= 0, 1.0, -1.0).double()
                else:
                    a = torch.randn(loss.dim, v["p"], generator=torch.Generator().manual_seed(s["subspace_seed"]),
                                    dtype=torch.float64)
                    h = eps * ((torch.linalg.pinv(a) @ x0).abs() + 1)
                    corner = x0 + a @ (h * torch.where(a.T @ g >= 0, 1.0, -1.0).double())
                f_corner = loss.value(corner)
                ok = v["max_loss"] >= f_corner * (1 - 1e-9)
                print(f"sharpness {path.relative_to(root)} {r['dir']} {v['space']} eps {eps:g}: stored max "
                      f"{v['max_loss']:.4g} ({v.get('start', 'zero')}), sign-gradient corner {f_corner:.4g}"
                      + ("" if ok else f"  <-- FAIL (x{f_corner / v['max_loss']:.1f})"))
                if not ok:
                    failures.append(f"{path.relative_to(root)} {r['dir']} {v['space']} {eps:g}")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="results/<scale>")
    p.add_argument("--config", type=Path, default=None, help="the scale file (default: config/scales/<scale>.yaml)")
    p.add_argument("--skip-maps", action="store_true", help="leave out the ratio maps (the slow part)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    config = args.config or Path("config/scales") / f"{args.results.name}.yaml"
    experiments = yaml.safe_load(config.read_text())["experiments"]
    failures = audit_spectra(args.results, experiments)
    failures += audit_sharpness(args.results)
    if not args.skip_maps:
        failures += audit_ratio_maps(args.results, experiments)
    print(f"{len(failures)} failure(s)" + (": " + "; ".join(failures) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
