"""A Keel notifier plugin in Python: posts each message as JSON to a webhook.

Built with componentize-py against world `notifier-plugin` of the `keel:plugin` WIT
package (see README.md). The bindings live in the generated `wit_world` package:
imports under `wit_world.imports`, the exported interface's protocol in
`wit_world.exports`.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import notifier
from wit_world.imports import config, http, log, types

NAME = "Python Notifier"
VERSION = "0.1.0"
DESCRIPTION = "Posts each message as JSON to a webhook; written in Python."


def _plugin_error(err: http.Error) -> types.PluginError:
    """Maps an http import error the way keel-sdk does: a denied destination is a
    settings problem, time-outs and connection failures are worth a retry, the rest are
    plugin bugs."""
    if isinstance(err, http.Error_Denied):
        return types.PluginError_Misconfigured(f"outbound request denied: {err.value}")
    if isinstance(err, http.Error_Timeout):
        return types.PluginError_Unavailable(types.RetryHint("the provider did not answer in time", None))
    if isinstance(err, http.Error_Connection):
        return types.PluginError_Unavailable(types.RetryHint(f"could not reach the provider: {err.value}", None))
    if isinstance(err, http.Error_InvalidRequest):
        return types.PluginError_Internal(f"invalid outbound request: {err.value}")
    if isinstance(err, http.Error_TooLarge):
        return types.PluginError_Internal(f"body too large: {err.value}")
    if isinstance(err, http.Error_TooManyRequests):
        return types.PluginError_Internal(f"too many requests in one call: {err.value}")
    return types.PluginError_Internal(f"unexpected http error: {err!r}")


def _provider_id(text: str) -> str:
    """The message id in a webhook's answer: `{"id": "..."}` as JSON, else the plain-text
    body itself."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text
    if isinstance(answer, dict) and answer.get("id") is not None:
        return str(answer["id"])
    if isinstance(answer, str):
        return answer
    return text if isinstance(answer, int) and not isinstance(answer, bool) else ""


class Notifier(exports.Notifier):
    def describe(self) -> types.PluginInfo:
        # No host import here: the kernel calls describe before it checks the settings.
        return types.PluginInfo(
            name=NAME,
            version=VERSION,
            description=DESCRIPTION,
            features=types.Features(0),
        )

    def send(self, msg: notifier.Message) -> notifier.Receipt:
        endpoint = config.get("endpoint")
        if not endpoint:
            raise Err(types.PluginError_Misconfigured("setting `endpoint` is not set"))
        body = json.dumps({"to": msg.to, "body": msg.body, "reference": msg.reference}).encode()
        request = http.Request(
            method=http.Method.POST,
            url=endpoint,
            headers=[("content-type", "application/json")],
            body=body,
            timeout_ms=None,
        )
        try:
            response = http.send(request)
        except Err as e:
            raise Err(_plugin_error(e.value))
        text = response.body.decode("utf-8", "replace").strip()
        if response.status == 429 or response.status >= 500:
            raise Err(types.PluginError_Unavailable(types.RetryHint(f"the webhook answered {response.status}", None)))
        if response.status >= 400:
            raise Err(types.PluginError_Refused(f"the webhook answered {response.status}: {text[:200]}"))
        provider_id = _provider_id(text)
        if not provider_id:
            raise Err(types.PluginError_Internal(f"the webhook answered without a message id: {text[:200]!r}"))
        log.log(log.Level.INFO, f"sent {msg.reference} to {msg.to}: provider id {provider_id}")
        return notifier.Receipt(provider_id=provider_id, status=notifier.DeliveryStatus.SENT)

    def verify_inbound(self, req: types.InboundRequest) -> notifier.Inbound:
        # describe does not claim the `inbound` feature.
        raise Err(types.PluginError_Unsupported())
