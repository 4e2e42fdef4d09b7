//! A `keel serve` the crash tests start, watch and kill with SIGKILL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::KEEL;

/// How long anything a crash test waits for may take before the test fails (a generous bound
/// on a loaded machine; nothing asserts how long it took).
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A running `keel serve` and the lines of its stderr.
pub struct Serve {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far, for a failure's message.
    seen: Vec<String>,
}

impl Serve {
    /// Starts `keel serve` with `dir/keel.toml` on database `url`, a plugin's provider origin
    /// pointed at a fake (`fake_origin`: `ORIGIN=TARGET`) and `crash` armed
    /// (`point@prefix`, `keel_app::crash_points`), and waits until it serves.
    pub async fn start(
        dir: &std::path::Path,
        url: &str,
        fake_origin: &str,
        crash: Option<String>,
    ) -> Serve {
        let mut command = Command::new(KEEL);
        command
            .arg("--config")
            .arg(dir.join("keel.toml"))
            .args(["--database", url, "serve", "--fake-origin", fake_origin])
            .env_clear()
            .env("KEEL_LOG", "warn");
        for name in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        if let Some(crash) = &crash {
            command.env(keel_app::crash_points::VARIABLE, crash);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {KEEL}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve {
            child,
            lines,
            seen: Vec::new(),
        };
        serve
            .wait_for_line(|l| l.starts_with("Keel is serving at"), "start-up")
            .await;
        serve
    }

    /// Waits for a line of its stderr that `found` accepts.
    pub async fn wait_for_line(&mut self, found: impl Fn(&str) -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let hit = found(&line);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Ok(None) => panic!(
                    "keel serve ended before {what}: {:?}\n--- stderr\n{}",
                    self.child.try_wait(),
                    self.seen.join("\n")
                ),
                Err(_) => panic!(
                    "keel serve did not reach {what}\n--- stderr\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// SIGKILL, and reaps it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL keel serve");
        let status = self.child.wait().await.expect("reap keel serve");
        assert!(!status.success(), "killed, not exited: {status:?}");
    }
}

/// Polls `done` until it holds, for at most [`PATIENCE`].
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !done().await {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
