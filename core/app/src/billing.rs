//! The host's billing settings and what the billing use cases share: the frozen parties of
//! an issued invoice, tax lookup, exchange rates, the ledger entries that issue and pay
//! invoices, and the API views of amounts.

use crate::ledger::{SystemAccount, system_account};
use crate::{App, AppError};
use chrono::NaiveDate;
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::ids::{AccountId, ClientId};
use keel_domain::ledger::{EntryBuilder, NewEntry};
use keel_domain::lifecycle::InvoiceKind;
use keel_domain::numbering::NumberFormat;
use keel_domain::tax::{self, TaxMode, Taxes};
use keel_store::Tx;
use keel_store::billing_run::BillingClientRow;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// The seller printed on every invoice (frozen into each invoice when it is issued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    pub name: String,
    pub address: Vec<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

impl Default for Seller {
    fn default() -> Seller {
        Seller {
            name: "Keel Hosting".into(),
            address: Vec::new(),
            tax_id: None,
            email: None,
        }
    }
}

/// Where the credit of a downgrade goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DowngradeCredit {
    /// Into the client's wallet at once.
    Wallet,
    /// Onto the service's next renewal invoice as a credit line.
    NextInvoice,
}

/// The host's billing settings (`[billing]` in keel.toml).
#[derive(Debug, Clone)]
pub struct BillingConfig {
    pub invoice_number: NumberFormat,
    pub credit_note_number: NumberFormat,
    pub tax_mode: TaxMode,
    /// The currency the books are kept in; each invoice freezes its rate to it.
    pub base_currency: Currency,
    /// Renewal invoices are issued this many days before the due date (client and group
    /// settings override it).
    pub invoice_lead_days: u32,
    /// The first invoice of an order is due this many days after the order.
    pub order_due_days: u32,
    /// Services of a client due on the same day share one renewal invoice.
    pub group_renewals: bool,
    /// Apply wallet credit to new invoices (client and group settings override it).
    pub wallet_auto_apply: bool,
    pub downgrade_credit: DowngradeCredit,
    pub seller: Seller,
    /// Services per billing-run transaction.
    pub batch_size: usize,
    /// The late fee's amount (`[billing] late_fee_*`); the day it is added comes from the
    /// dunning policy (`late_fee_days`).
    pub late_fee: Option<LateFeeAmount>,
    /// The host's default dunning policy (`[dunning]`): products, clients and services may
    /// name another.
    pub dunning: keel_domain::dunning::Policy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateFeeAmount {
    /// A fixed amount per currency; invoices in other currencies get no fee.
    Fixed(Vec<Money>),
    /// A percentage of the invoice total, rounded half away from zero.
    Percent(Decimal),
}

impl LateFeeAmount {
    /// The fee for an invoice of `total`, if any.
    pub fn fee(&self, total: Money) -> Option<Money> {
        let fee = match self {
            LateFeeAmount::Fixed(amounts) => amounts
                .iter()
                .find(|m| m.currency() == total.currency())
                .copied()?,
            LateFeeAmount::Percent(p) => total.mul_decimal(*p / Decimal::ONE_HUNDRED).ok()?,
        };
        fee.is_positive().then_some(fee)
    }
}

impl Default for BillingConfig {
    fn default() -> BillingConfig {
        BillingConfig {
            invoice_number: "INV-{YYYY}-{SEQ:5}".parse().expect("valid default format"),
            credit_note_number: "CN-{YYYY}-{SEQ:5}".parse().expect("valid default format"),
            tax_mode: TaxMode::Exclusive,
            base_currency: Currency::from_code("USD").expect("USD is in the table"),
            invoice_lead_days: 14,
            order_due_days: 0,
            group_renewals: true,
            wallet_auto_apply: true,
            downgrade_credit: DowngradeCredit::Wallet,
            seller: Seller::default(),
            batch_size: 1000,
            late_fee: None,
            dunning: keel_domain::dunning::Policy::default(),
        }
    }
}

/// A party of an invoice as frozen when it is issued: later edits of the client or of the
/// host's settings never change an issued invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Party {
    pub name: String,
    pub lines: Vec<String>,
    pub country: Option<String>,
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

impl Party {
    pub fn seller(s: &Seller) -> Party {
        Party {
            name: s.name.clone(),
            lines: s.address.clone(),
            country: None,
            tax_id: s.tax_id.clone(),
            email: s.email.clone(),
        }
    }

    pub fn buyer(c: &BillingClientRow) -> Party {
        let person = format!("{} {}", c.first_name, c.last_name);
        let (name, mut lines) = match c.company_name.as_deref().filter(|n| !n.is_empty()) {
            Some(company) if c.kind == "company" => (company.to_string(), vec![person]),
            _ => (person, Vec::new()),
        };
        lines.extend(c.address_line1.iter().cloned());
        lines.extend(c.address_line2.iter().cloned());
        let city = [
            c.postal_code.as_deref(),
            c.city.as_deref(),
            c.region.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        if !city.is_empty() {
            lines.push(city);
        }
        lines.push(c.country.clone());
        Party {
            name,
            lines,
            country: Some(c.country.clone()),
            tax_id: c.tax_id.clone(),
            email: Some(c.email.clone()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A client's effective billing settings: its own, else its group's, else the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTerms {
    pub tax_exempt: bool,
    pub wallet_auto_apply: bool,
    pub invoice_lead_days: u32,
    pub billing_day: Option<u32>,
}

impl ClientTerms {
    pub fn of(c: &BillingClientRow, config: &BillingConfig) -> ClientTerms {
        ClientTerms {
            tax_exempt: c.tax_exempt || c.group_tax_exempt.unwrap_or(false),
            wallet_auto_apply: c
                .wallet_auto_apply
                .or(c.group_wallet_auto_apply)
                .unwrap_or(config.wallet_auto_apply),
            invoice_lead_days: c
                .invoice_lead_days
                .or(c.group_invoice_lead_days)
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(config.invoice_lead_days),
            billing_day: c
                .billing_day
                .or(c.group_billing_day)
                .and_then(|d| u32::try_from(d).ok()),
        }
    }
}

/// Caches what a billing transaction looks up again and again: tax rules by place and class,
/// exchange rates, the host's system accounts.
#[derive(Default)]
pub struct Lookups {
    taxes: HashMap<(String, String, Option<String>), Taxes>,
    rates: HashMap<Currency, Option<Decimal>>,
    accounts: HashMap<(SystemAccount, Currency), AccountId>,
}

impl Lookups {
    /// The taxes for a product of `tax_class` (None: untaxed) sold to someone in
    /// `country`/`region`.
    pub async fn taxes(
        &mut self,
        tx: &mut Tx,
        tax_class: Option<&str>,
        country: &str,
        region: Option<&str>,
    ) -> Result<Taxes, AppError> {
        let Some(class) = tax_class else {
            return Ok(Taxes::none());
        };
        let key = (
            class.to_string(),
            country.to_string(),
            region.map(str::to_lowercase),
        );
        if let Some(t) = self.taxes.get(&key) {
            return Ok(t.clone());
        }
        let rules = keel_store::catalog::tax_rules(tx, class, country).await?;
        let taxes = tax::applicable(&rules, country, region);
        self.taxes.insert(key, taxes.clone());
        Ok(taxes)
    }

    /// The rate from `currency` to the base currency at `at` (1 when they are the same;
    /// `None` when no rate was ever entered).
    pub async fn rate(
        &mut self,
        tx: &mut Tx,
        app: &App,
        currency: Currency,
    ) -> Result<Option<Decimal>, AppError> {
        let base = app.billing.base_currency;
        if currency == base {
            return Ok(Some(Decimal::ONE));
        }
        if let Some(r) = self.rates.get(&currency) {
            return Ok(*r);
        }
        // Rates are entered either way round ("1 USD = 26.8 ZWG" or "1 ZWG = 0.0373 USD"):
        // the direct one wins, else the inverse of the other, to 10 decimal places.
        let r = match keel_store::catalog::exchange_rate(tx, currency, base, app.now()).await? {
            Some(r) => Some(r),
            None => keel_store::catalog::exchange_rate(tx, base, currency, app.now())
                .await?
                .filter(|r| !r.is_zero())
                .and_then(|r| Decimal::ONE.checked_div(r))
                .map(|r| r.round_dp(10).normalize()),
        };
        self.rates.insert(currency, r);
        Ok(r)
    }

    pub async fn account(
        &mut self,
        tx: &mut Tx,
        app: &App,
        purpose: SystemAccount,
        currency: Currency,
    ) -> Result<AccountId, AppError> {
        if let Some(id) = self.accounts.get(&(purpose, currency)) {
            return Ok(*id);
        }
        let a = system_account(tx, app, purpose, currency).await?;
        self.accounts.insert((purpose, currency), a.id);
        Ok(a.id)
    }
}

/// The entry that issues an invoice: receivable Dr total; revenue Cr subtotal; tax payable
/// Cr tax (a negative part moves to the other side). `None` for a zero total or a top-up
/// invoice (a top-up is not revenue: its payment credits the wallet).
#[allow(clippy::too_many_arguments)]
pub async fn issue_entry(
    tx: &mut Tx,
    app: &App,
    lookups: &mut Lookups,
    key: String,
    memo: String,
    kind: InvoiceKind,
    subtotal: Money,
    tax: Money,
    total: Money,
) -> Result<Option<NewEntry>, AppError> {
    if total.is_zero() || kind == InvoiceKind::TopUp {
        return Ok(None);
    }
    let cur = total.currency();
    let receivable = lookups
        .account(tx, app, SystemAccount::Receivable, cur)
        .await?;
    let revenue = lookups
        .account(tx, app, SystemAccount::Revenue, cur)
        .await?;
    let mut b = EntryBuilder::new(key, memo).debit(receivable, total);
    for (account, amount) in [
        (revenue, subtotal),
        (
            lookups
                .account(tx, app, SystemAccount::TaxPayable, cur)
                .await?,
            tax,
        ),
    ] {
        if amount.is_positive() {
            b = b.credit(account, amount);
        } else if amount.is_negative() {
            b = b.debit(account, amount.checked_neg()?);
        }
    }
    Ok(Some(b.build()?))
}

/// A client's wallet account in `currency`.
pub async fn wallet_account(
    tx: &mut Tx,
    app: &App,
    client: ClientId,
    currency: Currency,
) -> Result<AccountId, AppError> {
    Ok(crate::ledger::wallet(tx, app, client, currency).await?.id)
}

/// Parses a date given by a person: `YYYY-MM-DD`, nothing else, in the years
/// [`keel_domain::dates::YEARS`].
pub fn parse_date(text: &str, field: &str) -> Result<NaiveDate, AppError> {
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        AppError::invalid(
            "invalid_date",
            Some(field),
            format!("{field} must be a date written YYYY-MM-DD, not {text:?}"),
        )
    })?;
    check_year(date, field)
}

/// Refuses a date outside [`keel_domain::dates::YEARS`] (422 `invalid_date` naming `field`).
pub fn check_year(date: NaiveDate, field: &str) -> Result<NaiveDate, AppError> {
    keel_domain::dates::check(date)
        .map_err(|e| AppError::invalid("invalid_date", Some(field), format!("{field}: {e}")))
}

/// Parses an amount typed by a person in `currency` (exact: more decimals than the currency
/// has is refused).
pub fn parse_amount(text: &str, currency: Currency, field: &str) -> Result<Money, AppError> {
    Money::parse(text, currency).map_err(|e| AppError::Invalid {
        code: e.code(),
        field: Some(field.to_string()),
        message: format!("{field}: {e}"),
    })
}

/// Parses an ISO 4217 code.
pub fn parse_currency(text: &str, field: &str) -> Result<Currency, AppError> {
    Currency::from_code(text.trim()).map_err(|_| {
        AppError::invalid(
            "unknown_currency",
            Some(field),
            format!("{text:?} is not an ISO 4217 currency code"),
        )
    })
}

/// The next invoice (or credit note) number for a document issued on `date`.
pub async fn next_number(
    tx: &mut Tx,
    format: &NumberFormat,
    sequence: &str,
    date: NaiveDate,
) -> Result<String, AppError> {
    let seq = keel_store::numbers::next_numbers(tx, sequence, &format.scope(date), 1).await?;
    Ok(format.render(date, seq as u64))
}
