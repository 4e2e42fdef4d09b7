//! Dunning through the application, on both engines: a year of a 1,000-service book
//! fast-forwarded on the test clock against a model of the policy written here; payments in
//! flight holding suspension; a payment lifting only the suspension it caused; policies
//! resolved service, then client, then product, then default; runs and jobs repeated.

use chrono::{Days, NaiveDate, TimeZone, Utc};
use keel_app::billing::{BillingConfig, LateFeeAmount};
use keel_app::billing_run::{self, RunOptions};
use keel_app::dunning::{self, AssignInput, Performed, PolicyInput, TargetKind};
use keel_app::invoices;
use keel_app::payments::{self, ManualMethod, PaymentInput};
use keel_app::{App, Ctx, FixedClock};
use keel_domain::Money;
use keel_domain::dunning::{Policy, Step};
use keel_domain::ids::{InvoiceId, ServiceId};
use keel_domain::lifecycle::{InvoiceStatus, ServiceStatus};
use keel_jobs::{Worker, WorkerConfig};
use keel_store::dunning::{self as store, StepState};
use keel_store::jobs::JobState;
use keel_testkit::scenario::book::{self, BookOptions};
use keel_testkit::store_test;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ten_am(day: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
}

fn policy() -> Policy {
    Policy {
        reminder_days_before: vec![7, 3],
        overdue_days: vec![1, 7],
        late_fee_days: Some(5),
        suspend_days: Some(10),
        terminate_days: Some(30),
        cancel_invoice_days: Some(45),
        payment_hold_hours: 48,
    }
}

fn app_with(db: keel_store::Db, clock: Arc<FixedClock>, policy: Policy) -> App {
    App::with_clock(db, clock).with_billing(BillingConfig {
        late_fee: Some(LateFeeAmount::Fixed(vec![
            Money::parse("5.00", keel_domain::Currency::from_code("USD").unwrap()).unwrap(),
            Money::parse("130.00", keel_domain::Currency::from_code("ZWG").unwrap()).unwrap(),
        ])),
        dunning: policy,
        ..Default::default()
    })
}

fn worker(app: &App) -> Worker {
    let clock = app.clock.clone();
    Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        WorkerConfig::new("default", "dunning-test"),
        Arc::new(move || clock.now()),
    )
}

/// Runs the default queue until it is empty; returns how many jobs ran.
async fn drain(w: &Worker) -> usize {
    let stop = tokio::sync::watch::channel(false).1;
    let mut ran = 0;
    loop {
        let tick = w.tick(&stop).await.unwrap();
        assert_eq!(tick.parked + tick.retried, 0, "{tick:?}");
        if tick.claimed == 0 {
            return ran;
        }
        ran += tick.done;
    }
}

async fn pay_in_full(app: &App, ctx: &Ctx, id: InvoiceId, reference: &str) {
    let inv = invoices::get(app, ctx, id).await.unwrap();
    payments::record_payment(
        app,
        ctx,
        id,
        &PaymentInput {
            amount: inv.balance_due.amount.clone(),
            method: ManualMethod::BankTransfer,
            reference: reference.into(),
            received_on: None,
            note: None,
        },
    )
    .await
    .unwrap();
}

/// How a client of the book pays, by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Habit {
    /// The day the invoice is issued.
    OnIssue,
    /// Three days after the due date (after an overdue notice).
    Late3,
    /// Twelve days after it (after the late fee and the suspension).
    Late12,
    Never,
}

fn habit(client: i64) -> Habit {
    match client % 4 {
        0 => Habit::OnIssue,
        1 => Habit::Late3,
        2 => Habit::Late12,
        _ => Habit::Never,
    }
}

fn pay_day(habit: Habit, issued: NaiveDate, due: NaiveDate) -> Option<NaiveDate> {
    match habit {
        Habit::OnIssue => Some(issued),
        Habit::Late3 => Some(due + Days::new(3)),
        Habit::Late12 => Some(due + Days::new(12)),
        Habit::Never => None,
    }
}

struct Issued {
    client: i64,
    issued: NaiveDate,
    due: NaiveDate,
}

store_test!(
    async fn a_year_of_a_book_is_dunned_exactly_as_the_policy_says(t) {
        let (start, due, end) = (d("2027-01-01"), d("2027-01-15"), d("2027-12-31"));
        let clock = Arc::new(FixedClock::new(ten_am(start)));
        let app = app_with(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("year");
        book::seed_book(
            &app,
            &BookOptions { services: 1000, seed: 11, due_on: due, services_per_client: (1, 5), wallet_percent: 0 },
        )
        .await
        .unwrap();
        let w = worker(&app);

        // Every day at ten: the billing run, the clients who pay that day, the dunning run,
        // and the workers until the queue is empty.
        let mut issued: BTreeMap<i64, Issued> = BTreeMap::new();
        let mut seen = 0;
        let mut day = start;
        while day <= end {
            clock.set(ten_am(day));
            billing_run::run(&app, &ctx, &RunOptions { as_of: day, dry_run: false }, &|_| {}).await.unwrap();
            loop {
                let new = store::open_invoices(&app.db, d("2099-01-01"), seen, 1000).await.unwrap();
                let Some(last) = new.last() else { break };
                seen = last.id;
                for inv in new {
                    issued.insert(inv.id, Issued { client: inv.client_id, issued: day, due: inv.due_date });
                }
            }
            for (id, inv) in &issued {
                if pay_day(habit(inv.client), inv.issued, inv.due) == Some(day) {
                    pay_in_full(&app, &ctx, InvoiceId(*id), &format!("BT-{id}")).await;
                }
            }
            dunning::run(&app, &ctx, day).await.unwrap();
            drain(&w).await;
            day = day + Days::new(1);
        }
        assert!(issued.len() > 3000, "a year of monthly renewals: {}", issued.len());

        // The model: a step dated d of an invoice is taken iff d ≤ end and the invoice was not
        // paid by then (a payment on day p comes before that day's run).
        let taken = |inv: &Issued, on: NaiveDate| {
            on <= end && pay_day(habit(inv.client), inv.issued, inv.due).is_none_or(|p| on < p)
        };
        let mut services_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for s in store::billed_services(&app.db, 0, i64::MAX).await.unwrap() {
            services_of.entry(s.invoice_id).or_default().push(s.service_id);
        }
        let mut expected: BTreeSet<(i64, Option<i64>, String)> = BTreeSet::new();
        // Per service: the invoices whose suspension and termination came due, in order.
        let mut service_steps: BTreeMap<i64, Vec<(NaiveDate, Step)>> = BTreeMap::new();
        for (id, inv) in &issued {
            for (on, step) in policy().plan(inv.due) {
                if !taken(inv, on) {
                    continue;
                }
                if step.per_service() {
                    for s in &services_of[id] {
                        expected.insert((*id, Some(*s), step.key()));
                        service_steps.entry(*s).or_default().push((on, step));
                    }
                } else {
                    expected.insert((*id, None, step.key()));
                }
            }
        }
        let rows = store::steps_between(&app.db, 0, i64::MAX).await.unwrap();
        let recorded: BTreeSet<(i64, Option<i64>, String)> =
            rows.iter().map(|r| (r.invoice_id, r.service_id, r.step.clone())).collect();
        assert_eq!(recorded.len(), rows.len(), "a step is recorded once");
        let missing: Vec<_> = expected.difference(&recorded).take(5).collect();
        let extra: Vec<_> = recorded.difference(&expected).take(5).collect();
        assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");

        // Every step acted on the day it was owed: invoice steps all done; a service is
        // suspended and terminated while it can be, the later invoices of a terminated
        // service skip it.
        let mut done: HashMap<String, usize> = HashMap::new();
        for r in &rows {
            assert_eq!(r.updated_at.date_naive(), r.due_on, "{r:?}");
            if r.service_id.is_none() {
                assert_eq!(r.state, StepState::Done, "{r:?}");
            }
            if r.state == StepState::Done {
                *done.entry(r.step.clone()).or_default() += 1;
            }
        }
        let mut expect_suspended = 0;
        let mut expect_terminated = 0;
        for (service, steps) in &service_steps {
            let mut sorted = steps.clone();
            sorted.sort();
            let mut status = ServiceStatus::Active;
            for (_, step) in sorted {
                match (step, status) {
                    (Step::Suspend, ServiceStatus::Active) => {
                        expect_suspended += 1;
                        status = ServiceStatus::Suspended;
                    }
                    (Step::Terminate, ServiceStatus::Active | ServiceStatus::Suspended) => {
                        expect_terminated += 1;
                        status = ServiceStatus::Terminated;
                    }
                    _ => {}
                }
                // A paying client's payment lifts the suspension before the next invoice.
                if status == ServiceStatus::Suspended && habit_of_service(&issued, &services_of, *service) != Habit::Never {
                    status = ServiceStatus::Active;
                }
            }
            let view = keel_app::services::get(&app, &ctx, ServiceId(*service)).await.unwrap();
            let events = keel_store::services::service_events(&app.db, ServiceId(*service)).await.unwrap();
            let to = |s: &str| events.iter().filter(|e| e.to_status == s).count();
            match habit_of_service(&issued, &services_of, *service) {
                Habit::Never => {
                    assert_eq!(view.status, ServiceStatus::Terminated, "service {service}");
                    assert_eq!((to("suspended"), to("terminated")), (1, 1), "service {service}: {events:?}");
                }
                Habit::Late12 => {
                    assert_eq!(view.status, ServiceStatus::Active, "service {service}");
                    let lifted = events.iter().filter(|e| e.from_status.as_deref() == Some("suspended") && e.to_status == "active").count();
                    assert_eq!(to("suspended"), lifted, "every suspension lifted once: {events:?}");
                    let owed = steps.iter().filter(|(_, s)| *s == Step::Suspend).count();
                    assert_eq!(lifted, owed, "one suspension per invoice paid late (monthly: 12): {events:?}");
                }
                _ => unreachable!("only late payers reach suspension"),
            }
        }
        assert_eq!(done.get("suspend").copied().unwrap_or(0), expect_suspended);
        assert_eq!(done.get("terminate").copied().unwrap_or(0), expect_terminated);

        // The effects: one late-fee line per late fee step, one cancellation per cancel step.
        let invoices_now: Vec<_> = {
            let mut all = Vec::new();
            for id in issued.keys() {
                all.push(invoices::get(&app, &ctx, InvoiceId(*id)).await.unwrap());
            }
            all
        };
        let fees = invoices_now
            .iter()
            .filter(|i| i.lines.iter().any(|l| l.kind == keel_domain::lifecycle::LineKind::LateFee))
            .count();
        assert_eq!(fees, done["late_fee"]);
        let cancelled = invoices_now.iter().filter(|i| i.status == InvoiceStatus::Cancelled).count();
        assert_eq!(cancelled, done["cancel_invoice"]);
        assert!(done["cancel_invoice"] > 0 && expect_terminated > 0 && expect_suspended > 0);

        // Each step job ran once; the provisioning intents wait in their queue.
        let stats = keel_store::jobs::stats(&app.db).await.unwrap();
        let count = |queue: &str, state: JobState| {
            stats.iter().filter(|s| s.0 == queue && s.1 == state).map(|s| s.2).sum::<u64>()
        };
        assert_eq!(count("default", JobState::Parked) + count("default", JobState::Ready), 0, "{stats:?}");
        let queued_rows = rows.iter().filter(|r| r.outcome.as_deref() != Some("superseded by a later reminder owed at the same time")).count();
        let mut step_jobs = 0;
        let mut before = None;
        loop {
            let page = keel_store::jobs::list(&app.db, Some(JobState::Done), before, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            step_jobs += page.iter().filter(|j| j.kind == "dunning.step").count();
        }
        assert_eq!(step_jobs, queued_rows, "one job per step");
        let unsuspended = rows.iter().filter(|r| r.step == "suspend" && r.state == StepState::Done).count() - expect_terminated_suspended(&service_steps, &issued, &services_of);
        assert_eq!(
            count("provision", JobState::Ready) as usize,
            done["suspend"] + done["terminate"] + unsuspended,
            "a provisioning intent per suspension, termination and unsuspension"
        );
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

fn habit_of_service(
    issued: &BTreeMap<i64, Issued>,
    services_of: &HashMap<i64, Vec<i64>>,
    service: i64,
) -> Habit {
    let invoice = services_of
        .iter()
        .find(|(_, s)| s.contains(&service))
        .map(|(i, _)| *i)
        .unwrap();
    habit(issued[&invoice].client)
}

/// Suspensions never lifted: those of services whose client never pays.
fn expect_terminated_suspended(
    service_steps: &BTreeMap<i64, Vec<(NaiveDate, Step)>>,
    issued: &BTreeMap<i64, Issued>,
    services_of: &HashMap<i64, Vec<i64>>,
) -> usize {
    service_steps
        .keys()
        .filter(|s| habit_of_service(issued, services_of, **s) == Habit::Never)
        .count()
}

/// A client with two services on two invoices, one paid ahead: the unpaid one is dunned and
/// its service suspended; the other is untouched. Paying lifts the suspension.
async fn two_services(app: &App) -> (InvoiceId, InvoiceId, ServiceId, ServiceId) {
    let ctx = Ctx::system("setup");
    book::seed_book(
        app,
        &BookOptions {
            services: 2,
            seed: 3,
            due_on: d("2027-03-01"),
            services_per_client: (2, 2),
            wallet_percent: 0,
        },
    )
    .await
    .unwrap();
    let report = billing_run::run(
        app,
        &ctx,
        &RunOptions {
            as_of: d("2027-02-20"),
            dry_run: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.invoices, 2, "{report:?}");
    let open = store::open_invoices(&app.db, d("2099-01-01"), 0, 10)
        .await
        .unwrap();
    let billed = store::billed_services(&app.db, 0, i64::MAX).await.unwrap();
    (
        InvoiceId(open[0].id),
        InvoiceId(open[1].id),
        ServiceId(billed[0].service_id),
        ServiceId(billed[1].service_id),
    )
}

fn separate_invoices(db: keel_store::Db, clock: Arc<FixedClock>, policy: Policy) -> App {
    let app = app_with(db, clock, policy);
    let mut billing = (*app.billing).clone();
    billing.group_renewals = false;
    app.with_billing(billing)
}

store_test!(
    async fn dunning_acts_per_service_and_payment_lifts_only_its_own_suspension(t) {
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
        let app = separate_invoices(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("test");
        let (unpaid, prepaid, s_unpaid, s_prepaid) = two_services(&app).await;
        assert_eq!(services_on(&app, unpaid).await, vec![s_unpaid]);
        pay_in_full(&app, &ctx, prepaid, "AHEAD").await;
        let w = worker(&app);
        for day in ["2027-03-02", "2027-03-11"] {
            clock.set(ten_am(d(day)));
            dunning::run(&app, &ctx, d(day)).await.unwrap();
            drain(&w).await;
        }
        let status = |s| { let app = app.clone(); async move { keel_app::services::get(&app, &Ctx::system("r"), s).await.unwrap().status } };
        assert_eq!(status(s_unpaid).await, ServiceStatus::Suspended);
        assert_eq!(status(s_prepaid).await, ServiceStatus::Active, "paid ahead: untouched");
        let steps: Vec<(String, String)> = dunning::steps(&app, &ctx, unpaid).await.unwrap().into_iter().map(|s| (s.step, s.state.to_string())).collect();
        assert_eq!(
            steps,
            [("reminder-7", "skipped"), ("reminder-3", "skipped"), ("overdue-1", "done"), ("late_fee", "done"), ("overdue-7", "done"), ("suspend", "done")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .to_vec(),
            "the reminders owed before the first run were superseded by the overdue notice"
        );
        assert!(dunning::steps(&app, &ctx, prepaid).await.unwrap().is_empty());

        // Paid: the suspension it caused is lifted, and the unsuspension waits as a job.
        clock.set(ten_am(d("2027-03-12")));
        pay_in_full(&app, &ctx, unpaid, "LATE").await;
        assert_eq!(status(s_unpaid).await, ServiceStatus::Active);
        let provision = keel_store::jobs::list(&app.db, Some(JobState::Ready), None, 50).await.unwrap();
        let actions: Vec<String> = provision.iter().filter(|j| j.queue == "provision").map(|j| j.payload["action"].as_str().unwrap().to_string()).collect();
        assert_eq!(actions, ["unsuspend", "suspend"], "newest first");
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

async fn services_on(app: &App, invoice: InvoiceId) -> Vec<ServiceId> {
    store::billed_services(&app.db, invoice.get(), invoice.get())
        .await
        .unwrap()
        .into_iter()
        .map(|s| ServiceId(s.service_id))
        .collect()
}

store_test!(
    async fn a_payment_in_flight_holds_suspension_until_it_resolves(t) {
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
        let app = separate_invoices(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("test");
        let (unpaid, _, s_unpaid, s_other) = two_services(&app).await;
        let w = worker(&app);
        // The client starts a gateway payment the evening before suspension day (hold 48 h).
        clock.set(Utc.with_ymd_and_hms(2027, 3, 10, 20, 0, 0).unwrap());
        let until = payments::payment_started(&app, &ctx, unpaid, "paynow", "PN-1").await.unwrap();
        assert_eq!(until, Utc.with_ymd_and_hms(2027, 3, 12, 20, 0, 0).unwrap());
        // Recording the same attempt again changes nothing.
        payments::payment_started(&app, &ctx, unpaid, "paynow", "PN-1").await.unwrap();

        clock.set(ten_am(d("2027-03-11")));
        dunning::run(&app, &ctx, d("2027-03-11")).await.unwrap();
        drain(&w).await;
        let status = |s| { let app = app.clone(); async move { keel_app::services::get(&app, &Ctx::system("r"), s).await.unwrap().status } };
        assert_eq!(status(s_unpaid).await, ServiceStatus::Active, "held by the payment in flight");
        assert_eq!(status(s_other).await, ServiceStatus::Suspended, "its own invoice has no payment pending");
        let held = dunning::steps(&app, &ctx, unpaid).await.unwrap().into_iter().find(|s| s.step == "suspend").unwrap();
        assert_eq!((held.state.as_str(), held.held_until), ("held", Some(until)));

        // The next day the payment still pends: still held. Then the gateway says it failed:
        // the next run suspends.
        clock.set(ten_am(d("2027-03-12")));
        let report = dunning::run(&app, &ctx, d("2027-03-12")).await.unwrap();
        assert_eq!(report.released, 0);
        assert!(payments::payment_resolved(&app, &ctx, "paynow", "PN-1", false).await.unwrap());
        assert!(!payments::payment_resolved(&app, &ctx, "paynow", "PN-1", false).await.unwrap(), "resolved once");
        clock.set(ten_am(d("2027-03-13")));
        let report = dunning::run(&app, &ctx, d("2027-03-13")).await.unwrap();
        assert_eq!(report.released, 1);
        drain(&w).await;
        assert_eq!(status(s_unpaid).await, ServiceStatus::Suspended);

        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

store_test!(
    async fn a_hold_that_runs_out_lets_suspension_happen(t) {
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
        let app = separate_invoices(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("test");
        let (unpaid, _, s_unpaid, _) = two_services(&app).await;
        let w = worker(&app);
        clock.set(ten_am(d("2027-03-10")));
        payments::payment_started(&app, &ctx, unpaid, "paynow", "PN-9").await.unwrap();
        for (day, expected) in [("2027-03-11", ServiceStatus::Active), ("2027-03-12", ServiceStatus::Suspended)] {
            clock.set(ten_am(d(day)));
            dunning::run(&app, &ctx, d(day)).await.unwrap();
            drain(&w).await;
            let now = keel_app::services::get(&app, &ctx, s_unpaid).await.unwrap().status;
            assert_eq!(now, expected, "on {day}: the 48 h hold ends 2027-03-12 10:00");
        }
    }
);

store_test!(
    async fn runs_and_step_jobs_repeated_act_once(t) {
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
        let app = separate_invoices(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("test");
        let (unpaid, _, _, _) = two_services(&app).await;
        // The renewal invoices' messages, queued by the billing run's job, out of the way.
        drain(&worker(&app)).await;
        clock.set(ten_am(d("2027-03-06")));
        let first = dunning::run(&app, &ctx, d("2027-03-06")).await.unwrap();
        let again = dunning::run(&app, &ctx, d("2027-03-06")).await.unwrap();
        assert_eq!((first.queued, again.queued, again.superseded), (2 * 2, 0, 0), "overdue-1 and the late fee, per invoice");
        let steps = dunning::steps(&app, &ctx, unpaid).await.unwrap();
        let fee = steps.iter().find(|s| s.step == "late_fee").unwrap();
        assert!(matches!(dunning::perform(&app, &ctx, fee.id).await.unwrap(), Performed::Done(_)));
        assert_eq!(dunning::perform(&app, &ctx, fee.id).await.unwrap(), Performed::Already);
        let inv = invoices::get(&app, &ctx, unpaid).await.unwrap();
        assert_eq!(inv.lines.iter().filter(|l| l.kind == keel_domain::lifecycle::LineKind::LateFee).count(), 1);
        // Two workers draining the same queue: every step still once.
        let (a, b) = (worker(&app), worker(&app));
        let (ra, rb) = tokio::join!(drain(&a), drain(&b));
        assert_eq!(ra + rb, 4, "four step jobs (the fee's job finds it done)");
        let inv = invoices::get(&app, &ctx, unpaid).await.unwrap();
        assert_eq!(inv.lines.iter().filter(|l| l.kind == keel_domain::lifecycle::LineKind::LateFee).count(), 1);
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

store_test!(
    async fn the_service_policy_wins_over_the_client_over_the_product(t) {
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
        let app = separate_invoices(t.db.clone(), clock.clone(), policy());
        let staff = Ctx::system("test");
        let (a, b, s_a, s_b) = two_services(&app).await;
        let named = |name: &str, suspend: u32| PolicyInput {
            name: name.into(),
            policy: Policy { reminder_days_before: vec![], overdue_days: vec![], late_fee_days: None, suspend_days: Some(suspend), terminate_days: None, cancel_invoice_days: None, payment_hold_hours: 24 },
        };
        let lenient = dunning::create_policy(&app, &staff, &named("Lenient", 20)).await.unwrap();
        let strict = dunning::create_policy(&app, &staff, &named("Strict", 2)).await.unwrap();
        let client = keel_app::services::get(&app, &staff, s_a).await.unwrap().client_id;
        let product = keel_app::services::get(&app, &staff, s_a).await.unwrap().product_id;
        let assign = |target, id, policy_id| AssignInput { target, id, policy_id };
        dunning::assign(&app, &staff, &assign(TargetKind::Product, product.get(), Some(strict.id))).await.unwrap();
        dunning::assign(&app, &staff, &assign(TargetKind::Client, client.get(), Some(lenient.id))).await.unwrap();
        dunning::assign(&app, &staff, &assign(TargetKind::Service, s_b.get(), Some(strict.id))).await.unwrap();
        // Due 2027-03-01. On the 3rd: service b (its own policy: 2 days) is due for
        // suspension; service a follows its client (20 days), whatever its product says.
        clock.set(ten_am(d("2027-03-03")));
        dunning::run(&app, &staff, d("2027-03-03")).await.unwrap();
        let keys = |steps: Vec<dunning::StepView>| steps.into_iter().map(|s| s.step).collect::<Vec<_>>();
        assert_eq!(keys(dunning::steps(&app, &staff, b).await.unwrap()), ["suspend"]);
        assert!(keys(dunning::steps(&app, &staff, a).await.unwrap()).is_empty());

        // Bad input changes nothing.
        let err = dunning::create_policy(&app, &staff, &named("Lenient", 5)).await.unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
        let mut bad = named("Odd", 10);
        bad.policy.terminate_days = Some(5);
        let err = dunning::create_policy(&app, &staff, &bad).await.unwrap_err();
        assert!(matches!(err, keel_app::AppError::Invalid { code: "invalid_dunning_policy", .. }), "{err:?}");
        let err = dunning::assign(&app, &staff, &assign(TargetKind::Client, client.get(), Some(9999))).await.unwrap_err();
        assert!(matches!(err, keel_app::AppError::Invalid { code: "unknown_policy", .. }), "{err:?}");
        assert_eq!(dunning::policies(&app, &staff).await.unwrap().items.len(), 2);
        // A client's key may not manage policies.
        let client_ctx = Ctx::new(keel_domain::access::Actor::Key {
            key: keel_domain::ids::ApiKeyId(1),
            label: "client key".into(),
            scope: keel_domain::tenancy::Scope::Client(client),
            role: None,
            staff: None,
        });
        assert!(matches!(dunning::policies(&app, &client_ctx).await.unwrap_err(), keel_app::AppError::Forbidden { .. }));
    }
);

store_test!(
    async fn the_preview_says_what_the_next_weeks_then_do(t) {
        let (start, due) = (d("2027-01-01"), d("2027-01-10"));
        let clock = Arc::new(FixedClock::new(ten_am(start)));
        let app = app_with(t.db.clone(), clock.clone(), policy());
        let ctx = Ctx::system("preview");
        book::seed_book(&app, &BookOptions { services: 60, seed: 5, due_on: due, services_per_client: (1, 4), wallet_percent: 0 })
            .await
            .unwrap();
        let census = || async {
            let jobs = keel_store::jobs::stats(&app.db).await.unwrap();
            let steps = store::steps_between(&app.db, 0, i64::MAX).await.unwrap().len();
            let open = store::open_invoices(&app.db, d("2099-01-01"), 0, 10_000).await.unwrap().len();
            (jobs, steps, open)
        };
        let before = census().await;
        let preview = keel_app::preview::preview(&app, &ctx, 45).await.unwrap();
        assert_eq!(census().await, before, "the preview changes nothing");
        assert_eq!((preview.from, preview.to), (start, d("2027-02-14")));
        assert!(preview.totals.suspensions > 0 && preview.totals.terminations > 0, "{:?}", preview.totals);
        assert!(keel_app::preview::preview(&app, &ctx, 0).await.is_err());

        // Then the 45 days happen, nobody paying.
        type Key = (NaiveDate, String, i64, Option<i64>, NaiveDate);
        let mut happened_invoices: Vec<(NaiveDate, i64, NaiveDate, i64)> = Vec::new();
        let w = worker(&app);
        let mut seen = 0;
        let mut day = start;
        while day <= preview.to {
            clock.set(ten_am(day));
            billing_run::run(&app, &ctx, &RunOptions { as_of: day, dry_run: false }, &|_| {}).await.unwrap();
            for inv in store::open_invoices(&app.db, d("2099-01-01"), seen, 10_000).await.unwrap() {
                seen = inv.id;
                happened_invoices.push((day, inv.client_id, inv.due_date, inv.total_minor));
            }
            dunning::run(&app, &ctx, day).await.unwrap();
            drain(&w).await;
            day = day + Days::new(1);
        }
        let client_of: HashMap<i64, (i64, NaiveDate)> = store::open_invoices(&app.db, d("2099-01-01"), 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.id, (i.client_id, i.due_date)))
            .collect();
        let mut happened: Vec<Key> = store::steps_between(&app.db, 0, i64::MAX)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.state == StepState::Done)
            .map(|r| {
                let (client, due) = client_of[&r.invoice_id];
                (r.updated_at.date_naive(), r.step, client, r.service_id, due)
            })
            .collect();
        let mut forecast: Vec<Key> = preview
            .days
            .iter()
            .flat_map(|day| day.actions.iter().map(|a| (day.date, a.step.clone(), a.client_id, a.service_id, a.due_date)))
            .collect();
        happened.sort();
        forecast.sort();
        assert_eq!(forecast, happened);
        let mut forecast_invoices: Vec<(NaiveDate, i64, NaiveDate, i64)> = preview
            .days
            .iter()
            .flat_map(|day| day.invoices.iter().map(|i| (day.date, i.client_id, i.due_date, i.total_minor)))
            .collect();
        happened_invoices.sort();
        forecast_invoices.sort();
        assert_eq!(forecast_invoices, happened_invoices);
        let total: u64 = preview.totals.invoices.values().map(|t| t.count).sum();
        assert_eq!(total as usize, happened_invoices.len());
    }
);
