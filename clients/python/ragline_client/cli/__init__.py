"""The `ragline` command line (the `cli` extra: `pip install 'ragline-client[cli]'`).

`main()` is the console script: it runs the Typer app and turns an API error into one line
on stderr and the exit code of its class (`exits.Exit`)."""

from __future__ import annotations

import sys

from ragline_client.errors import RaglineError

from .exits import Exit, error_line, exit_code

__all__ = ["Exit", "main"]


def main() -> None:
    from .app import app

    try:
        app(prog_name="ragline")
    except RaglineError as err:
        sys.stdout.flush()
        print(f"ragline: {error_line(err)}", file=sys.stderr)
        sys.exit(exit_code(err))
    except KeyboardInterrupt:
        print("ragline: interrupted", file=sys.stderr)
        sys.exit(Exit.INTERRUPTED)
