//! The notification outbox on both engines: pruning skipped messages by age; plugin
//! channels' delivery receipts (forward only, scoped to their channel), consents (opt-in,
//! opt-out, matching a sender to a client) and inbound messages (stored once).

mod common;

use chrono::Duration;
use common::*;
use keel_domain::ids::ClientId;
use keel_domain::tenancy::Owner;
use keel_store::Db;
use keel_store::notifications::{
    self as store, Delivery, DeliveryChange, NewInbound, NewNotification, NotificationState,
};
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
            template: None,
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

/// A pending WhatsApp message for `client`, sent as `wamid` (accepted).
async fn sent_on_whatsapp(db: &Db, client: ClientId, cause: &str, wamid: &str) -> i64 {
    let at = at("2027-03-01T10:00:00Z");
    let mut tx = db.begin().await.unwrap();
    let id = store::insert(
        &mut tx,
        &NewNotification {
            client_id: client,
            event: "payment_reminder",
            channel: "whatsapp",
            recipient: "+263771234567",
            language: "en",
            subject: "Reminder",
            body_text: "text",
            body_html: "",
            invoice_id: None,
            state: NotificationState::Pending,
            note: None,
            unique_key: cause,
            template: Some(r#"{"unavailable":{"reason":"none"}}"#),
        },
        at,
    )
    .await
    .unwrap()
    .expect("a new cause");
    tx.commit().await.unwrap();
    assert!(
        store::record_sent(db, id, wamid, Delivery::Accepted, at)
            .await
            .unwrap()
    );
    assert!(
        !store::record_sent(db, id, wamid, Delivery::Accepted, at)
            .await
            .unwrap(),
        "a sent message is recorded once"
    );
    id
}

/// A receipt without the provider's time (a keel:plugin 0.1 plugin's): ordered by rank.
fn by_rank(delivery: Delivery, detail: Option<&str>) -> store::Receipt<'_> {
    store::Receipt {
        delivery,
        detail,
        reported_at: None,
    }
}

/// A receipt with the provider's time.
fn timed(delivery: Delivery, reported: &str) -> store::Receipt<'static> {
    store::Receipt {
        delivery,
        detail: None,
        reported_at: Some(at(reported)),
    }
}

store_test!(
    async fn delivery_receipts_with_the_providers_time_end_at_the_latest_by_that_time(t) {
        let db = &t.db;
        let ann = client(db, Owner::Host, "ann@example.com").await.id;
        let id = sent_on_whatsapp(db, ann, "t1", "wamid.T").await;
        let now = at("2027-03-01T10:05:00Z");
        let apply = |r: store::Receipt<'static>| store::record_delivery(db, "whatsapp", "wamid.T", r, now);
        // Sent at :01, delivered at :02, read and failed later; each delivered four or five
        // times, in a shuffled order: twenty receipts.
        let sent = timed(Delivery::Sent, "2027-03-01T10:01:00Z");
        let delivered = timed(Delivery::Delivered, "2027-03-01T10:02:00Z");
        let read = timed(Delivery::Read, "2027-03-01T10:02:00Z");
        let failed = timed(Delivery::Failed, "2027-03-01T10:03:00Z");
        let order = [
            read, sent, delivered, sent, read, delivered, delivered, sent, read, sent, delivered,
            read, sent, read, delivered, sent, failed, read, delivered, sent,
        ];
        for r in order {
            assert_ne!(apply(r).await.unwrap(), DeliveryChange::Unknown);
        }
        let row = store::get(db, id).await.unwrap().unwrap();
        assert_eq!(
            row.delivery,
            Some(Delivery::Failed),
            "failed carries the latest time, though delivered and read outrank it"
        );
        assert_eq!(row.delivery_reported_at, Some(at("2027-03-01T10:03:00Z")));
        assert_eq!(row.delivery_at, Some(now));

        // Same second: the rank decides, whatever the order (read beats delivered at :02).
        let id = sent_on_whatsapp(db, ann, "t2", "wamid.U").await;
        let apply = |r: store::Receipt<'static>| store::record_delivery(db, "whatsapp", "wamid.U", r, now);
        assert_eq!(apply(read).await.unwrap(), DeliveryChange::Moved);
        assert_eq!(apply(delivered).await.unwrap(), DeliveryChange::Unchanged);
        assert_eq!(apply(sent).await.unwrap(), DeliveryChange::Unchanged, "an earlier time never wins");
        assert_eq!(apply(read).await.unwrap(), DeliveryChange::Unchanged, "a duplicate changes nothing");
        // A receipt without a time meets one with a time: the rank decides.
        assert_eq!(
            store::record_delivery(db, "whatsapp", "wamid.U", by_rank(Delivery::Delivered, None), now)
                .await
                .unwrap(),
            DeliveryChange::Unchanged
        );
        let row = store::get(db, id).await.unwrap().unwrap();
        assert_eq!(row.delivery, Some(Delivery::Read));
        assert_eq!(row.delivery_reported_at, Some(at("2027-03-01T10:02:00Z")));
    }
);

store_test!(
    async fn delivery_receipts_only_move_a_message_forward_whatever_their_order(t) {
        let db = &t.db;
        let ann = client(db, Owner::Host, "ann@example.com").await.id;
        let id = sent_on_whatsapp(db, ann, "r1", "wamid.A").await;
        let row = store::get(db, id).await.unwrap().unwrap();
        assert_eq!(row.state, NotificationState::Sent);
        assert_eq!(row.provider_id.as_deref(), Some("wamid.A"));
        assert_eq!(row.delivery, Some(Delivery::Accepted));

        let now = at("2027-03-01T10:01:00Z");
        let receipt = |d: Delivery| store::record_delivery(db, "whatsapp", "wamid.A", by_rank(d, None), now);
        // Twenty receipts, read first, duplicated: only the moves to a later rank count.
        let order = [
            Delivery::Read, Delivery::Sent, Delivery::Delivered, Delivery::Read, Delivery::Sent,
            Delivery::Delivered, Delivery::Sent, Delivery::Read, Delivery::Delivered, Delivery::Sent,
            Delivery::Read, Delivery::Delivered, Delivery::Sent, Delivery::Read, Delivery::Sent,
            Delivery::Delivered, Delivery::Read, Delivery::Sent, Delivery::Delivered, Delivery::Failed,
        ];
        let mut moved = 0;
        for d in order {
            match receipt(d).await.unwrap() {
                DeliveryChange::Moved => moved += 1,
                DeliveryChange::Unchanged => {}
                DeliveryChange::Unknown => panic!("the message is known"),
            }
        }
        assert_eq!(moved, 1, "read came first and nothing outranks it");
        assert_eq!(store::get(db, id).await.unwrap().unwrap().delivery, Some(Delivery::Read));

        // In order: sent, then failed with its reason; a late `sent` does not undo it, a
        // `delivered` (it arrived after all) does.
        let id = sent_on_whatsapp(db, ann, "r2", "wamid.B").await;
        let b = |d: Delivery, detail: Option<&'static str>| {
            store::record_delivery(db, "whatsapp", "wamid.B", by_rank(d, detail), now)
        };
        assert_eq!(b(Delivery::Sent, None).await.unwrap(), DeliveryChange::Moved);
        assert_eq!(
            b(Delivery::Failed, Some("131026: message undeliverable")).await.unwrap(),
            DeliveryChange::Moved
        );
        assert_eq!(b(Delivery::Sent, None).await.unwrap(), DeliveryChange::Unchanged);
        let row = store::get(db, id).await.unwrap().unwrap();
        assert_eq!(row.delivery, Some(Delivery::Failed));
        assert_eq!(row.delivery_detail.as_deref(), Some("131026: message undeliverable"));
        assert_eq!(b(Delivery::Delivered, None).await.unwrap(), DeliveryChange::Moved);

        // A receipt for an id no message has, or for another channel's message, is unknown.
        assert_eq!(
            store::record_delivery(db, "whatsapp", "wamid.nosuch", by_rank(Delivery::Read, None), now).await.unwrap(),
            DeliveryChange::Unknown
        );
        assert_eq!(
            store::record_delivery(db, "sms", "wamid.A", by_rank(Delivery::Failed, None), now).await.unwrap(),
            DeliveryChange::Unknown
        );
        assert_eq!(store::get(db, id).await.unwrap().unwrap().delivery, Some(Delivery::Delivered));
    }
);

store_test!(
    async fn a_consent_is_opted_in_and_out_with_its_sources_and_finds_its_client(t) {
        let db = &t.db;
        let ann = client(db, Owner::Host, "ann@example.com").await.id;
        let bob = client(db, Owner::Host, "bob@example.com").await.id;
        let t0 = at("2027-03-01T10:00:00Z");
        let t1 = at("2027-03-02T10:00:00Z");

        let mut tx = db.begin().await.unwrap();
        assert_eq!(store::consent(&mut tx, ann, "whatsapp").await.unwrap(), None);
        assert!(
            !store::opt_out(&mut tx, ann, "whatsapp", "staff", t0).await.unwrap(),
            "no opt-in, nothing to opt out of"
        );
        store::opt_in(&mut tx, ann, "whatsapp", "+263771234567", "checkout checkbox", t0).await.unwrap();
        let c = store::consent(&mut tx, ann, "whatsapp").await.unwrap().unwrap();
        assert!(c.active());
        assert_eq!((c.address.as_str(), c.opt_in_source.as_str(), c.opted_in_at), ("+263771234567", "checkout checkbox", t0));

        assert!(store::opt_out(&mut tx, ann, "whatsapp", "whatsapp: STOP reply", t1).await.unwrap());
        assert!(
            !store::opt_out(&mut tx, ann, "whatsapp", "again", t1).await.unwrap(),
            "an opt-out is recorded once, its first source kept"
        );
        let c = store::consent(&mut tx, ann, "whatsapp").await.unwrap().unwrap();
        assert!(!c.active());
        assert_eq!((c.opted_out_at, c.opt_out_source.as_deref()), (Some(t1), Some("whatsapp: STOP reply")));

        // A sender is matched by the address it opted in with, opted out or not.
        assert_eq!(store::clients_at(&mut tx, "whatsapp", "+263771234567").await.unwrap(), vec![ann]);
        assert_eq!(store::clients_at(&mut tx, "sms", "+263771234567").await.unwrap(), vec![]);
        // A new opt-in clears the opt-out.
        store::opt_in(&mut tx, ann, "whatsapp", "+263771234567", "staff: asked on the phone", t1).await.unwrap();
        assert!(store::consent(&mut tx, ann, "whatsapp").await.unwrap().unwrap().active());
        // Two clients with one number: both, the caller decides.
        store::opt_in(&mut tx, bob, "whatsapp", "+263771234567", "api", t1).await.unwrap();
        assert_eq!(store::clients_at(&mut tx, "whatsapp", "+263771234567").await.unwrap(), vec![ann, bob]);
        tx.commit().await.unwrap();
        assert_eq!(store::consents_of(db, ann).await.unwrap().len(), 1);
    }
);

store_test!(
    async fn an_inbound_message_is_stored_once_and_the_latest_opens_the_window(t) {
        let db = &t.db;
        let ann = client(db, Owner::Host, "ann@example.com").await.id;
        let m = |id: &'static str, at_: &str| NewInbound {
            channel: "whatsapp",
            provider_id: id,
            sender: "+263771234567",
            client_id: Some(ann),
            body: "Is my invoice paid?",
            received_at: at(at_),
        };
        let now = at("2027-03-01T12:00:00Z");
        assert_eq!(store::last_inbound_at(db, "whatsapp", "+263771234567").await.unwrap(), None);
        let mut tx = db.begin().await.unwrap();
        assert!(store::insert_inbound(&mut tx, &m("wamid.1", "2027-03-01T10:00:00Z"), now).await.unwrap().is_some());
        assert!(store::insert_inbound(&mut tx, &m("wamid.1", "2027-03-01T10:00:00Z"), now).await.unwrap().is_none(), "a redelivery");
        assert!(store::insert_inbound(&mut tx, &m("wamid.2", "2027-03-01T11:00:00Z"), now).await.unwrap().is_some());
        // Out of order: an older message delivered last.
        assert!(store::insert_inbound(&mut tx, &m("wamid.0", "2027-03-01T09:00:00Z"), now).await.unwrap().is_some());
        tx.commit().await.unwrap();
        assert_eq!(
            store::last_inbound_at(db, "whatsapp", "+263771234567").await.unwrap(),
            Some(at("2027-03-01T11:00:00Z"))
        );
        assert_eq!(store::last_inbound_at(db, "whatsapp", "+263779999999").await.unwrap(), None);
        let stored = store::inbound_of_client(db, ann, 10).await.unwrap();
        assert_eq!(stored.len(), 3);
    }
);
