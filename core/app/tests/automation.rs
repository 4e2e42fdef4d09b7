//! Automation through the application: the billing run as a job, run by a real worker
//! from a schedule's firing, and staff retrying and cancelling jobs (audited), on both engines.

use chrono::{TimeZone, Utc};
use keel_app::{App, AppError, Clock, Ctx, FixedClock};
use keel_app::{automation, billing_run};
use keel_jobs::{Schedule, Scheduler, Worker, WorkerConfig};
use keel_store::jobs::{self as store, JobState, NewJob};
use keel_testkit::scenario::book::{self, BookOptions};
use keel_testkit::store_test;
use std::sync::Arc;

#[test]
fn the_kernels_handlers_are_registered() {
    let handlers = keel_jobs::handlers();
    assert!(
        handlers.contains_key(billing_run::BILLING_RUN),
        "{:?}",
        handlers.keys().collect::<Vec<_>>()
    );
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

store_test!(
    async fn a_scheduled_billing_run_bills_the_book_once(t) {
        let due = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 12, 31, 8, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        book::seed_book(&app, &BookOptions::new(40, 3, due)).await.unwrap();
        let scheduler = Scheduler::new(t.db.clone(), vec![Schedule::new("billing_run", "0 9 * * *", "UTC", billing_run::BILLING_RUN).unwrap()]);
        scheduler.tick(clock.now()).await.unwrap();

        // 2027-01-01 09:00: the slot fires; a worker runs the billing run as of that day.
        clock.set(Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap());
        let fired = scheduler.tick(clock.now()).await.unwrap();
        assert_eq!(fired.len(), 1);
        let w = worker(&app);
        let stop = tokio::sync::watch::channel(false).1;
        let tick = w.tick(&stop).await.unwrap();
        assert_eq!((tick.claimed, tick.done), (1, 1), "{tick:?}");
        let census = keel_store::seed::census(&t.db, i64::from(book::FIRST_PERIOD)).await.unwrap();
        assert_eq!((census.service_lines, census.services_not_billed_once), (40, 0));
        // The run's batches queued their invoices' messages as jobs: they run next.
        let notes = w.tick(&stop).await.unwrap();
        assert!(notes.claimed >= 1 && notes.done == notes.claimed, "{notes:?}");

        // The same day enqueued again by hand: the run finds nothing left to bill.
        let mut tx = t.db.begin().await.unwrap();
        store::enqueue(&mut tx, &NewJob::new(billing_run::BILLING_RUN, serde_json::json!({ "as_of": "2027-01-01" }), clock.now()), clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(w.tick(&stop).await.unwrap().done, 1);
        let again = keel_store::seed::census(&t.db, i64::from(book::FIRST_PERIOD)).await.unwrap();
        assert_eq!(again.invoices, census.invoices);
        let status = automation::schedules(&app, &Ctx::system("test")).await.unwrap();
        assert_eq!(status[0].last_state, Some(JobState::Done));
    }
);

store_test!(
    async fn staff_retry_a_parked_job_and_cancel_a_waiting_one(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let ctx = Ctx::system("staff");
        let mut tx = t.db.begin().await.unwrap();
        let bad = store::enqueue(&mut tx, &NewJob::new(billing_run::BILLING_RUN, serde_json::json!({ "as_of": "01/01/2027" }), clock.now()), clock.now()).await.unwrap().unwrap();
        let later = store::enqueue(&mut tx, &NewJob::new(billing_run::BILLING_RUN, serde_json::json!({}), clock.now() + chrono::Duration::days(1)), clock.now()).await.unwrap().unwrap();
        tx.commit().await.unwrap();

        let stop = tokio::sync::watch::channel(false).1;
        assert_eq!(worker(&app).tick(&stop).await.unwrap().parked, 1);
        let parked = automation::get(&app, &ctx, bad).await.unwrap();
        assert_eq!(parked.state, JobState::Parked);
        assert_eq!(parked.last_error.as_deref(), Some("as_of \"01/01/2027\" is not a date (YYYY-MM-DD)"));
        assert_eq!(automation::list(&app, &ctx, Some("parked"), None, 10).await.unwrap().len(), 1);
        let err = automation::list(&app, &ctx, Some("stuck"), None, 10).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid { code: "invalid_status", .. }), "{err:?}");

        let retried = automation::retry(&app, &ctx, bad).await.unwrap();
        assert_eq!((retried.state, retried.attempts), (JobState::Ready, 0));
        let err = automation::retry(&app, &ctx, bad).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "job_state", .. }), "{err:?}");
        let cancelled = automation::cancel(&app, &ctx, later).await.unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        let err = automation::get(&app, &ctx, 999_999).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { what: "job" }), "{err:?}");
        // Only admins manage automation.
        let support = Ctx::new(keel_domain::access::Actor::Staff {
            staff: keel_domain::ids::StaffId(1),
            label: "billing clerk".into(),
            role: keel_domain::access::StaffRole::Billing,
        });
        assert!(matches!(automation::list(&app, &support, None, None, 10).await.unwrap_err(), AppError::Forbidden { .. }));
        let audit = keel_store::audit::list(&t.db, None, 50).await.unwrap();
        let actions: Vec<&str> = audit.items.iter().map(|a| a.action.as_str()).collect();
        assert!(actions.contains(&"job.retry") && actions.contains(&"job.cancel"), "{actions:?}");
    }
);

store_test!(
    async fn the_cleanup_deletes_only_jobs_finished_long_enough_ago(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 3, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let w = worker(&app);
        let stop = tokio::sync::watch::channel(false).1;
        let enqueue = |kind: &'static str, key: String| {
            let db = t.db.clone();
            let now = clock.now();
            async move {
                let mut tx = db.begin().await.unwrap();
                let id = store::enqueue(&mut tx, &NewJob::new(kind, serde_json::json!({}), now).unique(key), now).await.unwrap().unwrap();
                tx.commit().await.unwrap();
                id
            }
        };
        // On 1 January: two jobs done, one parked (no handler), one cancelled.
        let old_done = enqueue(keel_jobs::NOOP, "old-1".into()).await;
        enqueue(keel_jobs::NOOP, "old-2".into()).await;
        let parked = enqueue("no.such.kind", "old-3".into()).await;
        let tick = w.tick(&stop).await.unwrap();
        assert_eq!((tick.done, tick.parked), (2, 1), "{tick:?}");
        let cancelled = enqueue(keel_jobs::NOOP, "old-4".into()).await;
        let mut tx = t.db.begin().await.unwrap();
        assert!(store::cancel(&mut tx, cancelled, clock.now()).await.unwrap());
        tx.commit().await.unwrap();
        // On 25 January: one more done, one waiting.
        clock.set(Utc.with_ymd_and_hms(2027, 1, 25, 3, 0, 0).unwrap());
        let recent = enqueue(keel_jobs::NOOP, "recent".into()).await;
        w.tick(&stop).await.unwrap();
        let waiting = enqueue(keel_jobs::NOOP, "later".into()).await;

        // On 1 February, keeping 30 days: nothing is old enough yet; on 2 February the
        // January 1st done and cancelled jobs go.
        clock.set(Utc.with_ymd_and_hms(2027, 1, 31, 3, 0, 0).unwrap());
        let ctx = Ctx::system("test");
        assert_eq!(automation::cleanup(&app, &ctx, 30).await.unwrap(), 0);
        clock.set(Utc.with_ymd_and_hms(2027, 2, 1, 3, 30, 0).unwrap());
        assert_eq!(automation::cleanup(&app, &ctx, 30).await.unwrap(), 3);
        assert!(store::get(&t.db, old_done).await.unwrap().is_none());
        assert!(store::get(&t.db, cancelled).await.unwrap().is_none());
        for kept in [parked, recent, waiting] {
            assert!(store::get(&t.db, kept).await.unwrap().is_some(), "job {kept} is kept");
        }
        assert_eq!(automation::cleanup(&app, &ctx, 30).await.unwrap(), 0, "once");

        // As a scheduled job, with the payload `keel serve` gives it.
        let mut tx = t.db.begin().await.unwrap();
        store::enqueue(&mut tx, &NewJob::new(automation::CLEANUP, serde_json::json!({ "keep_days": 1 }), clock.now()), clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(w.tick(&stop).await.unwrap().done, 2, "the cleanup, and the job that waited");
        assert!(store::get(&t.db, recent).await.unwrap().is_none(), "finished more than a day ago");
        assert!(store::get(&t.db, parked).await.unwrap().is_some());
        let client = Ctx::new(keel_domain::access::Actor::Key {
            key: keel_domain::ids::ApiKeyId(1),
            label: "client".into(),
            scope: keel_domain::tenancy::Scope::Client(keel_domain::ids::ClientId(1)),
            role: None,
            staff: None,
        });
        assert!(matches!(automation::cleanup(&app, &client, 30).await.unwrap_err(), AppError::Forbidden { .. }));
    }
);

store_test!(
    async fn the_cleanup_job_purges_idempotency_answers_older_than_their_retention(t) {
        use keel_store::idempotency::{self, Begin};
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 3, 1, 3, 30, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        // Answers stored 30, 25 and 23 hours ago, and one still running from a minute ago.
        let stored = |key: &'static str, hours_ago: i64| {
            let db = t.db.clone();
            let at = clock.now() - chrono::Duration::hours(hours_ago);
            async move {
                let Begin::Started(id) = idempotency::begin(&db, "key:1", key, "POST", "/api/v1/clients", "h", at).await.unwrap() else {
                    panic!("{key} is new");
                };
                idempotency::complete(&db, id, 201, "{}", at).await.unwrap();
            }
        };
        stored("30h", 30).await;
        stored("25h", 25).await;
        stored("23h", 23).await;
        let running = clock.now() - chrono::Duration::minutes(1);
        assert!(matches!(idempotency::begin(&t.db, "key:1", "running", "POST", "/x", "h", running).await.unwrap(), Begin::Started(_)));

        // The daily cleanup, with the payload `keel serve` gives it (24 hours kept).
        let mut tx = t.db.begin().await.unwrap();
        let payload = serde_json::json!({ "keep_days": 30, "idempotency_keep_hours": 24 });
        store::enqueue(&mut tx, &NewJob::new(automation::CLEANUP, payload, clock.now()), clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        let stop = tokio::sync::watch::channel(false).1;
        assert_eq!(worker(&app).tick(&stop).await.unwrap().done, 1);
        for (key, kept) in [("30h", false), ("25h", false), ("23h", true), ("running", true)] {
            let row = idempotency::find(&t.db, "key:1", key).await.unwrap();
            assert_eq!(row.is_some(), kept, "{key}");
        }
        // A retry of a purged request runs as a new one.
        assert!(matches!(idempotency::begin(&t.db, "key:1", "30h", "POST", "/api/v1/clients", "h", clock.now()).await.unwrap(), Begin::Started(_)));

        // Without the setting in its payload the job keeps the default, 24 hours; a shorter
        // retention is the host's choice.
        clock.set(clock.now() + chrono::Duration::hours(2));
        let ctx = Ctx::system("test");
        assert_eq!(automation::purge_idempotency_keys(&app, &ctx, 24).await.unwrap(), 1, "the 23-hour-old answer is now 25 hours old");
        assert_eq!(automation::purge_idempotency_keys(&app, &ctx, 1).await.unwrap(), 2, "the running one and the retry");
        assert_eq!(automation::purge_idempotency_keys(&app, &ctx, 1).await.unwrap(), 0, "once");
    }
);

store_test!(
    async fn the_cleanup_job_prunes_skipped_notifications_older_than_their_retention(t) {
        use keel_testkit::scenario::{Client, Scenario};
        use keel_store::notifications::{self as outbox, NewNotification, NotificationState};
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 3, 30, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let ann = Client::new("ann@example.com").name("Ann", "Moyo");
        let client = Scenario::new(&app).client(ann).build().await.client("ann@example.com");
        // A skipped message and a pending one on 1 January, a skipped one on 21 January,
        // written as keel_app::notify::queue writes them.
        let write = |cause: &'static str, state: NotificationState| {
            let app = app.clone();
            async move {
                let mut tx = app.db.begin().await.unwrap();
                let n = NewNotification {
                    client_id: client,
                    event: "invoice_overdue",
                    channel: "email",
                    recipient: "ann@example.com",
                    language: "en",
                    subject: "s",
                    body_text: "t",
                    body_html: "h",
                    invoice_id: None,
                    state,
                    note: (state == NotificationState::Skipped).then_some("email is not configured ([email] smtp_url)"),
                    unique_key: cause,
                    template: None,
                };
                let id = outbox::insert(&mut tx, &n, app.now()).await.unwrap().expect("a new cause");
                tx.commit().await.unwrap();
                id
            }
        };
        let old_skipped = write("overdue:1", NotificationState::Skipped).await;
        let old_pending = write("overdue:2", NotificationState::Pending).await;
        clock.set(Utc.with_ymd_and_hms(2027, 1, 21, 3, 30, 0).unwrap());
        let newer_skipped = write("overdue:3", NotificationState::Skipped).await;

        // On 6 February, the daily cleanup with the payload `keel serve` gives it (30 days
        // kept): the 36-day-old skipped message goes, the 16-day-old one and the pending one stay.
        clock.set(Utc.with_ymd_and_hms(2027, 2, 6, 3, 30, 0).unwrap());
        let stop = tokio::sync::watch::channel(false).1;
        let cleanup = |payload: serde_json::Value| {
            let db = t.db.clone();
            let now = clock.now();
            async move {
                let mut tx = db.begin().await.unwrap();
                store::enqueue(&mut tx, &NewJob::new(automation::CLEANUP, payload, now), now).await.unwrap();
                tx.commit().await.unwrap();
            }
        };
        cleanup(serde_json::json!({ "keep_days": 30, "idempotency_keep_hours": 24, "keep_skipped_days": 30 })).await;
        assert_eq!(worker(&app).tick(&stop).await.unwrap().done, 1);
        let left = |id| {
            let db = t.db.clone();
            async move { outbox::get(&db, id).await.unwrap().is_some() }
        };
        assert!(!left(old_skipped).await, "skipped 36 days ago");
        assert!(left(newer_skipped).await, "skipped 16 days ago");
        assert!(left(old_pending).await, "pending, however old");

        // A shorter retention in the payload takes the newer one too; the pending one stays.
        cleanup(serde_json::json!({ "keep_skipped_days": 10 })).await;
        assert_eq!(worker(&app).tick(&stop).await.unwrap().done, 1);
        assert!(!left(newer_skipped).await, "skipped 16 days ago, 10 kept");
        assert!(left(old_pending).await);

        // Without the setting the job keeps the default, 30 days.
        let ctx = Ctx::system("test");
        let recent = write("overdue:4", NotificationState::Skipped).await;
        clock.set(clock.now() + chrono::Duration::days(automation::KEEP_SKIPPED_DAYS.into()));
        cleanup(serde_json::json!({})).await;
        assert_eq!(worker(&app).tick(&stop).await.unwrap().done, 1);
        assert!(left(recent).await, "exactly 30 days old: kept");
        clock.set(clock.now() + chrono::Duration::seconds(1));
        assert_eq!(automation::prune_skipped_notifications(&app, &ctx, automation::KEEP_SKIPPED_DAYS).await.unwrap(), 1);
        assert!(!left(recent).await);
        assert!(left(old_pending).await);
    }
);
