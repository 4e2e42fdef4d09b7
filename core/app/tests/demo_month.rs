//! What a new host sees, on both engines: the demo book's next month in the preview, then
//! that month fast-forwarded on the test clock, day by day, through what `keel serve`'s
//! schedules run (the billing run at 09:00, the dunning run at 10:00, the job workers), with
//! email going to the test kit's loopback SMTP sink. Every message the preview's plan
//! implies arrives, once, and nothing else does. Copy it to try a catalog and policies.

use chrono::{Days, NaiveDate, TimeZone, Utc};
use keel_app::billing_run::{self, RunOptions};
use keel_app::notify::Settings;
use keel_app::{App, Ctx, FixedClock, dunning};
use keel_jobs::{Worker, WorkerConfig};
use keel_store::notifications as store;
use keel_testkit::smtp::SmtpSink;
use keel_testkit::store_test;
use std::collections::BTreeMap;
use std::sync::Arc;

fn at(day: NaiveDate, hour: u32) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(hour, 0, 0).unwrap())
}

async fn drain(w: &Worker) {
    let stop = tokio::sync::watch::channel(false).1;
    while w.tick(&stop).await.unwrap().claimed > 0 {}
}

/// The message a preview entry implies, by event name.
fn event_of(step: &str) -> Option<&'static str> {
    match step.split_once('-').map_or(step, |(kind, _)| kind) {
        "reminder" => Some("payment_reminder"),
        "overdue" => Some("invoice_overdue"),
        "late_fee" => Some("late_fee"),
        "suspend" => Some("service_suspended"),
        "terminate" => Some("service_terminated"),
        _ => None,
    }
}

/// The notification behind a received message, from its `Message-ID`.
fn notification_id(m: &keel_testkit::smtp::Received) -> i64 {
    let id = m.header("Message-ID").expect("a Message-ID");
    id.trim_start_matches("<keel-notification-")
        .trim_end_matches("@keel>")
        .parse()
        .unwrap_or_else(|_| panic!("a Keel Message-ID: {id}"))
}

store_test!(
    async fn the_demo_books_next_month_previewed_then_fast_forwarded_emails_what_the_preview_said(t) {
        let sink = SmtpSink::start().await;
        let start = "2027-01-25".parse::<NaiveDate>().unwrap();
        let clock = Arc::new(FixedClock::new(at(start, 8)));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_notifications(Settings {
            smtp_url: Some(sink.url()),
            from: "Keel Demo <billing@keel.test>".into(),
            theme_dir: None,
            ..Default::default()
        });
        let ctx = Ctx::system("demo");
        keel_app::demo::seed(&app).await.unwrap();
        let clock_fn = app.clock.clone();
        let w = Worker::new(
            app.db.clone(),
            Arc::new(app.clone()),
            WorkerConfig::new("default", "demo-month"),
            Arc::new(move || clock_fn.now()),
        );
        // The seed's own invoices and payments announce themselves.
        drain(&w).await;
        let seeded = sink.take();
        assert!(
            seeded.iter().any(|m| m.header("Subject").is_some_and(|s| s.starts_with("Invoice "))),
            "the seeded invoices were announced"
        );

        // The plan for the next 30 days.
        let preview = keel_app::preview::preview(&app, &ctx, 30).await.unwrap();
        assert_eq!(preview.from, start);
        let mut expected: BTreeMap<(i64, &str), u32> = BTreeMap::new();
        for day in &preview.days {
            for inv in &day.invoices {
                *expected.entry((inv.client_id, "invoice_created")).or_default() += 1;
                if inv.wallet_minor > 0 && inv.wallet_minor == inv.total_minor {
                    *expected.entry((inv.client_id, "payment_received")).or_default() += 1;
                }
            }
            for a in &day.actions {
                if let Some(event) = event_of(&a.step) {
                    *expected.entry((a.client_id, event)).or_default() += 1;
                }
            }
        }
        assert!(
            preview.totals.invoices.values().map(|t| t.count).sum::<u64>() > 0
                && preview.totals.reminders > 0
                && preview.totals.overdue_notices > 0
                && preview.totals.suspensions > 0
                && !preview.totals.wallet_payments.is_empty(),
            "a month of the demo renews, pays from a wallet, reminds, chases and suspends: {:?}",
            preview.totals
        );

        // The month, as `keel serve` runs it; nobody pays (the preview's assumption).
        let mut day = start;
        while day <= preview.to {
            clock.set(at(day, 9));
            billing_run::run(&app, &ctx, &RunOptions { as_of: day, dry_run: false }, &|_| {}).await.unwrap();
            drain(&w).await;
            clock.set(at(day, 10));
            dunning::run(&app, &ctx, day).await.unwrap();
            drain(&w).await;
            day = day + Days::new(1);
        }

        // What reached the sink, by (client, event), each notification once.
        let got = sink.take();
        let mut ids: Vec<i64> = got.iter().map(notification_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), got.len(), "a notification was sent twice");
        let mut received: BTreeMap<(i64, &str), u32> = BTreeMap::new();
        for id in ids {
            let n = store::get(&app.db, id).await.unwrap().expect("the notification");
            assert_eq!(n.state, keel_store::notifications::NotificationState::Sent);
            let event = [
                "invoice_created",
                "payment_reminder",
                "invoice_overdue",
                "late_fee",
                "service_suspended",
                "service_terminated",
                "payment_received",
                "service_unsuspended",
                "wallet_topup",
            ]
            .into_iter()
            .find(|e| *e == n.event)
            .unwrap_or_else(|| panic!("an unexpected event {}", n.event));
            *received.entry((n.client_id, event)).or_default() += 1;
        }
        assert_eq!(received, expected, "received (left) against the preview's plan (right)");
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);
