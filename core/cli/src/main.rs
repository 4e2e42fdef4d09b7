//! `keel`: the command line and composition root of the Keel billing kernel.
//!
//! - `main.rs`: argument parsing (clap), logging, and one function per subcommand.
//! - [`config`]: `keel.toml` with environment overrides, validated before anything starts.
//! - `keel bench ledger|http|plugins|billing|jobs|payments|notify`: only with the `bench`
//!   feature (off by default, so the shipped binary has no benchmarks), which links keel-bench:
//!   `cargo run --release -p keel --features bench -- bench ledger`. Without it the command
//!   is hidden and says how to build it (exit code 2).
//!
//! Exit codes: 0 success, 1 failure, 2 usage or configuration error (`plugin call`: 3 when
//! the plugin did not answer: a crash, a limit, the time-out). Commands whose output
//! scripts capture (`keys create`) print only that on stdout; everything else goes to stderr.

mod automation;
mod billing;
mod config;
mod jobs;
mod notify;
mod plugin_test;
mod plugins;
mod webhooks;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use config::{Config, LogFormat};
use keel_app::{App, Ctx};
use keel_store::Db;
use keel_store::db::ConnectOptions;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "keel",
    version,
    about = "Keel: an open-source billing kernel for hosting companies"
)]
struct Cli {
    /// Configuration file (keel.toml). Without one, the defaults and KEEL_* variables apply.
    #[arg(long, global = true, env = "KEEL_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… (overrides the configuration; also
    /// KEEL_DATABASE_URL).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The log filter a command uses when `KEEL_LOG` is not set. `plugin call` and `plugin
    /// test` print what the plugin logged and wrote to stderr themselves, beside its answer,
    /// so the host's own log lines about the same call (each stderr line, "plugin call
    /// failed") would only say it all twice: they log errors only.
    fn default_log_filter(&self) -> Option<&'static str> {
        match &self.command {
            Command::Plugin {
                command: plugins::PluginCommand::Call(_) | plugins::PluginCommand::Test { .. },
            } => Some("error"),
            _ => None,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve {
        /// Address to listen on (also KEEL_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Seed the demo host into an empty database first.
        #[arg(long)]
        demo: bool,
        /// For trying Keel against a fake provider only: send plugin requests for ORIGIN to
        /// the loopback origin TARGET (`https://www.paynow.co.zw=http://127.0.0.1:8089`);
        /// repeatable, added to `[plugin_host] fake_origins`.
        #[arg(long = "fake-origin", value_name = "ORIGIN=TARGET")]
        fake_origin: Vec<String>,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Seed the demo host (staff, clients, a reseller, ledger activity) into an empty database.
    Demo,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Ledger commands.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Audit log commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Billing: the renewal run.
    Billing {
        #[command(subcommand)]
        command: billing::BillingCommand,
    },
    /// Invoices: PDFs, payments at gateways, pay links.
    Invoice {
        #[command(subcommand)]
        command: billing::InvoiceCommand,
    },
    /// Automation: jobs (list, show, retry, cancel) and schedules.
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// Automation: the preview of what it will do, and a dunning run on demand.
    Automation {
        #[command(subcommand)]
        command: automation::AutomationCommand,
    },
    /// Outgoing webhooks: endpoints (list, add, show, disable, enable), deliveries, replay.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Notifications through plugin channels (WhatsApp): a test message, a client's list.
    Notify {
        #[command(subcommand)]
        command: notify::NotifyCommand,
    },
    /// Plugins: what is installed, how each is configured, and a check without starting.
    Plugin {
        #[command(subcommand)]
        command: plugins::PluginCommand,
    },
    /// Benchmarks that print their figures beside a baseline measured in the same run.
    #[cfg(feature = "bench")]
    Bench {
        #[command(subcommand)]
        command: keel_bench::BenchCommand,
    },
    /// Without the `bench` feature: says how to build a keel with the benchmarks.
    #[cfg(not(feature = "bench"))]
    #[command(hide = true, disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate the configuration and print it with secrets redacted.
    Check,
}

#[derive(Subcommand, Debug)]
enum LedgerCommand {
    /// Verify every account's balance against its postings and the trial balance.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Walk the hash chain and report the first broken row.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scope {
    Admin,
    Reseller,
    Client,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create an API key; prints the key alone on stdout (it is shown only this once).
    Create {
        #[arg(long, value_enum)]
        scope: Scope,
        #[arg(long)]
        name: String,
        /// The reseller a reseller key belongs to.
        #[arg(long)]
        reseller: Option<i64>,
        /// The client a client key belongs to.
        #[arg(long)]
        client: Option<i64>,
    },
    /// List API keys (never the keys themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by id.
    Revoke { id: i64 },
}

/// A failure with the exit code it deserves.
struct Exit(u8, anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Exit {
    fn from(e: E) -> Exit {
        let e = e.into();
        if let Some(failed) = e.downcast_ref::<plugins::CallFailed>() {
            return Exit(failed.code, e);
        }
        let code = if e.downcast_ref::<config::ConfigError>().is_some()
            || e.downcast_ref::<plugins::PluginConfigError>().is_some()
            || e.downcast_ref::<config::UsageError>().is_some()
        {
            2
        } else {
            1
        };
        Exit(code, e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match load_config(&cli, env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    init_logging(&config, cli.default_log_filter());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit(code, e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn load_config(cli: &Cli, env: Vec<(String, String)>) -> Result<Config, config::ConfigError> {
    let mut flags = Vec::new();
    if let Some(url) = &cli.database {
        flags.push(config::Flag {
            name: "--database",
            key: &["database", "url"],
            value: url.clone(),
        });
    }
    if let Command::Serve {
        listen: Some(listen),
        ..
    } = &cli.command
    {
        flags.push(config::Flag {
            name: "--listen",
            key: &["server", "listen"],
            value: listen.clone(),
        });
    }
    config::load_with_flags(cli.config.as_deref(), &env, &flags)
}

/// `KEEL_LOG`, else the command's own default (see [`Cli::default_log_filter`]), else
/// `[log] filter`.
fn init_logging(config: &Config, command_default: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("KEEL_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| command_default.and_then(|f| EnvFilter::try_new(f).ok()))
        .or_else(|| EnvFilter::try_new(&config.log.filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn open(config: &Config) -> Result<Db> {
    let options = ConnectOptions {
        max_connections: config.database.max_connections,
        busy_timeout: Duration::from_millis(config.database.busy_timeout_ms),
        create_if_missing: true,
    };
    let url = config.database.url.expose();
    let db = Db::connect(url, &options).await.with_context(|| {
        format!(
            "cannot open the database {}",
            keel_store::db::redact_url(url)
        )
    })?;
    db.migrate().await.context("cannot migrate the database")?;
    Ok(db)
}

async fn run(command: Command, config: Config) -> Result<(), Exit> {
    match command {
        Command::Serve {
            demo, fake_origin, ..
        } => {
            let mut config = config;
            for pair in fake_origin {
                let (from, to) = pair.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--fake-origin {pair}: expected ORIGIN=TARGET")
                })?;
                config
                    .plugin_host
                    .fake_origins
                    .insert(from.trim().to_owned(), to.trim().to_owned());
            }
            config
                .fake_origin_overrides()
                .map_err(|e| anyhow::anyhow!("--fake-origin: {e}"))?;
            serve(&config, demo).await?
        }
        Command::Migrate => {
            let db = open(&config).await?;
            eprintln!("migrations applied ({})", db.engine().name());
        }
        Command::Demo => {
            let app = App::new(open(&config).await?).with_billing(config.app_billing());
            let summary = keel_app::demo::seed(&app)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_demo(&summary, &base_url(&config, None));
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", config.redacted_toml());
            eprintln!("configuration is valid");
        }
        Command::Ledger {
            command: LedgerCommand::Check { json },
        } => ledger_check(&config, json).await?,
        Command::Audit {
            command: AuditCommand::Verify { json },
        } => audit_verify(&config, json).await?,
        Command::Keys { command } => keys(&config, command).await?,
        #[cfg(feature = "bench")]
        Command::Bench { command } => keel_bench::run(command).await?,
        #[cfg(not(feature = "bench"))]
        Command::Bench { .. } => {
            return Err(config::UsageError(
                "this keel was built without the benchmarks: build it with \
                 `cargo build --release -p keel --features bench` to run `keel bench …`"
                    .into(),
            )
            .into());
        }
        Command::Plugin { command } => plugins::run(&config, command).await?,
        Command::Notify { command } => notify::command(&config, command).await?,
        Command::Billing { command } => {
            let app = App::new(open(&config).await?).with_billing(config.app_billing());
            billing::billing(&app, command).await?
        }
        Command::Invoice { command } => {
            let app = App::new(open(&config).await?)
                .with_billing(config.app_billing())
                .with_payments(config.app_payments())
                .with_pay_links(config.app_pay_links());
            billing::invoice(&app, &config, command).await?
        }
        Command::Jobs { command } => jobs::command(&config, command).await?,
        Command::Webhooks { command } => webhooks::command(&config, command).await?,
        Command::Automation { command } => automation::command(&config, command).await?,
    }
    Ok(())
}

/// Where people reach this Keel: `server.public_url`, else the address it listens on.
fn base_url(config: &Config, bound: Option<std::net::SocketAddr>) -> String {
    config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| match bound {
            Some(addr) => format!("http://{addr}"),
            None => format!("http://{}", config.server.listen),
        })
}

fn print_demo(s: &keel_app::demo::DemoSummary, base: &str) {
    eprintln!(
        "\nKeel demo data is ready: {clients} clients, 2 staff users, a reseller, ledger activity.\n\
         Catalog and book: {products} products, {services} services, {invoices} invoices ({paid} paid).\n\
         \n  Admin API key (shown once):    {key}\n  Reseller API key (shown once): {rkey}\n  \
         Admin login: {email} / {password}\n  \
         Billing login: {billing_email} / {billing_password}\n\
         \n  Try it:\n    curl -H 'Authorization: Bearer {key}' {base}/api/v1/clients?limit=20\n\
         \n  API docs:   {base}/api/v1/docs\n  OpenAPI:    {base}/api/v1/openapi.json\n  Health:     {base}/healthz\n",
        clients = s.clients,
        products = s.products,
        services = s.services,
        invoices = s.invoices,
        paid = s.paid_invoices,
        key = s.admin_key,
        rkey = s.reseller_key,
        email = s.admin_email,
        password = s.admin_password,
        billing_email = s.billing_email,
        billing_password = s.billing_password,
    );
    for link in &s.pay_links {
        eprintln!(
            "  Pay invoice {} ({} due) in a browser:\n    {}\n",
            link.invoice, link.due, link.url
        );
    }
}

async fn serve(config: &Config, demo: bool) -> Result<()> {
    // Listen for SIGTERM and Ctrl-C before anything slow (migrations, the demo seed), so a
    // stop request during start-up is a clean stop too.
    let signal = shutdown_signal()?;
    // Plugin sections first: one that does not fit its manifest stops start-up here,
    // naming the plugin and the key, before the database or the port is touched.
    let enabled = plugins::check_config(config, demo)?;
    // A channel's plugin must be a notifier, which only its manifest says.
    notify::check_channels(config, &enabled)?;
    keel_app::crash_points::read_at_start_up();
    for (from, to) in &config.plugin_host.fake_origins {
        eprintln!(
            "WARNING: fake origin: plugin requests to {from} go to {to}. For testing against fakes only; never with real money."
        );
    }
    let db = open(config).await?;
    let app = App::new(db.clone())
        .with_billing(config.app_billing())
        .with_pdf_template(config::pdf_template(config)?)
        .with_notifications(config.app_notifications())
        .with_webhooks(config.app_webhooks())
        .with_pay_links(config.app_pay_links());
    let kv = Arc::new(keel_app::plugins::DbKv::new(
        db.clone(),
        Arc::new(keel_app::clock::SystemClock),
    ));
    let (_plugin_host, plugins) = plugins::load(config, enabled, kv).await?;
    for p in &plugins {
        let kinds: Vec<&str> = p.manifest().kinds.iter().map(|k| k.as_str()).collect();
        tracing::info!(plugin = p.id(), version = %p.manifest().version, kinds = %kinds.join(","), "plugin loaded");
    }
    let app = app
        .with_gateways(keel_app::gateway_payments::Gateways::from_plugins(&plugins))
        .with_notifiers(keel_app::notifications::Notifiers::from_plugins(&plugins));
    let listener = tokio::net::TcpListener::bind(&config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let base = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    // Providers post status updates, and send payers back, to this address.
    let app = app.with_payments(keel_app::gateway_payments::Settings {
        public_url: base.clone(),
        ..config.app_payments()
    });
    if demo {
        if keel_app::demo::is_empty(&app)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            let summary = keel_app::demo::seed(&app)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print_demo(&summary, &base);
        } else {
            eprintln!(
                "\nThe database already holds data, so no demo data was added. The demo's API key was shown when \
                 it was created; make a new one with:\n  keel keys create --scope admin --name me\n"
            );
        }
    }
    let api_config = keel_api::ApiConfig {
        request_timeout: Duration::from_millis(config.server.request_timeout_ms),
        body_limit_bytes: config.server.body_limit_bytes,
        rate_limit_per_second: config.server.rate_limit_per_second,
        rate_limit_burst: config.server.rate_limit_burst,
        idempotency_lock_timeout: Duration::from_millis(config.server.idempotency_lock_timeout_ms),
        metrics_token: config
            .server
            .metrics_token
            .as_ref()
            .map(|t| keel_api::OpsToken::new(t.expose())),
        theme_dir: config.server.theme_dir.clone(),
    };
    // The pay links' key, made now when Keel keeps its own, not by the first visitor.
    app.pay_links
        .warm(&app)
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the pay links' key: {e}"))?;
    tracing::info!(%addr, engine = db.engine().name(), "Keel is serving at {base}");
    eprintln!(
        "Keel is serving at {base} ({} database). Press Ctrl-C to stop.",
        db.engine().name()
    );
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        signal.await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stopping_tx.send(());
    };
    // Job workers and the scheduler, unless this node only serves the API.
    let automation = if config.jobs.enabled {
        Some(jobs::Automation::start(&app, config)?)
    } else {
        None
    };
    let server = keel_api::serve(listener, keel_api::State::new(app, api_config), signal);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("the HTTP server failed")?,
        () = async { let _ = stopping_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!("in-flight requests did not finish within {grace:?}; stopping anyway");
        }
    }
    if let Some(automation) = automation {
        automation.stop(grace).await;
    }
    db.close().await;
    eprintln!("Keel stopped.");
    Ok(())
}

/// A future that resolves on Ctrl-C or SIGTERM; the handlers are installed when this is
/// called, not when the future is first polled.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the Ctrl-C handler")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async move {
        let _ = tokio::signal::ctrl_c().await;
    })
}

async fn ledger_check(config: &Config, json: bool) -> Result<()> {
    let db = open(config).await?;
    let report = keel_store::ledger::check(&db).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "accounts: {}  entries: {}  postings: {}",
            report.accounts, report.entries, report.postings
        );
        for (currency, total) in &report.trial_balance {
            println!("trial balance {currency}: {total}");
        }
        for m in &report.balance_mismatches {
            println!(
                "MISMATCH account {}: cached {} but postings sum to {}",
                m.account, m.cached_minor, m.postings_minor
            );
        }
        for e in &report.unbalanced_entries {
            println!("UNBALANCED entry {e}");
        }
        for (what, figures) in [
            ("tax payable", &report.tax_payable),
            ("receivables", &report.receivables),
        ] {
            for (currency, s) in figures {
                let verdict = if s.agrees() { "agree" } else { "MISMATCH" };
                println!(
                    "{what} {currency}: ledger {} documents {} ({verdict})",
                    s.ledger_minor, s.documents_minor
                );
            }
        }
        println!(
            "wallets: {} checked against their postings, {} mismatched",
            report.wallets,
            report.wallet_mismatches.len()
        );
        for m in &report.wallet_mismatches {
            println!(
                "MISMATCH wallet account {}: cached {} but postings sum to {}",
                m.account, m.cached_minor, m.postings_minor
            );
        }
    }
    if report.is_clean() {
        eprintln!("the ledger balances and its sub-ledgers reconcile");
        Ok(())
    } else {
        anyhow::bail!("the ledger does not balance or a sub-ledger does not reconcile")
    }
}

async fn audit_verify(config: &Config, json: bool) -> Result<()> {
    let db = open(config).await?;
    let report = keel_store::audit::verify(&db).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("rows: {}  head: {}", report.rows, report.head_hash);
    }
    match &report.first_break {
        None => {
            eprintln!("the audit chain is intact");
            Ok(())
        }
        Some((seq, why)) => anyhow::bail!("the audit chain is broken at row {seq}: {why}"),
    }
}

async fn keys(config: &Config, command: KeysCommand) -> Result<()> {
    let app = App::new(open(config).await?).with_billing(config.app_billing());
    let ctx = Ctx::system("cli");
    let err = |e: keel_app::AppError| anyhow::anyhow!("{e}");
    match command {
        KeysCommand::Create {
            scope,
            name,
            reseller,
            client,
        } => {
            let scope = match scope {
                Scope::Admin => keel_domain::access::KeyScope::Admin,
                Scope::Reseller => keel_domain::access::KeyScope::Reseller,
                Scope::Client => keel_domain::access::KeyScope::Client,
            };
            let created = keel_app::access::create_key(
                &app,
                &ctx,
                keel_app::access::NewKey {
                    name,
                    scope,
                    reseller_id: reseller.map(keel_domain::ids::ResellerId),
                    client_id: client.map(keel_domain::ids::ClientId),
                    staff_id: None,
                },
            )
            .await
            .map_err(err)?;
            println!("{}", created.secret);
            eprintln!(
                "created API key {} ({}); it is shown only this once",
                created.key.id, created.key.prefix
            );
        }
        KeysCommand::List { json } => {
            let keys = keel_app::access::list_keys(&app, &ctx).await.map_err(err)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "{:<6} {:<18} {:<9} {:<24} {:<8} NAME",
                    "ID", "PREFIX", "SCOPE", "LAST USED", "STATUS"
                );
                for k in keys {
                    println!(
                        "{:<6} {:<18} {:<9} {:<24} {:<8} {}",
                        k.id,
                        k.prefix,
                        k.scope.as_str(),
                        k.last_used_at.map_or("never".to_string(), |t| t
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        k.name
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let key = keel_app::access::revoke_key(&app, &ctx, keel_domain::ids::ApiKeyId(id))
                .await
                .map_err(err)?;
            eprintln!("revoked API key {} ({})", key.id, key.prefix);
        }
    }
    Ok(())
}
