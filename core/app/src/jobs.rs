//! The job environment: what every kernel job handler needs before it reaches a use case.
//! A leaf module: it imports no use case.
//!
//! - [`app_of`]: the [`App`] a handler runs in.
//! - [`as_of`]: the day a job works for.
//! - [`payload_count`]: a positive count from a payload.
//! - `JobError: From<AppError>`: the one rule turning a use case's error into a job's
//!   outcome (parked now, or retried later).

use crate::{App, AppError};
use chrono::NaiveDate;
use keel_jobs::{Env, JobError};
use keel_store::jobs::JobRecord;

/// The application a kernel job runs in (every handler's first step).
pub fn app_of(env: &Env) -> Result<&App, JobError> {
    env.downcast_ref::<App>()
        .ok_or_else(|| JobError::Fail("the job environment is not Keel's application".into()))
}

/// A use case's error as a job's outcome: what no retry can mend (bad input, a missing
/// row, a refusal, a missing configuration) parks the job at once; anything else (a lock,
/// the database, a conflict with a write in flight, a provider) is retried.
impl From<AppError> for JobError {
    fn from(e: AppError) -> JobError {
        match e {
            AppError::Invalid { .. }
            | AppError::InvalidText { .. }
            | AppError::Forbidden { .. }
            | AppError::FieldForbidden { .. }
            | AppError::Unauthorized { .. }
            | AppError::NotConfigured { .. }
            | AppError::NotFound { .. } => JobError::Fail(e.to_string()),
            AppError::Conflict { .. }
            | AppError::Unavailable { .. }
            | AppError::Ledger(_)
            | AppError::Internal(_) => JobError::Retry(e.to_string()),
        }
    }
}

/// The day a job works for: `payload.as_of` (YYYY-MM-DD), else the date of the schedule
/// slot that fired it (`payload.slot`), else today.
pub fn as_of(app: &App, job: &JobRecord) -> Result<NaiveDate, JobError> {
    if let Some(text) = job.payload.get("as_of").and_then(|v| v.as_str()) {
        return NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| JobError::Fail(format!("as_of {text:?} is not a date (YYYY-MM-DD)")));
    }
    if let Some(text) = job.payload.get("slot").and_then(|v| v.as_str()) {
        return chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.date_naive())
            .map_err(|_| JobError::Fail(format!("slot {text:?} is not a timestamp")));
    }
    Ok(app.today())
}

/// A positive whole number from the payload, or `default` when absent.
pub fn payload_count(job: &JobRecord, key: &str, default: u32) -> Result<u32, JobError> {
    match job.payload.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| JobError::Fail(format!("{key} {v} is not a positive whole number"))),
    }
}

/// An id from the payload (`{"notification": 12}`), or a parked job naming the missing key
/// (the step, notification and delivery jobs).
pub fn payload_id(job: &JobRecord, key: &str) -> Result<i64, JobError> {
    job.payload
        .get(key)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| JobError::Fail(format!("the payload has no {key:?} id")))
}
