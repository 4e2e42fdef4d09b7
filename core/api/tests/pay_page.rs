//! The pay page over HTTP on both engines, with the real bank-transfer gateway: a pay link
//! opens the invoice with one form per method; posting a form starts one payment (a double
//! click too) and the return page shows the bank's instructions until the payment settles.
//! Then the refusals, each a page with its status and a sentence, with nothing started:
//! a form without a genuine token, a forged, expired or borrowed link, a malformed or huge
//! form, a reference that names nothing, another client's pay link through the API.

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use keel_app::gateway_payments::{self, Gateways};
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::{App, FixedClock};
use keel_domain::ids::{ClientId, InvoiceId, ProductId};
use keel_plugin_host::gateway::{PaymentStatus, PaymentUpdate};
use keel_plugins::KEEL_PLUGIN_BANK_TRANSFER;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::{TestDb, store_test};
use reqwest::header::CONTENT_TYPE;
use std::sync::Arc;

const GATEWAY: &str = "bank-transfer";
const FORM: &str = "application/x-www-form-urlencoded";

struct World {
    api: Api,
    clock: Arc<FixedClock>,
    product: ProductId,
    /// A browser that does not follow redirects, so each answer can be read.
    browser: reqwest::Client,
    _harness: PluginHarness,
}

async fn world(t: &TestDb) -> World {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let mut harness = PluginHarness::new();
    let plugin = harness
        .load(
            KEEL_PLUGIN_BANK_TRANSFER.wasm().unwrap(),
            &KEEL_PLUGIN_BANK_TRANSFER.manifest().unwrap(),
            "instructions = \"Bank: First Bank\\nAccount: 123456\"",
        )
        .await
        .unwrap();
    let served = App::with_clock(t.db.clone(), clock.clone())
        .with_gateways(Gateways::from_plugins(&[plugin]));
    let api = Api::start_serving(t, keel_api::ApiConfig::default(), served).await;
    let built = Scenario::new(&api.served)
        .group("Plans", "plans")
        .product(Product::new("Web hosting").monthly(1000))
        .build()
        .await;
    World {
        api,
        clock,
        product: built.product("Web hosting"),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        _harness: harness,
    }
}

async fn client(w: &World, email: &str) -> ClientId {
    Scenario::new(&w.api.served)
        .client(Client::new(email).name("Rudo", "Chikwanha"))
        .build()
        .await
        .client(email)
}

async fn unpaid_invoice(w: &World, c: ClientId, label: &str) -> InvoiceId {
    orders::place(
        &w.api.served,
        &system(),
        &OrderInput {
            client_id: Some(c.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: w.product.get(),
                cycle: "monthly".into(),
                options: vec![],
                label: Some(label.into()),
                addons: vec![],
            }],
        },
        Some(label),
    )
    .await
    .unwrap()
    .invoice
    .id
}

/// The token of a pay link the admin asked the API for.
async fn link_token(w: &World, invoice: InvoiceId) -> String {
    let link = w
        .api
        .get(
            &format!("/api/v1/invoices/{invoice}/pay-link"),
            &w.api.admin,
        )
        .await;
    assert_eq!(link.status, 200, "{}", link.text);
    let url = link.body["url"].as_str().unwrap();
    url.split("/pay/").nth(1).unwrap().to_owned()
}

/// An answer as a browser sees it.
struct Seen {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an HTML page with this status, holding `text`, with the pages' guard headers.
    #[track_caller]
    fn page(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(self.body.contains(text), "no {text:?} in {}", self.body);
        assert!(
            self.header("content-type").starts_with("text/html"),
            "{:?}",
            self.headers
        );
        assert_eq!(self.header("x-frame-options"), "DENY");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert_eq!(self.header("cache-control"), "no-store");
        let csp = self.header("content-security-policy");
        let nonce = csp
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .unwrap_or_else(|| panic!("no script nonce in {csp:?}"));
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(
            self.body.contains(&format!("<style nonce=\"{nonce}\">")),
            "the inline style carries the response's nonce"
        );
        assert!(!self.body.contains("panicked"), "{}", self.body);
    }
}

async fn see(request: reqwest::RequestBuilder) -> Seen {
    let res = request.send().await.expect("the server answers");
    Seen {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.expect("a body"),
    }
}

async fn open(w: &World, token: &str) -> Seen {
    see(w.browser.get(w.api.url(&format!("/pay/{token}")))).await
}

/// The hidden fields of the page's form for `gateway`: (csrf, nonce).
fn form_of(page: &str, gateway: &str) -> (String, String) {
    let form = page
        .split("<form")
        .find(|f| f.contains(&format!("name=\"gateway\" value=\"{gateway}\"")))
        .unwrap_or_else(|| panic!("no form for {gateway} in {page}"));
    let field = |name: &str| {
        form.split(&format!("name=\"{name}\" value=\""))
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no {name} in {form}"))
            .to_owned()
    };
    (field("csrf"), field("nonce"))
}

async fn post_form(w: &World, token: &str, fields: &[(&str, &str)]) -> Seen {
    see(w
        .browser
        .post(w.api.url(&format!("/pay/{token}")))
        .form(fields))
    .await
}

async fn attempts(w: &World, invoice: InvoiceId) -> usize {
    keel_store::attempts::of_invoice(&w.api.served.db, invoice)
        .await
        .unwrap()
        .len()
}

async fn invoice_status(w: &World, invoice: InvoiceId) -> String {
    let inv = w
        .api
        .get(&format!("/api/v1/invoices/{invoice}"), &w.api.admin)
        .await;
    inv.body["status"].as_str().unwrap().to_owned()
}

store_test!(
    async fn a_pay_link_opens_the_invoice_and_paying_starts_one_payment(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "rudo.example").await;
        let token = link_token(&w, inv).await;
        assert!(token.starts_with(&format!("v1.{inv}.")), "{token}");

        // The page: the invoice, its lines and amounts, one form per method.
        let page = open(&w, &token).await;
        page.page(200, "Amount due");
        for text in ["INV-2027-00001", "rudo.example (2027-03-10 to 2027-04-09)", "USD 10.00", "Bank transfer", "2027-03-10"] {
            assert!(page.body.contains(text), "no {text:?} in {}", page.body);
        }
        assert_eq!(page.body.matches("<form").count(), 1, "{}", page.body);
        assert!(!page.body.contains("rudo@example.com"), "no client details");
        let (csrf, nonce) = form_of(&page.body, GATEWAY);
        assert_eq!(attempts(&w, inv).await, 0, "opening the page starts nothing");

        // Paying: 303 to the return page, one attempt.
        let form = [("csrf", csrf.as_str()), ("nonce", nonce.as_str()), ("gateway", GATEWAY), ("method", ""), ("phone", "")];
        let paid = post_form(&w, &token, &form).await;
        assert_eq!(paid.status, 303, "{}", paid.body);
        let location = paid.header("location").to_owned();
        assert!(location.starts_with("return/INV-"), "{location}");
        let cookie = paid.header("set-cookie").to_owned();
        assert!(cookie.starts_with(&format!("keel_pay={token};")), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
        assert_eq!(attempts(&w, inv).await, 1);

        // A double click: the same form again is the same payment.
        let again = post_form(&w, &token, &form).await;
        assert_eq!((again.status, again.header("location")), (303, location.as_str()));
        assert_eq!(attempts(&w, inv).await, 1);

        // The return page: waiting, with the bank's instructions, a refresh link and the
        // polling script under the response's nonce; the way back needs the cookie.
        let reference = location.trim_start_matches("return/").to_owned();
        let back = w.api.url(&format!("/pay/return/{reference}"));
        let waiting = see(w.browser.get(&back).header("cookie", format!("keel_pay={token}"))).await;
        waiting.page(200, "Waiting for confirmation");
        // (minijinja escapes `/` in HTML as `&#x2f;`, which browsers read back as `/`.)
        let shown = waiting.body.replace("&#x2f;", "/");
        for text in ["Bank: First Bank\nAccount: 123456", ">Refresh</a>", "USD 10.00", &format!("data-status-url=\"../status/{reference}\"")] {
            assert!(shown.contains(text), "no {text:?} in {}", waiting.body);
        }
        let csp = waiting.header("content-security-policy").to_owned();
        let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
        assert!(waiting.body.contains(&format!("<script nonce=\"{nonce}\">")), "{}", waiting.body);
        assert!(!waiting.body.contains("rudo"), "no client details on the return page");
        let status = see(w.browser.get(w.api.url(&format!("/pay/status/{reference}")))).await;
        assert_eq!(status.status, 200);
        let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        assert_eq!((json["state"].as_str(), json["settled"].as_bool()), (Some("pending"), Some(false)));
        assert_eq!(status.header("cache-control"), "no-store");

        // The bank confirms: the return page says paid, the pay page offers nothing more.
        gateway_payments::apply(
            &w.api.served,
            GATEWAY,
            &PaymentUpdate {
                reference: reference.clone(),
                provider_reference: "BANK-1".into(),
                status: PaymentStatus::Paid,
                amount: None,
                provider_status: "paid".into(),
            },
        )
        .await
        .unwrap();
        let done = see(w.browser.get(&back)).await;
        done.page(200, "Paid, thank you");
        assert!(done.body.contains("is now paid"), "{}", done.body);
        assert!(!done.body.contains("<script"), "nothing left to wait for");
        let json: serde_json::Value = serde_json::from_str(
            &see(w.browser.get(w.api.url(&format!("/pay/status/{reference}")))).await.body,
        )
        .unwrap();
        assert_eq!(json["state"], "succeeded");
        let paid_page = open(&w, &token).await;
        paid_page.page(200, "This invoice is paid");
        assert!(!paid_page.body.contains("<form"), "{}", paid_page.body);
        // Posting the old form now changes nothing.
        let late = post_form(&w, &token, &form).await;
        assert_eq!(late.status, 303, "the same form is still the same payment");
        assert_eq!(attempts(&w, inv).await, 1);
        assert_eq!(invoice_status(&w, inv).await, "paid");

        // A reference that names nothing.
        see(w.browser.get(w.api.url("/pay/return/INV-0000-ZZZZZZ"))).await.page(404, "not found");
        let missing = see(w.browser.get(w.api.url("/pay/status/INV-0000-ZZZZZZ"))).await;
        assert_eq!(missing.status, 404);
        w.api.stop().await;
    }
);

store_test!(
    async fn a_form_without_its_genuine_token_or_well_formed_body_starts_nothing(t) {
        let w = world(t).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "rudo.example").await;
        let token = link_token(&w, inv).await;
        let page = open(&w, &token).await;
        let (csrf, nonce) = form_of(&page.body, GATEWAY);
        let other = open(&w, &token).await;
        let (other_csrf, other_nonce) = form_of(&other.body, GATEWAY);
        assert_ne!(nonce, other_nonce, "each rendering has its own nonce");
        let mut wrong = csrf.clone().into_bytes();
        wrong[0] = if wrong[0] == b'a' { b'b' } else { b'a' };
        let wrong = String::from_utf8(wrong).unwrap();

        let refused: [(&str, Vec<(&str, &str)>); 5] = [
            ("no csrf", vec![("nonce", &nonce), ("gateway", GATEWAY)]),
            ("empty csrf", vec![("csrf", ""), ("nonce", &nonce), ("gateway", GATEWAY)]),
            ("a changed csrf", vec![("csrf", &wrong), ("nonce", &nonce), ("gateway", GATEWAY)]),
            ("another rendering's csrf", vec![("csrf", &other_csrf), ("nonce", &nonce), ("gateway", GATEWAY)]),
            ("no nonce", vec![("csrf", &csrf), ("gateway", GATEWAY)]),
        ];
        for (why, form) in refused {
            let seen = post_form(&w, &token, &form).await;
            seen.page(403, "not one this page gave out");
            assert!(seen.header("location").is_empty(), "{why}");
        }
        // Its own csrf with its own nonce, but for another link, is refused too.
        let inv2 = unpaid_invoice(&w, c, "second.example").await;
        let token2 = link_token(&w, inv2).await;
        post_form(&w, &token2, &[("csrf", &csrf), ("nonce", &nonce), ("gateway", GATEWAY)])
            .await
            .page(403, "not one this page gave out");

        // Bodies that are not a well-formed form.
        let raw = |body: Vec<u8>, content_type: &'static str| {
            w.browser
                .post(w.api.url(&format!("/pay/{token}")))
                .header(CONTENT_TYPE, content_type)
                .body(body)
        };
        for bad in ["csrf=%zz&nonce=1", "csrf", "csrf=a&csrf=b", "admin=1", "phone=%00"] {
            see(raw(bad.as_bytes().to_vec(), FORM)).await.page(400, "could not be read");
        }
        // One byte over the limit. (A body far over it, say 1 MiB, is refused the same way,
        // but the server answers before reading it all and closes; on a busy machine the
        // client can see that close as a reset before the answer: a race of TCP, not a
        // different refusal.)
        let over = keel_api::pages::pay::MAX_FORM_BYTES + 1;
        see(raw(vec![b'a'; over], FORM)).await.page(413, "larger than this page accepts");
        see(raw(b"{\"gateway\":\"bank-transfer\"}".to_vec(), "application/json"))
            .await
            .page(415, "x-www-form-urlencoded");

        assert_eq!(attempts(&w, inv).await, 0);
        assert_eq!(attempts(&w, inv2).await, 0);
        // The genuine form still works after all that.
        let ok = post_form(&w, &token, &[("csrf", &csrf), ("nonce", &nonce), ("gateway", GATEWAY), ("method", ""), ("phone", "")]).await;
        assert_eq!(ok.status, 303, "{}", ok.body);
        assert_eq!(attempts(&w, inv).await, 1);
        w.api.stop().await;
    }
);

store_test!(
    async fn forged_expired_and_borrowed_links_are_refused_and_change_nothing(t) {
        let w = world(t).await;
        let rudo = client(&w, "rudo@example.com").await;
        let tendai = client(&w, "tendai@example.com").await;
        let inv = unpaid_invoice(&w, rudo, "rudo.example").await;
        let theirs = unpaid_invoice(&w, tendai, "tendai.example").await;
        let token = link_token(&w, inv).await;
        let page = open(&w, &token).await;
        let (csrf, nonce) = form_of(&page.body, GATEWAY);
        let form = [("csrf", csrf.as_str()), ("nonce", nonce.as_str()), ("gateway", GATEWAY), ("method", ""), ("phone", "")];
        let before = w.api.snapshot().await;

        // One byte of the signature changed.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        // Rudo's link pointed at Tendai's invoice.
        let borrowed = token.replacen(&format!("v1.{inv}."), &format!("v1.{theirs}."), 1);
        assert_ne!(borrowed, token);
        for bad in [forged.as_str(), borrowed.as_str(), "v1.1.2.3", "not-a-token", &"x".repeat(300)] {
            open(&w, bad).await.page(403, "This pay link is not valid");
            post_form(&w, bad, &form).await.page(403, "This pay link is not valid");
        }
        assert!(!open(&w, &borrowed).await.body.contains("tendai"), "nothing of the other invoice");

        // Past its expiry (30 days by default) the genuine link is told so.
        w.clock.advance(Duration::days(31));
        let expired = open(&w, &token).await;
        expired.page(410, "This pay link expired on 2027-04-09");
        post_form(&w, &token, &form).await.page(410, "expired");

        assert_eq!(attempts(&w, inv).await, 0);
        assert_eq!(attempts(&w, theirs).await, 0);
        assert_eq!(invoice_status(&w, inv).await, "unpaid");
        assert_eq!(w.api.snapshot().await, before, "nothing changed");

        // Asking for a link: a client's own invoice only; another's is not found.
        let rudo_key = client_key(&w.api.app, rudo).await;
        let own = w.api.get(&format!("/api/v1/invoices/{inv}/pay-link"), &rudo_key).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert!(own.body["url"].as_str().unwrap().contains(&format!("/pay/v1.{inv}.")));
        assert_eq!(own.body["expires_at"], "2027-05-10T09:00:00Z");
        w.api
            .get(&format!("/api/v1/invoices/{theirs}/pay-link"), &rudo_key)
            .await
            .assert_error(404, "not_found", None);
        w.api.stop().await;
    }
);

store_test!(
    async fn a_pay_link_serves_its_invoice_as_a_pdf_and_nothing_else(t) {
        let w = world(t).await;
        let rudo = client(&w, "rudo@example.com").await;
        let tendai = client(&w, "tendai@example.com").await;
        let inv = unpaid_invoice(&w, rudo, "rudo.example").await;
        let theirs = unpaid_invoice(&w, tendai, "tendai.example").await;
        let token = link_token(&w, inv).await;
        let pdf = |token: String| {
            let url = w.api.url(&format!("/pay/{token}/invoice.pdf"));
            let browser = w.browser.clone();
            async move {
                let res = browser.get(url).send().await.expect("the server answers");
                let status = res.status().as_u16();
                let headers = res.headers().clone();
                (status, headers, res.bytes().await.unwrap().to_vec())
            }
        };

        // The link's invoice, as the admin's PDF of it (a WhatsApp document header's link).
        let (status, headers, bytes) = pdf(token.clone()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(headers[CONTENT_TYPE], "application/pdf");
        assert!(bytes.starts_with(b"%PDF-"), "a PDF");
        let admin = w.api.get(&format!("/api/v1/invoices/{inv}"), &w.api.admin).await;
        let number = admin.body["number"].as_str().unwrap().to_owned();
        assert!(
            headers["content-disposition"].to_str().unwrap().contains(&format!("{number}.pdf")),
            "{headers:?}"
        );
        let before = w.api.snapshot().await;

        // Forged, borrowed (pointed at another client's invoice) and expired links: the
        // pay pages' refusals, never a PDF.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).unwrap();
        let borrowed = token.replacen(&format!("v1.{inv}."), &format!("v1.{theirs}."), 1);
        for bad in [forged, borrowed, "v1.1.2.3".to_owned(), "x".repeat(300)] {
            let (status, headers, body) = pdf(bad).await;
            assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
            assert!(headers[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            assert!(!body.starts_with(b"%PDF-"));
        }
        w.clock.advance(Duration::days(31));
        let (status, _, body) = pdf(token).await;
        assert_eq!(status, 410, "{}", String::from_utf8_lossy(&body));
        assert_eq!(w.api.snapshot().await, before, "nothing changed");
        w.api.stop().await;
    }
);
