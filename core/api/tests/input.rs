//! Hostile input over HTTP on both engines (issue 14, findings 5, 6 and 10): NUL in every
//! place a request can carry text, labels that would forge invoice lines, names that show
//! nothing, dates in year 0, forged request ids. Each is refused with a 4xx and its code,
//! naming the field, and leaves everything as it was; none reaches PostgreSQL to become a
//! 500. Then a property test throws random strings at text fields and checks that each is
//! either refused (4xx, nothing stored) or stored and read back as sent.

mod common;

use common::*;
use keel_domain::ids::ProductId;
use keel_domain::ledger::Side::{Credit, Debit};
use keel_testkit::scenario::{Product, Scenario};
use keel_testkit::store_test;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One product at 10.00 USD a month, untaxed.
async fn product(api: &Api) -> ProductId {
    let world = Scenario::new(&api.app)
        .product(Product::new("Starter").monthly(1000))
        .build()
        .await;
    world.product("Starter")
}

/// Everything a refused request must leave alone: clients, audit rows, balances, entries
/// (the common snapshot) and the invoices, staff and keys lists.
async fn state(api: &Api) -> (Snapshot, usize, Value, Value) {
    let invoices = api.all_items("/api/v1/invoices").await.len();
    let staff = api.get("/api/v1/staff", &api.admin).await.body;
    let keys = api.get("/api/v1/api-keys", &api.admin).await.body;
    (api.snapshot().await, invoices, staff, keys)
}

/// Sends `method path body` as the admin and asserts the refusal: `status`, `code`,
/// `details.field` and (for `invalid_text`) `details.problem`; nothing changed.
async fn refused(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&Value>,
    (status, code, field, problem): (u16, &str, Option<&str>, Option<&str>),
) {
    static KEYS: AtomicUsize = AtomicUsize::new(0);
    let before = state(api).await;
    let mut request = api.authed(method.clone(), path, &api.admin);
    if let Some(body) = body {
        // Money-moving routes want a key; each refusal gets its own.
        let key = KEYS.fetch_add(1, Ordering::Relaxed);
        request = request
            .header("idempotency-key", format!("refused-{key}"))
            .json(body);
    }
    let reply = api.send(request).await;
    assert!(reply.status < 500, "{method} {path}: {}", reply.text);
    reply.assert_error(status, code, field);
    if let Some(problem) = problem {
        assert_eq!(
            reply.body["error"]["details"]["problem"], problem,
            "{method} {path}: {}",
            reply.text
        );
    }
    assert_eq!(state(api).await, before, "{method} {path}: nothing changed");
}

/// A client with one unpaid order of the product: (client id, invoice id).
async fn ordered(api: &Api, product: ProductId) -> (i64, i64) {
    let client = api
        .post(
            "/api/v1/clients",
            &api.admin,
            &client_json("ada@example.com"),
            None,
        )
        .await
        .id();
    let order = api
        .post(
            "/api/v1/orders",
            &api.admin,
            &json!({ "client_id": client, "items": [{ "product_id": product.get(), "cycle": "monthly" }] }),
            Some("order-seed"),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    (client, order.body["invoice"]["id"].as_i64().unwrap())
}

fn order(client: i64, product: ProductId, label: &str) -> Value {
    json!({ "client_id": client, "items": [{ "product_id": product.get(), "cycle": "monthly", "label": label }] })
}

store_test!(
    async fn nul_is_refused_wherever_a_request_carries_text(t) {
        let api = Api::start(t).await;
        let product = product(&api).await;
        let (client, invoice) = ordered(&api, product).await;
        let text = |field: &'static str, problem: &'static str| (422u16, "invalid_text", Some(field), Some(problem));
        let nul = Some("nul_character");

        // The query string and the path: refused before any route runs.
        for path in [
            "/api/v1/clients?q=%00".to_string(),
            "/api/v1/clients?q=ada%00".to_string(),
            "/api/v1/promotions/SAVE%00".to_string(),
            format!("/api/v1/clients/{client}%00"),
            "/api/v1/invoices?status=%00".to_string(),
        ] {
            refused(&api, Method::GET, &path, None, (400, "nul_character", None, None)).await;
        }

        // Every body string, whatever the route and whatever the field's own rule.
        let mut bad_client = client_json("nul@example.com");
        bad_client["first_name"] = json!("Ada\u{0}");
        refused(&api, Method::POST, "/api/v1/clients", Some(&bad_client), text("first_name", "nul_character")).await;
        let mut bad_email = client_json("nul@example.com");
        bad_email["email"] = json!("nul\u{0}@example.com");
        refused(&api, Method::POST, "/api/v1/clients", Some(&bad_email), text("email", "nul_character")).await;
        let key_with_nul = json!({ "first_name\u{0}": "Ada" });
        refused(&api, Method::PATCH, &format!("/api/v1/clients/{client}"), Some(&key_with_nul), (422, "invalid_text", Some("first_name\u{0}"), nul)).await;
        refused(&api, Method::POST, "/api/v1/orders", Some(&order(client, product, "ada\u{0}.example")), text("items[0].label", "nul_character")).await;
        let pay = format!("/api/v1/invoices/{invoice}/payments");
        refused(&api, Method::POST, &pay, Some(&json!({ "amount": "1.00", "method": "cash", "reference": "R\u{0}1" })), text("reference", "nul_character")).await;
        refused(&api, Method::POST, &pay, Some(&json!({ "amount": "1.00", "method": "cash", "reference": "R-1", "note": "\u{0}" })), text("note", "nul_character")).await;
        refused(&api, Method::POST, "/api/v1/staff", Some(&json!({ "email": "s@example.com", "name": "S\u{0}", "password": "correct horse battery", "role": "admin" })), text("name", "nul_character")).await;
        refused(&api, Method::POST, "/api/v1/api-keys", Some(&json!({ "name": "k\u{0}", "scope": "admin" })), text("name", "nul_character")).await;
        refused(&api, Method::POST, "/api/v1/invoices", Some(&json!({ "client_id": client, "lines": [{ "description": "Setup\u{0}", "unit_price": "5.00" }] })), text("lines[0].description", "nul_character")).await;
        refused(&api, Method::POST, "/api/v1/promotions", Some(&json!({ "code": "SAVE\u{0}", "kind": "percent", "percent": "10" })), text("code", "nul_character")).await;
        refused(&api, Method::POST, &format!("/api/v1/invoices/{invoice}/cancel"), Some(&json!({ "reason": "dup\u{0}" })), text("reason", "nul_character")).await;
        api.stop().await;
    }
);

store_test!(
    async fn an_order_label_is_one_short_visible_line(t) {
        let api = Api::start(t).await;
        let product = product(&api).await;
        let (client, _) = ordered(&api, product).await;
        let label = |problem: &'static str| (422u16, "invalid_text", Some("items[0].label"), Some(problem));
        let cases = [
            ("x".repeat(900_000), "too_long"),
            ("x".repeat(201), "too_long"),
            ("ada.example\nPAID IN FULL".to_string(), "control_character"),
            ("ada.example\r\nPAID".to_string(), "control_character"),
            ("ada\u{202E}elpmaxe.exe".to_string(), "bidi_control"),
            ("\u{2066}ada.example".to_string(), "bidi_control"),
            ("ada\u{200B}.example".to_string(), "invisible_character"),
            ("\u{200C}\u{200D}".to_string(), "empty"),
        ];
        for (value, problem) in &cases {
            refused(&api, Method::POST, "/api/v1/orders", Some(&order(client, product, value)), label(problem)).await;
        }
        // What a label is for still works, in any script, up to 200 characters.
        let fine = "مثال.example 👩\u{200D}💻 ".to_string() + &"é".repeat(180);
        let placed = api.post("/api/v1/orders", &api.admin, &order(client, product, &fine), Some("fine")).await;
        assert_eq!(placed.status, 201, "{}", placed.text);
        assert_eq!(placed.body["invoice"]["lines"][0]["description"].as_str().map(|d| d.contains(fine.trim())), Some(true), "{}", placed.text);
        api.stop().await;
    }
);

store_test!(
    async fn a_name_of_only_invisible_characters_is_empty(t) {
        let api = Api::start(t).await;
        let product = product(&api).await;
        let (client, _) = ordered(&api, product).await;
        for (value, problem) in [("\u{200C}", "empty"), ("\u{200E} \u{3164}", "empty"), ("\u{200B}", "invisible_character"), ("Ada\u{202E}", "bidi_control"), ("Ada\nLovelace", "control_character")] {
            let mut body = client_json("ghost@example.com");
            body["last_name"] = json!(value);
            refused(&api, Method::POST, "/api/v1/clients", Some(&body), (422, "invalid_text", Some("last_name"), Some(problem))).await;
            refused(&api, Method::PATCH, &format!("/api/v1/clients/{client}"), Some(&json!({ "first_name": value })), (422, "invalid_text", Some("first_name"), Some(problem))).await;
        }
        let mut company = client_json("ghost@example.com");
        company["kind"] = json!("company");
        company["company_name"] = json!("\u{200D}");
        refused(&api, Method::POST, "/api/v1/clients", Some(&company), (422, "invalid_field", Some("company_name"), None)).await;
        // Names that need a zero-width joiner or a direction mark are kept as sent.
        let mut persian = client_json("mirza@example.com");
        persian["first_name"] = json!("می\u{200C}خواهم");
        persian["last_name"] = json!("\u{200F}رضا");
        let created = api.post("/api/v1/clients", &api.admin, &persian, None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["first_name"], "می\u{200C}خواهم");
        assert_eq!(created.body["last_name"], "\u{200F}رضا");
        // Staff, keys, catalog and dunning names: nothing visible is refused too.
        refused(&api, Method::POST, "/api/v1/staff", Some(&json!({ "email": "s@example.com", "name": "\u{200D}", "password": "correct horse battery", "role": "admin" })), (422, "invalid_text", Some("name"), Some("empty"))).await;
        refused(&api, Method::POST, "/api/v1/api-keys", Some(&json!({ "name": "\u{2060}", "scope": "admin" })), (422, "invalid_text", Some("name"), Some("invisible_character"))).await;
        refused(&api, Method::POST, "/api/v1/client-groups", Some(&json!({ "name": "\u{200C}" })), (422, "invalid_text", Some("name"), Some("empty"))).await;
        refused(&api, Method::POST, "/api/v1/dunning/policies", Some(&json!({ "name": "\u{FEFF}x", "policy": {} })), (422, "invalid_text", Some("name"), Some("invisible_character"))).await;
        api.stop().await;
    }
);

store_test!(
    async fn dates_outside_the_years_1900_to_9999_are_refused(t) {
        let api = Api::start(t).await;
        let product = product(&api).await;
        let (client, invoice) = ordered(&api, product).await;
        let date = |field: &'static str| (422u16, "invalid_date", Some(field), None::<&str>);
        let pay = format!("/api/v1/invoices/{invoice}/payments");
        for day in ["0000-01-01", "-0001-12-31", "1899-12-31", "+10000-01-01"] {
            refused(&api, Method::POST, &pay, Some(&json!({ "amount": "1.00", "method": "cash", "reference": format!("R-{day}"), "received_on": day })), date("received_on")).await;
            refused(&api, Method::POST, "/api/v1/billing/runs", Some(&json!({ "as_of": day })), date("as_of")).await;
            refused(&api, Method::POST, "/api/v1/dunning/runs", Some(&json!({ "as_of": day })), date("as_of")).await;
            refused(&api, Method::POST, "/api/v1/invoices", Some(&json!({ "client_id": client, "due_date": day, "lines": [{ "description": "Setup", "unit_price": "5.00" }] })), date("due_date")).await;
            refused(&api, Method::POST, "/api/v1/promotions", Some(&json!({ "code": "OLD-1", "kind": "percent", "percent": "10", "starts_on": day })), date("starts_on")).await;
        }
        // A signed text is left to its field: a phone number that reads like a year-12025
        // date is a phone number (found by the OpenAPI contract test).
        let mut phoned = client_json("dated@example.com");
        phoned["phone"] = json!("+12025-05-12");
        let created = api.post("/api/v1/clients", &api.admin, &phoned, None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["phone"], "+120250512");
        // Timestamps too (an exchange rate's valid_from).
        refused(&api, Method::POST, "/api/v1/exchange-rates", Some(&json!({ "base": "USD", "quote": "ZWG", "rate": "26.5", "valid_from": "0000-01-01T00:00:00Z" })), date("valid_from")).await;
        // The ends of the range are dates like any other.
        let ok = api.post(&pay, &api.admin, &json!({ "amount": "1.00", "method": "cash", "reference": "R-1900", "received_on": "1900-01-01" }), Some("p-1900")).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
        api.stop().await;
    }
);

store_test!(
    async fn a_client_request_id_is_kept_only_when_short_visible_ascii(t) {
        let api = Api::start(t).await;
        let mut n = 0;
        for (sent, kept) in [
            ("req-42_ok.A:b/c", true),
            (&*"r".repeat(64), true),
            (&*"r".repeat(65), false),
            ("two words", false),
            ("fake\tline", false),
        ] {
            n += 1;
            let reply = api
                .send(
                    api.authed(Method::POST, "/api/v1/clients", &api.admin)
                        .header("x-request-id", sent)
                        .json(&client_json(&format!("r{n}@example.com"))),
                )
                .await;
            assert_eq!(reply.status, 201, "{sent:?}: {}", reply.text);
            let echoed = reply.header("x-request-id").expect("a request id").to_string();
            let subject = reply.id().to_string();
            let rows = api.all_items("/api/v1/audit").await;
            let row = rows
                .iter()
                .find(|r| r["action"] == "client.create" && r["subject_id"] == subject.as_str())
                .expect("the create's audit row");
            assert_eq!(row["request_id"], echoed.as_str(), "the audit row carries the id the answer names");
            if kept {
                assert_eq!(echoed, sent);
            } else {
                assert_ne!(echoed, sent, "{sent:?} is replaced");
                assert!(keel_api::usable_request_id(echoed.as_bytes()), "{echoed:?}");
            }
        }
        // Bytes that are not ASCII (obs-text) are replaced too.
        let reply = api
            .send(
                api.authed(Method::GET, "/api/v1/clients", &api.admin).header(
                    "x-request-id",
                    reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
                ),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_ne!(reply.header("x-request-id"), Some("café"));
        assert!(reply.header("x-request-id").is_some_and(|id| id.is_ascii() && !id.is_empty()));
        api.stop().await;
    }
);

/// Random text for the property test: mostly ordinary letters, mixed with everything the
/// rule is about (NUL, controls, line breaks, bidi controls, zero-width characters,
/// whitespace, astral characters), from empty to past the 200-character limit.
fn hostile_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        1 => Just(' '),
        1 => Just('\0'),
        1 => Just('\n'),
        1 => Just('\t'),
        1 => proptest::char::range('\u{1}', '\u{1F}'),
        1 => proptest::char::range('\u{7F}', '\u{9F}'),
        1 => proptest::char::range('\u{202A}', '\u{202E}'),
        1 => proptest::char::range('\u{2066}', '\u{2069}'),
        1 => proptest::char::range('\u{200B}', '\u{200F}'),
        1 => Just('\u{FEFF}'),
        1 => Just('\u{2028}'),
        1 => any::<char>(),
    ];
    prop_oneof![
        8 => proptest::collection::vec(ch.clone(), 0..12),
        1 => proptest::collection::vec(ch, 190..215),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

store_test!(
    async fn random_text_is_refused_or_stored_as_sent_never_a_500(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("prop@example.com", 5000).await;
        let client = w.client.0;
        let mut runner = TestRunner::deterministic();
        let strategy = hostile_text();
        let (mut stored, mut refusals) = (0, 0);
        for case in 0..40 {
            let value = strategy.new_tree(&mut runner).expect("a value").current();
            let before = api.snapshot().await;

            // A client's name: stored exactly as sent, or refused.
            let mut body = client_json(&format!("p{case}@example.com"));
            body["first_name"] = json!(value);
            let created = api.post("/api/v1/clients", &api.admin, &body, None).await;
            // An address line by PATCH, on a client that exists.
            let patched = api.send(api.authed(Method::PATCH, &format!("/api/v1/clients/{client}"), &api.admin)
                .json(&json!({ "address": { "city": value } }))).await;
            // A journal entry's memo (free text; stored trimmed).
            let memo = api.send(api.authed(Method::POST, "/api/v1/ledger/entries", &api.admin)
                .header("idempotency-key", format!("memo-{case}"))
                .json(&adjustment(&value, vec![posting(w.adjustments, Debit, "0.01", "USD"), posting(w.wallet, Credit, "0.01", "USD")]))).await;

            for (what, reply) in [("create", &created), ("patch", &patched), ("memo", &memo)] {
                assert!(reply.status < 500, "{what} {value:?}: {}", reply.text);
                if reply.status >= 400 {
                    refusals += 1;
                    assert_eq!(reply.status, 422, "{what} {value:?}: {}", reply.text);
                    assert_eq!(reply.code(), "invalid_text", "{what} {value:?}: {}", reply.text);
                } else {
                    stored += 1;
                }
            }
            if created.status == 201 {
                let read = api.get(&format!("/api/v1/clients/{}", created.id()), &api.admin).await;
                assert_eq!(read.body["first_name"].as_str(), Some(value.as_str()), "byte-identical");
            }
            let read = api.get(&format!("/api/v1/clients/{client}"), &api.admin).await;
            if patched.status == 200 {
                assert_eq!(read.body["address"]["city"].as_str(), Some(value.as_str()), "byte-identical");
            } else {
                assert_ne!(read.body["address"]["city"].as_str(), Some(value.as_str()));
            }
            if memo.status == 201 {
                let entry = api.get(&format!("/api/v1/ledger/entries/{}", memo.id()), &api.admin).await;
                assert_eq!(entry.body["memo"].as_str(), Some(value.trim()), "stored as sent, trimmed");
            }
            let after = api.snapshot().await;
            let created_ids = usize::from(created.status == 201);
            assert_eq!(after.client_ids.len(), before.client_ids.len() + created_ids, "{value:?}");
            assert_eq!(after.entries, before.entries + usize::from(memo.status == 201), "{value:?}");
        }
        assert!(stored > 0 && refusals > 0, "the strings cover both outcomes ({stored} stored, {refusals} refused)");
        api.stop().await;
    }
);

/// The OpenAPI document states the limits and characters the handlers enforce, from the
/// same table.
#[test]
fn the_openapi_document_gives_text_fields_their_maximum_from_the_table() {
    use keel_domain::text::limits;
    let doc: Value = serde_json::from_str(&keel_api::openapi::document()).expect("JSON");
    let schemas = &doc["components"]["schemas"];
    for (schema, field, rule) in [
        ("PaymentInput", "reference", limits::REFERENCE),
        ("PaymentInput", "note", limits::NOTE),
        ("ManualLine", "description", limits::LINE_DESCRIPTION),
        ("NewStaff", "name", limits::STAFF_NAME),
        ("NewKey", "name", limits::KEY_NAME),
        ("NewClient", "first_name", limits::NAME),
        ("NewClient", "last_name", limits::NAME),
        ("NewClient", "company_name", limits::NAME),
    ] {
        let property = &schemas[schema]["properties"][field];
        assert_eq!(
            property["maxLength"].as_u64(),
            Some(rule.max_chars as u64),
            "{schema}.{field}: {property}"
        );
        // Optional names in NewClient are checked with the rule's may-be-empty form.
        let stated = property["pattern"].as_str().unwrap_or("");
        assert!(
            stated == rule.pattern() || stated == rule.may_be_empty().pattern(),
            "{schema}.{field}: {property}"
        );
    }
    let q = doc["paths"]["/api/v1/clients"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "q")
        .expect("q")
        .clone();
    assert_eq!(
        q["schema"]["maxLength"].as_u64(),
        Some(limits::SEARCH.max_chars as u64),
        "{q}"
    );
}
