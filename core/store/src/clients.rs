//! Clients and contacts. Every read and write takes the caller's [`Scope`]; the owner filter
//! is part of each query ([`scope_params`]), so another tenant's client is simply not found.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::ledger::currency;
use crate::page::{Cursor, Page};
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::client::{
    Client, ClientKind, ClientStatus, Contact, ContactRole, NewClient, NewContact, PostalAddress,
};
use keel_domain::ids::{ClientId, ContactId, ResellerId};
use keel_domain::tenancy::{Owner, Scope};

/// The two parameters every scoped query binds: `(reseller_id, client_id)` filters, either
/// NULL when the scope does not restrict on it.
pub fn scope_params(scope: Scope) -> (Option<i64>, Option<i64>) {
    match scope {
        Scope::Host => (None, None),
        Scope::Reseller(r) => (Some(r.get()), None),
        Scope::Client(c) => (None, Some(c.get())),
    }
}

/// The SQL condition for [`scope_params`] bound at `$a` and `$b`, on table alias `t`.
/// `alias` is a table alias with its dot (`"c."`), or `""` in single-table statements.
fn scope_sql(alias: &str, a: usize, b: usize) -> String {
    format!(
        "(CAST(${a} AS BIGINT) IS NULL OR {alias}reseller_id = ${a}) AND (CAST(${b} AS BIGINT) IS NULL OR {alias}id = ${b})"
    )
}

/// The scope condition for a table a client owns (a `client_id` column beside
/// `reseller_id`): `(reseller_id = $a or unrestricted) and (client_id = $b or unrestricted)`
/// on `alias` (with its dot, or `""`).
pub(crate) fn owned_scope_sql(alias: &str, a: usize, b: usize) -> String {
    format!(
        "(CAST(${a} AS BIGINT) IS NULL OR {alias}reseller_id = ${a}) AND (CAST(${b} AS BIGINT) IS NULL OR {alias}client_id = ${b})"
    )
}

const CLIENT_COLUMNS: &str = "id, reseller_id, kind, company_name, first_name, last_name, email, phone, \
    address_line1, address_line2, city, region, postal_code, country, currency, language, \
    tax_exempt, tax_id, status, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: i64,
    reseller_id: Option<i64>,
    kind: String,
    company_name: Option<String>,
    first_name: String,
    last_name: String,
    email: String,
    phone: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: String,
    currency: String,
    language: String,
    tax_exempt: bool,
    tax_id: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, id: i64, value: &str) -> StoreError {
    StoreError::Corrupt(format!("client {id} has invalid {what} {value:?}"))
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Client, StoreError> {
        let id = r.id;
        Ok(Client {
            id: ClientId(id),
            reseller_id: r.reseller_id.map(ResellerId),
            kind: ClientKind::parse(&r.kind).ok_or_else(|| corrupt("kind", id, &r.kind))?,
            company_name: r.company_name,
            first_name: r.first_name,
            last_name: r.last_name,
            email: r
                .email
                .parse()
                .map_err(|_| corrupt("email", id, &r.email))?,
            phone: r
                .phone
                .map(|p| p.parse().map_err(|_| corrupt("phone", id, &p)))
                .transpose()?,
            address: PostalAddress {
                line1: r.address_line1,
                line2: r.address_line2,
                city: r.city,
                region: r.region,
                postal_code: r.postal_code,
            },
            country: r
                .country
                .parse()
                .map_err(|_| corrupt("country", id, &r.country))?,
            currency: currency(&r.currency)?,
            language: r
                .language
                .parse()
                .map_err(|_| corrupt("language", id, &r.language))?,
            tax_exempt: r.tax_exempt,
            tax_id: r.tax_id,
            status: ClientStatus::parse(&r.status)
                .ok_or_else(|| corrupt("status", id, &r.status))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Creates a client owned by `owner`. The same email twice under one owner is
/// `Conflict { constraint: "clients_owner_email_key" }`.
pub async fn create_client(
    tx: &mut Tx,
    owner: Owner,
    new: &NewClient,
    at: DateTime<Utc>,
) -> Result<Client, StoreError> {
    let sql = format!(
        "INSERT INTO clients (reseller_id, kind, company_name, first_name, last_name, email, phone, \
           address_line1, address_line2, city, region, postal_code, country, currency, language, tax_exempt, tax_id, \
           status, created_at, updated_at, search_text) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 'active', $18, $18, $19) \
         RETURNING {CLIENT_COLUMNS}"
    );
    let row: ClientRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(owner.reseller_id().map(ResellerId::get))
        .bind(new.kind.as_str())
        .bind(new.company_name.as_deref().map(str::trim))
        .bind(new.first_name.trim())
        .bind(new.last_name.trim())
        .bind(new.email.as_str())
        .bind(new.phone.as_ref().map(|p| p.as_str()))
        .bind(new.address.line1.as_deref())
        .bind(new.address.line2.as_deref())
        .bind(new.address.city.as_deref())
        .bind(new.address.region.as_deref())
        .bind(new.address.postal_code.as_deref())
        .bind(new.country.as_str())
        .bind(new.currency.code())
        .bind(new.language.as_str())
        .bind(new.tax_exempt)
        .bind(new.tax_id.as_deref())
        .bind(at)
        .bind(search_text(
            &new.first_name,
            &new.last_name,
            new.company_name.as_deref(),
            new.email.as_str()
        ))
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// Writes every field of `client` (already validated) back, inside the caller's scope.
pub async fn update_client(
    tx: &mut Tx,
    scope: Scope,
    client: &Client,
    at: DateTime<Utc>,
) -> Result<Client, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "UPDATE clients SET kind = $1, company_name = $2, first_name = $3, last_name = $4, email = $5, phone = $6, \
           address_line1 = $7, address_line2 = $8, city = $9, region = $10, postal_code = $11, country = $12, \
           currency = $13, language = $14, tax_exempt = $15, tax_id = $16, status = $17, updated_at = $18, \
           search_text = $22 \
         WHERE id = $19 AND {} RETURNING {CLIENT_COLUMNS}",
        scope_sql("", 20, 21)
    );
    let row: Option<ClientRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(client.kind.as_str())
        .bind(client.company_name.as_deref().map(str::trim))
        .bind(client.first_name.trim())
        .bind(client.last_name.trim())
        .bind(client.email.as_str())
        .bind(client.phone.as_ref().map(|p| p.as_str()))
        .bind(client.address.line1.as_deref())
        .bind(client.address.line2.as_deref())
        .bind(client.address.city.as_deref())
        .bind(client.address.region.as_deref())
        .bind(client.address.postal_code.as_deref())
        .bind(client.country.as_str())
        .bind(client.currency.code())
        .bind(client.language.as_str())
        .bind(client.tax_exempt)
        .bind(client.tax_id.as_deref())
        .bind(client.status.as_str())
        .bind(at)
        .bind(client.id.get())
        .bind(reseller)
        .bind(only)
        .bind(search_text(
            &client.first_name,
            &client.last_name,
            client.company_name.as_deref(),
            client.email.as_str()
        ))
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// The client with this id if the scope sees it, inside a transaction.
pub async fn client_for_update(
    tx: &mut Tx,
    scope: Scope,
    id: ClientId,
) -> Result<Option<Client>, StoreError> {
    let (reseller, only) = scope_params(scope);
    // Locked on PostgreSQL so use cases on one client (orders, wallet moves) queue instead of
    // racing; NO KEY UPDATE does not block inserts that merely reference the client.
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR NO KEY UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1 AND {}{lock}",
        scope_sql("", 2, 3)
    );
    let row: Option<ClientRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Client::try_from).transpose()
}

/// The client with this id if the scope sees it.
pub async fn get_client(db: &Db, scope: Scope, id: ClientId) -> Result<Option<Client>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1 AND {}",
        scope_sql("", 2, 3)
    );
    let row: Option<ClientRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(p)
        .await)?;
    row.map(Client::try_from).transpose()
}

/// Deletes a client that has no financial history; one with ledger accounts is refused
/// (`Conflict { constraint: "client_has_history" }`): close it instead.
pub async fn delete_client(tx: &mut Tx, scope: Scope, id: ClientId) -> Result<(), StoreError> {
    if client_for_update(tx, scope, id).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    let history: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM ledger_accounts WHERE client_id = $1"
    )
    .bind(id.get())
    .fetch_one(&mut *c)
    .await)?;
    let keys: i64 = on_tx!(tx, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE client_id = $1"
    )
    .bind(id.get())
    .fetch_one(&mut *c)
    .await)?;
    if history > 0 || keys > 0 {
        return Err(StoreError::Conflict {
            constraint: "client_has_history".into(),
        });
    }
    on_tx!(tx, |c| sqlx::query("DELETE FROM clients WHERE id = $1")
        .bind(id.get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Filters for listing clients.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    /// Case-insensitive substring of the name, company or email.
    pub search: Option<String>,
    pub status: Option<ClientStatus>,
}

/// A page of the clients the scope sees, ordered by id.
pub async fn list_clients(
    db: &Db,
    scope: Scope,
    filter: &ClientFilter,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Page<Client>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let pattern = filter
        .search
        .as_ref()
        .map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM clients WHERE {} \
         AND (CAST($3 AS TEXT) IS NULL OR search_text LIKE $3 ESCAPE '\\') \
         AND (CAST($4 AS TEXT) IS NULL OR status = $4) AND id > $5 ORDER BY id LIMIT $6",
        scope_sql("", 1, 2)
    );
    let rows: Vec<ClientRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(reseller)
        .bind(only)
        .bind(pattern.as_deref())
        .bind(filter.status.map(ClientStatus::as_str))
        .bind(cursor.map_or(0, |c| c.after_id))
        .bind(i64::from(limit) + 1)
        .fetch_all(p)
        .await)?;
    let clients = rows
        .into_iter()
        .map(Client::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(clients, limit, |c| c.id.get()))
}

/// What search matches against: names, company and email, lowercased here in Rust
/// (Unicode-aware on both engines, where SQLite's `lower()` folds ASCII only).
pub(crate) fn search_text(first: &str, last: &str, company: Option<&str>, email: &str) -> String {
    format!(
        "{} {} {} {}",
        first.trim(),
        last.trim(),
        company.unwrap_or("").trim(),
        email
    )
    .to_lowercase()
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// How many clients exist in all (for the demo and readiness).
pub async fn count_clients(db: &Db) -> Result<i64, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM clients"
    )
    .fetch_one(p)
    .await)?)
}

/// Whether a reseller with this id exists.
pub async fn reseller_exists(db: &Db, id: ResellerId) -> Result<bool, StoreError> {
    let found: Option<i64> = on_db!(db, |p| sqlx::query_scalar(
        "SELECT id FROM resellers WHERE id = $1"
    )
    .bind(id.get())
    .fetch_optional(p)
    .await)?;
    Ok(found.is_some())
}

/// Creates a reseller (the record tenancy hangs on; reseller features come later).
pub async fn create_reseller(
    tx: &mut Tx,
    name: &str,
    at: DateTime<Utc>,
) -> Result<ResellerId, StoreError> {
    let id: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO resellers (name, status, created_at) VALUES ($1, 'active', $2) RETURNING id"
    )
    .bind(name)
    .bind(at)
    .fetch_one(&mut *c)
    .await
    })?;
    Ok(ResellerId(id))
}

const CONTACT_COLUMNS: &str =
    "id, client_id, first_name, last_name, email, phone, role, created_at, updated_at";
const CONTACT_COLUMNS_K: &str = "k.id, k.client_id, k.first_name, k.last_name, k.email, k.phone, k.role, k.created_at, k.updated_at";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: i64,
    client_id: i64,
    first_name: String,
    last_name: String,
    email: String,
    phone: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;
    fn try_from(r: ContactRow) -> Result<Contact, StoreError> {
        let bad = |what: &str, v: &str| {
            StoreError::Corrupt(format!("contact {} has invalid {what} {v:?}", r.id))
        };
        Ok(Contact {
            id: ContactId(r.id),
            client_id: ClientId(r.client_id),
            email: r.email.parse().map_err(|_| bad("email", &r.email))?,
            phone: r
                .phone
                .as_ref()
                .map(|p| p.parse().map_err(|_| bad("phone", p)))
                .transpose()?,
            role: ContactRole::parse(&r.role).ok_or_else(|| bad("role", &r.role))?,
            first_name: r.first_name,
            last_name: r.last_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Adds a contact to a client the scope sees.
pub async fn create_contact(
    tx: &mut Tx,
    scope: Scope,
    client: ClientId,
    new: &NewContact,
    at: DateTime<Utc>,
) -> Result<Contact, StoreError> {
    client_for_update(tx, scope, client)
        .await?
        .ok_or(StoreError::NotFound)?;
    let sql = format!(
        "INSERT INTO contacts (client_id, first_name, last_name, email, phone, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {CONTACT_COLUMNS}"
    );
    let row: ContactRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(client.get())
        .bind(new.first_name.trim())
        .bind(new.last_name.trim())
        .bind(new.email.as_str())
        .bind(new.phone.as_ref().map(|p| p.as_str()))
        .bind(new.role.as_str())
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// The contacts of a client the scope sees; `None` when the client is not visible.
pub async fn list_contacts(
    db: &Db,
    scope: Scope,
    client: ClientId,
) -> Result<Option<Vec<Contact>>, StoreError> {
    if get_client(db, scope, client).await?.is_none() {
        return Ok(None);
    }
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE client_id = $1 ORDER BY id");
    let rows: Vec<ContactRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(client.get())
        .fetch_all(p)
        .await)?;
    rows.into_iter()
        .map(Contact::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// One contact of a client the scope sees, inside a transaction.
pub async fn contact_for_update(
    tx: &mut Tx,
    scope: Scope,
    client: ClientId,
    id: ContactId,
) -> Result<Option<Contact>, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "SELECT {CONTACT_COLUMNS_K} FROM contacts k JOIN clients c ON c.id = k.client_id \
         WHERE k.id = $1 AND k.client_id = $2 AND {}",
        scope_sql("c.", 3, 4)
    );
    let row: Option<ContactRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id.get())
        .bind(client.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(&mut *c)
        .await)?;
    row.map(Contact::try_from).transpose()
}

/// The owner filter for statements on `contacts`: the contact's client must be visible.
fn contact_scope_sql(a: usize, b: usize) -> String {
    format!(
        "client_id IN (SELECT id FROM clients WHERE {})",
        scope_sql("", a, b)
    )
}

/// Writes every field of an already validated contact back, inside the caller's scope.
pub async fn update_contact(
    tx: &mut Tx,
    scope: Scope,
    contact: &Contact,
    at: DateTime<Utc>,
) -> Result<Contact, StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "UPDATE contacts SET first_name = $1, last_name = $2, email = $3, phone = $4, role = $5, updated_at = $6 \
         WHERE id = $7 AND {} RETURNING {CONTACT_COLUMNS}",
        contact_scope_sql(8, 9)
    );
    let row: Option<ContactRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(contact.first_name.trim())
        .bind(contact.last_name.trim())
        .bind(contact.email.as_str())
        .bind(contact.phone.as_ref().map(|p| p.as_str()))
        .bind(contact.role.as_str())
        .bind(at)
        .bind(contact.id.get())
        .bind(reseller)
        .bind(only)
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// Deletes a contact whose client the scope sees; `NotFound` otherwise.
pub async fn delete_contact(tx: &mut Tx, scope: Scope, id: ContactId) -> Result<(), StoreError> {
    let (reseller, only) = scope_params(scope);
    let sql = format!(
        "DELETE FROM contacts WHERE id = $1 AND {}",
        contact_scope_sql(2, 3)
    );
    let deleted = on_tx!(tx, |c| sqlx::query(&sql)
        .bind(id.get())
        .bind(reseller)
        .bind(only)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
