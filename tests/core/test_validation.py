"""What a researcher's inputs become at the door: a model returning ``(logits, features)`` analysed by its first
element (the documented rule), NumPy float64 data cast to float32 with a note, every ``--optimizer`` choice of
``losslab train`` accepted, and uncertified eigenvalues shown as such without an array dump. The refusals
themselves, each with its exact message, are the user rows of tests/pipeline/test_bad_inputs.py
(docs/bad-inputs.md)."""

import logging

import numpy as np
import pytest
import torch
from torch import nn

from losslab import api, cli
from losslab.core.hessian import DenseOperator, lanczos
from losslab.core.losses import check_outputs, logits, outputs_as_logits
from losslab.core.optim import OPTIMIZERS


class Net(nn.Module):
    """A tiny conv net with batch norm and dropout, 3 classes (42 weights)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(self.drop(h))


class TupleNet(Net):
    """The same network returning ``(logits, features)``."""

    def forward(self, x):
        h = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))
        return self.fc(self.drop(h)), h


def twins(seed: int = 0) -> tuple[Net, TupleNet]:
    torch.manual_seed(seed)
    plain = Net()
    paired = TupleNet()
    paired.load_state_dict(plain.state_dict())
    return plain, paired


def data(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n + 15, 1, 4, 4, generator=gen)
    y = torch.arange(n + 15) % 3
    return x[:n], y[:n], x[n:], y[n:]


# ---------------------------------------------------------------- tuple outputs -----------------------------

def test_the_logits_of_an_output_are_the_tensor_or_the_first_element():
    t = torch.ones(2, 3)
    assert logits(t) is t
    assert logits((t, torch.zeros(2))) is t and logits([t]) is t
    with pytest.raises(TypeError, match=r"^the model returns a tuple whose first element is a str; "):
        logits(("logits", t))
    with pytest.raises(TypeError, match=r"^the model returns a tuple; "):
        logits(())


def test_a_model_returning_logits_and_features_is_analysed_by_its_logits():
    torch.set_num_threads(1)
    plain, paired = twins()
    d = data()
    for name, fn in (("surface", lambda m: api.surface(m, d, x=(-1, 1, 3), y=(-1, 1, 3))["test_loss"]),
                     ("hessian", lambda m: api.hessian_eigenvalues(m, d, k=2).values),
                     ("trace", lambda m: api.hessian_trace(m, d, n_probes=3).value)):
        np.testing.assert_array_equal(fn(paired), fn(plain), err_msg=name)


def test_training_a_tuple_model_trains_its_logits_and_leaves_it_returning_the_tuple():
    torch.set_num_threads(1)
    plain, paired = twins()
    d = data()
    h_plain = api.train(plain, d, epochs=2, batch_size=10, lr=0.05)
    h_paired = api.train(paired, d, epochs=2, batch_size=10, lr=0.05)
    assert h_paired == h_plain
    for (k, a), b in zip(plain.state_dict().items(), paired.state_dict().values()):
        assert torch.equal(a, b), k
    out = paired(d[0])
    assert isinstance(out, tuple) and len(out) == 2  # the hook is gone after training
    assert not paired._forward_hooks


def test_the_hook_is_removed_when_the_block_fails():
    _, paired = twins()
    with pytest.raises(RuntimeError, match="boom"):
        with outputs_as_logits(paired):
            assert isinstance(paired(data()[0]), torch.Tensor)
            raise RuntimeError("boom")
    assert isinstance(paired(data()[0]), tuple) and not paired._forward_hooks


def test_the_probe_learns_the_width_without_changing_the_model():
    plain, _ = twins()
    plain.train()
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    rng = torch.get_rng_state()
    assert check_outputs(plain, data()[0], {"train labels": data()[1]}) == 3
    assert plain.training  # back in its mode
    assert torch.equal(torch.get_rng_state(), rng)  # no dropout draw
    for k, v in plain.state_dict().items():
        assert torch.equal(v, before[k]), k  # BN statistics untouched


# ---------------------------------------------------------------- NumPy float64 -----------------------------

def test_numpy_float64_data_are_cast_to_float32_with_a_note(caplog):
    x, y, xt, yt = data()
    with caplog.at_level(logging.WARNING, logger="losslab.core.data"):
        prepared = api.as_data((x.double().numpy(), y.numpy(), xt.double().numpy(), yt.numpy()))
    assert prepared.x_train.dtype == torch.float32 and prepared.x_test.dtype == torch.float32
    assert torch.equal(prepared.x_train, x) and torch.equal(prepared.y_train, y)
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"{split} data inputs: NumPy float64 array cast to float32 (the precision of torch's default "
                     f"weights); pass float32 to silence this note" for split in ("train", "test")]
    plain, _ = twins()
    s64 = api.surface(plain, (x.double().numpy(), y.numpy()), dims=1, x=(-1, 1, 3))["train_loss"]
    np.testing.assert_array_equal(s64, api.surface(plain, (x, y), dims=1, x=(-1, 1, 3))["train_loss"])


def test_float32_numpy_data_pass_without_a_note(caplog):
    x, y, _, _ = data()
    with caplog.at_level(logging.WARNING, logger="losslab.core.data"):
        api.as_data((x.numpy(), y.numpy()))
    assert not caplog.records


# ---------------------------------------------------------------- choices offered are choices accepted -----

def test_the_optimizer_choices_of_train_are_the_librarys():
    assert cli.OPTIMIZERS == OPTIMIZERS


@pytest.mark.parametrize("optimizer", cli.OPTIMIZERS)
def test_every_optimizer_choice_trains_end_to_end(tmp_path, monkeypatch, optimizer):
    module = tmp_path / "ll_validation_user.py"
    module.write_text("import torch\nfrom torch import nn\n\n\ndef make_model():\n    return nn.Linear(4, 3)\n\n\n"
                      "def make_data():\n    g = torch.Generator().manual_seed(0)\n"
                      "    return torch.randn(12, 4, generator=g), torch.arange(12) % 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["train", "--model", "ll_validation_user:make_model", "--data", "ll_validation_user:make_data",
                     "--optimizer", optimizer, "--epochs", "1", "--lr", "0.01", "--batch-size", "4",
                     "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert (tmp_path / "out" / "model.pt").is_file()


# ---------------------------------------------------------------- uncertified eigenvalues ------------------

def test_uncertified_eigenvalues_are_marked_and_the_warning_has_no_array(caplog):
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(400, 400, generator=gen, dtype=torch.float64))
    op = DenseOperator(q @ torch.diag(torch.linspace(0.0, 1.0, 400, dtype=torch.float64)) @ q.T)
    with caplog.at_level(logging.WARNING, logger="losslab.core.hessian"):
        pairs = lanczos(op, 200, tol=1e-9, max_iter=250)
    assert not pairs.converged
    (note,) = [r.getMessage() for r in caplog.records]
    assert note.startswith(f"Lanczos: {int((~pairs.certified).sum())} of 200 largest eigenvalue(s) not certified")
    assert "[" not in note and len(note) < 300  # a count and the largest residual, not 200 residuals
    shown = cli.shown_values(pairs).split(", ")
    assert len(shown) == 200
    assert [s.endswith(" (uncertified)") for s in shown] == [not c for c in pairs.certified]


def test_mpo_fits_a_tuple_model_by_its_logits():
    torch.set_num_threads(1)
    d = data()
    pattern = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    runs = [api.fit_pattern(cls, d, pattern, steps=2, batch_size=8, cells_per_step=4, n_eval_train=10,
                            n_eval_test=10) for cls in (Net, TupleNet)]
    assert runs[1].history == runs[0].history
    np.testing.assert_array_equal(runs[1].maps.train_acc, runs[0].maps.train_acc)
