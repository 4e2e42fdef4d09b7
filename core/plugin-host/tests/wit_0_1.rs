//! A plugin built against `keel:plugin@0.1.0` keeps working in a host whose current minor is
//! 0.2: `plugins/fixtures/wit-0-1`, a notifier whose bindings come straight from the frozen
//! 0.1 WIT (`core/plugin-host/wit/0.1`), built with the other fixtures, driven through the
//! current types.
//!
//! Its calls cross every part of the 0.1 path: arguments converted down, results up, and
//! its `config`, `log` and `http` imports served by the current implementation. What 0.2
//! added and 0.1 cannot carry (an attachment, a template header or buttons) is answered
//! `unsupported` by the host without calling the plugin, so nothing reaches the provider;
//! what 0.1 cannot report comes back empty (a status update's `at`, a reply's headers).

use keel_plugin_host::notifier::{
    ButtonKind, DeliveryStatus, InboundEvent, Media, Message, Notifier, Template, TemplateButton,
    TemplateHeader,
};
use keel_plugin_host::{Features, InboundRequest, PluginError, PluginFailure};
use keel_plugins::KEEL_FIXTURE_WIT_0_1;
use keel_testkit::plugins::{FakeProvider, PluginHarness, Reply};

fn text(reference: &str, body: &str) -> Message {
    Message {
        reference: reference.into(),
        to: "+263771234567".into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    }
}

fn template() -> Template {
    Template {
        name: "invoice_due".into(),
        language: "en".into(),
        parameters: vec!["INV-42".into(), "USD 25.00".into()],
        header: None,
        buttons: Vec::new(),
    }
}

fn pdf() -> Media {
    Media {
        link: "https://billing.example.com/pay/v1.42.1893456000.ab/invoice.pdf".into(),
        filename: Some("INV-42.pdf".into()),
        media_type: "application/pdf".into(),
        caption: None,
    }
}

#[track_caller]
fn unsupported<T: std::fmt::Debug>(result: Result<T, PluginFailure>) {
    match result {
        Err(PluginFailure::Plugin(PluginError::Unsupported)) => {}
        other => panic!("expected unsupported, got {other:?}"),
    }
}

/// Loads the fixture for `provider`: it declares `http://127.0.0.1` (port 80), which tests
/// cannot bind, so a manifest copy declares the provider's port. The harness must outlive
/// the plugin.
async fn load(provider: &FakeProvider, harness: &mut PluginHarness) -> keel_plugin_host::Plugin {
    let port = provider.port();
    let manifest = KEEL_FIXTURE_WIT_0_1.manifest().unwrap().replace(
        "\"http://127.0.0.1\"",
        &format!("\"http://127.0.0.1:{port}\""),
    );
    let section =
        format!("endpoint = \"http://127.0.0.1:{port}/send\"\nallow_networks = [\"127.0.0.1/32\"]");
    harness
        .load(KEEL_FIXTURE_WIT_0_1.wasm().unwrap(), &manifest, &section)
        .await
        .unwrap_or_else(|e| panic!("loading the 0.1 notifier: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_notifier_sends_reads_receipts_and_is_spared_what_it_cannot_carry() {
    let provider = FakeProvider::start(|_| Reply::text(200, "queued")).await;
    let mut harness = PluginHarness::new();
    let plugin = load(&provider, &mut harness).await;
    let info = plugin.info().expect("described at load");
    assert_eq!(info.name, "Old notifier");
    assert_eq!(info.features, Features::INBOUND, "flags come up");
    let notifier = plugin.notifier().expect("a notifier");

    // Text and a plain template go down to 0.1, through its http import, and come back up.
    let receipt = notifier
        .send(text("ntf-1", "Invoice INV-42 is due"))
        .await
        .unwrap();
    assert_eq!(receipt.provider_id, "old-ntf-1");
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    notifier
        .send(Message {
            template: Some(template()),
            ..text("ntf-2", "Invoice INV-42 is due")
        })
        .await
        .unwrap();
    let received = provider.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].uri, "/send");
    assert_eq!(
        String::from_utf8_lossy(&received[0].body),
        "to=+263771234567\nInvoice INV-42 is due"
    );
    assert_eq!(
        String::from_utf8_lossy(&received[1].body),
        "to=+263771234567\ntemplate=invoice_due INV-42,USD 25.00\nInvoice INV-42 is due"
    );

    // What 0.1 cannot carry never reaches the plugin, nor the provider.
    unsupported(
        notifier
            .send(Message {
                attachment: Some(pdf()),
                ..text("ntf-3", "Your invoice")
            })
            .await,
    );
    unsupported(
        notifier
            .send(Message {
                template: Some(Template {
                    header: Some(TemplateHeader::Document(pdf())),
                    ..template()
                }),
                ..text("ntf-4", "Your invoice")
            })
            .await,
    );
    unsupported(
        notifier
            .send(Message {
                template: Some(Template {
                    buttons: vec![TemplateButton {
                        index: 0,
                        kind: ButtonKind::Url,
                        parameter: "v1.42.1893456000.ab".into(),
                    }],
                    ..template()
                }),
                ..text("ntf-5", "Your invoice")
            })
            .await,
    );
    assert_eq!(provider.received().len(), 2, "nothing more was sent");

    // Receipts read by the 0.1 plugin come up without the provider's time; its reply
    // without headers.
    let inbound = notifier
        .verify_inbound(InboundRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"old-ntf-1 sent\nold-ntf-1 read\n".to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(inbound.reply.status, 200);
    assert_eq!(inbound.reply.content_type.as_deref(), Some("text/plain"));
    assert!(inbound.reply.headers.is_empty());
    let seen: Vec<_> = inbound
        .events
        .into_iter()
        .map(|e| match e {
            InboundEvent::Status(s) => {
                assert_eq!(s.provider_id, "old-ntf-1");
                assert_eq!(s.at, None, "0.1 has no time for a receipt");
                s.status
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, [DeliveryStatus::Sent, DeliveryStatus::Read]);

    // A plugin error comes up as the same case.
    let provider_down = FakeProvider::start(|_| Reply::status(503)).await;
    let mut harness = PluginHarness::new();
    let plugin = load(&provider_down, &mut harness).await;
    match plugin.notifier().unwrap().send(text("ntf-6", "x")).await {
        Err(PluginFailure::Plugin(PluginError::Refused(why))) => assert_eq!(why, "status 503"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_must_be_declared_as_0_1() {
    let manifest = KEEL_FIXTURE_WIT_0_1.manifest().unwrap();
    assert!(manifest.contains("wit = \"0.1.0\""), "{manifest}");
    let manifest = manifest.replace("wit = \"0.1.0\"", "wit = \"0.2.0\"");
    let Err(err) = PluginHarness::new()
        .load(
            KEEL_FIXTURE_WIT_0_1.wasm().unwrap(),
            &manifest,
            "endpoint = \"http://127.0.0.1:9/send\"",
        )
        .await
    else {
        panic!("a 0.1 component declared as 0.2 loaded");
    };
    assert!(
        err.message.contains(
            "plugin.toml says wit 0.2.0 but the component exports keel:plugin/notifier@0.1.0"
        ),
        "{err}"
    );
}
