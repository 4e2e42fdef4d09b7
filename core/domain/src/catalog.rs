//! The catalog as the billing engine sees it: products with prices per (currency, cycle),
//! setup fees, configurable options priced the same way, add-ons and stock; and the quote
//! for one ordered item (what it costs now and what it costs each period).
//!
//! # Pricing rules
//! - A product is sold in a (currency, cycle) only if it has a price row for exactly that
//!   pair; there is no conversion between currencies at order time (hosts set ZWG prices
//!   themselves, as they do in WHMCS).
//! - `free` products have only the `free` cycle and cost nothing; `one_time` products have
//!   only the `one_time` cycle; recurring products have any of the six recurring cycles.
//! - The first invoice of an item bills its setup fee (product and options) once, plus the
//!   first period's recurring price (product and options). Later periods bill the recurring
//!   price only.
//! - A `quantity` option bills `quantity × unit price`, with `min_qty ≤ quantity ≤ max_qty`;
//!   a `yes_no` option bills its value's price when chosen and nothing otherwise; a `dropdown`
//!   or `radio` option must be chosen (its first value is the default when omitted).
//! - A retired product cannot be ordered; existing services keep billing at their stored
//!   recurring amount. Stock counts ordered items; out of stock refuses the order.

use crate::Currency;
use crate::cycle::BillingCycle;
use crate::ids::{OptionId, OptionValueId, ProductGroupId, ProductId};
use crate::lifecycle::{OptionKind, PayType, ProductKind};
use crate::money::{Money, MoneyError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A price in one (currency, cycle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub currency: Currency,
    pub cycle: BillingCycle,
    /// Per period (or once, for `one_time`).
    pub price: Money,
    pub setup_fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionValue {
    pub id: OptionValueId,
    pub name: String,
    pub prices: Vec<Price>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductOption {
    pub id: OptionId,
    pub name: String,
    pub kind: OptionKind,
    pub min_qty: i64,
    pub max_qty: Option<i64>,
    pub values: Vec<OptionValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    pub group_id: ProductGroupId,
    pub kind: ProductKind,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub pay_type: PayType,
    /// `None`: not taxed.
    pub tax_class: Option<String>,
    pub provisioner: Option<String>,
    pub registrar: Option<String>,
    /// `None`: unlimited.
    pub stock: Option<i64>,
    pub sold: i64,
    pub retired_at: Option<DateTime<Utc>>,
    pub prices: Vec<Price>,
    pub options: Vec<ProductOption>,
    /// Add-on products this product offers.
    pub addons: Vec<ProductId>,
}

/// The choice of one configurable option in an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionChoice {
    pub option_id: OptionId,
    /// Required for dropdown and radio (default: the first value); ignored for quantity.
    pub value_id: Option<OptionValueId>,
    /// For quantity options; for yes_no, 1 = yes and 0 = no. Default 1.
    pub quantity: Option<i64>,
}

/// One chosen option, priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotedOption {
    pub option_id: OptionId,
    pub value_id: OptionValueId,
    pub quantity: i64,
    /// "Disk space: 10 × 1 GB", for the invoice line.
    pub description: String,
    pub unit: Money,
    pub recurring: Money,
    pub setup_fee: Money,
}

/// What one item costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub currency: Currency,
    pub cycle: BillingCycle,
    /// The product alone, per period.
    pub base: Money,
    pub base_setup_fee: Money,
    pub options: Vec<QuotedOption>,
    /// Product and options, per period: what each renewal bills (before promotions).
    pub recurring: Money,
    /// Product and options.
    pub setup_fee: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("product {0} is retired and can no longer be ordered")]
    Retired(String),
    #[error("product {0} is out of stock")]
    OutOfStock(String),
    #[error("product {product} has no {cycle} price in {currency}")]
    NoPrice {
        product: String,
        currency: Currency,
        cycle: BillingCycle,
    },
    #[error("option {0} does not belong to this product")]
    UnknownOption(OptionId),
    #[error("value {value} is not a choice of option {option}")]
    UnknownValue {
        option: String,
        value: OptionValueId,
    },
    #[error("option {option} needs a quantity between {min} and {max}, not {given}")]
    QuantityOutOfRange {
        option: String,
        min: i64,
        max: String,
        given: i64,
    },
    #[error("option {0} was chosen twice")]
    DuplicateOption(String),
    #[error("option {option} has no {cycle} price in {currency} for {value}")]
    NoOptionPrice {
        option: String,
        value: String,
        currency: Currency,
        cycle: BillingCycle,
    },
    #[error("a {pay_type} product cannot be billed {cycle}")]
    CycleNotAllowed {
        pay_type: PayType,
        cycle: BillingCycle,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::Retired(_) => "product_retired",
            CatalogError::OutOfStock(_) => "out_of_stock",
            CatalogError::NoPrice { .. } => "no_price",
            CatalogError::UnknownOption(_) => "unknown_option",
            CatalogError::UnknownValue { .. } => "unknown_option_value",
            CatalogError::QuantityOutOfRange { .. } => "quantity_out_of_range",
            CatalogError::DuplicateOption(_) => "duplicate_option",
            CatalogError::NoOptionPrice { .. } => "no_option_price",
            CatalogError::CycleNotAllowed { .. } => "cycle_not_allowed",
            CatalogError::Money(m) => m.code(),
        }
    }

    /// The input field the error is about, for API answers.
    pub fn field(&self) -> &'static str {
        match self {
            CatalogError::Retired(_) | CatalogError::OutOfStock(_) => "product_id",
            CatalogError::NoPrice { .. } | CatalogError::CycleNotAllowed { .. } => "cycle",
            _ => "options",
        }
    }
}

/// Whether `pay_type` may be billed on `cycle`.
pub fn cycle_allowed(pay_type: PayType, cycle: BillingCycle) -> bool {
    match pay_type {
        PayType::Free => cycle == BillingCycle::Free,
        PayType::OneTime => cycle == BillingCycle::OneTime,
        PayType::Recurring => cycle.is_recurring(),
    }
}

fn find_price(prices: &[Price], currency: Currency, cycle: BillingCycle) -> Option<&Price> {
    prices
        .iter()
        .find(|p| p.currency == currency && p.cycle == cycle)
}

impl Product {
    /// Whether it can be ordered now (not retired, in stock for `quantity` more).
    pub fn check_orderable(&self, quantity: i64) -> Result<(), CatalogError> {
        if self.retired_at.is_some() {
            return Err(CatalogError::Retired(self.name.clone()));
        }
        if let Some(stock) = self.stock
            && self.sold + quantity > stock
        {
            return Err(CatalogError::OutOfStock(self.name.clone()));
        }
        Ok(())
    }

    /// The price row for (currency, cycle); a free product costs nothing in any currency.
    pub fn price(&self, currency: Currency, cycle: BillingCycle) -> Result<Price, CatalogError> {
        if !cycle_allowed(self.pay_type, cycle) {
            return Err(CatalogError::CycleNotAllowed {
                pay_type: self.pay_type,
                cycle,
            });
        }
        if self.pay_type == PayType::Free {
            return Ok(Price {
                currency,
                cycle,
                price: Money::zero(currency),
                setup_fee: Money::zero(currency),
            });
        }
        find_price(&self.prices, currency, cycle)
            .cloned()
            .ok_or_else(|| CatalogError::NoPrice {
                product: self.name.clone(),
                currency,
                cycle,
            })
    }

    /// Prices one item with its option choices. Options not mentioned take their default
    /// (first value for dropdown/radio, "no" for yes/no, `min_qty` for quantity).
    pub fn quote(
        &self,
        currency: Currency,
        cycle: BillingCycle,
        choices: &[OptionChoice],
    ) -> Result<Quote, CatalogError> {
        let price = self.price(currency, cycle)?;
        let mut seen = std::collections::HashSet::new();
        for c in choices {
            let option = self
                .options
                .iter()
                .find(|o| o.id == c.option_id)
                .ok_or(CatalogError::UnknownOption(c.option_id))?;
            if !seen.insert(c.option_id) {
                return Err(CatalogError::DuplicateOption(option.name.clone()));
            }
        }
        let mut options = Vec::new();
        let mut recurring = price.price;
        let mut setup_fee = price.setup_fee;
        for option in &self.options {
            let choice = choices.iter().find(|c| c.option_id == option.id);
            let (value, quantity) = match option.kind {
                OptionKind::Dropdown | OptionKind::Radio => {
                    let value = match choice.and_then(|c| c.value_id) {
                        Some(id) => option.values.iter().find(|v| v.id == id).ok_or(
                            CatalogError::UnknownValue {
                                option: option.name.clone(),
                                value: id,
                            },
                        )?,
                        None => match option.values.first() {
                            Some(v) => v,
                            None => continue,
                        },
                    };
                    (value, 1)
                }
                OptionKind::YesNo | OptionKind::Quantity => {
                    let Some(value) = option.values.first() else {
                        continue;
                    };
                    if let Some(id) = choice.and_then(|c| c.value_id)
                        && id != value.id
                    {
                        return Err(CatalogError::UnknownValue {
                            option: option.name.clone(),
                            value: id,
                        });
                    }
                    let default = if option.kind == OptionKind::YesNo {
                        0
                    } else {
                        option.min_qty
                    };
                    let given = choice
                        .and_then(|c| c.quantity)
                        .unwrap_or(if choice.is_some() {
                            1.max(default)
                        } else {
                            default
                        });
                    let (min, max) = if option.kind == OptionKind::YesNo {
                        (0, Some(1))
                    } else {
                        (option.min_qty, option.max_qty)
                    };
                    if given < min || max.is_some_and(|m| given > m) {
                        return Err(CatalogError::QuantityOutOfRange {
                            option: option.name.clone(),
                            min,
                            max: max.map_or_else(|| "unlimited".to_string(), |m| m.to_string()),
                            given,
                        });
                    }
                    (value, given)
                }
            };
            if quantity == 0 {
                continue;
            }
            let value_price = if self.pay_type == PayType::Free {
                Price {
                    currency,
                    cycle,
                    price: Money::zero(currency),
                    setup_fee: Money::zero(currency),
                }
            } else {
                find_price(&value.prices, currency, cycle)
                    .cloned()
                    .ok_or_else(|| CatalogError::NoOptionPrice {
                        option: option.name.clone(),
                        value: value.name.clone(),
                        currency,
                        cycle,
                    })?
            };
            let line_recurring = value_price.price.checked_mul_int(quantity)?;
            let line_setup = value_price.setup_fee.checked_mul_int(quantity)?;
            recurring = recurring.checked_add(line_recurring)?;
            setup_fee = setup_fee.checked_add(line_setup)?;
            let description = match option.kind {
                OptionKind::Quantity => format!("{}: {} × {}", option.name, quantity, value.name),
                OptionKind::YesNo => option.name.clone(),
                _ => format!("{}: {}", option.name, value.name),
            };
            options.push(QuotedOption {
                option_id: option.id,
                value_id: value.id,
                quantity,
                description,
                unit: value_price.price,
                recurring: line_recurring,
                setup_fee: line_setup,
            });
        }
        Ok(Quote {
            currency,
            cycle,
            base: price.price,
            base_setup_fee: price.setup_fee,
            options,
            recurring,
            setup_fee,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::from_code("USD").unwrap())
    }

    fn price(minor: i64, setup: i64) -> Price {
        Price {
            currency: Currency::from_code("USD").unwrap(),
            cycle: BillingCycle::Monthly,
            price: usd(minor),
            setup_fee: usd(setup),
        }
    }

    fn product() -> Product {
        Product {
            id: ProductId(1),
            group_id: ProductGroupId(1),
            kind: ProductKind::Hosting,
            name: "Starter".into(),
            slug: "starter".into(),
            description: String::new(),
            pay_type: PayType::Recurring,
            tax_class: Some("standard".into()),
            provisioner: None,
            registrar: None,
            stock: Some(2),
            sold: 1,
            retired_at: None,
            prices: vec![price(1000, 500)],
            options: vec![
                ProductOption {
                    id: OptionId(10),
                    name: "Location".into(),
                    kind: OptionKind::Dropdown,
                    min_qty: 0,
                    max_qty: None,
                    values: vec![
                        OptionValue {
                            id: OptionValueId(100),
                            name: "Harare".into(),
                            prices: vec![price(0, 0)],
                        },
                        OptionValue {
                            id: OptionValueId(101),
                            name: "Frankfurt".into(),
                            prices: vec![price(200, 0)],
                        },
                    ],
                },
                ProductOption {
                    id: OptionId(11),
                    name: "Extra disk".into(),
                    kind: OptionKind::Quantity,
                    min_qty: 0,
                    max_qty: Some(10),
                    values: vec![OptionValue {
                        id: OptionValueId(110),
                        name: "10 GB".into(),
                        prices: vec![price(150, 100)],
                    }],
                },
                ProductOption {
                    id: OptionId(12),
                    name: "Backups".into(),
                    kind: OptionKind::YesNo,
                    min_qty: 0,
                    max_qty: None,
                    values: vec![OptionValue {
                        id: OptionValueId(120),
                        name: "Yes".into(),
                        prices: vec![price(300, 0)],
                    }],
                },
            ],
            addons: vec![],
        }
    }

    fn choice(option: i64, value: Option<i64>, qty: Option<i64>) -> OptionChoice {
        OptionChoice {
            option_id: OptionId(option),
            value_id: value.map(OptionValueId),
            quantity: qty,
        }
    }

    #[test]
    fn quotes_as_a_table() {
        let usd_c = Currency::from_code("USD").unwrap();
        // (choices, recurring, setup) or the error code
        type Case = (
            &'static str,
            Vec<OptionChoice>,
            Result<(i64, i64), &'static str>,
        );
        let table: Vec<Case> = vec![
            ("defaults", vec![], Ok((1000, 500))),
            (
                "frankfurt",
                vec![choice(10, Some(101), None)],
                Ok((1200, 500)),
            ),
            ("3 disks", vec![choice(11, None, Some(3))], Ok((1450, 800))),
            (
                "backups yes",
                vec![choice(12, None, Some(1))],
                Ok((1300, 500)),
            ),
            (
                "backups chosen without quantity",
                vec![choice(12, None, None)],
                Ok((1300, 500)),
            ),
            (
                "backups no",
                vec![choice(12, None, Some(0))],
                Ok((1000, 500)),
            ),
            (
                "11 disks",
                vec![choice(11, None, Some(11))],
                Err("quantity_out_of_range"),
            ),
            (
                "negative disks",
                vec![choice(11, None, Some(-1))],
                Err("quantity_out_of_range"),
            ),
            (
                "unknown option",
                vec![choice(99, None, None)],
                Err("unknown_option"),
            ),
            (
                "foreign value",
                vec![choice(10, Some(110), None)],
                Err("unknown_option_value"),
            ),
            (
                "twice",
                vec![choice(11, None, Some(1)), choice(11, None, Some(2))],
                Err("duplicate_option"),
            ),
        ];
        let p = product();
        for (name, choices, want) in table {
            let got = p
                .quote(usd_c, BillingCycle::Monthly, &choices)
                .map(|q| (q.recurring.minor(), q.setup_fee.minor()))
                .map_err(|e| e.code());
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn prices_exist_per_currency_and_cycle() {
        let p = product();
        let zwg = Currency::from_code("ZWG").unwrap();
        let usd_c = Currency::from_code("USD").unwrap();
        assert_eq!(
            p.price(zwg, BillingCycle::Monthly).unwrap_err().code(),
            "no_price"
        );
        assert_eq!(
            p.price(usd_c, BillingCycle::Annually).unwrap_err().code(),
            "no_price"
        );
        assert_eq!(
            p.price(usd_c, BillingCycle::OneTime).unwrap_err().code(),
            "cycle_not_allowed"
        );
        let mut free = product();
        free.pay_type = PayType::Free;
        assert_eq!(
            free.price(zwg, BillingCycle::Free).unwrap().price.minor(),
            0
        );
    }

    #[test]
    fn retired_and_stock() {
        let mut p = product();
        assert!(p.check_orderable(1).is_ok());
        assert_eq!(p.check_orderable(2).unwrap_err().code(), "out_of_stock");
        p.stock = None;
        assert!(p.check_orderable(1000).is_ok());
        p.retired_at = Some(Utc::now());
        assert_eq!(p.check_orderable(1).unwrap_err().code(), "product_retired");
    }
}
