//! Product groups and products: prices per cycle and currency, configurable options and
//! add-ons, stock, retiring; the quote an order form shows.

use super::*;
use crate::audit::record;
use crate::ledger::Amount;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::access::Permission;
use keel_domain::catalog::{
    CatalogError, OptionChoice, OptionValue, Price, Product, ProductOption, Quote, QuotedOption,
    cycle_allowed,
};
use keel_domain::currency::Currency;
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{OptionId, OptionValueId, ProductGroupId, ProductId};
use keel_domain::lifecycle::{OptionKind, PayType, ProductKind};
use keel_domain::money::Money;
use keel_domain::text::limits;
use keel_store::Page;
use keel_store::catalog::{
    self as store, NewOption, NewOptionValue, NewProduct, NewProductGroup, ProductFilter,
    ProductGroup, ProductUpdate,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashSet;
use utoipa::ToSchema;

const PRODUCT: AppError = AppError::NotFound { what: "product" };

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
    #[schema(value_type = keel_domain::cycle::BillingCycle)]
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
    #[schema(value_type = keel_domain::cycle::BillingCycle)]
    pub cycle: String,
    #[serde(default)]
    pub options: Vec<OptionChoice>,
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
