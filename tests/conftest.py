"""Shared test set-up: keep torch on one thread so timings are stable and tests do not oversubscribe."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
