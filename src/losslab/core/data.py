"""Datasets as in-memory tensors, and preprocessing as named, composable steps.

Every dataset comes back as float32 inputs on the ``[0, 1]`` scale of torchvision's ``ToTensor`` (MNIST-1D,
which the mnist1d package already standardises, is the exception and says so) and int64 labels.
Nothing here downloads anything unless a caller passes ``download=True`` for a torchvision dataset.

Preprocessing steps:

* ``normalize``: per-channel standardisation with the training split's mean and std (static: applied once);
* ``shift``: zero-pad by ``pad`` pixels and crop back at a random offset (random: applied per batch);
* ``flip``: horizontal flip with probability 1/2 (random: applied per batch).

A dataset declares which steps are valid for it (no flip for digits: a flipped 2 is not a 2).

Where the data live are a job's :class:`DataRoots` (``data_dir``: the torchvision datasets; ``resources``: the
cached generated ones), set once at the door by :func:`losslab.pipeline.job.start_job` from the config, or in a
library session by the :func:`use_data_roots` context manager; :func:`prepare` and :func:`load` read them for
any root not given explicitly, so the analyses do not pass them down.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from losslab import io as lio


class DataError(ValueError):
    """A dataset cannot be loaded as asked (unknown name, missing files, invalid preprocessing)."""


log = logging.getLogger(__name__)


# ---------------------------------------------------------------- checks at the door ------------------------

def nonfinite_count(values: torch.Tensor) -> str:
    """How many NaN and infinite entries ``values`` holds, in words ("3 NaN values", "1 NaN and 2 infinite
    values"), or "" when every entry is finite (integer tensors always are)."""
    if not values.is_floating_point() or values.numel() == 0:
        return ""
    nan, inf = int(torch.isnan(values).sum()), int(torch.isinf(values).sum())
    parts = [f"{c} {w}" for c, w in ((nan, "NaN"), (inf, "infinite")) if c]
    return f"{' and '.join(parts)} value{'s' if nan + inf > 1 else ''}" if parts else ""


def check_finite(values: torch.Tensor, what: str) -> None:
    """Refuse ``values`` (a split's inputs or float labels, sample-major) holding NaN or infinity, with one line
    naming ``what``, the count and the first sample: ``train inputs: 3 NaN values (first at sample 17)``. A
    single NaN input makes every loss of a surface NaN, and a training run diverge at its first batch."""
    found = nonfinite_count(values)
    if found:
        bad = ~torch.isfinite(values.reshape(len(values), -1)).all(dim=1)
        first = int(torch.nonzero(bad)[0, 0])
        raise DataError(f"{what}: {found} (first at sample {first}); the data must be finite numbers")


def float32_inputs(array: np.ndarray, what: str) -> np.ndarray:
    """A NumPy float64 array (NumPy's default float) as float32, the precision of a model built with torch's
    defaults, with a logged note (torch refuses float64 inputs to float32 weights); other arrays unchanged."""
    if array.dtype != np.float64:
        return array
    log.warning("%s: NumPy float64 array cast to float32 (the precision of torch's default weights); pass float32 "
                "to silence this note", what)
    return array.astype(np.float32)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    steps: tuple[str, ...]  # valid preprocessing steps
    default_pad: int  # pixels of padding for ``shift``
    source: str  # how the data are obtained, for messages


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", ("normalize", "shift"), 1, "scikit-learn's bundled 8x8 digits"),
    "mnist1d": DatasetInfo("mnist1d", ("normalize", "shift"), 4,
                           "generated procedurally by the mnist1d package"),
    "cifar10": DatasetInfo("cifar10", ("normalize", "shift", "flip"), 4,
                           "torchvision CIFAR10 files (cifar-10-batches-py/)"),
    "mnist": DatasetInfo("mnist", ("normalize", "shift"), 2, "torchvision MNIST files (MNIST/raw/)"),
    "fashion_mnist": DatasetInfo("fashion_mnist", ("normalize", "shift", "flip"), 2,
                                 "torchvision FashionMNIST files (FashionMNIST/raw/)"),
}

STEPS = ("normalize", "shift", "flip")

# loader options a config may set under ``options`` (anything else is a typo and is refused, not ignored)
OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": (),
    "mnist1d": ("num_samples", "seed"),
    "cifar10": (),
    "mnist": (),
    "fashion_mnist": (),
}


# ----------------------------------------------------------------------------------------------------------
# where the data live: the job's roots
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataRoots:
    """Where a job's data live: ``data_dir``, the folder of the torchvision datasets (None: none, and a
    torchvision dataset is an error naming the config key), and ``resources``, the folder of the cached
    generated datasets (MNIST-1D, the digits split). The defaults are the config's when it sets neither."""

    data_dir: str | os.PathLike | None = None
    resources: str | os.PathLike = "resources"

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> DataRoots:
        """The roots of the workflow config's ``data_dir`` and ``resources`` keys (read as the rules read
        them: ``data_dir`` default None, ``resources`` default ``"resources"``)."""
        return cls(config.get("data_dir"), config.get("resources", "resources"))


_DATA_ROOTS: contextvars.ContextVar[DataRoots] = contextvars.ContextVar("losslab_data_roots", default=DataRoots())


def data_roots() -> DataRoots:
    """The current data roots (``DataRoots()`` unless a job or :func:`use_data_roots` set others)."""
    return _DATA_ROOTS.get()


def set_data_roots(roots: DataRoots) -> DataRoots:
    """Set this job's data roots (:func:`losslab.pipeline.job.start_job` does, from the config)."""
    if not isinstance(roots, DataRoots):
        raise TypeError(f"set_data_roots: expected a DataRoots, not {type(roots).__name__}")
    _DATA_ROOTS.set(roots)
    return roots


@contextmanager
def use_data_roots(data_dir: str | os.PathLike | None = None,
                   resources: str | os.PathLike = "resources") -> Iterator[DataRoots]:
    """Read the data of every :func:`prepare` inside the block from ``data_dir`` and ``resources``; the
    previous roots come back after it."""
    token = _DATA_ROOTS.set(DataRoots(data_dir, resources))
    try:
        yield _DATA_ROOTS.get()
    finally:
        _DATA_ROOTS.reset(token)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


# ----------------------------------------------------------------------------------------------------------
# raw loaders: name -> (x float32 [N, C, ...] in [0, 1], y int64 [N])
# ----------------------------------------------------------------------------------------------------------

_ARRAYS = ("x", "y", "x_test", "y_test")


def _npz_cache(path: Path, what: str, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays cached in ``path``: read if present, else made by ``make()`` and written atomically.

    A damaged cache is never trusted (nor silently overwritten): the error names it."""
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in _ARRAYS}
        except Exception as err:  # unreadable, truncated, or missing one of the arrays
            raise DataError(f"{path}: corrupt {what} cache ({err!r}); delete it to regenerate") from err
    arrays = make()
    with lio.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return arrays


def _split(arrays: dict[str, np.ndarray], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    xk, yk = ("x", "y") if split == "train" else ("x_test", "y_test")
    x = torch.from_numpy(arrays[xk].astype(np.float32)).unsqueeze(1)
    return x, torch.from_numpy(arrays[yk].astype(np.int64))


def _make_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits  # imported only when the cache is made: it costs seconds
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    # fixed stratified split: 1437 train / 360 test
    tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    tr, te = np.sort(tr), np.sort(te)
    return {"x": x[tr], "y": y[tr], "x_test": x[te], "y_test": y[te]}


def _digits(split: str, *, resources: str | os.PathLike = "resources", **_: Any) -> tuple[torch.Tensor,
                                                                                            torch.Tensor]:
    return _split(_npz_cache(Path(resources) / "digits_split0.npz", "digits", _make_digits), split)


MNIST1D_DEFAULTS = {"num_samples": 5000, "seed": 42}


def _mnist1d(split: str, *, resources: str | os.PathLike = "resources", num_samples: int | None = None,
             seed: int | None = None, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    num_samples = MNIST1D_DEFAULTS["num_samples"] if num_samples is None else num_samples
    seed = MNIST1D_DEFAULTS["seed"] if seed is None else seed
    if not _is_int(num_samples) or num_samples < 10:
        raise DataError(f"mnist1d: num_samples must be an integer >= 10 (one per class), not {num_samples!r}")
    if not _is_int(seed):
        raise DataError(f"mnist1d: seed must be an integer, not {seed!r}")
    def make() -> dict[str, np.ndarray]:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = num_samples
        args.seed = seed
        # make_dataset seeds numpy's and Python's global RNGs: leave both as they were
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            made = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return {k: np.asarray(made[k]) for k in _ARRAYS}

    return _split(_npz_cache(Path(resources) / f"mnist1d_n{num_samples}_seed{seed}.npz", "MNIST-1D", make),
                  split)


_TV_CLASSES = {"cifar10": "CIFAR10", "mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
# the files torchvision reads, relative to the data directory
_TV_FILES = {
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                                        "data_batch_5", "test_batch", "batches.meta")),
    "mnist": ("MNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte")),
    "fashion_mnist": ("FashionMNIST/raw", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
}


def _torchvision(name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    def load(split: str, *, root: str | os.PathLike | None = None, download: bool = False,
             **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if root is None:
            raise DataError(f"{name}: needs a data directory: set `data_dir` in the config")
        import torchvision.datasets as tvd  # imported only here: it costs seconds at start-up

        cls = getattr(tvd, _TV_CLASSES[name])
        try:
            ds = cls(root=str(root), train=(split == "train"), download=download)
        except RuntimeError as err:
            sub, files = _TV_FILES[name]
            where = Path(root) / sub
            raise DataError(
                f"{name}: no usable files in {str(where)!r} under data_dir={str(root)!r} ({err}). Put the "
                f"{DATASETS[name].source} there ({', '.join(files)}, torchvision's layout), or set "
                f"`download: true` in the config on a machine with internet access."
            ) from err
        data = torch.as_tensor(np.asarray(ds.data))
        x = data.float().div_(255.0)
        x = x.permute(0, 3, 1, 2).contiguous() if x.ndim == 4 else x.unsqueeze(1)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
        if len(x) != len(y):
            raise DataError(f"{name} ({split}) under data_dir={str(root)!r}: {len(x)} inputs but {len(y)} labels")
        return x, y

    return load


_LOADERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "digits": _digits,
    "mnist1d": _mnist1d,
    **{n: _torchvision(n) for n in _TV_CLASSES},
}


def load(name: str, split: str, *, root: str | os.PathLike | None = None,
         resources: str | os.PathLike | None = None, download: bool = False,
         **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw inputs and labels of one split of a dataset, as tensors: a torchvision dataset read from ``root``, a
    generated one cached in ``resources``; either one None is the job's (:func:`data_roots`)."""
    roots = data_roots()
    root = roots.data_dir if root is None else root
    resources = roots.resources if resources is None else resources
    if name not in _LOADERS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(_LOADERS)}")
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', not {split!r}")
    unknown = sorted(set(options) - set(OPTIONS[name]))
    if unknown:
        raise DataError(f"{name}: unknown option(s) {unknown}; known: {list(OPTIONS[name])}")
    return _LOADERS[name](split, root=root, resources=resources, download=download, **options)


# ----------------------------------------------------------------------------------------------------------
# preprocessing
# ----------------------------------------------------------------------------------------------------------

def parse_steps(name: str, steps: Sequence[str | Mapping[str, Any]]) -> list[tuple[str, dict]]:
    """Normalise a preprocessing list (``["normalize", {"shift": 2}, "flip"]``) and check it against the
    dataset's valid steps."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    if isinstance(steps, (str, Mapping)):
        raise DataError(f"preprocessing must be a list of steps, not {steps!r}")
    info = DATASETS[name]
    out: list[tuple[str, dict]] = []
    for step in steps:
        if isinstance(step, str):
            key, val = step, None
        elif isinstance(step, Mapping) and len(step) == 1:
            key, val = next(iter(step.items()))
        else:
            raise DataError(f"preprocessing step {step!r}: expected a name or a one-key mapping")
        if key not in STEPS:
            raise DataError(f"unknown preprocessing step {key!r}; known: {list(STEPS)}")
        if key not in info.steps:
            raise DataError(f"preprocessing step {key!r} is not valid for {name} (valid: {list(info.steps)})")
        if val is None:
            opts: dict = {}
        elif key == "shift" and not isinstance(val, Mapping):
            opts = {"pad": val}
        elif isinstance(val, Mapping):
            opts = dict(val)
        else:
            raise DataError(f"preprocessing step {step!r}: options must be a mapping")
        allowed = ("pad",) if key == "shift" else ()
        if set(opts) - set(allowed):
            raise DataError(f"preprocessing step {key!r}: unknown option(s) {sorted(set(opts) - set(allowed))}; "
                            f"known: {list(allowed)}")
        if key == "shift":
            pad = opts.setdefault("pad", info.default_pad)
            if not _is_int(pad) or pad < 0:
                raise DataError(f"preprocessing step shift: pad must be an integer >= 0, not {pad!r}")
            opts["pad"] = int(pad)
        out.append((key, opts))
    return out


def shift_batch(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad the spatial dims by ``pad`` and crop back at an independent random offset per sample."""
    if pad <= 0:
        return x
    b = x.shape[0]
    spatial = x.shape[2:]
    padded = torch.nn.functional.pad(x, [pad] * (2 * len(spatial)))
    # drawn from the (CPU) generator whatever the device, so a GPU run sees the same shifts as a CPU run
    offsets = torch.randint(0, 2 * pad + 1, (b, len(spatial)), generator=generator).to(x.device)
    dev = x.device
    index: list[torch.Tensor] = [torch.arange(b, device=dev).view(b, *[1] * (x.ndim - 1)),
                                 torch.arange(x.shape[1], device=dev).view(1, -1, *[1] * len(spatial))]
    for d, size in enumerate(spatial):
        shape = [b, 1] + [1] * len(spatial)
        shape[2 + d] = size
        index.append((torch.arange(size, device=dev).unsqueeze(0) + offsets[:, d:d + 1]).view(shape))
    return padded[tuple(index)]


def flip_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    out = x.clone()
    out[mask] = x[mask].flip(-1)
    return out


# the seeds of the evaluation subsets (Prepared.evaluation_subsets); the training subsets of a dataset spec's
# n_train / n_test use 1 and 2 (prepare)
EVAL_TRAIN_SEED, EVAL_TEST_SEED = 3, 4


@dataclass
class Prepared:
    """A dataset ready for training: static steps applied, random ones as ``augment``."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    random_steps: list[tuple[str, dict]] = field(default_factory=list)
    normalization: dict[str, list[float]] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def check_finite(self) -> "Prepared":
        """``self``, after refusing NaN or infinite inputs (and float labels) in either split
        (:func:`check_finite`, a :class:`DataError` naming the split)."""
        for split in ("train", "test"):
            check_finite(getattr(self, f"x_{split}"), f"{split} inputs")
            check_finite(getattr(self, f"y_{split}"), f"{split} labels")
        return self

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: str | torch.device) -> "Prepared":
        """The same dataset with its four tensors on ``device`` (moved once: training and evaluation then
        index them there, batch by batch); ``self`` when they are there already."""
        device = torch.device(device)
        tensors = (self.x_train, self.y_train, self.x_test, self.y_test)
        if all(t.device == device for t in tensors):
            return self
        x_tr, y_tr, x_te, y_te = (t.to(device) for t in tensors)
        return replace(self, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)

    def evaluation_subsets(self, n_train: int | None = None, n_test: int | None = None) -> "Prepared":
        """The data cut to the fixed evaluation subsets every analysis evaluates on: ``n_train`` samples of the
        training split drawn with seed :data:`EVAL_TRAIN_SEED`, ``n_test`` of the test split with
        :data:`EVAL_TEST_SEED` (None: all of the split). Surfaces, interpolations, curves, MPO planes and
        Hessians of one network all see the same samples."""
        x_tr, y_tr = subset(self.x_train, self.y_train, n_train, seed=EVAL_TRAIN_SEED)
        x_te, y_te = subset(self.x_test, self.y_test, n_test, seed=EVAL_TEST_SEED)
        return replace(self, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for key, opts in self.random_steps:
            x = shift_batch(x, opts["pad"], generator) if key == "shift" else flip_batch(x, generator)
        return x


def subset(x: torch.Tensor, y: torch.Tensor, n: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random subset of ``n`` samples (in their original order), drawn with ``seed``; all if ``n`` is
    None or at least the size."""
    if n is None:
        return x, y
    if not _is_int(n) or n < 1:
        raise DataError(f"n_train / n_test must be a positive integer, not {n!r}")
    if n >= len(y):
        return x, y
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    perm, _ = perm.sort()
    return x[perm], y[perm]


def random_labels(y: torch.Tensor, num_classes: int, fraction: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Zhang et al. (2017)'s random labels: a fixed random ``fraction`` of the samples (chosen by a permutation
    drawn with ``seed``) get a label drawn uniformly from the ``num_classes`` classes (with the same seed); the
    other labels are kept. ``fraction=1`` replaces every label."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise DataError(f"random_labels.fraction must be in (0, 1], not {fraction!r}")
    if not _is_int(seed):
        raise DataError(f"random_labels.seed must be an integer, not {seed!r}")
    gen = torch.Generator().manual_seed(20_000 + int(seed))
    chosen = torch.randperm(len(y), generator=gen)[:int(round(fraction * len(y)))]
    out = y.clone()
    out[chosen] = torch.randint(0, num_classes, (len(chosen),), generator=gen)
    return out


def prepare(spec: Mapping[str, Any], *, data_dir: str | os.PathLike | None = None,
            resources: str | os.PathLike | None = None) -> Prepared:
    """Build a :class:`Prepared` dataset from a config mapping, its files read from ``data_dir`` (torchvision
    datasets) and ``resources`` (cached generated ones); either one not given is the job's
    (:func:`data_roots`: by default no data directory and ``"resources"``).

    Keys: ``name``; ``preprocessing`` (list of steps); optional ``classes`` (keep these labels, relabelled
    0..k-1), ``n_train`` / ``n_test`` (a fixed random subset), ``download``, ``options`` (loader options,
    e.g. ``num_samples`` for mnist1d), ``random_labels`` (``{fraction, seed}``: :func:`random_labels` on the
    training split only; the test split keeps its true labels).
    """
    name = spec["name"]
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    steps = parse_steps(name, spec.get("preprocessing", []))
    kwargs = dict(root=data_dir, resources=resources, download=bool(spec.get("download", False)),
                  **dict(spec.get("options", {})))
    x_tr, y_tr = load(name, "train", **kwargs)
    x_te, y_te = load(name, "test", **kwargs)
    num_classes = int(max(y_tr.max(), y_te.max())) + 1

    classes = spec.get("classes")
    if classes is not None:
        classes = list(classes)
        bad = [c for c in classes if not _is_int(c) or not 0 <= c < num_classes]
        if bad or not classes or len(set(classes)) != len(classes):
            raise DataError(f"{name}: classes must be distinct labels in 0..{num_classes - 1}, not {classes!r}")
        lut = torch.full((num_classes,), -1, dtype=torch.int64)
        lut[torch.as_tensor(list(classes))] = torch.arange(len(classes))
        keep_tr, keep_te = lut[y_tr] >= 0, lut[y_te] >= 0
        x_tr, y_tr = x_tr[keep_tr], lut[y_tr[keep_tr]]
        x_te, y_te = x_te[keep_te], lut[y_te[keep_te]]
        num_classes = len(classes)

    x_tr, y_tr = subset(x_tr, y_tr, spec.get("n_train"), seed=1)
    x_te, y_te = subset(x_te, y_te, spec.get("n_test"), seed=2)
    noise = spec.get("random_labels")
    if noise is not None:
        if not isinstance(noise, Mapping) or set(noise) - {"fraction", "seed"}:
            raise DataError(f"{name}: random_labels must be a mapping with keys fraction, seed; not {noise!r}")
        y_tr = random_labels(y_tr, num_classes, noise.get("fraction", 1.0), noise.get("seed", 0))

    normalization = None
    random_steps = []
    for key, opts in steps:
        if key == "normalize":
            dims = [0] + list(range(2, x_tr.ndim))
            mean = x_tr.mean(dim=dims, keepdim=True)
            std = x_tr.std(dim=dims, keepdim=True).clamp_min(1e-8)
            x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
            normalization = {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}
        else:
            random_steps.append((key, opts))
    return Prepared(name, x_tr.contiguous(), y_tr, x_te.contiguous(), y_te, num_classes, random_steps,
                    normalization)

