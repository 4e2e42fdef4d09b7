//! keel-bench: Keel's benchmarks, which print their figures beside a baseline measured in
//! the same run, on the same engine, so a noisy machine shifts both sides (PERFORMANCE.md,
//! "How to benchmark"). No test asserts a timing.
//!
//! They are not in the shipped `keel` binary: `cargo run --release -p keel --features bench
//! -- bench …` builds one with them, as `keel bench
//! ledger|http|plugins|billing|jobs|payments|notify` ([`BenchCommand`], [`run`]). This crate
//! writes no SQL: the baselines' bare tables and the scratch schemas are `keel_store::bench`.
//!
//! Where things are:
//! - [`ledger`]: postings per second, batched and one entry per commit (G5, G6).
//! - [`http`]: requests per second and latency against a trivial axum server (G1, G2).
//! - [`plugins`]: the cost of a plugin call beside a native implementation (G12).
//! - [`billing`]: the billing run over a seeded book (G7).
//! - [`jobs`]: the job queue's drain rate and enqueue-to-start latency (G8, G9).
//! - [`payments`]: verified gateway callbacks per second end to end, with the fake Paynow as
//!   the caller, beside the engine's one-row commit, and the plugin's share (G3).
//! - [`notify`]: WhatsApp notifications per second through the shipped plugin to the fake
//!   Cloud API, beside the same requests sent by plain reqwest, and the plugin's share.
//! - [`scratch`]: the throwaway database each benchmark runs on, per engine.

pub mod billing;
pub mod http;
pub mod jobs;
pub mod ledger;
pub mod notify;
pub mod payments;
pub mod plugins;
pub mod scratch;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ledger postings per second (G5 batched, G6 one commit per entry; uniform and hot account).
    Ledger(ledger::LedgerArgs),
    /// HTTP throughput and latency (G1: /healthz against a trivial axum server; G2: an
    /// authenticated client list), from a load generator in the same run.
    Http(http::HttpArgs),
    /// Plugin call cost (G12): a fresh instance per call for a no-op, a ~1 KB record and a
    /// host import, beside a native Rust implementation of the same trait.
    Plugins(plugins::PluginsArgs),
    /// The billing run over a seeded book (G7): seconds, services/s and peak RSS, beside the
    /// plain inserts of the rows it must write.
    Billing(billing::BillingArgs),
    /// The job queue: drain a backlog of no-op jobs beside a bare SKIP LOCKED queue, and the
    /// enqueue-to-start latency at 100 jobs/s (G8, G9).
    Jobs(jobs::JobsArgs),
    /// Gateway callbacks (G3): the fake Paynow posting signed Paid updates to Keel's hook,
    /// verified and confirmed by the real Paynow component and applied, per second, beside
    /// the engine's one-row commit; and the share of a callback spent in the plugin.
    Payments(payments::PaymentsArgs),
    /// Notifications (issue 18): WhatsApp text messages per second through the shipped
    /// WhatsApp plugin to the fake Cloud API on loopback, beside the same requests sent by
    /// plain reqwest, at each concurrency; and the plugin's share of the time per message.
    Notify(notify::NotifyArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum EngineChoice {
    Sqlite,
    Postgres,
    Both,
}

/// Runs one benchmark and prints its report on stdout (progress goes to stderr).
pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ledger(args) => ledger::run(args).await,
        BenchCommand::Http(args) => http::run(args).await,
        BenchCommand::Plugins(args) => plugins::run(args).await,
        BenchCommand::Billing(args) => billing::run(args).await,
        BenchCommand::Jobs(args) => jobs::run(args).await,
        BenchCommand::Payments(args) => payments::run(args).await,
        BenchCommand::Notify(args) => notify::run(args).await,
    }
}

/// The PostgreSQL server benchmarks create their scratch schema on: `flag`, else
/// `KEEL_BENCH_PG_URL`, else postgres://postgres@127.0.0.1:5432/postgres.
pub fn pg_server(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("KEEL_BENCH_PG_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}
