//! Notifications: messages to clients about their invoices, payments and services.
//!
//! An event (a dunning step, a payment, an issued invoice) calls [`queue`] inside its own
//! transaction. The message is rendered there from the event's template in the client's
//! language (the host's theme folder first, then the built-in templates; `en` when the
//! language has none) and written to the `notifications` outbox once per (cause, channel),
//! with a `notification.send` job. The job sends it through its channel (email is built in:
//! SMTP with lettre, text and HTML parts, the invoice's PDF attached) and records the
//! outcome; a failure is retried with the job's backoff and, after the last attempt, the
//! notification is `failed` with the error. A client who turned a channel off gets the
//! message recorded as `skipped`, and so does everyone when the channel is not configured.
//!
//! Templates are minijinja files with three blocks, `subject`, `text` and `html` (HTML is
//! escaped in the `html` block only): `<theme>/notifications/<language>/<event>.jinja`.

use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_domain::access::Permission;
use keel_domain::ids::{ClientId, InvoiceId};
use keel_jobs::{Env, Handler, JobError};
use keel_store::Tx;
use keel_store::jobs::{JobRecord, NewJob};
use keel_store::notifications::{self as store, NewNotification, NotificationRow};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use utoipa::ToSchema;

/// The job kind that sends one notification.
pub const SEND: &str = "notification.send";
/// The email channel.
pub const EMAIL: &str = "email";
/// Sending attempts before a notification is failed.
const ATTEMPTS: i32 = 8;

/// The events Keel notifies clients of, each with its built-in English template.
pub const EVENTS: &[(&str, &str)] = &[
    (
        "invoice_created",
        include_str!("../templates/notifications/en/invoice_created.jinja"),
    ),
    (
        "payment_reminder",
        include_str!("../templates/notifications/en/payment_reminder.jinja"),
    ),
    (
        "invoice_overdue",
        include_str!("../templates/notifications/en/invoice_overdue.jinja"),
    ),
    (
        "late_fee",
        include_str!("../templates/notifications/en/late_fee.jinja"),
    ),
    (
        "service_suspended",
        include_str!("../templates/notifications/en/service_suspended.jinja"),
    ),
    (
        "service_unsuspended",
        include_str!("../templates/notifications/en/service_unsuspended.jinja"),
    ),
    (
        "service_terminated",
        include_str!("../templates/notifications/en/service_terminated.jinja"),
    ),
    (
        "payment_received",
        include_str!("../templates/notifications/en/payment_received.jinja"),
    ),
    (
        "wallet_topup",
        include_str!("../templates/notifications/en/wallet_topup.jinja"),
    ),
    (
        "password_reset",
        include_str!("../templates/notifications/en/password_reset.jinja"),
    ),
];

/// How notifications go out (`[email]`, `[notifications]` in keel.toml).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or `smtps://host:port`,
    /// with `user:password@` when the server wants them. None: email is off.
    pub smtp_url: Option<String>,
    /// The sender: `Billing <billing@example.com>`.
    pub from: String,
    /// The host's theme folder: `notifications/<language>/<event>.jinja` there replaces the
    /// built-in template.
    pub theme_dir: Option<PathBuf>,
}

/// A message rendered from a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub language: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn builtin(event: &str) -> Option<&'static str> {
    EVENTS.iter().find(|(e, _)| *e == event).map(|(_, t)| *t)
}

/// The template of `event` in `language`: the theme's, else the built-in one, else the
/// theme's English, else the built-in English. Returns it with the language used.
fn source(settings: &Settings, event: &str, language: &str) -> Result<(String, String), AppError> {
    let language = language.to_ascii_lowercase();
    for lang in [language.as_str(), "en"] {
        if let Some(dir) = &settings.theme_dir {
            let path = dir
                .join("notifications")
                .join(lang)
                .join(format!("{event}.jinja"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok((text, lang.to_string())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(AppError::Internal(
                        format!("reading {}: {e}", path.display()).into(),
                    ));
                }
            }
        }
        if lang == "en"
            && let Some(text) = builtin(event)
        {
            return Ok((text.to_string(), "en".into()));
        }
    }
    Err(AppError::invalid(
        "unknown_event",
        Some("event"),
        format!("no notification template for {event:?}"),
    ))
}

/// Renders `event` for a client speaking `language` with `context`.
pub fn render(
    settings: &Settings,
    event: &str,
    language: &str,
    context: &Value,
) -> Result<Rendered, AppError> {
    let (text, lang) = source(settings, event, language)?;
    let bad = |e: minijinja::Error| {
        AppError::invalid(
            "invalid_template",
            Some("template"),
            format!("notification template {lang}/{event}: {e}"),
        )
    };
    let mut plain = Environment::new();
    plain.set_fuel(Some(100_000));
    plain.set_auto_escape_callback(|_| AutoEscape::None);
    let mut html = Environment::new();
    html.set_fuel(Some(100_000));
    html.set_auto_escape_callback(|_| AutoEscape::Html);
    let mut captured = plain
        .template_from_str(&text)
        .and_then(|t| t.render_captured(context))
        .map_err(bad)?;
    let (subject, body) = captured
        .with_state_mut(|s| Ok((s.render_block("subject")?, s.render_block("text")?)))
        .map_err(bad)?;
    let body_html = html
        .template_from_str(&text)
        .and_then(|t| t.render_captured(context))
        .and_then(|mut c| c.with_state_mut(|s| s.render_block("html")))
        .map_err(bad)?;
    Ok(Rendered {
        language: lang,
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text: body.trim().to_string() + "\n",
        html: body_html.trim().to_string(),
    })
}

/// Queues `event` for a client by email, once per `cause`, in the caller's transaction.
/// `context` gets `client` and `seller` added. Returns the notification's id when it was
/// new.
pub async fn queue(
    tx: &mut Tx,
    app: &App,
    client: ClientId,
    event: &str,
    mut context: Value,
    invoice: Option<InvoiceId>,
    cause: &str,
) -> Result<Option<i64>, AppError> {
    let Some((email, language, first, last, company)) = store::recipient(tx, client).await? else {
        return Ok(None);
    };
    if let Some(map) = context.as_object_mut() {
        map.insert(
            "client".into(),
            json!({ "first_name": first, "last_name": last, "company": company, "email": email }),
        );
        map.insert("seller".into(), json!(app.billing.seller.name));
    }
    let r = render(&app.notify, event, &language, &context)?;
    let (state, note) = if app.notify.smtp_url.is_none() {
        (
            "skipped",
            Some("email is not configured ([email] smtp_url)"),
        )
    } else if !store::channel_enabled(tx, client, EMAIL).await? {
        ("skipped", Some("the client turned email notifications off"))
    } else {
        ("pending", None)
    };
    let now = app.now();
    let id = store::insert(
        tx,
        &NewNotification {
            client_id: client,
            event,
            channel: EMAIL,
            recipient: &email,
            language: &r.language,
            subject: &r.subject,
            body_text: &r.text,
            body_html: &r.html,
            invoice_id: invoice,
            state,
            note,
            unique_key: cause,
        },
        now,
    )
    .await?;
    if let Some(id) = id
        && state == "pending"
    {
        keel_store::jobs::enqueue(
            tx,
            &NewJob::new(SEND, json!({ "notification": id }), now)
                .unique(format!("notification:{id}"))
                .max_attempts(ATTEMPTS),
            now,
        )
        .await?;
    }
    Ok(id)
}

/// The invoice part of a template's context.
pub fn invoice_context(inv: &keel_store::billing::InvoiceRecord) -> Value {
    json!({
        "id": inv.id,
        "number": inv.number,
        "currency": inv.currency.code(),
        "total": inv.total.plain_amount(),
        "balance": inv.balance_due().plain_amount(),
        "due_date": inv.due_date,
        "status": inv.status,
    })
}

/// Sends one notification by email; `Ok(false)` when it was sent already.
pub async fn send(app: &App, id: i64) -> Result<bool, String> {
    use lettre::message::{Attachment, MultiPart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let n = store::get(&app.db, id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no notification {id}"))?;
    if n.state != "pending" {
        return Ok(false);
    }
    let url = app
        .notify
        .smtp_url
        .as_deref()
        .ok_or("email is not configured ([email] smtp_url)")?;
    let from = app
        .notify
        .from
        .parse()
        .map_err(|e| format!("[email] from {:?}: {e}", app.notify.from))?;
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
        .map_err(|e| format!("[email] smtp_url: {e}"))?
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
        let app = crate::automation::app_of(env)?;
        let id = job
            .payload
            .get("notification")
            .and_then(Value::as_i64)
            .ok_or_else(|| JobError::Fail("the payload has no notification id".into()))?;
        let now = app.now();
        match send(app, id).await {
            Ok(true) => {
                store::record_attempt(&app.db, id, "sent", None, now)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(error) => {
                let last = job.attempts >= job.max_attempts;
                let state = if last { "failed" } else { "pending" };
                store::record_attempt(&app.db, id, state, Some(&error), now)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Err(JobError::Retry(error))
            }
        }
    })
}

inventory::submit! { Handler { kind: SEND, run: send_job } }

/// The job kind that queues the "invoice created" messages of invoices the billing run
/// issued (and "payment received" for those its wallet auto-apply paid).
pub const ISSUED: &str = "notification.issued";

/// The [`ISSUED`] job of a batch of invoices, to enqueue in the transaction that issued
/// them.
pub fn issued_job(invoices: &[InvoiceId], now: DateTime<Utc>) -> NewJob {
    let ids: Vec<i64> = invoices.iter().map(|i| i.get()).collect();
    NewJob::new(ISSUED, json!({ "invoices": ids }), now)
}

/// Queues the messages of issued invoices, each once (the causes are those of a single
/// issue and payment, so a message queued by either path is not queued again).
pub async fn queue_issued(app: &App, invoices: &[InvoiceId]) -> Result<usize, AppError> {
    use keel_store::billing as billing_store;
    // Read without locking: a payment of one of these invoices meanwhile queues its own
    // receipt under the same cause, so whichever comes second writes nothing.
    let mut issued = Vec::with_capacity(invoices.len());
    for id in invoices {
        if let Some(inv) =
            billing_store::get_invoice(&app.db, keel_domain::tenancy::Scope::Host, *id).await?
            && inv.status != keel_domain::lifecycle::InvoiceStatus::Draft
        {
            issued.push(inv);
        }
    }
    let mut tx = app.db.begin().await?;
    let mut queued = 0;
    for inv in issued {
        let context = json!({ "invoice": invoice_context(&inv) });
        let created = queue(
            &mut tx,
            app,
            inv.client_id,
            "invoice_created",
            context.clone(),
            Some(inv.id),
            &format!("issued:{}", inv.id),
        )
        .await?;
        queued += usize::from(created.is_some());
        if inv.status == keel_domain::lifecycle::InvoiceStatus::Paid {
            let paid = queue(
                &mut tx,
                app,
                inv.client_id,
                "payment_received",
                context,
                Some(inv.id),
                &format!("paid:{}", inv.id),
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
        let app = crate::automation::app_of(env)?;
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
            .map_err(crate::automation::job_error)
    })
}

inventory::submit! { Handler { kind: ISSUED, run: issued_run } }

/// A notification as staff read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub event: String,
    pub channel: String,
    pub recipient: String,
    pub language: String,
    pub subject: String,
    /// pending, sent, failed or skipped.
    pub state: String,
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
    if channel != EMAIL {
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
