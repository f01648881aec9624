"""Payload masking (RFC 6455 §5.3), with an optional compiled speed-up.

``apply_mask(data, key)`` XORs ``data`` with the 4-byte ``key`` repeated. The
compiled version (``trio_ws._speedups``, built when a C compiler is present at
install time) runs at memory speed; the pure-Python fallback translates the
four interleaved byte lanes with lookup tables, which is several times slower
on large payloads (see the benchmarks page) but needs nothing but Python.

``HAS_SPEEDUPS`` (also importable as ``trio_ws.HAS_SPEEDUPS``) tells which one
this installation uses.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["apply_mask", "python_apply_mask", "HAS_SPEEDUPS"]

_XOR_TABLES = [bytes(value ^ key for value in range(256)) for key in range(256)]


def python_apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR ``data`` with ``key`` repeated, in pure Python.

    Args:
        data: the payload.
        key: four bytes.

    Returns:
        the masked (or unmasked: the operation is its own inverse) payload.

    Raises:
        ValueError: when ``key`` is not four bytes long.
    """
    if len(key) != 4:
        raise ValueError("masking key must be 4 bytes")
    out = bytearray(data)
    if not out:
        return b""
    for lane in range(4):
        out[lane::4] = out[lane::4].translate(_XOR_TABLES[key[lane]])
    return bytes(out)


apply_mask: Callable[[bytes | bytearray | memoryview, bytes], bytes]
#: True when the compiled masking speed-up (``trio_ws._speedups``) was built
#: and is in use; False when the pure-Python fallback masks payloads.
HAS_SPEEDUPS: bool
try:
    from ._speedups import apply_mask as _compiled_apply_mask  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on how the package was built
    HAS_SPEEDUPS = False
    apply_mask = python_apply_mask
else:
    HAS_SPEEDUPS = True
    apply_mask = _compiled_apply_mask
