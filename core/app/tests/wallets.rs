//! Wallets through the use cases, on both engines: staff credits and debits, the history
//! read from the ledger's postings, credit limits, every refusal leaving the books as they
//! were, tenancy for client and reseller keys, and no negative balance when sixteen tasks
//! spend from one wallet at once. Every test ends with the trial-balance check.

use chrono::{TimeZone, Utc};
use keel_app::invoices;
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::payments::{self, WalletPayInput};
use keel_app::wallets::{self, CreditLimitInput, WalletMoveInput, WalletView};
use keel_app::{App, AppError, Ctx, FixedClock};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::access::Actor;
use keel_domain::ids::{ApiKeyId, ClientId, InvoiceId, ProductId, ResellerId};
use keel_domain::ledger::{LedgerError, Side};
use keel_domain::tenancy::Scope;
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::{TestDb, store_test};
use std::sync::Arc;

fn usd() -> Currency {
    Currency::USD
}

struct World {
    app: App,
    ctx: Ctx,
    /// "Plan" at 10.00 USD a month, untaxed, no setup fee.
    product: ProductId,
}

async fn world(t: &TestDb) -> World {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let app = App::with_clock(t.db.clone(), clock);
    let built = Scenario::new(&app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .build()
        .await;
    World {
        app,
        ctx: Ctx::system("test"),
        product: built.product("Plan"),
    }
}

fn rudo(email: &str) -> Client {
    Client::new(email).name("Rudo", "Chikwanha")
}

async fn client(w: &World, email: &str) -> ClientId {
    Scenario::new(&w.app)
        .client(rudo(email))
        .build()
        .await
        .client(email)
}

/// A client key's context (what `keel_app::access::authenticate` makes of one).
fn client_key(c: ClientId) -> Ctx {
    Ctx::new(Actor::Key {
        key: ApiKeyId(0),
        label: "client key".into(),
        scope: Scope::Client(c),
        role: None,
        staff: None,
    })
}

fn reseller_key(r: ResellerId) -> Ctx {
    Ctx::new(Actor::Key {
        key: ApiKeyId(0),
        label: "reseller key".into(),
        scope: Scope::Reseller(r),
        role: None,
        staff: None,
    })
}

fn money(amount: &str, reason: &str) -> WalletMoveInput {
    WalletMoveInput {
        amount: amount.into(),
        reason: reason.into(),
    }
}

fn limit(amount: &str) -> CreditLimitInput {
    CreditLimitInput {
        credit_limit: amount.into(),
    }
}

async fn usd_wallet(w: &World, c: ClientId) -> WalletView {
    wallets::list(&w.app, &w.ctx, c)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|v| v.currency == usd())
        .expect("a USD wallet")
}

/// What a refused request must leave exactly as it was: every account's balance and
/// credit limit, the number of entries and postings, the number of audit rows.
#[derive(Debug, PartialEq, Eq)]
struct Books {
    accounts: Vec<(i64, i64, Option<i64>)>,
    entries: u64,
    postings: u64,
    audit_rows: u64,
}

async fn books(app: &App) -> Books {
    let report = keel_store::ledger::check(&app.db).await.unwrap();
    let accounts = keel_store::ledger::list_accounts(&app.db, Default::default(), None, 1000)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| (a.id.get(), a.balance_minor, a.credit_limit_minor))
        .collect();
    Books {
        accounts,
        entries: report.entries,
        postings: report.postings,
        audit_rows: keel_store::audit::verify(&app.db).await.unwrap().rows,
    }
}

/// The machine-readable code of a refusal.
fn code(e: &AppError) -> &'static str {
    match e {
        AppError::Invalid { code, .. } | AppError::Conflict { code, .. } => code,
        AppError::InvalidText { .. } => "invalid_text",
        AppError::NotFound { .. } => "not_found",
        AppError::Forbidden { .. } => "forbidden",
        AppError::Ledger(l) => l.code(),
        other => panic!("unexpected error {other:?}"),
    }
}

fn order_of(c: ClientId, product: ProductId, key: &str) -> (OrderInput, String) {
    (
        OrderInput {
            client_id: Some(c.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: product.get(),
                cycle: "monthly".into(),
                options: vec![],
                label: Some(format!("site-{key}.example")),
                addons: vec![],
            }],
        },
        key.to_string(),
    )
}

async fn unpaid_invoice(w: &World, c: ClientId, key: &str) -> InvoiceId {
    let (input, key) = order_of(c, w.product, key);
    let order = orders::place(&w.app, &w.ctx, &input, Some(&key))
        .await
        .unwrap();
    assert_eq!(order.invoice.total.amount_minor, 1000);
    assert_eq!(order.invoice.paid.amount_minor, 0, "the wallet was empty");
    order.invoice.id
}

store_test!(
    async fn staff_credits_and_debits_show_in_the_wallet_and_its_history_newest_first(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.co.zw").await;
        assert!(wallets::list(&w.app, &w.ctx, c).await.unwrap().items.is_empty());
        // An invoice issued while the wallet is empty (so nothing auto-applies), paid later.
        let invoice = unpaid_invoice(&w, c, "o-1").await;

        let (credit, created) = wallets::credit(&w.app, &w.ctx, "k-1", c, "USD", &money("100.00", "Opening credit")).await.unwrap();
        assert!(created);
        assert_eq!(credit.wallet.balance.amount, "100.00");
        assert_eq!(credit.entry.memo, "Opening credit");
        let (debit, _) = wallets::debit(&w.app, &w.ctx, "k-2", c, "usd", &money("30.00", "Domain renewal")).await.unwrap();
        assert_eq!(debit.wallet.balance.amount_minor, 7000);

        // A retry under the same key replays the entry: no second credit.
        let (again, created) = wallets::credit(&w.app, &w.ctx, "k-1", c, "USD", &money("100.00", "Opening credit")).await.unwrap();
        assert!(!created);
        assert_eq!(again.entry.id, credit.entry.id);
        assert_eq!(again.wallet.balance.amount_minor, 7000);
        // The same key for another move is refused, naming what differs.
        let err = wallets::credit(&w.app, &w.ctx, "k-1", c, "USD", &money("99.00", "Opening credit")).await.unwrap_err();
        assert!(matches!(&err, AppError::Ledger(LedgerError::KeyReused { .. })), "{err:?}");

        // A wallet payment of an invoice shows in the history too.
        payments::pay_with_wallet(&w.app, &w.ctx, invoice, &WalletPayInput { amount: Some("10.00".into()) }, None).await.unwrap();

        let view = usd_wallet(&w, c).await;
        assert_eq!(view.balance.amount, "60.00");
        assert_eq!(view.credit_limit.as_ref().unwrap().amount_minor, 0);
        assert_eq!(view.available.as_ref().unwrap().amount, "60.00");

        let history = wallets::history(&w.app, &w.ctx, c, "USD", None, None).await.unwrap();
        let rows: Vec<(Side, i64, i64)> = history
            .items
            .iter()
            .map(|p| (p.side, p.amount.amount_minor, p.balance_after.amount_minor))
            .collect();
        assert_eq!(rows, vec![
            (Side::Debit, 1000, 6000),
            (Side::Debit, 3000, 7000),
            (Side::Credit, 10_000, 10_000),
        ]);
        assert!(history.items[0].memo.starts_with("Wallet payment of invoice"), "{}", history.items[0].memo);
        assert_eq!(history.items[1].memo, "Domain renewal");
        assert_eq!(history.next_cursor, None);

        // Paged one entry at a time, the pages join up to the same history.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = wallets::history(&w.app, &w.ctx, c, "USD", cursor.as_deref(), Some(1)).await.unwrap();
            assert!(page.items.len() <= 1);
            paged.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, history.items);

        // A currency the client never used is an empty history, not an error.
        let empty = wallets::history(&w.app, &w.ctx, c, "ZWG", None, None).await.unwrap();
        assert!(empty.items.is_empty());
    }
);

store_test!(
    async fn a_credit_limit_lets_a_wallet_go_below_zero_but_not_below_what_it_has_spent(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.co.zw").await;
        wallets::credit(&w.app, &w.ctx, "k-1", c, "USD", &money("30.00", "Opening credit")).await.unwrap();
        let err = wallets::debit(&w.app, &w.ctx, "k-2", c, "USD", &money("80.00", "Big spend")).await.unwrap_err();
        assert_eq!(code(&err), "insufficient_wallet_balance", "{err}");

        let v = wallets::set_credit_limit(&w.app, &w.ctx, c, "USD", &limit("50.00")).await.unwrap();
        assert_eq!((v.balance.amount_minor, v.credit_limit.unwrap().amount_minor, v.available.unwrap().amount_minor), (3000, 5000, 8000));
        let (spent, _) = wallets::debit(&w.app, &w.ctx, "k-3", c, "USD", &money("80.00", "Big spend")).await.unwrap();
        assert_eq!(spent.wallet.balance.amount, "-50.00");
        assert_eq!(spent.wallet.available.as_ref().unwrap().amount_minor, 0);

        // 50.00 is spent on credit: a lower limit is refused and nothing changes.
        let before = books(&w.app).await;
        let err = wallets::set_credit_limit(&w.app, &w.ctx, c, "USD", &limit("20.00")).await.unwrap_err();
        assert_eq!(code(&err), "credit_limit_below_spent", "{err}");
        assert!(err.to_string().contains("50.00"), "{err}");
        assert_eq!(books(&w.app).await, before);

        // Exactly what is spent is fine; after a credit the limit can go back to 0.
        wallets::set_credit_limit(&w.app, &w.ctx, c, "USD", &limit("50")).await.unwrap();
        wallets::credit(&w.app, &w.ctx, "k-4", c, "USD", &money("50.00", "Paid back")).await.unwrap();
        let v = wallets::set_credit_limit(&w.app, &w.ctx, c, "USD", &limit("0")).await.unwrap();
        assert_eq!((v.balance.amount_minor, v.available.unwrap().amount_minor), (0, 0));

        // A limit for a currency not used yet opens that wallet.
        let zwg = wallets::set_credit_limit(&w.app, &w.ctx, c, "ZWG", &limit("100.00")).await.unwrap();
        assert_eq!(zwg.available.unwrap().amount, "100.00");
        assert_eq!(wallets::list(&w.app, &w.ctx, c).await.unwrap().items.len(), 2);
    }
);

store_test!(
    async fn bad_wallet_requests_are_refused_and_change_nothing(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.co.zw").await;
        wallets::credit(&w.app, &w.ctx, "seed", c, "USD", &money("20.00", "Opening credit")).await.unwrap();
        wallets::set_credit_limit(&w.app, &w.ctx, c, "USD", &limit("5.00")).await.unwrap();
        let before = books(&w.app).await;

        // (currency, amount, reason, what it is, expected code); each tried as credit and debit.
        let moves: &[(&str, &str, &str, &str)] = &[
            ("XYZ", "10.00", "r", "unknown_currency"),
            ("US", "10.00", "r", "unknown_currency"),
            ("USD", "ten", "r", "invalid_amount"),
            ("USD", "1,0", "r", "invalid_amount"),
            ("USD", "", "r", "invalid_amount"),
            ("USD", "10.001", "r", "too_many_decimals"),
            ("JPY", "10.5", "r", "too_many_decimals"),
            ("USD", "0", "r", "invalid_amount"),
            ("USD", "0.00", "r", "invalid_amount"),
            ("USD", "-5.00", "r", "invalid_amount"),
            ("USD", "99999999999999999999", "r", "amount_overflow"),
            ("USD", "10.00", "", "invalid_text"),
            ("USD", "10.00", "   ", "invalid_text"),
        ];
        for (i, (currency, amount, reason, expected)) in moves.iter().enumerate() {
            let input = money(amount, reason);
            let err = wallets::credit(&w.app, &w.ctx, &format!("c-{i}"), c, currency, &input).await.unwrap_err();
            assert_eq!(code(&err), *expected, "credit {currency} {amount:?} {reason:?}: {err}");
            let err = wallets::debit(&w.app, &w.ctx, &format!("d-{i}"), c, currency, &input).await.unwrap_err();
            assert_eq!(code(&err), *expected, "debit {currency} {amount:?} {reason:?}: {err}");
        }
        let long = "x".repeat(keel_app::MAX_REASON_CHARS + 1);
        let err = wallets::credit(&w.app, &w.ctx, "c-long", c, "USD", &money("1.00", &long)).await.unwrap_err();
        assert_eq!(code(&err), "invalid_text");

        // Beyond balance + credit limit (20.00 + 5.00): refused, whole.
        let err = wallets::debit(&w.app, &w.ctx, "d-big", c, "USD", &money("25.01", "Too much")).await.unwrap_err();
        assert_eq!(code(&err), "insufficient_wallet_balance", "{err}");
        assert!(err.to_string().contains("25.00"), "names what is available: {err}");
        // Another currency's wallet holds nothing.
        let err = wallets::debit(&w.app, &w.ctx, "d-zwg", c, "ZWG", &money("1.00", "Nothing there")).await.unwrap_err();
        assert_eq!(code(&err), "insufficient_wallet_balance", "{err}");
        // No key, no move.
        let err = wallets::credit(&w.app, &w.ctx, " ", c, "USD", &money("1.00", "r")).await.unwrap_err();
        assert_eq!(code(&err), "invalid_idempotency_key");
        // An unknown client.
        let err = wallets::credit(&w.app, &w.ctx, "c-x", ClientId(999_999), "USD", &money("1.00", "r")).await.unwrap_err();
        assert_eq!(code(&err), "not_found");

        // Limits: negative, malformed, too precise, unknown currency.
        for (currency, amount, expected) in [
            ("USD", "-1.00", "invalid_credit_limit"),
            ("USD", "lots", "invalid_amount"),
            ("USD", "1.005", "too_many_decimals"),
            ("ABC", "1.00", "unknown_currency"),
        ] {
            let err = wallets::set_credit_limit(&w.app, &w.ctx, c, currency, &limit(amount)).await.unwrap_err();
            assert_eq!(code(&err), expected, "limit {currency} {amount}: {err}");
        }
        // Reads refuse a bad currency or cursor too.
        let err = wallets::history(&w.app, &w.ctx, c, "XYZ", None, None).await.unwrap_err();
        assert_eq!(code(&err), "unknown_currency");
        let err = wallets::history(&w.app, &w.ctx, c, "USD", Some("nope"), None).await.unwrap_err();
        assert_eq!(code(&err), "invalid_cursor");

        // ZWG's wallet was not even opened by the refused debit.
        assert_eq!(books(&w.app).await, before, "nothing changed");
        assert_eq!(usd_wallet(&w, c).await.balance.amount_minor, 2000);
    }
);

store_test!(
    async fn client_and_reseller_keys_read_their_own_wallets_only_and_move_no_money(t) {
        let w = world(t).await;
        let mine = client(&w, "rudo@example.co.zw").await;
        let theirs = client(&w, "tendai@example.co.zw").await;
        for c in [mine, theirs] {
            wallets::credit(&w.app, &w.ctx, &format!("seed-{c}"), c, "USD", &money("10.00", "Opening credit")).await.unwrap();
        }
        let me = client_key(mine);
        let own = wallets::list(&w.app, &me, mine).await.unwrap();
        assert_eq!(own.items[0].balance.amount, "10.00");
        assert_eq!(wallets::history(&w.app, &me, mine, "USD", None, None).await.unwrap().items.len(), 1);
        // Another client's wallets do not exist for this key (404, never 403).
        let err = wallets::list(&w.app, &me, theirs).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { what: "client" }), "{err:?}");
        let err = wallets::history(&w.app, &me, theirs, "USD", None, None).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { what: "client" }), "{err:?}");
        // Nor does a client key credit, debit or set a limit, even on its own wallet.
        let before = books(&w.app).await;
        for result in [
            wallets::credit(&w.app, &me, "x-1", mine, "USD", &money("5.00", "Free money")).await.map(|_| ()),
            wallets::debit(&w.app, &me, "x-2", mine, "USD", &money("5.00", "Spend")).await.map(|_| ()),
            wallets::set_credit_limit(&w.app, &me, mine, "USD", &limit("100.00")).await.map(|_| ()),
        ] {
            assert!(matches!(result, Err(AppError::Forbidden { .. })), "{result:?}");
        }
        assert_eq!(books(&w.app).await, before);

        // A reseller sees its own clients' wallets, not the host's clients'.
        let mut tx = w.app.db.begin().await.unwrap();
        let reseller = keel_store::clients::create_reseller(&mut tx, "Falls Resellers", w.app.now()).await.unwrap();
        tx.commit().await.unwrap();
        let rctx = reseller_key(reseller);
        let rclient = Scenario::new(&w.app).acting(rctx.clone()).client(rudo("farai@example.co.zw")).build().await.client("farai@example.co.zw");
        assert!(wallets::list(&w.app, &rctx, rclient).await.unwrap().items.is_empty());
        let err = wallets::list(&w.app, &rctx, mine).await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    }
);

store_test!(
    async fn a_retry_through_wallet_adjust_or_the_wallet_use_case_replays_one_entry(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.co.zw").await;
        let first = keel_app::ledger::wallet_adjust(&w.app, &w.ctx, "same-key", c, Money::new(2500, usd()), "Goodwill").await.unwrap();
        let (again, created) = wallets::credit(&w.app, &w.ctx, "same-key", c, "USD", &money("25.00", "Goodwill")).await.unwrap();
        assert!(!created);
        assert_eq!(again.entry.id, first.entry.id);
        assert_eq!(again.wallet.balance.amount_minor, 2500);
    }
);

store_test!(
    async fn sixteen_concurrent_spenders_of_one_wallet_never_take_it_below_zero(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.co.zw").await;
        // Eight unpaid 10.00 invoices, issued while the wallet is empty (so nothing auto-applies).
        let mut invoices_to_pay = Vec::new();
        for i in 0..8 {
            invoices_to_pay.push(unpaid_invoice(&w, c, &format!("o-{i}")).await);
        }
        wallets::credit(&w.app, &w.ctx, "fund", c, "USD", &money("100.00", "Opening credit")).await.unwrap();
        assert_eq!(usd_wallet(&w, c).await.available.unwrap().amount_minor, 10_000);

        // Sixteen tasks start together: eight staff debits, eight wallet payments, 10.00 each.
        // On PostgreSQL they run on separate pooled connections, in parallel.
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (app, start) = (w.app.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let ctx = Ctx::system("spender");
                let r = wallets::debit(&app, &ctx, &format!("spend-{i}"), c, "USD", &money("10.00", "Spend")).await;
                ("debit", r.map(|_| ()))
            }));
        }
        for invoice in invoices_to_pay.iter().copied() {
            let (app, start) = (w.app.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let ctx = Ctx::system("payer");
                let r = payments::pay_with_wallet(&app, &ctx, invoice, &WalletPayInput { amount: Some("10.00".into()) }, None).await;
                ("payment", r.map(|_| ()))
            }));
        }
        let mut succeeded = 0;
        let mut refused = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (_, Ok(())) => succeeded += 1,
                (kind, Err(e)) => refused.push((kind, code(&e))),
            }
        }
        assert_eq!(succeeded, 10, "refused: {refused:?}");
        assert_eq!(refused.len(), 6);
        for (kind, code) in &refused {
            // A payment that loses the race after its own balance check is refused by the
            // ledger's floor; `pay_with_wallet` names that the same way as its own check.
            assert_eq!(*code, "insufficient_wallet_balance", "{kind}: {refused:?}");
        }
        let wallet = usd_wallet(&w, c).await;
        assert_eq!(wallet.balance.amount_minor, 0, "exactly empty, never below");
        assert_eq!(wallet.available.unwrap().amount_minor, 0);

        // Every successful spend is one 10.00 posting out of the wallet; the history adds up.
        let history = wallets::history(&w.app, &w.ctx, c, "USD", None, Some(200)).await.unwrap();
        let spends = history.items.iter().filter(|p| p.side == Side::Debit).count();
        assert_eq!(spends, 10);
        assert_eq!(history.items[0].balance_after.amount_minor, 0);
        let mut paid = 0;
        for id in &invoices_to_pay {
            paid += invoices::get(&w.app, &w.ctx, *id).await.unwrap().paid.amount_minor;
        }
        let debits = refused.iter().filter(|(k, _)| *k == "debit").count();
        assert_eq!(paid + (8 - debits as i64) * 1000, 10_000);
        keel_testkit::assert_ledger_balanced(&w.app.db).await;
    }
);
