"""Progress of long loops (:mod:`losslab.core.progress`): a bar only on a terminal and only when asked, periodic
log lines in a workflow job, and the same numbers with or without it."""

import io
import logging

import numpy as np
import pytest
import torch

from losslab.core import patterns as pt
from losslab.core import progress
from losslab.core.data import prepare
from losslab.core.hessian import (DenseOperator, TrainingLoss, epsilon_sharpness, hutchinson_trace, lanczos,
                                  slq_density)
from losslab.core.models import build
from losslab.pipeline.job import start_job


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    """A clock that advances ``step`` seconds each time it is read."""

    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


@pytest.fixture(autouse=True)
def _no_job_logger():
    yield
    progress.log_to(None)


def test_a_job_logs_a_line_every_30_seconds_and_a_last_one(caplog):
    log = logging.getLogger("test.progress")
    caplog.set_level(logging.INFO, logger="test.progress")
    clock = Clock(10.0)  # read at the start, once per step and at the end: 10 s a step
    with progress.Progress(10, "Lanczos", unit="step", logger=log, every=30.0, clock=clock) as p:
        for _ in range(10):
            p.update()
    assert [r.getMessage() for r in caplog.records] == [
        "Lanczos: 3/10 step (30%), 30 s elapsed, ~70 s left",
        "Lanczos: 6/10 step (60%), 60 s elapsed, ~40 s left",
        "Lanczos: 9/10 step (90%), 90 s elapsed, ~10 s left",
        "Lanczos: done, 10 step in 110 s"]


def test_a_short_loop_logs_nothing(caplog):
    caplog.set_level(logging.INFO, logger="test.progress")
    with progress.Progress(3, "probes", logger=logging.getLogger("test.progress"), clock=Clock(1.0)) as p:
        for _ in range(3):
            p.update()
    assert caplog.records == []


@pytest.mark.parametrize("enabled, stream, drawn", [(True, Terminal(), True), (True, io.StringIO(), False),
                                                    (False, Terminal(), False)])
def test_a_bar_only_on_a_terminal_and_only_when_asked(enabled, stream, drawn, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in progress.track(range(5), "steps", enabled=enabled, stream=stream):
        pass
    assert bool(stream.getvalue()) == drawn
    assert caplog.records == []  # outside a job: no log lines either


def test_start_job_turns_on_the_log_lines(tmp_path, caplog):
    start_job(tmp_path / "job.log")
    try:
        with progress.Progress(2, "MPO fit", unit="step", every=1e-9) as p:
            p.update()
            p.update()
        text = (tmp_path / "job.log").read_text()
        assert "losslab.progress INFO MPO fit: 1/2 step (50%)" in text
        assert "losslab.progress INFO MPO fit: done, 2 step in" in text
    finally:
        logging.getLogger().handlers.clear()


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every 0: must be > 0 seconds"):
        progress.log_to(logging.getLogger("x"), every=0)


def _operator():
    g = torch.Generator().manual_seed(6)
    q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    return DenseOperator(q @ torch.diag(torch.linspace(-1, 5, 30).double()) @ q.T)


def test_lanczos_slq_and_trace_report_progress_and_keep_their_numbers(caplog, capsys):
    op = _operator()
    quiet = lanczos(op, 2, tol=1e-8), slq_density(op, n_runs=2, n_steps=10), hutchinson_trace(op, 5)
    caplog.set_level(logging.INFO, logger="test.progress")
    progress.log_to(logging.getLogger("test.progress"), every=1e-9)
    loud = (lanczos(op, 2, tol=1e-8, progress=True), slq_density(op, n_runs=2, n_steps=10, progress=True),
            hutchinson_trace(op, 5, progress=True))
    assert np.array_equal(quiet[0].values, loud[0].values) and quiet[0].products == loud[0].products
    assert np.array_equal(quiet[1].density, loud[1].density)
    assert np.array_equal(quiet[2].samples, loud[2].samples)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("Lanczos, 2 largest eigenvalue(s): 1/30 step") for line in lines)
    assert "spectral density (SLQ): done, 20 step in" in " ".join(lines)
    assert "Hutchinson trace: done, 5 probe in" in " ".join(lines)
    assert capsys.readouterr().err == ""  # progress=True, but stderr is not a terminal: no bar


def test_mpo_fit_logs_its_steps_and_keeps_its_numbers(caplog):
    data = prepare({"name": "digits", "preprocessing": ["normalize"], "n_train": 64, "n_test": 32})
    spec = {"name": "mlp", "widths": [8]}
    config = pt.MPOConfig(steps=3, lr=1e-2, batch_size=16, cells_per_step=4)
    pattern = pt.random_mask(3, 0.5, seed=0)

    def fit(**kw):
        make = lambda: build(spec, data.input_shape, data.num_classes)  # noqa: E731
        plane = pt.PatternPlane.from_inits(make)
        state = pt.fit_plane(plane, make(), pattern, data, config, seed=1, **kw)
        return state, torch.cat([p.detach().flatten() for p in plane.parameters()])

    quiet = fit()
    caplog.set_level(logging.INFO, logger="test.progress")
    progress.log_to(logging.getLogger("test.progress"), every=1e-9)
    loud = fit(progress=True)
    assert torch.equal(quiet[1], loud[1]) and quiet[0]["history"] == loud[0]["history"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("MPO fit: 1/3 step (33%)") and lines[-1].startswith("MPO fit: done, 3 step in")


def test_sharpness_reports_its_starts_and_keeps_its_value(caplog):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (24,), generator=g)
    torch.manual_seed(0)
    loss = TrainingLoss(build({"name": "mlp", "widths": [4]}, (6,), 3).double(), x, y, chunk=12)
    quiet = epsilon_sharpness(loss, 1e-3, maxiter=2)
    caplog.set_level(logging.INFO, logger="test.progress")
    progress.log_to(logging.getLogger("test.progress"), every=1e-9)
    loud = epsilon_sharpness(loss, 1e-3, maxiter=2, progress=True)
    assert loud.value == quiet.value and loud.starts == quiet.starts
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("sharpness eps 0.001, starts: 1/4 start (25%)")
    assert lines[-1].startswith("sharpness eps 0.001, starts: done, 4 start in")
