"""Requests a provider sends to the kernel (callbacks, webhooks, inbound messages) as the
kernel hands them to ``verify-callback`` or ``verify-inbound``, and the replies a plugin
tells the kernel to answer with.

The kernel answers the provider with the plugin's reply only when verification succeeded;
a failure is answered by the kernel itself (see docs/plugins/gateway.md).

    def verify_callback(self, req):
        fields = inbound.form(req)
        ...
        return gateway.Callback(update=update, reply=inbound.ok())
"""

import dataclasses as _dataclasses
import json as _json
from typing import Any

from wit_world.imports import types

from . import errors
from .http import form_decode
from .http import header as _header


def header(req: types.InboundRequest, name: str) -> str | None:
    """The first value of header ``name`` (any case)."""
    return _header(req.headers, name)


def text(req: types.InboundRequest) -> str:
    """The body as text; ``invalid-input`` when it is not UTF-8."""
    try:
        return bytes(req.body).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.invalid_input("the request body is not UTF-8") from None


def json(req: types.InboundRequest) -> Any:
    """The body parsed as JSON; ``invalid-input`` when it is not."""
    try:
        return _json.loads(text(req))
    except ValueError as e:
        raise errors.invalid_input(f"the request body is not JSON: {e}") from None


def form(req: types.InboundRequest) -> dict[str, str]:
    """The body parsed as a form (the last of repeated fields wins)."""
    return form_decode(text(req))


def query(req: types.InboundRequest) -> dict[str, str]:
    """The query string's fields."""
    return form_decode(req.query)


def reply(
    status: int,
    body: bytes | str = b"",
    content_type: str | None = "text/plain; charset=utf-8",
    headers: list[tuple[str, str]] | None = None,
) -> types.InboundReply:
    """A reply with any status, body, content type and further ``headers``."""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return types.InboundReply(
        status=status,
        content_type=content_type if data else None,
        headers=list(headers or []),
        body=data,
    )


def with_header(answer: types.InboundReply, name: str, value: str) -> types.InboundReply:
    """A copy of ``answer`` with one more header (``Retry-After``, ``Cache-Control``).

    The kernel drops the headers that are its own to set (``Content-Length``,
    ``Content-Type``: the constructors set that one, ``Transfer-Encoding``, ``Connection``,
    ``Set-Cookie``)."""
    return _dataclasses.replace(answer, headers=[*answer.headers, (name, value)])


def ok() -> types.InboundReply:
    """``200`` with an empty body."""
    return reply(200)


def reply_text(body: str, status: int = 200) -> types.InboundReply:
    """``200`` (or ``status``) with a plain-text body."""
    return reply(status, body)


def reply_json(value: Any, status: int = 200) -> types.InboundReply:
    """``200`` (or ``status``) with ``value`` as a JSON body."""
    return reply(status, _json.dumps(value, separators=(",", ":")), "application/json")
