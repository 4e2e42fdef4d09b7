//! The built component in Keel's real plugin host, against a loopback fake webhook.
//!
//! The manifest declares `https://hooks.example.com`; the fake listens on plain HTTP on
//! 127.0.0.1 and a random port. So each test loads a copy of the manifest that declares
//! `http://hooks.example.com:<port>`, points that name at the fake in the harness's
//! resolver, and allows the loopback network in the section (`allow_networks`), as an
//! admin would for a webhook on a private address.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use keel_plugin_host::notifier::{DeliveryStatus, InboundEvent, Message, Notifier, StatusUpdate};
use keel_plugin_host::{Features, InboundRequest, Plugin, PluginError, PluginFailure, RetryHint};
use keel_testkit::plugins::{FakeProvider, PluginHarness, Reply};
use sha2::Sha256;

const SECRET: &str = "whsec_test";
const MANIFEST_HOST: &str = "\"https://hooks.example.com\"";

/// The component, built once per test run (`cargo build --release --target wasm32-wasip2`).
fn wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| keel_testkit::plugins::build_plugin(env!("CARGO_MANIFEST_DIR")))
}

/// `plugin.toml` with its one host moved to the fake's port over plain HTTP.
fn manifest_for(provider: &FakeProvider) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin.toml")).unwrap();
    assert!(
        text.contains(MANIFEST_HOST),
        "plugin.toml no longer declares {MANIFEST_HOST}"
    );
    text.replace(
        MANIFEST_HOST,
        &format!("\"http://hooks.example.com:{}\"", provider.port()),
    )
}

/// Loads the plugin with `url` as its endpoint, the loopback network allowed.
async fn load(provider: &FakeProvider, url: &str) -> Plugin {
    let mut harness = PluginHarness::new().resolve("hooks.example.com", provider.ip());
    let section =
        format!("url = \"{url}\"\nsecret = \"{SECRET}\"\nallow_networks = [\"127.0.0.1/32\"]");
    let wasm = std::fs::read(wasm()).unwrap();
    harness
        .load(wasm, &manifest_for(provider), &section)
        .await
        .unwrap()
}

fn message() -> Message {
    Message {
        reference: "msg_1".into(),
        to: "ops@example.com".into(),
        subject: Some("Invoice 42".into()),
        body: "Invoice 42 is paid".into(),
        template: None,
        attachment: None,
    }
}

/// Checks a `sha256=<hex>` header against the body with the secret, independently of the
/// plugin's own code.
fn signed_with_secret(body: &[u8], header: &str) -> bool {
    let Some(digest) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_the_webhook_signed_with_its_idempotency_key() {
    let provider = FakeProvider::start(|_| Reply::Full {
        status: 202,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"id":"wh_42"}"#.to_vec(),
    })
    .await;
    let plugin = load(&provider, &provider.url_as("hooks.example.com", "/keel")).await;

    let info = plugin.info().unwrap();
    assert_eq!(info.name, "Webhook notifier");
    assert_eq!(info.features, Features::INBOUND);

    let receipt = plugin
        .notifier()
        .expect("a notifier")
        .send(message())
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "wh_42");
    assert_eq!(receipt.status, DeliveryStatus::Accepted);

    let received = provider.received();
    assert_eq!(received.len(), 1);
    let req = &received[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.uri, "/keel");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("idempotency-key"), Some("msg_1"));
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "reference": "msg_1",
            "to": "ops@example.com",
            "subject": "Invoice 42",
            "body": "Invoice 42 is paid",
        })
    );
    let signature = req.header("x-keel-signature").expect("a signature header");
    assert!(
        signed_with_secret(&req.body, signature),
        "{signature} does not sign the body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_from_the_webhook_is_unavailable_with_its_retry_hint() {
    let provider = FakeProvider::start(|_| Reply::Full {
        status: 503,
        headers: vec![("retry-after".into(), "30".into())],
        body: b"maintenance".to_vec(),
    })
    .await;
    let plugin = load(&provider, &provider.url_as("hooks.example.com", "/keel")).await;

    match plugin.notifier().unwrap().send(message()).await {
        Err(PluginFailure::Plugin(PluginError::Unavailable(RetryHint {
            reason,
            retry_after_seconds,
        }))) => {
            assert!(reason.contains("503"), "{reason}");
            assert_eq!(retry_after_seconds, Some(30));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(
        provider.received().len(),
        1,
        "the plugin does not retry by itself"
    );
}

/// The kernel checks a `url` setting's shape at load, not its host: the grant stops the
/// request when the plugin sends, and the SDK reports the denial as `misconfigured`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_outside_the_grant_loads_but_is_refused_at_send_as_misconfigured() {
    let provider = FakeProvider::start(|_| Reply::status(200)).await;
    let plugin = load(
        &provider,
        &format!("http://elsewhere.example.net:{}/keel", provider.port()),
    )
    .await;

    match plugin.notifier().unwrap().send(message()).await {
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => {
            assert!(
                m.contains("elsewhere.example.net") && m.contains("not granted"),
                "{m}"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(provider.received().is_empty(), "nothing left the host");
}

/// Widening the grant is refused when the plugin is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_grant_wider_than_the_manifest_is_refused_at_load() {
    let provider = FakeProvider::start(|_| Reply::status(200)).await;
    let mut harness = PluginHarness::new();
    let section = format!(
        "url = \"https://hooks.example.com/keel\"\nsecret = \"{SECRET}\"\nallow_hosts = [\"https://elsewhere.example.net\"]"
    );
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin.toml")).unwrap();
    let err = harness
        .load(std::fs::read(wasm()).unwrap(), &manifest, &section)
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("wider than the plugin's declaration"),
        "{err}"
    );
    assert!(provider.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_receipts_are_verified_in_the_real_host() {
    let provider = FakeProvider::start(|_| Reply::status(200)).await;
    let plugin = load(&provider, &provider.url_as("hooks.example.com", "/keel")).await;
    let notifier = plugin.notifier().unwrap();
    let inbound = |body: &str, signature: String| InboundRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("X-Keel-Signature".into(), signature)],
        body: body.as_bytes().to_vec(),
    };

    let body = r#"{"id":"wh_42","status":"delivered"}"#;
    let read = notifier
        .verify_inbound(inbound(body, sign(body.as_bytes())))
        .await
        .unwrap();
    assert_eq!(read.reply.status, 200);
    assert_eq!(
        read.events,
        vec![InboundEvent::Status(StatusUpdate {
            provider_id: "wh_42".into(),
            status: DeliveryStatus::Delivered,
            detail: None,
            at: None,
        })]
    );

    let forged = inbound(&body.replace("delivered", "failed"), sign(body.as_bytes()));
    match notifier.verify_inbound(forged).await {
        Err(PluginFailure::Plugin(PluginError::Refused(m))) => {
            assert!(m.contains("does not match"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
