"""`python -m stylelab.cli ...` is the `stylelab` command."""

from stylelab.cli.app import main

main()
