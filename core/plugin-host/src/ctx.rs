//! The data of one call's store, and the host side of the `keel:plugin` imports.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_2::host::keel::plugin::{clock, config, http, kv, log, types};
use crate::host::Shared;
use crate::kv::{MAX_KEY_BYTES, MAX_KEYS_PER_PLUGIN, MAX_VALUE_BYTES};

/// Per-call caps on what a plugin may log.
#[derive(Debug, Clone)]
pub struct LogLimits {
    /// Lines through the `log` import.
    pub lines_per_call: u32,
    /// Bytes through the `log` import.
    pub bytes_per_call: usize,
    /// Bytes of stderr and stdout kept (the rest is dropped).
    pub stderr_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            lines_per_call: 1000,
            bytes_per_call: 256 * 1024,
            stderr_bytes: 64 * 1024,
        }
    }
}

/// The store data of one call.
pub struct PluginCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) deadline: Instant,
    pub(crate) requests: u32,
    pub(crate) log_lines: u32,
    pub(crate) log_bytes: usize,
    pub(crate) log_dropped: u64,
    /// The message of the SDK's panic hook, when the plugin panicked.
    pub(crate) panic_message: Option<String>,
    pub(crate) ticks: u64,
    pub(crate) stderr: CappedBuffer,
    /// The log lines of this call, as `LEVEL message` (within the per-call log budget), for
    /// a caller that shows them ([`crate::Plugin::call_json`]).
    pub(crate) logs: Vec<String>,
}

impl WasiView for PluginCtx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginCtx {}

impl http::Host for PluginCtx {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, http::Error> {
        let shared = Arc::clone(&self.shared);
        let id = shared.id.as_str();
        let max = shared.outbound.limits().max_requests_per_call;
        if self.requests >= max {
            metrics::counter!("keel_plugin_http_denied_total", "plugin" => id.to_owned(), "reason" => "too_many_requests").increment(1);
            return Err(http::Error::TooManyRequests(format!(
                "a call may make at most {max} requests"
            )));
        }
        self.requests += 1;
        let result = shared.outbound.send(req, self.deadline).await;
        match &result {
            Err(http::Error::Denied(why)) => {
                metrics::counter!("keel_plugin_http_denied_total", "plugin" => id.to_owned(), "reason" => "not_granted").increment(1);
                tracing::warn!(plugin = id, "outbound request denied: {why}");
            }
            Err(http::Error::TooLarge(_)) => {
                metrics::counter!("keel_plugin_http_denied_total", "plugin" => id.to_owned(), "reason" => "too_large").increment(1);
            }
            _ => {}
        }
        result
    }
}

impl log::Host for PluginCtx {
    async fn log(&mut self, level: log::Level, message: String) {
        let limits = &self.shared.log_limits;
        if self.log_lines >= limits.lines_per_call
            || self.log_bytes + message.len() > limits.bytes_per_call
        {
            self.log_dropped += 1;
            return;
        }
        self.log_lines += 1;
        self.log_bytes += message.len();
        if level == log::Level::Error && message.starts_with("plugin panicked: ") {
            self.panic_message = Some(message["plugin panicked: ".len()..].to_owned());
        }
        self.logs.push(format!("{} {message}", level_name(level)));
        let id = self.shared.id.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "keel::plugin", plugin = id, "{message}"),
            log::Level::Debug => tracing::debug!(target: "keel::plugin", plugin = id, "{message}"),
            log::Level::Info => tracing::info!(target: "keel::plugin", plugin = id, "{message}"),
            log::Level::Warn => tracing::warn!(target: "keel::plugin", plugin = id, "{message}"),
            log::Level::Error => tracing::error!(target: "keel::plugin", plugin = id, "{message}"),
        }
    }
}

fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Trace => "TRACE",
        log::Level::Debug => "DEBUG",
        log::Level::Info => "INFO",
        log::Level::Warn => "WARN",
        log::Level::Error => "ERROR",
    }
}

impl config::Host for PluginCtx {
    async fn get(&mut self, key: String) -> Option<String> {
        self.shared.settings.get(&key).map(str::to_owned)
    }
}

impl kv::Host for PluginCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        check_key(&key)?;
        self.shared.kv.get(&self.shared.id, &key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("values are at most {MAX_VALUE_BYTES} bytes"));
        }
        self.shared
            .kv
            .set(&self.shared.id, &key, &value, MAX_KEYS_PER_PLUGIN)
            .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        check_key(&key)?;
        self.shared.kv.delete(&self.shared.id, &key).await
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("keys are 1 to {MAX_KEY_BYTES} bytes"));
    }
    Ok(())
}

impl clock::Host for PluginCtx {
    async fn now(&mut self) -> String {
        (self.shared.clock)().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    async fn now_millis(&mut self) -> i64 {
        (self.shared.clock)().timestamp_millis()
    }
}

/// Caps the memory of one call's store: the sum over all its linear memories and tables,
/// not each one separately (wasmtime's `StoreLimits` caps each memory on its own, so a
/// component with several memories could multiply the cap).
pub struct MemoryLimiter {
    cap: usize,
    used: usize,
    pub(crate) hit: bool,
}

impl MemoryLimiter {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            hit: false,
        }
    }
}

/// The error a refused growth traps with.
#[derive(Debug, thiserror::Error)]
#[error("plugin memory limit of {0} bytes reached")]
pub struct MemoryLimitReached(pub usize);

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.cap {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitReached(self.cap)));
        }
        self.used += grow;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Count table slots at pointer size against the same budget.
        let grow = desired.saturating_sub(current).saturating_mul(8);
        if self.used.saturating_add(grow) > self.cap {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitReached(self.cap)));
        }
        self.used += grow;
        Ok(true)
    }

    fn memories(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn instances(&self) -> usize {
        64
    }
}

/// stdout and stderr of one call: kept up to a cap, the rest dropped silently (a write
/// error would make Rust's `eprintln!` panic and turn chatter into a crash).
#[derive(Clone)]
pub struct CappedBuffer {
    inner: Arc<Mutex<(Vec<u8>, usize, u64)>>,
}

impl CappedBuffer {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new((Vec::new(), cap, 0))),
        }
    }

    /// What was kept, and how many bytes were dropped.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut g = self.inner.lock().unwrap();
        let dropped = g.2;
        g.2 = 0;
        (std::mem::take(&mut g.0), dropped)
    }
}

/// The most lines of a crashed plugin's output its failure carries.
pub const CRASH_LINES: usize = 40;

impl CappedBuffer {
    /// The last [`CRASH_LINES`] non-empty lines kept, without taking them: what a plugin
    /// written without the SDK printed as it crashed (a Python or JavaScript traceback, a
    /// Rust panic message), minus Rust's hint about `RUST_BACKTRACE`, which a plugin's
    /// author cannot act on here.
    pub fn crash_report(&self) -> Option<String> {
        let g = self.inner.lock().unwrap();
        let text = String::from_utf8_lossy(&g.0);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
            .collect();
        let tail = &lines[lines.len().saturating_sub(CRASH_LINES)..];
        (!tail.is_empty()).then(|| tail.join("\n"))
    }
}

impl IsTerminal for CappedBuffer {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedBuffer {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    /// A synchronous stream: every write lands in the buffer at once, so a chatty plugin
    /// costs a copy per line rather than a round trip through a writer task.
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }
}

impl CappedBuffer {
    fn push(&self, buf: &[u8]) {
        let mut g = self.inner.lock().unwrap();
        let room = g.1.saturating_sub(g.0.len());
        let kept = room.min(buf.len());
        g.0.extend_from_slice(&buf[..kept]);
        g.2 += (buf.len() - kept) as u64;
    }
}

impl wasmtime_wasi::p2::OutputStream for CappedBuffer {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), wasmtime_wasi::p2::StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), wasmtime_wasi::p2::StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, wasmtime_wasi::p2::StreamError> {
        Ok(64 * 1024)
    }
}

impl wasmtime_wasi::p2::Pollable for CappedBuffer {
    fn ready<'life0, 'async_trait>(
        &'life0 mut self,
    ) -> Pin<Box<dyn std::future::Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async {})
    }
}

impl tokio::io::AsyncWrite for CappedBuffer {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cap is on the sum over memories: two memories growing 20 MiB each under a
    /// 32 MiB cap fail on the second, where a per-memory cap would let both through.
    #[test]
    fn the_memory_cap_is_summed_across_memories() {
        let engine = wasmtime::Engine::default();
        let wasm = wat::parse_str(
            r#"(module
                (memory $a 1)
                (memory $b 1)
                (func (export "grow_a") (result i32) (memory.grow $a (i32.const 320)))
                (func (export "grow_b") (result i32) (memory.grow $b (i32.const 320))))"#,
        )
        .unwrap();
        let module = wasmtime::Module::new(&engine, wasm).unwrap();
        let mut store = wasmtime::Store::new(&engine, MemoryLimiter::new(32 * 1024 * 1024));
        store.limiter(|l| l);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let grow_a = instance
            .get_typed_func::<(), i32>(&mut store, "grow_a")
            .unwrap();
        let grow_b = instance
            .get_typed_func::<(), i32>(&mut store, "grow_b")
            .unwrap();
        assert_eq!(
            grow_a.call(&mut store, ()).unwrap(),
            1,
            "20 MiB plus the first pages fit"
        );
        let err = grow_b.call(&mut store, ()).unwrap_err();
        assert!(
            err.downcast_ref::<MemoryLimitReached>().is_some(),
            "{err:#}"
        );
        assert!(store.data().hit);
    }

    #[test]
    fn output_past_the_cap_is_dropped_and_counted() {
        let buf = CappedBuffer::new(10);
        buf.push(b"hello\n");
        buf.push(b"world, and more\n");
        assert_eq!(buf.crash_report().as_deref(), Some("hello\nworl"));
        let (kept, dropped) = buf.take();
        assert_eq!(kept, b"hello\nworl");
        assert_eq!(dropped, 12);
    }

    #[test]
    fn a_crash_report_is_the_output_s_last_lines_without_rust_s_backtrace_hint() {
        let buf = CappedBuffer::new(64 * 1024);
        for i in 0..50 {
            buf.push(format!("line {i}\n").as_bytes());
        }
        buf.push(b"\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom\n");
        buf.push(
            b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
        );
        let report = buf.crash_report().unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), CRASH_LINES);
        assert_eq!(lines[0], "line 12");
        assert_eq!(
            &lines[CRASH_LINES - 2..],
            ["thread '<unnamed>' panicked at src/lib.rs:3:5:", "boom"]
        );
        assert_eq!(CappedBuffer::new(16).crash_report(), None);
    }
}
