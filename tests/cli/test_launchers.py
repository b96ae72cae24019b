"""Launcher presets: configs/hydra/launcher/{local_parallel,slurm}.yaml compose, and a parallel joblib sweep runs."""

import csv
import importlib.util

import pytest
from conftest import REPO, SHALLOW, SMOKE, hparams_of, run_cli
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stylelab.sweeps import summary

HAS_JOBLIB = importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None
HAS_SUBMITIT = importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None


def launcher_cfg(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True).hydra.launcher


@pytest.mark.skipif(not HAS_JOBLIB, reason="hydra-joblib-launcher is not installed (pip install stylelab[parallel])")
def test_local_parallel_preset_is_joblib_with_settable_jobs():
    launcher = launcher_cfg("hydra/launcher=local_parallel", "hydra.launcher.n_jobs=3")
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 3


@pytest.mark.skipif(not HAS_SUBMITIT, reason="hydra-submitit-launcher is not installed (pip install stylelab[slurm])")
def test_slurm_preset_settings_and_overrides():
    launcher = launcher_cfg("hydra/launcher=slurm")
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.timeout_min, launcher.gpus_per_node, launcher.array_parallelism) == (60, 1, 16)
    assert launcher.max_num_timeout > 0  # or a timed-out job is not requeued
    launcher = launcher_cfg(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=5",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.cpus_per_task=8",
        "hydra.launcher.array_parallelism=4",
    )
    assert (
        launcher.partition,
        launcher.timeout_min,
        launcher.gpus_per_node,
        launcher.cpus_per_task,
        launcher.array_parallelism,
    ) == ("gpu", 5, 2, 8, 4)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_JOBLIB, reason="hydra-joblib-launcher is not installed (pip install stylelab[parallel])")
def test_joblib_sweep_runs_two_jobs_in_two_processes(tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "hydra/launcher=local_parallel",
        "hydra.launcher.n_jobs=2",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=3",
        "loss.beta=1e2,1e3",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Joblib.Parallel(n_jobs=2" in proc.stderr + proc.stdout
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["loss.beta=1e2", "loss.beta=1e3"]
    pids = set()
    for job, beta in zip(jobs, ("1e2", "1e3")):
        assert (job / "final.png").is_file()
        assert hparams_of(job)["loss.beta"] == beta  # as typed
        acc = EventAccumulator(str(job))
        acc.Reload()
        assert [e.step for e in acc.Scalars("loss/total")][-1] == 3
        # event files are named ...tfevents.<time>.<host>.<pid>.<n>: the pid of the process that ran the job
        pids |= {p.name.split(".")[-2] for p in (job).glob("events*")}
    assert len(pids) == 2
    table = list(csv.DictReader(summary.summarize(sweep)["csv"].open()))
    assert [(row["status"], row["steps done"]) for row in table] == [("done", "3"), ("done", "3")]
