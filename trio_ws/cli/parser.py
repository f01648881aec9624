"""The command line of ``trio-ws``: its commands, options and their checks."""

from __future__ import annotations

import argparse
import math
import platform
import sys
from typing import NoReturn

from .. import __version__, masking
from .connect import IDLE_AFTER_EOF, run_connect
from .errors import EXIT_INTERRUPTED, EXIT_OK, PROG, UsageError
from .output import write_line
from .serve import APPS, run_serve

__all__ = ["build_parser"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and do not exit the process."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _idle(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0, a positive number of seconds, or inf: {text!r}")
    return value


def version_text() -> str:
    """What ``trio-ws --version`` prints: trio_ws's version, the Python, and whether the speed-up was built."""
    speedup = "built" if masking.HAS_SPEEDUPS else "not built (pure-Python masking)"
    return f"{PROG} {__version__} (Python {platform.python_version()}; compiled speed-up: {speedup})"


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` as one line (argparse's own action wraps it) and exit 0."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        write_line(sys.stdout, version_text())
        parser.exit()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0-65535: {text!r}")
    return value


def _redis_url(text: str) -> str:
    if not text.startswith(_REDIS_SCHEMES):
        raise argparse.ArgumentTypeError(f"expected a redis://, rediss:// or unix:// URL, got {text!r}")
    return text


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name or any(ch.isspace() for ch in name):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name, value.strip()


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``trio-ws`` command."""
    parser = _Parser(prog=PROG, description="WebSocket client and demo server built on trio_ws.")
    parser.add_argument(
        "--version", action=_VersionAction, help="print the version, and whether the compiled speed-up was built"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    connect = commands.add_parser(
        "connect",
        help="connect to a WebSocket server and exchange text messages",
        description="Send each line of stdin as a text message and print what the server sends.",
    )
    connect.add_argument("url", metavar="URL", help="a ws:// or wss:// URL")
    connect.add_argument(
        "--header",
        action="append",
        type=_header,
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable)",
    )
    connect.add_argument(
        "--subprotocol", action="append", metavar="P", help="a subprotocol to offer (repeatable, in order)"
    )
    connect.add_argument("--json", action="store_true", help="pretty-print received text that parses as JSON")
    connect.add_argument(
        "--ping", type=_positive, metavar="SECONDS", help="send a ping every SECONDS and print the round trip"
    )
    connect.add_argument(
        "--insecure", action="store_true", help="wss://: do not verify the server's certificate (self-signed)"
    )
    connect.add_argument("--cafile", metavar="PEM", help="wss://: trust the CA certificates in this PEM file")
    connect.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="time allowed to connect and finish the handshake (default: 10)",
    )
    connect.add_argument(
        "--idle",
        type=_idle,
        default=IDLE_AFTER_EOF,
        metavar="SECONDS",
        help="after stdin ends, close once the server has sent nothing for SECONDS; 0 closes at once, "
        f"inf waits for the server to close (default: {IDLE_AFTER_EOF:g})",
    )
    connect.add_argument("--no-wait", action="store_true", help="close as soon as stdin ends (same as --idle 0)")
    connect.add_argument(
        "--reconnect",
        action="store_true",
        help="open the connection again (with backoff) when the server closes it with 1001, 1006, "
        "1011, 1012 or 1013; stdin is read on across connections",
    )
    connect.add_argument(
        "--proxy",
        metavar="URL",
        help="connect through this HTTP or SOCKS proxy (http://, socks5://...); 'none' for a direct "
        "connection (default: https_proxy, http_proxy, all_proxy and no_proxy from the environment)",
    )
    connect.set_defaults(handler=run_connect, interrupted=EXIT_INTERRUPTED)

    apps = ", ".join(sorted(APPS))
    serve = commands.add_parser(
        "serve",
        help="run a demo WebSocket server",
        description="Run a demo WebSocket server until Ctrl-C. Apps: "
        + "; ".join(f"{name}: {app.summary}" for name, app in APPS.items())
        + ".",
    )
    serve.add_argument("app", metavar="APP", help=f"the app to serve ({apps})")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8765, help="the TCP port, 0 for any free one (default: 8765)")
    serve.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve wss:// with this PEM certificate and key")
    with_hub = " and ".join(name for name, known in APPS.items() if known.uses_hub)
    serve.add_argument(
        "--redis",
        type=_redis_url,
        metavar="URL",
        help=f"{with_hub}: share rooms with other servers through Redis at URL (redis://HOST:PORT/DB)",
    )
    serve.set_defaults(handler=run_serve, interrupted=EXIT_OK)
    return parser
