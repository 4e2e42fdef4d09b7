//! The `keel` binary end to end, run as a user would run it: a child process with a clean
//! environment, its exit code, and what it prints on stdout and stderr.
//!
//! Every scenario that touches a database is written once as `async fn …(Backend)` and run
//! on both engines by a `…_on_sqlite` and a `…_on_postgres` test; each ends with
//! [`TestDb::finish`], which checks the trial balance. Configuration and start-up errors
//! need no database and run once.
//!
//! A server started here lives in a [`Server`] guard whose `Drop` kills it, so a failed
//! assertion never leaves a `keel serve` behind.

use keel_testkit::{Backend, TestDb};
use serde_json::Value;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// How long a stopping server may take to exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// `keel ARGS` with nothing of the developer's environment but PATH and HOME, and
/// `KEEL_LOG=warn`.
fn keel(args: &[&str]) -> Command {
    let mut command = Command::new(KEEL);
    command.args(args).env_clear().env("KEEL_LOG", "warn");
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `keel --database URL ARGS`.
fn keel_on(url: &str, args: &[&str]) -> Command {
    let mut all = vec!["--database", url];
    all.extend_from_slice(args);
    keel(&all)
}

/// What a finished `keel` command left behind.
struct Ran {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Asserts the exit code, showing everything the command printed when it differs.
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited with {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains `text`.
    fn says(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "`{}`: stderr does not mention {text:?}:\n{}",
            self.what,
            self.stderr
        );
        self
    }

    /// Asserts that the command did not panic or print a backtrace.
    fn calm(&self) -> &Self {
        for text in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(
                !self.stderr.contains(text),
                "`{}` printed {text:?}:\n{}",
                self.what,
                self.stderr
            );
        }
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not JSON ({e}):\n{}",
                self.what, self.stdout
            )
        })
    }
}

async fn run(mut command: Command) -> Ran {
    let what = format!("{:?}", command.as_std());
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    Ran {
        what,
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Whether `text` is a key of the scope `tag` (`ad`, `rs`, …): `keel_<tag>_` then 64
/// lowercase hex digits.
fn is_key(text: &str, tag: &str) -> bool {
    text.strip_prefix(&format!("keel_{tag}_"))
        .is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// The admin key `keel demo` / `keel serve --demo` printed on stderr.
fn admin_key_in(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|line| line.contains("Admin API key"))
        .unwrap_or_else(|| panic!("no admin key line on stderr:\n{stderr}"));
    let key = line.split_whitespace().last().unwrap_or_default();
    assert!(is_key(key, "ad"), "not an admin key: {line:?}");
    key.to_owned()
}

/// A port nothing listens on a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// `GET /api/v1/clients?limit=20` with `key`; asserts 200 and returns the items.
async fn list_clients(base: &str, key: &str) -> Vec<Value> {
    let response = http()
        .get(format!("{base}/api/v1/clients?limit=20"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /api/v1/clients");
    let status = response.status();
    let body = response.text().await.expect("response body");
    assert_eq!(status.as_u16(), 200, "GET /api/v1/clients: {body}");
    let page: Value = serde_json::from_str(&body).expect("the client list is JSON");
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {body}"))
        .clone()
}

/// A running `keel serve`, killed on drop whatever happened.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Vec<String>,
}

impl Server {
    /// Starts `keel --database URL serve --listen 127.0.0.1:PORT EXTRA` and waits until
    /// `/healthz` answers.
    async fn start(url: &str, extra: &[&str]) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["serve", "--listen", listen.as_str()];
        args.extend_from_slice(extra);
        let mut command = keel_on(url, &args);
        command.stdout(Stdio::null());
        let mut child = command.spawn().expect("spawn keel serve");
        let pid = child.id().expect("the server's pid");
        let stderr = child.stderr.take().expect("the server's stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            pid,
            base: format!("http://{listen}"),
            lines,
            stderr: Vec::new(),
        };
        server.wait_until_healthy().await;
        server
    }

    /// Polls `/healthz`: at most 100 tries, 100 ms apart.
    async fn wait_until_healthy(&mut self) {
        let client = http();
        let url = format!("{}/healthz", self.base);
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                self.drain().await;
                panic!(
                    "keel serve exited with {status} before answering:\n{}",
                    self.stderr.join("\n")
                );
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.collect();
        panic!(
            "keel serve did not answer {url} after 100 tries:\n{}",
            self.stderr.join("\n")
        );
    }

    /// What the server has printed on stderr so far (it prints its banner before it
    /// serves, so once `/healthz` answers the banner is in the pipe).
    async fn stderr_up_to(&mut self, marker: &str) -> String {
        while !self.stderr.iter().any(|line| line.contains(marker)) {
            match tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await {
                Ok(Some(line)) => self.stderr.push(line),
                _ => panic!(
                    "keel serve never printed {marker:?}:\n{}",
                    self.stderr.join("\n")
                ),
            }
        }
        self.stderr.join("\n")
    }

    /// Takes the lines already read, without waiting.
    fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.stderr.push(line);
        }
    }

    /// Reads stderr to its end (the process has exited).
    async fn drain(&mut self) {
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_secs(5), self.lines.recv()).await
        {
            self.stderr.push(line);
        }
    }

    /// Sends SIGTERM and waits (at most [`STOP_LIMIT`]) for the exit; returns the exit
    /// status and the whole stderr.
    async fn stop(mut self) -> (ExitStatus, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.pid);
        let status = match tokio::time::timeout(STOP_LIMIT, self.child.wait()).await {
            Ok(status) => status.expect("wait for keel serve"),
            Err(_) => {
                self.collect();
                panic!(
                    "keel serve did not exit within {STOP_LIMIT:?} of SIGTERM:\n{}",
                    self.stderr.join("\n")
                );
            }
        };
        self.drain().await;
        (status, self.stderr.join("\n"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Stops `server` with SIGTERM and asserts a clean exit; returns its stderr.
async fn stop_cleanly(server: Server) -> String {
    let (status, stderr) = server.stop().await;
    assert_eq!(
        status.code(),
        Some(0),
        "keel serve exited with {status} after SIGTERM:\n{stderr}"
    );
    assert!(
        stderr.contains("Keel stopped."),
        "no \"Keel stopped.\" on stderr:\n{stderr}"
    );
    stderr
}

// 1. migrate, demo, ledger check, audit verify

async fn demo_seeds_an_empty_database_once_and_the_books_check_out(backend: Backend) {
    let t = TestDb::new(backend).await;

    run(keel_on(&t.url, &["migrate"]))
        .await
        .exits(0)
        .says("migrations applied");

    let demo = run(keel_on(&t.url, &["demo"])).await;
    demo.exits(0).calm();
    admin_key_in(&demo.stderr);

    run(keel_on(&t.url, &["demo"]))
        .await
        .exits(1)
        .calm()
        .says("database")
        .says("empty");

    let ledger = run(keel_on(&t.url, &["ledger", "check"])).await;
    ledger.exits(0);
    let trial: Vec<(&str, i64)> = ledger
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("trial balance "))
        .map(|rest| {
            let (currency, total) = rest
                .split_once(": ")
                .unwrap_or_else(|| panic!("malformed trial balance line {rest:?}"));
            let total = total
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("trial balance {currency}: {total:?}: {e}"));
            (currency, total)
        })
        .collect();
    assert!(
        !trial.is_empty(),
        "the demo has ledger activity, yet no trial balance line:\n{}",
        ledger.stdout
    );
    for (currency, total) in &trial {
        assert_eq!(*total, 0, "trial balance {currency}:\n{}", ledger.stdout);
    }

    let report = run(keel_on(&t.url, &["ledger", "check", "--json"])).await;
    let report = report.exits(0).json();
    assert_eq!(
        report["balance_mismatches"],
        serde_json::json!([]),
        "{report:#}"
    );
    assert_eq!(
        report["unbalanced_entries"],
        serde_json::json!([]),
        "{report:#}"
    );
    assert!(report["entries"].as_u64() > Some(0), "{report:#}");

    run(keel_on(&t.url, &["audit", "verify"]))
        .await
        .exits(0)
        .says("intact");
    let chain = run(keel_on(&t.url, &["audit", "verify", "--json"])).await;
    let chain = chain.exits(0).json();
    assert!(chain["rows"].as_u64() > Some(0), "{chain:#}");
    assert!(chain["first_break"].is_null(), "{chain:#}");

    t.finish().await;
}

#[tokio::test]
async fn demo_seeds_an_empty_database_once_and_the_books_check_out_on_sqlite() {
    demo_seeds_an_empty_database_once_and_the_books_check_out(Backend::Sqlite).await;
}

#[tokio::test]
async fn demo_seeds_an_empty_database_once_and_the_books_check_out_on_postgres() {
    demo_seeds_an_empty_database_once_and_the_books_check_out(Backend::Postgres).await;
}

// 2. keys create, list, revoke

async fn keys_create_prints_only_the_key_which_list_never_shows(backend: Backend) {
    let t = TestDb::new(backend).await;

    let created = run(keel_on(
        &t.url,
        &["keys", "create", "--scope", "admin", "--name", "ci"],
    ))
    .await;
    created.exits(0);
    let key = created.stdout.strip_suffix('\n').unwrap_or_default();
    assert!(
        is_key(key, "ad"),
        "stdout is not exactly one line holding an admin key: {:?}",
        created.stdout
    );
    assert_eq!(created.stdout, format!("{key}\n"));
    assert!(
        !created.stderr.contains(key),
        "the key is printed on stderr too:\n{}",
        created.stderr
    );

    let listed = run(keel_on(&t.url, &["keys", "list", "--json"])).await;
    listed.exits(0);
    assert!(
        !listed.stdout.contains(key),
        "keys list shows the key itself"
    );
    let keys = listed.json();
    let ci = keys
        .as_array()
        .expect("keys list --json gives an array")
        .iter()
        .find(|k| k["name"] == "ci")
        .unwrap_or_else(|| panic!("no key named ci in {keys:#}"))
        .clone();
    assert_eq!(ci["prefix"], key[..16], "{ci:#}");
    assert_eq!(ci["scope"], "admin", "{ci:#}");
    assert!(ci["revoked_at"].is_null(), "{ci:#}");

    let table = run(keel_on(&t.url, &["keys", "list"])).await;
    table.exits(0);
    assert!(
        !table.stdout.contains(key),
        "keys list shows the key itself"
    );
    assert!(table.stdout.contains(&key[..16]), "{}", table.stdout);

    let id = ci["id"].as_i64().expect("a numeric key id").to_string();
    run(keel_on(&t.url, &["keys", "revoke", &id]))
        .await
        .exits(0);
    let keys = run(keel_on(&t.url, &["keys", "list", "--json"]))
        .await
        .exits(0)
        .json();
    let ci = keys
        .as_array()
        .expect("keys list --json gives an array")
        .iter()
        .find(|k| k["id"].as_i64().map(|i| i.to_string()) == Some(id.clone()))
        .unwrap_or_else(|| panic!("key {id} is gone from {keys:#}"))
        .clone();
    assert!(ci["revoked_at"].is_string(), "not revoked: {ci:#}");

    let refused = run(keel_on(
        &t.url,
        &["keys", "create", "--scope", "reseller", "--name", "x"],
    ))
    .await;
    refused.exits(1).calm().says("reseller_id");
    assert_eq!(
        refused.stdout, "",
        "a refused key printed something on stdout"
    );

    t.finish().await;
}

#[tokio::test]
async fn keys_create_prints_only_the_key_which_list_never_shows_on_sqlite() {
    keys_create_prints_only_the_key_which_list_never_shows(Backend::Sqlite).await;
}

#[tokio::test]
async fn keys_create_prints_only_the_key_which_list_never_shows_on_postgres() {
    keys_create_prints_only_the_key_which_list_never_shows(Backend::Postgres).await;
}

/// `keel demo` prints where to reach the API: where `keel serve` with the same
/// configuration would listen, not a fixed address.
async fn demo_points_at_the_configured_address(backend: Backend) {
    let t = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = config_file(dir.path(), "[server]\nlisten = \"127.0.0.1:9999\"\n");

    let demo = run(keel_on(&t.url, &["--config", &file, "demo"])).await;
    t.finish().await;

    demo.exits(0)
        .says("http://127.0.0.1:9999/api/v1/docs")
        .says("http://127.0.0.1:9999/healthz");
}

#[tokio::test]
async fn demo_points_at_the_configured_address_on_sqlite() {
    demo_points_at_the_configured_address(Backend::Sqlite).await;
}

#[tokio::test]
async fn demo_points_at_the_configured_address_on_postgres() {
    demo_points_at_the_configured_address(Backend::Postgres).await;
}

// 3. serve, a key made while it runs, SIGTERM

async fn serve_accepts_a_key_made_while_it_runs_and_stops_on_sigterm(backend: Backend) {
    let t = TestDb::new(backend).await;
    let server = Server::start(&t.url, &[]).await;

    let created = run(keel_on(
        &t.url,
        &["keys", "create", "--scope", "admin", "--name", "ci"],
    ))
    .await;
    created.exits(0);
    let key = created.stdout.trim_end();
    assert!(is_key(key, "ad"), "{:?}", created.stdout);

    let clients = list_clients(&server.base, key).await;
    assert!(
        clients.is_empty(),
        "a fresh database has clients: {clients:?}"
    );

    stop_cleanly(server).await;
    t.finish().await;
}

#[tokio::test]
async fn serve_accepts_a_key_made_while_it_runs_and_stops_on_sigterm_on_sqlite() {
    serve_accepts_a_key_made_while_it_runs_and_stops_on_sigterm(Backend::Sqlite).await;
}

#[tokio::test]
async fn serve_accepts_a_key_made_while_it_runs_and_stops_on_sigterm_on_postgres() {
    serve_accepts_a_key_made_while_it_runs_and_stops_on_sigterm(Backend::Postgres).await;
}

// 4. serve --demo, twice

async fn serve_demo_seeds_an_empty_database_and_never_seeds_twice(backend: Backend) {
    let t = TestDb::new(backend).await;

    let mut server = Server::start(&t.url, &["--demo"]).await;
    let banner = server.stderr_up_to("Keel is serving").await;
    let key = admin_key_in(&banner);
    for url in [
        format!("{}/api/v1/docs", server.base),
        format!("{}/healthz", server.base),
    ] {
        assert!(banner.contains(&url), "{url} is not printed:\n{banner}");
    }
    assert_eq!(list_clients(&server.base, &key).await.len(), 8);
    stop_cleanly(server).await;

    let mut again = Server::start(&t.url, &["--demo"]).await;
    let banner = again.stderr_up_to("Keel is serving").await;
    assert!(
        banner.contains("already holds data"),
        "the second --demo does not say the database holds data:\n{banner}"
    );
    assert!(
        !banner.contains("Admin API key"),
        "the second --demo printed a new key:\n{banner}"
    );
    assert_eq!(list_clients(&again.base, &key).await.len(), 8);
    stop_cleanly(again).await;

    t.finish().await;
}

#[tokio::test]
async fn serve_demo_seeds_an_empty_database_and_never_seeds_twice_on_sqlite() {
    serve_demo_seeds_an_empty_database_and_never_seeds_twice(Backend::Sqlite).await;
}

#[tokio::test]
async fn serve_demo_seeds_an_empty_database_and_never_seeds_twice_on_postgres() {
    serve_demo_seeds_an_empty_database_and_never_seeds_twice(Backend::Postgres).await;
}

// 5. configuration errors

/// Runs `keel ARGS` in `dir` (so no stray `keel.db` lands anywhere else).
async fn run_in(dir: &Path, mut command: Command) -> Ran {
    command.current_dir(dir);
    run(command).await
}

fn config_file(dir: &Path, text: &str) -> String {
    let path = dir.join("keel.toml");
    std::fs::write(&path, text).expect("write keel.toml");
    path.display().to_string()
}

#[tokio::test]
async fn an_unknown_key_in_the_config_file_exits_2_naming_its_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = config_file(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:0\"\nlistn = \"x\"\n",
    );

    run_in(dir.path(), keel(&["--config", &file, "config", "check"]))
        .await
        .exits(2)
        .calm()
        .says("server.listn");
}

/// The shipped binary has no benchmarks (keel-bench is linked only with the `bench`
/// feature); `keel bench` says how to build a keel that has them.
#[tokio::test]
async fn bench_is_only_in_a_keel_built_with_the_bench_feature() {
    let dir = tempfile::tempdir().expect("temporary directory");
    if cfg!(feature = "bench") {
        run_in(dir.path(), keel(&["bench", "--help"]))
            .await
            .exits(0)
            .calm();
    } else {
        run_in(dir.path(), keel(&["bench", "ledger", "--entries", "10"]))
            .await
            .exits(2)
            .calm()
            .says("--features bench");
        let help = run_in(dir.path(), keel(&["--help"])).await;
        assert!(
            !help.exits(0).stdout.contains("bench"),
            "the help lists bench:\n{}",
            help.stdout
        );
    }
}

#[tokio::test]
async fn an_unknown_keel_variable_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = keel(&["config", "check"]);
    command.env("KEEL_SERVER__LISTN", "x");

    run_in(dir.path(), command)
        .await
        .exits(2)
        .calm()
        .says("KEEL_SERVER__LISTN")
        .says("server.listn");
}

#[tokio::test]
async fn a_database_url_of_an_unsupported_engine_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("temporary directory");

    run_in(
        dir.path(),
        keel(&["--database", "mysql://x", "config", "check"]),
    )
    .await
    .exits(2)
    .calm()
    .says("database.url");
}

/// A bad value given with a flag is blamed on the flag: the user set no variable.
#[tokio::test]
async fn a_bad_value_given_with_a_flag_is_blamed_on_the_flag_not_on_a_variable() {
    let dir = tempfile::tempdir().expect("temporary directory");

    let database = run_in(
        dir.path(),
        keel(&["--database", "mysql://x", "config", "check"]),
    )
    .await;
    database.exits(2).says("database.url").says("--database");
    assert!(
        !database.stderr.contains("KEEL_DATABASE__URL"),
        "blames a variable nobody set:\n{}",
        database.stderr
    );

    let listen = run_in(dir.path(), keel(&["serve", "--listen", "bogus"])).await;
    listen.exits(2).says("server.listen").says("--listen");
    assert!(
        !listen.stderr.contains("KEEL_SERVER__LISTEN"),
        "blames a variable nobody set:\n{}",
        listen.stderr
    );
}

#[tokio::test]
async fn config_check_prints_a_valid_configuration_with_the_database_password_redacted() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = config_file(dir.path(), "[server]\nlisten = \"127.0.0.1:0\"\n");

    let checked = run_in(
        dir.path(),
        keel(&[
            "--config",
            &file,
            "--database",
            "postgres://keel:hunter2@127.0.0.1:1/keel",
            "config",
            "check",
        ]),
    )
    .await;

    checked.exits(0);
    assert!(
        !checked.stdout.contains("hunter2") && !checked.stderr.contains("hunter2"),
        "the password is shown:\n{}\n{}",
        checked.stdout,
        checked.stderr
    );
    let shown: toml::Table = checked.stdout.parse().unwrap_or_else(|e| {
        panic!(
            "config check does not print TOML ({e}):\n{}",
            checked.stdout
        )
    });
    assert_eq!(shown["database"]["url"].as_str(), Some("***"), "{shown:#?}");
    assert_eq!(
        shown["server"]["listen"].as_str(),
        Some("127.0.0.1:0"),
        "the file's value is not the one shown"
    );
}

#[tokio::test]
async fn an_unknown_subcommand_exits_2() {
    let dir = tempfile::tempdir().expect("temporary directory");

    run_in(dir.path(), keel(&["frobnicate"]))
        .await
        .exits(2)
        .calm();
}

// 6. a database that cannot be opened

#[tokio::test]
async fn migrate_on_a_database_that_cannot_be_opened_exits_1_saying_so() {
    let dir = tempfile::tempdir().expect("temporary directory");

    run_in(
        dir.path(),
        keel(&["--database", "sqlite:///nonexistent-dir/x.db", "migrate"]),
    )
    .await
    .exits(1)
    .calm()
    .says("cannot open the database");
}

// 7. A server killed (SIGKILL) in the middle of a money-moving request: the client's retry
//    under the same Idempotency-Key leaves exactly one entry, wherever the kill landed.

impl Server {
    /// Kills the server with SIGKILL (no chance to drain) and waits for it to be gone.
    async fn kill_hard(mut self) {
        let sent = std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -KILL {} failed", self.pid);
        let _ = tokio::time::timeout(STOP_LIMIT, self.child.wait()).await;
    }
}

async fn post_adjustment(
    base: &str,
    key: &str,
    idempotency_key: &str,
    body: &Value,
) -> Result<(u16, String), reqwest::Error> {
    let response = http()
        .post(format!("{base}/api/v1/ledger/entries"))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The id of the ledger account with `code`, through the API.
async fn account_id(base: &str, key: &str, code: &str) -> i64 {
    let page: Value = http()
        .get(format!("{base}/api/v1/ledger/accounts?limit=200"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET /api/v1/ledger/accounts")
        .json()
        .await
        .expect("accounts JSON");
    page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|a| a["code"] == code))
        .and_then(|a| a["id"].as_i64())
        .unwrap_or_else(|| panic!("no account {code} in {page}"))
}

/// Every entry's idempotency key, through the API (following cursors).
async fn entry_keys(base: &str, key: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = http()
            .get(format!("{base}/api/v1/ledger/entries?limit=200{cursor}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET /api/v1/ledger/entries")
            .json()
            .await
            .expect("entries JSON");
        keys.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|e| e["idempotency_key"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return keys,
        }
    }
}

async fn a_server_killed_mid_request_moves_money_once_per_key(backend: Backend) {
    let t = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // A short lock timeout, so a retry may take over a key whose first attempt died.
    let config = config_file(dir.path(), "[server]\nidempotency_lock_timeout_ms = 300\n");
    run(keel_on(&t.url, &["demo"])).await.exits(0);
    let created = run(keel_on(
        &t.url,
        &["keys", "create", "--scope", "admin", "--name", "crash"],
    ))
    .await;
    let key = created.exits(0).stdout.trim().to_owned();

    let server = Server::start(&t.url, &["--config", &config]).await;
    let wallet = account_id(&server.base, &key, "wallet:client:1:USD").await;
    let adjustments = account_id(&server.base, &key, "equity:adjustments:USD").await;
    let before = entry_keys(&server.base, &key).await.len();
    let body = serde_json::json!({
        "memo": "credit that survives a crash",
        "postings": [
            {"account_id": adjustments, "side": "debit", "amount": "1.00", "currency": "USD"},
            {"account_id": wallet, "side": "credit", "amount": "1.00", "currency": "USD"},
        ],
    });
    let rounds = 8u64;
    let mut server = server;
    for round in 0..rounds {
        let idempotency_key = format!("crash-{round}");
        let (base, key2, idem, body2) = (
            server.base.clone(),
            key.clone(),
            idempotency_key.clone(),
            body.clone(),
        );
        let first = tokio::spawn(async move { post_adjustment(&base, &key2, &idem, &body2).await });
        // Vary where the kill lands: before, during or after the request's transaction.
        tokio::time::sleep(Duration::from_millis(round * 4)).await;
        server.kill_hard().await;
        let _ = first.await;

        server = Server::start(&t.url, &["--config", &config]).await;
        let mut answered = None;
        for _ in 0..100 {
            let (status, text) = post_adjustment(&server.base, &key, &idempotency_key, &body)
                .await
                .expect("retry");
            if status == 409 {
                // The dead attempt still owns the key until the lock timeout: poll.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            answered = Some((status, text));
            break;
        }
        let (status, text) = answered.expect("the retry was answered within 100 tries");
        assert!(
            status == 200 || status == 201,
            "round {round}: the retry got {status}: {text}"
        );
    }

    let keys = entry_keys(&server.base, &key).await;
    assert_eq!(
        keys.len(),
        before + rounds as usize,
        "one entry per round, no more: {keys:?}"
    );
    for round in 0..rounds {
        let suffix = format!(":crash-{round}");
        assert_eq!(
            keys.iter().filter(|k| k.ends_with(&suffix)).count(),
            1,
            "round {round}: {keys:?}"
        );
    }
    stop_cleanly(server).await;
    t.finish().await;
}

#[tokio::test]
async fn a_server_killed_mid_request_moves_money_once_per_key_on_sqlite() {
    a_server_killed_mid_request_moves_money_once_per_key(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_server_killed_mid_request_moves_money_once_per_key_on_postgres() {
    a_server_killed_mid_request_moves_money_once_per_key(Backend::Postgres).await;
}

// 7b. A server killed (SIGKILL) while creates that move no money are in flight (clients,
//     webhook endpoints, API keys, drafts): every request retried under its Idempotency-Key
//     leaves exactly one resource per key, and a key whose resource committed before the kill
//     is answered with the first answer (the withheld 409 where that answer showed a secret).
//     Issue 14, finding 12.

/// The creates the kill test sends, each with what names its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Client,
    Endpoint,
    Key,
    Draft,
}

impl Create {
    const ALL: [Create; 4] = [Create::Client, Create::Endpoint, Create::Key, Create::Draft];

    fn path(self) -> &'static str {
        match self {
            Create::Client => "/api/v1/clients",
            Create::Endpoint => "/api/v1/webhooks/endpoints",
            Create::Key => "/api/v1/api-keys",
            Create::Draft => "/api/v1/invoices",
        }
    }

    /// The body of the create under `idem`; `idem` names the resource (email, description,
    /// key name, line description), so the test finds each key's resources.
    fn body(self, idem: &str) -> Value {
        match self {
            Create::Client => serde_json::json!({
                "kind": "person", "first_name": "Rudo", "last_name": "Crash",
                "email": format!("{idem}@example.com"), "country": "ZW", "currency": "USD",
            }),
            Create::Endpoint => serde_json::json!({
                "url": "http://192.0.2.10:9/keel", "events": ["invoice.paid"], "description": idem,
            }),
            Create::Key => serde_json::json!({ "name": idem, "scope": "admin" }),
            Create::Draft => serde_json::json!({
                "client_id": 1, "lines": [{ "description": idem, "unit_price": "5.00" }],
            }),
        }
    }

    /// Whether its answer shows a secret once (a retry gets 409 `idempotent_secret_not_replayed`).
    fn shows_a_secret(self) -> bool {
        matches!(self, Create::Endpoint | Create::Key)
    }
}

/// One answer: status, `Idempotent-Replayed`, body.
#[derive(Debug, Clone)]
struct Answered {
    status: u16,
    replayed: bool,
    body: Value,
}

impl Answered {
    /// The id of the resource the answer names: the body's, or the withheld answer's
    /// `details.resource`.
    fn resource(&self) -> Option<i64> {
        self.body["id"]
            .as_i64()
            .or_else(|| self.body["error"]["details"]["resource"]["id"].as_i64())
    }
}

async fn post_create(
    base: &str,
    key: &str,
    create: Create,
    idem: &str,
) -> Result<Answered, reqwest::Error> {
    let response = http()
        .post(format!("{base}{}", create.path()))
        .bearer_auth(key)
        .header("Idempotency-Key", idem)
        .json(&create.body(idem))
        .send()
        .await?;
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let text = response.text().await?;
    Ok(Answered {
        status,
        replayed,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// Every item of a list `path` (a bare array, or pages followed by `next_cursor`).
async fn every_item(base: &str, key: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page: Value = http()
            .get(format!("{base}{path}{sep}limit=200{cursor}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET a list")
            .json()
            .await
            .expect("a JSON list");
        if let Some(all) = page.as_array() {
            return all.clone();
        }
        items.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return items,
        }
    }
}

/// The resources the test's keys made, by the name each key gave its resource: key -> ids.
async fn made_by_key(base: &str, key: &str) -> std::collections::HashMap<String, Vec<i64>> {
    let mut made: std::collections::HashMap<String, Vec<i64>> = Default::default();
    let mut add = |name: Option<&str>, id: Option<i64>| {
        if let (Some(name), Some(id)) = (name, id)
            && name.starts_with("crash-")
        {
            made.entry(name.to_owned()).or_default().push(id);
        }
    };
    for c in every_item(base, key, "/api/v1/clients").await {
        add(
            c["email"]
                .as_str()
                .and_then(|e| e.strip_suffix("@example.com")),
            c["id"].as_i64(),
        );
    }
    for e in every_item(base, key, "/api/v1/webhooks/endpoints").await {
        add(e["description"].as_str(), e["id"].as_i64());
    }
    for k in every_item(base, key, "/api/v1/api-keys").await {
        add(k["name"].as_str(), k["id"].as_i64());
    }
    for d in every_item(base, key, "/api/v1/invoices?client_id=1&status=draft").await {
        let id = d["id"].as_i64().expect("an invoice id");
        let invoice: Value = http()
            .get(format!("{base}/api/v1/invoices/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET an invoice")
            .json()
            .await
            .expect("an invoice");
        add(invoice["lines"][0]["description"].as_str(), Some(id));
    }
    made
}

/// Retries `idem` until it is answered: a key whose dead attempt still holds its lock is
/// 409 `idempotency_key_in_use` until the lock timeout, so that answer is polled.
async fn retried(base: &str, key: &str, create: Create, idem: &str) -> Answered {
    for _ in 0..100 {
        let answer = post_create(base, key, create, idem)
            .await
            .expect("the retry");
        if answer.status == 409 && answer.body["error"]["code"] == "idempotency_key_in_use" {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        return answer;
    }
    panic!("{idem}: still in use after 100 tries");
}

async fn a_server_killed_mid_create_makes_one_resource_per_key(backend: Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let t = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // A short lock timeout, so a retry may take over a key whose first attempt died.
    let config = config_file(dir.path(), "[server]\nidempotency_lock_timeout_ms = 300\n");
    run(keel_on(&t.url, &["demo"])).await.exits(0);
    let created = run(keel_on(
        &t.url,
        &["keys", "create", "--scope", "admin", "--name", "kill-test"],
    ))
    .await;
    let key = created.exits(0).stdout.trim().to_owned();

    let rounds = 3;
    let mut server = Server::start(&t.url, &["--config", &config]).await;
    let key_id = every_item(&server.base, &key, "/api/v1/api-keys")
        .await
        .iter()
        .find(|k| k["name"] == "kill-test")
        .and_then(|k| k["id"].as_i64())
        .expect("the test's key");
    // Each key sent: its kind, and the resource its answer named if one came before the kill.
    let mut sent_keys: Vec<(Create, String, Option<i64>)> = Vec::new();
    // The requests the kills cut off: (never begun, begun and unanswered, answered but the
    // answer lost), the last being the window of finding 12.
    let mut cut_off = (0, 0, 0);
    for round in 0..rounds {
        // One sender per kind, each posting creates back to back until the server dies.
        let answered = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for create in Create::ALL {
            let (base, key, answered) = (server.base.clone(), key.clone(), answered.clone());
            senders.push(tokio::spawn(async move {
                let mut sent = Vec::new();
                for n in 0.. {
                    let idem = format!("crash-{round}-{create:?}-{n}").to_lowercase();
                    match post_create(&base, &key, create, &idem).await {
                        Ok(a) => {
                            assert_eq!(a.status, 201, "{idem} before the kill: {a:?}");
                            answered.fetch_add(1, Ordering::SeqCst);
                            sent.push((create, idem, a.resource()));
                        }
                        // The server is gone: this request (and none after it) is retried.
                        Err(_) => {
                            sent.push((create, idem, None));
                            return sent;
                        }
                    }
                }
                unreachable!("the senders stop when the server dies")
            }));
        }
        // Kill once this round has made progress, while every sender has a request in
        // flight: polled, so the kill lands mid-work however fast the machine is.
        let target = 6 + 4 * round;
        for _ in 0..3000 {
            if answered.load(Ordering::SeqCst) >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            answered.load(Ordering::SeqCst) >= target,
            "round {round}: the creates made no progress"
        );
        server.kill_hard().await;
        let mut this_round = Vec::new();
        for sender in senders {
            this_round.extend(sender.await.expect("a sender"));
        }

        // Restarted, every request of the round is retried under its key.
        server = Server::start(&t.url, &["--config", &config]).await;
        let before = made_by_key(&server.base, &key).await;
        for (create, idem, first) in &this_round {
            let existed = before.get(idem).cloned().unwrap_or_default();
            assert!(existed.len() <= 1, "{idem} made {existed:?}");
            if first.is_none() {
                let stored = keel_store::idempotency::find(&t.db, &format!("key:{key_id}"), idem)
                    .await
                    .expect("read the key");
                match stored {
                    None => cut_off.0 += 1,
                    Some(s) if s.response_status.is_none() => cut_off.1 += 1,
                    Some(_) => cut_off.2 += 1,
                }
            }
            let answer = retried(&server.base, &key, *create, idem).await;
            if let [id] = existed[..] {
                // Its resource committed before the kill: the retry is the first answer.
                assert!(
                    answer.replayed,
                    "{idem} existed, yet the retry ran again: {answer:?}"
                );
                assert_eq!(answer.resource(), Some(id), "{idem}: {answer:?}");
            }
            if answer.replayed && create.shows_a_secret() {
                assert_eq!(
                    (answer.status, answer.body["error"]["code"].as_str()),
                    (409, Some("idempotent_secret_not_replayed")),
                    "{idem}: {answer:?}"
                );
                assert!(
                    answer.body["error"]["details"]["resource"]
                        .get("secret")
                        .is_none(),
                    "{idem}: the secret is never replayed: {answer:?}"
                );
            } else {
                assert_eq!(answer.status, 201, "{idem}: {answer:?}");
            }
        }
        sent_keys.extend(this_round);
    }
    eprintln!(
        "cut off by {rounds} kills: {} never begun, {} begun and unanswered, {} answered with the answer lost",
        cut_off.0, cut_off.1, cut_off.2
    );
    assert!(
        cut_off.1 + cut_off.2 > 0,
        "no kill landed while a request was being worked on: {cut_off:?}"
    );

    // Each key made one resource, the one its first answer named, and every answer under
    // it now is the replay naming it.
    let made = made_by_key(&server.base, &key).await;
    for (create, idem, first) in &sent_keys {
        let ids = made.get(idem).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "{idem} made {ids:?}");
        if let Some(first) = first {
            assert_eq!(ids[0], *first, "{idem}");
        }
        let again = post_create(&server.base, &key, *create, idem)
            .await
            .expect("again");
        assert!(again.replayed, "{idem}: {again:?}");
        assert_eq!(again.resource(), Some(ids[0]), "{idem}: {again:?}");
    }
    assert_eq!(made.len(), sent_keys.len(), "no resource without its key");
    stop_cleanly(server).await;
    run(keel_on(&t.url, &["ledger", "check"])).await.exits(0);
    t.finish().await;
}

#[tokio::test]
async fn a_server_killed_mid_create_makes_one_resource_per_key_on_sqlite() {
    a_server_killed_mid_create_makes_one_resource_per_key(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_server_killed_mid_create_makes_one_resource_per_key_on_postgres() {
    a_server_killed_mid_create_makes_one_resource_per_key(Backend::Postgres).await;
}

// 8. The billing run and the PDF from the command line, on the demo book: a dry run changes
//    nothing, the run issues the renewals once, a second run issues none, a bad date is a
//    usage error (exit 2), and `keel invoice pdf` writes a PDF.
async fn billing_run_and_invoice_pdf_from_the_command_line(backend: Backend) {
    let t = TestDb::new(backend).await;
    run(keel_on(&t.url, &["demo"])).await.exits(0).calm();
    let as_of = (chrono::Utc::now().date_naive() + chrono::Days::new(14)).to_string();

    let dry = run(keel_on(
        &t.url,
        &["billing", "run", "--as-of", &as_of, "--dry-run", "--json"],
    ))
    .await;
    let dry = dry.exits(0).calm().json();
    let would = dry["invoices"].as_u64().expect("a count");
    assert!(would > 0, "the demo has services coming due: {dry:#}");
    assert_eq!(dry["dry_run"], true);

    let real = run(keel_on(
        &t.url,
        &["billing", "run", "--as-of", &as_of, "--json"],
    ))
    .await;
    let real = real.exits(0).calm().json();
    assert_eq!(
        real["invoices"].as_u64(),
        Some(would),
        "the dry run showed exactly what the run did"
    );
    let again = run(keel_on(&t.url, &["billing", "run", "--as-of", &as_of])).await;
    again.exits(0).calm().says("issued 0 invoices");

    run(keel_on(
        &t.url,
        &["billing", "run", "--as-of", "01/02/2027"],
    ))
    .await
    .exits(2)
    .calm()
    .says("YYYY-MM-DD");

    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("invoice.pdf");
    run(keel_on(
        &t.url,
        &["invoice", "pdf", "1", "--out", out.to_str().unwrap()],
    ))
    .await
    .exits(0)
    .calm();
    let bytes = std::fs::read(&out).expect("the PDF was written");
    assert!(bytes.starts_with(b"%PDF-1."), "a PDF");
    run(keel_on(&t.url, &["invoice", "pdf", "999999"]))
        .await
        .exits(1)
        .calm()
        .says("invoice not found");
    run(keel_on(&t.url, &["ledger", "check"])).await.exits(0);
    t.finish().await;
}

#[tokio::test]
async fn billing_run_and_invoice_pdf_from_the_command_line_on_sqlite() {
    billing_run_and_invoice_pdf_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn billing_run_and_invoice_pdf_from_the_command_line_on_postgres() {
    billing_run_and_invoice_pdf_from_the_command_line(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// Automation: `keel serve` runs the schedules of its config; `keel jobs` shows and steers.

async fn serve_runs_the_schedules_of_its_config(backend: Backend) {
    let t = TestDb::new(backend).await;
    run(keel_on(&t.url, &["demo"])).await.exits(0);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("keel.toml");
    // The billing run every second (six fields, seconds first), so the test sees a firing.
    std::fs::write(
        &config,
        "[schedules.billing_run]\ncron = \"* * * * * *\"\ntimezone = \"Africa/Harare\"\n",
    )
    .expect("write keel.toml");
    let config = config.to_str().expect("a UTF-8 path");

    let server = Server::start(&t.url, &["--config", config]).await;
    let mut stats = Value::Null;
    for _ in 0..100 {
        stats = run(keel_on(
            &t.url,
            &["--config", config, "jobs", "stats", "--json"],
        ))
        .await
        .exits(0)
        .json();
        if stats["schedules"][0]["last_state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let schedule = &stats["schedules"][0];
    assert_eq!(schedule["name"], "billing_run", "{stats:#}");
    assert_eq!(schedule["timezone"], "Africa/Harare", "{stats:#}");
    assert_eq!(
        schedule["last_state"], "done",
        "no firing of the schedule ran: {stats:#}"
    );
    let job = schedule["last_job_id"].as_i64().expect("the last job");
    let shown = run(keel_on(
        &t.url,
        &["jobs", "show", &job.to_string(), "--json"],
    ))
    .await
    .exits(0)
    .json();
    assert_eq!(
        (shown["kind"].as_str(), shown["state"].as_str()),
        (Some("billing.run"), Some("done"))
    );
    assert!(
        shown["unique_key"]
            .as_str()
            .unwrap()
            .starts_with("schedule:billing_run:")
    );
    let stderr = stop_cleanly(server).await;
    assert!(!stderr.contains("ERROR"), "{stderr}");

    // Bad input at the command line: a clear refusal, exit 2 for usage, 1 for a missing job.
    run(keel_on(&t.url, &["jobs", "list", "--state", "stuck"]))
        .await
        .exits(2)
        .says("unknown job status \"stuck\"");
    run(keel_on(&t.url, &["jobs", "retry", &job.to_string()]))
        .await
        .exits(1)
        .says("only a parked or cancelled job can be retried");
    run(keel_on(&t.url, &["jobs", "show", "999999"]))
        .await
        .exits(1)
        .says("job");
    t.finish().await;
}

#[tokio::test]
async fn serve_runs_the_schedules_of_its_config_on_sqlite() {
    serve_runs_the_schedules_of_its_config(Backend::Sqlite).await;
}

#[tokio::test]
async fn serve_runs_the_schedules_of_its_config_on_postgres() {
    serve_runs_the_schedules_of_its_config(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// Webhooks: `keel webhooks` adds, lists, pauses and inspects endpoints.

async fn webhooks_are_managed_from_the_command_line(backend: Backend) {
    let t = TestDb::new(backend).await;
    let added = run(keel_on(
        &t.url,
        &[
            "webhooks",
            "add",
            "http://192.0.2.10:9/keel",
            "--events",
            "invoice.paid,client.created",
            "--json",
        ],
    ))
    .await
    .exits(0)
    .calm()
    .json();
    let id = added["id"].as_i64().expect("an id").to_string();
    assert!(
        added["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{added:#}"
    );
    let listed = run(keel_on(&t.url, &["webhooks", "list", "--json"]))
        .await
        .exits(0)
        .json();
    assert_eq!(
        listed[0]["events"],
        serde_json::json!(["invoice.paid", "client.created"])
    );
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once: {listed:#}"
    );
    run(keel_on(
        &t.url,
        &["webhooks", "disable", &id, "--reason", "ERP down"],
    ))
    .await
    .exits(0);
    let shown = run(keel_on(&t.url, &["webhooks", "show", &id, "--json"]))
        .await
        .exits(0)
        .json();
    assert_eq!(
        (
            shown["enabled"].as_bool(),
            shown["disabled_reason"].as_str()
        ),
        (Some(false), Some("ERP down"))
    );
    run(keel_on(&t.url, &["webhooks", "enable", &id]))
        .await
        .exits(0);
    let log = run(keel_on(&t.url, &["webhooks", "deliveries", &id, "--json"]))
        .await
        .exits(0)
        .json();
    assert_eq!(log, serde_json::json!([]));

    // Refusals: usage errors exit 2, a missing delivery exits 1.
    run(keel_on(
        &t.url,
        &["webhooks", "add", "ftp://example.com/x", "--events", "*"],
    ))
    .await
    .exits(2)
    .says("http or https");
    // The host's own network is refused unless [webhooks] allow_networks lists it.
    run(keel_on(
        &t.url,
        &[
            "webhooks",
            "add",
            "http://127.0.0.1:9/keel",
            "--events",
            "*",
        ],
    ))
    .await
    .exits(2)
    .says("webhooks.allow_networks");
    run(keel_on(
        &t.url,
        &[
            "webhooks",
            "add",
            "https://example.com/x",
            "--events",
            "invoice.eaten",
        ],
    ))
    .await
    .exits(2)
    .says("not an event type");
    run(keel_on(
        &t.url,
        &["webhooks", "deliveries", &id, "--state", "lost"],
    ))
    .await
    .exits(2)
    .says("unknown delivery status");
    run(keel_on(&t.url, &["webhooks", "replay", "999999"]))
        .await
        .exits(1)
        .says("not found");
    t.finish().await;
}

#[tokio::test]
async fn webhooks_are_managed_from_the_command_line_on_sqlite() {
    webhooks_are_managed_from_the_command_line(Backend::Sqlite).await;
}

#[tokio::test]
async fn webhooks_are_managed_from_the_command_line_on_postgres() {
    webhooks_are_managed_from_the_command_line(Backend::Postgres).await;
}

async fn automation_preview_shows_the_month_and_changes_nothing(backend: Backend) {
    let t = TestDb::new(backend).await;
    run(keel_on(&t.url, &["demo"])).await.exits(0);

    let text = run(keel_on(&t.url, &["automation", "preview", "--days", "30"])).await;
    text.exits(0).calm();
    for expected in ["if nobody pays", "Totals", "suspensions", "invoice "] {
        assert!(
            text.stdout.contains(expected),
            "{expected:?} in:\n{}",
            text.stdout
        );
    }
    let json = run(keel_on(
        &t.url,
        &["automation", "preview", "--days", "30", "--json"],
    ))
    .await;
    let preview = json.exits(0).json();
    let invoices: u64 = preview["totals"]["invoices"]
        .as_object()
        .expect("invoices per currency")
        .values()
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert!(invoices > 0, "the demo's renewals: {preview}");
    let listed: usize = preview["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["invoices"].as_array().unwrap().len())
        .sum();
    assert_eq!(listed as u64, invoices);
    run(keel_on(&t.url, &["automation", "preview", "--days", "0"]))
        .await
        .exits(2)
        .says("1 to 366 days");
    // Nothing was issued: the preview is the same again.
    let again = run(keel_on(
        &t.url,
        &["automation", "preview", "--days", "30", "--json"],
    ))
    .await;
    assert_eq!(again.exits(0).json(), preview);

    let dunned = run(keel_on(&t.url, &["automation", "dunning"])).await;
    dunned.exits(0);
    assert!(dunned.stdout.contains("steps queued"), "{}", dunned.stdout);
    run(keel_on(
        &t.url,
        &["automation", "dunning", "--as-of", "2027-13-01"],
    ))
    .await
    .exits(2);
    t.finish().await;
}

#[tokio::test]
async fn automation_preview_shows_the_month_and_changes_nothing_on_sqlite() {
    automation_preview_shows_the_month_and_changes_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn automation_preview_shows_the_month_and_changes_nothing_on_postgres() {
    automation_preview_shows_the_month_and_changes_nothing(Backend::Postgres).await;
}
