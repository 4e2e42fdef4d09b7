//! Document numbers: the format of invoice and credit-note numbers such as
//! `INV-2026-00042`, and the scope in which their counter runs.
//!
//! The same rules with more worked examples are in `docs/billing.md`.
//!
//! # The rules
//!
//! A [`NumberFormat`] is literal text with tokens in braces:
//!
//! | token | renders | for 2026-11-24, counter 42 |
//! |---|---|---|
//! | `{YYYY}` | the year, four digits | `2026` |
//! | `{YY}` | the year's last two digits | `26` |
//! | `{MM}` | the month, two digits | `11` |
//! | `{DD}` | the day, two digits | `24` |
//! | `{SEQ}` | the counter, no padding | `42` |
//! | `{SEQ:n}` | the counter zero-padded to at least `n` digits (1 to 12), never cut | `{SEQ:5}` → `00042` |
//!
//! A format has exactly one `{SEQ}` or `{SEQ:n}` token, is 1 to 64 characters long, and
//! its literal text is printable ASCII (space to `~`) without braces. Tokens are upper
//! case. Anything else is a [`NumberingError`] whose message names the offending token or
//! character.
//!
//! **The counter's scope.** Each format keeps one counter per *scope*
//! ([`NumberFormat::scope`]); a new scope starts again at 1. The scope is the part of
//! the date that the number shows, counted from the year down, so a counter restarts
//! only when the printed number can no longer repeat an earlier one:
//!
//! | format | scope on 2026-11-24 | counter restarts |
//! |---|---|---|
//! | `INV-{SEQ:6}` | `""` | never |
//! | `INV-{YYYY}-{SEQ:5}` | `2026` | every year |
//! | `CN{YY}{MM}-{SEQ}` | `2026-11` | every month |
//! | `{YYYY}{MM}{DD}-{SEQ:3}` | `2026-11-24` | every day |
//! | `INV-{MM}-{SEQ}` | `""` | never: the number shows no year, so November 2027 must not reuse November 2026's numbers |
//! | `{YYYY}/{DD}/{SEQ}` | `2026` | every year: the day alone does not tell months apart |
//!
//! The scope always names the full year (`2026`, even for `{YY}`), so a store can key
//! its counters by `(format, scope)`.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// The longest format accepted, in characters.
pub const MAX_FORMAT_LEN: usize = 64;

/// The widest zero padding `{SEQ:n}` accepts.
pub const MAX_SEQUENCE_WIDTH: usize = 12;

/// A parsed, valid number format such as `INV-{YYYY}-{SEQ:5}`.
///
/// Built only by [`NumberFormat::parse`] (or `FromStr`, `TryFrom<String>`, serde, all of
/// which validate); serialized as the format string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NumberFormat {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Token {
    Literal(String),
    Year,
    ShortYear,
    Month,
    Day,
    /// Zero-padded to at least `width` digits; 0 means no padding.
    Sequence {
        width: usize,
    },
}

/// Why a number format was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberingError {
    #[error("a number format cannot be empty; write something like INV-{{YYYY}}-{{SEQ:5}}")]
    Empty,
    #[error("a number format can be at most 64 characters long, but this one has {length}")]
    TooLong { length: usize },
    #[error(
        "character {position} of the number format, {character:?}, is not allowed; literal \
         text may only use printable ASCII characters other than braces"
    )]
    InvalidCharacter { character: char, position: usize },
    #[error(
        "the {brace} at character {position} of the number format has no partner; tokens \
         are written like {{SEQ}}, and literal text cannot contain braces"
    )]
    UnbalancedBrace { brace: char, position: usize },
    #[error(
        "{0} is not a number format token; use {{YYYY}}, {{YY}}, {{MM}}, {{DD}}, {{SEQ}} \
         or {{SEQ:n}} (upper case)"
    )]
    UnknownToken(String),
    #[error("in {0}, the counter width must be a whole number from 1 to 12")]
    InvalidSequenceWidth(String),
    #[error("a number format needs one {{SEQ}} or {{SEQ:n}} token for the counter")]
    MissingSequence,
    #[error("a number format can have only one counter token, but it has {0}")]
    DuplicateSequence(usize),
}

impl NumberingError {
    /// A stable snake_case name for the variant, for API error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            NumberingError::Empty => "empty_number_format",
            NumberingError::TooLong { .. } => "number_format_too_long",
            NumberingError::InvalidCharacter { .. } => "invalid_character",
            NumberingError::UnbalancedBrace { .. } => "unbalanced_brace",
            NumberingError::UnknownToken(_) => "unknown_token",
            NumberingError::InvalidSequenceWidth(_) => "invalid_sequence_width",
            NumberingError::MissingSequence => "missing_sequence",
            NumberingError::DuplicateSequence(_) => "duplicate_sequence",
        }
    }
}

impl NumberFormat {
    /// Parses and checks a format, e.g. "INV-{YYYY}-{SEQ:5}", "CN{YY}{MM}-{SEQ}".
    pub fn parse(format: &str) -> Result<NumberFormat, NumberingError> {
        if format.is_empty() {
            return Err(NumberingError::Empty);
        }
        let length = format.chars().count();
        if length > MAX_FORMAT_LEN {
            return Err(NumberingError::TooLong { length });
        }
        if let Some((index, character)) = format
            .chars()
            .enumerate()
            .find(|(_, character)| !matches!(character, ' '..='~'))
        {
            return Err(NumberingError::InvalidCharacter {
                character,
                position: index + 1,
            });
        }

        // Printable ASCII from here on: byte offsets are character positions.
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut rest = format;
        let mut offset = 0;
        while let Some(brace) = rest.find(['{', '}']) {
            literal.push_str(&rest[..brace]);
            let position = offset + brace + 1;
            if rest.as_bytes()[brace] == b'}' {
                return Err(NumberingError::UnbalancedBrace {
                    brace: '}',
                    position,
                });
            }
            let after = &rest[brace + 1..];
            let close = match after.find(['{', '}']) {
                Some(close) if after.as_bytes()[close] == b'}' => close,
                _ => {
                    return Err(NumberingError::UnbalancedBrace {
                        brace: '{',
                        position,
                    });
                }
            };
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(parse_token(&after[..close])?);
            let consumed = brace + 1 + close + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }

        let sequences = tokens
            .iter()
            .filter(|token| matches!(token, Token::Sequence { .. }))
            .count();
        match sequences {
            0 => Err(NumberingError::MissingSequence),
            1 => Ok(NumberFormat {
                source: format.to_owned(),
                tokens,
            }),
            more => Err(NumberingError::DuplicateSequence(more)),
        }
    }

    /// The counter's scope: the counter restarts when this changes. "{YYYY}" or "{YY}"
    /// in the format → "2026"; plus "{MM}" → "2026-11"; plus "{DD}" → "2026-11-24"; no
    /// year token → "" (one counter for ever). See the module docs.
    pub fn scope(&self, date: NaiveDate) -> String {
        let has = |wanted: &Token| self.tokens.contains(wanted);
        let has_year = has(&Token::Year) || has(&Token::ShortYear);
        let year = date.year();
        match (has_year, has(&Token::Month), has(&Token::Day)) {
            (false, _, _) => String::new(),
            (true, false, _) => format!("{year:04}"),
            (true, true, false) => format!("{year:04}-{:02}", date.month()),
            (true, true, true) => format!("{year:04}-{:02}-{:02}", date.month(), date.day()),
        }
    }

    /// The number for `date` and counter value `seq`: `{SEQ:5}` zero-pads to at least 5
    /// digits and never truncates; `{SEQ}` has no padding.
    pub fn render(&self, date: NaiveDate, seq: u64) -> String {
        let mut out = String::with_capacity(self.source.len() + 16);
        for token in &self.tokens {
            // Writing to a String cannot fail.
            let _ = match token {
                Token::Literal(text) => {
                    out.push_str(text);
                    Ok(())
                }
                Token::Year => write!(out, "{:04}", date.year()),
                Token::ShortYear => write!(out, "{:02}", date.year().rem_euclid(100)),
                Token::Month => write!(out, "{:02}", date.month()),
                Token::Day => write!(out, "{:02}", date.day()),
                Token::Sequence { width } => write!(out, "{seq:0width$}"),
            };
        }
        out
    }

    /// The format as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// The inside of `{…}`.
fn parse_token(inside: &str) -> Result<Token, NumberingError> {
    match inside {
        "YYYY" => return Ok(Token::Year),
        "YY" => return Ok(Token::ShortYear),
        "MM" => return Ok(Token::Month),
        "DD" => return Ok(Token::Day),
        "SEQ" => return Ok(Token::Sequence { width: 0 }),
        _ => {}
    }
    let Some(digits) = inside.strip_prefix("SEQ:") else {
        return Err(NumberingError::UnknownToken(format!("{{{inside}}}")));
    };
    // One or two plain digits: no sign, no spaces, no "005".
    let plain = (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    match digits.parse::<usize>() {
        Ok(width) if plain && (1..=MAX_SEQUENCE_WIDTH).contains(&width) => {
            Ok(Token::Sequence { width })
        }
        _ => Err(NumberingError::InvalidSequenceWidth(format!(
            "{{{inside}}}"
        ))),
    }
}

impl fmt::Display for NumberFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for NumberFormat {
    type Err = NumberingError;

    fn from_str(format: &str) -> Result<Self, Self::Err> {
        NumberFormat::parse(format)
    }
}

impl TryFrom<String> for NumberFormat {
    type Error = NumberingError;

    fn try_from(format: String) -> Result<Self, Self::Error> {
        NumberFormat::parse(&format)
    }
}

impl From<NumberFormat> for String {
    fn from(format: NumberFormat) -> String {
        format.source
    }
}

impl PartialSchema for NumberFormat {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "A document number format: printable ASCII with the tokens {YYYY}, {YY}, \
                     {MM}, {DD} and exactly one {SEQ} or {SEQ:n} (n from 1 to 12)",
                ))
                .min_length(Some(1))
                .max_length(Some(MAX_FORMAT_LEN))
                .examples(["INV-{YYYY}-{SEQ:5}"])
                .build(),
        )
        .into()
    }
}

impl ToSchema for NumberFormat {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|_| panic!("bad date {text}"))
    }

    #[test]
    fn formats_render_and_scope_as_the_table_says() {
        // (format, date, seq, expected number, expected scope)
        let rows = [
            (
                "INV-{YYYY}-{SEQ:5}",
                "2026-11-24",
                42,
                "INV-2026-00042",
                "2026",
            ),
            ("CN{YY}{MM}-{SEQ}", "2026-11-24", 42, "CN2611-42", "2026-11"),
            (
                "{YYYY}{MM}{DD}-{SEQ:3}",
                "2026-11-24",
                42,
                "20261124-042",
                "2026-11-24",
            ),
            ("{SEQ}", "2026-11-24", 42, "42", ""),
            ("INV-{SEQ:6}", "2026-11-24", 42, "INV-000042", ""),
            ("INV-{MM}-{SEQ}", "2026-11-24", 42, "INV-11-42", ""),
            ("{DD}.{MM}/{SEQ}", "2026-11-24", 42, "24.11/42", ""),
            ("{YYYY}/{DD}/{SEQ}", "2026-11-24", 42, "2026/24/42", "2026"),
            ("{YY}-{DD}-{SEQ}", "2026-11-24", 42, "26-24-42", "2026"),
            ("{MM}{YY}{SEQ:2}", "2026-01-05", 7, "012607", "2026-01"),
            (
                "Invoice {SEQ} of {YYYY}",
                "2026-11-24",
                42,
                "Invoice 42 of 2026",
                "2026",
            ),
            ("#{SEQ:12}", "2026-11-24", 42, "#000000000042", ""),
            // Padding is a minimum: a counter wider than the width is never cut.
            ("INV-{SEQ:5}", "2026-11-24", 1_234_567, "INV-1234567", ""),
            ("{SEQ:1}", "2026-11-24", 42, "42", ""),
            ("{SEQ:5}", "2026-11-24", 0, "00000", ""),
            ("{SEQ}", "2026-11-24", u64::MAX, "18446744073709551615", ""),
            // Years are four digits, short years two, both zero-padded.
            ("{YYYY}{YY}-{SEQ}", "0999-03-04", 1, "099999-1", "0999"),
            ("{YY}-{SEQ}", "2005-03-04", 1, "05-1", "2005"),
            (
                "{YY}{MM}{DD}{SEQ}",
                "2100-03-04",
                1,
                "0003041",
                "2100-03-04",
            ),
            // Literal text: any printable ASCII but braces.
            (
                "A ~!@#$%^&*()_+-=[]|\\:;\"'<>,.?/`{SEQ}",
                "2026-11-24",
                1,
                "A ~!@#$%^&*()_+-=[]|\\:;\"'<>,.?/`1",
                "",
            ),
        ];
        for (format, on, seq, number, scope) in rows {
            let parsed = NumberFormat::parse(format)
                .unwrap_or_else(|error| panic!("format {format:?}: {error}"));
            assert_eq!(parsed.render(date(on), seq), number, "format {format:?}");
            assert_eq!(parsed.scope(date(on)), scope, "format {format:?}");
            assert_eq!(parsed.as_str(), format);
            assert_eq!(parsed.to_string(), format);
        }
    }

    #[test]
    fn invalid_formats_are_refused_naming_the_problem() {
        let too_long = format!("{}{{SEQ}}", "X".repeat(60));
        let longest = format!("{}{{SEQ}}", "X".repeat(59));
        assert!(NumberFormat::parse(&longest).is_ok());
        // (format, expected code, text the message must contain)
        let rows: &[(&str, &str, &str)] = &[
            ("", "empty_number_format", "cannot be empty"),
            (&too_long, "number_format_too_long", "has 65"),
            ("INV-{YYYY}", "missing_sequence", "{SEQ}"),
            ("INV-2026", "missing_sequence", "{SEQ}"),
            ("{SEQ}-{SEQ}", "duplicate_sequence", "has 2"),
            ("{SEQ:5}{YY}{SEQ}", "duplicate_sequence", "has 2"),
            ("INV-{YEAR}-{SEQ}", "unknown_token", "{YEAR} is not"),
            ("{seq}", "unknown_token", "{seq} is not"),
            ("{yyyy}-{SEQ}", "unknown_token", "upper case"),
            ("{}{SEQ}", "unknown_token", "{} is not"),
            ("{ SEQ }", "unknown_token", "{ SEQ } is not"),
            ("{SEQ:5 }", "invalid_sequence_width", "{SEQ:5 }"),
            ("{SEQ:0}", "invalid_sequence_width", "in {SEQ:0}"),
            ("{SEQ:13}", "invalid_sequence_width", "in {SEQ:13}"),
            ("{SEQ:}", "invalid_sequence_width", "in {SEQ:}"),
            ("{SEQ:x}", "invalid_sequence_width", "in {SEQ:x}"),
            ("{SEQ:-1}", "invalid_sequence_width", "in {SEQ:-1}"),
            ("{SEQ:+5}", "invalid_sequence_width", "in {SEQ:+5}"),
            ("{SEQ:005}", "invalid_sequence_width", "in {SEQ:005}"),
            ("INV-{SEQ", "unbalanced_brace", "the { at character 5"),
            ("INV-SEQ}", "unbalanced_brace", "the } at character 8"),
            ("{{SEQ}}", "unbalanced_brace", "the { at character 1"),
            ("{YY{SEQ}", "unbalanced_brace", "the { at character 1"),
            ("{SEQ}}", "unbalanced_brace", "the } at character 6"),
            (
                "INV\t{SEQ}",
                "invalid_character",
                "character 4 of the number format, '\\t'",
            ),
            (
                "FACTURÉ-{SEQ}",
                "invalid_character",
                "character 7 of the number format, 'É'",
            ),
            ("INV-{SEQ}\n", "invalid_character", "character 10"),
        ];
        for &(format, code, message) in rows {
            let error = NumberFormat::parse(format).unwrap_err();
            assert_eq!(error.code(), code, "format {format:?}: {error}");
            assert!(
                error.to_string().contains(message),
                "format {format:?}: {error:?} does not say {message:?}: {error}"
            );
        }
        let too_long_accented = "É".repeat(65);
        assert_eq!(
            NumberFormat::parse(&too_long_accented),
            Err(NumberingError::TooLong { length: 65 })
        );
    }

    #[test]
    fn serde_uses_the_format_string_and_validates_it() {
        let format = NumberFormat::parse("INV-{YYYY}-{SEQ:5}").unwrap();
        let json = serde_json::to_string(&format).unwrap();
        assert_eq!(json, "\"INV-{YYYY}-{SEQ:5}\"");
        assert_eq!(serde_json::from_str::<NumberFormat>(&json).unwrap(), format);
        let error = serde_json::from_str::<NumberFormat>("\"INV-{YEAR}\"").unwrap_err();
        assert!(error.to_string().contains("{YEAR} is not"), "{error}");
        assert_eq!(
            "CN{YY}{MM}-{SEQ}".parse::<NumberFormat>().unwrap().as_str(),
            "CN{YY}{MM}-{SEQ}"
        );
        let schema = serde_json::to_value(<NumberFormat as PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["maxLength"], 64);
    }

    /// A piece of a generated format.
    fn any_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -z|~]{1,4}",
            Just("{YYYY}".to_owned()),
            Just("{YY}".to_owned()),
            Just("{MM}".to_owned()),
            Just("{DD}".to_owned()),
        ]
    }

    fn any_format() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(any_piece(), 0..6),
            prop_oneof![
                Just("{SEQ}".to_owned()),
                (1usize..=12).prop_map(|width| format!("{{SEQ:{width}}}"))
            ],
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut pieces, sequence, at)| {
                let at = at.index(pieces.len() + 1);
                pieces.insert(at, sequence);
                pieces.concat()
            })
            .prop_filter("at most 64 characters", |format| {
                format.len() <= MAX_FORMAT_LEN
            })
    }

    fn any_date() -> impl Strategy<Value = NaiveDate> {
        // {YY} repeats every hundred years; stay inside one century.
        (0u64..36_500).prop_map(|offset| date("2000-01-01") + chrono::Days::new(offset))
    }

    proptest! {
        #[test]
        fn numbers_never_repeat_unless_the_counter_does_in_the_same_scope(
            format in any_format(),
            (first_date, second_date) in (any_date(), any_date()),
            (first_seq, second_seq) in (0u64..100_000, 0u64..100_000),
        ) {
            let format = NumberFormat::parse(&format).unwrap();
            let first = format.render(first_date, first_seq);
            let second = format.render(second_date, second_seq);
            let same_scope = format.scope(first_date) == format.scope(second_date);
            if !same_scope || first_seq != second_seq {
                prop_assert_ne!(&first, &second, "{} {} {}", format, first_date, second_date);
            }
            prop_assert_eq!(format.as_str().parse::<NumberFormat>().unwrap(), format.clone());
        }
    }
}
