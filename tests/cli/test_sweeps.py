"""Sweeps a researcher can leave overnight, through the real command: a failed job does not end the sweep,
resume needs only the folder, job names show what varies, any path works, typos are one line."""

import csv
import shutil

import pytest
import torch
from conftest import SHALLOW, SMOKE, differing_hparams, events, hparams_of, make_image, run_cli, written

from stylelab.cli import sweep as sweeps
from stylelab.sweeps.read import ERROR_FILE

FAST = [*SMOKE, *SHALLOW, "steps=2"]


def job_dirs(sweep):
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def summary_rows(sweep):
    proc = run_cli_tool("stylelab-summary", str(sweep))
    assert proc.returncode == 0, proc.stderr
    return list(csv.DictReader((sweep / "summary.csv").open())), (sweep / "summary.md").read_text()


def run_cli_tool(tool, *args):
    import subprocess
    import sys

    module = {"stylelab-summary": "summary", "stylelab-figure": "figure"}[tool]
    return subprocess.run(
        [sys.executable, "-c", f"import sys; from stylelab.cli.{module} import main; main(sys.argv[1:])", *args],
        capture_output=True,
        text=True,
    )


# ---------------------------------------------------------------- a failed job


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=2"]], ids=["basic", "joblib"]
)
def test_a_failed_job_does_not_end_the_sweep(tmp_path, content_png, style_png, launcher):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        *launcher,
        f"content={content_png}",
        f"style={style_png}",
        *FAST,
        "loss.beta=1,-1,2",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"stylelab: sweep {sweep}: 3 jobs: 2 done, 1 failed, 0 not started; "
        "failed: loss.beta=-1 (loss.beta must be >= 0, not -1.0)"
    )
    assert [p.name for p in job_dirs(sweep)] == ["loss.beta=-1", "loss.beta=1", "loss.beta=2"]
    failed = sweep / "loss.beta=-1"
    assert (failed / ERROR_FILE).read_text().startswith("loss.beta must be >= 0, not -1.0")
    assert not (failed / "final.png").exists()
    acc = events(failed)
    assert "loss.beta must be >= 0" in acc.Tensors("error/text_summary")[0].tensor_proto.string_val[0].decode()
    assert hparams_of(failed)["loss.beta"] == "-1"  # listed in the HParams tab, as typed, with status failure
    for name in ("loss.beta=1", "loss.beta=2"):
        assert (sweep / name / "final.png").is_file()

    rows, md = summary_rows(sweep)
    assert [(r["job"], r["loss.beta"], r["status"]) for r in rows] == [
        ("0", "1", "done"),
        ("1", "-1", "failed: loss.beta must be >= 0, not -1.0"),
        ("2", "2", "done"),
    ]
    shared = next(line for line in md.splitlines() if line.startswith("All jobs:"))
    assert "loss.beta" not in shared and "steps=2" in shared


@pytest.mark.slow
def test_the_summary_lists_jobs_that_never_started(tmp_path, content_png, style_png):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png}",
        *FAST,
        "loss.alpha=1,2",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"stylelab: sweep {sweep}: 4 jobs: 4 done, 0 failed, 0 not started"
    shutil.rmtree(sweep / "loss.alpha=2,seed=0")  # as if the sweep had been stopped before it
    rows, md = summary_rows(sweep)
    assert [(r["loss.alpha"], r["seed"], r["status"]) for r in rows] == [
        ("1", "0", "done"),
        ("1", "1", "done"),
        ("2", "0", "not started"),
        ("2", "1", "done"),
    ]
    assert "`steps=2`" in md and "loss.alpha=" not in md.split("|")[0]


# ---------------------------------------------------------------- resume from a folder alone


@pytest.mark.slow
def test_resume_needs_only_the_run_folder(tmp_path, content_png, style_png):
    common = [f"content={content_png}", f"style={style_png}", *SMOKE, *SHALLOW, "loss.beta=5e3"]
    run_dir = tmp_path / "run"
    proc = run_cli(*common, "steps=2", "checkpoint_every=2", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr

    before = written(run_dir)
    proc = run_cli(f"resume={run_dir}", "loss.beta=6e3")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"stylelab: error: cannot resume {run_dir}: it was made with loss.beta=5000.0, and this command line sets "
        "loss.beta=6000.0; only steps and settings that do not change the picture (device, logging, speed "
        "switches) may change"
    )
    assert written(run_dir) == before  # nothing written

    proc = run_cli(f"resume={run_dir}", "steps=4", "log.progress=false", "device=cpu")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run_dir} at step 2" in proc.stdout and "after 4 steps" in proc.stdout
    whole = tmp_path / "whole"
    assert run_cli(*common, "steps=4", f"hydra.run.dir={whole}").returncode == 0
    assert (run_dir / "final.png").read_bytes() == (whole / "final.png").read_bytes()


@pytest.mark.slow
def test_resume_a_sweep_runs_only_the_jobs_that_did_not_finish(tmp_path, content_png, style_png):
    sweep, late = tmp_path / "sweep", tmp_path / "late.png"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png},{late}",
        *FAST,
        "checkpoint_every=1",
        "loss.beta=1e2,1e3",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 1  # the two jobs with the missing style failed
    assert [p.name for p in job_dirs(sweep)] == [
        "style=late.png,loss.beta=1e2",
        "style=late.png,loss.beta=1e3",
        "style=style.png,loss.beta=1e2",
        "style=style.png,loss.beta=1e3",
    ]
    done = sweep / "style=style.png,loss.beta=1e2"
    killed = sweep / "style=style.png,loss.beta=1e3"
    (killed / "final.png").unlink()  # killed after its last checkpoint, before its summary
    shutil.rmtree(killed)
    shutil.rmtree(sweep / "style=late.png,loss.beta=1e3")  # never started
    make_image(late, seed=5)  # the missing style is there now
    untouched = written(done)

    proc = run_cli(f"resume={sweep}")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming 3 of the 4 jobs of {sweep}" in proc.stdout
    assert written(done) == untouched
    rows, _ = summary_rows(sweep)
    assert [r["status"] for r in rows] == ["done"] * 4
    assert not list(sweep.rglob(ERROR_FILE))


# ---------------------------------------------------------------- run names


@pytest.mark.slow
def test_sweep_jobs_are_named_by_what_varies_as_typed(tmp_path, content_png, style_png, random_weights_file):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png}",
        "image.size=48",
        "log.progress=false",
        "steps=2",
        "log.every=1",
        "loss.beta=1e3,1e4",
        "loss.style_layers=[relu1_1],[relu1_1,relu2_1]",
        "model.weights=random",
        "loss.content_layers=[relu2_1]",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in job_dirs(sweep)] == [
        "loss.beta=1e3,loss.style_layers=[relu1_1,relu2_1]",
        "loss.beta=1e3,loss.style_layers=[relu1_1]",
        "loss.beta=1e4,loss.style_layers=[relu1_1,relu2_1]",
        "loss.beta=1e4,loss.style_layers=[relu1_1]",
    ]
    job = sweep / "loss.beta=1e3,loss.style_layers=[relu1_1]"
    assert "content=" in (job / ".hydra" / "overrides.yaml").read_text()  # the constants stay recorded
    assert hparams_of(job)["image.size"] == 48
    assert differing_hparams(job) == {"loss.beta", "loss.style_layers"}  # TensorBoard shows them first

    weights = tmp_path / "vgg19_very_long_file_name_of_someones_converted_weights_version_2_final.pth"
    torch.save(torch.load(random_weights_file, weights_only=True), weights)
    sweep = tmp_path / "seeds"
    proc = run_cli(
        "-m",
        f"content={content_png}",
        f"style={style_png}",
        *FAST[1:],
        f"model.weights={weights}",
        "model.format=torchvision",
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
    )
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in job_dirs(sweep)] == ["seed=1", "seed=2"]


def test_the_plan_reads_the_sweep_as_hydra_runs_it():
    from omegaconf import OmegaConf

    multirun = OmegaConf.create(
        {
            "hydra": {
                "sweeper": {
                    "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
                    "params": {"loss/style": "gram,w2"},
                },
                "overrides": {"task": ["loss.beta=1e3,5e-1", "image.size=64", "style=/a/b c.jpg,'/d/e,f.jpg'"]},
            }
        }
    )
    jobs = sweeps.plan(multirun, "sweep")
    assert [job.name for job in jobs][:3] == [
        "loss-style=gram,loss.beta=1e3,style=b c.jpg",
        "loss-style=gram,loss.beta=1e3,style=e,f.jpg",
        "loss-style=gram,loss.beta=5e-1,style=b c.jpg",
    ]
    assert len(jobs) == 8 and jobs[0].overrides[:2] == ["loss/style=gram", "loss.beta=1000.0"]
    assert sweeps.split_top_level("1e3,[a,b],'x,y',(1,2)") == ["1e3", "[a,b]", "'x,y'", "(1,2)"]


# ---------------------------------------------------------------- paths


@pytest.mark.slow
def test_paths_as_the_shell_passes_them(tmp_path):
    photos = tmp_path / "my photos"
    photos.mkdir()
    content, style = make_image(photos / "Straße 1.png", seed=1), make_image(photos / "tête (2),v.png", seed=2)
    run_dir = tmp_path / "run dir é"
    proc = run_cli(f"content={content}", f"style={style}", *FAST, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "final.png").is_file()
    proc = run_cli(f"resume={run_dir}", "steps=3", "log.progress=false")  # no checkpoint: it starts over
    assert proc.returncode == 0, proc.stderr
    assert "starts over" in proc.stdout and "after 3 steps" in proc.stdout

    sweep = tmp_path / "sweep"
    other = make_image(photos / "Ölbild.png", seed=3)
    proc = run_cli("-m", f"content={content}", f"style={style},{other}", *FAST, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in job_dirs(sweep)] == ["style=tête (2),v.png", "style=Ölbild.png"]


def test_path_lists_are_quoted_and_a_value_that_needs_quotes_says_how(tmp_path):
    from stylelab.cli.argv import quote_path

    assert quote_path("style=[/my photos/a.jpg,Straße.jpg]") == "style=['/my photos/a.jpg','Straße.jpg']"
    assert quote_path(f"content={tmp_path}") == f"content='{tmp_path}'"  # exists: taken as it is
    assert quote_path("loss.beta=1e3,1e4") == "loss.beta=1e3,1e4"  # not a path: Hydra's grammar as usual
    proc = run_cli("figure.title=Fig 3 (B)", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "stylelab: error: cannot read 'figure.title=Fig 3 (B)': a value with special "
        "characters needs quotes, e.g. \"figure.title='Fig 3 (B)'\" (the double quotes "
        "are for the shell)"
    )


# ---------------------------------------------------------------- typos


@pytest.mark.parametrize(
    "args,message",
    [
        (["loss.alpah=1"], "no setting loss.alpah; did you mean loss.alpha?"),
        (
            ["optimizer=adm"],
            "no option adm in group optimizer; choose adam, lbfgs or lbfgs_torch (did you mean optimizer=adam?)",
        ),
        (
            ["loss/style=w3"],
            "no option w3 in group loss/style; choose gram, mean_std, sliced_w2 or w2 (did you mean loss/style=w2?)",
        ),
        (["loss/stlye=w2"], "no config group loss/stlye; did you mean loss/style?"),
        (["loss.alpha=abc"], "loss.alpha=abc: 'abc' is not a number"),
        (["model.pooling=median"], "model.pooling=median: 'median' is not one of avg, max"),
        (["-m", "loss.beta=1,2", "imag.size=3"], "no setting imag.size; did you mean image.size?"),
        (
            ["-m", "optimizer=adam,adm"],
            "no option adm in group optimizer; choose adam, lbfgs or lbfgs_torch (did you mean optimizer=adam?)",
        ),
    ],
)
def test_a_typo_is_one_line_with_a_suggestion(args, message):
    from stylelab.cli.argv import prepare
    from stylelab.errors import StyleLabError

    with pytest.raises(StyleLabError) as err:
        prepare(args)  # what the command does with its arguments before Hydra
    assert str(err.value) == message


@pytest.mark.parametrize("args", [["loss.alpah=1"], ["-m", "optimizer=adam,adm"]], ids=["run", "sweep"])
def test_the_command_prints_the_typo_in_one_line_and_exits_2(tmp_path, args):
    proc = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2
    assert proc.stderr.strip() in (
        "stylelab: error: no setting loss.alpah; did you mean loss.alpha?",
        "stylelab: error: no option adm in group optimizer; choose adam, lbfgs or lbfgs_torch "
        "(did you mean optimizer=adam?)",
    )
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()


def test_hydra_full_error_still_shows_everything(tmp_path):
    proc = run_cli("loss.alpah=1", f"hydra.run.dir={tmp_path / 'run'}", env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "alpah" in proc.stderr
