//! Catalog use cases, one file per aggregate, re-exported here:
//! - `products`: product groups, products (prices, options, add-ons, stock), quotes;
//! - `tax_rules`: tax rules; `exchange_rates`: exchange rates;
//! - `client_groups`: client groups and a client's billing settings;
//! - `promotions`: promotion codes.
//!
//! This file keeps what they share: the input patterns and their OpenAPI schemas, parsing of
//! amounts, currencies and cycles, and who may read the host's configuration.
//!
//! Who sees what:
//! - Products and product groups need `catalog:read`, which every scope holds (the order
//!   form needs them). Outside the host scope only what can be ordered is visible: a retired
//!   product or a hidden group is "not found".
//! - Tax rules, exchange rates, client groups and promotions are the host's configuration:
//!   read in the host scope only (a promotion list would give every code away).
//! - Every write needs `catalog:write` (host staff who manage pricing).
//!
//! Input comes as text where people type it (amounts, currencies, cycles, rates) and is
//! parsed here, exactly, so each refusal names its field: `prices[1].price` with
//! `too_many_decimals`, `options[0].values` with `wrong_value_count`.

mod client_groups;
mod exchange_rates;
mod products;
mod promotions;
mod tax_rules;

pub use client_groups::*;
pub use exchange_rates::*;
pub use products::*;
pub use promotions::*;
pub use tax_rules::*;

use crate::{AppError, Ctx};
use keel_domain::access::Permission;
use keel_domain::catalog::CatalogError;
use keel_domain::currency::Currency;
use keel_domain::cycle::BillingCycle;
use keel_domain::money::Money;
use keel_domain::tenancy::Scope;
use keel_domain::text::{Rule, limits};
use serde::{Deserialize, Deserializer};
use std::str::FromStr;

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value, for
/// changes that can clear a field.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> AppError {
    AppError::invalid(code, Some(field), message)
}

/// Text by its stored-text rule (`keel_domain::text::limits`), returned trimmed as it is
/// stored. A required value that shows nothing stays `invalid_field` ("must not be empty");
/// any other break of the rule is `invalid_text` naming the problem.
fn text(field: &str, value: &str, rule: Rule) -> Result<String, AppError> {
    AppError::check_text(field, value, rule)?;
    Ok(value.trim().to_string())
}

/// An optional identifier-like text (plugin ids): trimmed, non-empty when given.
fn optional_id(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    value
        .map(|v| text(field, v, limits::IDENTIFIER))
        .transpose()
}

/// A slug: lower-case letters and digits, words joined by single dashes ("vps-large").
pub const SLUG_PATTERN: &str = "^[a-z0-9]+(?:-[a-z0-9]+)*$";

/// The longest slug.
pub const SLUG_MAX: usize = 100;

/// A tax class: lower-case letters, digits, `_` and `-` ("standard").
pub const TAX_CLASS_PATTERN: &str = "^[a-z0-9_-]+$";

/// The longest tax class.
pub const TAX_CLASS_MAX: usize = 50;

/// Days before the due date an invoice is issued.
pub const LEAD_DAYS: std::ops::RangeInclusive<i64> = 0..=90;

/// The day of the month a client's services fall due.
pub const BILLING_DAYS: std::ops::RangeInclusive<i64> = 1..=31;

/// A tax rule's country: an ISO 3166-1 alpha-2 code (any case) or `*` for every country.
pub const TAX_COUNTRY_PATTERN: &str = "^(?:[*]|[A-Za-z]{2})$";

/// An exchange rate: a decimal greater than 0 (at most 12 digits each side of the point).
pub const EXCHANGE_RATE_PATTERN: &str =
    r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,12})?|0?\.[0-9]{0,11}[1-9][0-9]{0,11})$";

/// A promotion's percent: more than 0, at most 100.
pub const PROMO_PERCENT_PATTERN: &str =
    r"^(?:100(?:\.0{1,10})?|[1-9][0-9]?(?:\.[0-9]{1,10})?|0?\.[0-9]{0,9}[1-9][0-9]{0,9})$";

/// The schemas of the rules above, for `#[schema(schema_with = …)]`.
pub mod schemas {
    use crate::schema::{integer, string};
    use utoipa::openapi::Object;

    pub fn slug() -> Object {
        string(
            super::SLUG_PATTERN,
            Some(super::SLUG_MAX),
            "Lower-case letters and digits, words joined by single dashes; unique.",
        )
    }
    pub fn tax_class() -> Object {
        string(
            super::TAX_CLASS_PATTERN,
            Some(super::TAX_CLASS_MAX),
            "Lower-case letters, digits, `_` and `-` (\"standard\").",
        )
    }
    pub fn lead_days() -> Object {
        integer(
            super::LEAD_DAYS,
            "Days before the due date an invoice is issued.",
        )
    }
    pub fn billing_day() -> Object {
        integer(
            super::BILLING_DAYS,
            "The day of the month services fall due.",
        )
    }
    pub fn tax_country() -> Object {
        string(
            super::TAX_COUNTRY_PATTERN,
            None,
            "ISO 3166-1 alpha-2, or \"*\" for any country.",
        )
    }
    pub fn tax_rate() -> Object {
        string(
            keel_domain::tax::RATE_PATTERN,
            None,
            "Percent, 0 to 100, at most 6 decimals: \"15\", \"8.875\".",
        )
    }
    pub fn exchange_rate() -> Object {
        string(
            super::EXCHANGE_RATE_PATTERN,
            None,
            "1 base = rate quote; a decimal greater than 0: \"26.5\".",
        )
    }
    pub fn promo_percent() -> Object {
        string(
            super::PROMO_PERCENT_PATTERN,
            None,
            "kind = percent: more than 0, at most 100.",
        )
    }
    /// Product ids, each at most once.
    pub fn unique_ids() -> utoipa::openapi::Array {
        use utoipa::PartialSchema;
        utoipa::openapi::ArrayBuilder::new()
            .items(keel_domain::ids::ProductId::schema())
            .unique_items(true)
            .build()
    }
    /// Billing cycles, each at most once.
    pub fn unique_cycles() -> utoipa::openapi::Array {
        use utoipa::PartialSchema;
        utoipa::openapi::ArrayBuilder::new()
            .items(keel_domain::cycle::BillingCycle::schema())
            .unique_items(true)
            .build()
    }
    pub fn stock() -> Object {
        integer(0..=i64::MAX, "Units left; absent or null: unlimited.")
    }
}

fn currency(field: &str, code: &str) -> Result<Currency, AppError> {
    Currency::from_code(code.trim()).map_err(|e| invalid(e.code(), field, e.to_string()))
}

fn cycle(field: &str, name: &str) -> Result<BillingCycle, AppError> {
    BillingCycle::from_str(name.trim()).map_err(|e| invalid(e.code(), field, e.to_string()))
}

/// An amount typed by a person, exact in the currency and not negative.
fn amount(field: &str, text: &str, currency: Currency) -> Result<Money, AppError> {
    let money =
        Money::parse(text, currency).map_err(|e| invalid(e.code(), field, e.to_string()))?;
    if money.minor() < 0 {
        return Err(invalid(
            "negative_amount",
            field,
            format!("{field} must not be negative"),
        ));
    }
    Ok(money)
}

fn catalog_error(e: CatalogError) -> AppError {
    AppError::invalid(e.code(), Some(e.field()), e.to_string())
}

/// Host-only configuration (tax rules, rates, client groups, promotions): readable with
/// `catalog:read` in the host scope only.
fn require_host_read(ctx: &Ctx) -> Result<(), AppError> {
    ctx.require(Permission::CatalogRead)?;
    if ctx.actor.scope() == Scope::Host {
        Ok(())
    } else {
        Err(AppError::Forbidden {
            permission: "catalog:read in the host scope",
        })
    }
}

/// Whether the actor sees only what can be ordered.
fn visible_only(ctx: &Ctx) -> bool {
    ctx.actor.scope() != Scope::Host
}
