//! Bulk writes for large books (benchmarks, crash tests, imports) and the census that
//! compares two books.
//!
//! The writers insert rows that the ordinary repositories would insert one at a time —
//! clients, services with their first history row, ledger accounts — as multi-row
//! statements inside the caller's transaction, with [`Tx::placeholder`] so SQLite binds
//! thousands of parameters in linear time (ARCHITECTURE.md, "Placeholders in bulk
//! statements"). They validate nothing: the caller passes domain values that were
//! validated already. Money never moves here; wallet credit goes through
//! [`crate::ledger::post_batch`].
//!
//! The census reads what the billing run must leave behind: invoice and line counts,
//! duplicate (service, period) lines, services not billed exactly once per period, the
//! ledger as a multiset of postings by account code, and the invoice numbers.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::{NewAccount, placeholders};
use crate::services::NewService;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::client::NewClient;
use keel_domain::ids::{AccountId, ClientId, OrderId, PromotionId, ResellerId, ServiceId};
use keel_domain::ledger::AccountOwner;
use keel_domain::tenancy::Owner;
use std::collections::HashMap;

/// Rows per multi-row statement. Clients are the widest rows (21 parameters): 500 rows stay
/// far below both engines' parameter limits (SQLite 32,766; PostgreSQL 65,535).
const ROWS_PER_STATEMENT: usize = 500;

const CLIENT_WIDTH: usize = 21;

/// Inserts clients owned by `owner`, all `active`, in multi-row statements. Returns their
/// ids in input order (matched back by email, since `RETURNING` order is not promised). An
/// email already used under `owner` is `Conflict { constraint: "clients_owner_email_key" }`.
pub async fn insert_clients(
    tx: &mut Tx,
    owner: Owner,
    clients: &[NewClient],
    at: DateTime<Utc>,
) -> Result<Vec<ClientId>, StoreError> {
    let mut ids = Vec::with_capacity(clients.len());
    for chunk in clients.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO clients (reseller_id, kind, company_name, first_name, last_name, email, phone, \
               address_line1, address_line2, city, region, postal_code, country, currency, language, tax_exempt, \
               tax_id, status, created_at, updated_at, search_text) VALUES {} RETURNING id, email",
            placeholders(tx, chunk.len(), CLIENT_WIDTH)
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for n in chunk {
                q = q
                    .bind(owner.reseller_id().map(ResellerId::get))
                    .bind(n.kind.as_str())
                    .bind(n.company_name.as_deref().map(str::trim))
                    .bind(n.first_name.trim())
                    .bind(n.last_name.trim())
                    .bind(n.email.as_str())
                    .bind(n.phone.as_ref().map(|p| p.as_str()))
                    .bind(n.address.line1.as_deref())
                    .bind(n.address.line2.as_deref())
                    .bind(n.address.city.as_deref())
                    .bind(n.address.region.as_deref())
                    .bind(n.address.postal_code.as_deref())
                    .bind(n.country.as_str())
                    .bind(n.currency.code())
                    .bind(n.language.as_str())
                    .bind(n.tax_exempt)
                    .bind(n.tax_id.as_deref())
                    .bind("active")
                    .bind(at)
                    .bind(at)
                    .bind(crate::clients::search_text(
                        &n.first_name,
                        &n.last_name,
                        n.company_name.as_deref(),
                        n.email.as_str(),
                    ));
            }
            q.fetch_all(&mut *c).await
        })?;
        let by_email: HashMap<String, i64> = rows.into_iter().map(|(id, e)| (e, id)).collect();
        for n in chunk {
            let id = by_email.get(n.email.as_str()).ok_or_else(|| {
                StoreError::Corrupt(format!("client {} was not returned", n.email.as_str()))
            })?;
            ids.push(ClientId(*id));
        }
    }
    Ok(ids)
}

const SERVICE_WIDTH: usize = 18;

/// Inserts services and one history row each (`reason`, by `actor_label`), in multi-row
/// statements. Returns how many services were inserted.
pub async fn insert_services(
    tx: &mut Tx,
    services: &[NewService],
    reason: &str,
    actor_label: &str,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut inserted = 0;
    for chunk in services.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO services (client_id, reseller_id, order_id, product_id, parent_id, label, cycle, currency, \
               recurring_minor, promotion_id, status, registration_date, anniversary, billing_day, next_period, \
               next_due_date, created_at, updated_at) VALUES {} RETURNING id, status",
            placeholders(tx, chunk.len(), SERVICE_WIDTH)
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for s in chunk {
                q = q
                    .bind(s.client_id.get())
                    .bind(s.reseller_id.map(ResellerId::get))
                    .bind(s.order_id.map(OrderId::get))
                    .bind(s.product_id.get())
                    .bind(s.parent_id.map(ServiceId::get))
                    .bind(&s.label)
                    .bind(s.cycle.as_str())
                    .bind(s.recurring.currency().code())
                    .bind(s.recurring.minor())
                    .bind(s.promotion_id.map(PromotionId::get))
                    .bind(s.status.as_str())
                    .bind(s.registration_date)
                    .bind(s.anniversary.date())
                    .bind(s.anniversary.billing_day().map(i64::from))
                    .bind(i64::from(s.next_period))
                    .bind(s.next_due_date)
                    .bind(at)
                    .bind(at);
            }
            q.fetch_all(&mut *c).await
        })?;
        if rows.len() != chunk.len() {
            return Err(StoreError::Corrupt(format!(
                "{} services inserted, {} returned",
                chunk.len(),
                rows.len()
            )));
        }
        let sql = format!(
            "INSERT INTO service_events (service_id, from_status, to_status, reason, actor_label, at) VALUES {}",
            placeholders(tx, rows.len(), 6)
        );
        on_tx!(tx, |c| {
            let mut q = sqlx::query(&sql);
            for (id, status) in &rows {
                q = q
                    .bind(*id)
                    .bind(Option::<&str>::None)
                    .bind(status.as_str())
                    .bind(reason)
                    .bind(actor_label)
                    .bind(at);
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?;
        inserted += rows.len() as u64;
    }
    Ok(inserted)
}

const ACCOUNT_WIDTH: usize = 9;

/// Creates ledger accounts with a zero balance in multi-row statements; returns their ids in
/// input order (matched back by code). A code already taken is
/// `Conflict { constraint: "ledger_accounts_code_key" }`.
pub async fn insert_accounts(
    tx: &mut Tx,
    accounts: &[NewAccount],
    at: DateTime<Utc>,
) -> Result<Vec<AccountId>, StoreError> {
    let mut ids = Vec::with_capacity(accounts.len());
    for chunk in accounts.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO ledger_accounts (code, name, kind, currency, client_id, reseller_id, credit_limit_minor, \
               balance_minor, created_at) VALUES {} RETURNING id, code",
            placeholders(tx, chunk.len(), ACCOUNT_WIDTH)
        );
        let rows: Vec<(i64, String)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for a in chunk {
                let (client, reseller) = match a.owner {
                    Some(AccountOwner::Client(c)) => (Some(c.get()), None),
                    Some(AccountOwner::Reseller(r)) => (None, Some(r.get())),
                    None => (None, None),
                };
                q = q
                    .bind(&a.code)
                    .bind(&a.name)
                    .bind(a.kind.as_str())
                    .bind(a.currency.code())
                    .bind(client)
                    .bind(reseller)
                    .bind(a.credit_limit_minor)
                    .bind(0i64)
                    .bind(at);
            }
            q.fetch_all(&mut *c).await
        })?;
        let by_code: HashMap<String, i64> = rows.into_iter().map(|(id, c)| (c, id)).collect();
        for a in chunk {
            let id = by_code.get(&a.code).ok_or_else(|| {
                StoreError::Corrupt(format!("account {} was not returned", a.code))
            })?;
            ids.push(AccountId(*id));
        }
    }
    Ok(ids)
}

// ---------------------------------------------------------------------------------------
// The census

/// What a book holds after billing runs, in counts that two books can be compared by.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Census {
    pub invoices: u64,
    /// Distinct (client, currency, due date) among invoices: with grouped renewals, one
    /// invoice each.
    pub invoice_groups: u64,
    pub lines: u64,
    /// Lines of kind `service`.
    pub service_lines: u64,
    /// (service, period) pairs on more than one service line (must be 0; the unique index
    /// `invoice_lines_service_period_key` guarantees it).
    pub duplicate_service_periods: u64,
    pub services: u64,
    /// Services whose service lines are not exactly one per period from `first_period` up to
    /// `next_period - 1` (a book seeded at period `first_period`, billed only by runs).
    pub services_not_billed_once: u64,
    /// Services per `next_period`, ascending.
    pub services_by_next_period: Vec<(i64, u64)>,
}

/// How many invoices the book holds: one cheap read, for a test that watches a billing run
/// and kills it once a number of invoices is in.
pub async fn invoice_count(db: &Db) -> Result<u64, StoreError> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar("SELECT COUNT(*) FROM invoices")
        .fetch_one(p)
        .await)?;
    Ok(n as u64)
}

/// Counts what [`Census`] describes; `first_period` is the period the book's services were
/// seeded at (their first period to be invoiced).
pub async fn census(db: &Db, first_period: i64) -> Result<Census, StoreError> {
    let counts: (i64, i64, i64, i64, i64) = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM invoices), \
           (SELECT COUNT(*) FROM (SELECT DISTINCT client_id, currency, due_date FROM invoices) AS g), \
           (SELECT COUNT(*) FROM invoice_lines), \
           (SELECT COUNT(*) FROM invoice_lines WHERE kind = 'service'), \
           (SELECT COUNT(*) FROM services)"
    )
    .fetch_one(p)
    .await
    })?;
    let duplicates: i64 = on_db!(db, |p| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT service_id, period_index FROM invoice_lines WHERE kind = 'service' \
           GROUP BY service_id, period_index HAVING COUNT(*) > 1) AS d"
    )
    .fetch_one(p)
    .await
    })?;
    let not_once: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT s.id FROM services s \
           LEFT JOIN invoice_lines l ON l.service_id = s.id AND l.kind = 'service' \
           GROUP BY s.id, s.next_period \
           HAVING COUNT(l.id) <> s.next_period - $1 \
             OR COUNT(DISTINCT l.period_index) <> s.next_period - $1 \
             OR COALESCE(MIN(l.period_index), $1) <> $1 \
             OR COALESCE(MAX(l.period_index), s.next_period - 1) <> s.next_period - 1) AS bad"
    )
    .bind(first_period)
    .fetch_one(p)
    .await)?;
    let by_period: Vec<(i64, i64)> = on_db!(db, |p| sqlx::query_as(
        "SELECT next_period, COUNT(*) FROM services GROUP BY next_period ORDER BY next_period"
    )
    .fetch_all(p)
    .await)?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(Census {
        invoices: n(counts.0),
        invoice_groups: n(counts.1),
        lines: n(counts.2),
        service_lines: n(counts.3),
        duplicate_service_periods: n(duplicates),
        services: n(counts.4),
        services_not_billed_once: n(not_once),
        services_by_next_period: by_period.into_iter().map(|(p, c)| (p, n(c))).collect(),
    })
}

/// The ledger as content, without ids or times: the multiset of postings as
/// `(account code, side, amount_minor) -> count` and each account's balance by code, both
/// sorted. Two books that moved the same money have equal fingerprints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFingerprint {
    pub postings: Vec<((String, String, i64), u64)>,
    pub balances: Vec<(String, i64)>,
}

pub async fn ledger_fingerprint(db: &Db) -> Result<LedgerFingerprint, StoreError> {
    let postings: Vec<(String, String, i64, i64)> = on_db!(db, |p| sqlx::query_as(
        "SELECT a.code, p.side, p.amount_minor, COUNT(*) FROM ledger_postings p \
           JOIN ledger_accounts a ON a.id = p.account_id \
         GROUP BY a.code, p.side, p.amount_minor ORDER BY a.code, p.side, p.amount_minor"
    )
    .fetch_all(p)
    .await)?;
    let balances: Vec<(String, i64)> = on_db!(db, |p| sqlx::query_as(
        "SELECT code, balance_minor FROM ledger_accounts ORDER BY code"
    )
    .fetch_all(p)
    .await)?;
    Ok(LedgerFingerprint {
        postings: postings
            .into_iter()
            .map(|(code, side, amount, count)| {
                ((code, side, amount), u64::try_from(count).unwrap_or(0))
            })
            .collect(),
        balances,
    })
}

/// Every invoice number, in id order (drafts have none and are left out).
pub async fn invoice_numbers(db: &Db) -> Result<Vec<String>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT number FROM invoices WHERE number IS NOT NULL ORDER BY id"
    )
    .fetch_all(p)
    .await)?)
}

/// The next value of a number sequence (`None`: never used).
pub async fn sequence_next(db: &Db, name: &str, scope: &str) -> Result<Option<i64>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT next_value FROM number_sequences WHERE name = $1 AND scope = $2"
    )
    .bind(name)
    .bind(scope)
    .fetch_optional(p)
    .await)?)
}
