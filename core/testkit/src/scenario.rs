//! Test worlds, built through Keel's own use cases, so the data is what a user would make
//! (with its audit rows) and every test reads its world in a few lines:
//!
//! ```text
//! let world = Scenario::new(&app)
//!     .tax("VAT", "ZW", "15")
//!     .product(Product::new("Starter").monthly(1000).setup(500).taxed())
//!     .client(Client::new("tariro@example.com"))
//!     .wallet("tariro@example.com", 2000)
//!     .build()
//!     .await;
//! let starter = world.product("Starter");
//! ```
//!
//! [`Scenario::build`] writes, in this order: tax rules, exchange rates, the product group
//! with its products (in the order given), clients, wallet credits, credit limits. A tax rule
//! or an exchange rate already in the database is kept, so several scenarios can share one.
//! Amounts are minor units in the scenario's currency ([`Scenario::currency`], USD by
//! default) unless a step names its own. A refused step panics with the use case's error.
//!
//! [`book`] is the large seeded book for benchmarks and the billing run's tests; its catalog
//! is a scenario.

pub mod book;

use keel_app::catalog::{
    self, NewExchangeRateInput, NewProductGroupInput, NewProductInput, NewTaxRuleInput, PriceInput,
};
use keel_app::wallets::{self, CreditLimitInput};
use keel_app::{App, Ctx};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::client::{ClientKind, NewClient, PostalAddress};
use keel_domain::cycle::BillingCycle;
use keel_domain::ids::{ClientId, ProductGroupId, ProductId};
use keel_domain::lifecycle::{PayType, ProductKind};

/// A world to build over `app`; see the module documentation.
#[must_use = "a scenario writes nothing until it is built"]
pub struct Scenario<'a> {
    app: &'a App,
    ctx: Ctx,
    currency: Currency,
    group: NewProductGroupInput,
    taxes: Vec<NewTaxRuleInput>,
    rates: Vec<(Currency, Currency, String)>,
    products: Vec<Product>,
    clients: Vec<Client>,
    wallets: Vec<(String, i64)>,
    credit_limits: Vec<(String, i64)>,
}

/// A recurring product of the scenario's group: kind hosting, untaxed, no prices until
/// given, slug its name in lower case with dashes.
#[derive(Debug, Clone)]
pub struct Product {
    name: String,
    slug: Option<String>,
    kind: ProductKind,
    taxed: bool,
    /// (currency, or the scenario's; cycle; price; setup fee), in minor units.
    prices: Vec<(Option<Currency>, BillingCycle, i64, i64)>,
}

impl Product {
    pub fn new(name: &str) -> Product {
        Product {
            name: name.to_string(),
            slug: None,
            kind: ProductKind::Hosting,
            taxed: false,
            prices: Vec::new(),
        }
    }

    /// A monthly price in the scenario's currency.
    pub fn monthly(self, minor: i64) -> Product {
        self.price(None, BillingCycle::Monthly, minor)
    }

    /// An annual price in the scenario's currency.
    pub fn annually(self, minor: i64) -> Product {
        self.price(None, BillingCycle::Annually, minor)
    }

    /// A price in `currency`.
    pub fn price_in(self, currency: Currency, cycle: BillingCycle, minor: i64) -> Product {
        self.price(Some(currency), cycle, minor)
    }

    fn price(mut self, currency: Option<Currency>, cycle: BillingCycle, minor: i64) -> Product {
        self.prices.push((currency, cycle, minor, 0));
        self
    }

    /// The setup fee of the price given just before.
    pub fn setup(mut self, minor: i64) -> Product {
        let last = self.prices.last_mut().expect("a setup fee follows a price");
        last.3 = minor;
        self
    }

    /// Tax class `standard`.
    pub fn taxed(mut self) -> Product {
        self.taxed = true;
        self
    }

    pub fn kind(mut self, kind: ProductKind) -> Product {
        self.kind = kind;
        self
    }

    pub fn slug(mut self, slug: &str) -> Product {
        self.slug = Some(slug.to_string());
        self
    }
}

/// A client of the host: a person named Tariro Moyo living in ZW, speaking English, billed
/// in the scenario's currency, until told otherwise.
#[derive(Debug, Clone)]
pub struct Client {
    email: String,
    first_name: String,
    last_name: String,
    country: String,
    currency: Option<Currency>,
    tax_exempt: bool,
}

impl Client {
    pub fn new(email: &str) -> Client {
        Client {
            email: email.to_string(),
            first_name: "Tariro".into(),
            last_name: "Moyo".into(),
            country: "ZW".into(),
            currency: None,
            tax_exempt: false,
        }
    }

    pub fn name(mut self, first: &str, last: &str) -> Client {
        self.first_name = first.to_string();
        self.last_name = last.to_string();
        self
    }

    /// ISO 3166-1 alpha-2.
    pub fn country(mut self, code: &str) -> Client {
        self.country = code.to_string();
        self
    }

    pub fn currency(mut self, currency: Currency) -> Client {
        self.currency = Some(currency);
        self
    }

    pub fn tax_exempt(mut self) -> Client {
        self.tax_exempt = true;
        self
    }
}

/// What [`Scenario::build`] made, by name.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// The product group, when the scenario had products.
    pub group: Option<ProductGroupId>,
    products: Vec<(String, ProductId)>,
    clients: Vec<(String, ClientId)>,
}

impl World {
    /// The product named `name`.
    #[track_caller]
    pub fn product(&self, name: &str) -> ProductId {
        find(&self.products, name, "product")
    }

    /// The client whose email is `email`.
    #[track_caller]
    pub fn client(&self, email: &str) -> ClientId {
        find(&self.clients, email, "client")
    }

    /// Every client, in the order the scenario gave them.
    pub fn clients(&self) -> Vec<ClientId> {
        self.clients.iter().map(|(_, id)| *id).collect()
    }
}

#[track_caller]
fn find<T: Copy>(named: &[(String, T)], name: &str, what: &str) -> T {
    named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, id)| *id)
        .unwrap_or_else(|| panic!("the scenario has no {what} {name:?}"))
}

impl<'a> Scenario<'a> {
    /// An empty scenario in USD, acting as Keel itself (`Ctx::system("test")`), with the
    /// product group "Hosting" (`hosting`).
    pub fn new(app: &'a App) -> Scenario<'a> {
        Scenario {
            app,
            ctx: Ctx::system("test"),
            currency: Currency::USD,
            group: NewProductGroupInput {
                name: "Hosting".into(),
                slug: "hosting".into(),
                hidden: false,
                sort_order: 0,
            },
            taxes: Vec::new(),
            rates: Vec::new(),
            products: Vec::new(),
            clients: Vec::new(),
            wallets: Vec::new(),
            credit_limits: Vec::new(),
        }
    }

    /// Acts as `ctx` instead (a reseller's key makes the reseller's clients; a system
    /// label names who seeded in the audit rows).
    pub fn acting(mut self, ctx: Ctx) -> Scenario<'a> {
        self.ctx = ctx;
        self
    }

    /// The currency of prices, clients and wallets that do not name their own.
    pub fn currency(mut self, currency: Currency) -> Scenario<'a> {
        self.currency = currency;
        self
    }

    /// The product group the products go in.
    pub fn group(mut self, name: &str, slug: &str) -> Scenario<'a> {
        self.group.name = name.to_string();
        self.group.slug = slug.to_string();
        self
    }

    /// A group shown to staff only.
    pub fn hidden_group(self, name: &str, slug: &str) -> Scenario<'a> {
        let mut s = self.group(name, slug);
        s.group.hidden = true;
        s
    }

    /// A first-level tax rule of class `standard` at `percent` ("15", "15.5") in `country`.
    pub fn tax(mut self, name: &str, country: &str, percent: &str) -> Scenario<'a> {
        self.taxes.push(NewTaxRuleInput {
            name: name.to_string(),
            country: country.to_string(),
            region: None,
            level: keel_domain::tax::TaxLevel::First,
            rate: percent.to_string(),
            compound: false,
            tax_class: None,
        });
        self
    }

    /// 1 `base` = `rate` `quote`, from now on.
    pub fn exchange_rate(mut self, base: Currency, quote: Currency, rate: &str) -> Scenario<'a> {
        self.rates.push((base, quote, rate.to_string()));
        self
    }

    pub fn product(mut self, product: Product) -> Scenario<'a> {
        self.products.push(product);
        self
    }

    pub fn client(mut self, client: Client) -> Scenario<'a> {
        self.clients.push(client);
        self
    }

    /// A staff credit of `minor` to the wallet of the client `email` (of this scenario), in
    /// the client's currency.
    pub fn wallet(mut self, email: &str, minor: i64) -> Scenario<'a> {
        self.wallets.push((email.to_string(), minor));
        self
    }

    /// How far below zero the wallet of the client `email` (of this scenario) may go, in the
    /// client's currency.
    pub fn credit_limit(mut self, email: &str, minor: i64) -> Scenario<'a> {
        self.credit_limits.push((email.to_string(), minor));
        self
    }

    /// Writes the scenario through the use cases; panics on a refusal.
    pub async fn build(self) -> World {
        let (app, ctx) = (self.app, &self.ctx);
        let mut world = World::default();
        let rules = if self.taxes.is_empty() {
            Vec::new()
        } else {
            catalog::list_tax_rules(app, ctx).await.expect("tax rules")
        };
        for tax in self.taxes {
            let class = tax.tax_class.as_deref().unwrap_or("standard");
            let kept = rules.iter().any(|r| {
                r.tax_class == class
                    && r.country == tax.country
                    && r.region == tax.region
                    && r.level == tax.level
            });
            if !kept {
                catalog::create_tax_rule(app, ctx, tax)
                    .await
                    .expect("tax rule");
            }
        }
        for (base, quote, rate) in self.rates {
            let mut tx = app.db.begin().await.expect("begin");
            let known = keel_store::catalog::exchange_rate(&mut tx, base, quote, app.now())
                .await
                .expect("exchange rate");
            tx.commit().await.expect("commit");
            if known.is_none() {
                let input = NewExchangeRateInput {
                    base: base.code().to_string(),
                    quote: quote.code().to_string(),
                    rate,
                    valid_from: None,
                };
                catalog::add_exchange_rate(app, ctx, input)
                    .await
                    .expect("exchange rate");
            }
        }
        if !self.products.is_empty() {
            let group = catalog::create_product_group(app, ctx, self.group)
                .await
                .expect("product group")
                .id;
            world.group = Some(group);
            for p in self.products {
                let prices = p
                    .prices
                    .iter()
                    .map(|(currency, cycle, price, setup)| {
                        let currency = currency.unwrap_or(self.currency);
                        PriceInput {
                            currency: currency.code().to_string(),
                            cycle: cycle.to_string(),
                            price: Money::new(*price, currency).plain_amount(),
                            setup_fee: Some(Money::new(*setup, currency).plain_amount()),
                        }
                    })
                    .collect();
                let input = NewProductInput {
                    group_id: group,
                    kind: p.kind,
                    name: p.name.clone(),
                    slug: p
                        .slug
                        .unwrap_or_else(|| p.name.to_lowercase().replace(' ', "-")),
                    description: String::new(),
                    pay_type: PayType::Recurring,
                    tax_class: p.taxed.then(|| "standard".to_string()),
                    provisioner: None,
                    registrar: None,
                    stock: None,
                    prices,
                    options: vec![],
                    addons: vec![],
                };
                let made = catalog::create_product(app, ctx, input)
                    .await
                    .unwrap_or_else(|e| panic!("product {}: {e}", p.name));
                world.products.push((p.name, made.id));
            }
        }
        let mut currencies = Vec::new();
        for c in self.clients {
            let currency = c.currency.unwrap_or(self.currency);
            let new = NewClient {
                kind: ClientKind::Person,
                company_name: None,
                first_name: c.first_name,
                last_name: c.last_name,
                email: c.email.parse().expect("an email"),
                phone: None,
                address: PostalAddress::default(),
                country: c.country.parse().expect("a country"),
                currency,
                language: "en".parse().expect("a language"),
                tax_exempt: c.tax_exempt,
                tax_id: None,
            };
            let made = keel_app::clients::create_client(app, ctx, new)
                .await
                .unwrap_or_else(|e| panic!("client {}: {e}", c.email));
            world.clients.push((c.email.clone(), made.id));
            currencies.push((c.email, currency));
        }
        let currency_of = |email: &str| find(&currencies, email, "client");
        for (email, minor) in self.wallets {
            let amount = Money::new(minor, currency_of(&email));
            keel_app::ledger::wallet_adjust(
                app,
                ctx,
                &format!("scenario:wallet:{email}"),
                world.client(&email),
                amount,
                "Opening credit",
            )
            .await
            .unwrap_or_else(|e| panic!("wallet of {email}: {e}"));
        }
        for (email, minor) in self.credit_limits {
            let currency = currency_of(&email);
            let input = CreditLimitInput {
                credit_limit: Money::new(minor, currency).plain_amount(),
            };
            wallets::set_credit_limit(app, ctx, world.client(&email), currency.code(), &input)
                .await
                .unwrap_or_else(|e| panic!("credit limit of {email}: {e}"));
        }
        world
    }
}
