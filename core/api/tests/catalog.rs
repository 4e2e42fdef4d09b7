//! The catalog over HTTP on both engines: a host builds a group and a product priced in USD
//! and ZWG, reads it back and quotes it; every class of bad input is refused with its own
//! code naming the field and changes nothing; duplicates are 409; reseller keys see only what
//! can be ordered; tax rules, exchange rates, client groups, billing settings and promotions
//! round-trip; every catalog route is in the OpenAPI document.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------

/// A JSON request with a method the common client has no shortcut for (PUT, PATCH).
async fn send_json(api: &Api, method: Method, path: &str, key: &str, body: &Value) -> Reply {
    api.send(api.authed(method, path, key).json(body)).await
}

fn usd_zwg(usd: &str, zwg: &str) -> Value {
    json!([
        { "currency": "USD", "cycle": "monthly", "price": usd },
        { "currency": "ZWG", "cycle": "monthly", "price": zwg },
    ])
}

/// A recurring hosting product with USD and ZWG monthly prices and three options.
fn product_json(group: i64, slug: &str) -> Value {
    json!({
        "group_id": group,
        "kind": "hosting",
        "name": "Starter",
        "slug": slug,
        "description": "Shared hosting in Harare",
        "pay_type": "recurring",
        "tax_class": "standard",
        "stock": 100,
        "prices": [
            { "currency": "USD", "cycle": "monthly", "price": "10.00", "setup_fee": "5.00" },
            { "currency": "ZWG", "cycle": "monthly", "price": "2,600.00" },
        ],
        "options": [
            { "name": "Location", "kind": "dropdown", "values": [
                { "name": "Harare", "prices": usd_zwg("0", "0") },
                { "name": "Frankfurt", "prices": usd_zwg("2.00", "520.00") },
            ]},
            { "name": "Extra disk", "kind": "quantity", "min_qty": 0, "max_qty": 10, "values": [
                { "name": "10 GB", "prices": [
                    { "currency": "USD", "cycle": "monthly", "price": "1.50", "setup_fee": "1.00" },
                    { "currency": "ZWG", "cycle": "monthly", "price": "390.00" },
                ]},
            ]},
            { "name": "Backups", "kind": "yes_no", "values": [
                { "name": "Yes", "prices": usd_zwg("3.00", "780.00") },
            ]},
        ],
    })
}

/// A product body with one price only, of the given pay type and cycle.
fn one_price(group: i64, slug: &str, pay_type: &str, price: Value) -> Value {
    json!({
        "group_id": group,
        "kind": "other",
        "name": "Thing",
        "slug": slug,
        "pay_type": pay_type,
        "prices": [price],
    })
}

async fn create_group(api: &Api, slug: &str, hidden: bool) -> i64 {
    let reply = api
        .post(
            "/api/v1/product-groups",
            &api.admin,
            &json!({ "name": format!("Group {slug}"), "slug": slug, "hidden": hidden }),
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.id()
}

async fn create_product(api: &Api, body: &Value) -> Value {
    let reply = api.post("/api/v1/products", &api.admin, body, None).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

/// Everything the catalog routes can change, plus the audit log, as the admin sees it.
#[derive(Debug, PartialEq)]
struct Catalog {
    groups: Value,
    products: Vec<Value>,
    tax_rules: Value,
    rates: Vec<Value>,
    client_groups: Value,
    promotions: Vec<Value>,
    audit_rows: usize,
}

async fn catalog(api: &Api) -> Catalog {
    let body = |path: &'static str| async move {
        let reply = api.get(path, &api.admin).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        reply.body
    };
    Catalog {
        groups: body("/api/v1/product-groups").await,
        products: api.all_items("/api/v1/products?include_retired=true").await,
        tax_rules: body("/api/v1/tax-rules").await,
        rates: api.all_items("/api/v1/exchange-rates").await,
        client_groups: body("/api/v1/client-groups").await,
        promotions: api.all_items("/api/v1/promotions").await,
        audit_rows: api.all_items("/api/v1/audit").await.len(),
    }
}

/// Sends a write as the admin and asserts it is refused with `status`/`code`/`field` while
/// the catalog and the audit log stay exactly as they were.
async fn assert_refused(
    api: &Api,
    method: Method,
    path: &str,
    body: &Value,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let before = catalog(api).await;
    send_json(api, method, path, &api.admin, body)
        .await
        .assert_error(status, code, field);
    assert_eq!(
        catalog(api).await,
        before,
        "a refused write changes nothing"
    );
}

/// A new product refused with a 422 naming `field`.
async fn assert_product_refused(api: &Api, body: &Value, code: &str, field: &str) {
    assert_refused(
        api,
        Method::POST,
        "/api/v1/products",
        body,
        422,
        code,
        Some(field),
    )
    .await;
}

// ------------------------------------------------------------------------------------
// The happy path
// ------------------------------------------------------------------------------------

keel_testkit::store_test!(
    async fn a_host_builds_a_product_priced_in_usd_and_zwg_reads_it_back_and_quotes_it(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "shared-hosting", false).await;
        let groups = api.get("/api/v1/product-groups", &api.admin).await;
        assert_eq!(groups.body[0]["slug"], "shared-hosting");

        let created = create_product(&api, &product_json(group, "starter")).await;
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["group_id"], group);
        assert_eq!((created["stock"].as_i64(), created["available"].as_i64()), (Some(100), Some(100)));
        assert_eq!(
            created["prices"],
            json!([
                { "currency": "USD", "cycle": "monthly",
                  "price": { "amount_minor": 1000, "amount": "10.00", "currency": "USD" },
                  "setup_fee": { "amount_minor": 500, "amount": "5.00", "currency": "USD" } },
                { "currency": "ZWG", "cycle": "monthly",
                  "price": { "amount_minor": 260000, "amount": "2600.00", "currency": "ZWG" },
                  "setup_fee": { "amount_minor": 0, "amount": "0.00", "currency": "ZWG" } },
            ])
        );
        let options = created["options"].as_array().unwrap();
        assert_eq!(options.len(), 3);
        assert_eq!(options[1]["kind"], "quantity");
        assert_eq!(options[1]["max_qty"], 10);

        let fetched = api.get(&format!("/api/v1/products/{id}"), &api.admin).await;
        assert_eq!(fetched.status, 200, "{}", fetched.text);
        assert_eq!(fetched.body, created);
        let listed = api.get("/api/v1/products", &api.admin).await;
        assert_eq!(listed.body["items"], json!([created.clone()]));

        // USD: Frankfurt, three extra disks, backups.
        let option = |i: usize| options[i]["id"].as_i64().unwrap();
        let frankfurt = options[0]["values"][1]["id"].as_i64().unwrap();
        let quote = api
            .post(
                &format!("/api/v1/products/{id}/quote"),
                &api.admin,
                &json!({ "currency": "USD", "cycle": "monthly", "options": [
                    { "option_id": option(0), "value_id": frankfurt },
                    { "option_id": option(1), "quantity": 3 },
                    { "option_id": option(2), "quantity": 1 },
                ]}),
                None,
            )
            .await;
        assert_eq!(quote.status, 200, "{}", quote.text);
        assert_eq!(quote.body["base"]["amount_minor"], 1000);
        assert_eq!(quote.body["recurring"], json!({ "amount_minor": 1950, "amount": "19.50", "currency": "USD" }));
        assert_eq!(quote.body["setup_fee"]["amount_minor"], 800);
        assert_eq!(quote.body["first_invoice"]["amount"], "27.50");
        let lines: Vec<_> = quote.body["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["description"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(lines, ["Location: Frankfurt", "Extra disk: 3 × 10 GB", "Backups"]);

        // ZWG with the defaults: Harare, no disks, no backups.
        let zwg = api
            .post(
                &format!("/api/v1/products/{id}/quote"),
                &api.admin,
                &json!({ "currency": "ZWG", "cycle": "monthly" }),
                None,
            )
            .await;
        assert_eq!(zwg.status, 200, "{}", zwg.text);
        assert_eq!(zwg.body["recurring"], json!({ "amount_minor": 260000, "amount": "2600.00", "currency": "ZWG" }));
        assert_eq!(zwg.body["first_invoice"]["amount_minor"], 260000);

        // A (currency, cycle) without a price is a 422 naming the cycle.
        api.post(
            &format!("/api/v1/products/{id}/quote"),
            &api.admin,
            &json!({ "currency": "USD", "cycle": "annually" }),
            None,
        )
        .await
        .assert_error(422, "no_price", Some("cycle"));
        api.post(
            &format!("/api/v1/products/{id}/quote"),
            &api.admin,
            &json!({ "currency": "USD", "cycle": "monthly", "options": [{ "option_id": option(1), "quantity": 11 }] }),
            None,
        )
        .await
        .assert_error(422, "quantity_out_of_range", Some("options"));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_product_is_changed_repriced_and_retired_but_stays_readable(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "vps", false).await;
        let id = create_product(&api, &product_json(group, "vps-s")).await["id"]
            .as_i64()
            .unwrap();
        let path = format!("/api/v1/products/{id}");

        let changed = send_json(
            &api,
            Method::PATCH,
            &path,
            &api.admin,
            &json!({ "name": "VPS Small", "tax_class": null, "stock": null }),
        )
        .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert_eq!(changed.body["name"], "VPS Small");
        assert!(changed.body["tax_class"].is_null());
        assert!(changed.body["stock"].is_null(), "null means unlimited");
        assert_eq!(changed.body["description"], "Shared hosting in Harare", "untouched");

        let repriced = send_json(
            &api,
            Method::PUT,
            &format!("{path}/prices"),
            &api.admin,
            &json!({ "prices": [{ "currency": "USD", "cycle": "annually", "price": "100" }] }),
        )
        .await;
        assert_eq!(repriced.status, 200, "{}", repriced.text);
        assert_eq!(repriced.body["prices"].as_array().unwrap().len(), 1);
        assert_eq!(repriced.body["prices"][0]["price"]["amount"], "100.00");

        // Bad prices leave the current ones in place.
        assert_refused(
            &api,
            Method::PUT,
            &format!("{path}/prices"),
            &json!({ "prices": [{ "currency": "USD", "cycle": "monthly", "price": "9.999" }] }),
            422,
            "too_many_decimals",
            Some("prices[0].price"),
        )
        .await;

        let retired = api.post(&format!("{path}/retire"), &api.admin, &json!({}), None).await;
        assert_eq!(retired.status, 200, "{}", retired.text);
        assert!(retired.body["retired_at"].is_string());
        let still = api.get(&path, &api.admin).await;
        assert_eq!(still.body["retired_at"], retired.body["retired_at"], "readable after retiring");
        assert_eq!(api.get("/api/v1/products", &api.admin).await.body["items"], json!([]));
        assert_eq!(
            api.all_items("/api/v1/products?include_retired=true").await.len(),
            1,
            "never deleted"
        );
        api.post(
            &format!("{path}/quote"),
            &api.admin,
            &json!({ "currency": "USD", "cycle": "annually" }),
            None,
        )
        .await
        .assert_error(422, "product_retired", Some("product_id"));

        api.get("/api/v1/products/9999", &api.admin)
            .await
            .assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_retried_create_with_the_same_idempotency_key_returns_the_first_product(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "web", false).await;
        let body = product_json(group, "web-1");
        let first = api.post("/api/v1/products", &api.admin, &body, Some("create-web-1")).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let again = api.post("/api/v1/products", &api.admin, &body, Some("create-web-1")).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.body, first.body);
        assert_eq!(api.all_items("/api/v1/products").await.len(), 1);
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// Bad products: one test per rule
// ------------------------------------------------------------------------------------

keel_testkit::store_test!(
    async fn a_price_with_more_decimals_than_its_currency_is_422_too_many_decimals(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["prices"][1]["price"] = json!("2600.001");
        assert_product_refused(&api, &body, "too_many_decimals", "prices[1].price").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_option_price_with_bad_text_is_422_naming_its_path(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["options"][0]["values"][1]["prices"][0]["price"] = json!("2,00");
        assert_product_refused(&api, &body, "invalid_amount", "options[0].values[1].prices[0].price")
            .await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_cycle_is_422_unknown_billing_cycle(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["prices"][0]["cycle"] = json!("fortnightly");
        assert_product_refused(&api, &body, "unknown_billing_cycle", "prices[0].cycle").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_currency_is_422_unknown_currency(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["prices"][1]["currency"] = json!("ZWD");
        assert_product_refused(&api, &body, "unknown_currency", "prices[1].currency").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_cycle_the_pay_type_does_not_allow_is_422_cycle_not_allowed(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let monthly = json!({ "currency": "USD", "cycle": "monthly", "price": "10" });
        let body = one_price(group, "setup", "one_time", monthly);
        assert_product_refused(&api, &body, "cycle_not_allowed", "prices[0].cycle").await;
        let once = json!({ "currency": "USD", "cycle": "one_time", "price": "10" });
        let body = one_price(group, "hosting", "recurring", once);
        assert_product_refused(&api, &body, "cycle_not_allowed", "prices[0].cycle").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_negative_price_is_422_negative_amount(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["prices"][0]["setup_fee"] = json!("-5.00");
        assert_product_refused(&api, &body, "negative_amount", "prices[0].setup_fee").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn the_same_currency_and_cycle_twice_is_422_duplicate_price(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["prices"][1] = json!({ "currency": "USD", "cycle": "monthly", "price": "12.00" });
        assert_product_refused(&api, &body, "duplicate_price", "prices[1]").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_yes_no_or_quantity_option_without_exactly_one_value_is_422_wrong_value_count(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["options"][2]["values"] = json!([
            { "name": "Yes", "prices": usd_zwg("3.00", "780.00") },
            { "name": "Daily", "prices": usd_zwg("5.00", "1300.00") },
        ]);
        assert_product_refused(&api, &body, "wrong_value_count", "options[2].values").await;
        let mut body = product_json(group, "p");
        body["options"][1]["values"] = json!([]);
        assert_product_refused(&api, &body, "wrong_value_count", "options[1].values").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_quantity_range_with_min_above_max_is_422_invalid_quantity_range(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let mut body = product_json(group, "p");
        body["options"][1]["min_qty"] = json!(5);
        body["options"][1]["max_qty"] = json!(2);
        assert_product_refused(&api, &body, "invalid_quantity_range", "options[1].max_qty").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_group_is_422_unknown_product_group(t) {
        let api = Api::start(t).await;
        let body = product_json(4242, "p");
        assert_product_refused(&api, &body, "unknown_product_group", "group_id").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_bad_slug_is_422_invalid_slug(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let body = product_json(group, "Starter Plan");
        assert_product_refused(&api, &body, "invalid_slug", "slug").await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_taken_slug_is_409_slug_taken(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        create_product(&api, &product_json(group, "starter")).await;
        let body = product_json(group, "starter");
        assert_refused(&api, Method::POST, "/api/v1/products", &body, 409, "slug_taken", None).await;
        let group_again = json!({ "name": "Again", "slug": "g" });
        assert_refused(&api, Method::POST, "/api/v1/product-groups", &group_again, 409, "slug_taken", None)
            .await;
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// Tax rules and exchange rates
// ------------------------------------------------------------------------------------

fn vat(rate: &str) -> Value {
    json!({ "name": "VAT", "country": "zw", "level": "first", "rate": rate })
}

keel_testkit::store_test!(
    async fn tax_rules_are_created_listed_and_deleted(t) {
        let api = Api::start(t).await;
        let created = api.post("/api/v1/tax-rules", &api.admin, &vat("15.50"), None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["country"], "ZW", "countries are stored upper-case");
        assert_eq!(created.body["rate"], "15.5");
        assert_eq!(created.body["tax_class"], "standard");
        let listed = api.get("/api/v1/tax-rules", &api.admin).await;
        assert_eq!(listed.body, json!([created.body.clone()]));

        let path = format!("/api/v1/tax-rules/{}", created.id());
        assert_eq!(api.delete(&path, &api.admin).await.status, 204);
        api.delete(&path, &api.admin).await.assert_error(404, "not_found", None);
        assert_eq!(api.get("/api/v1/tax-rules", &api.admin).await.body, json!([]));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_tax_rate_outside_0_to_100_is_422_invalid_tax_rate(t) {
        let api = Api::start(t).await;
        for rate in ["100.01", "-1", "fifteen"] {
            assert_refused(&api, Method::POST, "/api/v1/tax-rules", &vat(rate), 422, "invalid_tax_rate", Some("rate"))
                .await;
        }
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_second_rule_for_the_same_place_and_level_is_409_tax_rule_exists(t) {
        let api = Api::start(t).await;
        assert_eq!(api.post("/api/v1/tax-rules", &api.admin, &vat("15"), None).await.status, 201);
        assert_refused(&api, Method::POST, "/api/v1/tax-rules", &vat("14"), 409, "tax_rule_exists", None)
            .await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn exchange_rates_are_added_listed_and_refused_when_bad_or_repeated(t) {
        let api = Api::start(t).await;
        let body = json!({ "base": "USD", "quote": "ZWG", "rate": "26.50", "valid_from": "2025-03-01T00:00:00Z" });
        let added = api.post("/api/v1/exchange-rates", &api.admin, &body, None).await;
        assert_eq!(added.status, 201, "{}", added.text);
        assert_eq!(added.body["rate"], "26.5");
        let listed = api.all_items("/api/v1/exchange-rates?base=USD").await;
        assert_eq!(listed, vec![added.body.clone()]);

        assert_refused(&api, Method::POST, "/api/v1/exchange-rates", &body, 409, "exchange_rate_exists", None)
            .await;
        let zero = json!({ "base": "USD", "quote": "ZWG", "rate": "0" });
        assert_refused(&api, Method::POST, "/api/v1/exchange-rates", &zero, 422, "invalid_exchange_rate", Some("rate"))
            .await;
        let same = json!({ "base": "USD", "quote": "USD", "rate": "1" });
        assert_refused(&api, Method::POST, "/api/v1/exchange-rates", &same, 422, "same_currency", Some("quote"))
            .await;
        let unknown = json!({ "base": "USD", "quote": "ZWD", "rate": "1" });
        assert_refused(&api, Method::POST, "/api/v1/exchange-rates", &unknown, 422, "unknown_currency", Some("quote"))
            .await;
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// Client groups and billing settings
// ------------------------------------------------------------------------------------

keel_testkit::store_test!(
    async fn a_client_takes_its_groups_settings_unless_it_has_its_own(t) {
        let api = Api::start(t).await;
        let group = api
            .post(
                "/api/v1/client-groups",
                &api.admin,
                &json!({ "name": "Wholesale", "tax_exempt": true, "invoice_lead_days": 14, "billing_day": 1 }),
                None,
            )
            .await;
        assert_eq!(group.status, 201, "{}", group.text);
        let group_id = group.id();
        let client = api.seed_client("chipo@example.com").await.id;
        let path = format!("/api/v1/clients/{client}/billing-settings");

        let set = send_json(&api, Method::PUT, &path, &api.admin, &json!({ "group_id": group_id, "billing_day": 20 })).await;
        assert_eq!(set.status, 200, "{}", set.text);
        assert_eq!(
            set.body["own"],
            json!({ "group_id": group_id, "wallet_auto_apply": null, "invoice_lead_days": null, "billing_day": 20 })
        );
        assert_eq!(
            set.body["effective"],
            json!({ "group_id": group_id, "tax_exempt": true, "wallet_auto_apply": null, "invoice_lead_days": 14, "billing_day": 20 })
        );

        let changed = send_json(
            &api,
            Method::PATCH,
            &format!("/api/v1/client-groups/{group_id}"),
            &api.admin,
            &json!({ "invoice_lead_days": null, "wallet_auto_apply": true }),
        )
        .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        assert!(changed.body["invoice_lead_days"].is_null());
        assert_eq!(changed.body["billing_day"], 1, "untouched");

        let again = send_json(&api, Method::PUT, &path, &api.admin, &json!({ "group_id": group_id })).await;
        assert_eq!(
            again.body["effective"],
            json!({ "group_id": group_id, "tax_exempt": true, "wallet_auto_apply": true, "invoice_lead_days": null, "billing_day": 1 })
        );

        assert_refused(&api, Method::PUT, &path, &json!({ "group_id": 4242 }), 422, "unknown_client_group", Some("group_id"))
            .await;
        assert_refused(&api, Method::PUT, &path, &json!({ "billing_day": 32 }), 422, "invalid_billing_day", Some("billing_day"))
            .await;
        assert_refused(
            &api,
            Method::PUT,
            "/api/v1/clients/9999/billing-settings",
            &json!({}),
            404,
            "not_found",
            None,
        )
        .await;
        let twice = json!({ "name": "wholesale" });
        assert_refused(&api, Method::POST, "/api/v1/client-groups", &twice, 409, "name_taken", None).await;
        let lead = json!({ "name": "Retail", "invoice_lead_days": 91 });
        assert_refused(&api, Method::POST, "/api/v1/client-groups", &lead, 422, "invalid_lead_days", Some("invoice_lead_days"))
            .await;
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// Promotions
// ------------------------------------------------------------------------------------

fn percent_promo(code: &str, percent: &str) -> Value {
    json!({ "code": code, "kind": "percent", "percent": percent })
}

keel_testkit::store_test!(
    async fn promotions_are_created_listed_and_found_by_code(t) {
        let api = Api::start(t).await;
        let group = create_group(&api, "g", false).await;
        let product = create_product(&api, &product_json(group, "p")).await["id"].clone();
        let percent = api.post("/api/v1/promotions", &api.admin, &percent_promo("summer-26", "12.5"), None).await;
        assert_eq!(percent.status, 201, "{}", percent.text);
        assert_eq!(percent.body["code"], "SUMMER-26", "codes are stored upper-case");
        assert_eq!(percent.body["percent"], "12.5");
        assert_eq!(percent.body["uses"], 0);

        let fixed = api
            .post(
                "/api/v1/promotions",
                &api.admin,
                &json!({
                    "code": "WELCOME",
                    "kind": "fixed",
                    "amounts": [{ "currency": "USD", "amount": "5" }, { "currency": "ZWG", "amount": "1,300.00" }],
                    "recurring": true,
                    "starts_on": "2025-01-01",
                    "ends_on": "2025-12-31",
                    "max_uses": 100,
                    "max_uses_per_client": 1,
                    "products": [product],
                    "cycles": ["monthly", "annually"],
                }),
                None,
            )
            .await;
        assert_eq!(fixed.status, 201, "{}", fixed.text);
        assert_eq!(
            fixed.body["amounts"],
            json!([
                { "amount_minor": 500, "amount": "5.00", "currency": "USD" },
                { "amount_minor": 130000, "amount": "1300.00", "currency": "ZWG" },
            ])
        );
        assert_eq!(fixed.body["cycles"], json!(["monthly", "annually"]));

        let found = api.get("/api/v1/promotions/welcome", &api.admin).await;
        assert_eq!(found.status, 200, "{}", found.text);
        assert_eq!(found.body, fixed.body);
        assert_eq!(api.all_items("/api/v1/promotions").await.len(), 2);
        api.get("/api/v1/promotions/NOPE", &api.admin)
            .await
            .assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_promo_percent_outside_0_to_100_is_422_invalid_percent(t) {
        let api = Api::start(t).await;
        for percent in ["0", "100.5", "-10", "ten"] {
            assert_refused(&api, Method::POST, "/api/v1/promotions", &percent_promo("BAD", percent), 422, "invalid_percent", Some("percent"))
                .await;
        }
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_fixed_promo_without_amounts_is_422_amounts_required(t) {
        let api = Api::start(t).await;
        let body = json!({ "code": "FIXED", "kind": "fixed" });
        assert_refused(&api, Method::POST, "/api/v1/promotions", &body, 422, "amounts_required", Some("amounts"))
            .await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_promo_ending_before_it_starts_is_422_ends_before_start(t) {
        let api = Api::start(t).await;
        let mut body = percent_promo("BACKWARDS", "10");
        body["starts_on"] = json!("2025-06-01");
        body["ends_on"] = json!("2025-05-31");
        assert_refused(&api, Method::POST, "/api/v1/promotions", &body, 422, "ends_before_start", Some("ends_on"))
            .await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_taken_promo_code_is_409_code_taken(t) {
        let api = Api::start(t).await;
        let first = api.post("/api/v1/promotions", &api.admin, &percent_promo("TENOFF", "10"), None).await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert_refused(&api, Method::POST, "/api/v1/promotions", &percent_promo("tenoff", "20"), 409, "code_taken", None)
            .await;
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// Scopes
// ------------------------------------------------------------------------------------

keel_testkit::store_test!(
    async fn a_reseller_key_sees_only_what_can_be_ordered_and_changes_nothing(t) {
        let api = Api::start(t).await;
        let shop = create_group(&api, "shop", false).await;
        let internal = create_group(&api, "internal", true).await;
        let on_sale = create_product(&api, &product_json(shop, "on-sale")).await;
        let hidden = create_product(&api, &product_json(internal, "hidden")).await;
        let retired = create_product(&api, &product_json(shop, "retired")).await;
        let retired_id = retired["id"].as_i64().unwrap();
        api.post(&format!("/api/v1/products/{retired_id}/retire"), &api.admin, &json!({}), None)
            .await;
        let key = api.reseller_key.clone();

        let groups = api.get("/api/v1/product-groups", &key).await;
        assert_eq!(groups.status, 200, "{}", groups.text);
        assert_eq!(groups.body.as_array().unwrap().len(), 1);
        assert_eq!(groups.body[0]["id"], shop);
        let products = api.get("/api/v1/products?include_retired=true", &key).await;
        assert_eq!(products.body["items"], json!([on_sale.clone()]));
        for id in [&hidden["id"], &retired["id"]] {
            api.get(&format!("/api/v1/products/{id}"), &key)
                .await
                .assert_error(404, "not_found", None);
        }
        let quote = api
            .post(
                &format!("/api/v1/products/{}/quote", on_sale["id"]),
                &key,
                &json!({ "currency": "USD", "cycle": "monthly" }),
                None,
            )
            .await;
        assert_eq!(quote.status, 200, "{}", quote.text);

        let before = catalog(&api).await;
        api.post("/api/v1/products", &key, &product_json(shop, "mine"), None)
            .await
            .assert_error(403, "forbidden", None);
        api.post("/api/v1/promotions", &key, &percent_promo("FREE", "100"), None)
            .await
            .assert_error(403, "forbidden", None);
        for path in ["/api/v1/tax-rules", "/api/v1/exchange-rates", "/api/v1/client-groups", "/api/v1/promotions"] {
            api.get(path, &key).await.assert_error(403, "forbidden", None);
        }
        assert_eq!(catalog(&api).await, before);
        api.stop().await;
    }
);

// ------------------------------------------------------------------------------------
// The OpenAPI document
// ------------------------------------------------------------------------------------

/// Every catalog operation the router serves.
const CATALOG_ROUTES: &[(&str, &str)] = &[
    ("/api/v1/product-groups", "get"),
    ("/api/v1/product-groups", "post"),
    ("/api/v1/products", "get"),
    ("/api/v1/products", "post"),
    ("/api/v1/products/{id}", "get"),
    ("/api/v1/products/{id}", "patch"),
    ("/api/v1/products/{id}/prices", "put"),
    ("/api/v1/products/{id}/retire", "post"),
    ("/api/v1/products/{id}/quote", "post"),
    ("/api/v1/tax-rules", "get"),
    ("/api/v1/tax-rules", "post"),
    ("/api/v1/tax-rules/{id}", "delete"),
    ("/api/v1/exchange-rates", "get"),
    ("/api/v1/exchange-rates", "post"),
    ("/api/v1/client-groups", "get"),
    ("/api/v1/client-groups", "post"),
    ("/api/v1/client-groups/{id}", "patch"),
    ("/api/v1/clients/{id}/billing-settings", "put"),
    ("/api/v1/promotions", "get"),
    ("/api/v1/promotions", "post"),
    ("/api/v1/promotions/{code}", "get"),
];

keel_testkit::store_test!(
    async fn every_catalog_route_is_in_the_openapi_document(t) {
        let api = Api::start(t).await;
        let doc = api.send(api.request(Method::GET, "/api/v1/openapi.json")).await;
        assert_eq!(doc.status, 200, "{}", doc.text);
        for (path, method) in CATALOG_ROUTES {
            assert!(
                doc.body["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
            // And the router serves it: an unauthenticated call is 401, not 404/405.
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path.replace("{id}", "1").replace("{code}", "X");
            let reply = api.send(api.request(method.clone(), &concrete)).await;
            assert_eq!(reply.status, 401, "{method} {concrete}: {}", reply.text);
        }
        api.stop().await;
    }
);
