"""The command line. Layer: cli (Typer), thin: parse, call below, map to exit codes.

``main`` answers ``--version`` before importing Typer, so the commonest probe of
an installed tool costs about as much as starting Python.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``cortan`` command."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from cortan import __version__

        sys.stdout.write(f"cortan {__version__}\n")
        return
    from cortan.cli.main import run

    run()
