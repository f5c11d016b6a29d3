"""The flat-vector view of a model and the point evaluator (losslab.core.weights)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from losslab.core.losses import evaluate
from losslab.core.models import build
from losslab.core.weights import (ParamLayout, PointEvaluator, flatten, has_batchnorm, running_stat_names,
                                   state_vector, tensor_digest, unflatten)

torch.set_num_threads(1)

SHAPE = (1, 8, 8)


def _data(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def _bn_net(seed: int = 0) -> torch.nn.Module:
    """A small conv net with BN whose running statistics are not the defaults (a few train-mode passes)."""
    torch.manual_seed(seed)
    model = build({"name": "convnet", "channels": [4, 8], "hidden": [16], "bn": True}, SHAPE, 10)
    x, _ = _data(64, seed=seed + 1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2.0 + 0.5)
    return model.eval()


def _mlp(seed: int = 0, widths: tuple[int, ...] = (16,)) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build({"name": "mlp", "widths": list(widths)}, SHAPE, 10)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- flatten / unflatten ----------------------

def test_flatten_unflatten_round_trip() -> None:
    model = _bn_net()
    vec = flatten(model)
    assert vec.ndim == 1 and vec.numel() == sum(p.numel() for p in model.parameters())
    parts = unflatten(model, vec)
    assert list(parts) == [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        assert torch.equal(parts[name], p)
    layout = ParamLayout.of(model)
    assert torch.equal(layout.cat(layout.split(vec)), vec)


def test_unflatten_gives_views_and_flatten_a_copy() -> None:
    model = _mlp()
    before = _state(model)
    vec = flatten(model)
    parts = unflatten(model, vec)
    vec.zero_()
    assert all(float(t.abs().sum()) == 0.0 for t in parts.values())  # views of vec
    assert _same_state(before, _state(model))  # flatten copied


def test_layout_rejects_a_wrong_length() -> None:
    model = _mlp()
    with pytest.raises(ValueError, match="flat vector"):
        unflatten(model, torch.zeros(flatten(model).numel() + 1))


def test_tensor_digest_tells_tensors_apart() -> None:
    a = torch.arange(6.0)
    assert tensor_digest(a) == tensor_digest(a.clone())
    assert tensor_digest(a) != tensor_digest(a.view(2, 3))
    assert tensor_digest(a) != tensor_digest(a.double())
    assert tensor_digest(torch.tensor(3)) != tensor_digest(torch.tensor(4))


# ---------------------------------------------------------------- evaluation --------------------------------

@pytest.mark.parametrize("make", [_bn_net, _mlp])
def test_running_policy_equals_plain_evaluation(make) -> None:
    model = make()
    x, y = _data()
    ev = PointEvaluator(model, x, y, bn="running", chunk=100)
    assert ev.evaluate(flatten(model)) == evaluate(model, x, y, chunk=100)


def test_evaluating_elsewhere_matches_a_model_holding_those_weights() -> None:
    model = _bn_net()
    x, y = _data()
    vec = flatten(model) + 0.05 * torch.randn(flatten(model).shape, generator=torch.Generator().manual_seed(1))
    other = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in other.named_parameters():
            p.copy_(unflatten(model, vec)[name])
    assert PointEvaluator(model, x, y, chunk=100).evaluate(vec) == evaluate(other, x, y, chunk=100)


def test_recompute_policy_is_garipov_bn_update() -> None:
    """Fresh statistics from a train-mode pass over the training inputs (cumulative average), then eval."""
    model = _bn_net()
    x, y = _data()
    x_train, _ = _data(300, seed=5)
    reference = copy.deepcopy(model)
    for m in reference.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: equal chunks -> the same as b / (n + b)
    reference.train()
    with torch.no_grad():
        for i in range(0, 300, 100):
            reference(x_train[i:i + 100])
    expected = evaluate(reference, x, y, chunk=100)
    got = PointEvaluator(model, x, y, bn="recompute", chunk=100, recompute_data=x_train).evaluate(flatten(model))
    assert got.loss == pytest.approx(expected.loss, rel=1e-6) and got.acc == expected.acc


def test_batch_policy_uses_each_chunks_statistics() -> None:
    model = _bn_net()
    x, y = _data()
    reference = copy.deepcopy(model).train()
    crit = torch.nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        expected = sum(float(crit(reference(x[i:i + 100]), y[i:i + 100])) for i in range(0, 300, 100)) / 300
    got = PointEvaluator(model, x, y, bn="batch", chunk=100).evaluate(flatten(model))
    assert got.loss == pytest.approx(expected, rel=1e-6)


def test_bn_policies_differ_and_never_mutate_the_model() -> None:
    model = _bn_net().train()  # also its mode must survive
    before = _state(model)
    x, y = _data()
    vec = flatten(model)
    results = {bn: PointEvaluator(model, x, y, bn=bn, chunk=100).evaluate(vec) for bn in
               ("running", "recompute", "batch")}
    assert len({r.loss for r in results.values()}) == 3
    assert _same_state(before, _state(model))
    assert model.training and all(m.training for m in model.modules())
    # evaluating again gives the same numbers: the evaluator keeps no state between points
    assert PointEvaluator(model, x, y, bn="batch", chunk=100).evaluate(vec) == results["batch"]


def test_bn_policies_agree_without_bn() -> None:
    model = _mlp()
    assert not has_batchnorm(model)
    x, y = _data()
    losses = {PointEvaluator(model, x, y, bn=bn).evaluate(flatten(model)).loss
              for bn in ("running", "recompute", "batch")}
    assert len(losses) == 1


def test_dropout_stays_off_in_train_mode_bn_passes() -> None:
    torch.manual_seed(0)
    model = build({"name": "alexnet", "channels": [4, 4], "dense": [8, 8], "dropout": 0.5}, SHAPE, 10)
    x, y = _data(100)
    ev = PointEvaluator(model, x, y, bn="recompute", chunk=50)
    vec = flatten(model)
    assert ev.evaluate(vec) == ev.evaluate(vec.clone())


def test_with_data_shares_recomputed_statistics() -> None:
    model = _bn_net()
    x_tr, y_tr = _data(200, seed=1)
    x_te, y_te = _data(100, seed=2)
    train = PointEvaluator(model, x_tr, y_tr, bn="recompute", chunk=100)
    test = train.with_data(x_te, y_te)
    direct = PointEvaluator(model, x_te, y_te, bn="recompute", chunk=100, recompute_data=x_tr)
    vec = flatten(model) * 1.01
    train.evaluate(vec)
    assert test._cache.get(vec) is not None  # computed once for the point, shared with the test split
    assert test.evaluate(vec) == direct.evaluate(vec)


class _Tied(torch.nn.Module):
    """One hidden layer applied twice (a parameter registered under two names)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(64, 16)
        self.hidden = torch.nn.Linear(16, 16)
        self.again = self.hidden
        self.out = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x.flatten(1)))
        return self.out(torch.relu(self.again(torch.relu(self.hidden(h)))))


def test_tied_weights_move_together() -> None:
    torch.manual_seed(0)
    model = _Tied()
    x, y = _data(100)
    vec = flatten(model) * 1.5
    ev = PointEvaluator(model, x, y, chunk=50, many="loop")
    assert ev.evaluate(flatten(model)) == evaluate(model, x, y, chunk=50)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.5)
    assert ev.evaluate(vec) == evaluate(model, x, y, chunk=50)


# ---------------------------------------------------------------- many points -------------------------------

def _points(model: torch.nn.Module, k: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    vec = flatten(model)
    return [vec + 0.1 * torch.randn(vec.shape, generator=g) for _ in range(k)]


def test_vmap_equals_the_loop_for_a_dense_net() -> None:
    model = _mlp(widths=(8,))
    x, y = _data(120)
    points = _points(model, 5)
    ev = PointEvaluator(model, x, y, chunk=50, points_per_call=2)
    loop, vm = ev.evaluate_many(points, method="loop"), ev.evaluate_many(iter(points), method="vmap")
    assert len(vm) == 5
    for a, b in zip(loop, vm):
        assert a.loss == pytest.approx(b.loss, rel=1e-5) and a.acc == b.acc


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_vmap_losses_on_stacked_logits_have_the_bits_of_vmapped_losses(loss: str) -> None:
    """The vmap path vmaps the forward pass only and takes the loss of the stacked logits: the same bits as the
    per-point loss inside the vmap (the formula before; surfaces resumed across the change stay bitwise)."""
    model = _mlp(widths=(24, 12))
    x, y = _data(230)
    points = _points(model, 4)
    ev = PointEvaluator(model, x, y, loss=loss, chunk=100, many="vmap", points_per_call=4)
    ref = PointEvaluator(model, x, y, loss=loss, chunk=100, many="loop")

    def sums(vec, xb, yb):
        out = ref.apply(vec, lambda net: net(xb))
        return ref.criterion(out, yb).sum(), (out.argmax(-1) == yb).sum()

    totals, corrects = [0.0] * 4, [0] * 4
    with torch.no_grad():
        for i in range(0, 230, 100):
            ls, cs = torch.func.vmap(sums, in_dims=(0, None, None))(torch.stack(points), x[i:i + 100], y[i:i + 100])
            totals = [t + float(v) for t, v in zip(totals, ls)]
            corrects = [c + int(v) for c, v in zip(corrects, cs)]
    got = ev.evaluate_many(points)
    assert [r.loss for r in got] == [t / 230 for t in totals] and [r.acc for r in got] == [c / 230 for c in corrects]


def test_vmap_with_running_bn_equals_the_loop() -> None:
    model = _bn_net()
    x, y = _data(100)
    points = _points(model, 3)
    ev = PointEvaluator(model, x, y, chunk=50, many="vmap", points_per_call=3)
    for a, b in zip(ev.evaluate_many(points, method="loop"), ev.evaluate_many(points)):
        assert a.loss == pytest.approx(b.loss, rel=1e-5)


def test_vmap_refuses_bn_statistics_updates() -> None:
    x, y = _data(50)
    with pytest.raises(ValueError, match="vmap"):
        PointEvaluator(_bn_net(), x, y, bn="recompute", many="vmap")


def test_auto_picks_vmap_only_for_small_dense_nets() -> None:
    x, y = _data(100)
    assert PointEvaluator(_mlp(widths=(8,)), x, y).many == "vmap"
    assert PointEvaluator(_mlp(widths=(512, 512)), x, y).many == "loop"
    assert PointEvaluator(_bn_net(), x, y).many == "loop"
    assert PointEvaluator(_mlp(widths=(8,)), x, y).batch_points > 1


def test_bad_arguments_are_rejected() -> None:
    x, y = _data(10)
    for kwargs in ({"bn": "frozen"}, {"loss": "hinge"}, {"many": "threads"}, {"chunk": 0}):
        with pytest.raises(ValueError):
            PointEvaluator(_mlp(), x, y, **kwargs)
    with pytest.raises(ValueError, match="samples"):
        PointEvaluator(_mlp(), x, y[:5])


def test_public_outputs_and_apply_match_the_model() -> None:
    """outputs() gives the logits of the network at a point; apply() runs any function on it, differentiably."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    ev = PointEvaluator(model, x, y, chunk=7)
    vec = flatten(model)
    assert torch.allclose(ev.outputs(vec), model(x), atol=1e-6)
    w = vec.clone().requires_grad_(True)
    loss = ev.apply(w, lambda net: ev.criterion(net(x), y).mean())
    (grad,) = torch.autograd.grad(loss, w)
    ref = nn.functional.cross_entropy(model(x), y)
    ref.backward()
    assert torch.allclose(grad, torch.cat([p.grad.flatten() for p in model.parameters()]), atol=1e-6)
    assert len(ev.batchnorm_modules) == 1


# ---------------------------------------------------------------- bn="interpolate": state vectors ------------

def _hand_built(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """A model whose weights and running statistics are ``(1 - alpha) a + alpha b`` (the counter kept from a)."""
    out = copy.deepcopy(a)
    sa, sb = a.state_dict(), b.state_dict()
    out.load_state_dict({k: v if k.endswith("num_batches_tracked") else (1 - alpha) * v + alpha * sb[k]
                         for k, v in sa.items()})
    return out.eval()


def test_state_vector_is_the_weights_then_every_running_statistic() -> None:
    model = _bn_net()
    names = running_stat_names(model)
    assert names and all(n.endswith(("running_mean", "running_var")) for n in names)
    buffers = dict(model.named_buffers())
    vec = state_vector(model)
    assert torch.equal(vec[:ParamLayout.of(model).size], flatten(model))
    assert torch.equal(vec[ParamLayout.of(model).size:], torch.cat([buffers[n].reshape(-1) for n in names]))
    assert running_stat_names(_mlp()) == () and torch.equal(state_vector(_mlp()), flatten(_mlp()))


def test_interpolated_statistics_are_exactly_the_endpoints_and_the_hand_built_midpoint() -> None:
    a, b = _bn_net(0), _bn_net(1)
    x, y = _data(120)
    ev = PointEvaluator(a, x, y, bn="interpolate", chunk=50)
    sa, sb = state_vector(a), state_vector(b)
    def out(model: nn.Module) -> torch.Tensor:  # chunk by chunk, as the evaluator forwards them
        return torch.cat([model(x[i:i + 50]) for i in range(0, len(x), 50)])

    with torch.no_grad():
        assert torch.equal(ev.outputs(sa), out(a))  # eval mode, the model's own statistics
        assert torch.equal(ev.outputs(sb), out(b))  # b's weights *and* b's statistics, through a's evaluator
        mid = 0.5 * sa + 0.5 * sb
        torch.testing.assert_close(ev.outputs(mid), out(_hand_built(a, b, 0.5)), rtol=1e-5, atol=1e-6)
        assert not torch.allclose(ev.outputs(mid), out(_hand_built(a, b, 0.0)), atol=1e-3)
    assert ev.evaluate(sb) == evaluate(b, x, y, chunk=50)
    # the running policy at b's weights keeps a's statistics: not b's evaluation
    assert PointEvaluator(a, x, y, bn="running", chunk=50).evaluate(flatten(b)) != evaluate(b, x, y, chunk=50)
    with pytest.raises(ValueError, match=r"state vectors .* got a vector of"):
        ev.evaluate(flatten(a))
    with pytest.raises(ValueError, match="many='vmap' needs bn='running'"):
        PointEvaluator(a, x, y, bn="interpolate", many="vmap")


# ---------------------------------------------------------------- the statistics batch ---------------------

def test_recomputed_statistics_depend_on_the_chunk_unless_a_statistics_batch_is_set() -> None:
    model = _bn_net()
    x, y = _data(300)
    x = x + torch.linspace(-1.5, 1.5, len(x)).view(-1, 1, 1, 1)  # drifting inputs: batches differ in mean
    vec = flatten(model) * 1.02

    def loss(**kw) -> float:
        return PointEvaluator(model, x, y, bn="recompute", **kw).evaluate(vec).loss

    # the default (None) takes the chunk, bitwise as before: the workflow's numbers are unchanged
    assert loss(chunk=100) == loss(chunk=100, stats_batch=100)
    assert loss(chunk=60) != loss(chunk=100)  # the old coupling: a memory knob moved the numbers
    # a named statistics batch: the chunk no longer matters (up to the order of the loss sums) ...
    assert loss(chunk=60, stats_batch=100) == pytest.approx(loss(chunk=100, stats_batch=100), rel=1e-6)
    assert loss(chunk=300, stats_batch="all") == pytest.approx(loss(chunk=37, stats_batch="all"), rel=1e-6)
    # ... while the statistics batch does
    assert abs(loss(chunk=100, stats_batch=60) - loss(chunk=100, stats_batch=100)) > 1e-3
    assert abs(loss(chunk=100, stats_batch="all") - loss(chunk=100, stats_batch=100)) > 1e-3


def test_statistics_of_all_are_the_exact_full_data_mean_and_unbiased_variance() -> None:
    model = _bn_net()
    x, y = _data(200)
    ev = PointEvaluator(model, x, y, bn="recompute", chunk=30, stats_batch="all")
    buffers = ev.buffers_at(flatten(model))
    first_bn = next(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d))
    conv = copy.deepcopy(model)
    feats = []
    conv.get_submodule(first_bn).register_forward_hook(lambda m, i, o: feats.append(i[0]))
    with torch.no_grad():
        conv(x)
    h = feats[0].transpose(0, 1).reshape(feats[0].shape[1], -1)  # channels x (samples * pixels)
    torch.testing.assert_close(buffers[f"net.{first_bn}.running_mean"], h.mean(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(buffers[f"net.{first_bn}.running_var"], h.var(1, unbiased=True), rtol=1e-5, atol=1e-6)


def test_the_statistics_batch_is_recorded_and_checked() -> None:
    model = _bn_net()
    x, y = _data(60)
    assert "stats_batch" not in PointEvaluator(model, x, y, bn="recompute").fingerprint()  # files stay as they were
    assert PointEvaluator(model, x, y, bn="recompute", stats_batch=250).fingerprint()["stats_batch"] == 250
    assert PointEvaluator(model, x, y, bn="recompute", stats_batch="all").fingerprint()["stats_batch"] == "all"
    assert "stats_batch" not in PointEvaluator(model, x, y, bn="running", stats_batch=250).fingerprint()
    for bad in (0, -3, "half", 2.5, True):
        with pytest.raises(ValueError, match="stats_batch must be a positive integer or 'all'"):
            PointEvaluator(model, x, y, bn="recompute", stats_batch=bad)
