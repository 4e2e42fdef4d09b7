//! What a template is rendered with: one invoice or credit note, already formatted for
//! display by the caller (amounts, dates and rates are strings), so this crate knows
//! nothing of money, dates or languages.

use serde::{Deserialize, Serialize};

/// One invoice or credit note. A template sees its fields as top-level variables
/// (`number`, `seller.name`, `lines`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// `"invoice"` or `"credit_note"` in a template.
    pub kind: DocumentKind,
    /// "INV-2026-00042".
    pub number: String,
    /// "unpaid", "paid", "void" … as the caller wants it shown.
    pub status: String,
    pub issue_date: String,
    #[serde(default)]
    pub due_date: Option<String>,
    pub seller: Party,
    pub buyer: Party,
    /// "USD".
    pub currency: String,
    /// "1 USD = 26.8 ZWG", when the document is shown in a second currency.
    #[serde(default)]
    pub exchange_rate: Option<String>,
    #[serde(default)]
    pub lines: Vec<Line>,
    /// In order: "Subtotal", each tax, "Total", "Paid", "Balance due" … with `strong` on
    /// the one to stand out.
    #[serde(default)]
    pub totals: Vec<TotalRow>,
    /// Payment instructions, the invoice a credit note refers to, …
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Which document this is; a template tests `kind == "credit_note"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
}

/// The seller or the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    /// Address lines, in the order printed.
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// One line of the document's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    #[serde(default)]
    pub discount: Option<String>,
    /// The tax shown on the line, e.g. "VAT 15%".
    #[serde(default)]
    pub tax: Option<String>,
    pub amount: String,
}

/// One row of the totals block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalRow {
    pub label: String,
    pub amount: String,
    /// Printed in bold (the built-in template also rules a line above it).
    #[serde(default)]
    pub strong: bool,
}
