//! Plugin-private key-value storage. The host scopes every call to the calling plugin's
//! id; the store behind it (the kernel's database in production) never sees a key
//! without its plugin.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one plugin may hold.
pub const MAX_KEYS_PER_PLUGIN: u64 = 10_000;

/// Where plugin kv lives. Implementations key everything by `(plugin, key)`.
pub trait KvStore: Send + Sync + 'static {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>>;
    /// Stores the value; refuses a new key once the plugin holds `max_keys`.
    fn set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: &'a [u8],
        max_keys: u64,
    ) -> BoxFuture<'a, Result<(), String>>;
    fn delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool, String>>;
}

/// An in-memory store, for tests, benchmarks and `keel plugin` commands that run without a
/// database.
#[derive(Default)]
pub struct MemoryKv {
    map: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl KvStore for MemoryKv {
    fn get<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        let value = self
            .map
            .lock()
            .unwrap()
            .get(&(plugin.to_owned(), key.to_owned()))
            .cloned();
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: &'a [u8],
        max_keys: u64,
    ) -> BoxFuture<'a, Result<(), String>> {
        let mut map = self.map.lock().unwrap();
        let id = (plugin.to_owned(), key.to_owned());
        let result = if !map.contains_key(&id)
            && map.keys().filter(|(p, _)| p == plugin).count() as u64 >= max_keys
        {
            Err(format!("the plugin already stores {max_keys} keys"))
        } else {
            map.insert(id, value.to_vec());
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        let removed = self
            .map
            .lock()
            .unwrap()
            .remove(&(plugin.to_owned(), key.to_owned()))
            .is_some();
        Box::pin(async move { Ok(removed) })
    }
}
