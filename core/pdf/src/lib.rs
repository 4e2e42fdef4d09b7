//! keel-pdf: invoice and credit-note PDFs rendered in process, from a template a host can
//! override. No browser, no external binary, no font files.
//!
//! ```text
//! Document ──template (minijinja)──▶ layout text ──layout::parse──▶ commands
//!          ──flow::run──▶ pages of drawing operations ──pdf::write──▶ PDF 1.4 bytes
//! ```
//!
//! # Where things are
//! - `document` — [`Document`] and its parts: what the caller hands in, already formatted
//!   for display (amounts such as "1,234.50 USD" are strings; this crate knows no money).
//! - `template` — [`Template`]: loading and checking a minijinja template, the helper
//!   functions it can call, how printed values become layout text.
//! - `layout` — parsing the layout language (below) into commands.
//! - `flow` — running the commands: pages, the flow cursor, page breaks, page numbers.
//! - `fonts` — Helvetica and Helvetica-Bold widths, WinAnsi encoding, line wrapping.
//! - `pdf` — the PDF writer: objects, content streams, cross-reference table.
//! - `templates/invoice.jinja` — the built-in template ([`BUILTIN_SOURCE`]).
//! - `examples/render.rs` — renders a JSON document (`examples/invoice.json` by default)
//!   with a template to a file, or prints the layout text: for trying a template by eye.
//!
//! # Use
//! ```
//! use keel_pdf::{render, Document, DocumentKind, Line, Party, Template, TotalRow};
//!
//! let party = |name: &str| Party { name: name.into(), lines: vec![], tax_id: None, email: None };
//! let document = Document {
//!     kind: DocumentKind::Invoice,
//!     number: "INV-2026-00042".into(),
//!     status: "unpaid".into(),
//!     issue_date: "2026-03-01".into(),
//!     due_date: Some("2026-03-15".into()),
//!     seller: party("Example Hosting Ltd"),
//!     buyer: party("Tendai Moyo"),
//!     currency: "USD".into(),
//!     exchange_rate: None,
//!     lines: vec![Line {
//!         description: "VPS M, March 2026".into(),
//!         quantity: "1".into(),
//!         unit_price: "20.00".into(),
//!         discount: None,
//!         tax: None,
//!         amount: "20.00".into(),
//!     }],
//!     totals: vec![TotalRow { label: "Total".into(), amount: "20.00 USD".into(), strong: true }],
//!     notes: vec![],
//! };
//! let template = Template::builtin(); // or Template::from_source(path, &text)?
//! let pdf: Vec<u8> = render(&document, &template)?;
//! assert!(pdf.starts_with(b"%PDF-1.4"));
//! # Ok::<(), keel_pdf::PdfError>(())
//! ```
//!
//! # Overriding the template
//! A host puts its own template at `<theme dir>/pdf/invoice.jinja`; Keel reads that file
//! at start and loads it with [`Template::from_source`]`(path, &text)`. Loading checks it
//! fully, so a broken override stops start-up with a message instead of failing the first
//! download: a syntax error is [`PdfError::TemplateSyntax`] with the template line; the
//! template is then rendered with a sample invoice and a sample credit note, so an
//! undefined variable or a bad layout line is reported too. Start from
//! [`BUILTIN_SOURCE`]. [`Template::render_layout`] shows a template's output, which is
//! what layout errors' line numbers count (`cargo run -p keel-pdf --example render --
//! --layout out.pdf doc.json theme.jinja` prints it numbered). A template is one file:
//! `include`, `import` and `extends` find nothing.
//!
//! The template is a [minijinja](https://docs.rs/minijinja/2) template (Jinja syntax,
//! `trim_blocks` and `lstrip_blocks` on) rendered with the [`Document`]'s fields as its
//! variables: `kind` (`"invoice"` or `"credit_note"`), `number`, `status`, `issue_date`,
//! `due_date`, `seller` and `buyer` (`name`, `lines`, `tax_id`, `email`), `currency`,
//! `exchange_rate`, `lines` (`description`, `quantity`, `unit_price`, `discount`, `tax`,
//! `amount`), `totals` (`label`, `amount`, `strong`), `notes`. Missing optional values are
//! `none`. Using a variable that does not exist is an error (caught at load).
//!
//! Printing is made for the layout language, not HTML: `{{ value }}` prints a string as a
//! quoted layout string (`"`, `\` and line breaks escaped), so no document text can break
//! a line or add a command; a number prints bare (`{{ y + 12 }}` → `112`); `none` prints
//! `""`; `{{ x|safe }}` and a macro's output print as they are (that is how a macro emits
//! layout lines). Besides minijinja's built-in filters and functions (`range`,
//! `namespace`, `max`, `selectattr`, …) a template has:
//! - `text_width(text, font="helvetica", size=10)` → the width in points `text` takes;
//! - `wrap(text, width, font="helvetica", size=10)` → a list of lines, each no wider than
//!   `width` points (broken at spaces, inside a word only if it alone is too wide, and at
//!   every newline);
//! - `page_width` (595) and `page_height` (842).
//!
//! One render may execute at most 50 million template instructions ("fuel"), so a
//! runaway loop fails instead of hanging a worker.
//!
//! # The layout language
//! The template's output: one command per line; arguments separated by spaces. Blank lines
//! and lines whose first non-blank character is `#` are ignored; leading spaces are
//! ignored, so a template may indent. Numbers are decimals (`12`, `-3.5`); strings are in
//! double quotes with `\"`, `\\` and `\n` escapes. All lengths are in points (1/72 inch);
//! coordinates are from the **top-left** corner of an A4 page, 595 wide and 842 high, `y`
//! growing downwards. A text's `Y` is its **baseline**.
//!
//! Drawing (anywhere, including inside the bodies below):
//!
//! | command | arguments | effect |
//! |---|---|---|
//! | `font NAME SIZE` | `helvetica` or `helvetica-bold`; size in points | font of the texts that follow (default `helvetica 10`) |
//! | `fill-gray G` | 0 black … 1 white | colour of texts and `fill-rect` (default 0) |
//! | `stroke-gray G` | 0 … 1 | colour of `line` and `stroke-rect` (default 0) |
//! | `line-width W` | points | width of `line` and `stroke-rect` (default 1) |
//! | `text X Y "s"` | | `s` starting at `X` |
//! | `text-right X Y "s"` | | `s` ending at `X` (amount columns) |
//! | `text-center X Y "s"` | | `s` centred on `X` |
//! | `line X1 Y1 X2 Y2` | | a straight line |
//! | `fill-rect X Y W H` | top-left corner, size | a filled rectangle |
//! | `stroke-rect X Y W H` | top-left corner, size | a rectangle outline |
//! | `page-number ALIGN X Y "format"` | `left`, `right` or `center` | `format` with `{page}` and `{pages}` replaced by this page's number and the page count |
//!
//! Pages and flow (top level only):
//!
//! | command | effect |
//! |---|---|
//! | `page` | start a new page (the document starts on page 1 without one) |
//! | `flow TOP BOTTOM` | the flow region: a new page's flow starts at `TOP`; blocks may not end below `BOTTOM` (default `flow 50 792`) |
//! | `cursor Y` | move the flow cursor on the current page to `Y` |
//! | `space H` | move the flow cursor down by `H` |
//! | `need H` | start a new page unless `H` points fit below the cursor (keeps what follows together, e.g. a last table row with the totals) |
//! | `block H` … `end` | a group of drawing commands kept together on one page, its `Y`s relative to the cursor; if `cursor + H` is below `BOTTOM`, a new page starts first. Then the cursor moves down by `H` |
//! | `repeat H` … `end` | drawing commands (`Y` relative) drawn at the top of the flow on every page a break starts, e.g. a table header; the flow then starts `H` lower. Replaces an earlier `repeat` |
//! | `repeat off` | stop repeating |
//! | `every-page` … `end` | drawing commands at absolute positions drawn on every page, under its content (footers, page numbers); may appear more than once |
//!
//! Drawing commands outside a body draw on the current page at absolute positions. Inside
//! a `block`, style commands (`font`, `*-gray`, `line-width`) start from the style at that
//! point and do not leak out; `repeat` and `every-page` bodies start from the defaults. A
//! block taller than a whole page is drawn once, running past `BOTTOM`, rather than
//! breaking forever. Bodies do not nest. An unknown command is
//! [`PdfError::UnknownCommand`]; a bad argument or unclosed body [`PdfError::Layout`];
//! both give the line of the layout text.
//!
//! Example:
//! ```text
//! every-page
//!   font helvetica 8
//!   page-number right 545 820 "Page {page} of {pages}"
//! end
//! font helvetica-bold 24
//! text-right 545 74 "INVOICE"
//! cursor 200
//! block 19
//!   font helvetica 9
//!   text 50 12 "Domain renewal example.com"
//!   text-right 545 12 "12.00 USD"
//!   line 50 19 545 19
//! end
//! ```
//!
//! # Characters: the WinAnsi limit
//! Text is drawn with the PDF standard fonts Helvetica and Helvetica-Bold in
//! WinAnsiEncoding (Windows-1252), so nothing is embedded and files stay small, but only
//! that character set can be shown: ASCII, Latin-1 (é, ü, ñ, ø, ß …) and
//! € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ. Other Latin letters with
//! diacritics are drawn as their base letter (ş → s, ł → l, ő → o, ș → s, č → c, ặ → a),
//! typographic spaces (such as the narrow no-break space some locales put in amounts) as a
//! space; every other character (Cyrillic, Greek, Arabic, CJK, emoji …) is drawn as `?`.
//! Rendering never fails because of a character. Widths, wrapping and alignment use the
//! replaced text, so they stay right. Other scripts would need an embedded TrueType font,
//! which this crate does not do.

mod document;
mod error;
mod flow;
mod fonts;
mod layout;
mod pdf;
mod template;

pub use document::{Document, DocumentKind, Line, Party, TotalRow};
pub use error::PdfError;
pub use template::{BUILTIN_NAME, BUILTIN_SOURCE, Template};

/// Renders `document` with `template` into the bytes of a PDF 1.4 file.
///
/// The same document and template always give the same bytes (nothing depends on the
/// clock). Errors are a template failing on this document ([`PdfError::TemplateRender`])
/// or layout text it produced ([`PdfError::UnknownCommand`], [`PdfError::Layout`]).
pub fn render(document: &Document, template: &Template) -> Result<Vec<u8>, PdfError> {
    let text = template.render_layout(document)?;
    let program = layout::parse(&text).map_err(|error| error.in_template(template.name()))?;
    let pages = flow::run(&program);
    Ok(pdf::write(&pages, &document.number))
}
