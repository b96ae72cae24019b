"""`stylelab-summary SWEEP`: one table (CSV and Markdown) and one contact sheet for a whole sweep.

Per job: its overrides, how far it got (status, steps), its wall time and final losses. The numbers come
from the job's folder (error.txt, the summary/* metrics its TensorBoard got at the end of a run, and the
hparams), the overrides from Hydra's .hydra/overrides.yaml or, for a job that never started, the sweep's
plan (both read by stylelab.sweeps.read); stylelab.sweeps.figure draws the sheet.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from stylelab.io.atomic import write_atomic
from stylelab.sweeps import figure as figures
from stylelab.sweeps.read import Ending, Job, PlannedJob, ending, load_sweep, swept_keys


@dataclass
class Row:
    job: Job
    end: Ending

    @property
    def status(self) -> str:
        if self.end.status == "stopped":
            return f"stopped at {self.end.steps_done}"  # a signal or a tolerance; checkpoint.pt may resume it
        if self.end.status == "failed":
            return f"failed: {self.end.reason}"
        return self.end.status

    @property
    def steps_done(self) -> int | None:
        return self.end.steps_done

    @property
    def seconds(self) -> float | None:
        return self.end.seconds

    @property
    def losses(self) -> dict[str, float]:
        return self.end.losses


def read_row(job: Job) -> Row:
    """What the job's folder says about its end (nothing yet for a job still running)."""
    steps = job.value("steps")
    return Row(job, ending(job.dir, steps if isinstance(steps, int) else None))


# ---------------------------------------------------------------- the table


def table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: job number, every override key, status, steps, seconds, final losses, folder."""
    keys = list(dict.fromkeys(k for row in rows for k in row.job.overrides))
    losses = loss_names(rows)
    header = ["job", *keys, "status", "steps done", "wall time (s)", *[f"final {name}" for name in losses], "folder"]
    cells = []
    for row in rows:
        cells.append(
            [
                str(row.job.num),
                *[row.job.shown(k) or "" for k in keys],
                row.status,
                "" if row.steps_done is None else str(row.steps_done),
                "" if row.seconds is None else f"{row.seconds:.3g}",
                *[f"{row.losses[name]:.6g}" if name in row.losses else "" for name in losses],
                row.job.dir.name,
            ]
        )
    return header, cells


def loss_names(rows: list[Row]) -> list[str]:
    """The final losses any job reported: total first, then the terms in the order the jobs logged them."""
    names = list(dict.fromkeys(name for row in rows for name in row.losses))
    return sorted(names, key=lambda name: name != "total")


def keys_of(header: list[str]) -> list[str]:
    """The override columns of a table() header."""
    return header[1 : header.index("status")]


def to_csv(header: list[str], cells: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(cells)
    return out.getvalue()


def to_markdown(header: list[str], cells: list[list[str]], title: str) -> str:
    """A GitHub table of what differs between jobs; the overrides all jobs share are one line above it."""
    keys = keys_of(header)
    shared = {
        name: cells[0][i]
        for i, name in enumerate(header)
        if name in keys and cells and len({row[i] for row in cells}) == 1
    }
    columns = [i for i, name in enumerate(header) if name != "folder" and name not in shared]
    lines = [f"# {title}", ""]
    if shared:
        lines += ["All jobs: " + ", ".join(f"`{k}={v}`" for k, v in shared.items()), ""]
    lines.append(_md_row(header[i] for i in columns))
    # text columns left, numbers right
    lines.append("|" + "|".join("---" if header[i] in keys or header[i] == "status" else "---:" for i in columns) + "|")
    lines += [_md_row(row[i] for i in columns) for row in cells]
    return "\n".join(lines) + "\n"


def _md_row(texts) -> str:
    return "| " + " | ".join(text.replace("|", "\\|") for text in texts) + " |"


# ---------------------------------------------------------------- the contact sheet


def contact_sheet(jobs: list[Job], title: str):
    """The final images: a matrix when at most two keys are swept, else one row per job; labelled with the
    values as typed."""
    keys = swept_keys(jobs)
    if len(keys) <= 2:
        layout = figures.arrange(jobs)
        caption = figures.axes_caption(layout)
        heading = f"{title} ({caption})" if caption else title
        return figures.grid(figures.load_cells(layout), layout.row_labels, layout.col_labels, heading)
    row_labels = [
        ", ".join(f"{k}={figures.label(k, job.shown(k), typed=k in job.typed)}".replace("\n", " ") for k in keys)
        for job in jobs
    ]
    cells = figures.load_cells(figures.Layout(None, None, [], [], [[job] for job in jobs]))
    return figures.grid(cells, row_labels, [], title)


# ---------------------------------------------------------------- the command


def summarize(sweep: Path, out: Path | None = None, planned: list[PlannedJob] | None = None) -> dict[str, Path]:
    """Write summary.csv, summary.md and contact_sheet.png for the sweep (into `out`, default the sweep).

    planned: every job of the sweep (from its multirun.yaml), so failed and unstarted ones are listed too.
    """
    jobs = load_sweep(sweep, planned)
    out = Path(out or sweep)
    rows = [read_row(job) for job in jobs]
    header, cells = table(rows)
    title = f"Sweep {Path(sweep).resolve().name}"
    written = {
        "csv": out / "summary.csv",
        "markdown": out / "summary.md",
        "contact sheet": out / "contact_sheet.png",
    }
    csv_text, md_text = to_csv(header, cells), to_markdown(header, cells, title)
    sheet = contact_sheet(jobs, title)
    write_atomic(written["csv"], lambda f: f.write(csv_text.encode("utf-8")))
    write_atomic(written["markdown"], lambda f: f.write(md_text.encode("utf-8")))
    write_atomic(written["contact sheet"], lambda f: sheet.save(f, format="PNG"))
    return written
