"""Atomic writes and the one-line reasons for OS errors that every reader and writer in stylelab reports."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from stylelab.errors import StyleLabError


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Let `write` fill a temp file next to `path`, then move it into place in one step.

    Readers never see a half-written file, and a failure leaves no file behind.
    OS-level failures become StyleLabError; anything else `write` raises passes through.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_file(tmp) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        raise StyleLabError(f"cannot write '{path}': {read_reason(exc, writing=True)}") from None
    except BaseException:
        remove_quietly(tmp)
        raise


@contextlib.contextmanager
def _exclusive_file(path: Path) -> Iterator[BinaryIO]:
    # os.open with 0o666 (unlike mkstemp's 0o600) gives the file the usual umask permissions.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as f:
        yield f


def remove_quietly(path: Path) -> None:
    """Unlink `path`, if it is there and can be: for cleaning up after a failure, never a failure itself."""
    with contextlib.suppress(OSError):
        path.unlink()


def read_reason(exc: BaseException, writing: bool = False) -> str:
    """A short, path-free explanation of why a file could not be read (or, writing, made)."""
    if writing and isinstance(exc, FileNotFoundError) and exc.filename and Path(exc.filename).parent.is_dir():
        return "the system refuses it"  # a folder that exists but takes no new entries, such as /proc
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image format Pillow recognises"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]  # "no space left on device", without the path
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_folder(folder: str | os.PathLike, needed: int = 0, what: str = "run folder") -> None:
    """That `folder` can be made and written into, with `needed` bytes free on its disk; a StyleLabError that
    names the folder and the reason otherwise. Tried with a probe folder next to it, removed at once."""
    folder = Path(folder).absolute()
    ancestor = existing_ancestor(folder)
    if not ancestor.is_dir():
        where = "it is" if ancestor == folder else f"'{ancestor}' is"
        raise StyleLabError(f"cannot make the {what} '{folder}': {where} a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".stylelab-probe-", dir=ancestor))
    except OSError as exc:
        where = "" if ancestor == folder else f"no folder can be made in '{ancestor}': "
        raise StyleLabError(f"cannot make the {what} '{folder}': {where}{read_reason(exc, writing=True)}") from None
    free = shutil.disk_usage(ancestor).free
    if free < needed:
        raise StyleLabError(
            f"cannot run in '{folder}': its disk has {_mb(free)} free, and the run writes about "
            f"{_mb(needed)} (final.png, TensorBoard, checkpoint.pt)"
        )


def existing_ancestor(folder: str | os.PathLike) -> Path:
    """`folder` if it exists, else its nearest parent that does: where a folder to be made will live."""
    ancestor = Path(folder).absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"
