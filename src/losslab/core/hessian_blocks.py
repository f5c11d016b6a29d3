"""Per-layer Hessian spectra: the extreme eigenvalues (and the trace) of each diagonal block ``H_BB`` of the
Hessian of the training loss, one block per parameter tensor or per module.

PyHessian's users ask for "the top eigenvalue of each layer" (Yao et al. 2020 analyse the Hessian block by
block: "the Hessian of the loss with respect to the parameters of one layer, the others fixed"). The block
``H_BB = d^2 L / dw_B^2`` is the Hessian of ``L`` as a function of the block's weights ``w_B`` with every other
weight held at its value; its product with a vector of the block is the full product restricted to it:

    ``H_BB u = P_B H P_B^T u``

(``P_B^T`` embeds ``u`` into the flat weight space with zeros outside ``B``, ``P_B`` takes the block's entries
back). :class:`BlockOperator` is that operator, so :func:`losslab.core.hessian.lanczos` and
:func:`losslab.core.hessian.hutchinson_trace` run on it unchanged, one full Hessian-vector product per step.
Eigenvalues of the blocks are not eigenvalues of ``H`` (the blocks ignore the coupling between layers); by
Cauchy interlacing the largest of a block is at most ``lambda_max(H)`` and its smallest at least
``lambda_min(H)``.

Blocks: ``by="parameter"`` is one block per parameter tensor (``named_parameters`` names, e.g.
``conv.weight`` and ``conv.bias`` apart, as PyHessian's per-parameter loops do); ``by="module"`` one block per
module that owns parameters directly (its weight and bias together, named by the module's path). The BN
policy and the loss are :class:`losslab.core.hessian.TrainingLoss`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from losslab.core.hessian import TrainingLoss, hutchinson_trace, lanczos
from losslab.core.weights import ParamLayout

BY = ("parameter", "module")


@dataclass(frozen=True)
class Block:
    """A named set of weights: the flat-vector ``ranges`` (``[start, stop)``) of its parameter tensors."""

    name: str
    parameters: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]

    @property
    def size(self) -> int:
        return sum(b - a for a, b in self.ranges)

    def index(self) -> torch.Tensor:
        """The block's positions in the flat weight vector (ascending)."""
        return torch.cat([torch.arange(a, b) for a, b in self.ranges])


def layer_blocks(layout: ParamLayout, by: str = "parameter") -> list[Block]:
    """The blocks of ``layout`` (:data:`BY`): one per parameter tensor, or one per module (the parameter names
    up to their last dot; a parameter of the root module is its own block), in ``named_parameters`` order."""
    if by not in BY:
        raise ValueError(f"unknown block kind by={by!r}; known: {list(BY)}")
    offsets = np.concatenate([[0], np.cumsum(layout.numels)]).astype(int)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(layout.names):
        key = name if by == "parameter" else (name.rpartition(".")[0] or name)
        groups.setdefault(key, []).append(i)
    return [Block(key, tuple(layout.names[i] for i in idx), tuple((int(offsets[i]), int(offsets[i + 1])) for i in idx))
            for key, idx in groups.items()]


class BlockOperator:
    """``u -> H_BB u``: the Hessian of ``loss`` at ``point`` restricted to ``block`` (see the module doc)."""

    def __init__(self, loss: TrainingLoss, block: Block, point: torch.Tensor | None = None):
        self.loss, self.block = loss, block
        self.point = loss.point if point is None else point
        self._index = block.index()

    @property
    def dim(self) -> int:
        return self.block.size

    def matvec(self, u: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(self.loss.dim, dtype=self.loss.dtype)
        full[self._index] = u.to(self.loss.dtype)
        return self.loss.hvp(full, self.point)[self._index]

    def matrix(self) -> torch.Tensor:
        """``H_BB`` formed column by column (``size`` products; small blocks only)."""
        return torch.stack([self.matvec(e) for e in torch.eye(self.dim, dtype=self.loss.dtype)], 1)


@dataclass(frozen=True)
class BlockSpectrum:
    """One block's ``values`` (its ``k`` largest eigenvalues, descending, or with ``which="both"`` the ``k``
    largest then the ``k`` smallest), their Lanczos certificate, and the Hutchinson ``trace`` (None when not
    asked) with its standard error."""

    name: str
    parameters: tuple[str, ...]
    size: int
    which: str
    values: np.ndarray
    converged: bool
    residuals: np.ndarray
    products: int
    trace: float | None = None
    trace_stderr: float | None = None

    def record(self) -> dict[str, Any]:
        """The spectrum as plain JSON data."""
        out = {"name": self.name, "parameters": list(self.parameters), "size": self.size, "which": self.which,
               "values": np.asarray(self.values).tolist(), "converged": bool(self.converged),
               "residuals": np.asarray(self.residuals).tolist(), "products": int(self.products)}
        if self.trace is not None:
            out |= {"trace": self.trace, "trace_stderr": self.trace_stderr}
        return out


def block_spectra(loss: TrainingLoss, *, by: str = "parameter", k: int = 1, which: str = "largest",
                  tol: float = 1e-3, max_iter: int | None = None, seed: int = 0, trace_probes: int = 0,
                  blocks: Sequence[Block] | None = None) -> list[BlockSpectrum]:
    """The spectrum of every block of ``loss``'s Hessian at its point (:func:`layer_blocks` ``by``, or the given
    ``blocks``): :func:`losslab.core.hessian.lanczos` for ``k`` eigenvalues at ``which`` end(s) (a block of at
    most ``k`` weights gives all of them; a block smaller than the Krylov space Lanczos wants is solved
    exactly), and with ``trace_probes > 0`` Hutchinson's trace of the block. The same ``seed`` for every block."""
    if trace_probes < 0:
        raise ValueError(f"trace_probes must be >= 0, not {trace_probes}")
    out = []
    for block in layer_blocks(loss.layout, by) if blocks is None else blocks:
        op = BlockOperator(loss, block)
        pairs = lanczos(op, min(k, block.size), which, tol=tol, max_iter=max_iter, seed=seed)
        trace = stderr = None
        if trace_probes:
            est = hutchinson_trace(op, trace_probes, seed=seed)
            trace, stderr = float(est.value), float(est.stderr)
        out.append(BlockSpectrum(block.name, block.parameters, block.size, which, np.asarray(pairs.values),
                                 bool(pairs.converged), np.asarray(pairs.residuals), int(pairs.products), trace,
                                 stderr))
    return out
