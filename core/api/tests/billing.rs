//! The billing API over HTTP on both engines, as a new user would drive it: order a product,
//! get an invoice with tax, pay it by bank transfer, upgrade mid-cycle and get the prorated
//! invoice, run the billing run a month later and get exactly one renewal, download the PDF.
//! Then the refusals: each with its status and code, and nothing changed.

mod common;

use chrono::{NaiveDate, TimeZone, Utc};
use common::*;
use keel_app::{App, FixedClock};
use keel_testkit::store_test;
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

fn amount(v: &Value) -> i64 {
    v["amount_minor"]
        .as_i64()
        .unwrap_or_else(|| panic!("no amount in {v}"))
}

store_test!(
    async fn a_new_user_orders_pays_upgrades_renews_and_downloads_the_pdf(t) {
        let (api, clock) = start(t).await;
        let (starter, business) = hosting_catalog(&api.app).await;
        let client = api.post("/api/v1/clients", &api.admin, &client_json("tendai@example.com"), None).await;
        assert_eq!(client.status, 201, "{}", client.text);
        let client_id = client.id();

        // Order: a taxed invoice.
        let order = api.post("/api/v1/orders", &api.admin, &json!({
            "client_id": client_id,
            "items": [{ "product_id": starter.get(), "cycle": "monthly", "label": "tendai.example" }],
        }), Some("order-1")).await;
        assert_eq!(order.status, 201, "{}", order.text);
        let invoice = &order.body["invoice"];
        assert_eq!(invoice["number"], "INV-2027-00001");
        assert_eq!((amount(&invoice["subtotal"]), amount(&invoice["tax"]), amount(&invoice["total"])), (1000, 150, 1150));
        assert_eq!(invoice["lines"][0]["taxes"][0]["name"], "VAT");
        let invoice_id = invoice["id"].as_i64().unwrap();
        let service_id = order.body["service_ids"][0].as_i64().unwrap();
        // A retry under the same key is the same order.
        let again = api.post("/api/v1/orders", &api.admin, &json!({
            "client_id": client_id,
            "items": [{ "product_id": starter.get(), "cycle": "monthly", "label": "tendai.example" }],
        }), Some("order-1")).await;
        assert_eq!(again.body["id"], order.body["id"]);

        // Paid by bank transfer: the service starts.
        let paid = api.post(&format!("/api/v1/invoices/{invoice_id}/payments"), &api.admin, &json!({
            "amount": "11.50", "method": "bank_transfer", "reference": "FBC-0001",
        }), Some("pay-1")).await;
        assert_eq!(paid.status, 201, "{}", paid.text);
        assert_eq!(paid.body["status"], "paid");
        let service = api.get(&format!("/api/v1/services/{service_id}"), &api.admin).await;
        assert_eq!(service.body["status"], "active");

        // Mid-cycle upgrade: 16 of 31 days left.
        clock.set(at("2027-01-30"));
        let preview = api.post(&format!("/api/v1/services/{service_id}/plan-change/preview"), &api.admin,
            &json!({ "product_id": business.get() }), None).await;
        assert_eq!(preview.status, 200, "{}", preview.text);
        assert_eq!((amount(&preview.body["credit"]), amount(&preview.body["charge"])), (516, 1548));
        let upgrade = api.post(&format!("/api/v1/services/{service_id}/plan-change"), &api.admin,
            &json!({ "product_id": business.get() }), Some("up-1")).await;
        assert_eq!(upgrade.status, 200, "{}", upgrade.text);
        let up_invoice = &upgrade.body["invoice"];
        assert_eq!(amount(&up_invoice["total"]), 1187);
        let up_id = up_invoice["id"].as_i64().unwrap();
        let paid = api.post(&format!("/api/v1/invoices/{up_id}/payments"), &api.admin, &json!({
            "amount": "11.87", "method": "cash", "reference": "R-77",
        }), Some("pay-2")).await;
        assert_eq!(paid.body["status"], "paid", "{}", paid.text);

        // A month later: exactly one renewal, however often the run is started.
        for expected in [1, 0, 0] {
            let run = api.post("/api/v1/billing/runs", &api.admin, &json!({ "as_of": "2027-02-10" }), None).await;
            assert_eq!(run.status, 200, "{}", run.text);
            assert_eq!(run.body["invoices"], expected, "{}", run.text);
        }
        let list = api.get(&format!("/api/v1/invoices?client_id={client_id}"), &api.admin).await;
        let items = list.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let renewal = &items[2];
        assert_eq!(renewal["number"], "INV-2027-00003");
        assert_eq!(amount(&renewal["total"]), 3450);
        assert_eq!(renewal["due_date"], "2027-02-15");

        // Its PDF.
        let renewal_id = renewal["id"].as_i64().unwrap();
        let pdf = api.get(&format!("/api/v1/invoices/{renewal_id}/pdf"), &api.admin).await;
        assert_eq!(pdf.status, 200);
        assert_eq!(pdf.header("content-type"), Some("application/pdf"));
        assert!(pdf.text.starts_with("%PDF-1."), "a PDF");
        assert!(pdf.text.contains("INV-2027-00003"));

        // The client's own key sees its invoices and nobody else's.
        let other = api.post("/api/v1/clients", &api.admin, &client_json("rudo@example.com"), None).await;
        let other_key = keel_app::access::create_key(&api.app, &system(), keel_app::access::NewKey {
            name: "rudo".into(),
            scope: keel_domain::access::KeyScope::Client,
            reseller_id: None,
            client_id: Some(keel_domain::ids::ClientId(other.id())),
            staff_id: None,
        }).await.unwrap().secret;
        let seen = api.get(&format!("/api/v1/invoices/{renewal_id}"), &other_key).await;
        seen.assert_error(404, "not_found", None);
        let mine = api.get("/api/v1/invoices", &other_key).await;
        assert_eq!(mine.body["items"].as_array().unwrap().len(), 0);
        let forbidden = api.post("/api/v1/billing/runs", &other_key, &json!({}), None).await;
        assert_eq!(forbidden.status, 403, "{}", forbidden.text);
        api.stop().await;
    }
);

store_test!(
    async fn billing_refusals_have_a_code_and_change_nothing(t) {
        let (api, _clock) = start(t).await;
        let (starter, _) = hosting_catalog(&api.app).await;
        let client_id = api.post("/api/v1/clients", &api.admin, &client_json("tendai@example.com"), None).await.id();
        let order = api.post("/api/v1/orders", &api.admin, &json!({
            "client_id": client_id, "items": [{ "product_id": starter.get(), "cycle": "monthly" }],
        }), Some("o-1")).await;
        let invoice_id = order.body["invoice"]["id"].as_i64().unwrap();
        api.post(&format!("/api/v1/invoices/{invoice_id}/payments"), &api.admin, &json!({
            "amount": "1.00", "method": "bank_transfer", "reference": "FBC-1",
        }), Some("p-1")).await;

        let pay = format!("/api/v1/invoices/{invoice_id}/payments");
        let credit = format!("/api/v1/invoices/{invoice_id}/credit-notes");
        let collections = format!("/api/v1/invoices/{invoice_id}/collections");
        let cases: Vec<(&str, Value, Option<&str>, u16, &str)> = vec![
            ("/api/v1/orders", json!({ "client_id": client_id, "items": [{ "product_id": starter.get(), "cycle": "weekly" }] }), Some("o-2"), 422, "unknown_billing_cycle"),
            ("/api/v1/orders", json!({ "client_id": client_id, "currency": "ZWG", "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), Some("o-3"), 422, "no_price"),
            ("/api/v1/orders", json!({ "client_id": client_id, "promo_code": "NOPE1", "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), Some("o-4"), 422, "unknown_promo_code"),
            ("/api/v1/orders", json!({ "client_id": client_id, "items": [{ "product_id": starter.get(), "cycle": "monthly" }] }), None, 400, "idempotency_key_required"),
            (&pay, json!({ "amount": "20.00", "method": "bank_transfer", "reference": "FBC-2" }), Some("p-2"), 422, "overpayment"),
            (&pay, json!({ "amount": "1.00", "method": "bank_transfer", "reference": "FBC-1" }), Some("p-3"), 409, "payment_reference_used"),
            (&pay, json!({ "amount": "1.00", "method": "barter", "reference": "X" }), Some("p-4"), 422, "invalid_field"),
            (&pay, json!({ "amount": "1.00", "method": "cash", "reference": "C-1", "received_on": "2027/01/15" }), Some("p-5"), 422, "invalid_date"),
            ("/api/v1/billing/runs", json!({ "as_of": "15-01-2027" }), None, 422, "invalid_date"),
            (&credit, json!({ "reason": "x", "lines": [{ "line_id": order.body["invoice"]["lines"][0]["id"], "amount": "99.00" }] }), Some("c-1"), 422, "credit_exceeds_invoice"),
            (&collections, json!({ "reason": " " }), None, 422, "invalid_text"),
        ];
        for (path, body, key, status, code) in cases {
            let before = api.snapshot().await;
            let count = api.get("/api/v1/invoices", &api.admin).await.body["items"].as_array().unwrap().len();
            let reply = api.post(path, &api.admin, &body, key).await;
            assert_eq!((reply.status, reply.code()), (status, code), "{path} {body}: {}", reply.text);
            assert_eq!(api.snapshot().await, before, "{code}: nothing changed");
            assert_eq!(api.get("/api/v1/invoices", &api.admin).await.body["items"].as_array().unwrap().len(), count);
        }

        // An issued invoice cannot be edited.
        let edit = api.send(api.authed(reqwest::Method::PUT, &format!("/api/v1/invoices/{invoice_id}"), &api.admin)
            .json(&json!({ "client_id": client_id, "lines": [{ "description": "x", "unit_price": "1.00" }] }))).await;
        edit.assert_error(409, "invoice_issued", None);

        // Handed to collections: still owed, and a second time is refused.
        let sent = api.post(&collections, &api.admin, &json!({ "reason": "handed to the agency" }), None).await;
        assert_eq!((sent.status, sent.body["status"].as_str()), (200, Some("collections")), "{}", sent.text);
        assert_eq!(amount(&sent.body["balance_due"]), 1050);
        let again = api.post(&collections, &api.admin, &json!({ "reason": "again" }), None).await;
        assert_eq!((again.status, again.code()), (409, "invoice_not_collectable"), "{}", again.text);
        api.stop().await;
    }
);
