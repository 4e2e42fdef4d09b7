//! The notification outbox on both engines: pruning skipped messages by age.

mod common;

use chrono::Duration;
use common::*;
use keel_domain::ids::ClientId;
use keel_domain::tenancy::Owner;
use keel_store::Db;
use keel_store::notifications::{self as store, NewNotification, NotificationState};
use keel_testkit::store_test;

/// Writes a notification for `client` at `at` and moves it to `state` (sent and failed
/// through a sending attempt, as the send job does).
async fn notification(
    db: &Db,
    client: ClientId,
    cause: &str,
    state: NotificationState,
    at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    let mut tx = db.begin().await.unwrap();
    let id = store::insert(
        &mut tx,
        &NewNotification {
            client_id: client,
            event: "invoice_overdue",
            channel: "email",
            recipient: "ann@example.com",
            language: "en",
            subject: "Overdue",
            body_text: "text",
            body_html: "<p>html</p>",
            invoice_id: None,
            state: if state == NotificationState::Skipped {
                NotificationState::Skipped
            } else {
                NotificationState::Pending
            },
            note: (state == NotificationState::Skipped)
                .then_some("the client turned email notifications off"),
            unique_key: cause,
        },
        at,
    )
    .await
    .unwrap()
    .expect("a new cause");
    tx.commit().await.unwrap();
    if state == NotificationState::Sent || state == NotificationState::Failed {
        assert!(
            store::record_attempt(db, id, state, None, at)
                .await
                .unwrap()
        );
    }
    id
}

store_test!(
    async fn skipped_notifications_older_than_the_cutoff_are_deleted_in_batches_and_the_rest_stay(t) {
        let db = &t.db;
        let ann = client(db, Owner::Host, "ann@example.com").await.id;
        let now = at("2027-03-01T03:30:00Z");
        let cutoff = now - Duration::days(30);
        let old = cutoff - Duration::days(1);
        let new = cutoff + Duration::hours(1);

        let mut old_skipped = Vec::new();
        for n in 0..3 {
            old_skipped.push(notification(db, ann, &format!("old-skipped:{n}"), NotificationState::Skipped, old).await);
        }
        let mut kept = Vec::new();
        kept.push(notification(db, ann, "new-skipped", NotificationState::Skipped, new).await);
        kept.push(notification(db, ann, "at-the-cutoff", NotificationState::Skipped, cutoff).await);
        for state in [NotificationState::Pending, NotificationState::Sent, NotificationState::Failed] {
            kept.push(notification(db, ann, &format!("old-{state}"), state, old).await);
            kept.push(notification(db, ann, &format!("new-{state}"), state, new).await);
        }

        // Two per batch: two, then the last one, then nothing.
        assert_eq!(store::delete_skipped(db, cutoff, 2).await.unwrap(), 2);
        assert_eq!(store::delete_skipped(db, cutoff, 2).await.unwrap(), 1);
        assert_eq!(store::delete_skipped(db, cutoff, 2).await.unwrap(), 0, "once");

        for id in old_skipped {
            assert_eq!(store::get(db, id).await.unwrap(), None, "notification {id} is deleted");
        }
        let left: Vec<(String, String)> = store::of_client(db, ann, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.unique_key, n.state.to_string()))
            .collect();
        assert_eq!(left.len(), kept.len(), "{left:?}");
        for id in kept {
            let row = store::get(db, id).await.unwrap().expect("kept");
            assert!(
                row.state != NotificationState::Skipped || row.created_at >= cutoff,
                "{row:?}"
            );
        }
        assert!(left.contains(&("old-failed".into(), "failed".into())), "{left:?}");
        assert!(left.contains(&("old-sent".into(), "sent".into())), "{left:?}");
        assert!(left.contains(&("old-pending".into(), "pending".into())), "{left:?}");
    }
);
