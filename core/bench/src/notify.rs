//! `keel bench notify` (issue 18): WhatsApp notifications per second through the shipped
//! WhatsApp notifier (`keel_plugins::KEEL_PLUGIN_WHATSAPP`) in the real plugin host, sending
//! to the fake Cloud API (`keel_testkit::whatsapp::FakeWhatsApp`) on loopback, beside the
//! same requests sent by plain `reqwest` to the same kind of fake, in the same run, at the
//! same concurrency.
//!
//! - **plugin**: `NotifierPlugin::send` of a text message (a subject and a ~200-character
//!   body, its own reference, so the fake's idempotency on `biz_opaque_callback_data` never
//!   answers a repeat), `--concurrency` sends in flight. Each call is a fresh store and
//!   instance; the plugin builds the body, the host checks the grant and moves the
//!   connection to the fake (`--fake-origin https://graph.facebook.com=<fake>`, as `keel
//!   serve` does), and the plugin reads the wamid out of the reply.
//! - **baseline**: the very requests the plugin made (their recorded path, bearer token,
//!   content type and body bytes), replayed with one pooled `reqwest::Client`, the reply read
//!   and its `messages[0].id` parsed, by as many tasks as the plugin run had sends in flight.
//! - **plugin share**: the time per message (wall time over messages) of the plugin run
//!   minus the baseline's, over the plugin's.
//!
//! The fake checks every send for a repeat by scanning all it has accepted, so its cost per
//! send grows with what it holds. Both sides therefore send to a fresh fake every
//! `--per-fake` messages (the plugin reloaded against it from a compiled-component cache,
//! the reqwest client rebuilt), and each fake first takes `concurrency` untimed sends that
//! open the connections. The recipients' 24-hour windows are opened on each fake, so every
//! text is accepted; every send must succeed, or the run fails.

use anyhow::{Context, Result, ensure};
use keel_plugin_host::notifier::{Message, Notifier, NotifierPlugin};
use keel_plugin_host::{OriginOverrides, Plugin};
use keel_testkit::plugins::PluginHarness;
use keel_testkit::whatsapp::{APP_SECRET, FakeWhatsApp, PHONE_NUMBER_ID, VERIFY_TOKEN};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct NotifyArgs {
    /// Messages measured per side (plugin, plain reqwest) and concurrency level.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    /// Sends in flight at once; a list measures each level (`--concurrency 1,8`).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    pub concurrency: Vec<usize>,
    /// Messages sent to one fake before the next, fresh one (the fake's repeat check
    /// scans everything it has accepted).
    #[arg(long, default_value_t = 1_000)]
    pub per_fake: usize,
}

/// The access token the fake requires and the plugin is given.
const TOKEN: &str = "EAAG-keel-bench-notify-token";
/// The origin the shipped manifest grants; the host moves its connections to the fake.
const GRAPH: &str = "https://graph.facebook.com";
/// Distinct recipients the messages go to, in turn.
const RECIPIENTS: usize = 64;
/// The fake's frozen clock (2026-01-01T00:00:00Z): windows opened at it stay open.
const T0: i64 = 1_767_225_600;

fn recipient(i: usize) -> String {
    format!("26377{:07}", 1_000_000 + i % RECIPIENTS)
}

fn message(reference: String, i: usize) -> Message {
    Message {
        reference,
        to: format!("+{}", recipient(i)),
        subject: Some(format!("Invoice INV-2026-{i:05}")),
        body: format!(
            "Hello Tendai, invoice INV-2026-{i:05} for USD 129.00 (Shared hosting, Business \
             plan) is due on 2026-12-15. Pay online at https://billing.example.com/invoices/{i} \
             or reply to this message if you need help."
        ),
        template: None,
        attachment: None,
    }
}

/// One request as the plugin made it and the fake received it.
#[derive(Clone)]
struct Recorded {
    path: String,
    authorization: String,
    content_type: String,
    body: Vec<u8>,
}

/// One side's run at one concurrency.
struct Measured {
    /// Wall time of the timed sends, summed over the fakes.
    wall: Duration,
    /// Latency of each timed send.
    latencies: Vec<Duration>,
}

impl Measured {
    fn per_sec(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(f64::EPSILON)
    }

    /// Wall time over messages.
    fn per_message(&self) -> Duration {
        self.wall / u32::try_from(self.latencies.len().max(1)).unwrap_or(u32::MAX)
    }

    fn pct(&mut self, q: f64) -> Duration {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        if n == 0 {
            return Duration::ZERO;
        }
        self.latencies[((n as f64 * q) as usize).min(n - 1)]
    }
}

struct Row {
    concurrency: usize,
    plugin: Measured,
    baseline: Measured,
}

impl Row {
    /// (plugin time per message − baseline's) / plugin's.
    fn plugin_share(&self) -> f64 {
        let p = self.plugin.per_message().as_secs_f64();
        let b = self.baseline.per_message().as_secs_f64();
        (p - b) / p.max(f64::EPSILON)
    }
}

pub async fn run(args: NotifyArgs) -> Result<()> {
    let mut rows = measure(&args).await?;
    print_table(&mut rows, &args);
    Ok(())
}

/// One concurrency level's figures, for a caller that wants them without the table (the
/// smoke test checks that both sides ran, never how fast).
#[derive(Debug, Clone)]
pub struct Figures {
    pub concurrency: usize,
    /// Timed sends through the plugin, and their rate.
    pub plugin_messages: usize,
    pub plugin_per_sec: f64,
    /// Timed sends of the same requests by plain reqwest, and their rate.
    pub baseline_messages: usize,
    pub baseline_per_sec: f64,
    /// (plugin time per message − baseline's) / plugin's.
    pub plugin_share: f64,
}

/// Runs the benchmark and returns its figures, one entry per concurrency level, printing
/// nothing on stdout.
pub async fn figures(args: &NotifyArgs) -> Result<Vec<Figures>> {
    Ok(measure(args)
        .await?
        .iter()
        .map(|r| Figures {
            concurrency: r.concurrency,
            plugin_messages: r.plugin.latencies.len(),
            plugin_per_sec: r.plugin.per_sec(),
            baseline_messages: r.baseline.latencies.len(),
            baseline_per_sec: r.baseline.per_sec(),
            plugin_share: r.plugin_share(),
        })
        .collect())
}

async fn measure(args: &NotifyArgs) -> Result<Vec<Row>> {
    ensure!(
        args.messages > 0 && args.per_fake > 0,
        "--messages and --per-fake must be at least 1"
    );
    ensure!(
        !args.concurrency.is_empty() && args.concurrency.iter().all(|c| *c > 0),
        "--concurrency must be at least 1"
    );
    let cache = std::env::temp_dir().join(format!(
        "keel-bench-notify-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&cache)
        .with_context(|| format!("creating the plugin cache {}", cache.display()))?;
    let result = measure_all(args, &cache).await;
    let _ = std::fs::remove_dir_all(&cache);
    result
}

async fn measure_all(args: &NotifyArgs, cache: &std::path::Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        eprintln!(
            "bench notify: {} messages at concurrency {concurrency} through the plugin, then \
             the same requests by plain reqwest ({} per fake)",
            args.messages, args.per_fake
        );
        let mut plugin = Measured {
            wall: Duration::ZERO,
            latencies: Vec::with_capacity(args.messages),
        };
        let mut baseline = Measured {
            wall: Duration::ZERO,
            latencies: Vec::with_capacity(args.messages),
        };
        let mut first = 0;
        let mut round = 0;
        while first < args.messages {
            let count = args.per_fake.min(args.messages - first);
            let recorded =
                plugin_round(concurrency, round, first, count, cache, &mut plugin).await?;
            baseline_round(concurrency, &recorded, &mut baseline).await?;
            first += count;
            round += 1;
        }
        rows.push(Row {
            concurrency,
            plugin,
            baseline,
        });
    }
    Ok(rows)
}

/// A fresh fake with every recipient's window open.
async fn fake() -> FakeWhatsApp {
    let fake = FakeWhatsApp::builder()
        .access_token(TOKEN)
        .clock_at(T0)
        .log(false)
        .start()
        .await;
    for i in 0..RECIPIENTS {
        fake.open_window(&recipient(i));
    }
    fake
}

/// The shipped WhatsApp plugin with its `[plugins.whatsapp]` settings, its Graph origin
/// moved to `fake`. The harness must outlive the plugin.
async fn load_plugin(
    fake: &FakeWhatsApp,
    cache: &std::path::Path,
) -> Result<(PluginHarness, Plugin)> {
    let artifact = &keel_plugins::KEEL_PLUGIN_WHATSAPP;
    let wasm = artifact
        .wasm()
        .context("the WhatsApp plugin (built by keel-plugins)")?;
    let manifest = artifact.manifest().context("the WhatsApp plugin.toml")?;
    let mut origins = OriginOverrides::new();
    origins
        .insert(GRAPH, &fake.origin())
        .map_err(anyhow::Error::msg)?;
    let cache = cache.to_path_buf();
    let mut harness = PluginHarness::new().configure(move |c| {
        c.origin_overrides = origins;
        c.cache_dir = Some(cache);
    });
    let section = format!(
        "access_token = \"{TOKEN}\"\nphone_number_id = \"{PHONE_NUMBER_ID}\"\n\
         app_secret = \"{APP_SECRET}\"\nverify_token = \"{VERIFY_TOKEN}\"\n"
    );
    let plugin = harness
        .load(wasm, &manifest, &section)
        .await
        .map_err(|e| anyhow::anyhow!("loading the WhatsApp plugin: {e}"))?;
    Ok((harness, plugin))
}

/// `count` sends through the plugin to a fresh fake, after `concurrency` untimed ones; the
/// timed requests as the fake received them.
async fn plugin_round(
    concurrency: usize,
    round: usize,
    first: usize,
    count: usize,
    cache: &std::path::Path,
    into: &mut Measured,
) -> Result<Vec<Recorded>> {
    let fake = fake().await;
    let (_harness, plugin) = load_plugin(&fake, cache).await?;
    let notifier = Arc::new(
        plugin
            .notifier()
            .context("the WhatsApp plugin is not a notifier")?,
    );
    let warm: Vec<Message> = (0..concurrency)
        .map(|i| message(format!("bench-c{concurrency}-r{round}-warm{i}"), first + i))
        .collect();
    let warm_n = warm.len();
    plugin_sends(&notifier, warm, concurrency).await?;
    let timed: Vec<Message> = (first..first + count)
        .map(|i| message(format!("bench-c{concurrency}-m{i}"), i))
        .collect();
    let start = Instant::now();
    let latencies = plugin_sends(&notifier, timed, concurrency).await?;
    into.wall += start.elapsed();
    into.latencies.extend(latencies);

    let sent = fake.sent().len();
    ensure!(
        sent == warm_n + count,
        "the fake accepted {sent} messages of the plugin's {}",
        warm_n + count
    );
    let received = fake.received();
    ensure!(
        received.len() == warm_n + count,
        "the fake received {} requests for {} sends",
        received.len(),
        warm_n + count
    );
    let recorded = received
        .into_iter()
        .skip(warm_n)
        .map(|r| {
            let header = |name: &str| r.header(name).map(str::to_owned).unwrap_or_default();
            Recorded {
                authorization: header("authorization"),
                content_type: header("content-type"),
                path: r.uri.clone(),
                body: r.body,
            }
        })
        .collect::<Vec<_>>();
    ensure!(
        recorded.iter().all(|r| r.path.starts_with('/')),
        "the fake recorded a request URI that is not a path"
    );
    fake.stop().await;
    Ok(recorded)
}

/// `messages` through `notifier.send`, `concurrency` at once: each send's latency.
async fn plugin_sends(
    notifier: &Arc<NotifierPlugin>,
    messages: Vec<Message>,
    concurrency: usize,
) -> Result<Vec<Duration>> {
    let messages = Arc::new(messages);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (notifier, messages, next) = (notifier.clone(), messages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(msg) = messages.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let t = Instant::now();
                let receipt = notifier
                    .send(msg.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("the plugin's send of {}: {e}", msg.reference))?;
                latencies.push(t.elapsed());
                ensure!(
                    receipt.provider_id.starts_with("wamid."),
                    "the plugin returned {:?} for {}",
                    receipt.provider_id,
                    msg.reference
                );
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// The plugin's requests replayed by plain reqwest to a fresh fake, after `concurrency`
/// untimed ones that open the connections (copies of the first requests under another
/// `biz_opaque_callback_data`, so the timed ones are not repeats).
async fn baseline_round(
    concurrency: usize,
    recorded: &[Recorded],
    into: &mut Measured,
) -> Result<()> {
    let fake = fake().await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("the baseline's HTTP client")?;
    let origin = fake.origin();
    let warm: Vec<Recorded> = recorded
        .iter()
        .take(concurrency)
        .enumerate()
        .map(|(i, r)| warm_copy(r, i))
        .collect::<Result<_>>()?;
    let warm_n = warm.len();
    baseline_sends(&client, &origin, warm, concurrency).await?;
    let start = Instant::now();
    let latencies = baseline_sends(&client, &origin, recorded.to_vec(), concurrency).await?;
    into.wall += start.elapsed();
    into.latencies.extend(latencies);
    let sent = fake.sent().len();
    ensure!(
        sent == warm_n + recorded.len(),
        "the fake accepted {sent} messages of the baseline's {}",
        warm_n + recorded.len()
    );
    fake.stop().await;
    Ok(())
}

/// `r` with `-warm<i>` added to its `biz_opaque_callback_data`, so the fake takes it as a
/// new message.
fn warm_copy(r: &Recorded, i: usize) -> Result<Recorded> {
    let mut body: serde_json::Value =
        serde_json::from_slice(&r.body).context("the plugin's request body is not JSON")?;
    let reference = body
        .get("biz_opaque_callback_data")
        .and_then(|v| v.as_str())
        .unwrap_or("bench")
        .to_owned();
    body["biz_opaque_callback_data"] = serde_json::Value::String(format!("{reference}-warm{i}"));
    Ok(Recorded {
        body: serde_json::to_vec(&body)?,
        ..r.clone()
    })
}

/// `requests` POSTed by `client`, `concurrency` at once, each reply read and its wamid
/// parsed (what the plugin does with it): each send's latency.
async fn baseline_sends(
    client: &reqwest::Client,
    origin: &str,
    requests: Vec<Recorded>,
    concurrency: usize,
) -> Result<Vec<Duration>> {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, requests, next, origin) = (
            client.clone(),
            requests.clone(),
            next.clone(),
            origin.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = requests.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let t = Instant::now();
                let response = client
                    .post(format!("{origin}{}", r.path))
                    .header(reqwest::header::AUTHORIZATION, &r.authorization)
                    .header(reqwest::header::CONTENT_TYPE, &r.content_type)
                    .body(r.body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(
                    status.is_success(),
                    "the fake answered the baseline's request {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                let reply: serde_json::Value = serde_json::from_slice(&body)?;
                let wamid = reply["messages"][0]["id"].as_str().unwrap_or_default();
                latencies.push(t.elapsed());
                ensure!(
                    wamid.starts_with("wamid."),
                    "the fake's reply has no wamid: {reply}"
                );
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_table(rows: &mut [Row], args: &NotifyArgs) {
    println!(
        "keel bench notify: {} WhatsApp text messages per side and concurrency, to the fake \
         Cloud API on loopback ({} per fake, {RECIPIENTS} recipients)\n",
        args.messages, args.per_fake
    );
    println!(
        "{:<6} {:>11} {:>9} {:>9} {:>13} {:>9} {:>9} {:>13} {:>13} {:>13}",
        "conc",
        "plugin/s",
        "p50 ms",
        "p99 ms",
        "reqwest/s",
        "p50 ms",
        "p99 ms",
        "plugin ms/msg",
        "reqwest ms/msg",
        "plugin share",
    );
    for r in rows.iter_mut() {
        let share = r.plugin_share();
        println!(
            "c{:<5} {:>11.0} {:>9.3} {:>9.3} {:>13.0} {:>9.3} {:>9.3} {:>13.3} {:>14.3} {:>12.0}%",
            r.concurrency,
            r.plugin.per_sec(),
            ms(r.plugin.pct(0.50)),
            ms(r.plugin.pct(0.99)),
            r.baseline.per_sec(),
            ms(r.baseline.pct(0.50)),
            ms(r.baseline.pct(0.99)),
            ms(r.plugin.per_message()),
            ms(r.baseline.per_message()),
            100.0 * share,
        );
    }
    println!(
        "\nplugin: NotifierPlugin::send of the shipped WhatsApp component (fresh instance per \
         call, grant check, fake origin for {GRAPH}); reqwest: the same requests (path, bearer \
         token, body bytes) replayed by one pooled reqwest client, its reply's wamid parsed; \
         both in this run, to fresh fakes, at the same concurrency. plugin share: (plugin \
         ms/msg - reqwest ms/msg) / plugin ms/msg, ms/msg being wall time over messages."
    );
}
