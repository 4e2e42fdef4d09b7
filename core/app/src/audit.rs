//! Audit rows from a use case's context, and reading the log.

use crate::{App, AppError, Ctx};
use keel_domain::access::{Actor, Permission};
use keel_store::audit::{AuditEntry, AuditRecord, ChainReport};
use keel_store::{Page, Tx};

/// Appends one audit row for `action` on `subject` inside the use case's transaction.
pub async fn record(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    action: &str,
    subject_kind: &str,
    subject_id: impl ToString,
    summary: serde_json::Value,
) -> Result<(), AppError> {
    let (actor_kind, actor_id) = match &ctx.actor {
        Actor::Key { key, .. } => ("api_key", Some(key.get())),
        Actor::Staff { staff, .. } => ("staff", Some(staff.get())),
        Actor::System { .. } => ("system", None),
    };
    let rec = AuditRecord {
        actor_kind,
        actor_id,
        actor_label: ctx.actor.label(),
        action,
        subject_kind,
        subject_id: subject_id.to_string(),
        summary,
        request_id: ctx.request_id.as_deref(),
    };
    keel_store::audit::record(tx, &rec, app.now()).await?;
    Ok(())
}

pub async fn list(
    app: &App,
    ctx: &Ctx,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<AuditEntry>, AppError> {
    ctx.require(Permission::AuditRead)?;
    Ok(keel_store::audit::list(&app.db, crate::cursor(cursor)?, crate::page_limit(limit)?).await?)
}

pub async fn verify(app: &App, ctx: &Ctx) -> Result<ChainReport, AppError> {
    ctx.require(Permission::AuditRead)?;
    Ok(keel_store::audit::verify(&app.db).await?)
}
