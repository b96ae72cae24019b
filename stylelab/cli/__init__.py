"""The command-line tools, one module each, and the only code that prints and exits:

    stylelab            stylelab.cli.app        (Hydra: runs, sweeps, resume)
    stylelab-figure     stylelab.cli.figure
    stylelab-summary    stylelab.cli.summary
    stylelab-normalize  stylelab.cli.normalize

Everything that knows Hydra's command line, sweeps, job names and error reports is here; nothing outside
stylelab.cli imports it. `stylelab`'s entry point below takes over the signals first and imports the app
after, on purpose (not to dodge a cycle): torch and Hydra take seconds to import, and a Ctrl-C or SIGTERM
in those seconds is then answered too.
"""

from __future__ import annotations

import os
import sys

from stylelab.signals import STOP


def main() -> None:
    """`stylelab`."""
    STOP.install()
    # as `python -m` does: a user's own classes named in their configs import from the folder they run in
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    from stylelab.cli import app

    app.main()
