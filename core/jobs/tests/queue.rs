//! The job queue on both engines: enqueue in a transaction, unique keys, retries with
//! backoff, parking, expired leases, racing workers, and a stopping worker.

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use keel_jobs::{Handler, JobError, NewJob, Now, Worker, WorkerConfig};
use keel_store::jobs::{self as store, JobRecord, JobState};
use keel_testkit::store_test;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the test handlers see: how often each job ran to success.
#[derive(Default)]
struct Seen {
    runs: Mutex<HashMap<i64, u32>>,
}

impl Seen {
    fn of(env: &keel_jobs::Env) -> &Seen {
        env.downcast_ref::<Seen>().expect("the test environment")
    }
    fn count(&self, id: i64) {
        *self.runs.lock().unwrap().entry(id).or_default() += 1;
    }
    fn runs(&self, id: i64) -> u32 {
        self.runs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

fn count<'a>(env: &'a keel_jobs::Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        Seen::of(env).count(job.id);
        Ok(())
    })
}

/// Fails its first `payload.fail` attempts, then succeeds.
fn flaky<'a>(env: &'a keel_jobs::Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let fail = job.payload["fail"].as_i64().unwrap_or(0);
        if i64::from(job.attempts) <= fail {
            return Err(JobError::Retry(format!(
                "provider down (attempt {})",
                job.attempts
            )));
        }
        Seen::of(env).count(job.id);
        Ok(())
    })
}

fn invalid<'a>(_: &'a keel_jobs::Env, _: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async {
        Err(JobError::Fail(
            "the invoice in the payload does not exist".into(),
        ))
    })
}

fn panics<'a>(_: &'a keel_jobs::Env, _: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async { panic!("boom") })
}

inventory::submit! { Handler { kind: "test.count", run: count } }
inventory::submit! { Handler { kind: "test.flaky", run: flaky } }
inventory::submit! { Handler { kind: "test.invalid", run: invalid } }
inventory::submit! { Handler { kind: "test.panics", run: panics } }

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap()
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> TestClock {
        TestClock(Arc::new(Mutex::new(t0())))
    }
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
    fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += chrono::Duration::from_std(by).unwrap();
    }
    fn source(&self) -> Now {
        let c = self.clone();
        Arc::new(move || c.now())
    }
}

fn worker(t: &keel_testkit::TestDb, seen: &Arc<Seen>, clock: &TestClock, owner: &str) -> Worker {
    let mut config = WorkerConfig::new("default", owner);
    config.lease = Duration::from_secs(30);
    config.batch = 50;
    Worker::new(t.db.clone(), seen.clone(), config, clock.source())
}

async fn enqueue(t: &keel_testkit::TestDb, job: NewJob) -> Option<i64> {
    let mut tx = t.db.begin().await.unwrap();
    let id = store::enqueue(&mut tx, &job, t0()).await.unwrap();
    tx.commit().await.unwrap();
    id
}

fn running() -> watch::Receiver<bool> {
    // The sender is leaked on purpose: the worker must never see it closed.
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

async fn job(t: &keel_testkit::TestDb, id: i64) -> JobRecord {
    store::get(&t.db, id).await.unwrap().expect("the job")
}

store_test!(
    async fn a_job_exists_only_if_its_transaction_committed_and_a_unique_key_enqueues_once(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        let w = worker(t, &seen, &clock, "w1");

        let mut tx = t.db.begin().await.unwrap();
        let lost = store::enqueue(&mut tx, &NewJob::new("test.count", serde_json::json!({}), t0()), t0()).await.unwrap();
        assert!(lost.is_some());
        drop(tx); // rolled back
        let first = enqueue(t, NewJob::new("test.count", serde_json::json!({ "n": 1 }), t0()).unique("invoice:7:reminder:1")).await;
        let again = enqueue(t, NewJob::new("test.count", serde_json::json!({ "n": 2 }), t0()).unique("invoice:7:reminder:1")).await;
        assert!(first.is_some());
        assert_eq!(again, None, "a second enqueue under the key is a no-op");

        let tick = w.tick(&running()).await.unwrap();
        assert_eq!((tick.claimed, tick.done), (1, 1));
        let id = first.unwrap();
        assert_eq!(seen.runs(id), 1);
        let done = job(t, id).await;
        assert_eq!((done.state, done.attempts, done.payload["n"].as_i64()), (JobState::Done, 1, Some(1)));
        assert_eq!((done.lease_owner, done.finished_at), (None, Some(t0())));
        // Many at once: a taken key is skipped.
        let mut tx = t.db.begin().await.unwrap();
        let many = [
            NewJob::new("test.count", serde_json::json!({ "n": 3 }), t0()).unique("invoice:7:reminder:1"),
            NewJob::new("test.count", serde_json::json!({ "n": 4 }), t0()).unique("invoice:7:reminder:2"),
            NewJob::new("test.count", serde_json::json!({ "n": 5 }), t0()).priority(2),
        ];
        assert_eq!(store::enqueue_many(&mut tx, &many, t0()).await.unwrap(), 2);
        tx.commit().await.unwrap();
        let tick = w.tick(&running()).await.unwrap();
        assert_eq!((tick.claimed, tick.done), (2, 2));
        assert!(store::list(&t.db, None, None, 10).await.unwrap().iter().all(|j| j.state == JobState::Done));
        // Done jobs keep their key: the step cannot be enqueued again.
        assert_eq!(enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0()).unique("invoice:7:reminder:1")).await, None);
        assert_eq!(w.tick(&running()).await.unwrap().claimed, 0);
    }
);

store_test!(
    async fn jobs_run_when_due_highest_priority_first(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        let w = worker(t, &seen, &clock, "w1");
        let later = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0() + chrono::Duration::hours(1))).await.unwrap();
        let low = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0())).await.unwrap();
        let high = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0()).priority(5)).await.unwrap();
        let other_queue = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0()).queue("mail")).await.unwrap();

        let claimed = store::claim(&t.db, "default", "probe", t0(), t0() + chrono::Duration::seconds(30), 10).await.unwrap();
        assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![high, low], "due jobs of the queue, priority first");
        store::release(&t.db, &[high, low], "probe", t0()).await.unwrap();
        assert_eq!(job(t, high).await.attempts, 0, "a release does not count the attempt");

        assert_eq!(w.tick(&running()).await.unwrap().done, 2);
        assert_eq!((seen.runs(later), seen.runs(other_queue)), (0, 0));
        clock.advance(Duration::from_secs(3600));
        assert_eq!(w.tick(&running()).await.unwrap().done, 1);
        assert_eq!(seen.runs(later), 1);
        assert_eq!(store::next_run_at(&t.db, "default").await.unwrap(), None);
    }
);

store_test!(
    async fn a_failing_job_is_retried_with_backoff_and_parked_after_its_last_attempt(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        let w = worker(t, &seen, &clock, "w1");
        let flaky = enqueue(t, NewJob::new("test.flaky", serde_json::json!({ "fail": 2 }), t0())).await.unwrap();
        let broken = enqueue(t, NewJob::new("test.flaky", serde_json::json!({ "fail": 99 }), t0()).max_attempts(3)).await.unwrap();
        let invalid = enqueue(t, NewJob::new("test.invalid", serde_json::json!({}), t0())).await.unwrap();
        let panics = enqueue(t, NewJob::new("test.panics", serde_json::json!({}), t0()).max_attempts(1)).await.unwrap();
        let unknown = enqueue(t, NewJob::new("test.nobody", serde_json::json!({}), t0())).await.unwrap();

        let tick = w.tick(&running()).await.unwrap();
        assert_eq!((tick.claimed, tick.retried, tick.parked), (5, 2, 3));
        let f = job(t, flaky).await;
        assert_eq!((f.state, f.attempts), (JobState::Ready, 1));
        assert_eq!(f.last_error.as_deref(), Some("provider down (attempt 1)"));
        // Backoff after attempt 1: between 1 and 2 s (base 2 s, jittered down to half).
        let wait = f.run_at - t0();
        assert!(wait >= chrono::Duration::seconds(1) && wait <= chrono::Duration::seconds(2), "{wait}");
        assert_eq!(job(t, invalid).await.last_error.as_deref(), Some("the invoice in the payload does not exist"));
        assert_eq!(job(t, invalid).await.state, JobState::Parked);
        assert_eq!(job(t, panics).await.last_error.as_deref(), Some("the handler panicked: boom"));
        assert!(job(t, unknown).await.last_error.unwrap().contains("no handler"));

        // Not due yet: nothing runs. Then each retry waits longer.
        assert_eq!(w.tick(&running()).await.unwrap().claimed, 0);
        clock.advance(Duration::from_secs(2));
        assert_eq!(w.tick(&running()).await.unwrap().retried, 2);
        let f = job(t, flaky).await;
        let wait = f.run_at - clock.now();
        assert!(wait >= chrono::Duration::seconds(2) && wait <= chrono::Duration::seconds(4), "{wait}");
        clock.advance(Duration::from_secs(4));
        let tick = w.tick(&running()).await.unwrap();
        assert_eq!((tick.done, tick.parked), (1, 1), "{tick:?}");
        assert_eq!(seen.runs(flaky), 1);
        let b = job(t, broken).await;
        assert_eq!((b.state, b.attempts), (JobState::Parked, 3));
        assert_eq!(b.last_error.as_deref(), Some("provider down (attempt 3)"));
        let parked: Vec<i64> = store::list(&t.db, Some(JobState::Parked), None, 10).await.unwrap().iter().map(|j| j.id).collect();
        assert_eq!(parked, vec![unknown, panics, invalid, broken]);

        // Staff retry a parked job: it gets a fresh set of attempts. Cancelling a done job is refused.
        let mut tx = t.db.begin().await.unwrap();
        assert!(store::retry(&mut tx, broken, clock.now()).await.unwrap());
        assert!(!store::cancel(&mut tx, flaky, clock.now()).await.unwrap());
        assert!(store::cancel(&mut tx, unknown, clock.now()).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!((job(t, broken).await.state, job(t, broken).await.attempts), (JobState::Ready, 0));
        let stats = store::stats(&t.db).await.unwrap();
        let of = |s: JobState| stats.iter().find(|(q, st, _)| q == "default" && *st == s).map_or(0, |(_, _, n)| *n);
        assert_eq!((of(JobState::Ready), of(JobState::Done), of(JobState::Parked), of(JobState::Cancelled)), (1, 1, 2, 1));
    }
);

store_test!(
    async fn a_dead_workers_jobs_run_once_its_lease_has_ended(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        let id = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0())).await.unwrap();
        let last_chance = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0()).max_attempts(1)).await.unwrap();
        // A worker claims both and dies without a word.
        let claimed = store::claim(&t.db, "default", "dead", t0(), t0() + chrono::Duration::seconds(30), 10).await.unwrap();
        assert_eq!(claimed.len(), 2);

        let w = worker(t, &seen, &clock, "alive");
        assert_eq!(w.tick(&running()).await.unwrap().claimed, 0, "leased jobs are not taken");
        clock.advance(Duration::from_secs(31));
        let tick = w.tick(&running()).await.unwrap();
        assert_eq!((tick.expired, tick.claimed, tick.done), (2, 1, 1), "{tick:?}");
        assert_eq!(seen.runs(id), 1);
        let j = job(t, id).await;
        assert_eq!((j.state, j.attempts), (JobState::Done, 2));
        // The one with no attempt left is parked with what happened.
        let p = job(t, last_chance).await;
        assert_eq!(p.state, JobState::Parked);
        assert!(p.last_error.unwrap().contains("lease of worker dead ran out"));
        // The dead worker, back from the grave, cannot record anything.
        assert!(!store::complete(&t.db, id, "dead", clock.now()).await.unwrap());
        assert_eq!(store::fail(&t.db, id, "dead", "late", clock.now(), false, clock.now()).await.unwrap(), None);
    }
);

store_test!(
    async fn a_stopping_worker_releases_the_jobs_it_has_not_started(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        for _ in 0..5 {
            enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0())).await.unwrap();
        }
        let w = worker(t, &seen, &clock, "w1");
        let (stop_tx, stop) = watch::channel(true);
        let tick = w.tick(&stop).await.unwrap();
        assert_eq!((tick.claimed, tick.done, tick.released), (5, 0, 5));
        let jobs = store::list(&t.db, None, None, 10).await.unwrap();
        assert!(jobs.iter().all(|j| j.state == JobState::Ready && j.attempts == 0 && j.lease_owner.is_none()));
        drop(stop_tx);
        assert_eq!(w.tick(&running()).await.unwrap().done, 5);
    }
);

store_test!(
    async fn workers_racing_on_one_queue_run_each_job_exactly_once(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        let mut tx = t.db.begin().await.unwrap();
        let mut ids = Vec::new();
        for i in 0..2000 {
            let j = NewJob::new("test.count", serde_json::json!({ "i": i }), t0());
            ids.push(store::enqueue(&mut tx, &j, t0()).await.unwrap().unwrap());
        }
        tx.commit().await.unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|n| {
                let w = worker(t, &seen, &clock, &format!("w{n}"));
                tokio::spawn(async move {
                    let mut done = 0;
                    loop {
                        let tick = w.tick(&running()).await.unwrap();
                        if tick.claimed == 0 {
                            return done;
                        }
                        done += tick.done;
                    }
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        assert_eq!(total, 2000);
        assert!(ids.iter().all(|id| seen.runs(*id) == 1), "every job ran exactly once");
        let stats = store::stats(&t.db).await.unwrap();
        assert_eq!(stats, vec![("default".to_string(), JobState::Done, 2000)]);
    }
);

store_test!(
    async fn a_running_worker_is_woken_by_an_enqueue(t) {
        let (seen, clock) = (Arc::new(Seen::default()), TestClock::new());
        // Idle polling alone would take a minute: only the wake-up can run the job in time.
        let mut config = WorkerConfig::new("default", "w1");
        config.idle_poll = Duration::from_secs(60);
        let w = Worker::new(t.db.clone(), seen.clone(), config, clock.source());
        let (stop_tx, stop) = watch::channel(false);
        let running = tokio::spawn(async move { w.run(stop).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = enqueue(t, NewJob::new("test.count", serde_json::json!({}), t0())).await.unwrap();
        let started = std::time::Instant::now();
        while seen.runs(id) == 0 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.runs(id), 1, "the worker did not wake for the new job");
        stop_tx.send(true).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(job(t, id).await.state, JobState::Done);
    }
);
