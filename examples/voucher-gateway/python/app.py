"""VoucherPay: an example Keel payment gateway in Python, built step by step in Keel's
docs/plugins/gateway.md. The payer pays on VoucherPay's page; VoucherPay posts a signed
callback, and Keel confirms it by polling. The Rust twin is ../rust; both pass
../tests.toml."""

import json

from keel_sdk import config, digest, errors, http, inbound, money
from wit_world import exports
from wit_world.exports import gateway
from wit_world.imports import types

# The header VoucherPay signs its callbacks in.
SIGNATURE_HEADER = "voucherpay-signature"

STATUSES = {
    "pending": gateway.PaymentStatus.PENDING,
    "paid": gateway.PaymentStatus.PAID,
    "failed": gateway.PaymentStatus.FAILED,
    "cancelled": gateway.PaymentStatus.CANCELLED,
    "refunded": gateway.PaymentStatus.REFUNDED,
    "disputed": gateway.PaymentStatus.DISPUTED,
}


class Gateway(exports.Gateway):
    def describe(self) -> types.PluginInfo:
        # No host calls here: Keel calls `describe` when it loads the plugin, before it
        # checks the settings.
        return types.PluginInfo(
            name="VoucherPay",
            version="0.1.0",
            description="The payer pays on VoucherPay's page; signed callbacks, confirmed by polling",
            features=types.Features.POLLING,
        )

    def initiate(self, req: gateway.PaymentRequest) -> gateway.PaymentStarted:
        api_key = config.secret("api_key")
        created = http.post(
            f"{api_base()}/v1/payments",
            headers=[
                http.bearer(api_key.expose()),
                # Keel's reference is stable across retries: VoucherPay answers a repeat
                # with the payment it made the first time instead of making a second one.
                ("idempotency-key", req.reference),
            ],
            json={
                "amount": money.to_major(req.amount),  # {minor: 2500, currency: "USD"} is "25.00"
                "currency": req.amount.currency,
                "reference": req.reference,
                "description": req.description,
                "email": req.payer.email,
                "return_url": req.return_url,
                "callback_url": req.callback_url,
            },
        ).raise_for_status().json()
        # 429 and 5xx raised unavailable (retried later); 401 and 403 misconfigured (the
        # admin is told); any other 4xx internal (a bug in what we sent).
        return gateway.PaymentStarted(
            provider_reference=field(created, "id"),
            status=gateway.PaymentStatus.PENDING,
            action=gateway.NextAction_Redirect(field(created, "pay_url")),
            # Keel stores this as given and hands it back to `poll`.
            state=field(created, "status_url"),
        )

    def poll(self, payment: gateway.PaymentRef) -> gateway.PaymentUpdate:
        api_key = config.secret("api_key")
        if payment.state is not None:
            url = payment.state
        elif not payment.provider_reference:
            # `initiate` never answered (a crash, a time-out): nothing to ask about.
            raise errors.invalid_input("no provider reference and no state to poll")
        else:
            url = f"{api_base()}/v1/payments/{payment.provider_reference}"
        answer = http.get(url, headers=[http.bearer(api_key.expose())]).raise_for_status().json()
        if field(answer, "reference") != payment.reference:
            raise errors.internal(f"asked about {payment.reference}, VoucherPay answered about {answer['reference']}")
        return update_of(answer)

    def verify_callback(self, req: types.InboundRequest) -> gateway.Callback:
        secret = config.secret("webhook_secret")
        # The signature first, over the raw bytes: nothing in the body is trusted before.
        claimed = inbound.header(req, SIGNATURE_HEADER)
        if claimed is None:
            raise errors.invalid_input(f"no {SIGNATURE_HEADER} header")
        expected = digest.hex(digest.hmac_sha256(secret.expose(), req.body))
        # In constant time: a forger learns nothing from how fast a wrong guess fails.
        if not digest.eq_hex(claimed.strip(), expected):
            raise errors.invalid_input(f"the {SIGNATURE_HEADER} does not match the body")
        try:
            payment = json.loads(req.body)
        except ValueError as e:
            raise errors.internal(f"a signed callback that is not a payment: {e}") from None
        return gateway.Callback(update=update_of(payment), reply=inbound.reply_text("ok"))

    def refund(self, req: gateway.RefundRequest) -> gateway.RefundStarted:
        # `describe` does not claim `refunds`, so Keel never asks.
        raise errors.unsupported()


def update_of(payment: dict) -> gateway.PaymentUpdate:
    """The update Keel acts on. A status word or an amount we cannot read is `internal`:
    never paid on a guess."""
    word = field(payment, "status")
    status = STATUSES.get(word)
    if status is None:
        raise errors.internal(f"VoucherPay sent the unknown status `{word}`")
    try:
        # "25.00" USD is {minor: 2500, currency: "USD"}, exactly, or an error.
        amount = money.from_major(field(payment, "amount"), field(payment, "currency"))
    except errors.PluginFailure:
        raise errors.internal(
            f"VoucherPay sent the amount {payment['amount']!r} {payment['currency']!r}, which is not money"
        ) from None
    return gateway.PaymentUpdate(
        reference=field(payment, "reference"),
        provider_reference=field(payment, "id"),
        status=status,
        amount=amount,
        provider_status=word,
    )


def field(answer: object, name: str) -> str:
    """A text field of VoucherPay's JSON; `internal` when it is missing or not text."""
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str):
        raise errors.internal(f"VoucherPay's answer has no text field `{name}`")
    return value


def api_base() -> str:
    """The `api_base` setting, without a trailing `/`."""
    return config.require("api_base").rstrip("/")
