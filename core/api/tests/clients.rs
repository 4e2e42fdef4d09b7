//! `/api/v1/clients` over HTTP on both engines: the first three requests a new user makes,
//! every class of bad input (each refused with its own code, naming the field, changing
//! nothing), unknown ids, and cursor pagination.

mod common;

use common::*;
use keel_api::ApiConfig;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Posts `body` as a new client and asserts it is refused with `status`/`code`/`field`
/// while clients, audit log and ledger stay exactly as they were.
async fn assert_create_refused(
    api: &Api,
    body: &Value,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let before = api.snapshot().await;
    api.post("/api/v1/clients", &api.admin, body, None)
        .await
        .assert_error(status, code, field);
    assert_eq!(
        api.snapshot().await,
        before,
        "a refused write changes nothing"
    );
}

/// A valid client body with one field replaced.
fn client_with(field: &str, value: Value) -> Value {
    let mut body = client_json("ada@example.com");
    body[field] = value;
    body
}

keel_testkit::store_test!(
    async fn a_new_user_lists_creates_and_fetches_a_client(t) {
        let api = Api::start(t).await;

        let empty = api.get("/api/v1/clients", &api.admin).await;
        assert_eq!(empty.status, 200, "{}", empty.text);
        assert_eq!(empty.body["items"], json!([]));
        assert!(empty.body["next_cursor"].is_null());

        let created = api
            .post(
                "/api/v1/clients",
                &api.admin,
                &client_json("tendai@mutapa.example"),
                None,
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["email"], "tendai@mutapa.example");
        assert_eq!(created.body["status"], "active");
        assert!(created.body["reseller_id"].is_null(), "the host owns it");

        let fetched = api
            .get(&format!("/api/v1/clients/{}", created.id()), &api.admin)
            .await;
        assert_eq!(fetched.status, 200, "{}", fetched.text);
        assert_eq!(fetched.body, created.body);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn malformed_json_is_400_invalid_json(t) {
        let api = Api::start(t).await;
        let before = api.snapshot().await;
        let reply = api
            .send(
                api.authed(Method::POST, "/api/v1/clients", &api.admin)
                    .header("content-type", "application/json")
                    .body(r#"{"kind": "person", "first_name": "#),
            )
            .await;
        reply.assert_error(400, "invalid_json", None);
        assert_eq!(api.snapshot().await, before);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_field_of_the_wrong_type_is_422_wrong_type_naming_it(t) {
        let api = Api::start(t).await;
        let body = client_with("first_name", json!(42));
        assert_create_refused(&api, &body, 422, "wrong_type", Some("first_name")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_field_is_422_unknown_field_naming_it(t) {
        let api = Api::start(t).await;
        let body = client_with("nickname", json!("Ada"));
        assert_create_refused(&api, &body, 422, "unknown_field", Some("nickname")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_missing_field_is_422_missing_field_naming_it(t) {
        let api = Api::start(t).await;
        let mut body = client_json("ada@example.com");
        body.as_object_mut().unwrap().remove("email");
        // extract.rs promises `details.field` names the path for a missing field too.
        assert_create_refused(&api, &body, 422, "missing_field", Some("email")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_number_where_a_kind_is_expected_is_422_wrong_type(t) {
        // Valid JSON of the wrong type: serde_json reports a number given for an enum as a
        // syntax error ("expected value"), which must not make it a 400 invalid_json.
        let api = Api::start(t).await;
        let body = client_with("kind", json!(1));
        assert_create_refused(&api, &body, 422, "wrong_type", Some("kind")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_invalid_email_is_422_invalid_email(t) {
        let api = Api::start(t).await;
        let body = client_with("email", json!("ada@"));
        assert_create_refused(&api, &body, 422, "invalid_email", Some("email")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_invalid_country_is_422_invalid_country(t) {
        let api = Api::start(t).await;
        let body = client_with("country", json!("UK"));
        assert_create_refused(&api, &body, 422, "invalid_country", Some("country")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_invalid_phone_is_422_invalid_phone(t) {
        let api = Api::start(t).await;
        let body = client_with("phone", json!("0771234567"));
        assert_create_refused(&api, &body, 422, "invalid_phone", Some("phone")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_currency_is_422_unknown_currency(t) {
        let api = Api::start(t).await;
        let body = client_with("currency", json!("XYZ"));
        assert_create_refused(&api, &body, 422, "unknown_currency", Some("currency")).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_body_without_content_type_is_415(t) {
        let api = Api::start(t).await;
        let before = api.snapshot().await;
        let body = client_json("ada@example.com").to_string();
        let reply = api
            .send(api.authed(Method::POST, "/api/v1/clients", &api.admin).body(body))
            .await;
        reply.assert_error(415, "unsupported_media_type", None);
        assert_eq!(api.snapshot().await, before);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_body_over_the_limit_is_413(t) {
        let config = ApiConfig {
            body_limit_bytes: 2048,
            ..Default::default()
        };
        let api = Api::start_with(t, config).await;
        let body = client_with("last_name", json!("M".repeat(4096)));
        assert_create_refused(&api, &body, 413, "payload_too_large", None).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_second_client_with_the_same_email_is_409_email_taken(t) {
        let api = Api::start(t).await;
        api.seed_client("ada@example.com").await;
        let body = client_json("ada@example.com");
        assert_create_refused(&api, &body, 409, "email_taken", None).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_client_id_is_404_not_found(t) {
        let api = Api::start(t).await;
        api.get("/api/v1/clients/999999", &api.admin)
            .await
            .assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_client_id_that_is_not_a_number_is_a_json_404(t) {
        // No client has the id "abc": the same answer as any unknown id, in Keel's shape.
        let api = Api::start(t).await;
        api.get("/api/v1/clients/abc", &api.admin)
            .await
            .assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn pages_of_two_show_every_client_exactly_once(t) {
        let api = Api::start(t).await;
        let mut created = BTreeSet::new();
        for i in 0..5 {
            created.insert(api.seed_client(&format!("c{i}@example.com")).await.id.get());
        }

        let mut seen = Vec::new();
        let mut path = "/api/v1/clients?limit=2".to_string();
        loop {
            let page = api.get(&path, &api.admin).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let items = page.body["items"].as_array().unwrap();
            assert!(items.len() <= 2, "a page holds at most the limit");
            seen.extend(items.iter().map(|c| c["id"].as_i64().unwrap()));
            match page.body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/clients?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "no client twice: {seen:?}");
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), created);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_limit_outside_1_to_200_is_422_invalid_limit(t) {
        let api = Api::start(t).await;
        for limit in [0, 201] {
            api.get(&format!("/api/v1/clients?limit={limit}"), &api.admin)
                .await
                .assert_error(422, "invalid_limit", Some("limit"));
        }
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_cursor_the_api_never_gave_is_422_invalid_cursor(t) {
        let api = Api::start(t).await;
        api.get("/api/v1/clients?cursor=garbage", &api.admin)
            .await
            .assert_error(422, "invalid_cursor", Some("cursor"));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_query_parameter_is_400_invalid_query(t) {
        let api = Api::start(t).await;
        api.get("/api/v1/clients?colour=red", &api.admin)
            .await
            .assert_error(400, "invalid_query", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_repeated_delete_under_one_idempotency_key_replays_the_empty_204(t) {
        let api = Api::start(t).await;
        let client = api.seed_client("gone@example.co.zw").await;
        let path = format!("/api/v1/clients/{}", client.id);
        let delete = || api.authed(Method::DELETE, &path, &api.admin).header("Idempotency-Key", "delete-gone");

        let first = api.send(delete()).await;
        let again = api.send(delete()).await;

        assert_eq!((first.status, again.status), (204, 204), "{}", again.text);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.header("content-type"), None, "an empty answer claims no media type");
        assert!(again.text.is_empty());
        assert_eq!(api.get(&path, &api.admin).await.status, 404);
        api.stop().await;
    }
);
