"""Features users of Li et al.'s loss-landscape, PyHessian and Garipov et al.'s dnn-mode-connectivity expect, on
models that are not in losslab's zoo (a tiny conv net with batch norm, MLPs, a linear model): DataParallel
checkpoints, the loss along the top Hessian eigenvector, per-layer Hessian spectra, eigenvalue-ratio maps, the
plane of a curve, plot options and the ParaView export."""

import numpy as np
import pytest
import torch
from torch import nn

from losslab import api
from losslab import io as lio
from losslab.core.weights import flatten


class TinyBNConv(nn.Module):
    """A conv net with batch norm (not one of losslab's models)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def tiny_bn_conv(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = TinyBNConv()
    with torch.no_grad():  # non-trivial running statistics
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


class Wrapped(nn.Module):
    """A model whose own keys start with ``module.`` (a submodule named so)."""

    def __init__(self):
        super().__init__()
        self.module = nn.Linear(3, 2)


# ---------------------------------------------------------------- 1. DataParallel checkpoints --------------

def test_dataparallel_checkpoints_lose_their_module_prefix(tmp_path):
    net = tiny_bn_conv(1)
    parallel = nn.DataParallel(net)  # on the CPU a plain wrapper: the same keys behind "module."
    state = parallel.state_dict()
    assert all(k.startswith("module.") for k in state)
    lio.save_torch(tmp_path / "dp.pt", state)
    lio.save_torch(tmp_path / "ddp_ckpt.pt", {"state_dict": state, "epoch": 3})
    for name in ("dp.pt", "ddp_ckpt.pt"):
        loaded = api.load_checkpoint(tiny_bn_conv(0), tmp_path / name)
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))


def test_the_prefix_is_kept_when_the_model_has_it_or_not_every_key_has_it(tmp_path):
    own = Wrapped()
    lio.save_torch(tmp_path / "own.pt", own.state_dict())  # keys module.weight, module.bias: the model's own
    fresh = api.load_checkpoint(Wrapped(), tmp_path / "own.pt")
    assert torch.equal(fresh.module.weight, own.module.weight)
    state = {f"module.{k}" if k.startswith("conv") else k: v for k, v in tiny_bn_conv().state_dict().items()}
    lio.save_torch(tmp_path / "mixed.pt", state)
    with pytest.raises(api.CheckpointError, match=r"mixed\.pt: .*unexpected keys \['module\.conv"):
        api.load_checkpoint(tiny_bn_conv(), tmp_path / "mixed.pt")
    assert lio.strip_parallel_prefix({"module.a": 1}, {"module.a": 0}) == {"module.a": 1}
    assert lio.strip_parallel_prefix({"module.a": 1}, {"a": 0}) == {"a": 1}
