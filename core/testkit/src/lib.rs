//! keel-testkit: what Keel's tests stand on (dev-only).
//!
//! - [`TestDb`]: a fresh database per test, on SQLite (a new file) or PostgreSQL (a new
//!   schema), migrated; [`TestDb::finish`] asserts the ledger balances and its sub-ledgers
//!   reconcile, then drops it.
//! - [`store_test!`]: writes one test body once and runs it as two tests, `…::sqlite` and
//!   `…::postgres`.
//! - [`pg`]: finds PostgreSQL (`KEEL_TEST_PG_URL`, else 127.0.0.1:5432, else a throwaway
//!   cluster started by `scripts/pg-throwaway`); under `CI=true` a missing PostgreSQL fails
//!   the test, it is never skipped.
//! - [`assert_ledger_balanced`]: the ledger checker every scenario ends with (balances,
//!   trial balance, tax payable, receivables, wallets).
//! - [`plugins`]: the real plugin host with loopback fake providers, and a nested build
//!   of a plugin crate for authors' tests.
//! - [`python`]: componentize-py for the Python plugin tests (found, or a CI failure),
//!   bindings and builds with keel-sdk for Python.
//! - [`scenario`]: test worlds (catalog, clients, wallets) built through keel-app's use
//!   cases, and the large seeded [`scenario::book`] for benchmarks.
//! - [`paynow`]: a protocol-faithful fake Paynow on loopback (hashes, replies, test numbers,
//!   status updates with retries, a checkout page), scripted by tests; the `keel-fake`
//!   binary serves it to a person.
//! - [`whatsapp`]: a protocol-faithful fake WhatsApp Cloud API on loopback (the bearer
//!   token, send shapes, Meta's error bodies, the 24-hour window on fake time, signed
//!   status and message webhooks in or out of order, duplicated, with retries), scripted
//!   by tests.
//! - [`spawn_server`]: runs a server on `127.0.0.1:0` and hands back its address and a
//!   shutdown switch.

pub mod paynow;
pub mod pg;
pub mod plugins;
pub mod python;
pub mod scenario;
pub mod smtp;
pub mod whatsapp;

use keel_store::Db;
use keel_store::db::ConnectOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, migrated database for one test.
pub struct TestDb {
    pub db: Db,
    pub backend: Backend,
    /// The URL the test can hand to a child process (`keel --database …`).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_schema: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    format!(
        "keel_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    )
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => TestDb::sqlite().await,
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("keel.db").display());
        let db = Db::connect(&url, &ConnectOptions::default())
            .await
            .expect("open SQLite");
        db.migrate().await.expect("migrate SQLite");
        TestDb {
            db,
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg_schema: None,
        }
    }

    /// A new schema on the test PostgreSQL server.
    pub async fn postgres() -> TestDb {
        let server = pg::server_url().await;
        let schema = unique_name();
        pg::execute(&server, &format!("CREATE SCHEMA {schema}")).await;
        let url = pg::with_search_path(&server, &schema);
        let db = Db::connect(
            &url,
            &ConnectOptions {
                max_connections: 8,
                ..Default::default()
            },
        )
        .await
        .expect("connect to PostgreSQL");
        db.migrate().await.expect("migrate PostgreSQL");
        TestDb {
            db,
            backend: Backend::Postgres,
            url,
            _dir: None,
            pg_schema: Some((server, schema)),
        }
    }

    /// Ends the scenario: the ledger must balance and its sub-ledgers reconcile; then the
    /// database is dropped.
    pub async fn finish(self) {
        assert_ledger_balanced(&self.db).await;
        self.db.close().await;
        if let Some((server, schema)) = &self.pg_schema {
            pg::execute(server, &format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}

/// Asserts that every account's cached balance equals the sum of its postings, every entry
/// balances per currency, the trial balance is zero in every currency, and the sub-ledgers
/// reconcile with the documents (tax payable, receivables, each wallet; docs/money.md): the
/// report's `is_clean` covers them all, so every scenario ending in [`TestDb::finish`]
/// checks them.
pub async fn assert_ledger_balanced(db: &Db) {
    let report = keel_store::ledger::check(db)
        .await
        .expect("ledger check runs");
    assert!(
        report.is_clean(),
        "the ledger does not balance: {report:#?}"
    );
}

/// Runs one test body as two tests, on SQLite and on PostgreSQL:
///
/// ```text
/// keel_testkit::store_test!(async fn a_wallet_starts_empty(t) {
///     // `t: &TestDb`
/// });
/// ```
/// Every test ends with [`TestDb::finish`], so the trial balance is checked after each one.
#[macro_export]
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($t:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let owned = $crate::TestDb::new($crate::Backend::Sqlite).await;
                {
                    let $t = &owned;
                    $body
                }
                owned.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let owned = $crate::TestDb::new($crate::Backend::Postgres).await;
                {
                    let $t = &owned;
                    $body
                }
                owned.finish().await;
            }
        }
    };
}

/// A server bound to `127.0.0.1:0`, running until [`RunningServer::stop`] or drop.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Signals shutdown and waits for the server to drain.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task");
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Binds `127.0.0.1:0` and runs `serve(listener, shutdown)` on it in a task. The server
/// must return once `shutdown` completes (the convention of `keel_api::serve`).
pub async fn spawn_server<F, Fut>(serve: F) -> RunningServer
where
    F: FnOnce(tokio::net::TcpListener, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    spawn_server_on(listener, serve)
}

/// [`spawn_server`] on a listener the caller bound (a fixed address, as `keel-fake` takes).
pub fn spawn_server_on<F, Fut>(listener: tokio::net::TcpListener, serve: F) -> RunningServer
where
    F: FnOnce(tokio::net::TcpListener, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener.local_addr().expect("local address");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = Box::pin(async move {
        let _ = rx.await;
    });
    let task = tokio::spawn(serve(listener, shutdown));
    RunningServer {
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

/// Waits until `read()` holds at least `count` items, waking on `notify`, and returns them;
/// panics after `timeout` naming `what` (for what a fake does in the background, such as
/// delivering callbacks).
pub(crate) async fn wait_for_count<T: std::fmt::Debug>(
    notify: &tokio::sync::Notify,
    count: usize,
    timeout: std::time::Duration,
    what: &str,
    read: impl Fn() -> Vec<T>,
) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let items = read();
        if items.len() >= count {
            return items;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            panic!(
                "waited {timeout:?} for {count} {what}; saw {}: {items:#?}",
                items.len()
            );
        }
    }
}
