"""keel-sdk's own tests, run natively against the generated bindings of world
gateway-plugin with the FakeHost: PYTHONPATH=<bindings>:sdk/python/src python3 -m
unittest discover -s sdk/python/tests (Keel's CI does this in core/cli/tests/python_kit.rs).
"""

import dataclasses
import hashlib
import hmac as reference_hmac
import unittest

from componentize_py_types import Err
from wit_world.imports import http as wit_http
from wit_world.imports import types

from keel_sdk import clock, config, digest, errors, fixtures, http, inbound, kv, log, money
from keel_sdk.testing import FakeHost


class Digest(unittest.TestCase):
    def test_hmac_matches_the_standard_library_for_every_key_length(self):
        for length in (0, 1, 32, 63, 64, 65, 127, 128, 129, 300):
            key = bytes(range(length % 256)) * (length // 256 + 1)
            key = key[:length]
            message = b"The quick brown fox jumps over the lazy dog" * 3
            self.assertEqual(digest.hmac_sha256(key, message), reference_hmac.new(key, message, hashlib.sha256).digest())
            self.assertEqual(digest.hmac_sha512(key, message), reference_hmac.new(key, message, hashlib.sha512).digest())

    def test_rfc_4231_case_2(self):
        self.assertEqual(
            digest.hex(digest.hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        )

    def test_paynow_s_hash_is_sha512_upper_hex(self):
        # PROVIDERS.md 1.3: the values in order, then the integration key.
        fields = ["1201", "TEST REF", "99.99", "A test ticket transaction",
                  "http://www.google.com/search?q=returnurl", "http://www.google.com/search?q=resulturl",
                  "Message", "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977"]
        self.assertTrue(digest.hex_upper(digest.sha512("".join(fields))).startswith("2A033FC38798D913"))

    def test_comparison_is_exact_and_takes_hex_in_any_case(self):
        mac = digest.hex(digest.hmac_sha256(b"k", b"m"))
        self.assertTrue(digest.eq_hex(mac, mac.upper()))
        self.assertFalse(digest.eq_hex(mac, mac[:-1] + ("0" if mac[-1] != "0" else "1")))
        self.assertFalse(digest.eq_hex(mac, mac[:-2]))
        self.assertFalse(digest.eq_hex("zz", "zz"), "not hex is never equal")
        self.assertFalse(digest.eq_hex("ab cd", "ab cd"), "spaces are not hex")
        self.assertTrue(digest.eq(b"abc", b"abc"))
        self.assertFalse(digest.eq(b"abc", b"abd"))


class Money(unittest.TestCase):
    def test_amounts_convert_at_the_currency_s_exponent(self):
        self.assertEqual(money.to_major(money.new(2500, "USD")), "25.00")
        self.assertEqual(money.to_major(money.new(5, "USD")), "0.05")
        self.assertEqual(money.to_major(money.new(-5, "KWD")), "-0.005")
        self.assertEqual(money.to_major(money.new(1050, "JPY")), "1050")
        self.assertEqual(money.from_major("12.5", "USD"), money.new(1250, "USD"))
        self.assertEqual(money.from_major("1050", "JPY"), money.new(1050, "JPY"))
        self.assertEqual(money.from_major("-0.005", "KWD"), money.new(-5, "KWD"))
        self.assertEqual(money.exponent("CLF"), 4)
        self.assertIsNone(money.exponent("usd"), "codes are upper case")

    def test_text_that_is_not_an_exact_amount_is_refused_never_rounded(self):
        for text, currency in [("10.5", "JPY"), ("1.005", "USD"), ("1e3", "USD"), ("", "USD"), (".5", "USD"),
                               ("5.", "USD"), ("+5", "USD"), (" 5", "USD"), ("1,000.00", "USD"), ("9" * 20, "USD")]:
            with self.assertRaises(Err, msg=text) as caught:
                money.from_major(text, currency)
            self.assertEqual(errors.kind(caught.exception), "invalid-input")
        with self.assertRaises(Err):
            money.to_major(money.new(1, "ABC"))

    def test_round_trip(self):
        for minor in (0, 1, -1, 99, 100, 123456789, -987654321):
            for currency in ("USD", "JPY", "KWD", "CLF"):
                m = money.new(minor, currency)
                self.assertEqual(money.from_major(money.to_major(m), currency), m)


class Errors(unittest.TestCase):
    def test_transport_errors_map_as_in_the_rust_sdk(self):
        cases = [
            (wit_http.Error_Denied("not granted"), "misconfigured"),
            (wit_http.Error_Timeout(), "unavailable"),
            (wit_http.Error_Connection("refused"), "unavailable"),
            (wit_http.Error_InvalidRequest("bad url"), "internal"),
            (wit_http.Error_TooLarge("1 MiB"), "internal"),
            (wit_http.Error_TooManyRequests("8"), "internal"),
        ]
        for error, kind in cases:
            with FakeHost() as host:
                host.fail(error)
                with self.assertRaises(Err) as caught:
                    http.get("https://api.example.com/")
                self.assertEqual(errors.kind(caught.exception), kind, error)

    def test_statuses_map_as_in_the_rust_sdk(self):
        for status, kind in [(429, "unavailable"), (500, "unavailable"), (503, "unavailable"), (401, "misconfigured"),
                             (403, "misconfigured"), (400, "internal"), (404, "internal"), (422, "internal"), (302, "internal")]:
            with FakeHost() as host:
                host.reply(status, text="no")
                answer = http.get("https://api.example.com/")
                self.assertEqual(answer.status, status)
                with self.assertRaises(Err) as caught:
                    answer.raise_for_status()
                self.assertEqual(errors.kind(caught.exception), kind, status)

    def test_retry_after_is_passed_on(self):
        with FakeHost() as host:
            host.reply(503, text="busy", headers=[("Retry-After", "30")])
            with self.assertRaises(Err) as caught:
                http.get("https://api.example.com/").raise_for_status()
            self.assertEqual(caught.exception.value, types.PluginError_Unavailable(types.RetryHint("the provider answered 503: busy", 30)))

    def test_kind_and_message(self):
        self.assertEqual(errors.kind(errors.invalid_input("x")), "invalid-input")
        self.assertEqual(errors.kind(errors.unsupported()), "unsupported")
        self.assertEqual(errors.kind(ValueError("x")), "crash")
        self.assertEqual(errors.message(errors.unavailable("down", 5)), "down")
        self.assertEqual(errors.message(errors.refused("no")), "no")


class Http(unittest.TestCase):
    def test_json_and_form_bodies_and_auth_headers(self):
        with FakeHost() as host:
            host.reply(201, json={"id": "p_1"}).reply(200, text="a=1&b=two+words")
            answer = http.post("https://api.example.com/v1", json={"amount": "25.00"}, headers=[http.bearer("tok")])
            self.assertEqual(answer.raise_for_status().json(), {"id": "p_1"})
            self.assertEqual(host.request_json(0), {"amount": "25.00"})
            sent = host.requests[0]
            self.assertEqual(sent.method, wit_http.Method.POST)
            self.assertIn(("authorization", "Bearer tok"), sent.headers)
            self.assertIn(("content-type", "application/json"), sent.headers)
            form = http.put("https://api.example.com/f", form=[("x", "a b&c"), ("y", "é")], headers=[http.basic("u", "p")]).form()
            self.assertEqual(form, {"a": "1", "b": "two words"})
            self.assertEqual(bytes(host.requests[1].body), b"x=a+b%26c&y=%C3%A9")
            self.assertIn(("authorization", "Basic dTpw"), host.requests[1].headers)

    def test_a_reply_that_is_not_json_is_internal(self):
        with FakeHost() as host:
            host.reply(200, text="<html>")
            with self.assertRaises(Err) as caught:
                http.get("https://api.example.com/").json()
            self.assertEqual(errors.kind(caught.exception), "internal")

    def test_an_unscripted_request_fails_the_test(self):
        with FakeHost():
            with self.assertRaises(AssertionError):
                http.get("https://api.example.com/")

    def test_a_responder_answers_what_the_queue_does_not(self):
        with FakeHost() as host:
            host.respond(lambda req: wit_http.Response(status=200, headers=[], body=req.url.encode()))
            self.assertEqual(http.get("https://a.example/x").text(), "https://a.example/x")


class Host(unittest.TestCase):
    def test_settings_secrets_kv_logs_and_clock(self):
        with FakeHost(settings={"key": "s3cret", "empty": "", "n": 42, "on": True}, now_millis=1_767_225_600_123) as host:
            self.assertEqual(config.require("key"), "s3cret")
            self.assertEqual(config.secret("key").expose(), "s3cret")
            self.assertNotIn("s3cret", repr(config.secret("key")))
            for missing in ("empty", "absent"):
                with self.assertRaises(Err) as caught:
                    config.secret(missing)
                self.assertEqual(errors.kind(caught.exception), "misconfigured")
            self.assertEqual(config.integer("n"), 42)
            self.assertTrue(config.flag("on", False))
            self.assertFalse(config.flag("absent", False))
            with self.assertRaises(Err):
                config.integer("key")
            kv.set("a", "1")
            kv.set_json("b", {"x": [1, 2]})
            self.assertEqual(kv.get("a"), b"1")
            self.assertEqual(kv.get_json("b"), {"x": [1, 2]})
            self.assertTrue(kv.delete("a"))
            self.assertFalse(kv.delete("a"))
            self.assertIsNone(kv.get("a"))
            log.info("hello")
            log.warn("careful")
            self.assertEqual(host.logs, [("info", "hello"), ("warn", "careful")])
            self.assertEqual(clock.now_millis(), 1_767_225_600_123)
            self.assertEqual(clock.now(), "2026-01-01T00:00:00.123Z")
        # Uninstalled: the bindings' own functions are back.
        from wit_world.imports import config as wit_config
        with self.assertRaises(NotImplementedError):
            wit_config.get("key")


class Inbound(unittest.TestCase):
    def test_reading_a_callback_and_building_replies(self):
        req = fixtures.inbound_form("reference=INV-1&status=Paid&hash=AB")
        self.assertEqual(inbound.form(req), {"reference": "INV-1", "status": "Paid", "hash": "AB"})
        self.assertEqual(inbound.header(req, "Content-Type"), "application/x-www-form-urlencoded")
        signed = fixtures.inbound_json('{"id": "p_1"}', headers=[("x-signature", "00")])
        self.assertEqual(inbound.json(signed), {"id": "p_1"})
        self.assertEqual(inbound.header(signed, "X-Signature"), "00")
        with self.assertRaises(Err) as caught:
            inbound.json(fixtures.inbound_json("{"))
        self.assertEqual(errors.kind(caught.exception), "invalid-input")
        with self.assertRaises(Err):
            inbound.text(fixtures.inbound(b"\xff\xfe"))
        self.assertEqual(inbound.ok(), types.InboundReply(status=200, content_type=None, headers=[], body=b""))
        self.assertEqual(inbound.reply_text("OK").body, b"OK")
        self.assertEqual(inbound.reply_json({"ok": True}, 202), types.InboundReply(202, "application/json", [], b'{"ok":true}'))

    def test_replies_carry_further_headers(self):
        answer = inbound.with_header(inbound.reply_text("busy", 503), "Retry-After", "30")
        self.assertEqual(answer.headers, [("Retry-After", "30")])
        self.assertEqual((answer.status, answer.content_type, answer.body), (503, "text/plain; charset=utf-8", b"busy"))
        self.assertEqual(inbound.with_header(answer, "Cache-Control", "no-store").headers, [("Retry-After", "30"), ("Cache-Control", "no-store")])
        self.assertEqual(answer.headers, [("Retry-After", "30")], "the original is unchanged")
        self.assertEqual(inbound.reply(204, headers=[("X-Id", "1")]).headers, [("X-Id", "1")])

    def test_fixtures_are_plain_records_to_change(self):
        req = dataclasses.replace(fixtures.payment_request(2500, "USD"), method="ecocash")
        self.assertEqual(req.amount, money.new(2500, "USD"))
        self.assertEqual(req.method, "ecocash")
        self.assertEqual(req.payer.email, "rudo@example.co.zw")
        self.assertEqual(fixtures.payment_ref("P-1", "s").state, "s")



def load_tests(loader, tests, pattern):
    """The examples in the modules' docs run too."""
    import doctest

    from keel_sdk import digest as digest_module
    from keel_sdk import money as money_module

    tests.addTests(doctest.DocTestSuite(digest_module))
    tests.addTests(doctest.DocTestSuite(money_module))
    return tests


if __name__ == "__main__":
    unittest.main()
