//! Who may do what: staff roles map to permissions; API keys carry a scope (admin,
//! reseller, client) that fixes both their tenancy [`Scope`] and their permissions.

use crate::ids::{ApiKeyId, ClientId, ResellerId, StaffId};
use crate::tenancy::Scope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an action requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    ClientsRead,
    ClientsWrite,
    LedgerRead,
    LedgerWrite,
    StaffManage,
    KeysManage,
    AuditRead,
    /// Read products, groups and prices (every scope: the order form needs them).
    CatalogRead,
    /// Create and change products, prices, tax rules, promotions, client groups.
    CatalogWrite,
    /// Read services, invoices, payments in the actor's scope.
    BillingRead,
    /// Staff billing work: record payments, cancel invoices, credit notes, the billing run,
    /// service status changes, wallet credit and debit.
    BillingWrite,
    /// Self-service in the actor's own scope: place orders, request cancellations, upgrade,
    /// pay an invoice from the wallet.
    Order,
    /// Automation: see, retry and cancel jobs; see schedules (admins only).
    Automation,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ClientsRead => "clients:read",
            Permission::ClientsWrite => "clients:write",
            Permission::LedgerRead => "ledger:read",
            Permission::LedgerWrite => "ledger:write",
            Permission::StaffManage => "staff:manage",
            Permission::KeysManage => "keys:manage",
            Permission::AuditRead => "audit:read",
            Permission::CatalogRead => "catalog:read",
            Permission::CatalogWrite => "catalog:write",
            Permission::BillingRead => "billing:read",
            Permission::BillingWrite => "billing:write",
            Permission::Order => "orders:place",
            Permission::Automation => "automation:manage",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything.
    Admin,
    /// Clients and money.
    Billing,
    /// Clients, read-mostly.
    Support,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Billing => "billing",
            StaffRole::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [StaffRole::Admin, StaffRole::Billing, StaffRole::Support]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            StaffRole::Admin => true,
            StaffRole::Billing => {
                matches!(
                    p,
                    ClientsRead
                        | ClientsWrite
                        | LedgerRead
                        | LedgerWrite
                        | CatalogRead
                        | CatalogWrite
                        | BillingRead
                        | BillingWrite
                        | Order
                )
            }
            StaffRole::Support => {
                matches!(
                    p,
                    ClientsRead | ClientsWrite | CatalogRead | BillingRead | Order
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    Admin,
    Reseller,
    Client,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Admin => "admin",
            KeyScope::Reseller => "reseller",
            KeyScope::Client => "client",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [KeyScope::Admin, KeyScope::Reseller, KeyScope::Client]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A staff user of the host (the password hash never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Staff {
    pub id: StaffId,
    pub email: String,
    pub name: String,
    pub role: StaffRole,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An API key as listed: never the key itself, only its visible prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, enough to recognise it (`keel_ad_3f9a…`).
    pub prefix: String,
    pub scope: KeyScope,
    /// The staff user the key acts for; absent for installation keys made at the command line.
    pub staff_id: Option<StaffId>,
    pub reseller_id: Option<ResellerId>,
    pub client_id: Option<ClientId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ApiKey {
    /// The tenancy scope the key works in.
    pub fn tenancy(&self) -> Option<Scope> {
        match self.scope {
            KeyScope::Admin => Some(Scope::Host),
            KeyScope::Reseller => self.reseller_id.map(Scope::Reseller),
            KeyScope::Client => self.client_id.map(Scope::Client),
        }
    }
}

/// Who is acting, as established by authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A request authenticated by an API key.
    Key {
        key: ApiKeyId,
        label: String,
        scope: Scope,
        role: Option<StaffRole>,
        staff: Option<StaffId>,
    },
    /// A staff user at the command line or in the web UI.
    Staff {
        staff: StaffId,
        label: String,
        role: StaffRole,
    },
    /// Keel itself (jobs, the CLI acting as the installation owner).
    System { label: String },
}

impl Actor {
    pub fn system(label: impl Into<String>) -> Actor {
        Actor::System {
            label: label.into(),
        }
    }

    /// The tenancy this actor works in.
    pub fn scope(&self) -> Scope {
        match self {
            Actor::Key { scope, .. } => *scope,
            Actor::Staff { .. } | Actor::System { .. } => Scope::Host,
        }
    }

    /// Whether the actor holds a permission. Reseller and client keys may read and write
    /// clients, read the catalog and billing, and order, all in their own scope.
    pub fn can(&self, p: Permission) -> bool {
        match self {
            Actor::System { .. } => true,
            Actor::Staff { role, .. } => role.allows(p),
            // A host key acts for a staff user (with that user's role) or, made at the
            // command line with no user, for the installation owner. A key naming a user
            // whose role is missing or unreadable holds nothing: fail closed.
            Actor::Key {
                scope: Scope::Host,
                role,
                staff,
                ..
            } => match (staff, role) {
                (_, Some(r)) => r.allows(p),
                (None, None) => true,
                (Some(_), None) => false,
            },
            Actor::Key {
                scope: Scope::Reseller(_) | Scope::Client(_),
                ..
            } => matches!(
                p,
                Permission::ClientsRead
                    | Permission::ClientsWrite
                    | Permission::CatalogRead
                    | Permission::BillingRead
                    | Permission::Order
            ),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Actor::Key { label, .. } | Actor::Staff { label, .. } | Actor::System { label } => {
                label
            }
        }
    }

    pub fn reseller(&self) -> Option<ResellerId> {
        match self.scope() {
            Scope::Reseller(r) => Some(r),
            _ => None,
        }
    }

    pub fn client(&self) -> Option<ClientId> {
        match self.scope() {
            Scope::Client(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_permissions() {
        use Permission::*;
        // (role, permission, allowed)
        let table = [
            (StaffRole::Admin, StaffManage, true),
            (StaffRole::Billing, LedgerWrite, true),
            (StaffRole::Billing, StaffManage, false),
            (StaffRole::Billing, AuditRead, false),
            (StaffRole::Support, ClientsWrite, true),
            (StaffRole::Support, LedgerRead, false),
            (StaffRole::Support, KeysManage, false),
        ];
        for (role, p, expected) in table {
            assert_eq!(role.allows(p), expected, "{role:?} {p:?}");
        }
    }

    #[test]
    fn a_staff_key_without_a_readable_role_holds_nothing() {
        let key = |staff: Option<StaffId>, role: Option<StaffRole>| Actor::Key {
            key: ApiKeyId(1),
            label: "k".into(),
            scope: Scope::Host,
            role,
            staff,
        };
        // (staff, role, may manage staff, may read clients)
        let table = [
            (None, None, true, true),
            (Some(StaffId(1)), Some(StaffRole::Admin), true, true),
            (Some(StaffId(1)), Some(StaffRole::Support), false, true),
            (Some(StaffId(1)), None, false, false),
        ];
        for (staff, role, manage, read) in table {
            let k = key(staff, role);
            assert_eq!(k.can(Permission::StaffManage), manage, "{staff:?} {role:?}");
            assert_eq!(k.can(Permission::ClientsRead), read, "{staff:?} {role:?}");
        }
    }

    #[test]
    fn reseller_keys_reach_clients_only() {
        let key = Actor::Key {
            key: ApiKeyId(1),
            label: "r".into(),
            scope: Scope::Reseller(ResellerId(2)),
            role: None,
            staff: None,
        };
        assert!(key.can(Permission::ClientsWrite));
        assert!(!key.can(Permission::LedgerRead));
        assert!(!key.can(Permission::AuditRead));
        assert_eq!(key.reseller(), Some(ResellerId(2)));
    }
}
