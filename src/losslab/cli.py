"""``losslab``: the analyses of :mod:`losslab.api` on your own model, from the shell.

    losslab surface --model my_pkg.models:make_net --data my_pkg.data:load --checkpoint net.pt --out out/

A model and its data are named as *entry points* ``package.module:function``:

* ``--model MOD:FN``: ``FN()`` returns the ``torch.nn.Module`` (untrained; the weights come from
  ``--checkpoint``). It is called after ``torch.manual_seed(--seed)``.
* ``--data MOD:FN``: ``FN()`` returns the data in any form :func:`losslab.api.as_data` accepts: ``(x_train,
  y_train, x_test, y_test)`` tensors, ``((x, y), (x_test, y_test))``, ``{"train": ..., "test": ...}`` (each
  split a pair of tensors or a ``DataLoader`` of ``(x, y)`` batches), or the training split alone.
* ``--checkpoint FILE``: a ``state_dict`` saved with ``torch.save`` (or a dict holding one under ``model``),
  read with ``weights_only=True``. Several subcommands take it two or three times.

The module is imported (never evaluated as text) with the current directory first on ``sys.path``, as
``python -m`` does, so ``examples.my_model:model`` works from the directory holding ``examples/``.

Subcommands write into ``--out`` (created): ``surface`` / ``interpolate`` an HDF5 surface, the directions it
was computed along (``NAME.directions.h5``, for ``surface --directions`` on another model) and its figures,
``hessian`` ``hessian.json`` and ``density.h5``, ``sharpness`` ``sharpness.json``, ``curve`` the curve and
its evaluation, ``mpo`` the fitted pattern's maps, ``train`` a checkpoint; ``plot`` draws the figures of an
existing file; ``ratio-map`` Li et al.'s eigenvalue-ratio map, ``curve-plane`` the plane of a trained curve,
``export-vtp`` a surface for ParaView; ``convert IN OUT`` writes a surface or direction file in the layout of
Li et al.'s code, or theirs in losslab's (:mod:`losslab.core.li_files`). The written files are listed on
stdout and a one-line summary of the result ends stderr. Bad arguments exit with status 2 and a message
naming the argument; failures of the computation (e.g. a surface file computed with other arguments) with
status 1.
``train`` refuses to overwrite an existing ``OUT/NAME.pt`` unless given ``--force``; the commands whose outputs a
later run resumes record their arguments in ``OUT/<stem>.args.json``, so that reusing ``--out`` with other
arguments is refused naming the arguments that differ.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from losslab.pipeline import cpu_kernels  # torch-free

PROG = "losslab"
DEVICES = ("auto", "cpu", "cuda")  # core.placement's (not imported: it brings torch; --help stays fast)
AUTOCASTS = ("none", "bf16")
LAYOUTS = ("li", "losslab")  # core.li_files.LAYOUTS (not imported: it brings torch)
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adagrad", "rmsprop")  # core.optim.OPTIMIZERS (likewise)


class UsageError(Exception):
    """A bad argument: ``str(self)`` names it; reported by the subcommand's parser (exit status 2)."""


# ---------------------------------------------------------------- entry points ----------------------------

def import_entry_point(spec: str, option: str) -> Callable[..., Any]:
    """The callable named ``package.module:function`` (``function`` may be dotted: ``module:Class.method``).

    The current directory is put first on ``sys.path`` (as ``python -m`` does). Every failure raises
    :class:`UsageError` naming ``option`` and ``spec``: a malformed spec, a module not found, a module whose
    import fails, a missing attribute, an attribute that is not callable."""
    where = f"{option} {spec!r}"
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or any(not part.isidentifier() for part in module_name.split(".")) \
            or any(not part.isidentifier() for part in attr.split(".")):
        raise UsageError(f"{where}: expected an entry point 'package.module:function'")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise UsageError(f"{where}: module {err.name!r} not found (searched the current directory "
                             f"{cwd} and sys.path)") from err
        raise UsageError(f"{where}: importing module {module_name!r} failed: {err}") from err
    except Exception as err:
        raise UsageError(f"{where}: importing module {module_name!r} failed: {type(err).__name__}: {err}") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{where}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{where}: {attr!r} is a {type(obj).__name__}, not a function")
    return obj


def build_model(spec: str, seed: int) -> Any:
    """``--model``'s function called after ``torch.manual_seed(seed)``; it must return an ``nn.Module``."""
    import torch
    from torch import nn

    fn = import_entry_point(spec, "--model")
    torch.manual_seed(seed)
    try:
        model = fn()
    except Exception as err:
        raise UsageError(f"--model {spec!r}: calling it failed: {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise UsageError(f"--model {spec!r}: returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def load_data(spec: str, args: argparse.Namespace) -> Any:
    """``--data``'s function called, its result checked by :func:`losslab.api.as_data` and cut to the
    ``--n-train`` / ``--n-test`` subsets."""
    from losslab import api

    fn = import_entry_point(spec, "--data")
    try:
        raw = fn()
    except Exception as err:
        raise UsageError(f"--data {spec!r}: calling it failed: {type(err).__name__}: {err}") from err
    try:
        data = api.as_data(raw, max_samples=args.max_samples)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--data {spec!r}: {err}") from err
    return api._subsets(data, getattr(args, "n_train", None), getattr(args, "n_test", None))


def load_model(args: argparse.Namespace, checkpoint: str | None) -> Any:
    """A fresh ``--model`` with the weights of ``checkpoint`` (a :class:`UsageError` naming the file)."""
    from losslab import api

    model = build_model(args.model, args.seed)
    if checkpoint is not None:
        try:
            api.load_checkpoint(model, checkpoint)
        except api.CheckpointError as err:
            raise UsageError(f"--checkpoint {checkpoint!r}: {err}") from err
    return model.eval()


def _checkpoints(args: argparse.Namespace, counts: Sequence[int]) -> list[str]:
    given = list(args.checkpoint or [])
    if len(given) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise UsageError(f"--checkpoint: expected {want} checkpoint(s), got {len(given)}")
    for path in given:
        if not Path(path).is_file():
            raise UsageError(f"--checkpoint {path!r}: no such file")
    return given


# ---------------------------------------------------------------- argument types --------------------------

def _grid_spec(text: str) -> tuple[float, float, int]:
    """``START:STOP:NUM`` (e.g. ``-1:1:21``) as a grid."""
    parts = text.split(":")
    try:
        start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3 or num < 1 or not (math.isfinite(start) and math.isfinite(stop)):
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected START:STOP:NUM with finite START, STOP and NUM >= 1 (e.g. "
                                         f"-1:1:21), not {text!r}")
    return start, stop, num


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _stats_batch(text: str) -> int | str:
    """``--stats-batch``: a positive integer or ``all``."""
    if text == "all":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', not {text!r}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def _range_spec(text: str) -> tuple[float, float]:
    """``LO:HI`` (e.g. ``-1:1``) as an axis range, ``LO < HI``."""
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts)
        if not lo < hi:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO:HI with LO < HI (e.g. -1:1), not {text!r}")
    return lo, hi


# ---------------------------------------------------------------- the parser ------------------------------

class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help unless the help already speaks of its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if isinstance(action, argparse.BooleanOptionalAction) and default is not None:
            return f"{text} (default: {action.option_strings[0 if default else 1]})"
        if isinstance(action, argparse._StoreTrueAction) and "default" not in text:
            return f"{text} (default: off)"
        if "default" in text or action.required or default is None or isinstance(default, bool) \
                or default is argparse.SUPPRESS:
            return text
        if isinstance(default, tuple) and len(default) == 3:
            default = f"{default[0]:g}:{default[1]:g}:{default[2]}"
        return f"{text} (default: {default})"


def _common(model: bool = True, data: bool = True, out: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model, data and output")
    if model:
        g.add_argument("--model", required=True, metavar="MOD:FN",
                       help="entry point of a function returning the torch.nn.Module, e.g. my_pkg.nets:make_net")
    if data:
        g.add_argument("--data", required=True, metavar="MOD:FN",
                       help="entry point of a function returning (x_train, y_train, x_test, y_test), "
                            "{'train': ..., 'test': ...} or DataLoaders (see losslab.api.as_data)")
        g.add_argument("--n-train", type=_positive_int, default=None, metavar="N",
                       help="evaluate on a fixed random subset of N training samples (default: all)")
        g.add_argument("--n-test", type=_positive_int, default=None, metavar="N",
                       help="evaluate on a fixed random subset of N test samples (default: all)")
        g.add_argument("--max-samples", type=_positive_int, default=100_000, metavar="N",
                       help="refuse data with more samples per split than this")
    if out:
        g.add_argument("--out", required=True, metavar="DIR", help="directory the outputs are written to (created)")
    r = p.add_argument_group("run")
    r.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="torch threads (default: torch's)")
    r.add_argument("--seed", type=int, default=0, help="seed of the model's construction and of the method")
    r.add_argument("--device", choices=DEVICES, default="auto",
                   help="where the network and the data live: auto (a CUDA GPU when one is visible, else the CPU), "
                        "cpu or cuda")
    r.add_argument("--eval-autocast", choices=AUTOCASTS, default="none",
                   help="none (exact float32) or bf16 (bfloat16 autocast of loss evaluations on surfaces, lines "
                        "and curves; Hessians stay exact)")
    r.add_argument("--cpu-kernels", choices=cpu_kernels.MODES, default="pinned",
                   help="pinned (default: CPU kernels of one instruction-set level, AVX2, so that the numbers are the "
                        "same on every x86-64 machine) or native (the machine's own, faster)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on stderr (default: when stderr is a terminal)")
    return p


def _graph_chunk(text: str) -> int | str:
    """``--chunk`` of the curvature commands: a number of samples or ``auto``."""
    return "auto" if text == "auto" else _positive_int(text)


def _evaluation(bn_default: str | None, interpolate: bool = False, curvature: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("evaluation")
    g.add_argument("--loss", choices=("ce", "mse"), default="ce", help="ce (cross-entropy) or mse")
    default = bn_default or "running around one checkpoint, recompute between several"
    also = ("; interpolate (between two checkpoints): their running statistics interpolated with the weights' "
            "alpha, as Li et al.'s README prescribes") if interpolate else ""
    g.add_argument("--bn", choices=("running", "recompute", "batch") + (("interpolate",) if interpolate else ()),
                   default=bn_default,
                   help=f"batch-norm statistics: the model's running ones, recomputed at every point from the "
                        f"training inputs, or each chunk's batch statistics{also} (default: {default})")
    if curvature:
        g.add_argument("--chunk", type=_graph_chunk, default="auto", metavar="N|auto",
                       help="samples per autograd graph ('auto': the most whose graph fits 512 MiB, "
                            "losslab.core.hessian.HVP_MEMORY; with --bn batch or recompute also the statistics' batch)")
    else:
        g.add_argument("--chunk", type=_positive_int, default=250, help="samples forwarded at a time")
    return p


def _statistics() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument_group("batch-norm statistics").add_argument(
        "--stats-batch", type=_stats_batch, default=250, metavar="N|all",
        help="--bn recompute: training inputs per batch of the statistics pass, which the statistics depend on "
             "('all': one batch of the whole training split, the exact full-data statistics); unlike --chunk it "
             "changes the numbers, and it is recorded in the output")
    return p


def _checkpoint_arg(p: argparse.ArgumentParser, help: str, required: bool = True) -> None:
    p.add_argument("--checkpoint", action="append", metavar="FILE", required=required, help=help)


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from losslab._version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Loss-landscape analyses of your own PyTorch model: name the model and data as "
                               "package.module:function entry points and the weights as a checkpoint file.",
        epilog="Run 'losslab <command> --help' for a command's options. Python API: losslab.api.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    subs: dict[str, argparse.ArgumentParser] = {}

    def add(name: str, help: str, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=parents,
                           formatter_class=_HelpFormatter)
        subs[name] = p
        return p

    p = add("train", "train the model briefly and write its checkpoint (OUT/model.pt)", [_common()])
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum", help="the optimizer (core.optim)")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--name", default="model", help="file name stem of the checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT/NAME.pt (refused otherwise)")

    p = add("surface", "Li et al.'s loss surface: 1-D or 2-D around one checkpoint (filter-normalized random "
                       "directions), the interpolation between two, or the plane through three; the directions "
                       "used are written to OUT/NAME.directions.h5",
            [_common(), _evaluation(None, interpolate=True), _statistics()])
    _checkpoint_arg(p, "the model's weights; give it twice (interpolation) or three times (plane)")
    p.add_argument("--dims", type=int, choices=(1, 2), default=None,
                   help="1-D or 2-D around one checkpoint (default: 2, or the number of --directions)")
    p.add_argument("--x", type=_grid_spec, default=(-1.0, 1.0, 21), metavar="START:STOP:NUM",
                   help="alpha coordinates (default: -1:1:21; -1:2:31 between two checkpoints)")
    p.add_argument("--y", type=_grid_spec, default=(-1.0, 1.0, 21), metavar="START:STOP:NUM",
                   help="beta coordinates")
    p.add_argument("--norm", choices=("filter", "layer", "weight", "none"), default="filter",
                   help="direction normalization")
    p.add_argument("--ignore", choices=("biasbn", "copy", "keep"), default="biasbn",
                   help="direction on biases and BN parameters: zero, the weights, or normalized like the rest")
    p.add_argument("--orthogonal", action="store_true", help="make the second direction orthogonal to the first")
    p.add_argument("--direction-seed", type=int, default=0, help="seed of the random directions")
    p.add_argument("--n", type=_positive_int, default=21, help="plane: grid points per side")
    p.add_argument("--margin", type=float, default=0.2, help="plane: relative margin around the three models")
    p.add_argument("--name", default="surface", help="file name stem (OUT/NAME.h5)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the figures")
    g = p.add_argument_group("given directions (around one checkpoint; OUT/NAME.directions.h5 is always written)")
    g.add_argument("--directions", metavar="FILE", default=None,
                   help="use the directions of this file (e.g. the NAME.directions.h5 of another surface, of another "
                        "model) instead of drawing random ones (default: none, random directions from "
                        "--direction-seed)")
    g.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=True,
                   help="re-normalize filter- or layer-normalized --directions to this checkpoint's filters (Li et "
                        "al.'s per-network normalization: the same Gaussian draw, normalized for this network); "
                        "--no-renormalize adds them exactly as saved")
    g.add_argument("--pca-trajectory", nargs="+", metavar="CKPT", default=None,
                   help="Li et al.'s PCA directions of a training trajectory: its saved checkpoints in order (at "
                        "least 3; end with the final --checkpoint to draw the path into the centre); the grid "
                        "covers the path (--n points per side, --margin) unless --x and --y are given, and the "
                        "trajectory is drawn over the contours (default: none)")

    p = add("interpolate", "Goodfellow et al.'s linear interpolation (1 - alpha) theta_0 + alpha theta_1 "
                           "between two checkpoints; the direction theta_1 - theta_0 is written to "
                           "OUT/NAME.directions.h5", [_common(), _evaluation("recompute", interpolate=True),
                                                      _statistics()])
    _checkpoint_arg(p, "give it twice: theta_0, then theta_1")
    p.add_argument("--alpha", type=_grid_spec, default=(-1.0, 2.0, 31), metavar="START:STOP:NUM")
    p.add_argument("--name", default="interpolation", help="file name stem (OUT/NAME.h5)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the figure")

    p = add("hessian", "Hessian of the training loss: top-k (and smallest) eigenvalues by Lanczos, the spectral "
                       "density (SLQ), the trace (Hutchinson)", [_common(), _evaluation("running", curvature=True)])
    _checkpoint_arg(p, "the model's weights")
    p.add_argument("--top-k", type=_positive_int, default=1, help="number of eigenvalues")
    p.add_argument("--which", choices=("largest", "smallest", "both"), default="largest")
    p.add_argument("--tol", type=_positive_float, default=1e-3, help="Lanczos relative residual tolerance")
    p.add_argument("--max-iter", type=_positive_int, default=None,
                   help="Lanczos steps at most (default: min(weights, 300))")
    p.add_argument("--weight-decay", type=float, default=0.0, help="the L2 term (wd/2)||w||^2 of the loss")
    p.add_argument("--density-runs", type=int, default=5, help="SLQ start vectors (0: no density)")
    p.add_argument("--density-steps", type=_positive_int, default=90, help="Lanczos steps per SLQ run")
    p.add_argument("--sigma2", type=_positive_float, default=1e-5, help="SLQ Gaussian kernel variance")
    p.add_argument("--trace-probes", type=int, default=100, help="Hutchinson probes (0: no trace)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the density")
    p.add_argument("--eigenvector-line", type=_grid_spec, default=None, metavar="START:STOP:NUM",
                   help="also the loss along the unit Hessian eigenvector at these alphas, PyHessian's plot "
                        "(OUT/eigenvector_line.h5; the loss and Hessian of the line have no --weight-decay "
                        "term; default: none)")
    p.add_argument("--eigenvector-k", type=_positive_int, default=1,
                   help="the eigenvector of the line: that of the k-th largest eigenvalue")
    p.add_argument("--per-layer", action="store_true",
                   help="also each layer's Hessian block: its --top-k --which eigenvalues by Lanczos on the "
                        "block's Hessian-vector product, into hessian.json's per_layer (default: off)")
    p.add_argument("--per-layer-by", choices=("parameter", "module"), default="parameter",
                   help="the blocks: one per parameter tensor, or one per module (weight and bias together)")
    p.add_argument("--per-layer-trace-probes", type=int, default=0,
                   help="Hutchinson probes for each block's trace (0: no trace)")

    p = add("sharpness", "Keskar et al.'s epsilon-sharpness (Metric 2.1) of the training loss",
            [_common(), _evaluation("running", curvature=True)])
    _checkpoint_arg(p, "the model's weights")
    p.add_argument("--eps", type=_positive_float, action="append", default=None,
                   help="box size; repeat for several (default 1e-3 and 5e-4)")
    p.add_argument("--subspace-dim", type=_positive_int, default=None,
                   help="random subspace dimension p (the paper: 100); default: the full space")
    p.add_argument("--maxiter", type=_positive_int, default=10, help="L-BFGS-B iterations per start")
    p.add_argument("--method", choices=("multistart", "keskar"), default="multistart",
                   help="multistart: L-BFGS-B from the centre, the sign-gradient corner and random corners of "
                        "the box (default); keskar: the paper's single run from the centre (stays near it at "
                        "a well-trained point)")
    p.add_argument("--random-starts", type=int, default=2, help="random corners among the multistart starts")

    p = add("curve", "Garipov et al.'s mode connectivity: train a Bezier or polygonal-chain curve between two "
                     "checkpoints, evaluate it over t with BN recomputed",
            [_common(), _evaluation("recompute"), _statistics()])
    _checkpoint_arg(p, "give it twice: the endpoints w0 and w1")
    p.add_argument("--kind", choices=("bezier", "polychain"), default="bezier")
    p.add_argument("--bends", type=_positive_int, default=1, help="number of trainable bends")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--lr", type=_positive_float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--t", type=_positive_int, default=61, metavar="POINTS",
                   help="evaluate at POINTS values of t from 0 to 1 (>= 2)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the figure")

    p = add("mpo", "multi-point optimization: fit a plane of networks to a binary pattern (Skorokhodov & "
                   "Burtsev); the model function is called three times for the initialisations", [_common()])
    p.add_argument("--pattern", default="ring", metavar="SHAPE|FILE",
                   help="a shape (ring, disk, cross, square, smiley, full) or a pattern file (.npy, .txt, image)")
    p.add_argument("--size", type=_positive_int, default=8, help="cells per side of a shape pattern")
    p.add_argument("--steps", type=_positive_int, default=1000)
    p.add_argument("--lr", type=_positive_float, default=1e-3)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--cells-per-step", type=_positive_int, default=16)
    p.add_argument("--bn", choices=("recompute", "batch"), default="recompute", help="BN policy of the maps")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the maps")

    p = add("plot", "draw the figures of a losslab HDF5 file (surface, interpolation, curve evaluation, "
                    "spectral density)", [_common(model=False, data=False)])
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--title", default="", help="figure title (default: none)")
    p.add_argument("--xlim", type=_range_spec, default=None, metavar="LO:HI",
                   help="x-axis limits, e.g. --xlim=-0.5:0.5 (default: the data's)")
    p.add_argument("--ylim", type=_range_spec, default=None, metavar="LO:HI",
                   help="y-axis limits (a 1-D figure: the loss axis) (default: the data's)")
    p.add_argument("--levels", default=None, metavar="N|A,B,C|log[:N]",
                   help="contour levels: N evenly spaced, the values A,B,C, or N geometrically spaced "
                        "(default: 25, geometric when the loss is positive)")
    p.add_argument("--vmin", type=float, default=None, help="bottom of the colour range and the levels "
                                                            "(default: the smallest value)")
    p.add_argument("--vmax", type=float, default=None, help="top of the colour range and the levels "
                                                            "(default: the largest value)")

    p = add("ratio-map", "Li et al.'s Fig. 7: |lambda_min / lambda_max| of the Hessian at every point of a 2-D "
                         "surface around one checkpoint (the surface command's random directions)",
            [_common(), _evaluation("running", curvature=True)])
    _checkpoint_arg(p, "the model's weights")
    p.add_argument("--x", type=_grid_spec, default=(-1.0, 1.0, 11), metavar="START:STOP:NUM", help="alpha")
    p.add_argument("--y", type=_grid_spec, default=(-1.0, 1.0, 11), metavar="START:STOP:NUM", help="beta")
    p.add_argument("--norm", choices=("filter", "layer", "weight", "none"), default="filter",
                   help="direction normalization")
    p.add_argument("--ignore", choices=("biasbn", "copy", "keep"), default="biasbn",
                   help="direction on biases and BN parameters: zero, the weights, or normalized like the rest")
    p.add_argument("--orthogonal", action="store_true",
                   help="make the second direction orthogonal to the first (default: off)")
    p.add_argument("--direction-seed", type=int, default=0,
                   help="seed of the random directions (as 'surface': the map lies over its surface)")
    p.add_argument("--tol", type=_positive_float, default=1e-2,
                   help="Lanczos tolerance of both ends, relative to each (Li et al.: 1e-2)")
    p.add_argument("--max-iter", type=_positive_int, default=None,
                   help="Lanczos steps at most per point (default: min(weights, 300))")
    p.add_argument("--name", default="ratio_map", help="file name stem (OUT/NAME.h5)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the map")

    p = add("curve-plane", "Garipov et al.'s plane.py: the loss on the plane through a trained curve's endpoints "
                           "and its middle bend, with the curve projected on it", [_common(), _evaluation("recompute")])
    p.add_argument("--curve", required=True, metavar="FILE", help="a curve written by 'losslab curve' (curve.pt)")
    p.add_argument("--n", type=_positive_int, default=21, help="grid points per side")
    p.add_argument("--margin", type=float, default=0.2, help="relative margin around the three points")
    p.add_argument("--bend", type=int, default=None, help="the bend of the plane (default: the middle one)")
    p.add_argument("--t", type=_positive_int, default=61, metavar="POINTS",
                   help="points of the curve projected on the plane (>= 2)")
    p.add_argument("--name", default="curve_plane", help="file name stem (OUT/NAME.h5)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the figures")

    p = add("export-vtp", "a 2-D surface file as a ParaView .vtp file (Li et al.'s h52vtp.py)",
            [_common(model=False, data=False)])
    p.add_argument("file", metavar="FILE.h5")
    p.add_argument("--name", default="train_loss", help="the surface to export (train_loss, test_loss, ratio, ...)")
    p.add_argument("--log", action="store_true", help="height log(value + 0.1), as h52vtp (default: off)")
    p.add_argument("--zmax", type=float, default=None, help="clip the values at ZMAX first (default: no clip)")
    p.add_argument("--interp", type=_positive_int, default=None, metavar="N",
                   help="resample to N x N points by a bicubic spline, as h52vtp (default: off)")

    p = add("convert", "convert a surface or direction file between losslab's layout and that of Li et al.'s "
                       "loss-landscape code (their plot_2D, plot_1D and h5_util.read_list read the result, and "
                       "losslab theirs)", [_common(model=False, data=False, out=False)])
    p.add_argument("input", metavar="IN", help="a surface or direction file in either layout (detected)")
    p.add_argument("output", metavar="OUT", help="the file to write")
    p.add_argument("--to", choices=LAYOUTS, default=None,
                   help="the layout of OUT: li or losslab (default: the other one than IN's)")
    p.add_argument("--model", metavar="MOD:FN", default=None,
                   help="entry point of the model function, for direction files: needed to write Li et al.'s "
                        "per-tensor groups and to read their states-type files, and checks the shapes (default: "
                        "none)")
    _name_undocumented(subs)
    return parser, subs


def _name_undocumented(subs: dict[str, argparse.ArgumentParser]) -> None:
    """Give every option without a help text one (its name in words), so that ``--help`` lists it with its
    default."""
    for p in subs.values():
        for action in p._actions:
            if action.option_strings and action.help is None:
                action.help = action.dest.replace("_", " ")


# ---------------------------------------------------------------- validation ------------------------------
# Checks of a subcommand's inputs against the model, before any compute; the data, checkpoints, outputs and labels
# are checked by the library (losslab.api.as_data, load_checkpoint, losslab.core.losses.check_outputs).

def check_top_k(args: argparse.Namespace, dim: int) -> None:
    """``hessian --top-k`` within the model's ``dim`` weights and the Lanczos steps (``--max-iter``), by
    :func:`losslab.core.hessian.check_eigen_count` (a :class:`UsageError` with the count)."""
    from losslab.core.hessian import check_eigen_count

    try:
        check_eigen_count(args.top_k, dim, args.max_iter, names=("--top-k ", "--max-iter "))
    except ValueError as err:
        raise UsageError(str(err)) from err


def shown_values(eig: Any) -> str:
    """The eigenvalues for the summary line, each uncertified one marked ``(uncertified)``."""
    certified = eig.certified if eig.certified is not None else [eig.converged] * len(eig.values)
    return ", ".join(f"{v:.6g}" + ("" if ok else " (uncertified)") for v, ok in zip(eig.values, certified))


def refuse_diverged(history: Sequence[dict[str, Any]]) -> None:
    """``train``: a run whose loss became NaN or infinite stops with a message (exit 1) and writes no model."""
    for row in history:
        if not math.isfinite(row.get("batch_loss", 0.0)):
            raise RuntimeError(f"the run diverged in epoch {row['epoch']} (the training loss became NaN or "
                               f"infinite); no model written: lower --lr or check the data")


# ---------------------------------------------------------------- commands --------------------------------

def _progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def _say(args: argparse.Namespace, text: str) -> None:
    if _progress(args):
        print(f"{PROG} {args.command}: {text}", file=sys.stderr, flush=True)


def _written(paths: Sequence[Any]) -> None:
    for path in paths:
        print(path)


def _surface_summary(surface: Any) -> str:
    """One line of a surface's result: the train loss (and accuracy) at the grid's origin when it has one, and
    the range of the train loss over the grid."""
    import numpy as np

    loss, acc = np.asarray(surface["train_loss"], float), np.asarray(surface["train_acc"], float)
    axes = [surface.xcoordinates] + ([] if surface.ycoordinates is None else [surface.ycoordinates])
    shape = " x ".join(str(len(a)) for a in axes)
    line = f"train loss {np.nanmin(loss):.4g} to {np.nanmax(loss):.4g} over {shape} points"
    at_zero = [np.flatnonzero(np.asarray(a) == 0.0) for a in axes]
    if all(len(i) for i in at_zero):
        cell = tuple(int(i[0]) for i in at_zero)
        line += f"; at the origin {loss[cell]:.4g} (accuracy {100 * acc[cell]:.2f}%)"
    return line


def cmd_train(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    existing = Path(args.out) / f"{args.name}.pt"
    if existing.exists() and not args.force:
        raise UsageError(f"--out {args.out!r}: {existing} exists (a trained model); give --force to overwrite it, "
                         f"or another --out or --name")
    model = build_model(args.model, args.seed)
    data = load_data(args.data, args)
    history = api.train(model, data, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                        weight_decay=args.weight_decay, batch_size=args.batch_size, seed=args.seed,
                        progress=_progress(args))
    refuse_diverged(history)
    last = history[-1]
    args.summary = (f"epoch {len(history)}: train loss {last['train_loss']:.4g}, train accuracy "
                    f"{100 * last['train_acc']:.2f}%" + (f", test accuracy {100 * last['test_acc']:.2f}%"
                                                         if api._has_test(data) else ""))
    out = Path(args.out)
    lio.save_torch(out / f"{args.name}.pt", {k: v.detach().clone() for k, v in model.state_dict().items()})
    lio.write_json(out / f"{args.name}.history.json", history)
    return [out / f"{args.name}.pt", out / f"{args.name}.history.json"]


def _direction_args(args: argparse.Namespace, n_checkpoints: int, written: Path) -> None:
    """``--directions`` / ``--pca-trajectory``: around one checkpoint, not both, existing files, not the file the
    surface writes its own directions to."""
    if args.directions is not None and args.pca_trajectory:
        raise UsageError("--directions and --pca-trajectory: give one of them")
    for option, given in (("--directions", args.directions), ("--pca-trajectory", args.pca_trajectory)):
        if given and n_checkpoints != 1:
            raise UsageError(f"{option}: only around one checkpoint (got {n_checkpoints})")
    for path in args.pca_trajectory or []:
        if not Path(path).is_file():
            raise UsageError(f"--pca-trajectory {path!r}: no such file")
    if args.directions is not None:
        if not Path(args.directions).is_file():
            raise UsageError(f"--directions {args.directions!r}: no such file")
        if Path(args.directions).resolve() == written.resolve():
            raise UsageError(f"--directions {args.directions!r}: this surface writes its own directions there; "
                             f"copy the file elsewhere or change --name/--out")


def _given_directions(args: argparse.Namespace, model: Any) -> Any:
    """The ``--directions`` file checked against the model (a :class:`UsageError` naming it), or the PCA of
    ``--pca-trajectory``; None to draw random directions."""
    from losslab import api
    from losslab import io as lio
    from losslab.core.directions import check_directions, load_directions

    if args.directions is not None:
        where = f"--directions {args.directions!r}"
        try:
            given = load_directions(args.directions, model)
        except (ValueError, lio.CorruptFileError) as err:  # the message names the file
            raise UsageError(f"--directions: {err}") from err
        try:
            check_directions(given, model, where)
        except ValueError as err:
            raise UsageError(str(err)) from err
        return args.directions
    if args.pca_trajectory:
        try:
            return api.trajectory_directions(model, args.pca_trajectory)
        except (api.CheckpointError, ValueError) as err:
            raise UsageError(f"--pca-trajectory: {err}") from err
    return None


def cmd_surface(args: argparse.Namespace) -> list[Path]:
    from losslab import api

    checkpoints = _checkpoints(args, (1, 2, 3))
    out = Path(args.out)
    target, written = out / f"{args.name}.h5", out / f"{args.name}.directions.h5"
    _direction_args(args, len(checkpoints), written)
    bn = args.bn or ("running" if len(checkpoints) == 1 else "recompute")
    if bn == "interpolate" and len(checkpoints) != 2:
        raise UsageError("--bn interpolate: only between two checkpoints (the interpolation)")
    models = [load_model(args, c) for c in checkpoints]
    data = load_data(args.data, args)
    opts = dict(loss=args.loss, bn=bn, chunk=args.chunk, path=target, progress=_progress(args),
                save_directions=written, stats_batch=args.stats_batch)
    if len(models) == 1:
        directions = _given_directions(args, models[0])
        grid = {"x": args.x, "y": args.y}
        if isinstance(directions, api.TrajectoryPCA):
            xs, ys = directions.grid(args.n, args.margin)
            grid = {"x": args.x if "--x" in args._given else xs, "y": args.y if "--y" in args._given else ys}
        result = api.surface(models[0], data, dims=args.dims, seed=args.direction_seed, norm=args.norm,
                             ignore=args.ignore, orthogonal=args.orthogonal, checkpoint=checkpoints[0],
                             directions=directions, renormalize=args.renormalize, **grid, **opts)
    elif len(models) == 2:
        x = args.x if "--x" in args._given else (-1.0, 2.0, 31)
        result = api.interpolate(models[0], models[1], data, alpha=x, checkpoints=tuple(checkpoints), **opts)
    else:
        xy = {"x": args.x, "y": args.y} if {"--x", "--y"} <= args._given else {}
        result = api.plane(models, data, n=args.n, margin=args.margin, checkpoints=checkpoints, **xy, **opts)
    args.summary = _surface_summary(result)
    files = [target, written]
    if args.plot:
        files += api.plot(target, out / args.name)
    return files


def cmd_interpolate(args: argparse.Namespace) -> list[Path]:
    from losslab import api

    checkpoints = _checkpoints(args, (2,))
    a, b = (load_model(args, c) for c in checkpoints)
    data = load_data(args.data, args)
    out = Path(args.out)
    target, written = out / f"{args.name}.h5", out / f"{args.name}.directions.h5"
    result = api.interpolate(a, b, data, alpha=args.alpha, bn=args.bn, loss=args.loss, chunk=args.chunk, path=target,
                    checkpoints=tuple(checkpoints), progress=_progress(args), save_directions=written,
                    stats_batch=args.stats_batch)
    args.summary = _surface_summary(result)
    return [target, written] + (api.plot(target, out / args.name) if args.plot else [])


def cmd_hessian(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    (checkpoint,) = _checkpoints(args, (1,))
    model = load_model(args, checkpoint)
    data = load_data(args.data, args)
    _check_hessian_extras(args, model)
    if args.density_runs < 0 or args.trace_probes < 0:
        raise UsageError("--density-runs / --trace-probes: must be >= 0")
    opts = dict(bn=args.bn, loss=args.loss, weight_decay=args.weight_decay, chunk=args.chunk)
    out = Path(args.out)
    _say(args, f"Lanczos for {args.top_k} {args.which} eigenvalue(s)")
    eig = api.hessian_eigenvalues(model, data, args.top_k, args.which, tol=args.tol, max_iter=args.max_iter,
                                  seed=args.seed, progress=_progress(args), **opts)
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint), "n": len(data.y_train), "dim": int(eig.vectors.shape[1]), **opts,
        "eigenvalues": {"which": args.which, "values": eig.values.tolist(), **eig.certificate(), "tol": args.tol}}
    if not eig.converged:
        print(f"{PROG} hessian: warning: the eigenvalues are not certified ({eig.reason}); written with "
              "converged: false", file=sys.stderr, flush=True)
    files = [out / "hessian.json"]
    if args.trace_probes:
        _say(args, f"Hutchinson trace, {args.trace_probes} probes")
        tr = api.hessian_trace(model, data, n_probes=args.trace_probes, seed=args.seed, progress=_progress(args),
                               **opts)
        result["trace"] = {"value": tr.value, "stderr": tr.stderr, "probes": args.trace_probes}
    if args.density_runs:
        _say(args, f"spectral density, {args.density_runs} x {args.density_steps} Lanczos steps")
        sd = api.spectral_density(model, data, n_runs=args.density_runs, n_steps=args.density_steps,
                                  sigma2=args.sigma2, seed=args.seed, progress=_progress(args), **opts)
        api.write_spectral_density(out / "density.h5", sd)
        result["density"] = {"file": "density.h5", "mean": sd.mean, "runs": args.density_runs,
                             "steps": args.density_steps, "sigma2": sd.sigma2, "products": sd.products}
        files.append(out / "density.h5")
        if args.plot:
            files += api.plot(out / "density.h5", out)
    files += _hessian_extras(args, model, data, result, out)
    lio.write_json(out / "hessian.json", {**result, "platform": cpu_kernels.platform_record()})
    top = f"{args.which} eigenvalue(s) {shown_values(eig)}"
    args.summary = (f"{top}{'' if eig.converged else ' (not certified)'}"
                    + (f"; trace {result['trace']['value']:.6g}" if "trace" in result else "")
                    + (f"; {len(result['per_layer']['blocks'])} layer blocks" if "per_layer" in result else "")
                    + (f"; eigenvector line, lambda_{args.eigenvector_k} = "
                       f"{result['eigenvector_line']['eigenvalue']:.6g}" if "eigenvector_line" in result else ""))
    return files


def _check_hessian_extras(args: argparse.Namespace, model: Any) -> None:
    """``hessian``'s --per-layer and --eigenvector-line arguments checked before any compute."""
    from losslab.core.weights import ParamLayout

    if args.per_layer_trace_probes < 0:
        raise UsageError("--per-layer-trace-probes: must be >= 0")
    dim = ParamLayout.of(model).size
    check_top_k(args, dim)
    if args.eigenvector_line is not None and args.eigenvector_k > dim:
        raise UsageError(f"--eigenvector-k {args.eigenvector_k}: the Hessian of the --model has only {dim} "
                         "eigenvalues")


def _hessian_extras(args: argparse.Namespace, model: Any, data: Any, result: dict[str, Any], out: Path) -> list[Path]:
    """``hessian``'s --per-layer spectra (into ``result``) and --eigenvector-line file."""
    from losslab import api

    files: list[Path] = []
    if args.per_layer:
        _say(args, f"per-layer Hessian blocks ({args.per_layer_by})")
        blocks = api.layer_spectra(model, data, by=args.per_layer_by, k=args.top_k, which=args.which,
                                   trace_probes=args.per_layer_trace_probes, tol=args.tol, max_iter=args.max_iter,
                                   seed=args.seed, bn=args.bn, loss=args.loss, weight_decay=args.weight_decay,
                                   chunk=args.chunk)
        result["per_layer"] = {"by": args.per_layer_by, "blocks": [b.record() for b in blocks]}
    if args.eigenvector_line is not None:
        _say(args, f"the loss along eigenvector {args.eigenvector_k}")
        target = out / "eigenvector_line.h5"
        line = api.eigenvector_line(model, data, alpha=args.eigenvector_line, k=args.eigenvector_k, tol=args.tol,
                                    max_iter=args.max_iter, seed=args.seed, bn=args.bn, loss=args.loss,
                                    chunk=args.chunk, path=target, checkpoint=args.checkpoint[0])
        result["eigenvector_line"] = {"file": target.name, "k": args.eigenvector_k,
                                      "eigenvalue": float(line.attrs["eigenvalue"]),
                                      "certified": bool(line.attrs["eigenvalue_certified"])}
        files.append(target)
        if args.plot:
            files += api.plot(target, out / "eigenvector_line")
    return files


def cmd_sharpness(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    (checkpoint,) = _checkpoints(args, (1,))
    model = load_model(args, checkpoint)
    data = load_data(args.data, args)
    rows = []
    for eps in args.eps or [1e-3, 5e-4]:
        _say(args, f"epsilon-sharpness at eps={eps:g}")
        r = api.sharpness(model, data, eps, subspace_dim=args.subspace_dim, maxiter=args.maxiter, seed=args.seed,
                          bn=args.bn, loss=args.loss, chunk=args.chunk, method=args.method,
                          random_starts=args.random_starts, progress=_progress(args))
        rows.append({"eps": eps, "subspace_dim": r.subspace_dim, "value": r.value, "loss": r.loss,
                     "max_loss": r.max_loss, "evaluations": r.evaluations, "start": r.start,
                     "starts": dict(r.starts or {})})
    out = Path(args.out)
    lio.write_json(out / "sharpness.json", {"checkpoint": str(checkpoint), "n": len(data.y_train),
                                            "maxiter": args.maxiter, "method": args.method, "bn": args.bn,
                                            "values": rows, "platform": cpu_kernels.platform_record()})
    args.summary = "epsilon-sharpness " + ", ".join(f"{r['value']:.4g}% at eps {r['eps']:g}" for r in rows) + \
        f" (loss at the centre {rows[0]['loss']:.4g})"
    return [out / "sharpness.json"]


def cmd_curve(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio
    from losslab.core.curves import save_curve

    checkpoints = _checkpoints(args, (2,))
    a, b = (load_model(args, c) for c in checkpoints)
    data = load_data(args.data, args)
    if args.t < 2:
        raise UsageError("--t: at least 2 points")
    if not api._has_test(data):
        raise UsageError(f"--data {args.data!r}: the curve evaluation needs a test split")
    out = Path(args.out)
    curve = api.train_curve(a, b, data, kind=args.kind, bends=args.bends, epochs=args.epochs, lr=args.lr,
                            weight_decay=args.weight_decay, batch_size=args.batch_size, loss=args.loss,
                            seed=args.seed, checkpoint_path=out / "curve.train.pt", progress=_progress(args))
    save_curve(out / "curve.pt", curve)
    _say(args, f"evaluating the curve and the segment at {args.t} values of t")
    ev = api.evaluate_curve(curve, a, data, t=args.t, bn=args.bn, loss=args.loss, chunk=args.chunk,
                            path=out / "curve.h5", stats_batch=args.stats_batch)
    lio.write_json(out / "curve.json", {"kind": args.kind, "bends": args.bends, "checkpoints": checkpoints,
                                        "metrics": ev.metrics, "platform": cpu_kernels.platform_record()})
    m = ev.metrics
    args.summary = (f"{args.kind} curve: train loss max {m['train_loss_max']:.4g} (barrier "
                    f"{m['train_loss_barrier']:.4g}), segment barrier {m['segment_train_loss_barrier']:.4g}; "
                    f"test error max {m['test_err_max']:.4g}")
    files = [out / "curve.pt", out / "curve.h5", out / "curve.json"]
    return files + (api.plot(out / "curve.h5", out) if args.plot else [])


def cmd_mpo(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio
    from losslab.core.patterns import SHAPES, PatternError, load_pattern, shape_pattern

    factory = import_entry_point(args.model, "--model")
    build_model(args.model, args.seed)  # fail early, naming --model, if it does not build a module
    data = load_data(args.data, args)
    if not api._has_test(data):
        raise UsageError(f"--data {args.data!r}: the pattern's maps need a test split")
    try:
        pattern = shape_pattern(args.pattern, args.size) if args.pattern in SHAPES else load_pattern(args.pattern)
    except (PatternError, FileNotFoundError, OSError, ValueError) as err:
        raise UsageError(f"--pattern {args.pattern!r}: {err} (shapes: {', '.join(SHAPES)})") from err
    out = Path(args.out)
    _say(args, f"fitting a {pattern.shape[0]}x{pattern.shape[1]} pattern in {args.steps} steps")
    fit = api.fit_pattern(factory, data, pattern, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                          cells_per_step=args.cells_per_step, seed=args.seed, bn=args.bn,
                          checkpoint_path=out / "mpo.train.pt", progress=_progress(args))
    fit.maps.save(out / "mpo.npz", pattern=pattern)
    lio.write_json(out / "mpo.json", {"pattern": args.pattern, "shape": list(pattern.shape), "steps": args.steps,
                                      "metrics": fit.metrics, "platform": cpu_kernels.platform_record()})
    m = fit.metrics
    args.summary = (f"pattern {pattern.shape[0]}x{pattern.shape[1]}: train accuracy {100 * m['train_black_acc']:.1f}% "
                    f"in black cells, {100 * m['train_white_acc']:.1f}% in white (test: "
                    f"{100 * m['test_black_acc']:.1f}%, {100 * m['test_white_acc']:.1f}%)")
    files = [out / "mpo.npz", out / "mpo.json"]
    if args.plot:
        files += fit.figure(out / "mpo", title="MPO pattern fit")
    return files


def cmd_plot(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio
    from losslab.plots import landscape

    if not Path(args.file).is_file():
        raise UsageError(f"FILE {args.file!r}: no such file")
    if args.vmin is not None and args.vmax is not None and not args.vmin < args.vmax:
        raise UsageError(f"--vmin {args.vmin:g}: must be below --vmax {args.vmax:g}")
    try:  # parsed here, not by argparse: the parser runs before the CPU kernel pin, and plots import NumPy
        levels = None if args.levels is None else landscape.parse_levels(args.levels)
    except ValueError as err:
        raise UsageError(f"--levels: {err}") from err
    try:
        files = api.plot(args.file, args.out, args.title, xlim=args.xlim, ylim=args.ylim, levels=levels,
                         vmin=args.vmin, vmax=args.vmax)
    except (ValueError, lio.CorruptFileError) as err:
        raise UsageError(f"FILE {args.file!r}: {err}") from err
    args.summary = f"{len(files) // 2} figure(s) of {Path(args.file).name} in {args.out}"
    return files


def cmd_ratio_map(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    import numpy as np

    (checkpoint,) = _checkpoints(args, (1,))
    model = load_model(args, checkpoint)
    data = load_data(args.data, args)
    out = Path(args.out)
    target = out / f"{args.name}.h5"
    _say(args, f"Lanczos at both ends at {args.x[2] * args.y[2]} points")
    s = api.ratio_map(model, data, x=args.x, y=args.y, seed=args.direction_seed, norm=args.norm,
                      ignore=args.ignore, orthogonal=args.orthogonal, tol=args.tol, max_iter=args.max_iter,
                      bn=args.bn, loss=args.loss, chunk=args.chunk, path=target, checkpoint=checkpoint,
                      progress=_progress(args))
    ratio = np.asarray(s["ratio"], float)
    args.summary = (f"ratio map {ratio.shape[0]}x{ratio.shape[1]}: |lambda_min / lambda_max| mean "
                    f"{np.nanmean(ratio):.4g}, max {np.nanmax(ratio):.4g}; "
                    f"{int(np.sum(s['certified']))} of {ratio.size} points certified")
    return [target] + (api.plot(target, out / args.name) if args.plot else [])


def cmd_curve_plane(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab.core.curves import load_curve, plane_of
    from losslab.core.weights import ParamLayout
    import numpy as np

    if args.t < 2:
        raise UsageError("--t: at least 2 points")
    if not Path(args.curve).is_file():
        raise UsageError(f"--curve {args.curve!r}: no such file")
    try:
        curve = load_curve(args.curve)
    except (ValueError, OSError) as err:
        raise UsageError(f"--curve {args.curve!r}: {err}") from err
    model = build_model(args.model, args.seed).eval()
    if ParamLayout.of(model).size != curve.w0.numel():
        raise UsageError(f"--curve {args.curve!r}: a curve of {curve.w0.numel()} weights, the --model has "
                         f"{ParamLayout.of(model).size}")
    if args.bend is not None and not 0 <= args.bend < curve.n_bends:
        raise UsageError(f"--bend {args.bend}: the curve has {curve.n_bends} bend(s), numbered from 0")
    try:
        plane_of(curve, args.bend)
    except ValueError as err:
        raise UsageError(f"--curve {args.curve!r}: {err} (an untrained curve's bends lie on the segment)") from err
    data = load_data(args.data, args)
    out = Path(args.out)
    target = out / f"{args.name}.h5"
    s = api.curve_plane(curve, model, data, n=args.n, margin=args.margin, bend=args.bend, t=args.t, bn=args.bn,
                        loss=args.loss, chunk=args.chunk, path=target, progress=_progress(args))
    z = np.asarray(s["train_loss"], float)
    pts = s.extra["point_coordinates"]
    args.summary = (f"curve plane {z.shape[0]}x{z.shape[1]}: train loss {np.nanmin(z):.4g} to {np.nanmax(z):.4g}; "
                    f"w1 at ({pts[1][0]:.4g}, 0), bend at ({pts[2][0]:.4g}, {pts[2][1]:.4g})")
    return [target] + (api.plot(target, out / args.name) if args.plot else [])


def cmd_export_vtp(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"FILE {args.file!r}: no such file")
    name = f"{source.stem}_{args.name}" + (f"_zmax={args.zmax:g}" if args.zmax is not None else "") \
        + ("_log" if args.log else "") + (f"_interp={args.interp}" if args.interp else "")
    target = Path(args.out) / f"{name}.vtp"
    try:
        api.export_vtp(source, target, name=args.name, log=args.log, zmax=args.zmax, interp=args.interp)
    except (ValueError, lio.CorruptFileError) as err:
        raise UsageError(f"FILE {args.file!r}: {err}") from err
    args.summary = f"ParaView surface {args.name}{' (log)' if args.log else ''} of {source.name}"
    return [target]


LAYOUT_NAMES = {"li": "Li et al.'s layout", "losslab": "losslab's layout"}


def cmd_convert(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio
    from losslab.core.li_files import identify

    where = f"IN {args.input!r}"
    try:
        kind, layout = identify(args.input)
    except (ValueError, OSError, lio.CorruptFileError) as err:
        raise UsageError(f"{where}: {err}") from err
    target = args.to or ("losslab" if layout == "li" else "li")
    if kind == "surface" and args.model is not None:
        raise UsageError(f"--model: {where} is a surface file; only direction files need the model")
    if kind == "directions" and target == "li" and args.model is None:
        raise UsageError(f"--model: needed to write the direction file {where} in Li et al.'s layout (one dataset "
                         f"per parameter tensor, shaped like it)")
    model = build_model(args.model, args.seed) if args.model is not None else None
    try:
        if kind == "surface":
            s = api.convert_surface(args.input, args.output, to=target)
            name = next(iter(s.values))
            grid = " x ".join(str(len(c)) for c in (s.xcoordinates, s.ycoordinates) if c is not None)
            computed = int((s[name] == s[name]).sum())  # NaN (not computed) is not equal to itself
            what = (f"a {1 if s.ycoordinates is None else 2}-D surface of {grid} points ({', '.join(s.values)}"
                    f"{'; accuracies in percent' if target == 'li' else ''}), {computed} computed")
        else:
            d = api.convert_directions(args.input, args.output, model, to=target)
            tensors = f", {len(list(model.parameters()))} tensors each" if target == "li" else ""
            what = f"{1 if d.y is None else 2} direction(s) of {d.x.numel()} weights{tensors}"
    except (ValueError, lio.CorruptFileError) as err:
        raise UsageError(f"{where}: {err}") from err
    args.summary = f"wrote {args.output} in {LAYOUT_NAMES[target]}: {what}"
    return [Path(args.output)]


# ---------------------------------------------------------------- the arguments an output was made with ---
# A resumable output (a surface file, a curve's or a pattern's training checkpoint) reused with other arguments is
# refused by the library with the fingerprints that differ (sha256 digests of weights and data). The command
# records its arguments beside the output (OUT/<stem>.args.json) so that the refusal names the arguments instead.

RECORDED_STEMS = {"surface": "name", "interpolate": "name", "curve": "curve", "mpo": "mpo"}  # command -> file stem
UNRECORDED = ("command", "out", "name", "threads", "progress", "plot", "force", "title")  # change no number
GRID_OPTIONS = ("x", "y", "alpha")


def args_record_path(args: argparse.Namespace) -> Path | None:
    """OUT/<stem>.args.json for a command whose outputs a later run resumes, else None."""
    stem = RECORDED_STEMS.get(args.command)
    if stem is None:
        return None
    return Path(args.out) / f"{getattr(args, stem, stem)}.args.json"


def recorded_args(args: argparse.Namespace) -> dict[str, Any]:
    """The arguments that decide an output's numbers, as plain JSON data."""
    from losslab import io as lio

    kept = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in UNRECORDED}
    return lio.plain(kept)


def _shown(key: str, value: Any) -> str:
    if key in GRID_OPTIONS and isinstance(value, list) and len(value) == 3:
        return f"{value[0]:g}:{value[1]:g}:{value[2]}"
    return repr(value)


def differing_args(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``--option: <old> then, <new> now`` for every recorded argument that differs."""
    return [f"--{k.replace('_', '-')}: {_shown(k, old.get(k))} then, {_shown(k, new.get(k))} now"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def run_recorded(args: argparse.Namespace) -> list[Path]:
    """Run the command; a resumable output made with other arguments is refused naming the arguments that differ
    (old and new values) when its record says which, else with the library's own message."""
    from losslab import io as lio
    from losslab.core.curves import CurveMismatchError
    from losslab.core.patterns import PatternMismatchError
    from losslab.core.surfaces import SurfaceMismatchError

    record = args_record_path(args)
    if record is None:
        return COMMANDS[args.command](args)
    new = recorded_args(args)
    try:
        old = lio.read_json(record) if record.is_file() else None
    except lio.CorruptFileError:
        old = None
    made_before = {p for p in record.parent.glob(f"{record.name.removesuffix('.args.json')}.*") if p != record}
    try:
        files = COMMANDS[args.command](args)
    except (SurfaceMismatchError, CurveMismatchError, PatternMismatchError) as err:
        diffs = differing_args(old, new) if isinstance(old, Mapping) else []
        if not diffs:
            raise
        stem = record.name.removesuffix(".args.json")
        what = f"{stem}.h5" if args.command in ("surface", "interpolate") else f"{stem}.train.pt"
        raise ValueError(f"--out {args.out!r} holds {what} computed with other arguments ({'; '.join(diffs)}); "
                         f"use another --out or --name, or delete {what} to recompute it") from err
    except BaseException:
        made = {p for p in record.parent.glob(f"{record.name.removesuffix('.args.json')}.*") if p != record}
        if made - made_before:  # an interrupted run left resumable files: they are of these arguments
            lio.write_json(record, new)
        raise
    lio.write_json(record, new)
    return files


COMMANDS: dict[str, Callable[[argparse.Namespace], list[Path]]] = {
    "train": cmd_train, "surface": cmd_surface, "interpolate": cmd_interpolate, "hessian": cmd_hessian,
    "sharpness": cmd_sharpness, "curve": cmd_curve, "mpo": cmd_mpo, "plot": cmd_plot,
    "ratio-map": cmd_ratio_map, "curve-plane": cmd_curve_plane, "export-vtp": cmd_export_vtp,
    "convert": cmd_convert}


def _given_options(argv: Sequence[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in argv if a.startswith("--")}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``losslab`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status
    (argument errors exit through argparse with status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subs = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args._given = _given_options(argv)
    sub = subs[args.command]
    cpu_kernels.apply(args.cpu_kernels)  # before torch is imported: NumPy's OpenBLAS reads its setting at load
    import torch  # noqa: PLC0415 (after the kernel pin; --help stays fast)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        print(f"{PROG}: {cpu_kernels.verify_pin()}", file=sys.stderr)
        from losslab.core.placement import autocast_for, device_for, placed

        with placed(device_for(args.device, source="--device"), autocast_for(args.eval_autocast)):
            files = run_recorded(args)
    except UsageError as err:
        sub.error(str(err))  # exits with status 2
    except (ValueError, OSError, RuntimeError) as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1
    _written(files)
    # the last line on stderr: stdout stays the list of written files, for scripts
    summary = getattr(args, "summary", None) or f"{len(files)} file(s) written to {args.out}"
    print(f"{PROG} {args.command}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
