"""The paper's normalised network: mean rectified response 1 per filter, the same function up to scale."""

import warnings

import pytest
import torch
from conftest import make_image

from stylelab.cli import normalize as cli
from stylelab.cli.common import EXIT_USER_ERROR
from stylelab.models.arch import ARCHS
from stylelab.models.formats import CAFFE, TORCHVISION
from stylelab.models.normalize import calibration_images, convs, normalize_vgg, relu_means
from stylelab.models.vgg import VGGFeatures
from stylelab.models.weights import features_state_dict, random_state_dict
from stylelab.models.weights import load_weights as load_weights_of

LAYERS = convs(ARCHS["vgg19"])
CONVS = list(LAYERS)
RELUS = ["relu" + name[len("conv") :] for name in CONVS]


def load_weights(weights, **kwargs):
    return load_weights_of("vgg19", weights, **kwargs)


@pytest.fixture(scope="module")
def state():
    """Random VGG19 with small random biases; on small noise images some deep filters never fire (dead)."""
    raw = random_state_dict(seed=21)
    gen = torch.Generator().manual_seed(22)
    for name in CONVS:
        key = f"features.{LAYERS[name]}.bias"
        raw[key] = 0.01 * torch.randn(raw[key].shape, generator=gen)
    return features_state_dict(raw, "test")


@pytest.fixture(scope="module")
def pictures():
    gen = torch.Generator().manual_seed(23)
    return [torch.rand(3, 40, 48, generator=gen), torch.rand(3, 32, 32, generator=gen)]


@pytest.fixture(scope="module")
def result(state, pictures):
    return normalize_vgg(state, TORCHVISION, pictures)


@pytest.fixture
def command(monkeypatch):
    """stylelab-normalize's main, with the global warning format it sets restored afterwards."""
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    return cli.main


def test_every_filter_has_mean_response_one_on_the_calibration_images(state, pictures, result):
    before = relu_means(state, TORCHVISION, pictures)
    assert max(float(m.max()) / float(m[m > 0].min()) for m in before.values()) > 1e3  # far from 1 before
    after = relu_means(result.state, TORCHVISION, pictures)
    for name in CONVS:
        alive = before[name] > 0
        assert result.dead[name] == int((~alive).sum())
        torch.testing.assert_close(after[name][alive], torch.ones_like(after[name][alive]), atol=1e-3, rtol=0)
        assert (after[name][~alive] == 0).all()
    assert 0 < sum(result.dead.values()) < 0.2 * sum(m.numel() for m in before.values())


def assert_same_up_to_factor(state, result, pooling):
    unseen = torch.rand(1, 3, 48, 40, generator=torch.Generator().manual_seed(24))  # not a calibration image
    original = VGGFeatures(RELUS, state, pooling=pooling)(unseen)
    normalised = VGGFeatures(RELUS, {k: v.float() for k, v in result.state.items()}, pooling=pooling)(unseen)
    for conv, relu in zip(CONVS, RELUS):
        mean = result.means[conv].float()  # (C,)
        factor = torch.where(mean > 0, mean, torch.ones_like(mean))  # dead filters: unscaled
        # float32 networks: a filter's error is relative to its summands, so compare at the layer's scale
        atol = 1e-5 * float(original[relu].abs().max())
        torch.testing.assert_close(normalised[relu] * factor.view(1, -1, 1, 1), original[relu], atol=atol, rtol=1e-4)


def test_responses_are_the_originals_over_a_positive_per_channel_factor(state, result):
    assert_same_up_to_factor(state, result, "max")  # avg pooling: in the slow test below


@pytest.mark.slow
def test_avg_pooling_calibration_gives_mean_one_with_avg_pooling(state, pictures):
    result = normalize_vgg(state, TORCHVISION, pictures, pooling="avg")
    after = relu_means(result.state, TORCHVISION, pictures, pooling="avg")
    assert all(torch.allclose(m[m > 0], torch.ones_like(m[m > 0]), atol=1e-3) for m in after.values())
    assert_same_up_to_factor(state, result, "avg")


def test_dead_filters_are_left_unscaled_and_counted(state, pictures):
    dead_state = dict(state)
    dead_state["0.weight"] = state["0.weight"].clone()
    dead_state["0.bias"] = state["0.bias"].clone()
    dead_state["0.weight"][7] = 0.0
    dead_state["0.bias"][7] = -1.0  # relu1_1 channel 7 is 0 everywhere
    result = normalize_vgg(dead_state, TORCHVISION, pictures)
    assert result.dead["conv1_1"] == 1 and result.means["conv1_1"][7] == 0
    assert result.state["0.bias"][7] == -1.0  # left unscaled
    assert torch.equal(result.state["0.weight"][7], dead_state["0.weight"][7].double())
    # conv1_2's weights reading channel 7 are not multiplied by the (absent) mean
    conv1_2 = LAYERS["conv1_2"]
    expected = dead_state[f"{conv1_2}.weight"][:, 7].double() / result.means["conv1_2"].view(-1, 1, 1)
    torch.testing.assert_close(result.state[f"{conv1_2}.weight"][:, 7], expected)
    assert all(v.isfinite().all() for v in result.state.values())
    after = relu_means(result.state, TORCHVISION, pictures)
    alive = torch.ones(64, dtype=torch.bool)
    alive[7] = False
    torch.testing.assert_close(after["conv1_1"][alive], torch.ones(63, dtype=torch.float64), atol=1e-3, rtol=0)


@pytest.mark.slow
def test_vgg16_is_normalised_too(tmp_path, capsys, command, pictures):
    state = features_state_dict(random_state_dict("vgg16", seed=8), "test", "vgg16")
    result = normalize_vgg(state, TORCHVISION, pictures, arch="vgg16")
    after = relu_means(result.state, TORCHVISION, pictures, arch="vgg16")
    assert list(after) == list(convs(ARCHS["vgg16"])) and len(after) == 13
    assert all(torch.allclose(m[m > 0], torch.ones_like(m[m > 0]), atol=1e-3) for m in after.values())
    folder = tmp_path / "calibration"
    folder.mkdir()
    make_image(folder / "a.png", size=(48, 40), seed=1)
    command(
        [
            "--model",
            "vgg16",
            "--weights",
            "random",
            "--images",
            str(folder),
            "--size",
            "32",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "vgg16-normalised.pth"),
        ]
    )
    assert load_weights_of("vgg16", str(tmp_path / "vgg16-normalised.pth")).format == "torchvision"


def test_calibration_images_from_folders_and_files(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    make_image(folder / "a.png", size=(60, 30), seed=1)
    make_image(folder / "b.jpg", size=(30, 60), seed=2)
    (folder / "notes.txt").write_text("not an image")
    single = make_image(tmp_path / "c.png", seed=3)
    pictures = calibration_images([str(folder), str(single)], 32)
    assert [tuple(p.shape) for p in pictures] == [(3, 16, 32), (3, 32, 16), (3, 27, 32)]


@pytest.mark.slow
def test_command_writes_a_file_that_loads_with_its_convention_and_no_flags(tmp_path, capsys, command):
    folder = tmp_path / "calibration"
    folder.mkdir()
    for seed in range(3):
        make_image(folder / f"{seed}.png", size=(48, 40), seed=seed)
    raw = random_state_dict(seed=5)
    torch.save(raw, tmp_path / "caffe-like.pth")
    out = tmp_path / "vgg19-normalised.pth"

    command(
        [
            "--weights",
            str(tmp_path / "caffe-like.pth"),
            "--format",
            "caffe",
            "--images",
            str(folder),
            "--size",
            "32",
            "--out",
            str(out),
            "--device",
            "cpu",
        ]
    )
    printed = capsys.readouterr().out
    assert f"wrote {out} (caffe input convention, mean rectified response 1 over 3 images" in printed
    assert "dead filters (mean 0, left unscaled): " in printed

    loaded = load_weights(str(out))  # format=auto: the file says what it is
    assert loaded.convention == CAFFE and loaded.format == "caffe"
    pictures = calibration_images([str(folder)], 32)
    before = relu_means(raw_features := features_state_dict(raw, "raw"), CAFFE, pictures)
    after = relu_means(loaded.state, loaded.convention, pictures)  # the float32 file
    for name in CONVS:
        # filters whose mean is at float32's rounding level (< 1e-4 of the layer's largest) are noise in float32
        resolved = before[name] > 1e-4 * before[name].max()
        torch.testing.assert_close(after[name][resolved], torch.ones_like(after[name][resolved]), atol=1e-3, rtol=0)
    assert raw_features["0.weight"].dtype == torch.float32
    with pytest.raises(Exception, match="load it with model.format=auto, not torchvision"):
        load_weights(str(out), format="torchvision")


def test_command_errors_are_one_line_and_write_nothing(tmp_path, capsys, command):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.pth"
    with pytest.raises(SystemExit) as exit_info:
        command(["--weights", "random", "--images", str(tmp_path / "empty"), "--out", str(out)])
    assert exit_info.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert f"stylelab-normalize: error: no images found in {tmp_path / 'empty'}" in err
    assert "Traceback" not in err and not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "empty"]
