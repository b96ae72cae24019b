"""The command-line tools, one module each; the only code that turns argv into a config.

    stylelab            stylelab.cli.app        (Hydra)
    stylelab-figure     stylelab.cli.figure
    stylelab-summary    stylelab.cli.summary
    stylelab-normalize  stylelab.cli.normalize
"""

from stylelab.cli.app import main
from stylelab.cli.figure import main as figure_main
from stylelab.cli.normalize import main as normalize_main
from stylelab.cli.summary import main as summary_main

__all__ = ["figure_main", "main", "normalize_main", "summary_main"]
