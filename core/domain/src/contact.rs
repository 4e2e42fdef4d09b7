//! Validated contact values: email address, ISO 3166-1 country, E.164 phone number,
//! language tag, and a postal address.
//!
//! Each value is a newtype that can only be built through `parse` (or `FromStr`,
//! `TryFrom<String>`, serde), so holding one means the text has been checked and put in
//! its canonical form:
//!
//! | type            | accepts                                  | stored as                  |
//! |-----------------|------------------------------------------|----------------------------|
//! | [`Email`]       | ` Ada.Lovelace@Example.COM `             | `Ada.Lovelace@example.com` |
//! | [`CountryCode`] | `zw`, `ZW`                               | `ZW`                       |
//! | [`Phone`]       | `+263 77 123 4567`, `+44 (0)20 7946 0958` | `+263771234567`, `+442079460958` |
//! | [`Language`]    | `en`, `EN-gb`, `pt-BR`, `es-419`         | `en`, `en-GB`, `es-419`    |
//!
//! Validation is hand-written (no regex) and deliberately conservative: it accepts what
//! people really type into a billing form and refuses the exotic corners of the RFCs
//! (quoted local parts, IP-literal domains, script subtags) rather than half-supporting
//! them.
//!
//! Every rejection is a [`ContactError`] whose `code()` and `field()` let the API layer
//! answer with a stable machine code next to a message a person can act on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

/// How many characters of a rejected input an error message repeats back.
///
/// Errors are shown to people and returned by the API; a megabyte of garbage posted as an
/// email address should not be echoed in full.
const SHOWN_INPUT_MAX_CHARS: usize = 64;

/// Why a contact value was refused.
///
/// The `String` in each variant is the offending input (cut to 64 characters), except for [`ContactError::InvalidAddress`], which carries the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("\"{0}\" is not a valid email address; expected something like name@example.com")]
    InvalidEmail(String),
    #[error("{}", country_message(.0))]
    InvalidCountry(String),
    #[error("\"{input}\" is not a valid phone number: {reason}")]
    InvalidPhone { input: String, reason: &'static str },
    #[error(
        "\"{0}\" is not a valid language tag; expected a language code with an optional \
         region, such as en, en-GB, pt-BR or sn"
    )]
    InvalidLanguage(String),
    #[error("invalid address: {0}")]
    InvalidAddress(String),
}

impl ContactError {
    /// A stable, machine-readable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            ContactError::InvalidEmail(_) => "invalid_email",
            ContactError::InvalidCountry(_) => "invalid_country",
            ContactError::InvalidPhone { .. } => "invalid_phone",
            ContactError::InvalidLanguage(_) => "invalid_language",
            ContactError::InvalidAddress(_) => "invalid_address",
        }
    }

    /// The name of the field the error is about, as a form or API would call it.
    pub fn field(&self) -> &'static str {
        match self {
            ContactError::InvalidEmail(_) => "email",
            ContactError::InvalidCountry(_) => "country",
            ContactError::InvalidPhone { .. } => "phone",
            ContactError::InvalidLanguage(_) => "language",
            ContactError::InvalidAddress(_) => "address",
        }
    }
}

fn country_message(input: &str) -> String {
    if input.trim().eq_ignore_ascii_case("UK") {
        return "\"UK\" is not an ISO 3166-1 country code; the United Kingdom is GB".to_owned();
    }
    format!(
        "\"{input}\" is not an ISO 3166-1 alpha-2 country code; expected two letters such \
         as ZW, ZA, KE, GB or US"
    )
}

/// The input as repeated in an error message: at most [`SHOWN_INPUT_MAX_CHARS`] characters.
fn shown(input: &str) -> String {
    match input.char_indices().nth(SHOWN_INPUT_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

/// Implements the string plumbing every contact newtype shares: `as_str`, `Display`,
/// `FromStr`, `TryFrom<String>`, `TryFrom<&str>`, `From<T> for String` and `AsRef<str>`.
/// Each type supplies `parse(&str) -> Result<Self, ContactError>` and `as_str`.
macro_rules! string_value {
    ($type:ident) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $type {
            type Err = ContactError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        impl TryFrom<String> for $type {
            type Error = ContactError;

            fn try_from(input: String) -> Result<Self, Self::Error> {
                Self::parse(&input)
            }
        }

        impl TryFrom<&str> for $type {
            type Error = ContactError;

            fn try_from(input: &str) -> Result<Self, Self::Error> {
                Self::parse(input)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> String {
                value.as_str().to_owned()
            }
        }

        impl AsRef<str> for $type {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ToSchema for $type {}
    };
}

// ---------------------------------------------------------------------------------------
// Email
// ---------------------------------------------------------------------------------------

/// An email address in `local@domain` form.
///
/// Rules: surrounding whitespace is trimmed; exactly one `@`; the local part is 1 to 64
/// characters of letters, digits, ``!#$%&'*+/=?^_`{|}~-`` and dots (no leading, trailing or
/// doubled dot); the domain has at least two labels of letters, digits and hyphens (1 to 63
/// characters each, not starting or ending with a hyphen), is at most 253 characters and
/// ends in an alphabetic top-level domain of two or more letters or a punycode (`xn--`)
/// one; the whole address is at most 254 characters.
///
/// The domain is lowercased because domains are case-insensitive; the local part is kept
/// as typed because the receiving server may treat it case-sensitively.
///
/// Not supported: quoted local parts, IP-literal domains and non-ASCII addresses (write
/// internationalised domains in punycode: `user@xn--bcher-kva.example`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

const EMAIL_MAX_LEN: usize = 254;
const EMAIL_LOCAL_MAX_LEN: usize = 64;
const DOMAIN_MAX_LEN: usize = 253;
const DOMAIN_LABEL_MAX_LEN: usize = 63;

impl Email {
    /// Checks and normalises an email address.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        normalise_email(input.trim())
            .map(Email)
            .ok_or_else(|| ContactError::InvalidEmail(shown(input)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`, as typed.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(local, _)| local)
    }

    /// The part after the `@`, lowercased.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, domain)| domain)
    }
}

string_value!(Email);

fn normalise_email(email: &str) -> Option<String> {
    // Everything accepted below is ASCII, so byte length equals character length.
    if email.len() > EMAIL_MAX_LEN || !email.is_ascii() {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if domain.contains('@') || !is_valid_local_part(local) {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    if !is_valid_domain(&domain) {
        return None;
    }
    Some(format!("{local}@{domain}"))
}

fn is_valid_local_part(local: &str) -> bool {
    const ATEXT_SYMBOLS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    (1..=EMAIL_LOCAL_MAX_LEN).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || ATEXT_SYMBOLS.contains(&b))
}

/// Expects an already lowercased domain.
fn is_valid_domain(domain: &str) -> bool {
    if domain.len() > DOMAIN_MAX_LEN {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    match labels.as_slice() {
        [_, .., top_level] => {
            labels.iter().all(|label| is_valid_domain_label(label))
                && is_valid_top_level_domain(top_level)
        }
        _ => false,
    }
}

fn is_valid_domain_label(label: &str) -> bool {
    (1..=DOMAIN_LABEL_MAX_LEN).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn is_valid_top_level_domain(label: &str) -> bool {
    let alphabetic = label.len() >= 2 && label.bytes().all(|b| b.is_ascii_alphabetic());
    // Internationalised TLDs such as .рф travel as punycode: xn--p1ai.
    let punycode = label.len() > 4 && label.starts_with("xn--");
    alphabetic || punycode
}

impl PartialSchema for Email {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .min_length(Some(3))
            .max_length(Some(EMAIL_MAX_LEN))
            .description(Some(
                "An email address. The domain is stored lowercased; the part before the @ is \
                 kept as typed. Internationalised domains must be written in punycode.",
            ))
            .examples(["ada@example.com"])
            .into()
    }
}

// ---------------------------------------------------------------------------------------
// Country
// ---------------------------------------------------------------------------------------

/// An ISO 3166-1 alpha-2 country code, one of the 249 officially assigned codes.
///
/// Input is accepted in any case and stored uppercase. Reserved and user-assigned codes
/// (`UK`, `EU`, `XK`, `XX`, …) are refused. The value is a small index into the table, so
/// it is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode(u8);

impl CountryCode {
    /// Checks a two-letter code against the ISO 3166-1 table.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let code = input.trim();
        let index = if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
            let upper = code.to_ascii_uppercase();
            COUNTRIES
                .binary_search_by(|(candidate, _)| (*candidate).cmp(upper.as_str()))
                .ok()
        } else {
            None
        };
        match index {
            // The table has 249 rows, so every index fits in a u8.
            Some(index) => Ok(CountryCode(index as u8)),
            None => Err(ContactError::InvalidCountry(shown(input))),
        }
    }

    /// The uppercase two-letter code, e.g. `"ZW"`.
    pub fn as_str(&self) -> &'static str {
        COUNTRIES[usize::from(self.0)].0
    }

    /// The ISO 3166-1 English short name, e.g. `"Zimbabwe"`.
    ///
    /// These are ISO's names ("United Kingdom of Great Britain and Northern Ireland",
    /// "Korea, Republic of"); a user interface may prefer friendlier display names.
    pub fn name(&self) -> &'static str {
        COUNTRIES[usize::from(self.0)].1
    }

    /// Every assigned code, in alphabetical order of code.
    pub fn all() -> impl ExactSizeIterator<Item = CountryCode> {
        // The table has 249 rows, so every index fits in a u8.
        (0..COUNTRIES.len()).map(|index| CountryCode(index as u8))
    }
}

string_value!(CountryCode);

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CountryCode").field(&self.as_str()).finish()
    }
}

impl PartialSchema for CountryCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            // The assigned codes, from the table `parse` reads ("QQ" has the form but is
            // refused). Lowercase input is accepted too; the document states the form
            // responses use.
            .enum_values(Some(COUNTRIES.iter().map(|(code, _)| *code)))
            .description(Some(
                "ISO 3166-1 alpha-2 country code, returned uppercase (lowercase input is \
                 accepted too).",
            ))
            .examples(["ZW"])
            .into()
    }
}

/// ISO 3166-1 alpha-2: every officially assigned code with its English short name, sorted
/// by code (lookups binary-search it). The array length pins the count at 249.
const COUNTRIES: [(&str, &str); 249] = [
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei Darussalam"),
    ("BO", "Bolivia (Plurinational State of)"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "Brazil"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, Democratic Republic of the"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia (Federated States of)"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom of Great Britain and Northern Ireland"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran (Islamic Republic of)"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "Korea (Democratic People's Republic of)"),
    ("KR", "Korea, Republic of"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Lao People's Democratic Republic"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova, Republic of"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands, Kingdom of the"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russian Federation"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten (Dutch part)"),
    ("SY", "Syrian Arab Republic"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Türkiye"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan, Province of China"),
    ("TZ", "Tanzania, United Republic of"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States of America"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Holy See"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela (Bolivarian Republic of)"),
    ("VG", "Virgin Islands (British)"),
    ("VI", "Virgin Islands (U.S.)"),
    ("VN", "Viet Nam"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

// ---------------------------------------------------------------------------------------
// Phone
// ---------------------------------------------------------------------------------------

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not `0`.
///
/// Spaces (any whitespace), hyphens, dots and parentheses are accepted where people type
/// them and removed: `+263 77 123 4567` and `+1 (555) 010-9999` become `+263771234567` and
/// `+15550109999`. A trunk prefix shown as `(0)`, as in `+44 (0)20 7946 0958`, is dropped.
/// A number without `+` is refused rather than guessed at, because the
/// country it belongs to is unknown; a leading `00` gets its own hint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

const PHONE_MIN_DIGITS: usize = 8;
const PHONE_MAX_DIGITS: usize = 15;

impl Phone {
    /// Checks a phone number and strips its separators.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        normalise_phone(input)
            .map(Phone)
            .map_err(|reason| ContactError::InvalidPhone {
                input: shown(input),
                reason,
            })
    }

    /// The E.164 form, e.g. `"+263771234567"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_value!(Phone);

fn normalise_phone(input: &str) -> Result<String, &'static str> {
    // "+44 (0)20 7946 0958" is a common way to show the trunk 0 dropped when dialling
    // from abroad, so "(0)" is removed outright rather than read as a digit.
    let number = input.trim().replace("(0)", "");
    if number.is_empty() {
        return Err("it is empty");
    }
    let mut digits = String::with_capacity(PHONE_MAX_DIGITS);
    let mut has_plus = false;
    for ch in number.chars() {
        match ch {
            '0'..='9' => digits.push(ch),
            // Allowed before the first digit only, so "(+263) 77 …" is fine.
            '+' if !has_plus && digits.is_empty() => has_plus = true,
            '+' => return Err("the + may appear only once, before the country code"),
            '-' | '.' | '(' | ')' => {}
            ch if ch.is_whitespace() => {}
            _ => {
                return Err("only digits, a leading +, spaces, hyphens, dots and \
                            parentheses are allowed");
            }
        }
    }
    if !has_plus {
        return Err(if digits.starts_with("00") {
            "write + instead of the leading 00, for example +263 77 123 4567"
        } else {
            "include the country code, starting with +, for example +263 77 123 4567"
        });
    }
    if digits.len() < PHONE_MIN_DIGITS {
        return Err("it is too short: expected 8 to 15 digits after the +");
    }
    if digits.len() > PHONE_MAX_DIGITS {
        return Err("it is too long: expected 8 to 15 digits after the +");
    }
    if digits.starts_with('0') {
        return Err("country codes never start with 0");
    }
    Ok(format!("+{digits}"))
}

/// The phone forms the OpenAPI document states: every string it matches is a number
/// [`Phone::parse`] takes in (a unit test draws them).
pub const PHONE_PATTERN: &str = "^\\+[1-9](?:[-. ]?[0-9]){7,14}$";

impl PartialSchema for Phone {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("e164".to_owned())))
            .pattern(Some(PHONE_PATTERN))
            .description(Some(
                "Phone number in international E.164 form: + followed by 8 to 15 digits, \
                 the first not 0, which may be separated by single spaces, hyphens or dots; \
                 responses use the compact form. (The API also takes parentheses and a \
                 \"(0)\" trunk prefix, as people write numbers; the pattern states the \
                 forms a program should send.)",
            ))
            .examples(["+263771234567"])
            .into()
    }
}

// ---------------------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------------------

/// A language tag: a 2- or 3-letter language code, optionally followed by a hyphen and a
/// region (2 letters or a 3-digit UN M.49 area such as `419`).
///
/// This is the part of BCP 47 a billing system needs to pick an invoice or message
/// template: `en`, `en-GB`, `pt-BR`, `sn`, `es-419`. Stored as language lowercase, region
/// uppercase. Script, variant and extension subtags (`zh-Hant-TW`, `de-CH-1996`) are
/// refused rather than silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Language(String);

impl Language {
    /// Checks and normalises a language tag.
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        normalise_language(input.trim())
            .map(Language)
            .ok_or_else(|| ContactError::InvalidLanguage(shown(input)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The language subtag, e.g. `"pt"` for `pt-BR`.
    pub fn primary(&self) -> &str {
        self.0
            .split_once('-')
            .map_or(&self.0, |(language, _)| language)
    }

    /// The region subtag if there is one, e.g. `Some("BR")` for `pt-BR`.
    pub fn region(&self) -> Option<&str> {
        self.0.split_once('-').map(|(_, region)| region)
    }
}

string_value!(Language);

fn normalise_language(tag: &str) -> Option<String> {
    let (language, region) = match tag.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (tag, None),
    };
    let language_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
    if !language_ok {
        return None;
    }
    let language = language.to_ascii_lowercase();
    match region {
        None => Some(language),
        Some(region) => {
            let letters = region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic());
            let area = region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit());
            (letters || area).then(|| format!("{language}-{}", region.to_ascii_uppercase()))
        }
    }
}

impl PartialSchema for Language {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[A-Za-z]{2,3}(-([A-Za-z]{2}|[0-9]{3}))?$"))
            .description(Some(
                "Language tag: a 2- or 3-letter language code with an optional region, \
                 such as en, en-GB, pt-BR or sn. Returned with the language lowercase and \
                 the region uppercase.",
            ))
            .examples(["en-GB"])
            .into()
    }
}

// ---------------------------------------------------------------------------------------
// Address
// ---------------------------------------------------------------------------------------

/// A postal address. Only the country is structurally validated when deserialised;
/// call [`Address::validate`] before storing one to refuse blank required lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street address, P.O. box or company name.
    pub line1: String,
    /// Apartment, suite, unit or building.
    pub line2: Option<String>,
    /// City, town or village.
    pub city: String,
    /// State, province, county or region.
    pub region: Option<String>,
    /// Postal or ZIP code, where the country has them.
    pub postal_code: Option<String>,
    pub country: CountryCode,
}

impl Address {
    /// Refuses an address whose first line or city is blank.
    pub fn validate(&self) -> Result<(), ContactError> {
        if self.line1.trim().is_empty() {
            return Err(ContactError::InvalidAddress(
                "the first address line must not be empty".to_owned(),
            ));
        }
        if self.city.trim().is_empty() {
            return Err(ContactError::InvalidAddress(
                "the city must not be empty".to_owned(),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Asserts each `(input, expected)` row parses to `expected`, naming the row on failure.
    fn check_accepts<T>(parse: fn(&str) -> Result<T, ContactError>, rows: &[(&str, &str)])
    where
        T: fmt::Display,
    {
        for (input, expected) in rows {
            match parse(input) {
                Ok(value) => assert_eq!(value.to_string(), *expected, "input {input:?}"),
                Err(error) => panic!("input {input:?} was refused: {error}"),
            }
        }
    }

    /// Asserts each input is refused with the given error code.
    fn check_rejects<T>(parse: fn(&str) -> Result<T, ContactError>, code: &str, rows: &[&str])
    where
        T: fmt::Debug,
    {
        for input in rows {
            match parse(input) {
                Ok(value) => panic!("input {input:?} was accepted as {value:?}"),
                Err(error) => assert_eq!(error.code(), code, "input {input:?}: {error}"),
            }
        }
    }

    fn schema_json<T: PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).expect("schema serialises")
    }

    // --- Email ---

    #[test]
    fn accepts_everyday_email_addresses_and_lowercases_only_the_domain() {
        check_accepts(
            Email::parse,
            &[
                ("ada@example.com", "ada@example.com"),
                ("Ada.Lovelace@Example.COM", "Ada.Lovelace@example.com"),
                ("  ada@example.com\n", "ada@example.com"),
                (
                    "first.last+billing@mail.example.co.zw",
                    "first.last+billing@mail.example.co.zw",
                ),
                ("o'brien@example.ie", "o'brien@example.ie"),
                ("a@b.co", "a@b.co"),
                (
                    "user_name-1@sub-domain.example.org",
                    "user_name-1@sub-domain.example.org",
                ),
                (
                    "!#$%&'*+-/=?^_`{|}~@example.com",
                    "!#$%&'*+-/=?^_`{|}~@example.com",
                ),
                ("info@xn--bcher-kva.example", "info@xn--bcher-kva.example"),
                ("info@example.xn--p1ai", "info@example.xn--p1ai"),
                ("info@XN--BCHER-KVA.Example", "info@xn--bcher-kva.example"),
                ("123@456.example.com", "123@456.example.com"),
            ],
        );
    }

    #[test]
    fn refuses_malformed_email_addresses() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_label = format!("ada@{}.com", "a".repeat(64));
        let long_domain = format!("a@{}.com", ["abcdefghi"; 26].join("."));
        let long_whole = format!("{}@{}.com", "a".repeat(64), ["abcdefghi"; 19].join("."));
        check_rejects(
            Email::parse,
            "invalid_email",
            &[
                "",
                "   ",
                "ada",
                "ada@",
                "@example.com",
                "ada@@example.com",
                "ada@bob@example.com",
                "ada@localhost",
                "ada@example.c",
                "ada@example.c0m",
                "ada@example.123",
                "ada@-example.com",
                "ada@example-.com",
                "ada@example..com",
                "ada@.example.com",
                "ada@example.com.",
                ".ada@example.com",
                "ada.@example.com",
                "ada..lovelace@example.com",
                "ada lovelace@example.com",
                "\"ada\"@example.com",
                "ada@[192.168.0.1]",
                "ada@exam_ple.com",
                "adä@example.com",
                "ada@bücher.example",
                "Ada <ada@example.com>",
                &long_local,
                &long_label,
                &long_domain,
                &long_whole,
            ],
        );
    }

    #[test]
    fn email_length_limits_are_inclusive() {
        let local_64 = format!("{}@example.com", "a".repeat(64));
        assert!(Email::parse(&local_64).is_ok());
        let label_63 = format!("ada@{}.com", "a".repeat(63));
        assert!(Email::parse(&label_63).is_ok());
        // 64 + 1 + (63 + 1 + 63 + 1 + 57 + 4) = 254 characters in all.
        let domain_189 = format!(
            "{}.{}.{}.com",
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(57)
        );
        let whole_254 = format!("{}@{domain_189}", "a".repeat(64));
        assert_eq!(whole_254.len(), 254);
        assert!(Email::parse(&whole_254).is_ok());
        assert!(Email::parse(&format!("{whole_254}m")).is_err());
    }

    #[test]
    fn email_exposes_its_local_part_and_domain() {
        let email = Email::parse("Ada.L@Example.COM").unwrap();
        assert_eq!(email.local_part(), "Ada.L");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.as_str(), "Ada.L@example.com");
    }

    #[test]
    fn email_error_repeats_the_input_but_cuts_long_ones() {
        let error = Email::parse("not-an-email").unwrap_err();
        assert_eq!(error, ContactError::InvalidEmail("not-an-email".to_owned()));
        assert!(
            error
                .to_string()
                .contains("\"not-an-email\" is not a valid email address")
        );

        let huge = "x".repeat(10_000);
        let ContactError::InvalidEmail(shown) = Email::parse(&huge).unwrap_err() else {
            panic!("wrong variant");
        };
        assert_eq!(shown.chars().count(), SHOWN_INPUT_MAX_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    // --- Country ---

    #[test]
    fn country_table_has_exactly_249_sorted_unique_codes() {
        assert_eq!(COUNTRIES.len(), 249);
        let codes: HashSet<&str> = COUNTRIES.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes.len(), 249, "duplicate codes");
        let names: HashSet<&str> = COUNTRIES.iter().map(|(_, name)| *name).collect();
        assert_eq!(names.len(), 249, "duplicate names");
        for pair in COUNTRIES.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} must sort before {}",
                pair[0].0,
                pair[1].0
            );
        }
        for (code, name) in COUNTRIES {
            assert!(
                code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()),
                "{code}"
            );
            assert!(!name.is_empty(), "{code} has no name");
        }
        assert_eq!(CountryCode::all().len(), 249);
    }

    #[test]
    fn country_table_contains_the_countries_keel_launches_in() {
        for (code, name) in [
            ("ZW", "Zimbabwe"),
            ("ZA", "South Africa"),
            ("US", "United States of America"),
            ("GB", "United Kingdom of Great Britain and Northern Ireland"),
            ("KE", "Kenya"),
            ("NG", "Nigeria"),
        ] {
            let country = CountryCode::parse(code).unwrap();
            assert_eq!(country.as_str(), code);
            assert_eq!(country.name(), name);
        }
    }

    #[test]
    fn accepts_country_codes_in_any_case_and_stores_them_uppercase() {
        check_accepts(
            CountryCode::parse,
            &[
                ("ZW", "ZW"),
                ("zw", "ZW"),
                ("Za", "ZA"),
                ("kE", "KE"),
                (" ng ", "NG"),
                ("gb", "GB"),
                ("US", "US"),
                ("AD", "AD"),
                ("AX", "AX"),
                ("ss", "SS"),
                ("CW", "CW"),
                ("aq", "AQ"),
            ],
        );
    }

    #[test]
    fn every_table_code_round_trips_through_parse() {
        for country in CountryCode::all() {
            assert_eq!(CountryCode::parse(country.as_str()), Ok(country));
            let lower = country.as_str().to_ascii_lowercase();
            assert_eq!(CountryCode::parse(&lower), Ok(country));
        }
    }

    #[test]
    fn refuses_unassigned_reserved_and_malformed_country_codes() {
        check_rejects(
            CountryCode::parse,
            "invalid_country",
            &[
                "", "  ", "UK", "uk", "XX", "EU", "XK", "AA", "ZZ", "Z", "ZWE", "Zimbabwe", "Z1",
                "12", "Z-", "ÅX", "AN", "YU", "CS",
            ],
        );
    }

    #[test]
    fn country_error_for_uk_points_to_gb() {
        let error = CountryCode::parse("UK").unwrap_err();
        assert_eq!(error.code(), "invalid_country");
        assert_eq!(error.field(), "country");
        assert!(error.to_string().contains("is GB"), "{error}");
        let error = CountryCode::parse("XX").unwrap_err();
        assert!(
            error.to_string().contains("\"XX\" is not an ISO 3166-1"),
            "{error}"
        );
    }

    #[test]
    fn country_debug_shows_the_code_not_the_index() {
        assert_eq!(
            format!("{:?}", CountryCode::parse("ZW").unwrap()),
            "CountryCode(\"ZW\")"
        );
    }

    // --- Phone ---

    #[test]
    fn accepts_international_numbers_as_people_type_them() {
        check_accepts(
            Phone::parse,
            &[
                ("+263771234567", "+263771234567"),
                ("+263 77 123 4567", "+263771234567"),
                ("  +263 77 123 4567  ", "+263771234567"),
                ("+27-82-123-4567", "+27821234567"),
                ("+1 (555) 010-9999", "+15550109999"),
                ("+44 20.7946.0958", "+442079460958"),
                ("(+254) 712 345 678", "+254712345678"),
                ("+234\t803 123 4567", "+2348031234567"),
                ("+12345678", "+12345678"),
                ("+123456789012345", "+123456789012345"),
                ("+49 (0)30 1234567", "+49301234567"),
                ("+44 (0)20 7946 0958", "+442079460958"),
            ],
        );
    }

    #[test]
    fn refuses_numbers_that_are_not_e164() {
        check_rejects(
            Phone::parse,
            "invalid_phone",
            &[
                "",
                "   ",
                "0771234567",
                "263771234567",
                "00263771234567",
                "+",
                "+1234567",
                "+1234567890123456",
                "+0263771234567",
                "+263 77 123 4567 ext 12",
                "+263-77-ABC-4567",
                "++263771234567",
                "+263+771234567",
                "+263/77/1234567",
                "tel:+263771234567",
            ],
        );
    }

    #[test]
    fn phone_errors_say_what_to_fix() {
        let reason = |input: &str| match Phone::parse(input) {
            Err(ContactError::InvalidPhone { reason, .. }) => reason,
            other => panic!("{input:?} gave {other:?}"),
        };
        assert!(reason("077 123 4567").contains("include the country code"));
        assert!(reason("00263 77 123 4567").contains("instead of the leading 00"));
        assert!(reason("+263 77").contains("too short"));
        assert!(reason("+1234567890123456").contains("too long"));
        assert!(reason("+0771234567").contains("never start with 0"));
        assert!(reason("+263 77 CALL ME").contains("only digits"));
        assert!(reason("").contains("empty"));

        let error = Phone::parse("077 123 4567").unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"077 123 4567\" is not a valid phone number: include the country code, \
             starting with +, for example +263 77 123 4567"
        );
    }

    proptest! {
        /// Every phone the document's pattern allows is one `Phone::parse` takes in.
        #[test]
        fn every_phone_the_schema_allows_parses(
            text in PHONE_PATTERN.trim_start_matches('^').trim_end_matches('$'),
        ) {
            let phone = Phone::parse(&text);
            prop_assert!(phone.is_ok(), "{text:?}: {phone:?}");
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            let phone = phone.unwrap();
            prop_assert_eq!(phone.as_str(), format!("+{digits}"));
        }
    }

    proptest! {
        #[test]
        fn any_e164_number_survives_human_separators(
            first in 1u8..=9,
            rest in proptest::collection::vec(0u8..=9, 7..=14),
            separators in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "-", ".", "(", ")", "  "]),
                15,
            ),
        ) {
            let digits: String = std::iter::once(first)
                .chain(rest)
                .map(|d| char::from(b'0' + d))
                .collect();
            let mut typed = String::from("+");
            for (digit, separator) in digits.chars().zip(&separators) {
                typed.push_str(separator);
                typed.push(digit);
            }
            // A "(0)" is the trunk-prefix convention and is dropped on purpose.
            prop_assume!(!typed.contains("(0)"));
            let phone = Phone::parse(&typed).unwrap();
            prop_assert_eq!(phone.as_str(), format!("+{digits}"));
            prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
        }

        #[test]
        fn email_parse_is_idempotent(
            local in "[A-Za-z0-9_+-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}",
            domain in "[A-Za-z0-9]{1,20}(\\.[A-Za-z0-9]{1,10}){0,2}\\.[A-Za-z]{2,6}",
        ) {
            let email = Email::parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(email.local_part(), local.as_str());
            prop_assert_eq!(email.domain(), domain.to_ascii_lowercase());
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        }
    }

    // --- Language ---

    #[test]
    fn accepts_language_tags_and_normalises_their_case() {
        check_accepts(
            Language::parse,
            &[
                ("en", "en"),
                ("EN", "en"),
                ("en-GB", "en-GB"),
                ("en-gb", "en-GB"),
                ("EN-gb", "en-GB"),
                ("pt-BR", "pt-BR"),
                ("sn", "sn"),
                ("nd-ZW", "nd-ZW"),
                ("sw-KE", "sw-KE"),
                ("fil", "fil"),
                ("yue-HK", "yue-HK"),
                ("es-419", "es-419"),
                (" fr-CA ", "fr-CA"),
            ],
        );
    }

    #[test]
    fn refuses_malformed_language_tags() {
        check_rejects(
            Language::parse,
            "invalid_language",
            &[
                "",
                "e",
                "engl",
                "english",
                "en-",
                "-GB",
                "en_GB",
                "en GB",
                "en-GBR",
                "en-G",
                "en-1",
                "en-12",
                "zh-Hant",
                "zh-Hant-TW",
                "en-GB-oxendict",
                "12",
                "é",
                "en--GB",
            ],
        );
    }

    #[test]
    fn language_exposes_its_primary_subtag_and_region() {
        let tag = Language::parse("pt-br").unwrap();
        assert_eq!(tag.primary(), "pt");
        assert_eq!(tag.region(), Some("BR"));
        let tag = Language::parse("sn").unwrap();
        assert_eq!(tag.primary(), "sn");
        assert_eq!(tag.region(), None);
    }

    // --- Errors ---

    #[test]
    fn each_error_names_its_code_and_field() {
        let rows = [
            (Email::parse("x").unwrap_err(), "invalid_email", "email"),
            (
                CountryCode::parse("x").unwrap_err(),
                "invalid_country",
                "country",
            ),
            (Phone::parse("x").unwrap_err(), "invalid_phone", "phone"),
            (
                Language::parse("x").unwrap_err(),
                "invalid_language",
                "language",
            ),
            (
                ContactError::InvalidAddress("the city must not be empty".to_owned()),
                "invalid_address",
                "address",
            ),
        ];
        for (error, code, field) in rows {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.field(), field, "{error:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    // --- Serde ---

    #[test]
    fn serde_reads_and_writes_plain_normalised_strings() {
        let email: Email = serde_json::from_str("\" Ada@Example.COM \"").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"Ada@example.com\""
        );
        let country: CountryCode = serde_json::from_str("\"zw\"").unwrap();
        assert_eq!(serde_json::to_string(&country).unwrap(), "\"ZW\"");
        let phone: Phone = serde_json::from_str("\"+263 77 123 4567\"").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+263771234567\"");
        let language: Language = serde_json::from_str("\"EN-gb\"").unwrap();
        assert_eq!(serde_json::to_string(&language).unwrap(), "\"en-GB\"");
    }

    #[test]
    fn serde_refuses_invalid_values_with_the_validation_message() {
        let error = serde_json::from_str::<Email>("\"ada@localhost\"").unwrap_err();
        assert!(
            error.to_string().contains("not a valid email address"),
            "{error}"
        );
        let error = serde_json::from_str::<CountryCode>("\"UK\"").unwrap_err();
        assert!(error.to_string().contains("is GB"), "{error}");
        let error = serde_json::from_str::<Phone>("\"0771234567\"").unwrap_err();
        assert!(
            error.to_string().contains("include the country code"),
            "{error}"
        );
        let error = serde_json::from_str::<Language>("\"english\"").unwrap_err();
        assert!(
            error.to_string().contains("not a valid language tag"),
            "{error}"
        );
        assert!(serde_json::from_str::<CountryCode>("42").is_err());
        assert!(serde_json::from_str::<Email>("null").is_err());
    }

    #[test]
    fn address_round_trips_and_refuses_unknown_fields_and_bad_countries() {
        let json = r#"{"line1":"12 Samora Machel Ave","city":"Harare","country":"zw"}"#;
        let address: Address = serde_json::from_str(json).unwrap();
        assert_eq!(address.country.as_str(), "ZW");
        assert_eq!(address.line2, None);
        assert_eq!(address.validate(), Ok(()));
        let written = serde_json::to_value(&address).unwrap();
        assert_eq!(written["country"], "ZW");
        let again: Address = serde_json::from_value(written).unwrap();
        assert_eq!(again, address);

        let unknown = r#"{"line1":"1 Main St","city":"Nairobi","country":"KE","zip":"00100"}"#;
        let error = serde_json::from_str::<Address>(unknown).unwrap_err();
        assert!(error.to_string().contains("unknown field `zip`"), "{error}");

        let bad_country = r#"{"line1":"1 High St","city":"London","country":"UK"}"#;
        assert!(serde_json::from_str::<Address>(bad_country).is_err());
    }

    #[test]
    fn address_validation_refuses_blank_first_line_and_city() {
        let address = Address {
            line1: "12 Samora Machel Ave".to_owned(),
            line2: None,
            city: "Harare".to_owned(),
            region: None,
            postal_code: None,
            country: CountryCode::parse("ZW").unwrap(),
        };
        assert_eq!(address.validate(), Ok(()));

        let blank_line1 = Address {
            line1: "  ".to_owned(),
            ..address.clone()
        };
        let error = blank_line1.validate().unwrap_err();
        assert_eq!(
            (error.code(), error.field()),
            ("invalid_address", "address")
        );
        assert!(error.to_string().contains("first address line"), "{error}");

        let blank_city = Address {
            city: String::new(),
            ..address
        };
        let error = blank_city.validate().unwrap_err();
        assert!(error.to_string().contains("city"), "{error}");
    }

    // --- OpenAPI ---

    #[test]
    fn openapi_schemas_are_strings_with_formats_and_examples() {
        let email = schema_json::<Email>();
        assert_eq!(email["type"], "string");
        assert_eq!(email["format"], "email");
        assert_eq!(email["examples"][0], "ada@example.com");

        let country = schema_json::<CountryCode>();
        assert_eq!(country["type"], "string");
        let codes = country["enum"].as_array().expect("an enum");
        assert_eq!(codes.len(), CountryCode::all().len());
        for code in codes {
            let code = code.as_str().expect("a code");
            assert_eq!(CountryCode::parse(code).map(|c| c.as_str()), Ok(code));
        }

        let phone = schema_json::<Phone>();
        assert_eq!(phone["type"], "string");
        assert_eq!(phone["examples"][0], "+263771234567");

        let language = schema_json::<Language>();
        assert_eq!(language["type"], "string");
        assert_eq!(language["examples"][0], "en-GB");

        assert_eq!(<Email as ToSchema>::name(), "Email");
        assert_eq!(<CountryCode as ToSchema>::name(), "CountryCode");
    }

    #[test]
    fn address_schema_refers_to_the_country_code_schema() {
        let address = schema_json::<Address>();
        assert_eq!(
            address["properties"]["country"]["$ref"],
            "#/components/schemas/CountryCode"
        );
        let required = address["required"].as_array().unwrap();
        for field in ["line1", "city", "country"] {
            assert!(
                required.iter().any(|name| name == field),
                "{field} not required"
            );
        }
        let mut schemas = Vec::new();
        <Address as ToSchema>::schemas(&mut schemas);
        assert!(schemas.iter().any(|(name, _)| name == "CountryCode"));
    }
}
