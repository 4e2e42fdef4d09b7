//! The years Keel accepts in a date it is given.
//!
//! chrono parses `0000-01-01`, `-0044-03-15` and `+12345-01-01`; PostgreSQL refuses year 0
//! and years past 294276, SQLite stores them as text that sorts wrongly, and no invoice,
//! payment or billing run belongs there. Every date the API takes must fall in
//! [`YEARS`]; anything else is a typo or an attack, refused before it reaches a use case.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime};
use std::ops::RangeInclusive;

/// The accepted years, inclusive.
pub const YEARS: RangeInclusive<i32> = 1900..=9999;

/// [`YEARS`] as the OpenAPI document states it on every date (`format: date`).
pub const DATE_PATTERN: &str = "^(?:19[0-9]{2}|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$";
/// [`YEARS`] on every timestamp (`format: date-time`): the text starts with such a year.
pub const DATE_TIME_PATTERN: &str = "^(?:19[0-9]{2}|[2-9][0-9]{3})-";

/// A date outside [`YEARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the year {year} is outside {}..={}", YEARS.start(), YEARS.end())]
pub struct YearOutOfRange {
    pub year: i32,
}

/// Checks that `date` falls in [`YEARS`].
pub fn check(date: NaiveDate) -> Result<NaiveDate, YearOutOfRange> {
    if YEARS.contains(&date.year()) {
        Ok(date)
    } else {
        Err(YearOutOfRange { year: date.year() })
    }
}

/// The date a whole string names, if it is one the API's types would parse: an ISO date
/// (`2024-01-31`, chrono's `NaiveDate` syntax), or a timestamp in `DateTime<Utc>`'s or
/// `NaiveDateTime`'s syntax (RFC 3339 and its relatives). Used by the API's extractors to
/// check every date-shaped input at the boundary, whatever the field.
pub fn parse_any(text: &str) -> Option<NaiveDate> {
    // Cheap shape test first: every date form starts with a digit or a year sign.
    let first = text.as_bytes().first()?;
    if !(first.is_ascii_digit() || *first == b'+' || *first == b'-') || text.len() > 64 {
        return None;
    }
    if let Ok(d) = text.parse::<NaiveDate>() {
        return Some(d);
    }
    if let Ok(t) = text.parse::<DateTime<chrono::FixedOffset>>() {
        return Some(t.date_naive());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.date_naive());
    }
    text.parse::<NaiveDateTime>().ok().map(|t| t.date())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns the document states take exactly the years [`YEARS`] holds.
    #[test]
    fn the_schema_patterns_state_the_years() {
        let date = regex_automata::meta::Regex::new(DATE_PATTERN).unwrap();
        let time = regex_automata::meta::Regex::new(DATE_TIME_PATTERN).unwrap();
        for year in 0..=10_500 {
            let text = format!("{year:04}-06-15");
            assert_eq!(date.is_match(&text), YEARS.contains(&year), "{text}");
            let stamp = format!("{year:04}-06-15T10:00:00Z");
            assert_eq!(time.is_match(&stamp), YEARS.contains(&year), "{stamp}");
        }
    }

    #[test]
    fn years_as_a_table() {
        let rows: &[(&str, Option<Result<i32, i32>>)] = &[
            ("2024-02-29", Some(Ok(2024))),
            ("1900-01-01", Some(Ok(1900))),
            ("9999-12-31", Some(Ok(9999))),
            ("1899-12-31", Some(Err(1899))),
            ("0000-01-01", Some(Err(0))),
            ("-0001-01-01", Some(Err(-1))),
            ("+10000-01-01", Some(Err(10000))),
            ("0000-01-01T00:00:00Z", Some(Err(0))),
            ("2024-05-01T10:00:00+02:00", Some(Ok(2024))),
            ("2024-05-01T10:00:00", Some(Ok(2024))),
            ("2024-02-30", None),
            ("example.com", None),
            ("12", None),
            ("", None),
        ];
        for (text, expected) in rows {
            let got = parse_any(text).map(|d| check(d).map(|d| d.year()).map_err(|e| e.year));
            assert_eq!(got, *expected, "{text:?}");
        }
    }

    #[test]
    fn the_message_names_the_range() {
        assert_eq!(
            YearOutOfRange { year: 0 }.to_string(),
            "the year 0 is outside 1900..=9999"
        );
    }
}
