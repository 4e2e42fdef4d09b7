//! The plugin host against real components: the well-behaved `echo` gateway, the
//! `hostile` notifier (every misbehaviour contained with a typed failure while the host
//! keeps serving), broken and future components, caching and concurrency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_plugin_host::gateway::{
    Gateway, NextAction, PaymentRef, PaymentRequest, PaymentStatus, RefundRequest,
};
use keel_plugin_host::notifier::{Message, Notifier};
use keel_plugin_host::{
    Contact, InboundRequest, Money, OriginOverrides, Plugin, PluginError, PluginFailure,
};
use keel_plugins::{KEEL_FIXTURE_ECHO, KEEL_FIXTURE_FUTURE_WIT, KEEL_FIXTURE_HOSTILE};
use keel_testkit::plugins::{FakeProvider, PluginHarness, Reply};

fn payment(description_len: usize) -> PaymentRequest {
    PaymentRequest {
        reference: "pay_01".into(),
        invoice_id: "2026-000123".into(),
        amount: Money {
            minor: 1050,
            currency: "USD".into(),
        },
        description: "x".repeat(description_len),
        payer: Contact {
            first_name: "Tendai".into(),
            last_name: "Moyo".into(),
            company: None,
            email: "tendai@example.com".into(),
            phone: Some("+263771234567".into()),
            address: None,
        },
        return_url: "https://billing.example.com/return".into(),
        callback_url: "https://billing.example.com/callback".into(),
        method: None,
    }
}

fn message(body: &str) -> Message {
    Message {
        reference: "msg_1".into(),
        to: "+263771234567".into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    }
}

async fn send(plugin: &Plugin, body: &str) -> Result<String, PluginFailure> {
    plugin
        .notifier()
        .expect("a notifier")
        .send(message(body))
        .await
        .map(|r| r.provider_id)
}

/// The host still serves a well-behaved call.
async fn still_serving(plugin: &Plugin) {
    assert_eq!(send(plugin, "ok").await.unwrap(), "fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_gateway_round_trips_records_imports_kv_and_http() {
    let provider =
        FakeProvider::start(|req| Reply::text(200, format!("refund-{}", req.text().len()))).await;
    let fixed = chrono::DateTime::parse_from_rfc3339("2026-11-24T06:00:00Z")
        .unwrap()
        .to_utc();
    let mut harness = PluginHarness::new()
        .resolve("provider.test", provider.ip())
        .configure(|c| c.clock = Arc::new(move || fixed));
    // The fixture declares `http://provider.test` (port 80); a grant of another port is
    // wider than the declaration, and the section is refused before anything runs.
    let wider = format!(
        "endpoint = \"{}\"\napi_key = \"s3cret\"\nallow_hosts = [\"http://provider.test:{}\"]",
        provider.url_as("provider.test", "/refunds"),
        provider.port()
    );
    let err = harness
        .load_artifact(&KEEL_FIXTURE_ECHO, &wider)
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("wider than the plugin's declaration"),
        "{err}"
    );

    // With the declared grant, the endpoint on the fake's random port is not granted.
    let section = format!(
        "endpoint = \"http://127.0.0.1:{}/refunds\"\napi_key = \"s3cret\"\nallow_networks = [\"127.0.0.1/32\"]",
        provider.port()
    );
    let plugin = harness
        .load_artifact(&KEEL_FIXTURE_ECHO, &section)
        .await
        .unwrap();
    let info = plugin.info().unwrap();
    assert_eq!(info.name, "Echo");
    assert_eq!(info.version, "0.1.0");

    let gateway = plugin.gateway().unwrap();
    assert!(plugin.notifier().is_none());

    let started = gateway.initiate(payment(1000)).await.unwrap();
    assert_eq!(started.provider_reference, "pay_01");
    assert_eq!(started.status, PaymentStatus::Pending);
    assert_eq!(
        started.action,
        NextAction::Redirect("https://billing.example.com/return".into())
    );
    assert_eq!(started.state.as_deref().map(str::len), Some(1000));

    let update = gateway
        .poll(PaymentRef {
            reference: "pay_01".into(),
            provider_reference: "p1".into(),
            state: None,
        })
        .await
        .unwrap();
    assert_eq!(
        update.provider_status,
        fixed.timestamp_millis().to_string(),
        "the host's clock"
    );

    let callback = gateway
        .verify_callback(InboundRequest {
            method: "POST".into(),
            path: "/cb".into(),
            query: String::new(),
            headers: vec![],
            body: b"status=Paid".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(callback.update.reference, "status=Paid", "kv round trip");
    assert_eq!(callback.reply.body, b"status=Paid");

    // The port-80 declaration does not cover the fake's random port: the request is denied
    // before it leaves, and the plugin (through the SDK) maps the denial to `misconfigured`.
    let refund = RefundRequest {
        reference: "ref_1".into(),
        payment: PaymentRef {
            reference: "pay_01".into(),
            provider_reference: "p1".into(),
            state: None,
        },
        amount: Money {
            minor: 500,
            currency: "USD".into(),
        },
        reason: "duplicate".into(),
    };
    match gateway.refund(refund.clone()).await {
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => {
            assert!(m.contains("not granted"), "{m}")
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        provider.received().is_empty(),
        "nothing reached the provider"
    );
}

/// A harness whose `provider.test` and `127.0.0.1` grants cover the fake provider: the
/// fixture declares port 80, so the fake must listen there. Tests cannot bind port 80, so
/// they use a manifest copy that declares the fake's port.
async fn echo_on(provider: &FakeProvider, harness: &mut PluginHarness) -> Plugin {
    let manifest = KEEL_FIXTURE_ECHO.manifest().unwrap().replace(
        "\"http://127.0.0.1\"",
        &format!("\"http://127.0.0.1:{}\"", provider.port()),
    );
    let section = format!(
        "endpoint = \"http://127.0.0.1:{}/refunds\"\napi_key = \"s3cret\"\nallow_networks = [\"127.0.0.1/32\"]",
        provider.port()
    );
    harness
        .load(KEEL_FIXTURE_ECHO.wasm().unwrap(), &manifest, &section)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_requests_reach_the_provider_with_settings_and_secrets() {
    let provider =
        FakeProvider::start(|req| Reply::text(200, format!("refund-for-{}", req.text()))).await;
    let mut harness = PluginHarness::new();
    let plugin = echo_on(&provider, &mut harness).await;
    let refund = RefundRequest {
        reference: "ref_1".into(),
        payment: PaymentRef {
            reference: "pay_01".into(),
            provider_reference: "p1".into(),
            state: None,
        },
        amount: Money {
            minor: 500,
            currency: "USD".into(),
        },
        reason: "duplicate".into(),
    };
    let started = plugin.gateway().unwrap().refund(refund).await.unwrap();
    assert_eq!(
        started.provider_reference,
        "refund-for-reference=ref_1&amount=500"
    );
    let received = provider.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].uri, "/refunds");
    assert_eq!(received[0].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(
        received[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

async fn hostile(harness: &mut PluginHarness, target: &str) -> Plugin {
    let manifest = KEEL_FIXTURE_HOSTILE.manifest().unwrap();
    harness
        .load(
            KEEL_FIXTURE_HOSTILE.wasm().unwrap(),
            &manifest,
            &format!("target = \"{target}\""),
        )
        .await
        .unwrap()
}

/// The hostile fixture with its declared test hosts moved to the fake provider's port (the
/// fixture declares port 80, which a test cannot bind), loopback allowed, and `target` set.
async fn hostile_on_port(harness: &mut PluginHarness, port: u16, target_path: &str) -> Plugin {
    let manifest = KEEL_FIXTURE_HOSTILE
        .manifest()
        .unwrap()
        .replace(
            "\"http://provider.test\"",
            &format!("\"http://provider.test:{port}\""),
        )
        .replace(
            "\"http://private.test\"",
            &format!("\"http://private.test:{port}\""),
        );
    let section = format!(
        "target = \"http://provider.test:{port}{target_path}\"\nallow_networks = [\"127.0.0.1/32\"]"
    );
    harness
        .load(KEEL_FIXTURE_HOSTILE.wasm().unwrap(), &manifest, &section)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_by_the_cpu_budget() {
    let mut harness = PluginHarness::new().configure(|c| c.cpu_budget = Duration::from_millis(200));
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    let started = Instant::now();
    assert_eq!(send(&plugin, "spin").await, Err(PluginFailure::CpuLimit));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        started.elapsed()
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_is_stopped_at_the_cap() {
    let mut harness = PluginHarness::new().configure(|c| c.memory_limit_bytes = 32 * 1024 * 1024);
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    assert_eq!(
        send(&plugin, "alloc").await,
        Err(PluginFailure::MemoryLimit)
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_typed_failure_with_its_message() {
    let mut harness = PluginHarness::new();
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    match send(&plugin, "panic").await {
        Err(PluginFailure::Panic(Some(m))) => assert!(m.contains("panics on purpose"), "{m}"),
        other => panic!("expected a panic failure, got {other:?}"),
    }
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_overflow_is_contained() {
    let mut harness = PluginHarness::new();
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    assert_eq!(
        send(&plugin, "stack").await,
        Err(PluginFailure::StackOverflow)
    );
    still_serving(&plugin).await;
    // Rust keeps big frames on a shadow stack in linear memory; overflowing it runs off the
    // bottom of the memory, which the engine stops as an out-of-bounds access.
    match send(&plugin, "shadow-stack").await {
        Err(PluginFailure::Trap(m)) => assert!(m.contains("out of bounds"), "{m}"),
        other => panic!("expected an out-of-bounds trap, got {other:?}"),
    }
    still_serving(&plugin).await;
}

fn denied(result: Result<String, PluginFailure>) -> String {
    match result {
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => m,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_hosts_redirects_and_private_addresses_are_denied() {
    let provider = FakeProvider::start(|req| {
        if req.uri.starts_with("/bounce") {
            Reply::redirect("http://undeclared.test/steal")
        } else {
            Reply::text(200, "hello")
        }
    })
    .await;
    let ip = provider.ip();
    let mut harness = PluginHarness::new()
        .resolve("provider.test", ip)
        .resolve("undeclared.test", ip)
        .resolve("private.test", "10.0.0.7".parse().unwrap());
    // The fixture declares http://provider.test on port 80; serve it from the fake's port
    // through a manifest copy that declares that port.
    let port = provider.port();
    let plugin = hostile_on_port(&mut harness, port, "/").await;

    // Granted: reaches the fake.
    assert_eq!(
        send(&plugin, &format!("http:http://provider.test:{port}/hello"))
            .await
            .unwrap(),
        "200 5"
    );
    // Not declared at all.
    let m = denied(
        send(
            &plugin,
            &format!("http:http://undeclared.test:{port}/steal"),
        )
        .await,
    );
    assert!(m.contains("not granted"), "{m}");
    // Declared host, redirected to an undeclared one.
    let m = denied(send(&plugin, &format!("http:http://provider.test:{port}/bounce")).await);
    assert!(
        m.contains("redirect to") && m.contains("not granted"),
        "{m}"
    );
    // Declared name resolving to a private address.
    let m = denied(send(&plugin, &format!("http:http://private.test:{port}/")).await);
    assert!(m.contains("private"), "{m}");
    // Loopback by literal address without the manifest declaring it on this port.
    let m = denied(send(&plugin, &format!("http:http://127.0.0.1:{port}/")).await);
    assert!(m.contains("not granted"), "{m}");

    let paths: Vec<String> = provider.received().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        paths,
        vec!["/hello".to_owned(), "/bounce".to_owned()],
        "nothing else reached a server"
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_origin_moves_granted_connections_only() {
    let provider = FakeProvider::start(|_| Reply::text(200, "hello")).await;
    let fake = provider.url_as("127.0.0.1", "");
    let fake = fake.as_str();
    let mut origins = OriginOverrides::new();
    // The fixture declares `http://provider.test` (port 80): its requests there go to the
    // fake, with no resolver entry and no private network allowed.
    origins.insert("http://provider.test", fake).unwrap();
    // An origin the plugin is not granted stays refused, mapped or not.
    origins.insert("http://undeclared.test", fake).unwrap();
    let mut harness = PluginHarness::new().configure(move |c| c.origin_overrides = origins);
    let plugin = hostile(&mut harness, "http://provider.test/").await;

    assert_eq!(
        send(&plugin, "http:http://provider.test/hello")
            .await
            .unwrap(),
        "200 5"
    );
    let m = denied(send(&plugin, "http:http://undeclared.test/steal").await);
    assert!(m.contains("not granted"), "{m}");
    let paths: Vec<String> = provider.received().into_iter().map(|r| r.uri).collect();
    assert_eq!(
        paths,
        vec!["/hello".to_owned()],
        "only the granted request arrived"
    );
    still_serving(&plugin).await;
}

#[test]
fn a_fake_origin_must_be_an_origin_on_loopback() {
    let mut origins = OriginOverrides::new();
    assert!(
        origins
            .insert("https://www.paynow.co.zw", "http://127.0.0.1:8089")
            .is_ok()
    );
    assert!(
        origins
            .insert("https://www.paynow.co.zw", "http://[::1]:8089")
            .is_ok()
    );
    assert!(
        origins
            .insert("https://www.paynow.co.zw", "http://localhost:8089")
            .is_ok()
    );
    for (from, to) in [
        ("https://www.paynow.co.zw", "http://10.0.0.7:8089"),
        ("https://www.paynow.co.zw", "http://fake.example:8089"),
        ("https://www.paynow.co.zw", "http://127.0.0.1:8089/path"),
        (
            "https://www.paynow.co.zw/interface",
            "http://127.0.0.1:8089",
        ),
        ("ftp://www.paynow.co.zw", "http://127.0.0.1:8089"),
    ] {
        assert!(origins.insert(from, to).is_err(), "{from} -> {to}");
    }
    assert_eq!(
        origins.pairs().collect::<Vec<_>>(),
        vec![("https://www.paynow.co.zw", "http://localhost:8089")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_replies_and_request_floods_are_capped() {
    let provider = FakeProvider::start(|req| {
        if req.uri.starts_with("/huge") {
            Reply::Stream {
                bytes: 300 * 1024 * 1024,
            }
        } else {
            Reply::status(204)
        }
    })
    .await;
    let port = provider.port();
    let mut harness = PluginHarness::new().resolve("provider.test", provider.ip());
    let plugin = hostile_on_port(&mut harness, port, "/ping").await;

    let started = Instant::now();
    match send(&plugin, &format!("http:http://provider.test:{port}/huge")).await {
        Err(PluginFailure::Plugin(PluginError::Internal(m))) => {
            assert!(m.contains("at most"), "{m}")
        }
        other => panic!("expected a size refusal, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped reading early: {:?}",
        started.elapsed()
    );

    match send(&plugin, "http-many").await {
        Err(PluginFailure::Plugin(PluginError::Internal(m))) => {
            assert!(m.contains("too many requests"), "{m}")
        }
        other => panic!("expected the request cap, got {other:?}"),
    }
    let pings = provider
        .received()
        .iter()
        .filter(|r| r.uri == "/ping")
        .count();
    assert_eq!(pings, 20, "exactly the per-call cap reached the provider");
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_is_dropped_past_the_budget() {
    let mut harness = PluginHarness::new();
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    assert_eq!(send(&plugin, "log-flood").await.unwrap(), "flooded");
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_blocked_in_a_host_import_times_out() {
    let provider = FakeProvider::start(|_| Reply::Hang).await;
    let port = provider.port();
    let mut harness = PluginHarness::new()
        .resolve("provider.test", provider.ip())
        .configure(|c| c.call_timeout = Duration::from_secs(1));
    let plugin = hostile_on_port(&mut harness, port, "/").await;
    let started = Instant::now();
    let result = send(&plugin, "http").await;
    // The request's own deadline is the call's: the import gives up first and the plugin
    // reports `unavailable`; either way the call ends at the deadline.
    assert!(
        matches!(
            result,
            Err(PluginFailure::Timeout) | Err(PluginFailure::Plugin(PluginError::Unavailable(_)))
        ),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    still_serving(&plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_read_another_plugins_kv_or_settings() {
    let provider = FakeProvider::start(|_| Reply::status(200)).await;
    let mut harness = PluginHarness::new();
    let echo = echo_on(&provider, &mut harness).await;
    echo.gateway()
        .unwrap()
        .verify_callback(InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![],
            body: b"echo's secret".to_vec(),
        })
        .await
        .unwrap();
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    assert_eq!(send(&plugin, "kv-get:last-callback").await.unwrap(), "None");
    assert_eq!(send(&plugin, "config-get:api_key").await.unwrap(), "None");
    assert_eq!(
        send(&plugin, "config-get:target").await.unwrap(),
        "Some(\"http://provider.test/\")"
    );
    // Its own kv works, and does not leak into echo's.
    assert_eq!(
        send(&plugin, "kv-set:last-callback=mine").await.unwrap(),
        "stored"
    );
    assert_eq!(
        send(&plugin, "kv-get:last-callback").await.unwrap(),
        "Some(\"mine\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_future_components_are_refused_at_load() {
    let mut harness = PluginHarness::new();
    let mut wasm = KEEL_FIXTURE_ECHO.wasm().unwrap();
    let middle = wasm.len() / 2;
    for b in &mut wasm[middle..middle + 64] {
        *b ^= 0xA5;
    }
    let manifest = KEEL_FIXTURE_ECHO.manifest().unwrap();
    let err = harness
        .load(wasm, &manifest, "")
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("could not compile the component"),
        "{err}"
    );

    let err = harness
        .load(b"not wasm at all".to_vec(), &manifest, "")
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("could not compile the component"),
        "{err}"
    );

    let err = harness
        .load_artifact(&KEEL_FIXTURE_FUTURE_WIT, "")
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("keel:plugin@0.9.0") && err.message.contains("serves 0.2, 0.1"),
        "{err}"
    );

    // A manifest that names the wrong kind.
    let wrong = manifest.replace("kinds = [\"gateway\"]", "kinds = [\"notifier\"]");
    let err = harness
        .load(KEEL_FIXTURE_ECHO.wasm().unwrap(), &wrong, "")
        .await
        .err()
        .expect("refused");
    assert!(
        err.message.contains("lists kind `notifier`")
            && err.message.contains("keel:plugin/gateway@0.2.0"),
        "{err}"
    );

    // A manifest whose version disagrees with describe.
    let wrong = manifest.replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    let err = harness
        .load(KEEL_FIXTURE_ECHO.wasm().unwrap(), &wrong, "")
        .await
        .err()
        .expect("refused");
    assert!(
        err.message
            .contains("says version 0.1.0 but plugin.toml says 0.2.0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_plugins_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    for round in 0..2 {
        let mut harness = PluginHarness::new().configure(|c| c.cache_dir = Some(cache.clone()));
        let plugin = hostile(&mut harness, "http://provider.test/").await;
        still_serving(&plugin).await;
        let files: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
        assert_eq!(files.len(), 1, "round {round}: one artifact, reused");
    }
    // A corrupted cache file is ignored and replaced.
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, b"garbage").unwrap();
    let mut harness = PluginHarness::new().configure(|c| c.cache_dir = Some(cache.clone()));
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    still_serving(&plugin).await;
}

/// `wasm` with a custom section appended: another build of the same plugin.
fn rebuilt(wasm: &[u8], tag: &[u8]) -> Vec<u8> {
    let name = b"keel-test";
    let size = 1 + name.len() + tag.len();
    assert!(size < 128 && tag.len() < 100, "one-byte LEB128 sizes");
    let mut out = wasm.to_vec();
    out.push(0); // a custom section
    out.push(u8::try_from(size).unwrap());
    out.push(u8::try_from(name.len()).unwrap());
    out.extend_from_slice(name);
    out.extend_from_slice(tag);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_build_replaces_the_old_one_in_the_cache_and_unused_entries_go() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Another plugin's build, unused for 31 days; and one used yesterday.
    let hash = "0".repeat(64);
    let stale = cache.join(format!("old-plugin-{hash}.cwasm"));
    let recent = cache.join(format!("hostile-extra-{hash}.cwasm"));
    for (path, days) in [(&stale, 31), (&recent, 1)] {
        std::fs::write(path, b"x").unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 24 * 3600);
        std::fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let manifest = KEEL_FIXTURE_HOSTILE.manifest().unwrap();
    let wasm = KEEL_FIXTURE_HOSTILE.wasm().unwrap();
    let mut seen = Vec::new();
    for build in [wasm.clone(), rebuilt(&wasm, b"2"), rebuilt(&wasm, b"3")] {
        let mut harness = PluginHarness::new().configure(|c| c.cache_dir = Some(cache.clone()));
        let plugin = harness
            .load(build, &manifest, "target = \"http://provider.test/\"")
            .await
            .unwrap();
        still_serving(&plugin).await;
        let now = names();
        // The stale entry went at the first compile; the other plugin's recent one stays;
        // `hostile` has exactly one build, the newest.
        let ours: Vec<&String> = now
            .iter()
            .filter(|n| n.starts_with("hostile-") && !n.starts_with("hostile-extra-"))
            .collect();
        assert_eq!(ours.len(), 1, "{now:?}");
        assert!(!seen.contains(ours[0]), "a new build, a new entry: {now:?}");
        seen.push(ours[0].clone());
        assert!(!stale.exists(), "{now:?}");
        assert!(recent.exists(), "{now:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_calls_than_pool_slots_wait_their_turn() {
    let mut harness = PluginHarness::new().configure(|c| c.max_concurrent_calls = 2);
    let plugin = hostile(&mut harness, "http://provider.test/").await;
    let calls = (0..24).map(|i| {
        let plugin = plugin.clone();
        tokio::spawn(async move {
            if i % 6 == 0 {
                send(&plugin, "panic").await.err().map(|f| f.label())
            } else {
                send(&plugin, "ok").await.ok().map(|_| "ok")
            }
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Some("ok")).count(), 20);
    assert_eq!(outcomes.iter().filter(|o| **o == Some("panic")).count(), 4);
}
