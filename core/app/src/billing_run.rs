//! The billing run: renewal invoices for every service coming due, in batches.
//!
//! # What it does
//! For every active or suspended service whose next due date falls within the client's
//! invoice lead days of `as_of` (client setting, else group, else `[billing]`), it bills each
//! period not yet invoiced whose start is inside that horizon (at most
//! [`MAX_PERIODS_PER_RUN`] per service per run), unless a cancellation at the end of the
//! period stops renewals. With `group_renewals`, the periods of one client in one currency
//! starting on the same day share an invoice. Each invoice is issued on `as_of`, due on the
//! period's start, numbered, posted (receivable Dr / revenue Cr / tax Cr), and paid from the
//! wallet as far as the wallet allows when the client's terms say so.
//!
//! # Why it cannot bill twice or miss
//! - One (service, period) is invoiced once: `invoice_lines_service_period_key` is unique.
//! - A batch (about [`crate::billing::BillingConfig::batch_size`] services, all of one
//!   client together) is one transaction: invoices, lines, ledger entries, wallet payments
//!   and the services' next period commit together or not at all. A run killed at any point
//!   leaves whole batches; the next run finds the rest still due and bills exactly those.
//! - Each batch re-reads (and on PostgreSQL locks) its services inside the transaction and
//!   only advances a service from the period it read, so concurrent runs cannot both bill a
//!   period; a batch that lost a race is rolled back and retried.
//!
//! Reads stream: services are read a batch at a time in (client, id) order, so memory does
//! not grow with the book.

use crate::billing::{ClientTerms, Lookups, Party};
use crate::events::{self, Event, EventType, InvoiceData, PaymentData};
use crate::ledger::SystemAccount;
use crate::{App, AppError, Ctx};
use chrono::{Days, NaiveDate};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::cycle::{self, BillingCycle};
use keel_domain::ids::{ClientId, InvoiceId, ResellerId, ServiceId};
use keel_domain::invoice::{self, LineInput};
use keel_domain::ledger::{EntryBuilder, NewEntry};
use keel_domain::lifecycle::{InvoiceKind, InvoiceStatus, LineKind};
use keel_store::ledger as ledger_store;
use keel_store::{
    self as store, billing_run::BillingClientRow, billing_run::DueKey, invoices::NewInvoice,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A service far behind is caught up at most this many periods per run.
pub const MAX_PERIODS_PER_RUN: u32 = 36;

/// How many times a batch that raced another run is retried.
const BATCH_RETRIES: usize = 5;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub as_of: NaiveDate,
    pub dry_run: bool,
}

/// Totals of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub invoices: u64,
    pub total_minor: i64,
    pub tax_minor: i64,
    pub wallet_applied_minor: i64,
}

/// One invoice the run issued (or, in a dry run, would issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedInvoice {
    pub client_id: ClientId,
    pub number: Option<String>,
    pub due_date: NaiveDate,
    /// The day a daily billing run issues it: the due date less the client's lead days.
    pub issue_on: NaiveDate,
    pub currency: String,
    pub total: String,
    /// In minor units.
    pub total_minor: i64,
    pub lines: Vec<String>,
    /// The services it bills.
    pub services: Vec<ServiceId>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub as_of: Option<NaiveDate>,
    pub dry_run: bool,
    /// Services read as candidates.
    pub services: u64,
    /// (service, period) pairs billed.
    pub periods: u64,
    pub invoices: u64,
    pub batches: u64,
    /// Batches rolled back and retried because another run moved a service meanwhile.
    pub retries: u64,
    pub by_currency: BTreeMap<String, CurrencyTotals>,
    /// In a dry run: every invoice it would issue (at most 1,000 listed).
    pub planned: Vec<PlannedInvoice>,
}

impl RunReport {
    /// Adds the counts of one committed batch.
    fn absorb(&mut self, batch: RunReport, list_limit: usize) {
        self.periods += batch.periods;
        self.invoices += batch.invoices;
        for (currency, t) in batch.by_currency {
            let into = self.by_currency.entry(currency).or_default();
            into.invoices += t.invoices;
            into.total_minor += t.total_minor;
            into.tax_minor += t.tax_minor;
            into.wallet_applied_minor += t.wallet_applied_minor;
        }
        let room = list_limit.saturating_sub(self.planned.len());
        self.planned.extend(batch.planned.into_iter().take(room));
    }
}

/// Progress: services walked so far, of about `total`.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// Runs (or previews) the billing run. `progress` is called after every batch.
pub async fn run(
    app: &App,
    ctx: &Ctx,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, AppError> {
    run_listing(app, ctx, opts, 1000, progress).await
}

/// What a billing run as of `as_of` would issue, every invoice listed with the day it
/// would be issued (its due date less the client's lead days): the billing part of the
/// automation preview. Changes nothing.
pub async fn plan(app: &App, ctx: &Ctx, as_of: NaiveDate) -> Result<RunReport, AppError> {
    let opts = RunOptions {
        as_of,
        dry_run: true,
    };
    run_listing(app, ctx, &opts, usize::MAX, &|_| {}).await
}

async fn run_listing(
    app: &App,
    ctx: &Ctx,
    opts: &RunOptions,
    list_limit: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunReport, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let started = app.now();
    let max_lead = max_lead_days(app).await?;
    let horizon = opts
        .as_of
        .checked_add_days(Days::new(u64::from(max_lead)))
        .ok_or_else(|| {
            AppError::invalid("date_out_of_range", Some("as_of"), "date out of range")
        })?;
    let total = store::billing_run::count_due_services(&app.db, horizon).await?;
    let batch = app.billing.batch_size.clamp(1, 10_000) as u32;
    let mut report = RunReport {
        as_of: Some(opts.as_of),
        dry_run: opts.dry_run,
        ..RunReport::default()
    };
    let mut cursor = (0i64, 0i64);
    loop {
        let mut rows = read_batch(app, cursor, horizon, batch).await?;
        if rows.is_empty() {
            break;
        }
        let last = rows.last().map(|r| (r.client_id, r.id)).unwrap_or(cursor);
        let mut attempt = 0;
        loop {
            // Each attempt counts into its own report, merged only when the batch commits:
            // a rolled-back attempt billed nothing.
            let mut batch_report = RunReport::default();
            match run_batch(app, ctx, opts, list_limit, &rows, &mut batch_report).await {
                Ok(()) => {
                    report.absorb(batch_report, list_limit);
                    break;
                }
                Err(BatchError::Raced) if attempt < BATCH_RETRIES => {
                    attempt += 1;
                    report.retries += 1;
                    // Re-read the same rows: the other run may have advanced some of them.
                    rows = read_range(app, cursor, last, horizon, batch).await?;
                }
                Err(BatchError::Raced) => {
                    return Err(AppError::conflict(
                        "billing_run_contended",
                        "another billing run kept moving the same services; try again",
                    ));
                }
                Err(BatchError::App(e)) => return Err(e),
            }
        }
        report.services += rows.len() as u64;
        report.batches += 1;
        cursor = last;
        progress(Progress {
            done: report.services,
            total: total.max(report.services),
        });
    }
    if !opts.dry_run {
        let mut tx = app.db.begin().await?;
        store::billing_run::record_billing_run(
            &mut tx,
            opts.as_of,
            started,
            app.now(),
            report.services as i64,
            report.invoices as i64,
        )
        .await?;
        crate::audit::record(
            &mut tx,
            app,
            ctx,
            "billing.run",
            "billing_run",
            opts.as_of,
            serde_json::json!({ "invoices": report.invoices, "periods": report.periods, "services": report.services }),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// The next batch after `cursor`: about `batch` services, every client whole, so a client's
/// renewals due together can share invoices. The last client of a full read is left for the
/// next batch; a client that fills a read alone is read to its end (its batch is bigger).
async fn read_batch(
    app: &App,
    cursor: (i64, i64),
    horizon: NaiveDate,
    batch: u32,
) -> Result<Vec<DueKey>, AppError> {
    let mut rows = store::billing_run::due_services(&app.db, cursor, horizon, batch).await?;
    if rows.len() < batch as usize {
        return Ok(rows);
    }
    let last_client = rows.last().map(|r| r.client_id).unwrap_or_default();
    let keep = rows
        .iter()
        .take_while(|r| r.client_id != last_client)
        .count();
    if keep > 0 {
        rows.truncate(keep);
        return Ok(rows);
    }
    loop {
        let after = rows.last().map(|r| (r.client_id, r.id)).unwrap_or(cursor);
        let more = store::billing_run::due_services(&app.db, after, horizon, batch).await?;
        let read = more.len();
        let before = rows.len();
        rows.extend(more.into_iter().take_while(|r| r.client_id == last_client));
        if rows.len() - before < read || read < batch as usize {
            return Ok(rows);
        }
    }
}

/// The services still due in `(after, last]`: a batch read again for a retry.
async fn read_range(
    app: &App,
    mut after: (i64, i64),
    last: (i64, i64),
    horizon: NaiveDate,
    batch: u32,
) -> Result<Vec<DueKey>, AppError> {
    let mut rows = Vec::new();
    loop {
        let more = store::billing_run::due_services(&app.db, after, horizon, batch).await?;
        let read = more.len();
        let before = rows.len();
        rows.extend(more.into_iter().take_while(|r| (r.client_id, r.id) <= last));
        match rows.last() {
            Some(r) if read == batch as usize && rows.len() - before == read => {
                after = (r.client_id, r.id);
            }
            _ => return Ok(rows),
        }
    }
}

/// The largest lead time any client can have: the SQL horizon.
async fn max_lead_days(app: &App) -> Result<u32, AppError> {
    let stored = store::billing_run::max_invoice_lead_days(&app.db).await?;
    Ok(app
        .billing
        .invoice_lead_days
        .max(stored.and_then(|d| u32::try_from(d).ok()).unwrap_or(0)))
}

enum BatchError {
    Raced,
    App(AppError),
}

impl<E: Into<AppError>> From<E> for BatchError {
    fn from(e: E) -> BatchError {
        BatchError::App(e.into())
    }
}

/// An invoice being put together in a batch.
struct Draft {
    client: i64,
    reseller: Option<i64>,
    currency: Currency,
    due: NaiveDate,
    lines: Vec<LineInput>,
    /// A downgrade's credit held for this renewal (`downgrade_credit = "next_invoice"`):
    /// already in the client's wallet, paid from it to this invoice first.
    earmark: i64,
}

async fn run_batch(
    app: &App,
    _ctx: &Ctx,
    opts: &RunOptions,
    list_limit: usize,
    rows: &[DueKey],
    report: &mut RunReport,
) -> Result<(), BatchError> {
    let mut client_ids: Vec<i64> = rows.iter().map(|r| r.client_id).collect();
    client_ids.dedup();
    let mut tx = app.db.begin().await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let current = store::billing_run::lock_services(&mut tx, &ids).await?;
    // The clients' terms as of this transaction, like the services.
    let clients: HashMap<i64, BillingClientRow> =
        store::billing_run::billing_clients(&mut tx, &client_ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
    let mut lookups = Lookups::default();

    // 1. Plan: which periods of which service, grouped into invoices.
    let mut drafts: Vec<Draft> = Vec::new();
    let mut by_key: HashMap<(i64, Currency, NaiveDate), usize> = HashMap::new();
    let mut moves: Vec<store::services::Advance> = Vec::new();
    for read in rows {
        // Plan from the row as locked in this transaction, not as read before it: a
        // cancellation or a plan change committed in between must count. A service billed
        // or closed by someone else since the read is left alone.
        let Some(r) = current
            .get(&read.id)
            .filter(|r| r.next_period == read.next_period)
        else {
            continue;
        };
        let Some(client) = clients.get(&r.client_id) else {
            continue;
        };
        let terms = ClientTerms::of(client, &app.billing);
        let horizon = opts
            .as_of
            .checked_add_days(Days::new(u64::from(terms.invoice_lead_days)))
            .unwrap_or(opts.as_of);
        let cycle: BillingCycle = r.cycle.parse().map_err(|_| {
            AppError::internal(keel_store::StoreError::Corrupt(format!(
                "cycle {:?}",
                r.cycle
            )))
        })?;
        let currency = Currency::from_code(&r.currency)
            .map_err(|e| AppError::internal(keel_store::StoreError::Corrupt(e.to_string())))?;
        // Due dates keep the service's billing day, not a clamped anniversary's day.
        let anniversary = store::services::anniversary(r.anniversary, r.billing_day)
            .map_err(AppError::internal)?;
        let first = u32::try_from(r.next_period).unwrap_or(u32::MAX);
        let mut next = first;
        let mut last_key = None;
        while next - first < MAX_PERIODS_PER_RUN {
            let Some(period) = cycle::period_at(anniversary, cycle, next) else {
                break;
            };
            if period.start > horizon {
                break;
            }
            if r.cancel_on.is_some_and(|c| period.start >= c) {
                break;
            }
            let taxes = lookups
                .taxes(
                    &mut tx,
                    r.tax_class.as_deref(),
                    &client.country,
                    client.region.as_deref(),
                )
                .await?;
            let line = LineInput {
                kind: LineKind::Service,
                description: format!(
                    "{} ({} to {})",
                    r.label,
                    period.start,
                    period.end.pred_opt().unwrap_or(period.end)
                ),
                quantity: 1,
                unit: Money::new(r.recurring_minor, currency),
                discount: Money::zero(currency),
                service: Some(ServiceId(r.id)),
                period: Some((next, period)),
                taxes,
            };
            let key = if app.billing.group_renewals {
                (r.client_id, currency, period.start)
            } else {
                // One invoice per (service, period): a key no other line shares.
                (-(r.id), currency, period.start)
            };
            let at = *by_key.entry(key).or_insert_with(|| {
                drafts.push(Draft {
                    client: r.client_id,
                    reseller: r.reseller_id,
                    currency,
                    due: period.start,
                    lines: Vec::new(),
                    earmark: 0,
                });
                drafts.len() - 1
            });
            drafts[at].lines.push(line);
            last_key = Some(key);
            report.periods += 1;
            next += 1;
        }
        let mut credit_used = 0;
        if next > first {
            // A downgrade's credit held for the next renewal (already in the wallet, from the
            // credit note that took it back) pays this renewal from the wallet, up to its
            // amount; what is left waits for the next one.
            if r.pending_credit_minor > 0 {
                let used = r.pending_credit_minor.min(r.recurring_minor);
                if used > 0 {
                    let at = by_key[&last_key.expect("a period was billed")];
                    drafts[at].earmark += used;
                    credit_used = used;
                }
            }
            let due = cycle::due_date(anniversary, cycle, next);
            moves.push(store::services::Advance {
                id: ServiceId(r.id),
                expected: first,
                next_period: next,
                next_due_date: due,
                credit_used_minor: credit_used,
            });
        }
    }
    if drafts.is_empty() {
        return Ok(());
    }
    // Stable order: by client, then due date (the numbers follow it).
    drafts.sort_by_key(|a| (a.client, a.due));

    // 2. Compute and number.
    let first_number = if opts.dry_run {
        0
    } else {
        store::numbers::next_numbers(
            &mut tx,
            "invoice",
            &app.billing.invoice_number.scope(opts.as_of),
            drafts.len() as i64,
        )
        .await?
    };
    let seller = Party::seller(&app.billing.seller).to_json();
    let mut invoices: Vec<NewInvoice> = Vec::with_capacity(drafts.len());
    let earmarks: Vec<i64> = drafts.iter().map(|d| d.earmark).collect();
    for (i, d) in drafts.into_iter().enumerate() {
        let client = &clients[&d.client];
        let terms = ClientTerms::of(client, &app.billing);
        let computed =
            invoice::compute(d.currency, app.billing.tax_mode, terms.tax_exempt, d.lines)
                .map_err(|e| AppError::invalid(e.code(), None, e.to_string()))?;
        let number = (!opts.dry_run).then(|| {
            app.billing
                .invoice_number
                .render(opts.as_of, (first_number + i as i64) as u64)
        });
        let rate = lookups.rate(&mut tx, app, d.currency).await?;
        invoices.push(NewInvoice {
            client_id: ClientId(d.client),
            reseller_id: d.reseller.map(ResellerId),
            number,
            kind: InvoiceKind::Standard,
            status: InvoiceStatus::Unpaid,
            currency: d.currency,
            tax_mode: app.billing.tax_mode,
            issue_date: Some(opts.as_of),
            due_date: Some(d.due),
            subtotal: computed.subtotal,
            tax: computed.tax,
            total: computed.total,
            exchange_rate: rate,
            base_currency: Some(app.billing.base_currency),
            buyer: Some(Party::buyer(client).to_json()),
            seller: Some(seller.clone()),
            issue_entry: None,
            lines: computed.lines,
        });
    }
    for inv in &invoices {
        let t = report
            .by_currency
            .entry(inv.currency.code().to_string())
            .or_default();
        t.invoices += 1;
        t.total_minor += inv.total.minor();
        t.tax_minor += inv.tax.minor();
    }
    report.invoices += invoices.len() as u64;
    if opts.dry_run {
        for inv in &invoices {
            if report.planned.len() >= list_limit {
                break;
            }
            let due_date = inv.due_date.unwrap_or(opts.as_of);
            let lead = clients
                .get(&inv.client_id.get())
                .map(|c| ClientTerms::of(c, &app.billing).invoice_lead_days)
                .unwrap_or(app.billing.invoice_lead_days);
            let mut services: Vec<ServiceId> =
                inv.lines.iter().filter_map(|l| l.input.service).collect();
            services.dedup();
            report.planned.push(PlannedInvoice {
                client_id: inv.client_id,
                number: None,
                due_date,
                issue_on: due_date
                    .checked_sub_days(Days::new(u64::from(lead)))
                    .unwrap_or(due_date),
                currency: inv.currency.code().to_string(),
                total: inv.total.plain_amount(),
                total_minor: inv.total.minor(),
                lines: inv
                    .lines
                    .iter()
                    .map(|l| l.input.description.clone())
                    .collect(),
                services,
            });
        }
        // Nothing was written; dropping the transaction rolls back the reads' locks.
        return Ok(());
    }

    // 3. Write: issue entries (keyed by the invoice numbers, so the invoices are inserted
    // already linked to them), invoices and lines, wallet payments, the services' next period.
    let now = app.now();
    let mut entries: Vec<NewEntry> = Vec::with_capacity(invoices.len());
    let mut entry_of: Vec<(usize, usize)> = Vec::new();
    for (at, inv) in invoices.iter().enumerate() {
        let number = inv.number.as_deref().unwrap_or_default();
        if let Some(e) = crate::billing::issue_entry(
            &mut tx,
            app,
            &mut lookups,
            format!("invoice:issue:{number}"),
            format!("Invoice {number}"),
            inv.kind,
            inv.subtotal,
            inv.tax,
            inv.total,
        )
        .await?
        {
            entry_of.push((at, entries.len()));
            entries.push(e);
        }
    }
    let posted = ledger_store::post_batch(&mut tx, &entries, now).await?;
    for (at, i) in entry_of {
        invoices[at].issue_entry = Some(posted[i].0);
    }
    let ids = match store::invoices::insert_invoices(&mut tx, &invoices, now).await {
        Ok(ids) => ids,
        // Another run billed one of these periods after our read: start the batch again.
        Err(keel_store::StoreError::Conflict { constraint })
            if constraint == "invoice_lines_service_period_key" =>
        {
            return Err(BatchError::Raced);
        }
        Err(e) => return Err(e.into()),
    };
    // The clients' "invoice created" messages: one job for the batch, in its transaction,
    // that renders and queues them after it (rendering here would slow the run down).
    if let Some(first) = ids.first() {
        keel_store::jobs::enqueue(
            &mut tx,
            &crate::notify::issued_job(&ids, now)
                .unique(format!("notification:issued:{}", first.get())),
            now,
        )
        .await?;
    }
    // Webhooks: one read of the subscriptions for the batch; nothing written when no
    // endpoint wants these events.
    let subs = events::subscriptions(&mut tx).await?;
    if !subs
        .endpoints_for(EventType::InvoiceIssued.as_str())
        .is_empty()
    {
        for (inv, id) in invoices.iter().zip(&ids) {
            let data = InvoiceData::of_new(*id, inv, Money::zero(inv.currency));
            events::emit_to(&mut tx, app, &subs, Event::InvoiceIssued(data)).await?;
        }
    }

    // Wallet auto-apply, as far as each wallet's available balance goes; for clients without
    // it, only the downgrade credits held for these renewals.
    let auto_apply = |c: &i64| {
        clients
            .get(c)
            .is_some_and(|row| ClientTerms::of(row, &app.billing).wallet_auto_apply)
    };
    let earmarked: std::collections::HashSet<i64> = invoices
        .iter()
        .zip(&earmarks)
        .filter(|(_, e)| **e > 0)
        .map(|(i, _)| i.client_id.get())
        .collect();
    let paying: Vec<i64> = client_ids
        .iter()
        .copied()
        .filter(|c| auto_apply(c) || earmarked.contains(c))
        .collect();
    if !paying.is_empty() {
        let mut wallets = store::billing_run::wallets_of(&mut tx, &paying).await?;
        let mut pay_entries = Vec::new();
        let mut pays: Vec<(InvoiceId, ClientId, Option<ResellerId>, Money, String)> = Vec::new();
        for ((inv, id), earmark) in invoices.iter().zip(&ids).zip(&earmarks) {
            let Some((wallet, available)) =
                wallets.get_mut(&(inv.client_id.get(), inv.currency.code().to_string()))
            else {
                continue;
            };
            let cap = if auto_apply(&inv.client_id.get()) {
                inv.total.minor()
            } else {
                (*earmark).min(inv.total.minor())
            };
            let amount = (*available).min(cap);
            if amount <= 0 {
                continue;
            }
            *available -= amount;
            let amount = Money::new(amount, inv.currency);
            let receivable = lookups
                .account(&mut tx, app, SystemAccount::Receivable, inv.currency)
                .await?;
            let reference = format!("{id}:0:auto");
            pay_entries.push(
                EntryBuilder::new(
                    crate::settlement::wallet_payment_key(&reference),
                    format!(
                        "Wallet payment of invoice {}",
                        inv.number.as_deref().unwrap_or_default()
                    ),
                )
                .debit(keel_domain::ids::AccountId(*wallet), amount)
                .credit(receivable, amount)
                .build()
                .map_err(AppError::from)?,
            );
            pays.push((*id, inv.client_id, inv.reseller_id, amount, reference));
            report
                .by_currency
                .entry(inv.currency.code().to_string())
                .or_default()
                .wallet_applied_minor += amount.minor();
        }
        if !pays.is_empty() {
            // The balances were read without a lock: a wallet spent meanwhile refuses the
            // batch of wallet payments (the savepoint leaves nothing behind). Applying the
            // wallet is best effort: the invoices then stay payable, the renewals stand.
            let posted = match ledger_store::post_batch(&mut tx, &pay_entries, now).await {
                Ok(p) => p,
                Err(keel_store::StoreError::Ledger(
                    keel_domain::ledger::LedgerError::InsufficientFunds { .. },
                )) => {
                    tracing::warn!(
                        payments = pays.len(),
                        "wallet auto-apply skipped for a batch: a wallet was spent meanwhile"
                    );
                    for (_, _, _, amount, _) in &pays {
                        if let Some(t) = report.by_currency.get_mut(amount.currency().code()) {
                            t.wallet_applied_minor -= amount.minor();
                        }
                    }
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
            let pays = if posted.is_empty() { Vec::new() } else { pays };
            let rows: Vec<store::payments::WalletPayment> = pays
                .iter()
                .zip(&posted)
                .map(|((inv, client, reseller, amount, reference), (entry, _))| {
                    store::payments::WalletPayment {
                        invoice: *inv,
                        client: *client,
                        reseller: *reseller,
                        amount: *amount,
                        entry: *entry,
                        reference: reference.clone(),
                        received_on: opts.as_of,
                    }
                })
                .collect();
            store::payments::insert_wallet_payments(&mut tx, &rows, "billing run", now).await?;
            let amounts: Vec<(InvoiceId, i64)> = pays
                .iter()
                .map(|(inv, _, _, a, _)| (*inv, a.minor()))
                .collect();
            store::payments::add_payments_bulk(&mut tx, &amounts, now).await?;
            let wants_payment = !subs
                .endpoints_for(EventType::PaymentReceived.as_str())
                .is_empty();
            let wants_paid = !subs
                .endpoints_for(EventType::InvoicePaid.as_str())
                .is_empty();
            if wants_payment || wants_paid {
                let issued: HashMap<InvoiceId, &NewInvoice> =
                    ids.iter().copied().zip(invoices.iter()).collect();
                let received: Vec<(InvoiceData, PaymentData)> = pays
                    .iter()
                    .filter_map(|(id, _, _, amount, reference)| {
                        let invoice = InvoiceData::of_new(*id, issued.get(id)?, *amount);
                        let payment = PaymentData::of(&invoice, "wallet", reference, *amount);
                        Some((invoice, payment))
                    })
                    .collect();
                crate::settlement::received_in_batch(&mut tx, app, &subs, &received).await?;
            }
        }
    }

    let moved = store::services::advance_services(&mut tx, &moves, now).await?;
    if moved != moves.len() as u64 {
        // Another run advanced one of them between our lock and now (SQLite has no row
        // locks): roll back and retry.
        return Err(BatchError::Raced);
    }
    tx.commit().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The job

/// The job kind of the billing run (`[schedules.billing_run]` fires it daily by default).
pub const BILLING_RUN: &str = "billing.run";

fn billing_run_job<'a>(
    env: &'a keel_jobs::Env,
    job: &'a keel_store::jobs::JobRecord,
) -> futures::future::BoxFuture<'a, Result<(), keel_jobs::JobError>> {
    Box::pin(async move {
        let app = crate::jobs::app_of(env)?;
        let as_of = crate::jobs::as_of(app, job)?;
        let report = run(
            app,
            &Ctx::system(&format!("job {}", job.id)),
            &RunOptions {
                as_of,
                dry_run: false,
            },
            &|_| {},
        )
        .await?;
        tracing::info!(job = job.id, %as_of, invoices = report.invoices, periods = report.periods, "billing run done");
        Ok(())
    })
}

inventory::submit! { keel_jobs::Handler { kind: BILLING_RUN, run: billing_run_job } }
