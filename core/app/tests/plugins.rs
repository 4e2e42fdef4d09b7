//! Plugins in the kernel: sections checked against manifests, and plugin kv kept in the
//! database per plugin, on both engines.

use std::collections::BTreeMap;
use std::sync::Arc;

use keel_app::clock::SystemClock;
use keel_app::plugins::{DbKv, check_sections, installed};
use keel_plugin_host::notifier::{Message, Notifier};
use keel_plugin_host::{Plugin, PluginFailure};
use keel_plugins::{KEEL_FIXTURE_ECHO, KEEL_FIXTURE_HOSTILE, KEEL_PLUGIN_BANK_TRANSFER};
use keel_testkit::plugins::PluginHarness;
use keel_testkit::store_test;

async fn send(plugin: &Plugin, body: &str) -> Result<String, PluginFailure> {
    let msg = Message {
        reference: "m".into(),
        to: "+263771234567".into(),
        subject: None,
        body: body.into(),
        template: None,
        attachment: None,
    };
    plugin
        .notifier()
        .unwrap()
        .send(msg)
        .await
        .map(|r| r.provider_id)
}

store_test!(
    async fn plugin_kv_lives_in_the_database_per_plugin(t) {
        let kv = Arc::new(DbKv::new(t.db.clone(), Arc::new(SystemClock)));
        let mut harness = PluginHarness::new().configure(|c| c.kv = kv);
        let manifest = KEEL_FIXTURE_HOSTILE.manifest().unwrap();
        let wasm = KEEL_FIXTURE_HOSTILE.wasm().unwrap();
        let a = harness.load(wasm.clone(), &manifest, "").await.unwrap();
        // The same component under another id is another plugin with its own rows.
        let other = manifest.replace("id = \"hostile\"", "id = \"hostile-two\"");
        let b = harness.load(wasm, &other, "").await.unwrap();

        assert_eq!(send(&a, "kv-get:greeting").await.unwrap(), "None");
        assert_eq!(send(&a, "kv-set:greeting=hello").await.unwrap(), "stored");
        assert_eq!(send(&a, "kv-set:greeting=hello again").await.unwrap(), "stored");
        assert_eq!(send(&a, "kv-get:greeting").await.unwrap(), "Some(\"hello again\")");
        assert_eq!(send(&b, "kv-get:greeting").await.unwrap(), "None");

        let rows: Vec<(String, String)> = keel_store::on_db!(&t.db, |p| sqlx::query_as(
            "SELECT plugin_id, key FROM plugin_kv ORDER BY plugin_id, key"
        )
        .fetch_all(p)
        .await)
        .unwrap();
        assert_eq!(rows, vec![("hostile".to_owned(), "greeting".to_owned())]);
    }
);

store_test!(
    async fn the_kv_quota_refuses_new_keys_but_not_updates(t) {
        let at = keel_store::db::now();
        use keel_store::plugin_kv::{SetOutcome, get, set, delete};
        assert_eq!(set(&t.db, "p", "a", b"1", 2, at).await.unwrap(), SetOutcome::Stored);
        assert_eq!(set(&t.db, "p", "b", b"2", 2, at).await.unwrap(), SetOutcome::Stored);
        assert_eq!(set(&t.db, "p", "c", b"3", 2, at).await.unwrap(), SetOutcome::QuotaReached);
        assert_eq!(set(&t.db, "p", "a", b"one", 2, at).await.unwrap(), SetOutcome::Stored);
        assert_eq!(set(&t.db, "q", "c", b"3", 2, at).await.unwrap(), SetOutcome::Stored, "quotas are per plugin");
        assert_eq!(get(&t.db, "p", "a").await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(get(&t.db, "p", "c").await.unwrap(), None);
        assert!(delete(&t.db, "p", "a").await.unwrap());
        assert!(!delete(&t.db, "p", "a").await.unwrap());
        assert_eq!(set(&t.db, "p", "c", b"3", 2, at).await.unwrap(), SetOutcome::Stored);
    }
);

fn installed_plugins() -> Vec<keel_app::plugins::Installed> {
    let all = [KEEL_PLUGIN_BANK_TRANSFER, KEEL_FIXTURE_ECHO];
    installed(all.iter().map(|a| {
        (
            a.manifest().unwrap(),
            a.wasm().unwrap().into(),
            a.package.to_owned(),
        )
    }))
    .unwrap()
}

#[test]
fn sections_are_checked_against_manifests_naming_plugin_and_key() {
    let plugins = installed_plugins();
    let sections: BTreeMap<String, toml::Table> = toml::from_str(
        r#"
        [bank-transfer]
        instructions = 42
        [echo]
        retries = "three"
        colour = "red"
        allow_hosts = ["https://elsewhere.example.com"]
        [paynow]
        integration_id = 1
        "#,
    )
    .unwrap();
    let errors = check_sections(&plugins, &sections)
        .err()
        .expect("refused")
        .join("\n");
    for needle in [
        "plugins.bank-transfer.instructions: expected a string, found integer",
        "plugins.echo.retries: expected an integer, found string",
        "plugins.echo.colour: `echo` has no setting `colour`",
        "plugins.echo.allow_hosts: `https://elsewhere.example.com` is wider",
        "plugins.paynow: no plugin `paynow` is installed (installed: bank-transfer, echo)",
    ] {
        assert!(errors.contains(needle), "missing {needle:?} in:\n{errors}");
    }

    let good: BTreeMap<String, toml::Table> =
        toml::from_str("[bank-transfer]\ninstructions = \"Bank: First\"").unwrap();
    let enabled = check_sections(&plugins, &good).unwrap();
    assert_eq!(enabled.len(), 1);
    assert_eq!(enabled[0].1.settings.get("reference_prefix"), Some("INV"));

    let twice = installed([KEEL_FIXTURE_ECHO, KEEL_FIXTURE_ECHO].iter().map(|a| {
        (
            a.manifest().unwrap(),
            a.wasm().unwrap().into(),
            a.package.to_owned(),
        )
    }))
    .err()
    .unwrap();
    assert!(twice[0].contains("installed twice"), "{twice:?}");
}
