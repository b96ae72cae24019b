"""The sample pictures (pinned URL, sha256, credit, licence), downloaded once and checked, and image specs.

A spec is a sample name or a path; `resolve_image` turns it into a local file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError

from stylelab.errors import Download, NotDownloaded, StyleLabError
from stylelab.io.atomic import read_reason

# A stalled server must not hang a run forever; torch.hub's urlopen has no timeout of its own.
_DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SampleImage:
    name: str
    file: str
    url: str
    sha256: str
    title: str
    credit: str
    license: str


# Raw files pinned to one commit, so the sha256 values below stay valid.
_JCJ = (
    "https://raw.githubusercontent.com/jcjohnson/neural-style/07c4b8299f8fbdafec0c514fc820ff1d7ff62e46/examples/inputs"
)
_KAUTENJA = (
    "https://raw.githubusercontent.com/Kautenja/a-neural-algorithm-of-artistic-style/"
    "f86601c5dc94ed9f5ad31a0132e844544ec3141f/img/styles-web"
)

_SAMPLE_LIST = (
    SampleImage(
        name="tubingen",
        file="tubingen.jpg",
        url=f"{_JCJ}/tubingen.jpg",
        sha256="e67d1869f01fd805385c681a80d9ebcf0f70ea4a5fe6127f0606bb1c7f4bf506",
        title="Neckarfront, Tübingen (photo)",
        credit="Andreas Praefcke",
        license="CC BY 3.0",
    ),
    SampleImage(
        name="shipwreck",
        file="shipwreck.jpg",
        url=f"{_JCJ}/shipwreck.jpg",
        sha256="4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
        title="The Shipwreck of the Minotaur (c. 1805-1810)",
        credit="J. M. W. Turner",
        license="public domain",
    ),
    SampleImage(
        name="starry_night",
        file="starry_night.jpg",
        url=f"{_JCJ}/starry_night.jpg",
        sha256="0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
        title="The Starry Night (1889)",
        credit="Vincent van Gogh",
        license="public domain",
    ),
    SampleImage(
        name="the_scream",
        file="the_scream.jpg",
        url=f"{_JCJ}/the_scream.jpg",
        sha256="f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
        title="The Scream (1893)",
        credit="Edvard Munch",
        license="public domain",
    ),
    SampleImage(
        name="composition_vii",
        file="composition_vii.jpg",
        url=f"{_KAUTENJA}/composition-vii.jpg",
        sha256="28105ff3aaa15dab14aeea9e68aab8e53830643ae88b531a03828588d1d33065",
        title="Composition VII (1913), small web copy",
        credit="Wassily Kandinsky",
        license="public domain",
    ),
    SampleImage(
        name="woman_with_hat",
        file="woman-with-hat-matisse.jpg",
        url=f"{_JCJ}/woman-with-hat-matisse.jpg",
        sha256="6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
        title="Woman with a Hat (1905)",
        credit="Henri Matisse",
        license="public domain (US; author died 1954)",
    ),
    SampleImage(
        name="astronaut",
        file="astronaut.png",
        url="https://raw.githubusercontent.com/scikit-image/scikit-image/v0.24.0/skimage/data/astronaut.png",
        sha256="88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        title="Eileen Collins, NASA astronaut (photo; scikit-image's sample)",
        credit="NASA",
        license="public domain",
    ),
)

SAMPLES: dict[str, SampleImage] = {sample.name: sample for sample in _SAMPLE_LIST}


def cache_dir() -> Path:
    """$STYLELAB_CACHE, else $XDG_CACHE_HOME/stylelab, else ~/.cache/stylelab."""
    explicit = os.environ.get("STYLELAB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "stylelab"
    return Path.home() / ".cache" / "stylelab"


def fetch_sample(sample: SampleImage, *, folder: Path | None = None, progress: bool = True) -> Path:
    """Return the local copy of a sample image, downloading it once if needed."""
    folder = Path(folder) if folder is not None else cache_dir() / "images"
    dst = folder / sample.file
    if dst.exists():
        _verify_cached(sample, dst)
        return dst
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StyleLabError(f"cannot create the image folder '{folder}': {read_reason(exc, writing=True)}") from None
    _download(sample, dst, progress)
    return dst


def _verify_cached(sample: SampleImage, dst: Path) -> None:
    try:
        digest = _sha256_of(dst)
    except OSError as exc:
        raise StyleLabError(f"cannot read cached image '{dst}': {read_reason(exc)}") from None
    if digest != sample.sha256:
        raise StyleLabError(
            f"cached image '{dst}' is corrupt (sha256 {digest[:12]}... instead of "
            f"{sample.sha256[:12]}...); delete it so it is downloaded again."
        )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_all(specs, *, progress: bool = True) -> list[Download]:
    """Every sample among `specs` (names or paths) fetched now; the ones that could not be downloaded."""
    missing = []
    for spec in dict.fromkeys(specs):
        if isinstance(spec, str) and spec in SAMPLES:
            try:
                fetch_sample(SAMPLES[spec], progress=progress)
            except NotDownloaded as exc:
                missing += exc.downloads
    return missing


def _download(sample: SampleImage, dst: Path, progress: bool) -> None:
    # torch's downloader checks the hash as it writes; imported here, when a picture is downloaded, so that the
    # tools that only read folders (stylelab-summary, stylelab-figure) start without torch
    import torch.hub

    try:
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
            torch.hub.download_url_to_file(sample.url, str(dst), hash_prefix=sample.sha256, progress=progress)
    except (OSError, http.client.HTTPException) as exc:
        raise NotDownloaded(
            [Download(sample.file, sample.url, dst.parent, sample.sha256, network_reason(exc))]
        ) from None
    except RuntimeError:
        # torch.hub raises RuntimeError on a hash mismatch and has already deleted the file.
        raise StyleLabError(
            f"the file downloaded from {sample.url} does not have the expected "
            f"sha256 {sample.sha256}, so it was not kept."
        ) from None


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def network_reason(exc: BaseException) -> str:
    """Why a download failed, in a few words."""
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def resolve_image(spec: str | os.PathLike) -> Path:
    """A sample name gives its cached file; anything else must be an existing file."""
    if isinstance(spec, str) and spec in SAMPLES:
        return fetch_sample(SAMPLES[spec])
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    names = ", ".join(SAMPLES)
    raise StyleLabError(f"image '{spec}' is neither a file nor a sample name ({names}).")


def describe(spec: str | os.PathLike) -> str:
    """One line for logs: where a picture comes from and under which license."""
    if isinstance(spec, str) and spec in SAMPLES:
        sample = SAMPLES[spec]
        return f"{sample.title}, {sample.credit} ({sample.license})"
    return str(spec)
