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

/// `keel bench ARGS` as clap reads it.
fn parse(args: &[&str]) -> BenchCommand {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    Bench::try_parse_from(&all)
        .unwrap_or_else(|e| panic!("{all:?}: {e}"))
        .command
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

/// `keel bench notify` needs no database: both sides run against the fake WhatsApp; its
/// figures are checked to exist (never their values).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_notify_runs_and_reports_both_sides() {
    let args = [
        "notify",
        "--messages",
        "12",
        "--concurrency",
        "1,4",
        "--per-fake",
        "5",
    ];
    let BenchCommand::Notify(notify) = parse(&args) else {
        panic!("`keel bench notify` is not the notify benchmark");
    };
    let figures = keel_bench::notify::figures(&notify)
        .await
        .unwrap_or_else(|e| panic!("keel bench {}: {e:#}", args.join(" ")));
    let levels: Vec<usize> = figures.iter().map(|f| f.concurrency).collect();
    assert_eq!(levels, [1, 4]);
    for f in &figures {
        assert_eq!(f.plugin_messages, 12, "{f:?}");
        assert_eq!(f.baseline_messages, 12, "{f:?}");
        assert!(
            f.plugin_per_sec.is_finite() && f.plugin_per_sec > 0.0,
            "no plugin figure: {f:?}"
        );
        assert!(
            f.baseline_per_sec.is_finite() && f.baseline_per_sec > 0.0,
            "no baseline figure: {f:?}"
        );
        assert!(f.plugin_share.is_finite(), "no plugin share: {f:?}");
    }
    // And the command itself, table included.
    keel_bench::run(parse(&["notify", "--messages", "3", "--concurrency", "2"]))
        .await
        .expect("keel bench notify --messages 3 --concurrency 2");
}
