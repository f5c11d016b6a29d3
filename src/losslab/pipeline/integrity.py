"""Damaged outputs: files a finished part of the DAG depends on that are gone or cut short since they were written.

Snakemake decides what to run from the declared outputs' existence and times. A file deleted inside a
``directory()`` output (a run directory's ``seed0/model.pt``) or a declared output cut short (a truncated
``surface.h5``) therefore looks finished: ``snakemake -n`` plans nothing and ``snakemake <file>`` says "Nothing to
be done", until a job reading the file fails. The Snakefile checks, when it is read, what can be checked cheaply and
without torch:

* a directory published by :func:`losslab.io.atomic_dir` (the train rule's run directories) against its manifest
  of files and sizes (:func:`losslab.io.manifest_problems`): a file missing or of another size;
* an HDF5 output (surfaces, PCA surfaces) opens as HDF5, and a losslab surface has every tile ``done``.

Each damaged output is named with the fix, deleting it: Snakemake then plans the job that writes it again (a
training job resumes from its checkpoints). Checksums are not compared: that would read every model at every start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

from losslab import io as lio


class DamagedOutputError(ValueError):
    """An output the DAG takes as finished is missing a file or cannot be read."""


def hdf5_problem(path: str | os.PathLike) -> str | None:
    """Why an existing HDF5 output cannot be used (None when it is fine or absent): it does not open (truncated,
    not HDF5), or it is a losslab surface with tiles not ``done``."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            if "done" in f and not bool(np.all(f["done"][()])):
                return f"{path}: a surface file with tiles not computed (an in-progress file in the final's place)"
    except (OSError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{path}: not a readable HDF5 file (truncated or overwritten: {first})"
    return None


def damaged_outputs(directories: Iterable[str | os.PathLike], hdf5_files: Iterable[str | os.PathLike]) -> list[str]:
    """One line per damaged output, naming what is wrong and the fix."""
    lines = []
    for d in directories:
        problems = lio.manifest_problems(d)
        if problems:
            lines.append(f"{'; '.join(problems)}; delete {d} to have it recomputed")
    for f in hdf5_files:
        problem = hdf5_problem(f)
        if problem:
            lines.append(f"{problem}; delete it to have it recomputed")
    return lines


def check_finished_outputs(directories: Iterable[str | os.PathLike], hdf5_files: Iterable[str | os.PathLike]) -> None:
    """Raise :class:`DamagedOutputError` listing every damaged output (the Snakefile calls it before planning)."""
    lines = damaged_outputs(directories, hdf5_files)
    if lines:
        raise DamagedOutputError("outputs damaged since they were written (Snakemake would take them as "
                                 "finished):\n  " + "\n  ".join(lines))
