//! `/api/v1/clients/{id}/wallets` over HTTP on both engines: balances, history, staff
//! credits and debits under an Idempotency-Key, credit limits, every bad request refused with
//! its own code and changing nothing, tenancy for client and reseller keys, and sixteen
//! parallel debits of one wallet against a running server leaving it at exactly zero.

mod common;

use common::*;
use keel_app::access::NewKey;
use keel_domain::access::KeyScope;
use keel_domain::ids::ClientId;
use reqwest::Method;
use serde_json::{Value, json};

fn wallets(client: ClientId) -> String {
    format!("/api/v1/clients/{client}/wallets")
}

fn wallet(client: ClientId, currency: &str, what: &str) -> String {
    format!("/api/v1/clients/{client}/wallets/{currency}/{what}")
}

fn move_body(amount: &str, reason: &str) -> Value {
    json!({ "amount": amount, "reason": reason })
}

async fn put_limit(api: &Api, client: ClientId, currency: &str, body: &Value) -> Reply {
    api.send(
        api.authed(
            Method::PUT,
            &wallet(client, currency, "credit-limit"),
            &api.admin,
        )
        .json(body),
    )
    .await
}

/// The USD wallet as the admin reads it.
async fn usd(api: &Api, client: ClientId) -> Value {
    let reply = api.get(&wallets(client), &api.admin).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["currency"] == "USD")
        .cloned()
        .expect("a USD wallet")
}

/// A key for one client, as `keel keys create --scope client` makes it.
async fn client_key(api: &Api, client: ClientId) -> String {
    keel_app::access::create_key(
        &api.app,
        &system(),
        NewKey {
            name: format!("client {client}"),
            scope: KeyScope::Client,
            reseller_id: None,
            client_id: Some(client),
            staff_id: None,
        },
    )
    .await
    .expect("client key")
    .secret
}

keel_testkit::store_test!(
    async fn staff_credit_debit_history_and_credit_limit_over_http(t) {
        let api = Api::start(t).await;
        let c = api.seed_client("rudo@example.co.zw").await.id;
        let empty = api.get(&wallets(c), &api.admin).await;
        assert_eq!((empty.status, &empty.body["items"]), (200, &json!([])), "{}", empty.text);

        let credit = api.post(&wallet(c, "USD", "credit"), &api.admin, &move_body("100.00", "Opening credit"), Some("cr-1")).await;
        assert_eq!(credit.status, 201, "{}", credit.text);
        assert_eq!(credit.body["wallet"]["balance"]["amount"], "100.00");
        assert_eq!(credit.body["entry"]["memo"], "Opening credit");
        // The retry is replayed: same answer, no second credit.
        let retry = api.post(&wallet(c, "USD", "credit"), &api.admin, &move_body("100.00", "Opening credit"), Some("cr-1")).await;
        assert_eq!(retry.status, 201);
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(retry.body["entry"]["id"], credit.body["entry"]["id"]);

        let debit = api.post(&wallet(c, "usd", "debit"), &api.admin, &move_body("30.00", "Domain renewal"), Some("db-1")).await;
        assert_eq!(debit.status, 201, "{}", debit.text);
        assert_eq!(debit.body["wallet"]["balance"]["amount_minor"], 7000);

        let w = usd(&api, c).await;
        assert_eq!((&w["balance"]["amount"], &w["credit_limit"]["amount"], &w["available"]["amount"]), (&json!("70.00"), &json!("0.00"), &json!("70.00")));

        let history = api.get(&wallet(c, "USD", "history"), &api.admin).await;
        assert_eq!(history.status, 200, "{}", history.text);
        let rows: Vec<(String, String, String, String)> = history.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (
                p["side"].as_str().unwrap().to_string(),
                p["amount"]["amount"].as_str().unwrap().to_string(),
                p["balance_after"]["amount"].as_str().unwrap().to_string(),
                p["memo"].as_str().unwrap().to_string(),
            ))
            .collect();
        let row = |s: &str, a: &str, b: &str, m: &str| (s.to_string(), a.to_string(), b.to_string(), m.to_string());
        assert_eq!(rows, vec![
            row("debit", "30.00", "70.00", "Domain renewal"),
            row("credit", "100.00", "100.00", "Opening credit"),
        ]);
        let first = api.get(&format!("{}?limit=1", wallet(c, "USD", "history")), &api.admin).await;
        let cursor = first.body["next_cursor"].as_str().expect("a second page").to_string();
        let second = api.get(&format!("{}?limit=1&cursor={cursor}", wallet(c, "USD", "history")), &api.admin).await;
        assert_eq!(second.body["items"][0]["memo"], "Opening credit");
        assert!(second.body["next_cursor"].is_null());

        // A limit lets the wallet go below zero; a lower one than what is spent is refused.
        let limit = put_limit(&api, c, "USD", &json!({ "credit_limit": "50.00" })).await;
        assert_eq!(limit.status, 200, "{}", limit.text);
        assert_eq!(limit.body["available"]["amount"], "120.00");
        let spend = api.post(&wallet(c, "USD", "debit"), &api.admin, &move_body("100.00", "Server upgrade"), Some("db-2")).await;
        assert_eq!(spend.status, 201, "{}", spend.text);
        assert_eq!(spend.body["wallet"]["balance"]["amount"], "-30.00");
        let before = api.snapshot().await;
        put_limit(&api, c, "USD", &json!({ "credit_limit": "29.99" }))
            .await
            .assert_error(409, "credit_limit_below_spent", None);
        assert_eq!(api.snapshot().await, before);
        assert_eq!(usd(&api, c).await["credit_limit"]["amount"], "50.00");
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn bad_wallet_requests_are_refused_with_their_codes_and_change_nothing(t) {
        let api = Api::start(t).await;
        let c = api.seed_wallet("rudo@example.co.zw", 2000).await.client;
        let before = api.snapshot().await;
        let wallet_before = usd(&api, c).await;

        // (currency, body, status, code, field); each sent as a credit and as a debit.
        let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
            ("XYZ", move_body("10.00", "r"), 422, "unknown_currency", Some("currency")),
            ("USD", move_body("ten", "r"), 422, "invalid_amount", Some("amount")),
            ("USD", move_body("10.001", "r"), 422, "too_many_decimals", Some("amount")),
            ("JPY", move_body("10.5", "r"), 422, "too_many_decimals", Some("amount")),
            ("USD", move_body("0.00", "r"), 422, "invalid_amount", Some("amount")),
            ("USD", move_body("-5.00", "r"), 422, "invalid_amount", Some("amount")),
            ("USD", move_body("10.00", " "), 422, "invalid_text", Some("reason")),
            ("USD", json!({ "amount": "10.00" }), 422, "missing_field", Some("reason")),
            ("USD", json!({ "amount": 10, "reason": "r" }), 422, "wrong_type", Some("amount")),
            ("USD", json!({ "amount": "1.00", "reason": "r", "extra": 1 }), 422, "unknown_field", None),
        ];
        for (i, (currency, body, status, code, field)) in cases.iter().enumerate() {
            for what in ["credit", "debit"] {
                let reply = api.post(&wallet(c, currency, what), &api.admin, body, Some(&format!("{what}-{i}"))).await;
                reply.assert_error(*status, code, *field);
            }
        }
        // Beyond balance + limit: 409, and the answer says what is available.
        let reply = api.post(&wallet(c, "USD", "debit"), &api.admin, &move_body("20.01", "Too much"), Some("big")).await;
        reply.assert_error(409, "insufficient_wallet_balance", None);
        assert!(reply.body["error"]["message"].as_str().unwrap().contains("20.00"), "{}", reply.text);
        // No Idempotency-Key: money does not move.
        api.post(&wallet(c, "USD", "credit"), &api.admin, &move_body("1.00", "r"), None)
            .await
            .assert_error(400, "idempotency_key_required", None);
        // Unknown client; a path that is not a client id.
        api.post(&wallet(ClientId(999_999), "USD", "credit"), &api.admin, &move_body("1.00", "r"), Some("nobody"))
            .await
            .assert_error(404, "not_found", None);
        api.get("/api/v1/clients/abc/wallets", &api.admin).await.assert_error(404, "not_found", None);
        // Limits: negative, malformed, unknown currency.
        put_limit(&api, c, "USD", &json!({ "credit_limit": "-1" })).await.assert_error(422, "invalid_credit_limit", Some("credit_limit"));
        put_limit(&api, c, "USD", &json!({ "credit_limit": "1.001" })).await.assert_error(422, "too_many_decimals", Some("credit_limit"));
        put_limit(&api, c, "XYZ", &json!({ "credit_limit": "1" })).await.assert_error(422, "unknown_currency", Some("currency"));
        api.get(&wallet(c, "XYZ", "history"), &api.admin).await.assert_error(422, "unknown_currency", Some("currency"));

        assert_eq!(api.snapshot().await, before, "nothing changed");
        assert_eq!(usd(&api, c).await, wallet_before);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_client_key_reads_only_its_own_wallets_and_anothers_are_404(t) {
        let api = Api::start(t).await;
        let mine = api.seed_wallet("rudo@example.co.zw", 1500).await.client;
        let theirs = api.seed_wallet("tendai@example.co.zw", 900).await.client;
        let key = client_key(&api, mine).await;

        let own = api.get(&wallets(mine), &key).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert_eq!(own.body["items"][0]["balance"]["amount"], "15.00");
        let history = api.get(&wallet(mine, "USD", "history"), &key).await;
        assert_eq!(history.body["items"].as_array().unwrap().len(), 1, "{}", history.text);

        api.get(&wallets(theirs), &key).await.assert_error(404, "not_found", None);
        api.get(&wallet(theirs, "USD", "history"), &key).await.assert_error(404, "not_found", None);
        // Moving money is staff work, whoever's wallet it is.
        let before = api.snapshot().await;
        api.post(&wallet(mine, "USD", "credit"), &key, &move_body("5.00", "Free money"), Some("x-1"))
            .await
            .assert_error(403, "forbidden", None);
        api.post(&wallet(theirs, "USD", "debit"), &key, &move_body("5.00", "Theft"), Some("x-2"))
            .await
            .assert_error(403, "forbidden", None);
        assert_eq!(api.snapshot().await, before);

        // The reseller's key does not reach the host's clients either.
        api.get(&wallets(mine), &api.reseller_key).await.assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn sixteen_parallel_http_debits_of_one_wallet_leave_exactly_zero(t) {
        let api = Api::start(t).await;
        let c = api.seed_wallet("rudo@example.co.zw", 10_000).await.client;
        let http = reqwest::Client::new();
        let url = api.url(&wallet(c, "USD", "debit"));
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let mut requests = Vec::new();
        for i in 0..16 {
            let (http, url, key, start) = (http.clone(), url.clone(), api.admin.clone(), start.clone());
            requests.push(tokio::spawn(async move {
                start.wait().await;
                let res = http
                    .post(url)
                    .bearer_auth(key)
                    .header("idempotency-key", format!("spend-{i}"))
                    .json(&move_body("10.00", "Spend"))
                    .send()
                    .await
                    .expect("the server answers");
                let status = res.status().as_u16();
                let body: Value = res.json().await.expect("a JSON answer");
                (status, body["error"]["code"].as_str().unwrap_or("").to_string())
            }));
        }
        let mut answers = Vec::new();
        for r in requests {
            answers.push(r.await.unwrap());
        }
        let created = answers.iter().filter(|(s, _)| *s == 201).count();
        let refused = answers
            .iter()
            .filter(|(s, code)| *s == 409 && code == "insufficient_wallet_balance")
            .count();
        assert_eq!((created, refused), (10, 6), "{answers:?}");
        let w = usd(&api, c).await;
        assert_eq!(w["balance"]["amount_minor"], 0);
        assert_eq!(w["available"]["amount_minor"], 0);
        let history = api.get(&format!("{}?limit=200", wallet(c, "USD", "history")), &api.admin).await;
        assert_eq!(history.body["items"].as_array().unwrap().len(), 11, "ten debits and the seed credit");
        keel_testkit::assert_ledger_balanced(&api.app.db).await;
        api.stop().await;
    }
);
