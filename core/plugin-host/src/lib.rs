//! # keel-plugin-host
//!
//! Runs Keel's plugins: WebAssembly components of the `keel:plugin` WIT package, in
//! wasmtime, sandboxed. The only crate in Keel that names wasmtime; the rest sees
//! [`Plugin`] and the per-kind handles ([`gateway::GatewayPlugin`], …) speaking plain
//! data and [`PluginFailure`].
//!
//! - One [`PluginHost`] per process: one engine (pooling allocator sized to
//!   [`HostConfig::max_concurrent_calls`] behind a semaphore, epoch interruption with a
//!   10 ms ticker, no component-model concurrency), one linker (WASI p2 with nothing
//!   granted, then the `keel:plugin` imports).
//! - [`PluginHost::load`] compiles a component once (cached on disk by content hash and
//!   engine), checks the WIT version it was built against, pre-instantiates it per kind
//!   and calls `describe`.
//! - Every call gets a fresh store: memory capped across all memories, CPU bounded by a
//!   tick budget, wall time by a timeout, outbound HTTP by the plugin's [`Grant`], kv and
//!   settings scoped to the plugin. Traps, limits and timeouts become [`PluginFailure`]s
//!   and `keel_plugin_*` counters; the caller keeps running.
//! - [`manifest`] reads `plugin.toml`; [`settings::validate`] checks a `[plugins.<id>]`
//!   section against it.
//! - [`Plugin::call_json`] runs any operation by name with JSON input and output
//!   ([`json_call`]), for `keel plugin call` and `keel plugin test`.

mod bindings;
mod compat;
mod ctx;
mod failure;
pub mod grant;
mod host;
pub mod json_call;
mod kinds;
pub mod kv;
pub mod manifest;
mod outbound;
pub mod settings;

pub use bindings::v0_2::host::keel::plugin::types::{
    Address, Contact, Features, InboundReply, InboundRequest, Money, PluginInfo,
};
pub use ctx::LogLimits;
pub use failure::{LoadError, PluginError, PluginFailure, RetryHint};
pub use grant::Grant;
pub use host::{Captured, ClockFn, EPOCH_TICK, HostConfig, Plugin, PluginHost, SUPPORTED_WIT};
pub use json_call::{JsonCall, Operation};
pub use kinds::{assistant, gateway, notifier, provisioner, registrar};
pub use manifest::{Kind, Manifest};
pub use outbound::{HttpLimits, OriginOverrides, ResolverOverrides};
pub use settings::{Enabled, Settings};
