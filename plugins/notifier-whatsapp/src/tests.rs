//! Whole calls against a scripted fake kernel: the bodies WhatsApp receives, its error
//! codes, the subscription check, and PROVIDERS.md 3.5's signed notification.

use keel_sdk::http::Response;
use keel_sdk::notifier::{
    DeliveryStatus, InboundEvent, InboundMessage, Message, Notifier, StatusUpdate, Template,
};
use keel_sdk::testing::{FakeGuard, FakeHost};
use keel_sdk::{Features, InboundRequest, PluginError, digest, fixtures};
use serde_json::{Value, json};

use crate::WhatsApp;
use keel_sdk::clock::rfc3339;

const TOKEN: &str = "EAAG-test-access-token";
const APP_SECRET: &str = "keel-test-app-secret";
const VERIFY_TOKEN: &str = "keel-verify-7f3a";

/// PROVIDERS.md 3.5: 470 bytes, `ü` escaped as `\u00fc`, as Meta sends it.
const VECTOR_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Tendai M\u00fcller"},"wa_id":"263771234567"}],"messages":[{"from":"263771234567","id":"wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0E","timestamp":"1767225600","type":"text","text":{"body":"Is my invoice paid?"}}]},"field":"messages"}]}]}"#;
const VECTOR_SIGNATURE: &str =
    "sha256=fb8b7af8d6a8ca0afeee6884ed1f448c996deb9536d5355b740fbea1e1133f9e";

fn host() -> FakeHost {
    FakeHost::new()
        .setting("access_token", TOKEN)
        .setting("phone_number_id", "106540352242922")
        .setting("graph_version", "v21.0")
        .setting("app_secret", APP_SECRET)
        .setting("verify_token", VERIFY_TOKEN)
        .setting("api_base", "https://graph.facebook.com")
}

fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn answering(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
) -> FakeGuard {
    host()
        .respond(move |_| Ok(reply(status, headers, body)))
        .install()
}

const SENT: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"263771234567","wa_id":"263771234567"}],"messages":[{"id":"wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgSQUY"}]}"#;

fn template_message(parameters: &[&str]) -> Message {
    Message {
        template: Some(Template {
            name: "invoice_due".into(),
            language: "en".into(),
            parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
        }),
        ..fixtures::message("+263771234567", "Invoice INV-42 is due")
    }
}

fn sent_json(host: &FakeGuard) -> Value {
    let requests = host.requests();
    assert_eq!(requests.len(), 1);
    serde_json::from_slice(&requests[0].body).unwrap()
}

#[test]
fn describe_says_inbound() {
    let info = WhatsApp::describe();
    assert_eq!(info.name, "WhatsApp");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.features, Features::INBOUND);
}

#[test]
fn a_text_message_is_posted_with_the_bearer_token() {
    let host = answering(200, &[], SENT);
    let receipt =
        WhatsApp::send(fixtures::message("+263771234567", "Invoice INV-42 is due")).unwrap();
    assert_eq!(receipt.provider_id, "wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgSQUY");
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    let request = &host.requests()[0];
    assert_eq!(
        request.url,
        "https://graph.facebook.com/v21.0/106540352242922/messages"
    );
    assert_eq!(
        request.header("authorization"),
        Some("Bearer EAAG-test-access-token")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        sent_json(&host),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "263771234567",
            "type": "text",
            "text": { "preview_url": true, "body": "Invoice INV-42 is due" },
            "biz_opaque_callback_data": "ntf-000042",
        })
    );
}

#[test]
fn a_subject_is_the_texts_bold_first_line() {
    let host = answering(200, &[], SENT);
    WhatsApp::send(Message {
        subject: Some(" Invoice INV-42 is due ".into()),
        ..fixtures::message("+263771234567", "Hello Ann, please pay USD 12.50.")
    })
    .unwrap();
    assert_eq!(
        sent_json(&host)["text"]["body"],
        "*Invoice INV-42 is due*\n\nHello Ann, please pay USD 12.50."
    );
    // A blank subject adds nothing.
    let host = answering(200, &[], SENT);
    WhatsApp::send(Message {
        subject: Some("  ".into()),
        ..fixtures::message("+263771234567", "Hello")
    })
    .unwrap();
    assert_eq!(sent_json(&host)["text"]["body"], "Hello");
}

#[test]
fn a_template_message_carries_its_parameters_in_order() {
    let host = answering(200, &[], SENT);
    WhatsApp::send(template_message(&["INV-42", "USD 25.00"])).unwrap();
    assert_eq!(
        sent_json(&host),
        json!({
            "messaging_product": "whatsapp",
            "to": "263771234567",
            "type": "template",
            "template": {
                "name": "invoice_due",
                "language": { "code": "en" },
                "components": [{ "type": "body", "parameters": [
                    { "type": "text", "text": "INV-42" },
                    { "type": "text", "text": "USD 25.00" },
                ]}],
            },
            "biz_opaque_callback_data": "ntf-000042",
        })
    );
}

#[test]
fn a_template_without_parameters_has_no_components() {
    let host = answering(200, &[], SENT);
    WhatsApp::send(template_message(&[])).unwrap();
    let body = sent_json(&host);
    assert_eq!(
        body["template"],
        json!({ "name": "invoice_due", "language": { "code": "en" } })
    );
}

#[test]
fn settings_defaults_and_trailing_slash() {
    let host = FakeHost::new()
        .setting("access_token", TOKEN)
        .setting("phone_number_id", " 106540352242922 ")
        .setting("api_base", "http://127.0.0.1:9000/")
        .respond(|_| Ok(reply(200, &[], SENT)))
        .install();
    WhatsApp::send(fixtures::message("+263771234567", "hi")).unwrap();
    assert_eq!(
        host.requests()[0].url,
        "http://127.0.0.1:9000/v21.0/106540352242922/messages"
    );
}

#[test]
fn missing_or_bad_settings_are_misconfigured() {
    let _host = FakeHost::new()
        .setting("phone_number_id", "106540352242922")
        .install();
    let err = WhatsApp::send(fixtures::message("+263771234567", "hi")).unwrap_err();
    assert_eq!(
        err,
        PluginError::Misconfigured("the setting `access_token` is not set".into())
    );
    drop(_host);
    let _host = host()
        .setting("phone_number_id", "106540352242922/../x")
        .install();
    let err = WhatsApp::send(fixtures::message("+263771234567", "hi")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Misconfigured(m) if m.contains("phone_number_id")),
        "{err:?}"
    );
    drop(_host);
    let _host = FakeHost::new().setting("verify_token", "x").install();
    let err = WhatsApp::verify_inbound(fixtures::inbound_json("{}")).unwrap_err();
    assert_eq!(
        err,
        PluginError::Misconfigured("the setting `app_secret` is not set".into())
    );
}

#[test]
fn only_e164_numbers_are_sent() {
    for (to, why) in [
        ("263771234567", "must start with `+`"),
        ("+263 77 123 4567", "only digits may follow"),
        ("+263-771234567", "only digits may follow"),
        ("+0263771234567", "never starts with 0"),
        ("+26377", "has 5 digits"),
        ("+2637712345678901", "has 16 digits"),
        ("client@example.co.zw", "must start with `+`"),
        ("", "must start with `+`"),
    ] {
        let host = answering(200, &[], SENT);
        match WhatsApp::send(fixtures::message(to, "hi")) {
            Err(PluginError::InvalidInput(m)) => {
                assert!(m.contains("is not an E.164 phone number"), "{to}: {m}");
                assert!(m.contains(why), "{to}: {m}");
            }
            other => panic!("{to}: {other:?}"),
        }
        assert!(host.requests().is_empty(), "{to} was sent");
    }
}

#[test]
fn an_empty_text_is_invalid_input() {
    let host = answering(200, &[], SENT);
    let err = WhatsApp::send(fixtures::message("+263771234567", "  ")).unwrap_err();
    assert!(matches!(err, PluginError::InvalidInput(_)), "{err:?}");
    assert!(host.requests().is_empty());
}

fn graph_error(code: i64, message: &str, details: &str) -> String {
    json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details},
        "fbtrace_id": "A1b2C3"}})
    .to_string()
}

fn send_against(status: u16, headers: Vec<(String, String)>, body: String) -> PluginError {
    let _host = host()
        .respond(move |_| {
            Ok(Response {
                status,
                headers: headers.clone(),
                body: body.clone().into_bytes(),
            })
        })
        .install();
    WhatsApp::send(fixtures::message("+263771234567", "Invoice INV-42 is due")).unwrap_err()
}

/// HTTP status, headers, body; the error expected and fragments of its message.
type ErrorCase = (
    u16,
    Vec<(String, String)>,
    String,
    &'static str,
    &'static [&'static str],
);

#[test]
fn graph_error_codes_map_to_what_the_kernel_does_next() {
    let retry = || vec![("Retry-After".to_owned(), "30".to_owned())];
    let cases: Vec<ErrorCase> = vec![
        (
            401,
            vec![],
            graph_error(
                190,
                "Error validating access token: Session has expired",
                "",
            ),
            "misconfigured",
            &["access_token", "190", "Session has expired"],
        ),
        (
            400,
            vec![],
            graph_error(
                130429,
                "(#130429) Rate limit hit",
                "Cloud API message throughput has been reached.",
            ),
            "unavailable",
            &["130429", "throughput"],
        ),
        (
            429,
            retry(),
            graph_error(
                131056,
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                "",
            ),
            "unavailable",
            &["131056"],
        ),
        (
            400,
            vec![],
            graph_error(
                131047,
                "(#131047) Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            ),
            "refused",
            &["131047", "template", "24 hours"],
        ),
        (
            400,
            vec![],
            graph_error(131026, "(#131026) Message Undeliverable.", ""),
            "refused",
            &["131026", "not deliverable"],
        ),
        (
            400,
            vec![],
            graph_error(
                131030,
                "(#131030) Recipient phone number not in allowed list",
                "Add recipient phone number to recipient list and try again.",
            ),
            "refused",
            &["131030", "not allowed", "allowed list", "Add recipient"],
        ),
        (
            400,
            vec![],
            graph_error(
                131049,
                "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
                "",
            ),
            "refused",
            &["131049"],
        ),
        (
            400,
            vec![],
            graph_error(
                100,
                "(#100) Invalid parameter",
                "Parameter value is not valid",
            ),
            "invalid-input",
            &["100", "Invalid parameter", "Parameter value is not valid"],
        ),
        (
            400,
            vec![],
            graph_error(
                132000,
                "(#132000) Number of parameters does not match the expected number of params",
                "body: number of localizable_params (1) does not match the expected number of params (2)",
            ),
            "invalid-input",
            &["132000", "localizable_params"],
        ),
        (
            404,
            vec![],
            graph_error(
                132001,
                "(#132001) Template name does not exist in the translation",
                "template name (invoice_due) does not exist in en",
            ),
            "invalid-input",
            &["132001", "invoice_due"],
        ),
        (
            500,
            vec![],
            graph_error(131000, "(#131000) Something went wrong", ""),
            "unavailable",
            &["131000"],
        ),
        (
            400,
            vec![],
            graph_error(131051, "(#131051) Unsupported message type", ""),
            "internal",
            &["131051"],
        ),
        (
            403,
            vec![],
            graph_error(200, "(#200) Permissions error", ""),
            "misconfigured",
            &["403", "Permissions error"],
        ),
        (
            502,
            retry(),
            "<html>Bad Gateway</html>".to_owned(),
            "unavailable",
            &["502", "Bad Gateway"],
        ),
        (
            404,
            vec![],
            "Not Found".to_owned(),
            "internal",
            &["404", "Not Found"],
        ),
        (401, vec![], "{}".to_owned(), "misconfigured", &["401"]),
    ];
    for (status, headers, body, kind, fragments) in cases {
        let with_retry = !headers.is_empty();
        let err = send_against(status, headers, body.clone());
        let (got, message, retry_after) = match &err {
            PluginError::Misconfigured(m) => ("misconfigured", m.clone(), None),
            PluginError::Unavailable(h) => ("unavailable", h.reason.clone(), h.retry_after_seconds),
            PluginError::Refused(m) => ("refused", m.clone(), None),
            PluginError::InvalidInput(m) => ("invalid-input", m.clone(), None),
            PluginError::Internal(m) => ("internal", m.clone(), None),
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(got, kind, "{status} {body}: {message}");
        for fragment in fragments {
            assert!(
                message.contains(fragment),
                "{body}: {message:?} lacks {fragment:?}"
            );
        }
        if kind == "unavailable" {
            assert_eq!(retry_after, with_retry.then_some(30), "{body}");
        }
    }
}

#[test]
fn the_token_never_appears_in_an_error() {
    for (status, body) in [
        (
            400,
            graph_error(190, &format!("Malformed access token {TOKEN}"), ""),
        ),
        (418, format!("teapot saw {TOKEN}")),
        (400, format!("{}{TOKEN}", "x".repeat(190))),
    ] {
        let err = send_against(status, vec![], body);
        let text = format!("{err:?}");
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("EAAG-test"), "a cut token: {text}");
    }
}

#[test]
fn a_success_without_an_id_is_internal() {
    let _host = answering(
        200,
        &[],
        r#"{"messaging_product":"whatsapp","messages":[]}"#,
    );
    let err = WhatsApp::send(fixtures::message("+263771234567", "hi")).unwrap_err();
    assert!(
        matches!(&err, PluginError::Internal(m) if m.contains("messages[0].id")),
        "{err:?}"
    );
}

fn get(query: &str) -> InboundRequest {
    InboundRequest {
        method: "GET".into(),
        path: "/".into(),
        query: query.into(),
        headers: vec![],
        body: vec![],
    }
}

#[test]
fn the_subscription_check_echoes_the_challenge() {
    let host = host().install();
    let inbound = WhatsApp::verify_inbound(get(
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=keel-verify-7f3a",
    ))
    .unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert_eq!(inbound.reply.body, b"1158201444");
    assert!(
        inbound
            .reply
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(inbound.events.is_empty());
    assert!(host.requests().is_empty());
}

#[test]
fn a_wrong_token_or_mode_fails_the_subscription_check() {
    let _host = host().install();
    for (query, message) in [
        (
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=guess",
            "verify token mismatch",
        ),
        (
            "hub.mode=subscribe&hub.challenge=1",
            "verify token mismatch",
        ),
        (
            "hub.mode=subscribe&hub.challenge=1&hub.verify_token=keel-verify-7f3",
            "verify token mismatch",
        ),
        (
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=keel-verify-7f3a",
            "not a subscribe request",
        ),
        (
            "hub_mode=subscribe&hub_challenge=1&hub_verify_token=keel-verify-7f3a",
            "not a subscribe request",
        ),
        ("", "not a subscribe request"),
        (
            "hub.mode=subscribe&hub.verify_token=keel-verify-7f3a",
            "no hub.challenge",
        ),
    ] {
        match WhatsApp::verify_inbound(get(query)) {
            Err(PluginError::Refused(m)) => {
                assert!(m.contains(message), "{query}: {m}");
                assert!(!m.contains(VERIFY_TOKEN), "{m}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
}

fn signed(body: &str, header: &str, value: &str) -> InboundRequest {
    let mut req = fixtures::inbound_json(body);
    req.headers.push((header.into(), value.into()));
    req
}

fn sign(body: &str) -> String {
    format!(
        "sha256={}",
        digest::hex(&digest::hmac_sha256(APP_SECRET, body.as_bytes()))
    )
}

#[test]
fn the_providers_vector_verifies_and_reads() {
    assert_eq!(VECTOR_BODY.len(), 470);
    assert_eq!(sign(VECTOR_BODY), VECTOR_SIGNATURE);
    let _host = host().install();
    for header in ["X-Hub-Signature-256", "x-hub-signature-256"] {
        let inbound =
            WhatsApp::verify_inbound(signed(VECTOR_BODY, header, VECTOR_SIGNATURE)).unwrap();
        assert_eq!(inbound.reply.status, 200);
        assert_eq!(
            inbound.events,
            vec![InboundEvent::Message(InboundMessage {
                provider_id: "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0E".into(),
                sender: "+263771234567".into(),
                body: "Is my invoice paid?".into(),
                received_at: "2026-01-01T00:00:00Z".into(),
            })]
        );
    }
    // Upper-case hex signs the same.
    let upper = format!("sha256={}", VECTOR_SIGNATURE[7..].to_uppercase());
    WhatsApp::verify_inbound(signed(VECTOR_BODY, "X-Hub-Signature-256", &upper)).unwrap();
}

#[test]
fn forged_missing_or_sha1_signatures_are_refused() {
    let _host = host().install();
    // The same JSON with a raw UTF-8 ü is other bytes: the signature no longer matches.
    let raw_utf8 = VECTOR_BODY.replace("\\u00fc", "ü");
    let flipped = VECTOR_SIGNATURE.replace("fb8b", "fb8c");
    let cases = [
        (
            signed(&raw_utf8, "X-Hub-Signature-256", VECTOR_SIGNATURE),
            "signature mismatch",
        ),
        (
            signed(VECTOR_BODY, "X-Hub-Signature-256", &flipped),
            "signature mismatch",
        ),
        (
            signed(VECTOR_BODY, "X-Hub-Signature-256", "sha256="),
            "signature mismatch",
        ),
        (
            signed(VECTOR_BODY, "X-Hub-Signature-256", &VECTOR_SIGNATURE[7..]),
            "malformed signature",
        ),
        (fixtures::inbound_json(VECTOR_BODY), "missing signature"),
        (
            signed(
                VECTOR_BODY,
                "X-Hub-Signature",
                "sha1=0000000000000000000000000000000000000000",
            ),
            "missing signature: no X-Hub-Signature-256 header (the SHA-1",
        ),
    ];
    let expected_hex = &VECTOR_SIGNATURE[7..];
    for (req, message) in cases {
        match WhatsApp::verify_inbound(req) {
            Err(PluginError::Refused(m)) => {
                assert!(m.contains(message), "{m}");
                assert!(!m.contains(expected_hex), "echoes the expected value: {m}");
            }
            other => panic!("{message}: {other:?}"),
        }
    }
    let put = InboundRequest {
        method: "PUT".into(),
        ..signed(VECTOR_BODY, "X-Hub-Signature-256", VECTOR_SIGNATURE)
    };
    assert!(matches!(
        WhatsApp::verify_inbound(put),
        Err(PluginError::Refused(_))
    ));
}

#[test]
fn a_signed_body_that_is_not_json_is_internal() {
    let _host = host().install();
    let body = "object=whatsapp_business_account";
    let err =
        WhatsApp::verify_inbound(signed(body, "X-Hub-Signature-256", &sign(body))).unwrap_err();
    assert!(matches!(err, PluginError::Internal(_)), "{err:?}");
}

#[test]
fn every_entry_change_status_and_message_is_read() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "statuses": [
                        {"id": "wamid.A", "status": "sent", "timestamp": "1767225601", "recipient_id": "263771234567",
                         "conversation": {"id": "c1", "origin": {"type": "utility"}},
                         "pricing": {"billable": true, "pricing_model": "CBP", "category": "utility"},
                         "biz_opaque_callback_data": "ntf-000042"},
                        {"id": "wamid.A", "status": "read", "timestamp": "1767225700", "recipient_id": "263771234567"},
                        {"id": "wamid.A", "status": "deleted", "timestamp": "1767225800", "recipient_id": "263771234567"}
                    ]}},
                {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
            ]},
            {"id": "2", "changes": [
                {"field": "messages", "value": {
                    "statuses": [
                        {"id": "wamid.B", "status": "failed", "timestamp": "1767225602", "recipient_id": "263771234568",
                         "errors": [{"code": 131026, "title": "Message undeliverable",
                                     "message": "Message undeliverable",
                                     "error_data": {"details": "Message Undeliverable."},
                                     "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},
                        {"id": "wamid.C", "status": "delivered", "timestamp": "1767225603", "recipient_id": "263771234569"}
                    ],
                    "contacts": [{"profile": {"name": "Rudo"}, "wa_id": "263771234568"}],
                    "messages": [
                        {"from": "263771234568", "id": "wamid.M1", "timestamp": "1767225660", "type": "image",
                         "image": {"id": "img1", "mime_type": "image/jpeg", "sha256": "x", "caption": "proof of payment"}},
                        {"from": "263771234568", "id": "wamid.M2", "timestamp": "1767225661", "type": "sticker",
                         "sticker": {"id": "s1", "mime_type": "image/webp"}},
                        {"from": "263771234568", "id": "wamid.M3", "timestamp": "1767225662", "type": "interactive",
                         "interactive": {"type": "button_reply", "button_reply": {"id": "pay", "title": "Pay now"}}},
                        {"from": "263771234568", "id": "wamid.M4", "timestamp": "1767225663", "type": "button",
                         "button": {"payload": "STOP", "text": "Stop reminders"},
                         "context": {"from": "15550783881", "id": "wamid.A"}},
                        {"from": "263771234568", "id": "wamid.M5", "timestamp": "1767225664", "type": "document",
                         "document": {"id": "d1", "filename": "receipt.pdf", "mime_type": "application/pdf"}},
                        {"from": "263771234568", "id": "wamid.M6", "timestamp": "1767225665", "type": "hologram",
                         "hologram": {"id": "h1"}}
                    ],
                    "errors": [{"code": 131000, "title": "Something went wrong"}]
                }}
            ]}
        ]
    })
    .to_string();
    let host = host().install();
    let inbound =
        WhatsApp::verify_inbound(signed(&body, "X-Hub-Signature-256", &sign(&body))).unwrap();
    assert_eq!(inbound.reply.status, 200);
    let status = |id: &str, status, detail: Option<&str>| {
        InboundEvent::Status(StatusUpdate {
            provider_id: id.into(),
            status,
            detail: detail.map(str::to_owned),
        })
    };
    let message = |id: &str, seconds: &str, body: &str| {
        InboundEvent::Message(InboundMessage {
            provider_id: id.into(),
            sender: "+263771234568".into(),
            body: body.into(),
            received_at: format!("2026-01-01T00:01:{seconds}Z"),
        })
    };
    assert_eq!(
        inbound.events,
        vec![
            status("wamid.A", DeliveryStatus::Sent, None),
            status("wamid.A", DeliveryStatus::Read, None),
            status(
                "wamid.B",
                DeliveryStatus::Failed,
                Some("131026 Message undeliverable: Message Undeliverable.")
            ),
            status("wamid.C", DeliveryStatus::Delivered, None),
            message("wamid.M1", "00", "proof of payment"),
            message("wamid.M2", "01", "[sticker]"),
            message("wamid.M3", "02", "Pay now"),
            message("wamid.M4", "03", "Stop reminders"),
            message("wamid.M5", "04", "[document: receipt.pdf]"),
            message("wamid.M6", "05", "[hologram]"),
        ]
    );
    assert!(
        host.logs()
            .iter()
            .any(|(_, line)| line.contains("131000 Something went wrong")),
        "{:?}",
        host.logs()
    );
}

#[test]
fn other_objects_are_answered_with_no_events() {
    let _host = host().install();
    let body = r#"{"object":"page","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"1","id":"x","timestamp":"1","type":"text","text":{"body":"hi"}}]}}]}]}"#;
    let inbound =
        WhatsApp::verify_inbound(signed(body, "X-Hub-Signature-256", &sign(body))).unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert!(inbound.events.is_empty());
}

#[test]
fn timestamps_become_rfc3339_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
}
