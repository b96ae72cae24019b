"""The command-line tools, one module each; the only code that turns argv into a config.

    stylelab            stylelab.cli.app        (Hydra)
    stylelab-figure     stylelab.cli.figure
    stylelab-summary    stylelab.cli.summary
    stylelab-normalize  stylelab.cli.normalize

Each entry point imports its module when called, so one tool does not load what another needs.
"""


def main() -> None:
    from stylelab.cli.app import main as run

    run()


def figure_main(argv: list[str] | None = None) -> None:
    from stylelab.cli.figure import main as run

    run(argv)


def normalize_main(argv: list[str] | None = None) -> None:
    from stylelab.cli.normalize import main as run

    run(argv)


def summary_main(argv: list[str] | None = None) -> None:
    from stylelab.cli.summary import main as run

    run(argv)
