//! Plugins built against `keel:plugin@0.1.0` keep working in a host whose current minor is
//! 0.2: the shipped WhatsApp notifier and Paynow gateway as they were built before the bump
//! (`tests/fixtures/wit-0.1/`, never rebuilt), driven through the current types against
//! the fake providers.
//!
//! What 0.2 added and 0.1 cannot carry (an attachment, a template header or buttons) is
//! answered `unsupported` by the host without calling the plugin, so nothing reaches the
//! provider; what 0.1 cannot report comes back empty (a status update's `at`, a reply's
//! headers).

use std::path::PathBuf;
use std::time::Duration;

use keel_plugin_host::gateway::{Gateway, PaymentRef, PaymentRequest, PaymentStatus};
use keel_plugin_host::notifier::{
    DeliveryStatus, InboundEvent, Media, Message, Notifier, NotifierPlugin, Template,
    TemplateButton, TemplateHeader,
};
use keel_plugin_host::{
    Contact, Features, InboundRequest, Money, OriginOverrides, Plugin, PluginError, PluginFailure,
};
use keel_testkit::paynow::FakePaynow;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::whatsapp::{APP_SECRET, FakeWhatsApp, PHONE_NUMBER_ID, VERIFY_TOKEN, Webhook};

const TOKEN: &str = "EAAG-keel-wit-0.1-test-token";
const CLIENT: &str = "263771234567";
const CLIENT_E164: &str = "+263771234567";
const GRAPH: &str = "https://graph.facebook.com";

fn fixture(name: &str) -> (Vec<u8>, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wit-0.1")
        .join(name);
    let wasm = std::fs::read(dir.join("plugin.wasm")).expect("the 0.1 component");
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("its plugin.toml");
    assert!(manifest.contains("wit = \"0.1.0\""), "{manifest}");
    (wasm, manifest)
}

async fn whatsapp(fake: &FakeWhatsApp) -> (PluginHarness, Plugin) {
    let (wasm, manifest) = fixture("whatsapp");
    let mut origins = OriginOverrides::new();
    origins
        .insert(GRAPH, &fake.origin())
        .expect("the fake is on loopback");
    let mut harness = PluginHarness::new().configure(move |c| c.origin_overrides = origins);
    let section = format!(
        "access_token = \"{TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n"
    );
    let plugin = harness
        .load(wasm, &manifest, &section)
        .await
        .unwrap_or_else(|e| panic!("loading the 0.1 WhatsApp plugin: {e}"));
    (harness, plugin)
}

fn text(reference: &str, body: &str) -> Message {
    Message {
        reference: reference.into(),
        to: CLIENT_E164.into(),
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

fn unsupported<T: std::fmt::Debug>(result: Result<T, PluginFailure>) {
    match result {
        Err(PluginFailure::Plugin(PluginError::Unsupported)) => {}
        other => panic!("expected unsupported, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_notifier_sends_reads_receipts_and_is_spared_what_it_cannot_carry() {
    let fake = FakeWhatsApp::builder()
        .access_token(TOKEN)
        .template("invoice_due", "en", 2)
        .retry_backoff(Duration::from_millis(10))
        .start()
        .await;
    let (_harness, plugin) = whatsapp(&fake).await;
    let info = plugin.info().expect("described at load");
    assert_eq!(info.name, "WhatsApp");
    assert!(
        info.features.contains(Features::INBOUND),
        "flags come up: {info:?}"
    );
    let notifier: NotifierPlugin = plugin.notifier().expect("a notifier");

    // Text inside the window and a plain template: sent, as before the bump.
    fake.user_says(CLIENT, "Is my invoice paid?").await;
    let receipt = notifier
        .send(text("ntf-1", "Invoice INV-42 is due"))
        .await
        .unwrap();
    assert_eq!(receipt.status, DeliveryStatus::Accepted);
    let templated = notifier
        .send(Message {
            template: Some(template()),
            ..text("ntf-2", "Invoice INV-42 is due")
        })
        .await
        .unwrap();
    assert_eq!(fake.sent().len(), 2);

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
                        kind: keel_plugin_host::notifier::ButtonKind::Url,
                        parameter: "v1.42.1893456000.ab".into(),
                    }],
                    ..template()
                }),
                ..text("ntf-5", "Your invoice")
            })
            .await,
    );
    assert_eq!(
        fake.sent().len(),
        2,
        "nothing more was sent: {:?}",
        fake.sent()
    );
    assert_eq!(fake.received().len(), 2, "nor asked for");

    // Receipts read by the 0.1 plugin come up without the provider's time; its reply
    // without headers.
    let bodies = fake.signed_bodies(&Webhook::statuses(&receipt.provider_id, &["sent", "read"]));
    let mut seen = Vec::new();
    for signed in &bodies {
        let inbound = notifier
            .verify_inbound(InboundRequest {
                method: "POST".into(),
                path: "/".into(),
                query: String::new(),
                headers: signed
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                    .collect(),
                body: signed.body.as_bytes().to_vec(),
            })
            .await
            .unwrap();
        assert_eq!(inbound.reply.status, 200);
        assert!(inbound.reply.headers.is_empty());
        for event in inbound.events {
            match event {
                InboundEvent::Status(s) => {
                    assert_eq!(s.provider_id, receipt.provider_id);
                    assert_eq!(s.at, None, "0.1 has no time for a receipt");
                    seen.push(s.status);
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(seen, [DeliveryStatus::Sent, DeliveryStatus::Read]);
    assert_ne!(templated.provider_id, receipt.provider_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_component_must_be_declared_as_0_1() {
    let (wasm, manifest) = fixture("whatsapp");
    let manifest = manifest.replace("wit = \"0.1.0\"", "wit = \"0.2.0\"");
    let section = format!(
        "access_token = \"{TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n"
    );
    let Err(err) = PluginHarness::new().load(wasm, &manifest, &section).await else {
        panic!("a 0.1 component declared as 0.2 loaded");
    };
    assert!(
        err.message.contains(
            "plugin.toml says wit 0.2.0 but the component exports keel:plugin/notifier@0.1.0"
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0_1_gateway_starts_and_polls_a_payment() {
    const ID: u64 = 21_436;
    const KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
    let fake = FakePaynow::builder(&[(ID, KEY)])
        .public_host("www.paynow.co.zw")
        .retry_backoff(Duration::from_millis(10))
        .start()
        .await;
    let (wasm, manifest) = fixture("paynow");
    let origin = format!("http://www.paynow.co.zw:{}", fake.port());
    let manifest = manifest.replace("\"https://www.paynow.co.zw\"", &format!("\"{origin}\""));
    let section = format!(
        "api_url = \"{origin}\"\nauth_email = \"merchant@example.co.zw\"\n\
         allow_networks = [\"{}/32\"]\nusd_integration_id = {ID}\nusd_integration_key = \"{KEY}\"\n",
        fake.ip()
    );
    let mut harness = PluginHarness::new().resolve("www.paynow.co.zw", fake.ip());
    let plugin = harness
        .load(wasm, &manifest, &section)
        .await
        .unwrap_or_else(|e| panic!("loading the 0.1 Paynow plugin: {e}"));
    assert!(plugin.info().unwrap().features.contains(Features::POLLING));
    let gateway = plugin.gateway().expect("a gateway");

    let started = gateway
        .initiate(PaymentRequest {
            reference: "pay_0001".into(),
            invoice_id: "INV-2026-00042".into(),
            amount: Money {
                minor: 2_500,
                currency: "USD".into(),
            },
            description: "Invoice INV-2026-00042".into(),
            payer: Contact {
                first_name: "Tendai".into(),
                last_name: "Moyo".into(),
                company: None,
                email: "tendai@moyo.example".into(),
                phone: Some(CLIENT_E164.into()),
                address: None,
            },
            return_url: "https://billing.example.com/pay/return/pay_0001".into(),
            callback_url: "https://billing.example.com/hooks/gateway/paynow".into(),
            method: None,
        })
        .await
        .unwrap();
    assert_eq!(started.status, PaymentStatus::Pending);
    assert_eq!(fake.transactions().len(), 1, "one transaction at the fake");

    let update = gateway
        .poll(PaymentRef {
            reference: "pay_0001".into(),
            provider_reference: started.provider_reference.clone(),
            state: started.state.clone(),
        })
        .await
        .unwrap();
    assert_eq!(update.reference, "pay_0001");
    assert_eq!(update.status, PaymentStatus::Pending);
}
