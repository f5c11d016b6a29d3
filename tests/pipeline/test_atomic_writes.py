"""Source audit: every file the project writes is written atomically, nothing is deleted behind a job's back,
checkpoints are loaded with ``weights_only=True`` and no value is ever evaluated as code.

The audit parses every Python file of ``src/losslab`` and ``workflow/scripts`` (and scans the Snakefile and
rules as text) so that a new raw write fails CI. A write is atomic when it happens lexically inside
``with ... atomic_path(...) as tmp`` (``losslab.io``: a temporary file beside the target, fsynced, renamed over
it) or is one of ``losslab.io``'s own helpers. The few justified exceptions are listed in ALLOWED with the
reason.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY_FILES = sorted([*(ROOT / "src" / "losslab").rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")])
SMK_FILES = sorted([ROOT / "workflow" / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")])
IO_MODULE = ROOT / "src" / "losslab" / "io.py"

# functions that write a file, by dotted name, and methods that do (on anything but losslab's own atomic
# helpers: ``lio.write_text``, ``figures.save`` ... are the way to write)
WRITE_FUNCS = {"torch.save", "np.save", "np.savez", "np.savez_compressed", "np.savetxt", "numpy.save",
               "numpy.savez", "numpy.savez_compressed", "numpy.savetxt", "json.dump", "yaml.dump", "yaml.safe_dump",
               "pickle.dump", "shutil.copy", "shutil.copyfile", "shutil.copy2", "shutil.copytree", "shutil.move"}
WRITE_METHODS = {"savefig", "to_csv", "to_json", "to_hdf", "to_parquet", "write_text", "write_bytes", "tofile",
                 "symlink_to", "hardlink_to"}
ATOMIC_HELPERS = ("lio.", "io.", "losslab.io.", "figures.")
# calls that delete or move files
DELETE_ATTRS = {"unlink", "remove", "rmtree", "rmdir", "rename", "replace"}
WRITE_MODES = set("wax+")

# (file relative to ROOT, enclosing function, call) -> why it is fine. Keep this short: each entry is a reason.
ALLOWED = {
    ("src/losslab/pipeline/job.py", "start_job", "logging.FileHandler"):
        "the job's log file is appended to by design (a rerun adds to the log of the killed attempt)",
    ("src/losslab/pipeline/jobserver.py", "start_server", "open"):
        "the job server's own log, appended to by the background process (not a result)",
    ("src/losslab/pipeline/jobserver.py", "serve", "open"):
        "the job server's lock file, opened only to hold an flock on it (its content is never read)",
    ("src/losslab/pipeline/jobserver.py", "_run_child", "open"):
        "re-opens file descriptors 1 and 2 (the job's stdout/stderr handed over by the client), not a file",
    ("src/losslab/claims/publish.py", "publish", "shutil.rmtree"):
        "replaces a scale's whole published report (results/published/<scale>, a copy kept in the repository, not a "
        "job's output) so that no file of an older publication survives beside the new manifest",
    ("src/losslab/pipeline/jobserver.py", "serve", "path.unlink"):
        "removes the job server's own UNIX socket (stale from a dead server, or its own on exit), never an output",
}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    function: str
    call: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}(): {self.call} ({self.what})"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "?"


def _str_arg(call: ast.Call, pos: int, kw: str) -> str | None:
    node = call.args[pos] if len(call.args) > pos else next((k.value for k in call.keywords if k.arg == kw), None)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_atomic_with(node: ast.With) -> bool:
    return any(isinstance(item.context_expr, ast.Call) and _dotted(item.context_expr.func).endswith("atomic_path")
               for item in node.items)


class Audit(ast.NodeVisitor):
    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.functions: list[str] = ["<module>"]
        self.atomic_depth = 0
        self.writes: list[Finding] = []
        self.deletes: list[Finding] = []
        self.unsafe: list[Finding] = []

    def _finding(self, node: ast.Call, what: str) -> Finding:
        return Finding(self.rel, node.lineno, self.functions[-1], _dotted(node.func), what)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_With(self, node: ast.With) -> None:
        atomic = _is_atomic_with(node)  # `with atomic_path(p) as tmp, h5py.File(tmp, "w")`: both items count
        self.atomic_depth += atomic
        for item in node.items:
            self.visit(item)
        for stmt in node.body:
            self.visit(stmt)
        self.atomic_depth -= atomic

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        # --- writes
        write = None
        if name == "open" or name.endswith(".open") and not name.endswith("Image.open"):
            mode = _str_arg(node, 1, "mode") if name == "open" else _str_arg(node, 0, "mode")
            if mode and WRITE_MODES & set(mode):
                write = f"open for writing, mode {mode!r}"
        elif last == "File" and "h5py" in name:
            mode = _str_arg(node, 1, "mode")
            if mode is None or mode != "r":
                write = f"h5py.File mode {mode!r}"
        elif last == "FileHandler":
            write = "log file handler"
        elif name in WRITE_FUNCS and not (name.endswith("dump") and len(node.args) < 2):
            write = f"{name}()"  # yaml.safe_dump(obj) without a stream returns text: not a write
        elif last in WRITE_METHODS and not name.startswith(ATOMIC_HELPERS):
            write = f"{last}()"
        elif last == "save" and "Image" in name:
            write = "PIL Image.save()"
        if write and not self.atomic_depth:
            self.writes.append(self._finding(node, write))
        # --- deletions and renames
        if last in DELETE_ATTRS and (name.startswith(("os.", "shutil.")) or isinstance(node.func, ast.Attribute)):
            if last != "replace" or name.startswith("os."):  # str.replace is not a file operation
                if not self.atomic_depth:
                    self.deletes.append(self._finding(node, f"{last}()"))
        # --- unsafe loading / evaluation
        if name == "torch.load":
            wo = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                self.unsafe.append(self._finding(node, "torch.load without weights_only=True"))
        elif name in ("eval", "exec", "compile", "__import__"):
            self.unsafe.append(self._finding(node, f"{name}() evaluates text as code"))
        elif name in ("pickle.load", "pickle.loads", "dill.load", "cloudpickle.load", "marshal.load"):
            self.unsafe.append(self._finding(node, "unpickling runs code from the file"))
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load"):
            self.unsafe.append(self._finding(node, "use yaml.safe_load"))
        elif last == "load" and name.startswith(("np.", "numpy.")):
            ap = next((k.value for k in node.keywords if k.arg == "allow_pickle"), None)
            if isinstance(ap, ast.Constant) and ap.value is True:
                self.unsafe.append(self._finding(node, "np.load(allow_pickle=True)"))
        self.generic_visit(node)


def audit(path: Path) -> Audit:
    a = Audit(str(path.relative_to(ROOT)))
    a.visit(ast.parse(path.read_text(), filename=str(path)))
    return a


def _not_allowed(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if (f.file, f.function, f.call) not in ALLOWED]


AUDITS = {str(p.relative_to(ROOT)): audit(p) for p in PY_FILES}


@pytest.mark.parametrize("rel", [r for r in AUDITS if r != "src/losslab/io.py"])
def test_every_write_is_atomic(rel):
    bad = _not_allowed(AUDITS[rel].writes)
    assert not bad, ("raw writes (route them through losslab.io.write_text/write_bytes/write_json/save_torch or "
                     "`with lio.atomic_path(path) as tmp:`):\n  " + "\n  ".join(map(str, bad)))


@pytest.mark.parametrize("rel", [r for r in AUDITS if r != "src/losslab/io.py"])
def test_no_job_deletes_or_renames_files(rel):
    bad = _not_allowed(AUDITS[rel].deletes)
    assert not bad, "files deleted or renamed outside losslab.io:\n  " + "\n  ".join(map(str, bad))


@pytest.mark.parametrize("rel", list(AUDITS))
def test_loading_is_safe_and_nothing_is_evaluated(rel):
    bad = AUDITS[rel].unsafe
    assert not bad, "\n  ".join(map(str, bad))


def test_the_io_helpers_are_the_atomic_ones():
    """losslab.io itself: its writes happen inside atomic_path, except atomic_path's own fsync of the temp file and
    a Journal's append (a checksummed record after the last valid one, fsynced; the journal's first version is
    written atomically) and its removal once its records are stored elsewhere."""
    a = audit(IO_MODULE)
    own = {"write_text", "write_bytes"}  # io's helpers calling each other
    raw = {(f.function, f.call) for f in a.writes if f.call not in own}
    # atomic_path fsyncs its temporary file; save_torch serialises into an in-memory buffer, then write_bytes
    assert raw <= {("atomic_path", "open"), ("save_torch", "torch.save"), ("append", "open")}, a.writes
    # atomic_dir: the swap of the published directory (two renames, the old version removed) and its staging key;
    # Journal.discard: the journal of a finished surface
    assert {(f.function, f.call) for f in a.deletes} <= {("atomic_path", "os.replace"),
                                                         ("atomic_path", "tmp_path.unlink"),
                                                         ("discard", "self.path.unlink"),
                                                         ("atomic_dir", "os.replace"), ("atomic_dir", "shutil.rmtree"),
                                                         ("atomic_dir", "stamp.unlink")}, a.deletes
    assert not a.unsafe


@pytest.mark.parametrize("path", SMK_FILES, ids=lambda p: p.name)
def test_snakefiles_evaluate_no_config_value(path):
    text = path.read_text()
    for pattern in (r"(?<![\w.])eval\(", r"(?<![\w.])exec\(", r"pickle\.load", r"yaml\.load\(", r"torch\.load\("):
        assert not re.search(pattern, text), f"{path.name}: {pattern}"


def test_allow_list_entries_still_exist():
    """An exception that no longer matches any code is removed from ALLOWED (the list stays a list of reasons)."""
    found = {(f.file, f.function, f.call) for a in AUDITS.values() for f in [*a.writes, *a.deletes]}
    listed = {key for key in ALLOWED if (ROOT / key[0]).exists()}
    assert listed <= found, listed - found


def test_the_audit_catches_raw_writes(tmp_path):
    """The audit itself: raw writes, deletions, unsafe loads are found; writes under atomic_path are not."""
    src = tmp_path / "mod.py"
    src.write_text(
        "import json, os, torch, h5py, numpy as np\n"
        "from losslab import io as lio\n"
        "def bad(p, fig, df, obj):\n"
        "    open(p, 'w').write('x'); torch.save(obj, p); np.save(p, obj); fig.savefig(p); df.to_csv(p)\n"
        "    json.dump(obj, open(p, 'a')); p.write_text('x'); h5py.File(p, 'a'); os.remove(p)\n"
        "    torch.load(p); eval('1'); np.load(p, allow_pickle=True)\n"
        "def good(p, obj):\n"
        "    with lio.atomic_path(p) as tmp:\n"
        "        torch.save(obj, tmp); np.save(tmp, obj)\n"
        "        with open(tmp, 'wb') as fh, h5py.File(tmp, 'w') as f:\n"
        "            fh.write(b'')\n"
        "    json.dumps(obj); torch.load(p, weights_only=True); open(p).read(); h5py.File(p, 'r')\n"
        "    'a'.replace('a', 'b')\n"
    )
    a = Audit("mod.py")
    a.visit(ast.parse(src.read_text()))
    assert {f.function for f in a.writes + a.deletes + a.unsafe} == {"bad"}
    assert len(a.writes) == 9 and len(a.deletes) == 1 and len(a.unsafe) == 3


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_take_the_users_umask(tmp_path, mask, mode):
    """An atomic write ends with the mode a plain open() would give (mkstemp's 0600 would hide results from the
    group and others whatever the umask)."""
    import os

    from losslab import io as lio

    old = os.umask(mask)
    try:
        lio.write_text(tmp_path / "a.txt", "x")
        lio.write_json(tmp_path / "b.json", {"x": 1})
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"a.txt": mode, "b.json": mode,
                                                                              "plain.txt": mode}
