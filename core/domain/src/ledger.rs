//! The double-entry ledger's rules, free of storage.
//!
//! - An [`Account`] has one [`AccountKind`] and one currency. Balances are kept as
//!   `debits - credits` in minor units; [`AccountKind::normal_sign`] turns that into the
//!   account's natural balance (a wallet, a liability, holds credit: its natural balance is
//!   `-(debits - credits)`).
//! - A [`NewEntry`] has two or more postings with positive amounts, balanced per currency.
//!   [`EntryBuilder::build`] checks that, and the store checks it again before commit.
//! - Entries are never changed: a correction is a reversing entry ([`NewEntry::reversal_of`])
//!   that names the entry it reverses and a reason.
//! - Every entry carries an idempotency key. [`NewEntry::differences`] compares a repeated
//!   request with the stored entry so the caller learns exactly what differs.
//! - An account with a floor (a wallet) may not go below `-credit_limit` in natural terms;
//!   [`Account::allows`] states the rule, the store enforces it atomically.

use crate::currency::Currency;
use crate::ids::{AccountId, ClientId, EntryId, ResellerId};
use crate::money::{Money, MoneyError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest idempotency key accepted (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

/// The five account kinds of double-entry bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

/// The ledger code of a client's wallet in `currency` (`wallet:client:12:USD`): the one place
/// the form is written; [`wallet_code_prefix`] finds all of a client's wallets.
pub fn wallet_code(client: crate::ids::ClientId, currency: crate::Currency) -> String {
    format!("{}{currency}", wallet_code_prefix(client))
}

/// The start every wallet code of `client` shares (`wallet:client:12:`).
pub fn wallet_code_prefix(client: crate::ids::ClientId) -> String {
    format!("wallet:client:{client}:")
}

impl AccountKind {
    pub const ALL: [AccountKind; 5] = [
        AccountKind::Asset,
        AccountKind::Liability,
        AccountKind::Equity,
        AccountKind::Revenue,
        AccountKind::Expense,
    ];

    /// +1 for debit-normal kinds (asset, expense), -1 for credit-normal ones.
    pub const fn normal_sign(self) -> i64 {
        match self {
            AccountKind::Asset | AccountKind::Expense => 1,
            AccountKind::Liability | AccountKind::Equity | AccountKind::Revenue => -1,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AccountKind::Asset => "asset",
            AccountKind::Liability => "liability",
            AccountKind::Equity => "equity",
            AccountKind::Revenue => "revenue",
            AccountKind::Expense => "expense",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Debit or credit.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Debit,
    Credit,
}

impl Side {
    /// The sign of a posting on this side in `debits - credits` terms.
    pub const fn sign(self) -> i64 {
        match self {
            Side::Debit => 1,
            Side::Credit => -1,
        }
    }

    pub const fn opposite(self) -> Side {
        match self {
            Side::Debit => Side::Credit,
            Side::Credit => Side::Debit,
        }
    }
}

/// Who an account belongs to, when it belongs to someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum AccountOwner {
    Client(ClientId),
    Reseller(ResellerId),
}

/// A ledger account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// Unique, stable, human-readable: `assets:receivable:USD`, `wallet:client:42:USD`.
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub owner: Option<AccountOwner>,
    /// `Some(limit)`: the natural balance may not go below `-limit` (a wallet has `Some(0)`
    /// unless a credit limit is granted). `None`: unbounded (clearing, revenue, …).
    pub credit_limit_minor: Option<i64>,
    /// Cached `debits - credits`, equal to the sum of the account's postings.
    pub balance_minor: i64,
}

impl Account {
    /// The balance on the account's normal side: what a wallet holder would call "my balance".
    pub fn natural_balance(&self) -> Money {
        Money::new(self.balance_minor * self.kind.normal_sign(), self.currency)
    }

    /// Whether moving the raw balance by `delta_minor` (debits - credits) keeps the account
    /// at or above its floor.
    pub fn allows(&self, delta_minor: i64) -> bool {
        allows(
            self.kind,
            self.credit_limit_minor,
            self.balance_minor,
            delta_minor,
        )
    }
}

/// The floor rule, shared with the store's atomic check:
/// `normal_sign * (balance + delta) >= -credit_limit` when a limit is set.
pub fn allows(
    kind: AccountKind,
    credit_limit_minor: Option<i64>,
    balance_minor: i64,
    delta_minor: i64,
) -> bool {
    match credit_limit_minor {
        None => true,
        Some(limit) => match balance_minor.checked_add(delta_minor) {
            Some(after) => (after as i128) * (kind.normal_sign() as i128) >= -(limit as i128),
            None => false,
        },
    }
}

/// One side of an entry: a positive amount debited or credited to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewPosting {
    pub account: AccountId,
    pub side: Side,
    pub amount: Money,
}

impl NewPosting {
    /// The posting in `debits - credits` terms.
    pub fn signed_minor(&self) -> i64 {
        self.amount.minor() * self.side.sign()
    }
}

/// A correction's link to the entry it undoes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reversal {
    pub of: EntryId,
    pub reason: String,
}

/// A journal entry that has passed [`EntryBuilder::build`]: balanced, keyed, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    idempotency_key: String,
    memo: String,
    postings: Vec<NewPosting>,
    reversal: Option<Reversal>,
}

impl NewEntry {
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    pub fn memo(&self) -> &str {
        &self.memo
    }
    pub fn postings(&self) -> &[NewPosting] {
        &self.postings
    }
    pub fn reversal(&self) -> Option<&Reversal> {
        self.reversal.as_ref()
    }

    /// The entry that undoes `original_postings` (each side swapped), linked to `of`.
    pub fn reversal_of(
        of: EntryId,
        original_postings: &[NewPosting],
        idempotency_key: impl Into<String>,
        reason: impl Into<String>,
    ) -> Result<NewEntry, LedgerError> {
        let reason = reason.into();
        if reason.trim().is_empty() {
            return Err(LedgerError::ReasonRequired);
        }
        let mut builder =
            EntryBuilder::new(idempotency_key, format!("Reversal of entry {of}: {reason}"));
        for p in original_postings {
            builder = builder.post(p.account, p.side.opposite(), p.amount);
        }
        builder.reversing(of, reason).build()
    }

    /// What differs between this entry and `stored`, in words; empty when they are the same
    /// request. Postings are compared as a set, so their order does not matter.
    pub fn differences(&self, stored: &NewEntry) -> Vec<String> {
        let mut out = Vec::new();
        if self.memo != stored.memo {
            out.push(format!(
                "memo: {:?} was stored, {:?} was sent",
                stored.memo, self.memo
            ));
        }
        if self.reversal != stored.reversal {
            out.push(
                "reversal: the entry reverses a different entry or gives another reason"
                    .to_string(),
            );
        }
        let mine = sorted(&self.postings);
        let theirs = sorted(&stored.postings);
        if mine != theirs {
            out.push(format!(
                "postings: stored [{}], sent [{}]",
                describe(&theirs),
                describe(&mine)
            ));
        }
        out
    }
}

fn sorted(postings: &[NewPosting]) -> Vec<(AccountId, Side, i64, &'static str)> {
    let mut v: Vec<_> = postings
        .iter()
        .map(|p| {
            (
                p.account,
                p.side,
                p.amount.minor(),
                p.amount.currency().code(),
            )
        })
        .collect();
    v.sort();
    v
}

fn describe(postings: &[(AccountId, Side, i64, &'static str)]) -> String {
    postings
        .iter()
        .map(|(a, s, m, c)| {
            format!(
                "{} account {a} {m} {c}",
                if *s == Side::Debit { "Dr" } else { "Cr" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a [`NewEntry`], checking every rule in [`EntryBuilder::build`].
#[derive(Debug, Clone)]
pub struct EntryBuilder {
    idempotency_key: String,
    memo: String,
    postings: Vec<NewPosting>,
    reversal: Option<Reversal>,
}

impl EntryBuilder {
    pub fn new(idempotency_key: impl Into<String>, memo: impl Into<String>) -> EntryBuilder {
        EntryBuilder {
            idempotency_key: idempotency_key.into(),
            memo: memo.into(),
            postings: Vec::new(),
            reversal: None,
        }
    }

    pub fn debit(self, account: AccountId, amount: Money) -> EntryBuilder {
        self.post(account, Side::Debit, amount)
    }

    pub fn credit(self, account: AccountId, amount: Money) -> EntryBuilder {
        self.post(account, Side::Credit, amount)
    }

    pub fn post(mut self, account: AccountId, side: Side, amount: Money) -> EntryBuilder {
        self.postings.push(NewPosting {
            account,
            side,
            amount,
        });
        self
    }

    pub fn reversing(mut self, of: EntryId, reason: impl Into<String>) -> EntryBuilder {
        self.reversal = Some(Reversal {
            of,
            reason: reason.into(),
        });
        self
    }

    /// Checks: a key of 1..=255 printable characters, two or more postings, every amount
    /// positive, debits equal to credits in every currency.
    pub fn build(self) -> Result<NewEntry, LedgerError> {
        let key = self.idempotency_key.trim();
        if key.is_empty() {
            return Err(LedgerError::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN || key.chars().any(char::is_control) {
            return Err(LedgerError::BadKey);
        }
        if self.postings.len() < 2 {
            return Err(LedgerError::TooFewPostings(self.postings.len()));
        }
        for (index, p) in self.postings.iter().enumerate() {
            if !p.amount.is_positive() {
                return Err(LedgerError::NonPositiveAmount {
                    index,
                    amount: p.amount,
                });
            }
        }
        check_balanced(
            self.postings
                .iter()
                .map(|p| (p.amount.currency(), p.signed_minor())),
        )?;
        if let Some(r) = &self.reversal
            && r.reason.trim().is_empty()
        {
            return Err(LedgerError::ReasonRequired);
        }
        Ok(NewEntry {
            idempotency_key: key.to_string(),
            memo: self.memo,
            postings: self.postings,
            reversal: self.reversal,
        })
    }
}

/// Checks that signed postings (`debits - credits`) sum to zero in every currency.
pub fn check_balanced(
    postings: impl IntoIterator<Item = (Currency, i64)>,
) -> Result<(), LedgerError> {
    let mut sums: BTreeMap<&'static str, (Currency, i128)> = BTreeMap::new();
    for (currency, minor) in postings {
        sums.entry(currency.code()).or_insert((currency, 0)).1 += minor as i128;
    }
    for (_, (currency, sum)) in sums {
        if sum != 0 {
            return Err(LedgerError::Unbalanced {
                currency,
                difference_minor: sum,
            });
        }
    }
    Ok(())
}

/// Everything that can refuse a ledger movement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a journal entry needs an idempotency key")]
    EmptyKey,
    #[error("an idempotency key must be 1 to 255 printable characters")]
    BadKey,
    #[error("a journal entry needs at least two postings, it has {0}")]
    TooFewPostings(usize),
    #[error(
        "posting {index} has amount {amount}; every posting amount must be positive (use the side to say debit or credit)"
    )]
    NonPositiveAmount { index: usize, amount: Money },
    #[error(
        "the entry does not balance in {currency}: debits exceed credits by {difference_minor} minor units"
    )]
    Unbalanced {
        currency: Currency,
        difference_minor: i128,
    },
    #[error("idempotency key {key:?} was already used for a different entry: {}", differences.join("; "))]
    KeyReused {
        key: String,
        differences: Vec<String>,
    },
    #[error(
        "account {account} would fall below its limit: available {available}, requested {requested}"
    )]
    InsufficientFunds {
        account: AccountId,
        available: Money,
        requested: Money,
    },
    #[error("account {account} holds {account_currency}, the posting is in {posting_currency}")]
    CurrencyMismatch {
        account: AccountId,
        account_currency: Currency,
        posting_currency: Currency,
    },
    #[error("account {0} does not exist")]
    UnknownAccount(AccountId),
    #[error("entry {0} does not exist")]
    UnknownEntry(EntryId),
    #[error("entry {0} has already been reversed")]
    AlreadyReversed(EntryId),
    #[error("a reversal needs a reason")]
    ReasonRequired,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl LedgerError {
    /// Machine-readable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::EmptyKey | LedgerError::BadKey => "invalid_idempotency_key",
            LedgerError::TooFewPostings(_) => "too_few_postings",
            LedgerError::NonPositiveAmount { .. } => "non_positive_amount",
            LedgerError::Unbalanced { .. } => "unbalanced_entry",
            LedgerError::KeyReused { .. } => "idempotency_key_reused",
            // Floors are wallets' (balance + credit limit): one code wherever a wallet is
            // overdrawn, the wallet routes' and a manual entry's alike.
            LedgerError::InsufficientFunds { .. } => "insufficient_wallet_balance",
            LedgerError::CurrencyMismatch { .. } => "currency_mismatch",
            LedgerError::UnknownAccount(_) => "account_not_found",
            LedgerError::UnknownEntry(_) => "entry_not_found",
            LedgerError::AlreadyReversed(_) => "already_reversed",
            LedgerError::ReasonRequired => "reason_required",
            LedgerError::Money(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn a_balanced_entry_builds() {
        let e = EntryBuilder::new("k1", "top-up")
            .debit(AccountId(1), usd(500))
            .credit(AccountId(2), usd(300))
            .credit(AccountId(3), usd(200))
            .build()
            .unwrap();
        assert_eq!(e.postings().len(), 3);
        assert_eq!(
            e.postings()
                .iter()
                .map(NewPosting::signed_minor)
                .sum::<i64>(),
            0
        );
    }

    #[test]
    fn every_broken_rule_is_refused_with_its_own_error() {
        let cases: Vec<(EntryBuilder, &str)> = vec![
            (
                EntryBuilder::new("", "m")
                    .debit(AccountId(1), usd(1))
                    .credit(AccountId(2), usd(1)),
                "invalid_idempotency_key",
            ),
            (
                EntryBuilder::new("x".repeat(256), "m")
                    .debit(AccountId(1), usd(1))
                    .credit(AccountId(2), usd(1)),
                "invalid_idempotency_key",
            ),
            (
                EntryBuilder::new("k", "m").debit(AccountId(1), usd(1)),
                "too_few_postings",
            ),
            (
                EntryBuilder::new("k", "m")
                    .debit(AccountId(1), usd(0))
                    .credit(AccountId(2), usd(0)),
                "non_positive_amount",
            ),
            (
                EntryBuilder::new("k", "m")
                    .debit(AccountId(1), usd(-5))
                    .credit(AccountId(2), usd(-5)),
                "non_positive_amount",
            ),
            (
                EntryBuilder::new("k", "m")
                    .debit(AccountId(1), usd(5))
                    .credit(AccountId(2), usd(4)),
                "unbalanced_entry",
            ),
            (
                EntryBuilder::new("k", "m")
                    .debit(AccountId(1), usd(5))
                    .credit(AccountId(2), Money::new(5, Currency::EUR)),
                "unbalanced_entry",
            ),
            (
                EntryBuilder::new("k", "m")
                    .debit(AccountId(1), usd(5))
                    .credit(AccountId(2), usd(5))
                    .reversing(EntryId(1), " "),
                "reason_required",
            ),
        ];
        for (builder, code) in cases {
            let err = builder
                .clone()
                .build()
                .expect_err(&format!("{builder:?} should fail"));
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn an_entry_in_two_currencies_balances_per_currency() {
        let eur = |m| Money::new(m, Currency::EUR);
        EntryBuilder::new("fx", "exchange")
            .debit(AccountId(1), usd(110))
            .credit(AccountId(2), usd(110))
            .debit(AccountId(3), eur(100))
            .credit(AccountId(4), eur(100))
            .build()
            .unwrap();
    }

    #[test]
    fn a_reversal_swaps_every_side_and_names_the_original() {
        let original = EntryBuilder::new("k1", "m")
            .debit(AccountId(1), usd(700))
            .credit(AccountId(2), usd(700))
            .build()
            .unwrap();
        let rev = NewEntry::reversal_of(EntryId(9), original.postings(), "k1-rev", "typo").unwrap();
        assert_eq!(rev.reversal().unwrap().of, EntryId(9));
        let net: i64 = original
            .postings()
            .iter()
            .chain(rev.postings())
            .map(NewPosting::signed_minor)
            .sum();
        assert_eq!(net, 0);
        assert_eq!(rev.postings()[0].side, Side::Credit);
        assert_eq!(
            NewEntry::reversal_of(EntryId(9), original.postings(), "k2", "").unwrap_err(),
            LedgerError::ReasonRequired
        );
    }

    #[test]
    fn differences_name_what_changed_and_ignore_posting_order() {
        let a = EntryBuilder::new("k", "memo")
            .debit(AccountId(1), usd(5))
            .credit(AccountId(2), usd(5))
            .build()
            .unwrap();
        let same_reordered = EntryBuilder::new("k", "memo")
            .credit(AccountId(2), usd(5))
            .debit(AccountId(1), usd(5))
            .build()
            .unwrap();
        assert!(a.differences(&same_reordered).is_empty());
        let other = EntryBuilder::new("k", "memo 2")
            .debit(AccountId(1), usd(6))
            .credit(AccountId(2), usd(6))
            .build()
            .unwrap();
        let diffs = other.differences(&a);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].starts_with("memo"));
        assert!(diffs[1].contains("Dr account 1 5 USD") && diffs[1].contains("Dr account 1 6 USD"));
    }

    #[test]
    fn the_floor_rule_follows_the_normal_side_and_the_credit_limit() {
        // (kind, limit, balance, delta, allowed)
        let table = [
            (AccountKind::Liability, Some(0), -1000, 1000, true), // wallet of 10.00 spent to zero
            (AccountKind::Liability, Some(0), -1000, 1001, false), // one cent too far
            (AccountKind::Liability, Some(500), -1000, 1500, true), // into the credit limit
            (AccountKind::Liability, Some(500), -1000, 1501, false),
            (AccountKind::Liability, Some(0), 0, -1, true), // crediting a wallet is always fine
            (AccountKind::Asset, Some(0), 100, -100, true),
            (AccountKind::Asset, Some(0), 100, -101, false),
            (AccountKind::Revenue, None, 0, i64::MAX, true),
            (AccountKind::Liability, Some(0), i64::MAX, 1, false), // overflow refused
        ];
        for (kind, limit, balance, delta, expected) in table {
            assert_eq!(
                allows(kind, limit, balance, delta),
                expected,
                "{kind:?} {limit:?} {balance} {delta}"
            );
        }
    }
}
