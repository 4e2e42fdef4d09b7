//! Migration 0008 (`services.billing_day`) on rows written before it, on both engines: a
//! database is migrated up to 0007, services are written the way Keel wrote them then (the
//! anniversary of a service aligned to billing day 29 to 31 clamped, its renewals on the
//! clamped day), then the real migrations run and each service is read back.

mod common;

use chrono::{DateTime, NaiveDate, Utc};
use common::person;
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::catalog::Price;
use keel_domain::cycle::{self, BillingCycle};
use keel_domain::ids::{ClientId, ProductId, ServiceId};
use keel_domain::lifecycle::{PayType, ProductKind};
use keel_domain::tenancy::{Owner, Scope};
use keel_store::Db;
use keel_store::catalog::{NewProduct, NewProductGroup};
use keel_store::db::{ConnectOptions, now};
use keel_testkit::pg;
use sqlx::migrate::Migrator;
use std::path::{Path, PathBuf};

/// The last migration before the billing day was stored.
const BEFORE: i64 = 7;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A migrator holding this engine's migrations up to `BEFORE`, copied into `into`.
async fn migrations_before(engine: &str, into: &Path) -> Migrator {
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../migrations/{engine}"));
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version <= BEFORE {
            std::fs::copy(&path, into.join(&name)).unwrap();
        }
    }
    Migrator::new(into).await.unwrap()
}

/// One service as Keel wrote it before 0008, and what 0008 makes of it.
struct Row {
    what: &'static str,
    client: usize,
    cycle: BillingCycle,
    anniversary: &'static str,
    next_period: u32,
    next_due: Option<&'static str>,
    /// (billing day, next due date) after the migration.
    expected: (Option<u32>, Option<&'static str>),
}

/// Clients: 0 has billing day 31 of its own; 1 inherits 30 from its group; 2 has none; 3
/// has 29 of its own over its group's 30.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { what: "aligned to 31 in February, two periods billed", client: 0, cycle: BillingCycle::Monthly, anniversary: "2027-02-28", next_period: 2, next_due: Some("2027-04-28"), expected: (Some(31), Some("2027-04-30")) },
    Row { what: "aligned to the group's 30 in February", client: 1, cycle: BillingCycle::Monthly, anniversary: "2027-02-28", next_period: 1, next_due: Some("2027-03-28"), expected: (Some(30), Some("2027-03-30")) },
    Row { what: "aligned to 29 in February, the client's own day over its group's", client: 3, cycle: BillingCycle::Monthly, anniversary: "2027-02-28", next_period: 3, next_due: Some("2027-05-28"), expected: (Some(29), Some("2027-05-29")) },
    Row { what: "aligned to 31 in April, not yet paid (period 0 due on the anniversary)", client: 0, cycle: BillingCycle::Monthly, anniversary: "2027-04-30", next_period: 0, next_due: Some("2027-04-30"), expected: (Some(31), Some("2027-04-30")) },
    Row { what: "quarterly, next due in a leap February", client: 0, cycle: BillingCycle::Quarterly, anniversary: "2027-11-30", next_period: 1, next_due: Some("2028-02-29"), expected: (Some(31), Some("2028-02-29")) },
    Row { what: "annually from February 28: the leap year's 29th", client: 0, cycle: BillingCycle::Annually, anniversary: "2027-02-28", next_period: 1, next_due: Some("2028-02-28"), expected: (Some(31), Some("2028-02-29")) },
    Row { what: "not a month's last day: not clamped", client: 0, cycle: BillingCycle::Monthly, anniversary: "2027-03-15", next_period: 1, next_due: Some("2027-04-15"), expected: (None, Some("2027-04-15")) },
    Row { what: "on the billing day itself: nothing to keep", client: 0, cycle: BillingCycle::Monthly, anniversary: "2027-03-31", next_period: 1, next_due: Some("2027-04-30"), expected: (None, Some("2027-04-30")) },
    Row { what: "a month's last day, but the client has no billing day", client: 2, cycle: BillingCycle::Monthly, anniversary: "2027-02-28", next_period: 1, next_due: Some("2027-03-28"), expected: (None, Some("2027-03-28")) },
    Row { what: "one-time: nothing recurs", client: 0, cycle: BillingCycle::OneTime, anniversary: "2027-02-28", next_period: 1, next_due: None, expected: (None, None) },
];

async fn clients_and_product(db: &Db) -> (Vec<ClientId>, ProductId) {
    let mut tx = db.begin().await.unwrap();
    let at = now();
    let mut clients = Vec::new();
    for (i, email) in [
        "own31@example.com",
        "group30@example.com",
        "none@example.com",
        "own29@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        let client = keel_store::clients::create_client(
            &mut tx,
            Owner::Host,
            &person("Tariro", &format!("Moyo{i}"), email),
            at,
        )
        .await
        .unwrap();
        clients.push(client.id);
    }
    let group: i64 = keel_store::on_tx!(&mut tx, |c| sqlx::query_scalar(
        "INSERT INTO client_groups (name, billing_day, created_at, updated_at) VALUES ('Month end', 30, $1, $1) RETURNING id"
    )
    .bind(at)
    .fetch_one(&mut *c)
    .await)
    .unwrap();
    // (client, its own billing day, in the group)
    for (client, own, grouped) in [
        (0, Some(31), false),
        (1, None, true),
        (2, None, false),
        (3, Some(29), true),
    ] {
        keel_store::on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE clients SET billing_day = $1, group_id = $2 WHERE id = $3"
        )
        .bind(own.map(i64::from))
        .bind(grouped.then_some(group))
        .bind(clients[client].get())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
    }
    let products = keel_store::catalog::create_product_group(
        &mut tx,
        &NewProductGroup {
            name: "Hosting".into(),
            slug: "hosting".into(),
            hidden: false,
            sort_order: 0,
        },
        at,
    )
    .await
    .unwrap();
    let product = keel_store::catalog::create_product(
        &mut tx,
        &NewProduct {
            group_id: products.id,
            kind: ProductKind::Hosting,
            name: "Starter".into(),
            slug: "starter".into(),
            description: String::new(),
            pay_type: PayType::Recurring,
            tax_class: None,
            provisioner: None,
            registrar: None,
            stock: None,
            prices: vec![Price {
                currency: Currency::USD,
                cycle: BillingCycle::Monthly,
                price: Money::new(1000, Currency::USD),
                setup_fee: Money::zero(Currency::USD),
            }],
            options: vec![],
            addons: vec![],
        },
        at,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (clients, product.id)
}

/// Writes the rows with the columns services had before 0008.
async fn old_services(db: &Db, clients: &[ClientId], product: ProductId) -> Vec<ServiceId> {
    let at: DateTime<Utc> = now();
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for row in ROWS {
        let id: i64 = keel_store::on_tx!(&mut tx, |c| sqlx::query_scalar(
            "INSERT INTO services (client_id, product_id, label, cycle, currency, recurring_minor, status, \
               registration_date, anniversary, next_period, next_due_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'USD', 1000, 'active', $5, $5, $6, $7, $8, $8) RETURNING id"
        )
        .bind(clients[row.client].get())
        .bind(product.get())
        .bind(row.what)
        .bind(row.cycle.as_str())
        .bind(day(row.anniversary))
        .bind(i64::from(row.next_period))
        .bind(row.next_due.map(day))
        .bind(at)
        .fetch_one(&mut *c)
        .await)
        .unwrap();
        ids.push(ServiceId(id));
    }
    tx.commit().await.unwrap();
    ids
}

/// Migrates `db` to 0007, writes the old rows, runs every migration, checks each row.
async fn migrate_old_rows(db: &Db, engine: &str) {
    let dir = tempfile::tempdir().unwrap();
    let before = migrations_before(engine, dir.path()).await;
    match db {
        Db::Sqlite { writer, .. } => before.run(writer).await.unwrap(),
        Db::Postgres(pool) => before.run(pool).await.unwrap(),
    }
    let (clients, product) = clients_and_product(db).await;
    let ids = old_services(db, &clients, product).await;

    db.migrate().await.unwrap();

    for (row, id) in ROWS.iter().zip(ids) {
        let service = keel_store::services::get_service(db, Scope::Host, id)
            .await
            .unwrap()
            .unwrap();
        let (billing_day, next_due) = row.expected;
        assert_eq!(
            (
                service.anniversary.date(),
                service.anniversary.billing_day(),
                service.next_due_date
            ),
            (day(row.anniversary), billing_day, next_due.map(day)),
            "{engine}: {}",
            row.what
        );
        // The stored next due date is the one the domain computes for the next period.
        assert_eq!(
            service.next_due_date,
            cycle::due_date(service.anniversary, row.cycle, row.next_period),
            "{engine}: {}",
            row.what
        );
    }
    // The column refuses a day no month has.
    let refused = common::refused(db, "UPDATE services SET billing_day = 32").await;
    assert!(
        refused.to_lowercase().contains("check"),
        "{engine}: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_aligned_past_the_28th_get_their_billing_day_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keel.db").display());
    let db = Db::connect(&url, &ConnectOptions::default()).await.unwrap();
    migrate_old_rows(&db, "sqlite").await;
    keel_testkit::assert_ledger_balanced(&db).await;
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_aligned_past_the_28th_get_their_billing_day_on_postgres() {
    let server = pg::server_url().await;
    // Named like keel-testkit's schemas, so scripts/test sweeps it up after a crash.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("keel_t_{}_0_{nanos}", std::process::id());
    pg::execute(&server, &format!("CREATE SCHEMA {schema}")).await;
    let url = pg::with_search_path(&server, &schema);
    let db = Db::connect(
        &url,
        &ConnectOptions {
            max_connections: 4,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    migrate_old_rows(&db, "postgres").await;
    keel_testkit::assert_ledger_balanced(&db).await;
    db.close().await;
    pg::execute(&server, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
