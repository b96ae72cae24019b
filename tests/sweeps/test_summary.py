"""stylelab-summary: the table (CSV, Markdown) and the contact sheet of a sweep folder."""

import csv
import shutil

import pytest
import yaml
from conftest import SHALLOW, SMOKE, interrupt_after, run_job
from PIL import Image

from stylelab import signals
from stylelab.cli import summary as summary_cli
from stylelab.sweeps import summary

EMPTY = (225, 225, 225)  # figures' colour for a job without final.png


def hydra_record(job_dir, num: int, overrides: list[str]) -> None:
    """What Hydra leaves in a sweep job's folder (a job run in-process does not write it)."""
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"steps": 2}))
    (job_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """alpha in {1, 2} x beta in {100, 1000}: two jobs done, one stopped at step 1, one killed at its start
    (Hydra made its folder, nothing more)."""
    from conftest import make_image

    root = tmp_path_factory.mktemp("sweep")
    content, style = make_image(root / "content.png", seed=1), make_image(root / "style.png", size=(40, 56), seed=2)
    for num, (alpha, beta) in enumerate([(1, 100), (1, 1000), (2, 100), (2, 1000)]):
        overrides = ["steps=2", f"loss.alpha={alpha}", f"loss.beta={beta}"]
        job = root / "sweep" / f"loss.alpha={alpha},loss.beta={beta}"
        hydra_record(job, num, overrides)
        args = [f"content={content}", f"style={style}", *SMOKE, *SHALLOW, *overrides]
        if num == 2:
            with pytest.MonkeyPatch.context() as m:
                m.setattr(signals.StopSignals, "reason", interrupt_after(1))
                run_job(job, *args)
        elif num < 3:
            run_job(job, *args)
    return root / "sweep"


def test_table_has_overrides_status_steps_time_and_losses(sweep, tmp_path):
    written = summary.summarize(sweep, tmp_path)
    rows = list(csv.DictReader(written["csv"].open()))
    assert [(r["job"], r["loss.alpha"], r["loss.beta"], r["status"], r["steps done"]) for r in rows] == [
        ("0", "1", "100", "done", "2"),
        ("1", "1", "1000", "done", "2"),
        ("2", "2", "100", "stopped at 1", "1"),
        ("3", "2", "1000", "running or killed", ""),
    ]
    for row in rows[:3]:
        alpha, beta = float(row["loss.alpha"]), float(row["loss.beta"])
        total, content, style = (float(row[f"final {k}"]) for k in ("total", "content", "style"))
        assert total == pytest.approx(alpha * content + beta * style, rel=1e-5)  # tv_weight is 0
        assert float(row["wall time (s)"]) > 0 and row["steps"] == "2"
    assert rows[3]["final total"] == "" and rows[0]["folder"] == "loss.alpha=1,loss.beta=100"

    md = written["markdown"].read_text().splitlines()
    assert md[0] == f"# Sweep {sweep.name}"
    assert md[2] == "All jobs: `steps=2`"  # what all jobs share is said once
    assert md[4] == (
        "| job | loss.alpha | loss.beta | status | steps done | wall time (s) | final total | final content "
        "| final style | final tv | final laplacian |"
    )  # every term of the objective, in its order
    assert md[5].count("|") == 12 and md[8].startswith("| 2 | 2 | 100 | stopped at 1 | 1 |")


def test_contact_sheet_is_a_labelled_matrix_with_an_empty_cell(sweep, tmp_path):
    written = summary.summarize(sweep, tmp_path)
    with Image.open(written["contact sheet"]) as sheet:
        sheet = sheet.convert("RGB")
    assert sheet.width > 2 * 48 and sheet.height > 2 * 40  # 2 x 2 cells of 48 x 40 plus labels
    assert EMPTY in {color for _, color in sheet.getcolors(1 << 20)}  # the job that has no final.png


def test_more_than_two_swept_keys_give_one_row_per_job(sweep, tmp_path):
    other = tmp_path / "wide"
    done = sweep / "loss.alpha=1,loss.beta=100"
    for num, seed in enumerate((0, 1, 2)):
        job = other / str(num)
        hydra_record(job, num, [f"loss.alpha={num}", f"loss.beta={num}", f"seed={seed}"])
        shutil.copy(done / "final.png", job / "final.png")
    summary.summarize(other)
    with Image.open(other / "contact_sheet.png") as sheet:
        assert sheet.height > 3 * 40 and sheet.width < 3 * 48 + 400  # three rows, one column and its labels


def test_command_line_and_its_errors(sweep, tmp_path, capsys):
    summary_cli.main([str(sweep), "--out", str(tmp_path)])
    assert capsys.readouterr().out.splitlines()[0] == f"stylelab-summary: wrote {tmp_path / 'summary.csv'} (csv)"
    assert {p.name for p in tmp_path.iterdir()} == {"summary.csv", "summary.md", "contact_sheet.png"}
    with pytest.raises(SystemExit) as exit_:
        summary_cli.main([str(tmp_path / "nope")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"stylelab-summary: error: '{tmp_path / 'nope'}' is not a folder; give the sweep folder that "
        "`stylelab -m` printed"
    )
