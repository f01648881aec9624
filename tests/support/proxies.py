"""Real proxies on loopback for the tests: Debian's tinyproxy (HTTP CONNECT), microsocks (SOCKS5)
and dante-server (SOCKS4, SOCKS4a, SOCKS5).

Each proxy runs as a child process on a free 127.0.0.1 port for the test that
asks for it and is stopped (by its pid) afterwards. A missing binary skips
the test, which fails under CI=true (see conftest.py): ``.ci/run`` installs
the three packages.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["RunningProxy", "dante", "free_port", "microsocks", "tinyproxy"]

START_TIMEOUT = 10.0
#: The Debian package of each binary, where the names differ.
PACKAGES = {"danted": "dante-server"}


@dataclass(frozen=True)
class RunningProxy:
    """A proxy the tests started."""

    scheme: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, *, username: str | None = None, password: str | None = None) -> str:
        """The proxy's URL, with its credentials or the ones given."""
        user = self.username if username is None else username
        secret = self.password if password is None else password
        auth = f"{user}:{secret}@" if user is not None else ""
        return f"{self.scheme}://{auth}{self.address}"


def free_port() -> int:
    """A port nothing listens on right now (bound and released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {PACKAGES.get(name, name)})")
    return path


def _wait_listening(process: subprocess.Popen[bytes], port: int, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {output[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)  # a real process starting up; bounded by START_TIMEOUT
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {START_TIMEOUT} s")


@contextmanager
def _running(command: list[str], port: int, name: str, *, stop: int = signal.SIGKILL) -> Iterator[None]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_listening(process, port, name)
        yield
    finally:
        process.send_signal(stop)  # only the process this helper started, by its handle
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def tinyproxy(tmp_path: Path, *, username: str | None = None, password: str | None = None) -> Iterator[RunningProxy]:
    """Run tinyproxy on a free port; with Basic authentication when credentials are given."""
    binary = _binary("tinyproxy")
    port = free_port()
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 30",
        "MaxClients 20",
        "Allow 127.0.0.1",
        "LogLevel Info",
        # No ConnectPort line: CONNECT is allowed to every port (the test
        # servers listen on random ones).
    ]
    if username is not None:
        lines.append(f"BasicAuth {username} {password}")
    config = tmp_path / f"tinyproxy-{port}.conf"
    config.write_text("\n".join(lines) + "\n")
    with _running([binary, "-d", "-c", str(config)], port, "tinyproxy"):
        yield RunningProxy("http", port, username, password)


@contextmanager
def microsocks(*, username: str | None = None, password: str | None = None) -> Iterator[RunningProxy]:
    """Run microsocks (SOCKS5) on a free port; with a login when credentials are given."""
    binary = _binary("microsocks")
    port = free_port()
    command = [binary, "-i", "127.0.0.1", "-p", str(port)]
    if username is not None:
        command += ["-u", username, "-P", password or ""]
    with _running(command, port, "microsocks"):
        yield RunningProxy("socks5", port, username, password)


@contextmanager
def dante(tmp_path: Path) -> Iterator[RunningProxy]:
    """Run Debian's dante-server (danted: SOCKS4, SOCKS4a and SOCKS5, no login) on a free port."""
    binary = _binary("danted")
    port = free_port()
    config = tmp_path / f"danted-{port}.conf"
    config.write_text(
        "\n".join(
            [
                "logoutput: stderr",
                f"internal: 127.0.0.1 port = {port}",
                "external: 127.0.0.1",
                "clientmethod: none",
                "socksmethod: none",
                "client pass {",
                "    from: 127.0.0.0/8 to: 0.0.0.0/0",
                "}",
                "socks pass {",
                "    from: 127.0.0.0/8 to: 0.0.0.0/0",
                "    protocol: tcp",
                "    command: connect",
                "}",
            ]
        )
        + "\n"
    )
    # -N 1: one process; SIGTERM (not SIGKILL) lets it take its helper processes down with it.
    with _running([binary, "-f", str(config), "-N", "1"], port, "danted", stop=signal.SIGTERM):
        yield RunningProxy("socks4", port)
