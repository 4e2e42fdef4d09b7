//! Tax rules: a rate per country (and region) and tax class, the host's configuration.

use super::*;
use crate::audit::record;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::access::Permission;
use keel_domain::ids::TaxRuleId;
use keel_domain::tax::{TaxLevel, TaxRule};
use keel_domain::text::limits;
use keel_store::catalog::{self as store, StoredTaxRule};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::str::FromStr;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaxRuleView {
    pub id: TaxRuleId,
    /// The products' tax class the rule applies to.
    pub tax_class: String,
    pub name: String,
    /// ISO 3166-1 alpha-2, or "*" for any country.
    pub country: String,
    pub region: Option<String>,
    pub level: TaxLevel,
    /// Percent, as a decimal: "15", "8.875".
    pub rate: String,
    pub compound: bool,
    pub created_at: DateTime<Utc>,
}

impl From<StoredTaxRule> for TaxRuleView {
    fn from(t: StoredTaxRule) -> TaxRuleView {
        TaxRuleView {
            id: t.id,
            tax_class: t.tax_class,
            name: t.rule.name,
            country: t.rule.country,
            region: t.rule.region,
            level: t.rule.level,
            rate: t.rule.rate.normalize().to_string(),
            compound: t.rule.compound,
            created_at: t.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTaxRuleInput {
    /// Printed on invoices: "VAT".
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    /// ISO 3166-1 alpha-2, or "*" for any country.
    #[schema(schema_with = schemas::tax_country)]
    pub country: String,
    /// A region of the country; absent: the whole country.
    #[schema(schema_with = keel_domain::text::schema::region)]
    pub region: Option<String>,
    pub level: TaxLevel,
    /// Percent, 0 to 100: "15".
    #[schema(schema_with = schemas::tax_rate)]
    pub rate: String,
    /// Second level only: charged on the net plus the first tax.
    #[serde(default)]
    pub compound: bool,
    /// The products' tax class it applies to; default "standard".
    #[schema(schema_with = schemas::tax_class)]
    pub tax_class: Option<String>,
}

pub(super) fn tax_class(field: &str, value: &str) -> Result<String, AppError> {
    let v = value.trim();
    let ok = (1..=TAX_CLASS_MAX).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(
            "invalid_tax_class",
            field,
            "a tax class is 1 to 50 lower-case letters, digits, '_' or '-' (\"standard\")",
        ))
    }
}

pub async fn create_tax_rule(
    app: &App,
    ctx: &Ctx,
    input: NewTaxRuleInput,
) -> Result<TaxRuleView, AppError> {
    create_tax_rule_answering(app, ctx, input, None).await
}

/// [`create_tax_rule`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_tax_rule_answering(
    app: &App,
    ctx: &Ctx,
    input: NewTaxRuleInput,
    answer: Option<crate::Answer>,
) -> Result<TaxRuleView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let class = tax_class(
        "tax_class",
        input.tax_class.as_deref().unwrap_or("standard"),
    )?;
    let name = text("name", &input.name, limits::CATALOG_NAME)?;
    let country = input.country.trim().to_ascii_uppercase();
    if country != "*" && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(invalid(
            "invalid_country",
            "country",
            "the country must be an ISO 3166-1 alpha-2 code such as ZW, or * for any country",
        ));
    }
    let region = input
        .region
        .as_deref()
        .map(|r| text("region", r, limits::REGION))
        .transpose()?
        .filter(|r| !r.is_empty());
    if country == "*" && region.is_some() {
        return Err(invalid(
            "invalid_region",
            "region",
            "a rule for any country (*) cannot name a region; name the country too",
        ));
    }
    let rate = Decimal::from_str(input.rate.trim()).map_err(|_| {
        invalid(
            "invalid_tax_rate",
            "rate",
            format!(
                "{:?} is not a decimal number such as 15 or 8.875",
                input.rate
            ),
        )
    })?;
    let rule = TaxRule {
        name,
        country,
        region,
        level: input.level,
        rate,
        compound: input.compound,
    };
    rule.validate()
        .map_err(|e| invalid(e.code(), "rate", e.to_string()))?;
    let mut tx = app.db.begin().await?;
    let stored = store::create_tax_rule(&mut tx, &class, &rule, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "tax_rule.create",
        "tax_rule",
        stored.id,
        json!({
            "tax_class": stored.tax_class,
            "name": stored.rule.name,
            "country": stored.rule.country,
            "region": stored.rule.region,
            "level": stored.rule.level,
            "rate": stored.rule.rate.normalize().to_string(),
            "compound": stored.rule.compound,
        }),
    )
    .await?;
    let answered: TaxRuleView = stored.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

pub async fn list_tax_rules(app: &App, ctx: &Ctx) -> Result<Vec<TaxRuleView>, AppError> {
    require_host_read(ctx)?;
    Ok(store::list_tax_rules(&app.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Deletes a tax rule; invoices already issued keep the names and rates they copied.
pub async fn delete_tax_rule(app: &App, ctx: &Ctx, id: TaxRuleId) -> Result<(), AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut tx = app.db.begin().await?;
    if !store::delete_tax_rule(&mut tx, id).await? {
        return Err(AppError::NotFound { what: "tax rule" });
    }
    record(
        &mut tx,
        app,
        ctx,
        "tax_rule.delete",
        "tax_rule",
        id,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
