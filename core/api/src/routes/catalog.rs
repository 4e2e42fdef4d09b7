//! The catalog: product groups, products and their prices, quotes, tax rules, exchange rates,
//! client groups, a client's billing settings, promotions.

use super::{List, PageQuery};
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use keel_app::catalog::{
    self as uc, BillingSettingsInput, BillingSettingsView, ClientGroupChanges, ClientGroupView,
    ExchangeRateView, ListProducts, ListRates, NewClientGroupInput, NewExchangeRateInput,
    NewProductGroupInput, NewProductInput, NewPromotionInput, NewTaxRuleInput, PricesInput,
    ProductChanges, ProductGroupView, ProductView, PromotionView, QuoteInput, QuoteView,
    TaxRuleView,
};
use keel_domain::ids::{ClientGroupId, ClientId, ProductGroupId, ProductId, TaxRuleId};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<State> {
    Router::new()
        .route(
            "/product-groups",
            get(list_product_groups).post(create_product_group),
        )
        .route("/products", get(list_products).post(create_product))
        .route("/products/{id}", get(show_product).patch(update_product))
        .route("/products/{id}/prices", put(replace_prices))
        .route("/products/{id}/retire", post(retire_product))
        .route("/products/{id}/quote", post(quote))
        .route("/tax-rules", get(list_tax_rules).post(create_tax_rule))
        .route("/tax-rules/{id}", delete(delete_tax_rule))
        .route(
            "/exchange-rates",
            get(list_exchange_rates).post(add_exchange_rate),
        )
        .route(
            "/client-groups",
            get(list_client_groups).post(create_client_group),
        )
        .route("/client-groups/{id}", patch(update_client_group))
        .route("/clients/{id}/billing-settings", put(set_billing_settings))
        .route("/promotions", get(list_promotions).post(create_promotion))
        .route("/promotions/{code}", get(show_promotion))
}

// ------------------------------------------------------------------------------------
// Product groups
// ------------------------------------------------------------------------------------

/// Product groups in display order (hidden ones for staff only).
#[utoipa::path(get, path = "/api/v1/product-groups", tag = "catalog",
    responses((status = 200, body = Vec<ProductGroupView>), (status = 401, body = ErrorBody)))]
pub async fn list_product_groups(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<ProductGroupView>>, ApiError> {
    Ok(axum::Json(uc::list_product_groups(&state.app, &ctx).await?))
}

/// Create a product group.
#[utoipa::path(post, path = "/api/v1/product-groups", tag = "catalog", request_body = NewProductGroupInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = ProductGroupView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_product_group(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewProductGroupInput>,
) -> Result<(StatusCode, axum::Json<ProductGroupView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_product_group_answering(
                &state.app,
                &ctx,
                body,
                slot.answer(StatusCode::CREATED),
            )
            .await?,
        ),
    ))
}

// ------------------------------------------------------------------------------------
// Products
// ------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Only this group's products.
    pub group_id: Option<i64>,
    /// Staff only: list retired products too.
    #[serde(default)]
    pub include_retired: bool,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// Products with prices, options and add-ons (outside the host scope: only orderable ones).
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = List<ProductView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_products(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<ProductQuery>,
) -> Result<axum::Json<List<ProductView>>, ApiError> {
    let page = uc::list_products(
        &state.app,
        &ctx,
        &ListProducts {
            group: q.group_id.map(ProductGroupId),
            include_retired: q.include_retired,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(axum::Json(page.into()))
}

/// Create a product with its prices, configurable options and add-ons.
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", request_body = NewProductInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = ProductView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_product(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewProductInput>,
) -> Result<(StatusCode, axum::Json<ProductView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_product_answering(&state.app, &ctx, body, slot.answer(StatusCode::CREATED))
                .await?,
        ),
    ))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn show_product(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<ProductView>, ApiError> {
    Ok(axum::Json(
        uc::get_product(&state.app, &ctx, ProductId(id)).await?,
    ))
}

/// Change a product's name, description, tax class, plugins or stock (`null` clears).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = i64, Path)),
    request_body = ProductChanges,
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_product(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<ProductChanges>,
) -> Result<axum::Json<ProductView>, ApiError> {
    Ok(axum::Json(
        uc::update_product(&state.app, &ctx, ProductId(id), body).await?,
    ))
}

/// Replace every price of a product (services already sold keep their amounts).
#[utoipa::path(put, path = "/api/v1/products/{id}/prices", tag = "catalog", params(("id" = i64, Path)),
    request_body = PricesInput,
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replace_prices(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<PricesInput>,
) -> Result<axum::Json<ProductView>, ApiError> {
    Ok(axum::Json(
        uc::replace_prices(&state.app, &ctx, ProductId(id), body).await?,
    ))
}

/// Retire a product: still readable, no longer orderable. Never deletes.
#[utoipa::path(post, path = "/api/v1/products/{id}/retire", tag = "catalog", params(("id" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 200, body = ProductView), (status = 404, body = ErrorBody)))]
pub async fn retire_product(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<ProductView>, ApiError> {
    Ok(axum::Json(
        uc::retire_product(&state.app, &ctx, ProductId(id)).await?,
    ))
}

/// Price one item in a currency and cycle with option choices (before promotions and tax).
#[utoipa::path(post, path = "/api/v1/products/{id}/quote", tag = "catalog", params(("id" = i64, Path)),
    request_body = QuoteInput,
    responses((status = 200, body = QuoteView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quote(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<QuoteInput>,
) -> Result<axum::Json<QuoteView>, ApiError> {
    Ok(axum::Json(
        uc::quote(&state.app, &ctx, ProductId(id), body).await?,
    ))
}

// ------------------------------------------------------------------------------------
// Tax rules
// ------------------------------------------------------------------------------------

/// Every tax rule (host scope).
#[utoipa::path(get, path = "/api/v1/tax-rules", tag = "catalog",
    responses((status = 200, body = Vec<TaxRuleView>), (status = 403, body = ErrorBody)))]
pub async fn list_tax_rules(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<TaxRuleView>>, ApiError> {
    Ok(axum::Json(uc::list_tax_rules(&state.app, &ctx).await?))
}

/// Create a tax rule for a tax class, place and level.
#[utoipa::path(post, path = "/api/v1/tax-rules", tag = "catalog", request_body = NewTaxRuleInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = TaxRuleView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_tax_rule(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewTaxRuleInput>,
) -> Result<(StatusCode, axum::Json<TaxRuleView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_tax_rule_answering(&state.app, &ctx, body, slot.answer(StatusCode::CREATED))
                .await?,
        ),
    ))
}

/// Delete a tax rule (issued invoices keep what they copied).
#[utoipa::path(delete, path = "/api/v1/tax-rules/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_tax_rule(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    uc::delete_tax_rule(&state.app, &ctx, TaxRuleId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------
// Exchange rates
// ------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RateQuery {
    #[param(value_type = Option<keel_domain::currency::Currency>)]
    pub base: Option<String>,
    #[param(value_type = Option<keel_domain::currency::Currency>)]
    pub quote: Option<String>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// Exchange rates in the order they were added (host scope).
#[utoipa::path(get, path = "/api/v1/exchange-rates", tag = "catalog", params(RateQuery),
    responses((status = 200, body = List<ExchangeRateView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_exchange_rates(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<RateQuery>,
) -> Result<axum::Json<List<ExchangeRateView>>, ApiError> {
    let page = uc::list_exchange_rates(
        &state.app,
        &ctx,
        &ListRates {
            base: q.base,
            quote: q.quote,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(axum::Json(page.into()))
}

/// Add an exchange rate from `valid_from` on (rates are never edited; add a newer one).
#[utoipa::path(post, path = "/api/v1/exchange-rates", tag = "catalog", request_body = NewExchangeRateInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = ExchangeRateView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_exchange_rate(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewExchangeRateInput>,
) -> Result<(StatusCode, axum::Json<ExchangeRateView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::add_exchange_rate_answering(
                &state.app,
                &ctx,
                body,
                slot.answer(StatusCode::CREATED),
            )
            .await?,
        ),
    ))
}

// ------------------------------------------------------------------------------------
// Client groups and billing settings
// ------------------------------------------------------------------------------------

/// Client groups by name (host scope).
#[utoipa::path(get, path = "/api/v1/client-groups", tag = "catalog",
    responses((status = 200, body = Vec<ClientGroupView>), (status = 403, body = ErrorBody)))]
pub async fn list_client_groups(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
) -> Result<axum::Json<Vec<ClientGroupView>>, ApiError> {
    Ok(axum::Json(uc::list_client_groups(&state.app, &ctx).await?))
}

/// Create a client group with shared billing settings.
#[utoipa::path(post, path = "/api/v1/client-groups", tag = "catalog", request_body = NewClientGroupInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = ClientGroupView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_client_group(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewClientGroupInput>,
) -> Result<(StatusCode, axum::Json<ClientGroupView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_client_group_answering(
                &state.app,
                &ctx,
                body,
                slot.answer(StatusCode::CREATED),
            )
            .await?,
        ),
    ))
}

/// Change a client group (`null` clears a setting back to the host default).
#[utoipa::path(patch, path = "/api/v1/client-groups/{id}", tag = "catalog", params(("id" = i64, Path)),
    request_body = ClientGroupChanges,
    responses((status = 200, body = ClientGroupView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_client_group(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<ClientGroupChanges>,
) -> Result<axum::Json<ClientGroupView>, ApiError> {
    Ok(axum::Json(
        uc::update_client_group(&state.app, &ctx, ClientGroupId(id), body).await?,
    ))
}

/// Set a client's own billing settings, all at once (absent inherits from the group).
#[utoipa::path(put, path = "/api/v1/clients/{id}/billing-settings", tag = "catalog", params(("id" = i64, Path)),
    request_body = BillingSettingsInput,
    responses((status = 200, body = BillingSettingsView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_billing_settings(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<BillingSettingsInput>,
) -> Result<axum::Json<BillingSettingsView>, ApiError> {
    Ok(axum::Json(
        uc::set_billing_settings(&state.app, &ctx, ClientId(id), body).await?,
    ))
}

// ------------------------------------------------------------------------------------
// Promotions
// ------------------------------------------------------------------------------------

/// Promotions in the order they were created (host scope).
#[utoipa::path(get, path = "/api/v1/promotions", tag = "catalog", params(PageQuery),
    responses((status = 200, body = List<PromotionView>), (status = 403, body = ErrorBody)))]
pub async fn list_promotions(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<PageQuery>,
) -> Result<axum::Json<List<PromotionView>>, ApiError> {
    let page = uc::list_promotions(&state.app, &ctx, q.cursor.as_deref(), q.limit).await?;
    Ok(axum::Json(page.into()))
}

/// Create a promotion code (a percent, or fixed amounts per currency).
#[utoipa::path(post, path = "/api/v1/promotions", tag = "catalog", request_body = NewPromotionInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = PromotionView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_promotion(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewPromotionInput>,
) -> Result<(StatusCode, axum::Json<PromotionView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_promotion_answering(
                &state.app,
                &ctx,
                body,
                slot.answer(StatusCode::CREATED),
            )
            .await?,
        ),
    ))
}

/// One promotion, by its code (host scope).
#[utoipa::path(get, path = "/api/v1/promotions/{code}", tag = "catalog", params(("code" = String, Path, pattern = "^[A-Za-z0-9_-]{3,32}$")),
    responses((status = 200, body = PromotionView), (status = 404, body = ErrorBody)))]
pub async fn show_promotion(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(code): Path<String>,
) -> Result<axum::Json<PromotionView>, ApiError> {
    Ok(axum::Json(
        uc::get_promotion(&state.app, &ctx, &code).await?,
    ))
}
