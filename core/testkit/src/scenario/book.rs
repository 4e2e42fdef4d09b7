//! A seeded book: a large, deterministic set of clients and active services all due on one
//! day, for `keel bench billing` and the billing run's crash test (PERFORMANCE.md, G7).
//!
//! [`seed_book`] writes, from a seed, the same book every time into an empty database:
//! - a product group with two recurring products priced in USD and ZWG, monthly and
//!   annually: "Hosting" (tax class `standard`, taxed by a 15 % rule in ZW) and "Backup"
//!   (untaxed); a ZWG→USD exchange rate (a [`Scenario`]: through the use cases);
//! - about `services / 3` clients (1 to 5 services each by default) valid for the domain
//!   (email, country, currency, language), living in ZW, ZA, US, GB or KE, billed in USD or
//!   ZWG, some with services in both currencies;
//! - every service `active`, at period 1 of its cycle: anniversary one cycle before
//!   `due_on` (clamped, with `due_on`'s day kept as the billing day when the month lacks
//!   it), `next_period = 1`, `next_due_date = due_on`, so one billing run as of `due_on`
//!   bills each service exactly once;
//! - wallet credit for about one client in five, posted as balanced ledger entries
//!   (adjustments Dr / wallet Cr) through [`keel_store::ledger::post_batch`].
//!
//! Rows go in as multi-row inserts ([`keel_store::seed`]), one transaction per ~1,000
//! services with their clients, wallets and entries, so a million services take seconds,
//! and memory does not grow with the book.

use super::{Product, Scenario};
use chrono::{Datelike, Months, NaiveDate};
use keel_app::ledger::{SystemAccount, system_account, wallet_account};
use keel_app::{App, AppError, Ctx};
use keel_domain::Currency;
use keel_domain::Money;
use keel_domain::client::{ClientKind, NewClient, PostalAddress};
use keel_domain::cycle::{self, Anniversary, BillingCycle};
use keel_domain::ids::{ClientId, ProductId};
use keel_domain::ledger::{EntryBuilder, NewEntry};
use keel_domain::lifecycle::{ProductKind, ServiceStatus};
use keel_domain::tenancy::Owner;
use keel_store::ledger::NewAccount;
use keel_store::services::NewService;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Services written per transaction (with their clients, wallets and wallet entries).
const SERVICES_PER_TRANSACTION: usize = 1_000;

/// The period every seeded service is at: period 0 was (notionally) billed by its order.
pub const FIRST_PERIOD: u32 = 1;

/// What to seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookOptions {
    /// How many services.
    pub services: u64,
    /// The same seed writes the same book.
    pub seed: u64,
    /// The day every service is next due. Any day of the month: where the month or year
    /// before lacks it (days 29 to 31), the anniversary is that month's last day and the
    /// services keep `due_on`'s day as their billing day.
    pub due_on: NaiveDate,
    /// How many services each client has, drawn uniformly from `min..=max` (the last client
    /// takes what is left). The default, 1 to 5, gives about `services / 3` clients.
    pub services_per_client: (u32, u32),
    /// Percent of clients given wallet credit.
    pub wallet_percent: u32,
}

impl BookOptions {
    /// `services` services due on `due_on`, 1 to 5 per client, one client in five with
    /// wallet credit.
    pub fn new(services: u64, seed: u64, due_on: NaiveDate) -> BookOptions {
        BookOptions {
            services,
            seed,
            due_on,
            services_per_client: (1, 5),
            wallet_percent: 20,
        }
    }
}

/// What [`seed_book`] wrote, and what a billing run as of `due_on` must issue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BookSummary {
    pub clients: u64,
    pub services: u64,
    /// Services per currency code.
    pub services_by_currency: BTreeMap<String, u64>,
    /// Services whose line is taxed (Hosting sold to a client in ZW).
    pub taxed_services: u64,
    pub wallets: u64,
    /// Wallet credit posted, per currency code, in minor units.
    pub wallet_credit_minor: BTreeMap<String, i64>,
    /// Distinct (client, currency) pairs: with grouped renewals, the invoices one run as of
    /// `due_on` issues (every service is due that day).
    pub expected_invoices: u64,
    /// Hosting (taxed), Backup (untaxed).
    pub products: Vec<ProductId>,
    pub due_on: Option<NaiveDate>,
    pub first_period: u32,
}

/// SplitMix64: tiny, and the same numbers from a seed on every platform and every version
/// (a book must not change when a dependency does).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant at these sizes).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const FIRST_NAMES: [&str; 8] = [
    "Tariro", "Tendai", "Nyasha", "Farai", "Thandiwe", "Kuda", "Rudo", "Tatenda",
];
const LAST_NAMES: [&str; 8] = [
    "Moyo",
    "Ncube",
    "Dube",
    "Sibanda",
    "Mutasa",
    "Chikwanha",
    "Banda",
    "Mlambo",
];
/// (country, city, percent of clients).
const PLACES: [(&str, &str, u64); 5] = [
    ("ZW", "Harare", 50),
    ("ZA", "Johannesburg", 20),
    ("US", "Austin", 15),
    ("GB", "Leeds", 10),
    ("KE", "Nairobi", 5),
];

/// Prices per (product, currency, cycle) in minor units: (USD monthly, USD annually, ZWG
/// monthly, ZWG annually).
const HOSTING_PRICES: [i64; 4] = [1_000, 10_000, 27_000, 270_000];
const BACKUP_PRICES: [i64; 4] = [300, 3_000, 8_100, 81_000];

fn price_of(prices: &[i64; 4], currency: Currency, cycle: BillingCycle) -> i64 {
    let column = match (currency == Currency::ZWG, cycle == BillingCycle::Annually) {
        (false, false) => 0,
        (false, true) => 1,
        (true, false) => 2,
        (true, true) => 3,
    };
    prices[column]
}

/// `product` priced from `table`, monthly and annually in USD and ZWG.
fn priced(mut product: Product, table: &[i64; 4]) -> Product {
    for currency in [Currency::USD, Currency::ZWG] {
        for cycle in [BillingCycle::Monthly, BillingCycle::Annually] {
            product = product.price_in(currency, cycle, price_of(table, currency, cycle));
        }
    }
    product
}

/// The anniversary that makes period [`FIRST_PERIOD`] of `cycle` start on `due_on`: one
/// cycle before it, clamped to that month's last day, keeping `due_on`'s day as the billing
/// day when it was clamped (2027-03-31 monthly: 2027-02-28, billing day 31).
fn anniversary(due_on: NaiveDate, cycle: BillingCycle) -> Result<Anniversary, AppError> {
    let months = cycle.months().unwrap_or(1) * FIRST_PERIOD;
    let refuse = || {
        AppError::invalid(
            "invalid_due_on",
            Some("due_on"),
            format!("no {cycle} anniversary has its period {FIRST_PERIOD} start on {due_on}"),
        )
    };
    let start = due_on
        .checked_sub_months(Months::new(months))
        .ok_or_else(refuse)?;
    let billing_day = (start.day() != due_on.day()).then_some(due_on.day());
    let start = Anniversary::with_billing_day(start, billing_day).map_err(|_| refuse())?;
    if cycle::due_date(start, cycle, FIRST_PERIOD) == Some(due_on) {
        Ok(start)
    } else {
        Err(refuse())
    }
}

/// One client of a chunk before it has an id.
struct PlannedClient {
    new: NewClient,
    services: Vec<PlannedService>,
    wallet_minor: Option<i64>,
}

struct PlannedService {
    hosting: bool,
    cycle: BillingCycle,
    currency: Currency,
    label: String,
}

/// Seeds the book described by `options` (see the module documentation). The database
/// should hold no other book of the same seed (its emails and slugs would collide).
pub async fn seed_book(app: &App, options: &BookOptions) -> Result<BookSummary, AppError> {
    let (low, high) = options.services_per_client;
    if low == 0 || high < low {
        return Err(AppError::invalid(
            "invalid_services_per_client",
            Some("services_per_client"),
            "services per client must be a range min..=max with 1 <= min <= max",
        ));
    }
    let monthly_start = anniversary(options.due_on, BillingCycle::Monthly)?;
    let annual_start = anniversary(options.due_on, BillingCycle::Annually)?;
    let ctx = Ctx::system("book seed");
    let seed = options.seed;
    let mut rng = Rng(seed);
    let (hosting, backup) = catalog(app, seed).await;
    let mut summary = BookSummary {
        products: vec![hosting, backup],
        due_on: Some(options.due_on),
        first_period: FIRST_PERIOD,
        ..BookSummary::default()
    };

    let mut made: u64 = 0;
    let mut client_no: u64 = 0;
    while made < options.services {
        // Plan one transaction's worth of clients.
        let mut chunk: Vec<PlannedClient> = Vec::new();
        let mut chunk_services = 0;
        while chunk_services < SERVICES_PER_TRANSACTION && made < options.services {
            client_no += 1;
            let want = u64::from(low) + rng.below(u64::from(high - low) + 1);
            let count = want.min(options.services - made);
            let planned = plan_client(&mut rng, seed, client_no, count, options.wallet_percent)?;
            made += count;
            chunk_services += planned.services.len();
            chunk.push(planned);
        }

        let at = app.now();
        let mut tx = app.db.begin().await?;
        let news: Vec<NewClient> = chunk.iter().map(|c| c.new.clone()).collect();
        let ids = keel_store::seed::insert_clients(&mut tx, Owner::Host, &news, at).await?;
        let mut services = Vec::with_capacity(chunk_services);
        let mut wallets: Vec<(ClientId, Currency, i64)> = Vec::new();
        for (planned, id) in chunk.iter().zip(&ids) {
            let mut currencies = BTreeSet::new();
            for s in &planned.services {
                let (product, table) = if s.hosting {
                    (hosting, &HOSTING_PRICES)
                } else {
                    (backup, &BACKUP_PRICES)
                };
                let start = if s.cycle == BillingCycle::Annually {
                    annual_start
                } else {
                    monthly_start
                };
                services.push(NewService {
                    client_id: *id,
                    reseller_id: None,
                    order_id: None,
                    product_id: product,
                    parent_id: None,
                    label: s.label.clone(),
                    cycle: s.cycle,
                    recurring: Money::new(price_of(table, s.currency, s.cycle), s.currency),
                    promotion_id: None,
                    status: ServiceStatus::Active,
                    registration_date: start.date(),
                    anniversary: start,
                    next_period: FIRST_PERIOD,
                    next_due_date: Some(options.due_on),
                });
                currencies.insert(s.currency.code());
                *summary
                    .services_by_currency
                    .entry(s.currency.code().to_string())
                    .or_default() += 1;
                if s.hosting && planned.new.country.as_str() == "ZW" && !planned.new.tax_exempt {
                    summary.taxed_services += 1;
                }
            }
            summary.expected_invoices += currencies.len() as u64;
            if let Some(minor) = planned.wallet_minor {
                wallets.push((*id, planned.new.currency, minor));
            }
        }
        summary.services +=
            keel_store::seed::insert_services(&mut tx, &services, "seeded book", "book seed", at)
                .await?;
        summary.clients += ids.len() as u64;

        if !wallets.is_empty() {
            let accounts: Vec<NewAccount> = wallets
                .iter()
                .map(|(client, currency, _)| wallet_account(*client, *currency))
                .collect();
            let wallet_ids = keel_store::seed::insert_accounts(&mut tx, &accounts, at).await?;
            let mut entries: Vec<NewEntry> = Vec::with_capacity(wallets.len());
            for ((client, currency, minor), wallet) in wallets.iter().zip(&wallet_ids) {
                let adjustments =
                    system_account(&mut tx, app, SystemAccount::Adjustments, *currency).await?;
                let amount = Money::new(*minor, *currency);
                entries.push(
                    EntryBuilder::new(
                        format!("book:{seed}:wallet:{client}:{currency}"),
                        "Opening wallet credit (seeded book)",
                    )
                    .debit(adjustments.id, amount)
                    .credit(*wallet, amount)
                    .build()?,
                );
                *summary
                    .wallet_credit_minor
                    .entry(currency.code().to_string())
                    .or_default() += minor;
            }
            keel_store::ledger::post_batch(&mut tx, &entries, at).await?;
            summary.wallets += wallets.len() as u64;
        }
        tx.commit().await?;
    }

    let mut tx = app.db.begin().await?;
    keel_app::audit::record(
        &mut tx,
        app,
        &ctx,
        "book.seed",
        "book",
        seed,
        serde_json::json!({
            "clients": summary.clients,
            "services": summary.services,
            "wallets": summary.wallets,
            "due_on": options.due_on,
        }),
    )
    .await?;
    tx.commit().await?;
    Ok(summary)
}

fn plan_client(
    rng: &mut Rng,
    seed: u64,
    n: u64,
    services: u64,
    wallet_percent: u32,
) -> Result<PlannedClient, AppError> {
    let mut roll = rng.below(100);
    let (country, city) = PLACES
        .iter()
        .find(|(_, _, share)| {
            if roll < *share {
                true
            } else {
                roll -= share;
                false
            }
        })
        .map_or(("ZW", "Harare"), |(c, city, _)| (*c, *city));
    let currency = if country == "ZW" && rng.chance(40) {
        Currency::ZWG
    } else {
        Currency::USD
    };
    let company = rng.chance(20);
    let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
    let new = NewClient {
        kind: if company {
            ClientKind::Company
        } else {
            ClientKind::Person
        },
        company_name: company.then(|| format!("{last} Trading {n}")),
        first_name: first.to_string(),
        last_name: last.to_string(),
        email: format!("client{n}.book{seed}@example.com").parse()?,
        phone: None,
        address: PostalAddress {
            line1: Some(format!("{} Samora Machel Avenue", 1 + n % 400)),
            line2: None,
            city: Some(city.to_string()),
            region: None,
            postal_code: None,
        },
        country: country.parse()?,
        currency,
        language: "en".parse()?,
        tax_exempt: false,
        tax_id: None,
    };
    new.validate()?;
    let planned = (1..=services)
        .map(|j| {
            let hosting = rng.chance(70);
            let cycle = if rng.chance(20) {
                BillingCycle::Annually
            } else {
                BillingCycle::Monthly
            };
            // Some clients in ZW also buy in the other currency.
            let currency = if country == "ZW" && rng.chance(15) {
                if currency == Currency::USD {
                    Currency::ZWG
                } else {
                    Currency::USD
                }
            } else {
                currency
            };
            let label = if hosting {
                format!("site{j}.client{n}.example")
            } else {
                format!("Backup {j} of client {n}")
            };
            PlannedService {
                hosting,
                cycle,
                currency,
                label,
            }
        })
        .collect();
    let wallet_minor = rng.chance(u64::from(wallet_percent)).then(|| {
        let usd_minor = 100 * (1 + rng.below(40) as i64);
        if currency == Currency::ZWG {
            usd_minor * 27
        } else {
            usd_minor
        }
    });
    Ok(PlannedClient {
        new,
        services: planned,
        wallet_minor,
    })
}

/// The products, the ZW tax rule and the ZWG rate (a rule or rate already there is kept).
/// Returns (Hosting, Backup).
async fn catalog(app: &App, seed: u64) -> (ProductId, ProductId) {
    let slug = format!("book-{seed}");
    let world = Scenario::new(app)
        .acting(Ctx::system("book seed"))
        .group(&format!("Seeded book {seed}"), &slug)
        .tax("VAT", "ZW", "15")
        // 1 ZWG = 0.037 USD (about 27 ZWG to the dollar, as the prices above).
        .exchange_rate(Currency::ZWG, Currency::USD, "0.037")
        .product(priced(
            Product::new("Hosting")
                .slug(&format!("{slug}-hosting"))
                .taxed(),
            &HOSTING_PRICES,
        ))
        .product(priced(
            Product::new("Backup")
                .slug(&format!("{slug}-backup"))
                .kind(ProductKind::Other),
            &BACKUP_PRICES,
        ))
        .build()
        .await;
    (world.product("Hosting"), world.product("Backup"))
}
