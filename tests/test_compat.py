"""trio-websocket compatibility, pinned against the installed trio-websocket 0.12.

Code written for trio-websocket runs with ``import trio_ws as trio_websocket``:
every public name exists, and every parameter of its functions and methods is
accepted by ours (as a named parameter, or as one of the shared connection
options when ours takes ``**options``).
"""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

import pytest
import trio

import trio_ws
from trio_ws.options import ConnectionOptionsDict

trio_websocket = pytest.importorskip("trio_websocket")

FUNCTIONS = {
    "open_websocket",
    "open_websocket_url",
    "connect_websocket",
    "connect_websocket_url",
    "wrap_client_stream",
    "wrap_server_stream",
    "serve_websocket",
}
PUBLIC = sorted(name for name in dir(trio_websocket) if name in FUNCTIONS or (name[0].isupper() and name[0] != "_"))
OPTIONS = set(get_type_hints(ConnectionOptionsDict))


def _accepts(ours: Any, theirs: Any) -> list[str]:
    """The parameters of ``theirs`` that ``ours`` does not accept."""
    mine = inspect.signature(ours).parameters
    has_options = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in mine.values())
    missing = []
    for name, parameter in inspect.signature(theirs).parameters.items():
        if name in ("self", "cls") or parameter.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        if name in mine or (has_options and name in OPTIONS):
            continue
        missing.append(name)
    return missing


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_exists(name: str) -> None:
    assert hasattr(trio_ws, name), f"trio_ws lacks trio-websocket's {name}"


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in PUBLIC
        if inspect.isfunction(getattr(trio_websocket, n)) or inspect.isclass(getattr(trio_websocket, n))
    ],
)
def test_signatures_accept_trio_websocket_arguments(name: str) -> None:
    theirs = getattr(trio_websocket, name)
    ours = getattr(trio_ws, name)
    if inspect.isclass(theirs):
        for attribute, member in vars(theirs).items():
            if attribute.startswith("_") or not inspect.isfunction(member):
                continue
            assert hasattr(ours, attribute), f"{name}.{attribute} is missing"
            assert _accepts(getattr(ours, attribute), member) == [], f"{name}.{attribute}"
        for attribute, member in vars(theirs).items():
            if isinstance(member, property):
                assert hasattr(ours, attribute), f"property {name}.{attribute} is missing"
    else:
        assert _accepts(ours, theirs) == [], name


def test_constants_exist() -> None:
    for name in ("CONN_TIMEOUT", "MESSAGE_QUEUE_SIZE", "MAX_MESSAGE_SIZE", "RECEIVE_BYTES"):
        assert isinstance(getattr(trio_ws, name), (int, float))


async def test_trio_websocket_style_code_runs_unchanged() -> None:
    """A program in trio-websocket's style, with only the import changed."""
    ws_lib: Any = trio_ws  # import trio_ws as trio_websocket

    async def handler(request: Any) -> None:
        ws = await request.accept()
        try:
            while True:
                message = await ws.get_message()
                await ws.send_message(message)
        except ws_lib.ConnectionClosed:
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(ws_lib.serve_websocket, handler, "127.0.0.1", 0, None)
            async with ws_lib.open_websocket(
                "127.0.0.1",
                server.port,
                "/",
                use_ssl=False,
                message_queue_size=1,
                max_message_size=2**16,
                connect_timeout=5,
                disconnect_timeout=5,
            ) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.ping()
                assert ws.closed is None
                assert isinstance(ws.remote, ws_lib.Endpoint)
            assert isinstance(ws.closed, ws_lib.CloseReason)
            assert ws.closed.code == 1000
            nursery.cancel_scope.cancel()
