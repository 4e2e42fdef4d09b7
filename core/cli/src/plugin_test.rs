//! `keel plugin test DIR`: runs the cases of a plugin's `tests.toml` in the real host, so a
//! plugin's author tests it in any language without Rust or Keel's test kit
//! (docs/plugins/test.md).
//!
//! Each case is one operation ([`keel_plugin_host::Plugin::call_json`]) with an expected
//! answer, plugin error or failure. The plugin's requests to the origins it declares go to a
//! loopback server that answers with the case's recorded replies, in order
//! ([`keel_api::replay`]); the requests it sent can be checked too. Cases run in order and
//! share the plugin's storage, as one installation's calls do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use keel_api::replay::{ReceivedRequest, RecordedReply, ReplayServer};
use keel_app::plugins::Installed;
use keel_plugin_host::kv::{KvStore, MemoryKv};
use keel_plugin_host::{PluginFailure, PluginHost};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Config, UsageError};
use crate::plugins::{CallFailed, describe_error, host_config, kind_of, plugin_in_dir};

/// `tests.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The plugin's section for every case.
    #[serde(default)]
    settings: toml::Table,
    /// Origins sent to the recorded replies; default: every origin `plugin.toml` declares
    /// (wildcards cannot be, so list those origins here).
    #[serde(default)]
    origins: Option<Vec<String>>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The kind, when the plugin has several.
    #[serde(default)]
    kind: Option<String>,
    operation: String,
    /// The input (a TOML value, turned into JSON), or `input_json` as JSON text.
    #[serde(default)]
    input: Option<toml::Value>,
    #[serde(default)]
    input_json: Option<String>,
    /// Settings over the file's, for this case.
    #[serde(default)]
    settings: toml::Table,
    /// What the answer must contain: every key given, recursively; other values equal.
    #[serde(default)]
    expect: Option<toml::Value>,
    /// The plugin error it must answer (`refused`, `invalid-input`, `unavailable`,
    /// `misconfigured`, `unsupported`, `internal`).
    #[serde(default)]
    expect_error: Option<String>,
    /// A text the plugin error's message must contain.
    #[serde(default)]
    expect_message: Option<String>,
    /// How it must fail to answer (`panic`, `timeout`, `cpu_limit`, `memory_limit`, …).
    #[serde(default)]
    expect_failure: Option<String>,
    /// The provider's replies, served in order.
    #[serde(default, rename = "reply")]
    replies: Vec<Reply>,
    /// The requests the plugin must have sent, in order (all of them).
    #[serde(default, rename = "request")]
    requests: Option<Vec<ExpectedRequest>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reply {
    #[serde(default = "ok")]
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
}

fn ok() -> u16 {
    200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedRequest {
    #[serde(default)]
    method: Option<String>,
    /// The path and query, exactly.
    #[serde(default)]
    path: Option<String>,
    /// Texts the body must contain.
    #[serde(default)]
    body_contains: Vec<String>,
    /// Headers it must carry, each with exactly this value (names compare without case).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// What the body, read as JSON, must contain (as `expect` for an answer).
    #[serde(default)]
    body_json: Option<toml::Value>,
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub async fn run(
    config: &Config,
    dir: &Path,
    wasm: Option<PathBuf>,
    only: Option<&str>,
) -> Result<()> {
    let file_path = dir.join("tests.toml");
    let text = std::fs::read_to_string(&file_path)
        .map_err(|e| usage(format!("cannot read {}: {e}", file_path.display())))?;
    let file: TestFile =
        toml::from_str(&text).map_err(|e| usage(format!("{}: {e}", file_path.display())))?;
    if file.cases.is_empty() {
        return Err(usage(format!("{} has no [[case]]", file_path.display())));
    }
    let plugin = plugin_in_dir(dir, wasm.as_deref())?;
    let origins = match &file.origins {
        Some(o) => o.clone(),
        None => plugin
            .manifest
            .allow
            .iter()
            .map(ToString::to_string)
            .filter(|o| !o.contains('*'))
            .collect(),
    };
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::default());
    let (mut passed, mut failed) = (0, 0);
    for case in &file.cases {
        if only.is_some_and(|o| !case.name.contains(o)) {
            continue;
        }
        match run_case(config, &plugin, &file, &origins, case, Arc::clone(&kv)).await {
            Ok(()) => {
                passed += 1;
                println!("ok    {}", case.name);
            }
            Err(CaseError::Failed(why)) => {
                failed += 1;
                println!("FAIL  {}\n{}", case.name, indent(&why));
            }
            Err(CaseError::Wrong(why)) => {
                return Err(usage(format!(
                    "{}: case {:?}: {why}",
                    file_path.display(),
                    case.name
                )));
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(CallFailed {
            code: 1,
            message: format!("{failed} of {} cases failed", passed + failed),
        }
        .into());
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

enum CaseError {
    /// The plugin did not do what the case expects.
    Failed(String),
    /// The case itself cannot be run (exit 2).
    Wrong(String),
}

async fn run_case(
    config: &Config,
    plugin: &Installed,
    file: &TestFile,
    origins: &[String],
    case: &Case,
    kv: Arc<dyn KvStore>,
) -> Result<(), CaseError> {
    let wrong = |m: String| CaseError::Wrong(m);
    let kind = kind_of(plugin, case.kind.as_deref()).map_err(wrong)?;
    let input = match (&case.input, &case.input_json) {
        (Some(_), Some(_)) => return Err(wrong("give `input` or `input_json`, not both".into())),
        (Some(v), None) => serde_json::to_value(v).map_err(|e| wrong(format!("input: {e}")))?,
        (None, Some(text)) => {
            serde_json::from_str(text).map_err(|e| wrong(format!("input_json is not JSON: {e}")))?
        }
        (None, None) => Value::Null,
    };
    let expected = [
        case.expect.is_some(),
        case.expect_error.is_some(),
        case.expect_failure.is_some(),
    ];
    if expected.iter().filter(|e| **e).count() > 1 {
        return Err(wrong(
            "give one of `expect`, `expect_error`, `expect_failure`".into(),
        ));
    }
    let mut section = file.settings.clone();
    section.extend(case.settings.clone());
    let enabled = keel_plugin_host::settings::validate(&plugin.manifest, &section)
        .map_err(|e| wrong(e.join("; ")))?;

    let replies = case
        .replies
        .iter()
        .map(|r| RecordedReply {
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: r.body.clone().into_bytes(),
        })
        .collect();
    let server = ReplayServer::start(replies)
        .await
        .map_err(|e| wrong(format!("cannot start the reply server: {e}")))?;
    let mut host_config = host_config(config, kv, Arc::new(chrono::Utc::now));
    for origin in origins {
        host_config
            .origin_overrides
            .insert(origin, &server.origin())
            .map_err(|e| wrong(format!("origins: {e}")))?;
    }
    // Without the host's "FAKE ORIGIN" warning, meant for `keel serve`: here every case
    // replays its provider, which is the point, and one warning per case buries the results.
    let host = tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
        PluginHost::new(host_config)
    })
    .map_err(wrong)?;
    let loaded = host
        .load(plugin.manifest.clone(), Arc::clone(&plugin.wasm), enabled)
        .await
        .map_err(|e| wrong(e.to_string()))?;
    let done = loaded
        .call_json(kind, &case.operation, &input)
        .await
        .map_err(wrong)?;

    let mut problems = Vec::new();
    match (&done.result, case) {
        (
            Ok(answer),
            Case {
                expect: Some(want), ..
            },
        ) => {
            let want = serde_json::to_value(want).map_err(|e| wrong(format!("expect: {e}")))?;
            if let Some(why) = mismatch(&want, answer, "answer") {
                problems.push(format!("{why}\nthe answer: {answer}"));
            }
        }
        (
            Ok(_),
            Case {
                expect_error: None,
                expect_failure: None,
                ..
            },
        ) => {}
        (Ok(answer), _) => problems.push(format!("it answered {answer}, not an error")),
        (
            Err(PluginFailure::Plugin(e)),
            Case {
                expect_error: Some(want),
                ..
            },
        ) => {
            let got = describe_error(e);
            let case_name = got.split(':').next().unwrap_or_default();
            if case_name != want.as_str() {
                problems.push(format!("it answered the error {got}, not `{want}`"));
            } else if let Some(text) = &case.expect_message
                && !got.contains(text.as_str())
            {
                problems.push(format!("the error {got} does not say {text:?}"));
            }
        }
        (
            Err(failure),
            Case {
                expect_failure: Some(want),
                ..
            },
        ) if failure.label() == want => {}
        (Err(PluginFailure::Plugin(e)), _) => {
            problems.push(format!("it answered the error {}", describe_error(e)));
        }
        (Err(failure), _) => problems.push(format!(
            "it did not answer: {failure} ({})",
            failure.label()
        )),
    }
    let sent = server.received();
    if let Some(want) = &case.requests {
        if sent.len() != want.len() {
            problems.push(format!(
                "it sent {} request(s), not {}: {}",
                sent.len(),
                want.len(),
                sent.iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, (got, want)) in sent.iter().zip(want).enumerate() {
            problems.extend(request_problems(i + 1, got, want).map_err(wrong)?);
        }
    }
    if server.unused() > 0 {
        problems.push(format!(
            "{} recorded repl(ies) were never asked for",
            server.unused()
        ));
    }
    if problems.is_empty() {
        return Ok(());
    }
    for line in &done.captured.logs {
        problems.push(format!("log: {line}"));
    }
    for line in done.captured.stderr.lines() {
        problems.push(format!("stderr: {line}"));
    }
    Err(CaseError::Failed(problems.join("\n")))
}

/// How request number `n` differs from what the case expects (an error when the case's
/// `body_json` cannot be JSON).
fn request_problems(
    n: usize,
    got: &ReceivedRequest,
    want: &ExpectedRequest,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let body = String::from_utf8_lossy(&got.body);
    if let Some(m) = &want.method
        && !m.eq_ignore_ascii_case(&got.method)
    {
        problems.push(format!("request {n}: {} {}, not {m}", got.method, got.path));
    }
    if let Some(p) = &want.path
        && p != &got.path
    {
        problems.push(format!("request {n}: path {}, not {p}", got.path));
    }
    for text in &want.body_contains {
        if !body.contains(text.as_str()) {
            problems.push(format!(
                "request {n}: the body does not contain {text:?}: {body}"
            ));
        }
    }
    for (name, value) in &want.headers {
        let sent: Vec<&str> = got
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        match sent.as_slice() {
            [] => problems.push(format!("request {n}: no `{name}` header")),
            [one] if one == value => {}
            _ => problems.push(format!(
                "request {n}: the `{name}` header is {}, not {value:?}",
                sent.iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }
    if let Some(want_json) = &want.body_json {
        let want_json = serde_json::to_value(want_json).map_err(|e| format!("body_json: {e}"))?;
        match serde_json::from_slice::<Value>(&got.body) {
            Ok(json) => {
                if let Some(why) = mismatch(&want_json, &json, "body") {
                    problems.push(format!("request {n}: {why}\nthe body: {body}"));
                }
            }
            Err(e) => problems.push(format!("request {n}: the body is not JSON ({e}): {body}")),
        }
    }
    Ok(problems)
}

/// Why `got` does not contain `want` (objects: every key of `want`, recursively; arrays:
/// the same length, element by element; anything else: equal), naming the place.
fn mismatch(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w.iter().find_map(|(k, wv)| match g.get(k) {
            Some(gv) => mismatch(wv, gv, &format!("{at}.{k}")),
            None => Some(format!("{at} has no `{k}`")),
        }),
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (wv, gv))| mismatch(wv, gv, &format!("{at}[{i}]"))),
        // TOML has no null: an expected integer may match a float of the same value.
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => None,
        _ if want == got => None,
        _ => Some(format!("{at} is {got}, not {want}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_contains_what_is_expected_or_the_place_is_named() {
        let got =
            json!({ "status": "pending", "action": { "redirect": "https://x" }, "n": [1, 2] });
        assert_eq!(
            mismatch(&json!({ "status": "pending" }), &got, "answer"),
            None
        );
        assert_eq!(mismatch(&json!({ "n": [1, 2] }), &got, "answer"), None);
        assert_eq!(
            mismatch(
                &json!({ "action": { "redirect": "https://y" } }),
                &got,
                "answer"
            )
            .unwrap(),
            "answer.action.redirect is \"https://x\", not \"https://y\""
        );
        assert_eq!(
            mismatch(&json!({ "state": null }), &got, "answer").unwrap(),
            "answer has no `state`"
        );
        assert!(mismatch(&json!({ "n": [1] }), &got, "answer").is_some());
    }

    #[test]
    fn a_request_s_headers_and_json_body_are_checked_naming_the_difference() {
        let got = ReceivedRequest {
            method: "POST".into(),
            path: "/v1/payments".into(),
            headers: vec![
                ("authorization".into(), "Bearer k1".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: br#"{"amount":"25.00","currency":"USD"}"#.to_vec(),
        };
        let want = |text: &str| -> ExpectedRequest { toml::from_str(text).unwrap() };
        let ok =
            want("headers = { Authorization = \"Bearer k1\" }\nbody_json = { amount = \"25.00\" }");
        assert_eq!(request_problems(1, &got, &ok), Ok(vec![]));
        let wrong = want(
            "headers = { authorization = \"Bearer k2\", idempotency-key = \"R-1\" }\n\
             body_json = { currency = \"ZWG\" }",
        );
        let problems = request_problems(2, &got, &wrong).unwrap();
        assert_eq!(
            problems[..2],
            [
                "request 2: the `authorization` header is \"Bearer k1\", not \"Bearer k2\"",
                "request 2: no `idempotency-key` header",
            ]
        );
        assert!(
            problems[2].starts_with("request 2: body.currency is \"USD\", not \"ZWG\""),
            "{problems:?}"
        );
        let not_json = ReceivedRequest {
            body: b"amount=25.00".to_vec(),
            ..got
        };
        assert!(request_problems(3, &not_json, &ok).unwrap()[0].contains("the body is not JSON"));
    }
}
