//! Host-neutral handles, one per kind: what the rest of Keel calls.
//!
//! Each kind has a trait (`Gateway`, `Registrar`, …) speaking the current WIT's types,
//! which are plain Rust data (the generated records of the newest supported minor; an
//! older minor's module converts into them), and a handle that implements it by running
//! the plugin. A native Rust implementation of the same trait can stand beside it (the
//! benchmark does exactly that).

use futures::future::BoxFuture;

use crate::compat::{Down, Up};
use crate::failure::{PluginError, PluginFailure};
use crate::host::{Plugin, Versioned};
use crate::manifest::Kind;

/// Turns what a generated `call_*` returns into a `Result`, in the plugin's own minor.
pub(crate) trait IntoResult<T, E> {
    fn into_result(self) -> Result<T, E>;
}

impl<T, E> IntoResult<T, E> for Result<T, E> {
    fn into_result(self) -> Result<T, E> {
        self
    }
}

impl<E> IntoResult<crate::PluginInfo, E> for crate::PluginInfo {
    fn into_result(self) -> Result<crate::PluginInfo, E> {
        Ok(self)
    }
}

type OldInfo = crate::bindings::v0_1::host::keel::plugin::types::PluginInfo;
type OldError = crate::bindings::v0_1::host::keel::plugin::types::PluginError;

impl IntoResult<OldInfo, OldError> for OldInfo {
    fn into_result(self) -> Result<OldInfo, OldError> {
        Ok(self)
    }
}

/// A 0.1 plugin's answer in the current types.
fn up_answer<T: Up<U>, U>(answer: Result<T, OldError>) -> Result<U, PluginError> {
    answer.map(Up::up).map_err(Up::up)
}

macro_rules! kind_handle {
    (
        kind: $kind:expr, pre: $pre:ident, accessor: $accessor:ident,
        trait $Trait:ident, handle $Handle:ident;
        $( $(#[$doc:meta])* fn $method:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty => $call:ident ( $($pass:expr),* ); )*
    ) => {
        /// The operations of this kind, as the kernel calls them.
        pub trait $Trait: Send + Sync {
            $( $(#[$doc])* fn $method(&self, $($arg: $ty),*) -> BoxFuture<'_, Result<$ret, PluginFailure>>; )*
        }

        /// A loaded plugin of this kind.
        #[derive(Clone)]
        pub struct $Handle {
            plugin: Plugin,
        }

        impl $Handle {
            pub(crate) fn new(plugin: &Plugin) -> Option<Self> {
                plugin.inner.pres.$pre.as_ref().map(|_| Self { plugin: plugin.clone() })
            }

            /// The plugin behind this handle.
            pub fn plugin(&self) -> &Plugin {
                &self.plugin
            }
        }

        impl $Trait for $Handle {
            $(
                fn $method(&self, $($arg: $ty),*) -> BoxFuture<'_, Result<$ret, PluginFailure>> {
                    let pre = self.plugin.inner.pres.$pre.clone().expect("a handle exists only for a loaded kind");
                    match pre {
                        Versioned::Current(pre) => Box::pin(self.plugin.run($kind, stringify!($method), move |store| {
                            Box::pin(async move {
                                let instance = pre.instantiate_async(&mut *store).await?;
                                let answer = instance.$accessor().$call(&mut *store $(, $pass)*).await?;
                                Ok(IntoResult::into_result(answer))
                            })
                        })),
                        Versioned::V0_1(pre) => {
                            // What 0.1 cannot carry is answered here, without a call.
                            $(
                                let $arg = match Down::down($arg) {
                                    Ok(v) => v,
                                    Err(failure) => return Box::pin(async move { Err(failure) }),
                                };
                            )*
                            Box::pin(self.plugin.run($kind, stringify!($method), move |store| {
                                Box::pin(async move {
                                    let instance = pre.instantiate_async(&mut *store).await?;
                                    let answer = instance.$accessor().$call(&mut *store $(, $pass)*).await?;
                                    Ok(up_answer(IntoResult::into_result(answer)))
                                })
                            }))
                        }
                    }
                }
            )*
        }
    };
}

pub mod gateway {
    //! Payment gateways.
    use super::*;
    pub use crate::bindings::v0_2::gateway::exports::keel::plugin::gateway::{
        Callback, NextAction, PaymentRef, PaymentRequest, PaymentStarted, PaymentStatus,
        PaymentUpdate, RefundRequest, RefundStarted, RefundStatus,
    };
    use crate::{InboundRequest, PluginInfo};

    kind_handle! {
        kind: Kind::Gateway, pre: gateway, accessor: keel_plugin_gateway,
        trait Gateway, handle GatewayPlugin;
        /// Name, version and features.
        fn describe() -> PluginInfo => call_describe();
        /// Starts a payment.
        fn initiate(req: PaymentRequest) -> PaymentStarted => call_initiate(&req);
        /// Verifies a provider callback and reads the status it reports.
        fn verify_callback(req: InboundRequest) -> Callback => call_verify_callback(&req);
        /// Asks where a payment stands.
        fn poll(payment: PaymentRef) -> PaymentUpdate => call_poll(&payment);
        /// Refunds a paid payment.
        fn refund(req: RefundRequest) -> RefundStarted => call_refund(&req);
    }
}

pub mod registrar {
    //! Domain registrars.
    use super::*;
    use crate::PluginInfo;
    pub use crate::bindings::v0_2::registrar::exports::keel::plugin::registrar::{
        Availability, DnsRecord, DomainContacts, DomainInfo, DomainStatus, RecordType,
        RegisterRequest, TransferRequest,
    };

    kind_handle! {
        kind: Kind::Registrar, pre: registrar, accessor: keel_plugin_registrar,
        trait Registrar, handle RegistrarPlugin;
        /// Name, version and features.
        fn describe() -> PluginInfo => call_describe();
        /// Checks availability.
        fn check(domains: Vec<String>) -> Vec<Availability> => call_check(&domains);
        /// Registers a domain.
        fn register(req: RegisterRequest) -> DomainInfo => call_register(&req);
        /// Renews a domain.
        fn renew(domain: String, years: u8, reference: String) -> DomainInfo => call_renew(&domain, years, &reference);
        /// Starts a transfer in.
        fn transfer(req: TransferRequest) -> DomainInfo => call_transfer(&req);
        /// Reads a domain's state.
        fn info(domain: String) -> DomainInfo => call_info(&domain);
        /// Replaces the nameservers.
        fn set_nameservers(domain: String, nameservers: Vec<String>) -> () => call_set_nameservers(&domain, &nameservers);
        /// Turns the transfer lock on or off.
        fn set_lock(domain: String, locked: bool) -> () => call_set_lock(&domain, locked);
        /// Reads the contacts.
        fn get_contacts(domain: String) -> DomainContacts => call_get_contacts(&domain);
        /// Replaces the contacts.
        fn set_contacts(domain: String, contacts: DomainContacts) -> () => call_set_contacts(&domain, &contacts);
        /// Lists DNS records.
        fn list_records(domain: String) -> Vec<DnsRecord> => call_list_records(&domain);
        /// Replaces DNS records.
        fn set_records(domain: String, records: Vec<DnsRecord>) -> () => call_set_records(&domain, &records);
    }
}

pub mod notifier {
    //! Notifiers.
    use super::*;
    pub use crate::bindings::v0_2::notifier::exports::keel::plugin::notifier::{
        ButtonKind, DeliveryStatus, Inbound, InboundEvent, InboundMessage, Media, Message, Receipt,
        StatusUpdate, Template, TemplateButton, TemplateHeader,
    };
    use crate::{InboundRequest, PluginInfo};

    kind_handle! {
        kind: Kind::Notifier, pre: notifier, accessor: keel_plugin_notifier,
        trait Notifier, handle NotifierPlugin;
        /// Name, version and features.
        fn describe() -> PluginInfo => call_describe();
        /// Sends one message.
        fn send(msg: Message) -> Receipt => call_send(&msg);
        /// Verifies and reads an inbound webhook.
        fn verify_inbound(req: InboundRequest) -> Inbound => call_verify_inbound(&req);
    }
}

pub mod provisioner {
    //! Provisioners.
    use super::*;
    use crate::PluginInfo;
    pub use crate::bindings::v0_2::provisioner::exports::keel::plugin::provisioner::{
        AccountCreated, AccountRef, AccountRequest, UsageReport,
    };

    kind_handle! {
        kind: Kind::Provisioner, pre: provisioner, accessor: keel_plugin_provisioner,
        trait Provisioner, handle ProvisionerPlugin;
        /// Name, version and features.
        fn describe() -> PluginInfo => call_describe();
        /// Creates the account.
        fn create(req: AccountRequest) -> AccountCreated => call_create(&req);
        /// Suspends the account.
        fn suspend(account: AccountRef, reason: String) -> () => call_suspend(&account, &reason);
        /// Lifts a suspension.
        fn unsuspend(account: AccountRef) -> () => call_unsuspend(&account);
        /// Removes the account.
        fn terminate(account: AccountRef) -> () => call_terminate(&account);
        /// Moves the account to another plan.
        fn change_package(account: AccountRef, plan: String) -> () => call_change_package(&account, &plan);
        /// Sets a new password.
        fn change_password(account: AccountRef, password: String) -> () => call_change_password(&account, &password);
        /// Reads resource use.
        fn usage(account: AccountRef) -> UsageReport => call_usage(&account);
    }
}

pub mod assistant {
    //! Assistants.
    use super::*;
    use crate::PluginInfo;
    pub use crate::bindings::v0_2::assistant::exports::keel::plugin::assistant::{
        Conversation, Role, Suggestion, Turn,
    };

    kind_handle! {
        kind: Kind::Assistant, pre: assistant, accessor: keel_plugin_assistant,
        trait Assistant, handle AssistantPlugin;
        /// Name, version and features.
        fn describe() -> PluginInfo => call_describe();
        /// Suggests the next reply.
        fn suggest(conversation: Conversation) -> Suggestion => call_suggest(&conversation);
    }
}

impl Plugin {
    /// The plugin as a gateway, if it is one.
    pub fn gateway(&self) -> Option<gateway::GatewayPlugin> {
        gateway::GatewayPlugin::new(self)
    }
    /// The plugin as a registrar, if it is one.
    pub fn registrar(&self) -> Option<registrar::RegistrarPlugin> {
        registrar::RegistrarPlugin::new(self)
    }
    /// The plugin as a notifier, if it is one.
    pub fn notifier(&self) -> Option<notifier::NotifierPlugin> {
        notifier::NotifierPlugin::new(self)
    }
    /// The plugin as a provisioner, if it is one.
    pub fn provisioner(&self) -> Option<provisioner::ProvisionerPlugin> {
        provisioner::ProvisionerPlugin::new(self)
    }
    /// The plugin as an assistant, if it is one.
    pub fn assistant(&self) -> Option<assistant::AssistantPlugin> {
        assistant::AssistantPlugin::new(self)
    }

    /// Calls `describe` through the first kind the plugin implements.
    pub async fn describe(&self) -> Result<crate::PluginInfo, PluginFailure> {
        use assistant::Assistant as _;
        use gateway::Gateway as _;
        use notifier::Notifier as _;
        use provisioner::Provisioner as _;
        use registrar::Registrar as _;
        if let Some(h) = self.gateway() {
            return h.describe().await;
        }
        if let Some(h) = self.registrar() {
            return h.describe().await;
        }
        if let Some(h) = self.notifier() {
            return h.describe().await;
        }
        if let Some(h) = self.provisioner() {
            return h.describe().await;
        }
        if let Some(h) = self.assistant() {
            return h.describe().await;
        }
        Err(PluginFailure::WrongKind(format!(
            "plugin `{}` implements no kind",
            self.id()
        )))
    }
}
