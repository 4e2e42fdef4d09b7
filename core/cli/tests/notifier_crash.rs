//! A WhatsApp message survives SIGKILL between the plugin's send and the recording of its
//! provider id, on SQLite and on PostgreSQL: the client receives it once.
//!
//! The real `keel serve` (CARGO_BIN_EXE_keel) runs the real WhatsApp plugin, whose requests to
//! `https://graph.facebook.com` go to the protocol-faithful fake WhatsApp in this test through
//! `--fake-origin`. Each trial places an order for a client who opted in to WhatsApp; its
//! invoice's `invoice_created` message is queued for WhatsApp (outside the customer-service
//! window: the approved template). The process serving the trial was started with
//! `KEEL_CRASH_POINT=after-notifier-send@keel-notification-{id}`: its job worker sends the
//! message through the plugin, and when it prints that it reached the point (the provider
//! answered, its id not yet recorded) the test kills it with SIGKILL. The next process, armed
//! for the next trial, finds the killed job's lease run out and sends the message again under
//! the same reference; a last process without a crash point takes the last retry.
//!
//! At the end every message is `sent` with the fake's message id, the fake was asked twice
//! for each (the killed send and its retry) and accepted each once: the reference is
//! `biz_opaque_callback_data`, on which the fake deduplicates. The real WhatsApp Cloud API
//! does not (docs/notifications.md, "Sending once"): what this proves is that Keel retries a
//! killed send, once, under the same reference, and loses none.

mod support;

use std::time::Instant;

use keel_app::notifications::{self, OptInInput};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, Ctx};
use keel_domain::ids::ClientId;
use keel_store::notifications::NotificationState;
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::whatsapp::{
    ACCESS_TOKEN, APP_SECRET, FakeWhatsApp, PHONE_NUMBER_ID, VERIFY_TOKEN,
};
use keel_testkit::{Backend, TestDb};
use support::serve::{Serve, until};

const TRIALS: usize = 6;
const NUMBER: &str = "+263771234567";

/// The client's WhatsApp message of the newest order (its `invoice_created`).
async fn whatsapp_message(db: &keel_store::Db, client: ClientId, invoice: i64) -> i64 {
    keel_store::notifications::of_client(db, client, 1000)
        .await
        .expect("the outbox")
        .into_iter()
        .find(|n| n.channel == "whatsapp" && n.invoice_id == Some(invoice))
        .unwrap_or_else(|| panic!("no WhatsApp message for invoice {invoice}"))
        .id
}

async fn is_sent(db: &keel_store::Db, id: i64) -> bool {
    keel_store::notifications::get(db, id)
        .await
        .expect("the notification")
        .is_some_and(|n| n.state == NotificationState::Sent)
}

async fn crash_and_retry(backend: Backend) {
    let started = Instant::now();
    let t = TestDb::new(backend).await;
    // The test places the orders, so it queues their messages: with the same channel and
    // template as the server's keel.toml below (a message's template is rendered when it is
    // queued).
    let template = keel_app::notify::TemplateMapping {
        name: "keel_invoice".into(),
        language: "en".into(),
        parameters: vec!["client.first_name".into(), "invoice.number".into()],
        header: None,
        buttons: Vec::new(),
    };
    let app = App::new(t.db.clone()).with_notifications(keel_app::notify::Settings {
        channels: [(
            "whatsapp".to_owned(),
            keel_app::notify::PluginChannel {
                plugin: "whatsapp".into(),
                window_hours: Some(24),
                templates: [("invoice_created".to_owned(), template)].into(),
            },
        )]
        .into(),
        ..Default::default()
    });
    let built = Scenario::new(&app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .client(Client::new("rudo@example.co.zw").name("Rudo", "Chikwanha"))
        .build()
        .await;
    let client = built.client("rudo@example.co.zw");
    let ctx = Ctx::system("test");
    notifications::opt_in(
        &app,
        &ctx,
        client,
        "whatsapp",
        &OptInInput {
            number: NUMBER.into(),
            source: Some("the crash test".into()),
        },
    )
    .await
    .expect("opted in");
    let place = |i: usize| {
        let app = app.clone();
        let ctx = ctx.clone();
        let product = built.product("Plan");
        async move {
            let order = orders::place(
                &app,
                &ctx,
                &OrderInput {
                    client_id: Some(client.get()),
                    currency: Some("USD".into()),
                    promo_code: None,
                    items: vec![OrderItem {
                        product_id: product.get(),
                        cycle: "monthly".into(),
                        options: vec![],
                        label: Some(format!("site-{i}.example")),
                        addons: vec![],
                    }],
                },
                Some(&format!("order-{i}")),
            )
            .await
            .expect("an order");
            whatsapp_message(&app.db, client, order.invoice.id.get()).await
        }
    };

    let fake = FakeWhatsApp::start().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("keel.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\n\
             [jobs]\nworkers = 2\nbatch = 1\nconcurrency = 1\nlease_seconds = 5\npoll_seconds = 1\n\n\
             [plugin_host]\ncache_dir = {cache:?}\n\n\
             [plugins.whatsapp]\naccess_token = \"{ACCESS_TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
             app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n\n\
             [notifications.whatsapp]\nplugin = \"whatsapp\"\n\n\
             [notifications.whatsapp.templates.invoice_created]\nname = \"keel_invoice\"\nlanguage = \"en\"\n\
             parameters = [\"client.first_name\", \"invoice.number\"]\n",
            cache = dir.path().join("plugin-cache").display().to_string(),
        ),
    )
    .expect("write keel.toml");

    let graph = format!("https://graph.facebook.com={}", fake.origin());
    let arm = |id: i64| {
        Some(format!(
            "after-notifier-send@{}",
            notifications::reference(id)
        ))
    };
    let mut ids: Vec<i64> = Vec::new();
    let first = place(0).await;
    let mut serve = Serve::start(dir.path(), &t.url, &graph, arm(first)).await;
    ids.push(first);
    for i in 0..TRIALS {
        let id = ids[i];
        let marker = format!(
            "KEEL_CRASH_POINT reached: after-notifier-send {}",
            notifications::reference(id)
        );
        serve
            .wait_for_line(|l| l == marker, &format!("the send of trial {i}"))
            .await;
        // This process also took the retry of the previous trial's killed send: let it be
        // recorded before this process dies.
        if i > 0 {
            let previous = ids[i - 1];
            until(&format!("trial {} sent by the retry", i - 1), || {
                is_sent(&t.db, previous)
            })
            .await;
        }
        serve.kill().await;
        assert!(
            !is_sent(&t.db, id).await,
            "killed before the provider id was recorded"
        );
        let next = if i + 1 < TRIALS {
            let next = place(i + 1).await;
            ids.push(next);
            arm(next)
        } else {
            None
        };
        serve = Serve::start(dir.path(), &t.url, &graph, next).await;
    }
    let last = *ids.last().expect("a trial");
    until("the last trial sent by the retry", || is_sent(&t.db, last)).await;
    serve.kill().await;

    // Every message sent once, recorded with the fake's id; each was sent twice under one
    // reference (the killed attempt and its retry), and the fake accepted it once.
    let sent = fake.sent();
    assert_eq!(sent.len(), TRIALS, "one message per trial: {sent:#?}");
    for id in &ids {
        let n = keel_store::notifications::get(&t.db, *id)
            .await
            .unwrap()
            .unwrap();
        let reference = notifications::reference(*id);
        let at_fake: Vec<_> = sent
            .iter()
            .filter(|m| m.biz_opaque_callback_data.as_deref() == Some(reference.as_str()))
            .collect();
        assert_eq!(at_fake.len(), 1, "{reference}: {sent:#?}");
        assert_eq!(
            at_fake[0].repeats, 1,
            "{reference}: sent again once, after the kill"
        );
        assert_eq!(at_fake[0].template_name(), Some("keel_invoice"));
        assert_eq!(at_fake[0].to, NUMBER.trim_start_matches('+'));
        assert_eq!(n.state, NotificationState::Sent, "{reference}");
        assert_eq!(
            n.provider_id.as_deref(),
            Some(at_fake[0].wamid.as_str()),
            "{reference}"
        );
        assert_eq!(
            n.attempts, 1,
            "{reference}: the killed attempt recorded nothing"
        );
    }
    eprintln!(
        "[{backend:?}] {TRIALS} WhatsApp sends killed before their id was recorded, each retried and received once; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    fake.stop().await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_send_killed_before_its_id_is_recorded_is_received_once_on_sqlite() {
    crash_and_retry(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whatsapp_send_killed_before_its_id_is_recorded_is_received_once_on_postgres() {
    crash_and_retry(Backend::Postgres).await;
}
