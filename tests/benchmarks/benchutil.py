"""The benchmark suite's helpers: the baselines losslab is compared with, the timing helpers and the ratios
measured (printed at the end of the run by tests/conftest.py).

Run the suite with ``pytest -m benchmark tests/benchmarks`` (tests/conftest.py marks everything here
``benchmark`` and deselects it from every other run). Each benchmark times the losslab path and its baseline
in the same run, in interleaved rounds (the order alternating), either keeping the fastest as CPU time of the
one working thread (``time.thread_time``: on a shared machine, wall time also counts the time other
processes hold the core, which made the same ratio swing between 0.65 and 1.0 from round to round) or, where
the losslab path waits on the disk (a surface's fsyncs, which thread time does not count), as the median over
rounds of the paired wall-time ratio (:func:`timing.median_ratio`); it stores the rates and ratios in
``benchmark.extra_info`` (kept by ``--benchmark-json``) and prints them in a summary at the end.
Benchmarks never pass or fail on time; they assert only that both paths compute the same thing.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from losslab.core.hessian import HessianOperator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this file
from timing import best_seconds, median_ratio, pin_malloc, round_seconds  # noqa: E402,F401 (shared with tests/benchmarks/pattern_speed.py)

RATIOS: list[str] = []


def record(benchmark, name: str, **info: float | int | str) -> None:
    """Store ``info`` on the benchmark (``--benchmark-json`` keeps it) and queue a line of the summary."""
    benchmark.extra_info.update(info)
    text = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
    RATIOS.append(f"{name}: {text}")
    print(f"\n{name}: {text}")


# ---------------------------------------------------------------- surfaces ---------------------------------

def loss_landscape_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, points: list[torch.Tensor],
                        batch_size: int = 128) -> list[tuple[float, float]]:
    """Li et al.'s ``plot_surface.py`` loop: per point, the perturbed weights copied into the model's
    parameters (``net_plotter.set_weights``: ``p.data.copy_``), then a pass of a ``DataLoader``."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    criterion = nn.CrossEntropyLoss()
    params = list(model.parameters())
    sizes = [p.numel() for p in params]
    out = []
    model.eval()
    for vec in points:
        with torch.no_grad():
            for p, part in zip(params, vec.split(sizes)):
                p.data.copy_(part.view_as(p))
        total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for inputs, targets in loader:
                outputs = model(inputs)
                total += criterion(outputs, targets).item() * len(targets)
                correct += outputs.max(1)[1].eq(targets).sum().item()
                n += len(targets)
        out.append((total / n, correct / n))
    return out


def functional_call_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, points: list[torch.Tensor],
                         chunk: int = 250) -> list[tuple[float, float]]:
    """The plain loop a user writes with ``torch.func``: per point, the flat vector cut into per-parameter views,
    then per chunk ``functional_call(model, params, x_chunk)``, its summed cross-entropy and correct count."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [s.numel() for s in shapes]
    model.eval()
    out = []
    with torch.no_grad():
        for vec in points:
            params = {n: part.view(s) for n, part, s in zip(names, vec.split(sizes), shapes)}
            total, correct = 0.0, 0
            for i in range(0, len(y), chunk):
                logits = functional_call(model, params, (x[i:i + chunk],))
                total += float(nn.functional.cross_entropy(logits, y[i:i + chunk], reduction="sum"))
                correct += int((logits.argmax(-1) == y[i:i + chunk]).sum())
            out.append((total / len(y), correct / len(y)))
    return out


# ---------------------------------------------------------------- Hessian ----------------------------------

def _flat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [s.numel() for s in shapes]

    def loss(w: torch.Tensor) -> torch.Tensor:
        params = {n: part.view(s) for n, part, s in zip(names, w.split(sizes), shapes)}
        return nn.functional.cross_entropy(functional_call(model, params, (x,)), y)

    return loss


def double_backward_hvps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                         vs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The plain Hessian-vector product, each one from scratch: the mean loss over all of ``(x, y)`` at the flat
    vector ``w``, its gradient with ``create_graph``, then the gradient of ``g . v`` (Pearlmutter)."""
    loss = _flat_loss(model, x, y)
    out = []
    for v in vs:
        w_ = w.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss(w_), w_, create_graph=True)
        out.append(torch.autograd.grad(g, w_, grad_outputs=v)[0])
    return out


def reused_gradient_hvps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                         vs: list[torch.Tensor]) -> list[torch.Tensor]:
    """PyHessian's products: one gradient with ``create_graph`` over all of ``(x, y)``, then for each ``v`` a
    backward pass of ``g . v`` through it (``retain_graph``)."""
    w_ = w.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_flat_loss(model, x, y)(w_), w_, create_graph=True)
    return [torch.autograd.grad(g, w_, grad_outputs=v, retain_graph=True)[0] for v in vs]



def power_iteration_deflated(op: HessianOperator, top_n: int, tol: float = 1e-3, max_iter: int = 100,
                             seed: int = 0) -> tuple[list[float], int]:
    """PyHessian's ``hessian.eigenvalues(maxIter, tol, top_n)``: for each eigenvalue in turn, power
    iteration from a fresh random vector, Gram-Schmidt deflation against the eigenvectors already found
    before every product, stopped when the Rayleigh quotient changes by less than ``tol`` relative to the
    previous one or after ``max_iter`` products. Returns the eigenvalues and the number of products."""
    gen = torch.Generator().manual_seed(seed)
    found: list[torch.Tensor] = []
    values: list[float] = []
    products = 0
    for _ in range(top_n):
        v = torch.randn(op.dim, generator=gen, dtype=op.loss.dtype)
        v /= v.norm()
        eigenvalue: float | None = None
        for _ in range(max_iter):
            for u in found:
                v = v - (v @ u) * u
            v /= v.norm()
            hv = op.matvec(v)
            products += 1
            rayleigh = float(hv @ v)
            v = hv / hv.norm()
            if eigenvalue is not None and abs(eigenvalue - rayleigh) / (abs(eigenvalue) + 1e-6) < tol:
                break
            eigenvalue = rayleigh
        values.append(float(eigenvalue))  # PyHessian keeps the previous quotient when it stops
        found.append(v)
    return values, products


# ---------------------------------------------------------------- training ---------------------------------

def bare_training(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer,
                  batch_size: int, epochs: int, seed: int) -> float:
    """The plain PyTorch loop with the trainer's batches: a seeded permutation per epoch, mean
    cross-entropy, ``zero_grad / backward / step`` (no learning-rate schedule: a constant rate). Returns the
    last batch's loss."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed + 1_000_003)
    n = len(y)
    steps = math.ceil(n / batch_size) - (1 if batch_size > 1 and n % batch_size == 1 else 0)
    model.train()
    loss = torch.tensor(math.nan)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(steps):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx], reduction="none").mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return float(loss.detach())
