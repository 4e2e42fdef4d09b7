//! The durable job queue's table (`jobs`, migration 0004): enqueue in the caller's
//! transaction, claim in batches under a lease, then complete, retry, park or release.
//!
//! # The rules the queries keep
//! - A job is enqueued in the transaction of the change that needs it: it exists exactly
//!   when that change committed. A `unique_key` makes the enqueue idempotent, for ever (until
//!   the cleanup removes finished jobs): a second enqueue under the key is a no-op.
//! - A claim moves `ready` jobs whose `run_at` has come to `running`, counts the attempt and
//!   leases them to one owner until `lease_until`. PostgreSQL claims with
//!   `FOR UPDATE SKIP LOCKED`, so workers in several processes never take the same job;
//!   SQLite has one writer, so claims are serial anyway.
//! - Only the owner of a live lease can finish a job ([`complete`], [`fail`], [`release`],
//!   [`extend_leases`]): a worker whose lease ran out and whose job was claimed again
//!   changes nothing.
//! - A lease that ran out ([`release_expired`]) makes the job `ready` again, or `parked`
//!   when it has no attempt left: a killed worker's jobs run again once their lease ends.
//!
//! Every write goes through a transaction ([`Db::begin`]): on SQLite that is the single
//! writer connection.
//!
//! Wake-ups: on PostgreSQL an enqueue also sends `NOTIFY keel_jobs` (delivered at commit);
//! on SQLite it wakes this process's workers ([`wake`]), whose claim then waits for the
//! single writer, so it sees the job once the enqueuing transaction committed.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use std::sync::OnceLock;
use tokio::sync::Notify;

/// The PostgreSQL channel an enqueue notifies (payload: the queue).
pub const CHANNEL: &str = "keel_jobs";

keel_domain::named_enum!(
    /// A job's state.
    JobState {
        Ready = "ready",
        Running = "running",
        Done = "done",
        Parked = "parked",
        Cancelled = "cancelled",
    }
);

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` on the default queue, due at `run_at`, with 10 attempts.
    pub fn new(
        kind: impl Into<String>,
        payload: serde_json::Value,
        run_at: DateTime<Utc>,
    ) -> NewJob {
        NewJob {
            queue: "default".into(),
            kind: kind.into(),
            payload,
            unique_key: None,
            priority: 0,
            run_at,
            max_attempts: 10,
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> NewJob {
        self.unique_key = Some(key.into());
        self
    }

    pub fn queue(mut self, queue: impl Into<String>) -> NewJob {
        self.queue = queue.into();
        self
    }

    pub fn priority(mut self, priority: i32) -> NewJob {
        self.priority = priority;
        self
    }

    pub fn max_attempts(mut self, n: i32) -> NewJob {
        self.max_attempts = n.max(1);
        self
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRecord {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub priority: i32,
    pub state: JobState,
    pub run_at: DateTime<Utc>,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, queue, kind, payload, unique_key, priority, state, run_at, attempts, max_attempts, \
    lease_owner, lease_until, last_error, created_at, updated_at, finished_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    queue: String,
    kind: String,
    payload: String,
    unique_key: Option<String>,
    priority: i32,
    state: String,
    run_at: DateTime<Utc>,
    attempts: i32,
    max_attempts: i32,
    lease_owner: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<Row> for JobRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<JobRecord, StoreError> {
        Ok(JobRecord {
            id: r.id,
            payload: serde_json::from_str(&r.payload)
                .map_err(|e| StoreError::Corrupt(format!("job {} payload: {e}", r.id)))?,
            state: JobState::parse(&r.state)
                .ok_or_else(|| StoreError::Corrupt(format!("job {} state {:?}", r.id, r.state)))?,
            queue: r.queue,
            kind: r.kind,
            unique_key: r.unique_key,
            priority: r.priority,
            run_at: r.run_at,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        })
    }
}

fn records(rows: Vec<Row>) -> Result<Vec<JobRecord>, StoreError> {
    rows.into_iter().map(JobRecord::try_from).collect()
}

/// Wakes this process's workers (SQLite; PostgreSQL workers listen on [`CHANNEL`]).
pub fn waker() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Wakes this process's workers now.
pub fn wake() {
    waker().notify_waiters();
}

/// Wakes workers when `tx` commits: `NOTIFY` on PostgreSQL (delivered at commit), this
/// process's waker on SQLite (whose workers' claims wait for the single writer anyway).
async fn notify(tx: &mut Tx, queue: &str) -> Result<(), StoreError> {
    match tx {
        Tx::Postgres(t) => {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(queue)
                .execute(&mut **t)
                .await?;
        }
        Tx::Sqlite(_) => wake(),
    }
    Ok(())
}

/// Enqueues a job in the caller's transaction. `Some(id)` when it was added, `None` when a
/// job with its unique key already exists (whatever its state).
pub async fn enqueue(
    tx: &mut Tx,
    job: &NewJob,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    let payload = job.payload.to_string();
    let id: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO jobs (queue, kind, payload, unique_key, priority, state, run_at, attempts, max_attempts, \
           created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'ready', $6, 0, $7, $8, $8) \
         ON CONFLICT (unique_key) DO NOTHING RETURNING id"
    )
    .bind(&job.queue)
    .bind(&job.kind)
    .bind(&payload)
    .bind(job.unique_key.as_deref())
    .bind(job.priority)
    .bind(job.run_at)
    .bind(job.max_attempts)
    .bind(at)
    .fetch_optional(&mut *c)
    .await
    })?;
    if id.is_some() {
        notify(tx, &job.queue).await?;
    }
    Ok(id)
}

/// Enqueues many jobs in the caller's transaction (multi-row inserts); jobs whose unique
/// key is taken are skipped. Returns how many were added.
pub async fn enqueue_many(
    tx: &mut Tx,
    jobs: &[NewJob],
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut added = 0;
    for chunk in jobs.chunks(500) {
        // `state` and `attempts` take their defaults (ready, 0).
        let sql = format!(
            "INSERT INTO jobs (queue, kind, payload, unique_key, priority, run_at, max_attempts, created_at, \
               updated_at) VALUES {} ON CONFLICT (unique_key) DO NOTHING",
            crate::ledger::placeholders(tx, chunk.len(), 9),
        );
        added += on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for j in chunk {
                q = q
                    .bind(&j.queue)
                    .bind(&j.kind)
                    .bind(j.payload.to_string())
                    .bind(j.unique_key.as_deref())
                    .bind(j.priority)
                    .bind(j.run_at)
                    .bind(j.max_attempts)
                    .bind(at)
                    .bind(at);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    if added > 0 {
        notify(tx, "*").await?;
    }
    Ok(added)
}

/// Claims up to `limit` ready jobs of `queue` due by `now` for `owner` until `lease_until`,
/// counting an attempt on each; returned highest priority first, then oldest.
pub async fn claim(
    db: &Db,
    queue: &str,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<JobRecord>, StoreError> {
    let skip_locked = match db.engine() {
        crate::Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        crate::Engine::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1, lease_until = $2, \
           updated_at = $3 \
         WHERE id IN (SELECT id FROM jobs WHERE state = 'ready' AND queue = $4 AND run_at <= $3 \
           ORDER BY priority DESC, run_at, id LIMIT $5{skip_locked}) \
         RETURNING {COLUMNS}"
    );
    let mut tx = db.begin().await?;
    let rows: Vec<Row> = on_tx!(&mut tx, |c| sqlx::query_as(&sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(&mut *c)
        .await)?;
    tx.commit().await?;
    let mut jobs = records(rows)?;
    jobs.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.run_at.cmp(&b.run_at))
            .then(a.id.cmp(&b.id))
    });
    Ok(jobs)
}

/// Marks a job done, if `owner` still holds its lease.
pub async fn complete(
    db: &Db,
    id: i64,
    owner: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(complete_many(db, &[id], owner, at).await? == 1)
}

/// Marks many jobs done at once (one statement per 500), those `owner` still holds;
/// returns how many.
pub async fn complete_many(
    db: &Db,
    ids: &[i64],
    owner: &str,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    update_owned(
        db,
        "state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = $1, finished_at = $1",
        at,
        owner,
        ids,
    )
    .await
}

/// Records a failed attempt, if `owner` still holds the lease: the job is ready again at
/// `retry_at`, or parked (kept with its error) when it has no attempt left or `park` says so.
/// Returns the state it ended in (`None`: the lease was no longer this owner's).
pub async fn fail(
    db: &Db,
    id: i64,
    owner: &str,
    error: &str,
    retry_at: DateTime<Utc>,
    park: bool,
    at: DateTime<Utc>,
) -> Result<Option<JobState>, StoreError> {
    let mut tx = db.begin().await?;
    let state: Option<String> = on_tx!(&mut tx, |c| sqlx::query_scalar(
        "UPDATE jobs SET \
           state = CASE WHEN $1 OR attempts >= max_attempts THEN 'parked' ELSE 'ready' END, \
           run_at = CASE WHEN $1 OR attempts >= max_attempts THEN run_at ELSE $2 END, \
           finished_at = CASE WHEN $1 OR attempts >= max_attempts THEN $3 ELSE NULL END, \
           lease_owner = NULL, lease_until = NULL, last_error = $4, updated_at = $3 \
         WHERE id = $5 AND state = 'running' AND lease_owner = $6 RETURNING state"
    )
    .bind(park)
    .bind(retry_at)
    .bind(at)
    .bind(error)
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *c)
    .await)?;
    tx.commit().await?;
    state
        .map(|s| JobState::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("job state {s:?}"))))
        .transpose()
}

/// Gives jobs back unrun (a worker shutting down): ready again, the attempt not counted.
pub async fn release(
    db: &Db,
    ids: &[i64],
    owner: &str,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    update_owned(
        db,
        "state = 'ready', attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, updated_at = $1",
        at,
        owner,
        ids,
    )
    .await
}

/// Extends the leases `owner` still holds on `ids` to `until` (a heartbeat while handlers run).
pub async fn extend_leases(
    db: &Db,
    ids: &[i64],
    owner: &str,
    until: DateTime<Utc>,
) -> Result<u64, StoreError> {
    update_owned(db, "lease_until = $1", until, owner, ids).await
}

/// `UPDATE jobs SET {set}` (where `$1` is `at`) on the jobs of `ids` that `owner` still
/// holds, in one transaction; returns how many changed.
async fn update_owned(
    db: &Db,
    set: &str,
    at: DateTime<Utc>,
    owner: &str,
    ids: &[i64],
) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let mut changed = 0;
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE jobs SET {set} WHERE state = 'running' AND lease_owner = $2 AND id IN ({})",
            (3..3 + chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        changed += on_tx!(&mut tx, |c| {
            let mut q = sqlx::query(&sql).bind(at).bind(owner);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Running jobs whose lease ended before `now` become ready again (or parked, with no
/// attempt left): their worker died or hung. Returns how many.
pub async fn release_expired(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE jobs SET \
           state = CASE WHEN attempts >= max_attempts THEN 'parked' ELSE 'ready' END, \
           finished_at = CASE WHEN attempts >= max_attempts THEN $1 ELSE NULL END, \
           last_error = 'the lease of worker ' || lease_owner || ' ran out before the job finished', \
           lease_owner = NULL, lease_until = NULL, updated_at = $1 \
         WHERE state = 'running' AND lease_until < $1"
    )
    .bind(now)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}

/// Deletes up to `limit` done and cancelled jobs that finished before `before` (parked
/// jobs stay until staff act on them); returns how many. Their unique keys become free:
/// every kernel key names something recorded for good (a past schedule slot, a dunning
/// step's row and round, a webhook delivery's wake-up, a provisioning cause), so nothing is
/// enqueued under a freed key again.
pub async fn delete_finished(
    db: &Db,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let n = on_tx!(&mut tx, |c| {
        sqlx::query(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('done', 'cancelled') \
           AND finished_at < $1 ORDER BY id LIMIT $2)"
    )
    .bind(before)
    .bind(i64::from(limit))
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(n)
}

/// One job.
pub async fn get(db: &Db, id: i64) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row: Option<Row> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.map(JobRecord::try_from).transpose()
}

/// Jobs in `state` (any when `None`), newest first, before `before` (an id), at most `limit`.
pub async fn list(
    db: &Db,
    state: Option<JobState>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<JobRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM jobs WHERE ($1 IS NULL OR state = $1) AND id < $2 ORDER BY id DESC LIMIT $3"
    );
    let rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(state.map(JobState::as_str))
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
    records(rows)
}

/// Staff retry a parked (or cancelled) job: ready now, with its attempts counted afresh.
pub async fn retry(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE jobs SET state = 'ready', attempts = 0, run_at = $1, finished_at = NULL, updated_at = $1 \
         WHERE id = $2 AND state IN ('parked', 'cancelled')"
    )
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if n == 1 {
        notify(tx, "*").await?;
    }
    Ok(n == 1)
}

/// Staff cancel a job not running: ready or parked becomes cancelled.
pub async fn cancel(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1 \
         WHERE id = $2 AND state IN ('ready', 'parked')"
    )
    .bind(now)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Jobs per (queue, state).
pub async fn stats(db: &Db) -> Result<Vec<(String, JobState, u64)>, StoreError> {
    let rows: Vec<(String, String, i64)> = on_db!(db, |p| sqlx::query_as(
        "SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state ORDER BY queue, state"
    )
    .fetch_all(p)
    .await)?;
    rows.into_iter()
        .map(|(q, s, n)| {
            let state = JobState::parse(&s)
                .ok_or_else(|| StoreError::Corrupt(format!("job state {s:?}")))?;
            Ok((q, state, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}

/// The earliest `run_at` among ready jobs of `queue` (a worker sleeps until then at most).
pub async fn next_run_at(db: &Db, queue: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT MIN(run_at) FROM jobs WHERE state = 'ready' AND queue = $1"
    )
    .bind(queue)
    .fetch_one(p)
    .await)?)
}

// ---------------------------------------------------------------------------------------
// Schedules

/// The stored state of one schedule (`job_schedules`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ScheduleRow {
    pub name: String,
    /// The cron expression and time zone the slots were computed with.
    pub cron: String,
    pub timezone: String,
    /// The next slot to fire (UTC).
    pub next_slot: DateTime<Utc>,
    pub last_slot: Option<DateTime<Utc>>,
    pub last_job_id: Option<i64>,
    pub last_fired_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

const SCHEDULE_COLUMNS: &str =
    "name, cron, timezone, next_slot, last_slot, last_job_id, last_fired_at, updated_at";

/// Schedule `name`'s state, locked until the transaction ends (on SQLite the transaction
/// holds the single writer).
pub async fn schedule_for_update(
    tx: &mut Tx,
    name: &str,
) -> Result<Option<ScheduleRow>, StoreError> {
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM job_schedules WHERE name = $1{lock}");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(name)
        .fetch_optional(&mut *c)
        .await)?)
}

/// Writes a schedule's state (insert or replace).
pub async fn save_schedule(tx: &mut Tx, row: &ScheduleRow) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO job_schedules (name, cron, timezone, next_slot, last_slot, last_job_id, last_fired_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
           next_slot = excluded.next_slot, last_slot = excluded.last_slot, last_job_id = excluded.last_job_id, \
           last_fired_at = excluded.last_fired_at, updated_at = excluded.updated_at"
    )
    .bind(&row.name)
    .bind(&row.cron)
    .bind(&row.timezone)
    .bind(row.next_slot)
    .bind(row.last_slot)
    .bind(row.last_job_id)
    .bind(row.last_fired_at)
    .bind(row.updated_at)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A schedule with what became of its last firing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleStatus {
    #[serde(flatten)]
    pub schedule: ScheduleRow,
    /// The state of the last firing's job (`None`: never fired, or the job was cleaned up).
    pub last_state: Option<JobState>,
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// Every stored schedule, by name, with its last firing's outcome.
pub async fn schedules(db: &Db) -> Result<Vec<ScheduleStatus>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        schedule: ScheduleRow,
        job_state: Option<String>,
        job_finished_at: Option<DateTime<Utc>>,
    }
    let sql = format!(
        "SELECT {}, j.state AS job_state, j.finished_at AS job_finished_at \
         FROM job_schedules s LEFT JOIN jobs j ON j.id = s.last_job_id ORDER BY s.name",
        SCHEDULE_COLUMNS
            .split(", ")
            .map(|c| format!("s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows: Vec<Joined> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter()
        .map(|r| {
            let last_state = r
                .job_state
                .map(|s| {
                    JobState::parse(&s)
                        .ok_or_else(|| StoreError::Corrupt(format!("job state {s:?}")))
                })
                .transpose()?;
            Ok(ScheduleStatus {
                schedule: r.schedule,
                last_state,
                last_finished_at: r.job_finished_at,
            })
        })
        .collect()
}
