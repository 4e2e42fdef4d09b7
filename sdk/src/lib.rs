//! # keel-sdk: write Keel plugins
//!
//! A Keel plugin is a WebAssembly component (`wasm32-wasip2`) that the kernel runs in a
//! sandbox: it reaches only the hosts its `plugin.toml` declares and the admin grants, sees
//! only its own settings, and gets a fresh instance for every call. This crate is all a
//! plugin author depends on:
//!
//! - one trait per kind, [`Gateway`](gateway::Gateway), [`Registrar`](registrar::Registrar),
//!   [`Notifier`](notifier::Notifier), [`Provisioner`](provisioner::Provisioner),
//!   [`Assistant`](assistant::Assistant), whose optional methods default to
//!   [`PluginError::Unsupported`];
//! - one export macro per kind: [`export_gateway!`], [`export_registrar!`],
//!   [`export_notifier!`], [`export_provisioner!`], [`export_assistant!`];
//! - helpers over the kernel's imports: [`http`] (an HTTP client with JSON, form and XML
//!   bodies), [`config`] (settings and secrets), [`kv`] (private storage), [`log`] (the
//!   [`info!`] family of macros) and [`clock`];
//! - [`digest`]: SHA-256/512, HMAC, hex, and constant-time comparison of signatures;
//! - for checking what a provider sends back: [`http::form_decode_strict`] (form fields in
//!   order, decoded exactly once, or an error; [`InboundRequest::form_strict`] and
//!   [`http::Response::form_strict`] apply it to a callback's or a reply's body),
//!   [`http::Origin`] (is this URL on the host I meant?) and [`Money::to_major`] /
//!   [`Money::from_major`] (minor units to and from `"25.00"` at the currency's exponent,
//!   from the kernel's ISO 4217 table in [`currency`], exactly);
//! - [`ids`]: newtypes for references, invoice, service and provider ids, and a checked
//!   [`DomainName`](ids::DomainName);
//! - [`testing`], a fake kernel for fast native unit tests of a plugin's logic, and
//!   [`fixtures`], the kernel's inputs (a payment request, a callback, a message) to start
//!   them from.
//!
//! To test the real component in the real host, use `keel-testkit`'s plugin harness; see
//! `examples/webhook-notifier/README.md` for the whole path from `cargo new` to a passing
//! test.
//!
//! ## Quick start
//!
//! ```
//! use keel_sdk::notifier::{Message, Notifier, Receipt, DeliveryStatus};
//! use keel_sdk::{Features, PluginError, PluginInfo};
//!
//! struct Echo;
//!
//! impl Notifier for Echo {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("Echo", env!("CARGO_PKG_VERSION"), "Logs every message", Features::empty())
//!     }
//!
//!     fn send(msg: Message) -> Result<Receipt, PluginError> {
//!         keel_sdk::info!("to {}: {}", msg.to, msg.body);
//!         Ok(Receipt { provider_id: msg.reference, status: DeliveryStatus::Sent })
//!     }
//! }
//!
//! // In a plugin crate (crate-type = ["cdylib"]), export it:
//! // keel_sdk::export_notifier!(Echo);
//! # fn main() {}
//! ```
//!
//! The WIT contract is `wit/` at the repository root (package `keel:plugin@0.2.0`); this
//! SDK re-exports its types under plain names, with helper methods.

extern crate self as keel_sdk;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[doc(hidden)]
pub mod bindings;

mod backend;
pub mod clock;
pub mod config;
pub mod currency;
pub mod digest;
mod error;
mod export;
pub mod fixtures;
pub mod http;
pub mod ids;
pub mod kv;
pub mod log;
#[cfg(not(target_family = "wasm"))]
pub mod testing;
mod types;

pub mod assistant;
pub mod gateway;
pub mod notifier;
pub mod provisioner;
pub mod registrar;

pub use config::Secret;
pub use types::{
    Address, AmountError, Contact, Features, Headers, InboundReply, InboundRequest, Money,
    PluginError, PluginInfo, RetryHint,
};

/// The WIT package version this SDK builds plugins for.
pub const WIT_VERSION: &str = "0.2.0";
