//! The shipped WhatsApp notifier (`plugins/notifier-whatsapp`, built by keel-plugins) in the
//! real plugin host against `keel_testkit::whatsapp::FakeWhatsApp` on loopback: plugin and
//! fake must agree on the wire in both directions.
//!
//! - Sends: the plugin loads with its own manifest and the default `api_base`
//!   (`https://graph.facebook.com`); the host's fake-origin map (what `keel serve
//!   --fake-origin https://graph.facebook.com=http://ADDR` sets) moves the connection to the
//!   fake. One test also points `api_base` at `http://graph.facebook.com:<port>` with the
//!   name resolved to the fake, as the Paynow tests do.
//! - Webhooks: the fake's signed bodies (`signed_bodies`) go to `verify-inbound` as the
//!   kernel's hook route builds the request (method, lower-case headers without
//!   `authorization`/`cookie`, raw query, raw body), and through a small kernel-shaped HTTP
//!   hook the fake itself POSTs to and challenges (`deliver`, `verify_challenge`).
//!
//! Fake time is frozen at 2026-01-01T00:00:00Z, so timestamps are exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keel_plugin_host::notifier::{
    DeliveryStatus, Inbound, InboundEvent, InboundMessage, Message, Notifier, NotifierPlugin,
    Receipt, StatusUpdate, Template,
};
use keel_plugin_host::{
    InboundRequest, OriginOverrides, Plugin, PluginError, PluginFailure, RetryHint,
};
use keel_testkit::plugins::PluginHarness;
use keel_testkit::whatsapp::{
    self, APP_SECRET, Content, Failure, FakeWhatsApp, FakeWhatsAppBuilder, Inbound as UserInbound,
    OutOfWindow, PHONE_NUMBER_ID, SignedBody, VERIFY_TOKEN, Webhook,
};

/// The fake's clock: 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
/// The client, as WhatsApp writes the number and as Keel does (E.164).
const CLIENT: &str = "263771234567";
const CLIENT_E164: &str = "+263771234567";
/// A second client.
const OTHER: &str = "263772000111";
const OTHER_E164: &str = "+263772000111";
/// The access token the fake requires and the plugin is given (not the fake's default, so
/// a test would notice the plugin sending anything but its setting).
const TOKEN: &str = "EAAG-keel-plugin-test-token-7Yq2";
/// The origin the shipped manifest grants and the plugin's `api_base` defaults to.
const GRAPH: &str = "https://graph.facebook.com";

fn rfc3339(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .expect("a valid timestamp")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn builder() -> FakeWhatsAppBuilder {
    FakeWhatsApp::builder()
        .access_token(TOKEN)
        .clock_at(T0)
        .retry_backoff(Duration::from_millis(10))
        .delivery_attempts(2)
}

/// The `[plugins.whatsapp]` section, with the setting names of the plugin's `plugin.toml`.
fn section(token: &str, extra: &str) -> String {
    format!(
        "access_token = \"{token}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n{extra}"
    )
}

/// The shipped component and manifest, as built for this workspace.
fn artifact() -> (Vec<u8>, String) {
    let artifact = &keel_plugins::KEEL_PLUGIN_WHATSAPP;
    let manifest = artifact.manifest().expect("the WhatsApp plugin.toml");
    assert!(
        manifest.contains(&format!("allow = [\"{GRAPH}\"]")),
        "the WhatsApp plugin.toml no longer grants {GRAPH}:\n{manifest}"
    );
    (
        artifact.wasm().expect("the built WhatsApp component"),
        manifest,
    )
}

/// The plugin as `keel serve --fake-origin https://graph.facebook.com=<fake>` runs it: its
/// own manifest, the default `api_base`, `token` as its access token. The harness must
/// outlive the plugin.
async fn load_with_token(fake: &FakeWhatsApp, token: &str) -> (PluginHarness, Plugin) {
    let (wasm, manifest) = artifact();
    let mut origins = OriginOverrides::new();
    origins
        .insert(GRAPH, &fake.origin())
        .expect("the fake is on loopback");
    let mut harness = PluginHarness::new().configure(move |c| c.origin_overrides = origins);
    let plugin = harness
        .load(wasm, &manifest, &section(token, ""))
        .await
        .unwrap_or_else(|e| panic!("loading the WhatsApp plugin: {e}"));
    (harness, plugin)
}

struct Setup {
    fake: FakeWhatsApp,
    _harness: PluginHarness,
    plugin: Plugin,
}

impl Setup {
    async fn start(builder: FakeWhatsAppBuilder) -> Self {
        let fake = builder.start().await;
        let (harness, plugin) = load_with_token(&fake, TOKEN).await;
        Self {
            fake,
            _harness: harness,
            plugin,
        }
    }

    fn notifier(&self) -> NotifierPlugin {
        self.plugin
            .notifier()
            .expect("the WhatsApp plugin is a notifier")
    }

    async fn send(&self, msg: Message) -> Result<Receipt, PluginFailure> {
        self.notifier().send(msg).await
    }

    /// `verify-inbound` of one signed body, POSTed as the kernel hands it over.
    async fn post(&self, signed: &SignedBody) -> Result<Inbound, PluginFailure> {
        self.notifier()
            .verify_inbound(posted(signed.body.as_bytes(), &signed.headers))
            .await
    }
}

fn text(reference: &str, to: &str, body: &str) -> Message {
    Message {
        reference: reference.into(),
        to: to.into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    }
}

fn template(reference: &str, to: &str, name: &str, parameters: &[&str]) -> Message {
    Message {
        reference: reference.into(),
        to: to.into(),
        subject: None,
        body: "Invoice INV-42 is due".into(),
        template: Some(Template {
            name: name.into(),
            language: "en".into(),
            parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
            header: None,
            buttons: Vec::new(),
        }),
        attachment: None,
    }
}

/// A POST as the kernel's hook route builds it: header names lower-case (as `http` keeps
/// them), credentials meant for Keel dropped, the raw body.
fn posted(body: &[u8], headers: &[(String, String)]) -> InboundRequest {
    InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| n != "authorization" && n != "cookie")
            .collect(),
        body: body.to_vec(),
    }
}

fn refused(result: Result<impl std::fmt::Debug, PluginFailure>) -> String {
    match result {
        Err(PluginFailure::Plugin(PluginError::Refused(m))) => m,
        other => panic!("expected refused, got {other:?}"),
    }
}

fn unavailable(result: Result<impl std::fmt::Debug, PluginFailure>) -> RetryHint {
    match result {
        Err(PluginFailure::Plugin(PluginError::Unavailable(hint))) => hint,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

fn misconfigured(result: Result<impl std::fmt::Debug, PluginFailure>) -> String {
    match result {
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => m,
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

/// A status event as expected, without its time: compare with [`timeless`] events (the
/// times are checked against the bodies by [`expected_events`]).
fn status(provider_id: &str, status: DeliveryStatus, detail: Option<String>) -> InboundEvent {
    InboundEvent::Status(StatusUpdate {
        provider_id: provider_id.into(),
        status,
        detail,
        at: None,
    })
}

/// `events` with each status's time taken out, once checked to be there and RFC 3339.
#[track_caller]
fn timeless(events: impl IntoIterator<Item = InboundEvent>) -> Vec<InboundEvent> {
    events
        .into_iter()
        .map(|e| match e {
            InboundEvent::Status(mut s) => {
                let at =
                    s.at.take()
                        .unwrap_or_else(|| panic!("a status without its time: {s:?}"));
                assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at}");
                InboundEvent::Status(s)
            }
            other => other,
        })
        .collect()
}

/// What the plugin should make of every status and message of a notification body the
/// fake built, read from the body itself: the fake is the source of truth for the wire.
fn expected_events(body: &serde_json::Value) -> Vec<InboundEvent> {
    let mut events = Vec::new();
    assert_eq!(body["object"], "whatsapp_business_account");
    for entry in body["entry"].as_array().expect("entry[]") {
        for change in entry["changes"].as_array().expect("changes[]") {
            assert_eq!(change["field"], "messages");
            let value = &change["value"];
            for s in value["statuses"].as_array().into_iter().flatten() {
                let delivery = match s["status"].as_str().unwrap() {
                    "sent" => DeliveryStatus::Sent,
                    "delivered" => DeliveryStatus::Delivered,
                    "read" => DeliveryStatus::Read,
                    "failed" => DeliveryStatus::Failed,
                    other => panic!("status {other} in a test body"),
                };
                let detail = s["errors"]
                    .as_array()
                    .filter(|e| !e.is_empty())
                    .map(|errors| {
                        errors
                            .iter()
                            .map(|e| {
                                format!(
                                    "{} {}: {}",
                                    e["code"],
                                    e["title"].as_str().unwrap(),
                                    e["error_data"]["details"].as_str().unwrap()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                let timestamp: i64 = s["timestamp"].as_str().unwrap().parse().unwrap();
                events.push(InboundEvent::Status(StatusUpdate {
                    provider_id: s["id"].as_str().unwrap().into(),
                    status: delivery,
                    detail,
                    at: Some(rfc3339(timestamp)),
                }));
            }
            for m in value["messages"].as_array().into_iter().flatten() {
                assert_eq!(m["type"], "text", "only text messages in these bodies");
                let timestamp: i64 = m["timestamp"].as_str().unwrap().parse().unwrap();
                events.push(InboundEvent::Message(InboundMessage {
                    provider_id: m["id"].as_str().unwrap().into(),
                    sender: format!("+{}", m["from"].as_str().unwrap()),
                    body: m["text"]["body"].as_str().unwrap().into(),
                    received_at: rfc3339(timestamp),
                }));
            }
        }
    }
    events
}

// ---- sending ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_inside_the_window_is_the_message_the_fake_records() {
    let s = Setup::start(builder()).await;
    let info = s.plugin.info().expect("described at load");
    assert_eq!(info.name, "WhatsApp");

    // The client writes first: the 24-hour window opens (no webhook set: nothing posted).
    let said = s.fake.user_says(CLIENT, "Is my invoice paid?").await;
    assert!(said.deliveries.is_empty());
    assert!(s.fake.window_open(CLIENT));

    let body =
        "Invoice INV-42 is due: USD 25.00 by 31 January. Pay at https://pay.example/42 — ndatenda!";
    let receipt = s.send(text("ntf-000042", CLIENT_E164, body)).await.unwrap();

    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(
        receipt.provider_id, m.wamid,
        "the receipt carries the fake's wamid"
    );
    assert!(m.wamid.starts_with("wamid."), "{}", m.wamid);
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    assert_eq!(m.to, CLIENT, "WhatsApp gets the digits without `+`");
    assert_eq!(m.phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(m.version, "v21.0", "the default graph_version");
    assert_eq!(
        m.content,
        Content::Text {
            body: body.into(),
            preview_url: true
        }
    );
    assert_eq!(m.biz_opaque_callback_data.as_deref(), Some("ntf-000042"));
    assert_eq!(m.reply_to, None);
    assert_eq!(m.at, T0);
    assert_eq!(m.repeats, 0);
    assert_eq!(m.failure, None);
    assert_eq!(
        m.request,
        serde_json::json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CLIENT,
            "type": "text",
            "text": {"preview_url": true, "body": body},
            "biz_opaque_callback_data": "ntf-000042",
        })
    );

    // On the wire: the path under the default base, the bearer token, JSON.
    let received = s.fake.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.uri, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));

    // A retry of the same notification (Keel killed before it recorded the wamid): the
    // plugin passes the same reference, the fake answers the first wamid and records no
    // second message.
    let again = s.send(text("ntf-000042", CLIENT_E164, body)).await.unwrap();
    assert_eq!(again.provider_id, receipt.provider_id);
    assert_eq!(again.status, DeliveryStatus::Accepted);
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1, "one message reached the client: {sent:?}");
    assert_eq!(sent[0].repeats, 1);
    assert_eq!(s.fake.received().len(), 2, "the retry did reach the fake");

    // Another reference is another message.
    let other = s
        .send(text(
            "ntf-000043",
            CLIENT_E164,
            "Thank you, payment received.",
        ))
        .await
        .unwrap();
    assert_ne!(other.provider_id, receipt.provider_id);
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].wamid, other.provider_id);
    assert_eq!(sent[1].text(), Some("Thank you, payment received."));
    assert_eq!(
        sent[1].biz_opaque_callback_data.as_deref(),
        Some("ntf-000043")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_text_is_refused_and_a_template_goes() {
    let s = Setup::start(builder().template("invoice_due", "en", 2)).await;

    // Never wrote: free-form text is refused with 131047, typed, naming the template need.
    let m = refused(
        s.send(text("ntf-1", CLIENT_E164, "Your invoice is due"))
            .await,
    );
    assert!(m.contains("131047"), "{m}");
    assert!(m.contains("template"), "{m}");
    assert!(m.contains("24 hours"), "{m}");
    assert!(s.fake.sent().is_empty(), "nothing recorded as sent");
    assert_eq!(s.fake.received().len(), 1, "the send did reach the fake");

    // Wrote 25 hours ago: the window has closed again.
    s.fake.open_window(CLIENT);
    s.fake.advance(Duration::from_secs(25 * 3600));
    assert!(!s.fake.window_open(CLIENT));
    let m = refused(
        s.send(text("ntf-2", CLIENT_E164, "Your invoice is due"))
            .await,
    );
    assert!(m.contains("131047") && m.contains("template"), "{m}");
    assert!(s.fake.sent().is_empty());

    // A template goes outside the window, its parameters filling the body in order.
    let receipt = s
        .send(template(
            "ntf-3",
            CLIENT_E164,
            "invoice_due",
            &["INV-42", "USD 25.00"],
        ))
        .await
        .unwrap();
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(receipt.provider_id, m.wamid);
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    assert_eq!(m.to, CLIENT);
    assert_eq!(m.kind(), "template");
    assert_eq!(m.template_name(), Some("invoice_due"));
    assert_eq!(m.body_parameters(), vec!["INV-42", "USD 25.00"]);
    match &m.content {
        Content::Template {
            language,
            components,
            ..
        } => {
            assert_eq!(language, "en");
            assert_eq!(components.len(), 1, "{components:?}");
            assert_eq!(components[0].kind, "body");
            assert!(components[0].parameters.iter().all(|p| p.kind == "text"));
        }
        other => panic!("a template, not {other:?}"),
    }
    assert_eq!(m.biz_opaque_callback_data.as_deref(), Some("ntf-3"));
    assert_eq!(m.at, T0 + 25 * 3600);

    // A template the account does not have (132001) and a parameter count it does not
    // take (132000) are invalid input with Meta's words.
    for (reference, name, parameters, code) in [
        ("ntf-4", "receipt", &["INV-42"][..], "132001"),
        ("ntf-5", "invoice_due", &["INV-42"][..], "132000"),
    ] {
        match s
            .send(template(reference, CLIENT_E164, name, parameters))
            .await
        {
            Err(PluginFailure::Plugin(PluginError::InvalidInput(m))) => {
                assert!(m.contains(code), "{code}: {m}")
            }
            other => panic!("{code}: expected invalid input, got {other:?}"),
        }
    }
    assert_eq!(s.fake.sent().len(), 1);

    // A number that is not E.164 never leaves the plugin.
    let before = s.fake.received().len();
    match s.send(text("ntf-6", CLIENT, "hi")).await {
        Err(PluginFailure::Plugin(PluginError::InvalidInput(m))) => {
            assert!(m.contains("E.164"), "{m}")
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(s.fake.received().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_errors_map_to_what_the_kernel_does_next() {
    let s = Setup::start(builder()).await;
    s.fake.open_window(CLIENT);
    let msg = |reference: &str| text(reference, CLIENT_E164, "Invoice INV-42 is due");

    // 190: the token is invalid or expired; misconfigured, and the token is nowhere in it.
    s.fake.fail_next(190);
    let m = misconfigured(s.send(msg("ntf-1")).await);
    assert!(m.contains("190") && m.contains("access token"), "{m}");
    assert!(!m.contains(TOKEN), "the token leaked: {m}");

    // 130429 (throughput), as Meta's table lists it (HTTP 400) and as a 429.
    s.fake.fail_next(130429);
    let hint = unavailable(s.send(msg("ntf-2")).await);
    assert!(hint.reason.contains("130429"), "{hint:?}");
    assert_eq!(
        hint.retry_after_seconds, None,
        "the fake sends no Retry-After"
    );
    s.fake.fail(Failure::code(130429).http_status(429));
    let hint = unavailable(s.send(msg("ntf-3")).await);
    assert!(hint.reason.contains("130429"), "{hint:?}");

    // 131056 (pair rate limit) for one recipient only.
    s.fake.fail(Failure::code(131056).to(CLIENT));
    let hint = unavailable(s.send(msg("ntf-4")).await);
    assert!(hint.reason.contains("131056"), "{hint:?}");

    // An outage: 503 with 131016 on every request while down.
    s.fake.down(true);
    for reference in ["ntf-5", "ntf-6"] {
        let hint = unavailable(s.send(msg(reference)).await);
        assert!(hint.reason.contains("131016"), "{hint:?}");
        assert!(!hint.reason.contains(TOKEN), "{hint:?}");
    }
    s.fake.down(false);

    // Undeliverable (131026) is refused, final.
    s.fake.fail(Failure::code(131026).to(CLIENT));
    let m = refused(s.send(msg("ntf-7")).await);
    assert!(m.contains("131026"), "{m}");

    assert!(
        s.fake.sent().is_empty(),
        "no failed send was recorded: {:?}",
        s.fake.sent()
    );
    assert_eq!(s.fake.received().len(), 7, "every attempt reached the fake");

    // After all that, the same notification goes through once.
    let receipt = s.send(msg("ntf-2")).await.unwrap();
    let sent = s.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].wamid, receipt.provider_id);
    assert_eq!(sent[0].biz_opaque_callback_data.as_deref(), Some("ntf-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_access_token_is_misconfigured_without_showing_it() {
    const WRONG: &str = "EAAG-revoked-token-Zx81";
    let fake = builder().start().await;
    fake.open_window(CLIENT);
    let (_harness, plugin) = load_with_token(&fake, WRONG).await;
    let result = plugin
        .notifier()
        .unwrap()
        .send(text("ntf-1", CLIENT_E164, "hi"))
        .await;
    let m = misconfigured(result);
    assert!(m.contains("190") && m.contains("access_token"), "{m}");
    assert!(!m.contains(WRONG), "the token leaked: {m}");
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {WRONG}").as_str()),
        "the plugin sent its setting"
    );
    assert!(fake.sent().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_base_with_the_name_resolved_to_the_fake_works_too() {
    // The Paynow tests' way: a copy of the manifest granting the fake's origin under the real
    // host name, `api_base` pointing there, the name resolved to loopback, the network
    // allowed.
    let fake = builder().start().await;
    fake.open_window(CLIENT);
    let (wasm, manifest) = artifact();
    let origin = format!("http://graph.facebook.com:{}", fake.port());
    let manifest = manifest.replace(&format!("\"{GRAPH}\""), &format!("\"{origin}\""));
    let mut harness = PluginHarness::new().resolve("graph.facebook.com", fake.ip());
    let extra = format!(
        "api_base = \"{origin}/\"\ngraph_version = \"v22.0\"\nallow_networks = [\"{}/32\"]\n",
        fake.ip()
    );
    let plugin = harness
        .load(wasm, &manifest, &section(TOKEN, &extra))
        .await
        .unwrap_or_else(|e| panic!("loading the WhatsApp plugin: {e}"));
    let receipt = plugin
        .notifier()
        .unwrap()
        .send(text("ntf-9", CLIENT_E164, "hi"))
        .await
        .unwrap();
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].wamid, receipt.provider_id);
    assert_eq!(sent[0].version, "v22.0");
    assert_eq!(
        fake.received()[0].uri,
        format!("/v22.0/{PHONE_NUMBER_ID}/messages"),
        "no double slash from the trailing one in api_base"
    );
}

// ---- webhooks, fed to verify-inbound ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fakes_signed_webhooks_are_the_events_it_meant() {
    let s = Setup::start(builder()).await;
    s.fake.open_window(CLIENT);
    let text_id = s
        .send(text("ntf-1", CLIENT_E164, "Invoice INV-42 is due"))
        .await
        .unwrap()
        .provider_id;
    let template_id = s
        .send(template("ntf-2", OTHER_E164, "invoice_due", &["INV-43"]))
        .await
        .unwrap()
        .provider_id;

    // sent, delivered, read: one POST each, each the status of the wamid.
    let bodies = s
        .fake
        .signed_bodies(&Webhook::statuses(&text_id, &["sent", "delivered", "read"]));
    assert_eq!(bodies.len(), 3);
    for (signed, expected) in bodies.iter().zip([
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Read,
    ]) {
        // The fake echoes the reference the plugin sent.
        let item = &signed.json()["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(item["biz_opaque_callback_data"], "ntf-1");
        assert_eq!(item["recipient_id"], CLIENT);
        let inbound = s.post(signed).await.unwrap();
        assert_eq!(inbound.reply.status, 200);
        assert!(inbound.reply.body.is_empty());
        assert_eq!(
            timeless(inbound.events.clone()),
            vec![status(&text_id, expected, None)]
        );
        assert_eq!(inbound.events, expected_events(&signed.json()));
    }

    // failed, with the catalogue's error: the detail is `<code> <title>: <details>`.
    let bodies = s.fake.signed_bodies(&Webhook::failed(&template_id, 131026));
    assert_eq!(bodies.len(), 1);
    let inbound = s.post(&bodies[0]).await.unwrap();
    let known = whatsapp::errors::known(131026).unwrap();
    assert_eq!(
        timeless(inbound.events.clone()),
        vec![status(
            &template_id,
            DeliveryStatus::Failed,
            Some(format!("131026 {}: {}", known.title, known.details))
        )]
    );
    assert_eq!(inbound.events, expected_events(&bodies[0].json()));

    // An inbound message with non-ASCII (escaped on the wire as Meta does).
    let words = "Ndatenda! Ko invoice yangu — yakabhadharwa here? Müller, ¿sí? 😀";
    let inbound_id = "wamid.HBgMMjYzNzcxMjM0NTY3FQIAEhgUM0VCMEZBNTk3QkE3OTk0RjE2NjAA";
    let bodies = s.fake.signed_bodies(&Webhook::message(
        UserInbound::text(CLIENT, words)
            .name("Tendai Müller")
            .id(inbound_id),
    ));
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].body.is_ascii(), "{}", bodies[0].body);
    assert!(
        bodies[0].body.contains("M\\u00fcller"),
        "{}",
        bodies[0].body
    );
    let inbound = s.post(&bodies[0]).await.unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert_eq!(
        inbound.events,
        vec![InboundEvent::Message(InboundMessage {
            provider_id: inbound_id.into(),
            sender: CLIENT_E164.into(),
            body: words.into(),
            received_at: "2026-01-01T00:00:00Z".into(),
        })]
    );

    // A quick-reply button is its text; an explicit timestamp is the message's time.
    let bodies = s.fake.signed_bodies(&Webhook::message(
        UserInbound::button(OTHER, "PAY_NOW", "Pay now")
            .id("wamid.button-1")
            .timestamp(T0 - 90),
    ));
    let inbound = s.post(&bodies[0]).await.unwrap();
    assert_eq!(
        inbound.events,
        vec![InboundEvent::Message(InboundMessage {
            provider_id: "wamid.button-1".into(),
            sender: OTHER_E164.into(),
            body: "Pay now".into(),
            received_at: "2025-12-31T23:58:30Z".into(),
        })]
    );

    // A batch in one body: statuses of both messages (read before delivered) and a reply,
    // every one in order; and the same as one entry per event.
    let batch = Webhook::statuses(&text_id, &["read", "delivered"])
        .and(Webhook::message(
            UserInbound::text(CLIENT, "Nimabhadhara nezuro.").id("wamid.reply-1"),
        ))
        .and(Webhook::statuses(&template_id, &["sent", "failed"]))
        .error_code(131049);
    for (grouping, webhook) in [
        ("one entry", batch.clone().in_one_body()),
        ("entry per event", batch.clone().entry_per_event()),
    ] {
        let bodies = s.fake.signed_bodies(&webhook);
        assert_eq!(bodies.len(), 1, "{grouping}");
        let inbound = s.post(&bodies[0]).await.unwrap();
        let known = whatsapp::errors::known(131049).unwrap();
        assert_eq!(
            timeless(inbound.events.clone()),
            vec![
                status(&text_id, DeliveryStatus::Read, None),
                status(&text_id, DeliveryStatus::Delivered, None),
                InboundEvent::Message(InboundMessage {
                    provider_id: "wamid.reply-1".into(),
                    sender: CLIENT_E164.into(),
                    body: "Nimabhadhara nezuro.".into(),
                    received_at: rfc3339(T0 + 2),
                }),
                status(&template_id, DeliveryStatus::Sent, None),
                status(
                    &template_id,
                    DeliveryStatus::Failed,
                    Some(format!("131049 {}: {}", known.title, known.details))
                ),
            ],
            "{grouping}: {}",
            bodies[0].body
        );
        assert_eq!(
            inbound.events,
            expected_events(&bodies[0].json()),
            "{grouping}"
        );
    }

    // An error not tied to a message: 200, no events.
    let bodies = s.fake.signed_bodies(&Webhook::error(131000));
    let inbound = s.post(&bodies[0]).await.unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert!(inbound.events.is_empty(), "{:?}", inbound.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unsigned_and_tampered_webhooks_are_refused() {
    let s = Setup::start(builder()).await;
    s.fake.open_window(CLIENT);
    let wamid = s
        .send(text("ntf-1", CLIENT_E164, "Invoice INV-42 is due"))
        .await
        .unwrap()
        .provider_id;
    let delivered = Webhook::status(&wamid, "delivered");

    // Signed with another secret (both headers).
    let forged = s.fake.signed_bodies(&delivered.clone().forged());
    assert!(forged[0].header("X-Hub-Signature-256").is_some());
    let m = refused(s.post(&forged[0]).await);
    assert!(m.contains("signature mismatch"), "{m}");
    assert!(!m.contains(APP_SECRET), "{m}");
    let expected = whatsapp::wire::signature_256(APP_SECRET, forged[0].body.as_bytes());
    assert!(
        !m.contains(expected.trim_start_matches("sha256=")),
        "the expected signature is shown: {m}"
    );

    // No signature at all.
    let unsigned = s.fake.signed_bodies(&delivered.clone().unsigned());
    assert_eq!(unsigned[0].header("X-Hub-Signature-256"), None);
    let m = refused(s.post(&unsigned[0]).await);
    assert!(m.contains("missing signature"), "{m}");

    // Only the old SHA-1 header, genuine: not enough.
    let sha1 = s.fake.signed_bodies(&delivered.clone().sha1_only());
    let m = refused(s.post(&sha1[0]).await);
    assert!(
        m.contains("missing signature") && m.contains("SHA-1"),
        "{m}"
    );

    // A genuine signature over other bytes (the body changed on the way).
    let genuine = s.fake.signed_bodies(&delivered);
    let tampered = genuine[0].body.replace("delivered", "read");
    assert_ne!(tampered, genuine[0].body);
    let m = refused(
        s.notifier()
            .verify_inbound(posted(tampered.as_bytes(), &genuine[0].headers))
            .await,
    );
    assert!(m.contains("signature mismatch"), "{m}");

    // A malformed header.
    let malformed = s
        .fake
        .signed_bodies(&delivered.clone().signature("md5=0123456789abcdef"));
    let m = refused(s.post(&malformed[0]).await);
    assert!(m.contains("malformed signature"), "{m}");

    // The genuine one still passes, with the header in the case Meta writes it too.
    let inbound = s
        .notifier()
        .verify_inbound(InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: genuine[0].headers.clone(),
            body: genuine[0].body.clone().into_bytes(),
        })
        .await
        .unwrap();
    assert_eq!(
        timeless(inbound.events),
        vec![status(&wamid, DeliveryStatus::Delivered, None)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_check_gets_the_bare_challenge() {
    let s = Setup::start(builder()).await;
    // The request the fake's verify_challenge makes: GET with the three hub.* parameters.
    let get = |query: String| InboundRequest {
        method: "GET".into(),
        path: "/".into(),
        query,
        headers: vec![(
            "user-agent".into(),
            "facebookplatform/1.0 (+http://developers.facebook.com)".into(),
        )],
        body: Vec::new(),
    };
    let inbound = s
        .notifier()
        .verify_inbound(get(format!(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
        )))
        .await
        .unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert_eq!(inbound.reply.body, b"1158201444");
    assert!(
        inbound
            .reply
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("text/plain")),
        "{:?}",
        inbound.reply.content_type
    );
    assert!(inbound.events.is_empty());

    let m = refused(
        s.notifier()
            .verify_inbound(get(
                "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess".into(),
            ))
            .await,
    );
    assert!(m.contains("verify token mismatch"), "{m}");
    assert!(!m.contains(VERIFY_TOKEN), "{m}");
    let m = refused(
        s.notifier()
            .verify_inbound(get(format!(
                "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}"
            )))
            .await,
    );
    assert!(m.contains("not a subscribe request"), "{m}");
}

// ---- the fake itself calling a kernel-shaped hook ----

/// A stand-in for Keel's notifier webhook route (which comes with the WhatsApp channel
/// work): the request handed to `verify-inbound` as the gateway route hands it over, the
/// plugin's reply answered, `refused` as 400 and any other failure as 503; the events kept.
struct Hook {
    server: keel_testkit::RunningServer,
    events: Arc<Mutex<Vec<InboundEvent>>>,
}

impl Hook {
    async fn start(plugin: &Plugin) -> Self {
        let notifier = plugin.notifier().expect("a notifier");
        let events = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&events);
        let app = axum::Router::new().route(
            "/hooks/notifiers/whatsapp",
            axum::routing::any(
                move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                    let notifier = notifier.clone();
                    let kept = Arc::clone(&kept);
                    async move {
                        let request = InboundRequest {
                            method: method.to_string(),
                            path: "/".into(),
                            query: uri.query().unwrap_or_default().to_owned(),
                            headers: headers
                                .iter()
                                .filter(|(n, _)| {
                                    *n != header::AUTHORIZATION && *n != header::COOKIE
                                })
                                .map(|(n, v)| {
                                    (
                                        n.to_string(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect(),
                            body: body.to_vec(),
                        };
                        hook_reply(notifier.verify_inbound(request).await, &kept)
                    }
                },
            ),
        );
        let server = keel_testkit::spawn_server(move |listener, shutdown| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .ok();
        })
        .await;
        Self { server, events }
    }

    fn url(&self) -> String {
        self.server.url("/hooks/notifiers/whatsapp")
    }

    fn events(&self) -> Vec<InboundEvent> {
        self.events.lock().unwrap().clone()
    }
}

fn hook_reply(result: Result<Inbound, PluginFailure>, kept: &Mutex<Vec<InboundEvent>>) -> Response {
    match result {
        Ok(inbound) => {
            kept.lock().unwrap().extend(inbound.events);
            let status = StatusCode::from_u16(inbound.reply.status).unwrap_or(StatusCode::OK);
            let mut response = (status, inbound.reply.body).into_response();
            if let Some(ct) = inbound.reply.content_type
                && let Ok(v) = header::HeaderValue::from_str(&ct)
            {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            response
        }
        Err(PluginFailure::Plugin(PluginError::Refused(m))) => {
            (StatusCode::BAD_REQUEST, m).into_response()
        }
        Err(other) => (StatusCode::SERVICE_UNAVAILABLE, other.to_string()).into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_as_meta_verifies_and_posts_to_a_kernel_shaped_hook() {
    let s = Setup::start(builder()).await;
    let hook = Hook::start(&s.plugin).await;
    s.fake.set_webhook(hook.url());

    // Meta's subscription check, over HTTP, as the fake makes it.
    let challenge = s.fake.verify_webhook().await;
    assert!(challenge.passed(), "{challenge:?}");
    assert_eq!(challenge.status, Some(200));
    assert_eq!(challenge.body, challenge.challenge);
    assert!(
        challenge.url.contains("hub.mode=subscribe"),
        "{}",
        challenge.url
    );
    let wrong = s.fake.verify_challenge(&hook.url(), "guess").await;
    assert!(!wrong.passed(), "{wrong:?}");
    assert_eq!(wrong.status, Some(400));
    assert!(wrong.body.contains("verify token mismatch"), "{wrong:?}");

    // The client writes (the window opens and Keel hears of it, signed), Keel answers in
    // the window, the statuses come back out of order.
    let said = s
        .fake
        .user_says(CLIENT, "Invoice yangu yakabhadharwa here? ü")
        .await;
    assert_eq!(said.deliveries.len(), 1, "{:?}", said.deliveries);
    assert!(said.deliveries[0].succeeded(), "{:?}", said.deliveries);
    let receipt = s
        .send(text("ntf-1", CLIENT_E164, "Hongu, tatenda."))
        .await
        .unwrap();
    let deliveries = s
        .fake
        .deliver(
            Webhook::statuses(&receipt.provider_id, &["sent", "delivered", "read"]).out_of_order(),
        )
        .await;
    assert_eq!(deliveries.len(), 3, "one attempt each: {deliveries:?}");
    assert!(deliveries.iter().all(|d| d.succeeded()), "{deliveries:?}");

    // A forged one is answered 400 (refused) and retried by the fake, never accepted.
    let forged = s
        .fake
        .deliver(Webhook::status(&receipt.provider_id, "failed").forged())
        .await;
    assert_eq!(forged.len(), 2, "both attempts: {forged:?}");
    assert!(forged.iter().all(|d| d.status == Some(400)), "{forged:?}");

    assert_eq!(
        timeless(hook.events()),
        vec![
            InboundEvent::Message(InboundMessage {
                provider_id: said.wamid.clone(),
                sender: CLIENT_E164.into(),
                body: "Invoice yangu yakabhadharwa here? ü".into(),
                received_at: "2026-01-01T00:00:00Z".into(),
            }),
            status(&receipt.provider_id, DeliveryStatus::Read, None),
            status(&receipt.provider_id, DeliveryStatus::Delivered, None),
            status(&receipt.provider_id, DeliveryStatus::Sent, None),
        ]
    );
    assert_eq!(s.fake.user_messages()[0].wamid, said.wamid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_the_fake_posts_on_its_own_reach_the_hook_as_events() {
    // Meta's other out-of-window behaviour (accepted, then a `failed` status with 131047),
    // and statuses posted in the background after each accepted message.
    let s = Setup::start(
        builder()
            .out_of_window(OutOfWindow::FailInStatus)
            .auto_statuses(&["sent", "delivered"]),
    )
    .await;
    let hook = Hook::start(&s.plugin).await;
    s.fake.set_webhook(hook.url());

    let late = s
        .send(text("ntf-1", CLIENT_E164, "Your invoice is due"))
        .await
        .unwrap();
    assert_eq!(late.status, DeliveryStatus::Accepted);
    assert_eq!(
        s.fake.message(&late.provider_id).unwrap().failure,
        Some(131047)
    );
    let deliveries = s.fake.wait_for_deliveries(1, Duration::from_secs(10)).await;
    assert!(deliveries[0].succeeded(), "{deliveries:?}");
    let known = whatsapp::errors::known(131047).unwrap();
    assert_eq!(
        timeless(hook.events()),
        vec![status(
            &late.provider_id,
            DeliveryStatus::Failed,
            Some(format!("131047 {}: {}", known.title, known.details))
        )]
    );

    s.fake.open_window(CLIENT);
    let ok = s
        .send(text("ntf-2", CLIENT_E164, "Thank you, payment received."))
        .await
        .unwrap();
    let deliveries = s.fake.wait_for_deliveries(3, Duration::from_secs(10)).await;
    assert!(deliveries.iter().all(|d| d.succeeded()), "{deliveries:?}");

    // At least once: a duplicated body is passed on twice (the kernel dedupes).
    let twice = s
        .fake
        .deliver(Webhook::status(&ok.provider_id, "read").duplicated())
        .await;
    assert_eq!(twice.len(), 2);
    assert_eq!(twice[0].body, twice[1].body);
    assert_eq!(
        timeless(hook.events()[1..].to_vec()),
        [
            status(&ok.provider_id, DeliveryStatus::Sent, None),
            status(&ok.provider_id, DeliveryStatus::Delivered, None),
            status(&ok.provider_id, DeliveryStatus::Read, None),
            status(&ok.provider_id, DeliveryStatus::Read, None),
        ]
    );
}
