//! The pay page in a real browser, on both engines: headless Chromium (Debian's
//! `/usr/bin/chromium`, or `KEEL_CHROMIUM`) driven by playwright-core from
//! `tests/browser/pay.mjs`, against Keel's API in-process with the real Paynow component
//! talking to the fake Paynow ([`common::paynow`]). Chromium reaches the fake's checkout page
//! at `http://www.paynow.co.zw:<port>/…` through `--host-resolver-rules`.
//!
//! The fake loses its status updates here ([`keel_testkit::paynow::FakePaynowBuilder::lose_updates`]): what the
//! payer sees settle comes from the pay pages asking Paynow ([`keel_app::pay_page::refresh`]), which
//! is the path a late or lost callback depends on, and it makes the return page's first view
//! pending whatever the machine's speed.
//!
//! One browser per engine, one context (its own cookies) per scenario:
//! - `web-js`: the pay link, "Pay online (Paynow)", the fake's checkout page, Pay, back on
//!   the return page: pending, then paid in place, without a navigation;
//! - `ecocash-js`: the EcoCash test number that succeeds: the instructions, then paid in
//!   place;
//! - `web-nojs`: JavaScript off: pending, and the Refresh button shows paid;
//! - `top-up`: a wallet top-up invoice paid through its pay link; the wallet grows by it.
//!
//! Then, through the API and the store: each invoice paid exactly once by one Paynow
//! payment, its attempt succeeded, the trial balance zero.
//!
//! Screenshots (PNG) of every step go to
//! `<target>/test-artifacts/browser/<engine>/<scenario>/NN-<step>.png`, `<target>` being
//! `CARGO_TARGET_DIR` or the folder the test binary was built in.
//!
//! Needs node, `npm ci` in `tests/browser` and chromium; `scripts/test` installs what is
//! missing. Without them the test fails and says what to run: it never skips.

mod common;

use common::paynow::*;
use common::*;
use keel_app::App;
use keel_app::gateway_payments;
use keel_domain::ids::{ClientId, InvoiceId};
use keel_testkit::paynow::{FakePaynow, PHONE_PAID_FAST};
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Product, Scenario};
use keel_testkit::{Backend, TestDb};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PRICES: [i64; 3] = [1000, 1500, 2500];

struct World {
    api: Api,
    products: std::collections::BTreeMap<i64, keel_domain::ids::ProductId>,
    fake: FakePaynow,
    client: ClientId,
    _harness: PluginHarness,
}

async fn world(t: &TestDb) -> World {
    let fake = FakePaynow::builder(&INTEGRATIONS)
        .public_host("www.paynow.co.zw")
        // The EcoCash test number settles a second after it is asked for.
        .delays(Duration::from_secs(1), Duration::from_secs(30))
        .retry_backoff(Duration::from_millis(20))
        .lose_updates(true)
        .start()
        .await;
    let (harness, gateways) = paynow_gateway(&fake).await;
    let db = t.db.clone();
    // The system clock: the pages ask Paynow at most every few real seconds.
    let api = Api::start_addressed(t, keel_api::ApiConfig::default(), move |base| {
        App::new(db)
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
    World {
        client: built.client("tendai@example.co.zw"),
        products: PRICES
            .iter()
            .map(|p| (*p, built.product(&format!("Plan {p}"))))
            .collect(),
        api,
        fake,
        _harness: harness,
    }
}

impl World {
    async fn invoice(&self, minor: i64) -> InvoiceId {
        let order = self
            .api
            .post(
                "/api/v1/orders",
                &self.api.admin,
                &json!({ "client_id": self.client.get(), "items": [{ "product_id": self.products[&minor].get(), "cycle": "monthly" }] }),
                Some(&format!("order-{minor}")),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        InvoiceId(order.body["invoice"]["id"].as_i64().unwrap())
    }

    async fn top_up(&self, amount: &str) -> InvoiceId {
        let reply = self
            .api
            .post(
                "/api/v1/top-ups",
                &self.api.admin,
                &json!({ "client_id": self.client.get(), "amount": amount }),
                Some("top-up-1"),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.body["kind"], "top_up", "{}", reply.text);
        InvoiceId(reply.id())
    }

    async fn pay_link(&self, invoice: InvoiceId) -> String {
        let link = self
            .api
            .get(
                &format!("/api/v1/invoices/{invoice}/pay-link"),
                &self.api.admin,
            )
            .await;
        assert_eq!(link.status, 200, "{}", link.text);
        link.body["url"].as_str().unwrap().to_owned()
    }

    async fn invoice_json(&self, invoice: InvoiceId) -> Value {
        let reply = self
            .api
            .get(&format!("/api/v1/invoices/{invoice}"), &self.api.admin)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body
    }

    async fn wallet_minor(&self) -> i64 {
        let reply = self
            .api
            .get(
                &format!("/api/v1/clients/{}/wallets", self.client.get()),
                &self.api.admin,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["currency"] == "USD")
            .map_or(0, |w| w["balance"]["amount_minor"].as_i64().unwrap())
    }

    /// The invoice is paid, by one Paynow payment of its total, through one attempt that
    /// succeeded and has Keel's `reference`.
    async fn assert_paid_once(&self, invoice: InvoiceId, reference: &str) {
        let inv = self.invoice_json(invoice).await;
        assert_eq!(inv["status"], "paid", "{inv}");
        let payments = inv["payments"].as_array().unwrap();
        assert_eq!(payments.len(), 1, "{inv}");
        assert_eq!(payments[0]["method"], "paynow", "{inv}");
        assert_eq!(
            payments[0]["amount"]["amount_minor"], inv["total"]["amount_minor"],
            "{inv}"
        );
        let attempts = keel_store::attempts::of_invoice(&self.api.app.db, invoice)
            .await
            .unwrap();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].reference, reference);
        assert_eq!(
            attempts[0].state,
            keel_store::attempts::AttemptState::Succeeded
        );
        assert!(attempts[0].payment_id.is_some(), "{attempts:?}");
    }
}

/// Where this engine's screenshots go.
fn shots_dir(backend: Backend) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/<profile>/deps/<test binary>
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let engine = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = target.join("test-artifacts").join("browser").join(engine);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What is missing to run a browser, as a sentence naming the fix; None when all is there.
fn missing_tools(script_dir: &Path, chromium: &Path) -> Option<String> {
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push(format!(
            "chromium at {} (apt-get install chromium, or set KEEL_CHROMIUM)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        missing.push("node (Node.js 18 or newer)".to_owned());
    }
    if !script_dir.join("node_modules/playwright-core").exists() {
        missing.push(format!(
            "playwright-core (npm ci in {})",
            script_dir.display()
        ));
    }
    (!missing.is_empty()).then(|| {
        format!(
            "the browser test needs {}; scripts/test installs them",
            missing.join(", ")
        )
    })
}

/// Runs pay.mjs with `plan`; returns its report.
async fn drive(plan: Value) -> Value {
    let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = PathBuf::from(plan["chromium"].as_str().unwrap());
    if let Some(why) = missing_tools(&script_dir, &chromium) {
        panic!("{why}");
    }
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script_dir.join("pay.mjs"))
            .current_dir(&script_dir)
            .env("KEEL_BROWSER_PLAN", plan.to_string())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pay.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("pay.mjs answered no JSON ({e}):\n{stdout}\n{stderr}"))
}

keel_testkit::store_test!(
    async fn a_payer_pays_by_web_checkout_and_ecocash_with_and_without_javascript_and_tops_up_a_wallet(t) {
        let w = world(t).await;
        let web = w.invoice(2500).await;
        let eco = w.invoice(1000).await;
        let nojs = w.invoice(1500).await;
        let top_up = w.top_up("15.00").await;
        assert_eq!(w.wallet_minor().await, 0);

        let chromium = std::env::var("KEEL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let shots = shots_dir(t.backend);
        let scenario = |name: &str, url: String, method: &str, js: bool| {
            json!({ "name": name, "url": url, "method": method, "phone": PHONE_PAID_FAST, "js": js })
        };
        let plan = json!({
            "chromium": chromium,
            "shots": shots,
            "resolve": "MAP www.paynow.co.zw 127.0.0.1",
            "scenarios": [
                scenario("web-js", w.pay_link(web).await, "web", true),
                scenario("ecocash-js", w.pay_link(eco).await, "ecocash", true),
                scenario("web-nojs", w.pay_link(nojs).await, "web", false),
                scenario("top-up", w.pay_link(top_up).await, "web", true),
            ],
        });
        let report = drive(plan).await;
        let runs = report["scenarios"].as_array().unwrap();
        assert_eq!(runs.len(), 4, "{report:#}");
        for run in runs {
            assert_eq!(run["ok"], true, "{:#}", run);
            // The return page came back pending (the update was lost), then showed paid.
            assert_eq!(run["pending_seen"], true, "{:#}", run);
            assert_eq!(run["paid_seen"], true, "{:#}", run);
            let steps = run["steps"].as_array().unwrap();
            assert_eq!(steps.last().unwrap(), "pay link afterwards: paid", "{:#}", run);
            for shot in run["shots"].as_array().unwrap() {
                let png = std::fs::read(shot.as_str().unwrap()).unwrap();
                assert!(png.starts_with(b"\x89PNG"), "{shot}");
            }
        }
        let by_name = |name: &str| runs.iter().find(|r| r["name"] == name).unwrap();
        // With a script the outcome replaced the page's content: no navigation.
        for name in ["web-js", "ecocash-js", "top-up"] {
            assert_eq!(by_name(name)["navigations_while_waiting"], 0, "{:#}", by_name(name));
        }
        assert!(by_name("web-js")["steps"][1].as_str().unwrap().starts_with(&format!("at the provider www.paynow.co.zw:{}", w.fake.port())));
        assert_eq!(by_name("ecocash-js")["instructions_seen"], true);
        // Without one, the Refresh button did.
        assert!(by_name("web-nojs")["steps"].as_array().unwrap().iter().any(|s| s.as_str().unwrap().starts_with("refreshed")));

        for (invoice, name) in [(web, "web-js"), (eco, "ecocash-js"), (nojs, "web-nojs"), (top_up, "top-up")] {
            w.assert_paid_once(invoice, by_name(name)["reference"].as_str().unwrap()).await;
        }
        assert_eq!(w.fake.transactions().len(), 4);
        assert!(w.fake.deliveries().is_empty(), "the fake lost its updates");
        // The top-up went to the wallet.
        assert_eq!(w.wallet_minor().await, 1500);

        keel_testkit::assert_ledger_balanced(&w.api.app.db).await;
        w.fake.stop().await;
        w.api.stop().await;
    }
);
