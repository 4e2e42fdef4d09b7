//! Automation: the daily cleanup job, and staff's view of the queue.
//!
//! Each job handler is registered (with `inventory`, run by `keel-jobs` workers) beside the
//! use case it runs: `billing.run` in [`crate::billing_run`], `dunning.*` in
//! [`crate::dunning`], `notification.*` in [`crate::notifications`], `webhook.deliver` in
//! [`crate::webhooks`]; [`crate::jobs`] holds what they share. Each is idempotent: the
//! billing run bills a (service, period) once however often it runs.
//!
//! Staff use cases: list and read jobs, their counts per queue and state, the schedules
//! with their last firing; retry a parked or cancelled job; cancel one not running. Retry
//! and cancel are audited.

use crate::audit::record;
use crate::jobs::{app_of, payload_count};
use crate::{App, AppError, Ctx};
use futures::future::BoxFuture;
use keel_domain::access::Permission;
use keel_jobs::{Env, Handler, JobError};
use keel_store::jobs::{self as store, JobRecord, JobState, ScheduleStatus};
use serde_json::json;

/// The job kind of the cleanup (`[schedules.cleanup]`, daily): finished jobs older than
/// `keep_days`, `Idempotency-Key` answers older than `idempotency_keep_hours` and skipped
/// notifications older than `keep_skipped_days` (from the payload `keel serve` gives it,
/// else the defaults).
pub const CLEANUP: &str = "jobs.cleanup";

/// Done and cancelled jobs are kept this many days by default (`[jobs] keep_days`).
pub const KEEP_DAYS: u32 = 30;

/// Deletes done and cancelled jobs finished more than `keep_days` ago, in batches of
/// 10,000; returns how many.
pub async fn cleanup(app: &App, ctx: &Ctx, keep_days: u32) -> Result<u64, AppError> {
    ctx.require(Permission::Automation)?;
    let before = app.now() - chrono::Duration::days(i64::from(keep_days));
    let mut deleted = 0;
    loop {
        let n = store::delete_finished(&app.db, before, 10_000).await?;
        deleted += n;
        if n < 10_000 {
            return Ok(deleted);
        }
    }
}

/// Stored `Idempotency-Key` answers are kept this many hours by default
/// (`[server] idempotency_keep_hours`).
pub const IDEMPOTENCY_KEEP_HOURS: u32 = 24;

/// Forgets `Idempotency-Key` answers stored more than `keep_hours` ago; returns how many.
/// Part of the daily cleanup: a stored answer is request data (and, before secrets were
/// withheld, held credentials), so it is kept only as long as a client may retry.
pub async fn purge_idempotency_keys(
    app: &App,
    ctx: &Ctx,
    keep_hours: u32,
) -> Result<u64, AppError> {
    ctx.require(Permission::Automation)?;
    let before = app.now() - chrono::Duration::hours(i64::from(keep_hours));
    Ok(keel_store::idempotency::purge(&app.db, before).await?)
}

/// Skipped notifications are kept this many days by default
/// (`[notifications] keep_skipped_days`).
pub const KEEP_SKIPPED_DAYS: u32 = 30;

/// Deletes skipped notifications (never sent: email off or not configured) written more
/// than `keep_days` ago, in batches of 10,000; returns how many. Pending, sent and failed
/// ones are kept.
pub async fn prune_skipped_notifications(
    app: &App,
    ctx: &Ctx,
    keep_days: u32,
) -> Result<u64, AppError> {
    ctx.require(Permission::Automation)?;
    let before = app.now() - chrono::Duration::days(i64::from(keep_days));
    let mut deleted = 0;
    loop {
        let n = keel_store::notifications::delete_skipped(&app.db, before, 10_000).await?;
        deleted += n;
        if n < 10_000 {
            return Ok(deleted);
        }
    }
}

fn cleanup_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = app_of(env)?;
        let keep_days = payload_count(job, "keep_days", KEEP_DAYS)?;
        let keep_hours = payload_count(job, "idempotency_keep_hours", IDEMPOTENCY_KEEP_HOURS)?;
        let keep_skipped_days = payload_count(job, "keep_skipped_days", KEEP_SKIPPED_DAYS)?;
        let ctx = Ctx::system(&format!("job {}", job.id));
        let deleted = cleanup(app, &ctx, keep_days)
            .await
            .map_err(JobError::from)?;
        let keys = purge_idempotency_keys(app, &ctx, keep_hours)
            .await
            .map_err(JobError::from)?;
        let skipped = prune_skipped_notifications(app, &ctx, keep_skipped_days)
            .await
            .map_err(JobError::from)?;
        tracing::info!(
            job = job.id,
            deleted,
            keep_days,
            idempotency_keys = keys,
            keep_hours,
            skipped_notifications = skipped,
            keep_skipped_days,
            "finished jobs, old idempotency keys and skipped notifications cleaned up"
        );
        Ok(())
    })
}

inventory::submit! { Handler { kind: CLEANUP, run: cleanup_job } }

/// Jobs, newest first; `state` filters (ready, running, done, parked, cancelled).
pub async fn list(
    app: &App,
    ctx: &Ctx,
    state: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<JobRecord>, AppError> {
    ctx.require(Permission::Automation)?;
    let state = crate::parse_status(state, JobState::parse, "job")?;
    Ok(store::list(&app.db, state, before, limit.clamp(1, 500)).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: i64) -> Result<JobRecord, AppError> {
    ctx.require(Permission::Automation)?;
    store::get(&app.db, id)
        .await?
        .ok_or(AppError::NotFound { what: "job" })
}

/// Jobs per (queue, state).
pub async fn stats(app: &App, ctx: &Ctx) -> Result<Vec<(String, JobState, u64)>, AppError> {
    ctx.require(Permission::Automation)?;
    Ok(store::stats(&app.db).await?)
}

/// The schedules the scheduler has seen, with their next slot and last firing.
pub async fn schedules(app: &App, ctx: &Ctx) -> Result<Vec<ScheduleStatus>, AppError> {
    ctx.require(Permission::Automation)?;
    Ok(store::schedules(&app.db).await?)
}

/// Runs a parked or cancelled job again, now, with a fresh set of attempts.
pub async fn retry(app: &App, ctx: &Ctx, id: i64) -> Result<JobRecord, AppError> {
    change(app, ctx, id, Change::Retry).await
}

/// Cancels a job that is waiting or parked (a running one finishes first).
pub async fn cancel(app: &App, ctx: &Ctx, id: i64) -> Result<JobRecord, AppError> {
    change(app, ctx, id, Change::Cancel).await
}

/// A staff change to one job.
#[derive(Clone, Copy)]
enum Change {
    Retry,
    Cancel,
}

async fn change(app: &App, ctx: &Ctx, id: i64, what: Change) -> Result<JobRecord, AppError> {
    ctx.require(Permission::Automation)?;
    let before = get(app, ctx, id).await?;
    let mut tx = app.db.begin().await?;
    let now = app.now();
    let (changed, action, rule) = match what {
        Change::Retry => (
            store::retry(&mut tx, id, now).await?,
            "job.retry",
            "only a parked or cancelled job can be retried",
        ),
        Change::Cancel => (
            store::cancel(&mut tx, id, now).await?,
            "job.cancel",
            "only a ready or parked job can be cancelled",
        ),
    };
    if !changed {
        return Err(AppError::conflict(
            "job_state",
            format!("job {id} is {}; {rule}", before.state),
        ));
    }
    record(
        &mut tx,
        app,
        ctx,
        action,
        "job",
        id,
        json!({ "kind": before.kind, "was": before.state }),
    )
    .await?;
    tx.commit().await?;
    get(app, ctx, id).await
}

/// A schedule counts as late when its next slot passed this long ago without firing (no
/// scheduler is running).
pub const LATE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub priority: i32,
    /// ready, running, done, parked or cancelled.
    pub state: String,
    pub run_at: chrono::DateTime<chrono::Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> JobView {
        JobView {
            id: j.id,
            queue: j.queue,
            kind: j.kind,
            payload: j.payload,
            unique_key: j.unique_key,
            priority: j.priority,
            state: j.state.as_str().to_string(),
            run_at: j.run_at,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            lease_owner: j.lease_owner,
            lease_until: j.lease_until,
            last_error: j.last_error,
            created_at: j.created_at,
            updated_at: j.updated_at,
            finished_at: j.finished_at,
        }
    }
}

/// A schedule with its heartbeat: when it fires next, when it last fired and what became
/// of that job, and whether it needs a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub next_slot: chrono::DateTime<chrono::Utc>,
    pub last_slot: Option<chrono::DateTime<chrono::Utc>>,
    pub last_fired_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_job_id: Option<i64>,
    /// The last firing's job: ready, running, done, parked or cancelled.
    pub last_state: Option<String>,
    pub last_finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The next slot passed more than five minutes ago: no scheduler is running.
    pub late: bool,
    /// The last firing's job was parked: it failed every attempt.
    pub failing: bool,
}

impl ScheduleView {
    pub fn of(s: ScheduleStatus, now: chrono::DateTime<chrono::Utc>) -> ScheduleView {
        let r = s.schedule;
        ScheduleView {
            late: now > r.next_slot + LATE_AFTER,
            failing: s.last_state == Some(JobState::Parked),
            name: r.name,
            cron: r.cron,
            timezone: r.timezone,
            next_slot: r.next_slot,
            last_slot: r.last_slot,
            last_fired_at: r.last_fired_at,
            last_job_id: r.last_job_id,
            last_state: s.last_state.map(|st| st.as_str().to_string()),
            last_finished_at: s.last_finished_at,
        }
    }
}

/// The schedules with their heartbeat, as of the application's clock.
pub async fn schedule_views(app: &App, ctx: &Ctx) -> Result<Vec<ScheduleView>, AppError> {
    let now = app.now();
    Ok(schedules(app, ctx)
        .await?
        .into_iter()
        .map(|s| ScheduleView::of(s, now))
        .collect())
}
