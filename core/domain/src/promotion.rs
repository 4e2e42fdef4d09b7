//! Promotion codes: whether a code may be used ([`check`]), the discount it gives on a
//! line ([`discount`]), and the canonical form of a code ([`validate_code`]).
//!
//! The same rules with more worked examples are in `docs/billing.md`.
//!
//! # The rules
//!
//! **Codes** are trimmed and upper-cased, then must be 3 to 32 characters of `A`–`Z`,
//! `0`–`9`, `-` and `_`: ` summer-26 ` is stored and matched as `SUMMER-26`.
//!
//! **A code may be used** on a day, for a product, a billing cycle and a currency when
//! all of these hold, checked in this order (the first that fails is the error):
//!
//! 1. its value is valid (see below), else `invalid_promo_value`;
//! 2. the day is on or after `starts_on`, else `promo_not_started`;
//! 3. the day is on or before `ends_on` (inclusive), else `promo_expired`;
//! 4. it has been used fewer than `max_uses` times in all, else `promo_exhausted`;
//! 5. this client has used it fewer than `max_uses_per_client` times, else
//!    `promo_exhausted_for_client`;
//! 6. the product is in `products` (empty means every product), else
//!    `promo_not_applicable_product`;
//! 7. the cycle is in `cycles` (empty means every cycle), else
//!    `promo_not_applicable_cycle`;
//! 8. a fixed discount has an amount in the currency, else `promo_no_amount_for_currency`.
//!
//! A limit of `Some(0)` uses means the code is used up. Counting uses, and deciding
//! whether a renewal still gets the discount (`recurring`: every period, or the first
//! period only), is the caller's business; this module only judges one use.
//!
//! **The discount on a line** of `amount ≥ 0`:
//!
//! - a percentage `p` (more than 0, at most 100) gives `amount × p / 100`, rounded half
//!   away from zero to a whole minor unit, once (see `docs/money.md`);
//! - a fixed value lists at most one positive amount per currency, and gives the amount
//!   in the line's currency, but never more than the line.
//!
//! | value | line | discount |
//! |---|---:|---:|
//! | 10 % | 19.99 USD | 2.00 (1.999) |
//! | 15 % | 10.10 USD | 1.52 (1.515) |
//! | 12.5 % | 1.001 BHD | 0.125 (0.125125) |
//! | 50 % | 1 JPY | 1 (0.5) |
//! | 5.00 USD / 500 JPY | 19.99 USD | 5.00 |
//! | 5.00 USD / 500 JPY | 3.00 USD | 3.00 (capped) |
//! | 5.00 USD / 500 JPY | 10.00 EUR | error: no amount in EUR |

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::currency::Currency;
use crate::cycle::BillingCycle;
use crate::ids::ProductId;
use crate::money::Money;

/// The shortest and longest promotion codes, in characters.
pub const CODE_LENGTH: std::ops::RangeInclusive<usize> = 3..=32;

/// A code as the OpenAPI document states it ([`validate_code`] also trims and upper-cases
/// what a person typed; the pattern takes either case).
pub const CODE_PATTERN: &str = "^[A-Za-z0-9_-]{3,32}$";

/// The schema of a promotion code in a request.
pub fn code_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(CODE_PATTERN))
        .description(Some(
            "3 to 32 letters, digits, hyphens or underscores; stored upper-cased.",
        ))
        .examples(["SUMMER-26"])
        .build()
}

/// What a promotion takes off a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum PromoValue {
    /// A percentage off: more than 0, at most 100; "12.5" is 12.5 %.
    #[schema(value_type = String)]
    Percent(Decimal),
    /// An amount off, at most one per currency.
    Fixed(Vec<Money>),
}

impl PromoValue {
    /// Checks the value as an administrator enters it: a percentage in (0, 100]; fixed
    /// amounts positive, at least one, at most one per currency.
    pub fn validate(&self) -> Result<(), PromoError> {
        let invalid = |reason: String| Err(PromoError::InvalidValue { reason });
        match self {
            PromoValue::Percent(percent) => {
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    return invalid(format!(
                        "a percentage must be more than 0 and at most 100, not {percent}"
                    ));
                }
            }
            PromoValue::Fixed(amounts) => {
                if amounts.is_empty() {
                    return invalid(
                        "a fixed discount needs an amount in at least one currency".into(),
                    );
                }
                for (index, amount) in amounts.iter().enumerate() {
                    if !amount.is_positive() {
                        return invalid(format!(
                            "a fixed discount must be more than zero, not {amount}"
                        ));
                    }
                    if amounts[..index]
                        .iter()
                        .any(|earlier| earlier.currency() == amount.currency())
                    {
                        return invalid(format!(
                            "a fixed discount can have only one amount in {}",
                            amount.currency()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A promotion code and its conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// The code clients type, in canonical form (see [`validate_code`]).
    #[schema(example = "SUMMER-26")]
    pub code: String,
    pub value: PromoValue,
    /// `true`: every period; `false`: the first period only.
    pub recurring: bool,
    /// The first day the code works; `None`: from the start.
    #[serde(default)]
    pub starts_on: Option<NaiveDate>,
    /// The last day the code works (inclusive); `None`: for ever.
    #[serde(default)]
    pub ends_on: Option<NaiveDate>,
    /// How many times the code may be used in all; `None`: no limit.
    #[serde(default)]
    pub max_uses: Option<u32>,
    /// How many times one client may use the code; `None`: no limit.
    #[serde(default)]
    pub max_uses_per_client: Option<u32>,
    /// The products it applies to; empty: all.
    #[serde(default)]
    pub products: Vec<ProductId>,
    /// The billing cycles it applies to; empty: all.
    #[serde(default)]
    pub cycles: Vec<BillingCycle>,
}

/// How often a code has been used so far: in all, and by the client asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct PromoUsage {
    pub total: u32,
    pub by_client: u32,
}

/// Why a promotion code cannot be used, or its value is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoError {
    #[error("promotion code {promo} starts on {starts_on}")]
    NotStarted { promo: String, starts_on: NaiveDate },
    #[error("promotion code {promo} ended on {ended_on}")]
    Expired { promo: String, ended_on: NaiveDate },
    #[error("promotion code {promo} has reached its limit of {}", uses(*.max_uses))]
    Exhausted { promo: String, max_uses: u32 },
    #[error(
        "promotion code {promo} can be used only {} per client, and this client already has",
        times(*.max_uses)
    )]
    ExhaustedForClient { promo: String, max_uses: u32 },
    #[error("promotion code {promo} does not apply to this product")]
    NotApplicableProduct { promo: String },
    #[error("promotion code {promo} does not apply to {} billing", cycle_label(*.cycle))]
    NotApplicableCycle { promo: String, cycle: BillingCycle },
    #[error("{} has no discount amount in {currency}", promotion_name(.promo))]
    NoAmountForCurrency {
        /// The code, when known (not when only a value was given).
        promo: Option<String>,
        currency: Currency,
    },
    #[error("the promotion's value is not valid: {reason}")]
    InvalidValue { reason: String },
    #[error(
        "{0:?} is not a valid promotion code; use 3 to 32 letters, digits, hyphens or \
         underscores, like SUMMER-26"
    )]
    InvalidCode(String),
    #[error("a discount can only be taken off a line of zero or more, not {0}")]
    NegativeAmount(Money),
}

impl PromoError {
    /// A stable snake_case name for the variant, for API error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PromoError::NotStarted { .. } => "promo_not_started",
            PromoError::Expired { .. } => "promo_expired",
            PromoError::Exhausted { .. } => "promo_exhausted",
            PromoError::ExhaustedForClient { .. } => "promo_exhausted_for_client",
            PromoError::NotApplicableProduct { .. } => "promo_not_applicable_product",
            PromoError::NotApplicableCycle { .. } => "promo_not_applicable_cycle",
            PromoError::NoAmountForCurrency { .. } => "promo_no_amount_for_currency",
            PromoError::InvalidValue { .. } => "invalid_promo_value",
            PromoError::InvalidCode(_) => "invalid_promo_code",
            PromoError::NegativeAmount(_) => "negative_line_amount",
        }
    }
}

fn uses(count: u32) -> String {
    if count == 1 {
        "1 use".to_owned()
    } else {
        format!("{count} uses")
    }
}

fn times(count: u32) -> String {
    if count == 1 {
        "once".to_owned()
    } else {
        format!("{count} times")
    }
}

fn cycle_label(cycle: BillingCycle) -> &'static str {
    match cycle {
        BillingCycle::Monthly => "monthly",
        BillingCycle::Quarterly => "quarterly",
        BillingCycle::SemiAnnually => "semi-annual",
        BillingCycle::Annually => "annual",
        BillingCycle::Biennially => "biennial",
        BillingCycle::Triennially => "triennial",
        BillingCycle::OneTime => "one-time",
        BillingCycle::Free => "free",
    }
}

fn promotion_name(promo: &Option<String>) -> String {
    match promo {
        Some(code) => format!("promotion code {code}"),
        None => "the promotion".to_owned(),
    }
}

/// Whether the code may be used today for this product, cycle and currency. The checks
/// and their order are in the module docs.
pub fn check(
    promo: &Promotion,
    today: NaiveDate,
    usage: PromoUsage,
    product: ProductId,
    cycle: BillingCycle,
    currency: Currency,
) -> Result<(), PromoError> {
    promo.value.validate()?;
    let code = || promo.code.clone();
    if let Some(starts_on) = promo.starts_on.filter(|starts_on| today < *starts_on) {
        return Err(PromoError::NotStarted {
            promo: code(),
            starts_on,
        });
    }
    if let Some(ended_on) = promo.ends_on.filter(|ends_on| today > *ends_on) {
        return Err(PromoError::Expired {
            promo: code(),
            ended_on,
        });
    }
    if let Some(max_uses) = promo.max_uses.filter(|max| usage.total >= *max) {
        return Err(PromoError::Exhausted {
            promo: code(),
            max_uses,
        });
    }
    if let Some(max_uses) = promo
        .max_uses_per_client
        .filter(|max| usage.by_client >= *max)
    {
        return Err(PromoError::ExhaustedForClient {
            promo: code(),
            max_uses,
        });
    }
    if !promo.products.is_empty() && !promo.products.contains(&product) {
        return Err(PromoError::NotApplicableProduct { promo: code() });
    }
    if !promo.cycles.is_empty() && !promo.cycles.contains(&cycle) {
        return Err(PromoError::NotApplicableCycle {
            promo: code(),
            cycle,
        });
    }
    if let PromoValue::Fixed(amounts) = &promo.value
        && !amounts.iter().any(|amount| amount.currency() == currency)
    {
        return Err(PromoError::NoAmountForCurrency {
            promo: Some(code()),
            currency,
        });
    }
    Ok(())
}

/// The discount on a line of `amount` (>= 0): percent rounded half away from zero;
/// fixed in the line's currency, never more than the amount. Returns a non-negative
/// Money to subtract.
pub fn discount(value: &PromoValue, amount: Money) -> Result<Money, PromoError> {
    if amount.is_negative() {
        return Err(PromoError::NegativeAmount(amount));
    }
    value.validate()?;
    let off = match value {
        PromoValue::Percent(percent) => {
            // 0 < percent ≤ 100, so the product is at most the amount and cannot
            // overflow; mul_decimal rounds once, half away from zero.
            amount
                .mul_decimal(*percent / Decimal::ONE_HUNDRED)
                .map_err(|_| PromoError::InvalidValue {
                    reason: format!("{percent} % cannot be applied to {amount}"),
                })?
        }
        PromoValue::Fixed(amounts) => amounts
            .iter()
            .find(|fixed| fixed.currency() == amount.currency())
            .copied()
            .ok_or(PromoError::NoAmountForCurrency {
                promo: None,
                currency: amount.currency(),
            })?,
    };
    Ok(Money::new(
        off.minor().min(amount.minor()),
        amount.currency(),
    ))
}

/// The canonical form of a code as a person typed it: trimmed, upper-cased, then 3 to
/// 32 characters of A-Z, 0-9, `-` and `_`.
pub fn validate_code(code: &str) -> Result<String, PromoError> {
    let canonical = code.trim().to_ascii_uppercase();
    let allowed = |byte: u8| {
        byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
    };
    if CODE_LENGTH.contains(&canonical.len()) && canonical.bytes().all(allowed) {
        Ok(canonical)
    } else {
        Err(PromoError::InvalidCode(shown(code.trim())))
    }
}

/// At most 40 characters of what a person typed, for an error message.
fn shown(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl fmt::Display for PromoValue {
    /// "12.5 %" or "5.00 USD / 500 JPY".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromoValue::Percent(percent) => write!(f, "{percent} %"),
            PromoValue::Fixed(amounts) => {
                for (index, amount) in amounts.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" / ")?;
                    }
                    write!(f, "{amount}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    const USD: Currency = Currency::USD;
    const JPY: Currency = Currency::JPY;
    const BHD: Currency = Currency::BHD;
    const EUR: Currency = Currency::EUR;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| panic!("bad date {text}"))
    }

    fn fixed() -> PromoValue {
        PromoValue::Fixed(vec![Money::new(500, USD), Money::new(500, JPY)])
    }

    #[test]
    fn discounts_are_as_the_table_says() {
        // (name, value, line amount, expected discount in minor units or error code)
        let rows: Vec<(&str, PromoValue, Money, Result<i64, &str>)> = vec![
            (
                "10% of 19.99 (1.999)",
                PromoValue::Percent(dec!(10)),
                Money::new(1999, USD),
                Ok(200),
            ),
            (
                "12.5% of 10.00",
                PromoValue::Percent(dec!(12.5)),
                Money::new(1000, USD),
                Ok(125),
            ),
            (
                "half a cent rounds up (1.515)",
                PromoValue::Percent(dec!(15)),
                Money::new(1010, USD),
                Ok(152),
            ),
            (
                "33.33% of 100 JPY",
                PromoValue::Percent(dec!(33.33)),
                Money::new(100, JPY),
                Ok(33),
            ),
            (
                "half a yen rounds up",
                PromoValue::Percent(dec!(50)),
                Money::new(1, JPY),
                Ok(1),
            ),
            (
                "12.5% of 1.001 BHD (125.125 fils)",
                PromoValue::Percent(dec!(12.5)),
                Money::new(1001, BHD),
                Ok(125),
            ),
            (
                "BHD half a fils rounds up (0.0005)",
                PromoValue::Percent(dec!(50)),
                Money::new(1, BHD),
                Ok(1),
            ),
            (
                "100% is the whole line",
                PromoValue::Percent(dec!(100)),
                Money::new(1234, USD),
                Ok(1234),
            ),
            (
                "a free line",
                PromoValue::Percent(dec!(10)),
                Money::new(0, USD),
                Ok(0),
            ),
            (
                "fixed in the line's currency",
                fixed(),
                Money::new(1999, USD),
                Ok(500),
            ),
            (
                "fixed is capped at the line",
                fixed(),
                Money::new(300, USD),
                Ok(300),
            ),
            ("fixed in JPY", fixed(), Money::new(1000, JPY), Ok(500)),
            (
                "fixed without the line's currency",
                fixed(),
                Money::new(1000, EUR),
                Err("promo_no_amount_for_currency"),
            ),
            (
                "0%",
                PromoValue::Percent(dec!(0)),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "over 100%",
                PromoValue::Percent(dec!(100.01)),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "negative percent",
                PromoValue::Percent(dec!(-5)),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "no fixed amounts",
                PromoValue::Fixed(vec![]),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "a zero fixed amount",
                PromoValue::Fixed(vec![Money::new(0, USD)]),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "a negative fixed amount",
                PromoValue::Fixed(vec![Money::new(-1, USD)]),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "two amounts in one currency",
                PromoValue::Fixed(vec![Money::new(1, USD), Money::new(2, USD)]),
                Money::new(1000, USD),
                Err("invalid_promo_value"),
            ),
            (
                "a negative line",
                PromoValue::Percent(dec!(10)),
                Money::new(-1000, USD),
                Err("negative_line_amount"),
            ),
        ];
        for (name, value, amount, expected) in rows {
            let actual = discount(&value, amount);
            match expected {
                Ok(minor) => assert_eq!(
                    actual,
                    Ok(Money::new(minor, amount.currency())),
                    "case {name:?}"
                ),
                Err(code) => assert_eq!(
                    actual.map_err(|error| error.code()),
                    Err(code),
                    "case {name:?}"
                ),
            }
        }
    }

    fn summer() -> Promotion {
        Promotion {
            code: "SUMMER".to_owned(),
            value: PromoValue::Percent(dec!(10)),
            recurring: false,
            starts_on: Some(date("2026-06-01")),
            ends_on: Some(date("2026-08-31")),
            max_uses: Some(100),
            max_uses_per_client: Some(1),
            products: vec![ProductId(1), ProductId(2)],
            cycles: vec![BillingCycle::Monthly, BillingCycle::Annually],
        }
    }

    struct Use {
        name: &'static str,
        change: fn(&mut Promotion),
        today: &'static str,
        usage: (u32, u32),
        product: i64,
        cycle: BillingCycle,
        currency: Currency,
        /// `None`: may be used; `Some((code, message))`.
        expected: Option<(&'static str, &'static str)>,
    }

    fn unchanged(_: &mut Promotion) {}

    const MONTHLY: BillingCycle = BillingCycle::Monthly;

    #[rustfmt::skip]
    const USES: &[Use] = &[
        Use { name: "in the middle of its dates", change: unchanged, today: "2026-07-15", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: None },
        Use { name: "on the first day", change: unchanged, today: "2026-06-01", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: None },
        Use { name: "on the last day (inclusive)", change: unchanged, today: "2026-08-31", usage: (99, 0), product: 2, cycle: BillingCycle::Annually, currency: JPY, expected: None },
        Use { name: "the day before it starts", change: unchanged, today: "2026-05-31", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: Some(("promo_not_started", "promotion code SUMMER starts on 2026-06-01")) },
        Use { name: "the day after it ends", change: unchanged, today: "2026-09-01", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: Some(("promo_expired", "promotion code SUMMER ended on 2026-08-31")) },
        Use { name: "used up", change: unchanged, today: "2026-07-15", usage: (100, 0), product: 1, cycle: MONTHLY, currency: USD, expected: Some(("promo_exhausted", "promotion code SUMMER has reached its limit of 100 uses")) },
        Use { name: "a limit of zero", change: |p| p.max_uses = Some(0), today: "2026-07-15", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: Some(("promo_exhausted", "promotion code SUMMER has reached its limit of 0 uses")) },
        Use { name: "used up by this client", change: unchanged, today: "2026-07-15", usage: (5, 1), product: 1, cycle: MONTHLY, currency: USD, expected: Some(("promo_exhausted_for_client", "promotion code SUMMER can be used only once per client, and this client already has")) },
        Use { name: "another product", change: unchanged, today: "2026-07-15", usage: (0, 0), product: 3, cycle: MONTHLY, currency: USD, expected: Some(("promo_not_applicable_product", "promotion code SUMMER does not apply to this product")) },
        Use { name: "another cycle", change: unchanged, today: "2026-07-15", usage: (0, 0), product: 1, cycle: BillingCycle::SemiAnnually, currency: USD, expected: Some(("promo_not_applicable_cycle", "promotion code SUMMER does not apply to semi-annual billing")) },
        Use { name: "fixed without the currency", change: |p| p.value = PromoValue::Fixed(vec![Money::new(500, USD)]), today: "2026-07-15", usage: (0, 0), product: 1, cycle: MONTHLY, currency: EUR, expected: Some(("promo_no_amount_for_currency", "promotion code SUMMER has no discount amount in EUR")) },
        Use { name: "fixed with the currency", change: |p| p.value = PromoValue::Fixed(vec![Money::new(500, USD)]), today: "2026-07-15", usage: (0, 0), product: 1, cycle: MONTHLY, currency: USD, expected: None },
        Use { name: "a broken value is refused first", change: |p| p.value = PromoValue::Percent(dec!(0)), today: "2030-01-01", usage: (0, 0), product: 9, cycle: MONTHLY, currency: USD, expected: Some(("invalid_promo_value", "the promotion's value is not valid: a percentage must be more than 0 and at most 100, not 0")) },
        Use { name: "expired beats used up", change: unchanged, today: "2026-09-01", usage: (100, 1), product: 3, cycle: BillingCycle::Quarterly, currency: USD, expected: Some(("promo_expired", "promotion code SUMMER ended on 2026-08-31")) },
        Use { name: "no limits: any product, cycle and day", change: |p| { p.starts_on = None; p.ends_on = None; p.max_uses = None; p.max_uses_per_client = None; p.products.clear(); p.cycles.clear(); }, today: "1999-01-01", usage: (u32::MAX, u32::MAX), product: 42, cycle: BillingCycle::OneTime, currency: BHD, expected: None },
    ];

    #[test]
    fn codes_may_be_used_as_the_table_says() {
        for case in USES {
            let mut promo = summer();
            (case.change)(&mut promo);
            let usage = PromoUsage {
                total: case.usage.0,
                by_client: case.usage.1,
            };
            let result = check(
                &promo,
                date(case.today),
                usage,
                ProductId(case.product),
                case.cycle,
                case.currency,
            );
            let actual = result
                .as_ref()
                .err()
                .map(|error| (error.code(), error.to_string()));
            let expected = case
                .expected
                .map(|(code, message)| (code, message.to_owned()));
            assert_eq!(actual, expected, "case {:?}", case.name);
        }
    }

    #[test]
    fn codes_are_trimmed_upper_cased_and_checked() {
        // (typed, expected canonical code or None when refused)
        let rows = [
            (" summer-2026 ", Some("SUMMER-2026")),
            ("a_b", Some("A_B")),
            ("Abc", Some("ABC")),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ-01234",
                Some("ABCDEFGHIJKLMNOPQRSTUVWXYZ-01234"),
            ),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZ-012345", None),
            ("ab", None),
            ("", None),
            ("   ", None),
            ("SUMMER 26", None),
            ("SUMMER!", None),
            ("ÉTÉ2026", None),
            ("straße", None),
        ];
        for (typed, expected) in rows {
            let result = validate_code(typed);
            assert_eq!(result.as_deref().ok(), expected, "code {typed:?}");
            if let Err(error) = result {
                assert_eq!(error.code(), "invalid_promo_code");
                assert!(error.to_string().contains("3 to 32"), "{error}");
            }
        }
        assert_eq!(
            validate_code(" SUMMER 26 ").unwrap_err().to_string(),
            "\"SUMMER 26\" is not a valid promotion code; use 3 to 32 letters, digits, \
             hyphens or underscores, like SUMMER-26"
        );
    }

    #[test]
    fn a_promotion_serializes_with_a_tagged_value() {
        let json = serde_json::to_value(summer()).unwrap();
        assert_eq!(
            json["value"],
            serde_json::json!({"kind": "percent", "value": "10"})
        );
        assert_eq!(json["products"], serde_json::json!([1, 2]));
        assert_eq!(json["cycles"], serde_json::json!(["monthly", "annually"]));
        assert_eq!(json["ends_on"], "2026-08-31");
        let back: Promotion = serde_json::from_value(json).unwrap();
        assert_eq!(back, summer());

        let minimal: Promotion = serde_json::from_value(serde_json::json!({
            "code": "WELCOME",
            "value": {"kind": "fixed", "value": [{"amount_minor": 500, "currency": "USD"}]},
            "recurring": true
        }))
        .unwrap();
        assert_eq!(minimal.value, PromoValue::Fixed(vec![Money::new(500, USD)]));
        assert!(minimal.products.is_empty() && minimal.cycles.is_empty());
        assert_eq!(minimal.max_uses, None);
        assert_eq!(fixed().to_string(), "5.00 USD / 500 JPY");
        assert_eq!(PromoValue::Percent(dec!(12.5)).to_string(), "12.5 %");

        use utoipa::PartialSchema;
        let schema = serde_json::to_value(PromoValue::schema()).unwrap();
        assert_eq!(
            schema["oneOf"][0]["properties"]["kind"]["enum"][0],
            "percent"
        );
        assert_eq!(schema["oneOf"][0]["properties"]["value"]["type"], "string");
        assert_eq!(schema["oneOf"][1]["properties"]["kind"]["enum"][0], "fixed");
    }

    proptest! {
        #[test]
        fn a_percent_discount_is_the_nearest_unit_and_never_more_than_the_line(
            amount in 0i64..=i64::MAX / 2,
            hundredths in 1i64..=10_000,
        ) {
            let percent = Decimal::new(hundredths, 2);
            let off = discount(&PromoValue::Percent(percent), Money::new(amount, USD)).unwrap().minor();
            prop_assert!((0..=amount).contains(&off));
            // |off − amount × percent / 100| ≤ 1/2, in whole numbers.
            let error = i128::from(off) * 10_000 - i128::from(amount) * i128::from(hundredths);
            prop_assert!(2 * error.abs() <= 10_000, "{}% of {}: {}", percent, amount, off);
        }

        #[test]
        fn a_fixed_discount_is_the_smaller_of_the_value_and_the_line(
            amount in 0i64..1_000_000,
            value in 1i64..1_000_000,
        ) {
            let promo = PromoValue::Fixed(vec![Money::new(value, JPY), Money::new(value + 1, USD)]);
            prop_assert_eq!(discount(&promo, Money::new(amount, JPY)), Ok(Money::new(value.min(amount), JPY)));
        }

        #[test]
        fn a_canonical_code_is_its_own_canonical_form(typed in "[ a-zA-Z0-9_!é-]{0,40}") {
            if let Ok(code) = validate_code(&typed) {
                prop_assert_eq!(validate_code(&code), Ok(code.clone()));
                prop_assert!(CODE_LENGTH.contains(&code.len()));
            }
        }
    }
}
