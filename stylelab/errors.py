"""The exception types for what the user can fix; the command-line tools (stylelab.cli) turn them into one
sentence and an exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class StyleLabError(Exception):
    """A mistake the user can fix (bad path, unknown layer, missing weights...).

    The message is one human sentence; it is printed without a traceback.
    """


@dataclass(frozen=True)
class Download:
    """A file a run needs that could not be downloaded: where it comes from and where it goes."""

    file: str
    url: str
    folder: Path
    sha256: str  # the whole digest, or the prefix the checker knows (torchvision's files: 8 hex digits)
    reason: str = ""

    def describe(self) -> str:
        digest = f"sha256 {self.sha256}" if len(self.sha256) == 64 else f"sha256 starting {self.sha256}"
        return f"{self.file} from {self.url} ({digest}) into {self.folder}"


class NotDownloaded(StyleLabError):
    """Files a run needs could not be downloaded; each is named with its URL, its sha256 and its folder."""

    def __init__(self, downloads: list[Download]):
        self.downloads = list(downloads)
        reasons = sorted({d.reason for d in self.downloads if d.reason})
        why = f" ({'; '.join(reasons)})" if reasons else ""
        files = "; ".join(d.describe() for d in self.downloads)
        n = len(self.downloads)
        super().__init__(
            f"{n} file{'s' if n > 1 else ''} could not be downloaded{why}; put {'each' if n > 1 else 'it'} "
            f"into its folder, then run again: {files}"
        )
