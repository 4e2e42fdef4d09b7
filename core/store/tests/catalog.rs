//! The catalog store on both engines: a product's full round trip, stock taken by concurrent
//! orders, retirement, tax rule selection, exchange rates in time, client settings
//! inheritance, promotions used up by concurrent orders, and the unique constraints named.

mod common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::*;
use keel_domain::catalog::{Price, Product};
use keel_domain::currency::Currency;
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{ClientGroupId, ClientId, OrderId, ProductGroupId, ProductId};
use keel_domain::lifecycle::{OptionKind, PayType, ProductKind};
use keel_domain::money::Money;
use keel_domain::promotion::{PromoValue, Promotion};
use keel_domain::tax::{TaxLevel, TaxRule};
use keel_domain::tenancy::{Owner, Scope};
use keel_store::catalog::{
    self, ClientBillingSettings, ClientGroupFields, NewOption, NewOptionValue, NewProduct,
    NewProductGroup, ProductFilter, ProductUpdate, RateFilter,
};
use keel_store::db::now;
use keel_store::{Db, StoreError};
use keel_testkit::store_test;
use rust_decimal::Decimal;
use std::str::FromStr;

// ------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal")
}

fn price(currency: Currency, cycle: BillingCycle, minor: i64, setup_minor: i64) -> Price {
    Price {
        currency,
        cycle,
        price: Money::new(minor, currency),
        setup_fee: Money::new(setup_minor, currency),
    }
}

async fn group(db: &Db, slug: &str, hidden: bool) -> ProductGroupId {
    let mut tx = db.begin().await.unwrap();
    let group = catalog::create_product_group(
        &mut tx,
        &NewProductGroup {
            name: format!("Group {slug}"),
            slug: slug.into(),
            hidden,
            sort_order: 0,
        },
        now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    group.id
}

/// A recurring hosting product with one USD monthly price and no options.
fn simple(group: ProductGroupId, slug: &str, stock: Option<i64>) -> NewProduct {
    NewProduct {
        group_id: group,
        kind: ProductKind::Hosting,
        name: format!("Product {slug}"),
        slug: slug.into(),
        description: String::new(),
        pay_type: PayType::Recurring,
        tax_class: Some("standard".into()),
        provisioner: None,
        registrar: None,
        stock,
        prices: vec![price(Currency::USD, BillingCycle::Monthly, 1000, 0)],
        options: vec![],
        addons: vec![],
    }
}

async fn create(db: &Db, new: &NewProduct) -> Result<Product, StoreError> {
    let mut tx = db.begin().await?;
    let product = catalog::create_product(&mut tx, new, now()).await?;
    tx.commit().await?;
    Ok(product)
}

async fn reload(db: &Db, id: ProductId) -> Product {
    catalog::get_product(db, id)
        .await
        .unwrap()
        .expect("product")
}

/// An order row for `client` (orders belong to the billing module; the test writes one raw).
async fn order(db: &Db, client: ClientId, key: &str) -> OrderId {
    let mut tx = db.begin().await.unwrap();
    let id: i64 = keel_store::on_tx!(&mut tx, |c| {
        sqlx::query_scalar(
        "INSERT INTO orders (client_id, status, currency, idempotency_key, created_at, updated_at) \
         VALUES ($1, 'pending', 'USD', $2, $3, $3) RETURNING id"
    )
    .bind(client.get())
    .bind(key)
    .bind(now())
    .fetch_one(&mut *c)
    .await
    })
    .unwrap();
    tx.commit().await.unwrap();
    OrderId(id)
}

fn conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

// ------------------------------------------------------------------------------------
// Products
// ------------------------------------------------------------------------------------

store_test!(
    async fn a_product_round_trips_with_prices_options_values_and_addons(t) {
        let db = &t.db;
        let hosting = group(db, "hosting", false).await;
        let addon = create(
            db,
            &NewProduct {
                kind: ProductKind::Addon,
                ..simple(hosting, "backups", None)
            },
        )
        .await
        .unwrap();

        let zwg = Currency::ZWG;
        let usd = Currency::USD;
        let new = NewProduct {
            group_id: hosting,
            kind: ProductKind::Hosting,
            name: "Starter".into(),
            slug: "starter".into(),
            description: "Shared hosting in Harare".into(),
            pay_type: PayType::Recurring,
            tax_class: Some("standard".into()),
            provisioner: Some("provisioner-cpanel".into()),
            registrar: None,
            stock: Some(10),
            // Given out of order: the store returns them by currency, then cycle.
            prices: vec![
                price(zwg, BillingCycle::Annually, 2_600_000, 0),
                price(usd, BillingCycle::Annually, 10000, 500),
                price(usd, BillingCycle::Monthly, 1000, 500),
            ],
            options: vec![
                NewOption {
                    name: "Location".into(),
                    kind: OptionKind::Dropdown,
                    min_qty: 0,
                    max_qty: None,
                    values: vec![
                        NewOptionValue {
                            name: "Harare".into(),
                            prices: vec![price(usd, BillingCycle::Monthly, 0, 0)],
                        },
                        NewOptionValue {
                            name: "Frankfurt".into(),
                            prices: vec![
                                price(usd, BillingCycle::Monthly, 200, 0),
                                price(zwg, BillingCycle::Annually, 52_000, 0),
                            ],
                        },
                    ],
                },
                NewOption {
                    name: "Extra disk".into(),
                    kind: OptionKind::Quantity,
                    min_qty: 0,
                    max_qty: Some(10),
                    values: vec![NewOptionValue {
                        name: "10 GB".into(),
                        prices: vec![price(usd, BillingCycle::Monthly, 150, 100)],
                    }],
                },
            ],
            addons: vec![addon.id],
        };
        let created = create(db, &new).await.unwrap();

        let fetched = reload(db, created.id).await;
        assert_eq!(fetched, created, "what create returns is what get reads");
        let mut tx = db.begin().await.unwrap();
        assert_eq!(catalog::product(&mut tx, created.id).await.unwrap(), Some(created.clone()));
        drop(tx);

        assert_eq!((fetched.name.as_str(), fetched.slug.as_str()), ("Starter", "starter"));
        assert_eq!(fetched.description, "Shared hosting in Harare");
        assert_eq!(fetched.provisioner.as_deref(), Some("provisioner-cpanel"));
        assert_eq!((fetched.stock, fetched.sold, fetched.retired_at), (Some(10), 0, None));
        assert_eq!(
            fetched.prices,
            vec![
                price(usd, BillingCycle::Monthly, 1000, 500),
                price(usd, BillingCycle::Annually, 10000, 500),
                price(zwg, BillingCycle::Annually, 2_600_000, 0),
            ]
        );
        let names: Vec<_> = fetched.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Location", "Extra disk"], "options keep their order");
        let location = &fetched.options[0];
        assert_eq!(location.kind, OptionKind::Dropdown);
        let values: Vec<_> = location.values.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(values, ["Harare", "Frankfurt"], "values keep their order");
        assert_eq!(
            location.values[1].prices,
            vec![
                price(usd, BillingCycle::Monthly, 200, 0),
                price(zwg, BillingCycle::Annually, 52_000, 0),
            ]
        );
        let disk = &fetched.options[1];
        assert_eq!((disk.kind, disk.min_qty, disk.max_qty), (OptionKind::Quantity, 0, Some(10)));
        assert_eq!(fetched.addons, vec![addon.id]);

        // The stored product quotes like the domain says.
        let quote = fetched
            .quote(usd, BillingCycle::Monthly, &[keel_domain::catalog::OptionChoice {
                option_id: disk.id,
                value_id: None,
                quantity: Some(3),
            }])
            .unwrap();
        assert_eq!((quote.recurring.minor(), quote.setup_fee.minor()), (1450, 800));
    }
);

store_test!(
    async fn updates_and_price_replacement_touch_only_their_fields(t) {
        let db = &t.db;
        let g = group(db, "vps", false).await;
        let product = create(db, &simple(g, "vps-small", Some(5))).await.unwrap();

        let mut tx = db.begin().await.unwrap();
        assert!(catalog::take_stock(&mut tx, product.id, 2).await.unwrap());
        let updated = catalog::update_product(
            &mut tx,
            product.id,
            &ProductUpdate {
                name: "VPS S".into(),
                description: "1 vCPU".into(),
                tax_class: None,
                provisioner: Some("provisioner-proxmox".into()),
                registrar: None,
                stock: Some(2),
            },
            now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(updated.name, "VPS S");
        assert_eq!(updated.tax_class, None);
        assert_eq!((updated.stock, updated.sold), (Some(2), 2));
        assert_eq!(updated.prices, product.prices, "prices untouched");

        // Stock below what was sold is refused in the same statement.
        let mut tx = db.begin().await.unwrap();
        let below = catalog::update_product(
            &mut tx,
            product.id,
            &ProductUpdate {
                stock: Some(1),
                name: "VPS S".into(),
                description: String::new(),
                tax_class: None,
                provisioner: None,
                registrar: None,
            },
            now(),
        )
        .await;
        assert_eq!(conflict(below), "products_stock_below_sold");
        drop(tx);

        let mut tx = db.begin().await.unwrap();
        let replaced = catalog::replace_prices(
            &mut tx,
            product.id,
            &[
                price(Currency::ZWG, BillingCycle::Quarterly, 78_000, 0),
                price(Currency::USD, BillingCycle::Quarterly, 2700, 0),
            ],
            now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            replaced.prices,
            vec![
                price(Currency::USD, BillingCycle::Quarterly, 2700, 0),
                price(Currency::ZWG, BillingCycle::Quarterly, 78_000, 0),
            ]
        );
        assert_eq!(reload(db, product.id).await, replaced);

        let mut tx = db.begin().await.unwrap();
        let missing = catalog::replace_prices(&mut tx, ProductId(9999), &[], now()).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }
);

store_test!(
    async fn a_retired_product_stays_readable_but_leaves_the_visible_catalog(t) {
        let db = &t.db;
        let shown = group(db, "shared", false).await;
        let hidden = group(db, "internal", true).await;
        let old = create(db, &simple(shown, "old-plan", None)).await.unwrap();
        let current = create(db, &simple(shown, "new-plan", None)).await.unwrap();
        let staff_only = create(db, &simple(hidden, "staff-plan", None)).await.unwrap();

        let retired_at = now();
        let mut tx = db.begin().await.unwrap();
        let retired = catalog::retire_product(&mut tx, old.id, retired_at).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(retired.retired_at, Some(retired_at));

        // Retiring again keeps the first date; the row is never deleted.
        let mut tx = db.begin().await.unwrap();
        let again = catalog::retire_product(&mut tx, old.id, retired_at + Duration::days(3))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(again.retired_at, Some(retired_at));
        let read = reload(db, old.id).await;
        assert_eq!(read.retired_at, Some(retired_at));
        assert_eq!(read.prices, old.prices, "a retired product keeps its prices");
        assert_eq!(read.check_orderable(1).unwrap_err().code(), "product_retired");

        let ids = |page: keel_store::Page<Product>| -> Vec<ProductId> {
            page.items.iter().map(|p| p.id).collect()
        };
        let staff = catalog::list_products(db, ProductFilter::default(), None, 50)
            .await
            .unwrap();
        assert_eq!(ids(staff), vec![current.id, staff_only.id]);
        let everything = ProductFilter {
            include_retired: true,
            ..Default::default()
        };
        let all = catalog::list_products(db, everything, None, 50).await.unwrap();
        assert_eq!(ids(all), vec![old.id, current.id, staff_only.id]);
        let visible = ProductFilter {
            include_retired: true,
            visible_only: true,
            ..Default::default()
        };
        let shop = catalog::list_products(db, visible, None, 50).await.unwrap();
        assert_eq!(ids(shop), vec![current.id], "neither retired nor hidden products show");
        assert_eq!(catalog::get_visible_product(db, old.id).await.unwrap(), None);
        assert_eq!(catalog::get_visible_product(db, staff_only.id).await.unwrap(), None);
        assert!(catalog::get_visible_product(db, current.id).await.unwrap().is_some());

        let groups: Vec<_> = catalog::list_product_groups(db, true)
            .await
            .unwrap()
            .into_iter()
            .map(|g| g.id)
            .collect();
        assert_eq!(groups, vec![shown]);
        assert_eq!(catalog::list_product_groups(db, false).await.unwrap().len(), 2);
    }
);

store_test!(
    async fn products_page_by_cursor_and_filter_by_group(t) {
        let db = &t.db;
        let a = group(db, "a", false).await;
        let b = group(db, "b", false).await;
        let mut in_a = Vec::new();
        for i in 0..5 {
            in_a.push(create(db, &simple(a, &format!("a-{i}"), None)).await.unwrap().id);
            create(db, &simple(b, &format!("b-{i}"), None)).await.unwrap();
        }
        let filter = ProductFilter {
            group: Some(a),
            ..Default::default()
        };
        let first = catalog::list_products(db, filter, None, 2).await.unwrap();
        assert_eq!(first.items.len(), 2);
        let mut seen: Vec<ProductId> = first.items.iter().map(|p| p.id).collect();
        let mut cursor = first.next_cursor.clone();
        while let Some(c) = cursor {
            let page = catalog::list_products(db, filter, keel_store::Cursor::decode(&c), 2)
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|p| p.id));
            assert!(page.items.iter().all(|p| p.prices.len() == 1), "pages carry prices");
            cursor = page.next_cursor;
        }
        assert_eq!(seen, in_a);
    }
);

// ------------------------------------------------------------------------------------
// Stock
// ------------------------------------------------------------------------------------

store_test!(
    async fn eight_concurrent_orders_for_the_last_three_units_let_exactly_three_through(t) {
        let db = &t.db;
        let g = group(db, "limited", false).await;
        let product = create(db, &simple(g, "launch-offer", Some(10))).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        assert!(catalog::take_stock(&mut tx, product.id, 7).await.unwrap());
        tx.commit().await.unwrap();

        let mut tasks = Vec::new();
        for _ in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let took = catalog::take_stock(&mut tx, product.id, 1).await.unwrap();
                // Hold the transaction open a moment so the others queue behind it.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
                took
            }));
        }
        let mut succeeded = 0;
        for task in tasks {
            if task.await.unwrap() {
                succeeded += 1;
            }
        }
        assert_eq!(succeeded, 3);
        let after = reload(db, product.id).await;
        assert_eq!((after.stock, after.sold), (Some(10), 10));
        assert_eq!(after.check_orderable(1).unwrap_err().code(), "out_of_stock");

        // A cancellation gives a unit back; more than was sold cannot be given back.
        let mut tx = db.begin().await.unwrap();
        assert!(catalog::give_back_stock(&mut tx, product.id, 1).await.unwrap());
        assert!(!catalog::give_back_stock(&mut tx, product.id, 100).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(reload(db, product.id).await.sold, 9);

        // Unlimited stock always moves, and still counts what was sold.
        let unlimited = create(db, &simple(g, "unlimited", None)).await.unwrap();
        let mut tx = db.begin().await.unwrap();
        assert!(catalog::take_stock(&mut tx, unlimited.id, 1000).await.unwrap());
        assert!(!catalog::take_stock(&mut tx, ProductId(9999), 1).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(reload(db, unlimited.id).await.sold, 1000);
    }
);

// ------------------------------------------------------------------------------------
// Tax rules and exchange rates
// ------------------------------------------------------------------------------------

fn rule(name: &str, country: &str, region: Option<&str>, level: TaxLevel, rate: &str) -> TaxRule {
    TaxRule {
        name: name.into(),
        country: country.into(),
        region: region.map(Into::into),
        level,
        rate: dec(rate),
        compound: false,
    }
}

store_test!(
    async fn tax_rules_are_those_of_the_class_for_the_country_or_anywhere(t) {
        let db = &t.db;
        let rules = [
            ("standard", rule("VAT", "ZW", None, TaxLevel::First, "15")),
            ("standard", rule("Levy", "ZW", Some("Harare"), TaxLevel::Second, "2")),
            ("standard", rule("VAT", "ZA", None, TaxLevel::First, "15")),
            ("standard", rule("Digital tax", "*", None, TaxLevel::First, "5")),
            ("reduced", rule("VAT", "ZW", None, TaxLevel::First, "7.5")),
        ];
        let mut tx = db.begin().await.unwrap();
        for (class, r) in &rules {
            catalog::create_tax_rule(&mut tx, class, r, now()).await.unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        let zw = catalog::tax_rules(&mut tx, "standard", "ZW").await.unwrap();
        assert_eq!(
            zw,
            vec![rules[0].1.clone(), rules[3].1.clone(), rules[1].1.clone()],
            "ZW's own rules and the '*' one, by level"
        );
        assert_eq!(
            catalog::tax_rules(&mut tx, "standard", " zw ").await.unwrap(),
            zw,
            "the country in any case"
        );
        let chosen = keel_domain::tax::applicable(&zw, "ZW", None);
        assert_eq!(chosen.first.map(|r| r.rate), Some(dec("15")));
        let reduced = catalog::tax_rules(&mut tx, "reduced", "ZW").await.unwrap();
        assert_eq!(reduced, vec![rules[4].1.clone()]);
        let elsewhere = catalog::tax_rules(&mut tx, "standard", "KE").await.unwrap();
        assert_eq!(elsewhere, vec![rules[3].1.clone()], "only the rule for anywhere");
        assert!(catalog::tax_rules(&mut tx, "none", "ZW").await.unwrap().is_empty());

        // One rule per (class, country, region, level).
        let twice = catalog::create_tax_rule(&mut tx, "standard", &rule("VAT 2", "ZW", None, TaxLevel::First, "14"), now()).await;
        assert_eq!(conflict(twice), "tax_rules_place_key");
        drop(tx);

        let listed = catalog::list_tax_rules(db).await.unwrap();
        assert_eq!(listed.len(), 5);
        let mut tx = db.begin().await.unwrap();
        assert!(catalog::delete_tax_rule(&mut tx, listed[0].id).await.unwrap());
        assert!(!catalog::delete_tax_rule(&mut tx, listed[0].id).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(catalog::list_tax_rules(db).await.unwrap().len(), 4);
    }
);

store_test!(
    async fn the_exchange_rate_is_the_latest_one_that_had_started(t) {
        let db = &t.db;
        let (usd, zwg) = (Currency::USD, Currency::ZWG);
        let mut tx = db.begin().await.unwrap();
        for (from, rate) in [
            (at(2025, 1, 1, 0), "25.8"),
            (at(2025, 3, 1, 0), "26.5"),
            (at(2025, 2, 1, 12), "26.1"),
        ] {
            catalog::add_exchange_rate(&mut tx, usd, zwg, dec(rate), from, now())
                .await
                .unwrap();
        }
        catalog::add_exchange_rate(&mut tx, zwg, usd, dec("0.04"), at(2025, 1, 1, 0), now())
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let mut tx = db.begin().await.unwrap();
        let table = [
            (at(2024, 12, 31, 23), None),
            (at(2025, 1, 1, 0), Some("25.8")),
            (at(2025, 2, 1, 11), Some("25.8")),
            (at(2025, 2, 1, 12), Some("26.1")),
            (at(2025, 2, 28, 0), Some("26.1")),
            (at(2025, 3, 1, 0), Some("26.5")),
            (at(2030, 1, 1, 0), Some("26.5")),
        ];
        for (when, want) in table {
            let got = catalog::exchange_rate(&mut tx, usd, zwg, when).await.unwrap();
            assert_eq!(got, want.map(dec), "USD→ZWG at {when}");
        }
        assert_eq!(
            catalog::exchange_rate(&mut tx, zwg, usd, at(2025, 6, 1, 0)).await.unwrap(),
            Some(dec("0.04"))
        );
        assert_eq!(
            catalog::exchange_rate(&mut tx, Currency::EUR, Currency::EUR, at(2000, 1, 1, 0))
                .await
                .unwrap(),
            Some(Decimal::ONE)
        );
        assert_eq!(
            catalog::exchange_rate(&mut tx, usd, Currency::EUR, at(2025, 6, 1, 0)).await.unwrap(),
            None
        );
        let twice =
            catalog::add_exchange_rate(&mut tx, usd, zwg, dec("27"), at(2025, 3, 1, 0), now())
                .await;
        assert_eq!(conflict(twice), "exchange_rates_pair_key");
        drop(tx);

        let filter = RateFilter {
            base: Some(usd),
            quote: Some(zwg),
        };
        let page = catalog::list_exchange_rates(db, filter, None, 2).await.unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.next_cursor.is_some());
        assert_eq!(
            catalog::list_exchange_rates(db, RateFilter::default(), None, 50)
                .await
                .unwrap()
                .items
                .len(),
            4
        );
    }
);

// ------------------------------------------------------------------------------------
// Client groups and settings
// ------------------------------------------------------------------------------------

async fn client_group(db: &Db, fields: ClientGroupFields) -> ClientGroupId {
    let mut tx = db.begin().await.unwrap();
    let g = catalog::create_client_group(&mut tx, &fields, now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    g.id
}

async fn settings(db: &Db, client: ClientId, own: ClientBillingSettings) {
    let mut tx = db.begin().await.unwrap();
    let stored = catalog::set_client_billing_settings(&mut tx, Scope::Host, client, &own, now())
        .await
        .unwrap();
    assert_eq!(stored, own);
    tx.commit().await.unwrap();
}

async fn effective(db: &Db, client: ClientId) -> catalog::EffectiveBillingSettings {
    let mut tx = db.begin().await.unwrap();
    catalog::client_billing_settings(&mut tx, client)
        .await
        .unwrap()
}

store_test!(
    async fn a_clients_settings_come_from_itself_then_its_group_then_nowhere(t) {
        let db = &t.db;
        let wholesale = client_group(
            db,
            ClientGroupFields {
                name: "Wholesale".into(),
                currency: Some(Currency::USD),
                tax_exempt: Some(true),
                wallet_auto_apply: Some(true),
                invoice_lead_days: Some(14),
                billing_day: Some(1),
            },
        )
        .await;
        let client = client(db, Owner::Host, "chipo@example.com").await.id;

        // Nothing set anywhere: everything falls to the host default.
        let none = effective(db, client).await;
        assert_eq!(
            (none.group_id, none.tax_exempt, none.wallet_auto_apply, none.invoice_lead_days, none.billing_day),
            (None, false, None, None, None)
        );

        // In the group: the group's values.
        settings(db, client, ClientBillingSettings {
            group_id: Some(wholesale),
            ..Default::default()
        })
        .await;
        let grouped = effective(db, client).await;
        assert_eq!(
            (grouped.group_id, grouped.tax_exempt, grouped.wallet_auto_apply, grouped.invoice_lead_days, grouped.billing_day),
            (Some(wholesale), true, Some(true), Some(14), Some(1))
        );

        // The client's own values win, field by field.
        settings(db, client, ClientBillingSettings {
            group_id: Some(wholesale),
            wallet_auto_apply: Some(false),
            invoice_lead_days: Some(0),
            billing_day: None,
        })
        .await;
        let own = effective(db, client).await;
        assert_eq!(
            (own.wallet_auto_apply, own.invoice_lead_days, own.billing_day),
            (Some(false), Some(0), Some(1))
        );

        // The group changes: clients follow wherever they did not set their own.
        let mut tx = db.begin().await.unwrap();
        catalog::update_client_group(&mut tx, wholesale, &ClientGroupFields {
            name: "Wholesale".into(),
            billing_day: Some(15),
            ..Default::default()
        }, now())
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let followed = effective(db, client).await;
        assert_eq!(
            (followed.tax_exempt, followed.wallet_auto_apply, followed.billing_day),
            (false, Some(false), Some(15))
        );

        // A tax-exempt client is exempt whatever its group says.
        let exempt = try_create_client(db, Owner::Host, &keel_domain::client::NewClient {
            tax_exempt: true,
            ..person("Exempt", "Org", "ngo@example.com")
        })
        .await
        .unwrap();
        assert!(effective(db, exempt.id).await.tax_exempt);

        // Another tenant's client is not found; an unknown client is NotFound.
        let reseller = reseller(db, "Falls").await;
        let mut tx = db.begin().await.unwrap();
        let hidden = catalog::set_client_billing_settings(
            &mut tx,
            Scope::Reseller(reseller),
            client,
            &ClientBillingSettings::default(),
            now(),
        )
        .await;
        assert!(matches!(hidden, Err(StoreError::NotFound)), "{hidden:?}");
        let missing = catalog::client_billing_settings(&mut tx, ClientId(9999)).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
        drop(tx);

        // Group names are unique whatever their case.
        let mut tx = db.begin().await.unwrap();
        let twice = catalog::create_client_group(&mut tx, &ClientGroupFields {
            name: "WHOLESALE".into(),
            ..Default::default()
        }, now())
        .await;
        assert_eq!(conflict(twice), "client_groups_name_key");
        drop(tx);
        let groups = catalog::list_client_groups(db).await.unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(catalog::get_client_group(db, wholesale).await.unwrap(), Some(groups[0].clone()));
    }
);

// ------------------------------------------------------------------------------------
// Promotions
// ------------------------------------------------------------------------------------

fn promotion(code: &str, max_uses: Option<u32>, per_client: Option<u32>) -> Promotion {
    Promotion {
        code: code.into(),
        value: PromoValue::Percent(dec("10")),
        recurring: false,
        starts_on: None,
        ends_on: None,
        max_uses,
        max_uses_per_client: per_client,
        products: vec![],
        cycles: vec![],
    }
}

store_test!(
    async fn a_promotion_round_trips_with_amounts_products_and_cycles(t) {
        let db = &t.db;
        let g = group(db, "domains", false).await;
        let product = create(db, &simple(g, "com", None)).await.unwrap();
        let fixed = Promotion {
            code: "WELCOME5".into(),
            value: PromoValue::Fixed(vec![
                Money::new(500, Currency::USD),
                Money::new(13_000, Currency::ZWG),
            ]),
            recurring: true,
            starts_on: NaiveDate::from_ymd_opt(2025, 1, 1),
            ends_on: NaiveDate::from_ymd_opt(2025, 12, 31),
            max_uses: Some(100),
            max_uses_per_client: Some(1),
            products: vec![product.id],
            cycles: vec![BillingCycle::Monthly, BillingCycle::Annually],
        };
        let mut tx = db.begin().await.unwrap();
        let stored = catalog::create_promotion(&mut tx, &fixed, now()).await.unwrap();
        let percent = catalog::create_promotion(&mut tx, &promotion("TENOFF", None, None), now())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(stored.promotion, fixed);
        assert_eq!(stored.uses, 0);
        assert_eq!(percent.promotion.value, PromoValue::Percent(dec("10")));

        let mut tx = db.begin().await.unwrap();
        let (id, found, uses) = catalog::promotion_by_code(&mut tx, "WELCOME5")
            .await
            .unwrap()
            .expect("found by code");
        assert_eq!((id, found, uses), (stored.id, fixed.clone(), 0));
        assert_eq!(catalog::promotion_by_code(&mut tx, "NOPE").await.unwrap(), None);
        let twice = catalog::create_promotion(&mut tx, &fixed, now()).await;
        assert_eq!(conflict(twice), "promotions_code_key");
        drop(tx);

        let mut tx = db.begin().await.unwrap();
        let ended = catalog::deactivate_promotion(&mut tx, stored.id, NaiveDate::from_ymd_opt(2025, 6, 30).unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ended.promotion.ends_on, NaiveDate::from_ymd_opt(2025, 6, 30));
        assert_eq!(
            catalog::get_promotion_by_code(db, "WELCOME5").await.unwrap().map(|p| p.promotion.ends_on),
            Some(NaiveDate::from_ymd_opt(2025, 6, 30))
        );
        let listed = catalog::list_promotions(db, None, 50).await.unwrap();
        assert_eq!(listed.items.len(), 2);
        assert_eq!(listed.items[1], percent);
    }
);

store_test!(
    async fn concurrent_orders_use_a_promotion_up_exactly(t) {
        let db = &t.db;
        let mut tx = db.begin().await.unwrap();
        let promo = catalog::create_promotion(&mut tx, &promotion("LAUNCH", Some(3), None), now())
            .await
            .unwrap()
            .id;
        tx.commit().await.unwrap();
        let mut buyers = Vec::new();
        for i in 0..8 {
            let client = client(db, Owner::Host, &format!("buyer{i}@example.com")).await.id;
            buyers.push((client, order(db, client, &format!("order-{i}")).await));
        }

        let mut tasks = Vec::new();
        for (client, order) in buyers {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let used = catalog::use_promotion(&mut tx, promo, client, order).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
                used
            }));
        }
        let mut succeeded = 0;
        for task in tasks {
            if task.await.unwrap() {
                succeeded += 1;
            }
        }
        assert_eq!(succeeded, 3);
        let mut tx = db.begin().await.unwrap();
        let (_, _, uses) = catalog::promotion_by_code(&mut tx, "LAUNCH").await.unwrap().unwrap();
        assert_eq!(uses, 3);
        let rows: i64 = keel_store::on_tx!(&mut tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM promotion_uses WHERE promotion_id = $1"
        )
        .bind(promo.get())
        .fetch_one(&mut *c)
        .await)
        .unwrap();
        assert_eq!(rows, 3, "one use row per successful order");
    }
);

store_test!(
    async fn one_client_cannot_use_a_once_per_client_code_twice_even_concurrently(t) {
        let db = &t.db;
        let mut tx = db.begin().await.unwrap();
        let promo = catalog::create_promotion(&mut tx, &promotion("ONCE", None, Some(1)), now())
            .await
            .unwrap()
            .id;
        tx.commit().await.unwrap();
        let client = client(db, Owner::Host, "twice@example.com").await.id;
        let other = client_for(db, "other@example.com").await;
        let orders = [
            order(db, client, "o-1").await,
            order(db, client, "o-2").await,
            order(db, client, "o-3").await,
        ];

        let mut tasks = Vec::new();
        for order in orders {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let used = catalog::use_promotion(&mut tx, promo, client, order).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                tx.commit().await.unwrap();
                used
            }));
        }
        let mut succeeded = 0;
        for task in tasks {
            if task.await.unwrap() {
                succeeded += 1;
            }
        }
        assert_eq!(succeeded, 1);

        let other_order = order(db, other, "o-4").await;
        let mut tx = db.begin().await.unwrap();
        assert_eq!(catalog::promotion_client_uses(&mut tx, promo, client).await.unwrap(), 1);
        assert!(catalog::use_promotion(&mut tx, promo, other, other_order).await.unwrap());
        assert_eq!(catalog::promotion_client_uses(&mut tx, promo, other).await.unwrap(), 1);
        tx.commit().await.unwrap();
        let mut tx = db.begin().await.unwrap();
        let (_, _, uses) = catalog::promotion_by_code(&mut tx, "ONCE").await.unwrap().unwrap();
        assert_eq!(uses, 2, "a refused use gives its increment back");
    }
);

async fn client_for(db: &Db, email: &str) -> ClientId {
    client(db, Owner::Host, email).await.id
}

// ------------------------------------------------------------------------------------
// Unique constraints
// ------------------------------------------------------------------------------------

store_test!(
    async fn duplicate_slugs_are_conflicts_named_by_their_index(t) {
        let db = &t.db;
        let g = group(db, "web", false).await;
        create(db, &simple(g, "web-1", None)).await.unwrap();

        let mut tx = db.begin().await.unwrap();
        let twice = catalog::create_product_group(
            &mut tx,
            &NewProductGroup {
                name: "Web again".into(),
                slug: "web".into(),
                hidden: false,
                sort_order: 1,
            },
            now(),
        )
        .await;
        assert_eq!(conflict(twice), "product_groups_slug_key");
        drop(tx);
        assert_eq!(conflict(create(db, &simple(g, "web-1", None)).await), "products_slug_key");
        assert_eq!(
            catalog::list_products(db, ProductFilter::default(), None, 50)
                .await
                .unwrap()
                .items
                .len(),
            1,
            "the refused product left nothing behind"
        );
    }
);
