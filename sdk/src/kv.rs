//! A small key-value store private to the plugin, kept in the kernel's database. Keys are
//! at most 256 bytes and values at most 64 KiB.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PluginError;

fn storage(err: String) -> PluginError {
    PluginError::unavailable(format!("plugin storage: {err}"), None)
}

/// The bytes stored under `key`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, PluginError> {
    crate::backend::kv_get(key).map_err(storage)
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), PluginError> {
    crate::backend::kv_set(key, value).map_err(storage)
}

/// Removes `key`; true when it was there.
pub fn delete(key: &str) -> Result<bool, PluginError> {
    crate::backend::kv_delete(key).map_err(storage)
}

/// The JSON value stored under `key`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    get(key)?
        .map(|bytes| serde_json::from_slice(&bytes).map_err(PluginError::from))
        .transpose()
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    set(key, &serde_json::to_vec(value)?)
}
