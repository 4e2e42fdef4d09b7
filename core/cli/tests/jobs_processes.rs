//! The job queue across real processes, on SQLite and on PostgreSQL:
//! - two `keel serve` processes drain 10,000 jobs from one database, and each job runs
//!   exactly once (one claim each: `attempts = 1`, state `done`);
//! - a `keel serve` killed with SIGKILL while it holds leased jobs: another process runs
//!   them once their lease ends, and nothing is lost.
//!
//! Jobs are `keel.noop` (the queue's own probe), so the measure is the queue itself.

use chrono::Utc;
use keel_store::jobs::{self as store, JobState, NewJob};
use keel_testkit::{Backend, TestDb};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// Two processes of one kind at a time: their timing is what the kill test aims at.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `keel --config CONFIG --database URL serve --listen 127.0.0.1:PORT`, clean environment.
fn serve(url: &str, config: &std::path::Path) -> Child {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(KEEL);
    command
        .args(["--config"])
        .arg(config)
        .args(["--database", url, "serve", "--listen", &listen])
        .env_clear()
        .env("KEEL_LOG", "warn");
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn keel serve")
}

/// A config with fast leases and no schedules (only the test's jobs run).
fn config(dir: &tempfile::TempDir, lease_seconds: u32, batch: u32) -> std::path::PathBuf {
    let path = dir.path().join("keel.toml");
    std::fs::write(
        &path,
        format!(
            "[jobs]\nworkers = 2\nconcurrency = 8\nbatch = {batch}\nlease_seconds = {lease_seconds}\npoll_seconds = 1\n\n\
             [schedules.billing_run]\nenabled = false\n"
        ),
    )
    .expect("write keel.toml");
    path
}

async fn enqueue_noops(t: &TestDb, n: usize) {
    let now = keel_store::db::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut tx = t.db.begin().await.expect("begin");
        for i in chunk {
            let job = NewJob::new(keel_jobs::NOOP, serde_json::json!({ "i": i }), now)
                .unique(format!("probe:{i}"));
            store::enqueue(&mut tx, &job, now)
                .await
                .expect("enqueue")
                .expect("a new job");
        }
        tx.commit().await.expect("commit");
    }
}

async fn count(t: &TestDb, state: JobState) -> u64 {
    store::stats(&t.db)
        .await
        .expect("stats")
        .iter()
        .filter(|(_, s, _)| *s == state)
        .map(|(_, _, n)| *n)
        .sum()
}

/// Every job: `(attempts, state)`.
async fn outcomes(t: &TestDb) -> Vec<(i32, JobState)> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = store::list(&t.db, None, before, 500).await.expect("list");
        let Some(last) = page.last() else {
            return out;
        };
        before = Some(last.id);
        out.extend(page.iter().map(|j| (j.attempts, j.state)));
    }
}

/// The jobs leased when the dust of a kill has settled. On PostgreSQL a statement the dead
/// process had already sent (completing a batch, claiming the next) still runs in its server
/// backend after the process is gone, so the first read after the kill can list jobs that
/// are done a moment later: read until two reads 300 ms apart agree.
async fn settled_running(t: &TestDb) -> Vec<keel_store::jobs::JobRecord> {
    let read = || async {
        store::list(&t.db, Some(JobState::Running), None, 10_000)
            .await
            .expect("running jobs")
    };
    let mut last = read().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read().await;
        let same = now.len() == last.len()
            && now
                .iter()
                .zip(&last)
                .all(|(a, b)| a.id == b.id && a.lease_until == b.lease_until);
        if same {
            return now;
        }
        last = now;
    }
    panic!("the leased jobs kept changing for 6 s after the kill");
}

async fn wait_for_done(t: &TestDb, n: u64, limit: Duration) {
    let start = Instant::now();
    while count(t, JobState::Done).await < n {
        assert!(
            start.elapsed() < limit,
            "only {} of {n} jobs done after {limit:?}",
            count(t, JobState::Done).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn two_processes_run_each_job_once(backend: Backend) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestDb::new(backend).await;
    enqueue_noops(&t, 10_000).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config(&dir, 60, 100);
    let started = Instant::now();
    let mut a = serve(&t.url, &config);
    let mut b = serve(&t.url, &config);
    wait_for_done(&t, 10_000, Duration::from_secs(120)).await;
    let took = started.elapsed();
    for p in [&mut a, &mut b] {
        p.kill().await.expect("stop keel serve");
    }
    let all = outcomes(&t).await;
    assert_eq!(all.len(), 10_000);
    let twice = all.iter().filter(|(attempts, _)| *attempts != 1).count();
    assert_eq!(twice, 0, "{twice} jobs were claimed more than once");
    assert!(all.iter().all(|(_, s)| *s == JobState::Done));
    eprintln!(
        "{}: two processes drained 10,000 jobs in {:.2} s",
        t.db.engine().name(),
        took.as_secs_f64()
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_run_each_of_10000_jobs_once_on_sqlite() {
    two_processes_run_each_job_once(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_run_each_of_10000_jobs_once_on_postgres() {
    two_processes_run_each_job_once(Backend::Postgres).await;
}

async fn a_killed_workers_jobs_run_after_its_lease(backend: Backend) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let t = TestDb::new(backend).await;
    enqueue_noops(&t, 5_000).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Small batches: many claims, so the kill lands while some are leased. Leases of 10 s:
    // long enough that the surviving process, starved on a loaded machine, keeps its own
    // (it extends them every third of that), short enough to wait out.
    let config = config(&dir, 10, 20);

    // A process works until it holds leases, then dies without a word. A kill can land
    // between two batches (on SQLite, mostly), when nothing is leased: then another try.
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut first = serve(&t.url, &config);
        let start = Instant::now();
        loop {
            if count(&t, JobState::Running).await > 0 {
                break;
            }
            if let Some(status) = first.try_wait().expect("poll the first process") {
                panic!("keel serve exited with {status} before claiming a job");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "keel serve never claimed a job"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        first.start_kill().expect("SIGKILL");
        first.wait().await.expect("reap");
        held = settled_running(&t).await;
        if !held.is_empty() {
            break;
        }
    }
    assert!(
        !held.is_empty(),
        "20 kills all landed while no job was leased"
    );
    let held_until = held
        .iter()
        .filter_map(|j| j.lease_until)
        .max()
        .expect("a lease");

    // A second process finishes the queue; the dead one's jobs wait for their lease.
    let mut second = serve(&t.url, &config);
    wait_for_done(&t, 5_000, Duration::from_secs(180)).await;
    second.kill().await.expect("stop keel serve");
    assert!(
        Utc::now() >= held_until,
        "the dead worker's jobs ran before its lease ended"
    );
    for j in &held {
        let after = store::get(&t.db, j.id)
            .await
            .expect("read")
            .expect("the job");
        assert_eq!(after.state, JobState::Done, "job {} was lost", j.id);
        assert_eq!(after.attempts, 2, "job {}: one lost claim, one run", j.id);
    }
    let all = outcomes(&t).await;
    assert!(all.iter().all(|(_, s)| *s == JobState::Done));
    let extra: i32 = all.iter().map(|(a, _)| a - 1).sum();
    assert_eq!(
        extra as usize,
        held.len(),
        "only the jobs leased by the dead process were claimed twice"
    );
    eprintln!(
        "{}: SIGKILL left {} leased jobs; all ran after the lease ended",
        t.db.engine().name(),
        held.len()
    );
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holding_leases_loses_no_job_on_sqlite() {
    a_killed_workers_jobs_run_after_its_lease(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_holding_leases_loses_no_job_on_postgres() {
    a_killed_workers_jobs_run_after_its_lease(Backend::Postgres).await;
}
