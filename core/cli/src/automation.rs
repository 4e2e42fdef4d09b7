//! `keel automation …`: what automation will do (the preview) and a dunning run on demand.

use crate::config::{Config, UsageError};
use anyhow::{Context, Result, anyhow};
use keel_app::preview::{Preview, PreviewTotals};
use keel_app::{App, AppError, Ctx, dunning, preview};

#[derive(clap::Subcommand, Debug)]
pub enum AutomationCommand {
    /// Day by day, every invoice, reminder, late fee, suspension, termination and
    /// cancellation automation would perform if nobody paid, with totals. Changes nothing.
    Preview {
        /// How many days from today (1 to 366).
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long)]
        json: bool,
    },
    /// Record the dunning steps owed as of a day, each with its job (what the `overdue`
    /// schedule does daily; `keel serve`'s workers then perform them). Safe to repeat.
    Dunning {
        /// YYYY-MM-DD; default today.
        #[arg(long)]
        as_of: Option<String>,
    },
}

fn usage(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid { .. } | AppError::InvalidText { .. } => {
            anyhow!(UsageError(e.to_string()))
        }
        other => anyhow!("{other}"),
    }
}

pub async fn command(config: &Config, command: AutomationCommand) -> Result<()> {
    let db = crate::open(config).await.context("opening the database")?;
    let app = App::new(db).with_billing(config.app_billing());
    let ctx = Ctx::system("keel automation");
    match command {
        AutomationCommand::Preview { days, json } => {
            let p = preview::preview(&app, &ctx, days).await.map_err(usage)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print!("{}", render(&p));
            }
        }
        AutomationCommand::Dunning { as_of } => {
            let as_of = match as_of.as_deref() {
                Some(t) => keel_app::billing::parse_date(t, "as_of").map_err(usage)?,
                None => app.today(),
            };
            let r = dunning::run(&app, &ctx, as_of).await.map_err(usage)?;
            println!(
                "dunning as of {as_of}: {} unpaid invoices read, {} steps queued, {} reminders superseded, {} held steps released",
                r.invoices, r.queued, r.superseded, r.released
            );
        }
    }
    Ok(())
}

/// The preview as text: a block per day, then the totals.
pub fn render(p: &Preview) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Automation from {} to {}, if nobody pays (wallets the run applies do):",
        p.from, p.to
    );
    if p.days.is_empty() {
        let _ = writeln!(out, "\n  nothing to do");
    }
    for day in &p.days {
        let _ = writeln!(out, "\n{}", day.date);
        for i in &day.invoices {
            let services: Vec<String> = i.services.iter().map(i64::to_string).collect();
            let wallet = match i.wallet_minor {
                0 => String::new(),
                w if w == i.total_minor => "  paid from the wallet".to_string(),
                _ => format!("  {} from the wallet", i.wallet),
            };
            let _ = writeln!(
                out,
                "  invoice         client {:<6} {} {:>12}  due {}  services {}{wallet}",
                i.client_id,
                i.currency,
                i.total,
                i.due_date,
                services.join(", ")
            );
        }
        for a in &day.actions {
            let invoice = match &a.invoice_number {
                Some(n) => format!("invoice {n}"),
                None => format!("the new invoice due {}", a.due_date),
            };
            let what = match (a.service_id, &a.amount) {
                (Some(s), _) => format!("service {s} ({invoice})"),
                (None, Some(fee)) => format!("{invoice}: {fee}"),
                (None, None) => invoice,
            };
            let _ = writeln!(out, "  {:<15} client {:<6} {what}", a.step, a.client_id);
        }
    }
    let _ = writeln!(out, "\nTotals");
    let _ = write!(out, "{}", totals(&p.totals));
    out
}

fn totals(t: &PreviewTotals) -> String {
    let money = |m: &std::collections::BTreeMap<String, keel_app::preview::MoneyTotal>| {
        if m.is_empty() {
            return "none".to_string();
        }
        m.iter()
            .map(|(c, t)| format!("{} × {c} {}", t.count, t.total))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "  invoices        {}\n  from wallets    {}\n  reminders       {}\n  overdue notices {}\n  late fees       {}\n  suspensions     {}\n  terminations    {}\n  cancellations   {}\n",
        money(&t.invoices),
        money(&t.wallet_payments),
        t.reminders,
        t.overdue_notices,
        money(&t.late_fees),
        t.suspensions,
        t.terminations,
        t.invoice_cancellations
    )
}
