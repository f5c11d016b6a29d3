"""Random, normalised, orthogonalised and PCA directions, and their HDF5 files (losslab.core.directions)."""

from __future__ import annotations

import h5py
import pytest
import torch

from losslab.core.directions import (Directions, biasbn_mask, check_directions, load_directions, normalize,
    orthogonalize, pca_directions, project, random_direction, random_directions, random_like, renormalize,
    save_directions)
from losslab.io import CorruptFileError
from losslab.core.models import build
from losslab.core.weights import ParamLayout, flatten

torch.set_num_threads(1)

SHAPE = (1, 8, 8)


def _net(seed: int = 0) -> torch.nn.Module:
    """Conv (4-D weights), BN (1-D), linear (2-D) with biases (1-D)."""
    torch.manual_seed(seed)
    return build({"name": "convnet", "channels": [4, 6], "hidden": [12], "bn": True}, SHAPE, 10)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _per_param(model: torch.nn.Module, vec: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layout = ParamLayout.of(model)
    return list(zip(layout.split(vec), [p.detach() for p in model.parameters()]))


def test_random_directions_have_the_parameters_shapes_and_follow_the_seed() -> None:
    model = _net()
    d = random_like(model, _gen(1))
    assert [t.shape for t in d] == [p.shape for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(d, random_like(model, _gen(1))))
    assert not torch.equal(d[0], random_like(model, _gen(2))[0])
    flat = random_direction(model, _gen(1), norm="none", ignore="keep")
    assert torch.equal(flat, torch.cat([t.reshape(-1) for t in d]))
    as_list = random_direction(model, _gen(1), flat=False)
    assert isinstance(as_list, list) and len(as_list) == len(d)


def test_filter_normalization_gives_each_filter_the_norm_of_the_weights_filter() -> None:
    """Li et al.: d_ij <- d_ij / ||d_ij|| * ||theta_ij|| for every filter (conv output slice, linear row)."""
    model = _net()
    d = random_direction(model, _gen(3), norm="filter", ignore="biasbn")
    checked = 0
    for dt, w in _per_param(model, d):
        if w.ndim <= 1:
            assert float(dt.abs().sum()) == 0.0  # biasbn: biases and BN parameters are not perturbed
            continue
        d_norms = dt.reshape(dt.shape[0], -1).norm(dim=1)
        w_norms = w.reshape(w.shape[0], -1).norm(dim=1)
        torch.testing.assert_close(d_norms, w_norms, rtol=1e-5, atol=0)
        checked += dt.shape[0]
    assert checked == 4 + 6 + 12 + 10  # every conv filter and linear row


def test_layer_weight_and_none_normalizations() -> None:
    model = _net()
    raw = random_like(model, _gen(4))
    weights = [p.detach() for p in model.parameters()]
    layer = normalize(raw, weights, "layer", "keep")
    for d, w in zip(layer, weights):
        assert float(d.norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    for d, r, w in zip(normalize(raw, weights, "weight", "keep"), raw, weights):
        assert torch.equal(d, r * w)
    for d, r in zip(normalize(raw, weights, "none", "keep"), raw):
        assert torch.equal(d, r)


def test_one_dimensional_tensors_zeroed_copied_or_kept() -> None:
    model = _net()
    raw = random_like(model, _gen(5))
    weights = [p.detach() for p in model.parameters()]
    zeroed = normalize(raw, weights, "filter", "biasbn")
    copied = normalize(raw, weights, "filter", "copy")
    kept = normalize(raw, weights, "filter", "keep")
    one_d = [k for k, w in enumerate(weights) if w.ndim == 1]
    assert one_d  # biases and BN weight/bias
    for k in one_d:
        assert float(zeroed[k].abs().sum()) == 0.0
        assert torch.equal(copied[k], weights[k])
        assert float(kept[k].norm()) == pytest.approx(float(weights[k].norm()), rel=1e-5)
    mask = biasbn_mask(model)
    assert torch.equal(ParamLayout.of(model).cat(zeroed)[~mask], torch.zeros(int((~mask).sum())))


def test_normalize_does_not_touch_its_inputs() -> None:
    model = _net()
    raw = random_like(model, _gen(6))
    before = [t.clone() for t in raw]
    normalize(raw, [p.detach() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(raw, before))


def test_bad_options_raise() -> None:
    model = _net()
    raw, weights = random_like(model, _gen(0)), [p.detach() for p in model.parameters()]
    with pytest.raises(ValueError, match="normalization"):
        normalize(raw, weights, norm="unit")
    with pytest.raises(ValueError, match="ignore"):
        normalize(raw, weights, ignore="bias")


def test_orthogonalization() -> None:
    model = _net()
    dirs = random_directions(model, seed=7, orthogonal=True)
    assert dirs.orthogonalized and dirs.y is not None
    cos = torch.dot(dirs.x.double(), dirs.y.double()) / (dirs.x.double().norm() * dirs.y.double().norm())
    assert abs(float(cos)) < 1e-6
    plain = random_directions(model, seed=7)
    assert torch.equal(plain.x, dirs.x) and not plain.orthogonalized
    with pytest.raises(ValueError):
        orthogonalize(dirs.x, torch.zeros_like(dirs.x))


def test_random_directions_one_or_two() -> None:
    model = _net()
    assert random_directions(model, seed=1, dims=1).y is None
    with pytest.raises(ValueError):
        random_directions(model, seed=1, dims=3)


def _trajectory(p: int = 200, n: int = 12) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Points final + a_t u + b_t v (+ tiny noise) with u, v orthonormal and var(a) >> var(b)."""
    g = _gen(11)
    q, _ = torch.linalg.qr(torch.randn(p, 2, generator=g, dtype=torch.float64))
    u, v = q[:, 0].float(), q[:, 1].float()
    final = torch.randn(p, generator=g)
    t = torch.linspace(1, 0, n)
    points = [final + 3.0 * s * u + 0.5 * torch.sin(6 * s) * v + 1e-4 * torch.randn(p, generator=g) for s in t]
    points[-1] = final.clone()
    return points, u, v


def test_pca_directions_recover_the_trajectory_plane() -> None:
    points, u, v = _trajectory()
    dirs = pca_directions(points)
    assert dirs.kind == "pca" and dirs.explained_variance_ratio is not None
    r1, r2 = dirs.explained_variance_ratio
    assert r1 > r2 > 0 and r1 + r2 == pytest.approx(1.0, abs=1e-4)
    assert float(dirs.x.norm()) == pytest.approx(1.0, rel=1e-5)
    assert float(torch.dot(dirs.x, dirs.y)) == pytest.approx(0.0, abs=1e-5)
    for w in (u, v):  # the plane of the path is the plane of the two components
        in_plane = torch.dot(w, dirs.x) ** 2 + torch.dot(w, dirs.y) ** 2
        assert float(in_plane) == pytest.approx(1.0, abs=1e-3)
    # coordinates of the path in the plane: the final point at the origin
    coords = project(points, points[-1], dirs.x, dirs.y)
    assert coords.shape == (len(points), 2)
    assert torch.allclose(coords[-1], torch.zeros(2, dtype=torch.float64), atol=1e-6)
    recon = [points[-1] + float(a) * dirs.x + float(b) * dirs.y for a, b in coords]
    assert all(torch.allclose(r, p, atol=1e-3) for r, p in zip(recon, points))


def test_pca_ignores_biasbn_entries() -> None:
    model = _net()
    g = _gen(12)
    base = flatten(model)
    points = [base + torch.randn(base.shape, generator=g) for _ in range(5)]
    dirs = pca_directions(points, model=model, ignore="biasbn")
    mask = biasbn_mask(model)
    assert float(dirs.x[~mask].abs().sum()) == 0.0 and float(dirs.y[~mask].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="at least 3"):
        pca_directions(points[:2])


def test_directions_round_trip_through_hdf5(tmp_path) -> None:
    model = _net()
    dirs = random_directions(model, seed=9, norm="filter", ignore="biasbn")
    path = tmp_path / "dirs.h5"
    save_directions(path, dirs)
    with h5py.File(path, "r") as f:
        assert {"xdirection", "ydirection"} <= set(f.keys())
    back = load_directions(path)
    assert torch.equal(back.x, dirs.x) and torch.equal(back.y, dirs.y)
    assert back.provenance() == dirs.provenance()
    pca = pca_directions(_trajectory()[0])
    save_directions(tmp_path / "pca.h5", pca)
    assert load_directions(tmp_path / "pca.h5").explained_variance_ratio == pytest.approx(
        pca.explained_variance_ratio)
    one = Directions(dirs.x, kind="random", seed=1)
    save_directions(tmp_path / "one.h5", one)
    assert load_directions(tmp_path / "one.h5").y is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dirs.h5", "one.h5", "pca.h5"]  # no temp files


def test_loading_a_foreign_or_missing_file_names_it(tmp_path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(CorruptFileError, match="bad.h5"):
        load_directions(bad)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        load_directions(tmp_path / "missing.h5")


# ---------------------------------------------------------------- reuse on another network -----------------

def test_renormalized_directions_are_the_same_draw_normalized_for_the_other_network() -> None:
    a, b = _net(0), _net(1)
    for norm, ignore in (("filter", "biasbn"), ("layer", "copy"), ("filter", "keep")):
        drawn = random_directions(a, seed=3, norm=norm, ignore=ignore)
        moved = renormalize(drawn, b)
        fresh = random_directions(b, seed=3, norm=norm, ignore=ignore)
        assert moved.renormalized and moved.provenance()["renormalized"] is True
        torch.testing.assert_close(moved.x, fresh.x, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(moved.y, fresh.y, rtol=1e-5, atol=1e-7)
        assert not torch.allclose(drawn.x, fresh.x)  # as saved, they are not b's filter-normalized directions
    pca = Directions(torch.ones(flatten(a).numel()), kind="pca")
    assert renormalize(pca, b) is pca  # norm "none": not relative to any weights, used as saved


def test_directions_that_cannot_be_renormalized_or_do_not_fit_are_named() -> None:
    a, b = _net(0), _net(1)
    with pytest.raises(ValueError, match="d.h5: 'weight'-normalized directions cannot be re-normalized"):
        renormalize(random_directions(a, seed=0, norm="weight"), b, "d.h5")
    with pytest.raises(ValueError, match="d.h5: the second direction was orthogonalized"):
        renormalize(random_directions(a, seed=0, orthogonal=True), b, "d.h5")
    small = flatten(a).numel()
    other = build({"name": "convnet", "channels": [4, 7], "hidden": [12], "bn": True}, SHAPE, 10)
    big = flatten(other).numel()
    with pytest.raises(ValueError, match=f"d.h5: xdirection has {small} entries but the model has {big} weights"):
        check_directions(random_directions(a, seed=0), other, "d.h5")
    check_directions(random_directions(a, seed=0), b)  # same architecture: fine


def test_provenance_names_a_file_and_a_renormalization_only_when_there_is_one() -> None:
    d = random_directions(_net(), seed=0)
    assert set(d.provenance()) == {"direction", "norm", "ignore", "seed", "orthogonalized"}  # as before
    assert Directions(d.x, file_sha256="ab").provenance()["directions_sha256"] == "ab"
    assert d.dims == 2 and Directions(d.x).dims == 1
