//! A plugin written in JavaScript (examples/js-notifier, built with componentize-js) passes
//! its own `tests.toml` through `keel plugin test` in the real host: describe, the JSON
//! POSTed to the webhook, the receipt, and each provider answer mapped to its plugin error.
//! And a JavaScript exception that is not a plugin error (a bug injected into `app.js`)
//! crashes the call: `keel plugin call` exits 3 showing the exception's message and the
//! plugin's own stack, which the example's `guarded` wrapper prints to stderr.
//!
//! Needs node and npm (Node.js 20 or newer). `npm ci` runs in the example when its
//! `node_modules` is missing or older than `package-lock.json` (scripts/test runs it first).
//! Without node and npm, or when `npm ci` fails, the test fails under CI (`CI=true` or
//! `CI=1`) and warns loudly and passes elsewhere. The components are built into a temporary
//! folder with the command of the example's `npm run build`; nothing but `node_modules` is
//! written into the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Instant, SystemTime};

use keel_testkit::plugins::{FakeProvider, Reply};

const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// The example's directory.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/js-notifier")
}

fn is_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Fails under CI; elsewhere warns loudly, and the caller returns.
fn cannot_test(why: &str) {
    let msg = format!(
        "{why}: the JavaScript plugin was NOT tested. scripts/test installs its tools with \
         `npm ci --no-audit --no-fund` in examples/js-notifier (Node.js 20 or newer with npm)."
    );
    if is_ci() {
        panic!("{msg}");
    }
    eprintln!("\n{bar}\n!!! WARNING: {msg}\n{bar}\n", bar = "!".repeat(78));
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `PROGRAM --version`'s answer, when it runs.
fn version(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The example's node_modules, installed by `npm ci` when missing or older than the lock
/// (npm writes `node_modules/.package-lock.json` last). False when that failed.
fn npm_ci_if_stale(dir: &Path) -> bool {
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    let locked = modified(&dir.join("package-lock.json")).expect("package-lock.json");
    let cli = dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    if cli.is_file() && installed.is_some_and(|i| i >= locked) {
        return true;
    }
    eprintln!("npm ci in {} (componentize-js, jco)", dir.display());
    let started = Instant::now();
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run npm");
    if !out.status.success() {
        eprintln!("npm ci failed: {}", text(&out));
        return false;
    }
    eprintln!("npm ci took {:?}", started.elapsed());
    true
}

/// `npm run build` of the example, as arguments after the program (`componentize-js`),
/// without the output (`-o js-notifier.wasm`, which comes last).
fn build_args() -> Vec<String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example_dir().join("package.json")).unwrap())
            .expect("package.json is JSON");
    let script = manifest["scripts"]["build"]
        .as_str()
        .expect("package.json has scripts.build");
    let words: Vec<String> = script.split_whitespace().map(str::to_owned).collect();
    assert!(
        words.first().map(String::as_str) == Some("componentize-js")
            && words.ends_with(&["-o".to_owned(), "js-notifier.wasm".to_owned()])
            && words.contains(&"app.js".to_owned()),
        "scripts.build is `componentize-js app.js … -o js-notifier.wasm`: {script}"
    );
    words[1..words.len() - 2].to_vec()
}

/// Builds `source` (the example's `app.js` or another module) into `out` with the
/// example's build command, run from the example's folder (so `--wit ../../wit` holds).
fn build(source: &Path, out: &Path) -> Vec<u8> {
    let dir = example_dir();
    let args: Vec<String> = build_args()
        .into_iter()
        .map(|a| {
            if a == "app.js" {
                source.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let started = Instant::now();
    let output = Command::new("node")
        .arg(dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js"))
        .args(&args)
        .arg("-o")
        .arg(out)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "componentize-js failed: {}",
        text(&output)
    );
    let wasm = std::fs::read(out).unwrap_or_else(|e| panic!("reading {}: {e}", out.display()));
    eprintln!(
        "componentize-js built {} ({} bytes) in {:?}",
        source.display(),
        wasm.len(),
        started.elapsed()
    );
    wasm
}

/// `keel ARGS` with nothing of the developer's environment but PATH, and HOME set to `home`
/// (compiled plugins are cached there, so each case does not compile 12 MB again).
async fn keel(home: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = tokio::process::Command::new(KEEL)
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KEEL_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("keel runs");
    eprintln!("keel {} took {:?}", args[..2].join(" "), started.elapsed());
    out
}

/// A bug appended to `app.js`: reading the webhook's answer throws a plain `Error` (not a
/// `{ tag, val }` plugin error). A module-level function binding can be reassigned.
const BUG: &str = r#"
// Appended by core/cli/tests/js_plugin.rs: a bug in reading the webhook's answer.
providerId = function parseReceipt(text) {
  throw new Error(`cannot read the receipt ${JSON.stringify(text)}`);
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_notifier_passes_its_tests_toml_and_a_js_crash_shows_its_stack() {
    let (Some(node), Some(npm)) = (version("node"), version("npm")) else {
        cannot_test("node and npm are not both on PATH");
        return;
    };
    eprintln!("node {node}, npm {npm}");
    let dir = example_dir();
    if !npm_ci_if_stale(&dir) {
        cannot_test("`npm ci` failed in examples/js-notifier (offline?)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();

    // The example, built as `npm run build` does, into the temporary folder.
    let wasm = tmp.path().join("js-notifier.wasm");
    build(&dir.join("app.js"), &wasm);
    let cases = std::fs::read_to_string(dir.join("tests.toml"))
        .unwrap()
        .parse::<toml::Table>()
        .expect("tests.toml is TOML")["case"]
        .as_array()
        .expect("[[case]]")
        .len();
    assert!(cases >= 9, "{cases} cases");
    let folder = dir.display().to_string();
    let wasm_arg = wasm.display().to_string();
    let ran = keel(&home, &["plugin", "test", &folder, "--wasm", &wasm_arg]).await;
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    assert!(
        stdout.contains(&format!("{cases} passed, 0 failed")),
        "{}",
        text(&ran)
    );
    assert!(!stdout.contains("FAIL"), "{}", text(&ran));
    assert!(
        stdout.contains("ok    a message is POSTed as JSON and the webhook's id is the receipt"),
        "{stdout}"
    );

    // The example with a bug: a plain Error thrown while reading the webhook's answer is
    // not an answer but a crash, reported with the plugin's own stack.
    let source = tmp.path().join("crashing.js");
    let app = std::fs::read_to_string(dir.join("app.js")).unwrap();
    std::fs::write(&source, format!("{app}{BUG}")).unwrap();
    let plugin = tmp.path().join("crashing");
    std::fs::create_dir(&plugin).unwrap();
    build(&source, &plugin.join("plugin.wasm"));
    std::fs::copy(dir.join("plugin.toml"), plugin.join("plugin.toml")).unwrap();
    let webhook = FakeProvider::start(|_| Reply::text(200, "wamid-9")).await;
    let fake = format!("http://hooks.test=http://127.0.0.1:{}", webhook.port());
    let plugin_arg = plugin.display().to_string();
    let input = r#"{"reference": "n-1", "to": "+263771234567", "body": "hello"}"#;
    let ran = keel(
        &home,
        &[
            "plugin",
            "call",
            "js-notifier",
            "send",
            "--dir",
            &plugin_arg,
            "--set",
            "endpoint = \"http://hooks.test/hook\"",
            "--fake",
            &fake,
            "--input",
            input,
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&ran.stderr);
    eprintln!("keel plugin call on the crashing plugin:\n{stderr}");
    assert_eq!(ran.status.code(), Some(3), "{}", text(&ran));
    assert!(ran.stdout.is_empty(), "{}", text(&ran));
    assert_eq!(webhook.received().len(), 1, "the POST reached the webhook");
    // The failure, then the exception and the plugin's stack (from `guarded`): the
    // function that threw and the exported function that called it, with file and line.
    let crashed = stderr
        .find("error: the plugin crashed: ")
        .unwrap_or_else(|| panic!("no crash in stderr:\n{stderr}"));
    let report = &stderr[crashed..];
    for expected in [
        r#"Error: cannot read the receipt "wamid-9""#,
        "\nparseReceipt@crashing.js:",
        "\nsend@crashing.js:",
    ] {
        assert!(
            report.contains(expected),
            "no {expected:?} in the crash report:\n{report}"
        );
    }
    webhook.stop().await;
}
