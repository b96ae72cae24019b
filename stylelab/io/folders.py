"""Where things are in a run's folder, for the code that writes them and the code that reads them back."""

from __future__ import annotations

from pathlib import Path

CHECKPOINT = "checkpoint.pt"  # the loop's state and image: what resume= continues from
CLIP_STATE = "clip.json"  # a clip's: what resume= continues from (at its first unwritten frame)


def events_dir(folder: Path) -> Path:
    """Where a run's TensorBoard events are: in its folder, so that TensorBoard names the run after it (a
    sweep's job by what the sweep varies). A folder of an older stylelab keeps them in tb/."""
    old = Path(folder) / "tb"
    return old if old.is_dir() else Path(folder)
