//! Services: reading them with their history, staff status changes (suspend, unsuspend,
//! terminate, cancel) with a reason, and clients' cancellation requests.

use crate::audit::record;
use crate::events::{self, Event, EventType, ServiceData};
use crate::ledger::Amount;
use crate::{App, AppError, Ctx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::access::Permission;
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{ClientId, OrderId, ProductId, ServiceId};
use keel_domain::lifecycle::{CancelKind, ServiceStatus};
use keel_store::{
    self as store, services::ServiceEvent, services::ServiceFilter, services::ServiceRecord,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceEventView {
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

impl From<ServiceEvent> for ServiceEventView {
    fn from(e: ServiceEvent) -> ServiceEventView {
        ServiceEventView {
            from_status: e.from_status,
            to_status: e.to_status,
            reason: e.reason,
            by: e.actor_label,
            at: e.at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ServiceView {
    pub id: ServiceId,
    pub client_id: ClientId,
    pub order_id: Option<OrderId>,
    pub product_id: ProductId,
    pub parent_id: Option<ServiceId>,
    pub label: String,
    pub cycle: BillingCycle,
    /// What each renewal bills.
    pub recurring: Amount,
    /// A downgrade's credit held for the next renewal (`downgrade_credit = "next_invoice"`):
    /// already in the wallet, paid from it to that renewal first.
    pub pending_credit: Amount,
    pub status: ServiceStatus,
    pub registration_date: NaiveDate,
    /// Period 0 starts here; later due dates keep its day of the month, or the billing day.
    pub anniversary: NaiveDate,
    /// The billing day the service was aligned to: its due dates fall on this day of the
    /// month, or on the month's last day when the month is shorter. Null: the anniversary's
    /// day.
    pub billing_day: Option<u32>,
    pub next_due_date: Option<NaiveDate>,
    pub cancellation: Option<CancellationView>,
    /// What the provisioner is to do next ("create", …), recorded for the provisioning issue.
    pub provision_intent: Option<String>,
    /// Present on a single service read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ServiceEventView>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CancellationView {
    pub kind: CancelKind,
    pub reason: Option<String>,
    pub on: Option<NaiveDate>,
}

impl From<ServiceRecord> for ServiceView {
    fn from(s: ServiceRecord) -> ServiceView {
        ServiceView {
            id: s.id,
            client_id: s.client_id,
            order_id: s.order_id,
            product_id: s.product_id,
            parent_id: s.parent_id,
            label: s.label,
            cycle: s.cycle,
            recurring: s.recurring.into(),
            pending_credit: s.pending_credit.into(),
            status: s.status,
            registration_date: s.registration_date,
            anniversary: s.anniversary.date(),
            billing_day: s.anniversary.billing_day(),
            next_due_date: s.next_due_date,
            cancellation: s.cancel_kind.map(|kind| CancellationView {
                kind,
                reason: s.cancel_reason,
                on: s.cancel_on,
            }),
            provision_intent: s.provision_intent,
            history: None,
        }
    }
}

pub async fn get(app: &App, ctx: &Ctx, id: ServiceId) -> Result<ServiceView, AppError> {
    ctx.require(Permission::BillingRead)?;
    let s = store::services::get_service(&app.db, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let mut v = ServiceView::from(s);
    v.history = Some(
        store::services::service_events(&app.db, id)
            .await?
            .into_iter()
            .map(ServiceEventView::from)
            .collect(),
    );
    Ok(v)
}

/// A service as [`get`] shows it, read in `tx` before it commits (what a use case stores as
/// its answer). The caller has checked the scope: it locked the service.
pub(crate) async fn view_in(
    tx: &mut keel_store::Tx,
    id: ServiceId,
) -> Result<ServiceView, AppError> {
    let s = store::services::service_tx(tx, id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    let mut v = ServiceView::from(s);
    v.history = Some(
        store::services::service_events_tx(tx, id)
            .await?
            .into_iter()
            .map(ServiceEventView::from)
            .collect(),
    );
    Ok(v)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    pub client_id: Option<i64>,
    /// pending, active, suspended, terminated or cancelled.
    #[param(value_type = Option<keel_domain::lifecycle::ServiceStatus>)]
    pub status: Option<String>,
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    #[param(schema_with = crate::page_limit_schema)]
    pub limit: Option<u32>,
}

pub async fn list(
    app: &App,
    ctx: &Ctx,
    q: &ServiceQuery,
) -> Result<keel_store::Page<ServiceView>, AppError> {
    ctx.require(Permission::BillingRead)?;
    let status = crate::parse_status(q.status.as_deref(), ServiceStatus::parse, "service")?;
    let page = store::services::list_services(
        &app.db,
        ctx.actor.scope(),
        &ServiceFilter {
            client: q.client_id.map(ClientId),
            status,
        },
        crate::cursor(q.cursor.as_deref())?,
        crate::page_limit(q.limit)?,
    )
    .await?;
    Ok(page.map(ServiceView::from))
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// active (unsuspend), suspended, terminated or cancelled.
    pub status: ServiceStatus,
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
}

/// Staff move a service to another status, with a reason kept in its history.
pub async fn change_status(
    app: &App,
    ctx: &Ctx,
    id: ServiceId,
    input: &StatusInput,
) -> Result<ServiceView, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    let s = store::services::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    if !s.status.can_become(input.status) {
        return Err(AppError::conflict(
            "invalid_transition",
            format!("a {} service cannot become {}", s.status, input.status),
        ));
    }
    let intent = match input.status {
        ServiceStatus::Suspended => "suspend",
        ServiceStatus::Active => "unsuspend",
        ServiceStatus::Terminated | ServiceStatus::Cancelled => "terminate",
        ServiceStatus::Pending => "create",
    };
    let moved = store::services::set_service_status(
        &mut tx,
        id,
        s.status,
        input.status,
        reason,
        ctx.actor.label(),
        Some(intent),
        app.now(),
    )
    .await?;
    if !moved {
        return Err(AppError::conflict(
            "service_changed",
            "the service changed meanwhile; read it again",
        ));
    }
    let event_id = store::services::last_service_event(&mut tx, id).await?;
    crate::provisioning::intend(&mut tx, app, id, intent, &format!("event:{event_id}")).await?;
    let event = match (s.status, input.status) {
        (_, ServiceStatus::Suspended) => Some(EventType::ServiceSuspended),
        (ServiceStatus::Suspended, ServiceStatus::Active) => Some(EventType::ServiceUnsuspended),
        (_, ServiceStatus::Terminated) => Some(EventType::ServiceTerminated),
        (_, ServiceStatus::Cancelled) => Some(EventType::ServiceCancelled),
        _ => None,
    };
    if let Some(event) = event {
        events::emit(
            &mut tx,
            app,
            Event::Service(event, ServiceData::of(&s, s.status, input.status, reason)),
        )
        .await?;
    }
    record(
        &mut tx,
        app,
        ctx,
        "service.status",
        "service",
        id,
        json!({ "from": s.status, "to": input.status, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancellationInput {
    pub kind: CancelKind,
    #[schema(schema_with = keel_domain::text::schema::reason)]
    pub reason: String,
}

/// A cancellation request: `immediate` cancels now; `end_of_period` stops renewals and
/// takes effect on the next due date (the automation issue carries it out on that day).
pub async fn request_cancellation(
    app: &App,
    ctx: &Ctx,
    id: ServiceId,
    input: &CancellationInput,
) -> Result<ServiceView, AppError> {
    if !ctx.actor.can(Permission::BillingWrite) {
        ctx.require(Permission::Order)?;
    }
    let reason = crate::required_reason(&input.reason)?;
    let mut tx = app.db.begin().await?;
    let s = store::services::service_for_update(&mut tx, ctx.actor.scope(), id)
        .await?
        .ok_or(AppError::NotFound { what: "service" })?;
    if s.status.is_final() {
        return Err(AppError::conflict(
            "service_closed",
            format!("the service is already {}", s.status),
        ));
    }
    let today = app.today();
    let now = app.now();
    let on = match input.kind {
        CancelKind::Immediate => {
            store::services::set_service_status(
                &mut tx,
                id,
                s.status,
                ServiceStatus::Cancelled,
                reason,
                ctx.actor.label(),
                Some("terminate"),
                now,
            )
            .await?;
            today
        }
        CancelKind::EndOfPeriod => match s.next_due_date {
            // The next period would start on the next due date: it is not renewed.
            Some(d) => d,
            None => today,
        },
    };
    store::services::request_cancellation(&mut tx, id, input.kind, reason, on, now).await?;
    let (event, to) = match input.kind {
        CancelKind::Immediate => (EventType::ServiceCancelled, ServiceStatus::Cancelled),
        CancelKind::EndOfPeriod => (EventType::ServiceCancellationRequested, s.status),
    };
    let mut data = ServiceData::of(&s, s.status, to, reason);
    data.cancel_on = Some(on);
    events::emit(&mut tx, app, Event::Service(event, data)).await?;
    record(
        &mut tx,
        app,
        ctx,
        "service.cancellation",
        "service",
        id,
        json!({ "kind": input.kind, "on": on, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    get(app, &Ctx::system("read-back"), id).await
}
