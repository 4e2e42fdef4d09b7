//! Ledger use cases: reading accounts and entries, manual adjustments and reversals by
//! staff, and the standard accounts (wallets, receivables, adjustments) other use cases post to.

use crate::audit::record;
use crate::{App, AppError, Ctx};
use keel_domain::access::{Actor, Permission};
use keel_domain::currency::Currency;
use keel_domain::ids::{AccountId, ClientId, EntryId};
use keel_domain::ledger::{Account, AccountKind, AccountOwner, EntryBuilder, Side};
use keel_domain::money::Money;
use keel_domain::text::limits;
use keel_store::ledger::{self as store, AccountFilter, NewAccount, Posted, StoredEntry};
use keel_store::{Page, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// An amount as the API shows it: exact minor units, the decimal text, the currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Amount {
    pub amount_minor: i64,
    /// Decimal text at the currency's exponent ("12.50", "1000", "1.250").
    pub amount: String,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
}

impl From<Money> for Amount {
    fn from(m: Money) -> Amount {
        Amount {
            amount_minor: m.minor(),
            amount: m.plain_amount(),
            currency: m.currency(),
        }
    }
}

/// An account as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountView {
    pub id: AccountId,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
    pub client_id: Option<ClientId>,
    pub reseller_id: Option<keel_domain::ids::ResellerId>,
    /// The floor in natural terms: the balance may not go below minus this. Absent: unbounded.
    pub credit_limit_minor: Option<i64>,
    /// Debits minus credits.
    pub raw_balance_minor: i64,
    /// The balance on the account's normal side (what a wallet holder calls the balance).
    pub balance: Amount,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> AccountView {
        let (client_id, reseller_id) = match a.owner {
            Some(AccountOwner::Client(c)) => (Some(c), None),
            Some(AccountOwner::Reseller(r)) => (None, Some(r)),
            None => (None, None),
        };
        AccountView {
            balance: a.natural_balance().into(),
            id: a.id,
            code: a.code,
            name: a.name,
            kind: a.kind,
            currency: a.currency,
            client_id,
            reseller_id,
            credit_limit_minor: a.credit_limit_minor,
            raw_balance_minor: a.balance_minor,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PostingView {
    pub account_id: AccountId,
    pub side: Side,
    pub amount: Amount,
}

/// A journal entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EntryView {
    pub id: EntryId,
    pub idempotency_key: String,
    pub memo: String,
    pub reverses: Option<EntryId>,
    pub reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub postings: Vec<PostingView>,
}

impl From<StoredEntry> for EntryView {
    fn from(e: StoredEntry) -> EntryView {
        EntryView {
            id: e.id,
            idempotency_key: e.idempotency_key,
            memo: e.memo,
            reverses: e.reverses,
            reason: e.reason,
            created_at: e.created_at,
            postings: e
                .postings
                .into_iter()
                .map(|p| PostingView {
                    account_id: p.account,
                    side: p.side,
                    amount: p.amount.into(),
                })
                .collect(),
        }
    }
}

pub async fn list_accounts(
    app: &App,
    ctx: &Ctx,
    filter: AccountFilter,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<AccountView>, AppError> {
    ctx.require(Permission::LedgerRead)?;
    Ok(store::list_accounts(
        &app.db,
        filter,
        crate::cursor(cursor)?,
        crate::page_limit(limit)?,
    )
    .await?
    .map(AccountView::from))
}

pub async fn get_account(app: &App, ctx: &Ctx, id: AccountId) -> Result<AccountView, AppError> {
    ctx.require(Permission::LedgerRead)?;
    store::get_account(&app.db, id)
        .await?
        .map(AccountView::from)
        .ok_or(AppError::NotFound { what: "account" })
}

pub async fn list_entries(
    app: &App,
    ctx: &Ctx,
    account: Option<AccountId>,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<EntryView>, AppError> {
    ctx.require(Permission::LedgerRead)?;
    Ok(store::list_entries(
        &app.db,
        account,
        crate::cursor(cursor)?,
        crate::page_limit(limit)?,
    )
    .await?
    .map(EntryView::from))
}

pub async fn get_entry(app: &App, ctx: &Ctx, id: EntryId) -> Result<EntryView, AppError> {
    ctx.require(Permission::LedgerRead)?;
    store::get_entry(&app.db, id)
        .await?
        .map(EntryView::from)
        .ok_or(AppError::NotFound { what: "entry" })
}

/// One posting of a manual adjustment, amounts as decimal text in the currency's units.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingInput {
    pub account_id: AccountId,
    pub side: Side,
    /// Positive decimal text, at most the currency's decimals: "25.00", "1000" (JPY), "1.250" (BHD).
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: String,
    #[schema(value_type = keel_domain::currency::Currency)]
    pub currency: Currency,
}

/// A manual journal entry by staff.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    /// Why the adjustment is made; kept on the entry and in the audit log.
    #[schema(schema_with = keel_domain::text::schema::memo)]
    pub memo: String,
    #[schema(min_items = 2)]
    pub postings: Vec<PostingInput>,
}

/// The identity an idempotency key is scoped to.
pub fn principal(actor: &Actor) -> String {
    match actor {
        Actor::Key { key, .. } => format!("key:{key}"),
        Actor::Staff { staff, .. } => format!("staff:{staff}"),
        Actor::System { label } => format!("system:{label}"),
    }
}

/// A memo (or a reversal's reason) is free text by [`limits::MEMO`].
fn memo_rule(field: &str, memo: &str) -> Result<(), AppError> {
    AppError::check_text(field, memo, limits::MEMO)
}

/// Posts a manual, balanced entry. `idempotency_key` (from the request) makes a retry return
/// the original entry; the key is scoped to the actor.
pub async fn adjust(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    input: AdjustmentInput,
) -> Result<(EntryView, bool), AppError> {
    ctx.require(Permission::LedgerWrite)?;
    memo_rule("memo", &input.memo)?;
    let mut builder = EntryBuilder::new(
        format!("manual:{}:{idempotency_key}", principal(&ctx.actor)),
        input.memo.trim(),
    );
    for (i, p) in input.postings.iter().enumerate() {
        let amount = Money::parse(&p.amount, p.currency).map_err(|e| AppError::Invalid {
            code: e.code(),
            field: Some(format!("postings[{i}].amount")),
            message: e.to_string(),
        })?;
        builder = builder.post(p.account_id, p.side, amount);
    }
    let entry = builder.build()?;
    let mut tx = app.db.begin().await?;
    for (i, p) in input.postings.iter().enumerate() {
        refuse_control_account(&mut tx, p.account_id, &format!("postings[{i}].account_id")).await?;
    }
    let posted = store::post(&mut tx, &entry, app.now()).await?;
    if posted.created {
        record(
            &mut tx,
            app,
            ctx,
            "ledger.adjust",
            "entry",
            posted.entry.id,
            json!({ "memo": entry.memo(), "postings": entry.postings().len() }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok((posted.entry.into(), posted.created))
}

/// The accounts only documents move: receivables follow the open invoices and tax payable
/// the tax on invoices and credit notes, and `keel ledger check` reconciles both with
/// them. A manual entry (or the reversal of an invoice's or a payment's entry) posting to
/// one would leave the books disagreeing with the documents, so it is refused: correct
/// them through the documents (cancel the invoice, issue a credit note, record or refund
/// the payment).
async fn refuse_control_account(
    tx: &mut Tx,
    account: AccountId,
    field: &str,
) -> Result<(), AppError> {
    use keel_store::ledger::system_codes::{RECEIVABLE, TAX_PAYABLE};
    let Some(a) = store::account(tx, account).await? else {
        return Ok(()); // posting refuses an unknown account with its own error
    };
    for (prefix, what) in [(RECEIVABLE, "receivables"), (TAX_PAYABLE, "tax payable")] {
        if a.code
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(':'))
        {
            return Err(AppError::Conflict {
                code: "control_account",
                message: format!(
                    "account {} ({}) holds {what}, which only invoices, credit notes and \
                     payments move; correct it through them ({field})",
                    a.id, a.code
                ),
            });
        }
    }
    Ok(())
}

/// Reverses an entry with a reason. Entries that post to receivables or tax payable are
/// the documents' own and are refused (see [`refuse_control_account`]).
pub async fn reverse(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    of: EntryId,
    reason: &str,
) -> Result<(EntryView, bool), AppError> {
    ctx.require(Permission::LedgerWrite)?;
    memo_rule("reason", reason)?;
    let mut tx = app.db.begin().await?;
    let key = format!("reverse:{}:{idempotency_key}", principal(&ctx.actor));
    // A retry of a reversal already made answers with it, whatever the accounts.
    if store::entry_by_key(&mut tx, &key).await?.is_none() {
        let original = store::entry(&mut tx, of).await?.ok_or(AppError::Ledger(
            keel_domain::ledger::LedgerError::UnknownEntry(of),
        ))?;
        for p in &original.postings {
            refuse_control_account(&mut tx, p.account, "id").await?;
        }
    }
    let posted = store::reverse(&mut tx, of, &key, reason, app.now()).await?;
    if posted.created {
        record(
            &mut tx,
            app,
            ctx,
            "ledger.reverse",
            "entry",
            posted.entry.id,
            json!({ "reverses": of, "reason": reason }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok((posted.entry.into(), posted.created))
}

/// The standard accounts of the host, one per currency, coded by the prefixes in
/// [`keel_store::ledger::system_codes`] (which `keel ledger check` reconciles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemAccount {
    /// What clients owe (invoices issued, not yet paid).
    Receivable,
    /// Money received but not yet settled to the bank (gateways, manual payments).
    Clearing,
    /// Manual corrections and the other side of staff wallet credits.
    Adjustments,
    Revenue,
    TaxPayable,
}

impl SystemAccount {
    fn parts(self) -> (&'static str, &'static str, AccountKind) {
        match self {
            SystemAccount::Receivable => (
                keel_store::ledger::system_codes::RECEIVABLE,
                "Accounts receivable",
                AccountKind::Asset,
            ),
            SystemAccount::Clearing => (
                keel_store::ledger::system_codes::CLEARING,
                "Payments clearing",
                AccountKind::Asset,
            ),
            SystemAccount::Adjustments => (
                keel_store::ledger::system_codes::ADJUSTMENTS,
                "Manual adjustments",
                AccountKind::Equity,
            ),
            SystemAccount::Revenue => (
                keel_store::ledger::system_codes::REVENUE,
                "Sales revenue",
                AccountKind::Revenue,
            ),
            SystemAccount::TaxPayable => (
                keel_store::ledger::system_codes::TAX_PAYABLE,
                "Tax payable",
                AccountKind::Liability,
            ),
        }
    }
}

/// The host's account for `purpose` in `currency`, created on first use.
pub async fn system_account(
    tx: &mut Tx,
    app: &App,
    purpose: SystemAccount,
    currency: Currency,
) -> Result<Account, AppError> {
    let (code, name, kind) = purpose.parts();
    let new = NewAccount {
        code: format!("{code}:{currency}"),
        name: format!("{name} ({currency})"),
        kind,
        currency,
        owner: None,
        credit_limit_minor: None,
    };
    Ok(store::ensure_account(tx, &new, app.now()).await?)
}

/// A client's wallet in `currency` (a liability of the host), created on first use with no
/// credit: it cannot go below zero until a credit limit is set.
pub async fn wallet(
    tx: &mut Tx,
    app: &App,
    client: ClientId,
    currency: Currency,
) -> Result<Account, AppError> {
    Ok(store::ensure_account(tx, &wallet_account(client, currency), app.now()).await?)
}

/// The account [`wallet`] creates: its code, name, kind and floor (also what a bulk seed
/// inserts).
pub fn wallet_account(client: ClientId, currency: Currency) -> NewAccount {
    NewAccount {
        code: keel_domain::ledger::wallet_code(client, currency),
        name: format!("Wallet of client {client} ({currency})"),
        kind: AccountKind::Liability,
        currency,
        owner: Some(AccountOwner::Client(client)),
        credit_limit_minor: Some(0),
    }
}

/// Staff credit (positive) or debit (negative) of a client's wallet, balanced against the
/// adjustments account. Used by the demo and by later wallet features.
pub async fn wallet_adjust(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    client: ClientId,
    amount: Money,
    reason: &str,
) -> Result<Posted, AppError> {
    ctx.require(Permission::LedgerWrite)?;
    memo_rule("reason", reason)?;
    if amount.is_zero() {
        return Err(AppError::invalid(
            "invalid_amount",
            Some("amount"),
            "the amount must not be zero",
        ));
    }
    let mut tx = app.db.begin().await?;
    keel_store::clients::client_for_update(&mut tx, ctx.actor.scope(), client)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let wallet = wallet(&mut tx, app, client, amount.currency()).await?;
    let adjustments =
        system_account(&mut tx, app, SystemAccount::Adjustments, amount.currency()).await?;
    let magnitude = if amount.is_negative() {
        amount.checked_neg()?
    } else {
        amount
    };
    let builder = EntryBuilder::new(
        format!("wallet:{}:{idempotency_key}", principal(&ctx.actor)),
        reason.trim(),
    );
    let entry = if amount.is_positive() {
        builder
            .debit(adjustments.id, magnitude)
            .credit(wallet.id, magnitude)
    } else {
        builder
            .debit(wallet.id, magnitude)
            .credit(adjustments.id, magnitude)
    }
    .build()?;
    let posted = store::post(&mut tx, &entry, app.now()).await?;
    if posted.created {
        record(
            &mut tx,
            app,
            ctx,
            "wallet.adjust",
            "client",
            client,
            json!({ "amount": Amount::from(amount), "reason": reason }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(posted)
}
