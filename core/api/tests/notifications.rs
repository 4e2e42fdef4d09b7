//! A client's notifications over HTTP on both engines (issue 18): its notifications, its
//! channel preferences, its consents to the WhatsApp channel (opt-in with an E.164 number
//! and a source, opt-out) and the messages it sent in, each read and changed only within
//! the key's tenancy; every refusal answers its code and changes nothing (no consent, no
//! preference, no audit row). And the provider hook `/hooks/notifier/{plugin}`: 404 for a
//! plugin that serves no channel, 413 past 256 KiB, and a Keel key on it grants nothing and
//! never reaches the plugin.

mod common;

use common::*;
use futures::future::BoxFuture;
use keel_api::ApiConfig;
use keel_api::routes::notifications::MAX_WEBHOOK_BYTES;
use keel_app::App;
use keel_app::notifications::{Notifiers, OptInInput};
use keel_app::notify::{PluginChannel, Settings};
use keel_domain::ids::ClientId;
use keel_plugin_host::notifier::{Inbound, Message, Notifier, Receipt};
use keel_plugin_host::{InboundRequest, PluginError, PluginFailure, PluginInfo};
use keel_store::notifications::{self as store, NewInbound, NewNotification, NotificationState};
use keel_testkit::TestDb;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The WhatsApp channel as `[notifications.whatsapp]` configures it.
fn whatsapp() -> Settings {
    let mut channels = BTreeMap::new();
    channels.insert(
        "whatsapp".to_owned(),
        PluginChannel {
            plugin: "whatsapp".into(),
            window_hours: Some(24),
            templates: BTreeMap::new(),
        },
    );
    Settings {
        channels,
        ..Settings::default()
    }
}

/// A server whose application has the WhatsApp channel configured (no plugin behind it).
async fn start(t: &TestDb) -> Api {
    let served = App::new(t.db.clone()).with_notifications(whatsapp());
    Api::start_serving(t, ApiConfig::default(), served).await
}

fn path(client: ClientId, rest: &str) -> String {
    format!("/api/v1/clients/{client}/{rest}")
}

async fn put(api: &Api, path: &str, key: &str, body: &Value) -> Reply {
    api.send(api.authed(Method::PUT, path, key).json(body))
        .await
}

async fn opt_in(api: &Api, client: ClientId, key: &str, body: &Value) -> Reply {
    put(api, &path(client, "consents/whatsapp"), key, body).await
}

async fn opt_out(api: &Api, client: ClientId, key: &str) -> Reply {
    api.delete(&path(client, "consents/whatsapp"), key).await
}

async fn set_channel(api: &Api, client: ClientId, channel: &str, key: &str, on: bool) -> Reply {
    put(
        api,
        &path(client, &format!("notification-channels/{channel}")),
        key,
        &json!({ "enabled": on }),
    )
    .await
}

fn number(n: &str) -> Value {
    json!({ "number": n, "source": "checkout checkbox" })
}

/// One email notification and one inbound WhatsApp message for `client`, written as the
/// outbox and the hook write them.
async fn seed_messages(api: &Api, client: ClientId, tag: &str) {
    let mut tx = api.app.db.begin().await.expect("begin");
    let subject = format!("Invoice for {tag}");
    let key = format!("test:{tag}");
    store::insert(
        &mut tx,
        &NewNotification {
            client_id: client,
            event: "invoice_created",
            channel: "email",
            recipient: &format!("{tag}@example.com"),
            language: "en",
            subject: &subject,
            body_text: "Your invoice is ready.",
            body_html: "<p>Your invoice is ready.</p>",
            invoice_id: None,
            state: NotificationState::Pending,
            note: None,
            unique_key: &key,
            template: None,
        },
        api.app.now(),
    )
    .await
    .expect("a notification")
    .expect("written");
    let provider_id = format!("wamid.{tag}");
    let body = format!("Hello from {tag}");
    store::insert_inbound(
        &mut tx,
        &NewInbound {
            channel: "whatsapp",
            provider_id: &provider_id,
            sender: "+263771234567",
            client_id: Some(client),
            body: &body,
            received_at: api.app.now(),
        },
        api.app.now(),
    )
    .await
    .expect("an inbound message")
    .expect("stored");
    tx.commit().await.expect("commit");
}

/// Opts `client` in to WhatsApp at `number` as Keel (the host recording a consent).
async fn seed_opt_in(api: &Api, client: ClientId, number: &str) {
    keel_app::notifications::opt_in(
        &api.served,
        &system(),
        client,
        "whatsapp",
        &OptInInput {
            number: number.into(),
            source: Some("signed form".into()),
        },
    )
    .await
    .expect("opt-in");
}

/// Everything of one client these routes read or change, as the database holds it.
#[derive(Debug, PartialEq, Eq)]
struct ClientState {
    notifications: Vec<(i64, String, String)>,
    consents: Vec<(String, String, bool, Option<String>, String)>,
    inbound: Vec<(i64, String)>,
    email_on: bool,
    whatsapp_on: bool,
}

async fn state_of(api: &Api, client: ClientId) -> ClientState {
    let db = &api.app.db;
    let mut tx = db.begin().await.expect("begin");
    let email_on = store::channel_enabled(&mut tx, client, "email")
        .await
        .unwrap();
    let whatsapp_on = store::channel_enabled(&mut tx, client, "whatsapp")
        .await
        .unwrap();
    tx.commit().await.expect("commit");
    ClientState {
        notifications: store::of_client(db, client, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.id, n.subject, n.state.as_str().to_owned()))
            .collect(),
        consents: store::consents_of(db, client)
            .await
            .unwrap()
            .into_iter()
            .map(|c| {
                let active = c.active();
                (
                    c.channel,
                    c.address,
                    active,
                    c.opted_out_at.map(|t| t.to_rfc3339()),
                    c.opt_in_source,
                )
            })
            .collect(),
        inbound: store::inbound_of_client(db, client, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.body))
            .collect(),
        email_on,
        whatsapp_on,
    }
}

/// Every request these routes take, each aimed at `client` with `key`.
async fn every_route(api: &Api, client: ClientId, key: &str) -> Vec<(&'static str, Reply)> {
    vec![
        (
            "GET notifications",
            api.get(&path(client, "notifications"), key).await,
        ),
        (
            "PUT notification-channels/email",
            set_channel(api, client, "email", key, false).await,
        ),
        (
            "PUT notification-channels/whatsapp",
            set_channel(api, client, "whatsapp", key, false).await,
        ),
        (
            "GET consents",
            api.get(&path(client, "consents"), key).await,
        ),
        (
            "PUT consents/whatsapp",
            opt_in(api, client, key, &number("+263 77 999 0000")).await,
        ),
        ("DELETE consents/whatsapp", opt_out(api, client, key).await),
        (
            "GET inbound-messages",
            api.get(&path(client, "inbound-messages"), key).await,
        ),
    ]
}

/// Every route on another tenant's client: 404 `not_found`, the same answer as for a
/// client that does not exist, naming nothing of it; and nothing changed.
async fn assert_hidden(api: &Api, victim: ClientId, key: &str) {
    let before = state_of(api, victim).await;
    let snapshot = api.snapshot().await;
    for (what, reply) in every_route(api, victim, key).await {
        reply.assert_error(404, "not_found", None);
        assert!(
            !reply.text.contains("wamid") && !reply.text.contains("+263"),
            "{what}: {}",
            reply.text
        );
    }
    assert_eq!(
        state_of(api, victim).await,
        before,
        "nothing of the victim changed"
    );
    assert_eq!(api.snapshot().await, snapshot, "no audit row either");
}

/// The audit rows of `action` about `client`.
async fn audited(api: &Api, action: &str, client: ClientId) -> Vec<Value> {
    api.all_items("/api/v1/audit")
        .await
        .into_iter()
        .filter(|r| r["action"] == action && r["subject_id"] == client.to_string())
        .collect()
}

keel_testkit::store_test!(
    async fn a_client_key_reads_and_changes_its_own_notifications_channels_and_consents(t) {
        let api = start(t).await;
        let me = api.seed_client("tendai@example.co.zw").await.id;
        let key = client_key(&api.app, me).await;
        seed_messages(&api, me, "tendai").await;

        let listed = api.get(&path(me, "notifications"), &key).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        let items = listed.body.as_array().expect("a list");
        assert_eq!(items.len(), 1, "{}", listed.text);
        assert_eq!(
            (&items[0]["channel"], &items[0]["recipient"], &items[0]["state"], &items[0]["subject"]),
            (&json!("email"), &json!("tendai@example.com"), &json!("pending"), &json!("Invoice for tendai"))
        );
        assert!(items[0]["delivery"].is_null() && items[0]["provider_id"].is_null());

        let inbound = api.get(&path(me, "inbound-messages"), &key).await;
        assert_eq!(inbound.status, 200, "{}", inbound.text);
        assert_eq!(inbound.body[0]["body"], "Hello from tendai", "{}", inbound.text);
        assert_eq!(inbound.body[0]["channel"], "whatsapp");
        assert_eq!(inbound.body[0]["provider_id"], "wamid.tendai");

        let none = api.get(&path(me, "consents"), &key).await;
        assert_eq!((none.status, &none.body), (200, &json!([])), "{}", none.text);

        // Turning email off.
        let off = set_channel(&api, me, "email", &key, false).await;
        assert_eq!(off.status, 204, "{}", off.text);
        assert!(!state_of(&api, me).await.email_on);
        let on = set_channel(&api, me, "email", &key, true).await;
        assert_eq!(on.status, 204, "{}", on.text);
        assert!(state_of(&api, me).await.email_on);
        let wa_off = set_channel(&api, me, "whatsapp", &key, false).await;
        assert_eq!(wa_off.status, 204, "{}", wa_off.text);
        assert!(!state_of(&api, me).await.whatsapp_on);

        // Opting in, separators dropped.
        let opted = opt_in(&api, me, &key, &number("+263 77-123 4567")).await;
        assert_eq!(opted.status, 200, "{}", opted.text);
        assert_eq!(
            (&opted.body["channel"], &opted.body["address"], &opted.body["active"]),
            (&json!("whatsapp"), &json!("+263771234567"), &json!(true)),
            "{}",
            opted.text
        );
        let source = opted.body["opt_in_source"].as_str().unwrap();
        assert!(
            source.contains(&format!("client {me} key")) && source.ends_with("checkout checkbox"),
            "the opt-in names who recorded it and how: {source}"
        );
        assert!(opted.body["opted_out_at"].is_null());
        let consents = api.get(&path(me, "consents"), &key).await;
        assert_eq!(consents.body.as_array().map(Vec::len), Some(1), "{}", consents.text);
        assert_eq!(consents.body[0], opted.body);

        // Opting out.
        let out = opt_out(&api, me, &key).await;
        assert_eq!(out.status, 200, "{}", out.text);
        assert_eq!(out.body["active"], false, "{}", out.text);
        assert!(out.body["opted_out_at"].is_string(), "{}", out.text);
        assert!(
            out.body["opt_out_source"].as_str().unwrap().contains(&format!("client {me} key")),
            "{}",
            out.text
        );
        assert_eq!(out.body["address"], "+263771234567");

        // Each change is in the audit log with the key that made it.
        for (action, n) in [
            ("notification.channel", 3),
            ("notification.opt_in", 1),
            ("notification.opt_out", 1),
        ] {
            let rows = audited(&api, action, me).await;
            assert_eq!(rows.len(), n, "{action}: {rows:#?}");
            for row in rows {
                assert_eq!(row["actor_kind"], "api_key", "{row:#}");
                assert!(
                    row["actor_label"].as_str().unwrap().starts_with(&format!("client {me} key")),
                    "{row:#}"
                );
                assert_eq!(row["subject_kind"], "client", "{row:#}");
            }
        }
        let opt_in_row = &audited(&api, "notification.opt_in", me).await[0];
        assert!(
            opt_in_row["summary"].to_string().contains("+263771234567"),
            "the opt-in row keeps the number: {opt_in_row:#}"
        );
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_client_key_on_another_client_is_404_and_changes_nothing(t) {
        let api = start(t).await;
        let me = api.seed_client("attacker@example.com").await.id;
        let key = client_key(&api.app, me).await;
        let victim = api.seed_client("victim@example.com").await.id;
        seed_messages(&api, victim, "victim").await;
        seed_opt_in(&api, victim, "+263771234567").await;
        let before = state_of(&api, victim).await;
        assert_eq!(before.consents.len(), 1);
        assert!(before.email_on && before.whatsapp_on);

        assert_hidden(&api, victim, &key).await;
        // A client that does not exist answers the same.
        for (what, reply) in every_route(&api, ClientId(victim.get() + 1000), &key).await {
            assert_eq!((reply.status, reply.code()), (404, "not_found"), "{what}: {}", reply.text);
        }
        // The victim's consent is still active at its number.
        let consent = &state_of(&api, victim).await.consents[0];
        assert_eq!((consent.1.as_str(), consent.2), ("+263771234567", true));
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_reseller_key_works_on_its_own_client_and_is_404_on_another_resellers(t) {
        let api = start(t).await;
        let mine = api.seed_reseller_client(api.reseller, "mine@example.com").await.id;
        let (other, _) = reseller(&api.app, "Kariba Hosting").await;
        let theirs = api.seed_reseller_client(other, "theirs@example.com").await.id;
        let hosts = api.seed_client("host@example.com").await.id;
        for c in [theirs, hosts] {
            seed_messages(&api, c, &format!("c{c}")).await;
            seed_opt_in(&api, c, "+263772000000").await;
        }
        seed_messages(&api, mine, "mine").await;

        let key = api.reseller_key.clone();
        let listed = api.get(&path(mine, "notifications"), &key).await;
        assert_eq!((listed.status, listed.body.as_array().map(Vec::len)), (200, Some(1)), "{}", listed.text);
        let inbound = api.get(&path(mine, "inbound-messages"), &key).await;
        assert_eq!((inbound.status, inbound.body.as_array().map(Vec::len)), (200, Some(1)), "{}", inbound.text);
        let off = set_channel(&api, mine, "email", &key, false).await;
        assert_eq!(off.status, 204, "{}", off.text);
        let opted = opt_in(&api, mine, &key, &number("+263773000000")).await;
        assert_eq!((opted.status, &opted.body["active"]), (200, &json!(true)), "{}", opted.text);
        assert!(
            opted.body["opt_in_source"].as_str().unwrap().contains("Victoria Falls Resellers key"),
            "{}",
            opted.text
        );
        let consents = api.get(&path(mine, "consents"), &key).await;
        assert_eq!(consents.body.as_array().map(Vec::len), Some(1), "{}", consents.text);
        let out = opt_out(&api, mine, &key).await;
        assert_eq!((out.status, &out.body["active"]), (200, &json!(false)), "{}", out.text);
        let after = state_of(&api, mine).await;
        assert!(!after.email_on);
        assert_eq!(after.consents.len(), 1);
        assert_eq!(audited(&api, "notification.opt_in", mine).await.len(), 1);
        assert_eq!(audited(&api, "notification.opt_out", mine).await.len(), 1);

        // Another reseller's client, and the host's own: as if they did not exist.
        assert_hidden(&api, theirs, &key).await;
        assert_hidden(&api, hosts, &key).await;
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn every_staff_role_may_manage_a_clients_channels_and_a_deactivated_ones_key_nothing(t) {
        // Admin, billing and support all hold clients:read, clients:write and order, which
        // these routes need (support is "clients, read-mostly" but does write clients), so
        // no staff role is refused here: each works. A key whose staff user was deactivated
        // is refused before any route, and changes nothing.
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        seed_messages(&api, c, "client").await;
        let mut keys = Vec::new();
        for role in ["admin", "billing", "support"] {
            let staff = api
                .post(
                    "/api/v1/staff",
                    &api.admin,
                    &json!({ "email": format!("{role}@keel.example"), "name": role, "password": "correct horse battery", "role": role }),
                    None,
                )
                .await;
            assert_eq!(staff.status, 201, "{}", staff.text);
            let made = api
                .post(
                    "/api/v1/api-keys",
                    &api.admin,
                    &json!({ "name": format!("{role} key"), "scope": "admin", "staff_id": staff.id() }),
                    None,
                )
                .await;
            assert_eq!(made.status, 201, "{}", made.text);
            keys.push((role, staff.id(), made.body["secret"].as_str().unwrap().to_owned()));
        }
        for (role, _, key) in &keys {
            for (what, reply) in every_route(&api, c, key).await {
                let expected = if what.starts_with("PUT notification-channels") { 204 } else { 200 };
                assert_eq!(reply.status, expected, "{role}: {what}: {}", reply.text);
            }
        }
        let rows = audited(&api, "notification.opt_in", c).await;
        assert_eq!(rows.len(), 3, "one opt-in per role: {rows:#?}");
        for (role, _, _) in &keys {
            assert!(
                rows.iter().any(|r| r["actor_label"].as_str().unwrap().starts_with(&format!("{role} key"))),
                "{role}'s opt-in is audited as its key: {rows:#?}"
            );
        }

        // Support deactivated: its key acts for nobody.
        let (_, support, support_key) = keys.pop().unwrap();
        let off = api
            .send(api.authed(Method::PATCH, &format!("/api/v1/staff/{support}"), &api.admin).json(&json!({ "active": false })))
            .await;
        assert_eq!(off.status, 200, "{}", off.text);
        opt_in(&api, c, &api.admin, &number("+263774000000")).await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        for (what, reply) in every_route(&api, c, &support_key).await {
            assert_eq!((reply.status, reply.code()), (401, "staff_inactive"), "{what}: {}", reply.text);
        }
        assert_eq!(state_of(&api, c).await, before);
        assert_eq!(api.snapshot().await, snapshot);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_number_that_is_not_e164_is_422_invalid_phone_and_writes_no_consent(t) {
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        let key = client_key(&api.app, c).await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        for bad in ["0771234567", "", "+", "+0771234567", "+26377123456789012", "+263 77 abc 4567", "263+771234567"] {
            for k in [&key, &api.admin] {
                opt_in(&api, c, k, &number(bad)).await.assert_error(422, "invalid_phone", Some("number"));
            }
        }
        assert_eq!(state_of(&api, c).await, before, "no consent written");
        assert_eq!(api.snapshot().await, snapshot, "no audit row");

        // An opt-in already recorded keeps its number when a bad one is sent.
        seed_opt_in(&api, c, "+263771234567").await;
        let before = state_of(&api, c).await;
        opt_in(&api, c, &key, &number("07712")).await.assert_error(422, "invalid_phone", Some("number"));
        assert_eq!(state_of(&api, c).await, before);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn an_unknown_channel_is_422_unknown_channel_and_changes_nothing(t) {
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        let key = client_key(&api.app, c).await;
        seed_opt_in(&api, c, "+263771234567").await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        for k in [&key, &api.admin] {
            for channel in ["sms", "WhatsApp", "whatsapp2", "e-mail"] {
                set_channel(&api, c, channel, k, false).await.assert_error(422, "unknown_channel", Some("channel"));
            }
            // Email is a channel to turn off, not one to opt in to with a number.
            for channel in ["sms", "email", "WhatsApp"] {
                let p = path(c, &format!("consents/{channel}"));
                put(&api, &p, k, &number("+263771234567")).await.assert_error(422, "unknown_channel", Some("channel"));
                api.delete(&p, k).await.assert_error(422, "unknown_channel", Some("channel"));
            }
        }
        assert_eq!(state_of(&api, c).await, before);
        assert_eq!(api.snapshot().await, snapshot);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_source_with_a_control_character_or_too_long_is_422_and_writes_nothing(t) {
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        let key = client_key(&api.app, c).await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        let cases = [
            ("checkout\u{7}checkbox".to_owned(), "control_character"),
            ("checkout\u{1b}[2Jcheckbox".to_owned(), "control_character"),
            ("checkout\u{202E}xobkcehc".to_owned(), "bidi_control"),
            ("x".repeat(501), "too_long"),
            // Refused by the guard every body passes, before the use case.
            ("a\u{0}b".to_owned(), "nul_character"),
        ];
        for (source, problem) in &cases {
            let body = json!({ "number": "+263771234567", "source": source });
            let reply = opt_in(&api, c, &key, &body).await;
            reply.assert_error(422, "invalid_text", Some("source"));
            assert_eq!(reply.body["error"]["details"]["problem"], *problem, "{}", reply.text);
        }
        assert_eq!(state_of(&api, c).await, before, "no consent written");
        assert_eq!(api.snapshot().await, snapshot, "no audit row");

        // 500 characters is the limit, and line breaks are free text's.
        let longest = opt_in(&api, c, &key, &json!({ "number": "+263771234567", "source": "y".repeat(500) })).await;
        assert_eq!(longest.status, 200, "{}", longest.text);
        let lines = opt_in(&api, c, &key, &json!({ "number": "+263771234567", "source": "asked on the phone\nby Rudo" })).await;
        assert_eq!(lines.status, 200, "{}", lines.text);
        // No source: recorded as such.
        let bare = opt_in(&api, c, &key, &json!({ "number": "+263771234567" })).await;
        assert_eq!(bare.status, 200, "{}", bare.text);
        assert!(bare.body["opt_in_source"].as_str().unwrap().ends_with("no detail given"), "{}", bare.text);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn bodies_of_the_wrong_shape_are_refused_and_change_nothing(t) {
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        let key = client_key(&api.app, c).await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        let channel = path(c, "notification-channels/email");
        let consent = path(c, "consents/whatsapp");
        let cases = [
            (&channel, json!({ "enabled": "no" }), "wrong_type"),
            (&channel, json!({}), "missing_field"),
            (&channel, json!({ "enabled": false, "channel": "sms" }), "unknown_field"),
            (&consent, json!({ "source": "form" }), "missing_field"),
            (&consent, json!({ "number": 263771234567_i64 }), "wrong_type"),
            (&consent, json!({ "number": "+263771234567", "active": true }), "unknown_field"),
        ];
        for (p, body, code) in cases {
            let reply = put(&api, p, &key, &body).await;
            assert_eq!((reply.status, reply.code()), (422, code), "{p} {body}: {}", reply.text);
        }
        assert_eq!(state_of(&api, c).await, before);
        assert_eq!(api.snapshot().await, snapshot);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn opting_out_without_an_opt_in_is_404_and_a_second_opt_out_changes_nothing(t) {
        let api = start(t).await;
        let c = api.seed_client("client@example.com").await.id;
        let key = client_key(&api.app, c).await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        for k in [&key, &api.admin] {
            opt_out(&api, c, k).await.assert_error(404, "not_found", None);
        }
        assert_eq!(state_of(&api, c).await, before, "no consent written");
        assert_eq!(api.snapshot().await, snapshot, "no audit row");

        seed_opt_in(&api, c, "+263771234567").await;
        let first = opt_out(&api, c, &key).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let after = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        // Again, by another actor: the first opt-out stays as it was, with no new row.
        let again = opt_out(&api, c, &api.admin).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.body, first.body);
        assert_eq!(state_of(&api, c).await, after);
        assert_eq!(api.snapshot().await, snapshot);
        assert_eq!(audited(&api, "notification.opt_out", c).await.len(), 1);

        // Opting in again clears the opt-out.
        let back = opt_in(&api, c, &key, &number("+263771234567")).await;
        assert_eq!((back.status, &back.body["active"]), (200, &json!(true)), "{}", back.text);
        assert!(back.body["opted_out_at"].is_null(), "{}", back.text);
        api.stop().await;
    }
);

// ---------------------------------------------------------------------------------------
// The provider hook
// ---------------------------------------------------------------------------------------

/// A notifier that refuses every webhook (as a plugin refuses one with no valid
/// signature), keeping the headers it was handed.
#[derive(Default)]
struct Refusing {
    seen: Mutex<Vec<Vec<(String, String)>>>,
}

impl Notifier for Refusing {
    fn describe(&self) -> BoxFuture<'_, Result<PluginInfo, PluginFailure>> {
        Box::pin(async { Err(PluginFailure::Host("a test notifier".into())) })
    }

    fn send(&self, _: Message) -> BoxFuture<'_, Result<Receipt, PluginFailure>> {
        Box::pin(async { Err(PluginFailure::Host("a test notifier sends nothing".into())) })
    }

    fn verify_inbound(&self, req: InboundRequest) -> BoxFuture<'_, Result<Inbound, PluginFailure>> {
        self.seen.lock().unwrap().push(req.headers);
        Box::pin(async {
            Err(PluginFailure::Plugin(PluginError::Refused(
                "no valid X-Hub-Signature-256".into(),
            )))
        })
    }
}

keel_testkit::store_test!(
    async fn the_hook_of_a_plugin_that_serves_no_channel_is_404(t) {
        // `whatsapp` is a configured channel, but no plugin is enabled behind it.
        let api = start(t).await;
        let snapshot = api.snapshot().await;
        for plugin in ["nosuch", "whatsapp", "email"] {
            let hook = format!("/hooks/notifier/{plugin}");
            let posted = api.send(api.request(Method::POST, &hook).body("{}")).await;
            posted.assert_error(404, "not_found", None);
            let checked = api
                .send(api.request(Method::GET, &format!("{hook}?hub.mode=subscribe&hub.challenge=1")))
                .await;
            checked.assert_error(404, "not_found", None);
        }
        assert_eq!(api.snapshot().await, snapshot);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_hook_body_over_256_kib_is_413(t) {
        let api = start(t).await;
        let hook = "/hooks/notifier/nosuch";
        let over = api
            .send(api.request(Method::POST, hook).body(vec![b'a'; MAX_WEBHOOK_BYTES + 1]))
            .await;
        over.assert_error(413, "payload_too_large", None);
        // At the limit the body is read, and the plugin is looked for.
        let at = api
            .send(api.request(Method::POST, hook).body(vec![b'a'; MAX_WEBHOOK_BYTES]))
            .await;
        at.assert_error(404, "not_found", None);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_keel_key_on_the_hook_grants_nothing_and_never_reaches_the_plugin(t) {
        let refusing = Arc::new(Refusing::default());
        let mut notifiers = Notifiers::default();
        notifiers.add("whatsapp", refusing.clone());
        let served = App::new(t.db.clone())
            .with_notifications(whatsapp())
            .with_notifiers(notifiers);
        let api = Api::start_serving(t, ApiConfig::default(), served).await;
        let c = api.seed_client("client@example.com").await.id;
        seed_opt_in(&api, c, "+263771234567").await;
        let before = state_of(&api, c).await;
        let snapshot = api.snapshot().await;
        let stop = json!({ "entry": [{ "changes": [{ "value": { "messages": [{ "from": "263771234567", "id": "wamid.1", "type": "text", "text": { "body": "STOP" } }] } }] }] });
        let hook = "/hooks/notifier/whatsapp";

        let anonymous = api.send(api.request(Method::POST, hook).json(&stop)).await;
        anonymous.assert_error(403, "webhook_refused", None);
        // The admin's key, as a bearer token and as a cookie: the same refusal.
        let with_key = api
            .send(
                api.request(Method::POST, hook)
                    .bearer_auth(&api.admin)
                    .header("cookie", format!("keel_session={}", api.admin))
                    .json(&stop),
            )
            .await;
        with_key.assert_error(403, "webhook_refused", None);
        let checked = api
            .send(
                api.request(Method::GET, &format!("{hook}?hub.mode=subscribe&hub.verify_token=x&hub.challenge=42"))
                    .bearer_auth(&api.admin),
            )
            .await;
        checked.assert_error(403, "webhook_refused", None);
        // An unknown plugin stays unknown to a key.
        api.send(api.request(Method::POST, "/hooks/notifier/nosuch").bearer_auth(&api.admin).json(&stop))
            .await
            .assert_error(404, "not_found", None);

        let seen = refusing.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "the plugin was asked each time");
        for headers in &seen {
            assert!(
                headers.iter().all(|(name, value)| {
                    let name = name.to_ascii_lowercase();
                    name != "authorization" && name != "cookie" && !value.contains(&api.admin)
                }),
                "a Keel credential reached the plugin: {headers:?}"
            );
        }
        assert_eq!(state_of(&api, c).await, before, "the STOP changed nothing");
        assert_eq!(api.snapshot().await, snapshot);
        api.stop().await;
    }
);
