"""trio-websocket 0.12.2's own test suite, run against trio_ws.

The README promises that ``import trio_ws as trio_websocket`` runs code
written for trio-websocket 0.12. This module proves it with that project's
tests: it downloads trio-websocket's sdist into ``.cache/`` (never committed),
extracts ``tests/test_connection.py`` and runs it with pytest in a subprocess
whose ``sys.path`` starts with ``tests/trio_websocket_shim``, a package named
``trio_websocket`` that only re-exports trio_ws's names. The real
trio-websocket (a test dependency) is therefore never imported by that run.

Two lists below are the whole contract:

* ``PRIVATE``: tests that patch or read trio-websocket's private internals;
  they are deselected, each with its reason.
* ``DEVIATIONS``: tests that fail because trio_ws deliberately fixes a
  trio-websocket defect; each is explained on
  ``docs/howto/migrating-from-trio-websocket.rst``.

Every other test must pass. Without network access the download fails: the
test skips on a user's machine and fails under ``CI=true`` (see conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

VERSION = "0.12.2"
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "trio-websocket"
SDIST = CACHE / f"trio_websocket-{VERSION}.tar.gz"
SHIM = Path(__file__).resolve().parent / "trio_websocket_shim"
SUITE_MEMBER = f"trio_websocket-{VERSION}/tests/test_connection.py"

#: Deselected: they patch or read trio-websocket's private internals.
PRIVATE = {
    "test_client_open_url_options": "patches trio_websocket._impl.open_websocket with a Mock",
    "test_client_connect_networking_error": "patches trio_websocket._impl.connect_websocket with a Mock",
    "test_open_websocket_internal_ki": "monkeypatches the private WebSocketConnection._handle_ping_event",
    "test_open_websocket_internal_exc": "monkeypatches the private WebSocketConnection._handle_ping_event",
    "test_open_websocket_cancellations": "monkeypatches the private WebSocketConnection._handle_ping_event",
    "test_server_close_client_disconnect_race": "waits on the private _for_testing_peer_closed_connection "
    "event and closes the private _stream",
    "test_remote_close_local_message_race": "waits on the private _for_testing_peer_closed_connection event",
    "test_message_after_local_close_race": "wraps the private WebSocketConnection._send",
    "test_server_tcp_closed_on_close_connection_event": "replaces the private _close_stream and calls "
    "the private _send",
    "test_remote_close_rude": "sends a wsproto event through the private WebSocketConnection._send",
}

#: Expected to fail: trio_ws fixes a trio-websocket defect the test pins.
DEVIATIONS = {
    "test_handshake_exception_before_accept": "a handler that raises before accepting reaches the caller "
    "as the handler's own exception (or one flat group), not four nested exception groups",
}

#: The run's own bound: the suite takes well under a minute on an idle machine.
SUITE_TIMEOUT = 600


def _sdist() -> Path:
    if SDIST.exists():
        return SDIST
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"trio-websocket=={VERSION}",
        "-d",
        str(CACHE),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not SDIST.exists():
        pytest.skip(f"could not download trio-websocket {VERSION}'s sdist: {result.stderr.strip()[-500:]}")
    return SDIST


def _results(report: Path) -> dict[str, str]:
    """{test name: "passed" | "failed" | "skipped"} from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    sdist = _sdist()
    work = tmp_path_factory.mktemp("trio_websocket_suite")
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(SUITE_MEMBER)
        assert member is not None, f"{SUITE_MEMBER} missing from {sdist}"
        (work / "test_connection.py").write_bytes(member.read())
    # An empty ini file of its own: neither our pytest options nor our conftest apply.
    (work / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    report = work / "report.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-c", str(work / "pytest.ini")]
    command += ["--rootdir", str(work), f"--junitxml={report}", "test_connection.py"]
    for name in PRIVATE:
        command += ["--deselect", f"test_connection.py::{name}"]
    paths = [str(SHIM), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    assert report.exists(), f"trio-websocket's suite did not run:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return _results(report), result.stdout


def test_shim_is_trio_ws() -> None:
    # The run imports the shim, not the installed trio-websocket.
    probe = "import trio_websocket, trio_ws; assert trio_websocket.open_websocket is trio_ws.open_websocket"
    env = {**os.environ, "PYTHONPATH": str(SHIM)}
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=60)


@pytest.mark.slow
def test_suite_collects_every_test(suite_run: tuple[dict[str, str], str]) -> None:
    outcomes, _ = suite_run
    assert set(PRIVATE).isdisjoint(outcomes), "deselected tests ran"
    # 64 test items in 0.12.2 (some parametrized); none may go missing.
    assert len(outcomes) + len(PRIVATE) == 64, sorted(outcomes)


@pytest.mark.slow
def test_public_behaviour_tests_pass(suite_run: tuple[dict[str, str], str]) -> None:
    outcomes, output = suite_run
    failing = {name for name, outcome in outcomes.items() if outcome != "passed"}
    unexpected = failing - set(DEVIATIONS)
    assert not unexpected, f"trio-websocket tests failing against trio_ws: {sorted(unexpected)}\n{output[-6000:]}"


@pytest.mark.slow
def test_deviations_still_deviate(suite_run: tuple[dict[str, str], str]) -> None:
    # A deviation that starts passing is no longer one: drop it from the list
    # and from the migration page.
    outcomes, _ = suite_run
    for name in DEVIATIONS:
        assert outcomes.get(name) == "failed", f"{name} now {outcomes.get(name)}"


def test_deviations_are_documented() -> None:
    page = (ROOT / "docs" / "howto" / "migrating-from-trio-websocket.rst").read_text()
    for name in DEVIATIONS:
        assert name in page, f"{name} is not explained on the migration page"
