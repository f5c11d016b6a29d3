"""The workflow config: every scale validates; a bad value is named with what is allowed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from losslab.pipeline.config import ConfigError, deep_merge, resolve, run_spec

ROOT = Path(__file__).resolve().parents[2]
BASE = {"scale": "smoke", "data_dir": "data", "results": "results", "resources": "resources", "logs": "logs",
        "threads": 1, "progress": False}


@pytest.mark.parametrize("scale", ["smoke", "desk", "cpu", "paper"])
def test_every_scale_validates(scale):
    cfg = resolve({**BASE, "scale": scale}, ROOT)
    assert {"ablation", "sgd_vs_gd"} <= set(cfg["experiments"])
    for name, exp in cfg["experiments"].items():
        for variant in exp.get("variants", {"default": {}}):
            spec = run_spec(exp, variant)
            assert {"dataset", "model", "recipe"} <= set(spec)


def exp_override(**recipe):
    return {"experiments": {"ablation": {"recipe": recipe}}}


@pytest.mark.parametrize("override, key, allowed", [
    ({"scale": "huge"}, "'scale'", "['smoke', 'desk', 'cpu', 'paper']"),
    ({"threads": 0}, "'threads'", "minimum 1"),
    (exp_override(optimizer="lbfgs"), "experiments.ablation.recipe.optimizer", "'adam'"),
    (exp_override(epochs=0), "experiments.ablation.recipe.epochs", "minimum 1"),
    (exp_override(epochs=-3), "experiments.ablation.recipe.epochs", "minimum 1"),
    (exp_override(lr=math.nan), "experiments.ablation.recipe.lr", "not a finite number"),
    (exp_override(batch_size="half"), "experiments.ablation.recipe.batch_size", "'full'"),
    (exp_override(momentun=0.9), "experiments.ablation.recipe", "allowed keys"),
    ({"experiments": {"ablation": {"model": {"name": "transformer"}}}}, "experiments.ablation.model.name",
     "'resnet'"),
    ({"experiments": {"ablation": {"dataset": {"name": "imagenet"}}}}, "experiments.ablation.dataset.name",
     "'cifar10'"),
    ({"experiments": {"ablation": {"seeds": []}}}, "experiments.ablation.seeds", "non-empty"),
    ({"experiments": {"ablation": {"dataset": {"preprocessing": ["rotate"]}}}},
     "experiments.ablation.dataset.preprocessing.0", ""),
    ({"bogus_key": 1}, "<top level>", "bogus_key"),
])
def test_bad_values_are_named(override, key, allowed):
    with pytest.raises(ConfigError) as err:
        resolve(deep_merge(BASE, override), ROOT)
    msg = str(err.value)
    assert f"config key {key}" in msg or f"config key '{key}'" in msg, msg
    assert allowed in msg, msg


def test_user_keys_override_the_scale():
    cfg = resolve(deep_merge(BASE, exp_override(epochs=2)), ROOT)
    assert cfg["experiments"]["ablation"]["recipe"]["epochs"] == 2
    assert cfg["experiments"]["ablation"]["recipe"]["optimizer"] == "momentum"  # the rest kept


def test_missing_scale_file_and_bad_yaml(tmp_path):
    (tmp_path / "workflow" / "schemas").mkdir(parents=True)
    (tmp_path / "workflow" / "schemas" / "config.schema.yaml").write_text(
        (ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    with pytest.raises(ConfigError, match="scales/smoke.yaml: file not found"):
        resolve(BASE, tmp_path)
    (tmp_path / "config" / "scales").mkdir(parents=True)
    (tmp_path / "config" / "scales" / "smoke.yaml").write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(BASE, tmp_path)


def test_run_spec_unknown_variant():
    cfg = resolve(BASE, ROOT)
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        run_spec(cfg["experiments"]["ablation"], "nope")


def test_deep_merge_replaces_lists_and_merges_mappings():
    a = {"x": {"y": 1, "z": [1, 2]}, "k": 1}
    b = {"x": {"z": [3]}, "n": 2}
    assert deep_merge(a, b) == {"x": {"y": 1, "z": [3]}, "k": 1, "n": 2}
    assert a == {"x": {"y": 1, "z": [1, 2]}, "k": 1}  # inputs untouched



def test_unknown_experiment_is_named_with_the_known_ones():
    """A misspelt experiment in the user's config is named as such, not as a new experiment lacking `dataset`."""
    with pytest.raises(ConfigError) as err:
        resolve({**BASE, "experiments": {"ablaton": {"recipe": {"epochs": 3}}}}, ROOT)
    assert str(err.value) == (
        f"invalid config (config.yaml + {ROOT}/config/scales/smoke.yaml + --config):\n"
        "  config key 'experiments.ablaton': unknown experiment 'ablaton' (known: ablation, batch_outliers, "
        "batch_wd, connectivity, hessian_classes, keskar, lb_sb_basin, memorize, minima_width, mixup, mse_vs_ce, "
        "sgd_vs_gd, skip_depth, skip_width, swa)")
