"""A finished sweep folder -> one labelled grid picture (the paper's figures, contact sheets, summaries).

Rows and columns come from the values of two override keys; each axis keeps the order in which the
sweep ran. The jobs come from stylelab.sweeps.read.

    jobs = load_sweep("outputs/multirun/2026-01-01/12-00-00")
    layout = arrange(jobs, rows="loss.style_layers", cols="loss.beta")
    picture = grid(load_cells(layout), layout.row_labels, layout.col_labels, "Fig 4")
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from PIL import Image, ImageDraw, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

from stylelab.choices import Corner
from stylelab.errors import StyleLabError
from stylelab.io import samples
from stylelab.io.atomic import write_atomic
from stylelab.sweeps.read import Job, load_sweep, swept_keys

CORNERS: tuple[str, ...] = get_args(Corner)
_EMPTY_CELL = (222, 222, 236)  # a job that has no final.png (yet); not a grey that anti-aliased text makes
MIN_PANEL = 128  # pictures smaller than this are enlarged in a sheet, so that it stays readable
FONT_MIN = 16  # px: the smallest font, whatever the panel size (its letters are at least 14 px high)
_RATIO_KEYS = ("loss.alpha", "loss.beta")  # labelled with the paper's alpha/beta


# ---------------------------------------------------------------- labels


def format_number(x: float) -> str:
    """Short, as the paper writes them: 1e-5, 8e-4, 0.5, 1000, 1.032e9."""
    if x == 0 or (0.1 <= abs(x) < 1e4):
        return f"{x:.4g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def _as_list(value: str) -> list[str] | None:
    """'[relu1_1,relu2_1]' -> ['relu1_1', 'relu2_1']; None for anything that is not a list."""
    if not (value.startswith("[") and value.endswith("]")):
        return None
    return [item.strip().strip("'\"") for item in value[1:-1].split(",") if item.strip()]


def label(key: str, value: str | None, *, typed: bool = True, ratio: float | None = None) -> str:
    """The text for one swept value, as the user typed it: `1e3`, the layers written out (three to a line),
    `shipwreck`, `photo.jpg` (a path: its last part). A value as Hydra recorded it (typed False: no sweep plan
    to say how it was typed) is written short (1000.0 -> 1000, 100000.0 -> 1e5). ratio: the paper's alpha/beta
    on a second line, for a figure whose point it is (Fig 4)."""
    if value is None:
        text = "(default)"
    elif (items := _as_list(value)) is not None:
        lines = [", ".join(items[i : i + 3]) + ("," if i + 3 < len(items) else "") for i in range(0, len(items), 3)]
        text = "\n".join(lines) if items else "none"
    elif "/" in value or "\\" in value:  # an image path or a nested config option: its last part
        text = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    else:
        text = value
        if not typed:
            try:
                text = format_number(float(value)) if any(c in value for c in ".eE") else value
            except ValueError:
                pass
    return text if ratio is None else f"{text}\nalpha/beta {format_number(ratio)}"


def _ratio(job: Job | None) -> float | None:
    alpha, beta = (job.value("loss.alpha"), job.value("loss.beta")) if job is not None else (None, None)
    return alpha / beta if isinstance(alpha, (int, float)) and isinstance(beta, (int, float)) and beta else None


def axis_name(key: str | None) -> str:
    # the key the user swept; a nested experiment group by its last part (fig3_panel)
    return (key or "").rsplit("/", 1)[-1] if (key or "").startswith("experiment/") else (key or "")


def axes_caption(layout: "Layout") -> str:
    """'rows: loss.style_layers, columns: loss.beta' (empty when nothing is swept)."""
    axes = [
        f"rows: {axis_name(layout.row_key)}" if layout.row_key else "",
        f"columns: {axis_name(layout.col_key)}" if layout.col_key else "",
    ]
    return ", ".join(a for a in axes if a)


# ---------------------------------------------------------------- layout


@dataclass
class Layout:
    """Which job goes into which cell; values are the raw override values, labels what is drawn."""

    row_key: str | None
    col_key: str | None
    row_labels: list[str]
    col_labels: list[str]
    cells: list[list[Job | None]]  # [row][col]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.cells), len(self.cells[0]) if self.cells else 0


def find_key(jobs: list[Job], key: str) -> str:
    """The override key as recorded, also from `+key` or the last part of a group (`fig3_panel`)."""
    known = list(dict.fromkeys(k for job in jobs for k in job.overrides))
    wanted = key.lstrip("+")
    matches = [k for k in known if k == wanted] or [k for k in known if k.rsplit("/", 1)[-1] == wanted]
    if len(matches) != 1:
        swept = ", ".join(swept_keys(jobs)) or "none"
        raise StyleLabError(f"no job of this sweep sets '{key}' on its command line; the swept keys are: {swept}")
    return matches[0]


def arrange(jobs: list[Job], rows: str | None = None, cols: str | None = None, *, ratios: bool = False) -> Layout:
    """Put every job into the cell of its (rows, cols) values; without keys, take the swept ones.

    ratios: under a value of loss.alpha or loss.beta, the paper's alpha/beta as a second line.
    """
    rows = find_key(jobs, rows) if rows else None
    cols = find_key(jobs, cols) if cols else None
    if rows is None and cols is None:
        swept = swept_keys(jobs)
        if len(swept) > 2:
            raise StyleLabError(
                f"this sweep varies {len(swept)} keys ({', '.join(swept)}); choose the grid with --rows KEY --cols KEY"
            )
        rows, cols = (swept[0], swept[1]) if len(swept) == 2 else (None, swept[0] if swept else None)
    if rows is None and cols is None:  # nothing swept: one row of jobs
        return Layout(None, None, [], [], [list(jobs)])

    def values(key):
        return list(dict.fromkeys(job.overrides.get(key) for job in jobs)) if key else [None]

    row_values, col_values = values(rows), values(cols)
    cells: list[list[Job | None]] = [[None] * len(col_values) for _ in row_values]
    for job in jobs:
        r, c = row_values.index(job.overrides.get(rows)), col_values.index(job.overrides.get(cols))
        if cells[r][c] is not None:
            other = [k for k in swept_keys(jobs) if k not in (rows, cols)]
            raise StyleLabError(
                f"jobs '{cells[r][c].dir.name}' and '{job.dir.name}' fall into the same cell; the sweep also "
                f"varies {', '.join(other) or 'nothing else'}: choose the grid with --rows KEY --cols KEY"
            )
        cells[r][c] = job

    def labels(key, axis_values):
        if key is None:
            return []
        out = []
        for value in axis_values:
            job = next(j for j in jobs if j.overrides.get(key) == value)  # its value as typed, its alpha/beta
            ratio = _ratio(job) if ratios and key in _RATIO_KEYS else None
            out.append(label(key, job.shown(key), typed=key in job.typed, ratio=ratio))
        return out

    return Layout(rows, cols, labels(rows, row_values), labels(cols, col_values), cells)


# ---------------------------------------------------------------- drawing


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, font, width: int) -> list[str]:
    """Greedy word wrap to a pixel width."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


def with_inset(
    picture: Image.Image, small: Image.Image, corner: str = "bottom_left", fraction: float = 0.3
) -> Image.Image:
    """`picture` with `small` shrunk to `fraction` of its width in one corner, on a thin white frame."""
    if corner not in CORNERS:
        raise StyleLabError(f"the inset corner must be one of {', '.join(CORNERS)}, not '{corner}'")
    out = picture.convert("RGB")  # a copy: the caller's image stays as it was
    frame = max(1, round(out.width / 150))
    box = max(4, round(out.width * fraction)), max(4, round(out.height * fraction))
    thumb = ImageOps.expand(ImageOps.contain(small.convert("RGB"), box), border=frame, fill="white")
    x = 0 if corner.endswith("left") else out.width - thumb.width
    y = 0 if corner.startswith("top") else out.height - thumb.height
    out.paste(thumb, (x, y))
    return out


def panel_of(picture: Image.Image, panel: int | None = None) -> Image.Image:
    """A cell at the panel size: its longest side `panel` px (nearest neighbour when enlarging, so the pixels
    stay pixels; Lanczos when shrinking). Without a panel size only a picture under MIN_PANEL is enlarged, by a
    whole factor."""
    longest = max(picture.size)
    if panel is None:
        if longest >= MIN_PANEL:
            return picture
        factor = math.ceil(MIN_PANEL / longest)
        return picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)
    scale = panel / longest
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.NEAREST if scale > 1 else Image.LANCZOS)


def grid(
    cells: list[list[Image.Image | None]],
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str = "",
    *,
    padding: int | None = None,
    panel: int | None = None,
) -> Image.Image:
    """Tile `cells` ([row][col], None = empty) with labels left of the rows, above the columns, and a title.

    Every cell is first brought to the panel size (panel_of); cells of other sizes are shrunk to fit and
    centred, all get the size of the largest. Labels may have several lines; text is at least FONT_MIN px.
    """
    if not cells or not cells[0] or any(len(row) != len(cells[0]) for row in cells):
        raise ValueError("cells must be a non-empty list of equally long rows")
    row_labels, col_labels = list(row_labels or []), list(col_labels or [])
    n_rows, n_cols = len(cells), len(cells[0])
    if row_labels and len(row_labels) != n_rows or col_labels and len(col_labels) != n_cols:
        raise ValueError(f"{len(row_labels)} row / {len(col_labels)} column labels for a {n_rows} x {n_cols} grid")
    cells = [[None if im is None else panel_of(im.convert("RGB"), panel) for im in row] for row in cells]
    present = [im for row in cells for im in row if im is not None]
    cell_h = max((im.height for im in present), default=panel or MIN_PANEL)
    font = _font(max(FONT_MIN, min(28, round(cell_h / 14))))
    pad = padding if padding is not None else max(2, font.size // 3)
    line_h = font.size + pad

    def width(text: str) -> int:
        return max((math.ceil(font.getlength(line)) for line in text.splitlines() or [""]), default=0)

    cell_w = max(max((im.width for im in present), default=cell_h), max(map(width, col_labels), default=0) + 2 * pad)
    body = _tile(cells, cell_w, cell_h, pad)
    left = max(map(width, row_labels), default=0) + (2 * pad if row_labels else 0)
    title_lines = _wrap(title, font, left + body.width - 2 * pad) if title else []
    label_lines = max((len(text.splitlines()) for text in col_labels), default=0)
    top = len(title_lines) * line_h + label_lines * line_h + (pad if col_labels else 0) + (pad if title_lines else 0)
    canvas = Image.new("RGB", (left + body.width, top + body.height), "white")
    canvas.paste(body, (left, top))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(title_lines):
        draw.text((pad, pad + i * line_h), line, fill="black", font=font)
    for c, text in enumerate(col_labels):
        centre = left + pad + c * (cell_w + pad) + cell_w / 2
        draw.multiline_text(
            (centre, top - pad), text, fill="black", font=font, anchor="md", align="center", spacing=pad
        )
    for r, text in enumerate(row_labels):
        middle = top + pad + r * (cell_h + pad) + cell_h / 2
        draw.multiline_text(
            (left - pad, middle), text, fill="black", font=font, anchor="rm", align="right", spacing=pad
        )
    return canvas


def _tile(cells: list[list[Image.Image | None]], cell_w: int, cell_h: int, pad: int) -> Image.Image:
    """The cells on white, each centred in a cell_w x cell_h box (shrunk to fit), `pad` apart; None is grey."""
    body = Image.new("RGB", (pad + len(cells[0]) * (cell_w + pad), pad + len(cells) * (cell_h + pad)), "white")
    for r, row in enumerate(cells):
        for c, im in enumerate(row):
            x, y = pad + c * (cell_w + pad), pad + r * (cell_h + pad)
            if im is None:
                body.paste(_EMPTY_CELL, (x, y, x + cell_w, y + cell_h))
                continue
            if im.width > cell_w or im.height > cell_h:
                im = ImageOps.contain(im, (cell_w, cell_h))
            body.paste(im, (x + (cell_w - im.width) // 2, y + (cell_h - im.height) // 2))
    return body


# ---------------------------------------------------------------- a sweep's figure


def _style_image(job: Job) -> Image.Image | None:
    spec = job.value("style")
    if not isinstance(spec, str):
        return None
    path = Path(spec).expanduser()
    if not path.is_absolute() and job.cwd is not None and (job.cwd / path).is_file():
        path = job.cwd / path
    try:
        with Image.open(samples.resolve_image(str(path))) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except (StyleLabError, OSError) as exc:
        warnings.warn(f"no style inset for {job.dir.name}: {exc}", stacklevel=2)
        return None


def load_cells(layout: Layout, inset: str | None = None) -> list[list[Image.Image | None]]:
    """Each cell's final.png (None where the job has not finished), with the style image inset if asked."""
    cells = []
    for row in layout.cells:
        out = []
        for job in row:
            picture = None
            if job is not None and job.final is not None:
                with Image.open(job.final) as im:
                    picture = im.convert("RGB")
                small = _style_image(job) if inset else None
                if small is not None:
                    picture = with_inset(picture, small, inset)
            out.append(picture)
        cells.append(out)
    return cells


@dataclass
class Figure:
    image: Image.Image
    layout: Layout
    title: str
    finished: int  # jobs with a final.png
    total: int


def sweep_figure(
    sweep: str | Path,
    rows: str | None = None,
    cols: str | None = None,
    inset: str | None = None,
    title: str | None = None,
    *,
    panel: int | None = None,
    planned=None,
) -> Figure:
    """The figure of a sweep. Arguments left None come from the jobs' `figure` config (set by experiments).

    planned: the sweep's plan (stylelab.cli.sweep.plan_of), which knows the values as they were typed."""
    jobs = load_sweep(sweep, planned)
    declared = jobs[0].config.get("figure") or {}
    if rows is None and cols is None:
        rows, cols = declared.get("rows"), declared.get("cols")
    inset = declared.get("inset") if inset is None else inset
    inset = None if inset in ("none", "") else inset
    if inset is not None and inset not in CORNERS:
        raise StyleLabError(f"the inset corner must be one of {', '.join(CORNERS)} or none, not '{inset}'")
    layout = arrange(jobs, rows, cols, ratios=bool(declared.get("ratios")))
    if title is None:
        title = declared.get("title") or Path(sweep).resolve().name
        caption = axes_caption(layout)
        if caption:  # the keys the axes are, as the user swept them
            title = f"{title} ({caption})"
    picture = grid(load_cells(layout, inset), layout.row_labels, layout.col_labels, title, panel=panel)
    finished = sum(job.final is not None for job in jobs)
    return Figure(picture, layout, title, finished, len(jobs))


def save_figure(figure: Figure, path: str | Path, source: str | Path = "") -> Path:
    """Write the PNG atomically; its text chunks keep the title and the row/column labels."""
    info = PngInfo()
    info.add_text("Title", figure.title)
    info.add_text("Source", str(source))
    # the labels as one line each (the sheet breaks long ones into lines)
    rows, cols = (
        [text.replace("\n", " ") for text in labels] for labels in (figure.layout.row_labels, figure.layout.col_labels)
    )
    info.add_text("stylelab:rows", json.dumps({"key": figure.layout.row_key, "labels": rows}))
    info.add_text("stylelab:cols", json.dumps({"key": figure.layout.col_key, "labels": cols}))
    path = Path(path)
    write_atomic(path, lambda f: figure.image.save(f, format="PNG", pnginfo=info))
    return path
