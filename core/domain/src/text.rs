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
}

impl Rule {
    /// A required one-line value.
    pub const fn line(max_chars: usize) -> Rule {
        Rule {
            kind: Kind::Line,
            max_chars,
            required: true,
        }
    }

    /// A required free-text value.
    pub const fn text(max_chars: usize) -> Rule {
        Rule {
            kind: Kind::Text,
            max_chars,
            required: true,
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
        }
        if chars > self.max_chars {
            return fail(Problem::TooLong);
        }
        if self.required && !visible {
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
    pub const LABEL: Rule = Rule::line(200);
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
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Invisible characters with no place in stored text; refused wherever they appear.
fn is_refused_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' // zero-width space
        | '\u{2060}'
            ..='\u{2064}' // word joiner, invisible operators
        | '\u{FEFF}' // byte order mark / zero-width no-break space
        | '\u{180E}' // Mongolian vowel separator (formerly a space)
    )
}

/// Characters that draw nothing: they may sit inside text (a zero-width joiner in an emoji
/// or a Persian name, a direction mark in Arabic) but do not make a value non-empty.
fn is_invisible(c: char) -> bool {
    is_refused_invisible(c)
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{061C}' // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{200C}'..='\u{200F}' // ZWNJ, ZWJ, LRM, RLM
            | '\u{206A}'..='\u{206F}' // deprecated format characters
            | '\u{2800}' // braille blank
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{E0000}'..='\u{E007F}' // tags
        )
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
