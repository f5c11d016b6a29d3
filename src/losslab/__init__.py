"""losslab: reproduce the claims of loss-landscape research.

The library holds every computation; the Snakemake workflow (Snakefile, workflow/) only wires it together.
On your own model: :mod:`losslab.api` (``from losslab import api``) and the ``losslab`` command
(:mod:`losslab.cli`); the API's functions whose names no module takes are also importable from here
(``from losslab import surface``), loaded on first use so that ``import losslab`` stays cheap.
"""

from losslab._version import __version__  # noqa: F401 (re-exported: losslab.__version__)

_API = ("as_data", "load_checkpoint", "surface", "interpolate", "plane", "surface_between", "hessian_eigenvalues",
        "spectral_density", "hessian_trace", "train_curve", "evaluate_curve", "fit_pattern", "plot",
        "CheckpointError", "PatternFit")


def __getattr__(name: str):
    if name in _API:
        from losslab import api

        return getattr(api, name)
    raise AttributeError(f"module 'losslab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
