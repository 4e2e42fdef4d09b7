"""Hashes, HMACs and their comparison: what a plugin needs to sign a request to a provider
and to check the signature on a provider's callback.

HMAC is written out here (RFC 2104) over ``hashlib``'s SHA-2, on purpose: inside a
componentize-py component CPython has no OpenSSL, and the standard ``hmac`` module's
fallback path imports ``warnings`` when it is first called, which the component does not
have (it only holds the modules imported at start-up). Compare a signature a caller sent
with ``eq_hex`` or ``eq``: both take the same time whatever the first differing byte.

>>> hex(hmac_sha256(b"key", b"The quick brown fox jumps over the lazy dog"))
'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8'
"""

import hashlib

_SHA256_BLOCK = 64
_SHA512_BLOCK = 128
_HEX = frozenset("0123456789abcdefABCDEF")


def _bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def sha256(data: bytes | str) -> bytes:
    """SHA-256 of ``data`` (text is taken as UTF-8)."""
    return hashlib.sha256(_bytes(data)).digest()


def sha512(data: bytes | str) -> bytes:
    """SHA-512 of ``data`` (text is taken as UTF-8)."""
    return hashlib.sha512(_bytes(data)).digest()


def _hmac(new, block: int, key: bytes | str, message: bytes | str) -> bytes:
    key = _bytes(key)
    if len(key) > block:
        key = new(key).digest()
    key = key.ljust(block, b"\0")
    inner = new(bytes(k ^ 0x36 for k in key) + _bytes(message)).digest()
    return new(bytes(k ^ 0x5C for k in key) + inner).digest()


def hmac_sha256(key: bytes | str, message: bytes | str) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (any length)."""
    return _hmac(hashlib.sha256, _SHA256_BLOCK, key, message)


def hmac_sha512(key: bytes | str, message: bytes | str) -> bytes:
    """HMAC-SHA512 of ``message`` under ``key`` (any length)."""
    return _hmac(hashlib.sha512, _SHA512_BLOCK, key, message)


def hex(data: bytes) -> str:  # noqa: A001 - the name the Rust SDK uses
    """Lower-case hex of ``data``."""
    return data.hex()


def hex_upper(data: bytes) -> str:
    """Upper-case hex of ``data``."""
    return data.hex().upper()


def eq(a: bytes, b: bytes) -> bool:
    """``a == b`` in time that depends only on the lengths."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def eq_hex(a: str, b: str) -> bool:
    """Two hex texts are the same bytes (any case), compared as ``eq`` does. Text that is
    not hex is never equal."""
    if len(a) != len(b) or len(a) % 2 or not all(c in _HEX for c in a + b):
        return False
    return eq(bytes.fromhex(a), bytes.fromhex(b))
