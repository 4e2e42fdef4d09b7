//! Every failure is counted on `/metrics`: a process-wide Prometheus recorder (this test
//! binary is its own process) sees the host's `keel_plugin_*` series after a CPU-limit
//! trap, a denied request, a panic and a good call.

use std::time::Duration;

use keel_plugin_host::notifier::{Message, Notifier};
use keel_plugins::KEEL_FIXTURE_HOSTILE;
use keel_testkit::plugins::PluginHarness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_denials_are_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder in this process");

    let mut harness = PluginHarness::new().configure(|c| c.cpu_budget = Duration::from_millis(100));
    let plugin = harness
        .load(
            KEEL_FIXTURE_HOSTILE.wasm().unwrap(),
            &KEEL_FIXTURE_HOSTILE.manifest().unwrap(),
            "",
        )
        .await
        .unwrap();
    let notifier = plugin.notifier().unwrap();
    for body in [
        "spin",
        "http:http://elsewhere.example.com/",
        "panic",
        "ok",
        "ok",
    ] {
        let msg = Message {
            reference: "m".into(),
            to: "x".into(),
            subject: None,
            body: body.into(),
            template: None,
            attachment: None,
        };
        let _ = notifier.send(msg).await;
    }

    let text = handle.render();
    for (series, count) in [
        (
            r#"keel_plugin_calls_total{plugin="hostile",kind="notifier",op="send",outcome="cpu_limit"}"#,
            1,
        ),
        (
            r#"keel_plugin_calls_total{plugin="hostile",kind="notifier",op="send",outcome="misconfigured"}"#,
            1,
        ),
        (
            r#"keel_plugin_calls_total{plugin="hostile",kind="notifier",op="send",outcome="panic"}"#,
            1,
        ),
        (
            r#"keel_plugin_calls_total{plugin="hostile",kind="notifier",op="send",outcome="ok"}"#,
            2,
        ),
        (
            r#"keel_plugin_http_denied_total{plugin="hostile",reason="not_granted"}"#,
            1,
        ),
    ] {
        let line = format!("{series} {count}");
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(text.contains("keel_plugin_call_seconds"), "{text}");
}
