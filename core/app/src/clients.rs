//! Clients and contacts. The actor's scope is passed to every store call, so a reseller
//! cannot see, change or even detect another tenant's clients.

use crate::audit::record;
use crate::events;
use crate::{App, AppError, Ctx};
use keel_domain::access::Permission;
use keel_domain::client::{
    Client, ClientChanges, ClientStatus, Contact, ContactChanges, NewClient, NewContact,
    client_field_writers, forbidden_client_field,
};
use keel_domain::ids::{ClientId, ContactId};
use keel_store::Page;
use keel_store::clients as store;
use serde_json::json;

const CLIENT: AppError = AppError::NotFound { what: "client" };

/// Refuses a write that sets a field the actor's scope may not set
/// ([`keel_domain::client::CLIENT_FIELD_WRITERS`]).
fn writable(ctx: &Ctx, fields: Vec<&'static str>) -> Result<(), AppError> {
    match forbidden_client_field(ctx.actor.scope(), fields) {
        None => Ok(()),
        Some(field) => Err(AppError::FieldForbidden {
            field: field.to_string(),
            writers: client_field_writers(field).map_or("nobody", |w| w.as_str()),
        }),
    }
}

pub async fn create_client(app: &App, ctx: &Ctx, new: NewClient) -> Result<Client, AppError> {
    create_client_answering(app, ctx, new, None).await
}

/// [`create_client`], storing the API's answer in the same transaction ([`crate::Answer`]):
/// a crash after the commit leaves the retry a replay, not `email_taken`.
pub async fn create_client_answering(
    app: &App,
    ctx: &Ctx,
    new: NewClient,
    answer: Option<crate::Answer>,
) -> Result<Client, AppError> {
    ctx.require(Permission::ClientsWrite)?;
    let owner = ctx
        .actor
        .scope()
        .owner_for_new_client()
        .ok_or(AppError::Forbidden {
            permission: "clients:create",
        })?;
    writable(ctx, new.chosen_fields())?;
    new.validate()?;
    let mut tx = app.db.begin().await?;
    let client = store::create_client(&mut tx, owner, &new, app.now()).await?;
    events::emit(
        &mut tx,
        app,
        events::Event::ClientCreated(events::ClientData::of(&client)),
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "client.create",
        "client",
        client.id,
        json!({ "email": client.email, "owner": owner }),
    )
    .await?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &client).await?;
    }
    tx.commit().await?;
    Ok(client)
}

pub async fn get_client(app: &App, ctx: &Ctx, id: ClientId) -> Result<Client, AppError> {
    ctx.require(Permission::ClientsRead)?;
    store::get_client(&app.db, ctx.actor.scope(), id)
        .await?
        .ok_or(CLIENT)
}

/// Filters a list request may carry.
#[derive(Debug, Clone, Default)]
pub struct ListClients {
    pub search: Option<String>,
    pub status: Option<ClientStatus>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list_clients(app: &App, ctx: &Ctx, q: &ListClients) -> Result<Page<Client>, AppError> {
    ctx.require(Permission::ClientsRead)?;
    // One rule for the search text, whoever asks (the API checks it too, before this).
    AppError::check_optional_text("q", q.search.as_deref(), keel_domain::text::limits::SEARCH)?;
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let filter = store::ClientFilter {
        search: search.map(str::to_string),
        status: q.status,
    };
    Ok(store::list_clients(
        &app.db,
        ctx.actor.scope(),
        &filter,
        crate::cursor(q.cursor.as_deref())?,
        crate::page_limit(q.limit)?,
    )
    .await?)
}

pub async fn update_client(
    app: &App,
    ctx: &Ctx,
    id: ClientId,
    changes: ClientChanges,
) -> Result<Client, AppError> {
    ctx.require(Permission::ClientsWrite)?;
    writable(ctx, changes.fields())?;
    let scope = ctx.actor.scope();
    let mut tx = app.db.begin().await?;
    let before = store::client_for_update(&mut tx, scope, id)
        .await?
        .ok_or(CLIENT)?;
    if changes.is_empty() {
        return Ok(before);
    }
    let after = changes.apply(&before)?;
    let saved = store::update_client(&mut tx, scope, &after, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "client.update",
        "client",
        id,
        serde_json::to_value(&changes).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_client(app: &App, ctx: &Ctx, id: ClientId) -> Result<(), AppError> {
    ctx.require(Permission::ClientsWrite)?;
    let mut tx = app.db.begin().await?;
    let client = store::client_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(CLIENT)?;
    store::delete_client(&mut tx, ctx.actor.scope(), id).await?;
    record(
        &mut tx,
        app,
        ctx,
        "client.delete",
        "client",
        id,
        json!({ "email": client.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn create_contact(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    new: NewContact,
) -> Result<Contact, AppError> {
    create_contact_answering(app, ctx, client, new, None).await
}

/// [`create_contact`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_contact_answering(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    new: NewContact,
    answer: Option<crate::Answer>,
) -> Result<Contact, AppError> {
    ctx.require(Permission::ClientsWrite)?;
    new.validate()?;
    let mut tx = app.db.begin().await?;
    let contact = store::create_contact(&mut tx, ctx.actor.scope(), client, &new, app.now())
        .await
        .map_err(crate::error::not_found("client"))?;
    record(
        &mut tx,
        app,
        ctx,
        "contact.create",
        "contact",
        contact.id,
        json!({ "client": client, "email": contact.email }),
    )
    .await?;
    let answered: Contact = contact;
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

pub async fn list_contacts(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
) -> Result<Vec<Contact>, AppError> {
    ctx.require(Permission::ClientsRead)?;
    store::list_contacts(&app.db, ctx.actor.scope(), client)
        .await?
        .ok_or(CLIENT)
}

pub async fn update_contact(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    id: ContactId,
    changes: ContactChanges,
) -> Result<Contact, AppError> {
    ctx.require(Permission::ClientsWrite)?;
    let mut tx = app.db.begin().await?;
    let before = store::contact_for_update(&mut tx, ctx.actor.scope(), client, id)
        .await?
        .ok_or(AppError::NotFound { what: "contact" })?;
    let after = changes.apply(&before)?;
    let saved = store::update_contact(&mut tx, ctx.actor.scope(), &after, app.now()).await?;
    record(
        &mut tx,
        app,
        ctx,
        "contact.update",
        "contact",
        id,
        serde_json::to_value(&changes).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

pub async fn delete_contact(
    app: &App,
    ctx: &Ctx,
    client: ClientId,
    id: ContactId,
) -> Result<(), AppError> {
    ctx.require(Permission::ClientsWrite)?;
    let mut tx = app.db.begin().await?;
    let contact = store::contact_for_update(&mut tx, ctx.actor.scope(), client, id)
        .await?
        .ok_or(AppError::NotFound { what: "contact" })?;
    store::delete_contact(&mut tx, ctx.actor.scope(), id).await?;
    record(
        &mut tx,
        app,
        ctx,
        "contact.delete",
        "contact",
        id,
        json!({ "client": client, "email": contact.email }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
