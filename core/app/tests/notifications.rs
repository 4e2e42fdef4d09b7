//! Notifications on both engines: dunning and payments queue rendered messages in their
//! transaction; jobs send them over real SMTP to the test kit's loopback sink (text and HTML
//! parts, the invoice PDF attached), once, retrying while the server is down; a client who
//! turned email off gets nothing; the theme folder and the client's language choose the text.

use chrono::{NaiveDate, TimeZone, Utc};
use keel_app::billing_run::{self, RunOptions};
use keel_app::invoices;
use keel_app::notifications;
use keel_app::notify::{self, Settings};
use keel_app::payments::{self, ManualMethod, PaymentInput};
use keel_app::{App, AppError, Clock, Ctx, FixedClock, dunning};
use keel_domain::ids::{ClientId, InvoiceId};
use keel_jobs::{Worker, WorkerConfig};
use keel_store::dunning as dunning_store;
use keel_store::notifications as store;
use keel_testkit::scenario::book::{self, BookOptions};
use keel_testkit::smtp::SmtpSink;
use keel_testkit::store_test;
use serde_json::json;
use std::sync::Arc;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ten_am(day: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(10, 0, 0).unwrap())
}

fn worker(app: &App) -> Worker {
    let clock = app.clock.clone();
    Worker::new(
        app.db.clone(),
        Arc::new(app.clone()),
        WorkerConfig::new("default", "notify-test"),
        Arc::new(move || clock.now()),
    )
}

async fn drain(w: &Worker) {
    let stop = tokio::sync::watch::channel(false).1;
    while w.tick(&stop).await.unwrap().claimed > 0 {}
}

/// One client, one invoice due 2027-03-01 issued on 2027-02-20, email to `sink`.
async fn world(
    t: &keel_testkit::TestDb,
    sink: Option<&SmtpSink>,
) -> (App, Arc<FixedClock>, ClientId, InvoiceId) {
    let clock = Arc::new(FixedClock::new(ten_am(d("2027-02-20"))));
    let app = App::with_clock(t.db.clone(), clock.clone()).with_notifications(Settings {
        smtp_url: sink.map(SmtpSink::url),
        from: "Keel Billing <billing@keel.test>".into(),
        theme_dir: None,
        ..Default::default()
    });
    book::seed_book(
        &app,
        &BookOptions {
            services: 2,
            seed: 9,
            due_on: d("2027-03-01"),
            services_per_client: (2, 2),
            wallet_percent: 0,
        },
    )
    .await
    .unwrap();
    let ctx = Ctx::system("test");
    billing_run::run(
        &app,
        &ctx,
        &RunOptions {
            as_of: d("2027-02-20"),
            dry_run: false,
        },
        &|_| {},
    )
    .await
    .unwrap();
    let open = dunning_store::open_invoices(&app.db, d("2099-01-01"), 0, 10)
        .await
        .unwrap();
    assert_eq!(
        open.len(),
        1,
        "the client's two services share one renewal invoice"
    );
    // The run's batch job queues the "invoice created" message (sent when there is a
    // server, else recorded as skipped).
    let client = ClientId(open[0].client_id);
    drain(&worker(&app)).await;
    let queued = store::of_client(&app.db, client, 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].event.as_str(), queued[0].invoice_id),
        ("invoice_created", Some(open[0].id))
    );
    if let Some(sink) = sink {
        let got = sink.take();
        assert_eq!(got.len(), 1, "{got:?}");
        let subject = got[0].header("Subject").unwrap();
        assert!(subject.starts_with("Invoice INV-"), "{subject}");
        assert!(got[0].data.contains("application/pdf"));
    }
    (app, clock, client, InvoiceId(open[0].id))
}

async fn remind(app: &App, clock: &FixedClock) {
    clock.set(ten_am(d("2027-02-22")));
    dunning::run(app, &Ctx::system("test"), d("2027-02-22"))
        .await
        .unwrap();
}

store_test!(
    async fn a_reminder_and_a_receipt_reach_the_smtp_sink_once_with_the_pdf(t) {
        let sink = SmtpSink::start().await;
        let (app, clock, client, invoice) = world(t, Some(&sink)).await;
        let w = worker(&app);
        remind(&app, &clock).await;
        drain(&w).await;

        let got = sink.messages();
        assert_eq!(got.len(), 1, "{got:?}");
        let m = &got[0];
        let email = keel_app::clients::get_client(&app, &Ctx::system("t"), client).await.unwrap().email;
        assert_eq!((m.from.as_str(), m.to.clone()), ("billing@keel.test", vec![email.to_string()]));
        let subject = m.header("Subject").unwrap();
        assert!(subject.starts_with("Reminder: invoice INV-") && subject.ends_with("is due on 2027-03-01"), "{subject}");
        for part in ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf", ".pdf"] {
            assert!(m.data.contains(part), "{part} in:\n{}", m.data);
        }
        let sent = store::of_client(&app.db, client, 10).await.unwrap();
        assert_eq!((sent[0].event.as_str(), sent[0].state.as_str(), sent[0].attempts), ("payment_reminder", "sent", 1));

        // A second job for the same notification (a retry after a lost lease) sends nothing.
        let mut tx = app.db.begin().await.unwrap();
        keel_store::jobs::enqueue(&mut tx, &keel_store::jobs::NewJob::new(notify::SEND, json!({ "notification": sent[0].id }), clock.now()), clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        drain(&w).await;
        // The same day's run again queues nothing new.
        remind(&app, &clock).await;
        drain(&w).await;
        assert_eq!(sink.messages().len(), 1);

        // Paid: the receipt.
        let inv = invoices::get(&app, &Ctx::system("t"), invoice).await.unwrap();
        payments::record_payment(&app, &Ctx::system("t"), invoice, &PaymentInput {
            amount: inv.balance_due.amount.clone(), method: ManualMethod::BankTransfer, reference: "BT-9".into(), received_on: None, note: None,
        }).await.unwrap();
        drain(&w).await;
        let got = sink.messages();
        assert_eq!(got.len(), 2);
        assert!(got[1].header("Subject").unwrap().starts_with("Payment received for invoice INV-"), "{:?}", got[1].header("Subject"));
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

store_test!(
    async fn a_server_that_is_down_gets_the_message_once_it_is_back(t) {
        let sink = SmtpSink::start().await;
        let (app, clock, client, _) = world(t, Some(&sink)).await;
        let w = worker(&app);
        sink.set_down(true);
        remind(&app, &clock).await;
        drain(&w).await;
        let pending = store::of_client(&app.db, client, 10).await.unwrap();
        assert_eq!((pending[0].state.as_str(), pending[0].attempts), ("pending", 1));
        assert!(pending[0].last_error.as_deref().unwrap_or_default().contains("SMTP"), "{:?}", pending[0].last_error);
        assert!(sink.messages().is_empty());

        // An hour later the server is back; the retry (backoff well under an hour) sends it.
        sink.set_down(false);
        clock.set(clock_now(&app) + chrono::Duration::hours(1));
        drain(&w).await;
        assert_eq!(sink.messages().len(), 1);
        let sent = store::of_client(&app.db, client, 10).await.unwrap();
        assert_eq!((sent[0].state.as_str(), sent[0].attempts), ("sent", 2));
    }
);

fn clock_now(app: &App) -> chrono::DateTime<Utc> {
    app.clock.now()
}

store_test!(
    async fn a_client_who_turned_email_off_gets_nothing_and_no_server_means_skipped(t) {
        let sink = SmtpSink::start().await;
        let (app, clock, client, _) = world(t, Some(&sink)).await;
        let ctx = Ctx::system("staff");
        notifications::set_channel(&app, &ctx, client, "email", false).await.unwrap();
        let err = notifications::set_channel(&app, &ctx, client, "pigeon", false).await.unwrap_err();
        assert!(matches!(err, AppError::Invalid { code: "unknown_channel", .. }), "{err:?}");
        remind(&app, &clock).await;
        drain(&worker(&app)).await;
        assert!(sink.messages().is_empty());
        let n = store::of_client(&app.db, client, 10).await.unwrap();
        assert_eq!((n[0].state.as_str(), n[0].last_error.as_deref()), ("skipped", Some("the client turned email notifications off")));

        // No SMTP server configured: recorded as skipped, with the reason.
        let bare = app.clone().with_notifications(Settings::default());
        clock.set(ten_am(d("2027-03-02")));
        notifications::set_channel(&bare, &ctx, client, "email", true).await.unwrap();
        dunning::run(&bare, &ctx, d("2027-03-02")).await.unwrap();
        drain(&worker(&bare)).await;
        let n = store::of_client(&app.db, client, 10).await.unwrap();
        assert_eq!((n[0].event.as_str(), n[0].state.as_str(), n[0].last_error.as_deref()), ("invoice_overdue", "skipped", Some("email is not configured ([email] smtp_url)")));
    }
);

store_test!(
    async fn every_invoice_of_three_billing_runs_is_announced_once(t) {
        let sink = SmtpSink::start().await;
        let clock = Arc::new(FixedClock::new(ten_am(d("2027-01-10"))));
        let app = App::with_clock(t.db.clone(), clock.clone()).with_notifications(Settings {
            smtp_url: Some(sink.url()),
            from: "billing@keel.test".into(),
            theme_dir: None,
            ..Default::default()
        });
        // One client in two has wallet credit: the run pays some renewals from it.
        book::seed_book(&app, &BookOptions { services: 40, seed: 3, due_on: d("2027-01-15"), services_per_client: (1, 3), wallet_percent: 50 })
            .await
            .unwrap();
        let ctx = Ctx::system("test");
        let w = worker(&app);
        for day in ["2027-01-10", "2027-02-10", "2027-03-10"] {
            clock.set(ten_am(d(day)));
            billing_run::run(&app, &ctx, &RunOptions { as_of: d(day), dry_run: false }, &|_| {}).await.unwrap();
            // The same day's run again issues nothing and queues nothing.
            billing_run::run(&app, &ctx, &RunOptions { as_of: d(day), dry_run: false }, &|_| {}).await.unwrap();
            drain(&w).await;
        }
        let all = keel_store::invoices::list_invoices(&app.db, keel_domain::tenancy::Scope::Host, &Default::default(), None, 1000)
            .await
            .unwrap()
            .items;
        assert!(all.len() >= 3 * 15, "three months of renewals: {}", all.len());
        let paid: Vec<_> = all.iter().filter(|i| i.status == keel_domain::lifecycle::InvoiceStatus::Paid).collect();
        assert!(!paid.is_empty() && paid.len() < all.len(), "some renewals paid from wallets: {} of {}", paid.len(), all.len());

        // Each invoice announced once, each wallet-paid one receipted once, nothing else.
        let subjects = |prefix: &str| {
            let mut s: Vec<String> = sink.messages().iter().filter_map(|m| m.header("Subject")).filter(|s| s.starts_with(prefix)).collect();
            s.sort();
            s
        };
        let mut want: Vec<String> = all.iter().map(|i| format!("Invoice {}", i.number.clone().unwrap())).collect();
        want.sort();
        let announced: Vec<String> = subjects("Invoice ").iter().map(|s| s.split(" from ").next().unwrap().to_string()).collect();
        assert_eq!(announced, want);
        assert_eq!(subjects("Payment received").len(), paid.len());
        assert_eq!(sink.messages().len(), all.len() + paid.len());

        // The batch jobs again (a worker that died after queueing, before recording): the
        // causes are taken, nothing new is queued or sent.
        let ids: Vec<InvoiceId> = all.iter().map(|i| i.id).collect();
        assert_eq!(notifications::queue_issued(&app, &ids).await.unwrap(), 0);
        let mut tx = app.db.begin().await.unwrap();
        keel_store::jobs::enqueue(&mut tx, &notify::issued_job(&ids, clock.now()), clock.now()).await.unwrap();
        tx.commit().await.unwrap();
        drain(&w).await;
        assert_eq!(sink.messages().len(), all.len() + paid.len());
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

#[test]
fn the_theme_and_the_language_choose_the_template_and_html_is_escaped() {
    let theme = tempfile::tempdir().unwrap();
    let write = |lang: &str, event: &str, text: &str| {
        let dir = theme.path().join("notifications").join(lang);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{event}.jinja")), text).unwrap();
    };
    write(
        "sn",
        "payment_reminder",
        "{% block subject %}Chiyeuchidzo: {{ invoice.number }}{% endblock %}{% block text %}Mhoro {{ client.first_name }}{% endblock %}{% block html %}<p>Mhoro {{ client.first_name }}</p>{% endblock %}",
    );
    write(
        "en",
        "invoice_overdue",
        "{% block subject %}Late: {{ invoice.number }}{% endblock %}{% block text %}t{% endblock %}{% block html %}h{% endblock %}",
    );
    write(
        "en",
        "late_fee",
        "{% block subject %}{{ invoice.number }{% endblock %}",
    );
    let settings = Settings {
        theme_dir: Some(theme.path().to_path_buf()),
        ..Settings::default()
    };
    let ctx = json!({ "invoice": { "number": "INV-1", "currency": "USD", "balance": "5.00", "due_date": "2027-03-01" }, "client": { "first_name": "Tom & <Jerry>" }, "seller": "Keel" });

    let sn = notify::render(&settings, "payment_reminder", "SN", &ctx).unwrap();
    assert_eq!(
        (sn.language.as_str(), sn.subject.as_str()),
        ("sn", "Chiyeuchidzo: INV-1")
    );
    assert_eq!(sn.text, "Mhoro Tom & <Jerry>\n", "text is not escaped");
    assert_eq!(sn.html, "<p>Mhoro Tom &amp; &lt;Jerry&gt;</p>", "HTML is");
    // A language the theme lacks: the built-in English.
    let fr = notify::render(&settings, "payment_reminder", "fr", &ctx).unwrap();
    assert_eq!(
        (fr.language.as_str(), fr.subject.as_str()),
        ("en", "Reminder: invoice INV-1 is due on 2027-03-01")
    );
    // The theme's English wins over the built-in one.
    let late = notify::render(&settings, "invoice_overdue", "sn", &ctx).unwrap();
    assert_eq!(late.subject, "Late: INV-1");
    // A broken template is a clear error naming it; so is an unknown event.
    let err = notify::render(&settings, "late_fee", "en", &ctx).unwrap_err();
    assert!(
        matches!(
            &err,
            AppError::Invalid {
                code: "invalid_template",
                ..
            }
        ) && err.to_string().contains("en/late_fee"),
        "{err:?}"
    );
    let err = notify::render(&settings, "birthday", "en", &ctx).unwrap_err();
    assert!(
        matches!(
            err,
            AppError::Invalid {
                code: "unknown_event",
                ..
            }
        ),
        "{err:?}"
    );
    // Every built-in template renders.
    for (event, _) in notify::EVENTS {
        let r = notify::render(&Settings::default(), event, "en", &json!({
            "invoice": { "number": "INV-1", "currency": "USD", "total": "5.00", "balance": "5.00", "due_date": "2027-03-01" },
            "client": { "first_name": "Ann" }, "seller": "Keel", "service": { "label": "Hosting" }, "fee": "USD 5.00", "days": 3, "link": "https://x.test/r",
        })).unwrap();
        assert!(
            !r.subject.is_empty() && r.text.contains("Ann") && r.html.contains("Ann"),
            "{event}: {r:?}"
        );
    }
}

fn whatsapp_channel(templates: &[(&str, &[&str])]) -> notify::PluginChannel {
    notify::PluginChannel {
        plugin: "whatsapp".into(),
        window_hours: Some(24),
        templates: templates
            .iter()
            .map(|(event, params)| {
                (
                    event.to_string(),
                    notify::TemplateMapping {
                        name: format!("keel_{event}"),
                        language: "en".into(),
                        parameters: params.iter().map(|p| p.to_string()).collect(),
                        header: None,
                        buttons: Vec::new(),
                    },
                )
            })
            .collect(),
    }
}

store_test!(
    async fn a_plugin_channel_queues_only_for_clients_who_opted_in_and_skips_the_opted_out(t) {
        let sink = SmtpSink::start().await;
        let (app, clock, client, _) = world(t, Some(&sink)).await;
        let mut settings = (*app.notify).clone();
        settings.channels.insert(
            "whatsapp".into(),
            whatsapp_channel(&[
                ("payment_reminder", &["client.first_name", "invoice.number", "invoice.balance", "invoice.due_date"]),
                ("invoice_overdue", &["invoice.number", "pay_url"]),
            ]),
        );
        let app = app.with_notifications(settings);
        let staff = Ctx::system("staff");
        let w = worker(&app);

        // Never opted in: email only, no WhatsApp row at all.
        remind(&app, &clock).await;
        drain(&w).await;
        let rows = store::of_client(&app.db, client, 10).await.unwrap();
        assert!(rows.iter().all(|n| n.channel == "email"), "{rows:?}");

        // Opted in: the next message is queued for WhatsApp too, with its template's
        // parameters read from the event's context. No notifier plugin is enabled here, so
        // it fails at once, saying so, and email is untouched.
        let bad = notifications::opt_in(&app, &staff, client, "whatsapp", &notifications::OptInInput { number: "0771 234 567".into(), source: None }).await.unwrap_err();
        assert!(matches!(bad, AppError::Invalid { code: "invalid_phone", .. }), "{bad:?}");
        let nope = notifications::opt_in(&app, &staff, client, "sms", &notifications::OptInInput { number: "+263771234567".into(), source: None }).await.unwrap_err();
        assert!(matches!(nope, AppError::Invalid { code: "unknown_channel", .. }), "{nope:?}");
        assert!(notifications::consents(&app, &staff, client).await.unwrap().is_empty(), "refused opt-ins write nothing");
        let consent = notifications::opt_in(&app, &staff, client, "whatsapp", &notifications::OptInInput { number: "+263 77 123 4567".into(), source: Some("checkout checkbox".into()) }).await.unwrap();
        assert_eq!((consent.address.as_str(), consent.active), ("+263771234567", true));
        assert!(consent.opt_in_source.ends_with("checkout checkbox"), "{consent:?}");

        clock.set(ten_am(d("2027-03-02")));
        dunning::run(&app, &staff, d("2027-03-02")).await.unwrap();
        drain(&w).await;
        let rows = store::of_client(&app.db, client, 10).await.unwrap();
        let wa = rows.iter().find(|n| n.channel == "whatsapp").expect("a WhatsApp message");
        assert_eq!((wa.event.as_str(), wa.recipient.as_str()), ("invoice_overdue", "+263771234567"));
        // No gateway is enabled, so the overdue notice has no pay link: its template cannot go.
        let template: notify::QueuedTemplate = serde_json::from_str(wa.template.as_deref().unwrap()).unwrap();
        match template {
            notify::QueuedTemplate::Unavailable { reason } => assert!(reason.contains("pay_url"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!((wa.state.as_str(), wa.attempts), ("failed", 1));
        assert!(wa.last_error.as_deref().unwrap().contains("is not enabled"), "{:?}", wa.last_error);
        let email = rows.iter().find(|n| n.channel == "email" && n.event == "invoice_overdue").unwrap();
        assert_eq!(store::get(&app.db, email.id).await.unwrap().unwrap().state.as_str(), "sent");

        // Opted out: the next message is recorded as skipped, with the opt-out's time and source.
        let out = notifications::opt_out(&app, &staff, client, "whatsapp").await.unwrap();
        assert!(!out.active);
        let cause_rows_before = store::of_client(&app.db, client, 20).await.unwrap().len();
        notify_late_fee_or_next_step(&app, &clock).await;
        drain(&w).await;
        let rows = store::of_client(&app.db, client, 20).await.unwrap();
        assert!(rows.len() > cause_rows_before, "the next dunning step queued something");
        let skipped = rows.iter().find(|n| n.channel == "whatsapp" && n.state.as_str() == "skipped").expect("a skipped WhatsApp row");
        assert!(skipped.last_error.as_deref().unwrap().contains("opted out of whatsapp"), "{:?}", skipped.last_error);
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);

/// Runs dunning a week after the due date: the next step of the default policy.
async fn notify_late_fee_or_next_step(app: &App, clock: &FixedClock) {
    clock.set(ten_am(d("2027-03-08")));
    dunning::run(app, &Ctx::system("test"), d("2027-03-08"))
        .await
        .unwrap();
}

#[test]
fn templates_are_checked_against_the_events_and_their_values() {
    let t = |params: &[&str]| notify::TemplateMapping {
        name: "keel_reminder".into(),
        language: "en".into(),
        parameters: params.iter().map(|p| p.to_string()).collect(),
        header: None,
        buttons: Vec::new(),
    };
    assert_eq!(
        notify::check_template(
            "payment_reminder",
            &t(&["client.first_name", "days", "pay_url"])
        ),
        Ok(())
    );
    let err = notify::check_template("payment_reminded", &t(&[])).unwrap_err();
    assert!(err.contains("not an event"), "{err}");
    let err = notify::check_template("password_reset", &t(&[])).unwrap_err();
    assert!(err.contains("not an event"), "{err}");
    let err =
        notify::check_template("payment_received", &t(&["invoice.number", "days"])).unwrap_err();
    assert!(err.starts_with("parameters[1]: \"days\""), "{err}");
    let err = notify::check_template(
        "service_suspended",
        &t(&["service.label", "client.password"]),
    )
    .unwrap_err();
    assert!(err.contains("client.password"), "{err}");
    let blank = notify::TemplateMapping {
        name: " ".into(),
        ..t(&[])
    };
    assert!(
        notify::check_template("late_fee", &blank)
            .unwrap_err()
            .starts_with("name:")
    );

    // Values are read from the context by path; numbers are written out; a missing or
    // empty one makes the template unavailable, naming it.
    let channel = whatsapp_channel(&[(
        "payment_reminder",
        &["client.first_name", "days", "invoice.number"],
    )]);
    let ctx = json!({ "client": { "first_name": "Tendai" }, "days": 3, "invoice": { "number": "INV-7" } });
    assert_eq!(
        notify::template_for(&channel, "payment_reminder", &ctx, true),
        notify::QueuedTemplate::Ready {
            name: "keel_payment_reminder".into(),
            language: "en".into(),
            parameters: vec!["Tendai".into(), "3".into(), "INV-7".into()],
            header: None,
            buttons: Vec::new(),
        }
    );
    let no_number =
        json!({ "client": { "first_name": "Tendai" }, "days": 3, "invoice": { "number": null } });
    match notify::template_for(&channel, "payment_reminder", &no_number, true) {
        notify::QueuedTemplate::Unavailable { reason } => {
            assert!(reason.contains("invoice.number"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match notify::template_for(&channel, "late_fee", &ctx, true) {
        notify::QueuedTemplate::Unavailable { reason } => {
            assert!(reason.contains("no approved template"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn template_headers_and_buttons_are_checked_and_rendered() {
    use notify::{ButtonKind, ButtonMapping, HeaderMapping, QueuedButton, QueuedHeader};
    let button = |index: u8, kind: ButtonKind, parameter: &str| ButtonMapping {
        index,
        kind,
        parameter: parameter.into(),
    };
    let with =
        |header: Option<HeaderMapping>, buttons: Vec<ButtonMapping>| notify::TemplateMapping {
            header,
            buttons,
            ..notify::TemplateMapping::body("keel_invoice", "en", &["invoice.number"])
        };
    let invoice_with_pay_button = with(
        Some(HeaderMapping::Document),
        vec![
            button(0, ButtonKind::Url, "pay_token"),
            button(1, ButtonKind::QuickReply, "invoice.number"),
        ],
    );
    assert_eq!(
        notify::check_template("invoice_created", &invoice_with_pay_button),
        Ok(())
    );

    // A document header needs an event that carries an invoice.
    let err = notify::check_template(
        "service_unsuspended",
        &with(Some(HeaderMapping::Document), vec![]),
    )
    .unwrap_err();
    assert!(
        err.starts_with("header:") && err.contains("no invoice"),
        "{err}"
    );
    // A text header names values of the event, and has one.
    let err = notify::check_template(
        "invoice_created",
        &with(
            Some(HeaderMapping::Text {
                parameters: vec!["days".into()],
            }),
            vec![],
        ),
    )
    .unwrap_err();
    assert!(err.starts_with("header.parameters[0]: \"days\""), "{err}");
    let err = notify::check_template(
        "invoice_created",
        &with(Some(HeaderMapping::Text { parameters: vec![] }), vec![]),
    )
    .unwrap_err();
    assert!(err.starts_with("header:"), "{err}");
    // Buttons: 0 to 9, each once, naming values of the event (no pay token once paid).
    for (buttons, wanted) in [
        (
            vec![button(10, ButtonKind::Url, "pay_token")],
            "buttons[0].index: 10",
        ),
        (
            vec![
                button(0, ButtonKind::Url, "pay_token"),
                button(0, ButtonKind::QuickReply, "seller"),
            ],
            "buttons[1].index: button 0 is given twice",
        ),
        (
            vec![button(0, ButtonKind::Url, "client.password")],
            "buttons[0].parameter",
        ),
    ] {
        let err = notify::check_template("invoice_created", &with(None, buttons)).unwrap_err();
        assert!(err.starts_with(wanted), "{err}");
    }
    let err = notify::check_template(
        "payment_received",
        &with(None, vec![button(0, ButtonKind::Url, "pay_token")]),
    )
    .unwrap_err();
    assert!(err.contains("pay_token"), "{err}");

    // Rendered: the document is left for the send (its link is made then), the buttons
    // and a text header read the context.
    let mut channel = whatsapp_channel(&[]);
    channel
        .templates
        .insert("invoice_created".into(), invoice_with_pay_button.clone());
    let ctx = json!({ "invoice": { "number": "INV-9" }, "pay_token": "v1.9.1893456000.ab" });
    assert_eq!(
        notify::template_for(&channel, "invoice_created", &ctx, true),
        notify::QueuedTemplate::Ready {
            name: "keel_invoice".into(),
            language: "en".into(),
            parameters: vec!["INV-9".into()],
            header: Some(QueuedHeader::InvoiceDocument),
            buttons: vec![
                QueuedButton {
                    index: 0,
                    kind: ButtonKind::Url,
                    parameter: "v1.9.1893456000.ab".into()
                },
                QueuedButton {
                    index: 1,
                    kind: ButtonKind::QuickReply,
                    parameter: "INV-9".into()
                },
            ],
        }
    );
    // No invoice on the message, no pay token (nothing to pay): unavailable, naming why.
    match notify::template_for(&channel, "invoice_created", &ctx, false) {
        notify::QueuedTemplate::Unavailable { reason } => {
            assert!(reason.contains("needs an invoice"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let unpaid = json!({ "invoice": { "number": "INV-9" } });
    match notify::template_for(&channel, "invoice_created", &unpaid, true) {
        notify::QueuedTemplate::Unavailable { reason } => {
            assert!(reason.contains("pay_token"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    channel.templates.insert(
        "invoice_created".into(),
        with(
            Some(HeaderMapping::Text {
                parameters: vec!["invoice.number".into()],
            }),
            vec![],
        ),
    );
    match notify::template_for(&channel, "invoice_created", &ctx, true) {
        notify::QueuedTemplate::Ready { header, .. } => {
            assert_eq!(
                header,
                Some(QueuedHeader::Text {
                    parameters: vec!["INV-9".into()]
                })
            )
        }
        other => panic!("{other:?}"),
    }
    // A template queued before headers existed still reads.
    let old: notify::QueuedTemplate = serde_json::from_str(
        r#"{"ready":{"name":"keel_invoice","language":"en","parameters":["INV-9"]}}"#,
    )
    .unwrap();
    assert!(
        matches!(old, notify::QueuedTemplate::Ready { header: None, ref buttons, .. } if buttons.is_empty())
    );
}

#[test]
fn the_attempts_of_a_notification_span_at_least_a_day() {
    // The queue waits half to all of each ceiling (jitter) between attempts.
    let backoff = keel_jobs::Backoff::default();
    let ceilings: Vec<std::time::Duration> =
        (1..notify::ATTEMPTS).map(|a| backoff.ceiling(a)).collect();
    let longest: std::time::Duration = ceilings.iter().sum();
    let shortest = longest / 2;
    let day = std::time::Duration::from_secs(24 * 3600);
    assert!(
        shortest >= day,
        "{shortest:?}: an outage of a day outlasts the retries"
    );
    assert!(
        longest <= 2 * day + day / 12,
        "{longest:?}: about two days at most"
    );
}
