"""Sweeps through Hydra's submitit launcher on a real single-node SLURM cluster, brought up on localhost.

scripts/slurm/up.sh starts munged, slurmctld and slurmd with every file in a temp folder (on free ports,
so it does not meet another local cluster); scripts/slurm/down.sh stops them. Needs root, Debian's
slurm-wlm and munge packages and hydra-submitit-launcher; skipped otherwise.
"""

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
from conftest import REPO, SHALLOW, SMOKE, hparams_of, run_cli, run_job
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_launchers import HAS_SUBMITIT

SCRIPTS = REPO / "scripts" / "slurm"
_TOOLS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "scancel")
_SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_MISSING = [tool for tool in _TOOLS if shutil.which(tool, path=_SBIN) is None]

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(bool(_MISSING), reason=f"no {', '.join(_MISSING)} here (apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the local SLURM cluster needs root (scripts/slurm/up.sh)"),
    pytest.mark.skipif(
        not HAS_SUBMITIT, reason="hydra-submitit-launcher is not installed (pip install stylelab[slurm])"
    ),
]
# a CPU-only job per sweep point; 1 CPU each, so the 2-CPU node runs two at once
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.timeout_min=10",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """The environment (SLURM_CONF, PATH with the sacct stand-in) of a fresh local cluster."""
    # not under pytest's tmp folder: munged wants every folder above its socket open to all (it is 0700)
    state = Path(tempfile.mkdtemp(prefix="stylelab-slurm-", dir="/tmp"))
    env = {
        **os.environ,
        "PATH": f"{SCRIPTS / 'bin'}{os.pathsep}{_SBIN}",
        "SLURM_LOCAL_CTLD_PORT": str(_free_port()),
        "SLURM_LOCAL_SLURMD_PORT": str(_free_port()),
    }
    up = subprocess.run([str(SCRIPTS / "up.sh"), str(state)], capture_output=True, text=True, env=env, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        env["SLURM_CONF"] = re.search(r"^export SLURM_CONF=(\S+)$", up.stdout, re.M).group(1)
        yield env
    finally:
        subprocess.run([str(SCRIPTS / "down.sh"), str(state)], capture_output=True, env=env, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def tb(job: Path) -> EventAccumulator:
    acc = EventAccumulator(str(job), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_four_job_alpha_beta_sweep_runs_on_slurm(cluster, tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        *LAUNCHER,
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=3",
        "loss.alpha=1,2",
        "loss.beta=1e2,1e3",
        f"hydra.sweep.dir={sweep}",
        env=cluster,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4
    seen = set()
    for job in jobs:
        alpha, beta = re.fullmatch(r"loss\.alpha=(\d+),loss\.beta=(1e\d)", job.name).groups()  # as typed
        with Image.open(job / "final.png") as im:
            assert im.size == (48, 40)
        hp = hparams_of(job)
        assert (hp["loss.alpha"], hp["loss.beta"]) == (alpha, beta)  # HParams shows swept values as typed
        assert [e.step for e in tb(job).Scalars("loss/total")][-1] == 3
        seen.add((hp["loss.alpha"], hp["loss.beta"]))
    assert seen == {("1", "1e2"), ("1", "1e3"), ("2", "1e2"), ("2", "1e3")}
    # they ran as SLURM jobs: submitit's per-job logs say so
    logs = [p.read_text() for p in sweep.glob(".submitit/*/*_log.out")]
    assert len(logs) == 4 and all("Job completed successfully" in log for log in logs)
    assert proc.stdout.strip().splitlines()[-1] == f"stylelab: sweep {sweep}: 4 jobs: 4 done, 0 failed, 0 not started"


def test_a_failed_job_on_slurm_is_recorded_and_reported(cluster, tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        *LAUNCHER,
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=2",
        "loss.beta=1e2,-1",
        f"hydra.sweep.dir={sweep}",
        env=cluster,
        timeout=600,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"stylelab: sweep {sweep}: 2 jobs: 1 done, 1 failed, 0 not started; failed: loss.beta=-1 "
        "(loss.beta must be >= 0, not -1.0)"
    )
    assert (sweep / "loss.beta=-1" / "error.txt").is_file() and (sweep / "loss.beta=1e2" / "final.png").is_file()


def test_preempted_job_checkpoints_requeues_and_resumes_exactly(cluster, tmp_path, content_png, style_png):
    steps = 200  # long enough that the signal lands mid-run, at about 20 ms a step on an idle CPU
    common = [f"content={content_png}", f"style={style_png}", *SMOKE, *SHALLOW, f"steps={steps}", "log.every=20"]
    # step PNGs (they do not change the picture) show that the job has taken a step: signalled before its
    # first step, under a loaded machine, it stopped "after 0 steps" and tested nothing
    sweep = tmp_path / "sweep"
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stylelab.cli",
            "-m",
            *LAUNCHER,
            *common,
            "save_every=1",
            f"hydra.sweep.dir={sweep}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=cluster,
    )
    try:
        deadline = time.time() + 300
        while not list(sweep.glob("*/step_00001.png")) and time.time() < deadline:
            time.sleep(0.2)
        running = subprocess.run(
            ["squeue", "-h", "-t", "running", "-o", "%i"], capture_output=True, text=True, env=cluster
        ).stdout.split()
        assert len(running) == 1, running
        # what SLURM sends before a preemption or the time limit (submitit asks for --signal=USR2@...)
        subprocess.run(["scancel", f"--signal={signal.SIGUSR2.name[3:]}", running[0]], check=True, env=cluster)
        out, err = launcher.communicate(timeout=500)
    finally:
        launcher.kill()
    assert launcher.returncode == 0, err

    job = next(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    log = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.out"))
    stopped = re.search(r"stopped by SIGUSR2 after (\d+) steps", log)
    assert stopped, log
    k = int(stopped.group(1))
    assert 0 < k < steps, "the signal came too late to test anything"
    assert "Requeued job" in log and f"resuming {job} at step {k}" in log
    assert f"final.png after {steps} steps" in log
    acc = tb(job)
    assert [e.step for e in acc.Scalars("loss/total")] == list(range(0, steps + 1, 20))  # none twice, none missing
    assert [e.step for e in acc.Scalars("summary/total")] == [steps]
    # the same picture as a run that never stopped
    run_job(tmp_path / "whole", *common)
    assert (job / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
