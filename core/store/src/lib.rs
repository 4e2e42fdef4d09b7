//! keel-store: the only crate that writes SQL.
//!
//! Where things are:
//! - [`db`]: [`Db`] (a SQLite or PostgreSQL pool pair), [`Tx`] (a transaction on either),
//!   connection settings, migrations, and the [`on_tx!`]/[`on_db!`] macros that expand one
//!   query body for both engines.
//! - [`error`]: [`StoreError`], with unique-constraint violations turned into meaningful errors.
//! - [`constraints`]: the unique keys of the SQLite schema, read from its migrations and named
//!   as PostgreSQL names them, so a conflict names one constraint on both engines.
//! - [`ledger`]: accounts, journal entries and postings; the balance cache and its check.
//! - [`orders`]: orders, the invoice and services each one made.
//! - [`services`]: services with their history, chosen options and plan changes; the
//!   billing run's advance of their next period.
//! - [`invoices`]: invoices and lines (single and batched inserts), drafts, issuing, the
//!   paid amount and status, the late fee.
//! - [`payments`]: payments recorded against invoices, the billing run's wallet payments.
//! - [`attempts`]: payments started at a gateway plugin: what was asked, what the gateway
//!   answered, where each stands (pending ones hold dunning).
//! - [`credit_notes`]: credit notes against issued invoices.
//! - [`numbers`]: gap-free document number sequences.
//! - [`billing_run`]: the billing run's batched reads (due services, clients, wallets) and
//!   its run records.
//! - [`catalog`]: product groups, products (prices, options, add-ons, stock), tax rules,
//!   exchange rates, client groups and billing settings, promotions and their uses.
//! - [`clients`]: clients and contacts, every query behind a [`keel_domain::tenancy::Scope`].
//! - [`staff`]: staff users and API keys.
//! - [`idempotency`]: stored responses for `Idempotency-Key` replays.
//! - [`dunning`]: dunning policies and their assignment, the recorded steps of unpaid
//!   invoices and the holds of payments in flight.
//! - [`jobs`]: the durable job queue's table: enqueue in a transaction, leased claims,
//!   retries, parking, expired leases.
//! - [`webhooks`]: webhook endpoints, events, deliveries (claimed in order per subject) and
//!   their attempts.
//! - [`notifications`]: the notification outbox and clients' channel preferences.
//! - [`audit`]: the append-only, hash-chained audit log.
//! - [`site_secrets`]: secrets the installation made itself (the pay links' key), written
//!   once, insert-if-absent.
//! - [`seed`]: multi-row bulk inserts for large books, and the census that compares two books.
//! - [`bench`]: for the benchmarks only (keel-bench): scratch schemas and the bare
//!   `bench_*` tables of the baselines printed beside Keel's figures.
//!
//! Portable SQL: `$1` placeholders work on both engines; the few places where the dialects
//! differ say so next to the query.

pub mod attempts;
pub mod audit;
pub mod bench;
pub mod billing_run;
pub mod catalog;
pub mod clients;
pub mod constraints;
pub mod credit_notes;
pub mod db;
pub mod dunning;
pub mod error;
pub mod idempotency;
pub mod invoices;
pub mod jobs;
pub mod ledger;
pub mod notifications;
pub mod numbers;
pub mod orders;
pub mod page;
pub mod payments;
pub mod plugin_kv;
pub mod seed;
pub mod services;
pub mod site_secrets;
pub mod staff;
pub mod webhooks;

pub use db::{Db, Engine, Tx};
pub use error::StoreError;
pub use page::{Cursor, Page};
