"""Checkpoints: exact resume (trainer and CLI), TensorBoard continuity, SIGTERM, refusing bad checkpoints."""

import os
import signal

import pytest
import torch
from conftest import SHALLOW, SMOKE, interrupt_after, run_job, written

from stylelab import checkpoint, inits, signals
from stylelab.build import Inputs, Level, Parts, Watch
from stylelab.controls.colour import Colour
from stylelab.errors import StyleLabError
from stylelab.loop import run
from stylelab.losses import FeatureReconstruction, GramLoss, Objective, SlicedW2Loss
from stylelab.models.vgg import VGG
from stylelab.optim import LBFGS, Adam, TorchLBFGS

# ------------------------------------------------------------------ the loop


@pytest.fixture(scope="module")
def problem():
    """Parts whose objective has a term that draws random directions every step (sliced W2), on random weights."""
    terms = {
        "content": FeatureReconstruction({"relu2_1": 1.0}),
        "style": GramLoss({"relu1_1": 0.5, "relu2_1": 0.5}),
        "sliced": SlicedW2Loss({"relu1_1": 1.0}, projections=8, seed=3),
    }
    gen = torch.Generator().manual_seed(0)
    pictures = {"content": torch.rand(3, 24, 20, generator=gen), "style": torch.rand(3, 24, 20, generator=gen)}
    objective = Objective(
        terms,
        {"content": 1.0, "style": 1e3, "sliced": 10.0},
        {"content": "content", "style": "style", "sliced": "style"},
    )
    return objective, pictures


def parts_of(problem, spec, steps=9, levels=None):
    objective, _ = problem
    return Parts(
        VGG("vgg19", weights="random"),
        objective,
        spec,
        inits.noise,
        Colour(),
        levels or [Level(24, 0, steps)],
        Inputs("c", ["s"], [1.0], None, None, False, "simple", 1.0),
        "cpu",
        1,
        False,
        False,
        False,
        0,
        Watch(progress=False),
    )


def stop_after(k: int):
    """A stop() for the loop: asked before every update, it stops the run once k updates are done."""
    asked = iter(range(10**6))
    return lambda: "stopped by test" if next(asked) >= k else None


@pytest.mark.parametrize(
    "spec,k",
    [
        (LBFGS(history_size=4), 5),
        (TorchLBFGS(history_size=4), 5),
        (TorchLBFGS(line_search="strong_wolfe"), 4),
        (Adam(lr=0.05), 4),
        # stops on its own at step 2 (the loss always changes by less than 1e30): resumed at 1, it must too
        (LBFGS(tolerance_change=1e30), 1),
    ],
    ids=["lbfgs-short-history", "lbfgs_torch-short-history", "lbfgs_torch-wolfe", "adam", "lbfgs-tolerance"],
)
def test_stopped_and_resumed_equals_uninterrupted(problem, tmp_path, spec, k):
    _, pictures = problem
    whole = run(parts_of(problem, spec), pictures=pictures, stop=lambda: None)

    first = run(parts_of(problem, spec), tmp_path, pictures=pictures, stop=stop_after(k))
    assert first.steps_done == k and first.interrupted and first.stopped == f"stopped by test after {k} steps"
    # through the file, as a real resume: tensors come back from disk, not shared with the first run
    assert torch.load(tmp_path / checkpoint.FILE, weights_only=True)["step"] == k
    rest = run(parts_of(problem, spec), tmp_path, pictures=pictures, resume=True, stop=lambda: None)

    assert rest.steps_done == whole.steps_done and rest.stopped == whole.stopped
    assert torch.equal(rest.image, whole.image)
    assert torch.equal(rest.final.total, whole.final.total)


def test_checkpoints_resume_exactly_at_and_around_a_level_boundary(problem, tmp_path):
    levels = [Level(16, 0, 3), Level(24, 3, 6)]
    _, pictures = problem
    whole = run(parts_of(problem, LBFGS(), levels=levels), pictures=pictures, stop=lambda: None)
    for k in (2, 3, 4):  # inside the first level, at its end, inside the second
        folder = tmp_path / f"stop{k}"
        run(parts_of(problem, LBFGS(), levels=levels), folder, pictures=pictures, stop=stop_after(k))
        rest = run(parts_of(problem, LBFGS(), levels=levels), folder, pictures=pictures, resume=True, stop=lambda: None)
        assert rest.steps_done == 6 and torch.equal(rest.image, whole.image), k


def test_a_resumed_run_counts_its_time_on(problem, tmp_path):
    _, pictures = problem
    first = run(parts_of(problem, LBFGS(), steps=5), tmp_path, pictures=pictures, stop=stop_after(2))
    more = run(parts_of(problem, LBFGS(), steps=5), tmp_path, pictures=pictures, resume=True, stop=lambda: None)
    assert first.steps_done == 2 and more.steps_done == 5 and more.seconds >= first.seconds


def test_signals_wait_for_the_step_then_go_to_the_handler_that_was_there():
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))  # as submitit's
    sigint_before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup / `&`
    try:
        with signals.StopSignals() as stop:
            assert stop.reason() is None
            os.kill(os.getpid(), signal.SIGUSR2)
            assert stop.reason() == "stopped by SIGUSR2" and calls == []  # held back, not handled yet
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while stopping: at once
        assert signal.getsignal(signal.SIGINT) is sigint_before
        stop.pass_on()
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


# ------------------------------------------------------------------ the CLI


def test_checkpoint_every_writes_a_loadable_checkpoint(tmp_path, content_png, style_png):
    run_job(
        tmp_path / "run",
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=5",
        "checkpoint_every=2",
    )
    payload = torch.load(tmp_path / "run" / checkpoint.FILE, weights_only=True)
    assert payload["step"] == 4 and payload["image"].shape == (1, 3, 40, 48)
    assert len(payload["optimizer"]["state"][0]["old_dirs"]) == 3  # L-BFGS's history after 4 updates
    assert not [p for p in (tmp_path / "run").rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """Images and a run dir holding a checkpoint at step 2 of a 5-step run."""
    from conftest import make_image

    folder = tmp_path_factory.mktemp("stopped")
    content, style = make_image(folder / "content.png", seed=1), make_image(folder / "style.png", size=(40, 56), seed=2)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(signals.StopSignals, "reason", interrupt_after(2))
        run_job(folder / "run", f"content={content}", f"style={style}", *SMOKE, *SHALLOW, "steps=5")
    return folder / "run", content, style


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["image.size=64"], "it was made with image.size=48, but this run has image.size=64"),
        (
            ["loss.style_layers=[relu1_1]"],
            "it was made with loss.style_layers=['relu1_1', 'relu2_1'], but this run has loss.style_layers=['relu1_1']",
        ),
        (["optimizer=adam"], "it was made with optimizer='lbfgs', but this run has optimizer='adam'"),
        (["loss/style=mean_std"], "it was made with loss/style='gram', but this run has loss/style='mean_std'"),
        (["steps=1"], "it is at step 2, beyond steps=1"),
        (["style={content}"], "it was made with another style image"),
    ],
    ids=["size", "layers", "optimizer", "style-loss", "steps", "style-image"],
)
def test_mismatched_checkpoint_is_refused_before_writing(stopped_run, overrides, message):
    run_dir, content, style = stopped_run
    overrides = [o.format(content=content) for o in overrides]
    args = [f"content={content}", f"style={style}", *SMOKE, *SHALLOW, "steps=5", f"resume={run_dir}", *overrides]
    before = written(run_dir)
    with pytest.raises(StyleLabError) as err:
        run_job(run_dir, *args)
    assert str(err.value) == f"cannot resume from '{run_dir / checkpoint.FILE}': {message}"
    assert written(run_dir) == before  # nothing written


def test_corrupt_foreign_and_missing_checkpoints_are_refused(stopped_run, tmp_path):
    run_dir, content, style = stopped_run

    def resume(folder):
        run_job(folder, f"content={content}", f"style={style}", *SMOKE, *SHALLOW, "steps=5", f"resume={folder}")

    path = tmp_path / checkpoint.FILE
    path.write_bytes((run_dir / checkpoint.FILE).read_bytes()[:5000])  # cut short
    with pytest.raises(
        StyleLabError, match=r"^cannot resume from '.*checkpoint.pt': it is not a readable checkpoint \("
    ):
        resume(tmp_path)
    torch.save({"state_dict": torch.zeros(2)}, path)
    with pytest.raises(StyleLabError, match="it is not a stylelab checkpoint$"):
        resume(tmp_path)
    older = torch.load(run_dir / checkpoint.FILE, weights_only=True)
    older["format"] = "stylelab-checkpoint/2"  # the version before the objective became a list of terms
    torch.save(older, path)
    with pytest.raises(StyleLabError) as err:
        resume(tmp_path)
    assert str(err.value) == (
        f"cannot resume from '{path}': it was written by another version of stylelab "
        "(stylelab-checkpoint/2, this one reads stylelab-checkpoint/3), so the run has to "
        "start again"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleLabError, match="^cannot resume: there is no checkpoint.pt in '.*empty'"):
        resume(tmp_path / "empty")
