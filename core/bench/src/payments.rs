//! `keel bench payments` (goal G3, issue 16): verified gateway callbacks per second, end to
//! end, on each engine. The caller is the fake Paynow (`keel_testkit::paynow`), posting
//! genuine signed `Paid` updates to Keel's `POST /hooks/gateway/paynow` over loopback HTTP;
//! Keel runs the real Paynow component in the real plugin host, which verifies the update's
//! hash, confirms it by polling the fake (a second plugin call and an HTTP round trip), and
//! then applies it in one transaction (payment, journal entry, invoice paid, events, receipt
//! job). Measured in the same run, on the same database:
//!
//! - **callbacks/s** with `--concurrency` deliveries in flight (the fake retries nothing: every
//!   delivery must succeed the first time, or the run fails);
//! - **apply only/s**: the same transaction, called directly with a confirmed update (no
//!   HTTP, no plugin), to show what the database part alone allows;
//! - the **baseline**: the engine's one-row commit (a plain two-column insert per durable
//!   commit, 8 writers), the figure G3 is stated against;
//! - the **plugin share**: deliveries one at a time, the time spent inside the plugin's
//!   `verify-callback` and `poll` (the poll's HTTP round trip to the fake included) over the
//!   time of the whole callback as the fake saw it.
//!
//! Afterwards every invoice is paid exactly once and the ledger check is clean, or the run
//! fails.

use crate::scratch::Scratch;
use crate::{EngineChoice, pg_server};
use anyhow::{Context, Result, ensure};
use futures::future::BoxFuture;
use keel_app::gateway_payments::{self, Gateways, StartInput};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, Ctx};
use keel_domain::ids::{InvoiceId, ProductId};
use keel_plugin_host::gateway::{
    Callback, Gateway, PaymentRef, PaymentRequest, PaymentStarted, PaymentStatus, PaymentUpdate,
    RefundRequest, RefundStarted,
};
use keel_plugin_host::{InboundRequest, Money as PluginMoney, PluginFailure, PluginInfo};
use keel_store::Db;
use keel_testkit::paynow::FakePaynow;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Client, Product, Scenario};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct PaymentsArgs {
    /// Which engines to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// Callbacks in the throughput run (each its own invoice and payment).
    #[arg(long, default_value_t = 2_000)]
    pub callbacks: usize,
    /// Deliveries in flight at once in the throughput run.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Callbacks delivered one at a time to measure the plugin's share.
    #[arg(long, default_value_t = 200)]
    pub sequential: usize,
    /// PostgreSQL server to create a scratch schema on (as for `bench ledger`).
    #[arg(long)]
    pub pg_url: Option<String>,
}

const INTEGRATION_ID: u64 = 7175;
const INTEGRATION_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
const PRICE_MINOR: i64 = 1000;

pub async fn run(args: PaymentsArgs) -> Result<()> {
    ensure!(
        args.callbacks > 0 && args.concurrency > 0,
        "--callbacks and --concurrency must be at least 1"
    );
    let mut rows = Vec::new();
    if args.engine != EngineChoice::Postgres {
        let scratch = Scratch::sqlite().await?;
        let row = payments(&scratch.db, "sqlite", &args).await;
        scratch.drop_it().await;
        rows.push(row?);
    }
    if args.engine != EngineChoice::Sqlite {
        let scratch = Scratch::postgres(&pg_server(args.pg_url.clone())).await?;
        let row = payments(&scratch.db, "postgres", &args).await;
        scratch.drop_it().await;
        rows.push(row?);
    }
    print_table(&rows, args.concurrency);
    Ok(())
}

struct Row {
    engine: &'static str,
    callbacks_per_sec: f64,
    apply_per_sec: f64,
    baseline_per_sec: f64,
    /// One callback at a time: mean wall time as the fake saw it.
    sequential_mean: Duration,
    /// ... and the part of it inside the plugin (verify + poll).
    plugin_mean: Duration,
    goal: &'static str,
}

/// The real Paynow gateway, timed: the time spent in `verify-callback` and `poll` is summed.
struct Timed {
    inner: Arc<dyn Gateway>,
    nanos: AtomicU64,
}

impl Timed {
    async fn time<T>(
        &self,
        call: BoxFuture<'_, Result<T, PluginFailure>>,
    ) -> Result<T, PluginFailure> {
        let start = Instant::now();
        let out = call.await;
        let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(spent, Ordering::Relaxed);
        out
    }

    fn take(&self) -> Duration {
        Duration::from_nanos(self.nanos.swap(0, Ordering::Relaxed))
    }
}

impl Gateway for Timed {
    fn describe(&self) -> BoxFuture<'_, Result<PluginInfo, PluginFailure>> {
        self.inner.describe()
    }

    fn initiate(
        &self,
        req: PaymentRequest,
    ) -> BoxFuture<'_, Result<PaymentStarted, PluginFailure>> {
        self.inner.initiate(req)
    }

    fn verify_callback(
        &self,
        req: InboundRequest,
    ) -> BoxFuture<'_, Result<Callback, PluginFailure>> {
        Box::pin(self.time(self.inner.verify_callback(req)))
    }

    fn poll(&self, payment: PaymentRef) -> BoxFuture<'_, Result<PaymentUpdate, PluginFailure>> {
        Box::pin(self.time(self.inner.poll(payment)))
    }

    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<RefundStarted, PluginFailure>> {
        self.inner.refund(req)
    }
}

/// The Paynow component, loaded as an admin would load it for a private address
/// ([`keel_testkit::paynow::load_plugin`]), its gateway calls timed.
async fn paynow(fake: &FakePaynow) -> Result<(PluginHarness, Arc<Timed>, Gateways)> {
    let (harness, plugin) =
        keel_testkit::paynow::load_plugin(fake, &[("usd", INTEGRATION_ID, INTEGRATION_KEY)])
            .await
            .map_err(anyhow::Error::msg)?;
    let loaded = Gateways::from_plugins(&[plugin]);
    let entry = loaded
        .get("paynow")
        .context("the Paynow plugin is not a gateway")?;
    let timed = Arc::new(Timed {
        inner: entry.handle.clone(),
        nanos: AtomicU64::new(0),
    });
    let mut gateways = Gateways::default();
    let features = if entry.polling {
        keel_plugin_host::Features::POLLING
    } else {
        keel_plugin_host::Features::empty()
    };
    gateways.add("paynow", &entry.name, features, timed.clone());
    Ok((harness, timed, gateways))
}

async fn payments(db: &Db, engine: &'static str, args: &PaymentsArgs) -> Result<Row> {
    eprintln!(
        "bench payments on {engine}: {} callbacks at concurrency {}, {} one at a time",
        args.callbacks, args.concurrency, args.sequential
    );
    let fake = Arc::new(
        FakePaynow::builder(&[(INTEGRATION_ID, INTEGRATION_KEY)])
            .public_host("www.paynow.co.zw")
            .retry_backoff(Duration::from_millis(10))
            .log(false)
            .start()
            .await,
    );
    let (_harness, timed, gateways) = paynow(&fake).await?;

    // Keel's API on loopback; its public URL is where the fake posts the updates.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let app =
        App::new(db.clone())
            .with_gateways(gateways)
            .with_payments(gateway_payments::Settings {
                public_url,
                ..Default::default()
            });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = keel_api::State::new(app.clone(), keel_api::ApiConfig::default());
    let server = tokio::spawn(async move {
        let _ = keel_api::serve(listener, state, async {
            let _ = stopped.await;
        })
        .await;
    });

    let built = Scenario::new(&app)
        .client(Client::new("bench@example.co.zw").name("Tendai", "Moyo"))
        .product(Product::new("Plan").monthly(PRICE_MINOR))
        .build()
        .await;
    let client = built.client("bench@example.co.zw");
    let product = built.product("Plan");
    let ctx = Ctx::system("bench payments");

    // Throughput: every update delivered by the fake, `concurrency` at once.
    let references = started(&app, &ctx, client.get(), product, "c", args.callbacks).await?;
    let start = Instant::now();
    deliver_all(&fake, &references, args.concurrency).await?;
    let callbacks_per_sec = references.len() as f64 / start.elapsed().as_secs_f64();

    // The plugin's share: one delivery at a time.
    let sequential = started(&app, &ctx, client.get(), product, "s", args.sequential).await?;
    timed.take();
    let start = Instant::now();
    deliver_all(&fake, &sequential, 1).await?;
    let wall = start.elapsed();
    let inside = timed.take();
    let n = u32::try_from(sequential.len().max(1)).unwrap_or(u32::MAX);

    // The database part alone: the same transaction with a confirmed update.
    let direct = started(&app, &ctx, client.get(), product, "a", args.callbacks).await?;
    let start = Instant::now();
    apply_all(&app, &fake, &direct, args.concurrency).await?;
    let apply_per_sec = direct.len() as f64 / start.elapsed().as_secs_f64();

    keel_store::bench::create_plain_rows(db).await?;
    let baseline_per_sec = crate::ledger::baseline_single(db, args.callbacks).await?;

    // Every invoice paid once, the books clean.
    let paid = references.len() + sequential.len() + direct.len();
    let report = keel_store::ledger::check(db).await?;
    ensure!(
        report.is_clean() && report.trial_balance.values().all(|v| *v == 0),
        "the ledger does not reconcile after the benchmark: {report:?}"
    );
    let mut tx = db.begin().await?;
    let mut payments = 0;
    for reference in references.iter().chain(&sequential).chain(&direct) {
        let attempt = keel_store::attempts::get(db, "paynow", &reference.1)
            .await?
            .context("an attempt the benchmark started")?;
        ensure!(
            attempt.state == keel_store::attempts::AttemptState::Succeeded,
            "attempt {} is {} after its Paid update",
            attempt.reference,
            attempt.state
        );
        payments += keel_store::payments::invoice_payments_tx(&mut tx, reference.0)
            .await?
            .len();
    }
    drop(tx);
    ensure!(
        payments == paid,
        "{paid} invoices paid through Paynow hold {payments} payments"
    );
    eprintln!("  {paid} invoices paid once each; ledger check clean");

    let _ = stop.send(());
    let _ = server.await;
    match Arc::try_unwrap(fake) {
        Ok(fake) => fake.stop().await,
        Err(_) => anyhow::bail!("the fake Paynow is still in use"),
    }
    Ok(Row {
        engine,
        callbacks_per_sec,
        apply_per_sec,
        baseline_per_sec,
        sequential_mean: wall / n,
        plugin_mean: inside / n,
        goal: if engine == "sqlite" {
            ">= 5k/s (G3)"
        } else {
            ">= 2.5k/s (G3)"
        },
    })
}

/// `n` invoices, one order each, and a Paynow web checkout started for each (eight at a
/// time): their (invoice, Keel reference).
async fn started(
    app: &App,
    ctx: &Ctx,
    client: i64,
    product: ProductId,
    tag: &str,
    n: usize,
) -> Result<Vec<(InvoiceId, String)>> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8usize {
        let (app, ctx, tag) = (app.clone(), ctx.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (worker..n).step_by(8) {
                let order = orders::place(
                    &app,
                    &ctx,
                    &OrderInput {
                        client_id: Some(client),
                        currency: None,
                        promo_code: None,
                        items: vec![OrderItem {
                            product_id: product.get(),
                            cycle: "monthly".into(),
                            options: vec![],
                            label: Some(format!("{tag}{i}.example")),
                            addons: vec![],
                        }],
                    },
                    Some(&format!("bench-{tag}-{i}")),
                )
                .await?;
                let attempt = gateway_payments::start(
                    &app,
                    &ctx,
                    order.invoice.id,
                    &StartInput {
                        gateway: "paynow".into(),
                        method: None,
                        phone: None,
                    },
                    Some(&format!("bench-{tag}-{i}")),
                )
                .await?;
                out.push((order.invoice.id, attempt.reference));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    eprintln!(
        "  {n} invoices with a pending Paynow payment in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(all)
}

/// The fake posts a genuine `Paid` for each reference, `concurrency` at once; every delivery
/// must be answered 2xx the first time.
async fn deliver_all(
    fake: &Arc<FakePaynow>,
    references: &[(InvoiceId, String)],
    concurrency: usize,
) -> Result<()> {
    let queue = Arc::new(std::sync::Mutex::new(
        references.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
    ));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (fake, queue) = (fake.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("the queue's lock").pop();
                let Some(reference) = next else {
                    return anyhow::Ok(());
                };
                let sent = fake.pay(&reference).await;
                ensure!(
                    sent.len() == 1 && sent[0].succeeded(),
                    "the Paid update of {reference} was not taken at once: {sent:?}"
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// `gateway_payments::apply` with a confirmed `Paid` for each reference, `concurrency` at once.
async fn apply_all(
    app: &App,
    fake: &FakePaynow,
    references: &[(InvoiceId, String)],
    concurrency: usize,
) -> Result<()> {
    let updates: Vec<PaymentUpdate> = references
        .iter()
        .map(|(_, reference)| {
            let sent = fake
                .transaction(reference)
                .context("a transaction the fake made")?;
            Ok(PaymentUpdate {
                reference: reference.clone(),
                provider_reference: sent.paynow_reference,
                status: PaymentStatus::Paid,
                amount: Some(PluginMoney {
                    minor: PRICE_MINOR,
                    currency: "USD".into(),
                }),
                provider_status: "Paid".into(),
            })
        })
        .collect::<Result<_>>()?;
    let queue = Arc::new(std::sync::Mutex::new(updates));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (app, queue) = (app.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("the queue's lock").pop();
                let Some(update) = next else {
                    return anyhow::Ok(());
                };
                gateway_payments::apply(&app, "paynow", &update).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

fn print_table(rows: &[Row], concurrency: usize) {
    println!(
        "{:<9} {:>13} {:>14} {:>17} {:>7} {:>14} {:>14} {:>13}  goal",
        "engine",
        format!("callbacks/s c{concurrency}"),
        "apply only/s",
        "1-row commits/s",
        "ratio",
        "callback (c1)",
        "in plugin",
        "plugin share",
    );
    for r in rows {
        println!(
            "{:<9} {:>13.0} {:>14.0} {:>17.0} {:>6.0}% {:>11.2} ms {:>11.2} ms {:>12.0}%  {}",
            r.engine,
            r.callbacks_per_sec,
            r.apply_per_sec,
            r.baseline_per_sec,
            100.0 * r.callbacks_per_sec / r.baseline_per_sec,
            r.sequential_mean.as_secs_f64() * 1e3,
            r.plugin_mean.as_secs_f64() * 1e3,
            100.0 * r.plugin_mean.as_secs_f64() / r.sequential_mean.as_secs_f64().max(f64::EPSILON),
            r.goal
        );
    }
    println!(
        "callbacks/s: the fake Paynow posting signed Paid updates to /hooks/gateway/paynow \
         (verify, confirm by poll, apply); apply only: the same transaction without HTTP or \
         plugin; ratio: callbacks/s over the engine's one-row commits/s; in plugin: \
         verify-callback + poll per callback, the poll's HTTP round trip to the fake included"
    );
}
