//! Billing scenarios through the use cases, on both engines: orders and their first invoice,
//! tax, manual and wallet payments, top-ups, cancellation, the billing run (once per period,
//! reruns, dry runs, grouping, wallet auto-apply) and concurrent numbering. Every test ends
//! with the trial-balance check (`store_test!`).

use chrono::{NaiveDate, TimeZone, Utc};
use keel_app::billing_run::{self, RunOptions};
use keel_app::invoices;
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::payments::{self, ManualMethod, PaymentInput, TopUpInput, WalletPayInput};
use keel_app::{App, AppError, Ctx, FixedClock};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::ids::{ClientId, ProductId};
use keel_domain::lifecycle::{InvoiceStatus, ServiceStatus};
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::store_test;
use rust_decimal::Decimal;
use std::sync::Arc;

fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

struct World {
    app: App,
    clock: Arc<FixedClock>,
    ctx: Ctx,
    product: ProductId,
    /// 30.00 a month.
    business: ProductId,
    /// 4.00 a month.
    mini: ProductId,
}

fn at(s: &str) -> chrono::DateTime<Utc> {
    let d = day(s);
    Utc.from_utc_datetime(&d.and_hms_opt(9, 0, 0).unwrap())
}

/// A host selling "Starter" at 10.00 USD a month with a 5.00 setup fee (100.00 a year),
/// "Business" at 30.00 and "Mini" at 4.00 a month, all taxed 15 % in ZW.
async fn world(t: &keel_testkit::TestDb, today: &str) -> World {
    let clock = Arc::new(FixedClock::new(at(today)));
    let app = App::with_clock(t.db.clone(), clock.clone());
    let built = Scenario::new(&app)
        .tax("VAT", "ZW", "15")
        .product(
            Product::new("Starter")
                .monthly(1000)
                .setup(500)
                .annually(10000)
                .taxed(),
        )
        .product(Product::new("Business").monthly(3000).taxed())
        .product(Product::new("Mini").monthly(400).taxed())
        .build()
        .await;
    World {
        app,
        clock,
        ctx: Ctx::system("test"),
        product: built.product("Starter"),
        business: built.product("Business"),
        mini: built.product("Mini"),
    }
}

async fn client(w: &World, email: &str) -> ClientId {
    Scenario::new(&w.app)
        .client(Client::new(email))
        .build()
        .await
        .client(email)
}

fn order_of(client: ClientId, product: ProductId, cycle: &str) -> OrderInput {
    OrderInput {
        client_id: Some(client.get()),
        currency: None,
        promo_code: None,
        items: vec![OrderItem {
            product_id: product.get(),
            cycle: cycle.into(),
            options: vec![],
            label: Some("tariro.example".into()),
            addons: vec![],
        }],
    }
}

fn payment(amount: &str, reference: &str) -> PaymentInput {
    PaymentInput {
        amount: amount.into(),
        method: ManualMethod::BankTransfer,
        reference: reference.into(),
        received_on: None,
        note: None,
    }
}

async fn invoice_count(app: &App) -> usize {
    invoices::list(
        app,
        &Ctx::system("test"),
        &invoices::InvoiceQuery {
            limit: Some(200),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .items
    .len()
}

store_test!(
    async fn an_order_issues_a_taxed_invoice_and_payment_starts_the_service(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let order = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), Some("k1"))
            .await
            .unwrap();
        let inv = &order.invoice;
        assert_eq!(inv.number.as_deref(), Some("INV-2027-00001"));
        assert_eq!(inv.status, InvoiceStatus::Unpaid);
        // 10.00 + 5.00 setup, 15 % VAT per line.
        assert_eq!(inv.subtotal.amount_minor, 1500);
        assert_eq!(inv.tax.amount_minor, 225);
        assert_eq!(inv.total.amount_minor, 1725);
        assert_eq!(inv.lines.len(), 2);
        assert_eq!(inv.lines[0].description, "tariro.example (2027-01-15 to 2027-02-14)");
        assert_eq!(inv.buyer.as_ref().unwrap().name, "Tariro Moyo");
        let service = keel_app::services::get(&w.app, &w.ctx, order.service_ids[0]).await.unwrap();
        assert_eq!(service.status, ServiceStatus::Pending);
        assert_eq!(service.next_due_date, Some(day("2027-02-15")));

        // The same key returns the same order.
        let again = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), Some("k1"))
            .await
            .unwrap();
        assert_eq!(again.id, order.id);
        assert_eq!(invoice_count(&w.app).await, 1);

        // Part, then the rest.
        let part = payments::record_payment(&w.app, &w.ctx, inv.id, &payment("10.00", "BT-1")).await.unwrap();
        assert_eq!(part.status, InvoiceStatus::Unpaid);
        assert_eq!(part.balance_due.amount_minor, 725);
        let paid = payments::record_payment(&w.app, &w.ctx, inv.id, &payment("7.25", "BT-2")).await.unwrap();
        assert_eq!(paid.status, InvoiceStatus::Paid);
        let service = keel_app::services::get(&w.app, &w.ctx, order.service_ids[0]).await.unwrap();
        assert_eq!(service.status, ServiceStatus::Active);
        assert_eq!(service.provision_intent.as_deref(), Some("create"));
        assert_eq!(service.history.unwrap().len(), 2);
        let o = orders::get(&w.app, &w.ctx, order.id).await.unwrap();
        assert_eq!(o.status, keel_domain::lifecycle::OrderStatus::Active);
    }
);

store_test!(
    async fn bad_payments_are_refused_and_change_nothing(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let order = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let id = order.invoice.id;
        payments::record_payment(&w.app, &w.ctx, id, &payment("1.00", "BT-1")).await.unwrap();
        let cases: Vec<(PaymentInput, &str)> = vec![
            (payment("17.00", "BT-2"), "overpayment"),
            (payment("1.00", "BT-1"), "payment_reference_used"),
            (payment("0.00", "BT-3"), "invalid_amount"),
            (payment("1.001", "BT-4"), "too_many_decimals"),
            (payment("1,00", "BT-5"), "invalid_amount"),
            (PaymentInput { received_on: Some("15/01/2027".into()), ..payment("1.00", "BT-6") }, "invalid_date"),
            (payment("1.00", "  "), "invalid_text"),
        ];
        for (input, code) in cases {
            let err = payments::record_payment(&w.app, &w.ctx, id, &input).await.unwrap_err();
            let got = match &err {
                AppError::Invalid { code, .. } | AppError::Conflict { code, .. } => *code,
                AppError::InvalidText { .. } => "invalid_text",
                other => panic!("{code}: unexpected {other:?}"),
            };
            // One code per kind of bad input: a malformed amount is `invalid_amount` however
            // it is malformed.
            assert_eq!(got, code, "{err}");
        }
        let inv = invoices::get(&w.app, &w.ctx, id).await.unwrap();
        assert_eq!(inv.paid.amount_minor, 100, "nothing changed");
        assert_eq!(inv.payments.len(), 1);

        // A cancelled invoice takes no payment; one with payments cannot be cancelled.
        let err = invoices::cancel(&w.app, &w.ctx, id, &invoices::CancelInput { reason: "x".into() }).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_has_payments", .. }), "{err:?}");
        let o2 = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let cancelled = invoices::cancel(&w.app, &w.ctx, o2.invoice.id, &invoices::CancelInput { reason: "duplicate order".into() }).await.unwrap();
        assert_eq!(cancelled.status, InvoiceStatus::Cancelled);
        let err = payments::record_payment(&w.app, &w.ctx, o2.invoice.id, &payment("1.00", "BT-9")).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_not_payable", .. }), "{err:?}");
    }
);

store_test!(
    async fn bad_orders_are_refused_and_change_nothing(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let mut zwg = order_of(c, w.product, "monthly");
        zwg.currency = Some("ZWG".into());
        let mut unknown = order_of(c, w.product, "monthly");
        unknown.items[0].product_id = 999;
        let mut empty = order_of(c, w.product, "monthly");
        empty.items.clear();
        let cases: Vec<(OrderInput, &str)> = vec![
            (order_of(c, w.product, "weekly"), "unknown_billing_cycle"),
            (order_of(c, w.product, "quarterly"), "no_price"),
            (order_of(c, w.product, "one_time"), "cycle_not_allowed"),
            (zwg, "no_price"),
            (unknown, "unknown_product"),
            (empty, "empty_order"),
        ];
        for (input, code) in cases {
            let err = orders::place(&w.app, &w.ctx, &input, None).await.unwrap_err();
            let got = match &err {
                AppError::Invalid { code, .. } => *code,
                AppError::InvalidText { .. } => "invalid_text",
                other => panic!("{code}: unexpected {other:?}"),
            };
            assert_eq!(got, code, "{err:?}");
        }
        // Retired: refused.
        let mut tx = w.app.db.begin().await.unwrap();
        keel_store::catalog::retire_product(&mut tx, w.product, w.app.now()).await.unwrap();
        tx.commit().await.unwrap();
        let err = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid { code: "product_retired", .. }), "{err:?}");
        assert_eq!(invoice_count(&w.app).await, 0);
    }
);

store_test!(
    async fn the_billing_run_issues_one_renewal_per_period_however_often_it_runs(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let order = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, order.invoice.id, &payment("17.25", "BT-1")).await.unwrap();

        // Not due yet (lead 14 days): nothing.
        let r = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-01-20"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(r.invoices, 0);

        // A dry run a month later shows one invoice and changes nothing.
        w.clock.set(at("2027-02-10"));
        let dry = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: true }, &|_| {}).await.unwrap();
        assert_eq!(dry.invoices, 1);
        assert_eq!(dry.by_currency["USD"].total_minor, 1150);
        assert_eq!(dry.planned.len(), 1);
        assert_eq!(invoice_count(&w.app).await, 1);

        let r = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!((r.invoices, r.periods), (1, 1));
        for _ in 0..3 {
            let again = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
            assert_eq!(again.invoices, 0, "a rerun bills nothing");
        }
        assert_eq!(invoice_count(&w.app).await, 2);
        let list = invoices::list(&w.app, &w.ctx, &invoices::InvoiceQuery::default()).await.unwrap();
        let renewal = invoices::get(&w.app, &w.ctx, list.items[1].id).await.unwrap();
        assert_eq!(renewal.number.as_deref(), Some("INV-2027-00002"));
        assert_eq!(renewal.due_date, Some(day("2027-02-15")));
        assert_eq!(renewal.total.amount_minor, 1150);
        assert_eq!(renewal.lines[0].description, "tariro.example (2027-02-15 to 2027-03-14)");
        let service = keel_app::services::get(&w.app, &w.ctx, order.service_ids[0]).await.unwrap();
        assert_eq!(service.next_due_date, Some(day("2027-03-15")));

        // Months later, a run catches up every missed period, once each.
        let r = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-05-20"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(r.periods, 3, "March, April, May: {r:?}");
        assert_eq!(r.invoices, 3, "different due dates do not share an invoice");
    }
);

store_test!(
    async fn a_service_aligned_to_billing_day_31_in_february_renews_on_the_last_day_of_each_month(t) {
        let w = world(t, "2027-02-10").await;
        let c = client(&w, "tariro@example.com").await;
        let settings = keel_app::catalog::BillingSettingsInput { billing_day: Some(31), ..Default::default() };
        keel_app::catalog::set_billing_settings(&w.app, &w.ctx, c, settings).await.unwrap();
        let order = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        // Prorated to February's last day: 18 of the 28 days from 01-31, then the setup fee.
        let inv = &order.invoice;
        assert_eq!(inv.lines[0].description, "tariro.example (prorated to 2027-02-28)");
        assert_eq!(inv.subtotal.amount_minor, 643 + 500);
        let owed = inv.balance_due.amount_minor;
        payments::record_payment(&w.app, &w.ctx, inv.id, &payment(&format!("{}.{:02}", owed / 100, owed % 100), "BT-1"))
            .await
            .unwrap();
        let service = keel_app::services::get(&w.app, &w.ctx, order.service_ids[0]).await.unwrap();
        assert_eq!((service.anniversary, service.billing_day), (day("2027-02-28"), Some(31)));
        assert_eq!(service.status, ServiceStatus::Active);

        // The billing run every day until June: one renewal per period, each due on the 31st
        // or the month's last day, never on the 28th the anniversary was clamped to.
        let mut on = day("2027-02-11");
        while on <= day("2027-06-01") {
            w.clock.set(at(&on.to_string()));
            billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: on, dry_run: false }, &|_| {}).await.unwrap();
            if on == day("2027-03-29") {
                // A plan change on the 29th of March is two days before the period's end.
                let p = keel_app::plan_change::preview(&w.app, &w.ctx, service.id, &change_to(w.business)).await.unwrap();
                assert_eq!((p.period_start, p.period_end), (Some(day("2027-02-28")), Some(day("2027-03-31"))));
                assert_eq!((p.remaining_days, p.period_days), (2, 31));
            }
            on = on.succ_opt().unwrap();
        }
        let list = invoices::list(&w.app, &w.ctx, &invoices::InvoiceQuery { limit: Some(200), ..Default::default() })
            .await
            .unwrap();
        let mut renewals = Vec::new();
        for item in list.items.iter().filter(|i| i.id != inv.id) {
            let renewal = invoices::get(&w.app, &w.ctx, item.id).await.unwrap();
            assert_eq!(renewal.total.amount_minor, 1150, "a whole month at 10.00 + 15 %");
            renewals.push((renewal.due_date.unwrap().to_string(), renewal.lines[0].description.clone()));
        }
        renewals.sort();
        assert_eq!(
            renewals,
            [
                ("2027-02-28", "tariro.example (2027-02-28 to 2027-03-30)"),
                ("2027-03-31", "tariro.example (2027-03-31 to 2027-04-29)"),
                ("2027-04-30", "tariro.example (2027-04-30 to 2027-05-30)"),
                ("2027-05-31", "tariro.example (2027-05-31 to 2027-06-29)"),
            ]
            .map(|(due, line)| (due.to_string(), line.to_string()))
        );
        let service = keel_app::services::get(&w.app, &w.ctx, order.service_ids[0]).await.unwrap();
        assert_eq!(service.next_due_date, Some(day("2027-06-30")));
    }
);

store_test!(
    async fn renewals_due_together_share_an_invoice_and_the_wallet_pays_them(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        for k in ["a", "b"] {
            let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), Some(k)).await.unwrap();
            payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", &format!("BT-{k}"))).await.unwrap();
        }
        // 15.00 in the wallet, through a paid top-up invoice.
        let top = payments::top_up(&w.app, &w.ctx, &TopUpInput { client_id: Some(c.get()), amount: "15.00".into(), currency: None }, None).await.unwrap();
        assert_eq!(top.tax.amount_minor, 0);
        payments::record_payment(&w.app, &w.ctx, top.id, &payment("15.00", "BT-top")).await.unwrap();

        let r = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!((r.invoices, r.periods), (1, 2));
        assert_eq!(r.by_currency["USD"].wallet_applied_minor, 1500);
        let list = invoices::list(&w.app, &w.ctx, &invoices::InvoiceQuery::default()).await.unwrap();
        let renewal = invoices::get(&w.app, &w.ctx, list.items.last().unwrap().id).await.unwrap();
        assert_eq!(renewal.lines.len(), 2);
        assert_eq!(renewal.total.amount_minor, 2300);
        assert_eq!(renewal.paid.amount_minor, 1500);
        assert_eq!(renewal.balance_due.amount_minor, 800);
        assert_eq!(renewal.payments[0].method, "wallet");

        // The wallet is empty: paying from it is refused.
        let err = payments::pay_with_wallet(&w.app, &w.ctx, renewal.id, &WalletPayInput::default(), None).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "insufficient_wallet_balance", .. }), "{err:?}");
    }
);

store_test!(
    async fn numbers_are_gap_free_and_unique_under_concurrent_issuers(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let app = w.app.clone();
            let product = w.product;
            tasks.push(tokio::spawn(async move {
                let mut numbers = Vec::new();
                for j in 0..5 {
                    let o = orders::place(&app, &Ctx::system("issuer"), &order_of(c, product, "monthly"), Some(&format!("{i}-{j}"))).await.unwrap();
                    numbers.push(o.invoice.number.unwrap());
                }
                numbers
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        let expected: Vec<String> = (1..=40).map(|n| format!("INV-2027-{n:05}")).collect();
        assert_eq!(all, expected);
    }
);

store_test!(
    async fn a_refused_order_takes_no_number(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        // The refused order's transaction is rolled back whole: the next number is still 2.
        let mut zwg = order_of(c, w.product, "monthly");
        zwg.currency = Some("ZWG".into());
        orders::place(&w.app, &w.ctx, &zwg, None).await.unwrap_err();
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        assert_eq!(o.invoice.number.as_deref(), Some("INV-2027-00002"));
    }
);

fn change_to(product: ProductId) -> keel_app::plan_change::PlanChangeInput {
    keel_app::plan_change::PlanChangeInput {
        product_id: product.get(),
        options: vec![],
    }
}

async fn wallet_balance(app: &App, client: ClientId) -> i64 {
    let mut tx = app.db.begin().await.unwrap();
    let w = keel_app::ledger::wallet(&mut tx, app, client, usd())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    w.natural_balance().minor()
}

store_test!(
    async fn an_upgrade_mid_cycle_is_invoiced_for_the_days_left(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", "BT-1")).await.unwrap();
        let service = o.service_ids[0];
        // 2027-01-30: 16 of the period's 31 days (01-15 to 02-14) are left.
        w.clock.set(at("2027-01-30"));
        let p = keel_app::plan_change::preview(&w.app, &w.ctx, service, &change_to(w.business)).await.unwrap();
        assert_eq!((p.remaining_days, p.period_days), (16, 31));
        assert_eq!((p.credit.amount_minor, p.charge.amount_minor, p.net.amount_minor), (516, 1548, 1032));
        assert_eq!(p.settlement, "invoice");
        assert_eq!(invoice_count(&w.app).await, 1, "a preview changes nothing");

        let r = keel_app::plan_change::apply(&w.app, &w.ctx, service, &change_to(w.business)).await.unwrap();
        let inv = r.invoice.expect("an upgrade is invoiced");
        // -5.16 (tax -0.77) + 15.48 (tax 2.32) = 11.87
        assert_eq!((inv.subtotal.amount_minor, inv.tax.amount_minor, inv.total.amount_minor), (1032, 155, 1187));
        assert_eq!(inv.lines.len(), 2);
        assert_eq!(r.service.recurring.amount_minor, 3000);
        assert_eq!(r.service.product_id, w.business);

        // The next renewal bills the new price.
        w.clock.set(at("2027-02-10"));
        let run = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(run.by_currency["USD"].total_minor, 3450);

        // Changing to the same plan is refused; an unknown product too.
        let err = keel_app::plan_change::apply(&w.app, &w.ctx, service, &change_to(w.business)).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid { code: "no_change", .. }), "{err:?}");
        let err = keel_app::plan_change::apply(&w.app, &w.ctx, service, &change_to(ProductId(999))).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid { code: "unknown_product", .. }), "{err:?}");
    }
);

store_test!(
    async fn a_downgrade_credits_the_wallet_with_its_tax(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", "BT-1")).await.unwrap();
        w.clock.set(at("2027-01-30"));
        let r = keel_app::plan_change::apply(&w.app, &w.ctx, o.service_ids[0], &change_to(w.mini)).await.unwrap();
        // credit 5.16, charge 4.00 x 16/31 = 2.06: net -3.10, taken back from the paid
        // renewal line (11.50, tax 1.50) at its own 15 %: gross floor(3.10 x 11.50 / 10.00)
        // = 3.56, whose tax round(3.56 x 1.50 / 11.50) = 0.46 leaves exactly 3.10 net.
        assert_eq!(r.preview.net.amount_minor, -310);
        assert_eq!(r.preview.settlement, "wallet");
        assert!(r.invoice.is_none());
        assert_eq!(wallet_balance(&w.app, c).await, 356);
        let notes = keel_app::credit_notes::of_invoice(&w.app, &w.ctx, o.invoice.id).await.unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!((notes[0].net.amount_minor, notes[0].tax.amount_minor, notes[0].total.amount_minor), (310, 46, 356));
        let inv = invoices::get(&w.app, &w.ctx, o.invoice.id).await.unwrap();
        assert_eq!((inv.paid.amount_minor, inv.refunded.amount_minor), (1725, 356));
    }
);

store_test!(
    async fn a_downgrade_credit_can_wait_for_the_next_invoice(t) {
        let mut w = world(t, "2027-01-15").await;
        let config = keel_app::billing::BillingConfig {
            downgrade_credit: keel_app::billing::DowngradeCredit::NextInvoice,
            // The held credit pays the renewal even where the wallet is not applied by itself.
            wallet_auto_apply: false,
            ..Default::default()
        };
        w.app = w.app.clone().with_billing(config);
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", "BT-1")).await.unwrap();
        w.clock.set(at("2027-01-30"));
        let r = keel_app::plan_change::apply(&w.app, &w.ctx, o.service_ids[0], &change_to(w.mini)).await.unwrap();
        assert_eq!(r.preview.settlement, "next_invoice");
        // The credit note returns the paid 3.56 (3.10 + 0.46 tax) to the wallet, held for the renewal.
        assert_eq!(wallet_balance(&w.app, c).await, 356);
        assert_eq!(r.service.pending_credit.amount_minor, 356);
        let run = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(run.invoices, 1);
        let list = invoices::list(&w.app, &w.ctx, &invoices::InvoiceQuery::default()).await.unwrap();
        let renewal = invoices::get(&w.app, &w.ctx, list.items.last().unwrap().id).await.unwrap();
        // Mini at 4.00 + 0.60, of which the held 3.56 is paid from the wallet.
        assert_eq!((renewal.total.amount_minor, renewal.paid.amount_minor, renewal.balance_due.amount_minor), (460, 356, 104));
        assert_eq!(wallet_balance(&w.app, c).await, 0);
        // Used once: the following renewal is the plain price, and nothing is paid for it.
        let run = billing_run::run(&w.app, &w.ctx, &RunOptions { as_of: day("2027-03-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!(run.by_currency["USD"].total_minor, 460);
        assert_eq!(run.by_currency["USD"].wallet_applied_minor, 0);
    }
);

fn credit_all(reason: &str) -> keel_app::credit_notes::CreditNoteInput {
    keel_app::credit_notes::CreditNoteInput {
        reason: reason.into(),
        lines: None,
    }
}

store_test!(
    async fn a_credit_note_takes_off_what_is_owed_then_refunds_to_the_wallet(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let id = o.invoice.id;
        payments::record_payment(&w.app, &w.ctx, id, &payment("10.00", "BT-1")).await.unwrap();

        // Part of the first line: 5.75 gross is 5.00 net + 0.75 tax.
        let line = o.invoice.lines[0].id;
        let part = keel_app::credit_notes::issue(&w.app, &w.ctx, id, &keel_app::credit_notes::CreditNoteInput {
            reason: "outage".into(),
            lines: Some(vec![keel_app::credit_notes::CreditLineInput { line_id: line, amount: Some("5.75".into()) }]),
        }).await.unwrap();
        assert_eq!(part.number, "CN-2027-00001");
        assert_eq!((part.net.amount_minor, part.tax.amount_minor, part.total.amount_minor), (500, 75, 575));
        let inv = invoices::get(&w.app, &w.ctx, id).await.unwrap();
        assert_eq!(inv.balance_due.amount_minor, 150, "17.25 - 10.00 paid - 5.75 credited");

        // Too much on a line, on the invoice; nothing changes.
        let err = keel_app::credit_notes::issue(&w.app, &w.ctx, id, &keel_app::credit_notes::CreditNoteInput {
            reason: "x".into(),
            lines: Some(vec![keel_app::credit_notes::CreditLineInput { line_id: line, amount: Some("6.00".into()) }]),
        }).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid { code: "credit_exceeds_invoice", .. }), "{err:?}");
        let err = keel_app::credit_notes::issue(&w.app, &w.ctx, id, &credit_all("")).await.unwrap_err();
        assert!(matches!(&err, AppError::InvalidText { field, error } if field == "reason" && error.problem == keel_domain::text::Problem::Empty), "{err:?}");

        // The rest: 1.50 off what is owed, 10.00 back to the wallet.
        let rest = keel_app::credit_notes::issue(&w.app, &w.ctx, id, &credit_all("cancelled order")).await.unwrap();
        assert_eq!(rest.number, "CN-2027-00002");
        assert_eq!(rest.total.amount_minor, 1150);
        assert_eq!(rest.disposition, keel_domain::lifecycle::CreditDisposition::Wallet);
        let inv = invoices::get(&w.app, &w.ctx, id).await.unwrap();
        assert_eq!(inv.status, InvoiceStatus::Refunded);
        assert_eq!(inv.balance_due.amount_minor, 0);
        assert_eq!(wallet_balance(&w.app, c).await, 1000);
        let err = keel_app::credit_notes::issue(&w.app, &w.ctx, id, &credit_all("again")).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_not_creditable", .. }), "{err:?}");

        // Both PDFs render.
        let (n, bytes) = keel_app::credit_notes::pdf(&w.app, &w.ctx, rest.id).await.unwrap();
        assert_eq!(n, "CN-2027-00002");
        assert!(bytes.starts_with(b"%PDF-"));
        let (n, bytes) = invoices::pdf(&w.app, &w.ctx, id).await.unwrap();
        assert_eq!(n, "INV-2027-00001");
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("INV-2027-00001") && text.contains("Tariro Moyo"), "the PDF names the invoice and buyer");
    }
);

fn manual(client: ClientId, lines: &[(&str, &str)]) -> invoices::DraftInput {
    invoices::DraftInput {
        client_id: client.get(),
        currency: None,
        due_date: Some("2027-01-31".into()),
        lines: lines
            .iter()
            .map(|(d, p)| invoices::ManualLine {
                description: (*d).into(),
                quantity: None,
                unit_price: (*p).into(),
                discount: None,
                tax_class: Some("standard".into()),
            })
            .collect(),
    }
}

store_test!(
    async fn a_draft_is_edited_then_issued_and_frozen(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let d = invoices::create_draft(&w.app, &w.ctx, &manual(c, &[("Migration", "50.00")])).await.unwrap();
        assert_eq!((d.status, d.number.clone()), (InvoiceStatus::Draft, None));
        let d = invoices::update_draft(&w.app, &w.ctx, d.id, &manual(c, &[("Migration", "50.00"), ("Training", "20.00")])).await.unwrap();
        assert_eq!(d.total.amount_minor, 8050);
        let issued = invoices::issue(&w.app, &w.ctx, d.id).await.unwrap();
        assert_eq!(issued.number.as_deref(), Some("INV-2027-00001"));
        assert_eq!(issued.due_date, Some(day("2027-01-31")));
        assert_eq!(issued.buyer.as_ref().unwrap().name, "Tariro Moyo");

        // Frozen: no edit, no second issue; later client edits do not reach it.
        let err = invoices::update_draft(&w.app, &w.ctx, d.id, &manual(c, &[("x", "1.00")])).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_issued", .. }), "{err:?}");
        let err = invoices::issue(&w.app, &w.ctx, d.id).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_issued", .. }), "{err:?}");
        keel_app::clients::update_client(&w.app, &w.ctx, c, keel_domain::client::ClientChanges {
            first_name: Some("Rutendo".into()),
            ..Default::default()
        }).await.unwrap();
        let again = invoices::get(&w.app, &w.ctx, d.id).await.unwrap();
        assert_eq!(again.buyer.as_ref().unwrap().name, "Tariro Moyo");
        let bad = [
            (manual(c, &[("x", "1.001")]), "too_many_decimals"),
            (manual(c, &[("", "1.00")]), "invalid_text"),
            (manual(c, &[("x", "-5.00")]), "negative_invoice"),
            (invoices::DraftInput { due_date: Some("31.01.2027".into()), ..manual(c, &[("x", "1.00")]) }, "invalid_date"),
        ];
        for (input, code) in bad {
            let err = invoices::create_draft(&w.app, &w.ctx, &input).await.unwrap_err();
            let got = match &err {
                AppError::Invalid { code, .. } => *code,
                AppError::InvalidText { .. } => "invalid_text",
                other => panic!("{code}: unexpected {other:?}"),
            };
            assert_eq!(got, code, "{err:?}");
        }
        assert_eq!(invoice_count(&w.app).await, 1);
    }
);

/// Runs dunning as of `on` and performs the steps it queued for `invoice`; returns their
/// keys.
async fn dun(w: &World, invoice: keel_domain::ids::InvoiceId, on: &str) -> Vec<String> {
    keel_app::dunning::run(&w.app, &w.ctx, day(on))
        .await
        .unwrap();
    let mut performed = Vec::new();
    for step in keel_app::dunning::steps(&w.app, &w.ctx, invoice)
        .await
        .unwrap()
    {
        if step.state == keel_store::dunning::StepState::Queued {
            keel_app::dunning::perform(&w.app, &w.ctx, step.id)
                .await
                .unwrap();
            performed.push(step.step);
        }
    }
    performed
}

store_test!(
    async fn a_late_fee_is_added_once_on_its_dunning_day(t) {
        let mut w = world(t, "2027-01-15").await;
        let config = keel_app::billing::BillingConfig {
            late_fee: Some(keel_app::billing::LateFeeAmount::Percent(Decimal::new(10, 0))),
            dunning: keel_domain::dunning::Policy {
                reminder_days_before: vec![],
                overdue_days: vec![],
                late_fee_days: Some(6),
                suspend_days: None,
                ..Default::default()
            },
            ..Default::default()
        };
        w.app = w.app.clone().with_billing(config);
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        // Due 2027-01-15: not yet on the 20th, yes on the 21st, and only once.
        assert_eq!(dun(&w, o.invoice.id, "2027-01-20").await, Vec::<String>::new());
        assert_eq!(dun(&w, o.invoice.id, "2027-01-21").await, ["late_fee"]);
        assert_eq!(dun(&w, o.invoice.id, "2027-02-21").await, Vec::<String>::new());
        let inv = invoices::get(&w.app, &w.ctx, o.invoice.id).await.unwrap();
        assert_eq!(inv.total.amount_minor, 1725 + 173, "10 % of 17.25, rounded half away from zero");
        assert_eq!(inv.lines.last().unwrap().kind, keel_domain::lifecycle::LineKind::LateFee);
        // Paying the new total settles it.
        let paid = payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("18.98", "BT-1")).await.unwrap();
        assert_eq!(paid.status, InvoiceStatus::Paid);
        keel_testkit::assert_ledger_balanced(&w.app.db).await;
    }
);

async fn promotion(
    w: &World,
    code: &str,
    value: keel_domain::promotion::PromoValue,
    recurring: bool,
    max_uses: Option<u32>,
) {
    let mut tx = w.app.db.begin().await.unwrap();
    keel_store::catalog::create_promotion(
        &mut tx,
        &keel_domain::promotion::Promotion {
            code: code.into(),
            value,
            recurring,
            starts_on: None,
            ends_on: Some(day("2027-06-30")),
            max_uses,
            max_uses_per_client: None,
            products: vec![w.product],
            cycles: vec![],
        },
        w.app.now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

store_test!(
    async fn promotion_codes_discount_the_first_period_or_every_period(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        promotion(&w, "HALF", keel_domain::promotion::PromoValue::Percent(Decimal::new(50, 0)), false, Some(1)).await;
        promotion(&w, "ALWAYS2", keel_domain::promotion::PromoValue::Fixed(vec![Money::new(200, usd())]), true, None).await;

        let mut first = order_of(c, w.product, "monthly");
        first.promo_code = Some("half".into());
        let o = orders::place(&w.app, &w.ctx, &first, None).await.unwrap();
        // 50 % of the 10.00 period (not of the setup fee): 5.00 + 5.00 setup, + 15 % VAT.
        assert_eq!((o.invoice.subtotal.amount_minor, o.invoice.total.amount_minor), (1000, 1150));
        assert_eq!(o.invoice.lines[0].discount.amount_minor, 500);
        let s = keel_app::services::get(&w.app, &w.ctx, o.service_ids[0]).await.unwrap();
        assert_eq!(s.recurring.amount_minor, 1000, "a first-period code leaves renewals alone");

        // Used up; a product it does not cover; expired.
        let err = orders::place(&w.app, &w.ctx, &first, None).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid { code: "promo_exhausted", .. }), "{err:?}");
        let mut other = order_of(c, w.business, "monthly");
        other.promo_code = Some("ALWAYS2".into());
        let err = orders::place(&w.app, &w.ctx, &other, None).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid { code: "promo_not_applicable", .. }), "{err:?}");
        let mut recurring = order_of(c, w.product, "monthly");
        recurring.promo_code = Some("ALWAYS2".into());
        let o2 = orders::place(&w.app, &w.ctx, &recurring, None).await.unwrap();
        let s2 = keel_app::services::get(&w.app, &w.ctx, o2.service_ids[0]).await.unwrap();
        assert_eq!(s2.recurring.amount_minor, 800, "a recurring code lowers every renewal");
        w.clock.set(at("2027-07-01"));
        let err = orders::place(&w.app, &w.ctx, &recurring, None).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid { code: "promo_expired", .. }), "{err:?}");
    }
);

store_test!(
    async fn a_cancelled_or_fraudulent_order_gives_everything_back(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        // Two in stock.
        let mut tx = w.app.db.begin().await.unwrap();
        keel_store::catalog::update_product(&mut tx, w.product, &keel_store::catalog::ProductUpdate {
            name: "Starter".into(),
            description: String::new(),
            tax_class: Some("standard".into()),
            provisioner: None,
            registrar: None,
            stock: Some(2),
        }, w.app.now()).await.unwrap();
        tx.commit().await.unwrap();
        let a = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let b = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let err = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap_err();
        assert!(matches!(&err, AppError::Invalid { code: "out_of_stock", .. }), "{err:?}");

        let fraud = orders::close(&w.app, &w.ctx, a.id, &orders::OrderStatusInput {
            status: keel_domain::lifecycle::OrderStatus::Fraud,
            reason: "stolen card".into(),
        }).await.unwrap();
        assert_eq!(fraud.status, keel_domain::lifecycle::OrderStatus::Fraud);
        assert_eq!(fraud.invoice.status, InvoiceStatus::Cancelled);
        let s = keel_app::services::get(&w.app, &w.ctx, a.service_ids[0]).await.unwrap();
        assert_eq!(s.status, ServiceStatus::Cancelled);
        // The unit came back: a new order fits.
        orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();

        // Paid orders are credited, not closed.
        payments::record_payment(&w.app, &w.ctx, b.invoice.id, &payment("1.00", "BT-1")).await.unwrap();
        let err = orders::close(&w.app, &w.ctx, b.id, &orders::OrderStatusInput {
            status: keel_domain::lifecycle::OrderStatus::Cancelled,
            reason: "changed mind".into(),
        }).await.unwrap_err();
        assert!(matches!(&err, AppError::Conflict { code: "order_has_payments", .. }), "{err:?}");
        let err = orders::close(&w.app, &w.ctx, a.id, &orders::OrderStatusInput {
            status: keel_domain::lifecycle::OrderStatus::Cancelled,
            reason: "again".into(),
        }).await.unwrap_err();
        assert!(matches!(&err, AppError::Conflict { code: "order_not_pending", .. }), "{err:?}");
    }
);

store_test!(
    async fn a_client_with_more_due_services_than_a_batch_still_gets_one_invoice(t) {
        let w = world(t, "2027-01-15").await;
        let big = client(&w, "big@example.com").await;
        let small = client(&w, "small@example.com").await;
        for (c, k) in [(big, "a"), (big, "b"), (big, "c"), (big, "d"), (big, "e"), (small, "f")] {
            let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), Some(k)).await.unwrap();
            payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", &format!("BT-{k}"))).await.unwrap();
        }
        // Batches of two services: the big client's five renewals still share one invoice.
        let app = w.app.clone().with_billing(keel_app::billing::BillingConfig { batch_size: 2, ..(*w.app.billing).clone() });
        let r = billing_run::run(&app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!((r.invoices, r.periods, r.services, r.retries), (2, 6, 6, 0));
        assert_eq!(r.by_currency["USD"].invoices, 2);
        assert_eq!(r.by_currency["USD"].total_minor, 6 * 1150);
        let mine = invoices::list(&w.app, &w.ctx, &invoices::InvoiceQuery { client_id: Some(big.get()), ..Default::default() }).await.unwrap();
        let renewal = invoices::get(&w.app, &w.ctx, mine.items.iter().map(|i| i.id).max().unwrap()).await.unwrap();
        assert_eq!((renewal.lines.len(), renewal.total.amount_minor), (5, 5750));
        // And a second run finds nothing left.
        let again = billing_run::run(&app, &w.ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await.unwrap();
        assert_eq!((again.invoices, again.periods), (0, 0));
    }
);

store_test!(
    /// A cancellation committed while a batch waits to lock its services (after it read them
    /// from the pool) stops the renewal: the batch plans from the rows it locked.
    async fn a_cancellation_committed_while_a_batch_waits_for_its_lock_stops_the_renewal(t) {
        use keel_domain::lifecycle::CancelKind;
        use keel_domain::tenancy::Scope;
        use keel_store as store;

        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), Some("k")).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("17.25", "BT-1")).await.unwrap();
        let victim = o.service_ids[0];

        // A writer holds the service (its row lock on PostgreSQL, the one writer on SQLite)...
        let mut tx = t.db.begin().await.unwrap();
        store::services::service_for_update(&mut tx, Scope::Host, victim).await.unwrap().expect("the service");
        // ...while the run reads its batch and waits to lock it...
        let run = {
            let (app, ctx) = (w.app.clone(), w.ctx.clone());
            tokio::spawn(async move {
                billing_run::run(&app, &ctx, &RunOptions { as_of: day("2027-02-10"), dry_run: false }, &|_| {}).await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // ...then the client cancels at the end of the paid period.
        store::services::request_cancellation(&mut tx, victim, CancelKind::EndOfPeriod, "the client is leaving", day("2027-02-15"), w.app.now()).await.unwrap();
        tx.commit().await.unwrap();
        let report = run.await.unwrap().unwrap();

        let after = store::services::get_service(&t.db, Scope::Host, victim).await.unwrap().expect("the service");
        assert_eq!(
            (after.next_period, report.periods, report.invoices),
            (1, 0, 0),
            "the run renewed a service cancelled at the end of its period (it planned from a read taken before the cancellation committed)"
        );
    }
);

store_test!(
    async fn an_invoice_in_collections_stays_owed_and_payable(t) {
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let id = o.invoice.id;
        let reason = |r: &str| invoices::CancelInput { reason: r.into() };

        // No reason: refused, nothing changed.
        let err = invoices::send_to_collections(&w.app, &w.ctx, id, &reason("  ")).await.unwrap_err();
        assert!(matches!(&err, AppError::InvalidText { field, error } if field == "reason" && error.problem == keel_domain::text::Problem::Empty), "{err:?}");
        assert_eq!(invoices::get(&w.app, &w.ctx, id).await.unwrap().status, InvoiceStatus::Unpaid);

        let sent = invoices::send_to_collections(&w.app, &w.ctx, id, &reason("90 days overdue, handed to the agency")).await.unwrap();
        assert_eq!((sent.status, sent.balance_due.amount_minor), (InvoiceStatus::Collections, 1725));
        // Twice is refused; the money is still owed and can be paid.
        let err = invoices::send_to_collections(&w.app, &w.ctx, id, &reason("again")).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_not_collectable", .. }), "{err:?}");
        let paid = payments::record_payment(&w.app, &w.ctx, id, &payment("17.25", "AGENCY-1")).await.unwrap();
        assert_eq!(paid.status, InvoiceStatus::Paid);
        let err = invoices::send_to_collections(&w.app, &w.ctx, id, &reason("late")).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "invoice_not_collectable", .. }), "{err:?}");
    }
);

store_test!(
    /// Three billing runs at once over one book (batches of 40): every (service, period) is
    /// billed exactly once, and the runs' reports add up to what is in the database (a batch
    /// that lost a race and was retried counts once).
    async fn concurrent_billing_runs_bill_each_period_once_and_report_what_they_did(t) {
        use keel_testkit::scenario::book::{self, BookOptions};
        let as_of = day("2027-01-01");
        let app = App::new(t.db.clone()).with_billing(keel_app::billing::BillingConfig { batch_size: 40, ..Default::default() });
        let summary = book::seed_book(&app, &BookOptions::new(600, 9, as_of)).await.unwrap();
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    billing_run::run(&app, &Ctx::system(&format!("run {i}")), &RunOptions { as_of, dry_run: false }, &|_| {}).await
                })
            })
            .collect();
        let mut invoiced = 0;
        let mut periods = 0;
        for r in runs {
            let report = r.await.unwrap().unwrap();
            invoiced += report.invoices;
            periods += report.periods;
        }
        let census = keel_store::seed::census(&t.db, i64::from(summary.first_period)).await.unwrap();
        assert_eq!(census.duplicate_service_periods, 0);
        assert_eq!(census.services_not_billed_once, 0);
        assert_eq!((census.service_lines, periods), (600, 600));
        assert_eq!(census.invoices, invoiced);
        assert_eq!(census.invoices, census.invoice_groups);
    }
);

store_test!(
    async fn a_credit_note_retried_under_its_key_is_the_same_credit_note(t) {
        // Issue 14, finding 12: the route required an Idempotency-Key and never used it, so a
        // retry after a crash between the commit and the stored answer credited twice.
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        let id = o.invoice.id;
        let half = keel_app::credit_notes::CreditNoteInput {
            reason: "outage".into(),
            lines: Some(vec![keel_app::credit_notes::CreditLineInput { line_id: o.invoice.lines[0].id, amount: Some("5.75".into()) }]),
        };
        let first = keel_app::credit_notes::issue_keyed(&w.app, &w.ctx, id, &half, Some("cn-1")).await.unwrap();
        let again = keel_app::credit_notes::issue_keyed(&w.app, &w.ctx, id, &half, Some("cn-1")).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(keel_app::credit_notes::of_invoice(&w.app, &w.ctx, id).await.unwrap().len(), 1);
        let inv = invoices::get(&w.app, &w.ctx, id).await.unwrap();
        assert_eq!(inv.credited.amount_minor, 575, "credited once");
        // Another key is another credit note.
        let other = keel_app::credit_notes::issue_keyed(&w.app, &w.ctx, id, &half, Some("cn-2")).await.unwrap();
        assert_ne!(other.id, first.id);
    }
);

/// Posts `entry` (built by `build` from the host's system accounts in USD) outside any use
/// case, as a careless operator's manual entry would, and returns its id.
async fn manual_entry(
    app: &App,
    key: &str,
    from: keel_app::ledger::SystemAccount,
    to: keel_app::ledger::SystemAccount,
    minor: i64,
) -> keel_domain::ids::EntryId {
    let mut tx = app.db.begin().await.unwrap();
    let debit = keel_app::ledger::system_account(&mut tx, app, from, usd())
        .await
        .unwrap();
    let credit = keel_app::ledger::system_account(&mut tx, app, to, usd())
        .await
        .unwrap();
    let entry = keel_domain::ledger::EntryBuilder::new(key, "manual")
        .debit(debit.id, Money::new(minor, usd()))
        .credit(credit.id, Money::new(minor, usd()))
        .build()
        .unwrap();
    let posted = keel_store::ledger::post(&mut tx, &entry, app.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    posted.entry.id
}

async fn undo(app: &App, entry: keel_domain::ids::EntryId) {
    let mut tx = app.db.begin().await.unwrap();
    keel_store::ledger::reverse(&mut tx, entry, &format!("undo:{entry}"), "test", app.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn agreed(ledger_minor: i64, documents_minor: i64) -> keel_store::ledger::SubLedger {
    keel_store::ledger::SubLedger {
        ledger_minor,
        documents_minor,
    }
}

store_test!(
    async fn the_ledger_check_reconciles_tax_receivables_and_wallets_and_names_a_broken_book(t) {
        use keel_app::ledger::SystemAccount::{Adjustments, Receivable, TaxPayable};
        let w = world(t, "2027-01-15").await;
        let c = client(&w, "tariro@example.com").await;
        // 17.25 owed, 2.25 of it tax; 10.00 paid; a second invoice cancelled (its issue entry
        // reversed, tax included); one wallet credited 5.00 by staff.
        let o = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        payments::record_payment(&w.app, &w.ctx, o.invoice.id, &payment("10.00", "BT-1")).await.unwrap();
        let o2 = orders::place(&w.app, &w.ctx, &order_of(c, w.product, "monthly"), None).await.unwrap();
        invoices::cancel(&w.app, &w.ctx, o2.invoice.id, &invoices::CancelInput { reason: "test".into() })
            .await
            .unwrap();
        keel_app::ledger::wallet_adjust(&w.app, &w.ctx, "w1", c, Money::new(500, usd()), "goodwill")
            .await
            .unwrap();
        let check = || keel_store::ledger::check(&w.app.db);
        let report = check().await.unwrap();
        assert!(report.is_clean(), "{report:#?}");
        assert_eq!(report.tax_payable.get("USD"), Some(&agreed(225, 225)));
        assert_eq!(report.receivables.get("USD"), Some(&agreed(725, 725)));
        assert_eq!((report.wallets, report.wallet_mismatches.len()), (1, 0));

        // Tax payable moved with no document behind it (as a credit taxed at a rate no
        // invoice charged would): a tax difference, and only that.
        let stray = manual_entry(&w.app, "stray-tax", TaxPayable, Adjustments, 47).await;
        let report = check().await.unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.tax_payable.get("USD"), Some(&agreed(178, 225)));
        assert!(report.receivables.values().all(|s| s.agrees()));
        assert!(report.balance_mismatches.is_empty() && report.unbalanced_entries.is_empty());
        undo(&w.app, stray).await;
        assert!(check().await.unwrap().is_clean());

        // Receivables raised with no invoice owing it.
        let stray = manual_entry(&w.app, "stray-receivable", Receivable, Adjustments, 100).await;
        let report = check().await.unwrap();
        assert!(!report.is_clean());
        assert_eq!(report.receivables.get("USD"), Some(&agreed(825, 725)));
        assert!(report.tax_payable.values().all(|s| s.agrees()));
        undo(&w.app, stray).await;

        // A wallet's cached balance edited behind the ledger's back is named as a wallet.
        let wallet: i64 = {
            let mut tx = w.app.db.begin().await.unwrap();
            let id = keel_app::ledger::wallet(&mut tx, &w.app, c, usd()).await.unwrap().id.get();
            keel_store::on_tx!(&mut tx, |x| sqlx::query(
                "UPDATE ledger_accounts SET balance_minor = balance_minor - 1 WHERE id = $1"
            )
            .bind(id)
            .execute(&mut *x)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
            tx.commit().await.unwrap();
            id
        };
        let report = check().await.unwrap();
        assert!(!report.is_clean());
        assert_eq!(
            report.wallet_mismatches,
            vec![keel_store::ledger::BalanceMismatch { account: wallet, cached_minor: -501, postings_minor: -500 }]
        );
        let mut tx = w.app.db.begin().await.unwrap();
        keel_store::on_tx!(&mut tx, |x| sqlx::query(
            "UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE id = $1"
        )
        .bind(wallet)
        .execute(&mut *x)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
        tx.commit().await.unwrap();

    }
);
