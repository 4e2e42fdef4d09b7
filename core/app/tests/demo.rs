//! The demo seed on both engines: it fills an empty database once (a second seed is refused),
//! its books balance, its catalog sells in USD and ZWG, its book has paid and unpaid
//! invoices, and the billing run right after it issues renewals.

use chrono::{NaiveDate, TimeZone, Utc};
use keel_app::billing_run::{self, RunOptions};
use keel_app::catalog::{self, ListProducts};
use keel_app::invoices::{self, InvoiceQuery};
use keel_app::{App, AppError, Ctx, FixedClock};
use keel_domain::Currency;
use keel_domain::lifecycle::InvoiceKind;
use keel_testkit::store_test;
use std::sync::Arc;

/// A demo host whose clock reads `today` at 09:00 UTC.
fn app_on(t: &keel_testkit::TestDb, today: &str) -> App {
    let day = NaiveDate::parse_from_str(today, "%Y-%m-%d").unwrap();
    let at = Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).unwrap());
    App::with_clock(t.db.clone(), Arc::new(FixedClock::new(at)))
}

async fn invoices_with(app: &App, status: &str) -> Vec<invoices::InvoiceSummary> {
    invoices::list(
        app,
        &Ctx::system("test"),
        &InvoiceQuery {
            status: Some(status.into()),
            limit: Some(200),
            ..InvoiceQuery::default()
        },
    )
    .await
    .unwrap()
    .items
}

store_test!(
    async fn the_demo_seeds_a_catalog_and_a_book_that_the_billing_run_renews(t) {
        // The 25th: a week later is the 1st of the next month, so the seed's billing-day
        // alignment crosses a month end.
        let app = app_on(t, "2027-01-25");
        let ctx = Ctx::system("test");
        let summary = keel_app::demo::seed(&app).await.unwrap();
        assert_eq!(summary.clients, 8);
        assert_eq!(summary.products, 4);
        assert!(summary.services >= 4, "{summary:?}");
        assert!(summary.paid_invoices >= 1 && summary.paid_invoices < summary.invoices, "{summary:?}");
        keel_testkit::assert_ledger_balanced(&app.db).await;
        // A pay link for each invoice left unpaid, which opens that invoice's pay page.
        assert_eq!(summary.pay_links.len(), summary.invoices - summary.paid_invoices, "{summary:?}");
        for link in &summary.pay_links {
            let token = link.url.rsplit('/').next().unwrap();
            let page = keel_app::pay_page::open(&app, token).await.unwrap();
            assert_eq!(page.invoice.number, link.invoice, "{link:?}");
        }

        // Each staff password is its own draw: neither is derived from the other, and each
        // logs in its own user only.
        let (admin, billing) = (&summary.admin_password, &summary.billing_password);
        assert_eq!((admin.len(), billing.len()), (24, 24), "{summary:?}");
        assert!(!billing.contains(admin.as_str()) && !admin.contains(billing.as_str()), "{summary:?}");
        assert!(admin[..8] != billing[..8], "independent draws share no prefix: {summary:?}");
        let logged_in = keel_app::access::login(&app, &summary.billing_email, billing).await.unwrap();
        assert_eq!(logged_in.email, "billing@keel.example");
        keel_app::access::login(&app, &summary.admin_email, admin).await.unwrap();
        assert!(keel_app::access::login(&app, &summary.billing_email, &format!("{admin}-billing")).await.is_err());

        // A second seed is refused and adds nothing.
        let err = keel_app::demo::seed(&app).await.unwrap_err();
        assert!(matches!(err, AppError::Conflict { code: "not_empty", .. }), "{err:?}");

        // The catalog sells in USD and ZWG.
        let products = catalog::list_products(&app, &ctx, &ListProducts { limit: Some(200), ..ListProducts::default() })
            .await
            .unwrap()
            .items;
        let zwg = Currency::ZWG;
        let priced_in_zwg = products
            .iter()
            .filter(|p| p.prices.iter().any(|price| price.currency == zwg))
            .count();
        assert!(priced_in_zwg >= 2, "{priced_in_zwg} products with ZWG prices");
        let business = products.iter().find(|p| p.name == "Business").expect("Business");
        assert_eq!(business.options.len(), 2);
        assert_eq!(business.addons.len(), 1);
        assert!(products.iter().any(|p| p.name == ".co.zw registration"));
        assert!(catalog::get_promotion(&app, &ctx, "WELCOME10").await.unwrap().uses >= 1);

        // Paid (from the wallet and by a recorded transfer) and unpaid invoices, all real.
        let paid = invoices_with(&app, "paid").await;
        let unpaid = invoices_with(&app, "unpaid").await;
        assert!(!paid.is_empty() && !unpaid.is_empty(), "paid {paid:?}, unpaid {unpaid:?}");
        assert!(paid.iter().chain(&unpaid).all(|i| i.kind == InvoiceKind::Standard && i.number.is_some()));
        let mut methods = Vec::new();
        for i in &paid {
            let full = invoices::get(&app, &ctx, i.id).await.unwrap();
            methods.extend(full.payments.into_iter().map(|p| p.method));
        }
        assert!(methods.iter().any(|m| m == "wallet"), "{methods:?}");
        assert!(methods.iter().any(|m| m == "bank_transfer"), "{methods:?}");

        // What `keel billing run` right after the demo would issue (dry: nothing changes)…
        let today = app.today();
        let dry = billing_run::run(&app, &ctx, &RunOptions { as_of: today, dry_run: true }, &|_| {}).await.unwrap();
        assert!(dry.invoices >= 1, "renewals due within the lead time: {dry:?}");
        // …and the run as of two weeks on issues them.
        let run = billing_run::run(
            &app,
            &ctx,
            &RunOptions { as_of: today + chrono::Days::new(14), dry_run: false },
            &|_| {},
        )
        .await
        .unwrap();
        assert!(run.invoices >= 1, "{run:?}");
        assert!(run.periods >= 2, "the aligned services renew: {run:?}");
        keel_testkit::assert_ledger_balanced(&app.db).await;
        assert!(keel_store::audit::verify(&app.db).await.unwrap().is_intact());
    }
);

store_test!(
    async fn the_demo_seeds_on_any_day_of_the_month(t) {
        // The 24th of a 31-day month: the renewal day a week later is the 31st.
        let app = app_on(t, "2027-03-24");
        let summary = keel_app::demo::seed(&app).await.unwrap();
        let run = billing_run::run(
            &app,
            &Ctx::system("test"),
            &RunOptions { as_of: app.today(), dry_run: false },
            &|_| {},
        )
        .await
        .unwrap();
        assert!(run.invoices >= 1, "{summary:?} {run:?}");
    }
);

store_test!(
    async fn with_whatsapp_set_the_demos_first_client_has_opted_in_and_gets_its_messages_there(t) {
        let channel = keel_app::notify::PluginChannel {
            plugin: "whatsapp".into(),
            window_hours: Some(24),
            templates: Default::default(),
        };
        let app = app_on(t, "2027-01-10").with_notifications(keel_app::notify::Settings {
            channels: [("whatsapp".to_owned(), channel)].into(),
            ..Default::default()
        });
        keel_app::demo::seed(&app).await.unwrap();
        let ctx = Ctx::system("test");
        let first = keel_domain::ids::ClientId(1);
        let consents = keel_app::notifications::consents(&app, &ctx, first).await.unwrap();
        assert_eq!(consents.len(), 1, "{consents:?}");
        assert_eq!((consents[0].address.as_str(), consents[0].active), (keel_app::demo::DEMO_WHATSAPP, true));
        assert!(consents[0].opt_in_source.contains("demo data"), "{consents:?}");
        let on_whatsapp: Vec<_> = keel_app::notifications::of_client(&app, &ctx, first)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.channel == "whatsapp")
            .collect();
        assert!(!on_whatsapp.is_empty(), "its invoices are announced on WhatsApp too");
        assert!(on_whatsapp.iter().all(|n| n.recipient == keel_app::demo::DEMO_WHATSAPP));
        // Nobody else opted in.
        for id in 2..=6 {
            assert!(keel_app::notifications::consents(&app, &ctx, keel_domain::ids::ClientId(id)).await.unwrap().is_empty());
        }
        keel_testkit::assert_ledger_balanced(&app.db).await;
    }
);
