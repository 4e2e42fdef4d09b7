//! The money and access holes an adversarial pass found (issue 14), each as the attack a
//! hostile client or reseller key would make, over HTTP on both engines. Every test here
//! failed before its fix; each ends with the ledger balanced (the harness checks it).

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::*;
use keel_app::{App, Ctx, FixedClock};
use keel_domain::Currency;
use keel_domain::Money;
use keel_testkit::scenario::{Product, Scenario};
use keel_testkit::store_test;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

fn at(day: &str) -> chrono::DateTime<Utc> {
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    Utc.from_utc_datetime(&d.and_hms_opt(10, 0, 0).unwrap())
}

async fn start(t: &keel_testkit::TestDb) -> (Api, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at("2027-01-15")));
    let app = App::with_clock(t.db.clone(), clock.clone());
    let api = Api::start_serving(t, keel_api::ApiConfig::default(), app).await;
    (api, clock)
}

/// The client's USD wallet balance in cents (0 before it was ever used).
async fn wallet(api: &Api, client: impl std::fmt::Display) -> i64 {
    let r = api
        .get(&format!("/api/v1/clients/{client}/wallets"), &api.admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["currency"] == "USD")
        .map_or(0, |w| w["balance"]["amount_minor"].as_i64().unwrap())
}

async fn patch(api: &Api, path: &str, key: &str, body: Value) -> Reply {
    api.send(api.authed(Method::PATCH, path, key).json(&body))
        .await
}

/// A ZW client with a client key, `wallet` cents in its wallet (a staff credit), and an
/// active Starter service ordered and paid on 2027-01-15. Returns (client, key, service).
async fn active_client(api: &Api, email: &str, wallet: i64, starter: i64) -> (i64, String, i64) {
    let client = api.seed_client(email).await.id;
    let key = client_key(&api.app, client).await;
    if wallet > 0 {
        keel_app::ledger::wallet_adjust(
            &api.app,
            &system(),
            &format!("fund-{email}"),
            client,
            Money::new(wallet, Currency::USD),
            "Opening credit",
        )
        .await
        .unwrap();
    }
    let order = api
        .post(
            "/api/v1/orders",
            &key,
            &json!({ "items": [{ "product_id": starter, "cycle": "monthly" }] }),
            Some(&format!("order-{email}")),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let invoice = order.body["invoice"]["id"].as_i64().unwrap();
    if order.body["invoice"]["status"] != "paid" {
        let paid = api
            .post(
                &format!("/api/v1/invoices/{invoice}/payments"),
                &api.admin,
                &json!({ "amount": "11.50", "method": "bank_transfer", "reference": format!("BANK-{email}") }),
                Some(&format!("pay-{email}")),
            )
            .await;
        assert_eq!(paid.status, 201, "{}", paid.text);
    }
    let service = order.body["service_ids"][0].as_i64().unwrap();
    let s = api
        .get(&format!("/api/v1/services/{service}"), &api.admin)
        .await;
    assert_eq!(s.body["status"], "active", "{}", s.text);
    (client.get(), key, service)
}

async fn plan_change(api: &Api, key: &str, service: i64, product: i64, idem: &str) -> Reply {
    let r = api
        .post(
            &format!("/api/v1/services/{service}/plan-change"),
            key,
            &json!({ "product_id": product }),
            Some(idem),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

store_test!(
    async fn flipping_the_tax_country_between_plan_changes_mints_nothing(t) {
        // Finding 1: the downgrade credit was re-taxed at the client's current country, so
        // US (no VAT) up, ZW (15 %) down returned VAT never paid, every cycle.
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let (client, key, service) = active_client(&api, "flip@example.com", 20_000, starter.get()).await;
        clock.set(at("2027-01-30"));
        let before = wallet(&api, client).await;
        for round in 0..3 {
            let to_us = patch(&api, &format!("/api/v1/clients/{client}"), &key, json!({ "country": "US" })).await;
            assert_eq!(to_us.status, 200, "{}", to_us.text);
            let up = plan_change(&api, &key, service, business.get(), &format!("up-{round}")).await;
            assert_eq!(up.body["invoice"]["status"], "paid", "the wallet pays the upgrade: {}", up.text);
            assert_eq!(up.body["invoice"]["tax"]["amount_minor"], 0, "no VAT in the US");
            let to_zw = patch(&api, &format!("/api/v1/clients/{client}"), &key, json!({ "country": "ZW" })).await;
            assert_eq!(to_zw.status, 200, "{}", to_zw.text);
            plan_change(&api, &key, service, starter.get(), &format!("down-{round}")).await;
            assert_eq!(
                wallet(&api, client).await,
                before,
                "round {round}: the wallet gets back exactly what it paid for the upgrade, at the tax it paid"
            );
        }
        api.stop().await;
    }
);

store_test!(
    async fn an_unpaid_upgrade_undone_by_a_downgrade_gives_no_credit(t) {
        // Finding 2: the unused part of an upgrade nobody paid for became spendable credit.
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let (client, key, service) = active_client(&api, "unpaid@example.com", 0, starter.get()).await;
        clock.set(at("2027-01-30"));
        let up = plan_change(&api, &key, service, business.get(), "up").await;
        let upgrade = up.body["invoice"]["id"].as_i64().unwrap();
        assert_eq!(up.body["invoice"]["status"], "unpaid", "{}", up.text);
        plan_change(&api, &key, service, starter.get(), "down").await;
        assert_eq!(wallet(&api, client).await, 0, "no money came in, no credit goes out");
        let inv = api.get(&format!("/api/v1/invoices/{upgrade}"), &api.admin).await;
        assert_eq!(inv.body["status"], "cancelled", "the downgrade settles the upgrade's own invoice: {}", inv.text);
        // And nothing to spend: an order stays unpaid.
        let order = api.post("/api/v1/orders", &key, &json!({ "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), Some("after")).await;
        assert_eq!(order.status, 201, "{}", order.text);
        assert_eq!(order.body["invoice"]["status"], "unpaid");
        api.stop().await;
    }
);

store_test!(
    async fn a_partly_paid_upgrade_undone_returns_only_what_was_paid(t) {
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let (client, key, service) = active_client(&api, "part@example.com", 0, starter.get()).await;
        clock.set(at("2027-01-30"));
        let up = plan_change(&api, &key, service, business.get(), "up").await;
        let upgrade = up.body["invoice"]["id"].as_i64().unwrap();
        let total = up.body["invoice"]["total"]["amount_minor"].as_i64().unwrap();
        assert!(total > 500, "{}", up.text);
        let paid = api.post(&format!("/api/v1/invoices/{upgrade}/payments"), &api.admin,
            &json!({ "amount": "5.00", "method": "bank_transfer", "reference": "PART-1" }), Some("part-1")).await;
        assert_eq!(paid.status, 201, "{}", paid.text);
        plan_change(&api, &key, service, starter.get(), "down").await;
        assert_eq!(wallet(&api, client).await, 500, "the 5.00 paid comes back, nothing more");
        let inv = api.get(&format!("/api/v1/invoices/{upgrade}"), &api.admin).await;
        assert_eq!(inv.body["status"], "refunded", "{}", inv.text);
        api.stop().await;
    }
);

store_test!(
    async fn a_downgrade_returns_the_tax_that_was_charged_not_todays(t) {
        // Paid for January in the US (no VAT), moved to ZW, downgraded: the credit carries
        // no VAT, because none was paid.
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let client = api.seed_client("abroad@example.com").await.id;
        let key = client_key(&api.app, client).await;
        patch(&api, &format!("/api/v1/clients/{client}"), &key, json!({ "country": "US" })).await;
        let order = api.post("/api/v1/orders", &key, &json!({ "items": [{ "product_id": business.get(), "cycle": "monthly" }] }), Some("o")).await;
        assert_eq!(order.body["invoice"]["total"]["amount_minor"], 3000, "{}", order.text);
        let invoice = order.body["invoice"]["id"].as_i64().unwrap();
        api.post(&format!("/api/v1/invoices/{invoice}/payments"), &api.admin,
            &json!({ "amount": "30.00", "method": "bank_transfer", "reference": "US-1" }), Some("p")).await;
        let service = order.body["service_ids"][0].as_i64().unwrap();
        patch(&api, &format!("/api/v1/clients/{client}"), &key, json!({ "country": "ZW" })).await;
        clock.set(at("2027-01-30"));
        let down = plan_change(&api, &key, service, starter.get(), "down").await;
        let net = -down.body["preview"]["net"]["amount_minor"].as_i64().unwrap();
        assert!(net > 0, "{}", down.text);
        assert_eq!(wallet(&api, client).await, net, "the net credit, with no VAT on it");
        let notes = api.get(&format!("/api/v1/invoices/{invoice}/credit-notes"), &api.admin).await;
        let note = &notes.body[0];
        assert_eq!((note["tax"]["amount_minor"].as_i64(), note["disposition"].as_str()), (Some(0), Some("wallet")), "{}", notes.text);
        api.stop().await;
    }
);

store_test!(
    async fn each_scope_writes_only_the_client_fields_the_table_gives_it(t) {
        // Finding 3: client keys set their own tax exemption, status and currency.
        let api = Api::start(t).await;
        let client = api.seed_client("fields@example.com").await.id;
        let key = client_key(&api.app, client).await;
        let path = format!("/api/v1/clients/{client}");
        let before = api.snapshot().await;
        for (field, value) in [("tax_exempt", json!(true)), ("status", json!("inactive")), ("currency", json!("ZWG"))] {
            let r = patch(&api, &path, &key, json!({ field: value, "first_name": "Changed" })).await;
            r.assert_error(403, "field_not_writable", Some(field));
        }
        assert_eq!(api.snapshot().await, before, "a refused write changes nothing");
        let r = patch(&api, &path, &key, json!({ "country": "US", "first_name": "Rudo" })).await;
        assert_eq!((r.status, r.body["first_name"].as_str()), (200, Some("Rudo")), "{}", r.text);

        // A reseller runs its own clients but does not decide the host's tax.
        let mine = api.seed_reseller_client(api.reseller, "mine@example.com").await.id;
        let mine_path = format!("/api/v1/clients/{mine}");
        patch(&api, &mine_path, &api.reseller_key, json!({ "tax_exempt": true })).await
            .assert_error(403, "field_not_writable", Some("tax_exempt"));
        let r = patch(&api, &mine_path, &api.reseller_key, json!({ "status": "inactive" })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mut new = client_json("exempt@example.com");
        new["tax_exempt"] = json!(true);
        api.post("/api/v1/clients", &api.reseller_key, &new, None).await
            .assert_error(403, "field_not_writable", Some("tax_exempt"));
        // Staff decide.
        let r = patch(&api, &path, &api.admin, json!({ "tax_exempt": true })).await;
        assert_eq!((r.status, r.body["tax_exempt"].as_bool()), (200, Some(true)), "{}", r.text);

        // The OpenAPI document states the same table.
        let doc = api.get("/api/v1/openapi.json", &api.admin).await;
        for schema in ["ClientChanges", "NewClient"] {
            let props = &doc.body["components"]["schemas"][schema]["properties"];
            for (field, writers) in keel_domain::client::CLIENT_FIELD_WRITERS {
                if !props[field].is_null() {
                    assert_eq!(props[field]["x-keel-writable-by"], writers.as_str(), "{schema}.{field}");
                }
            }
        }
        api.stop().await;
    }
);

store_test!(
    async fn a_closed_clients_key_stops_working_and_nobody_orders_for_it(t) {
        // Finding 3: a closed client's key kept ordering.
        let api = Api::start(t).await;
        let (starter, _) = hosting_catalog(&api.app).await;
        let client = api.seed_client("closed@example.com").await.id;
        let key = client_key(&api.app, client).await;
        let r = patch(&api, &format!("/api/v1/clients/{client}"), &api.admin, json!({ "status": "closed" })).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let order = json!({ "items": [{ "product_id": starter.get(), "cycle": "monthly" }] });
        api.post("/api/v1/orders", &key, &order, Some("closed-1")).await.assert_error(401, "api_key_client_closed", None);
        api.get(&format!("/api/v1/clients/{client}"), &key).await.assert_error(401, "api_key_client_closed", None);
        let mut staff_order = order.clone();
        staff_order["client_id"] = json!(client);
        let before = api.snapshot().await;
        api.post("/api/v1/orders", &api.admin, &staff_order, Some("closed-2")).await.assert_error(409, "client_closed", None);
        assert_eq!(api.snapshot().await, before);
        // Reopened, it orders again.
        patch(&api, &format!("/api/v1/clients/{client}"), &api.admin, json!({ "status": "active" })).await;
        let r = api.post("/api/v1/orders", &key, &order, Some("closed-3")).await;
        assert_eq!(r.status, 201, "{}", r.text);
        api.stop().await;
    }
);

store_test!(
    async fn keys_cannot_order_or_plan_into_what_they_cannot_see(t) {
        // Finding 7: a product in a hidden group read as 404 but could be ordered.
        let (api, clock) = start(t).await;
        let (starter, _) = hosting_catalog(&api.app).await;
        let hidden = hidden_product(&api.app).await;
        let (client, key, service) = active_client(&api, "hidden@example.com", 0, starter.get()).await;
        let mine = api.seed_reseller_client(api.reseller, "rc@example.com").await.id;
        api.get(&format!("/api/v1/products/{hidden}"), &key).await.assert_error(404, "not_found", None);
        let before = api.snapshot().await;
        let item = json!([{ "product_id": hidden, "cycle": "monthly" }]);
        api.post("/api/v1/orders", &key, &json!({ "items": item }), Some("h1")).await
            .assert_error(422, "unknown_product", Some("items[0].product_id"));
        api.post("/api/v1/orders", &api.reseller_key, &json!({ "client_id": mine, "items": item }), Some("h2")).await
            .assert_error(422, "unknown_product", Some("items[0].product_id"));
        clock.set(at("2027-01-20"));
        api.post(&format!("/api/v1/services/{service}/plan-change"), &key, &json!({ "product_id": hidden }), Some("h3")).await
            .assert_error(422, "unknown_product", Some("product_id"));
        api.post(&format!("/api/v1/services/{service}/plan-change/preview"), &key, &json!({ "product_id": hidden }), None).await
            .assert_error(422, "unknown_product", Some("product_id"));
        assert_eq!(api.snapshot().await, before, "nothing changed");
        // Staff may sell it (a private plan, by hand).
        let r = api.post("/api/v1/orders", &api.admin, &json!({ "client_id": client, "items": item }), Some("h4")).await;
        assert_eq!(r.status, 201, "{}", r.text);
        api.stop().await;
    }
);

store_test!(
    async fn an_idempotency_key_belongs_to_the_api_key_that_sent_it(t) {
        // Finding 8: a second key's different order under the same Idempotency-Key got the
        // first order back, silently.
        let api = Api::start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let client = api.seed_client("twokeys@example.com").await.id;
        let (laptop, phone) = (client_key(&api.app, client).await, client_key(&api.app, client).await);
        let first = api.post("/api/v1/orders", &laptop, &json!({ "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), Some("cart-1")).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let second = api.post("/api/v1/orders", &phone, &json!({ "items": [{ "product_id": business.get(), "cycle": "monthly" }] }), Some("cart-1")).await;
        assert_eq!(second.status, 201, "{}", second.text);
        assert_ne!(second.body["id"], first.body["id"], "another key's request is another order");
        assert_eq!(second.header("idempotent-replayed"), None);
        assert_eq!(second.body["invoice"]["total"]["amount_minor"], 3450, "the phone's own cart");
        // The same key again is the same order, said so.
        let again = api.post("/api/v1/orders", &laptop, &json!({ "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), Some("cart-1")).await;
        assert_eq!((again.body["id"].clone(), again.header("idempotent-replayed")), (first.body["id"].clone(), Some("true")));
        api.stop().await;
    }
);

/// A product in a hidden group (a private plan staff sell by hand).
async fn hidden_product(app: &App) -> i64 {
    let world = Scenario::new(app)
        .hidden_group("Private", "private")
        .product(Product::new("Private plan").monthly(500).taxed())
        .build()
        .await;
    world.product("Private plan").get()
}

store_test!(
    async fn a_client_created_just_before_a_crash_is_replayed_not_refused_as_a_duplicate(t) {
        // Finding 12: the client committed, then the server died before the idempotency layer
        // stored the answer; the retry under the same key got 409 email_taken. The answer now
        // commits with the client. The crash is placed exactly: the key is begun and the use
        // case run as the route runs it, and the layer's own `complete` never happens.
        let api = Api::start(t).await;
        let body = client_json("crash@example.com");
        let bytes = serde_json::to_vec(&body).unwrap();
        let (actor, _) = keel_app::access::authenticate(&api.app, &api.admin).await.unwrap();
        let principal = keel_app::ledger::principal(&actor);
        let begun = keel_store::idempotency::begin(
            &api.app.db,
            &principal,
            "new-client-1",
            "POST",
            "/api/v1/clients",
            &keel_api::idempotency::request_hash(Some(b"application/json"), &bytes),
            api.app.now(),
        )
        .await
        .unwrap();
        let keel_store::idempotency::Begin::Started(slot) = begun else { panic!("{begun:?}") };
        let made = keel_app::clients::create_client_answering(
            &api.app,
            &Ctx::new(actor),
            serde_json::from_value(body.clone()).unwrap(),
            Some(keel_app::Answer::new(slot, 201)),
        )
        .await
        .unwrap();
        // ... the process dies here. The client retries:
        let retry = api.post("/api/v1/clients", &api.admin, &body, Some("new-client-1")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, Some("true")), "{}", retry.text);
        assert_eq!(retry.id(), made.id.get());
        assert_eq!(api.all_items("/api/v1/clients").await.len(), 1, "one client");
        api.stop().await;
    }
);

// Finding 12 for the other writes, each with the crash placed exactly as in the clients test
// above (`Api::begin_crashed`): the key was begun two minutes ago, past the lock timeout, and
// its use case committed; the layer never answered. Before the fix the retry took the key over
// and ran again (a second resource), or was refused by what its first attempt had done.

/// The slot's answer as a route that shows a secret once makes it.
fn withheld(slot: i64) -> Option<keel_app::Answer> {
    keel_api::extract::IdempotencySlot(Some(slot)).answer_withholding(
        axum::http::StatusCode::CREATED,
        &keel_api::idempotency::SECRET_SHOWN_ONCE,
    )
}

store_test!(
    async fn a_webhook_endpoint_created_just_before_a_crash_is_named_to_the_retry_never_made_twice(t) {
        let api = Api::start(t).await;
        let path = "/api/v1/webhooks/endpoints";
        let body = json!({ "url": "https://erp.example.com/keel", "events": ["invoice.paid"] });
        let (ctx, slot) = api.begin_crashed("endpoint-crash", path, &body).await;
        let made = keel_app::webhooks::create_endpoint_answering(&api.served, &ctx, &serde_json::from_value(body.clone()).unwrap(), withheld(slot)).await.unwrap();
        // ... the process dies here. The client retries:
        let retry = api.post(path, &api.admin, &body, Some("endpoint-crash")).await;
        retry.assert_error(409, "idempotent_secret_not_replayed", None);
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert!(!retry.text.contains("whsec_"), "{}", retry.text);
        let details = &retry.body["error"]["details"];
        assert_eq!((details["status"].as_i64(), details["resource"]["id"].as_i64()), (Some(201), Some(made.endpoint.id)), "{}", retry.text);
        assert_eq!(details["resource"], serde_json::to_value(&made.endpoint).unwrap(), "the endpoint as made");
        let endpoints = api.get(path, &api.admin).await;
        assert_eq!(endpoints.body.as_array().map(Vec::len), Some(1), "one endpoint: {}", endpoints.text);
        // What committed with the endpoint holds no secret.
        let (status, stored) = api.stored_answer("endpoint-crash").await;
        let stored = stored.expect("an answer");
        assert_eq!(status, Some(409));
        assert!(!stored.contains(&made.secret) && !stored.contains("whsec_"), "{stored}");
        api.stop().await;
    }
);

store_test!(
    async fn an_api_key_created_just_before_a_crash_is_named_to_the_retry_never_minted_twice(t) {
        let api = Api::start(t).await;
        let path = "/api/v1/api-keys";
        let body = json!({ "name": "ci deploys", "scope": "admin" });
        let (ctx, slot) = api.begin_crashed("key-crash", path, &body).await;
        let made = keel_app::access::create_key_answering(&api.served, &ctx, serde_json::from_value(body.clone()).unwrap(), withheld(slot)).await.unwrap();
        // ... the process dies here. The client retries:
        let hidden = &made.secret[made.secret.len() - 24..];
        let retry = api.post(path, &api.admin, &body, Some("key-crash")).await;
        retry.assert_error(409, "idempotent_secret_not_replayed", None);
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert!(!retry.text.contains(hidden), "{}", retry.text);
        let resource = &retry.body["error"]["details"]["resource"];
        assert_eq!((resource["id"].as_i64(), resource["name"].as_str()), (Some(made.key.id.get()), Some("ci deploys")), "{}", retry.text);
        assert!(resource.get("secret").is_none());
        let keys = api.get(path, &api.admin).await;
        assert_eq!(keys.body.as_array().unwrap().iter().filter(|k| k["name"] == "ci deploys").count(), 1, "minted once: {}", keys.text);
        // The key the lost answer held works (revoke it by the id the retry named).
        assert_eq!(api.get("/api/v1/clients", &made.secret).await.status, 200);
        // What committed with the key holds no key.
        let (status, stored) = api.stored_answer("key-crash").await;
        let stored = stored.expect("an answer");
        assert_eq!(status, Some(409));
        assert!(!stored.contains(hidden), "the key is not kept: {stored}");
        api.stop().await;
    }
);

store_test!(
    async fn a_draft_created_just_before_a_crash_is_replayed_never_made_twice(t) {
        let api = Api::start(t).await;
        let client = api.seed_client("draft@example.com").await.id;
        let path = "/api/v1/invoices";
        let body = json!({ "client_id": client, "lines": [{ "description": "Migration work", "unit_price": "120.00" }] });
        let (ctx, slot) = api.begin_crashed("draft-crash", path, &body).await;
        let made = keel_app::invoices::create_draft_answering(&api.served, &ctx, &serde_json::from_value(body.clone()).unwrap(), Some(keel_app::Answer::new(slot, 201))).await.unwrap();

        let retry = api.post(path, &api.admin, &body, Some("draft-crash")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, Some("true")), "{}", retry.text);
        assert_eq!(retry.body, serde_json::to_value(&made).unwrap(), "the first answer");
        let drafts = api.all_items(&format!("/api/v1/invoices?client_id={client}")).await;
        assert_eq!(drafts.len(), 1, "one draft: {drafts:?}");
        api.stop().await;
    }
);

store_test!(
    async fn a_plan_change_applied_just_before_a_crash_is_replayed_not_refused_as_no_change(t) {
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let (client, _key, service) = active_client(&api, "crash-up@example.com", 20_000, starter.get()).await;
        clock.set(at("2027-01-30"));
        let path = format!("/api/v1/services/{service}/plan-change");
        let body = json!({ "product_id": business.get() });
        let invoices_before = api.all_items(&format!("/api/v1/invoices?client_id={client}")).await.len();
        let (ctx, slot) = api.begin_crashed("up-crash", &path, &body).await;
        let made = keel_app::plan_change::apply_answering(&api.served, &ctx, keel_domain::ids::ServiceId(service), &serde_json::from_value(body.clone()).unwrap(), Some(keel_app::Answer::new(slot, 200))).await.unwrap();
        assert!(made.invoice.is_some(), "an upgrade is invoiced");

        let retry = api.post(&path, &api.admin, &body, Some("up-crash")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (200, Some("true")), "{}", retry.text);
        assert_eq!(retry.body, serde_json::to_value(&made).unwrap(), "the first answer");
        let invoices = api.all_items(&format!("/api/v1/invoices?client_id={client}")).await;
        assert_eq!(invoices.len(), invoices_before + 1, "one upgrade invoice");
        api.stop().await;
    }
);

store_test!(
    async fn a_payment_recorded_just_before_a_crash_is_replayed_not_refused_as_a_used_reference(t) {
        // The route required an Idempotency-Key and never used it: the retry met its own
        // payment's (method, reference) and was refused, 409 payment_reference_used.
        let (api, _clock) = start(t).await;
        let (starter, _) = hosting_catalog(&api.app).await;
        let client = api.seed_client("crash-pay@example.com").await.id;
        let key = client_key(&api.app, client).await;
        let order = api.post("/api/v1/orders", &key, &json!({ "items": [{ "product_id": starter, "cycle": "monthly" }] }), Some("order-1")).await;
        assert_eq!(order.status, 201, "{}", order.text);
        let invoice = order.body["invoice"]["id"].as_i64().unwrap();
        let path = format!("/api/v1/invoices/{invoice}/payments");
        let body = json!({ "amount": "11.50", "method": "bank_transfer", "reference": "BANK-CRASH-1" });
        let (ctx, slot) = api.begin_crashed("pay-crash", &path, &body).await;
        let made = keel_app::payments::record_payment_answering(&api.served, &ctx, keel_domain::ids::InvoiceId(invoice), &serde_json::from_value(body.clone()).unwrap(), Some(keel_app::Answer::new(slot, 201))).await.unwrap();

        let retry = api.post(&path, &api.admin, &body, Some("pay-crash")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, Some("true")), "{}", retry.text);
        assert_eq!(retry.body, serde_json::to_value(&made).unwrap(), "the first answer");
        assert_eq!((retry.body["status"].as_str(), retry.body["payments"].as_array().map(Vec::len)), (Some("paid"), Some(1)), "paid once: {}", retry.text);
        api.stop().await;
    }
);

store_test!(
    async fn a_slow_first_attempt_whose_key_was_taken_over_changes_nothing(t) {
        // The other side of the lock timeout: the first attempt was slow, not dead, and a
        // retry took its key over and answered. When the first attempt reaches its commit it
        // finds the key answered and rolls back: one draft, and the key replays the retry's.
        let api = Api::start(t).await;
        let client = api.seed_client("slow@example.com").await.id;
        let path = "/api/v1/invoices";
        let body = json!({ "client_id": client, "lines": [{ "description": "Audit", "unit_price": "80.00" }] });
        let (ctx, slot) = api.begin_crashed("slow-1", path, &body).await;
        let retry = api.post(path, &api.admin, &body, Some("slow-1")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, None), "the retry took the key over: {}", retry.text);

        let before = api.snapshot().await;
        let late = keel_app::invoices::create_draft_answering(&api.served, &ctx, &serde_json::from_value(body.clone()).unwrap(), Some(keel_app::Answer::new(slot, 201))).await;
        let Err(keel_app::AppError::Conflict { code, .. }) = late else { panic!("{late:?}") };
        assert_eq!(code, "idempotency_key_in_use");
        assert_eq!(api.snapshot().await, before, "the late attempt changed nothing");
        assert_eq!(api.all_items(&format!("/api/v1/invoices?client_id={client}")).await.len(), 1);
        let again = api.post(path, &api.admin, &body, Some("slow-1")).await;
        assert_eq!((again.status, again.header("idempotent-replayed")), (201, Some("true")), "{}", again.text);
        assert_eq!(again.body, retry.body);
        api.stop().await;
    }
);

store_test!(
    /// The creates with a natural key (an email, a slug, a name, a code): a retry after a
    /// crash between the commit and the answer was refused as taken (`email_taken`,
    /// `slug_taken`, …) instead of replayed. Each now stores its answer with what it made.
    async fn creates_with_a_natural_key_replay_after_a_crash_instead_of_refusing_as_taken(t) {
        let api = Api::start(t).await;
        let client = api.seed_client("owner@example.com").await.id;
        let (_, _) = hosting_catalog(&api.app).await;
        let ok = |r: Result<serde_json::Value, keel_app::AppError>| r.unwrap();
        let cases: Vec<(&str, Value)> = vec![
            ("/api/v1/staff", json!({ "email": "ops@example.com", "name": "Ops", "password": "correct horse battery", "role": "support" })),
            ("/api/v1/clients/{client}/contacts", json!({ "first_name": "Tendai", "last_name": "Moyo", "email": "tendai@example.com" })),
            ("/api/v1/product-groups", json!({ "name": "Domains", "slug": "domains" })),
            ("/api/v1/products", json!({ "group_id": 1, "kind": "hosting", "name": "Mail", "slug": "mail", "pay_type": "recurring", "prices": [{ "currency": "USD", "cycle": "monthly", "price": "3.00" }] })),
            ("/api/v1/tax-rules", json!({ "name": "VAT", "country": "ZA", "level": "first", "rate": "15" })),
            ("/api/v1/exchange-rates", json!({ "base": "USD", "quote": "ZAR", "rate": "18.5" })),
            ("/api/v1/client-groups", json!({ "name": "Partners" })),
            ("/api/v1/promotions", json!({ "code": "SPRING-27", "kind": "percent", "percent": "10" })),
            ("/api/v1/dunning/policies", json!({ "name": "Gentle", "policy": {} })),
        ];
        for (i, (route, body)) in cases.into_iter().enumerate() {
            let path = route.replace("{client}", &client.to_string());
            let idem = format!("natural-{i}");
            let (ctx, slot) = api.begin_crashed(&idem, &path, &body).await;
            let answer = Some(keel_app::Answer::new(slot, 201));
            let app = &api.served;
            let input = body.clone();
            let made: Value = match route {
                "/api/v1/staff" => ok(keel_app::access::create_staff_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/clients/{client}/contacts" => ok(keel_app::clients::create_contact_answering(app, &ctx, client, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/product-groups" => ok(keel_app::catalog::create_product_group_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/products" => ok(keel_app::catalog::create_product_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/tax-rules" => ok(keel_app::catalog::create_tax_rule_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/exchange-rates" => ok(keel_app::catalog::add_exchange_rate_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/client-groups" => ok(keel_app::catalog::create_client_group_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/promotions" => ok(keel_app::catalog::create_promotion_answering(app, &ctx, serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                "/api/v1/dunning/policies" => ok(keel_app::dunning::create_policy_answering(app, &ctx, &serde_json::from_value(input).unwrap(), answer).await.map(|v| serde_json::to_value(v).unwrap())),
                other => panic!("no use case for {other}"),
            };
            // ... the process dies here. The client retries:
            let retry = api.post(&path, &api.admin, &body, Some(&idem)).await;
            assert_eq!((retry.status, retry.header("idempotent-replayed")), (201, Some("true")), "{path}: {}", retry.text);
            assert_eq!(retry.body, made, "{path}: the retry is the answer the first attempt made");
            // Made once: a new key for the same body is refused as taken (or, for an
            // exchange rate, which has no natural key, makes a second rate).
            let again = api.post(&path, &api.admin, &body, Some(&format!("{idem}-again"))).await;
            if route == "/api/v1/exchange-rates" {
                assert_eq!(again.status, 201, "{}", again.text);
            } else {
                assert_eq!(again.status, 409, "{path}: {}", again.text);
            }
        }
        api.stop().await;
    }
);
