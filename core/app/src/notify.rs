//! Notification queueing: a message to a client, rendered from its template and written to
//! the outbox in the causing transaction. A leaf module: it writes side-effect rows and
//! imports no use case. Sending, the outbox's reads and the clients' channel preferences
//! are [`crate::notifications`].
//!
//! An event (a dunning step, a payment, an issued invoice) calls [`queue`] with a typed
//! [`Notice`] inside its own transaction. The message is rendered there from the notice's
//! template in the client's language (the host's theme folder first, then the built-in
//! templates; `en` when the language has none) and written to the `notifications` outbox
//! once per (cause, channel), with a `notification.send` job. A client who turned a channel
//! off gets the message recorded as `skipped`, and so does everyone when the channel is not
//! configured.
//!
//! Templates are minijinja files with three blocks, `subject`, `text` and `html` (HTML is
//! escaped in the `html` block only): `<theme>/notifications/<language>/<event>.jinja`.
//! Messages that ask for payment also get `pay_url`, a pay link ([`crate::pay_links`]),
//! while the invoice has a balance and a gateway is enabled.

use crate::{App, AppError};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::Money;
use keel_domain::ids::{InvoiceId, ServiceId};
use keel_domain::lifecycle::InvoiceStatus;
use keel_store::Tx;
use keel_store::invoices::InvoiceRecord;
use keel_store::jobs::NewJob;
use keel_store::notifications::{self as store, NewNotification, NotificationState};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The job kind that sends one notification.
pub const SEND: &str = "notification.send";
/// The email channel.
pub const EMAIL: &str = "email";
/// Sending attempts before a notification is failed: with the job queue's backoff (a wait
/// of half to all of 2 s doubling up to an hour) they span at least a day and at most about
/// two, so a provider or mail server down for a day still gets the message out when it is
/// back.
pub const ATTEMPTS: i32 = 60;

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
    /// Channels served by notifier plugins, by channel name (`[notifications.whatsapp]`).
    pub channels: BTreeMap<String, PluginChannel>,
    /// `smtp://host:port` (plain, or `?tls=required` for STARTTLS) or `smtps://host:port`,
    /// with `user:password@` when the server wants them. None: email is off.
    pub smtp_url: Option<String>,
    /// The sender: `Billing <billing@example.com>`.
    pub from: String,
    /// The host's theme folder: `notifications/<language>/<event>.jinja` there replaces the
    /// built-in template.
    pub theme_dir: Option<PathBuf>,
}

/// The WhatsApp channel's name (`[notifications.whatsapp]`).
pub const WHATSAPP: &str = "whatsapp";

/// A channel served by a notifier plugin (`[notifications.<channel>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginChannel {
    /// The enabled notifier plugin that sends its messages (`whatsapp`).
    pub plugin: String,
    /// Hours after a client's last message in which free-form text may be sent (WhatsApp's
    /// customer-service window: 24); outside them only an approved template. `None`: the
    /// channel has no window and always sends text.
    pub window_hours: Option<u32>,
    /// Per event, the provider-approved template sent outside the window.
    pub templates: BTreeMap<String, TemplateMapping>,
}

/// An event's approved template (`[notifications.whatsapp.templates.<event>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateMapping {
    /// The template's name at the provider.
    pub name: String,
    /// Its language code (`en`, `en_US`).
    pub language: String,
    /// Its body parameters in order, each a value of the event's context by path
    /// (`client.first_name`, `invoice.number`, `invoice.balance`, `pay_url`).
    pub parameters: Vec<String>,
    /// Its header's parameters, when the template's header has any.
    pub header: Option<HeaderMapping>,
    /// Its dynamic buttons' parameters.
    pub buttons: Vec<ButtonMapping>,
}

impl TemplateMapping {
    /// A template with body parameters only.
    pub fn body(name: &str, language: &str, parameters: &[&str]) -> TemplateMapping {
        TemplateMapping {
            name: name.to_owned(),
            language: language.to_owned(),
            parameters: parameters.iter().map(|p| (*p).to_owned()).collect(),
            header: None,
            buttons: Vec::new(),
        }
    }
}

/// What fills a template's header (`header = { type = "document" }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeaderMapping {
    /// A text header's parameters, each a value of the event's context by path.
    Text { parameters: Vec<String> },
    /// The message's invoice as a PDF document, by a pay link that expires (events that
    /// carry an invoice).
    Document,
}

/// What fills one of a template's dynamic buttons
/// (`buttons = [{ index = 0, type = "url", parameter = "pay_token" }]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonMapping {
    /// The button's position among the template's buttons, from 0.
    pub index: u8,
    #[serde(rename = "type")]
    pub kind: ButtonKind,
    /// A value of the event's context by path: a URL button's dynamic suffix (`pay_token`
    /// for a button whose URL ends in `/pay/{{1}}`), a quick reply's payload.
    pub parameter: String,
}

/// A template button's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    Url,
    QuickReply,
}

/// The events a client can be notified of by a plugin channel (every [`Notice`]'s).
pub const NOTICE_EVENTS: &[&str] = &[
    "invoice_created",
    "payment_reminder",
    "invoice_overdue",
    "late_fee",
    "service_suspended",
    "service_unsuspended",
    "service_terminated",
    "payment_received",
    "wallet_topup",
];

/// The context paths a template parameter of `event` may name.
pub fn parameter_paths(event: &str) -> Vec<&'static str> {
    let mut paths = vec![
        "seller",
        "client.first_name",
        "client.last_name",
        "client.company",
        "client.email",
        "invoice.id",
        "invoice.number",
        "invoice.currency",
        "invoice.total",
        "invoice.balance",
        "invoice.due_date",
        "invoice.status",
    ];
    match event {
        "payment_reminder" | "invoice_overdue" => paths.push("days"),
        "late_fee" => paths.push("fee"),
        "service_suspended" | "service_unsuspended" | "service_terminated" => {
            paths.extend(["service.id", "service.label"])
        }
        _ => {}
    }
    if matches!(
        event,
        "invoice_created"
            | "payment_reminder"
            | "invoice_overdue"
            | "late_fee"
            | "service_suspended"
    ) {
        paths.extend(["pay_url", "pay_token"]);
    }
    paths
}

/// Whether `event`'s message goes on a plugin channel, inside its window, as the invoice's
/// PDF document with the text as its caption: a new invoice's does; reminders, notices and
/// receipts go as text (with the pay link), and any of them may put the document in its
/// template's header.
pub fn sends_invoice_document(event: &str) -> bool {
    event == "invoice_created"
}

/// Whether `event`'s messages carry their invoice (as the email's PDF attachment, as a
/// template's document header).
pub fn event_carries_invoice(event: &str) -> bool {
    event != "service_unsuspended"
}

/// Checks a channel's template for `event`: the event exists and sends messages, the
/// name and language are set, and every parameter names a value the event has.
pub fn check_template(event: &str, t: &TemplateMapping) -> Result<(), String> {
    if !NOTICE_EVENTS.contains(&event) {
        return Err(format!(
            "{event:?} is not an event clients are notified of (one of: {})",
            NOTICE_EVENTS.join(", ")
        ));
    }
    if t.name.trim().is_empty() {
        return Err("name: the approved template's name is empty".into());
    }
    if t.language.trim().is_empty() {
        return Err("language: the template's language is empty (`en`, `en_US`)".into());
    }
    let known = parameter_paths(event);
    let check = |what: String, p: &str| -> Result<(), String> {
        if known.contains(&p) {
            Ok(())
        } else {
            Err(format!(
                "{what}: {p:?} is not a value of {event} (one of: {})",
                known.join(", ")
            ))
        }
    };
    for (i, p) in t.parameters.iter().enumerate() {
        check(format!("parameters[{i}]"), p)?;
    }
    match &t.header {
        Some(HeaderMapping::Text { parameters }) => {
            if parameters.is_empty() {
                return Err("header: a text header needs its parameter (or no header)".into());
            }
            for (i, p) in parameters.iter().enumerate() {
                check(format!("header.parameters[{i}]"), p)?;
            }
        }
        Some(HeaderMapping::Document) if !event_carries_invoice(event) => {
            return Err(format!(
                "header: {event} has no invoice to send as the document header"
            ));
        }
        Some(HeaderMapping::Document) | None => {}
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, b) in t.buttons.iter().enumerate() {
        if b.index > 9 {
            return Err(format!(
                "buttons[{i}].index: {} is past the last button a template can have (0 to 9)",
                b.index
            ));
        }
        if !seen.insert(b.index) {
            return Err(format!(
                "buttons[{i}].index: button {} is given twice",
                b.index
            ));
        }
        check(format!("buttons[{i}].parameter"), &b.parameter)?;
    }
    Ok(())
}

/// A plugin channel's template as queued with its message: ready with its parameters, or
/// why it cannot be sent (stored as JSON in `notifications.template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuedTemplate {
    Ready {
        name: String,
        language: String,
        parameters: Vec<String>,
        /// Absent in messages queued before headers existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<QueuedHeader>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<QueuedButton>,
    },
    /// No template can go out for this message (none configured, a value missing).
    Unavailable { reason: String },
}

/// A queued template's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QueuedHeader {
    /// A text header with its rendered parameters.
    Text { parameters: Vec<String> },
    /// The message's invoice as a PDF, by a link made when the message is sent (so it is
    /// fresh however long the message waited).
    InvoiceDocument,
}

/// A queued template's button with its rendered parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct QueuedButton {
    pub index: u8,
    pub kind: ButtonKind,
    pub parameter: String,
}

/// The template of `event` with its parameters read from `context`; `has_invoice` says
/// whether the message carries an invoice (for a document header).
pub fn template_for(
    channel: &PluginChannel,
    event: &str,
    context: &Value,
    has_invoice: bool,
) -> QueuedTemplate {
    let Some(t) = channel.templates.get(event) else {
        return QueuedTemplate::Unavailable {
            reason: format!("no approved template is configured for {event}"),
        };
    };
    let value = |path: &str| -> Result<String, QueuedTemplate> {
        let value = path
            .split('.')
            .try_fold(context, |v, key| v.get(key))
            .filter(|v| !v.is_null());
        match value {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
            _ => Err(QueuedTemplate::Unavailable {
                reason: format!(
                    "the template {}'s parameter {path} has no value for this message",
                    t.name
                ),
            }),
        }
    };
    let render = || -> Result<QueuedTemplate, QueuedTemplate> {
        let parameters = t
            .parameters
            .iter()
            .map(|p| value(p))
            .collect::<Result<Vec<_>, _>>()?;
        let header = match &t.header {
            None => None,
            Some(HeaderMapping::Text { parameters }) => Some(QueuedHeader::Text {
                parameters: parameters
                    .iter()
                    .map(|p| value(p))
                    .collect::<Result<Vec<_>, _>>()?,
            }),
            Some(HeaderMapping::Document) if has_invoice => Some(QueuedHeader::InvoiceDocument),
            Some(HeaderMapping::Document) => {
                return Err(QueuedTemplate::Unavailable {
                    reason: format!(
                        "the template {}'s document header needs an invoice, and this message has none",
                        t.name
                    ),
                });
            }
        };
        let buttons = t
            .buttons
            .iter()
            .map(|b| {
                Ok(QueuedButton {
                    index: b.index,
                    kind: b.kind,
                    parameter: value(&b.parameter)?,
                })
            })
            .collect::<Result<Vec<_>, QueuedTemplate>>()?;
        Ok(QueuedTemplate::Ready {
            name: t.name.clone(),
            language: t.language.clone(),
            parameters,
            header,
            buttons,
        })
    };
    render().unwrap_or_else(|unavailable| unavailable)
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

/// What a client is told, typed: each notice names its template and carries exactly the
/// context its template reads (`invoice`, and `days`, `fee` or `service` where it says so;
/// [`queue`] adds `client` and `seller`).
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// An invoice was issued (`invoice_created`).
    InvoiceCreated(&'a InvoiceRecord),
    /// An invoice became paid (`payment_received`; `wallet_topup` for a top-up invoice).
    Paid(&'a InvoiceRecord),
    /// `days` before the due date (`payment_reminder`).
    PaymentReminder {
        invoice: &'a InvoiceRecord,
        days: u32,
    },
    /// `days` after the due date (`invoice_overdue`).
    Overdue {
        invoice: &'a InvoiceRecord,
        days: u32,
    },
    /// A late fee was added (`late_fee`); `invoice` is read after the fee.
    LateFee {
        invoice: &'a InvoiceRecord,
        fee: Money,
    },
    /// A service was suspended for `invoice` (`service_suspended`).
    ServiceSuspended {
        invoice: &'a InvoiceRecord,
        service: ServiceId,
        label: &'a str,
    },
    /// A service was terminated for `invoice` (`service_terminated`).
    ServiceTerminated {
        invoice: &'a InvoiceRecord,
        service: ServiceId,
        label: &'a str,
    },
    /// Paying `invoice` restored a service (`service_unsuspended`).
    ServiceUnsuspended {
        invoice: &'a InvoiceRecord,
        service: ServiceId,
        label: &'a str,
    },
}

/// The invoice part of a template's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceContext {
    pub id: InvoiceId,
    pub number: Option<String>,
    pub currency: &'static str,
    /// Plain amounts (`12.50`).
    pub total: String,
    pub balance: String,
    pub due_date: Option<NaiveDate>,
    pub status: InvoiceStatus,
}

impl InvoiceContext {
    pub fn of(inv: &InvoiceRecord) -> InvoiceContext {
        InvoiceContext {
            id: inv.id,
            number: inv.number.clone(),
            currency: inv.currency.code(),
            total: inv.total.plain_amount(),
            balance: inv.balance_due().plain_amount(),
            due_date: inv.due_date,
            status: inv.status,
        }
    }
}

/// The service part of a template's context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceContext {
    pub id: ServiceId,
    pub label: String,
}

/// A notice's context, as its template reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeContext {
    pub invoice: InvoiceContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// The fee formatted with its currency (`USD 5.00`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceContext>,
}

impl Notice<'_> {
    /// The template (event) name, one of [`EVENTS`].
    pub fn event(&self) -> &'static str {
        match self {
            Notice::InvoiceCreated(_) => "invoice_created",
            Notice::Paid(inv) if inv.kind == keel_domain::lifecycle::InvoiceKind::TopUp => {
                "wallet_topup"
            }
            Notice::Paid(_) => "payment_received",
            Notice::PaymentReminder { .. } => "payment_reminder",
            Notice::Overdue { .. } => "invoice_overdue",
            Notice::LateFee { .. } => "late_fee",
            Notice::ServiceSuspended { .. } => "service_suspended",
            Notice::ServiceTerminated { .. } => "service_terminated",
            Notice::ServiceUnsuspended { .. } => "service_unsuspended",
        }
    }

    pub fn invoice(&self) -> &InvoiceRecord {
        match self {
            Notice::InvoiceCreated(i) | Notice::Paid(i) => i,
            Notice::PaymentReminder { invoice, .. }
            | Notice::Overdue { invoice, .. }
            | Notice::LateFee { invoice, .. }
            | Notice::ServiceSuspended { invoice, .. }
            | Notice::ServiceTerminated { invoice, .. }
            | Notice::ServiceUnsuspended { invoice, .. } => invoice,
        }
    }

    /// Whether the message asks the client to pay: then it carries a pay link (`pay_url`)
    /// while the invoice has a balance to pay and a gateway is enabled.
    pub fn asks_for_payment(&self) -> bool {
        matches!(
            self,
            Notice::InvoiceCreated(_)
                | Notice::PaymentReminder { .. }
                | Notice::Overdue { .. }
                | Notice::LateFee { .. }
                | Notice::ServiceSuspended { .. }
        )
    }

    /// Whether the message carries the invoice's PDF: all but a restored service's.
    pub fn attaches_invoice(&self) -> bool {
        event_carries_invoice(self.event())
    }

    pub fn context(&self) -> NoticeContext {
        let mut c = NoticeContext {
            invoice: InvoiceContext::of(self.invoice()),
            days: None,
            fee: None,
            service: None,
        };
        match *self {
            Notice::InvoiceCreated(_) | Notice::Paid(_) => {}
            Notice::PaymentReminder { days, .. } | Notice::Overdue { days, .. } => {
                c.days = Some(days)
            }
            Notice::LateFee { fee, .. } => c.fee = Some(fee.format_amount()),
            Notice::ServiceSuspended { service, label, .. }
            | Notice::ServiceTerminated { service, label, .. }
            | Notice::ServiceUnsuspended { service, label, .. } => {
                c.service = Some(ServiceContext {
                    id: service,
                    label: label.to_string(),
                })
            }
        }
        c
    }
}

/// Queues `notice` for its invoice's client by email, once per `cause`, in the caller's
/// transaction. Returns the notification's id when it was new.
pub async fn queue(
    tx: &mut Tx,
    app: &App,
    notice: Notice<'_>,
    cause: &str,
) -> Result<Option<i64>, AppError> {
    let invoice = notice.invoice();
    let client = invoice.client_id;
    let event = notice.event();
    let mut context =
        serde_json::to_value(notice.context()).expect("a notice's context is a plain record");
    let pay_url = if notice.asks_for_payment()
        && !app.gateways.is_empty()
        && invoice.status.is_payable()
        && invoice.balance_due().is_positive()
    {
        Some(crate::pay_links::url_in(tx, app, invoice.id).await?)
    } else {
        None
    };
    let invoice = notice.attaches_invoice().then_some(invoice.id);
    let Some((email, language, first, last, company)) = store::recipient(tx, client).await? else {
        return Ok(None);
    };
    if let Some(map) = context.as_object_mut() {
        map.insert(
            "client".into(),
            json!({ "first_name": first, "last_name": last, "company": company, "email": email }),
        );
        map.insert("seller".into(), json!(app.billing.seller.name));
        if let Some(url) = pay_url {
            // The token alone, for a template's URL button ending in `/pay/{{1}}`.
            if let Some((_, token)) = url.rsplit_once("/pay/") {
                map.insert("pay_token".into(), json!(token));
            }
            map.insert("pay_url".into(), json!(url));
        }
    }
    let r = render(&app.notify, event, &language, &context)?;
    let (state, note) = if app.notify.smtp_url.is_none() {
        (
            NotificationState::Skipped,
            Some("email is not configured ([email] smtp_url)"),
        )
    } else if !store::channel_enabled(tx, client, EMAIL).await? {
        (
            NotificationState::Skipped,
            Some("the client turned email notifications off"),
        )
    } else {
        (NotificationState::Pending, None)
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
            template: None,
        },
        now,
    )
    .await?;
    if let Some(id) = id
        && state == NotificationState::Pending
    {
        enqueue_send(tx, id, now).await?;
    }
    for (channel, settings) in &app.notify.channels {
        queue_on_channel(
            tx,
            OnChannel {
                app,
                channel,
                settings,
                event,
                rendered: &r,
                context: &context,
                invoice,
                cause,
            },
            client,
        )
        .await?;
    }
    Ok(id)
}

async fn enqueue_send(tx: &mut Tx, id: i64, now: DateTime<Utc>) -> Result<(), AppError> {
    keel_store::jobs::enqueue(
        tx,
        &NewJob::new(SEND, json!({ "notification": id }), now)
            .unique(format!("notification:{id}"))
            .max_attempts(ATTEMPTS),
        now,
    )
    .await?;
    Ok(())
}

/// One message for a plugin channel.
struct OnChannel<'a> {
    app: &'a App,
    channel: &'a str,
    settings: &'a PluginChannel,
    event: &'a str,
    rendered: &'a Rendered,
    context: &'a Value,
    invoice: Option<InvoiceId>,
    cause: &'a str,
}

/// Queues the message on a plugin channel for a client who ever opted in to it: pending
/// while the opt-in stands and the channel is on, else skipped with the reason. A client
/// who never opted in gets no row: the channel is not theirs.
async fn queue_on_channel(
    tx: &mut Tx,
    m: OnChannel<'_>,
    client: keel_domain::ids::ClientId,
) -> Result<(), AppError> {
    let Some(consent) = store::consent(tx, client, m.channel).await? else {
        return Ok(());
    };
    let note = if let Some(at) = consent.opted_out_at {
        Some(format!(
            "the client opted out of {} on {} ({})",
            m.channel,
            at.format("%Y-%m-%d %H:%M UTC"),
            consent
                .opt_out_source
                .as_deref()
                .unwrap_or("no source recorded")
        ))
    } else if !store::channel_enabled(tx, client, m.channel).await? {
        Some(format!("the client turned {} notifications off", m.channel))
    } else {
        None
    };
    let template = serde_json::to_string(&template_for(
        m.settings,
        m.event,
        m.context,
        m.invoice.is_some(),
    ))
    .expect("a template is plain data");
    let state = if note.is_some() {
        NotificationState::Skipped
    } else {
        NotificationState::Pending
    };
    let now = m.app.now();
    let id = store::insert(
        tx,
        &NewNotification {
            client_id: client,
            event: m.event,
            channel: m.channel,
            recipient: &consent.address,
            language: &m.rendered.language,
            subject: &m.rendered.subject,
            body_text: &m.rendered.text,
            body_html: "",
            invoice_id: m.invoice,
            state,
            note: note.as_deref(),
            unique_key: m.cause,
            template: Some(&template),
        },
        now,
    )
    .await?;
    if let Some(id) = id
        && state == NotificationState::Pending
    {
        enqueue_send(tx, id, now).await?;
    }
    Ok(())
}

/// The job kind that queues the "invoice created" messages of invoices the billing run
/// issued (and "payment received" for those its wallet auto-apply paid).
pub const ISSUED: &str = "notification.issued";

/// The [`ISSUED`] job of a batch of invoices, to enqueue in the transaction that issued
/// them.
pub fn issued_job(invoices: &[InvoiceId], now: DateTime<Utc>) -> NewJob {
    let ids: Vec<i64> = invoices.iter().map(|i| i.get()).collect();
    NewJob::new(ISSUED, json!({ "invoices": ids }), now)
}
