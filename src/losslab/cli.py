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

Subcommands write into ``--out`` (created): ``surface`` / ``interpolate`` an HDF5 surface and its figures,
``hessian`` ``hessian.json`` and ``density.h5``, ``sharpness`` ``sharpness.json``, ``curve`` the curve and
its evaluation, ``mpo`` the fitted pattern's maps, ``train`` a checkpoint; ``plot`` draws the figures of an
existing file; ``convert IN OUT`` writes a surface or direction file in the layout of Li et al.'s code, or
theirs in losslab's (:mod:`losslab.core.li_files`). Bad arguments exit with status 2 and a message naming the
argument; failures of the computation (e.g. a surface file computed with other arguments) with status 1.
``train`` refuses to overwrite an existing ``OUT/NAME.pt`` unless given ``--force``; the commands whose outputs a
later run resumes record their arguments in ``OUT/<stem>.args.json``, so that reusing ``--out`` with other
arguments is refused naming the arguments that differ.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from losslab.pipeline import cpu_kernels  # torch-free

PROG = "losslab"
DEVICES = ("auto", "cpu", "cuda")  # core.placement's (not imported: it brings torch; --help stays fast)
AUTOCASTS = ("none", "bf16")
LAYOUTS = ("li", "losslab")  # core.li_files.LAYOUTS (not imported: it brings torch)


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
        if len(parts) != 3 or num < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected START:STOP:NUM with NUM >= 1 (e.g. -1:1:21), not {text!r}")
    return start, stop, num


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


# ---------------------------------------------------------------- the parser ------------------------------

class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help unless the help already speaks of its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if isinstance(action, argparse.BooleanOptionalAction) and default is not None:
            return f"{text} (default: {action.option_strings[0 if default else 1]})"
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


def _evaluation(bn_default: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("evaluation")
    g.add_argument("--loss", choices=("ce", "mse"), default="ce", help="ce (cross-entropy) or mse")
    default = bn_default or "running around one checkpoint, recompute between several"
    g.add_argument("--bn", choices=("running", "recompute", "batch"), default=bn_default,
                   help=f"batch-norm statistics: the model's running ones, recomputed at every point from the "
                        f"training inputs, or each chunk's batch statistics (default: {default})")
    g.add_argument("--chunk", type=_positive_int, default=250, help="samples forwarded at a time")
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
    p.add_argument("--optimizer", default="momentum", help="sgd, momentum, nesterov, adam, adamw, ...")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--batch-size", type=_positive_int, default=128)
    p.add_argument("--name", default="model", help="file name stem of the checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT/NAME.pt (refused otherwise)")

    p = add("surface", "Li et al.'s loss surface: 1-D or 2-D around one checkpoint (filter-normalized random "
                       "directions), the interpolation between two, or the plane through three",
            [_common(), _evaluation(None)])
    _checkpoint_arg(p, "the model's weights; give it twice (interpolation) or three times (plane)")
    p.add_argument("--dims", type=int, choices=(1, 2), default=2, help="1-D or 2-D (around one checkpoint)")
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

    p = add("interpolate", "Goodfellow et al.'s linear interpolation (1 - alpha) theta_0 + alpha theta_1 "
                           "between two checkpoints", [_common(), _evaluation("recompute")])
    _checkpoint_arg(p, "give it twice: theta_0, then theta_1")
    p.add_argument("--alpha", type=_grid_spec, default=(-1.0, 2.0, 31), metavar="START:STOP:NUM")
    p.add_argument("--name", default="interpolation", help="file name stem (OUT/NAME.h5)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the figure")

    p = add("hessian", "Hessian of the training loss: top-k (and smallest) eigenvalues by Lanczos, the spectral "
                       "density (SLQ), the trace (Hutchinson)", [_common(), _evaluation("running")])
    _checkpoint_arg(p, "the model's weights")
    p.add_argument("--top-k", type=_positive_int, default=1, help="number of eigenvalues")
    p.add_argument("--which", choices=("largest", "smallest", "both"), default="largest")
    p.add_argument("--tol", type=_positive_float, default=1e-3, help="Lanczos relative residual tolerance")
    p.add_argument("--max-iter", type=_positive_int, default=None, help="Lanczos steps at most")
    p.add_argument("--weight-decay", type=float, default=0.0, help="the L2 term (wd/2)||w||^2 of the loss")
    p.add_argument("--density-runs", type=int, default=5, help="SLQ start vectors (0: no density)")
    p.add_argument("--density-steps", type=_positive_int, default=90, help="Lanczos steps per SLQ run")
    p.add_argument("--sigma2", type=_positive_float, default=1e-5, help="SLQ Gaussian kernel variance")
    p.add_argument("--trace-probes", type=int, default=100, help="Hutchinson probes (0: no trace)")
    p.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="draw the density")

    p = add("sharpness", "Keskar et al.'s epsilon-sharpness (Metric 2.1) of the training loss",
            [_common(), _evaluation("running")])
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
                     "checkpoints, evaluate it over t with BN recomputed", [_common(), _evaluation("recompute")])
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
    p.add_argument("--title", default="")

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
    return parser, subs


# ---------------------------------------------------------------- commands --------------------------------

def _progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else bool(args.progress)


def _say(args: argparse.Namespace, text: str) -> None:
    if _progress(args):
        print(f"{PROG} {args.command}: {text}", file=sys.stderr, flush=True)


def _written(paths: Sequence[Any]) -> None:
    for path in paths:
        print(path)


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
    out = Path(args.out)
    lio.save_torch(out / f"{args.name}.pt", {k: v.detach().clone() for k, v in model.state_dict().items()})
    lio.write_json(out / f"{args.name}.history.json", history)
    return [out / f"{args.name}.pt", out / f"{args.name}.history.json"]


def cmd_surface(args: argparse.Namespace) -> list[Path]:
    from losslab import api

    checkpoints = _checkpoints(args, (1, 2, 3))
    models = [load_model(args, c) for c in checkpoints]
    data = load_data(args.data, args)
    out = Path(args.out)
    target = out / f"{args.name}.h5"
    bn = args.bn or ("running" if len(models) == 1 else "recompute")
    opts = dict(loss=args.loss, bn=bn, chunk=args.chunk, path=target, progress=_progress(args))
    if len(models) == 1:
        api.surface(models[0], data, dims=args.dims, x=args.x, y=args.y, seed=args.direction_seed,
                    norm=args.norm, ignore=args.ignore, orthogonal=args.orthogonal, checkpoint=checkpoints[0],
                    **opts)
    elif len(models) == 2:
        x = args.x if "--x" in args._given else (-1.0, 2.0, 31)
        api.interpolate(models[0], models[1], data, alpha=x, checkpoints=tuple(checkpoints), **opts)
    else:
        xy = {"x": args.x, "y": args.y} if {"--x", "--y"} <= args._given else {}
        api.plane(models, data, n=args.n, margin=args.margin, checkpoints=checkpoints, **xy, **opts)
    files = [target]
    if args.plot:
        files += api.plot(target, out / args.name)
    return files


def cmd_interpolate(args: argparse.Namespace) -> list[Path]:
    from losslab import api

    checkpoints = _checkpoints(args, (2,))
    a, b = (load_model(args, c) for c in checkpoints)
    data = load_data(args.data, args)
    out = Path(args.out)
    target = out / f"{args.name}.h5"
    api.interpolate(a, b, data, alpha=args.alpha, bn=args.bn, loss=args.loss, chunk=args.chunk, path=target,
                    checkpoints=tuple(checkpoints), progress=_progress(args))
    return [target] + (api.plot(target, out / args.name) if args.plot else [])


def cmd_hessian(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    (checkpoint,) = _checkpoints(args, (1,))
    model = load_model(args, checkpoint)
    data = load_data(args.data, args)
    if args.density_runs < 0 or args.trace_probes < 0:
        raise UsageError("--density-runs / --trace-probes: must be >= 0")
    opts = dict(bn=args.bn, loss=args.loss, weight_decay=args.weight_decay, chunk=args.chunk)
    out = Path(args.out)
    _say(args, f"Lanczos for {args.top_k} {args.which} eigenvalue(s)")
    eig = api.hessian_eigenvalues(model, data, args.top_k, args.which, tol=args.tol, max_iter=args.max_iter,
                                  seed=args.seed, **opts)
    result: dict[str, Any] = {
        "checkpoint": str(checkpoint), "n": len(data.y_train), "dim": int(eig.vectors.shape[1]), **opts,
        "eigenvalues": {"which": args.which, "values": eig.values.tolist(), **eig.certificate(), "tol": args.tol}}
    if not eig.converged:
        print(f"{PROG} hessian: warning: the eigenvalues are not certified ({eig.reason}); written with "
              "converged: false", file=sys.stderr, flush=True)
    files = [out / "hessian.json"]
    if args.trace_probes:
        _say(args, f"Hutchinson trace, {args.trace_probes} probes")
        tr = api.hessian_trace(model, data, n_probes=args.trace_probes, seed=args.seed, **opts)
        result["trace"] = {"value": tr.value, "stderr": tr.stderr, "probes": args.trace_probes}
    if args.density_runs:
        _say(args, f"spectral density, {args.density_runs} x {args.density_steps} Lanczos steps")
        sd = api.spectral_density(model, data, n_runs=args.density_runs, n_steps=args.density_steps,
                                  sigma2=args.sigma2, seed=args.seed, **opts)
        api.write_spectral_density(out / "density.h5", sd)
        result["density"] = {"file": "density.h5", "mean": sd.mean, "runs": args.density_runs,
                             "steps": args.density_steps, "sigma2": sd.sigma2, "products": sd.products}
        files.append(out / "density.h5")
        if args.plot:
            files += api.plot(out / "density.h5", out)
    lio.write_json(out / "hessian.json", {**result, "platform": cpu_kernels.platform_record()})
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
                          random_starts=args.random_starts)
        rows.append({"eps": eps, "subspace_dim": r.subspace_dim, "value": r.value, "loss": r.loss,
                     "max_loss": r.max_loss, "evaluations": r.evaluations, "start": r.start,
                     "starts": dict(r.starts or {})})
    out = Path(args.out)
    lio.write_json(out / "sharpness.json", {"checkpoint": str(checkpoint), "n": len(data.y_train),
                                            "maxiter": args.maxiter, "method": args.method, "bn": args.bn,
                                            "values": rows, "platform": cpu_kernels.platform_record()})
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
                            path=out / "curve.h5")
    lio.write_json(out / "curve.json", {"kind": args.kind, "bends": args.bends, "checkpoints": checkpoints,
                                        "metrics": ev.metrics, "platform": cpu_kernels.platform_record()})
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
                          checkpoint_path=out / "mpo.train.pt")
    fit.maps.save(out / "mpo.npz", pattern=pattern)
    lio.write_json(out / "mpo.json", {"pattern": args.pattern, "shape": list(pattern.shape), "steps": args.steps,
                                      "metrics": fit.metrics, "platform": cpu_kernels.platform_record()})
    files = [out / "mpo.npz", out / "mpo.json"]
    if args.plot:
        files += fit.figure(out / "mpo", title="MPO pattern fit")
    return files


def cmd_plot(args: argparse.Namespace) -> list[Path]:
    from losslab import api
    from losslab import io as lio

    if not Path(args.file).is_file():
        raise UsageError(f"FILE {args.file!r}: no such file")
    try:
        return api.plot(args.file, args.out, args.title)
    except (ValueError, lio.CorruptFileError) as err:
        raise UsageError(f"FILE {args.file!r}: {err}") from err


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
    args.summary = f"{PROG} convert: wrote {args.output} in {LAYOUT_NAMES[target]}: {what}"
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
    "sharpness": cmd_sharpness, "curve": cmd_curve, "mpo": cmd_mpo, "plot": cmd_plot, "convert": cmd_convert}


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
    if getattr(args, "summary", None):
        print(args.summary)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
