//! One code per kind of bad input, one status per code: `keel_api::codes::CODES` is the
//! list, and this test keeps it true by reading the sources and the documents.
//!
//! - Every code the sources of keel-domain, keel-app and keel-api put in an error (the
//!   literal after `invalid(`, `conflict(`, `code: `, `bad_request(`, `unprocessable(`,
//!   `unauthorized(`, `StatusCode::…,`, the domain errors' `fn code`, the extractors' `VALIDATED` table) is listed, and where the
//!   source names a status, with that status.
//! - Every listed code is produced somewhere (no dead entries).
//! - Every error code the OpenAPI document, `docs/*.md` or `docs/plugins/*.md` mentions as
//!   "409 `code`" is listed with that status, and so is a response whose description is a
//!   bare code.
//!
//! At run time a debug build also refuses an `ApiError` whose code is not listed with its
//! status (`ApiError::new`), so every test that meets an error checks it too.

use keel_api::codes::{CODES, status_of};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((p, text));
        }
    }
}

/// The sources whose errors reach the API.
fn sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for krate in ["domain", "app", "api"] {
        rust_files(&root().join("core").join(krate).join("src"), &mut out);
    }
    out
}

/// The string literal at the start of `text` (after whitespace), if it is snake_case.
fn literal(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    let word = &rest[..end];
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(word)
}

/// Without `//` comments, so prose never counts as a constructor.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// (code, status the source names if it does, where).
fn produced() -> Vec<(String, Option<u16>, String)> {
    let statuses: BTreeMap<&str, u16> = [
        ("BAD_REQUEST", 400),
        ("UNAUTHORIZED", 401),
        ("FORBIDDEN", 403),
        ("NOT_FOUND", 404),
        ("METHOD_NOT_ALLOWED", 405),
        ("CONFLICT", 409),
        ("PAYLOAD_TOO_LARGE", 413),
        ("UNSUPPORTED_MEDIA_TYPE", 415),
        ("UNPROCESSABLE_ENTITY", 422),
        ("TOO_MANY_REQUESTS", 429),
        ("INTERNAL_SERVER_ERROR", 500),
        ("SERVICE_UNAVAILABLE", 503),
    ]
    .into_iter()
    .collect();
    let mut out = Vec::new();
    for (path, text) in sources() {
        let text = code_only(&text);
        let at = |i: usize| format!("{}:{}", path.display(), text[..i].lines().count());
        for (prefix, status) in [
            ("invalid(", None),
            ("conflict(", None),
            ("code: ", None),
            ("bad_request(", Some(400)),
            ("unprocessable(", Some(422)),
            ("unauthorized(", Some(401)),
        ] {
            for (i, _) in text.match_indices(prefix) {
                if let Some(code) = literal(&text[i + prefix.len()..]) {
                    out.push((code.to_string(), status, at(i)));
                }
            }
        }
        for (i, _) in text.match_indices("StatusCode::") {
            let rest = &text[i + "StatusCode::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            let after = rest[name.len()..].trim_start();
            if let (Some(status), Some(after)) =
                (statuses.get(name.as_str()), after.strip_prefix(','))
                && let Some(code) = literal(after)
            {
                out.push((code.to_string(), Some(*status), at(i)));
            }
        }
        // The domain errors' codes: every literal of a `fn code(&self) -> &'static str`.
        for (i, _) in text.match_indices("fn code(&self) -> &'static str {") {
            let body = &text[i..];
            let body = &body[..body.find("\n    }\n").unwrap_or(body.len())];
            for part in body.split("=> ").skip(1) {
                if let Some(code) = literal(part) {
                    out.push((code.to_string(), None, at(i)));
                }
            }
        }
        // The extractors' VALIDATED table: (field, code).
        if let Some(i) = text.find("const VALIDATED") {
            let table = &text[i..];
            let table = &table[..table.find("];").unwrap()];
            for row in table.split('(').skip(1) {
                if let Some(code) = row.split(',').nth(1).and_then(literal) {
                    out.push((code.to_string(), None, at(i)));
                }
            }
        }
    }
    out
}

#[test]
fn every_code_the_sources_produce_is_listed_with_its_status() {
    let mut wrong = Vec::new();
    let produced = produced();
    assert!(
        produced.len() > 150,
        "the scanner found only {}",
        produced.len()
    );
    for (code, status, at) in &produced {
        match (status_of(code), status) {
            (None, _) => wrong.push(format!("{at}: {code} is not in keel_api::codes::CODES")),
            (Some(listed), Some(named)) if listed.as_u16() != *named => wrong.push(format!(
                "{at}: {code} is answered {named} here and {} in CODES",
                listed.as_u16()
            )),
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_listed_code_is_produced_somewhere() {
    let all: String = sources().into_iter().map(|(_, t)| t).collect();
    let dead: Vec<&str> = CODES
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !all.contains(&format!("\"{c}\"")))
        .collect();
    assert!(dead.is_empty(), "listed but never produced: {dead:?}");
}

/// Every "NNN `code`" in `text`.
fn documented(text: &str) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(" `") {
        let Some(status) = i
            .checked_sub(3)
            .and_then(|s| text.get(s..i))
            .and_then(|s| s.parse::<u16>().ok())
        else {
            continue;
        };
        if !(400..600).contains(&status) {
            continue;
        }
        let rest = &text[i + 2..];
        let Some(end) = rest.find('`') else { continue };
        let word = &rest[..end];
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            out.push((status, word.to_string()));
        }
    }
    out
}

fn check_documented(source: &str, found: Vec<(u16, String)>, wrong: &mut Vec<String>) {
    for (status, code) in found {
        match status_of(&code) {
            None => wrong.push(format!(
                "{source}: {status} `{code}` is not a code the API has"
            )),
            Some(s) if s.as_u16() != status => wrong.push(format!(
                "{source}: says {status} `{code}`, the API answers {}",
                s.as_u16()
            )),
            _ => {}
        }
    }
}

fn strings(value: &serde_json::Value, key: Option<&str>, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(s) => {
            if let Some(k) = key {
                out.push((k.to_string(), s.clone()));
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                strings(v, Some(k), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_error_code_the_openapi_document_names_is_one_the_api_answers_with() {
    let doc: serde_json::Value = serde_json::from_str(&keel_api::openapi::document()).unwrap();
    let mut wrong = Vec::new();
    let mut texts = Vec::new();
    strings(&doc, None, &mut texts);
    let mut named = 0;
    for (key, text) in &texts {
        if key == "description" {
            let found = documented(text);
            named += found.len();
            check_documented("openapi", found, &mut wrong);
        }
    }
    // A response whose description is a bare code: the code is answered with that status.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                let Some(text) = response["description"].as_str() else {
                    continue;
                };
                if text.contains('_') && text.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    named += 1;
                    let status: u16 = status.parse().unwrap();
                    check_documented(
                        &format!("openapi {method} {path}"),
                        vec![(status, text.to_string())],
                        &mut wrong,
                    );
                }
            }
        }
    }
    assert!(
        named >= CODES.len(),
        "the document names only {named} codes (its ErrorDetail.code lists them all): the scan is broken"
    );
    // The document's `ErrorDetail.code` is the list, in order.
    let listed: Vec<&str> =
        doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
            .as_array()
            .expect("ErrorDetail.code is an enum")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
    let codes: Vec<&str> = CODES.iter().map(|(c, _)| *c).collect();
    assert_eq!(listed, codes);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_error_code_the_docs_name_is_one_the_api_answers_with() {
    let mut wrong = Vec::new();
    let mut files: Vec<PathBuf> = ["docs", "docs/plugins"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root().join(dir)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.push(root().join("README.md"));
    files.push(root().join("ARCHITECTURE.md"));
    let mut named = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let found = documented(&text);
        named.extend(found.iter().map(|(_, c)| c.clone()));
        check_documented(&file.display().to_string(), found, &mut wrong);
    }
    assert!(
        named.len() > 5,
        "the docs name only {named:?}: the scan is broken"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
