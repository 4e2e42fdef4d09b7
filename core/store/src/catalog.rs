//! The catalog: product groups, products with their prices, options, option values and
//! add-ons; stock; tax rules; exchange rates; client groups and a client's own billing
//! settings; promotions and their uses.
//!
//! Host-level data: nothing here is owned by a reseller, so no query takes a
//! [`keel_domain::tenancy::Scope`] except the one that writes a client's settings. Reads for
//! reseller and client keys pass `visible_only`, which hides retired products and hidden
//! groups.
//!
//! Concurrency: stock and promotion uses move by one conditional `UPDATE` each, so two
//! orders racing for the last unit (or the last use of a code) cannot both win: PostgreSQL
//! re-checks the condition on the row it locks, SQLite has one writer.
//!
//! Storage forms: decimals (tax rates, exchange rates, promotion percents) are TEXT holding
//! `rust_decimal`'s text; money is `*_minor` beside a currency; cycles are their snake_case
//! names; a promotion's cycles are one comma-separated TEXT.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::currency;
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::catalog::{OptionValue, Price, Product, ProductOption};
use keel_domain::currency::Currency;
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{
    ClientGroupId, ClientId, OptionId, OptionValueId, OrderId, ProductGroupId, ProductId,
    PromotionId, TaxRuleId,
};
use keel_domain::lifecycle::{OptionKind, PayType, ProductKind};
use keel_domain::money::Money;
use keel_domain::promotion::{PromoValue, Promotion};
use keel_domain::tax::{TaxLevel, TaxRule};
use keel_domain::tenancy::Scope;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::str::FromStr;

// ------------------------------------------------------------------------------------
// Reading from a transaction or from the read pool with one body
// ------------------------------------------------------------------------------------

/// Where a multi-query read runs: inside the caller's transaction, or on the read pool.
enum Source<'a> {
    Tx(&'a mut Tx),
    Db(&'a Db),
}

/// Runs `$body` with `$e` bound to an executor of the source (a connection of the
/// transaction, or a read pool); the body is compiled once per engine and source.
macro_rules! on_source {
    ($src:expr, |$e:ident| $body:expr) => {
        match &mut *$src {
            Source::Tx(tx) => on_tx!(&mut **tx, |c| {
                let $e = &mut *c;
                $body
            }),
            Source::Db(db) => on_db!(*db, |p| {
                let $e = p;
                $body
            }),
        }
    };
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn cycle(name: &str) -> Result<BillingCycle, StoreError> {
    BillingCycle::from_str(name).map_err(|_| corrupt(format!("unknown billing cycle {name:?}")))
}

fn decimal(text: &str, what: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text).map_err(|_| corrupt(format!("{what} {text:?} is not a decimal")))
}

/// The position of a cycle in [`BillingCycle::ALL`], to sort prices the same way everywhere.
fn cycle_rank(c: BillingCycle) -> usize {
    BillingCycle::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(usize::MAX)
}

fn sort_prices(prices: &mut [Price]) {
    prices.sort_by(|a, b| {
        (a.currency.code(), cycle_rank(a.cycle)).cmp(&(b.currency.code(), cycle_rank(b.cycle)))
    });
}

// ------------------------------------------------------------------------------------
// Product groups
// ------------------------------------------------------------------------------------

/// A group of products on the order form ("Shared hosting", "Domains").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProductGroup {
    pub id: ProductGroupId,
    pub name: String,
    /// Unique; `product_groups_slug_key`.
    pub slug: String,
    /// Hidden groups (and their products) are shown to staff only.
    pub hidden: bool,
    pub sort_order: i64,
    pub created_at: DateTime<Utc>,
}

/// A product group to create (validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProductGroup {
    pub name: String,
    pub slug: String,
    pub hidden: bool,
    pub sort_order: i64,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: i64,
    name: String,
    slug: String,
    hidden: bool,
    sort_order: i64,
    created_at: DateTime<Utc>,
}

impl From<GroupRow> for ProductGroup {
    fn from(r: GroupRow) -> ProductGroup {
        ProductGroup {
            id: ProductGroupId(r.id),
            name: r.name,
            slug: r.slug,
            hidden: r.hidden,
            sort_order: r.sort_order,
            created_at: r.created_at,
        }
    }
}

const GROUP_COLUMNS: &str = "id, name, slug, hidden, sort_order, created_at";

/// Creates a product group. A slug already used is
/// `Conflict { constraint: "product_groups_slug_key" }`.
pub async fn create_product_group(
    tx: &mut Tx,
    new: &NewProductGroup,
    at: DateTime<Utc>,
) -> Result<ProductGroup, StoreError> {
    let sql = format!(
        "INSERT INTO product_groups (name, slug, hidden, sort_order, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {GROUP_COLUMNS}"
    );
    let row: GroupRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(&new.name)
        .bind(&new.slug)
        .bind(new.hidden)
        .bind(new.sort_order)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    Ok(row.into())
}

/// The group with this id, inside a transaction.
pub async fn product_group(
    tx: &mut Tx,
    id: ProductGroupId,
) -> Result<Option<ProductGroup>, StoreError> {
    let sql = format!("SELECT {GROUP_COLUMNS} FROM product_groups WHERE id = $1");
    let row: Option<GroupRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    Ok(row.map(Into::into))
}

/// Every group in display order (`sort_order`, then id); `visible_only` leaves hidden ones out.
pub async fn list_product_groups(
    db: &Db,
    visible_only: bool,
) -> Result<Vec<ProductGroup>, StoreError> {
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM product_groups WHERE ($1 = FALSE OR hidden = FALSE) \
         ORDER BY sort_order, id"
    );
    let rows: Vec<GroupRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(visible_only)
        .fetch_all(p)
        .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

// ------------------------------------------------------------------------------------
// Products
// ------------------------------------------------------------------------------------

/// A value of a new option: its name and its prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOptionValue {
    pub name: String,
    pub prices: Vec<Price>,
}

/// A configurable option of a new product; values are stored in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOption {
    pub name: String,
    pub kind: OptionKind,
    pub min_qty: i64,
    pub max_qty: Option<i64>,
    pub values: Vec<NewOptionValue>,
}

/// A product to create, already validated by the caller (cycles allowed by the pay type,
/// no duplicate (currency, cycle), option value counts, existing group and add-ons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub group_id: ProductGroupId,
    pub kind: ProductKind,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub pay_type: PayType,
    pub tax_class: Option<String>,
    pub provisioner: Option<String>,
    pub registrar: Option<String>,
    pub stock: Option<i64>,
    pub prices: Vec<Price>,
    pub options: Vec<NewOption>,
    pub addons: Vec<ProductId>,
}

/// The fields of a product that can change after it is created (all written at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductUpdate {
    pub name: String,
    pub description: String,
    pub tax_class: Option<String>,
    pub provisioner: Option<String>,
    pub registrar: Option<String>,
    pub stock: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: i64,
    group_id: i64,
    kind: String,
    name: String,
    slug: String,
    description: String,
    pay_type: String,
    tax_class: Option<String>,
    provisioner: Option<String>,
    registrar: Option<String>,
    stock: Option<i64>,
    sold: i64,
    retired_at: Option<DateTime<Utc>>,
}

const PRODUCT_COLUMNS: &str = "p.id, p.group_id, p.kind, p.name, p.slug, p.description, \
    p.pay_type, p.tax_class, p.provisioner, p.registrar, p.stock, p.sold, p.retired_at";

/// A price row of a product (`owner_id` = product id) or of an option value (value id).
#[derive(sqlx::FromRow)]
struct PriceRow {
    owner_id: i64,
    currency: String,
    cycle: String,
    price_minor: i64,
    setup_fee_minor: i64,
}

impl TryFrom<PriceRow> for Price {
    type Error = StoreError;
    fn try_from(r: PriceRow) -> Result<Price, StoreError> {
        let currency = currency(&r.currency)?;
        Ok(Price {
            currency,
            cycle: cycle(&r.cycle)?,
            price: Money::new(r.price_minor, currency),
            setup_fee: Money::new(r.setup_fee_minor, currency),
        })
    }
}

#[derive(sqlx::FromRow)]
struct OptionRow {
    id: i64,
    product_id: i64,
    name: String,
    kind: String,
    min_qty: i64,
    max_qty: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ValueRow {
    id: i64,
    option_id: i64,
    name: String,
}

#[derive(sqlx::FromRow)]
struct AddonRow {
    product_id: i64,
    addon_id: i64,
}

/// Creates a product with its prices, options (values in the order given, each with its
/// prices) and add-ons, all in the caller's transaction. A slug already used is
/// `Conflict { constraint: "products_slug_key" }`.
pub async fn create_product(
    tx: &mut Tx,
    new: &NewProduct,
    at: DateTime<Utc>,
) -> Result<Product, StoreError> {
    let id: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "INSERT INTO products (group_id, kind, name, slug, description, pay_type, tax_class, \
           provisioner, registrar, stock, sold, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $11) RETURNING id"
    )
    .bind(new.group_id.get())
    .bind(new.kind.as_str())
    .bind(&new.name)
    .bind(&new.slug)
    .bind(&new.description)
    .bind(new.pay_type.as_str())
    .bind(new.tax_class.as_deref())
    .bind(new.provisioner.as_deref())
    .bind(new.registrar.as_deref())
    .bind(new.stock)
    .bind(at)
    .fetch_one(&mut *c)
    .await)?;
    insert_prices(tx, "product_prices", "product_id", id, &new.prices).await?;
    for (position, option) in new.options.iter().enumerate() {
        let option_id: i64 = on_tx!(tx, |c| {
            sqlx::query_scalar(
            "INSERT INTO product_options (product_id, name, kind, min_qty, max_qty, sort_order) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(id)
        .bind(&option.name)
        .bind(option.kind.as_str())
        .bind(option.min_qty)
        .bind(option.max_qty)
        .bind(position as i64)
        .fetch_one(&mut *c)
        .await
        })?;
        for (value_position, value) in option.values.iter().enumerate() {
            let value_id: i64 = on_tx!(tx, |c| {
                sqlx::query_scalar(
                "INSERT INTO option_values (option_id, name, sort_order) VALUES ($1, $2, $3) RETURNING id"
            )
            .bind(option_id)
            .bind(&value.name)
            .bind(value_position as i64)
            .fetch_one(&mut *c)
            .await
            })?;
            insert_prices(tx, "option_prices", "value_id", value_id, &value.prices).await?;
        }
    }
    for addon in &new.addons {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO product_addons (product_id, addon_id) VALUES ($1, $2)"
        )
        .bind(id)
        .bind(addon.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    product(tx, ProductId(id))
        .await?
        .ok_or_else(|| corrupt(format!("product {id} vanished while it was created")))
}

async fn insert_prices(
    tx: &mut Tx,
    table: &str,
    owner_column: &str,
    owner: i64,
    prices: &[Price],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} ({owner_column}, currency, cycle, price_minor, setup_fee_minor) \
         VALUES ($1, $2, $3, $4, $5)"
    );
    for p in prices {
        on_tx!(tx, |c| sqlx::query(&sql)
            .bind(owner)
            .bind(p.currency.code())
            .bind(p.cycle.as_str())
            .bind(p.price.minor())
            .bind(p.setup_fee.minor())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Writes the changeable fields of a product. `NotFound` when there is no such product;
/// `Conflict { constraint: "products_stock_below_sold" }` when the new stock is below what
/// was already sold (checked in the same statement as the write).
pub async fn update_product(
    tx: &mut Tx,
    id: ProductId,
    update: &ProductUpdate,
    at: DateTime<Utc>,
) -> Result<Product, StoreError> {
    let changed = on_tx!(tx, |c| sqlx::query(
        "UPDATE products SET name = $1, description = $2, tax_class = $3, provisioner = $4, \
           registrar = $5, stock = $6, updated_at = $7 \
         WHERE id = $8 AND (CAST($6 AS BIGINT) IS NULL OR sold <= $6)"
    )
    .bind(&update.name)
    .bind(&update.description)
    .bind(update.tax_class.as_deref())
    .bind(update.provisioner.as_deref())
    .bind(update.registrar.as_deref())
    .bind(update.stock)
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 0 {
        return match product(tx, id).await? {
            None => Err(StoreError::NotFound),
            Some(_) => Err(StoreError::Conflict {
                constraint: "products_stock_below_sold".into(),
            }),
        };
    }
    product(tx, id).await?.ok_or(StoreError::NotFound)
}

/// Replaces every price row of a product with `prices` (the option prices stay).
/// `NotFound` when there is no such product.
pub async fn replace_prices(
    tx: &mut Tx,
    id: ProductId,
    prices: &[Price],
    at: DateTime<Utc>,
) -> Result<Product, StoreError> {
    let touched = on_tx!(tx, |c| sqlx::query(
        "UPDATE products SET updated_at = $1 WHERE id = $2"
    )
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if touched == 0 {
        return Err(StoreError::NotFound);
    }
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM product_prices WHERE product_id = $1"
    )
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    insert_prices(tx, "product_prices", "product_id", id.get(), prices).await?;
    product(tx, id).await?.ok_or(StoreError::NotFound)
}

/// Retires a product: it stays readable (services keep pointing at it) but can no longer be
/// ordered. Never deletes. Retiring twice keeps the first date. `NotFound` when there is no
/// such product.
pub async fn retire_product(
    tx: &mut Tx,
    id: ProductId,
    at: DateTime<Utc>,
) -> Result<Product, StoreError> {
    let changed = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE products SET retired_at = COALESCE(retired_at, $1), updated_at = $1 WHERE id = $2"
    )
    .bind(at)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    product(tx, id).await?.ok_or(StoreError::NotFound)
}

/// The full product (prices, options with values and their prices, add-ons), inside a
/// transaction.
pub async fn product(tx: &mut Tx, id: ProductId) -> Result<Option<Product>, StoreError> {
    find_product(&mut Source::Tx(tx), id, false).await
}

/// The full product inside a transaction, or `None` when `visible_only` and reseller and
/// client keys may not see it (retired, or its group hidden): what a key may order.
pub async fn product_seen(
    tx: &mut Tx,
    id: ProductId,
    visible_only: bool,
) -> Result<Option<Product>, StoreError> {
    find_product(&mut Source::Tx(tx), id, visible_only).await
}

/// The full product, read outside a transaction.
pub async fn get_product(db: &Db, id: ProductId) -> Result<Option<Product>, StoreError> {
    find_product(&mut Source::Db(db), id, false).await
}

/// The product if reseller and client keys may see it (not retired, its group not hidden).
pub async fn get_visible_product(db: &Db, id: ProductId) -> Result<Option<Product>, StoreError> {
    find_product(&mut Source::Db(db), id, true).await
}

/// The condition that hides retired products and hidden groups when `$n` is true.
fn visible_sql(n: usize) -> String {
    format!(
        "(${n} = FALSE OR (p.retired_at IS NULL AND EXISTS \
           (SELECT 1 FROM product_groups g WHERE g.id = p.group_id AND g.hidden = FALSE)))"
    )
}

async fn find_product(
    src: &mut Source<'_>,
    id: ProductId,
    visible_only: bool,
) -> Result<Option<Product>, StoreError> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = $1 AND {}",
        visible_sql(2)
    );
    let row: Option<ProductRow> = on_source!(src, |e| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(visible_only)
        .fetch_optional(e)
        .await)?;
    let Some(row) = row else { return Ok(None) };
    Ok(assemble(src, vec![row]).await?.pop())
}

/// Which products to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub group: Option<ProductGroupId>,
    /// Staff lists may include retired products; ignored when `visible_only`.
    pub include_retired: bool,
    /// Only what reseller and client keys see: not retired, group not hidden.
    pub visible_only: bool,
}

/// A page of full products ordered by id.
pub async fn list_products(
    db: &Db,
    filter: ProductFilter,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<Product>, StoreError> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products p \
         WHERE (CAST($1 AS BIGINT) IS NULL OR p.group_id = $1) \
           AND ($2 = TRUE OR p.retired_at IS NULL) AND {} \
           AND p.id > $4 ORDER BY p.id LIMIT $5",
        visible_sql(3)
    );
    let rows: Vec<ProductRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(filter.group.map(ProductGroupId::get))
        .bind(filter.include_retired && !filter.visible_only)
        .bind(filter.visible_only)
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let products = assemble(&mut Source::Db(db), rows).await?;
    Ok(Page::from_rows(products, limit, |p| p.id.get()))
}

/// Builds full products from their rows: five queries for any number of products, each over
/// the id range of the rows (rows of other products in that range are dropped here).
async fn assemble(src: &mut Source<'_>, rows: Vec<ProductRow>) -> Result<Vec<Product>, StoreError> {
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.id).min(),
        rows.iter().map(|r| r.id).max(),
    ) else {
        return Ok(Vec::new());
    };
    let prices: Vec<PriceRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT product_id AS owner_id, currency, cycle, price_minor, setup_fee_minor \
         FROM product_prices WHERE product_id BETWEEN $1 AND $2"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;
    let options: Vec<OptionRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT id, product_id, name, kind, min_qty, max_qty FROM product_options \
         WHERE product_id BETWEEN $1 AND $2 ORDER BY product_id, sort_order, id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;
    let values: Vec<ValueRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT v.id, v.option_id, v.name FROM option_values v \
         JOIN product_options o ON o.id = v.option_id \
         WHERE o.product_id BETWEEN $1 AND $2 ORDER BY v.option_id, v.sort_order, v.id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;
    let value_prices: Vec<PriceRow> = on_source!(src, |e| {
        sqlx::query_as(
        "SELECT op.value_id AS owner_id, op.currency, op.cycle, op.price_minor, op.setup_fee_minor \
         FROM option_prices op JOIN option_values v ON v.id = op.value_id \
         JOIN product_options o ON o.id = v.option_id WHERE o.product_id BETWEEN $1 AND $2"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await
    })?;
    let addons: Vec<AddonRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT product_id, addon_id FROM product_addons \
         WHERE product_id BETWEEN $1 AND $2 ORDER BY product_id, addon_id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;

    let mut prices_by_owner: HashMap<i64, Vec<Price>> = HashMap::new();
    for r in prices {
        let owner = r.owner_id;
        prices_by_owner
            .entry(owner)
            .or_default()
            .push(r.try_into()?);
    }
    let mut value_prices_by_owner: HashMap<i64, Vec<Price>> = HashMap::new();
    for r in value_prices {
        let owner = r.owner_id;
        value_prices_by_owner
            .entry(owner)
            .or_default()
            .push(r.try_into()?);
    }
    let mut values_by_option: HashMap<i64, Vec<OptionValue>> = HashMap::new();
    for v in values {
        let mut prices = value_prices_by_owner.remove(&v.id).unwrap_or_default();
        sort_prices(&mut prices);
        values_by_option
            .entry(v.option_id)
            .or_default()
            .push(OptionValue {
                id: OptionValueId(v.id),
                name: v.name,
                prices,
            });
    }
    let mut options_by_product: HashMap<i64, Vec<ProductOption>> = HashMap::new();
    for o in options {
        let kind = OptionKind::parse(&o.kind)
            .ok_or_else(|| corrupt(format!("option {} has invalid kind {:?}", o.id, o.kind)))?;
        options_by_product
            .entry(o.product_id)
            .or_default()
            .push(ProductOption {
                id: OptionId(o.id),
                name: o.name,
                kind,
                min_qty: o.min_qty,
                max_qty: o.max_qty,
                values: values_by_option.remove(&o.id).unwrap_or_default(),
            });
    }
    let mut addons_by_product: HashMap<i64, Vec<ProductId>> = HashMap::new();
    for a in addons {
        addons_by_product
            .entry(a.product_id)
            .or_default()
            .push(ProductId(a.addon_id));
    }

    rows.into_iter()
        .map(|r| {
            let id = r.id;
            let mut prices = prices_by_owner.remove(&id).unwrap_or_default();
            sort_prices(&mut prices);
            Ok(Product {
                id: ProductId(id),
                group_id: ProductGroupId(r.group_id),
                kind: ProductKind::parse(&r.kind).ok_or_else(|| {
                    corrupt(format!("product {id} has invalid kind {:?}", r.kind))
                })?,
                name: r.name,
                slug: r.slug,
                description: r.description,
                pay_type: PayType::parse(&r.pay_type).ok_or_else(|| {
                    corrupt(format!(
                        "product {id} has invalid pay type {:?}",
                        r.pay_type
                    ))
                })?,
                tax_class: r.tax_class,
                provisioner: r.provisioner,
                registrar: r.registrar,
                stock: r.stock,
                sold: r.sold,
                retired_at: r.retired_at,
                prices,
                options: options_by_product.remove(&id).unwrap_or_default(),
                addons: addons_by_product.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

/// The kinds of these products, for checking add-on lists: `(id, kind)` of those that exist.
pub async fn product_kinds(
    tx: &mut Tx,
    ids: &[ProductId],
) -> Result<Vec<(ProductId, ProductKind)>, StoreError> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let kind: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(
            "SELECT kind FROM products WHERE id = $1"
        )
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
        if let Some(kind) = kind {
            let kind = ProductKind::parse(&kind)
                .ok_or_else(|| corrupt(format!("product {id} has invalid kind {kind:?}")))?;
            found.push((*id, kind));
        }
    }
    Ok(found)
}

// ------------------------------------------------------------------------------------
// Stock
// ------------------------------------------------------------------------------------

/// Takes `quantity` units of a product's stock: one conditional `UPDATE`, so two orders
/// racing for the last unit cannot both succeed. `true` when the stock moved (a product with
/// unlimited stock always moves: `sold` still counts); `false` when too little is left or
/// there is no such product.
pub async fn take_stock(tx: &mut Tx, id: ProductId, quantity: i64) -> Result<bool, StoreError> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE products SET sold = sold + $2 WHERE id = $1 AND (stock IS NULL OR sold + $2 <= stock)"
    )
    .bind(id.get())
    .bind(quantity)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(moved == 1)
}

/// Gives `quantity` units back (a cancelled order). `false` when fewer than that were sold
/// or there is no such product; `sold` never goes below zero.
pub async fn give_back_stock(
    tx: &mut Tx,
    id: ProductId,
    quantity: i64,
) -> Result<bool, StoreError> {
    let moved = on_tx!(tx, |c| sqlx::query(
        "UPDATE products SET sold = sold - $2 WHERE id = $1 AND sold >= $2"
    )
    .bind(id.get())
    .bind(quantity)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(moved == 1)
}

// ------------------------------------------------------------------------------------
// Tax rules
// ------------------------------------------------------------------------------------

/// A stored tax rule: the rule, the tax class it applies to, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTaxRule {
    pub id: TaxRuleId,
    pub tax_class: String,
    pub rule: TaxRule,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct TaxRuleRow {
    id: i64,
    name: String,
    country: String,
    region: Option<String>,
    level: i64,
    rate: String,
    compound: bool,
    tax_class: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<TaxRuleRow> for StoredTaxRule {
    type Error = StoreError;
    fn try_from(r: TaxRuleRow) -> Result<StoredTaxRule, StoreError> {
        let level = match r.level {
            1 => TaxLevel::First,
            2 => TaxLevel::Second,
            other => return Err(corrupt(format!("tax rule {} has level {other}", r.id))),
        };
        Ok(StoredTaxRule {
            id: TaxRuleId(r.id),
            tax_class: r.tax_class,
            rule: TaxRule {
                name: r.name,
                country: r.country,
                region: r.region,
                level,
                rate: decimal(&r.rate, "tax rate")?,
                compound: r.compound,
            },
            created_at: r.created_at,
        })
    }
}

const TAX_COLUMNS: &str = "id, name, country, region, level, rate, compound, tax_class, created_at";

fn level_number(level: TaxLevel) -> i64 {
    match level {
        TaxLevel::First => 1,
        TaxLevel::Second => 2,
    }
}

/// Creates a tax rule for `tax_class`. One rule per (class, country, region, level):
/// `Conflict { constraint: "tax_rules_place_key" }`.
pub async fn create_tax_rule(
    tx: &mut Tx,
    tax_class: &str,
    rule: &TaxRule,
    at: DateTime<Utc>,
) -> Result<StoredTaxRule, StoreError> {
    let sql = format!(
        "INSERT INTO tax_rules (name, country, region, level, rate, compound, tax_class, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TAX_COLUMNS}"
    );
    let row: TaxRuleRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(&rule.name)
        .bind(&rule.country)
        .bind(rule.region.as_deref())
        .bind(level_number(rule.level))
        .bind(rule.rate.to_string())
        .bind(rule.compound)
        .bind(tax_class)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// Every tax rule, by class, country, region and level.
pub async fn list_tax_rules(db: &Db) -> Result<Vec<StoredTaxRule>, StoreError> {
    let sql = format!(
        "SELECT {TAX_COLUMNS} FROM tax_rules \
         ORDER BY tax_class, country, COALESCE(region, ''), level, id"
    );
    let rows: Vec<TaxRuleRow> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// Deletes a tax rule (issued invoices keep the names and rates they copied). `false` when
/// there was none.
pub async fn delete_tax_rule(tx: &mut Tx, id: TaxRuleId) -> Result<bool, StoreError> {
    let deleted = on_tx!(tx, |c| sqlx::query("DELETE FROM tax_rules WHERE id = $1")
        .bind(id.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(deleted == 1)
}

/// The rules of `tax_class` that may apply in `country` (any case): the country's own (any
/// region) and the `'*'` rules, by level. Choosing between a country's and a region's rule is the tax
/// module's job.
pub async fn tax_rules(
    tx: &mut Tx,
    tax_class: &str,
    country: &str,
) -> Result<Vec<TaxRule>, StoreError> {
    let sql = format!(
        "SELECT {TAX_COLUMNS} FROM tax_rules WHERE tax_class = $1 AND (country = $2 OR country = '*') \
         ORDER BY level, CASE WHEN country = '*' THEN 1 ELSE 0 END, COALESCE(region, ''), id"
    );
    let rows: Vec<TaxRuleRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(tax_class)
        .bind(country.trim().to_ascii_uppercase())
        .fetch_all(&mut *c)
        .await)?;
    rows.into_iter()
        .map(|r| StoredTaxRule::try_from(r).map(|s| s.rule))
        .collect()
}

// ------------------------------------------------------------------------------------
// Exchange rates
// ------------------------------------------------------------------------------------

/// 1 `base` = `rate` `quote`, from `valid_from` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRate {
    pub id: i64,
    pub base: Currency,
    pub quote: Currency,
    pub rate: Decimal,
    pub valid_from: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RateRow {
    id: i64,
    base: String,
    quote: String,
    rate: String,
    valid_from: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<RateRow> for ExchangeRate {
    type Error = StoreError;
    fn try_from(r: RateRow) -> Result<ExchangeRate, StoreError> {
        Ok(ExchangeRate {
            id: r.id,
            base: currency(&r.base)?,
            quote: currency(&r.quote)?,
            rate: decimal(&r.rate, "exchange rate")?,
            valid_from: r.valid_from,
            created_at: r.created_at,
        })
    }
}

const RATE_COLUMNS: &str = "id, base, quote, rate, valid_from, created_at";

/// Adds a rate. The same pair and `valid_from` twice is
/// `Conflict { constraint: "exchange_rates_pair_key" }` (rates are never edited: add a newer one).
pub async fn add_exchange_rate(
    tx: &mut Tx,
    base: Currency,
    quote: Currency,
    rate: Decimal,
    valid_from: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<ExchangeRate, StoreError> {
    let sql = format!(
        "INSERT INTO exchange_rates (base, quote, rate, valid_from, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {RATE_COLUMNS}"
    );
    let row: RateRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(base.code())
        .bind(quote.code())
        .bind(rate.normalize().to_string())
        .bind(crate::db::truncate(valid_from))
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// Which rates to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateFilter {
    pub base: Option<Currency>,
    pub quote: Option<Currency>,
}

/// A page of rates ordered by id (the order they were added).
pub async fn list_exchange_rates(
    db: &Db,
    filter: RateFilter,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<ExchangeRate>, StoreError> {
    let sql = format!(
        "SELECT {RATE_COLUMNS} FROM exchange_rates \
         WHERE (CAST($1 AS TEXT) IS NULL OR base = $1) AND (CAST($2 AS TEXT) IS NULL OR quote = $2) \
           AND id > $3 ORDER BY id LIMIT $4"
    );
    let rows: Vec<RateRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(filter.base.map(|c| c.code()))
        .bind(filter.quote.map(|c| c.code()))
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let rates = rows
        .into_iter()
        .map(ExchangeRate::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(rates, limit, |r| r.id))
}

/// The rate in force at `at`: the one with the latest `valid_from <= at`; exactly 1 when
/// `base == quote`; `None` when no rate had started by then. Only the stored direction is
/// used (a ZWG→USD rate is not inverted into USD→ZWG: inverting would round).
pub async fn exchange_rate(
    tx: &mut Tx,
    base: Currency,
    quote: Currency,
    at: DateTime<Utc>,
) -> Result<Option<Decimal>, StoreError> {
    if base == quote {
        return Ok(Some(Decimal::ONE));
    }
    let rate: Option<String> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT rate FROM exchange_rates WHERE base = $1 AND quote = $2 AND valid_from <= $3 \
         ORDER BY valid_from DESC LIMIT 1"
    )
    .bind(base.code())
    .bind(quote.code())
    .bind(crate::db::truncate(at))
    .fetch_optional(&mut *c)
    .await)?;
    rate.map(|r| decimal(&r, "exchange rate")).transpose()
}

// ------------------------------------------------------------------------------------
// Client groups and billing settings
// ------------------------------------------------------------------------------------

/// A group of clients sharing billing settings; `None` fields fall back to the host default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGroup {
    pub id: ClientGroupId,
    /// Unique, case-insensitively (`client_groups_name_key`).
    pub name: String,
    pub currency: Option<Currency>,
    pub tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every writable field of a client group (validated by the caller: lead days 0..=90,
/// billing day 1..=31).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientGroupFields {
    pub name: String,
    pub currency: Option<Currency>,
    pub tax_exempt: Option<bool>,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct ClientGroupRow {
    id: i64,
    name: String,
    currency: Option<String>,
    tax_exempt: Option<bool>,
    wallet_auto_apply: Option<bool>,
    invoice_lead_days: Option<i64>,
    billing_day: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn small(value: Option<i64>, what: &str) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| u32::try_from(v).map_err(|_| corrupt(format!("{what} {v} is out of range"))))
        .transpose()
}

impl TryFrom<ClientGroupRow> for ClientGroup {
    type Error = StoreError;
    fn try_from(r: ClientGroupRow) -> Result<ClientGroup, StoreError> {
        Ok(ClientGroup {
            id: ClientGroupId(r.id),
            name: r.name,
            currency: r.currency.as_deref().map(currency).transpose()?,
            tax_exempt: r.tax_exempt,
            wallet_auto_apply: r.wallet_auto_apply,
            invoice_lead_days: small(r.invoice_lead_days, "invoice lead days")?,
            billing_day: small(r.billing_day, "billing day")?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const CLIENT_GROUP_COLUMNS: &str = "id, name, currency, tax_exempt, wallet_auto_apply, \
    invoice_lead_days, billing_day, created_at, updated_at";

/// Creates a client group; a name already used (in any case) is
/// `Conflict { constraint: "client_groups_name_key" }`.
pub async fn create_client_group(
    tx: &mut Tx,
    fields: &ClientGroupFields,
    at: DateTime<Utc>,
) -> Result<ClientGroup, StoreError> {
    let sql = format!(
        "INSERT INTO client_groups (name, currency, tax_exempt, wallet_auto_apply, invoice_lead_days, \
           billing_day, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         RETURNING {CLIENT_GROUP_COLUMNS}"
    );
    let row: ClientGroupRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(&fields.name)
        .bind(fields.currency.map(|c| c.code()))
        .bind(fields.tax_exempt)
        .bind(fields.wallet_auto_apply)
        .bind(fields.invoice_lead_days.map(i64::from))
        .bind(fields.billing_day.map(i64::from))
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// Writes every field of a client group. `NotFound` when there is no such group.
pub async fn update_client_group(
    tx: &mut Tx,
    id: ClientGroupId,
    fields: &ClientGroupFields,
    at: DateTime<Utc>,
) -> Result<ClientGroup, StoreError> {
    let sql = format!(
        "UPDATE client_groups SET name = $1, currency = $2, tax_exempt = $3, wallet_auto_apply = $4, \
           invoice_lead_days = $5, billing_day = $6, updated_at = $7 WHERE id = $8 \
         RETURNING {CLIENT_GROUP_COLUMNS}"
    );
    let row: Option<ClientGroupRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(&fields.name)
        .bind(fields.currency.map(|c| c.code()))
        .bind(fields.tax_exempt)
        .bind(fields.wallet_auto_apply)
        .bind(fields.invoice_lead_days.map(i64::from))
        .bind(fields.billing_day.map(i64::from))
        .bind(at)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// The group with this id, inside a transaction.
pub async fn client_group(
    tx: &mut Tx,
    id: ClientGroupId,
) -> Result<Option<ClientGroup>, StoreError> {
    let sql = format!("SELECT {CLIENT_GROUP_COLUMNS} FROM client_groups WHERE id = $1");
    let row: Option<ClientGroupRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.map(TryInto::try_into).transpose()
}

/// The group with this id, read outside a transaction.
pub async fn get_client_group(
    db: &Db,
    id: ClientGroupId,
) -> Result<Option<ClientGroup>, StoreError> {
    let sql = format!("SELECT {CLIENT_GROUP_COLUMNS} FROM client_groups WHERE id = $1");
    let row: Option<ClientGroupRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(p)
        .await)?;
    row.map(TryInto::try_into).transpose()
}

/// Every client group, by name.
pub async fn list_client_groups(db: &Db) -> Result<Vec<ClientGroup>, StoreError> {
    let sql = format!("SELECT {CLIENT_GROUP_COLUMNS} FROM client_groups ORDER BY name, id");
    let rows: Vec<ClientGroupRow> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A client's own billing settings: `None` inherits from its group, then the host default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientBillingSettings {
    pub group_id: Option<ClientGroupId>,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
}

/// What applies to a client: its own value, else its group's, else `None` (the caller applies
/// the host default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveBillingSettings {
    pub client: ClientId,
    pub group_id: Option<ClientGroupId>,
    /// The client's flag or its group's: either one exempts.
    pub tax_exempt: bool,
    pub wallet_auto_apply: Option<bool>,
    pub invoice_lead_days: Option<u32>,
    pub billing_day: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    group_id: Option<i64>,
    wallet_auto_apply: Option<bool>,
    invoice_lead_days: Option<i64>,
    billing_day: Option<i64>,
}

impl TryFrom<SettingsRow> for ClientBillingSettings {
    type Error = StoreError;
    fn try_from(r: SettingsRow) -> Result<ClientBillingSettings, StoreError> {
        Ok(ClientBillingSettings {
            group_id: r.group_id.map(ClientGroupId),
            wallet_auto_apply: r.wallet_auto_apply,
            invoice_lead_days: small(r.invoice_lead_days, "invoice lead days")?,
            billing_day: small(r.billing_day, "billing day")?,
        })
    }
}

/// Writes a client's own billing settings (all four at once), if the scope sees the client.
/// `NotFound` otherwise. An unknown group is refused by its foreign key: check it first.
pub async fn set_client_billing_settings(
    tx: &mut Tx,
    scope: Scope,
    client: ClientId,
    settings: &ClientBillingSettings,
    at: DateTime<Utc>,
) -> Result<ClientBillingSettings, StoreError> {
    let (reseller, only) = crate::clients::scope_params(scope);
    let row: Option<SettingsRow> = on_tx!(tx, |c| sqlx::query_as(
        "UPDATE clients SET group_id = $1, wallet_auto_apply = $2, invoice_lead_days = $3, \
           billing_day = $4, updated_at = $5 \
         WHERE id = $6 AND (CAST($7 AS BIGINT) IS NULL OR reseller_id = $7) \
           AND (CAST($8 AS BIGINT) IS NULL OR id = $8) \
         RETURNING group_id, wallet_auto_apply, invoice_lead_days, billing_day"
    )
    .bind(settings.group_id.map(ClientGroupId::get))
    .bind(settings.wallet_auto_apply)
    .bind(settings.invoice_lead_days.map(i64::from))
    .bind(settings.billing_day.map(i64::from))
    .bind(at)
    .bind(client.get())
    .bind(reseller)
    .bind(only)
    .fetch_optional(&mut *c)
    .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// A client's own billing settings, if the scope sees the client.
pub async fn client_own_billing_settings(
    tx: &mut Tx,
    scope: Scope,
    client: ClientId,
) -> Result<Option<ClientBillingSettings>, StoreError> {
    let (reseller, only) = crate::clients::scope_params(scope);
    let row: Option<SettingsRow> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT group_id, wallet_auto_apply, invoice_lead_days, billing_day FROM clients \
         WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR reseller_id = $2) \
           AND (CAST($3 AS BIGINT) IS NULL OR id = $3)"
    )
    .bind(client.get())
    .bind(reseller)
    .bind(only)
    .fetch_optional(&mut *c)
    .await)?;
    row.map(TryInto::try_into).transpose()
}

#[derive(sqlx::FromRow)]
struct EffectiveRow {
    group_id: Option<i64>,
    client_tax_exempt: bool,
    group_tax_exempt: Option<bool>,
    wallet_auto_apply: Option<bool>,
    invoice_lead_days: Option<i64>,
    billing_day: Option<i64>,
}

/// The settings that apply to a client (own value, else its group's, else `None`).
/// `NotFound` when there is no such client. For billing internals: no scope.
pub async fn client_billing_settings(
    tx: &mut Tx,
    client: ClientId,
) -> Result<EffectiveBillingSettings, StoreError> {
    let row: Option<EffectiveRow> = on_tx!(tx, |c| {
        sqlx::query_as(
        "SELECT c.group_id, c.tax_exempt AS client_tax_exempt, g.tax_exempt AS group_tax_exempt, \
           COALESCE(c.wallet_auto_apply, g.wallet_auto_apply) AS wallet_auto_apply, \
           COALESCE(c.invoice_lead_days, g.invoice_lead_days) AS invoice_lead_days, \
           COALESCE(c.billing_day, g.billing_day) AS billing_day \
         FROM clients c LEFT JOIN client_groups g ON g.id = c.group_id WHERE c.id = $1"
    )
    .bind(client.get())
    .fetch_optional(&mut *c)
    .await
    })?;
    let r = row.ok_or(StoreError::NotFound)?;
    Ok(EffectiveBillingSettings {
        client,
        group_id: r.group_id.map(ClientGroupId),
        tax_exempt: r.client_tax_exempt || r.group_tax_exempt == Some(true),
        wallet_auto_apply: r.wallet_auto_apply,
        invoice_lead_days: small(r.invoice_lead_days, "invoice lead days")?,
        billing_day: small(r.billing_day, "billing day")?,
    })
}

// ------------------------------------------------------------------------------------
// Promotions
// ------------------------------------------------------------------------------------

/// A stored promotion with its id and how often it was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPromotion {
    pub id: PromotionId,
    pub promotion: Promotion,
    pub uses: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PromotionRow {
    id: i64,
    code: String,
    kind: String,
    percent: Option<String>,
    recurring: bool,
    starts_on: Option<NaiveDate>,
    ends_on: Option<NaiveDate>,
    max_uses: Option<i64>,
    max_uses_per_client: Option<i64>,
    uses: i64,
    cycles: String,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PromotionAmountRow {
    promotion_id: i64,
    currency: String,
    amount_minor: i64,
}

#[derive(sqlx::FromRow)]
struct PromotionProductRow {
    promotion_id: i64,
    product_id: i64,
}

const PROMOTION_COLUMNS: &str = "id, code, kind, percent, recurring, starts_on, ends_on, max_uses, \
    max_uses_per_client, uses, cycles, created_at";

fn count(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value} is out of range")))
}

/// Creates a promotion with its fixed amounts (one per currency) and its product list.
/// A code already used is `Conflict { constraint: "promotions_code_key" }`.
pub async fn create_promotion(
    tx: &mut Tx,
    promotion: &Promotion,
    at: DateTime<Utc>,
) -> Result<StoredPromotion, StoreError> {
    let (kind, percent) = match &promotion.value {
        PromoValue::Percent(p) => ("percent", Some(p.normalize().to_string())),
        PromoValue::Fixed(_) => ("fixed", None),
    };
    let cycles = promotion
        .cycles
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let id: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "INSERT INTO promotions (code, kind, percent, recurring, starts_on, ends_on, max_uses, \
           max_uses_per_client, uses, cycles, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10) RETURNING id"
    )
    .bind(&promotion.code)
    .bind(kind)
    .bind(percent.as_deref())
    .bind(promotion.recurring)
    .bind(promotion.starts_on)
    .bind(promotion.ends_on)
    .bind(promotion.max_uses.map(i64::from))
    .bind(promotion.max_uses_per_client.map(i64::from))
    .bind(&cycles)
    .bind(at)
    .fetch_one(&mut *c)
    .await)?;
    if let PromoValue::Fixed(amounts) = &promotion.value {
        for amount in amounts {
            on_tx!(tx, |c| {
                sqlx::query(
                "INSERT INTO promotion_amounts (promotion_id, currency, amount_minor) VALUES ($1, $2, $3)"
            )
            .bind(id)
            .bind(amount.currency().code())
            .bind(amount.minor())
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected())
            })?;
        }
    }
    for product in &promotion.products {
        on_tx!(tx, |c| sqlx::query(
            "INSERT INTO promotion_products (promotion_id, product_id) VALUES ($1, $2)"
        )
        .bind(id)
        .bind(product.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    find_promotion(&mut Source::Tx(tx), Lookup::Id(id))
        .await?
        .ok_or_else(|| corrupt(format!("promotion {id} vanished while it was created")))
}

enum Lookup<'a> {
    Id(i64),
    Code(&'a str),
}

async fn find_promotion(
    src: &mut Source<'_>,
    lookup: Lookup<'_>,
) -> Result<Option<StoredPromotion>, StoreError> {
    let row: Option<PromotionRow> = match lookup {
        Lookup::Id(id) => {
            let sql = format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id = $1");
            on_source!(src, |e| sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(e)
                .await)?
        }
        Lookup::Code(code) => {
            let sql = format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE code = $1");
            on_source!(src, |e| sqlx::query_as(&sql)
                .bind(code)
                .fetch_optional(e)
                .await)?
        }
    };
    let Some(row) = row else { return Ok(None) };
    Ok(assemble_promotions(src, vec![row]).await?.pop())
}

async fn assemble_promotions(
    src: &mut Source<'_>,
    rows: Vec<PromotionRow>,
) -> Result<Vec<StoredPromotion>, StoreError> {
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.id).min(),
        rows.iter().map(|r| r.id).max(),
    ) else {
        return Ok(Vec::new());
    };
    let amounts: Vec<PromotionAmountRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT promotion_id, currency, amount_minor FROM promotion_amounts \
         WHERE promotion_id BETWEEN $1 AND $2 ORDER BY promotion_id, currency"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;
    let products: Vec<PromotionProductRow> = on_source!(src, |e| sqlx::query_as(
        "SELECT promotion_id, product_id FROM promotion_products \
         WHERE promotion_id BETWEEN $1 AND $2 ORDER BY promotion_id, product_id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(e)
    .await)?;
    let mut amounts_by: HashMap<i64, Vec<Money>> = HashMap::new();
    for a in amounts {
        amounts_by
            .entry(a.promotion_id)
            .or_default()
            .push(Money::new(a.amount_minor, currency(&a.currency)?));
    }
    let mut products_by: HashMap<i64, Vec<ProductId>> = HashMap::new();
    for p in products {
        products_by
            .entry(p.promotion_id)
            .or_default()
            .push(ProductId(p.product_id));
    }
    rows.into_iter()
        .map(|r| {
            let id = r.id;
            let value = match (r.kind.as_str(), r.percent.as_deref()) {
                ("percent", Some(p)) => PromoValue::Percent(decimal(p, "promotion percent")?),
                ("fixed", _) => PromoValue::Fixed(amounts_by.remove(&id).unwrap_or_default()),
                _ => {
                    return Err(corrupt(format!(
                        "promotion {id} has kind {:?} without its value",
                        r.kind
                    )));
                }
            };
            let cycles = r
                .cycles
                .split(',')
                .filter(|c| !c.is_empty())
                .map(cycle)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(StoredPromotion {
                id: PromotionId(id),
                promotion: Promotion {
                    code: r.code,
                    value,
                    recurring: r.recurring,
                    starts_on: r.starts_on,
                    ends_on: r.ends_on,
                    max_uses: r.max_uses.map(|v| count(v, "max uses")).transpose()?,
                    max_uses_per_client: r
                        .max_uses_per_client
                        .map(|v| count(v, "max uses per client"))
                        .transpose()?,
                    products: products_by.remove(&id).unwrap_or_default(),
                    cycles,
                },
                uses: count(r.uses, "uses")?,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// A page of promotions ordered by id.
pub async fn list_promotions(
    db: &Db,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<StoredPromotion>, StoreError> {
    let sql =
        format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE id > $1 ORDER BY id LIMIT $2");
    let rows: Vec<PromotionRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let promotions = assemble_promotions(&mut Source::Db(db), rows).await?;
    Ok(Page::from_rows(promotions, limit, |p| p.id.get()))
}

/// The promotion with this code, its id and how often it was used, inside a transaction.
pub async fn promotion_by_code(
    tx: &mut Tx,
    code: &str,
) -> Result<Option<(PromotionId, Promotion, u32)>, StoreError> {
    Ok(find_promotion(&mut Source::Tx(tx), Lookup::Code(code))
        .await?
        .map(|s| (s.id, s.promotion, s.uses)))
}

/// The promotion with this code, read outside a transaction.
pub async fn get_promotion_by_code(
    db: &Db,
    code: &str,
) -> Result<Option<StoredPromotion>, StoreError> {
    find_promotion(&mut Source::Db(db), Lookup::Code(code)).await
}

/// How often `client` has used the promotion.
pub async fn promotion_client_uses(
    tx: &mut Tx,
    id: PromotionId,
    client: ClientId,
) -> Result<u32, StoreError> {
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM promotion_uses WHERE promotion_id = $1 AND client_id = $2"
    )
    .bind(id.get())
    .bind(client.get())
    .fetch_one(&mut *c)
    .await)?;
    count(n, "promotion uses")
}

/// Uses a promotion for an order: one conditional increment of `uses` that respects
/// `max_uses`, then the `promotion_uses` row. `false` (and nothing written) when the
/// promotion is used up, or `client` has used it `max_uses_per_client` times, or there is
/// no such promotion.
///
/// Concurrency: the increment locks the promotion's row until the caller commits, so the
/// per-client count taken after it sees every use committed before; two orders racing for
/// the last use queue on the row and the second finds `uses = max_uses`.
pub async fn use_promotion(
    tx: &mut Tx,
    id: PromotionId,
    client: ClientId,
    order: OrderId,
) -> Result<bool, StoreError> {
    let moved = on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE promotions SET uses = uses + 1 WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)"
    )
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    if moved == 0 {
        return Ok(false);
    }
    let per_client: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT max_uses_per_client FROM promotions WHERE id = $1"
    )
    .bind(id.get())
    .fetch_one(&mut *c)
    .await)?;
    if let Some(limit) = per_client
        && i64::from(promotion_client_uses(tx, id, client).await?) >= limit
    {
        on_tx!(tx, |c| sqlx::query(
            "UPDATE promotions SET uses = uses - 1 WHERE id = $1"
        )
        .bind(id.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        return Ok(false);
    }
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO promotion_uses (promotion_id, client_id, order_id) VALUES ($1, $2, $3)"
    )
    .bind(id.get())
    .bind(client.get())
    .bind(order.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(true)
}

/// Ends a promotion: sets `ends_on` (the last day it applies), never deletes it (orders and
/// services point at it). `NotFound` when there is no such promotion.
pub async fn deactivate_promotion(
    tx: &mut Tx,
    id: PromotionId,
    ends_on: NaiveDate,
) -> Result<StoredPromotion, StoreError> {
    let changed = on_tx!(tx, |c| sqlx::query(
        "UPDATE promotions SET ends_on = $1 WHERE id = $2"
    )
    .bind(ends_on)
    .bind(id.get())
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    find_promotion(&mut Source::Tx(tx), Lookup::Id(id.get()))
        .await?
        .ok_or(StoreError::NotFound)
}
