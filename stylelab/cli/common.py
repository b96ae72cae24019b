"""What the stylelab-* commands share: a user mistake is one sentence and exit code 2, warnings and notes
one line each."""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from typing import Callable

from stylelab.errors import StyleLabError
from stylelab.signals import NAMES, STOP, exit_code

EXIT_USER_ERROR = 2


def setup(prog: str) -> None:
    """Library warnings (random weights, ...) as one sentence without Python's source line, and the library's
    notes (the `stylelab` logger: resuming, a level that ended early) as `prog: ...` lines on stdout."""
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *args, **kwargs: f"{prog}: warning: {msg}\n"
    logger = logging.getLogger("stylelab")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(f"{prog}: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # Hydra's job log has its own format; these lines are for the user
    threading.excepthook = _quiet_writer_threads


def _quiet_writer_threads(args) -> None:
    """TensorBoard's writer thread hands an OSError (a full disk) on to the run, which says it in one sentence;
    its own traceback would be a second report of it."""
    if isinstance(args.exc_value, OSError) and type(args.thread).__module__.startswith("tensorboard."):
        return
    threading.__excepthook__(args)


def fail(prog: str, message: str, code: int = EXIT_USER_ERROR) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def tool(prog: str, work: Callable[[], object]) -> None:
    """Run a stylelab-* command: one-line warnings, and a user mistake as one sentence with exit code 2."""
    setup(prog)
    try:
        work()
    except StyleLabError as exc:
        fail(prog, str(exc))


def stopped_before_the_run() -> None:
    """`stylelab` was signalled before its run began (while torch and Hydra loaded): nothing was written."""
    print(f"stylelab: {NAMES[STOP.caught]} before the run began; nothing was kept", file=sys.stderr, flush=True)
    sys.exit(exit_code(STOP.caught))
