//! Whole calls against a scripted fake kernel: the bodies WhatsApp receives, its error
//! codes, the subscription check, and PROVIDERS.md 3.5's signed notification.

use keel_sdk::http::Response;
use keel_sdk::notifier::{
    ButtonKind, DeliveryStatus, InboundEvent, InboundMessage, Media, Message, Notifier,
    StatusUpdate, Template, TemplateButton, TemplateHeader,
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
            header: None,
            buttons: Vec::new(),
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
    let status = |id: &str, status, detail: Option<&str>, at: &str| {
        InboundEvent::Status(StatusUpdate {
            provider_id: id.into(),
            status,
            detail: detail.map(str::to_owned),
            at: Some(at.to_owned()),
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
            status(
                "wamid.A",
                DeliveryStatus::Sent,
                None,
                "2026-01-01T00:00:01Z"
            ),
            status(
                "wamid.A",
                DeliveryStatus::Read,
                None,
                "2026-01-01T00:01:40Z"
            ),
            status(
                "wamid.B",
                DeliveryStatus::Failed,
                Some("131026 Message undeliverable: Message Undeliverable."),
                "2026-01-01T00:00:02Z"
            ),
            status(
                "wamid.C",
                DeliveryStatus::Delivered,
                None,
                "2026-01-01T00:00:03Z"
            ),
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

// ---- WIT 0.2: template headers and buttons, documents and images, status times ----

const INVOICE_LINK: &str = "https://billing.example.co.zw/files/INV-42.pdf?sig=abc";

fn pdf() -> Media {
    Media {
        link: INVOICE_LINK.into(),
        filename: Some("INV-42.pdf".into()),
        media_type: "application/pdf".into(),
        caption: None,
    }
}

fn button(index: u8, kind: ButtonKind, parameter: &str) -> TemplateButton {
    TemplateButton {
        index,
        kind,
        parameter: parameter.into(),
    }
}

fn with_template(header: Option<TemplateHeader>, buttons: Vec<TemplateButton>) -> Message {
    let mut msg = template_message(&["INV-42"]);
    let template = msg.template.as_mut().unwrap();
    template.header = header;
    template.buttons = buttons;
    msg
}

fn with_attachment(body: &str, media: Media) -> Message {
    Message {
        attachment: Some(media),
        ..fixtures::message("+263771234567", body)
    }
}

/// The invalid-input message of sending `msg`, and that nothing was sent.
fn refused_input(msg: Message) -> String {
    let host = answering(200, &[], SENT);
    let err = WhatsApp::send(msg).unwrap_err();
    assert!(host.requests().is_empty(), "sent anyway: {err:?}");
    match err {
        PluginError::InvalidInput(m) => m,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_template_carries_a_text_header_and_url_and_quick_reply_buttons() {
    let host = answering(200, &[], SENT);
    WhatsApp::send(with_template(
        Some(TemplateHeader::Text(vec!["INV-42".into()])),
        vec![
            button(0, ButtonKind::Url, "INV-42?t=abc"),
            button(1, ButtonKind::QuickReply, "PAID-INV-42"),
        ],
    ))
    .unwrap();
    assert_eq!(
        sent_json(&host)["template"],
        json!({
            "name": "invoice_due",
            "language": { "code": "en" },
            "components": [
                { "type": "header", "parameters": [{ "type": "text", "text": "INV-42" }] },
                { "type": "body", "parameters": [{ "type": "text", "text": "INV-42" }] },
                { "type": "button", "sub_type": "url", "index": "0",
                  "parameters": [{ "type": "text", "text": "INV-42?t=abc" }] },
                { "type": "button", "sub_type": "quick_reply", "index": "1",
                  "parameters": [{ "type": "payload", "payload": "PAID-INV-42" }] },
            ],
        })
    );
}

#[test]
fn a_template_header_can_be_a_document_or_an_image() {
    let host = answering(200, &[], SENT);
    WhatsApp::send(with_template(Some(TemplateHeader::Document(pdf())), vec![])).unwrap();
    assert_eq!(
        sent_json(&host)["template"]["components"][0],
        json!({ "type": "header", "parameters": [{ "type": "document",
            "document": { "link": INVOICE_LINK, "filename": "INV-42.pdf" } }] })
    );
    // No filename: none sent.
    let host = answering(200, &[], SENT);
    let unnamed = Media {
        filename: Some(" ".into()),
        ..pdf()
    };
    WhatsApp::send(with_template(
        Some(TemplateHeader::Document(unnamed)),
        vec![],
    ))
    .unwrap();
    assert_eq!(
        sent_json(&host)["template"]["components"][0]["parameters"][0]["document"],
        json!({ "link": INVOICE_LINK })
    );
    let host = answering(200, &[], SENT);
    let logo = Media {
        link: "https://billing.example.co.zw/logo.png".into(),
        filename: None,
        media_type: "image/png".into(),
        caption: Some("ignored in a header".into()),
    };
    WhatsApp::send(with_template(Some(TemplateHeader::Image(logo)), vec![])).unwrap();
    assert_eq!(
        sent_json(&host)["template"]["components"][0],
        json!({ "type": "header", "parameters": [{ "type": "image",
            "image": { "link": "https://billing.example.co.zw/logo.png" } }] })
    );
}

#[test]
fn a_text_header_without_parameters_and_no_body_parameters_send_no_components() {
    let host = answering(200, &[], SENT);
    let mut msg = with_template(Some(TemplateHeader::Text(vec![])), vec![]);
    msg.template.as_mut().unwrap().parameters.clear();
    WhatsApp::send(msg).unwrap();
    assert_eq!(
        sent_json(&host)["template"],
        json!({ "name": "invoice_due", "language": { "code": "en" } })
    );
    // Buttons alone are components.
    let host = answering(200, &[], SENT);
    let mut msg = with_template(None, vec![button(9, ButtonKind::Url, "x")]);
    msg.template.as_mut().unwrap().parameters.clear();
    WhatsApp::send(msg).unwrap();
    assert_eq!(
        sent_json(&host)["template"]["components"],
        json!([{ "type": "button", "sub_type": "url", "index": "9",
            "parameters": [{ "type": "text", "text": "x" }] }])
    );
}

#[test]
fn bad_headers_buttons_and_links_are_invalid_input() {
    let http = |link: &str| Media {
        link: link.into(),
        ..pdf()
    };
    let cases: Vec<(Message, &str)> = vec![
        (
            with_template(
                Some(TemplateHeader::Text(vec!["a".into(), "b".into()])),
                vec![],
            ),
            "text header has 2 parameters; a WhatsApp header has at most one",
        ),
        (
            with_template(None, vec![button(10, ButtonKind::Url, "x")]),
            "button index 10 is out of range: WhatsApp numbers buttons 0 to 9",
        ),
        (
            with_template(
                None,
                vec![
                    button(1, ButtonKind::Url, "x"),
                    button(1, ButtonKind::QuickReply, "y"),
                ],
            ),
            "button index 1 is given twice",
        ),
        (
            with_template(None, vec![button(0, ButtonKind::QuickReply, "")]),
            "button 0 has an empty parameter",
        ),
        (
            with_template(Some(TemplateHeader::Document(http(" "))), vec![]),
            "the template's document header has an empty link",
        ),
        (
            with_template(
                Some(TemplateHeader::Image(http("http://cdn.example.com/a.png"))),
                vec![],
            ),
            "the template's image header's link `http://cdn.example.com/a.png` is not https",
        ),
        (
            with_attachment("Invoice", http("")),
            "the attachment has an empty link",
        ),
        (
            with_attachment("Invoice", http("http://billing.example.co.zw/INV-42.pdf")),
            "is not https: WhatsApp fetches files over https",
        ),
        (
            with_attachment("Invoice", http("http://127.0.0.1.evil.example/INV-42.pdf")),
            "is not https",
        ),
        (
            with_attachment("Invoice", http("ftp://files.example.com/INV-42.pdf")),
            "the attachment's link is not a URL WhatsApp can fetch",
        ),
        (
            with_attachment("Invoice", http("/files/INV-42.pdf")),
            "the attachment's link is not a URL WhatsApp can fetch",
        ),
        (
            with_attachment("Invoice", http("https://user@billing.example.co.zw/a.pdf")),
            "the attachment's link is not a URL WhatsApp can fetch",
        ),
    ];
    for (msg, fragment) in cases {
        let message = refused_input(msg);
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}

#[test]
fn http_links_are_allowed_to_loopback_hosts_only() {
    for link in [
        "http://127.0.0.1:8080/files/INV-42.pdf",
        "http://127.1.2.3/INV-42.pdf",
        "http://localhost:3000/INV-42.pdf",
        "http://LOCALHOST/INV-42.pdf",
        "http://[::1]:8080/INV-42.pdf",
        "HTTPS://billing.example.co.zw/INV-42.pdf",
    ] {
        let host = answering(200, &[], SENT);
        let media = Media {
            link: link.into(),
            ..pdf()
        };
        WhatsApp::send(with_attachment("Invoice", media)).unwrap();
        assert_eq!(sent_json(&host)["document"]["link"], link);
    }
}

#[test]
fn an_attachment_is_a_document_captioned_with_the_body() {
    let host = answering(200, &[], SENT);
    let receipt = WhatsApp::send(with_attachment("Invoice INV-42 is due", pdf())).unwrap();
    assert_eq!(receipt.provider_id, "wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgSQUY");
    assert_eq!(
        sent_json(&host),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "263771234567",
            "type": "document",
            "document": {
                "link": INVOICE_LINK,
                "filename": "INV-42.pdf",
                "caption": "Invoice INV-42 is due",
            },
            "biz_opaque_callback_data": "ntf-000042",
        })
    );
    // The subject is the caption's bold first line, as in a text.
    let host = answering(200, &[], SENT);
    WhatsApp::send(Message {
        subject: Some("Invoice INV-42".into()),
        ..with_attachment("Please pay USD 25.00.", pdf())
    })
    .unwrap();
    assert_eq!(
        sent_json(&host)["document"]["caption"],
        "*Invoice INV-42*\n\nPlease pay USD 25.00."
    );
}

#[test]
fn without_a_body_the_attachments_own_caption_or_none() {
    let host = answering(200, &[], SENT);
    let captioned = Media {
        caption: Some("Your invoice".into()),
        ..pdf()
    };
    WhatsApp::send(with_attachment(" ", captioned)).unwrap();
    assert_eq!(sent_json(&host)["document"]["caption"], "Your invoice");
    let host = answering(200, &[], SENT);
    let bare = Media {
        filename: None,
        ..pdf()
    };
    WhatsApp::send(with_attachment("", bare)).unwrap();
    assert_eq!(
        sent_json(&host)["document"],
        json!({ "link": INVOICE_LINK })
    );
}

#[test]
fn jpeg_and_png_go_as_images_other_types_as_documents() {
    for (media_type, kind) in [
        ("image/png", "image"),
        ("image/jpeg", "image"),
        ("IMAGE/JPEG; q=1", "image"),
        ("image/webp", "document"),
        ("image/gif", "document"),
        ("text/csv", "document"),
        ("", "document"),
    ] {
        let host = answering(200, &[], SENT);
        let media = Media {
            media_type: media_type.into(),
            ..pdf()
        };
        WhatsApp::send(with_attachment("Receipt", media)).unwrap();
        let body = sent_json(&host);
        assert_eq!(body["type"], kind, "{media_type}");
        let expected = match kind {
            "image" => json!({ "link": INVOICE_LINK, "caption": "Receipt" }),
            _ => json!({ "link": INVOICE_LINK, "filename": "INV-42.pdf", "caption": "Receipt" }),
        };
        assert_eq!(body[kind], expected, "{media_type}");
    }
}

#[test]
fn a_caption_has_at_most_1024_characters() {
    let host = answering(200, &[], SENT);
    let longest = "é".repeat(1024);
    WhatsApp::send(with_attachment(&longest, pdf())).unwrap();
    assert_eq!(sent_json(&host)["document"]["caption"], longest.as_str());
    let message = refused_input(with_attachment(&"é".repeat(1025), pdf()));
    assert!(
        message.contains("has 1025 characters; a WhatsApp caption has at most 1024"),
        "{message}"
    );
    let long_own = Media {
        caption: Some("c".repeat(1025)),
        ..pdf()
    };
    let message = refused_input(with_attachment("", long_own));
    assert!(message.contains("at most 1024"), "{message}");
}

#[test]
fn a_template_with_an_attachment_sends_the_template() {
    let host = answering(200, &[], SENT);
    let mut msg = template_message(&["INV-42"]);
    msg.attachment = Some(Media {
        link: "http://cdn.example.com/not-even-checked.pdf".into(),
        ..pdf()
    });
    WhatsApp::send(msg).unwrap();
    let body = sent_json(&host);
    assert_eq!(body["type"], "template");
    assert!(body.get("document").is_none(), "{body}");
}

#[test]
fn a_document_outside_the_window_is_refused_for_a_template() {
    let _host = host()
        .respond(|_| {
            Ok(reply(
                400,
                &[],
                &graph_error(
                    131047,
                    "(#131047) Re-engagement message",
                    "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
                ),
            ))
        })
        .install();
    let err = WhatsApp::send(with_attachment("Invoice INV-42", pdf())).unwrap_err();
    assert!(
        matches!(&err, PluginError::Refused(m) if m.contains("131047") && m.contains("template")),
        "{err:?}"
    );
}

#[test]
fn a_status_carries_its_timestamp_and_a_bad_one_only_loses_it() {
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "statuses": [
                {"id": "wamid.A", "status": "read", "timestamp": "1767225700", "recipient_id": "263771234567"},
                {"id": "wamid.A", "status": "delivered", "timestamp": "1767225650", "recipient_id": "263771234567"},
                {"id": "wamid.B", "status": "sent", "timestamp": 1767225600},
                {"id": "wamid.C", "status": "sent"},
                {"id": "wamid.D", "status": "sent", "timestamp": "yesterday"},
                {"id": "wamid.E", "status": "sent", "timestamp": ""},
                {"id": "wamid.F", "status": "sent", "timestamp": "1767225600.5"},
                {"id": "wamid.G", "status": "sent", "timestamp": "-1"},
                {"id": "wamid.H", "status": "sent", "timestamp": "99999999999999"},
                {"id": "wamid.I", "status": "sent", "timestamp": null},
                {"id": "wamid.J", "status": "sent", "timestamp": {"seconds": 1}}
            ]}}]}]
    })
    .to_string();
    let _host = host().install();
    let inbound =
        WhatsApp::verify_inbound(signed(&body, "X-Hub-Signature-256", &sign(&body))).unwrap();
    let at: Vec<(String, Option<String>)> = inbound
        .events
        .iter()
        .map(|e| match e {
            InboundEvent::Status(s) => (s.provider_id.clone(), s.at.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let some = |id: &str, at: &str| (id.to_owned(), Some(at.to_owned()));
    let none = |id: &str| (id.to_owned(), None);
    assert_eq!(
        at,
        vec![
            // Out of order as delivered: each keeps its own time.
            some("wamid.A", "2026-01-01T00:01:40Z"),
            some("wamid.A", "2026-01-01T00:00:50Z"),
            some("wamid.B", "2026-01-01T00:00:00Z"),
            none("wamid.C"),
            none("wamid.D"),
            none("wamid.E"),
            none("wamid.F"),
            none("wamid.G"),
            none("wamid.H"),
            none("wamid.I"),
            none("wamid.J"),
        ]
    );
}
