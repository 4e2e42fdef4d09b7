"""The kernel's typed errors, ready to ``raise``.

An exported operation that returns a WIT ``result`` fails by raising
``componentize_py_types.Err(<plugin-error>)``; each function here builds that exception,
so a plugin writes ``raise keel_sdk.refused("card declined")``. What the kernel does with
each kind:

- ``invalid_input``: the input cannot be processed as given (a callback with a bad
  signature, an amount the provider cannot take). Not retried.
- ``refused``: the provider said no. Not retried.
- ``unavailable``: the provider is down or slow; the kernel retries later (after
  ``retry_after`` seconds when given).
- ``misconfigured``: the settings or the grants are wrong; the admin is told.
- ``unsupported``: the plugin does not do this operation.
- ``internal``: a bug, or an answer the plugin does not understand.

The mapping of transport errors and HTTP statuses is the Rust SDK's, so a plugin behaves
the same in either language: see ``from_http_error`` and ``http.Response.raise_for_status``.
"""

from componentize_py_types import Err
from wit_world.imports import http as wit_http
from wit_world.imports import types

#: The exception an operation raises to fail with a typed error.
PluginFailure = Err


def invalid_input(message: str) -> Err:
    """The input cannot be processed as given."""
    return Err(types.PluginError_InvalidInput(message))


def refused(message: str) -> Err:
    """The provider said no."""
    return Err(types.PluginError_Refused(message))


def unavailable(reason: str, retry_after: int | None = None) -> Err:
    """The provider is unavailable; try again later (after ``retry_after`` seconds)."""
    return Err(types.PluginError_Unavailable(types.RetryHint(reason=reason, retry_after_seconds=retry_after)))


def misconfigured(message: str) -> Err:
    """The settings are wrong or missing."""
    return Err(types.PluginError_Misconfigured(message))


def unsupported() -> Err:
    """The plugin does not do this operation."""
    return Err(types.PluginError_Unsupported())


def internal(message: str) -> Err:
    """A bug, or a reply the plugin does not understand."""
    return Err(types.PluginError_Internal(message))


def from_http_error(err: wit_http.Error) -> Err:
    """The typed error for an ``http.send`` failure: a denied destination is a settings
    problem (the admin's grant or the manifest); time-outs and connection failures are
    worth a retry; the rest are plugin bugs."""
    if isinstance(err, wit_http.Error_Denied):
        return misconfigured(f"outbound request denied: {err.value}")
    if isinstance(err, wit_http.Error_Timeout):
        return unavailable("the provider did not answer in time")
    if isinstance(err, wit_http.Error_Connection):
        return unavailable(f"could not reach the provider: {err.value}")
    if isinstance(err, wit_http.Error_InvalidRequest):
        return internal(f"invalid outbound request: {err.value}")
    if isinstance(err, wit_http.Error_TooLarge):
        return internal(f"body too large: {err.value}")
    if isinstance(err, wit_http.Error_TooManyRequests):
        return internal(f"too many requests in one call: {err.value}")
    return internal(f"unexpected http error: {err!r}")


def kind(failure: BaseException) -> str:
    """The kind of a typed failure as the WIT, ``keel plugin call`` and ``tests.toml`` name
    it (``"invalid-input"``, ``"unavailable"``, ...); ``"crash"`` for any other exception.
    Handy in tests."""
    if isinstance(failure, Err):
        name = type(failure.value).__name__
        if name.startswith("PluginError_"):
            camel = name[len("PluginError_"):]
            return "".join("-" + c.lower() if c.isupper() else c for c in camel).lstrip("-")
    return "crash"


def message(failure: BaseException) -> str:
    """The text a typed failure carries (a retry hint's reason for ``unavailable``)."""
    if isinstance(failure, Err):
        value = getattr(failure.value, "value", None)
        if isinstance(value, types.RetryHint):
            return value.reason
        if isinstance(value, str):
            return value
        return ""
    return str(failure)
