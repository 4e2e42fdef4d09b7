//! The one input rule for text Keel stores: what characters a name, a label, a note or a
//! payment reference may hold, and how long each may be.
//!
//! Why a rule at all: PostgreSQL `text` cannot hold U+0000, so a NUL byte that reaches the
//! store is a 500 on one engine and silently stored on the other; a newline in an invoice
//! line's label prints a second line ("PAID IN FULL") on a legal document; a bidi override
//! (U+202E) makes "exe.txt" read as "txt.exe"; a name made of one zero-width space looks
//! empty everywhere it is shown; and a 900 KB label costs seconds of CPU each time an
//! invoice PDF is drawn, and is copied by every renewal.
//!
//! The rule checks and never rewrites: a value is stored byte for byte as sent, or refused
//! with a [`TextError`] naming the [`Problem`]. Every field's [`Rule`] is in [`limits`], the
//! one table of maximum lengths (docs/api-input.md prints it).

use std::fmt;

/// How many lines a kind of text may span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One line: names, labels, references, search queries. No control character at all
    /// (tabs and line breaks included, and U+2028/U+2029).
    Line,
    /// Free text: notes, reasons, descriptions. Line feeds, carriage returns, tabs and the
    /// Unicode line and paragraph separators are allowed; every other control character is
    /// refused.
    Text,
}

/// The rule for one field: its kind, its maximum length in characters (Unicode scalar
/// values, what PostgreSQL's `char_length` counts), and whether it must show something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    pub max_chars: usize,
    /// Required values must hold at least one visible character: whitespace, zero-width
    /// joiners and direction marks alone do not count.
    pub required: bool,
    /// A required value may instead be blank (spaces only), which means "not given": an
    /// order item's label left blank takes the product's name. A value of only zero-width
    /// characters is still refused: it would print as nothing where a label is expected.
    pub blank_means_absent: bool,
}

impl Rule {
    /// A required one-line value.
    pub const fn line(max_chars: usize) -> Rule {
        Rule {
            kind: Kind::Line,
            max_chars,
            required: true,
            blank_means_absent: false,
        }
    }

    /// A required free-text value.
    pub const fn text(max_chars: usize) -> Rule {
        Rule {
            kind: Kind::Text,
            max_chars,
            required: true,
            blank_means_absent: false,
        }
    }

    /// The same rule, but an empty value (or one of only whitespace) is allowed: a search
    /// query that matches everything, a note left blank.
    pub const fn may_be_empty(self) -> Rule {
        Rule {
            required: false,
            ..self
        }
    }

    /// The same rule, but a blank value (spaces only) is taken as absent; see
    /// [`Rule::blank_means_absent`].
    pub const fn blank_means_absent(self) -> Rule {
        Rule {
            blank_means_absent: true,
            ..self
        }
    }

    /// Checks `value` against the rule; the first problem found is returned.
    pub fn check(&self, value: &str) -> Result<(), TextError> {
        let fail = |problem| {
            Err(TextError {
                problem,
                max_chars: self.max_chars,
            })
        };
        let mut chars = 0usize;
        let mut visible = false;
        let mut blank = true;
        for c in value.chars() {
            chars += 1;
            if c == '\0' {
                return fail(Problem::NulCharacter);
            }
            if is_bidi_control(c) {
                return fail(Problem::BidiControl);
            }
            let allowed_break = self.kind == Kind::Text
                && matches!(c, '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}');
            if (c.is_control() || c == '\u{2028}' || c == '\u{2029}') && !allowed_break {
                return fail(Problem::ControlCharacter);
            }
            if is_refused_invisible(c) {
                return fail(Problem::InvisibleCharacter);
            }
            visible |= !c.is_whitespace() && !is_invisible(c);
            blank &= c.is_whitespace();
        }
        if chars > self.max_chars {
            return fail(Problem::TooLong);
        }
        if self.required && !visible && !(self.blank_means_absent && blank) {
            return fail(Problem::Empty);
        }
        Ok(())
    }
}

/// Every stored text field's rule: one table, so a reviewer sees all the limits at once.
/// The maxima follow what WHMCS-class billing software stores (names and labels about 200
/// characters, notes a few thousand), small enough that no one field can make an invoice,
/// a PDF or a list page expensive.
pub mod limits {
    use super::Rule;

    /// A person's first or last name, a company name, an address line, a city, a tax id.
    pub const NAME: Rule = Rule::line(200);
    /// A staff user's display name.
    pub const STAFF_NAME: Rule = Rule::line(200);
    /// An API key's name.
    pub const KEY_NAME: Rule = Rule::line(100);
    /// An order item's label (a domain or host name shown on invoice lines and renewals).
    pub const LABEL: Rule = Rule::line(200).blank_means_absent();
    /// A manual invoice line's description: printed on the invoice, so one line.
    pub const LINE_DESCRIPTION: Rule = Rule::line(500);
    /// A catalog name: product group, product, option, option value, tax rule, client group.
    pub const CATALOG_NAME: Rule = Rule::line(200);
    /// A product's description (shown in order forms).
    pub const PRODUCT_DESCRIPTION: Rule = Rule::text(10_000).may_be_empty();
    /// A dunning policy's name.
    pub const POLICY_NAME: Rule = Rule::line(100);
    /// A payment's reference (bank transfer id, cheque number): short, one line.
    pub const REFERENCE: Rule = Rule::line(100);
    /// A payment's note.
    pub const NOTE: Rule = Rule::text(4_000).may_be_empty();
    /// Why something was done: credit notes, cancellations, status changes, order closes,
    /// wallet moves.
    pub const REASON: Rule = Rule::text(1_000);
    /// A journal entry's memo (a ledger adjustment, a staff wallet adjustment, a reversal's
    /// reason), shown in ledger listings.
    pub const MEMO: Rule = Rule::text(500);
    /// A webhook endpoint's description.
    pub const WEBHOOK_DESCRIPTION: Rule = Rule::line(200).may_be_empty();
    /// Why a webhook endpoint was disabled.
    pub const DISABLED_REASON: Rule = Rule::text(1_000).may_be_empty();
    /// An identifier typed by staff (a product's provisioner or registrar plugin id).
    pub const IDENTIFIER: Rule = Rule::line(100);
    /// A tax rule's region (a state or province name or code).
    pub const REGION: Rule = Rule::line(100).may_be_empty();
    /// A search query (`q`): one line; empty matches everything.
    pub const SEARCH: Rule = Rule::line(200).may_be_empty();
}

/// Each field's schema from its rule in [`limits`], for `#[schema(schema_with = …)]` on
/// the field: the OpenAPI document states the same pattern and length the handler checks.
pub mod schema {
    use super::limits;
    use utoipa::openapi::Object;

    macro_rules! from_rules {
        ($($(#[$doc:meta])* $name:ident = $rule:expr;)*) => {
            $($(#[$doc])* pub fn $name() -> Object { $rule.schema() })*
        };
    }

    from_rules! {
        name = limits::NAME;
        /// A name that may be left empty (a company name, an address line, a tax id).
        name_optional = limits::NAME.may_be_empty();
        staff_name = limits::STAFF_NAME;
        key_name = limits::KEY_NAME;
        label = limits::LABEL;
        line_description = limits::LINE_DESCRIPTION;
        catalog_name = limits::CATALOG_NAME;
        product_description = limits::PRODUCT_DESCRIPTION;
        identifier = limits::IDENTIFIER;
        region = limits::REGION;
        policy_name = limits::POLICY_NAME;
        reference = limits::REFERENCE;
        note = limits::NOTE;
        reason = limits::REASON;
        memo = limits::MEMO;
        webhook_description = limits::WEBHOOK_DESCRIPTION;
        disabled_reason = limits::DISABLED_REASON;
        search = limits::SEARCH;
    }
}

/// What is wrong with a value; `as_str` is the stable code the API sends in
/// `details.problem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// No visible character (empty, whitespace, or only zero-width or direction marks).
    Empty,
    /// More characters than the field's maximum.
    TooLong,
    /// U+0000, which PostgreSQL text cannot hold.
    NulCharacter,
    /// A control character the kind does not allow (a line break in a one-line value).
    ControlCharacter,
    /// A bidi embedding, override or isolate control (U+202A–U+202E, U+2066–U+2069).
    BidiControl,
    /// A character that is invisible on its own and has no use in stored text: zero-width
    /// space, word joiner, invisible operators, BOM.
    InvisibleCharacter,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Empty => "empty",
            Problem::TooLong => "too_long",
            Problem::NulCharacter => "nul_character",
            Problem::ControlCharacter => "control_character",
            Problem::BidiControl => "bidi_control",
            Problem::InvisibleCharacter => "invisible_character",
        }
    }
}

/// A value the rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextError {
    pub problem: Problem,
    /// The field's maximum, for the message and the API's details.
    pub max_chars: usize,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            Problem::Empty => f.write_str("must contain a visible character"),
            Problem::TooLong => write!(f, "must be at most {} characters", self.max_chars),
            Problem::NulCharacter => f.write_str("must not contain NUL (U+0000)"),
            Problem::ControlCharacter => {
                f.write_str("must not contain control characters or line breaks")
            }
            Problem::BidiControl => f.write_str(
                "must not contain bidirectional embedding, override or isolate controls",
            ),
            Problem::InvisibleCharacter => {
                f.write_str("must not contain zero-width spaces, word joiners or byte order marks")
            }
        }
    }
}

impl std::error::Error for TextError {}

/// The bidi controls that change how the text around them is ordered: embeddings and
/// overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI). The marks
/// LRM, RLM and ALM only nudge neutral characters and are needed in right-to-left text,
/// so they are allowed (but are not visible on their own).
const BIDI_CONTROLS: &[(char, char)] = &[('\u{202A}', '\u{202E}'), ('\u{2066}', '\u{2069}')];

/// Invisible characters with no place in stored text; refused wherever they appear.
const REFUSED_INVISIBLE: &[(char, char)] = &[
    ('\u{180E}', '\u{180E}'), // Mongolian vowel separator (formerly a space)
    ('\u{200B}', '\u{200B}'), // zero-width space
    ('\u{2060}', '\u{2064}'), // word joiner, invisible operators
    ('\u{FEFF}', '\u{FEFF}'), // byte order mark / zero-width no-break space
];

/// Characters that draw nothing: they may sit inside text (a zero-width joiner in an emoji
/// or a Persian name, a direction mark in Arabic) but do not make a value non-empty.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{034F}', '\u{034F}'),   // combining grapheme joiner
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark
    ('\u{115F}', '\u{1160}'),   // Hangul fillers
    ('\u{17B4}', '\u{17B5}'),   // Khmer inherent vowels
    ('\u{200C}', '\u{200F}'),   // ZWNJ, ZWJ, LRM, RLM
    ('\u{206A}', '\u{206F}'),   // deprecated format characters
    ('\u{2800}', '\u{2800}'),   // braille blank
    ('\u{3164}', '\u{3164}'),   // Hangul filler
    ('\u{FE00}', '\u{FE0F}'),   // variation selectors
    ('\u{FFA0}', '\u{FFA0}'),   // halfwidth Hangul filler
    ('\u{E0000}', '\u{E007F}'), // tags
];

/// Control characters (general category Cc, what `char::is_control` tests).
const CONTROLS: &[(char, char)] = &[('\u{0000}', '\u{001F}'), ('\u{007F}', '\u{009F}')];

/// The line and paragraph separators, refused in one-line values like line feeds.
const SEPARATORS: &[(char, char)] = &[('\u{2028}', '\u{2029}')];

/// White space (the Unicode `White_Space` property, what `char::is_whitespace` tests).
const WHITESPACE: &[(char, char)] = &[
    ('\u{0009}', '\u{000D}'),
    ('\u{0020}', '\u{0020}'),
    ('\u{0085}', '\u{0085}'),
    ('\u{00A0}', '\u{00A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

fn within(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn is_bidi_control(c: char) -> bool {
    within(BIDI_CONTROLS, c)
}

fn is_refused_invisible(c: char) -> bool {
    within(REFUSED_INVISIBLE, c)
}

fn is_invisible(c: char) -> bool {
    is_refused_invisible(c) || within(INVISIBLE, c)
}

/// Writes `ranges` as the inside of a regular-expression character class, each character
/// escaped as `\u{…}` (read alike by ECMA-262 with the `u` flag and Rust's `regex`).
fn class(out: &mut String, ranges: &[(char, char)]) {
    for &(lo, hi) in ranges {
        out.push_str(&format!("\\u{{{:04X}}}", u32::from(lo)));
        if hi != lo {
            out.push_str(&format!("-\\u{{{:04X}}}", u32::from(hi)));
        }
    }
}

impl Rule {
    /// The characters the rule refuses anywhere in a value.
    fn refused(&self) -> Vec<(char, char)> {
        let mut refused: Vec<(char, char)> = match self.kind {
            Kind::Line => [CONTROLS, SEPARATORS].concat(),
            // Tab, line feed and carriage return (U+0009, U+000A, U+000D) are allowed.
            Kind::Text => vec![
                ('\u{0000}', '\u{0008}'),
                ('\u{000B}', '\u{000C}'),
                ('\u{000E}', '\u{001F}'),
                ('\u{007F}', '\u{009F}'),
            ],
        };
        refused.extend_from_slice(BIDI_CONTROLS);
        refused.extend_from_slice(REFUSED_INVISIBLE);
        refused
    }

    /// The rule's characters as an anchored regular expression (ECMA-262 with the `u`
    /// flag, as JSON Schema reads `pattern`): what the OpenAPI document states, so a
    /// generated client refuses before sending what [`Rule::check`] would refuse. The
    /// length is not in it; [`Rule::schema`] states it as `maxLength`.
    pub fn pattern(&self) -> String {
        let mut allowed = String::from("[^");
        class(&mut allowed, &self.refused());
        allowed.push(']');
        if !self.required {
            return format!("^{allowed}*$");
        }
        let mut visible = String::from("[^");
        class(&mut visible, &self.refused());
        class(&mut visible, WHITESPACE);
        class(&mut visible, INVISIBLE);
        visible.push(']');
        if !self.blank_means_absent {
            return format!("^{allowed}*{visible}{allowed}*$");
        }
        let refused = self.refused();
        let spaces: Vec<(char, char)> = WHITESPACE
            .iter()
            .flat_map(|&(lo, hi)| lo..=hi)
            .filter(|&c| !within(&refused, c))
            .map(|c| (c, c))
            .collect();
        let mut blank = String::from("[");
        class(&mut blank, &spaces);
        blank.push(']');
        format!("^(?:{blank}*|{allowed}*{visible}{allowed}*)$")
    }

    /// The rule as a string schema: its pattern, its maximum length in characters (JSON
    /// Schema counts characters as [`Rule::check`] does), and a minimum of one character
    /// when a value is required.
    pub fn schema(&self) -> utoipa::openapi::Object {
        use utoipa::openapi::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((self.required && !self.blank_means_absent).then_some(1))
            .max_length(Some(self.max_chars))
            .pattern(Some(self.pattern()))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Problem::*;

    fn outcome(rule: Rule, value: &str) -> Result<(), Problem> {
        rule.check(value).map_err(|e| e.problem)
    }

    #[test]
    fn one_line_values_as_a_table() {
        let name = Rule::line(10);
        let rows: &[(&str, Result<(), Problem>)] = &[
            ("Ada", Ok(())),
            ("  Ada  ", Ok(())),
            ("José Núñez", Ok(())),
            ("محمد\u{200F}", Ok(())),
            ("میرزا\u{200C}ای", Ok(())),
            ("👩\u{200D}💻", Ok(())),
            ("0123456789", Ok(())),
            ("01234567890", Err(TooLong)),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("\u{200C}", Err(Empty)),
            ("\u{200D}\u{200E}", Err(Empty)),
            ("\u{3164}", Err(Empty)),
            ("\u{200B}", Err(InvisibleCharacter)),
            ("Ada\u{FEFF}", Err(InvisibleCharacter)),
            ("A\u{2060}da", Err(InvisibleCharacter)),
            ("Ada\0", Err(NulCharacter)),
            ("Ada\nPAID", Err(ControlCharacter)),
            ("Ada\tB", Err(ControlCharacter)),
            ("Ada\rB", Err(ControlCharacter)),
            ("A\u{2028}B", Err(ControlCharacter)),
            ("A\u{7F}", Err(ControlCharacter)),
            ("A\u{85}", Err(ControlCharacter)),
            ("a\u{202E}gpj", Err(BidiControl)),
            ("a\u{202A}b", Err(BidiControl)),
            ("a\u{2066}b\u{2069}", Err(BidiControl)),
        ];
        for (value, expected) in rows {
            assert_eq!(outcome(name, value), *expected, "{value:?}");
        }
    }

    #[test]
    fn free_text_allows_line_breaks_and_tabs_only() {
        let note = Rule::text(20);
        let rows: &[(&str, Result<(), Problem>)] = &[
            ("paid\nby cheque", Ok(())),
            ("a\r\n\tb", Ok(())),
            ("a\u{2028}b", Ok(())),
            ("\n\n", Err(Empty)),
            ("a\0", Err(NulCharacter)),
            ("a\u{1B}[31m", Err(ControlCharacter)),
            ("a\u{8}", Err(ControlCharacter)),
            ("a\u{202E}b", Err(BidiControl)),
            ("a\u{200B}", Err(InvisibleCharacter)),
        ];
        for (value, expected) in rows {
            assert_eq!(outcome(note, value), *expected, "{value:?}");
        }
    }

    #[test]
    fn optional_values_may_be_empty_but_not_invalid() {
        let search = limits::SEARCH;
        assert_eq!(outcome(search, ""), Ok(()));
        assert_eq!(outcome(search, "  "), Ok(()));
        assert_eq!(outcome(search, "\0"), Err(NulCharacter));
        assert_eq!(outcome(search, &"a".repeat(201)), Err(TooLong));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let label = limits::LABEL;
        assert_eq!(outcome(label, &"é".repeat(200)), Ok(()));
        assert_eq!(outcome(label, &"é".repeat(201)), Err(TooLong));
        assert_eq!(outcome(label, &"x".repeat(900_000)), Err(TooLong));
    }

    /// The pattern the OpenAPI document states refuses exactly what [`Rule::check`]
    /// refuses, for every character of the Basic Multilingual Plane and the tags block and
    /// a sample of the other planes, alone and inside a visible value, for each kind,
    /// required or not (length aside: that is `maxLength`).
    #[test]
    fn the_schema_pattern_agrees_with_the_rule_on_every_character() {
        use regex_automata::meta::Regex;
        for rule in [
            Rule::line(usize::MAX),
            Rule::line(usize::MAX).may_be_empty(),
            Rule::text(usize::MAX),
            Rule::text(usize::MAX).may_be_empty(),
            Rule::line(usize::MAX).blank_means_absent(),
        ] {
            let re = Regex::new(&rule.pattern()).expect("the pattern compiles");
            assert_eq!(re.is_match(""), rule.check("").is_ok(), "{rule:?} on \"\"");
            let planes = (0x1_0000..=0x10_FFFF).step_by(97);
            let chars = (0..=0xFFFF).chain(0xE_0000..=0xE_0100).chain(planes);
            for c in chars.filter_map(char::from_u32) {
                for value in [c.to_string(), format!("a{c}")] {
                    assert_eq!(
                        re.is_match(&value),
                        rule.check(&value).is_ok(),
                        "{rule:?} on {value:?} (U+{:04X})",
                        u32::from(c)
                    );
                }
            }
        }
    }

    #[test]
    fn the_character_tables_are_the_standard_library_s_classes() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                within(CONTROLS, c),
                c.is_control(),
                "U+{:04X}",
                u32::from(c)
            );
            assert_eq!(
                within(WHITESPACE, c),
                c.is_whitespace(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn the_schema_states_the_length_and_the_pattern() {
        let schema = serde_json::to_value(limits::KEY_NAME.schema()).expect("JSON");
        assert_eq!(schema["maxLength"], 100);
        assert_eq!(schema["minLength"], 1);
        assert_eq!(schema["pattern"], limits::KEY_NAME.pattern());
        let optional = serde_json::to_value(limits::NOTE.schema()).expect("JSON");
        assert_eq!(optional.get("minLength"), None);
        assert_eq!(optional["maxLength"], 4000);
    }

    #[test]
    fn the_problem_codes_are_stable() {
        let codes: Vec<_> = [
            Empty,
            TooLong,
            NulCharacter,
            ControlCharacter,
            BidiControl,
            InvisibleCharacter,
        ]
        .iter()
        .map(|p| p.as_str())
        .collect();
        assert_eq!(
            codes,
            [
                "empty",
                "too_long",
                "nul_character",
                "control_character",
                "bidi_control",
                "invisible_character"
            ]
        );
        let e = TextError {
            problem: TooLong,
            max_chars: 200,
        };
        assert_eq!(e.to_string(), "must be at most 200 characters");
    }
}
