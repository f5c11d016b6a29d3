"""Which CPU-kernel settings change losslab's numbers, when they must be set, and what the pin costs.

    python tests/benchmarks/cpu_kernels.py            (about a minute on 2 cores)

Each row runs a fresh Python process with one environment and prints a hash of what it computed: NumPy's
float64 matrix product and symmetric eigenvalues (OpenBLAS), torch's elementwise kernels, a float32 matrix
product (MKL), a small conv net's forward pass and 30 SGD steps (oneDNN and ATen), an MLP's 30 SGD steps (MKL and
ATen), and the time of 100 training steps of a conv net and of an MLP (the baseline: the machine's own kernels,
timed in the same run). ``when`` says where the variables were set: ``before`` (before ``import torch``),
``after import`` (after ``import torch``, before any computation) or ``after compute`` (after a first
computation). A hash that differs from the native row means the setting changes results on this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from losslab.pipeline import cpu_kernels

PROBE = r"""
import hashlib, json, os, sys, time
when, env = sys.argv[1], json.loads(sys.argv[2])
if when == "before":
    os.environ.update(env)
import numpy as np
import torch
if when == "after compute":
    torch.randn(8, 8) @ torch.randn(8, 8)
    torch.nn.functional.conv2d(torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3))
if when != "before":
    os.environ.update(env)
torch.set_num_threads(1)
def h(x):
    x = x.detach().contiguous().numpy() if isinstance(x, torch.Tensor) else np.ascontiguousarray(x)
    return hashlib.sha256(x.tobytes()).hexdigest()[:8]
out = {}
rng = np.random.default_rng(0)
a = rng.standard_normal((200, 200))
out["numpy"] = h(a @ a) + "/" + h(np.linalg.eigh(a + a.T)[0])
torch.manual_seed(0)
x = torch.randn(100000)
out["aten"] = h(torch.tanh(x).exp().log1p() * x.sin())
m = torch.randn(257, 129)
out["mm"] = h(m @ m.T)
conv = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1),
                           torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 10))
mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10))
xc, xm = torch.randn(64, 3, 16, 16), torch.randn(512, 64)
yc, ym = torch.randint(0, 10, (64,)), torch.randint(0, 10, (512,))
out["conv"] = h(conv(xc))
def train(net, xb, yb, steps):
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    return h(torch.cat([p.flatten() for p in net.parameters()])), time.perf_counter() - t
out["conv train"], _ = train(conv, xc, yc, 30)
out["mlp train"], _ = train(mlp, xm, ym, 30)
out["conv s"] = round(train(conv, xc, yc, 100)[1], 2)
out["mlp s"] = round(train(mlp, xm, ym, 100)[1], 2)
out["aten capability"] = torch.backends.cpu.get_cpu_capability()
print(json.dumps(out))
"""


def run(when: str, env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in cpu_kernels.VARIABLES}
    if when == "before":
        base.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE, when, json.dumps(env)], env=base, capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout)


def main() -> None:
    level = cpu_kernels.level_for()
    pin = cpu_kernels.LEVELS[level or "avx2"]
    rows = [("native", "before", {})]
    rows += [(f"{k}={v}", "before", {k: v}) for k, v in pin.items()]
    rows += [("pin", "before", pin), ("pin", "after import", pin), ("pin", "after compute", pin)]
    rows += [("ATEN_CPU_CAPABILITY=default", "before", {"ATEN_CPU_CAPABILITY": "default"})]
    print(f"CPU: {cpu_kernels.cpu_isa()} ({cpu_kernels.cpu_vendor()}); pin level {level}")
    results = [(name, when, run(when, env)) for name, when, env in rows]
    cols = [k for k in results[0][2] if not k.endswith(" s")] + ["conv s", "mlp s"]
    print("| setting | when | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    native = results[0][2]
    for name, when, out in results:
        cells = [str(out[c]) + ("" if c.endswith(" s") or c == "aten capability" or out[c] == native[c] else " *")
                 for c in cols]
        print(f"| {name} | {when} | " + " | ".join(cells) + " |")
    pinned = next(out for name, when, out in results if name == "pin" and when == "before")
    print(f"\n* differs from native. Pin cost in this run: conv training {pinned['conv s'] / native['conv s']:.2f}x, "
          f"MLP training {pinned['mlp s'] / native['mlp s']:.2f}x the native time.")


if __name__ == "__main__":
    main()
