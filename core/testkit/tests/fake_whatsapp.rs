//! The fake WhatsApp Cloud API, spoken to over real HTTP as a notifier plugin would, with a
//! loopback hook playing Keel's callback that checks every signature independently (the
//! `hmac`, `sha1` and `sha2` crates here, not the fake's `wire` module): tokens, body shapes,
//! Meta's error bodies, the 24-hour window on fake time, scripted errors and outages, the
//! fake's own dedupe on `biz_opaque_callback_data`, status and message webhooks (in order,
//! reordered, duplicated, failed, batched, forged, unsigned), PROVIDERS.md §3.5's worked
//! example byte for byte, the GET challenge and delivery retries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use keel_testkit::plugins::{FakeProvider, Reply};
use keel_testkit::whatsapp::{
    APP_SECRET, BUSINESS_ACCOUNT_ID, Content, DISPLAY_PHONE_NUMBER, FORGED_SECRET, Failure,
    FakeWhatsApp, FakeWhatsAppBuilder, Inbound, OutOfWindow, PHONE_NUMBER_ID, Webhook, errors,
};
use serde_json::{Value, json};
use sha2::Sha256;

const TOKEN: &str = "EAAG-test-token";
const VERIFY: &str = "keel-verify-me";
const USER: &str = "263771234567";
const OTHER: &str = "263772222222";
/// 2026-01-01T00:00:00Z, PROVIDERS.md §3.5's timestamp.
const T0: i64 = 1_767_225_600;
const HOOK_PATH: &str = "/hooks/notifiers/whatsapp";

/// PROVIDERS.md §3.5's worked example, byte for byte (470 bytes).
const VECTOR: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Tendai M\u00fcller"},"wa_id":"263771234567"}],"messages":[{"from":"263771234567","id":"wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0E","timestamp":"1767225600","type":"text","text":{"body":"Is my invoice paid?"}}]},"field":"messages"}]}]}"#;
const VECTOR_SIGNATURE: &str =
    "sha256=fb8b7af8d6a8ca0afeee6884ed1f448c996deb9536d5355b740fbea1e1133f9e";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The fake as Keel's tests run it: frozen fake time, fast retries.
fn builder() -> FakeWhatsAppBuilder {
    FakeWhatsApp::builder()
        .access_token(TOKEN)
        .verify_token(VERIFY)
        .clock_at(T0)
        .retry_backoff(ms(5))
        .delivery_attempts(3)
}

async fn whatsapp() -> FakeWhatsApp {
    builder().start().await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of `body` with `secret`, as `sha256=<hex>`: computed here.
fn sha256_header(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// HMAC-SHA1, as `sha1=<hex>`.
fn sha1_header(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha1={}", hex(&mac.finalize().into_bytes()))
}

/// Keel's hook as a test plays it: a GET answers Meta's challenge when the mode is
/// `subscribe` and the token is [`VERIFY`] (403 otherwise); a POST must carry an
/// `X-Hub-Signature-256` that is the HMAC of the raw bytes with the app secret, computed here
/// (401 otherwise), and then gets the next status of `script` (200 once it is used up).
async fn hook(script: &[u16]) -> FakeProvider {
    let script = Arc::new(Mutex::new(VecDeque::from(script.to_vec())));
    FakeProvider::start(move |req| {
        if req.method == "GET" {
            let url = url::Url::parse(&format!("http://hook{}", req.uri)).unwrap();
            let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
            let get = |k: &str| query.get(k).map(String::as_str);
            return if get("hub.mode") == Some("subscribe")
                && get("hub.verify_token") == Some(VERIFY)
            {
                Reply::text(200, get("hub.challenge").unwrap_or_default())
            } else {
                Reply::status(403)
            };
        }
        if req.header("x-hub-signature-256") != Some(&sha256_header(APP_SECRET, &req.body)) {
            return Reply::status(401);
        }
        Reply::status(script.lock().unwrap().pop_front().unwrap_or(200))
    })
    .await
}

fn hook_url(hook: &FakeProvider) -> String {
    hook.url_as("127.0.0.1", HOOK_PATH)
}

/// The POST bodies the hook received, parsed, in order.
fn posted(hook: &FakeProvider) -> Vec<Value> {
    hook.received()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The one `statuses[0]` of a one-status body.
fn status_of(body: &Value) -> &Value {
    let statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
        .as_array()
        .unwrap();
    assert_eq!(statuses.len(), 1, "{body}");
    &statuses[0]
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The error body minus `fbtrace_id`, which must be there, non-empty, and equal to the
    /// `x-fb-trace-id` header.
    fn error(&self) -> Value {
        let mut body = self.json();
        let trace = body["error"]
            .as_object_mut()
            .and_then(|e| e.remove("fbtrace_id"))
            .unwrap_or_else(|| panic!("no fbtrace_id in {}", self.text));
        let trace = trace.as_str().unwrap();
        assert!(!trace.is_empty());
        assert_eq!(self.headers["x-fb-trace-id"], trace);
        body
    }
}

async fn post(
    url: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(url).body(body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// A send as a plugin makes it: `POST /v21.0/<phone id>/messages`, bearer token, JSON.
async fn send(fake: &FakeWhatsApp, body: &Value) -> Answer {
    post(
        &fake.messages_url("v21.0"),
        Some(&format!("Bearer {TOKEN}")),
        Some("application/json"),
        body.to_string(),
    )
    .await
}

/// Sends and expects 200; returns the wamid.
async fn accepted(fake: &FakeWhatsApp, body: &Value) -> String {
    let answer = send(fake, body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn text_to(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "text", "text": {"preview_url": false, "body": body}})
}

/// PROVIDERS.md §3.1's template body.
fn template_to(to: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "template",
           "template": {"name": "invoice_due", "language": {"code": "en"},
             "components": [{"type": "body", "parameters": [{"type": "text", "text": "INV-42"}]}]}})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_send_with_the_bearer_token_gets_metas_reply_and_is_recorded() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    // heyoo's exact body (PROVIDERS.md §3.1), on its hard-coded version.
    let heyoo = r#"{"messaging_product":"whatsapp","recipient_type":"individual","to":"263771234567","type":"text","text":{"preview_url":true,"body":"Invoice INV-42 is due"}}"#;
    let answer = post(
        &fake.url(&format!("/v14.0/{PHONE_NUMBER_ID}/messages")),
        Some(&format!("Bearer {TOKEN}")),
        Some("application/json"),
        heyoo,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let wamid = answer.json()["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answer.text,
        format!(
            r#"{{"messaging_product":"whatsapp","contacts":[{{"input":"263771234567","wa_id":"263771234567"}}],"messages":[{{"id":"{wamid}"}}]}}"#
        )
    );
    assert!(
        wamid.starts_with("wamid.HBgMMjYzNzcxMjM0NTY3"),
        "Meta's shape: {wamid}"
    );
    assert!(wamid.len() <= 128);

    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.wamid, wamid);
    assert_eq!(m.to, USER);
    assert_eq!(m.phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(m.version, "v14.0");
    assert_eq!(m.kind(), "text");
    assert_eq!(
        m.content,
        Content::Text {
            body: "Invoice INV-42 is due".into(),
            preview_url: true
        }
    );
    assert_eq!(m.at, T0);
    assert_eq!(m.biz_opaque_callback_data, None);
    assert_eq!(m.request, serde_json::from_str::<Value>(heyoo).unwrap());
    assert_eq!(
        fake.message(&wamid).unwrap().text(),
        Some("Invoice INV-42 is due")
    );

    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(received[0].text(), heyoo);

    // A second send gets another id; `type` left out means text (Meta's reference).
    let mut untyped = text_to(USER, "again");
    untyped.as_object_mut().unwrap().remove("type");
    let second = accepted(&fake, &untyped).await;
    assert_ne!(second, wamid);
    assert_eq!(fake.sent()[1].text(), Some("again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_gets_401_with_code_190() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    let body = text_to(USER, "hello").to_string();
    let wrong = format!("Bearer {TOKEN}x");
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic eDp5"),
        Some(wrong.as_str()),
    ] {
        let answer = post(
            &fake.messages_url("v21.0"),
            auth,
            Some("application/json"),
            body.clone(),
        )
        .await;
        assert_eq!(answer.status, 401, "{auth:?}");
        assert_eq!(
            answer.error(),
            json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
                             "type": "OAuthException", "code": 190}}),
            "{auth:?}"
        );
        assert!(
            answer.headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("OAuth \"Facebook Platform\" \"invalid_token\"")
        );
    }
    assert!(fake.sent().is_empty());
    // Graph also takes the token as a query parameter, and the scheme in any case.
    let query = post(
        &format!("{}?access_token={TOKEN}", fake.messages_url("v21.0")),
        None,
        Some("application/json"),
        body.clone(),
    )
    .await;
    assert_eq!(query.status, 200, "{}", query.text);
    let lower = post(
        &fake.messages_url("v21.0"),
        Some(&format!("bearer {TOKEN}")),
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(lower.status, 200, "{}", lower.text);
    assert_eq!(fake.sent().len(), 2);
    assert_eq!(fake.received().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shapes_get_400_with_code_100_and_details() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    let required = |p: &str| {
        (
            format!("(#100) The parameter {p} is required."),
            format!("The parameter {p} is required."),
        )
    };
    let invalid = |details: &str| ("(#100) Invalid parameter".to_owned(), details.to_owned());
    let too_long = |p: &str, n: usize| {
        (
            format!("(#100) Param {p} must be at most {n} characters long."),
            format!("Param {p} must be at most {n} characters long."),
        )
    };
    let text = text_to(USER, "hi");
    let template = template_to(USER);
    let mut no_product = text.clone();
    no_product
        .as_object_mut()
        .unwrap()
        .remove("messaging_product");
    let mut no_to = text.clone();
    no_to.as_object_mut().unwrap().remove("to");
    let template_with = |t: Value| with(template.clone(), "template", t);
    let cases: Vec<(&str, Value, (String, String))> = vec![
        (
            "no messaging_product",
            no_product,
            required("messaging_product"),
        ),
        (
            "another product",
            with(text.clone(), "messaging_product", json!("sms")),
            invalid("Param messaging_product must be \"whatsapp\", got \"sms\""),
        ),
        ("no to", no_to, required("to")),
        (
            "a plus sign",
            with(text.clone(), "to", json!("+263771234567")),
            invalid(
                "Param to must be the recipient's number in international format, digits only, at most 15 (got \"+263771234567\")",
            ),
        ),
        (
            "a space",
            with(text.clone(), "to", json!("26377 1234567")),
            invalid(
                "Param to must be the recipient's number in international format, digits only, at most 15 (got \"26377 1234567\")",
            ),
        ),
        (
            "a group",
            with(text.clone(), "recipient_type", json!("group")),
            invalid("Param recipient_type must be \"individual\", got \"group\""),
        ),
        (
            "a type not emulated",
            with(text.clone(), "type", json!("sticker")),
            invalid(
                "Param type must be one of text, template, document, image (the types the fake emulates), got \"sticker\"",
            ),
        ),
        (
            "no text object",
            json!({"messaging_product": "whatsapp", "to": USER, "type": "text"}),
            required("text"),
        ),
        (
            "an empty body",
            with(text.clone(), "text", json!({"body": ""})),
            required("text['body']"),
        ),
        (
            "4097 characters",
            with(text.clone(), "text", json!({"body": "é".repeat(4097)})),
            too_long("text['body']", 4096),
        ),
        (
            "preview_url as a string",
            with(
                text.clone(),
                "text",
                json!({"body": "x", "preview_url": "yes"}),
            ),
            invalid("Param text['preview_url'] must be a boolean"),
        ),
        (
            "no template name",
            template_with(json!({"language": {"code": "en"}})),
            required("template['name']"),
        ),
        (
            "no template language",
            template_with(json!({"name": "invoice_due"})),
            required("template['language']"),
        ),
        (
            "no language code",
            template_with(json!({"name": "invoice_due", "language": {"policy": "deterministic"}})),
            required("template['language']['code']"),
        ),
        (
            "a component of no known type",
            template_with(json!({"name": "t", "language": {"code": "en"},
                                 "components": [{"type": "middle"}]})),
            invalid(
                "Param template['components'][0]['type'] must be one of [\"header\", \"body\", \"footer\", \"button\"], got \"middle\"",
            ),
        ),
        (
            "a text parameter without its text",
            template_with(json!({"name": "t", "language": {"code": "en"},
                                 "components": [{"type": "body", "parameters": [{"type": "text"}]}]})),
            required("template['components'][0]['parameters'][0]['text']"),
        ),
        (
            "a button without a sub_type",
            template_with(json!({"name": "t", "language": {"code": "en"},
                                 "components": [{"type": "button", "index": "0"}]})),
            required("template['components'][0]['sub_type']"),
        ),
        (
            "a button without an index",
            template_with(json!({"name": "t", "language": {"code": "en"},
                                 "components": [{"type": "button", "sub_type": "url"}]})),
            required("template['components'][0]['index']"),
        ),
        (
            "a document with neither link nor id",
            json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
                   "document": {"filename": "INV-42.pdf"}}),
            invalid("Param document must have a link or an id"),
        ),
        (
            "a document on ftp",
            json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
                   "document": {"link": "ftp://files.example.com/INV-42.pdf"}}),
            invalid(
                "Param document['link'] must be an http or https URL, got \"ftp://files.example.com/INV-42.pdf\"",
            ),
        ),
        (
            "a relative document link",
            json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
                   "document": {"link": "INV-42.pdf"}}),
            invalid("Param document['link'] must be an http or https URL, got \"INV-42.pdf\""),
        ),
        (
            "an image with both link and id",
            json!({"messaging_product": "whatsapp", "to": USER, "type": "image",
                   "image": {"link": "https://example.com/a.png", "id": "1234"}}),
            invalid("Param image must have a link or an id, not both"),
        ),
        (
            "513 characters of callback data",
            with(
                text.clone(),
                "biz_opaque_callback_data",
                json!("x".repeat(513)),
            ),
            too_long("biz_opaque_callback_data", 512),
        ),
        (
            "an array",
            json!([text.clone()]),
            invalid("The request body must be a JSON object"),
        ),
        (
            "mark-as-read of a message nobody sent",
            json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.nope"}),
            invalid(
                "Param message_id \"wamid.nope\" is not a message received by this phone number",
            ),
        ),
    ];
    for (case, body, (message, details)) in &cases {
        let answer = send(&fake, body).await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text);
        assert_eq!(
            answer.error(),
            json!({"error": {"message": message, "type": "OAuthException", "code": 100,
                             "error_data": {"messaging_product": "whatsapp", "details": details}}}),
            "{case}"
        );
    }
    // The limits themselves pass.
    accepted(
        &fake,
        &with(text.clone(), "text", json!({"body": "é".repeat(4096)})),
    )
    .await;
    accepted(
        &fake,
        &with(
            text.clone(),
            "biz_opaque_callback_data",
            json!("x".repeat(512)),
        ),
    )
    .await;

    // Not JSON: Graph reads a form body and finds no messaging_product.
    let url = fake.messages_url("v21.0");
    let bearer = format!("Bearer {TOKEN}");
    let form = post(
        &url,
        Some(&bearer),
        Some("application/x-www-form-urlencoded"),
        "to=263771234567",
    )
    .await;
    assert_eq!(form.status, 400);
    assert_eq!(
        form.error()["error"]["message"],
        "(#100) The parameter messaging_product is required."
    );
    let broken = post(&url, Some(&bearer), Some("application/json"), "{\"to\":").await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.error()["error"]["code"], 100);
    assert!(
        broken.error()["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .starts_with("The request body is not valid JSON")
    );

    // A phone number id the fake does not serve, another edge, another method.
    let unknown = post(
        &fake.url("/v21.0/999/messages"),
        Some(&bearer),
        Some("application/json"),
        text.to_string(),
    )
    .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.error(),
        json!({"error": {"message": "Unsupported post request. Object with ID '999' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                         "type": "GraphMethodException", "code": 100, "error_subcode": 33}})
    );
    let media = post(
        &fake.url(&format!("/v21.0/{PHONE_NUMBER_ID}/media")),
        Some(&bearer),
        Some("application/json"),
        "{}",
    )
    .await;
    assert_eq!(media.status, 400);
    assert_eq!(
        media.error(),
        json!({"error": {"message": "Unknown path components: /media", "type": "OAuthException", "code": 2500}})
    );
    let get = reqwest::Client::new()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 400);
    let get: Value = get.json().await.unwrap();
    assert!(
        get["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "Unsupported get request. Object with ID '{PHONE_NUMBER_ID}'"
            ))
    );

    assert_eq!(fake.sent().len(), 2, "only the two at the limits");
    assert_eq!(fake.received().len(), cases.len() + 2 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_go_outside_the_window_and_answer_accepted() {
    let fake = whatsapp().await;
    let body = json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
    "template": {"name": "invoice_due", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "document",
            "document": {"link": "https://billing.example.co.zw/invoices/INV-42.pdf", "filename": "INV-42.pdf"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "INV-42"},
            {"type": "currency", "currency": {"fallback_value": "$25.00", "code": "USD", "amount_1000": 25000}}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "INV-42"}]},
        {"type": "button", "sub_type": "quick_reply", "index": 1, "parameters": [{"type": "payload", "payload": "PAID-INV-42"}]}
    ]}});
    assert!(!fake.window_open(USER));
    let answer = send(&fake, &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let wamid = answer.json()["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answer.text,
        format!(
            r#"{{"messaging_product":"whatsapp","contacts":[{{"input":"{USER}","wa_id":"{USER}"}}],"messages":[{{"id":"{wamid}","message_status":"accepted"}}]}}"#
        )
    );
    // PROVIDERS.md §3.1's template, as heyoo sends it.
    accepted(&fake, &template_to(USER)).await;

    let m = fake.message(&wamid).unwrap();
    assert_eq!(m.kind(), "template");
    assert_eq!(m.template_name(), Some("invoice_due"));
    assert_eq!(m.body_parameters(), ["INV-42"]);
    let Content::Template {
        language,
        components,
        ..
    } = &m.content
    else {
        panic!("{m:?}")
    };
    assert_eq!(language, "en_US");
    let kinds: Vec<_> = components.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["header", "body", "button", "button"]);
    assert_eq!(components[2].sub_type.as_deref(), Some("url"));
    assert_eq!(
        components[3].index.as_deref(),
        Some("1"),
        "a number index, as a string"
    );
    assert_eq!(components[3].parameters[0].text(), Some("PAID-INV-42"));
    assert_eq!(components[0].parameters[0].kind, "document");

    // Free-form to the same user, still outside the window: refused.
    let refused = send(&fake, &text_to(USER, "hello")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error()["error"]["code"], 131047);
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_templates_are_checked_for_existence_and_parameter_count() {
    let fake = builder().template("invoice_due", "en", 1).start().await;
    let mut french = template_to(USER);
    french["template"]["language"]["code"] = json!("fr");
    let missing = send(&fake, &french).await;
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.error(),
        json!({"error": {"message": "(#132001) Template name does not exist in the translation",
            "type": "OAuthException", "code": 132001,
            "error_data": {"messaging_product": "whatsapp", "details": "template name (invoice_due) does not exist in fr"}}})
    );
    let mut two = template_to(USER);
    two["template"]["components"][0]["parameters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "text", "text": "25.00"}));
    let mismatch = send(&fake, &two).await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(
        mismatch.error(),
        json!({"error": {"message": "(#132000) Number of parameters does not match the expected number of params",
            "type": "OAuthException", "code": 132000,
            "error_data": {"messaging_product": "whatsapp",
                "details": "body: number of localizable_params (2) does not match the expected number of params (1)"}}})
    );
    accepted(&fake, &template_to(USER)).await;
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_images_take_a_web_link_or_a_media_id() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    let document = json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
        "document": {"link": "https://billing.example.co.zw/invoices/INV-42.pdf",
                     "filename": "INV-42.pdf", "caption": "Invoice INV-42"}});
    let wamid = accepted(&fake, &document).await;
    assert_eq!(
        fake.message(&wamid).unwrap().content,
        Content::Document {
            link: Some("https://billing.example.co.zw/invoices/INV-42.pdf".into()),
            id: None,
            filename: Some("INV-42.pdf".into()),
            caption: Some("Invoice INV-42".into()),
        }
    );
    let by_id = json!({"messaging_product": "whatsapp", "to": USER, "type": "document",
        "document": {"id": "1166846181421424"}});
    accepted(&fake, &by_id).await;
    let image = json!({"messaging_product": "whatsapp", "to": USER, "type": "image",
        "image": {"link": "http://127.0.0.1:9/logo.png"}});
    let wamid = accepted(&fake, &image).await;
    assert_eq!(fake.message(&wamid).unwrap().kind(), "image");
    let long_caption = json!({"messaging_product": "whatsapp", "to": USER, "type": "image",
        "image": {"id": "1", "caption": "c".repeat(1025)}});
    let refused = send(&fake, &long_caption).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error()["error"]["message"],
        "(#100) Param image['caption'] must be at most 1024 characters long."
    );
    // Media is free-form too: outside the window it is refused.
    let closed = send(&fake, &with(document, "to", json!(OTHER))).await;
    assert_eq!(closed.error()["error"]["code"], 131047);
    assert_eq!(fake.sent().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_form_needs_the_24_hour_window_on_fake_time() {
    let fake = builder()
        .phone_number(PHONE_NUMBER_ID, DISPLAY_PHONE_NUMBER)
        .phone_number("106540352242923", "15550783882")
        .start()
        .await;
    assert_eq!(fake.now(), T0);
    let refused = send(&fake, &text_to(USER, "Your invoice is due")).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.error(),
        json!({"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException",
            "code": 131047, "error_data": {"messaging_product": "whatsapp",
            "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}})
    );

    // No webhook set: the user's message is recorded and opens the window, nothing is posted.
    let said = fake.user_says(USER, "hi").await;
    assert!(said.deliveries.is_empty());
    let users = fake.user_messages();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].from.as_str(), users[0].text.as_str(), users[0].at),
        (USER, "hi", T0)
    );
    assert_eq!(users[0].wamid, said.wamid);
    assert!(fake.window_open(USER));
    accepted(&fake, &text_to(USER, "Your invoice is due")).await;

    // Per user, and per business number.
    assert_eq!(
        send(&fake, &text_to(OTHER, "x")).await.error()["error"]["code"],
        131047
    );
    let second_number = post(
        &fake.url("/v21.0/106540352242923/messages"),
        Some(&format!("Bearer {TOKEN}")),
        Some("application/json"),
        text_to(USER, "from the other number").to_string(),
    )
    .await;
    assert_eq!(second_number.status, 400);
    assert_eq!(second_number.error()["error"]["code"], 131047);

    // One second before the 24 hours are up, then exactly 24 hours.
    fake.advance(Duration::from_secs(24 * 3600 - 1));
    assert_eq!(fake.now(), T0 + 86_399);
    accepted(&fake, &text_to(USER, "still open")).await;
    fake.advance(Duration::from_secs(1));
    assert!(!fake.window_open(USER));
    assert_eq!(
        send(&fake, &text_to(USER, "closed")).await.error()["error"]["code"],
        131047
    );
    // Templates still go, and the user writing again reopens the window.
    accepted(&fake, &template_to(USER)).await;
    fake.user_says(USER, "are you there?").await;
    let wamid = accepted(&fake, &text_to(USER, "yes")).await;
    assert_eq!(fake.message(&wamid).unwrap().at, T0 + 86_400);
    let texts: Vec<_> = fake
        .sent()
        .iter()
        .map(|m| m.text().map(str::to_owned))
        .collect();
    assert_eq!(
        texts,
        [
            Some("Your invoice is due".to_owned()),
            Some("still open".to_owned()),
            None,
            Some("yes".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_message_posts_a_signed_inbound_webhook_and_can_be_answered_and_marked_read() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let said = fake
        .user_sends(Inbound::text(USER, "Is my invoice paid? ☕").name("Tendai Müller"))
        .await;
    assert_eq!(said.deliveries.len(), 1);
    assert_eq!(said.deliveries[0].status, Some(200), "the hook verified it");
    let received = keel.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, HOOK_PATH);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("facebookexternalua"));
    assert_eq!(
        request.header("x-hub-signature"),
        Some(sha1_header(APP_SECRET, &request.body).as_str())
    );
    let raw = request.text();
    assert!(raw.is_ascii(), "{raw}");
    assert!(raw.contains(r#""name":"Tendai M\u00fcller""#), "{raw}");
    assert!(raw.contains(r#"Is my invoice paid? \u2615"#), "{raw}");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"object": "whatsapp_business_account", "entry": [{"id": BUSINESS_ACCOUNT_ID, "changes": [{
            "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"profile": {"name": "Tendai Müller"}, "wa_id": USER}],
                "messages": [{"from": USER, "id": said.wamid, "timestamp": T0.to_string(), "type": "text",
                              "text": {"body": "Is my invoice paid? ☕"}}]},
            "field": "messages"}]}]})
    );

    // Keel answers inside the window, replying to it, and marks it read.
    let reply = with(
        text_to(USER, "Yes, INV-42 was paid."),
        "context",
        json!({"message_id": said.wamid}),
    );
    let wamid = accepted(&fake, &reply).await;
    assert_eq!(
        fake.message(&wamid).unwrap().reply_to.as_deref(),
        Some(said.wamid.as_str())
    );
    let read = send(
        &fake,
        &json!({"messaging_product": "whatsapp", "status": "read", "message_id": said.wamid}),
    )
    .await;
    assert_eq!(
        (read.status, read.text.as_str()),
        (200, r#"{"success":true}"#)
    );
    assert!(fake.user_messages()[0].read);

    // A pressed quick-reply button, replying to our message.
    fake.user_sends(Inbound::button(USER, "PAID-INV-42", "I paid").reply_to(&wamid))
        .await;
    let message = &posted(&keel)[1]["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(message["type"], "button");
    assert_eq!(
        message["button"],
        json!({"payload": "PAID-INV-42", "text": "I paid"})
    );
    assert_eq!(
        message["context"],
        json!({"from": DISPLAY_PHONE_NUMBER, "id": wamid})
    );
    assert_eq!(fake.user_messages()[1].kind, "button");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_a_send_can_be_accepted_and_fail_in_a_status_webhook() {
    let keel = hook(&[]).await;
    let fake = builder()
        .out_of_window(OutOfWindow::FailInStatus)
        .webhook(hook_url(&keel))
        .start()
        .await;
    let wamid = accepted(&fake, &text_to(USER, "Your invoice is due")).await;
    assert_eq!(fake.message(&wamid).unwrap().failure, Some(131047));
    let deliveries = fake.wait_for_deliveries(1, Duration::from_secs(10)).await;
    assert_eq!(deliveries[0].status, Some(200));
    let body = deliveries[0].json();
    let status = status_of(&body);
    assert_eq!(status["id"], wamid.as_str());
    assert_eq!(status["status"], "failed");
    assert_eq!(status["recipient_id"], USER);
    assert_eq!(
        status["errors"],
        json!([{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}])
    );
    assert!(status.get("conversation").is_none() && status.get("pricing").is_none());
    assert_eq!(posted(&keel), vec![body]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_errors_answer_metas_bodies_once_each() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    fake.open_window(OTHER);
    let cases: [(u32, u16, &str, &str); 11] = [
        (
            131030,
            400,
            "(#131030) Recipient phone number not in allowed list",
            "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.",
        ),
        (
            131026,
            400,
            "(#131026) Message undeliverable",
            "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.",
        ),
        (
            131047,
            400,
            "(#131047) Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
        (
            131049,
            400,
            "(#131049) This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        ),
        (
            130429,
            400,
            "(#130429) Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
        (
            131056,
            400,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ),
        (
            132000,
            400,
            "(#132000) Number of parameters does not match the expected number of params",
            "body: number of localizable_params does not match the expected number of params",
        ),
        (
            132001,
            400,
            "(#132001) Template name does not exist in the translation",
            "The template does not exist in the specified language or the template has not been approved.",
        ),
        (100, 400, "(#100) Invalid parameter", "Invalid parameter"),
        (
            131000,
            500,
            "(#131000) Something went wrong",
            "Message failed to send due to an unknown error.",
        ),
        (
            131016,
            503,
            "(#131016) Service unavailable",
            "A service is temporarily unavailable. Please check the status page for more information.",
        ),
    ];
    for (code, http, message, details) in cases {
        fake.fail_next(code);
        let answer = send(&fake, &text_to(USER, "hello")).await;
        assert_eq!(answer.status, http, "{code}");
        assert_eq!(
            answer.error(),
            json!({"error": {"message": message, "type": "OAuthException", "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details}}}),
            "{code}"
        );
        let known = errors::known(code).unwrap();
        assert_eq!(
            (known.http_status, known.message()),
            (http, message.to_owned())
        );
    }
    assert_eq!(
        errors::KNOWN_CODES.len(),
        cases.len() + 1,
        "190 is tested below"
    );
    assert!(fake.sent().is_empty(), "a refused send is not recorded");
    accepted(&fake, &text_to(USER, "the script is used up")).await;

    // 190 scripted: the token "expired".
    fake.fail_next(190);
    let expired = send(&fake, &text_to(USER, "hello")).await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.error(),
        json!({"error": {"message": "Invalid OAuth access token - Cannot parse access token",
            "type": "OAuthException", "code": 190}})
    );

    // Per recipient, always: a number without WhatsApp.
    fake.fail(Failure::code(131026).to(OTHER).always());
    for _ in 0..2 {
        assert_eq!(
            send(&fake, &text_to(OTHER, "x")).await.error()["error"]["code"],
            131026
        );
    }
    accepted(&fake, &text_to(USER, "others are fine")).await;
    fake.clear_failures();
    accepted(&fake, &text_to(OTHER, "cleared")).await;

    // Twice, with HTTP 429 instead of the table's 400; then an unknown code.
    fake.fail(Failure::code(130429).times(2).http_status(429));
    fake.fail_next(999_999);
    for expected in [429, 429] {
        let answer = send(&fake, &text_to(USER, "x")).await;
        assert_eq!(answer.status, expected);
        assert_eq!(answer.error()["error"]["code"], 130429);
    }
    let unknown = send(&fake, &text_to(USER, "x")).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.error()["error"]["message"],
        "(#999999) Scripted error"
    );
    accepted(&fake, &text_to(USER, "all used")).await;

    // Scripts come after the shape checks: a bad body is still a 100 and keeps the script.
    fake.fail_next(131056);
    let bad = send(&fake, &with(text_to(USER, "x"), "to", json!("+1"))).await;
    assert_eq!(bad.error()["error"]["code"], 100);
    assert_eq!(
        send(&fake, &text_to(USER, "x")).await.error()["error"]["code"],
        131056
    );
    assert_eq!(fake.sent().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_503_to_everything_until_it_ends() {
    let fake = whatsapp().await;
    fake.open_window(USER);
    fake.down(true);
    let expected = json!({"error": {"message": "(#131016) Service unavailable", "type": "OAuthException",
        "code": 131016, "error_data": {"messaging_product": "whatsapp",
        "details": "A service is temporarily unavailable. Please check the status page for more information."}}});
    for _ in 0..3 {
        let answer = send(&fake, &text_to(USER, "hello")).await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.error(), expected);
    }
    let anonymous = post(&fake.messages_url("v21.0"), None, None, "").await;
    assert_eq!(anonymous.status, 503);
    // A day passes while it is down; the window closed meanwhile.
    fake.advance(Duration::from_secs(86_400));
    fake.down(false);
    assert_eq!(
        send(&fake, &text_to(USER, "hello")).await.error()["error"]["code"],
        131047
    );
    accepted(&fake, &template_to(USER)).await;
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.received().len(), 6, "every request is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_biz_opaque_callback_data_is_the_same_message() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let body = with(
        template_to(USER),
        "biz_opaque_callback_data",
        json!("ntf-000042"),
    );
    let first = send(&fake, &body).await;
    assert_eq!(first.status, 200);
    // Keel is killed before it records the wamid; the retried send carries the same key.
    let retried = send(&fake, &body).await;
    assert_eq!(retried.status, 200);
    assert_eq!(
        retried.text, first.text,
        "the first message's wamid, accepted"
    );
    let wamid = first.json()["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sent = fake.sent();
    assert_eq!(sent.len(), 1, "delivered once");
    assert_eq!(sent[0].repeats, 1);
    assert_eq!(
        sent[0].biz_opaque_callback_data.as_deref(),
        Some("ntf-000042")
    );
    assert_eq!(fake.received().len(), 2);

    // The key is echoed in the message's statuses.
    fake.statuses(&wamid, &["sent"]).await;
    assert_eq!(
        status_of(&posted(&keel)[0])["biz_opaque_callback_data"],
        "ntf-000042"
    );

    // Another recipient with the same key is another message.
    let other = accepted(&fake, &with(body.clone(), "to", json!(OTHER))).await;
    assert_ne!(other, wamid);
    // The same key with other content: the fake's own check refuses it.
    let mut changed = body.clone();
    changed["template"]["components"][0]["parameters"][0]["text"] = json!("INV-43");
    let conflict = send(&fake, &changed).await;
    assert_eq!(conflict.status, 400);
    let error = conflict.error();
    assert_eq!(error["error"]["code"], 100);
    let details = error["error"]["error_data"]["details"].as_str().unwrap();
    assert!(
        details.contains("ntf-000042") && details.contains(&wamid),
        "{details}"
    );
    // An empty key, or none, is no key: two sends, two messages.
    fake.open_window(USER);
    let empty = with(text_to(USER, "hi"), "biz_opaque_callback_data", json!(""));
    assert_ne!(accepted(&fake, &empty).await, accepted(&fake, &empty).await);
    let plain = text_to(USER, "hi");
    assert_ne!(accepted(&fake, &plain).await, accepted(&fake, &plain).await);
    assert_eq!(fake.sent().len(), 6);
    assert_eq!(fake.message(&wamid).unwrap().repeats, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_arrive_in_order_signed_with_conversation_and_pricing() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let wamid = accepted(
        &fake,
        &with(
            template_to(USER),
            "biz_opaque_callback_data",
            json!("ntf-1"),
        ),
    )
    .await;
    let deliveries = fake.statuses(&wamid, &["sent", "delivered", "read"]).await;
    assert_eq!(
        deliveries.iter().map(|d| d.status).collect::<Vec<_>>(),
        [Some(200); 3],
        "each verified by the hook"
    );
    let bodies = posted(&keel);
    assert_eq!(bodies.len(), 3);
    for (body, delivery) in bodies.iter().zip(&deliveries) {
        assert_eq!(*body, delivery.json());
        assert_eq!(body["object"], "whatsapp_business_account");
        assert_eq!(body["entry"][0]["id"], BUSINESS_ACCOUNT_ID);
        assert_eq!(body["entry"][0]["changes"][0]["field"], "messages");
        assert_eq!(
            body["entry"][0]["changes"][0]["value"]["metadata"],
            json!({"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID})
        );
    }
    let statuses: Vec<&Value> = bodies.iter().map(status_of).collect();
    let names: Vec<_> = statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sent", "delivered", "read"]);
    let times: Vec<_> = statuses.iter().map(|s| s["timestamp"].clone()).collect();
    assert_eq!(
        times,
        [
            json!(T0.to_string()),
            json!((T0 + 1).to_string()),
            json!((T0 + 2).to_string())
        ]
    );
    for s in &statuses {
        assert_eq!(s["id"], wamid.as_str());
        assert_eq!(s["recipient_id"], USER);
        assert_eq!(s["biz_opaque_callback_data"], "ntf-1");
    }
    let conversation = statuses[0]["conversation"]["id"].as_str().unwrap();
    assert_eq!(conversation.len(), 32);
    assert_eq!(
        statuses[0]["conversation"],
        json!({"id": conversation, "expiration_timestamp": (T0 + 86_400).to_string(),
               "origin": {"type": "utility"}})
    );
    assert_eq!(
        statuses[1]["conversation"],
        json!({"id": conversation, "origin": {"type": "utility"}})
    );
    for s in &statuses[..2] {
        assert_eq!(
            s["pricing"],
            json!({"billable": true, "pricing_model": "CBP", "category": "utility"})
        );
    }
    assert!(statuses[2].get("conversation").is_none() && statuses[2].get("pricing").is_none());
    // Meta's field order, on the wire.
    assert!(
        deliveries[0].body.contains(&format!(
            r#""statuses":[{{"id":"{wamid}","status":"sent","timestamp":"{T0}","recipient_id":"{USER}","biz_opaque_callback_data":"ntf-1","conversation":{{"id":"{conversation}","expiration_timestamp":"{}","origin":{{"type":"utility"}}}},"pricing":{{"billable":true,"pricing_model":"CBP","category":"utility"}}}}]}},"field":"messages"}}]}}]}}"#,
            T0 + 86_400
        )),
        "{}",
        deliveries[0].body
    );

    // A free-form message is a free service conversation; fake time moves the timestamps.
    fake.open_window(USER);
    let text = accepted(&fake, &text_to(USER, "hi")).await;
    fake.advance(Duration::from_secs(90));
    fake.statuses(&text, &["delivered"]).await;
    let delivered = &posted(&keel)[3];
    let status = status_of(delivered);
    assert_eq!(status["timestamp"], (T0 + 90).to_string());
    assert_eq!(
        status["pricing"],
        json!({"billable": false, "pricing_model": "CBP", "category": "service"})
    );
    assert!(status.get("biz_opaque_callback_data").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_can_arrive_out_of_order_and_duplicated() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    let deliveries = fake
        .deliver(
            Webhook::statuses(&wamid, &["sent", "delivered", "read"])
                .out_of_order()
                .duplicated(),
        )
        .await;
    assert_eq!(deliveries.len(), 6);
    assert!(deliveries.iter().all(|d| d.succeeded() && d.attempt == 1));
    let seen: Vec<(String, String)> = posted(&keel)
        .iter()
        .map(|b| {
            let s = status_of(b);
            (
                s["status"].as_str().unwrap().to_owned(),
                s["timestamp"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let at = |n: i64| (T0 + n).to_string();
    assert_eq!(
        seen,
        [
            ("read".to_owned(), at(2)),
            ("read".to_owned(), at(2)),
            ("delivered".to_owned(), at(1)),
            ("delivered".to_owned(), at(1)),
            ("sent".to_owned(), at(0)),
            ("sent".to_owned(), at(0)),
        ]
    );
    let raw: Vec<_> = keel.received().iter().map(|r| r.body.clone()).collect();
    assert_eq!(raw[0], raw[1], "a duplicate is the same bytes");
    assert_eq!(raw[2], raw[3]);

    // Any order, three times over.
    let deliveries = fake
        .deliver(
            Webhook::statuses(&wamid, &["sent", "delivered", "read"])
                .order(&[1, 2, 0])
                .times(3),
        )
        .await;
    let order: Vec<_> = deliveries
        .iter()
        .map(|d| status_of(&d.json())["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "delivered",
            "delivered",
            "delivered",
            "read",
            "read",
            "read",
            "sent",
            "sent",
            "sent"
        ]
    );
    assert_eq!(keel.received().len(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_status_carries_metas_error_item() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    fake.deliver(Webhook::failed(&wamid, 131026)).await;
    let failed = status_of(&posted(&keel)[0]).clone();
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["errors"],
        json!([{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
            "error_data": {"details": "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}])
    );
    // sent, then failed with a chosen code; a status of a message the fake never sent.
    fake.deliver(Webhook::statuses(&wamid, &["sent", "failed"]).error_code(131049))
        .await;
    let bodies = posted(&keel);
    assert!(status_of(&bodies[1])["errors"].is_null());
    assert_eq!(status_of(&bodies[2])["errors"][0]["code"], 131049);
    fake.deliver(Webhook::status("wamid.unknown", "delivered").recipient(OTHER))
        .await;
    let unknown = status_of(&posted(&keel)[3]).clone();
    assert_eq!(
        (unknown["id"].as_str(), unknown["recipient_id"].as_str()),
        (Some("wamid.unknown"), Some(OTHER))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_put_several_events_in_one_body() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let first = accepted(&fake, &template_to(USER)).await;
    let second = accepted(&fake, &template_to(OTHER)).await;
    let events = || {
        Webhook::statuses(&first, &["sent", "delivered"])
            .and(Webhook::status(&second, "sent"))
            .and(Webhook::message(
                Inbound::text(USER, "thanks").name("Tendai"),
            ))
            .and(Webhook::error(131000))
    };

    let one = fake.deliver(events().in_one_body()).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].status, Some(200));
    let body = one[0].json();
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let changes = entries[0]["changes"].as_array().unwrap();
    assert_eq!(
        changes.len(),
        3,
        "statuses, then the message, then the error"
    );
    let statuses: Vec<_> = changes[0]["value"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            (first.as_str(), "sent"),
            (first.as_str(), "delivered"),
            (second.as_str(), "sent")
        ]
    );
    assert_eq!(
        changes[1]["value"]["contacts"][0]["profile"]["name"],
        "Tendai"
    );
    assert_eq!(changes[1]["value"]["messages"][0]["text"]["body"], "thanks");
    assert_eq!(changes[2]["value"]["errors"][0]["code"], 131000);
    assert!(changes.iter().all(|c| c["field"] == "messages"));

    let many = fake.deliver(events().entry_per_event()).await;
    assert_eq!(many.len(), 1);
    let body = many[0].json();
    let entries = body["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "a multi-entry batch");
    assert!(
        entries
            .iter()
            .all(|e| e["id"] == BUSINESS_ACCOUNT_ID && e["changes"].as_array().unwrap().len() == 1)
    );
    assert_eq!(
        entries[2]["changes"][0]["value"]["statuses"][0]["recipient_id"],
        OTHER
    );

    let separate = fake.deliver(events()).await;
    assert_eq!(separate.len(), 5, "one POST per event by default");
    assert_eq!(keel.received().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_md_worked_example_comes_out_byte_for_byte() {
    assert_eq!(VECTOR.len(), 470);
    assert_eq!(
        sha256_header("keel-test-app-secret", VECTOR.as_bytes()),
        VECTOR_SIGNATURE
    );
    assert!(
        sha256_header(
            "keel-test-app-secret",
            VECTOR.replace("\\u00fc", "ü").as_bytes()
        )
        .starts_with("sha256=9c96174d"),
        "the raw UTF-8 form is another signature"
    );

    let keel = hook(&[]).await;
    let fake = FakeWhatsApp::builder()
        .app_secret("keel-test-app-secret")
        .business_account_id("102290129340398")
        .phone_number("106540352242922", "15550783881")
        .webhook(hook_url(&keel))
        .start()
        .await;
    let example = Inbound::text("263771234567", "Is my invoice paid?")
        .name("Tendai Müller")
        .id("wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0E")
        .timestamp(1_767_225_600);
    let signed = fake.signed_bodies(&Webhook::message(example.clone()));
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].body, VECTOR);
    assert_eq!(
        signed[0].header("X-Hub-Signature-256"),
        Some(VECTOR_SIGNATURE)
    );
    assert_eq!(
        signed[0].header("X-Hub-Signature"),
        Some(sha1_header("keel-test-app-secret", VECTOR.as_bytes()).as_str())
    );
    assert!(fake.deliveries().is_empty(), "built, not sent");
    assert!(keel.received().is_empty());

    // Sent for real: the hook gets those exact bytes.
    let said = fake.user_sends(example).await;
    assert_eq!(said.wamid, "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0E");
    assert_eq!(said.deliveries[0].status, Some(200));
    let received = keel.received();
    assert_eq!(received[0].body, VECTOR.as_bytes());
    assert_eq!(
        received[0].header("x-hub-signature-256"),
        Some(VECTOR_SIGNATURE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_ascii_is_escaped_and_the_signature_covers_the_bytes_sent() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let text = "Zahlung für INV-42 😀 \"ok\"\nDanke";
    fake.user_says(USER, text).await;
    let request = &keel.received()[0];
    let raw = request.text();
    assert!(raw.is_ascii());
    assert!(
        raw.contains(r#""body":"Zahlung f\u00fcr INV-42 \ud83d\ude00 \"ok\"\nDanke""#),
        "{raw}"
    );
    let parsed: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        parsed["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"],
        text
    );
    let signature = request.header("x-hub-signature-256").unwrap();
    assert_eq!(signature, sha256_header(APP_SECRET, &request.body));
    // Re-serialising what was parsed gives other bytes, and another signature.
    let reserialised = serde_json::to_string(&parsed).unwrap();
    assert_ne!(reserialised.as_bytes(), request.body.as_slice());
    assert_ne!(
        sha256_header(APP_SECRET, reserialised.as_bytes()),
        signature
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_literal_missing_and_sha1_only_signatures_are_what_they_say() {
    let keel = hook(&[]).await;
    let fake = builder()
        .delivery_attempts(1)
        .webhook(hook_url(&keel))
        .start()
        .await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    let read = || Webhook::status(&wamid, "read");

    let forged = fake.deliver(read().forged()).await;
    assert_eq!(forged.len(), 1);
    assert_eq!(forged[0].status, Some(401), "Keel's hook refuses it");
    let request = &keel.received()[0];
    let header = request.header("x-hub-signature-256").unwrap();
    assert_eq!(header, sha256_header(FORGED_SECRET, &request.body));
    assert_ne!(header, sha256_header(APP_SECRET, &request.body));
    assert_eq!(
        request.header("x-hub-signature"),
        Some(sha1_header(FORGED_SECRET, &request.body).as_str())
    );

    let other_secret = fake.deliver(read().signed_with("an-old-secret")).await;
    assert_eq!(other_secret[0].status, Some(401));
    assert_eq!(
        keel.received()[1].header("x-hub-signature-256"),
        Some(sha256_header("an-old-secret", &keel.received()[1].body).as_str())
    );

    let literal = fake.deliver(read().signature("sha256=deadbeef")).await;
    assert_eq!(literal[0].status, Some(401));
    assert_eq!(
        keel.received()[2].header("x-hub-signature-256"),
        Some("sha256=deadbeef")
    );
    assert_eq!(keel.received()[2].header("x-hub-signature"), None);

    let unsigned = fake.deliver(read().unsigned()).await;
    assert_eq!(unsigned[0].status, Some(401));
    assert_eq!(keel.received()[3].header("x-hub-signature-256"), None);
    assert_eq!(keel.received()[3].header("x-hub-signature"), None);

    let sha1_only = fake.deliver(read().sha1_only()).await;
    assert_eq!(sha1_only[0].status, Some(401), "sha1 alone is not enough");
    let request = &keel.received()[4];
    assert_eq!(request.header("x-hub-signature-256"), None);
    assert_eq!(
        request.header("x-hub-signature"),
        Some(sha1_header(APP_SECRET, &request.body).as_str())
    );

    // Exact bytes of the test's own, genuinely signed, then forged.
    let raw = fake.deliver(Webhook::raw(VECTOR)).await;
    assert_eq!(raw[0].status, Some(200));
    assert_eq!(keel.received()[5].body, VECTOR.as_bytes());
    let raw_forged = fake.deliver(Webhook::raw(VECTOR).forged()).await;
    assert_eq!(raw_forged[0].status, Some(401));

    let genuine = fake.deliver(read()).await;
    assert_eq!(genuine[0].status, Some(200));
    assert_eq!(keel.received().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_get_challenge_passes_only_when_the_bare_challenge_comes_back() {
    let keel = hook(&[]).await;
    let fake = builder().webhook(hook_url(&keel)).start().await;
    let passed = fake.verify_webhook().await;
    assert!(passed.passed(), "{passed:?}");
    assert_eq!(passed.status, Some(200));
    assert!(passed.challenge.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(passed.body, passed.challenge);
    let get = &keel.received()[0];
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.uri,
        format!(
            "{HOOK_PATH}?hub.mode=subscribe&hub.challenge={}&hub.verify_token={VERIFY}",
            passed.challenge
        )
    );
    assert_eq!(
        passed.url,
        format!("{}{}", keel.url_as("127.0.0.1", ""), get.uri)
    );

    let wrong = fake.verify_challenge(&hook_url(&keel), "guess").await;
    assert!(!wrong.passed());
    assert_eq!(wrong.status, Some(403));

    // An echo with a trailing newline, or a JSON string, does not pass.
    let sloppy = FakeProvider::start(|req| {
        let challenge = req.uri.split("hub.challenge=").nth(1).unwrap_or("");
        let challenge = challenge.split('&').next().unwrap_or("");
        if req.uri.contains("json") {
            Reply::text(200, format!("\"{challenge}\""))
        } else {
            Reply::text(200, format!("{challenge}\n"))
        }
    })
    .await;
    for path in ["/newline", "/json"] {
        let outcome = fake
            .verify_challenge(&sloppy.url_as("127.0.0.1", path), VERIFY)
            .await;
        assert_eq!(outcome.status, Some(200));
        assert!(!outcome.passed(), "{outcome:?}");
    }

    // Nobody listening.
    let gone = FakeProvider::start(|_| Reply::status(200)).await;
    let dead = gone.url_as("127.0.0.1", HOOK_PATH);
    gone.stop().await;
    let unreachable = fake.verify_challenge(&dead, VERIFY).await;
    assert!(!unreachable.passed());
    assert_eq!(unreachable.status, None);
    assert!(unreachable.error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_gets_retries_until_it_answers_2xx() {
    let keel = hook(&[500, 503]).await;
    let fake = builder()
        .delivery_attempts(5)
        .webhook(hook_url(&keel))
        .start()
        .await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    let attempts = fake.statuses(&wamid, &["delivered"]).await;
    assert_eq!(
        attempts.iter().map(|d| d.status).collect::<Vec<_>>(),
        [Some(500), Some(503), Some(200)]
    );
    assert_eq!(
        attempts.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        attempts
            .windows(2)
            .all(|w| w[0].body == w[1].body && w[0].headers == w[1].headers)
    );
    assert_eq!(keel.received().len(), 3);
    assert_eq!(fake.deliveries().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_and_stop_at_the_configured_attempts() {
    let keel = hook(&[500, 500, 500, 500]).await;
    let fake = builder()
        .retry_backoff(ms(20))
        .webhook(hook_url(&keel))
        .start()
        .await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    let started = Instant::now();
    let attempts = fake.statuses(&wamid, &["sent"]).await;
    assert!(started.elapsed() >= ms(60), "20 ms, then 40 ms");
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|d| d.status == Some(500) && !d.succeeded())
    );
    tokio::time::sleep(ms(50)).await;
    assert_eq!(keel.received().len(), 3, "no fourth attempt");

    // Nobody listening at the hook.
    let gone = FakeProvider::start(|_| Reply::status(200)).await;
    fake.set_webhook(gone.url_as("127.0.0.1", HOOK_PATH));
    gone.stop().await;
    let attempts = fake.statuses(&wamid, &["delivered"]).await;
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|d| d.status.is_none() && d.error.is_some()),
        "{attempts:#?}"
    );
    assert_eq!(fake.deliveries().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_statuses_follow_each_accepted_message() {
    let keel = hook(&[]).await;
    let fake = builder()
        .auto_statuses(&["sent", "delivered"])
        .webhook(hook_url(&keel))
        .start()
        .await;
    let wamid = accepted(&fake, &template_to(USER)).await;
    let deliveries = fake.wait_for_deliveries(2, Duration::from_secs(10)).await;
    let seen: Vec<_> = deliveries
        .iter()
        .map(|d| {
            let body = d.json();
            let s = status_of(&body);
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (wamid.clone(), "sent".to_owned()),
            (wamid, "delivered".to_owned())
        ]
    );
    assert!(deliveries.iter().all(|d| d.status == Some(200)));
}
