"""keel-sdk for Python: write a Keel plugin in Python, build it with componentize-py.

The WIT in Keel's ``wit/`` folder is the contract; componentize-py generates the
``wit_world`` bindings from it. This package sits on top of them:

- ``errors``: the kernel's typed failures, ready to ``raise`` (``raise refused("...")``),
  with the Rust SDK's mapping of transport errors and HTTP statuses;
- ``http``: ``send``/``get``/``post`` with ``json=``/``form=`` bodies and a ``Response``
  with ``json()``, ``form()``, ``raise_for_status()``;
- ``config`` (``require``, ``secret``, ``flag``, ``integer``), ``kv``, ``log``, ``clock``;
- ``digest``: SHA-2, HMAC (without the ``hmac`` module, which fails inside a component),
  hex and constant-time comparison;
- ``money``: the kernel's ISO 4217 exponents, ``to_major`` and ``from_major``;
- ``inbound``: reading a provider's callback and building the reply;
- ``testing.FakeHost`` and ``fixtures`` for native unit tests.

One rule for code that runs inside a component: **import every module at the top of a
file**. componentize-py snapshots the interpreter after importing your app; a module first
imported while an operation runs may not be in the component, and the call crashes.
"""

from . import clock, config, digest, errors, http, inbound, kv, log, money
from .errors import (
    PluginFailure,
    internal,
    invalid_input,
    misconfigured,
    refused,
    unavailable,
    unsupported,
)

__all__ = [
    "PluginFailure",
    "clock",
    "config",
    "digest",
    "errors",
    "http",
    "inbound",
    "internal",
    "invalid_input",
    "kv",
    "log",
    "misconfigured",
    "money",
    "refused",
    "unavailable",
    "unsupported",
]
