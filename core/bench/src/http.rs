//! `keel bench http`: requests per second and latency at 64 keep-alive connections, for a
//! trivial axum server (the box's ceiling, PERFORMANCE.md B13), Keel's `/healthz` behind its
//! full middleware stack (G1), and an authenticated `GET /api/v1/clients?limit=20` over a
//! seeded book (G2) — all in the same run, so the ratios hold on a noisy machine.
//!
//! The load generator is a small HTTP/1.1 client on raw sockets (keep-alive, one request in
//! flight per connection, like wrk), running in this process on the same two cores as the
//! servers: absolute figures are about half of what a server with the box to itself would
//! reach; the ratios are what the goals compare.

use crate::scratch::Scratch;
use crate::{EngineChoice, pg_server};
use anyhow::{Context, Result};
use keel_app::{App, Ctx};
use keel_domain::access::KeyScope;
use keel_domain::client::NewClient;
use keel_domain::tenancy::Owner;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::Args, Debug)]
pub struct HttpArgs {
    /// Which engines to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// Clients seeded into the database the API lists from.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// PostgreSQL server for the scratch schema (as for `bench ledger`).
    #[arg(long)]
    pub pg_url: Option<String>,
}

struct Measured {
    target: String,
    requests_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

pub async fn run(args: HttpArgs) -> Result<()> {
    let mut results = Vec::new();
    let trivial = start_trivial().await?;
    results.push(load(trivial, "/", None, &args, "trivial axum GET /").await?);
    let mut engines = Vec::new();
    if args.engine != EngineChoice::Postgres {
        engines.push(("sqlite", Scratch::sqlite().await?));
    }
    if args.engine != EngineChoice::Sqlite {
        engines.push((
            "postgres",
            Scratch::postgres(&pg_server(args.pg_url.clone())).await?,
        ));
    }
    for (engine, scratch) in engines {
        let app = App::new(scratch.db.clone());
        let key = seed(&app, args.clients).await?;
        let (addr, stop) = start_keel(app).await?;
        results.push(
            load(
                addr,
                "/healthz",
                None,
                &args,
                &format!("keel {engine} GET /healthz"),
            )
            .await?,
        );
        results.push(
            load(
                addr,
                "/api/v1/clients?limit=20",
                Some(&key),
                &args,
                &format!("keel {engine} GET /api/v1/clients?limit=20"),
            )
            .await?,
        );
        let _ = stop.send(());
        scratch.drop_it().await;
    }
    let ceiling = results[0].requests_per_sec;
    println!(
        "{:<48} {:>10} {:>9} {:>9} {:>8} {:>7}",
        "target", "req/s", "p50 ms", "p99 ms", "errors", "of B13"
    );
    for r in &results {
        println!(
            "{:<48} {:>10.0} {:>9.2} {:>9.2} {:>8} {:>6.0}%",
            r.target,
            r.requests_per_sec,
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.errors,
            100.0 * r.requests_per_sec / ceiling
        );
    }
    println!(
        "goals: G1 /healthz >= 85% of the trivial server, p99 <= 3 ms; G2 client list SQLite >= 20k req/s, \
         PostgreSQL >= 8k req/s, p99 <= 10 ms ({} connections, {} s each, {} clients seeded)",
        args.connections, args.seconds, args.clients
    );
    Ok(())
}

async fn start_trivial() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

async fn start_keel(app: App) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = keel_api::State::new(app, keel_api::ApiConfig::default());
    tokio::spawn(async move {
        let _ = keel_api::serve(listener, state, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok((addr, tx))
}

/// Seeds `n` clients (1,000 per transaction, straight through the store) and returns an
/// admin key made through the use case.
async fn seed(app: &App, n: usize) -> Result<String> {
    let start = Instant::now();
    for chunk_start in (0..n).step_by(1000) {
        let mut tx = app.db.begin().await?;
        for i in chunk_start..(chunk_start + 1000).min(n) {
            let new: NewClient = serde_json::from_value(serde_json::json!({
                "kind": "person", "first_name": format!("Client{i}"), "last_name": "Bench",
                "email": format!("client{i}@bench.example"), "country": "ZW", "currency": "USD",
            }))?;
            keel_store::clients::create_client(&mut tx, Owner::Host, &new, keel_store::db::now())
                .await?;
        }
        tx.commit().await?;
    }
    let key = keel_app::access::create_key(
        app,
        &Ctx::system("bench"),
        keel_app::access::NewKey {
            name: "bench".into(),
            scope: KeyScope::Admin,
            reseller_id: None,
            client_id: None,
            staff_id: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "seeded {n} clients in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(key.secret)
}

/// Runs `connections` keep-alive loops against `path` for `seconds` and merges their figures.
async fn load(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    args: &HttpArgs,
    target: &str,
) -> Result<Measured> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(key) = key {
        request.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    request.push_str("\r\n");
    // Warm up: one request per connection's worth, not measured.
    one_connection(
        addr,
        request.clone(),
        Instant::now() + Duration::from_millis(300),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| tokio::spawn(one_connection(addr, request.clone(), deadline)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (mut l, e) = t.await??;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    eprintln!("{target}: {} requests", latencies.len());
    Ok(Measured {
        target: target.to_string(),
        requests_per_sec: latencies.len() as f64 / elapsed,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        errors,
    })
}

/// One keep-alive connection sending `request` until `deadline`: latencies in µs of the
/// successful (2xx) answers, and the count of the others.
async fn one_connection(
    addr: SocketAddr,
    request: String,
    deadline: Instant,
) -> Result<(Vec<u64>, u64)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < deadline {
        let sent = Instant::now();
        stream.write_all(request.as_bytes()).await?;
        let mut filled = 0;
        let (header_end, body_len, ok) = loop {
            let n = stream.read(&mut buf[filled..]).await?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            filled += n;
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
                let ok = head.starts_with("HTTP/1.1 2");
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .context("the answer has no Content-Length")?;
                break (end + 4, len, ok);
            }
            if filled == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
        };
        let total = header_end + body_len;
        if buf.len() < total {
            buf.resize(total, 0);
        }
        while filled < total {
            let n = stream.read(&mut buf[filled..total]).await?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            filled += n;
        }
        if ok {
            latencies.push(sent.elapsed().as_micros() as u64);
        } else {
            errors += 1;
        }
    }
    Ok((latencies, errors))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
