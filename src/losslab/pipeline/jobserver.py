"""A fork server for the workflow's Python jobs: torch is imported once per run, not once per job.

Every Snakemake job of the DAG is a fresh Python process, and importing torch, matplotlib, h5py and losslab
costs about 2.5 s of CPU per process: on the smoke scale's ~125 jobs that is a third of the whole run. A
workflow script therefore starts with::

    from losslab.pipeline.jobserver import delegate; delegate(__real_file__)

``delegate`` hands the job to a server process that has those modules imported already and forks a child
per job. The child takes over the job's working directory, environment, standard streams and its temporary
script (Snakemake's copy, with the pickled ``snakemake`` object), runs it, and sends back its exit code;
``delegate`` exits the job's process with that code, so Snakemake sees the job exactly as if it had run in
its own process. A forked child computes exactly what a fresh process computes: the server imports modules
and never computes anything, and every job sets its own seeds and thread count (a test checks the numbers
bitwise against a run without the server).

- The first job of a run finds no server: it starts one in the background and runs itself in-process.
- A server serves one version of the code: its socket's name holds a fingerprint of the Python executable
  and of every losslab source file, so an edited library gets a new server. It exits after ``IDLE_SECONDS``
  without jobs.
- If the job's process dies (Snakemake killed, Ctrl-C), the child notices its closed connection and kills
  itself: nothing keeps computing behind Snakemake's back.
- Off where it does not belong: with ``LOSSLAB_JOB_SERVER=0``, inside a SLURM allocation (each job is its
  own allocation there) and where ``fork``/UNIX sockets are missing the job simply runs in-process.

This module must stay cheap to import (no torch at module level): it runs in every job's process first.
"""

from __future__ import annotations

import hashlib
import json
import os
import pkgutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from losslab.pipeline import cpu_kernels  # torch-free

IDLE_SECONDS = 60.0
# imported by the server before it forks (and every module of losslab itself: see `serve`)
PRELOAD = ("torch", "torch.func", "torch.optim", "torch._dynamo", "numpy", "scipy.sparse.linalg", "scipy.optimize",
           "h5py", "yaml", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.colors",
           "mpl_toolkits.mplot3d", "snakemake.script")

STARTED_ENV = "LOSSLAB_JOB_STARTED"  # when the job's process started (set by losslab.pipeline.jobserver.delegate)


def process_started() -> float:
    """Wall-clock time (epoch seconds) at which this process started, from /proc (10 ms resolution); the job's
    own process when it runs in a job-server child."""
    if STARTED_ENV in os.environ:
        return float(os.environ[STARTED_ENV])
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, AttributeError):
        return time.time()


_in_child = False  # set in a forked child before it runs the job's script


def enabled() -> bool:
    """Whether jobs go through the server here (see the module docstring for where it is off)."""
    if os.environ.get("LOSSLAB_JOB_SERVER", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if "SLURM_JOB_ID" in os.environ:
        return False
    return hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")


# the losslab package (this module is one level down, in pipeline/): every module of every wing is fingerprinted
# and preloaded, so that an edited module anywhere in the package restarts the server
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def fingerprint() -> str:
    """Hash of the interpreter, of the CPU kernel settings in the environment (the server loads NumPy's OpenBLAS,
    which reads its setting once: see losslab.pipeline.cpu_kernels) and of every source file under
    :data:`PACKAGE_ROOT` (path, size, mtime)."""
    h = hashlib.sha256(f"{sys.executable}\n{sys.version}\n".encode())
    for name in (cpu_kernels.MODE_ENV, *cpu_kernels.VARIABLES):
        h.update(f"{name}={os.environ.get(name)}\n".encode())
    for p in sorted(PACKAGE_ROOT.rglob("*.py")):
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def socket_path() -> Path:
    base = Path(os.environ.get("LOSSLAB_JOB_SERVER_DIR") or tempfile.gettempdir())
    return base / f"losslab-{os.getuid()}-{fingerprint()}.sock"


# --- the job's side -----------------------------------------------------------------------------------------

def delegate(script: str) -> None:
    """Run this job (``script``: Snakemake's temporary copy of the workflow script, ``__real_file__``) in a
    server child and exit with its exit code; return at once when running in-process instead."""
    if _in_child or not enabled():
        return
    path = socket_path()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        start_server(path)
        return  # this job runs here while the server starts for the next ones
    env = dict(os.environ)
    env.setdefault(STARTED_ENV, repr(process_started()))
    request = {"script": os.path.abspath(script), "cwd": os.getcwd(), "env": env,
               "argv": sys.argv, "umask": _umask()}
    sys.stdout.flush()
    sys.stderr.flush()
    payload = json.dumps(request).encode()
    try:
        socket.send_fds(conn, [len(payload).to_bytes(8, "big") + payload], [0, 1, 2])
        reply = _recv_exact(conn, 4)
    except OSError:
        reply = b""
    if len(reply) != 4:
        print(f"losslab job server ({path}): the job's process ended without an exit code", file=sys.stderr)
        os._exit(1)
    os._exit(int.from_bytes(reply, "big", signed=True))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def start_server(path: Path) -> None:
    """Start a server for ``path`` in the background (its own session, so it outlives this job)."""
    log = open(str(path) + ".log", "ab")
    subprocess.Popen([sys.executable, "-m", "losslab.pipeline.jobserver", str(path)], stdin=subprocess.DEVNULL,
                     stdout=log, stderr=log, start_new_session=True, close_fds=True)
    log.close()


# --- the server's side --------------------------------------------------------------------------------------

def serve(path: Path, idle: float = IDLE_SECONDS) -> None:
    """Import the heavy modules, then fork a child per job until ``idle`` seconds pass without one."""
    import fcntl
    import importlib

    lock = open(str(path) + ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server holds this path
    for name in (*PRELOAD, *(m.name for m in pkgutil.walk_packages([str(PACKAGE_ROOT)], prefix="losslab."))):
        try:
            importlib.import_module(name)
        except Exception as e:  # a missing optional module only makes its jobs import it themselves
            print(f"preload {name}: {e!r}", flush=True)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(64)
    listener.settimeout(1.0)
    children: set[int] = set()
    last = time.monotonic()
    try:
        while True:
            children = {pid for pid in children if os.waitpid(pid, os.WNOHANG) == (0, 0)}
            if children:
                last = time.monotonic()
            elif time.monotonic() - last > idle:
                return
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            pid = os.fork()
            if pid == 0:
                listener.close()
                _run_child(conn)  # never returns
            conn.close()
            children.add(pid)
    finally:
        listener.close()
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _run_child(conn: socket.socket) -> None:
    code = 1
    try:
        conn.settimeout(None)
        msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        size = int.from_bytes(msg[:8], "big")
        payload = msg[8:]
        while len(payload) < size:
            chunk = conn.recv(size - len(payload))
            if not chunk:
                os._exit(1)
            payload += chunk
        request = json.loads(payload)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False, buffering=1)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        os.setsid()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(request["umask"])
        sys.argv = list(request["argv"])
        threading.Thread(target=_die_with_the_job, args=(conn,), daemon=True).start()
        global _in_child
        _in_child = True
        code = _run_script(request["script"])
    except BaseException:  # report anything, never return into the server's loop
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            conn.sendall(int(code).to_bytes(4, "big", signed=True))
        except OSError:
            pass
        os._exit(code)


def _run_script(script: str) -> int:
    import runpy
    import traceback

    try:
        runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1


def _die_with_the_job(conn: socket.socket) -> None:
    """Block until the job's process closes the connection (it only does so by dying), then die too."""
    try:
        while conn.recv(1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    # through the package's module object, whose `_in_child` the scripts' `delegate` reads
    from losslab.pipeline import jobserver

    jobserver.serve(Path(sys.argv[1]))
