//! Staff users, API keys, and authentication.
//!
//! API keys: `keel_<scope>_<64 hex>` where scope is `ad`, `rs` or `cl`; 32 random bytes from
//! the OS generator. Keel stores the SHA-256 of the whole key and its first 16 characters as
//! a visible prefix; the key itself is returned once, by [`create_key`], and never again. A
//! per-request argon2 check would cap the API, and 256 random bits need no stretching.

use crate::audit::record;
use crate::{App, AppError, Ctx};
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use keel_domain::access::{Actor, ApiKey, KeyScope, Permission, Staff, StaffRole};
use keel_domain::contact::Email;
use keel_domain::ids::{ApiKeyId, ClientId, ResellerId, StaffId};
use keel_domain::text::limits;
use keel_store::staff as store;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Shortest password accepted for staff.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}").into()))
}

/// Whether `password` matches a stored PHC hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// What it takes to add a staff user.
/// A new password's schema: at least [`MIN_PASSWORD_LEN`] characters, no NUL (which no
/// string Keel takes may hold).
fn password_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .min_length(Some(MIN_PASSWORD_LEN))
        .pattern(Some("^[^\\u{0000}]*$"))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Password,
        )))
        .build()
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    pub email: Email,
    /// One line (`keel_domain::text::limits::STAFF_NAME`).
    #[schema(schema_with = keel_domain::text::schema::staff_name)]
    pub name: String,
    /// At least 12 characters.
    #[schema(schema_with = password_schema)]
    pub password: String,
    pub role: StaffRole,
}

pub async fn create_staff(app: &App, ctx: &Ctx, new: NewStaff) -> Result<Staff, AppError> {
    create_staff_answering(app, ctx, new, None).await
}

/// [`create_staff`], storing the API's answer in the same transaction ([`crate::Answer`]): a retry
/// after a crash between the commit and the answer is replayed, not refused as taken.
pub async fn create_staff_answering(
    app: &App,
    ctx: &Ctx,
    new: NewStaff,
    answer: Option<crate::Answer>,
) -> Result<Staff, AppError> {
    ctx.require(Permission::StaffManage)?;
    AppError::check_text("name", &new.name, limits::STAFF_NAME)?;
    let name = new.name.trim();
    if new.password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::invalid(
            "weak_password",
            Some("password"),
            format!("password must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let hash = hash_password(&new.password)?;
    let mut tx = app.db.begin().await?;
    let staff = store::create_staff(
        &mut tx,
        new.email.as_str(),
        name,
        &hash,
        new.role,
        app.now(),
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "staff.create",
        "staff",
        staff.id,
        json!({ "email": staff.email, "role": staff.role }),
    )
    .await?;
    let answered: Staff = staff;
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

pub async fn list_staff(app: &App, ctx: &Ctx) -> Result<Vec<Staff>, AppError> {
    ctx.require(Permission::StaffManage)?;
    Ok(store::list_staff(&app.db).await?)
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffChanges {
    #[schema(schema_with = keel_domain::text::schema::staff_name)]
    pub name: Option<String>,
    pub role: Option<StaffRole>,
    pub active: Option<bool>,
}

/// Renames a staff user, changes their role, or (de)activates them. Two changes are refused
/// (409) because they would lock the host out of its own API: deactivating yourself
/// (`cannot_deactivate_self`), and deactivating or demoting the last active admin
/// (`last_active_admin`); the active admins are locked while this runs.
pub async fn update_staff(
    app: &App,
    ctx: &Ctx,
    id: StaffId,
    changes: StaffChanges,
) -> Result<Staff, AppError> {
    ctx.require(Permission::StaffManage)?;
    if let Some(n) = &changes.name {
        AppError::check_text("name", n, limits::STAFF_NAME)?;
    }
    let mut tx = app.db.begin().await?;
    let admins = store::lock_active_admins(&mut tx).await?;
    if changes.active == Some(false) && acting_staff(ctx) == Some(id) {
        return Err(AppError::conflict(
            "cannot_deactivate_self",
            "you cannot deactivate your own staff account; ask another admin",
        ));
    }
    let leaves_admins =
        changes.active == Some(false) || changes.role.is_some_and(|r| r != StaffRole::Admin);
    if leaves_admins && admins == [id] {
        return Err(AppError::conflict(
            "last_active_admin",
            "this is the last active admin: make another staff user an active admin first, so the host keeps access",
        ));
    }
    let staff = store::update_staff(
        &mut tx,
        id,
        changes.name.as_deref().map(str::trim),
        changes.role,
        changes.active,
        app.now(),
    )
    .await
    .map_err(crate::error::not_found("staff user"))?;
    record(
        &mut tx,
        app,
        ctx,
        "staff.update",
        "staff",
        id,
        serde_json::to_value(&changes).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(staff)
}

/// The staff user acting: a staff session, or an API key bound to a staff user.
fn acting_staff(ctx: &Ctx) -> Option<StaffId> {
    match &ctx.actor {
        Actor::Staff { staff, .. } => Some(*staff),
        Actor::Key { staff, .. } => *staff,
        Actor::System { .. } => None,
    }
}

/// Checks a staff user's email and password (for the web UI and `keel` prompts).
pub async fn login(app: &App, email: &str, password: &str) -> Result<Staff, AppError> {
    let refused = || AppError::Unauthorized {
        code: "invalid_credentials",
        message: "wrong email or password".into(),
    };
    match store::staff_by_email(&app.db, email).await? {
        Some((staff, hash)) if staff.active && verify_password(password, &hash) => Ok(staff),
        Some(_) => Err(refused()),
        None => {
            // Spend the same time as a real check so response times do not reveal emails.
            let _ = verify_password(password, &DUMMY_HASH);
            Err(refused())
        }
    }
}

/// A real hash of nothing in particular, checked against when an email is unknown.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("no such user").unwrap_or_default());

/// What a new key is for.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// One line (`keel_domain::text::limits::KEY_NAME`).
    #[schema(schema_with = keel_domain::text::schema::key_name)]
    pub name: String,
    pub scope: KeyScope,
    /// Required for reseller keys.
    #[serde(default)]
    pub reseller_id: Option<ResellerId>,
    /// Required for client keys.
    #[serde(default)]
    pub client_id: Option<ClientId>,
    /// The staff user an admin key acts for (its role limits the key).
    #[serde(default)]
    pub staff_id: Option<StaffId>,
}

/// A key just created: the only time the secret is seen.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The whole key. Store it now: Keel keeps only its hash.
    pub secret: String,
}

fn scope_tag(scope: KeyScope) -> &'static str {
    match scope {
        KeyScope::Admin => "ad",
        KeyScope::Reseller => "rs",
        KeyScope::Client => "cl",
    }
}

/// The SHA-256 of a key, as stored.
pub fn key_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub async fn create_key(app: &App, ctx: &Ctx, new: NewKey) -> Result<CreatedKey, AppError> {
    create_key_answering(app, ctx, new, None).await
}

/// [`create_key`], storing the API's answer in the same transaction ([`crate::Answer`], in
/// the form that withholds the key): a retry after a crash is told which key it made, and
/// never mints a second one.
pub async fn create_key_answering(
    app: &App,
    ctx: &Ctx,
    new: NewKey,
    answer: Option<crate::Answer>,
) -> Result<CreatedKey, AppError> {
    ctx.require(Permission::KeysManage)?;
    AppError::check_text("name", &new.name, limits::KEY_NAME)?;
    let name = new.name.trim();
    match (new.scope, new.reseller_id, new.client_id) {
        (KeyScope::Admin, None, None) => {}
        (KeyScope::Reseller, Some(_), None) => {}
        (KeyScope::Client, None, Some(_)) => {}
        (KeyScope::Admin, _, _) => {
            return Err(AppError::invalid(
                "invalid_field",
                Some("scope"),
                "an admin key belongs to no reseller or client",
            ));
        }
        (KeyScope::Reseller, _, _) => {
            return Err(AppError::invalid(
                "invalid_field",
                Some("reseller_id"),
                "a reseller key needs reseller_id (and no client_id)",
            ));
        }
        (KeyScope::Client, _, _) => {
            return Err(AppError::invalid(
                "invalid_field",
                Some("client_id"),
                "a client key needs client_id (and no reseller_id)",
            ));
        }
    }
    if new.staff_id.is_some() && new.scope != KeyScope::Admin {
        return Err(AppError::invalid(
            "invalid_field",
            Some("staff_id"),
            "only admin keys act for a staff user",
        ));
    }
    if let Some(client) = new.client_id
        && keel_store::clients::get_client(&app.db, ctx.actor.scope(), client)
            .await?
            .is_none()
    {
        return Err(AppError::NotFound { what: "client" });
    }
    if let Some(reseller) = new.reseller_id
        && !keel_store::clients::reseller_exists(&app.db, reseller).await?
    {
        return Err(AppError::NotFound { what: "reseller" });
    }
    if let Some(staff) = new.staff_id
        && store::get_staff(&app.db, staff).await?.is_none()
    {
        return Err(AppError::NotFound { what: "staff user" });
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("keel_{}_{}", scope_tag(new.scope), hex::encode(bytes));
    let hash = key_hash(&secret);
    let prefix = &secret[..16];
    let mut tx = app.db.begin().await?;
    let key = store::create_api_key(
        &mut tx,
        &store::NewApiKey {
            name,
            prefix,
            secret_hash: &hash,
            scope: new.scope,
            staff_id: new.staff_id,
            reseller_id: new.reseller_id,
            client_id: new.client_id,
        },
        app.now(),
    )
    .await?;
    record(
        &mut tx,
        app,
        ctx,
        "api_key.create",
        "api_key",
        key.id,
        json!({ "name": key.name, "scope": key.scope, "prefix": key.prefix }),
    )
    .await?;
    let created = CreatedKey { key, secret };
    if let Some(a) = answer {
        a.store(&mut tx, app, &created).await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub async fn list_keys(app: &App, ctx: &Ctx) -> Result<Vec<ApiKey>, AppError> {
    ctx.require(Permission::KeysManage)?;
    Ok(store::list_api_keys(&app.db).await?)
}

pub async fn revoke_key(app: &App, ctx: &Ctx, id: ApiKeyId) -> Result<ApiKey, AppError> {
    ctx.require(Permission::KeysManage)?;
    let mut tx = app.db.begin().await?;
    let key = store::revoke_api_key(&mut tx, id, app.now())
        .await
        .map_err(crate::error::not_found("API key"))?;
    record(
        &mut tx,
        app,
        ctx,
        "api_key.revoke",
        "api_key",
        id,
        json!({ "prefix": key.prefix }),
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// Whether a string has the shape of a Keel key (checked before any database read).
pub fn well_formed(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix("keel_") else {
        return false;
    };
    let Some((tag, hex_part)) = rest.split_once('_') else {
        return false;
    };
    matches!(tag, "ad" | "rs" | "cl")
        && hex_part.len() == 64
        && hex_part.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Turns a bearer key into the actor it stands for. Refuses malformed, unknown and revoked
/// keys, and keys of deactivated staff. Returns the key too, for `last_used_at` bookkeeping.
pub async fn authenticate(app: &App, secret: &str) -> Result<(Actor, ApiKey), AppError> {
    if !well_formed(secret) {
        return Err(AppError::Unauthorized {
            code: "malformed_api_key",
            message: "the API key is malformed: expected keel_<scope>_<64 hex characters>".into(),
        });
    }
    let unknown = || AppError::Unauthorized {
        code: "invalid_api_key",
        message: "the API key is not valid".into(),
    };
    let found = store::key_by_hash(&app.db, &key_hash(secret))
        .await?
        .ok_or_else(unknown)?;
    if found.key.revoked_at.is_some() {
        return Err(AppError::Unauthorized {
            code: "api_key_revoked",
            message: "the API key has been revoked".into(),
        });
    }
    // A key made for a staff user whose row or role cannot be read acts for nobody.
    if found.key.staff_id.is_some() && (found.staff_active.is_none() || found.staff_role.is_none())
    {
        return Err(AppError::Unauthorized {
            code: "staff_role_invalid",
            message: "the staff user this key acts for has no valid role; ask an admin to set one"
                .into(),
        });
    }
    if found.staff_active == Some(false) {
        return Err(AppError::Unauthorized {
            code: "staff_inactive",
            message: "the staff user this key acts for is deactivated".into(),
        });
    }
    // A closed client's keys stop working with the account: it may neither order nor read.
    if found.key.client_id.is_some()
        && found.client_status != Some(keel_domain::client::ClientStatus::Active)
        && found.client_status != Some(keel_domain::client::ClientStatus::Inactive)
    {
        return Err(AppError::Unauthorized {
            code: "api_key_client_closed",
            message: "the client account this key belongs to is closed".into(),
        });
    }
    let scope = found.key.tenancy().ok_or_else(unknown)?;
    let actor = Actor::Key {
        key: found.key.id,
        label: format!("{} ({})", found.key.name, found.key.prefix),
        scope,
        role: found.staff_role,
        staff: found.key.staff_id,
    };
    Ok((actor, found.key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn key_shapes_are_checked_before_lookup() {
        let good = format!("keel_ad_{}", "a".repeat(64));
        assert!(well_formed(&good));
        for bad in [
            "".to_string(),
            "keel_ad_".to_string(),
            format!("keel_xx_{}", "a".repeat(64)),
            format!("keel_ad_{}", "g".repeat(64)),
            format!("keel_ad_{}", "a".repeat(63)),
            format!("Bearer keel_ad_{}", "a".repeat(64)),
        ] {
            assert!(!well_formed(&bad), "{bad}");
        }
    }
}
