//! Dunning: named policies and who uses them, the steps taken for unpaid invoices, and
//! payments still in flight at a gateway.
//!
//! Concurrency rules kept here:
//! - a step is recorded once per (invoice, step, service): `dunning_steps_key`; a run that
//!   races another inserts nothing for the steps the other recorded;
//! - a step's job locks its row ([`step_for_update`]) and acts only while it is `queued`, so
//!   a retried or duplicated job performs it once.

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::{on_db, on_tx};
use chrono::{DateTime, NaiveDate, Utc};
use keel_domain::ids::{ClientId, InvoiceId, ProductId, ServiceId};

/// A named policy as stored (its JSON document is checked by the application).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PolicyRow {
    pub id: i64,
    pub name: String,
    pub policy: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert_policy(
    tx: &mut Tx,
    name: &str,
    policy: &str,
    at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO dunning_policies (name, policy, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id"
    )
    .bind(name)
    .bind(policy)
    .bind(at)
    .fetch_one(&mut *c)
    .await
    })?)
}

/// Replaces a policy's name and document; false when there is no such policy.
pub async fn update_policy(
    tx: &mut Tx,
    id: i64,
    name: &str,
    policy: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE dunning_policies SET name = $1, policy = $2, updated_at = $3 WHERE id = $4"
    )
    .bind(name)
    .bind(policy)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub async fn policies(db: &Db) -> Result<Vec<PolicyRow>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, name, policy, created_at, updated_at FROM dunning_policies ORDER BY id"
    )
    .fetch_all(p)
    .await)?)
}

pub async fn get_policy(db: &Db, id: i64) -> Result<Option<PolicyRow>, StoreError> {
    Ok(on_db!(db, |p| sqlx::query_as(
        "SELECT id, name, policy, created_at, updated_at FROM dunning_policies WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(p)
    .await)?)
}

/// The same, inside a transaction (a policy just created, before its commit).
pub async fn policy_tx(tx: &mut Tx, id: i64) -> Result<Option<PolicyRow>, StoreError> {
    Ok(on_tx!(tx, |c| sqlx::query_as(
        "SELECT id, name, policy, created_at, updated_at FROM dunning_policies WHERE id = $1"
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?)
}

/// What a policy is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Product(ProductId),
    Client(ClientId),
    Service(ServiceId),
}

/// Names the policy of a product, client or service (`None`: back to the next level);
/// false when the row does not exist.
pub async fn assign_policy(
    tx: &mut Tx,
    target: Target,
    policy: Option<i64>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (table, id) = match target {
        Target::Product(id) => ("products", id.get()),
        Target::Client(id) => ("clients", id.get()),
        Target::Service(id) => ("services", id.get()),
    };
    let sql = format!("UPDATE {table} SET dunning_policy_id = $1, updated_at = $2 WHERE id = $3");
    let n = on_tx!(tx, |c| sqlx::query(&sql)
        .bind(policy)
        .bind(at)
        .bind(id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The policy named by a product, client or service, if any.
pub async fn assigned_policy(db: &Db, target: Target) -> Result<Option<i64>, StoreError> {
    let (table, id) = match target {
        Target::Product(id) => ("products", id.get()),
        Target::Client(id) => ("clients", id.get()),
        Target::Service(id) => ("services", id.get()),
    };
    let sql = format!("SELECT dunning_policy_id FROM {table} WHERE id = $1");
    let row: Option<Option<i64>> = on_db!(db, |p| sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    row.ok_or(StoreError::NotFound)
}

// ---------------------------------------------------------------------------------------
// What a dunning run reads

/// An unpaid invoice a run looks at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenInvoice {
    pub id: i64,
    pub client_id: i64,
    pub number: Option<String>,
    pub due_date: NaiveDate,
    pub currency: String,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub credited_minor: i64,
    pub client_policy: Option<i64>,
}

/// A service billed on an open invoice, with the policies it could follow.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BilledService {
    pub invoice_id: i64,
    pub service_id: i64,
    pub status: String,
    pub service_policy: Option<i64>,
    pub product_policy: Option<i64>,
}

keel_domain::named_enum!(
    /// Where a dunning step is: `queued` (its job performs it), `held` (a payment is in
    /// flight), `done` or `skipped` (with the outcome saying why).
    StepState {
        Queued = "queued",
        Held = "held",
        Done = "done",
        Skipped = "skipped",
    }
);

impl TryFrom<String> for StepState {
    type Error = StoreError;
    fn try_from(text: String) -> Result<Self, StoreError> {
        StepState::parse(&text).ok_or_else(|| crate::error::corrupt("dunning step state", &text))
    }
}

/// A recorded step.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StepRow {
    pub id: i64,
    pub invoice_id: i64,
    pub service_id: Option<i64>,
    pub step: String,
    pub due_on: NaiveDate,
    #[sqlx(try_from = "String")]
    pub state: StepState,
    pub outcome: Option<String>,
    pub held_until: Option<DateTime<Utc>>,
    pub round: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const STEP_COLUMNS: &str = "id, invoice_id, service_id, step, due_on, state, outcome, held_until, round, created_at, updated_at";

/// Issued standard invoices still owed (`unpaid`; not those handed to collections) due on or
/// before `due_until`, after `after` by id, at most `limit`.
pub async fn open_invoices(
    db: &Db,
    due_until: NaiveDate,
    after: i64,
    limit: u32,
) -> Result<Vec<OpenInvoice>, StoreError> {
    Ok(on_db!(db, |p| {
        sqlx::query_as(
        "SELECT i.id, i.client_id, i.number, i.due_date, i.currency, i.total_minor, i.paid_minor, i.credited_minor, \
           c.dunning_policy_id AS client_policy \
         FROM invoices i JOIN clients c ON c.id = i.client_id \
         WHERE i.status = 'unpaid' AND i.kind = 'standard' AND i.due_date <= $1 AND i.id > $2 \
         ORDER BY i.id LIMIT $3"
    )
    .bind(due_until)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(p)
    .await
    })?)
}

/// The services billed on invoices `first..=last` (by invoice, then service).
pub async fn billed_services(
    db: &Db,
    first: i64,
    last: i64,
) -> Result<Vec<BilledService>, StoreError> {
    Ok(on_db!(db, |p| {
        sqlx::query_as(
        "SELECT DISTINCT l.invoice_id, s.id AS service_id, s.status, s.dunning_policy_id AS service_policy, \
           pr.dunning_policy_id AS product_policy \
         FROM invoice_lines l JOIN services s ON s.id = l.service_id JOIN products pr ON pr.id = s.product_id \
         WHERE l.invoice_id BETWEEN $1 AND $2 ORDER BY l.invoice_id, s.id"
    )
    .bind(first)
    .bind(last)
    .fetch_all(p)
    .await
    })?)
}

/// A service with the policies it could follow (for the preview of invoices not yet issued).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServicePolicies {
    pub service_id: i64,
    pub client_id: i64,
    pub status: String,
    pub service_policy: Option<i64>,
    pub product_policy: Option<i64>,
    pub client_policy: Option<i64>,
}

/// The policies `services` could follow, with their status.
pub async fn service_policies(
    db: &Db,
    services: &[ServiceId],
) -> Result<Vec<ServicePolicies>, StoreError> {
    let mut out = Vec::with_capacity(services.len());
    for chunk in services.chunks(500) {
        let list = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT s.id AS service_id, s.client_id, s.status, s.dunning_policy_id AS service_policy, \
               pr.dunning_policy_id AS product_policy, c.dunning_policy_id AS client_policy \
             FROM services s JOIN products pr ON pr.id = s.product_id JOIN clients c ON c.id = s.client_id \
             WHERE s.id IN ({list})"
        );
        let rows: Vec<ServicePolicies> = on_db!(db, |p| {
            let mut q = sqlx::query_as(&sql);
            for id in chunk {
                q = q.bind(id.get());
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

/// The steps recorded for invoices `first..=last`.
pub async fn steps_between(db: &Db, first: i64, last: i64) -> Result<Vec<StepRow>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM dunning_steps WHERE invoice_id BETWEEN $1 AND $2 ORDER BY id"
    );
    Ok(on_db!(db, |p| sqlx::query_as(&sql)
        .bind(first)
        .bind(last)
        .fetch_all(p)
        .await)?)
}

/// The steps of one invoice, in the order they were recorded.
pub async fn steps_of_invoice(db: &Db, invoice: InvoiceId) -> Result<Vec<StepRow>, StoreError> {
    steps_between(db, invoice.get(), invoice.get()).await
}

/// A step to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStep {
    pub invoice_id: i64,
    pub service_id: Option<i64>,
    pub step: String,
    pub due_on: NaiveDate,
    /// `queued` (a job performs it) or `skipped` (with the outcome saying why).
    pub state: StepState,
    pub outcome: Option<String>,
}

/// Records a step; `None` when it was already recorded (by this run earlier or another).
pub async fn insert_step(
    tx: &mut Tx,
    step: &NewStep,
    at: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO dunning_steps (invoice_id, service_id, step, due_on, state, outcome, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT DO NOTHING RETURNING id"
    )
    .bind(step.invoice_id)
    .bind(step.service_id)
    .bind(&step.step)
    .bind(step.due_on)
    .bind(step.state.as_str())
    .bind(&step.outcome)
    .bind(at)
    .fetch_optional(&mut *c)
    .await
    })?)
}

/// A step read inside the transaction that performs it (locked on PostgreSQL).
pub async fn step_for_update(tx: &mut Tx, id: i64) -> Result<Option<StepRow>, StoreError> {
    let lock = match tx.engine() {
        crate::Engine::Postgres => " FOR UPDATE",
        crate::Engine::Sqlite => "",
    };
    let sql = format!("SELECT {STEP_COLUMNS} FROM dunning_steps WHERE id = $1{lock}");
    Ok(on_tx!(tx, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await)?)
}

/// Moves a queued step on: `done` or `skipped` (no hold), or `held` until `held_until`
/// while a payment is in flight; `outcome` says what happened.
pub async fn move_step(
    tx: &mut Tx,
    id: i64,
    state: StepState,
    held_until: Option<DateTime<Utc>>,
    outcome: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    on_tx!(tx, |c| {
        sqlx::query(
        "UPDATE dunning_steps SET state = $1, held_until = $2, outcome = $3, updated_at = $4 WHERE id = $5"
    )
    .bind(state.as_str())
    .bind(held_until)
    .bind(outcome)
    .bind(at)
    .bind(id)
    .execute(&mut *c)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Puts back in the queue every held step of an invoice with no pending payment left, or
/// whose hold ran out by `now`; returns (step id, new round) for the caller to enqueue.
pub async fn release_holds(tx: &mut Tx, now: DateTime<Utc>) -> Result<Vec<(i64, i32)>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_as(
        "UPDATE dunning_steps SET state = 'queued', held_until = NULL, round = round + 1, updated_at = $1 \
         WHERE state = 'held' AND (held_until <= $1 OR NOT EXISTS ( \
           SELECT 1 FROM payment_attempts a WHERE a.invoice_id = dunning_steps.invoice_id \
             AND a.state = 'pending' AND a.hold_until > $1)) \
         RETURNING id, round"
    )
    .bind(now)
    .fetch_all(&mut *c)
    .await
    })?)
}

/// The latest end of the holds of payments pending on `invoice` at `now`, if any.
pub async fn payment_hold(
    tx: &mut Tx,
    invoice: InvoiceId,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT MAX(hold_until) FROM payment_attempts WHERE invoice_id = $1 AND state = 'pending' AND hold_until > $2"
    )
    .bind(invoice.get())
    .bind(now)
    .fetch_one(&mut *c)
    .await
    })?)
}

/// Services suspended by dunning for `invoice` (its `suspend` steps done).
pub async fn suspended_for(tx: &mut Tx, invoice: InvoiceId) -> Result<Vec<ServiceId>, StoreError> {
    let ids: Vec<i64> = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT service_id FROM dunning_steps WHERE invoice_id = $1 AND step = 'suspend' AND state = 'done' \
           AND service_id IS NOT NULL ORDER BY service_id"
    )
    .bind(invoice.get())
    .fetch_all(&mut *c)
    .await
    })?;
    Ok(ids.into_iter().map(ServiceId).collect())
}

/// Whether dunning suspended `service` for another invoice that is still owed: paying one
/// invoice does not lift a suspension another one caused.
pub async fn suspended_for_another(
    tx: &mut Tx,
    service: ServiceId,
    paid: InvoiceId,
) -> Result<bool, StoreError> {
    let n: i64 = on_tx!(tx, |c| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM dunning_steps d JOIN invoices i ON i.id = d.invoice_id \
         WHERE d.service_id = $1 AND d.step = 'suspend' AND d.state = 'done' AND d.invoice_id <> $2 \
           AND i.status IN ('unpaid', 'collections')"
    )
    .bind(service.get())
    .bind(paid.get())
    .fetch_one(&mut *c)
    .await
    })?;
    Ok(n > 0)
}
