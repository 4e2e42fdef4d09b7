//! Where the host calls go: to the kernel's imports inside a component, to the
//! [`testing`](crate::testing) fake in native builds (an author's `cargo test`).

#[cfg(target_family = "wasm")]
mod imp {
    use crate::bindings::host::keel::plugin::{clock, config, http, kv, log};

    pub fn http_send(req: &http::Request) -> Result<http::Response, http::Error> {
        http::send(req)
    }
    pub fn log(level: log::Level, message: &str) {
        log::log(level, message)
    }
    pub fn config_get(key: &str) -> Option<String> {
        config::get(key)
    }
    pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, String> {
        kv::get(key)
    }
    pub fn kv_set(key: &str, value: &[u8]) -> Result<(), String> {
        kv::set(key, value)
    }
    pub fn kv_delete(key: &str) -> Result<bool, String> {
        kv::delete(key)
    }
    pub fn clock_now() -> String {
        clock::now()
    }
    pub fn clock_now_millis() -> i64 {
        clock::now_millis()
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use crate::bindings::host::keel::plugin::{http, log};
    use crate::testing::with_fake;

    pub fn http_send(req: &http::Request) -> Result<http::Response, http::Error> {
        with_fake(|f| f.http_send(req))
    }
    pub fn log(level: log::Level, message: &str) {
        with_fake(|f| f.log(level, message))
    }
    pub fn config_get(key: &str) -> Option<String> {
        with_fake(|f| f.config_get(key))
    }
    pub fn kv_get(key: &str) -> Result<Option<Vec<u8>>, String> {
        with_fake(|f| Ok(f.kv_get(key)))
    }
    pub fn kv_set(key: &str, value: &[u8]) -> Result<(), String> {
        with_fake(|f| f.kv_set(key, value))
    }
    pub fn kv_delete(key: &str) -> Result<bool, String> {
        with_fake(|f| Ok(f.kv_delete(key)))
    }
    pub fn clock_now() -> String {
        with_fake(|f| f.now())
    }
    pub fn clock_now_millis() -> i64 {
        with_fake(|f| f.now_millis())
    }
}

pub(crate) use imp::*;
