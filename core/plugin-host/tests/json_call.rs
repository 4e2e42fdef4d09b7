//! Calls by name with JSON (`Plugin::call_json`), in the real host with real components: the
//! echo gateway's records, variants, options and bytes round-trip through the JSON form; a
//! question the plugin cannot take (no such kind or operation, an input that does not fit)
//! is refused naming the place, before anything runs; the hostile notifier's typed error
//! and its crash come back with what it logged.

use keel_plugin_host::{Kind, PluginError, PluginFailure};
use keel_plugins::{KEEL_FIXTURE_ECHO, KEEL_FIXTURE_HOSTILE};
use keel_testkit::plugins::PluginHarness;
use serde_json::json;

async fn echo(harness: &mut PluginHarness) -> keel_plugin_host::Plugin {
    harness
        .load_artifact(
            &KEEL_FIXTURE_ECHO,
            "endpoint = \"http://provider.test/refunds\"\napi_key = \"s3cret\"",
        )
        .await
        .unwrap()
}

fn payment_request() -> serde_json::Value {
    json!({
        "reference": "INV-1-AB12CD",
        "invoice-id": "INV-1",
        "amount": { "minor": 2500, "currency": "USD" },
        "description": "Invoice INV-1",
        // Snake case is taken for kebab case; options may be left out.
        "payer": { "first_name": "Rudo", "last-name": "Chikwanha", "email": "rudo@example.co.zw", "phone": "+263771234567" },
        "return-url": "https://billing.example.com/pay/return/INV-1-AB12CD",
        "callback-url": "https://billing.example.com/hooks/gateway/echo",
        "method": null
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_run_by_name_with_json_in_and_out() {
    let mut harness = PluginHarness::new();
    let plugin = echo(&mut harness).await;

    let ops = plugin.operations(Kind::Gateway);
    let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    for op in ["describe", "initiate", "verify-callback", "poll", "refund"] {
        assert!(names.contains(&op), "{names:?}");
    }
    let initiate = ops.iter().find(|o| o.name == "initiate").unwrap();
    assert_eq!(initiate.params, ["req"]);
    assert!(plugin.operations(Kind::Registrar).is_empty());

    let call = plugin
        .call_json(Kind::Gateway, "initiate", &payment_request())
        .await
        .unwrap();
    assert_eq!(
        call.result.unwrap(),
        json!({
            "provider-reference": "INV-1-AB12CD",
            "status": "pending",
            "action": { "redirect": "https://billing.example.com/pay/return/INV-1-AB12CD" },
            "state": "Invoice INV-1"
        })
    );

    // Bytes as text in and out; an operation named in snake case.
    let call = plugin
        .call_json(
            Kind::Gateway,
            "verify_callback",
            &json!({ "method": "POST", "path": "/", "query": "", "headers": [["content-type", "text/plain"]], "body": "reference=R1" }),
        )
        .await
        .unwrap();
    let answer = call.result.unwrap();
    assert_eq!(answer["update"]["reference"], "reference=R1");
    assert_eq!(answer["update"]["amount"], serde_json::Value::Null);
    assert_eq!(answer["reply"]["body"], "reference=R1");
    assert_eq!(answer["reply"]["status"], 200);

    // No parameters: null.
    let call = plugin
        .call_json(Kind::Gateway, "describe", &serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(call.result.unwrap()["name"], "Echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_that_does_not_fit_is_refused_naming_the_place() {
    let mut harness = PluginHarness::new();
    let plugin = echo(&mut harness).await;
    let refused = |input: serde_json::Value| {
        let plugin = plugin.clone();
        async move {
            plugin
                .call_json(Kind::Gateway, "initiate", &input)
                .await
                .expect_err("refused")
        }
    };

    let e = plugin
        .call_json(Kind::Notifier, "send", &json!({}))
        .await
        .err()
        .unwrap();
    assert!(e.contains("does not implement the notifier kind"), "{e}");
    let e = plugin
        .call_json(Kind::Gateway, "capture", &json!({}))
        .await
        .err()
        .unwrap();
    assert!(
        e.contains("no operation `capture`") && e.contains("initiate"),
        "{e}"
    );

    let mut input = payment_request();
    input["amount"]["minor"] = json!("twenty");
    let e = refused(input).await;
    assert!(e.contains("`req.amount.minor` must be an integer"), "{e}");
    let mut input = payment_request();
    input.as_object_mut().unwrap().remove("reference");
    assert!(refused(input).await.contains("`req` has no `reference`"));
    let mut input = payment_request();
    input["amount"]["cents"] = json!(1);
    let e = refused(input).await;
    assert!(
        e.contains("no field `cents`") && e.contains("minor, currency"),
        "{e}"
    );
    let mut input = payment_request();
    input["amount"]["minor"] = json!(i128::from(i64::MAX) + 1);
    assert!(refused(input).await.contains("fits i64"));
    assert!(
        refused(json!([1, 2]))
            .await
            .contains("`req` must be an object")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_error_and_a_crash_come_back_with_the_plugin_s_output() {
    let mut harness = PluginHarness::new();
    let plugin = harness
        .load_artifact(&KEEL_FIXTURE_HOSTILE, "target = \"http://provider.test/\"")
        .await
        .unwrap();
    let message = |body: &str| json!({ "reference": "n-1", "to": "+263771234567", "body": body });

    let call = plugin
        .call_json(Kind::Notifier, "send", &message("ok"))
        .await
        .unwrap();
    assert_eq!(
        call.result.unwrap(),
        json!({ "provider-id": "fine", "status": "sent" })
    );

    let call = plugin
        .call_json(Kind::Notifier, "send", &message("nonsense"))
        .await
        .unwrap();
    assert_eq!(
        call.result.unwrap_err(),
        PluginFailure::Plugin(PluginError::InvalidInput(
            "unknown command \"nonsense\"".into()
        ))
    );

    let call = plugin
        .call_json(Kind::Notifier, "send", &message("panic"))
        .await
        .unwrap();
    let PluginFailure::Panic(Some(m)) = call.result.unwrap_err() else {
        panic!("a panic")
    };
    assert!(m.contains("hostile plugin panics on purpose"), "{m}");
    // The SDK's panic hook logs the message (a Rust panic on wasm32 is a trap without one).
    assert!(
        call.captured
            .logs
            .iter()
            .any(|l| l.starts_with("ERROR plugin panicked: ")
                && l.contains("hostile plugin panics on purpose")),
        "{:?}",
        call.captured
    );
}
