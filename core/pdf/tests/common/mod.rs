//! Test helpers: sample documents and a reader for the PDFs keel-pdf writes.
//!
//! The reader is independent of the crate's code: it finds objects through the
//! cross-reference table the way a viewer does, and decodes the text-drawing lines of the
//! content streams back to strings and positions.

#![allow(dead_code)]

use keel_pdf::{Document, DocumentKind, Line, Party, TotalRow};

pub fn party(name: &str) -> Party {
    Party {
        name: name.to_string(),
        lines: vec![
            "12 Samora Machel Avenue".to_string(),
            "Harare, Zimbabwe".to_string(),
        ],
        tax_id: Some("10023456".to_string()),
        email: Some("accounts@example.com".to_string()),
    }
}

pub fn line(description: &str, amount: &str) -> Line {
    Line {
        description: description.to_string(),
        quantity: "1".to_string(),
        unit_price: amount.to_string(),
        discount: None,
        tax: Some("VAT 15%".to_string()),
        amount: amount.to_string(),
    }
}

pub fn total(label: &str, amount: &str, strong: bool) -> TotalRow {
    TotalRow {
        label: label.to_string(),
        amount: amount.to_string(),
        strong,
    }
}

/// A realistic invoice with `line_count` lines.
pub fn invoice(line_count: usize) -> Document {
    let amounts = ["12.00 USD", "1,234.50 USD", "7.99 USD", "250.00 USD"];
    Document {
        kind: DocumentKind::Invoice,
        number: "INV-2026-00042".to_string(),
        status: "unpaid".to_string(),
        issue_date: "2026-03-01".to_string(),
        due_date: Some("2026-03-15".to_string()),
        seller: party("Example Hosting Ltd"),
        buyer: party("Tendai Moyo Enterprises"),
        currency: "USD".to_string(),
        exchange_rate: Some("1 USD = 26.8 ZWG".to_string()),
        lines: (0..line_count)
            .map(|index| {
                line(
                    &format!("Service number {index}"),
                    amounts[index % amounts.len()],
                )
            })
            .collect(),
        totals: vec![
            total("Subtotal", "1,504.49 USD", false),
            total("VAT 15%", "225.67 USD", false),
            total("Total", "1,730.16 USD", true),
            total("Paid", "0.00 USD", false),
            total("Balance due", "1,730.16 USD", true),
        ],
        notes: vec![
            "Pay by bank transfer to CBZ account 0123456789, reference INV-2026-00042.".to_string(),
        ],
    }
}

/// One drawn string, as the content stream has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `F1` (Helvetica) or `F2` (Helvetica-Bold).
    pub font: String,
    pub size: f64,
    /// In PDF coordinates: from the bottom-left corner.
    pub x: f64,
    pub y: f64,
    /// The WinAnsi bytes, unescaped.
    pub bytes: Vec<u8>,
}

impl Run {
    /// The text, reading WinAnsi bytes below 0x80 as ASCII and the others as `\xNN`.
    pub fn text(&self) -> String {
        self.bytes
            .iter()
            .map(|&byte| {
                if byte.is_ascii() {
                    char::from(byte).to_string()
                } else {
                    format!("\\x{byte:02X}")
                }
            })
            .collect()
    }
}

/// A parsed PDF: the bytes of each object by number, and the content streams page by page.
pub struct Pdf {
    pub bytes: Vec<u8>,
    pub objects: Vec<(usize, usize)>,
    pub pages: Vec<Vec<u8>>,
}

impl Pdf {
    /// Reads `bytes` through the trailer and the cross-reference table, checking the
    /// structure on the way (every offset lands on its `N 0 obj`, `startxref` on `xref`,
    /// the table covers every object, each stream's `/Length` is right).
    pub fn parse(bytes: Vec<u8>) -> Pdf {
        assert!(bytes.starts_with(b"%PDF-1.4\n"), "header");
        assert!(bytes.ends_with(b"%%EOF\n"), "trailer end");
        let text = ascii(&bytes);

        let startxref_at = text.rfind("startxref\n").expect("startxref");
        let xref_offset: usize = text[startxref_at + 10..]
            .lines()
            .next()
            .unwrap()
            .parse()
            .expect("startxref offset");
        assert!(
            bytes[xref_offset..].starts_with(b"xref\n"),
            "startxref points at `xref`"
        );

        let table = &text[xref_offset..];
        let mut lines = table.lines();
        lines.next();
        let header = lines.next().unwrap();
        let (first, count) = header.split_once(' ').unwrap();
        assert_eq!(first, "0");
        let count: usize = count.parse().unwrap();
        // Entries are exactly 20 bytes each, starting after "xref\n0 N\n".
        let entries_at = xref_offset + 5 + header.len() + 1;
        let entry = |index: usize| &bytes[entries_at + 20 * index..entries_at + 20 * (index + 1)];
        assert_eq!(entry(0), b"0000000000 65535 f \n");
        let mut objects = Vec::new();
        for number in 1..count {
            let raw = std::str::from_utf8(entry(number)).unwrap();
            assert!(raw.ends_with(" 00000 n \n"), "entry {number}: {raw:?}");
            assert_eq!(raw[..10].len(), 10);
            let offset: usize = raw[..10].parse().unwrap();
            let marker = format!("{number} 0 obj\n");
            assert!(
                bytes[offset..].starts_with(marker.as_bytes()),
                "object {number} at {offset}"
            );
            let end = offset + text[offset..].find("endobj\n").expect("endobj");
            objects.push((offset, end));
        }
        assert_eq!(
            text.matches(" 0 obj\n").count(),
            count - 1,
            "the table covers every object"
        );
        let trailer_at = text.rfind("trailer\n").unwrap();
        assert!(
            text[trailer_at..].contains(&format!("/Size {count} ")),
            "trailer /Size"
        );
        assert!(trailer_at > xref_offset + 20 * count);

        let mut pdf = Pdf {
            bytes,
            objects,
            pages: Vec::new(),
        };
        let kids = pdf.object_text(2);
        let page_count: usize = kids
            .split("/Count ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let kid_numbers: Vec<usize> = kids
            .split('[')
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap()
            .split(" 0 R")
            .filter_map(|kid| kid.trim().parse().ok())
            .collect();
        assert_eq!(kid_numbers.len(), page_count);
        for kid in kid_numbers {
            let page = pdf.object_text(kid);
            assert!(page.contains("/Type /Page "), "{page}");
            let contents: usize = page
                .split("/Contents ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let stream = pdf.stream(contents);
            pdf.pages.push(stream);
        }
        pdf
    }

    fn object(&self, number: usize) -> &[u8] {
        let (start, end) = self.objects[number - 1];
        &self.bytes[start..end]
    }

    pub fn object_text(&self, number: usize) -> String {
        ascii(self.object(number))
    }

    /// The data of a stream object, checked against its `/Length`.
    fn stream(&self, number: usize) -> Vec<u8> {
        let object = self.object(number);
        let text = ascii(object);
        let length: usize = text
            .split("/Length ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let start = text.find("stream\n").unwrap() + 7;
        let data = &object[start..start + length];
        assert_eq!(
            &object[start + length..],
            b"\nendstream\n",
            "stream {number} /Length"
        );
        data.to_vec()
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The strings drawn on a page (0-based), in drawing order.
    pub fn runs(&self, page: usize) -> Vec<Run> {
        let content = &self.pages[page];
        let mut runs = Vec::new();
        for line in content.split(|&byte| byte == b'\n') {
            if !line.starts_with(b"BT ") {
                continue;
            }
            let open = line.iter().position(|&byte| byte == b'(').unwrap();
            let head = std::str::from_utf8(&line[..open]).unwrap();
            let words: Vec<&str> = head.split_whitespace().collect();
            // BT /F1 9 Tf X Y Td
            assert_eq!((words[0], words[3], words[6]), ("BT", "Tf", "Td"), "{head}");
            let (bytes, rest) = unescape(&line[open..]);
            assert_eq!(rest, b" Tj ET", "{}", String::from_utf8_lossy(line));
            runs.push(Run {
                font: words[1].trim_start_matches('/').to_string(),
                size: words[2].parse().unwrap(),
                x: words[4].parse().unwrap(),
                y: words[5].parse().unwrap(),
                bytes,
            });
        }
        runs
    }

    /// The strings drawn on a page, as text.
    pub fn texts(&self, page: usize) -> Vec<String> {
        self.runs(page).iter().map(Run::text).collect()
    }

    pub fn all_texts(&self) -> Vec<String> {
        (0..self.page_count())
            .flat_map(|page| self.texts(page))
            .collect()
    }
}

/// The bytes as text with every non-ASCII byte shown as `?`, so that byte offsets and
/// string offsets agree.
fn ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| {
            if byte.is_ascii() {
                char::from(byte)
            } else {
                '?'
            }
        })
        .collect()
}

/// Reads a literal string starting at `(`; returns its bytes and what follows the `)`.
fn unescape(input: &[u8]) -> (Vec<u8>, &[u8]) {
    assert_eq!(input[0], b'(');
    let mut out = Vec::new();
    let mut index = 1;
    loop {
        match input[index] {
            b')' => return (out, &input[index + 1..]),
            b'(' => panic!("unescaped ( in a string"),
            b'\\' => {
                let next = input[index + 1];
                if next.is_ascii_digit() {
                    let octal = std::str::from_utf8(&input[index + 1..index + 4]).unwrap();
                    out.push(u8::from_str_radix(octal, 8).unwrap());
                    index += 4;
                } else {
                    assert!(
                        matches!(next, b'(' | b')' | b'\\'),
                        "escape {}",
                        next as char
                    );
                    out.push(next);
                    index += 2;
                }
            }
            byte => {
                assert!(
                    (0x20..0x7F).contains(&byte),
                    "raw byte {byte:#x} in a string"
                );
                out.push(byte);
                index += 1;
            }
        }
    }
}

/// Helvetica widths (1/1000 em) of printable ASCII, 0x20 to 0x7E, from Adobe's
/// Helvetica.afm, kept here apart from the crate's tables so the tests check them.
#[rustfmt::skip]
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// The width in points of ASCII `text` in Helvetica at `size`.
pub fn helvetica_width(text: &str, size: f64) -> f64 {
    let units: u32 = text
        .bytes()
        .map(|byte| {
            assert!((0x20..0x7F).contains(&byte), "no test width for {byte:#x}");
            u32::from(HELVETICA_ASCII[usize::from(byte - 0x20)])
        })
        .sum();
    f64::from(units) * size / 1000.0
}
