//! `keel notify`: WhatsApp (`[notifications.whatsapp]`, the shipped `whatsapp` notifier) from
//! the command line, against the fake WhatsApp Cloud API on loopback
//! (`keel_testkit::whatsapp::FakeWhatsApp`; keel.toml's `[plugin_host] fake_origins` sends
//! the plugin's requests for graph.facebook.com there).
//!
//! - `notify test` sends a text and a template straight through the plugin, and the fake
//!   records exactly them, the reference (`keel-test-<millis>`) as `biz_opaque_callback_data`;
//!   it opens no database.
//! - A wrong token is the plugin's `misconfigured` error, exit 1, the token never shown; a
//!   number that is not E.164 is refused (exit 2) before any request.
//! - A channel Keel cannot serve (a template for an unknown event or value, a plugin that is
//!   not enabled or not a notifier) stops `notify test`, `config check` and `serve` (exit 2)
//!   naming the key; the demo configuration's credentials are the fake's.
//! - `notify list` shows a client's notifications (a template sent through the real plugin,
//!   an email skipped) on both engines.

mod support;

use std::path::Path;
use std::sync::Arc;

use keel_app::notifications::{self, Notifiers, OptInInput};
use keel_app::notify::{PluginChannel, Settings, TemplateMapping};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, Ctx};
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::whatsapp::{APP_SECRET, FakeWhatsApp, PHONE_NUMBER_ID, VERIFY_TOKEN};
use keel_testkit::{Backend, TestDb};
use support::{Ran, keel};

/// The access token the fake requires (not its default, so a plugin sending anything but
/// its setting would be noticed).
const TOKEN: &str = "EAAG-keel-notify-cli-token-4Kx9";
/// The recipient, as Keel writes it and as WhatsApp does.
const TO: &str = "+263771234567";
const WA_ID: &str = "263771234567";
const GRAPH: &str = "https://graph.facebook.com";

/// keel.toml in `dir`: the database in `dir` (never opened by `notify test`), the fake
/// origin, `[plugins.whatsapp]` with `token`, `[notifications.whatsapp]`, then `extra`.
fn config(dir: &Path, fake: &FakeWhatsApp, token: &str, extra: &str) -> String {
    let path = dir.join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{db}\"\n\n\
             [plugin_host]\nfake_origins = {{ \"{GRAPH}\" = \"{origin}\" }}\n\n\
             [plugins.whatsapp]\naccess_token = \"{token}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
             app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n\n\
             [notifications.whatsapp]\n\n\
             [notifications.whatsapp.templates.payment_reminder]\nname = \"payment_reminder\"\n\
             language = \"en\"\nparameters = [\"client.first_name\", \"invoice.number\"]\n{extra}",
            db = dir.join("keel.db").display(),
            origin = fake.origin(),
        ),
    )
    .unwrap();
    path.display().to_string()
}

async fn notify_test(dir: &Path, config: &str, args: &[&str]) -> Ran {
    let mut all = vec![
        "--config",
        config,
        "notify",
        "test",
        "--channel",
        "whatsapp",
    ];
    all.extend_from_slice(args);
    keel(dir, &all).await
}

/// The `keel-test-<unix millis>` reference of a test send.
fn is_test_reference(text: &str) -> bool {
    text.strip_prefix("keel-test-")
        .is_some_and(|ms| ms.len() >= 13 && ms.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test]
async fn notify_test_sends_a_text_and_a_template_exactly_as_given() {
    let fake = FakeWhatsApp::builder().access_token(TOKEN).start().await;
    // The client wrote first: free-form text may go for 24 hours.
    fake.open_window(WA_ID);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &fake, TOKEN, "");

    let text = notify_test(
        dir.path(),
        &config,
        &["--to", TO, "--text", "Hello from Keel", "--json"],
    )
    .await;
    text.exits(0);
    let answer = text.json();
    let reference = answer["reference"].as_str().unwrap().to_owned();
    assert!(is_test_reference(&reference), "{answer}");
    let sent = fake.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0];
    assert_eq!(
        (
            m.to.as_str(),
            m.kind(),
            m.text(),
            m.biz_opaque_callback_data.as_deref(),
            m.phone_number_id.as_str()
        ),
        (
            WA_ID,
            "text",
            Some("Hello from Keel"),
            Some(reference.as_str()),
            PHONE_NUMBER_ID
        )
    );
    assert_eq!(answer["provider_id"], m.wamid.as_str(), "{answer}");
    assert_eq!(
        (
            answer["status"].as_str(),
            answer["kind"].as_str(),
            answer["to"].as_str()
        ),
        (Some("accepted"), Some("text"), Some(TO))
    );

    // A template, its parameters in order; the number may be written with separators.
    let template = notify_test(
        dir.path(),
        &config,
        &[
            "--to",
            "+263 77 123 4567",
            "--template",
            "payment_reminder",
            "--language",
            "en_US",
            "--param",
            "Tariro",
            "--param",
            "INV-2026-00042",
        ],
    )
    .await;
    template
        .exits(0)
        .prints("sent a test template to +263771234567 through whatsapp (plugin whatsapp)")
        .prints("status:      accepted");
    let sent = fake.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    let m = &sent[1];
    let printed = |label: &str| {
        template
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {label} line in:\n{}", template.stdout))
    };
    let reference = printed("reference:");
    assert!(is_test_reference(&reference), "{reference}");
    assert_eq!(printed("provider id:"), m.wamid);
    assert_eq!(
        (
            m.to.as_str(),
            m.kind(),
            m.template_name(),
            m.body_parameters(),
            m.biz_opaque_callback_data.as_deref()
        ),
        (
            WA_ID,
            "template",
            Some("payment_reminder"),
            vec!["Tariro", "INV-2026-00042"],
            Some(reference.as_str())
        )
    );
    assert_eq!(
        m.request["template"]["language"]["code"], "en_US",
        "{}",
        m.request
    );
    // A test send writes nothing: the configured database was never opened.
    assert!(!dir.path().join("keel.db").exists());
    fake.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_the_plugin_s_misconfigured_error_and_is_never_shown() {
    let fake = FakeWhatsApp::builder().access_token(TOKEN).start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "EAAG-not-the-token-0000-wrong";
    let wrong_token = config(dir.path(), &fake, wrong, "");

    let ran = notify_test(
        dir.path(),
        &wrong_token,
        &["--to", TO, "--template", "payment_reminder"],
    )
    .await;

    ran.exits(1)
        .says("the whatsapp plugin did not send the test template: misconfigured:")
        .says("access_token");
    for out in [&ran.stdout, &ran.stderr] {
        assert!(!out.contains(wrong), "the token is shown:\n{out}");
        assert!(!out.contains(TOKEN), "the fake's token is shown:\n{out}");
    }
    assert_eq!(ran.stdout, "");
    // The fake saw the request (and refused it); nothing was sent.
    assert_eq!(fake.received().len(), 1);
    assert!(fake.sent().is_empty());

    // Text to a number that has not written: WhatsApp's window refusal, as the plugin says it.
    let ran = notify_test(
        dir.path(),
        &config(dir.path(), &fake, TOKEN, ""),
        &["--to", TO],
    )
    .await;
    ran.exits(1)
        .says("the whatsapp plugin did not send the test text:");
    assert!(fake.sent().is_empty());
    fake.stop().await;
}

#[tokio::test]
async fn a_number_that_is_not_e164_and_bad_flags_are_refused_before_any_send() {
    let fake = FakeWhatsApp::builder().access_token(TOKEN).start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &fake, TOKEN, "");

    for (to, why) in [
        ("0771234567", "include the country code, starting with +"),
        ("00263771234567", "write + instead of the leading 00"),
        ("+263-77x", "only digits"),
        ("+2637", "too short"),
    ] {
        notify_test(dir.path(), &config, &["--to", to, "--text", "hi"])
            .await
            .exits(2)
            .says("--to:")
            .says(why)
            .says("E.164");
    }
    notify_test(dir.path(), &config, &["--to", TO, "--text", " "])
        .await
        .exits(2)
        .says("--text is empty");
    // --param belongs to a template.
    notify_test(dir.path(), &config, &["--to", TO, "--param", "x"])
        .await
        .exits(2)
        .says("--template");
    keel(
        dir.path(),
        &[
            "--config",
            &config,
            "notify",
            "test",
            "--channel",
            "sms",
            "--to",
            TO,
        ],
    )
    .await
    .exits(2)
    .says("--channel sms: not a configured channel (configured: whatsapp)");
    keel(
        dir.path(),
        &["notify", "test", "--channel", "whatsapp", "--to", TO],
    )
    .await
    .exits(2)
    .says("add a [notifications.whatsapp] section");
    assert!(
        fake.received().is_empty(),
        "a request reached the fake: {:?}",
        fake.received()
    );
    fake.stop().await;
}

#[tokio::test]
async fn a_channel_keel_cannot_serve_refuses_to_start_naming_the_key() {
    let fake = FakeWhatsApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let unknown_event = config(
        dir.path(),
        &fake,
        TOKEN,
        "[notifications.whatsapp.templates.invoice_paid]\nname = \"paid\"\nlanguage = \"en\"\n",
    );
    for args in [
        vec!["--config", &unknown_event, "config", "check"],
        vec!["--config", &unknown_event, "serve"],
        vec![
            "--config",
            &unknown_event,
            "notify",
            "test",
            "--channel",
            "whatsapp",
            "--to",
            TO,
        ],
    ] {
        keel(dir.path(), &args)
            .await
            .exits(2)
            .says("notifications.whatsapp.templates.invoice_paid: \"invoice_paid\" is not an event clients are notified of");
    }

    let unknown_value = config(
        dir.path(),
        &fake,
        TOKEN,
        "[notifications.whatsapp.templates.invoice_created]\nname = \"new_invoice\"\nlanguage = \"en\"\n\
         parameters = [\"invoice.number\", \"invoice.amount\"]\n",
    );
    keel(dir.path(), &["--config", &unknown_value, "serve"])
        .await
        .exits(2)
        .says("notifications.whatsapp.templates.invoice_created: parameters[1]: \"invoice.amount\" is not a value of invoice_created");

    // A channel on a plugin that is not enabled, or enabled but a gateway.
    let path = dir.path().join("other.toml");
    std::fs::write(
        &path,
        "[notifications.whatsapp]\nplugin = \"bank-transfer\"\n",
    )
    .unwrap();
    let other = path.display().to_string();
    keel(dir.path(), &["--config", &other, "serve"])
        .await
        .exits(2)
        .says("notifications.whatsapp.plugin: the notifier plugin `bank-transfer` is not enabled");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[plugins.bank-transfer]\ninstructions = \"First Bank\"\n\
             [notifications.whatsapp]\nplugin = \"bank-transfer\"\n",
            dir.path().join("keel.db").display()
        ),
    )
    .unwrap();
    for command in [
        &["serve"][..],
        &["notify", "test", "--channel", "whatsapp", "--to", TO],
    ] {
        let mut args = vec!["--config", &other];
        args.extend_from_slice(command);
        keel(dir.path(), &args)
            .await
            .exits(2)
            .says("notifications.whatsapp.plugin: plugin `bank-transfer` is not a notifier (its kinds: gateway)");
    }
    // Refused before the database was touched.
    assert!(!dir.path().join("keel.db").exists());
    assert!(fake.received().is_empty());
    fake.stop().await;
}

/// examples/demo-whatsapp.toml with its fake origin and database moved into `dir`: its
/// credentials are the ones `keel-fake whatsapp` serves by default.
#[tokio::test]
async fn the_demo_configuration_sends_through_the_fake_with_its_defaults() {
    let fake = FakeWhatsApp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-whatsapp.toml"),
    )
    .unwrap();
    assert!(demo.contains("http://127.0.0.1:8092"));
    let demo = demo
        .replace("http://127.0.0.1:8092", &fake.origin())
        .replace(
            "sqlite://keel-demo-whatsapp.db",
            &format!("sqlite://{}", dir.path().join("keel.db").display()),
        );
    let path = dir.path().join("demo-whatsapp.toml");
    std::fs::write(&path, demo).unwrap();
    let config = path.display().to_string();

    notify_test(
        dir.path(),
        &config,
        &[
            "--to",
            TO,
            "--template",
            "payment_reminder",
            "--param",
            "Tariro",
            "--param",
            "INV-2026-00001",
            "--param",
            "USD",
            "--param",
            "12.50",
            "--param",
            "2026-12-31",
        ],
    )
    .await
    .exits(0)
    .prints("provider id: wamid.");
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body_parameters().len(), 5);
    fake.stop().await;
}

// `notify list`: a client's notifications, on both engines.

async fn notify_list_shows_a_client_s_notifications(backend: Backend) {
    let t = TestDb::new(backend).await;
    let fake = FakeWhatsApp::builder().access_token(TOKEN).start().await;
    // The real plugin in the real host, its requests for graph.facebook.com sent to the fake.
    let artifact = &keel_plugins::KEEL_PLUGIN_WHATSAPP;
    let mut origins = keel_plugin_host::OriginOverrides::new();
    origins.insert(GRAPH, &fake.origin()).unwrap();
    let mut harness = keel_testkit::plugins::PluginHarness::new()
        .configure(move |c| c.origin_overrides = origins);
    let plugin = harness
        .load(
            artifact.wasm().unwrap(),
            &artifact.manifest().unwrap(),
            &format!(
                "access_token = \"{TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
                 app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n"
            ),
        )
        .await
        .unwrap();
    let mut notifiers = Notifiers::default();
    notifiers.add("whatsapp", Arc::new(plugin.notifier().unwrap()));
    let channel = PluginChannel {
        plugin: "whatsapp".into(),
        window_hours: Some(24),
        templates: [(
            "invoice_created".to_owned(),
            TemplateMapping {
                name: "new_invoice".into(),
                language: "en".into(),
                parameters: vec!["client.first_name".into(), "invoice.number".into()],
                header: None,
                buttons: Vec::new(),
            },
        )]
        .into(),
    };
    let app = App::new(t.db.clone())
        .with_notifications(Settings {
            channels: [("whatsapp".to_owned(), channel)].into(),
            ..Default::default()
        })
        .with_notifiers(notifiers);
    let world = Scenario::new(&app)
        .product(Product::new("Starter").monthly(500))
        .client(Client::new("tariro@example.com").name("Tariro", "Moyo"))
        .build()
        .await;
    let client = world.client("tariro@example.com");
    let ctx = Ctx::system("test");
    notifications::opt_in(
        &app,
        &ctx,
        client,
        "whatsapp",
        &OptInInput {
            number: TO.into(),
            source: Some("asked on the phone".into()),
        },
    )
    .await
    .unwrap();
    // The order issues an invoice: "invoice created" by email (off: skipped) and WhatsApp.
    let order = orders::place(
        &app,
        &ctx,
        &OrderInput {
            client_id: Some(client.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: world.product("Starter").get(),
                cycle: "monthly".into(),
                options: vec![],
                label: Some("tariro.example".into()),
                addons: vec![],
            }],
        },
        None,
    )
    .await
    .unwrap();
    let number = order.invoice.number.clone().unwrap();
    let queued = notifications::of_client(&app, &ctx, client).await.unwrap();
    let whatsapp = queued
        .iter()
        .find(|n| n.channel == "whatsapp")
        .unwrap_or_else(|| panic!("no WhatsApp notification in {queued:?}"))
        .id;
    // Outside the window: its `notification.send` job sends the approved template through
    // the real plugin and records the provider's id.
    let clock = app.clock.clone();
    let worker = keel_jobs::Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        keel_jobs::WorkerConfig::new("default", "notify-cli-test"),
        Arc::new(move || clock.now()),
    );
    let stop = tokio::sync::watch::channel(false).1;
    while worker.tick(&stop).await.unwrap().claimed > 0 {}
    let sent = fake.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            sent[0].template_name(),
            sent[0].body_parameters(),
            sent[0].biz_opaque_callback_data.clone()
        ),
        (
            Some("new_invoice"),
            vec!["Tariro", number.as_str()],
            Some(notifications::reference(whatsapp))
        )
    );
    let wamid = sent[0].wamid.clone();

    let id = client.get().to_string();
    let work = tempfile::tempdir().unwrap();
    let listed = keel(
        work.path(),
        &[
            "--database",
            &t.url,
            "notify",
            "list",
            "--client",
            &id,
            "--json",
        ],
    )
    .await;
    let rows = listed.exits(0).json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let on = |channel: &str| {
        rows.iter()
            .find(|r| r["channel"] == channel)
            .unwrap_or_else(|| panic!("no {channel} row in {rows:#?}"))
    };
    let w = on("whatsapp");
    assert_eq!(
        (
            w["id"].as_i64(),
            w["event"].as_str(),
            w["recipient"].as_str(),
            w["state"].as_str(),
            w["delivery"].as_str(),
            w["provider_id"].as_str()
        ),
        (
            Some(whatsapp),
            Some("invoice_created"),
            Some(TO),
            Some("sent"),
            Some("accepted"),
            Some(wamid.as_str())
        ),
        "{w:#}"
    );
    let e = on("email");
    assert_eq!(
        (
            e["event"].as_str(),
            e["recipient"].as_str(),
            e["state"].as_str(),
            e["last_error"].as_str()
        ),
        (
            Some("invoice_created"),
            Some("tariro@example.com"),
            Some("skipped"),
            Some("email is not configured ([email] smtp_url)")
        ),
        "{e:#}"
    );

    let table = keel(
        work.path(),
        &["--database", &t.url, "notify", "list", "--client", &id],
    )
    .await;
    table
        .exits(0)
        .prints("PROVIDER ID")
        .prints(&wamid)
        .prints(TO)
        .prints("reason: email is not configured ([email] smtp_url)");
    let row = table.stdout.lines().find(|l| l.contains(&wamid)).unwrap();
    for column in ["invoice_created", "whatsapp", "sent", "accepted"] {
        assert!(row.contains(column), "{column} in {row:?}");
    }

    keel(
        work.path(),
        &["--database", &t.url, "notify", "list", "--client", "999999"],
    )
    .await
    .exits(1)
    .says("client");
    fake.stop().await;
    t.finish().await;
}

#[tokio::test]
async fn notify_list_shows_a_client_s_notifications_on_sqlite() {
    notify_list_shows_a_client_s_notifications(Backend::Sqlite).await;
}

#[tokio::test]
async fn notify_list_shows_a_client_s_notifications_on_postgres() {
    notify_list_shows_a_client_s_notifications(Backend::Postgres).await;
}
