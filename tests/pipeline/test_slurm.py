"""SLURM: every rule's cluster resources come from the scale's `compute` block, and a stated part of the smoke DAG
runs through Snakemake's SLURM executor plugin (profiles/slurm) on a real single-node SLURM brought up on
localhost, with the same numbers as a local run of the same targets."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import SMALL, SNAKEFILE, snakemake
from losslab.pipeline.registry import load_registry
from .test_determinism import differences, result_files

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm"
LOCAL_RULES = {"all", "report", "figures", "surface_figures", "trajectory_figure", "ratio_map_figure"}


# --------------------------------------------------------------------------------------------------------------
# every rule's resources come from the config


_INTROSPECT = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

snakefile, workdir, configfile = sys.argv[1:4]
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                      config_settings=ConfigSettings(configfiles=[Path(configfile)]),
                      snakefile=Path(snakefile), workdir=Path(workdir))._workflow
    out = {}
    for rule in wf.rules:
        res = {}
        for key, val in rule.resources.items():
            if hasattr(val, "is_evaluable"):  # snakemake >= 9: Resource objects
                val = None if val.is_evaluable() else val.value
            res[key] = val if isinstance(val, (int, float, str)) else None
        # localrules (or no job at all, like `all`); wf.is_local() is True for every rule of a local run
        out[rule.name] = {"local": rule.name in wf._localrules or bool(rule.norun), "resources": res}
print("RULES=" + json.dumps(out))
"""


def load_rules(workdir: Path, config: dict) -> dict:
    """{rule name: {local, resources}} of the workflow as Snakemake loads it with ``config`` as a configfile."""
    cfg = workdir / "introspect.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-c", _INTROSPECT, str(SNAKEFILE), str(workdir), str(cfg)],
                          capture_output=True, text=True, timeout=600, cwd=workdir, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RULES=")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[len("RULES="):])


def declared_rules() -> set[str]:
    """Every rule named in workflow/rules/*.smk and the Snakefile (conditional ones too) and every claim rule the
    registry names (generated in one loop)."""
    pattern = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
    files = [SNAKEFILE, *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    generated = {c["rule"] for c in load_registry(ROOT / "config" / "claims.yaml") if "rule" in c}  # rules/claims.smk
    return {name for f in files for name in pattern.findall(f.read_text())} | generated


DEFAULT = {"mem_mb": 7, "runtime": 7, "gpu": 7}


@pytest.mark.dag
def test_every_rule_takes_its_resources_from_the_compute_block(tmp_path):
    """Loaded first with only `compute.default`, then with a distinct mem_mb/runtime/gpu per rule in
    `compute.rules`: every non-local rule must come back with them. A rule added without
    `resources: **job_resources("<rule>")` fails here by name."""
    base = {"scale": "smoke", **SMALL}
    rules = load_rules(tmp_path, {**base, "compute": {"default": DEFAULT}})
    declared = declared_rules()
    assert declared <= set(rules), f"rules declared in the .smk files but not defined at smoke: " \
                                   f"{sorted(declared - set(rules))}"
    local = sorted(n for n, r in rules.items() if r["local"])
    assert set(local) == LOCAL_RULES, f"local rules {local}; expected {sorted(LOCAL_RULES)}"
    remote = sorted(set(rules) - LOCAL_RULES)
    missing = [n for n in remote if {k: rules[n]["resources"].get(k) for k in DEFAULT} != DEFAULT]
    assert not missing, f"rules without `resources: **job_resources(\"<rule>\")`: {missing}"

    per_rule = {name: {"mem_mb": 1000 + i, "runtime": 100 + i, "gpu": i % 3} for i, name in enumerate(remote)}
    rules = load_rules(tmp_path, {**base, "compute": {"default": DEFAULT, "rules": per_rule}})
    wrong = {n: {k: rules[n]["resources"].get(k) for k in DEFAULT} for n in remote}
    wrong = {n: got for n, got in wrong.items() if got != per_rule[n]}
    assert not wrong, f"rules whose resources are not their own compute.rules.<rule>: {wrong}"


@pytest.mark.dag
def test_threads_from_compute_and_bad_compute_keys(tmp_path):
    base = {"scale": "smoke", **SMALL, "threads": 2}
    rules = load_rules(tmp_path, {**base, "compute": {"default": {"mem_mb": 500, "runtime": 5, "gpu": 0},
                                                      "rules": {"train": {"threads": 3, "gpu": 1}}}})
    assert rules["train"]["resources"]["_cores"] == 3
    assert rules["train"]["resources"]["gpu"] == 1 and rules["train"]["resources"]["mem_mb"] == 500
    assert rules["surface"]["resources"]["_cores"] == 2  # the top-level threads
    assert rules["ablation_claim"]["resources"]["_cores"] == 1  # a single-threaded claim

    # names are checked against the workflow's rules when it loads
    for compute, needle in [
        ({"rules": {"trian": {"mem_mb": 10}}}, "config key 'compute.rules.trian': no rule 'trian'"),
        ({"rules": {"ablation_claim": {"threads": 4}}},
         "config key 'compute.rules.ablation_claim.threads': rule 'ablation_claim' is single-threaded"),
    ]:
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(yaml.safe_dump({"compute": compute}))
        proc = snakemake(tmp_path, "--list-rules", "--configfile", str(cfg))
        assert proc.returncode != 0 and needle in proc.stdout + proc.stderr, proc.stdout[-2000:] + proc.stderr


@pytest.mark.parametrize("compute, key", [
    ({"rules": {"train": {"mem_gb": 10}}}, "compute.rules.train"),
    ({"default": {"runtime": 0}}, "compute.default.runtime"),
    ({"default": {"gpu": -1}}, "compute.default.gpu"),
    ({"rules": {"train": {"threads": 0}}}, "compute.rules.train.threads"),
])
def test_bad_compute_values_are_named(compute, key):
    from losslab.pipeline.config import ConfigError, resolve

    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'")):
        resolve({"scale": "smoke", "compute": compute}, ROOT)


def test_paper_scale_asks_for_gpus_where_it_trains_and_evaluates():
    from losslab.pipeline.config import resolve

    cfg = resolve({"scale": "paper", "data_dir": "data"}, ROOT)
    rules = cfg["compute"]["rules"]
    for name in ("train", "surface_shard", "hessian_outliers_claim", "curve", "curve_eval", "mpo_fit"):
        assert rules[name]["gpu"] == 1, name
    assert cfg["compute"]["default"]["gpu"] == 0
    for scale in ("smoke", "desk", "cpu"):
        c = resolve({"scale": scale, "data_dir": "data"}, ROOT)["compute"]
        assert all(r.get("gpu", 0) == 0 for r in [c["default"], *c.get("rules", {}).values()]), scale


# --------------------------------------------------------------------------------------------------------------
# a real single-node SLURM on localhost


DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "srun")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _install_slurm() -> str | None:
    """Install slurm-wlm and munge with apt if missing; the reason to skip, or None."""
    if not sys.platform.startswith("linux"):
        return "SLURM test needs Linux"
    if os.geteuid() != 0:
        return "SLURM test needs root (it starts munged, slurmctld and slurmd on localhost)"
    if all(shutil.which(d) for d in DAEMONS):
        return None
    if not shutil.which("apt-get"):
        return "slurm-wlm/munge are not installed and there is no apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "slurm-wlm", "munge"]
    log = ""
    for cmd in (install, ["apt-get", "update", "-q"], install):
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` timed out (no network to the Debian mirror?)"
        log = proc.stdout[-1500:] + proc.stderr[-1500:]
        if cmd is install and proc.returncode == 0 and all(shutil.which(d) for d in DAEMONS):
            return None
    return f"could not install slurm-wlm/munge with apt (no network to the Debian mirror?): {log}"


class LocalSlurm:
    """munged (as the munge user), slurmctld and slurmd in the foreground, configured in a fresh directory: one
    node at 127.0.0.1 with this machine's CPUs and memory, one default partition, no accounting."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="losslab-slurm-"))
        self.dir.chmod(0o755)  # the munge user walks into it
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.dir / "slurm.conf"
        self.partition = "losslab"
        # The jobstep plugin runs `srun` inside each job with every SLURM_* variable removed, SLURM_CONF too: a real
        # node reads /etc/slurm/slurm.conf. Rather than write there, client commands on PATH that set SLURM_CONF.
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        for cmd in ("srun", "sbatch", "squeue", "scancel", "sinfo", "scontrol", "sacct", "sacctmgr", "sshare"):
            real = shutil.which(cmd)
            if real:
                (bin_dir / cmd).write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
                (bin_dir / cmd).chmod(0o755)
        self.env = {**os.environ, "SLURM_CONF": str(self.conf),
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def log_tail(self, n: int = 3000) -> str:
        out = []
        for f in sorted(self.dir.glob("*.log")):
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-n:]}")
        return "\n".join(out)

    def start(self):
        import pwd

        munge = pwd.getpwnam("munge")
        mdir = self.dir / "munge"
        mdir.mkdir()
        mdir.chmod(0o755)  # munged: the socket directory must be searchable by all, writable by munge only
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        for p in (mdir, key):
            os.chown(p, munge.pw_uid, munge.pw_gid)
        socket_path = mdir / "munge.socket"
        with open(self.dir / "munged.log", "wb") as log:
            self.procs["munged"] = subprocess.Popen(
                ["munged", "--foreground", f"--key-file={key}", f"--socket={socket_path}",
                 f"--pid-file={mdir / 'munged.pid'}", f"--seed-file={mdir / 'munged.seed'}",
                 f"--log-file={mdir / 'munged.log'}", "--num-threads=2"],
                user=munge.pw_uid, group=munge.pw_gid, stdout=log, stderr=subprocess.STDOUT)
        self._wait(lambda: socket_path.exists(), "munged's socket", 20)

        node = self._node_line()
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir()
        self.conf.write_text(f"""\
ClusterName=losslab
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={socket_path}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldPidFile={self.dir}/slurmctld.pid
SlurmdPidFile={self.dir}/slurmd.pid
StateSaveLocation={self.dir}/state
SlurmdSpoolDir={self.dir}/spool
SlurmctldLogFile={self.dir}/slurmctld.log
SlurmdLogFile={self.dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName={host} NodeAddr=127.0.0.1 {node} State=UNKNOWN
PartitionName={self.partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        for name, cmd in (("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)]),
                          ("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", host])):
            with open(self.dir / f"{name}.out", "wb") as out:
                self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self._wait(lambda: self.sinfo() == "idle", "the node to be idle in sinfo", 60)

    def _node_line(self) -> str:
        """This machine's CPUs/sockets/cores/memory as slurmd detects them (`slurmd -C`), without NodeName."""
        out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30, check=False).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("NodeName="))
        return " ".join(tok for tok in line.split() if not tok.startswith("NodeName="))

    def sinfo(self) -> str:
        try:
            proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10,
                                  env=self.env, check=False)
        except subprocess.TimeoutExpired:
            return ""
        return proc.stdout.strip()

    def _wait(self, ready, what: str, seconds: float):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if ready():
                return
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        raise RuntimeError(f"local SLURM: gave up waiting for {what} (exited: "
                           f"{[n for n, p in self.procs.items() if p.poll() is not None]})\n{self.log_tail()}")

    def stop(self):
        """Cancel every job of this cluster, then stop the daemons by pid (slurmd, slurmctld, munged)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--partition", self.partition], env=self.env, capture_output=True,
                           timeout=30, check=False)
            end = time.monotonic() + 20
            while time.monotonic() < end:
                q = subprocess.run(["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True,
                                   timeout=10, check=False)
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


@pytest.fixture(scope="module")  # the daemons stop when this file's tests are done
def local_slurm():
    reason = _install_slurm()
    if reason:
        pytest.skip(reason)
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')")
    cluster = LocalSlurm()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.dir, ignore_errors=True)


# The part of the smoke DAG run through SLURM (SMALL experiments), one job of every kind that is submitted:
#   train (3 runs: hessian_classes, skip_depth/d8_skip, connectivity/w025); hessian_outliers_claim (Hessian
#   spectra and a claim verdict); surface_shard x2 -> surface (a filter-normalized surface merged from shards) ->
#   surface_figures (a localrule, drawn by the Snakemake process itself as `report` and `figures` are);
#   curve -> curve_eval (a Bezier curve between two modes and its loss along t). 11 sbatch jobs at the time of
#   writing (hessian_classes has three variants).
# Not run through SLURM: `report` (a localrule that needs every claim's verdict, i.e. all 125 jobs of the small
# DAG: several minutes of per-job start-up on 2 cores) and the other claim rules (same kind as the one above).
def slurm_targets(res: str) -> list[str]:
    return [
        f"{res}/claims/hessian-bulk-outliers/verdict.json",
        f"{res}/surfaces/skip_depth/d8_skip/seed0/figures/surface/contour.png",
        f"{res}/curves/connectivity/w025/bezier/curve.h5",
    ]


SUBMITTED_RULES = {"train", "hessian_outliers_claim", "surface_shard", "surface", "curve", "curve_eval"}


def run_config(workdir: Path) -> Path:
    """SMALL with small memory requests (the local node must fit two jobs at once)."""
    cfg = workdir / "small_slurm.yaml"
    cfg.write_text(yaml.safe_dump({**SMALL, "compute": {"default": {"mem_mb": 1000, "runtime": 30, "gpu": 0}}}))
    return cfg


def submitted_job_count(output: str) -> int:
    """The jobs of Snakemake's "Job stats" table that are not localrules."""
    table = output[output.index("Job stats:"):]
    counts = re.findall(r"^(\w+)\s+(\d+)\s*$", table.split("\ntotal")[0], re.MULTILINE)
    return sum(int(n) for rule, n in counts if rule not in LOCAL_RULES)


@pytest.mark.dag
@pytest.mark.slurm
def test_smoke_dag_part_through_slurm_equals_a_local_run(small_dag, local_slurm, tmp_path):
    """The targets above through `--profile profiles/slurm` (executor slurm) on the local SLURM: every job is
    submitted with sbatch and runs under srun; every number equals the local small DAG's (same SMALL config,
    one torch thread per job in both), HDF5 arrays bitwise."""
    local_dir, _ = small_dag
    slurm_dir = tmp_path / "slurm"
    slurm_dir.mkdir()
    res = "results/smoke"
    cores = str(os.cpu_count() or 1)
    cmd = ["timeout", "-s", "KILL", "900", sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE),
           "--directory", str(slurm_dir), *slurm_targets(res), "--profile", str(PROFILE),
           "--configfile", str(run_config(slurm_dir)),
           "--cores", cores,        # for the localrules (and grouped jobs) on this node
           "--jobs", "9",           # more than the node's CPUs: SLURM queues them and starts each at once
           "--retries", "0", "--slurm-keep-successful-logs",
           "--slurm-init-seconds-before-status-checks", "1"]  # the profile's partition: the default one
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=local_slurm.env, timeout=1000, check=False)
    wall = time.monotonic() - t0
    slurm_logs = slurm_dir / ".snakemake" / "slurm_logs"
    logs = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(slurm_logs.rglob("*.log")))
    assert proc.returncode == 0, (f"exit {proc.returncode} after {wall:.0f} s\n" + proc.stdout[-3000:]
                                  + proc.stderr[-5000:] + logs[-6000:] + local_slurm.log_tail())
    print(f"SLURM run: {wall:.1f} s")

    # every job but the localrule went through sbatch: one SLURM log per job, under rule_<name>/
    submitted = sorted(p.relative_to(slurm_logs).parts[0] for p in slurm_logs.rglob("*.log"))
    assert {s.removeprefix("rule_") for s in submitted} == SUBMITTED_RULES, submitted
    n_jobs = submitted_job_count(proc.stdout + proc.stderr)
    ctld = (local_slurm.dir / "slurmctld.log").read_text()
    assert len(submitted) == n_jobs == ctld.count("_slurm_rpc_submit_batch_job"), (submitted, n_jobs)
    assert set(re.findall(r"Partition=(\S+)", ctld)) == {local_slurm.partition}  # the cluster's default

    # the same numbers as the local small DAG, compared as tests/pipeline/test_determinism.py compares two runs: JSON
    # line by line without the wall-clock fields, HDF5 datasets bitwise (NaN where NaN), other files byte for byte
    a, b = local_dir / res, slurm_dir / res
    files = result_files(b)
    names = {Path(f).name for f in files}
    assert {"verdict.json", "metrics.json", "spectra.h5", "surface.h5", "curve.h5", "contour.png"} <= names, names
    assert set(files) <= set(result_files(a)), sorted(set(files) - set(result_files(a)))
    problems = [p for p in differences(a, b) if not p.startswith("different files")]
    assert not problems, f"{len(problems)} differences from the local run:\n  " + "\n  ".join(problems[:40])
