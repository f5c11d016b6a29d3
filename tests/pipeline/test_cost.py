"""losslab.pipeline.cost: counted forward FLOPs equal the analytic count; the work is derived from the config."""

import copy

import pytest
import torch
from torch import nn

from losslab.pipeline import cost
from losslab.core.models import build

from conftest import ROOT


def test_forward_flops_of_a_known_model_equal_the_analytic_count():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    before = copy.deepcopy(model.state_dict())
    # conv: 2 x (4 out channels x 1 in x 3 x 3) multiply-adds at each of the 8 x 8 outputs; linear: 2 x 256 x 10
    assert cost.forward_flops(model, (1, 8, 8)) == 2 * 4 * 9 * 64 + 2 * 256 * 10
    for k, v in model.state_dict().items():  # counted on a meta copy: the model is untouched
        assert torch.equal(v, before[k])


def test_zoo_mlp_flops_and_meta_build():
    spec = {"name": "mlp", "widths": [32]}
    assert cost.spec_flops(spec, (1, 8, 8), 10) == 2 * (64 * 32 + 32 * 10)
    model = build(spec, (1, 8, 8), 10)
    assert cost.forward_flops(model, (1, 8, 8)) == 2 * (64 * 32 + 32 * 10)


EXP = {
    "dataset": {"name": "digits", "preprocessing": ["normalize"]},
    "model": {"name": "mlp", "widths": [32]},
    "recipe": {"epochs": 4, "eval_every": 2, "batch_size": 32},
    "seeds": [0, 1, 2],
    "variants": {"a": {}, "b": {"recipe": {"batch_size": 8}}},
    "surface": {"seeds": [0], "x": [-1, 1, 3], "y": [-1, 1, 3], "n_train": 100, "n_test": 50, "bn": "running"},
}
F = 2 * (64 * 32 + 32 * 10)
N_TR, N_TE = cost.DATASETS["digits"][2:]


def test_experiment_cost_is_derived_from_the_config():
    c = cost.experiment_cost("toy", EXP)
    per_run = F * (4 * N_TR * cost.TRAIN_FORWARDS + 2 * (N_TR + N_TE))
    assert c.training == 2 * 3 * per_run
    assert c.analyses == 2 * 1 * F * 9 * (100 + 50)  # 2 variants x 1 surface seed x 9 points x 150 samples
    longer = cost.experiment_cost("toy", {**EXP, "recipe": {**EXP["recipe"], "epochs": 8}})
    assert longer.training == 2 * c.training
    recompute = cost.experiment_cost("toy", {**EXP, "surface": {**EXP["surface"], "bn": "recompute"}})
    assert recompute.analyses == 2 * F * 9 * (100 + 50 + 100)  # plus a BN-statistics pass per point


def test_dataset_sizes_follow_classes_and_subsets():
    assert cost.sizes({"name": "mnist", "classes": [0, 1, 2]}).n_train == 18_000
    s = cost.sizes({"name": "cifar10", "n_train": 1000, "n_test": 20_000})
    assert (s.n_train, s.n_test, s.input_shape) == (1000, 10_000, (3, 32, 32))
    with pytest.raises(ValueError, match="no size known for dataset 'imagenet'"):
        cost.sizes({"name": "imagenet"})


def test_gpu_hours_table_of_the_paper_scale(tmp_path):
    out = tmp_path / "gpu-hours.md"
    cost.cost_main([str(ROOT / "config/scales/paper.yaml"), "--out", str(out),
               "--claims", str(ROOT / "config/claims.yaml")])
    text = out.read_text()
    assert f"sustaining {cost.ACHIEVED_TFLOPS:g} TFLOP/s" in text and "FlopCounterMode" in text
    scale = cost.read_yaml(ROOT / "config/scales/paper.yaml")
    for name in scale["experiments"]:
        assert f"| `{name}` |" in text
    assert "resnet56-ingredient-ablation" in text and "**total**" in text
    rows = cost.scale_costs(scale)
    assert all(r["training"] > 0 for r in rows)
    assert cost.gpu_hours(20e12 * 3600, tflops=20) == pytest.approx(1.0)  # 20 TFLOP/s for an hour
