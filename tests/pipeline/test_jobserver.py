"""The fork server for workflow jobs: a job run through it behaves as a job run in its own process."""
import os
import signal
import subprocess
import sys
import time

import pytest

from losslab.pipeline import jobserver

JOB = """\
__real_file__ = __file__
from losslab.pipeline.jobserver import delegate; delegate(__real_file__)
import os, sys
import torch
torch.set_num_threads(1)
torch.manual_seed(int(sys.argv[1]))
x = torch.randn(64, 64)
w = torch.nn.Linear(64, 10)
opt = torch.optim.SGD(w.parameters(), lr=0.1, momentum=0.9)
for _ in range(3):
    opt.zero_grad()
    w(x).pow(2).mean().backward()
    opt.step()
out = w(x).sum().item()
print(f"{{os.getcwd()}} {{os.environ.get('JOB_MARK')}} {{out!r}}")
{tail}
"""


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A server on a socket in tmp_path, stopped at the end."""
    monkeypatch.setenv("LOSSLAB_JOB_SERVER_DIR", str(tmp_path))
    monkeypatch.delenv("LOSSLAB_JOB_SERVER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    path = jobserver.socket_path()
    proc = subprocess.Popen([sys.executable, "-c", f"from losslab.pipeline import jobserver; from pathlib import Path; "
                             f"jobserver.serve(Path({str(path)!r}), idle=60)"])
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, "the job server exited at start-up"
        assert time.monotonic() < deadline, "the job server did not start"
        time.sleep(0.2)
    yield path
    proc.terminate()
    proc.wait(timeout=30)


def _job(tmp_path, tail="", name="job.py"):
    script = tmp_path / name
    script.write_text(JOB.format(tail=tail))
    return script


def _run(script, cwd, *args, server=True, **kw):
    env = dict(os.environ, JOB_MARK="mark", LOSSLAB_JOB_SERVER="1" if server else "0")
    return subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kw)


def test_a_job_through_the_server_computes_what_it_computes_alone(server, tmp_path):
    script = _job(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    alone = _run(script, work, "7", server=False)
    served = _run(script, work, "7")
    assert alone.returncode == served.returncode == 0, served.stderr
    assert served.stdout == alone.stdout  # same cwd, environment and bitwise the same number
    assert f"{work} mark" in served.stdout


@pytest.mark.parametrize("tail, code, message", [
    ("sys.exit(3)", 3, None),
    ("raise ValueError('bad input: x.yaml')", 1, "ValueError: bad input: x.yaml"),
])
def test_the_job_exits_with_the_script_s_code_and_traceback(server, tmp_path, tail, code, message):
    result = _run(_job(tmp_path, tail), tmp_path, "0")
    assert result.returncode == code
    if message:
        assert message in result.stderr


def test_a_killed_job_takes_its_server_child_with_it(server, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = _job(tmp_path, f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\nimport time; time.sleep(600)")
    env = dict(os.environ, LOSSLAB_JOB_SERVER="1")
    job = subprocess.Popen([sys.executable, str(script), "0"], cwd=tmp_path, env=env)
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.1)
    child = int(pid_file.read_text())
    assert child != job.pid  # it ran in the server's child, not in the job's own process
    job.send_signal(signal.SIGKILL)
    job.wait()
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the server's child outlived its job"
        time.sleep(0.1)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_without_a_server_the_first_job_runs_in_process_and_starts_one(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_JOB_SERVER_DIR", str(tmp_path))
    path = jobserver.socket_path()
    script = _job(tmp_path, "print('pid', os.getpid())")
    env = dict(os.environ, LOSSLAB_JOB_SERVER="1")
    first = subprocess.run([sys.executable, str(script), "1"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 120
    while not path.exists():
        assert time.monotonic() < deadline, "no server was started"
        time.sleep(0.2)
    second = subprocess.run([sys.executable, str(script), "1"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.stdout.splitlines()[0] == second.stdout.splitlines()[0]
    subprocess.run(["pkill", "-f", str(path)], check=False)


@pytest.mark.parametrize("env, on", [({}, True), ({"LOSSLAB_JOB_SERVER": "0"}, False),
                                     ({"SLURM_JOB_ID": "12"}, False)])
def test_where_the_server_is_used(monkeypatch, env, on):
    monkeypatch.delenv("LOSSLAB_JOB_SERVER", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert jobserver.enabled() is on


def test_the_socket_names_the_code_it_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_JOB_SERVER_DIR", str(tmp_path))
    assert jobserver.socket_path() == tmp_path / f"losslab-{os.getuid()}-{jobserver.fingerprint()}.sock"
    assert jobserver.fingerprint() == jobserver.fingerprint()


@pytest.mark.parametrize("module", ["core/weights.py", "plots/figures.py", "claims/verdicts.py", "api.py"])
def test_an_edited_module_in_any_wing_restarts_the_server(module):
    """The fingerprint covers the whole package, not only the job server's own folder: touching a module of
    another wing (its mtime) names a new socket, so no job runs stale code."""
    path = jobserver.PACKAGE_ROOT / module
    assert path.is_file(), path
    before, st = jobserver.fingerprint(), path.stat()
    try:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        assert jobserver.fingerprint() != before
    finally:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert jobserver.fingerprint() == before


def test_every_workflow_script_hands_its_job_to_the_server_first():
    """The delegation must come before the script's own imports, or torch is imported anyway."""
    from pathlib import Path

    scripts = sorted((Path(__file__).parents[2] / "workflow" / "scripts").glob("*.py"))
    assert scripts
    for script in scripts:
        code = [line for line in script.read_text().splitlines()
                if line.startswith(("import ", "from "))]
        assert code[0].startswith("from losslab.pipeline.jobserver import delegate; delegate(__real_file__)"), script
