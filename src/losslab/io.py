"""Atomic file output and safe loading.

Every file losslab writes goes through this module: the bytes go to a temporary file in the same
directory, are flushed to disk, and the temporary file is renamed over the target. A reader (or a
Snakemake job killed half-way) therefore sees either the old file or the complete new one, never a
truncated one.

The one exception is a :class:`Journal`, the progress log of a long computation: an append-only file of
checksummed records, each flushed to disk (fsync) as it is appended, so that adding a record costs its own
bytes rather than a rewrite of everything before it. Its first version (a header and the first record) is
written atomically; a record torn by a kill or a power loss fails its checksum and is dropped when the
journal is read, as is everything after it.

Torch is loaded by the functions that read or write checkpoints, not by this module: the run layout
(:mod:`losslab.claims.runs`) reads JSON through it while the workflow's DAG is parsed, which stays torch-free.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch


class CorruptFileError(RuntimeError):
    """A file exists but cannot be read as what it claims to be."""


def hdf5_attribute(value: Any) -> Any:
    """A value HDF5 can store as an attribute: None as the string "none", containers as JSON (sorted keys)."""
    if value is None:
        return "none"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path`` with the mode a plain ``open`` would
    have given it (0666 less the process's umask: ``mkstemp`` makes its file 0600).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


STAGING_KEY = ".staging-key"
MANIFEST = ".files.json"  # the files a directory published by atomic_dir holds, with their sizes in bytes


def manifest_problems(path: str | os.PathLike) -> list[str]:
    """What is wrong with a directory published by :func:`atomic_dir` (one line per file that its manifest lists
    and that is now missing or of another size, e.g. deleted or truncated); [] when it is as published, does not
    exist, or has no manifest (published before manifests were written)."""
    path = Path(path)
    manifest = path / MANIFEST
    if not manifest.is_file():
        return []
    try:
        files = read_json(manifest)
    except CorruptFileError as err:
        return [str(err)]
    problems = []
    for rel, size in sorted(files.items()):
        f = path / rel
        if not f.is_file():
            problems.append(f"{f}: missing")
        elif f.stat().st_size != size:
            problems.append(f"{f}: {f.stat().st_size} bytes, written with {size} (truncated or altered)")
    return problems


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, key: str = "") -> Iterator[Path]:
    """Yield the staging directory ``.<name>.staging`` beside the directory ``path``; on success it replaces
    ``path`` whole (files of an earlier version that the new one lacks do not survive), so ``path`` holds the last
    complete version until the new one is complete.

    On an exception the staging directory is left in place, and a later call with the same ``path`` and ``key``
    (what the content depends on, e.g. the run's settings) continues in it: what a job wrote there before it
    failed or was killed (e.g. snapshots) is resumable state. A staging directory of another ``key`` is emptied
    first. ``path`` itself is untouched until the swap, which is two renames: a crash between them leaves the old
    version as ``.<name>.old``. The published directory lists its files and their sizes in :data:`MANIFEST`
    (:func:`manifest_problems` finds a file deleted or truncated since)."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.staging")
    stamp = staging / STAGING_KEY
    if staging.exists() and (not stamp.is_file() or stamp.read_text() != key):
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    write_text(stamp, key)
    yield staging
    stamp.unlink()
    write_json(staging / MANIFEST, {str(p.relative_to(staging)): p.stat().st_size
                                    for p in sorted(staging.rglob("*")) if p.is_file()})
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(staging, path)
    if old.exists():
        shutil.rmtree(old)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def plain(obj: Any, *, keep_nan: bool = False, str_keys: bool = False) -> Any:
    """``obj`` as plain JSON data: mappings as dicts, lists and tuples as lists, torch tensors and numpy arrays as
    (nested) lists, numpy scalars as Python numbers and paths as strings; anything else as it is, for
    ``json.dumps`` to take or refuse.

    A NaN or infinite float becomes None (JSON has none: every reader can parse the file) unless ``keep_nan``
    (figure data, read back by Python only), inside a tensor or numpy value as well. A key
    becomes ``str(key)`` if ``str_keys``, otherwise only where JSON cannot take it (so ``json.dumps`` sorts
    numbers as numbers)."""
    if isinstance(obj, float):  # numpy.float64 too
        return float(obj) if keep_nan or math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k) if str_keys or not (isinstance(k, (str, int, float, bool)) or k is None) else k:
                plain(v, keep_nan=keep_nan, str_keys=str_keys) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, keep_nan=keep_nan, str_keys=str_keys) for v in obj]
    torch = sys.modules.get("torch")  # a tensor exists only once torch is loaded
    if isinstance(obj, np.ndarray) or (torch is not None and isinstance(obj, torch.Tensor)):
        return plain(obj.tolist(), keep_nan=keep_nan, str_keys=str_keys)
    if hasattr(obj, "item"):  # numpy scalars (float32 is no Python float)
        return plain(obj.item(), keep_nan=keep_nan, str_keys=str_keys)
    if hasattr(obj, "tolist"):
        return plain(obj.tolist(), keep_nan=keep_nan, str_keys=str_keys)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def json_text(obj: Any, *, indent: int = 2, keep_nan: bool = False, str_keys: bool = False) -> str:
    """``obj`` (through :func:`plain`) as JSON text with sorted keys: every JSON file losslab writes."""
    return json.dumps(plain(obj, keep_nan=keep_nan, str_keys=str_keys), indent=indent, sort_keys=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json_text(obj) + "\n")


TIMING_KEYS = ("wall_seconds", "fit_seconds", "fit_seconds_total", "eval_seconds", "cpu_seconds")


def write_record(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Write a run's record as JSON without its clock readings (:data:`TIMING_KEYS`, at any depth), which go to
    ``<stem>.timing.json`` beside it: the record itself is byte-identical between two runs of the same job."""
    path = Path(path)

    def split(obj: Any) -> tuple[Any, Any]:
        if isinstance(obj, Mapping):
            kept, timing = {}, {}
            for k, v in obj.items():
                if k in TIMING_KEYS:
                    timing[k] = v
                    continue
                kept[k], t = split(v)
                if t:
                    timing[k] = t
            return kept, timing
        return obj, None

    kept, timing = split(record)
    write_json(path, kept)
    write_json(path.with_name(path.stem + ".timing.json"), timing)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorruptFileError(f"{path}: not valid JSON ({err})") from err


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]],
              fieldnames: Sequence[str] | None = None) -> None:
    if fieldnames is None:
        fieldnames = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fieldnames), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(dict(row))
    write_text(path, buf.getvalue())


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` atomically. Serialised in memory first: saved to a path, torch names the archive's
    records after the (random) temporary file, and equal tensors would give different bytes on every run."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


class CheckpointError(CorruptFileError, ValueError):
    """A weights file that cannot be loaded into a model: unreadable (truncated, corrupted, foreign), holding no
    state_dict, or weights of another architecture. The one exception type of :func:`load_torch` and
    :func:`load_state_dict` (a :class:`CorruptFileError`, and a ValueError for the API's users)."""


def load_torch(path: str | os.PathLike) -> Any:
    """Load a file written by :func:`save_torch` with ``weights_only=True``.

    A missing file raises FileNotFoundError; a truncated, corrupted (the zip archive's CRC-32 of every member
    is checked first: torch itself reads flipped bytes in tensor data silently) or foreign file raises
    CorruptFileError naming it.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    hint = ("expected a checkpoint written by losslab (torch.save of tensors, read with weights_only=True); "
            "delete the file to have it recomputed")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise CheckpointError(f"{path}: corrupted checkpoint ({err}); {hint}") from err
        if bad is not None:
            raise CheckpointError(f"{path}: corrupted checkpoint (CRC-32 mismatch in member {bad!r}); {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged zip / pickle
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(err)).strip()  # no terminal escape codes in a message
        pickled = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if pickled:  # torch.save(model): a pickled object whose class loading would run code
            raise CheckpointError(
                f"{path}: holds a pickled {pickled.group(1)} object (a whole module saved with torch.save(model)?), "
                f"not a state_dict; save model.state_dict() instead (losslab reads checkpoints with "
                f"weights_only=True and runs no code from them)") from err
        first = text.splitlines()[0] if text else type(err).__name__
        raise CheckpointError(f"{path}: cannot be read as a checkpoint (truncated or not written by losslab: "
                               f"{first}); {hint}") from err


def nonfinite_entries(state: Mapping[str, Any], parameters: Sequence[str] = ()) -> str:
    """The first tensor of ``state`` holding NaN or infinite entries, in words (``weight 'fc.bias' has 2 NaN
    entries``; a name not in ``parameters`` is a buffer, e.g. a BN running variance), with how many more
    tensors do; "" when every floating tensor is finite."""
    import torch

    bad = []
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            if nan or inf:
                parts = " and ".join(f"{c} {w}" for c, w in ((nan, "NaN"), (inf, "infinite")) if c)
                kind = "weight" if name in parameters or not parameters else "buffer"
                bad.append(f"{kind} {name!r} has {parts} entr{'ies' if nan + inf > 1 else 'y'}")
    if not bad:
        return ""
    return bad[0] + (f" (and {len(bad) - 1} more tensor{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else "")


PARALLEL_PREFIX = "module."


def strip_parallel_prefix(state: Mapping[str, Any], own: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state`` with the ``module.`` prefix that ``nn.DataParallel`` and ``DistributedDataParallel`` put before
    every key removed, when every key of ``state`` has it and no key of the model (``own``, its state_dict) does;
    otherwise ``state`` unchanged (a model that itself names a submodule ``module`` keeps its keys)."""
    n = len(PARALLEL_PREFIX)
    if (state and all(isinstance(k, str) and k.startswith(PARALLEL_PREFIX) for k in state)
            and not any(k.startswith(PARALLEL_PREFIX) for k in own)):
        return {k[n:]: v for k, v in state.items()}
    return state


def load_state_dict(module: torch.nn.Module, path: str | os.PathLike, *, finite: bool = False) -> torch.nn.Module:
    """Load the weights file ``path`` into ``module`` (strictly; in place, returned): the one checkpoint loader,
    for the workflow's runs and the API's users alike. The file holds a ``state_dict``, or a training checkpoint
    with one under ``"model"`` or ``"state_dict"``; the ``module.`` prefix of a DataParallel checkpoint is
    dropped (:func:`strip_parallel_prefix`). A missing file raises FileNotFoundError; an unreadable one, one
    that holds no state_dict, or weights of another architecture raise :class:`CheckpointError` naming the file
    and the keys or shapes that differ; with ``finite`` (the front doors) so do NaN or infinite weights
    (:func:`nonfinite_entries`; the workflow keeps loading a diverged run's weights, whose numbers it reports as
    such)."""
    import torch

    state = load_torch(path)
    if isinstance(state, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state_dict (a mapping of parameter names to tensors), found "
                              f"{type(state).__name__}")
    own = module.state_dict()
    state = strip_parallel_prefix(state, own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}" if missing else "",
                 f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}" if unexpected else "",
                 f"shape mismatch {'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}" if shapes else ""]
        raise CheckpointError(
            f"{path}: weights of another architecture than {type(module).__name__} "
            f"({', '.join(p for p in parts if p)}); it must be written by a run with the same model settings")
    found = nonfinite_entries(state, [n for n, _ in module.named_parameters()]) if finite else ""
    if found:
        raise CheckpointError(f"{path}: {found}; the weights must be finite (a diverged run?)")
    module.load_state_dict(state)
    return module


JOURNAL_MAGIC = b"losslab-journal 1\n"
_FRAME = struct.Struct("<II")  # payload length, CRC-32 of the payload


def _frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class Journal:
    """An append-only file of records: ``JOURNAL_MAGIC``, then frames of ``(length, CRC-32, payload)``
    (little-endian uint32s), the first frame a header and the others records.

    :meth:`append` writes the file atomically with the header when it does not exist yet, else appends the
    record after the last valid one and fsyncs. :meth:`read` returns the header and the valid records: a
    short or checksum-failing frame (a torn append) ends the journal, and it and anything after it are
    dropped (the next :meth:`append` overwrites them); a file without the magic or with a damaged header is
    a :class:`CorruptFileError` naming it.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._end: int | None = None  # the offset after the last valid record, once read

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> tuple[bytes, list[bytes]]:
        """The header and the valid records, in order."""
        data = self.path.read_bytes()
        if not data.startswith(JOURNAL_MAGIC):
            raise CorruptFileError(f"{self.path}: not a journal written by losslab (no {JOURNAL_MAGIC!r} at its "
                                   f"start); delete it to have it recomputed")
        frames, pos = [], len(JOURNAL_MAGIC)
        while pos + _FRAME.size <= len(data):
            length, crc = _FRAME.unpack_from(data, pos)
            payload = data[pos + _FRAME.size:pos + _FRAME.size + length]
            if len(payload) != length or zlib.crc32(payload) != crc:
                break
            frames.append(payload)
            pos += _FRAME.size + length
        if not frames:
            raise CorruptFileError(f"{self.path}: journal header truncated or damaged; delete it to have it "
                                   f"recomputed")
        self._end = pos
        return frames[0], frames[1:]

    @property
    def dropped(self) -> int:
        """Bytes after the last valid record (a torn append) found by the last :meth:`read`."""
        return 0 if self._end is None else self.path.stat().st_size - self._end

    def append(self, record: bytes, header: bytes) -> None:
        """Append ``record`` and fsync; a journal that does not exist yet is written atomically as ``header``
        and ``record``."""
        if not self.path.exists():
            write_bytes(self.path, JOURNAL_MAGIC + _frame(header) + _frame(record))
            self._end = self.path.stat().st_size
            return
        if self._end is None:
            self.read()
        with open(self.path, "r+b") as fh:
            fh.seek(self._end)
            fh.write(_frame(record))
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())
            self._end = fh.tell()

    def discard(self) -> None:
        """Delete the journal (its records are stored elsewhere now)."""
        self.path.unlink(missing_ok=True)
        self._end = None


def file_hash(path: str | os.PathLike, algo: str = "sha256") -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
