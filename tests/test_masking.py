"""Unit tests for trio_ws.masking: compiled and pure-Python masking."""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys

import pytest
from wsproto.frame_protocol import XorMaskerSimple

import trio_ws
from trio_ws import masking
from trio_ws.masking import apply_mask, python_apply_mask

IMPLEMENTATIONS = [pytest.param(apply_mask, id="apply_mask"), pytest.param(python_apply_mask, id="python")]


def reference(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def wsproto_mask(data: bytes, key: bytes) -> bytes:
    return bytes(XorMaskerSimple(key).process(data))


def test_speedups_selected_when_built() -> None:
    if not masking.HAS_SPEEDUPS:
        assert apply_mask is python_apply_mask
        pytest.skip("trio_ws._speedups not built")
    from trio_ws import _speedups  # type: ignore[attr-defined]

    assert apply_mask is _speedups.apply_mask


def test_has_speedups_is_public_and_tells_the_truth() -> None:
    assert "HAS_SPEEDUPS" in trio_ws.__all__
    assert trio_ws.HAS_SPEEDUPS is masking.HAS_SPEEDUPS
    assert masking.HAS_SPEEDUPS is (importlib.util.find_spec("trio_ws._speedups") is not None)


def test_has_speedups_false_when_the_compiled_module_is_missing() -> None:
    # A fresh interpreter where importing trio_ws._speedups fails, as on a
    # machine without a C compiler at install time.
    code = (
        "import sys; sys.modules['trio_ws._speedups'] = None\n"
        "import trio_ws\n"
        "from trio_ws import masking\n"
        "print(trio_ws.HAS_SPEEDUPS, masking.apply_mask is masking.python_apply_mask)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("length", range(101))
def test_all_lengths_agree_with_wsproto(length: int) -> None:
    rng = random.Random(length)
    for _ in range(3):
        data = rng.randbytes(length)
        key = rng.randbytes(4)
        expected = wsproto_mask(data, key)
        assert expected == reference(data, key)
        assert apply_mask(data, key) == expected
        assert python_apply_mask(data, key) == expected


def test_one_mebibyte() -> None:
    data = os.urandom(2**20)
    key = os.urandom(4)
    expected = wsproto_mask(data, key)
    assert apply_mask(data, key) == expected
    assert python_apply_mask(data, key) == expected


def test_one_mebibyte_odd_length() -> None:
    data = os.urandom(2**20 + 3)
    key = b"\x01\x80\xfe\x7f"
    assert apply_mask(data, key) == python_apply_mask(data, key) == wsproto_mask(data, key)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("length", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099])
def test_involution(impl, length: int) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(length)
    key = os.urandom(4)
    masked = impl(data, key)
    assert len(masked) == length
    assert impl(masked, key) == data


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_zero_key_is_identity(impl) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(333)
    assert impl(data, b"\x00\x00\x00\x00") == data


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_returns_bytes_for_all_buffer_types(impl) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(50)
    key = os.urandom(4)
    expected = reference(data, key)
    for value in (data, bytearray(data), memoryview(data), memoryview(bytearray(b"xx" + data))[2:]):
        result = impl(value, key)
        assert type(result) is bytes
        assert result == expected
    assert impl(data, bytearray(key)) == expected


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_empty(impl) -> None:  # type: ignore[no-untyped-def]
    assert impl(b"", b"abcd") == b""
    assert type(impl(bytearray(), b"abcd")) is bytes


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_input_not_modified(impl) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(os.urandom(40))
    copy = bytes(data)
    impl(data, b"\xff\xff\xff\xff")
    assert data == copy


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("key", [b"", b"a", b"abc", b"abcde", b"abcdefgh"])
def test_key_length_error(impl, key: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="4 bytes"):
        impl(b"payload", key)
    with pytest.raises(ValueError, match="4 bytes"):
        impl(b"", key)
