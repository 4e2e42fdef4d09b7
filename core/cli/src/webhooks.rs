//! `keel webhooks …`: outgoing webhook endpoints and their delivery log at the command line
//! (the same use cases as `/api/v1/webhooks`, acting as the installation).

use crate::config::{Config, UsageError};
use anyhow::{Context, Result, anyhow};
use keel_app::webhooks::{self as uc, DeliveryView, EndpointPatch, EndpointView, NewEndpoint};
use keel_app::{App, AppError, Ctx};

#[derive(clap::Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Every endpoint.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add an endpoint; prints its signing secret, shown this once.
    Add {
        url: String,
        /// Event types, comma-separated, or "*" for all.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One endpoint.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Pause an endpoint: its deliveries wait, pending.
    Disable {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume an endpoint: its waiting deliveries go out.
    Enable { id: i64 },
    /// An endpoint's deliveries, newest first.
    Deliveries {
        id: i64,
        /// Only deliveries in this state: pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send a delivered or failed delivery again.
    Replay { delivery_id: i64 },
}

/// Bad input is a usage error (exit 2); anything else a failure (exit 1).
fn fail(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid { .. } | AppError::InvalidText { .. } => {
            anyhow!(UsageError(e.to_string()))
        }
        other => anyhow!("{other}"),
    }
}

pub async fn command(config: &Config, command: WebhooksCommand) -> Result<()> {
    let db = crate::open(config).await.context("opening the database")?;
    let app = App::new(db)
        .with_billing(config.billing.to_app())
        .with_webhooks(config.app_webhooks());
    run(&app, command).await
}

pub async fn run(app: &App, command: WebhooksCommand) -> Result<()> {
    let ctx = Ctx::system("keel webhooks");
    match command {
        WebhooksCommand::List { json } => {
            let endpoints = uc::list_endpoints(app, &ctx).await.map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&endpoints)?);
            } else {
                println!("{:>6} {:<8} {:<48} events", "id", "enabled", "url");
                for e in &endpoints {
                    println!(
                        "{:>6} {:<8} {:<48} {}",
                        e.id,
                        if e.enabled { "yes" } else { "no" },
                        e.url,
                        e.events.join(",")
                    );
                }
            }
        }
        WebhooksCommand::Add {
            url,
            events,
            description,
            json,
        } => {
            let created = uc::create_endpoint(
                app,
                &ctx,
                &NewEndpoint {
                    url,
                    events,
                    description,
                },
            )
            .await
            .map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                print_endpoint(&created.endpoint);
                println!("  secret:      {}", created.secret);
                println!("(the secret signs every request; it is not shown again)");
            }
        }
        WebhooksCommand::Show { id, json } => {
            let e = uc::get_endpoint(app, &ctx, id).await.map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print_endpoint(&e);
            }
        }
        WebhooksCommand::Disable { id, reason } => {
            let patch = EndpointPatch {
                enabled: Some(false),
                disabled_reason: reason,
                ..EndpointPatch::default()
            };
            let e = uc::update_endpoint(app, &ctx, id, &patch)
                .await
                .map_err(fail)?;
            println!("webhook endpoint {} is disabled", e.id);
        }
        WebhooksCommand::Enable { id } => {
            let patch = EndpointPatch {
                enabled: Some(true),
                ..EndpointPatch::default()
            };
            let e = uc::update_endpoint(app, &ctx, id, &patch)
                .await
                .map_err(fail)?;
            println!("webhook endpoint {} is enabled", e.id);
        }
        WebhooksCommand::Deliveries {
            id,
            state,
            limit,
            json,
        } => {
            let page = uc::deliveries(
                app,
                &ctx,
                id,
                state.as_deref(),
                None,
                Some(limit.clamp(1, keel_app::MAX_PAGE)),
            )
            .await
            .map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page.items)?);
            } else {
                print_deliveries(&page.items);
            }
        }
        WebhooksCommand::Replay { delivery_id } => {
            let d = uc::replay(app, &ctx, delivery_id).await.map_err(fail)?;
            println!(
                "delivery {} ({} {}) is {} again, to go out now",
                d.id, d.event_type, d.subject, d.state
            );
        }
    }
    Ok(())
}

fn print_endpoint(e: &EndpointView) {
    println!("webhook endpoint {}", e.id);
    println!("  url:         {}", e.url);
    println!("  events:      {}", e.events.join(","));
    if !e.description.is_empty() {
        println!("  description: {}", e.description);
    }
    println!(
        "  enabled:     {}{}",
        if e.enabled { "yes" } else { "no" },
        e.disabled_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    println!("  created:     {}", e.created_at);
}

fn print_deliveries(deliveries: &[DeliveryView]) {
    println!(
        "{:>8} {:<22} {:<16} {:<10} {:>8} {:<20} last error",
        "id", "event", "subject", "state", "attempts", "next attempt"
    );
    for d in deliveries {
        println!(
            "{:>8} {:<22} {:<16} {:<10} {:>8} {:<20} {}",
            d.id,
            d.event_type,
            d.subject,
            d.state,
            d.attempts,
            d.next_attempt_at.format("%Y-%m-%d %H:%M:%S"),
            d.last_error.as_deref().unwrap_or("")
        );
    }
}
