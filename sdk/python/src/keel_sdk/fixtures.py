"""The kernel's inputs as a plugin's tests need them: realistic values to change before use
(``dataclasses.replace(fixtures.payment_request(2500, "USD"), method="ecocash")``).

For native tests only: the gateway and notifier records come from the bindings of the
world the tests were generated for, so ``payment_request`` needs a ``gateway-plugin``
world's bindings and ``message`` a ``notifier-plugin`` one.
"""

from wit_world.imports import types

#: The kernel's reference of the payment in ``payment_request``.
REFERENCE = "INV-2026-000123-AB12CD"


def contact() -> types.Contact:
    """A payer: a person in Harare with an e-mail address and a mobile number."""
    return types.Contact(
        first_name="Rudo",
        last_name="Chikwanha",
        company=None,
        email="rudo@example.co.zw",
        phone="+263771234567",
        address=None,
    )


def payment_request(minor: int, currency: str):
    """A payment of ``minor`` units of ``currency`` for invoice ``INV-2026-000123``, as the
    kernel asks a gateway's ``initiate``."""
    from wit_world.exports import gateway

    return gateway.PaymentRequest(
        reference=REFERENCE,
        invoice_id="INV-2026-000123",
        amount=types.Money(minor=minor, currency=currency),
        description="Invoice INV-2026-000123",
        payer=contact(),
        return_url=f"https://billing.example.com/pay/return/{REFERENCE}",
        callback_url="https://billing.example.com/hooks/gateway/my-gateway",
        method=None,
    )


def payment_ref(provider_reference: str, state: str | None = None):
    """The payment of ``payment_request`` as the kernel names it to ``poll``, with the
    provider's reference and the ``state`` the plugin returned from ``initiate``."""
    from wit_world.exports import gateway

    return gateway.PaymentRef(reference=REFERENCE, provider_reference=provider_reference, state=state)


def inbound(body: bytes | str, content_type: str = "application/json", headers: list[tuple[str, str]] | None = None, query: str = "") -> types.InboundRequest:
    """A provider's ``POST``, as the kernel hands it to ``verify-callback`` or
    ``verify-inbound``, with ``content_type`` and any extra ``headers``."""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return types.InboundRequest(
        method="POST",
        path="/",
        query=query,
        headers=[("content-type", content_type), *(headers or [])],
        body=data,
    )


def inbound_form(body: str) -> types.InboundRequest:
    """A provider's ``POST`` with a form body."""
    return inbound(body, "application/x-www-form-urlencoded")


def inbound_json(body: str, headers: list[tuple[str, str]] | None = None) -> types.InboundRequest:
    """A provider's ``POST`` with a JSON body."""
    return inbound(body, "application/json", headers)


def message(to: str, body: str):
    """A plain-text message to ``to``, as the kernel asks a notifier's ``send``."""
    from wit_world.exports import notifier

    return notifier.Message(reference="ntf-000042", to=to, subject=None, body=body, template=None, attachment=None)
