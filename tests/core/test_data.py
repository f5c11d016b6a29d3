"""Tests for losslab.core.data: loaders (digits, MNIST-1D, torchvision formats written by the test), preprocessing."""

from __future__ import annotations

import hashlib
import pickle
import random
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.core import data

ALL_NAMES = ("digits", "mnist1d", "cifar10", "mnist", "fashion_mnist")


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------

class NetworkUsed(Exception):
    """Raised by the patched download helpers: any attempt to reach the network fails the test loudly."""


@pytest.fixture
def no_network(monkeypatch):
    """Make every torchvision download helper (and urllib) raise, recording the attempts."""
    import urllib.request

    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.mnist as tv_mnist
    import torchvision.datasets.utils as tv_utils

    calls: list[str] = []

    def refuse(*args, **kwargs):
        calls.append(repr(args[:1]))
        raise NetworkUsed(f"network access attempted: {args[:1]}")

    for mod in (tv_utils, tv_cifar, tv_mnist):
        for attr in ("download_url", "download_and_extract_archive"):
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar_pixel(n: int, c: int, h: int, w: int) -> int:
    """A pixel value that identifies (image, channel, row, column) on the uint8 scale."""
    return (n * 37 + c * 101 + h * 7 + w * 3) % 256


def _cifar_images(n: int, start: int) -> np.ndarray:
    """``n`` images in CIFAR's on-disk layout: uint8 rows of 3072 = 3 x 32 x 32, row-major channel-height-width."""
    nn_, c, h, w = np.meshgrid(np.arange(start, start + n), np.arange(3), np.arange(32), np.arange(32),
                               indexing="ij")
    img = ((nn_ * 37 + c * 101 + h * 7 + w * 3) % 256).astype(np.uint8)  # == cifar_pixel, vectorised
    return img.reshape(n, 3072)


CIFAR_PER_BATCH = 2
CIFAR_N_TEST = 3


def write_cifar(root: Path) -> dict[str, str]:
    """Write a tiny CIFAR-10 in the real ``cifar-10-batches-py`` format; return {file name: md5}.

    The real files are Python 2 pickles whose ``str`` keys unpickle (with torchvision's ``encoding="latin1"``)
    as ``"data"``, ``"labels"``, ``"label_names"`` (they read as ``b"data"`` etc. only with
    ``encoding="bytes"``); Python 3 ``str`` keys unpickle to the same objects.
    """
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    start = 0
    for i in range(1, 6):
        labels = [(start + j) % 10 for j in range(CIFAR_PER_BATCH)]
        entry = {"batch_label": f"training batch {i} of 5", "labels": labels,
                 "data": _cifar_images(CIFAR_PER_BATCH, start),
                 "filenames": [f"img{start + j}.png" for j in range(CIFAR_PER_BATCH)]}
        (base / f"data_batch_{i}").write_bytes(pickle.dumps(entry, protocol=2))
        start += CIFAR_PER_BATCH
    test = {"batch_label": "testing batch 1 of 1", "labels": [9, 0, 5],
            "data": _cifar_images(CIFAR_N_TEST, 1000), "filenames": ["t0.png", "t1.png", "t2.png"]}
    (base / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"], "num_cases_per_batch": CIFAR_PER_BATCH, "num_vis": 3072}
    (base / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {p.name: _md5(p) for p in base.iterdir()}


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """A data directory holding the tiny CIFAR-10; torchvision's expected md5 sums point at these files."""
    import torchvision.datasets as tvd

    md5 = write_cifar(tmp_path)
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]]
                                                    for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": md5["batches.meta"]})
    return tmp_path


def _idx(magic: int, arr: np.ndarray) -> bytes:
    return struct.pack(">" + "i" * (1 + arr.ndim), magic, *arr.shape) + arr.astype(np.uint8).tobytes()


MNIST_N = {"train": 6, "t10k": 4}


def mnist_images(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    n = MNIST_N[prefix]
    seed = 1 if prefix == "train" else 2
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 0
    images[0, 0, 0] = 255  # the scale: one pixel at 255, one at 0
    labels = (np.arange(n) * 3 + seed) % 10
    return images, labels


def write_mnist(root: Path, folder: str) -> None:
    """Uncompressed idx files, as torchvision reads them, under ``root/<folder>/raw``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix in MNIST_N:
        images, labels = mnist_images(prefix)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(2051, images))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(2049, labels))


# ----------------------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------------------

def test_digits_shapes_scale_and_dtypes():
    x_tr, y_tr = data.load("digits", "train")
    x_te, y_te = data.load("digits", "test")
    assert x_tr.shape == (1437, 1, 8, 8) and x_te.shape == (360, 1, 8, 8)
    assert y_tr.shape == (1437,) and y_te.shape == (360,)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    for x in (x_tr, x_te):
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_digits_split_is_fixed_stratified_and_a_partition():
    from sklearn.datasets import load_digits

    x_tr, y_tr = data.load("digits", "train")
    x_te, y_te = data.load("digits", "test")
    x_tr2, y_tr2 = data.load("digits", "train")
    x_te2, y_te2 = data.load("digits", "test")
    assert torch.equal(x_tr, x_tr2) and torch.equal(y_tr, y_tr2)
    assert torch.equal(x_te, x_te2) and torch.equal(y_te, y_te2)

    tr_counts, te_counts = Counter(y_tr.tolist()), Counter(y_te.tolist())
    assert set(tr_counts) == set(te_counts) == set(range(10))
    bunch = load_digits()
    full = Counter(bunch.target.tolist())
    for c in range(10):
        assert tr_counts[c] + te_counts[c] == full[c]
        assert abs(te_counts[c] - 0.2 * full[c]) <= 1  # stratified

    # train + test is exactly the dataset (as a multiset of (image, label) pairs)
    def rows(x, y):
        return sorted((img.tobytes(), int(lab)) for img, lab in zip((x.numpy() * 16).round().astype(np.int8), y))

    whole = torch.from_numpy(bunch.images.astype(np.float32) / 16).unsqueeze(1)
    assert rows(torch.cat([x_tr, x_te]), torch.cat([y_tr, y_te])) == rows(whole, torch.from_numpy(bunch.target))


# ----------------------------------------------------------------------------------------------------------
# MNIST-1D
# ----------------------------------------------------------------------------------------------------------

def test_mnist1d_default_shapes_and_rng_untouched(tmp_path):
    np.random.seed(1234)
    random.seed(1234)
    np_state = np.random.get_state()
    py_state = random.getstate()
    x_tr, y_tr = data.load("mnist1d", "train", resources=tmp_path)
    after_np = np.random.get_state()
    assert after_np[0] == np_state[0] and np.array_equal(after_np[1], np_state[1]) and after_np[2:] == np_state[2:]
    assert random.getstate() == py_state
    x_te, y_te = data.load("mnist1d", "test", resources=tmp_path)
    assert x_tr.shape == (4000, 1, 40) and x_te.shape == (1000, 1, 40)
    assert y_tr.shape == (4000,) and y_te.shape == (1000,)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert set(y_tr.tolist()) == set(range(10))
    assert (tmp_path / "mnist1d_n5000_seed42.npz").is_file()


def test_mnist1d_generated_by_package_and_cached(tmp_path, monkeypatch):
    import mnist1d.data as m1d

    def no_download(*args, **kwargs):
        raise NetworkUsed("mnist1d's download path must never be used")

    monkeypatch.setattr(m1d, "get_dataset", no_download)
    resources = tmp_path / "resources"
    x_tr, y_tr = data.load("mnist1d", "train", resources=resources, num_samples=500)
    x_te, y_te = data.load("mnist1d", "test", resources=resources, num_samples=500)
    cache = resources / "mnist1d_n500_seed42.npz"
    assert cache.is_file()
    assert x_tr.shape == (400, 1, 40) and x_te.shape == (100, 1, 40)

    # the very arrays the package generates for these arguments
    args = m1d.get_dataset_args()
    args.num_samples, args.seed = 500, 42
    state = np.random.get_state()
    made = m1d.make_dataset(args)
    np.random.set_state(state)
    assert torch.equal(x_tr[:, 0], torch.from_numpy(made["x"].astype(np.float32)))
    assert torch.equal(y_te, torch.from_numpy(made["y_test"].astype(np.int64)))

    # a second call reads the cache: generating again would raise
    def no_generate(*args, **kwargs):
        raise AssertionError("make_dataset called although the cache exists")

    monkeypatch.setattr(m1d, "make_dataset", no_generate)
    x_tr2, y_tr2 = data.load("mnist1d", "train", resources=resources, num_samples=500)
    x_te2, y_te2 = data.load("mnist1d", "test", resources=resources, num_samples=500)
    assert torch.equal(x_tr, x_tr2) and torch.equal(y_tr, y_tr2)
    assert torch.equal(x_te, x_te2) and torch.equal(y_te, y_te2)

    # another size or seed is another cache file, so it must be generated (and here it cannot be)
    with pytest.raises(AssertionError, match="make_dataset called"):
        data.load("mnist1d", "train", resources=resources, num_samples=500, seed=7)


def test_mnist1d_seed_changes_data(tmp_path):
    a, _ = data.load("mnist1d", "train", resources=tmp_path, num_samples=200, seed=1)
    b, _ = data.load("mnist1d", "train", resources=tmp_path, num_samples=200, seed=2)
    assert a.shape == b.shape == (160, 1, 40)
    assert not torch.equal(a, b)


def test_mnist1d_through_prepare_options(tmp_path):
    p = data.prepare({"name": "mnist1d", "options": {"num_samples": 500}, "preprocessing": ["shift"]},
                     resources=tmp_path)
    assert p.x_train.shape == (400, 1, 40) and p.x_test.shape == (100, 1, 40)
    assert p.input_shape == (1, 40) and p.num_classes == 10
    assert p.random_steps == [("shift", {"pad": 4})]  # mnist1d's default pad
    assert (tmp_path / "mnist1d_n500_seed42.npz").is_file()


@pytest.mark.parametrize("content", [b"this is not an npz archive", b""])
def test_mnist1d_corrupt_cache_names_the_file(tmp_path, content):
    cache = tmp_path / "mnist1d_n500_seed42.npz"
    cache.write_bytes(content)
    with pytest.raises(data.DataError, match="mnist1d_n500_seed42.npz") as err:
        data.load("mnist1d", "train", resources=tmp_path, num_samples=500)
    assert str(cache) in str(err.value)
    assert cache.read_bytes() == content  # left for the user to inspect, not silently replaced


def test_mnist1d_cache_missing_arrays_is_corrupt(tmp_path):
    cache = tmp_path / "mnist1d_n500_seed42.npz"
    np.savez(cache, x=np.zeros((4, 40)))
    with pytest.raises(data.DataError, match="corrupt"):
        data.load("mnist1d", "test", resources=tmp_path, num_samples=500)


@pytest.mark.parametrize("options", [{"num_sampels": 500}, {"num_samples": 0}, {"num_samples": 5},
                                     {"num_samples": "500"}, {"seed": 1.5}])
def test_mnist1d_bad_options_refused(tmp_path, options):
    with pytest.raises(data.DataError):
        data.load("mnist1d", "train", resources=tmp_path, **options)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------------
# torchvision formats: CIFAR-10, MNIST, FashionMNIST
# ----------------------------------------------------------------------------------------------------------

def test_cifar10_loads_real_format_with_channel_order(cifar_root, no_network):
    x_tr, y_tr = data.load("cifar10", "train", root=cifar_root)
    x_te, y_te = data.load("cifar10", "test", root=cifar_root)
    assert x_tr.shape == (5 * CIFAR_PER_BATCH, 3, 32, 32) and x_te.shape == (CIFAR_N_TEST, 3, 32, 32)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert float(x_tr.min()) >= 0.0 and float(x_tr.max()) <= 1.0
    assert y_tr.tolist() == [n % 10 for n in range(5 * CIFAR_PER_BATCH)]  # batches in order 1..5
    assert y_te.tolist() == [9, 0, 5]
    # every pixel lands at [n, c, h, w] (checked exhaustively, and spot-checked by hand)
    n, c, h, w = torch.meshgrid(*(torch.arange(s) for s in x_tr.shape), indexing="ij")
    assert torch.equal(x_tr, ((n * 37 + c * 101 + h * 7 + w * 3) % 256).float() / 255.0)
    assert x_tr[3, 2, 5, 17].item() == pytest.approx(cifar_pixel(3, 2, 5, 17) / 255.0)
    assert x_te[1, 0, 31, 0].item() == pytest.approx(cifar_pixel(1001, 0, 31, 0) / 255.0)
    assert x_te[2, 1, 0, 30].item() == pytest.approx(cifar_pixel(1002, 1, 0, 30) / 255.0)
    assert not no_network


def test_cifar10_checksums_are_still_enforced(tmp_path, no_network):
    """Without the test's md5 patch the real loader refuses the files: the checks were not weakened."""
    write_cifar(tmp_path)
    with pytest.raises(data.DataError, match="cifar-10-batches-py"):
        data.load("cifar10", "train", root=tmp_path)
    assert not no_network


def test_cifar10_prepare_normalize_per_channel(cifar_root, no_network):
    p = data.prepare({"name": "cifar10", "preprocessing": ["normalize", "shift", "flip"]}, data_dir=cifar_root)
    raw_tr, _ = data.load("cifar10", "train", root=cifar_root)
    raw_te, _ = data.load("cifar10", "test", root=cifar_root)
    assert p.input_shape == (3, 32, 32) and p.num_classes == 10
    dims = (0, 2, 3)
    assert torch.allclose(p.x_train.mean(dim=dims), torch.zeros(3), atol=1e-5)
    assert torch.allclose(p.x_train.std(dim=dims), torch.ones(3), atol=1e-5)
    mean = raw_tr.mean(dim=dims, keepdim=True)
    std = raw_tr.std(dim=dims, keepdim=True)
    assert torch.allclose(p.x_test, (raw_te - mean) / std, atol=1e-5)  # train statistics, applied to test
    assert p.normalization is not None
    assert np.allclose(p.normalization["mean"], mean.flatten().numpy())
    assert np.allclose(p.normalization["std"], std.flatten().numpy())
    assert len(set(np.round(p.normalization["mean"], 6))) == 3  # really per channel
    assert p.random_steps == [("shift", {"pad": 4}), ("flip", {})]
    assert not no_network


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_loads_idx_files(tmp_path, no_network, name, folder):
    write_mnist(tmp_path, folder)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = data.load(name, split, root=tmp_path)
        images, labels = mnist_images(prefix)
        assert x.shape == (MNIST_N[prefix], 1, 28, 28)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert torch.equal(x[:, 0], torch.from_numpy(images).float() / 255.0)
        assert y.tolist() == labels.tolist()
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    p = data.prepare({"name": name}, data_dir=tmp_path)
    assert p.x_train.shape == (6, 1, 28, 28) and p.x_test.shape == (4, 1, 28, 28)
    assert p.num_classes == 9  # labels 1,4,7,0,3,6 (train) and 2,5,8,1 (test): the largest is 8
    assert not no_network


@pytest.mark.parametrize("name,sub", [("cifar10", "cifar-10-batches-py"), ("mnist", "MNIST/raw"),
                                      ("fashion_mnist", "FashionMNIST/raw")])
def test_torchvision_missing_directory_is_explained_and_nothing_downloaded(tmp_path, no_network, name, sub):
    root = tmp_path / "nowhere"
    with pytest.raises(data.DataError) as err:
        data.load(name, "train", root=root)
    msg = str(err.value)
    assert str(root) in msg and sub in msg  # names the directory and the layout expected in it
    assert "download: true" in msg  # and how to fill it
    with pytest.raises(data.DataError):
        data.prepare({"name": name}, data_dir=root)
    assert not no_network  # download defaults to False
    assert not root.exists()  # nothing was created either


@pytest.mark.parametrize("name", ["cifar10", "mnist", "fashion_mnist"])
def test_torchvision_download_flag_is_passed_through(tmp_path, no_network, name):
    with pytest.raises(NetworkUsed):
        data.prepare({"name": name, "download": True}, data_dir=tmp_path)
    assert no_network


@pytest.mark.parametrize("name", ["cifar10", "mnist", "fashion_mnist"])
def test_torchvision_needs_a_data_dir(name):
    with pytest.raises(data.DataError, match="data_dir"):
        data.load(name, "train")


def test_mnist_truncated_file_is_a_data_error(tmp_path, no_network):
    write_mnist(tmp_path, "MNIST")
    f = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="MNIST"):
        data.load("mnist", "train", root=tmp_path)


def test_mnist_image_label_count_mismatch_is_a_data_error(tmp_path, no_network):
    write_mnist(tmp_path, "MNIST")
    images, labels = mnist_images("train")
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(_idx(2049, labels[:-1]))
    with pytest.raises(data.DataError, match="labels"):
        data.load("mnist", "train", root=tmp_path)


# ----------------------------------------------------------------------------------------------------------
# preprocessing
# ----------------------------------------------------------------------------------------------------------

def test_normalize_digits_train_stats_applied_to_test():
    p = data.prepare({"name": "digits", "preprocessing": ["normalize"]})
    raw_tr, _ = data.load("digits", "train")
    raw_te, _ = data.load("digits", "test")
    assert abs(float(p.x_train.mean())) < 1e-5 and abs(float(p.x_train.std()) - 1) < 1e-5
    mean, std = raw_tr.mean(), raw_tr.std()
    assert torch.allclose(p.x_test, (raw_te - mean) / std, atol=1e-5)
    assert abs(float(p.x_test.mean())) > 1e-4  # the test split has its own statistics: not re-standardised
    assert p.normalization == {"mean": [pytest.approx(float(mean))], "std": [pytest.approx(float(std))]}
    assert p.random_steps == []


def test_no_preprocessing_keeps_raw_data():
    p = data.prepare({"name": "digits"})
    raw_tr, y_tr = data.load("digits", "train")
    assert torch.equal(p.x_train, raw_tr) and torch.equal(p.y_train, y_tr)
    assert p.normalization is None and p.num_classes == 10
    x = p.x_train[:5]
    assert p.augment(x, torch.Generator().manual_seed(0)) is x  # no random steps: untouched


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_flip_not_valid_for_digit_datasets(name):
    with pytest.raises(data.DataError, match="not valid for"):
        data.parse_steps(name, ["flip"])
    with pytest.raises(data.DataError, match="flip"):
        data.prepare({"name": name, "preprocessing": ["normalize", "flip"]})


@pytest.mark.parametrize("steps", [["blur"], [{"rotate": 3}], [{"shift": 1, "flip": None}], [3],
                                   "normalize", [{"shift": -1}], [{"shift": "2"}], [{"shift": {"pdd": 2}}],
                                   [{"normalize": {"eps": 1}}], [{"normalize": 0.5}]])
def test_bad_steps_raise(steps):
    with pytest.raises(data.DataError):
        data.parse_steps("digits", steps)


def test_parse_steps_forms_and_defaults():
    assert data.parse_steps("digits", []) == []
    assert data.parse_steps("digits", ["normalize", "shift"]) == [("normalize", {}), ("shift", {"pad": 1})]
    assert data.parse_steps("cifar10", [{"shift": 2}, "flip"]) == [("shift", {"pad": 2}), ("flip", {})]
    assert data.parse_steps("cifar10", [{"shift": {"pad": 3}}]) == [("shift", {"pad": 3})]
    assert data.parse_steps("cifar10", [{"shift": None}]) == [("shift", {"pad": 4})]
    assert data.parse_steps("mnist", ["shift"]) == [("shift", {"pad": 2})]
    assert data.parse_steps("fashion_mnist", ["flip"]) == [("flip", {})]
    with pytest.raises(data.DataError, match="not valid for mnist"):
        data.parse_steps("mnist", ["flip"])


def test_parse_steps_unknown_dataset():
    with pytest.raises(data.DataError, match="unknown dataset"):
        data.parse_steps("imagenet", ["normalize"])


def _translate(x: torch.Tensor, shift: tuple[int, ...]) -> torch.Tensor:
    """Reference: ``out[..., i] = x[..., i - s]`` with zeros where ``i - s`` falls outside, per spatial dim."""
    out = torch.zeros_like(x)
    src, dst = [slice(None)], [slice(None)]  # channel dim
    for s, n in zip(shift, x.shape[1:]):
        if abs(s) >= n:
            return out
        src.append(slice(max(0, -s), n - max(0, s)))
        dst.append(slice(max(0, s), n - max(0, -s)))
    out[tuple(dst)] = x[tuple(src)]
    return out


def _find_shift(inp: torch.Tensor, out: torch.Tensor, pad: int) -> tuple[int, ...] | None:
    import itertools

    for s in itertools.product(range(-pad, pad + 1), repeat=inp.ndim - 1):
        if torch.equal(_translate(inp, s), out):
            return s
    return None


@pytest.mark.parametrize("shape", [(64, 2, 11), (64, 3, 7, 9)])
def test_shift_batch_is_a_zero_filled_translation(shape):
    pad = 2
    x = torch.rand(shape) + 0.5  # no zeros in the input, so zero fill is visible
    out = data.shift_batch(x, pad, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = []
    for i in range(shape[0]):
        s = _find_shift(x[i], out[i], pad)
        assert s is not None, f"sample {i} is not a translated copy of its input (all channels alike)"
        shifts.append(s)
        if any(s):
            assert (out[i] == 0).any()
    assert len(set(shifts)) > 3  # an independent offset per sample
    assert {v for s in shifts for v in s} == set(range(-pad, pad + 1))  # every offset in [-pad, pad] occurs


def test_shift_batch_deterministic_and_identity_at_pad_zero():
    x = torch.rand(16, 3, 8, 8)
    a = data.shift_batch(x, 3, torch.Generator().manual_seed(5))
    b = data.shift_batch(x, 3, torch.Generator().manual_seed(5))
    c = data.shift_batch(x, 3, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(data.shift_batch(x, 0, torch.Generator().manual_seed(5)), x)
    x1 = torch.rand(16, 1, 40)
    assert torch.equal(data.shift_batch(x1, 0, torch.Generator()), x1)
    assert torch.equal(data.shift_batch(x1, 4, torch.Generator().manual_seed(1)),
                       data.shift_batch(x1, 4, torch.Generator().manual_seed(1)))


def test_shift_batch_delta_1d():
    pad, n, pos = 3, 40, 20
    x = torch.zeros(200, 1, n)
    x[:, 0, pos] = 1.0
    out = data.shift_batch(x, pad, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(1, 2)), torch.ones(200))  # the delta moves, nothing else appears
    where = out[:, 0].argmax(dim=1) - pos
    assert set(where.tolist()) == set(range(-pad, pad + 1))


def test_shift_batch_delta_2d():
    pad, h0, w0 = 2, 4, 5
    x = torch.zeros(300, 2, 9, 10)
    x[:, :, h0, w0] = torch.tensor([1.0, 2.0])
    out = data.shift_batch(x, pad, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.equal(out.sum(dim=(2, 3)), torch.tensor([1.0, 2.0]).expand(300, 2))
    flat = out[:, 0].flatten(1).argmax(dim=1)
    dh, dw = flat // 10 - h0, flat % 10 - w0
    assert torch.equal(out[:, 1].flatten(1).argmax(dim=1), flat)  # both channels move together
    assert set(dh.tolist()) == set(range(-pad, pad + 1)) and set(dw.tolist()) == set(range(-pad, pad + 1))
    assert len(set(zip(dh.tolist(), dw.tolist()))) == (2 * pad + 1) ** 2  # rows and columns independently


def test_shift_batch_delta_falls_off_the_edge():
    x = torch.zeros(100, 1, 5)
    x[:, 0, 0] = 1.0  # at the border: shifted left it leaves the frame (zero fill, no wrap-around)
    out = data.shift_batch(x, 2, torch.Generator().manual_seed(0))
    assert (out.sum(dim=(1, 2)) == 0).any() and (out.sum(dim=(1, 2)) == 1).any()
    assert out[:, 0, 3:].sum() == 0  # never wraps to the far end


def test_flip_batch_flips_about_half():
    x = torch.rand(1000, 2, 3, 6)
    before = x.clone()
    out = data.flip_batch(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(dim=1)
    flipped = (out == x.flip(-1)).flatten(1).all(dim=1)
    assert torch.all(same ^ flipped)  # each sample is either untouched or mirrored left-right
    assert 400 < int(flipped.sum()) < 600
    again = data.flip_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(x, before)  # the input is not modified in place
    assert not torch.equal(out, x)


def test_prepared_augment_applies_random_steps_in_order():
    p = data.prepare({"name": "digits", "preprocessing": [{"shift": 1}]})
    assert p.random_steps == [("shift", {"pad": 1})]
    xb = p.x_train[:32]
    a = p.augment(xb, torch.Generator().manual_seed(3))
    assert torch.equal(a, data.shift_batch(xb, 1, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, xb)
    assert torch.equal(xb, p.x_train[:32])  # the stored data are not changed


def test_classes_subset_relabels():
    x_tr, y_tr = data.load("digits", "train")
    x_te, y_te = data.load("digits", "test")
    p = data.prepare({"name": "digits", "classes": [7, 3]})
    assert p.num_classes == 2
    assert torch.equal(p.x_train, x_tr[(y_tr == 7) | (y_tr == 3)])
    assert torch.equal(p.y_train, (y_tr[(y_tr == 7) | (y_tr == 3)] == 3).long())  # 7 -> 0, 3 -> 1
    assert torch.equal(p.x_test, x_te[(y_te == 7) | (y_te == 3)])
    assert torch.equal(p.y_test, (y_te[(y_te == 7) | (y_te == 3)] == 3).long())
    assert set(p.y_train.tolist()) == set(p.y_test.tolist()) == {0, 1}


@pytest.mark.parametrize("classes", [[10], [-1], [3, 3], [], [1.5]])
def test_bad_classes_raise(classes):
    with pytest.raises(data.DataError, match="classes"):
        data.prepare({"name": "digits", "classes": classes})


def test_n_train_n_test_subsets_are_fixed():
    spec = {"name": "digits", "n_train": 100, "n_test": 50}
    a, b = data.prepare(spec), data.prepare(spec)
    assert a.x_train.shape == (100, 1, 8, 8) and a.x_test.shape == (50, 1, 8, 8)
    assert len(a.y_train) == 100 and len(a.y_test) == 50
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, k), getattr(b, k))
    # a subset of the rows, in their original order
    x_tr, _ = data.load("digits", "train")
    flat = x_tr.flatten(1)
    idx = [int(torch.nonzero((flat == row).all(dim=1))[0]) for row in a.x_train.flatten(1)]
    assert idx == sorted(idx) and len(set(idx)) == 100
    assert len(set(a.y_train.tolist())) > 5  # random, not the first 100
    # larger than the split: everything
    full = data.prepare({"name": "digits", "n_train": 10_000})
    assert len(full.y_train) == 1437
    # the subset is drawn before normalising: the statistics are those of the subset
    norm = data.prepare({**spec, "preprocessing": ["normalize"]})
    assert abs(float(norm.x_train.mean())) < 1e-5 and abs(float(norm.x_train.std()) - 1) < 1e-5


@pytest.mark.parametrize("n", [0, -5, 2.5])
def test_bad_subset_sizes_raise(n):
    with pytest.raises(data.DataError):
        data.prepare({"name": "digits", "n_train": n})


def test_classes_then_subset_combined():
    p = data.prepare({"name": "digits", "classes": [0, 1], "n_train": 20})
    assert len(p.y_train) == 20 and set(p.y_train.tolist()) <= {0, 1} and p.num_classes == 2


# ----------------------------------------------------------------------------------------------------------
# names and arguments
# ----------------------------------------------------------------------------------------------------------

def test_unknown_dataset_lists_known_names():
    with pytest.raises(data.DataError) as err:
        data.load("imagenet", "train")
    for name in ALL_NAMES:
        assert name in str(err.value)
    with pytest.raises(data.DataError) as err:
        data.prepare({"name": "imagenet"})
    for name in ALL_NAMES:
        assert name in str(err.value)


def test_bad_split_and_unknown_options():
    with pytest.raises(data.DataError, match="split"):
        data.load("digits", "validation")
    with pytest.raises(data.DataError, match="option"):
        data.load("digits", "train", num_samples=10)
    with pytest.raises(data.DataError, match="option"):
        data.prepare({"name": "digits", "options": {"scale": 2}})


def test_digits_split_is_cached_and_read_back_without_sklearn(tmp_path, monkeypatch):
    first = data.load("digits", "train", resources=tmp_path)
    assert (tmp_path / "digits_split0.npz").exists()

    def no_sklearn():
        raise AssertionError("the cache must be used")

    monkeypatch.setattr(data, "_make_digits", no_sklearn)
    again = data.load("digits", "train", resources=tmp_path)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    (tmp_path / "digits_split0.npz").write_bytes(b"not an npz")
    with pytest.raises(data.DataError, match="digits_split0.npz: corrupt digits cache"):
        data.load("digits", "test", resources=tmp_path)


def test_evaluation_subsets_are_one_fixed_draw_per_split():
    """Every analysis evaluates on the same fixed subsets: seed 3 for the training split, seed 4 for the test
    split, in their original order; None keeps the whole split."""
    from losslab.core.data import EVAL_TEST_SEED, EVAL_TRAIN_SEED, prepare, subset

    data = prepare({"name": "digits"})
    ev = data.evaluation_subsets(50, 30)
    assert len(ev.y_train) == 50 and len(ev.y_test) == 30
    assert torch.equal(ev.x_train, subset(data.x_train, data.y_train, 50, seed=EVAL_TRAIN_SEED)[0])
    assert torch.equal(ev.y_test, subset(data.x_test, data.y_test, 30, seed=EVAL_TEST_SEED)[1])
    assert (EVAL_TRAIN_SEED, EVAL_TEST_SEED) == (3, 4)
    again = data.evaluation_subsets(50, None)
    assert torch.equal(again.x_train, ev.x_train) and again.x_test is data.x_test
    assert data.evaluation_subsets().x_train is data.x_train


# ----------------------------------------------------------------------------------------------------------
# the job's data roots
# ----------------------------------------------------------------------------------------------------------

def _digits_cache(folder: Path, label: int) -> Path:
    """A stand-in digits cache in ``folder`` whose every label is ``label``: which folder was read shows."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros((4, 8, 8), np.float32)
    y = np.full(4, label, np.int64)
    np.savez(folder / "digits_split0.npz", x=x, y=y, x_test=x, y_test=y)
    return folder


def test_data_roots_default_to_the_config_defaults():
    """Nothing set: no data directory and ``resources`` (the config's defaults, prepare's defaults before)."""
    assert data.data_roots() == data.DataRoots() == data.DataRoots(None, "resources")
    assert data.DataRoots.of_config({}) == data.DataRoots()
    assert data.DataRoots.of_config({"data_dir": "/d", "resources": "/r", "scale": "smoke"}) == \
        data.DataRoots("/d", "/r")
    with pytest.raises(TypeError, match="DataRoots"):
        data.set_data_roots({"resources": "/r"})


def test_prepare_reads_the_job_roots_and_the_block_restores_them(tmp_path):
    a, b = _digits_cache(tmp_path / "a", 1), _digits_cache(tmp_path / "b", 2)
    with data.use_data_roots(resources=a) as outer:
        assert data.data_roots() is outer and outer.resources == a and outer.data_dir is None
        assert set(data.prepare({"name": "digits"}).y_train.tolist()) == {1}
        with data.use_data_roots(data_dir=tmp_path, resources=b):
            assert set(data.prepare({"name": "digits"}).y_test.tolist()) == {2}
            assert set(data.load("digits", "train")[1].tolist()) == {2}
        assert data.data_roots() is outer
        assert set(data.prepare({"name": "digits"}).y_train.tolist()) == {1}
    assert data.data_roots() == data.DataRoots()
    with pytest.raises(RuntimeError, match="inside"):
        with data.use_data_roots(resources=b):
            raise RuntimeError("inside")
    assert data.data_roots() == data.DataRoots()  # restored on an error too


def test_an_explicit_root_wins_over_the_job_roots(tmp_path, no_network):
    a, b = _digits_cache(tmp_path / "a", 1), _digits_cache(tmp_path / "b", 2)
    with data.use_data_roots(data_dir=tmp_path / "job-data", resources=a):
        assert set(data.prepare({"name": "digits"}, resources=b).y_train.tolist()) == {2}
        assert set(data.load("digits", "test", resources=b)[1].tolist()) == {2}
        with pytest.raises(data.DataError, match="job-data"):  # the job's data_dir when none is given
            data.prepare({"name": "cifar10"})
        with pytest.raises(data.DataError, match="given-data") as err:
            data.prepare({"name": "cifar10"}, data_dir=tmp_path / "given-data")
        assert "job-data" not in str(err.value)
    assert not no_network


def test_start_job_sets_the_data_roots_from_the_config(tmp_path):
    """A job's roots are its config's ``data_dir`` and ``resources``, set at the door, logged, and set whole by
    every job (a job of the fork server never keeps another's: a config without the keys gets the defaults).
    Run in a copied context: the test leaves the process's roots alone."""
    import contextvars

    from losslab.pipeline.job import start_job

    def started(config):
        start_job(tmp_path / "job.log", 1, {"device": "cpu", **config})
        return data.data_roots()

    ctx = contextvars.copy_context()
    assert ctx.run(started, {"data_dir": "/d", "resources": "/r"}) == data.DataRoots("/d", "/r")
    assert "data: data_dir /d, resources /r" in (tmp_path / "job.log").read_text()
    assert ctx.run(started, {"resources": "/s"}) == data.DataRoots(None, "/s")
    assert ctx.run(started, {}) == data.DataRoots()
    assert data.data_roots() == data.DataRoots()


def test_no_analysis_takes_the_roots_and_no_script_passes_them():
    """The roots are given once per job: no function of the claims wing takes ``data_dir`` or
    ``resources``, and no workflow script passes the rules' ``data_dir`` / ``resources`` params on (the rules keep
    them: they record what a job's data depend on)."""
    import importlib
    import inspect
    import pkgutil

    import losslab.claims

    from conftest import ROOT

    taking = []
    for info in pkgutil.walk_packages(losslab.claims.__path__, "losslab.claims."):
        module = importlib.import_module(info.name)
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == info.name and {"data_dir", "resources"} & set(inspect.signature(fn).parameters):
                taking.append(f"{info.name}.{name}")
    assert not taking, f"functions still taking data_dir/resources: {taking}"
    passing = [p.name for p in sorted((ROOT / "workflow" / "scripts").glob("*.py"))
               if "params.data_dir" in p.read_text() or "params.resources" in p.read_text()]
    assert not passing, f"scripts still passing data_dir/resources: {passing}"
