//! Taxes: which rules apply to a client ([`applicable`]) and the tax of one invoice line
//! ([`tax_line`]).
//!
//! The same rules with more worked examples are in `docs/billing.md`.
//!
//! # Choosing the rules
//!
//! A [`TaxRule`] names a place (a country, or `"*"` for any country, and optionally a
//! region of that country), a level (first or second) and a rate in percent. For each
//! level at most one rule applies, the most specific one that matches the client's
//! address:
//!
//! 1. a rule for the client's country *and* region,
//! 2. else a rule for the client's country with no region (the whole country),
//! 3. else a rule for `"*"` with no region (anywhere).
//!
//! Countries and regions compare case-insensitively and ignore surrounding spaces; an
//! empty region is no region. A rule with a region never matches a client without one,
//! and a `"*"` rule with a region never matches at all ([`TaxRule::validate`] refuses
//! it). When two rules of one level are equally specific, the earlier one in the list
//! wins.
//!
//! # Taxing a line
//!
//! The amount given to [`tax_line`] is the line amount *after* discount: the net when
//! prices are entered without tax ([`TaxMode::Exclusive`]), the gross when they include
//! it ([`TaxMode::Inclusive`]). Rates `r1` (first level) and `r2` (second level) are
//! percentages; a missing level counts as 0 %. Every rounding is to a whole minor unit,
//! half away from zero, computed exactly from the integer amount and the rate (no
//! intermediate rounding), as in `docs/money.md`.
//!
//! ```text
//! Exclusive   net   = amount
//!             tax1  = round(net × r1/100)
//!             tax2  = round(base2 × r2/100)   base2 = net + tax1 if compound, else net
//!             gross = net + tax1 + tax2
//!
//! Inclusive   gross = amount
//!             f     = (1 + r1/100)(1 + r2/100)   if compound
//!                     1 + r1/100 + r2/100        otherwise
//!             net   = round(gross / f)
//!             tax1  = min(round(net × r1/100), gross − net)   if a second level exists
//!                     gross − net                             otherwise
//!             tax2  = gross − net − tax1   (the remainder)
//! ```
//!
//! So `net + tax1 + tax2 == gross` always, to the minor unit. The cap on the inclusive
//! `tax1` matters only for tiny amounts (a 0.01 line taxed 50 % + 0.0001 %), where
//! rounding the net and the first tax up separately would leave a negative second tax;
//! capped, each tax has the sign of the line.
//!
//! - **Compound** is read from the second level only: a compound second tax is charged on
//!   the net plus the first tax (Quebec's QST before 2013, some Brazilian and Indian
//!   taxes). A compound flag on the first level is ignored.
//! - **Exempt clients** pay no tax. With exclusive prices they pay the amount; with
//!   inclusive prices they pay only the net part: `net = round(gross / f)`, `gross = net`.
//! - **Negative amounts** (credit and discount lines) are taxed symmetrically: the tax of
//!   `-x` is exactly minus the tax of `x`.
//! - **Rates** must lie in `0..=100` and have at most [`MAX_RATE_DECIMALS`] decimal
//!   places (after trailing zeros are dropped), else [`TaxError::InvalidRate`]
//!   (`invalid_tax_rate`). The limit keeps every intermediate product exact in `i128`
//!   for any `i64` amount; real rates have two or three decimals (8.875 %).
//!
//! Worked examples (amounts in minor units):
//!
//! | currency | mode | amount | r1 | r2 | net | tax1 | tax2 | gross |
//! |---|---|---:|---:|---:|---:|---:|---:|---:|
//! | USD | exclusive | 1010 | 15 | – | 1010 | 152 (151.5) | 0 | 1162 |
//! | JPY | exclusive | 999 | 10 | – | 999 | 100 (99.9) | 0 | 1099 |
//! | BHD | exclusive | 12345 | 10 | – | 12345 | 1235 (1234.5) | 0 | 13580 |
//! | USD | exclusive | 10000 | 5 | 8.5 compound | 10000 | 500 | 893 (892.5) | 11393 |
//! | USD | inclusive | 1000 | 15 | – | 870 | 130 | 0 | 1000 |
//! | USD | inclusive | 1000 | 5 | 7 | 893 | 45 | 62 | 1000 |
//! | USD | inclusive | 1000 | 5 | 8.5 compound | 878 | 44 | 78 | 1000 |
//! | USD | inclusive, exempt | 1150 | 15 | – | 1000 | 0 | 0 | 1000 |

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::money::Money;

/// The most decimal places a tax rate may have (after trailing zeros are dropped).
pub const MAX_RATE_DECIMALS: u32 = 6;

/// A tax rate as the OpenAPI document states it: a percent from 0 to 100 with at most
/// [`MAX_RATE_DECIMALS`] decimals (trailing zeros aside), every match one
/// [`TaxRule::validate`] accepts.
pub const RATE_PATTERN: &str = r"^(?:100(?:\.0{1,10})?|[0-9]{1,2}(?:\.[0-9]{1,6}0{0,10})?)$";

/// Whether prices are entered without tax (tax is added on top) or with tax included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    /// Prices are net; tax is added: 10.00 + 15 % = 11.50.
    Exclusive,
    /// Prices are gross; tax is the part inside them: 11.50 holds 1.50 of 15 % tax.
    Inclusive,
}

/// The level a tax rule applies at; a line carries at most one tax per level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxLevel {
    First,
    Second,
}

/// A tax rule as configured by the host: where it applies, at which level, at what rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRule {
    /// The name printed on invoices, e.g. "VAT" or "GST".
    #[schema(example = "VAT")]
    pub name: String,
    /// ISO 3166-1 alpha-2 country code, or `"*"` for any country.
    #[schema(example = "ZW")]
    pub country: String,
    /// A region (state, province) of the country; `None` for the whole country.
    #[serde(default)]
    pub region: Option<String>,
    pub level: TaxLevel,
    /// The rate in percent: "15" is 15 %. From 0 to 100, at most 6 decimal places.
    #[schema(value_type = String, example = "15")]
    pub rate: Decimal,
    /// Second level only: the tax is charged on the net plus the first-level tax.
    #[serde(default)]
    pub compound: bool,
}

impl TaxRule {
    /// Checks a rule as an administrator enters it: a name, a country that is `"*"` or
    /// two ASCII letters, no region on a `"*"` rule, and a valid rate.
    pub fn validate(&self) -> Result<(), TaxError> {
        let invalid = |reason: &'static str| TaxError::InvalidRule {
            name: self.name.clone(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("a tax rule needs a name"));
        }
        let country = self.country.trim();
        let is_alpha2 = country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic());
        if country != "*" && !is_alpha2 {
            return Err(invalid(
                "the country must be an ISO 3166-1 alpha-2 code such as ZW, or * for any country",
            ));
        }
        if country == "*" && normalized_region(self.region.as_deref()).is_some() {
            return Err(invalid(
                "a rule for any country (*) cannot name a region; name the country too",
            ));
        }
        Rate::new(&self.name, self.rate).map(|_| ())
    }
}

/// One tax chosen for a line: its printed name, its rate in percent, and whether it is
/// charged on the net plus the first tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppliedRate {
    #[schema(example = "VAT")]
    pub name: String,
    #[schema(value_type = String, example = "15")]
    pub rate: Decimal,
    pub compound: bool,
}

/// The taxes of a line: at most one per level.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Taxes {
    pub first: Option<AppliedRate>,
    pub second: Option<AppliedRate>,
}

impl Taxes {
    /// No tax at all.
    pub fn none() -> Taxes {
        Taxes {
            first: None,
            second: None,
        }
    }

    /// Whether no level carries a tax.
    pub fn is_none(&self) -> bool {
        self.first.is_none() && self.second.is_none()
    }
}

/// The parts of a taxed line: `net + tax1 + tax2 == gross`, all in the line's currency
/// and all with the line's sign (or zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineTax {
    pub net: Money,
    pub tax1: Money,
    pub tax2: Money,
    pub gross: Money,
}

/// Why a tax could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    /// A rate is below 0, above 100, or has more than [`MAX_RATE_DECIMALS`] decimals.
    #[error(
        "the rate {rate} % of the tax {name:?} is not valid; a tax rate is a percentage \
         from 0 to 100 with at most 6 decimal places"
    )]
    InvalidRate { name: String, rate: Decimal },
    /// A tax rule does not make sense (see [`TaxRule::validate`]).
    #[error("the tax rule {name:?} is not valid: {reason}")]
    InvalidRule { name: String, reason: &'static str },
    /// The taxed amount does not fit a signed 64-bit count of minor units.
    #[error("the taxed amount is too large to represent")]
    Overflow,
}

impl TaxError {
    /// A stable snake_case name for the variant, for API error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            TaxError::InvalidRate { .. } => "invalid_tax_rate",
            TaxError::InvalidRule { .. } => "invalid_tax_rule",
            TaxError::Overflow => "amount_overflow",
        }
    }
}

/// Picks at most one rule per level: a rule for (country, region) beats one for
/// (country, None), which beats ("*", None). Region comparison is case-insensitive,
/// country too. Equally specific rules: the first in `rules` wins.
pub fn applicable(rules: &[TaxRule], country: &str, region: Option<&str>) -> Taxes {
    let region = normalized_region(region);
    let pick = |level: TaxLevel| {
        let mut best: Option<(u8, &TaxRule)> = None;
        for rule in rules.iter().filter(|rule| rule.level == level) {
            let Some(rank) = match_rank(rule, country, region) else {
                continue;
            };
            if best.is_none_or(|(best_rank, _)| rank > best_rank) {
                best = Some((rank, rule));
            }
        }
        best.map(|(_, rule)| AppliedRate {
            name: rule.name.clone(),
            rate: rule.rate,
            // A compound flag on the first level means nothing.
            compound: level == TaxLevel::Second && rule.compound,
        })
    };
    Taxes {
        first: pick(TaxLevel::First),
        second: pick(TaxLevel::Second),
    }
}

/// How specifically `rule` matches the place: 3 country and region, 2 whole country,
/// 1 any country; `None` when it does not match.
fn match_rank(rule: &TaxRule, country: &str, region: Option<&str>) -> Option<u8> {
    let rule_country = rule.country.trim();
    let rule_region = normalized_region(rule.region.as_deref());
    if rule_country == "*" {
        return rule_region.is_none().then_some(1);
    }
    if !rule_country.eq_ignore_ascii_case(country.trim()) {
        return None;
    }
    match rule_region {
        None => Some(2),
        Some(wanted) => region
            .is_some_and(|given| given.to_lowercase() == wanted.to_lowercase())
            .then_some(3),
    }
}

/// A region trimmed, with an empty one treated as none.
fn normalized_region(region: Option<&str>) -> Option<&str> {
    region.map(str::trim).filter(|region| !region.is_empty())
}

/// amount is the line amount AFTER discount (net when Exclusive, gross when Inclusive).
/// exempt: the client is tax exempt. See the module docs for the rules.
pub fn tax_line(
    amount: Money,
    mode: TaxMode,
    taxes: &Taxes,
    exempt: bool,
) -> Result<LineTax, TaxError> {
    let first = taxes
        .first
        .as_ref()
        .map(|applied| Rate::new(&applied.name, applied.rate))
        .transpose()?;
    let second = taxes
        .second
        .as_ref()
        .map(|applied| Rate::new(&applied.name, applied.rate))
        .transpose()?;
    let compound = taxes
        .second
        .as_ref()
        .is_some_and(|applied| applied.compound);

    // Work on the magnitude and give the sign back at the end: the tax of -x is -(tax of x).
    let magnitude = i128::from(amount.minor()).abs();
    let parts = match mode {
        TaxMode::Exclusive => exclusive(magnitude, first, second, compound, exempt),
        TaxMode::Inclusive => inclusive(magnitude, first, second, compound, exempt),
    };
    debug_assert_eq!(parts.net + parts.tax1 + parts.tax2, parts.gross);
    let sign = if amount.is_negative() { -1 } else { 1 };
    let money = |magnitude: i128| {
        i64::try_from(sign * magnitude)
            .map(|minor| Money::new(minor, amount.currency()))
            .map_err(|_| TaxError::Overflow)
    };
    Ok(LineTax {
        net: money(parts.net)?,
        tax1: money(parts.tax1)?,
        tax2: money(parts.tax2)?,
        gross: money(parts.gross)?,
    })
}

/// The four parts of a line as non-negative magnitudes in minor units.
struct Parts {
    net: i128,
    tax1: i128,
    tax2: i128,
    gross: i128,
}

fn exclusive(
    net: i128,
    first: Option<Rate>,
    second: Option<Rate>,
    compound: bool,
    exempt: bool,
) -> Parts {
    if exempt {
        return Parts {
            net,
            tax1: 0,
            tax2: 0,
            gross: net,
        };
    }
    let first = first.unwrap_or(Rate::ZERO);
    let second = second.unwrap_or(Rate::ZERO);
    // net ≤ 2^63 and a rate's numerator ≤ 10^8, so every product fits i128.
    let tax1 = div_round(net * first.numerator, first.denominator);
    let base2 = if compound { net + tax1 } else { net };
    let tax2 = div_round(base2 * second.numerator, second.denominator);
    Parts {
        net,
        tax1,
        tax2,
        gross: net + tax1 + tax2,
    }
}

fn inclusive(
    gross: i128,
    first: Option<Rate>,
    second: Option<Rate>,
    compound: bool,
    exempt: bool,
) -> Parts {
    let has_second = second.is_some();
    let first = first.unwrap_or(Rate::ZERO);
    let second = second.unwrap_or(Rate::ZERO);
    // f = factor_numerator / factor_denominator. Each rate is numerator / denominator
    // with denominator ≤ 10^8, so both parts stay below 10^17 and gross × denominator
    // below 10^36.
    let (factor_numerator, factor_denominator) = if compound {
        (
            (first.denominator + first.numerator) * (second.denominator + second.numerator),
            first.denominator * second.denominator,
        )
    } else {
        (
            first.denominator * second.denominator
                + first.numerator * second.denominator
                + second.numerator * first.denominator,
            first.denominator * second.denominator,
        )
    };
    let net = div_round(gross * factor_denominator, factor_numerator);
    if exempt {
        return Parts {
            net,
            tax1: 0,
            tax2: 0,
            gross: net,
        };
    }
    // f ≥ 1, so net ≤ gross and the total tax is never negative.
    let total_tax = gross - net;
    let tax1 = if has_second {
        div_round(net * first.numerator, first.denominator).min(total_tax)
    } else {
        total_tax
    };
    Parts {
        net,
        tax1,
        tax2: total_tax - tax1,
        gross,
    }
}

/// A validated rate as an exact fraction of one: `percent / 100 = numerator / denominator`.
#[derive(Clone, Copy)]
struct Rate {
    numerator: i128,
    denominator: i128,
}

impl Rate {
    const ZERO: Rate = Rate {
        numerator: 0,
        denominator: 1,
    };

    fn new(name: &str, percent: Decimal) -> Result<Rate, TaxError> {
        let normalized = percent.normalize();
        if (normalized.is_sign_negative() && !normalized.is_zero())
            || normalized > Decimal::ONE_HUNDRED
            || normalized.scale() > MAX_RATE_DECIMALS
        {
            return Err(TaxError::InvalidRate {
                name: name.to_owned(),
                rate: percent,
            });
        }
        // mantissa / 10^scale percent = mantissa / (100 × 10^scale); ≤ 10^8 each.
        Ok(Rate {
            numerator: normalized.mantissa(),
            denominator: 100 * 10_i128.pow(normalized.scale()),
        })
    }
}

/// `numerator / denominator` rounded half away from zero, for `numerator >= 0` and
/// `denominator > 0`.
fn div_round(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(numerator >= 0 && denominator > 0);
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder * 2 >= denominator {
        quotient + 1
    } else {
        quotient
    }
}

impl fmt::Display for TaxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaxMode::Exclusive => "exclusive",
            TaxMode::Inclusive => "inclusive",
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::currency::Currency;

    fn rate(name: &str, percent: Decimal, compound: bool) -> AppliedRate {
        AppliedRate {
            name: name.to_owned(),
            rate: percent,
            compound,
        }
    }

    fn taxes(first: Option<Decimal>, second: Option<(Decimal, bool)>) -> Taxes {
        Taxes {
            first: first.map(|percent| rate("T1", percent, false)),
            second: second.map(|(percent, compound)| rate("T2", percent, compound)),
        }
    }

    struct Case {
        name: &'static str,
        currency: Currency,
        amount: i64,
        mode: TaxMode,
        first: Option<Decimal>,
        /// (rate, compound)
        second: Option<(Decimal, bool)>,
        exempt: bool,
        /// (net, tax1, tax2, gross) in minor units.
        expected: (i64, i64, i64, i64),
    }

    const E: TaxMode = TaxMode::Exclusive;
    const I: TaxMode = TaxMode::Inclusive;
    const USD: Currency = Currency::USD;
    const JPY: Currency = Currency::JPY;
    const BHD: Currency = Currency::BHD;

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // Exclusive, one level.
        Case { name: "15% on 10.00", currency: USD, amount: 1000, mode: E, first: Some(dec!(15)), second: None, exempt: false, expected: (1000, 150, 0, 1150) },
        Case { name: "half a cent rounds up (151.5)", currency: USD, amount: 1010, mode: E, first: Some(dec!(15)), second: None, exempt: false, expected: (1010, 152, 0, 1162) },
        Case { name: "half a cent rounds away from zero on a credit", currency: USD, amount: -1010, mode: E, first: Some(dec!(15)), second: None, exempt: false, expected: (-1010, -152, 0, -1162) },
        Case { name: "8.875% (three decimals)", currency: USD, amount: 1999, mode: E, first: Some(dec!(8.875)), second: None, exempt: false, expected: (1999, 177, 0, 2176) },
        Case { name: "JPY 10% of 999 yen (99.9)", currency: JPY, amount: 999, mode: E, first: Some(dec!(10)), second: None, exempt: false, expected: (999, 100, 0, 1099) },
        Case { name: "JPY half a yen rounds up", currency: JPY, amount: 5, mode: E, first: Some(dec!(10)), second: None, exempt: false, expected: (5, 1, 0, 6) },
        Case { name: "BHD half a fils rounds up (1234.5)", currency: BHD, amount: 12345, mode: E, first: Some(dec!(10)), second: None, exempt: false, expected: (12345, 1235, 0, 13580) },
        Case { name: "0% is no tax", currency: USD, amount: 1000, mode: E, first: Some(dec!(0)), second: None, exempt: false, expected: (1000, 0, 0, 1000) },
        Case { name: "100% doubles", currency: USD, amount: 1000, mode: E, first: Some(dec!(100)), second: None, exempt: false, expected: (1000, 1000, 0, 2000) },
        Case { name: "no taxes at all", currency: USD, amount: 1234, mode: E, first: None, second: None, exempt: false, expected: (1234, 0, 0, 1234) },
        Case { name: "zero amount", currency: USD, amount: 0, mode: E, first: Some(dec!(15)), second: None, exempt: false, expected: (0, 0, 0, 0) },
        // Exclusive, two levels.
        Case { name: "5% + 7% side by side", currency: USD, amount: 10000, mode: E, first: Some(dec!(5)), second: Some((dec!(7), false)), exempt: false, expected: (10000, 500, 700, 11200) },
        Case { name: "5% + 8.5% compound (892.5)", currency: USD, amount: 10000, mode: E, first: Some(dec!(5)), second: Some((dec!(8.5), true)), exempt: false, expected: (10000, 500, 893, 11393) },
        Case { name: "20% + 10% compound", currency: USD, amount: 1000, mode: E, first: Some(dec!(20)), second: Some((dec!(10), true)), exempt: false, expected: (1000, 200, 120, 1320) },
        Case { name: "second level only", currency: USD, amount: 1000, mode: E, first: None, second: Some((dec!(7), false)), exempt: false, expected: (1000, 0, 70, 1070) },
        Case { name: "5% + 9.975% BHD", currency: BHD, amount: 10000, mode: E, first: Some(dec!(5)), second: Some((dec!(9.975), false)), exempt: false, expected: (10000, 500, 998, 11498) },
        // Inclusive, one level: tax1 is the remainder.
        Case { name: "inclusive 11.50 holds 1.50", currency: USD, amount: 1150, mode: I, first: Some(dec!(15)), second: None, exempt: false, expected: (1000, 150, 0, 1150) },
        Case { name: "inclusive 10.00 at 15%", currency: USD, amount: 1000, mode: I, first: Some(dec!(15)), second: None, exempt: false, expected: (870, 130, 0, 1000) },
        Case { name: "inclusive credit at 15%", currency: USD, amount: -1000, mode: I, first: Some(dec!(15)), second: None, exempt: false, expected: (-870, -130, 0, -1000) },
        Case { name: "inclusive 100% halves", currency: USD, amount: 1000, mode: I, first: Some(dec!(100)), second: None, exempt: false, expected: (500, 500, 0, 1000) },
        Case { name: "inclusive JPY 1000 at 10%", currency: JPY, amount: 1000, mode: I, first: Some(dec!(10)), second: None, exempt: false, expected: (909, 91, 0, 1000) },
        Case { name: "inclusive JPY 1100 at 10%", currency: JPY, amount: 1100, mode: I, first: Some(dec!(10)), second: None, exempt: false, expected: (1000, 100, 0, 1100) },
        Case { name: "inclusive BHD 1.000 at 10%", currency: BHD, amount: 1000, mode: I, first: Some(dec!(10)), second: None, exempt: false, expected: (909, 91, 0, 1000) },
        // Inclusive, two levels: tax2 is the remainder.
        Case { name: "inclusive 5% + 7% exact", currency: USD, amount: 11200, mode: I, first: Some(dec!(5)), second: Some((dec!(7), false)), exempt: false, expected: (10000, 500, 700, 11200) },
        Case { name: "inclusive 5% + 7% remainder", currency: USD, amount: 1000, mode: I, first: Some(dec!(5)), second: Some((dec!(7), false)), exempt: false, expected: (893, 45, 62, 1000) },
        Case { name: "inclusive 5% + 8.5% compound exact", currency: USD, amount: 11393, mode: I, first: Some(dec!(5)), second: Some((dec!(8.5), true)), exempt: false, expected: (10000, 500, 893, 11393) },
        Case { name: "inclusive 5% + 8.5% compound remainder", currency: USD, amount: 1000, mode: I, first: Some(dec!(5)), second: Some((dec!(8.5), true)), exempt: false, expected: (878, 44, 78, 1000) },
        Case { name: "inclusive 20% + 10% compound", currency: USD, amount: 1320, mode: I, first: Some(dec!(20)), second: Some((dec!(10), true)), exempt: false, expected: (1000, 200, 120, 1320) },
        Case { name: "inclusive 20% + 10% side by side", currency: USD, amount: 1000, mode: I, first: Some(dec!(20)), second: Some((dec!(10), false)), exempt: false, expected: (769, 154, 77, 1000) },
        Case { name: "inclusive BHD 5% + 9.975%", currency: BHD, amount: 10000, mode: I, first: Some(dec!(5)), second: Some((dec!(9.975), false)), exempt: false, expected: (8698, 435, 867, 10000) },
        Case { name: "inclusive second level only", currency: USD, amount: 1000, mode: I, first: None, second: Some((dec!(7), false)), exempt: false, expected: (935, 0, 65, 1000) },
        Case { name: "inclusive tiny line: tax1 capped at the total tax", currency: USD, amount: 1, mode: I, first: Some(dec!(50)), second: Some((dec!(0.0001), false)), exempt: false, expected: (1, 0, 0, 1) },
        // Exempt clients.
        Case { name: "exempt, exclusive: pays the amount", currency: USD, amount: 1000, mode: E, first: Some(dec!(15)), second: Some((dec!(7), true)), exempt: true, expected: (1000, 0, 0, 1000) },
        Case { name: "exempt, inclusive: pays the net part", currency: USD, amount: 1150, mode: I, first: Some(dec!(15)), second: None, exempt: true, expected: (1000, 0, 0, 1000) },
        Case { name: "exempt, inclusive, rounded net", currency: USD, amount: 1000, mode: I, first: Some(dec!(15)), second: None, exempt: true, expected: (870, 0, 0, 870) },
        Case { name: "exempt, inclusive, two levels compound", currency: USD, amount: 11393, mode: I, first: Some(dec!(5)), second: Some((dec!(8.5), true)), exempt: true, expected: (10000, 0, 0, 10000) },
        Case { name: "exempt, inclusive JPY credit", currency: JPY, amount: -1000, mode: I, first: Some(dec!(10)), second: None, exempt: true, expected: (-909, 0, 0, -909) },
    ];

    #[test]
    fn lines_are_taxed_as_the_table_says() {
        for case in CASES {
            let taxes = taxes(case.first, case.second);
            let amount = Money::new(case.amount, case.currency);
            let line = tax_line(amount, case.mode, &taxes, case.exempt)
                .unwrap_or_else(|error| panic!("case {:?}: {error}", case.name));
            let actual = (
                line.net.minor(),
                line.tax1.minor(),
                line.tax2.minor(),
                line.gross.minor(),
            );
            assert_eq!(actual, case.expected, "case {:?}", case.name);
            for part in [line.net, line.tax1, line.tax2, line.gross] {
                assert_eq!(part.currency(), case.currency, "case {:?}", case.name);
            }
        }
    }

    #[test]
    fn a_compound_flag_on_the_first_level_is_ignored() {
        let amount = Money::new(10000, USD);
        let plain = taxes(Some(dec!(5)), Some((dec!(7), false)));
        let mut flagged = plain.clone();
        flagged.first.as_mut().unwrap().compound = true;
        for mode in [E, I] {
            assert_eq!(
                tax_line(amount, mode, &flagged, false),
                tax_line(amount, mode, &plain, false),
                "{mode}"
            );
        }
    }

    #[test]
    fn invalid_rates_are_refused_naming_the_tax() {
        // (first rate, second rate)
        let rows = [
            (dec!(-1), dec!(0)),
            (dec!(-0.000001), dec!(0)),
            (dec!(100.000001), dec!(0)),
            (dec!(101), dec!(0)),
            (dec!(1.0000001), dec!(0)),
            (dec!(15), dec!(150)),
            (dec!(15), dec!(-5)),
        ];
        for (first, second) in rows {
            let taxes = taxes(Some(first), Some((second, false)));
            for mode in [E, I] {
                for exempt in [false, true] {
                    let error = tax_line(Money::new(1000, USD), mode, &taxes, exempt).unwrap_err();
                    assert_eq!(
                        error.code(),
                        "invalid_tax_rate",
                        "{first} / {second} {mode}"
                    );
                    let message = error.to_string();
                    assert!(message.contains("0 to 100"), "{message}");
                    assert!(
                        message.contains("\"T1\"") || message.contains("\"T2\""),
                        "{message}"
                    );
                }
            }
        }
        // Trailing zeros do not count as decimal places; -0 is 0.
        for percent in [dec!(15.000000000), dec!(100.0), dec!(-0), dec!(0.000001)] {
            let taxes = taxes(Some(percent), None);
            assert!(
                tax_line(Money::new(1000, USD), E, &taxes, false).is_ok(),
                "{percent}"
            );
        }
    }

    #[test]
    fn an_amount_that_no_longer_fits_is_an_overflow() {
        let taxes = taxes(Some(dec!(100)), Some((dec!(100), true)));
        let error = tax_line(Money::new(i64::MAX, USD), E, &taxes, false).unwrap_err();
        assert_eq!(error, TaxError::Overflow);
        assert_eq!(error.code(), "amount_overflow");
        // The extremes themselves are taxed without overflow where the result fits.
        let line = tax_line(Money::new(i64::MIN, USD), I, &taxes, false).unwrap();
        assert_eq!(line.gross.minor(), i64::MIN);
        assert_eq!(
            i128::from(line.net.minor())
                + i128::from(line.tax1.minor())
                + i128::from(line.tax2.minor()),
            i128::from(i64::MIN)
        );
    }

    fn rule(
        name: &str,
        country: &str,
        region: Option<&str>,
        level: TaxLevel,
        compound: bool,
    ) -> TaxRule {
        TaxRule {
            name: name.to_owned(),
            country: country.to_owned(),
            region: region.map(str::to_owned),
            level,
            rate: dec!(10),
            compound,
        }
    }

    fn rules() -> Vec<TaxRule> {
        use TaxLevel::{First, Second};
        vec![
            rule("Anywhere", "*", None, First, false),
            rule("VAT ZW", "ZW", None, First, false),
            rule("GST", "CA", None, First, true),
            rule("QST", "CA", Some("QC"), Second, true),
            rule("HST", "CA", Some("ON"), First, false),
            rule("PST", "CA", Some("bc"), Second, false),
            rule("Québec fee", "CA", Some("Île-de-Test"), Second, false),
        ]
    }

    #[test]
    fn the_most_specific_rule_of_each_level_applies() {
        // (country, region, expected first, expected second with its compound flag)
        type Row = (
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Option<(&'static str, bool)>,
        );
        let rows: &[Row] = &[
            ("ZW", None, Some("VAT ZW"), None),
            ("zw", Some("Harare"), Some("VAT ZW"), None),
            (" ZW ", Some(""), Some("VAT ZW"), None),
            ("CA", None, Some("GST"), None),
            ("CA", Some("QC"), Some("GST"), Some(("QST", true))),
            ("ca", Some(" qc "), Some("GST"), Some(("QST", true))),
            ("CA", Some("ON"), Some("HST"), None),
            ("CA", Some("BC"), Some("GST"), Some(("PST", false))),
            (
                "CA",
                Some("ÎLE-DE-TEST"),
                Some("GST"),
                Some(("Québec fee", false)),
            ),
            ("CA", Some("Yukon"), Some("GST"), None),
            ("US", None, Some("Anywhere"), None),
            ("US", Some("NY"), Some("Anywhere"), None),
        ];
        let forwards = rules();
        let mut backwards = rules();
        backwards.reverse();
        for &(country, region, first, second) in rows {
            for rules in [&forwards, &backwards] {
                let chosen = applicable(rules, country, region);
                let label = format!("{country:?} {region:?}");
                assert_eq!(
                    chosen.first.as_ref().map(|r| r.name.as_str()),
                    first,
                    "{label}"
                );
                assert_eq!(
                    chosen
                        .second
                        .as_ref()
                        .map(|r| (r.name.as_str(), r.compound)),
                    second,
                    "{label}"
                );
                // The first level is never compound, even when its rule says so (GST).
                assert!(!chosen.first.is_some_and(|r| r.compound), "{label}");
            }
        }
        assert_eq!(applicable(&[], "ZW", None), Taxes::none());
        assert!(applicable(&[], "ZW", None).is_none());
    }

    #[test]
    fn equally_specific_rules_the_first_wins_and_a_regional_wildcard_never_matches() {
        let rules = vec![
            rule("Regional wildcard", "*", Some("QC"), TaxLevel::First, false),
            rule("A", "ZW", None, TaxLevel::First, false),
            rule("B", "ZW", None, TaxLevel::First, false),
        ];
        let chosen = applicable(&rules, "ZW", None);
        assert_eq!(chosen.first.map(|r| r.name), Some("A".to_owned()));
        assert_eq!(applicable(&rules, "CA", Some("QC")), Taxes::none());
    }

    #[test]
    fn rules_are_validated_as_entered() {
        // (rule, expected error code)
        let rows = [
            (rule("VAT", "ZW", None, TaxLevel::First, false), None),
            (rule("Any", "*", None, TaxLevel::First, false), None),
            (rule("QST", "ca", Some("QC"), TaxLevel::Second, true), None),
            (
                rule(" ", "ZW", None, TaxLevel::First, false),
                Some("invalid_tax_rule"),
            ),
            (
                rule("VAT", "ZWE", None, TaxLevel::First, false),
                Some("invalid_tax_rule"),
            ),
            (
                rule("VAT", "", None, TaxLevel::First, false),
                Some("invalid_tax_rule"),
            ),
            (
                rule("VAT", "*", Some("QC"), TaxLevel::First, false),
                Some("invalid_tax_rule"),
            ),
            (
                TaxRule {
                    rate: dec!(100.5),
                    ..rule("VAT", "ZW", None, TaxLevel::First, false)
                },
                Some("invalid_tax_rate"),
            ),
        ];
        for (rule, expected) in rows {
            assert_eq!(
                rule.validate().err().map(|error| error.code()),
                expected,
                "{rule:?}"
            );
        }
        let error = rule("VAT", "*", Some("QC"), TaxLevel::First, false)
            .validate()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the tax rule \"VAT\" is not valid: a rule for any country (*) cannot name a \
             region; name the country too"
        );
    }

    #[test]
    fn rules_and_modes_serialize_in_snake_case() {
        let json =
            serde_json::to_value(rule("QST", "CA", Some("QC"), TaxLevel::Second, true)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "QST", "country": "CA", "region": "QC",
                "level": "second", "rate": "10", "compound": true
            })
        );
        let parsed: TaxRule = serde_json::from_value(serde_json::json!({
            "name": "VAT", "country": "ZW", "level": "first", "rate": "15.5"
        }))
        .unwrap();
        assert_eq!(parsed.rate, dec!(15.5));
        assert_eq!(parsed.region, None);
        assert!(!parsed.compound);
        assert_eq!(
            serde_json::to_string(&TaxMode::Inclusive).unwrap(),
            "\"inclusive\""
        );
        assert_eq!(
            serde_json::from_str::<TaxMode>("\"exclusive\"").unwrap(),
            TaxMode::Exclusive
        );
    }

    fn any_rate() -> impl Strategy<Value = Decimal> {
        // 0 to 100 % with up to 3 decimals.
        (0i64..=100_000).prop_map(|thousandths| Decimal::new(thousandths, 3))
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(vec![USD, JPY, BHD, Currency::CLF])
    }

    fn any_taxes() -> impl Strategy<Value = Taxes> {
        (
            proptest::option::weighted(0.9, any_rate()),
            proptest::option::of((any_rate(), any::<bool>())),
        )
            .prop_map(|(first, second)| taxes(first, second))
    }

    proptest! {
        #[test]
        fn the_parts_always_add_up_and_credits_mirror_charges(
            minor in -10_000_000_000_000i64..=10_000_000_000_000,
            currency in any_currency(),
            inclusive in any::<bool>(),
            exempt in any::<bool>(),
            taxes in any_taxes(),
        ) {
            let mode = if inclusive { I } else { E };
            let line = tax_line(Money::new(minor, currency), mode, &taxes, exempt).unwrap();
            prop_assert_eq!(
                line.net.minor() + line.tax1.minor() + line.tax2.minor(),
                line.gross.minor()
            );
            for part in [line.net, line.tax1, line.tax2, line.gross] {
                // Every part has the line's sign, or is zero.
                prop_assert!(part.minor() == 0 || part.is_negative() == (minor < 0), "{:?}", line);
            }
            if exempt {
                prop_assert_eq!((line.tax1.minor(), line.tax2.minor()), (0, 0));
            }
            let mirrored = tax_line(Money::new(-minor, currency), mode, &taxes, exempt).unwrap();
            prop_assert_eq!(
                (mirrored.net.minor(), mirrored.tax1.minor(), mirrored.tax2.minor(), mirrored.gross.minor()),
                (-line.net.minor(), -line.tax1.minor(), -line.tax2.minor(), -line.gross.minor())
            );
        }

        #[test]
        fn exclusive_then_inclusive_comes_back_within_one_unit_per_level(
            net in 0i64..=10_000_000_000_000,
            currency in any_currency(),
            taxes in any_taxes(),
        ) {
            let levels = i64::from(u8::from(taxes.first.is_some()) + u8::from(taxes.second.is_some()));
            let forwards = tax_line(Money::new(net, currency), E, &taxes, false).unwrap();
            let back = tax_line(forwards.gross, I, &taxes, false).unwrap();
            prop_assert_eq!(back.gross, forwards.gross);
            prop_assert!((back.net.minor() - forwards.net.minor()).abs() <= levels.min(1), "{:?} {:?}", forwards, back);
            prop_assert!((back.tax1.minor() - forwards.tax1.minor()).abs() <= levels, "{:?} {:?}", forwards, back);
            prop_assert!((back.tax2.minor() - forwards.tax2.minor()).abs() <= levels, "{:?} {:?}", forwards, back);
        }
    }
}
