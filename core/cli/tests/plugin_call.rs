//! `keel plugin call`: one operation of a plugin in the real host, from the command line.
//! The bank-transfer gateway answers from its settings; the Paynow gateway starts a payment
//! at the fake Paynow through `--fake` (its grant still names Paynow's origin); a plugin being
//! written is called from its folder (`--dir`); each way a question can be wrong exits 2
//! naming the problem, a plugin error exits 1 and a crash 3 with the plugin's last words.
//! `keel plugin test` runs Keel's own plugins' `tests.toml` (Paynow's with recorded
//! replies), and a failing case names the place and exits 1.
//! Around it: compiled plugins are cached in the user's cache directory, not the working
//! directory; relative paths in keel.toml are the file's; an unreadable plugin folder is a
//! configuration problem (exit 2).

mod support;

use std::path::Path;

use keel_plugins::{
    KEEL_EXAMPLE_VOUCHER_GATEWAY, KEEL_FIXTURE_HOSTILE, KEEL_PLUGIN_BANK_TRANSFER,
    KEEL_PLUGIN_PAYNOW, KEEL_PLUGIN_WHATSAPP,
};
use keel_testkit::paynow::FakePaynow;
use serde_json::{Value, json};
use support::{KEEL, call, keel};

/// A plugin's folder under `parent`, as an author's build leaves it: `plugin.toml`, and
/// `plugin.wasm` when `with_wasm`.
fn plugin_folder(
    parent: &Path,
    name: &str,
    artifact: &keel_plugins::Artifact,
    with_wasm: bool,
) -> std::path::PathBuf {
    let folder = parent.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("plugin.toml"), artifact.manifest().unwrap()).unwrap();
    if with_wasm {
        std::fs::write(folder.join("plugin.wasm"), artifact.wasm().unwrap()).unwrap();
    }
    folder
}

fn payment_request(currency: &str) -> Value {
    json!({
        "reference": "INV-7-AB12CD",
        "invoice-id": "INV-7",
        "amount": { "minor": 2500, "currency": currency },
        "description": "Invoice INV-7",
        "payer": { "first-name": "Rudo", "last-name": "Chikwanha", "email": "rudo@example.co.zw" },
        "return-url": "http://127.0.0.1:8080/pay/return/INV-7-AB12CD",
        "callback-url": "http://127.0.0.1:8080/hooks/gateway/paynow"
    })
}

#[tokio::test]
async fn a_gateway_answers_from_its_settings_and_bad_questions_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = payment_request("USD").to_string();
    let answer = call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--set",
            "instructions = \"Bank: First Bank\"",
            "--input",
            &input,
        ],
    )
    .await;
    answer.exits(0);
    let started = answer.json();
    assert_eq!(started["status"], "pending");
    assert!(
        started["action"]["instructions"]
            .as_str()
            .unwrap()
            .starts_with("Bank: First Bank"),
        "{started}"
    );
    // The input from a file.
    std::fs::write(dir.path().join("req.json"), &input).unwrap();
    call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--set",
            "instructions=\"x\"",
            "--input",
            "@req.json",
        ],
    )
    .await
    .exits(0);

    // Wrong questions: exit 2, naming what is wrong.
    call(dir.path(), &["stripe", "initiate"])
        .await
        .exits(2)
        .says("no plugin `stripe` is installed");
    call(
        dir.path(),
        &["bank-transfer", "capture", "--set", "instructions=\"x\""],
    )
    .await
    .exits(2)
    .says("no operation `capture`");
    call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--set",
            "instructions=\"x\"",
            "--input",
            "{\"reference\": 1}",
        ],
    )
    .await
    .exits(2)
    .says("`req.reference` must be a string");
    call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--set",
            "instructions=\"x\"",
            "--input",
            "{nope",
        ],
    )
    .await
    .exits(2)
    .says("--input is not JSON");
    call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--set",
            "colour=\"red\"",
            "--input",
            &input,
        ],
    )
    .await
    .exits(2)
    .says("colour");
    call(
        dir.path(),
        &[
            "bank-transfer",
            "initiate",
            "--kind",
            "registrar",
            "--input",
            &input,
        ],
    )
    .await
    .exits(2)
    .says("has no kind `registrar`");
    // The plugin's own refusal: exit 1 with its case and message.
    let refund = json!({
        "reference": "R-1",
        "payment": { "reference": "INV-7-AB12CD", "provider-reference": "P-1", "state": null },
        "amount": { "minor": 100, "currency": "USD" },
        "reason": "duplicate"
    });
    call(
        dir.path(),
        &[
            "bank-transfer",
            "refund",
            "--set",
            "instructions=\"x\"",
            "--input",
            &refund.to_string(),
        ],
    )
    .await
    .exits(1)
    .says("the plugin answered an error: unsupported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paynow_starts_a_payment_at_the_fake_through_a_fake_origin() {
    const KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
    let fake = FakePaynow::builder(&[(1201, KEY)])
        .public_base("https://www.paynow.co.zw")
        .browser_base_here()
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let origin = format!("https://www.paynow.co.zw={}", fake.origin());
    let key = format!("usd_integration_key = \"{KEY}\"");
    let input = payment_request("USD").to_string();
    let answer = call(
        dir.path(),
        &[
            "paynow",
            "initiate",
            "--fake",
            &origin,
            "--set",
            "usd_integration_id = 1201",
            "--set",
            &key,
            "--input",
            &input,
        ],
    )
    .await;
    answer.exits(0);
    let started = answer.json();
    let url = started["action"]["redirect"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"));
    assert!(url.starts_with(&fake.origin()), "{url}");
    assert_eq!(fake.transactions().len(), 1);
    // A fake origin is on loopback or refused: --fake cannot point a plugin anywhere else.
    let unreachable = call(
        dir.path(),
        &[
            "paynow",
            "initiate",
            "--fake",
            "https://www.paynow.co.zw=http://10.0.0.1:80",
            "--input",
            &input,
        ],
    )
    .await;
    unreachable.exits(2).says("loopback");
    fake.stop().await;
}

#[tokio::test]
async fn a_plugin_being_written_is_called_from_its_folder_and_a_crash_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_folder(dir.path(), "hostile", &KEEL_FIXTURE_HOSTILE, true);
    let dir_arg = plugin.display().to_string();
    let message =
        |body: &str| json!({ "reference": "n-1", "to": "+263771234567", "body": body }).to_string();
    let target = "target = \"http://provider.test/\"";

    let ok = call(
        dir.path(),
        &[
            "hostile",
            "send",
            "--dir",
            &dir_arg,
            "--set",
            target,
            "--input",
            &message("ok"),
        ],
    )
    .await;
    ok.exits(0);
    assert_eq!(
        ok.json(),
        json!({ "provider-id": "fine", "status": "sent" })
    );

    call(
        dir.path(),
        &[
            "hostile",
            "send",
            "--dir",
            &dir_arg,
            "--set",
            target,
            "--input",
            &message("panic"),
        ],
    )
    .await
    .exits(3)
    .says("the plugin crashed")
    .says("hostile plugin panics on purpose");
    call(
        dir.path(),
        &["echo", "send", "--dir", &dir_arg, "--input", &message("ok")],
    )
    .await
    .exits(2)
    .says("is plugin `hostile`, not `echo`");
}

#[tokio::test]
async fn the_cache_stays_out_of_the_working_directory_and_paths_are_the_config_file_s() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let etc = dir.path().join("etc");
    let home = dir.path().join("home");
    for d in [&work, &etc, &home] {
        std::fs::create_dir(d).unwrap();
    }
    // A plugin folder beside keel.toml, named relative to it.
    let plugins = etc.join("plugins");
    plugin_folder(&plugins, "hostile", &KEEL_FIXTURE_HOSTILE, true);
    let config = etc.join("keel.toml");
    std::fs::write(&config, "[plugin_host]\ndirs = [\"plugins\"]\n\n[plugins.hostile]\ntarget = \"http://provider.test/\"\n").unwrap();
    let config = config.display().to_string();

    let mut command = tokio::process::Command::new(KEEL);
    command
        .args(["--config", &config, "plugin", "check"])
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("KEEL_LOG", "error");
    let out = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok  hostile"), "{stdout}");
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "nothing written where keel ran"
    );
    let cached: Vec<_> = std::fs::read_dir(home.join(".cache/keel/plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached.len() == 1 && cached[0].starts_with("hostile-"),
        "{cached:?}"
    );

    // A folder that is not there: a configuration problem, exit 2, naming the key.
    std::fs::write(
        etc.join("bad.toml"),
        "[plugin_host]\ndirs = [\"missing\"]\n",
    )
    .unwrap();
    let bad = etc.join("bad.toml").display().to_string();
    keel(&work, &["--config", &bad, "plugin", "list"])
        .await
        .exits(2)
        .says("plugin_host.dirs: cannot read");
}

#[tokio::test]
async fn keel_s_own_plugins_pass_their_tests_toml() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for (folder, artifact) in [
        ("plugins/gateway-paynow", &KEEL_PLUGIN_PAYNOW),
        ("plugins/gateway-bank-transfer", &KEEL_PLUGIN_BANK_TRANSFER),
        ("plugins/notifier-whatsapp", &KEEL_PLUGIN_WHATSAPP),
        // docs/plugins/gateway.md's plugin, as its author runs it.
        ("examples/voucher-gateway", &KEEL_EXAMPLE_VOUCHER_GATEWAY),
    ] {
        artifact.wasm().unwrap(); // built
        let plugin = root.join(folder).display().to_string();
        let ran = keel(
            dir.path(),
            &["plugin", "test", &plugin, "--wasm", artifact.wasm_path],
        )
        .await;
        ran.exits(0);
        ran.prints(" passed, 0 failed");
        assert!(!ran.stdout.contains("FAIL"), "{}", ran.stdout);
    }
}

/// docs/plugins/gateway.md shows examples/voucher-gateway's files, in order: the blocks of
/// `src/lib.rs`, `src/tests.rs`, `tests.toml`, and the Python twin's `app.py` and
/// `test_app.py`, put end to end (a blank line between) are those files, and `Cargo.toml` and `plugin.toml` are shown whole (`Cargo.toml` with the
/// author's package name and SDK path). Other `rust`, `toml` and `python` blocks are refused, except
/// a `keel.toml` excerpt (its first line says so).
#[test]
fn the_gateway_walkthrough_shows_the_example_s_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let doc = read("docs/plugins/gateway.md");
    let example = "examples/voucher-gateway/";
    let cargo = read(&format!("{example}rust/Cargo.toml"))
        .replace(
            "name = \"keel-example-voucher-gateway\"",
            "name = \"voucherpay\"",
        )
        .replace("path = \"../../../sdk\"", "path = \"../keel/sdk\"");
    let whole = [
        ("Cargo.toml", cargo),
        ("plugin.toml", read(&format!("{example}plugin.toml"))),
    ];
    let pieced = [
        "rust/src/lib.rs",
        "rust/src/tests.rs",
        "tests.toml",
        "python/app.py",
        "python/test_app.py",
    ]
    .map(|f| (f, read(&format!("{example}{f}"))));
    let mut joined: Vec<Vec<&str>> = vec![Vec::new(); pieced.len()];

    // The fenced blocks in `rust`, `toml` and `python`.
    let mut blocks = Vec::new();
    let mut open: Option<(&str, usize)> = None;
    let mut at = 0;
    for line in doc.split_inclusive('\n') {
        let fence = line.trim_end().strip_prefix("```");
        match (open, fence) {
            (None, Some(lang)) => open = Some((lang, at + line.len())),
            (Some((lang, start)), Some("")) => {
                if matches!(lang, "rust" | "toml" | "python") {
                    blocks.push(&doc[start..at]);
                }
                open = None;
            }
            _ => {}
        }
        at += line.len();
    }
    assert!(
        blocks.len() > 10,
        "the scan found only {} blocks",
        blocks.len()
    );
    for block in blocks {
        if block.starts_with("# keel.toml\n") {
            continue;
        }
        if whole.iter().any(|(_, text)| text == block) {
            continue;
        }
        // A piece of a file: the next one after the pieces already seen.
        let next = (0..pieced.len()).find(|&i| {
            let so_far: String = joined[i].iter().map(|b| format!("{b}\n")).collect();
            pieced[i].1.starts_with(&format!("{so_far}{block}"))
        });
        match next {
            Some(i) => joined[i].push(block),
            None => panic!(
                "this block of docs/plugins/gateway.md is not the next piece of any of \
                 {example}'s files:\n{block}"
            ),
        }
    }
    for (i, (file, text)) in pieced.iter().enumerate() {
        assert_eq!(
            &joined[i].join("\n"),
            text,
            "docs/plugins/gateway.md does not show all of {example}{file}"
        );
    }
    for (file, text) in &whole {
        assert!(
            doc.contains(text.as_str()),
            "docs/plugins/gateway.md does not show {example}{file}"
        );
    }
}

#[tokio::test]
async fn a_failing_case_names_the_place_and_a_wrong_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_folder(dir.path(), "paynow", &KEEL_PLUGIN_PAYNOW, false);
    let tests = r#"
[settings]
usd_integration_id = 7175
usd_integration_key = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31"

[[case]]
name = "describe"
operation = "describe"
expect = { name = "Paynow" }

[[case]]
name = "expects the wrong thing"
operation = "describe"
expect = { name = "Stripe" }

[[case.reply]]
body = "never asked for"
"#;
    std::fs::write(plugin.join("tests.toml"), tests).unwrap();
    let folder = plugin.display().to_string();
    let ran = keel(
        dir.path(),
        &[
            "plugin",
            "test",
            &folder,
            "--wasm",
            KEEL_PLUGIN_PAYNOW.wasm_path,
        ],
    )
    .await;
    ran.exits(1);
    ran.prints("ok    describe");
    ran.prints("FAIL  expects the wrong thing");
    ran.prints(r#"answer.name is "Paynow", not "Stripe""#);
    ran.prints("1 recorded repl(ies) were never asked for");
    ran.prints("1 passed, 1 failed");

    // Only the cases named.
    let ran = keel(
        dir.path(),
        &[
            "plugin",
            "test",
            &folder,
            "--wasm",
            KEEL_PLUGIN_PAYNOW.wasm_path,
            "--case",
            "describe",
        ],
    )
    .await;
    ran.exits(0);

    std::fs::write(
        plugin.join("tests.toml"),
        "[[case]]\nname = \"x\"\noperation = \"describe\"\nexpect_everything = true\n",
    )
    .unwrap();
    keel(
        dir.path(),
        &[
            "plugin",
            "test",
            &folder,
            "--wasm",
            KEEL_PLUGIN_PAYNOW.wasm_path,
        ],
    )
    .await
    .exits(2)
    .says("expect_everything");
    // No component beside the manifest and none given.
    std::fs::write(plugin.join("tests.toml"), tests).unwrap();
    keel(dir.path(), &["plugin", "test", &folder])
        .await
        .exits(2)
        .says("plugin.wasm");
}
