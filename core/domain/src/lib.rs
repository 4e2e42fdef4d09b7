//! keel-domain: the pure core of Keel. No I/O, no async, no SQL.
//!
//! Where things are:
//! - [`currency`]: the ISO 4217 table (code, numeric code, exponent).
//! - [`money`]: [`Money`], integer minor units bound to a currency; checked arithmetic,
//!   decimal conversion with half-away-from-zero rounding, allocation, parsing, formatting.
//! - [`cycle`]: billing cycles, due dates from the anniversary (and the billing day kept
//!   beside it) with month-end clamping, periods and the remaining fraction used for proration.
//! - [`catalog`]: products, prices per (currency, cycle), options, and the quote of one item.
//! - [`dunning`]: dunning policies as data: reminders, overdue notices, late fee,
//!   suspension, termination, cancellation, dated from a due date.
//! - [`contact`]: validated email, ISO 3166 country, E.164 phone and language values.
//! - [`ledger`]: account kinds, journal entries built balanced per currency, the
//!   idempotency comparison that names what differs.
//! - [`client`]: clients and contacts: records, API input shapes, cross-field rules.
//! - [`access`]: staff roles, permissions, API key scopes and the acting [`access::Actor`].
//! - [`lifecycle`]: product, order, service and invoice states and their legal transitions.
//! - [`ids`]: typed identifiers.
//! - [`network`]: which IP addresses are public, and admin-allowed networks (the outbound
//!   guard of plugins and webhooks against SSRF).
//! - [`invoice`]: invoice line arithmetic: quantity, discount, per-line tax, totals.
//! - [`numbering`]: invoice and credit-note number formats and their counter scopes.
//! - [`promotion`]: promotion codes: when one may be used and the discount it gives.
//! - [`proration`]: plan changes inside a period, and aligning a new service to a billing day.
//! - [`tax`]: which tax rules apply to a place, and the exact tax of one line.
//! - [`tenancy`]: who owns a client (the host or a reseller) and the scope a caller sees.
//! - [`text`]: the input rule for stored text (names, labels, notes, references) and the
//!   table of every field's maximum length.
//! - [`dates`]: the years a date given to Keel may fall in.

pub mod access;
pub mod catalog;
pub mod client;
pub mod contact;
pub mod currency;
pub mod cycle;
pub mod dates;
pub mod dunning;
pub mod ids;
pub mod invoice;
pub mod ledger;
pub mod lifecycle;
pub mod money;
pub mod network;
pub mod numbering;
pub mod promotion;
pub mod proration;
pub mod tax;
pub mod tenancy;
pub mod text;

pub use currency::Currency;
pub use money::{Money, MoneyError};
