//! A minimal PDF 1.4 writer: a catalog, a page tree, the two standard fonts, one
//! uncompressed content stream per page, a cross-reference table and a trailer.
//!
//! Object numbers are fixed so that the same pages always give the same bytes:
//! 1 catalog, 2 page tree, 3 Helvetica, 4 Helvetica-Bold, 5 document information, then
//! for page `i` (from 0) the page `6 + 2i` and its content stream `7 + 2i`. Nothing
//! depends on the clock.

use std::fmt::Write as _;

use crate::flow::{Op, PAGE_HEIGHT, PAGE_WIDTH};
use crate::fonts::Font;

const FIRST_PAGE_OBJECT: usize = 6;

/// Encodes `pages` as a PDF file; `title` goes in the document information dictionary.
pub(crate) fn write(pages: &[Vec<Op>], title: &str) -> Vec<u8> {
    let mut writer = Writer {
        out: Vec::new(),
        offsets: Vec::new(),
    };
    // The second line's bytes above 127 tell transfer tools the file is binary.
    writer
        .out
        .extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");

    writer.object(1, "<< /Type /Catalog /Pages 2 0 R >>");
    let kids: Vec<String> = (0..pages.len())
        .map(|index| format!("{} 0 R", page_object(index)))
        .collect();
    writer.object(
        2,
        &format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        ),
    );
    for (number, font) in [(3, Font::Helvetica), (4, Font::HelveticaBold)] {
        writer.object(
            number,
            &format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
                font.base_font()
            ),
        );
    }
    writer.object(
        5,
        &format!("<< /Title {} /Producer (keel-pdf) >>", text_string(title)),
    );
    for (index, ops) in pages.iter().enumerate() {
        let page = page_object(index);
        writer.object(
            page,
            &format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /Font << /{} 3 0 R /{} 4 0 R >> >> /Contents {} 0 R >>",
                number(PAGE_WIDTH),
                number(PAGE_HEIGHT),
                Font::Helvetica.resource(),
                Font::HelveticaBold.resource(),
                page + 1
            ),
        );
        writer.stream(page + 1, &content(ops));
    }
    writer.finish()
}

fn page_object(index: usize) -> usize {
    FIRST_PAGE_OBJECT + 2 * index
}

struct Writer {
    out: Vec<u8>,
    /// Byte offset of object `n` at index `n - 1`.
    offsets: Vec<usize>,
}

impl Writer {
    fn begin(&mut self, number: usize) {
        assert_eq!(
            number,
            self.offsets.len() + 1,
            "objects are written in order"
        );
        self.offsets.push(self.out.len());
        self.out
            .extend_from_slice(format!("{number} 0 obj\n").as_bytes());
    }

    fn object(&mut self, number: usize, body: &str) {
        self.begin(number);
        self.out.extend_from_slice(body.as_bytes());
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn stream(&mut self, number: usize, data: &[u8]) {
        self.begin(number);
        self.out
            .extend_from_slice(format!("<< /Length {} >>\nstream\n", data.len()).as_bytes());
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn finish(mut self) -> Vec<u8> {
        let xref = self.out.len();
        let size = self.offsets.len() + 1;
        let mut table = format!("xref\n0 {size}\n0000000000 65535 f \n");
        for offset in &self.offsets {
            // Each entry is exactly 20 bytes: 10-digit offset, 5-digit generation, `n`, " \n".
            let _ = writeln!(table, "{offset:010} 00000 n ");
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {size} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n"
        );
        self.out.extend_from_slice(table.as_bytes());
        self.out
    }
}

/// The content stream of one page. PDF's origin is bottom-left, the layout's top-left:
/// every y becomes `PAGE_HEIGHT - y`. State is set before each operation only when it
/// changes.
fn content(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut fill_gray = 0.0;
    let mut stroke_gray = 0.0;
    let mut line_width = 1.0;
    let mut set_fill = |out: &mut Vec<u8>, gray: f64| {
        if gray != fill_gray {
            fill_gray = gray;
            out.extend_from_slice(format!("{} g\n", number(gray)).as_bytes());
        }
    };
    let mut set_stroke = |out: &mut Vec<u8>, gray: f64, width: f64| {
        if gray != stroke_gray {
            stroke_gray = gray;
            out.extend_from_slice(format!("{} G\n", number(gray)).as_bytes());
        }
        if width != line_width {
            line_width = width;
            out.extend_from_slice(format!("{} w\n", number(width)).as_bytes());
        }
    };
    for op in ops {
        match op {
            Op::Text {
                font,
                size,
                gray,
                x,
                y,
                text,
            } => {
                set_fill(&mut out, *gray);
                out.extend_from_slice(
                    format!(
                        "BT /{} {} Tf {} {} Td ",
                        font.resource(),
                        number(*size),
                        number(*x),
                        number(PAGE_HEIGHT - y)
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&literal_string(text));
                out.extend_from_slice(b" Tj ET\n");
            }
            Op::Line {
                x1,
                y1,
                x2,
                y2,
                width,
                gray,
            } => {
                set_stroke(&mut out, *gray, *width);
                out.extend_from_slice(
                    format!(
                        "{} {} m {} {} l S\n",
                        number(*x1),
                        number(PAGE_HEIGHT - y1),
                        number(*x2),
                        number(PAGE_HEIGHT - y2)
                    )
                    .as_bytes(),
                );
            }
            Op::FillRect {
                x,
                y,
                width,
                height,
                gray,
            } => {
                set_fill(&mut out, *gray);
                out.extend_from_slice(rect(*x, *y, *width, *height, "f").as_bytes());
            }
            Op::StrokeRect {
                x,
                y,
                width,
                height,
                line_width,
                gray,
            } => {
                set_stroke(&mut out, *gray, *line_width);
                out.extend_from_slice(rect(*x, *y, *width, *height, "S").as_bytes());
            }
        }
    }
    out
}

fn rect(x: f64, y: f64, width: f64, height: f64, paint: &str) -> String {
    // `re` takes the lower-left corner; the layout gives the top-left one.
    format!(
        "{} {} {} {} re {paint}\n",
        number(x),
        number(PAGE_HEIGHT - y - height),
        number(width),
        number(height)
    )
}

/// A number as PDF writes it: at most three decimals, no exponent, no trailing zeros.
fn number(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    let mut text = format!("{rounded:.3}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" { "0".to_string() } else { text }
}

/// A literal string `( … )` of WinAnsi bytes: `(`, `)` and `\` escaped, bytes outside
/// printable ASCII written as octal escapes so content streams stay 7-bit.
fn literal_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'(');
    for &byte in bytes {
        match byte {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', byte]),
            0x20..=0x7E => out.push(byte),
            _ => out.extend_from_slice(format!("\\{byte:03o}").as_bytes()),
        }
    }
    out.push(b')');
    out
}

/// A text string for the information dictionary: UTF-16BE with a byte-order mark, in hex,
/// so any title survives (these strings are not drawn, so WinAnsi does not apply).
fn text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_never_exponents() {
        let rows = [
            (0.0, "0"),
            (-0.0001, "0"),
            (12.5, "12.5"),
            (1.0 / 3.0, "0.333"),
            (841.9999, "842"),
            (-3.25, "-3.25"),
            (1e7, "10000000"),
        ];
        for (value, expected) in rows {
            assert_eq!(number(value), expected, "{value}");
        }
    }

    #[test]
    fn literal_strings_escape_parentheses_backslashes_and_high_bytes() {
        assert_eq!(literal_string(b"a(b)c\\d"), b"(a\\(b\\)c\\\\d)".to_vec());
        assert_eq!(
            literal_string(&[0x80, b'x', 0xE9]),
            b"(\\200x\\351)".to_vec()
        );
    }

    #[test]
    fn titles_are_utf16_hex_strings() {
        assert_eq!(text_string("Aş"), "<FEFF0041015F>");
    }
}
