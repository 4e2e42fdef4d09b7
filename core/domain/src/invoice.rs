//! Invoice arithmetic: from lines (quantity, unit price, discount, taxes) to the stored
//! amounts and totals. The rules, in order, for every line:
//!
//! 1. `amount = quantity × unit − discount` (exact, in minor units; the discount is never
//!    more than `quantity × unit`).
//! 2. Tax is computed on that amount by [`crate::tax::tax_line`] with the invoice's tax
//!    mode and the line's taxes, rounded per line at the currency's exponent (so the
//!    invoice's tax is the sum of its lines' taxes, never a tax of the sum).
//! 3. `subtotal = Σ net`, `tax = Σ (tax1 + tax2)`, `total = Σ gross = subtotal + tax`.
//!
//! Lines may be negative (a proration credit, a discount line); an invoice's total may
//! not: a negative total is refused (`negative_invoice`), the credit goes to the wallet
//! instead.

use crate::ids::ServiceId;
use crate::lifecycle::LineKind;
use crate::money::{Money, MoneyError};
use crate::tax::{TaxMode, Taxes, tax_line};
use crate::{Currency, cycle::Period};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A line as the billing code builds it, before tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineInput {
    pub kind: LineKind,
    pub description: String,
    pub quantity: i64,
    pub unit: Money,
    pub discount: Money,
    /// The service and the period this line bills, if any.
    pub service: Option<ServiceId>,
    pub period: Option<(u32, Period)>,
    /// The taxes that apply (already chosen by place and tax class); `Taxes::none()` when
    /// the product is not taxed.
    pub taxes: Taxes,
}

/// One tax of a line, as stored and printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineTaxPart {
    pub name: String,
    pub rate: Decimal,
    pub amount: Money,
}

/// A computed line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub input: LineInput,
    pub net: Money,
    pub tax1: Option<LineTaxPart>,
    pub tax2: Option<LineTaxPart>,
    pub total: Money,
}

/// The computed invoice amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computed {
    pub lines: Vec<Line>,
    pub subtotal: Money,
    pub tax: Money,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("an invoice needs at least one line")]
    Empty,
    #[error("line {line}: the quantity must be at least 1, not {quantity}")]
    BadQuantity { line: usize, quantity: i64 },
    #[error("line {line}: the discount ({discount}) is larger than the line ({amount})")]
    DiscountTooLarge {
        line: usize,
        discount: String,
        amount: String,
    },
    #[error("line {line}: the amounts are in {found}, the invoice is in {expected}")]
    CurrencyMismatch {
        line: usize,
        expected: Currency,
        found: Currency,
    },
    #[error("the invoice total would be negative ({0}); a credit belongs in the wallet")]
    Negative(String),
    #[error("line {line}: {message}")]
    Tax { line: usize, message: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl InvoiceError {
    pub fn code(&self) -> &'static str {
        match self {
            InvoiceError::Empty => "empty_invoice",
            InvoiceError::BadQuantity { .. } => "invalid_quantity",
            InvoiceError::DiscountTooLarge { .. } => "discount_too_large",
            InvoiceError::CurrencyMismatch { .. } => "currency_mismatch",
            InvoiceError::Negative(_) => "negative_invoice",
            InvoiceError::Tax { .. } => "invalid_tax",
            InvoiceError::Money(m) => m.code(),
        }
    }
}

/// Computes every line and the totals. See the module docs for the rules.
pub fn compute(
    currency: Currency,
    mode: TaxMode,
    exempt: bool,
    inputs: Vec<LineInput>,
) -> Result<Computed, InvoiceError> {
    if inputs.is_empty() {
        return Err(InvoiceError::Empty);
    }
    let zero = Money::zero(currency);
    let (mut subtotal, mut tax, mut total) = (zero, zero, zero);
    let mut lines = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let line = i + 1;
        for m in [input.unit, input.discount] {
            if m.currency() != currency {
                return Err(InvoiceError::CurrencyMismatch {
                    line,
                    expected: currency,
                    found: m.currency(),
                });
            }
        }
        if input.quantity < 1 {
            return Err(InvoiceError::BadQuantity {
                line,
                quantity: input.quantity,
            });
        }
        let gross_amount = input.unit.checked_mul_int(input.quantity)?;
        if input.discount.is_negative()
            || input.discount.minor().unsigned_abs() > gross_amount.minor().unsigned_abs()
        {
            return Err(InvoiceError::DiscountTooLarge {
                line,
                discount: input.discount.format_amount(),
                amount: gross_amount.format_amount(),
            });
        }
        // A negative line's discount reduces its magnitude too.
        let amount = if gross_amount.is_negative() {
            gross_amount.checked_add(input.discount)?
        } else {
            gross_amount.checked_sub(input.discount)?
        };
        let t = tax_line(amount, mode, &input.taxes, exempt).map_err(|e| InvoiceError::Tax {
            line,
            message: e.to_string(),
        })?;
        let part = |rate: &Option<crate::tax::AppliedRate>, amount: Money| {
            rate.as_ref().filter(|_| !exempt).map(|r| LineTaxPart {
                name: r.name.clone(),
                rate: r.rate,
                amount,
            })
        };
        let tax1 = part(&input.taxes.first, t.tax1);
        let tax2 = part(&input.taxes.second, t.tax2);
        subtotal = subtotal.checked_add(t.net)?;
        tax = tax.checked_add(t.tax1)?.checked_add(t.tax2)?;
        total = total.checked_add(t.gross)?;
        lines.push(Line {
            input,
            net: t.net,
            tax1,
            tax2,
            total: t.gross,
        });
    }
    if total.is_negative() {
        return Err(InvoiceError::Negative(total.format_amount()));
    }
    Ok(Computed {
        lines,
        subtotal,
        tax,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tax::AppliedRate;
    use rust_decimal_macros::dec;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn line(currency: &str, qty: i64, unit: i64, discount: i64, taxes: Taxes) -> LineInput {
        LineInput {
            kind: LineKind::Service,
            description: "x".into(),
            quantity: qty,
            unit: Money::new(unit, cur(currency)),
            discount: Money::new(discount, cur(currency)),
            service: None,
            period: None,
            taxes,
        }
    }

    fn vat(rate: Decimal) -> Taxes {
        Taxes {
            first: Some(AppliedRate {
                name: "VAT".into(),
                rate,
                compound: false,
            }),
            second: None,
        }
    }

    #[test]
    fn totals_as_a_table() {
        // (name, currency, mode, exempt, lines, subtotal, tax, total)
        type Case = (
            &'static str,
            &'static str,
            TaxMode,
            bool,
            Vec<LineInput>,
            i64,
            i64,
            i64,
        );
        let cases: Vec<Case> = vec![
            (
                "one line 15% exclusive",
                "USD",
                TaxMode::Exclusive,
                false,
                vec![line("USD", 1, 1000, 0, vat(dec!(15)))],
                1000,
                150,
                1150,
            ),
            (
                "tax rounds per line, not on the sum",
                "USD",
                TaxMode::Exclusive,
                false,
                vec![
                    line("USD", 1, 3, 0, vat(dec!(15))),
                    line("USD", 1, 3, 0, vat(dec!(15))),
                ],
                6,
                0,
                6,
            ),
            (
                "quantity and discount",
                "USD",
                TaxMode::Exclusive,
                false,
                vec![line("USD", 3, 1000, 500, vat(dec!(10)))],
                2500,
                250,
                2750,
            ),
            (
                "inclusive",
                "USD",
                TaxMode::Inclusive,
                false,
                vec![line("USD", 1, 1150, 0, vat(dec!(15)))],
                1000,
                150,
                1150,
            ),
            (
                "exempt exclusive",
                "USD",
                TaxMode::Exclusive,
                true,
                vec![line("USD", 1, 1000, 0, vat(dec!(15)))],
                1000,
                0,
                1000,
            ),
            (
                "untaxed line beside a taxed one",
                "USD",
                TaxMode::Exclusive,
                false,
                vec![
                    line("USD", 1, 1000, 0, vat(dec!(15))),
                    line("USD", 1, 500, 0, Taxes::none()),
                ],
                1500,
                150,
                1650,
            ),
            (
                "JPY has no minor unit",
                "JPY",
                TaxMode::Exclusive,
                false,
                vec![line("JPY", 1, 999, 0, vat(dec!(10)))],
                999,
                100,
                1099,
            ),
            (
                "a credit line reduces the total",
                "USD",
                TaxMode::Exclusive,
                false,
                vec![
                    line("USD", 1, 1000, 0, vat(dec!(15))),
                    line("USD", 1, -400, 0, vat(dec!(15))),
                ],
                600,
                90,
                690,
            ),
        ];
        for (name, c, mode, exempt, lines, sub, tax, total) in cases {
            let got =
                compute(cur(c), mode, exempt, lines).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (got.subtotal.minor(), got.tax.minor(), got.total.minor()),
                (sub, tax, total),
                "case {name}"
            );
            for l in &got.lines {
                let t1 = l.tax1.as_ref().map_or(0, |t| t.amount.minor());
                let t2 = l.tax2.as_ref().map_or(0, |t| t.amount.minor());
                assert_eq!(
                    l.net.minor() + t1 + t2,
                    l.total.minor(),
                    "case {name}: parts add up"
                );
            }
        }
    }

    #[test]
    fn bad_lines_are_refused() {
        let usd = cur("USD");
        let table: Vec<(&str, Vec<LineInput>, &str)> = vec![
            ("empty", vec![], "empty_invoice"),
            (
                "zero quantity",
                vec![line("USD", 0, 100, 0, Taxes::none())],
                "invalid_quantity",
            ),
            (
                "discount too large",
                vec![line("USD", 1, 100, 101, Taxes::none())],
                "discount_too_large",
            ),
            (
                "negative discount",
                vec![line("USD", 1, 100, -1, Taxes::none())],
                "discount_too_large",
            ),
            (
                "other currency",
                vec![line("EUR", 1, 100, 0, Taxes::none())],
                "currency_mismatch",
            ),
            (
                "negative total",
                vec![line("USD", 1, -100, 0, Taxes::none())],
                "negative_invoice",
            ),
        ];
        for (name, lines, code) in table {
            let err = compute(usd, TaxMode::Exclusive, false, lines).unwrap_err();
            assert_eq!(err.code(), code, "case {name}");
        }
    }
}
