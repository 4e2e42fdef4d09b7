//! The demo host: what `keel serve --demo` and `keel demo` put into an empty database so a
//! new user has something to look at. It goes through the same use cases as the API, so
//! its rows are audited and its money is in the ledger like anyone's.

use crate::access::{NewKey, NewStaff, create_key, create_staff};
use crate::clients::create_client;
use crate::ledger::wallet_adjust;
use crate::{App, AppError, Ctx};
use keel_domain::access::{KeyScope, StaffRole};
use keel_domain::client::NewClient;
use keel_domain::currency::Currency;
use keel_domain::money::Money;
use keel_domain::tenancy::Scope;
use rand::RngCore;
use serde_json::json;

/// What the demo created, printed once by the CLI.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub admin_email: String,
    pub admin_password: String,
    pub admin_key: String,
    pub reseller_key: String,
    pub clients: usize,
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
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let admin_password = hex::encode(raw);
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
            password: format!("{admin_password}-billing"),
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

    Ok(DemoSummary {
        admin_email: admin.email,
        admin_password,
        admin_key: admin_key.secret,
        reseller_key: reseller_key.secret,
        clients: created.len(),
    })
}
