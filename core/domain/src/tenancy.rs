//! Tenancy: every client has an owner, the host itself or one reseller, and every caller
//! works inside a [`Scope`]. Repository functions take the scope as a required argument, so
//! the owner filter lives in the query, not in a check each handler must remember.

use crate::ids::{ClientId, ResellerId};
use serde::{Deserialize, Serialize};

/// Who owns a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Owner {
    /// The hosting company running this Keel.
    Host,
    /// A reseller of the host.
    Reseller(ResellerId),
}

impl Owner {
    /// The value stored in `clients.reseller_id`.
    pub fn reseller_id(self) -> Option<ResellerId> {
        match self {
            Owner::Host => None,
            Owner::Reseller(id) => Some(id),
        }
    }
}

/// What a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Staff of the host: every client, whoever owns it.
    Host,
    /// A reseller: only the clients it owns.
    Reseller(ResellerId),
    /// A client: only itself.
    Client(ClientId),
}

impl Scope {
    /// The owner that new clients created in this scope get, if this scope may create them.
    pub fn owner_for_new_client(self) -> Option<Owner> {
        match self {
            Scope::Host => Some(Owner::Host),
            Scope::Reseller(id) => Some(Owner::Reseller(id)),
            Scope::Client(_) => None,
        }
    }

    /// Whether a client with this owner and id is visible in this scope.
    pub fn sees(self, owner: Owner, client: ClientId) -> bool {
        match self {
            Scope::Host => true,
            Scope::Reseller(r) => owner == Owner::Reseller(r),
            Scope::Client(c) => c == client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reseller_sees_only_its_own_clients() {
        let mine = Owner::Reseller(ResellerId(1));
        let theirs = Owner::Reseller(ResellerId(2));
        let scope = Scope::Reseller(ResellerId(1));
        assert!(scope.sees(mine, ClientId(10)));
        assert!(!scope.sees(theirs, ClientId(11)));
        assert!(!scope.sees(Owner::Host, ClientId(12)));
        assert!(Scope::Host.sees(theirs, ClientId(11)));
    }

    #[test]
    fn a_client_sees_only_itself_and_creates_nobody() {
        let scope = Scope::Client(ClientId(5));
        assert!(scope.sees(Owner::Host, ClientId(5)));
        assert!(!scope.sees(Owner::Host, ClientId(6)));
        assert_eq!(scope.owner_for_new_client(), None);
        assert_eq!(
            Scope::Reseller(ResellerId(3)).owner_for_new_client(),
            Some(Owner::Reseller(ResellerId(3)))
        );
    }
}
