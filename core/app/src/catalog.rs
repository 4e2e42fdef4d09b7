//! Catalog use cases: product groups, products (prices, options, add-ons), quotes, tax rules,
//! exchange rates, client groups and a client's billing settings, promotions.
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

use crate::audit::record;
use crate::ledger::Amount;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::access::Permission;
use keel_domain::billing::BillingCycle;
use keel_domain::catalog::{
    CatalogError, OptionChoice, OptionValue, Price, Product, ProductOption, Quote, QuotedOption,
    cycle_allowed,
};
use keel_domain::currency::Currency;
use keel_domain::ids::{
    ClientGroupId, ClientId, OptionId, OptionValueId, ProductGroupId, ProductId, PromotionId,
    TaxRuleId,
};
use keel_domain::lifecycle::{OptionKind, PayType, ProductKind};
use keel_domain::money::Money;
use keel_domain::promotion::{PromoValue, Promotion};
use keel_domain::tax::{TaxLevel, TaxRule};
use keel_domain::tenancy::Scope;
use keel_domain::text::{Rule, limits};
use keel_store::Page;
use keel_store::catalog::{
    self as store, ClientBillingSettings, ClientGroup, ClientGroupFields, EffectiveBillingSettings,
    ExchangeRate, NewOption, NewOptionValue, NewProduct, NewProductGroup, ProductFilter,
    ProductGroup, ProductUpdate, RateFilter, StoredPromotion, StoredTaxRule,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use std::collections::HashSet;
use std::str::FromStr;
use utoipa::ToSchema;

const PRODUCT: AppError = AppError::NotFound { what: "product" };
const CLIENT_GROUP: AppError = AppError::NotFound {
    what: "client group",
};
const PROMOTION: AppError = AppError::NotFound { what: "promotion" };

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value, for
/// changes that can clear a field.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

// ------------------------------------------------------------------------------------
// Views: what the API shows
// ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductGroupView {
    pub id: ProductGroupId,
    pub name: String,
    pub slug: String,
    pub hidden: bool,
    pub sort_order: i64,
    pub created_at: DateTime<Utc>,
}

impl From<ProductGroup> for ProductGroupView {
    fn from(g: ProductGroup) -> ProductGroupView {
        ProductGroupView {
            id: g.id,
            name: g.name,
            slug: g.slug,
            hidden: g.hidden,
            sort_order: g.sort_order,
            created_at: g.created_at,
        }
    }
}

/// A price in one (currency, cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PriceView {
    pub currency: Currency,
    pub cycle: BillingCycle,
    /// Per period (once for one_time).
    pub price: Amount,
    pub setup_fee: Amount,
}

impl From<Price> for PriceView {
    fn from(p: Price) -> PriceView {
        PriceView {
            currency: p.currency,
            cycle: p.cycle,
            price: p.price.into(),
            setup_fee: p.setup_fee.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OptionValueView {
    pub id: OptionValueId,
    pub name: String,
    pub prices: Vec<PriceView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OptionView {
    pub id: OptionId,
    pub name: String,
    pub kind: OptionKind,
    pub min_qty: i64,
    pub max_qty: Option<i64>,
    pub values: Vec<OptionValueView>,
}

impl From<ProductOption> for OptionView {
    fn from(o: ProductOption) -> OptionView {
        OptionView {
            id: o.id,
            name: o.name,
            kind: o.kind,
            min_qty: o.min_qty,
            max_qty: o.max_qty,
            values: o
                .values
                .into_iter()
                .map(|v: OptionValue| OptionValueView {
                    id: v.id,
                    name: v.name,
                    prices: v.prices.into_iter().map(Into::into).collect(),
                })
                .collect(),
        }
    }
}

/// A product with everything the order form needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProductView {
    pub id: ProductId,
    pub group_id: ProductGroupId,
    pub kind: ProductKind,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub pay_type: PayType,
    /// Absent: not taxed.
    pub tax_class: Option<String>,
    pub provisioner: Option<String>,
    pub registrar: Option<String>,
    /// Absent: unlimited.
    pub stock: Option<i64>,
    pub sold: i64,
    /// Units left to order; absent: unlimited.
    pub available: Option<i64>,
    /// Set once retired: readable, no longer orderable.
    pub retired_at: Option<DateTime<Utc>>,
    pub prices: Vec<PriceView>,
    pub options: Vec<OptionView>,
    /// Add-on products offered with this one.
    pub addons: Vec<ProductId>,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> ProductView {
        ProductView {
            id: p.id,
            group_id: p.group_id,
            kind: p.kind,
            name: p.name,
            slug: p.slug,
            description: p.description,
            pay_type: p.pay_type,
            tax_class: p.tax_class,
            provisioner: p.provisioner,
            registrar: p.registrar,
            available: p.stock.map(|s| (s - p.sold).max(0)),
            stock: p.stock,
            sold: p.sold,
            retired_at: p.retired_at,
            prices: p.prices.into_iter().map(Into::into).collect(),
            options: p.options.into_iter().map(Into::into).collect(),
            addons: p.addons,
        }
    }
}

/// One chosen option, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuotedOptionView {
    pub option_id: OptionId,
    pub value_id: OptionValueId,
    pub quantity: i64,
    /// "Extra disk: 3 × 10 GB", as the invoice line reads.
    pub description: String,
    pub unit: Amount,
    pub recurring: Amount,
    pub setup_fee: Amount,
}

impl From<QuotedOption> for QuotedOptionView {
    fn from(o: QuotedOption) -> QuotedOptionView {
        QuotedOptionView {
            option_id: o.option_id,
            value_id: o.value_id,
            quantity: o.quantity,
            description: o.description,
            unit: o.unit.into(),
            recurring: o.recurring.into(),
            setup_fee: o.setup_fee.into(),
        }
    }
}

/// What one item of a product costs, before promotions and tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct QuoteView {
    pub product_id: ProductId,
    pub currency: Currency,
    pub cycle: BillingCycle,
    /// The product alone, per period.
    pub base: Amount,
    pub base_setup_fee: Amount,
    pub options: Vec<QuotedOptionView>,
    /// Product and options, per period: what each renewal bills.
    pub recurring: Amount,
    /// Product and options, billed once on the first invoice.
    pub setup_fee: Amount,
    /// The first invoice: one period plus the setup fees.
    pub first_invoice: Amount,
}

impl QuoteView {
    fn new(product_id: ProductId, q: Quote) -> Result<QuoteView, AppError> {
        let first = q.recurring.checked_add(q.setup_fee)?;
        Ok(QuoteView {
            product_id,
            currency: q.currency,
            cycle: q.cycle,
            base: q.base.into(),
            base_setup_fee: q.base_setup_fee.into(),
            options: q.options.into_iter().map(Into::into).collect(),
            recurring: q.recurring.into(),
            setup_fee: q.setup_fee.into(),
            first_invoice: first.into(),
        })
    }
}

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

/// A client group; absent settings fall back to the host's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClientGroupView {
    pub id: ClientGroupId,
    pub name: String,
    pub currency: Option<Currency>,
    pub tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ClientGroup> for ClientGroupView {
    fn from(g: ClientGroup) -> ClientGroupView {
        ClientGroupView {
            id: g.id,
            name: g.name,
            currency: g.currency,
            tax_exempt: g.tax_exempt,
            wallet_auto_apply: g.wallet_auto_apply,
            invoice_lead_days: g.invoice_lead_days,
            billing_day: g.billing_day,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// A client's own billing settings: absent inherits from the group, then the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    pub group_id: Option<ClientGroupId>,
    pub wallet_auto_apply: Option<bool>,
    /// 0 to 90 days before the due date.
    pub invoice_lead_days: Option<u32>,
    /// 1 to 31.
    pub billing_day: Option<u32>,
}

impl From<ClientBillingSettings> for BillingSettings {
    fn from(s: ClientBillingSettings) -> BillingSettings {
        BillingSettings {
            group_id: s.group_id,
            wallet_auto_apply: s.wallet_auto_apply,
            invoice_lead_days: s.invoice_lead_days,
            billing_day: s.billing_day,
        }
    }
}

/// What applies to a client: its own value, else its group's; absent: the host default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct EffectiveSettingsView {
    pub group_id: Option<ClientGroupId>,
    /// The client's flag or its group's.
    pub tax_exempt: bool,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
}

impl From<EffectiveBillingSettings> for EffectiveSettingsView {
    fn from(s: EffectiveBillingSettings) -> EffectiveSettingsView {
        EffectiveSettingsView {
            group_id: s.group_id,
            tax_exempt: s.tax_exempt,
            wallet_auto_apply: s.wallet_auto_apply,
            invoice_lead_days: s.invoice_lead_days,
            billing_day: s.billing_day,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct BillingSettingsView {
    pub client_id: ClientId,
    /// As set on the client.
    pub own: BillingSettings,
    /// As billing applies them.
    pub effective: EffectiveSettingsView,
}

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

// ------------------------------------------------------------------------------------
// Inputs
// ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductGroupInput {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    /// Lower-case letters, digits and dashes; unique.
    #[schema(schema_with = schemas::slug)]
    pub slug: String,
    /// Shown to staff only.
    #[serde(default)]
    pub hidden: bool,
    #[serde(default)]
    pub sort_order: i64,
}

/// A price as people type it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    #[schema(value_type = keel_domain::currency::Currency)]
    pub currency: String,
    /// monthly, quarterly, semi_annually, annually, biennially, triennially, one_time, free.
    #[schema(value_type = keel_domain::billing::BillingCycle)]
    pub cycle: String,
    /// In major units, exact for the currency: "10.00", "1,250".
    #[schema(schema_with = keel_domain::money::schema::non_negative_amount)]
    pub price: String,
    /// Default 0.
    #[schema(schema_with = keel_domain::money::schema::non_negative_amount)]
    pub setup_fee: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionValueInput {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    #[serde(default)]
    pub prices: Vec<PriceInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionInput {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    pub kind: OptionKind,
    /// Quantity options: the least that can be ordered (default 0).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub min_qty: i64,
    /// Quantity options: the most; absent: unlimited.
    #[schema(minimum = 0)]
    pub max_qty: Option<i64>,
    /// yes_no and quantity options have exactly one value; dropdown and radio at least one.
    pub values: Vec<OptionValueInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductInput {
    pub group_id: ProductGroupId,
    pub kind: ProductKind,
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    /// Lower-case letters, digits and dashes; unique.
    #[schema(schema_with = schemas::slug)]
    pub slug: String,
    #[serde(default)]
    #[schema(schema_with = keel_domain::text::schema::product_description)]
    pub description: String,
    pub pay_type: PayType,
    /// Absent: not taxed.
    #[schema(schema_with = schemas::tax_class)]
    pub tax_class: Option<String>,
    #[schema(schema_with = keel_domain::text::schema::identifier)]
    pub provisioner: Option<String>,
    #[schema(schema_with = keel_domain::text::schema::identifier)]
    pub registrar: Option<String>,
    /// Absent: unlimited.
    #[schema(schema_with = schemas::stock)]
    pub stock: Option<i64>,
    #[serde(default)]
    pub prices: Vec<PriceInput>,
    #[serde(default)]
    pub options: Vec<OptionInput>,
    /// Products of kind addon offered with this one.
    #[serde(default)]
    #[schema(schema_with = schemas::unique_ids)]
    pub addons: Vec<ProductId>,
}

/// Changes to a product; `null` clears a field that may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: Option<String>,
    #[schema(schema_with = keel_domain::text::schema::product_description)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::tax_class)]
    pub tax_class: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = keel_domain::text::schema::identifier)]
    pub provisioner: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = keel_domain::text::schema::identifier)]
    pub registrar: Option<Option<String>>,
    /// `null`: unlimited.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::stock)]
    pub stock: Option<Option<i64>>,
}

/// Every price of a product, replacing the current ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricesInput {
    pub prices: Vec<PriceInput>,
}

/// What to price: a currency, a cycle and option choices (defaults for the rest).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteInput {
    #[schema(value_type = keel_domain::currency::Currency)]
    pub currency: String,
    #[schema(value_type = keel_domain::billing::BillingCycle)]
    pub cycle: String,
    #[serde(default)]
    pub options: Vec<OptionChoice>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClientGroupInput {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: String,
    #[schema(value_type = Option<keel_domain::currency::Currency>)]
    pub currency: Option<String>,
    pub tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    /// 0 to 90.
    #[schema(schema_with = schemas::lead_days)]
    pub invoice_lead_days: Option<i64>,
    /// 1 to 31.
    #[schema(schema_with = schemas::billing_day)]
    pub billing_day: Option<i64>,
}

/// Changes to a client group; `null` clears a setting (back to the host default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientGroupChanges {
    #[schema(schema_with = keel_domain::text::schema::catalog_name)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<keel_domain::currency::Currency>)]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub tax_exempt: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub wallet_auto_apply: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::lead_days)]
    pub invoice_lead_days: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schemas::billing_day)]
    pub billing_day: Option<Option<i64>>,
}

/// A client's own billing settings, all at once; absent or `null` inherits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettingsInput {
    pub group_id: Option<ClientGroupId>,
    pub wallet_auto_apply: Option<bool>,
    #[schema(schema_with = schemas::lead_days)]
    pub invoice_lead_days: Option<i64>,
    #[schema(schema_with = schemas::billing_day)]
    pub billing_day: Option<i64>,
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

// ------------------------------------------------------------------------------------
// Validation helpers
// ------------------------------------------------------------------------------------

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
            .items(keel_domain::billing::BillingCycle::schema())
            .unique_items(true)
            .build()
    }
    pub fn stock() -> Object {
        integer(0..=i64::MAX, "Units left; absent or null: unlimited.")
    }
}

fn slug(field: &str, value: &str) -> Result<String, AppError> {
    let v = value.trim();
    let ok = (1..=SLUG_MAX).contains(&v.len())
        && v.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(v.to_string())
    } else {
        Err(invalid(
            "invalid_slug",
            field,
            "a slug is 1 to 100 lower-case letters and digits, words joined by single dashes (\"vps-large\")",
        ))
    }
}

fn tax_class(field: &str, value: &str) -> Result<String, AppError> {
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

fn stock(field: &str, value: Option<i64>) -> Result<Option<i64>, AppError> {
    match value {
        Some(s) if s < 0 => Err(invalid(
            "invalid_stock",
            field,
            "stock must be 0 or more (absent: unlimited)",
        )),
        other => Ok(other),
    }
}

/// Parses a price list: each (currency, cycle) at most once and allowed by the pay type.
fn prices(field: &str, inputs: &[PriceInput], pay_type: PayType) -> Result<Vec<Price>, AppError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, p) in inputs.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let currency = currency(&format!("{at}.currency"), &p.currency)?;
        let cycle = cycle(&format!("{at}.cycle"), &p.cycle)?;
        if !cycle_allowed(pay_type, cycle) {
            return Err(invalid(
                "cycle_not_allowed",
                &format!("{at}.cycle"),
                format!("a {pay_type} product cannot be billed {cycle}"),
            ));
        }
        let price = amount(&format!("{at}.price"), &p.price, currency)?;
        let setup_fee = match &p.setup_fee {
            Some(s) => amount(&format!("{at}.setup_fee"), s, currency)?,
            None => Money::zero(currency),
        };
        if !seen.insert((currency, cycle)) {
            return Err(invalid(
                "duplicate_price",
                &at,
                format!("{at}: there is already a {cycle} price in {currency}"),
            ));
        }
        out.push(Price {
            currency,
            cycle,
            price,
            setup_fee,
        });
    }
    Ok(out)
}

fn options(inputs: &[OptionInput], pay_type: PayType) -> Result<Vec<NewOption>, AppError> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (i, o) in inputs.iter().enumerate() {
        let at = format!("options[{i}]");
        let name = text(&format!("{at}.name"), &o.name, limits::CATALOG_NAME)?;
        if !names.insert(name.clone()) {
            return Err(invalid(
                "duplicate_option_name",
                &format!("{at}.name"),
                format!("the product already has an option named {name:?}"),
            ));
        }
        let single = matches!(o.kind, OptionKind::YesNo | OptionKind::Quantity);
        if single && o.values.len() != 1 {
            return Err(invalid(
                "wrong_value_count",
                &format!("{at}.values"),
                format!(
                    "a {} option has exactly one value (the {}), not {}",
                    o.kind,
                    if o.kind == OptionKind::YesNo {
                        "\"yes\""
                    } else {
                        "unit"
                    },
                    o.values.len()
                ),
            ));
        }
        if !single && o.values.is_empty() {
            return Err(invalid(
                "wrong_value_count",
                &format!("{at}.values"),
                format!("a {} option needs at least one value to choose", o.kind),
            ));
        }
        if o.min_qty < 0 {
            return Err(invalid(
                "invalid_quantity",
                &format!("{at}.min_qty"),
                "min_qty must be 0 or more",
            ));
        }
        if let Some(max) = o.max_qty
            && max < o.min_qty
        {
            return Err(invalid(
                "invalid_quantity_range",
                &format!("{at}.max_qty"),
                format!(
                    "max_qty ({max}) must not be less than min_qty ({})",
                    o.min_qty
                ),
            ));
        }
        let mut value_names = HashSet::new();
        let mut values = Vec::with_capacity(o.values.len());
        for (j, v) in o.values.iter().enumerate() {
            let vat = format!("{at}.values[{j}]");
            let name = text(&format!("{vat}.name"), &v.name, limits::CATALOG_NAME)?;
            if !value_names.insert(name.clone()) {
                return Err(invalid(
                    "duplicate_value_name",
                    &format!("{vat}.name"),
                    format!("the option already has a value named {name:?}"),
                ));
            }
            values.push(NewOptionValue {
                name,
                prices: prices(&format!("{vat}.prices"), &v.prices, pay_type)?,
            });
        }
        out.push(NewOption {
            name,
            kind: o.kind,
            min_qty: o.min_qty,
            max_qty: o.max_qty,
            values,
        });
    }
    Ok(out)
}

fn lead_days(field: &str, value: Option<i64>) -> Result<Option<u32>, AppError> {
    match value {
        None => Ok(None),
        Some(v) if LEAD_DAYS.contains(&v) => Ok(Some(v as u32)),
        Some(_) => Err(invalid(
            "invalid_lead_days",
            field,
            "invoice_lead_days must be between 0 and 90",
        )),
    }
}

fn billing_day(field: &str, value: Option<i64>) -> Result<Option<u32>, AppError> {
    match value {
        None => Ok(None),
        Some(v) if BILLING_DAYS.contains(&v) => Ok(Some(v as u32)),
        Some(_) => Err(invalid(
            "invalid_billing_day",
            field,
            "billing_day must be between 1 and 31",
        )),
    }
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

// ------------------------------------------------------------------------------------
// Product groups
// ------------------------------------------------------------------------------------

pub async fn create_product_group(
    app: &App,
    ctx: &Ctx,
    input: NewProductGroupInput,
) -> Result<ProductGroupView, AppError> {
    create_product_group_answering(app, ctx, input, None).await
}

/// [`create_product_group`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_product_group_answering(
    app: &App,
    ctx: &Ctx,
    input: NewProductGroupInput,
    answer: Option<crate::Answer>,
) -> Result<ProductGroupView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let new = NewProductGroup {
        name: text("name", &input.name, limits::CATALOG_NAME)?,
        slug: slug("slug", &input.slug)?,
        hidden: input.hidden,
        sort_order: input.sort_order,
    };
    let mut tx = app.db.begin().await?;
    let group = store::create_product_group(&mut tx, &new, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "product_group.create",
        "product_group",
        group.id,
        json!({ "name": group.name, "slug": group.slug, "hidden": group.hidden }),
    )
    .await?;
    let answered: ProductGroupView = group.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

/// The groups in display order; outside the host scope, hidden ones are left out.
pub async fn list_product_groups(app: &App, ctx: &Ctx) -> Result<Vec<ProductGroupView>, AppError> {
    ctx.require(Permission::CatalogRead)?;
    Ok(store::list_product_groups(&app.db, visible_only(ctx))
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

// ------------------------------------------------------------------------------------
// Products
// ------------------------------------------------------------------------------------

/// Creates a product with its prices, options and add-ons in one transaction.
pub async fn create_product(
    app: &App,
    ctx: &Ctx,
    input: NewProductInput,
) -> Result<ProductView, AppError> {
    create_product_answering(app, ctx, input, None).await
}

/// [`create_product`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_product_answering(
    app: &App,
    ctx: &Ctx,
    input: NewProductInput,
    answer: Option<crate::Answer>,
) -> Result<ProductView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut addons = Vec::with_capacity(input.addons.len());
    for (i, addon) in input.addons.iter().enumerate() {
        if addons.contains(addon) {
            return Err(invalid(
                "duplicate_addon",
                &format!("addons[{i}]"),
                format!("add-on {addon} is listed twice"),
            ));
        }
        addons.push(*addon);
    }
    let new = NewProduct {
        group_id: input.group_id,
        kind: input.kind,
        name: text("name", &input.name, limits::CATALOG_NAME)?,
        slug: slug("slug", &input.slug)?,
        description: text(
            "description",
            &input.description,
            limits::PRODUCT_DESCRIPTION,
        )?,
        pay_type: input.pay_type,
        tax_class: input
            .tax_class
            .as_deref()
            .map(|t| tax_class("tax_class", t))
            .transpose()?,
        provisioner: optional_id("provisioner", input.provisioner.as_deref())?,
        registrar: optional_id("registrar", input.registrar.as_deref())?,
        stock: stock("stock", input.stock)?,
        prices: prices("prices", &input.prices, input.pay_type)?,
        options: options(&input.options, input.pay_type)?,
        addons,
    };
    let mut tx = app.db.begin().await?;
    if store::product_group(&mut tx, new.group_id).await?.is_none() {
        return Err(invalid(
            "unknown_product_group",
            "group_id",
            format!("there is no product group {}", new.group_id),
        ));
    }
    let kinds = store::product_kinds(&mut tx, &new.addons).await?;
    for (i, addon) in new.addons.iter().enumerate() {
        match kinds.iter().find(|(id, _)| id == addon) {
            None => {
                return Err(invalid(
                    "unknown_addon",
                    &format!("addons[{i}]"),
                    format!("there is no product {addon}"),
                ));
            }
            Some((_, kind)) if *kind != ProductKind::Addon => {
                return Err(invalid(
                    "not_an_addon",
                    &format!("addons[{i}]"),
                    format!("product {addon} is a {kind} product, not an add-on"),
                ));
            }
            Some(_) => {}
        }
    }
    let product = store::create_product(&mut tx, &new, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "product.create",
        "product",
        product.id,
        json!({
            "name": product.name,
            "slug": product.slug,
            "group_id": product.group_id,
            "prices": product.prices.len(),
            "options": product.options.len(),
        }),
    )
    .await?;
    let answered: ProductView = product.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

/// One product; outside the host scope a retired product or one in a hidden group is not found.
pub async fn get_product(app: &App, ctx: &Ctx, id: ProductId) -> Result<ProductView, AppError> {
    ctx.require(Permission::CatalogRead)?;
    let product = if visible_only(ctx) {
        store::get_visible_product(&app.db, id).await?
    } else {
        store::get_product(&app.db, id).await?
    };
    product.map(Into::into).ok_or(PRODUCT)
}

/// Filters a product list may carry.
#[derive(Debug, Clone, Default)]
pub struct ListProducts {
    pub group: Option<ProductGroupId>,
    /// Staff only; ignored outside the host scope.
    pub include_retired: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list_products(
    app: &App,
    ctx: &Ctx,
    q: &ListProducts,
) -> Result<Page<ProductView>, AppError> {
    ctx.require(Permission::CatalogRead)?;
    let filter = ProductFilter {
        group: q.group,
        include_retired: q.include_retired,
        visible_only: visible_only(ctx),
    };
    Ok(store::list_products(
        &app.db,
        filter,
        crate::cursor(q.cursor.as_deref())?,
        crate::page_limit(q.limit)?,
    )
    .await?
    .map(Into::into))
}

/// Changes a product's name, description, tax class, plugins or stock.
pub async fn update_product(
    app: &App,
    ctx: &Ctx,
    id: ProductId,
    changes: ProductChanges,
) -> Result<ProductView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut tx = app.db.begin().await?;
    let before = store::product(&mut tx, id).await?.ok_or(PRODUCT)?;
    if changes == ProductChanges::default() {
        return Ok(before.into());
    }
    let update = ProductUpdate {
        name: match &changes.name {
            Some(n) => text("name", n, limits::CATALOG_NAME)?,
            None => before.name.clone(),
        },
        description: match &changes.description {
            Some(d) => text("description", d, limits::PRODUCT_DESCRIPTION)?,
            None => before.description.clone(),
        },
        tax_class: match &changes.tax_class {
            Some(t) => t
                .as_deref()
                .map(|t| tax_class("tax_class", t))
                .transpose()?,
            None => before.tax_class.clone(),
        },
        provisioner: match &changes.provisioner {
            Some(p) => optional_id("provisioner", p.as_deref())?,
            None => before.provisioner.clone(),
        },
        registrar: match &changes.registrar {
            Some(r) => optional_id("registrar", r.as_deref())?,
            None => before.registrar.clone(),
        },
        stock: match changes.stock {
            Some(s) => stock("stock", s)?,
            None => before.stock,
        },
    };
    if let Some(s) = update.stock
        && s < before.sold
    {
        return Err(invalid(
            "stock_below_sold",
            "stock",
            format!(
                "{} units are already sold; stock cannot be {s}",
                before.sold
            ),
        ));
    }
    let after = store::update_product(&mut tx, id, &update, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "product.update",
        "product",
        id,
        json!({
            "name": changes.name,
            "description": changes.description.as_ref().map(|_| "changed"),
            "tax_class": changes.tax_class,
            "provisioner": changes.provisioner,
            "registrar": changes.registrar,
            "stock": changes.stock,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after.into())
}

/// Replaces every price of a product (option prices stay). Services already sold keep the
/// recurring amount they were sold at.
pub async fn replace_prices(
    app: &App,
    ctx: &Ctx,
    id: ProductId,
    input: PricesInput,
) -> Result<ProductView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut tx = app.db.begin().await?;
    let before = store::product(&mut tx, id).await?.ok_or(PRODUCT)?;
    let new_prices = prices("prices", &input.prices, before.pay_type)?;
    let after = store::replace_prices(&mut tx, id, &new_prices, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "product.prices",
        "product",
        id,
        json!({
            "before": before.prices.iter().map(price_summary).collect::<Vec<_>>(),
            "after": after.prices.iter().map(price_summary).collect::<Vec<_>>(),
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(after.into())
}

fn price_summary(p: &Price) -> serde_json::Value {
    json!({
        "currency": p.currency,
        "cycle": p.cycle,
        "price_minor": p.price.minor(),
        "setup_fee_minor": p.setup_fee.minor(),
    })
}

/// Retires a product: it stays readable, existing services keep billing, nobody can order it.
pub async fn retire_product(app: &App, ctx: &Ctx, id: ProductId) -> Result<ProductView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut tx = app.db.begin().await?;
    let before = store::product(&mut tx, id).await?.ok_or(PRODUCT)?;
    if before.retired_at.is_some() {
        return Ok(before.into());
    }
    let after = store::retire_product(&mut tx, id, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "product.retire",
        "product",
        id,
        json!({ "name": after.name }),
    )
    .await?;
    tx.commit().await?;
    Ok(after.into())
}

/// Prices one item of a product in a currency and cycle with option choices. A retired
/// product cannot be quoted (it cannot be ordered); stock is checked when ordering.
pub async fn quote(
    app: &App,
    ctx: &Ctx,
    id: ProductId,
    input: QuoteInput,
) -> Result<QuoteView, AppError> {
    ctx.require(Permission::CatalogRead)?;
    let product = if visible_only(ctx) {
        store::get_visible_product(&app.db, id).await?
    } else {
        store::get_product(&app.db, id).await?
    }
    .ok_or(PRODUCT)?;
    let currency = currency("currency", &input.currency)?;
    let cycle = cycle("cycle", &input.cycle)?;
    if product.retired_at.is_some() {
        return Err(catalog_error(CatalogError::Retired(product.name)));
    }
    let quote = product
        .quote(currency, cycle, &input.options)
        .map_err(catalog_error)?;
    QuoteView::new(id, quote)
}

// ------------------------------------------------------------------------------------
// Tax rules
// ------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------
// Exchange rates
// ------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------
// Client groups and billing settings
// ------------------------------------------------------------------------------------

pub async fn create_client_group(
    app: &App,
    ctx: &Ctx,
    input: NewClientGroupInput,
) -> Result<ClientGroupView, AppError> {
    create_client_group_answering(app, ctx, input, None).await
}

/// [`create_client_group`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_client_group_answering(
    app: &App,
    ctx: &Ctx,
    input: NewClientGroupInput,
    answer: Option<crate::Answer>,
) -> Result<ClientGroupView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let fields = ClientGroupFields {
        name: text("name", &input.name, limits::CATALOG_NAME)?,
        currency: input
            .currency
            .as_deref()
            .map(|c| currency("currency", c))
            .transpose()?,
        tax_exempt: input.tax_exempt,
        wallet_auto_apply: input.wallet_auto_apply,
        invoice_lead_days: lead_days("invoice_lead_days", input.invoice_lead_days)?,
        billing_day: billing_day("billing_day", input.billing_day)?,
    };
    let mut tx = app.db.begin().await?;
    let group = store::create_client_group(&mut tx, &fields, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "client_group.create",
        "client_group",
        group.id,
        group_summary(&group),
    )
    .await?;
    let answered: ClientGroupView = group.into();
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

fn group_summary(g: &ClientGroup) -> serde_json::Value {
    json!({
        "name": g.name,
        "currency": g.currency,
        "tax_exempt": g.tax_exempt,
        "wallet_auto_apply": g.wallet_auto_apply,
        "invoice_lead_days": g.invoice_lead_days,
        "billing_day": g.billing_day,
    })
}

pub async fn update_client_group(
    app: &App,
    ctx: &Ctx,
    id: ClientGroupId,
    changes: ClientGroupChanges,
) -> Result<ClientGroupView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let mut tx = app.db.begin().await?;
    let before = store::client_group(&mut tx, id)
        .await?
        .ok_or(CLIENT_GROUP)?;
    if changes == ClientGroupChanges::default() {
        return Ok(before.into());
    }
    let fields = ClientGroupFields {
        name: match &changes.name {
            Some(n) => text("name", n, limits::CATALOG_NAME)?,
            None => before.name.clone(),
        },
        currency: match &changes.currency {
            Some(c) => c.as_deref().map(|c| currency("currency", c)).transpose()?,
            None => before.currency,
        },
        tax_exempt: changes.tax_exempt.unwrap_or(before.tax_exempt),
        wallet_auto_apply: changes
            .wallet_auto_apply
            .unwrap_or(before.wallet_auto_apply),
        invoice_lead_days: match changes.invoice_lead_days {
            Some(v) => lead_days("invoice_lead_days", v)?,
            None => before.invoice_lead_days,
        },
        billing_day: match changes.billing_day {
            Some(v) => billing_day("billing_day", v)?,
            None => before.billing_day,
        },
    };
    let after = store::update_client_group(&mut tx, id, &fields, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "client_group.update",
        "client_group",
        id,
        json!({ "before": group_summary(&before), "after": group_summary(&after) }),
    )
    .await?;
    tx.commit().await?;
    Ok(after.into())
}

pub async fn list_client_groups(app: &App, ctx: &Ctx) -> Result<Vec<ClientGroupView>, AppError> {
    require_host_read(ctx)?;
    Ok(store::list_client_groups(&app.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub async fn get_client_group(
    app: &App,
    ctx: &Ctx,
    id: ClientGroupId,
) -> Result<ClientGroupView, AppError> {
    require_host_read(ctx)?;
    store::get_client_group(&app.db, id)
        .await?
        .map(Into::into)
        .ok_or(CLIENT_GROUP)
}

/// Sets a client's own billing settings (group, wallet auto-apply, invoice lead days, billing
/// day) all at once; an absent setting inherits from the group, then the host default.
pub async fn set_billing_settings(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    input: BillingSettingsInput,
) -> Result<BillingSettingsView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let settings = ClientBillingSettings {
        group_id: input.group_id,
        wallet_auto_apply: input.wallet_auto_apply,
        invoice_lead_days: lead_days("invoice_lead_days", input.invoice_lead_days)?,
        billing_day: billing_day("billing_day", input.billing_day)?,
    };
    let scope = ctx.actor.scope();
    let mut tx = app.db.begin().await?;
    let before = store::client_own_billing_settings(&mut tx, scope, client)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    if let Some(group) = settings.group_id
        && store::client_group(&mut tx, group).await?.is_none()
    {
        return Err(invalid(
            "unknown_client_group",
            "group_id",
            format!("there is no client group {group}"),
        ));
    }
    let own = store::set_client_billing_settings(&mut tx, scope, client, &settings, app.now())
        .await
        .map_err(crate::error::not_found("client"))?;
    let effective = store::client_billing_settings(&mut tx, client).await?;
    record(
        &mut tx,
        app,
        ctx,
        "client.billing_settings",
        "client",
        client,
        json!({ "before": BillingSettings::from(before), "after": BillingSettings::from(own) }),
    )
    .await?;
    tx.commit().await?;
    Ok(BillingSettingsView {
        client_id: client,
        own: own.into(),
        effective: effective.into(),
    })
}

// ------------------------------------------------------------------------------------
// Promotions
// ------------------------------------------------------------------------------------

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
