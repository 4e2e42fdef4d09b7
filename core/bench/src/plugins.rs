//! `keel bench plugins` (goal G12): the cost of a plugin call through the real host — a
//! fresh store and instance per call, the pool, the CPU and memory limits, the timeout,
//! metrics — beside a native Rust implementation of the same `Gateway` trait, measured in
//! the same run. The component is the `echo` test fixture:
//!
//! - `describe`: a no-op call;
//! - `initiate`: a payment request of about 1 KB in, a record out;
//! - `poll`: one host import (the clock).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use futures::future::BoxFuture;
use keel_plugin_host::gateway::{
    Callback, Gateway, NextAction, PaymentRef, PaymentRequest, PaymentStarted, PaymentStatus,
    PaymentUpdate, RefundRequest, RefundStarted,
};
use keel_plugin_host::{
    Contact, Features, HostConfig, InboundRequest, Money, PluginFailure, PluginHost, PluginInfo,
};

#[derive(clap::Args, Debug)]
pub struct PluginsArgs {
    /// Calls measured per operation and implementation.
    #[arg(long, default_value_t = 10_000)]
    pub calls: usize,
}

/// The echo fixture's logic in plain Rust, as a built-in gateway would be written.
struct NativeEcho;

impl Gateway for NativeEcho {
    fn describe(&self) -> BoxFuture<'_, Result<PluginInfo, PluginFailure>> {
        Box::pin(async {
            Ok(PluginInfo {
                name: "Echo".into(),
                version: "0.1.0".into(),
                description: "Answers from its input".into(),
                features: Features::POLLING | Features::REFUNDS,
            })
        })
    }

    fn initiate(
        &self,
        req: PaymentRequest,
    ) -> BoxFuture<'_, Result<PaymentStarted, PluginFailure>> {
        Box::pin(async move {
            Ok(PaymentStarted {
                provider_reference: req.reference,
                status: PaymentStatus::Pending,
                action: NextAction::Redirect(req.return_url),
                state: Some(req.description),
            })
        })
    }

    fn verify_callback(
        &self,
        _req: InboundRequest,
    ) -> BoxFuture<'_, Result<Callback, PluginFailure>> {
        Box::pin(async {
            Err(PluginFailure::Plugin(
                keel_plugin_host::PluginError::Unsupported,
            ))
        })
    }

    fn poll(&self, payment: PaymentRef) -> BoxFuture<'_, Result<PaymentUpdate, PluginFailure>> {
        Box::pin(async move {
            Ok(PaymentUpdate {
                reference: payment.reference,
                provider_reference: payment.provider_reference,
                status: PaymentStatus::Paid,
                amount: None,
                provider_status: Utc::now().timestamp_millis().to_string(),
            })
        })
    }

    fn refund(&self, _req: RefundRequest) -> BoxFuture<'_, Result<RefundStarted, PluginFailure>> {
        Box::pin(async {
            Err(PluginFailure::Plugin(
                keel_plugin_host::PluginError::Unsupported,
            ))
        })
    }
}

fn request() -> PaymentRequest {
    PaymentRequest {
        reference: "pay_0123456789".into(),
        invoice_id: "INV-2026-00042".into(),
        amount: Money {
            minor: 129_900,
            currency: "USD".into(),
        },
        description: "Shared hosting, Business plan, 12 months; domain example.co.zw, 1 year. "
            .repeat(11),
        payer: Contact {
            first_name: "Tendai".into(),
            last_name: "Moyo".into(),
            company: Some("Moyo Trading (Pvt) Ltd".into()),
            email: "accounts@moyo.example".into(),
            phone: Some("+263771234567".into()),
            address: None,
        },
        return_url: "https://billing.example.com/invoices/42/return".into(),
        callback_url: "https://billing.example.com/api/v1/callbacks/paynow".into(),
        method: Some("ecocash".into()),
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

async fn measure<F, Fut>(calls: usize, mut f: F) -> Result<Stats>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), PluginFailure>>,
{
    for _ in 0..(calls / 10).max(50) {
        f().await?;
    }
    let mut times = Vec::with_capacity(calls);
    let all = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    let total = all.elapsed();
    times.sort();
    Ok(Stats {
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
        mean: total / calls as u32,
    })
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

pub async fn run(args: PluginsArgs) -> Result<()> {
    let artifact = keel_plugins::KEEL_FIXTURE_ECHO;
    let wasm = artifact
        .wasm()
        .context("the echo fixture (built by keel-plugins)")?;
    let manifest = keel_plugin_host::Manifest::parse(&artifact.manifest()?, artifact.manifest_path)
        .map_err(anyhow::Error::msg)?;
    let enabled = keel_plugin_host::settings::validate(&manifest, &toml::Table::new())
        .map_err(|e| anyhow::anyhow!(e.join("; ")))?;
    let host = PluginHost::new(HostConfig {
        max_concurrent_calls: 4,
        ..HostConfig::default()
    })
    .map_err(anyhow::Error::msg)?;
    let plugin = host.load(manifest, wasm.into(), enabled).await?;
    let wasm_gw = plugin.gateway().context("echo is a gateway")?;
    let native = NativeEcho;
    let req = request();
    let pay_ref = PaymentRef {
        reference: "pay_1".into(),
        provider_reference: "p_1".into(),
        state: None,
    };
    let calls = args.calls;

    println!(
        "keel bench plugins: {calls} sequential calls each, after a warm-up; fresh store and instance per wasm call"
    );
    println!(
        "request record for `initiate`: {} bytes of strings\n",
        req.description.len() + 300
    );
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "call", "native p50", "wasm p50", "wasm p99", "wasm mean", "goal p50"
    );
    let rows: [(&str, Stats, Stats, &str); 3] = [
        (
            "describe (no-op)",
            measure(calls, || async { native.describe().await.map(drop) }).await?,
            measure(calls, || async { wasm_gw.describe().await.map(drop) }).await?,
            "≤ 20 µs",
        ),
        (
            "initiate (~1 KB record)",
            measure(calls, || async {
                native.initiate(req.clone()).await.map(drop)
            })
            .await?,
            measure(calls, || async {
                wasm_gw.initiate(req.clone()).await.map(drop)
            })
            .await?,
            "≤ 22 µs",
        ),
        (
            "poll (one host import)",
            measure(calls, || async {
                native.poll(pay_ref.clone()).await.map(drop)
            })
            .await?,
            measure(calls, || async {
                wasm_gw.poll(pay_ref.clone()).await.map(drop)
            })
            .await?,
            "≤ 21 µs",
        ),
    ];
    for (name, n, w, goal) in &rows {
        println!(
            "{name:<34} {:>12} {:>12} {:>12} {:>12} {goal:>10}",
            us(n.p50),
            us(w.p50),
            us(w.p99),
            us(w.mean)
        );
    }
    println!(
        "\nG12 (PERFORMANCE.md): a fresh instance per call ≤ 20 µs median, ≤ 100 µs p99 for a Rust plugin; \
         the native column is the same trait implemented in Rust, the baseline from this run."
    );
    Ok(())
}
