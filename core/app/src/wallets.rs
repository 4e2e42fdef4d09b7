//! Client wallets: one liability account per client and currency
//! (`wallet:client:{id}:{CUR}`, see [`crate::ledger::wallet`]), read as balances and as a
//! history of the wallet account's postings, credited and debited by staff, and given a
//! credit limit.
//!
//! Rules kept here:
//! - A wallet's history is read from the ledger's postings; there is no wallet table.
//! - Staff credits and debits post against the host's adjustments account
//!   (adjustments Dr / wallet Cr, and the other way round), exactly as
//!   [`crate::ledger::wallet_adjust`] does and under the same entry key
//!   (`wallet:{principal}:{idempotency key}`), so a retry through either replays the entry
//!   instead of moving money twice.
//! - The floor (balance + credit limit ≥ 0) is enforced by the ledger's conditional balance
//!   update, never by a read-then-write here: concurrent debits and wallet payments cannot
//!   take a wallet below it. A refusal on the wallet is `insufficient_wallet_balance`.
//! - Reads go through the caller's tenancy scope: a client key sees its own wallets only, and
//!   another client's are "client not found".

use crate::audit::record;
use crate::billing::parse_amount;
use crate::ledger::{Amount, EntryView, SystemAccount, principal, system_account, wallet};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::access::Permission;
use keel_domain::currency::Currency;
use keel_domain::ids::{AccountId, ClientId, EntryId};
use keel_domain::ledger::{Account, AccountKind, EntryBuilder, LedgerError, Side};
use keel_domain::money::Money;
use keel_store::ledger::{self as store, AccountFilter};
use keel_store::{Cursor, Page, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::VecDeque;
use utoipa::ToSchema;

// ---------------------------------------------------------------------------------------
// Views

/// One wallet of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WalletView {
    pub account_id: AccountId,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
    /// What the host owes the client (negative when the client has spent on credit).
    pub balance: Amount,
    /// How far below zero the wallet may go. Absent: no floor (Keel never leaves a wallet so).
    pub credit_limit: Option<Amount>,
    /// Balance + credit limit: what can be spent now. Absent when there is no floor.
    pub available: Option<Amount>,
}

impl From<Account> for WalletView {
    fn from(a: Account) -> WalletView {
        let balance = a.natural_balance();
        let limit = a.credit_limit_minor.map(|l| Money::new(l, a.currency));
        WalletView {
            account_id: a.id,
            currency: a.currency,
            balance: balance.into(),
            credit_limit: limit.map(Amount::from),
            available: limit
                .map(|l| Money::new(balance.minor().saturating_add(l.minor()), a.currency).into()),
        }
    }
}

/// A client's wallets, one per currency it has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WalletsView {
    pub client_id: ClientId,
    /// Ordered by currency code. A currency appears once its wallet has been used (credited,
    /// topped up, paid from or given a credit limit).
    pub items: Vec<WalletView>,
}

/// One posting of a wallet's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WalletPostingView {
    pub entry_id: EntryId,
    pub created_at: DateTime<Utc>,
    /// The entry's memo ("Invoice INV-2027-00001 paid from the wallet", a staff reason, …).
    pub memo: String,
    /// `credit`: money into the wallet; `debit`: money out of it.
    pub side: Side,
    pub amount: Amount,
    /// The wallet's balance right after this posting.
    pub balance_after: Amount,
    /// Set when the entry reverses another one.
    pub reverses: Option<EntryId>,
    /// The reason of a reversal.
    pub reason: Option<String>,
}

/// A staff credit or debit and the wallet after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WalletMoveView {
    pub entry: EntryView,
    pub wallet: WalletView,
}

// ---------------------------------------------------------------------------------------
// Inputs

/// A staff credit or debit of a wallet.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletMoveInput {
    /// Positive decimal text, at most the currency's decimals: "25.00", "1000" (JPY).
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: String,
    /// Why; kept as the entry's memo and in the audit log (1 to 500 characters).
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
}

/// A wallet's credit limit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimitInput {
    /// Decimal text, 0 or more: how far below zero the wallet may go.
    #[schema(schema_with = keel_domain::money::schema::non_negative_amount)]
    pub credit_limit: String,
}

// ---------------------------------------------------------------------------------------
// Reading

/// The client's wallets (`billing:read`, in the caller's scope).
pub async fn list(app: &App, ctx: &Ctx, client: ClientId) -> Result<WalletsView, AppError> {
    ctx.require(Permission::BillingRead)?;
    visible_client(app, ctx, client).await?;
    let mut items: Vec<WalletView> = wallets_of(app, client)
        .await?
        .into_iter()
        .map(WalletView::from)
        .collect();
    items.sort_by(|a, b| a.currency.code().cmp(b.currency.code()));
    Ok(WalletsView {
        client_id: client,
        items,
    })
}

/// The postings of the client's wallet in `currency`, newest first. The cursor is the
/// `next_cursor` of the previous page; the page holds `limit` entries (an entry that posts
/// to the wallet twice shows as two postings). A currency the client never used is an empty
/// history.
///
/// Cost: the ledger store lists an account's entries oldest first only, so each page walks
/// the wallet's entries from the first one up to the cursor (keeping only a page of them in
/// memory) — linear in the wallet's entry count. The running balance comes free of that
/// walk. A store query paging an account's postings newest first would make this constant.
pub async fn history(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    currency: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<WalletPostingView>, AppError> {
    ctx.require(Permission::BillingRead)?;
    let currency = parse_wallet_currency(currency)?;
    let before = crate::cursor(cursor)?.map(|c| c.after_id);
    let limit = crate::page_limit(limit)? as usize;
    visible_client(app, ctx, client).await?;
    let code = keel_domain::ledger::wallet_code(client, currency);
    let Some(account) = wallets_of(app, client)
        .await?
        .into_iter()
        .find(|a| a.code == code)
    else {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
        });
    };
    let sign = account.kind.normal_sign();
    // The last `limit + 1` entries before the cursor, oldest first; the extra one only says
    // that an older page exists.
    let mut window: VecDeque<Vec<WalletPostingView>> = VecDeque::with_capacity(limit + 1);
    let mut running: i64 = 0;
    let mut page_cursor: Option<Cursor> = None;
    'walk: loop {
        let page =
            store::list_entries(&app.db, Some(account.id), page_cursor, crate::MAX_PAGE).await?;
        for entry in page.items {
            if before.is_some_and(|b| entry.id.get() >= b) {
                break 'walk;
            }
            let mut postings = Vec::new();
            for p in entry.postings.iter().filter(|p| p.account == account.id) {
                running = running
                    .checked_add(p.side.sign() * p.amount.minor() * sign)
                    .ok_or(keel_domain::MoneyError::Overflow)?;
                postings.push(WalletPostingView {
                    entry_id: entry.id,
                    created_at: entry.created_at,
                    memo: entry.memo.clone(),
                    side: p.side,
                    amount: p.amount.into(),
                    balance_after: Money::new(running, account.currency).into(),
                    reverses: entry.reverses,
                    reason: entry.reason.clone(),
                });
            }
            window.push_back(postings);
            if window.len() > limit + 1 {
                window.pop_front();
            }
        }
        match page.next_cursor.as_deref().and_then(Cursor::decode) {
            Some(next) => page_cursor = Some(next),
            None => break,
        }
    }
    let more = window.len() > limit;
    if more {
        window.pop_front();
    }
    let next_cursor = if more {
        window
            .front()
            .and_then(|postings| postings.first())
            .map(|p| {
                Cursor {
                    after_id: p.entry_id.get(),
                }
                .encode()
            })
    } else {
        None
    };
    let items = window
        .into_iter()
        .rev()
        .flat_map(|postings| postings.into_iter().rev())
        .collect();
    Ok(Page { items, next_cursor })
}

// ---------------------------------------------------------------------------------------
// Writing

/// Staff credit of a wallet: adjustments Dr / wallet Cr. Returns the move and whether this
/// call posted it (`false`: the key was used before for this same move, which is returned).
pub async fn credit(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    client: ClientId,
    currency: &str,
    input: &WalletMoveInput,
) -> Result<(WalletMoveView, bool), AppError> {
    move_money(
        app,
        ctx,
        idempotency_key,
        client,
        currency,
        input,
        Side::Credit,
    )
    .await
}

/// Staff debit of a wallet: wallet Dr / adjustments Cr. Refused with
/// `insufficient_wallet_balance` (nothing changed) when it would take the wallet below
/// minus its credit limit.
pub async fn debit(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    client: ClientId,
    currency: &str,
    input: &WalletMoveInput,
) -> Result<(WalletMoveView, bool), AppError> {
    move_money(
        app,
        ctx,
        idempotency_key,
        client,
        currency,
        input,
        Side::Debit,
    )
    .await
}

/// Sets how far below zero the client's wallet in `currency` may go (0: not at all). A limit
/// below what the wallet has already spent on credit is refused with
/// `credit_limit_below_spent`.
pub async fn set_credit_limit(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    currency: &str,
    input: &CreditLimitInput,
) -> Result<WalletView, AppError> {
    require_staff_write(ctx)?;
    let currency = parse_wallet_currency(currency)?;
    let limit = parse_amount(&input.credit_limit, currency, "credit_limit")?;
    if limit.is_negative() {
        return Err(AppError::invalid(
            "invalid_credit_limit",
            Some("credit_limit"),
            "the credit limit must be 0 or more",
        ));
    }
    let mut tx = app.db.begin().await?;
    keel_store::clients::client_for_update(&mut tx, ctx.actor.scope(), client)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let before = wallet(&mut tx, app, client, currency).await?;
    let after = match store::set_credit_limit(&mut tx, before.id, Some(limit.minor())).await {
        Ok(a) => a,
        Err(StoreError::Ledger(LedgerError::InsufficientFunds { available, .. })) => {
            let spent = Money::new(available.minor().saturating_neg(), currency);
            return Err(AppError::conflict(
                "credit_limit_below_spent",
                format!(
                    "the wallet has already spent {} {currency} on credit; the credit limit cannot be lower than that",
                    spent.format_amount()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if before.credit_limit_minor != after.credit_limit_minor {
        record(
            &mut tx,
            app,
            ctx,
            "wallet.credit_limit",
            "client",
            client,
            json!({
                "currency": currency,
                "before": before.credit_limit_minor.map(|m| Amount::from(Money::new(m, currency))),
                "after": Amount::from(limit),
            }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after.into())
}

#[allow(clippy::too_many_arguments)]
async fn move_money(
    app: &App,
    ctx: &Ctx,
    idempotency_key: &str,
    client: ClientId,
    currency: &str,
    input: &WalletMoveInput,
    wallet_side: Side,
) -> Result<(WalletMoveView, bool), AppError> {
    require_staff_write(ctx)?;
    if idempotency_key.trim().is_empty() {
        return Err(AppError::invalid(
            "invalid_idempotency_key",
            None,
            "moving money needs an idempotency key, so a retry cannot move it twice",
        ));
    }
    let currency = parse_wallet_currency(currency)?;
    let amount = parse_amount(&input.amount, currency, "amount")?;
    if !amount.is_positive() {
        return Err(AppError::invalid(
            "invalid_amount",
            Some("amount"),
            "the amount must be more than zero",
        ));
    }
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    keel_store::clients::client_for_update(&mut tx, ctx.actor.scope(), client)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let account = wallet(&mut tx, app, client, currency).await?;
    let adjustments = system_account(&mut tx, app, SystemAccount::Adjustments, currency).await?;
    // The key scheme of `ledger::wallet_adjust`: the same key and move replays through either.
    let builder = EntryBuilder::new(
        format!("wallet:{}:{idempotency_key}", principal(&ctx.actor)),
        reason,
    );
    let entry = match wallet_side {
        Side::Credit => builder
            .debit(adjustments.id, amount)
            .credit(account.id, amount),
        Side::Debit => builder
            .debit(account.id, amount)
            .credit(adjustments.id, amount),
    }
    .build()?;
    // No balance pre-check: the store's conditional update is the one that holds under
    // concurrency, and it runs after the key lookup, so a retry of a debit that emptied the
    // wallet still replays instead of being refused.
    let posted = match store::post(&mut tx, &entry, app.now()).await {
        Ok(p) => p,
        Err(StoreError::Ledger(LedgerError::InsufficientFunds {
            account: refused,
            available,
            requested,
        })) if refused == account.id => {
            return Err(insufficient(available, requested));
        }
        Err(e) => return Err(e.into()),
    };
    if posted.created {
        record(
            &mut tx,
            app,
            ctx,
            if wallet_side == Side::Credit {
                "wallet.credit"
            } else {
                "wallet.debit"
            },
            "client",
            client,
            json!({ "amount": Amount::from(amount), "reason": reason, "entry": posted.entry.id }),
        )
        .await?;
    }
    let after = store::account(&mut tx, account.id)
        .await?
        .ok_or(AppError::NotFound { what: "wallet" })?;
    tx.commit().await?;
    Ok((
        WalletMoveView {
            entry: posted.entry.into(),
            wallet: after.into(),
        },
        posted.created,
    ))
}

// ---------------------------------------------------------------------------------------
// Helpers

/// The code of a wallet debit or payment refused beyond balance + credit limit (409).
pub const INSUFFICIENT: &str = "insufficient_wallet_balance";

/// The refusal of a wallet debit or payment beyond balance + credit limit.
pub(crate) fn insufficient(available: Money, requested: Money) -> AppError {
    AppError::conflict(
        INSUFFICIENT,
        format!(
            "the wallet has {} {} available, not enough for {}",
            Money::new(available.minor().max(0), available.currency()).format_amount(),
            available.currency(),
            requested.format_amount()
        ),
    )
}

/// Staff wallet work: `billing:write` (wallet credit and debit are billing work) or
/// `ledger:write` (what [`crate::ledger::wallet_adjust`] asks).
fn require_staff_write(ctx: &Ctx) -> Result<(), AppError> {
    if ctx.actor.can(Permission::BillingWrite) {
        Ok(())
    } else {
        ctx.require(Permission::LedgerWrite)
    }
}

/// A currency named in a path: an ISO 4217 code, in either case.
fn parse_wallet_currency(text: &str) -> Result<Currency, AppError> {
    crate::billing::parse_currency(&text.trim().to_ascii_uppercase(), "currency")
}

/// The client, if the caller's scope sees it.
async fn visible_client(app: &App, ctx: &Ctx, client: ClientId) -> Result<(), AppError> {
    keel_store::clients::get_client(&app.db, ctx.actor.scope(), client)
        .await?
        .map(|_| ())
        .ok_or(AppError::NotFound { what: "client" })
}

/// Every wallet account of a client (the client's liability accounts with a wallet code).
async fn wallets_of(app: &App, client: ClientId) -> Result<Vec<Account>, AppError> {
    let prefix = keel_domain::ledger::wallet_code_prefix(client);
    let filter = AccountFilter {
        client: Some(client),
        kind: Some(AccountKind::Liability),
    };
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store::list_accounts(&app.db, filter, cursor, crate::MAX_PAGE).await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|a| a.code.starts_with(&prefix)),
        );
        match page.next_cursor.as_deref().and_then(Cursor::decode) {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
