//! `keel bench ledger` (goals G5, G6): postings per second through the ledger's real write
//! paths, batched (`post_batch`, 1,000 entries per transaction) and one entry per durable
//! commit (`post`, 8 concurrent writers), each with uniform accounts and with one hot
//! account on every entry. The baseline is the engine's own speed for the same number of
//! plain rows in the same transaction shape (a two-column insert, no ledger rules).

use crate::scratch::Scratch;
use crate::{EngineChoice, pg_server};
use anyhow::Result;
use keel_domain::currency::Currency;
use keel_domain::ids::AccountId;
use keel_domain::ledger::{AccountKind, EntryBuilder, NewEntry};
use keel_domain::money::Money;
use keel_store::Db;
use keel_store::ledger::NewAccount;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct LedgerArgs {
    /// Which engines to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// Entries (two postings each) in each batched run.
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    /// Entries in each one-commit-per-entry run.
    #[arg(long, default_value_t = 8_000)]
    pub single_entries: usize,
    /// PostgreSQL server to create a scratch schema on (default: KEEL_BENCH_PG_URL, else
    /// postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long)]
    pub pg_url: Option<String>,
}

pub async fn run(args: LedgerArgs) -> Result<()> {
    let mut rows = Vec::new();
    if args.engine != EngineChoice::Postgres {
        let scratch = Scratch::sqlite().await?;
        rows.extend(ledger(&scratch.db, "sqlite", args.entries, args.single_entries).await?);
        scratch.drop_it().await;
    }
    if args.engine != EngineChoice::Sqlite {
        let url = pg_server(args.pg_url);
        let scratch = Scratch::postgres(&url).await?;
        rows.extend(ledger(&scratch.db, "postgres", args.entries, args.single_entries).await?);
        scratch.drop_it().await;
    }
    print_table(&rows);
    Ok(())
}

struct Row {
    engine: &'static str,
    mode: &'static str,
    accounts: &'static str,
    postings_per_sec: f64,
    baseline_rows_per_sec: f64,
    goal: &'static str,
}

impl Row {
    /// A measured row; `goals` is the goal on SQLite, then on PostgreSQL.
    fn new(
        engine: &'static str,
        mode: &'static str,
        hot: bool,
        postings_per_sec: f64,
        baseline_rows_per_sec: f64,
        goals: [&'static str; 2],
    ) -> Row {
        Row {
            engine,
            mode,
            accounts: if hot { "hot" } else { "uniform" },
            postings_per_sec,
            baseline_rows_per_sec,
            goal: goals[usize::from(engine != "sqlite")],
        }
    }
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
    keel_store::bench::create_plain_rows(db).await?;
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
        rows.push(Row::new(
            engine,
            "batched 1,000/tx",
            hot,
            rate,
            batched_base,
            [">= 100k/s (G5)", ">= 20k/s (G5)"],
        ));
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
        rows.push(Row::new(
            engine,
            "1 entry/commit, 8 writers",
            hot,
            rate,
            single_base,
            [">= 5k/s (G6)", ">= 2.5k/s (G6)"],
        ));
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

/// Plain two-column rows, 1,000 per multi-row insert, 2,000 per transaction (what one
/// batch of 1,000 entries writes in postings).
async fn baseline_batched(db: &Db, rows: usize) -> Result<f64> {
    let start = Instant::now();
    for chunk_start in (0..rows).step_by(2000) {
        let end = (chunk_start + 2000).min(rows);
        let mut tx = db.begin().await?;
        for part in (chunk_start as i64..end as i64)
            .collect::<Vec<_>>()
            .chunks(1000)
        {
            keel_store::bench::insert_plain_rows(&mut tx, part, "USD").await?;
        }
        tx.commit().await?;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// One plain row per durable commit, 8 concurrent writers (the table made by
/// `keel_store::bench::create_plain_rows`).
pub(crate) async fn baseline_single(db: &Db, rows: usize) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8usize {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for n in (w..rows).step_by(8) {
                let mut tx = db.begin().await?;
                keel_store::bench::insert_plain_row(&mut tx, n as i64, "USD").await?;
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
