//! The `/api/v1` handlers, one module per resource. Each handler is a thin translation:
//! extract, call one use case, shape the answer. Rules live in `keel-app`.

pub mod access;
pub mod billing_run;
pub mod catalog;
pub mod clients;
pub mod credit_notes;
pub mod dunning;
pub mod gateway_payments;
pub mod invoices;
pub mod jobs;
pub mod ledger;
pub mod notifications;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod services;
pub mod wallets;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A page of results; pass `next_cursor` back as `cursor` for the next page.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T: ToSchema> {
    pub items: Vec<T>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> From<keel_store::Page<T>> for List<T> {
    fn from(p: keel_store::Page<T>) -> List<T> {
        List {
            items: p.items,
            next_cursor: p.next_cursor,
        }
    }
}

/// Cursor pagination parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    #[param(schema_with = keel_store::Cursor::schema)]
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    #[param(schema_with = keel_app::page_limit_schema)]
    pub limit: Option<u32>,
}
