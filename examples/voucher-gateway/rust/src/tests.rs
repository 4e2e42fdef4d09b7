//! Native unit tests: the SDK's `FakeHost` plays Keel (the settings) and VoucherPay (its
//! answers), so `cargo test` runs them in a second, without WebAssembly.

use keel_sdk::gateway::{Gateway, NextAction, PaymentStatus, RefundRequest};
use keel_sdk::http::{Method, Response};
use keel_sdk::testing::{FakeGuard, FakeHost};
use keel_sdk::{InboundRequest, Money, PluginError, digest, fixtures};

use super::VoucherPay;

/// A callback as VoucherPay posts it, and the answer to a poll.
const PAID: &str = r#"{"id":"vp_7Hk2Qm","reference":"INV-2026-000123-AB12CD","status":"paid","amount":"25.00","currency":"USD"}"#;

/// Keel with the plugin's settings, and VoucherPay answering every request with `status`
/// and `body`.
fn voucherpay(status: u16, body: &str) -> FakeGuard {
    let body = body.as_bytes().to_vec();
    FakeHost::new()
        .setting("api_key", "vp_test_key")
        .setting("webhook_secret", "whsec_voucher")
        .setting("api_base", "https://api.voucherpay.test")
        .respond(move |_| {
            Ok(Response {
                status,
                headers: vec![],
                body: body.clone(),
            })
        })
        .install()
}

#[test]
fn initiate_creates_the_payment_and_keeps_its_status_url() {
    let host = voucherpay(
        201,
        r#"{"id":"vp_7Hk2Qm","status":"pending","pay_url":"https://pay.voucherpay.test/vp_7Hk2Qm","status_url":"https://api.voucherpay.test/v1/payments/vp_7Hk2Qm/status"}"#,
    );
    let started = VoucherPay::initiate(fixtures::payment_request(2500, "USD")).unwrap();
    assert_eq!(started.provider_reference, "vp_7Hk2Qm");
    assert_eq!(started.status, PaymentStatus::Pending);
    let pay_url = "https://pay.voucherpay.test/vp_7Hk2Qm";
    assert_eq!(started.action, NextAction::Redirect(pay_url.into()));
    let status_url = "https://api.voucherpay.test/v1/payments/vp_7Hk2Qm/status";
    assert_eq!(started.state.as_deref(), Some(status_url));

    let sent = &host.requests()[0];
    assert_eq!(sent.method, Method::Post);
    assert_eq!(sent.url, "https://api.voucherpay.test/v1/payments");
    assert_eq!(sent.header("authorization"), Some("Bearer vp_test_key"));
    assert_eq!(sent.header("idempotency-key"), Some(fixtures::REFERENCE));
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["amount"], "25.00");
    assert_eq!(body["reference"], fixtures::REFERENCE);
}

#[test]
fn a_rejected_api_key_is_misconfigured() {
    let _host = voucherpay(401, r#"{"error":"invalid api key"}"#);
    let err = VoucherPay::initiate(fixtures::payment_request(2500, "USD")).unwrap_err();
    assert!(matches!(err, PluginError::Misconfigured(_)), "{err:?}");
}

#[test]
fn voucherpay_down_is_unavailable() {
    let _host = voucherpay(503, "maintenance");
    let err = VoucherPay::initiate(fixtures::payment_request(2500, "USD")).unwrap_err();
    assert!(matches!(err, PluginError::Unavailable(_)), "{err:?}");
}

#[test]
fn poll_asks_the_status_url_initiate_kept() {
    let host = voucherpay(200, PAID);
    let status_url = "https://api.voucherpay.test/v1/payments/vp_7Hk2Qm/status";
    let update = VoucherPay::poll(fixtures::payment_ref("vp_7Hk2Qm", Some(status_url))).unwrap();
    assert_eq!(
        (host.requests()[0].method, host.requests()[0].url.as_str()),
        (Method::Get, status_url)
    );
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.amount, Some(Money::new(2500, "USD")));
    assert_eq!(update.provider_status, "paid");
}

#[test]
fn without_state_poll_asks_by_provider_reference() {
    let host = voucherpay(200, PAID);
    VoucherPay::poll(fixtures::payment_ref("vp_7Hk2Qm", None)).unwrap();
    assert_eq!(
        host.requests()[0].url,
        "https://api.voucherpay.test/v1/payments/vp_7Hk2Qm"
    );

    let err = VoucherPay::poll(fixtures::payment_ref("", None)).unwrap_err();
    assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
    assert_eq!(
        host.requests().len(),
        1,
        "nothing asked without a reference"
    );
}

#[test]
fn an_answer_about_another_payment_is_internal() {
    let _host = voucherpay(200, &PAID.replace("AB12CD", "ZZZZZZ"));
    let err = VoucherPay::poll(fixtures::payment_ref("vp_7Hk2Qm", None)).unwrap_err();
    assert!(matches!(err, PluginError::Internal(_)), "{err:?}");
}

#[test]
fn an_unknown_status_is_internal_never_paid_on_a_guess() {
    let _host = voucherpay(200, &PAID.replace("\"paid\"", "\"settled\""));
    let err = VoucherPay::poll(fixtures::payment_ref("vp_7Hk2Qm", None)).unwrap_err();
    assert!(
        matches!(&err, PluginError::Internal(m) if m.contains("settled")),
        "{err:?}"
    );
}

/// `body` as VoucherPay posts it, with `signature` in `voucherpay-signature`.
fn callback(body: &str, signature: Option<&str>) -> InboundRequest {
    let mut req = fixtures::inbound_json(body);
    if let Some(signature) = signature {
        req.headers
            .push(("voucherpay-signature".into(), signature.into()));
    }
    req
}

#[test]
fn a_signed_callback_is_read_and_answered_ok() {
    let host = voucherpay(599, "no request expected");
    let signature = digest::hex(&digest::hmac_sha256("whsec_voucher", PAID));
    let answer = VoucherPay::verify_callback(callback(PAID, Some(&signature))).unwrap();
    assert_eq!(answer.update.reference, fixtures::REFERENCE);
    assert_eq!(answer.update.provider_reference, "vp_7Hk2Qm");
    assert_eq!(answer.update.status, PaymentStatus::Paid);
    assert_eq!(answer.update.amount, Some(Money::new(2500, "USD")));
    assert_eq!(
        (answer.reply.status, answer.reply.body),
        (200, b"ok".to_vec())
    );
    assert!(host.requests().is_empty());
}

#[test]
fn a_forged_or_unsigned_callback_is_invalid_input() {
    let _host = voucherpay(599, "no request expected");
    let signature = digest::hex(&digest::hmac_sha256("whsec_voucher", PAID));
    let forged = PAID.replace("25.00", "2500.00");
    assert_eq!(
        VoucherPay::verify_callback(callback(&forged, Some(&signature))).unwrap_err(),
        PluginError::invalid_input("the voucherpay-signature does not match the body")
    );
    assert_eq!(
        VoucherPay::verify_callback(callback(PAID, None)).unwrap_err(),
        PluginError::invalid_input("no voucherpay-signature header")
    );
}

#[test]
fn refunds_are_unsupported() {
    let _host = voucherpay(599, "no request expected");
    let payment = fixtures::payment_ref("vp_7Hk2Qm", None);
    let req = RefundRequest {
        reference: "R-1".into(),
        payment,
        amount: Money::new(2500, "USD"),
        reason: "duplicate".into(),
    };
    assert_eq!(
        VoucherPay::refund(req).unwrap_err(),
        PluginError::Unsupported
    );
}
