//! # Webhook notifier: an example Keel plugin
//!
//! Written as a third-party author would write it, against `keel-sdk` alone; Keel's
//! `examples/webhook-notifier/README.md` walks through it from `cargo new` to a passing
//! test.
//!
//! **Sending.** Every message is POSTed to the `url` setting as JSON,
//!
//! ```json
//! {"reference":"msg_1","to":"+263771234567","subject":null,"body":"Invoice 42 is paid"}
//! ```
//!
//! with two headers: `x-keel-signature: sha256=<hex>`, the HMAC-SHA256 of the exact body
//! bytes keyed with the `secret` setting, and `idempotency-key: <reference>`, which Keel
//! keeps stable across retries so the receiver can drop a duplicate. A 2xx answer is an
//! `accepted` receipt whose provider id is the reply's JSON `id`, or the reference when
//! there is none; any other status goes through the SDK's `error_for_status` (429 and 5xx:
//! retry later; 401 and 403: the settings are wrong; other 4xx: a bug).
//!
//! A message with an attachment (a file such as the invoice PDF) is answered
//! `PluginError::Unsupported` before anything is sent: Keel then sends the text alone.
//!
//! **Delivery receipts.** The receiver may report back to Keel's inbound URL for this
//! plugin with `{"id": "...", "status": "delivered", "detail": null}`, signed the same way,
//! and with `"at": "2026-03-01T10:15:00Z"` (RFC 3339) when it knows when that happened.
//! `verify_inbound` checks the signature over the raw body before reading anything and
//! answers a missing, malformed or wrong signature with `PluginError::Refused`.

use keel_sdk::http::Request;
use keel_sdk::notifier::{
    DeliveryStatus, Inbound, InboundEvent, Message, Notifier, Receipt, StatusUpdate,
};
use keel_sdk::{
    Features, InboundReply, InboundRequest, PluginError, PluginInfo, Secret, config, digest,
};
use serde::{Deserialize, Serialize};

/// The header that carries the signature, on outbound messages and inbound receipts.
pub const SIGNATURE_HEADER: &str = "x-keel-signature";

/// `timeout_ms` when the setting is absent (the manifest's default is the same).
const DEFAULT_TIMEOUT_MS: u32 = 5_000;

struct WebhookNotifier;

impl Notifier for WebhookNotifier {
    fn describe() -> PluginInfo {
        // No host calls here: the kernel calls `describe` before it checks the settings.
        PluginInfo::new(
            "Webhook notifier",
            env!("CARGO_PKG_VERSION"),
            "POSTs every message as signed JSON to your webhook",
            Features::INBOUND,
        )
    }

    fn send(msg: Message) -> Result<Receipt, PluginError> {
        // The JSON carries text only: Keel sends the text alone when a file is refused.
        if msg.attachment.is_some() {
            return Err(PluginError::Unsupported);
        }
        let url = config::require("url")?;
        let secret = signing_secret()?;
        let timeout_ms = config::parse::<u32>("timeout_ms")?.unwrap_or(DEFAULT_TIMEOUT_MS);

        // Serialize once and sign exactly the bytes that go on the wire.
        let body = serde_json::to_vec(&Outgoing {
            reference: &msg.reference,
            to: &msg.to,
            subject: msg.subject.as_deref(),
            body: &msg.body,
        })?;
        let signature = sign(secret.expose().as_bytes(), &body);

        let response = Request::post(url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("idempotency-key", msg.reference.as_str())
            .timeout_ms(timeout_ms)
            .body(body)
            .send()?
            .error_for_status()?;

        let provider_id = reply_id(&response.body).unwrap_or(msg.reference);
        keel_sdk::debug!("the webhook accepted the message as {provider_id}");
        Ok(Receipt {
            provider_id,
            status: DeliveryStatus::Accepted,
        })
    }

    fn verify_inbound(req: InboundRequest) -> Result<Inbound, PluginError> {
        let secret = signing_secret()?;
        let claimed = req
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| PluginError::refused(format!("no `{SIGNATURE_HEADER}` header")))?;
        // Nothing in the body is trusted before this line.
        verify(secret.expose().as_bytes(), &req.body, claimed)?;

        let receipt: DeliveryReceipt = serde_json::from_slice(&req.body)
            .map_err(|e| PluginError::invalid_input(format!("not a delivery receipt: {e}")))?;
        let status = delivery_status(&receipt.status)?;
        Ok(Inbound {
            reply: InboundReply::ok(),
            events: vec![InboundEvent::Status(StatusUpdate {
                provider_id: receipt.id,
                status,
                detail: receipt.detail,
                at: receipt.at,
            })],
        })
    }
}

keel_sdk::export_notifier!(WebhookNotifier);

/// The JSON body POSTed to the webhook.
#[derive(Serialize)]
struct Outgoing<'a> {
    reference: &'a str,
    to: &'a str,
    subject: Option<&'a str>,
    body: &'a str,
}

/// A delivery receipt the receiver posts back.
#[derive(Deserialize)]
struct DeliveryReceipt {
    id: String,
    status: String,
    #[serde(default)]
    detail: Option<String>,
    /// When it happened, RFC 3339, if the receiver says.
    #[serde(default)]
    at: Option<String>,
}

/// The `secret` setting, refused when empty: an empty HMAC key signs nothing.
fn signing_secret() -> Result<Secret, PluginError> {
    let secret = config::secret("secret")?;
    if secret.expose().is_empty() {
        return Err(PluginError::misconfigured("the setting `secret` is empty"));
    }
    Ok(secret)
}

/// The `id` of a JSON reply (a string, or a number written as text), if it has one.
fn reply_id(body: &[u8]) -> Option<String> {
    let reply: serde_json::Value = serde_json::from_slice(body).ok()?;
    match reply.get("id")? {
        serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
        serde_json::Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// A receipt's status word as the kernel's delivery status.
fn delivery_status(word: &str) -> Result<DeliveryStatus, PluginError> {
    Ok(match word {
        "accepted" | "queued" => DeliveryStatus::Accepted,
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" | "bounced" | "rejected" => DeliveryStatus::Failed,
        other => {
            return Err(PluginError::invalid_input(format!(
                "unknown delivery status `{other}` (expected accepted, queued, sent, delivered, \
                 read, failed, bounced or rejected)"
            )));
        }
    })
}

/// `sha256=<lower-case hex>`: the HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", digest::hex(&digest::hmac_sha256(secret, body)))
}

/// Checks a `sha256=<hex>` signature of `body` in constant time; anything else is
/// [`PluginError::Refused`].
pub fn verify(secret: &[u8], body: &[u8], claimed: &str) -> Result<(), PluginError> {
    let hex_digest = claimed
        .trim()
        .strip_prefix("sha256=")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PluginError::refused("the signature is not `sha256=<hex>`"))?;
    if digest::eq_hex(hex_digest, &digest::hex(&digest::hmac_sha256(secret, body))) {
        Ok(())
    } else {
        Err(PluginError::refused(
            "the signature does not match the body",
        ))
    }
}

#[cfg(test)]
mod tests {
    use keel_sdk::RetryHint;
    use keel_sdk::http::{Error, Method, Response};
    use keel_sdk::notifier::Media;
    use keel_sdk::testing::FakeHost;

    use super::*;

    const URL: &str = "https://hooks.example.com/keel";
    const SECRET: &str = "whsec_test";

    fn configured() -> FakeHost {
        FakeHost::new()
            .setting("url", URL)
            .setting("secret", SECRET)
            .setting("timeout_ms", "2500")
    }

    fn message() -> Message {
        Message {
            reference: "msg_1".into(),
            to: "+263771234567".into(),
            subject: Some("Invoice 42".into()),
            body: "Invoice 42 is paid".into(),
            template: None,
            attachment: None,
        }
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn inbound(body: &str, signature: Option<&str>) -> InboundRequest {
        InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: signature
                .map(|s| (SIGNATURE_HEADER.to_owned(), s.to_owned()))
                .into_iter()
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn signatures_match_known_vectors() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // `printf '{"id":"wh_1","status":"delivered"}' | openssl dgst -sha256 -hmac whsec_test`
        assert_eq!(
            sign(SECRET.as_bytes(), br#"{"id":"wh_1","status":"delivered"}"#),
            "sha256=75128aeab25e3458ed769b9cca877904800637f2850fbabb46a244c7d0be8fce"
        );
    }

    #[test]
    fn a_message_is_posted_as_signed_json_with_its_reference_as_idempotency_key() {
        let host = configured()
            .respond(|_| Ok(reply(202, &[], r#"{"id":"wh_42"}"#)))
            .install();

        let receipt = WebhookNotifier::send(message()).unwrap();
        assert_eq!(
            receipt,
            Receipt {
                provider_id: "wh_42".into(),
                status: DeliveryStatus::Accepted
            }
        );

        let sent = host.requests();
        assert_eq!(sent.len(), 1);
        let req = &sent[0];
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url, URL);
        assert_eq!(req.timeout_ms, Some(2500));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "reference": "msg_1",
                "to": "+263771234567",
                "subject": "Invoice 42",
                "body": "Invoice 42 is paid",
            })
        );
        assert_eq!(
            header(&req.headers, "content-type"),
            Some("application/json")
        );
        assert_eq!(header(&req.headers, "idempotency-key"), Some("msg_1"));
        let signature = header(&req.headers, SIGNATURE_HEADER).unwrap();
        assert_eq!(signature, sign(SECRET.as_bytes(), &req.body));
        verify(SECRET.as_bytes(), &req.body, signature).unwrap();
    }

    #[test]
    fn a_reply_without_an_id_gives_the_reference_as_provider_id() {
        for body in ["", "ok", "{}", r#"{"id":""}"#, r#"{"id":null}"#] {
            let _host = configured()
                .respond(move |_| Ok(reply(200, &[], body)))
                .install();
            let receipt = WebhookNotifier::send(message()).unwrap();
            assert_eq!(receipt.provider_id, "msg_1", "reply {body:?}");
        }
        let _host = configured()
            .respond(|_| Ok(reply(201, &[], r#"{"id":7}"#)))
            .install();
        assert_eq!(WebhookNotifier::send(message()).unwrap().provider_id, "7");
    }

    #[test]
    fn statuses_and_transport_errors_map_to_what_the_kernel_should_do() {
        /// What the kernel does with an error: retry (after so many seconds), alert the
        /// admin, or log a bug.
        fn outcome(err: &PluginError) -> String {
            match err {
                PluginError::Unavailable(RetryHint {
                    retry_after_seconds: Some(s),
                    ..
                }) => {
                    format!("retry after {s}s")
                }
                PluginError::Unavailable(_) => "retry".into(),
                PluginError::Misconfigured(_) => "alert the admin".into(),
                PluginError::Internal(_) => "bug".into(),
                other => format!("{other:?}"),
            }
        }
        let cases: Vec<(Result<Response, Error>, &str)> = vec![
            (Ok(reply(500, &[], "boom")), "retry"),
            (
                Ok(reply(503, &[("Retry-After", "30")], "")),
                "retry after 30s",
            ),
            (Ok(reply(429, &[], "slow down")), "retry"),
            (Ok(reply(401, &[], "bad signature")), "alert the admin"),
            (Ok(reply(403, &[], "")), "alert the admin"),
            (Ok(reply(400, &[], "bad json")), "bug"),
            (Ok(reply(404, &[], "")), "bug"),
            (Err(Error::Timeout), "retry"),
            (Err(Error::Connection("refused".into())), "retry"),
            (Err(Error::Denied("not granted".into())), "alert the admin"),
        ];
        for (answer, expected) in cases {
            let label = format!("{answer:?}");
            let _host = configured().respond(move |_| answer.clone()).install();
            let err = WebhookNotifier::send(message()).unwrap_err();
            assert_eq!(outcome(&err), expected, "{label} gave {err:?}");
        }
    }

    #[test]
    fn missing_or_empty_settings_are_misconfigured_and_nothing_is_sent() {
        let host = FakeHost::new().setting("secret", SECRET).install();
        let err = WebhookNotifier::send(message()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m.contains("`url`")),
            "{err:?}"
        );
        assert!(host.requests().is_empty());
        drop(host);

        let host = FakeHost::new()
            .setting("url", URL)
            .setting("secret", "")
            .install();
        let err = WebhookNotifier::send(message()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m.contains("`secret`")),
            "{err:?}"
        );
        assert!(host.requests().is_empty());
        drop(host);

        let _host = configured().setting("timeout_ms", "soon").install();
        let err = WebhookNotifier::send(message()).unwrap_err();
        assert!(
            matches!(&err, PluginError::Misconfigured(m) if m.contains("`timeout_ms`")),
            "{err:?}"
        );
    }

    #[test]
    fn a_signed_delivery_receipt_becomes_a_status_event() {
        let _host = configured().install();
        for (word, status) in [
            ("delivered", DeliveryStatus::Delivered),
            ("failed", DeliveryStatus::Failed),
            ("read", DeliveryStatus::Read),
            ("queued", DeliveryStatus::Accepted),
        ] {
            let body = format!(r#"{{"id":"wh_1","status":"{word}","detail":"mailbox full"}}"#);
            let signature = sign(SECRET.as_bytes(), body.as_bytes());
            let read = WebhookNotifier::verify_inbound(inbound(&body, Some(&signature))).unwrap();
            assert_eq!(read.reply, InboundReply::ok());
            assert_eq!(
                read.events,
                vec![InboundEvent::Status(StatusUpdate {
                    provider_id: "wh_1".into(),
                    status,
                    detail: Some("mailbox full".into()),
                    at: None,
                })]
            );
        }

        // The receiver's own time of the event, when it gives one, goes to Keel as is.
        let body = r#"{"id":"wh_1","status":"read","at":"2026-03-01T10:15:00Z"}"#;
        let signature = sign(SECRET.as_bytes(), body.as_bytes());
        let read = WebhookNotifier::verify_inbound(inbound(body, Some(&signature))).unwrap();
        assert_eq!(
            read.events,
            vec![InboundEvent::Status(StatusUpdate {
                provider_id: "wh_1".into(),
                status: DeliveryStatus::Read,
                detail: None,
                at: Some("2026-03-01T10:15:00Z".into()),
            })]
        );
    }

    #[test]
    fn a_message_with_an_attachment_is_unsupported_and_nothing_is_sent() {
        let host = configured()
            .respond(|_| Ok(reply(202, &[], r#"{"id":"wh_42"}"#)))
            .install();
        let msg = Message {
            attachment: Some(Media::new(
                "https://billing.example.com/f/Xy7",
                "application/pdf",
            )),
            ..message()
        };
        assert_eq!(
            WebhookNotifier::send(msg).unwrap_err(),
            PluginError::Unsupported
        );
        assert!(host.requests().is_empty());
    }

    #[test]
    fn forged_tampered_or_unsigned_receipts_are_refused() {
        let _host = configured().install();
        let body = r#"{"id":"wh_1","status":"delivered"}"#;
        let good = sign(SECRET.as_bytes(), body.as_bytes());
        let cases = [
            (
                "forged with another secret",
                body.to_owned(),
                Some(sign(b"guess", body.as_bytes())),
            ),
            (
                "tampered body",
                body.replace("delivered", "failed"),
                Some(good.clone()),
            ),
            ("no signature", body.to_owned(), None),
            (
                "another scheme",
                body.to_owned(),
                Some(good.replace("sha256=", "sha1=")),
            ),
            ("not hex", body.to_owned(), Some("sha256=zz".to_owned())),
            (
                "truncated",
                body.to_owned(),
                Some(good[..good.len() - 2].to_owned()),
            ),
        ];
        for (what, body, signature) in cases {
            let err =
                WebhookNotifier::verify_inbound(inbound(&body, signature.as_deref())).unwrap_err();
            assert!(matches!(err, PluginError::Refused(_)), "{what}: {err:?}");
        }
    }

    #[test]
    fn a_signed_receipt_that_is_not_one_is_invalid_input() {
        let _host = configured().install();
        for body in [
            "not json",
            r#"{"status":"delivered"}"#,
            r#"{"id":"wh_1","status":"lost"}"#,
        ] {
            let signature = sign(SECRET.as_bytes(), body.as_bytes());
            let err = WebhookNotifier::verify_inbound(inbound(body, Some(&signature))).unwrap_err();
            assert!(
                matches!(err, PluginError::InvalidInput(_)),
                "{body}: {err:?}"
            );
        }
    }
}
