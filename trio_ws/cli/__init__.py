"""The ``trio-ws`` command line tool (also ``python -m trio_ws``).

Two commands:

* ``trio-ws connect URL``: an interactive client (:mod:`trio_ws.cli.connect`).
* ``trio-ws serve APP``: a demo server (:mod:`trio_ws.cli.serve`), whose apps
  are listed in :data:`APPS`.

Exit codes: 0 success, 1 runtime failure (connection refused, rejected, TLS,
timeout, server closed with an error code), 2 usage error (bad option, bad
URL, unknown app), 130 interrupted by Ctrl-C (``connect`` only; ``serve``
exits 0 when stopped with Ctrl-C). Errors are reported as one line on stderr.

The package's parts: :mod:`~trio_ws.cli.parser` (options),
:mod:`~trio_ws.cli.connect`, :mod:`~trio_ws.cli.serve`,
:mod:`~trio_ws.cli.stdin` (reading stdin inside Trio),
:mod:`~trio_ws.cli.output` (what is printed), :mod:`~trio_ws.cli.errors`
(exit statuses, one-line reports) and :mod:`~trio_ws.cli.running`
(:func:`run_main`: a Trio program that Ctrl-C stops quietly, also used by the
examples).
"""

from __future__ import annotations

from .connect import IDLE_AFTER_EOF
from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG, CliError, UsageError, outcome_of
from .output import format_message, status
from .parser import build_parser
from .running import run_main
from .serve import APPS, AppFactory, ServeApp, broadcast_app, chat_app, echo_app

__all__ = [
    "APPS",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "IDLE_AFTER_EOF",
    "AppFactory",
    "CliError",
    "ServeApp",
    "broadcast_app",
    "build_parser",
    "chat_app",
    "echo_app",
    "format_message",
    "main",
    "run_main",
]


def main(argv: list[str] | None = None) -> int:
    """Run the ``trio-ws`` command line tool.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        the exit status: 0 success, 1 runtime failure, 2 usage error, 130
        ``connect`` interrupted with Ctrl-C.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        status(f"{PROG}: {err}")
        return EXIT_USAGE
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else EXIT_OK
    try:
        return run_main(args.handler, args, interrupted=args.interrupted)
    except BaseException as exc:
        return outcome_of(exc)
