"""GPU readiness, checked on the CPU paths: the device chosen in one place from the config, data moved to
it once, an optional bfloat16 autocast for evaluation that is close to float32 (and off by default)."""

import copy

import pytest
import torch
from losslab.pipeline import job
from losslab.core import placement as pl
from losslab.pipeline.config import ConfigError, read_yaml, resolve
from losslab.core.data import prepare
from losslab.core.models import build
from losslab.core.weights import PointEvaluator, flatten
from losslab.core.surfaces import evaluators_for
from losslab.core.trainer import Recipe, fit

from conftest import ROOT


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return prepare({"name": "digits", "n_train": 300, "n_test": 100, "preprocessing": ["normalize"]},
                   resources=tmp_path_factory.mktemp("res"))


def test_device_for_reads_the_config_key():
    assert pl.device_for({"device": "cpu"}) == torch.device("cpu")
    assert pl.device_for("cpu") == torch.device("cpu")
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert pl.device_for({}) == expected == pl.device_for({"device": "auto"})


def test_auto_picks_cuda_when_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pl.device_for({"device": "auto"}) == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pl.device_for({"device": "auto"}) == torch.device("cpu")


def test_cuda_without_a_gpu_is_a_clear_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(pl.DeviceError, match=r"config key 'device': 'cuda' was requested but no CUDA GPU"):
        pl.device_for({"device": "cuda"})
    with pytest.raises(pl.DeviceError, match=r"config key 'device': 'tpu' is not allowed"):
        pl.device_for({"device": "tpu"})


def test_config_schema_knows_device_and_autocast():
    cfg = read_yaml(ROOT / "config" / "config.yaml")
    merged = resolve(cfg, ROOT)
    assert merged["device"] == "auto" and merged["eval_autocast"] == "none"
    assert pl.autocast_for(merged) is None
    assert pl.autocast_for({**merged, "eval_autocast": "bf16"}) == "bf16"
    with pytest.raises(ConfigError, match=r"config key 'device': 'gpu' is not allowed"):
        resolve({**cfg, "device": "gpu"}, ROOT)
    with pytest.raises(ConfigError, match=r"config key 'eval_autocast': 'fp16' is not allowed"):
        resolve({**cfg, "eval_autocast": "fp16"}, ROOT)


def test_prepared_to_moves_once_and_is_a_no_op_where_the_data_are(digits):
    assert digits.device == torch.device("cpu")
    assert digits.to("cpu") is digits
    assert digits.to(torch.device("cpu")) is digits


def test_fit_with_the_model_and_data_placed_on_the_cpu_device(digits):
    """A model moved to ``device_for("cpu")`` with its data moved there trains to the same weights, bitwise,
    as the untouched ones (the device plumbing is a no-op on the CPU)."""
    torch.manual_seed(0)
    model = build({"name": "mlp", "widths": [16]}, digits.input_shape, digits.num_classes)
    other = copy.deepcopy(model).to(pl.device_for("cpu"))
    recipe = Recipe(epochs=2, batch_size=32, eval_every=2)
    fit(model, digits, recipe, seed=0)
    fit(other, digits.to("cpu"), recipe, seed=0)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def _bn_convnet(digits):
    torch.manual_seed(0)
    model = build({"name": "convnet", "channels": [8], "hidden": [16], "bn": True}, digits.input_shape,
                  digits.num_classes)
    fit(model, digits, Recipe(epochs=2, batch_size=32, eval_every=2), seed=0)
    return model.eval()


def test_default_evaluation_is_exact_float32(digits):
    model = _bn_convnet(digits)
    ev = PointEvaluator(model, digits.x_test, digits.y_test, chunk=40)
    assert ev.autocast is None and "autocast" not in ev.fingerprint()
    out = ev.outputs(flatten(model))
    with torch.no_grad():
        direct = torch.cat([model(digits.x_test[i:i + 40]) for i in range(0, len(digits.y_test), 40)])
    assert out.dtype == torch.float32 and torch.equal(out, direct)
    explicit = PointEvaluator(model, digits.x_test, digits.y_test, chunk=40, autocast="none")
    assert explicit.evaluate(flatten(model)) == ev.evaluate(flatten(model))


@pytest.mark.parametrize("bn", ["running", "recompute"])
def test_bf16_evaluation_is_close_to_float32(digits, bn):
    model = _bn_convnet(digits)
    w = flatten(model)
    exact = evaluators_for(model, digits, bn=bn, chunk=100)
    half = evaluators_for(model, digits, bn=bn, chunk=100, autocast="bf16")
    assert half["train"].fingerprint()["autocast"] == "bf16"
    for split in ("train", "test"):
        a, b = exact[split].evaluate(w), half[split].evaluate(w)
        assert a != b  # bfloat16 did run (an exact match would mean the autocast was not applied)
        assert b.loss == pytest.approx(a.loss, rel=3e-2, abs=1e-2)
        assert abs(a.acc - b.acc) <= 0.03
    out = half["test"].outputs(w)
    assert out.dtype == torch.float32  # summed and returned in float32


def test_bf16_evaluate_many_vmap_path(digits):
    torch.manual_seed(0)
    model = build({"name": "mlp", "widths": [16]}, digits.input_shape, digits.num_classes).eval()
    w = flatten(model)
    points = [w, w * 0.9, w * 1.1]
    exact = PointEvaluator(model, digits.x_train, digits.y_train, many="vmap").evaluate_many(points)
    half = PointEvaluator(model, digits.x_train, digits.y_train, many="vmap", autocast="bf16").evaluate_many(points)
    for a, b in zip(exact, half):
        assert b.loss == pytest.approx(a.loss, rel=3e-2)


def test_unknown_autocast_is_refused(digits):
    with pytest.raises(ValueError, match="unknown autocast 'fp8'"):
        PointEvaluator(torch.nn.Linear(64, 10), digits.x_test.flatten(1), digits.y_test, autocast="fp8")


# ---------------------------------------------------------------- the job's placement -----------------------

def test_placement_defaults_to_the_cpu_in_float32_and_placed_restores_it():
    assert pl.placement() == pl.Placement(torch.device("cpu"), None)
    with pl.placed("meta", "bf16") as where:
        assert pl.placement() is where and where.device == torch.device("meta") and where.autocast == "bf16"
    assert pl.placement() == pl.Placement()
    with pytest.raises(pl.DeviceError, match="autocast 'fp16' is not allowed"):
        with pl.placed("cpu", "fp16"):
            pass


def test_start_job_sets_the_placement_from_the_config(tmp_path):
    """The config's ``device`` and ``eval_autocast``, read once at the job's door, hold for every evaluator
    the job builds (run in a copied context: the test leaves the process's placement alone)."""
    import contextvars

    def started():
        job.start_job(tmp_path / "job.log", 1, {"device": "cpu", "eval_autocast": "bf16"})
        return pl.placement()

    assert contextvars.copy_context().run(started) == pl.Placement(torch.device("cpu"), "bf16")
    assert "evaluations on cpu (autocast bf16)" in (tmp_path / "job.log").read_text()
    assert pl.placement() == pl.Placement()
    with pytest.raises(pl.DeviceError, match="config key 'eval_autocast'"):
        contextvars.copy_context().run(job.start_job, None, 1, {"eval_autocast": "fp8"})


@pytest.mark.parametrize("bn", ["running", "recompute", "batch"])
def test_evaluators_hold_network_and_data_on_the_placement_device(digits, bn):
    """On the ``meta`` device (shapes without values: the CPU's stand-in for a GPU here) an evaluator built
    in the placement holds its network, buffers and data there, takes weight vectors from the CPU, and a
    whole forward pass (with the BN policy's statistics pass) runs there without meeting a CPU tensor.
    The caller's model stays where it was."""
    model = _bn_convnet(digits)
    w = flatten(model)
    with pl.placed("meta"):
        ev = evaluators_for(model, digits, bn=bn, chunk=100)["test"]
    assert ev.device == torch.device("meta")
    assert {t.device.type for t in (ev.x, ev.y, ev.recompute_data, *ev._buffers.values())} == {"meta"}
    assert {p.device.type for p in ev._runner.parameters()} == {"meta"}
    assert ev.apply(w, lambda net: net(ev.x).shape) == (len(digits.y_test), digits.num_classes)
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_evaluators_take_the_placement_autocast_unless_told(digits):
    model = _bn_convnet(digits)
    with pl.placed("cpu", "bf16"):
        assert evaluators_for(model, digits)["train"].autocast == "bf16"
        assert evaluators_for(model, digits, autocast=None)["train"].autocast is None
        assert PointEvaluator(model, digits.x_test, digits.y_test).autocast is None  # Hessians stay exact
    assert evaluators_for(model, digits)["train"].autocast is None
    assert "device" not in evaluators_for(model, digits)["train"].fingerprint()  # CPU files are unchanged


def test_prepare_run_builds_the_model_on_the_placement_device():
    from losslab.claims.training import prepare_run

    run = {"dataset": {"name": "digits", "n_train": 50, "n_test": 20}, "model": {"name": "mlp", "widths": [8]},
           "recipe": {"epochs": 1}}
    with pl.placed("meta"):
        model, data, _ = prepare_run(run, 0)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert data.device == torch.device("cpu")  # fit moves the data to the model, once
    model, _, _ = prepare_run(run, 0)
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_every_workflow_script_gives_start_job_the_config():
    """The config's device and autocast reach every job: each script passes ``sm.config`` to start_job."""
    import ast

    missing = []
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        calls = [n for n in ast.walk(ast.parse(script.read_text())) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", None) == "start_job"]
        if not calls or not all(len(c.args) >= 3 or any(k.arg == "config" for k in c.keywords) for c in calls):
            missing.append(script.name)
    assert not missing, f"scripts that do not pass the config to start_job: {missing}"


def test_mpo_cell_network_lives_on_the_placement_device(digits):
    from losslab.core.patterns import CellNet

    model = _bn_convnet(digits)
    with pl.placed("meta"):
        net = CellNet(model)
    assert net.device == torch.device("meta") and {p.device.type for p in net.net.parameters()} == {"meta"}
    assert CellNet(model).device == torch.device("cpu")
