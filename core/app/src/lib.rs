//! keel-app: Keel's use cases. Each public function is one use case and, when it writes,
//! exactly one transaction: the change, its ledger entries, its side effects and its audit
//! row commit together or not at all.
//!
//! # Layers
//! The modules are listed here in their layers, from the bottom up. A module imports only
//! from the layers below it and, inside its own layer, only from modules listed before it,
//! so the imports have no circle (`tests/layers.rs` reads every `crate::` path and fails on
//! one that goes against this order; ARCHITECTURE.md says why).
//!
//! **Foundation**: [`App`] (the database, the clock, the settings), [`Ctx`] (who acts, under
//! which request id, for which client), [`Answer`] (an idempotent write's stored answer),
//! paging and parsing helpers.
//! - [`error`]: [`AppError`], the use-case errors the API maps to HTTP.
//! - [`clock`]: the injected clock (tests never read the wall clock).
//! - [`schema`]: OpenAPI schemas of input rules the field types cannot carry (patterns,
//!   ranges), built from the constants the use cases check.
//! - [`crash_points`]: the test hook `KEEL_CRASH_POINT` that stops the process at a named
//!   point of the payment path, for SIGKILL tests.
//!
//! **Effects** (leaves: they write side-effect rows in the caller's transaction and import
//! no use case):
//! - [`audit`]: audit rows from a context; reading and verifying the chain.
//! - [`jobs`]: the job environment: the [`App`] of a handler, the day it works for, and
//!   `JobError: From<AppError>`, the one rule for parking or retrying.
//! - [`events`]: webhook events, one typed payload per event type, and `emit`.
//! - [`pay_links`]: signed, expiring pay links (a capability to pay one invoice), the
//!   installation's key that signs them, the pay page's form tokens.
//! - [`notify`]: a typed notice to a client, rendered and written to the outbox (invoice
//!   messages carry a pay link).
//! - [`provisioning`]: provisioning intents, recorded as jobs in the `provision` queue.
//! - [`plugins`]: the plugins' key-value store in the database.
//!
//! **Aggregates** (each a record and the use cases that change it):
//! - [`clients`]: clients and contacts, always inside the actor's tenancy scope.
//! - [`access`]: staff users (argon2id passwords), API keys, and authentication of a bearer
//!   key into an [`keel_domain::access::Actor`].
//! - [`ledger`]: accounts and entries, manual adjustments and reversals, system accounts.
//! - [`billing`]: the host's invoicing terms (`[billing]`), frozen parties, tax and rate
//!   lookups, document numbers, the entries that issue invoices.
//! - [`catalog`]: product groups, products, prices and quotes; tax rules, exchange rates,
//!   client groups and their terms, promotions.
//! - [`wallets`]: a client's wallets per currency, their history from the ledger's postings,
//!   staff credits and debits, credit limits.
//! - [`services`]: services and their lifecycle (status changes, cancellations).
//! - [`settlement`]: what a payment sets off, written once: the payment row, the invoice
//!   paid, receipts, events, services started, dunning's suspensions lifted; the wallet
//!   applied to a new invoice.
//! - [`invoices`]: issuing, reading, staff drafts, cancelling, collections, the late fee,
//!   the PDF.
//! - [`credit_notes`]: credit notes against issued invoices.
//! - [`orders`]: placing orders (services, their invoice, paid from the wallet).
//! - [`plan_change`]: upgrades and downgrades inside a period.
//! - [`dunning`]: the daily dunning run and its steps (reminders, late fee, suspension,
//!   termination, cancellation) as recorded jobs; policies.
//! - [`webhooks`]: webhook endpoints, the signed delivery job with its retries, replay,
//!   [`webhooks::verify`].
//! - [`notifications`]: sending the outbox (email over SMTP with lettre; plugin channels such
//!   as WhatsApp through their notifier plugins), reading it, the clients' channel
//!   preferences and consents, the notifier hook (receipts, inbound messages, STOP).
//!
//! **Processes** (use cases spanning aggregates):
//! - [`payments`]: staff-recorded payments, wallet payments, top-ups, payment holds.
//! - [`gateway_payments`]: the payment spine: payments started at gateway plugins, their
//!   callbacks verified and confirmed, applied once; the scheduled poll (job `payments.poll`).
//! - [`pay_page`]: what the pay page shows and does for a pay link: the invoice, the methods
//!   the enabled gateways offer, a payment started as the invoice's client, an attempt's state.
//! - [`billing_run`]: the batched, resumable renewal run (job `billing.run`).
//! - [`automation`]: the daily cleanup, staff's view of the job queue.
//! - [`preview`]: what automation would do over the next days (billing and dunning), read only.
//! - [`demo`]: the demo host `keel serve --demo` and `keel demo` seed.

// Foundation
pub mod clock;
pub mod crash_points;
pub mod error;
pub mod schema;
// Effects
pub mod audit;
pub mod events;
pub mod jobs;
pub mod notify;
pub mod pay_links;
pub mod plugins;
pub mod provisioning;
// Aggregates
pub mod access;
pub mod billing;
pub mod catalog;
pub mod clients;
pub mod credit_notes;
pub mod dunning;
pub mod invoices;
pub mod ledger;
pub mod notifications;
pub mod orders;
pub mod plan_change;
pub mod services;
pub mod settlement;
pub mod wallets;
pub mod webhooks;
// Processes
pub mod automation;
pub mod billing_run;
pub mod demo;
pub mod gateway_payments;
pub mod pay_page;
pub mod payments;
pub mod preview;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::AppError;

use keel_domain::access::{Actor, Permission};
use keel_domain::text::limits;
use keel_store::Db;
use std::sync::Arc;

/// The application: a database and a clock. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The host's billing settings (`[billing]`).
    pub billing: Arc<billing::BillingConfig>,
    /// The layout of invoice and credit-note PDFs (built in, or the host's override).
    pub pdf_template: Arc<keel_pdf::Template>,
    /// How notifications go out (`[email]`, `[notifications]`); email is off by default.
    pub notify: Arc<notify::Settings>,
    /// Where outgoing webhooks may go (`[webhooks]`; only public addresses by default).
    pub webhooks: Arc<webhooks::Outbound>,
    /// The enabled gateway plugins payments can use.
    pub gateways: Arc<gateway_payments::Gateways>,
    /// The enabled notifier plugins the plugin channels send through.
    pub notifiers: Arc<notifications::Notifiers>,
    /// How payments through gateways behave (`[payments]`, the public URL).
    pub payments: Arc<gateway_payments::Settings>,
    /// Pay links: their key (`[server] link_secret`, else Keel's own) and lifetime.
    pub pay_links: Arc<pay_links::Links>,
}

impl App {
    pub fn new(db: Db) -> App {
        App::with_clock(db, Arc::new(SystemClock))
    }

    pub fn with_clock(db: Db, clock: Arc<dyn Clock>) -> App {
        App {
            db,
            clock,
            billing: Arc::new(billing::BillingConfig::default()),
            pdf_template: Arc::new(keel_pdf::Template::builtin()),
            notify: Arc::new(notify::Settings::default()),
            webhooks: Arc::new(webhooks::Outbound::default()),
            gateways: Arc::new(gateway_payments::Gateways::default()),
            notifiers: Arc::new(notifications::Notifiers::default()),
            payments: Arc::new(gateway_payments::Settings::default()),
            pay_links: Arc::new(pay_links::Links::default()),
        }
    }

    /// The same application with other billing settings.
    pub fn with_billing(mut self, billing: billing::BillingConfig) -> App {
        self.billing = Arc::new(billing);
        self
    }

    /// The same application with other notification settings.
    pub fn with_notifications(mut self, settings: notify::Settings) -> App {
        self.notify = Arc::new(settings);
        self
    }

    /// The same application with other webhook settings (networks endpoints may be in).
    pub fn with_webhooks(mut self, settings: webhooks::Settings) -> App {
        self.webhooks = Arc::new(webhooks::Outbound::new(settings));
        self
    }

    /// The same application with these gateways enabled.
    pub fn with_gateways(mut self, gateways: gateway_payments::Gateways) -> App {
        self.gateways = Arc::new(gateways);
        self
    }

    /// The same application with these notifier plugins enabled.
    pub fn with_notifiers(mut self, notifiers: notifications::Notifiers) -> App {
        self.notifiers = Arc::new(notifiers);
        self
    }

    /// The same application with other payment settings.
    pub fn with_payments(mut self, settings: gateway_payments::Settings) -> App {
        self.payments = Arc::new(settings);
        self
    }

    /// The same application with other pay link settings (a secret, a lifetime).
    pub fn with_pay_links(mut self, settings: pay_links::Settings) -> App {
        self.pay_links = Arc::new(pay_links::Links::new(settings));
        self
    }

    /// The same application with another PDF template.
    pub fn with_pdf_template(mut self, template: keel_pdf::Template) -> App {
        self.pdf_template = Arc::new(template);
        self
    }

    /// Today in the host's calendar (UTC for now).
    pub fn today(&self) -> chrono::NaiveDate {
        self.clock.now().date_naive()
    }

    /// Now, at the precision the database keeps.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        keel_store::db::truncate(self.clock.now())
    }
}

/// Who is acting, and the request id that ties the log lines and the audit row together.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl Ctx {
    pub fn new(actor: Actor) -> Ctx {
        Ctx {
            actor,
            request_id: None,
        }
    }

    /// Keel itself acting (the CLI as the installation owner, jobs).
    pub fn system(label: &str) -> Ctx {
        Ctx::new(Actor::system(label))
    }

    /// Whoever holds a pay link of `invoice`, acting as the invoice's `client` (its scope
    /// and a client's permissions, nothing more). Audited as `api_key` 0 labelled "pay link
    /// for invoice N": no real key has id 0, and the audit log's actor kinds are fixed.
    pub fn pay_link(
        client: keel_domain::ids::ClientId,
        invoice: keel_domain::ids::InvoiceId,
    ) -> Ctx {
        Ctx::new(Actor::Key {
            key: keel_domain::ids::ApiKeyId(0),
            label: format!("pay link for invoice {invoice}"),
            scope: keel_domain::tenancy::Scope::Client(client),
            role: None,
            staff: None,
        })
    }

    /// The client an action is for: a client key acts for itself; staff and resellers name one.
    pub fn target_client(
        &self,
        given: Option<i64>,
    ) -> Result<keel_domain::ids::ClientId, AppError> {
        use keel_domain::tenancy::Scope;
        match (self.actor.scope(), given) {
            (Scope::Client(own), None) => Ok(own),
            (Scope::Client(own), Some(id)) if id == own.get() => Ok(own),
            // Another client's id from a client key: not found, never forbidden.
            (Scope::Client(_), Some(_)) => Err(AppError::NotFound { what: "client" }),
            (_, Some(id)) => Ok(keel_domain::ids::ClientId(id)),
            (_, None) => Err(AppError::invalid(
                "missing_client",
                Some("client_id"),
                "say which client this is for",
            )),
        }
    }

    /// Refuses the use case unless the actor holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.actor.can(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                permission: permission.as_str(),
            })
        }
    }
}

/// Where a use case stores the answer to its request, in its own transaction: the API's
/// `Idempotency-Key` slot and the status the API will answer with (HTTP stays in keel-api;
/// the use case writes its result as JSON, as the API sends it). See
/// [`keel_store::idempotency::complete_in`].
///
/// The answer commits with the change it reports, so a crash between that commit and the
/// API's own storing of the answer leaves a key whose retry is a replay: never a second
/// resource, never a refusal as a duplicate of itself.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub slot: i64,
    pub status: u16,
    /// How the API keeps an answer it may not store as sent (one that shows a secret once):
    /// `None` stores the result as sent.
    pub form: Option<&'static dyn AnswerForm>,
}

/// What the API stores instead of an answer it may not keep as sent: keel-api's
/// `ShownOnce` withholds a secret and stores the 409 a retry gets. The use case stores
/// exactly what the API layer would, so a replay after a crash is the same answer.
pub trait AnswerForm: std::fmt::Debug + Send + Sync {
    /// The status and body to store for an answer of `status` whose body is `body`.
    fn stored(&self, status: u16, body: &str) -> (u16, String);
}

impl Answer {
    /// The answer as sent, with `status`.
    pub fn new(slot: i64, status: u16) -> Answer {
        Answer {
            slot,
            status,
            form: None,
        }
    }

    /// Stores `result` as the answer, in `tx`. Refused (409 `idempotency_key_in_use`) when
    /// the key was answered meanwhile; the caller's `?` then rolls its change back.
    pub async fn store<T: serde::Serialize>(
        self,
        tx: &mut keel_store::Tx,
        app: &App,
        result: &T,
    ) -> Result<(), AppError> {
        let body = serde_json::to_string(result).map_err(AppError::internal)?;
        let (status, body) = match self.form {
            Some(form) => form.stored(self.status, &body),
            None => (self.status, body),
        };
        if keel_store::idempotency::complete_in(tx, self.slot, status, &body, app.now()).await? {
            Ok(())
        } else {
            // Another attempt under the key (one that took it over after the lock timeout)
            // answered first: this one must not take effect too. Its answer is the replay.
            Err(AppError::conflict(
                "idempotency_key_in_use",
                "another attempt with this Idempotency-Key was answered first and this one changed nothing; retry to get that answer",
            ))
        }
    }
}

/// Largest page a list returns.
pub const MAX_PAGE: u32 = 200;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: u32 = 50;

/// The `limit` parameter's schema: the bounds [`page_limit`] checks.
pub fn page_limit_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .description(Some(format!(
            "Page size, 1 to {MAX_PAGE}; {DEFAULT_PAGE} when absent."
        )))
        .build()
}

/// Checks a requested page size.
pub fn page_limit(limit: Option<u32>) -> Result<u32, AppError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(AppError::invalid(
            "invalid_limit",
            Some("limit"),
            format!("limit must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// The longest reason a change may carry, in characters ([`limits::REASON`]).
pub const MAX_REASON_CHARS: usize = limits::REASON.max_chars;

/// The reason a change must carry (a cancellation, a status change, a wallet move): free
/// text by the stored-text rule ([`limits::REASON`]); one that shows nothing is
/// `invalid_text` (problem `empty`), as every required text is. Returns the reason trimmed,
/// as it is stored.
pub fn required_reason(text: &str) -> Result<&str, AppError> {
    AppError::check_text("reason", text, limits::REASON)?;
    Ok(text.trim())
}

/// Order items' labels ([`limits::LABEL`]): a label is printed on every invoice line of its
/// service and copied by each renewal, so one line, no bidi controls, at most 200 characters.
/// A blank label (spaces only) means "no label" (the product's name is used), but one made
/// only of zero-width characters is refused: it would print as nothing. `items[i].label`
/// names the first that breaks the rule.
pub fn check_item_labels<'a>(
    labels: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<(), AppError> {
    for (i, label) in labels.into_iter().enumerate() {
        AppError::check_optional_text(&format!("items[{i}].label"), label, limits::LABEL)?;
    }
    Ok(())
}

/// Parses a `status` filter with `parse` (the status enum's own), naming `what` when unknown.
pub fn parse_status<T>(
    text: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, AppError> {
    text.map(|s| {
        parse(s).ok_or_else(|| {
            AppError::invalid(
                "invalid_status",
                Some("status"),
                format!("unknown {what} status {s:?}"),
            )
        })
    })
    .transpose()
}

/// Decodes a cursor given by a client.
pub fn cursor(text: Option<&str>) -> Result<Option<keel_store::Cursor>, AppError> {
    match text {
        None => Ok(None),
        Some(t) => keel_store::Cursor::decode(t).map(Some).ok_or_else(|| {
            AppError::invalid(
                "invalid_cursor",
                Some("cursor"),
                "the cursor is not one this API returned",
            )
        }),
    }
}
