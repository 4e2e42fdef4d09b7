//! Provisioners: implement [`Provisioner`] and export it with
//! [`export_provisioner!`](crate::export_provisioner).

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
