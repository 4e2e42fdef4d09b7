//! `/api/v1/webhooks` over HTTP on both engines: endpoint CRUD with the secret shown once,
//! every refusal with its code and nothing changed, a ping delivered to a loopback receiver,
//! the delivery log with its filter, replay, and webhooks closed to reseller and client keys;
//! the host's own network refused, and a retried creation that does not replay (or store)
//! the secret.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use keel_app::access::NewKey;
use keel_app::{App, FixedClock};
use keel_domain::access::KeyScope;
use keel_jobs::{Worker, WorkerConfig};
use keel_testkit::plugins::{FakeProvider, Reply};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

async fn drain(app: &App) {
    let clock = app.clock.clone();
    let w = Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        WorkerConfig::new("default", "api-test"),
        Arc::new(move || clock.now()),
    );
    let stop = tokio::sync::watch::channel(false).1;
    while w.tick(&stop).await.unwrap().claimed > 0 {}
}

keel_testkit::store_test!(
    async fn admins_manage_endpoints_read_the_log_and_replay_over_http(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap()));
        // The receiver is on loopback, which webhooks reach only when the admin allows it.
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(keel_app::webhooks::Settings {
            allow_networks: vec![keel_domain::network::Network::parse("127.0.0.0/8").unwrap()],
        });
        let api = Api::start_serving(t, keel_api::ApiConfig::default(), app.clone()).await;
        let receiver = FakeProvider::start(|_| Reply::text(204, "")).await;
        let url = receiver.url_as("127.0.0.1", "/in");

        // Refusals: each with its code, nothing written.
        let before = api.snapshot().await;
        for (body, code) in [
            (json!({ "url": "ftp://example.com/x", "events": ["*"] }), "invalid_url"),
            (json!({ "url": "example.com/x", "events": ["*"] }), "invalid_url"),
            (json!({ "url": url, "events": [] }), "invalid_events"),
            (json!({ "url": url, "events": ["invoice.eaten"] }), "unknown_event_type"),
        ] {
            api.post("/api/v1/webhooks/endpoints", &api.admin, &body, None).await.assert_error(422, code, Some(if code == "invalid_url" { "url" } else { "events" }));
        }
        api.post("/api/v1/webhooks/endpoints", &api.admin, &json!({ "url": url, "events": ["*"], "secret": "mine" }), None).await.assert_error(422, "unknown_field", None);
        assert_eq!(api.snapshot().await, before, "refusals change nothing");
        assert!(api.get("/api/v1/webhooks/endpoints", &api.admin).await.body.as_array().unwrap().is_empty());

        // Create: the secret is in this answer only.
        let created = api.post("/api/v1/webhooks/endpoints", &api.admin, &json!({ "url": url, "events": ["invoice.paid", "client.created"], "description": "ERP" }), None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.id();
        assert!(created.body["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")));
        assert_eq!(created.body["events"], json!(["invoice.paid", "client.created"]));
        let shown = api.get(&format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).await;
        assert_eq!((shown.status, shown.body["enabled"].as_bool()), (200, Some(true)), "{}", shown.text);
        assert!(shown.body.get("secret").is_none(), "never shown again: {}", shown.text);
        let listed = api.get("/api/v1/webhooks/endpoints", &api.admin).await;
        assert_eq!(listed.body[0]["id"], id);
        assert!(listed.body[0].get("secret").is_none());

        // Update.
        let patched = api.send(api.authed(Method::PATCH, &format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).json(&json!({ "events": ["*"], "description": "ERP (all)" }))).await;
        assert_eq!((patched.status, patched.body["events"].clone()), (200, json!(["*"])), "{}", patched.text);
        let bad = api.send(api.authed(Method::PATCH, &format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).json(&json!({ "url": "mailto:x@example.com" }))).await;
        bad.assert_error(422, "invalid_url", Some("url"));

        // A ping, delivered by the worker; the log shows it; a filter narrows it.
        let ping = api.post(&format!("/api/v1/webhooks/endpoints/{id}/test"), &api.admin, &json!({}), None).await;
        assert_eq!((ping.status, ping.body["state"].as_str(), ping.body["event_type"].as_str()), (202, Some("pending"), Some("webhook.ping")), "{}", ping.text);
        let delivery = ping.id();
        drain(&app).await;
        let got = receiver.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("keel-delivery-id"), Some(delivery.to_string().as_str()));
        let log = api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries"), &api.admin).await;
        assert_eq!(log.status, 200, "{}", log.text);
        assert_eq!((log.body["items"][0]["id"].as_i64(), log.body["items"][0]["state"].as_str(), log.body["items"][0]["last_status_code"].as_i64()), (Some(delivery), Some("delivered"), Some(204)));
        let failed = api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries?state=failed"), &api.admin).await;
        assert_eq!(failed.body["items"].as_array().map(Vec::len), Some(0));
        api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries?state=lost"), &api.admin).await.assert_error(422, "invalid_status", Some("status"));
        api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries?cursor=zz"), &api.admin).await.assert_error(422, "invalid_cursor", Some("cursor"));

        // Newest first, a page at a time.
        api.seed_client("paged@example.com").await;
        let first = api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries?limit=1"), &api.admin).await;
        assert_eq!(first.body["items"][0]["event_type"], "client.created");
        let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
        let second = api.get(&format!("/api/v1/webhooks/endpoints/{id}/deliveries?limit=1&cursor={cursor}"), &api.admin).await;
        assert_eq!(second.body["items"][0]["id"], delivery);
        assert!(second.body["next_cursor"].is_null());

        // Replay: pending again, delivered once more; a pending one is a conflict.
        let replayed = api.post(&format!("/api/v1/webhooks/deliveries/{delivery}/replay"), &api.admin, &json!({}), None).await;
        assert_eq!((replayed.status, replayed.body["state"].as_str()), (202, Some("pending")), "{}", replayed.text);
        api.post(&format!("/api/v1/webhooks/deliveries/{delivery}/replay"), &api.admin, &json!({}), None).await.assert_error(409, "delivery_pending", None);
        drain(&app).await;
        assert_eq!(receiver.received().iter().filter(|r| r.header("keel-delivery-id") == Some(delivery.to_string().as_str())).count(), 2);
        let detail = api.get(&format!("/api/v1/webhooks/deliveries/{delivery}"), &api.admin).await;
        assert_eq!((detail.body["state"].as_str(), detail.body["attempts_log"].as_array().map(Vec::len)), (Some("delivered"), Some(2)), "{}", detail.text);
        api.post("/api/v1/webhooks/deliveries/999999/replay", &api.admin, &json!({}), None).await.assert_error(404, "not_found", None);

        // Disable, and a ping is refused; delete, and it is gone.
        let off = api.send(api.authed(Method::PATCH, &format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).json(&json!({ "enabled": false, "disabled_reason": "ERP migration" }))).await;
        assert_eq!((off.body["enabled"].as_bool(), off.body["disabled_reason"].as_str()), (Some(false), Some("ERP migration")), "{}", off.text);
        api.post(&format!("/api/v1/webhooks/endpoints/{id}/test"), &api.admin, &json!({}), None).await.assert_error(409, "endpoint_disabled", None);
        let gone = api.delete(&format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).await;
        assert_eq!(gone.status, 204, "{}", gone.text);
        api.get(&format!("/api/v1/webhooks/endpoints/{id}"), &api.admin).await.assert_error(404, "not_found", None);
        let audit = api.all_items("/api/v1/audit").await;
        for action in ["webhook.endpoint.create", "webhook.endpoint.update", "webhook.endpoint.ping", "webhook.delivery.replay", "webhook.endpoint.delete"] {
            assert!(audit.iter().any(|r| r["action"] == action), "{action} is audited");
        }
        receiver.stop().await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn reseller_and_client_keys_cannot_touch_webhooks(t) {
        let api = Api::start(t).await;
        let client = api.seed_client("own@example.com").await;
        let client_key = keel_app::access::create_key(&api.app, &system(), NewKey {
            name: "client key".into(),
            scope: KeyScope::Client,
            reseller_id: None,
            client_id: Some(client.id),
            staff_id: None,
        })
        .await
        .unwrap()
        .secret;
        let body = json!({ "url": "https://example.com/in", "events": ["*"] });
        for key in [&api.reseller_key, &client_key] {
            api.get("/api/v1/webhooks/endpoints", key).await.assert_error(403, "forbidden", None);
            api.post("/api/v1/webhooks/endpoints", key, &body, None).await.assert_error(403, "forbidden", None);
            api.post("/api/v1/webhooks/deliveries/1/replay", key, &json!({}), None).await.assert_error(403, "forbidden", None);
        }
        assert!(api.get("/api/v1/webhooks/endpoints", &api.admin).await.body.as_array().unwrap().is_empty());
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_endpoint_on_the_hosts_own_network_is_422_webhook_url_not_allowed(t) {
        // The default settings: no network allowed.
        let api = Api::start(t).await;
        let before = api.snapshot().await;
        for url in ["http://127.0.0.1:9090/", "http://10.20.30.40/hook", "http://[::1]/", "http://[2002:c0a8:101::1]/", "http://169.254.169.254/latest/meta-data/"] {
            let reply = api.post("/api/v1/webhooks/endpoints", &api.admin, &json!({ "url": url, "events": ["*"] }), None).await;
            reply.assert_error(422, "webhook_url_not_allowed", Some("url"));
            assert!(reply.body["error"]["message"].as_str().unwrap().contains("webhooks.allow_networks"), "{}", reply.text);
        }
        assert_eq!(api.snapshot().await, before, "refusals change nothing");
        assert!(api.get("/api/v1/webhooks/endpoints", &api.admin).await.body.as_array().unwrap().is_empty());
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_retried_endpoint_creation_neither_replays_nor_stores_its_secret(t) {
        let api = Api::start(t).await;
        let body = json!({ "url": "https://erp.example.com/keel", "events": ["*"] });
        let first = api.post("/api/v1/webhooks/endpoints", &api.admin, &body, Some("endpoint-1")).await;
        assert_eq!(first.status, 201, "{}", first.text);
        let secret = first.body["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));

        // What the database keeps for the key holds no secret.
        let admin_id = api.get("/api/v1/api-keys", &api.admin).await.body.as_array().unwrap().iter().find(|k| k["name"] == "test admin").unwrap()["id"].as_i64().unwrap();
        let stored = keel_store::idempotency::find(&api.app.db, &format!("key:{admin_id}"), "endpoint-1").await.unwrap().expect("the answer is stored");
        let stored_body = stored.response_body.unwrap();
        assert!(!stored_body.contains(&secret) && !stored_body.contains("whsec_"), "{stored_body}");

        // The retry says the secret was shown once, and names the endpoint it made.
        let again = api.post("/api/v1/webhooks/endpoints", &api.admin, &body, Some("endpoint-1")).await;
        again.assert_error(409, "idempotent_secret_not_replayed", None);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert!(!again.text.contains("whsec_"), "{}", again.text);
        let details = &again.body["error"]["details"];
        assert_eq!((details["status"].as_i64(), details["resource"]["id"].as_i64(), details["withheld"].clone()), (Some(201), Some(first.id()), json!(["secret"])));
        assert_eq!(details["resource"]["url"], "https://erp.example.com/keel");
        assert_eq!(api.get("/api/v1/webhooks/endpoints", &api.admin).await.body.as_array().map(Vec::len), Some(1), "created once");
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_ping_or_a_replay_made_just_before_a_crash_is_replayed_never_sent_again(t) {
        // Issue 14, finding 12: neither has a natural key, so a retry after a crash between
        // the commit and the stored answer (the key's lock long timed out) pinged again, or
        // sent a delivered delivery a third time. The answer now commits with the change;
        // the crash is placed exactly (`Api::begin_crashed`).
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_webhooks(keel_app::webhooks::Settings {
            allow_networks: vec![keel_domain::network::Network::parse("127.0.0.0/8").unwrap()],
        });
        let api = Api::start_serving(t, keel_api::ApiConfig::default(), app.clone()).await;
        let receiver = FakeProvider::start(|_| Reply::text(204, "")).await;
        let url = receiver.url_as("127.0.0.1", "/in");
        let created = api.post("/api/v1/webhooks/endpoints", &api.admin, &json!({ "url": url, "events": ["invoice.paid"] }), None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let endpoint = created.id();

        let ping_path = format!("/api/v1/webhooks/endpoints/{endpoint}/test");
        let (ctx, slot) = api.begin_crashed("ping-crash", &ping_path, &json!({})).await;
        let pinged = keel_app::webhooks::ping_answering(&app, &ctx, endpoint, Some(keel_app::Answer::new(slot, 202))).await.unwrap();
        // ... the process dies; the restarted worker delivers the ping; the client retries.
        drain(&app).await;
        let retry = api.post(&ping_path, &api.admin, &json!({}), Some("ping-crash")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (202, Some("true")), "{}", retry.text);
        assert_eq!(retry.body, serde_json::to_value(&pinged).unwrap(), "the first answer");
        drain(&app).await;
        assert_eq!(receiver.received().len(), 1, "pinged once");

        let replay_path = format!("/api/v1/webhooks/deliveries/{}/replay", pinged.id);
        let (ctx, slot) = api.begin_crashed("replay-crash", &replay_path, &json!({})).await;
        let replayed = keel_app::webhooks::replay_answering(&app, &ctx, pinged.id, Some(keel_app::Answer::new(slot, 202))).await.unwrap();
        assert_eq!(replayed.state, "pending");
        drain(&app).await;
        let retry = api.post(&replay_path, &api.admin, &json!({}), Some("replay-crash")).await;
        assert_eq!((retry.status, retry.header("idempotent-replayed")), (202, Some("true")), "{}", retry.text);
        assert_eq!(retry.body, serde_json::to_value(&replayed).unwrap(), "the first answer");
        drain(&app).await;
        assert_eq!(receiver.received().len(), 2, "sent by the ping, then once by the replay");
        api.stop().await;
    }
);
