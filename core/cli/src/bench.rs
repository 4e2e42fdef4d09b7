//! `keel bench …`: benchmarks that print their figures beside a baseline measured in the
//! same run (see ../shared/PERFORMANCE.md). No test asserts a timing.

use crate::config::Config;
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Ledger postings per second (G5, G6).
    Ledger,
}

pub async fn run(command: BenchCommand, _config: &Config) -> Result<()> {
    match command {
        BenchCommand::Ledger => anyhow::bail!("keel bench ledger is not built yet"),
    }
}
