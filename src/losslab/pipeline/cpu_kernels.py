"""CPU kernels pinned to one instruction-set level: a commit gives the same numbers on x86-64 CPUs of one vendor.

PyTorch, MKL, oneDNN and OpenBLAS each pick their CPU kernels by the processor's instruction set, and kernels of
different widths sum in different orders: the same commit, seeds and thread count give different low bits on an
AVX-512 machine and on an AVX2 one, and a trained network amplifies them (issue #16: 178 of the smoke scale's
numbers and one verdict moved on an AVX2 EPYC). The pin fixes each library's choice with the setting it honours:

=============  ======================  ==========  ========================================================
library        environment variable    pinned to   read
=============  ======================  ==========  ========================================================
PyTorch ATen   ``ATEN_CPU_CAPABILITY`` ``avx2``    at the first ATen kernel call of the process
oneDNN         ``ONEDNN_MAX_CPU_ISA``  ``AVX2``    at the first oneDNN primitive (convolutions)
MKL            ``MKL_CBWR``            COMPATIBLE  at the first MKL call (matrix products, LAPACK)
OpenBLAS       ``OPENBLAS_CORETYPE``   ``Haswell`` when the library loads, i.e. at ``import numpy``
=============  ======================  ==========  ========================================================

Measured with torch 2.14.1 on an AVX-512 AMD EPYC (``tests/benchmarks/cpu_kernels.py`` prints the table): each of the
four settings changes results on its own; ATen's, oneDNN's and MKL's take effect when set after ``import torch`` as
long as nothing has been computed yet, OpenBLAS's only before NumPy is loaded, and ``import torch`` loads NumPy.
So the pin must be in the environment before ``import torch``: the Snakefile sets it in its own process, whose
environment every job (and the job server, whose socket name includes the pin) inherits; the ``losslab`` command
sets it before it imports torch; tests set it in ``conftest.py``; :func:`losslab.pipeline.job.start_job` checks that it
holds.

AVX2 (with FMA) is the level every x86-64 server, desktop and laptop CPU of the last decade has (Intel since 2013,
AMD since 2015; low-end Pentium/Celeron/Atom parts before 2021 are the exception). MKL honours a named instruction
set (``MKL_CBWR=AVX2``) only on Intel processors: on AMD every named branch reads back as AUTO, which leaves MKL's
choice to the machine. COMPATIBLE is its one branch that gives the same results on every x86-64 processor, so MKL
is pinned there. A CPU without AVX2 and FMA gets the ``sse4.2`` level instead (ATen ``default``, oneDNN
``SSE41``, OpenBLAS ``Nehalem``): numbers then differ from an AVX2-pinned baseline, and
:mod:`losslab.pipeline.regression` sees the other ``level`` in the platform fingerprint and compares statistically.

What the pin does not fix (issue #18): the same commit, pinned, on an Intel Xeon (AVX-512) and on the AMD EPYC of
the committed baseline gave 76 of the smoke run's numbers different (the Keskar analogue's BN MLP trained with
Adam, one MPO picture, one Gotmare pair, one memorization run; no verdict changed). Whatever differs (a library
whose kernels the four settings do not reach, or the NumPy/SciPy versions of the two installs), the platform record
names the vendor and those versions, and :mod:`losslab.pipeline.regression` compares bitwise only when they agree
(statistically otherwise, where those 76 numbers pass).

``cpu_kernels: native`` (config key; ``losslab --cpu-kernels native``) leaves the choice to the machine for speed,
and the environment as the user set it. What a run used is in every job's log and in :func:`platform_record`, which
each verdict and each regression baseline record.

This module imports neither torch nor NumPy: it runs before them.
"""

from __future__ import annotations

import os
import platform as _platform
import sys
from typing import Any, Mapping, MutableMapping

MODES = ("pinned", "native")
MODE_ENV = "LOSSLAB_CPU_KERNELS"  # the mode a process runs in, inherited by its jobs

# instruction-set level -> the setting of each library; the first level the CPU supports is used
LEVELS: dict[str, dict[str, str]] = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE",
             "OPENBLAS_CORETYPE": "Haswell"},
    "sse4.2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE",
               "OPENBLAS_CORETYPE": "Nehalem"},
}
LEVEL_FLAGS = {"avx2": ("avx2", "fma"), "sse4.2": ("sse4_2",)}
VARIABLES = tuple(LEVELS["avx2"])
# what torch.backends.cpu.get_cpu_capability() reports for each level's ATen setting
ATEN_REPORTS = {"avx2": "AVX2", "default": "DEFAULT"}


class KernelPinError(RuntimeError):
    """The pin was asked for but does not hold in this process (something computed before it was set)."""


def mode_for(config: Mapping[str, Any] | str | None = None, source: str = "config key 'cpu_kernels'") -> str:
    """The kernel mode of the config key ``cpu_kernels`` (``pinned``, the default, or ``native``)."""
    choice = config.get("cpu_kernels", "pinned") if isinstance(config, Mapping) else (config or "pinned")
    if choice not in MODES:
        raise ValueError(f"{source}: {choice!r} is not allowed; allowed values: {list(MODES)}")
    return choice


def cpu_flags() -> frozenset[str]:
    """The processor's instruction-set flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_isa(flags: frozenset[str] | None = None) -> str:
    """The widest vector instruction set of this CPU: ``avx512``, ``avx2``, ``avx``, ``sse4.2`` or ``unknown``."""
    flags = cpu_flags() if flags is None else flags
    for name, needs in (("avx512", ("avx512f", "avx512bw", "avx512vl", "avx512dq")), ("avx2", ("avx2", "fma")),
                        ("avx", ("avx",)), ("sse4.2", ("sse4_2",))):
        if all(f in flags for f in needs):
            return name
    return "unknown"


def level_for(flags: frozenset[str] | None = None) -> str | None:
    """The pin level this CPU supports (``avx2`` or ``sse4.2``); None off x86-64, where there is nothing to pin."""
    if not is_x86_64():
        return None
    flags = cpu_flags() if flags is None else flags
    for level, needs in LEVEL_FLAGS.items():
        if all(f in flags for f in needs):
            return level
    return "sse4.2"


def is_x86_64() -> bool:
    return _platform.machine().lower() in ("x86_64", "amd64")


def apply(mode: str = "pinned", environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the pin of ``mode`` into ``environ`` (default ``os.environ``): for ``pinned`` the settings of this CPU's
    level (overriding any the user set); for ``native`` nothing but the mode. Returns the settings now in force.
    Call it before torch computes anything and before NumPy is imported (see the module docstring)."""
    mode = mode_for(mode, source="cpu_kernels")
    env = os.environ if environ is None else environ
    env[MODE_ENV] = mode
    level = level_for() if mode == "pinned" else None
    if level is not None:
        env.update(LEVELS[level])
    return {k: env[k] for k in VARIABLES if k in env}


def _version_of(package: str) -> str | None:
    """An installed distribution's version, read from its metadata (nothing is imported)."""
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def platform_record(threads: int | None = None) -> dict[str, Any]:
    """Where numbers were made: torch, NumPy and SciPy versions, kernel mode and level, the four settings, threads,
    CPU, OS.

    Imports torch (reading the versions); the ATen capability in force is read from torch itself."""
    import torch  # noqa: PLC0415 (this module must stay importable before torch; see the docstring)

    mode = os.environ.get(MODE_ENV, "native")
    flags = cpu_flags()
    return {
        "torch": torch.__version__.split("+")[0],
        "numpy": _version_of("numpy"),
        "scipy": _version_of("scipy"),
        "cpu_kernels": mode,
        "level": level_for(flags) if mode == "pinned" else None,
        "settings": {k: os.environ.get(k) for k in VARIABLES},
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": int(torch.get_num_threads() if threads is None else threads),
        "cpu_isa": cpu_isa(flags),
        "cpu_vendor": cpu_vendor(),
        "os": sys.platform,
        "arch": _platform.machine(),
    }


def cpu_vendor() -> str:
    """The CPU vendor (``GenuineIntel``, ``AuthenticAMD``, ...)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or "unknown"


def verify_pin() -> str:
    """Confirm that this process computes with the kernels its mode asks for; the log line that says so.

    Raises :class:`KernelPinError` when the mode is ``pinned`` but torch's ATen capability is another (the
    variable was set after torch's first computation) or NumPy's OpenBLAS runs another core type."""
    import torch  # noqa: PLC0415 (see platform_record)

    mode = os.environ.get(MODE_ENV, "native")
    cap = torch.backends.cpu.get_cpu_capability()
    if mode != "pinned":
        return f"cpu kernels native (the machine's choice: ATen {cap}, CPU {cpu_isa()})"
    level = level_for()
    if level is None:
        return f"cpu kernels pinned: nothing to pin on {_platform.machine()}"
    want = LEVELS[level]
    problems = []
    if cap != ATEN_REPORTS[want["ATEN_CPU_CAPABILITY"]]:
        problems.append(f"torch's ATen capability is {cap}, not {ATEN_REPORTS[want['ATEN_CPU_CAPABILITY']]}")
    core = openblas_coretype()
    if core is not None and core.lower() != want["OPENBLAS_CORETYPE"].lower():
        problems.append(f"NumPy's OpenBLAS runs {core} kernels, not {want['OPENBLAS_CORETYPE']}")
    if problems:
        raise KernelPinError(
            "the CPU kernel pin does not hold in this process: " + "; ".join(problems) + ". Its settings ("
            + ", ".join(f"{k}={v}" for k, v in want.items()) + ") must be in the environment before NumPy is "
            "imported and before torch computes anything: start the process with them (the Snakefile and the "
            "losslab command do), or set cpu_kernels: native")
    return f"cpu kernels pinned to {level} (" + ", ".join(f"{k}={v}" for k, v in want.items()) + ")"


def openblas_coretype() -> str | None:
    """The core type of NumPy's OpenBLAS when NumPy is loaded and threadpoolctl can tell; else None."""
    if "numpy" not in sys.modules:
        return None
    try:
        import threadpoolctl  # noqa: PLC0415 (optional; scikit-learn's dependency)
    except ImportError:
        return None
    for info in threadpoolctl.threadpool_info():
        if info.get("internal_api") == "openblas" and info.get("architecture"):
            return str(info["architecture"])
    return None
