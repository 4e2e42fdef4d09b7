//! The billing run's batched reads and writes: due services (with their locks), the
//! clients and wallets a batch bills, and the record of each run.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::placeholders;
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::ids::ClientId;
use keel_domain::lifecycle::ServiceStatus;

/// A renewable service with what the billing run needs of its client, read in one pass.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueRow {
    pub id: i64,
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub product_id: i64,
    pub label: String,
    pub cycle: String,
    pub currency: String,
    pub recurring_minor: i64,
    pub anniversary: NaiveDate,
    /// The billing day due dates keep; NULL: the anniversary's day (see [`anniversary`]).
    pub billing_day: Option<i64>,
    pub next_period: i64,
    pub next_due_date: NaiveDate,
    pub cancel_on: Option<NaiveDate>,
    pub pending_credit_minor: i64,
    pub tax_class: Option<String>,
}

/// Where a renewable service stands in the billing run's walk: enough to cut batches and to
/// know which period a batch expects to bill. The batch reads the rest ([`DueRow`]) under
/// its lock.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct DueKey {
    pub id: i64,
    pub client_id: i64,
    pub next_period: i64,
}

/// The columns of a [`DueRow`] and where they come from, read by [`lock_services`].
const DUE_COLUMNS: &str = "s.id, s.client_id, s.reseller_id, s.product_id, s.label, s.cycle, s.currency, \
           s.recurring_minor, s.anniversary, s.billing_day, s.next_period, s.next_due_date, s.cancel_on, \
           s.pending_credit_minor, p.tax_class";

const DUE_FROM: &str = "FROM services s JOIN products p ON p.id = s.product_id";

/// Renewable services (active or suspended, not yet invoiced up to `horizon`) after
/// `(client, id)` in (client, id) order, at most `limit`. Reads the pool, not a
/// transaction: the batch reads each service again under its write transaction
/// ([`lock_services`]), so only the keys are read here.
pub async fn due_services(
    db: &Db,
    after: (i64, i64),
    horizon: NaiveDate,
    limit: u32,
) -> Result<Vec<DueKey>, StoreError> {
    // The row-value comparison lets both engines seek the (client_id, id) index to the
    // cursor; the equivalent OR form made each batch scan every row before it (quadratic).
    let sql = "SELECT s.id, s.client_id, s.next_period FROM services s \
         WHERE s.status IN ('active', 'suspended') AND s.next_due_date IS NOT NULL AND s.next_due_date <= $1 \
           AND (s.client_id, s.id) > ($2, $3) \
         ORDER BY s.client_id, s.id LIMIT $4";
    Ok(on_db!(db, |p| sqlx::query_as(sql)
        .bind(horizon)
        .bind(after.0)
        .bind(after.1)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?)
}

/// How many services [`due_services`] would walk, for the progress bar.
pub async fn count_due_services(db: &Db, horizon: NaiveDate) -> Result<u64, StoreError> {
    let n: i64 = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM services WHERE status IN ('active', 'suspended') \
           AND next_due_date IS NOT NULL AND next_due_date <= $1"
    )
    .bind(horizon)
    .fetch_one(p)
    .await)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The services of a batch as they are now, read (and on PostgreSQL locked) inside the
/// batch's transaction: the rows the batch plans from. Only services still renewable are
/// returned. Planning from these rows, not from the earlier [`due_services`] read, means a
/// batch never bills a period another run already billed, nor on terms (a cancellation, a
/// plan change) committed between that read and this lock.
pub async fn lock_services(
    tx: &mut Tx,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, DueRow>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        row: DueRow,
        status: String,
    }
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let lock = match tx.engine() {
            crate::Engine::Postgres => " ORDER BY s.id FOR UPDATE OF s",
            crate::Engine::Sqlite => "",
        };
        // The status is checked here, not in SQL: a status condition lets PostgreSQL
        // combine the primary key with a full scan of the partial billing index.
        let sql = format!(
            "SELECT {DUE_COLUMNS}, s.status {DUE_FROM} WHERE s.id IN ({}) AND s.next_due_date IS NOT NULL{lock}",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<Locked> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        out.extend(
            rows.into_iter()
                .filter(|l| ServiceStatus::parse(&l.status).is_some_and(ServiceStatus::renews))
                .map(|l| (l.row.id, l.row)),
        );
    }
    Ok(out)
}

/// What the billing run needs to know of a client.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillingClientRow {
    pub id: i64,
    pub kind: String,
    pub company_name: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub tax_id: Option<String>,
    pub tax_exempt: bool,
    pub group_tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    pub group_wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<i64>,
    pub group_invoice_lead_days: Option<i64>,
    pub billing_day: Option<i64>,
    pub group_billing_day: Option<i64>,
}

const BILLING_CLIENT_SELECT: &str = "SELECT c.id, c.kind, c.company_name, c.first_name, c.last_name, c.email, \
    c.address_line1, c.address_line2, c.city, c.region, c.postal_code, c.country, c.tax_id, c.tax_exempt, \
    g.tax_exempt AS group_tax_exempt, c.wallet_auto_apply, g.wallet_auto_apply AS group_wallet_auto_apply, \
    c.invoice_lead_days, g.invoice_lead_days AS group_invoice_lead_days, c.billing_day, \
    g.billing_day AS group_billing_day \
    FROM clients c LEFT JOIN client_groups g ON g.id = c.group_id";

/// The billing view of many clients at once, read in the caller's transaction.
pub async fn billing_clients(
    tx: &mut Tx,
    ids: &[i64],
) -> Result<Vec<BillingClientRow>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "{BILLING_CLIENT_SELECT} WHERE c.id IN ({})",
            (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows: Vec<BillingClientRow> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The billing view of one client, in a transaction.
pub async fn billing_client(
    tx: &mut Tx,
    id: ClientId,
) -> Result<Option<BillingClientRow>, StoreError> {
    let sql = format!("{BILLING_CLIENT_SELECT} WHERE c.id = $1");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?)
}

/// Wallet accounts (`wallet:client:{id}:{currency}`) with their balance and credit limit,
/// for the clients given, in one currency-agnostic read: `(client, currency) -> (account id,
/// available = -balance + credit limit)`.
pub async fn wallets_of(
    tx: &mut Tx,
    clients: &[i64],
) -> Result<std::collections::HashMap<(i64, String), (i64, i64)>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for chunk in clients.chunks(500) {
        let sql = format!(
            "SELECT client_id, currency, id, balance_minor, COALESCE(credit_limit_minor, 0) FROM ledger_accounts \
             WHERE kind = 'liability' AND code LIKE 'wallet:client:%' AND client_id IN ({})",
            placeholders(tx, chunk.len(), 1)
        );
        let rows: Vec<(i64, String, i64, i64, i64)> = on_tx!(tx, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(&mut *c).await
        })?;
        for (client, cur, id, balance, limit) in rows {
            // A liability's natural balance is credits - debits = -balance.
            out.insert((client, cur), (id, -balance + limit));
        }
    }
    Ok(out)
}

/// Records a billing run (informational).
pub async fn record_billing_run(
    tx: &mut Tx,
    as_of: NaiveDate,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    services: i64,
    invoices: i64,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO billing_runs (as_of, started_at, finished_at, services, invoices) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(as_of)
    .bind(started_at)
    .bind(finished_at)
    .bind(services)
    .bind(invoices)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The largest invoice lead time set on any client or client group.
pub async fn max_invoice_lead_days(db: &Db) -> Result<Option<i64>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT MAX(d) FROM (SELECT invoice_lead_days AS d FROM clients \
         UNION ALL SELECT invoice_lead_days AS d FROM client_groups) AS leads"
    )
    .fetch_one(p)
    .await)?)
}
