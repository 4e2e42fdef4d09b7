//! Plugins as the kernel runs them: which are installed, which the admin enabled (their
//! `[plugins.<id>]` sections, checked against each manifest before anything starts), and
//! the database-backed `kv` store the host gives them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use keel_plugin_host::kv::KvStore;
use keel_plugin_host::{Enabled, Manifest, Plugin, PluginHost, settings};
use keel_store::Db;
use keel_store::plugin_kv::{self, SetOutcome};

use crate::clock::Clock;

/// A plugin Keel can run: its manifest and its component.
#[derive(Clone)]
pub struct Installed {
    pub manifest: Manifest,
    pub wasm: Arc<[u8]>,
    /// Where it came from, for messages (`built-in`, a directory).
    pub source: String,
}

/// Parses the manifests of the given plugins (text, component bytes, source). Two plugins
/// with one id are refused.
pub fn installed(
    plugins: impl IntoIterator<Item = (String, Arc<[u8]>, String)>,
) -> Result<Vec<Installed>, Vec<String>> {
    let mut found: Vec<Installed> = Vec::new();
    let mut errors = Vec::new();
    for (manifest, wasm, source) in plugins {
        match Manifest::parse(&manifest, &format!("{source}/plugin.toml")) {
            Ok(manifest) => {
                if let Some(other) = found.iter().find(|i| i.manifest.id == manifest.id) {
                    errors.push(format!(
                        "plugin `{}` is installed twice ({} and {source})",
                        manifest.id, other.source
                    ));
                } else {
                    found.push(Installed {
                        manifest,
                        wasm,
                        source,
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(found)
    } else {
        Err(errors)
    }
}

/// Checks every `[plugins.<id>]` section: the plugin must be installed and the section
/// must fit its manifest (known keys, right types, required settings, grants no wider
/// than declared). Every problem is reported, each naming the plugin and key.
pub fn check_sections(
    installed: &[Installed],
    sections: &BTreeMap<String, toml::Table>,
) -> Result<Vec<(Installed, Enabled)>, Vec<String>> {
    let mut enabled = Vec::new();
    let mut errors = Vec::new();
    for (id, section) in sections {
        let Some(plugin) = installed.iter().find(|p| &p.manifest.id == id) else {
            let ids: Vec<&str> = installed.iter().map(|p| p.manifest.id.as_str()).collect();
            errors.push(format!(
                "plugins.{id}: no plugin `{id}` is installed (installed: {})",
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(", ")
                }
            ));
            continue;
        };
        match settings::validate(&plugin.manifest, section) {
            Ok(e) => enabled.push((plugin.clone(), e)),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(enabled)
    } else {
        Err(errors)
    }
}

/// Loads every enabled plugin into `host` (compile or cache, link, describe). All are
/// tried; every failure is reported.
pub async fn load_enabled(
    host: &PluginHost,
    enabled: Vec<(Installed, Enabled)>,
) -> Result<Vec<Plugin>, Vec<String>> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (plugin, settings) in enabled {
        match host.load(plugin.manifest, plugin.wasm, settings).await {
            Ok(p) => loaded.push(p),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(errors)
    }
}

/// Plugin kv in the kernel's database (table `plugin_kv`).
pub struct DbKv {
    db: Db,
    clock: Arc<dyn Clock>,
}

impl DbKv {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }
}

fn storage_error(e: keel_store::StoreError) -> String {
    tracing::warn!("plugin kv: {e}");
    "the kernel's storage is unavailable".to_owned()
}

impl KvStore for DbKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            plugin_kv::get(&self.db, plugin, key)
                .await
                .map_err(storage_error)
        })
    }

    fn set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: &'a [u8],
        max_keys: u64,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let at = keel_store::db::truncate(self.clock.now());
            match plugin_kv::set(&self.db, plugin, key, value, max_keys, at)
                .await
                .map_err(storage_error)?
            {
                SetOutcome::Stored => Ok(()),
                SetOutcome::QuotaReached => {
                    Err(format!("the plugin already stores {max_keys} keys"))
                }
            }
        })
    }

    fn delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            plugin_kv::delete(&self.db, plugin, key)
                .await
                .map_err(storage_error)
        })
    }
}
