"""The models: VGG16 and VGG19 from one table, their layers by name, receptive-field paths, weight files."""

import urllib.error
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torchvision

from stylelab.errors import StyleLabError
from stylelab.models.arch import ARCHS, layer_table
from stylelab.models.vgg import VGG, VGGFeatures, build_extractor
from stylelab.models.weights import features_state_dict, imagenet_cache_file, load_weights, random_state_dict

LAYERS = layer_table(ARCHS["vgg19"])


@pytest.fixture(scope="module")
def state():
    return features_state_dict(random_state_dict(seed=7), "test")


@pytest.mark.parametrize(
    "name,builder,count", [("vgg16", torchvision.models.vgg16, 31), ("vgg19", torchvision.models.vgg19, 37)]
)
def test_layer_table_matches_torchvision_indices(name, builder, count):
    features = builder().features
    table = layer_table(ARCHS[name])
    assert len(table) == len(features) == count and VGG(name).layers == tuple(table)
    for layer, index in table.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[layer[:4]]
        assert isinstance(features[index], kind), layer
    assert features[table["conv3_1"]].out_channels == 256 and features[table["conv5_1"]].out_channels == 512
    # the paper's default layers exist in both networks
    VGG(name).check_layers(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"])


def test_layer_indices_of_gatys_table():
    assert (LAYERS["conv1_1"], LAYERS["pool1"], LAYERS["conv4_2"], LAYERS["relu4_2"]) == (0, 4, 21, 22)
    assert (LAYERS["relu5_1"], LAYERS["conv5_4"], LAYERS["pool5"]) == (29, 34, 36)
    vgg16 = layer_table(ARCHS["vgg16"])
    assert (vgg16["conv3_3"], vgg16["pool3"], vgg16["relu4_2"], vgg16["pool5"]) == (14, 16, 20, 30)


def test_a_layer_only_vgg19_has_is_one_sentence_listing_vgg16s_layers():
    with pytest.raises(StyleLabError) as err:
        VGG("vgg16").check_layers(["relu1_1", "relu5_4"], "style layer")
    message = str(err.value)
    assert message.startswith("unknown style layer 'relu5_4'; valid layers are conv1_1, relu1_1, conv1_2")
    assert "relu5_3, pool5 (relu5_4 is a layer of VGG19, not of VGG16)" in message and "\n" not in message
    with pytest.raises(StyleLabError, match="model.arch must be one of vgg16, vgg19, not 'vgg11'"):
        VGG("vgg11")


def test_vgg16_responses_match_torchvision():
    state = random_state_dict("vgg16", seed=2)
    reference = torchvision.models.vgg16().features.eval()
    reference.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = reference[: layer_table(ARCHS["vgg16"])["relu5_3"] + 1]((x - mean) / std)
    got = VGGFeatures(["relu5_3"], features_state_dict(state, "t", "vgg16"), arch="vgg16", pooling="max")(x)["relu5_3"]
    torch.testing.assert_close(got, expected)


def test_a_file_of_the_other_network_is_named(tmp_path):
    torch.save(random_state_dict("vgg16", seed=1), tmp_path / "mine.pth")
    with pytest.raises(StyleLabError, match=r"mine.pth holds VGG16 weights, not VGG19; use model=vgg16$"):
        load_weights("vgg19", str(tmp_path / "mine.pth"), format="torchvision")
    assert load_weights("vgg16", str(tmp_path / "mine.pth"), format="torchvision").state["28.weight"].shape == (
        512,
        512,
        3,
        3,
    )


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


@pytest.mark.parametrize("name", ["vgg16", "vgg19"])
def test_min_input_side_and_receptive_field_paths(name):
    model = VGG(name)
    assert model.min_input_side(["relu1_1"]) == 1
    assert model.min_input_side(["relu5_1", "relu1_1"]) == 16
    assert model.min_input_side(["pool5"]) == 32
    convs = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}[name]
    expected = [op for n in convs for op in ["conv"] * n + ["pool"]]
    assert model.path("pool5") == expected and model.path("relu4_1") == expected[: expected.index("pool", 9) + 2]


def test_guides_follow_each_networks_receptive_field():
    """A one-pixel region grows by one pixel per 3x3 conv (all) and halves with each pool."""
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 15, 15] = 1
    for name in ("vgg16", "vgg19"):
        model = VGG(name)
        grown = model.propagate_guide(mask, "relu3_1", "all")  # convs 2, pool, 2, pool, 1
        assert grown.shape == (1, 1, 8, 8) and grown.sum() > 0
        assert model.propagate_guide(mask, "relu3_1", "inside").sum() == 0  # nothing lies wholly inside a pixel
    deep16, deep19 = (VGG(n).propagate_guide(mask, "relu4_1", "all") for n in ("vgg16", "vgg19"))
    assert deep19.sum() >= deep16.sum()  # VGG19 has one conv more before pool3


def test_weights_file_full_model_or_features_only(tmp_path, state):
    full = random_state_dict(seed=3)
    full["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(full, tmp_path / "full.pth")
    torch.save({k: v for k, v in full.items() if k.startswith("features.")}, tmp_path / "features.pth")
    a = load_weights("vgg19", str(tmp_path / "full.pth"), format="torchvision").state
    b = load_weights("vgg19", str(tmp_path / "features.pth"), format="torchvision").state
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_weights_file_wrong_keys_are_named(tmp_path):
    bad = random_state_dict(seed=3)
    del bad["features.21.weight"]
    bad["features.40.weight"] = torch.zeros(1)
    bad["features.0.bias"] = torch.zeros(3)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(StyleLabError) as err:
        load_weights("vgg19", str(tmp_path / "bad.pth"))
    message = str(err.value)
    assert "missing features.21.weight" in message
    assert "unexpected features.40.weight" in message
    assert "features.0.bias has shape (3,), expected (64,)" in message


def test_weights_file_missing_or_not_a_state_dict(tmp_path):
    with pytest.raises(StyleLabError, match="does not exist"):
        load_weights("vgg19", str(tmp_path / "nope.pth"))
    with pytest.raises(StyleLabError, match="is a folder; give the weights file itself"):
        load_weights("vgg19", str(tmp_path))
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(StyleLabError, match="cannot read weights file"):
        load_weights("vgg19", str(tmp_path / "junk.pth"))


def test_random_weights_warn_and_are_seeded():
    with pytest.warns(UserWarning, match="NOT meaningful art"):
        a = load_weights("vgg19", "random", seed=5).state
    with pytest.warns(UserWarning):
        b = load_weights("vgg19", "random", seed=5).state
    assert torch.equal(a["0.weight"], b["0.weight"])


def test_imagenet_loads_through_torchvision_cache(torch_home_with_weights, random_weights_file, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert imagenet_cache_file().parent == torch_home_with_weights / "hub" / "checkpoints"
    model = build_extractor(["relu1_1"], weights="imagenet", progress=False)
    expected = torch.load(random_weights_file, weights_only=True)["features.0.weight"]
    assert torch.equal(model.net.conv1_1.weight, expected)


@pytest.mark.parametrize("name,file", [("vgg16", "vgg16-397923af.pth"), ("vgg19", "vgg19-dcbb9e9d.pth")])
def test_imagenet_offline_names_file_and_folder(tmp_path, monkeypatch, name, file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(StyleLabError) as err:
        build_extractor(["relu1_1"], model=name, weights="imagenet", progress=False)
    message = str(err.value)
    # the file, its full URL, the hash torchvision checks (its name carries the first 8 hex digits) and its folder
    assert message == (
        f"1 file could not be downloaded (no network); put it into its folder, then run again: {file} "
        f"from https://download.pytorch.org/models/{file} (sha256 starting {file[6:14]}) into "
        f"{tmp_path / 'empty_home' / 'hub' / 'checkpoints'}"
    )


def test_vgg16_imagenet_loads_through_torchvision_cache(tmp_path, monkeypatch):
    """torchvision's own download-and-cache path, with a temporary TORCH_HOME holding the file it looks for."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("the network was touched"))
    target = imagenet_cache_file("vgg16")
    assert target == tmp_path / "home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    target.parent.mkdir(parents=True)
    state = random_state_dict("vgg16", seed=4)
    torch.save(state, target)
    model = build_extractor(["relu5_3"], model="vgg16", weights="imagenet", progress=False)
    assert torch.equal(model.net.conv5_3.weight, state["features.28.weight"])


def test_a_third_network_of_the_family_is_one_row_of_the_table(monkeypatch):
    """VGG11 (blocks of 1, 1, 2, 2, 2 convs) from one row: its layers, checks, paths and torchvision's responses."""
    from stylelab.models.arch import Arch, imagenet_weights

    monkeypatch.setitem(
        ARCHS,
        "vgg11",
        Arch(
            "vgg11",
            (1, 1, 2, 2, 2),
            "VGG11_Weights.IMAGENET1K_V1",
            torchvision.models.VGG11_Weights.IMAGENET1K_V1.url,
            {"8a719046": "torchvision"},
            "imagenet-vgg-verydeep-11.mat",
        ),
    )
    assert imagenet_weights(ARCHS["vgg11"]) is torchvision.models.VGG11_Weights.IMAGENET1K_V1
    model = VGG("vgg11", weights="random")
    assert model.layers[:6] == ("conv1_1", "relu1_1", "pool1", "conv2_1", "relu2_1", "pool2")
    assert model.min_input_side(["relu5_2"]) == 16 and model.path("relu2_1") == ["conv", "pool", "conv"]
    with pytest.raises(StyleLabError, match="unknown layer 'relu4_3'"):
        model.check_layers(["relu4_3"])
    state = random_state_dict("vgg11", seed=1)
    reference = torchvision.models.vgg11().features.eval()
    reference.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = reference[: layer_table(ARCHS["vgg11"])["relu5_2"] + 1]((x - mean) / std)
    with pytest.warns(UserWarning, match="VGG11 has random weights"):
        got = VGG("vgg11", weights="random", pooling="max").features(["relu5_2"], seed=1)(x)["relu5_2"]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_each_rows_imagenet_url_is_torchvisions(name):
    # the table writes the URL out so that the cache path needs no torchvision import; it must not drift
    from stylelab.models.arch import imagenet_weights

    arch = ARCHS[name]
    assert imagenet_weights(arch).url == arch.imagenet_url
    assert imagenet_cache_file(name).name == Path(arch.imagenet_url).name
