//! Payments: money received against invoices, by every path but the billing run.
//!
//! - [`record_payment`]: staff record money received (bank transfer, cash, cheque): clearing
//!   Dr / receivable Cr, or clearing Dr / wallet Cr for a top-up invoice.
//! - [`pay_with_wallet`]: a client or staff pay (part of) an invoice from the client's
//!   wallet: wallet Dr / receivable Cr.
//! - [`top_up`]: a top-up invoice, which credits the wallet when it is paid.
//! - [`payment_started`], [`payment_resolved`]: payment attempts in flight at a gateway,
//!   which hold dunning's suspension and termination while they pend.
//!
//! Each posts its own entry and hands the payment to [`crate::settlement::record`], which
//! writes the effects of "this invoice was paid" in the same transaction.

use crate::audit::record;
use crate::billing::{Lookups, parse_amount, parse_date, wallet_account};
use crate::invoices::{InvoiceView, Issue, entry_key, get, issue_in, view_in};
use crate::ledger::{Amount, SystemAccount};
use crate::settlement::{self, Received};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::ids::InvoiceId;
use keel_domain::invoice::LineInput;
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::{InvoiceKind, LineKind};
use keel_domain::tax::Taxes;
use keel_domain::tenancy::Scope;
use keel_domain::text::limits;
use keel_store as store;
use keel_store::attempts::{self as attempts_store, AttemptState};
use keel_store::dunning as dunning_store;
use keel_store::ledger as ledger_store;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// How staff received money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualMethod {
    BankTransfer,
    Cash,
    Cheque,
    Other,
}

impl ManualMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ManualMethod::BankTransfer => "bank_transfer",
            ManualMethod::Cash => "cash",
            ManualMethod::Cheque => "cheque",
            ManualMethod::Other => "other",
        }
    }
}

/// A payment recorded by staff.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    /// Decimal text in the invoice's currency ("25.00"); at most what is due.
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: String,
    pub method: ManualMethod,
    /// The bank reference or receipt number; one payment per (method, reference). One line
    /// (`keel_domain::text::limits::REFERENCE`).
    #[schema(schema_with = keel_domain::text::schema::reference)]
    pub reference: String,
    /// YYYY-MM-DD; default today.
    #[schema(value_type = Option<chrono::NaiveDate>)]
    pub received_on: Option<String>,
    /// Free text (`keel_domain::text::limits::NOTE`).
    #[schema(schema_with = keel_domain::text::schema::note)]
    pub note: Option<String>,
}

/// Records money received by staff against an invoice: clearing Dr / receivable Cr (for a
/// top-up invoice: clearing Dr / wallet Cr). The reference cannot be recorded twice.
pub async fn record_payment(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &PaymentInput,
) -> Result<InvoiceView, AppError> {
    record_payment_answering(app, ctx, id, input, None).await
}

/// [`record_payment`], storing the API's answer in the same transaction ([`crate::Answer`]):
/// a retry after a crash is replayed, not refused as `payment_reference_used` by the
/// payment it made itself.
pub async fn record_payment_answering(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &PaymentInput,
    answer: Option<crate::Answer>,
) -> Result<InvoiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    AppError::check_text("reference", &input.reference, limits::REFERENCE)?;
    AppError::check_optional_text("note", input.note.as_deref(), limits::NOTE)?;
    let reference = input.reference.trim();
    let received_on = match input.received_on.as_deref() {
        Some(t) => parse_date(t, "received_on")?,
        None => app.today(),
    };
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let amount = parse_amount(&input.amount, inv.currency, "amount")?;
    if !amount.is_positive() {
        return Err(AppError::invalid(
            "invalid_amount",
            Some("amount"),
            "the amount must be more than zero",
        ));
    }
    if let Some(existing) =
        store::payments::payment_by_reference(&mut tx, input.method.as_str(), reference).await?
    {
        return Err(AppError::conflict(
            "payment_reference_used",
            format!(
                "a {} payment with reference {reference:?} was already recorded (on invoice {})",
                input.method.as_str(),
                existing.invoice_id
            ),
        ));
    }
    if !inv.status.is_payable() {
        return Err(AppError::conflict(
            "invoice_not_payable",
            format!(
                "invoice {} is {} and takes no payments",
                inv.display(),
                inv.status
            ),
        ));
    }
    if amount.minor() > inv.balance_due().minor() {
        return Err(AppError::invalid(
            "overpayment",
            Some("amount"),
            format!(
                "{} is more than the {} still due on invoice {}",
                amount.format_amount(),
                inv.balance_due().format_amount(),
                inv.display()
            ),
        ));
    }
    let mut lookups = Lookups::default();
    let clearing = lookups
        .account(&mut tx, app, SystemAccount::Clearing, inv.currency)
        .await?;
    let credit_to = match inv.kind {
        InvoiceKind::TopUp => wallet_account(&mut tx, app, inv.client_id, inv.currency).await?,
        InvoiceKind::Standard => {
            lookups
                .account(&mut tx, app, SystemAccount::Receivable, inv.currency)
                .await?
        }
    };
    let now = app.now();
    let entry = EntryBuilder::new(
        format!("payment:{}:{reference}", input.method.as_str()),
        format!("Payment {reference} of invoice {}", inv.display()),
    )
    .debit(clearing, amount)
    .credit(credit_to, amount)
    .build()?;
    let posted = ledger_store::post(&mut tx, &entry, now).await?;
    settlement::record(
        &mut tx,
        app,
        ctx,
        &inv,
        Received {
            method: input.method.as_str(),
            reference,
            amount,
            entry_id: posted.entry.id,
            note: input.note.as_deref(),
            received_on,
        },
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.payment",
        "invoice",
        inv.id,
        json!({ "amount": Amount::from(amount), "method": input.method, "reference": reference }),
    )
    .await?;
    let paid = view_in(&mut tx, id).await?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &paid).await?;
    }
    tx.commit().await?;
    Ok(paid)
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletPayInput {
    /// Decimal text; default: as much as the wallet holds, up to what is due.
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: Option<String>,
}

/// Pays (part of) an invoice from the client's wallet.
/// `key` (the API's `Idempotency-Key`) makes a retry after a crash find the first payment
/// instead of paying again; without one, every call is a new payment.
pub async fn pay_with_wallet(
    app: &App,
    ctx: &Ctx,
    id: InvoiceId,
    input: &WalletPayInput,
    key: Option<&str>,
) -> Result<InvoiceView, AppError> {
    if !ctx.actor.can(Permission::BillingWrite) {
        ctx.require(Permission::Order)?;
    }
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if !inv.status.is_payable() || inv.kind == InvoiceKind::TopUp {
        return Err(AppError::conflict(
            "invoice_not_payable",
            format!(
                "invoice {} is {} and cannot be paid from the wallet",
                inv.display(),
                if inv.kind == InvoiceKind::TopUp {
                    "a top-up"
                } else {
                    inv.status.as_str()
                }
            ),
        ));
    }
    let wallet = wallet_account(&mut tx, app, inv.client_id, inv.currency).await?;
    let account = ledger_store::account(&mut tx, wallet)
        .await?
        .ok_or(AppError::NotFound { what: "wallet" })?;
    let available = -account.balance_minor + account.credit_limit_minor.unwrap_or(0);
    let due = inv.balance_due().minor();
    let amount = match input.amount.as_deref() {
        Some(t) => {
            let a = parse_amount(t, inv.currency, "amount")?;
            if !a.is_positive() {
                return Err(AppError::invalid(
                    "invalid_amount",
                    Some("amount"),
                    "the amount must be more than zero",
                ));
            }
            if a.minor() > due {
                return Err(AppError::invalid(
                    "overpayment",
                    Some("amount"),
                    format!(
                        "{} is more than the {} still due",
                        a.format_amount(),
                        inv.balance_due().format_amount()
                    ),
                ));
            }
            a.minor()
        }
        None => available.min(due),
    };
    if amount <= 0 || amount > available {
        let asked = if amount > 0 { amount } else { due };
        return Err(crate::wallets::insufficient(
            Money::new(available, inv.currency),
            Money::new(asked, inv.currency),
        ));
    }
    let mut lookups = Lookups::default();
    let amount = Money::new(amount, inv.currency);
    let tag = match key {
        Some(k) => entry_key(ctx, "manual", k),
        None => format!("manual:{}", app.now().timestamp_micros()),
    };
    let updated =
        settlement::pay_from_wallet(&mut tx, app, ctx, &mut lookups, inv, amount, &tag).await?;
    record(
        &mut tx,
        app,
        ctx,
        "invoice.wallet_payment",
        "invoice",
        updated.id,
        json!({ "amount": Amount::from(amount) }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpInput {
    #[schema(minimum = 1)]
    pub client_id: Option<i64>,
    /// Decimal text in `currency`.
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: String,
    /// Default: the client's currency.
    #[schema(value_type = Option<keel_domain::currency::Currency>)]
    pub currency: Option<String>,
}

/// Issues a top-up invoice: paid later (by staff or a gateway), it credits the wallet. With
/// `key` (the API's `Idempotency-Key`) a retry returns the same invoice.
pub async fn top_up(
    app: &App,
    ctx: &Ctx,
    input: &TopUpInput,
    key: Option<&str>,
) -> Result<InvoiceView, AppError> {
    if !ctx.actor.can(Permission::BillingWrite) {
        ctx.require(Permission::Order)?;
    }
    let client_id = ctx.target_client(input.client_id)?;
    let mut tx = app.db.begin().await?;
    let client = keel_store::clients::client_for_update(&mut tx, ctx.actor.scope(), client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let key = key.map(|k| entry_key(ctx, "top_up", k));
    if let Some(k) = &key
        && let Some(existing) = store::invoices::invoice_by_key(&mut tx, client_id, k).await?
    {
        drop(tx);
        return get(app, &Ctx::system("read-back"), existing).await;
    }
    let currency = match input.currency.as_deref() {
        Some(c) => crate::billing::parse_currency(c, "currency")?,
        None => client.currency,
    };
    let amount = parse_amount(&input.amount, currency, "amount")?;
    if !amount.is_positive() {
        return Err(AppError::invalid(
            "invalid_amount",
            Some("amount"),
            "a top-up must be more than zero",
        ));
    }
    let row = store::billing_run::billing_client(&mut tx, client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let today = app.today();
    let mut lookups = Lookups::default();
    let inv = issue_in(
        &mut tx,
        app,
        &mut lookups,
        Issue {
            client: row,
            reseller: client.reseller_id,
            kind: InvoiceKind::TopUp,
            currency,
            lines: vec![LineInput {
                kind: LineKind::TopUp,
                description: "Wallet top-up".into(),
                quantity: 1,
                unit: amount,
                discount: Money::zero(currency),
                service: None,
                period: None,
                taxes: Taxes::none(),
            }],
            issue_date: today,
            due_date: today,
        },
    )
    .await?;
    if let Some(k) = &key {
        store::invoices::set_invoice_key(&mut tx, inv.id, k).await?;
    }
    record(
        &mut tx,
        app,
        ctx,
        "invoice.top_up",
        "invoice",
        inv.id,
        json!({ "amount": Amount::from(amount) }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), inv.id).await
}

// ---------------------------------------------------------------------------------------
// Payment attempts in flight

/// A gateway started a payment of `invoice`: suspension and termination wait for it, at
/// most the invoice's policy's `payment_hold_hours`. Recording the same reference twice
/// changes nothing. Returns when the hold ends.
pub async fn payment_started(
    app: &App,
    ctx: &Ctx,
    invoice: InvoiceId,
    gateway: &str,
    reference: &str,
) -> Result<DateTime<Utc>, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let policies = crate::dunning::Policies::load(app).await?;
    let services = dunning_store::billed_services(&app.db, invoice.get(), invoice.get()).await?;
    let mut tx = app.db.begin().await?;
    let inv = store::invoices::invoice_for_update(&mut tx, Scope::Host, invoice)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let client =
        dunning_store::assigned_policy(&app.db, dunning_store::Target::Client(inv.client_id))
            .await?;
    let policy = policies.of_invoice(client, &services);
    let now = app.now();
    let until = now + chrono::Duration::hours(i64::from(policy.payment_hold_hours));
    let due = inv.balance_due();
    attempts_store::insert(
        &mut tx,
        &attempts_store::NewAttempt {
            invoice,
            gateway,
            reference,
            amount_minor: due.minor(),
            currency: due.currency().code(),
            method: None,
            request_key: None,
            hold_until: until,
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(until)
}

/// The gateway's answer for a payment in flight: the hold ends (a success also records the
/// payment through the gateway's own path, which lifts suspensions).
pub async fn payment_resolved(
    app: &App,
    ctx: &Ctx,
    gateway: &str,
    reference: &str,
    succeeded: bool,
) -> Result<bool, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let mut tx = app.db.begin().await?;
    let state = if succeeded {
        AttemptState::Succeeded
    } else {
        AttemptState::Failed
    };
    let changed = attempts_store::resolve(&mut tx, gateway, reference, state, app.now()).await?;
    tx.commit().await?;
    Ok(changed)
}
