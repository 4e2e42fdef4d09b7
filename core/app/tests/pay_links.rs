//! Pay links through the use cases, on both engines: a link names one invoice until it
//! expires and refuses any change; the installation's key is made once in the database and
//! shared by every process on it, or taken from `[server] link_secret`; a client gets links
//! for its own invoices only; invoice emails carry one while a gateway is enabled.

use chrono::{Duration, TimeZone, Utc};
use keel_app::gateway_payments::Gateways;
use keel_app::orders::{self, OrderInput, OrderItem};
use keel_app::pay_links::{self, Settings};
use keel_app::{App, AppError, Ctx, FixedClock};
use keel_domain::access::Actor;
use keel_domain::ids::{ApiKeyId, ClientId, InvoiceId, ProductId};
use keel_domain::tenancy::Scope;
use keel_plugins::KEEL_PLUGIN_BANK_TRANSFER;
use keel_testkit::plugins::PluginHarness;
use keel_testkit::scenario::{Client, Product, Scenario};
use keel_testkit::{TestDb, store_test};
use std::sync::Arc;

struct World {
    app: App,
    clock: Arc<FixedClock>,
    product: ProductId,
}

async fn world(t: &TestDb, app: impl FnOnce(App) -> App) -> World {
    let clock = Arc::new(FixedClock::new(
        Utc.with_ymd_and_hms(2027, 3, 10, 9, 0, 0).unwrap(),
    ));
    let app = app(App::with_clock(t.db.clone(), clock.clone()));
    let built = Scenario::new(&app)
        .group("Plans", "plans")
        .product(Product::new("Plan").monthly(1000))
        .build()
        .await;
    World {
        app,
        clock,
        product: built.product("Plan"),
    }
}

async fn client(w: &World, email: &str) -> ClientId {
    Scenario::new(&w.app)
        .client(Client::new(email).name("Rudo", "Chikwanha"))
        .build()
        .await
        .client(email)
}

async fn unpaid_invoice(w: &World, c: ClientId, key: &str) -> InvoiceId {
    orders::place(
        &w.app,
        &Ctx::system("test"),
        &OrderInput {
            client_id: Some(c.get()),
            currency: None,
            promo_code: None,
            items: vec![OrderItem {
                product_id: w.product.get(),
                cycle: "monthly".into(),
                options: vec![],
                label: Some(format!("site-{key}.example")),
                addons: vec![],
            }],
        },
        Some(key),
    )
    .await
    .unwrap()
    .invoice
    .id
}

fn client_key(c: ClientId) -> Ctx {
    Ctx::new(Actor::Key {
        key: ApiKeyId(7),
        label: "client key".into(),
        scope: Scope::Client(c),
        role: None,
        staff: None,
    })
}

fn code(e: AppError) -> &'static str {
    match e {
        AppError::Unauthorized { code, .. } | AppError::Conflict { code, .. } => code,
        AppError::NotFound { .. } => "not_found",
        other => panic!("unexpected error {other:?}"),
    }
}

fn token_of(url: &str) -> &str {
    url.split("/pay/").nth(1).unwrap()
}

store_test!(
    async fn a_link_names_one_invoice_until_it_expires_and_refuses_any_change(t) {
        let w = world(t, |a| a).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let other = unpaid_invoice(&w, c, "o2").await;

        let link = pay_links::pay_link(&w.app, &Ctx::system("test"), inv).await.unwrap();
        assert!(link.url.starts_with(&format!("http://127.0.0.1:8080/pay/v1.{inv}.")), "{}", link.url);
        assert_eq!(link.expires_at, w.app.now() + Duration::days(30));
        let token = token_of(&link.url);
        assert_eq!(pay_links::verify(&w.app, token).await.unwrap(), inv);

        // Any change is refused: the invoice, the expiry, one byte of the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut flipped = token.as_bytes().to_vec();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let later = (link.expires_at + Duration::days(365)).timestamp();
        for bad in [
            format!("v1.{other}.{}.{}", parts[2], parts[3]),
            format!("v1.{inv}.{later}.{}", parts[3]),
            String::from_utf8(flipped).unwrap(),
            format!("{token}0"),
            String::new(),
        ] {
            assert_eq!(code(pay_links::verify(&w.app, &bad).await.unwrap_err()), "pay_link_invalid", "{bad}");
        }

        // Until the last second; then it is expired, and says so.
        w.clock.set(link.expires_at - Duration::seconds(1));
        assert_eq!(pay_links::verify(&w.app, token).await.unwrap(), inv);
        w.clock.set(link.expires_at);
        let e = pay_links::verify(&w.app, token).await.unwrap_err();
        assert!(e.to_string().contains("expired on 2027-04-09"), "{e}");
        assert_eq!(code(e), "pay_link_expired");
    }
);

store_test!(
    async fn the_key_is_made_once_and_shared_unless_the_host_sets_one(t) {
        let w = world(t, |a| a).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        assert_eq!(keel_store::site_secrets::get(&t.db, pay_links::SECRET_NAME).await.unwrap(), None);

        // Eight processes find no key at once: one is stored, and all sign with it.
        let tokens = futures::future::join_all((0..8).map(|_| {
            let app = w.app.clone().with_pay_links(Settings::default());
            async move {
                let link = pay_links::pay_link(&app, &Ctx::system("test"), inv).await.unwrap();
                token_of(&link.url).to_owned()
            }
        }))
        .await;
        assert!(tokens.windows(2).all(|p| p[0] == p[1]), "{tokens:?}");
        let stored = keel_store::site_secrets::get(&t.db, pay_links::SECRET_NAME).await.unwrap().unwrap();
        assert_eq!(stored.len(), 64, "32 random bytes, hex");
        let fresh = w.app.clone().with_pay_links(Settings::default());
        assert_eq!(pay_links::verify(&fresh, &tokens[0]).await.unwrap(), inv);

        // The host's secret wins: links made with the database's key are refused, and the
        // other way round.
        let hosted = w.app.clone().with_pay_links(Settings {
            secret: Some("host-secret-0123456789abcdef0123456789".into()),
            link_days: 7,
        });
        assert_eq!(code(pay_links::verify(&hosted, &tokens[0]).await.unwrap_err()), "pay_link_invalid");
        let link = pay_links::pay_link(&hosted, &Ctx::system("test"), inv).await.unwrap();
        assert_eq!(link.expires_at, w.app.now() + Duration::days(7));
        assert_eq!(pay_links::verify(&hosted, token_of(&link.url)).await.unwrap(), inv);
        assert_eq!(code(pay_links::verify(&fresh, token_of(&link.url)).await.unwrap_err()), "pay_link_invalid");

        // The form key is not the link key: a link's signature is no form token.
        let nonce = pay_links::new_nonce();
        let form = pay_links::form_token(&fresh, &tokens[0], &nonce).await.unwrap();
        assert!(pay_links::check_form_token(&fresh, &tokens[0], &nonce, &form).await.unwrap());
        assert!(!pay_links::check_form_token(&fresh, &tokens[0], "other", &form).await.unwrap());
        assert!(!pay_links::check_form_token(&hosted, &tokens[0], &nonce, &form).await.unwrap());
        let signature = tokens[0].rsplit('.').next().unwrap();
        assert!(!pay_links::check_form_token(&fresh, &tokens[0], &nonce, signature).await.unwrap());
    }
);

store_test!(
    async fn a_client_gets_links_for_its_own_invoices_only(t) {
        let w = world(t, |a| a).await;
        let rudo = client(&w, "rudo@example.com").await;
        let tendai = client(&w, "tendai@example.com").await;
        let inv = unpaid_invoice(&w, rudo, "o1").await;
        assert!(pay_links::pay_link(&w.app, &client_key(rudo), inv).await.is_ok());
        let e = pay_links::pay_link(&w.app, &client_key(tendai), inv).await.unwrap_err();
        assert_eq!(code(e), "not_found");
        let e = pay_links::pay_link(&w.app, &Ctx::system("test"), InvoiceId(999_999)).await.unwrap_err();
        assert_eq!(code(e), "not_found");
    }
);

store_test!(
    async fn invoice_emails_carry_a_pay_link_while_a_gateway_is_enabled(t) {
        let mut harness = PluginHarness::new();
        let plugin = harness
            .load(
                KEEL_PLUGIN_BANK_TRANSFER.wasm().unwrap(),
                &KEEL_PLUGIN_BANK_TRANSFER.manifest().unwrap(),
                "instructions = \"Bank: First Bank\"",
            )
            .await
            .unwrap();
        let w = world(t, |a| a.with_gateways(Gateways::from_plugins(&[plugin]))).await;
        let c = client(&w, "rudo@example.com").await;
        let inv = unpaid_invoice(&w, c, "o1").await;
        let sent = keel_store::notifications::of_client(&t.db, c, 10).await.unwrap();
        let created = sent.iter().find(|n| n.event == "invoice_created").expect("invoice_created");
        let url = created
            .body_text
            .split("Pay online: ")
            .nth(1)
            .and_then(|r| r.lines().next())
            .unwrap_or_else(|| panic!("no pay link in {}", created.body_text));
        assert!(url.starts_with(&format!("http://127.0.0.1:8080/pay/v1.{inv}.")), "{url}");
        assert_eq!(pay_links::verify(&w.app, token_of(url)).await.unwrap(), inv);
        // (`/` is escaped in HTML as `&#x2f;`, which mail readers read back as `/`.)
        let html = created.body_html.replace("&#x2f;", "/");
        assert!(html.contains(&format!("<a href=\"{url}\">Pay invoice")), "{}", created.body_html);

        // Without a gateway there is nothing to pay online with: no link.
        let plain = World {
            app: w.app.clone().with_gateways(Gateways::default()),
            clock: w.clock.clone(),
            product: w.product,
        };
        let c2 = client(&plain, "tendai@example.com").await;
        unpaid_invoice(&plain, c2, "o2").await;
        let sent = keel_store::notifications::of_client(&t.db, c2, 10).await.unwrap();
        let created = sent.iter().find(|n| n.event == "invoice_created").expect("invoice_created");
        assert!(!created.body_text.contains("Pay online"), "{}", created.body_text);
        assert!(!created.body_text.contains("\n\n\n"), "the template leaves no gap: {}", created.body_text);
    }
);
