//! Proration: plan changes inside a billing period ([`prorate_change`]) and aligning a new
//! service to the client's billing day ([`align_to_billing_day`]).
//!
//! The same rules with more worked examples are in `docs/billing.md`.
//!
//! # The rules
//!
//! **One rounding, exact in between.** [`prorate`] computes `amount × days / of` in
//! `i128` minor units and rounds half away from zero once (the rule of
//! `docs/money.md`). No decimal fraction is formed first, so
//! 1,000 × 16/31 is 516.129… → 516, never a rounded fraction times the amount.
//!
//! **A plan change credits the unused part of the old price and charges the new price
//! for the same days.** With the conventions of [`crate::cycle`] (periods are half open,
//! the day of the change counts as remaining):
//!
//! ```text
//! remaining = end − on            (1 ..= period days)
//! credit    = prorate(old price, remaining, period days)     ≥ 0
//! charge    = prorate(new price, remaining, period days)     ≥ 0
//! net       = charge − credit     negative for a downgrade
//! ```
//!
//! A change on the first day of a period credits the whole old price and charges the
//! whole new price; a change on the last day moves one day's worth. Credit and charge
//! are rounded separately, so `net` may differ by one minor unit from
//! `prorate(new − old, …)`; the invoice shows both lines, and each is right on its own.
//!
//! **Prorata billing aligns a new service to the client's billing day** (1 to 31; a day
//! a month lacks is that month's last day). The service starting on `start` is billed
//! from `start` up to `aligned`, the first date strictly after `start` on the billing
//! day, for the share `(aligned − start) / days of [aligned − cycle, aligned)` of its
//! price, where `aligned − cycle` is the billing day (clamped) the cycle's months before
//! `aligned`: the period of the billing day's schedule that `start` falls in. Renewals
//! then bill from `aligned`, the service's anniversary, and keep the billing day beside it
//! ([`crate::cycle::Anniversary`]): every due date is on the billing day, or on the
//! month's last day when the month lacks it, even when `aligned` itself was clamped. A
//! service that starts on the billing day is not prorated: it is billed the whole price for
//! its first full period, and `start` is the anniversary.
//!
//! ```text
//! billing day 31, start 2027-02-10, monthly: first period 02-10 – 02-28 (18 of the 28
//!   days from 01-31), then due 02-28, 03-31, 04-30, 05-31, …
//! ```
//!
//! Worked examples (prices in minor units):
//!
//! | period | on | old | new | credit | charge | net |
//! |---|---|---:|---:|---:|---:|---:|
//! | 2027-01-31 – 2027-02-28 (28 days) | 02-15 (13 left) | 1000 | 2000 | 464 | 929 | 465 |
//! | 2028-01-31 – 2028-02-29 (29 days) | 02-15 (14 left) | 1000 | 2000 | 483 | 966 | 483 |
//! | 2027-03-01 – 2027-04-01 (31 days) | 03-01 (whole)   | 1000 | 2000 | 1000 | 2000 | 1000 |
//! | 2027-03-01 – 2027-04-01 (31 days) | 03-31 (1 left)  | 1000 | 2000 | 32 | 65 | 33 |
//! | 2027-01-31 – 2027-02-28 (28 days) | 02-15 (13 left) | 2000 | 1000 | 929 | 464 | −465 |

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::currency::Currency;
use crate::cycle::{Anniversary, BillingCycle, Period, on_day_clamped, period_at};
use crate::money::Money;

/// The money of a plan change inside one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Proration {
    /// The unused part of the old price, `>= 0`.
    pub credit: Money,
    /// The new price for the same days, `>= 0`.
    pub charge: Money,
    /// `charge − credit`: what the client owes for the change; negative for a downgrade.
    pub net: Money,
    /// Days left in the period, counting the day of the change.
    pub remaining_days: i64,
    /// Days in the whole period.
    pub period_days: i64,
}

/// The first, partial period of a service aligned to a billing day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AlignedStart {
    /// `[start, aligned)`, or the whole first cycle when `start` is on the billing day.
    pub first_period: Period,
    /// Days of the whole period the first one is a part of: `[aligned − cycle, aligned)`,
    /// or the first period's own days when it is whole. The charge is the price ×
    /// `first_period.days() / period_days`.
    pub period_days: i64,
    /// What the first period costs.
    pub charge: Money,
    /// Where renewals are counted from: `aligned` (or `start` when not prorated), with the
    /// billing day kept beside it.
    pub anniversary: Anniversary,
}

/// Why a proration could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProrationError {
    #[error(
        "the old price is in {old} and the new price in {new}; a plan change cannot change \
         currency"
    )]
    CurrencyMismatch { old: Currency, new: Currency },
    #[error("a price cannot be negative, but {0} was given")]
    NegativePrice(Money),
    #[error("the {0} billing cycle does not recur, so there is nothing to prorate")]
    NotRecurring(BillingCycle),
    #[error("{date} is outside the billing period from {start} up to (not including) {end}")]
    DateOutsidePeriod {
        date: NaiveDate,
        start: NaiveDate,
        end: NaiveDate,
    },
    #[error("the billing day must be a day of the month from 1 to 31, not {0}")]
    InvalidBillingDay(u32),
    #[error("cannot prorate {days} days of {of}; the days must be from 0 to {of}")]
    InvalidDays { days: i64, of: i64 },
    #[error("a proration needs a period of at least one day, not {0} days")]
    EmptyPeriod(i64),
    #[error("the date falls outside the supported calendar range")]
    DateOutOfRange,
}

impl ProrationError {
    /// A stable snake_case name for the variant, for API error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ProrationError::CurrencyMismatch { .. } => "currency_mismatch",
            ProrationError::NegativePrice(_) => "negative_price",
            ProrationError::NotRecurring(_) => "billing_cycle_not_recurring",
            ProrationError::DateOutsidePeriod { .. } => "date_outside_billing_period",
            ProrationError::InvalidBillingDay(_) => "invalid_billing_day",
            ProrationError::InvalidDays { .. } => "invalid_proration_days",
            ProrationError::EmptyPeriod(_) => "empty_proration_period",
            ProrationError::DateOutOfRange => "date_out_of_range",
        }
    }
}

/// `amount × days / of`, computed exactly in i128 minor units and rounded half away from
/// zero once. `of` must be at least 1 and `days` within `0..=of`; a negative amount
/// prorates symmetrically.
pub fn prorate(amount: Money, days: i64, of: i64) -> Result<Money, ProrationError> {
    if of <= 0 {
        return Err(ProrationError::EmptyPeriod(of));
    }
    if !(0..=of).contains(&days) {
        return Err(ProrationError::InvalidDays { days, of });
    }
    // |amount| ≤ 2^63 and days < 2^63: the product fits i128, and the share is at most
    // |amount|, so it fits i64 again (i64::MIN × of/of is i64::MIN).
    let magnitude = i128::from(amount.minor()).abs() * i128::from(days);
    let of = i128::from(of);
    let mut share = magnitude / of;
    if (magnitude % of) * 2 >= of {
        share += 1;
    }
    let signed = if amount.is_negative() { -share } else { share };
    let minor = i64::try_from(signed).expect("a share is never larger than the whole");
    Ok(Money::new(minor, amount.currency()))
}

/// A plan change on day `on` inside `period` (billing.rs convention: `on` counts as a
/// remaining day).
pub fn prorate_change(
    old_price: Money,
    new_price: Money,
    period: Period,
    on: NaiveDate,
) -> Result<Proration, ProrationError> {
    if old_price.currency() != new_price.currency() {
        return Err(ProrationError::CurrencyMismatch {
            old: old_price.currency(),
            new: new_price.currency(),
        });
    }
    for price in [old_price, new_price] {
        if price.is_negative() {
            return Err(ProrationError::NegativePrice(price));
        }
    }
    if !period.contains(on) {
        return Err(ProrationError::DateOutsidePeriod {
            date: on,
            start: period.start,
            end: period.end,
        });
    }
    let remaining_days = (period.end - on).num_days();
    let period_days = period.days();
    let credit = prorate(old_price, remaining_days, period_days)?;
    let charge = prorate(new_price, remaining_days, period_days)?;
    // Both are in 0..=i64::MAX, so the difference fits.
    let net = Money::new(charge.minor() - credit.minor(), charge.currency());
    Ok(Proration {
        credit,
        charge,
        net,
        remaining_days,
        period_days,
    })
}

/// WHMCS-style "prorata billing": a service started on `start` is billed to the client's
/// billing day (1..=31, clamped to month end). aligned = the first date strictly after
/// `start` whose day is billing_day (clamped); if start is already on the billing day
/// there is no proration (first_period = the full cycle period from start, charge =
/// price, anniversary = start). Otherwise charge = prorate(price, aligned − start, days
/// of the cycle period that ends on `aligned`, i.e. [the billing day (clamped) the cycle's
/// months before aligned, aligned)). Either way the anniversary keeps the billing day, so
/// renewals fall on it (or on the month's last day), not on a clamped `aligned`'s day.
pub fn align_to_billing_day(
    price: Money,
    cycle: BillingCycle,
    start: NaiveDate,
    billing_day: u32,
) -> Result<AlignedStart, ProrationError> {
    if !(1..=31).contains(&billing_day) {
        return Err(ProrationError::InvalidBillingDay(billing_day));
    }
    let months = cycle.months().ok_or(ProrationError::NotRecurring(cycle))?;
    if price.is_negative() {
        return Err(ProrationError::NegativePrice(price));
    }
    // Both `this_month` and `aligned` are on the billing day of their month, so the
    // anniversary is always valid.
    let anniversary_on = |date| {
        Anniversary::with_billing_day(date, Some(billing_day))
            .map_err(|_| ProrationError::DateOutOfRange)
    };

    let this_month = billing_date(start, 0, billing_day)?;
    if this_month == start {
        let anniversary = anniversary_on(start)?;
        let first_period =
            period_at(anniversary, cycle, 0).ok_or(ProrationError::DateOutOfRange)?;
        return Ok(AlignedStart {
            first_period,
            period_days: first_period.days(),
            charge: price,
            anniversary,
        });
    }
    let aligned = if this_month > start {
        this_month
    } else {
        billing_date(start, 1, billing_day)?
    };
    // The billing day `months` before `aligned`: the first of that month, then the day.
    let cycle_start = aligned
        .with_day(1)
        .and_then(|first| first.checked_sub_months(Months::new(months)))
        .and_then(|first| on_day_clamped(first, 0, billing_day))
        .ok_or(ProrationError::DateOutOfRange)?;
    let period_days = (aligned - cycle_start).num_days();
    let charge = prorate(price, (aligned - start).num_days(), period_days)?;
    Ok(AlignedStart {
        first_period: Period {
            start,
            end: aligned,
        },
        period_days,
        charge,
        anniversary: anniversary_on(aligned)?,
    })
}

/// The billing day (clamped to the month's last day) in the month `months_ahead` after
/// `date`'s month.
fn billing_date(
    date: NaiveDate,
    months_ahead: u32,
    billing_day: u32,
) -> Result<NaiveDate, ProrationError> {
    on_day_clamped(date, months_ahead, billing_day).ok_or(ProrationError::DateOutOfRange)
}

/// A line a credit for unused time may be taken from: what it charged (gross, with its tax)
/// and what is left of it to credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creditable {
    /// The line's total, tax included (> 0).
    pub total: i64,
    /// The tax charged on the line, frozen when it was issued.
    pub tax: i64,
    /// `total − credited`: what earlier credits left of it.
    pub left: i64,
}

/// Splits a credit for unused time over the lines that charged for the period, in the
/// order given (newest charge first), never returning more than was charged:
///
/// - `wanted` is the credit at list prices: net of tax when `inclusive` is false (prices
///   exclude tax), gross when true (prices include it).
/// - Each line gives at most its `left`; each invoice (a group of lines) at most its own
///   `left` (total − credited − refunded: an upgrade's invoice also carries the negative line
///   of the old plan's unused days, so its charge line alone overstates it).
/// - A line's gross `g` carries tax `round(g × tax / total)` (half away from zero), the credit
///   note rule, so the tax credited is the tax that was charged, at the frozen rate,
///   whatever the client's terms are now.
/// - For a net `n` the gross is `floor(n × total / (total − tax))`, whose net never exceeds
///   `n`: rounding never credits more than asked.
///
/// Returns, per group and line, the gross to credit (0 for lines not needed). What the lines
/// cannot cover is dropped: a credit never exceeds what the period was charged.
pub fn allocate_credit(
    wanted: i64,
    inclusive: bool,
    groups: &[(i64, Vec<Creditable>)],
) -> Vec<Vec<i64>> {
    let mut need = wanted.max(0);
    let mut out = Vec::with_capacity(groups.len());
    for (invoice_left, lines) in groups {
        let mut group_left = (*invoice_left).max(0);
        let mut taken = Vec::with_capacity(lines.len());
        for l in lines {
            let cap = l.left.min(group_left).max(0);
            if need == 0 || cap == 0 || l.total <= 0 || l.tax >= l.total {
                taken.push(0);
                continue;
            }
            let tax_of = |g: i64| -> i64 {
                let m = i128::from(g) * i128::from(l.tax);
                let t = i128::from(l.total);
                let (q, r) = (m / t, m % t);
                // Half away from zero (taxes are not negative on a positive line; be exact anyway).
                let q = if r.abs() * 2 >= t { q + m.signum() } else { q };
                i64::try_from(q).expect("a share of a line's tax fits")
            };
            let worth = |g: i64| if inclusive { g } else { g - tax_of(g) };
            let gross = if worth(cap) <= need {
                cap
            } else if inclusive {
                need
            } else {
                let net_line = i128::from(l.total - l.tax);
                let g = i128::from(need) * i128::from(l.total) / net_line;
                let mut g = i64::try_from(g).unwrap_or(cap).min(cap);
                while g > 0 && worth(g) > need {
                    g -= 1;
                }
                g
            };
            need -= worth(gross);
            group_left -= gross;
            taken.push(gross);
        }
        out.push(taken);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cycle::{period_containing, remaining_days};

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| panic!("bad date {text}"))
    }

    fn period(start: &str, end: &str) -> Period {
        Period {
            start: date(start),
            end: date(end),
        }
    }

    const USD: Currency = Currency::USD;
    const JPY: Currency = Currency::JPY;
    const BHD: Currency = Currency::BHD;

    struct Change {
        name: &'static str,
        currency: Currency,
        old: i64,
        new: i64,
        /// [start, end)
        period: (&'static str, &'static str),
        on: &'static str,
        /// (credit, charge, net, remaining days, period days)
        expected: (i64, i64, i64, i64, i64),
    }

    #[rustfmt::skip]
    const CHANGES: &[Change] = &[
        // Month ends: a Jan 31 anniversary gives a 28-day February in 2027, 29 in 2028.
        Change { name: "Jan 31 anniversary, last day of a common February", currency: USD, old: 1000, new: 2000, period: ("2027-01-31", "2027-02-28"), on: "2027-02-27", expected: (36, 71, 35, 1, 28) },
        Change { name: "Feb 28 2027 starts the next period: whole prices", currency: USD, old: 1000, new: 2000, period: ("2027-02-28", "2027-03-31"), on: "2027-02-28", expected: (1000, 2000, 1000, 31, 31) },
        Change { name: "Jan 31 anniversary, Feb 28 of a leap year is not the last day", currency: USD, old: 1000, new: 2000, period: ("2028-01-31", "2028-02-29"), on: "2028-02-28", expected: (34, 69, 35, 1, 29) },
        Change { name: "Feb 29 2028 starts the next period: whole prices", currency: USD, old: 1000, new: 2000, period: ("2028-02-29", "2028-03-31"), on: "2028-02-29", expected: (1000, 2000, 1000, 31, 31) },
        Change { name: "mid-February 2027 (13 of 28)", currency: USD, old: 1000, new: 2000, period: ("2027-01-31", "2027-02-28"), on: "2027-02-15", expected: (464, 929, 465, 13, 28) },
        Change { name: "mid-February 2028 (14 of 29)", currency: USD, old: 1000, new: 2000, period: ("2028-01-31", "2028-02-29"), on: "2028-02-15", expected: (483, 966, 483, 14, 29) },
        // First and last day.
        Change { name: "first day: the whole prices", currency: USD, old: 1000, new: 2000, period: ("2027-03-01", "2027-04-01"), on: "2027-03-01", expected: (1000, 2000, 1000, 31, 31) },
        Change { name: "last day: one day of 31", currency: USD, old: 1000, new: 2000, period: ("2027-03-01", "2027-04-01"), on: "2027-03-31", expected: (32, 65, 33, 1, 31) },
        Change { name: "half a cent rounds away from zero (500.5, 1000.5)", currency: USD, old: 1001, new: 2001, period: ("2027-04-01", "2027-05-01"), on: "2027-04-16", expected: (501, 1001, 500, 15, 30) },
        // Longer cycles.
        Change { name: "quarterly, 45 of 90 days", currency: USD, old: 3000, new: 6000, period: ("2027-01-15", "2027-04-15"), on: "2027-03-01", expected: (1500, 3000, 1500, 45, 90) },
        Change { name: "annual across a leap year, 184 of 366", currency: USD, old: 12000, new: 24000, period: ("2028-01-01", "2029-01-01"), on: "2028-07-01", expected: (6033, 12066, 6033, 184, 366) },
        Change { name: "annual in a common year, 184 of 365", currency: USD, old: 12000, new: 24000, period: ("2027-01-01", "2028-01-01"), on: "2027-07-01", expected: (6049, 12099, 6050, 184, 365) },
        // Currencies without and with three decimals.
        Change { name: "JPY 16 of 31", currency: JPY, old: 1000, new: 3000, period: ("2027-03-01", "2027-04-01"), on: "2027-03-16", expected: (516, 1548, 1032, 16, 31) },
        Change { name: "BHD 20 of 30", currency: BHD, old: 10000, new: 25500, period: ("2027-04-01", "2027-05-01"), on: "2027-04-11", expected: (6667, 17000, 10333, 20, 30) },
        // Downgrade, equal prices, from free.
        Change { name: "downgrade: net is negative", currency: USD, old: 2000, new: 1000, period: ("2027-01-31", "2027-02-28"), on: "2027-02-15", expected: (929, 464, -465, 13, 28) },
        Change { name: "equal prices: net 0", currency: USD, old: 1500, new: 1500, period: ("2027-01-31", "2027-02-28"), on: "2027-02-15", expected: (696, 696, 0, 13, 28) },
        Change { name: "from a free plan: nothing to credit", currency: USD, old: 0, new: 1000, period: ("2027-01-31", "2027-02-28"), on: "2027-02-15", expected: (0, 464, 464, 13, 28) },
    ];

    #[test]
    fn plan_changes_are_prorated_as_the_table_says() {
        for case in CHANGES {
            let result = prorate_change(
                Money::new(case.old, case.currency),
                Money::new(case.new, case.currency),
                period(case.period.0, case.period.1),
                date(case.on),
            )
            .unwrap_or_else(|error| panic!("case {:?}: {error}", case.name));
            let actual = (
                result.credit.minor(),
                result.charge.minor(),
                result.net.minor(),
                result.remaining_days,
                result.period_days,
            );
            assert_eq!(actual, case.expected, "case {:?}", case.name);
            for money in [result.credit, result.charge, result.net] {
                assert_eq!(money.currency(), case.currency, "case {:?}", case.name);
            }
        }
    }

    #[test]
    fn prorate_rounds_once_half_away_from_zero() {
        // (amount, days, of, expected)
        let rows: &[(i64, i64, i64, i64)] = &[
            (1000, 0, 30, 0),
            (1000, 30, 30, 1000),
            (1001, 15, 30, 501),
            (-1001, 15, 30, -501),
            (1000, 16, 31, 516),
            (1, 1, 3, 0),
            (2, 1, 3, 1),
            (-2, 1, 3, -1),
            (0, 7, 9, 0),
            (i64::MAX, 1, 1, i64::MAX),
            (i64::MAX, 3, 4, 6_917_529_027_641_081_855),
            (i64::MIN, 1, 1, i64::MIN),
            (i64::MIN, 1, 2, i64::MIN / 2),
            (i64::MAX, i64::MAX - 1, i64::MAX, i64::MAX - 1),
        ];
        for &(amount, days, of, expected) in rows {
            assert_eq!(
                prorate(Money::new(amount, USD), days, of),
                Ok(Money::new(expected, USD)),
                "{amount} × {days} / {of}"
            );
        }
    }

    #[test]
    fn prorate_refuses_days_it_cannot_share() {
        // (days, of, expected code)
        let rows = [
            (31, 30, "invalid_proration_days"),
            (-1, 30, "invalid_proration_days"),
            (0, 0, "empty_proration_period"),
            (1, -1, "empty_proration_period"),
        ];
        for (days, of, code) in rows {
            let error = prorate(Money::new(1000, USD), days, of).unwrap_err();
            assert_eq!(error.code(), code, "{days} / {of}");
        }
        assert_eq!(
            prorate(Money::new(1000, USD), 31, 30)
                .unwrap_err()
                .to_string(),
            "cannot prorate 31 days of 30; the days must be from 0 to 30"
        );
    }

    #[test]
    fn plan_changes_refuse_what_makes_no_sense() {
        let february = period("2027-01-31", "2027-02-28");
        let usd = |minor| Money::new(minor, USD);
        // (name, old, new, period, on, expected code)
        let rows = [
            (
                "currencies differ",
                usd(1000),
                Money::new(1000, Currency::EUR),
                february,
                "2027-02-10",
                "currency_mismatch",
            ),
            (
                "negative old price",
                usd(-1),
                usd(1000),
                february,
                "2027-02-10",
                "negative_price",
            ),
            (
                "negative new price",
                usd(1000),
                usd(-1),
                february,
                "2027-02-10",
                "negative_price",
            ),
            (
                "before the period",
                usd(1000),
                usd(2000),
                february,
                "2027-01-30",
                "date_outside_billing_period",
            ),
            (
                "on the end (the next period)",
                usd(1000),
                usd(2000),
                february,
                "2027-02-28",
                "date_outside_billing_period",
            ),
            (
                "an empty period",
                usd(1000),
                usd(2000),
                period("2027-02-10", "2027-02-10"),
                "2027-02-10",
                "date_outside_billing_period",
            ),
        ];
        for (name, old, new, span, on, code) in rows {
            let error = prorate_change(old, new, span, date(on)).unwrap_err();
            assert_eq!(error.code(), code, "case {name:?}");
        }
        let error = prorate_change(
            usd(1000),
            Money::new(1000, Currency::EUR),
            february,
            date("2027-02-10"),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the old price is in USD and the new price in EUR; a plan change cannot change currency"
        );
        let error = prorate_change(usd(-1), usd(1), february, date("2027-02-10")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a price cannot be negative, but -0.01 USD was given"
        );
    }

    struct Alignment {
        name: &'static str,
        currency: Currency,
        price: i64,
        cycle: BillingCycle,
        start: &'static str,
        billing_day: u32,
        /// (first period start, first period end, days of the whole period, charge,
        /// anniversary)
        expected: (&'static str, &'static str, i64, i64, &'static str),
    }

    const M: BillingCycle = BillingCycle::Monthly;
    const Q: BillingCycle = BillingCycle::Quarterly;
    const A: BillingCycle = BillingCycle::Annually;

    #[rustfmt::skip]
    const ALIGNMENTS: &[Alignment] = &[
        Alignment { name: "10th to the 1st: 22 of March's 31 days", currency: USD, price: 3100, cycle: M, start: "2027-03-10", billing_day: 1, expected: ("2027-03-10", "2027-04-01", 31, 2200, "2027-04-01") },
        Alignment { name: "already on the billing day: a whole first period", currency: USD, price: 3100, cycle: M, start: "2027-03-01", billing_day: 1, expected: ("2027-03-01", "2027-04-01", 31, 3100, "2027-03-01") },
        Alignment { name: "billing day later this month: 5 of 28", currency: USD, price: 1000, cycle: M, start: "2027-03-10", billing_day: 15, expected: ("2027-03-10", "2027-03-15", 28, 179, "2027-03-15") },
        Alignment { name: "billing day 31 clamps to Feb 28 (period from Jan 31)", currency: USD, price: 1000, cycle: M, start: "2027-02-10", billing_day: 31, expected: ("2027-02-10", "2027-02-28", 28, 643, "2027-02-28") },
        Alignment { name: "billing day 31 clamps to Feb 29 in 2028 (period from Jan 31)", currency: USD, price: 1000, cycle: M, start: "2028-02-10", billing_day: 31, expected: ("2028-02-10", "2028-02-29", 29, 655, "2028-02-29") },
        Alignment { name: "billing day 31 clamps to Apr 30 (period from Mar 31)", currency: USD, price: 1000, cycle: M, start: "2027-04-10", billing_day: 31, expected: ("2027-04-10", "2027-04-30", 30, 667, "2027-04-30") },
        Alignment { name: "billing day 30 on Feb 28 2027 counts as on the day; the period ends on the 30th", currency: USD, price: 1000, cycle: M, start: "2027-02-28", billing_day: 30, expected: ("2027-02-28", "2027-03-30", 30, 1000, "2027-02-28") },
        Alignment { name: "billing day 31 on Jan 31", currency: USD, price: 1000, cycle: M, start: "2027-01-31", billing_day: 31, expected: ("2027-01-31", "2027-02-28", 28, 1000, "2027-01-31") },
        Alignment { name: "past this month's billing day: next month's, clamped (period from Jan 29)", currency: USD, price: 1000, cycle: M, start: "2027-01-30", billing_day: 29, expected: ("2027-01-30", "2027-02-28", 30, 967, "2027-02-28") },
        Alignment { name: "across a year end", currency: USD, price: 1000, cycle: M, start: "2027-12-15", billing_day: 1, expected: ("2027-12-15", "2028-01-01", 31, 548, "2028-01-01") },
        Alignment { name: "quarterly: 22 of 90 days", currency: USD, price: 3000, cycle: Q, start: "2027-03-10", billing_day: 1, expected: ("2027-03-10", "2027-04-01", 90, 733, "2027-04-01") },
        Alignment { name: "quarterly to Nov 30 on billing day 31 (period from Aug 31)", currency: USD, price: 3000, cycle: Q, start: "2027-11-10", billing_day: 31, expected: ("2027-11-10", "2027-11-30", 91, 659, "2027-11-30") },
        Alignment { name: "annually: 22 of 365 days", currency: USD, price: 12000, cycle: A, start: "2027-03-10", billing_day: 1, expected: ("2027-03-10", "2027-04-01", 365, 723, "2027-04-01") },
        Alignment { name: "annually on the billing day", currency: USD, price: 12000, cycle: A, start: "2028-02-29", billing_day: 29, expected: ("2028-02-29", "2029-02-28", 365, 12000, "2028-02-29") },
        Alignment { name: "JPY 22 of 31", currency: JPY, price: 1000, cycle: M, start: "2027-03-10", billing_day: 1, expected: ("2027-03-10", "2027-04-01", 31, 710, "2027-04-01") },
        Alignment { name: "BHD 15 of 30", currency: BHD, price: 10000, cycle: M, start: "2027-04-16", billing_day: 1, expected: ("2027-04-16", "2027-05-01", 30, 5000, "2027-05-01") },
        Alignment { name: "a free price stays free", currency: USD, price: 0, cycle: M, start: "2027-04-16", billing_day: 1, expected: ("2027-04-16", "2027-05-01", 30, 0, "2027-05-01") },
    ];

    #[test]
    fn new_services_align_to_the_billing_day_as_the_table_says() {
        for case in ALIGNMENTS {
            let aligned = align_to_billing_day(
                Money::new(case.price, case.currency),
                case.cycle,
                date(case.start),
                case.billing_day,
            )
            .unwrap_or_else(|error| panic!("case {:?}: {error}", case.name));
            let (start, end, period_days, charge, anniversary) = case.expected;
            assert_eq!(
                aligned,
                AlignedStart {
                    first_period: period(start, end),
                    period_days,
                    charge: Money::new(charge, case.currency),
                    anniversary: Anniversary::with_billing_day(
                        date(anniversary),
                        Some(case.billing_day)
                    )
                    .unwrap(),
                },
                "case {:?}",
                case.name
            );
            assert_eq!(
                Ok(aligned.charge),
                prorate(
                    Money::new(case.price, case.currency),
                    aligned.first_period.days(),
                    aligned.period_days
                ),
                "case {:?}",
                case.name
            );
        }
    }

    /// Services aligned to billing days 29 to 31 in a short month, through the leap year
    /// 2028: (start, billing day, cycle, anniversary and the due dates after it). Every due
    /// date is the billing day or the month's last day; none keeps the clamped day.
    #[rustfmt::skip]
    const ALIGNED_RENEWALS: &[(&str, u32, BillingCycle, &[&str])] = &[
        ("2027-02-10", 31, M, &["2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31", "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]),
        ("2027-04-10", 31, M, &["2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31"]),
        ("2027-02-10", 30, M, &["2027-02-28", "2027-03-30", "2027-04-30", "2027-05-30"]),
        ("2027-02-10", 29, M, &["2027-02-28", "2027-03-29", "2027-04-29", "2027-05-29"]),
        ("2028-02-10", 31, M, &["2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31"]),
        ("2028-02-10", 30, M, &["2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30"]),
        ("2029-02-10", 29, M, &["2029-02-28", "2029-03-29", "2029-04-29", "2029-05-29"]),
        // On the billing day (clamped): not prorated, and still the 30th from March.
        ("2027-02-28", 30, M, &["2027-02-28", "2027-03-30", "2027-04-30", "2027-05-30"]),
        ("2027-11-10", 31, Q, &["2027-11-30", "2028-02-29", "2028-05-31", "2028-08-31", "2028-11-30", "2029-02-28", "2029-05-31"]),
        ("2027-02-10", 30, Q, &["2027-02-28", "2027-05-30", "2027-08-30", "2027-11-30", "2028-02-29", "2028-05-30"]),
        ("2027-02-10", 29, A, &["2027-02-28", "2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"]),
        ("2027-02-10", 31, A, &["2027-02-28", "2028-02-29", "2029-02-28"]),
    ];

    #[test]
    fn a_service_aligned_in_a_short_month_renews_on_its_billing_day() {
        for (start, billing_day, cycle, expected) in ALIGNED_RENEWALS {
            let aligned =
                align_to_billing_day(Money::new(1000, USD), *cycle, date(start), *billing_day)
                    .unwrap();
            let due: Vec<String> = (0..expected.len())
                .map(|n| {
                    let n = u32::try_from(n).unwrap();
                    crate::cycle::due_date(aligned.anniversary, *cycle, n)
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert_eq!(
                &due, expected,
                "{cycle} from {start}, billing day {billing_day}"
            );
            assert_eq!(aligned.anniversary.billing_day(), Some(*billing_day));
        }
    }

    #[test]
    fn alignment_refuses_what_makes_no_sense() {
        let usd = |minor| Money::new(minor, USD);
        // (name, price, cycle, billing day, expected code)
        let rows = [
            ("billing day 0", usd(1000), M, 0, "invalid_billing_day"),
            ("billing day 32", usd(1000), M, 32, "invalid_billing_day"),
            (
                "one time",
                usd(1000),
                BillingCycle::OneTime,
                1,
                "billing_cycle_not_recurring",
            ),
            (
                "free",
                usd(1000),
                BillingCycle::Free,
                1,
                "billing_cycle_not_recurring",
            ),
            ("negative price", usd(-1), M, 1, "negative_price"),
        ];
        for (name, price, cycle, day, code) in rows {
            let error = align_to_billing_day(price, cycle, date("2027-03-10"), day).unwrap_err();
            assert_eq!(error.code(), code, "case {name:?}");
        }
        assert_eq!(
            ProrationError::InvalidBillingDay(32).to_string(),
            "the billing day must be a day of the month from 1 to 31, not 32"
        );
        assert_eq!(ProrationError::DateOutOfRange.code(), "date_out_of_range");
    }

    #[test]
    fn results_serialize_with_money_and_iso_dates() {
        let aligned =
            align_to_billing_day(Money::new(3100, USD), M, date("2027-03-10"), 1).unwrap();
        let json = serde_json::to_value(aligned).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "first_period": {"start": "2027-03-10", "end": "2027-04-01"},
                "period_days": 31,
                "charge": {"amount_minor": 2200, "currency": "USD"},
                "anniversary": {"date": "2027-04-01", "billing_day": 1}
            })
        );
        assert_eq!(
            serde_json::from_value::<AlignedStart>(json).unwrap(),
            aligned
        );
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (0i64..40_000).prop_map(|offset| date("1990-01-01") + chrono::Days::new(offset as u64))
    }

    fn any_recurring_cycle() -> impl Strategy<Value = BillingCycle> {
        proptest::sample::select(
            BillingCycle::ALL
                .into_iter()
                .filter(|cycle| cycle.is_recurring())
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #[test]
        fn prorate_is_the_nearest_minor_unit_and_symmetric(
            amount in any::<i64>(),
            (days, of) in (1i64..=100_000).prop_flat_map(|of| (0..=of, Just(of))),
        ) {
            let share = prorate(Money::new(amount, USD), days, of).unwrap().minor();
            // |share × of − amount × days| ≤ of / 2: the nearest whole minor unit.
            let error = i128::from(share) * i128::from(of) - i128::from(amount) * i128::from(days);
            prop_assert!(2 * error.abs() <= i128::from(of));
            prop_assert!(share.unsigned_abs() <= amount.unsigned_abs());
            if amount != i64::MIN {
                prop_assert_eq!(prorate(Money::new(-amount, USD), days, of).unwrap().minor(), -share);
            }
        }

        #[test]
        fn a_plan_change_never_credits_or_charges_more_than_the_prices(
            anniversary in any_date(),
            cycle in any_recurring_cycle(),
            offset in 0u64..2_000,
            old in 0i64..1_000_000_000,
            new in 0i64..1_000_000_000,
        ) {
            let on = anniversary + chrono::Days::new(offset);
            let span = period_containing(anniversary.into(), cycle, on).unwrap();
            let change = prorate_change(Money::new(old, USD), Money::new(new, USD), span, on).unwrap();
            prop_assert!((0..=old).contains(&change.credit.minor()));
            prop_assert!((0..=new).contains(&change.charge.minor()));
            prop_assert_eq!(change.net.minor(), change.charge.minor() - change.credit.minor());
            prop_assert_eq!(Ok(change.remaining_days), remaining_days(span, on));
            if on == span.start {
                prop_assert_eq!((change.credit.minor(), change.charge.minor()), (old, new));
            }
            let same = prorate_change(Money::new(old, USD), Money::new(old, USD), span, on).unwrap();
            prop_assert!(same.net.is_zero());
        }

        #[test]
        fn an_aligned_start_ends_on_the_billing_day_within_one_cycle(
            start in any_date(),
            cycle in any_recurring_cycle(),
            billing_day in 1u32..=31,
            price in 0i64..1_000_000_000,
        ) {
            let aligned = align_to_billing_day(Money::new(price, USD), cycle, start, billing_day).unwrap();
            let anniversary = aligned.anniversary.date();
            prop_assert_eq!(aligned.anniversary.billing_day(), Some(billing_day));
            let month_end = anniversary
                .with_day(1)
                .and_then(|first| first.checked_add_months(Months::new(1)))
                .and_then(|next| next.pred_opt())
                .unwrap();
            prop_assert_eq!(anniversary.day(), billing_day.min(month_end.day()));
            prop_assert_eq!(aligned.first_period.start, start);
            prop_assert!((0..=price).contains(&aligned.charge.minor()));
            prop_assert!(aligned.first_period.days() <= aligned.period_days);
            if anniversary == start {
                prop_assert_eq!(aligned.charge.minor(), price);
                prop_assert_eq!(Some(aligned.first_period), period_at(aligned.anniversary, cycle, 0));
            } else {
                prop_assert_eq!(aligned.first_period.end, anniversary);
                prop_assert!(anniversary > start);
                prop_assert!(aligned.first_period.days() <= 31);
                // No billing day lies strictly between start and the anniversary.
                let mut day = start + chrono::Days::new(1);
                while day < anniversary {
                    let day_month_end = day
                        .with_day(1)
                        .and_then(|first| first.checked_add_months(Months::new(1)))
                        .and_then(|next| next.pred_opt())
                        .unwrap();
                    prop_assert_ne!(day.day(), billing_day.min(day_month_end.day()));
                    day = day + chrono::Days::new(1);
                }
            }
        }

        #[test]
        fn every_due_date_of_an_aligned_service_is_on_the_billing_day_or_the_month_end(
            start in any_date(),
            cycle in any_recurring_cycle(),
            billing_day in 1u32..=31,
            n in 0u32..150,
        ) {
            let aligned = align_to_billing_day(Money::new(1000, USD), cycle, start, billing_day).unwrap();
            let due = crate::cycle::due_date(aligned.anniversary, cycle, n).unwrap();
            prop_assert_eq!(due.day(), billing_day.min(u32::from(due.num_days_in_month())));
            // n whole cycles after the anniversary's month.
            let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
            prop_assert_eq!(
                months(due) - months(aligned.anniversary.date()),
                i64::from(n * cycle.months().unwrap())
            );
        }
    }

    fn line(total: i64, tax: i64, left: i64) -> Creditable {
        Creditable { total, tax, left }
    }

    #[test]
    fn a_credit_comes_from_what_was_charged_at_the_tax_that_was_charged() {
        // (wanted, inclusive, groups, expected grosses)
        type Case = (i64, bool, Vec<(i64, Vec<Creditable>)>, Vec<Vec<i64>>);
        let table: Vec<Case> = vec![
            // 10.00 net of a line charged 11.50 with 15 % tax: 11.50 gross back.
            (
                1000,
                false,
                vec![(1150, vec![line(1150, 150, 1150)])],
                vec![vec![1150]],
            ),
            // Half of it: 5.00 net is 5.75 gross.
            (
                500,
                false,
                vec![(1150, vec![line(1150, 150, 1150)])],
                vec![vec![575]],
            ),
            // A line charged without tax (the client was abroad then): 5.00 back, not 5.75.
            (
                500,
                false,
                vec![(1000, vec![line(1000, 0, 1000)])],
                vec![vec![500]],
            ),
            // More than was charged: only what is left of the line.
            (
                5000,
                false,
                vec![(1150, vec![line(1150, 150, 400)])],
                vec![vec![400]],
            ),
            // The invoice caps its lines (an upgrade's charge line less the old plan's days).
            (
                5000,
                false,
                vec![(600, vec![line(2300, 300, 2300)])],
                vec![vec![600]],
            ),
            // Newest charge first, then the renewal it changed.
            (
                1500,
                false,
                vec![
                    (1150, vec![line(1150, 150, 1150)]),
                    (2300, vec![line(2300, 300, 2300)]),
                ],
                vec![vec![1150], vec![575]],
            ),
            // Prices include tax: the wanted amount is gross.
            (
                575,
                true,
                vec![(1150, vec![line(1150, 150, 1150)])],
                vec![vec![575]],
            ),
            // Nothing wanted, nothing credited; nothing left, nothing credited.
            (
                0,
                false,
                vec![(1150, vec![line(1150, 150, 1150)])],
                vec![vec![0]],
            ),
            (
                100,
                false,
                vec![(0, vec![line(1150, 150, 1150)])],
                vec![vec![0]],
            ),
        ];
        for (wanted, inclusive, groups, expected) in table {
            assert_eq!(
                allocate_credit(wanted, inclusive, &groups),
                expected,
                "{wanted} {groups:?}"
            );
        }
    }

    #[test]
    fn rounding_never_credits_more_net_than_wanted() {
        for tax in [0, 1, 7, 150, 333] {
            for wanted in 1..400 {
                let l = line(1000 + tax, tax, 1000 + tax);
                let g = allocate_credit(wanted, false, &[(l.total, vec![l])])[0][0];
                let t = prorate(Money::new(tax, crate::Currency::USD), g, l.total)
                    .unwrap()
                    .minor();
                assert!(g - t <= wanted, "tax {tax} wanted {wanted} gave {g}");
                assert!(g - t >= wanted - 1, "tax {tax} wanted {wanted} gave {g}");
            }
        }
    }
}
