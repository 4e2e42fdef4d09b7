//! Every benchmark runs, at a tiny size, on both engines, parsed from the flags a user
//! types after `keel bench`: the benchmarks live outside the shipped binary, so this is what
//! keeps them working. Nothing here looks at a timing (ARCHITECTURE.md, keel (cli)).

use clap::Parser;
use keel_bench::BenchCommand;

#[derive(Parser)]
struct Bench {
    #[command(subcommand)]
    command: BenchCommand,
}

/// Runs `keel bench ARGS` against the test PostgreSQL server (and SQLite).
async fn bench(args: &[&str]) {
    let server = keel_testkit::pg::server_url().await;
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    if args[0] != "plugins" {
        all.extend_from_slice(&["--pg-url", &server]);
    }
    let parsed = Bench::try_parse_from(&all).unwrap_or_else(|e| panic!("{all:?}: {e}"));
    keel_bench::run(parsed.command)
        .await
        .unwrap_or_else(|e| panic!("keel {}: {e:#}", all.join(" ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_ledger_runs_on_both_engines() {
    bench(&["ledger", "--entries", "2000", "--single-entries", "200"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_billing_runs_on_both_engines() {
    bench(&["billing", "--services", "300"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_jobs_runs_on_both_engines() {
    bench(&["jobs", "--drain", "2000", "--latency", "20"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_http_runs_on_both_engines() {
    bench(&[
        "http",
        "--clients",
        "200",
        "--connections",
        "4",
        "--seconds",
        "1",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_plugins_runs() {
    bench(&["plugins", "--calls", "200"]).await;
}

#[test]
fn a_due_date_that_is_not_a_date_is_a_usage_error() {
    let err = match Bench::try_parse_from(["bench", "billing", "--due-on", "2027-13-01"]) {
        Ok(_) => panic!("--due-on 2027-13-01 was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_payments_runs_on_both_engines() {
    bench(&[
        "payments",
        "--callbacks",
        "24",
        "--concurrency",
        "4",
        "--sequential",
        "4",
    ])
    .await;
}
