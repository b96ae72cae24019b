"""`python -m stylelab.cli ...` is the `stylelab` command."""

from stylelab.cli import main

main()
