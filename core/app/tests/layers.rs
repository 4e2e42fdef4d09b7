//! The layers of keel-app, checked the way rust-analyzer's tidy tests check their rules: by
//! reading the source. Every module is listed once below, in its layer; a module may use
//! (`crate::x` anywhere in its code, `use crate::{x, …}` included) only modules of a lower
//! layer or listed before it in its own layer. So the modules' imports form no circle, the
//! leaves ("effects") import no use case, and a newcomer reading the list reads the crate
//! bottom up. The crate root (`lib.rs`) declares the modules and carries their settings in
//! `App`; it is not checked.
//!
//! To add a module: list it here where its imports put it, and in `lib.rs`'s map.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, bottom up, each with its modules in order.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["error", "clock", "schema", "crash_points"]),
    (
        "effects",
        &[
            "audit",
            "jobs",
            "events",
            "pay_links",
            "notify",
            "provisioning",
            "plugins",
        ],
    ),
    (
        "aggregates",
        &[
            "clients",
            "access",
            "ledger",
            "billing",
            "catalog",
            "wallets",
            "services",
            "settlement",
            "invoices",
            "credit_notes",
            "orders",
            "plan_change",
            "dunning",
            "webhooks",
            "notifications",
        ],
    ),
    (
        "processes",
        &[
            "payments",
            "gateway_payments",
            "pay_page",
            "billing_run",
            "automation",
            "preview",
            "demo",
        ],
    ),
];

/// Each module's place in the order, with its layer.
fn rank() -> BTreeMap<&'static str, (usize, &'static str)> {
    let mut rank = BTreeMap::new();
    let mut at = 0;
    for (layer, modules) in LAYERS {
        for m in *modules {
            assert!(
                rank.insert(*m, (at, *layer)).is_none(),
                "{m} is listed twice in LAYERS"
            );
            at += 1;
        }
    }
    rank
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A module's source files: `src/m.rs` and everything under `src/m/`.
fn sources(module: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let file = src().join(format!("{module}.rs"));
    if file.exists() {
        out.push((
            file.display().to_string(),
            std::fs::read_to_string(&file).unwrap(),
        ));
    }
    let dir = src().join(module);
    if dir.is_dir() {
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push((
                        p.display().to_string(),
                        std::fs::read_to_string(&p).unwrap(),
                    ));
                }
            }
        }
    }
    out
}

/// The crate modules a source names: `crate::x` and `crate::{x, y::{z}}` (over several
/// lines too), outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's top-level names: split on commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (at, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.insert(ident(&group[start..at]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(&group[start..at]));
                        start = at + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.remove("");
    found
}

#[test]
fn every_module_is_listed_in_a_layer() {
    let rank = rank();
    let mut on_disk = BTreeSet::new();
    for e in std::fs::read_dir(src()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" {
            continue;
        }
        on_disk.insert(name);
    }
    let listed: BTreeSet<String> = rank.keys().map(|m| m.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "src/ and LAYERS in tests/layers.rs must name the same modules"
    );
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for m in rank.keys() {
        assert!(
            lib.contains(&format!("pub mod {m};")),
            "lib.rs does not declare {m}"
        );
        assert!(
            lib.contains(&format!("[`{m}`]")),
            "lib.rs's map does not describe {m}"
        );
    }
}

#[test]
fn modules_use_only_lower_layers_and_earlier_modules() {
    let rank = rank();
    let mut wrong = Vec::new();
    for (module, (at, layer)) in &rank {
        for (file, text) in sources(module) {
            for used in uses(&text) {
                let Some((used_at, used_layer)) = rank.get(used.as_str()) else {
                    // An item of the crate root (`App`, `Ctx`, `page_limit`, …).
                    continue;
                };
                if used == *module {
                    continue;
                }
                if used_at > at {
                    wrong.push(format!(
                        "{file}: {module} ({layer}) uses crate::{used} ({used_layer}), which is \
                         above it; move the shared part down or {module} up"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scanner_reads_paths_and_groups() {
    let text = "use crate::{audit, events::{Event, Other}, App};\nlet x = crate::notify::queue;\n// crate::payments in a comment\nuse crate::{\n    jobs,\n    ledger::{A, B},\n};\n";
    let found = uses(text);
    assert!(found.contains("audit") && found.contains("events") && found.contains("notify"));
    assert!(found.contains("App") && found.contains("jobs") && found.contains("ledger"));
    assert!(
        !found.contains("Other") && !found.contains("B"),
        "nested names are not modules"
    );
    assert!(!found.contains("payments"), "comments are not imports");
}
