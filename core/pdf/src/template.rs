//! Templates: minijinja sources whose output is layout text.
//!
//! Printing with `{{ … }}` is set up for the layout language rather than HTML: a string
//! prints as a quoted layout string (`"…"`, with `"` and `\` escaped), so no document text
//! can break a layout line or add a command; a number prints bare; `none` prints `""`;
//! a value marked `|safe` (and a macro's output) prints as it is.

use std::sync::OnceLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

use crate::document::{Document, DocumentKind, Line, Party, TotalRow};
use crate::error::PdfError;
use crate::flow::{PAGE_HEIGHT, PAGE_WIDTH};
use crate::fonts::Font;
use crate::layout;

/// The built-in template's source, also a starting point for a host's own.
pub const BUILTIN_SOURCE: &str = include_str!("../templates/invoice.jinja");

/// The name the built-in template reports in errors.
pub const BUILTIN_NAME: &str = "builtin/invoice.jinja";

/// Template instructions one render may execute (minijinja "fuel"): far above what a
/// thousand-line invoice needs, low enough that a runaway loop in a host's template fails
/// in about a second instead of holding a worker.
const FUEL: u64 = 50_000_000;

/// A loaded, checked template. Load it once at start and share it (it is `Send + Sync`,
/// and cloning is cheap): rendering takes `&self`.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    environment: Environment<'static>,
}

impl Template {
    /// The template shipped with Keel (loaded once per process, then cloned).
    pub fn builtin() -> Template {
        static BUILTIN: OnceLock<Template> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The tests load the built-in source; failing here is a bug in this crate.
                Template::from_source(BUILTIN_NAME, BUILTIN_SOURCE)
                    .expect("the built-in template is valid")
            })
            .clone()
    }

    /// Loads a template, e.g. a host's `<theme dir>/pdf/invoice.jinja`; `name` (its path)
    /// names it in errors.
    ///
    /// The template is checked here rather than at the first download: it must parse
    /// ([`PdfError::TemplateSyntax`] with the line), and it is rendered with a sample
    /// invoice (every optional field set) and a sample credit note (none set), whose
    /// layout output must parse too.
    pub fn from_source(name: &str, source: &str) -> Result<Template, PdfError> {
        let template = Template::compile(name, source)?;
        for sample in samples() {
            let text = template
                .render_layout(&sample)
                .map_err(|error| match error {
                    PdfError::TemplateRender {
                        template,
                        line,
                        message,
                    } => PdfError::TemplateRender {
                        template,
                        line,
                        message: format!(
                            "{message} (while rendering a sample {})",
                            kind_name(sample.kind)
                        ),
                    },
                    other => other,
                })?;
            layout::parse(&text).map_err(|error| error.in_template(name))?;
        }
        Ok(template)
    }

    /// Parses a template without trying it on the samples.
    fn compile(name: &str, source: &str) -> Result<Template, PdfError> {
        let mut environment = Environment::new();
        environment.set_trim_blocks(true);
        environment.set_lstrip_blocks(true);
        environment.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        // A custom mode (never used for escaping: the formatter below does it) makes macro
        // output come back marked safe, so a macro's layout lines print unquoted.
        environment.set_auto_escape_callback(|_| AutoEscape::Custom("keel-layout"));
        environment.set_formatter(|out, _state, value| {
            let text = layout_value(value);
            out.write_str(&text).map_err(Error::from)
        });
        environment.set_fuel(Some(FUEL));
        environment.add_global("page_width", PAGE_WIDTH);
        environment.add_global("page_height", PAGE_HEIGHT);
        environment.add_function("text_width", text_width);
        environment.add_function("wrap", wrap);
        environment
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|error| PdfError::TemplateSyntax {
                template: name.to_string(),
                line: error.line().unwrap_or(1),
                message: describe(&error),
            })?;
        Ok(Template {
            name: name.to_string(),
            environment,
        })
    }

    /// The name the template was loaded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template's output for `document`: the layout text [`render`](crate::render)
    /// draws. Useful to debug a template, since layout errors give lines of this text.
    pub fn render_layout(&self, document: &Document) -> Result<String, PdfError> {
        let render_error = |error: Error| PdfError::TemplateRender {
            template: self.name.clone(),
            line: error.line(),
            message: describe(&error),
        };
        let template = self
            .environment
            .get_template(&self.name)
            .map_err(render_error)?;
        template.render(document).map_err(render_error)
    }
}

fn kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Invoice => "invoice",
        DocumentKind::CreditNote => "credit note",
    }
}

/// How a printed value appears in layout text.
fn layout_value(value: &Value) -> String {
    if value.is_safe() {
        return value.to_string();
    }
    match value.kind() {
        ValueKind::Number | ValueKind::Bool => value.to_string(),
        ValueKind::None | ValueKind::Undefined => "\"\"".to_string(),
        _ => quote(&value.to_string()),
    }
}

/// A layout string literal: `"` and `\` escaped, a line break as `\n`.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push(' '),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// minijinja's message without the location, which `PdfError` carries itself; causes
/// (an error raised inside a function) are appended.
fn describe(error: &Error) -> String {
    let mut message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn font_argument(name: Option<&str>) -> Result<Font, Error> {
    let name = name.unwrap_or("helvetica");
    Font::from_name(name).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("unknown font `{name}` (helvetica, helvetica-bold)"),
        )
    })
}

/// `text_width(text, font="helvetica", size=10)`: the width in points `text` takes.
fn text_width(text: &str, font: Option<&str>, size: Option<f64>) -> Result<f64, Error> {
    Ok(font_argument(font)?.text_width(text, size.unwrap_or(10.0)))
}

/// `wrap(text, width, font="helvetica", size=10)`: `text` broken into lines that fit
/// `width` points.
fn wrap(
    text: &str,
    width: f64,
    font: Option<&str>,
    size: Option<f64>,
) -> Result<Vec<String>, Error> {
    Ok(font_argument(font)?.wrap(text, width, size.unwrap_or(10.0)))
}

/// The documents a template is tried with at load: between them every field is set and
/// every optional field is also missing once.
fn samples() -> [Document; 2] {
    let party = |name: &str, tax_id: Option<&str>, email: Option<&str>| Party {
        name: name.to_string(),
        lines: vec!["1 Sample Street".to_string(), "Harare".to_string()],
        tax_id: tax_id.map(str::to_string),
        email: email.map(str::to_string),
    };
    let line = |discount: Option<&str>, tax: Option<&str>| Line {
        description:
            "Sample service with a description long enough to wrap onto a second line of the table"
                .to_string(),
        quantity: "1".to_string(),
        unit_price: "10.00".to_string(),
        discount: discount.map(str::to_string),
        tax: tax.map(str::to_string),
        amount: "10.00".to_string(),
    };
    let total = |label: &str, strong: bool| TotalRow {
        label: label.to_string(),
        amount: "10.00".to_string(),
        strong,
    };
    [
        Document {
            kind: DocumentKind::Invoice,
            number: "INV-0001".to_string(),
            status: "unpaid".to_string(),
            issue_date: "2026-01-01".to_string(),
            due_date: Some("2026-01-15".to_string()),
            seller: party(
                "Sample Hosting",
                Some("VAT 123"),
                Some("billing@example.com"),
            ),
            buyer: party("Sample Client", Some("VAT 456"), Some("client@example.com")),
            currency: "USD".to_string(),
            exchange_rate: Some("1 USD = 26.8 ZWG".to_string()),
            lines: vec![line(Some("10%"), Some("VAT 15%")), line(None, None)],
            totals: vec![total("Subtotal", false), total("Total", true)],
            notes: vec!["Pay by bank transfer.".to_string()],
        },
        Document {
            kind: DocumentKind::CreditNote,
            number: "CN-0001".to_string(),
            status: "issued".to_string(),
            issue_date: "2026-01-01".to_string(),
            due_date: None,
            seller: party("Sample Hosting", None, None),
            buyer: party("Sample Client", None, None),
            currency: "USD".to_string(),
            exchange_rate: None,
            lines: vec![line(None, None)],
            totals: vec![total("Total", true)],
            notes: Vec::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout text `source` gives for the sample invoice, without the load-time check
    /// (so a test can print bare values).
    fn render(source: &str) -> Result<String, PdfError> {
        Template::compile("test.jinja", source)?.render_layout(&samples()[0])
    }

    #[test]
    fn printed_strings_are_quoted_and_numbers_bare() {
        assert_eq!(
            render(r#"text {{ 40 }} {{ 10 + 2.5 }} {{ "say \"hi\" \\ bye" }}"#).unwrap(),
            r#"text 40 12.5 "say \"hi\" \\ bye""#
        );
        assert_eq!(
            render("text 1 2 {{ due_date }}").unwrap(),
            r#"text 1 2 "2026-01-15""#
        );
        assert_eq!(
            render("{{ 'text 1 2 \"raw\"'|safe }}").unwrap(),
            r#"text 1 2 "raw""#
        );
        assert_eq!(render("{{ 'a\nb' }}").unwrap(), r#""a\nb""#);
    }

    #[test]
    fn document_text_cannot_inject_a_command() {
        let text = render(r#"text 1 2 {{ "x\"\npage\n\"" }}"#).unwrap();
        assert_eq!(text.lines().count(), 1);
        let program = layout::parse(&text).unwrap();
        assert_eq!(program.len(), 1);
    }

    #[test]
    fn macros_print_unquoted_layout_lines() {
        let source = "{% macro rule(y) %}line 0 {{ y }} 10 {{ y }}{% endmacro %}{{ rule(5) }}";
        assert_eq!(render(source).unwrap(), "line 0 5 10 5");
    }

    #[test]
    fn width_and_wrap_helpers_use_the_font_metrics() {
        assert_eq!(
            render("{{ text_width('Wa', 'helvetica-bold', 10) }}").unwrap(),
            "15.0"
        );
        assert_eq!(
            render("{{ wrap('aaaa aaaa', 30, 'helvetica', 10)|length }}").unwrap(),
            "2"
        );
        assert_eq!(
            render("{{ page_width }}x{{ page_height }}").unwrap(),
            "595.0x842.0"
        );
    }

    #[test]
    fn a_misspelt_field_fails_at_load_with_its_line() {
        let error =
            Template::from_source("test.jinja", "text 1 2 {{ number }}\ntext 1 2 {{ nubmer }}")
                .unwrap_err();
        let PdfError::TemplateRender {
            template: name,
            line,
            message,
        } = &error
        else {
            panic!("{error:?}")
        };
        assert_eq!((name.as_str(), *line), ("test.jinja", Some(2)));
        assert!(message.contains("undefined"), "{message}");
        assert!(message.contains("sample invoice"), "{message}");
        assert_eq!(error.code(), "pdf_template_render");
    }

    #[test]
    fn an_unknown_font_in_a_helper_is_a_render_error() {
        let error = render("{{ text_width('a', 'comic-sans') }}").unwrap_err();
        assert!(
            error.to_string().contains("unknown font `comic-sans`"),
            "{error}"
        );
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let error = render(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(error.to_string().contains("fuel"), "{error}");
    }
}
