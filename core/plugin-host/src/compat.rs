//! Serving plugins built against `keel:plugin@0.1.0`.
//!
//! A 0.1 component runs through the [`v0_1`](crate::bindings::v0_1) bindings; the kernel
//! only ever sees the current (0.2) types. Between the two:
//!
//! - [`Down`] turns a current value into its 0.1 form, for the arguments of a call. It
//!   fails with `unsupported` when the value holds what 0.1 cannot carry (a message's
//!   attachment, a template's header or buttons): the plugin could not honour it, so the
//!   host answers for it without calling it, as a 0.2 plugin without the feature would.
//! - [`Up`] turns a 0.1 value into the current form, for results: what 0.2 added is empty
//!   (a status update without `at`, an inbound reply without headers).
//! - The 0.1 host imports (`http`, `log`, `config`, `kv`, `clock`) are served by the
//!   current implementation, converting the values in and out.
//!
//! Records, enums and variants that did not change are converted field by field by the
//! macros below, so a field added to one minor and not the other fails to compile here
//! rather than being dropped silently.

use crate::bindings::{v0_1, v0_2};
use crate::ctx::PluginCtx;
use crate::failure::{PluginError, PluginFailure};

/// The 0.1 interfaces, by WIT interface name.
mod old {
    pub use crate::bindings::v0_1::assistant::exports::keel::plugin::assistant;
    pub use crate::bindings::v0_1::gateway::exports::keel::plugin::gateway;
    pub use crate::bindings::v0_1::host::keel::plugin::{http, log, types};
    pub use crate::bindings::v0_1::notifier::exports::keel::plugin::notifier;
    pub use crate::bindings::v0_1::provisioner::exports::keel::plugin::provisioner;
    pub use crate::bindings::v0_1::registrar::exports::keel::plugin::registrar;
}

/// The current interfaces, by WIT interface name.
mod new {
    pub use crate::bindings::v0_2::assistant::exports::keel::plugin::assistant;
    pub use crate::bindings::v0_2::gateway::exports::keel::plugin::gateway;
    pub use crate::bindings::v0_2::host::keel::plugin::{http, log, types};
    pub use crate::bindings::v0_2::notifier::exports::keel::plugin::notifier;
    pub use crate::bindings::v0_2::provisioner::exports::keel::plugin::provisioner;
    pub use crate::bindings::v0_2::registrar::exports::keel::plugin::registrar;
}

/// A current value in an older minor's form, for a call's arguments.
pub(crate) trait Down<T> {
    /// The older form, or `unsupported` when the value holds what the older minor cannot
    /// carry.
    fn down(self) -> Result<T, PluginFailure>;
}

/// An older minor's value in the current form, for a call's results.
pub(crate) trait Up<T> {
    fn up(self) -> T;
}

/// What a 0.1 plugin cannot be given: the call is answered `unsupported` without it.
fn cannot_carry(what: &str) -> PluginFailure {
    tracing::debug!(
        what,
        "a plugin built against keel:plugin 0.1 cannot be given {what}; answering unsupported"
    );
    PluginFailure::Plugin(PluginError::Unsupported)
}

/// A value of a type both minors define alike: the conversion cannot fail.
fn same<T: Down<U>, U>(value: T) -> U {
    match value.down() {
        Ok(v) => v,
        Err(_) => unreachable!("a type both minors define alike always converts"),
    }
}

macro_rules! identity {
    ($($t:ty),*) => {$(
        impl Up<$t> for $t {
            fn up(self) -> $t {
                self
            }
        }
        impl Down<$t> for $t {
            fn down(self) -> Result<$t, PluginFailure> {
                Ok(self)
            }
        }
    )*};
}

identity!(String, bool, u8, u16, u32, u64, i64, ());

impl<A: Up<B>, B> Up<Vec<B>> for Vec<A> {
    fn up(self) -> Vec<B> {
        self.into_iter().map(Up::up).collect()
    }
}

impl<A: Down<B>, B> Down<Vec<B>> for Vec<A> {
    fn down(self) -> Result<Vec<B>, PluginFailure> {
        self.into_iter().map(Down::down).collect()
    }
}

impl<A: Up<B>, B> Up<Option<B>> for Option<A> {
    fn up(self) -> Option<B> {
        self.map(Up::up)
    }
}

impl<A: Down<B>, B> Down<Option<B>> for Option<A> {
    fn down(self) -> Result<Option<B>, PluginFailure> {
        self.map(Down::down).transpose()
    }
}

impl<A: Up<C>, B: Up<D>, C, D> Up<(C, D)> for (A, B) {
    fn up(self) -> (C, D) {
        (self.0.up(), self.1.up())
    }
}

impl<A: Down<C>, B: Down<D>, C, D> Down<(C, D)> for (A, B) {
    fn down(self) -> Result<(C, D), PluginFailure> {
        Ok((self.0.down()?, self.1.down()?))
    }
}

impl<A: Up<C>, B: Up<D>, C, D> Up<Result<C, D>> for Result<A, B> {
    fn up(self) -> Result<C, D> {
        self.map(Up::up).map_err(Up::up)
    }
}

impl<A: Down<C>, B: Down<D>, C, D> Down<Result<C, D>> for Result<A, B> {
    fn down(self) -> Result<Result<C, D>, PluginFailure> {
        Ok(match self {
            Ok(v) => Ok(v.down()?),
            Err(e) => Err(e.down()?),
        })
    }
}

/// A record both minors define with the same fields.
macro_rules! record {
    ($iface:ident, $name:ident { $($field:ident),* $(,)? }) => {
        impl Up<new::$iface::$name> for old::$iface::$name {
            fn up(self) -> new::$iface::$name {
                new::$iface::$name { $($field: Up::up(self.$field)),* }
            }
        }
        impl Down<old::$iface::$name> for new::$iface::$name {
            fn down(self) -> Result<old::$iface::$name, PluginFailure> {
                Ok(old::$iface::$name { $($field: Down::down(self.$field)?),* })
            }
        }
    };
}

/// An enum or variant both minors define with the same cases.
macro_rules! cases {
    ($iface:ident, $name:ident { $($case:ident $(($v:ident))?),* $(,)? }) => {
        impl Up<new::$iface::$name> for old::$iface::$name {
            fn up(self) -> new::$iface::$name {
                match self {
                    $(old::$iface::$name::$case $(($v))? => new::$iface::$name::$case $((Up::up($v)))?),*
                }
            }
        }
        impl Down<old::$iface::$name> for new::$iface::$name {
            fn down(self) -> Result<old::$iface::$name, PluginFailure> {
                Ok(match self {
                    $(new::$iface::$name::$case $(($v))? => old::$iface::$name::$case $((Down::down($v)?))?),*
                })
            }
        }
    };
}

/// Flags both minors define with the same names.
macro_rules! flags {
    ($iface:ident, $name:ident { $($flag:ident),* $(,)? }) => {
        impl Up<new::$iface::$name> for old::$iface::$name {
            fn up(self) -> new::$iface::$name {
                let mut out = new::$iface::$name::empty();
                $(if self.contains(old::$iface::$name::$flag) {
                    out |= new::$iface::$name::$flag;
                })*
                out
            }
        }
        impl Down<old::$iface::$name> for new::$iface::$name {
            fn down(self) -> Result<old::$iface::$name, PluginFailure> {
                let mut out = old::$iface::$name::empty();
                $(if self.contains(new::$iface::$name::$flag) {
                    out |= old::$iface::$name::$flag;
                })*
                Ok(out)
            }
        }
    };
}

/// The types both minors define alike, one line each (kept unformatted to read as a table).
#[rustfmt::skip]
mod alike {
    use super::*;

    record!(types, Money { minor, currency });
    record!(types, Address { line1, line2, city, region, postcode, country });
    record!(types, Contact { first_name, last_name, company, email, phone, address });
    record!(types, InboundRequest { method, path, query, headers, body });
    record!(types, RetryHint { reason, retry_after_seconds });
    cases!(types, PluginError { InvalidInput(v), Refused(v), Unavailable(v), Misconfigured(v), Unsupported, Internal(v) });
    flags!(types, Features { REFUNDS, POLLING, TRANSFERS, DNS_RECORDS, DOMAIN_LOCK, DOMAIN_CONTACTS, INBOUND, USAGE, CHANGE_PACKAGE, CHANGE_PASSWORD });
    record!(types, PluginInfo { name, version, description, features });
    cases!(http, Method { Get, Head, Post, Put, Patch, Delete });
    record!(http, Request { method, url, headers, body, timeout_ms });
    record!(http, Response { status, headers, body });
    cases!(http, Error { Denied(v), InvalidRequest(v), Timeout, Connection(v), TooLarge(v), TooManyRequests(v) });
    cases!(log, Level { Trace, Debug, Info, Warn, Error });
    record!(gateway, PaymentRequest { reference, invoice_id, amount, description, payer, return_url, callback_url, method });
    cases!(gateway, PaymentStatus { Pending, Paid, Failed, Cancelled, Refunded, Disputed });
    cases!(gateway, NextAction { Redirect(v), Instructions(v), None });
    record!(gateway, PaymentStarted { provider_reference, status, action, state });
    record!(gateway, PaymentRef { reference, provider_reference, state });
    record!(gateway, PaymentUpdate { reference, provider_reference, status, amount, provider_status });
    record!(gateway, Callback { update, reply });
    record!(gateway, RefundRequest { reference, payment, amount, reason });
    cases!(gateway, RefundStatus { Pending, Completed });
    record!(gateway, RefundStarted { provider_reference, status });
    record!(registrar, Availability { domain, available, premium_price, reason });
    record!(registrar, DomainContacts { registrant, admin, tech, billing });
    record!(registrar, RegisterRequest { reference, domain, years, nameservers, contacts, privacy });
    record!(registrar, TransferRequest { reference, domain, auth_code, years, contacts });
    cases!(registrar, DomainStatus { Active, Pending, PendingTransfer, Expired, TransferredAway, Cancelled });
    record!(registrar, DomainInfo { domain, status, expires_on, nameservers, locked, privacy });
    cases!(registrar, RecordType { A, Aaaa, Cname, Mx, Txt, Ns, Srv, Caa });
    record!(registrar, DnsRecord { name, kind, value, ttl, priority });
    cases!(notifier, DeliveryStatus { Accepted, Sent, Delivered, Read, Failed });
    record!(notifier, Receipt { provider_id, status });
    record!(notifier, InboundMessage { provider_id, sender, body, received_at });
    cases!(notifier, InboundEvent { Status(v), Message(v) });
    record!(notifier, Inbound { reply, events });
    record!(provisioner, AccountRef { service_id, username, domain });
    record!(provisioner, AccountRequest { reference, account, password, plan, owner, options });
    record!(provisioner, AccountCreated { username, details });
    record!(provisioner, UsageReport { disk_used, disk_limit, bandwidth_used, bandwidth_limit, other });
    cases!(assistant, Role { Customer, Agent, Assistant, System });
    record!(assistant, Turn { role, author, text, at });
    record!(assistant, Conversation { id, subject, language, turns, context });
    record!(assistant, Suggestion { text, confidence, handover });
}

/// 0.2 added `headers`; a 0.1 reply has none.
impl Up<new::types::InboundReply> for old::types::InboundReply {
    fn up(self) -> new::types::InboundReply {
        new::types::InboundReply {
            status: self.status,
            content_type: self.content_type,
            headers: Vec::new(),
            body: self.body,
        }
    }
}

impl Down<old::types::InboundReply> for new::types::InboundReply {
    fn down(self) -> Result<old::types::InboundReply, PluginFailure> {
        if !self.headers.is_empty() {
            return Err(cannot_carry("reply headers"));
        }
        Ok(old::types::InboundReply {
            status: self.status,
            content_type: self.content_type,
            body: self.body,
        })
    }
}

// What 0.2 changed, by hand.

/// 0.2 added the header and the buttons: a template with either cannot go to 0.1.
impl Down<old::notifier::Template> for new::notifier::Template {
    fn down(self) -> Result<old::notifier::Template, PluginFailure> {
        if self.header.is_some() {
            return Err(cannot_carry("a template header"));
        }
        if !self.buttons.is_empty() {
            return Err(cannot_carry("template buttons"));
        }
        Ok(old::notifier::Template {
            name: self.name,
            language: self.language,
            parameters: self.parameters,
        })
    }
}

impl Up<new::notifier::Template> for old::notifier::Template {
    fn up(self) -> new::notifier::Template {
        new::notifier::Template {
            name: self.name,
            language: self.language,
            parameters: self.parameters,
            header: None,
            buttons: Vec::new(),
        }
    }
}

/// 0.2 added the attachment: a message with one cannot go to 0.1.
impl Down<old::notifier::Message> for new::notifier::Message {
    fn down(self) -> Result<old::notifier::Message, PluginFailure> {
        if self.attachment.is_some() {
            return Err(cannot_carry("an attachment"));
        }
        Ok(old::notifier::Message {
            reference: self.reference,
            to: self.to,
            subject: self.subject,
            body: self.body,
            template: self.template.down()?,
        })
    }
}

impl Up<new::notifier::Message> for old::notifier::Message {
    fn up(self) -> new::notifier::Message {
        new::notifier::Message {
            reference: self.reference,
            to: self.to,
            subject: self.subject,
            body: self.body,
            template: self.template.up(),
            attachment: None,
        }
    }
}

/// 0.2 added the provider's time; a 0.1 receipt has none (the kernel orders it by status).
impl Up<new::notifier::StatusUpdate> for old::notifier::StatusUpdate {
    fn up(self) -> new::notifier::StatusUpdate {
        new::notifier::StatusUpdate {
            provider_id: self.provider_id,
            status: self.status.up(),
            detail: self.detail,
            at: None,
        }
    }
}

impl Down<old::notifier::StatusUpdate> for new::notifier::StatusUpdate {
    fn down(self) -> Result<old::notifier::StatusUpdate, PluginFailure> {
        Ok(old::notifier::StatusUpdate {
            provider_id: self.provider_id,
            status: self.status.down()?,
            detail: self.detail,
        })
    }
}

// The 0.1 host imports, served by the current implementation.

impl v0_1::host::keel::plugin::types::Host for PluginCtx {}

impl v0_1::host::keel::plugin::http::Host for PluginCtx {
    async fn send(
        &mut self,
        req: old::http::Request,
    ) -> Result<old::http::Response, old::http::Error> {
        let answer = <Self as v0_2::host::keel::plugin::http::Host>::send(self, req.up()).await;
        answer.map(same).map_err(same)
    }
}

impl v0_1::host::keel::plugin::log::Host for PluginCtx {
    async fn log(&mut self, level: old::log::Level, message: String) {
        <Self as v0_2::host::keel::plugin::log::Host>::log(self, level.up(), message).await
    }
}

impl v0_1::host::keel::plugin::config::Host for PluginCtx {
    async fn get(&mut self, key: String) -> Option<String> {
        <Self as v0_2::host::keel::plugin::config::Host>::get(self, key).await
    }
}

impl v0_1::host::keel::plugin::kv::Host for PluginCtx {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        <Self as v0_2::host::keel::plugin::kv::Host>::get(self, key).await
    }
    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        <Self as v0_2::host::keel::plugin::kv::Host>::set(self, key, value).await
    }
    async fn delete(&mut self, key: String) -> Result<bool, String> {
        <Self as v0_2::host::keel::plugin::kv::Host>::delete(self, key).await
    }
}

impl v0_1::host::keel::plugin::clock::Host for PluginCtx {
    async fn now(&mut self) -> String {
        <Self as v0_2::host::keel::plugin::clock::Host>::now(self).await
    }
    async fn now_millis(&mut self) -> i64 {
        <Self as v0_2::host::keel::plugin::clock::Host>::now_millis(self).await
    }
}
