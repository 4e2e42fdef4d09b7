//! Automation in the binary: the workers and the scheduler `keel serve` runs, and
//! `keel jobs …` for staff at the command line.

use crate::config::Config;
use anyhow::{Context, Result, anyhow};
use keel_app::{App, Ctx, automation};
use keel_jobs::{Scheduler, Worker};
use keel_store::jobs::JobRecord;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(clap::Subcommand, Debug)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs in this state: ready, running, done, parked or cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Shorthand for --state parked.
        #[arg(long, conflicts_with = "state")]
        parked: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One job, with its payload and last error.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Run a parked or cancelled job again now, with a fresh set of attempts.
    Retry { id: i64 },
    /// Cancel a job that is waiting or parked.
    Cancel { id: i64 },
    /// Jobs per queue and state, and every schedule's next and last firing.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, command: JobsCommand) -> Result<()> {
    let ctx = Ctx::system("keel jobs");
    let fail = |e: keel_app::AppError| anyhow!("{e}");
    match command {
        JobsCommand::List {
            state,
            parked,
            limit,
            json,
        } => {
            let state = if parked { Some("parked".into()) } else { state };
            let jobs = automation::list(app, &ctx, state.as_deref(), None, limit)
                .await
                .map_err(|e| match e {
                    keel_app::AppError::Invalid { .. } | keel_app::AppError::InvalidText { .. } => {
                        anyhow!(crate::config::UsageError(e.to_string()))
                    }
                    other => fail(other),
                })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                print_jobs(&jobs);
            }
        }
        JobsCommand::Show { id, json } => {
            let job = automation::get(app, &ctx, id).await.map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print_job(&job);
            }
        }
        JobsCommand::Retry { id } => {
            let job = automation::retry(app, &ctx, id).await.map_err(fail)?;
            println!(
                "job {} ({}) is {} again, to run now",
                job.id, job.kind, job.state
            );
        }
        JobsCommand::Cancel { id } => {
            let job = automation::cancel(app, &ctx, id).await.map_err(fail)?;
            println!("job {} ({}) is {}", job.id, job.kind, job.state);
        }
        JobsCommand::Stats { json } => {
            let counts = automation::stats(app, &ctx).await.map_err(fail)?;
            let schedules = automation::schedule_views(app, &ctx).await.map_err(fail)?;
            if json {
                let counts: Vec<_> = counts
                    .iter()
                    .map(|(q, s, n)| serde_json::json!({ "queue": q, "state": s, "jobs": n }))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "jobs": counts, "schedules": schedules })
                    )?
                );
            } else {
                println!("{:<12} {:<10} {:>10}", "queue", "state", "jobs");
                for (q, s, n) in &counts {
                    println!("{q:<12} {:<10} {n:>10}", s.as_str());
                }
                println!();
                println!(
                    "{:<16} {:<26} {:<22} {:<22} last job",
                    "schedule", "cron (zone)", "next slot", "last slot"
                );
                for s in &schedules {
                    println!(
                        "{:<16} {:<26} {:<22} {:<22} {}{}",
                        s.name,
                        format!("{} ({})", s.cron, s.timezone),
                        s.next_slot.format("%Y-%m-%d %H:%M UTC"),
                        s.last_slot.map_or("never".into(), |t| t
                            .format("%Y-%m-%d %H:%M UTC")
                            .to_string()),
                        match (s.last_job_id, &s.last_state) {
                            (Some(id), Some(state)) => format!("{id} {state}"),
                            (Some(id), None) => format!("{id} (removed)"),
                            _ => "-".into(),
                        },
                        match (s.late, s.failing) {
                            (true, _) => "  LATE: no scheduler fired the last slot",
                            (_, true) => "  FAILING: the last job was parked",
                            _ => "",
                        }
                    );
                }
                for s in schedules.iter().filter(|s| s.late || s.failing) {
                    eprintln!(
                        "warning: schedule {} needs attention ({})",
                        s.name,
                        if s.late {
                            "late: is `keel serve` with [jobs] enabled running?"
                        } else {
                            "its last job was parked: see `keel jobs list --parked`"
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

fn print_jobs(jobs: &[JobRecord]) {
    println!(
        "{:>8} {:<16} {:<10} {:>8} {:<20} last error",
        "id", "kind", "state", "attempts", "run at"
    );
    for j in jobs {
        println!(
            "{:>8} {:<16} {:<10} {:>8} {:<20} {}",
            j.id,
            j.kind,
            j.state.as_str(),
            format!("{}/{}", j.attempts, j.max_attempts),
            j.run_at.format("%Y-%m-%d %H:%M:%S"),
            j.last_error.as_deref().unwrap_or("")
        );
    }
}

fn print_job(j: &JobRecord) {
    println!("job {} ({}) on queue {}", j.id, j.kind, j.queue);
    println!("  state:     {}", j.state);
    println!("  attempts:  {} of {}", j.attempts, j.max_attempts);
    println!("  run at:    {}", j.run_at);
    if let Some(key) = &j.unique_key {
        println!("  key:       {key}");
    }
    if let (Some(owner), Some(until)) = (&j.lease_owner, j.lease_until) {
        println!("  leased to: {owner} until {until}");
    }
    if let Some(at) = j.finished_at {
        println!("  finished:  {at}");
    }
    if let Some(e) = &j.last_error {
        println!("  error:     {e}");
    }
    println!("  payload:   {}", j.payload);
}

/// The workers and the scheduler of one `keel serve`.
pub struct Automation {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Automation {
    /// Starts `[jobs] workers` workers and the scheduler of `[schedules]`.
    pub fn start(app: &App, config: &Config) -> Result<Automation> {
        let mut schedules = config
            .schedules
            .build()
            .map_err(|e| anyhow!(crate::config::UsageError(format!("schedules: {e}"))))?;
        for s in &mut schedules {
            if s.kind == automation::CLEANUP {
                s.payload = serde_json::json!({
                    "keep_days": config.jobs.keep_days,
                    "idempotency_keep_hours": config.server.idempotency_keep_hours,
                    "keep_skipped_days": config.notifications.keep_skipped_days,
                });
            }
        }
        let (stop, stopped) = watch::channel(false);
        let env: Arc<keel_jobs::Env> = Arc::new(app.clone());
        let clock = app.clock.clone();
        let now: keel_jobs::Now = Arc::new(move || clock.now());
        let mut tasks = Vec::new();
        for n in 0..config.jobs.workers {
            let worker = Worker::new(
                app.db.clone(),
                env.clone(),
                config.jobs.worker(n),
                now.clone(),
            );
            let stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = worker.run(stopped).await {
                    tracing::error!(error = %e, "a job worker stopped on an error");
                }
            }));
        }
        let names: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
        let scheduler = Scheduler::new(app.db.clone(), schedules);
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                let at = now();
                match scheduler.tick(at).await {
                    Ok(fired) => {
                        for f in fired {
                            tracing::info!(schedule = %f.schedule, slot = %f.slot, job = ?f.job, next = %f.next_slot, "schedule fired");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "the scheduler could not tick"),
                }
                // Until the earliest next slot, looking again at least every 30 s.
                let next = scheduler
                    .schedules()
                    .iter()
                    .filter_map(|s| s.next_after(at))
                    .min();
                let wait = next
                    .and_then(|n| (n - now()).to_std().ok())
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(200), Duration::from_secs(30));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopped.changed() => {}
                }
            }
        }));
        tracing::info!(workers = config.jobs.workers, schedules = %names.join(","), "automation started");
        Ok(Automation { stop, tasks })
    }

    /// Stops: workers finish the jobs they started and give back the rest; waits at most
    /// `grace`, after which unfinished jobs are picked up when their leases end.
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "job workers did not stop within {grace:?}; their jobs run again when the leases end"
            );
        }
    }
}

/// `keel jobs` needs the database and the billing settings the handlers use.
pub async fn command(config: &Config, command: JobsCommand) -> Result<()> {
    let db = crate::open(config).await.context("opening the database")?;
    let app = App::new(db)
        .with_billing(config.app_billing())
        .with_webhooks(config.app_webhooks());
    run(&app, command).await
}
