//! The audit log over HTTP on both engines: writes made through the API are recorded with
//! the request id the caller sent, the hash chain verifies, and only admins may read it.

mod common;

use common::*;
use keel_domain::ledger::Side::{Credit, Debit};
use reqwest::Method;

keel_testkit::store_test!(
    async fn api_writes_are_audited_under_the_callers_request_id(t) {
        let api = Api::start(t).await;
        let w = api.seed_wallet("ada@example.com", 5000).await;

        let create = api
            .authed(Method::POST, "/api/v1/clients", &api.admin)
            .header("x-request-id", "req-client-create")
            .json(&client_json("tendai@mutapa.example"));
        let created = api.send(create).await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.header("x-request-id"), Some("req-client-create"));

        let body = adjustment(
            "Goodwill credit",
            vec![
                posting(w.adjustments, Debit, "10.00", "USD"),
                posting(w.wallet, Credit, "10.00", "USD"),
            ],
        );
        let adjust = api
            .authed(Method::POST, "/api/v1/ledger/entries", &api.admin)
            .header("x-request-id", "req-ledger-adjust")
            .header("idempotency-key", "adj-1")
            .json(&body);
        let adjusted = api.send(adjust).await;
        assert_eq!(adjusted.status, 201, "{}", adjusted.text);

        let rows = api.all_items("/api/v1/audit").await;
        let row = |action: &str| {
            rows.iter()
                .find(|r| r["action"] == action && r["actor_kind"] == "api_key")
                .unwrap_or_else(|| panic!("no {action} row by the API key in {rows:#?}"))
        };
        let client_row = row("client.create");
        assert_eq!(client_row["subject_id"], created.id().to_string());
        assert_eq!(client_row["request_id"], "req-client-create");
        let adjust_row = row("ledger.adjust");
        assert_eq!(adjust_row["subject_id"], adjusted.id().to_string());
        assert_eq!(adjust_row["request_id"], "req-ledger-adjust");

        let verify = api.get("/api/v1/audit/verify", &api.admin).await;
        assert_eq!(verify.status, 200, "{}", verify.text);
        assert!(verify.body["first_break"].is_null(), "{}", verify.text);
        assert_eq!(verify.body["rows"], rows.len());
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_reseller_key_cannot_read_the_audit_log(t) {
        let api = Api::start(t).await;
        for path in ["/api/v1/audit", "/api/v1/audit/verify"] {
            api.get(path, &api.reseller_key)
                .await
                .assert_error(403, "forbidden", None);
        }
        api.stop().await;
    }
);
