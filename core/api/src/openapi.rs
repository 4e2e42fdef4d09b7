//! The OpenAPI document (utoipa, from the handlers' annotations and types) and the docs page
//! rendered from it (no external assets: Keel serves offline).

use crate::routes::{
    List, access, billing_run, catalog, clients, credit_notes, dunning, gateway_payments, invoices,
    jobs, ledger, notifications, orders, payments, services, wallets, webhooks,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Keel API", description = "The billing kernel's REST API. Authenticate with `Authorization: Bearer <API key>`. \
        Unsafe requests accept an `Idempotency-Key` header (required where money moves). Errors are \
        `{\"error\": {\"code\", \"message\", \"details\"}}`."),
    paths(
        clients::list, clients::create, clients::show, clients::update, clients::remove,
        clients::list_contacts, clients::create_contact, clients::update_contact, clients::remove_contact,
        access::list_staff, access::create_staff, access::update_staff,
        access::list_keys, access::create_key, access::revoke_key,
        ledger::list_accounts, ledger::show_account, ledger::list_entries, ledger::show_entry,
        ledger::adjust, ledger::reverse, ledger::audit, ledger::audit_verify,
        orders::place_order, orders::show_order, orders::close_order, invoices::list_invoices, invoices::show_invoice, invoices::invoice_pdf,
        payments::record_payment, payments::pay_with_wallet, invoices::cancel_invoice, invoices::send_to_collections, payments::top_up,
        gateway_payments::start_attempt, gateway_payments::list_attempts, gateway_payments::pay_link, gateway_payments::gateway_callback,
        notifications::notifier_webhook, notifications::notifier_subscription,
        services::list_services, services::show_service, services::change_service_status,
        services::request_cancellation, billing_run::billing_run,
        services::preview_plan_change, services::apply_plan_change,
        invoices::create_draft, invoices::update_draft, invoices::issue_draft,
        credit_notes::issue_credit_note, credit_notes::list_credit_notes, credit_notes::show_credit_note, credit_notes::credit_note_pdf,
        catalog::list_product_groups, catalog::create_product_group, catalog::list_products, catalog::create_product,
        catalog::show_product, catalog::update_product, catalog::replace_prices, catalog::retire_product, catalog::quote,
        catalog::list_tax_rules, catalog::create_tax_rule, catalog::delete_tax_rule,
        catalog::list_exchange_rates, catalog::add_exchange_rate,
        catalog::list_client_groups, catalog::create_client_group, catalog::update_client_group,
        catalog::set_billing_settings, catalog::list_promotions, catalog::create_promotion, catalog::show_promotion,
        wallets::list_wallets, wallets::wallet_history, wallets::credit_wallet, wallets::debit_wallet,
        wallets::set_credit_limit,
        jobs::list_jobs, jobs::get_job, jobs::retry_job, jobs::cancel_job, jobs::list_schedules,
        dunning::list_policies, dunning::create_policy, dunning::update_policy, dunning::assign_policy,
        dunning::dunning_run, dunning::invoice_steps, dunning::automation_preview,
        webhooks::list_endpoints, webhooks::create_endpoint, webhooks::show_endpoint, webhooks::update_endpoint,
        webhooks::delete_endpoint, webhooks::list_deliveries, webhooks::test_endpoint, webhooks::show_delivery,
        webhooks::replay_delivery,
        notifications::list_notifications, notifications::set_channel, notifications::list_consents,
        notifications::opt_in, notifications::opt_out, notifications::list_inbound,
    ),
    components(schemas(crate::error::ErrorBody, List<keel_domain::client::Client>, List<keel_app::webhooks::DeliveryView>,
        // Referenced by query parameters, which do not register what they name.
        keel_domain::currency::Currency, keel_domain::lifecycle::InvoiceStatus, keel_domain::lifecycle::ServiceStatus,
        keel_store::jobs::JobState, keel_store::webhooks::DeliveryState)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "clients", description = "Clients and their contacts"),
        (name = "staff", description = "Staff users"),
        (name = "api-keys", description = "API keys"),
        (name = "ledger", description = "The double-entry ledger"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "orders", description = "Orders: services and their first invoice"),
        (name = "invoices", description = "Invoices, payments, wallet payments and top-ups"),
        (name = "services", description = "Services, their history and cancellations"),
        (name = "billing", description = "The billing run"),
        (name = "catalog", description = "Products, prices, tax rules, exchange rates, client groups, promotions"),
        (name = "wallets", description = "Client wallets: balances, history, staff credits and debits, credit limits"),
        (name = "hooks", description = "Where providers post status updates (no API key: the plugin verifies the provider)"),
        (name = "dunning", description = "Dunning policies, an invoice's dunning steps, and the preview of what automation will do"),
        (name = "automation", description = "Jobs and schedules: what automation did, retries, heartbeats"),
        (name = "webhooks", description = "Outgoing webhooks: endpoints, signed deliveries, the delivery log, replay"),
        (name = "notifications", description = "A client's notifications, channel preferences, consents to plugin channels (WhatsApp) and the messages it sent in"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn document() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    field_writers(&mut doc);
    date_years(&mut doc);
    serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
}

/// States who may write each client field (`x-keel-writable-by`: `anyone`,
/// `reseller_or_staff` or `staff`) from the table the use cases enforce
/// ([`keel_domain::client::CLIENT_FIELD_WRITERS`]), so a generated client can tell before
/// sending that a client key may not set `tax_exempt`.
fn field_writers(doc: &mut serde_json::Value) {
    for schema in ["ClientChanges", "NewClient"] {
        let Some(props) = doc
            .pointer_mut(&format!("/components/schemas/{schema}/properties"))
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        for (field, writers) in keel_domain::client::CLIENT_FIELD_WRITERS {
            if let Some(serde_json::Value::Object(p)) = props.get_mut(*field) {
                p.insert("x-keel-writable-by".into(), writers.as_str().into());
            }
        }
    }
}

/// States on every date and timestamp the years the API takes
/// ([`keel_domain::dates::YEARS`]): the extractors refuse any date-shaped input outside
/// them, whatever the field, so every `format: date` and `date-time` gets the pattern.
fn date_years(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let pattern = match map.get("format").and_then(serde_json::Value::as_str) {
                Some("date") => Some(keel_domain::dates::DATE_PATTERN),
                Some("date-time") => Some(keel_domain::dates::DATE_TIME_PATTERN),
                _ => None,
            };
            if let Some(p) = pattern {
                map.entry("pattern").or_insert_with(|| p.into());
            }
            map.values_mut().for_each(date_years);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(date_years),
        _ => {}
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain HTML page listing every operation with its summary and answers.
pub fn docs_page() -> String {
    let doc = ApiDoc::openapi();
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PATCH", &item.patch),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let summary = op
                .summary
                .clone()
                .or_else(|| op.description.clone())
                .unwrap_or_default();
            let statuses: Vec<String> = op.responses.responses.keys().cloned().collect();
            rows.push_str(&format!(
                "<tr><td class=m>{method}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                escape(path),
                escape(&summary),
                statuses.join(", ")
            ));
        }
    }
    format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Keel API</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}}\
         .m{{font-weight:bold}}</style>\
         <h1>Keel API {version}</h1><p>{desc}</p><p>Machine-readable: <a href=/api/v1/openapi.json>/api/v1/openapi.json</a></p>\
         <table><tr><th>Method</th><th>Path</th><th>What it does</th><th>Answers</th></tr>\n{rows}</table></html>",
        version = escape(&doc.info.version),
        desc = escape(doc.info.description.as_deref().unwrap_or("")),
    )
}
