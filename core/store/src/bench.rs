//! SQL for the benchmarks (`keel-bench`, `keel bench …`) and for nothing else.
//!
//! - Scratch schemas: each PostgreSQL benchmark runs in a schema of its own, created on the
//!   server and dropped after the run ([`create_schema`], [`drop_schema`]), and prints the
//!   server settings that decide its speed ([`pg_settings`]).
//! - Baselines: the plain rows each benchmark prints beside its figures, measured in the
//!   same run on the same engine (PERFORMANCE.md, "How to benchmark"). They live in bare
//!   `bench_*` tables with no index, no trigger and no Keel rule: the floor of what the
//!   engine does for the same number of rows in the same transaction shape.
//!   - `bench ledger`: two-column rows ([`create_plain_rows`], [`insert_plain_rows`],
//!     [`insert_plain_row`]);
//!   - `bench billing`: invoice, line and posting rows shaped like the billing run's
//!     ([`create_billing_rows`], [`insert_billing_rows`]);
//!   - `bench jobs`: PERFORMANCE.md B6's bare queue ([`create_bare_queue`],
//!     [`claim_bare_queue`], [`delete_bare_queue`]).
//!
//! No Keel table is read or written here; the benchmarks measure Keel itself through the
//! ordinary repositories ([`crate::ledger`], [`crate::jobs`], [`crate::seed`]).

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::{exec, placeholders};
use crate::{Engine, on_db, on_tx};
use sqlx::Connection;

/// A schema name the benchmarks may create: lowercase ASCII letters, digits and `_`,
/// starting with a letter (it is written into the statement, not bound).
fn schema_name(schema: &str) -> Result<&str, StoreError> {
    let ok = schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(schema)
    } else {
        Err(StoreError::Config(format!(
            "{schema:?} is not a scratch schema name (a-z, 0-9 and _)"
        )))
    }
}

/// Creates `schema` on the PostgreSQL server at `server` (its own connection).
pub async fn create_schema(server: &str, schema: &str) -> Result<(), StoreError> {
    on_server(server, &format!("CREATE SCHEMA {}", schema_name(schema)?)).await
}

/// Drops `schema` and everything in it from the PostgreSQL server at `server`.
pub async fn drop_schema(server: &str, schema: &str) -> Result<(), StoreError> {
    on_server(
        server,
        &format!("DROP SCHEMA {} CASCADE", schema_name(schema)?),
    )
    .await
}

/// Runs `sql` on a connection of its own to the PostgreSQL server at `server`.
async fn on_server(server: &str, sql: &str) -> Result<(), StoreError> {
    let mut conn = sqlx::PgConnection::connect(server).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    Ok(())
}

/// The PostgreSQL settings that decide commit and write speed, as `(name, value)`, for a
/// benchmark's report. PostgreSQL only (`SHOW`).
pub async fn pg_settings(db: &Db) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut out = Vec::new();
    for name in [
        "server_version",
        "synchronous_commit",
        "fsync",
        "shared_buffers",
        "max_wal_size",
    ] {
        let value: String = on_db!(db, |p| sqlx::query_scalar(&format!("SHOW {name}"))
            .fetch_one(p)
            .await)?;
        out.push((name, value));
    }
    Ok(out)
}

/// Runs `statements` in one transaction.
async fn ddl(db: &Db, statements: &[&str]) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    for sql in statements {
        exec(&mut tx, sql).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Creates `bench_baseline (a, b)`, the ledger benchmark's plain two-column rows.
pub async fn create_plain_rows(db: &Db) -> Result<(), StoreError> {
    ddl(
        db,
        &["CREATE TABLE bench_baseline (a BIGINT NOT NULL, b TEXT NOT NULL)"],
    )
    .await
}

/// Inserts one `bench_baseline` row `(a, b)` per value of `a`, in one multi-row statement.
///
/// The placeholders are `$n` on both engines, as this baseline has always been measured
/// (not [`Tx::placeholder`]), so its figures compare with earlier reports.
pub async fn insert_plain_rows(tx: &mut Tx, a: &[i64], b: &str) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO bench_baseline (a, b) VALUES {}",
        (0..a.len())
            .map(|i| format!("(${}, ${})", i * 2 + 1, i * 2 + 2))
            .collect::<Vec<_>>()
            .join(", ")
    );
    on_tx!(tx, |c| {
        let mut q = sqlx::query(&sql);
        for n in a {
            q = q.bind(*n).bind(b);
        }
        q.execute(&mut *c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Inserts one `bench_baseline` row `(a, b)`.
pub async fn insert_plain_row(tx: &mut Tx, a: i64, b: &str) -> Result<(), StoreError> {
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO bench_baseline (a, b) VALUES ($1, $2)"
    )
    .bind(a)
    .bind(b)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Creates `bench_invoices`, `bench_lines` and `bench_postings`: the billing run's rows
/// without their keys, indexes and rules.
pub async fn create_billing_rows(db: &Db) -> Result<(), StoreError> {
    ddl(
        db,
        &[
            "CREATE TABLE bench_invoices (client_id BIGINT NOT NULL, number TEXT, status TEXT NOT NULL, \
               currency TEXT NOT NULL, issue_date TEXT, due_date TEXT, subtotal_minor BIGINT NOT NULL, \
               tax_minor BIGINT NOT NULL, total_minor BIGINT NOT NULL, buyer TEXT, created_at TEXT NOT NULL)",
            "CREATE TABLE bench_lines (invoice_id BIGINT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, \
               service_id BIGINT, period_index BIGINT, description TEXT NOT NULL, unit_minor BIGINT NOT NULL, \
               net_minor BIGINT NOT NULL, tax_minor BIGINT NOT NULL, total_minor BIGINT NOT NULL)",
            "CREATE TABLE bench_postings (entry_id BIGINT NOT NULL, account_id BIGINT NOT NULL, side TEXT NOT NULL, \
               amount_minor BIGINT NOT NULL, currency TEXT NOT NULL)",
        ],
    )
    .await
}

/// The billing baseline's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillingRows {
    /// `bench_invoices`: client `i`, number `INV-2027-{i + 1}`, 30.00 + 4.50 tax, one buyer
    /// snapshot.
    Invoices,
    /// `bench_lines`: three lines per invoice, one service each, 10.00 + 1.50 tax.
    Lines,
    /// `bench_postings`: two per entry, a debit then a credit, of 34.50.
    Postings,
}

/// Inserts rows `first..first + n` of `table` in one multi-row statement; invoices are
/// created at `created` (RFC 3339).
pub async fn insert_billing_rows(
    tx: &mut Tx,
    table: BillingRows,
    first: u64,
    n: usize,
    created: &str,
) -> Result<(), StoreError> {
    const BUYER: &str = r#"{"name":"Tariro Moyo","lines":["12 Samora Machel Avenue","Harare","ZW"],"country":"ZW","tax_id":null,"email":"client1.book42@example.com"}"#;
    let (into, width) = match table {
        BillingRows::Invoices => (
            "bench_invoices (client_id, number, status, currency, issue_date, due_date, \
             subtotal_minor, tax_minor, total_minor, buyer, created_at)",
            11,
        ),
        BillingRows::Lines => (
            "bench_lines (invoice_id, position, kind, service_id, period_index, description, \
             unit_minor, net_minor, tax_minor, total_minor)",
            10,
        ),
        BillingRows::Postings => (
            "bench_postings (entry_id, account_id, side, amount_minor, currency)",
            5,
        ),
    };
    let sql = format!("INSERT INTO {into} VALUES {}", placeholders(tx, n, width));
    on_tx!(tx, |c| {
        let mut q = sqlx::query(&sql);
        for i in first..first + n as u64 {
            q = match table {
                BillingRows::Invoices => q
                    .bind(i as i64)
                    .bind(format!("INV-2027-{:05}", i + 1))
                    .bind("unpaid")
                    .bind("USD")
                    .bind("2027-01-01")
                    .bind("2027-01-01")
                    .bind(3_000i64)
                    .bind(450i64)
                    .bind(3_450i64)
                    .bind(BUYER)
                    .bind(created),
                BillingRows::Lines => q
                    .bind((i / 3) as i64)
                    .bind((i % 3 + 1) as i64)
                    .bind("service")
                    .bind(i as i64)
                    .bind(1i64)
                    .bind(format!(
                        "site1.client{i}.example (2027-01-01 to 2027-01-31)"
                    ))
                    .bind(1_000i64)
                    .bind(1_000i64)
                    .bind(150i64)
                    .bind(1_150i64),
                BillingRows::Postings => q
                    .bind((i / 2) as i64)
                    .bind((1 + i % 2) as i64)
                    .bind(if i % 2 == 0 { "debit" } else { "credit" })
                    .bind(3_450i64)
                    .bind("USD"),
            };
        }
        q.execute(&mut *c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Creates `bench_queue (id, state)`, PERFORMANCE.md B6's bare queue, holding `n` ready
/// rows (state 0), in one transaction.
pub async fn create_bare_queue(db: &Db, n: u64) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let id = match db.engine() {
        Engine::Postgres => "BIGSERIAL PRIMARY KEY",
        Engine::Sqlite => "INTEGER PRIMARY KEY",
    };
    exec(
        &mut tx,
        &format!("CREATE TABLE bench_queue (id {id}, state INTEGER NOT NULL)"),
    )
    .await?;
    let mut left = n;
    while left > 0 {
        let k = left.min(10_000);
        let sql = format!(
            "INSERT INTO bench_queue (state) SELECT 0 FROM (VALUES {}) AS v",
            vec!["(1)"; k as usize].join(", ")
        );
        exec(&mut tx, &sql).await?;
        left -= k;
    }
    tx.commit().await?;
    Ok(())
}

/// Claims up to 100 ready rows of `bench_queue` in id order (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL; SQLite's single writer serializes claims) and returns their ids.
pub async fn claim_bare_queue(tx: &mut Tx) -> Result<Vec<i64>, StoreError> {
    let claim = match tx.engine() {
        Engine::Postgres => {
            "UPDATE bench_queue SET state = 1 WHERE id IN (SELECT id FROM bench_queue WHERE state = 0 \
             ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED) RETURNING id"
        }
        Engine::Sqlite => {
            "UPDATE bench_queue SET state = 1 WHERE id IN (SELECT id FROM bench_queue WHERE state = 0 \
             ORDER BY id LIMIT 100) RETURNING id"
        }
    };
    Ok(on_tx!(tx, |c| sqlx::query_scalar(claim)
        .fetch_all(&mut *c)
        .await)?)
}

/// Deletes the `bench_queue` rows `ids` (the ids are written into the statement, as B6 does).
pub async fn delete_bare_queue(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    exec(
        tx,
        &format!("DELETE FROM bench_queue WHERE id IN ({})", list.join(", ")),
    )
    .await
}
