//! Billing cycles, due dates, periods and the proration fraction.
//!
//! # The rules
//!
//! **The anniversary is kept.** A service bills on its anniversary: the date it was
//! first due. Every later due date is the anniversary moved forward by a whole number of
//! cycles (1, 3, 6, 12, 24 or 36 months), so a service that started on the 15th is
//! always due on the 15th.
//!
//! **So is the billing day.** A service aligned to a billing day (1 to 31, see
//! [`crate::proration::align_to_billing_day`]) keeps that day beside its anniversary, in an
//! [`Anniversary`]: every later due date falls on the billing day, or on the month's last
//! day when the month is shorter. The anniversary is a real date and may itself be clamped
//! (billing day 31 aligned in February is anniversary 02-28); the billing day kept beside
//! it means the clamp is not inherited by the months after. Without a billing day, the day
//! kept is the anniversary's own.
//!
//! ```text
//! monthly, anniversary 2027-02-28, billing day 31: 02-28, 03-31, 04-30, 05-31, …
//! monthly, anniversary 2027-02-28, no billing day: 02-28, 03-28, 04-28, 05-28, …
//! annually, anniversary 2027-02-28, billing day 29: 2027-02-28, 2028-02-29, 2029-02-28
//! ```
//!
//! **Month ends clamp, from the kept day.** When the kept day does not exist in the target
//! month, the due date is the last day of that month. The clamping is always computed from
//! the kept day (the billing day, else the *original* anniversary's day), never from the
//! previous (clamped) due date, so a short month does not drag later dates back:
//!
//! ```text
//! monthly from 2028-01-31: 01-31, 02-29, 03-31, 04-30, 05-31, …
//!                          (not 01-31, 02-29, 03-29, 04-29, … )
//! annually from 2028-02-29: 2028-02-29, 2029-02-28, 2030-02-28, 2031-02-28, 2032-02-29
//! ```
//!
//! So due date `n` (`n >= 1`) is in the month `n × cycle` months after the anniversary's
//! month, on day `min(kept day, days in that month)`. Period `n` starts on
//! [`due_date`]`(anniversary, cycle, n)`; period 0 starts on the anniversary itself.
//!
//! **Periods are half open.** A [`Period`] runs from its `start` (included) to its `end`
//! (excluded), and `end` is the next period's `start`. A date belongs to exactly one
//! period; the day a new period starts belongs to the new period.
//!
//! **Proration counts whole days, and the day of the change is the client's.** When a
//! service changes on day `on` inside a period, the client pays the rest of the period at
//! the new price *including* `on` itself:
//!
//! ```text
//! remaining_fraction = (end - on) / (end - start)      in whole days
//! used_fraction      = 1 - remaining_fraction
//! ```
//!
//! So a change on the first day of a period leaves a remaining fraction of 1 (the whole
//! period at the new price), and a change on the last day leaves `1 / days` (that one
//! day). The fraction is never 0: a change on `end` is a change in the next period. Days
//! are calendar days; times of day and time zones are the caller's business (convert to
//! the tenant's local date first).
//!
//! The fraction is an exact [`Decimal`] quotient when it terminates (15/30 is exactly
//! 0.5) and Decimal's 28-significant-digit rounding otherwise (16/31). Where a money
//! amount must come out exact, multiply by [`remaining_days`] and divide by
//! [`Period::days`] in one step instead, and round once.
//!
//! **Non-recurring cycles have no periods.** `one_time` and `free` have a single due date
//! (the anniversary, index 0) and no [`Period`]; the functions here return `None` for
//! them where a period or a later due date is asked for.
//!
//! Dates beyond chrono's calendar range give `None` rather than a panic.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;

/// How often a service is billed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BillingCycle {
    Monthly,
    Quarterly,
    SemiAnnually,
    Annually,
    Biennially,
    Triennially,
    /// Billed once, on the anniversary; never renews.
    OneTime,
    /// Never billed; no periods.
    Free,
}

impl BillingCycle {
    /// Every cycle, shortest recurring first, then the non-recurring ones.
    pub const ALL: [BillingCycle; 8] = [
        BillingCycle::Monthly,
        BillingCycle::Quarterly,
        BillingCycle::SemiAnnually,
        BillingCycle::Annually,
        BillingCycle::Biennially,
        BillingCycle::Triennially,
        BillingCycle::OneTime,
        BillingCycle::Free,
    ];

    /// The length of one period in months; `None` for cycles that do not recur.
    pub fn months(self) -> Option<u32> {
        match self {
            BillingCycle::Monthly => Some(1),
            BillingCycle::Quarterly => Some(3),
            BillingCycle::SemiAnnually => Some(6),
            BillingCycle::Annually => Some(12),
            BillingCycle::Biennially => Some(24),
            BillingCycle::Triennially => Some(36),
            BillingCycle::OneTime | BillingCycle::Free => None,
        }
    }

    /// Whether the cycle renews (has periods).
    pub fn is_recurring(self) -> bool {
        self.months().is_some()
    }

    /// The length of one period in months, or [`BillingError::NotRecurring`].
    pub fn recurring_months(self) -> Result<u32, BillingError> {
        self.months().ok_or(BillingError::NotRecurring(self))
    }

    /// The stable snake_case name, the same one serde uses.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "monthly",
            BillingCycle::Quarterly => "quarterly",
            BillingCycle::SemiAnnually => "semi_annually",
            BillingCycle::Annually => "annually",
            BillingCycle::Biennially => "biennially",
            BillingCycle::Triennially => "triennially",
            BillingCycle::OneTime => "one_time",
            BillingCycle::Free => "free",
        }
    }
}

impl fmt::Display for BillingCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BillingCycle {
    type Err = BillingError;

    /// Parses the exact snake_case name given by [`BillingCycle::as_str`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        BillingCycle::ALL
            .into_iter()
            .find(|cycle| cycle.as_str() == name)
            .ok_or_else(|| BillingError::UnknownCycle(name.to_owned()))
    }
}

/// What can go wrong with cycles, periods and proration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error(
        "unknown billing cycle {0:?}; expected one of monthly, quarterly, semi_annually, \
         annually, biennially, triennially, one_time, free"
    )]
    UnknownCycle(String),
    #[error("{date} is outside the billing period from {start} up to (not including) {end}")]
    DateOutsidePeriod {
        date: NaiveDate,
        start: NaiveDate,
        end: NaiveDate,
    },
    #[error("the {0} billing cycle does not recur, so it has no billing periods")]
    NotRecurring(BillingCycle),
    #[error("the date falls outside the supported calendar range")]
    DateOutOfRange,
    #[error("the billing day must be a day of the month from 1 to 31, not {0}")]
    InvalidBillingDay(u32),
    #[error(
        "the anniversary {date} is not on billing day {billing_day} (nor on its month's last \
         day when the month is shorter)"
    )]
    AnniversaryOffBillingDay { date: NaiveDate, billing_day: u32 },
}

impl BillingError {
    /// A stable machine-readable code for API responses and logs.
    pub fn code(&self) -> &'static str {
        match self {
            BillingError::UnknownCycle(_) => "unknown_billing_cycle",
            BillingError::DateOutsidePeriod { .. } => "date_outside_billing_period",
            BillingError::NotRecurring(_) => "billing_cycle_not_recurring",
            BillingError::DateOutOfRange => "date_out_of_range",
            BillingError::InvalidBillingDay(_) => "invalid_billing_day",
            BillingError::AnniversaryOffBillingDay { .. } => "anniversary_off_billing_day",
        }
    }
}

/// One billing period: `start` included, `end` excluded (`end` is the next period's
/// `start`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The number of days in the period (`end - start`).
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// Whether `d` falls in the period: `start <= d < end`.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d < self.end
    }
}

/// Where a service's due dates are counted from: the anniversary (period 0 starts on it)
/// and the day of the month every later due date keeps, clamped to the month's last day.
///
/// The kept day is the service's billing day when it was aligned to one, else the
/// anniversary's own day ([`Anniversary::new`], the same as a bare date through `From`).
/// The anniversary is always on the kept day of its month, or on its month's last day
/// when the month is shorter: [`Anniversary::with_billing_day`] refuses anything else.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "AnniversaryFields")]
pub struct Anniversary {
    date: NaiveDate,
    /// `None`: due dates keep `date`'s own day.
    billing_day: Option<u32>,
}

/// [`Anniversary`] as it is deserialized, before [`Anniversary::with_billing_day`] checks it.
#[derive(serde::Deserialize)]
struct AnniversaryFields {
    date: NaiveDate,
    billing_day: Option<u32>,
}

impl TryFrom<AnniversaryFields> for Anniversary {
    type Error = BillingError;
    fn try_from(fields: AnniversaryFields) -> Result<Anniversary, BillingError> {
        Anniversary::with_billing_day(fields.date, fields.billing_day)
    }
}

impl Anniversary {
    /// An anniversary whose due dates keep its own day: a service without a billing day.
    pub fn new(date: NaiveDate) -> Anniversary {
        Anniversary {
            date,
            billing_day: None,
        }
    }

    /// An anniversary whose due dates keep `billing_day` (1 to 31), clamped to each month's
    /// last day; `None` is [`Anniversary::new`]. `date` must be on the billing day of its
    /// month, or on its month's last day when the month is shorter (billing day 31 allows
    /// 2027-02-28, not 2027-02-27).
    pub fn with_billing_day(
        date: NaiveDate,
        billing_day: Option<u32>,
    ) -> Result<Anniversary, BillingError> {
        let Some(day) = billing_day else {
            return Ok(Anniversary::new(date));
        };
        if !(1..=31).contains(&day) {
            return Err(BillingError::InvalidBillingDay(day));
        }
        if date.day() != day.min(u32::from(date.num_days_in_month())) {
            return Err(BillingError::AnniversaryOffBillingDay {
                date,
                billing_day: day,
            });
        }
        Ok(Anniversary {
            date,
            billing_day: Some(day),
        })
    }

    /// The anniversary itself: where period 0 starts.
    pub fn date(self) -> NaiveDate {
        self.date
    }

    /// The billing day kept beside the date, as stored; `None` when due dates keep the
    /// date's own day.
    pub fn billing_day(self) -> Option<u32> {
        self.billing_day
    }

    /// The day of the month due dates keep (before clamping to a shorter month).
    pub fn day(self) -> u32 {
        self.billing_day.unwrap_or_else(|| self.date.day())
    }
}

impl From<NaiveDate> for Anniversary {
    fn from(date: NaiveDate) -> Anniversary {
        Anniversary::new(date)
    }
}

/// `day` in the month `months` after `date`'s month, clamped to that month's last day;
/// `None` past chrono's range.
pub(crate) fn on_day_clamped(date: NaiveDate, months: u32, day: u32) -> Option<NaiveDate> {
    let first = date.with_day(1)?.checked_add_months(Months::new(months))?;
    first.with_day(day.min(u32::from(first.num_days_in_month())))
}

/// The start of the `period_index`-th period counted from `anniversary` (index 0 is the
/// anniversary itself), on the anniversary's kept day clamped to the month end.
///
/// `None` for a non-recurring cycle when `period_index > 0`, or past chrono's range.
pub fn due_date(
    anniversary: Anniversary,
    cycle: BillingCycle,
    period_index: u32,
) -> Option<NaiveDate> {
    if period_index == 0 {
        return Some(anniversary.date);
    }
    due_date_months(anniversary, cycle.months()?, period_index)
}

/// Whole months from the first of `from`'s month to the first of `to`'s month.
fn month_distance(from: NaiveDate, to: NaiveDate) -> i64 {
    let months_since_epoch = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
    months_since_epoch(to) - months_since_epoch(from)
}

/// The index of the period that contains `on`, for a recurring cycle and
/// `on >= anniversary`.
fn period_index_containing(anniversary: Anniversary, months: u32, on: NaiveDate) -> Option<u32> {
    debug_assert!(on >= anniversary.date);
    // Due date `i` lies in the month `i * months` after the anniversary's month, so
    // this index's due date is in `on`'s month or earlier, and the next one is later.
    let index = u32::try_from(month_distance(anniversary.date, on) / i64::from(months)).ok()?;
    if due_date_months(anniversary, months, index)? <= on {
        Some(index)
    } else {
        // Same month as `on` but a later day: `on` is still in the previous period.
        // `index > 0` here because due date 0 is the anniversary, which is `<= on`.
        index.checked_sub(1)
    }
}

/// Due date `index` for a cycle of `months` months; `None` past chrono's range.
fn due_date_months(anniversary: Anniversary, months: u32, index: u32) -> Option<NaiveDate> {
    let months = months.checked_mul(index)?;
    match anniversary.billing_day {
        // chrono clamps the anniversary's own day to the last day of the target month
        // (always from the original anniversary, never from a clamped due date).
        None => anniversary.date.checked_add_months(Months::new(months)),
        Some(day) => on_day_clamped(anniversary.date, months, day),
    }
}

/// The first period start strictly after `after`.
///
/// For a non-recurring cycle that is the anniversary if it is still ahead, else `None`.
pub fn next_due_date(
    anniversary: Anniversary,
    cycle: BillingCycle,
    after: NaiveDate,
) -> Option<NaiveDate> {
    if after < anniversary.date {
        return Some(anniversary.date);
    }
    let months = cycle.months()?;
    let index = period_index_containing(anniversary, months, after)?;
    due_date_months(anniversary, months, index.checked_add(1)?)
}

/// The period `on` falls in; `None` for a non-recurring cycle, a date before the
/// anniversary, or past chrono's range.
pub fn period_containing(
    anniversary: Anniversary,
    cycle: BillingCycle,
    on: NaiveDate,
) -> Option<Period> {
    if on < anniversary.date {
        return None;
    }
    let months = cycle.months()?;
    let index = period_index_containing(anniversary, months, on)?;
    period_at(anniversary, cycle, index)
}

/// The `period_index`-th period (index 0 starts on the anniversary); `None` for a
/// non-recurring cycle or past chrono's range.
pub fn period_at(
    anniversary: Anniversary,
    cycle: BillingCycle,
    period_index: u32,
) -> Option<Period> {
    let months = cycle.months()?;
    Some(Period {
        start: due_date_months(anniversary, months, period_index)?,
        end: due_date_months(anniversary, months, period_index.checked_add(1)?)?,
    })
}

/// The days of `period` still to be used on `on`, counting `on` itself: `end - on`,
/// between 1 and [`Period::days`].
pub fn remaining_days(period: Period, on: NaiveDate) -> Result<i64, BillingError> {
    if !period.contains(on) {
        return Err(BillingError::DateOutsidePeriod {
            date: on,
            start: period.start,
            end: period.end,
        });
    }
    Ok((period.end - on).num_days())
}

/// The share of `period` not yet used on `on`: `(end - on) / (end - start)` in whole
/// days, in (0, 1]; 1 on the start date. See the module docs for the convention.
pub fn remaining_fraction(period: Period, on: NaiveDate) -> Result<Decimal, BillingError> {
    let remaining = remaining_days(period, on)?;
    // `contains` succeeded, so `start <= on < end` and `days() >= 1`.
    Ok(Decimal::from(remaining) / Decimal::from(period.days()))
}

/// The share of `period` already used on `on`: `1 - remaining_fraction`, in [0, 1).
pub fn used_fraction(period: Period, on: NaiveDate) -> Result<Decimal, BillingError> {
    Ok(Decimal::ONE - remaining_fraction(period, on)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| panic!("bad date {text}"))
    }

    fn period(start: &str, end: &str) -> Period {
        Period {
            start: date(start),
            end: date(end),
        }
    }

    fn fraction(numerator: i64, denominator: i64) -> Decimal {
        Decimal::from(numerator) / Decimal::from(denominator)
    }

    fn days_in_month(year: i32, month: u32) -> u32 {
        let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap();
        let next = first.checked_add_months(Months::new(1)).unwrap();
        u32::try_from((next - first).num_days()).unwrap()
    }

    /// An anniversary without a billing day: due dates keep its own day.
    fn plain(text: &str) -> Anniversary {
        Anniversary::new(date(text))
    }

    /// Checks that periods 0, 1, 2, … of `cycle` from `anniversary` start on `expected`.
    fn check_due_dates(anniversary: &str, cycle: BillingCycle, expected: &[&str]) {
        let anniversary = plain(anniversary);
        let actual: Vec<String> = (0..expected.len())
            .map(|index| {
                let index = u32::try_from(index).unwrap();
                due_date(anniversary, cycle, index).map_or("none".to_owned(), |d| d.to_string())
            })
            .collect();
        assert_eq!(actual, expected, "{cycle} from {anniversary:?}");
    }

    #[test]
    fn monthly_from_january_31_clamps_through_a_leap_year() {
        check_due_dates(
            "2028-01-31",
            BillingCycle::Monthly,
            &[
                "2028-01-31",
                "2028-02-29",
                "2028-03-31",
                "2028-04-30",
                "2028-05-31",
                "2028-06-30",
                "2028-07-31",
                "2028-08-31",
                "2028-09-30",
                "2028-10-31",
                "2028-11-30",
                "2028-12-31",
                "2029-01-31",
                "2029-02-28",
            ],
        );
    }

    #[test]
    fn monthly_from_january_31_clamps_through_a_common_year() {
        check_due_dates(
            "2027-01-31",
            BillingCycle::Monthly,
            &[
                "2027-01-31",
                "2027-02-28",
                "2027-03-31",
                "2027-04-30",
                "2027-05-31",
                "2027-06-30",
                "2027-07-31",
                "2027-08-31",
                "2027-09-30",
                "2027-10-31",
                "2027-11-30",
                "2027-12-31",
                "2028-01-31",
                "2028-02-29",
            ],
        );
    }

    #[test]
    fn clamping_starts_from_the_anniversary_not_the_last_clamped_date() {
        // The 30th survives February: March is the 30th again, not the 28th.
        check_due_dates(
            "2027-01-30",
            BillingCycle::Monthly,
            &[
                "2027-01-30",
                "2027-02-28",
                "2027-03-30",
                "2027-04-30",
                "2027-05-30",
            ],
        );
        // A day every month has is never moved.
        check_due_dates(
            "2027-01-15",
            BillingCycle::Monthly,
            &["2027-01-15", "2027-02-15", "2027-03-15", "2027-04-15"],
        );
    }

    #[test]
    fn annually_from_february_29_returns_to_the_29th_in_leap_years() {
        check_due_dates(
            "2028-02-29",
            BillingCycle::Annually,
            &[
                "2028-02-29",
                "2029-02-28",
                "2030-02-28",
                "2031-02-28",
                "2032-02-29",
                "2033-02-28",
            ],
        );
    }

    #[test]
    fn quarterly_from_august_31_clamps_in_november_and_february() {
        check_due_dates(
            "2027-08-31",
            BillingCycle::Quarterly,
            &[
                "2027-08-31",
                "2027-11-30",
                "2028-02-29",
                "2028-05-31",
                "2028-08-31",
                "2028-11-30",
                "2029-02-28",
                "2029-05-31",
            ],
        );
    }

    #[test]
    fn december_31_crosses_year_ends() {
        let rows: &[(BillingCycle, &[&str])] = &[
            (
                BillingCycle::Monthly,
                &["2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31"],
            ),
            (
                BillingCycle::Quarterly,
                &[
                    "2027-12-31",
                    "2028-03-31",
                    "2028-06-30",
                    "2028-09-30",
                    "2028-12-31",
                    "2029-03-31",
                ],
            ),
            (
                BillingCycle::SemiAnnually,
                &["2027-12-31", "2028-06-30", "2028-12-31", "2029-06-30"],
            ),
            (
                BillingCycle::Annually,
                &["2027-12-31", "2028-12-31", "2029-12-31"],
            ),
        ];
        for (cycle, expected) in rows {
            check_due_dates("2027-12-31", *cycle, expected);
        }
    }

    #[test]
    fn semi_annually_from_august_31_lands_on_the_end_of_february() {
        check_due_dates(
            "2027-08-31",
            BillingCycle::SemiAnnually,
            &[
                "2027-08-31",
                "2028-02-29",
                "2028-08-31",
                "2029-02-28",
                "2029-08-31",
            ],
        );
    }

    #[test]
    fn biennially_and_triennially_from_february_29() {
        check_due_dates(
            "2028-02-29",
            BillingCycle::Biennially,
            &["2028-02-29", "2030-02-28", "2032-02-29", "2034-02-28"],
        );
        check_due_dates(
            "2028-02-29",
            BillingCycle::Triennially,
            &[
                "2028-02-29",
                "2031-02-28",
                "2034-02-28",
                "2037-02-28",
                "2040-02-29",
            ],
        );
    }

    /// One row of [`BILLING_DAYS`]: due dates 0, 1, 2, … of `cycle` from an anniversary
    /// aligned to `billing_day` in a short month.
    struct KeptDay {
        billing_day: u32,
        anniversary: &'static str,
        cycle: BillingCycle,
        expected: &'static [&'static str],
    }

    const MONTHLY: BillingCycle = BillingCycle::Monthly;
    const QUARTERLY: BillingCycle = BillingCycle::Quarterly;
    const ANNUALLY: BillingCycle = BillingCycle::Annually;

    /// Billing days 29, 30 and 31 aligned in a short month, through the leap year 2028:
    /// every due date is the billing day, or the month's last day when the month lacks it.
    #[rustfmt::skip]
    const BILLING_DAYS: &[KeptDay] = &[
        KeptDay { billing_day: 31, anniversary: "2027-02-28", cycle: MONTHLY, expected: &[
            "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31",
            "2027-08-31", "2027-09-30", "2027-10-31", "2027-11-30", "2027-12-31", "2028-01-31",
            "2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31", "2028-06-30", "2028-07-31",
            "2028-08-31", "2028-09-30", "2028-10-31", "2028-11-30", "2028-12-31", "2029-01-31",
            "2029-02-28", "2029-03-31", "2029-04-30",
        ] },
        KeptDay { billing_day: 30, anniversary: "2027-02-28", cycle: MONTHLY, expected: &[
            "2027-02-28", "2027-03-30", "2027-04-30", "2027-05-30", "2027-06-30", "2027-07-30",
            "2027-08-30", "2027-09-30", "2027-10-30", "2027-11-30", "2027-12-30", "2028-01-30",
            "2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30", "2028-06-30", "2028-07-30",
            "2028-08-30", "2028-09-30", "2028-10-30", "2028-11-30", "2028-12-30", "2029-01-30",
            "2029-02-28", "2029-03-30",
        ] },
        KeptDay { billing_day: 29, anniversary: "2027-02-28", cycle: MONTHLY, expected: &[
            "2027-02-28", "2027-03-29", "2027-04-29", "2027-05-29", "2027-06-29", "2027-07-29",
            "2027-08-29", "2027-09-29", "2027-10-29", "2027-11-29", "2027-12-29", "2028-01-29",
            "2028-02-29", "2028-03-29", "2028-04-29", "2028-05-29", "2028-06-29", "2028-07-29",
            "2028-08-29", "2028-09-29", "2028-10-29", "2028-11-29", "2028-12-29", "2029-01-29",
            "2029-02-28", "2029-03-29",
        ] },
        // Aligned in April (30 days) rather than February.
        KeptDay { billing_day: 31, anniversary: "2027-04-30", cycle: MONTHLY, expected: &[
            "2027-04-30", "2027-05-31", "2027-06-30", "2027-07-31", "2027-08-31", "2027-09-30",
            "2027-10-31", "2027-11-30", "2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31",
        ] },
        // Aligned in a leap February: the 29th is not kept either.
        KeptDay { billing_day: 31, anniversary: "2028-02-29", cycle: MONTHLY, expected: &[
            "2028-02-29", "2028-03-31", "2028-04-30", "2028-05-31", "2028-06-30",
        ] },
        KeptDay { billing_day: 30, anniversary: "2028-02-29", cycle: MONTHLY, expected: &[
            "2028-02-29", "2028-03-30", "2028-04-30", "2028-05-30", "2028-06-30",
        ] },
        KeptDay { billing_day: 31, anniversary: "2027-11-30", cycle: QUARTERLY, expected: &[
            "2027-11-30", "2028-02-29", "2028-05-31", "2028-08-31", "2028-11-30", "2029-02-28",
            "2029-05-31", "2029-08-31", "2029-11-30",
        ] },
        KeptDay { billing_day: 30, anniversary: "2027-02-28", cycle: QUARTERLY, expected: &[
            "2027-02-28", "2027-05-30", "2027-08-30", "2027-11-30", "2028-02-29", "2028-05-30",
            "2028-08-30", "2028-11-30", "2029-02-28", "2029-05-30",
        ] },
        KeptDay { billing_day: 29, anniversary: "2027-02-28", cycle: QUARTERLY, expected: &[
            "2027-02-28", "2027-05-29", "2027-08-29", "2027-11-29", "2028-02-29", "2028-05-29",
            "2028-08-29", "2028-11-29", "2029-02-28", "2029-05-29",
        ] },
        KeptDay { billing_day: 31, anniversary: "2027-06-30", cycle: QUARTERLY, expected: &[
            "2027-06-30", "2027-09-30", "2027-12-31", "2028-03-31", "2028-06-30", "2028-09-30",
            "2028-12-31", "2029-03-31",
        ] },
        KeptDay { billing_day: 29, anniversary: "2027-02-28", cycle: ANNUALLY, expected: &[
            "2027-02-28", "2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29",
        ] },
        KeptDay { billing_day: 30, anniversary: "2027-02-28", cycle: ANNUALLY, expected: &[
            "2027-02-28", "2028-02-29", "2029-02-28",
        ] },
        KeptDay { billing_day: 31, anniversary: "2027-02-28", cycle: ANNUALLY, expected: &[
            "2027-02-28", "2028-02-29", "2029-02-28",
        ] },
        KeptDay { billing_day: 31, anniversary: "2027-09-30", cycle: ANNUALLY, expected: &[
            "2027-09-30", "2028-09-30", "2029-09-30",
        ] },
    ];

    #[test]
    fn billing_days_29_to_31_are_kept_through_short_months_and_a_leap_year() {
        for row in BILLING_DAYS {
            let anniversary =
                Anniversary::with_billing_day(date(row.anniversary), Some(row.billing_day))
                    .unwrap();
            let actual: Vec<String> = (0..row.expected.len())
                .map(|index| {
                    let index = u32::try_from(index).unwrap();
                    due_date(anniversary, row.cycle, index).unwrap().to_string()
                })
                .collect();
            let what = format!(
                "{} from {}, billing day {}",
                row.cycle, row.anniversary, row.billing_day
            );
            assert_eq!(actual, row.expected, "{what}");
            // The billing day, or the month's last day: never a drifted day.
            for due in row.expected.iter().map(|d| date(d)) {
                let last = days_in_month(due.year(), due.month());
                assert_eq!(due.day(), row.billing_day.min(last), "{what}: {due}");
            }
            // Each period runs from one of these due dates to the next.
            for (index, pair) in row.expected.windows(2).enumerate() {
                let index = u32::try_from(index).unwrap();
                assert_eq!(
                    period_at(anniversary, row.cycle, index),
                    Some(period(pair[0], pair[1])),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn without_the_billing_day_the_clamped_anniversary_day_is_kept() {
        // What a service aligned before Keel kept billing days does when its row has no
        // billing day: the clamped day, for good (the 0008 migration gives such rows theirs).
        check_due_dates(
            "2027-02-28",
            MONTHLY,
            &["2027-02-28", "2027-03-28", "2027-04-28", "2027-05-28"],
        );
        check_due_dates(
            "2027-02-28",
            ANNUALLY,
            &["2027-02-28", "2028-02-28", "2029-02-28"],
        );
    }

    #[test]
    fn periods_and_next_due_dates_follow_the_billing_day() {
        let anniversary = Anniversary::with_billing_day(date("2027-02-28"), Some(31)).unwrap();
        // (on, period containing it, next due date after it)
        let rows = [
            ("2027-02-27", None, "2027-02-28"),
            (
                "2027-02-28",
                Some(("2027-02-28", "2027-03-31")),
                "2027-03-31",
            ),
            // The 28th of March is no due date: the period runs to the 31st.
            (
                "2027-03-28",
                Some(("2027-02-28", "2027-03-31")),
                "2027-03-31",
            ),
            (
                "2027-03-30",
                Some(("2027-02-28", "2027-03-31")),
                "2027-03-31",
            ),
            (
                "2027-03-31",
                Some(("2027-03-31", "2027-04-30")),
                "2027-04-30",
            ),
            (
                "2027-04-30",
                Some(("2027-04-30", "2027-05-31")),
                "2027-05-31",
            ),
            (
                "2028-02-28",
                Some(("2028-01-31", "2028-02-29")),
                "2028-02-29",
            ),
            (
                "2028-02-29",
                Some(("2028-02-29", "2028-03-31")),
                "2028-03-31",
            ),
            (
                "2029-03-30",
                Some(("2029-02-28", "2029-03-31")),
                "2029-03-31",
            ),
        ];
        for (on, expected, next) in rows {
            assert_eq!(
                period_containing(anniversary, MONTHLY, date(on)),
                expected.map(|(start, end)| period(start, end)),
                "on {on}"
            );
            assert_eq!(
                next_due_date(anniversary, MONTHLY, date(on)),
                Some(date(next)),
                "after {on}"
            );
        }
    }

    #[test]
    fn an_anniversary_must_be_on_its_billing_day() {
        // (date, billing day, expected: the kept day, or the error's code)
        let rows: [(&str, Option<u32>, Result<u32, &str>); 10] = [
            ("2027-02-28", None, Ok(28)),
            ("2027-02-28", Some(28), Ok(28)),
            ("2027-02-28", Some(29), Ok(29)),
            ("2027-02-28", Some(31), Ok(31)),
            ("2028-02-29", Some(31), Ok(31)),
            ("2027-03-15", Some(15), Ok(15)),
            // Not the month's last day, so not a clamped billing day.
            ("2027-02-27", Some(31), Err("anniversary_off_billing_day")),
            ("2027-03-30", Some(31), Err("anniversary_off_billing_day")),
            ("2027-03-15", Some(0), Err("invalid_billing_day")),
            ("2027-03-15", Some(32), Err("invalid_billing_day")),
        ];
        for (on, billing_day, expected) in rows {
            let anniversary = Anniversary::with_billing_day(date(on), billing_day);
            assert_eq!(
                anniversary.map(Anniversary::day).map_err(|e| e.code()),
                expected,
                "{on} with billing day {billing_day:?}"
            );
        }
        let kept = Anniversary::with_billing_day(date("2027-02-28"), Some(31)).unwrap();
        assert_eq!(
            (kept.date(), kept.billing_day()),
            (date("2027-02-28"), Some(31))
        );
        assert_eq!(Anniversary::from(date("2027-02-28")).billing_day(), None);
        assert_eq!(
            Anniversary::with_billing_day(date("2027-02-27"), Some(31))
                .unwrap_err()
                .to_string(),
            "the anniversary 2027-02-27 is not on billing day 31 (nor on its month's last day \
             when the month is shorter)"
        );
    }

    #[test]
    fn an_anniversary_serializes_with_its_billing_day_and_is_checked_when_read() {
        let kept = Anniversary::with_billing_day(date("2027-02-28"), Some(31)).unwrap();
        let json = serde_json::to_value(kept).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"date": "2027-02-28", "billing_day": 31})
        );
        assert_eq!(serde_json::from_value::<Anniversary>(json).unwrap(), kept);
        assert_eq!(
            serde_json::to_value(plain("2027-03-15")).unwrap(),
            serde_json::json!({"date": "2027-03-15", "billing_day": null})
        );
        let off = serde_json::json!({"date": "2027-02-27", "billing_day": 31});
        assert!(serde_json::from_value::<Anniversary>(off).is_err());
    }

    #[test]
    fn non_recurring_cycles_are_due_once_on_the_anniversary() {
        for cycle in [BillingCycle::OneTime, BillingCycle::Free] {
            check_due_dates("2027-03-10", cycle, &["2027-03-10", "none", "none"]);
            assert_eq!(period_at(plain("2027-03-10"), cycle, 0), None, "{cycle}");
        }
    }

    #[test]
    fn due_dates_past_the_calendar_range_are_none() {
        let rows = [
            (Anniversary::new(NaiveDate::MAX), BillingCycle::Monthly, 1),
            (plain("2027-01-31"), BillingCycle::Monthly, u32::MAX),
            // u32::MAX * 36 months overflows before any date is built.
            (plain("2027-01-31"), BillingCycle::Triennially, u32::MAX),
            // The same with a billing day.
            (
                Anniversary::with_billing_day(NaiveDate::MAX, Some(31)).unwrap(),
                BillingCycle::Monthly,
                1,
            ),
            (
                Anniversary::with_billing_day(date("2027-02-28"), Some(31)).unwrap(),
                BillingCycle::Monthly,
                u32::MAX,
            ),
        ];
        for (anniversary, cycle, index) in rows {
            assert_eq!(due_date(anniversary, cycle, index), None, "{cycle} {index}");
        }
        assert_eq!(
            next_due_date(
                Anniversary::new(NaiveDate::MAX),
                BillingCycle::Monthly,
                NaiveDate::MAX
            ),
            None
        );
        assert_eq!(
            period_at(Anniversary::new(NaiveDate::MAX), BillingCycle::Monthly, 0),
            None
        );
    }

    #[test]
    fn next_due_date_is_strictly_after_the_given_day() {
        // (anniversary, cycle, after, expected)
        let rows = [
            // Before the anniversary: the anniversary itself.
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2026-05-05",
                Some("2027-01-31"),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-01-30",
                Some("2027-01-31"),
            ),
            // On a due date: the next one.
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-01-31",
                Some("2027-02-28"),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-02-28",
                Some("2027-03-31"),
            ),
            // Between due dates, including the day before one.
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-02-01",
                Some("2027-02-28"),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-02-27",
                Some("2027-02-28"),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-03-01",
                Some("2027-03-31"),
            ),
            (
                "2027-01-15",
                BillingCycle::Monthly,
                "2027-02-10",
                Some("2027-02-15"),
            ),
            (
                "2027-01-15",
                BillingCycle::Quarterly,
                "2027-03-20",
                Some("2027-04-15"),
            ),
            (
                "2027-01-15",
                BillingCycle::Quarterly,
                "2027-04-14",
                Some("2027-04-15"),
            ),
            (
                "2027-01-15",
                BillingCycle::Quarterly,
                "2027-04-15",
                Some("2027-07-15"),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2029-02-27",
                Some("2029-02-28"),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2029-02-28",
                Some("2030-02-28"),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2031-03-01",
                Some("2032-02-29"),
            ),
            // Non-recurring: only the anniversary, and only while it is ahead.
            (
                "2027-03-10",
                BillingCycle::OneTime,
                "2027-03-09",
                Some("2027-03-10"),
            ),
            ("2027-03-10", BillingCycle::OneTime, "2027-03-10", None),
            ("2027-03-10", BillingCycle::Free, "2030-01-01", None),
        ];
        for (anniversary, cycle, after, expected) in rows {
            assert_eq!(
                next_due_date(plain(anniversary), cycle, date(after)),
                expected.map(date),
                "{cycle} from {anniversary}, after {after}"
            );
        }
    }

    #[test]
    fn period_containing_puts_each_boundary_in_the_period_it_starts() {
        // (anniversary, cycle, on, expected [start, end))
        let rows = [
            ("2027-01-31", BillingCycle::Monthly, "2027-01-30", None),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-01-31",
                Some(("2027-01-31", "2027-02-28")),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-02-27",
                Some(("2027-01-31", "2027-02-28")),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-02-28",
                Some(("2027-02-28", "2027-03-31")),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-03-30",
                Some(("2027-02-28", "2027-03-31")),
            ),
            (
                "2027-01-31",
                BillingCycle::Monthly,
                "2027-03-31",
                Some(("2027-03-31", "2027-04-30")),
            ),
            (
                "2027-01-15",
                BillingCycle::Quarterly,
                "2027-04-14",
                Some(("2027-01-15", "2027-04-15")),
            ),
            (
                "2027-01-15",
                BillingCycle::Quarterly,
                "2027-04-15",
                Some(("2027-04-15", "2027-07-15")),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2029-02-27",
                Some(("2028-02-29", "2029-02-28")),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2029-02-28",
                Some(("2029-02-28", "2030-02-28")),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2032-02-28",
                Some(("2031-02-28", "2032-02-29")),
            ),
            (
                "2028-02-29",
                BillingCycle::Annually,
                "2032-02-29",
                Some(("2032-02-29", "2033-02-28")),
            ),
            ("2027-03-10", BillingCycle::OneTime, "2027-03-10", None),
            ("2027-03-10", BillingCycle::Free, "2027-04-10", None),
        ];
        for (anniversary, cycle, on, expected) in rows {
            assert_eq!(
                period_containing(plain(anniversary), cycle, date(on)),
                expected.map(|(start, end)| period(start, end)),
                "{cycle} from {anniversary}, on {on}"
            );
        }
    }

    #[test]
    fn period_at_runs_from_one_due_date_to_the_next() {
        let anniversary = plain("2028-01-31");
        assert_eq!(
            period_at(anniversary, BillingCycle::Monthly, 0),
            Some(period("2028-01-31", "2028-02-29"))
        );
        assert_eq!(
            period_at(anniversary, BillingCycle::Monthly, 1),
            Some(period("2028-02-29", "2028-03-31"))
        );
        assert_eq!(
            period_at(anniversary, BillingCycle::Monthly, u32::MAX),
            None
        );
    }

    #[test]
    fn period_days_and_contains_treat_the_end_as_excluded() {
        let february = period("2028-02-01", "2028-03-01");
        assert_eq!(february.days(), 29);
        assert!(!february.contains(date("2028-01-31")));
        assert!(february.contains(date("2028-02-01")));
        assert!(february.contains(date("2028-02-29")));
        assert!(!february.contains(date("2028-03-01")));
    }

    #[test]
    fn remaining_fraction_counts_the_day_of_the_change_as_remaining() {
        // (period start, period end, on, expected remaining fraction)
        let rows = [
            // 28 days, clamped monthly period: start → 1, last day → 1/28.
            ("2027-01-31", "2027-02-28", "2027-01-31", dec!(1)),
            ("2027-01-31", "2027-02-28", "2027-02-07", dec!(0.75)),
            ("2027-01-31", "2027-02-27", "2027-02-20", fraction(7, 27)),
            ("2027-01-31", "2027-02-28", "2027-02-27", fraction(1, 28)),
            // Leap February: 29 days.
            ("2028-02-01", "2028-03-01", "2028-02-01", dec!(1)),
            ("2028-02-01", "2028-03-01", "2028-02-15", fraction(15, 29)),
            ("2028-02-01", "2028-03-01", "2028-02-29", fraction(1, 29)),
            // A 30-day month split evenly is exactly one half.
            ("2027-04-01", "2027-05-01", "2027-04-16", dec!(0.5)),
            // A 31-day month.
            ("2027-03-01", "2027-04-01", "2027-03-01", dec!(1)),
            ("2027-03-01", "2027-04-01", "2027-03-16", fraction(16, 31)),
            ("2027-03-01", "2027-04-01", "2027-03-31", fraction(1, 31)),
            // An annual period across a leap year: 366 days.
            ("2028-01-01", "2029-01-01", "2028-01-01", dec!(1)),
            ("2028-01-01", "2029-01-01", "2028-07-01", fraction(184, 366)),
            ("2028-01-01", "2029-01-01", "2028-12-31", fraction(1, 366)),
            // The same dates in a common year: 365 days.
            ("2027-01-01", "2028-01-01", "2027-07-01", fraction(184, 365)),
        ];
        for (start, end, on, expected) in rows {
            let span = period(start, end);
            let remaining = remaining_fraction(span, date(on)).unwrap();
            let used = used_fraction(span, date(on)).unwrap();
            assert_eq!(remaining, expected, "[{start}, {end}) on {on}");
            assert_eq!(remaining + used, Decimal::ONE, "[{start}, {end}) on {on}");
            assert!(remaining > Decimal::ZERO && remaining <= Decimal::ONE);
        }
    }

    #[test]
    fn remaining_fraction_that_does_not_terminate_keeps_28_significant_digits() {
        let march = period("2027-03-01", "2027-04-01");
        assert_eq!(
            remaining_fraction(march, date("2027-03-16")),
            Ok(dec!(0.5161290322580645161290322581))
        );
        assert_eq!(
            used_fraction(march, date("2027-03-16")),
            Ok(dec!(0.4838709677419354838709677419))
        );
        assert_eq!(remaining_days(march, date("2027-03-16")), Ok(16));
    }

    #[test]
    fn used_fraction_is_zero_on_the_first_day_and_almost_one_on_the_last() {
        // (period start, period end, on, expected used fraction)
        let rows = [
            ("2027-01-31", "2027-02-28", "2027-01-31", dec!(0)),
            ("2027-01-31", "2027-02-28", "2027-02-07", dec!(0.25)),
            // 1 - 1/28: computed from the remaining fraction, so the two always sum to 1.
            (
                "2027-01-31",
                "2027-02-28",
                "2027-02-27",
                Decimal::ONE - fraction(1, 28),
            ),
            (
                "2028-02-01",
                "2028-03-01",
                "2028-02-29",
                Decimal::ONE - fraction(1, 29),
            ),
        ];
        for (start, end, on, expected) in rows {
            let used = used_fraction(period(start, end), date(on)).unwrap();
            assert_eq!(used, expected, "[{start}, {end}) on {on}");
        }
    }

    #[test]
    fn a_date_outside_the_period_is_an_error() {
        // (period start, period end, on)
        let rows = [
            ("2027-01-31", "2027-02-28", "2027-01-30"),
            // The end belongs to the next period.
            ("2027-01-31", "2027-02-28", "2027-02-28"),
            ("2027-01-31", "2027-02-28", "2030-01-01"),
            // An empty or backwards period contains nothing (and never divides by zero).
            ("2027-01-31", "2027-01-31", "2027-01-31"),
            ("2027-02-28", "2027-01-31", "2027-02-01"),
        ];
        for (start, end, on) in rows {
            let span = period(start, end);
            let expected = Err(BillingError::DateOutsidePeriod {
                date: date(on),
                start: date(start),
                end: date(end),
            });
            assert_eq!(
                remaining_fraction(span, date(on)),
                expected,
                "[{start}, {end}) on {on}"
            );
            assert_eq!(
                used_fraction(span, date(on)),
                expected,
                "[{start}, {end}) on {on}"
            );
        }
        let error =
            remaining_fraction(period("2027-01-31", "2027-02-28"), date("2027-02-28")).unwrap_err();
        assert_eq!(error.code(), "date_outside_billing_period");
        assert_eq!(
            error.to_string(),
            "2027-02-28 is outside the billing period from 2027-01-31 up to (not including) 2027-02-28"
        );
    }

    #[test]
    fn every_cycle_name_parses_back_to_its_cycle() {
        // (cycle, name, months)
        let rows = [
            (BillingCycle::Monthly, "monthly", Some(1)),
            (BillingCycle::Quarterly, "quarterly", Some(3)),
            (BillingCycle::SemiAnnually, "semi_annually", Some(6)),
            (BillingCycle::Annually, "annually", Some(12)),
            (BillingCycle::Biennially, "biennially", Some(24)),
            (BillingCycle::Triennially, "triennially", Some(36)),
            (BillingCycle::OneTime, "one_time", None),
            (BillingCycle::Free, "free", None),
        ];
        assert_eq!(rows.map(|(cycle, _, _)| cycle), BillingCycle::ALL);
        for (cycle, name, months) in rows {
            assert_eq!(cycle.as_str(), name);
            assert_eq!(cycle.to_string(), name);
            assert_eq!(name.parse::<BillingCycle>(), Ok(cycle));
            assert_eq!(cycle.months(), months);
            assert_eq!(cycle.is_recurring(), months.is_some());
            // serde uses the same names.
            assert_eq!(
                serde_json::to_string(&cycle).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<BillingCycle>(&format!("\"{name}\"")).unwrap(),
                cycle
            );
        }
    }

    #[test]
    fn an_unknown_cycle_name_is_an_error_naming_it() {
        for name in ["weekly", "Monthly", "semi-annually", " monthly", ""] {
            let error = name.parse::<BillingCycle>().unwrap_err();
            assert_eq!(error, BillingError::UnknownCycle(name.to_owned()));
            assert_eq!(error.code(), "unknown_billing_cycle");
            assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
        }
    }

    #[test]
    fn non_recurring_cycles_have_no_period_length() {
        assert_eq!(BillingCycle::Annually.recurring_months(), Ok(12));
        let error = BillingCycle::OneTime.recurring_months().unwrap_err();
        assert_eq!(error, BillingError::NotRecurring(BillingCycle::OneTime));
        assert_eq!(error.code(), "billing_cycle_not_recurring");
        assert_eq!(
            error.to_string(),
            "the one_time billing cycle does not recur, so it has no billing periods"
        );
        assert_eq!(BillingError::DateOutOfRange.code(), "date_out_of_range");
    }

    #[test]
    fn a_period_serializes_as_two_iso_dates() {
        let span = period("2028-02-29", "2029-02-28");
        let json = serde_json::to_string(&span).unwrap();
        assert_eq!(json, r#"{"start":"2028-02-29","end":"2029-02-28"}"#);
        assert_eq!(serde_json::from_str::<Period>(&json).unwrap(), span);
    }

    /// Any anniversary, half of them with a billing day (the date then on that day of its
    /// month, clamped to the month's last day).
    fn any_anniversary() -> impl Strategy<Value = Anniversary> {
        (
            1900i32..2200,
            1u32..=12,
            1u32..=31,
            proptest::option::of(1u32..=31),
        )
            .prop_map(|(year, month, day, billing_day)| {
                let day = billing_day.unwrap_or(day).min(days_in_month(year, month));
                let date = NaiveDate::from_ymd_opt(year, month, day).unwrap();
                Anniversary::with_billing_day(date, billing_day).unwrap()
            })
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
        fn due_dates_are_monotonic_skip_no_month_and_keep_the_clamped_day(
            anniversary in any_anniversary(),
            cycle in any_recurring_cycle(),
            index in 0u32..150,
        ) {
            let months = cycle.months().unwrap();
            let this = due_date(anniversary, cycle, index).unwrap();
            let next = due_date(anniversary, cycle, index + 1).unwrap();
            prop_assert!(this < next);
            // Exactly `months` calendar months apart, and `index * months` from the start.
            prop_assert_eq!(month_distance(this, next), i64::from(months));
            prop_assert_eq!(month_distance(anniversary.date(), this), i64::from(index * months));
            // The day is the kept day (the billing day, else the anniversary's), clamped to
            // this month's length: never the day of an earlier, clamped due date.
            prop_assert_eq!(
                this.day(),
                anniversary.day().min(days_in_month(this.year(), this.month()))
            );
            prop_assert_eq!(period_at(anniversary, cycle, index), Some(Period { start: this, end: next }));
            // Without a billing day, exactly chrono's month arithmetic from the anniversary
            // (what Keel did before it kept billing days).
            if anniversary.billing_day().is_none() {
                prop_assert_eq!(
                    Some(this),
                    anniversary.date().checked_add_months(Months::new(index * months))
                );
            }
        }

        #[test]
        fn every_day_after_the_anniversary_lies_in_the_period_before_its_next_due_date(
            anniversary in any_anniversary(),
            cycle in any_recurring_cycle(),
            offset_days in 0u64..20_000,
        ) {
            let on = anniversary.date() + chrono::Days::new(offset_days);
            let span = period_containing(anniversary, cycle, on).unwrap();
            prop_assert!(span.contains(on));
            prop_assert_eq!(next_due_date(anniversary, cycle, on), Some(span.end));
            let remaining = remaining_fraction(span, on).unwrap();
            prop_assert!(remaining > Decimal::ZERO && remaining <= Decimal::ONE);
            prop_assert_eq!(remaining + used_fraction(span, on).unwrap(), Decimal::ONE);
        }
    }
}
