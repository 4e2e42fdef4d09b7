//! Webhook events: what each event type carries, one struct per payload, and [`emit`], which
//! writes an event and its deliveries in the causing transaction. A leaf module: it writes
//! side-effect rows and imports no use case. Endpoints, signed delivery and replay are
//! [`crate::webhooks`].
//!
//! Every payload is built here from a record, by the single path (a use case emitting one
//! event) and the batched path (the billing run) alike, so the two cannot drift apart.

use crate::{App, AppError};
use chrono::NaiveDate;
use keel_domain::Money;
use keel_domain::client::Client;
use keel_domain::ids::{ClientId, InvoiceId, ServiceId};
use keel_domain::lifecycle::{InvoiceStatus, ServiceStatus};
use keel_store::Tx;
use keel_store::webhooks::{self as store, Subscriptions};
use keel_store::{invoices::InvoiceRecord, invoices::NewInvoice, services::ServiceRecord};
use serde::Serialize;

/// Every event type an endpoint can subscribe to. `*` subscribes to all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    ClientCreated,
    InvoiceIssued,
    InvoicePaid,
    PaymentReceived,
    PaymentReversed,
    ServiceSuspended,
    ServiceUnsuspended,
    ServiceTerminated,
    ServiceCancelled,
    ServiceCancellationRequested,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::ClientCreated,
        EventType::InvoiceIssued,
        EventType::InvoicePaid,
        EventType::PaymentReceived,
        EventType::PaymentReversed,
        EventType::ServiceSuspended,
        EventType::ServiceUnsuspended,
        EventType::ServiceTerminated,
        EventType::ServiceCancelled,
        EventType::ServiceCancellationRequested,
    ];

    /// The name endpoints subscribe to and deliveries carry (`invoice.paid`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ClientCreated => "client.created",
            EventType::InvoiceIssued => "invoice.issued",
            EventType::InvoicePaid => "invoice.paid",
            EventType::PaymentReceived => "payment.received",
            EventType::PaymentReversed => "payment.reversed",
            EventType::ServiceSuspended => "service.suspended",
            EventType::ServiceUnsuspended => "service.unsuspended",
            EventType::ServiceTerminated => "service.terminated",
            EventType::ServiceCancelled => "service.cancelled",
            EventType::ServiceCancellationRequested => "service.cancellation_requested",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == text)
    }

    /// What the event means, for people (the OpenAPI document, `docs/webhooks.md`).
    pub fn meaning(self) -> &'static str {
        match self {
            EventType::ClientCreated => "a client was created",
            EventType::InvoiceIssued => {
                "an invoice was issued (order, billing run, staff, top-up, upgrade)"
            }
            EventType::InvoicePaid => "an invoice became paid",
            EventType::PaymentReceived => {
                "a payment was recorded against an invoice (staff, wallet or gateway)"
            }
            EventType::PaymentReversed => {
                "a gateway payment was reversed because the provider reports it refunded or \
                 disputed; its invoice is open again"
            }
            EventType::ServiceSuspended => "a service was suspended",
            EventType::ServiceUnsuspended => "a suspended service became active again",
            EventType::ServiceTerminated => "a service was terminated",
            EventType::ServiceCancelled => "a service was cancelled",
            EventType::ServiceCancellationRequested => {
                "a cancellation at the end of the period was requested"
            }
        }
    }
}

/// The data of `client.created`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientData {
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub email: String,
    pub country: String,
    pub currency: String,
}

impl ClientData {
    pub fn of(c: &Client) -> ClientData {
        ClientData {
            client_id: c.id.get(),
            reseller_id: c.reseller_id.map(|r| r.get()),
            email: c.email.as_str().to_string(),
            country: c.country.as_str().to_string(),
            currency: c.currency.code().to_string(),
        }
    }
}

/// The data of `invoice.issued` and `invoice.paid` (amounts in minor units).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceData {
    pub invoice_id: i64,
    pub number: Option<String>,
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub status: &'static str,
    pub currency: &'static str,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub issue_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
}

impl InvoiceData {
    pub fn of(inv: &InvoiceRecord) -> InvoiceData {
        InvoiceData {
            invoice_id: inv.id.get(),
            number: inv.number.clone(),
            client_id: inv.client_id.get(),
            reseller_id: inv.reseller_id.map(|r| r.get()),
            status: inv.status.as_str(),
            currency: inv.currency.code(),
            subtotal_minor: inv.subtotal.minor(),
            tax_minor: inv.tax.minor(),
            total_minor: inv.total.minor(),
            paid_minor: inv.paid.minor(),
            issue_date: inv.issue_date,
            due_date: inv.due_date,
        }
    }

    /// An invoice the billing run inserted as `id`, with `paid` paid since (zero, or what
    /// the wallet paid in the same batch).
    pub fn of_new(id: InvoiceId, inv: &NewInvoice, paid: Money) -> InvoiceData {
        let status = if paid.minor() > 0 && paid.minor() == inv.total.minor() {
            InvoiceStatus::Paid
        } else {
            inv.status
        };
        InvoiceData {
            invoice_id: id.get(),
            number: inv.number.clone(),
            client_id: inv.client_id.get(),
            reseller_id: inv.reseller_id.map(|r| r.get()),
            status: status.as_str(),
            currency: inv.currency.code(),
            subtotal_minor: inv.subtotal.minor(),
            tax_minor: inv.tax.minor(),
            total_minor: inv.total.minor(),
            paid_minor: paid.minor(),
            issue_date: inv.issue_date,
            due_date: inv.due_date,
        }
    }
}

/// The data of `payment.received`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentData {
    pub invoice_id: i64,
    pub number: Option<String>,
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub method: String,
    pub reference: String,
    pub currency: &'static str,
    pub amount_minor: i64,
}

impl PaymentData {
    /// A payment of `amount` by `method` under `reference` against the invoice `of`.
    pub fn of(of: &InvoiceData, method: &str, reference: &str, amount: Money) -> PaymentData {
        PaymentData {
            invoice_id: of.invoice_id,
            number: of.number.clone(),
            client_id: of.client_id,
            reseller_id: of.reseller_id,
            method: method.to_string(),
            reference: reference.to_string(),
            currency: amount.currency().code(),
            amount_minor: amount.minor(),
        }
    }
}

/// The data of `payment.reversed`: the payment as `payment.received` named it, why it was
/// reversed, and what its invoice owes again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReversalData {
    #[serde(flatten)]
    pub payment: PaymentData,
    /// The provider's word (`Refunded`, `Disputed`).
    pub provider_status: String,
    pub reason: String,
    pub invoice_status: &'static str,
    pub balance_due_minor: i64,
}

/// The data of the `service.*` events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceData {
    pub service_id: i64,
    pub client_id: i64,
    pub reseller_id: Option<i64>,
    pub label: String,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: String,
    /// `service.cancellation_requested` and `service.cancelled`: the day it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_on: Option<NaiveDate>,
}

impl ServiceData {
    pub fn of(s: &ServiceRecord, from: ServiceStatus, to: ServiceStatus, reason: &str) -> Self {
        ServiceData {
            service_id: s.id.get(),
            client_id: s.client_id.get(),
            reseller_id: s.reseller_id.map(|r| r.get()),
            label: s.label.clone(),
            from: from.as_str(),
            to: to.as_str(),
            reason: reason.to_string(),
            cancel_on: None,
        }
    }
}

/// One event, typed: its type and its payload go together.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    ClientCreated(ClientData),
    InvoiceIssued(InvoiceData),
    InvoicePaid(InvoiceData),
    PaymentReceived(PaymentData),
    PaymentReversed(ReversalData),
    /// A `service.*` event; `kind` is one of the service event types.
    Service(EventType, ServiceData),
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self {
            Event::ClientCreated(_) => EventType::ClientCreated,
            Event::InvoiceIssued(_) => EventType::InvoiceIssued,
            Event::InvoicePaid(_) => EventType::InvoicePaid,
            Event::PaymentReceived(_) => EventType::PaymentReceived,
            Event::PaymentReversed(_) => EventType::PaymentReversed,
            Event::Service(kind, _) => *kind,
        }
    }

    /// What the event is about (`invoice:12`): one subject's events reach an endpoint in
    /// order.
    pub fn subject(&self) -> String {
        match self {
            Event::ClientCreated(d) => client_subject(ClientId(d.client_id)),
            Event::InvoiceIssued(d) | Event::InvoicePaid(d) => {
                invoice_subject(InvoiceId(d.invoice_id))
            }
            Event::PaymentReceived(d) => invoice_subject(InvoiceId(d.invoice_id)),
            Event::PaymentReversed(d) => invoice_subject(InvoiceId(d.payment.invoice_id)),
            Event::Service(_, d) => service_subject(ServiceId(d.service_id)),
        }
    }

    pub fn data(&self) -> serde_json::Value {
        let value = match self {
            Event::ClientCreated(d) => serde_json::to_value(d),
            Event::InvoiceIssued(d) | Event::InvoicePaid(d) => serde_json::to_value(d),
            Event::PaymentReceived(d) => serde_json::to_value(d),
            Event::PaymentReversed(d) => serde_json::to_value(d),
            Event::Service(_, d) => serde_json::to_value(d),
        };
        value.expect("event data are plain records")
    }
}

/// The subject of events about an invoice.
pub fn invoice_subject(id: InvoiceId) -> String {
    format!("invoice:{}", id.get())
}

/// The subject of events about a service.
pub fn service_subject(id: ServiceId) -> String {
    format!("service:{}", id.get())
}

/// The subject of events about a client.
pub fn client_subject(id: ClientId) -> String {
    format!("client:{}", id.get())
}

/// The enabled endpoints' subscriptions, read once in the caller's transaction; a use case
/// that emits many events (the billing run) reads them once per transaction.
pub async fn subscriptions(tx: &mut Tx) -> Result<Subscriptions, AppError> {
    Ok(store::subscriptions(tx).await?)
}

/// Writes `event` in the caller's transaction, with one delivery per enabled endpoint that
/// wants its type; nothing when none does.
pub async fn emit(tx: &mut Tx, app: &App, event: Event) -> Result<(), AppError> {
    let subs = store::subscriptions(tx).await?;
    emit_to(tx, app, &subs, event).await
}

/// [`emit`] with subscriptions already read in this transaction.
pub async fn emit_to(
    tx: &mut Tx,
    app: &App,
    subs: &Subscriptions,
    event: Event,
) -> Result<(), AppError> {
    let event_type = event.event_type().as_str();
    let endpoints = subs.endpoints_for(event_type);
    if endpoints.is_empty() {
        return Ok(());
    }
    store::insert_event(
        tx,
        event_type,
        &event.subject(),
        &event.data(),
        &endpoints,
        app.now(),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_meaning_and_round_trips() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(!t.meaning().is_empty());
        }
    }
}
