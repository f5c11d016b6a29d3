"""The CPU kernel pin (losslab.pipeline.cpu_kernels): what it sets, that it holds where it must, and that it matters."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from losslab.pipeline import cpu_kernels, jobserver

AVX2_CPU = frozenset({"sse4_2", "avx", "avx2", "fma"})
OLD_CPU = frozenset({"sse4_2", "avx"})


def test_pinned_sets_every_library_and_native_sets_nothing_but_the_mode():
    env = {"ATEN_CPU_CAPABILITY": "avx512", "OTHER": "x"}
    settings = cpu_kernels.apply("pinned", env)
    level = cpu_kernels.level_for()
    assert settings == cpu_kernels.LEVELS[level] and env[cpu_kernels.MODE_ENV] == "pinned"
    assert env["ATEN_CPU_CAPABILITY"] == cpu_kernels.LEVELS[level]["ATEN_CPU_CAPABILITY"]  # the user's is overridden
    env = {"ATEN_CPU_CAPABILITY": "default"}
    assert cpu_kernels.apply("native", env) == {"ATEN_CPU_CAPABILITY": "default"}
    assert env == {"ATEN_CPU_CAPABILITY": "default", cpu_kernels.MODE_ENV: "native"}
    allowed = "cpu_kernels: 'fast' is not allowed; allowed values: \\['pinned', 'native'\\]"
    with pytest.raises(ValueError, match=allowed):
        cpu_kernels.apply("fast", {})
    with pytest.raises(ValueError, match="config key 'cpu_kernels'"):
        cpu_kernels.mode_for({"cpu_kernels": "avx2"})
    assert cpu_kernels.mode_for({}) == "pinned"


def test_the_level_follows_the_cpu():
    assert cpu_kernels.level_for(AVX2_CPU) == "avx2"
    assert cpu_kernels.level_for(OLD_CPU) == "sse4.2"  # no AVX2: the lower level, never an illegal instruction
    assert cpu_kernels.cpu_isa(AVX2_CPU) == "avx2"
    assert cpu_kernels.cpu_isa(OLD_CPU | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"}) == "avx512"
    assert cpu_kernels.cpu_isa(frozenset()) == "unknown"


def test_this_test_process_is_pinned_and_records_it():
    assert "pinned" in cpu_kernels.verify_pin()
    record = cpu_kernels.platform_record(threads=1)
    level = cpu_kernels.level_for()
    assert record["cpu_kernels"] == "pinned" and record["level"] == level
    assert record["aten_capability"] == cpu_kernels.ATEN_REPORTS[cpu_kernels.LEVELS[level]["ATEN_CPU_CAPABILITY"]]
    assert record["settings"] == cpu_kernels.LEVELS[level]
    assert record["torch"] == torch.__version__.split("+")[0] and record["threads"] == 1


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (*cpu_kernels.VARIABLES, cpu_kernels.MODE_ENV)}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)


def test_a_pin_set_after_torch_computed_is_refused_with_a_message():
    code = ("import torch; torch.randn(64) @ torch.randn(64)\n"
            "from losslab.pipeline import cpu_kernels; cpu_kernels.apply('pinned'); print(cpu_kernels.verify_pin())")
    proc = _python(code, {})
    assert proc.returncode != 0
    assert "KernelPinError: the CPU kernel pin does not hold in this process" in proc.stderr
    assert "must be in the environment before NumPy is imported" in proc.stderr


def test_start_job_pins_a_job_started_outside_the_workflow_or_refuses():
    """pipeline.job.start_job with a config applies the pin when the environment has none; too late (NumPy's OpenBLAS
    already loaded by `import torch`), it says so instead of computing with other kernels."""
    code = ("from losslab.pipeline.job import start_job\n"
            "start_job(None, 1, {'cpu_kernels': 'pinned'})")
    proc = _python(code, {})
    assert proc.returncode != 0 and "OpenBLAS" in proc.stderr and "cpu_kernels: native" in proc.stderr
    proc = _python(code.replace("'pinned'", "'native'"), {})
    assert proc.returncode == 0, proc.stderr
    assert "cpu kernels native" in proc.stderr


PROBE = """
import hashlib, torch
torch.manual_seed(0); torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 36, 4))
x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 4, (32,))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
for _ in range(20):
    opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
w = torch.cat([p.detach().flatten() for p in net.parameters()])
print(hashlib.sha256(w.numpy().tobytes()).hexdigest())
"""


@pytest.mark.skipif(cpu_kernels.level_for() != "avx2", reason="needs an AVX2 CPU to compare kernel levels")
def test_the_pin_overrides_the_machines_choice_and_the_choice_matters():
    """A machine that would choose other kernels (simulated: ATen's baseline level, oneDNN at SSE4.1) computes
    other low bits natively, and the same bits as the pinned reference once pinned."""
    other = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    pinned = cpu_kernels.apply("pinned", {})
    reference = _python(PROBE, pinned).stdout
    assert reference and _python(PROBE, {**other, **cpu_kernels.apply("pinned", dict(other))}).stdout == reference
    assert _python(PROBE, other).stdout != reference


def test_the_job_server_is_never_shared_across_kernel_settings(monkeypatch):
    before = jobserver.fingerprint()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Prescott")
    assert jobserver.fingerprint() != before
    monkeypatch.setenv(cpu_kernels.MODE_ENV, "native")
    assert len({before, jobserver.fingerprint()}) == 2


def test_the_cli_offers_the_choice():
    """`losslab hessian --help` (torch-free) lists --cpu-kernels with its two values."""
    proc = subprocess.run([sys.executable, "-m", "losslab.cli", "hessian", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--cpu-kernels {pinned,native}" in proc.stdout
