//! Orders: a cart of products becomes pending services and their first invoice, in one
//! transaction. Paying the invoice starts the services ([`crate::settlement::paid`]).
//!
//! The first invoice of an item bills, per service: the first period of the product and of
//! each chosen option (or, when the client is aligned to a billing day, the prorated days up
//! to that day), the setup fees, and the promotion's discount on the recurring part. A
//! recurring promotion lowers the service's recurring amount for good; a first-period one
//! does not.

use crate::audit::record;
use crate::billing::{ClientTerms, Lookups, parse_currency};
use crate::invoices::{InvoiceView, Issue, issue_in};
use crate::settlement::settle_new;
use crate::{App, AppError, Ctx};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::catalog::{OptionChoice, Product};
use keel_domain::cycle::{self, Anniversary, BillingCycle, Period};
use keel_domain::ids::{ClientId, OrderId, ProductId, PromotionId, ServiceId};
use keel_domain::invoice::LineInput;
use keel_domain::lifecycle::{InvoiceKind, LineKind, OrderStatus, ProductKind, ServiceStatus};
use keel_domain::promotion::{self, PromoUsage, Promotion};
use keel_domain::proration;
use keel_domain::tenancy::Scope;
use keel_store::catalog as catalog_store;
use keel_store::{self as store, services::NewService};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonInput {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// Default: the parent item's cycle.
    #[schema(value_type = Option<keel_domain::cycle::BillingCycle>)]
    pub cycle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItem {
    #[schema(minimum = 1)]
    pub product_id: i64,
    /// monthly, quarterly, semi_annually, annually, biennially, triennially, one_time or free.
    #[schema(value_type = keel_domain::cycle::BillingCycle)]
    pub cycle: String,
    #[serde(default)]
    pub options: Vec<OptionChoice>,
    /// A domain name or a label for the service; default: the product's name.
    #[schema(schema_with = keel_domain::text::schema::label)]
    pub label: Option<String>,
    #[serde(default)]
    pub addons: Vec<AddonInput>,
}

/// The most items one order holds (the document's `maxItems` on `items`).
pub const MAX_ORDER_ITEMS: usize = 50;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    /// Required for staff and reseller keys; a client key orders for itself.
    #[schema(minimum = 1)]
    pub client_id: Option<i64>,
    /// Default: the client's currency.
    #[schema(value_type = Option<keel_domain::currency::Currency>)]
    pub currency: Option<String>,
    #[schema(schema_with = keel_domain::promotion::code_schema)]
    pub promo_code: Option<String>,
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrderView {
    pub id: OrderId,
    pub client_id: ClientId,
    pub status: OrderStatus,
    pub service_ids: Vec<ServiceId>,
    pub invoice: InvoiceView,
}

fn parse_cycle(text: &str, field: &str) -> Result<BillingCycle, AppError> {
    text.parse()
        .map_err(|e: cycle::BillingError| AppError::invalid(e.code(), Some(field), e.to_string()))
}

/// One service to create, priced.
struct Planned {
    product: Product,
    cycle: BillingCycle,
    label: String,
    parent: Option<usize>,
    /// Per period, after a recurring promotion.
    recurring: Money,
    anniversary: Anniversary,
    next_period: u32,
    next_due: Option<NaiveDate>,
    lines: Vec<LineInput>,
    promotion: Option<PromotionId>,
    options: Vec<keel_store::services::ChosenOption>,
}

/// Places an order: checks every item, creates pending services and issues the first
/// invoice; the wallet pays what it can when the client's terms say so. `key` makes a retry
/// return the same order (the API passes its `Idempotency-Key`).
pub async fn place(
    app: &App,
    ctx: &Ctx,
    input: &OrderInput,
    key: Option<&str>,
) -> Result<OrderView, AppError> {
    ctx.require(Permission::Order)?;
    crate::check_item_labels(input.items.iter().map(|i| i.label.as_deref()))?;
    let client_id = ctx.target_client(input.client_id)?;
    if input.items.is_empty() {
        return Err(AppError::invalid(
            "empty_order",
            Some("items"),
            "an order needs at least one item",
        ));
    }
    if input.items.len() > MAX_ORDER_ITEMS {
        return Err(AppError::invalid(
            "too_many_items",
            Some("items"),
            format!("an order holds at most {MAX_ORDER_ITEMS} items"),
        ));
    }
    let mut tx = app.db.begin().await?;
    let client = keel_store::clients::client_for_update(&mut tx, ctx.actor.scope(), client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    if client.status == keel_domain::client::ClientStatus::Closed {
        return Err(AppError::conflict(
            "client_closed",
            "this client is closed and cannot order; reopen it (status active) first",
        ));
    }
    // The key is the caller's own (Stripe's semantics): two API keys acting for one client
    // may use the same `Idempotency-Key` for different orders.
    let key = match key {
        Some(k) => format!("{}:{k}", crate::ledger::principal(&ctx.actor)),
        None => uuid_like(app),
    };
    if let Some(existing) = store::orders::order_by_key(&mut tx, client_id, &key).await? {
        drop(tx);
        return order_view(app, existing.id).await;
    }
    let currency = match input.currency.as_deref() {
        Some(c) => parse_currency(c, "currency")?,
        None => client.currency,
    };
    let row = store::billing_run::billing_client(&mut tx, client_id)
        .await?
        .ok_or(AppError::NotFound { what: "client" })?;
    let terms = ClientTerms::of(&row, &app.billing);
    let today = app.today();
    let mut lookups = Lookups::default();

    // The promotion, checked once for the order.
    let promo: Option<(PromotionId, Promotion, u32)> = match input.promo_code.as_deref() {
        None => None,
        Some(code) => {
            let code = promotion::validate_code(code)
                .map_err(|e| AppError::invalid(e.code(), Some("promo_code"), e.to_string()))?;
            let found = catalog_store::promotion_by_code(&mut tx, &code)
                .await?
                .ok_or_else(|| {
                    AppError::invalid(
                        "unknown_promo_code",
                        Some("promo_code"),
                        format!("there is no promotion code {code}"),
                    )
                })?;
            Some(found)
        }
    };
    let client_uses = match &promo {
        Some((id, _, _)) => catalog_store::promotion_client_uses(&mut tx, *id, client_id).await?,
        None => 0,
    };
    let mut promo_applied = false;

    let mut planned: Vec<Planned> = Vec::new();
    for (i, item) in input.items.iter().enumerate() {
        let field = |f: &str| format!("items[{i}].{f}");
        let cycle = parse_cycle(&item.cycle, &field("cycle"))?;
        let product = load_product(&mut tx, ctx, item.product_id, &field("product_id")).await?;
        if product.kind == ProductKind::Addon {
            return Err(AppError::invalid(
                "addon_alone",
                Some(&field("product_id")),
                format!(
                    "{} is an add-on and is ordered with the product it belongs to",
                    product.name
                ),
            ));
        }
        let taxes = lookups
            .taxes(
                &mut tx,
                product.tax_class.as_deref(),
                row.country.as_str(),
                row.region.as_deref(),
            )
            .await?;
        let promo_here = match &promo {
            Some((id, p, uses)) => {
                let usage = PromoUsage {
                    total: *uses,
                    by_client: client_uses,
                };
                match promotion::check(p, today, usage, product.id, cycle, currency) {
                    Ok(()) => Some((*id, p.clone())),
                    // A code that fits no item is an error; one that fits some items is fine.
                    Err(e) if is_fatal_promo_error(&e) => {
                        return Err(AppError::invalid(
                            e.code(),
                            Some("promo_code"),
                            e.to_string(),
                        ));
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        promo_applied |= promo_here.is_some();
        let label = item
            .label
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(&product.name)
            .to_string();
        let plan = plan_item(
            &product,
            cycle,
            currency,
            &item.options,
            label,
            today,
            terms.billing_day,
            &taxes,
            promo_here.as_ref(),
            &field(""),
        )?;
        let parent = planned.len();
        planned.push(plan);
        for (j, addon) in item.addons.iter().enumerate() {
            let afield = |f: &str| format!("items[{i}].addons[{j}].{f}");
            // An add-on is offered through its parent (which the key can see), so it may sit
            // in a hidden group of add-ons; it must still not be retired.
            let ap = load_product(
                &mut tx,
                &Ctx::system("add-on"),
                addon.product_id,
                &afield("product_id"),
            )
            .await?;
            if !planned[parent].product.addons.contains(&ap.id) {
                return Err(AppError::invalid(
                    "addon_not_offered",
                    Some(&afield("product_id")),
                    format!(
                        "{} is not an add-on of {}",
                        ap.name, planned[parent].product.name
                    ),
                ));
            }
            let acycle = match addon.cycle.as_deref() {
                Some(c) => parse_cycle(c, &afield("cycle"))?,
                None => cycle,
            };
            let ataxes = lookups
                .taxes(
                    &mut tx,
                    ap.tax_class.as_deref(),
                    row.country.as_str(),
                    row.region.as_deref(),
                )
                .await?;
            let name = ap.name.clone();
            let mut aplan = plan_item(
                &ap,
                acycle,
                currency,
                &[],
                name,
                today,
                terms.billing_day,
                &ataxes,
                None,
                &afield(""),
            )?;
            aplan.parent = Some(parent);
            planned.push(aplan);
        }
    }
    if let Some((_, p, _)) = &promo
        && !promo_applied
    {
        return Err(AppError::invalid(
            "promo_not_applicable",
            Some("promo_code"),
            format!(
                "promotion code {} applies to none of the ordered products",
                p.code
            ),
        ));
    }

    // Stock, then the order, the services and the invoice.
    for p in &planned {
        if !catalog_store::take_stock(&mut tx, p.product.id, 1).await? {
            return Err(AppError::invalid(
                "out_of_stock",
                Some("items"),
                format!("{} is out of stock", p.product.name),
            ));
        }
    }
    let now = app.now();
    let order = store::orders::insert_order(
        &mut tx,
        client_id,
        client.reseller_id,
        currency,
        promo.as_ref().map(|(id, _, _)| *id),
        &key,
        now,
    )
    .await?;
    if let Some((id, p, _)) = &promo
        && !catalog_store::use_promotion(&mut tx, *id, client_id, order.id).await?
    {
        return Err(AppError::invalid(
            "promo_exhausted",
            Some("promo_code"),
            format!("promotion code {} has been used up", p.code),
        ));
    }
    let mut service_ids: Vec<ServiceId> = Vec::new();
    let mut lines = Vec::new();
    for p in planned.iter_mut() {
        let parent = p.parent.map(|i| service_ids[i]);
        let service = store::services::insert_service(
            &mut tx,
            &NewService {
                client_id,
                reseller_id: client.reseller_id,
                order_id: Some(order.id),
                product_id: p.product.id,
                parent_id: parent,
                label: p.label.clone(),
                cycle: p.cycle,
                recurring: p.recurring,
                promotion_id: p.promotion,
                status: ServiceStatus::Pending,
                registration_date: today,
                anniversary: p.anniversary,
                next_period: p.next_period,
                next_due_date: p.next_due,
            },
            &format!("order {}", order.id),
            ctx.actor.label(),
            now,
        )
        .await?;
        service_ids.push(service.id);
        store::services::set_service_options(&mut tx, service.id, &p.options).await?;
        for mut l in std::mem::take(&mut p.lines) {
            l.service = Some(service.id);
            lines.push(l);
        }
    }
    let due = today + chrono::Days::new(u64::from(app.billing.order_due_days));
    let inv = issue_in(
        &mut tx,
        app,
        &mut lookups,
        Issue {
            client: row,
            reseller: client.reseller_id,
            kind: InvoiceKind::Standard,
            currency,
            lines,
            issue_date: today,
            due_date: due,
        },
    )
    .await?;
    let inv = settle_new(
        &mut tx,
        app,
        ctx,
        &mut lookups,
        inv,
        terms.wallet_auto_apply,
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "order.place",
        "order",
        order.id,
        json!({ "invoice": inv.number, "services": service_ids, "total": crate::ledger::Amount::from(inv.total) }),
    )
    .await?;
    tx.commit().await?;
    order_view(app, order.id).await
}

/// Whether a promotion error concerns the whole code (expired, used up) rather than one item.
fn is_fatal_promo_error(e: &promotion::PromoError) -> bool {
    !matches!(
        e.code(),
        "promo_not_applicable_product" | "promo_not_applicable_cycle"
    )
}

fn uuid_like(app: &App) -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().r#gen();
    format!("auto-{}-{n:032x}", app.now().timestamp())
}

/// A product the actor may order: outside the host scope, a retired product or one in a
/// hidden group does not exist (as when reading it), so a key cannot order what it cannot see.
async fn load_product(
    tx: &mut keel_store::Tx,
    ctx: &Ctx,
    id: i64,
    field: &str,
) -> Result<Product, AppError> {
    let visible_only = ctx.actor.scope() != Scope::Host;
    let product = catalog_store::product_seen(tx, ProductId(id), visible_only)
        .await?
        .ok_or_else(|| {
            AppError::invalid(
                "unknown_product",
                Some(field),
                format!("there is no product {id}"),
            )
        })?;
    product
        .check_orderable(1)
        .map_err(|e| AppError::invalid(e.code(), Some(field), e.to_string()))?;
    Ok(product)
}

#[allow(clippy::too_many_arguments)]
fn plan_item(
    product: &Product,
    cycle: BillingCycle,
    currency: keel_domain::Currency,
    options: &[OptionChoice],
    label: String,
    today: NaiveDate,
    billing_day: Option<u32>,
    taxes: &keel_domain::tax::Taxes,
    promo: Option<&(PromotionId, Promotion)>,
    field: &str,
) -> Result<Planned, AppError> {
    let catalog_err = |e: keel_domain::catalog::CatalogError| {
        AppError::invalid(
            e.code(),
            Some(&format!("{field}{}", e.field())),
            e.to_string(),
        )
    };
    let quote = product
        .quote(currency, cycle, options)
        .map_err(catalog_err)?;
    let zero = Money::zero(currency);
    let mut lines = Vec::new();
    let line = |kind, description: String, unit: Money, discount: Money, period| LineInput {
        kind,
        description,
        quantity: 1,
        unit,
        discount,
        service: None,
        period,
        taxes: taxes.clone(),
    };
    let promo_err =
        |e: promotion::PromoError| AppError::invalid(e.code(), Some("promo_code"), e.to_string());
    // The discount on the recurring part (product + options) of the first charge.
    let discount_of = |amount: Money| -> Result<Money, AppError> {
        match promo {
            Some((_, p)) if amount.is_positive() => {
                promotion::discount(&p.value, amount).map_err(promo_err)
            }
            _ => Ok(zero),
        }
    };
    let recurring_discount = match promo {
        Some((_, p)) if p.recurring => discount_of(quote.recurring)?,
        _ => zero,
    };
    let recurring = quote.recurring.checked_sub(recurring_discount)?;

    // (anniversary with the billing day it keeps, next period, next due date, the first
    // period billed, the proration factor as days of days when the first charge is prorated
    // to the billing day)
    type Start = (
        Anniversary,
        u32,
        Option<NaiveDate>,
        Option<(u32, Period)>,
        Option<(i64, i64)>,
    );
    let (anniversary, next_period, next_due, first_period, factor): Start = if cycle.is_recurring()
    {
        let aligned = match billing_day {
            Some(day) => Some(
                proration::align_to_billing_day(quote.recurring, cycle, today, day).map_err(
                    |e| AppError::invalid(e.code(), Some(&format!("{field}cycle")), e.to_string()),
                )?,
            ),
            None => None,
        };
        match aligned {
            Some(a) if a.anniversary.date() != today => (
                a.anniversary,
                0,
                Some(a.anniversary.date()),
                None,
                Some((a.first_period.days(), a.period_days)),
            ),
            // Ordered on the billing day (a.first_period is period 0), or not aligned.
            _ => {
                let anniversary = aligned.map_or(Anniversary::new(today), |a| a.anniversary);
                let period = cycle::period_at(anniversary, cycle, 0).ok_or_else(|| {
                    AppError::invalid("date_out_of_range", Some(field), "the date is out of range")
                })?;
                (anniversary, 1, Some(period.end), Some((0, period)), None)
            }
        }
    } else {
        (Anniversary::new(today), 1, None, None, None)
    };
    let prorate = |m: Money| -> Result<Money, AppError> {
        match factor {
            Some((days, of)) => proration::prorate(m, days, of)
                .map_err(|e| AppError::invalid(e.code(), Some(field), e.to_string())),
            None => Ok(m),
        }
    };
    let span = |p: &Option<(u32, Period)>| match p {
        Some((_, p)) => format!(" ({} to {})", p.start, p.end.pred_opt().unwrap_or(p.end)),
        None => match factor {
            Some(_) => format!(" (prorated to {})", anniversary.date()),
            None => String::new(),
        },
    };
    let base = prorate(quote.base)?;
    let option_amounts: Vec<Money> = quote
        .options
        .iter()
        .map(|o| prorate(o.recurring))
        .collect::<Result<_, _>>()?;
    let first_recurring = option_amounts
        .iter()
        .try_fold(base, |acc, m| acc.checked_add(*m))?;
    // The first charge's discount is taken on the product line, up to its amount, and the rest
    // on the option lines in order.
    let mut discount_left = discount_of(first_recurring)?;
    let mut take = |amount: Money| -> Money {
        let d = Money::new(discount_left.minor().min(amount.minor()).max(0), currency);
        discount_left = Money::new(discount_left.minor() - d.minor(), currency);
        d
    };
    let kind = if factor.is_some() {
        LineKind::Proration
    } else {
        LineKind::Service
    };
    let d = take(base);
    lines.push(line(
        kind,
        format!("{label}{}", span(&first_period)),
        base,
        d,
        first_period,
    ));
    for (o, amount) in quote.options.iter().zip(option_amounts) {
        let d = take(amount);
        // Tagged with the period like the product line: a downgrade's credit for unused
        // time may come from it (plan_change::credit_unused).
        lines.push(line(
            LineKind::Option,
            format!("{label}: {}", o.description),
            amount,
            d,
            first_period,
        ));
    }
    if quote.setup_fee.is_positive() {
        lines.push(line(
            LineKind::Setup,
            format!("{label}: setup"),
            quote.setup_fee,
            zero,
            None,
        ));
    }
    Ok(Planned {
        product: product.clone(),
        cycle,
        label,
        parent: None,
        recurring,
        anniversary,
        next_period,
        next_due,
        lines,
        promotion: promo.map(|(id, _)| *id),
        options: quote
            .options
            .iter()
            .map(|o| (o.option_id, o.value_id, o.quantity))
            .collect(),
    })
}

/// The order with its services and first invoice.
pub async fn get(app: &App, ctx: &Ctx, id: OrderId) -> Result<OrderView, AppError> {
    ctx.require(Permission::BillingRead)?;
    store::orders::get_order(&app.db, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "order" })?;
    order_view(app, id).await
}

async fn order_view(app: &App, id: OrderId) -> Result<OrderView, AppError> {
    let order = store::orders::get_order(&app.db, Scope::Host, id)
        .await?
        .ok_or(AppError::NotFound { what: "order" })?;
    let service_ids = store::orders::services_of_order(&app.db, id).await?;
    let invoice_id = store::orders::order_invoice(&app.db, id)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    let invoice = crate::invoices::get(app, &Ctx::system("read-back"), invoice_id).await?;
    Ok(OrderView {
        id,
        client_id: order.client_id,
        status: order.status,
        service_ids,
        invoice,
    })
}

/// The statuses staff may set an order to; it becomes active only when paid.
pub const CLOSING_STATUSES: [OrderStatus; 2] = [OrderStatus::Cancelled, OrderStatus::Fraud];

fn closing_status_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(CLOSING_STATUSES.iter().map(|s| s.as_str())))
        .build()
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderStatusInput {
    /// `cancelled` or `fraud`.
    #[schema(schema_with = closing_status_schema)]
    pub status: OrderStatus,
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
}

/// Cancels a pending order, or marks it as fraud: its pending services are cancelled, its
/// stock is given back, and its first invoice is cancelled (the issue entry reversed) when
/// nothing was paid on it. An order whose invoice was paid is refused: credit it instead.
pub async fn close(
    app: &App,
    ctx: &Ctx,
    id: OrderId,
    input: &OrderStatusInput,
) -> Result<OrderView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    if !CLOSING_STATUSES.contains(&input.status) {
        return Err(AppError::invalid(
            "invalid_status",
            Some("status"),
            "an order can be set to cancelled or fraud; it becomes active when paid",
        ));
    }
    let reason = crate::required_reason(&input.reason)?;
    let order = store::orders::get_order(&app.db, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "order" })?;
    if order.status != OrderStatus::Pending {
        return Err(AppError::conflict(
            "order_not_pending",
            format!("the order is {} and cannot be closed", order.status),
        ));
    }
    let invoice = store::orders::order_invoice(&app.db, id).await?;
    let mut tx = app.db.begin().await?;
    let now = app.now();
    if let Some(inv_id) = invoice {
        let inv = store::invoices::invoice_for_update(&mut tx, Scope::Host, inv_id)
            .await?
            .ok_or(AppError::NotFound { what: "invoice" })?;
        if inv.paid.is_positive() {
            return Err(AppError::conflict(
                "order_has_payments",
                "money was paid on this order's invoice; issue a credit note instead",
            ));
        }
        if inv
            .status
            .can_become(keel_domain::lifecycle::InvoiceStatus::Cancelled)
        {
            if let Some(entry) = inv.issue_entry_id {
                keel_store::ledger::reverse(
                    &mut tx,
                    entry,
                    &format!("invoice:cancel:{inv_id}"),
                    reason,
                    now,
                )
                .await?;
            }
            store::invoices::set_invoice_status(
                &mut tx,
                inv_id,
                inv.status,
                keel_domain::lifecycle::InvoiceStatus::Cancelled,
                now,
            )
            .await?;
        }
    }
    for sid in store::orders::services_of_order(&app.db, id).await? {
        let Some(s) = store::services::service_for_update(&mut tx, Scope::Host, sid).await? else {
            continue;
        };
        if s.status != ServiceStatus::Pending {
            continue;
        }
        if store::services::set_service_status(
            &mut tx,
            s.id,
            ServiceStatus::Pending,
            ServiceStatus::Cancelled,
            &format!("order {}: {reason}", input.status),
            ctx.actor.label(),
            None,
            now,
        )
        .await?
        {
            catalog_store::give_back_stock(&mut tx, s.product_id, 1).await?;
        }
    }
    if !store::orders::set_order_status(&mut tx, id, OrderStatus::Pending, input.status, now)
        .await?
    {
        return Err(AppError::conflict(
            "order_not_pending",
            "the order changed meanwhile",
        ));
    }
    record(
        &mut tx,
        app,
        ctx,
        "order.close",
        "order",
        id,
        json!({ "status": input.status, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    order_view(app, id).await
}
