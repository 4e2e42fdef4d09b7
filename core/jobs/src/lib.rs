//! keel-jobs: the durable job queue's workers.
//!
//! The table and its queries are in [`keel_store::jobs`]; this crate runs them. A job is
//! enqueued in the business transaction that needs it ([`keel_store::jobs::enqueue`]). A
//! [`Worker`] claims a batch of due jobs under a lease, runs each with the [`Handler`]
//! registered for its kind (with [`inventory::submit!`]), and then completes it, retries it
//! later with exponential backoff and jitter ([`Backoff`]), or parks it with its error after
//! its last attempt. While handlers run, the worker extends its leases; a worker killed
//! mid-batch leaves leases that run out, after which any worker runs those jobs again.
//!
//! Handlers must be idempotent: a job runs at least once, and more than once only when its
//! worker lost the lease (killed, or hung past the lease) before recording the outcome.
//!
//! Waking: on PostgreSQL a worker listens on [`keel_store::jobs::CHANNEL`] (an enqueue
//! notifies at commit), on SQLite it waits on the process's [`keel_store::jobs::waker`];
//! both also wake at the next job's `run_at` and at least every `idle_poll`.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use keel_store::jobs::{self as store, JobRecord, JobState};
use keel_store::{Db, StoreError};
use std::any::Any;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub mod schedule;

pub use keel_store::jobs::NewJob;
pub use schedule::{Fired, Schedule, ScheduleError, Scheduler};

/// What handlers receive besides the job: the application, type-erased (a handler
/// downcasts it to what its crate registered, e.g. `keel_app::App`).
pub type Env = dyn Any + Send + Sync;

/// The time source: the application's clock (a test clock in tests).
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How a handler's attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (a provider down, a lock timeout).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad payload, a missing record): parked now, with this error.
    #[error("{0}")]
    Fail(String),
}

/// The handler of one job kind. Register it with
/// `inventory::submit! { keel_jobs::Handler { kind: "…", run: my_fn } }`.
pub struct Handler {
    pub kind: &'static str,
    pub run: for<'a> fn(&'a Env, &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>>,
}

inventory::collect!(Handler);

/// The kind of the job that does nothing: the queue's own probe (`keel bench jobs` drains
/// it; an admin can enqueue one to see the workers answer).
pub const NOOP: &str = "keel.noop";

fn noop<'a>(_: &'a Env, _: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async { Ok(()) })
}

inventory::submit! { Handler { kind: NOOP, run: noop } }

/// Every registered handler by kind.
pub fn handlers() -> HashMap<&'static str, &'static Handler> {
    inventory::iter::<Handler>
        .into_iter()
        .map(|h| (h.kind, h))
        .collect()
}

/// Exponential backoff with jitter: attempt `n` (1-based) waits a random time between half
/// and all of `min(max, base × 2^(n-1))`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait after attempt `attempt`.
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exp = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(30);
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }

    /// The wait after attempt `attempt`, jittered in `[ceiling / 2, ceiling]`.
    pub fn delay(&self, attempt: i32) -> Duration {
        use rand::Rng;
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
    }
}

/// A worker's settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub queue: String,
    /// This worker's name in leases: unique per process and worker.
    pub owner: String,
    pub lease: Duration,
    /// Jobs claimed at once.
    pub batch: u32,
    /// Handlers running at once.
    pub concurrency: usize,
    /// The longest sleep when idle (expired leases are looked for at least this often).
    pub idle_poll: Duration,
    pub backoff: Backoff,
}

impl WorkerConfig {
    pub fn new(queue: impl Into<String>, owner: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            queue: queue.into(),
            owner: owner.into(),
            lease: Duration::from_secs(60),
            batch: 100,
            concurrency: 8,
            idle_poll: Duration::from_secs(5),
            backoff: Backoff::default(),
        }
    }
}

/// What one [`Worker::tick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Expired leases given back (by any worker's death) before claiming; looked for at
    /// most every half lease.
    pub expired: u64,
    pub claimed: usize,
    pub done: usize,
    pub retried: usize,
    pub parked: usize,
    /// Outcomes not recorded because the lease was no longer ours.
    pub lost: usize,
    /// Claimed jobs given back unrun because the worker is stopping.
    pub released: usize,
}

/// Claims and runs jobs of one queue.
pub struct Worker {
    db: Db,
    env: Arc<Env>,
    config: WorkerConfig,
    now: Now,
    handlers: HashMap<&'static str, &'static Handler>,
    /// When this worker last gave back expired leases (by its clock): it looks at most
    /// every half lease, not on every claim (on SQLite each look is a write transaction).
    last_reap: std::sync::Mutex<Option<DateTime<Utc>>>,
}

enum Outcome {
    /// The handler succeeded; the job is marked done with the rest of the batch.
    Succeeded,
    Retried,
    Parked,
    Lost,
}

impl Worker {
    pub fn new(db: Db, env: Arc<Env>, config: WorkerConfig, now: Now) -> Worker {
        Worker {
            db,
            env,
            config,
            now,
            handlers: handlers(),
            last_reap: std::sync::Mutex::new(None),
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    fn lease_from(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + chrono::Duration::from_std(self.config.lease).unwrap_or(chrono::Duration::seconds(60))
    }

    /// Gives back expired leases, claims one batch and runs it. Jobs not yet started when
    /// `stop` turns true are released unrun.
    pub async fn tick(&self, stop: &watch::Receiver<bool>) -> Result<Tick, StoreError> {
        let now = keel_store::db::truncate((self.now)());
        let mut tick = Tick::default();
        let reap_every = chrono::Duration::from_std(self.config.lease / 2)
            .unwrap_or(chrono::Duration::seconds(30));
        let due = self
            .last_reap
            .lock()
            .map(|last| last.is_none_or(|at| now - at >= reap_every))
            .unwrap_or(true);
        if due {
            tick.expired = store::release_expired(&self.db, now).await?;
            if let Ok(mut last) = self.last_reap.lock() {
                *last = Some(now);
            }
        }
        let jobs = store::claim(
            &self.db,
            &self.config.queue,
            &self.config.owner,
            now,
            self.lease_from(now),
            self.config.batch,
        )
        .await?;
        tick.claimed = jobs.len();
        if jobs.is_empty() {
            return Ok(tick);
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let heartbeat = self.heartbeat(ids);
        let run = futures::stream::iter(jobs)
            .map(|job| async move {
                if *stop.borrow() {
                    return Ok::<_, StoreError>((None, Some(job.id)));
                }
                Ok((Some((job.id, self.run_one(&job).await?)), None))
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect::<Vec<_>>();
        let results = {
            tokio::pin!(heartbeat);
            tokio::select! {
                results = run => results,
                () = &mut heartbeat => unreachable!("the heartbeat runs until the batch ends"),
            }
        };
        let mut release = Vec::new();
        let mut succeeded = Vec::new();
        for r in results {
            match r? {
                (Some((id, Outcome::Succeeded)), _) => succeeded.push(id),
                (Some((_, Outcome::Retried)), _) => tick.retried += 1,
                (Some((_, Outcome::Parked)), _) => tick.parked += 1,
                (Some((_, Outcome::Lost)), _) => tick.lost += 1,
                (None, Some(id)) => release.push(id),
                (None, None) => {}
            }
        }
        // One statement marks the batch's successes done (a commit per job would cap the
        // queue at the disk's fsync rate).
        if !succeeded.is_empty() {
            let at = keel_store::db::truncate((self.now)());
            let done =
                store::complete_many(&self.db, &succeeded, &self.config.owner, at).await? as usize;
            tick.done = done;
            tick.lost += succeeded.len() - done;
        }
        if !release.is_empty() {
            let at = keel_store::db::truncate((self.now)());
            tick.released =
                store::release(&self.db, &release, &self.config.owner, at).await? as usize;
        }
        Ok(tick)
    }

    /// Extends this batch's leases every third of a lease, for ever (dropped with the batch).
    async fn heartbeat(&self, ids: Vec<i64>) {
        let every = (self.config.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            let until = self.lease_from(keel_store::db::truncate((self.now)()));
            if let Err(e) = store::extend_leases(&self.db, &ids, &self.config.owner, until).await {
                tracing::warn!(error = %e, "could not extend job leases");
            }
        }
    }

    async fn run_one(&self, job: &JobRecord) -> Result<Outcome, StoreError> {
        let started = std::time::Instant::now();
        let result = match self.handlers.get(job.kind.as_str()) {
            None => Err(JobError::Fail(format!(
                "no handler is registered for job kind {:?}",
                job.kind
            ))),
            Some(h) => AssertUnwindSafe((h.run)(self.env.as_ref(), job))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    Err(JobError::Retry(format!("the handler panicked: {message}")))
                }),
        };
        let at = keel_store::db::truncate((self.now)());
        let owner = &self.config.owner;
        let outcome = match result {
            Ok(()) => Outcome::Succeeded,
            Err(e) => {
                let park = matches!(e, JobError::Fail(_));
                let delay = self.config.backoff.delay(job.attempts);
                let retry_at =
                    at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                let message = e.to_string();
                match store::fail(&self.db, job.id, owner, &message, retry_at, park, at).await? {
                    Some(JobState::Parked) => {
                        tracing::error!(job = job.id, kind = %job.kind, attempts = job.attempts, error = %message, "job parked");
                        Outcome::Parked
                    }
                    Some(_) => {
                        tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, error = %message, %retry_at, "job failed; retrying");
                        Outcome::Retried
                    }
                    None => Outcome::Lost,
                }
            }
        };
        tracing::debug!(job = job.id, kind = %job.kind, elapsed_ms = started.elapsed().as_millis() as u64, "job ran");
        Ok(outcome)
    }

    /// Runs until `stop` turns true: claims while there is work, then sleeps until woken
    /// (an enqueue), the next job's `run_at`, or `idle_poll`. A batch in progress when
    /// stopping finishes the jobs it started and releases the others.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), StoreError> {
        let mut listener = match &self.db {
            Db::Postgres(pool) => {
                let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
                l.listen(store::CHANNEL).await?;
                Some(l)
            }
            Db::Sqlite { .. } => None,
        };
        while !*stop.borrow() {
            // Register for the in-process wake before looking, so a wake in between counts.
            let woken = store::waker().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let tick = match self.tick(&stop).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, queue = %self.config.queue, "job worker tick failed");
                    Tick::default()
                }
            };
            if tick.claimed as u32 >= self.config.batch {
                continue;
            }
            let sleep = self.idle_sleep().await;
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => {}
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(e) = n {
                        tracing::warn!(error = %e, "job notification listener failed; polling");
                    }
                }
            }
        }
        Ok(())
    }

    /// How long to sleep when idle: until the next ready job is due, at most `idle_poll`.
    async fn idle_sleep(&self) -> Duration {
        let poll = self.config.idle_poll;
        match store::next_run_at(&self.db, &self.config.queue).await {
            Ok(Some(at)) => (at - (self.now)())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(poll),
            _ => poll,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitters_within_the_upper_half() {
        let b = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        let ceilings: Vec<u64> = (1..=7).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.ceiling(0), Duration::from_secs(2));
        assert_eq!(b.ceiling(i32::MAX), Duration::from_secs(60));
        for attempt in 1..=8 {
            for _ in 0..200 {
                let d = b.delay(attempt);
                let c = b.ceiling(attempt);
                assert!(
                    d >= c / 2 && d <= c,
                    "attempt {attempt}: {d:?} outside [{:?}, {c:?}]",
                    c / 2
                );
            }
        }
    }
}
