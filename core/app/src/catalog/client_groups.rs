//! Client groups (their discount and invoicing terms) and a client's own billing settings
//! (lead days, billing day, group), with the settings in effect.

use super::*;
use crate::audit::record;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Utc};
use keel_domain::access::Permission;
use keel_domain::currency::Currency;
use keel_domain::ids::{ClientGroupId, ClientId};
use keel_domain::text::limits;
use keel_store::catalog::{
    self as store, ClientBillingSettings, ClientGroup, ClientGroupFields, EffectiveBillingSettings,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

const CLIENT_GROUP: AppError = AppError::NotFound {
    what: "client group",
};

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
