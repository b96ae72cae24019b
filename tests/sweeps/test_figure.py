"""stylelab.sweeps.figure and `stylelab-figure` on hand-made sweep folders (no runs: fast)."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from stylelab.cli import figure as figure_cli
from stylelab.errors import StyleLabError
from stylelab.sweeps import figure as figures
from stylelab.sweeps.read import Job, load_sweep, swept_keys

CELL = (24, 18)  # (W, H) of every fake final.png
LAYER_SETS = [
    "[relu1_1]",
    "[relu1_1,relu2_1]",
    "[relu1_1,relu2_1,relu3_1]",
    "[relu1_1,relu2_1,relu3_1,relu4_1]",
    "[relu1_1,relu2_1,relu3_1,relu4_1,relu5_1]",
]
BETAS = ["100000.0", "10000.0", "1000.0", "100.0"]


def colour(r: int, c: int) -> tuple[int, int, int]:
    return (40 * r + 10, 50 * c + 20, 200)


def make_job(sweep, num, overrides: dict, *, config=None, final_colour=None, name=None):
    """One job folder as Hydra and the run leave it."""
    folder = sweep / (name or ",".join(f"{k}={v}" for k, v in overrides.items()).replace("/", "_"))
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()]))
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {}))
    hydra = {"hydra": {"job": {"num": num}, "runtime": {"cwd": str(sweep)}}}
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    if final_colour is not None:
        Image.new("RGB", CELL, final_colour).save(folder / "final.png")
    return folder


@pytest.fixture
def fig4_sweep(tmp_path):
    """A 5 x 4 sweep like fig4's, with job numbers in sweep order (not in folder-name order)."""
    sweep = tmp_path / "sweep"
    figure = {"rows": "loss.style_layers", "cols": "loss.beta", "inset": None, "title": "Fig 4"}
    num = 0
    for r, layers in enumerate(LAYER_SETS):
        for c, beta in enumerate(BETAS):
            config = {"loss": {"alpha": 1.0, "beta": float(beta)}, "figure": figure, "style": "s.png"}
            overrides = {"loss.style_layers": layers, "loss.beta": beta, "+experiment": "gatys2016/fig4"}
            make_job(sweep, num, overrides, config=config, final_colour=colour(r, c))
            num += 1
    return sweep


def boxes_of(picture: Image.Image, rgb) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the pixels of exactly this colour."""
    mask = np.all(np.asarray(picture) == np.array(rgb, dtype=np.uint8), axis=-1)
    ys, xs = np.nonzero(mask)
    assert len(xs), f"colour {rgb} is not in the picture"
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize(
    "x,text",
    [
        (1e-5, "1e-5"),
        (8e-4, "8e-4"),
        (5e-3, "5e-3"),
        (1e-2, "1e-2"),
        (0.5, "0.5"),
        (1000.0, "1000"),
        (1.032e9, "1.032e9"),
        (1e5, "1e5"),
        (0.0, "0"),
    ],
)
def test_numbers_are_written_as_the_paper_writes_them(x, text):
    assert figures.format_number(x) == text


def test_labels_of_swept_values(tmp_path):
    assert figures.label("loss.beta", "1e3") == "1e3"  # as typed
    assert figures.label("loss.beta", "1000.0", typed=False) == "1000"  # as Hydra recorded it: short
    assert figures.label("loss.beta", "1250.0", typed=False, ratio=8e-4) == "1250\nalpha/beta 8e-4"
    # layer sets written out, three to a line, never as a range
    assert figures.label("loss.style_layers", "[relu1_1,relu2_1,relu3_1]") == "relu1_1, relu2_1, relu3_1"
    assert figures.label("loss.style_layers", "[relu1_1,relu2_1,relu3_1,relu4_1]") == (
        "relu1_1, relu2_1, relu3_1,\nrelu4_1"
    )
    assert figures.label("loss.style_layers", "[relu1_1, relu2_1]") == "relu1_1, relu2_1"
    assert figures.label("loss.content_layers", "[relu4_2]") == "relu4_2"
    assert figures.label("loss.style_layers", "[]") == "none"
    assert figures.label("style", "/data/paintings/femme.jpg") == "femme.jpg"
    assert figures.label("experiment/gatys2016/fig3_panel", "the_scream") == "the_scream"
    assert figures.label("seed", "3") == "3"
    assert figures.label("loss.tv_weight", "0.001", typed=False) == "1e-3"


def test_load_sweep_follows_job_numbers_and_reads_configs(fig4_sweep):
    jobs = load_sweep(fig4_sweep)
    assert len(jobs) == 20 and [j.num for j in jobs] == list(range(20))
    assert jobs[0].overrides == {
        "loss.style_layers": "[relu1_1]",
        "loss.beta": "100000.0",
        "experiment": "gatys2016/fig4",
    }  # the + of +experiment dropped
    assert jobs[0].config["figure"]["rows"] == "loss.style_layers"
    assert jobs[0].final.name == "final.png" and jobs[0].cwd == fig4_sweep
    assert swept_keys(jobs) == ["loss.style_layers", "loss.beta"]


def test_references_to_user_inputs_are_followed(tmp_path):
    config = {"style": "${inputs.picasso}", "inputs": {"picasso": "/x/femme.jpg"}}
    job = Job(tmp_path, 0, {}, config, None, None)
    assert job.value("style") == "/x/femme.jpg" and job.value("inputs.nothing") is None


def test_arrange_puts_every_job_in_its_cell(fig4_sweep):
    jobs = load_sweep(fig4_sweep)
    layout = figures.arrange(jobs, "loss.style_layers", "loss.beta")
    assert layout.shape == (5, 4)
    assert layout.row_labels == [
        "relu1_1",
        "relu1_1, relu2_1",
        "relu1_1, relu2_1, relu3_1",
        "relu1_1, relu2_1, relu3_1,\nrelu4_1",
        "relu1_1, relu2_1, relu3_1,\nrelu4_1, relu5_1",
    ]
    assert layout.col_labels == ["1e5", "1e4", "1000", "100"]  # no plan: Hydra's spelling, short
    with_ratios = figures.arrange(jobs, "loss.style_layers", "loss.beta", ratios=True)
    assert with_ratios.col_labels == [
        "1e5\nalpha/beta 1e-5",
        "1e4\nalpha/beta 1e-4",
        "1000\nalpha/beta 1e-3",
        "100\nalpha/beta 1e-2",
    ]
    assert layout.cells[2][3].overrides == {
        "loss.style_layers": LAYER_SETS[2],
        "loss.beta": "100.0",
        "experiment": "gatys2016/fig4",
    }
    # without keys, the two swept keys are taken; swapping them transposes the grid
    assert figures.arrange(jobs).shape == (5, 4)
    assert figures.arrange(jobs, rows="loss.beta", cols="loss.style_layers").shape == (4, 5)


def test_layer_labels_are_written_out_so_they_never_collide(tmp_path):
    sweep = tmp_path / "sweep"
    for i, layers in enumerate(["[relu1_1,relu3_1,relu5_1]", "[relu1_1,relu2_1,relu5_1]"]):
        make_job(sweep, i, {"loss.style_layers": layers}, final_colour=(i, 0, 0))
    layout = figures.arrange(load_sweep(sweep))
    assert layout.col_labels == ["relu1_1, relu3_1, relu5_1", "relu1_1, relu2_1, relu5_1"]


def test_grid_places_cells_in_rows_and_columns_with_labels(tmp_path):
    cells = [[Image.new("RGB", (30, 20), colour(r, c)) for c in range(3)] for r in range(2)]
    cells[1][2] = None  # an unfinished job
    picture = figures.grid(cells, ["row a", "row b"], ["x", "y", "z"], "a title")
    boxes = {(r, c): boxes_of(picture, colour(r, c)) for r in range(2) for c in range(3) if (r, c) != (1, 2)}
    for (r, c), (x0, y0, x1, y1) in boxes.items():
        assert (x1 - x0, y1 - y0) == (150, 100)  # under 128 px: enlarged by a whole factor (5), nearest neighbour
        if c:
            assert x0 > boxes[(r, c - 1)][2]  # right of its left neighbour
        if r:
            assert y0 > boxes[(r - 1, c)][3] and x0 == boxes[(r - 1, c)][0]  # below, same column
    gray = boxes_of(picture, figures._EMPTY_CELL)
    assert gray[0] == boxes[(0, 2)][0] and gray[1] == boxes[(1, 1)][1]
    arr = np.asarray(picture)
    # text is drawn left of the first column (row labels) and above the first row (column labels)
    x0, y0 = boxes[(0, 0)][:2]
    assert (arr[y0 : y0 + 100, : x0 - 1] < 128).any()
    assert (arr[: y0 - 1, x0 : x0 + 150] < 128).any()


def ink_height(picture: Image.Image, box) -> int:
    """How many pixel rows of a region hold dark (text) pixels."""
    x0, y0, x1, y1 = box
    rows = (np.asarray(picture.convert("L"))[y0:y1, x0:x1] < 100).any(axis=1)
    return int(np.ptp(np.nonzero(rows)[0]) + 1) if rows.any() else 0


@pytest.mark.parametrize("size", [16, 64, 600])
def test_label_text_is_at_least_14_px_whatever_the_panel(size):
    cells = [[Image.new("RGB", (size, size), (200, 200, 255))]]
    picture = figures.grid(cells, ["Wg"], ["Wg"])  # a capital and a descender: the text's full height
    x0, y0, x1, y1 = boxes_of(picture, (200, 200, 255))
    assert ink_height(picture, (0, y0, x0, y1)) >= 14 and ink_height(picture, (x0, 0, x1, y0)) >= 14


def test_the_panel_size_scales_every_picture(tmp_path):
    small = Image.new("RGB", (40, 30), (255, 0, 0))
    small.putpixel((0, 0), (0, 255, 0))
    out = figures.panel_of(small, 200)
    assert out.size == (200, 150) and out.getpixel((4, 4)) == (0, 255, 0)  # nearest neighbour: pixels stay sharp
    assert figures.panel_of(Image.new("RGB", (400, 300)), 200).size == (200, 150)
    assert figures.panel_of(Image.new("RGB", (300, 200))).size == (300, 200)  # big enough: as it is


def test_grid_refuses_ragged_cells_and_wrong_label_counts():
    im = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="equally long rows"):
        figures.grid([[im, im], [im]])
    with pytest.raises(ValueError, match="3 column labels for a 1 x 2 grid"):
        figures.grid([[im, im]], col_labels=["a", "b", "c"])


def test_inset_goes_into_the_asked_corner():
    big = Image.new("RGB", (100, 80), (0, 0, 255))
    small = Image.new("RGB", (50, 50), (255, 0, 0))
    out = figures.with_inset(big, small, "bottom_left", fraction=0.3)
    x0, y0, x1, y1 = boxes_of(out, (255, 0, 0))
    assert x0 <= 2 and y1 >= 78 and x1 - x0 == 24 and y1 - y0 == 24  # contained in 30 x 24, square
    assert big.getpixel((0, 79)) == (0, 0, 255)  # the input is not changed
    x0, y0, _, _ = boxes_of(figures.with_inset(big, small, "top_right"), (255, 0, 0))
    assert y0 <= 2 and x0 >= 70
    with pytest.raises(StyleLabError, match="must be one of bottom_left"):
        figures.with_inset(big, small, "middle")


def test_figure_command_writes_a_labelled_png(fig4_sweep, capsys):
    figure_cli.main([str(fig4_sweep)])  # the layout comes from the jobs' figure config
    out = capsys.readouterr().out
    assert "(5 x 4 grid; 20 of 20 jobs finished" in out
    with Image.open(fig4_sweep / "figure.png") as im:
        picture, text = im.convert("RGB"), dict(im.text)
    assert text["Title"] == "Fig 4 (rows: loss.style_layers, columns: loss.beta)"  # the keys as swept
    assert json.loads(text["stylelab:rows"])["key"] == "loss.style_layers"
    assert json.loads(text["stylelab:rows"])["labels"][2] == "relu1_1, relu2_1, relu3_1"
    assert json.loads(text["stylelab:cols"]) == {"key": "loss.beta", "labels": ["1e5", "1e4", "1000", "100"]}
    lefts = sorted({boxes_of(picture, colour(0, c))[0] for c in range(4)})
    tops = sorted({boxes_of(picture, colour(r, 0))[1] for r in range(5)})
    assert len(lefts) == 4 and len(tops) == 5
    assert boxes_of(picture, colour(3, 2))[:2] == (lefts[2], tops[3])

    assert not (fig4_sweep / "tb_figure").exists()  # the figure is no run of its own in TensorBoard


def test_figure_flags_override_the_config_and_the_inset_shows_the_style(fig4_sweep, tmp_path):
    Image.new("RGB", (40, 40), (255, 0, 0)).save(fig4_sweep / "s.png")  # relative to the jobs' cwd
    out = tmp_path / "elsewhere" / "fig.png"
    figure_cli.main(
        [
            str(fig4_sweep),
            "--rows",
            "loss.beta",
            "--cols",
            "loss.style_layers",
            "--inset",
            "bottom_left",
            "--title",
            "transposed",
            "--out",
            str(out),
        ]
    )
    with Image.open(out) as im:
        picture, text = im.convert("RGB"), dict(im.text)
    assert json.loads(text["stylelab:rows"])["key"] == "loss.beta" and text["Title"] == "transposed"
    assert len(json.loads(text["stylelab:cols"])["labels"]) == 5
    reds = np.all(np.asarray(picture) == (255, 0, 0), axis=-1).sum()
    assert reds >= 20 * 4  # an inset in each of the 20 cells
    assert not (fig4_sweep / "figure.png").exists()


def test_unfinished_jobs_leave_empty_cells(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    for i, beta in enumerate(["1.0", "2.0", "3.0"]):
        make_job(sweep, i, {"loss.beta": beta}, final_colour=(9, 9, 9) if i != 1 else None)
    figure_cli.main([str(sweep)])
    assert "(1 x 3 grid; 2 of 3 jobs finished" in capsys.readouterr().out
    with Image.open(sweep / "figure.png") as im:
        boxes_of(im.convert("RGB"), figures._EMPTY_CELL)


@pytest.mark.parametrize(
    "setup,args,message",
    [
        ("none", [], "is not a folder"),
        ("empty", [], "holds no stylelab jobs"),
        ("three", [], "this sweep varies 3 keys (a, b, c); choose the grid with --rows KEY --cols KEY"),
        ("three", ["--rows", "a", "--cols", "b"], "fall into the same cell; the sweep also varies c"),
        (
            "three",
            ["--cols", "loss.bta"],
            "no job of this sweep sets 'loss.bta' on its command line; the swept keys are: a, b, c",
        ),
    ],
)
def test_figure_command_errors_are_one_sentence(tmp_path, capsys, setup, args, message):
    sweep = tmp_path / "sweep"
    if setup == "empty":
        sweep.mkdir()
    if setup == "three":
        for i, (a, b, c) in enumerate([(1, 1, 1), (1, 1, 2), (2, 2, 2)]):
            make_job(sweep, i, {"a": a, "b": b, "c": c}, final_colour=(i, i, i))
    with pytest.raises(SystemExit) as exit_info:
        figure_cli.main([str(sweep), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("stylelab-figure: error: ") and err.count("\n") == 1
    assert not (sweep / "figure.png").exists()


def test_group_keys_can_be_named_by_their_last_part(tmp_path):
    sweep = tmp_path / "sweep"
    for i, panel in enumerate(["shipwreck", "the_scream"]):
        make_job(
            sweep,
            i,
            {"+experiment": "gatys2016/fig3", "experiment/gatys2016/fig3_panel": panel},
            final_colour=(i, 0, 0),
        )
    layout = figures.arrange(load_sweep(sweep), cols="fig3_panel")
    assert layout.col_key == "experiment/gatys2016/fig3_panel" and layout.col_labels == ["shipwreck", "the_scream"]


def test_a_single_run_folder_is_a_one_cell_figure(tmp_path):
    run = make_job(tmp_path, 0, {"content": "a.png"}, final_colour=(1, 2, 3), name="run")
    fig = figures.sweep_figure(run)
    assert fig.layout.shape == (1, 1) and fig.finished == 1
