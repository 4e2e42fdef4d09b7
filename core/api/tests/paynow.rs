//! Paynow end to end over HTTP, on both engines: Keel's API with the real Paynow component in
//! the real plugin host, talking to the protocol-faithful fake Paynow on loopback
//! (`keel_testkit::paynow`), which posts its status updates back to `/hooks/gateway/paynow`.
//!
//! How the component reaches the fake: [`common::paynow`].
//!
//! Covered: web checkout and an EcoCash test number paid exactly once; a refused test
//! number; every forged or contradictory update refused with its code and nothing changed
//! (a forged or missing hash, the key in the wrong case, the other currency's integration,
//! an unknown reference, a body of several MiB, malformed form encoding, `Paid` after
//! `Cancelled`, an update the poll does not confirm); fifty concurrent copies of one update
//! making one payment; the scheduled poll settling a payment whose update never came; the
//! pay pages asking Paynow about a pending payment at most every `ASK_EVERY`, so one whose
//! update was lost still shows paid.

mod common;

use chrono::{TimeZone, Utc};
use common::paynow::*;
use common::*;
use keel_app::gateway_payments;
use keel_app::{App, FixedClock};
use keel_domain::ids::{ClientId, InvoiceId};
use keel_testkit::TestDb;
use keel_testkit::paynow::{FakePaynow, Update};
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Product, Scenario};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The monthly prices of the products the tests order.
const PRICES: [i64; 5] = [1000, 1200, 1500, 2500, 4000];

struct World {
    api: Api,
    /// Monthly products by price in minor units.
    products: std::collections::BTreeMap<i64, keel_domain::ids::ProductId>,
    fake: FakePaynow,
    clock: Arc<FixedClock>,
    client: ClientId,
    key: String,
    _harness: PluginHarness,
}

async fn world(t: &TestDb) -> World {
    let fake = FakePaynow::builder(&INTEGRATIONS)
        .public_host("www.paynow.co.zw")
        .delays(Duration::from_millis(50), Duration::from_millis(150))
        .retry_backoff(Duration::from_millis(20))
        .start()
        .await;
    let (harness, gateways) = paynow_gateway(&fake).await;
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let db = t.db.clone();
    let served_clock = clock.clone();
    let api = Api::start_addressed(t, keel_api::ApiConfig::default(), move |base| {
        App::with_clock(db, served_clock)
            .with_gateways(gateways)
            .with_payments(gateway_payments::Settings {
                public_url: base,
                ..Default::default()
            })
    })
    .await;
    let mut scenario = Scenario::new(&api.app)
        .client(keel_testkit::scenario::Client::new("tendai@example.co.zw").name("Tendai", "Moyo"));
    for price in PRICES {
        scenario = scenario.product(Product::new(&format!("Plan {price}")).monthly(price));
    }
    let built = scenario.build().await;
    let client = built.client("tendai@example.co.zw");
    let products = PRICES
        .iter()
        .map(|p| (*p, built.product(&format!("Plan {p}"))))
        .collect();
    let key = client_key(&api.app, client).await;
    World {
        api,
        products,
        fake,
        clock,
        client,
        key,
        _harness: harness,
    }
}

impl World {
    async fn invoice(&self, minor: i64) -> InvoiceId {
        let product = self.products[&minor];
        let order = self
            .api
            .post(
                "/api/v1/orders",
                &self.api.admin,
                &json!({ "client_id": self.client.get(), "items": [{ "product_id": product.get(), "cycle": "monthly" }] }),
                Some(&format!("order-{minor}")),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        InvoiceId(order.body["invoice"]["id"].as_i64().unwrap())
    }

    /// Starts a payment as the client; returns the attempt.
    async fn pay(&self, invoice: InvoiceId, body: Value, idem: &str) -> Value {
        let reply = self
            .api
            .post(
                &format!("/api/v1/invoices/{}/attempts", invoice.get()),
                &self.key,
                &body,
                Some(idem),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body
    }

    async fn invoice_json(&self, invoice: InvoiceId) -> Value {
        self.api
            .get(
                &format!("/api/v1/invoices/{}", invoice.get()),
                &self.api.admin,
            )
            .await
            .body
    }

    async fn attempts(&self, invoice: InvoiceId) -> Vec<Value> {
        let reply = self
            .api
            .get(
                &format!("/api/v1/invoices/{}/attempts", invoice.get()),
                &self.key,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body.as_array().unwrap().clone()
    }

    /// A raw POST to the hook, as a provider (or an attacker) would send it.
    async fn hook(&self, body: impl Into<reqwest::Body>) -> Reply {
        self.api
            .send(
                self.api
                    .request(Method::POST, "/hooks/gateway/paynow")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body),
            )
            .await
    }

    async fn payments_of(&self, invoice: InvoiceId) -> usize {
        self.invoice_json(invoice).await["payments"]
            .as_array()
            .unwrap()
            .len()
    }

    async fn finish(self) {
        keel_testkit::assert_ledger_balanced(&self.api.app.db).await;
        self.fake.stop().await;
        self.api.stop().await;
    }
}

keel_testkit::store_test!(
    async fn a_client_pays_by_web_checkout_once_however_often_paynow_repeats_it(t) {
        let w = world(t).await;
        let invoice = w.invoice(2500).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        assert_eq!(attempt["state"], "pending");
        let reference = attempt["reference"].as_str().unwrap().to_owned();
        let redirect = attempt["action"]["url"].as_str().unwrap();
        assert_eq!(attempt["action"]["kind"], "redirect");
        assert!(redirect.starts_with(&format!("http://www.paynow.co.zw:{}/Payment/ConfirmPayment/", w.fake.port())), "{redirect}");

        // What reached Paynow: the USD integration, two decimal places, Keel's URLs.
        let sent = w.fake.transaction(&reference).unwrap();
        assert_eq!(sent.integration_id, USD_ID);
        assert_eq!(sent.amount, "25.00");
        assert_eq!(sent.result_url, w.api.url("/hooks/gateway/paynow"));
        assert_eq!(sent.return_url, w.api.url(&format!("/pay/return/{reference}")));

        // A double click (the same key) is the same attempt, and Paynow saw one transaction.
        let again = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        assert_eq!(again["id"], attempt["id"]);
        assert_eq!(w.fake.transactions().len(), 1);

        // Paynow posts Paid, three times over: one payment.
        let deliveries = w.fake.deliver(&reference, Update::paid().times(3)).await;
        assert!(deliveries.iter().all(|d| d.succeeded()), "{deliveries:#?}");
        let paid = w.invoice_json(invoice).await;
        assert_eq!(paid["status"], "paid", "{paid}");
        assert_eq!(w.payments_of(invoice).await, 1);
        assert_eq!(paid["payments"][0]["method"], "paynow");
        assert_eq!(paid["payments"][0]["reference"], sent.paynow_reference);
        let attempts = w.attempts(invoice).await;
        assert_eq!(attempts[0]["state"], "succeeded");
        assert_eq!(attempts[0]["provider_status"], "Paid");
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn an_ecocash_test_number_pays_and_the_refused_one_fails_at_once(t) {
        let w = world(t).await;
        let invoice = w.invoice(1000).await;
        let attempt = w
            .pay(invoice, json!({ "gateway": "paynow", "method": "ecocash", "phone": "0771111111" }), "eco-1")
            .await;
        assert_eq!(attempt["action"]["kind"], "instructions", "{attempt}");
        // 0771111111 succeeds after the fake's short delay and posts Paid to Keel.
        let deliveries = w.fake.wait_for_deliveries(1, Duration::from_secs(20)).await;
        assert!(deliveries[0].succeeded(), "{deliveries:#?}");
        assert_eq!(w.invoice_json(invoice).await["status"], "paid");
        assert_eq!(w.payments_of(invoice).await, 1);

        // 0774444444: Paynow refuses at initiation ("Insufficient balance").
        let other = w.invoice(1200).await;
        let reply = w
            .api
            .post(
                &format!("/api/v1/invoices/{}/attempts", other.get()),
                &w.key,
                &json!({ "gateway": "paynow", "method": "ecocash", "phone": "0774444444" }),
                Some("eco-2"),
            )
            .await;
        reply.assert_error(422, "payment_refused", None);
        assert!(reply.text.contains("Insufficient balance"), "{}", reply.text);
        let attempts = w.attempts(other).await;
        assert_eq!(attempts[0]["state"], "failed");
        assert_eq!(w.invoice_json(other).await["status"], "unpaid");
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn forged_and_contradictory_updates_are_refused_and_change_nothing(t) {
        let w = world(t).await;
        let invoice = w.invoice(2500).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        let reference = attempt["reference"].as_str().unwrap().to_owned();

        for (what, update) in [
            ("a forged hash", Update::paid().signed_with_key("not-the-key")),
            ("the key in upper case", Update::paid().signed_with_upper_case_key()),
            ("the ZWG integration's key", Update::paid().signed_by_integration(ZWG_ID)),
            ("no hash", Update::paid().unsigned()),
        ] {
            let deliveries = w.fake.deliver(&reference, update).await;
            assert!(!deliveries.is_empty());
            for d in &deliveries {
                assert_eq!(d.status, Some(400), "{what}: {d:?}");
            }
            // Paynow retries an error up to ten times in all.
            assert_eq!(deliveries.len(), 10, "{what}");
            assert_eq!(w.payments_of(invoice).await, 0, "{what}");
        }
        let last = w.fake.deliveries();
        let refused = w.hook(last.last().unwrap().body.clone()).await;
        refused.assert_error(400, "callback_refused", None);

        // Genuine, but the poll does not confirm it: a trigger only, nothing paid.
        let d = w.fake.deliver(&reference, Update::paid().set_poll_status(false)).await;
        assert!(d[0].succeeded(), "{d:?}");
        assert_eq!(w.payments_of(invoice).await, 0);
        assert_eq!(w.attempts(invoice).await[0]["state"], "pending");

        // An unknown reference, several MiB, malformed encoding, an unknown gateway.
        let unknown = w
            .hook("reference=NOPE-1&paynowreference=1&amount=25.00&status=Paid&pollurl=x&hash=00")
            .await;
        unknown.assert_error(400, "callback_refused", None);
        // A forger learns nothing of which references exist: the same answer for a known one.
        let known = w
            .hook(format!("reference={reference}&paynowreference=1&amount=25.00&status=Paid&pollurl=x&hash=00"))
            .await;
        known.assert_error(400, "callback_refused", None);
        assert_eq!(unknown.body["error"]["message"], known.body["error"]["message"]);
        w.hook(vec![b'a'; 64 * 1024 + 1]).await.assert_error(413, "payload_too_large", None);
        // Several MiB: answered 413 as soon as the limit is passed; the client may see the
        // connection closed while it is still writing. Either way nothing is read further.
        let big = w
            .api
            .request(Method::POST, "/hooks/gateway/paynow")
            .body(vec![b'a'; 4 * 1024 * 1024])
            .send()
            .await;
        if let Ok(res) = big {
            assert_eq!(res.status().as_u16(), 413);
        }
        w.hook(format!("reference={reference}&amount=%zz&hash=00"))
            .await
            .assert_error(400, "callback_refused", None);
        let nope = w
            .api
            .send(w.api.request(Method::POST, "/hooks/gateway/stripe").body("a=b"))
            .await;
        nope.assert_error(404, "not_found", None);
        assert_eq!(w.payments_of(invoice).await, 0);

        // Cancelled, then Paid: the second is a contradiction, refused every time.
        let d = w.fake.cancel(&reference).await;
        assert!(d[0].succeeded(), "{d:?}");
        assert_eq!(w.attempts(invoice).await[0]["state"], "cancelled");
        let d = w.fake.deliver(&reference, Update::paid()).await;
        assert!(d.iter().all(|d| d.status == Some(409)), "{d:#?}");
        assert_eq!(w.payments_of(invoice).await, 0);
        let flagged = &w.attempts(invoice).await[0];
        assert_eq!(flagged["state"], "cancelled");
        assert!(flagged["attention"].as_str().unwrap().contains("cancelled"), "{flagged}");
        assert_eq!(w.invoice_json(invoice).await["status"], "unpaid");
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn fifty_concurrent_copies_of_one_update_make_one_payment(t) {
        let w = world(t).await;
        let invoice = w.invoice(4000).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        let reference = attempt["reference"].as_str().unwrap().to_owned();
        // Paynow's record says Paid, and its update arrives fifty times at once.
        w.fake.set_status(&reference, "Paid");
        let sent = w.fake.transaction(&reference).unwrap();
        let fields = vec![
            ("reference".to_owned(), reference.clone()),
            ("paynowreference".to_owned(), sent.paynow_reference.clone()),
            ("amount".to_owned(), "40.00".to_owned()),
            ("status".to_owned(), "Paid".to_owned()),
            ("pollurl".to_owned(), sent.poll_url.clone()),
        ];
        let body = keel_testkit::paynow::wire::encode(&keel_testkit::paynow::wire::sign(fields, USD_KEY));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let request = w
                .api
                .request(Method::POST, "/hooks/gateway/paynow")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            tasks.push(tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        assert_eq!(w.payments_of(invoice).await, 1);
        assert_eq!(w.invoice_json(invoice).await["status"], "paid");
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn the_scheduled_poll_settles_a_payment_whose_update_never_came(t) {
        let w = world(t).await;
        let invoice = w.invoice(1500).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        let reference = attempt["reference"].as_str().unwrap().to_owned();
        w.fake.set_status(&reference, "Paid");
        let app = &w.api.served;
        let ctx = keel_app::Ctx::system("test poll");
        // Too early: not asked yet.
        assert_eq!(gateway_payments::poll_due(app, &ctx).await.unwrap().polled, 0);
        w.clock.advance(chrono::Duration::minutes(3));
        let report = gateway_payments::poll_due(app, &ctx).await.unwrap();
        assert_eq!((report.polled, report.settled), (1, 1), "{report:?}");
        assert_eq!(w.invoice_json(invoice).await["status"], "paid");
        assert_eq!(w.payments_of(invoice).await, 1);
        // Polled with an empty body, as Paynow's poll URL expects.
        let polls: Vec<_> = w
            .fake
            .received()
            .into_iter()
            .filter(|r| r.uri.to_ascii_lowercase().contains("checkpayment"))
            .collect();
        assert_eq!(polls.len(), 1);
        assert!(polls[0].body.is_empty());
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn a_payment_paynow_later_reports_refunded_is_reversed_once_and_the_invoice_reopened(t) {
        let w = world(t).await;
        let invoice = w.invoice(2500).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        let reference = attempt["reference"].as_str().unwrap().to_owned();
        let paid = w.fake.deliver(&reference, Update::paid()).await;
        assert!(paid[0].succeeded(), "{paid:#?}");
        assert_eq!(w.invoice_json(invoice).await["status"], "paid");

        // A dispute, confirmed by the poll: reversed, the invoice owed again, staff told.
        let disputed = w.fake.deliver(&reference, Update::status("Disputed").times(2)).await;
        assert!(disputed.iter().all(|d| d.succeeded()), "{disputed:#?}");
        let reopened = w.invoice_json(invoice).await;
        assert_eq!(reopened["status"], "unpaid", "{reopened}");
        assert_eq!(reopened["balance_due"]["amount_minor"], 2500);
        assert!(reopened["payments"][0]["reversed_at"].is_string(), "{reopened}");
        let attempts = w.attempts(invoice).await;
        assert_eq!(attempts[0]["state"], "disputed");
        assert!(attempts[0]["attention"].as_str().unwrap().contains("open again"));

        // Refunded after the dispute: the money was reversed already, nothing more moves.
        let refunded = w.fake.deliver(&reference, Update::status("Refunded")).await;
        assert!(refunded[0].succeeded(), "{refunded:#?}");
        assert_eq!(w.attempts(invoice).await[0]["state"], "refunded");
        assert_eq!(w.invoice_json(invoice).await["balance_due"]["amount_minor"], 2500);

        // A forged Paid on top is refused and changes nothing.
        let forged = w
            .fake
            .deliver(&reference, Update::paid().signed_with_key("not-the-key"))
            .await;
        assert!(!forged[0].succeeded(), "{forged:#?}");
        assert_eq!(w.invoice_json(invoice).await["status"], "unpaid");
        w.finish().await;
    }
);

keel_testkit::store_test!(
    async fn the_pay_pages_ask_paynow_at_most_every_few_seconds_so_a_lost_update_still_ends_paid(t) {
        let w = world(t).await;
        let invoice = w.invoice(1200).await;
        let attempt = w.pay(invoice, json!({ "gateway": "paynow" }), "pay-1").await;
        let reference = attempt["reference"].as_str().unwrap().to_owned();
        let polls = || {
            w.fake
                .received()
                .into_iter()
                .filter(|r| r.uri.to_ascii_lowercase().contains("checkpayment"))
                .count()
        };
        let status = || async {
            let reply = w.api.send(w.api.request(Method::GET, &format!("/pay/status/{reference}"))).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.body
        };
        // Pending at Paynow: the first look asks it, the next ones within ASK_EVERY do not.
        assert_eq!(status().await["state"], "pending");
        assert_eq!(polls(), 1);
        // Paynow now says Paid, but its update never arrives.
        w.fake.set_status(&reference, "Paid");
        for _ in 0..5 {
            assert_eq!(status().await["settled"], false);
        }
        let page = w.api.send(w.api.request(Method::GET, &format!("/pay/return/{reference}?refresh=1"))).await;
        assert!(page.text.contains("Waiting for confirmation"), "{}", page.text);
        assert_eq!(polls(), 1);
        // A plain visit of the return page never asks.
        w.clock.advance(keel_app::pay_page::ASK_EVERY + chrono::Duration::seconds(1));
        let page = w.api.send(w.api.request(Method::GET, &format!("/pay/return/{reference}"))).await;
        assert!(page.text.contains("Waiting for confirmation"), "{}", page.text);
        assert_eq!(polls(), 1);
        // The Refresh button asks again once ASK_EVERY has passed, and it is paid.
        let page = w.api.send(w.api.request(Method::GET, &format!("/pay/return/{reference}?refresh=1"))).await;
        assert!(page.text.contains("Paid, thank you"), "{}", page.text);
        assert_eq!(polls(), 2);
        let settled = status().await;
        assert_eq!((settled["state"].as_str(), settled["settled"].as_bool()), (Some("succeeded"), Some(true)), "{settled}");
        assert_eq!(polls(), 2, "a settled attempt is not asked about");
        assert_eq!(w.payments_of(invoice).await, 1);
        assert_eq!(w.invoice_json(invoice).await["status"], "paid");
        w.finish().await;
    }
);
