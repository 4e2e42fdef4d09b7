//! Registrars: implement [`Registrar`] and export it with
//! [`export_registrar!`](crate::export_registrar).
//!
//! A product can name its registrar (the product's `registrar`, a plugin id), but no kernel
//! flow calls a registrar yet: ordering, renewing and syncing domains come with a later
//! issue. Until then `keel plugin call <id> check --input '["example.co.zw"]'` runs any
//! operation by hand. What follows is the contract of `wit/registrar.wit` those flows will
//! hold the plugin to:
//!
//! - `check` answers for the names asked (at most 50 at once), each [`Availability`] naming
//!   its domain, with the registry's price when the name is premium and the registrar's
//!   reason when it is not available. It is a question: an available name is not reserved,
//!   and `register` may still be refused.
//! - `register` and `renew` spend money at the registrar. Each carries the kernel's
//!   `reference` for the order, stable across retries: a call repeated with it (after a
//!   crash, after `unavailable`) must answer the registration or renewal made the first
//!   time, never buy a second. Pass it as the provider's idempotency key; where the provider
//!   has none, look before buying. `register` answers [`DomainStatus::Pending`] until the
//!   registry confirms; `privacy` is a wish, and [`DomainInfo`] says whether it is on.
//! - `info` is the daily sync's question: status, expiry, nameservers, lock. A domain this
//!   account does not hold is an answer, [`DomainStatus::Cancelled`] (or
//!   [`DomainStatus::TransferredAway`] when the registrar says so), not an error.
//! - `set-nameservers` replaces the whole list, as `set-lock`, `set-contacts` and
//!   `set-records` replace what they set: repeating one with the same input changes nothing,
//!   so keep them that way (never "add a record").
//! - The rest are optional, called only when `describe`'s [`Features`](crate::Features)
//!   claim them: `transfer` (`TRANSFERS`), `set-lock` (`DOMAIN_LOCK`), `get-contacts` and
//!   `set-contacts` (`DOMAIN_CONTACTS`), `list-records` and `set-records` (`DNS_RECORDS`).
//!   One that answers `unsupported` all the same has its feature turned off, not counted as
//!   a failure. `transfer` carries a `reference` as `register` does and usually answers
//!   [`DomainStatus::PendingTransfer`]; `info` tells when it is done.
//!
//! Domain names arrive in ASCII (punycode for IDNs), lower case, without a trailing dot;
//! [`DomainName::parse`](crate::ids::DomainName::parse) checks one and answers
//! `invalid-input` saying what is wrong. What each error tells the kernel
//! (`wit/types.wit`):
//!
//! | Error | For a registrar | Retried? |
//! |---|---|---|
//! | `invalid-input` | a name the registry's rules refuse, `years` outside 1 to 10, a contact without the address the registry needs | no: shown to whoever asked |
//! | `refused` | the name is taken, the TLD is not offered, a wrong transfer code | no: recorded as the outcome |
//! | `unavailable` | a timeout, 429, 5xx ([`error_for_status`](crate::http::Response::error_for_status) maps them) | yes, with the same `reference`, after `retry-after-seconds` when given |
//! | `misconfigured` | credentials refused (401/403), an outbound host not granted | not until the admin changes the settings |
//! | `internal` | a reply the plugin does not understand (a status word it does not know) | no: left for a person |
//!
//! ## A worked example: a JSON API with an idempotency key, and its unit test
//!
//! ```
//! use keel_sdk::http::{Method, Request, Response};
//! use keel_sdk::ids::DomainName;
//! use keel_sdk::registrar::*;
//! use keel_sdk::testing::FakeHost;
//! use keel_sdk::{config, fixtures, Address, Contact, Features, Money, PluginError, PluginInfo};
//! use serde_json::{json, Value};
//!
//! struct Acme;
//!
//! /// Every call: the API's base URL and the bearer key, from the settings.
//! fn api(method: Method, path: &str) -> Result<Request, PluginError> {
//!     let base = config::require("api_url")?;
//!     let key = config::secret("api_key")?;
//!     Ok(Request::new(method, format!("{base}{path}")).bearer(key.expose()))
//! }
//!
//! /// A domain as the provider shows it.
//! #[derive(serde::Deserialize)]
//! struct Domain { name: String, status: String, expires: Option<String>, nameservers: Vec<String>, locked: bool, privacy: bool }
//!
//! impl Domain {
//!     fn info(self) -> Result<DomainInfo, PluginError> {
//!         let status = match self.status.as_str() {
//!             "active" => DomainStatus::Active,
//!             "pending" => DomainStatus::Pending,
//!             "transfer_pending" => DomainStatus::PendingTransfer,
//!             "expired" | "redemption" => DomainStatus::Expired,
//!             "transferred_out" => DomainStatus::TransferredAway,
//!             "deleted" => DomainStatus::Cancelled,
//!             // A word this plugin does not know is not guessed at: a person looks.
//!             other => return Err(PluginError::internal(format!("unknown domain status {other:?}"))),
//!         };
//!         Ok(DomainInfo { domain: self.name, status, expires_on: self.expires, nameservers: self.nameservers, locked: self.locked, privacy: self.privacy })
//!     }
//! }
//!
//! /// A contact as the provider takes it; registries want a postal address.
//! fn person(c: &Contact) -> Result<Value, PluginError> {
//!     let a = c.address.as_ref().ok_or_else(|| PluginError::invalid_input(format!("{} {} has no postal address", c.first_name, c.last_name)))?;
//!     Ok(json!({ "name": format!("{} {}", c.first_name, c.last_name), "org": c.company, "email": c.email, "phone": c.phone,
//!                "street": a.line1, "city": a.city, "postcode": a.postcode, "country": a.country }))
//! }
//!
//! impl Registrar for Acme {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("Acme Domains", "0.1.0", "Domains through Acme's reseller API", Features::DOMAIN_LOCK)
//!     }
//!
//!     fn check(domains: Vec<String>) -> Result<Vec<Availability>, PluginError> {
//!         #[derive(serde::Deserialize)]
//!         struct Price { amount: String, currency: String }
//!         #[derive(serde::Deserialize)]
//!         struct Checked { name: String, available: bool, premium: Option<Price>, reason: Option<String> }
//!         let checked: Vec<Checked> = api(Method::Post, "/domains/check")?
//!             .json(&json!({ "names": domains }))?
//!             .send()?
//!             .error_for_status()?
//!             .json()?;
//!         checked
//!             .into_iter()
//!             .map(|c| -> Result<Availability, PluginError> {
//!                 Ok(Availability {
//!                     // "120.00" USD is 12000 minor units, exactly, at the currency's exponent.
//!                     premium_price: c.premium.map(|p| Money::from_major(&p.amount, &p.currency)).transpose()?,
//!                     domain: c.name,
//!                     available: c.available,
//!                     reason: c.reason,
//!                 })
//!             })
//!             .collect()
//!     }
//!
//!     fn register(req: RegisterRequest) -> Result<DomainInfo, PluginError> {
//!         let domain = DomainName::parse(&req.domain)?;
//!         let c = &req.contacts;
//!         let reply = api(Method::Post, "/domains")?
//!             // Stable across retries: Acme answers a repeat with the first registration.
//!             .header("idempotency-key", req.reference.as_str())
//!             .json(&json!({
//!                 "name": domain.as_str(),
//!                 "years": req.years,
//!                 "nameservers": req.nameservers,
//!                 "privacy": req.privacy,
//!                 "contacts": { "registrant": person(&c.registrant)?, "admin": person(&c.admin)?,
//!                               "tech": person(&c.tech)?, "billing": person(&c.billing)? },
//!             }))?
//!             .send()?;
//!         // The provider's "no" is an outcome, not a fault. The rest is error_for_status's:
//!         // 429/5xx unavailable (retried), 401/403 misconfigured, other 4xx internal.
//!         if reply.status == 409 {
//!             return Err(PluginError::refused(format!("{domain} cannot be registered: {}", reply.text())));
//!         }
//!         reply.error_for_status()?.json::<Domain>()?.info()
//!     }
//!
//!     fn renew(domain: String, years: u8, reference: String) -> Result<DomainInfo, PluginError> {
//!         api(Method::Post, &format!("/domains/{domain}/renew"))?
//!             .header("idempotency-key", reference)
//!             .json(&json!({ "years": years }))?
//!             .send()?
//!             .error_for_status()?
//!             .json::<Domain>()?
//!             .info()
//!     }
//!
//!     fn info(domain: String) -> Result<DomainInfo, PluginError> {
//!         let reply = api(Method::Get, &format!("/domains/{domain}"))?.send()?;
//!         if reply.status == 404 {
//!             // Not (or no longer) in this account: an answer for the sync, not an error.
//!             return Ok(DomainInfo { domain, status: DomainStatus::Cancelled, expires_on: None, nameservers: vec![], locked: false, privacy: false });
//!         }
//!         reply.error_for_status()?.json::<Domain>()?.info()
//!     }
//!
//!     fn set_nameservers(domain: String, nameservers: Vec<String>) -> Result<(), PluginError> {
//!         api(Method::Put, &format!("/domains/{domain}/nameservers"))?.json(&json!({ "nameservers": nameservers }))?.send()?.error_for_status()?;
//!         Ok(())
//!     }
//!
//!     // Claimed by `Features::DOMAIN_LOCK` in `describe`.
//!     fn set_lock(domain: String, locked: bool) -> Result<(), PluginError> {
//!         api(Method::Put, &format!("/domains/{domain}/lock"))?.json(&json!({ "locked": locked }))?.send()?.error_for_status()?;
//!         Ok(())
//!     }
//! }
//!
//! // In the plugin crate (crate-type = ["cdylib"]): keel_sdk::export_registrar!(Acme);
//!
//! // A native unit test: the settings, then the provider's answers by URL.
//! fn reply(status: u16, body: &str) -> Response {
//!     Response { status, headers: vec![], body: body.as_bytes().to_vec() }
//! }
//! let host = FakeHost::new()
//!     .setting("api_url", "https://api.acme.example/v2")
//!     .setting("api_key", "k-1")
//!     .respond(|req| Ok(match req.url.trim_start_matches("https://api.acme.example/v2") {
//!         "/domains/check" => reply(200, r#"[{"name":"rudo.co.zw","available":true},
//!             {"name":"rudo.shop","available":true,"premium":{"amount":"120.00","currency":"USD"}},
//!             {"name":"rudo.com","available":false,"reason":"registered"}]"#),
//!         "/domains" => reply(201, r#"{"name":"rudo.co.zw","status":"pending","expires":null,
//!             "nameservers":["ns1.acme.example","ns2.acme.example"],"locked":true,"privacy":true}"#),
//!         _ => reply(404, r#"{"error":"not_found"}"#),
//!     }))
//!     .install();
//!
//! let names = vec!["rudo.co.zw".to_owned(), "rudo.shop".into(), "rudo.com".into()];
//! let answers = Acme::check(names).unwrap();
//! assert_eq!(answers[1].premium_price, Some(Money::new(12000, "USD")));
//! assert_eq!((answers[2].available, answers[2].reason.as_deref()), (false, Some("registered")));
//!
//! // The registration request, built as the kernel sends it.
//! let rudo = Contact {
//!     address: Some(Address { line1: "12 Samora Machel Ave".into(), line2: None, city: "Harare".into(), region: None, postcode: None, country: "ZW".into() }),
//!     ..fixtures::contact()
//! };
//! let order = RegisterRequest {
//!     reference: "ORD-2026-000045-DOM1".into(),
//!     domain: "rudo.co.zw".into(),
//!     years: 2,
//!     nameservers: vec![],
//!     contacts: DomainContacts { registrant: rudo.clone(), admin: rudo.clone(), tech: rudo.clone(), billing: rudo },
//!     privacy: true,
//! };
//! let info = Acme::register(order.clone()).unwrap();
//! assert_eq!((info.status, info.privacy), (DomainStatus::Pending, true));
//! let sent = &host.requests()[1];
//! assert_eq!(sent.method, Method::Post);
//! assert!(sent.headers.contains(&("idempotency-key".into(), "ORD-2026-000045-DOM1".into())));
//! assert!(sent.headers.contains(&("authorization".into(), "Bearer k-1".into())));
//! assert!(String::from_utf8_lossy(&sent.body).contains(r#""years":2"#));
//!
//! // A domain the account does not hold is `cancelled`, not an error.
//! assert_eq!(Acme::info("gone.co.zw".into()).unwrap().status, DomainStatus::Cancelled);
//!
//! // Failures: a taken name is refused (final); a busy provider is a retry, and the same
//! // reference makes the retried renewal safe.
//! let _failing = FakeHost::new()
//!     .setting("api_url", "https://api.acme.example/v2")
//!     .setting("api_key", "k-1")
//!     .respond(|req| {
//!         Ok(if req.url.ends_with("/renew") {
//!             Response { status: 503, headers: vec![("retry-after".into(), "120".into())], body: vec![] }
//!         } else {
//!             reply(409, r#"{"error":"domain_taken"}"#)
//!         })
//!     })
//!     .install();
//! assert!(matches!(Acme::register(order), Err(PluginError::Refused(_))));
//! let Err(PluginError::Unavailable(hint)) = Acme::renew("rudo.co.zw".into(), 1, "ORD-2026-000046-REN1".into()) else {
//!     panic!("unavailable")
//! };
//! assert_eq!(hint.retry_after_seconds, Some(120));
//! ```

use std::marker::PhantomData;

use crate::bindings::registrar::exports::keel::plugin::registrar::Guest;
pub use crate::bindings::registrar::exports::keel::plugin::registrar::{
    Availability, DnsRecord, DomainContacts, DomainInfo, DomainStatus, RecordType, RegisterRequest,
    TransferRequest,
};
use crate::{PluginError, PluginInfo};

fn unsupported<T>() -> Result<T, PluginError> {
    Err(PluginError::Unsupported)
}

/// A domain registrar. Check, register, renew, info and nameservers are required; the
/// rest answer [`PluginError::Unsupported`] until implemented (and advertised).
pub trait Registrar {
    /// Name, version, description and features.
    fn describe() -> PluginInfo;
    /// Checks availability of up to 50 names.
    fn check(domains: Vec<String>) -> Result<Vec<Availability>, PluginError>;
    /// Registers a domain.
    fn register(req: RegisterRequest) -> Result<DomainInfo, PluginError>;
    /// Renews a domain.
    fn renew(domain: String, years: u8, reference: String) -> Result<DomainInfo, PluginError>;
    /// Reads a domain's state (the daily sync).
    fn info(domain: String) -> Result<DomainInfo, PluginError>;
    /// Replaces the nameservers.
    fn set_nameservers(domain: String, nameservers: Vec<String>) -> Result<(), PluginError>;
    /// Starts a transfer in (feature `TRANSFERS`).
    fn transfer(req: TransferRequest) -> Result<DomainInfo, PluginError> {
        let _ = req;
        unsupported()
    }
    /// Turns the transfer lock on or off (feature `DOMAIN_LOCK`).
    fn set_lock(domain: String, locked: bool) -> Result<(), PluginError> {
        let _ = (domain, locked);
        unsupported()
    }
    /// Reads the contacts (feature `DOMAIN_CONTACTS`).
    fn get_contacts(domain: String) -> Result<DomainContacts, PluginError> {
        let _ = domain;
        unsupported()
    }
    /// Replaces the contacts (feature `DOMAIN_CONTACTS`).
    fn set_contacts(domain: String, contacts: DomainContacts) -> Result<(), PluginError> {
        let _ = (domain, contacts);
        unsupported()
    }
    /// Lists DNS records (feature `DNS_RECORDS`).
    fn list_records(domain: String) -> Result<Vec<DnsRecord>, PluginError> {
        let _ = domain;
        unsupported()
    }
    /// Replaces DNS records (feature `DNS_RECORDS`).
    fn set_records(domain: String, records: Vec<DnsRecord>) -> Result<(), PluginError> {
        let _ = (domain, records);
        unsupported()
    }
}

#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: Registrar + 'static> Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        crate::export::enter();
        T::describe()
    }
    fn check(domains: Vec<String>) -> Result<Vec<Availability>, PluginError> {
        crate::export::enter();
        T::check(domains)
    }
    fn register(req: RegisterRequest) -> Result<DomainInfo, PluginError> {
        crate::export::enter();
        T::register(req)
    }
    fn renew(domain: String, years: u8, reference: String) -> Result<DomainInfo, PluginError> {
        crate::export::enter();
        T::renew(domain, years, reference)
    }
    fn transfer(req: TransferRequest) -> Result<DomainInfo, PluginError> {
        crate::export::enter();
        T::transfer(req)
    }
    fn info(domain: String) -> Result<DomainInfo, PluginError> {
        crate::export::enter();
        T::info(domain)
    }
    fn set_nameservers(domain: String, nameservers: Vec<String>) -> Result<(), PluginError> {
        crate::export::enter();
        T::set_nameservers(domain, nameservers)
    }
    fn set_lock(domain: String, locked: bool) -> Result<(), PluginError> {
        crate::export::enter();
        T::set_lock(domain, locked)
    }
    fn get_contacts(domain: String) -> Result<DomainContacts, PluginError> {
        crate::export::enter();
        T::get_contacts(domain)
    }
    fn set_contacts(domain: String, contacts: DomainContacts) -> Result<(), PluginError> {
        crate::export::enter();
        T::set_contacts(domain, contacts)
    }
    fn list_records(domain: String) -> Result<Vec<DnsRecord>, PluginError> {
        crate::export::enter();
        T::list_records(domain)
    }
    fn set_records(domain: String, records: Vec<DnsRecord>) -> Result<(), PluginError> {
        crate::export::enter();
        T::set_records(domain, records)
    }
}

/// Exports a [`Registrar`] implementation as the component's `keel:plugin/registrar`
/// interface. Use once, at the crate root of a `cdylib` plugin crate.
#[macro_export]
macro_rules! export_registrar {
    ($plugin:ty) => {
        #[doc(hidden)]
        type __KeelRegistrarExport = $crate::registrar::Adapter<$plugin>;
        $crate::bindings::registrar::export!(__KeelRegistrarExport with_types_in $crate::bindings::registrar);
    };
}
