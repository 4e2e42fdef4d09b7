"""A Keel notifier plugin in Python: posts each message as JSON to a webhook.

Built with componentize-py against world `notifier-plugin` of the `keel:plugin` WIT
package, on keel-sdk for Python (`sdk/python`). See README.md.
"""

from keel_sdk import config, errors, http, log, unsupported
from wit_world import exports
from wit_world.exports import notifier
from wit_world.imports import types

NAME = "Python Notifier"
VERSION = "0.1.0"
DESCRIPTION = "Posts each message as JSON to a webhook; written in Python."


def provider_id(answer: http.Response) -> str:
    """The message id in a webhook's answer: `{"id": "..."}` as JSON, else the plain-text
    body itself."""
    text = answer.text().strip()
    try:
        data = answer.json()
    except errors.PluginFailure:
        return text
    if isinstance(data, dict) and data.get("id") is not None:
        return str(data["id"])
    if isinstance(data, (str, int)) and not isinstance(data, bool):
        return str(data)
    return ""


class Notifier(exports.Notifier):
    def describe(self) -> types.PluginInfo:
        # No host import here: the kernel calls describe before it checks the settings.
        return types.PluginInfo(name=NAME, version=VERSION, description=DESCRIPTION, features=types.Features(0))

    def send(self, msg: notifier.Message) -> notifier.Receipt:
        # The JSON carries text only: for a file (the invoice PDF) the kernel then sends the
        # text alone.
        if msg.attachment is not None:
            raise unsupported()
        endpoint = config.require("endpoint")
        answer = http.post(
            endpoint,
            json={"to": msg.to, "body": msg.body, "reference": msg.reference},
            headers=[("idempotency-key", msg.reference)],
        ).raise_for_status()
        sent_as = provider_id(answer)
        if not sent_as:
            raise errors.internal(f"the webhook answered without a message id: {answer.text()[:200]!r}")
        log.info(f"sent {msg.reference} to {msg.to}: provider id {sent_as}")
        return notifier.Receipt(provider_id=sent_as, status=notifier.DeliveryStatus.SENT)

    def verify_inbound(self, req: types.InboundRequest) -> notifier.Inbound:
        # describe does not claim the `inbound` feature.
        raise unsupported()
