"""The VGG table: the features stylelab builds are torchvision's, module for module."""

import pytest
import torch
from torchvision.models.vgg import make_layers

from stylelab.models.arch import ARCHS, CHANNELS, layer_table, skeleton


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_the_skeleton_is_torchvisions_features_module_for_module(name):
    arch = ARCHS[name]
    cfg = [item for convs, channels in zip(arch.blocks, CHANNELS) for item in [channels] * convs + ["M"]]
    theirs, ours = make_layers(cfg, batch_norm=False), skeleton(arch)
    assert [repr(m) for m in ours] == [repr(m) for m in theirs]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict(), assign=True)  # the same weights give the same responses
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(ours(x), theirs(x))
    # and the layer table names the modules where they are
    table = layer_table(arch)
    assert isinstance(ours[table["conv5_1"]], torch.nn.Conv2d) and isinstance(ours[table["pool5"]], torch.nn.MaxPool2d)
    assert len(ours) == table["pool5"] + 1 == {"vgg16": 31, "vgg19": 37}[name]
