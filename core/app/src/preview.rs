//! The automation preview: day by day over the next days, every invoice the billing run
//! would issue and every dunning step (reminder, overdue notice, late fee, suspension,
//! termination, invoice cancellation) the dunning run would take, with totals. It reads
//! only: nothing is written, nothing is locked for long (the billing part is a dry run).
//!
//! Assumptions, written down because a preview is a forecast: the schedules run every day;
//! nobody pays (an invoice paid meanwhile drops its later steps) except the wallets the
//! billing run itself applies to new invoices (an invoice a wallet pays in full has no
//! dunning); payments in flight are not counted as holds. Steps already owed before the
//! first day happen on the first day, with only the latest of several owed reminders sent
//! (as the dunning run does).

use crate::billing_run;
use crate::dunning::Policies;
use crate::{App, AppError, Ctx};
use chrono::{Days, NaiveDate};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::access::Permission;
use keel_domain::dunning::{Policy, Step, resolve};
use keel_domain::ids::ServiceId;
use keel_domain::lifecycle::ServiceStatus;
use keel_store::dunning as store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// The longest preview, in days.
pub const MAX_DAYS: u32 = 366;

/// An invoice the billing run would issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreviewInvoice {
    pub client_id: i64,
    pub due_date: NaiveDate,
    pub currency: String,
    pub total: String,
    pub total_minor: i64,
    /// What the run pays from the client's wallet when it issues the invoice (clients
    /// whose terms apply the wallet, as far as its balance goes): paid in full, the invoice
    /// has no dunning.
    pub wallet: String,
    pub wallet_minor: i64,
    pub services: Vec<i64>,
}

/// A dunning step the dunning run would take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreviewAction {
    /// reminder-N, overdue-N, late_fee, suspend, terminate, cancel_invoice.
    pub step: String,
    /// The invoice, when it exists already (else one issued within the preview).
    pub invoice_id: Option<i64>,
    pub invoice_number: Option<String>,
    pub client_id: i64,
    /// Suspension and termination: the service.
    pub service_id: Option<i64>,
    pub due_date: NaiveDate,
    /// The late fee's amount.
    pub amount: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreviewDay {
    pub date: NaiveDate,
    pub invoices: Vec<PreviewInvoice>,
    pub actions: Vec<PreviewAction>,
}

/// Sums of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MoneyTotal {
    pub count: u64,
    pub total_minor: i64,
    pub total: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PreviewTotals {
    /// Invoices to be issued, per currency.
    pub invoices: BTreeMap<String, MoneyTotal>,
    /// Paid from wallets as they are issued, per currency (count: invoices paid from one).
    pub wallet_payments: BTreeMap<String, MoneyTotal>,
    pub reminders: u64,
    pub overdue_notices: u64,
    /// Late fees, per currency.
    pub late_fees: BTreeMap<String, MoneyTotal>,
    pub suspensions: u64,
    pub terminations: u64,
    pub invoice_cancellations: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Preview {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only the days with something to do.
    pub days: Vec<PreviewDay>,
    pub totals: PreviewTotals,
}

/// One invoice's dunning, existing or planned, before the services' states are applied.
struct Dunned<'a> {
    invoice_id: Option<i64>,
    number: Option<String>,
    client_id: i64,
    due: NaiveDate,
    /// The first day it can be acted on (today, or the day a planned invoice is issued).
    first_day: NaiveDate,
    total: Option<Money>,
    cancellable: bool,
    policy: &'a Policy,
    /// (service, its policy)
    services: Vec<(i64, &'a Policy)>,
    done: Vec<(Option<i64>, Step)>,
}

/// The `days` parameter's schema: the range [`preview`] checks.
pub fn days_schema() -> utoipa::openapi::Object {
    crate::schema::integer(
        1..=i64::from(MAX_DAYS),
        "Days to look ahead, today included; 30 when absent.",
    )
}

/// What automation would do from today for `days` days.
pub async fn preview(app: &App, ctx: &Ctx, days: u32) -> Result<Preview, AppError> {
    ctx.require(Permission::BillingWrite)?;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(AppError::invalid(
            "invalid_days",
            Some("days"),
            format!("a preview covers 1 to {MAX_DAYS} days"),
        ));
    }
    let from = app.today();
    let to = from + Days::new(u64::from(days - 1));
    let policies = Policies::load(app).await?;
    let mut out: BTreeMap<NaiveDate, PreviewDay> = BTreeMap::new();
    let mut totals = PreviewTotals::default();

    // 1. The billing run, as a dry run to the last day.
    let plan = billing_run::plan(app, ctx, to).await?;
    let planned_services: Vec<ServiceId> = plan
        .planned
        .iter()
        .flat_map(|p| p.services.iter().copied())
        .collect();
    let refs: HashMap<i64, store::ServicePolicies> =
        store::service_policies(&app.db, &planned_services)
            .await?
            .into_iter()
            .map(|r| (r.service_id, r))
            .collect();
    let mut status: HashMap<i64, ServiceStatus> = refs
        .values()
        .filter_map(|r| Some((r.service_id, ServiceStatus::parse(&r.status)?)))
        .collect();
    // The run pays each new invoice from the client's wallet when the client's terms say so,
    // in the order it issues them: so does the preview.
    let mut wallets = wallets(app, &plan.planned).await?;
    let mut in_order: Vec<&billing_run::PlannedInvoice> = plan.planned.iter().collect();
    in_order.sort_by_key(|p| p.issue_on);
    let mut dunned: Vec<Dunned> = Vec::new();
    for p in in_order {
        let issue = p.issue_on.max(from);
        if issue > to {
            continue;
        }
        let currency = Currency::from_code(&p.currency).ok();
        let t = totals.invoices.entry(p.currency.clone()).or_default();
        t.count += 1;
        t.total_minor += p.total_minor;
        let wallet_minor = wallets
            .get_mut(&(p.client_id.get(), p.currency.clone()))
            .map_or(0, |available| {
                let amount = (*available).min(p.total_minor).max(0);
                *available -= amount;
                amount
            });
        if wallet_minor > 0 {
            let t = totals
                .wallet_payments
                .entry(p.currency.clone())
                .or_default();
            t.count += 1;
            t.total_minor += wallet_minor;
        }
        entry(&mut out, issue).invoices.push(PreviewInvoice {
            client_id: p.client_id.get(),
            due_date: p.due_date,
            currency: p.currency.clone(),
            total: p.total.clone(),
            total_minor: p.total_minor,
            wallet: currency
                .map(|c| Money::new(wallet_minor, c).plain_amount())
                .unwrap_or_default(),
            wallet_minor,
            services: p.services.iter().map(|s| s.get()).collect(),
        });
        if wallet_minor > 0 && wallet_minor == p.total_minor {
            // Paid from the wallet as it is issued: nothing to chase.
            continue;
        }
        let first = p.services.first().and_then(|s| refs.get(&s.get()));
        dunned.push(Dunned {
            invoice_id: None,
            number: None,
            client_id: p.client_id.get(),
            due: p.due_date,
            first_day: issue,
            total: currency.map(|c| Money::new(p.total_minor, c)),
            cancellable: wallet_minor == 0,
            policy: policies.get(resolve(
                first.and_then(|r| r.service_policy),
                first.and_then(|r| r.client_policy),
                first.and_then(|r| r.product_policy),
            )),
            services: p
                .services
                .iter()
                .filter_map(|s| refs.get(&s.get()))
                .map(|r| {
                    let own =
                        policies.get(resolve(r.service_policy, r.client_policy, r.product_policy));
                    (r.service_id, own)
                })
                .collect(),
            done: Vec::new(),
        });
    }

    // 2. The invoices owed now.
    let horizon = to + Days::new(u64::from(policies.lead_days()));
    let mut after = 0;
    loop {
        let open = store::open_invoices(&app.db, horizon, after, 500).await?;
        let (Some(first), Some(last)) = (open.first(), open.last()) else {
            break;
        };
        let (first, last) = (first.id, last.id);
        after = last;
        let mut billed: HashMap<i64, Vec<store::BilledService>> = HashMap::new();
        for s in store::billed_services(&app.db, first, last).await? {
            if let Some(st) = ServiceStatus::parse(&s.status) {
                status.entry(s.service_id).or_insert(st);
            }
            billed.entry(s.invoice_id).or_default().push(s);
        }
        let mut done: HashMap<i64, Vec<(Option<i64>, Step)>> = HashMap::new();
        for r in store::steps_between(&app.db, first, last).await? {
            if let Some(step) = Step::parse(&r.step) {
                done.entry(r.invoice_id)
                    .or_default()
                    .push((r.service_id, step));
            }
        }
        for inv in open {
            let services = billed.remove(&inv.id).unwrap_or_default();
            dunned.push(Dunned {
                invoice_id: Some(inv.id),
                number: inv.number.clone(),
                client_id: inv.client_id,
                due: inv.due_date,
                first_day: from,
                total: Currency::from_code(&inv.currency)
                    .ok()
                    .map(|c| Money::new(inv.total_minor, c)),
                cancellable: inv.paid_minor == 0 && inv.credited_minor == 0,
                policy: policies.of_invoice(inv.client_policy, &services),
                services: services
                    .iter()
                    .map(|s| (s.service_id, policies.of_service(inv.client_policy, s)))
                    .collect(),
                done: done.remove(&inv.id).unwrap_or_default(),
            });
        }
    }

    // 3. Each invoice's steps by day; per-service steps in day order, so a service is
    // suspended once and a terminated one is left alone.
    let mut per_service: Vec<(NaiveDate, i64, Step, PreviewAction)> = Vec::new();
    for d in &dunned {
        let action = |step: Step, service: Option<i64>| PreviewAction {
            step: step.key(),
            invoice_id: d.invoice_id,
            invoice_number: d.number.clone(),
            client_id: d.client_id,
            service_id: service,
            due_date: d.due,
            amount: None,
        };
        let invoice_done: Vec<Step> = d
            .done
            .iter()
            .filter(|(s, _)| s.is_none())
            .map(|(_, s)| *s)
            .collect();
        for (on, step) in steps_between(d.policy, d.due, d.first_day, to, &invoice_done) {
            if step.per_service() {
                continue;
            }
            let mut a = action(step, None);
            match step {
                Step::Reminder(_) => totals.reminders += 1,
                Step::Overdue(_) => totals.overdue_notices += 1,
                Step::LateFee => {
                    let Some(fee) = app
                        .billing
                        .late_fee
                        .as_ref()
                        .and_then(|f| d.total.and_then(|t| f.fee(t)))
                    else {
                        continue;
                    };
                    a.amount = Some(fee.format_amount());
                    let t = totals
                        .late_fees
                        .entry(fee.currency().code().to_string())
                        .or_default();
                    t.count += 1;
                    t.total_minor += fee.minor();
                }
                Step::CancelInvoice if !d.cancellable => continue,
                Step::CancelInvoice => totals.invoice_cancellations += 1,
                Step::Suspend | Step::Terminate => {}
            }
            entry(&mut out, on).actions.push(a);
        }
        for (service, policy) in &d.services {
            let done: Vec<Step> = d
                .done
                .iter()
                .filter(|(s, _)| *s == Some(*service))
                .map(|(_, s)| *s)
                .collect();
            for (on, step) in steps_between(policy, d.due, d.first_day, to, &done) {
                if step.per_service() {
                    per_service.push((on, *service, step, action(step, Some(*service))));
                }
            }
        }
    }
    per_service.sort_by_key(|a| (a.0, a.1, a.2));
    for (on, service, step, a) in per_service {
        let now = status.get(&service).copied();
        let next = match (step, now) {
            (Step::Suspend, Some(ServiceStatus::Active)) => ServiceStatus::Suspended,
            (Step::Terminate, Some(ServiceStatus::Active | ServiceStatus::Suspended)) => {
                ServiceStatus::Terminated
            }
            _ => continue,
        };
        status.insert(service, next);
        if next == ServiceStatus::Suspended {
            totals.suspensions += 1;
        } else {
            totals.terminations += 1;
        }
        entry(&mut out, on).actions.push(a);
    }
    for t in totals
        .invoices
        .iter_mut()
        .chain(totals.wallet_payments.iter_mut())
        .chain(totals.late_fees.iter_mut())
    {
        if let Ok(c) = Currency::from_code(t.0) {
            t.1.total = Money::new(t.1.total_minor, c).plain_amount();
        }
    }
    Ok(Preview {
        from,
        to,
        days: out.into_values().collect(),
        totals,
    })
}

fn entry(out: &mut BTreeMap<NaiveDate, PreviewDay>, date: NaiveDate) -> &mut PreviewDay {
    out.entry(date).or_insert_with(|| PreviewDay {
        date,
        invoices: Vec::new(),
        actions: Vec::new(),
    })
}

/// The steps of `policy` for an invoice due on `due` taken from `first` to `to` with daily
/// runs, given those already recorded: what is owed on `first` (one reminder of several),
/// then each step on its own day.
fn steps_between(
    policy: &Policy,
    due: NaiveDate,
    first: NaiveDate,
    to: NaiveDate,
    done: &[Step],
) -> Vec<(NaiveDate, Step)> {
    let owed = policy.due(due, first, done);
    let mut out: Vec<(NaiveDate, Step)> = owed.perform.into_iter().map(|s| (first, s)).collect();
    out.extend(
        policy
            .plan(due)
            .into_iter()
            .filter(|(d, s)| *d > first && *d <= to && !done.contains(s)),
    );
    out
}

/// What the wallets of the planned invoices' clients can pay, per (client, currency), for
/// the clients whose terms apply the wallet to new invoices.
async fn wallets(
    app: &App,
    planned: &[billing_run::PlannedInvoice],
) -> Result<HashMap<(i64, String), i64>, AppError> {
    let mut clients: Vec<i64> = planned.iter().map(|p| p.client_id.get()).collect();
    clients.sort_unstable();
    clients.dedup();
    if clients.is_empty() {
        return Ok(HashMap::new());
    }
    // Read in a transaction that is rolled back (the store reads these only in one).
    let mut tx = app.db.begin().await?;
    let auto: Vec<i64> = keel_store::billing_run::billing_clients(&mut tx, &clients)
        .await?
        .iter()
        .filter(|c| crate::billing::ClientTerms::of(c, &app.billing).wallet_auto_apply)
        .map(|c| c.id)
        .collect();
    let wallets = keel_store::billing_run::wallets_of(&mut tx, &auto).await?;
    drop(tx);
    Ok(wallets
        .into_iter()
        .map(|(key, (_, available))| (key, available))
        .collect())
}
