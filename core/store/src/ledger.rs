//! Ledger storage: accounts, journal entries and postings.
//!
//! Rules kept here (the domain states them, the store enforces them against races):
//! - An entry is inserted once per idempotency key (`ledger_entries_idempotency_key`); a
//!   repeat with the same content returns the stored entry, one with other content is
//!   [`LedgerError::KeyReused`] naming the differences.
//! - Each account's cached `balance_minor` moves in the same transaction as its postings, by
//!   one conditional `UPDATE` that also checks the floor, so concurrent debits of a wallet
//!   cannot take it below its limit (PostgreSQL re-checks the condition on the locked row).
//! - Before returning, the entry's stored postings are summed per currency again.
//! - Entries and postings are never updated or deleted (triggers refuse it).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::currency::Currency;
use keel_domain::ids::{AccountId, ClientId, EntryId, ResellerId};
use keel_domain::ledger::{
    Account, AccountKind, AccountOwner, EntryBuilder, LedgerError, NewEntry, NewPosting, Side,
};
use keel_domain::money::Money;
use std::collections::BTreeMap;

const ACCOUNT_COLUMNS: &str =
    "id, code, name, kind, currency, client_id, reseller_id, credit_limit_minor, balance_minor";

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    code: String,
    name: String,
    kind: String,
    currency: String,
    client_id: Option<i64>,
    reseller_id: Option<i64>,
    credit_limit_minor: Option<i64>,
    balance_minor: i64,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Account, StoreError> {
        let kind = AccountKind::parse(&r.kind).ok_or_else(|| {
            StoreError::Corrupt(format!("account {} has kind {:?}", r.id, r.kind))
        })?;
        let currency = currency(&r.currency)?;
        let owner = match (r.client_id, r.reseller_id) {
            (Some(c), _) => Some(AccountOwner::Client(ClientId(c))),
            (None, Some(s)) => Some(AccountOwner::Reseller(ResellerId(s))),
            (None, None) => None,
        };
        Ok(Account {
            id: AccountId(r.id),
            code: r.code,
            name: r.name,
            kind,
            currency,
            owner,
            credit_limit_minor: r.credit_limit_minor,
            balance_minor: r.balance_minor,
        })
    }
}

pub(crate) fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::from_code(code)
        .map_err(|_| StoreError::Corrupt(format!("unknown currency {code:?} in the database")))
}

/// An account to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub owner: Option<AccountOwner>,
    pub credit_limit_minor: Option<i64>,
}

/// A stored journal entry with its postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: EntryId,
    pub idempotency_key: String,
    pub memo: String,
    pub reverses: Option<EntryId>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub postings: Vec<StoredPosting>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPosting {
    pub account: AccountId,
    pub side: Side,
    pub amount: Money,
}

impl StoredEntry {
    /// The entry as it was built, for comparing a repeated request.
    fn as_new(&self) -> Result<NewEntry, StoreError> {
        let mut b = EntryBuilder::new(&self.idempotency_key, &self.memo);
        for p in &self.postings {
            b = b.post(p.account, p.side, p.amount);
        }
        if let (Some(of), Some(reason)) = (self.reverses, &self.reason) {
            b = b.reversing(of, reason);
        }
        b.build()
            .map_err(|e| StoreError::Corrupt(format!("entry {} no longer builds: {e}", self.id)))
    }
}

/// The outcome of [`post`]: the entry, and whether this call created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub entry: StoredEntry,
    pub created: bool,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    idempotency_key: String,
    memo: String,
    reverses_entry_id: Option<i64>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PostingRow {
    entry_id: i64,
    account_id: i64,
    side: String,
    amount_minor: i64,
    currency: String,
}

fn assemble(
    rows: Vec<EntryRow>,
    postings: Vec<PostingRow>,
) -> Result<Vec<StoredEntry>, StoreError> {
    let mut by_entry: BTreeMap<i64, Vec<StoredPosting>> = BTreeMap::new();
    for p in postings {
        let side = match p.side.as_str() {
            "debit" => Side::Debit,
            "credit" => Side::Credit,
            other => return Err(StoreError::Corrupt(format!("posting side {other:?}"))),
        };
        by_entry.entry(p.entry_id).or_default().push(StoredPosting {
            account: AccountId(p.account_id),
            side,
            amount: Money::new(p.amount_minor, currency(&p.currency)?),
        });
    }
    Ok(rows
        .into_iter()
        .map(|r| StoredEntry {
            id: EntryId(r.id),
            postings: by_entry.remove(&r.id).unwrap_or_default(),
            idempotency_key: r.idempotency_key,
            memo: r.memo,
            reverses: r.reverses_entry_id.map(EntryId),
            reason: r.reason,
            created_at: r.created_at,
        })
        .collect())
}

const POSTINGS_OF_ENTRY: &str = "SELECT entry_id, account_id, side, amount_minor, currency FROM ledger_postings WHERE entry_id = $1 ORDER BY id";

const ENTRY_COLUMNS: &str = "id, idempotency_key, memo, reverses_entry_id, reason, created_at";

/// Creates an account; a taken code is `Conflict { constraint: "ledger_accounts_code_key" }`.
pub async fn create_account(
    tx: &mut Tx,
    new: &NewAccount,
    at: DateTime<Utc>,
) -> Result<Account, StoreError> {
    insert_account(tx, new, at, "")
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// Inserts an account with `tail` after the VALUES (an `ON CONFLICT` clause or nothing);
/// the row when one was inserted.
async fn insert_account(
    tx: &mut Tx,
    new: &NewAccount,
    at: DateTime<Utc>,
    tail: &str,
) -> Result<Option<AccountRow>, StoreError> {
    let (client_id, reseller_id) = owner_columns(new.owner);
    let sql = format!(
        "INSERT INTO ledger_accounts (code, name, kind, currency, client_id, reseller_id, credit_limit_minor, balance_minor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8){tail} RETURNING {ACCOUNT_COLUMNS}"
    );
    let row: Option<AccountRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(&new.code)
        .bind(&new.name)
        .bind(new.kind.as_str())
        .bind(new.currency.code())
        .bind(client_id)
        .bind(reseller_id)
        .bind(new.credit_limit_minor)
        .bind(at)
        .fetch_optional(&mut *c)
        .await)?;
    Ok(row)
}

/// Returns the account with `new.code`, creating it when missing. An existing account of
/// another kind or currency under that code is an error, never silently reused.
pub async fn ensure_account(
    tx: &mut Tx,
    new: &NewAccount,
    at: DateTime<Utc>,
) -> Result<Account, StoreError> {
    if let Some(existing) = account_by_code(tx, &new.code).await? {
        if existing.kind != new.kind
            || existing.currency != new.currency
            || existing.owner != new.owner
        {
            return Err(StoreError::Conflict {
                constraint: "ledger_accounts_code_key".into(),
            });
        }
        return Ok(existing);
    }
    // Two transactions may both find it missing: the loser's insert does nothing (it waits
    // for the winner on PostgreSQL) and it reads the winner's row instead of failing.
    insert_account(tx, new, at, " ON CONFLICT (code) DO NOTHING").await?;
    let created = account_by_code(tx, &new.code)
        .await?
        .ok_or(StoreError::NotFound)?;
    if created.kind != new.kind || created.currency != new.currency || created.owner != new.owner {
        return Err(StoreError::Conflict {
            constraint: "ledger_accounts_code_key".into(),
        });
    }
    Ok(created)
}

fn owner_columns(owner: Option<AccountOwner>) -> (Option<i64>, Option<i64>) {
    match owner {
        Some(AccountOwner::Client(c)) => (Some(c.get()), None),
        Some(AccountOwner::Reseller(r)) => (None, Some(r.get())),
        None => (None, None),
    }
}

/// The account with this id, inside a transaction.
pub async fn account(tx: &mut Tx, id: AccountId) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1");
    let row: Option<AccountRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Account::try_from).transpose()
}

/// The account with this code, inside a transaction.
pub async fn account_by_code(tx: &mut Tx, code: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE code = $1");
    let row: Option<AccountRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(code)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Account::try_from).transpose()
}

/// Sets or clears an account's credit limit (`None` = unbounded). Refused when the current
/// balance would already break the new limit.
pub async fn set_credit_limit(
    tx: &mut Tx,
    id: AccountId,
    limit_minor: Option<i64>,
) -> Result<Account, StoreError> {
    // One conditional statement: a debit committing meanwhile cannot slip under the new limit
    // (PostgreSQL re-checks the condition on the row it locks).
    let changed = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE ledger_accounts SET credit_limit_minor = $1 WHERE id = $2 AND (CAST($1 AS BIGINT) IS NULL OR \
           (CASE WHEN kind IN ('asset', 'expense') THEN 1 ELSE -1 END) * balance_minor >= -$1)"
    )
    .bind(limit_minor)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    let current = account(tx, id)
        .await?
        .ok_or(LedgerError::UnknownAccount(id))?;
    if changed == 0 {
        return Err(LedgerError::InsufficientFunds {
            account: id,
            available: current.natural_balance(),
            requested: Money::zero(current.currency),
        }
        .into());
    }
    Ok(current)
}

/// Which accounts to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountFilter {
    pub client: Option<ClientId>,
    pub kind: Option<AccountKind>,
}

/// A page of accounts ordered by id.
pub async fn list_accounts(
    db: &Db,
    filter: AccountFilter,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<Account>, StoreError> {
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts \
         WHERE (CAST($1 AS BIGINT) IS NULL OR client_id = $1) AND (CAST($2 AS TEXT) IS NULL OR kind = $2) AND id > $3 \
         ORDER BY id LIMIT $4"
    );
    let rows: Vec<AccountRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(filter.client.map(ClientId::get))
        .bind(filter.kind.map(AccountKind::as_str))
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let accounts = rows
        .into_iter()
        .map(Account::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(accounts, limit, |a| a.id.get()))
}

/// One account, read outside a transaction.
pub async fn get_account(db: &Db, id: AccountId) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = $1");
    let row: Option<AccountRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(p)
        .await)?;
    row.map(Account::try_from).transpose()
}

/// A page of entries (newest last), optionally only those touching one account.
pub async fn list_entries(
    db: &Db,
    account: Option<AccountId>,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<StoredEntry>, StoreError> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries e \
         WHERE (CAST($1 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM ledger_postings p WHERE p.entry_id = e.id AND p.account_id = $1)) \
         AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows: Vec<EntryRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(account.map(AccountId::get))
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.id, l.id),
        _ => {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
    };
    let postings: Vec<PostingRow> = on_db!(db, |p| sqlx::query_as(
        "SELECT entry_id, account_id, side, amount_minor, currency FROM ledger_postings \
         WHERE entry_id BETWEEN $1 AND $2 ORDER BY id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(p)
    .await)?;
    let entries = assemble(rows, postings)?;
    Ok(Page::from_rows(entries, limit, |e| e.id.get()))
}

/// One entry with its postings, read outside a transaction.
pub async fn get_entry(db: &Db, id: EntryId) -> Result<Option<StoredEntry>, StoreError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE id = $1");
    let row: Option<EntryRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(p)
        .await)?;
    let Some(row) = row else { return Ok(None) };
    let postings: Vec<PostingRow> = on_db!(db, |p| {
        sqlx::query_as(POSTINGS_OF_ENTRY)
            .bind(id.get())
            .fetch_all(p)
            .await
    })?;
    Ok(assemble(vec![row], postings)?.pop())
}

/// How [`find_entry`] looks an entry up.
enum Lookup<'a> {
    Id(i64),
    Key(&'a str),
    /// The entry that reverses this one.
    ReversalOf(i64),
}

async fn find_entry(tx: &mut Tx, lookup: Lookup<'_>) -> Result<Option<StoredEntry>, StoreError> {
    let column = match lookup {
        Lookup::Id(_) => "id",
        Lookup::Key(_) => "idempotency_key",
        Lookup::ReversalOf(_) => "reverses_entry_id",
    };
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM ledger_entries WHERE {column} = $1");
    let row: Option<EntryRow> = match lookup {
        Lookup::Id(v) | Lookup::ReversalOf(v) => on_tx!(tx, |c| sqlx::query_as(&sql)
            .bind(v)
            .fetch_optional(&mut *c)
            .await)?,
        Lookup::Key(v) => on_tx!(tx, |c| sqlx::query_as(&sql)
            .bind(v)
            .fetch_optional(&mut *c)
            .await)?,
    };
    let Some(row) = row else { return Ok(None) };
    let postings: Vec<PostingRow> = on_tx!(tx, |c| {
        sqlx::query_as(POSTINGS_OF_ENTRY)
            .bind(row.id)
            .fetch_all(&mut *c)
            .await
    })?;
    Ok(assemble(vec![row], postings)?.pop())
}

/// The entry with this id, inside a transaction.
pub async fn entry(tx: &mut Tx, id: EntryId) -> Result<Option<StoredEntry>, StoreError> {
    find_entry(tx, Lookup::Id(id.get())).await
}

/// The entry stored under this idempotency key, inside a transaction.
pub async fn entry_by_key(tx: &mut Tx, key: &str) -> Result<Option<StoredEntry>, StoreError> {
    find_entry(tx, Lookup::Key(key)).await
}

fn replay(sent: &NewEntry, stored: StoredEntry) -> Result<Posted, StoreError> {
    let differences = sent.differences(&stored.as_new()?);
    if differences.is_empty() {
        Ok(Posted {
            entry: stored,
            created: false,
        })
    } else {
        Err(LedgerError::KeyReused {
            key: stored.idempotency_key,
            differences,
        }
        .into())
    }
}

/// Posts a balanced entry: inserts it and its postings, moves each account's cached balance
/// (refusing a move below an account's floor), and checks the stored postings balance.
/// The same key with the same content returns the stored entry (`created: false`).
///
/// All of it runs inside a savepoint: a refused entry leaves nothing behind in the caller's
/// transaction, which stays usable (PostgreSQL would otherwise abort it on a violation).
pub async fn post(tx: &mut Tx, entry: &NewEntry, at: DateTime<Utc>) -> Result<Posted, StoreError> {
    exec(tx, "SAVEPOINT keel_ledger").await?;
    let result = post_unguarded(tx, entry, at).await;
    end_savepoint(tx, result).await
}

/// Releases `SAVEPOINT keel_ledger` after success, rolls back to it after an error.
async fn end_savepoint<T>(tx: &mut Tx, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if result.is_err() {
        exec(tx, "ROLLBACK TO SAVEPOINT keel_ledger").await?;
    }
    exec(tx, "RELEASE SAVEPOINT keel_ledger").await?;
    result
}

/// Runs one statement without parameters in `tx`.
pub(crate) async fn exec(tx: &mut Tx, sql: &str) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(sql)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn post_unguarded(
    tx: &mut Tx,
    entry: &NewEntry,
    at: DateTime<Utc>,
) -> Result<Posted, StoreError> {
    if let Some(stored) = entry_by_key(tx, entry.idempotency_key()).await? {
        return replay(entry, stored);
    }

    // Every account exists and holds the posting's currency; sum the moves per account.
    let mut deltas: BTreeMap<AccountId, (Account, i64)> = BTreeMap::new();
    for p in entry.postings() {
        let (acct, delta) = match deltas.entry(p.account) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let acct = account(tx, p.account)
                    .await?
                    .ok_or(LedgerError::UnknownAccount(p.account))?;
                e.insert((acct, 0))
            }
        };
        if acct.currency != p.amount.currency() {
            return Err(LedgerError::CurrencyMismatch {
                account: p.account,
                account_currency: acct.currency,
                posting_currency: p.amount.currency(),
            }
            .into());
        }
        *delta = delta
            .checked_add(p.signed_minor())
            .ok_or(keel_domain::MoneyError::Overflow)
            .map_err(LedgerError::from)?;
    }

    if let Some(reversal) = entry.reversal() {
        if find_entry(tx, Lookup::Id(reversal.of.get()))
            .await?
            .is_none()
        {
            return Err(LedgerError::UnknownEntry(reversal.of).into());
        }
        if find_entry(tx, Lookup::ReversalOf(reversal.of.get()))
            .await?
            .is_some()
        {
            return Err(LedgerError::AlreadyReversed(reversal.of).into());
        }
    }

    // ON CONFLICT DO NOTHING: a concurrent post of the same key wins cleanly, and this call
    // then replays it instead of failing the transaction (PostgreSQL would abort it).
    let inserted: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO ledger_entries (idempotency_key, memo, reverses_entry_id, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
    )
    .bind(entry.idempotency_key())
    .bind(entry.memo())
    .bind(entry.reversal().map(|r| r.of.get()))
    .bind(entry.reversal().map(|r| r.reason.as_str()))
    .bind(at)
    .fetch_optional(&mut *c)
    .await
    })
    .map_err(|e| match StoreError::from(e) {
        StoreError::Conflict { constraint } if constraint == "ledger_entries_reverses_key" => {
            StoreError::Ledger(LedgerError::AlreadyReversed(
                entry.reversal().map_or(EntryId(0), |r| r.of),
            ))
        }
        other => other,
    })?;
    let Some(entry_id) = inserted else {
        let stored = entry_by_key(tx, entry.idempotency_key())
            .await?
            .ok_or(StoreError::NotFound)?;
        return replay(entry, stored);
    };

    let postings: Vec<(i64, &NewPosting)> =
        entry.postings().iter().map(|p| (entry_id, p)).collect();
    insert_postings(tx, &postings).await?;
    check_stored(tx, entry_id, entry_id).await?;
    // Balances move last, so a hot account's row lock is held for as short a time as possible.
    move_balances(tx, &deltas).await?;
    Ok(Posted {
        entry: StoredEntry {
            id: EntryId(entry_id),
            idempotency_key: entry.idempotency_key().to_string(),
            memo: entry.memo().to_string(),
            reverses: entry.reversal().map(|r| r.of),
            reason: entry.reversal().map(|r| r.reason.clone()),
            created_at: at,
            postings: entry
                .postings()
                .iter()
                .map(|p| StoredPosting {
                    account: p.account,
                    side: p.side,
                    amount: p.amount,
                })
                .collect(),
        },
        created: true,
    })
}

/// Inserts postings as multi-row inserts (2,000 rows per statement at most).
async fn insert_postings(tx: &mut Tx, postings: &[(i64, &NewPosting)]) -> Result<(), StoreError> {
    for chunk in postings.chunks(2000) {
        let sql = format!(
            "INSERT INTO ledger_postings (entry_id, account_id, side, amount_minor, currency) VALUES {}",
            placeholders(tx, chunk.len(), 5)
        );
        on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (entry_id, p) in chunk {
                q = q
                    .bind(*entry_id)
                    .bind(p.account.get())
                    .bind(if p.side == Side::Debit {
                        "debit"
                    } else {
                        "credit"
                    })
                    .bind(p.amount.minor())
                    .bind(p.amount.currency().code());
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// The second balance check, on the stored rows of entries `low..=high`: each has two or
/// more postings summing to zero in every currency. Both halves are driven by the
/// `entry_id` index (a join here let PostgreSQL's generic plan scan every posting, which
/// made each post slower as the ledger grew).
async fn check_stored(tx: &mut Tx, low: i64, high: i64) -> Result<(), StoreError> {
    let bad: Option<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT entry_id FROM ledger_postings WHERE entry_id BETWEEN $1 AND $2 GROUP BY entry_id, currency \
         HAVING CAST(SUM(CASE side WHEN 'debit' THEN amount_minor ELSE -amount_minor END) AS BIGINT) <> 0 \
         UNION ALL SELECT e.id FROM ledger_entries e WHERE e.id BETWEEN $1 AND $2 \
           AND (SELECT COUNT(*) FROM ledger_postings p WHERE p.entry_id = e.id) < 2 LIMIT 1"
    )
    .bind(low)
    .bind(high)
    .fetch_optional(&mut *c)
    .await
    })?;
    match bad {
        Some(entry) => Err(StoreError::Corrupt(format!(
            "entry {entry} was stored unbalanced"
        ))),
        None => Ok(()),
    }
}

/// The error for a balance move the floor refused, with the balance as it is now.
async fn refused_move(tx: &mut Tx, id: i64, delta: i64) -> StoreError {
    match account(tx, AccountId(id)).await {
        Ok(Some(now)) => {
            let limit = now.credit_limit_minor.unwrap_or(0);
            LedgerError::InsufficientFunds {
                account: now.id,
                available: Money::new(
                    now.balance_minor * now.kind.normal_sign() + limit,
                    now.currency,
                ),
                requested: Money::new((delta * now.kind.normal_sign()).abs(), now.currency),
            }
            .into()
        }
        Ok(None) => LedgerError::UnknownAccount(AccountId(id)).into(),
        Err(e) => e,
    }
}

/// Moves each account's cached balance by its delta in one statement, refusing the whole
/// move when any account would break its floor. On PostgreSQL the rows are locked in id
/// order first, so concurrent writers never deadlock on each other's accounts; the lock is
/// `FOR NO KEY UPDATE`, which does not conflict with the key-share locks the postings'
/// foreign keys hold.
async fn move_balances(
    tx: &mut Tx,
    deltas: &BTreeMap<AccountId, (Account, i64)>,
) -> Result<(), StoreError> {
    let moves: Vec<(i64, i64)> = deltas
        .iter()
        .filter(|(_, (_, d))| *d != 0)
        .map(|(id, (_, d))| (id.get(), *d))
        .collect();
    if moves.is_empty() {
        return Ok(());
    }
    for (acct, delta) in deltas.values() {
        if acct.balance_minor.checked_add(*delta).is_none() {
            return Err(LedgerError::Money(keel_domain::MoneyError::Overflow).into());
        }
    }
    // A few accounts (a single entry): one conditional UPDATE each, in id order, which is
    // also the lock order, so concurrent writers cannot deadlock.
    if moves.len() <= 8 {
        for (id, delta) in &moves {
            let moved = on_tx!(tx, |c| {
                sqlx::query(
                "UPDATE ledger_accounts SET balance_minor = balance_minor + $1 WHERE id = $2 AND \
                 (credit_limit_minor IS NULL OR \
                  (CASE WHEN kind IN ('asset', 'expense') THEN 1 ELSE -1 END) * (balance_minor + $1) >= -credit_limit_minor)"
            )
            .bind(*delta)
            .bind(*id)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
            })?;
            if moved == 0 {
                return Err(refused_move(tx, *id, *delta).await);
            }
        }
        return Ok(());
    }
    for chunk in moves.chunks(1000) {
        if let Tx::Postgres(t) = tx {
            let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
            sqlx::query(
                "SELECT id FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
            )
            .bind(&ids)
            .fetch_all(&mut **t)
            .await?;
        }
        let values = placeholders(tx, chunk.len(), 2);
        // The floor check and the move are one statement: under concurrency PostgreSQL
        // re-evaluates the WHERE clause on the locked row, SQLite has a single writer.
        let sql = format!(
            "UPDATE ledger_accounts SET balance_minor = ledger_accounts.balance_minor + v.column2 \
             FROM (VALUES {values}) AS v WHERE ledger_accounts.id = v.column1 AND \
             (ledger_accounts.credit_limit_minor IS NULL OR \
              (CASE WHEN ledger_accounts.kind IN ('asset', 'expense') THEN 1 ELSE -1 END) \
                * (ledger_accounts.balance_minor + v.column2) >= -ledger_accounts.credit_limit_minor)"
        );
        let moved = on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (id, delta) in chunk {
                q = q.bind(*id).bind(*delta);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        if moved as usize != chunk.len() {
            // Name the first account that refused: re-read the balances the statement saw.
            for (id, delta) in chunk {
                let now = account(tx, AccountId(*id))
                    .await?
                    .ok_or(LedgerError::UnknownAccount(AccountId(*id)))?;
                if !now.allows(*delta) {
                    return Err(refused_move(tx, *id, *delta).await);
                }
            }
            return Err(StoreError::Corrupt(
                "a balance move was refused without a reason".into(),
            ));
        }
    }
    Ok(())
}

/// Posts the reversal of entry `of`, with a reason, under its own idempotency key.
pub async fn reverse(
    tx: &mut Tx,
    of: EntryId,
    idempotency_key: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<Posted, StoreError> {
    let original = entry(tx, of).await?.ok_or(LedgerError::UnknownEntry(of))?;
    let postings: Vec<_> = original
        .postings
        .iter()
        .map(|p| keel_domain::ledger::NewPosting {
            account: p.account,
            side: p.side,
            amount: p.amount,
        })
        .collect();
    let reversal = NewEntry::reversal_of(of, &postings, idempotency_key, reason)?;
    post(tx, &reversal, at).await
}

/// The codes of the host's system accounts. Each is one account per currency, coded
/// `{prefix}:{currency}` (`liability:tax:EUR`); keel-app creates them
/// (`keel_app::ledger::SystemAccount`), and [`check`] finds them by these prefixes to
/// reconcile them with the documents.
pub mod system_codes {
    /// What clients owe on issued invoices (an asset).
    pub const RECEIVABLE: &str = "asset:receivable";
    /// Money received, not yet settled to the bank (an asset).
    pub const CLEARING: &str = "asset:clearing";
    /// Manual corrections and the other side of staff wallet credits (equity).
    pub const ADJUSTMENTS: &str = "equity:adjustments";
    /// Sales revenue.
    pub const REVENUE: &str = "revenue:sales";
    /// Tax collected on behalf of the tax authorities (a liability).
    pub const TAX_PAYABLE: &str = "liability:tax";
}

/// What `keel ledger check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    pub accounts: u64,
    pub entries: u64,
    pub postings: u64,
    /// Accounts whose cached balance differs from the sum of their postings.
    pub balance_mismatches: Vec<BalanceMismatch>,
    /// Entries whose postings do not sum to zero in some currency, or that have fewer than two.
    pub unbalanced_entries: Vec<i64>,
    /// Per currency: the sum of every account's balance (must be 0).
    pub trial_balance: BTreeMap<String, i64>,
    /// Per currency: tax payable against the tax of the issued documents (see
    /// [`check`] for the rule).
    pub tax_payable: BTreeMap<String, SubLedger>,
    /// Per currency: receivables against the balances of the open invoices.
    pub receivables: BTreeMap<String, SubLedger>,
    /// Client and reseller wallets checked against their own postings.
    pub wallets: u64,
    /// The wallets among [`Self::balance_mismatches`], named again so that a wallet whose
    /// cached balance drifted is reported as such.
    pub wallet_mismatches: Vec<BalanceMismatch>,
}

/// One sub-ledger reconciliation in one currency: what the control account holds, and what
/// the documents say it must hold. Both are positive when the host is owed (receivables)
/// or owes (tax payable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SubLedger {
    pub ledger_minor: i64,
    pub documents_minor: i64,
}

impl SubLedger {
    pub fn agrees(&self) -> bool {
        self.ledger_minor == self.documents_minor
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BalanceMismatch {
    pub account: i64,
    pub cached_minor: i64,
    pub postings_minor: i64,
}

impl LedgerReport {
    pub fn is_clean(&self) -> bool {
        self.balance_mismatches.is_empty()
            && self.unbalanced_entries.is_empty()
            && self.trial_balance.values().all(|v| *v == 0)
            && self.tax_payable.values().all(SubLedger::agrees)
            && self.receivables.values().all(SubLedger::agrees)
            && self.wallet_mismatches.is_empty()
    }
}

/// The account mismatches, entries and per-currency figures [`check`] reads, in one snapshot.
struct CheckRows {
    mismatches: Vec<(i64, i64, i64, bool)>,
    unbalanced: Vec<i64>,
    trial: Vec<(String, i64)>,
    counts: (i64, i64, i64, i64),
    tax_ledger: Vec<(String, i64)>,
    tax_invoices: Vec<(String, i64)>,
    tax_credit_notes: Vec<(String, i64)>,
    receivable_ledger: Vec<(String, i64)>,
    receivable_invoices: Vec<(String, i64)>,
}

/// Verifies the ledger, and reconciles its control accounts with the documents:
///
/// - every account's cached balance against its postings, every entry's balance per
///   currency, and the trial balance per currency;
/// - **tax payable** (credit balance of `liability:tax:{currency}`) = the tax of every issued
///   invoice (status not `draft`), except the invoices voided by `cancel` (status
///   `cancelled` with nothing credited: cancelling reverses the issue entry, tax included),
///   less the tax of every credit note. A late fee adds no tax (it is tax exempt). An invoice
///   cancelled by a credit note of its whole total keeps its tax here and its credit note
///   takes it back. Tax that moved with no document behind it (a manual entry, a credit
///   taxed at another rate than the invoice charged) shows as a difference;
/// - **receivables** (debit balance of `asset:receivable:{currency}`) = the balance still due
///   (total − paid − credited) of every standard invoice that is payable (`unpaid`,
///   `collections`). A paid or refunded invoice has nothing due, a cancelled one was
///   reversed or credited in full, and a top-up invoice never touches receivables (its
///   payment goes to the wallet);
/// - **wallets**: every client or reseller wallet's cached balance against its postings,
///   reported per wallet. (A wallet has no document of its own to reconcile with: staff
///   credits and downgrade credits are known only by their entries and audit rows.)
///
/// Everything is read in one read-only transaction (repeatable read on PostgreSQL, one
/// WAL snapshot on SQLite), so checking a live book cannot report a difference that a
/// payment committed between two of the reads would make.
pub async fn check(db: &Db) -> Result<LedgerReport, StoreError> {
    const SIGNED: &str = "CASE p.side WHEN 'debit' THEN p.amount_minor ELSE -p.amount_minor END";
    let is_postgres = matches!(db, Db::Postgres(_));
    let mismatches_sql = format!(
        "SELECT a.id, a.balance_minor, CAST(COALESCE(SUM({SIGNED}), 0) AS BIGINT) AS sum_minor, \
           (a.client_id IS NOT NULL OR a.reseller_id IS NOT NULL) AS wallet \
         FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account_id = a.id \
         GROUP BY a.id, a.balance_minor, a.client_id, a.reseller_id \
         HAVING a.balance_minor <> CAST(COALESCE(SUM({SIGNED}), 0) AS BIGINT) ORDER BY a.id"
    );
    let unbalanced_sql = format!(
        "SELECT DISTINCT p.entry_id FROM ledger_postings p GROUP BY p.entry_id, p.currency \
         HAVING CAST(SUM({SIGNED}) AS BIGINT) <> 0 \
         UNION SELECT e.id FROM ledger_entries e LEFT JOIN ledger_postings q ON q.entry_id = e.id GROUP BY e.id HAVING COUNT(q.id) < 2 \
         ORDER BY 1"
    );
    // A control account's balance per currency, signed so that the normal side is positive.
    let control = |prefix: &str, sign: &str| {
        format!(
            "SELECT currency, CAST({sign}COALESCE(SUM(balance_minor), 0) AS BIGINT) FROM ledger_accounts \
             WHERE code = '{prefix}:' || currency GROUP BY currency"
        )
    };
    let tax_ledger_sql = control(system_codes::TAX_PAYABLE, "-");
    let receivable_ledger_sql = control(system_codes::RECEIVABLE, "");
    const TAX_INVOICES: &str = "SELECT currency, CAST(COALESCE(SUM(tax_minor), 0) AS BIGINT) FROM invoices \
         WHERE status <> 'draft' AND NOT (status = 'cancelled' AND credited_minor = 0) GROUP BY currency";
    const TAX_CREDIT_NOTES: &str = "SELECT currency, CAST(COALESCE(SUM(tax_minor), 0) AS BIGINT) FROM credit_notes GROUP BY currency";
    const RECEIVABLE_INVOICES: &str = "SELECT currency, \
           CAST(COALESCE(SUM(total_minor - paid_minor - credited_minor), 0) AS BIGINT) FROM invoices \
         WHERE kind = 'standard' AND status IN ('unpaid', 'collections') GROUP BY currency";
    const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM ledger_accounts), (SELECT COUNT(*) FROM ledger_entries), \
           (SELECT COUNT(*) FROM ledger_postings), \
           (SELECT COUNT(*) FROM ledger_accounts WHERE client_id IS NOT NULL OR reseller_id IS NOT NULL)";
    const TRIAL: &str = "SELECT currency, CAST(SUM(balance_minor) AS BIGINT) AS total FROM ledger_accounts GROUP BY currency ORDER BY currency";

    let rows: CheckRows = on_db!(db, |p| {
        async {
            let mut t = p.begin().await?;
            if is_postgres {
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *t)
                    .await?;
            }
            let rows = CheckRows {
                mismatches: sqlx::query_as(&mismatches_sql).fetch_all(&mut *t).await?,
                unbalanced: sqlx::query_scalar(&unbalanced_sql)
                    .fetch_all(&mut *t)
                    .await?,
                trial: sqlx::query_as(TRIAL).fetch_all(&mut *t).await?,
                counts: sqlx::query_as(COUNTS).fetch_one(&mut *t).await?,
                tax_ledger: sqlx::query_as(&tax_ledger_sql).fetch_all(&mut *t).await?,
                tax_invoices: sqlx::query_as(TAX_INVOICES).fetch_all(&mut *t).await?,
                tax_credit_notes: sqlx::query_as(TAX_CREDIT_NOTES).fetch_all(&mut *t).await?,
                receivable_ledger: sqlx::query_as(&receivable_ledger_sql)
                    .fetch_all(&mut *t)
                    .await?,
                receivable_invoices: sqlx::query_as(RECEIVABLE_INVOICES)
                    .fetch_all(&mut *t)
                    .await?,
            };
            t.rollback().await?;
            Ok::<_, sqlx::Error>(rows)
        }
        .await
    })?;

    let mut tax_payable: BTreeMap<String, SubLedger> = BTreeMap::new();
    for (currency, minor) in rows.tax_ledger {
        tax_payable.entry(currency).or_default().ledger_minor += minor;
    }
    for (currency, minor) in rows.tax_invoices {
        tax_payable.entry(currency).or_default().documents_minor += minor;
    }
    for (currency, minor) in rows.tax_credit_notes {
        tax_payable.entry(currency).or_default().documents_minor -= minor;
    }
    let mut receivables: BTreeMap<String, SubLedger> = BTreeMap::new();
    for (currency, minor) in rows.receivable_ledger {
        receivables.entry(currency).or_default().ledger_minor += minor;
    }
    for (currency, minor) in rows.receivable_invoices {
        receivables.entry(currency).or_default().documents_minor += minor;
    }
    let mismatch =
        |&(account, cached_minor, postings_minor, _): &(i64, i64, i64, bool)| BalanceMismatch {
            account,
            cached_minor,
            postings_minor,
        };
    Ok(LedgerReport {
        accounts: rows.counts.0 as u64,
        entries: rows.counts.1 as u64,
        postings: rows.counts.2 as u64,
        balance_mismatches: rows.mismatches.iter().map(mismatch).collect(),
        unbalanced_entries: rows.unbalanced,
        trial_balance: rows.trial.into_iter().collect(),
        tax_payable,
        receivables,
        wallets: rows.counts.3 as u64,
        wallet_mismatches: rows
            .mismatches
            .iter()
            .filter(|m| m.3)
            .map(mismatch)
            .collect(),
    })
}

/// Posts many new entries in one transaction with a handful of statements, for bulk work
/// (the billing run, imports, benchmarks): per PERFORMANCE.md design rule 1, each account's
/// balance moves once per batch by the batch's summed delta, and rows go in as multi-row
/// inserts. The rules are those of [`post`]: every entry balanced (checked when built and
/// again on the stored rows), accounts exist and match currencies, floors hold — checked
/// entry by entry in order, so an entry that would dip a wallet below its floor fails the
/// batch even when a later entry would refill it. Keys already stored are replayed as in
/// [`post`] (same content: skipped and reported as not created; other content: an error).
/// Returns, per entry in order, its id and whether this call created it.
pub async fn post_batch(
    tx: &mut Tx,
    entries: &[NewEntry],
    at: DateTime<Utc>,
) -> Result<Vec<(EntryId, bool)>, StoreError> {
    exec(tx, "SAVEPOINT keel_ledger").await?;
    let result = post_batch_unguarded(tx, entries, at).await;
    end_savepoint(tx, result).await
}

async fn post_batch_unguarded(
    tx: &mut Tx,
    entries: &[NewEntry],
    at: DateTime<Utc>,
) -> Result<Vec<(EntryId, bool)>, StoreError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // 1. Keys stored before: replay them one by one (rare; usually a resumed run).
    let keys: Vec<&str> = entries.iter().map(NewEntry::idempotency_key).collect();
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for k in &keys {
        if !seen.insert(*k) {
            return Err(StoreError::Corrupt(format!(
                "the batch holds the idempotency key {k:?} twice"
            )));
        }
    }
    let mut existing: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for chunk in keys.chunks(500) {
        let sql = format!(
            "SELECT id, idempotency_key FROM ledger_entries WHERE idempotency_key IN ({})",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for k in chunk {
                q = q.bind(*k);
            }
            q.fetch_all(&mut *c).await
        })?;
        existing.extend(rows.into_iter().map(|(id, k)| (k, id)));
    }
    let mut results: Vec<Option<(EntryId, bool)>> = vec![None; entries.len()];
    let mut fresh: Vec<usize> = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        match existing.get(e.idempotency_key()) {
            Some(_) => {
                let stored = find_entry(tx, Lookup::Key(e.idempotency_key()))
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let posted = replay(e, stored)?;
                results[i] = Some((posted.entry.id, false));
            }
            None => fresh.push(i),
        }
        if e.reversal().is_some() {
            return Err(StoreError::Corrupt(
                "post_batch does not take reversals; use reverse".into(),
            ));
        }
    }

    // 2. Load every account the batch touches, then walk the entries in order.
    let mut ids: Vec<i64> = fresh
        .iter()
        .flat_map(|&i| entries[i].postings().iter().map(|p| p.account.get()))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut accounts: BTreeMap<AccountId, (Account, i64)> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id IN ({})",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<AccountRow> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        for r in rows {
            let a = Account::try_from(r)?;
            accounts.insert(a.id, (a, 0));
        }
    }
    for &i in &fresh {
        for p in entries[i].postings() {
            let (acct, delta) = accounts
                .get_mut(&p.account)
                .ok_or(LedgerError::UnknownAccount(p.account))?;
            if acct.currency != p.amount.currency() {
                return Err(LedgerError::CurrencyMismatch {
                    account: p.account,
                    account_currency: acct.currency,
                    posting_currency: p.amount.currency(),
                }
                .into());
            }
            let next = delta
                .checked_add(p.signed_minor())
                .ok_or(LedgerError::Money(keel_domain::MoneyError::Overflow))?;
            if acct.balance_minor.checked_add(next).is_none() {
                return Err(LedgerError::Money(keel_domain::MoneyError::Overflow).into());
            }
            *delta = next;
        }
        // Floors hold after every entry, not only at the end of the batch.
        for p in entries[i].postings() {
            let (acct, delta) = &accounts[&p.account];
            if !acct.allows(*delta) {
                let limit = acct.credit_limit_minor.unwrap_or(0);
                let before = delta - p.signed_minor();
                return Err(LedgerError::InsufficientFunds {
                    account: p.account,
                    available: Money::new(
                        (acct.balance_minor + before) * acct.kind.normal_sign() + limit,
                        acct.currency,
                    ),
                    requested: p.amount,
                }
                .into());
            }
        }
    }
    if fresh.is_empty() {
        return Ok(results
            .into_iter()
            .map(|r| r.expect("every entry replayed"))
            .collect());
    }

    // 3. Entries, ids mapped back by key (RETURNING order is not guaranteed).
    let mut new_ids: std::collections::HashMap<String, i64> =
        std::collections::HashMap::with_capacity(fresh.len());
    for chunk in fresh.chunks(1000) {
        let sql = format!(
            "INSERT INTO ledger_entries (idempotency_key, memo, created_at) VALUES {} RETURNING id, idempotency_key",
            placeholders(tx, chunk.len(), 3)
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for &i in chunk {
                q = q
                    .bind(entries[i].idempotency_key())
                    .bind(entries[i].memo())
                    .bind(at);
            }
            q.fetch_all(&mut *c).await
        })?;
        new_ids.extend(rows.into_iter().map(|(id, k)| (k, id)));
    }

    // 4. Postings, in multi-row inserts; 5. the stored rows balance; 6. one move per account.
    let postings: Vec<(i64, &NewPosting)> = fresh
        .iter()
        .flat_map(|&i| {
            let id = new_ids[entries[i].idempotency_key()];
            entries[i].postings().iter().map(move |p| (id, p))
        })
        .collect();
    insert_postings(tx, &postings).await?;
    let (low, high) = new_ids
        .values()
        .fold((i64::MAX, i64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    check_stored(tx, low, high).await?;
    move_balances(tx, &accounts).await?;

    for &i in &fresh {
        results[i] = Some((EntryId(new_ids[entries[i].idempotency_key()]), true));
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every entry posted or replayed"))
        .collect())
}

/// `n` comma-separated groups of `width` placeholders, each group in parentheses when
/// `width > 1`: `$1, $2` or `($1, $2), ($3, $4)` (`?` on SQLite, see [`Tx::placeholder`]).
pub(crate) fn placeholders(tx: &Tx, n: usize, width: usize) -> String {
    let mut out = String::with_capacity(n * width * 4);
    for row in 0..n {
        if row > 0 {
            out.push_str(", ");
        }
        if width > 1 {
            out.push('(');
        }
        for col in 0..width {
            if col > 0 {
                out.push_str(", ");
            }
            out.push_str(&tx.placeholder(row * width + col + 1));
        }
        if width > 1 {
            out.push(')');
        }
    }
    out
}
