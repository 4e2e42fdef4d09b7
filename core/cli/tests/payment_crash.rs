//! The Paynow callback path survives SIGKILL at every step, on SQLite and on PostgreSQL.
//!
//! The real `keel serve` (CARGO_BIN_EXE_keel) runs the real Paynow plugin; its requests to
//! `https://www.paynow.co.zw` go to the protocol-faithful fake Paynow in this test through
//! `--fake-origin` (the plugin and its grant still see Paynow's origin). The fake posts its
//! status updates to Keel's hook and retries a failed delivery as Paynow does (ten attempts).
//!
//! Each trial starts an EcoCash payment of its own invoice with the test number the fake pays
//! after a short delay. The process serving it was started with `KEEL_CRASH_POINT` naming one
//! of the five points of the callback path (after the plugin verified the update, after the
//! poll confirmed it, inside the apply transaction with the entry posted, after the commit,
//! before the hook's reply is sent; `keel_app::crash_points`) bound to that invoice's
//! references: when it prints that it reached the point, the test kills it with SIGKILL. The
//! next process is started with the next trial's point bound to the next invoice, so one start
//! serves both the fake's retry of the killed delivery (which must complete first) and the next
//! trial. A last process without a crash point takes the last retry.
//!
//! At the end: every invoice is paid exactly once (one attempt, succeeded; one payment row;
//! one journal entry `gateway:paynow:{reference}`), no payment was lost (every delivery ended
//! with a 2xx answer), the ledger check is clean with a zero trial balance, and
//! `keel ledger check` agrees. The trials' points come from an RNG whose seed is printed and
//! can be replayed with `KEEL_CRASH_SEED`; `KEEL_PAYMENT_CRASH_TRIALS` changes the number of
//! trials (100 per engine, 20 at each point).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use keel_app::access::NewKey;
use keel_app::crash_points::Point;
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, Ctx};
use keel_domain::access::KeyScope;
use keel_domain::ids::InvoiceId;
use keel_domain::lifecycle::InvoiceStatus;
use keel_store::attempts::AttemptState;
use keel_testkit::paynow::{FakePaynow, PHONE_PAID_FAST};
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::{Backend, TestDb};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;
use support::KEEL;
use support::serve::{Serve, until};
use tokio::process::Command;

const USD_ID: u64 = 7175;
const USD_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
const TRIALS: usize = 100;

// One engine at a time, alone on the machine: nextest runs each test in its own process, so
// `.config/nextest.toml` puts both in the `payment-crash` test group.

/// A free loopback port, for a server every restart must listen on again (the fake's
/// result URLs carry it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn attempt_state(db: &keel_store::Db, reference: &str) -> Option<AttemptState> {
    keel_store::attempts::get(db, "paynow", reference)
        .await
        .expect("read the attempt")
        .map(|a| a.state)
}

async fn crash_and_retry(backend: Backend) {
    let started = Instant::now();
    let engine = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let trials = std::env::var("KEEL_PAYMENT_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(TRIALS);
    let rng_seed = std::env::var("KEEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!(
        "[{engine}] {trials} trials, points from seed {rng_seed} (replay with KEEL_CRASH_SEED={rng_seed})"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
    let mut points: Vec<Point> = (0..trials)
        .map(|i| Point::PAYMENT[i % Point::PAYMENT.len()])
        .collect();
    points.shuffle(&mut rng);

    // The book: one client paying in USD, one unpaid invoice per trial, the client's key.
    let t = TestDb::new(backend).await;
    let app = App::new(t.db.clone());
    let built = Scenario::new(&app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .client(Client::new("rudo@example.co.zw").name("Rudo", "Chikwanha"))
        .build()
        .await;
    let client = built.client("rudo@example.co.zw");
    let ctx = Ctx::system("test");
    let mut invoices: Vec<(InvoiceId, String)> = Vec::new();
    for i in 0..trials {
        let order = orders::place(
            &app,
            &ctx,
            &OrderInput {
                client_id: Some(client.get()),
                currency: Some("USD".into()),
                promo_code: None,
                items: vec![OrderItem {
                    product_id: built.product("Plan").get(),
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
        let number = order.invoice.number.clone().expect("an issued invoice");
        // The attempt's reference is the number, a dash and six characters.
        invoices.push((order.invoice.id, format!("{number}-")));
    }
    let key = keel_app::access::create_key(
        &app,
        &ctx,
        NewKey {
            name: "client key".into(),
            scope: KeyScope::Client,
            reseller_id: None,
            client_id: Some(client),
            staff_id: None,
        },
    )
    .await
    .expect("a client key")
    .secret;

    let fake = FakePaynow::builder(&[(USD_ID, USD_KEY)])
        .public_base("https://www.paynow.co.zw")
        .browser_base_here()
        .delays(Duration::from_millis(50), Duration::from_millis(200))
        .retry_backoff(Duration::from_millis(500))
        .start()
        .await;
    let port = free_port();
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("keel.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n\
             [jobs]\nenabled = false\n\n\
             [plugin_host]\ncache_dir = {cache:?}\n\n\
             [plugins.paynow]\nusd_integration_id = {USD_ID}\nusd_integration_key = \"{USD_KEY}\"\n\
             auth_email = \"merchant@example.co.zw\"\n",
            cache = dir.path().join("plugin-cache").display().to_string(),
        ),
    )
    .expect("write keel.toml");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let base = format!("http://127.0.0.1:{port}");
    let paynow = format!("https://www.paynow.co.zw={}", fake.origin());
    let arm = |i: usize| Some(format!("{}@{}", points[i], invoices[i].1));

    let mut serve = Serve::start(dir.path(), &t.url, &paynow, arm(0)).await;
    let mut references: Vec<String> = Vec::new();
    let mut by_point: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (i, point) in points.iter().enumerate() {
        // This process also takes the retry of the previous trial's killed delivery: let it
        // complete before this trial's payment can get the process killed.
        if let Some(previous) = references.last() {
            until(
                &format!("trial {} completed by the retry", i - 1),
                || async {
                    attempt_state(&t.db, previous).await == Some(AttemptState::Succeeded)
                        && fake
                            .deliveries()
                            .iter()
                            .any(|d| d.reference == *previous && d.succeeded())
                },
            )
            .await;
        }
        let (invoice, prefix) = &invoices[i];
        let reply = http
            .post(format!("{base}/api/v1/invoices/{}/attempts", invoice.get()))
            .bearer_auth(&key)
            .header("Idempotency-Key", format!("pay-{i}"))
            .json(&json!({ "gateway": "paynow", "method": "ecocash", "phone": PHONE_PAID_FAST }))
            .send()
            .await
            .expect("start a payment");
        let status = reply.status();
        let body: serde_json::Value = reply.json().await.expect("a JSON answer");
        assert_eq!(status, 201, "trial {i}: {body}");
        let reference = body["reference"].as_str().expect("a reference").to_owned();
        assert!(reference.starts_with(prefix.as_str()), "{reference}");
        let marker = format!("KEEL_CRASH_POINT reached: {point} {reference}");
        serve
            .wait_for_line(|l| l == marker, &format!("{point} in trial {i}"))
            .await;
        serve.kill().await;
        *by_point.entry(point.name()).or_default() += 1;
        references.push(reference);
        serve = Serve::start(
            dir.path(),
            &t.url,
            &paynow,
            if i + 1 < trials { arm(i + 1) } else { None },
        )
        .await;
    }
    let last = references.last().expect("a trial").clone();
    until("the last trial completed by the retry", || async {
        attempt_state(&t.db, &last).await == Some(AttemptState::Succeeded)
            && fake
                .deliveries()
                .iter()
                .any(|d| d.reference == last && d.succeeded())
    })
    .await;
    serve.kill().await;
    eprintln!(
        "[{engine}] {trials} trials killed at {by_point:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Every invoice paid exactly once, nothing lost.
    for ((invoice, _), reference) in invoices.iter().zip(&references) {
        let view = keel_app::invoices::get(&app, &ctx, *invoice)
            .await
            .expect("the invoice");
        assert_eq!(view.status, InvoiceStatus::Paid, "{reference}");
        assert_eq!(view.payments.len(), 1, "{reference}: one payment row");
        let attempts = keel_store::attempts::of_invoice(&t.db, *invoice)
            .await
            .expect("attempts");
        assert_eq!(attempts.len(), 1, "{reference}: one attempt");
        assert_eq!(attempts[0].state, AttemptState::Succeeded, "{reference}");
        assert!(
            fake.deliveries()
                .iter()
                .any(|d| d.reference == *reference && d.succeeded()),
            "{reference}: the fake's delivery never succeeded"
        );
    }
    // One journal entry per reference, and no other gateway entry.
    let mut entries: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor = None;
    loop {
        let page = keel_store::ledger::list_entries(&t.db, None, cursor, 500)
            .await
            .expect("entries");
        for e in &page.items {
            if e.idempotency_key.starts_with("gateway:paynow:") {
                *entries.entry(e.idempotency_key.clone()).or_default() += 1;
            }
        }
        match page
            .next_cursor
            .as_deref()
            .and_then(keel_store::page::Cursor::decode)
        {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: BTreeMap<String, usize> = references
        .iter()
        .map(|r| (format!("gateway:paynow:{r}"), 1))
        .collect();
    assert_eq!(entries, expected, "one journal entry per reference");
    let report = keel_store::ledger::check(&t.db)
        .await
        .expect("ledger check");
    assert!(report.is_clean(), "{report:#?}");
    assert!(
        report.trial_balance.values().all(|v| *v == 0),
        "{report:#?}"
    );
    let check = Command::new(KEEL)
        .args(["--database", &t.url, "ledger", "check"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .await
        .expect("keel ledger check");
    assert!(
        check.status.success(),
        "keel ledger check: {}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    eprintln!(
        "[{engine}] {trials} invoices paid once each, ledger clean; took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    fake.stop().await;
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_killed_at_every_step_of_its_callback_is_paid_once_on_sqlite() {
    crash_and_retry(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_killed_at_every_step_of_its_callback_is_paid_once_on_postgres() {
    crash_and_retry(Backend::Postgres).await;
}
