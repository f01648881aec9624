"""Exit statuses and the one-line error reports of the ``trio-ws`` command.

Errors are told apart by their type (and, for TLS, by OpenSSL's reason code),
never by the text of their message.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Iterator

from ..scopes import leaves
from .output import status

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "CliError",
    "UsageError",
    "causes",
    "os_error_text",
    "outcome_of",
]

#: Exit status: success.
EXIT_OK = 0
#: Exit status: a runtime failure (connection, TLS, handshake, error close code).
EXIT_FAILURE = 1
#: Exit status: bad command line (option, URL, unknown app).
EXIT_USAGE = 2
#: Exit status of ``connect`` when stopped with Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

#: The program name used in messages.
PROG = "trio-ws"

_MAX_DEPTH = 8


class CliError(Exception):
    """An error to report as one line on stderr, with an exit status.

    Args:
        message: the line to print (without the program name).
        exit_code: the process exit status, :data:`EXIT_FAILURE` by default.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(Exception):
    """Raised by the parser instead of exiting, so that ``main`` returns 2."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and the chain of its explicit causes (``raise ... from``), nearest first."""
    for _ in range(_MAX_DEPTH):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__


def os_error_text(err: BaseException) -> str:
    """The most specific text of an OSError, looking through causes and groups."""
    found: list[str] = []

    def visit(exc: BaseException | None, depth: int) -> None:
        if exc is None or depth > _MAX_DEPTH:
            return
        if isinstance(exc, BaseExceptionGroup):
            for leaf in leaves(exc):
                visit(leaf, depth + 1)
        if isinstance(exc, ssl.SSLCertVerificationError):
            found.append(f"certificate verify failed: {exc.verify_message}")
        elif isinstance(exc, ssl.SSLError):
            found.append(exc.reason.replace("_", " ").lower() if exc.reason else str(exc))
        elif isinstance(exc, OSError) and exc.errno is not None and exc.errno > 0:
            found.append(os.strerror(exc.errno))
        elif isinstance(exc, OSError) and exc.strerror:
            found.append(exc.strerror)
        visit(exc.__cause__, depth + 1)

    visit(err, 0)
    unique = list(dict.fromkeys(found))
    return "; ".join(unique) if unique else str(err)


def outcome_of(exc: BaseException) -> int:
    """Report an exception that ended a command as one line; return the exit status.

    ``SystemExit`` is re-raised. A ``BrokenPipeError`` (stdout went away, for
    example ``| head``) ends the command quietly.
    """
    found = leaves(exc)
    for leaf in found:
        if isinstance(leaf, CliError):
            status(f"{PROG}: {leaf.message}")
            return leaf.exit_code
    for leaf in found:
        if isinstance(leaf, BrokenPipeError):
            # Keep Python from complaining when it flushes stdout at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            return EXIT_FAILURE
    for leaf in found:
        if isinstance(leaf, SystemExit):
            raise leaf
    first = found[0]
    status(f"{PROG}: unexpected error: {type(first).__name__}: {first}")
    return EXIT_FAILURE
