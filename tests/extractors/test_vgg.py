import urllib.error

import pytest
import torch
import torch.nn as nn
import torchvision

from stylelab.errors import StyleLabError
from stylelab.extractors.vgg import (
    LAYER_NAMES,
    LAYERS,
    VGGFeatures,
    build_extractor,
    features_state_dict,
    imagenet_cache_file,
    load_weights,
    min_input_side,
    random_state_dict,
)


@pytest.fixture(scope="module")
def state():
    return features_state_dict(random_state_dict(seed=7), "test")


def test_layer_table_matches_torchvision_indices():
    features = torchvision.models.vgg19().features
    assert len(LAYER_NAMES) == len(features) == 37
    for name, index in LAYERS.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(features[index], kind), name
    # the values of gatys.md's table
    assert (LAYERS["conv1_1"], LAYERS["pool1"], LAYERS["conv4_2"], LAYERS["relu4_2"]) == (0, 4, 21, 22)
    assert (LAYERS["relu5_1"], LAYERS["conv5_4"], LAYERS["pool5"]) == (29, 34, 36)
    # channels per block
    assert features[LAYERS["conv3_4"]].out_channels == 256
    assert features[LAYERS["conv5_1"]].out_channels == 512


def test_conv_hook_is_pre_relu_and_relu_hook_is_rectified(state):
    model = VGGFeatures(["conv1_1", "relu1_1", "conv2_2", "relu2_2"], state)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out["conv1_1"].min() < 0
    assert out["relu1_1"].min() >= 0
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp(min=0), rtol=0, atol=0)
    torch.testing.assert_close(out["relu2_2"], out["conv2_2"].clamp(min=0), rtol=0, atol=0)
    assert out["conv2_2"].shape == (1, 128, 16, 16)


def test_responses_match_torchvision_with_normalisation_inside(state):
    reference = torchvision.models.vgg19().features.eval()
    reference.load_state_dict(state)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = reference[: LAYERS["relu3_1"] + 1]((x - mean) / std)
    got = VGGFeatures(["relu3_1"], state, pooling="max")(x)["relu3_1"]
    torch.testing.assert_close(got, expected)


def test_truncated_after_deepest_layer_and_avg_pooling(state):
    model = VGGFeatures(["relu3_1", "relu1_1"], state, pooling="avg")
    assert len(model.net) == LAYERS["relu3_1"] + 1
    assert list(dict(model.net.named_children()))[-1] == "relu3_1"
    pools = [m for m in model.net if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
    assert len(pools) == 2 and all(isinstance(m, nn.AvgPool2d) for m in pools)
    assert list(model(torch.rand(1, 3, 16, 16))) == ["relu3_1", "relu1_1"]


def test_weights_frozen_and_eval(state):
    model = VGGFeatures(["relu1_1"], state).train()
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())


def test_unknown_layer_names_the_valid_choices(state):
    with pytest.raises(StyleLabError, match=r"unknown layer 'relu9_1'.*conv1_1, relu1_1, conv1_2"):
        VGGFeatures(["relu9_1"], state)


def test_min_input_side():
    assert min_input_side(["relu1_1"]) == 1
    assert min_input_side(["relu5_1", "relu1_1"]) == 16
    assert min_input_side(["pool5"]) == 32


def test_weights_file_full_model_or_features_only(tmp_path, state):
    full = random_state_dict(seed=3)
    full["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(full, tmp_path / "full.pth")
    torch.save({k: v for k, v in full.items() if k.startswith("features.")}, tmp_path / "features.pth")
    a = load_weights(str(tmp_path / "full.pth"), format="torchvision").state
    b = load_weights(str(tmp_path / "features.pth"), format="torchvision").state
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_weights_file_wrong_keys_are_named(tmp_path):
    bad = random_state_dict(seed=3)
    del bad["features.21.weight"]
    bad["features.40.weight"] = torch.zeros(1)
    bad["features.0.bias"] = torch.zeros(3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(StyleLabError) as err:
        load_weights(str(tmp_path / "bad.pth"))
    message = str(err.value)
    assert "missing features.21.weight" in message
    assert "unexpected features.40.weight" in message
    assert "features.0.bias has shape (3,), expected (64,)" in message


def test_weights_file_missing_or_not_a_state_dict(tmp_path):
    with pytest.raises(StyleLabError, match="does not exist"):
        load_weights(str(tmp_path / "nope.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(StyleLabError, match="cannot read weights file"):
        load_weights(str(tmp_path / "junk.pth"))


def test_random_weights_warn_and_are_seeded():
    with pytest.warns(UserWarning, match="NOT meaningful art"):
        a = load_weights("random", seed=5).state
    with pytest.warns(UserWarning):
        b = load_weights("random", seed=5).state
    assert torch.equal(a["0.weight"], b["0.weight"])


def test_imagenet_loads_through_torchvision_cache(torch_home_with_weights, random_weights_file, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert imagenet_cache_file().parent == torch_home_with_weights / "hub" / "checkpoints"
    model = build_extractor(["relu1_1"], weights="imagenet", progress=False)
    expected = torch.load(random_weights_file, weights_only=True)["features.0.weight"]
    assert torch.equal(model.net.conv1_1.weight, expected)


def test_imagenet_offline_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(StyleLabError) as err:
        build_extractor(["relu1_1"], weights="imagenet", progress=False)
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "empty_home" / "hub" / "checkpoints") in message
