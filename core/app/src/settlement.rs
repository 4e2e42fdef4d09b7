//! Settlement: what happens when money reaches an invoice, written once.
//!
//! Every payment path (staff recording, a wallet payment, the wallet applied at issue, a
//! gateway later, the billing run's batches) posts its own ledger entry and then calls
//! [`record`], which stores the payment, moves the invoice's paid amount and, when that
//! makes it paid, runs [`paid`]: the `invoice.paid` event and the client's receipt, pending
//! services started with their provisioning intents and their orders made active, and the
//! suspensions dunning made for the invoice lifted ([`lift`]). The billing run's batched
//! path emits the same typed events through [`received_in_batch`]. No event bus: every
//! effect is written in the causing transaction, so it commits with the payment or not at
//! all.
//!
//! A gateway payment the provider later reports refunded or disputed is taken back off its
//! invoice by [`reversed`], after its caller posted the reversing entry.
//!
//! Postings (docs/money.md): paying from the wallet posts wallet Dr / receivable Cr.

use crate::billing::{Lookups, wallet_account};
use crate::events::{self, Event, InvoiceData, PaymentData, ReversalData, ServiceData};
use crate::ledger::SystemAccount;
use crate::notify::{self, Notice};
use crate::{App, AppError, Ctx};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::ids::EntryId;
use keel_domain::ledger::EntryBuilder;
use keel_domain::lifecycle::{InvoiceKind, InvoiceStatus, OrderStatus, ServiceStatus};
use keel_domain::tenancy::Scope;
use keel_store::Tx;
use keel_store::dunning as dunning_store;
use keel_store::ledger as ledger_store;
use keel_store::payments::{NewPayment, PaymentRecord};
use keel_store::webhooks::Subscriptions;
use keel_store::{self as store, invoices::InvoiceRecord};

/// A payment whose ledger entry is posted, ready to be recorded against its invoice.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// `bank_transfer`, `wallet`, a gateway's id, …
    pub method: &'a str,
    /// One payment per (method, reference) (`payments_reference_key`).
    pub reference: &'a str,
    pub amount: Money,
    pub entry_id: EntryId,
    pub note: Option<&'a str>,
    pub received_on: NaiveDate,
}

/// Records `payment` against `inv` (locked by the caller, its entry posted): the payment row,
/// `payment.received`, the invoice's paid amount and, when it becomes paid, [`paid`].
/// Returns the invoice as it is now; `overpayment` (409) if it changed meanwhile.
pub async fn record(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    inv: &InvoiceRecord,
    payment: Received<'_>,
) -> Result<InvoiceRecord, AppError> {
    let now = app.now();
    store::payments::insert_payment(
        tx,
        &NewPayment {
            invoice: inv,
            method: payment.method,
            reference: payment.reference,
            amount: payment.amount,
            entry_id: payment.entry_id,
            note: payment.note,
            actor_label: ctx.actor.label(),
            received_on: payment.received_on,
        },
        now,
    )
    .await?;
    let data = InvoiceData::of(inv);
    events::emit(
        tx,
        app,
        Event::PaymentReceived(PaymentData::of(
            &data,
            payment.method,
            payment.reference,
            payment.amount,
        )),
    )
    .await?;
    let updated = store::invoices::add_payment(tx, inv.id, payment.amount.minor(), now)
        .await?
        .ok_or_else(|| {
            AppError::conflict(
                "invoice_changed",
                "the invoice changed meanwhile (paid or credited since it was read); read it again",
            )
        })?;
    if updated.status == InvoiceStatus::Paid {
        paid(tx, app, ctx, &updated).await?;
    }
    Ok(updated)
}

/// Takes a reversed payment back off its invoice (its reversing entry posted by the caller,
/// the invoice locked): the payment row marked reversed by `reversal`, the invoice's paid
/// amount lowered (a paid invoice is open again, and dunning sees it by its due date), and
/// `payment.reversed` emitted. What the payment started (services, receipts) stays: staff
/// decide, and the caller flags it for them. Returns the invoice as it is now;
/// `payment_reversed` (409) when the payment already was.
pub async fn reversed(
    tx: &mut Tx,
    app: &App,
    inv: &InvoiceRecord,
    payment: &PaymentRecord,
    reversal: EntryId,
    provider_status: &str,
    reason: &str,
) -> Result<InvoiceRecord, AppError> {
    let now = app.now();
    if !store::payments::mark_reversed(tx, payment.id, reversal, now).await? {
        return Err(AppError::conflict(
            "payment_reversed",
            format!("payment {} was reversed already", payment.reference),
        ));
    }
    let updated = store::invoices::remove_payment(tx, inv.id, payment.amount.minor(), now)
        .await?
        .ok_or_else(|| {
            AppError::conflict(
                "invoice_changed",
                format!(
                    "invoice {} no longer holds the payment {} (credited or cancelled since); \
                     reverse it by hand",
                    inv.display(),
                    payment.reference
                ),
            )
        })?;
    let data = InvoiceData::of(inv);
    events::emit(
        tx,
        app,
        Event::PaymentReversed(ReversalData {
            payment: PaymentData::of(&data, &payment.method, &payment.reference, payment.amount),
            provider_status: provider_status.to_owned(),
            reason: reason.to_owned(),
            invoice_status: updated.status.as_str(),
            balance_due_minor: updated.balance_due().minor(),
        }),
    )
    .await?;
    Ok(updated)
}

/// What happens when an invoice becomes paid: `invoice.paid`, the client's receipt (a top-up's
/// own message for a top-up), its pending services start (with the intent to provision
/// recorded as a job for the provisioner), their orders become active, and suspensions
/// dunning made for this invoice are lifted ([`lift`]).
pub async fn paid(tx: &mut Tx, app: &App, ctx: &Ctx, inv: &InvoiceRecord) -> Result<(), AppError> {
    let now = app.now();
    events::emit(tx, app, Event::InvoicePaid(InvoiceData::of(inv))).await?;
    notify::queue(tx, app, Notice::Paid(inv), &paid_cause(inv)).await?;
    for service in store::services::pending_services_of_invoice(tx, inv.id).await? {
        let moved = store::services::set_service_status(
            tx,
            service,
            ServiceStatus::Pending,
            ServiceStatus::Active,
            &format!("invoice {} paid", inv.number.as_deref().unwrap_or_default()),
            ctx.actor.label(),
            Some("create"),
            now,
        )
        .await?;
        if moved
            && let Some(s) = store::services::service_for_update(tx, Scope::Host, service).await?
            && let Some(order) = s.order_id
        {
            store::orders::set_order_status(
                tx,
                order,
                OrderStatus::Pending,
                OrderStatus::Active,
                now,
            )
            .await?;
        }
        if moved {
            crate::provisioning::intend(tx, app, service, "create", &paid_cause(inv)).await?;
        }
    }
    lift(tx, app, ctx, inv).await?;
    Ok(())
}

/// The cause under which an invoice's payment effects are written once
/// (`paid:{invoice}`): the receipt, provisioning intents, lifted suspensions.
pub fn paid_cause(inv: &InvoiceRecord) -> String {
    format!("paid:{}", inv.id)
}

/// Paying an invoice lifts the suspensions dunning made for it, unless another invoice
/// still owed suspended the same service; the unsuspension is recorded as a provisioning
/// job, the client told, `service.unsuspended` emitted. Runs in the transaction that
/// recorded the payment.
pub async fn lift(tx: &mut Tx, app: &App, ctx: &Ctx, inv: &InvoiceRecord) -> Result<(), AppError> {
    let now = app.now();
    for service in dunning_store::suspended_for(tx, inv.id).await? {
        if dunning_store::suspended_for_another(tx, service, inv.id).await? {
            continue;
        }
        let Some(s) = store::services::service_for_update(tx, Scope::Host, service).await? else {
            continue;
        };
        if s.status != ServiceStatus::Suspended {
            continue;
        }
        let reason = format!("invoice {} paid", inv.display());
        if store::services::set_service_status(
            tx,
            service,
            ServiceStatus::Suspended,
            ServiceStatus::Active,
            &reason,
            ctx.actor.label(),
            Some("unsuspend"),
            now,
        )
        .await?
        {
            crate::provisioning::intend(tx, app, service, "unsuspend", &paid_cause(inv)).await?;
            notify::queue(
                tx,
                app,
                Notice::ServiceUnsuspended {
                    invoice: inv,
                    service,
                    label: &s.label,
                },
                &format!("unsuspend:{service}:{}", inv.id),
            )
            .await?;
            events::emit(
                tx,
                app,
                Event::Service(
                    events::EventType::ServiceUnsuspended,
                    ServiceData::of(&s, ServiceStatus::Suspended, ServiceStatus::Active, &reason),
                ),
            )
            .await?;
        }
    }
    Ok(())
}

/// The billing run's batched path: for each invoice it inserted (`InvoiceData` as inserted)
/// and the wallet payment it recorded, `payment.received`, and `invoice.paid` when that paid
/// it, with the batch's subscriptions read once. The clients' receipts are queued by the
/// batch's `notification.issued` job under [`paid_cause`]; a renewal has no pending service
/// and no dunning yet, so nothing else of [`paid`] applies.
pub async fn received_in_batch(
    tx: &mut Tx,
    app: &App,
    subs: &Subscriptions,
    payments: &[(InvoiceData, PaymentData)],
) -> Result<(), AppError> {
    for (invoice, payment) in payments {
        events::emit_to(tx, app, subs, Event::PaymentReceived(payment.clone())).await?;
        if invoice.status == InvoiceStatus::Paid.as_str() {
            events::emit_to(tx, app, subs, Event::InvoicePaid(invoice.clone())).await?;
        }
    }
    Ok(())
}

/// After issuing: a zero invoice is paid at once; otherwise the wallet pays what it can when
/// the client's terms say so. Runs the paid effects when the invoice ends up paid.
pub async fn settle_new(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    lookups: &mut Lookups,
    inv: InvoiceRecord,
    auto_apply: bool,
) -> Result<InvoiceRecord, AppError> {
    let now = app.now();
    if inv.total.is_zero() {
        let settled = store::invoices::add_payment(tx, inv.id, 0, now)
            .await?
            .ok_or(AppError::NotFound { what: "invoice" })?;
        paid(tx, app, ctx, &settled).await?;
        return Ok(settled);
    }
    if !auto_apply || inv.kind == InvoiceKind::TopUp {
        return Ok(inv);
    }
    let wallet = wallet_account(tx, app, inv.client_id, inv.currency).await?;
    let account = ledger_store::account(tx, wallet)
        .await?
        .ok_or(AppError::NotFound { what: "wallet" })?;
    let available = -account.balance_minor + account.credit_limit_minor.unwrap_or(0);
    let amount = available.min(inv.balance_due().minor());
    if amount <= 0 {
        return Ok(inv);
    }
    let id = inv.id;
    match pay_from_wallet(
        tx,
        app,
        ctx,
        lookups,
        inv,
        Money::new(amount, account.currency),
        "auto",
    )
    .await
    {
        Ok(settled) => Ok(settled),
        // Another payment spent the wallet since we read it: applying the wallet is best
        // effort, so the invoice stays payable (the refused post left nothing behind).
        Err(AppError::Conflict {
            code: crate::wallets::INSUFFICIENT,
            ..
        }) => store::invoices::invoice_for_update(tx, Scope::Host, id)
            .await?
            .ok_or(AppError::NotFound { what: "invoice" }),
        Err(e) => Err(e),
    }
}

/// Posts wallet Dr / receivable Cr for `amount` and records the payment.
/// `tag` is "auto" (auto-apply; the key names the invoice and what had been paid before,
/// so a replayed issue cannot pay twice) or the caller's idempotency key.
pub async fn pay_from_wallet(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    lookups: &mut Lookups,
    inv: InvoiceRecord,
    amount: Money,
    tag: &str,
) -> Result<InvoiceRecord, AppError> {
    let now = app.now();
    let wallet = wallet_account(tx, app, inv.client_id, inv.currency).await?;
    let receivable = lookups
        .account(tx, app, SystemAccount::Receivable, inv.currency)
        .await?;
    // The key names the invoice and how much had been paid before: a retried request
    // (same state) cannot post twice, a second deliberate payment (new state) can.
    let reference = if tag == "auto" {
        format!("{}:{}:auto", inv.id, inv.paid.minor())
    } else {
        format!("{}:{tag}", inv.id)
    };
    let entry = EntryBuilder::new(
        wallet_payment_key(&reference),
        format!(
            "Wallet payment of invoice {}",
            inv.number.as_deref().unwrap_or("")
        ),
    )
    .debit(wallet, amount)
    .credit(receivable, amount)
    .build()?;
    let posted = match ledger_store::post(tx, &entry, now).await {
        Ok(p) => p,
        Err(keel_store::StoreError::Ledger(
            keel_domain::ledger::LedgerError::InsufficientFunds {
                account,
                available,
                requested,
            },
        )) if account == wallet => {
            return Err(crate::wallets::insufficient(available, requested));
        }
        Err(e) => return Err(e.into()),
    };
    if !posted.created {
        // The same request again: the payment it made stands.
        return store::invoices::invoice_for_update(tx, Scope::Host, inv.id)
            .await?
            .ok_or(AppError::NotFound { what: "invoice" });
    }
    record(
        tx,
        app,
        ctx,
        &inv,
        Received {
            method: "wallet",
            reference: &reference,
            amount,
            entry_id: posted.entry.id,
            note: None,
            received_on: app.today(),
        },
    )
    .await
}

/// The ledger key of a wallet payment with `reference` (`{invoice}:{paid before}:auto` or
/// `{invoice}:{key}`), shared with the billing run's batches.
pub fn wallet_payment_key(reference: &str) -> String {
    format!("wallet:pay:{reference}")
}
