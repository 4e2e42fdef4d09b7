//! Currencies: the minor-unit exponent of each ISO 4217 code the kernel knows, so a plugin
//! turns `Money` (integer minor units) into the decimal text its provider wants, and back,
//! without a table of its own.
//!
//! The table is the kernel's (`keel_domain::currency`), copied: a test in the kernel checks
//! that they are the same, code by code.
//!
//! ```
//! use keel_sdk::{Money, currency};
//!
//! assert_eq!(currency::exponent("USD"), Some(2));
//! assert_eq!(currency::exponent("JPY"), Some(0));
//! assert_eq!(currency::exponent("KWD"), Some(3));
//! assert_eq!(currency::exponent("XYZ"), None);
//! assert_eq!(Money::new(2500, "USD").to_major().unwrap(), "25.00");
//! assert_eq!(Money::from_major("12.5", "USD").unwrap(), Money::new(1250, "USD"));
//! ```

use crate::PluginError;
use crate::types::{AmountError, Money};

/// `(code, exponent)` for every active ISO 4217 code with a minor unit, sorted by code.
pub const EXPONENTS: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAD", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The exponent of `code` (upper-case ISO 4217: `"USD"`), if the kernel knows it.
pub fn exponent(code: &str) -> Option<u32> {
    EXPONENTS
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| EXPONENTS[i].1)
}

impl Money {
    /// [`Money::to_decimal`] at the currency's own exponent: `"25.00"` for 2500 USD, `"1050"`
    /// for 1050 JPY. A currency the kernel does not know is `invalid-input`.
    pub fn to_major(&self) -> Result<String, PluginError> {
        Ok(self.to_decimal(known(&self.currency)?))
    }

    /// [`Money::parse_decimal`] at the currency's own exponent: `"12.5"` USD is 1250 minor
    /// units. An amount that is not exact at that exponent, or a currency the kernel does not
    /// know, is refused.
    pub fn from_major(text: &str, currency: &str) -> Result<Money, PluginError> {
        let exponent = known(currency)?;
        Money::parse_decimal(text, exponent, currency)
            .map_err(|e: AmountError| PluginError::invalid_input(e.to_string()))
    }
}

fn known(code: &str) -> Result<u32, PluginError> {
    exponent(code).ok_or_else(|| {
        PluginError::invalid_input(format!("{code:?} is not a currency the kernel knows"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_exponents_are_iso_4217_s() {
        assert!(EXPONENTS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(EXPONENTS.iter().all(|(_, e)| matches!(e, 0 | 2 | 3 | 4)));
        assert_eq!(exponent("ZWG"), Some(2));
        assert_eq!(exponent("usd"), None, "codes are upper case");
    }

    #[test]
    fn amounts_convert_at_the_currency_s_exponent() {
        assert_eq!(Money::new(-5, "KWD").to_major().unwrap(), "-0.005");
        assert_eq!(
            Money::from_major("1050", "JPY").unwrap(),
            Money::new(1050, "JPY")
        );
        assert!(Money::from_major("10.5", "JPY").is_err());
        assert!(Money::new(1, "ABC").to_major().is_err());
    }
}
