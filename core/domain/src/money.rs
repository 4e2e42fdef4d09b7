//! [`Money`]: an amount as a signed 64-bit count of minor units (cents, fils, yen) bound
//! to a [`Currency`].
//!
//! The rounding rule: every conversion from a decimal to minor units rounds half away
//! from zero at the currency's exponent; arithmetic never rounds. So 0.005 USD becomes
//! 0.01, -0.005 USD becomes -0.01, 2.5 JPY becomes 3 and 1.0005 BHD becomes 1.001.
//! Adding, subtracting, negating and multiplying by an integer are exact or fail with
//! [`MoneyError::Overflow`]; they never wrap and never round. Multiplying by a decimal
//! rate ([`Money::mul_decimal`]) is a conversion, so it rounds once, by the same rule.
//! Splitting an amount ([`Money::allocate`]) never rounds either: the parts always add
//! up to the original to the last minor unit.
//!
//! `rust_decimal` appears only at the edges, for rates and for amounts people type; no
//! floating-point type is used anywhere.
//!
//! Text forms:
//! - [`Money::format_amount`]: "1,234.50" (grouped, exactly `exponent` decimals), for
//!   people; [`Money::plain_amount`]: "1234.50", for APIs and files.
//! - [`Money::parse`] reads what people type: "25", "25.00", "-3.5", "1,234.500".
//! - `Display` / [`FromStr`]: "1,234.500 BHD".
//! - JSON: `{"amount_minor": 2500, "currency": "USD"}`.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::currency::Currency;

/// Why a money operation failed. Each message is a sentence for a person; [`code`]
/// gives a stable machine-readable name for APIs and logs.
///
/// [`code`]: MoneyError::code
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not an active ISO 4217 code with a minor unit.
    #[error("{}", describe_unknown_currency(.0))]
    UnknownCurrency(String),
    /// Two amounts in different currencies were combined.
    #[error("amounts in {left} and {right} cannot be combined; convert one of them first")]
    CurrencyMismatch { left: Currency, right: Currency },
    /// The result does not fit a signed 64-bit count of minor units.
    #[error("the amount is too large to represent")]
    Overflow,
    /// A decimal carried more places than the currency's minor unit allows.
    #[error("{}", describe_too_many_decimals(*.currency, *.exponent))]
    TooManyDecimals { currency: Currency, exponent: u8 },
    /// The text is not an amount.
    #[error(
        "{} is not a valid amount; write digits with an optional minus sign and decimal \
         point, like 1234.50 or 1,234.50",
        quoted(.0)
    )]
    InvalidAmount(String),
    /// An amount was split by weights that are empty or all zero.
    #[error("an amount can only be split by at least one weight greater than zero")]
    InvalidAllocation,
}

impl MoneyError {
    /// A stable snake_case name for the variant, for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency(_) => "unknown_currency",
            MoneyError::CurrencyMismatch { .. } => "currency_mismatch",
            MoneyError::Overflow => "amount_overflow",
            MoneyError::TooManyDecimals { .. } => "too_many_decimals",
            MoneyError::InvalidAmount(_) => "invalid_amount",
            MoneyError::InvalidAllocation => "invalid_allocation",
        }
    }
}

/// Longest piece of user text echoed back in an error message.
const ECHO_LIMIT: usize = 40;

/// User text as a quoted, escaped string literal, cut at [`ECHO_LIMIT`] characters so a
/// pasted document cannot flood a log line or smuggle a newline into one.
fn quoted(text: &str) -> String {
    if text.chars().count() <= ECHO_LIMIT {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(ECHO_LIMIT).collect();
        format!("{head:?}…")
    }
}

fn describe_unknown_currency(code: &str) -> String {
    let upper = code.to_ascii_uppercase();
    if upper != code && Currency::from_code(&upper).is_ok() {
        format!(
            "{} is not a currency code; codes are upper case, like \"{upper}\"",
            quoted(code)
        )
    } else {
        format!(
            "{} is not an active ISO 4217 currency code; use three upper-case letters \
             such as \"USD\"",
            quoted(code)
        )
    }
}

fn describe_too_many_decimals(currency: Currency, exponent: u8) -> String {
    if exponent == 0 {
        format!("{currency} has no minor unit, so amounts must be whole numbers")
    } else {
        format!("{currency} allows at most {exponent} decimal places")
    }
}

/// An amount of money: a signed count of minor units in one currency.
///
/// Fields are private so every `Money` has a currency; comparisons with `==` include
/// the currency (0 USD ≠ 0 EUR). There is deliberately no `Ord`: ordering amounts in
/// different currencies means nothing; compare [`Money::minor`] after checking
/// currencies.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount_minor": 2500, "currency": "USD"}))]
pub struct Money {
    /// The amount in minor units of the currency (cents for USD, fils for BHD, yen for
    /// JPY): 2500 in USD is 25.00.
    #[serde(rename = "amount_minor")]
    #[schema(example = 2500)]
    minor: i64,
    currency: Currency,
}

impl Money {
    /// `minor` units of `currency`: `Money::new(2500, Currency::USD)` is 25.00 USD.
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The amount in minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }

    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    // ----- arithmetic: exact or an error, never rounded, never wrapped -----

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.require_same_currency(other)?;
        self.with_minor(self.minor.checked_add(other.minor))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.require_same_currency(other)?;
        self.with_minor(self.minor.checked_sub(other.minor))
    }

    /// The same amount with the opposite sign; fails only for `i64::MIN` minor units.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_neg())
    }

    /// The amount times a whole number (a quantity, a number of periods).
    pub fn checked_mul_int(self, factor: i64) -> Result<Money, MoneyError> {
        self.with_minor(self.minor.checked_mul(factor))
    }

    /// The amount times a decimal rate (tax, proration fraction, markup, exchange rate
    /// into the same currency's units), rounded once to minor units half away from zero.
    ///
    /// The product is computed in minor units, exactly whenever it fits `Decimal`'s 28
    /// significant digits, so the only rounding is the one to a whole minor unit.
    pub fn mul_decimal(self, rate: Decimal) -> Result<Money, MoneyError> {
        let product = Decimal::from(self.minor)
            .checked_mul(rate)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(round_to_minor(product, 0)?, self.currency))
    }

    /// The total of `amounts`, all of which must be in `currency`; zero when empty.
    pub fn sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Money>,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), |total, amount| {
                total.checked_add(*amount)
            })
    }

    // ----- decimals -----

    /// Converts a decimal amount in major units (25.005) to minor units, rounding half
    /// away from zero at the currency's exponent: 25.005 USD → 2501 cents.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        Ok(Money::new(
            round_to_minor(amount, currency.exponent())?,
            currency,
        ))
    }

    /// Like [`Money::from_decimal`] but refuses to round: more significant decimal places
    /// than the exponent allows is [`MoneyError::TooManyDecimals`]. Trailing zeros do not
    /// count, so 25.000 USD is accepted.
    pub fn from_decimal_exact(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if amount.normalize().scale() > u32::from(currency.exponent()) {
            return Err(MoneyError::TooManyDecimals {
                currency,
                exponent: currency.exponent(),
            });
        }
        Money::from_decimal(amount, currency)
    }

    /// The amount in major units, with exactly `exponent` decimal places: 2500 USD cents
    /// → 25.00. Exact: every `i64` fits a `Decimal`.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, u32::from(self.currency.exponent()))
    }

    // ----- text -----

    /// Reads an amount in major units as people type it, for the given currency.
    ///
    /// Accepted: surrounding whitespace; one leading `-` or `+`; digits, optionally
    /// grouped by commas in groups of exactly three ("1,234,567"); an optional `.` and
    /// fraction digits (".5" is 0.50). Fraction digits beyond the currency's exponent
    /// are accepted only when they are zeros ("25.000" USD), since the value is exact.
    ///
    /// Refused: anything else ("", "1.2.3", "abc", "1e5", "1,23", "5.", "1 234") is
    /// [`MoneyError::InvalidAmount`] carrying the trimmed text; "25.001" USD is
    /// [`MoneyError::TooManyDecimals`]; a value outside `i64` minor units is
    /// [`MoneyError::Overflow`].
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let trimmed = text.trim();
        let invalid = || MoneyError::InvalidAmount(trimmed.to_owned());

        let (negative, unsigned) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, &trimmed[1..]),
            Some(b'+') => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (unsigned, ""),
        };
        let has_point = unsigned.len() != whole.len();

        if !is_grouped_or_plain_digits(whole)
            || !fraction.bytes().all(|byte| byte.is_ascii_digit())
            || (has_point && fraction.is_empty())
            || (whole.is_empty() && fraction.is_empty())
        {
            return Err(invalid());
        }

        let exponent = usize::from(currency.exponent());
        let (kept, dropped) = fraction.split_at(fraction.len().min(exponent));
        if dropped.bytes().any(|byte| byte != b'0') {
            return Err(MoneyError::TooManyDecimals {
                currency,
                exponent: currency.exponent(),
            });
        }

        // Accumulate the magnitude in u128 with checked steps: the digits of the whole
        // part, then the kept fraction digits padded with zeros to the exponent.
        let padding = std::iter::repeat_n(b'0', exponent - kept.len());
        let digits = whole
            .bytes()
            .filter(|byte| *byte != b',')
            .chain(kept.bytes())
            .chain(padding);
        let mut magnitude: u128 = 0;
        for digit in digits {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|shifted| shifted.checked_add(u128::from(digit - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }

        let signed = i128::try_from(magnitude).map_err(|_| MoneyError::Overflow)?;
        let signed = if negative { -signed } else { signed };
        let minor = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(minor, currency))
    }

    /// The amount for people: thousands separated by commas and exactly `exponent`
    /// decimals. "1,234.500" (BHD), "25.00" (USD), "1,000" (JPY), "-0.05" (-5 cents).
    pub fn format_amount(&self) -> String {
        self.render(true)
    }

    /// The amount for machines: like [`Money::format_amount`] without separators,
    /// "1234.500". [`Money::parse`] reads both back.
    pub fn plain_amount(&self) -> String {
        self.render(false)
    }

    fn render(&self, grouped: bool) -> String {
        let exponent = u32::from(self.currency.exponent());
        let magnitude = self.minor.unsigned_abs();
        let per_major = 10_u64.pow(exponent);
        let whole = (magnitude / per_major).to_string();
        let fraction = magnitude % per_major;

        let mut out = String::with_capacity(whole.len() * 4 / 3 + exponent as usize + 3);
        if self.minor < 0 {
            out.push('-');
        }
        for (position, digit) in whole.chars().enumerate() {
            if grouped && position > 0 && (whole.len() - position).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        if exponent > 0 {
            let width = exponent as usize;
            // Writing to a String cannot fail.
            let _ = write!(out, ".{fraction:0width$}");
        }
        out
    }

    // ----- splitting -----

    /// Splits the amount into parts proportional to `weights`, one part per weight.
    ///
    /// The parts always add up exactly to the original. Each part is its exact share
    /// rounded down (towards zero); the minor units left over go one each to the parts
    /// with the largest remainders, the earlier part winning a tie (largest-remainder
    /// method). So each part is within one minor unit of its exact share, and a
    /// zero weight always gets zero. Negative amounts split symmetrically:
    /// `(-x).allocate(w)` is `x.allocate(w)` with every sign flipped.
    ///
    /// Empty or all-zero weights are [`MoneyError::InvalidAllocation`].
    pub fn allocate(&self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        // At most usize::MAX weights of at most u64::MAX each: the total fits u128.
        let total: u128 = weights.iter().map(|&weight| u128::from(weight)).sum();
        if total == 0 {
            return Err(MoneyError::InvalidAllocation);
        }
        let magnitude = u128::from(self.minor.unsigned_abs());

        // magnitude ≤ 2^63 and weight < 2^64, so each product is below 2^127.
        let mut shares: Vec<u128> = Vec::with_capacity(weights.len());
        let mut remainders: Vec<u128> = Vec::with_capacity(weights.len());
        for &weight in weights {
            let exact = magnitude * u128::from(weight);
            shares.push(exact / total);
            remainders.push(exact % total);
        }

        // The remainders add up to `leftover * total`, each below `total`, so more than
        // `leftover` parts have a non-zero remainder and zero weights never get a unit.
        let leftover = magnitude - shares.iter().sum::<u128>();
        let mut order: Vec<usize> = (0..weights.len()).collect();
        // Stable sort: equal remainders keep their original (earlier first) order.
        order.sort_by(|&left, &right| remainders[right].cmp(&remainders[left]));
        for &index in order.iter().take(leftover as usize) {
            shares[index] += 1;
        }

        shares
            .into_iter()
            .map(|share| {
                // share ≤ magnitude ≤ 2^63 fits i128; the signed result fits i64 because
                // its magnitude is at most the original's.
                let share = share as i128;
                let signed = if self.minor < 0 { -share } else { share };
                self.with_minor(i64::try_from(signed).ok())
            })
            .collect()
    }

    /// Splits the amount into `parts` parts as equal as possible, the earlier parts
    /// taking the extra minor units: 1.00 USD in 3 is 0.34, 0.33, 0.33.
    /// Zero parts is [`MoneyError::InvalidAllocation`].
    pub fn split_evenly(&self, parts: usize) -> Result<Vec<Money>, MoneyError> {
        self.allocate(&vec![1; parts])
    }

    // ----- helpers -----

    fn require_same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    fn with_minor(self, minor: Option<i64>) -> Result<Money, MoneyError> {
        minor
            .map(|minor| Money::new(minor, self.currency))
            .ok_or(MoneyError::Overflow)
    }
}

/// Rounds `value` half away from zero to `exponent` decimal places and returns it as a
/// count of `10^-exponent` units, or [`MoneyError::Overflow`] outside `i64`.
fn round_to_minor(value: Decimal, exponent: u8) -> Result<i64, MoneyError> {
    let places = u32::from(exponent);
    let rounded = value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    // Rounding leaves at most `places` decimals; scale the mantissa up to exactly that.
    // A mantissa has at most 96 bits and places ≤ 4, so the product fits i128.
    let missing_places = places.saturating_sub(rounded.scale());
    let minor = rounded
        .mantissa()
        .checked_mul(10_i128.pow(missing_places))
        .ok_or(MoneyError::Overflow)?;
    i64::try_from(minor).map_err(|_| MoneyError::Overflow)
}

/// Digits, either plain ("1234567") or grouped by commas in threes ("1,234,567"); an
/// empty string passes (".5" has an empty whole part).
fn is_grouped_or_plain_digits(whole: &str) -> bool {
    let all_digits = |group: &str| group.bytes().all(|byte| byte.is_ascii_digit());
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    if !whole.contains(',') {
        return all_digits(first);
    }
    (1..=3).contains(&first.len())
        && all_digits(first)
        && groups.all(|group| group.len() == 3 && all_digits(group))
}

impl fmt::Display for Money {
    /// "1,234.500 BHD".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_amount(), self.currency)
    }
}

impl fmt::Debug for Money {
    /// "Money(1234500 BHD)": the raw minor units, so nothing is hidden by formatting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.minor, self.currency)
    }
}

impl FromStr for Money {
    type Err = MoneyError;

    /// Reads the `Display` form, amount then currency code: "1,234.500 BHD",
    /// "25.00 USD", "-3.5 USD". The amount follows [`Money::parse`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (amount, code) = trimmed
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| MoneyError::InvalidAmount(trimmed.to_owned()))?;
        let currency = Currency::from_code(code)?;
        Money::parse(amount, currency)
    }
}

/// Amounts typed as decimal text, as the OpenAPI document states them: the grammar of
/// [`Money::parse`] as patterns, for `#[schema(schema_with = …)]` on input fields.
///
/// The patterns are a little stricter than the parser (no surrounding spaces; at most 14
/// whole digits, so that no currency's minor units overflow `i64`), never looser: every
/// string they match parses, unless it has more decimals than the currency has
/// (`too_many_decimals`), which depends on the currency and no pattern can state.
pub mod schema {
    use utoipa::openapi::{Object, ObjectBuilder, Type};

    /// Plain digits or digits grouped by commas in threes, at most 14 whole digits.
    macro_rules! whole {
        () => {
            "(?:[0-9]{1,14}|[0-9]{1,2}(?:,[0-9]{3}){1,4})"
        };
    }

    /// Any amount: an optional sign, whole digits, an optional fraction.
    pub const AMOUNT: &str = concat!("^[-+]?(?:", whole!(), r"(?:\.[0-9]+)?|\.[0-9]+)$");
    /// Zero or more.
    pub const NON_NEGATIVE: &str = concat!(r"^\+?(?:", whole!(), r"(?:\.[0-9]+)?|\.[0-9]+)$");
    /// More than zero: whole digits without leading zeros, or a fraction with a digit
    /// that is not 0 ("0.05", ".5").
    pub const POSITIVE: &str = concat!(
        r"^\+?(?:(?:[1-9][0-9]{0,13}|[1-9][0-9]?(?:,[0-9]{3}){1,4})(?:\.[0-9]+)?",
        r"|0?\.[0-9]*[1-9][0-9]*)$"
    );

    fn decimal(pattern: &'static str, description: &'static str, example: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .examples([example])
            .build()
    }

    /// Any amount in major units.
    pub fn amount() -> Object {
        decimal(
            AMOUNT,
            "An amount in major units as decimal text, at most the currency's decimals.",
            "-12.50",
        )
    }

    /// An amount of zero or more.
    pub fn non_negative_amount() -> Object {
        decimal(
            NON_NEGATIVE,
            "An amount of zero or more in major units as decimal text, at most the \
             currency's decimals.",
            "0.00",
        )
    }

    /// An amount of more than zero.
    pub fn positive_amount() -> Object {
        decimal(
            POSITIVE,
            "An amount of more than zero in major units as decimal text, at most the \
             currency's decimals.",
            "25.00",
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        let all: Vec<Currency> = Currency::all().collect();
        proptest::sample::select(all)
    }

    // ----- construction and accessors -----

    #[test]
    fn accessors_report_sign_and_parts() {
        let table = [
            (usd(-1), true, false, false),
            (usd(0), false, true, false),
            (usd(1), false, false, true),
        ];
        for (money, negative, zero, positive) in table {
            assert_eq!(money.is_negative(), negative, "{money:?}");
            assert_eq!(money.is_zero(), zero, "{money:?}");
            assert_eq!(money.is_positive(), positive, "{money:?}");
        }
        assert_eq!(Money::zero(Currency::EUR).currency(), Currency::EUR);
        assert_eq!(usd(2500).minor(), 2500);
    }

    #[test]
    fn zero_in_one_currency_is_not_zero_in_another() {
        assert_ne!(Money::zero(Currency::USD), Money::zero(Currency::EUR));
    }

    // ----- arithmetic -----

    #[test]
    fn adding_and_subtracting_the_same_currency_is_exact() {
        assert_eq!(usd(2500).checked_add(usd(1)), Ok(usd(2501)));
        assert_eq!(usd(2500).checked_sub(usd(2501)), Ok(usd(-1)));
        assert_eq!(usd(5).checked_neg(), Ok(usd(-5)));
        assert_eq!(usd(-333).checked_mul_int(3), Ok(usd(-999)));
    }

    #[test]
    fn adding_different_currencies_is_an_error() {
        let mismatch = MoneyError::CurrencyMismatch {
            left: Currency::USD,
            right: Currency::EUR,
        };
        let euros = Money::new(100, Currency::EUR);
        assert_eq!(usd(100).checked_add(euros), Err(mismatch.clone()));
        assert_eq!(usd(100).checked_sub(euros), Err(mismatch.clone()));
        assert_eq!(
            mismatch.to_string(),
            "amounts in USD and EUR cannot be combined; convert one of them first"
        );
    }

    #[test]
    fn arithmetic_that_leaves_i64_is_an_overflow() {
        let max = usd(i64::MAX);
        let min = usd(i64::MIN);
        let results = [
            max.checked_add(usd(1)),
            min.checked_sub(usd(1)),
            min.checked_neg(),
            max.checked_mul_int(2),
            min.checked_mul_int(-1),
            max.mul_decimal(dec!(1.5)),
            min.mul_decimal(dec!(-1)),
            Money::sum(Currency::USD, &[max, usd(1)]),
        ];
        for result in results {
            assert_eq!(result, Err(MoneyError::Overflow));
        }
        assert_eq!(max.checked_add(min), Ok(usd(-1)));
    }

    #[test]
    fn sum_adds_amounts_of_one_currency() {
        let amounts = [usd(100), usd(250), usd(-50)];
        assert_eq!(Money::sum(Currency::USD, &amounts), Ok(usd(300)));
        assert_eq!(Money::sum(Currency::USD, &[]), Ok(usd(0)));
        assert_eq!(
            Money::sum(Currency::USD, &[usd(1), Money::new(1, Currency::ZAR)]),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::USD,
                right: Currency::ZAR
            })
        );
        assert_eq!(
            Money::sum(Currency::EUR, &amounts),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::EUR,
                right: Currency::USD
            })
        );
    }

    #[test]
    fn multiplying_by_a_rate_rounds_half_away_from_zero_once() {
        // (minor, currency, rate, expected minor)
        let table = [
            (1000, Currency::USD, dec!(0.155), 155),
            (333, Currency::USD, dec!(0.5), 167),
            (-333, Currency::USD, dec!(0.5), -167),
            (1999, Currency::USD, dec!(0.15), 300), // 299.85
            (100, Currency::USD, dec!(0.005), 1),   // 0.5 cent
            (100, Currency::USD, dec!(0.0049), 0),
            (25, Currency::JPY, dec!(0.1), 3), // 2.5 yen
            (-25, Currency::JPY, dec!(0.1), -3),
            (1_000_500, Currency::BHD, dec!(0.5), 500_250),
            (1001, Currency::BHD, dec!(0.5), 501), // 500.5 fils
            (12345, Currency::USD, dec!(1), 12345),
            (12345, Currency::USD, dec!(0), 0),
            (
                10000,
                Currency::USD,
                dec!(0.3333333333333333333333333333),
                3333,
            ),
        ];
        for (minor, currency, rate, expected) in table {
            let money = Money::new(minor, currency);
            assert_eq!(
                money.mul_decimal(rate),
                Ok(Money::new(expected, currency)),
                "{money:?} × {rate}"
            );
        }
    }

    // ----- decimals -----

    #[test]
    fn decimals_round_half_away_from_zero_at_the_exponent() {
        // (amount, currency, expected minor)
        let table = [
            (dec!(0.005), Currency::USD, 1),
            (dec!(-0.005), Currency::USD, -1),
            (dec!(0.0049), Currency::USD, 0),
            (dec!(-0.0049), Currency::USD, 0),
            (dec!(0.015), Currency::USD, 2),
            (dec!(0.025), Currency::USD, 3),
            (dec!(25), Currency::USD, 2500),
            (dec!(25.00), Currency::USD, 2500),
            (dec!(2.5), Currency::JPY, 3),
            (dec!(-2.5), Currency::JPY, -3),
            (dec!(3.5), Currency::JPY, 4),
            (dec!(2.4999), Currency::JPY, 2),
            (dec!(1.0005), Currency::BHD, 1001),
            (dec!(-1.0005), Currency::BHD, -1001),
            (dec!(1.00049), Currency::BHD, 1000),
            (dec!(0.00005), Currency::CLF, 1),
        ];
        for (amount, currency, expected) in table {
            assert_eq!(
                Money::from_decimal(amount, currency),
                Ok(Money::new(expected, currency)),
                "{amount} {currency}"
            );
        }
    }

    #[test]
    fn exact_decimals_refuse_to_round() {
        assert_eq!(
            Money::from_decimal_exact(dec!(0.005), Currency::USD),
            Err(MoneyError::TooManyDecimals {
                currency: Currency::USD,
                exponent: 2
            })
        );
        assert_eq!(
            Money::from_decimal_exact(dec!(2.5), Currency::JPY),
            Err(MoneyError::TooManyDecimals {
                currency: Currency::JPY,
                exponent: 0
            })
        );
        assert_eq!(
            Money::from_decimal_exact(dec!(25.000), Currency::USD),
            Ok(usd(2500))
        );
        assert_eq!(
            Money::from_decimal_exact(dec!(1.001), Currency::BHD),
            Ok(Money::new(1001, Currency::BHD))
        );
    }

    #[test]
    fn decimals_beyond_i64_are_an_overflow() {
        let too_big = [
            (dec!(92233720368547758.08), Currency::USD),
            (dec!(-92233720368547758.09), Currency::USD),
            (dec!(9223372036854775808), Currency::JPY),
            (Decimal::MAX, Currency::CLF),
            (Decimal::MIN, Currency::JPY),
        ];
        for (amount, currency) in too_big {
            assert_eq!(
                Money::from_decimal(amount, currency),
                Err(MoneyError::Overflow),
                "{amount}"
            );
        }
        assert_eq!(
            Money::from_decimal(dec!(-92233720368547758.08), Currency::USD),
            Ok(usd(i64::MIN))
        );
    }

    #[test]
    fn to_decimal_has_exactly_the_exponent_places() {
        let table = [
            (Money::new(2500, Currency::USD), "25.00"),
            (Money::new(-5, Currency::USD), "-0.05"),
            (Money::new(1000, Currency::JPY), "1000"),
            (Money::new(1_234_500, Currency::BHD), "1234.500"),
            (Money::new(1, Currency::CLF), "0.0001"),
        ];
        for (money, expected) in table {
            assert_eq!(money.to_decimal().to_string(), expected);
        }
    }

    // ----- parsing -----

    #[test]
    fn parsing_reads_amounts_as_people_type_them() {
        // (text, currency, expected minor)
        let table = [
            ("25", Currency::USD, 2500),
            ("25.00", Currency::USD, 2500),
            ("25.0", Currency::USD, 2500),
            ("25.000", Currency::USD, 2500),
            ("-3.5", Currency::USD, -350),
            ("+3.5", Currency::USD, 350),
            (".5", Currency::USD, 50),
            ("-0.05", Currency::USD, -5),
            ("-0", Currency::USD, 0),
            ("007", Currency::USD, 700),
            ("  7.10\t\n", Currency::USD, 710),
            ("1,234.500", Currency::BHD, 1_234_500),
            ("1234.5", Currency::BHD, 1_234_500),
            ("-0.001", Currency::KWD, -1),
            ("1,000", Currency::JPY, 1000),
            ("-1,000", Currency::JPY, -1000),
            ("1000.00", Currency::JPY, 1000),
            ("123", Currency::CLP, 123),
            ("1,234,567.89", Currency::USD, 123_456_789),
            ("0.0001", Currency::CLF, 1),
            ("92,233,720,368,547,758.07", Currency::USD, i64::MAX),
            ("-92233720368547758.08", Currency::USD, i64::MIN),
            ("9223372036854775807", Currency::JPY, i64::MAX),
        ];
        for (text, currency, expected) in table {
            assert_eq!(
                Money::parse(text, currency),
                Ok(Money::new(expected, currency)),
                "{text:?} {currency}"
            );
        }
    }

    #[test]
    fn parsing_rejects_what_is_not_an_amount() {
        let invalid = [
            "",
            "   ",
            "-",
            "+",
            ".",
            "-.",
            "abc",
            "1.2.3",
            "1e5",
            "1E5",
            "5.",
            "-5.",
            "--5",
            "-+5",
            "- 5",
            "1 234",
            "1_000",
            "0x10",
            "1,23",
            "1234,567",
            ",123",
            "1,,234",
            "1,234,",
            "12,34,567",
            "1,2345",
            "1.234,5",
            "1,234.5,6",
            "1.5,0",
            "€5",
            "5€",
            "٣",
            "inf",
            "NaN",
            "1.-5",
        ];
        for text in invalid {
            assert_eq!(
                Money::parse(text, Currency::USD),
                Err(MoneyError::InvalidAmount(text.trim().to_owned())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn parsing_refuses_more_decimals_than_the_currency_has() {
        let table = [
            ("25.001", Currency::USD, 2),
            ("-0.005", Currency::USD, 2),
            ("1.5", Currency::JPY, 0),
            ("1.0001", Currency::BHD, 3),
            ("0.00001", Currency::CLF, 4),
        ];
        for (text, currency, exponent) in table {
            assert_eq!(
                Money::parse(text, currency),
                Err(MoneyError::TooManyDecimals { currency, exponent }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn parsing_values_beyond_i64_is_an_overflow() {
        let table = [
            ("92233720368547758.08", Currency::USD),
            ("-92233720368547758.09", Currency::USD),
            ("9223372036854775808", Currency::JPY),
            ("100000000000000000000", Currency::USD),
            (
                "99999999999999999999999999999999999999999999999999",
                Currency::JPY,
            ),
            ("922337203685477.5808", Currency::CLF),
        ];
        for (text, currency) in table {
            assert_eq!(
                Money::parse(text, currency),
                Err(MoneyError::Overflow),
                "{text:?}"
            );
        }
    }

    #[test]
    fn parsing_with_a_code_reads_the_display_form() {
        let table = [
            ("1,234.500 BHD", Money::new(1_234_500, Currency::BHD)),
            ("25.00 USD", usd(2500)),
            ("  -3.5   USD ", usd(-350)),
            ("1,000 JPY", Money::new(1000, Currency::JPY)),
        ];
        for (text, expected) in table {
            assert_eq!(text.parse::<Money>(), Ok(expected), "{text:?}");
        }
        assert_eq!(
            "25.00".parse::<Money>(),
            Err(MoneyError::InvalidAmount("25.00".to_owned()))
        );
        assert_eq!(
            "25.00 usd".parse::<Money>(),
            Err(MoneyError::UnknownCurrency("usd".to_owned()))
        );
        assert_eq!(
            "25.001 USD".parse::<Money>(),
            Err(MoneyError::TooManyDecimals {
                currency: Currency::USD,
                exponent: 2
            })
        );
    }

    // ----- formatting -----

    #[test]
    fn formatting_groups_thousands_and_shows_every_decimal() {
        // (money, format_amount, plain_amount, Display)
        let table = [
            (
                Money::new(1_234_500, Currency::BHD),
                "1,234.500",
                "1234.500",
                "1,234.500 BHD",
            ),
            (usd(2500), "25.00", "25.00", "25.00 USD"),
            (usd(-5), "-0.05", "-0.05", "-0.05 USD"),
            (usd(0), "0.00", "0.00", "0.00 USD"),
            (
                usd(-123_456_789),
                "-1,234,567.89",
                "-1234567.89",
                "-1,234,567.89 USD",
            ),
            (usd(99_999), "999.99", "999.99", "999.99 USD"),
            (usd(100_000), "1,000.00", "1000.00", "1,000.00 USD"),
            (
                Money::new(1000, Currency::JPY),
                "1,000",
                "1000",
                "1,000 JPY",
            ),
            (Money::new(-7, Currency::JPY), "-7", "-7", "-7 JPY"),
            (
                Money::new(1, Currency::CLF),
                "0.0001",
                "0.0001",
                "0.0001 CLF",
            ),
            (
                usd(i64::MIN),
                "-92,233,720,368,547,758.08",
                "-92233720368547758.08",
                "-92,233,720,368,547,758.08 USD",
            ),
            (
                Money::new(i64::MAX, Currency::JPY),
                "9,223,372,036,854,775,807",
                "9223372036854775807",
                "9,223,372,036,854,775,807 JPY",
            ),
        ];
        for (money, grouped, plain, display) in table {
            assert_eq!(money.format_amount(), grouped, "{money:?}");
            assert_eq!(money.plain_amount(), plain, "{money:?}");
            assert_eq!(money.to_string(), display, "{money:?}");
        }
    }

    #[test]
    fn debug_shows_raw_minor_units() {
        assert_eq!(
            format!("{:?}", Money::new(1_234_500, Currency::BHD)),
            "Money(1234500 BHD)"
        );
    }

    // ----- allocation -----

    #[test]
    fn allocation_follows_the_largest_remainder_method() {
        // (minor, weights, expected parts)
        let table: &[(i64, &[u64], &[i64])] = &[
            (100, &[1, 1, 1], &[34, 33, 33]),
            (-100, &[1, 1, 1], &[-34, -33, -33]),
            (200, &[1, 1, 1], &[67, 67, 66]),
            (5, &[3, 7], &[2, 3]), // 1.5, 3.5: tie goes to the earlier part
            (5, &[7, 3], &[4, 1]), // 3.5, 1.5: the earlier part again
            (10, &[1, 0, 1], &[5, 0, 5]),
            (1, &[0, 0, 5], &[0, 0, 1]),
            (0, &[1, 2], &[0, 0]),
            (100, &[70, 20, 10], &[70, 20, 10]),
            (101, &[1, 2, 2], &[20, 41, 40]), // 20.2, 40.4, 40.4
            (3, &[1, 1, 1, 1, 1], &[1, 1, 1, 0, 0]),
            (7, &[u64::MAX, u64::MAX], &[4, 3]),
            (i64::MAX, &[1, 1], &[i64::MAX / 2 + 1, i64::MAX / 2]),
            (i64::MIN, &[1, 1], &[i64::MIN / 2, i64::MIN / 2]),
            (i64::MIN, &[1], &[i64::MIN]),
        ];
        for &(minor, weights, expected) in table {
            let parts = usd(minor).allocate(weights).unwrap();
            let parts: Vec<i64> = parts.iter().map(Money::minor).collect();
            assert_eq!(parts, expected, "{minor} by {weights:?}");
        }
    }

    #[test]
    fn allocation_needs_a_positive_weight() {
        assert_eq!(usd(100).allocate(&[]), Err(MoneyError::InvalidAllocation));
        assert_eq!(
            usd(100).allocate(&[0, 0]),
            Err(MoneyError::InvalidAllocation)
        );
        assert_eq!(usd(100).split_evenly(0), Err(MoneyError::InvalidAllocation));
    }

    #[test]
    fn splitting_evenly_gives_earlier_parts_the_extra_units() {
        let parts = usd(100).split_evenly(3).unwrap();
        assert_eq!(parts, vec![usd(34), usd(33), usd(33)]);
        let parts = Money::new(10, Currency::JPY).split_evenly(4).unwrap();
        let minors: Vec<i64> = parts.iter().map(Money::minor).collect();
        assert_eq!(minors, vec![3, 3, 2, 2]);
        assert!(parts.iter().all(|part| part.currency() == Currency::JPY));
    }

    // ----- errors -----

    #[test]
    fn errors_have_codes_and_sentences() {
        let table = [
            (
                MoneyError::UnknownCurrency("XYZ".to_owned()),
                "unknown_currency",
                "\"XYZ\" is not an active ISO 4217 currency code; use three upper-case \
                 letters such as \"USD\"",
            ),
            (
                MoneyError::UnknownCurrency("eur".to_owned()),
                "unknown_currency",
                "\"eur\" is not a currency code; codes are upper case, like \"EUR\"",
            ),
            (
                MoneyError::CurrencyMismatch {
                    left: Currency::GBP,
                    right: Currency::ZAR,
                },
                "currency_mismatch",
                "amounts in GBP and ZAR cannot be combined; convert one of them first",
            ),
            (
                MoneyError::Overflow,
                "amount_overflow",
                "the amount is too large to represent",
            ),
            (
                MoneyError::TooManyDecimals {
                    currency: Currency::USD,
                    exponent: 2,
                },
                "too_many_decimals",
                "USD allows at most 2 decimal places",
            ),
            (
                MoneyError::TooManyDecimals {
                    currency: Currency::JPY,
                    exponent: 0,
                },
                "too_many_decimals",
                "JPY has no minor unit, so amounts must be whole numbers",
            ),
            (
                MoneyError::InvalidAmount("1.2.3".to_owned()),
                "invalid_amount",
                "\"1.2.3\" is not a valid amount; write digits with an optional minus sign \
                 and decimal point, like 1234.50 or 1,234.50",
            ),
            (
                MoneyError::InvalidAllocation,
                "invalid_allocation",
                "an amount can only be split by at least one weight greater than zero",
            ),
        ];
        for (error, code, message) in table {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn error_messages_escape_and_shorten_echoed_text() {
        let message = MoneyError::InvalidAmount("1\n2".to_owned()).to_string();
        assert!(message.starts_with("\"1\\n2\" is not"), "{message}");
        let long = "9".repeat(500);
        let message = MoneyError::InvalidAmount(long).to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    // ----- serde and schema -----

    #[test]
    fn json_carries_minor_units_and_the_code() {
        let json = serde_json::to_string(&Money::new(1_234_500, Currency::BHD)).unwrap();
        assert_eq!(json, r#"{"amount_minor":1234500,"currency":"BHD"}"#);
        let money: Money = serde_json::from_str(r#"{"amount_minor":-5,"currency":"USD"}"#).unwrap();
        assert_eq!(money, usd(-5));
    }

    #[test]
    fn json_with_unknown_fields_or_codes_is_refused() {
        let refused = [
            r#"{"amount_minor":1,"currency":"USD","note":"x"}"#,
            r#"{"amount_minor":1,"currency":"XYZ"}"#,
            r#"{"amount_minor":1.5,"currency":"USD"}"#,
            r#"{"amount_minor":"1","currency":"USD"}"#,
            r#"{"currency":"USD"}"#,
            r#"{"amount_minor":1}"#,
            r#"{"amount_minor":9223372036854775808,"currency":"USD"}"#,
        ];
        for json in refused {
            assert!(serde_json::from_str::<Money>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn the_openapi_schema_names_amount_minor_and_currency() {
        use utoipa::{PartialSchema, ToSchema};

        assert_eq!(<Money as ToSchema>::name(), "Money");
        let schema = serde_json::to_value(<Money as PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["properties"]["amount_minor"]["type"], "integer");
        assert_eq!(
            schema["properties"]["currency"]["$ref"],
            "#/components/schemas/Currency"
        );
        assert_eq!(schema["additionalProperties"], false);
        let mut referenced = Vec::new();
        <Money as ToSchema>::schemas(&mut referenced);
        assert!(referenced.iter().any(|(name, _)| name == "Currency"));
    }

    // ----- properties -----

    /// Strips the anchors: proptest draws whole strings from the inside of a pattern.
    fn inside(pattern: &str) -> &str {
        &pattern[1..pattern.len() - 1]
    }

    proptest! {
        /// What the document's amount patterns allow, the parser takes in, in every
        /// currency, with the sign the pattern promises; only decimals beyond the
        /// currency's are left to the parser.
        #[test]
        fn every_amount_the_schema_allows_parses(
            any_amount in inside(schema::AMOUNT),
            non_negative in inside(schema::NON_NEGATIVE),
            positive in inside(schema::POSITIVE),
            code in proptest::sample::select(vec!["USD", "JPY", "BHD", "CLF"]),
        ) {
            let currency = Currency::from_code(code).unwrap();
            let read = |text: &str| match Money::parse(text, currency) {
                Err(MoneyError::TooManyDecimals { .. }) => None,
                other => Some(other.unwrap_or_else(|e| panic!("{text:?} in {code}: {e}"))),
            };
            read(&any_amount);
            if let Some(m) = read(&non_negative) {
                prop_assert!(m.minor() >= 0, "{non_negative:?} is negative");
            }
            if let Some(m) = read(&positive) {
                prop_assert!(m.minor() > 0, "{positive:?} is not positive");
            }
        }

        #[test]
        fn allocation_never_loses_or_invents_a_minor_unit(
            minor in any::<i64>(),
            weights in proptest::collection::vec(0..=u64::from(u32::MAX), 1..12),
        ) {
            prop_assume!(weights.iter().any(|&weight| weight > 0));
            let parts = usd(minor).allocate(&weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());

            let total_weight: i128 = weights.iter().map(|&weight| i128::from(weight)).sum();
            let sum: i128 = parts.iter().map(|part| i128::from(part.minor())).sum();
            prop_assert_eq!(sum, i128::from(minor));

            for (part, &weight) in parts.iter().zip(&weights) {
                prop_assert_eq!(part.currency(), Currency::USD);
                // |part - minor × weight / total| < 1, scaled by total to stay integral.
                let scaled_error =
                    i128::from(part.minor()) * total_weight - i128::from(minor) * i128::from(weight);
                prop_assert!(scaled_error.abs() < total_weight);
                if weight == 0 {
                    prop_assert_eq!(part.minor(), 0);
                }
            }
        }

        #[test]
        fn allocating_a_negative_amount_mirrors_the_positive_one(
            minor in (i64::MIN + 1)..=i64::MAX,
            weights in proptest::collection::vec(0..1_000_u64, 1..8),
        ) {
            prop_assume!(weights.iter().any(|&weight| weight > 0));
            let positive = usd(minor).allocate(&weights).unwrap();
            let negative = usd(-minor).allocate(&weights).unwrap();
            for (plus, minus) in positive.iter().zip(&negative) {
                prop_assert_eq!(plus.minor(), -minus.minor());
            }
        }

        #[test]
        fn parsing_a_formatted_amount_gives_it_back(minor in any::<i64>(), currency in any_currency()) {
            let money = Money::new(minor, currency);
            prop_assert_eq!(Money::parse(&money.format_amount(), currency), Ok(money));
            prop_assert_eq!(Money::parse(&money.plain_amount(), currency), Ok(money));
            prop_assert_eq!(money.to_string().parse::<Money>(), Ok(money));
        }

        #[test]
        fn decimals_round_trip_exactly(minor in any::<i64>(), currency in any_currency()) {
            let money = Money::new(minor, currency);
            prop_assert_eq!(Money::from_decimal(money.to_decimal(), currency), Ok(money));
            prop_assert_eq!(Money::from_decimal_exact(money.to_decimal(), currency), Ok(money));
        }

        #[test]
        fn json_round_trips(minor in any::<i64>(), currency in any_currency()) {
            let money = Money::new(minor, currency);
            let json = serde_json::to_string(&money).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,30}", currency in any_currency()) {
            let _ = Money::parse(&text, currency);
            let _ = text.parse::<Money>();
        }
    }
}
