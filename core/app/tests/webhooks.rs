//! Outgoing webhooks through the application, on both engines, against a real receiver on
//! loopback that checks every signature with the documented rule: an invoice paid reaches
//! it signed; a receiver down for an hour gets every event once, in order per subject; a
//! delivery failing for more than a day is failed, logged, and replayed once; nothing is
//! written when no endpoint subscribes. Time is the test clock, moved by hand.

use chrono::{DateTime, TimeZone, Utc};
use keel_app::billing_run::{self, RunOptions};
use keel_app::invoices;
use keel_app::payments::{self, ManualMethod, PaymentInput};
use keel_app::webhooks::{self as wh, EndpointPatch, NewEndpoint};
use keel_app::{App, AppError, Clock, Ctx, FixedClock};
use keel_domain::ids::{ClientId, InvoiceId};
use keel_jobs::{Worker, WorkerConfig};
use keel_store::webhooks as store;
use keel_testkit::plugins::{FakeProvider, Received, Reply};
use keel_testkit::scenario::book::{self, BookOptions};
use keel_testkit::scenario::{Client, Scenario};
use keel_testkit::store_test;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 15, 9, 0, 0).unwrap()
}

/// The receivers here listen on 127.0.0.1, which webhooks may reach only when the admin
/// allows it, as a host with a receiver on its own machine would.
fn loopback_allowed() -> wh::Settings {
    wh::Settings {
        allow_networks: vec![keel_domain::network::Network::parse("127.0.0.0/8").unwrap()],
    }
}

fn ctx() -> Ctx {
    Ctx::system("test")
}

/// A receiver on 127.0.0.1 that answers `status` (200 unless told), and 400 to any request
/// whose `Keel-Signature` does not verify under `secret` at the test clock's time.
struct Receiver {
    provider: FakeProvider,
    status: Arc<AtomicU16>,
    secret: Arc<Mutex<String>>,
    /// The events it answered 2xx to, as (subject, type, event id), in arrival order.
    accepted: Arc<Mutex<Vec<(String, String, i64)>>>,
}

impl Receiver {
    async fn start(clock: Arc<FixedClock>) -> Receiver {
        let status = Arc::new(AtomicU16::new(200));
        let secret = Arc::new(Mutex::new(String::new()));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (s, k, log) = (status.clone(), secret.clone(), accepted.clone());
        let provider = FakeProvider::start(move |req: &Received| {
            let status = s.load(Ordering::SeqCst);
            if status != 200 {
                return Reply::text(status, "down for maintenance");
            }
            let header = req.header("keel-signature").unwrap_or("");
            match wh::verify(
                &k.lock().unwrap(),
                header,
                &req.body,
                clock.now(),
                wh::DEFAULT_TOLERANCE,
            ) {
                Ok(()) => {
                    let body: Value = serde_json::from_slice(&req.body).unwrap();
                    log.lock().unwrap().push((
                        body["subject"].as_str().unwrap().to_string(),
                        body["type"].as_str().unwrap().to_string(),
                        body["id"].as_i64().unwrap(),
                    ));
                    Reply::text(200, "ok")
                }
                Err(e) => Reply::text(400, e.to_string()),
            }
        })
        .await;
        Receiver {
            provider,
            status,
            secret,
            accepted,
        }
    }

    fn url(&self) -> String {
        self.provider.url_as("127.0.0.1", "/hooks/keel")
    }

    /// Adds an endpoint for `events` at this receiver and keeps its secret.
    async fn subscribe(&self, app: &App, events: &[&str]) -> i64 {
        let created = wh::create_endpoint(
            app,
            &ctx(),
            &NewEndpoint {
                url: self.url(),
                events: events.iter().map(|e| e.to_string()).collect(),
                description: Some("accounting".into()),
            },
        )
        .await
        .unwrap();
        assert!(created.secret.starts_with("whsec_") && created.secret.len() == 70);
        *self.secret.lock().unwrap() = created.secret;
        created.endpoint.id
    }

    fn accepted(&self) -> Vec<(String, String, i64)> {
        self.accepted.lock().unwrap().clone()
    }
}

fn worker(app: &App) -> Worker {
    let clock = app.clock.clone();
    Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        WorkerConfig::new("default", "test-worker"),
        Arc::new(move || clock.now()),
    )
}

/// Runs the worker until nothing due is left at the current test time.
async fn drain(w: &Worker) {
    let stop = tokio::sync::watch::channel(false).1;
    for _ in 0..100 {
        if w.tick(&stop).await.unwrap().claimed == 0 {
            return;
        }
    }
    panic!("the queue did not drain");
}

/// Moves the test clock `by` in steps of `step`, draining the worker at each.
async fn run_for(clock: &FixedClock, w: &Worker, by: chrono::Duration, step: chrono::Duration) {
    let until = clock.now() + by;
    drain(w).await;
    while clock.now() < until {
        clock.advance(step);
        drain(w).await;
    }
}

async fn client(app: &App, email: &str) -> ClientId {
    Scenario::new(app)
        .client(Client::new(email))
        .build()
        .await
        .client(email)
}

/// A staff invoice for 50.00, issued.
async fn issued_invoice(app: &App, client: ClientId) -> InvoiceId {
    let draft = invoices::create_draft(
        app,
        &ctx(),
        &invoices::DraftInput {
            client_id: client.get(),
            currency: None,
            due_date: Some("2027-01-31".into()),
            lines: vec![invoices::ManualLine {
                description: "Migration".into(),
                quantity: None,
                unit_price: "50.00".into(),
                discount: None,
                tax_class: None,
            }],
        },
    )
    .await
    .unwrap();
    invoices::issue(app, &ctx(), draft.id).await.unwrap().id
}

async fn pay(app: &App, invoice: InvoiceId, reference: &str) {
    payments::record_payment(
        app,
        &ctx(),
        invoice,
        &PaymentInput {
            amount: "50.00".into(),
            method: ManualMethod::BankTransfer,
            reference: reference.into(),
            received_on: None,
            note: None,
        },
    )
    .await
    .unwrap();
}

store_test!(
    async fn an_invoice_paid_reaches_the_receiver_signed_and_tampering_is_refused(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let receiver = Receiver::start(clock.clone()).await;
        let endpoint = receiver.subscribe(&app, &["invoice.paid"]).await;
        let c = client(&app, "tariro@example.com").await;
        let inv = issued_invoice(&app, c).await;
        pay(&app, inv, "BANK-1").await;
        drain(&worker(&app)).await;

        let got = receiver.provider.received();
        assert_eq!(got.len(), 1, "only the subscribed type is sent");
        let req = &got[0];
        assert_eq!((req.method.as_str(), req.uri.as_str()), ("POST", "/hooks/keel"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("keel-event-type"), Some("invoice.paid"));
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(req.header("keel-event-id"), Some(body["id"].to_string().as_str()));
        assert_eq!(body["type"], "invoice.paid");
        assert_eq!(body["subject"], format!("invoice:{}", inv.get()));
        assert_eq!(body["occurred_at"], "2027-01-15T09:00:00Z");
        assert_eq!(body["data"]["invoice_id"], inv.get());
        assert_eq!(body["data"]["client_id"], c.get());
        assert_eq!(body["data"]["status"], "paid");
        assert_eq!((body["data"]["total_minor"].as_i64(), body["data"]["paid_minor"].as_i64()), (Some(5000), Some(5000)));
        assert_eq!(body["data"]["currency"], "USD");

        // The receiver's rule: the signature verifies; a changed body, timestamp or secret does not.
        let secret = receiver.secret.lock().unwrap().clone();
        let header = req.header("keel-signature").unwrap();
        assert_eq!(header, wh::signature_header(&secret, start().timestamp(), &req.body));
        assert_eq!(wh::verify(&secret, header, &req.body, clock.now(), wh::DEFAULT_TOLERANCE), Ok(()));
        let tampered = String::from_utf8(req.body.clone()).unwrap().replace("5000", "50");
        assert_eq!(wh::verify(&secret, header, tampered.as_bytes(), clock.now(), wh::DEFAULT_TOLERANCE), Err(wh::VerifyError::Mismatch));
        let moved = header.replacen(&start().timestamp().to_string(), &(start().timestamp() + 60).to_string(), 1);
        assert_eq!(wh::verify(&secret, &moved, &req.body, clock.now(), wh::DEFAULT_TOLERANCE), Err(wh::VerifyError::Mismatch));
        assert_eq!(wh::verify("whsec_other", header, &req.body, clock.now(), wh::DEFAULT_TOLERANCE), Err(wh::VerifyError::Mismatch));

        // The log: delivered at the first attempt, with the answer; a second run sends nothing.
        let page = wh::deliveries(&app, &ctx(), endpoint, None, None, None).await.unwrap();
        assert_eq!(page.items.len(), 1);
        let d = &page.items[0];
        assert_eq!((d.state.as_str(), d.attempts, d.last_status_code), ("delivered", 1, Some(200)));
        assert_eq!(d.last_response.as_deref(), Some("ok"));
        assert_eq!(req.header("keel-delivery-id"), Some(d.id.to_string().as_str()));
        assert_eq!(wh::deliver(&app, d.id).await.unwrap(), None, "a delivered delivery is never sent again");
        run_for(&clock, &worker(&app), chrono::Duration::hours(1), chrono::Duration::minutes(10)).await;
        assert_eq!(receiver.provider.received().len(), 1);
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn a_receiver_down_for_an_hour_gets_every_event_once_in_order_per_subject(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let receiver = Receiver::start(clock.clone()).await;
        let endpoint = receiver.subscribe(&app, &["*"]).await;
        receiver.status.store(503, Ordering::SeqCst);
        let w = worker(&app);

        // Two clients, each with an invoice issued then paid, while the receiver is down.
        let a = client(&app, "a@example.com").await;
        let b = client(&app, "b@example.com").await;
        let inv_a = issued_invoice(&app, a).await;
        let inv_b = issued_invoice(&app, b).await;
        drain(&w).await;
        clock.advance(chrono::Duration::minutes(2));
        pay(&app, inv_b, "BANK-B").await;
        pay(&app, inv_a, "BANK-A").await;
        run_for(&clock, &w, chrono::Duration::minutes(58), chrono::Duration::minutes(5)).await;
        assert!(receiver.accepted().is_empty());
        let pending = wh::deliveries(&app, &ctx(), endpoint, Some("pending"), None, None).await.unwrap();
        assert_eq!(pending.items.len(), 8, "2 clients + 2 × (issued, payment, paid)");
        // Only the first event of each subject was tried; the others wait their turn.
        let tried: Vec<_> = pending.items.iter().filter(|d| d.attempts > 0).map(|d| (d.subject.clone(), d.event_type.clone())).collect();
        assert_eq!(tried.len(), 4, "{tried:?}");
        assert!(tried.iter().all(|(_, ty)| ty == "client.created" || ty == "invoice.issued"), "{tried:?}");
        let first = pending.items.iter().find(|d| d.event_type == "client.created").unwrap();
        assert_eq!(first.attempts, 4, "attempts at 0, 1, 6 and 36 minutes");
        assert_eq!(first.last_status_code, Some(503));
        assert_eq!(first.last_error.as_deref(), Some("the endpoint answered 503"));

        // Back up after an hour: the next attempts deliver everything.
        receiver.status.store(200, Ordering::SeqCst);
        run_for(&clock, &w, chrono::Duration::hours(4), chrono::Duration::minutes(5)).await;
        let accepted = receiver.accepted();
        assert_eq!(accepted.len(), 8, "{accepted:?}");
        let ids: std::collections::BTreeSet<_> = accepted.iter().map(|(_, _, id)| *id).collect();
        assert_eq!(ids.len(), 8, "each event once");
        let mut by_subject: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (subject, ty, _) in &accepted {
            by_subject.entry(subject.clone()).or_default().push(ty.clone());
        }
        for inv in [inv_a, inv_b] {
            assert_eq!(by_subject[&format!("invoice:{}", inv.get())], ["invoice.issued", "payment.received", "invoice.paid"]);
        }
        for (subject, _, id) in &accepted {
            let earlier: Vec<_> = accepted.iter().take_while(|(_, _, i)| i != id).filter(|(s, _, _)| s == subject).map(|(_, _, i)| *i).collect();
            assert!(earlier.iter().all(|e| e < id), "{subject}: {earlier:?} before {id}");
        }
        let delivered = wh::deliveries(&app, &ctx(), endpoint, Some("delivered"), None, None).await.unwrap();
        assert_eq!(delivered.items.len(), 8);
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn a_delivery_failing_for_more_than_a_day_is_failed_logged_and_replayed_once(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let receiver = Receiver::start(clock.clone()).await;
        let endpoint = receiver.subscribe(&app, &["client.created"]).await;
        receiver.status.store(500, Ordering::SeqCst);
        // A second endpoint where nothing listens: the connection is refused.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let dead = wh::create_endpoint(&app, &ctx(), &NewEndpoint { url: dead_url, events: vec!["*".into()], description: None }).await.unwrap().endpoint.id;
        let w = worker(&app);
        client(&app, "c@example.com").await;

        run_for(&clock, &w, chrono::Duration::hours(24), chrono::Duration::minutes(30)).await;
        let still = wh::deliveries(&app, &ctx(), endpoint, None, None, None).await.unwrap().items;
        assert_eq!((still[0].state.as_str(), still[0].attempts), ("pending", 7), "still trying after a day");
        run_for(&clock, &w, chrono::Duration::hours(24), chrono::Duration::minutes(30)).await;

        let failed = wh::deliveries(&app, &ctx(), endpoint, Some("failed"), None, None).await.unwrap().items;
        assert_eq!(failed.len(), 1);
        let d = &failed[0];
        assert_eq!((d.attempts, d.last_status_code), (8, Some(500)));
        assert_eq!(d.last_error.as_deref(), Some("the endpoint answered 500"));
        assert_eq!(d.last_response.as_deref(), Some("down for maintenance"));
        let detail = wh::delivery(&app, &ctx(), d.id).await.unwrap();
        assert_eq!(detail.attempts_log.len(), 8);
        let span = detail.attempts_log[7].at - detail.attempts_log[0].at;
        assert!(span > chrono::Duration::hours(24), "{span}");
        assert_eq!(receiver.provider.received().len(), 8);
        let gone = wh::deliveries(&app, &ctx(), dead, Some("failed"), None, None).await.unwrap().items;
        assert_eq!(gone.len(), 1);
        assert!(gone[0].last_error.as_deref().is_some_and(|e| e.starts_with("could not connect")), "{:?}", gone[0].last_error);
        assert_eq!(gone[0].last_status_code, None);

        // Replay: pending again, delivered once now that the receiver answers.
        assert!(matches!(wh::replay(&app, &ctx(), d.id).await, Ok(v) if v.state == "pending" && v.attempts == 0));
        assert!(matches!(wh::replay(&app, &ctx(), d.id).await, Err(AppError::Conflict { code: "delivery_pending", .. })));
        receiver.status.store(200, Ordering::SeqCst);
        run_for(&clock, &w, chrono::Duration::hours(2), chrono::Duration::minutes(30)).await;
        assert_eq!(receiver.accepted().len(), 1);
        assert_eq!(receiver.provider.received().len(), 9);
        let replayed = wh::delivery(&app, &ctx(), d.id).await.unwrap();
        assert_eq!((replayed.delivery.state.as_str(), replayed.delivery.attempts), ("delivered", 1));
        assert_eq!(replayed.attempts_log.len(), 9, "the log keeps the failed attempts");
        let audit = keel_store::audit::list(&t.db, None, 200).await.unwrap();
        assert!(audit.items.iter().any(|r| r.action == "webhook.delivery.replay"));
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn with_no_endpoint_nothing_is_written_and_a_disabled_one_waits(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let due = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        book::seed_book(&app, &BookOptions::new(30, 3, due)).await.unwrap();
        let c = client(&app, "d@example.com").await;
        let inv = issued_invoice(&app, c).await;
        pay(&app, inv, "BANK-D").await;
        billing_run::run(&app, &ctx(), &RunOptions { as_of: due, dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(store::counts(&t.db).await.unwrap(), (0, 0, 0, 0), "no endpoint, no webhook rows");
        let jobs = keel_store::jobs::list(&t.db, None, None, 500).await.unwrap();
        assert!(jobs.iter().all(|j| j.kind != store::DELIVER), "and no delivery jobs");

        // An endpoint for one type only: other events still write nothing.
        let receiver = Receiver::start(clock.clone()).await;
        let endpoint = receiver.subscribe(&app, &["service.suspended"]).await;
        client(&app, "e@example.com").await;
        assert_eq!(store::counts(&t.db).await.unwrap(), (1, 0, 0, 0));

        // Disabled, it gets nothing new; enabled again, what it subscribes to flows.
        wh::update_endpoint(&app, &ctx(), endpoint, &EndpointPatch { events: Some(vec!["client.created".into()]), enabled: Some(false), disabled_reason: Some("maintenance".into()), ..Default::default() }).await.unwrap();
        client(&app, "f@example.com").await;
        assert_eq!(store::counts(&t.db).await.unwrap(), (1, 0, 0, 0));
        let shown = wh::update_endpoint(&app, &ctx(), endpoint, &EndpointPatch { enabled: Some(true), ..Default::default() }).await.unwrap();
        assert!(shown.enabled && shown.disabled_reason.is_none());
        client(&app, "g@example.com").await;
        drain(&worker(&app)).await;
        assert_eq!(receiver.accepted().len(), 1);
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn the_billing_run_emits_one_issued_event_per_invoice_when_subscribed(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let due = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
        book::seed_book(&app, &BookOptions::new(30, 3, due)).await.unwrap();
        let receiver = Receiver::start(clock.clone()).await;
        receiver.subscribe(&app, &["invoice.issued", "invoice.paid"]).await;
        let report = billing_run::run(&app, &ctx(), &RunOptions { as_of: due, dry_run: false }, &|_| {}).await.unwrap();
        assert!(report.invoices > 0);
        drain(&worker(&app)).await;
        let accepted = receiver.accepted();
        let issued = accepted.iter().filter(|(_, ty, _)| ty == "invoice.issued").count();
        assert_eq!(issued as u64, report.invoices);
        // Paid by the wallet in the same run: paid comes after issued for that invoice.
        for (subject, ty, id) in accepted.iter().filter(|(_, ty, _)| ty == "invoice.paid") {
            let issued_id = accepted.iter().find(|(s, t2, _)| s == subject && t2 == "invoice.issued").map(|(_, _, i)| *i).unwrap();
            assert!(issued_id < *id, "{subject} {ty}");
        }
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn bad_endpoints_are_refused_with_a_code_and_clients_cannot_manage_them(t) {
        let app = App::with_clock(t.db.clone(), Arc::new(FixedClock::new(start()))).with_webhooks(loopback_allowed());
        let bad = |url: &str, events: &[&str]| NewEndpoint { url: url.into(), events: events.iter().map(|e| e.to_string()).collect(), description: None };
        for (input, code) in [
            (bad("ftp://example.com/x", &["*"]), "invalid_url"),
            (bad("not a url", &["*"]), "invalid_url"),
            (bad("https://example.com/x", &[]), "invalid_events"),
            (bad("https://example.com/x", &["invoice.eaten"]), "unknown_event_type"),
        ] {
            match wh::create_endpoint(&app, &ctx(), &input).await {
                Err(AppError::Invalid { code: c, .. }) => assert_eq!(c, code),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(store::counts(&t.db).await.unwrap(), (0, 0, 0, 0));
        let billing = Ctx::new(keel_domain::access::Actor::Staff {
            staff: keel_domain::ids::StaffId(1),
            role: keel_domain::access::StaffRole::Billing,
            label: "billing clerk".into(),
        });
        assert!(matches!(wh::list_endpoints(&app, &billing).await, Err(AppError::Forbidden { permission: "automation:manage" })));
    }
);

store_test!(
    async fn service_status_changes_and_cancellations_are_events_of_the_service(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        book::seed_book(&app, &BookOptions::new(3, 3, chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap())).await.unwrap();
        let receiver = Receiver::start(clock.clone()).await;
        receiver.subscribe(&app, &["*"]).await;
        let services = keel_app::services::list(&app, &ctx(), &keel_app::services::ServiceQuery::default()).await.unwrap().items;
        let (one, two) = (services[0].id, services[1].id);
        let to = |status| keel_app::services::StatusInput { status, reason: "overdue".into() };
        use keel_domain::lifecycle::{CancelKind, ServiceStatus};
        keel_app::services::change_status(&app, &ctx(), one, &to(ServiceStatus::Suspended)).await.unwrap();
        keel_app::services::change_status(&app, &ctx(), one, &to(ServiceStatus::Active)).await.unwrap();
        keel_app::services::change_status(&app, &ctx(), one, &to(ServiceStatus::Terminated)).await.unwrap();
        let cancel = |kind| keel_app::services::CancellationInput { kind, reason: "moving on".into() };
        keel_app::services::request_cancellation(&app, &ctx(), two, &cancel(CancelKind::EndOfPeriod)).await.unwrap();
        keel_app::services::request_cancellation(&app, &ctx(), two, &cancel(CancelKind::Immediate)).await.unwrap();
        drain(&worker(&app)).await;

        // In order per subject (the two services' events may interleave).
        let mut by_subject: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (subject, ty, _) in receiver.accepted() {
            by_subject.entry(subject).or_default().push(ty);
        }
        assert_eq!(by_subject[&format!("service:{}", one.get())], ["service.suspended", "service.unsuspended", "service.terminated"]);
        assert_eq!(by_subject[&format!("service:{}", two.get())], ["service.cancellation_requested", "service.cancelled"]);
        assert_eq!(by_subject.len(), 2);
        let requests = receiver.provider.received();
        let last: Value = requests.iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()).find(|b| b["type"] == "service.cancelled").unwrap();
        assert_eq!((last["data"]["from"].as_str(), last["data"]["to"].as_str(), last["data"]["reason"].as_str()), (Some("active"), Some("cancelled"), Some("moving on")));
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn endpoints_on_the_hosts_own_network_are_refused_at_creation_and_at_delivery(t) {
        let clock = Arc::new(FixedClock::new(start()));
        // The host's default: no network allowed.
        let closed = App::with_clock(t.db.clone(), clock.clone());
        let at = |url: &str| NewEndpoint { url: url.into(), events: vec!["*".into()], description: None };
        for url in [
            "http://127.0.0.1:8080/admin",
            "http://10.0.0.5/hook",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:192.168.1.1]/",
            "http://[2002:a00:1::1]/",
            "http://[2002:7f00:1::]/",
            "http://[fec0::1]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://0x7f000001/",
            "http://localhost:8080/",
        ] {
            match wh::create_endpoint(&closed, &ctx(), &at(url)).await {
                Err(AppError::Invalid { code, field, message }) => {
                    assert_eq!((code, field.as_deref()), ("webhook_url_not_allowed", Some("url")), "{url}");
                    assert!(message.contains("webhooks.allow_networks"), "{url}: {message}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(store::counts(&t.db).await.unwrap(), (0, 0, 0, 0));

        // Allowed, an endpoint at a loopback receiver (by address and by name) is accepted ...
        let open = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        let receiver = Receiver::start(clock.clone()).await;
        let by_address = receiver.subscribe(&open, &["client.created"]).await;
        let by_name = wh::create_endpoint(&open, &ctx(), &at(&receiver.provider.url_as("localhost", "/hooks/keel"))).await.unwrap().endpoint.id;
        // ... and moving it to a private address is refused like creating it there.
        let moved = EndpointPatch { url: Some("http://10.1.1.1/".into()), ..EndpointPatch::default() };
        assert!(matches!(wh::update_endpoint(&open, &ctx(), by_address, &moved).await, Err(AppError::Invalid { code: "webhook_url_not_allowed", .. })));

        // Delivery checks again: run by a process whose settings no longer allow loopback
        // (or after the name moved to a private address), nothing reaches the receiver and
        // the attempt says why.
        client(&open, "ssrf@example.com").await;
        drain(&worker(&closed)).await;
        assert!(receiver.provider.received().is_empty(), "nothing was sent");
        for endpoint in [by_address, by_name] {
            let log = wh::deliveries(&closed, &ctx(), endpoint, None, None, None).await.unwrap().items;
            assert_eq!((log.len(), log[0].state.as_str(), log[0].last_status_code), (1, "pending", None));
            let error = log[0].last_error.clone().unwrap_or_default();
            assert!(error.contains("loopback address") && error.contains("webhooks.allow_networks"), "{endpoint}: {error}");
        }
        receiver.provider.stop().await;
    }
);

store_test!(
    async fn a_pings_answer_is_not_kept_but_an_events_is(t) {
        let clock = Arc::new(FixedClock::new(start()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(loopback_allowed());
        // An internal page the ping could otherwise read back.
        let page = FakeProvider::start(|_| Reply::text(200, "root:x:0:0:internal secrets")).await;
        let endpoint = wh::create_endpoint(&app, &ctx(), &NewEndpoint {
            url: page.url_as("127.0.0.1", "/"),
            events: vec!["client.created".into()],
            description: None,
        }).await.unwrap().endpoint.id;
        let ping = wh::ping(&app, &ctx(), endpoint).await.unwrap().id;
        client(&app, "kept@example.com").await;
        drain(&worker(&app)).await;
        let ping = wh::delivery(&app, &ctx(), ping).await.unwrap();
        assert_eq!((ping.delivery.state.as_str(), ping.delivery.last_status_code, ping.delivery.last_response.as_deref()), ("delivered", Some(200), None));
        assert_eq!(ping.attempts_log[0].response, None);
        let log = wh::deliveries(&app, &ctx(), endpoint, None, None, None).await.unwrap().items;
        let event = log.iter().find(|d| d.event_type == "client.created").unwrap();
        assert_eq!(event.last_response.as_deref(), Some("root:x:0:0:internal secrets"), "an event's answer helps debug a receiver");
        page.stop().await;
    }
);
