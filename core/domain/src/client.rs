//! Clients and their contacts: the records, the input shapes the API accepts, and the
//! validation that every write passes through. Emails, phones, countries and languages are
//! validated by their types ([`crate::contact`]); the rules that span fields live here.

use crate::contact::{CountryCode, Email, Language, Phone};
use crate::currency::Currency;
use crate::ids::{ClientId, ContactId, ResellerId};
use crate::tenancy::Scope;
use crate::text::{TextError, limits};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest name, company name or address line accepted ([`crate::text::limits::NAME`]).
pub const MAX_TEXT_LEN: usize = crate::text::limits::NAME.max_chars;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Person,
    Company,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Person => "person",
            ClientKind::Company => "company",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [ClientKind::Person, ClientKind::Company]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Inactive,
    Closed,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Inactive => "inactive",
            ClientStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            ClientStatus::Active,
            ClientStatus::Inactive,
            ClientStatus::Closed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A postal address. The country lives on the client itself (tax and currency need it even
/// when no address is given).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub line1: Option<String>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub line2: Option<String>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub city: Option<String>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub region: Option<String>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub postal_code: Option<String>,
}

/// A client as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Client {
    pub id: ClientId,
    /// The reseller that owns this client; absent when the host owns it.
    pub reseller_id: Option<ResellerId>,
    pub kind: ClientKind,
    pub company_name: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub phone: Option<Phone>,
    pub address: PostalAddress,
    pub country: CountryCode,
    pub currency: Currency,
    pub language: Language,
    pub tax_exempt: bool,
    pub tax_id: Option<String>,
    pub status: ClientStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn default_language() -> Language {
    "en".parse().expect("en is a valid language")
}

/// What it takes to create a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub kind: ClientKind,
    /// Required for companies.
    #[serde(default)]
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub company_name: Option<String>,
    /// One line with a visible character ([`limits::NAME`]), as are all names here.
    #[schema(schema_with = crate::text::schema::name)]
    pub first_name: String,
    #[schema(schema_with = crate::text::schema::name)]
    pub last_name: String,
    pub email: Email,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default)]
    pub address: PostalAddress,
    pub country: CountryCode,
    pub currency: Currency,
    #[serde(default = "default_language")]
    pub language: Language,
    #[serde(default)]
    pub tax_exempt: bool,
    #[serde(default)]
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub tax_id: Option<String>,
}

/// A partial update: only the fields present change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientChanges {
    pub kind: Option<ClientKind>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub company_name: Option<String>,
    #[schema(schema_with = crate::text::schema::name)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::text::schema::name)]
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Option<PostalAddress>,
    pub country: Option<CountryCode>,
    pub currency: Option<Currency>,
    pub language: Option<Language>,
    pub tax_exempt: Option<bool>,
    #[schema(schema_with = crate::text::schema::name_optional)]
    pub tax_id: Option<String>,
    pub status: Option<ClientStatus>,
}

/// A rule broken by a client or contact write; `field` says where, and `text` says how
/// when it is the stored-text rule ([`crate::text`]) that refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
    pub text: Option<TextError>,
}

/// Names and address lines follow the one-line rule of [`limits::NAME`]; an optional one
/// may be empty (no company name), a required one must show a visible character.
fn text(field: &'static str, value: &str, required: bool) -> Result<(), FieldError> {
    let rule = if required {
        limits::NAME
    } else {
        limits::NAME.may_be_empty()
    };
    rule.check(value).map_err(|e| FieldError {
        field,
        message: e.to_string(),
        text: Some(e),
    })
}

fn optional(field: &'static str, value: &Option<String>) -> Result<(), FieldError> {
    value.as_deref().map_or(Ok(()), |v| text(field, v, false))
}

impl PostalAddress {
    pub fn validate(&self) -> Result<(), FieldError> {
        optional("address.line1", &self.line1)?;
        optional("address.line2", &self.line2)?;
        optional("address.city", &self.city)?;
        optional("address.region", &self.region)?;
        optional("address.postal_code", &self.postal_code)
    }
}

fn company_rule(kind: ClientKind, company_name: &Option<String>) -> Result<(), FieldError> {
    // Runs after the text rule, so the only way a company name fails here is by showing
    // nothing (absent, blank or zero-width only).
    if kind == ClientKind::Company
        && company_name
            .as_deref()
            .is_none_or(|n| limits::NAME.check(n).is_err())
    {
        return Err(FieldError {
            field: "company_name",
            message: "is required for a company".into(),
            text: None,
        });
    }
    Ok(())
}

impl NewClient {
    /// Checks the rules the field types cannot express.
    pub fn validate(&self) -> Result<(), FieldError> {
        text("first_name", &self.first_name, true)?;
        text("last_name", &self.last_name, true)?;
        optional("company_name", &self.company_name)?;
        optional("tax_id", &self.tax_id)?;
        self.address.validate()?;
        company_rule(self.kind, &self.company_name)
    }

    /// The fields set to something other than their default, which the writer must be
    /// allowed to choose (as in [`CLIENT_FIELD_WRITERS`]); a new client is always active.
    pub fn chosen_fields(&self) -> Vec<&'static str> {
        let mut fields = vec![
            "kind",
            "first_name",
            "last_name",
            "email",
            "country",
            "currency",
        ];
        for (f, set) in [
            ("company_name", self.company_name.is_some()),
            ("phone", self.phone.is_some()),
            ("address", self.address != PostalAddress::default()),
            ("language", true),
            ("tax_exempt", self.tax_exempt),
            ("tax_id", self.tax_id.is_some()),
        ] {
            if set {
                fields.push(f);
            }
        }
        fields
    }
}

impl ClientChanges {
    /// Applies the changes to `client`, validating the result as a whole.
    pub fn apply(&self, client: &Client) -> Result<Client, FieldError> {
        let mut c = client.clone();
        if let Some(v) = self.kind {
            c.kind = v;
        }
        if let Some(v) = &self.company_name {
            c.company_name = Some(v.clone());
        }
        if let Some(v) = &self.first_name {
            c.first_name = v.clone();
        }
        if let Some(v) = &self.last_name {
            c.last_name = v.clone();
        }
        if let Some(v) = &self.email {
            c.email = v.clone();
        }
        if let Some(v) = &self.phone {
            c.phone = Some(v.clone());
        }
        if let Some(v) = &self.address {
            c.address = v.clone();
        }
        if let Some(v) = &self.country {
            c.country = *v;
        }
        if let Some(v) = self.currency {
            c.currency = v;
        }
        if let Some(v) = &self.language {
            c.language = v.clone();
        }
        if let Some(v) = self.tax_exempt {
            c.tax_exempt = v;
        }
        if let Some(v) = &self.tax_id {
            c.tax_id = Some(v.clone());
        }
        if let Some(v) = self.status {
            c.status = v;
        }
        text("first_name", &c.first_name, true)?;
        text("last_name", &c.last_name, true)?;
        optional("company_name", &c.company_name)?;
        optional("tax_id", &c.tax_id)?;
        c.address.validate()?;
        company_rule(c.kind, &c.company_name)?;
        Ok(c)
    }

    pub fn is_empty(&self) -> bool {
        *self == ClientChanges::default()
    }

    /// The names of the fields this change sets (as in [`CLIENT_FIELD_WRITERS`]).
    pub fn fields(&self) -> Vec<&'static str> {
        let set = [
            ("kind", self.kind.is_some()),
            ("company_name", self.company_name.is_some()),
            ("first_name", self.first_name.is_some()),
            ("last_name", self.last_name.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
            ("address", self.address.is_some()),
            ("country", self.country.is_some()),
            ("currency", self.currency.is_some()),
            ("language", self.language.is_some()),
            ("tax_exempt", self.tax_exempt.is_some()),
            ("tax_id", self.tax_id.is_some()),
            ("status", self.status.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(f, _)| f)
            .collect()
    }
}

/// Who may set a field of a client, by the scope of the key (or staff) that writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Writers {
    /// The client itself, its reseller and staff: the client's own profile.
    Anyone,
    /// Staff and the owning reseller (which runs its own clients), not the client.
    ResellerOrStaff,
    /// The host's staff only: fields that decide what the host owes or is owed.
    Staff,
}

impl Writers {
    pub fn as_str(self) -> &'static str {
        match self {
            Writers::Anyone => "anyone",
            Writers::ResellerOrStaff => "reseller_or_staff",
            Writers::Staff => "staff",
        }
    }

    /// Whether a writer working in `scope` may set a field with these writers.
    pub fn allow(self, scope: Scope) -> bool {
        matches!(
            (self, scope),
            (_, Scope::Host)
                | (
                    Writers::Anyone | Writers::ResellerOrStaff,
                    Scope::Reseller(_)
                )
                | (Writers::Anyone, Scope::Client(_))
        )
    }
}

/// Who may write each field of a client: the one table the use cases enforce, the OpenAPI
/// document states (`x-keel-writable-by` on [`NewClient`] and [`ClientChanges`]) and the
/// tests walk. A client edits its profile; whether it pays tax (`tax_exempt`), its billing
/// currency (which its wallets, prices and open invoices are in) and its status (a closed
/// client cannot order) are decided for it. `tax_exempt` is the host's own tax liability,
/// so not even a reseller sets it.
pub const CLIENT_FIELD_WRITERS: &[(&str, Writers)] = &[
    ("kind", Writers::Anyone),
    ("company_name", Writers::Anyone),
    ("first_name", Writers::Anyone),
    ("last_name", Writers::Anyone),
    ("email", Writers::Anyone),
    ("phone", Writers::Anyone),
    ("address", Writers::Anyone),
    ("country", Writers::Anyone),
    ("language", Writers::Anyone),
    ("tax_id", Writers::Anyone),
    ("currency", Writers::ResellerOrStaff),
    ("status", Writers::ResellerOrStaff),
    ("tax_exempt", Writers::Staff),
];

/// Who may write a client field (`None`: no such field).
pub fn client_field_writers(field: &str) -> Option<Writers> {
    CLIENT_FIELD_WRITERS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, w)| *w)
}

/// The first of `fields` that `scope` may not write, if any.
pub fn forbidden_client_field<'a>(
    scope: Scope,
    fields: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    fields
        .into_iter()
        .find(|f| !client_field_writers(f).is_some_and(|w| w.allow(scope)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactRole {
    General,
    Billing,
    Technical,
}

impl ContactRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactRole::General => "general",
            ContactRole::Billing => "billing",
            ContactRole::Technical => "technical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            ContactRole::General,
            ContactRole::Billing,
            ContactRole::Technical,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A contact person of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: ContactId,
    pub client_id: ClientId,
    pub first_name: String,
    pub last_name: String,
    pub email: Email,
    pub phone: Option<Phone>,
    pub role: ContactRole,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn default_role() -> ContactRole {
    ContactRole::General
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    #[schema(schema_with = crate::text::schema::name)]
    pub first_name: String,
    #[schema(schema_with = crate::text::schema::name)]
    pub last_name: String,
    pub email: Email,
    #[serde(default)]
    pub phone: Option<Phone>,
    #[serde(default = "default_role")]
    pub role: ContactRole,
}

impl NewContact {
    pub fn validate(&self) -> Result<(), FieldError> {
        text("first_name", &self.first_name, true)?;
        text("last_name", &self.last_name, true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactChanges {
    #[schema(schema_with = crate::text::schema::name)]
    pub first_name: Option<String>,
    #[schema(schema_with = crate::text::schema::name)]
    pub last_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub role: Option<ContactRole>,
}

impl ContactChanges {
    pub fn apply(&self, contact: &Contact) -> Result<Contact, FieldError> {
        let mut c = contact.clone();
        if let Some(v) = &self.first_name {
            c.first_name = v.clone();
        }
        if let Some(v) = &self.last_name {
            c.last_name = v.clone();
        }
        if let Some(v) = &self.email {
            c.email = v.clone();
        }
        if let Some(v) = &self.phone {
            c.phone = Some(v.clone());
        }
        if let Some(v) = self.role {
            c.role = v;
        }
        text("first_name", &c.first_name, true)?;
        text("last_name", &c.last_name, true)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> NewClient {
        serde_json::from_value(serde_json::json!({
            "kind": "person", "first_name": "Tendai", "last_name": "Moyo",
            "email": "tendai@example.co.zw", "country": "ZW", "currency": "USD"
        }))
        .unwrap()
    }

    #[test]
    fn every_client_field_has_writers_and_every_writer_table_row_is_a_field() {
        let all: ClientChanges = serde_json::from_value(serde_json::json!({
            "kind": "company", "company_name": "Moyo Ltd", "first_name": "Tendai",
            "last_name": "Moyo", "email": "t@example.co.zw", "phone": "+263771234567",
            "address": {"city": "Harare"}, "country": "ZW", "currency": "USD",
            "language": "sn", "tax_exempt": true, "tax_id": "123", "status": "closed"
        }))
        .unwrap();
        let keys: Vec<String> = serde_json::to_value(&all)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut fields = all.fields();
        let mut table: Vec<&str> = CLIENT_FIELD_WRITERS.iter().map(|(f, _)| *f).collect();
        fields.sort_unstable();
        table.sort_unstable();
        let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(fields, table);
        assert_eq!(keys, table);
    }

    #[test]
    fn clients_write_their_profile_resellers_run_their_clients_staff_decide_tax() {
        use crate::ids::ResellerId;
        let client = Scope::Client(ClientId(1));
        let reseller = Scope::Reseller(ResellerId(1));
        // (field, client may, reseller may, staff may)
        let table = [
            ("country", true, true, true),
            ("email", true, true, true),
            ("currency", false, true, true),
            ("status", false, true, true),
            ("tax_exempt", false, false, true),
            ("no_such_field", false, false, false),
        ];
        for (field, c, r, h) in table {
            for (scope, expected) in [(client, c), (reseller, r), (Scope::Host, h)] {
                assert_eq!(
                    forbidden_client_field(scope, [field]).is_none(),
                    expected,
                    "{field} in {scope:?}"
                );
            }
        }
    }

    #[test]
    fn a_minimal_person_is_valid_and_defaults_to_english() {
        let c = person();
        c.validate().unwrap();
        assert_eq!(c.language.as_str(), "en");
        assert!(!c.tax_exempt);
    }

    #[test]
    fn rules_across_fields_name_the_field() {
        type Change = Box<dyn Fn(&mut NewClient)>;
        let table: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.first_name = "  ".into()), "first_name"),
            (Box::new(|c| c.last_name = "x".repeat(201)), "last_name"),
            (Box::new(|c| c.kind = ClientKind::Company), "company_name"),
            (
                Box::new(|c| c.address.city = Some("a\u{0}b".into())),
                "address.city",
            ),
        ];
        for (change, field) in table {
            let mut c = person();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn unknown_and_invalid_fields_are_refused_by_deserialization() {
        for body in [
            serde_json::json!({"kind": "person", "first_name": "a", "last_name": "b", "email": "a@b.co", "country": "ZW", "currency": "USD", "colour": "red"}),
            serde_json::json!({"kind": "person", "first_name": "a", "last_name": "b", "email": "not-an-email", "country": "ZW", "currency": "USD"}),
            serde_json::json!({"kind": "person", "first_name": "a", "last_name": "b", "email": "a@b.co", "country": "XX", "currency": "USD"}),
            serde_json::json!({"kind": "person", "first_name": "a", "last_name": "b", "email": "a@b.co", "country": "ZW", "currency": "ABC"}),
            serde_json::json!({"kind": "robot", "first_name": "a", "last_name": "b", "email": "a@b.co", "country": "ZW", "currency": "USD"}),
            serde_json::json!({"kind": "person", "last_name": "b", "email": "a@b.co", "country": "ZW", "currency": "USD"}),
        ] {
            assert!(
                serde_json::from_value::<NewClient>(body.clone()).is_err(),
                "{body}"
            );
        }
    }
}
