//! `keel billing run` and `keel invoice` (pdf, pay, pay-link, attempts).

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use keel_app::billing_run::{self, Progress, RunOptions, RunReport};
use keel_app::{App, Ctx};
use keel_domain::Currency;
use keel_domain::Money;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum BillingCommand {
    /// Issue renewal invoices for every service coming due (safe to repeat: a period is
    /// invoiced once, and a run killed at any point resumes where it stopped).
    Run {
        /// The run's date, YYYY-MM-DD (default: today).
        #[arg(long)]
        as_of: Option<String>,
        /// Print what would be issued, with totals per currency, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum InvoiceCommand {
    /// Write an invoice's PDF to a file (or stdout with `--out -`).
    Pdf {
        /// The invoice id.
        id: i64,
        /// Where to write it (default: <number>.pdf in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Start paying an invoice's balance at a gateway plugin (enabled in keel.toml); prints
    /// the attempt and what the payer does next (a URL to open, or instructions).
    Pay {
        /// The invoice id.
        id: i64,
        /// The gateway plugin's id (`paynow`).
        #[arg(long)]
        gateway: String,
        /// A method the gateway offers (`ecocash`, `onemoney`, …); default its web checkout.
        #[arg(long)]
        method: Option<String>,
        /// The payer's mobile-money number, for methods that need one.
        #[arg(long)]
        phone: Option<String>,
        /// Print the attempt as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a signed pay link for an invoice: a page where whoever holds it sees the
    /// invoice and pays it through an enabled gateway, until it expires (`[payments]
    /// link_days`). On `[server] public_url`.
    PayLink {
        /// The invoice id.
        id: i64,
        /// Print the link and its expiry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// An invoice's payment attempts at gateways, newest first, with their states.
    Attempts {
        /// The invoice id.
        id: i64,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn billing(app: &App, command: BillingCommand) -> Result<()> {
    match command {
        BillingCommand::Run {
            as_of,
            dry_run,
            json,
        } => {
            let as_of = match as_of.as_deref() {
                Some(t) => keel_app::billing::parse_date(t, "--as-of")
                    .map_err(|e| anyhow!(crate::config::UsageError(e.to_string())))?,
                None => app.today(),
            };
            let bar = if std::io::stderr().is_terminal() && !json {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {pos}/{len} services [{elapsed_precise}] {per_sec}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                Some(bar)
            } else {
                None
            };
            let progress = |p: Progress| {
                if let Some(bar) = &bar {
                    bar.set_length(p.total);
                    bar.set_position(p.done);
                }
            };
            let report = billing_run::run(
                app,
                &Ctx::system("keel billing run"),
                &RunOptions { as_of, dry_run },
                &progress,
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report);
            }
        }
    }
    Ok(())
}

fn print_report(r: &RunReport) {
    let verb = if r.dry_run { "would issue" } else { "issued" };
    if r.dry_run {
        for p in &r.planned {
            eprintln!(
                "  client {:>6}  due {}  {:>14} {}  {}",
                p.client_id,
                p.due_date,
                p.total,
                p.currency,
                p.lines.join("; ")
            );
        }
    }
    eprintln!(
        "billing run as of {}: {verb} {} invoices for {} service periods ({} services read, {} batches{})",
        r.as_of.map(|d| d.to_string()).unwrap_or_default(),
        r.invoices,
        r.periods,
        r.services,
        r.batches,
        if r.retries > 0 {
            format!(", {} retried", r.retries)
        } else {
            String::new()
        }
    );
    for (code, t) in &r.by_currency {
        let fmt = |minor: i64| match Currency::from_code(code) {
            Ok(c) => Money::new(minor, c).format_amount(),
            Err(_) => minor.to_string(),
        };
        eprintln!(
            "  {code}: {} invoices, total {} (tax {}), paid from wallets {}",
            t.invoices,
            fmt(t.total_minor),
            fmt(t.tax_minor),
            fmt(t.wallet_applied_minor)
        );
    }
    if r.dry_run {
        eprintln!("dry run: nothing was changed");
    }
}

pub async fn invoice(
    app: &App,
    config: &crate::config::Config,
    command: InvoiceCommand,
) -> Result<()> {
    match command {
        InvoiceCommand::Pdf { id, out } => {
            let template = crate::config::pdf_template(config)?;
            let app = app.clone().with_pdf_template(template);
            let (number, bytes) = keel_app::invoices::pdf(
                &app,
                &Ctx::system("keel invoice pdf"),
                keel_domain::ids::InvoiceId(id),
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            match out {
                Some(p) if p.as_os_str() == "-" => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
                other => {
                    let path = other.unwrap_or_else(|| PathBuf::from(format!("{number}.pdf")));
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
                }
            }
        }
        InvoiceCommand::Pay {
            id,
            gateway,
            method,
            phone,
            json,
        } => {
            let enabled = crate::plugins::check_config(config, false)?;
            let kv = std::sync::Arc::new(keel_app::plugins::DbKv::new(
                app.db.clone(),
                std::sync::Arc::new(keel_app::clock::SystemClock),
            ));
            let (_host, plugins) = crate::plugins::load(config, enabled, kv).await?;
            let app = app
                .clone()
                .with_gateways(keel_app::gateway_payments::Gateways::from_plugins(&plugins))
                .with_notifiers(keel_app::notifications::Notifiers::from_plugins(&plugins))
                .with_payments(config.app_payments());
            let attempt = keel_app::gateway_payments::start(
                &app,
                &Ctx::system("keel invoice pay"),
                keel_domain::ids::InvoiceId(id),
                &keel_app::gateway_payments::StartInput {
                    gateway,
                    method,
                    phone,
                },
                None,
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&attempt)?);
            } else {
                print_attempt(&attempt);
            }
        }
        InvoiceCommand::PayLink { id, json } => {
            let link = keel_app::pay_links::pay_link(
                app,
                &Ctx::system("keel invoice pay-link"),
                keel_domain::ids::InvoiceId(id),
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&link)?);
            } else {
                println!("{}", link.url);
                eprintln!(
                    "works until {} (anyone holding it can see and pay invoice {id})",
                    link.expires_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        InvoiceCommand::Attempts { id, json } => {
            let attempts = keel_app::gateway_payments::attempts(
                app,
                &Ctx::system("keel invoice attempts"),
                keel_domain::ids::InvoiceId(id),
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&attempts)?);
            } else if attempts.is_empty() {
                eprintln!("invoice {id} has no payment attempts");
            } else {
                for a in &attempts {
                    print_attempt(a);
                }
            }
        }
    }
    Ok(())
}

fn print_attempt(a: &keel_app::gateway_payments::AttemptView) {
    use keel_app::gateway_payments::ActionView;
    println!(
        "{}  {}  {} {}  {}{}  started {}",
        a.reference,
        a.gateway,
        a.amount.amount,
        a.amount.currency,
        a.state,
        a.provider_status
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        a.created_at.format("%Y-%m-%d %H:%M")
    );
    match &a.action {
        Some(ActionView::Redirect { url }) if a.state.as_str() == "pending" => {
            println!("  open: {url}")
        }
        Some(ActionView::Instructions { text }) if a.state.as_str() == "pending" => {
            for line in text.lines() {
                println!("  {line}");
            }
        }
        _ => {}
    }
    if let Some(f) = &a.failure {
        println!("  failed: {f}");
    }
    if let Some(w) = &a.attention {
        println!("  needs attention: {w}");
    }
}
