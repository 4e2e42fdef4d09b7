"""Native unit tests of app.py with keel-sdk's FakeHost: no WebAssembly, a second to run.

    componentize-py -d ../../wit -w notifier-plugin bindings bindings
    PYTHONPATH=bindings:../../sdk/python/src python3 -m unittest

`keel plugin test` (tests.toml) then runs the built component in the real host.
"""

import dataclasses
import unittest

from componentize_py_types import Err
from wit_world.exports import notifier
from wit_world.imports import http as wit_http

from app import Notifier
from keel_sdk import errors, fixtures
from keel_sdk.testing import FakeHost

ENDPOINT = "https://hooks.example.com/keel"


class Send(unittest.TestCase):
    def test_a_message_is_posted_as_json_and_the_id_is_the_receipt(self):
        with FakeHost(settings={"endpoint": ENDPOINT}) as host:
            host.reply(200, json={"id": "wh_42"})
            receipt = Notifier().send(fixtures.message("+263771234567", "Your invoice is due."))
            self.assertEqual(receipt.provider_id, "wh_42")
            self.assertEqual(host.requests[0].url, ENDPOINT)
            self.assertEqual(host.request_json(), {"to": "+263771234567", "body": "Your invoice is due.", "reference": "ntf-000042"})
            self.assertIn(("idempotency-key", "ntf-000042"), host.requests[0].headers)
            self.assertEqual(host.logs, [("info", "sent ntf-000042 to +263771234567: provider id wh_42")])

    def test_a_plain_text_answer_is_the_id(self):
        with FakeHost(settings={"endpoint": ENDPOINT}) as host:
            host.reply(200, text=" msg-7781\n")
            self.assertEqual(Notifier().send(fixtures.message("+263771234567", "hi")).provider_id, "msg-7781")

    def test_failures_are_typed(self):
        cases = [
            (lambda h: h.reply(503, text="down"), "unavailable"),
            (lambda h: h.reply(401, text="who?"), "misconfigured"),
            (lambda h: h.reply(422, text="bad"), "internal"),
            (lambda h: h.reply(200, json={"ok": True}), "internal"),
            (lambda h: h.fail(wit_http.Error_Timeout()), "unavailable"),
            (lambda h: h.fail(wit_http.Error_Denied("not granted")), "misconfigured"),
        ]
        for script, kind in cases:
            with FakeHost(settings={"endpoint": ENDPOINT}) as host:
                script(host)
                with self.assertRaises(Err) as caught:
                    Notifier().send(fixtures.message("+263771234567", "hi"))
                self.assertEqual(errors.kind(caught.exception), kind)

    def test_a_message_with_an_attachment_is_unsupported_and_nothing_is_sent(self):
        msg = dataclasses.replace(
            fixtures.message("+263771234567", "Your invoice is attached."),
            attachment=notifier.Media(link="https://billing.example.com/f/Xy7", filename="INV-7.pdf", media_type="application/pdf", caption=None),
        )
        with FakeHost(settings={"endpoint": ENDPOINT}) as host:
            with self.assertRaises(Err) as caught:
                Notifier().send(msg)
            self.assertEqual(errors.kind(caught.exception), "unsupported")
            self.assertEqual(host.requests, [])

    def test_no_endpoint_is_the_admin_s_to_fix(self):
        with FakeHost() as host:
            with self.assertRaises(Err) as caught:
                Notifier().send(fixtures.message("+263771234567", "hi"))
            self.assertEqual(errors.kind(caught.exception), "misconfigured")
            self.assertEqual(host.requests, [])


if __name__ == "__main__":
    unittest.main()
