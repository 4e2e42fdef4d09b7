//! Typed identifiers. Every row id is an `i64` from the database; the newtype keeps a
//! client id from being passed where an account id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The raw database value.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                // Row ids start at 1: a request naming 0 or a negative id names nothing.
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::Integer)
                    .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .minimum(Some(1))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(/// A client (a customer of the host or of a reseller).
    ClientId);
id_type!(/// A contact person of a client.
    ContactId);
id_type!(/// A reseller: owns clients, prices and a wallet.
    ResellerId);
id_type!(/// A staff user of the host.
    StaffId);
id_type!(/// An API key.
    ApiKeyId);
id_type!(/// A ledger account.
    AccountId);
id_type!(/// A journal entry.
    EntryId);
id_type!(/// A product group of the catalog.
    ProductGroupId);
id_type!(/// A product (or an add-on) of the catalog.
    ProductId);
id_type!(/// A configurable option of a product.
    OptionId);
id_type!(/// One choice of a configurable option.
    OptionValueId);
id_type!(/// A promotion code.
    PromotionId);
id_type!(/// A client group.
    ClientGroupId);
id_type!(/// An order.
    OrderId);
id_type!(/// A service (an ordered product, billed by cycle).
    ServiceId);
id_type!(/// An invoice.
    InvoiceId);
id_type!(/// A line of an invoice.
    InvoiceLineId);
id_type!(/// A payment recorded against an invoice.
    PaymentId);
id_type!(/// A credit note.
    CreditNoteId);
id_type!(/// A tax rule.
    TaxRuleId);
