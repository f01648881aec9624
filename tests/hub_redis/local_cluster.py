"""A real Redis Cluster on loopback for the tests: three masters, no replicas.

Each master is a ``redis-server --cluster-enabled yes`` child process with a
temporary directory of its own (its ``nodes.conf`` lives there, so a master
killed with SIGKILL and started again on the same port takes its slots back).
``redis-cli --cluster create`` assigns the slots; :meth:`LocalCluster.start`
returns once every master reports ``cluster_state:ok``. Processes are stopped
by their pid. The binaries are Debian's ``redis-server`` and ``redis-tools``
packages (Redis 7: sharded pub/sub); ``.ci/run`` installs them.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLOTS = 16384


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_slot(key: str) -> int:
    """The cluster slot of ``key`` (CRC16 of its hash tag, or of the whole key), as Redis computes it."""
    raw = key.encode()
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return _crc16_xmodem(raw) % SLOTS


def cluster_binaries() -> tuple[str, str] | None:
    """Paths of redis-server and redis-cli when both exist and the server is Redis 7 or newer."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        return None
    version = subprocess.run([server, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"v=(\d+)\.", version)
    if found is None or int(found.group(1)) < 7:
        return None
    return server, cli


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ClusterNode:
    """One master: its client port, cluster-bus port, directory and process."""

    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    slots: list[tuple[int, int]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def owns(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


class LocalCluster:
    """Three (by default) cluster masters on 127.0.0.1, created and stopped by the tests."""

    def __init__(self, server: str, cli: str, root: Path, masters: int = 3) -> None:
        self.server, self.cli = server, cli
        self.nodes = [
            ClusterNode(_free_port(), _free_port(), root / f"node{index}") for index in range(masters)
        ]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one master (a cluster client discovers the others)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    def cli_call(self, port: int, *args: str, timeout: float = 10.0) -> str:
        """Run one redis-cli command against ``port``; its output."""
        command = [self.cli, "-h", "127.0.0.1", "-p", str(port), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        return done.stdout

    def poll_cli(self, port: int, *args: str) -> str:
        """Like :meth:`cli_call` for a loop that polls with its own deadline: a slow answer is no answer yet.

        On a loaded machine redis-cli itself may take seconds to start; the
        caller's deadline, not one redis-cli run, decides when to give up.
        """
        try:
            return self.cli_call(port, *args, timeout=5)
        except subprocess.TimeoutExpired:
            return ""

    def _launch(self, node: ClusterNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        command = [self.server, "--port", str(node.port), "--bind", "127.0.0.1"]
        command += ["--cluster-enabled", "yes", "--cluster-port", str(node.bus_port)]
        command += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
        command += ["--dir", str(node.directory), "--save", "", "--appendonly", "no"]
        node.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.poll_cli(node.port, "PING").strip() != "PONG":
            if node.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {node.process.returncode} (port {node.port} taken?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer PING on port {node.port}")
            time.sleep(0.02)

    def start(self) -> None:
        """Start every master, create the cluster and wait until it is ok."""
        try:
            for node in self.nodes:
                self._launch(node)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            command = [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
            done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout}{done.stderr}")
            self.wait_ok()
            self._read_slots()
        except BaseException:
            self.stop()
            raise

    def _read_slots(self) -> None:
        by_port = {node.port: node for node in self.nodes}
        for line in self.cli_call(self.nodes[0].port, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            ranges = []
            for item in fields[8:]:
                first, _, last = item.partition("-")
                ranges.append((int(first), int(last or first)))
            by_port[port].slots = ranges

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running master says ``cluster_state:ok`` and knows all slots."""
        deadline = time.monotonic() + timeout
        while True:
            infos = [self.poll_cli(node.port, "CLUSTER", "INFO") for node in self.nodes if node.running]
            if all("cluster_state:ok" in info and f"cluster_slots_ok:{SLOTS}" in info for info in infos):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not become ok within {timeout} s: {infos}")
            time.sleep(0.05)

    def node_of(self, key: str) -> int:
        """The index of the master that owns ``key``'s slot."""
        slot = key_slot(key)
        return next(index for index, node in enumerate(self.nodes) if node.owns(slot))

    def kill(self, index: int) -> None:
        """SIGKILL one master (by its pid) and reap it: its slots are down until :meth:`restart`."""
        process = self.nodes[index].process
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)

    def restart(self, index: int) -> None:
        """Start a killed master again on its port and directory; wait until the cluster is ok."""
        node = self.nodes[index]
        assert not node.running, "still running"
        self._launch(node)
        self.wait_ok()

    def stop(self) -> None:
        """Kill every master (SIGKILL, by pid) and reap it."""
        for index in range(len(self.nodes)):
            self.kill(index)
            self.nodes[index].process = None
