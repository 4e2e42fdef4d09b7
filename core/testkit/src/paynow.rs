//! A fake Paynow on loopback, faithful to the wire (`../shared/PROVIDERS.md` §1), for Keel's
//! tests and for a person (`keel-fake paynow`).
//!
//! ```no_run
//! # async fn demo() {
//! use keel_testkit::paynow::{FakePaynow, Update};
//! use std::time::Duration;
//!
//! let paynow = FakePaynow::builder(&[(1201, "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977")])
//!     .public_host("www.paynow.co.zw") // pollurl/browserurl: http://www.paynow.co.zw:PORT/…
//!     .delays(Duration::from_millis(50), Duration::from_millis(200))
//!     .retry_backoff(Duration::from_millis(10))
//!     .start()
//!     .await;
//! // … the plugin under test initiates INV-1 against paynow.ip():paynow.port() …
//! let attempts = paynow.deliver("INV-1", Update::paid().times(2)).await;
//! # let _ = attempts; }
//! ```
//!
//! # What is faithful
//! - Routes: `POST /interface/initiatetransaction`, `/interface/remotetransaction`,
//!   `/interface/trace`; the poll `POST /Interface/CheckPayment/?guid=<uuid>` with an empty
//!   body; the payer's page `GET`/`POST /Payment/ConfirmPayment/<paynowreference>`. Paths
//!   match in any case and with or without a trailing slash, as on Paynow's IIS.
//! - Requests are form-decoded once, in order (`+` is a space); the hash is recomputed over
//!   every value but `hash`'s, in received order, plus the integration's key lower-cased;
//!   SHA-512, compared in any case (§1.3). So double-encoded values (the Python SDK, §1.9)
//!   and any field order pass, and an optional field left out of the hash fails.
//! - Errors carry no hash and use Paynow's texts: `Invalid id.`, `Invalid Hash.  Hash should
//!   start with: XXXXXX` (the first six hex digits of the expected hash), `Invalid amount
//!   field`, `Insufficient balance`.
//! - Replies are one line, lowercase keys, lowercase `%xx` escapes and `+` for spaces, signed
//!   with the hash last, in Paynow's field orders (§1.4, §1.5); status updates and poll
//!   replies are `reference, paynowreference, amount, status, pollurl, hash`, amount with two
//!   places; trace answers a known `merchanttrace` with its status message, else
//!   `status=NotFound&hash=…`.
//! - Test mode (Paynow's "Test Mode" page): phone `0771111111` is paid after 5 s,
//!   `0772222222` paid after 30 s, `0773333333` cancelled after 30 s, `0774444444` refused
//!   at initiation with `Insufficient balance`; the card tokens `{1111…}`…`{4444…}` (vmc) and
//!   `1111…`…`4444…` (zimswitch, 32 digits) do the same. Other numbers stay `Sent`.
//! - Status updates are form-encoded signed POSTs to the `resulturl`; a non-2xx answer or a
//!   failed connection is retried, ten attempts in all (§1.5). With
//!   [`FakePaynowBuilder::lose_updates`] the ones the checkout page and the test numbers
//!   would send are lost instead (the status still changes): only a poll finds out.
//!
//! # What is not
//! - No TLS, no real settlement, no accounts: every integration is in test mode and the
//!   checkout page pays at a click. `authemail` is required for express checkout but not
//!   compared with a merchant login.
//! - Texts Paynow does not document are the fake's own: a missing required field
//!   (`Missing required field: <name>`), an unknown express `method` (`Invalid payment
//!   method`), an unknown poll guid (`Transaction not found`), the express `instructions`.
//! - Amounts: any positive decimal with at most two places is accepted (`12.5`, `25.00`)
//!   and recorded exactly as sent ([`Transaction::amount`]); more places are refused, which
//!   real Paynow may not do.
//! - Failed mobile payments arrive as `Cancelled` (what community reports show; the docs'
//!   prose says "FAILED"; [`Update::status`] sends any word).
//! - Paynow's retry schedule is undocumented: the fake waits a fixed
//!   [`FakePaynowBuilder::retry_backoff`] (1 s by default) between attempts.
//! - PayGo's `authorizationqr`, tokenization (`token`, `tokenexpiry` in updates) and 3-D
//!   Secure are not emulated; InnBucks' `authorizationcode` and `authorizationexpires` are.
//! - The reply `Content-Type` is `text/html; charset=utf-8` (ASP.NET's default; unconfirmed,
//!   PROVIDERS.md §6): a client must not depend on it.
//! - A reference used twice makes two transactions; the script API acts on the newest.

mod page;
pub mod wire;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::plugins::Received;
use wire::{Fields, field};

/// Attempts per status update, the first included (Paynow "resends up to ten times").
pub const DELIVERY_ATTEMPTS: u32 = 10;
/// How long one delivery attempt may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first `paynowreference` handed out; each transaction takes the next.
const FIRST_PAYNOW_REFERENCE: u64 = 18_452_937;

/// Test-mode phone: paid after the fast delay (5 s by default).
pub const PHONE_PAID_FAST: &str = "0771111111";
/// Test-mode phone: paid after the slow delay (30 s by default).
pub const PHONE_PAID_SLOW: &str = "0772222222";
/// Test-mode phone: cancelled after the slow delay (30 s by default).
pub const PHONE_CANCELLED_SLOW: &str = "0773333333";
/// Test-mode phone: refused at initiation with `Insufficient balance`.
pub const PHONE_INSUFFICIENT_BALANCE: &str = "0774444444";

/// Which initiation made a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkout {
    /// `/interface/initiatetransaction`: the payer is sent to `browserurl`.
    Web,
    /// `/interface/remotetransaction`: mobile money or a card token, no browser.
    Express,
}

/// A transaction the fake accepted.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub checkout: Checkout,
    pub integration_id: u64,
    /// The merchant's `reference`.
    pub reference: String,
    /// Paynow's id, also the last segment of `browser_url`.
    pub paynow_reference: String,
    /// `amount` exactly as the merchant sent it (`12.5` stays `12.5`).
    pub amount: String,
    pub method: Option<String>,
    pub phone: Option<String>,
    pub token: Option<String>,
    pub merchant_trace: Option<String>,
    /// What a poll or trace reports now (`Created`, `Sent`, `Paid`, …).
    pub status: String,
    pub result_url: String,
    /// Empty when an express initiation sent none.
    pub return_url: String,
    pub poll_url: String,
    /// Web checkout only.
    pub browser_url: Option<String>,
    /// The poll URL's `guid`.
    pub guid: String,
    /// The initiation's fields as received (decoded once), in order, `hash` included.
    pub fields: Fields,
}

impl Transaction {
    /// A field of the initiation request, matched case-insensitively.
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.fields, name)
    }
}

/// One attempt to deliver a status update to a merchant's `resulturl`.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The merchant reference of the transaction.
    pub reference: String,
    pub url: String,
    /// The form body sent.
    pub body: String,
    /// 1 to [`DELIVERY_ATTEMPTS`] within one delivery.
    pub attempt: u32,
    /// The merchant's HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout).
    pub error: Option<String>,
}

impl Delivery {
    /// The merchant answered 2xx.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The body's fields, decoded.
    pub fn fields(&self) -> Fields {
        wire::decode(&self.body)
    }
}

/// A status update a test has the fake deliver: by default a genuine one (the
/// transaction's own integration key, its amount with two places, sent once, and the status
/// a poll reports set to the update's). Each method changes one thing.
#[derive(Debug, Clone)]
pub struct Update {
    status: String,
    amount: Option<String>,
    extra: Fields,
    signing: Signing,
    times: usize,
    set_poll_status: Option<bool>,
}

#[derive(Debug, Clone)]
enum Signing {
    Genuine,
    UpperCaseKey,
    Key(String),
    Integration(u64),
    Hash(String),
    Unsigned,
}

impl Update {
    /// An update with this `status` word, sent as given (`Paid`, `Awaiting Delivery`,
    /// `Refunded`, `Disputed`, `Failed`, anything).
    pub fn status(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            amount: None,
            extra: Vec::new(),
            signing: Signing::Genuine,
            times: 1,
            set_poll_status: None,
        }
    }

    pub fn paid() -> Self {
        Self::status("Paid")
    }

    pub fn cancelled() -> Self {
        Self::status("Cancelled")
    }

    /// Sends this `amount` instead of the transaction's (a poll still reports the real one).
    pub fn amount(mut self, amount: impl Into<String>) -> Self {
        self.amount = Some(amount.into());
        self
    }

    /// Adds a field after `pollurl`, before `hash`, and inside the hash (as Paynow's
    /// undocumented `merchantfees`, `paymentchannel`, … are).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Signs with this key exactly as given (not lower-cased): a forgery.
    pub fn signed_with_key(mut self, key: impl Into<String>) -> Self {
        self.signing = Signing::Key(key.into());
        self
    }

    /// Signs with the transaction's key in upper case (§1.3 point 4): a mismatch.
    pub fn signed_with_upper_case_key(mut self) -> Self {
        self.signing = Signing::UpperCaseKey;
        self
    }

    /// Signs with another configured integration's key (a USD update signed as ZWG).
    pub fn signed_by_integration(mut self, integration_id: u64) -> Self {
        self.signing = Signing::Integration(integration_id);
        self
    }

    /// Sends this literal `hash` value.
    pub fn hash(mut self, hash: impl Into<String>) -> Self {
        self.signing = Signing::Hash(hash.into());
        self
    }

    /// Sends no `hash` field.
    pub fn unsigned(mut self) -> Self {
        self.signing = Signing::Unsigned;
        self
    }

    /// Delivers the same update `times` times in a row (duplicates), each with its retries.
    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Whether a poll or trace reports the update's status afterwards. Default: yes for a
    /// genuinely signed update, no for any other signing (a forger cannot change Paynow's
    /// record). `false` gives "the update says Paid, the poll says Created".
    pub fn set_poll_status(mut self, yes: bool) -> Self {
        self.set_poll_status = Some(yes);
        self
    }

    fn sets_poll_status(&self) -> bool {
        self.set_poll_status
            .unwrap_or(matches!(self.signing, Signing::Genuine))
    }
}

/// Options of a [`FakePaynow`] before it starts.
#[derive(Clone)]
pub struct FakePaynowBuilder {
    integrations: BTreeMap<u64, String>,
    listen: SocketAddr,
    public_base: Option<String>,
    public_host: Option<String>,
    browser_base: Option<BrowserBase>,
    fast: Duration,
    slow: Duration,
    retry_backoff: Duration,
    log: bool,
    lose_updates: bool,
}

impl FakePaynowBuilder {
    /// Listens here instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The origin written into `pollurl` and `browserurl` (`http://www.paynow.co.zw:8091`),
    /// without a trailing slash. Default `http://<listen address>`.
    pub fn public_base(mut self, origin: impl Into<String>) -> Self {
        self.public_base = Some(origin.into().trim_end_matches('/').to_owned());
        self
    }

    /// The origin written into `browserurl` only, when the payer's browser reaches the fake
    /// elsewhere than the plugin does: with [`public_base`](Self::public_base)
    /// `https://www.paynow.co.zw` (what the plugin checks poll URLs against, its connections
    /// moved to the fake by `keel serve --fake-origin`), the browser still needs the fake's
    /// own address. Default: the public base.
    pub fn browser_base(mut self, origin: impl Into<String>) -> Self {
        self.browser_base = Some(BrowserBase::Fixed(
            origin.into().trim_end_matches('/').to_owned(),
        ));
        self
    }

    /// [`browser_base`](Self::browser_base) `http://<the address it listens on>`.
    pub fn browser_base_here(mut self) -> Self {
        self.browser_base = Some(BrowserBase::Here);
        self
    }

    /// The public base `http://<host>:<the port it listens on>`: for a plugin that talks to
    /// `www.paynow.co.zw`, which its host's resolver points at 127.0.0.1.
    pub fn public_host(mut self, host: impl Into<String>) -> Self {
        self.public_host = Some(host.into());
        self
    }

    /// The test numbers' delays: `fast` for `0771111111` (5 s), `slow` for `0772222222` and
    /// `0773333333` (30 s).
    pub fn delays(mut self, fast: Duration, slow: Duration) -> Self {
        self.fast = fast;
        self.slow = slow;
        self
    }

    /// The wait between delivery attempts (1 s by default).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Loses the status updates the checkout page's buttons and the test numbers would send
    /// (a result URL that never hears): the transaction's status still changes, so only a
    /// poll finds out. Scripted [`FakePaynow::deliver`] calls are sent as ever.
    pub fn lose_updates(mut self, on: bool) -> Self {
        self.lose_updates = on;
        self
    }

    /// Prints a line per request and per delivery attempt to stdout (for `keel-fake`).
    pub fn log(mut self, on: bool) -> Self {
        self.log = on;
        self
    }

    /// Binds and serves; panics if the address cannot be bound.
    pub async fn start(self) -> FakePaynow {
        let listen = self.listen;
        self.try_start()
            .await
            .unwrap_or_else(|e| panic!("fake Paynow: bind {listen}: {e}"))
    }

    /// Binds and serves.
    pub async fn try_start(self) -> std::io::Result<FakePaynow> {
        let listener = tokio::net::TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let public_base = match (self.public_base, self.public_host) {
            (Some(base), _) => base,
            (None, Some(host)) => format!("http://{host}:{}", addr.port()),
            (None, None) => format!("http://{addr}"),
        };
        let browser_base = match self.browser_base {
            Some(BrowserBase::Fixed(base)) => Some(base),
            Some(BrowserBase::Here) => Some(format!("http://{addr}")),
            None => None,
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .expect("HTTP client");
        let shared = Arc::new(Shared {
            keys: self.integrations,
            fast: self.fast,
            slow: self.slow,
            retry_backoff: self.retry_backoff,
            log: self.log,
            lose_updates: self.lose_updates,
            http,
            book: Mutex::new(Book {
                public_base,
                browser_base,
                next_paynow_reference: FIRST_PAYNOW_REFERENCE,
                transactions: Vec::new(),
                received: Vec::new(),
                deliveries: Vec::new(),
            }),
            delivered: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let handler_state = Arc::clone(&shared);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = Arc::clone(&handler_state);
                async move { shared.handle(method, uri, headers, body) }
            },
        );
        let server = crate::spawn_server_on(listener, move |listener, shutdown| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .ok();
        });
        Ok(FakePaynow {
            shared,
            addr,
            server: Some(server),
        })
    }
}

/// The fake, serving until [`FakePaynow::stop`] or drop (which also abandons pending
/// test-number outcomes and deliveries).
pub struct FakePaynow {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `None` once stopped.
    server: Option<crate::RunningServer>,
}

impl FakePaynow {
    /// Serves these integrations (id → key; keys are used lower-cased) on `127.0.0.1:0`
    /// with Paynow's real delays.
    pub async fn start(integrations: &[(u64, &str)]) -> FakePaynow {
        Self::builder(integrations).start().await
    }

    pub fn builder(integrations: &[(u64, &str)]) -> FakePaynowBuilder {
        FakePaynowBuilder {
            integrations: integrations
                .iter()
                .map(|(id, key)| (*id, key.to_lowercase()))
                .collect(),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            public_base: None,
            public_host: None,
            browser_base: None,
            fast: Duration::from_secs(5),
            slow: Duration::from_secs(30),
            retry_backoff: Duration::from_secs(1),
            log: false,
            lose_updates: false,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://<ip>:<port>`: where the fake listens.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// [`origin`](Self::origin) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// The origin written into new `pollurl`s and `browserurl`s.
    pub fn public_base(&self) -> String {
        self.shared.book().public_base.clone()
    }

    /// The origin written into new `browserurl`s.
    pub fn browser_base(&self) -> String {
        let book = self.shared.book();
        book.browser_base
            .clone()
            .unwrap_or_else(|| book.public_base.clone())
    }

    /// Changes the origin written into the URLs of transactions made from now on.
    pub fn set_public_base(&self, origin: &str) {
        self.shared.book().public_base = origin.trim_end_matches('/').to_owned();
    }

    /// Every transaction, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.shared.book().transactions.clone()
    }

    /// The newest transaction with this merchant reference.
    pub fn transaction(&self, reference: &str) -> Option<Transaction> {
        self.shared
            .book()
            .transactions
            .iter()
            .rev()
            .find(|t| t.reference == reference)
            .cloned()
    }

    /// Every request the fake received, in order (pages and polls included).
    pub fn received(&self) -> Vec<Received> {
        self.shared.book().received.clone()
    }

    /// Every delivery attempt so far (scripted, test-number and checkout-page ones).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.book().deliveries.clone()
    }

    /// Waits until at least `count` delivery attempts are recorded and returns them all;
    /// panics after `timeout` (for outcomes that happen in the background).
    pub async fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<Delivery> {
        crate::wait_for_count(
            &self.shared.delivered,
            count,
            timeout,
            "delivery attempts",
            || self.deliveries(),
        )
        .await
    }

    /// Sets what a poll or trace reports for the newest transaction with `reference`,
    /// delivering nothing. Panics if there is none.
    pub fn set_status(&self, reference: &str, status: &str) {
        let mut book = self.shared.book();
        let t = book
            .transactions
            .iter_mut()
            .rev()
            .find(|t| t.reference == reference)
            .unwrap_or_else(|| panic!("fake Paynow: no transaction with reference {reference}"));
        t.status = status.to_owned();
    }

    /// Delivers `update` for the newest transaction with `reference` to its `resulturl`,
    /// retrying as Paynow does, and returns every attempt. Panics if there is none.
    pub async fn deliver(&self, reference: &str, update: Update) -> Vec<Delivery> {
        let paynow_reference = self
            .transaction(reference)
            .unwrap_or_else(|| panic!("fake Paynow: no transaction with reference {reference}"))
            .paynow_reference;
        self.shared.deliver(&paynow_reference, &update).await
    }

    /// Delivers a genuine `Paid`.
    pub async fn pay(&self, reference: &str) -> Vec<Delivery> {
        self.deliver(reference, Update::paid()).await
    }

    /// Delivers a genuine `Cancelled`.
    pub async fn cancel(&self, reference: &str) -> Vec<Delivery> {
        self.deliver(reference, Update::cancelled()).await
    }

    /// Stops serving and abandons background work.
    pub async fn stop(mut self) {
        self.shared.abort_tasks();
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

impl Drop for FakePaynow {
    fn drop(&mut self) {
        self.shared.abort_tasks();
    }
}

/// State shared by the server's handlers, background tasks and the test's handle.
struct Shared {
    /// Integration id → key, lower-cased.
    keys: BTreeMap<u64, String>,
    fast: Duration,
    slow: Duration,
    retry_backoff: Duration,
    log: bool,
    /// [`FakePaynowBuilder::lose_updates`].
    lose_updates: bool,
    http: reqwest::Client,
    /// A std mutex: every critical section is a few field reads or pushes and none is
    /// held across an `.await`, so an async mutex would buy nothing.
    book: Mutex<Book>,
    /// Woken on every delivery attempt ([`FakePaynow::wait_for_deliveries`]).
    delivered: Notify,
    /// Test-number outcomes and checkout-page deliveries still running.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Where `browserurl`s point ([`FakePaynowBuilder::browser_base`]).
#[derive(Clone)]
enum BrowserBase {
    Fixed(String),
    /// The address the fake listens on, known once bound.
    Here,
}

struct Book {
    public_base: String,
    /// `None`: the public base.
    browser_base: Option<String>,
    next_paynow_reference: u64,
    transactions: Vec<Transaction>,
    received: Vec<Received>,
    deliveries: Vec<Delivery>,
}

/// What a test number or token does (Paynow's "Test Mode" page).
enum Outcome {
    PaidFast,
    PaidSlow,
    CancelledSlow,
    InsufficientBalance,
    Waits,
}

fn test_outcome(phone: Option<&str>, token: Option<&str>) -> Outcome {
    let digit = match (phone, token) {
        (_, Some(token)) => {
            let digits: String = token
                .chars()
                .filter(|c| !matches!(c, '{' | '}' | '-'))
                .collect();
            let first = digits.chars().next().unwrap_or('0');
            (digits.len() == 32 && digits.chars().all(|c| c == first)).then_some(first)
        }
        (Some(PHONE_PAID_FAST), None) => Some('1'),
        (Some(PHONE_PAID_SLOW), None) => Some('2'),
        (Some(PHONE_CANCELLED_SLOW), None) => Some('3'),
        (Some(PHONE_INSUFFICIENT_BALANCE), None) => Some('4'),
        _ => None,
    };
    match digit {
        Some('1') => Outcome::PaidFast,
        Some('2') => Outcome::PaidSlow,
        Some('3') => Outcome::CancelledSlow,
        Some('4') => Outcome::InsufficientBalance,
        _ => Outcome::Waits,
    }
}

/// Methods that take a `phone`; `vmc` and `zimswitch` take a `token` instead.
const MOBILE_METHODS: [&str; 5] = ["ecocash", "onemoney", "innbucks", "paygo", "omari"];
const TOKEN_METHODS: [&str; 2] = ["vmc", "zimswitch"];

/// `Created` (web) and `Sent` (express) are the states a payer can still act on.
pub(crate) fn is_pending(status: &str) -> bool {
    status.eq_ignore_ascii_case("Created") || status.eq_ignore_ascii_case("Sent")
}

fn error(text: &str) -> Fields {
    vec![
        ("status".to_owned(), "Error".to_owned()),
        ("error".to_owned(), text.to_owned()),
    ]
}

fn pair(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// A status message (§1.5): `reference, paynowreference, amount, status, pollurl`, unsigned.
fn status_fields(t: &Transaction, status: &str, amount: Option<&str>) -> Fields {
    let amount = match amount {
        Some(amount) => amount.to_owned(),
        None => wire::two_places(&t.amount).unwrap_or_else(|| t.amount.clone()),
    };
    vec![
        pair("reference", t.reference.as_str()),
        pair("paynowreference", t.paynow_reference.as_str()),
        pair("amount", amount),
        pair("status", status),
        pair("pollurl", t.poll_url.as_str()),
    ]
}

fn random_guid() -> String {
    // Version 4 (random), variant 1: xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx.
    let n = rand::random::<u128>() & !(0xf_u128 << 76) | (0x4_u128 << 76);
    let n = n & !(0xc_u128 << 60) | (0x8_u128 << 60);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    fn abort_tasks(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn handle(
        self: &Arc<Self>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        self.book()
            .received
            .push(Received::new(&method, &uri, &headers, &body));
        let lower = uri.path().to_ascii_lowercase();
        let path = lower.trim_end_matches('/');
        let text = String::from_utf8_lossy(&body);
        const CONFIRM: &str = "/payment/confirmpayment/";
        let response = match (&method, path) {
            (&Method::POST, "/interface/initiatetransaction") => {
                form_reply(&self.initiate(Checkout::Web, &text))
            }
            (&Method::POST, "/interface/remotetransaction") => {
                form_reply(&self.initiate(Checkout::Express, &text))
            }
            (&Method::POST, "/interface/trace") => form_reply(&self.trace(&text)),
            (&Method::POST | &Method::GET, "/interface/checkpayment") => {
                form_reply(&self.poll(uri.query().unwrap_or("")))
            }
            (&Method::GET, p) if p.starts_with(CONFIRM) => {
                self.checkout_page(&p[CONFIRM.len()..], uri.path())
            }
            (&Method::POST, p) if p.starts_with(CONFIRM) => {
                self.checkout_action(&p[CONFIRM.len()..], &text)
            }
            (&Method::GET, "") => {
                html_reply(StatusCode::OK, page::index(&self.book().transactions))
            }
            _ => html_reply(StatusCode::NOT_FOUND, "Not found".to_owned()),
        };
        if self.log {
            println!("{method} {uri} -> {}", response.status());
        }
        response
    }

    /// The integration's key, or Paynow's `Invalid id.` error.
    fn key_for(&self, fields: &[(String, String)]) -> Result<(u64, &str), Fields> {
        field(fields, "id")
            .and_then(|id| id.trim().parse::<u64>().ok())
            .and_then(|id| self.keys.get(&id).map(|key| (id, key.as_str())))
            .ok_or_else(|| error("Invalid id."))
    }

    /// Checks the id and the hash of an incoming message.
    fn authenticate(&self, fields: &[(String, String)]) -> Result<(u64, &str), Fields> {
        let (id, key) = self.key_for(fields)?;
        if wire::verify(fields, key) {
            Ok((id, key))
        } else {
            let expected = wire::expected_hash(fields, key);
            Err(error(&format!(
                "Invalid Hash.  Hash should start with: {}",
                &expected[..6]
            )))
        }
    }

    fn initiate(self: &Arc<Self>, checkout: Checkout, body: &str) -> Fields {
        let fields = wire::decode(body);
        match self.try_initiate(checkout, fields) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    fn try_initiate(
        self: &Arc<Self>,
        checkout: Checkout,
        fields: Fields,
    ) -> Result<Fields, Fields> {
        let (integration_id, key) = self.authenticate(&fields)?;
        let amount = field(&fields, "amount").unwrap_or("");
        let two_places = wire::two_places(amount).ok_or_else(|| error("Invalid amount field"))?;
        let required = |name: &str| {
            field(&fields, name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| error(&format!("Missing required field: {name}")))
        };
        let reference = required("reference")?.to_owned();
        let result_url = required("resulturl")?.to_owned();
        if !required("status")?.eq_ignore_ascii_case("Message") {
            return Err(error("Invalid status field"));
        }
        let return_url = match checkout {
            Checkout::Web => required("returnurl")?.to_owned(),
            Checkout::Express => field(&fields, "returnurl").unwrap_or("").to_owned(),
        };
        let (mut method, mut phone, mut token) = (None, None, None);
        if checkout == Checkout::Express {
            required("authemail")?;
            let m = required("method")?.to_ascii_lowercase();
            if MOBILE_METHODS.contains(&m.as_str()) {
                phone = Some(required("phone")?.to_owned());
            } else if TOKEN_METHODS.contains(&m.as_str()) {
                token = Some(required("token")?.to_owned());
                required("merchanttrace")?;
            } else {
                return Err(error("Invalid payment method"));
            }
            method = Some(m);
        }
        let outcome = match checkout {
            Checkout::Web => Outcome::Waits,
            Checkout::Express => test_outcome(phone.as_deref(), token.as_deref()),
        };
        if let Outcome::InsufficientBalance = outcome {
            return Err(error("Insufficient balance"));
        }

        let transaction = {
            let mut book = self.book();
            let paynow_reference = book.next_paynow_reference.to_string();
            book.next_paynow_reference += 1;
            let guid = random_guid();
            let base = book.public_base.clone();
            let browser_base = book.browser_base.clone().unwrap_or_else(|| base.clone());
            let t = Transaction {
                checkout,
                integration_id,
                reference,
                paynow_reference: paynow_reference.clone(),
                amount: amount.to_owned(),
                method,
                phone,
                token,
                merchant_trace: field(&fields, "merchanttrace").map(str::to_owned),
                status: match checkout {
                    Checkout::Web => "Created".to_owned(),
                    Checkout::Express => "Sent".to_owned(),
                },
                result_url,
                return_url,
                poll_url: format!("{base}/Interface/CheckPayment/?guid={guid}"),
                browser_url: (checkout == Checkout::Web)
                    .then(|| format!("{browser_base}/Payment/ConfirmPayment/{paynow_reference}")),
                guid,
                fields,
            };
            book.transactions.push(t.clone());
            t
        };

        let later = match outcome {
            Outcome::PaidFast => Some((self.fast, "Paid")),
            Outcome::PaidSlow => Some((self.slow, "Paid")),
            Outcome::CancelledSlow => Some((self.slow, "Cancelled")),
            Outcome::InsufficientBalance | Outcome::Waits => None,
        };
        if let Some((delay, status)) = later {
            let shared = Arc::clone(self);
            let paynow_reference = transaction.paynow_reference.clone();
            self.spawn(async move {
                tokio::time::sleep(delay).await;
                // A script that moved the transaction on meanwhile wins.
                let untouched = {
                    let mut book = shared.book();
                    let found = book
                        .transactions
                        .iter_mut()
                        .find(|t| t.paynow_reference == paynow_reference && t.status == "Sent");
                    match found {
                        Some(t) if shared.lose_updates => {
                            t.status = status.to_owned();
                            false
                        }
                        Some(_) => true,
                        None => false,
                    }
                };
                if untouched {
                    shared
                        .deliver(&paynow_reference, &Update::status(status))
                        .await;
                }
            });
        }

        let t = &transaction;
        let reply = match checkout {
            Checkout::Web => vec![
                pair("status", "Ok"),
                pair("browserurl", t.browser_url.clone().unwrap_or_default()),
                pair("pollurl", t.poll_url.as_str()),
                pair("paynowreference", t.paynow_reference.as_str()),
            ],
            Checkout::Express => {
                let method = t.method.as_deref().unwrap_or("");
                let mut reply = vec![
                    pair("status", "Ok"),
                    pair("instructions", instructions(t, &two_places)),
                    pair("paynowreference", t.paynow_reference.as_str()),
                    pair("pollurl", t.poll_url.as_str()),
                ];
                if method == "innbucks" {
                    let code = rand::random::<u32>() % 900_000_000 + 100_000_000;
                    let zimbabwe = chrono::FixedOffset::east_opt(2 * 3600).expect("UTC+2");
                    let expires = (chrono::Utc::now() + chrono::Duration::minutes(10))
                        .with_timezone(&zimbabwe)
                        .format("%-d-%b-%Y %H:%M");
                    reply.push(pair("authorizationcode", code.to_string()));
                    reply.push(pair("authorizationexpires", expires.to_string()));
                }
                reply
            }
        };
        Ok(wire::sign(reply, key))
    }

    fn poll(&self, query: &str) -> Fields {
        let query = wire::decode(query);
        let guid = field(&query, "guid").unwrap_or("");
        let book = self.book();
        let Some(t) = book
            .transactions
            .iter()
            .find(|t| !guid.is_empty() && t.guid.eq_ignore_ascii_case(guid))
        else {
            return error("Transaction not found");
        };
        wire::sign(
            status_fields(t, &t.status, None),
            &self.keys[&t.integration_id],
        )
    }

    fn trace(&self, body: &str) -> Fields {
        let fields = wire::decode(body);
        let (integration_id, key) = match self.authenticate(&fields) {
            Ok(found) => found,
            Err(reply) => return reply,
        };
        let Some(trace) = field(&fields, "merchanttrace").filter(|t| !t.is_empty()) else {
            return error("Trace failed");
        };
        let book = self.book();
        let found = book.transactions.iter().rev().find(|t| {
            t.integration_id == integration_id && t.merchant_trace.as_deref() == Some(trace)
        });
        match found {
            Some(t) => wire::sign(status_fields(t, &t.status, None), key),
            None => wire::sign(vec![pair("status", "NotFound")], key),
        }
    }

    fn checkout_page(&self, paynow_reference: &str, path: &str) -> Response {
        let book = self.book();
        match book
            .transactions
            .iter()
            .find(|t| t.paynow_reference == paynow_reference)
        {
            Some(t) => html_reply(StatusCode::OK, page::checkout(t, path)),
            None => html_reply(StatusCode::NOT_FOUND, "No such transaction".to_owned()),
        }
    }

    /// The payer pressed Pay or Cancel: the status changes now, the update is delivered in
    /// the background, and the browser goes back to the merchant.
    fn checkout_action(self: &Arc<Self>, paynow_reference: &str, body: &str) -> Response {
        let form = wire::decode(body);
        let status = match field(&form, "action") {
            Some(a) if a.eq_ignore_ascii_case("pay") => "Paid",
            Some(a) if a.eq_ignore_ascii_case("cancel") => "Cancelled",
            _ => {
                return html_reply(
                    StatusCode::BAD_REQUEST,
                    "action must be pay or cancel".into(),
                );
            }
        };
        let (return_url, pending) = {
            let mut book = self.book();
            let Some(t) = book
                .transactions
                .iter_mut()
                .find(|t| t.paynow_reference == paynow_reference)
            else {
                return html_reply(StatusCode::NOT_FOUND, "No such transaction".to_owned());
            };
            let pending = is_pending(&t.status);
            if pending {
                t.status = status.to_owned();
            }
            (t.return_url.clone(), pending)
        };
        if pending && !self.lose_updates {
            let shared = Arc::clone(self);
            let paynow_reference = paynow_reference.to_owned();
            self.spawn(async move {
                shared
                    .deliver(&paynow_reference, &Update::status(status))
                    .await;
            });
        }
        if return_url.is_empty() {
            html_reply(StatusCode::OK, format!("<p>{status}.</p>"))
        } else {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::FOUND;
            if let Ok(location) = header::HeaderValue::from_str(&return_url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }

    /// Builds the update, sets the polled status if it should, then delivers it
    /// `update.times` times, each with retries.
    async fn deliver(&self, paynow_reference: &str, update: &Update) -> Vec<Delivery> {
        let (reference, url, body) = {
            let mut book = self.book();
            let t = book
                .transactions
                .iter_mut()
                .find(|t| t.paynow_reference == paynow_reference)
                .expect("a transaction the fake made");
            if update.sets_poll_status() {
                t.status = update.status.clone();
            }
            let mut fields = status_fields(t, &update.status, update.amount.as_deref());
            fields.extend(update.extra.iter().cloned());
            let own_key = &self.keys[&t.integration_id];
            let hash = match &update.signing {
                Signing::Genuine => Some(wire::hash(values(&fields), own_key)),
                Signing::UpperCaseKey => Some(wire::hash(values(&fields), &own_key.to_uppercase())),
                Signing::Key(key) => Some(wire::hash(values(&fields), key)),
                Signing::Integration(id) => {
                    let key = self
                        .keys
                        .get(id)
                        .unwrap_or_else(|| panic!("fake Paynow: no integration {id} to sign with"));
                    Some(wire::hash(values(&fields), key))
                }
                Signing::Hash(hash) => Some(hash.clone()),
                Signing::Unsigned => None,
            };
            if let Some(hash) = hash {
                fields.push(pair("hash", hash));
            }
            (
                t.reference.clone(),
                t.result_url.clone(),
                wire::encode(&fields),
            )
        };
        let mut attempts = Vec::new();
        for _ in 0..update.times {
            attempts.extend(self.post_with_retries(&reference, &url, &body).await);
        }
        attempts
    }

    async fn post_with_retries(&self, reference: &str, url: &str, body: &str) -> Vec<Delivery> {
        let mut attempts = Vec::new();
        for attempt in 1..=DELIVERY_ATTEMPTS {
            let sent = self
                .http
                .post(url)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.to_owned())
                .send()
                .await;
            let (status, error) = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    (Some(status), None)
                }
                Err(e) => (None, Some(error_chain(&e))),
            };
            let delivery = Delivery {
                reference: reference.to_owned(),
                url: url.to_owned(),
                body: body.to_owned(),
                attempt,
                status,
                error,
            };
            if self.log {
                let outcome = match (&delivery.status, &delivery.error) {
                    (Some(status), _) => status.to_string(),
                    (None, Some(error)) => error.clone(),
                    (None, None) => String::new(),
                };
                println!(
                    "status update for {reference}, attempt {attempt}/{DELIVERY_ATTEMPTS}, POST {url}: {outcome}\n  {body}"
                );
            }
            let succeeded = delivery.succeeded();
            self.book().deliveries.push(delivery.clone());
            self.delivered.notify_waiters();
            attempts.push(delivery);
            if succeeded {
                break;
            }
            if attempt < DELIVERY_ATTEMPTS {
                tokio::time::sleep(self.retry_backoff).await;
            }
        }
        attempts
    }
}

fn values(fields: &[(String, String)]) -> impl Iterator<Item = &str> {
    fields.iter().map(|(_, value)| value.as_str())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an express checkout tells the payer (the fake's own words; Paynow's vary by method
/// and may hold CR/LF, as these do).
fn instructions(t: &Transaction, amount: &str) -> String {
    match (t.method.as_deref(), t.phone.as_deref()) {
        (Some("innbucks"), _) => format!(
            "Open the InnBucks app and approve the payment of {amount} with the authorization code below.\r\nTest mode: nothing is charged."
        ),
        (Some(method), Some(phone)) => format!(
            "A payment request of {amount} has been sent to {phone}.\r\nApprove it on the handset with your {method} PIN.\r\nTest mode: nothing is charged."
        ),
        _ => format!(
            "The card payment of {amount} is being processed.\r\nTest mode: nothing is charged."
        ),
    }
}

fn form_reply(fields: &Fields) -> Response {
    let mut response = Response::new(Body::from(wire::encode(fields)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn html_reply(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// The shipped Paynow component loaded against `fake`, as an admin would load it for a
/// provider on a private address: a copy of its manifest declares the fake's origin
/// (`http://www.paynow.co.zw:<port>`), the harness resolves that name to the fake, and the
/// section allows the loopback network. The sandbox is not loosened: the plugin reaches only
/// that origin. `integrations` are `(currency, id, key)`, currency `usd` or `zwg`; the
/// harness must outlive the plugin.
pub async fn load_plugin(
    fake: &FakePaynow,
    integrations: &[(&str, u64, &str)],
) -> Result<(crate::plugins::PluginHarness, keel_plugin_host::Plugin), String> {
    const MANIFEST_HOST: &str = "\"https://www.paynow.co.zw\"";
    let artifact = &keel_plugins::KEEL_PLUGIN_PAYNOW;
    let manifest = artifact.manifest().map_err(|e| e.to_string())?;
    if !manifest.contains(MANIFEST_HOST) {
        return Err(format!(
            "the Paynow plugin.toml no longer declares {MANIFEST_HOST}"
        ));
    }
    let origin = format!("http://www.paynow.co.zw:{}", fake.port());
    let manifest = manifest.replace(MANIFEST_HOST, &format!("\"{origin}\""));
    let mut section = format!(
        "api_url = \"{origin}\"\nauth_email = \"merchant@example.co.zw\"\n\
         allow_networks = [\"{}\"]\n",
        match fake.ip() {
            IpAddr::V4(ip) => format!("{ip}/32"),
            IpAddr::V6(ip) => format!("{ip}/128"),
        }
    );
    for (currency, id, key) in integrations {
        section.push_str(&format!(
            "{currency}_integration_id = {id}\n{currency}_integration_key = \"{key}\"\n"
        ));
    }
    let mut harness = crate::plugins::PluginHarness::new().resolve("www.paynow.co.zw", fake.ip());
    let plugin = harness
        .load(
            artifact.wasm().map_err(|e| e.to_string())?,
            &manifest,
            &section,
        )
        .await
        .map_err(|e| format!("loading the Paynow plugin: {e}"))?;
    Ok((harness, plugin))
}
