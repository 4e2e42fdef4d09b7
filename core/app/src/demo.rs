//! The demo host: what `keel serve --demo` and `keel demo` put into an empty database so a
//! new user has something to look at. It goes through the same use cases as the API, so
//! its rows are audited and its money is in the ledger like anyone's.
//!
//! What it seeds: two staff users and an admin key; six clients of the host and two of a
//! reseller (with its key); wallet credits, a spend and a reversal; a catalog (web hosting
//! with options and an add-on, a .co.zw domain, USD and ZWG prices), 15 % VAT for ZW, a
//! USD→ZWG rate and the WELCOME10 code; and a book ordered through [`crate::orders::place`]:
//! invoices paid from the wallet, by a recorded bank transfer, and one left unpaid, with
//! services falling due within a week (by the App's clock) so that `keel billing run` right
//! after the demo issues renewals. With `[notifications.whatsapp]` set, the first client has
//! opted in to WhatsApp at [`DEMO_WHATSAPP`].

use crate::access::{NewKey, NewStaff, create_key, create_staff};
use crate::catalog::{
    self, BillingSettingsInput, NewExchangeRateInput, NewProductGroupInput, NewProductInput,
    NewPromotionInput, NewTaxRuleInput, OptionInput, OptionValueInput, PriceInput, ProductView,
    PromoKind,
};
use crate::clients::create_client;
use crate::ledger::wallet_adjust;
use crate::orders::{self, AddonInput, OrderInput, OrderItem, OrderView};
use crate::payments::{self, ManualMethod, PaymentInput};
use crate::{App, AppError, Ctx};
use keel_domain::access::{KeyScope, StaffRole};
use keel_domain::catalog::OptionChoice;
use keel_domain::client::NewClient;
use keel_domain::currency::Currency;
use keel_domain::ids::{ClientId, InvoiceId, ProductGroupId};
use keel_domain::lifecycle::{InvoiceStatus, OptionKind, PayType, ProductKind};
use keel_domain::money::Money;
use keel_domain::tax::TaxLevel;
use keel_domain::tenancy::Scope;
use rand::RngCore;
use serde_json::json;

/// The WhatsApp number the demo's first client opted in with (when the channel is set).
pub const DEMO_WHATSAPP: &str = "+263771234567";

/// What the demo created, printed once by the CLI.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub admin_email: String,
    pub admin_password: String,
    pub billing_email: String,
    /// Drawn on its own: knowing one demo password tells nothing about the other.
    pub billing_password: String,
    pub admin_key: String,
    pub reseller_key: String,
    pub clients: usize,
    /// Products in the demo catalog (add-ons included).
    pub products: usize,
    /// Services ordered for demo clients.
    pub services: usize,
    /// Invoices issued by those orders, and how many of them are paid.
    pub invoices: usize,
    pub paid_invoices: usize,
    /// A pay link for each invoice left unpaid, to pay it by hand.
    pub pay_links: Vec<DemoPayLink>,
}

/// An unpaid demo invoice and its pay link.
#[derive(Debug, Clone)]
pub struct DemoPayLink {
    /// The invoice's number.
    pub invoice: String,
    /// What is due, as "12.50 USD".
    pub due: String,
    pub url: String,
}

/// Whether the database has no staff and no clients yet.
pub async fn is_empty(app: &App) -> Result<bool, AppError> {
    let staff = keel_store::staff::list_staff(&app.db).await?;
    Ok(staff.is_empty() && keel_store::clients::count_clients(&app.db).await? == 0)
}

fn client(
    kind: &str,
    company: Option<&str>,
    first: &str,
    last: &str,
    email: &str,
    country: &str,
    currency: &str,
) -> NewClient {
    serde_json::from_value(json!({
        "kind": kind, "company_name": company, "first_name": first, "last_name": last,
        "email": email, "country": country, "currency": currency,
    }))
    .expect("demo client data is valid")
}

/// Seeds the demo host. Refuses a database that already has staff or clients.
pub async fn seed(app: &App) -> Result<DemoSummary, AppError> {
    if !is_empty(app).await? {
        return Err(AppError::conflict(
            "not_empty",
            "the database already has staff or clients; the demo only seeds an empty one",
        ));
    }
    let ctx = Ctx::system("demo");
    let admin_password = random_password();
    let billing_password = random_password();
    let admin = create_staff(
        app,
        &ctx,
        NewStaff {
            email: "admin@keel.example".parse().expect("valid"),
            name: "Demo Admin".into(),
            password: admin_password.clone(),
            role: StaffRole::Admin,
        },
    )
    .await?;
    create_staff(
        app,
        &ctx,
        NewStaff {
            email: "billing@keel.example".parse().expect("valid"),
            name: "Demo Billing".into(),
            password: billing_password.clone(),
            role: StaffRole::Billing,
        },
    )
    .await?;
    let admin_key = create_key(
        app,
        &ctx,
        NewKey {
            name: "demo admin".into(),
            scope: KeyScope::Admin,
            reseller_id: None,
            client_id: None,
            staff_id: Some(admin.id),
        },
    )
    .await?;

    let host_clients = [
        client(
            "company",
            Some("Mutapa Digital"),
            "Tendai",
            "Moyo",
            "tendai@mutapa.example",
            "ZW",
            "USD",
        ),
        client(
            "person",
            None,
            "Rudo",
            "Chikwanha",
            "rudo@example.co.zw",
            "ZW",
            "ZWG",
        ),
        client(
            "company",
            Some("Karoo Cloud"),
            "Pieter",
            "van Wyk",
            "pieter@karoo.example",
            "ZA",
            "ZAR",
        ),
        client(
            "person",
            None,
            "Amina",
            "Odhiambo",
            "amina@example.co.ke",
            "KE",
            "KES",
        ),
        client(
            "company",
            Some("Lagos Labs"),
            "Chidi",
            "Okafor",
            "chidi@lagoslabs.example",
            "NG",
            "USD",
        ),
        client(
            "person",
            None,
            "Sam",
            "Taylor",
            "sam@example.com",
            "US",
            "USD",
        ),
    ];
    let mut created = Vec::new();
    for c in host_clients {
        created.push(create_client(app, &ctx, c).await?);
    }
    // With WhatsApp configured, the first client opted in at sign-up, so its invoices and
    // reminders go there too (examples/demo-whatsapp.toml, against `keel-fake whatsapp`).
    if app.notify.channels.contains_key(crate::notify::WHATSAPP) {
        crate::notifications::opt_in(
            app,
            &ctx,
            created[0].id,
            crate::notify::WHATSAPP,
            &crate::notifications::OptInInput {
                number: DEMO_WHATSAPP.into(),
                source: Some("demo data: the sign-up form's WhatsApp box".into()),
            },
        )
        .await?;
    }

    let mut tx = app.db.begin().await?;
    let reseller =
        keel_store::clients::create_reseller(&mut tx, "Victoria Falls Resellers", app.now())
            .await?;
    crate::audit::record(
        &mut tx,
        app,
        &ctx,
        "reseller.create",
        "reseller",
        reseller,
        json!({ "name": "Victoria Falls Resellers" }),
    )
    .await?;
    tx.commit().await?;
    let reseller_key = create_key(
        app,
        &ctx,
        NewKey {
            name: "demo reseller".into(),
            scope: KeyScope::Reseller,
            reseller_id: Some(reseller),
            client_id: None,
            staff_id: None,
        },
    )
    .await?;
    // The reseller's clients are created the way the reseller would: with its own key.
    let reseller_ctx = Ctx::new(keel_domain::access::Actor::Key {
        key: reseller_key.key.id,
        label: format!("{} ({})", reseller_key.key.name, reseller_key.key.prefix),
        scope: Scope::Reseller(reseller),
        role: None,
        staff: None,
    });
    for c in [
        client(
            "person",
            None,
            "Nyasha",
            "Dube",
            "nyasha@example.co.zw",
            "ZW",
            "USD",
        ),
        client(
            "company",
            Some("Falls Tours"),
            "Farai",
            "Ncube",
            "farai@fallstours.example",
            "ZW",
            "USD",
        ),
    ] {
        created.push(create_client(app, &reseller_ctx, c).await?);
    }

    // Ledger activity: wallet credits in USD and ZWG, a spend, and a reversal.
    let usd = |minor| Money::new(minor, Currency::USD);
    wallet_adjust(
        app,
        &ctx,
        "demo-1",
        created[0].id,
        usd(5000),
        "Welcome credit",
    )
    .await?;
    wallet_adjust(
        app,
        &ctx,
        "demo-2",
        created[0].id,
        usd(-1250),
        "Domain renewal paid from wallet",
    )
    .await?;
    wallet_adjust(
        app,
        &ctx,
        "demo-3",
        created[1].id,
        Money::new(250_000, Currency::ZWG),
        "Top-up received in ZiG",
    )
    .await?;
    let wrong = wallet_adjust(
        app,
        &ctx,
        "demo-4",
        created[5].id,
        usd(9999),
        "Credit entered by mistake",
    )
    .await?;
    crate::ledger::reverse(
        app,
        &ctx,
        "demo-5",
        wrong.entry.id,
        "Entered for the wrong client",
    )
    .await?;
    wallet_adjust(
        app,
        &ctx,
        "demo-6",
        created[4].id,
        usd(9999),
        "Credit for Lagos Labs",
    )
    .await?;

    let catalog = seed_catalog(app, &ctx).await?;
    let book = seed_book(
        app,
        &ctx,
        &reseller_ctx,
        &catalog,
        &DemoClients {
            with_wallet_usd: created[0].id,
            with_wallet_zwg: created[1].id,
            paying_by_transfer: created[5].id,
            of_reseller: created[6].id,
        },
    )
    .await?;
    let mut pay_links = Vec::new();
    for (id, invoice, due) in &book.unpaid {
        pay_links.push(DemoPayLink {
            invoice: invoice.clone(),
            due: due.clone(),
            url: crate::pay_links::pay_link(app, &ctx, *id).await?.url,
        });
    }

    Ok(DemoSummary {
        admin_email: admin.email,
        admin_password,
        billing_email: "billing@keel.example".into(),
        billing_password,
        admin_key: admin_key.secret,
        reseller_key: reseller_key.secret,
        clients: created.len(),
        products: catalog.products,
        services: book.services,
        invoices: book.invoices,
        paid_invoices: book.paid_invoices,
        pay_links,
    })
}

// ---------------------------------------------------------------------------------------
// The catalog

/// What the order part of the seed needs from the catalog.
struct DemoCatalog {
    starter: ProductView,
    business: ProductView,
    backups: ProductView,
    domain: ProductView,
    products: usize,
}

/// One cycle's price in USD and its ZWG twin: `(cycle, usd, zwg, Some((setup usd, setup zwg)))`.
type PriceRow<'a> = (&'a str, &'a str, &'a str, Option<(&'a str, &'a str)>);

/// The USD and ZWG prices of each row.
fn prices(rows: &[PriceRow<'_>]) -> Vec<PriceInput> {
    let mut out = Vec::new();
    for (cycle, usd, zwg, setup) in rows {
        for (currency, price, fee) in [
            ("USD", usd, setup.map(|(u, _)| u)),
            ("ZWG", zwg, setup.map(|(_, z)| z)),
        ] {
            out.push(PriceInput {
                currency: currency.into(),
                cycle: (*cycle).into(),
                price: (*price).into(),
                setup_fee: fee.map(str::to_string),
            });
        }
    }
    out
}

fn group(name: &str, slug: &str, sort_order: i64) -> NewProductGroupInput {
    NewProductGroupInput {
        name: name.into(),
        slug: slug.into(),
        hidden: false,
        sort_order,
    }
}

#[allow(clippy::too_many_arguments)]
fn product(
    group_id: ProductGroupId,
    kind: ProductKind,
    name: &str,
    slug: &str,
    description: &str,
    prices: Vec<PriceInput>,
    options: Vec<OptionInput>,
    addons: Vec<keel_domain::ids::ProductId>,
) -> NewProductInput {
    NewProductInput {
        group_id,
        kind,
        name: name.into(),
        slug: slug.into(),
        description: description.into(),
        pay_type: PayType::Recurring,
        tax_class: Some("standard".into()),
        provisioner: None,
        registrar: None,
        stock: None,
        prices,
        options,
        addons,
    }
}

/// Web hosting (Starter with a setup fee, Business with a data-centre dropdown, extra
/// mailboxes by quantity and the Daily backups add-on), a .co.zw domain, USD and ZWG prices;
/// VAT, the USD→ZWG rate and WELCOME10. Through the catalog use cases, so each is validated
/// and audited.
async fn seed_catalog(app: &App, ctx: &Ctx) -> Result<DemoCatalog, AppError> {
    let hosting =
        catalog::create_product_group(app, ctx, group("Web hosting", "web-hosting", 0)).await?;
    let domains = catalog::create_product_group(app, ctx, group("Domains", "domains", 1)).await?;

    let backups = catalog::create_product(
        app,
        ctx,
        product(
            hosting.id,
            ProductKind::Addon,
            "Daily backups",
            "daily-backups",
            "A copy of the whole site every night, kept for 30 days.",
            prices(&[
                ("monthly", "2.00", "53.60", None),
                ("annually", "20.00", "536.00", None),
            ]),
            vec![],
            vec![],
        ),
    )
    .await?;
    let starter = catalog::create_product(
        app,
        ctx,
        product(
            hosting.id,
            ProductKind::Hosting,
            "Starter",
            "starter",
            "One site, 10 GB of storage, free SSL.",
            prices(&[
                ("monthly", "5.00", "134.00", Some(("10.00", "268.00"))),
                ("annually", "50.00", "1340.00", None),
            ]),
            vec![],
            vec![backups.id],
        ),
    )
    .await?;
    let business = catalog::create_product(
        app,
        ctx,
        product(
            hosting.id,
            ProductKind::Hosting,
            "Business",
            "business",
            "Unlimited sites, 100 GB of storage, staging, priority support.",
            prices(&[
                ("monthly", "15.00", "402.00", None),
                ("annually", "150.00", "4020.00", None),
            ]),
            vec![
                OptionInput {
                    name: "Data centre".into(),
                    kind: OptionKind::Dropdown,
                    min_qty: 0,
                    max_qty: None,
                    values: vec![
                        OptionValueInput {
                            name: "Harare".into(),
                            prices: prices(&[
                                ("monthly", "0.00", "0.00", None),
                                ("annually", "0.00", "0.00", None),
                            ]),
                        },
                        OptionValueInput {
                            name: "Johannesburg".into(),
                            prices: prices(&[
                                ("monthly", "2.00", "53.60", None),
                                ("annually", "20.00", "536.00", None),
                            ]),
                        },
                    ],
                },
                OptionInput {
                    name: "Extra mailboxes".into(),
                    kind: OptionKind::Quantity,
                    min_qty: 0,
                    max_qty: Some(100),
                    values: vec![OptionValueInput {
                        name: "Mailbox".into(),
                        prices: prices(&[
                            ("monthly", "1.00", "26.80", None),
                            ("annually", "10.00", "268.00", None),
                        ]),
                    }],
                },
            ],
            vec![backups.id],
        ),
    )
    .await?;
    let domain = catalog::create_product(
        app,
        ctx,
        product(
            domains.id,
            ProductKind::Domain,
            ".co.zw registration",
            "co-zw-registration",
            "Register a .co.zw name for a year.",
            prices(&[("annually", "15.00", "402.00", None)]),
            vec![],
            vec![],
        ),
    )
    .await?;

    catalog::create_tax_rule(
        app,
        ctx,
        NewTaxRuleInput {
            name: "VAT".into(),
            country: "ZW".into(),
            region: None,
            level: TaxLevel::First,
            rate: "15".into(),
            compound: false,
            tax_class: Some("standard".into()),
        },
    )
    .await?;
    catalog::add_exchange_rate(
        app,
        ctx,
        NewExchangeRateInput {
            base: "USD".into(),
            quote: "ZWG".into(),
            rate: "26.8".into(),
            valid_from: None,
        },
    )
    .await?;
    catalog::create_promotion(
        app,
        ctx,
        NewPromotionInput {
            code: "WELCOME10".into(),
            kind: PromoKind::Percent,
            percent: Some("10".into()),
            amounts: vec![],
            recurring: false,
            starts_on: None,
            ends_on: None,
            max_uses: None,
            max_uses_per_client: Some(1),
            products: vec![],
            cycles: vec![],
        },
    )
    .await?;
    Ok(DemoCatalog {
        starter,
        business,
        backups,
        domain,
        products: 4,
    })
}

// ---------------------------------------------------------------------------------------
// The book

/// The demo clients the orders are placed for.
struct DemoClients {
    /// Holds USD wallet credit: its order is paid from the wallet.
    with_wallet_usd: ClientId,
    /// Holds ZWG wallet credit and orders in ZWG.
    with_wallet_zwg: ClientId,
    /// Pays its invoice by bank transfer, recorded by staff.
    paying_by_transfer: ClientId,
    /// A reseller's client, ordering through the reseller's key; leaves its invoice unpaid.
    of_reseller: ClientId,
}

struct DemoBook {
    services: usize,
    invoices: usize,
    paid_invoices: usize,
    /// The invoices left unpaid: id, number, what is due.
    unpaid: Vec<(InvoiceId, String, String)>,
}

fn item(product: &ProductView, cycle: &str, label: &str) -> OrderItem {
    OrderItem {
        product_id: product.id.get(),
        cycle: cycle.into(),
        options: vec![],
        label: Some(label.into()),
        addons: vec![],
    }
}

fn order(client: ClientId, promo_code: Option<&str>, items: Vec<OrderItem>) -> OrderInput {
    OrderInput {
        client_id: Some(client.get()),
        currency: None,
        promo_code: promo_code.map(str::to_string),
        items,
    }
}

/// Aligns a client's renewals to the day a week from today (by the App's clock): its first
/// invoice is prorated up to that day and its services fall due then, inside the billing
/// run's lead time.
async fn due_within_a_week(app: &App, ctx: &Ctx, client: ClientId) -> Result<(), AppError> {
    use chrono::Datelike;
    let soon = app.today() + chrono::Days::new(7);
    catalog::set_billing_settings(
        app,
        ctx,
        client,
        BillingSettingsInput {
            billing_day: Some(i64::from(soon.day())),
            ..BillingSettingsInput::default()
        },
    )
    .await?;
    Ok(())
}

/// Orders placed through the real use case, so their invoices, ledger entries and audit
/// rows are what a real order makes.
async fn seed_book(
    app: &App,
    ctx: &Ctx,
    reseller_ctx: &Ctx,
    catalog: &DemoCatalog,
    clients: &DemoClients,
) -> Result<DemoBook, AppError> {
    let mut placed: Vec<OrderView> = Vec::new();

    // Business, monthly, in Johannesburg with three extra mailboxes and daily backups, with
    // WELCOME10; aligned to a billing day a week away and paid from the USD wallet.
    due_within_a_week(app, ctx, clients.with_wallet_usd).await?;
    let option = |name: &str| catalog.business.options.iter().find(|o| o.name == name);
    let data_centre = option("Data centre").ok_or(AppError::NotFound {
        what: "demo option",
    })?;
    let mailboxes = option("Extra mailboxes").ok_or(AppError::NotFound {
        what: "demo option",
    })?;
    let johannesburg = data_centre.values.iter().find(|v| v.name == "Johannesburg");
    let mut business = item(&catalog.business, "monthly", "mutapa.example");
    business.options = vec![
        OptionChoice {
            option_id: data_centre.id,
            value_id: johannesburg.map(|v| v.id),
            quantity: None,
        },
        OptionChoice {
            option_id: mailboxes.id,
            value_id: None,
            quantity: Some(3),
        },
    ];
    business.addons = vec![AddonInput {
        product_id: catalog.backups.id.get(),
        cycle: None,
    }];
    placed.push(
        orders::place(
            app,
            ctx,
            &order(clients.with_wallet_usd, Some("WELCOME10"), vec![business]),
            Some("demo-order-1"),
        )
        .await?,
    );

    // Starter, annually, in ZWG: the ZWG wallet pays it.
    placed.push(
        orders::place(
            app,
            ctx,
            &order(
                clients.with_wallet_zwg,
                None,
                vec![item(&catalog.starter, "annually", "rudo.co.zw")],
            ),
            Some("demo-order-2"),
        )
        .await?,
    );

    // Starter, monthly with its setup fee, due in a week: paid by a bank transfer staff record.
    due_within_a_week(app, ctx, clients.paying_by_transfer).await?;
    let transfer = orders::place(
        app,
        ctx,
        &order(
            clients.paying_by_transfer,
            None,
            vec![item(&catalog.starter, "monthly", "samtaylor.example")],
        ),
        Some("demo-order-3"),
    )
    .await?;
    let paid = payments::record_payment(
        app,
        ctx,
        transfer.invoice.id,
        &PaymentInput {
            amount: transfer.invoice.balance_due.amount.clone(),
            method: ManualMethod::BankTransfer,
            reference: "DEMO-BT-0001".into(),
            received_on: None,
            note: Some("Demo: a bank transfer matched by staff".into()),
        },
    )
    .await?;
    placed.push(OrderView {
        invoice: paid,
        ..transfer
    });

    // A .co.zw name, ordered by the reseller for its client and not paid yet.
    placed.push(
        orders::place(
            app,
            reseller_ctx,
            &order(
                clients.of_reseller,
                None,
                vec![item(&catalog.domain, "annually", "nyasha.co.zw")],
            ),
            Some("demo-order-4"),
        )
        .await?,
    );

    Ok(DemoBook {
        services: placed.iter().map(|o| o.service_ids.len()).sum(),
        invoices: placed.len(),
        paid_invoices: placed
            .iter()
            .filter(|o| o.invoice.status == InvoiceStatus::Paid)
            .count(),
        unpaid: placed
            .iter()
            .filter(|o| o.invoice.status != InvoiceStatus::Paid)
            .map(|o| {
                let due = &o.invoice.balance_due;
                (
                    o.invoice.id,
                    o.invoice
                        .number
                        .clone()
                        .unwrap_or_else(|| o.invoice.id.to_string()),
                    format!("{} {}", due.amount, due.currency),
                )
            })
            .collect(),
    })
}

/// A fresh demo password: 96 random bits from the OS, as 24 hex digits. Each staff user
/// gets its own draw, so one leaked password does not give away another.
fn random_password() -> String {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}
