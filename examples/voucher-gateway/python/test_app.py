"""Native unit tests of app.py with keel-sdk's FakeHost (docs/plugins/gateway.md, step 6):

    componentize-py -d <keel>/wit -w gateway-plugin bindings bindings
    PYTHONPATH=bindings python3 -m unittest
"""

import unittest

from componentize_py_types import Err

from app import Gateway
from keel_sdk import digest, errors, fixtures, money
from keel_sdk.testing import FakeHost

SETTINGS = {"api_key": "vp_test_key", "webhook_secret": "whsec_voucher", "api_base": "https://api.voucherpay.test"}
CREATED = {
    "id": "vp_7Hk2Qm",
    "status": "pending",
    "pay_url": "https://pay.voucherpay.test/vp_7Hk2Qm",
    "status_url": "https://api.voucherpay.test/v1/payments/vp_7Hk2Qm/status",
}
PAID = '{"id":"vp_7Hk2Qm","reference":"INV-2026-000123-AB12CD","status":"paid","amount":"25.00","currency":"USD"}'


class Initiate(unittest.TestCase):
    def test_creates_the_payment_and_keeps_the_status_url_as_state(self):
        with FakeHost(settings=SETTINGS) as host:
            host.reply(201, json=CREATED)
            started = Gateway().initiate(fixtures.payment_request(2500, "USD"))
            self.assertEqual(started.provider_reference, "vp_7Hk2Qm")
            self.assertEqual(started.action.value, "https://pay.voucherpay.test/vp_7Hk2Qm")
            self.assertEqual(started.state, CREATED["status_url"])
            sent = host.requests[0]
            self.assertEqual(sent.url, "https://api.voucherpay.test/v1/payments")
            self.assertIn(("authorization", "Bearer vp_test_key"), sent.headers)
            self.assertIn(("idempotency-key", fixtures.REFERENCE), sent.headers)
            self.assertEqual(host.request_json()["amount"], "25.00")

    def test_a_rejected_key_is_misconfigured_and_an_outage_unavailable(self):
        for status, kind in [(401, "misconfigured"), (503, "unavailable"), (422, "internal")]:
            with FakeHost(settings=SETTINGS) as host:
                host.reply(status, text="no")
                with self.assertRaises(Err) as caught:
                    Gateway().initiate(fixtures.payment_request(2500, "USD"))
                self.assertEqual(errors.kind(caught.exception), kind)


class Poll(unittest.TestCase):
    def test_asks_the_url_kept_as_state(self):
        with FakeHost(settings=SETTINGS) as host:
            host.reply(200, text=PAID)
            update = Gateway().poll(fixtures.payment_ref("vp_7Hk2Qm", CREATED["status_url"]))
            self.assertEqual(host.requests[0].url, CREATED["status_url"])
            self.assertEqual(update.amount, money.new(2500, "USD"))
            self.assertEqual(update.provider_status, "paid")

    def test_an_answer_about_another_payment_is_internal(self):
        with FakeHost(settings=SETTINGS) as host:
            host.reply(200, text=PAID.replace("INV-2026-000123-AB12CD", "INV-2026-000999-ZZ99ZZ"))
            with self.assertRaises(Err) as caught:
                Gateway().poll(fixtures.payment_ref("vp_7Hk2Qm"))
            self.assertEqual(errors.kind(caught.exception), "internal")
            self.assertEqual(host.requests[0].url, "https://api.voucherpay.test/v1/payments/vp_7Hk2Qm")


class VerifyCallback(unittest.TestCase):
    def signed(self, body: str, signature: str | None = None):
        mac = digest.hex(digest.hmac_sha256("whsec_voucher", body))
        return fixtures.inbound_json(body, headers=[("voucherpay-signature", signature or mac)])

    def test_a_signed_callback_is_read_and_answered_ok(self):
        with FakeHost(settings=SETTINGS):
            callback = Gateway().verify_callback(self.signed(PAID))
            self.assertEqual(callback.update.reference, fixtures.REFERENCE)
            self.assertEqual(callback.reply.body, b"ok")

    def test_a_forged_or_unsigned_callback_is_invalid_input(self):
        with FakeHost(settings=SETTINGS):
            forged = self.signed(PAID.replace("25.00", "2500.00"), digest.hex(digest.hmac_sha256("whsec_voucher", PAID)))
            for req in (forged, fixtures.inbound_json(PAID)):
                with self.assertRaises(Err) as caught:
                    Gateway().verify_callback(req)
                self.assertEqual(errors.kind(caught.exception), "invalid-input")


if __name__ == "__main__":
    unittest.main()
