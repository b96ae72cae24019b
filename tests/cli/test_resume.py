"""resume on the command line (stylelab.cli.resume): stop a run, resume it in its folder, the same bytes."""

import signal

import pytest
import torch
from conftest import SHALLOW, SMOKE, events, interrupt_after, run_job, signal_mid_run, steps_of

from stylelab import checkpoint, signals


def test_cli_stop_and_resume_gives_the_same_bytes_and_curves(tmp_path, content_png, style_png, monkeypatch):
    common = [
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        "steps=6",
        "log.every=2",
        "log.image_every=2",
    ]
    run_job(tmp_path / "whole", *common)

    part = tmp_path / "part"
    with monkeypatch.context() as m:
        m.setattr(signals.StopSignals, "reason", interrupt_after(3))
        run_job(part, *common)
    assert torch.load(part / checkpoint.FILE, weights_only=True)["step"] == 3
    run_job(part, *common, f"resume={part}")

    assert (part / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
    a, b = events(tmp_path / "whole"), events(part)
    assert steps_of(b, "loss/total") == steps_of(a, "loss/total") == [0, 2, 4, 6]
    assert [e.value for e in b.Scalars("loss/total")] == [e.value for e in a.Scalars("loss/total")]
    assert steps_of(b, "image/generated", "Images") == [0, 2, 4, 6]
    assert steps_of(b, "image/content", "Images") == [0]
    # the stopped run's summary (at step 3) is dropped: one summary, at the end
    assert steps_of(b, "summary/total") == [6]


@pytest.mark.slow
def test_resume_on_the_command_line_goes_on_in_the_resumed_folder(tmp_path, content_png, style_png):
    from conftest import run_cli

    common = [f"content={content_png}", f"style={style_png}", *SMOKE, *SHALLOW]
    run_dir = tmp_path / "run"
    proc = run_cli(*common, "steps=2", "checkpoint_every=2", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert torch.load(run_dir / checkpoint.FILE, weights_only=True)["step"] == 2  # a finished run can go on too
    hydra_record = (run_dir / ".hydra" / "overrides.yaml").read_text()
    proc = run_cli(*common, "steps=5", f"resume={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run_dir} at step 2" in proc.stdout
    assert f"wrote {run_dir / 'final.png'} after 5 steps" in proc.stdout
    # the first run's record stays; the resumed run's config is kept below it
    assert (run_dir / ".hydra" / "overrides.yaml").read_text() == hydra_record
    assert f"resume='{run_dir}'" in next((run_dir / ".hydra").glob("resumed-*/overrides.yaml")).read_text()
    assert steps_of(events(run_dir), "loss/total") == [0, 5]


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_that_resumes_exactly(tmp_path, content_png, style_png):
    common = [f"content={content_png}", f"style={style_png}", *SMOKE, *SHALLOW, "log.every=10"]
    run_dir = tmp_path / "run"
    proc = signal_mid_run([*common, "steps=100000"], run_dir, signal.SIGTERM)  # in its loop, however loaded
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "stopped by SIGTERM after" in out
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    stopped = torch.load(run_dir / checkpoint.FILE, weights_only=True)["step"]
    assert stopped >= 2
    total = stopped + 12  # a resumed run may go on for other steps than it first asked
    run_job(run_dir, *common, f"steps={total}", f"resume={run_dir}")
    run_job(tmp_path / "whole", *common, f"steps={total}")
    assert (run_dir / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
    assert steps_of(events(run_dir), "loss/total") == steps_of(events(tmp_path / "whole"), "loss/total")
