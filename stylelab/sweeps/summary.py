"""`stylelab-summary SWEEP`: one table (CSV and Markdown) and one contact sheet for a whole sweep.

Per job: its overrides, how far it got (steps, status), its wall time and final losses. The numbers come
from the job's TensorBoard events (the summary/* metrics written at the end of a run, and the hparams),
the overrides from Hydra's .hydra/overrides.yaml (read by stylelab.figures, which also draws the sheet).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from stylelab.io.atomic import write_atomic
from stylelab.sweeps import figure as figures
from stylelab.sweeps.read import Job, load_sweep, swept_keys

# summary/<name> of each run, written at its end: total (the weighted sum), then each term of the objective
# before its weight (content, style, tv, or whatever terms it had), and the time per step
_TIMING = "seconds_per_step"


@dataclass
class Row:
    job: Job
    steps_asked: int | None = None
    steps_done: int | None = None
    seconds: float | None = None
    losses: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.steps_done is None:
            return "running (or killed)" if (self.job.dir / "tb").is_dir() else "not started"
        if self.steps_asked is not None and self.steps_done < self.steps_asked:
            return f"stopped at {self.steps_done}"  # a signal or a tolerance; checkpoint.pt may resume it
        return "done"


def read_row(job: Job) -> Row:
    """What the job's TensorBoard events say about its end (nothing yet for a job still running)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    row = Row(job, steps_asked=_int(job.value("steps")))
    if not (job.dir / "tb").is_dir():
        return row
    acc = EventAccumulator(str(job.dir / "tb"), size_guidance={"scalars": 0, "tensors": 1, "images": 1})
    tb_logger = logging.getLogger("tensorboard")
    level = tb_logger.level
    tb_logger.setLevel(logging.ERROR)  # a resumed run's purge_step is logged as a warning; it is expected here
    try:
        acc.Reload()
    finally:
        tb_logger.setLevel(level)
    scalars = set(acc.Tags().get("scalars", []))
    if "summary/total" not in scalars:
        return row
    last = acc.Scalars("summary/total")[-1]
    row.steps_done = last.step
    names = [tag.removeprefix("summary/") for tag in acc.Tags()["scalars"] if tag.startswith("summary/")]
    row.losses = {name: acc.Scalars(f"summary/{name}")[-1].value for name in names if name != _TIMING}
    if "summary/seconds_per_step" in scalars:
        row.seconds = acc.Scalars("summary/seconds_per_step")[-1].value * max(last.step, 1)
    asked = _hparam(acc, "steps")  # a resumed run may have asked for more steps than its config says
    row.steps_asked = int(asked) if asked is not None else row.steps_asked
    return row


def _hparam(acc, name: str):
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        content = acc.PluginTagToContent("hparams").get("_hparams_/session_start_info")
    except KeyError:  # no hparams written (yet)
        return None
    if not content:
        return None
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    value = info.hparams.get(name)
    return None if value is None else (value.number_value if value.HasField("number_value") else value.string_value)


def _int(value) -> int | None:
    return value if isinstance(value, int) else None


# ---------------------------------------------------------------- the table


def table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells: job number, every override key, status, steps, seconds, final losses, folder."""
    keys = list(dict.fromkeys(k for row in rows for k in row.job.overrides))
    losses = loss_names(rows)
    header = ["job", *keys, "status", "steps done", "wall time (s)", *[f"final {name}" for name in losses], "folder"]
    cells = []
    for row in rows:
        cells.append([
            str(row.job.num),
            *[row.job.overrides.get(k, "") for k in keys],
            row.status,
            "" if row.steps_done is None else str(row.steps_done),
            "" if row.seconds is None else f"{row.seconds:.3g}",
            *[f"{row.losses[name]:.6g}" if name in row.losses else "" for name in losses],
            row.job.dir.name,
        ])
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
    shared = {name: cells[0][i] for i, name in enumerate(header)
              if name in keys and cells and len({row[i] for row in cells}) == 1}
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
    raw override values (the paper figures' alpha/beta ratio labels would hide which of the two changed)."""
    keys = swept_keys(jobs)
    if len(keys) <= 2:
        layout = figures.arrange(jobs, ratios=False)
        caption = figures.axes_caption(layout, ratios=False)
        heading = f"{title} ({caption})" if caption else title
        return figures.grid(figures.load_cells(layout), layout.row_labels, layout.col_labels, heading)
    row_labels = [", ".join(f"{k}={figures.label(k, job.overrides.get(k))}" for k in keys) for job in jobs]
    cells = figures.load_cells(figures.Layout(None, None, [], [], [[job] for job in jobs]))
    return figures.grid(cells, row_labels, [], title)


# ---------------------------------------------------------------- the command


def summarize(sweep: Path, out: Path | None = None) -> dict[str, Path]:
    """Write summary.csv, summary.md and contact_sheet.png for the sweep (into `out`, default the sweep)."""
    jobs = load_sweep(sweep)
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
