//! Registrars: implement [`Registrar`] and export it with
//! [`export_registrar!`](crate::export_registrar).

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
