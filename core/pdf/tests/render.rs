//! Rendering with the built-in template: the file's structure, what is drawn where, page
//! breaks, characters and determinism.

mod common;

use common::{Pdf, helvetica_width, invoice, line};
use keel_pdf::{Document, DocumentKind, Template, render};

fn pdf_of(document: &Document) -> Pdf {
    Pdf::parse(render(document, &Template::builtin()).expect("renders"))
}

#[test]
fn the_file_has_a_valid_structure() {
    // Pdf::parse checks the cross-reference table, startxref, object count and stream lengths.
    let pdf = pdf_of(&invoice(3));
    assert_eq!(pdf.page_count(), 1);
    let catalog = pdf.object_text(1);
    assert!(catalog.contains("/Type /Catalog /Pages 2 0 R"), "{catalog}");
    for (number, name) in [(3, "Helvetica"), (4, "Helvetica-Bold")] {
        let font = pdf.object_text(number);
        assert!(
            font.contains(&format!("/BaseFont /{name} /Encoding /WinAnsiEncoding")),
            "{font}"
        );
    }
    let page = pdf.object_text(6);
    assert!(page.contains("/MediaBox [0 0 595 842]"), "{page}");
}

#[test]
fn number_buyer_title_and_totals_are_drawn() {
    let pdf = pdf_of(&invoice(3));
    let texts = pdf.texts(0);
    for expected in [
        "INVOICE",
        "INV-2026-00042",
        "UNPAID",
        "Example Hosting Ltd",
        "Tendai Moyo Enterprises",
        "BILL TO",
        "Due date",
        "2026-03-15",
        "1 USD = 26.8 ZWG",
        "Service number 0",
        "Subtotal",
        "1,504.49 USD",
        "Balance due",
        "1,730.16 USD",
        "NOTES",
        "Page 1 of 1",
    ] {
        assert!(
            texts.iter().any(|text| text == expected),
            "{expected:?} not in {texts:#?}"
        );
    }
}

#[test]
fn strong_total_rows_are_bold_and_the_others_are_not() {
    let pdf = pdf_of(&invoice(3));
    let runs = pdf.runs(0);
    let font_of = |text: &str| {
        runs.iter()
            .find(|run| run.text() == text)
            .map(|run| run.font.clone())
            .unwrap()
    };
    assert_eq!(font_of("Balance due"), "F2");
    assert_eq!(font_of("Total"), "F2");
    assert_eq!(font_of("Subtotal"), "F1");
    assert_eq!(font_of("Paid"), "F1");
}

#[test]
fn right_aligned_amounts_end_at_the_same_x() {
    let document = invoice(4);
    let pdf = pdf_of(&document);
    let runs = pdf.runs(0);
    let mut right_edges = Vec::new();
    for text in [
        "12.00 USD",
        "1,234.50 USD",
        "7.99 USD",
        "250.00 USD",
        "1,504.49 USD",
        "0.00 USD",
    ] {
        for run in runs
            .iter()
            .filter(|run| run.text() == text && run.font == "F1")
        {
            right_edges.push((text, run.x + helvetica_width(text, run.size)));
        }
    }
    // Four line amounts (unit price and amount columns each) and two plain totals.
    assert!(right_edges.len() >= 8, "{right_edges:?}");
    let amount_column: Vec<_> = right_edges
        .iter()
        .filter(|(_, edge)| (edge - 545.0).abs() < 0.002)
        .collect();
    assert!(amount_column.len() >= 6, "{right_edges:?}");
    // The unit prices share their own right edge, left of the tax column.
    let unit_price_edges: Vec<f64> = right_edges
        .iter()
        .map(|(_, edge)| *edge)
        .filter(|edge| (edge - 545.0).abs() >= 0.002)
        .collect();
    assert_eq!(unit_price_edges.len(), 4, "{right_edges:?}");
    for edge in &unit_price_edges {
        assert!(
            (edge - unit_price_edges[0]).abs() < 0.002,
            "{unit_price_edges:?}"
        );
    }
    // The tax column too (the first four "VAT 15%" are the lines'; the fifth is the
    // left-aligned label of the totals row).
    let taxes: Vec<f64> = runs
        .iter()
        .filter(|run| run.text() == "VAT 15%")
        .map(|run| run.x + helvetica_width("VAT 15%", run.size))
        .collect();
    assert_eq!(taxes.len(), 5);
    assert!(
        taxes[..4]
            .iter()
            .all(|edge| (edge - taxes[0]).abs() < 0.002),
        "{taxes:?}"
    );
    assert!(
        unit_price_edges[0] < taxes[0] && taxes[0] < 545.0,
        "{taxes:?}"
    );
}

#[test]
fn parentheses_and_backslashes_are_escaped() {
    let mut document = invoice(1);
    document.lines[0].description = r"Setup (one-time) \ fee".to_string();
    let bytes = render(&document, &Template::builtin()).unwrap();
    let raw = String::from_utf8_lossy(&bytes);
    assert!(
        raw.contains(r"(Setup \(one-time\) \\ fee) Tj"),
        "escaped string not found"
    );
    let pdf = Pdf::parse(bytes);
    assert!(
        pdf.texts(0)
            .iter()
            .any(|text| text == r"Setup (one-time) \ fee")
    );
}

#[test]
fn characters_outside_winansi_are_replaced_not_fatal() {
    let mut document = invoice(1);
    document.buyer.name = "株式会社 Şahin Müller €".to_string();
    document.lines[0].description = "Домен 🚀".to_string();
    let pdf = pdf_of(&document);
    let texts = pdf.texts(0);
    // CJK, Cyrillic and emoji become `?`; ş loses its cedilla; ü (0xFC) and € (0x80) are WinAnsi.
    assert!(
        texts
            .iter()
            .any(|text| text == r"???? Sahin M\xFCller \x80"),
        "{texts:#?}"
    );
    assert!(texts.iter().any(|text| text == "????? ?"), "{texts:#?}");
}

#[test]
fn a_long_description_wraps_inside_its_column() {
    let mut document = invoice(1);
    let description = "Dedicated server rental including remote hands, a second power supply, \
        daily off-site backups and a /29 block of addresses for the whole of March 2026";
    document.lines[0].description = description.to_string();
    let pdf = pdf_of(&document);
    let runs = pdf.runs(0);
    let first = runs
        .iter()
        .position(|run| run.text().starts_with("Dedicated"))
        .expect("first row");
    let quantity_x = runs[first..]
        .iter()
        .find(|run| run.text() == "1")
        .expect("quantity")
        .x;
    let mut rows = Vec::new();
    for run in &runs[first..] {
        if run.x != runs[first].x || !description.contains(run.text().as_str()) {
            break;
        }
        rows.push(run.text());
        assert!(
            run.x + helvetica_width(&run.text(), run.size) < quantity_x,
            "{run:?} reaches the quantity"
        );
    }
    assert!(rows.len() >= 2, "{rows:?}");
    assert_eq!(rows.join(" "), description);
    let baselines: Vec<f64> = runs[first..first + rows.len()]
        .iter()
        .map(|run| run.y)
        .collect();
    assert!(
        baselines.windows(2).all(|pair| pair[1] < pair[0]),
        "rows go down the page: {baselines:?}"
    );
}

#[test]
fn many_lines_flow_onto_several_pages_with_totals_on_the_last() {
    let document = invoice(120);
    let pdf = pdf_of(&document);
    let pages = pdf.page_count();
    assert!(pages >= 3, "{pages} pages");
    for page in 0..pages {
        let texts = pdf.texts(page);
        assert!(
            texts.contains(&format!("Page {} of {pages}", page + 1)),
            "page {page}: {texts:#?}"
        );
        assert!(
            texts.contains(&"DESCRIPTION".to_string()),
            "table header on page {page}"
        );
        let has_totals = texts
            .iter()
            .any(|text| text == "Balance due" || text == "Subtotal");
        assert_eq!(
            has_totals,
            page == pages - 1,
            "totals on page {page} of {pages}"
        );
    }
    // The last line moved along with the totals, so they are not alone on their page.
    assert!(
        pdf.texts(pages - 1)
            .contains(&"Service number 119".to_string())
    );
    // Every line once, in order, none lost at a break; and every row above the footer.
    let rows: Vec<String> = pdf
        .all_texts()
        .into_iter()
        .filter(|text| text.starts_with("Service number "))
        .collect();
    let expected: Vec<String> = (0..120)
        .map(|index| format!("Service number {index}"))
        .collect();
    assert_eq!(rows, expected);
    for page in 0..pages {
        for run in pdf
            .runs(page)
            .iter()
            .filter(|run| run.text().starts_with("Service number "))
        {
            // Layout y = 842 - PDF y; the flow ends at 790, the footer rule is at 806.
            assert!(842.0 - run.y < 790.0, "page {page}: {run:?}");
        }
    }
}

#[test]
fn a_credit_note_has_its_own_title_and_needs_no_optional_fields() {
    let mut document = invoice(2);
    document.kind = DocumentKind::CreditNote;
    document.number = "CN-2026-00007".to_string();
    document.due_date = None;
    document.exchange_rate = None;
    document.notes = vec!["Credits invoice INV-2026-00042.".to_string()];
    document.buyer.tax_id = None;
    document.buyer.email = None;
    for line in &mut document.lines {
        line.tax = None;
    }
    let pdf = pdf_of(&document);
    let texts = pdf.texts(0);
    for expected in [
        "CREDIT NOTE",
        "CN-2026-00007",
        "CREDIT TO",
        "Credits invoice INV-2026-00042.",
    ] {
        assert!(
            texts.contains(&expected.to_string()),
            "{expected:?} not in {texts:#?}"
        );
    }
    for absent in ["INVOICE", "Due date", "TAX", "Exchange rate"] {
        assert!(
            !texts.contains(&absent.to_string()),
            "{absent:?} in {texts:#?}"
        );
    }
}

#[test]
fn an_invoice_without_lines_or_totals_still_renders() {
    let mut document = invoice(0);
    document.totals.clear();
    document.notes.clear();
    let pdf = pdf_of(&document);
    assert_eq!(pdf.page_count(), 1);
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let document = invoice(60);
    let template = Template::builtin();
    let first = render(&document, &template).unwrap();
    let second = render(&document, &Template::builtin()).unwrap();
    assert_eq!(first, second);
    let raw = String::from_utf8_lossy(&first);
    assert!(!raw.contains("CreationDate") && !raw.contains("ModDate"));

    let mut other = document.clone();
    other.lines.push(line("One more", "1.00 USD"));
    assert_ne!(render(&other, &template).unwrap(), first);
}

#[test]
fn the_document_reads_from_json_with_optional_fields_left_out() {
    let json = r#"{
        "kind": "credit_note", "number": "CN-1", "status": "issued", "issue_date": "2026-01-02",
        "seller": {"name": "S"}, "buyer": {"name": "B"}, "currency": "USD",
        "lines": [{"description": "d", "quantity": "1", "unit_price": "1.00", "amount": "1.00"}],
        "totals": [{"label": "Total", "amount": "1.00"}]
    }"#;
    let document: Document = serde_json::from_str(json).unwrap();
    assert_eq!(document.kind, DocumentKind::CreditNote);
    assert!(!document.totals[0].strong);
    assert!(document.notes.is_empty());
    let pdf = pdf_of(&document);
    assert!(pdf.texts(0).contains(&"CN-1".to_string()));
}
