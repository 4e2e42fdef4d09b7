//! Staff users and API keys. Keys are stored as the hex SHA-256 of the whole key plus a
//! visible prefix; the key itself exists only in the answer that created it.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, Utc};
use keel_domain::access::{ApiKey, KeyScope, Staff, StaffRole};
use keel_domain::client::ClientStatus;
use keel_domain::ids::{ApiKeyId, ClientId, ResellerId, StaffId};

#[derive(sqlx::FromRow)]
struct StaffRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    active: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<StaffRow> for Staff {
    type Error = StoreError;
    fn try_from(r: StaffRow) -> Result<Staff, StoreError> {
        Ok(Staff {
            id: StaffId(r.id),
            role: StaffRole::parse(&r.role).ok_or_else(|| {
                StoreError::Corrupt(format!("staff {} has role {:?}", r.id, r.role))
            })?,
            email: r.email,
            name: r.name,
            active: r.active,
            created_at: r.created_at,
        })
    }
}

const STAFF_COLUMNS: &str = "id, email, name, role, active, created_at";

/// Creates a staff user; an email already taken is `Conflict { constraint: "staff_email_key" }`.
pub async fn create_staff(
    tx: &mut Tx,
    email: &str,
    name: &str,
    password_hash: &str,
    role: StaffRole,
    at: DateTime<Utc>,
) -> Result<Staff, StoreError> {
    let sql = format!(
        "INSERT INTO staff (email, name, password_hash, role, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, TRUE, $5, $5) RETURNING {STAFF_COLUMNS}"
    );
    let row: StaffRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(email)
        .bind(name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

pub async fn list_staff(db: &Db) -> Result<Vec<Staff>, StoreError> {
    let sql = format!("SELECT {STAFF_COLUMNS} FROM staff ORDER BY id");
    let rows: Vec<StaffRow> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(Staff::try_from).collect()
}

pub async fn get_staff(db: &Db, id: StaffId) -> Result<Option<Staff>, StoreError> {
    let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1");
    let row: Option<StaffRow> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(id.get())
        .fetch_optional(p)
        .await)?;
    row.map(Staff::try_from).transpose()
}

/// The staff user with this email (any case) and their password hash.
pub async fn staff_by_email(db: &Db, email: &str) -> Result<Option<(Staff, String)>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct WithHash {
        #[sqlx(flatten)]
        staff: StaffRow,
        password_hash: String,
    }
    let sql =
        format!("SELECT {STAFF_COLUMNS}, password_hash FROM staff WHERE lower(email) = lower($1)");
    let row: Option<WithHash> = on_db!(db, |p| sqlx::query_as(&sql)
        .bind(email)
        .fetch_optional(p)
        .await)?;
    row.map(|r| Ok((r.staff.try_into()?, r.password_hash)))
        .transpose()
}

/// Changes a staff user's name, role or active flag.
pub async fn update_staff(
    tx: &mut Tx,
    id: StaffId,
    name: Option<&str>,
    role: Option<StaffRole>,
    active: Option<bool>,
    at: DateTime<Utc>,
) -> Result<Staff, StoreError> {
    let sql = format!(
        "UPDATE staff SET name = COALESCE($1, name), role = COALESCE($2, role), active = COALESCE($3, active), \
         updated_at = $4 WHERE id = $5 RETURNING {STAFF_COLUMNS}"
    );
    let row: Option<StaffRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(name)
        .bind(role.map(StaffRole::as_str))
        .bind(active)
        .bind(at)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}

/// The active admins, locked until the transaction ends (on PostgreSQL; SQLite's single
/// writer serializes anyway), so two admins deactivating each other at once cannot both
/// see the other still active and leave none.
pub async fn lock_active_admins(tx: &mut Tx) -> Result<Vec<StaffId>, StoreError> {
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!("SELECT id FROM staff WHERE role = 'admin' AND active ORDER BY id{lock}");
    let ids: Vec<i64> = on_tx!(tx, |c| sqlx::query_scalar(&sql).fetch_all(&mut *c).await)?;
    Ok(ids.into_iter().map(StaffId).collect())
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    scope: String,
    staff_id: Option<i64>,
    reseller_id: Option<i64>,
    client_id: Option<i64>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: ApiKeyId(r.id),
            scope: KeyScope::parse(&r.scope).ok_or_else(|| {
                StoreError::Corrupt(format!("api key {} has scope {:?}", r.id, r.scope))
            })?,
            name: r.name,
            prefix: r.prefix,
            staff_id: r.staff_id.map(StaffId),
            reseller_id: r.reseller_id.map(ResellerId),
            client_id: r.client_id.map(ClientId),
            created_at: r.created_at,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
        })
    }
}

const KEY_COLUMNS: &str = "id, name, prefix, scope, staff_id, reseller_id, client_id, created_at, revoked_at, last_used_at";

/// What is stored for a new key.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub scope: KeyScope,
    pub staff_id: Option<StaffId>,
    pub reseller_id: Option<ResellerId>,
    pub client_id: Option<ClientId>,
}

pub async fn create_api_key(
    tx: &mut Tx,
    new: &NewApiKey<'_>,
    at: DateTime<Utc>,
) -> Result<ApiKey, StoreError> {
    let sql = format!(
        "INSERT INTO api_keys (name, prefix, secret_hash, scope, staff_id, reseller_id, client_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}"
    );
    let row: KeyRow = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(new.name)
        .bind(new.prefix)
        .bind(new.secret_hash)
        .bind(new.scope.as_str())
        .bind(new.staff_id.map(StaffId::get))
        .bind(new.reseller_id.map(ResellerId::get))
        .bind(new.client_id.map(ClientId::get))
        .bind(at)
        .fetch_one(&mut *c)
        .await)?;
    row.try_into()
}

/// A key found by its hash, with the role and active flag of its staff user, if any.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub key: ApiKey,
    pub staff_role: Option<StaffRole>,
    pub staff_active: Option<bool>,
    /// The status of the client a client key belongs to.
    pub client_status: Option<ClientStatus>,
}

pub async fn key_by_hash(db: &Db, secret_hash: &str) -> Result<Option<KeyLookup>, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        key: KeyRow,
        staff_role: Option<String>,
        staff_active: Option<bool>,
        client_status: Option<String>,
    }
    let sql = "SELECT k.id, k.name, k.prefix, k.scope, k.staff_id, k.reseller_id, k.client_id, k.created_at, \
               k.revoked_at, k.last_used_at, s.role AS staff_role, s.active AS staff_active, c.status AS client_status \
               FROM api_keys k LEFT JOIN staff s ON s.id = k.staff_id LEFT JOIN clients c ON c.id = k.client_id \
               WHERE k.secret_hash = $1";
    let row: Option<Row> = on_db!(db, |p| sqlx::query_as(sql)
        .bind(secret_hash)
        .fetch_optional(p)
        .await)?;
    row.map(|r| {
        Ok(KeyLookup {
            key: r.key.try_into()?,
            staff_role: r.staff_role.as_deref().and_then(StaffRole::parse),
            staff_active: r.staff_active,
            client_status: r.client_status.as_deref().and_then(ClientStatus::parse),
        })
    })
    .transpose()
}

/// Records that a key was used, at most once a minute per key (a write per request would
/// put every read of the API through SQLite's single writer).
pub async fn touch_api_key(db: &Db, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |c| {
        sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)"
    )
    .bind(at)
    .bind(id.get())
    .bind(at - chrono::Duration::seconds(60))
    .execute(&mut *c)
    .await.map(|r| r.rows_affected())
    })?;
    tx.commit().await
}

pub async fn list_api_keys(db: &Db) -> Result<Vec<ApiKey>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
    let rows: Vec<KeyRow> = on_db!(db, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes a key; revoking twice keeps the first time.
pub async fn revoke_api_key(
    tx: &mut Tx,
    id: ApiKeyId,
    at: DateTime<Utc>,
) -> Result<ApiKey, StoreError> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {KEY_COLUMNS}"
    );
    let row: Option<KeyRow> = on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(at)
        .bind(id.get())
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or(StoreError::NotFound)?.try_into()
}
