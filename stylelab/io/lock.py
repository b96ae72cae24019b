"""A run folder is locked while a process works in it: an OS file lock (flock) on `<folder>/.stylelab.lock`,
which the system releases when the process ends, however it ends (exit, Ctrl-C, kill -9). A second
process is refused in one sentence that names the first one's PID."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from stylelab.errors import StyleLabError
from stylelab.io.atomic import read_reason

FILE = ".stylelab.lock"
_held: dict[Path, int] = {}  # folder -> the open file whose lock this process holds


def hold(folder: Path) -> None:
    """Lock `folder` for this process (again: a no-op), or raise StyleLabError if another process holds it."""
    folder = Path(folder).resolve()
    if folder in _held:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StyleLabError(f"cannot work in '{folder}': {read_reason(exc, writing=True)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StyleLabError(
            f"'{folder}' is in use by another stylelab (process {other}); wait until it ends or stop "
            f"it, then run this again"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held[folder] = fd


def release(folder: Path) -> None:
    """Give the lock back before the process ends (a sweep's next job may take the folder)."""
    fd = _held.pop(Path(folder).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the file releases its lock
