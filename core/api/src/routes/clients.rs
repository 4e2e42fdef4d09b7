//! Clients and contacts.

use super::List;
use crate::State;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Auth, Json, Path, Query};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use keel_app::clients::{self as uc, ListClients};
use keel_domain::client::{
    Client, ClientChanges, ClientStatus, Contact, ContactChanges, NewClient, NewContact,
};
use keel_domain::ids::{ClientId, ContactId};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<State> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/{id}", get(show).patch(update).delete(remove))
        .route(
            "/clients/{id}/contacts",
            get(list_contacts).post(create_contact),
        )
        .route(
            "/clients/{id}/contacts/{contact_id}",
            patch(update_contact).delete(remove_contact),
        )
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClientQuery {
    /// Case-insensitive text found in the name, company or email: one line, at most 200
    /// characters (`keel_domain::text::limits::SEARCH`).
    #[param(schema_with = keel_domain::text::schema::search)]
    pub q: Option<String>,
    pub status: Option<ClientStatus>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}

/// List clients (yours only, for a reseller key), optionally searching.
#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", params(ClientQuery),
    responses((status = 200, body = List<Client>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Query(q): Query<ClientQuery>,
) -> Result<axum::Json<List<Client>>, ApiError> {
    keel_app::AppError::check_optional_text(
        "q",
        q.q.as_deref(),
        keel_domain::text::limits::SEARCH,
    )?;
    let page = uc::list_clients(
        &state.app,
        &ctx,
        &ListClients {
            search: q.q,
            status: q.status,
            cursor: q.cursor,
            limit: q.limit,
        },
    )
    .await?;
    Ok(axum::Json(page.into()))
}

/// Create a client, owned by the caller's tenancy (the host, or the reseller of the key).
#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = NewClient,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    responses((status = 201, body = Client), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewClient>,
) -> Result<(StatusCode, axum::Json<Client>), ApiError> {
    let answer = slot.answer(StatusCode::CREATED);
    Ok((
        StatusCode::CREATED,
        axum::Json(uc::create_client_answering(&state.app, &ctx, body, answer).await?),
    ))
}

/// One client.
#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients", params(("id" = i64, Path)),
    responses((status = 200, body = Client), (status = 404, body = ErrorBody)))]
pub async fn show(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Client>, ApiError> {
    Ok(axum::Json(
        uc::get_client(&state.app, &ctx, ClientId(id)).await?,
    ))
}

/// Change some fields of a client.
#[utoipa::path(patch, path = "/api/v1/clients/{id}", tag = "clients", params(("id" = i64, Path)), request_body = ClientChanges,
    responses((status = 200, body = Client), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    Json(body): Json<ClientChanges>,
) -> Result<axum::Json<Client>, ApiError> {
    Ok(axum::Json(
        uc::update_client(&state.app, &ctx, ClientId(id), body).await?,
    ))
}

/// Delete a client that has no financial history (close it otherwise).
#[utoipa::path(delete, path = "/api/v1/clients/{id}", tag = "clients", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    uc::delete_client(&state.app, &ctx, ClientId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A client's contacts.
#[utoipa::path(get, path = "/api/v1/clients/{id}/contacts", tag = "clients", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Contact>), (status = 404, body = ErrorBody)))]
pub async fn list_contacts(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
) -> Result<axum::Json<Vec<Contact>>, ApiError> {
    Ok(axum::Json(
        uc::list_contacts(&state.app, &ctx, ClientId(id)).await?,
    ))
}

/// Add a contact to a client.
#[utoipa::path(post, path = "/api/v1/clients/{id}/contacts", tag = "clients", params(("id" = i64, Path)), request_body = NewContact,
    responses((status = 201, body = Contact), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_contact(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path(id): Path<i64>,
    slot: crate::extract::IdempotencySlot,
    Json(body): Json<NewContact>,
) -> Result<(StatusCode, axum::Json<Contact>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            uc::create_contact_answering(
                &state.app,
                &ctx,
                ClientId(id),
                body,
                slot.answer(StatusCode::CREATED),
            )
            .await?,
        ),
    ))
}

/// Change a contact.
#[utoipa::path(patch, path = "/api/v1/clients/{id}/contacts/{contact_id}", tag = "clients",
    params(("id" = i64, Path), ("contact_id" = i64, Path)), request_body = ContactChanges,
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_contact(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path((id, contact)): Path<(i64, i64)>,
    Json(body): Json<ContactChanges>,
) -> Result<axum::Json<Contact>, ApiError> {
    Ok(axum::Json(
        uc::update_contact(&state.app, &ctx, ClientId(id), ContactId(contact), body).await?,
    ))
}

/// Remove a contact.
#[utoipa::path(delete, path = "/api/v1/clients/{id}/contacts/{contact_id}", tag = "clients",
    params(("id" = i64, Path), ("contact_id" = i64, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove_contact(
    state: axum::extract::State<State>,
    Auth(ctx): Auth,
    Path((id, contact)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    uc::delete_contact(&state.app, &ctx, ClientId(id), ContactId(contact)).await?;
    Ok(StatusCode::NO_CONTENT)
}
