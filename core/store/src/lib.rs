//! keel-store: the only crate that writes SQL.
//!
//! Where things are:
//! - [`db`]: [`Db`] (a SQLite or PostgreSQL pool pair), [`Tx`] (a transaction on either),
//!   connection settings, migrations, and the [`on_tx!`]/[`on_db!`] macros that expand one
//!   query body for both engines.
//! - [`error`]: [`StoreError`], with unique-constraint violations turned into meaningful errors.
//! - [`ledger`]: accounts, journal entries and postings; the balance cache and its check.
//! - [`clients`]: clients and contacts, every query behind a [`keel_domain::tenancy::Scope`].
//! - [`staff`]: staff users and API keys.
//! - [`idempotency`]: stored responses for `Idempotency-Key` replays.
//! - [`audit`]: the append-only, hash-chained audit log.
//!
//! Portable SQL: `$1` placeholders work on both engines; the few places where the dialects
//! differ say so next to the query.

pub mod audit;
pub mod clients;
pub mod db;
pub mod error;
pub mod idempotency;
pub mod ledger;
pub mod page;
pub mod plugin_kv;
pub mod staff;

pub use db::{Db, Engine, Tx};
pub use error::StoreError;
pub use page::{Cursor, Page};
