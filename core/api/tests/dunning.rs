//! `/api/v1/dunning/*`, `/api/v1/invoices/{id}/dunning` and `/api/v1/automation/preview`
//! over HTTP on both engines: policies created, replaced and assigned with a clear refusal
//! for each bad request (changing nothing), a dunning run and the steps it recorded, the
//! preview, and all of it closed to reseller keys.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use keel_app::{App, FixedClock};
use keel_testkit::scenario::book::{self, BookOptions};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

async fn put(api: &Api, path: &str, body: &Value) -> Reply {
    api.send(api.authed(Method::PUT, path, &api.admin).json(body))
        .await
}

keel_testkit::store_test!(
    async fn staff_manage_policies_run_dunning_and_preview_over_http(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 2, 20, 10, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let due = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        book::seed_book(&app, &BookOptions { services: 6, seed: 2, due_on: due, services_per_client: (1, 2), wallet_percent: 0 }).await.unwrap();
        let api = Api::start_serving(t, keel_api::ApiConfig::default(), app.clone()).await;

        // The preview before anything is issued: the renewals, then their dunning.
        let preview = api.get("/api/v1/automation/preview?days=30", &api.admin).await;
        assert_eq!(preview.status, 200, "{}", preview.text);
        assert_eq!((preview.body["from"].as_str(), preview.body["to"].as_str()), (Some("2027-02-20"), Some("2027-03-21")));
        let invoices: u64 = preview.body["totals"]["invoices"].as_object().unwrap().values().map(|t| t["count"].as_u64().unwrap()).sum();
        assert!(invoices >= 3, "{}", preview.text);
        assert!(preview.body["totals"]["suspensions"].as_u64().unwrap() >= 3, "the default policy suspends after 14 days: {}", preview.text);

        let created = api.post("/api/v1/dunning/policies", &api.admin, &json!({ "name": "Gentle", "policy": { "suspend_days": 30, "overdue_days": [3] } }), None).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.id();
        assert_eq!(created.body["policy"]["reminder_days_before"], json!([7]), "left out: the default");
        assert_eq!(created.body["policy"]["overdue_days"], json!([3]));

        let before = api.snapshot().await;
        api.post("/api/v1/dunning/policies", &api.admin, &json!({ "name": "gentle", "policy": {} }), None).await.assert_error(409, "policy_name_taken", None);
        api.post("/api/v1/dunning/policies", &api.admin, &json!({ "name": "Odd", "policy": { "suspend_days": 20, "terminate_days": 10 } }), None)
            .await
            .assert_error(422, "invalid_dunning_policy", Some("policy"));
        let unknown = api.post("/api/v1/dunning/policies", &api.admin, &json!({ "name": "X", "policy": { "suspend": 3 } }), None).await;
        assert_eq!(unknown.status, 422, "{}", unknown.text);
        api.post("/api/v1/dunning/policies", &api.admin, &json!({ "name": " ", "policy": {} }), None).await.assert_error(422, "invalid_text", Some("name"));
        put(&api, "/api/v1/dunning/assignments", &json!({ "target": "client", "id": 1, "policy_id": 999 })).await.assert_error(422, "unknown_policy", Some("policy_id"));
        put(&api, "/api/v1/dunning/assignments", &json!({ "target": "client", "id": 999999, "policy_id": id })).await.assert_error(404, "not_found", None);
        put(&api, "/api/v1/dunning/policies/999", &json!({ "name": "Y", "policy": {} })).await.assert_error(404, "not_found", None);
        api.get("/api/v1/automation/preview?days=0", &api.admin).await.assert_error(422, "invalid_days", Some("days"));
        api.get("/api/v1/dunning/policies", &api.reseller_key).await.assert_error(403, "forbidden", None);
        api.get("/api/v1/automation/preview", &api.reseller_key).await.assert_error(403, "forbidden", None);
        api.post("/api/v1/dunning/runs", &api.reseller_key, &json!({}), None).await.assert_error(403, "forbidden", None);
        assert_eq!(api.snapshot().await, before, "refusals change nothing");

        let renamed = put(&api, &format!("/api/v1/dunning/policies/{id}"), &json!({ "name": "Gentler", "policy": { "suspend_days": 40, "overdue_days": [3] } })).await;
        assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("Gentler")), "{}", renamed.text);
        let assigned = put(&api, "/api/v1/dunning/assignments", &json!({ "target": "client", "id": 1, "policy_id": id })).await;
        assert_eq!(assigned.status, 204, "{}", assigned.text);
        let listed = api.get("/api/v1/dunning/policies", &api.admin).await;
        assert_eq!((listed.body["items"][0]["name"].as_str(), listed.body["default"]["suspend_days"].as_u64()), (Some("Gentler"), Some(14)));

        // Bill, then dun as of the 2nd: an overdue notice per invoice (client 1's policy
        // has none before the 3rd).
        keel_app::billing_run::run(&app, &system(), &keel_app::billing_run::RunOptions { as_of: due, dry_run: false }, &|_| {}).await.unwrap();
        clock.set(Utc.with_ymd_and_hms(2027, 3, 2, 10, 0, 0).unwrap());
        let run = api.post("/api/v1/dunning/runs", &api.admin, &json!({ "as_of": "2027-03-02" }), None).await;
        assert_eq!(run.status, 200, "{}", run.text);
        assert!(run.body["queued"].as_u64().unwrap() >= 2, "{}", run.text);
        let again = api.post("/api/v1/dunning/runs", &api.admin, &json!({ "as_of": "2027-03-02" }), None).await;
        assert_eq!(again.body["queued"], 0, "a repeated run records nothing: {}", again.text);
        let invoices = api.all_items("/api/v1/invoices").await;
        let mut seen_steps = 0;
        for inv in &invoices {
            let steps = api.get(&format!("/api/v1/invoices/{}/dunning", inv["id"]), &api.admin).await;
            assert_eq!(steps.status, 200, "{}", steps.text);
            for s in steps.body.as_array().unwrap() {
                assert!(s["state"] == "queued" || s["state"] == "skipped", "{s}");
                seen_steps += 1;
            }
            if inv["client_id"] == 1 {
                assert!(steps.body.as_array().unwrap().iter().all(|s| s["step"] != "overdue-1"), "client 1 follows Gentler: {}", steps.text);
            }
        }
        assert!(seen_steps >= 2);
        api.get("/api/v1/invoices/999999/dunning", &api.admin).await.assert_error(404, "not_found", None);
        api.stop().await;
    }
);
