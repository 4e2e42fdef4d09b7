//! Staff users, API keys, stored idempotent responses and the hash-chained audit log, on
//! both engines.

mod common;

use chrono::Duration;
use common::*;
use keel_domain::access::{KeyScope, StaffRole};
use keel_domain::ids::{ApiKeyId, StaffId};
use keel_domain::tenancy::Owner;
use keel_store::audit::{self, AuditRecord, GENESIS};
use keel_store::db::now;
use keel_store::idempotency::{self, Begin, LOCK_TIMEOUT};
use keel_store::staff::{self, NewApiKey};
use keel_store::{Cursor, Db, Engine, StoreError};
use keel_testkit::store_test;

// ------------------------------------------------------------------------------------
// Staff
// ------------------------------------------------------------------------------------

async fn try_create_staff(
    db: &Db,
    email: &str,
    role: StaffRole,
) -> Result<keel_domain::access::Staff, StoreError> {
    let mut tx = db.begin().await?;
    let name = email.split('@').next().unwrap_or("staff");
    let hash = format!("argon2-of-{name}");
    let staff = staff::create_staff(&mut tx, email, name, &hash, role, now()).await?;
    tx.commit().await?;
    Ok(staff)
}

async fn update_staff(
    db: &Db,
    id: StaffId,
    name: Option<&str>,
    role: Option<StaffRole>,
    active: Option<bool>,
) -> Result<keel_domain::access::Staff, StoreError> {
    let mut tx = db.begin().await?;
    let staff = staff::update_staff(&mut tx, id, name, role, active, now()).await?;
    tx.commit().await?;
    Ok(staff)
}

store_test!(
    async fn staff_are_created_listed_and_found_by_email_in_any_case(t) {
        let db = &t.db;
        let ada = try_create_staff(db, "Ada@Example.com", StaffRole::Admin)
            .await
            .unwrap();
        let grace = try_create_staff(db, "grace@example.com", StaffRole::Support)
            .await
            .unwrap();

        assert_eq!(staff::list_staff(db).await.unwrap(), [ada.clone(), grace]);
        assert_eq!(staff::get_staff(db, ada.id).await.unwrap().as_ref(), Some(&ada));
        let found = staff::staff_by_email(db, "ada@EXAMPLE.COM").await.unwrap();
        assert_eq!(found, Some((ada.clone(), "argon2-of-Ada".to_string())));
        assert!(ada.active);
        assert_eq!(staff::staff_by_email(db, "alan@example.com").await.unwrap(), None);
        assert_eq!(staff::get_staff(db, StaffId(4242)).await.unwrap(), None);
    }
);

store_test!(
    async fn a_staff_email_taken_in_another_case_is_a_named_conflict(t) {
        let db = &t.db;
        try_create_staff(db, "ada@example.com", StaffRole::Admin)
            .await
            .unwrap();

        let again = try_create_staff(db, "ADA@example.com", StaffRole::Support).await;

        assert_eq!(conflict(again), "staff_email_key");
        assert_eq!(staff::list_staff(db).await.unwrap().len(), 1);
    }
);

store_test!(
    async fn a_staff_update_changes_only_the_fields_given(t) {
        let db = &t.db;
        let ada = try_create_staff(db, "ada@example.com", StaffRole::Support)
            .await
            .unwrap();

        let promoted = update_staff(db, ada.id, None, Some(StaffRole::Billing), None)
            .await
            .unwrap();
        let renamed = update_staff(db, ada.id, Some("Ada L."), None, Some(false))
            .await
            .unwrap();

        assert_eq!((promoted.name.as_str(), promoted.role, promoted.active), ("ada", StaffRole::Billing, true));
        assert_eq!((renamed.name.as_str(), renamed.role, renamed.active), ("Ada L.", StaffRole::Billing, false));
        assert_eq!(renamed.email, "ada@example.com");
        assert_eq!(staff::get_staff(db, ada.id).await.unwrap(), Some(renamed));
        let unknown = update_staff(db, StaffId(4242), Some("x"), None, None).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    }
);

// ------------------------------------------------------------------------------------
// API keys
// ------------------------------------------------------------------------------------

fn admin_key<'a>(hash: &'a str, staff_id: Option<StaffId>) -> NewApiKey<'a> {
    NewApiKey {
        name: "deploy",
        prefix: "keel_ad_3f9a",
        secret_hash: hash,
        scope: KeyScope::Admin,
        staff_id,
        reseller_id: None,
        client_id: None,
    }
}

async fn try_create_key(
    db: &Db,
    new: &NewApiKey<'_>,
) -> Result<keel_domain::access::ApiKey, StoreError> {
    let mut tx = db.begin().await?;
    let key = staff::create_api_key(&mut tx, new, now()).await?;
    tx.commit().await?;
    Ok(key)
}

async fn revoke(
    db: &Db,
    id: ApiKeyId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<keel_domain::access::ApiKey, StoreError> {
    let mut tx = db.begin().await?;
    let key = staff::revoke_api_key(&mut tx, id, at).await?;
    tx.commit().await?;
    Ok(key)
}

store_test!(
    async fn an_api_key_is_found_by_its_hash_with_its_staff_users_role(t) {
        let db = &t.db;
        let billing = try_create_staff(db, "bill@example.com", StaffRole::Billing)
            .await
            .unwrap();
        let north = reseller(db, "North").await;
        let staff_key = try_create_key(db, &admin_key("aa11", Some(billing.id)))
            .await
            .unwrap();
        let reseller_key = NewApiKey {
            scope: KeyScope::Reseller,
            reseller_id: Some(north),
            ..admin_key("bb22", None)
        };
        let reseller_key = try_create_key(db, &reseller_key).await.unwrap();

        let found = staff::key_by_hash(db, "aa11").await.unwrap().unwrap();
        assert_eq!(found.key, staff_key);
        assert_eq!(found.staff_role, Some(StaffRole::Billing));
        assert_eq!(found.staff_active, Some(true));
        let found = staff::key_by_hash(db, "bb22").await.unwrap().unwrap();
        assert_eq!(found.key, reseller_key);
        assert_eq!(found.key.tenancy(), Some(keel_domain::tenancy::Scope::Reseller(north)));
        assert_eq!((found.staff_role, found.staff_active), (None, None));
        assert!(staff::key_by_hash(db, "cc33").await.unwrap().is_none());
        let listed = staff::list_api_keys(db).await.unwrap();
        assert_eq!(listed, [staff_key, reseller_key]);

        // A deactivated staff user's key says so.
        update_staff(db, billing.id, None, None, Some(false))
            .await
            .unwrap();
        let found = staff::key_by_hash(db, "aa11").await.unwrap().unwrap();
        assert_eq!(found.staff_active, Some(false));
    }
);

store_test!(
    async fn revoking_a_key_twice_keeps_the_first_time(t) {
        let db = &t.db;
        let key = try_create_key(db, &admin_key("aa11", None)).await.unwrap();
        let first = at("2030-01-01T10:00:00Z");

        let revoked = revoke(db, key.id, first).await.unwrap();
        let again = revoke(db, key.id, first + Duration::hours(1)).await.unwrap();

        assert_eq!(revoked.revoked_at, Some(first));
        assert_eq!(again.revoked_at, Some(first));
        let found = staff::key_by_hash(db, "aa11").await.unwrap().unwrap();
        assert_eq!(found.key.revoked_at, Some(first));
        let unknown = revoke(db, ApiKeyId(4242), first).await;
        assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    }
);

store_test!(
    async fn a_key_whose_scope_lacks_its_owner_is_refused_by_the_schema(t) {
        let db = &t.db;
        let reseller_without_reseller = NewApiKey {
            scope: KeyScope::Reseller,
            ..admin_key("aa11", None)
        };
        let client_without_client = NewApiKey {
            scope: KeyScope::Client,
            ..admin_key("bb22", None)
        };

        for new in [reseller_without_reseller, client_without_client] {
            let refused = try_create_key(db, &new).await;

            let Err(StoreError::Database(sqlx::Error::Database(e))) = &refused else {
                panic!("expected a CHECK violation, got {refused:?}");
            };
            assert_eq!(e.kind(), sqlx::error::ErrorKind::CheckViolation, "{e}");
        }
        assert!(staff::list_api_keys(db).await.unwrap().is_empty());
    }
);

store_test!(
    async fn a_secret_hash_stored_twice_is_a_named_conflict(t) {
        let db = &t.db;
        try_create_key(db, &admin_key("aa11", None)).await.unwrap();

        let again = try_create_key(db, &admin_key("aa11", None)).await;

        assert_eq!(conflict(again), "api_keys_secret_hash_key");
    }
);

store_test!(
    async fn a_key_use_is_recorded_at_most_once_a_minute(t) {
        let db = &t.db;
        let key = try_create_key(db, &admin_key("aa11", None)).await.unwrap();
        let first = at("2030-01-01T10:00:00Z");
        let last_used = || async {
            staff::key_by_hash(db, "aa11")
                .await
                .unwrap()
                .unwrap()
                .key
                .last_used_at
        };
        assert_eq!(last_used().await, None);

        staff::touch_api_key(db, key.id, first).await.unwrap();
        assert_eq!(last_used().await, Some(first));
        staff::touch_api_key(db, key.id, first + Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(last_used().await, Some(first));
        let later = first + Duration::seconds(61);
        staff::touch_api_key(db, key.id, later).await.unwrap();
        assert_eq!(last_used().await, Some(later));
    }
);

// ------------------------------------------------------------------------------------
// Idempotency keys
// ------------------------------------------------------------------------------------

const PRINCIPAL: &str = "api_key:1";

/// `begin` for a POST /api/v1/clients with body hash `hash`.
async fn begin(db: &Db, key: &str, hash: &str, at: chrono::DateTime<chrono::Utc>) -> Begin {
    idempotency::begin(db, PRINCIPAL, key, "POST", "/api/v1/clients", hash, at)
        .await
        .unwrap()
}

fn started(outcome: Begin) -> i64 {
    match outcome {
        Begin::Started(id) => id,
        other => panic!("expected Started, got {other:?}"),
    }
}

store_test!(
    async fn the_first_request_under_a_key_runs_and_a_repeat_meanwhile_is_in_progress(t) {
        let db = &t.db;
        let t0 = now();

        started(begin(db, "k1", "h1", t0).await);
        let repeat = begin(db, "k1", "h1", t0 + Duration::seconds(1)).await;

        assert_eq!(repeat, Begin::InProgress);
    }
);

store_test!(
    async fn a_completed_request_is_replayed_with_its_response_for_as_long_as_it_is_kept(t) {
        let db = &t.db;
        let t0 = now();
        let id = started(begin(db, "k1", "h1", t0).await);

        idempotency::complete(db, id, 201, r#"{"id":7}"#, t0).await.unwrap();

        let replay = Begin::Replay {
            status: 201,
            body: r#"{"id":7}"#.into(),
        };
        assert_eq!(begin(db, "k1", "h1", t0).await, replay);
        assert_eq!(begin(db, "k1", "h1", t0 + Duration::hours(23)).await, replay);
        // A completed key is not released.
        idempotency::release(db, id).await.unwrap();
        assert_eq!(begin(db, "k1", "h1", t0).await, replay);
    }
);

store_test!(
    async fn another_request_under_a_used_key_is_a_mismatch(t) {
        let db = &t.db;
        let t0 = now();
        let id = started(begin(db, "k1", "h1", t0).await);
        // (method, path, body hash, what differs from the first request)
        let others: [(&str, &str, &str, &[&str]); 4] = [
            ("POST", "/api/v1/clients", "h2", &["body"]),
            ("PATCH", "/api/v1/clients", "h1", &["method"]),
            ("POST", "/api/v1/contacts", "h1", &["path"]),
            ("PUT", "/api/v1/contacts", "h9", &["method", "path", "body"]),
        ];

        for (method, path, hash, differs) in others {
            let running = idempotency::begin(db, PRINCIPAL, "k1", method, path, hash, t0).await;
            assert_eq!(running.unwrap(), Begin::Mismatch { differs: differs.to_vec() }, "{method} {path} {hash}");
        }
        idempotency::complete(db, id, 200, "{}", t0).await.unwrap();
        for (method, path, hash, differs) in others {
            let done = idempotency::begin(db, PRINCIPAL, "k1", method, path, hash, t0).await;
            assert_eq!(done.unwrap(), Begin::Mismatch { differs: differs.to_vec() }, "{method} {path} {hash}");
        }
    }
);

store_test!(
    async fn a_key_belongs_to_one_principal(t) {
        let db = &t.db;
        let t0 = now();
        let mine = started(begin(db, "k1", "h1", t0).await);

        let theirs = idempotency::begin(db, "api_key:2", "k1", "POST", "/api/v1/clients", "h9", t0)
            .await
            .unwrap();

        assert_ne!(started(theirs), mine);
    }
);

store_test!(
    async fn an_abandoned_request_is_taken_over_once_after_the_lock_timeout(t) {
        let db = &t.db;
        let t0 = now();
        let id = started(begin(db, "k1", "h1", t0).await);

        let early = begin(db, "k1", "h1", t0 + LOCK_TIMEOUT - Duration::seconds(1)).await;
        let stale = t0 + LOCK_TIMEOUT + Duration::seconds(1);
        let takeover = begin(db, "k1", "h1", stale).await;
        let second_retry = begin(db, "k1", "h1", stale + Duration::seconds(1)).await;

        assert_eq!(early, Begin::InProgress);
        assert_eq!(takeover, Begin::Started(id));
        assert_eq!(second_retry, Begin::InProgress);
        idempotency::complete(db, id, 201, "{}", stale).await.unwrap();
        let replay = begin(db, "k1", "h1", stale + LOCK_TIMEOUT * 2).await;
        assert_eq!(replay, Begin::Replay { status: 201, body: "{}".into() });
    }
);

store_test!(
    async fn the_first_answer_stored_under_a_key_is_the_one_kept(t) {
        // A use case stores its answer in its own transaction (`complete_in`); the layer's
        // `complete` afterwards, or a late attempt that lost the key to a takeover, changes
        // nothing, and the late attempt is told so (it must roll back).
        let db = &t.db;
        let t0 = now();
        let id = started(begin(db, "k1", "h1", t0).await);
        let mut tx = db.begin().await.unwrap();
        let first = idempotency::complete_in(&mut tx, id, 201, r#"{"id":1}"#, t0).await.unwrap();
        tx.commit().await.unwrap();

        idempotency::complete(db, id, 201, r#"{"id":2}"#, t0).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let late = idempotency::complete_in(&mut tx, id, 201, r#"{"id":3}"#, t0).await.unwrap();
        drop(tx);

        assert_eq!((first, late), (true, false));
        assert_eq!(begin(db, "k1", "h1", t0).await, Begin::Replay { status: 201, body: r#"{"id":1}"#.into() });
    }
);

store_test!(
    async fn a_released_key_can_be_used_again(t) {
        let db = &t.db;
        let t0 = now();
        let id = started(begin(db, "k1", "h1", t0).await);

        idempotency::release(db, id).await.unwrap();

        started(begin(db, "k1", "h2", t0).await);
    }
);

store_test!(
    async fn purge_forgets_the_keys_created_before_the_cutoff(t) {
        let db = &t.db;
        let t0 = at("2030-01-01T00:00:00Z");
        let old = started(begin(db, "old", "h1", t0).await);
        idempotency::complete(db, old, 200, "{}", t0).await.unwrap();
        started(begin(db, "new", "h1", t0 + Duration::days(2)).await);

        let purged = idempotency::purge(db, t0 + Duration::days(1)).await.unwrap();

        assert_eq!(purged, 1);
        assert_ne!(started(begin(db, "old", "h2", t0 + Duration::days(2)).await), old);
        assert_eq!(begin(db, "new", "h1", t0 + Duration::days(2)).await, Begin::InProgress);
    }
);

// ------------------------------------------------------------------------------------
// Audit log
// ------------------------------------------------------------------------------------

/// Appends `count` rows, each in its own transaction, as staff user 1 changing clients.
async fn record_rows(db: &Db, count: usize) {
    for i in 1..=count {
        let rec = AuditRecord {
            actor_kind: if i % 2 == 0 { "system" } else { "staff" },
            actor_id: (i % 2 == 1).then_some(1),
            actor_label: "ada@example.com",
            action: "client.update",
            subject_kind: "client",
            subject_id: i.to_string(),
            summary: serde_json::json!({"changed": ["email"], "n": i}),
            request_id: (i % 3 == 0).then_some("req-1"),
        };
        let mut tx = db.begin().await.unwrap();
        let seq = audit::record(&mut tx, &rec, now()).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(seq, i as i64);
    }
}

/// Lets the next statement of kind `what` ("update" or "delete") reach `audit_log`, as an
/// intruder with the database's own rights could.
async fn bypass_audit_trigger(db: &Db, what: &str) {
    let sql = match db.engine() {
        Engine::Sqlite => format!("DROP TRIGGER audit_log_no_{what}"),
        Engine::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable".into(),
    };
    execute(db, &sql).await.unwrap();
}

async fn all_rows(db: &Db) -> Vec<audit::AuditEntry> {
    audit::list(db, None, 1000).await.unwrap().items
}

store_test!(
    async fn an_empty_audit_log_is_intact(t) {
        let report = audit::verify(&t.db).await.unwrap();

        assert!(report.is_intact());
        assert_eq!((report.rows, report.head_hash.as_str()), (0, GENESIS));
    }
);

store_test!(
    async fn recorded_rows_form_an_intact_chain_and_page_by_cursor(t) {
        let db = &t.db;

        record_rows(db, 5).await;

        let report = audit::verify(db).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.rows, 5);
        let rows = all_rows(db).await;
        assert_eq!(report.head_hash, rows[4].hash);
        let mut prev = GENESIS.to_string();
        for row in &rows {
            assert_eq!(row.prev_hash, prev);
            assert_eq!(audit::row_hash(&prev, row), row.hash);
            prev = row.hash.clone();
        }
        assert_eq!(rows[0].summary, r#"{"changed":["email"],"n":1}"#);
        assert_eq!(rows[2].request_id.as_deref(), Some("req-1"));
        assert_eq!((rows[1].actor_kind.as_str(), rows[1].actor_id), ("system", None));

        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = audit::list(db, cursor, 2).await.unwrap();
            pages.push(page.items.iter().map(|e| e.seq).collect::<Vec<_>>());
            match page.next_cursor {
                Some(next) => cursor = Cursor::decode(&next),
                None => break,
            }
        }
        assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5]]);
    }
);

store_test!(
    async fn the_audit_log_refuses_updates_and_deletes(t) {
        let db = &t.db;
        record_rows(db, 2).await;

        for sql in [
            "UPDATE audit_log SET summary = '{}' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 2",
        ] {
            let message = refused(db, sql).await;
            assert!(message.contains("append-only"), "{sql}: {message}");
        }

        assert!(audit::verify(db).await.unwrap().is_intact());
        assert_eq!(all_rows(db).await.len(), 2);
    }
);

store_test!(
    async fn an_edit_that_bypasses_the_trigger_is_reported_at_the_edited_row(t) {
        let db = &t.db;
        record_rows(db, 4).await;
        bypass_audit_trigger(db, "update").await;

        let sql = r#"UPDATE audit_log SET summary = '{"changed":[]}' WHERE seq = 2"#;
        execute(db, sql).await.unwrap();

        let report = audit::verify(db).await.unwrap();
        assert_eq!(
            report.first_break,
            Some((2, "its content does not match its hash".to_string()))
        );
        assert_eq!(report.rows, 4);
    }
);

store_test!(
    async fn an_edit_that_also_rewrites_its_hash_is_reported_at_the_next_row(t) {
        let db = &t.db;
        record_rows(db, 4).await;
        bypass_audit_trigger(db, "update").await;

        let mut forged = all_rows(db).await.remove(1);
        forged.summary = r#"{"changed":[]}"#.into();
        let hash = audit::row_hash(&forged.prev_hash, &forged);
        let sql = format!(
            r#"UPDATE audit_log SET summary = '{{"changed":[]}}', hash = '{hash}' WHERE seq = 2"#
        );
        execute(db, &sql).await.unwrap();

        let report = audit::verify(db).await.unwrap();
        assert_eq!(
            report.first_break,
            Some((3, "its link to the previous row is wrong".to_string()))
        );
    }
);

store_test!(
    async fn removing_the_last_row_is_detected_through_the_head(t) {
        let db = &t.db;
        record_rows(db, 3).await;
        bypass_audit_trigger(db, "delete").await;

        execute(db, "DELETE FROM audit_log WHERE seq = 3").await.unwrap();

        let report = audit::verify(db).await.unwrap();
        assert_eq!(
            report.first_break,
            Some((
                3,
                "the chain head does not match the last row: rows were removed".to_string()
            ))
        );
        assert_eq!(report.rows, 2);
    }
);

store_test!(
    async fn removing_a_row_in_the_middle_is_reported_as_missing(t) {
        let db = &t.db;
        record_rows(db, 3).await;
        bypass_audit_trigger(db, "delete").await;

        execute(db, "DELETE FROM audit_log WHERE seq = 2").await.unwrap();

        let report = audit::verify(db).await.unwrap();
        assert_eq!(
            report.first_break,
            Some((3, "expected row 2: a row is missing".to_string()))
        );
    }
);

store_test!(
    async fn audit_rows_are_written_with_the_change_or_not_at_all(t) {
        let db = &t.db;
        record_rows(db, 1).await;
        let rec = AuditRecord {
            actor_kind: "system",
            actor_id: None,
            actor_label: "keel",
            action: "client.create",
            subject_kind: "client",
            subject_id: "1".into(),
            summary: serde_json::json!({}),
            request_id: None,
        };

        // A transaction that records and then rolls back leaves no row and no gap.
        let mut tx = db.begin().await.unwrap();
        client_in(&mut tx).await;
        audit::record(&mut tx, &rec, now()).await.unwrap();
        drop(tx);
        let mut tx = db.begin().await.unwrap();
        let seq = audit::record(&mut tx, &rec, now()).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(seq, 2);
        let report = audit::verify(db).await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.rows, 2);
    }
);

async fn client_in(tx: &mut keel_store::Tx) {
    let new = person("Ada", "Lovelace", "ada@example.com");
    keel_store::clients::create_client(tx, Owner::Host, &new, now())
        .await
        .unwrap();
}
