//! Whole calls against the SDK's fake kernel: settings, storage and Paynow's replies are
//! scripted, and what the plugin sent is checked byte for byte. Hashes the tests expect are
//! computed here with `digest` directly, not with the plugin's own `message::hash`, or come
//! from PROVIDERS.md 1.3 and 1.8.

use keel_sdk::digest;
use keel_sdk::gateway::{
    Gateway, NextAction, PaymentRef, PaymentRequest, PaymentStatus, RefundRequest,
};
use keel_sdk::http::{Error, Method, Response, form_encode};
use keel_sdk::log::Level;
use keel_sdk::testing::{FakeGuard, FakeHost};
use keel_sdk::{Contact, Features, InboundRequest, Money, PluginError};

use super::*;
use crate::message::Outbound;
use crate::settings::IntegrationKey;

/// The USD integration of PROVIDERS.md 1.8.
const USD_ID: &str = "7175";
const USD_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
/// A second integration, for ZWG.
const ZWG_ID: &str = "8080";
const ZWG_KEY: &str = "6b0c3f2e-1d4a-4e7b-8c9d-0a1b2c3d4e5f";
const API: &str = "https://www.paynow.co.zw";
const POLL_URL: &str =
    "https://www.paynow.co.zw/Interface/CheckPayment/?guid=5f0c6a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21";

/// The body of the 1.8 outbound web request, byte for byte, without its hash.
const WORKED_WEB_BODY: &str = "id=7175&reference=INV-2026-0042&amount=25.00&additionalinfo=Web+hosting+%28Starter%29%2C+1+month&returnurl=https%3A%2F%2Fbilling.example.co.zw%2Fpaynow%2Freturn%3Finvoice%3D42&resulturl=https%3A%2F%2Fbilling.example.co.zw%2Fhooks%2Fgateways%2Fpaynow&authemail=client%40example.co.zw";
/// The 1.8 hashed string of the web request, up to `Message`, without the key.
const WORKED_WEB_VALUES: &str = "7175INV-2026-004225.00Web hosting (Starter), 1 monthhttps://billing.example.co.zw/paynow/return?invoice=42https://billing.example.co.zw/hooks/gateways/paynowclient@example.co.zw";
/// The 1.8 status update, without its hash.
const WORKED_UPDATE: &str = "reference=INV-2026-0042&paynowreference=18452937&amount=25.00&status=Paid&pollurl=https%3A%2F%2Fwww.paynow.co.zw%2FInterface%2FCheckPayment%2F%3Fguid%3D5f0c6a4e-2b1d-4c8e-9f3a-7d6e5c4b3a21";
const WORKED_UPDATE_HASH: &str = "149DE7E3BC94890DD2299A60F8C6C31062B70C31C861C52F9D0054341165D5E2900F7EA28D5405B149A0B72D133F1D9E411F1CFD8943FCF066D5356156CBA39B";

/// Both integrations set up, Paynow at its real address.
fn host() -> FakeHost {
    FakeHost::new()
        .setting("api_url", API)
        .setting("usd_integration_id", USD_ID)
        .setting("usd_integration_key", USD_KEY)
        .setting("zwg_integration_id", ZWG_ID)
        .setting("zwg_integration_key", ZWG_KEY)
}

/// The payment of PROVIDERS.md 1.8.
fn request() -> PaymentRequest {
    PaymentRequest {
        reference: "INV-2026-0042".into(),
        invoice_id: "42".into(),
        amount: Money::new(2500, "USD"),
        description: "Web hosting (Starter), 1 month".into(),
        payer: Contact {
            first_name: "Tendai".into(),
            last_name: "Moyo".into(),
            company: None,
            email: "client@example.co.zw".into(),
            phone: Some("+263771111111".into()),
            address: None,
        },
        return_url: "https://billing.example.co.zw/paynow/return?invoice=42".into(),
        callback_url: "https://billing.example.co.zw/hooks/gateways/paynow".into(),
        method: None,
    }
}

fn with_method(method: &str) -> PaymentRequest {
    PaymentRequest {
        method: Some(method.into()),
        ..request()
    }
}

/// SHA-512 of the values and the key, upper-case hex: PROVIDERS.md 1.3, written out here
/// independently of `message::hash`.
fn sign(fields: &[(&str, &str)], key: &str) -> String {
    let mut text: String = fields.iter().map(|(_, value)| *value).collect();
    text.push_str(key);
    digest::hex_upper(&digest::sha512(text))
}

/// `fields` form-encoded with their hash under `key` appended.
fn signed(fields: &[(&str, &str)], key: &str) -> String {
    let hash = sign(fields, key);
    let mut all = fields.to_vec();
    all.push(("hash", &hash));
    form_encode(all)
}

fn answer(status: u16, body: impl Into<Vec<u8>>) -> Result<Response, Error> {
    Ok(Response {
        status,
        headers: vec![],
        body: body.into(),
    })
}

/// A fake kernel whose Paynow answers every request with `body`.
fn replying(host: FakeHost, body: impl Into<Vec<u8>>) -> FakeGuard {
    let body = body.into();
    host.respond(move |_| answer(200, body.clone())).install()
}

/// The storage of a payment `initiate` started in `currency`.
fn started_in(host: FakeHost, reference: &str, currency: &str) -> FakeHost {
    host.kv(&format!("ref:{reference}"), currency.as_bytes())
}

fn callback(body: impl Into<Vec<u8>>) -> InboundRequest {
    InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.into(),
    }
}

fn payment(state: Option<&str>) -> PaymentRef {
    PaymentRef {
        reference: "INV-2026-0042".into(),
        provider_reference: "18452937".into(),
        state: state.map(str::to_owned),
    }
}

fn body_text(host: &FakeGuard, index: usize) -> String {
    String::from_utf8(host.requests()[index].body.clone()).unwrap()
}

fn web_ok_reply(key: &str) -> String {
    signed(
        &[
            ("status", "Ok"),
            (
                "browserurl",
                "https://www.paynow.co.zw/Payment/ConfirmPayment/9510",
            ),
            ("pollurl", POLL_URL),
            ("paynowreference", "9510"),
        ],
        key,
    )
}

// --- PROVIDERS.md 1.8, the worked example --------------------------------------------

/// 1.8 byte for byte. The example has no `merchanttrace`, which `initiate` adds for any
/// reference of 32 characters or fewer (and 1.8's reference is 13), so this builds the
/// message with the same `Outbound` that `initiate` uses, with exactly 1.8's fields; the
/// next test checks what `initiate` itself sends for the same payment.
#[test]
fn worked_example_web_request_byte_for_byte() {
    let fields = Outbound::new()
        .field("id", "7175")
        .field("reference", "INV-2026-0042")
        .field("amount", "25.00")
        .optional("additionalinfo", Some("Web hosting (Starter), 1 month"))
        .field(
            "returnurl",
            "https://billing.example.co.zw/paynow/return?invoice=42",
        )
        .field(
            "resulturl",
            "https://billing.example.co.zw/hooks/gateways/paynow",
        )
        .optional("authemail", Some("client@example.co.zw"))
        .field("status", "Message")
        .signed(&IntegrationKey::new(USD_KEY));
    let hash = "3B1DEF198D5F8BBB670BACF38A9E609DF7C947F15508C6CE4B966C929FEAA6A2E7F580A52D3ADE7F2B07239756372C541B2F70543C6C7B0912E1F1D3996265D8";
    assert_eq!(
        form_encode(fields.iter().map(|(k, v)| (*k, v.as_str()))),
        format!("{WORKED_WEB_BODY}&status=Message&hash={hash}")
    );
    // The hashed string of 1.8, for the record.
    assert_eq!(
        digest::hex_upper(&digest::sha512(format!(
            "{WORKED_WEB_VALUES}Message{USD_KEY}"
        ))),
        hash
    );
}

/// What `initiate` sends for the 1.8 payment: 1.8's body with `merchanttrace` (the
/// reference) before `status`, hashed in that order.
#[test]
fn initiate_sends_the_worked_example_with_its_merchant_trace() {
    let host = replying(host(), web_ok_reply(USD_KEY));
    Paynow::initiate(request()).unwrap();
    let sent = &host.requests()[0];
    assert_eq!(sent.method, Method::Post);
    assert_eq!(
        sent.url,
        "https://www.paynow.co.zw/interface/initiatetransaction"
    );
    assert!(
        sent.headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/x-www-form-urlencoded"),
        "{:?}",
        sent.headers
    );
    let hash = digest::hex_upper(&digest::sha512(format!(
        "{WORKED_WEB_VALUES}INV-2026-0042Message{USD_KEY}"
    )));
    assert_eq!(
        body_text(&host, 0),
        format!("{WORKED_WEB_BODY}&merchanttrace=INV-2026-0042&status=Message&hash={hash}")
    );
}

#[test]
fn worked_example_express_request_and_hash() {
    let fields = Outbound::new()
        .field("id", "7175")
        .field("reference", "INV-2026-0042")
        .field("amount", "25.00")
        .optional("additionalinfo", Some("Web hosting (Starter), 1 month"))
        .field(
            "returnurl",
            "https://billing.example.co.zw/paynow/return?invoice=42",
        )
        .field(
            "resulturl",
            "https://billing.example.co.zw/hooks/gateways/paynow",
        )
        .optional("authemail", Some("client@example.co.zw"))
        .field("phone", "0771111111")
        .field("method", "ecocash")
        .field("status", "Message")
        .signed(&IntegrationKey::new(USD_KEY));
    assert_eq!(
        fields.last().unwrap().1,
        "322A07268423B70239C0A7DA8F5076CBEA01439CC1AE9F5B4CEF538F4664FFB7C36E1D5A4CBDECBC98D135AE324EB5D6FD9D0E99C8D4F41AAE0520C22EFA1A91"
    );

    // `initiate` with EcoCash and the payer's E.164 number: the same fields, the phone in
    // local form, and the merchant trace before `status`.
    let host = replying(
        host(),
        signed(
            &[
                ("status", "Ok"),
                ("instructions", "Dial *151*2*4# and enter your PIN"),
                ("paynowreference", "18452937"),
                ("pollurl", POLL_URL),
            ],
            USD_KEY,
        ),
    );
    let started = Paynow::initiate(with_method("ecocash")).unwrap();
    assert_eq!(
        host.requests()[0].url,
        "https://www.paynow.co.zw/interface/remotetransaction"
    );
    let hash = digest::hex_upper(&digest::sha512(format!(
        "{WORKED_WEB_VALUES}0771111111ecocashINV-2026-0042Message{USD_KEY}"
    )));
    assert_eq!(
        body_text(&host, 0),
        format!(
            "{WORKED_WEB_BODY}&phone=0771111111&method=ecocash&merchanttrace=INV-2026-0042&status=Message&hash={hash}"
        )
    );
    assert_eq!(started.provider_reference, "18452937");
    assert_eq!(started.status, PaymentStatus::Pending);
    assert_eq!(
        started.action,
        NextAction::Instructions("Dial *151*2*4# and enter your PIN".into())
    );
    assert_eq!(started.state.as_deref(), Some(POLL_URL));
}

#[test]
fn worked_example_status_update_is_paid() {
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let body = format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}");
    let callback = Paynow::verify_callback(callback(body)).unwrap();
    let update = callback.update;
    assert_eq!(update.reference, "INV-2026-0042");
    assert_eq!(update.provider_reference, "18452937");
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.amount, Some(Money::new(2500, "USD")));
    assert_eq!(update.provider_status, "Paid");
    assert_eq!(callback.reply, keel_sdk::InboundReply::ok());
}

/// 1.8: the key appended in upper case gives a hash starting `B8ECC70503FD4C1F`, which
/// must not verify; a key typed in upper case in the settings is lower-cased and does.
#[test]
fn worked_example_upper_case_key_does_not_verify() {
    let upper = digest::hex_upper(&digest::sha512(format!(
        "INV-2026-00421845293725.00Paid{POLL_URL}{}",
        USD_KEY.to_uppercase()
    )));
    assert!(upper.starts_with("B8ECC70503FD4C1F"), "{upper}");
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let err = Paynow::verify_callback(callback(format!("{WORKED_UPDATE}&hash={upper}")));
    assert_eq!(err.unwrap_err(), PluginError::refused("hash mismatch"));

    let _host = started_in(host(), "INV-2026-0042", "USD")
        .setting("usd_integration_key", &USD_KEY.to_uppercase())
        .install();
    let body = format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}");
    assert!(Paynow::verify_callback(callback(body)).is_ok());
}

// --- initiate ---------------------------------------------------------------------------

#[test]
fn describe_offers_polling() {
    let info = Paynow::describe();
    assert_eq!(info.name, "Paynow");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.features, Features::POLLING);
}

#[test]
fn web_checkout_redirects_and_keeps_the_poll_url() {
    let host = replying(host(), web_ok_reply(USD_KEY));
    let started = Paynow::initiate(with_method("web")).unwrap();
    assert_eq!(started.provider_reference, "9510");
    assert_eq!(started.status, PaymentStatus::Pending);
    assert_eq!(
        started.action,
        NextAction::Redirect("https://www.paynow.co.zw/Payment/ConfirmPayment/9510".into())
    );
    assert_eq!(started.state.as_deref(), Some(POLL_URL));
    assert_eq!(host.kv("ref:INV-2026-0042").as_deref(), Some(&b"USD"[..]));
}

#[test]
fn amounts_are_sent_with_two_decimal_places() {
    for (minor, text) in [(1, "0.01"), (2500, "25.00"), (123_456, "1234.56")] {
        let host = replying(host(), web_ok_reply(USD_KEY));
        Paynow::initiate(PaymentRequest {
            amount: Money::new(minor, "USD"),
            ..request()
        })
        .unwrap();
        assert!(
            body_text(&host, 0).contains(&format!("&amount={text}&")),
            "{minor}: {}",
            body_text(&host, 0)
        );
    }
    for minor in [0, -100] {
        let host = replying(host(), web_ok_reply(USD_KEY));
        let err = Paynow::initiate(PaymentRequest {
            amount: Money::new(minor, "USD"),
            ..request()
        })
        .unwrap_err();
        assert!(
            matches!(err, PluginError::InvalidInput(_)),
            "{minor}: {err:?}"
        );
        assert!(host.requests().is_empty());
    }
}

#[test]
fn long_references_are_sent_without_a_merchant_trace() {
    let reference = "pay_0194f3c2-7b1a-7c3e-9a10-6f2b8e7d9c31";
    let host = replying(host(), web_ok_reply(USD_KEY));
    Paynow::initiate(PaymentRequest {
        reference: reference.into(),
        ..request()
    })
    .unwrap();
    let body = body_text(&host, 0);
    assert!(!body.contains("merchanttrace"), "{body}");
    assert!(body.contains(&format!("&reference={reference}&")), "{body}");
    // Card tokens need the merchant trace (PROVIDERS.md 1.2): refused before sending.
    let err = Paynow::initiate(PaymentRequest {
        reference: reference.into(),
        method: Some("vmc:{11111111-1111-1111-1111-111111111111}".into()),
        ..request()
    })
    .unwrap_err();
    assert!(matches!(&err, PluginError::InvalidInput(m) if m.contains("merchant trace")));
    assert_eq!(host.requests().len(), 1);
}

#[test]
fn card_tokens_send_method_then_token() {
    let host = replying(
        host(),
        signed(
            &[
                ("status", "Ok"),
                ("instructions", ""),
                ("paynowreference", "77"),
                ("pollurl", POLL_URL),
            ],
            USD_KEY,
        ),
    );
    let started =
        Paynow::initiate(with_method("zimswitch:11111111111111111111111111111111")).unwrap();
    let hash = digest::hex_upper(&digest::sha512(format!(
        "{WORKED_WEB_VALUES}zimswitch11111111111111111111111111111111INV-2026-0042Message{USD_KEY}"
    )));
    assert_eq!(
        body_text(&host, 0),
        format!(
            "{WORKED_WEB_BODY}&method=zimswitch&token=11111111111111111111111111111111&merchanttrace=INV-2026-0042&status=Message&hash={hash}"
        )
    );
    assert_eq!(
        started.action,
        NextAction::Instructions("Approve the payment on your phone when it asks.".into())
    );
}

#[test]
fn auth_email_replaces_the_payers_email() {
    let host = replying(
        host().setting("auth_email", "merchant@host.co.zw"),
        web_ok_reply(USD_KEY),
    );
    Paynow::initiate(request()).unwrap();
    let body = body_text(&host, 0);
    assert!(body.contains("&authemail=merchant%40host.co.zw&"), "{body}");
    assert!(!body.contains("client%40"), "{body}");
}

#[test]
fn wallets_need_the_payers_phone() {
    let host = replying(host(), web_ok_reply(USD_KEY));
    let mut req = with_method("onemoney");
    req.payer.phone = None;
    let err = Paynow::initiate(req).unwrap_err();
    assert!(
        matches!(&err, PluginError::InvalidInput(m) if m.contains("payer phone")),
        "{err:?}"
    );
    let err = Paynow::initiate(with_method("bitcoin")).unwrap_err();
    assert!(
        matches!(&err, PluginError::InvalidInput(m) if m.contains("ecocash, onemoney")),
        "{err:?}"
    );
    assert!(host.requests().is_empty());
}

#[test]
fn omari_is_sent_as_paygo_with_the_code_and_qr() {
    let host = replying(
        host(),
        signed(
            &[
                ("status", "Ok"),
                ("instructions", "Scan the QR code in your O'mari app"),
                ("authorizationcode", "123456"),
                ("authorizationqr", "https://www.paynow.co.zw/qr/123456.png"),
                ("authorizationexpires", "7-Dec-2026 14:30"),
                ("paynowreference", "18452937"),
                ("pollurl", POLL_URL),
            ],
            USD_KEY,
        ),
    );
    let started = Paynow::initiate(with_method("omari")).unwrap();
    assert!(body_text(&host, 0).contains("&phone=0771111111&method=paygo&"));
    assert_eq!(
        started.action,
        NextAction::Instructions(
            "Scan the QR code in your O'mari app\n\nAuthorisation code: 123456\n\
             Valid until: 7-Dec-2026 14:30\nQR code: https://www.paynow.co.zw/qr/123456.png"
                .into()
        )
    );
}

#[test]
fn innbucks_shows_the_code_and_the_deep_link() {
    let _host = replying(
        host(),
        signed(
            &[
                ("status", "Ok"),
                (
                    "instructions",
                    "Pay in InnBucks with this code\r\nthen wait",
                ),
                ("authorizationcode", "987654"),
                ("authorizationexpires", "7-Dec-2026 14:30"),
                ("paynowreference", "18452937"),
                ("pollurl", POLL_URL),
            ],
            USD_KEY,
        ),
    );
    let started = Paynow::initiate(with_method("innbucks")).unwrap();
    assert_eq!(
        started.action,
        NextAction::Instructions(
            "Pay in InnBucks with this code\nthen wait\n\nAuthorisation code: 987654\n\
             Valid until: 7-Dec-2026 14:30\n\
             Open in InnBucks: schinn.wbpycode://innbucks.co.zw?pymInnCode=987654"
                .into()
        )
    );
    assert_eq!(started.state.as_deref(), Some(POLL_URL));
}

#[test]
fn a_reply_with_unknown_fields_and_capitalised_names_still_verifies() {
    let _host = replying(
        host(),
        signed(
            &[
                ("Status", "Ok"),
                (
                    "BrowserUrl",
                    "https://www.paynow.co.zw/Payment/ConfirmPayment/1",
                ),
                ("somethingnew", "with a value"),
                ("PollUrl", POLL_URL),
            ],
            USD_KEY,
        ),
    );
    let started = Paynow::initiate(request()).unwrap();
    // No `paynowreference` (PROVIDERS.md 6.4): the reference stands in for it.
    assert_eq!(started.provider_reference, "INV-2026-0042");
    assert_eq!(
        started.action,
        NextAction::Redirect("https://www.paynow.co.zw/Payment/ConfirmPayment/1".into())
    );
}

#[test]
fn a_forged_reply_is_not_believed() {
    for reply in [
        web_ok_reply(ZWG_KEY),
        web_ok_reply(USD_KEY).replace("9510&hash", "9511&hash"),
        form_encode([("status", "Ok"), ("browserurl", "https://evil.example/")]),
    ] {
        let _host = replying(host(), reply.clone());
        let err = Paynow::initiate(request()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Internal(m) if m.starts_with("Paynow's reply did not verify")),
            "{reply}: {err:?}"
        );
    }
}

#[test]
fn error_replies_map_to_what_the_kernel_does_next() {
    let refused = PluginError::refused;
    for (body, expected) in [
        (
            "status=Error&error=Insufficient+balance",
            refused("Insufficient balance"),
        ),
        (
            "status=Error&error=Invalid+amount+field",
            refused("Invalid amount field"),
        ),
        (
            "status=Error&error=Invalid+id.",
            PluginError::misconfigured(
                "Paynow refused the USD integration (Invalid id.): check usd_integration_id and usd_integration_key",
            ),
        ),
        (
            "status=Invalid+id.",
            PluginError::misconfigured(
                "Paynow refused the USD integration (Invalid id.): check usd_integration_id and usd_integration_key",
            ),
        ),
        (
            "status=Error&error=Invalid+Hash.++Hash+should+start+with%3a+8AB116",
            PluginError::misconfigured(
                "Paynow refused the USD integration (Invalid Hash.  Hash should start with: 8AB116): check usd_integration_id and usd_integration_key",
            ),
        ),
        (
            "status=Error",
            refused("Paynow refused the payment without saying why"),
        ),
        (
            "status=Pending3ds&hash=00",
            PluginError::internal(
                "Paynow answered with the status \"Pending3ds\", which the plugin does not know",
            ),
        ),
    ] {
        let _host = replying(host(), body);
        assert_eq!(Paynow::initiate(request()).unwrap_err(), expected, "{body}");
    }
}

#[test]
fn transport_and_http_failures_are_unavailable() {
    let _host = host()
        .respond(|_| {
            Ok(Response {
                status: 503,
                headers: vec![("Retry-After".into(), "30".into())],
                body: b"Service Unavailable".to_vec(),
            })
        })
        .install();
    let err = Paynow::initiate(request()).unwrap_err();
    assert_eq!(
        err,
        PluginError::unavailable(
            "Paynow answered HTTP 503 at https://www.paynow.co.zw/interface/initiatetransaction: Service Unavailable",
            Some(30)
        )
    );
    for failure in [Error::Connection("refused".into()), Error::Timeout] {
        let _host = host().respond(move |_| Err(failure.clone())).install();
        let err = Paynow::initiate(request()).unwrap_err();
        assert!(matches!(err, PluginError::Unavailable(_)), "{err:?}");
    }
    // The kernel refusing the destination is the admin's grant, not Paynow.
    let _host = host()
        .respond(|_| Err(Error::Denied("not granted".into())))
        .install();
    let err = Paynow::initiate(request()).unwrap_err();
    assert!(matches!(err, PluginError::Misconfigured(_)), "{err:?}");
    let _host = replying(host(), "<html>%zz</html>");
    let err = Paynow::initiate(request()).unwrap_err();
    assert!(
        matches!(&err, PluginError::Internal(m) if m.contains("not form-encoded")),
        "{err:?}"
    );
    let _host = host().respond(|_| answer(404, "Not Found")).install();
    assert!(matches!(
        Paynow::initiate(request()),
        Err(PluginError::Unavailable(_))
    ));
}

#[test]
fn the_currency_is_recorded_before_paynow_is_asked() {
    let host = host()
        .respond(|_| Err(Error::Connection("reset".into())))
        .install();
    assert!(Paynow::initiate(request()).is_err());
    assert_eq!(host.kv("ref:INV-2026-0042").as_deref(), Some(&b"USD"[..]));
}

// --- currencies ---------------------------------------------------------------------------

#[test]
fn the_currency_chooses_the_integration() {
    let host = replying(host(), web_ok_reply(ZWG_KEY));
    let started = Paynow::initiate(PaymentRequest {
        amount: Money::new(150_000, "ZWG"),
        ..request()
    })
    .unwrap();
    assert_eq!(started.state.as_deref(), Some(POLL_URL));
    let body = body_text(&host, 0);
    assert!(
        body.starts_with("id=8080&reference=INV-2026-0042&amount=1500.00&"),
        "{body}"
    );
    let values = format!(
        "8080INV-2026-00421500.00Web hosting (Starter), 1 monthhttps://billing.example.co.zw/paynow/return?invoice=42https://billing.example.co.zw/hooks/gateways/paynowclient@example.co.zwINV-2026-0042Message{ZWG_KEY}"
    );
    let hash = digest::hex_upper(&digest::sha512(values));
    assert!(body.ends_with(&format!("&hash={hash}")), "{body}");
    assert_eq!(host.kv("ref:INV-2026-0042").as_deref(), Some(&b"ZWG"[..]));
}

#[test]
fn a_currency_without_an_integration_is_refused() {
    let host = replying(host(), web_ok_reply(USD_KEY));
    let err = Paynow::initiate(PaymentRequest {
        amount: Money::new(2500, "ZAR"),
        ..request()
    })
    .unwrap_err();
    assert_eq!(
        err,
        PluginError::refused("Paynow is not set up for ZAR payments here (it takes USD, ZWG)")
    );
    assert!(host.requests().is_empty());
    assert_eq!(host.kv("ref:INV-2026-0042"), None);
    drop(host);

    let _host = FakeHost::new()
        .setting("api_url", API)
        .setting("usd_integration_id", USD_ID)
        .setting("usd_integration_key", USD_KEY)
        .install();
    let err = Paynow::initiate(PaymentRequest {
        amount: Money::new(2500, "ZWG"),
        ..request()
    })
    .unwrap_err();
    assert_eq!(
        err,
        PluginError::refused("Paynow is not set up for ZWG payments here (it takes USD)")
    );
}

#[test]
fn a_half_configured_currency_is_misconfigured() {
    let _host = FakeHost::new()
        .setting("api_url", API)
        .setting("usd_integration_key", USD_KEY)
        .install();
    let err = Paynow::initiate(request()).unwrap_err();
    assert!(
        matches!(&err, PluginError::Misconfigured(m) if m.contains("usd_integration_id")),
        "{err:?}"
    );
}

#[test]
fn an_update_signed_with_the_other_currencys_key_is_refused() {
    let fields = [
        ("reference", "INV-2026-0042"),
        ("paynowreference", "18452937"),
        ("amount", "25.00"),
        ("status", "Paid"),
        ("pollurl", POLL_URL),
    ];
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let err = Paynow::verify_callback(callback(signed(&fields, ZWG_KEY))).unwrap_err();
    assert_eq!(err, PluginError::refused("hash mismatch"));
    drop(_host);

    let _host = started_in(host(), "INV-2026-0042", "ZWG").install();
    let update = Paynow::verify_callback(callback(signed(&fields, ZWG_KEY)))
        .unwrap()
        .update;
    assert_eq!(update.amount, Some(Money::new(2500, "ZWG")));
}

// --- verify_callback ---------------------------------------------------------------------

fn update_fields<'a>(status: &'a str, amount: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("reference", "INV-2026-0042"),
        ("paynowreference", "18452937"),
        ("amount", amount),
        ("status", status),
        ("pollurl", POLL_URL),
    ]
}

#[test]
fn callbacks_that_are_not_genuine_are_refused() {
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let mut unknown_reference = update_fields("Paid", "25.00");
    unknown_reference[0] = ("reference", "INV-9");
    for (body, expected) in [
        (WORKED_UPDATE.to_owned(), "missing hash".to_owned()),
        (
            format!("{WORKED_UPDATE}&extra=%zz&hash={WORKED_UPDATE_HASH}"),
            format!(
                "malformed form encoding: malformed percent-escape at byte {} (`%` must be followed by two hex digits)",
                WORKED_UPDATE.len() + "&extra=".len()
            ),
        ),
        (
            format!(
                "{}&hash={WORKED_UPDATE_HASH}",
                WORKED_UPDATE.replace("25.00", "2.50")
            ),
            "hash mismatch".to_owned(),
        ),
        (
            format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}&hash={WORKED_UPDATE_HASH}"),
            "more than one hash".to_owned(),
        ),
        (
            signed(&[("paynowreference", "1"), ("status", "Paid")], USD_KEY),
            "missing reference".to_owned(),
        ),
        // An unknown reference is named only to a sender holding an integration key: to anyone
        // else it is a forgery like any other, so refusals tell nobody which references exist.
        (
            signed(&unknown_reference, USD_KEY),
            "unknown reference \"INV-9\": no Paynow payment was started with it".to_owned(),
        ),
        (
            signed(&unknown_reference, ZWG_KEY),
            "unknown reference \"INV-9\": no Paynow payment was started with it".to_owned(),
        ),
        (
            signed(&update_fields("Paid", "25.00"), USD_KEY).replace("INV-2026-0042", "INV-9"),
            "hash mismatch".to_owned(),
        ),
        (
            signed(&unknown_reference, "not-the-key"),
            "hash mismatch".to_owned(),
        ),
    ] {
        let err = Paynow::verify_callback(callback(body.clone())).unwrap_err();
        assert_eq!(err, PluginError::refused(expected), "{body}");
    }
}

#[test]
fn callback_statuses_map_without_case_and_unknown_ones_stay_pending() {
    for (word, status) in [
        ("Paid", PaymentStatus::Paid),
        ("Awaiting Delivery", PaymentStatus::Paid),
        ("delivered", PaymentStatus::Paid),
        ("Created", PaymentStatus::Pending),
        ("Sent", PaymentStatus::Pending),
        ("Cancelled", PaymentStatus::Cancelled),
        ("FAILED", PaymentStatus::Failed),
        ("Refunded", PaymentStatus::Refunded),
        ("Disputed", PaymentStatus::Disputed),
        ("Reversed", PaymentStatus::Pending),
    ] {
        let host = started_in(host(), "INV-2026-0042", "USD").install();
        let body = signed(&update_fields(word, "25.00"), USD_KEY);
        let update = Paynow::verify_callback(callback(body)).unwrap().update;
        assert_eq!(update.status, status, "{word}");
        assert_eq!(update.provider_status, word);
        let warned = host
            .logs()
            .iter()
            .any(|(level, line)| *level == Level::Warn && line.contains(&format!("{word:?}")));
        assert_eq!(warned, word == "Reversed", "{word}: {:?}", host.logs());
    }
    // On the wire `Awaiting Delivery` comes with a `+`.
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let body = signed(&update_fields("Awaiting Delivery", "25.00"), USD_KEY);
    assert!(body.contains("&status=Awaiting+Delivery&"), "{body}");
}

#[test]
fn callback_amounts_are_read_exactly() {
    for (text, minor) in [
        ("25.00", Some(2500)),
        ("12.5", Some(1250)),
        ("7", Some(700)),
    ] {
        let _host = started_in(host(), "INV-2026-0042", "USD").install();
        let body = signed(&update_fields("Paid", text), USD_KEY);
        let update = Paynow::verify_callback(callback(body)).unwrap().update;
        assert_eq!(update.amount, minor.map(|m| Money::new(m, "USD")), "{text}");
    }
    for text in ["25.001", "25,00", "1e3", "twenty"] {
        let _host = started_in(host(), "INV-2026-0042", "USD").install();
        let body = signed(&update_fields("Paid", text), USD_KEY);
        let err = Paynow::verify_callback(callback(body)).unwrap_err();
        assert!(
            matches!(&err, PluginError::Refused(m) if m.contains(&format!("{text:?}"))),
            "{text}: {err:?}"
        );
    }
}

#[test]
fn callbacks_with_extra_fields_verify() {
    let _host = started_in(host(), "INV-2026-0042", "USD").install();
    let mut fields = update_fields("Paid", "25.00");
    fields.insert(4, ("paymentchannel", "Visa"));
    fields.push(("merchantfees", "0.75"));
    let update = Paynow::verify_callback(callback(signed(&fields, USD_KEY)))
        .unwrap()
        .update;
    assert_eq!(update.status, PaymentStatus::Paid);
}

// --- poll -----------------------------------------------------------------------------------

#[test]
fn poll_posts_an_empty_body_to_the_poll_url_and_verifies_the_reply() {
    let host = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"),
    );
    let update = Paynow::poll(payment(Some(POLL_URL))).unwrap();
    let sent = &host.requests()[0];
    assert_eq!(sent.method, Method::Post);
    assert_eq!(sent.url, POLL_URL);
    assert!(sent.body.is_empty());
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.amount, Some(Money::new(2500, "USD")));
    assert_eq!(update.provider_reference, "18452937");
}

#[test]
fn poll_follows_only_urls_on_the_paynow_origin() {
    for url in [
        "https://evil.example/Interface/CheckPayment/?guid=1",
        "http://www.paynow.co.zw/Interface/CheckPayment/?guid=1",
        "https://www.paynow.co.zw:8443/Interface/CheckPayment/?guid=1",
        "https://www.paynow.co.zw.evil.example/x",
        "https://www.paynow.co.zw@evil.example/x",
        "/Interface/CheckPayment/?guid=1",
    ] {
        let host = replying(
            started_in(host(), "INV-2026-0042", "USD"),
            format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"),
        );
        let err = Paynow::poll(payment(Some(url))).unwrap_err();
        assert!(
            matches!(&err, PluginError::Refused(m) if m.starts_with(&format!("the poll URL {url:?} is not on the Paynow host https://www.paynow.co.zw"))),
            "{url}: {err:?}"
        );
        assert!(host.requests().is_empty(), "{url}");
    }
    // Case and the default port do not matter; a test double's origin is honoured.
    let guard = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"),
    );
    assert!(
        Paynow::poll(payment(Some(
            "HTTPS://WWW.PAYNOW.CO.ZW:443/Interface/CheckPayment/?guid=1"
        )))
        .is_ok()
    );
    drop(guard);
    let guard = replying(
        started_in(
            host().setting("api_url", "http://www.paynow.co.zw:8089"),
            "INV-2026-0042",
            "USD",
        ),
        format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"),
    );
    assert!(Paynow::poll(payment(Some("http://www.paynow.co.zw:8089/poll/1"))).is_ok());
    assert_eq!(
        guard.requests()[0].url,
        "http://www.paynow.co.zw:8089/poll/1"
    );
}

#[test]
fn poll_replies_that_do_not_verify_or_fail_are_not_updates() {
    for (reply, expected_internal) in [
        (format!("{WORKED_UPDATE}&hash={}", "0".repeat(128)), true),
        (signed(&update_fields("Paid", "25.00"), ZWG_KEY), true),
        (
            signed(&update_fields("Paid", "25.00"), USD_KEY).replace("INV-2026-0042", "INV-1"),
            true,
        ),
        ("status=Error&error=Something+went+wrong".to_owned(), false),
    ] {
        let _host = replying(started_in(host(), "INV-2026-0042", "USD"), reply.clone());
        let err = Paynow::poll(payment(Some(POLL_URL))).unwrap_err();
        let kind_ok = if expected_internal {
            matches!(err, PluginError::Internal(_))
        } else {
            matches!(err, PluginError::Unavailable(_))
        };
        assert!(kind_ok, "{reply}: {err:?}");
    }
    // A reply about another reference, signed correctly, is still not this payment's.
    let mut fields = update_fields("Paid", "25.00");
    fields[0] = ("reference", "INV-1");
    let _host = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        signed(&fields, USD_KEY),
    );
    let err = Paynow::poll(payment(Some(POLL_URL))).unwrap_err();
    assert!(
        matches!(&err, PluginError::Internal(m) if m.contains("\"INV-1\"")),
        "{err:?}"
    );
}

#[test]
fn poll_without_a_record_of_the_payment_is_internal() {
    let host = replying(host(), format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"));
    let err = Paynow::poll(payment(Some(POLL_URL))).unwrap_err();
    assert!(matches!(err, PluginError::Internal(_)), "{err:?}");
    assert!(host.requests().is_empty());
}

#[test]
fn without_a_poll_url_poll_traces_and_not_found_is_failed() {
    let not_found = signed(&[("status", "NotFound")], USD_KEY);
    let host = replying(started_in(host(), "INV-2026-0042", "USD"), not_found);
    let update = Paynow::poll(payment(None)).unwrap();
    let sent = &host.requests()[0];
    assert_eq!(sent.url, "https://www.paynow.co.zw/interface/trace");
    let hash = sign(
        &[
            ("id", USD_ID),
            ("merchanttrace", "INV-2026-0042"),
            ("status", "Message"),
        ],
        USD_KEY,
    );
    assert_eq!(
        body_text(&host, 0),
        format!("id=7175&merchanttrace=INV-2026-0042&status=Message&hash={hash}")
    );
    assert_eq!(update.status, PaymentStatus::Failed);
    assert_eq!(update.provider_status, "NotFound");
    assert_eq!(update.amount, None);
    assert_eq!(update.reference, "INV-2026-0042");
}

#[test]
fn a_trace_that_finds_the_payment_reads_it_and_an_error_is_unavailable() {
    let _host = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        format!("{WORKED_UPDATE}&hash={WORKED_UPDATE_HASH}"),
    );
    let update = Paynow::poll(payment(Some(""))).unwrap();
    assert_eq!(update.status, PaymentStatus::Paid);
    drop(_host);

    let _host = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        "status=Error&error=Trace+failed",
    );
    assert_eq!(
        Paynow::poll(payment(None)).unwrap_err(),
        PluginError::unavailable(
            "Paynow could not report on INV-2026-0042: Trace failed",
            None
        )
    );
    drop(_host);

    // A NotFound without Paynow's hash does not fail a payment.
    let _host = replying(
        started_in(host(), "INV-2026-0042", "USD"),
        "status=NotFound",
    );
    assert!(matches!(
        Paynow::poll(payment(None)),
        Err(PluginError::Internal(_))
    ));
}

#[test]
fn a_long_reference_without_a_poll_url_cannot_be_traced() {
    let reference = "pay_0194f3c2-7b1a-7c3e-9a10-6f2b8e7d9c31";
    let host = replying(started_in(host(), reference, "USD"), "status=NotFound");
    let err = Paynow::poll(PaymentRef {
        reference: reference.into(),
        provider_reference: reference.into(),
        state: None,
    })
    .unwrap_err();
    assert!(
        matches!(&err, PluginError::Internal(m) if m.contains("cannot be traced")),
        "{err:?}"
    );
    assert!(host.requests().is_empty());
}

#[test]
fn refunds_are_unsupported() {
    let _host = host().install();
    let err = Paynow::refund(RefundRequest {
        reference: "ref_1".into(),
        payment: payment(Some(POLL_URL)),
        amount: Money::new(2500, "USD"),
        reason: "duplicate".into(),
    })
    .unwrap_err();
    assert_eq!(err, PluginError::Unsupported);
}
