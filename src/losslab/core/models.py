"""The model zoo, built from a config mapping: ``build(spec, input_shape, num_classes)``.

Every architecture works on 1-D signals (MNIST-1D) and 2-D images alike: the spatial dimension is taken from
the input shape. Models are ordinary ``nn.Module``s; the analyses never rewrite them (they evaluate them at
other weights through :mod:`losslab.core.weights`).

Zoo:

* ``resnet``: CIFAR-style ResNet-(6n+2) (He et al. 2016; 1x1 conv + BN projection shortcuts where the shape
  changes, as in Li et al.'s code); ``skip: false`` gives Li et al.'s ``_noshort`` twin: the same layers,
  no shortcut.
* ``vgg``: VGG-9 / VGG-16 (``config`` names the layer list, BN optional, width multiplier).
* ``alexnet``: Keskar et al.'s C1 shape: two [conv 5x5 - (BN) - ReLU - max-pool 3 stride 2] blocks, dense
  384 and 192 with dropout, classifier.
* ``convnet``: a plain stack of 3x3 conv blocks with optional BN and pooling, then an MLP (the small CNN of
  the ablation analogue and the multi-point-optimization nets of Skorokhodov & Burtsev).
* ``mlp``: any widths, activation relu / sigmoid / tanh, BN optional (Bottou's 400-5-10, Keskar's F1).

``init_scale`` multiplies every conv/linear weight after the default initialisation (model E of Gotmare et
al. uses 3).
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn


class ModelError(ValueError):
    pass


def _conv(dim: int):
    return {1: nn.Conv1d, 2: nn.Conv2d}[dim]


def _bn(dim: int):
    return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dim]


def _maxpool(dim: int):
    return {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dim]


def _avgpool(dim: int):
    return {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d}[dim]


def _act(name: str) -> nn.Module:
    try:
        return {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[name]()
    except KeyError:
        raise ModelError(f"unknown activation {name!r}; known: relu, sigmoid, tanh") from None


# ---------------------------------------------------------------- ResNet ------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, dim: int, c_in: int, c_out: int, stride: int, skip: bool):
        super().__init__()
        Conv, BN = _conv(dim), _bn(dim)
        self.conv1 = Conv(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = BN(c_out)
        self.conv2 = Conv(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = BN(c_out)
        self.skip = skip
        self.shortcut = nn.Sequential()
        if skip and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(Conv(c_in, c_out, 1, stride, bias=False), BN(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + self.shortcut(x)
        return torch.relu(out)


class ResNet(nn.Module):
    def __init__(self, dim: int, in_channels: int, num_classes: int, depth: int = 20, width: int = 16,
                 skip: bool = True):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ModelError(f"resnet depth must be 6n+2 with n >= 1 (8, 14, 20, 56, 110, ...), not {depth}")
        n = (depth - 2) // 6
        Conv, BN = _conv(dim), _bn(dim)
        self.conv1 = Conv(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = BN(width)
        layers: list[nn.Module] = []
        c = width
        for stage, mult in enumerate((1, 2, 4)):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                layers.append(BasicBlock(dim, c, width * mult, stride, skip))
                c = width * mult
        self.layers = nn.Sequential(*layers)
        self.pool = _avgpool(dim)(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.layers(out)).flatten(1)
        return self.fc(out)


# ---------------------------------------------------------------- VGG ---------------------------------------

VGG_CONFIGS: dict[str, list[int | str]] = {
    # Li et al.'s VGG-9: 7 conv layers and two linear layers
    "vgg9": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def _sizes(input_size: int | Sequence[int], dim: int) -> list[int]:
    """The spatial extent per dimension (an int means the same extent in every dimension)."""
    sizes = [int(input_size)] * dim if isinstance(input_size, int) else [int(s) for s in input_size]
    if len(sizes) != dim:
        raise ModelError(f"input size {input_size!r} does not have {dim} spatial dimension(s)")
    return sizes


class VGG(nn.Module):
    def __init__(self, dim: int, in_channels: int, num_classes: int, input_size: int | Sequence[int],
                 config: str = "vgg16", bn: bool = True, width: float = 1.0, hidden: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        if config not in VGG_CONFIGS:
            raise ModelError(f"unknown vgg config {config!r}; known: {sorted(VGG_CONFIGS)}")
        Conv, BN, Pool = _conv(dim), _bn(dim), _maxpool(dim)
        layers: list[nn.Module] = []
        c, sizes = in_channels, _sizes(input_size, dim)
        for v in VGG_CONFIGS[config]:
            if v == "M":
                if min(sizes) >= 2:
                    layers.append(Pool(2))
                    sizes = [s // 2 for s in sizes]
                continue
            out = max(1, int(round(int(v) * width)))
            layers.append(Conv(c, out, 3, 1, 1, bias=not bn))
            if bn:
                layers.append(BN(out))
            layers.append(nn.ReLU())
            c = out
        self.features = nn.Sequential(*layers)
        flat = c * math.prod(sizes)
        hidden = hidden if hidden is not None else (256 if config == "vgg9" else 512)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(flat, hidden)]
        if bn:
            head.append(nn.BatchNorm1d(hidden))
        head += [nn.ReLU()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(hidden, num_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------- AlexNet-like (Keskar C1) ------------------

class AlexNetSmall(nn.Module):
    def __init__(self, dim: int, in_channels: int, num_classes: int, input_size: int | Sequence[int],
                 channels: Sequence[int] = (64, 64), dense: Sequence[int] = (384, 192), bn: bool = True,
                 dropout: float = 0.5, kernel: int = 5):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ModelError(f"alexnet kernel must be odd (size-preserving padding), not {kernel}")
        Conv, BN, Pool = _conv(dim), _bn(dim), _maxpool(dim)
        layers: list[nn.Module] = []
        c, sizes = in_channels, _sizes(input_size, dim)
        for out in channels:
            layers += [Conv(c, out, kernel, 1, kernel // 2, bias=not bn)]
            if bn:
                layers.append(BN(out))
            layers.append(nn.ReLU())
            if min(sizes) >= 3:
                layers.append(Pool(3, 2, 1))
                sizes = [(s + 2 - 3) // 2 + 1 for s in sizes]
            c = out
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        f = c * math.prod(sizes)
        for h in dense:
            head += [nn.Linear(f, h)]
            if bn:
                head.append(nn.BatchNorm1d(h))
            head += [nn.ReLU()]
            if dropout:
                head.append(nn.Dropout(dropout))
            f = h
        head.append(nn.Linear(f, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------- plain ConvNet ----------------------------

class ConvNet(nn.Module):
    def __init__(self, dim: int, in_channels: int, num_classes: int, channels: Sequence[int] = (16, 32),
                 hidden: Sequence[int] = (64,), bn: bool = False, pool: str = "max", pooled_size: int = 1,
                 kernel: int = 3):
        super().__init__()
        if pool not in ("max", "none", None):
            raise ModelError(f"convnet pool must be 'max' or 'none', not {pool!r}")
        Conv, BN = _conv(dim), _bn(dim)
        layers: list[nn.Module] = []
        c = in_channels
        for i, out in enumerate(channels):
            layers.append(Conv(c, out, kernel, 1, kernel // 2, bias=not bn))
            if bn:
                layers.append(BN(out))
            layers.append(nn.ReLU())
            if pool == "max" and i < len(channels) - 1:
                layers.append(_maxpool(dim)(2, ceil_mode=True))
            c = out
        layers.append(_avgpool(dim)(pooled_size))
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        f = c * pooled_size ** dim
        for h in hidden:
            head += [nn.Linear(f, h), nn.ReLU()]
            f = h
        head.append(nn.Linear(f, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ---------------------------------------------------------------- MLP ---------------------------------------

class MLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, widths: Sequence[int] = (5,),
                 activation: str = "relu", bn: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        f = in_features
        for w in widths:
            layers.append(nn.Linear(f, w))
            if bn:
                layers.append(nn.BatchNorm1d(w))
            layers.append(_act(activation))
            f = w
        layers.append(nn.Linear(f, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------- factory -----------------------------------

MODELS = ("resnet", "vgg", "alexnet", "convnet", "mlp")


def build(spec: Mapping[str, Any], input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """Build a model from ``spec`` (``{"name": ..., **options}``) for inputs of ``input_shape`` (C, *spatial).

    Call ``torch.manual_seed`` first for a reproducible initialisation.
    """
    spec = dict(spec)
    name = spec.pop("name", None)
    init_scale = float(spec.pop("init_scale", 1.0))
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; known: {list(MODELS)}")
    channels, *spatial = input_shape
    dim = len(spatial)
    if name != "mlp" and dim not in (1, 2):
        raise ModelError(f"{name} needs 1-D or 2-D inputs, got input shape {tuple(input_shape)}")
    cls = {"mlp": MLP, "resnet": ResNet, "vgg": VGG, "alexnet": AlexNetSmall, "convnet": ConvNet}[name]
    positional = {"mlp": 2, "resnet": 3, "vgg": 4, "alexnet": 4, "convnet": 3}[name]
    known = list(inspect.signature(cls.__init__).parameters)[1 + positional:]  # after self and positionals
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise ModelError(f"model {name!r}: unknown option(s) {unknown}; known: {known + ['init_scale']}")
    if name == "mlp":
        model: nn.Module = MLP(math.prod(input_shape), num_classes, **spec)
    elif name == "resnet":
        model = ResNet(dim, channels, num_classes, **spec)
    elif name in ("vgg", "alexnet"):
        model = cls(dim, channels, num_classes, tuple(spatial), **spec)
    else:
        model = ConvNet(dim, channels, num_classes, **spec)
    if init_scale != 1.0:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                    m.weight.mul_(init_scale)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
