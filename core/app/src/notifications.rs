//! Notifications: sending the outbox's messages, and reading them.
//!
//! [`crate::notify::queue`] writes a message in its event's transaction. The
//! `notification.send` job sends it through its channel (email is built in: SMTP with
//! lettre, text and HTML parts, the invoice's PDF attached) and records the outcome; a
//! failure is retried with the job's backoff and, after the last attempt, the notification
//! is `failed` with the error. A missing `[email]` configuration fails it at once. Clients
//! (and staff for them) read their notifications and turn channels on or off.
//!
//! Plugin channels (WhatsApp, `[notifications.whatsapp]`) send through a notifier plugin:
//! - a client opts in with an E.164 number ([`opt_in`], time and source kept) and may opt
//!   out ([`opt_out`], or by replying STOP);
//! - inside the channel's customer-service window (24 hours after the client's last message)
//!   the message goes as free-form text, outside it as the event's approved template, and a
//!   text the provider refuses as outside the window is sent again as the template;
//! - the message's reference (`keel-notification-{id}`) is the same on every attempt, so a
//!   provider that deduplicates on it sends a retried message once;
//! - the provider's id of the sent message is kept, and its receipts ([`inbound`], posted to
//!   `/hooks/notifier/{plugin}`) move the notification's delivery state forward only;
//! - messages people send in are stored against the client whose number they come from.

use crate::notify::{self, Notice, PluginChannel, QueuedHeader, QueuedTemplate};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_domain::access::Permission;
use keel_domain::contact::Phone;
use keel_domain::ids::{ClientId, InvoiceId};
use keel_domain::text::limits;
use keel_jobs::{Env, Handler, JobError};
use keel_plugin_host::notifier::{
    ButtonKind, DeliveryStatus, InboundEvent, InboundMessage, Media, Message, Notifier,
    StatusUpdate, Template, TemplateButton, TemplateHeader,
};
use keel_plugin_host::{InboundReply, InboundRequest, PluginError, PluginFailure};
use keel_store::jobs::JobRecord;
use keel_store::notifications::{
    self as store, ConsentRow, Delivery, DeliveryChange, NewInbound, NotificationRow,
    NotificationState,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// The enabled notifier plugins, by plugin id.
#[derive(Clone, Default)]
pub struct Notifiers {
    by_id: BTreeMap<String, Arc<dyn Notifier>>,
}

impl Notifiers {
    /// Adds a notifier (a loaded plugin's handle, or a native implementation).
    pub fn add(&mut self, id: &str, handle: Arc<dyn Notifier>) {
        self.by_id.insert(id.to_owned(), handle);
    }

    /// Every loaded plugin of the notifier kind.
    pub fn from_plugins(plugins: &[keel_plugin_host::Plugin]) -> Notifiers {
        let mut all = Notifiers::default();
        for p in plugins {
            if let Some(handle) = p.notifier() {
                all.add(p.id(), Arc::new(handle));
            }
        }
        all
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Notifier>> {
        self.by_id.get(id)
    }
}

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The host has not configured the channel (`[email] smtp_url`, `[email] from`): no
    /// retry mends it, so the notification fails at once.
    #[error("{0}")]
    NotConfigured(String),
    /// Anything else (the SMTP server, the PDF, the database, a provider down): retried
    /// with backoff.
    #[error("{0}")]
    Failed(String),
    /// The provider refused this message for good (a number that cannot receive it): no
    /// retry mends it, so the notification fails at once.
    #[error("{0}")]
    Refused(String),
    /// The message is not to be sent after all (the client opted out since it was queued,
    /// no template may go outside the window): recorded as skipped with the reason.
    #[error("{0}")]
    Skipped(String),
}

/// What [`send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The notification was no longer pending (sent before).
    Already,
    /// Handed to the SMTP server.
    Email,
    /// Handed to a notifier plugin: the provider's id and first state, and whether it went
    /// as text (inside the window) or as the approved template.
    Plugin {
        provider_id: String,
        delivery: Delivery,
        as_template: bool,
    },
}

impl From<String> for SendError {
    fn from(m: String) -> SendError {
        SendError::Failed(m)
    }
}

/// Sends one notification through its channel (`Sent::Already` when it is no longer
/// pending).
pub async fn send(app: &App, n: &NotificationRow) -> Result<Sent, SendError> {
    if n.state != NotificationState::Pending {
        return Ok(Sent::Already);
    }
    if n.channel == notify::EMAIL {
        return send_email(app, n).await.map(|()| Sent::Email);
    }
    let Some(channel) = app.notify.channels.get(&n.channel) else {
        return Err(SendError::NotConfigured(format!(
            "the {} channel is not configured ([notifications.{}])",
            n.channel, n.channel
        )));
    };
    send_on_plugin(app, n, channel).await
}

/// The reference a plugin passes to its provider for notification `id`: the same on every
/// attempt, so a provider that deduplicates on it sends a retried message once.
pub fn reference(id: i64) -> String {
    format!("keel-notification-{id}")
}

async fn send_on_plugin(
    app: &App,
    n: &NotificationRow,
    channel: &PluginChannel,
) -> Result<Sent, SendError> {
    let plugin = app.notifiers.get(&channel.plugin).ok_or_else(|| {
        SendError::NotConfigured(format!(
            "the notifier plugin `{}` of [notifications.{}] is not enabled",
            channel.plugin, n.channel
        ))
    })?;
    let client = ClientId(n.client_id);
    // The consent is read again: an opt-out since the message was queued stops it.
    let consent = {
        let mut tx = app.db.begin().await.map_err(|e| e.to_string())?;
        let c = store::consent(&mut tx, client, &n.channel)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        c
    };
    let to = match consent {
        Some(c) if c.active() => c.address,
        _ => {
            return Err(SendError::Skipped(format!(
                "the client opted out of {} after this message was queued",
                n.channel
            )));
        }
    };
    let template: Option<QueuedTemplate> = n
        .template
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("the stored template: {e}"))?;
    let in_window = match channel.window_hours {
        None => true,
        Some(hours) => store::last_inbound_at(&app.db, &n.channel, &to)
            .await
            .map_err(|e| e.to_string())?
            .is_some_and(|at| app.now() - at < chrono::Duration::hours(i64::from(hours))),
    };
    let text = Message {
        reference: reference(n.id),
        to: to.clone(),
        subject: Some(n.subject.clone()),
        body: n.body_text.clone(),
        template: None,
        attachment: None,
    };
    // The invoice as a PDF document, by a link made now: with a new invoice's text, and in
    // a template's document header.
    let in_header = matches!(
        template,
        Some(QueuedTemplate::Ready {
            header: Some(QueuedHeader::InvoiceDocument),
            ..
        })
    );
    let with_text = notify::sends_invoice_document(&n.event);
    let media = match n.invoice_id.map(InvoiceId) {
        Some(id) if in_header || with_text => Some(invoice_media(app, id).await?),
        _ => None,
    };
    let attachment = media.clone().filter(|_| with_text);
    let as_template = |t: &QueuedTemplate| -> Result<Message, SendError> {
        match t {
            QueuedTemplate::Ready {
                name,
                language,
                parameters,
                header,
                buttons,
            } => Ok(Message {
                template: Some(Template {
                    name: name.clone(),
                    language: language.clone(),
                    parameters: parameters.clone(),
                    header: match header {
                        None => None,
                        Some(QueuedHeader::Text { parameters }) => {
                            Some(TemplateHeader::Text(parameters.clone()))
                        }
                        Some(QueuedHeader::InvoiceDocument) => match &media {
                            Some(m) => Some(TemplateHeader::Document(m.clone())),
                            None => {
                                return Err(SendError::Skipped(
                                    "the template's document header needs an invoice, and this message has none"
                                        .into(),
                                ));
                            }
                        },
                    },
                    buttons: buttons
                        .iter()
                        .map(|b| TemplateButton {
                            index: b.index,
                            kind: match b.kind {
                                notify::ButtonKind::Url => ButtonKind::Url,
                                notify::ButtonKind::QuickReply => ButtonKind::QuickReply,
                            },
                            parameter: b.parameter.clone(),
                        })
                        .collect(),
                }),
                ..text.clone()
            }),
            QueuedTemplate::Unavailable { reason } => Err(SendError::Skipped(format!(
                "outside the {}-hour window only an approved template may be sent, and {reason}",
                channel.window_hours.unwrap_or(24)
            ))),
        }
    };
    let unavailable = QueuedTemplate::Unavailable {
        reason: "the message has no template".into(),
    };
    let template = template.as_ref().unwrap_or(&unavailable);
    let (answer, templated) = if in_window {
        let mut answer = match &attachment {
            Some(m) => {
                plugin
                    .send(Message {
                        attachment: Some(m.clone()),
                        ..text.clone()
                    })
                    .await
            }
            None => plugin.send(text.clone()).await,
        };
        // A channel that cannot send the file (or not with this text as its caption)
        // sends the text alone.
        if attachment.is_some()
            && matches!(
                answer,
                Err(PluginFailure::Plugin(
                    PluginError::Unsupported | PluginError::InvalidInput(_)
                ))
            )
        {
            tracing::info!(
                notification = n.id,
                "the plugin did not take the invoice as a document; sending the text alone"
            );
            answer = plugin.send(text.clone()).await;
        }
        match answer {
            // The provider's window is the one that counts: a text refused as outside it
            // goes again as the template, under the same reference.
            Err(PluginFailure::Plugin(PluginError::Refused(why)))
                if matches!(template, QueuedTemplate::Ready { .. }) =>
            {
                tracing::info!(notification = n.id, %why, "text refused; sending the approved template");
                (plugin.send(as_template(template)?).await, true)
            }
            other => (other, false),
        }
    } else {
        (plugin.send(as_template(template)?).await, true)
    };
    match answer {
        Ok(receipt) => Ok(Sent::Plugin {
            provider_id: receipt.provider_id,
            delivery: delivery_of(receipt.status),
            as_template: templated,
        }),
        Err(failure) => Err(send_failure(failure)),
    }
}

/// What the kernel does with a plugin's failure to send.
fn send_failure(failure: PluginFailure) -> SendError {
    match failure {
        PluginFailure::Plugin(PluginError::Refused(m) | PluginError::InvalidInput(m)) => {
            SendError::Refused(m)
        }
        PluginFailure::Plugin(PluginError::Misconfigured(m)) => SendError::NotConfigured(m),
        PluginFailure::Plugin(PluginError::Unsupported) => SendError::NotConfigured(
            "the plugin cannot send this kind of message (a plugin built against keel:plugin \
             0.1 cannot send a template's header or buttons: rebuild it with keel-sdk 0.2)"
                .into(),
        ),
        PluginFailure::Plugin(PluginError::Unavailable(hint)) => {
            SendError::Failed(match hint.retry_after_seconds {
                Some(s) => format!("{} (retry after {s} s)", hint.reason),
                None => hint.reason,
            })
        }
        // A timeout or a trap may come after the provider took the message: the retry
        // uses the same reference.
        other => SendError::Failed(other.to_string()),
    }
}

/// The invoice's PDF as a document: a link that works as long as its pay link does.
async fn invoice_media(app: &App, invoice: InvoiceId) -> Result<Media, SendError> {
    let link = crate::pay_links::pdf_url(app, invoice)
        .await
        .map_err(|e| format!("the invoice's PDF link: {e}"))?;
    let inv =
        keel_store::invoices::get_invoice(&app.db, keel_domain::tenancy::Scope::Host, invoice)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("invoice {invoice} is gone"))?;
    Ok(Media {
        link,
        filename: Some(format!("{}.pdf", inv.display())),
        media_type: "application/pdf".into(),
        caption: None,
    })
}

fn delivery_of(s: DeliveryStatus) -> Delivery {
    match s {
        DeliveryStatus::Accepted => Delivery::Accepted,
        DeliveryStatus::Sent => Delivery::Sent,
        DeliveryStatus::Delivered => Delivery::Delivered,
        DeliveryStatus::Read => Delivery::Read,
        DeliveryStatus::Failed => Delivery::Failed,
    }
}

/// Sends one notification by email.
async fn send_email(app: &App, n: &NotificationRow) -> Result<(), SendError> {
    use lettre::message::{Attachment, MultiPart, header::ContentType};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let id = n.id;
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
    Ok(())
}

fn send_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = crate::jobs::app_of(env)?;
        let id = crate::jobs::payload_id(job, "notification")?;
        let n = store::get(&app.db, id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            .ok_or_else(|| JobError::Fail(format!("there is no notification {id}")))?;
        let result = send(app, &n).await;
        let channel = n.channel;
        // The outcome is counted before it is recorded: a crash between the two counts an
        // attempt the retry counts again, never one that was not made.
        let outcome = match &result {
            Ok(Sent::Already) => "already_sent",
            Ok(_) => "sent",
            Err(SendError::NotConfigured(_)) => "not_configured",
            Err(SendError::Failed(_)) => "retried",
            Err(SendError::Refused(_)) => "refused",
            Err(SendError::Skipped(_)) => "skipped",
        };
        metrics::counter!("keel_notifications_total", "channel" => channel, "outcome" => outcome)
            .increment(1);
        let now = app.now();
        let recorded = |e: keel_store::StoreError| JobError::Retry(e.to_string());
        match result {
            Ok(Sent::Already) => Ok(()),
            Ok(Sent::Email) => {
                store::record_attempt(&app.db, id, NotificationState::Sent, None, now)
                    .await
                    .map_err(recorded)?;
                Ok(())
            }
            Ok(Sent::Plugin {
                provider_id,
                delivery,
                ..
            }) => {
                crate::crash_points::reached(
                    crate::crash_points::Point::AfterNotifierSend,
                    &reference(id),
                )
                .await;
                store::record_sent(&app.db, id, &provider_id, delivery, now)
                    .await
                    .map_err(recorded)?;
                Ok(())
            }
            Err(SendError::Skipped(why)) => {
                tracing::info!(notification = id, reason = %why, "notification skipped");
                store::record_attempt(&app.db, id, NotificationState::Skipped, Some(&why), now)
                    .await
                    .map_err(recorded)?;
                Ok(())
            }
            Err(error) => {
                let (last, message) = match &error {
                    SendError::NotConfigured(m) | SendError::Refused(m) => (true, m),
                    SendError::Failed(m) => (job.attempts >= job.max_attempts, m),
                    SendError::Skipped(_) => unreachable!("handled above"),
                };
                let state = if last {
                    NotificationState::Failed
                } else {
                    NotificationState::Pending
                };
                store::record_attempt(&app.db, id, state, Some(message), now)
                    .await
                    .map_err(recorded)?;
                Err(match error {
                    SendError::NotConfigured(m) | SendError::Refused(m) => JobError::Fail(m),
                    SendError::Failed(m) | SendError::Skipped(m) => JobError::Retry(m),
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
    /// For plugin channels: the provider's id of the sent message (a WhatsApp `wamid`).
    pub provider_id: Option<String>,
    /// For plugin channels: the latest delivery receipt.
    pub delivery: Option<Delivery>,
    /// Why delivery failed, as the provider said.
    pub delivery_detail: Option<String>,
    /// When Keel recorded the latest receipt.
    pub delivery_at: Option<DateTime<Utc>>,
    /// When the provider says the latest receipt's state was reached, when it said.
    pub delivery_reported_at: Option<DateTime<Utc>>,
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
            provider_id: n.provider_id,
            delivery: n.delivery,
            delivery_detail: n.delivery_detail,
            delivery_at: n.delivery_at,
            delivery_reported_at: n.delivery_reported_at,
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
        plugin_channel(app, channel)?;
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

/// A configured plugin channel, or 422 `unknown_channel` naming the channels there are.
fn plugin_channel<'a>(app: &'a App, channel: &str) -> Result<&'a PluginChannel, AppError> {
    app.notify.channels.get(channel).ok_or_else(|| {
        let mut names = vec![notify::EMAIL];
        names.extend(app.notify.channels.keys().map(String::as_str));
        AppError::invalid(
            "unknown_channel",
            Some("channel"),
            format!("{channel:?} is not a channel ({})", names.join(", ")),
        )
    })
}

/// A client's opt-in to a plugin channel.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptInInput {
    /// The number to write to, E.164 (`+263771234567`); separators are dropped.
    #[schema(value_type = keel_domain::contact::Phone)]
    pub number: String,
    /// How the client gave consent (`checkout checkbox`, `asked on the phone`); kept with
    /// who recorded it.
    #[schema(schema_with = keel_domain::text::schema::memo)]
    pub source: Option<String>,
}

/// A client's consent to a channel, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConsentView {
    pub channel: String,
    /// Where messages go (E.164).
    pub address: String,
    /// Messages may be sent (opted in, not opted out since).
    pub active: bool,
    pub opted_in_at: DateTime<Utc>,
    /// Who recorded the opt-in, and how the client gave it.
    pub opt_in_source: String,
    pub opted_out_at: Option<DateTime<Utc>>,
    /// `whatsapp: STOP reply`, or who recorded the opt-out.
    pub opt_out_source: Option<String>,
}

impl From<ConsentRow> for ConsentView {
    fn from(c: ConsentRow) -> ConsentView {
        ConsentView {
            active: c.active(),
            channel: c.channel,
            address: c.address,
            opted_in_at: c.opted_in_at,
            opt_in_source: c.opt_in_source,
            opted_out_at: c.opted_out_at,
            opt_out_source: c.opt_out_source,
        }
    }
}

fn may_change_channels(ctx: &Ctx) -> Result<(), AppError> {
    if !ctx.actor.can(Permission::ClientsWrite) {
        ctx.require(Permission::Order)?;
    }
    Ok(())
}

/// Records a client's opt-in to a plugin channel at a number (the client itself, its
/// reseller, or staff), with who recorded it and how consent was given; replaces an earlier
/// opt-in and clears an opt-out. Audited.
pub async fn opt_in(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    channel: &str,
    input: &OptInInput,
) -> Result<ConsentView, AppError> {
    may_change_channels(ctx)?;
    crate::clients::get_client(app, ctx, client).await?;
    plugin_channel(app, channel)?;
    let number = Phone::parse(&input.number)
        .map_err(|e| AppError::invalid("invalid_phone", Some("number"), e.to_string()))?;
    let how = match input.source.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            AppError::check_text("source", s, limits::MEMO)?;
            s.to_owned()
        }
        _ => "no detail given".to_owned(),
    };
    let source = format!("{} ({}): {how}", ctx.actor.label(), actor_kind(ctx));
    let now = app.now();
    let mut tx = app.db.begin().await?;
    store::opt_in(&mut tx, client, channel, number.as_str(), &source, now).await?;
    crate::audit::record(
        &mut tx,
        app,
        ctx,
        "notification.opt_in",
        "client",
        client,
        json!({ "channel": channel, "address": number.as_str(), "source": source }),
    )
    .await?;
    let row = store::consent(&mut tx, client, channel)
        .await?
        .expect("written in this transaction");
    tx.commit().await?;
    Ok(row.into())
}

fn actor_kind(ctx: &Ctx) -> &'static str {
    match ctx.actor {
        keel_domain::access::Actor::Key { .. } => "API key",
        keel_domain::access::Actor::Staff { .. } => "staff",
        keel_domain::access::Actor::System { .. } => "Keel",
    }
}

/// Records a client's opt-out of a plugin channel: no message is sent to it there until it
/// opts in again. 404 when it never opted in; an opt-out already recorded stays as it was.
pub async fn opt_out(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    channel: &str,
) -> Result<ConsentView, AppError> {
    may_change_channels(ctx)?;
    crate::clients::get_client(app, ctx, client).await?;
    plugin_channel(app, channel)?;
    let source = format!("{} ({})", ctx.actor.label(), actor_kind(ctx));
    let mut tx = app.db.begin().await?;
    if store::consent(&mut tx, client, channel).await?.is_none() {
        return Err(AppError::NotFound { what: "opt-in" });
    }
    if store::opt_out(&mut tx, client, channel, &source, app.now()).await? {
        crate::audit::record(
            &mut tx,
            app,
            ctx,
            "notification.opt_out",
            "client",
            client,
            json!({ "channel": channel, "source": source }),
        )
        .await?;
    }
    let row = store::consent(&mut tx, client, channel)
        .await?
        .expect("read in this transaction");
    tx.commit().await?;
    Ok(row.into())
}

/// A client's consents, one per plugin channel it ever opted in to.
pub async fn consents(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
) -> Result<Vec<ConsentView>, AppError> {
    crate::clients::get_client(app, ctx, client).await?;
    Ok(store::consents_of(&app.db, client)
        .await?
        .into_iter()
        .map(ConsentView::from)
        .collect())
}

/// A message a client sent in, as staff read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InboundView {
    pub id: i64,
    pub channel: String,
    pub provider_id: String,
    pub sender: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A client's latest inbound messages, newest first (the client itself, its reseller, or
/// staff).
pub async fn inbound_of_client(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
) -> Result<Vec<InboundView>, AppError> {
    crate::clients::get_client(app, ctx, client).await?;
    Ok(store::inbound_of_client(&app.db, client, 100)
        .await?
        .into_iter()
        .map(|m| InboundView {
            id: m.id,
            channel: m.channel,
            provider_id: m.provider_id,
            sender: m.sender,
            body: m.body,
            received_at: m.received_at,
        })
        .collect())
}

/// Replies that opt a sender out of a channel, compared without case or surrounding
/// spaces (WhatsApp's opt-out guidance; the words SMS carriers honour).
pub const STOP_WORDS: &[&str] = &[
    "stop",
    "stop all",
    "unsubscribe",
    "opt out",
    "opt-out",
    "optout",
    "cancel",
];
/// Replies that opt a sender back in after a STOP.
pub const START_WORDS: &[&str] = &["start", "unstop", "subscribe"];

/// What an inbound webhook did, for the log and the tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboundOutcome {
    /// The plugin's answer to the provider.
    pub reply: Option<InboundReply>,
    /// Receipts that moved a message's delivery state.
    pub receipts_applied: usize,
    /// Receipts already applied, or older than the message's state.
    pub receipts_unchanged: usize,
    /// Receipts for a provider id no message has.
    pub receipts_unknown: usize,
    /// Messages stored (a redelivered one is not stored again).
    pub messages_stored: usize,
    /// Opt-outs recorded from STOP replies, opt-ins from START replies.
    pub opted_out: usize,
    pub opted_in: usize,
}

/// The plugin channel served by notifier plugin `plugin`.
fn channel_of_plugin<'a>(app: &'a App, plugin: &str) -> Option<(&'a str, &'a PluginChannel)> {
    app.notify
        .channels
        .iter()
        .find(|(_, c)| c.plugin == plugin)
        .map(|(name, c)| (name.as_str(), c))
}

/// A provider's webhook to notifier plugin `plugin` (`/hooks/notifier/{plugin}`), handed raw
/// to its `verify-inbound`: the subscription handshake, delivery receipts, inbound
/// messages. A forged, unsigned or wrongly verified request is 403 `webhook_refused` and
/// changes nothing; a webhook whose every event is a receipt for a message Keel never sent
/// is 404 `unknown_message` (the provider retries it, which also covers a receipt that
/// overtook the recording of the message's id).
pub async fn inbound(
    app: &App,
    plugin: &str,
    request: InboundRequest,
) -> Result<InboundOutcome, AppError> {
    let Some((channel, _)) = channel_of_plugin(app, plugin) else {
        return Err(AppError::NotFound { what: "notifier" });
    };
    let handle = app
        .notifiers
        .get(plugin)
        .ok_or(AppError::NotFound { what: "notifier" })?;
    let read = match handle.verify_inbound(request).await {
        Ok(read) => read,
        Err(PluginFailure::Plugin(PluginError::Refused(m) | PluginError::InvalidInput(m))) => {
            tracing::warn!(plugin, reason = %m, "a notifier webhook was refused");
            metrics::counter!("keel_notifier_webhooks_total", "channel" => channel.to_owned(), "outcome" => "refused")
                .increment(1);
            return Err(AppError::invalid("webhook_refused", None, m));
        }
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => {
            return Err(AppError::NotConfigured {
                setting: "plugins",
                message: format!("the notifier plugin `{plugin}`: {m}"),
            });
        }
        Err(other) => {
            return Err(AppError::Unavailable {
                code: "notifier_unavailable",
                message: format!(
                    "the notifier plugin `{plugin}` could not read the webhook: {other}"
                ),
                retry_after: None,
            });
        }
    };
    let mut out = InboundOutcome::default();
    let now = app.now();
    for event in &read.events {
        match event {
            InboundEvent::Status(s) => receipt(app, channel, s, now, &mut out).await?,
            InboundEvent::Message(m) => message_in(app, channel, m, now, &mut out).await?,
        }
    }
    let outcome = if out.receipts_unknown > 0 && out.receipts_unknown == read.events.len() {
        "unknown_message"
    } else {
        "accepted"
    };
    metrics::counter!("keel_notifier_webhooks_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
    if outcome == "unknown_message" {
        tracing::warn!(
            plugin,
            receipts = out.receipts_unknown,
            "delivery receipts for messages Keel did not send"
        );
        return Err(AppError::invalid(
            "unknown_message",
            None,
            "the receipts name no message Keel sent on this channel",
        ));
    }
    tracing::info!(
        plugin,
        applied = out.receipts_applied,
        unchanged = out.receipts_unchanged,
        unknown = out.receipts_unknown,
        stored = out.messages_stored,
        opted_out = out.opted_out,
        opted_in = out.opted_in,
        "notifier webhook handled"
    );
    out.reply = Some(read.reply);
    Ok(out)
}

async fn receipt(
    app: &App,
    channel: &str,
    s: &StatusUpdate,
    now: DateTime<Utc>,
    out: &mut InboundOutcome,
) -> Result<(), AppError> {
    // The provider's time orders the receipts; one that does not parse is left out (the
    // receipt is still applied, by rank).
    let reported_at = s.at.as_deref().and_then(|t| match DateTime::parse_from_rfc3339(t) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            tracing::warn!(channel, provider_id = %s.provider_id, at = t, "a receipt's time is not RFC 3339 ({e}); ordering it by status");
            None
        }
    });
    let receipt = store::Receipt {
        delivery: delivery_of(s.status),
        detail: s.detail.as_deref(),
        reported_at,
    };
    match store::record_delivery(&app.db, channel, &s.provider_id, receipt, now).await? {
        DeliveryChange::Moved => out.receipts_applied += 1,
        DeliveryChange::Unchanged => out.receipts_unchanged += 1,
        DeliveryChange::Unknown => out.receipts_unknown += 1,
    }
    Ok(())
}

async fn message_in(
    app: &App,
    channel: &str,
    m: &InboundMessage,
    now: DateTime<Utc>,
    out: &mut InboundOutcome,
) -> Result<(), AppError> {
    let received_at = DateTime::parse_from_rfc3339(&m.received_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now);
    let sender =
        Phone::parse(&m.sender).map_or_else(|_| m.sender.clone(), |p| p.as_str().to_owned());
    let mut tx = app.db.begin().await?;
    let clients = store::clients_at(&mut tx, channel, &sender).await?;
    // A number two clients share is stored unmatched: Keel does not guess whose it is.
    let client = match clients.as_slice() {
        [one] => Some(*one),
        _ => None,
    };
    let stored = store::insert_inbound(
        &mut tx,
        &NewInbound {
            channel,
            provider_id: &m.provider_id,
            sender: &sender,
            client_id: client,
            body: &m.body,
            received_at,
        },
        now,
    )
    .await?;
    if stored.is_none() {
        // Delivered before: its STOP, if it was one, was recorded then.
        tx.commit().await?;
        return Ok(());
    }
    out.messages_stored += 1;
    let word = m.body.trim().to_lowercase();
    let ctx = Ctx::system(&format!("{channel} reply"));
    if let Some(client) = client {
        if STOP_WORDS.contains(&word.as_str()) {
            let source = format!("{channel}: {} reply ({})", m.body.trim(), m.provider_id);
            if store::opt_out(&mut tx, client, channel, &source, now).await? {
                crate::audit::record(
                    &mut tx,
                    app,
                    &ctx,
                    "notification.opt_out",
                    "client",
                    client,
                    json!({ "channel": channel, "source": source }),
                )
                .await?;
                out.opted_out += 1;
            }
        } else if START_WORDS.contains(&word.as_str())
            && let Some(c) = store::consent(&mut tx, client, channel).await?
            && !c.active()
        {
            // Only a client who opted in before may opt back in by a reply: the first
            // opt-in is the host's to record, with its source.
            let source = format!("{channel}: {} reply ({})", m.body.trim(), m.provider_id);
            store::opt_in(&mut tx, client, channel, &c.address, &source, now).await?;
            crate::audit::record(
                &mut tx,
                app,
                &ctx,
                "notification.opt_in",
                "client",
                client,
                json!({ "channel": channel, "address": c.address, "source": source }),
            )
            .await?;
            out.opted_in += 1;
        }
    } else {
        tracing::info!(channel, sender = %sender, matched = clients.len(), "an inbound message matched no single client");
    }
    tx.commit().await?;
    Ok(())
}
