"""Weight files people have: the same weights as torchvision .pth, Caffe .pth and MatConvNet .mat give the
same responses; model.format=auto decides only where it can be sure."""

import sys

import numpy as np
import pytest
import torch

from stylelab.errors import StyleLabError
from stylelab.models.arch import ARCHS, layer_table
from stylelab.models.formats import CAFFE, IMAGENET_MEAN, IMAGENET_STD, TORCHVISION
from stylelab.models.vgg import build_extractor
from stylelab.models.weights import load_weights as load_weights_of
from stylelab.models.weights import random_state_dict

sio = pytest.importorskip("scipy.io")

RELUS = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1"]
LAYERS = layer_table(ARCHS["vgg19"])
CONV_INDICES = [index for name, index in LAYERS.items() if name.startswith("conv")]


def load_weights(weights, **kwargs):
    return load_weights_of("vgg19", weights, **kwargs)


@pytest.fixture(scope="module")
def tv_state():
    """Random VGG19 in torchvision's convention, with non-zero biases so the bias handling is checked too."""
    state = random_state_dict(seed=11)
    gen = torch.Generator().manual_seed(12)
    for i in CONV_INDICES:
        state[f"features.{i}.bias"] = 0.1 * torch.randn(state[f"features.{i}.bias"].shape, generator=gen)
    return state


@pytest.fixture(scope="module")
def picture():
    return torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(13))  # RGB in [0, 1]


def to_caffe(state):
    """The same function for Caffe's input: conv1_1 re-expressed for BGR, [0, 255], minus the Caffe mean.

    Only zero padding differs (torchvision pads at the ImageNet mean, Caffe at its own mean pixel), so the
    responses agree away from the border.
    """
    out = dict(state)
    w = state["features.0.weight"].double()  # (64, 3, 3, 3), input channels R, G, B
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    w_bgr = (w / (255 * std).view(1, 3, 1, 1)).flip(1)  # per unit of 255*x, in B, G, R order
    offset = torch.tensor(CAFFE.mean, dtype=torch.float64) - 255 * torch.tensor(IMAGENET_MEAN).double().flip(0)
    bias = state["features.0.bias"].double() + (w_bgr * offset.view(1, 3, 1, 1)).sum((1, 2, 3))
    out["features.0.weight"], out["features.0.bias"] = w_bgr.float(), bias.float()
    return out


def write_mat(path, state, mean_rgb, nesting="old", arch="vgg19"):
    """imagenet-vgg-verydeep-19.mat's nesting: a 1 x 43 cell array of 1 x 1 structs, conv weights as a 1 x 2
    cell {H x W x Cin x Cout kernels, bias}; the mean image at normalization (old) or meta.normalization (new)."""
    mean_image = np.broadcast_to(np.asarray(mean_rgb, dtype=np.float32), (8, 8, 3)).copy()
    if nesting == "old":
        fields = ["weights", "pad", "type", "name", "stride"]
        mean_image_holder = {"normalization": struct(averageImage=mean_image, imageSize=np.array([[224, 224, 3]]))}
        extra = {"classes": struct(name=np.array(["n01440764"], dtype=object))}
    else:
        fields = ["name", "type", "weights", "size", "pad", "stride", "precious"]
        norm = struct(averageImage=mean_image[:1, :1], imageSize=np.array([[224, 224, 3]]))
        mean_image_holder = {"meta": struct(inputs=np.zeros((1, 1)), classes=np.zeros((1, 1)), normalization=norm)}
        extra = {}
    names = list(layer_table(ARCHS[arch])) + ["fc6", "relu6", "fc7", "relu7", "fc8", "prob"]
    cells = np.empty((1, len(names)), dtype=object)
    for i, name in enumerate(names):
        kind = (
            "conv" if name.startswith(("conv", "fc")) else "softmax" if name == "prob" else name.rstrip("0123456789_")
        )
        weights = np.zeros((1, 0), dtype=object)
        if name.startswith("conv"):
            kernels = state[f"features.{i}.weight"].numpy().transpose(2, 3, 1, 0)  # (H, W, Cin, Cout)
            weights = np.empty((1, 2), dtype=object)
            weights[0, 0], weights[0, 1] = kernels, state[f"features.{i}.bias"].numpy().reshape(-1, 1)
        elif name.startswith("fc"):  # tiny stand-ins: the reader must stop after the 16 feature convs
            weights = np.empty((1, 2), dtype=object)
            weights[0, 0], weights[0, 1] = np.ones((1, 1, 2, 2), np.float32), np.ones((2, 1), np.float32)
        values = {
            "weights": weights,
            "pad": np.array([[1, 1, 1, 1]]),
            "type": kind,
            "name": name,
            "stride": np.array([[1, 1]]),
            "size": np.zeros((1, 4)),
            "precious": np.array([[0]]),
        }
        cells[0, i] = struct(**{f: values[f] for f in fields})
    sio.savemat(str(path), {"layers": cells, **mean_image_holder, **extra})
    return path


def struct(**fields):
    record = np.zeros((1, 1), dtype=[(name, object) for name in fields])
    for name, value in fields.items():
        record[0, 0][name] = value
    return record


def test_caffe_conversion_is_what_the_convention_undoes(tv_state):
    """The test's own converter, checked on conv1_1 alone by hand: interior responses equal."""
    x = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    tv = torch.nn.functional.conv2d((x - mean) / std, tv_state["features.0.weight"], tv_state["features.0.bias"])
    caffe = to_caffe(tv_state)
    x_caffe = x.flip(1) * 255 - torch.tensor(CAFFE.mean).view(1, 3, 1, 1)
    got = torch.nn.functional.conv2d(x_caffe, caffe["features.0.weight"], caffe["features.0.bias"])
    torch.testing.assert_close(got, tv, atol=1e-4, rtol=0)


def test_same_weights_in_three_formats_give_the_same_responses(tmp_path, tv_state, picture):
    torch.save(tv_state, tmp_path / "tv.pth")
    torch.save(to_caffe(tv_state), tmp_path / "caffe.pth")
    # with the mean pixel at 255 * ImageNet mean, MatConvNet's zero padding is torchvision's: equal everywhere
    mat_state = dict(tv_state)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    mat_state["features.0.weight"] = tv_state["features.0.weight"] / (255 * std)
    write_mat(tmp_path / "net.mat", mat_state, [255 * m for m in IMAGENET_MEAN])

    def responses(path, fmt):
        return build_extractor(RELUS, weights=str(path), format=fmt, pooling="max")(picture)

    tv = responses(tmp_path / "tv.pth", "torchvision")
    caffe = responses(tmp_path / "caffe.pth", "caffe")
    mat = responses(tmp_path / "net.mat", "auto")
    for name in RELUS:
        assert tv[name].abs().max() > 0.1  # not trivially equal
        torch.testing.assert_close(mat[name], tv[name], atol=1e-4, rtol=0)
        # padding differs between torchvision and Caffe only at the border; 4 pixels clear it up to relu3_1
        torch.testing.assert_close(caffe[name][..., 4:-4, 4:-4], tv[name][..., 4:-4, 4:-4], atol=1e-4, rtol=0)


def test_matconvnet_old_nesting_is_the_real_files(tmp_path, tv_state):
    path = write_mat(tmp_path / "imagenet-vgg-verydeep-19.mat", tv_state, [123.68, 116.779, 103.939])
    mat = sio.loadmat(str(path))
    assert {"layers", "normalization", "classes"} <= set(mat)
    # the seed article's indexing reaches the kernels and bias of conv1_1 and conv2_1 (cell 5)
    for cell, index in ((0, 0), (5, LAYERS["conv2_1"])):
        kernels = mat["layers"][0][cell][0][0][0][0][0]
        bias = mat["layers"][0][cell][0][0][0][0][1]
        assert kernels.shape == tuple(tv_state[f"features.{index}.weight"].permute(2, 3, 1, 0).shape)
        np.testing.assert_array_equal(bias.reshape(-1), tv_state[f"features.{index}.bias"].numpy())
    assert mat["normalization"][0][0][0].shape == (8, 8, 3)  # averageImage, as the TF ports read it

    loaded = load_weights(str(path))
    assert loaded.format == "matconvnet"
    assert loaded.convention.mean == pytest.approx((123.68, 116.779, 103.939))
    assert loaded.convention.scale == 255 and not loaded.convention.bgr and loaded.convention.std == (1, 1, 1)
    for index in CONV_INDICES:
        assert torch.equal(loaded.state[f"{index}.weight"], tv_state[f"features.{index}.weight"])
        assert torch.equal(loaded.state[f"{index}.bias"], tv_state[f"features.{index}.bias"])


def test_matconvnet_new_nesting_reads_the_same(tmp_path, tv_state):
    old = load_weights(str(write_mat(tmp_path / "old.mat", tv_state, [120.0, 110.0, 100.0], "old")))
    new = load_weights(str(write_mat(tmp_path / "new.mat", tv_state, [120.0, 110.0, 100.0], "new")))
    assert sio.loadmat(str(tmp_path / "new.mat"))["layers"][0][0][0][0][0][0] == "conv1_1"  # name comes first
    assert new.convention == old.convention
    assert all(torch.equal(new.state[k], old.state[k]) for k in old.state)


def test_kernel_axes_follow_the_matlab_replica(tmp_path, tv_state):
    """kernels[h, w, c, k] is weight[k, c, h, w]: the first MATLAB axis is the height."""
    state = dict(tv_state)
    weight = torch.zeros_like(state["features.0.weight"])
    weight[5, 1, 0, 2] = 1.0  # filter 5 reads channel G at the top-right tap
    state["features.0.weight"] = weight
    path = write_mat(tmp_path / "net.mat", state, [0.0, 0.0, 0.0])
    kernels = sio.loadmat(str(path))["layers"][0][0][0][0][0][0][0]
    assert kernels[0, 2, 1, 5] == 1.0 and kernels.sum() == 1.0
    assert torch.equal(load_weights(str(path)).state["0.weight"], weight)


def test_auto_knows_the_published_files_by_name(tmp_path, tv_state):
    torch.save(tv_state, tmp_path / "vgg19-d01eb7cb.pth")
    torch.save(tv_state, tmp_path / "vgg19-dcbb9e9d.pth")
    assert load_weights(str(tmp_path / "vgg19-d01eb7cb.pth")).convention == CAFFE
    assert load_weights(str(tmp_path / "vgg19-dcbb9e9d.pth")).convention == TORCHVISION


def test_auto_knows_vgg16s_published_files(tmp_path):
    state = random_state_dict("vgg16", seed=3)
    torch.save(state, tmp_path / "vgg16-00b39a1b.pth")  # jcjohnson/pytorch-vgg's Caffe VGG16
    torch.save(state, tmp_path / "vgg16-397923af.pth")  # torchvision's
    assert load_weights_of("vgg16", str(tmp_path / "vgg16-00b39a1b.pth")).convention == CAFFE
    assert load_weights_of("vgg16", str(tmp_path / "vgg16-397923af.pth")).convention == TORCHVISION
    with pytest.raises(StyleLabError, match="cannot tell whether vgg19-d01eb7cb.pth expects"):  # VGG19's, not VGG16's
        torch.save(state, tmp_path / "vgg19-d01eb7cb.pth")
        load_weights_of("vgg16", str(tmp_path / "vgg19-d01eb7cb.pth"))


def test_vgg16_from_matconvnet(tmp_path):
    state = random_state_dict("vgg16", seed=5)
    path = write_mat(tmp_path / "imagenet-vgg-verydeep-16.mat", state, [123.68, 116.779, 103.939], arch="vgg16")
    loaded = load_weights_of("vgg16", str(path))
    assert loaded.format == "matconvnet" and loaded.convention.scale == 255
    for name, index in layer_table(ARCHS["vgg16"]).items():
        if name.startswith("conv"):
            assert torch.equal(loaded.state[f"{index}.weight"], state[f"features.{index}.weight"])
    with pytest.raises(
        StyleLabError, match="imagenet-vgg-verydeep-16.mat holds VGG16 weights, not VGG19; use model=vgg16$"
    ):
        load_weights(str(path))


def test_auto_knows_a_renamed_published_file_by_its_hash(tmp_path, tv_state, monkeypatch):
    import hashlib

    path = tmp_path / "my_vgg.pth"
    torch.save(tv_state, path)
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setitem(ARCHS["vgg19"].known, prefix, "caffe")
    assert load_weights(str(path)).format == "caffe"


def test_auto_refuses_to_guess_an_unknown_pth(tmp_path, tv_state):
    torch.save(tv_state, tmp_path / "mine.pth")
    expected = r"cannot tell whether mine\.pth expects .*add model\.format=torchvision or model\.format=caffe$"
    with pytest.raises(StyleLabError, match=expected):
        load_weights(str(tmp_path / "mine.pth"))
    assert load_weights(str(tmp_path / "mine.pth"), format="caffe").convention == CAFFE


def test_weight_scale_separates_only_converted_random_weights():
    """Why auto has no statistic: converting the same random weights to Caffe's input shrinks conv1_1 ~57x,
    but independently trained files do not differ so (Caffe-trained VGG16's conv1_1 starts 0.429, 0.373,
    -0.061, ..., the same magnitude as torchvision's), so a threshold set on random weights would call the real
    Caffe file torchvision."""
    state = random_state_dict(seed=1)
    ratio = state["features.0.weight"].std() / to_caffe(state)["features.0.weight"].std()
    assert 40 < ratio < 80  # 1 / (255 * ImageNet std) ~ 1/57


def test_format_errors_are_one_sentence(tmp_path, tv_state, monkeypatch):
    with pytest.raises(StyleLabError, match="model.format must be one of auto, torchvision, caffe, matconvnet, not"):
        load_weights("random", format="onnx")
    with pytest.raises(StyleLabError, match="model.weights=imagenet is torchvision's VGG19, so model.format must be"):
        load_weights("imagenet", format="caffe")
    (tmp_path / "v73.mat").write_bytes(b"MATLAB 7.3 MAT-file" + b"\0" * 200)
    with pytest.raises(StyleLabError, match=r"cannot read .*v73\.mat as a MatConvNet \.mat file"):
        load_weights(str(tmp_path / "v73.mat"))
    sio.savemat(str(tmp_path / "other.mat"), {"x": np.zeros(3)})
    with pytest.raises(StyleLabError, match="has no 'layers' variable"):
        load_weights(str(tmp_path / "other.mat"))
    with pytest.raises(StyleLabError, match="has 15 conv layers before its classifier, not the 16 of VGG19's features"):
        load_weights(str(write_mat_partial(tmp_path / "short.mat", tv_state)))
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.io", None)
    with pytest.raises(StyleLabError, match=r"needs SciPy; install it with pip install 'stylelab\[matconvnet\]'"):
        load_weights(str(tmp_path / "other.mat"))


def write_mat_partial(path, state):
    """A .mat whose last conv is missing (its type says relu)."""
    write_mat(path, state, [0.0, 0.0, 0.0])
    mat = sio.loadmat(str(path))
    mat["layers"][0][LAYERS["conv5_4"]][0][0]["type"] = np.array(["relu"])
    for fc in range(len(LAYERS), len(LAYERS) + 6):
        mat["layers"][0][fc][0][0]["type"] = np.array(["relu"])
    sio.savemat(str(path), {k: v for k, v in mat.items() if not k.startswith("__")})
    return path


def test_model_format_is_a_checked_config_key():
    from conftest import REPO, compose_cfg
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    assert compose_cfg().model.format == "auto" and compose_cfg("model.format=caffe").model.format == "caffe"
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        with pytest.raises(ConfigCompositionException):
            compose(config_name="config", overrides=["model.format=onnx"])
