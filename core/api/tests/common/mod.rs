//! What the API tests stand on: a real server over a fresh database (one per engine), an
//! admin key, a reseller with its key, and an HTTP client whose answers read as
//! `(status, error.code, error.details.field)`. Seeds go through the use cases, so the
//! audit log and the ledger hold them like anything else.
//!
//! Every test starts with [`Api::start`] (or [`Api::start_with`] for a special config) and
//! ends with [`Api::stop`]; the server is stopped before the database is dropped.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod paynow;

use keel_api::ApiConfig;
use keel_app::access::NewKey;
use keel_app::{App, Ctx};
use keel_domain::access::{Actor, KeyScope};
use keel_domain::client::{Client, NewClient};
use keel_domain::currency::Currency;
use keel_domain::ids::ProductId;
use keel_domain::ids::{AccountId, ApiKeyId, ClientId, ResellerId};
use keel_domain::ledger::{AccountKind, Side};
use keel_domain::money::Money;
use keel_domain::tenancy::Scope;
use keel_testkit::scenario::{Product, Scenario};
use keel_testkit::{RunningServer, TestDb};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A running API with the keys a test needs.
pub struct Api {
    pub app: App,
    /// The application the server runs (its clock may be a test's fixed clock).
    pub served: App,
    /// An admin key (host scope, every permission).
    pub admin: String,
    /// The reseller every test has, and its key.
    pub reseller: ResellerId,
    pub reseller_key: String,
    http: reqwest::Client,
    server: RunningServer,
}

/// One answer: status, headers, and the body as JSON (`Value::Null` when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// `error.code`, or "" when the answer is not an error.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.details.field`, or None.
    pub fn field(&self) -> Option<&str> {
        self.body["error"]["details"]["field"].as_str()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `id` of the record in the body.
    pub fn id(&self) -> i64 {
        self.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
    }

    /// Asserts an error answer: status, code and (when given) the field it names.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "answer: {}",
            self.text
        );
        if field.is_some() {
            assert_eq!(self.field(), field, "answer: {}", self.text);
        }
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "an error carries a message for a person: {}",
            self.text
        );
    }
}

/// What a failed write must leave exactly as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub client_ids: Vec<i64>,
    pub audit_rows: usize,
    pub balances: BTreeMap<i64, i64>,
    pub entries: usize,
}

/// The accounts [`Api::seed_wallet`] made: a client's USD wallet and the host's USD
/// adjustments account on the other side.
#[derive(Debug, Clone, Copy)]
pub struct Wallet {
    pub client: ClientId,
    pub wallet: AccountId,
    pub adjustments: AccountId,
}

/// Keel acting for the test (every permission, host scope).
pub fn system() -> Ctx {
    Ctx::system("test")
}

/// A valid body for `POST /api/v1/clients`.
pub fn client_json(email: &str) -> Value {
    json!({
        "kind": "person",
        "first_name": "Tendai",
        "last_name": "Moyo",
        "email": email,
        "country": "ZW",
        "currency": "USD",
    })
}

/// One posting of a `POST /api/v1/ledger/entries` body.
pub fn posting(account: AccountId, side: Side, amount: &str, currency: &str) -> Value {
    json!({ "account_id": account, "side": side, "amount": amount, "currency": currency })
}

/// A `POST /api/v1/ledger/entries` body.
pub fn adjustment(memo: &str, postings: Vec<Value>) -> Value {
    json!({ "memo": memo, "postings": postings })
}

/// An admin key made by Keel itself, as `keel key create` does.
pub async fn admin_key(app: &App) -> String {
    keel_app::access::create_key(
        app,
        &system(),
        NewKey {
            name: "test admin".into(),
            scope: KeyScope::Admin,
            reseller_id: None,
            client_id: None,
            staff_id: None,
        },
    )
    .await
    .expect("admin key")
    .secret
}

/// A key of `client` (client scope: the client acting for itself).
pub async fn client_key(app: &App, client: ClientId) -> String {
    keel_app::access::create_key(
        app,
        &system(),
        NewKey {
            name: format!("client {client} key"),
            scope: KeyScope::Client,
            reseller_id: None,
            client_id: Some(client),
            staff_id: None,
        },
    )
    .await
    .expect("client key")
    .secret
}

/// A new reseller and a key for it.
pub async fn reseller(app: &App, name: &str) -> (ResellerId, String) {
    let mut tx = app.db.begin().await.expect("begin");
    let id = keel_store::clients::create_reseller(&mut tx, name, app.now())
        .await
        .expect("reseller");
    tx.commit().await.expect("commit");
    let key = keel_app::access::create_key(
        app,
        &system(),
        NewKey {
            name: format!("{name} key"),
            scope: KeyScope::Reseller,
            reseller_id: Some(id),
            client_id: None,
            staff_id: None,
        },
    )
    .await
    .expect("reseller key")
    .secret;
    (id, key)
}

impl Api {
    /// A server with the default settings.
    pub async fn start(t: &TestDb) -> Api {
        Api::start_with(t, ApiConfig::default()).await
    }

    pub async fn start_with(t: &TestDb, config: ApiConfig) -> Api {
        Api::start_serving(t, config, App::new(t.db.clone())).await
    }

    /// Seeds the keys over `t` but serves `served` (a test that breaks the server's own
    /// database handle uses this).
    pub async fn start_serving(t: &TestDb, config: ApiConfig, served: App) -> Api {
        let app = App::new(t.db.clone());
        let admin = admin_key(&app).await;
        let (reseller, reseller_key) = reseller(&app, "Victoria Falls Resellers").await;
        let state = keel_api::State::new(served.clone(), config);
        let server = keel_testkit::spawn_server(move |listener, shutdown| async move {
            keel_api::serve(listener, state, shutdown).await.unwrap()
        })
        .await;
        Api {
            app,
            served,
            admin,
            reseller,
            reseller_key,
            http: reqwest::Client::new(),
            server,
        }
    }

    /// Seeds the keys over `t` and serves the app `build` makes from the server's own base
    /// URL (`http://127.0.0.1:PORT`), for an app that must know where it is reached (the
    /// callback and return URLs it gives payment gateways).
    pub async fn start_addressed(
        t: &TestDb,
        config: ApiConfig,
        build: impl FnOnce(String) -> App,
    ) -> Api {
        let app = App::new(t.db.clone());
        let admin = admin_key(&app).await;
        let (reseller, reseller_key) = reseller(&app, "Victoria Falls Resellers").await;
        let mut served = None;
        let server = keel_testkit::spawn_server(|listener, shutdown| {
            let base = format!("http://{}", listener.local_addr().expect("local address"));
            let app = build(base);
            served = Some(app.clone());
            let state = keel_api::State::new(app, config);
            async move { keel_api::serve(listener, state, shutdown).await.unwrap() }
        })
        .await;
        Api {
            app,
            served: served.expect("the server was built"),
            admin,
            reseller,
            reseller_key,
            http: reqwest::Client::new(),
            server,
        }
    }

    /// Closes the client's connections, then stops the server and waits for it to drain.
    pub async fn stop(self) {
        drop(self.http);
        self.server.stop().await;
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A request with no credentials; add what the test needs, then [`Api::send`] it.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A request with `Authorization: Bearer <key>`.
    pub fn authed(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(key)
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let res = request.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(self.authed(Method::GET, path, key)).await
    }

    /// A JSON POST, with an `Idempotency-Key` when one is given.
    pub async fn post(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut request = self.authed(Method::POST, path, key).json(body);
        if let Some(k) = idempotency_key {
            request = request.header("idempotency-key", k);
        }
        self.send(request).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.send(self.authed(Method::DELETE, path, key)).await
    }

    /// Every item of a list endpoint, following `next_cursor` (as the admin).
    pub async fn all_items(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let page_path = match &cursor {
                Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
                None => format!("{path}{sep}limit=200"),
            };
            let page = self.get(&page_path, &self.admin).await;
            assert_eq!(page.status, 200, "{page_path}: {}", page.text);
            items.extend(page.body["items"].as_array().expect("items").clone());
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
    }

    /// The crash of issue 14, finding 12, placed exactly: the admin key's `Idempotency-Key`
    /// `idem` is begun for `POST path` with the JSON `body`, as the idempotency layer begins
    /// it, two minutes ago (past the lock timeout: the process that ran it is long dead).
    /// The test then runs the route's use case with the slot, as the route would; the
    /// layer's own answer never comes. Returns the admin's context and the slot.
    pub async fn begin_crashed(&self, idem: &str, path: &str, body: &Value) -> (Ctx, i64) {
        let (actor, _) = keel_app::access::authenticate(&self.served, &self.admin)
            .await
            .expect("the admin key");
        let bytes = serde_json::to_vec(body).expect("JSON");
        let begun = keel_store::idempotency::begin(
            &self.served.db,
            &keel_app::ledger::principal(&actor),
            idem,
            "POST",
            path,
            &keel_api::idempotency::request_hash(Some(b"application/json"), &bytes),
            self.served.now() - chrono::Duration::minutes(2),
        )
        .await
        .expect("begin");
        let keel_store::idempotency::Begin::Started(slot) = begun else {
            panic!("{idem} was begun before: {begun:?}")
        };
        (Ctx::new(actor), slot)
    }

    /// What the database keeps as the answer under the admin key's `idem`: (status, body).
    pub async fn stored_answer(&self, idem: &str) -> (Option<i32>, Option<String>) {
        let (actor, _) = keel_app::access::authenticate(&self.served, &self.admin)
            .await
            .expect("the admin key");
        let stored =
            keel_store::idempotency::find(&self.app.db, &keel_app::ledger::principal(&actor), idem)
                .await
                .expect("read the key")
                .expect("the key is stored");
        (stored.response_status, stored.response_body)
    }

    /// Clients, audit rows, account balances and entries, as the admin sees them.
    pub async fn snapshot(&self) -> Snapshot {
        let client_ids = self
            .all_items("/api/v1/clients")
            .await
            .iter()
            .map(|c| c["id"].as_i64().expect("client id"))
            .collect();
        let audit_rows = self.all_items("/api/v1/audit").await.len();
        let balances = self
            .all_items("/api/v1/ledger/accounts")
            .await
            .iter()
            .map(|a| {
                (
                    a["id"].as_i64().expect("account id"),
                    a["raw_balance_minor"].as_i64().expect("balance"),
                )
            })
            .collect();
        let entries = self.all_items("/api/v1/ledger/entries").await.len();
        Snapshot {
            client_ids,
            audit_rows,
            balances,
            entries,
        }
    }

    /// A client of the host, created by Keel itself.
    pub async fn seed_client(&self, email: &str) -> Client {
        keel_app::clients::create_client(&self.app, &system(), new_client(email))
            .await
            .expect("client")
    }

    /// A client owned by `reseller`, created in that reseller's scope.
    pub async fn seed_reseller_client(&self, reseller: ResellerId, email: &str) -> Client {
        let ctx = Ctx::new(Actor::Key {
            key: ApiKeyId(0),
            label: "test reseller".into(),
            scope: Scope::Reseller(reseller),
            role: None,
            staff: None,
        });
        keel_app::clients::create_client(&self.app, &ctx, new_client(email))
            .await
            .expect("reseller client")
    }

    /// A host client whose USD wallet holds `minor` cents (credited from the adjustments
    /// account).
    pub async fn seed_wallet(&self, email: &str, minor: i64) -> Wallet {
        let client = self.seed_client(email).await.id;
        let posted = keel_app::ledger::wallet_adjust(
            &self.app,
            &system(),
            &format!("seed-{email}"),
            client,
            Money::new(minor, Currency::USD),
            "Opening credit",
        )
        .await
        .expect("wallet credit");
        let side = |s: Side| {
            posted
                .entry
                .postings
                .iter()
                .find(|p| p.side == s)
                .expect("both sides")
                .account
        };
        Wallet {
            client,
            wallet: side(Side::Credit),
            adjustments: side(Side::Debit),
        }
    }

    /// A host asset account with no floor.
    pub async fn seed_account(&self, code: &str, currency: Currency) -> AccountId {
        let mut tx = self.app.db.begin().await.expect("begin");
        let account = keel_store::ledger::create_account(
            &mut tx,
            &keel_store::ledger::NewAccount {
                code: code.into(),
                name: format!("Test account {code}"),
                kind: AccountKind::Asset,
                currency,
                owner: None,
                credit_limit_minor: None,
            },
            self.app.now(),
        )
        .await
        .expect("account");
        tx.commit().await.expect("commit");
        account.id
    }
}

fn new_client(email: &str) -> NewClient {
    serde_json::from_value(client_json(email)).expect("a valid client")
}

/// Starter 10.00 and Business 30.00 a month, 15 % VAT in ZW.
pub async fn hosting_catalog(app: &App) -> (ProductId, ProductId) {
    let world = Scenario::new(app)
        .tax("VAT", "ZW", "15")
        .product(Product::new("Starter").monthly(1000).taxed())
        .product(Product::new("Business").monthly(3000).taxed())
        .build()
        .await;
    (world.product("Starter"), world.product("Business"))
}
