"""Outbound HTTP through the kernel's own client, the only network a plugin has.

``send`` (and ``get``, ``post``, ...) raise the kernel's typed error when no response came
back (see ``errors.from_http_error``); any status is a response. ``Response.raise_for_status``
turns a non-2xx status into the error the kernel should act on, as the Rust SDK does.

    answer = http.post(url, json={"amount": "25.00"}, headers=[http.bearer(key)])
    data = answer.raise_for_status().json()
"""

import base64
import json as _json
from typing import Any, Iterable
from urllib.parse import parse_qsl, quote_plus

from componentize_py_types import Err
from wit_world.imports import http as wit_http

from . import errors

Headers = Iterable[tuple[str, str]]

_METHODS = {
    "GET": wit_http.Method.GET,
    "HEAD": wit_http.Method.HEAD,
    "POST": wit_http.Method.POST,
    "PUT": wit_http.Method.PUT,
    "PATCH": wit_http.Method.PATCH,
    "DELETE": wit_http.Method.DELETE,
}


class Response:
    """A provider's answer: ``status``, ``headers`` (name, value pairs) and ``body`` bytes."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response(status={self.status}, body={self.body[:80]!r})"

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case)."""
        return header(self.headers, name)

    def text(self) -> str:
        """The body as text (UTF-8; undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; ``internal`` when it is not."""
        try:
            return _json.loads(self.body)
        except ValueError as e:
            raise errors.internal(f"the provider's reply is not the JSON expected: {e}") from None

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (the last of repeated
        fields wins)."""
        return form_decode(self.text())

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def raise_for_status(self) -> "Response":
        """This response if its status is 2xx, else raises what the kernel should act on:
        429 and 5xx are ``unavailable`` (with ``Retry-After`` seconds when given), 401 and
        403 ``misconfigured`` (credentials), other statuses ``internal`` (the plugin sent
        something the provider rejects)."""
        if self.ok:
            return self
        snippet = self.text()[:200]
        if self.status == 429 or 500 <= self.status <= 599:
            retry = self.header("retry-after")
            retry_after = int(retry.strip()) if retry and retry.strip().isdigit() else None
            raise errors.unavailable(f"the provider answered {self.status}: {snippet}", retry_after)
        if self.status in (401, 403):
            raise errors.misconfigured(f"the provider refused the credentials ({self.status}): {snippet}")
        raise errors.internal(f"the provider answered {self.status}: {snippet}")


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (any case) in ``headers``."""
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def bearer(token: str) -> tuple[str, str]:
    """An ``authorization: Bearer`` header."""
    return ("authorization", f"Bearer {token}")


def basic(user: str, password: str) -> tuple[str, str]:
    """An ``authorization: Basic`` header."""
    pair = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return ("authorization", f"Basic {pair}")


def form_encode(fields: Iterable[tuple[str, str]] | dict[str, str]) -> str:
    """``application/x-www-form-urlencoded`` text of ``fields``, in order."""
    items = fields.items() if isinstance(fields, dict) else fields
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in items)


def form_decode(text: str) -> dict[str, str]:
    """Fields of form-encoded ``text`` (the last of repeated fields wins)."""
    return dict(parse_qsl(text, keep_blank_values=True))


def send(
    method: str,
    url: str,
    *,
    headers: Headers = (),
    body: bytes | str = b"",
    json: Any = None,
    form: Iterable[tuple[str, str]] | dict[str, str] | None = None,
    timeout_ms: int | None = None,
) -> Response:
    """Sends a request and waits for the whole response. ``json=`` or ``form=`` encode the
    body and set its ``content-type``; ``body=`` sends bytes (text as UTF-8) as they are.
    Raises the kernel's typed error when no response came back."""
    wanted = _METHODS.get(method.upper())
    if wanted is None:
        raise errors.internal(f"unknown HTTP method {method!r}")
    headers = list(headers)
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"))
        headers.append(("content-type", "application/json"))
    elif form is not None:
        body = form_encode(form)
        headers.append(("content-type", "application/x-www-form-urlencoded"))
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    request = wit_http.Request(method=wanted, url=url, headers=headers, body=data, timeout_ms=timeout_ms)
    try:
        answer = wit_http.send(request)
    except Err as e:
        raise errors.from_http_error(e.value) from None
    return Response(answer.status, list(answer.headers), bytes(answer.body))


def get(url: str, **kwargs: Any) -> Response:
    """``send("GET", url, ...)``."""
    return send("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """``send("POST", url, ...)``."""
    return send("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    """``send("PUT", url, ...)``."""
    return send("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> Response:
    """``send("PATCH", url, ...)``."""
    return send("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """``send("DELETE", url, ...)``."""
    return send("DELETE", url, **kwargs)
