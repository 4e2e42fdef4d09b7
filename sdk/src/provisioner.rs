//! Provisioners: implement [`Provisioner`] and export it with
//! [`export_provisioner!`](crate::export_provisioner).
//!
//! Every change of a service's status records what its provisioner must do as a job, in the
//! transaction that made the change, once per cause: `create` when a pending service's
//! invoice is paid, `suspend` and `terminate` from dunning, `unsuspend` when paying lifts a
//! suspension, and whichever of them staff ask for by changing a service's status
//! (`service.provision` jobs, queue `provision`, `{service, action}`). No worker serves that
//! queue yet: the provisioner workers come with a later issue, and until then the jobs wait,
//! visible in `keel jobs list`, while `keel plugin call` runs an operation by hand. What
//! follows is the contract of `wit/provisioner.wit` those workers will hold the plugin to:
//!
//! - Jobs run at least once, and twice when a worker loses its lease, so every operation
//!   must be safe to repeat. `create` carries the kernel's `reference` for the creation,
//!   stable across retries: a `create` repeated with it must find the account made the first
//!   time and answer it, neither failing with "exists" nor making a second. Give the
//!   reference to the server where it keeps one (an external id, a note), or remember it in
//!   [`kv`](crate::kv) against the user name. `suspend`, `unsuspend` and `terminate` carry
//!   no reference: make them idempotent by their outcome (suspending a suspended account,
//!   terminating one that is already gone: done, `Ok`).
//! - `create` answers the user name the server used (it may shorten or change the one
//!   asked for) and facts worth showing the client (server, IP address, nameservers). The
//!   password is the kernel's, kept encrypted: send it to the server and nowhere else,
//!   never to a log. `plan` is the server's package name and `options` the configurable
//!   options the client chose.
//! - `suspend`'s `reason` is for the server to show; `terminate` removes the account and its
//!   data, for good.
//! - The rest are optional, called only when `describe`'s [`Features`](crate::Features)
//!   claim them: `change-package` (`CHANGE_PACKAGE`), `change-password`
//!   (`CHANGE_PASSWORD`) and `usage` (`USAGE`: disk and bandwidth in bytes, `None` for an
//!   unlimited limit, for usage billing and the client's overview; the usage-sync schedule
//!   comes with it). One that answers `unsupported` all the same has its feature turned off,
//!   not counted as a failure.
//!
//! What each error tells the kernel (`wit/types.wit`):
//!
//! | Error | For a provisioner | Retried? |
//! |---|---|---|
//! | `invalid-input` | a user name or domain the server's rules refuse | no: shown to whoever asked |
//! | `refused` | the server said no: the user name or domain belongs to another account | no: recorded as the outcome |
//! | `unavailable` | the server is down or busy: a timeout, 429, 5xx ([`error_for_status`](crate::http::Response::error_for_status) maps them) | yes, the same operation later, after `retry-after-seconds` when given |
//! | `misconfigured` | credentials refused (401/403), a package the server does not have, an outbound host not granted | not until the admin changes the settings |
//! | `internal` | a reply the plugin does not understand | no: left for a person |
//!
//! ## A worked example: a hosting panel's JSON API, a `create` that finds its own account
//!
//! ```
//! use keel_sdk::http::{form_encode, Method, Request, Response};
//! use keel_sdk::provisioner::*;
//! use keel_sdk::testing::FakeHost;
//! use keel_sdk::{config, fixtures, Features, PluginError, PluginInfo};
//! use serde_json::json;
//! use std::collections::BTreeMap;
//!
//! struct Panel;
//!
//! /// Every call: the panel's API URL and its token, from the settings.
//! fn api(method: Method, path: &str) -> Result<Request, PluginError> {
//!     let base = config::require("api_url")?;
//!     let token = config::secret("api_token")?;
//!     Ok(Request::new(method, format!("{base}{path}")).bearer(token.expose()))
//! }
//!
//! /// An account as the panel shows it.
//! #[derive(serde::Deserialize)]
//! struct Account { username: String, server: String, ip: String }
//!
//! impl Account {
//!     fn created(self) -> AccountCreated {
//!         AccountCreated { username: self.username, details: vec![("server".into(), self.server), ("ip".into(), self.ip)] }
//!     }
//! }
//!
//! impl Provisioner for Panel {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("Panel", "0.1.0", "Hosting accounts on a Panel server", Features::empty())
//!     }
//!
//!     fn create(req: AccountRequest) -> Result<AccountCreated, PluginError> {
//!         let options: BTreeMap<&str, &str> = req.options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
//!         let reply = api(Method::Post, "/accounts")?
//!             .json(&json!({
//!                 // The panel keeps it and answers 409 for a second account with it.
//!                 "external_id": req.reference,
//!                 "username": req.account.username,
//!                 "domain": req.account.domain,
//!                 "password": req.password,
//!                 "package": req.plan,
//!                 "email": req.owner.email,
//!                 "options": options,
//!             }))?
//!             .send()?;
//!         if reply.status == 409 {
//!             // Made by an earlier attempt of this same creation? Then that account is the answer.
//!             let query = form_encode([("external_id", req.reference.as_str())]);
//!             let mine: Vec<Account> = api(Method::Get, &format!("/accounts?{query}"))?.send()?.error_for_status()?.json()?;
//!             return match mine.into_iter().next() {
//!                 Some(account) => Ok(account.created()),
//!                 // Another account holds the name: an outcome, not worth a retry.
//!                 None => Err(PluginError::refused(format!("the panel refused the account: {}", reply.text()))),
//!             };
//!         }
//!         // 429/5xx unavailable (retried), 401/403 misconfigured, other 4xx internal.
//!         Ok(reply.error_for_status()?.json::<Account>()?.created())
//!     }
//!
//!     // The panel answers 200 for an account already in the state asked for.
//!     fn suspend(account: AccountRef, reason: String) -> Result<(), PluginError> {
//!         api(Method::Post, &format!("/accounts/{}/suspend", account.username))?.json(&json!({ "reason": reason }))?.send()?.error_for_status()?;
//!         Ok(())
//!     }
//!
//!     fn unsuspend(account: AccountRef) -> Result<(), PluginError> {
//!         api(Method::Post, &format!("/accounts/{}/unsuspend", account.username))?.send()?.error_for_status()?;
//!         Ok(())
//!     }
//!
//!     fn terminate(account: AccountRef) -> Result<(), PluginError> {
//!         let reply = api(Method::Delete, &format!("/accounts/{}", account.username))?.send()?;
//!         // Already gone (an earlier attempt removed it): the outcome asked for.
//!         if reply.status != 404 {
//!             reply.error_for_status()?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib"]): keel_sdk::export_provisioner!(Panel);
//!
//! // A native unit test: a panel that makes the account once and refuses a second one.
//! fn reply(status: u16, body: &str) -> Response {
//!     Response { status, headers: vec![], body: body.as_bytes().to_vec() }
//! }
//! let made = r#"{"username":"rudoc1","server":"web3.panel.example","ip":"203.0.113.7"}"#;
//! let mut exists = false;
//! let host = FakeHost::new()
//!     .setting("api_url", "https://panel.example/api")
//!     .setting("api_token", "t-1")
//!     .respond(move |req| {
//!         Ok(match req.method {
//!             Method::Post if exists => reply(409, r#"{"error":"external_id exists"}"#),
//!             Method::Post => {
//!                 exists = true;
//!                 reply(201, made)
//!             }
//!             Method::Get => reply(200, &format!("[{made}]")),
//!             _ => reply(404, ""),
//!         })
//!     })
//!     .install();
//!
//! // The creation request, built as the kernel sends it.
//! let order = AccountRequest {
//!     reference: "SVC-000812-create".into(),
//!     account: AccountRef { service_id: "812".into(), username: "rudoc".into(), domain: Some("rudo.co.zw".into()) },
//!     password: "kJ8-2xVq-9mWp".into(),
//!     plan: "starter_1gb".into(),
//!     owner: fixtures::contact(),
//!     options: vec![("dedicated_ip".into(), "yes".into())],
//! };
//! let first = Panel::create(order.clone()).unwrap();
//! assert_eq!(first.username, "rudoc1");
//! let sent = &host.requests()[0];
//! assert!(sent.headers.contains(&("authorization".into(), "Bearer t-1".into())));
//! assert!(String::from_utf8_lossy(&sent.body).contains(r#""external_id":"SVC-000812-create""#));
//!
//! // The job ran again after a crash: the same account, not an error and not a second one.
//! assert_eq!(Panel::create(order).unwrap(), first);
//! assert_eq!(host.requests()[2].url, "https://panel.example/api/accounts?external_id=SVC-000812-create");
//!
//! // Terminating an account that is already gone is done.
//! assert_eq!(Panel::terminate(AccountRef { service_id: "812".into(), username: "rudoc1".into(), domain: None }), Ok(()));
//!
//! // Credentials the panel refuses: misconfigured, for the admin, not retried.
//! let _locked_out = FakeHost::new()
//!     .setting("api_url", "https://panel.example/api")
//!     .setting("api_token", "t-old")
//!     .respond(|_| Ok(reply(401, r#"{"error":"invalid token"}"#)))
//!     .install();
//! let account = AccountRef { service_id: "812".into(), username: "rudoc1".into(), domain: None };
//! assert!(matches!(Panel::suspend(account, "invoice INV-7 overdue".into()), Err(PluginError::Misconfigured(_))));
//! ```

use std::marker::PhantomData;

use crate::bindings::provisioner::exports::keel::plugin::provisioner::Guest;
pub use crate::bindings::provisioner::exports::keel::plugin::provisioner::{
    AccountCreated, AccountRef, AccountRequest, UsageReport,
};
use crate::{PluginError, PluginInfo};

/// A provisioner for hosting accounts. Create, suspend, unsuspend and terminate are
/// required; the rest answer [`PluginError::Unsupported`] until implemented.
///
/// `create` may be repeated with the same `reference` after a crash: find the account made
/// the first time rather than fail or make a second one.
pub trait Provisioner {
    /// Name, version, description and features.
    fn describe() -> PluginInfo;
    /// Creates the account.
    fn create(req: AccountRequest) -> Result<AccountCreated, PluginError>;
    /// Suspends the account.
    fn suspend(account: AccountRef, reason: String) -> Result<(), PluginError>;
    /// Lifts a suspension.
    fn unsuspend(account: AccountRef) -> Result<(), PluginError>;
    /// Removes the account.
    fn terminate(account: AccountRef) -> Result<(), PluginError>;
    /// Moves the account to another plan (feature `CHANGE_PACKAGE`).
    fn change_package(account: AccountRef, plan: String) -> Result<(), PluginError> {
        let _ = (account, plan);
        Err(PluginError::Unsupported)
    }
    /// Sets a new password (feature `CHANGE_PASSWORD`).
    fn change_password(account: AccountRef, password: String) -> Result<(), PluginError> {
        let _ = (account, password);
        Err(PluginError::Unsupported)
    }
    /// Reads resource use (feature `USAGE`).
    fn usage(account: AccountRef) -> Result<UsageReport, PluginError> {
        let _ = account;
        Err(PluginError::Unsupported)
    }
}

#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Provisioner + 'static> Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        crate::export::enter();
        T::describe()
    }
    fn create(req: AccountRequest) -> Result<AccountCreated, PluginError> {
        crate::export::enter();
        T::create(req)
    }
    fn suspend(account: AccountRef, reason: String) -> Result<(), PluginError> {
        crate::export::enter();
        T::suspend(account, reason)
    }
    fn unsuspend(account: AccountRef) -> Result<(), PluginError> {
        crate::export::enter();
        T::unsuspend(account)
    }
    fn terminate(account: AccountRef) -> Result<(), PluginError> {
        crate::export::enter();
        T::terminate(account)
    }
    fn change_package(account: AccountRef, plan: String) -> Result<(), PluginError> {
        crate::export::enter();
        T::change_package(account, plan)
    }
    fn change_password(account: AccountRef, password: String) -> Result<(), PluginError> {
        crate::export::enter();
        T::change_password(account, password)
    }
    fn usage(account: AccountRef) -> Result<UsageReport, PluginError> {
        crate::export::enter();
        T::usage(account)
    }
}

/// Exports a [`Provisioner`] implementation as the component's `keel:plugin/provisioner`
/// interface. Use once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_provisioner {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __KeelProvisionerExport = $crate::provisioner::Adapter<$plugin>;
        $crate::bindings::provisioner::export!(__KeelProvisionerExport with_types_in $crate::bindings::provisioner);
    };
}
