"""A fake kernel for fast native unit tests of a plugin's logic (``python -m unittest``
or pytest on the author's machine, no WebAssembly).

The plugin's host calls (``wit_world.imports.http.send``, ``config.get``, ``kv``, ``log``,
``clock``) go to the ``FakeHost`` installed for the duration of a ``with`` block: scripted
HTTP answers, a settings map, an in-memory kv, captured logs and a fixed clock. It needs
the generated bindings on ``sys.path``, made once with::

    componentize-py -d <keel>/wit -w gateway-plugin bindings bindings

and ``PYTHONPATH=bindings`` (or ``sys.path.insert``) when the tests run. To test the real
component in the real host (limits, grants, the built ``.wasm``), use ``keel plugin
test``.

    with FakeHost(settings={"api_key": "k"}) as host:
        host.reply(201, json={"id": "vp_1"})
        started = Gateway().initiate(fixtures.payment_request(2500, "USD"))
        assert host.requests[0].url == "https://api.example.com/v1/payments"
"""

import datetime as _datetime
import json as _json
from typing import Any, Callable

from componentize_py_types import Err
from wit_world.imports import clock as wit_clock
from wit_world.imports import config as wit_config
from wit_world.imports import http as wit_http
from wit_world.imports import kv as wit_kv
from wit_world.imports import log as wit_log

#: 2026-01-01T00:00:00Z, the fake clock's default.
DEFAULT_NOW_MILLIS = 1_767_225_600_000

_PATCHED = [
    (wit_http, "send"),
    (wit_config, "get"),
    (wit_kv, "get"),
    (wit_kv, "set"),
    (wit_kv, "delete"),
    (wit_log, "log"),
    (wit_clock, "now"),
    (wit_clock, "now_millis"),
]


class FakeHost:
    """The kernel's side of the host interfaces, in memory.

    - ``settings``: what ``config.get`` answers (values as text, as the kernel gives them).
    - ``reply(...)`` / ``fail(...)`` queue the answers to the next requests, in order;
      ``respond(fn)`` answers every request left with ``fn(request)``. A request with
      nothing to answer it fails the test.
    - ``requests``: every ``http.Request`` the plugin sent; ``logs``: ``(level, message)``
      pairs with the level's name in lower case; ``kv``: the store, a dict of bytes.
    - ``now_millis``: the clock, fixed unless a test moves it.
    """

    def __init__(self, settings: dict[str, Any] | None = None, kv: dict[str, bytes] | None = None, now_millis: int = DEFAULT_NOW_MILLIS):
        self.settings = {k: _setting_text(v) for k, v in (settings or {}).items()}
        self.kv: dict[str, bytes] = dict(kv or {})
        self.now_millis = now_millis
        self.requests: list[wit_http.Request] = []
        self.logs: list[tuple[str, str]] = []
        self._queue: list[wit_http.Response | wit_http.Error] = []
        self._responder: Callable[[wit_http.Request], Any] | None = None
        self._saved: list[tuple[Any, str, Any]] = []

    # --- scripting -------------------------------------------------------------------

    def reply(self, status: int = 200, *, json: Any = None, text: str | None = None, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> "FakeHost":
        """Queues a response to the next request."""
        headers = list(headers or [])
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            headers.append(("content-type", "application/json"))
        elif text is not None:
            body = text.encode("utf-8")
            headers.append(("content-type", "text/plain; charset=utf-8"))
        self._queue.append(wit_http.Response(status=status, headers=headers, body=body))
        return self

    def fail(self, error: wit_http.Error) -> "FakeHost":
        """Queues a transport failure (``wit_http.Error_Timeout()``, ...) for the next request."""
        self._queue.append(error)
        return self

    def respond(self, fn: Callable[[wit_http.Request], Any]) -> "FakeHost":
        """Answers every request the queue does not with ``fn(request)``: a
        ``wit_http.Response`` or a ``wit_http.Error``."""
        self._responder = fn
        return self

    # --- installing ------------------------------------------------------------------

    def install(self) -> "FakeHost":
        """Routes the host interfaces here until ``uninstall``."""
        if self._saved:
            raise RuntimeError("this FakeHost is already installed")
        self._saved = [(module, name, getattr(module, name)) for module, name in _PATCHED]
        wit_http.send = self._send
        wit_config.get = self.settings.get
        wit_kv.get = self.kv.get
        wit_kv.set = self._kv_set
        wit_kv.delete = self._kv_delete
        wit_log.log = self._log
        wit_clock.now = self._now
        wit_clock.now_millis = lambda: self.now_millis
        return self

    def uninstall(self) -> None:
        for module, name, original in self._saved:
            setattr(module, name, original)
        self._saved = []

    def __enter__(self) -> "FakeHost":
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # --- the host side -----------------------------------------------------------------

    def _send(self, req: wit_http.Request) -> wit_http.Response:
        self.requests.append(req)
        if self._queue:
            answer = self._queue.pop(0)
        elif self._responder is not None:
            answer = self._responder(req)
        else:
            raise AssertionError(f"the plugin sent {req.method.name} {req.url} and the FakeHost has no reply queued for it")
        if isinstance(answer, wit_http.Response):
            return answer
        raise Err(answer)

    def _kv_set(self, key: str, value: bytes) -> None:
        self.kv[key] = bytes(value)

    def _kv_delete(self, key: str) -> bool:
        return self.kv.pop(key, None) is not None

    def _log(self, level: wit_log.Level, message: str) -> None:
        self.logs.append((level.name.lower(), message))

    def _now(self) -> str:
        moment = _datetime.datetime.fromtimestamp(self.now_millis / 1000, tz=_datetime.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.now_millis % 1000:03d}Z"

    # --- reading what happened ---------------------------------------------------------

    def request_json(self, index: int = -1) -> Any:
        """The JSON body of a request the plugin sent (the last by default)."""
        return _json.loads(bytes(self.requests[index].body))


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
