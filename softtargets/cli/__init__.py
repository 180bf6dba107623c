"""The command line: parses, validates, calls the library, renders with rich. No science here.

Exit codes: 0 success, 1 a run diverged or failed (or a reproduced row differs), 2 bad input (one line on
stderr, no traceback unless --debug), 3 the disk or quota holding a run folder is full (one line naming the
folder; nothing of the run kept), 130 interrupted (Ctrl-C), 128+N a sweep's array task stopped by signal N
(SIGTERM 143, SIGUSR1 138).
"""

from __future__ import annotations

import sys

from softtargets.cli.common import app
# each module registers its command(s) on `app` when imported; this order is the order of `softtargets --help`
from softtargets.cli import run, compare, listing, sweep, report, reproduce, audits, amnesia  # noqa: E402,F401

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point. `softtargets --dataset mnist ...` (no command, as in the original tool and the Docker
    image) means `softtargets run --dataset mnist ...`."""
    args = list(sys.argv[1:] if argv is None else argv)
    globals_ = [a for a in args[:2] if a in ("--debug", "--quiet", "-q")]
    rest = args[len(globals_):]
    if rest and rest[0].startswith("-") and rest[0] not in ("--help", "-h"):
        args = globals_ + ["run"] + rest
    app(args=args, prog_name="softtargets")
