//! The fake's own checks of WIT 0.2's sends (template headers and buttons, documents and
//! images) and of status timestamps: the body parser directly, then the fake over real HTTP
//! on loopback. `tests/fake_whatsapp.rs` covers the rest through the public API.

use serde_json::{Value, json};

use super::request::{self, Parsed};
use super::{Content, FakeWhatsApp, Webhook, errors};

const USER: &str = "263771234567";
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const PDF: &str = "https://billing.example.co.zw/files/INV-42.pdf";

fn template(components: Value) -> Value {
    json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
           "template": {"name": "invoice_ready", "language": {"code": "en"},
                        "components": components}})
}

/// The code-100 details of an invalid body.
fn refused(body: &Value) -> String {
    match request::parse(body) {
        Err(invalid) => {
            assert!(invalid.message.starts_with("(#100) "), "{invalid:?}");
            invalid.details
        }
        Ok(_) => panic!("accepted: {body}"),
    }
}

fn parsed(body: &Value) -> Content {
    match request::parse(body) {
        Ok(Parsed::Send(outgoing)) => outgoing.content,
        Ok(Parsed::MarkRead { .. }) => panic!("a mark-as-read: {body}"),
        Err(invalid) => panic!("{body}: {invalid:?}"),
    }
}

#[test]
fn headers_and_buttons_with_their_parameters_are_read() {
    let content = parsed(&template(json!([
        {"type": "header", "parameters": [{"type": "document",
            "document": {"link": PDF, "filename": "INV-42.pdf"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "INV-42"}]},
        {"type": "button", "sub_type": "url", "index": "0",
         "parameters": [{"type": "text", "text": "INV-42?t=1"}]},
        {"type": "button", "sub_type": "quick_reply", "index": 9,
         "parameters": [{"type": "payload", "payload": "PAID"}]},
    ])));
    let Content::Template { components, .. } = content else {
        panic!("{content:?}")
    };
    assert_eq!(components[0].parameters[0].link(), Some(PDF));
    assert_eq!(components[0].parameters[0].filename(), Some("INV-42.pdf"));
    assert_eq!(components[2].index_number(), Some(0));
    assert_eq!(components[2].texts(), ["INV-42?t=1"]);
    assert_eq!(components[3].index.as_deref(), Some("9"));
    assert_eq!(components[3].texts(), ["PAID"]);
    // A text header, and an image one.
    parsed(&template(json!([
        {"type": "header", "parameters": [{"type": "text", "text": "INV-42"}]}
    ])));
    parsed(&template(json!([
        {"type": "header", "parameters": [{"type": "image",
            "image": {"link": "http://127.0.0.1:8080/logo.png"}}]}
    ])));
}

#[test]
fn bad_headers_and_buttons_are_code_100() {
    let text = |t: &str| json!({"type": "text", "text": t});
    let cases = [
        (
            json!([{"type": "header", "parameters": [text("a"), text("b")]}]),
            "Param template['components'][0]['parameters'] of a header takes at most 1 parameter, got 2",
        ),
        (
            json!([{"type": "header", "parameters": [{"type": "payload", "payload": "x"}]}]),
            "Param template['components'][0]['parameters'][0]['type'] of a header must be one of",
        ),
        (
            json!([{"type": "body", "parameters": [{"type": "image", "image": {"link": PDF}}]}]),
            "of a body must be one of [\"text\", \"currency\", \"date_time\"], got \"image\"",
        ),
        (
            json!([{"type": "button", "sub_type": "url", "index": "10", "parameters": [text("x")]}]),
            "Param template['components'][0]['index'] must be a button's position, 0 to 9, got \"10\"",
        ),
        (
            json!([{"type": "button", "sub_type": "url", "index": "-1", "parameters": [text("x")]}]),
            "Param template['components'][0]['index'] must be a button's position, 0 to 9",
        ),
        (
            json!([
                {"type": "button", "sub_type": "url", "index": "1", "parameters": [text("x")]},
                {"type": "button", "sub_type": "quick_reply", "index": 1,
                 "parameters": [{"type": "payload", "payload": "y"}]}
            ]),
            "Param template['components'][1]['index']: button index 1 is given twice",
        ),
        (
            json!([{"type": "button", "sub_type": "url", "index": "0",
                    "parameters": [{"type": "payload", "payload": "x"}]}]),
            "of a url button must be one of [\"text\"], got \"payload\"",
        ),
        (
            json!([{"type": "button", "sub_type": "quick_reply", "index": "0",
                    "parameters": [text("x")]}]),
            "of a quick_reply button must be one of [\"payload\"], got \"text\"",
        ),
        (
            json!([{"type": "button", "sub_type": "url", "index": "0",
                    "parameters": [text("x"), text("y")]}]),
            "of a url button takes at most 1 parameter, got 2",
        ),
        (
            json!([{"type": "header", "parameters": [{"type": "document",
                "document": {"link": "http://billing.example.co.zw/INV-42.pdf"}}]}]),
            "Param template['components'][0]['parameters'][0]['document']['link'] must be an https URL (plain http only to a loopback host",
        ),
        (
            json!([{"type": "header", "parameters": [{"type": "document",
                "document": {"link": PDF, "filename": 42}}]}]),
            "Param template['components'][0]['parameters'][0]['document']['filename'] must be a string",
        ),
        (
            json!([{"type": "header", "parameters": [{"type": "image", "image": {}}]}]),
            "must have an http(s) link or an id",
        ),
    ];
    for (components, details) in cases {
        let got = refused(&template(components.clone()));
        assert!(got.contains(details), "{components}: {got}");
    }
    // A button without parameters names them as required.
    let invalid = request::parse(&template(
        json!([{"type": "button", "sub_type": "url", "index": "0"}]),
    ))
    .err()
    .unwrap();
    assert_eq!(
        invalid.message,
        "(#100) The parameter template['components'][0]['parameters'] is required."
    );
}

#[test]
fn media_links_are_https_or_loopback_http() {
    let document = |link: &str| {
        json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
               "document": {"link": link, "filename": "INV-42.pdf", "caption": "Invoice"}})
    };
    for link in [
        PDF,
        "http://127.0.0.1:9/INV-42.pdf",
        "http://127.8.9.10/INV-42.pdf",
        "http://localhost:3000/INV-42.pdf",
        "http://[::1]:8080/INV-42.pdf",
    ] {
        assert_eq!(
            parsed(&document(link)),
            Content::Document {
                link: Some(link.to_owned()),
                id: None,
                filename: Some("INV-42.pdf".into()),
                caption: Some("Invoice".into()),
            }
        );
    }
    for link in [
        "http://billing.example.co.zw/INV-42.pdf",
        "http://10.0.0.1/INV-42.pdf",
        "http://127.0.0.1.nip.io/INV-42.pdf",
    ] {
        assert_eq!(
            refused(&document(link)),
            format!(
                "Param document['link'] must be an https URL (plain http only to a loopback host, the fake's rule for tests), got {link:?}"
            )
        );
    }
    // Not http(s) at all: the older wording.
    assert_eq!(
        refused(&document("ftp://files.example.com/INV-42.pdf")),
        "Param document['link'] must be an http or https URL, got \"ftp://files.example.com/INV-42.pdf\""
    );
    let image = json!({"messaging_product": "whatsapp", "to": USER, "type": "image",
                       "image": {"link": "http://cdn.example.com/a.png"}});
    assert!(refused(&image).starts_with("Param image['link'] must be an https URL"));
}

async fn post(fake: &FakeWhatsApp, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(fake.messages_url("v21.0"))
        .bearer_auth(fake.access_token())
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn accepted(fake: &FakeWhatsApp, body: &Value) -> String {
    let (status, reply) = post(fake, body).await;
    assert_eq!(status, 200, "{reply}");
    reply["messages"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_headers_buttons_and_files_are_recorded_and_files_need_the_window() {
    let fake = FakeWhatsApp::builder().clock_at(T0).start().await;
    // A template goes outside the window, its header and buttons recorded.
    let wamid = accepted(
        &fake,
        &template(json!([
            {"type": "header", "parameters": [{"type": "document",
                "document": {"link": PDF, "filename": "INV-42.pdf"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "INV-42"}]},
            {"type": "button", "sub_type": "url", "index": "0",
             "parameters": [{"type": "text", "text": "INV-42"}]},
            {"type": "button", "sub_type": "quick_reply", "index": "1",
             "parameters": [{"type": "payload", "payload": "PAID-INV-42"}]},
        ])),
    )
    .await;
    let m = fake.message(&wamid).unwrap();
    assert_eq!(m.header().unwrap().kind, "header");
    let header = m.header_parameter().unwrap();
    assert_eq!(
        (header.kind.as_str(), header.link(), header.filename()),
        ("document", Some(PDF), Some("INV-42.pdf"))
    );
    assert_eq!(m.body_parameters(), ["INV-42"]);
    let buttons: Vec<_> = m
        .buttons()
        .iter()
        .map(|b| {
            (
                b.sub_type.clone().unwrap(),
                b.index_number().unwrap(),
                b.texts(),
            )
        })
        .collect();
    assert_eq!(
        buttons,
        [
            ("url".to_owned(), 0, vec!["INV-42"]),
            ("quick_reply".to_owned(), 1, vec!["PAID-INV-42"]),
        ]
    );
    assert_eq!(m.button(1).unwrap().texts(), ["PAID-INV-42"]);
    assert!(m.button(2).is_none());
    assert_eq!((m.link(), m.caption(), m.filename()), (None, None, None));

    // Documents and images are free-form: 131047 outside the window.
    let document = json!({"messaging_product": "whatsapp", "recipient_type": "individual",
        "to": USER, "type": "document",
        "document": {"link": PDF, "filename": "INV-42.pdf", "caption": "Invoice INV-42"}});
    let image = json!({"messaging_product": "whatsapp", "to": USER, "type": "image",
        "image": {"link": "http://127.0.0.1:9/receipt.png", "caption": "Receipt"}});
    for body in [&document, &image] {
        let (status, reply) = post(&fake, body).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["error"]["code"], errors::REENGAGEMENT);
    }
    assert_eq!(fake.sent().len(), 1);

    fake.open_window(USER);
    let wamid = accepted(&fake, &document).await;
    let m = fake.message(&wamid).unwrap();
    assert_eq!(m.kind(), "document");
    assert_eq!(
        (m.link(), m.filename(), m.caption()),
        (Some(PDF), Some("INV-42.pdf"), Some("Invoice INV-42"))
    );
    let wamid = accepted(&fake, &image).await;
    let m = fake.message(&wamid).unwrap();
    assert_eq!(m.kind(), "image");
    assert_eq!(
        (m.link(), m.filename(), m.caption()),
        (
            Some("http://127.0.0.1:9/receipt.png"),
            None,
            Some("Receipt")
        )
    );
    assert!(m.buttons().is_empty() && m.header().is_none());

    // A plain-http link elsewhere is a bad parameter, even inside the window.
    let mut elsewhere = document.clone();
    elsewhere["document"]["link"] = json!("http://billing.example.co.zw/INV-42.pdf");
    let (status, reply) = post(&fake, &elsewhere).await;
    assert_eq!((status, reply["error"]["code"].as_u64()), (400, Some(100)));
    // The window closes 24 hours on.
    fake.advance(super::WINDOW);
    let (status, reply) = post(&fake, &document).await;
    assert_eq!(
        (status, reply["error"]["code"].as_u64()),
        (400, Some(131047))
    );
    fake.stop().await;
}

fn status_times(bodies: &[super::SignedBody]) -> Vec<(String, String)> {
    bodies
        .iter()
        .flat_map(|b| {
            let json = b.json();
            json["entry"][0]["changes"][0]["value"]["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["status"].as_str().unwrap().to_owned(),
                        s["timestamp"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_statuses_keep_their_own_timestamps() {
    let fake = FakeWhatsApp::builder().clock_at(T0).start().await;
    let wamid = accepted(
        &fake,
        &template(json!([{"type": "body", "parameters": [{"type": "text", "text": "x"}]}])),
    )
    .await;
    let statuses = ["sent", "delivered", "read"];
    let t = |s: i64| (T0 + s).to_string();
    let pairs = |list: &[(&str, String)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(s, t)| ((*s).to_owned(), t.clone()))
            .collect()
    };
    // In order, one body each.
    let bodies = fake.signed_bodies(&Webhook::statuses(&wamid, &statuses));
    assert_eq!(
        status_times(&bodies),
        pairs(&[("sent", t(0)), ("delivered", t(1)), ("read", t(2))])
    );
    // Reversed: the same times, each with its status.
    let bodies = fake.signed_bodies(&Webhook::statuses(&wamid, &statuses).out_of_order());
    assert_eq!(
        status_times(&bodies),
        pairs(&[("read", t(2)), ("delivered", t(1)), ("sent", t(0))])
    );
    // Any permutation, in one body.
    let bodies = fake.signed_bodies(
        &Webhook::statuses(&wamid, &statuses)
            .order(&[1, 2, 0])
            .in_one_body(),
    );
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        status_times(&bodies),
        pairs(&[("delivered", t(1)), ("read", t(2)), ("sent", t(0))])
    );
    // A base time of the test's choosing, and the fake's clock moving on.
    let bodies = fake.signed_bodies(&Webhook::statuses(&wamid, &["read"]).at(T0 + 500));
    assert_eq!(status_times(&bodies), pairs(&[("read", t(500))]));
    fake.advance(std::time::Duration::from_secs(60));
    let bodies = fake.signed_bodies(&Webhook::status(&wamid, "delivered"));
    assert_eq!(status_times(&bodies), pairs(&[("delivered", t(60))]));
    fake.stop().await;
}
