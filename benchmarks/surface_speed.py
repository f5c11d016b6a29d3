"""How fast is the surface engine? Points per second of a 2-D loss surface, three ways, in one process.

(a) losslab's engine: :func:`losslab.surfaces.surface_2d` (functional_call on in-memory chunks, resumable
    HDF5 output included);
(b) the loss-landscape way (Li et al.'s ``plot_surface.py``): per point, ``model.load_state_dict`` of the
    perturbed weights and a pass of a ``torch.utils.data.DataLoader`` with batch 128;
(b2) the loss-landscape way with its data path: the same loop over a dataset that, like torchvision's
    CIFAR10 with ``transforms.Compose([ToTensor(), Normalize(...)])`` in Li et al.'s ``dataloader.py``,
    stores the raw samples and converts and normalises each one in ``__getitem__`` at every pass;
(c) the floor: the same number of plain ``model(x)`` forward passes over the same chunks, nothing else
    (also shown at (b)'s batch of 128, which splits (b)'s time into forward passes and loader overhead).

Setups (``--setup``): ``smoke`` is the smoke scale's skip-connection surface (1-D ResNet-20, width 8, on
MNIST-1D, 1000 training samples); ``digits`` a 2-D ResNet-8 (width 8) on the 8x8 digits. Same model, data
and grid for every contender, one thread. Prints points per second and the ratios (a)/(b), (a)/(b2) and
(a)/(c). Not a test: ``python benchmarks/surface_speed.py --setup smoke``.

Timing noise: glibc's malloc serves blocks above a moving threshold (128 KiB at first) with fresh ``mmap``
pages, so the same forward pass takes 6 ms or 13 ms depending on what was allocated before (activations of
a 250-500 sample chunk are 0.5-1 MiB). The script pins the thresholds with ``mallopt`` first (as
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` would); ``--no-pin-malloc`` shows the noise. Timings
are also interleaved round by round and the minimum kept, because the machine is shared.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from losslab.data import prepare
from losslab.directions import random_directions
from losslab.models import build, count_parameters
from losslab.params import flatten, unflatten
from losslab.surfaces import evaluators_for, surface_2d
from timing import best_seconds, pin_malloc






def loss_landscape_style(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                         points: list[torch.Tensor], batch_size: int = 128) -> list[tuple[float, float]]:
    """Li et al.'s loop: load each point's weights into the model, then evaluate through a DataLoader."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    criterion = torch.nn.CrossEntropyLoss()
    state = model.state_dict()
    out = []
    for vec in points:
        state.update({k: v.clone() for k, v in unflatten(model, vec).items()})
        model.load_state_dict(state)
        model.eval()
        total, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for inputs, targets in loader:
                outputs = model(inputs)
                total += criterion(outputs, targets).item() * len(targets)
                correct += outputs.max(1)[1].eq(targets).sum().item()
                n += len(targets)
        out.append((total / n, correct / n))
    return out


class RawDataset(torch.utils.data.Dataset):
    """Samples kept raw (numpy, as torchvision datasets keep them), each converted to a float tensor and
    normalised (``(x - mean) / std``, torchvision's ``Normalize``) when it is read, at every pass."""

    def __init__(self, raw: np.ndarray, y: torch.Tensor, mean: float, std: float):
        self.raw, self.y, self.mean, self.std = raw, y.tolist(), mean, std

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return (torch.from_numpy(self.raw[i]).float() - self.mean) / self.std, self.y[i]


def loss_landscape_with_data_path(model: torch.nn.Module, dataset: RawDataset, points: list[torch.Tensor],
                                  batch_size: int = 128) -> None:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    criterion = torch.nn.CrossEntropyLoss()
    state = model.state_dict()
    for vec in points:
        state.update({k: v.clone() for k, v in unflatten(model, vec).items()})
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            for inputs, targets in loader:
                outputs = model(inputs)
                criterion(outputs, targets).item()
                outputs.max(1)[1].eq(targets).sum().item()


def floor(model: torch.nn.Module, x: torch.Tensor, n_points: int, chunk: int) -> None:
    """Only the forward passes: ``n_points`` times the data through the model in chunks."""
    model.eval()
    with torch.no_grad():
        for _ in range(n_points):
            for i in range(0, len(x), chunk):
                model(x[i:i + chunk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=["smoke", "digits"], default="smoke")
    parser.add_argument("--n", type=int, default=1000, help="training samples")
    parser.add_argument("--grid", type=int, default=5, help="points per axis")
    parser.add_argument("--chunk", type=int, default=250, help="samples per forward pass of the engine")
    parser.add_argument("--tile-rows", type=int, default=1, help="engine: grid rows per tile (one file write each)")
    parser.add_argument("--no-pin-malloc", action="store_true", help="leave glibc's malloc thresholds alone")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved timing rounds")
    args = parser.parse_args()

    pinned = False if args.no_pin_malloc else pin_malloc()
    torch.set_num_threads(1)
    name = "mnist1d" if args.setup == "smoke" else "digits"
    spec = {"name": "resnet", "depth": 20 if args.setup == "smoke" else 8, "width": 8}
    data = prepare({"name": name, "n_train": args.n}, resources=tempfile.gettempdir() + "/losslab-bench")
    mean, std = float(data.x_train.mean()), float(data.x_train.std())
    raw = RawDataset(data.x_train.double().numpy(), data.y_train, mean, std)
    data.x_train = (data.x_train - mean) / std  # the engine holds the normalised tensors in memory
    torch.manual_seed(0)
    model = build(spec, data.input_shape, data.num_classes).eval()
    origin = flatten(model)
    dirs = random_directions(model, seed=0)
    xs = ys = np.linspace(-1, 1, args.grid)
    points = [origin + float(a) * dirs.x + float(b) * dirs.y for a in xs for b in ys]
    n_points = len(points)
    evaluators = evaluators_for(model, data, splits=("train",), chunk=args.chunk)

    with tempfile.TemporaryDirectory() as tmp:
        runs = iter(range(10 ** 6))

        def engine() -> object:  # a fresh file each time: nothing is resumed
            return surface_2d(Path(tmp) / f"s{next(runs)}.h5", evaluators, origin, dirs, xs, ys, progress=False,
                              tile_rows=args.tile_rows)

        surface = engine()  # warm-up and the values for the check below
        reference = loss_landscape_style(model, data.x_train, data.y_train, points)
        seconds = best_seconds({
            "a": engine,
            "b": lambda: loss_landscape_style(model, data.x_train, data.y_train, points),
            "b2": lambda: loss_landscape_with_data_path(model, raw, points),
            "c": lambda: floor(model, data.x_train, n_points, args.chunk),
            "c128": lambda: floor(model, data.x_train, n_points, 128),
        }, args.repeats)

    agree = np.allclose(surface["train_loss"].reshape(-1), [r[0] for r in reference], rtol=1e-4)
    rate = {k: n_points / t for k, t in seconds.items()}
    print(f"{args.setup}: ResNet-{spec['depth']} width 8 ({count_parameters(model)} weights), {data.name} "
          f"n={len(data.y_train)} "
          f"{tuple(data.input_shape)}, grid {args.grid}x{args.grid}, engine chunk {args.chunk}, "
          f"tile rows {args.tile_rows}, threads {torch.get_num_threads()}, torch {torch.__version__}, "
          f"malloc pinned {pinned}, best of {args.repeats} interleaved rounds")
    print(f"(a) losslab engine (surface_2d)        : {rate['a']:8.1f} points/s")
    print(f"(b) loss-landscape loop (DataLoader 128): {rate['b']:8.1f} points/s")
    print(f"(b2) with its per-sample data path      : {rate['b2']:8.1f} points/s")
    print(f"(c) floor (plain forward passes)        : {rate['c']:8.1f} points/s")
    print(f"    floor at (b)'s batch 128             : {rate['c128']:8.1f} points/s "
          f"(so DataLoader + load_state_dict cost {1e3 / rate['b'] - 1e3 / rate['c128']:.1f} ms a point)")
    print(f"(a)/(b) = {rate['a'] / rate['b']:.2f}x   (a)/(b2) = {rate['a'] / rate['b2']:.2f}x   "
          f"(a)/(c) = {rate['a'] / rate['c']:.2f}x   same losses as (b): {agree}")


if __name__ == "__main__":
    main()
