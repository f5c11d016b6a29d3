"""Two runs of the DAG give byte-identical results (1 torch thread per job: ``threads: 1``).

This is the SMALL DAG of tests/conftest.py (every rule kind on shrunken experiments): the session's
``small_dag`` run is the first run, and a second run of the same config goes into a fresh directory. The full
smoke DAG takes 5-9 minutes, too long to run twice in CI's budget; its numbers are compared against the
committed baseline by tests/pipeline/test_regression.py instead.

Compared, for every file under ``results/smoke/`` of either run (the two runs must write the same set of
files):

* ``.json`` (metrics.json, verdict.json, train.json, lr_search.json, figure data, ...), ``.csv`` (table.csv,
  history.csv, claims.csv), ``.md`` (table.md, claims.md), ``.pt``, ``.png``, ``.pdf``: byte for byte;
* ``.h5`` (surfaces, directions, curves, spectra): every dataset bitwise (NaN where NaN) and every attribute
  (HDF5 files record their datasets' creation times, so their bytes differ even when every value is equal);
* ``.npz`` (pattern maps): every array bitwise (zip members carry the time they were written).

Left out, with the reason:

* ``*.timing.json``: the clock readings of a record (``wall_seconds``, ``fit_seconds``, ...; written beside
  it by ``losslab.io.write_record`` so that the record itself is byte-identical); they measure time, not
  results, and no number derived from them enters a table or a verdict (the tables and verdicts are compared
  whole);
* ``benchmarks/`` (Snakemake's seconds and memory per job) and ``checkpoints/`` (internal resumable state,
  not outputs; the final weights they lead to are compared);
* ``.snakemake_timestamp`` files (Snakemake's own marker of when a directory output was finished).

No host names, dates or absolute paths are stored in any result (the two runs live in different directories:
the comparison would catch them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import snakemake

pytestmark = pytest.mark.dag

SKIP_DIRS = ("benchmarks", "checkpoints")
SKIP_NAMES = (".snakemake_timestamp",)
BYTES = {".json", ".csv", ".md", ".rst", ".pt", ".png", ".pdf", ".tsv", ".txt"}


def result_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] not in SKIP_DIRS and p.name not in SKIP_NAMES
                  and not p.name.startswith(".") and not p.name.endswith(".timing.json"))


def h5_contents(path: Path) -> dict[str, object]:
    out: dict[str, object] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]
        for key, value in obj.attrs.items():
            out[f"{name}@{key}"] = value

    with h5py.File(path, "r") as f:
        for key, value in f.attrs.items():
            out[f"@{key}"] = value
        f.visititems(visit)
    return out


def same_value(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or a.dtype.kind == "c":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def differences(a_root: Path, b_root: Path) -> list[str]:
    problems = []
    a_files, b_files = result_files(a_root), result_files(b_root)
    if a_files != b_files:
        problems.append(f"different files: only in the first {sorted(set(a_files) - set(b_files))[:10]}, "
                        f"only in the second {sorted(set(b_files) - set(a_files))[:10]}")
    for rel in sorted(set(a_files) & set(b_files)):
        a, b = a_root / rel, b_root / rel
        suffix = a.suffix
        if suffix in BYTES:
            if a.read_bytes() != b.read_bytes():
                la, lb = a.read_text(errors="replace").splitlines(), b.read_text(errors="replace").splitlines()
                diff = next((f"{x!r} != {y!r}" for x, y in zip(la + [""], lb + [""]) if x != y), "")
                problems.append(f"{rel}: bytes differ {diff[:200]}")
        elif suffix == ".h5":
            ca, cb = h5_contents(a), h5_contents(b)
            if ca.keys() != cb.keys():
                problems.append(f"{rel}: different datasets/attributes {sorted(set(ca) ^ set(cb))}")
            problems += [f"{rel}: {k} differs" for k in sorted(set(ca) & set(cb)) if not same_value(ca[k], cb[k])]
        elif suffix == ".npz":
            with np.load(a) as fa, np.load(b) as fb:
                if sorted(fa.files) != sorted(fb.files):
                    problems.append(f"{rel}: different arrays")
                problems += [f"{rel}: {k} differs" for k in fa.files if k in fb.files and not same_value(fa[k], fb[k])]
        else:
            problems.append(f"{rel}: no comparison for {suffix!r} files (add one to this test)")
    return problems


def test_the_small_dag_twice_gives_byte_identical_results(small_dag, tmp_path):
    first, cfg = small_dag
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(cfg, second / cfg.name)
    proc = snakemake(second, "--cores", "2", "--configfile", str(second / cfg.name))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = first / "results" / "smoke", second / "results" / "smoke"
    files = result_files(a)
    # what is compared: every kind the issue names is there
    for name in ("metrics.json", "table.csv", "table.md", "verdict.json", "claims.md", "claims.csv"):
        assert any(f.endswith(name) for f in files), name
    assert any(f.endswith(".h5") for f in files) and any(f.endswith(".pt") for f in files)
    problems = differences(a, b)
    assert not problems, f"{len(problems)} differences between two runs:\n  " + "\n  ".join(problems[:40])


def test_the_comparison_sees_a_changed_number(tmp_path):
    """The comparison itself: a timing file is ignored, any other changed byte or array value is reported."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root, acc, secs, val in ((a, "0.5", "1.0", 1.0), (b, "0.5", "2.0", 1.0)):
        (root / "runs").mkdir(parents=True)
        (root / "runs" / "metrics.json").write_text(f'{{\n  "test_acc": {acc}\n}}\n')
        (root / "runs" / "metrics.timing.json").write_text(f'{{\n  "wall_seconds": {secs}\n}}\n')
        with h5py.File(root / "runs" / "s.h5", "w") as f:
            f["loss"] = np.array([val, np.nan])
    assert differences(a, b) == []
    (b / "runs" / "metrics.json").write_text('{\n  "test_acc": 0.50000001\n}\n')
    with h5py.File(b / "runs" / "s.h5", "w") as f:
        f["loss"] = np.array([np.nextafter(1.0, 2.0), np.nan])
    assert sorted(p.split(":")[0] for p in differences(a, b)) == ["runs/metrics.json", "runs/s.h5"]
