//! The API describing and watching itself, on both engines: the OpenAPI document lists
//! exactly the operations the router serves, the docs page renders it, health, readiness
//! and metrics answer, and a route that does not exist is a JSON 404.

mod common;

use common::*;
use keel_api::ApiConfig;
use keel_app::App;
use keel_store::Db;
use keel_store::db::ConnectOptions;
use reqwest::Method;
use std::collections::BTreeSet;

/// Every operation the router serves under `/api/v1` (the document and the docs page that
/// describe the API are not operations of it, so they are not listed).
const SERVED: &[(&str, &str)] = &[
    ("/api/v1/clients", "get"),
    ("/api/v1/clients", "post"),
    ("/api/v1/clients/{id}", "get"),
    ("/api/v1/clients/{id}", "patch"),
    ("/api/v1/clients/{id}", "delete"),
    ("/api/v1/clients/{id}/contacts", "get"),
    ("/api/v1/clients/{id}/contacts", "post"),
    ("/api/v1/clients/{id}/contacts/{contact_id}", "patch"),
    ("/api/v1/clients/{id}/contacts/{contact_id}", "delete"),
    ("/api/v1/staff", "get"),
    ("/api/v1/staff", "post"),
    ("/api/v1/staff/{id}", "patch"),
    ("/api/v1/api-keys", "get"),
    ("/api/v1/api-keys", "post"),
    ("/api/v1/api-keys/{id}", "delete"),
    ("/api/v1/ledger/accounts", "get"),
    ("/api/v1/ledger/accounts/{id}", "get"),
    ("/api/v1/ledger/entries", "get"),
    ("/api/v1/ledger/entries", "post"),
    ("/api/v1/ledger/entries/{id}", "get"),
    ("/api/v1/ledger/entries/{id}/reverse", "post"),
    ("/api/v1/audit", "get"),
    ("/api/v1/audit/verify", "get"),
    // catalog
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
    // orders, invoices, services, the billing run
    ("/api/v1/orders", "post"),
    ("/api/v1/orders/{id}", "get"),
    ("/api/v1/orders/{id}/status", "post"),
    ("/api/v1/invoices", "get"),
    ("/api/v1/invoices", "post"),
    ("/api/v1/invoices/{id}", "get"),
    ("/api/v1/invoices/{id}", "put"),
    ("/api/v1/invoices/{id}/issue", "post"),
    ("/api/v1/invoices/{id}/pdf", "get"),
    ("/api/v1/invoices/{id}/payments", "post"),
    ("/api/v1/invoices/{id}/wallet-payments", "post"),
    ("/api/v1/invoices/{id}/cancel", "post"),
    ("/api/v1/invoices/{id}/collections", "post"),
    // automation
    ("/api/v1/jobs", "get"),
    ("/api/v1/jobs/{id}", "get"),
    ("/api/v1/jobs/{id}/retry", "post"),
    ("/api/v1/jobs/{id}/cancel", "post"),
    ("/api/v1/schedules", "get"),
    ("/api/v1/dunning/policies", "get"),
    ("/api/v1/dunning/policies", "post"),
    ("/api/v1/dunning/policies/{id}", "put"),
    ("/api/v1/dunning/assignments", "put"),
    ("/api/v1/dunning/runs", "post"),
    ("/api/v1/invoices/{id}/dunning", "get"),
    ("/api/v1/automation/preview", "get"),
    // webhooks
    ("/api/v1/webhooks/endpoints", "get"),
    ("/api/v1/webhooks/endpoints", "post"),
    ("/api/v1/webhooks/endpoints/{id}", "get"),
    ("/api/v1/webhooks/endpoints/{id}", "patch"),
    ("/api/v1/webhooks/endpoints/{id}", "delete"),
    ("/api/v1/webhooks/endpoints/{id}/deliveries", "get"),
    ("/api/v1/webhooks/endpoints/{id}/test", "post"),
    ("/api/v1/webhooks/deliveries/{id}", "get"),
    ("/api/v1/webhooks/deliveries/{id}/replay", "post"),
    ("/api/v1/invoices/{id}/credit-notes", "get"),
    ("/api/v1/invoices/{id}/credit-notes", "post"),
    ("/api/v1/credit-notes/{id}", "get"),
    ("/api/v1/credit-notes/{id}/pdf", "get"),
    ("/api/v1/top-ups", "post"),
    ("/api/v1/invoices/{id}/attempts", "get"),
    ("/api/v1/invoices/{id}/attempts", "post"),
    ("/api/v1/invoices/{id}/pay-link", "get"),
    ("/hooks/gateway/{gateway}", "post"),
    ("/hooks/notifier/{plugin}", "get"),
    ("/hooks/notifier/{plugin}", "post"),
    ("/api/v1/services", "get"),
    ("/api/v1/services/{id}", "get"),
    ("/api/v1/services/{id}/status", "post"),
    ("/api/v1/services/{id}/cancellation", "post"),
    ("/api/v1/services/{id}/plan-change/preview", "post"),
    ("/api/v1/services/{id}/plan-change", "post"),
    ("/api/v1/billing/runs", "post"),
    // wallets
    ("/api/v1/clients/{id}/wallets", "get"),
    ("/api/v1/clients/{id}/wallets/{currency}/history", "get"),
    ("/api/v1/clients/{id}/wallets/{currency}/credit", "post"),
    ("/api/v1/clients/{id}/wallets/{currency}/debit", "post"),
    (
        "/api/v1/clients/{id}/wallets/{currency}/credit-limit",
        "put",
    ),
    // notifications
    ("/api/v1/clients/{id}/notifications", "get"),
    (
        "/api/v1/clients/{id}/notification-channels/{channel}",
        "put",
    ),
    ("/api/v1/clients/{id}/consents", "get"),
    ("/api/v1/clients/{id}/consents/{channel}", "put"),
    ("/api/v1/clients/{id}/consents/{channel}", "delete"),
    ("/api/v1/clients/{id}/inbound-messages", "get"),
];

keel_testkit::store_test!(
    async fn the_openapi_document_lists_exactly_the_served_operations(t) {
        let api = Api::start(t).await;
        let doc = api
            .send(api.request(Method::GET, "/api/v1/openapi.json"))
            .await;
        assert_eq!(doc.status, 200, "{}", doc.text);
        assert!(doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));

        let mut described = BTreeSet::new();
        for (path, item) in doc.body["paths"].as_object().expect("paths") {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    described.insert((path.clone(), method.to_string()));
                }
            }
        }
        let served: BTreeSet<_> = SERVED
            .iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect();
        assert_eq!(described, served);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn the_docs_page_is_html_listing_the_operations(t) {
        let api = Api::start(t).await;
        let page = api.send(api.request(Method::GET, "/api/v1/docs")).await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").is_some_and(|v| v.starts_with("text/html")));
        assert!(page.text.contains("/api/v1/clients"));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn health_and_readiness_answer_and_readiness_names_the_engine(t) {
        let api = Api::start(t).await;
        let health = api.send(api.request(Method::GET, "/healthz")).await;
        assert_eq!((health.status, &health.body["status"]), (200, &"ok".into()));

        let ready = api.send(api.request(Method::GET, "/readyz")).await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.body["status"], "ready");
        assert_eq!(ready.body["database"], t.db.engine().name());
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn metrics_count_requests(t) {
        let api = Api::start(t).await;
        api.send(api.request(Method::GET, "/healthz")).await;
        let metrics = api.send(api.request(Method::GET, "/metrics")).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.text.contains("keel_http_requests_total"),
            "{}",
            metrics.text
        );
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn with_a_metrics_token_metrics_and_readiness_need_it_and_health_does_not(t) {
        let config = keel_api::ApiConfig {
            metrics_token: Some(keel_api::OpsToken::new("ops-token-0123456789")),
            ..keel_api::ApiConfig::default()
        };
        let api = Api::start_with(t, config).await;
        for path in ["/metrics", "/readyz"] {
            let none = api.send(api.request(Method::GET, path)).await;
            none.assert_error(401, "invalid_metrics_token", None);
            assert!(none.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{path}");
            assert!(!none.text.contains("keel_http_requests_total"), "{path}: {}", none.text);
            for wrong in ["ops-token-0123456788", "ops-token-012345678", "", &api.admin] {
                let reply = api.send(api.request(Method::GET, path).bearer_auth(wrong)).await;
                reply.assert_error(401, "invalid_metrics_token", None);
            }
            let basic = api.send(api.request(Method::GET, path).header("authorization", "Basic b3BzLXRva2VuLTAxMjM0NTY3ODk=")).await;
            basic.assert_error(401, "invalid_metrics_token", None);
            let ok = api.send(api.request(Method::GET, path).bearer_auth("ops-token-0123456789")).await;
            assert_eq!(ok.status, 200, "{path}: {}", ok.text);
        }
        let metrics = api.send(api.request(Method::GET, "/metrics").bearer_auth("ops-token-0123456789")).await;
        assert!(metrics.text.contains("keel_http_requests_total"), "{}", metrics.text);
        let health = api.send(api.request(Method::GET, "/healthz")).await;
        assert_eq!(health.status, 200, "liveness probes need no token");
        assert!(!format!("{:?}", keel_api::ApiConfig { metrics_token: Some(keel_api::OpsToken::new("ops-token-0123456789")), ..Default::default() }).contains("ops-token"), "Debug redacts it");
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_route_that_does_not_exist_is_a_json_404(t) {
        let api = Api::start(t).await;
        api.get("/api/v1/no-such-resource", &api.admin)
            .await
            .assert_error(404, "not_found", None);
        api.send(api.request(Method::GET, "/nowhere"))
            .await
            .assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_database_failure_is_a_500_that_names_no_cause(t) {
        // The server gets its own handle on the test database, closed before the first
        // request: every query fails inside the store, as when the database goes away.
        let broken = Db::connect(&t.url, &ConnectOptions::default()).await.unwrap();
        broken.close().await;
        let api = Api::start_serving(t, ApiConfig::default(), App::new(broken)).await;

        let reply = api.get("/api/v1/clients", &api.admin).await;
        reply.assert_error(500, "internal", None);
        assert_eq!(
            reply.body["error"]["message"],
            "something went wrong on our side; it has been logged"
        );
        assert_eq!(reply.body["error"]["details"], serde_json::json!({}));
        let text = reply.text.to_lowercase();
        for cause in ["pool", "closed", "sqlx", "sqlite", "postgres", "database"] {
            assert!(!text.contains(cause), "the cause leaked ({cause}): {}", reply.text);
        }

        let ready = api.send(api.request(Method::GET, "/readyz")).await;
        ready.assert_error(503, "not_ready", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_method_a_route_does_not_serve_is_a_json_405_with_allow(t) {
        let api = Api::start(t).await;
        let reply = api
            .send(api.authed(Method::PUT, "/api/v1/clients", &api.admin))
            .await;
        reply.assert_error(405, "method_not_allowed", None);
        let allow = reply.header("allow").unwrap_or_default();
        assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow}");
        api.stop().await;
    }
);
