//! `keel bench jobs` (goals G8, G9): the job queue on a fresh scratch database per engine.
//!
//! - **Drain**: `--drain` no-op jobs (`keel.noop`) are pre-inserted, then two in-process
//!   workers (batches of 500) run them all; jobs/s is printed beside the baseline measured
//!   in the same run: PERFORMANCE.md B6's protocol on a bare table (claim 100 with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL, then delete them; two loops).
//! - **Latency**: with one worker idle, `--latency` jobs are enqueued at 100 per second,
//!   each carrying its enqueue time; the handler notes when it starts. Printed: p50, p99 and
//!   max from enqueue (commit included) to handler start.

use crate::scratch::Scratch;
use crate::{EngineChoice, pg_server};
use anyhow::{Result, anyhow, ensure};
use futures::future::BoxFuture;
use keel_jobs::{Env, Handler, JobError, NewJob, Worker, WorkerConfig};
use keel_store::Db;
use keel_store::bench::{claim_bare_queue, create_bare_queue, delete_bare_queue};
use keel_store::jobs::{self as store, JobRecord, JobState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct JobsArgs {
    /// No-op jobs pre-inserted for the drain.
    #[arg(long, default_value_t = 100_000)]
    pub drain: u64,
    /// Jobs enqueued one by one at 100/s for the latency measurement (0: skip it).
    #[arg(long, default_value_t = 1000)]
    pub latency: u64,
    #[arg(long, value_enum, default_value = "both")]
    pub engine: EngineChoice,
    /// PostgreSQL server for the scratch schema (as for `bench ledger`).
    #[arg(long)]
    pub pg_url: Option<String>,
}

/// The kind the latency measurement enqueues: its handler notes how long the job waited.
const LATENCY_KIND: &str = "keel.bench.latency";

/// Microseconds from enqueue to handler start, per job of the latency run.
static WAITS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn note_wait<'a>(_: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let sent = job.payload["sent_us"].as_u64().unwrap_or(0);
        WAITS
            .lock()
            .expect("the waits")
            .push(epoch_micros().saturating_sub(sent));
        Ok(())
    })
}

inventory::submit! { Handler { kind: LATENCY_KIND, run: note_wait } }

struct Measured {
    engine: &'static str,
    jobs: u64,
    enqueue: Duration,
    drain: Duration,
    baseline: Duration,
    latency: Option<(f64, f64, f64)>,
}

pub async fn run(args: JobsArgs) -> Result<()> {
    let mut results = Vec::new();
    if args.engine != EngineChoice::Postgres {
        let scratch = Scratch::sqlite().await?;
        let r = measure(&scratch.db, "sqlite", &args).await;
        scratch.drop_it().await;
        results.push(r?);
    }
    if args.engine != EngineChoice::Sqlite {
        let scratch = Scratch::postgres(&pg_server(args.pg_url.clone())).await?;
        let r = measure(&scratch.db, "postgres", &args).await;
        scratch.drop_it().await;
        results.push(r?);
    }
    println!(
        "{:<9} {:>9} {:>10} {:>9} {:>10} {:>13} {:>9}  {:>28}  G8 / G9",
        "engine",
        "jobs",
        "enqueue s",
        "drain s",
        "jobs/s",
        "baseline j/s",
        "ratio",
        "latency p50 / p99 / max ms"
    );
    for m in &results {
        let rate = m.jobs as f64 / m.drain.as_secs_f64();
        let base = m.jobs as f64 / m.baseline.as_secs_f64();
        let target = if m.engine == "sqlite" {
            50_000.0
        } else {
            20_000.0
        };
        let latency = m.latency.map_or("-".to_string(), |(p50, p99, max)| {
            format!("{p50:.2} / {p99:.2} / {max:.2}")
        });
        let latency_met = m.latency.map_or("not measured", |(p50, p99, _)| {
            if p50 <= 2.0 && p99 <= 10.0 {
                "met"
            } else {
                "MISSED"
            }
        });
        println!(
            "{:<9} {:>9} {:>10.2} {:>9.2} {:>10.0} {:>13.0} {:>8.2}x  {:>28}  drain >= {target:.0}/s {}; p50 <= 2 ms, p99 <= 10 ms {latency_met}",
            m.engine,
            m.jobs,
            m.enqueue.as_secs_f64(),
            m.drain.as_secs_f64(),
            rate,
            base,
            rate / base,
            latency,
            if rate >= target { "met" } else { "MISSED" },
        );
    }
    println!(
        "baseline: PERFORMANCE.md B6's protocol on a bare table in the same database (claim 100, then delete them; two loops)"
    );
    Ok(())
}

async fn measure(db: &Db, engine: &'static str, args: &JobsArgs) -> Result<Measured> {
    eprintln!("bench jobs on {engine}: {} no-op jobs", args.drain);
    let now = keel_store::db::now();
    let start = Instant::now();
    let jobs: Vec<NewJob> = (0..args.drain)
        .map(|_| NewJob::new(keel_jobs::NOOP, serde_json::json!({}), now))
        .collect();
    for chunk in jobs.chunks(10_000) {
        let mut tx = db.begin().await?;
        store::enqueue_many(&mut tx, chunk, now).await?;
        tx.commit().await?;
    }
    drop(jobs);
    let enqueue = start.elapsed();

    let start = Instant::now();
    let env: Arc<Env> = Arc::new(());
    let tasks: Vec<_> = (0..2)
        .map(|n| {
            let mut config = WorkerConfig::new("default", format!("bench-{n}"));
            config.batch = 500;
            config.concurrency = 64;
            let worker = Worker::new(
                db.clone(),
                env.clone(),
                config,
                Arc::new(keel_store::db::now),
            );
            tokio::spawn(async move {
                let stop = tokio::sync::watch::channel(false).1;
                loop {
                    let tick = worker.tick(&stop).await?;
                    if tick.claimed == 0 {
                        return Ok::<_, keel_store::StoreError>(());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| anyhow!("a worker panicked: {e}"))??;
    }
    let drain = start.elapsed();
    let done: u64 = store::stats(db)
        .await?
        .iter()
        .filter(|(_, s, _)| *s == JobState::Done)
        .map(|(_, _, n)| *n)
        .sum();
    ensure!(done == args.drain, "{done} of {} jobs done", args.drain);
    eprintln!(
        "  drained in {:.2} s ({:.0} jobs/s)",
        drain.as_secs_f64(),
        args.drain as f64 / drain.as_secs_f64()
    );

    let baseline = baseline(db, args.drain).await?;
    let latency = if args.latency > 0 {
        Some(latency(db, args.latency).await?)
    } else {
        None
    };
    Ok(Measured {
        engine,
        jobs: args.drain,
        enqueue,
        drain,
        baseline,
        latency,
    })
}

/// B6 on a bare table: `n` rows, two loops each claiming 100 and deleting them.
async fn baseline(db: &Db, n: u64) -> Result<Duration> {
    create_bare_queue(db, n).await?;
    let start = Instant::now();
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                loop {
                    let mut tx = db.begin().await?;
                    let ids = claim_bare_queue(&mut tx).await?;
                    tx.commit().await?;
                    if ids.is_empty() {
                        return Ok::<_, keel_store::StoreError>(());
                    }
                    let mut tx = db.begin().await?;
                    delete_bare_queue(&mut tx, &ids).await?;
                    tx.commit().await?;
                }
            })
        })
        .collect();
    for l in loops {
        l.await
            .map_err(|e| anyhow!("a baseline loop panicked: {e}"))??;
    }
    Ok(start.elapsed())
}

/// `n` jobs at 100/s to an idle worker: (p50, p99, max) in ms from enqueue to start.
async fn latency(db: &Db, n: u64) -> Result<(f64, f64, f64)> {
    WAITS.lock().expect("the waits").clear();
    let worker = Worker::new(
        db.clone(),
        Arc::new(()),
        WorkerConfig::new("default", "bench-latency"),
        Arc::new(keel_store::db::now),
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { worker.run(stop).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..n {
        tick.tick().await;
        let job = NewJob::new(
            LATENCY_KIND,
            serde_json::json!({ "sent_us": epoch_micros() }),
            keel_store::db::now(),
        );
        let mut tx = db.begin().await?;
        store::enqueue(&mut tx, &job, keel_store::db::now()).await?;
        tx.commit().await?;
    }
    let start = Instant::now();
    while (WAITS.lock().expect("the waits").len() as u64) < n {
        ensure!(
            start.elapsed() < Duration::from_secs(30),
            "latency jobs did not all run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    running
        .await
        .map_err(|e| anyhow!("the worker panicked: {e}"))??;
    let mut waits = WAITS.lock().expect("the waits").clone();
    waits.sort_unstable();
    let at = |q: f64| waits[((waits.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    Ok((at(0.5), at(0.99), at(1.0)))
}
