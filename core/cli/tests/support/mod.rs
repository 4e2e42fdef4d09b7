//! Running the real `keel` binary from the CLI's integration tests.

#![allow(dead_code)] // each test binary uses its own part

pub mod serve;

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;

pub const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// What a `keel` run left: its exit code and output.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the exit code, showing the output when it differs.
    pub fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains `text`.
    pub fn says(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "no {text:?} in stderr:\n{}",
            self.stderr
        );
        self
    }

    /// Asserts that stdout contains `text`.
    pub fn prints(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "no {text:?} in stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// `keel plugin call ARGS` in `dir`.
pub async fn call(dir: &Path, args: &[&str]) -> Ran {
    let mut all = vec!["plugin", "call"];
    all.extend_from_slice(args);
    keel(dir, &all).await
}

/// `keel ARGS` in `dir`, with nothing of the developer's environment but PATH and HOME,
/// logging errors only.
pub async fn keel(dir: &Path, args: &[&str]) -> Ran {
    run(dir, args, Some("error")).await
}

/// `keel ARGS` in `dir` as a user runs it: no `KEEL_LOG`, so each command's own default.
pub async fn keel_as_a_user(dir: &Path, args: &[&str]) -> Ran {
    run(dir, args, None).await
}

async fn run(dir: &Path, args: &[&str], log: Option<&str>) -> Ran {
    let mut command = Command::new(KEEL);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null());
    if let Some(filter) = log {
        command.env("KEEL_LOG", filter);
    }
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let out = command.output().await.expect("keel runs");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
