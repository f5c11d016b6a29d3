"""Tests for losslab.core.models: every architecture builds and runs on 1-D and 2-D inputs; seeding, init_scale,
the ResNet skip / no-skip twins, and the errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab.core import models

NUM_CLASSES = 7
BATCH = 3

# (spec, input shape)
CASES = [
    *[({"name": "resnet", "depth": d, "skip": s, "width": 8}, shape)
      for d in (8, 14) for s in (True, False) for shape in ((3, 16, 16), (1, 40))],
    *[({"name": "vgg", "config": c, "bn": bn, "width": 0.125}, (3, 32, 32))
      for c in ("vgg9", "vgg16") for bn in (True, False)],
    ({"name": "alexnet", "channels": [8, 8], "dense": [32, 16]}, (3, 32, 32)),
    ({"name": "alexnet"}, (1, 8, 8)),
    *[({"name": "convnet", "bn": bn}, shape) for bn in (True, False) for shape in ((1, 8, 8), (1, 40))],
    *[({"name": "mlp", "widths": [16, 8], "activation": a, "bn": bn}, (1, 8, 8))
      for a in ("sigmoid", "relu", "tanh") for bn in (True, False)],
    ({"name": "mlp", "widths": [5], "activation": "sigmoid"}, (1, 40)),
]


def _id(case):
    spec, shape = case
    return "-".join(f"{v}" for v in spec.values()) + "@" + "x".join(map(str, shape))


def _build(spec, shape, seed=0, num_classes=NUM_CLASSES):
    torch.manual_seed(seed)
    return models.build(spec, shape, num_classes)


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_builds_and_returns_logits(case):
    spec, shape = case
    model = _build(spec, shape)
    x = torch.randn(BATCH, *shape)
    model.train()
    out = model(x)
    assert out.shape == (BATCH, NUM_CLASSES)
    assert torch.isfinite(out).all()
    out.sum().backward()  # differentiable end to end: every parameter receives a gradient
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, NUM_CLASSES)  # eval mode works on a single example (BN stats)
    # the spatial dimensionality follows the input: 1-D inputs give 1-D convolutions and vice versa
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if spec["name"] == "mlp":
        assert not convs
    else:
        want = nn.Conv1d if len(shape) == 2 else nn.Conv2d
        assert convs and all(isinstance(m, want) for m in convs)
        assert convs[0].in_channels == shape[0]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_seeded_builds_are_identical(case):
    spec, shape = case
    a, b, c = _build(spec, shape, 0), _build(spec, shape, 0), _build(spec, shape, 1)
    assert _same_state(a, b)
    assert not _same_state(a, c)
    x = torch.randn(BATCH, *shape)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_mlp_activation_and_bn_layers():
    for act, cls in (("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)):
        m = models.build({"name": "mlp", "widths": [400, 5], "activation": act}, (1, 28, 28), 10)
        kinds = [type(x) for x in m.modules()]
        assert kinds.count(cls) == 2 and nn.BatchNorm1d not in kinds
        linears = [x for x in m.modules() if isinstance(x, nn.Linear)]
        assert [(lin.in_features, lin.out_features) for lin in linears] == [(784, 400), (400, 5), (5, 10)]
    m = models.build({"name": "mlp", "widths": [5], "bn": True}, (1, 8, 8), 10)
    assert sum(isinstance(x, nn.BatchNorm1d) for x in m.modules()) == 1


def test_vgg_layers_follow_config_bn_and_width():
    for config, n_conv in (("vgg9", 7), ("vgg16", 13)):
        for bn in (True, False):
            m = models.build({"name": "vgg", "config": config, "bn": bn, "width": 0.125}, (3, 32, 32), 10)
            convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
            assert len(convs) == n_conv
            assert convs[0].out_channels == 8  # 64 * 0.125
            assert all((c.bias is None) == bn for c in convs)  # BN absorbs the conv bias
            n_bn = sum(isinstance(x, (nn.BatchNorm2d, nn.BatchNorm1d)) for x in m.modules())
            assert n_bn == (n_conv + 1 if bn else 0)
            assert sum(isinstance(x, nn.Linear) for x in m.modules()) == 2


def test_convnet_bn_and_pooling_options():
    with_bn = models.build({"name": "convnet", "bn": True}, (1, 8, 8), 10)
    without = models.build({"name": "convnet", "bn": False}, (1, 8, 8), 10)
    assert sum(isinstance(x, nn.BatchNorm2d) for x in with_bn.modules()) == 2
    assert not any(isinstance(x, nn.BatchNorm2d) for x in without.modules())
    no_pool = models.build({"name": "convnet", "pool": "none"}, (1, 8, 8), 10)
    assert not any(isinstance(x, nn.MaxPool2d) for x in no_pool.modules())
    assert no_pool(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(models.ModelError, match="pool"):
        models.build({"name": "convnet", "pool": "avg"}, (1, 8, 8), 10)


@pytest.mark.parametrize("spec", [{"name": "vgg", "config": "vgg9", "width": 0.125},
                                  {"name": "alexnet", "channels": [4, 4], "dense": [8, 8]}])
def test_non_square_images(spec):
    m = models.build(spec, (3, 32, 12), 5)
    assert m(torch.randn(2, 3, 32, 12)).shape == (2, 5)


# ---------------------------------------------------------------- ResNet ------------------------------------

@pytest.mark.parametrize("depth,shape", [(8, (3, 16, 16)), (14, (3, 16, 16)), (8, (1, 40)), (14, (1, 40))])
def test_resnet_noshort_has_same_parameters_except_shortcuts(depth, shape):
    short = _build({"name": "resnet", "depth": depth, "skip": True}, shape).state_dict()
    noshort = _build({"name": "resnet", "depth": depth, "skip": False}, shape).state_dict()
    projections = {k for k in short if ".shortcut." in k}
    assert projections  # the stage transitions have 1x1 conv + BN projections ...
    assert not any(".shortcut." in k for k in noshort)  # ... which the twin does not have
    assert set(short) - projections == set(noshort)
    for k in noshort:
        assert short[k].shape == noshort[k].shape, k
    # exactly two projections (stage 2 and stage 3), each a conv weight plus a BN
    assert {k.rsplit(".shortcut.", 1)[0] for k in projections} == {f"layers.{(depth - 2) // 6}",
                                                                   f"layers.{2 * (depth - 2) // 6}"}
    convs = sum(1 for k, v in noshort.items() if k.endswith("weight") and v.ndim == len(shape) + 1)
    assert convs == depth - 1  # 6n + 1 convolutions and one linear layer: depth 6n + 2


def test_resnet_block_forward_with_and_without_skip():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 6, 6)
    for skip in (True, False):
        block = models.BasicBlock(2, 8, 8, 1, skip).eval()
        with torch.no_grad():
            residual = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
            want = torch.relu(residual + x) if skip else torch.relu(residual)
            assert torch.allclose(block(x), want)
    # with a projection: stride 2 and a channel change
    block = models.BasicBlock(1, 4, 8, 2, True).eval()
    x1 = torch.randn(2, 4, 10)
    with torch.no_grad():
        residual = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x1)))))
        assert torch.allclose(block(x1), torch.relu(residual + block.shortcut(x1)))
        assert block(x1).shape == (2, 8, 5)


@pytest.mark.parametrize("depth", [2, 6, 7, 9, 10, 13, 21])
def test_resnet_depth_must_be_6n_plus_2(depth):
    with pytest.raises(models.ModelError, match="6n\\+2"):
        models.build({"name": "resnet", "depth": depth}, (3, 16, 16), 10)


# ---------------------------------------------------------------- errors ------------------------------------

@pytest.mark.parametrize("spec", [{"name": "transformer"}, {}, {"name": None}, {"name": "ResNet"}])
def test_unknown_model(spec):
    with pytest.raises(models.ModelError, match="unknown model"):
        models.build(spec, (3, 16, 16), 10)


@pytest.mark.parametrize("spec", [
    {"name": "resnet", "depht": 8},
    {"name": "vgg", "batchnorm": True},
    {"name": "alexnet", "dim": 2},
    {"name": "convnet", "chanels": [4]},
    {"name": "mlp", "width": [5]},
])
def test_unknown_option(spec):
    with pytest.raises(models.ModelError, match="unknown option"):
        models.build(spec, (3, 16, 16), 10)


@pytest.mark.parametrize("spec,shape", [
    ({"name": "mlp", "activation": "gelu"}, (1, 8, 8)),
    ({"name": "vgg", "config": "vgg11"}, (3, 32, 32)),
    ({"name": "convnet"}, (1, 4, 4, 4)),
    ({"name": "resnet", "depth": 8}, (3,)),
])
def test_invalid_values(spec, shape):
    with pytest.raises(models.ModelError):
        models.build(spec, shape, 10)


def test_model_error_is_a_value_error():
    assert issubclass(models.ModelError, ValueError)


# ---------------------------------------------------------------- init_scale --------------------------------

INIT_CASES = [
    ({"name": "resnet", "depth": 8, "width": 4}, (3, 8, 8)),
    ({"name": "resnet", "depth": 8, "width": 4, "skip": False}, (1, 40)),
    ({"name": "vgg", "config": "vgg9", "bn": False, "width": 0.125}, (3, 32, 32)),
    ({"name": "alexnet", "channels": [4, 4], "dense": [8, 8]}, (1, 8, 8)),
    ({"name": "convnet", "bn": True}, (1, 40)),
    ({"name": "mlp", "widths": [5], "bn": True}, (1, 8, 8)),
]


@pytest.mark.parametrize("case", INIT_CASES, ids=[_id(c) for c in INIT_CASES])
def test_init_scale_multiplies_weights_exactly(case):
    spec, shape = case
    base = _build(spec, shape, seed=3)
    scaled = _build({**spec, "init_scale": 3}, shape, seed=3)
    mods_b, mods_s = dict(base.named_modules()), dict(scaled.named_modules())
    assert mods_b.keys() == mods_s.keys()
    n_scaled = 0
    for name, mb in mods_b.items():
        ms = mods_s[name]
        for pname, pb in list(mb.named_parameters(recurse=False)) + list(mb.named_buffers(recurse=False)):
            ps = getattr(ms, pname)
            if isinstance(mb, (nn.Linear, nn.Conv1d, nn.Conv2d)) and pname == "weight":
                assert torch.equal(ps, pb * 3), f"{name}.{pname}"
                assert not torch.equal(ps, pb)
                n_scaled += 1
            else:  # biases, BN affine parameters and running statistics are left alone
                assert torch.equal(ps, pb), f"{name}.{pname}"
    assert n_scaled == sum(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for m in base.modules()) > 0
    if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in base.modules()):
        bn = next(m for m in scaled.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))


def test_init_scale_one_is_the_default():
    spec, shape = INIT_CASES[0]
    assert _same_state(_build(spec, shape, 5), _build({**spec, "init_scale": 1.0}, shape, 5))


def test_count_parameters():
    m = models.build({"name": "mlp", "widths": [5]}, (1, 20, 20), 10)
    assert models.count_parameters(m) == 400 * 5 + 5 + 5 * 10 + 10  # Bottou's 400-5-10
