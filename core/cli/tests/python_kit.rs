//! The kit a Python plugin author has, end to end: keel-sdk for Python's own tests and the
//! example's unit tests run natively against the generated bindings (its `FakeHost`); the
//! example and the walkthrough's gateway (docs/plugins/gateway.md), built with
//! componentize-py on the SDK, pass their `tests.toml` under `keel plugin test` in the
//! real host (the gateway the same file as its Rust twin); and a Python exception that escapes an operation
//! shows the whole traceback from `keel plugin call`, not only "the plugin crashed".
//!
//! Needs python3 and componentize-py 0.25.1 (`keel_testkit::python`): without them the
//! tests fail under CI and warn loudly elsewhere.

mod support;

use std::path::Path;
use std::process::Command;

use keel_testkit::python::{Componentize, componentize_py_or_skip, repo_root};
use support::{keel, keel_as_a_user};

/// `python3 -m unittest` in `dir` with `path` on PYTHONPATH; asserts every test passed and
/// returns unittest's report.
fn unittest(dir: &Path, path: &[&Path], args: &[&str]) -> String {
    let pythonpath = std::env::join_paths(path).unwrap();
    let out = Command::new("python3")
        .args(["-m", "unittest"])
        .args(args)
        .current_dir(dir)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "python3 -m unittest failed:\n{report}"
    );
    assert!(report.contains("\nOK"), "{report}");
    report
}

/// The number after "Ran " in unittest's report.
fn ran(report: &str) -> usize {
    report
        .split("Ran ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in:\n{report}"))
}

#[test]
fn the_sdk_and_the_example_pass_their_native_unit_tests() {
    let Some(tool) = componentize_py_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let sdk = root.join("sdk/python/src");

    let gateway = dir.path().join("gateway-bindings");
    tool.bindings("gateway-plugin", &gateway);
    let report = unittest(
        &root,
        &[&gateway, &sdk],
        &["discover", "-s", "sdk/python/tests"],
    );
    assert!(ran(&report) >= 20, "{report}");

    let notifier = dir.path().join("notifier-bindings");
    tool.bindings("notifier-plugin", &notifier);
    let example = root.join("examples/python-notifier");
    let report = unittest(&example, &[&notifier, &sdk, &example], &["test_app"]);
    assert!(ran(&report) >= 4, "{report}");

    // The walkthrough's gateway (docs/plugins/gateway.md).
    let voucher = root.join("examples/voucher-gateway/python");
    let report = unittest(&voucher, &[&gateway, &sdk, &voucher], &["test_app"]);
    assert!(ran(&report) >= 6, "{report}");
}

/// A copy of `app` in `dir/src`, built for `world` into `dir/<name>/plugin.wasm` beside
/// `manifest`: a plugin's folder as `keel plugin test` and `--dir` read it.
fn folder(tool: &Componentize, dir: &Path, name: &str, world: &str, app: &str, manifest: &str) {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.py"), app).unwrap();
    let plugin = dir.join(name);
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(plugin.join("plugin.toml"), manifest).unwrap();
    tool.build(world, &src, &plugin.join("plugin.wasm"));
}

/// Builds `app_dir/app.py` for `world` and runs `keel plugin test` on the folder `cases`
/// (its plugin.toml and tests.toml) with it; every case must pass.
async fn passes_its_cases(tool: &Componentize, app_dir: &str, cases: &str, world: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let app = std::fs::read_to_string(root.join(app_dir).join("app.py")).unwrap();
    let manifest = std::fs::read_to_string(root.join(cases).join("plugin.toml")).unwrap();
    folder(tool, dir.path(), "plugin", world, &app, &manifest);
    let wasm = dir.path().join("plugin/plugin.wasm");
    let ran = keel(
        dir.path(),
        &[
            "plugin",
            "test",
            &root.join(cases).display().to_string(),
            "--wasm",
            &wasm.display().to_string(),
        ],
    )
    .await;
    ran.exits(0).prints(" passed, 0 failed");
    assert!(!ran.stdout.contains("FAIL"), "{}", ran.stdout);
}

#[tokio::test]
async fn the_python_example_passes_keel_plugin_test() {
    let Some(tool) = componentize_py_or_skip() else {
        return;
    };
    let example = "examples/python-notifier";
    passes_its_cases(&tool, example, example, "notifier-plugin").await;
}

/// The walkthrough's gateway in Python passes the same tests.toml as its Rust twin.
#[tokio::test]
async fn the_python_voucher_gateway_passes_the_walkthrough_s_cases() {
    let Some(tool) = componentize_py_or_skip() else {
        return;
    };
    passes_its_cases(
        &tool,
        "examples/voucher-gateway/python",
        "examples/voucher-gateway",
        "gateway-plugin",
    )
    .await;
}

#[tokio::test]
async fn a_python_exception_shows_its_traceback() {
    let Some(tool) = componentize_py_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A bug three frames deep, as a plugin author would write one.
    let app = r#"
import json

from keel_sdk import config
from wit_world import exports
from wit_world.imports import types


def parse_amount(text):
    return int(text)


def amount_of(body):
    return parse_amount(json.loads(body)["amount"])


class Notifier(exports.Notifier):
    def describe(self):
        return types.PluginInfo(name="Buggy", version="0.1.0", description="d", features=types.Features(0))

    def send(self, msg):
        config.get("endpoint")
        amount_of(msg.body)
        raise AssertionError("unreachable")

    def verify_inbound(self, req):
        raise AssertionError("unreachable")
"#;
    let manifest = "id = \"buggy\"\nname = \"Buggy\"\nversion = \"0.1.0\"\ndescription = \"d\"\nkinds = [\"notifier\"]\nwit = \"0.2.0\"\n";
    folder(&tool, dir.path(), "buggy", "notifier-plugin", app, manifest);
    let plugin = dir.path().join("buggy").display().to_string();
    let ran = keel_as_a_user(
        dir.path(),
        &[
            "plugin",
            "call",
            "--dir",
            &plugin,
            "buggy",
            "send",
            "--input",
            r#"{"reference": "ntf-1", "to": "+263771234567", "body": "{\"amount\": \"12.50\"}"}"#,
        ],
    )
    .await;
    ran.exits(3);
    for line in [
        "Traceback (most recent call last)",
        "in send",
        "in amount_of",
        "in parse_amount",
        "ValueError: invalid literal for int() with base 10: '12.50'",
    ] {
        ran.says(line);
    }
    // Said once as the plugin's stderr and once in the error, not again by the host's log.
    assert_eq!(
        ran.stderr
            .matches("Traceback (most recent call last)")
            .count(),
        2,
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("WARN"), "{}", ran.stderr);

    // A module first imported during a call is not in the component (sdk/python/README.md,
    // the pitfalls): the crash names it.
    let late = app.replace(
        "        amount_of(msg.body)",
        "        import hmac\n        amount_of(msg.body)",
    );
    assert_ne!(late, app);
    folder(
        &tool,
        dir.path(),
        "late",
        "notifier-plugin",
        &late,
        &manifest.replace("buggy", "late"),
    );
    let plugin = dir.path().join("late").display().to_string();
    let input = r#"{"reference": "ntf-1", "to": "+263771234567", "body": "{}"}"#;
    keel(
        dir.path(),
        &[
            "plugin", "call", "--dir", &plugin, "late", "send", "--input", input,
        ],
    )
    .await
    .exits(3)
    .says("ModuleNotFoundError: No module named 'hmac'");
}
