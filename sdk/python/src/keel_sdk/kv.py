"""A small key-value store private to the plugin, kept in the kernel's database (keys at
most 256 bytes, values at most 64 KiB). A store failure is ``internal``."""

import json as _json
from typing import Any

from componentize_py_types import Err
from wit_world.imports import kv as wit_kv

from . import errors


def get(key: str) -> bytes | None:
    """The value stored under ``key``, if any."""
    try:
        return wit_kv.get(key)
    except Err as e:
        raise errors.internal(f"kv get {key!r}: {e.value}") from None


def set(key: str, value: bytes | str) -> None:  # noqa: A001 - the WIT's name
    """Stores ``value`` under ``key`` (text as UTF-8), replacing what was there."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    try:
        wit_kv.set(key, data)
    except Err as e:
        raise errors.internal(f"kv set {key!r}: {e.value}") from None


def delete(key: str) -> bool:
    """Removes ``key``; ``True`` when it was there."""
    try:
        return wit_kv.delete(key)
    except Err as e:
        raise errors.internal(f"kv delete {key!r}: {e.value}") from None


def get_json(key: str) -> Any:
    """The JSON value stored under ``key`` by ``set_json``, or ``None``."""
    data = get(key)
    if data is None:
        return None
    try:
        return _json.loads(data)
    except ValueError as e:
        raise errors.internal(f"kv {key!r} does not hold JSON: {e}") from None


def set_json(key: str, value: Any) -> None:
    """Stores ``value`` as JSON under ``key``."""
    set(key, _json.dumps(value, separators=(",", ":")))
