//! Schedules: cron expressions in a time zone whose firings are jobs.
//!
//! A [`Scheduler`] tick looks at every schedule, in one transaction each: when its stored
//! `next_slot` has come, it enqueues the schedule's job with the unique key
//! `schedule:{name}:{slot}` and moves `next_slot` to the first slot *after now*. So:
//! - several processes ticking at once fire a slot once (the schedule's row is locked, and
//!   the job key is unique);
//! - slots missed while nothing ran (downtime) fire once, as the latest missed slot, not
//!   once per missed slot;
//! - a new schedule, or one whose expression or time zone changed, starts from the next slot
//!   after now (nothing is fired for the past).
//!
//! Slots are computed in the schedule's time zone (`0 9 * * *` in `Africa/Harare` is 07:00
//! UTC); across a daylight-saving gap a slot that does not exist moves to the first instant
//! after the gap, and a repeated hour fires once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use keel_store::jobs::{self as store, NewJob, ScheduleRow};
use keel_store::{Db, StoreError};

/// A schedule that cannot be used, with what is wrong in a person's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {name:?}: {expression:?} is not a cron expression ({reason})")]
    Cron {
        name: String,
        expression: String,
        reason: String,
    },
    #[error(
        "schedule {name:?}: {zone:?} is not a time zone name (like \"UTC\" or \"Africa/Harare\")"
    )]
    TimeZone { name: String, zone: String },
    #[error("schedule {name:?}: the expression {expression:?} never fires")]
    Never { name: String, expression: String },
}

/// One schedule: when, and which job it enqueues.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The expression as written (5 fields, minute first; or 6 with seconds first).
    pub expression: String,
    pub zone: Tz,
    /// The job each firing enqueues; its payload gets `schedule` and `slot` added.
    pub kind: String,
    pub queue: String,
    pub payload: serde_json::Value,
    cron: croner::Cron,
}

impl Schedule {
    pub fn new(
        name: &str,
        expression: &str,
        zone: &str,
        kind: &str,
    ) -> Result<Schedule, ScheduleError> {
        let cron = croner::Cron::new(expression.trim())
            .with_seconds_optional()
            .parse()
            .map_err(|e| ScheduleError::Cron {
                name: name.into(),
                expression: expression.into(),
                reason: e.to_string(),
            })?;
        let zone: Tz = zone.trim().parse().map_err(|_| ScheduleError::TimeZone {
            name: name.into(),
            zone: zone.into(),
        })?;
        let schedule = Schedule {
            name: name.into(),
            expression: expression.trim().into(),
            zone,
            kind: kind.into(),
            queue: "default".into(),
            payload: serde_json::json!({}),
            cron,
        };
        let probe = Utc::now();
        if schedule.next_after(probe).is_none() {
            return Err(ScheduleError::Never {
                name: name.into(),
                expression: expression.into(),
            });
        }
        Ok(schedule)
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.zone), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The unique key of the firing of `slot`.
    pub fn key(&self, slot: DateTime<Utc>) -> String {
        format!(
            "schedule:{}:{}",
            self.name,
            slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// What one tick did for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub schedule: String,
    pub slot: DateTime<Utc>,
    /// `None` when the job under the slot's key already existed.
    pub job: Option<i64>,
    pub next_slot: DateTime<Utc>,
}

/// Fires the schedules whose slot has come.
pub struct Scheduler {
    db: Db,
    schedules: Vec<Schedule>,
}

impl Scheduler {
    pub fn new(db: Db, schedules: Vec<Schedule>) -> Scheduler {
        Scheduler { db, schedules }
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Fires every schedule whose next slot is at or before `now`; returns the firings.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<Fired>, StoreError> {
        let now = keel_store::db::truncate(now);
        let mut fired = Vec::new();
        for s in &self.schedules {
            let mut tx = self.db.begin().await?;
            let stored = store::schedule_for_update(&mut tx, &s.name).await?;
            let zone = s.zone.name().to_string();
            let Some(next_from_now) = s.next_after(now) else {
                continue;
            };
            let row = match stored {
                // Known, unchanged: fire when due.
                Some(row) if row.cron == s.expression && row.timezone == zone => {
                    if row.next_slot > now {
                        continue;
                    }
                    let slot = row.next_slot;
                    let mut payload = s.payload.clone();
                    if let Some(map) = payload.as_object_mut() {
                        map.insert("schedule".into(), s.name.clone().into());
                        map.insert(
                            "slot".into(),
                            slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                                .into(),
                        );
                    }
                    let job = NewJob::new(s.kind.clone(), payload, slot)
                        .queue(s.queue.clone())
                        .unique(s.key(slot));
                    let id = store::enqueue(&mut tx, &job, now).await?;
                    fired.push(Fired {
                        schedule: s.name.clone(),
                        slot,
                        job: id,
                        next_slot: next_from_now,
                    });
                    ScheduleRow {
                        next_slot: next_from_now,
                        last_slot: Some(slot),
                        last_job_id: id.or(row.last_job_id),
                        last_fired_at: Some(now),
                        updated_at: now,
                        ..row
                    }
                }
                // New, or its expression or zone changed: start from the next slot.
                other => ScheduleRow {
                    name: s.name.clone(),
                    cron: s.expression.clone(),
                    timezone: zone,
                    next_slot: next_from_now,
                    last_slot: other.as_ref().and_then(|r| r.last_slot),
                    last_job_id: other.as_ref().and_then(|r| r.last_job_id),
                    last_fired_at: other.as_ref().and_then(|r| r.last_fired_at),
                    updated_at: now,
                },
            };
            store::save_schedule(&mut tx, &row).await?;
            tx.commit().await?;
        }
        Ok(fired)
    }
}
