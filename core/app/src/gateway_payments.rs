//! Payments through gateway plugins: the payment spine every gateway reuses.
//!
//! 1. [`start`]: a client (for its own invoice) or staff start a payment of an invoice's
//!    balance (a top-up invoice tops up the wallet). Keel records a pending attempt with its
//!    own reference first (so a crash after the provider took the money still leaves a row
//!    to settle against), then calls the plugin's `initiate` outside any database
//!    transaction and stores what it answered: the provider's reference, the payer's next
//!    action (a redirect or instructions), the plugin's opaque state (Paynow's poll URL).
//!    One attempt per (invoice, request key): a double-clicked pay button starts one payment.
//! 2. [`callback`]: `POST /hooks/gateway/{plugin}` hands the raw request to the plugin's
//!    `verify-callback`. A verified update is only a trigger: when the gateway can poll,
//!    Keel asks the provider again ([`confirm`]) and acts on that answer alone.
//! 3. [`apply`]: in one transaction, under the attempt's row lock and guarded by the state it
//!    was read in, a confirmed `paid` posts the entry (gateway clearing Dr / receivable Cr,
//!    or wallet Cr for a top-up; what exceeds the invoice's balance to the client's wallet),
//!    records the payment through [`settlement::record`] (which marks the invoice paid,
//!    lifts dunning's suspensions and queues the receipt, the webhook and the provisioning
//!    intent), and moves the attempt to `succeeded`. A second delivery finds it succeeded
//!    and changes nothing; `payments_reference_key` and the entry's key stand behind that.
//! 4. [`poll_due`] (job `payments.poll`, every five minutes): asks the gateways about
//!    pending attempts whose update never came and expires the stale ones, which releases
//!    dunning's hold. An expired attempt confirmed paid later is still recorded: money taken
//!    is never dropped.
//!
//! Contradictions (`paid` after `cancelled`, `cancelled` after `paid`, a refund of a payment
//! that never succeeded, an amount other than the one asked) change nothing: the attempt is
//! flagged for staff (`attention`) and the caller gets a 409 with a machine-readable code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::record;
use crate::billing::{Lookups, wallet_account};
use crate::crash_points::{self, Point};
use crate::ledger::{Amount, SystemAccount};
use crate::settlement::{self, Received};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::currency::Currency;
use keel_domain::ids::InvoiceId;
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::InvoiceKind;
use keel_domain::tenancy::Scope;
use keel_jobs::{Env, Handler, JobError};
use keel_plugin_host::gateway::{
    Gateway, NextAction, PaymentRef, PaymentRequest, PaymentStatus, PaymentUpdate,
};
use keel_plugin_host::{Contact, Features, PluginError, PluginFailure};
/// The raw provider request and the answer to it, as the API hands them over.
pub use keel_plugin_host::{InboundReply, InboundRequest};
use keel_store as store;
use keel_store::attempts::{self as attempts_store, ActionKind, AttemptRow, AttemptState};
use keel_store::dunning as dunning_store;
use keel_store::jobs::JobRecord;
use keel_store::ledger as ledger_store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// A pending attempt the gateway never answered is started again under its reference only
/// once this has passed since it was recorded (longer than a plugin call may take); before
/// that, a repeat of the request answers the attempt as it stands.
const REINITIATE_AFTER: chrono::Duration = chrono::Duration::seconds(120);
/// Most payments of one invoice a client or reseller may have waiting for confirmation at
/// once: a pay link's holder cannot open transactions at the provider without end.
pub const MAX_PENDING_ATTEMPTS: i64 = 5;
/// Only an invoice's first attempts hold its dunning (`payment_hold_hours`): starting a
/// payment every day does not put off a suspension for ever.
pub const HOLDING_ATTEMPTS: i64 = 3;

/// The job kind of the scheduled poll (`[schedules.payments_poll]`, every five minutes).
pub const POLL: &str = "payments.poll";

// ---------------------------------------------------------------------------------------
// The enabled gateways

/// One enabled gateway: its id (the plugin's), its name and what it can do.
#[derive(Clone)]
pub struct GatewayEntry {
    pub id: String,
    pub name: String,
    /// The plugin can `poll` (feature `polling`): callbacks are confirmed by asking back.
    pub polling: bool,
    pub handle: Arc<dyn Gateway>,
}

/// The gateways payments can use, by id.
#[derive(Clone, Default)]
pub struct Gateways {
    by_id: BTreeMap<String, GatewayEntry>,
}

impl Gateways {
    /// Adds a gateway (a loaded plugin's handle, or a native implementation).
    pub fn add(&mut self, id: &str, name: &str, features: Features, handle: Arc<dyn Gateway>) {
        self.by_id.insert(
            id.to_owned(),
            GatewayEntry {
                id: id.to_owned(),
                name: name.to_owned(),
                polling: features.contains(Features::POLLING),
                handle,
            },
        );
    }

    /// Every loaded plugin of the gateway kind.
    pub fn from_plugins(plugins: &[keel_plugin_host::Plugin]) -> Gateways {
        let mut all = Gateways::default();
        for p in plugins {
            if let Some(handle) = p.gateway() {
                let features = p.info().map_or(Features::empty(), |i| i.features);
                all.add(p.id(), &p.manifest().name, features, Arc::new(handle));
            }
        }
        all
    }

    pub fn get(&self, id: &str) -> Option<&GatewayEntry> {
        self.by_id.get(id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.by_id.keys().map(String::as_str).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn require(&self, id: &str) -> Result<&GatewayEntry, AppError> {
        self.get(id).ok_or_else(|| {
            AppError::invalid(
                "unknown_gateway",
                Some("gateway"),
                format!(
                    "no gateway `{id}` is enabled (enabled: {})",
                    if self.is_empty() {
                        "none".to_owned()
                    } else {
                        self.ids().join(", ")
                    }
                ),
            )
        })
    }
}

/// How payments through gateways behave (`[payments]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The address providers and payers reach Keel at (`[server] public_url`): callback and
    /// return URLs are built on it.
    pub public_url: String,
    /// A pending attempt is first polled this long after it started.
    pub poll_after: Duration,
    /// A pending attempt is given up (`expired`) this long after it started.
    pub expire_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:8080".to_owned(),
            poll_after: Duration::from_secs(120),
            expire_after: Duration::from_secs(24 * 3600),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Views

/// What the payer must do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionView {
    /// Send the payer's browser here.
    Redirect { url: String },
    /// Show the payer these instructions ("approve on your phone").
    Instructions { text: String },
    /// Nothing to do.
    None,
}

/// A payment attempt as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: i64,
    pub invoice_id: i64,
    pub gateway: String,
    /// Keel's reference, sent to the provider.
    pub reference: String,
    /// `pending`, `succeeded`, `failed`, `cancelled`, `expired`, `refunded`, `disputed`.
    #[schema(value_type = String)]
    pub state: AttemptState,
    pub amount: Amount,
    pub method: Option<String>,
    pub provider_reference: Option<String>,
    /// The provider's own status word, as it last said it.
    pub provider_status: Option<String>,
    pub action: Option<ActionView>,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// Why staff should look at it (a contradiction, an overpayment), when they should.
    pub attention: Option<String>,
    /// Dunning's suspension and termination wait until then while it is pending.
    pub hold_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl AttemptView {
    pub(crate) fn of(row: AttemptRow) -> Result<AttemptView, AppError> {
        let currency = Currency::from_code(&row.currency).map_err(|_| {
            AppError::internal(store::StoreError::Corrupt(format!(
                "payment attempt {} has currency {:?}",
                row.id, row.currency
            )))
        })?;
        let action = match (
            row.action_kind.as_deref().and_then(ActionKind::parse),
            row.action_text,
        ) {
            (Some(ActionKind::Redirect), Some(url)) => Some(ActionView::Redirect { url }),
            (Some(ActionKind::Instructions), Some(text)) => Some(ActionView::Instructions { text }),
            (Some(ActionKind::None), _) => Some(ActionView::None),
            _ => None,
        };
        Ok(AttemptView {
            id: row.id,
            invoice_id: row.invoice_id,
            gateway: row.gateway,
            reference: row.reference,
            state: row.state,
            amount: Amount::from(Money::new(row.amount_minor, currency)),
            method: row.method,
            provider_reference: row.provider_reference,
            provider_status: row.provider_status,
            action,
            failure: row.failure,
            attention: row.attention,
            hold_until: row.hold_until,
            created_at: row.created_at,
            resolved_at: row.resolved_at,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Starting a payment

/// A payment to start.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// The gateway plugin's id (`paynow`).
    #[schema(schema_with = gateway_schema)]
    pub gateway: String,
    /// A method the gateway offers (`ecocash`, `onemoney`, `innbucks`, …); none for its
    /// default (Paynow: web checkout).
    #[schema(schema_with = method_schema)]
    pub method: Option<String>,
    /// The payer's mobile-money number, for methods that need one; default the client's.
    #[schema(schema_with = phone_schema)]
    pub phone: Option<String>,
}

/// A plugin id: lower-case letters, digits and dashes, starting with a letter.
pub const GATEWAY_PATTERN: &str = "^[a-z][a-z0-9-]{0,62}$";
/// A method word: letters, digits and `_.:{}-` (Paynow's card methods carry a token,
/// `vmc:{1111…}`).
pub const METHOD_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.:{}-]{0,99}$";
/// A payer's number: digits with an optional leading `+` (spaces and dashes are also taken).
pub const PHONE_PATTERN: &str = "^[+]?[0-9]{6,16}$";

/// The OpenAPI schema of a gateway id (also the hook's path parameter).
pub fn gateway_schema() -> utoipa::openapi::Object {
    crate::schema::string(GATEWAY_PATTERN, Some(63), "An enabled gateway plugin's id")
}

fn method_schema() -> utoipa::openapi::Object {
    crate::schema::string(METHOD_PATTERN, Some(100), "A method the gateway offers")
}

fn phone_schema() -> utoipa::openapi::Object {
    crate::schema::string(PHONE_PATTERN, Some(17), "The payer's mobile-money number")
}

fn matches(pattern: &str, text: &str) -> bool {
    // The patterns are a character class with a length, checked by hand; `api/tests/contract.rs`
    // draws strings from the document's pattern and fails if one is refused here.
    match pattern {
        GATEWAY_PATTERN => {
            (1..=63).contains(&text.len())
                && text.starts_with(|c: char| c.is_ascii_lowercase())
                && text
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        }
        METHOD_PATTERN => {
            (1..=100).contains(&text.len())
                && text.starts_with(|c: char| c.is_ascii_alphanumeric())
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:{}-".contains(&b))
        }
        _ => false,
    }
}

/// Starts a payment of `invoice`'s balance at a gateway. With `request_key` (the pay page's
/// form token, the API's `Idempotency-Key`) a repeat returns the same attempt instead of
/// starting another.
pub async fn start(
    app: &App,
    ctx: &Ctx,
    invoice: InvoiceId,
    input: &StartInput,
    request_key: Option<&str>,
) -> Result<AttemptView, AppError> {
    if !ctx.actor.can(Permission::BillingWrite) {
        ctx.require(Permission::Order)?;
    }
    let gateway_id = input.gateway.trim();
    if !matches(GATEWAY_PATTERN, gateway_id) {
        return Err(AppError::invalid(
            "invalid_gateway",
            Some("gateway"),
            "a gateway is named by its plugin id: lower-case letters, digits and dashes",
        ));
    }
    let gateway = app.gateways.require(gateway_id)?.clone();
    let method = input
        .method
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    if let Some(m) = method
        && !matches(METHOD_PATTERN, m)
    {
        return Err(AppError::invalid(
            "invalid_method",
            Some("method"),
            "a method is one word of letters, digits and _.:{}- (like ecocash)",
        ));
    }
    let phone = match input
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(p) => Some(payer_phone(p)?),
        None => None,
    };
    let policies = crate::dunning::Policies::load(app).await?;
    let services = dunning_store::billed_services(&app.db, invoice.get(), invoice.get()).await?;
    let request_key = request_key.map(|k| crate::invoices::entry_key(ctx, "pay", k));
    let request_key = request_key.as_deref();
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), invoice)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if let Some(k) = request_key
        && let Some(existing) = attempts_store::by_request_key(&mut tx, inv.id, k).await?
    {
        drop(tx);
        if existing.state == AttemptState::Pending
            && existing.provider_reference.is_none()
            && app.now() - existing.created_at > REINITIATE_AFTER
        {
            // The first call recorded the attempt and stopped before the gateway answered
            // (a crash, a timeout): ask again under the same reference. Not sooner than
            // REINITIATE_AFTER, so a second click while the first call is still waiting for
            // the provider does not open a second transaction there.
            return initiate(app, &gateway, existing, inv.client_id, phone).await;
        }
        return AttemptView::of(existing);
    }
    if !inv.status.is_payable() || !inv.balance_due().is_positive() {
        return Err(AppError::conflict(
            "invoice_not_payable",
            format!(
                "invoice {} is {} and takes no payments",
                inv.display(),
                inv.status
            ),
        ));
    }
    let (started, pending) = attempts_store::counts(&mut tx, inv.id).await?;
    if pending >= MAX_PENDING_ATTEMPTS && !ctx.actor.can(Permission::BillingWrite) {
        return Err(AppError::conflict(
            "too_many_pending_payments",
            format!(
                "invoice {} has {pending} payments waiting for confirmation; finish one, or wait \
                 until they settle or expire, before starting another",
                inv.display()
            ),
        ));
    }
    let client_policy =
        dunning_store::assigned_policy(&app.db, dunning_store::Target::Client(inv.client_id))
            .await?;
    let policy = policies.of_invoice(client_policy, &services);
    let now = app.now();
    let hold_until = if started < HOLDING_ATTEMPTS {
        now + chrono::Duration::hours(i64::from(policy.payment_hold_hours))
    } else {
        now
    };
    let reference = new_reference(&inv);
    let due = inv.balance_due();
    let id = attempts_store::insert(
        &mut tx,
        &attempts_store::NewAttempt {
            invoice: inv.id,
            gateway: &gateway.id,
            reference: &reference,
            amount_minor: due.minor(),
            currency: due.currency().code(),
            method,
            request_key,
            hold_until,
        },
        now,
    )
    .await?
    .ok_or_else(|| {
        AppError::conflict(
            "payment_in_progress",
            "this payment was started already; read the invoice's attempts",
        )
    })?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.payment_started",
        "invoice",
        inv.id,
        json!({ "gateway": gateway.id, "reference": reference, "amount": Amount::from(due), "method": method }),
    )
    .await?;
    tx.commit().await?;
    let row = attempts_store::by_id(&app.db, id)
        .await?
        .ok_or(AppError::NotFound {
            what: "payment attempt",
        })?;
    initiate(app, &gateway, row, inv.client_id, phone).await
}

/// A mobile-money number as the payer typed it, in the gateway's local form (`0771234567`)
/// or international (`+263 77 123 4567`): digits with an optional leading `+`, spaces and
/// dashes dropped, 6 to 16 digits. The gateway plugin knows its provider's format.
fn payer_phone(text: &str) -> Result<String, AppError> {
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if (6..=16).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(compact)
    } else {
        Err(AppError::invalid(
            "invalid_phone",
            Some("phone"),
            format!(
                "{text:?} is not a phone number: digits only, like 0771234567 or +263771234567"
            ),
        ))
    }
}

/// `2026-000123-7K3QXZ`: the invoice's number and six random characters, at most 32 (what
/// Paynow's `merchanttrace` takes).
fn new_reference(inv: &store::invoices::InvoiceRecord) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let head = inv
        .number
        .clone()
        .unwrap_or_else(|| format!("INV{}", inv.id));
    let head: String = head
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(25)
        .collect();
    format!("{head}-{tail}")
}

/// Calls the plugin's `initiate` for a recorded attempt (outside any transaction) and stores
/// its answer. A refusal fails the attempt and says why; an unknown outcome (the plugin
/// timed out, crashed, the provider was unreachable) leaves it pending for the poll.
async fn initiate(
    app: &App,
    gateway: &GatewayEntry,
    row: AttemptRow,
    client: keel_domain::ids::ClientId,
    phone: Option<String>,
) -> Result<AttemptView, AppError> {
    let c = store::clients::get_client(&app.db, Scope::Host, client)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let inv = store::invoices::get_invoice(&app.db, Scope::Host, InvoiceId(row.invoice_id))
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let base = app.payments.public_url.trim_end_matches('/');
    let req = PaymentRequest {
        reference: row.reference.clone(),
        invoice_id: inv.display(),
        amount: keel_plugin_host::Money {
            minor: row.amount_minor,
            currency: row.currency.clone(),
        },
        description: match inv.kind {
            InvoiceKind::TopUp => format!("Wallet top-up {}", inv.display()),
            InvoiceKind::Standard => format!("Invoice {}", inv.display()),
        },
        payer: Contact {
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            company: c.company_name.clone(),
            email: c.email.to_string(),
            phone: phone.or_else(|| c.phone.as_ref().map(ToString::to_string)),
            address: None,
        },
        return_url: format!("{base}/pay/return/{}", row.reference),
        callback_url: format!("{base}/hooks/gateway/{}", gateway.id),
        method: row.method.clone(),
    };
    let answer = gateway.handle.initiate(req).await;
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let outcome = match answer {
        Ok(started) => {
            let (kind, text) = match &started.action {
                NextAction::Redirect(url) => (ActionKind::Redirect, Some(url.as_str())),
                NextAction::Instructions(t) => (ActionKind::Instructions, Some(t.as_str())),
                NextAction::None => (ActionKind::None, None),
            };
            attempts_store::started(
                &mut tx,
                row.id,
                &attempts_store::Started {
                    provider_reference: &started.provider_reference,
                    action_kind: kind,
                    action_text: text,
                    plugin_state: started.state.as_deref(),
                },
                now,
            )
            .await?;
            tx.commit().await?;
            if started.status != PaymentStatus::Pending {
                // Settled at once (a wallet-like gateway): the same path as a callback.
                let update = PaymentUpdate {
                    reference: row.reference.clone(),
                    provider_reference: started.provider_reference.clone(),
                    status: started.status,
                    amount: None,
                    provider_status: format!("{:?}", started.status).to_lowercase(),
                };
                apply(app, &gateway.id, &update).await?;
            }
            Ok(())
        }
        Err(PluginFailure::Plugin(
            e @ (PluginError::Refused(_) | PluginError::InvalidInput(_)),
        )) => {
            let (code, message) = match e {
                PluginError::Refused(m) => ("payment_refused", m),
                PluginError::InvalidInput(m) => ("payment_invalid", m),
                _ => unreachable!(),
            };
            attempts_store::transition(
                &mut tx,
                row.id,
                AttemptState::Pending,
                AttemptState::Failed,
                None,
                Some(&message),
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            Err(AppError::invalid(
                code,
                None,
                format!("{}: {message}", gateway.name),
            ))
        }
        Err(PluginFailure::Plugin(PluginError::Misconfigured(m))) => {
            tracing::error!(gateway = %gateway.id, reference = %row.reference, "gateway misconfigured: {m}");
            attempts_store::transition(
                &mut tx,
                row.id,
                AttemptState::Pending,
                AttemptState::Failed,
                None,
                Some(&format!("the gateway is misconfigured: {m}")),
                None,
                now,
            )
            .await?;
            tx.commit().await?;
            Err(AppError::Unavailable {
                code: "gateway_misconfigured",
                message: format!(
                    "{} is not set up correctly; the host has been told. Try another way to pay.",
                    gateway.name
                ),
                retry_after: None,
            })
        }
        Err(failure) => {
            drop(tx);
            tracing::warn!(gateway = %gateway.id, reference = %row.reference, "gateway initiate failed: {failure}");
            Err(unavailable(&gateway.name, &failure))
        }
    };
    outcome?;
    let row = attempts_store::by_id(&app.db, row.id)
        .await?
        .ok_or(AppError::NotFound {
            what: "payment attempt",
        })?;
    AttemptView::of(row)
}

/// A gateway that did not answer: the attempt stays as it is, the caller may try later.
fn unavailable(name: &str, failure: &PluginFailure) -> AppError {
    let retry_after = match failure {
        PluginFailure::Plugin(PluginError::Unavailable(hint)) => hint.retry_after_seconds,
        _ => None,
    };
    AppError::Unavailable {
        code: "gateway_unavailable",
        message: format!(
            "{name} did not answer ({}); try again shortly",
            failure.label()
        ),
        retry_after,
    }
}

/// The attempts of an invoice the actor sees, newest first.
pub async fn attempts(
    app: &App,
    ctx: &Ctx,
    invoice: InvoiceId,
) -> Result<Vec<AttemptView>, AppError> {
    ctx.require(Permission::BillingRead)?;
    store::invoices::get_invoice(&app.db, ctx.actor.scope(), invoice)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    attempts_store::of_invoice(&app.db, invoice)
        .await?
        .into_iter()
        .map(AttemptView::of)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Callbacks and confirmation

/// What a handled callback answers the provider, and the payment it was about.
#[derive(Debug, Clone)]
pub struct Handled {
    pub reply: InboundReply,
    /// Keel's reference of the payment.
    pub reference: String,
}

/// A provider's request to `POST /hooks/gateway/{gateway}`: verified by the plugin, confirmed
/// by polling when the gateway can, applied once. Returns what to answer the provider.
pub async fn callback(app: &App, gateway: &str, req: InboundRequest) -> Result<Handled, AppError> {
    let entry = app
        .gateways
        .get(gateway)
        .ok_or(AppError::NotFound { what: "gateway" })?
        .clone();
    let verified = match entry.handle.verify_callback(req).await {
        Ok(v) => v,
        Err(PluginFailure::Plugin(PluginError::Refused(m) | PluginError::InvalidInput(m))) => {
            tracing::warn!(gateway, "callback refused: {m}");
            return Err(AppError::invalid("callback_refused", None, m));
        }
        Err(failure) => {
            tracing::warn!(gateway, "callback not verified: {failure}");
            return Err(unavailable(&entry.name, &failure));
        }
    };
    let row = attempts_store::get(&app.db, gateway, &verified.update.reference)
        .await?
        .ok_or_else(|| {
            tracing::warn!(gateway, reference = %verified.update.reference, "callback for an unknown payment");
            AppError::invalid(
                "unknown_payment",
                None,
                format!("no payment with reference {:?} was started here", verified.update.reference),
            )
        })?;
    crash_points::reached(Point::AfterVerify, &row.reference).await;
    let update = confirm(&entry, &row, verified.update).await?;
    crash_points::reached(Point::AfterPoll, &row.reference).await;
    apply(app, gateway, &update).await?;
    crash_points::reached(Point::AfterCommit, &row.reference).await;
    Ok(Handled {
        reply: verified.reply,
        reference: row.reference,
    })
}

/// What Keel acts on: when the gateway can poll, the provider's answer to a poll of the
/// attempt (a callback is only a trigger), else the verified update itself.
async fn confirm(
    entry: &GatewayEntry,
    row: &AttemptRow,
    update: PaymentUpdate,
) -> Result<PaymentUpdate, AppError> {
    if !entry.polling {
        return match nonsense(&update) {
            None => Ok(update),
            Some(why) => Err(garbled(entry, &row.reference, why)),
        };
    }
    let polled = entry
        .handle
        .poll(PaymentRef {
            reference: row.reference.clone(),
            provider_reference: row
                .provider_reference
                .clone()
                .unwrap_or(update.provider_reference),
            state: row.plugin_state.clone(),
        })
        .await;
    match polled {
        Ok(p) if p.reference == row.reference => match nonsense(&p) {
            None => Ok(p),
            Some(why) => Err(garbled(entry, &row.reference, why)),
        },
        Ok(_) => Err(garbled(
            entry,
            &row.reference,
            "the confirmation is about another payment",
        )),
        Err(PluginFailure::Plugin(PluginError::Refused(m) | PluginError::InvalidInput(m))) => {
            tracing::warn!(gateway = %entry.id, reference = %row.reference, "confirmation refused: {m}");
            Err(AppError::invalid("callback_refused", None, m))
        }
        Err(failure) => Err(unavailable(&entry.name, &failure)),
    }
}

/// Why an update is not one a working gateway could give (a non-positive amount, a currency
/// that is no ISO code, a status word or provider reference no provider writes), if it is not.
/// Such an answer is the gateway failing, not the provider contradicting itself: nothing is
/// applied or flagged, and the provider (answered 503) and the scheduled poll try again.
fn nonsense(update: &PaymentUpdate) -> Option<&'static str> {
    let word_ok = |w: &str, max: usize| w.len() <= max && !w.chars().any(char::is_control);
    if let Some(amount) = &update.amount {
        if amount.minor <= 0 {
            return Some("an amount that is not positive");
        }
        if amount.currency.len() != 3 || !amount.currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Some("an amount in no currency");
        }
    }
    if !word_ok(&update.provider_status, 64) {
        return Some("a status word no provider writes");
    }
    if !word_ok(&update.provider_reference, 255) {
        return Some("a provider reference no provider writes");
    }
    None
}

/// The gateway answered nonsense: logged, answered as unavailable (503), nothing changed.
fn garbled(entry: &GatewayEntry, reference: &str, why: &str) -> AppError {
    tracing::warn!(gateway = %entry.id, %reference, "the gateway answered nonsense: {why}");
    AppError::Unavailable {
        code: "gateway_unavailable",
        message: format!(
            "{} answered nonsense ({why}); try again shortly",
            entry.name
        ),
        retry_after: None,
    }
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The attempt moved to this state.
    Moved(AttemptState),
    /// Nothing to do: the attempt already said so (a duplicate), or it is still pending.
    Unchanged,
}

/// Applies a confirmed update to its attempt, once, in one transaction.
pub async fn apply(app: &App, gateway: &str, update: &PaymentUpdate) -> Result<Applied, AppError> {
    let ctx = Ctx::system(&format!("gateway {gateway}"));
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let row = attempts_store::for_update(&mut tx, gateway, &update.reference)
        .await?
        .ok_or(AppError::NotFound {
            what: "payment attempt",
        })?;
    let word = Some(update.provider_status.as_str()).filter(|w| !w.is_empty());
    use AttemptState as S;
    use PaymentStatus as P;
    let state_conflict = |why: String| Err(("payment_state_conflict", why));
    let result: Result<Applied, (&'static str, String)> = match (row.state, update.status) {
        (S::Pending | S::Expired, P::Paid) => {
            if let Some(amount) = &update.amount
                && (amount.minor != row.amount_minor
                    || !amount.currency.eq_ignore_ascii_case(&row.currency))
            {
                Err((
                    "amount_mismatch",
                    format!(
                        "the provider reports {} {} paid, but {} {} was asked",
                        amount.minor, amount.currency, row.amount_minor, row.currency
                    ),
                ))
            } else {
                let payment = settle(&mut tx, app, &ctx, &row, update).await?;
                attempts_store::transition(
                    &mut tx,
                    row.id,
                    row.state,
                    S::Succeeded,
                    word,
                    None,
                    payment,
                    now,
                )
                .await?;
                crash_points::reached(Point::InApply, &row.reference).await;
                Ok(Applied::Moved(S::Succeeded))
            }
        }
        (S::Pending | S::Expired, P::Failed | P::Cancelled) => {
            let to = if update.status == P::Failed {
                S::Failed
            } else {
                S::Cancelled
            };
            attempts_store::transition(&mut tx, row.id, row.state, to, word, word, None, now)
                .await?;
            Ok(Applied::Moved(to))
        }
        (S::Pending, P::Pending) => {
            attempts_store::polled(&mut tx, row.id, word, now).await?;
            Ok(Applied::Unchanged)
        }
        (S::Succeeded, P::Refunded | P::Disputed) => {
            let to = if update.status == P::Refunded {
                S::Refunded
            } else {
                S::Disputed
            };
            match unsettle(&mut tx, app, &ctx, &row, update).await? {
                Ok(done) => {
                    attempts_store::transition(
                        &mut tx, row.id, row.state, to, word, None, None, now,
                    )
                    .await?;
                    attempts_store::flag(&mut tx, row.id, &done, now).await?;
                    Ok(Applied::Moved(to))
                }
                Err(why) => Err(("payment_reversal_refused", why)),
            }
        }
        // A dispute the provider settled by refunding: the money was reversed already.
        (S::Disputed, P::Refunded) => {
            attempts_store::transition(
                &mut tx,
                row.id,
                row.state,
                S::Refunded,
                word,
                None,
                None,
                now,
            )
            .await?;
            Ok(Applied::Moved(S::Refunded))
        }
        (S::Succeeded, P::Paid)
        | (S::Failed | S::Cancelled, P::Failed | P::Cancelled)
        | (S::Expired, P::Pending)
        | (S::Refunded, P::Refunded | P::Disputed)
        | (S::Disputed, P::Disputed) => Ok(Applied::Unchanged),
        (S::Refunded | S::Disputed, P::Paid) => state_conflict(format!(
            "the provider says paid again, but it said {} before and the payment was reversed: \
             if the money came back, record it by hand",
            row.state
        )),
        (S::Failed | S::Cancelled, P::Paid) => state_conflict(format!(
            "the provider now says paid, but it said {} before",
            row.state
        )),
        (S::Succeeded, P::Failed | P::Cancelled | P::Pending) => state_conflict(format!(
            "the provider now says {}, but the payment was confirmed paid before",
            update.provider_status
        )),
        (state, status) => state_conflict(format!(
            "the provider says {} ({status:?}) for a payment that is {state}",
            update.provider_status
        )),
    };
    match result {
        Ok(applied) => {
            tx.commit().await?;
            if applied != Applied::Unchanged {
                tracing::info!(gateway, reference = %row.reference, ?applied, "payment attempt updated");
            }
            Ok(applied)
        }
        Err((code, why)) => {
            // The contradiction is kept for staff; nothing else changes.
            attempts_store::flag(&mut tx, row.id, &why, now).await?;
            tx.commit().await?;
            tracing::warn!(gateway, reference = %row.reference, "payment update refused: {why}");
            Err(AppError::conflict(code, why))
        }
    }
}

/// Records a confirmed payment: the entry (clearing Dr; receivable Cr, or wallet Cr for a
/// top-up, up to the invoice's balance; the rest wallet Cr), the payment through
/// [`settlement::record`], the audit. Returns the payment's id (none when it all went to
/// the wallet).
async fn settle(
    tx: &mut keel_store::Tx,
    app: &App,
    ctx: &Ctx,
    row: &AttemptRow,
    update: &PaymentUpdate,
) -> Result<Option<i64>, AppError> {
    let now = app.now();
    let inv = store::invoices::invoice_for_update(tx, Scope::Host, InvoiceId(row.invoice_id))
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let amount = Money::new(row.amount_minor, inv.currency);
    if row.currency != inv.currency.code() {
        return Err(AppError::conflict(
            "amount_mismatch",
            format!(
                "the attempt is in {} but the invoice in {}",
                row.currency, inv.currency
            ),
        ));
    }
    let provider_ref = if update.provider_reference.is_empty() {
        row.reference.clone()
    } else {
        update.provider_reference.clone()
    };
    let applied = if inv.status.is_payable() {
        amount.minor().min(inv.balance_due().minor()).max(0)
    } else {
        0
    };
    let excess = amount.minor() - applied;
    let mut lookups = Lookups::default();
    let clearing = lookups
        .account(tx, app, SystemAccount::Clearing, inv.currency)
        .await?;
    let mut entry = EntryBuilder::new(
        format!("gateway:{}:{}", row.gateway, row.reference),
        format!(
            "Payment {provider_ref} ({}) of invoice {}",
            row.gateway,
            inv.display()
        ),
    )
    .debit(clearing, amount);
    if applied > 0 {
        let to = match inv.kind {
            InvoiceKind::TopUp => wallet_account(tx, app, inv.client_id, inv.currency).await?,
            InvoiceKind::Standard => {
                lookups
                    .account(tx, app, SystemAccount::Receivable, inv.currency)
                    .await?
            }
        };
        entry = entry.credit(to, Money::new(applied, inv.currency));
    }
    if excess > 0 {
        let wallet = wallet_account(tx, app, inv.client_id, inv.currency).await?;
        entry = entry.credit(wallet, Money::new(excess, inv.currency));
    }
    let posted = ledger_store::post(tx, &entry.build()?, now).await?;
    let method = row.gateway.as_str();
    if applied > 0 {
        settlement::record(
            tx,
            app,
            ctx,
            &inv,
            Received {
                method,
                reference: &provider_ref,
                amount: Money::new(applied, inv.currency),
                entry_id: posted.entry.id,
                note: None,
                received_on: app.today(),
            },
        )
        .await?;
    }
    if excess > 0 {
        let why = format!(
            "{} more than invoice {} had due ({}) was credited to the client's wallet",
            Money::new(excess, inv.currency).format_amount(),
            inv.display(),
            inv.status
        );
        attempts_store::flag(tx, row.id, &why, now).await?;
    }
    record(
        tx,
        app,
        ctx,
        "invoice.gateway_payment",
        "invoice",
        inv.id,
        json!({
            "gateway": row.gateway,
            "reference": row.reference,
            "provider_reference": provider_ref,
            "amount": Amount::from(amount),
            "to_wallet": Amount::from(Money::new(excess, inv.currency)),
        }),
    )
    .await?;
    if applied > 0 {
        Ok(
            store::payments::payment_by_reference(tx, method, &provider_ref)
                .await?
                .map(|p| p.id.get()),
        )
    } else {
        Ok(None)
    }
}

/// Reverses a confirmed payment the provider now reports refunded or disputed, in the
/// caller's transaction (the attempt locked): the reversal of the payment's own entry
/// (`gateway-reversal:{plugin}:{reference}`: clearing Cr; receivable Dr, or wallet Dr for
/// what went to the wallet), the payment taken back off its invoice, which is open again
/// ([`settlement::reversed`]), and the audit. Returns what was done, for staff (the
/// caller flags the attempt with it); or, as `Err`, why it could not be done with nothing
/// changed: the client's wallet no longer holds what the payment put there.
async fn unsettle(
    tx: &mut keel_store::Tx,
    app: &App,
    ctx: &Ctx,
    row: &AttemptRow,
    update: &PaymentUpdate,
) -> Result<Result<String, String>, AppError> {
    let now = app.now();
    let inv = store::invoices::invoice_for_update(tx, Scope::Host, InvoiceId(row.invoice_id))
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let paid_key = format!("gateway:{}:{}", row.gateway, row.reference);
    let original = ledger_store::entry_by_key(tx, &paid_key)
        .await?
        .ok_or_else(|| {
            AppError::from(keel_store::StoreError::Corrupt(format!(
                "payment attempt {} succeeded without its entry {paid_key}",
                row.reference
            )))
        })?;
    let word = if update.provider_status.is_empty() {
        format!("{:?}", update.status)
    } else {
        update.provider_status.clone()
    };
    let amount = Money::new(row.amount_minor, inv.currency);
    let reason = format!(
        "the provider reports payment {} ({}) {word}",
        row.reference, row.gateway
    );
    let reversal = match ledger_store::reverse(
        tx,
        original.id,
        &format!("gateway-reversal:{}:{}", row.gateway, row.reference),
        &reason,
        now,
    )
    .await
    {
        Ok(posted) => posted.entry.id,
        Err(keel_store::StoreError::Ledger(
            keel_domain::ledger::LedgerError::InsufficientFunds {
                available,
                requested,
                ..
            },
        )) => {
            return Ok(Err(format!(
                "the provider reports payment {} of invoice {} {word}, but it cannot be reversed: \
                 the client's wallet holds {} of the {} the payment put there; settle it by hand",
                row.reference,
                inv.display(),
                available.format_amount(),
                requested.format_amount(),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut reopened = None;
    if let Some(payment_id) = row.payment_id {
        let payment = store::payments::invoice_payments_tx(tx, inv.id)
            .await?
            .into_iter()
            .find(|p| p.id.get() == payment_id)
            .ok_or_else(|| {
                AppError::from(keel_store::StoreError::Corrupt(format!(
                    "payment attempt {} names payment {payment_id}, which invoice {} does not hold",
                    row.reference,
                    inv.display()
                )))
            })?;
        reopened =
            Some(settlement::reversed(tx, app, &inv, &payment, reversal, &word, &reason).await?);
    }
    record(
        tx,
        app,
        ctx,
        "invoice.gateway_payment_reversed",
        "invoice",
        inv.id,
        json!({
            "gateway": row.gateway,
            "reference": row.reference,
            "provider_status": word,
            "amount": Amount::from(amount),
            "reversal_entry_id": reversal,
        }),
    )
    .await?;
    let done = match reopened {
        Some(now) => format!(
            "the provider reports the payment {word}: {} reversed, invoice {} open again with {} due; \
             decide what happens to what it paid for",
            amount.format_amount(),
            inv.display(),
            now.balance_due().format_amount()
        ),
        None => format!(
            "the provider reports the payment {word}: {} reversed from the client's wallet",
            amount.format_amount()
        ),
    };
    tracing::warn!(gateway = %row.gateway, reference = %row.reference, "{done}");
    Ok(Ok(done))
}

// ---------------------------------------------------------------------------------------
// The scheduled poll

/// What a poll round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    pub polled: u32,
    pub settled: u32,
    pub expired: u32,
    pub unavailable: u32,
}

/// Asks the gateways about pending attempts older than `poll_after` (not asked within it),
/// applies what they confirm, and expires those older than `expire_after`.
pub async fn poll_due(app: &App, ctx: &Ctx) -> Result<PollReport, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let now = app.now();
    let settings = &app.payments;
    let poll_after = chrono::Duration::from_std(settings.poll_after).unwrap_or_default();
    let expire_after = chrono::Duration::from_std(settings.expire_after).unwrap_or_default();
    let mut report = PollReport::default();
    for row in attempts_store::pending(&app.db, now - poll_after, now - poll_after, 500).await? {
        if app.gateways.get(&row.gateway).is_some_and(|g| g.polling) {
            report.polled += 1;
            match ask(app, &row).await? {
                Asked::Settled => {
                    report.settled += 1;
                    continue;
                }
                Asked::Pending => {}
                Asked::Unavailable => report.unavailable += 1,
            }
        }
        if row.created_at + expire_after <= now {
            let mut tx = app.db.begin().await?;
            if attempts_store::transition(
                &mut tx,
                row.id,
                AttemptState::Pending,
                AttemptState::Expired,
                None,
                Some("no confirmation came in time"),
                None,
                now,
            )
            .await?
            {
                report.expired += 1;
            }
            tx.commit().await?;
        }
    }
    Ok(report)
}

/// What asking the gateway about one pending attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// The gateway confirmed an outcome and the attempt moved.
    Settled,
    /// Still pending (or the answer could not be applied; logged).
    Pending,
    /// The gateway did not answer; recorded as asked.
    Unavailable,
}

/// Asks `row`'s gateway where the attempt stands and applies a confirmed answer. The caller
/// checked that the gateway polls.
pub(crate) async fn ask(app: &App, row: &attempts_store::AttemptRow) -> Result<Asked, AppError> {
    let Some(entry) = app.gateways.get(&row.gateway) else {
        return Ok(Asked::Unavailable);
    };
    let asked = entry
        .handle
        .poll(PaymentRef {
            reference: row.reference.clone(),
            provider_reference: row.provider_reference.clone().unwrap_or_default(),
            state: row.plugin_state.clone(),
        })
        .await;
    match asked {
        Ok(update) if update.reference == row.reference && nonsense(&update).is_none() => {
            match apply(app, &row.gateway, &update).await {
                Ok(Applied::Moved(_)) => return Ok(Asked::Settled),
                Ok(Applied::Unchanged) => {}
                Err(e) => tracing::warn!(reference = %row.reference, "poll: {e}"),
            }
        }
        Ok(other) => {
            let why = nonsense(&other).unwrap_or("the answer is about another payment");
            tracing::warn!(reference = %row.reference, answered = %other.reference, "poll answered nonsense: {why}");
            let mut tx = app.db.begin().await?;
            attempts_store::polled(&mut tx, row.id, None, app.now()).await?;
            tx.commit().await?;
            return Ok(Asked::Unavailable);
        }
        Err(failure) => {
            tracing::warn!(gateway = %row.gateway, reference = %row.reference, "poll failed: {failure}");
            let mut tx = app.db.begin().await?;
            attempts_store::polled(&mut tx, row.id, None, app.now()).await?;
            tx.commit().await?;
            return Ok(Asked::Unavailable);
        }
    }
    Ok(Asked::Pending)
}

fn poll_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = crate::jobs::app_of(env)?;
        let report = poll_due(app, &Ctx::system(&format!("job {}", job.id))).await?;
        tracing::info!(
            job = job.id,
            polled = report.polled,
            settled = report.settled,
            expired = report.expired,
            unavailable = report.unavailable,
            "payments poll done"
        );
        Ok(())
    })
}

inventory::submit! { Handler { kind: POLL, run: poll_job } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_and_method_words_follow_their_patterns() {
        for ok in ["paynow", "bank-transfer", "a", "x1-2"] {
            assert!(matches(GATEWAY_PATTERN, ok), "{ok}");
        }
        for bad in ["", "Paynow", "1pay", "pay now", "pay_now", &"a".repeat(64)] {
            assert!(!matches(GATEWAY_PATTERN, bad), "{bad}");
        }
        for ok in [
            "ecocash",
            "web",
            "vmc:{11111111-1111-1111-1111-111111111111}",
            "zimswitch:1111",
        ] {
            assert!(matches(METHOD_PATTERN, ok), "{ok}");
        }
        for bad in ["", ":x", "eco cash", "eco\ncash", &"m".repeat(101)] {
            assert!(!matches(METHOD_PATTERN, bad), "{bad}");
        }
    }

    #[test]
    fn a_payers_number_is_digits_in_local_or_international_form() {
        assert_eq!(payer_phone("0771111111").unwrap(), "0771111111");
        assert_eq!(payer_phone("+263 77 111-1111").unwrap(), "+263771111111");
        for bad in [
            "077",
            "07711111111111111",
            "077a111111",
            "++263771111111",
            "",
        ] {
            assert!(payer_phone(bad).is_err(), "{bad}");
        }
    }
}
