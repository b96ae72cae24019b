"""What the stylelab-* commands share: a user mistake is one sentence and exit code 2, warnings one line."""

from __future__ import annotations

import sys
import warnings
from typing import Callable

from stylelab.errors import StyleLabError

EXIT_USER_ERROR = 2


def one_line_warnings(prog: str) -> None:
    """Library warnings (random weights, ...) print as one sentence, without Python's source line."""
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *args, **kwargs: f"{prog}: warning: {msg}\n"


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def tool(prog: str, work: Callable[[], object]) -> None:
    """Run a stylelab-* command: one-line warnings, and a user mistake as one sentence with exit code 2."""
    one_line_warnings(prog)
    try:
        work()
    except StyleLabError as exc:
        fail(prog, str(exc))
