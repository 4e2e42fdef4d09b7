//! Who may call what, over HTTP on both engines: every way to be refused at the door has its
//! own 401 code; a reseller key sees only its own tenancy (another tenant's client is 404,
//! never 403) and none of the host's books; a key over its rate is 429 with Retry-After.

mod common;

use common::*;
use keel_api::ApiConfig;
use reqwest::Method;
use serde_json::json;

keel_testkit::store_test!(
    async fn a_request_without_credentials_is_401_with_a_challenge(t) {
        let api = Api::start(t).await;
        let reply = api.send(api.request(Method::GET, "/api/v1/clients")).await;
        reply.assert_error(401, "missing_credentials", None);
        assert!(reply.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_key_of_the_wrong_shape_is_401_malformed_api_key(t) {
        let api = Api::start(t).await;
        let reply = api.get("/api/v1/clients", "keel_ad_tooshort").await;
        reply.assert_error(401, "malformed_api_key", None);
        assert!(reply.header("www-authenticate").is_some());
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_well_formed_key_nobody_issued_is_401_invalid_api_key(t) {
        let api = Api::start(t).await;
        let forged = format!("keel_ad_{}", "0f".repeat(32));
        api.get("/api/v1/clients", &forged)
            .await
            .assert_error(401, "invalid_api_key", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_revoked_key_is_401_api_key_revoked(t) {
        let api = Api::start(t).await;
        let new_key = json!({ "name": "ci deploys", "scope": "admin" });
        let created = api.post("/api/v1/api-keys", &api.admin, &new_key, None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let secret = created.body["secret"].as_str().unwrap().to_string();
        assert_eq!(api.get("/api/v1/clients", &secret).await.status, 200);

        let revoked = api
            .delete(&format!("/api/v1/api-keys/{}", created.id()), &api.admin)
            .await;
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        assert!(revoked.body["revoked_at"].is_string());
        api.get("/api/v1/clients", &secret)
            .await
            .assert_error(401, "api_key_revoked", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_retried_key_creation_neither_replays_nor_stores_the_key(t) {
        let api = Api::start(t).await;
        let new_key = json!({ "name": "ci deploys", "scope": "admin" });
        let created = api.post("/api/v1/api-keys", &api.admin, &new_key, Some("key-1")).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let secret = created.body["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("keel_ad_"));

        // Whoever reads the idempotency table (or a backup of it) finds no key in it.
        let keys = api.get("/api/v1/api-keys", &api.admin).await;
        let admin_id = keys.body.as_array().unwrap().iter().find(|k| k["name"] == "test admin").unwrap()["id"].as_i64().unwrap();
        let stored = keel_store::idempotency::find(&api.app.db, &format!("key:{admin_id}"), "key-1").await.unwrap().expect("the answer is stored");
        let stored_body = stored.response_body.unwrap();
        // (Its visible prefix, `keel_ad_` and 8 characters, is in the record like in any list.)
        let hidden_part = &secret[secret.len() - 24..];
        assert!(!stored_body.contains(&secret) && !stored_body.contains(hidden_part), "{stored_body}");
        assert_eq!(stored.response_status, Some(409));

        // A retry is told the key was shown once, with the key's record to revoke it by.
        let again = api.post("/api/v1/api-keys", &api.admin, &new_key, Some("key-1")).await;
        again.assert_error(409, "idempotent_secret_not_replayed", None);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert!(!again.text.contains(hidden_part), "{}", again.text);
        let resource = &again.body["error"]["details"]["resource"];
        assert_eq!((resource["id"].as_i64(), resource["name"].as_str()), (Some(created.id()), Some("ci deploys")));
        assert!(resource.get("secret").is_none());
        let listed = api.get("/api/v1/api-keys", &api.admin).await;
        assert_eq!(listed.body.as_array().unwrap().iter().filter(|k| k["name"] == "ci deploys").count(), 1, "made once");
        // The key from the first answer works; nothing else was minted.
        assert_eq!(api.get("/api/v1/clients", &secret).await.status, 200);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_reseller_key_cannot_read_the_ledger(t) {
        let api = Api::start(t).await;
        let reply = api.get("/api/v1/ledger/accounts", &api.reseller_key).await;
        reply.assert_error(403, "forbidden", None);
        assert_eq!(reply.body["error"]["details"]["permission"], "ledger:read");
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_reseller_sees_only_its_own_clients_and_others_are_404(t) {
        let api = Api::start(t).await;
        let mine = api.seed_reseller_client(api.reseller, "mine@example.com").await;
        let hosts = api.seed_client("host@example.com").await;
        let (other_reseller, _) = reseller(&api.app, "Karoo Resellers").await;
        let theirs = api.seed_reseller_client(other_reseller, "theirs@example.com").await;

        let key = &api.reseller_key;
        for hidden in [hosts.id, theirs.id] {
            api.get(&format!("/api/v1/clients/{hidden}"), key)
                .await
                .assert_error(404, "not_found", None);
        }
        let own = api.get(&format!("/api/v1/clients/{}", mine.id), key).await;
        assert_eq!(own.status, 200, "{}", own.text);

        let listed = api.get("/api/v1/clients", key).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(listed.body["items"][0]["id"], json!(mine.id));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_client_created_with_a_reseller_key_belongs_to_that_reseller(t) {
        let api = Api::start(t).await;
        let body = client_json("nyasha@example.co.zw");
        let created = api.post("/api/v1/clients", &api.reseller_key, &body, None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.body["reseller_id"], json!(api.reseller));

        let as_admin = api
            .get(&format!("/api/v1/clients/{}", created.id()), &api.admin)
            .await;
        assert_eq!(as_admin.body["reseller_id"], json!(api.reseller));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn the_request_after_the_burst_is_429_with_retry_after(t) {
        let config = ApiConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            ..Default::default()
        };
        let api = Api::start_with(t, config).await;
        for _ in 0..2 {
            assert_eq!(api.get("/api/v1/clients", &api.admin).await.status, 200);
        }
        let limited = api.get("/api/v1/clients", &api.admin).await;
        limited.assert_error(429, "rate_limited", None);
        let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
        assert!(retry_after >= 1, "Retry-After: {retry_after}");
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_admin_cannot_deactivate_itself_nor_the_last_active_admin(t) {
        let api = Api::start(t).await;
        let admin = |email: &str| json!({ "email": email, "name": "Admin", "password": "correct horse battery", "role": "admin" });
        let a = api.post("/api/v1/staff", &api.admin, &admin("a@keel.example"), None).await.id();
        let b = api.post("/api/v1/staff", &api.admin, &admin("b@keel.example"), None).await.id();
        let a_key = api.post("/api/v1/api-keys", &api.admin, &json!({ "name": "a's key", "scope": "admin", "staff_id": a }), None).await;
        assert_eq!(a_key.status, 201, "{}", a_key.text);
        let a_key = a_key.body["secret"].as_str().unwrap().to_string();
        let patch = |key: &str, id: i64, body: serde_json::Value| api.authed(Method::PATCH, &format!("/api/v1/staff/{id}"), key).json(&body);

        // Yourself: refused, even with another admin still active.
        api.send(patch(&a_key, a, json!({ "active": false }))).await.assert_error(409, "cannot_deactivate_self", None);
        // Another admin while one stays: fine.
        let off = api.send(patch(&a_key, b, json!({ "active": false }))).await;
        assert_eq!((off.status, off.body["active"].as_bool()), (200, Some(false)), "{}", off.text);
        // Now a is the last active admin: neither deactivated nor demoted, by anyone.
        let before = api.snapshot().await;
        api.send(patch(&api.admin, a, json!({ "active": false }))).await.assert_error(409, "last_active_admin", None);
        api.send(patch(&api.admin, a, json!({ "role": "billing" }))).await.assert_error(409, "last_active_admin", None);
        assert_eq!(api.snapshot().await, before, "refusals change nothing (no audit row either)");
        let listed = api.get("/api/v1/staff", &api.admin).await;
        let a_row = listed.body.as_array().unwrap().iter().find(|s| s["id"] == a).unwrap().clone();
        assert_eq!((a_row["active"].as_bool(), a_row["role"].as_str()), (Some(true), Some("admin")));
        // Renaming the last admin is no lockout; with b back, a may go.
        assert_eq!(api.send(patch(&api.admin, a, json!({ "name": "Still here" }))).await.status, 200);
        assert_eq!(api.send(patch(&api.admin, b, json!({ "active": true }))).await.status, 200);
        let gone = api.send(patch(&api.admin, a, json!({ "active": false }))).await;
        assert_eq!((gone.status, gone.body["active"].as_bool()), (200, Some(false)), "{}", gone.text);
        api.stop().await;
    }
);
