//! `keel bench …`: benchmarks that print their figures beside a baseline measured in the
//! same run, on the same engine, so a noisy machine shifts both sides (PERFORMANCE.md,
//! "How to benchmark"). No test asserts a timing.
//!
//! `keel bench ledger` (goals G5, G6): postings per second through the ledger's real write
//! paths, batched (`post_batch`, 1,000 entries per transaction) and one entry per durable
//! commit (`post`, 8 concurrent writers), each with uniform accounts and with one hot
//! account on every entry. The baseline is the engine's own speed for the same number of
//! plain rows in the same transaction shape (a two-column insert, no ledger rules).

use crate::config::Config;
use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use keel_domain::currency::Currency;
use keel_domain::ids::AccountId;
use keel_domain::ledger::{AccountKind, EntryBuilder, NewEntry};
use keel_domain::money::Money;
use keel_store::db::ConnectOptions;
use keel_store::ledger::NewAccount;
use keel_store::{Db, on_tx};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ledger postings per second (G5 batched, G6 one commit per entry; uniform and hot account).
    Ledger {
        /// Which engines to measure.
        #[arg(long, value_enum, default_value = "both")]
        engine: EngineChoice,
        /// Entries (two postings each) in each batched run.
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        /// Entries in each one-commit-per-entry run.
        #[arg(long, default_value_t = 8_000)]
        single_entries: usize,
        /// PostgreSQL server to create a scratch schema on (default: KEEL_BENCH_PG_URL, else
        /// postgres://postgres@127.0.0.1:5432/postgres).
        #[arg(long)]
        pg_url: Option<String>,
    },
    /// HTTP throughput and latency (G1: /healthz against a trivial axum server; G2: an
    /// authenticated client list), from a load generator in the same run.
    Http(HttpArgs),
    /// Plugin call cost (G12): a fresh instance per call for a no-op, a ~1 KB record and a
    /// host import, beside a native Rust implementation of the same trait.
    Plugins(crate::bench_plugins::PluginsArgs),
    /// The billing run over a seeded book (G7): seconds, services/s and peak RSS, beside the
    /// plain inserts of the rows it must write.
    Billing(crate::bench_billing::BillingArgs),
    /// The job queue: drain a backlog of no-op jobs beside a bare SKIP LOCKED queue, and the
    /// enqueue-to-start latency at 100 jobs/s (G8, G9).
    Jobs(crate::bench_jobs::JobsArgs),
}

#[derive(clap::Args, Debug)]
pub struct HttpArgs {
    /// Which engines to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// Clients seeded into the database the API lists from.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// PostgreSQL server for the scratch schema (as for `bench ledger`).
    #[arg(long)]
    pub pg_url: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EngineChoice {
    Sqlite,
    Postgres,
    Both,
}

pub async fn run(command: BenchCommand, _config: &Config) -> Result<()> {
    match command {
        BenchCommand::Ledger {
            engine,
            entries,
            single_entries,
            pg_url,
        } => {
            let mut rows = Vec::new();
            if engine != EngineChoice::Postgres {
                let scratch = Scratch::sqlite().await?;
                rows.extend(ledger(&scratch.db, "sqlite", entries, single_entries).await?);
                scratch.drop_it().await;
            }
            if engine != EngineChoice::Sqlite {
                let url = pg_server(pg_url);
                let scratch = Scratch::postgres(&url).await?;
                rows.extend(ledger(&scratch.db, "postgres", entries, single_entries).await?);
                scratch.drop_it().await;
            }
            print_table(&rows);
            Ok(())
        }
        BenchCommand::Http(args) => crate::bench_http::run(args).await,
        BenchCommand::Plugins(args) => crate::bench_plugins::run(args).await,
        BenchCommand::Billing(args) => crate::bench_billing::run(args).await,
        BenchCommand::Jobs(args) => crate::bench_jobs::run(args).await,
    }
}

/// The PostgreSQL server benchmarks create their scratch schema on.
pub fn pg_server(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("KEEL_BENCH_PG_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A throwaway database: a temporary SQLite file, or a schema on a PostgreSQL server.
pub(crate) struct Scratch {
    pub(crate) db: Db,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema { server: String, schema: String },
}

impl Scratch {
    pub(crate) async fn sqlite() -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!(
            "keel-bench-{}-{}.db",
            std::process::id(),
            rand::random::<u32>()
        ));
        let db = Db::connect(
            &format!("sqlite://{}", path.display()),
            &ConnectOptions::default(),
        )
        .await?;
        db.migrate().await?;
        Ok(Scratch {
            db,
            cleanup: Cleanup::File(path),
        })
    }

    pub(crate) async fn postgres(server: &str) -> Result<Scratch> {
        use sqlx::Connection;
        let schema = format!(
            "keel_bench_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        let mut conn = sqlx::PgConnection::connect(server).await.with_context(|| {
            format!(
                "cannot reach PostgreSQL at {}",
                keel_store::db::redact_url(server)
            )
        })?;
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut conn)
            .await?;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{schema}");
        let db = Db::connect(
            &url,
            &ConnectOptions {
                max_connections: 16,
                ..Default::default()
            },
        )
        .await?;
        db.migrate().await?;
        Ok(Scratch {
            db,
            cleanup: Cleanup::Schema {
                server: server.to_string(),
                schema,
            },
        })
    }

    pub(crate) async fn drop_it(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Schema { server, schema } => {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            }
        }
    }
}

struct Row {
    engine: &'static str,
    mode: &'static str,
    accounts: &'static str,
    postings_per_sec: f64,
    baseline_rows_per_sec: f64,
    goal: &'static str,
}

const ACCOUNTS: usize = 1_000;

async fn accounts(db: &Db, tag: &str) -> Result<Vec<AccountId>> {
    let mut tx = db.begin().await?;
    let mut ids = Vec::with_capacity(ACCOUNTS);
    for i in 0..ACCOUNTS {
        let a = keel_store::ledger::create_account(
            &mut tx,
            &NewAccount {
                code: format!("bench:{tag}:{i}"),
                name: format!("bench {i}"),
                kind: AccountKind::Asset,
                currency: Currency::USD,
                owner: None,
                credit_limit_minor: None,
            },
            keel_store::db::now(),
        )
        .await?;
        ids.push(a.id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// Entry `n`: debit one account, credit another. `hot` puts the same account on every entry.
fn entry(run: &str, n: usize, ids: &[AccountId], hot: bool) -> NewEntry {
    let debit = if hot {
        ids[0]
    } else {
        ids[(n * 7 + 1) % ids.len()]
    };
    let credit = ids[(n * 13 + 2) % (ids.len() - 1) + 1];
    let credit = if credit == debit {
        ids[(n + 3) % (ids.len() - 1) + 1]
    } else {
        credit
    };
    EntryBuilder::new(format!("{run}-{n}"), "bench")
        .debit(debit, Money::new(100 + (n as i64 % 900), Currency::USD))
        .credit(credit, Money::new(100 + (n as i64 % 900), Currency::USD))
        .build()
        .expect("bench entries balance")
}

async fn ledger(db: &Db, engine: &'static str, entries: usize, single: usize) -> Result<Vec<Row>> {
    eprintln!(
        "bench ledger on {engine}: {entries} batched entries, {single} single-commit entries per run"
    );
    let ids = accounts(db, "u").await?;
    sqlx_baseline_table(db).await?;
    let mut rows = Vec::new();
    let batched_base = baseline_batched(db, entries * 2).await?;
    let single_base = baseline_single(db, single * 2).await?;
    for hot in [false, true] {
        let run = if hot { "batch-hot" } else { "batch" };
        let start = Instant::now();
        for chunk_start in (0..entries).step_by(1000) {
            let batch: Vec<NewEntry> = (chunk_start..(chunk_start + 1000).min(entries))
                .map(|n| entry(run, n, &ids, hot))
                .collect();
            let mut tx = db.begin().await?;
            keel_store::ledger::post_batch(&mut tx, &batch, keel_store::db::now()).await?;
            tx.commit().await?;
        }
        let rate = (entries * 2) as f64 / start.elapsed().as_secs_f64();
        rows.push(Row {
            engine,
            mode: "batched 1,000/tx",
            accounts: if hot { "hot" } else { "uniform" },
            postings_per_sec: rate,
            baseline_rows_per_sec: batched_base,
            goal: if engine == "sqlite" {
                ">= 100k/s (G5)"
            } else {
                ">= 20k/s (G5)"
            },
        });
    }
    for hot in [false, true] {
        let run = if hot { "single-hot" } else { "single" };
        let start = Instant::now();
        let writers = 8;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (db, ids) = (db.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                for n in (w..single).step_by(writers) {
                    let e = entry(run, n, &ids, hot);
                    let mut tx = db.begin().await?;
                    keel_store::ledger::post(&mut tx, &e, keel_store::db::now()).await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let rate = (single * 2) as f64 / start.elapsed().as_secs_f64();
        rows.push(Row {
            engine,
            mode: "1 entry/commit, 8 writers",
            accounts: if hot { "hot" } else { "uniform" },
            postings_per_sec: rate,
            baseline_rows_per_sec: single_base,
            goal: if engine == "sqlite" {
                ">= 5k/s (G6)"
            } else {
                ">= 2.5k/s (G6)"
            },
        });
    }
    let report = keel_store::ledger::check(db).await?;
    anyhow::ensure!(
        report.is_clean(),
        "the ledger does not balance after the benchmark: {report:?}"
    );
    eprintln!(
        "  ledger check after the runs: {} entries, trial balance zero",
        report.entries
    );
    Ok(rows)
}

async fn sqlx_baseline_table(db: &Db) -> Result<()> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| sqlx::query(
        "CREATE TABLE bench_baseline (a BIGINT NOT NULL, b TEXT NOT NULL)"
    )
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(())
}

/// Plain two-column rows, 1,000 per multi-row insert, 2,000 per transaction (what one
/// batch of 1,000 entries writes in postings).
async fn baseline_batched(db: &Db, rows: usize) -> Result<f64> {
    let start = Instant::now();
    for chunk_start in (0..rows).step_by(2000) {
        let end = (chunk_start + 2000).min(rows);
        let mut tx = db.begin().await?;
        for part in (chunk_start..end).collect::<Vec<_>>().chunks(1000) {
            let sql = format!(
                "INSERT INTO bench_baseline (a, b) VALUES {}",
                (0..part.len())
                    .map(|i| format!("(${}, ${})", i * 2 + 1, i * 2 + 2))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            on_tx!(&mut tx, |c| {
                let mut q = sqlx::query(&sql);
                for n in part {
                    q = q.bind(*n as i64).bind("USD");
                }
                q.execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await?;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// One plain row per durable commit, 8 concurrent writers.
async fn baseline_single(db: &Db, rows: usize) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for n in (w..rows).step_by(8) {
                let mut tx = db.begin().await?;
                on_tx!(&mut tx, |c| sqlx::query(
                    "INSERT INTO bench_baseline (a, b) VALUES ($1, $2)"
                )
                .bind(n as i64)
                .bind("USD")
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<9} {:<26} {:<8} {:>14} {:>16} {:>7} {:>10}  goal",
        "engine", "mode", "accounts", "postings/s", "baseline rows/s", "ratio", "hot/unif."
    );
    for r in rows {
        let uniform = rows
            .iter()
            .find(|u| u.engine == r.engine && u.mode == r.mode && u.accounts == "uniform")
            .map_or(f64::NAN, |u| u.postings_per_sec);
        let hot_ratio = if r.accounts == "hot" {
            format!("{:.0}%", 100.0 * r.postings_per_sec / uniform)
        } else {
            "-".into()
        };
        println!(
            "{:<9} {:<26} {:<8} {:>14.0} {:>16.0} {:>6.0}% {:>10}  {}",
            r.engine,
            r.mode,
            r.accounts,
            r.postings_per_sec,
            r.baseline_rows_per_sec,
            100.0 * r.postings_per_sec / r.baseline_rows_per_sec,
            hot_ratio,
            r.goal
        );
    }
}
