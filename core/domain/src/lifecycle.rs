//! The states of catalog products, orders, services and invoices, and the transitions
//! between them. Every transition a use case makes is checked here first, so an illegal
//! one (paying a cancelled invoice, reactivating a terminated service) is refused with a
//! code before anything is written.
//!
//! ```text
//! service:  pending ──► active ◄──► suspended
//!              │          │            │
//!              ▼          ▼            ▼
//!          cancelled  terminated | cancelled      (terminated and cancelled are final)
//!
//! invoice:  draft ──► unpaid ──► paid ──► refunded
//!             │         │  ▲       
//!             ▼         ▼  │
//!         cancelled  collections ──► paid | cancelled
//!
//! order:    pending ──► active | cancelled | fraud
//! ```

/// A closed set of states stored and serialized by stable snake_case names: the enum with
/// `ALL`, `as_str`, `parse` and `Display`. Exported for the other crates' states (the
/// caller depends on serde and utoipa).
#[macro_export]
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable snake_case name, the one serde and the database use.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// What a product is; provisioning and domain handling key off it in later issues.
    ProductKind {
        Hosting = "hosting",
        Domain = "domain",
        Other = "other",
        /// Sold only beside another product's service.
        Addon = "addon",
    }
);

named_enum!(
    /// How a product is paid for.
    PayType {
        Free = "free",
        OneTime = "one_time",
        Recurring = "recurring",
    }
);

named_enum!(
    /// How a configurable option is chosen.
    OptionKind {
        Dropdown = "dropdown",
        Radio = "radio",
        /// Has one value (the "yes"); not choosing it costs nothing.
        YesNo = "yes_no",
        /// Has one value (the unit), priced per unit, between `min_qty` and `max_qty`.
        Quantity = "quantity",
    }
);

named_enum!(
    OrderStatus {
        Pending = "pending",
        Active = "active",
        Cancelled = "cancelled",
        Fraud = "fraud",
    }
);

named_enum!(
    ServiceStatus {
        /// Ordered, first invoice not yet paid.
        Pending = "pending",
        Active = "active",
        Suspended = "suspended",
        /// Final: the service was removed after it ran.
        Terminated = "terminated",
        /// Final: the service was stopped by request (or never started).
        Cancelled = "cancelled",
    }
);

impl ServiceStatus {
    /// Whether a service may move from `self` to `to`.
    pub fn can_become(self, to: ServiceStatus) -> bool {
        use ServiceStatus::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Pending, Cancelled)
                | (Active, Suspended)
                | (Active, Terminated)
                | (Active, Cancelled)
                | (Suspended, Active)
                | (Suspended, Terminated)
                | (Suspended, Cancelled)
        )
    }

    /// Terminated and cancelled services never change again.
    pub fn is_final(self) -> bool {
        matches!(self, ServiceStatus::Terminated | ServiceStatus::Cancelled)
    }

    /// Whether the billing run renews it.
    pub fn renews(self) -> bool {
        matches!(self, ServiceStatus::Active | ServiceStatus::Suspended)
    }
}

named_enum!(
    /// When a cancellation request takes effect.
    CancelKind {
        Immediate = "immediate",
        /// At the end of the period already paid for; nothing more is invoiced.
        EndOfPeriod = "end_of_period",
    }
);

named_enum!(
    InvoiceStatus {
        /// Being put together; no number, no ledger entry, editable.
        Draft = "draft",
        /// Issued: numbered, frozen, posted to the ledger.
        Unpaid = "unpaid",
        Paid = "paid",
        Cancelled = "cancelled",
        /// Paid, then credited back in full.
        Refunded = "refunded",
        /// Handed to collections; still payable.
        Collections = "collections",
    }
);

impl InvoiceStatus {
    pub fn can_become(self, to: InvoiceStatus) -> bool {
        use InvoiceStatus::*;
        matches!(
            (self, to),
            (Draft, Unpaid)
                | (Draft, Cancelled)
                | (Draft, Paid) // a zero-total invoice is paid when issued
                | (Unpaid, Paid)
                | (Unpaid, Cancelled)
                | (Unpaid, Collections)
                | (Collections, Paid)
                | (Collections, Cancelled)
                | (Paid, Refunded)
                // Everything credited back by credit notes.
                | (Unpaid, Refunded)
                | (Collections, Refunded)
        )
    }

    /// Whether payments may be recorded against it.
    pub fn is_payable(self) -> bool {
        matches!(self, InvoiceStatus::Unpaid | InvoiceStatus::Collections)
    }
}

named_enum!(
    InvoiceKind {
        Standard = "standard",
        /// Adds money to the client's wallet when paid; no revenue.
        TopUp = "top_up",
    }
);

named_enum!(
    /// What an invoice line bills.
    LineKind {
        /// One period of a service (the renewal key is (service, period)).
        Service = "service",
        Setup = "setup",
        Option = "option",
        Discount = "discount",
        Proration = "proration",
        LateFee = "late_fee",
        TopUp = "top_up",
        Manual = "manual",
    }
);

named_enum!(
    /// Where a credit note's money goes.
    CreditDisposition {
        /// Reduces what the client still owes on the invoice.
        Receivable = "receivable",
        /// Money already paid goes back to the client's wallet.
        Wallet = "wallet",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ServiceStatus::ALL {
            assert_eq!(ServiceStatus::parse(s.as_str()), Some(*s));
        }
        for s in InvoiceStatus::ALL {
            assert_eq!(InvoiceStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(LineKind::parse("late_fee"), Some(LineKind::LateFee));
        assert_eq!(LineKind::parse("Late_fee"), None);
    }

    #[test]
    fn service_transitions() {
        use ServiceStatus::*;
        let table = [
            (Pending, Active, true),
            (Active, Suspended, true),
            (Suspended, Active, true),
            (Suspended, Terminated, true),
            (Terminated, Active, false),
            (Cancelled, Active, false),
            (Pending, Suspended, false),
            (Active, Pending, false),
        ];
        for (from, to, ok) in table {
            assert_eq!(from.can_become(to), ok, "{from} -> {to}");
        }
        for s in ServiceStatus::ALL {
            if s.is_final() {
                assert!(
                    ServiceStatus::ALL.iter().all(|t| !s.can_become(*t)),
                    "{s} is final"
                );
            }
        }
    }

    #[test]
    fn invoice_transitions() {
        use InvoiceStatus::*;
        let table = [
            (Draft, Unpaid, true),
            (Unpaid, Paid, true),
            (Paid, Unpaid, false),
            (Cancelled, Paid, false),
            (Paid, Refunded, true),
            (Collections, Paid, true),
            (Refunded, Paid, false),
            (Unpaid, Refunded, true),
        ];
        for (from, to, ok) in table {
            assert_eq!(from.can_become(to), ok, "{from} -> {to}");
        }
        assert!(Unpaid.is_payable() && Collections.is_payable());
        assert!(!Paid.is_payable() && !Draft.is_payable() && !Cancelled.is_payable());
    }
}
