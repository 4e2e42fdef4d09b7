//! The fake Paynow, spoken to over raw HTTP as a merchant would, with the hash computed here
//! independently (sha2 and url's form codec, not the fake's own `wire` module): Paynow's
//! published vectors pass, forgeries get Paynow's error, replies verify, the test numbers
//! and the checkout page end in status updates to a loopback merchant, retries stop at ten,
//! and every script option puts on the wire what it says.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_testkit::paynow::{DELIVERY_ATTEMPTS, FakePaynow, Update};
use keel_testkit::plugins::{FakeProvider, Reply};
use sha2::{Digest, Sha512};

/// Paynow's documented integration (PROVIDERS.md §1.3).
const ID: u64 = 1201;
const KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
/// The worked example's integration (§1.8).
const WORKED_ID: u64 = 7175;
const WORKED_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
/// A second integration (another currency).
const ZWG_ID: u64 = 7176;
const ZWG_KEY: &str = "0b7c2f4e-8a1d-4e6b-9c3f-5d2a7e8b1c40";

type Fields = Vec<(String, String)>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The fake as Keel's tests run it: `www.paynow.co.zw` in its URLs, delays in milliseconds.
async fn paynow() -> FakePaynow {
    FakePaynow::builder(&[(ID, KEY), (WORKED_ID, WORKED_KEY), (ZWG_ID, ZWG_KEY)])
        .public_host("www.paynow.co.zw")
        .delays(ms(100), ms(400))
        .retry_backoff(ms(5))
        .start()
        .await
}

/// A merchant that answers every status update with `status`.
async fn merchant(status: u16) -> FakeProvider {
    FakeProvider::start(move |_| Reply::status(status)).await
}

fn result_url(merchant: &FakeProvider) -> String {
    merchant.url_as("127.0.0.1", "/hooks/gateways/paynow")
}

/// A client that reaches `www.paynow.co.zw` at the fake, as the plugin host's resolver
/// override does, and never follows redirects.
fn client(fake: &FakePaynow) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("www.paynow.co.zw", fake.addr())
        .build()
        .unwrap()
}

fn sha512_upper(text: &str) -> String {
    Sha512::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Paynow's hash over these values and the key, computed here.
fn hash_of(values: &[&str], key: &str) -> String {
    sha512_upper(&format!("{}{key}", values.concat()))
}

fn decode(body: &str) -> Fields {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A request body as a client library writes it (uppercase escapes), signed last.
fn signed_body(fields: &[(&str, &str)], key: &str) -> String {
    let values: Vec<&str> = fields.iter().map(|(_, v)| *v).collect();
    let hash = hash_of(&values, key);
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        form.append_pair(k, v);
    }
    form.append_pair("hash", &hash);
    form.finish()
}

fn get<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

fn names(fields: &Fields) -> Vec<&str> {
    fields.iter().map(|(k, _)| k.as_str()).collect()
}

/// The message's last field is `hash`, and it is the hash of the other values with `key`.
fn verifies(fields: &Fields, key: &str) -> bool {
    let Some(((last, hash), rest)) = fields.split_last() else {
        return false;
    };
    let values: Vec<&str> = rest.iter().map(|(_, v)| v.as_str()).collect();
    last == "hash" && *hash == hash_of(&values, key)
}

/// Every `%` escape in `body` uses lowercase hex digits.
fn escapes_are_lowercase(body: &str) -> bool {
    body.split('%')
        .skip(1)
        .all(|escape| escape.len() >= 2 && !escape[..2].bytes().any(|b| b.is_ascii_uppercase()))
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> String {
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.unwrap()
}

/// A web checkout request in the documentation's field order.
fn web_fields<'a>(
    reference: &'a str,
    amount: &'a str,
    result_url: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("id", "1201"),
        ("reference", reference),
        ("amount", amount),
        ("additionalinfo", "Web hosting (Starter), 1 month"),
        (
            "returnurl",
            "https://billing.example.co.zw/paynow/return?invoice=42",
        ),
        ("resulturl", result_url),
        ("authemail", "client@example.co.zw"),
        ("status", "Message"),
    ]
}

/// An express checkout request as the PHP SDK orders it (`phone, method` after `status`).
fn express_fields<'a>(
    reference: &'a str,
    phone: &'a str,
    result_url: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("id", "1201"),
        ("reference", reference),
        ("amount", "25.00"),
        (
            "returnurl",
            "https://billing.example.co.zw/paynow/return?invoice=42",
        ),
        ("resulturl", result_url),
        ("authemail", "client@example.co.zw"),
        ("status", "Message"),
        ("phone", phone),
        ("method", "ecocash"),
    ]
}

async fn initiate_web(fake: &FakePaynow, reference: &str, result_url: &str) -> Fields {
    let body = signed_body(&web_fields(reference, "25.00", result_url), KEY);
    let reply = decode(
        &post(
            &client(fake),
            &fake.url("/interface/initiatetransaction"),
            body,
        )
        .await,
    );
    assert_eq!(get(&reply, "status"), "Ok", "{reply:?}");
    reply
}

async fn initiate_express(
    fake: &FakePaynow,
    reference: &str,
    phone: &str,
    result_url: &str,
) -> String {
    let body = signed_body(&express_fields(reference, phone, result_url), KEY);
    post(
        &client(fake),
        &fake.url("/interface/remotetransaction"),
        body,
    )
    .await
}

/// Polls `poll_url` with an empty body, as the SDKs do.
async fn poll(fake: &FakePaynow, poll_url: &str) -> Fields {
    let response = client(fake).post(poll_url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(escapes_are_lowercase(&body), "{body}");
    decode(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paynow_documented_request_is_accepted() {
    let fake = paynow().await;
    let values = [
        "1201",
        "TEST REF",
        "99.99",
        "A test ticket transaction",
        "http://www.google.com/search?q=returnurl",
        "http://www.google.com/search?q=resulturl",
        "Message",
    ];
    assert_eq!(
        hash_of(&values, KEY),
        "2A033FC38798D913D42ECB786B9B19645ADEDBDE788862032F1BD82CF3B92DEF84F316385D5B40DBB35F1A4FD7D5BFE73835174136463CDD48C9366B0749C689"
    );
    let names = [
        "id",
        "reference",
        "amount",
        "additionalinfo",
        "returnurl",
        "resulturl",
        "status",
    ];
    let fields: Vec<(&str, &str)> = names.into_iter().zip(values).collect();
    let body = post(
        &client(&fake),
        &fake.url("/interface/initiatetransaction"),
        signed_body(&fields, KEY),
    )
    .await;
    assert!(body.starts_with("status=Ok&"), "{body}");
    let t = fake.transaction("TEST REF").unwrap();
    assert_eq!(t.integration_id, ID);
    assert_eq!(t.amount, "99.99");
    assert_eq!(t.status, "Created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worked_example_web_and_express_bodies_are_accepted_as_written() {
    // Real delays: the example's result URL is not ours, and the test ends (stopping the
    // fake and its pending outcome) long before 0771111111's 5 s.
    let fake = FakePaynow::start(&[(WORKED_ID, WORKED_KEY)]).await;
    let http = client(&fake);
    // PROVIDERS.md §1.8, byte for byte.
    let web = "id=7175&reference=INV-2026-0042&amount=25.00&additionalinfo=Web+hosting+%28Starter%29%2C+1+month&returnurl=https%3A%2F%2Fbilling.example.co.zw%2Fpaynow%2Freturn%3Finvoice%3D42&resulturl=https%3A%2F%2Fbilling.example.co.zw%2Fhooks%2Fgateways%2Fpaynow&authemail=client%40example.co.zw&status=Message&hash=3B1DEF198D5F8BBB670BACF38A9E609DF7C947F15508C6CE4B966C929FEAA6A2E7F580A52D3ADE7F2B07239756372C541B2F70543C6C7B0912E1F1D3996265D8";
    let reply = decode(
        &post(
            &http,
            &fake.url("/interface/initiatetransaction"),
            web.to_owned(),
        )
        .await,
    );
    assert_eq!(get(&reply, "status"), "Ok", "{reply:?}");
    assert!(verifies(&reply, WORKED_KEY));

    let express = "id=7175&reference=INV-2026-0042&amount=25.00&additionalinfo=Web+hosting+%28Starter%29%2C+1+month&returnurl=https%3A%2F%2Fbilling.example.co.zw%2Fpaynow%2Freturn%3Finvoice%3D42&resulturl=https%3A%2F%2Fbilling.example.co.zw%2Fhooks%2Fgateways%2Fpaynow&authemail=client%40example.co.zw&phone=0771111111&method=ecocash&status=Message&hash=322A07268423B70239C0A7DA8F5076CBEA01439CC1AE9F5B4CEF538F4664FFB7C36E1D5A4CBDECBC98D135AE324EB5D6FD9D0E99C8D4F41AAE0520C22EFA1A91";
    let reply = decode(
        &post(
            &http,
            &fake.url("/interface/remotetransaction"),
            express.to_owned(),
        )
        .await,
    );
    assert_eq!(get(&reply, "status"), "Ok", "{reply:?}");
    assert!(verifies(&reply, WORKED_KEY));

    let made = fake.transactions();
    assert_eq!(made.len(), 2);
    assert_eq!(made[0].fields.len(), 9);
    assert_eq!(
        made[0].field("additionalinfo"),
        Some("Web hosting (Starter), 1 month")
    );
    assert_eq!(made[1].phone.as_deref(), Some("0771111111"));
    assert_eq!(made[1].method.as_deref(), Some("ecocash"));
    assert_eq!(fake.received().len(), 2);
    assert_eq!(fake.received()[0].text(), web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_style_double_encoded_values_and_its_field_order_are_accepted() {
    let fake = paynow().await;
    // The Python SDK hashes values it already URL-encoded, then requests encodes them again
    // (PROVIDERS.md §1.9), in its own order, with the amount as float text.
    let fields = [
        ("resulturl", "http://127.0.0.1:9/hook"),
        ("returnurl", "http://127.0.0.1:9/return"),
        ("reference", "INV-7"),
        ("amount", "12.5"),
        ("id", "1201"),
        ("additionalinfo", "Hosting%2C+1+month%2C+"),
        ("authemail", "client%40example.com"),
        ("status", "Message"),
    ];
    let body = post(
        &client(&fake),
        &fake.url("/interface/initiatetransaction"),
        signed_body(&fields, KEY),
    )
    .await;
    let reply = decode(&body);
    assert_eq!(get(&reply, "status"), "Ok", "{body}");
    let t = fake.transaction("INV-7").unwrap();
    assert_eq!(t.amount, "12.5", "recorded as sent");
    assert_eq!(t.field("additionalinfo"), Some("Hosting%2C+1+month%2C+"));
    let polled = poll(&fake, get(&reply, "pollurl")).await;
    assert_eq!(
        get(&polled, "amount"),
        "12.50",
        "status messages carry two places"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_reply_is_signed_lowercase_escaped_in_paynows_order_and_points_at_the_public_base() {
    let fake = paynow().await;
    let body = signed_body(
        &web_fields("INV-1", "25.00", "http://127.0.0.1:9/hook"),
        KEY,
    );
    let text = post(
        &client(&fake),
        &fake.url("/interface/initiatetransaction"),
        body,
    )
    .await;
    assert!(!text.contains('\n'), "one line: {text:?}");
    assert!(text.contains("%3a%2f%2fwww.paynow.co.zw%3a"), "{text}");
    assert!(escapes_are_lowercase(&text), "{text}");
    let reply = decode(&text);
    assert_eq!(
        names(&reply),
        ["status", "browserurl", "pollurl", "paynowreference", "hash"]
    );
    assert!(verifies(&reply, KEY), "{text}");
    assert!(!verifies(&reply, &KEY.to_uppercase()));
    let t = fake.transaction("INV-1").unwrap();
    let base = format!("http://www.paynow.co.zw:{}", fake.port());
    assert_eq!(fake.public_base(), base);
    assert_eq!(
        get(&reply, "pollurl"),
        format!("{base}/Interface/CheckPayment/?guid={}", t.guid)
    );
    assert_eq!(
        get(&reply, "browserurl"),
        format!("{base}/Payment/ConfirmPayment/{}", t.paynow_reference)
    );
    assert_eq!(get(&reply, "paynowreference"), t.paynow_reference);
    assert_eq!(t.poll_url, get(&reply, "pollurl"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_hash_gets_paynows_error_with_the_first_six_digits_it_expected() {
    let fake = paynow().await;
    let http = client(&fake);
    let url = fake.url("/interface/initiatetransaction");
    let fields = web_fields("INV-1", "25.00", "http://127.0.0.1:9/hook");
    let values: Vec<&str> = fields.iter().map(|(_, v)| *v).collect();
    let expected = hash_of(&values, KEY);
    let error = format!(
        "status=Error&error=Invalid+Hash.++Hash+should+start+with%3a+{}",
        &expected[..6]
    );

    // Signed with the key upper-cased.
    assert_eq!(
        post(&http, &url, signed_body(&fields, &KEY.to_uppercase())).await,
        error
    );
    // Signed without the optional `authemail` it sends (the forum's classic mistake).
    let hashed: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| *k != "authemail")
        .map(|(_, v)| *v)
        .collect();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(fields.iter().copied());
    form.append_pair("hash", &hash_of(&hashed, KEY));
    assert_eq!(post(&http, &url, form.finish()).await, error);
    // One value changed after signing.
    let tampered = signed_body(&fields, KEY).replace("amount=25.00", "amount=2.50");
    let tampered_values: Vec<&str> = values
        .iter()
        .map(|v| if *v == "25.00" { "2.50" } else { *v })
        .collect();
    let tampered_expected = hash_of(&tampered_values, KEY);
    assert_eq!(
        post(&http, &url, tampered).await,
        format!(
            "status=Error&error=Invalid+Hash.++Hash+should+start+with%3a+{}",
            &tampered_expected[..6]
        )
    );
    // The same hash in lower case is fine.
    let lower = signed_body(&fields, KEY);
    let (head, hash) = lower.rsplit_once("hash=").unwrap();
    let accepted = post(&http, &url, format!("{head}hash={}", hash.to_lowercase())).await;
    assert!(accepted.starts_with("status=Ok&"), "{accepted}");
    assert_eq!(fake.transactions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_bad_amounts_and_incomplete_express_requests_are_refused() {
    let fake = paynow().await;
    let http = client(&fake);
    let web = fake.url("/interface/initiatetransaction");
    let express = fake.url("/interface/remotetransaction");

    let mut unknown = web_fields("INV-1", "25.00", "http://127.0.0.1:9/hook");
    unknown[0].1 = "999";
    assert_eq!(
        post(&http, &web, signed_body(&unknown, KEY)).await,
        "status=Error&error=Invalid+id."
    );
    for amount in ["abc", "-1.00", "0.00", "1,000.00", ""] {
        let body = signed_body(&web_fields("INV-1", amount, "http://127.0.0.1:9/hook"), KEY);
        assert_eq!(
            post(&http, &web, body).await,
            "status=Error&error=Invalid+amount+field",
            "{amount:?}"
        );
    }
    let complete = express_fields("INV-2", "0775555555", "http://127.0.0.1:9/hook");
    for missing in ["authemail", "method", "phone"] {
        let fields: Vec<_> = complete
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        let reply = post(&http, &express, signed_body(&fields, KEY)).await;
        assert!(
            reply.starts_with("status=Error&error="),
            "{missing}: {reply}"
        );
        assert!(!reply.contains("hash="), "{reply}");
    }
    let mut card = complete.clone();
    card[8].1 = "vmc";
    card[7] = ("merchanttrace", "T-9");
    let reply = post(&http, &express, signed_body(&card, KEY)).await;
    assert!(
        reply.starts_with("status=Error&error="),
        "vmc without a token: {reply}"
    );
    assert!(fake.transactions().is_empty());
    assert_eq!(fake.received().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_numbers_pay_cancel_refuse_or_wait_and_each_outcome_reaches_the_merchant() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let hook = result_url(&shop);

    let refused = initiate_express(&fake, "INV-4", "0774444444", &hook).await;
    assert_eq!(refused, "status=Error&error=Insufficient+balance");
    let mut polls = Vec::new();
    for (reference, phone) in [
        ("INV-3", "0773333333"),
        ("INV-2", "0772222222"),
        ("INV-1", "0771111111"),
        ("INV-5", "0775555555"),
    ] {
        let text = initiate_express(&fake, reference, phone, &hook).await;
        assert!(escapes_are_lowercase(&text), "{text}");
        let reply = decode(&text);
        assert_eq!(
            names(&reply),
            [
                "status",
                "instructions",
                "paynowreference",
                "pollurl",
                "hash"
            ]
        );
        assert!(verifies(&reply, KEY), "{text}");
        assert!(text.contains("%0d%0a"), "instructions carry CR/LF: {text}");
        let polled = poll(&fake, get(&reply, "pollurl")).await;
        assert_eq!(get(&polled, "status"), "Sent");
        polls.push((reference, get(&reply, "pollurl").to_owned()));
    }
    assert!(fake.transaction("INV-4").is_none(), "refused at initiation");

    let deliveries = fake.wait_for_deliveries(3, Duration::from_secs(10)).await;
    assert_eq!(
        deliveries[0].reference, "INV-1",
        "the 5 s number comes first"
    );
    let outcome = |reference: &str| {
        let d = deliveries
            .iter()
            .find(|d| d.reference == reference)
            .unwrap();
        assert_eq!(d.url, hook);
        assert_eq!(d.status, Some(200));
        let fields = decode(&d.body);
        assert_eq!(
            names(&fields),
            [
                "reference",
                "paynowreference",
                "amount",
                "status",
                "pollurl",
                "hash"
            ]
        );
        assert!(verifies(&fields, KEY), "{}", d.body);
        assert_eq!(get(&fields, "amount"), "25.00");
        get(&fields, "status").to_owned()
    };
    assert_eq!(outcome("INV-1"), "Paid");
    assert_eq!(outcome("INV-2"), "Paid");
    assert_eq!(outcome("INV-3"), "Cancelled");
    assert_eq!(shop.received().len(), 3);
    assert!(shop.received().iter().all(|r| r.method == "POST"
        && r.uri == "/hooks/gateways/paynow"
        && r.header("content-type") == Some("application/x-www-form-urlencoded")));

    for (reference, url) in &polls {
        let polled = poll(&fake, url).await;
        assert!(verifies(&polled, KEY));
        let expected = match *reference {
            "INV-3" => "Cancelled",
            "INV-5" => "Sent",
            _ => "Paid",
        };
        assert_eq!(get(&polled, "status"), expected, "{reference}");
    }
    assert_eq!(
        fake.deliveries().len(),
        3,
        "other numbers wait for a script"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_innbucks_reply_adds_the_authorization_code_and_its_expiry() {
    let fake = paynow().await;
    let mut fields = express_fields("INV-1", "0775555555", "http://127.0.0.1:9/hook");
    fields[8].1 = "innbucks";
    let text = post(
        &client(&fake),
        &fake.url("/interface/remotetransaction"),
        signed_body(&fields, KEY),
    )
    .await;
    let reply = decode(&text);
    assert_eq!(
        names(&reply),
        [
            "status",
            "instructions",
            "paynowreference",
            "pollurl",
            "authorizationcode",
            "authorizationexpires",
            "hash"
        ]
    );
    assert!(verifies(&reply, KEY));
    assert!(
        get(&reply, "authorizationcode")
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    // d-MMM-yyyy HH:mm
    let expires = get(&reply, "authorizationexpires");
    let (date, time) = expires.split_once(' ').unwrap();
    assert_eq!(date.split('-').count(), 3, "{expires}");
    assert_eq!(time.len(), 5, "{expires}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_merchant_gets_retries_until_it_answers_2xx() {
    let fake = paynow().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let shop = FakeProvider::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 3 {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    })
    .await;
    initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake.pay("INV-1").await;
    let statuses: Vec<_> = attempts.iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(503), Some(503), Some(503), Some(200)]);
    assert_eq!(
        attempts.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(
        attempts.windows(2).all(|w| w[0].body == w[1].body),
        "the same message each time"
    );
    assert_eq!(shop.received().len(), 4);
    assert_eq!(fake.deliveries().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_ten_attempts_for_errors_and_for_no_answer() {
    let fake = paynow().await;
    let shop = merchant(500).await;
    initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake.pay("INV-1").await;
    assert_eq!(DELIVERY_ATTEMPTS, 10);
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts
            .iter()
            .all(|d| d.status == Some(500) && !d.succeeded())
    );
    tokio::time::sleep(ms(50)).await;
    assert_eq!(shop.received().len(), 10, "no eleventh attempt");

    // Nobody listening at the result URL.
    let gone = merchant(200).await;
    let dead = result_url(&gone);
    gone.stop().await;
    initiate_web(&fake, "INV-2", &dead).await;
    let attempts = fake.pay("INV-2").await;
    assert_eq!(attempts.len(), 10);
    assert!(
        attempts
            .iter()
            .all(|d| d.status.is_none() && d.error.is_some()),
        "{attempts:#?}"
    );
    assert_eq!(fake.deliveries().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_an_empty_body_returns_the_signed_status_message() {
    let fake = paynow().await;
    let reply = initiate_web(&fake, "INV-1", "http://127.0.0.1:9/hook").await;
    let poll_url = get(&reply, "pollurl");
    let polled = poll(&fake, poll_url).await;
    assert_eq!(
        names(&polled),
        [
            "reference",
            "paynowreference",
            "amount",
            "status",
            "pollurl",
            "hash"
        ]
    );
    assert!(verifies(&polled, KEY));
    assert_eq!(get(&polled, "reference"), "INV-1");
    assert_eq!(
        get(&polled, "paynowreference"),
        get(&reply, "paynowreference")
    );
    assert_eq!(get(&polled, "amount"), "25.00");
    assert_eq!(get(&polled, "status"), "Created");
    assert_eq!(get(&polled, "pollurl"), poll_url);

    let polls: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.uri.contains("CheckPayment"))
        .collect();
    assert_eq!(polls.len(), 1);
    assert!(polls[0].body.is_empty());

    // Paths in any case, as on IIS.
    let guid = &fake.transaction("INV-1").unwrap().guid;
    let lower = poll(
        &fake,
        &fake.url(&format!("/interface/checkpayment?guid={guid}")),
    )
    .await;
    assert_eq!(lower, polled);
    let unknown = poll(
        &fake,
        &fake.url("/Interface/CheckPayment/?guid=00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(get(&unknown, "status"), "Error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_finds_a_known_merchant_trace_and_answers_not_found_otherwise() {
    let fake = paynow().await;
    let http = client(&fake);
    let mut fields = web_fields("INV-1", "25.00", "http://127.0.0.1:9/hook");
    fields.insert(7, ("merchanttrace", "TRACE-0001"));
    let body = post(
        &http,
        &fake.url("/interface/initiatetransaction"),
        signed_body(&fields, KEY),
    )
    .await;
    assert!(body.starts_with("status=Ok&"), "{body}");

    let trace = |merchanttrace: &'static str| {
        signed_body(
            &[
                ("id", "1201"),
                ("merchanttrace", merchanttrace),
                ("status", "Message"),
            ],
            KEY,
        )
    };
    let url = fake.url("/interface/trace");
    let found = decode(&post(&http, &url, trace("TRACE-0001")).await);
    assert_eq!(
        names(&found),
        [
            "reference",
            "paynowreference",
            "amount",
            "status",
            "pollurl",
            "hash"
        ]
    );
    assert!(verifies(&found, KEY));
    assert_eq!(get(&found, "reference"), "INV-1");
    assert_eq!(get(&found, "status"), "Created");

    let missing = post(&http, &url, trace("TRACE-0002")).await;
    assert_eq!(
        missing,
        format!("status=NotFound&hash={}", hash_of(&["NotFound"], KEY))
    );

    let forged = signed_body(
        &[
            ("id", "1201"),
            ("merchanttrace", "TRACE-0001"),
            ("status", "Message"),
        ],
        "x",
    );
    assert!(
        post(&http, &url, forged)
            .await
            .starts_with("status=Error&error=Invalid+Hash.")
    );
}

/// The `action` of the form whose button has this id.
fn form_action(page: &str, button: &str) -> String {
    let at = page
        .find(&format!("id=\"{button}\""))
        .unwrap_or_else(|| panic!("no #{button} in {page}"));
    let form = page[..at].rfind("<form").unwrap();
    let action = &page[form..at];
    let start = action.find("action=\"").unwrap() + "action=\"".len();
    let end = start + action[start..].find('"').unwrap();
    action[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_pages_pay_and_cancel_buttons_set_the_status_deliver_and_redirect() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let http = client(&fake);
    for (reference, button, status) in [("INV-1", "pay", "Paid"), ("INV-2", "cancel", "Cancelled")]
    {
        let reply = initiate_web(&fake, reference, &result_url(&shop)).await;
        let browser_url = get(&reply, "browserurl");
        let page = http.get(browser_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        assert!(page.contains(reference), "{page}");
        assert!(page.contains("25.00"), "{page}");
        assert!(
            page.contains(">Pay</button>") && page.contains(">Cancel</button>"),
            "{page}"
        );
        assert!(!page.contains("<script"), "no JavaScript");

        // What a browser does on a click: post the button's form to its action.
        let action = form_action(&page, button);
        let origin = format!("http://www.paynow.co.zw:{}", fake.port());
        assert!(
            browser_url.ends_with(&action),
            "{action} posts back to {browser_url}"
        );
        let response = http
            .post(format!("{origin}{action}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("action={button}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(
            response.headers()["location"],
            "https://billing.example.co.zw/paynow/return?invoice=42"
        );
        assert_eq!(fake.transaction(reference).unwrap().status, status);
        assert_eq!(
            get(&poll(&fake, get(&reply, "pollurl")).await, "status"),
            status
        );

        let after = http
            .get(browser_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !after.contains("id=\"pay\""),
            "a closed transaction has no buttons"
        );
    }
    let deliveries = fake.wait_for_deliveries(2, Duration::from_secs(10)).await;
    for (reference, status) in [("INV-1", "Paid"), ("INV-2", "Cancelled")] {
        let d = deliveries
            .iter()
            .find(|d| d.reference == reference)
            .unwrap();
        let fields = decode(&d.body);
        assert_eq!(get(&fields, "status"), status);
        assert!(verifies(&fields, KEY));
    }
    assert_eq!(shop.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_duplicates_are_the_same_message_delivered_again() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake.deliver("INV-1", Update::paid().times(3)).await;
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|d| d.body == attempts[0].body && d.attempt == 1)
    );
    let received: Vec<_> = shop.received().iter().map(|r| r.text()).collect();
    assert_eq!(received, vec![attempts[0].body.clone(); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_wrong_amount_is_genuinely_signed_while_the_poll_keeps_the_real_one() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let reply = initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake.deliver("INV-1", Update::paid().amount("20.00")).await;
    let fields = decode(&attempts[0].body);
    assert_eq!(get(&fields, "amount"), "20.00");
    assert!(verifies(&fields, KEY));
    let polled = poll(&fake, get(&reply, "pollurl")).await;
    assert_eq!(get(&polled, "amount"), "25.00");
    assert_eq!(get(&polled, "status"), "Paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_extra_fields_come_before_the_hash_and_inside_it() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let update = Update::status("Awaiting Delivery")
        .field("merchantfees", "0.50")
        .field("paymentchannel", "ecocash");
    let attempts = fake.deliver("INV-1", update).await;
    let body = &attempts[0].body;
    assert!(body.contains("&status=Awaiting+Delivery&"), "{body}");
    let fields = decode(body);
    assert_eq!(
        names(&fields),
        [
            "reference",
            "paynowreference",
            "amount",
            "status",
            "pollurl",
            "merchantfees",
            "paymentchannel",
            "hash"
        ]
    );
    assert!(verifies(&fields, KEY));
    let without_extras: Vec<&str> = fields[..5].iter().map(|(_, v)| v.as_str()).collect();
    assert_ne!(get(&fields, "hash"), hash_of(&without_extras, KEY));
    assert_eq!(
        fake.transaction("INV-1").unwrap().status,
        "Awaiting Delivery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_forgeries_do_not_verify_and_leave_the_polled_status_alone() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let reply = initiate_web(&fake, "INV-1", &result_url(&shop)).await;

    let wrong_key = fake
        .deliver("INV-1", Update::paid().signed_with_key("not-the-key"))
        .await;
    let fields = decode(&wrong_key[0].body);
    assert!(!verifies(&fields, KEY));
    assert!(verifies(&fields, "not-the-key"));

    let upper = fake
        .deliver("INV-1", Update::paid().signed_with_upper_case_key())
        .await;
    let fields = decode(&upper[0].body);
    assert!(!verifies(&fields, KEY));
    assert!(verifies(&fields, &KEY.to_uppercase()));

    let literal = fake.deliver("INV-1", Update::paid().hash("DEADBEEF")).await;
    assert!(
        literal[0].body.ends_with("&hash=DEADBEEF"),
        "{}",
        literal[0].body
    );

    let unsigned = fake.deliver("INV-1", Update::paid().unsigned()).await;
    assert!(!decode(&unsigned[0].body).iter().any(|(k, _)| k == "hash"));

    let polled = poll(&fake, get(&reply, "pollurl")).await;
    assert_eq!(
        get(&polled, "status"),
        "Created",
        "a forger cannot change Paynow's record"
    );
    assert_eq!(shop.received().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_signed_with_another_integrations_key_verifies_only_with_that_key() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake
        .deliver("INV-1", Update::paid().signed_by_integration(ZWG_ID))
        .await;
    let fields = decode(&attempts[0].body);
    assert!(verifies(&fields, ZWG_KEY));
    assert!(!verifies(&fields, KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_can_say_paid_while_the_poll_says_created() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let reply = initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    let attempts = fake
        .deliver("INV-1", Update::paid().set_poll_status(false))
        .await;
    let fields = decode(&attempts[0].body);
    assert_eq!(get(&fields, "status"), "Paid");
    assert!(verifies(&fields, KEY));
    assert_eq!(
        get(&poll(&fake, get(&reply, "pollurl")).await, "status"),
        "Created"
    );

    // And set_status changes what the poll says without delivering anything.
    fake.set_status("INV-1", "Disputed");
    assert_eq!(
        get(&poll(&fake, get(&reply, "pollurl")).await, "status"),
        "Disputed"
    );
    assert_eq!(shop.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_updates_arrive_as_scripted_and_the_poll_reports_the_last() {
    let fake = paynow().await;
    let shop = merchant(200).await;
    let reply = initiate_web(&fake, "INV-1", &result_url(&shop)).await;
    fake.cancel("INV-1").await;
    fake.pay("INV-1").await;
    let statuses: Vec<String> = shop
        .received()
        .iter()
        .map(|r| get(&decode(&r.text()), "status").to_owned())
        .collect();
    assert_eq!(statuses, ["Cancelled", "Paid"]);
    assert_eq!(
        get(&poll(&fake, get(&reply, "pollurl")).await, "status"),
        "Paid"
    );
}
