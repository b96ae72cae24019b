"""Nothing silent, nothing lost: each mistake or mishap the real command meets is one sentence and a non-zero
exit, and leaves nothing half-made behind (each test runs `stylelab` in a subprocess)."""

import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import OFFLINE_ENV, REPO, SHALLOW, SMOKE, api, build, make_image, run_cli, run_job
from PIL import Image

from stylelab import memory
from stylelab.errors import StyleLabError

ROOT = os.geteuid() == 0


def one_sentence(proc, start="stylelab: error: "):
    """The error is the last line of stderr, starts as the command's errors do, and there is no traceback."""
    lines = [line for line in proc.stderr.strip().splitlines() if "NOT meaningful art" not in line]
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    assert lines[0].startswith(start), lines[0]
    return lines[0].removeprefix(start)


@pytest.fixture
def images(tmp_path):
    return [f"content={make_image(tmp_path / 'c.png', seed=1)}", f"style={make_image(tmp_path / 's.png', seed=2)}"]


# ---------------------------------------------------------------- divergence


@pytest.mark.slow
def test_a_diverging_run_stops_at_once_keeping_its_last_finite_image(tmp_path, images):
    run_dir = tmp_path / "run"
    proc = run_cli(*images, *SMOKE, "steps=50", "optimizer=adam", "optimizer.lr=1e30", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 1
    message = one_sentence(proc)
    assert message.startswith("the loss became ") and "at step 1, so the optimisation diverged" in message
    assert "final.png and checkpoint.pt hold step 0" in message
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 0
    with Image.open(run_dir / "final.png") as im:
        assert max(im.convert("L").getextrema()) > 0  # the initial noise, not a black picture
    # in a sweep the job counts as failed, and the other one runs
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m", *images, *SMOKE, "steps=3", "optimizer=adam", "optimizer.lr=0.02,1e30", f"hydra.sweep.dir={sweep}"
    )
    assert proc.returncode == 1 and "2 jobs: 1 done, 1 failed" in proc.stderr
    assert "optimizer.lr=1e30 (the loss became" in proc.stderr


@pytest.mark.parametrize(
    "override,message",
    [
        ("loss.beta=inf", "loss.beta must be a finite number, not inf"),
        ("loss.alpha=nan", "loss.alpha must be a finite number, not nan"),
        ("loss.tv_weight=-1", "loss.tv_weight must be >= 0, not -1.0"),
        ("optimizer.lr=inf", "optimizer.lr must be a finite number, not inf"),
        ("loss.style_weights=[1,2,inf,1,1]", "the style weight of relu3_1 must be a number >= 0, not inf"),
        ("style_scale=inf", "style_scale must be > 0, not inf"),
    ],
)
def test_every_weight_must_be_finite(tmp_path, images, override, message):
    with pytest.raises(StyleLabError) as err:
        run_job(tmp_path / "run", *images, *SMOKE, override)
    assert str(err.value) == message and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- memory


@pytest.mark.slow  # a few CLI processes: seconds each
def test_a_run_that_cannot_fit_is_refused_before_anything_heavy(tmp_path, images):
    proc = run_cli(*images, *SMOKE, "image.size=64", "style_scale=1000", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    message = one_sentence(proc)
    assert message.startswith("this run needs about ") and "the biggest part is the style's responses" in message
    assert message.endswith("makes it fit") and "style_scale=" in message
    assert not (tmp_path / "run").exists()


def test_the_setting_suggested_makes_it_fit(tmp_path, images, monkeypatch):
    """With 6 GB free, a 1024 px L-BFGS run is refused; the history it names fits, without a warning."""
    monkeypatch.setattr(memory, "available", lambda device: 6e9)
    with pytest.raises(StyleLabError) as err:
        run_job(tmp_path / "run", *images, *SMOKE, "image.size=1024")
    message = str(err.value)
    assert "the biggest part is L-BFGS's history" in message, message
    fix = message.split("; ")[-1].removesuffix(" makes it fit")
    assert fix.startswith("optimizer.history_size=")
    cfg, choices = api.compose_with_choices(*images, *SMOKE, "image.size=1024", fix)
    parts = build.build(cfg, choices)
    from stylelab import levels

    read = levels.read_pictures(parts.inputs, parts.colour)
    assert memory.for_run(parts, read, torch.device("cpu")) is None


@pytest.mark.slow
def test_the_estimate_is_near_the_measured_peak(tmp_path):
    """A fresh process: its peak RSS after a 768 px Adam run, against the estimate made before it."""
    code = """
import json, resource, sys, torch, warnings
warnings.simplefilter("ignore")
from stylelab import api, build, levels, loop, memory
pictures = {"content": torch.rand(3, 576, 768), "style": torch.rand(3, 576, 768)}
cfg, choices = api.compose_with_choices("model.weights=random", "optimizer=adam", "log.progress=false", "steps=2",
                                        "image.size=768")
parts = build.build(cfg, choices)
read = levels.read_pictures(parts.inputs, parts.colour, pictures)
monkey = memory.available
memory.available = lambda device: 1e6  # only to get the estimate out of the check
try:
    memory.for_run(parts, read, torch.device("cpu"))
except Exception as exc:
    estimate = float(str(exc).split("about ")[1].split(" GB")[0])
memory.available = monkey
loop.run(build.build(cfg, choices), None, pictures=pictures, stop=lambda: None)
print(json.dumps({"estimate": estimate, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    import json

    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["estimate"] == pytest.approx(found["peak"], rel=0.15), found


# ---------------------------------------------------------------- folders


@pytest.mark.parametrize(
    "where,reason",
    [
        ("/proc/stylelab/run", "cannot make the run folder '/proc/stylelab/run': no folder can be made in '/proc'"),
        ("{file}/run", "cannot make the run folder '{file}/run': '{file}' is a file, not a folder"),
        ("{file}", "cannot make the run folder '{file}': it is a file, not a folder"),
    ],
)
@pytest.mark.slow  # a few CLI processes: seconds each
def test_a_folder_that_cannot_be_made_is_one_sentence(tmp_path, images, where, reason):
    file = tmp_path / "a file"
    file.write_text("in the way")
    where, reason = where.format(file=file), reason.format(file=file)
    proc = run_cli(*images, *SMOKE, "steps=1", f"hydra.run.dir={where}")
    assert proc.returncode == 2 and one_sentence(proc).startswith(reason)


@pytest.mark.slow  # a few CLI processes: seconds each
@pytest.mark.skipif(not ROOT, reason="chattr +i and mount need root")
def test_a_read_only_folder_and_a_full_disk(tmp_path, images):
    locked = tmp_path / "locked"
    locked.mkdir()
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        proc = run_cli(*images, *SMOKE, "steps=1", f"hydra.run.dir={locked / 'run'}")
        assert proc.returncode == 2
        assert one_sentence(proc).startswith(f"cannot make the run folder '{locked / 'run'}': no folder can be made in")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(small)]).returncode:
        pytest.skip("no tmpfs mount here")
    try:
        # too small from the start: refused before anything is written
        proc = run_cli(*images, *SMOKE, "steps=1", "image.size=256", f"hydra.run.dir={small / 'a'}")
        assert proc.returncode == 2 and "its disk has 0.4 MB free, and the run writes about" in one_sentence(proc)
        assert not (small / "a").exists()
        # full in the middle of a run (its step pictures fill it): one sentence, the complete files kept
        proc = run_cli(*images, *SMOKE, "image.size=64", "steps=400", "save_every=1", f"hydra.run.dir={small / 'b'}")
        assert proc.returncode == 2
        assert "no space left on device" in one_sentence(proc)
        assert not [p for p in small.rglob("*") if p.name.endswith(".tmp")]
        for picture in (small / "b").glob("step_*.png"):
            Image.open(picture).verify()  # every picture left is whole
    finally:
        subprocess.run(["umount", str(small)], check=True)


# ---------------------------------------------------------------- resume


@pytest.mark.slow  # a few CLI processes: seconds each
def test_resume_of_no_folder_or_of_a_folder_that_is_no_run(tmp_path):
    proc = run_cli(f"resume={tmp_path / 'nope'}")
    assert proc.returncode == 2
    assert (
        one_sentence(proc)
        == f"no such run folder '{tmp_path / 'nope'}': resume= takes the folder of a run or of a sweep"
    )
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.txt").write_text("mine")
    proc = run_cli(f"resume={tmp_path / 'photos'}")
    assert proc.returncode == 2 and "is not a stylelab run folder" in one_sentence(proc)
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["a.txt"]  # nothing written into it


@pytest.mark.slow
def test_a_run_folder_is_locked_while_a_process_works_in_it(tmp_path, images):
    run_dir = tmp_path / "run"
    common = [*images, *SMOKE, *SHALLOW, "save_every=1"]
    proc = run_cli(*common, "steps=2", "checkpoint_every=2", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    first = subprocess.Popen(
        [sys.executable, "-m", "stylelab.cli", "resume=" + str(run_dir), "steps=100000"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not (run_dir / "step_00003.png").exists() and time.time() < deadline:  # it is in its loop
            time.sleep(0.1)
        second = run_cli(f"resume={run_dir}", "steps=100000")
        assert second.returncode == 2
        assert one_sentence(second) == (
            f"'{run_dir}' is in use by another stylelab (process {first.pid}); wait until "
            f"it ends or stop it, then run this again"
        )
    finally:
        first.send_signal(2)
        first.communicate(timeout=120)
    step = torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"]
    proc = run_cli(f"resume={run_dir}", f"steps={step + 1}")  # the lock went with the first process
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- offline


@pytest.mark.slow
def test_offline_the_first_run_names_every_missing_file_at_once(tmp_path):
    env = {**OFFLINE_ENV, "STYLELAB_CACHE": str(tmp_path / "cache"), "TORCH_HOME": str(tmp_path / "th")}
    proc = run_cli("image.size=32", f"hydra.run.dir={tmp_path / 'run'}", env=env)
    assert proc.returncode == 2
    message = one_sentence(proc)
    assert message.startswith("3 files could not be downloaded")
    for name, url, digest, folder in [
        (
            "tubingen.jpg",
            "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/"
            "examples/inputs/tubingen.jpg",
            "e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
            tmp_path / "cache" / "images",
        ),
        (
            "starry_night.jpg",
            "https://raw.githubusercontent.com/jcjohnson/neural-style/"
            "07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs/starry_night.jpg",
            "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
            tmp_path / "cache" / "images",
        ),
    ]:
        assert f"{name} from {url} (sha256 {digest}) into {folder}" in message
    assert (
        f"vgg19-dcbb9e9d.pth from https://download.pytorch.org/models/vgg19-dcbb9e9d.pth (sha256 starting "
        f"dcbb9e9d) into {tmp_path / 'th' / 'hub' / 'checkpoints'}"
    ) in message
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- silent surprises


@pytest.mark.parametrize(
    "overrides,message",
    [
        (
            ["schedule.sizes=[64,32]", "schedule.steps=[2,2]"],
            "schedule.sizes must grow from one level to the next (coarse to fine), not [64, 32]",
        ),
        (["+foo=1"], "no setting foo; `stylelab --help` lists the settings"),
        (["+loss.alphaa=1"], "no setting loss.alphaa; did you mean loss.alpha?"),
        (["model.weights={tmp}"], "model.weights={tmp} is a folder; give the weights file itself (a .pth or a .mat)"),
        (
            ["mask.content=[{black}]"],
            "mask.content: mask {black} is black everywhere, so its region is empty (a mask is "
            "white where its region is)",
        ),
    ],
)
@pytest.mark.slow  # a few CLI processes: seconds each
def test_a_surprise_is_refused_in_one_sentence(tmp_path, images, overrides, message):
    black = tmp_path / "black.png"
    Image.new("L", (48, 40), 0).save(black)
    overrides = [o.format(tmp=tmp_path, black=black) for o in overrides]
    proc = run_cli(*images, *SMOKE, "steps=1", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and one_sentence(proc) == message.format(tmp=tmp_path, black=black)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # a few CLI processes: seconds each
def test_empty_style_layers_with_a_style_weight_warn_in_one_line(tmp_path, images):
    proc = run_cli(*images, *SMOKE, "steps=1", "loss.style_layers=[]", "loss.beta=5", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 0, proc.stderr
    assert (
        "stylelab: warning: loss.style_layers is empty, so the style term is left out although loss.beta=5"
        in proc.stderr.splitlines()
    )


# ---------------------------------------------------------------- Ctrl-C in a sweep


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher", [[], ["hydra/launcher=local_parallel", "hydra.launcher.n_jobs=1"]], ids=["basic", "joblib"]
)
def test_ctrl_c_stops_the_whole_sweep_and_resume_finishes_it(tmp_path, images, launcher):
    """Ctrl-C (SIGINT to the terminal's process group) while job 2 of 3 runs: job 2 keeps a checkpoint, job 3
    does not start, the report says so and the exit status is an interrupt's; resume= finishes every job."""
    sweep = tmp_path / "sweep"
    args = ["-m", *launcher, *images, *SMOKE, *SHALLOW, "save_every=1", "steps=2,100000,3", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stylelab.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while not (sweep / "steps=100000" / "step_00003.png").exists() and time.time() < deadline:
        time.sleep(0.1)  # job 2 is inside its loop
    os.killpg(proc.pid, 2)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"stylelab: sweep {sweep}: 3 jobs: 1 done, 1 stopped, 0 failed, 1 not started" in err
    step = torch.load(sweep / "steps=100000" / "checkpoint.pt", weights_only=True)["step"]
    assert step >= 3 and not (sweep / "steps=3").exists()
    proc = run_cli(f"resume={sweep}", f"steps={step + 2}", *launcher)
    assert proc.returncode == 0, proc.stderr
    assert "resuming 2 of the 3 jobs" in proc.stdout
    assert (sweep / "steps=100000" / "final.png").is_file() and (sweep / "steps=3" / "final.png").is_file()


# ---------------------------------------------------------------- a signal at any moment


@pytest.mark.slow
def test_a_sigterm_at_any_moment_leaves_no_half_made_run_folder(tmp_path, images):
    """SIGTERM while torch loads, while Hydra makes the folder, while the network loads, inside the loop: the
    exit status is SIGTERM's, no traceback, and the folder is either not there or a run that resumes."""
    for delay in (0.2, 1.0, 2.5, 4.0, 6.0):
        run_dir = tmp_path / f"run{delay}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "stylelab.cli", *images, *SMOKE, "steps=100000", f"hydra.run.dir={run_dir}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(15)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 143, (delay, err)
        assert "Traceback" not in err, (delay, err)
        if run_dir.exists():
            kept = {p.name for p in run_dir.iterdir()}
            assert {"final.png", "checkpoint.pt", ".hydra"} <= kept, (delay, kept)
            assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
