//! WhatsApp end to end over HTTP, on both engines (issue 18): Keel's API serving the real
//! WhatsApp component (`plugins/notifier-whatsapp`) in the real plugin host, its sends
//! reaching the protocol-faithful fake Cloud API (`keel_testkit::whatsapp::FakeWhatsApp`) on
//! loopback, and the fake acting as Meta toward Keel: signed status and message webhooks
//! POSTed over real HTTP to `/hooks/notifier/whatsapp`, and the GET subscription check.
//! Email goes to the test kit's SMTP sink; the `notification.send` jobs run on a real
//! `keel_jobs::Worker` drained on a fixed clock. The fake's clock is frozen at the same
//! instant as Keel's and moved with it, so both see one 24-hour window.
//!
//! How the component reaches the fake: its own manifest and default `api_base`
//! (`https://graph.facebook.com`), with the host's fake-origin map moving the connection to
//! the fake, as `keel serve --fake-origin` does (core/testkit/tests/whatsapp_plugin.rs).
//!
//! Covered: the issue's "Done when" (a renewal invoice as the approved template outside the
//! window and by email, receipts sent → delivered → read, the client writing in, the
//! reminder then as text, STOP opting the client out and the next notice skipped, forged
//! and unsigned webhooks refused); twenty duplicate receipts out of order; the fake down
//! for a day of test-clock time; the subscription check; a receipt for an unknown message
//! and replayed webhooks; a template missing a parameter; a number that is not E.164; a new
//! invoice as its PDF document inside the window and in the template's header outside it,
//! the link serving the PDF until it expires.

mod common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::*;
use keel_app::billing_run::{self, RunOptions};
use keel_app::notifications::{
    self, ConsentView, InboundView, NotificationView, Notifiers, OptInInput,
};
use keel_app::notify::{PluginChannel, Settings, TemplateMapping};
use keel_app::{App, AppError, Clock, Ctx, FixedClock, dunning};
use keel_domain::ids::ClientId;
use keel_jobs::{Worker, WorkerConfig};
use keel_plugin_host::{OriginOverrides, Plugin};
use keel_store::notifications::{Delivery, NotificationState};
use keel_testkit::TestDb;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::book::{self, BookOptions};
use keel_testkit::smtp::SmtpSink;
use keel_testkit::whatsapp::{
    APP_SECRET, Content, FakeWhatsApp, Inbound, PHONE_NUMBER_ID, SignedBody, VERIFY_TOKEN, Webhook,
};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The client's WhatsApp number as WhatsApp writes it (digits) and as Keel keeps it (E.164).
const CLIENT: &str = "263771234567";
const CLIENT_E164: &str = "+263771234567";
/// The access token the fake requires and the plugin is given.
const TOKEN: &str = "EAAG-keel-api-whatsapp-test-4Rt9";
/// The origin the shipped manifest grants and the plugin's `api_base` defaults to.
const GRAPH: &str = "https://graph.facebook.com";
/// The hook the fake posts to.
const HOOK: &str = "/hooks/notifier/whatsapp";

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ten_am(day: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d(day).and_hms_opt(10, 0, 0).unwrap())
}

fn ctx() -> Ctx {
    Ctx::system("test")
}

fn mapping(name: &str, parameters: &[&str]) -> TemplateMapping {
    TemplateMapping {
        name: name.into(),
        language: "en".into(),
        parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
        header: None,
        buttons: Vec::new(),
    }
}

/// The approved templates of `[notifications.whatsapp.templates.*]` most tests use.
fn templates() -> BTreeMap<String, TemplateMapping> {
    BTreeMap::from([
        (
            "invoice_created".to_owned(),
            mapping(
                "invoice_ready",
                &[
                    "client.first_name",
                    "invoice.number",
                    "invoice.balance",
                    "invoice.due_date",
                ],
            ),
        ),
        (
            "payment_reminder".to_owned(),
            mapping(
                "payment_due",
                &["client.first_name", "invoice.number", "days"],
            ),
        ),
        (
            "invoice_overdue".to_owned(),
            mapping(
                "invoice_late",
                &["client.first_name", "invoice.number", "days"],
            ),
        ),
    ])
}

/// The shipped WhatsApp component with its own manifest, its connections to
/// `https://graph.facebook.com` moved to the fake. The harness must outlive the plugin.
async fn load_plugin(fake: &FakeWhatsApp) -> (PluginHarness, Plugin) {
    let artifact = &keel_plugins::KEEL_PLUGIN_WHATSAPP;
    let manifest = artifact.manifest().expect("the WhatsApp plugin.toml");
    let wasm = artifact.wasm().expect("the built WhatsApp component");
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
        .unwrap_or_else(|e| panic!("loading the WhatsApp plugin: {e}"));
    (harness, plugin)
}

/// Everything a test stands on: the server with the plugin, the fake, the sink, the worker,
/// and one client (with two services sharing a renewal due 2027-03-01) who opted in to
/// WhatsApp unless the test said otherwise. Keel's clock and the fake's stand at
/// 2027-02-20 10:00 UTC.
struct World {
    api: Api,
    /// The application the server runs (and the worker).
    app: App,
    clock: Arc<FixedClock>,
    fake: FakeWhatsApp,
    sink: SmtpSink,
    worker: Worker,
    client: ClientId,
    _harness: PluginHarness,
}

async fn world(t: &TestDb, templates: BTreeMap<String, TemplateMapping>, opt_in: bool) -> World {
    let start = ten_am("2027-02-20");
    let fake = FakeWhatsApp::builder()
        .access_token(TOKEN)
        .clock_at(start.timestamp())
        .template("invoice_ready", "en", 4)
        .template("payment_due", "en", 3)
        .template("invoice_late", "en", 3)
        .template("invoice_pay", "en", 2)
        .retry_backoff(Duration::from_millis(20))
        .delivery_attempts(3)
        .start()
        .await;
    let (harness, plugin) = load_plugin(&fake).await;
    let sink = SmtpSink::start().await;
    let clock = Arc::new(FixedClock::new(start));
    let app = App::with_clock(t.db.clone(), clock.clone())
        .with_notifications(Settings {
            channels: BTreeMap::from([(
                "whatsapp".to_owned(),
                PluginChannel {
                    plugin: "whatsapp".into(),
                    window_hours: Some(24),
                    templates,
                },
            )]),
            smtp_url: Some(sink.url()),
            from: "Keel Billing <billing@keel.test>".into(),
            theme_dir: None,
        })
        .with_notifiers(Notifiers::from_plugins(std::slice::from_ref(&plugin)));
    let api = Api::start_serving(t, keel_api::ApiConfig::default(), app.clone()).await;
    fake.set_webhook(api.url(HOOK));
    book::seed_book(
        &app,
        &BookOptions {
            services: 2,
            seed: 9,
            due_on: d("2027-03-01"),
            services_per_client: (2, 2),
            wallet_percent: 0,
        },
    )
    .await
    .unwrap();
    let clients = api.all_items("/api/v1/clients").await;
    assert_eq!(clients.len(), 1, "{clients:?}");
    let client = ClientId(clients[0]["id"].as_i64().unwrap());
    if opt_in {
        let consent = notifications::opt_in(
            &app,
            &ctx(),
            client,
            "whatsapp",
            &OptInInput {
                number: "+263 77 123 4567".into(),
                source: Some("ticked the WhatsApp box at checkout".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (consent.address.as_str(), consent.active),
            (CLIENT_E164, true)
        );
    }
    let worker_clock = clock.clone();
    let worker = Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        WorkerConfig::new("default", "whatsapp-test"),
        Arc::new(move || worker_clock.now()),
    );
    World {
        api,
        app,
        clock,
        fake,
        sink,
        worker,
        client,
        _harness: harness,
    }
}

impl World {
    /// Runs every job that is due now, including the ones they enqueue.
    async fn drain(&self) {
        let stop = tokio::sync::watch::channel(false).1;
        while self.worker.tick(&stop).await.unwrap().claimed > 0 {}
    }

    /// Moves Keel's clock and the fake's to `at` (never back).
    fn advance_to(&self, at: DateTime<Utc>) {
        let by = at - self.clock.now();
        assert!(by >= chrono::Duration::zero(), "time moves forward only");
        self.clock.set(at);
        self.fake.advance(by.to_std().unwrap());
    }

    fn advance(&self, by: chrono::Duration) {
        self.advance_to(self.clock.now() + by);
    }

    /// The billing run of 2027-02-20 (issues the renewal), and its jobs.
    async fn bill(&self) {
        let report = billing_run::run(
            &self.app,
            &ctx(),
            &RunOptions {
                as_of: d("2027-02-20"),
                dry_run: false,
            },
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(report.invoices, 1, "one renewal invoice: {report:?}");
        self.drain().await;
    }

    /// Dunning at 10:00 on `day`, and its jobs.
    async fn dun(&self, day: &str) {
        self.advance_to(ten_am(day));
        dunning::run(&self.app, &ctx(), d(day)).await.unwrap();
        self.drain().await;
    }

    async fn notifications(&self) -> Vec<NotificationView> {
        notifications::of_client(&self.app, &ctx(), self.client)
            .await
            .unwrap()
    }

    /// The client's one notification of `event` on `channel`.
    async fn notification(&self, channel: &str, event: &str) -> NotificationView {
        let all = self.notifications().await;
        let found: Vec<_> = all
            .iter()
            .filter(|n| n.channel == channel && n.event == event)
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one {channel} {event}: {all:#?}");
        found.into_iter().next().unwrap()
    }

    async fn whatsapp(&self, event: &str) -> NotificationView {
        self.notification("whatsapp", event).await
    }

    async fn consents(&self) -> Vec<ConsentView> {
        notifications::consents(&self.app, &ctx(), self.client)
            .await
            .unwrap()
    }

    async fn inbound(&self) -> Vec<InboundView> {
        notifications::inbound_of_client(&self.app, &ctx(), self.client)
            .await
            .unwrap()
    }

    /// What a refused webhook must leave as it was.
    async fn state(&self) -> (Vec<NotificationView>, Vec<ConsentView>, Vec<InboundView>) {
        (
            self.notifications().await,
            self.consents().await,
            self.inbound().await,
        )
    }

    /// POSTs one body to the hook with exactly the headers the fake would send (the test
    /// reads Keel's answer itself).
    async fn post(&self, signed: &SignedBody) -> Reply {
        let mut request = self
            .api
            .request(Method::POST, HOOK)
            .body(signed.body.clone());
        for (name, value) in &signed.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        self.api.send(request).await
    }

    /// The one body `webhook` makes.
    fn body(&self, webhook: &Webhook) -> SignedBody {
        let mut bodies = self.fake.signed_bodies(webhook);
        assert_eq!(bodies.len(), 1);
        bodies.remove(0)
    }

    async fn finish(self) {
        keel_testkit::assert_ledger_balanced(&self.app.db).await;
        self.fake.stop().await;
        self.api.stop().await;
    }
}

#[track_caller]
fn all_succeeded(deliveries: &[keel_testkit::whatsapp::Delivery]) {
    assert!(
        !deliveries.is_empty() && deliveries.iter().all(|d| d.succeeded()),
        "{deliveries:#?}"
    );
}

keel_testkit::store_test!(
    async fn an_opted_in_client_gets_the_invoice_as_a_template_then_text_until_stop(t) {
        let w = world(t, templates(), true).await;
        // Meta's GET check of the callback passes.
        assert!(w.fake.verify_webhook().await.passed());

        // The renewal: by email, and on WhatsApp as the approved template (the client
        // never wrote, so the window is closed).
        w.bill().await;
        let created = w.whatsapp("invoice_created").await;
        let invoice_id = created.invoice_id.expect("the invoice's message");
        let invoice = keel_app::invoices::get(&w.app, &ctx(), keel_domain::ids::InvoiceId(invoice_id)).await.unwrap();
        let number = invoice.number.clone().unwrap();
        let first_name = keel_app::clients::get_client(&w.app, &ctx(), w.client).await.unwrap().first_name;
        let mails = w.sink.messages();
        assert_eq!(mails.len(), 1, "{mails:?}");
        assert!(mails[0].header("Subject").unwrap().starts_with(&format!("Invoice {number}")), "{:?}", mails[0].header("Subject"));
        assert_eq!(w.notification("email", "invoice_created").await.state, NotificationState::Sent);

        let sent = w.fake.sent();
        assert_eq!(sent.len(), 1, "{sent:#?}");
        let m = &sent[0];
        assert_eq!((m.to.as_str(), m.phone_number_id.as_str()), (CLIENT, PHONE_NUMBER_ID));
        match &m.content {
            Content::Template { name, language, .. } => assert_eq!((name.as_str(), language.as_str()), ("invoice_ready", "en")),
            other => panic!("outside the window only a template may go, not {other:?}"),
        }
        assert_eq!(
            m.body_parameters(),
            vec![first_name.as_str(), number.as_str(), invoice.balance_due.amount.as_str(), "2027-03-01"]
        );
        assert_eq!(m.biz_opaque_callback_data.as_deref(), Some(format!("keel-notification-{}", created.id).as_str()));
        assert_eq!((created.state, created.recipient.as_str()), (NotificationState::Sent, CLIENT_E164));
        assert_eq!(created.provider_id.as_deref(), Some(m.wamid.as_str()));
        assert_eq!(created.delivery, Some(Delivery::Accepted));

        // Meta's receipts, in order: the notification ends read.
        let wamid = m.wamid.clone();
        all_succeeded(&w.fake.statuses(&wamid, &["sent", "delivered", "read"]).await);
        let read = w.whatsapp("invoice_created").await;
        assert_eq!((read.provider_id.as_deref(), read.delivery), (Some(wamid.as_str()), Some(Delivery::Read)), "{read:#?}");

        // The receipts show in the API (the admin's view of the client's notifications).
        let listed = w.api.get(&format!("/api/v1/clients/{}/notifications", w.client.get()), &w.api.admin).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let shown = listed.body.as_array().expect("a list").iter().find(|n| n["id"] == read.id).cloned().unwrap_or_else(|| panic!("{}", listed.text));
        assert_eq!((&shown["channel"], &shown["provider_id"], &shown["delivery"]), (&Value::from("whatsapp"), &Value::from(wamid.as_str()), &Value::from("read")), "{shown}");

        // The client writes in on the 22nd at 09:00: stored against the client.
        w.advance_to(ten_am("2027-02-22") - chrono::Duration::hours(1));
        let said = w.fake.user_says(CLIENT, "Is my invoice paid? Ndatenda").await;
        all_succeeded(&said.deliveries);
        let inbound = w.inbound().await;
        assert_eq!(inbound.len(), 1, "{inbound:#?}");
        assert_eq!(
            (inbound[0].channel.as_str(), inbound[0].provider_id.as_str(), inbound[0].sender.as_str(), inbound[0].body.as_str()),
            ("whatsapp", said.wamid.as_str(), CLIENT_E164, "Is my invoice paid? Ndatenda")
        );

        // An hour later the payment reminder: inside the window, so free-form text.
        w.dun("2027-02-22").await;
        let reminder = w.whatsapp("payment_reminder").await;
        let sent = w.fake.sent();
        assert_eq!(sent.len(), 2, "{sent:#?}");
        let text = sent[1].text().unwrap_or_else(|| panic!("inside the window the reminder is text: {:#?}", sent[1]));
        assert!(text.contains(&number), "{text}");
        assert_eq!(sent[1].to, CLIENT);
        assert_eq!(sent[1].biz_opaque_callback_data.as_deref(), Some(format!("keel-notification-{}", reminder.id).as_str()));
        assert_eq!((reminder.state, reminder.provider_id.as_deref()), (NotificationState::Sent, Some(sent[1].wamid.as_str())));
        assert_eq!(w.notification("email", "payment_reminder").await.state, NotificationState::Sent);
        assert_eq!(w.sink.messages().len(), 2);

        // The client replies STOP: opted out, with the reply as the source.
        all_succeeded(&w.fake.user_says(CLIENT, "STOP").await.deliveries);
        let consents = w.consents().await;
        assert_eq!(consents.len(), 1);
        assert!(!consents[0].active, "{consents:#?}");
        assert!(consents[0].opt_out_source.as_deref().is_some_and(|s| s.contains("STOP")), "{consents:#?}");
        assert_eq!(w.inbound().await.len(), 2);
        let listed = w.api.get(&format!("/api/v1/clients/{}/consents", w.client.get()), &w.api.admin).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!((&listed.body[0]["channel"], &listed.body[0]["active"]), (&Value::from("whatsapp"), &Value::from(false)), "{}", listed.text);

        // The overdue notice: email still goes, WhatsApp is skipped naming the opt-out, and
        // the fake hears nothing more.
        let requests = w.fake.received().len();
        w.dun("2027-03-02").await;
        let overdue = w.whatsapp("invoice_overdue").await;
        assert_eq!(overdue.state, NotificationState::Skipped, "{overdue:#?}");
        let why = overdue.last_error.clone().unwrap_or_default();
        assert!(why.contains("opted out"), "{why}");
        assert_eq!(w.notification("email", "invoice_overdue").await.state, NotificationState::Sent);
        for n in w.notifications().await.iter().filter(|n| n.channel == "whatsapp" && n.id > reminder.id) {
            assert_eq!(n.state, NotificationState::Skipped, "after STOP nothing goes on WhatsApp: {n:#?}");
        }
        assert_eq!(w.fake.sent().len(), 2);
        assert_eq!(w.fake.received().len(), requests, "{:#?}", w.fake.received());

        // A forged START (signed with another secret) and an unsigned one: refused, nothing
        // changes (the client stays opted out, no message is stored); so is a forged
        // `failed` receipt for the invoice's message.
        let before = w.state().await;
        let start = Webhook::message(Inbound::text(CLIENT, "START"));
        // So are the older sha1 header alone (genuine, but the wrong algorithm) and a
        // tampered signature.
        for webhook in [
            start.clone().forged(),
            start.clone().unsigned(),
            start.clone().sha1_only(),
            start.clone().signature(format!("sha256={}", "0".repeat(64))),
            Webhook::failed(&wamid, 131026).forged(),
        ] {
            let reply = w.post(&w.body(&webhook)).await;
            reply.assert_error(403, "webhook_refused", None);
        }
        // A genuinely signed body past the hook's limit is refused before any plugin reads
        // it (one byte past it: a far larger body can see the connection closed before the
        // answer, as the paynow tests found).
        let limit = keel_api::routes::notifications::MAX_WEBHOOK_BYTES;
        let mut big = br#"{"object":"whatsapp_business_account","entry":[],"pad":""#.to_vec();
        big.resize(limit - 1, b'x');
        big.extend_from_slice(b"\"}");
        assert_eq!(big.len(), limit + 1);
        w.post(&w.body(&Webhook::raw(big))).await.assert_error(413, "payload_too_large", None);
        // The fake itself posting a forged one gets 403 on every attempt.
        let deliveries = w.fake.deliver(start.forged()).await;
        assert!(!deliveries.is_empty() && deliveries.iter().all(|d| d.status == Some(403)), "{deliveries:#?}");
        assert_eq!(w.state().await, before);
        assert_eq!(w.whatsapp("invoice_created").await.delivery, Some(Delivery::Read));
        assert_eq!(w.fake.sent().len(), 2);
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn twenty_duplicate_receipts_out_of_order_end_read(t) {
        let w = world(t, templates(), true).await;
        w.bill().await;
        let wamid = w.whatsapp("invoice_created").await.provider_id.expect("sent");
        // What happened: sent a second after the send, delivered a second later, read in
        // that same second (WhatsApp's timestamps are whole seconds). Twenty receipts of it,
        // each its own signed POST carrying its own time: read first, duplicates of every
        // kind, and the last ones older than `read`.
        let t0 = w.clock.now().timestamp();
        let time_of = |status: &str| match status {
            "sent" => t0 + 1,
            "delivered" | "read" => t0 + 2,
            other => panic!("{other}"),
        };
        let order = [
            "read", "sent", "delivered", "sent", "read", "delivered", "delivered", "sent", "read", "sent",
            "delivered", "read", "sent", "sent", "delivered", "read", "delivered", "sent", "delivered", "sent",
        ];
        assert_eq!(order.len(), 20);
        let mut deliveries = Vec::new();
        for status in order {
            deliveries.extend(w.fake.deliver(Webhook::status(&wamid, status).at(time_of(status))).await);
        }
        assert_eq!(deliveries.len(), 20, "each answered at the first attempt: {deliveries:#?}");
        all_succeeded(&deliveries);
        let n = w.whatsapp("invoice_created").await;
        assert_eq!((n.delivery, n.delivery_detail.as_deref()), (Some(Delivery::Read), None), "{n:#?}");
        assert_eq!(n.delivery_reported_at.map(|t| t.timestamp()), Some(t0 + 2), "WhatsApp's time of the read");
        // All three again, reversed and in one body (each event its own time, read the
        // latest), that body posted seven times: still read.
        let again = w
            .fake
            .deliver(Webhook::statuses(&wamid, &["sent", "delivered", "read"]).at(t0 + 1).out_of_order().in_one_body().times(7))
            .await;
        assert_eq!(again.len(), 7);
        all_succeeded(&again);
        let n = w.whatsapp("invoice_created").await;
        assert_eq!((n.delivery, n.delivery_reported_at.map(|t| t.timestamp())), (Some(Delivery::Read), Some(t0 + 3)), "{n:#?}");
        assert_eq!(w.fake.sent().len(), 1);
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn a_day_long_outage_retries_with_backoff_and_sends_once_when_back(t) {
        outage(t, 24).await;
    }
);

keel_testkit::store_test!(
    async fn an_hour_long_outage_retries_and_sends_once_when_back(t) {
        // The same as the day, shorter than the attempts allowed: the retry-and-send-once
        // path on its own, so the day's test fails only on how long retries last.
        outage(t, 1).await;
    }
);

/// The fake down for `hours` of test-clock time from the renewal on: email goes meanwhile,
/// WhatsApp retries with the job queue's backoff (the clock moved a quarter hour at a time,
/// the worker running whatever is due), and once the fake is back the message goes once.
async fn outage(t: &TestDb, hours: i64) {
    let w = world(t, templates(), true).await;
    w.fake.down(true);
    w.bill().await;

    // Email goes at once; WhatsApp's first attempt met the outage and waits to retry.
    assert_eq!(w.sink.messages().len(), 1);
    assert_eq!(
        w.notification("email", "invoice_created").await.state,
        NotificationState::Sent
    );
    let first = w.whatsapp("invoice_created").await;
    assert_eq!(
        (first.state, first.attempts),
        (NotificationState::Pending, 1),
        "{first:#?}"
    );
    assert!(
        first
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("131016")),
        "{first:#?}"
    );
    assert!(w.fake.sent().is_empty());

    let down_at = w.clock.now();
    let mut steps = 0;
    while w.clock.now() < down_at + chrono::Duration::hours(hours) {
        w.advance(chrono::Duration::minutes(15));
        w.drain().await;
        steps += 1;
        let n = w.whatsapp("invoice_created").await;
        assert_eq!(
            n.state,
            NotificationState::Pending,
            "{} into the outage the message must still be waiting to retry, not given up: {n:#?}",
            humanize(w.clock.now() - down_at)
        );
        assert!(w.fake.sent().is_empty());
    }
    let waiting = w.whatsapp("invoice_created").await;
    assert!(waiting.attempts > 1, "it retried: {waiting:#?}");
    assert!(
        waiting.attempts <= steps + 1,
        "at most one attempt per step: {} in {steps}",
        waiting.attempts
    );
    if hours >= 24 {
        // Past the first hours the backoff exceeds a quarter hour.
        assert!(
            waiting.attempts < steps,
            "with backoff, fewer attempts than quarter hours: {} of {steps}",
            waiting.attempts
        );
    }
    assert_eq!(
        w.fake.received().len() as i32,
        waiting.attempts,
        "every attempt reached the fake"
    );

    // The fake is back: within the longest backoff (an hour) the message goes, once.
    w.fake.down(false);
    w.advance(chrono::Duration::hours(1));
    w.drain().await;
    let sent = w.fake.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let n = w.whatsapp("invoice_created").await;
    assert_eq!(
        (n.state, n.provider_id.as_deref()),
        (NotificationState::Sent, Some(sent[0].wamid.as_str())),
        "{n:#?}"
    );
    assert_eq!(n.attempts, waiting.attempts + 1);
    assert!(sent[0].content.is_template());
    // Nothing goes twice afterwards, and email went once.
    w.advance(chrono::Duration::hours(6));
    w.drain().await;
    assert_eq!(w.fake.sent().len(), 1);
    assert_eq!(w.fake.sent()[0].repeats, 0);
    assert_eq!(w.sink.messages().len(), 1);
    w.finish().await;
}

fn humanize(d: chrono::Duration) -> String {
    format!("{}h{:02}m", d.num_hours(), d.num_minutes() % 60)
}

keel_testkit::store_test!(
    async fn the_subscription_check_answers_the_challenge_only_for_the_verify_token(t) {
        let w = world(t, templates(), true).await;
        let ok = w.fake.verify_webhook().await;
        assert!(ok.passed(), "{ok:#?}");
        assert_eq!(ok.status, Some(200));
        assert_eq!(ok.body, ok.challenge);

        let wrong = w.fake.verify_challenge(&w.api.url(HOOK), "not-the-verify-token").await;
        assert_eq!(wrong.status, Some(403), "{wrong:#?}");
        assert!(!wrong.passed());
        let body: Value = serde_json::from_str(&wrong.body).unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], "webhook_refused", "{}", wrong.body);
        assert!(!wrong.body.contains(&wrong.challenge), "{}", wrong.body);
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn a_receipt_for_an_unknown_message_is_404_and_a_replayed_webhook_changes_nothing(t) {
        let w = world(t, templates(), true).await;
        w.bill().await;
        let wamid = w.whatsapp("invoice_created").await.provider_id.expect("sent");

        // A receipt for a wamid Keel never sent: 404, nothing changed.
        let before = w.state().await;
        let unknown = Webhook::status("wamid.HBgMMjYzNzcxMjM0NTY3FQIAERgSNEQ5QjdCRTc1NEJGQzY3OTdBAA==", "delivered").recipient(CLIENT);
        w.post(&w.body(&unknown)).await.assert_error(404, "unknown_message", None);
        assert_eq!(w.state().await, before);

        // A receipt replayed byte for byte: the second changes nothing.
        let delivered = w.body(&Webhook::status(&wamid, "delivered"));
        assert_eq!(w.post(&delivered).await.status, 200);
        let after_first = w.state().await;
        assert_eq!(w.whatsapp("invoice_created").await.delivery, Some(Delivery::Delivered));
        w.advance(chrono::Duration::minutes(5));
        assert_eq!(w.post(&delivered).await.status, 200);
        assert_eq!(w.state().await, after_first, "the replay moved nothing, not even the receipt's time");

        // A message replayed: stored once.
        let hello = w.body(&Webhook::message(Inbound::text(CLIENT, "Hello from Harare")));
        assert_eq!(w.post(&hello).await.status, 200);
        assert_eq!(w.post(&hello).await.status, 200);
        let inbound = w.inbound().await;
        assert_eq!(inbound.iter().filter(|m| m.body == "Hello from Harare").count(), 1, "{inbound:#?}");

        // A STOP replayed after the client opted back in does not opt it out again.
        let stop = w.body(&Webhook::message(Inbound::text(CLIENT, "STOP")));
        assert_eq!(w.post(&stop).await.status, 200);
        assert!(!w.consents().await[0].active);
        all_succeeded(&w.fake.user_says(CLIENT, "START").await.deliveries);
        assert!(w.consents().await[0].active, "{:#?}", w.consents().await);
        let settled = w.state().await;
        assert_eq!(w.post(&stop).await.status, 200);
        assert_eq!(w.state().await, settled, "a replayed STOP is the same message, handled once");
        assert!(w.consents().await[0].active);
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn a_template_missing_a_parameter_is_skipped_naming_it_and_nothing_is_sent(t) {
        // The invoice's template takes the pay link, and no gateway is enabled.
        let mut templates = templates();
        templates.insert("invoice_created".into(), mapping("invoice_pay", &["invoice.number", "pay_url"]));
        let w = world(t, templates, true).await;
        w.bill().await;
        let n = w.whatsapp("invoice_created").await;
        assert_eq!(n.state, NotificationState::Skipped, "{n:#?}");
        let why = n.last_error.clone().unwrap_or_default();
        assert!(why.contains("pay_url"), "the reason names the parameter: {why}");
        assert!(w.fake.received().is_empty(), "{:#?}", w.fake.received());
        assert!(w.fake.sent().is_empty());
        // Email is not held up by it.
        assert_eq!(w.notification("email", "invoice_created").await.state, NotificationState::Sent);
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn an_opt_in_with_a_number_that_is_not_e164_is_refused_and_writes_nothing(t) {
        let w = world(t, templates(), false).await;
        let audit = w.api.all_items("/api/v1/audit").await.len();
        let err = notifications::opt_in(
            &w.app,
            &ctx(),
            w.client,
            "whatsapp",
            &OptInInput { number: "0771234567".into(), source: Some("asked on the phone".into()) },
        )
        .await
        .unwrap_err();
        match &err {
            AppError::Invalid { code, field, message } => {
                assert_eq!((*code, field.as_deref()), ("invalid_phone", Some("number")), "{err:?}");
                assert!(message.contains("country code"), "{message}");
            }
            other => panic!("expected invalid_phone, got {other:?}"),
        }
        assert!(w.consents().await.is_empty());
        assert_eq!(w.api.all_items("/api/v1/audit").await.len(), audit);
        // And nothing is queued for WhatsApp when the invoice comes.
        w.bill().await;
        assert!(w.notifications().await.iter().all(|n| n.channel == "email"));
        assert!(w.fake.received().is_empty());
        w.finish().await;
    }
);

/// The number of the invoice `id`.
async fn invoice_number(w: &World, id: i64) -> String {
    keel_app::invoices::get(&w.app, &ctx(), keel_domain::ids::InvoiceId(id))
        .await
        .unwrap()
        .number
        .expect("an issued invoice")
}

/// GETs a document link the way WhatsApp's servers would fetch it: the PDF, or the status.
async fn fetch_pdf(w: &World, link: &str) -> (u16, Vec<u8>) {
    let path = link
        .split_once("/pay/")
        .map(|(_, rest)| format!("/pay/{rest}"))
        .unwrap_or_else(|| panic!("a pay link's PDF: {link}"));
    let res = reqwest::get(w.api.url(&path))
        .await
        .expect("the server answers");
    let status = res.status().as_u16();
    (status, res.bytes().await.unwrap().to_vec())
}

keel_testkit::store_test!(
    async fn a_new_invoice_goes_as_its_pdf_inside_the_window_and_in_the_template_header_outside(t) {
        let mut templates = templates();
        templates.insert(
            "invoice_created".to_owned(),
            TemplateMapping {
                header: Some(keel_app::notify::HeaderMapping::Document),
                buttons: vec![keel_app::notify::ButtonMapping {
                    index: 0,
                    kind: keel_app::notify::ButtonKind::QuickReply,
                    parameter: "invoice.number".into(),
                }],
                ..mapping("invoice_ready", &["client.first_name", "invoice.number", "invoice.balance", "invoice.due_date"])
            },
        );
        let w = world(t, templates, true).await;

        // The window is closed: the approved template, the invoice's PDF as its header
        // document, the invoice number as its quick reply's payload.
        w.bill().await;
        let created = w.whatsapp("invoice_created").await;
        assert_eq!(created.state, NotificationState::Sent, "{created:#?}");
        let invoice_id = created.invoice_id.expect("the invoice's message");
        let number = invoice_number(&w, invoice_id).await;
        let sent = w.fake.sent();
        assert_eq!(sent.len(), 1, "{sent:#?}");
        let m = &sent[0];
        assert!(m.content.is_template(), "{m:#?}");
        let header = m.header_parameter().unwrap_or_else(|| panic!("a header: {m:#?}"));
        assert_eq!(header.kind, "document", "{m:#?}");
        let link = header.link().expect("a link").to_owned();
        assert!(link.contains(&format!("/pay/v1.{invoice_id}.")), "{link}");
        assert!(link.ends_with("/invoice.pdf"), "{link}");
        assert_eq!(header.filename(), Some(format!("{number}.pdf").as_str()));
        let button = m.button(0).unwrap_or_else(|| panic!("button 0: {m:#?}"));
        assert_eq!(button.texts(), [number.as_str()]);
        // The link serves the invoice's PDF, as WhatsApp fetches it.
        let (status, pdf) = fetch_pdf(&w, &link).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&pdf));
        assert!(pdf.starts_with(b"%PDF-"));

        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn inside_the_window_a_new_invoice_is_a_pdf_document_with_the_text_as_its_caption(t) {
        let w = world(t, templates(), true).await;
        // The client wrote an hour before the billing run: the window is open.
        w.advance(chrono::Duration::minutes(1));
        all_succeeded(&w.fake.user_says(CLIENT, "Please send my invoice").await.deliveries);
        w.bill().await;
        let created = w.whatsapp("invoice_created").await;
        assert_eq!(created.state, NotificationState::Sent, "{created:#?}");
        let invoice_id = created.invoice_id.expect("the invoice's message");
        let number = invoice_number(&w, invoice_id).await;
        let sent = w.fake.sent();
        assert_eq!(sent.len(), 1, "{sent:#?}");
        let m = &sent[0];
        assert_eq!(m.content.kind(), "document", "{m:#?}");
        assert_eq!(m.filename(), Some(format!("{number}.pdf").as_str()));
        assert!(m.caption().is_some_and(|c| c.contains(&number)), "the text is the caption: {m:#?}");
        let link = m.link().expect("a link").to_owned();
        let (status, pdf) = fetch_pdf(&w, &link).await;
        assert_eq!(status, 200);
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(created.provider_id.as_deref(), Some(m.wamid.as_str()));

        // A month on the link has expired: WhatsApp (or anyone) gets the refusal, no PDF.
        w.advance(chrono::Duration::days(31));
        let (status, body) = fetch_pdf(&w, &link).await;
        assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
        w.finish().await;
    }
);
