//! Promotions: codes with a percent or fixed value per currency, their limits and uses.

use super::*;
use crate::audit::record;
use crate::ledger::Amount;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::access::Permission;
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{ProductId, PromotionId};
use keel_domain::money::Money;
use keel_domain::promotion::{PromoValue, Promotion};
use keel_store::Page;
use keel_store::catalog::{self as store, StoredPromotion};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::str::FromStr;
use utoipa::ToSchema;

const PROMOTION: AppError = AppError::NotFound { what: "promotion" };

/// How a promotion discounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromoKind {
    /// A percentage of the price.
    Percent,
    /// A fixed amount per currency.
    Fixed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PromotionView {
    pub id: PromotionId,
    pub code: String,
    pub kind: PromoKind,
    /// kind = percent: "10" is 10 %.
    pub percent: Option<String>,
    /// kind = fixed: one amount per currency.
    pub amounts: Vec<Amount>,
    /// Whether renewals keep the discount.
    pub recurring: bool,
    pub starts_on: Option<NaiveDate>,
    /// The last day it applies.
    pub ends_on: Option<NaiveDate>,
    pub max_uses: Option<u32>,
    pub max_uses_per_client: Option<u32>,
    pub uses: u32,
    /// Empty: every product.
    pub products: Vec<ProductId>,
    /// Empty: every cycle.
    pub cycles: Vec<BillingCycle>,
    pub created_at: DateTime<Utc>,
}

impl From<StoredPromotion> for PromotionView {
    fn from(s: StoredPromotion) -> PromotionView {
        let p = s.promotion;
        let (kind, percent, amounts) = match p.value {
            PromoValue::Percent(d) => (PromoKind::Percent, Some(d.normalize().to_string()), vec![]),
            PromoValue::Fixed(amounts) => (
                PromoKind::Fixed,
                None,
                amounts.into_iter().map(Amount::from).collect(),
            ),
        };
        PromotionView {
            id: s.id,
            code: p.code,
            kind,
            percent,
            amounts,
            recurring: p.recurring,
            starts_on: p.starts_on,
            ends_on: p.ends_on,
            max_uses: p.max_uses,
            max_uses_per_client: p.max_uses_per_client,
            uses: s.uses,
            products: p.products,
            cycles: p.cycles,
            created_at: s.created_at,
        }
    }
}

/// An amount in one currency, as people type it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountInput {
    #[schema(value_type = keel_domain::currency::Currency)]
    pub currency: String,
    #[schema(schema_with = keel_domain::money::schema::positive_amount)]
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromotionInput {
    #[schema(schema_with = keel_domain::promotion::code_schema)]
    pub code: String,
    pub kind: PromoKind,
    /// kind = percent: more than 0, at most 100.
    #[schema(schema_with = schemas::promo_percent)]
    pub percent: Option<String>,
    /// kind = fixed: one amount per currency, at least one.
    #[serde(default)]
    pub amounts: Vec<AmountInput>,
    /// Whether renewals keep the discount.
    #[serde(default)]
    pub recurring: bool,
    pub starts_on: Option<NaiveDate>,
    /// The last day it applies; not before `starts_on`.
    pub ends_on: Option<NaiveDate>,
    #[schema(minimum = 1)]
    pub max_uses: Option<u32>,
    #[schema(minimum = 1)]
    pub max_uses_per_client: Option<u32>,
    /// Empty: every product.
    #[serde(default)]
    #[schema(schema_with = schemas::unique_ids)]
    pub products: Vec<ProductId>,
    /// Cycle names; empty: every cycle.
    #[serde(default)]
    #[schema(schema_with = schemas::unique_cycles)]
    pub cycles: Vec<String>,
}

pub async fn create_promotion(
    app: &App,
    ctx: &Ctx,
    input: NewPromotionInput,
) -> Result<PromotionView, AppError> {
    create_promotion_answering(app, ctx, input, None).await
}

/// [`create_promotion`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_promotion_answering(
    app: &App,
    ctx: &Ctx,
    input: NewPromotionInput,
    answer: Option<crate::Answer>,
) -> Result<PromotionView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    for (field, day) in [("starts_on", input.starts_on), ("ends_on", input.ends_on)] {
        if let Some(day) = day {
            crate::billing::check_year(day, field)?;
        }
    }
    let code = keel_domain::promotion::validate_code(&input.code)
        .map_err(|e| invalid(e.code(), "code", e.to_string()))?;
    let value = match input.kind {
        PromoKind::Percent => {
            if !input.amounts.is_empty() {
                return Err(invalid(
                    "amounts_not_allowed",
                    "amounts",
                    "a percent promotion has a percent, not amounts",
                ));
            }
            let percent = input
                .percent
                .as_deref()
                .and_then(|p| Decimal::from_str(p.trim()).ok())
                .filter(|p| *p > Decimal::ZERO && *p <= Decimal::ONE_HUNDRED)
                .ok_or_else(|| {
                    invalid(
                        "invalid_percent",
                        "percent",
                        "a percent promotion needs a percent greater than 0 and at most 100",
                    )
                })?;
            PromoValue::Percent(percent)
        }
        PromoKind::Fixed => {
            if input.percent.is_some() {
                return Err(invalid(
                    "percent_not_allowed",
                    "percent",
                    "a fixed promotion has amounts per currency, not a percent",
                ));
            }
            if input.amounts.is_empty() {
                return Err(invalid(
                    "amounts_required",
                    "amounts",
                    "a fixed promotion needs at least one amount (one per currency)",
                ));
            }
            let mut amounts: Vec<Money> = Vec::with_capacity(input.amounts.len());
            for (i, a) in input.amounts.iter().enumerate() {
                let at = format!("amounts[{i}]");
                let c = currency(&format!("{at}.currency"), &a.currency)?;
                let money = amount(&format!("{at}.amount"), &a.amount, c)?;
                if money.minor() == 0 {
                    return Err(invalid(
                        "invalid_amount",
                        &format!("{at}.amount"),
                        "a discount amount must be greater than 0",
                    ));
                }
                if amounts.iter().any(|m| m.currency() == c) {
                    return Err(invalid(
                        "duplicate_amount",
                        &at,
                        format!("there is already an amount in {c}"),
                    ));
                }
                amounts.push(money);
            }
            PromoValue::Fixed(amounts)
        }
    };
    if let (Some(starts), Some(ends)) = (input.starts_on, input.ends_on)
        && ends < starts
    {
        return Err(invalid(
            "ends_before_start",
            "ends_on",
            format!("ends_on ({ends}) is before starts_on ({starts})"),
        ));
    }
    if input.max_uses == Some(0) {
        return Err(invalid(
            "invalid_max_uses",
            "max_uses",
            "max_uses must be at least 1 (absent: unlimited)",
        ));
    }
    if input.max_uses_per_client == Some(0) {
        return Err(invalid(
            "invalid_max_uses",
            "max_uses_per_client",
            "max_uses_per_client must be at least 1 (absent: unlimited)",
        ));
    }
    let mut cycles = Vec::with_capacity(input.cycles.len());
    for (i, name) in input.cycles.iter().enumerate() {
        let c = cycle(&format!("cycles[{i}]"), name)?;
        if cycles.contains(&c) {
            return Err(invalid(
                "duplicate_cycle",
                &format!("cycles[{i}]"),
                format!("{c} is listed twice"),
            ));
        }
        cycles.push(c);
    }
    let mut products = Vec::with_capacity(input.products.len());
    for (i, p) in input.products.iter().enumerate() {
        if products.contains(p) {
            return Err(invalid(
                "duplicate_product",
                &format!("products[{i}]"),
                format!("product {p} is listed twice"),
            ));
        }
        products.push(*p);
    }
    let promotion = Promotion {
        code,
        value,
        recurring: input.recurring,
        starts_on: input.starts_on,
        ends_on: input.ends_on,
        max_uses: input.max_uses,
        max_uses_per_client: input.max_uses_per_client,
        products,
        cycles,
    };
    let mut tx = app.db.begin().await?;
    let known = store::product_kinds(&mut tx, &promotion.products).await?;
    if let Some((i, p)) = promotion
        .products
        .iter()
        .enumerate()
        .find(|(_, p)| !known.iter().any(|(id, _)| id == *p))
    {
        return Err(invalid(
            "unknown_product",
            &format!("products[{i}]"),
            format!("there is no product {p}"),
        ));
    }
    let stored = store::create_promotion(&mut tx, &promotion, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "promotion.create",
        "promotion",
        stored.id,
        serde_json::to_value(PromotionView::from(stored.clone())).unwrap_or_default(),
    )
    .await?;
    let answered: PromotionView = stored.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

pub async fn list_promotions(
    app: &App,
    ctx: &Ctx,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<PromotionView>, AppError> {
    require_host_read(ctx)?;
    Ok(
        store::list_promotions(&app.db, crate::cursor(cursor)?, crate::page_limit(limit)?)
            .await?
            .map(Into::into),
    )
}

/// Codes are stored upper-case (see [`keel_domain::promotion::validate_code`]); a lookup
/// accepts any case.
fn canonical_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

pub async fn get_promotion(app: &App, ctx: &Ctx, code: &str) -> Result<PromotionView, AppError> {
    require_host_read(ctx)?;
    store::get_promotion_by_code(&app.db, &canonical_code(code))
        .await?
        .map(Into::into)
        .ok_or(PROMOTION)
}

/// Ends a promotion on `ends_on` (the last day it applies; default today). It is never
/// deleted: orders and services point at it.
pub async fn deactivate_promotion(
    app: &App,
    ctx: &Ctx,
    code: &str,
    ends_on: Option<NaiveDate>,
) -> Result<PromotionView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let ends_on = ends_on.unwrap_or_else(|| app.today());
    let mut tx = app.db.begin().await?;
    let (id, _, _) = store::promotion_by_code(&mut tx, &canonical_code(code))
        .await?
        .ok_or(PROMOTION)?;
    let stored = store::deactivate_promotion(&mut tx, id, ends_on).await?;
    record(
        &mut tx,
        app,
        ctx,
        "promotion.deactivate",
        "promotion",
        id,
        json!({ "code": stored.promotion.code, "ends_on": ends_on }),
    )
    .await?;
    tx.commit().await?;
    Ok(stored.into())
}
