"""Unit tests for trio_ws.options."""

from __future__ import annotations

import inspect
import math
from dataclasses import FrozenInstanceError, fields

import pytest

import trio_ws
from trio_ws import Deflate
from trio_ws.options import (
    CONN_TIMEOUT,
    MAX_HANDSHAKE_HEADERS,
    MAX_HANDSHAKE_LINE,
    MAX_MESSAGE_SIZE,
    MESSAGE_QUEUE_SIZE,
    OPTION_DOCS,
    PING_INTERVAL,
    PING_TIMEOUT,
    RECEIVE_BYTES,
    ConnectionOptions,
    document_options,
    seconds_or_inf,
    unlimited,
)

ALL_OPTIONS = [f.name for f in fields(ConnectionOptions)]
LIMITS = ["message_queue_size", "max_message_size"]
POSITIVE_INTS = ["receive_buffer_size", "max_handshake_line", "max_handshake_headers"]
TIMEOUTS = ["connect_timeout", "disconnect_timeout", "ping_interval", "ping_timeout"]


def test_constants_match_spec() -> None:
    assert MESSAGE_QUEUE_SIZE == 16
    assert MAX_MESSAGE_SIZE == 2**20
    assert RECEIVE_BYTES == 2**16
    assert CONN_TIMEOUT == 10.0
    assert PING_INTERVAL == 20.0
    assert PING_TIMEOUT == 20.0
    assert MAX_HANDSHAKE_LINE == 8192
    assert MAX_HANDSHAKE_HEADERS == 128
    assert trio_ws.MAX_MESSAGE_SIZE == MAX_MESSAGE_SIZE
    assert trio_ws.CONN_TIMEOUT == CONN_TIMEOUT


def test_defaults_equal_constants() -> None:
    options = ConnectionOptions.from_kwargs()
    assert options == ConnectionOptions()
    assert options.message_queue_size == MESSAGE_QUEUE_SIZE
    assert options.max_message_size == MAX_MESSAGE_SIZE
    assert options.receive_buffer_size == RECEIVE_BYTES
    assert options.connect_timeout == CONN_TIMEOUT
    assert options.disconnect_timeout == CONN_TIMEOUT
    assert options.ping_interval == PING_INTERVAL
    assert options.ping_timeout == PING_TIMEOUT
    assert options.max_handshake_line == MAX_HANDSHAKE_LINE
    assert options.max_handshake_headers == MAX_HANDSHAKE_HEADERS
    assert options.compression == Deflate()


def test_options_frozen() -> None:
    options = ConnectionOptions.from_kwargs()
    with pytest.raises(FrozenInstanceError):
        options.max_message_size = 5  # type: ignore[misc]


def test_every_option_documented() -> None:
    assert set(OPTION_DOCS) == set(ALL_OPTIONS)
    for text in OPTION_DOCS.values():
        assert text.strip()


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("value", [None, math.inf])
def test_none_and_inf_disable_limits(name: str, value: float | None) -> None:
    options = ConnectionOptions.from_kwargs(**{name: value})  # type: ignore[misc]
    assert getattr(options, name) is None


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [None, math.inf])
def test_none_and_inf_disable_timeouts(name: str, value: float | None) -> None:
    options = ConnectionOptions.from_kwargs(**{name: value})  # type: ignore[misc]
    assert getattr(options, name) is None


def test_the_two_spellings_of_no_limit_are_told_apart_in_one_place() -> None:
    assert unlimited(None) and unlimited(math.inf)
    assert not unlimited(0) and not unlimited(2**20) and not unlimited(-math.inf)
    # Stored options say None; Trio's timeouts want math.inf.
    assert seconds_or_inf(None) == math.inf
    assert seconds_or_inf(0.0) == 0.0
    assert seconds_or_inf(2.5) == 2.5


@pytest.mark.parametrize("name", LIMITS + POSITIVE_INTS)
def test_integer_values_accepted(name: str) -> None:
    options = ConnectionOptions.from_kwargs(**{name: 7})  # type: ignore[misc]
    assert getattr(options, name) == 7
    options = ConnectionOptions.from_kwargs(**{name: 8.0})  # type: ignore[misc]
    value = getattr(options, name)
    assert value == 8
    assert type(value) is int


def test_message_queue_size_zero_allowed() -> None:
    assert ConnectionOptions.from_kwargs(message_queue_size=0).message_queue_size == 0


@pytest.mark.parametrize("name", TIMEOUTS)
@pytest.mark.parametrize("value", [0, 1, 2.5])
def test_timeouts_accepted(name: str, value: float) -> None:
    result = getattr(ConnectionOptions.from_kwargs(**{name: value}), name)  # type: ignore[misc]
    assert result == value
    assert type(result) is float


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("message_queue_size", -1),
        ("message_queue_size", 1.5),
        ("max_message_size", 0),
        ("max_message_size", -5),
        ("max_message_size", 10.5),
        ("receive_buffer_size", 0),
        ("receive_buffer_size", None),
        ("receive_buffer_size", math.inf),
        ("max_handshake_line", 0),
        ("max_handshake_line", None),
        ("max_handshake_headers", -1),
        ("max_handshake_headers", math.inf),
        ("connect_timeout", -1),
        ("disconnect_timeout", -0.5),
        ("ping_interval", -1),
        ("ping_timeout", -1),
        ("connect_timeout", math.nan),
        ("ping_timeout", -math.inf),
    ],
)
def test_invalid_values_raise_value_error(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        ConnectionOptions.from_kwargs(**{name: value})  # type: ignore[misc]


@pytest.mark.parametrize("name", LIMITS + POSITIVE_INTS)
@pytest.mark.parametrize("value", [math.nan, -math.inf])
def test_non_finite_sizes_raise_value_error_naming_option(name: str, value: float) -> None:
    # NaN and -inf are out-of-range numbers: like the other bad values they
    # must give a ValueError that names the option (not a bare int() error).
    with pytest.raises(ValueError, match=name):
        ConnectionOptions.from_kwargs(**{name: value})  # type: ignore[misc]


@pytest.mark.parametrize("name", LIMITS + POSITIVE_INTS + TIMEOUTS)
@pytest.mark.parametrize("value", ["10", b"10", True, False, [1], object()])
def test_wrong_types_raise_type_error(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=name):
        ConnectionOptions.from_kwargs(**{name: value})  # type: ignore[misc]


def test_unknown_option_type_error() -> None:
    with pytest.raises(TypeError, match="max_msg_size"):
        ConnectionOptions.from_kwargs(max_msg_size=5)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="aaa, zzz"):
        ConnectionOptions.from_kwargs(zzz=1, aaa=2, max_message_size=5)  # type: ignore[call-arg]


def test_compression_deflate_string() -> None:
    assert ConnectionOptions.from_kwargs(compression="deflate").compression == Deflate()


def test_compression_deflate_instance_kept() -> None:
    settings = Deflate(server_max_window_bits=10, compress_level=1)
    assert ConnectionOptions.from_kwargs(compression=settings).compression is settings


def test_compression_none() -> None:
    assert ConnectionOptions.from_kwargs(compression=None).compression is None


@pytest.mark.parametrize("value", ["gzip", "Deflate", "", "permessage-deflate"])
def test_compression_other_string(value: str) -> None:
    with pytest.raises(ValueError, match="compression"):
        ConnectionOptions.from_kwargs(compression=value)


@pytest.mark.parametrize("value", [1, True, Deflate])
def test_compression_other_type(value: object) -> None:
    with pytest.raises((ValueError, TypeError), match="compression"):
        ConnectionOptions.from_kwargs(compression=value)  # type: ignore[arg-type]


def test_several_options_together() -> None:
    options = ConnectionOptions.from_kwargs(
        message_queue_size=None,
        max_message_size=100,
        connect_timeout=None,
        ping_interval=None,
        compression=None,
        receive_buffer_size=4096,
    )
    assert options.message_queue_size is None
    assert options.max_message_size == 100
    assert options.connect_timeout is None
    assert options.ping_interval is None
    assert options.compression is None
    assert options.receive_buffer_size == 4096
    assert options.disconnect_timeout == CONN_TIMEOUT


def test_document_options_appends_section() -> None:
    @document_options()
    def func() -> None:
        """Do a thing.

        Args:
            x: a value.
        """

    assert func.__doc__ is not None
    assert func.__doc__.endswith("\n")
    # The section is indented like the body, whether or not the compiler
    # already stripped the body's indentation (Python 3.13 does).
    doc = inspect.cleandoc(func.__doc__)
    assert doc.startswith("Do a thing.")
    assert "\nArgs:\n    x: a value.\n" in doc
    assert "\nKeyword Args:\n" in doc
    section = doc.split("Keyword Args:", 1)[1] + "\n"
    for name, text in OPTION_DOCS.items():
        assert f"\n    {name}: {text}\n" in section
    assert doc.index("Args:") < doc.index("Keyword Args:")


def test_document_options_on_a_one_line_docstring() -> None:
    @document_options()
    def func() -> None:
        """Do a thing."""

    assert func.__doc__ is not None
    doc = inspect.cleandoc(func.__doc__)
    assert doc.startswith("Do a thing.\n\nKeyword Args:\n    ")


def test_document_options_extra_first_and_returns_same_function() -> None:
    def func() -> None:
        pass

    decorated = document_options(("handler", "the handler."), ("origins", "allowed origins."))(func)
    assert decorated is func
    doc = func.__doc__
    assert doc is not None
    assert "Keyword Args:" in doc
    positions = [doc.index(f"        {name}:") for name in ("handler", "origins", *OPTION_DOCS)]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "entry_point",
    ["open_websocket", "open_websocket_url", "serve_websocket", "connect_websocket", "wrap_server_stream"],
)
def test_entry_points_documented(entry_point: str) -> None:
    doc = getattr(trio_ws, entry_point).__doc__ or ""
    assert "Keyword Args:" in doc
    for name in OPTION_DOCS:
        assert f"{name}:" in doc
