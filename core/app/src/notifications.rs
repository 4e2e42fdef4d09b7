//! Notifications: sending the outbox's messages, and reading them.
//!
//! [`crate::notify::queue`] writes a message in its event's transaction. The
//! `notification.send` job sends it through its channel (email is built in: SMTP with
//! lettre, text and HTML parts, the invoice's PDF attached) and records the outcome; a
//! failure is retried with the job's backoff and, after the last attempt, the notification
//! is `failed` with the error. A missing `[email]` configuration fails it at once. Clients
//! (and staff for them) read their notifications and turn channels on or off.

use crate::notify::{self, Notice};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_domain::access::Permission;
use keel_domain::ids::{ClientId, InvoiceId};
use keel_jobs::{Env, Handler, JobError};
use keel_store::jobs::JobRecord;
use keel_store::notifications::{self as store, NotificationRow, NotificationState};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The host has not configured the channel (`[email] smtp_url`, `[email] from`): no
    /// retry mends it, so the notification fails at once.
    #[error("{0}")]
    NotConfigured(String),
    /// Anything else (the SMTP server, the PDF, the database): retried with backoff.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for SendError {
    fn from(m: String) -> SendError {
        SendError::Failed(m)
    }
}

/// Sends one notification by email; `Ok(false)` when it was sent already.
pub async fn send(app: &App, id: i64) -> Result<bool, SendError> {
    use lettre::message::{Attachment, MultiPart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let n = store::get(&app.db, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no notification {id}"))?;
    if n.state != NotificationState::Pending {
        return Ok(false);
    }
    let url = app.notify.smtp_url.as_deref().ok_or_else(|| {
        SendError::NotConfigured("email is not configured ([email] smtp_url)".into())
    })?;
    let from = app.notify.from.parse().map_err(|e| {
        SendError::NotConfigured(format!("[email] from {:?}: {e}", app.notify.from))
    })?;
    let to = n
        .recipient
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", n.recipient))?;
    let mut body = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
        n.body_text.clone(),
        n.body_html.clone(),
    ));
    if let Some(invoice) = n.invoice_id {
        let (name, pdf) =
            crate::invoices::pdf(app, &Ctx::system("notification"), InvoiceId(invoice))
                .await
                .map_err(|e| format!("the invoice PDF: {e}"))?;
        body = body.singlepart(Attachment::new(format!("{name}.pdf")).body(
            pdf,
            ContentType::parse("application/pdf").expect("a MIME type"),
        ));
    }
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(n.subject.clone())
        .message_id(Some(format!("<keel-notification-{id}@keel>")))
        .date(std::time::SystemTime::from(app.now()))
        .multipart(body)
        .map_err(|e| format!("building the message: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| SendError::NotConfigured(format!("[email] smtp_url: {e}")))?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .map_err(|e| format!("SMTP: {e}"))?;
    Ok(true)
}

fn send_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = crate::jobs::app_of(env)?;
        let id = crate::jobs::payload_id(job, "notification")?;
        let now = app.now();
        match send(app, id).await {
            Ok(true) => {
                store::record_attempt(&app.db, id, NotificationState::Sent, None, now)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(error) => {
                let (last, message) = match &error {
                    SendError::NotConfigured(m) => (true, m),
                    SendError::Failed(m) => (job.attempts >= job.max_attempts, m),
                };
                let state = if last {
                    NotificationState::Failed
                } else {
                    NotificationState::Pending
                };
                store::record_attempt(&app.db, id, state, Some(message), now)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Err(match error {
                    SendError::NotConfigured(m) => JobError::Fail(m),
                    SendError::Failed(m) => JobError::Retry(m),
                })
            }
        }
    })
}

inventory::submit! { Handler { kind: notify::SEND, run: send_job } }

/// Queues the messages of issued invoices, each once (the causes are those of a single
/// issue and payment, so a message queued by either path is not queued again).
pub async fn queue_issued(app: &App, invoices: &[InvoiceId]) -> Result<usize, AppError> {
    // Read without locking: a payment of one of these invoices meanwhile queues its own
    // receipt under the same cause, so whichever comes second writes nothing.
    let mut issued = Vec::with_capacity(invoices.len());
    for id in invoices {
        if let Some(inv) =
            keel_store::invoices::get_invoice(&app.db, keel_domain::tenancy::Scope::Host, *id)
                .await?
            && inv.status != keel_domain::lifecycle::InvoiceStatus::Draft
        {
            issued.push(inv);
        }
    }
    let mut tx = app.db.begin().await?;
    let mut queued = 0;
    for inv in issued {
        let created = notify::queue(
            &mut tx,
            app,
            Notice::InvoiceCreated(&inv),
            &crate::invoices::issued_cause(inv.id),
        )
        .await?;
        queued += usize::from(created.is_some());
        if inv.status == keel_domain::lifecycle::InvoiceStatus::Paid {
            let paid = notify::queue(
                &mut tx,
                app,
                Notice::Paid(&inv),
                &crate::settlement::paid_cause(&inv),
            )
            .await?;
            queued += usize::from(paid.is_some());
        }
    }
    tx.commit().await?;
    Ok(queued)
}

fn issued_run<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = crate::jobs::app_of(env)?;
        let ids = job
            .payload
            .get("invoices")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_i64().map(InvoiceId))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| JobError::Fail("the payload has no list of invoice ids".into()))?;
        queue_issued(app, &ids)
            .await
            .map(|_| ())
            .map_err(JobError::from)
    })
}

inventory::submit! { Handler { kind: notify::ISSUED, run: issued_run } }

/// A notification as staff read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub event: String,
    pub channel: String,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    pub state: NotificationState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub invoice_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<NotificationRow> for NotificationView {
    fn from(n: NotificationRow) -> NotificationView {
        NotificationView {
            id: n.id,
            event: n.event,
            channel: n.channel,
            recipient: n.recipient,
            language: n.language,
            subject: n.subject,
            state: n.state,
            attempts: n.attempts,
            last_error: n.last_error,
            invoice_id: n.invoice_id,
            created_at: n.created_at,
            sent_at: n.sent_at,
        }
    }
}

/// A client's latest notifications (the client itself, its reseller, or staff).
pub async fn of_client(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
) -> Result<Vec<NotificationView>, AppError> {
    crate::clients::get_client(app, ctx, client).await?;
    Ok(store::of_client(&app.db, client, 100)
        .await?
        .into_iter()
        .map(NotificationView::from)
        .collect())
}

/// Turns a channel on or off for a client (the client itself may).
pub async fn set_channel(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    channel: &str,
    enabled: bool,
) -> Result<(), AppError> {
    if !ctx.actor.can(Permission::ClientsWrite) {
        ctx.require(Permission::Order)?;
    }
    crate::clients::get_client(app, ctx, client).await?;
    if channel != notify::EMAIL {
        return Err(AppError::invalid(
            "unknown_channel",
            Some("channel"),
            format!("{channel:?} is not a channel (email)"),
        ));
    }
    let mut tx = app.db.begin().await?;
    store::set_channel(&mut tx, client, channel, enabled, app.now()).await?;
    crate::audit::record(
        &mut tx,
        app,
        ctx,
        "notification.channel",
        "client",
        client,
        json!({ "channel": channel, "enabled": enabled }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
