//! `keel bench billing` (goal G7): the renewal run over a seeded book, in process, on a
//! fresh scratch database per engine.
//!
//! For each engine: seed the book ([`keel_testkit::scenario::book::seed_book`], timed
//! apart), reset the process's peak RSS, time [`keel_app::billing_run::run`] as of the day
//! every service is due, read the peak RSS, then check the outcome (the ledger balances; one invoice per
//! (client, currency, due date) group; no (service, period) billed twice; every service
//! billed exactly once). The baseline, measured in the same run on the same engine, is the
//! floor of what the run must write: plain multi-row inserts of as many invoice rows, line
//! rows and two postings per invoice into unindexed scratch tables, 1,000 rows per
//! transaction.

use crate::scratch::Scratch;
use crate::{EngineChoice, pg_server};
use anyhow::{Result, anyhow, ensure};
use chrono::NaiveDate;
use keel_app::billing_run::{self, RunOptions, RunReport};
use keel_app::{App, Ctx};
use keel_store::Db;
use keel_testkit::scenario::book::{self, BookOptions, BookSummary};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BillingArgs {
    /// Services in the book (all due on --due-on).
    #[arg(long, default_value_t = 10_000)]
    pub services: u64,
    /// Which engines to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// Seed of the book: the same seed writes the same book.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The day every service is due, and the run's as-of date (YYYY-MM-DD, day 1 to 28).
    #[arg(long, default_value = "2027-01-01", value_parser = day)]
    pub due_on: NaiveDate,
    /// PostgreSQL server for the scratch schema (as for `bench ledger`).
    #[arg(long)]
    pub pg_url: Option<String>,
    /// Measure this many runs per engine, each on a freshly seeded book, and judge the
    /// median (like hyperfine with a restored snapshot, in process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub runs: u32,
}

/// A `--due-on` value: YYYY-MM-DD (a usage error otherwise, exit code 2).
fn day(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("must be YYYY-MM-DD, not {s:?}"))
}

/// G7: 100k services in 6 s and 1M in 60 s on SQLite (16,667 services/s); 1M in 150 s on
/// PostgreSQL (6,667 services/s). Other sizes are held to the same rate.
fn target_seconds(engine: &str, services: u64) -> f64 {
    let per_second = if engine == "sqlite" {
        100_000.0 / 6.0
    } else {
        1_000_000.0 / 150.0
    };
    services as f64 / per_second
}

const RSS_TARGET_KB: u64 = 256 * 1024;

struct Measured {
    engine: &'static str,
    book: BookSummary,
    seed_time: Duration,
    report: RunReport,
    run_time: Duration,
    baseline_rows: u64,
    baseline_time: Duration,
    peak_rss_kb: Option<u64>,
    /// Whether the peak was reset just before the run (else it includes seeding and any
    /// earlier engine).
    peak_reset: bool,
    checks: Vec<String>,
}

pub async fn run(args: BillingArgs) -> Result<()> {
    let due_on = args.due_on;
    let mut results = Vec::new();
    for _ in 0..args.runs {
        if args.engine != EngineChoice::Postgres {
            let scratch = Scratch::sqlite().await?;
            let result = measure(&scratch.db, "sqlite", &args, due_on).await;
            scratch.drop_it().await;
            results.push(result?);
        }
        if args.engine != EngineChoice::Sqlite {
            let url = pg_server(args.pg_url.clone());
            let scratch = Scratch::postgres(&url).await?;
            if let Ok(settings) = keel_store::bench::pg_settings(&scratch.db).await {
                let settings: Vec<String> =
                    settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
                eprintln!("  postgres: {}", settings.join(" "));
            }
            let result = measure(&scratch.db, "postgres", &args, due_on).await;
            scratch.drop_it().await;
            results.push(result?);
        }
    }
    print_table(&results);
    if args.runs > 1 {
        print_summary(&results);
    }
    Ok(())
}

async fn measure(
    db: &Db,
    engine: &'static str,
    args: &BillingArgs,
    due_on: NaiveDate,
) -> Result<Measured> {
    let app = App::new(db.clone());
    eprintln!(
        "bench billing on {engine}: seeding {} services (seed {}, due {due_on}), batch size {}",
        args.services, args.seed, app.billing.batch_size
    );
    let start = Instant::now();
    let book = book::seed_book(&app, &BookOptions::new(args.services, args.seed, due_on))
        .await
        .map_err(|e| anyhow!("seeding the book: {e}"))?;
    let seed_time = start.elapsed();
    eprintln!(
        "  seeded {} clients, {} services, {} wallets in {:.2} s ({:.0} services/s)",
        book.clients,
        book.services,
        book.wallets,
        seed_time.as_secs_f64(),
        book.services as f64 / seed_time.as_secs_f64()
    );

    let peak_reset = reset_peak_rss();
    let start = Instant::now();
    let report = billing_run::run(
        &app,
        &Ctx::system("keel bench billing"),
        &RunOptions {
            as_of: due_on,
            dry_run: false,
        },
        &|_| {},
    )
    .await
    .map_err(|e| anyhow!("the billing run failed: {e}"))?;
    let run_time = start.elapsed();
    let peak_rss_kb = peak_rss_kb();
    eprintln!(
        "  billing run: {} invoices, {} periods, {} batches in {:.2} s",
        report.invoices,
        report.periods,
        report.batches,
        run_time.as_secs_f64()
    );

    // The outcome must be right before its speed means anything.
    let mut checks = Vec::new();
    let ledger = keel_store::ledger::check(db).await?;
    ensure!(
        ledger.is_clean(),
        "the ledger does not balance after the run: {ledger:?}"
    );
    checks.push(format!(
        "ledger balanced ({} entries, {} postings, trial balance zero)",
        ledger.entries, ledger.postings
    ));
    let census = keel_store::seed::census(db, i64::from(book.first_period)).await?;
    ensure!(
        census.invoices == book.expected_invoices && report.invoices == book.expected_invoices,
        "{} invoices stored ({} reported), expected {} (client, currency, due date) groups",
        census.invoices,
        report.invoices,
        book.expected_invoices
    );
    ensure!(
        census.invoice_groups == census.invoices,
        "{} invoices for {} (client, currency, due date) groups",
        census.invoices,
        census.invoice_groups
    );
    ensure!(
        census.duplicate_service_periods == 0 && census.services_not_billed_once == 0,
        "{} (service, period) pairs billed twice, {} services not billed exactly once",
        census.duplicate_service_periods,
        census.services_not_billed_once
    );
    ensure!(
        report.periods == book.services && census.service_lines == book.services,
        "{} periods reported, {} service lines, for {} services",
        report.periods,
        census.service_lines,
        book.services
    );
    checks.push(format!(
        "invoices {} = expected (client, currency, due date) groups {}; service lines {} = services; \
         0 duplicate (service, period); every service billed once",
        census.invoices, book.expected_invoices, census.service_lines
    ));

    let start = Instant::now();
    let baseline_rows = baseline(db, report.invoices, report.periods).await?;
    let baseline_time = start.elapsed();
    Ok(Measured {
        engine,
        book,
        seed_time,
        report,
        run_time,
        baseline_rows,
        baseline_time,
        peak_rss_kb,
        peak_reset,
        checks,
    })
}

/// Resets the kernel's peak-RSS mark (`VmHWM`) of this process; false when not permitted.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `VmHWM` of this process in kB (Linux).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Writes `invoices` invoice rows, `lines` line rows and two postings per invoice into
/// scratch tables with plain multi-row inserts, 1,000 rows per transaction; returns the rows
/// written.
async fn baseline(db: &Db, invoices: u64, lines: u64) -> Result<u64> {
    use keel_store::bench::{BillingRows, create_billing_rows, insert_billing_rows};
    create_billing_rows(db).await?;
    let created = keel_store::db::now().to_rfc3339();
    let mut written = 0u64;
    for (table, rows) in [
        (BillingRows::Invoices, invoices),
        (BillingRows::Lines, lines),
        (BillingRows::Postings, invoices * 2),
    ] {
        for start in (0..rows).step_by(1000) {
            let n = (rows - start).min(1000) as usize;
            let mut tx = db.begin().await?;
            insert_billing_rows(&mut tx, table, start, n, &created).await?;
            tx.commit().await?;
            written += n as u64;
        }
    }
    Ok(written)
}

/// Per engine over several runs: the run time's min, median and max, judged by the median.
fn print_summary(results: &[Measured]) {
    for engine in ["sqlite", "postgres"] {
        let mut times: Vec<f64> = results
            .iter()
            .filter(|m| m.engine == engine)
            .map(|m| m.run_time.as_secs_f64())
            .collect();
        let Some(services) = results
            .iter()
            .find(|m| m.engine == engine)
            .map(|m| m.book.services)
        else {
            continue;
        };
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let target = target_seconds(engine, services);
        println!(
            "{engine}: {} runs of {services} services on fresh books: run s min {:.2} / median {:.2} / max {:.2}; \
             median <= {target:.1} s {}",
            times.len(),
            times[0],
            median,
            times[times.len() - 1],
            if median <= target { "met" } else { "MISSED" }
        );
    }
}

fn print_table(results: &[Measured]) {
    println!(
        "{:<9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8} {:>11} {:>11} {:>9} {:>10}  G7",
        "engine",
        "services",
        "clients",
        "seed s",
        "invoices",
        "periods",
        "run s",
        "services/s",
        "baseline s",
        "run/base",
        "peak RSS"
    );
    for m in results {
        let target = target_seconds(m.engine, m.book.services);
        let rss = m
            .peak_rss_kb
            .map_or("?".into(), |kb| format!("{:.0} MB", kb as f64 / 1024.0));
        let time_met = m.run_time.as_secs_f64() <= target;
        let rss_met = m.peak_rss_kb.is_some_and(|kb| kb <= RSS_TARGET_KB);
        println!(
            "{:<9} {:>9} {:>8} {:>8.2} {:>9} {:>9} {:>8.2} {:>11.0} {:>11.2} {:>8.1}x {:>10}  time <= {:.1} s {}; RSS <= 256 MB {}",
            m.engine,
            m.book.services,
            m.book.clients,
            m.seed_time.as_secs_f64(),
            m.report.invoices,
            m.report.periods,
            m.run_time.as_secs_f64(),
            m.book.services as f64 / m.run_time.as_secs_f64(),
            m.baseline_time.as_secs_f64(),
            m.run_time.as_secs_f64() / m.baseline_time.as_secs_f64(),
            rss,
            target,
            if time_met { "met" } else { "MISSED" },
            if rss_met { "met" } else { "MISSED" },
        );
    }
    for m in results {
        println!(
            "{}: baseline wrote {} rows ({} invoices + {} lines + {} postings, 1,000 per transaction) at {:.0} rows/s",
            m.engine,
            m.baseline_rows,
            m.report.invoices,
            m.report.periods,
            m.report.invoices * 2,
            m.baseline_rows as f64 / m.baseline_time.as_secs_f64()
        );
        if !m.peak_reset {
            println!(
                "{}: peak RSS could not be reset before the run (/proc/self/clear_refs refused): it includes seeding",
                m.engine
            );
        }
        for c in &m.checks {
            println!("{}: check: {c}", m.engine);
        }
    }
    println!(
        "G7 targets: SQLite 100k <= 6 s and 1M <= 60 s; PostgreSQL 1M <= 150 s; other sizes at the same rate; \
         peak RSS <= 256 MB"
    );
}
