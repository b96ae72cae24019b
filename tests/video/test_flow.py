"""stylelab.video.flow: DIS and DeepFlow against the exact flow of a synthetic clip, the sentences for a missing
OpenCV, RAFT's download path (offline, through a temporary torch.hub cache) and its padding, the .flo format
(against OpenCV's own reader and writer), and FlowCache computing each flow once."""

import types
import urllib.error

import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small

from stylelab.errors import Download, NotDownloaded, StyleLabError
from stylelab.video import flow as flows
from stylelab.video.synthetic import noise_photo, pan_and_zoom
from stylelab.video.warp import endpoint_error, reliable

cv2 = pytest.importorskip("cv2")

CLIP = pan_and_zoom(noise_photo(160, 200, seed=3))  # 5 frames of 96 x 128, motion up to about 4.5 px


def epes(method, clip=CLIP) -> list[float]:
    """The endpoint error of each backward flow where the pixel was visible in the previous frame."""
    return [
        endpoint_error(method(clip.frames[k], clip.frames[k - 1]), clip.backward[k], clip.visible[k])
        for k in range(1, len(clip.frames))
    ]


def zero_epe(clip=CLIP) -> float:
    """Estimating no motion at all: the motion's own mean size (about 2.5 px here)."""
    errors = [endpoint_error(torch.zeros_like(b), b, v) for b, v in zip(clip.backward[1:], clip.visible[1:])]
    return sum(errors) / len(errors)


# Bounds: about 1.5x the worst frame measured (DIS medium 0.29-0.35 px, DeepFlow 0.16-0.20 px on this clip;
# scripts print them with -s), and far under no motion at all (about 2.5 px). The errors are largest along the
# square's edges, where both methods smooth the flow over the motion boundary.
@pytest.mark.parametrize(
    "method,bound", [(lambda: flows.DIS("medium"), 0.5), (flows.DeepFlow, 0.3)], ids=["dis-medium", "deepflow"]
)
def test_opencv_flows_find_the_synthetic_motion(method, bound):
    method = method()
    errors = epes(method)
    print(f"{method.name}: endpoint errors {[round(e, 3) for e in errors]} px (no motion: {zero_epe():.2f} px)")
    assert max(errors) < bound and max(errors) < 0.2 * zero_epe()


def test_the_opencv_flow_has_the_convention_of_warp():
    flow = flows.DIS("medium")(CLIP.frames[1], CLIP.frames[0])  # backward: frame 1 to frame 0
    assert flow.shape == (2, 96, 128) and flow.dtype == torch.float32
    # the square moved (4, 2) between the frames: its backward flow points back by that much
    inner = CLIP.squares[1][0].bool() & CLIP.squares[0][0].bool()
    assert flow[:, inner].median(dim=1).values.tolist() == pytest.approx([-4, -2], abs=0.3)


@pytest.mark.slow
def test_deepflow_at_a_larger_size():
    clip = pan_and_zoom(noise_photo(260, 340, seed=3), size=(192, 256))
    errors = epes(flows.DeepFlow(), clip)
    print(f"deepflow 256 x 192: endpoint errors {[round(e, 3) for e in errors]} px")
    assert max(errors) < 0.15  # measured 0.08-0.09


def test_dis_presets_and_a_bad_one():
    assert [flows.DIS(p).name for p in ("ultrafast", "fast", "medium")] == ["dis-ultrafast", "dis-fast", "dis-medium"]
    assert flows.DeepFlow().name == "deepflow"
    with pytest.raises(StyleLabError, match="DIS has no preset 'slow'; choose one of ultrafast, fast, medium"):
        flows.DIS("slow")


def test_a_missing_opencv_is_one_sentence_with_the_install(monkeypatch):
    monkeypatch.setattr(flows, "cv2", None)
    with pytest.raises(StyleLabError) as err:
        flows.DIS()
    assert str(err.value) == "flow=dis needs OpenCV: pip install opencv-contrib-python-headless"
    with pytest.raises(StyleLabError, match="flow=deepflow needs OpenCV: pip install"):
        flows.DeepFlow()
    # plain opencv-python: DIS is there, the contrib modules (optflow) are not
    plain = types.SimpleNamespace(
        DISOpticalFlow_create=cv2.DISOpticalFlow_create, DISOPTICAL_FLOW_PRESET_MEDIUM=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    )
    monkeypatch.setattr(flows, "cv2", plain)
    assert flows.DIS().name == "dis-medium"
    with pytest.raises(StyleLabError) as err:
        flows.DeepFlow()
    assert str(err.value) == (
        "flow=deepflow needs OpenCV's contrib modules: pip install opencv-contrib-python-headless "
        "(in place of opencv-python)"
    )


def test_grey_is_opencvs_luminance():
    frame = CLIP.frames[2]
    rgb = (frame.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    theirs = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(flows.grey(frame).astype(int) - theirs).max() <= 1  # the rounding of the RGB, at most
    assert flows.grey(frame[None]).shape == (96, 128)


def no_network(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "home" / "hub" / "checkpoints"


@pytest.mark.parametrize(
    "size,file", [("large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth"), ("small", "raft_small_C_T_V2-01064c6d.pth")]
)
def test_raft_offline_names_its_file_url_hash_and_folder(tmp_path, monkeypatch, size, file):
    folder = no_network(monkeypatch, tmp_path)
    method = flows.RAFT(size)
    assert method.name == f"raft-{size}" and flows.raft_cache_file(size) == folder / file
    url = f"https://download.pytorch.org/models/{file}"
    assert method.download(progress=False) == [Download(file, url, folder, file.rsplit("-", 1)[1][:8], "no network")]
    with pytest.raises(NotDownloaded) as err:
        method(CLIP.frames[1], CLIP.frames[0])
    assert str(err.value) == (
        f"1 file could not be downloaded (no network); put it into its folder, then run again: {file} from {url} "
        f"(sha256 starting {file.rsplit('-', 1)[1][:8]}) into {folder}"
    )


def test_raft_loads_its_weights_from_torch_hubs_cache(tmp_path, monkeypatch):
    folder = no_network(monkeypatch, tmp_path)
    state = raft_small(weights=None).state_dict()  # random weights under the DEFAULT file's name
    folder.mkdir(parents=True)
    torch.save(state, folder / "raft_small_C_T_V2-01064c6d.pth")
    method = flows.RAFT("small", progress=False)
    assert method.download(progress=False) == []
    key = next(k for k in state if k.endswith("weight"))
    assert torch.equal(method.network().state_dict()[key], state[key])
    (folder / "raft_small_C_T_V2-01064c6d.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(StyleLabError, match="the cached RAFT \\(small\\) weights .* cannot be read"):
        flows.RAFT("small").network()


@pytest.mark.slow  # a few seconds: the first convolutions of a process
def test_raft_pads_to_multiples_of_8_and_crops_back():
    method = flows.RAFT("small", weights=None, updates=1)  # random weights: shapes only
    assert method.name == "raft-small-random" and method.download() == []
    seen = []
    method.network().register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(args[0].shape), with_kwargs=True
    )
    a, b = torch.rand(3, 37, 53), torch.rand(1, 3, 37, 53)
    out = method(a, b)
    assert out.shape == (2, 37, 53) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert method(torch.rand(3, 130, 150), torch.rand(3, 130, 150)).shape == (2, 130, 150)
    assert seen == [(1, 3, 128, 128), (1, 3, 136, 152)]  # small frames up to RAFT's least, others to x 8
    with pytest.raises(StyleLabError, match="RAFT comes in sizes large and small, not 'huge'"):
        flows.RAFT("huge")


@pytest.mark.slow
def test_raft_large_forward_on_random_weights():
    out = flows.RAFT("large", weights=None)(CLIP.frames[1], CLIP.frames[0])
    assert out.shape == (2, 96, 128) and torch.isfinite(out).all()


def test_flo_round_trip_in_middleburys_layout(tmp_path):
    flow = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0)) * 10
    path = tmp_path / "sub" / "a.flo"
    flows.write_flo(path, flow)
    data = path.read_bytes()
    assert data[:4] == b"PIEH" and len(data) == 12 + 8 * 5 * 7  # the tag, then width and height
    assert np.frombuffer(data[4:12], dtype="<i4").tolist() == [7, 5]
    body = np.frombuffer(data[12:], dtype="<f4")
    assert body[:4].tolist() == [flow[0, 0, 0].item(), flow[1, 0, 0].item(), flow[0, 0, 1].item(), flow[1, 0, 1].item()]
    assert torch.equal(flows.read_flo(path), flow)
    # OpenCV reads and writes the same format
    assert np.array_equal(cv2.readOpticalFlow(str(path)), flow.permute(1, 2, 0).numpy())
    theirs = tmp_path / "theirs.flo"
    assert cv2.writeOpticalFlow(str(theirs), np.ascontiguousarray(flow.permute(1, 2, 0).numpy()))
    assert torch.equal(flows.read_flo(theirs), flow)
    assert [p.name for p in path.parent.iterdir()] == ["a.flo"]  # no temporary file left behind


def test_a_bad_flo_is_one_sentence(tmp_path):
    wrong = tmp_path / "wrong.flo"
    wrong.write_bytes(b"P6\n2 2\n255\n" + bytes(12))
    with pytest.raises(
        StyleLabError, match="is not a Middlebury .flo file: it does not start with the float 202021.25"
    ):
        flows.read_flo(wrong)
    cut = tmp_path / "cut.flo"
    flows.write_flo(cut, torch.zeros(2, 3, 4))
    cut.write_bytes(cut.read_bytes()[:-8])
    with pytest.raises(StyleLabError, match=r"is damaged: its header says 4 x 3 pixels \(108 bytes\), but it has 100"):
        flows.read_flo(cut)
    with pytest.raises(StyleLabError, match="cannot read the flow file .*missing.flo': no such file"):
        flows.read_flo(tmp_path / "missing.flo")


class Counting:
    """A flow method that counts its calls (DIS underneath)."""

    def __init__(self):
        self.name, self.calls, self._dis = "counting", [], flows.DIS("medium")

    def __call__(self, a, b):
        self.calls.append((a, b))
        return self._dis(a, b)


def test_the_cache_computes_each_flow_once_and_reads_it_back_bit_for_bit(tmp_path):
    method = Counting()
    cache = flows.FlowCache(tmp_path / "flow", method)
    first = cache.flow(1, 0, CLIP.frames[1], CLIP.frames[0])
    assert len(method.calls) == 1 and (tmp_path / "flow" / "counting" / "00002_00001.flo").is_file()
    again = cache.flow(1, 0, CLIP.frames[1], CLIP.frames[0])
    later = flows.FlowCache(tmp_path / "flow", method).flow(1, 0, CLIP.frames[1], CLIP.frames[0])  # another run
    assert len(method.calls) == 1 and torch.equal(first, again) and torch.equal(first, later)
    # the weights need the flow back as well: one more computation, none the second time
    c = cache.weights(1, 0, CLIP.frames[1], CLIP.frames[0])
    assert len(method.calls) == 2 and (tmp_path / "flow" / "counting" / "00001_00002.flo").is_file()
    assert torch.equal(cache.weights(1, 0, CLIP.frames[1], CLIP.frames[0]), c) and len(method.calls) == 2
    assert torch.equal(c, reliable(first, cache.flow(0, 1, CLIP.frames[0], CLIP.frames[1])))
    assert c.shape == (1, 96, 128) and 0.8 < c.mean() < 1
    with pytest.raises(StyleLabError, match="is 128 x 96 pixels but the frames are 64 x 48; delete the folder"):
        cache.flow(1, 0, CLIP.frames[1][:, :48, :64], CLIP.frames[0][:, :48, :64])
