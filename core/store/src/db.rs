//! Pools, transactions and migrations for both engines.
//!
//! SQLite: one file in WAL mode with foreign keys on, a busy timeout, `synchronous=FULL`, a
//! *single writer* (a pool of one connection, transactions opened with `BEGIN IMMEDIATE` so a
//! writer never fails half-way on a lock upgrade) and a separate pool of readers.
//! PostgreSQL: one pool; row locks and unique constraints carry the concurrency rules.
//!
//! The [`on_tx!`](crate::on_tx) and [`on_db!`](crate::on_db) macros take a body written once
//! and compile it for each engine's connection type, so a query is written in one place.

use crate::error::StoreError;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Also read by [`crate::constraints`], which names SQLite's unique keys from it.
pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// A handle to the database: cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite {
        /// One connection: every write goes through it, one transaction at a time.
        writer: SqlitePool,
        readers: SqlitePool,
    },
    Postgres(PgPool),
}

/// An open transaction on either engine. Dropping it without [`Tx::commit`] rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs `$body` with `$c` bound to the transaction's connection (`&mut SqliteConnection` or
/// `&mut PgConnection`); the body is compiled once per engine.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::Tx::Sqlite(t) => {
                let $c: &mut ::sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::Tx::Postgres(t) => {
                let $c: &mut ::sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}

/// Runs `$body` with `$p` bound to a read pool (`&SqlitePool` or `&PgPool`).
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$p:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite { readers: $p, .. } => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub busy_timeout: Duration,
    /// Create the SQLite file when it does not exist.
    pub create_if_missing: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 16,
            busy_timeout: Duration::from_secs(5),
            create_if_missing: true,
        }
    }
}

impl Db {
    /// Opens `sqlite://PATH` (or `sqlite::memory:` for tests) or `postgres://…`.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            let base = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
                .create_if_missing(options.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(options.busy_timeout)
                .pragma("temp_store", "memory");
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect_with(base.clone())
                .await?;
            let readers = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .connect_with(base.read_only(true))
                .await?;
            Ok(Db::Sqlite { writer, readers })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::Config(format!(
                "database URL must start with sqlite:// or postgres://, got {:?}",
                redact_url(url)
            )))
        }
    }

    pub fn engine(&self) -> Engine {
        match self {
            Db::Sqlite { .. } => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies every pending migration of this engine.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Opens a write transaction (`BEGIN IMMEDIATE` on SQLite: the write lock is taken up
    /// front, so the transaction cannot fail later on a lock upgrade).
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite { writer, .. } => Tx::Sqlite(writer.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { writer, readers } => {
                readers.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub fn engine(&self) -> Engine {
        match self {
            Tx::Sqlite(_) => Engine::Sqlite,
            Tx::Postgres(_) => Engine::Postgres,
        }
    }

    /// The `n`-th (1-based) bind placeholder for statements with many parameters: `$n` on
    /// PostgreSQL, `?` on SQLite. SQLite looks a named parameter up by a linear scan, so a
    /// statement with thousands of `$n` spends its time binding; anonymous `?`s bind in
    /// order in constant time each. Values must be bound in the order they appear.
    pub fn placeholder(&self, n: usize) -> String {
        match self {
            Tx::Sqlite(_) => "?".to_string(),
            Tx::Postgres(_) => format!("${n}"),
        }
    }
}

/// The current time at the precision both engines keep (microseconds), so a value read
/// back equals the value written (the audit chain hashes timestamps).
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// Truncates a timestamp to microseconds.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// A database URL with any password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        let table = [
            (
                "postgres://keel:s3cret@db:5432/keel",
                "postgres://keel:***@db:5432/keel",
            ),
            ("postgres://keel@db/keel", "postgres://keel@db/keel"),
            ("sqlite://keel.db", "sqlite://keel.db"),
            ("postgres://u:p@ss@h/d", "postgres://u:***@h/d"),
        ];
        for (input, expected) in table {
            assert_eq!(redact_url(input), expected);
        }
    }
}
