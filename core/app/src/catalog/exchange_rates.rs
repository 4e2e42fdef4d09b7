//! Exchange rates between currencies, dated, the host's configuration.

use super::*;
use crate::audit::record;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::access::Permission;
use keel_domain::currency::Currency;
use keel_store::Page;
use keel_store::catalog::{self as store, ExchangeRate, RateFilter};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::str::FromStr;
use utoipa::ToSchema;

/// 1 `base` = `rate` `quote` from `valid_from` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExchangeRateView {
    pub id: i64,
    pub base: Currency,
    pub quote: Currency,
    /// A decimal: "26.5".
    pub rate: String,
    pub valid_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<ExchangeRate> for ExchangeRateView {
    fn from(r: ExchangeRate) -> ExchangeRateView {
        ExchangeRateView {
            id: r.id,
            base: r.base,
            quote: r.quote,
            rate: r.rate.normalize().to_string(),
            valid_from: r.valid_from,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExchangeRateInput {
    #[schema(value_type = keel_domain::currency::Currency)]
    pub base: String,
    #[schema(value_type = keel_domain::currency::Currency)]
    pub quote: String,
    /// 1 base = rate quote; greater than 0.
    #[schema(schema_with = schemas::exchange_rate)]
    pub rate: String,
    /// Default: now.
    pub valid_from: Option<DateTime<Utc>>,
}

/// Adds an exchange rate from `valid_from` (default now). Rates are never edited: a newer one
/// takes over from its own `valid_from`.
pub async fn add_exchange_rate(
    app: &App,
    ctx: &Ctx,
    input: NewExchangeRateInput,
) -> Result<ExchangeRateView, AppError> {
    add_exchange_rate_answering(app, ctx, input, None).await
}

/// [`add_exchange_rate`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn add_exchange_rate_answering(
    app: &App,
    ctx: &Ctx,
    input: NewExchangeRateInput,
    answer: Option<crate::Answer>,
) -> Result<ExchangeRateView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    if let Some(from) = input.valid_from {
        crate::billing::check_year(from.date_naive(), "valid_from")?;
    }
    let base = currency("base", &input.base)?;
    let quote = currency("quote", &input.quote)?;
    if base == quote {
        return Err(invalid(
            "same_currency",
            "quote",
            "a rate converts between two different currencies",
        ));
    }
    let rate = Decimal::from_str(input.rate.trim())
        .ok()
        .filter(|r| *r > Decimal::ZERO)
        .ok_or_else(|| {
            invalid(
                "invalid_exchange_rate",
                "rate",
                format!("{:?} is not a decimal number greater than 0", input.rate),
            )
        })?;
    let now = app.now();
    let valid_from = keel_store::db::truncate(input.valid_from.unwrap_or(now));
    let mut tx = app.db.begin().await?;
    let stored = store::add_exchange_rate(&mut tx, base, quote, rate, valid_from, now).await?;
    record(
        &mut tx,
        app,
        ctx,
        "exchange_rate.create",
        "exchange_rate",
        stored.id,
        json!({
            "base": base,
            "quote": quote,
            "rate": stored.rate.normalize().to_string(),
            "valid_from": stored.valid_from,
        }),
    )
    .await?;
    let answered: ExchangeRateView = stored.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

/// Filters an exchange-rate list may carry.
#[derive(Debug, Clone, Default)]
pub struct ListRates {
    pub base: Option<String>,
    pub quote: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list_exchange_rates(
    app: &App,
    ctx: &Ctx,
    q: &ListRates,
) -> Result<Page<ExchangeRateView>, AppError> {
    require_host_read(ctx)?;
    let filter = RateFilter {
        base: q.base.as_deref().map(|c| currency("base", c)).transpose()?,
        quote: q
            .quote
            .as_deref()
            .map(|c| currency("quote", c))
            .transpose()?,
    };
    Ok(store::list_exchange_rates(
        &app.db,
        filter,
        crate::cursor(q.cursor.as_deref())?,
        crate::page_limit(q.limit)?,
    )
    .await?
    .map(Into::into))
}
