//! The payment spine through the use cases, on both engines, with the real bank-transfer
//! gateway component: starting a payment (one attempt per request key, tenancy, refusals, at
//! most `MAX_PENDING_ATTEMPTS` pending per invoice for a client, only the first attempts
//! holding dunning),
//! and applying confirmed updates once (paid, duplicates, concurrent deliveries,
//! contradictions, a wrong amount, overpayment to the wallet, a top-up, an expired attempt
//! paid late, the poll expiring stale attempts; a refund or dispute after payment reversed
//! once, the invoice reopened, a spent top-up left to staff). Every test ends with the
//! ledger check.
//!
//! Callbacks verified and confirmed by a real provider's plugin (Paynow against its fake)
//! are tested where that plugin lives and in the API's tests.

use chrono::{TimeZone, Utc};
use keel_app::gateway_payments::{self, ActionView, Applied, Gateways, StartInput};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::payments::{self, ManualMethod, PaymentInput, TopUpInput};
use keel_app::{App, AppError, Ctx, FixedClock};
use keel_domain::access::Actor;
use keel_domain::ids::{ApiKeyId, ClientId, InvoiceId, ProductId};
use keel_domain::lifecycle::InvoiceStatus;
use keel_domain::tenancy::Scope;
use keel_plugin_host::Money as PluginMoney;
use keel_plugin_host::gateway::{PaymentStatus, PaymentUpdate};
use keel_plugins::KEEL_PLUGIN_BANK_TRANSFER;
use keel_store::attempts::AttemptState;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::{TestDb, store_test};
use std::sync::Arc;

const GATEWAY: &str = "bank-transfer";

struct World {
    app: App,
    clock: Arc<FixedClock>,
    ctx: Ctx,
    product: ProductId,
    _harness: PluginHarness,
}

async fn world(t: &TestDb) -> World {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let mut harness = PluginHarness::new();
    let plugin = harness
        .load(
            KEEL_PLUGIN_BANK_TRANSFER.wasm().unwrap(),
            &KEEL_PLUGIN_BANK_TRANSFER.manifest().unwrap(),
            "instructions = \"Bank: First Bank\\nAccount: 123456\"",
        )
        .await
        .unwrap();
    let app = App::with_clock(t.db.clone(), clock.clone())
        .with_gateways(Gateways::from_plugins(&[plugin]));
    let built = Scenario::new(&app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .build()
        .await;
    World {
        app,
        clock,
        ctx: Ctx::system("test"),
        product: built.product("Plan"),
        _harness: harness,
    }
}

async fn client(w: &World, email: &str) -> ClientId {
    Scenario::new(&w.app)
        .client(Client::new(email).name("Rudo", "Chikwanha"))
        .build()
        .await
        .client(email)
}

fn client_key(c: ClientId) -> Ctx {
    Ctx::new(Actor::Key {
        key: ApiKeyId(0),
        label: "client key".into(),
        scope: Scope::Client(c),
        role: None,
        staff: None,
    })
}

/// An order's invoice of 10.00 (unpaid, unless the client's wallet pays it as it is issued).
async fn unpaid_invoice(w: &World, c: ClientId, key: &str) -> InvoiceId {
    let order = orders::place(
        &w.app,
        &w.ctx,
        &OrderInput {
            client_id: Some(c.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: w.product.get(),
                cycle: "monthly".into(),
                options: vec![],
                label: Some(format!("site-{key}.example")),
                addons: vec![],
            }],
        },
        Some(key),
    )
    .await
    .unwrap();
    assert_eq!(order.invoice.total.amount_minor, 1000);
    order.invoice.id
}

fn bank() -> StartInput {
    StartInput {
        gateway: GATEWAY.into(),
        method: None,
        phone: None,
    }
}

fn update(reference: &str, status: PaymentStatus, minor: Option<i64>) -> PaymentUpdate {
    PaymentUpdate {
        reference: reference.into(),
        provider_reference: format!("PR-{reference}"),
        status,
        amount: minor.map(|m| PluginMoney {
            minor: m,
            currency: "USD".into(),
        }),
        provider_status: format!("{status:?}"),
    }
}

fn code(e: &AppError) -> &'static str {
    match e {
        AppError::Invalid { code, .. } | AppError::Conflict { code, .. } => code,
        AppError::NotFound { .. } => "not_found",
        AppError::Forbidden { .. } => "forbidden",
        other => panic!("unexpected error {other:?}"),
    }
}

async fn assert_books_clean(app: &App) {
    let report = keel_store::ledger::check(&app.db).await.unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert!(
        report.trial_balance.values().all(|v| *v == 0),
        "{report:#?}"
    );
}

/// Staff record `amount` paid in cash (reference `R1`) on `inv`.
async fn cash(w: &World, inv: InvoiceId, amount: &str) {
    payments::record_payment(
        &w.app,
        &w.ctx,
        inv,
        &PaymentInput {
            amount: amount.into(),
            method: ManualMethod::Cash,
            reference: "R1".into(),
            received_on: None,
            note: None,
        },
    )
    .await
    .unwrap();
}

async fn invoice(w: &World, id: InvoiceId) -> keel_app::invoices::InvoiceView {
    keel_app::invoices::get(&w.app, &w.ctx, id).await.unwrap()
}

async fn payments_of(w: &World, id: InvoiceId) -> usize {
    invoice(w, id).await.payments.len()
}

store_test!(
    async fn a_payment_starts_once_per_request_key_with_the_gateways_instructions(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;

        let first = gateway_payments::start(&w.app, &client_key(c), inv, &bank(), Some("click-1"))
            .await
            .unwrap();
        assert_eq!(first.state, AttemptState::Pending);
        assert_eq!(first.amount.amount_minor, 1000);
        assert_eq!(first.gateway, GATEWAY);
        assert!(first.reference.len() <= 32, "{}", first.reference);
        let Some(ActionView::Instructions { text }) = &first.action else {
            panic!("{:?}", first.action)
        };
        assert!(text.starts_with("Bank: First Bank"), "{text}");
        assert!(first.provider_reference.is_some());

        // A double click: the same key answers the same attempt.
        let again = gateway_payments::start(&w.app, &client_key(c), inv, &bank(), Some("click-1"))
            .await
            .unwrap();
        assert_eq!(again.id, first.id);
        let listed = gateway_payments::attempts(&w.app, &client_key(c), inv).await.unwrap();
        assert_eq!(listed.len(), 1);

        // The pending attempt holds dunning.
        let mut tx = w.app.db.begin().await.unwrap();
        let hold = keel_store::dunning::payment_hold(&mut tx, inv, w.app.now()).await.unwrap();
        drop(tx);
        assert_eq!(hold, Some(first.hold_until));
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn a_client_cannot_open_payments_without_end_nor_put_off_dunning_with_them(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let max = gateway_payments::MAX_PENDING_ATTEMPTS;

        let mut started = Vec::new();
        for i in 0..max {
            let a = gateway_payments::start(&w.app, &client_key(c), inv, &bank(), Some(&format!("click-{i}")))
                .await
                .unwrap();
            started.push(a);
            w.clock.advance(chrono::Duration::minutes(1));
        }
        // Only the first HOLDING_ATTEMPTS hold dunning.
        let holding: Vec<bool> = started.iter().map(|a| a.hold_until > a.created_at).collect();
        let expected: Vec<bool> = (0..max).map(|i| i < gateway_payments::HOLDING_ATTEMPTS).collect();
        assert_eq!(holding, expected);
        let mut tx = w.app.db.begin().await.unwrap();
        let hold = keel_store::dunning::payment_hold(&mut tx, inv, w.app.now()).await.unwrap();
        drop(tx);
        let last_holding = &started[usize::try_from(gateway_payments::HOLDING_ATTEMPTS).unwrap() - 1];
        assert_eq!(hold, Some(last_holding.hold_until));

        // One more is refused with the reason, and starts nothing.
        let e = gateway_payments::start(&w.app, &client_key(c), inv, &bank(), Some("click-more"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "too_many_pending_payments");
        assert!(e.to_string().contains(&format!("{max} payments waiting")), "{e}");
        // A repeated request still answers its own attempt.
        let again = gateway_payments::start(&w.app, &client_key(c), inv, &bank(), Some("click-0"))
            .await
            .unwrap();
        assert_eq!(again.id, started[0].id);
        let listed = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap();
        assert_eq!(listed.len(), started.len());
        // Staff are not capped.
        gateway_payments::start(&w.app, &w.ctx, inv, &bank(), Some("staff-1")).await.unwrap();
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn refusals_name_the_problem_and_start_nothing(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let other = client(&w, "tendai@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;

        // Another client's invoice is not found for this client's key.
        let e = gateway_payments::start(&w.app, &client_key(other), inv, &bank(), Some("k"))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "not_found");
        let e = gateway_payments::attempts(&w.app, &client_key(other), inv).await.unwrap_err();
        assert_eq!(code(&e), "not_found");

        let e = gateway_payments::start(
            &w.app,
            &w.ctx,
            inv,
            &StartInput { gateway: "stripe".into(), method: None, phone: None },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "unknown_gateway");
        assert!(e.to_string().contains("bank-transfer"), "{e}");

        let e = gateway_payments::start(
            &w.app,
            &w.ctx,
            inv,
            &StartInput { gateway: GATEWAY.into(), method: None, phone: Some("not a phone".into()) },
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&e), "invalid_phone");

        // Paid in full by staff: nothing is left to pay.
        payments::record_payment(
            &w.app,
            &w.ctx,
            inv,
            &PaymentInput {
                amount: "10.00".into(),
                method: ManualMethod::Cash,
                reference: "R1".into(),
                received_on: None,
                note: None,
            },
        )
        .await
        .unwrap();
        let e = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap_err();
        assert_eq!(code(&e), "invoice_not_payable");
        assert!(gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap().is_empty());
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn a_confirmed_payment_is_applied_once_however_often_it_is_delivered(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();

        // Still pending: nothing moves but the provider's word.
        let pending = gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Pending, None))
            .await
            .unwrap();
        assert_eq!(pending, Applied::Unchanged);

        // Fifty deliveries at once: one payment.
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let app = w.app.clone();
            let u = update(&a.reference, PaymentStatus::Paid, Some(1000));
            tasks.push(tokio::spawn(async move { gateway_payments::apply(&app, GATEWAY, &u).await }));
        }
        let mut moved = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Applied::Moved(AttemptState::Succeeded) => moved += 1,
                Applied::Unchanged => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(moved, 1);
        let paid = invoice(&w, inv).await;
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(paid.payments.len(), 1);
        assert_eq!(paid.payments[0].method, GATEWAY);
        assert_eq!(paid.payments[0].reference, format!("PR-{}", a.reference));

        let listed = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap();
        assert_eq!(listed[0].state, AttemptState::Succeeded);
        assert!(listed[0].attention.is_none());
        // Once succeeded, the hold on dunning is gone.
        let mut tx = w.app.db.begin().await.unwrap();
        assert_eq!(keel_store::dunning::payment_hold(&mut tx, inv, w.app.now()).await.unwrap(), None);
        drop(tx);
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn contradictions_and_wrong_amounts_change_nothing_and_are_flagged(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;

        // A wrong amount: refused, the attempt still pending and flagged.
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();
        let e = gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(100)))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "amount_mismatch");
        let now = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap().remove(0);
        assert_eq!(now.state, AttemptState::Pending);
        assert!(now.attention.unwrap().contains("was asked"));
        assert_eq!(payments_of(&w, inv).await, 0);

        // Cancelled, then paid: the second is refused.
        let inv2 = unpaid_invoice(&w, c, "o2").await;
        let b = gateway_payments::start(&w.app, &w.ctx, inv2, &bank(), None).await.unwrap();
        assert_eq!(
            gateway_payments::apply(&w.app, GATEWAY, &update(&b.reference, PaymentStatus::Cancelled, None))
                .await
                .unwrap(),
            Applied::Moved(AttemptState::Cancelled)
        );
        let e = gateway_payments::apply(&w.app, GATEWAY, &update(&b.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "payment_state_conflict");
        assert_eq!(payments_of(&w, inv2).await, 0);
        assert_eq!(invoice(&w, inv2).await.status, InvoiceStatus::Unpaid);

        // Paid, then cancelled: the payment stands, the contradiction is flagged.
        let inv3 = unpaid_invoice(&w, c, "o3").await;
        let d = gateway_payments::start(&w.app, &w.ctx, inv3, &bank(), None).await.unwrap();
        gateway_payments::apply(&w.app, GATEWAY, &update(&d.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap();
        let e = gateway_payments::apply(&w.app, GATEWAY, &update(&d.reference, PaymentStatus::Cancelled, None))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "payment_state_conflict");
        let after = gateway_payments::attempts(&w.app, &w.ctx, inv3).await.unwrap().remove(0);
        assert_eq!(after.state, AttemptState::Succeeded);
        assert!(after.attention.is_some());
        assert_eq!(invoice(&w, inv3).await.status, InvoiceStatus::Paid);

        // An update for a reference nobody started.
        let e = gateway_payments::apply(&w.app, GATEWAY, &update("NOPE-1", PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "not_found");
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn what_exceeds_the_balance_goes_to_the_wallet(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();
        // Meanwhile staff record 4.00 of it by hand.
        cash(&w, inv, "4.00").await;
        gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap();
        let paid = invoice(&w, inv).await;
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(paid.paid.amount_minor, 1000);
        let wallets = keel_app::wallets::list(&w.app, &w.ctx, c).await.unwrap().items;
        assert_eq!(wallets.len(), 1);
        assert_eq!(wallets[0].balance.amount_minor, 400);
        let flagged = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap().remove(0);
        assert!(flagged.attention.unwrap().contains("wallet"));
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn a_top_up_paid_at_a_gateway_credits_the_wallet(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let top = payments::top_up(
            &w.app,
            &client_key(c),
            &TopUpInput { client_id: None, amount: "25.00".into(), currency: None },
            Some("t1"),
        )
        .await
        .unwrap();
        let a = gateway_payments::start(&w.app, &client_key(c), top.id, &bank(), Some("t1"))
            .await
            .unwrap();
        assert_eq!(a.amount.amount_minor, 2500);
        gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(2500)))
            .await
            .unwrap();
        assert_eq!(invoice(&w, top.id).await.status, InvoiceStatus::Paid);
        let wallets = keel_app::wallets::list(&w.app, &w.ctx, c).await.unwrap().items;
        assert_eq!(wallets[0].balance.amount_minor, 2500);
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn the_poll_expires_stale_attempts_and_a_late_confirmation_is_still_recorded(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();

        // Within the expiry nothing happens (bank transfer cannot be polled).
        w.clock.advance(chrono::Duration::hours(1));
        let report = gateway_payments::poll_due(&w.app, &w.ctx).await.unwrap();
        assert_eq!((report.polled, report.expired), (0, 0));

        w.clock.advance(chrono::Duration::hours(24));
        let report = gateway_payments::poll_due(&w.app, &w.ctx).await.unwrap();
        assert_eq!(report.expired, 1);
        let expired = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap().remove(0);
        assert_eq!(expired.state, AttemptState::Expired);
        // A second round finds nothing left to do.
        assert_eq!(gateway_payments::poll_due(&w.app, &w.ctx).await.unwrap().expired, 0);

        // The money came after all: recorded, never dropped.
        assert_eq!(
            gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(1000)))
                .await
                .unwrap(),
            Applied::Moved(AttemptState::Succeeded)
        );
        assert_eq!(invoice(&w, inv).await.status, InvoiceStatus::Paid);
        assert_books_clean(&w.app).await;
    }
);

/// The reversal entries posted for `reference` (by its key): 0 or 1.
async fn reversals(w: &World, reference: &str) -> usize {
    let mut tx = w.app.db.begin().await.unwrap();
    let found = keel_store::ledger::entry_by_key(
        &mut tx,
        &format!("gateway-reversal:{GATEWAY}:{reference}"),
    )
    .await
    .unwrap();
    usize::from(found.is_some())
}

store_test!(
    async fn a_refund_after_payment_reverses_it_once_and_reopens_the_invoice(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();
        gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap();
        assert_eq!(invoice(&w, inv).await.status, InvoiceStatus::Paid);

        // Ten copies of the refund at once: one reversal.
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let app = w.app.clone();
            let u = update(&a.reference, PaymentStatus::Refunded, Some(1000));
            tasks.push(tokio::spawn(async move { gateway_payments::apply(&app, GATEWAY, &u).await }));
        }
        let mut moved = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                Applied::Moved(AttemptState::Refunded) => moved += 1,
                Applied::Unchanged => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(moved, 1);
        assert_eq!(reversals(&w, &a.reference).await, 1);

        let reopened = invoice(&w, inv).await;
        assert_eq!(reopened.status, InvoiceStatus::Unpaid);
        assert_eq!(reopened.paid.amount_minor, 0);
        assert_eq!(reopened.balance_due.amount_minor, 1000);
        assert_eq!(reopened.paid_at, None);
        assert_eq!(reopened.payments.len(), 1, "the payment stays on record, reversed");
        assert!(reopened.payments[0].reversed_at.is_some());
        assert!(reopened.payments[0].reversal_entry_id.is_some());

        let flagged = gateway_payments::attempts(&w.app, &w.ctx, inv).await.unwrap().remove(0);
        assert_eq!(flagged.state, AttemptState::Refunded);
        let why = flagged.attention.expect("flagged for staff");
        assert!(why.contains("Refunded") && why.contains("open again"), "{why}");

        // The provider saying paid again afterwards is a contradiction for staff, not money.
        let e = gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "payment_state_conflict");
        assert_eq!(invoice(&w, inv).await.paid.amount_minor, 0);
        assert_eq!(reversals(&w, &a.reference).await, 1);

        // The reopened invoice can be paid again, by another attempt.
        w.clock.advance(chrono::Duration::minutes(5));
        let again = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), Some("again")).await.unwrap();
        assert_ne!(again.reference, a.reference);
        gateway_payments::apply(&w.app, GATEWAY, &update(&again.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap();
        assert_eq!(invoice(&w, inv).await.status, InvoiceStatus::Paid);
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn a_dispute_reverses_the_payment_and_a_refund_after_it_reverses_nothing_more(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        // Part paid by hand first, so the gateway's payment leaves 4.00 in the wallet.
        let inv = unpaid_invoice(&w, c, "o1").await;
        let a = gateway_payments::start(&w.app, &w.ctx, inv, &bank(), None).await.unwrap();
        cash(&w, inv, "4.00").await;
        gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(1000)))
            .await
            .unwrap();
        let wallet = |w: &World| {
            let (app, ctx) = (w.app.clone(), w.ctx.clone());
            async move { keel_app::wallets::list(&app, &ctx, c).await.unwrap().items[0].balance.amount_minor }
        };
        assert_eq!(wallet(&w).await, 400);

        assert_eq!(
            gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Disputed, None))
                .await
                .unwrap(),
            Applied::Moved(AttemptState::Disputed)
        );
        // The 6.00 the invoice took is owed again; the 4.00 the wallet took is gone from it;
        // the cash payment stands.
        let reopened = invoice(&w, inv).await;
        assert_eq!(reopened.status, InvoiceStatus::Unpaid);
        assert_eq!(reopened.paid.amount_minor, 400);
        assert_eq!(reopened.balance_due.amount_minor, 600);
        assert_eq!(wallet(&w).await, 0);
        let cash = reopened.payments.iter().find(|p| p.reference == "R1").unwrap();
        assert!(cash.reversed_at.is_none());

        // The dispute lost: the money was reversed already.
        assert_eq!(
            gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Refunded, None))
                .await
                .unwrap(),
            Applied::Moved(AttemptState::Refunded)
        );
        assert_eq!(invoice(&w, inv).await.balance_due.amount_minor, 600);
        assert_eq!(reversals(&w, &a.reference).await, 1);
        assert_books_clean(&w.app).await;
    }
);

store_test!(
    async fn a_refunded_top_up_already_spent_is_left_to_staff_with_nothing_changed(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let top = payments::top_up(
            &w.app,
            &client_key(c),
            &TopUpInput { client_id: None, amount: "25.00".into(), currency: None },
            Some("t1"),
        )
        .await
        .unwrap();
        let a = gateway_payments::start(&w.app, &client_key(c), top.id, &bank(), Some("t1"))
            .await
            .unwrap();
        gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Paid, Some(2500)))
            .await
            .unwrap();
        // The client spends 10.00 of it: the next order's invoice is paid from the wallet
        // as it is issued.
        let inv = unpaid_invoice(&w, c, "o1").await;
        assert_eq!(invoice(&w, inv).await.status, InvoiceStatus::Paid);

        let e = gateway_payments::apply(&w.app, GATEWAY, &update(&a.reference, PaymentStatus::Refunded, None))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "payment_reversal_refused");
        let flagged = gateway_payments::attempts(&w.app, &w.ctx, top.id).await.unwrap().remove(0);
        assert_eq!(flagged.state, AttemptState::Succeeded);
        let why = flagged.attention.expect("flagged for staff");
        assert!(why.contains("wallet holds 15.00"), "{why}");
        assert_eq!(reversals(&w, &a.reference).await, 0);
        assert_eq!(invoice(&w, top.id).await.status, InvoiceStatus::Paid);
        assert_eq!(invoice(&w, inv).await.status, InvoiceStatus::Paid);
        assert_books_clean(&w.app).await;
    }
);
