"""stylelab.observers: what TensorBoard, the progress bar, the curves and the step PNGs make of what a run
tells them, read back from the files they write."""

import numpy as np
import torch
from conftest import events, hparams_of
from PIL import Image

from stylelab.build import Level
from stylelab.io.folders import events_dir
from stylelab.io.images import load_image
from stylelab.losses.base import Evaluation
from stylelab.observers import Curves, RunEnd, SaveEvery, TensorBoard


def evaluation(total: float) -> Evaluation:
    """Losses of a content term (weight 1) and a style term (weight 10), each of one layer."""
    content, style = torch.tensor(total / 2), torch.tensor(total / 20)
    return Evaluation(
        torch.tensor(total),
        {"content": content, "style": style},
        {"content": content, "style": 10 * style},
        {"content": {"relu4_2": content}, "style": {"relu1_1": style}},
    )


class Images:
    content, styles = torch.zeros(1, 3, 8, 8), [torch.ones(1, 3, 8, 8)]


def test_tensorboard_logs_on_its_cadence_and_each_levels_first_and_last_step(tmp_path):
    tb = TensorBoard(tmp_path, steps=7, every=3, image_every=5)
    level = Level(8, 0, 7)
    tb.on_level(0, level, Images, 0)
    for step in range(7):
        tb.on_losses(step, evaluation(100.0 - step))
        tb.on_image(step, torch.full((1, 3, 8, 8), step / 10))
    tb.on_level_end(0, level, 7, evaluation(93.0), torch.full((1, 3, 8, 8), 0.7))
    tb.close()
    acc = events(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("loss/total")] == [(0, 100.0), (3, 97.0), (6, 94.0), (7, 93.0)]
    assert [e.value for e in acc.Scalars("loss/weighted/style")] == [50.0, 48.5, 47.0, 46.5]
    assert [e.step for e in acc.Images("image/generated")] == [0, 5, 7]
    last = np.asarray(Image.open(__import__("io").BytesIO(acc.Images("image/generated")[-1].encoded_image_string)))
    assert (last == round(0.7 * 255)).all()
    assert [e.step for e in acc.Images("image/style")] == [0] and acc.Scalars("level/size")[0].value == 8


def test_tensorboard_writes_hparams_and_the_final_picture_when_the_run_ends(tmp_path):
    tb = TensorBoard(tmp_path, steps=4, varying={"loss.beta": "1e3"})
    picture = torch.full((1, 3, 8, 8), 0.25)
    tb.on_run_end(RunEnd(4, {"loss.beta": 1000.0, "seed": 0}, evaluation(12.0), picture, True, 0.5))
    tb.close()
    acc = events(tmp_path)
    assert hparams_of(tmp_path) == {"loss.beta": "1e3", "seed": 0.0}  # as the sweep typed it
    assert acc.Scalars("summary/total")[0].value == 12.0 and acc.Scalars("summary/total")[0].step == 4
    assert acc.Scalars("summary/seconds_per_step")[0].value == 0.5
    assert [e.step for e in acc.Images("image/final")] == [4]


def test_a_run_that_diverged_is_a_failure_with_its_reason(tmp_path):
    tb = TensorBoard(tmp_path, steps=4)
    tb.on_run_end(RunEnd(2, {"seed": 0}, None, torch.zeros(1, 3, 8, 8), False, 0.5, "the loss became nan at step 3"))
    tb.close()
    acc = events(tmp_path)
    assert "image/final" not in acc.Tags()["images"] and not acc.Tags()["scalars"]
    assert b"the loss became nan at step 3" in acc.Tensors("error/text_summary")[0].tensor_proto.string_val[0]


def test_curves_and_step_pngs(tmp_path):
    curves, saver = Curves(), SaveEvery(tmp_path, 2)
    for step in range(5):
        curves.on_losses(step, evaluation(float(step)))
        saver.on_image(step, torch.full((1, 3, 4, 4), step / 8))
    assert curves.values["loss/total"] == [(s, float(s)) for s in range(5)]
    assert sorted(p.name for p in tmp_path.glob("step_*.png")) == ["step_00002.png", "step_00004.png"]
    assert torch.allclose(load_image(tmp_path / "step_00004.png"), torch.full((3, 4, 4), 0.5), atol=0.5 / 255)


def test_an_older_runs_events_stay_in_its_tb_folder(tmp_path):
    assert events_dir(tmp_path) == tmp_path
    (tmp_path / "tb").mkdir()
    assert events_dir(tmp_path) == tmp_path / "tb"
