//! Dunning: reminders, overdue notices, the late fee, suspension, termination and the
//! cancellation of unpaid invoices, as the policies say (`keel_domain::dunning`).
//!
//! The daily run ([`run`], job `dunning.run`, schedule `overdue`) reads the unpaid invoices
//! and records every step owed as a row of `dunning_steps` (unique per invoice, step and
//! service) together with the job that performs it (`dunning.step`, key
//! `dunning:{step}:{round}`), in one transaction per batch. The step's job ([`perform`])
//! locks the row and acts only while it is queued, so a step happens once however often the
//! run or the job runs. Suspension and termination act per service (a service paid ahead on
//! another invoice is untouched) and wait while a payment is in flight; paying the invoice
//! lifts the suspensions it caused (`crate::settlement::lift`). Every change of a service also records the
//! provisioning intent as a job (`service.provision`, queue `provision`).

use crate::audit::record;
use crate::events::{self, Event, EventType, ServiceData};
use crate::jobs::app_of;
use crate::notify::{self, Notice};
use crate::{App, AppError, Ctx};
use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::future::BoxFuture;
use keel_domain::access::Permission;
use keel_domain::dunning::{self as rules, Policy, Step};
use keel_domain::ids::{ClientId, InvoiceId, ProductId, ServiceId};
use keel_domain::lifecycle::{InvoiceStatus, ServiceStatus};
use keel_domain::tenancy::Scope;
use keel_jobs::{Env, Handler, JobError};
use keel_store::Tx;
use keel_store::dunning::{self as store, NewStep, PolicyRow, StepRow, StepState, Target};
use keel_store::jobs::{JobRecord, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use utoipa::ToSchema;

/// The job kind of the daily dunning run (`[schedules.overdue]`).
pub const DUNNING_RUN: &str = "dunning.run";
/// The job kind of one step.
pub const DUNNING_STEP: &str = "dunning.step";

/// Invoices per run transaction.
const BATCH: u32 = 500;

/// The host's default policy and the named ones, as one run sees them.
#[derive(Debug, Clone)]
pub struct Policies {
    default: Policy,
    named: HashMap<i64, Policy>,
}

impl Policies {
    pub async fn load(app: &App) -> Result<Policies, AppError> {
        let mut named = HashMap::new();
        for row in store::policies(&app.db).await? {
            named.insert(row.id, parse_policy(&row)?);
        }
        Ok(Policies {
            default: app.billing.dunning.clone(),
            named,
        })
    }

    /// The policy `id` names, else the default.
    pub fn get(&self, id: Option<i64>) -> &Policy {
        id.and_then(|id| self.named.get(&id))
            .unwrap_or(&self.default)
    }

    /// The policy of one service an invoice bills: the service's own, else its client's,
    /// else its product's, else the default.
    pub fn of_service(&self, client: Option<i64>, s: &store::BilledService) -> &Policy {
        self.get(rules::resolve(s.service_policy, client, s.product_policy))
    }

    /// The policy of an invoice's own steps (reminders, late fee, cancellation): that of
    /// its first service, or the client's when it bills none.
    pub fn of_invoice(&self, client: Option<i64>, services: &[store::BilledService]) -> &Policy {
        match services.first() {
            Some(s) => self.of_service(client, s),
            None => self.get(rules::resolve(None, client, None)),
        }
    }

    /// How many days before a due date the earliest step of any policy happens.
    pub fn lead_days(&self) -> u32 {
        self.named
            .values()
            .chain([&self.default])
            .map(Policy::lead_days)
            .max()
            .unwrap_or(0)
    }
}

fn parse_policy(row: &PolicyRow) -> Result<Policy, AppError> {
    serde_json::from_str(&row.policy).map_err(|e| {
        AppError::from(keel_store::StoreError::Corrupt(format!(
            "dunning policy {} is not a policy: {e}",
            row.id
        )))
    })
}

/// What one run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RunReport {
    /// Unpaid invoices looked at.
    pub invoices: u64,
    /// Steps recorded with their job.
    pub queued: u64,
    /// Reminders recorded as superseded by a later one owed at the same time.
    pub superseded: u64,
    /// Held steps put back in the queue (their payment resolved or its hold ran out).
    pub released: u64,
}

fn step_job(id: i64, round: i32, at: DateTime<Utc>) -> NewJob {
    NewJob::new(DUNNING_STEP, json!({ "step": id }), at).unique(format!("dunning:{id}:{round}"))
}

/// Records the steps owed on `as_of` by every unpaid invoice, each with its job.
pub async fn run(app: &App, ctx: &Ctx, as_of: NaiveDate) -> Result<RunReport, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let policies = Policies::load(app).await?;
    let mut report = RunReport::default();

    let now = app.now();
    let mut tx = app.db.begin().await?;
    let released = store::release_holds(&mut tx, now).await?;
    let jobs: Vec<NewJob> = released
        .iter()
        .map(|(id, round)| step_job(*id, *round, now))
        .collect();
    keel_store::jobs::enqueue_many(&mut tx, &jobs, now).await?;
    tx.commit().await?;
    report.released = released.len() as u64;

    let horizon = as_of
        .checked_add_days(Days::new(u64::from(policies.lead_days())))
        .unwrap_or(as_of);
    let mut after = 0;
    loop {
        let invoices = store::open_invoices(&app.db, horizon, after, BATCH).await?;
        let (Some(first), Some(last)) = (invoices.first(), invoices.last()) else {
            break;
        };
        let (first, last) = (first.id, last.id);
        after = last;
        let mut services: HashMap<i64, Vec<store::BilledService>> = HashMap::new();
        for s in store::billed_services(&app.db, first, last).await? {
            services.entry(s.invoice_id).or_default().push(s);
        }
        let mut recorded: HashMap<(i64, Option<i64>), Vec<Step>> = HashMap::new();
        for row in store::steps_between(&app.db, first, last).await? {
            if let Some(step) = Step::parse(&row.step) {
                recorded
                    .entry((row.invoice_id, row.service_id))
                    .or_default()
                    .push(step);
            }
        }
        let mut new = Vec::new();
        for inv in &invoices {
            report.invoices += 1;
            let billed = services.get(&inv.id).map(Vec::as_slice).unwrap_or_default();
            let policy = policies.of_invoice(inv.client_policy, billed);
            let done = recorded
                .get(&(inv.id, None))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let owed = policy.due(inv.due_date, as_of, done);
            let step_day = |step: Step, p: &Policy| {
                p.plan(inv.due_date)
                    .into_iter()
                    .find(|(_, s)| *s == step)
                    .map(|(d, _)| d)
                    .unwrap_or(as_of)
            };
            for step in &owed.superseded {
                new.push(NewStep {
                    invoice_id: inv.id,
                    service_id: None,
                    step: step.key(),
                    due_on: step_day(*step, policy),
                    state: StepState::Skipped,
                    outcome: Some("superseded by a later reminder owed at the same time".into()),
                });
            }
            for step in owed.perform.iter().filter(|s| !s.per_service()) {
                new.push(NewStep {
                    invoice_id: inv.id,
                    service_id: None,
                    step: step.key(),
                    due_on: step_day(*step, policy),
                    state: StepState::Queued,
                    outcome: None,
                });
            }
            // Suspension and termination: each service by its own policy.
            for s in billed {
                let p = policies.of_service(inv.client_policy, s);
                let done = recorded
                    .get(&(inv.id, Some(s.service_id)))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for step in p
                    .due(inv.due_date, as_of, done)
                    .perform
                    .into_iter()
                    .filter(|s| s.per_service())
                {
                    new.push(NewStep {
                        invoice_id: inv.id,
                        service_id: Some(s.service_id),
                        step: step.key(),
                        due_on: step_day(step, p),
                        state: StepState::Queued,
                        outcome: None,
                    });
                }
            }
        }
        if new.is_empty() {
            continue;
        }
        let now = app.now();
        let mut tx = app.db.begin().await?;
        let mut jobs = Vec::new();
        for step in &new {
            // Another run may have recorded it meanwhile: then it is not ours to queue.
            let Some(id) = store::insert_step(&mut tx, step, now).await? else {
                continue;
            };
            if step.state == StepState::Queued {
                jobs.push(step_job(id, 0, now));
                report.queued += 1;
            } else {
                report.superseded += 1;
            }
        }
        keel_store::jobs::enqueue_many(&mut tx, &jobs, now).await?;
        tx.commit().await?;
    }
    if report.queued + report.superseded + report.released > 0 {
        let mut tx = app.db.begin().await?;
        record(
            &mut tx,
            app,
            ctx,
            "dunning.run",
            "billing",
            as_of,
            json!({ "invoices": report.invoices, "queued": report.queued, "superseded": report.superseded, "released": report.released }),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// What performing a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Performed {
    Done(String),
    Skipped(String),
    Held(DateTime<Utc>),
    /// Already done or skipped by an earlier run of the job.
    Already,
}

/// Performs a recorded step, once: the job `dunning.step`.
pub async fn perform(app: &App, ctx: &Ctx, step_id: i64) -> Result<Performed, AppError> {
    ctx.require(Permission::BillingWrite)?;
    let mut tx = app.db.begin().await?;
    let Some(row) = store::step_for_update(&mut tx, step_id).await? else {
        return Err(AppError::NotFound {
            what: "dunning step",
        });
    };
    if row.state != StepState::Queued {
        return Ok(Performed::Already);
    }
    let step = Step::parse(&row.step).ok_or_else(|| {
        AppError::from(keel_store::StoreError::Corrupt(format!(
            "dunning step {} has an unknown step {:?}",
            row.id, row.step
        )))
    })?;
    let inv =
        keel_store::invoices::invoice_for_update(&mut tx, Scope::Host, InvoiceId(row.invoice_id))
            .await?
            .ok_or(AppError::NotFound { what: "invoice" })?;
    let number = inv.display();
    let now = app.now();
    let outcome = if inv.status != InvoiceStatus::Unpaid {
        Performed::Skipped(format!("invoice {number} is {}", inv.status))
    } else {
        act(&mut tx, app, ctx, &row, step, &inv, &number).await?
    };
    match &outcome {
        Performed::Done(text) => {
            store::move_step(&mut tx, row.id, StepState::Done, None, text, now).await?
        }
        Performed::Skipped(text) => {
            store::move_step(&mut tx, row.id, StepState::Skipped, None, text, now).await?
        }
        Performed::Held(until) => {
            let text = format!("held: a payment is in flight until {}", until.to_rfc3339());
            store::move_step(&mut tx, row.id, StepState::Held, Some(*until), &text, now).await?
        }
        Performed::Already => {}
    }
    tx.commit().await?;
    Ok(outcome)
}

async fn act(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    row: &StepRow,
    step: Step,
    inv: &keel_store::invoices::InvoiceRecord,
    number: &str,
) -> Result<Performed, AppError> {
    let now = app.now();
    Ok(match step {
        // The message is queued in the notification outbox, once per step.
        Step::Reminder(n) => {
            notify(
                tx,
                app,
                Notice::PaymentReminder {
                    invoice: inv,
                    days: n,
                },
                row.id,
            )
            .await?;
            Performed::Done(format!("reminder {n} days before the due date"))
        }
        Step::Overdue(n) => {
            notify(
                tx,
                app,
                Notice::Overdue {
                    invoice: inv,
                    days: n,
                },
                row.id,
            )
            .await?;
            Performed::Done(format!("overdue notice {n} days after the due date"))
        }
        Step::LateFee => {
            let Some(fee) = app.billing.late_fee.as_ref().and_then(|a| a.fee(inv.total)) else {
                return Ok(Performed::Skipped(format!(
                    "no late fee is configured for {}",
                    inv.currency.code()
                )));
            };
            let days = (row.due_on - inv.due_date.unwrap_or(row.due_on)).num_days() as u32;
            if !crate::invoices::add_late_fee(tx, app, inv, fee, days, row.due_on).await? {
                return Ok(Performed::Skipped(
                    "the invoice already has a late fee".into(),
                ));
            }
            audit(
                tx,
                app,
                ctx,
                "dunning.late_fee",
                inv.id,
                json!({ "fee": fee.plain_amount(), "currency": fee.currency().code() }),
            )
            .await?;
            let with_fee = keel_store::invoices::invoice_for_update(tx, Scope::Host, inv.id)
                .await?
                .ok_or(AppError::NotFound { what: "invoice" })?;
            notify(
                tx,
                app,
                Notice::LateFee {
                    invoice: &with_fee,
                    fee,
                },
                row.id,
            )
            .await?;
            Performed::Done(format!("late fee {} added", fee.format_amount()))
        }
        Step::Suspend | Step::Terminate => {
            if let Some(until) = store::payment_hold(tx, inv.id, now).await? {
                return Ok(Performed::Held(until));
            }
            let service = ServiceId(row.service_id.ok_or_else(|| {
                AppError::from(keel_store::StoreError::Corrupt(format!(
                    "dunning step {} has no service",
                    row.id
                )))
            })?);
            let Some(s) =
                keel_store::services::service_for_update(tx, Scope::Host, service).await?
            else {
                return Ok(Performed::Skipped("the service is gone".into()));
            };
            let (to, allowed, action, verb) = match step {
                Step::Suspend => (
                    ServiceStatus::Suspended,
                    s.status == ServiceStatus::Active,
                    "suspend",
                    "suspended",
                ),
                _ => (
                    ServiceStatus::Terminated,
                    s.status.can_become(ServiceStatus::Terminated),
                    "terminate",
                    "terminated",
                ),
            };
            if !allowed {
                return Ok(Performed::Skipped(format!("the service is {}", s.status)));
            }
            let reason = format!(
                "invoice {number} overdue (due {})",
                inv.due_date.map(|d| d.to_string()).unwrap_or_default()
            );
            let moved = keel_store::services::set_service_status(
                tx,
                service,
                s.status,
                to,
                &reason,
                ctx.actor.label(),
                Some(action),
                now,
            )
            .await?;
            if !moved {
                return Err(AppError::conflict(
                    "service_changed",
                    "the service changed meanwhile",
                ));
            }
            crate::provisioning::intend(tx, app, service, action, &format!("dunning:{}", row.id))
                .await?;
            let event = if to == ServiceStatus::Suspended {
                EventType::ServiceSuspended
            } else {
                EventType::ServiceTerminated
            };
            events::emit(
                tx,
                app,
                Event::Service(event, ServiceData::of(&s, s.status, to, &reason)),
            )
            .await?;
            record(
                tx,
                app,
                ctx,
                &format!("dunning.{action}"),
                "service",
                service,
                json!({ "invoice": inv.id, "reason": reason }),
            )
            .await?;
            let notice = if to == ServiceStatus::Suspended {
                Notice::ServiceSuspended {
                    invoice: inv,
                    service,
                    label: &s.label,
                }
            } else {
                Notice::ServiceTerminated {
                    invoice: inv,
                    service,
                    label: &s.label,
                }
            };
            notify(tx, app, notice, row.id).await?;
            Performed::Done(format!("service {service} {verb}"))
        }
        Step::CancelInvoice => {
            if inv.paid.is_positive() || inv.credited.is_positive() {
                return Ok(Performed::Skipped(
                    "part of the invoice is paid or credited: left to staff".into(),
                ));
            }
            let reason = format!(
                "unpaid {} days after its due date",
                (row.due_on - inv.due_date.unwrap_or(row.due_on)).num_days()
            );
            crate::invoices::cancel_in(tx, app, inv, &reason).await?;
            audit(
                tx,
                app,
                ctx,
                "dunning.cancel_invoice",
                inv.id,
                json!({ "reason": reason }),
            )
            .await?;
            Performed::Done(format!("invoice {number} cancelled"))
        }
    })
}

/// Queues the client's message for a step (cause `dunning:{step}`), the invoice attached.
async fn notify(tx: &mut Tx, app: &App, notice: Notice<'_>, step: i64) -> Result<(), AppError> {
    notify::queue(tx, app, notice, &format!("dunning:{step}")).await?;
    Ok(())
}

async fn audit(
    tx: &mut Tx,
    app: &App,
    ctx: &Ctx,
    action: &str,
    invoice: InvoiceId,
    details: serde_json::Value,
) -> Result<(), AppError> {
    record(tx, app, ctx, action, "invoice", invoice, details).await
}

// ---------------------------------------------------------------------------------------
// Jobs

fn run_job<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = app_of(env)?;
        let as_of = crate::jobs::as_of(app, job)?;
        let report = run(app, &Ctx::system(&format!("job {}", job.id)), as_of).await?;
        tracing::info!(job = job.id, %as_of, queued = report.queued, superseded = report.superseded, "dunning run done");
        Ok(())
    })
}

fn step_job_run<'a>(env: &'a Env, job: &'a JobRecord) -> BoxFuture<'a, Result<(), JobError>> {
    Box::pin(async move {
        let app = app_of(env)?;
        let id = crate::jobs::payload_id(job, "step")?;
        perform(app, &Ctx::system(&format!("job {}", job.id)), id).await?;
        Ok(())
    })
}

inventory::submit! { Handler { kind: DUNNING_RUN, run: run_job } }
inventory::submit! { Handler { kind: DUNNING_STEP, run: step_job_run } }

// ---------------------------------------------------------------------------------------
// Staff: policies and their assignment

/// A named policy.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PolicyView {
    pub id: i64,
    pub name: String,
    #[schema(value_type = Object)]
    pub policy: Policy,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The default policy and the named ones.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PoliciesView {
    /// The host's default (`[dunning]` in keel.toml), used where nothing names another.
    #[schema(value_type = Object)]
    pub default: Policy,
    pub items: Vec<PolicyView>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    #[schema(schema_with = keel_domain::text::schema::policy_name)]
    pub name: String,
    /// reminder_days_before, overdue_days, late_fee_days, suspend_days, terminate_days,
    /// cancel_invoice_days, payment_hold_hours.
    #[schema(value_type = Object)]
    pub policy: Policy,
}

fn view(row: PolicyRow) -> Result<PolicyView, AppError> {
    let policy = parse_policy(&row)?;
    Ok(PolicyView {
        id: row.id,
        name: row.name,
        policy,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn checked(input: &PolicyInput) -> Result<(String, String), AppError> {
    AppError::check_text("name", &input.name, keel_domain::text::limits::POLICY_NAME)?;
    let name = input.name.trim();
    input
        .policy
        .validate()
        .map_err(|e| AppError::invalid(e.code(), Some("policy"), e.to_string()))?;
    let json = serde_json::to_string(&input.policy)
        .map_err(|e| AppError::from(keel_store::StoreError::Corrupt(format!("policy: {e}"))))?;
    Ok((name.to_owned(), json))
}

fn name_taken(e: keel_store::StoreError) -> AppError {
    match e {
        keel_store::StoreError::Conflict { .. } => AppError::conflict(
            "policy_name_taken",
            "a dunning policy with this name exists",
        ),
        other => other.into(),
    }
}

pub async fn policies(app: &App, ctx: &Ctx) -> Result<PoliciesView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let items = store::policies(&app.db)
        .await?
        .into_iter()
        .map(view)
        .collect::<Result<_, _>>()?;
    Ok(PoliciesView {
        default: app.billing.dunning.clone(),
        items,
    })
}

pub async fn create_policy(
    app: &App,
    ctx: &Ctx,
    input: &PolicyInput,
) -> Result<PolicyView, AppError> {
    create_policy_answering(app, ctx, input, None).await
}

/// [`create_policy`], storing the API's answer in the same transaction ([`crate::Answer`]):
/// a retry after a crash between the commit and the answer is replayed, not refused as
/// `policy_name_taken`.
pub async fn create_policy_answering(
    app: &App,
    ctx: &Ctx,
    input: &PolicyInput,
    answer: Option<crate::Answer>,
) -> Result<PolicyView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let (name, json) = checked(input)?;
    let mut tx = app.db.begin().await?;
    let id = store::insert_policy(&mut tx, &name, &json, app.now())
        .await
        .map_err(name_taken)?;
    record(
        &mut tx,
        app,
        ctx,
        "dunning.policy.create",
        "dunning_policy",
        id,
        json!({ "name": name, "policy": input.policy }),
    )
    .await?;
    let answered = view(
        store::policy_tx(&mut tx, id)
            .await?
            .ok_or(AppError::NotFound {
                what: "dunning policy",
            })?,
    )?;
    if let Some(a) = answer {
        a.store(&mut tx, app, &answered).await?;
    }
    tx.commit().await?;
    Ok(answered)
}

pub async fn update_policy(
    app: &App,
    ctx: &Ctx,
    id: i64,
    input: &PolicyInput,
) -> Result<PolicyView, AppError> {
    ctx.require(Permission::CatalogWrite)?;
    let (name, json) = checked(input)?;
    let mut tx = app.db.begin().await?;
    if !store::update_policy(&mut tx, id, &name, &json, app.now())
        .await
        .map_err(name_taken)?
    {
        return Err(AppError::NotFound {
            what: "dunning policy",
        });
    }
    record(
        &mut tx,
        app,
        ctx,
        "dunning.policy.update",
        "dunning_policy",
        id,
        json!({ "name": name, "policy": input.policy }),
    )
    .await?;
    tx.commit().await?;
    policy(app, id).await
}

async fn policy(app: &App, id: i64) -> Result<PolicyView, AppError> {
    view(
        store::get_policy(&app.db, id)
            .await?
            .ok_or(AppError::NotFound {
                what: "dunning policy",
            })?,
    )
}

/// What a policy is assigned to, by the API's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Product,
    Client,
    Service,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignInput {
    pub target: TargetKind,
    #[schema(minimum = 1)]
    pub id: i64,
    /// The policy to follow; null returns to the next level (client, product, default).
    #[schema(minimum = 1)]
    pub policy_id: Option<i64>,
}

/// Names the policy a product, client or service follows.
pub async fn assign(app: &App, ctx: &Ctx, input: &AssignInput) -> Result<(), AppError> {
    ctx.require(Permission::CatalogWrite)?;
    if let Some(p) = input.policy_id
        && store::get_policy(&app.db, p).await?.is_none()
    {
        return Err(AppError::invalid(
            "unknown_policy",
            Some("policy_id"),
            format!("there is no dunning policy {p}"),
        ));
    }
    let target = match input.target {
        TargetKind::Product => Target::Product(ProductId(input.id)),
        TargetKind::Client => Target::Client(ClientId(input.id)),
        TargetKind::Service => Target::Service(ServiceId(input.id)),
    };
    let mut tx = app.db.begin().await?;
    if !store::assign_policy(&mut tx, target, input.policy_id, app.now()).await? {
        return Err(AppError::NotFound {
            what: match input.target {
                TargetKind::Product => "product",
                TargetKind::Client => "client",
                TargetKind::Service => "service",
            },
        });
    }
    record(
        &mut tx,
        app,
        ctx,
        "dunning.assign",
        "dunning_policy",
        input.policy_id.unwrap_or(0),
        json!({ "target": input.target, "id": input.id, "policy_id": input.policy_id }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A recorded step, as staff read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StepView {
    pub id: i64,
    pub step: String,
    pub service_id: Option<i64>,
    pub due_on: NaiveDate,
    pub state: StepState,
    pub outcome: Option<String>,
    pub held_until: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// The dunning steps of an invoice the caller can see.
pub async fn steps(app: &App, ctx: &Ctx, invoice: InvoiceId) -> Result<Vec<StepView>, AppError> {
    crate::invoices::get(app, ctx, invoice).await?;
    Ok(store::steps_of_invoice(&app.db, invoice)
        .await?
        .into_iter()
        .map(|r| StepView {
            id: r.id,
            step: r.step,
            service_id: r.service_id,
            due_on: r.due_on,
            state: r.state,
            outcome: r.outcome,
            held_until: r.held_until,
            updated_at: r.updated_at,
        })
        .collect())
}
