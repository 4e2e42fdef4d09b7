//! The benchmarks' SQL on both engines (`keel_store::bench`): the baselines' bare tables
//! take their rows, the bare queue claims in batches of 100 until it is empty, and a
//! scratch schema is created and dropped. Nothing here times anything.

use keel_store::bench::{self, BillingRows};
use keel_testkit::store_test;

store_test!(
    async fn the_baseline_tables_take_their_rows(t) {
        bench::create_plain_rows(&t.db).await.unwrap();
        let mut tx = t.db.begin().await.unwrap();
        bench::insert_plain_rows(&mut tx, &(0..1000).collect::<Vec<i64>>(), "USD")
            .await
            .unwrap();
        bench::insert_plain_row(&mut tx, 1000, "USD").await.unwrap();
        tx.commit().await.unwrap();

        bench::create_billing_rows(&t.db).await.unwrap();
        let mut tx = t.db.begin().await.unwrap();
        for (table, first, n) in [
            (BillingRows::Invoices, 0, 1000),
            (BillingRows::Invoices, 1000, 7),
            (BillingRows::Lines, 0, 1000),
            (BillingRows::Postings, 0, 1000),
        ] {
            bench::insert_billing_rows(&mut tx, table, first, n, "2027-01-01T00:00:00+00:00")
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
);

store_test!(
    async fn the_bare_queue_is_claimed_100_at_a_time_until_empty(t) {
        bench::create_bare_queue(&t.db, 10_250).await.unwrap();
        let mut claimed = Vec::new();
        loop {
            let mut tx = t.db.begin().await.unwrap();
            let ids = bench::claim_bare_queue(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            if ids.is_empty() {
                break;
            }
            assert!(ids.len() <= 100, "{} claimed at once", ids.len());
            let mut tx = t.db.begin().await.unwrap();
            bench::delete_bare_queue(&mut tx, &ids).await.unwrap();
            tx.commit().await.unwrap();
            claimed.extend(ids);
        }
        claimed.sort_unstable();
        claimed.dedup();
        assert_eq!(claimed.len(), 10_250, "every row claimed once");
    }
);

#[tokio::test]
async fn a_scratch_schema_is_created_and_dropped() {
    let server = keel_testkit::pg::server_url().await;
    let schema = format!("keel_t_{}_bench", std::process::id());
    bench::create_schema(&server, &schema).await.unwrap();
    bench::drop_schema(&server, &schema).await.unwrap();
    // Dropped: it can be created again.
    bench::create_schema(&server, &schema).await.unwrap();
    bench::drop_schema(&server, &schema).await.unwrap();
    assert!(
        bench::create_schema(&server, "bad; DROP TABLE x")
            .await
            .is_err(),
        "a name that is not a plain identifier is refused"
    );
}

#[tokio::test]
async fn pg_settings_names_the_server_and_its_commit_settings() {
    let server = keel_testkit::pg::server_url().await;
    let db = keel_store::Db::connect(&server, &Default::default())
        .await
        .unwrap();
    let settings = bench::pg_settings(&db).await.unwrap();
    let names: Vec<&str> = settings.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "server_version",
            "synchronous_commit",
            "fsync",
            "shared_buffers",
            "max_wal_size"
        ]
    );
    assert!(settings.iter().all(|(_, v)| !v.is_empty()));
    db.close().await;
}
