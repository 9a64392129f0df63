"""The `nas` console script. Ctrl-C anywhere, even while the command's modules load (torch takes
seconds), ends it with one line, "aborted", and exit code 130."""

from __future__ import annotations

import sys


def main() -> None:
    """Import the command line and run it (`nas.cli.main`, which reports a Ctrl-C inside a
    command the same way)."""
    try:
        from nas.cli import main as cli

        cli()
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        sys.exit(130)
