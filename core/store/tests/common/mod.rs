//! Helpers shared by the store's integration tests: a client, a wallet, a top-up, a raw
//! statement, each in one line at the call site. Every helper opens and commits its own
//! transaction unless its name says otherwise.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use keel_domain::client::{Client, ClientKind, NewClient, PostalAddress};
use keel_domain::currency::Currency;
use keel_domain::ids::{AccountId, ClientId, ResellerId};
use keel_domain::ledger::{Account, AccountKind, AccountOwner, EntryBuilder, LedgerError};
use keel_domain::money::Money;
use keel_domain::tenancy::Owner;
use keel_store::db::now;
use keel_store::ledger::{self, NewAccount, Posted};
use keel_store::{Db, StoreError};

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

// ------------------------------------------------------------------------------------
// Raw SQL, for tests that play the attacker or the careless operator.
// ------------------------------------------------------------------------------------

/// Runs one statement in its own write transaction and commits it.
pub async fn execute(db: &Db, sql: &str) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let affected = keel_store::on_tx!(&mut tx, |c| sqlx::query(sql)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(affected)
}

/// The error a statement that must fail gives, as the database's message.
pub async fn refused(db: &Db, sql: &str) -> String {
    match execute(db, sql).await {
        Ok(n) => panic!("{sql} was accepted ({n} rows)"),
        Err(StoreError::Database(e)) => e.to_string(),
        Err(other) => panic!("{sql} failed with {other:?}, expected a database error"),
    }
}

// ------------------------------------------------------------------------------------
// Clients and resellers.
// ------------------------------------------------------------------------------------

/// A person in Zimbabwe paying in USD.
pub fn person(first_name: &str, last_name: &str, email: &str) -> NewClient {
    NewClient {
        kind: ClientKind::Person,
        company_name: None,
        first_name: first_name.into(),
        last_name: last_name.into(),
        email: email.parse().expect("a valid email"),
        phone: None,
        address: PostalAddress::default(),
        country: "ZW".parse().expect("ZW"),
        currency: Currency::USD,
        language: "en".parse().expect("en"),
        tax_exempt: false,
        tax_id: None,
    }
}

pub async fn try_create_client(
    db: &Db,
    owner: Owner,
    new: &NewClient,
) -> Result<Client, StoreError> {
    let mut tx = db.begin().await?;
    let client = keel_store::clients::create_client(&mut tx, owner, new, now()).await?;
    tx.commit().await?;
    Ok(client)
}

/// A client named after its email's local part.
pub async fn client(db: &Db, owner: Owner, email: &str) -> Client {
    let local = email.split('@').next().unwrap_or("someone");
    try_create_client(db, owner, &person("Client", local, email))
        .await
        .expect("create client")
}

pub async fn reseller(db: &Db, name: &str) -> ResellerId {
    let mut tx = db.begin().await.expect("begin");
    let id = keel_store::clients::create_reseller(&mut tx, name, now())
        .await
        .expect("create reseller");
    tx.commit().await.expect("commit");
    id
}

// ------------------------------------------------------------------------------------
// Ledger.
// ------------------------------------------------------------------------------------

pub async fn account(
    db: &Db,
    code: &str,
    kind: AccountKind,
    currency: Currency,
    owner: Option<AccountOwner>,
    credit_limit_minor: Option<i64>,
) -> Account {
    let mut tx = db.begin().await.expect("begin");
    let account = ledger::create_account(
        &mut tx,
        &NewAccount {
            code: code.into(),
            name: code.into(),
            kind,
            currency,
            owner,
            credit_limit_minor,
        },
        now(),
    )
    .await
    .expect("create account");
    tx.commit().await.expect("commit");
    account
}

/// The gateway clearing account (an asset, unbounded) in USD.
pub async fn clearing(db: &Db) -> Account {
    account(
        db,
        "assets:clearing:USD",
        AccountKind::Asset,
        Currency::USD,
        None,
        None,
    )
    .await
}

/// The receivable account (an asset, unbounded) in USD.
pub async fn receivable(db: &Db) -> Account {
    account(
        db,
        "assets:receivable:USD",
        AccountKind::Asset,
        Currency::USD,
        None,
        None,
    )
    .await
}

/// A USD wallet (a liability with a floor): `Some(0)` cannot go below zero.
pub async fn wallet(db: &Db, code: &str, credit_limit_minor: Option<i64>) -> Account {
    account(
        db,
        code,
        AccountKind::Liability,
        Currency::USD,
        None,
        credit_limit_minor,
    )
    .await
}

/// A client's USD wallet that cannot go below zero.
pub async fn client_wallet(db: &Db, client: ClientId) -> Account {
    account(
        db,
        &format!("wallet:client:{client}:USD"),
        AccountKind::Liability,
        Currency::USD,
        Some(AccountOwner::Client(client)),
        Some(0),
    )
    .await
}

/// Posts one entry in its own transaction; commits only when it is accepted.
pub async fn post(db: &Db, entry: &keel_domain::ledger::NewEntry) -> Result<Posted, StoreError> {
    let mut tx = db.begin().await?;
    let posted = ledger::post(&mut tx, entry, now()).await?;
    tx.commit().await?;
    Ok(posted)
}

/// A wallet top-up: clearing Dr / wallet Cr.
pub fn top_up_entry(
    key: &str,
    clearing: AccountId,
    wallet: AccountId,
    minor: i64,
) -> keel_domain::ledger::NewEntry {
    EntryBuilder::new(key, "wallet top-up")
        .debit(clearing, usd(minor))
        .credit(wallet, usd(minor))
        .build()
        .expect("a balanced top-up")
}

/// An auto-debit: wallet Dr / receivable Cr.
pub fn debit_entry(
    key: &str,
    wallet: AccountId,
    receivable: AccountId,
    minor: i64,
) -> keel_domain::ledger::NewEntry {
    EntryBuilder::new(key, "auto-debit")
        .debit(wallet, usd(minor))
        .credit(receivable, usd(minor))
        .build()
        .expect("a balanced debit")
}

pub async fn top_up(db: &Db, key: &str, clearing: AccountId, wallet: AccountId, minor: i64) {
    let posted = post(db, &top_up_entry(key, clearing, wallet, minor))
        .await
        .expect("top-up");
    assert!(posted.created, "top-up {key} was new");
}

pub async fn debit(
    db: &Db,
    key: &str,
    wallet: AccountId,
    receivable: AccountId,
    minor: i64,
) -> Result<Posted, StoreError> {
    post(db, &debit_entry(key, wallet, receivable, minor)).await
}

/// The account as stored now.
pub async fn reload(db: &Db, id: AccountId) -> Account {
    ledger::get_account(db, id)
        .await
        .expect("read account")
        .expect("account exists")
}

/// The balance on the account's normal side, in minor units.
pub async fn natural_minor(db: &Db, id: AccountId) -> i64 {
    reload(db, id).await.natural_balance().minor()
}

/// The ledger error inside a store error, or a panic saying what came instead.
pub fn ledger_error<T: std::fmt::Debug>(result: Result<T, StoreError>) -> LedgerError {
    match result {
        Err(StoreError::Ledger(e)) => e,
        other => panic!("expected a ledger error, got {other:?}"),
    }
}

/// The constraint a refused write names, or a panic saying what came instead.
pub fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a unique-constraint conflict, got {other:?}"),
    }
}

/// A fixed instant, for tests that pass time in.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 instant")
        .with_timezone(&Utc)
}
