"""Stopping cleanly on SIGINT, SIGTERM and SIGUSR2: the signal asks the run to stop between two updates.

An L-BFGS step cut in the middle leaves the image and the optimizer's history out of step, so a checkpoint
taken then could not resume exactly. A second Ctrl-C still stops at once. SIGUSR2 is the signal submitit
(Hydra's SLURM launcher) receives before a preemption or time-out; `pass_on` hands a caught signal to the
handler that was there before (submitit's requeues the job) once all is saved.

The command line installs STOP before anything else, so a signal at any moment of a run is answered; the
Python API's runs install it for their duration. Nothing but the standard library here: it is imported
first.
"""

from __future__ import annotations

import os
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
NAMES = {signal.SIGINT: "interrupted", signal.SIGTERM: "stopped by SIGTERM", signal.SIGUSR2: "stopped by SIGUSR2"}


class StopSignals:
    """While installed, SIGINT, SIGTERM and SIGUSR2 ask the run to stop at the next step instead of killing it."""

    def __init__(self) -> None:
        self.caught: int | None = None
        self._previous: dict[int, object] = {}
        self._pid: int | None = None

    @property
    def installed(self) -> bool:
        return self._pid == os.getpid()

    def install(self) -> "StopSignals":
        """Take over the signals in this process (once; a process started for a sweep's job does it again)."""
        # signal handlers can only be set from the main thread (joblib's thread backend runs jobs elsewhere)
        if not self.installed and threading.current_thread() is threading.main_thread():
            self.caught, self._pid = None, os.getpid()
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def restore(self) -> None:
        """Give the signals back to the handlers that were there (pass_on still knows them)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._pid = None

    def __enter__(self) -> "StopSignals":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()

    def _handle(self, signum: int, frame) -> None:
        if self.caught is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C while already stopping: stop now, without a checkpoint
        if self.caught is None:
            self.caught = signum

    def __reduce__(self):
        # pickled as a reference to the process's own STOP, never as a copy: submitit pickles a sweep job's task
        # function by value (Hydra's decorator hides it from lookup by name) with the globals it reads, and a
        # copied STOP would take the signals while the loop asked the real one whether to stop
        return "STOP"

    def reason(self) -> str | None:
        """For stylelab.loop.run(stop=...): why to stop before the next update, or None to go on."""
        return None if self.caught is None else NAMES[self.caught]

    def pass_on(self) -> None:
        """After everything is written: run the handler the caught signal had before (e.g. submitit's)."""
        previous = self._previous.get(self.caught)
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.caught, None)


STOP = StopSignals()  # the process's own: the command line installs it first thing


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal."""
    return 128 + int(signum)
