//! A hostile gateway never pays, on both engines: the `hostile-gateway` fixture (a real
//! component in the real plugin host) hangs until the call timeout, traps, or answers nonsense
//! (a confirmation about another payment, a refund of a payment never made, a negative
//! amount, an amount in no currency, a status word of 100 KB of control characters) when
//! verifying a callback or confirming it by a poll. Each time the hook answers non-2xx (503
//! `gateway_unavailable` for a failing gateway, so the provider retries; 409 for the one
//! contradiction a provider could mean, which is flagged for staff), the attempt stays pending
//! and nothing is paid or posted; the scheduled poll retries and fails the same way; the API
//! keeps answering while a call hangs. A well-formed confirmation then pays it, once.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use keel_app::gateway_payments::{self, Gateways};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, FixedClock};
use keel_domain::ids::InvoiceId;
use keel_plugins::KEEL_FIXTURE_HOSTILE_GATEWAY;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Client, Product, Scenario};
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const GATEWAY: &str = "hostile-gateway";

struct World {
    api: Api,
    clock: Arc<FixedClock>,
    invoice: InvoiceId,
    key: String,
    reference: String,
    _harness: PluginHarness,
}

async fn world(t: &keel_testkit::TestDb) -> World {
    // A generous CPU budget: a spinning call runs until the call timeout stops it.
    let mut harness = PluginHarness::new().configure(|c| {
        c.call_timeout = Duration::from_secs(1);
        c.cpu_budget = Duration::from_secs(600);
    });
    let plugin = harness
        .load(
            KEEL_FIXTURE_HOSTILE_GATEWAY.wasm().unwrap(),
            &KEEL_FIXTURE_HOSTILE_GATEWAY.manifest().unwrap(),
            "",
        )
        .await
        .unwrap();
    let gateways = Gateways::from_plugins(&[plugin]);
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
    let built = Scenario::new(&api.app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .client(Client::new("rudo@example.co.zw").name("Rudo", "Chikwanha"))
        .build()
        .await;
    let client = built.client("rudo@example.co.zw");
    let order = orders::place(
        &api.served,
        &system(),
        &OrderInput {
            client_id: Some(client.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: built.product("Plan").get(),
                cycle: "monthly".into(),
                options: vec![],
                label: None,
                addons: vec![],
            }],
        },
        Some("order-1"),
    )
    .await
    .unwrap();
    let invoice = order.invoice.id;
    let key = client_key(&api.app, client).await;
    let started = api
        .post(
            &format!("/api/v1/invoices/{}/attempts", invoice.get()),
            &key,
            &json!({ "gateway": GATEWAY }),
            Some("pay-1"),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    assert_eq!(started.body["state"], "pending");
    let reference = started.body["reference"].as_str().unwrap().to_owned();
    World {
        api,
        clock,
        invoice,
        key,
        reference,
        _harness: harness,
    }
}

impl World {
    /// The provider's callback, `<mode> <reference>`.
    async fn hook(&self, mode: &str) -> Reply {
        self.api
            .send(
                self.api
                    .request(Method::POST, &format!("/hooks/gateway/{GATEWAY}"))
                    .body(format!("{mode} {}", self.reference)),
            )
            .await
    }

    /// The attempt as the API shows it.
    async fn attempt(&self) -> serde_json::Value {
        let reply = self
            .api
            .get(
                &format!("/api/v1/invoices/{}/attempts", self.invoice.get()),
                &self.key,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let attempts = reply.body.as_array().unwrap().clone();
        assert_eq!(attempts.len(), 1, "one attempt");
        attempts[0].clone()
    }

    /// Not paid: the attempt pending, the invoice unpaid, no payment, no gateway entry.
    async fn assert_unpaid(&self, what: &str) {
        let attempt = self.attempt().await;
        assert_eq!(attempt["state"], "pending", "{what}: {attempt}");
        let invoice = self
            .api
            .get(
                &format!("/api/v1/invoices/{}", self.invoice.get()),
                &self.api.admin,
            )
            .await;
        assert_eq!(invoice.body["status"], "unpaid", "{what}: {}", invoice.text);
        assert_eq!(
            invoice.body["payments"].as_array().unwrap().len(),
            0,
            "{what}"
        );
        let mut tx = self.api.app.db.begin().await.unwrap();
        let entry = keel_store::ledger::entry_by_key(
            &mut tx,
            &format!("gateway:{GATEWAY}:{}", self.reference),
        )
        .await
        .unwrap();
        assert!(entry.is_none(), "{what}: an entry was posted");
    }

    /// The scheduled poll, three minutes later (each poll waits `poll_after` since the last).
    async fn scheduled_poll(&self) -> gateway_payments::PollReport {
        self.clock.advance(chrono::Duration::minutes(3));
        gateway_payments::poll_due(&self.api.served, &keel_app::Ctx::system("test poll"))
            .await
            .unwrap()
    }
}

keel_testkit::store_test!(
    async fn a_gateway_that_hangs_traps_or_babbles_never_pays_and_is_retried(t) {
        let w = world(t).await;

        // Hanging until the call timeout: the hook is in flight while the API answers.
        let hanging = {
            let request = w
                .api
                .request(Method::POST, &format!("/hooks/gateway/{GATEWAY}"))
                .body(format!("spin {}", w.reference));
            tokio::spawn(async move { request.send().await })
        };
        assert_eq!(
            w.api.send(w.api.request(Method::GET, "/healthz")).await.status,
            200
        );
        w.assert_unpaid("while the hook hangs").await;
        let hung = hanging.await.unwrap().expect("the hook answers");
        assert_eq!(hung.status().as_u16(), 503, "a hang is answered 503");
        w.assert_unpaid("after a hang").await;

        // Failing gateways: 503, so the provider retries; nothing flagged for staff.
        for mode in [
            "trap",
            "poll-spin",
            "poll-trap",
            "other",
            "negative",
            "currency",
            "babble",
        ] {
            w.hook(mode)
                .await
                .assert_error(503, "gateway_unavailable", None);
            w.assert_unpaid(mode).await;
            assert!(w.attempt().await["attention"].is_null(), "{mode}");
            // The scheduled poll asks again and fails the same way (the verify-side modes
            // leave the last poll mode in place).
            let report = w.scheduled_poll().await;
            assert_eq!(
                (report.polled, report.settled),
                (1, 0),
                "{mode}: {report:?}"
            );
            if mode != "trap" {
                assert_eq!(report.unavailable, 1, "{mode}: {report:?}");
            }
            w.assert_unpaid(&format!("{mode}, polled")).await;
        }

        // A refund of a payment never made: a contradiction, kept for staff, nothing paid.
        w.hook("refunded")
            .await
            .assert_error(409, "payment_state_conflict", None);
        w.assert_unpaid("refunded").await;
        assert!(!w.attempt().await["attention"].is_null());

        // The gateway recovers: the provider's retry pays it, once.
        for _ in 0..2 {
            let paid = w.hook("paid").await;
            assert_eq!(paid.status, 200, "{}", paid.text);
        }
        let attempt = w.attempt().await;
        assert_eq!(attempt["state"], "succeeded", "{attempt}");
        let invoice = w
            .api
            .get(
                &format!("/api/v1/invoices/{}", w.invoice.get()),
                &w.api.admin,
            )
            .await;
        assert_eq!(invoice.body["status"], "paid", "{}", invoice.text);
        assert_eq!(invoice.body["payments"].as_array().unwrap().len(), 1);
        keel_testkit::assert_ledger_balanced(&w.api.app.db).await;
        w.api.stop().await;
    }
);
