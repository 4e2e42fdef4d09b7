//! Manual ledger adjustments and reversals over HTTP on both engines: every refusal has its
//! own code and leaves balances, entries and the audit log untouched; an Idempotency-Key
//! makes a retry replay instead of posting twice; an entry is reversed once.

mod common;

use common::*;
use keel_domain::currency::Currency;
use keel_domain::ids::AccountId;
use keel_domain::ledger::Side::{Credit, Debit};
use serde_json::{Value, json};

const ENTRIES: &str = "/api/v1/ledger/entries";

/// Posts `body` as an adjustment and asserts the refusal, and that nothing changed.
async fn assert_adjustment_refused(
    api: &Api,
    body: &Value,
    idempotency_key: Option<&str>,
    (status, code, field): (u16, &str, Option<&str>),
) -> Reply {
    let before = api.snapshot().await;
    let reply = api.post(ENTRIES, &api.admin, body, idempotency_key).await;
    reply.assert_error(status, code, field);
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused adjustment changes nothing"
    );
    reply
}

/// Moves `amount` USD from the adjustments account into the wallet.
fn credit_wallet(w: &Wallet, amount: &str) -> Value {
    adjustment(
        "Goodwill credit",
        vec![
            posting(w.adjustments, Debit, amount, "USD"),
            posting(w.wallet, Credit, amount, "USD"),
        ],
    )
}

async fn balance(api: &Api, account: AccountId) -> i64 {
    let reply = api
        .get(&format!("/api/v1/ledger/accounts/{account}"), &api.admin)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["balance"]["amount_minor"].as_i64().unwrap()
}

keel_testkit::store_test!(
    async fn an_amount_with_too_many_decimals_is_422_naming_the_posting(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = credit_wallet(&w, "10.001");
        let expected = (422, "too_many_decimals", Some("postings[0].amount"));
        assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_posting_without_currency_is_422_missing_field_naming_it(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let mut body = credit_wallet(&w, "10.00");
        body["postings"][1].as_object_mut().unwrap().remove("currency");
        let expected = (422, "missing_field", Some("postings[1].currency"));
        assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn postings_in_two_currencies_are_422_unbalanced_entry(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let euros = api.seed_account("asset:test:EUR", Currency::EUR).await;
        let body = adjustment(
            "Currency mix-up",
            vec![
                posting(w.adjustments, Debit, "10.00", "USD"),
                posting(euros, Credit, "10.00", "EUR"),
            ],
        );
        let expected = (422, "unbalanced_entry", None);
        assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn debits_unequal_to_credits_are_422_unbalanced_entry(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = adjustment(
            "Fat finger",
            vec![
                posting(w.adjustments, Debit, "10.00", "USD"),
                posting(w.wallet, Credit, "9.00", "USD"),
            ],
        );
        let expected = (422, "unbalanced_entry", None);
        assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_account_is_404_account_not_found(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = adjustment(
            "To nowhere",
            vec![
                posting(w.adjustments, Debit, "10.00", "USD"),
                posting(AccountId(999_999), Credit, "10.00", "USD"),
            ],
        );
        let expected = (404, "account_not_found", None);
        assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_amount_beyond_i64_minor_units_is_refused_as_overflow(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = credit_wallet(&w, "92233720368547758.08");
        let before = api.snapshot().await;
        let reply = api.post(ENTRIES, &api.admin, &body, Some("adj-1")).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        // i64::MAX + 1 cents: the parser's own overflow check, not a vague "invalid".
        assert_eq!(reply.code(), "amount_overflow", "{}", reply.text);
        assert_eq!(reply.field(), Some("postings[0].amount"));
        assert_eq!(api.snapshot().await, before);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_adjustment_without_idempotency_key_is_400(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = credit_wallet(&w, "10.00");
        let expected = (400, "idempotency_key_required", None);
        assert_adjustment_refused(&api, &body, None, expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_debit_below_a_wallets_floor_is_409_insufficient_wallet_balance_as_on_the_wallet_routes(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = adjustment(
            "Spend more than there is",
            vec![
                posting(w.wallet, Debit, "60.00", "USD"),
                posting(w.adjustments, Credit, "60.00", "USD"),
            ],
        );
        let expected = (409, "insufficient_wallet_balance", None);
        let reply = assert_adjustment_refused(&api, &body, Some("adj-1"), expected).await;
        let details = &reply.body["error"]["details"];
        assert_eq!(details["account_id"], json!(w.wallet));
        assert_eq!(details["available_minor"], 5000);
        assert_eq!(details["requested_minor"], 6000);
        assert_eq!(balance(&api, w.wallet).await, 5000);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_retry_with_the_same_key_replays_and_posts_nothing_more(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let body = credit_wallet(&w, "10.00");

        let first = api.post(ENTRIES, &api.admin, &body, Some("adj-1")).await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert_eq!(first.header("idempotent-replayed"), None);
        let after_first = api.snapshot().await;
        assert_eq!(balance(&api, w.wallet).await, 6000);

        let retry = api.post(ENTRIES, &api.admin, &body, Some("adj-1")).await;
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(retry.body, first.body, "the original answer, word for word");
        assert_eq!(api.snapshot().await, after_first, "nothing posted twice");

        let other = credit_wallet(&w, "11.00");
        let expected = (422, "idempotency_key_reused", None);
        assert_adjustment_refused(&api, &other, Some("adj-1"), expected).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_entry_is_reversed_once_and_a_second_reversal_is_409(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;
        let before = api.snapshot().await;
        let entry = api
            .post(ENTRIES, &api.admin, &credit_wallet(&w, "10.00"), Some("adj-1"))
            .await;
        assert_eq!(entry.status, 201, "{}", entry.text);
        let reverse = format!("{ENTRIES}/{}/reverse", entry.id());
        let reason = json!({ "reason": "credited the wrong client" });

        let reversal = api.post(&reverse, &api.admin, &reason, Some("rev-1")).await;
        assert_eq!(reversal.status, 201, "{}", reversal.text);
        assert_eq!(reversal.body["reverses"], entry.id());
        let reversed = api.snapshot().await;
        assert_eq!(reversed.balances, before.balances, "the money is back");
        assert_eq!(reversed.entries, before.entries + 2);

        let again = api.post(&reverse, &api.admin, &reason, Some("rev-2")).await;
        again.assert_error(409, "already_reversed", None);
        assert_eq!(api.snapshot().await, reversed);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    /// Found by the OpenAPI contract test: a manual entry to tax payable (or the reversal
    /// of an invoice's entry) left `keel ledger check` reporting tax payable against the
    /// documents' tax. Receivables and tax payable move only with their documents.
    async fn receivables_and_tax_payable_move_only_with_their_documents(t) {
        let api = Api::start(t).await;
        let client = api.seed_client("ada@example.com").await;
        let (starter, _) = hosting_catalog(&api.app).await;
        let order = api
            .post(
                "/api/v1/orders",
                &api.admin,
                &json!({ "client_id": client.id.get(), "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }),
                Some("order-1"),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        let accounts = api.all_items("/api/v1/ledger/accounts").await;
        let account = |prefix: &str| {
            accounts
                .iter()
                .find(|a| a["code"].as_str().is_some_and(|c| c.starts_with(prefix)))
                .map(|a| AccountId(a["id"].as_i64().unwrap()))
                .unwrap_or_else(|| panic!("no {prefix} account in {accounts:?}"))
        };
        let (tax, receivable) = (account("liability:tax:"), account("asset:receivable:"));
        let adjustments = api.seed_account("equity:adjustments:USD", Currency::USD).await;
        for (target, key) in [(tax, "to-tax"), (receivable, "to-receivable")] {
            let body = adjustment(
                "Make the tax go away",
                vec![
                    posting(target, Debit, "1.00", "USD"),
                    posting(adjustments, Credit, "1.00", "USD"),
                ],
            );
            let reply = assert_adjustment_refused(&api, &body, Some(key), (409, "control_account", None)).await;
            assert!(reply.text.contains("credit note"), "{}", reply.text);
        }
        // The invoice's own entry cannot be reversed by hand either.
        let entries = api.all_items(&format!("{ENTRIES}?account_id={}", receivable.get())).await;
        let issued = entries[0]["id"].as_i64().expect("the invoice's entry");
        let before = api.snapshot().await;
        api.post(
            &format!("{ENTRIES}/{issued}/reverse"),
            &api.admin,
            &json!({ "reason": "undo the invoice" }),
            Some("rev-1"),
        )
        .await
        .assert_error(409, "control_account", None);
        assert_eq!(api.snapshot().await, before, "a refused reversal changes nothing");
        // An entry that does not exist is still named as such.
        api.post(&format!("{ENTRIES}/999999/reverse"), &api.admin, &json!({ "reason": "undo" }), Some("rev-2"))
            .await
            .assert_error(404, "entry_not_found", None);
        api.stop().await;
    }
);
