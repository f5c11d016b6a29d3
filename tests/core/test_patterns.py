"""Tests for losslab.core.patterns: the MPO plane, the capped objective, fitting, resumption, BN reparametrisation,
loop/vmap agreement, pattern makers and the binary validator, metrics and the figure. Tiny models, seconds."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from losslab.plots.patterns import plot_pattern_fit
from losslab.core import patterns as pt
from losslab.core.data import prepare
from losslab.core.models import build
from losslab.core.weights import ParamLayout

MLP = {"name": "mlp", "widths": [16]}
BN_CONV = {"name": "convnet", "channels": [4, 8], "hidden": [16], "bn": True}


@pytest.fixture(scope="module")
def digits():
    return prepare({"name": "digits", "preprocessing": ["normalize"], "n_train": 400, "n_test": 200})


def factory(spec, data):
    return lambda: build(spec, data.input_shape, data.num_classes)


def plane_and_model(spec, data, **kw):
    make = factory(spec, data)
    return pt.PatternPlane.from_inits(make, **kw), make()


# ---------------------------------------------------------------- the plane

def test_plane_is_orthogonal_equal_norm_and_scaled(digits):
    plane, _ = plane_and_model(MLP, digits)
    u, v = plane.directions()
    with torch.no_grad():
        assert abs(float(u @ v)) <= 1e-5 * float(u.norm() * v.norm())
        assert float(v.norm()) == pytest.approx(float(u.norm()), rel=1e-6)
        assert float(plane.scale) == pytest.approx(0.1)
        assert not torch.allclose(plane.u, plane.v)  # three different initialisations
        # w(x, y) = origin + s (x u + y v_hat); the centre cell of an odd pattern is the origin
        w = plane.weights(torch.tensor([[2.0, -3.0]]))[0]
        assert torch.allclose(w, plane.origin + 0.1 * (2.0 * u - 3.0 * v), atol=1e-6)
        assert torch.equal(plane.cell_weights((5, 5))[12], plane.origin + plane.shift)
    coords = pt.cell_coordinates((4, 3))
    assert coords.shape == (4, 3, 2)
    assert coords[0, 0].tolist() == [-1.5, -1.0] and coords[3, 2].tolist() == [1.5, 1.0]


def test_gradients_reach_origin_u_v_and_scale(digits):
    plane, model = plane_and_model(MLP, digits)
    net = pt.CellNet(model)
    idx = torch.tensor([0, 5, 10, 15])
    cells = plane.weights(pt.cell_coordinates((4, 4)).reshape(-1, 2)[idx])
    black = torch.tensor([True, True, False, False])
    g, ce, _ = net.gradients(cells, black, torch.full((4,), 0.5), digits.x_train[:64], digits.y_train[:64])
    assert bool((ce < 2.5).all())  # white cells below the cap: they push too
    cells.backward(g)
    for name in ("origin", "u", "v", "scale"):
        grad = getattr(plane, name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_capped_loss_has_zero_gradient_above_the_cap():
    ce = torch.tensor([1.0, 3.0, 1.0, 3.0], requires_grad=True)
    black = torch.tensor([True, True, False, False])
    pt.cell_objective(ce, black, cap=2.5).sum().backward()
    assert ce.grad.tolist() == [1.0, 1.0, -1.0, 0.0]
    assert pt.cell_objective(ce, black, 2.5).tolist() == [1.0, 3.0, -1.0, -2.5]


def test_bn_reparametrization_centres_gamma_at_one(digits):
    make = factory(BN_CONV, digits)
    mask = pt.gamma_mask(make())
    assert int(mask.sum()) == 4 + 8
    exact = pt.PatternPlane.from_inits(make, gamma_shift=1.0, gamma_spread=0.0)
    at_origin = exact.weights(torch.zeros(2))
    assert torch.equal(at_origin[mask], torch.ones(int(mask.sum())))
    assert torch.equal(exact.u[mask], torch.zeros(int(mask.sum())))  # no common gamma part in the directions
    spread = pt.PatternPlane.from_inits(make)  # default: gamma_plane ~ U[-0.5, 0.5] around 1
    g = spread.weights(torch.zeros(2)).detach()[mask]
    assert bool(((g >= 0.5) & (g <= 1.5)).all()) and abs(float(g.mean()) - 1.0) < 0.25
    assert torch.equal(spread.shift, mask.float())
    paper = pt.PatternPlane.from_inits(make, gamma_shift=0.5)  # appendix C: gamma = gamma_plane + 0.5 in [0, 1]
    g = paper.weights(torch.zeros(2)).detach()[mask]
    assert bool(((g >= 0.0) & (g <= 1.0)).all())
    plain = pt.PatternPlane.from_inits(make, gamma_shift=None)  # PyTorch's init: gamma = 1 in all three vectors
    assert torch.equal(plain.u[mask], torch.ones(int(mask.sum())))
    assert torch.equal(plain.shift, torch.zeros_like(plain.shift))


# ---------------------------------------------------------------- loop and vmap

@pytest.mark.parametrize("spec", [MLP, BN_CONV], ids=["mlp", "bn-convnet"])
def test_vmap_and_loop_gradients_agree(digits, spec):
    plane, model = plane_and_model(spec, digits)
    net = pt.CellNet(model)
    cells = plane.cell_weights((3, 3)).detach()
    black = torch.arange(9) % 2 == 0
    weight = torch.full((9,), 1 / 9)
    xb, yb = digits.x_train[:32], digits.y_train[:32]
    g_loop, ce_loop, acc_loop = net.gradients(cells, black, weight, xb, yb, "loop")
    g_vmap, ce_vmap, acc_vmap = net.gradients(cells, black, weight, xb, yb, "vmap", cells_per_call=4)
    assert torch.allclose(g_loop, g_vmap, atol=1e-6, rtol=1e-4)
    assert torch.allclose(ce_loop, ce_vmap, atol=1e-5)
    assert torch.equal(acc_loop, acc_vmap)


def test_vmap_and_loop_maps_agree(digits):
    plane, model = plane_and_model(MLP, digits)
    a = pt.evaluate_pattern(plane, model, digits, (3, 3), method="loop")
    b = pt.evaluate_pattern(plane, model, digits, (3, 3), method="vmap")
    for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert np.allclose(getattr(a, name), getattr(b, name), atol=1e-5), name


# ---------------------------------------------------------------- fitting and resuming

def test_all_black_pattern_is_fitted(digits):
    plane, model = plane_and_model(MLP, digits)
    config = pt.MPOConfig(steps=150, lr=1e-2, batch_size=64, cells_per_step=6)
    pattern = pt.shape_pattern("full", 3)
    state = pt.fit_plane(plane, model, pattern, digits, config, seed=0)
    assert state["step"] == 150 and not state["diverged"]
    maps = pt.evaluate_pattern(plane, model, digits, pattern.shape)
    metrics = pt.fit_metrics(pattern, maps)
    assert metrics["train_black_acc"] > 0.85, metrics
    assert metrics["test_black_acc"] > 0.75, metrics
    assert math.isnan(metrics["train_acc_gap"])  # no white cells


def test_resume_gives_bitwise_identical_parameters(digits, tmp_path):
    pattern = pt.random_mask(4, 0.5, seed=3)
    config = pt.MPOConfig(steps=10, lr=1e-2, batch_size=32, cells_per_step=4, ckpt_every=4)

    plane, model = plane_and_model(MLP, digits)
    full = pt.fit_plane(plane, model, pattern, digits, config, seed=1)

    class Killed(Exception):
        pass

    def kill_at_6(step, row):
        if step == 6:
            raise Killed

    ckpt = tmp_path / "mpo.pt"
    first, model = plane_and_model(MLP, digits)
    with pytest.raises(Killed):
        pt.fit_plane(first, model, pattern, digits, config, seed=1, ckpt_path=ckpt, on_step=kill_at_6)
    resumed, model = plane_and_model(MLP, digits)  # a restarted job builds the initial plane again
    state = pt.fit_plane(resumed, model, pattern, digits, config, seed=1, ckpt_path=ckpt)
    assert state["step"] == 10
    for key, value in plane.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert state["history"] == full["history"]

    longer = dataclasses.replace(config, steps=14)  # more steps: the same trajectory, continued
    plane14, model = plane_and_model(MLP, digits)
    pt.fit_plane(plane14, model, pattern, digits, longer, seed=1)
    extended, model = plane_and_model(MLP, digits)
    assert pt.fit_plane(extended, model, pattern, digits, longer, seed=1, ckpt_path=ckpt)["step"] == 14
    assert all(torch.equal(v, extended.state_dict()[k]) for k, v in plane14.state_dict().items())

    other, model = plane_and_model(MLP, digits)
    with pytest.raises(pt.PatternMismatchError, match="mpo.pt"):
        pt.fit_plane(other, model, pattern, digits, config, seed=2, ckpt_path=ckpt)


def test_cell_sampling_balances_colours_and_is_seeded():
    pattern = np.zeros((4, 4), dtype=np.uint8)
    pattern[0, :3] = 1  # 3 black, 13 white
    gen = torch.Generator().manual_seed(0)
    idx = pt.sample_cells(pattern, 8, gen)
    colours = pattern.reshape(-1)[idx.numpy()]
    assert len(set(idx.tolist())) == 8 and colours.sum() == 3  # every black cell, topped up with white
    idx = pt.sample_cells(np.eye(4, dtype=np.uint8), 6, torch.Generator().manual_seed(0))
    assert np.eye(4).reshape(-1)[idx.numpy()].sum() == 3
    again = pt.sample_cells(np.eye(4, dtype=np.uint8), 6, torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


# ---------------------------------------------------------------- patterns

def test_random_masks_have_the_requested_fill_fraction():
    for p in (0.1, 0.5, 0.9):
        fills = [pt.random_mask(10, p, seed).mean() for seed in range(200)]
        assert abs(float(np.mean(fills)) - p) < 0.01
    assert np.array_equal(pt.random_mask(8, 0.3, 7), pt.random_mask(8, 0.3, 7))
    assert not np.array_equal(pt.random_mask(8, 0.3, 7), pt.random_mask(8, 0.3, 8))


def test_drawn_patterns_are_binary_and_sized():
    for name in pt.SHAPES:
        p = pt.shape_pattern(name, 12)
        assert p.shape == (12, 12) and set(np.unique(p)) <= {0, 1} and p.any(), name
    ring = pt.shape_pattern("ring", 12)
    assert ring[6, 6] == 0 and ring[6, 1] == 1  # hollow
    letter = pt.glyph_pattern("A", 12)
    assert letter.shape == (12, 12) and 0.1 < letter.mean() < 0.7
    assert np.array_equal(pt.make_pattern({"kind": "random", "size": 6, "p": 0.5, "seed": 1}),
                          pt.random_mask(6, 0.5, 1))
    with pytest.raises(pt.PatternError, match="unknown pattern kind"):
        pt.make_pattern({"kind": "photo"})


def test_validator_rejects_non_binary_patterns_naming_them(tmp_path):
    with pytest.raises(pt.PatternError, match="my-pattern.*0.5"):
        pt.validate_pattern(np.array([[0, 0.5], [1, 1]]), name="my-pattern")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.array([[0, 2], [1, 1]]))
    with pytest.raises(pt.PatternError, match=r"bad\.npy.*not a binary pattern"):
        pt.load_pattern(bad)
    grey = tmp_path / "grey.png"
    from PIL import Image

    Image.fromarray(np.array([[0, 128], [255, 0]], dtype=np.uint8), mode="L").save(grey)
    with pytest.raises(pt.PatternError, match=r"grey\.png.*not a binary pattern"):
        pt.load_pattern(grey)
    with pytest.raises(pt.PatternError, match="2-D"):
        pt.validate_pattern(np.zeros(4))
    ring = pt.shape_pattern("ring", 8)
    for name in ("ring.npy", "ring.png"):
        pt.save_pattern(tmp_path / name, ring)
        assert np.array_equal(pt.load_pattern(tmp_path / name), ring)
    (tmp_path / "ring.txt").write_text("0 1\n1 0\n")
    assert pt.load_pattern(tmp_path / "ring.txt").tolist() == [[0, 1], [1, 0]]


# ---------------------------------------------------------------- metrics and figure

def test_fit_metrics_gaps_and_correlation(tmp_path):
    pattern = np.array([[1, 0], [0, 1]], dtype=np.uint8)
    acc = np.array([[0.9, 0.2], [0.4, 0.7]])
    loss = 2.0 - 2.0 * acc
    maps = pt.PatternMaps(train_loss=loss, train_acc=acc, test_loss=loss + 0.1, test_acc=acc - 0.1)
    m = pt.fit_metrics(pattern, maps)
    assert m["train_black_acc"] == pytest.approx(0.8) and m["train_white_acc"] == pytest.approx(0.3)
    assert m["train_acc_gap"] == pytest.approx(0.5) and m["test_acc_gap"] == pytest.approx(0.5)
    assert m["train_loss_gap"] == pytest.approx(-1.0)
    assert m["train_test_corr_acc"] == pytest.approx(1.0) and m["train_test_corr_loss"] == pytest.approx(1.0)
    maps.save(tmp_path / "maps.npz", pattern=pattern)
    assert np.array_equal(pt.PatternMaps.load(tmp_path / "maps.npz").test_acc, maps.test_acc)
    paths = plot_pattern_fit(pattern, maps, tmp_path / "fit", title="diagonal")
    assert [p[-3:] for p in paths] == ["png", "pdf"]
    assert all((tmp_path / f"fit.{ext}").stat().st_size > 0 for ext in ("png", "pdf"))


def test_config_refuses_unknown_keys_and_bad_values():
    config = pt.MPOConfig.from_mapping({"lr": 0.01, "cap": 2.5, "init_seeds": [3, 4, 5]})
    assert config.init_seeds == (3, 4, 5)
    with pytest.raises(ValueError, match="unknown key"):
        pt.MPOConfig.from_mapping({"learning_rate": 0.01})
    with pytest.raises(ValueError, match="cap"):
        pt.MPOConfig.from_mapping({"cap": -1.0})
    assert ParamLayout.of(build(MLP, (1, 8, 8), 10)) == config.plane(lambda: build(MLP, (1, 8, 8), 10)).layout


def test_trajectory_settings_leave_out_what_a_resumed_run_may_change():
    config = pt.MPOConfig(steps=10, lr=0.01)
    settings = pt.trajectory_settings(config)
    assert settings["lr"] == 0.01 and settings["cap"] == 2.5 and settings["init_seeds"] == (0, 1, 2)
    for key in ("steps", "ckpt_every", "eval_bn", "n_eval_train", "n_eval_test"):
        assert key not in settings
    assert pt.trajectory_settings(dataclasses.replace(config, steps=99, n_eval_train=5)) == settings
    assert pt.trajectory_settings(dataclasses.replace(config, lr=0.02)) != settings
