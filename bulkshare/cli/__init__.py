"""The command line: parse (`cli.parser`), call a command (`cli.dispatch`), print; every error
ends in `main` as one line and its exit code. Each command's parser ends with an example.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from bulkshare import commands
from bulkshare.cli.dispatch import dispatch
from bulkshare.cli.logs import configure_logging
from bulkshare.cli.parser import build_parser
from bulkshare.commands.failures import sigterm_as_sigint, traceback_text
from bulkshare.commands.planning import detailed_error_code
from bulkshare.errors import InternalError, failure_of

__all__ = ["build_parser", "main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bulkshare` command; returns the exit code.

    Whatever ends a command ends it here, as one line on stderr and a documented exit code:
    our own errors, a signal, an ExceptionGroup, a file or SQLite error, and a bug too (its
    traceback only with -v).
    """
    output = commands.Output()
    verbose = False
    with sigterm_as_sigint():
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            verbose = bool(getattr(args, "verbose", False))
            if args.command is None:
                # bare `bulkshare`: what there is to do, on stdout
                output.result(parser.format_help().rstrip("\n"))
                return 0
            output.quiet = bool(getattr(args, "quiet", False))
            logs = configure_logging(args)
            output.structured, output.bursts = logs.fmt == "json", logs.bursts
            return dispatch(args, output)
        except SystemExit as exc:  # --help and --version print, then exit 0
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        except BaseException as exc:  # the one place every failure ends
            failure = failure_of(exc)
            if verbose and failure.exit_code == InternalError.exit_code:
                output.err.write(traceback_text(exc))
            code = _exit_code(failure.exit_code, argv)  # the error event names the real one
            output.error(f"bulkshare: {failure.message}", code)
            return code
        finally:
            if output.bursts is not None:
                output.bursts.flush(everything=True)  # a burst still open says how it went


def _exit_code(code: int, argv: Sequence[str] | None) -> int:
    """A failure's exit code; under `plan --detailed-exitcode`, 1 (2 means "changes" there),
    a usage error in the command line itself included."""
    args = sys.argv[1:] if argv is None else argv
    return detailed_error_code(code) if "--detailed-exitcode" in args else code


def run() -> None:
    """Console-script entry point."""
    code = main()
    # the command is over and its exit code decided: a signal now changes nothing
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)
