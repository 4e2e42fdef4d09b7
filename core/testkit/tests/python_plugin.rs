//! A plugin written in Python (examples/python-notifier, built with componentize-py) runs in
//! the same host as the Rust ones: describe, settings through `config.get`, JSON over the
//! granted `http.send`, `log.log`, typed errors raised from Python, and a denied
//! destination that comes back as `misconfigured` while the host keeps serving.
//!
//! The example is written on keel-sdk for Python (`sdk/python`). Needs `componentize-py`
//! (0.25.1, found as `keel_testkit::python` says): without it the test fails under CI and
//! warns loudly and passes elsewhere.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use keel_plugin_host::notifier::{DeliveryStatus, Message, Notifier};
use keel_plugin_host::{Features, InboundRequest, Plugin, PluginError, PluginFailure};
use keel_testkit::plugins::{FakeProvider, PluginHarness, Reply};
use keel_testkit::python::{Componentize, componentize_py_or_skip};

/// The example's directory.
fn example_dir() -> PathBuf {
    keel_testkit::python::repo_root().join("examples/python-notifier")
}

/// Builds the example into `out_dir` and returns the component's bytes. The sources are
/// copied first: componentize-py writes `__pycache__` next to the app it imports.
fn build(tool: &Componentize, out_dir: &Path) -> Vec<u8> {
    let src = out_dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(example_dir().join("app.py"), src.join("app.py")).expect("copy app.py");
    tool.build(
        "notifier-plugin",
        &src,
        &out_dir.join("python-notifier.wasm"),
    )
}

/// Every line the process logs through `tracing` (the host records `log.log` there, from
/// whichever worker thread runs the call, so the subscriber is global).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn install() -> Self {
        let captured = Self::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        captured
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn message(reference: &str, body: &str) -> Message {
    Message {
        reference: reference.into(),
        to: "+263771234567".into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    }
}

async fn load(harness: &mut PluginHarness, wasm: &[u8], manifest: &str, endpoint: &str) -> Plugin {
    let section = format!("endpoint = \"{endpoint}\"\nallow_networks = [\"127.0.0.1/32\"]");
    harness
        .load(wasm.to_vec(), manifest, &section)
        .await
        .unwrap_or_else(|e| panic!("loading the Python plugin: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_notifier_runs_in_the_host() {
    let Some(tool) = componentize_py_or_skip() else {
        return;
    };
    let version = tool.version.clone();

    let logs = Captured::install();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let wasm = build(&tool, dir.path());
    eprintln!(
        "{version}: built the component ({} bytes) in {:?}",
        wasm.len(),
        started.elapsed()
    );

    let provider = FakeProvider::start(|req| {
        if req.uri == "/hook" {
            Reply::text(200, "{\"id\": \"wh_42\"}")
        } else {
            Reply::status(404)
        }
    })
    .await;
    let port = provider.port();
    // The manifest declares http://hooks.test (port 80); the fake listens elsewhere, so
    // declare its port in a copy.
    let manifest = std::fs::read_to_string(example_dir().join("plugin.toml"))
        .unwrap()
        .replace(
            "\"http://hooks.test\"",
            &format!("\"http://hooks.test:{port}\""),
        );
    assert!(
        manifest.contains(&format!("http://hooks.test:{port}")),
        "the manifest declares http://hooks.test"
    );

    let mut harness = PluginHarness::new()
        .resolve("hooks.test", provider.ip())
        .resolve("other.test", provider.ip())
        .configure(|c| {
            // A second load reuses the compiled artifact instead of compiling 18 MB again.
            c.cache_dir = Some(dir.path().join("cache"));
        });

    let started = Instant::now();
    let plugin = load(
        &mut harness,
        &wasm,
        &manifest,
        &format!("http://hooks.test:{port}/hook"),
    )
    .await;
    eprintln!(
        "compiled, instantiated and described in {:?}",
        started.elapsed()
    );
    let info = plugin.info().expect("described at load");
    assert_eq!(info.name, "Python Notifier");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(
        info.description,
        "Posts each message as JSON to a webhook; written in Python."
    );
    assert_eq!(info.features, Features::empty());
    let notifier = plugin.notifier().expect("a notifier");
    assert!(plugin.gateway().is_none());

    let started = Instant::now();
    let receipt = notifier
        .send(message("msg_1", "Your invoice 2026-000123 is due."))
        .await
        .unwrap();
    eprintln!("first send took {:?}", started.elapsed());
    assert_eq!(receipt.provider_id, "wh_42");
    assert_eq!(receipt.status, DeliveryStatus::Sent);
    let logged = logs.text();
    assert!(
        logged.lines().any(|l| l.contains("keel::plugin")
            && l.contains("python-notifier")
            && l.contains("sent msg_1 to +263771234567: provider id wh_42")),
        "the plugin's log.log line:\n{logged}"
    );

    let received = provider.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].uri, "/hook");
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).expect("a JSON body");
    assert_eq!(
        body,
        serde_json::json!({"to": "+263771234567", "body": "Your invoice 2026-000123 is due.", "reference": "msg_1"})
    );

    // An optional operation it does not offer.
    let inbound = notifier
        .verify_inbound(InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![],
            body: b"{}".to_vec(),
        })
        .await;
    assert!(
        matches!(
            inbound,
            Err(PluginFailure::Plugin(PluginError::Unsupported))
        ),
        "{inbound:?}"
    );

    // The same component with an endpoint the manifest does not declare: the host refuses
    // the request and Python's `misconfigured` comes back typed.
    let started = Instant::now();
    let stray = load(
        &mut harness,
        &wasm,
        &manifest,
        &format!("http://other.test:{port}/hook"),
    )
    .await;
    eprintln!("second load (cached artifact) took {:?}", started.elapsed());
    match stray
        .notifier()
        .unwrap()
        .send(message("msg_2", "stray"))
        .await
    {
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => {
            assert!(
                m.contains("outbound request denied") && m.contains("not granted"),
                "{m}"
            )
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
    assert_eq!(
        provider.received().len(),
        1,
        "nothing reached the provider from the denied call"
    );

    // The host keeps serving, both plugins.
    let receipt = notifier.send(message("msg_3", "again")).await.unwrap();
    assert_eq!(receipt.provider_id, "wh_42");
    let received = provider.received();
    assert_eq!(received.len(), 2);
    let body: serde_json::Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(body["reference"], "msg_3");
    assert!(matches!(
        stray
            .notifier()
            .unwrap()
            .send(message("msg_4", "stray"))
            .await,
        Err(PluginFailure::Plugin(PluginError::Misconfigured(_)))
    ));
}
