"""The default balance (loss.beta null): the weights say what beta is. torchvision's weights keep the published
recipe, 1.032e9, byte for byte; Caffe's and MatConvNet's [0, 255] input get layer weights w_l proportional to
1 / E_l(0), then beta * E(0) = 3 * alpha * L(0), computed here by hand from the targets; a beta given is used as
it is; a resumed run keeps its beta and its layer weights."""

import shutil

import pytest
import torch
from conftest import SHALLOW, SMOKE, FirstLevel, api, events, hparams_of, interrupt_after, run_job

from stylelab import build, checkpoint, loop, signals
from stylelab.io import images
from stylelab.losses.balance import BALANCES, PAPER, rule_for
from stylelab.losses.style import gram
from stylelab.models.formats import CAFFE
from stylelab.models.vgg import VGGFeatures
from stylelab.models.weights import features_state_dict, random_state_dict

PICTURES = {
    "content": torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(1)),
    "style": torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(2)),
}


@pytest.fixture(scope="module")
def caffe_file(tmp_path_factory):
    """Random weights saved as a file the user says is in Caffe's convention ([0, 255] BGR input)."""
    path = tmp_path_factory.mktemp("w") / "mine.pth"
    torch.save(random_state_dict(seed=3), path)
    return path


def run(*overrides, folder=None, **kwargs):
    cfg, choices = api.compose_with_choices(*SMOKE, "steps=2", *overrides)
    return loop.run(build.build(cfg, choices), folder, pictures=PICTURES, stop=lambda: None, **kwargs)


def test_torchvisions_weights_keep_the_published_beta_byte_for_byte(tmp_path):
    run(folder=tmp_path / "default")
    run("loss.beta=1.032e9", folder=tmp_path / "given")
    assert (tmp_path / "default" / "final.png").read_bytes() == (tmp_path / "given" / "final.png").read_bytes()
    assert hparams_of(tmp_path / "default")["loss.beta"] == pytest.approx(1.032e9)
    style = events(tmp_path / "default").Scalars("loss/style")[-1].value
    assert events(tmp_path / "default").Scalars("loss/weighted/style")[-1].value == pytest.approx(
        1.032e9 * style, rel=1e-6
    )


def by_hand(state, convention, content, style, size=48):
    """(3 * L(0) / E(0), {layer: w_l}) with the layers of the default objective, from the responses of the level's
    images: w_l = (1 / E_l(0)) / sum_k (1 / E_k(0)) (equal w_l given, summing to 1), E(0) = sum_l w_l E_l(0)."""
    content_layer, style_layers = "relu2_1", ["relu1_1", "relu2_1"]  # SHALLOW
    net = VGGFeatures([content_layer, *style_layers], state, convention=convention)
    with torch.no_grad():
        p = net(content[None])[content_layer].double()
        l0 = 0.5 * p.pow(2).sum()
        responses = net(style[None])
        e = {}
        for layer in style_layers:
            a = gram(responses[layer].double())
            n, m = responses[layer].shape[1], responses[layer].shape[2] * responses[layer].shape[3]
            e[layer] = float(a.pow(2).sum() / (4 * n**2 * m**2))
    inverse = sum(1 / v for v in e.values())
    w = {layer: (1 / v) / inverse for layer, v in e.items()}
    return float(3 * l0 / sum(w[layer] * e[layer] for layer in e)), w


def test_caffe_input_gets_the_rule_from_its_targets(caffe_file):
    level = FirstLevel(*SMOKE, *SHALLOW, f"model.weights={caffe_file}", "model.format=caffe", pictures=PICTURES)
    assert rule_for(level.weights) is BALANCES["caffe"]
    balanced = {"style": level.parts.objective.weights["style"]}  # set as the run sets it, before the first step
    state = features_state_dict(random_state_dict(seed=3), "t")
    beta, w = by_hand(state, CAFFE, level.images.content[0], level.images.styles[0][0])
    assert balanced["style"] == pytest.approx(beta, rel=1e-4)
    assert level.parts.objective.terms["style"].layers == pytest.approx(w, rel=1e-5)
    # every layer's target now weighs the same: w_l E_l(0) equal
    at_zero = level.parts.objective.at_zero(level.features(level.images.content), level.images.content)["style"]
    shares = [w[layer] * at_zero[layer] for layer in w]
    assert shares[0] == pytest.approx(shares[1], rel=1e-5)


def test_layer_weights_given_are_evened_out_in_proportion():
    # w_l' = w_l / E_l(0), rescaled to the w_l's sum; a layer whose target is all zero leaves them as given
    assert BALANCES["caffe"].layer_weights({"a": 0.75, "b": 0.25}, {"a": 2.0, "b": 0.5}) == pytest.approx(
        {"a": 0.75 / 2 / (0.75 / 2 + 0.25 / 0.5), "b": 0.25 / 0.5 / (0.75 / 2 + 0.25 / 0.5)}
    )
    assert BALANCES["caffe"].layer_weights({"a": 0.5, "b": 0.5}, {"a": 2.0, "b": 0.0}) == {"a": 0.5, "b": 0.5}
    assert BALANCES["torchvision"].layer_weights({"a": 0.5, "b": 0.5}, {"a": 2.0, "b": 0.5}) == {"a": 0.5, "b": 0.5}


def test_the_rule_follows_the_activation_scale(tmp_path):
    """conv1_1 times s (zero biases): every response times s, L(0) times s^2, E(0) times s^4, beta times 1/s^2."""
    betas = []
    for s in (1.0, 10.0):
        state = random_state_dict(seed=3)
        state["features.0.weight"] = state["features.0.weight"] * s
        path = tmp_path / f"s{s:g}.pth"
        torch.save(state, path)
        level = FirstLevel(*SMOKE, *SHALLOW, f"model.weights={path}", "model.format=caffe", pictures=PICTURES)
        betas.append(level.parts.objective.weights["style"])
    assert betas[1] == pytest.approx(betas[0] / 100, rel=1e-4)


def test_a_beta_given_is_used_as_it_is_and_the_paper_network_has_the_papers(caffe_file):
    level = FirstLevel(
        *SMOKE, f"model.weights={caffe_file}", "model.format=caffe", "loss.beta=123.5", pictures=PICTURES
    )
    assert level.parts.objective.weights["style"] == 123.5
    assert PAPER.weight(5.0, 7.0) == 1e3  # stylelab-normalize's files: the paper's alpha/beta = 1e-3


def test_a_resumed_run_keeps_the_beta_it_began_with(tmp_path, caffe_file, monkeypatch, content_png, style_png):
    common = [
        f"content={content_png}",
        f"style={style_png}",
        *SMOKE,
        *SHALLOW,
        f"model.weights={caffe_file}",
        "model.format=caffe",
        "steps=4",
        "log.every=1",
    ]
    run_job(tmp_path / "whole", *common)
    with monkeypatch.context() as m:
        m.setattr(signals.StopSignals, "reason", interrupt_after(2))
        run_job(tmp_path / "part", *common)
    saved = torch.load(tmp_path / "part" / checkpoint.FILE, weights_only=True)
    assert saved["balanced"]["style"] > 0
    # a checkpoint of the version before (the same format, the chosen weights under "weights") resumes alike
    older = tmp_path / "older"
    shutil.copytree(tmp_path / "part", older)
    payload = dict(saved)
    payload["weights"] = payload.pop("balanced")
    torch.save(payload, older / checkpoint.FILE)
    run_job(older, *common, f"resume={older}")
    assert (older / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
    assert set(saved["balanced"]) == {"style", "style/relu1_1", "style/relu2_1"}  # the evened-out layer weights
    run_job(tmp_path / "part", *common, f"resume={tmp_path / 'part'}")
    assert (tmp_path / "part" / "final.png").read_bytes() == (tmp_path / "whole" / "final.png").read_bytes()
    assert hparams_of(tmp_path / "part")["loss.beta"] == pytest.approx(saved["balanced"]["style"])
    shown = hparams_of(tmp_path / "part")["loss.style_weights"]
    assert [float(v) for v in shown.strip("[]").split(",")] == [
        saved["balanced"]["style/relu1_1"],
        saved["balanced"]["style/relu2_1"],
    ]


def test_coarse_to_fine_is_balanced_at_its_final_size(tmp_path, caffe_file):
    # its last level then optimises the objective a single run at that size does, so their losses compare
    caffe = [*SHALLOW, f"model.weights={caffe_file}", "model.format=caffe"]
    run(*caffe, "schedule.sizes=[24,48]", "schedule.steps=[1,1]", folder=tmp_path / "c2f")
    run(*caffe, "image.size=48", folder=tmp_path / "single")
    run(*caffe, "image.size=24", folder=tmp_path / "coarse")
    c2f, single, coarse = (hparams_of(tmp_path / name) for name in ("c2f", "single", "coarse"))
    assert float(c2f["loss.beta"]) == pytest.approx(float(single["loss.beta"]), rel=1e-5)
    assert c2f["loss.style_weights"] == single["loss.style_weights"]
    assert float(coarse["loss.beta"]) != pytest.approx(float(single["loss.beta"]), rel=1e-2)  # the size matters
    # and the final size's images and targets are what the c2f run's last level scored: its last loss is the
    # single run's objective, not the coarse one's
    content = images.resize_longest(PICTURES["content"], 48)
    style = images.resize_to(PICTURES["style"], tuple(content.shape[-2:]))
    beta, _ = by_hand(features_state_dict(random_state_dict(seed=3), "t"), CAFFE, content, style)
    assert float(c2f["loss.beta"]) == pytest.approx(beta, rel=1e-4)
