//! ISO 4217 currencies: a static table of the active codes and [`Currency`], a
//! one-byte handle into it.
//!
//! The table gives each currency its numeric code and its minor-unit exponent (the
//! number of decimal places of its smallest unit: 2 for USD, 0 for JPY, 3 for BHD).
//! [`crate::money::Money`] stores amounts as integer minor units and reads the exponent
//! from here; every conversion from a decimal to minor units rounds half away from zero
//! at the currency's exponent; arithmetic never rounds.
//!
//! # What the table holds
//!
//! ISO 4217 "List One" (current currency and funds codes) as published after Bulgaria
//! adopted the euro on 1 January 2026 and the Caribbean guilder (XCG) replaced the
//! Netherlands Antillean guilder (ANG): 165 rows. Withdrawn codes (BGN, HRK, ANG, ZWL,
//! SLL, CUC, …) are unknown here. So are the 13 active codes whose minor unit is "N.A."
//! in the standard — precious metals (XAU, XAG, XPT, XPD), bond-market and
//! accounting units (XBA, XBB, XBC, XBD, XDR, XSU, XUA), the testing code XTS and "no
//! currency" XXX — because an amount in minor units means nothing without an exponent.
//! Funds codes that do have a minor unit (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW,
//! XAD) are included.
//!
//! Updating: ISO publishes amendments a few times a year. Add or remove rows keeping the
//! table sorted by code (a test checks it); never reuse a removed row's position for
//! stored data — nothing stores the index, only the code.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use crate::money::MoneyError;

/// One row of the ISO 4217 table.
struct Iso4217Row {
    code: &'static str,
    numeric: u16,
    exponent: u8,
    name: &'static str,
}

const fn row(code: &'static str, numeric: u16, exponent: u8, name: &'static str) -> Iso4217Row {
    Iso4217Row {
        code,
        numeric,
        exponent,
        name,
    }
}

/// ISO 4217 List One, active codes with a numeric minor unit, sorted by code.
/// Names are the English names used by the standard.
const ISO_4217: &[Iso4217Row] = &[
    row("AED", 784, 2, "UAE Dirham"),
    row("AFN", 971, 2, "Afghani"),
    row("ALL", 8, 2, "Lek"),
    row("AMD", 51, 2, "Armenian Dram"),
    row("AOA", 973, 2, "Kwanza"),
    row("ARS", 32, 2, "Argentine Peso"),
    row("AUD", 36, 2, "Australian Dollar"),
    row("AWG", 533, 2, "Aruban Florin"),
    row("AZN", 944, 2, "Azerbaijan Manat"),
    row("BAM", 977, 2, "Convertible Mark"),
    row("BBD", 52, 2, "Barbados Dollar"),
    row("BDT", 50, 2, "Taka"),
    row("BHD", 48, 3, "Bahraini Dinar"),
    row("BIF", 108, 0, "Burundi Franc"),
    row("BMD", 60, 2, "Bermudian Dollar"),
    row("BND", 96, 2, "Brunei Dollar"),
    row("BOB", 68, 2, "Boliviano"),
    row("BOV", 984, 2, "Mvdol"),
    row("BRL", 986, 2, "Brazilian Real"),
    row("BSD", 44, 2, "Bahamian Dollar"),
    row("BTN", 64, 2, "Ngultrum"),
    row("BWP", 72, 2, "Pula"),
    row("BYN", 933, 2, "Belarusian Ruble"),
    row("BZD", 84, 2, "Belize Dollar"),
    row("CAD", 124, 2, "Canadian Dollar"),
    row("CDF", 976, 2, "Congolese Franc"),
    row("CHE", 947, 2, "WIR Euro"),
    row("CHF", 756, 2, "Swiss Franc"),
    row("CHW", 948, 2, "WIR Franc"),
    row("CLF", 990, 4, "Unidad de Fomento"),
    row("CLP", 152, 0, "Chilean Peso"),
    row("CNY", 156, 2, "Yuan Renminbi"),
    row("COP", 170, 2, "Colombian Peso"),
    row("COU", 970, 2, "Unidad de Valor Real"),
    row("CRC", 188, 2, "Costa Rican Colon"),
    row("CUP", 192, 2, "Cuban Peso"),
    row("CVE", 132, 2, "Cabo Verde Escudo"),
    row("CZK", 203, 2, "Czech Koruna"),
    row("DJF", 262, 0, "Djibouti Franc"),
    row("DKK", 208, 2, "Danish Krone"),
    row("DOP", 214, 2, "Dominican Peso"),
    row("DZD", 12, 2, "Algerian Dinar"),
    row("EGP", 818, 2, "Egyptian Pound"),
    row("ERN", 232, 2, "Nakfa"),
    row("ETB", 230, 2, "Ethiopian Birr"),
    row("EUR", 978, 2, "Euro"),
    row("FJD", 242, 2, "Fiji Dollar"),
    row("FKP", 238, 2, "Falkland Islands Pound"),
    row("GBP", 826, 2, "Pound Sterling"),
    row("GEL", 981, 2, "Lari"),
    row("GHS", 936, 2, "Ghana Cedi"),
    row("GIP", 292, 2, "Gibraltar Pound"),
    row("GMD", 270, 2, "Dalasi"),
    row("GNF", 324, 0, "Guinean Franc"),
    row("GTQ", 320, 2, "Quetzal"),
    row("GYD", 328, 2, "Guyana Dollar"),
    row("HKD", 344, 2, "Hong Kong Dollar"),
    row("HNL", 340, 2, "Lempira"),
    row("HTG", 332, 2, "Gourde"),
    row("HUF", 348, 2, "Forint"),
    row("IDR", 360, 2, "Rupiah"),
    row("ILS", 376, 2, "New Israeli Sheqel"),
    row("INR", 356, 2, "Indian Rupee"),
    row("IQD", 368, 3, "Iraqi Dinar"),
    row("IRR", 364, 2, "Iranian Rial"),
    row("ISK", 352, 0, "Iceland Krona"),
    row("JMD", 388, 2, "Jamaican Dollar"),
    row("JOD", 400, 3, "Jordanian Dinar"),
    row("JPY", 392, 0, "Yen"),
    row("KES", 404, 2, "Kenyan Shilling"),
    row("KGS", 417, 2, "Som"),
    row("KHR", 116, 2, "Riel"),
    row("KMF", 174, 0, "Comorian Franc"),
    row("KPW", 408, 2, "North Korean Won"),
    row("KRW", 410, 0, "Won"),
    row("KWD", 414, 3, "Kuwaiti Dinar"),
    row("KYD", 136, 2, "Cayman Islands Dollar"),
    row("KZT", 398, 2, "Tenge"),
    row("LAK", 418, 2, "Lao Kip"),
    row("LBP", 422, 2, "Lebanese Pound"),
    row("LKR", 144, 2, "Sri Lanka Rupee"),
    row("LRD", 430, 2, "Liberian Dollar"),
    row("LSL", 426, 2, "Loti"),
    row("LYD", 434, 3, "Libyan Dinar"),
    row("MAD", 504, 2, "Moroccan Dirham"),
    row("MDL", 498, 2, "Moldovan Leu"),
    row("MGA", 969, 2, "Malagasy Ariary"),
    row("MKD", 807, 2, "Denar"),
    row("MMK", 104, 2, "Kyat"),
    row("MNT", 496, 2, "Tugrik"),
    row("MOP", 446, 2, "Pataca"),
    row("MRU", 929, 2, "Ouguiya"),
    row("MUR", 480, 2, "Mauritius Rupee"),
    row("MVR", 462, 2, "Rufiyaa"),
    row("MWK", 454, 2, "Malawi Kwacha"),
    row("MXN", 484, 2, "Mexican Peso"),
    row("MXV", 979, 2, "Mexican Unidad de Inversion (UDI)"),
    row("MYR", 458, 2, "Malaysian Ringgit"),
    row("MZN", 943, 2, "Mozambique Metical"),
    row("NAD", 516, 2, "Namibia Dollar"),
    row("NGN", 566, 2, "Naira"),
    row("NIO", 558, 2, "Cordoba Oro"),
    row("NOK", 578, 2, "Norwegian Krone"),
    row("NPR", 524, 2, "Nepalese Rupee"),
    row("NZD", 554, 2, "New Zealand Dollar"),
    row("OMR", 512, 3, "Rial Omani"),
    row("PAB", 590, 2, "Balboa"),
    row("PEN", 604, 2, "Sol"),
    row("PGK", 598, 2, "Kina"),
    row("PHP", 608, 2, "Philippine Peso"),
    row("PKR", 586, 2, "Pakistan Rupee"),
    row("PLN", 985, 2, "Zloty"),
    row("PYG", 600, 0, "Guarani"),
    row("QAR", 634, 2, "Qatari Rial"),
    row("RON", 946, 2, "Romanian Leu"),
    row("RSD", 941, 2, "Serbian Dinar"),
    row("RUB", 643, 2, "Russian Ruble"),
    row("RWF", 646, 0, "Rwanda Franc"),
    row("SAR", 682, 2, "Saudi Riyal"),
    row("SBD", 90, 2, "Solomon Islands Dollar"),
    row("SCR", 690, 2, "Seychelles Rupee"),
    row("SDG", 938, 2, "Sudanese Pound"),
    row("SEK", 752, 2, "Swedish Krona"),
    row("SGD", 702, 2, "Singapore Dollar"),
    row("SHP", 654, 2, "Saint Helena Pound"),
    row("SLE", 925, 2, "Leone"),
    row("SOS", 706, 2, "Somali Shilling"),
    row("SRD", 968, 2, "Surinam Dollar"),
    row("SSP", 728, 2, "South Sudanese Pound"),
    row("STN", 930, 2, "Dobra"),
    row("SVC", 222, 2, "El Salvador Colon"),
    row("SYP", 760, 2, "Syrian Pound"),
    row("SZL", 748, 2, "Lilangeni"),
    row("THB", 764, 2, "Baht"),
    row("TJS", 972, 2, "Somoni"),
    row("TMT", 934, 2, "Turkmenistan New Manat"),
    row("TND", 788, 3, "Tunisian Dinar"),
    row("TOP", 776, 2, "Pa'anga"),
    row("TRY", 949, 2, "Turkish Lira"),
    row("TTD", 780, 2, "Trinidad and Tobago Dollar"),
    row("TWD", 901, 2, "New Taiwan Dollar"),
    row("TZS", 834, 2, "Tanzanian Shilling"),
    row("UAH", 980, 2, "Hryvnia"),
    row("UGX", 800, 0, "Uganda Shilling"),
    row("USD", 840, 2, "US Dollar"),
    row("USN", 997, 2, "US Dollar (Next day)"),
    row("UYI", 940, 0, "Uruguay Peso en Unidades Indexadas (UI)"),
    row("UYU", 858, 2, "Peso Uruguayo"),
    row("UYW", 927, 4, "Unidad Previsional"),
    row("UZS", 860, 2, "Uzbekistan Sum"),
    row("VED", 926, 2, "Bolívar Soberano (digital)"),
    row("VES", 928, 2, "Bolívar Soberano"),
    row("VND", 704, 0, "Dong"),
    row("VUV", 548, 0, "Vatu"),
    row("WST", 882, 2, "Tala"),
    row("XAD", 396, 2, "Arab Accounting Dinar"),
    row("XAF", 950, 0, "CFA Franc BEAC"),
    row("XCD", 951, 2, "East Caribbean Dollar"),
    row("XCG", 532, 2, "Caribbean Guilder"),
    row("XOF", 952, 0, "CFA Franc BCEAO"),
    row("XPF", 953, 0, "CFP Franc"),
    row("YER", 886, 2, "Yemeni Rial"),
    row("ZAR", 710, 2, "Rand"),
    row("ZMW", 967, 2, "Zambian Kwacha"),
    row("ZWG", 924, 2, "Zimbabwe Gold"),
];

/// An ISO 4217 currency: a handle into the static table, one byte wide, `Copy`.
///
/// Equality, hashing and ordering follow the code (the table is sorted by code), so a
/// `BTreeMap<Currency, _>` lists currencies alphabetically. Build one with
/// [`Currency::from_code`], [`str::parse`] or an associated constant such as
/// [`Currency::USD`]; there is no way to make a `Currency` outside the table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    /// Position in [`ISO_4217`]; always in range.
    index: u8,
}

impl Currency {
    pub const USD: Currency = Currency::known("USD");
    pub const EUR: Currency = Currency::known("EUR");
    pub const GBP: Currency = Currency::known("GBP");
    pub const ZAR: Currency = Currency::known("ZAR");
    pub const ZWG: Currency = Currency::known("ZWG");
    pub const KES: Currency = Currency::known("KES");
    pub const NGN: Currency = Currency::known("NGN");
    pub const BWP: Currency = Currency::known("BWP");
    pub const ZMW: Currency = Currency::known("ZMW");
    pub const CAD: Currency = Currency::known("CAD");
    pub const AUD: Currency = Currency::known("AUD");
    pub const CHF: Currency = Currency::known("CHF");
    pub const INR: Currency = Currency::known("INR");
    pub const JPY: Currency = Currency::known("JPY");
    pub const KRW: Currency = Currency::known("KRW");
    pub const CLP: Currency = Currency::known("CLP");
    pub const BHD: Currency = Currency::known("BHD");
    pub const KWD: Currency = Currency::known("KWD");
    pub const OMR: Currency = Currency::known("OMR");
    pub const CLF: Currency = Currency::known("CLF");

    /// Looks up a currency by its alphabetic code: exactly three upper-case ASCII
    /// letters ("USD", not "usd"), among the active codes of the table.
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        ISO_4217
            .binary_search_by(|row| row.code.cmp(code))
            .map(Currency::at)
            .map_err(|_| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter alphabetic code, e.g. "USD".
    pub const fn code(&self) -> &'static str {
        self.row().code
    }

    /// The number of decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for BHD,
    /// 4 for CLF.
    pub const fn exponent(&self) -> u8 {
        self.row().exponent
    }

    /// The ISO 4217 numeric code, e.g. 840 for USD (written "840"; 8 for ALL is "008").
    pub fn numeric(&self) -> u16 {
        self.row().numeric
    }

    /// The English name used by the standard, e.g. "US Dollar".
    pub fn name(&self) -> &'static str {
        self.row().name
    }

    /// Every currency of the table, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..ISO_4217.len()).map(Currency::at)
    }

    /// `10^exponent`: how many minor units make one major unit (100 for USD, 1 for JPY).
    pub const fn minor_per_major(&self) -> i64 {
        10_i64.pow(self.exponent() as u32)
    }

    const fn row(&self) -> &'static Iso4217Row {
        &ISO_4217[self.index as usize]
    }

    /// `index` comes from the table's own positions, which fit a `u8` (checked by a test).
    fn at(index: usize) -> Currency {
        debug_assert!(index < ISO_4217.len());
        Currency { index: index as u8 }
    }

    /// Compile-time lookup for the associated constants: a misspelt code fails the build.
    const fn known(code: &str) -> Currency {
        let mut index = 0;
        while index < ISO_4217.len() {
            if bytes_equal(ISO_4217[index].code.as_bytes(), code.as_bytes()) {
                return Currency { index: index as u8 };
            }
            index += 1;
        }
        panic!("currency code missing from the ISO 4217 table");
    }
}

const fn bytes_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let mut position = 0;
    while position < left.len() {
        if left[position] != right[position] {
            return false;
        }
        position += 1;
    }
    true
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so `{:>5}` works in tables.
        f.pad(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::from_code(code)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;

        impl serde::de::Visitor<'_> for CodeVisitor {
            type Value = Currency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 4217 currency code such as \"USD\"")
            }

            fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<Currency, E> {
                Currency::from_code(code).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(CodeVisitor)
    }
}

impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "ISO 4217 alphabetic currency code, upper case; only active codes \
                     with a minor unit are accepted",
                ))
                // The codes themselves, from the table `from_code` reads: "QQQ" has the
                // form of a code but is refused, so the form alone would not do.
                .enum_values(Some(Currency::all().map(|c| c.code())))
                .examples(["USD"])
                .build(),
        )
        .into()
    }
}

impl utoipa::ToSchema for Currency {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Currency")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        let table: &[(&str, u8, u16)] = &[
            ("USD", 2, 840),
            ("EUR", 2, 978),
            ("GBP", 2, 826),
            ("ZAR", 2, 710),
            ("ZWG", 2, 924),
            ("KES", 2, 404),
            ("NGN", 2, 566),
            ("ALL", 2, 8),
            ("JPY", 0, 392),
            ("CLP", 0, 152),
            ("KRW", 0, 410),
            ("VND", 0, 704),
            ("ISK", 0, 352),
            ("UGX", 0, 800),
            ("XAF", 0, 950),
            ("XOF", 0, 952),
            ("PYG", 0, 600),
            ("RWF", 0, 646),
            ("BHD", 3, 48),
            ("KWD", 3, 414),
            ("OMR", 3, 512),
            ("JOD", 3, 400),
            ("TND", 3, 788),
            ("IQD", 3, 368),
            ("LYD", 3, 434),
            ("CLF", 4, 990),
            ("UYW", 4, 927),
            ("XCG", 2, 532),
        ];
        for &(code, exponent, numeric) in table {
            let currency = Currency::from_code(code).unwrap();
            assert_eq!(currency.code(), code);
            assert_eq!(currency.exponent(), exponent, "exponent of {code}");
            assert_eq!(currency.numeric(), numeric, "numeric code of {code}");
        }
    }

    #[test]
    fn associated_constants_name_their_own_codes() {
        let constants = [
            (Currency::USD, "USD"),
            (Currency::EUR, "EUR"),
            (Currency::GBP, "GBP"),
            (Currency::ZAR, "ZAR"),
            (Currency::ZWG, "ZWG"),
            (Currency::KES, "KES"),
            (Currency::NGN, "NGN"),
            (Currency::BWP, "BWP"),
            (Currency::ZMW, "ZMW"),
            (Currency::CAD, "CAD"),
            (Currency::AUD, "AUD"),
            (Currency::CHF, "CHF"),
            (Currency::INR, "INR"),
            (Currency::JPY, "JPY"),
            (Currency::KRW, "KRW"),
            (Currency::CLP, "CLP"),
            (Currency::BHD, "BHD"),
            (Currency::KWD, "KWD"),
            (Currency::OMR, "OMR"),
            (Currency::CLF, "CLF"),
        ];
        for (currency, code) in constants {
            assert_eq!(currency.code(), code);
            assert_eq!(Currency::from_code(code), Ok(currency));
        }
    }

    #[test]
    fn the_table_is_sorted_unique_and_fits_a_byte() {
        assert!(ISO_4217.len() <= usize::from(u8::MAX) + 1);
        for pair in ISO_4217.windows(2) {
            assert!(
                pair[0].code < pair[1].code,
                "{} before {}",
                pair[0].code,
                pair[1].code
            );
        }
        let numerics: HashSet<u16> = ISO_4217.iter().map(|row| row.numeric).collect();
        assert_eq!(numerics.len(), ISO_4217.len(), "numeric codes are unique");
        for row in ISO_4217 {
            assert_eq!(row.code.len(), 3);
            assert!(row.code.bytes().all(|byte| byte.is_ascii_uppercase()));
            assert!(matches!(row.exponent, 0 | 2 | 3 | 4), "{}", row.code);
            assert!((1..=999).contains(&row.numeric), "{}", row.code);
            assert!(!row.name.is_empty());
        }
    }

    #[test]
    fn the_table_holds_the_whole_active_list() {
        assert_eq!(ISO_4217.len(), 165);
        assert_eq!(Currency::all().count(), 165);
        let first = Currency::all().next().unwrap();
        assert_eq!(first.code(), "AED");
        assert_eq!(Currency::ZWG.name(), "Zimbabwe Gold");
    }

    #[test]
    fn withdrawn_and_minorless_codes_are_unknown() {
        let unknown = [
            "BGN", "HRK", "ANG", "ZWL", "SLL", "CUC", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA",
            "XSU", "XUA", "XTS", "XXX",
        ];
        for code in unknown {
            assert_eq!(
                Currency::from_code(code),
                Err(MoneyError::UnknownCurrency(code.to_owned())),
                "{code}"
            );
        }
    }

    #[test]
    fn codes_are_case_sensitive_and_exactly_three_letters() {
        for code in ["usd", "Usd", "US", "USDD", " USD", "", "U$D"] {
            assert!(Currency::from_code(code).is_err(), "{code:?}");
        }
        assert_eq!("EUR".parse::<Currency>(), Ok(Currency::EUR));
    }

    #[test]
    fn debug_and_display_print_the_code() {
        assert_eq!(format!("{:?}", Currency::KES), "KES");
        assert_eq!(format!("{}", Currency::KES), "KES");
        assert_eq!(format!("[{:>5}]", Currency::KES), "[  KES]");
    }

    #[test]
    fn ordering_follows_the_code() {
        let mut currencies = vec![Currency::ZAR, Currency::EUR, Currency::USD, Currency::BHD];
        currencies.sort();
        assert_eq!(
            currencies,
            vec![Currency::BHD, Currency::EUR, Currency::USD, Currency::ZAR]
        );
    }

    #[test]
    fn serde_uses_the_code_string() {
        assert_eq!(serde_json::to_string(&Currency::ZWG).unwrap(), "\"ZWG\"");
        let currency: Currency = serde_json::from_str("\"BHD\"").unwrap();
        assert_eq!(currency, Currency::BHD);
    }

    #[test]
    fn deserializing_an_unknown_code_says_what_is_wrong() {
        let error = serde_json::from_str::<Currency>("\"XYZ\"").unwrap_err();
        assert!(error.to_string().contains("\"XYZ\""), "{error}");
        assert!(error.to_string().contains("ISO 4217"), "{error}");

        let error = serde_json::from_str::<Currency>("\"usd\"").unwrap_err();
        assert!(error.to_string().contains("upper case"), "{error}");

        let error = serde_json::from_str::<Currency>("840").unwrap_err();
        assert!(error.to_string().contains("currency code"), "{error}");
    }

    #[test]
    fn the_openapi_schema_lists_exactly_the_codes_accepted() {
        let schema = serde_json::to_value(<Currency as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["examples"][0], "USD");
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|c| c.as_str().expect("a code"))
            .collect();
        assert_eq!(listed.len(), Currency::all().count());
        for code in listed {
            assert!(Currency::from_code(code).is_ok(), "{code}");
        }
        assert_eq!(<Currency as utoipa::ToSchema>::name(), "Currency");
    }

    #[test]
    fn minor_per_major_is_ten_to_the_exponent() {
        assert_eq!(Currency::USD.minor_per_major(), 100);
        assert_eq!(Currency::JPY.minor_per_major(), 1);
        assert_eq!(Currency::BHD.minor_per_major(), 1_000);
        assert_eq!(Currency::CLF.minor_per_major(), 10_000);
    }
}
