//! VoucherPay: an example Keel payment gateway, built step by step in Keel's
//! `docs/plugins/gateway.md`. The payer pays on VoucherPay's page; VoucherPay posts a
//! signed callback, and Keel confirms it by polling.

use keel_sdk::gateway::{
    Callback, Gateway, NextAction, PaymentRef, PaymentRequest, PaymentStarted, PaymentStatus,
    PaymentUpdate,
};
use keel_sdk::http::Request;
use keel_sdk::{
    Features, InboundReply, InboundRequest, Money, PluginError, PluginInfo, config, digest,
};
use serde::{Deserialize, Serialize};

/// The header VoucherPay signs its callbacks in.
const SIGNATURE_HEADER: &str = "voucherpay-signature";

struct VoucherPay;

impl Gateway for VoucherPay {
    fn describe() -> PluginInfo {
        // No host calls here: Keel calls `describe` when it loads the plugin, before it
        // checks the settings.
        PluginInfo::new(
            "VoucherPay",
            env!("CARGO_PKG_VERSION"),
            "The payer pays on VoucherPay's page; signed callbacks, confirmed by polling",
            Features::POLLING,
        )
    }

    fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
        let api_key = config::secret("api_key")?;
        let created: Created = Request::post(format!("{}/v1/payments", api_base()?))
            .bearer(api_key.expose())
            // Keel's reference is stable across retries: VoucherPay answers a repeat with
            // the payment it made the first time instead of making a second one.
            .header("idempotency-key", req.reference.as_str())
            .json(&NewPayment {
                amount: req.amount.to_major()?, // {minor: 2500, currency: "USD"} is "25.00"
                currency: &req.amount.currency,
                reference: &req.reference,
                description: &req.description,
                email: &req.payer.email,
                return_url: &req.return_url,
                callback_url: &req.callback_url,
            })?
            .send()?
            // 429 and 5xx: unavailable (retried later); 401 and 403: misconfigured (the
            // admin is told); any other 4xx: internal (a bug in what we sent).
            .error_for_status()?
            .json()?;
        Ok(PaymentStarted {
            provider_reference: created.id,
            status: PaymentStatus::Pending,
            action: NextAction::Redirect(created.pay_url),
            // Keel stores this as given and hands it back to `poll`.
            state: Some(created.status_url),
        })
    }

    fn poll(payment: PaymentRef) -> Result<PaymentUpdate, PluginError> {
        let api_key = config::secret("api_key")?;
        let url = match payment.state {
            Some(status_url) => status_url,
            // `initiate` never answered (a crash, a time-out): nothing to ask about.
            None if payment.provider_reference.is_empty() => {
                return Err(PluginError::invalid_input(
                    "no provider reference and no state to poll",
                ));
            }
            None => format!("{}/v1/payments/{}", api_base()?, payment.provider_reference),
        };
        let answer: Payment = Request::get(url)
            .bearer(api_key.expose())
            .send()?
            .error_for_status()?
            .json()?;
        if answer.reference != payment.reference {
            return Err(PluginError::internal(format!(
                "asked about {}, VoucherPay answered about {}",
                payment.reference, answer.reference
            )));
        }
        answer.into_update()
    }

    fn verify_callback(req: InboundRequest) -> Result<Callback, PluginError> {
        let secret = config::secret("webhook_secret")?;
        // The signature first, over the raw bytes: nothing in the body is trusted before.
        let claimed = req
            .header(SIGNATURE_HEADER)
            .ok_or_else(|| PluginError::invalid_input(format!("no {SIGNATURE_HEADER} header")))?;
        let expected = digest::hex(&digest::hmac_sha256(secret.expose(), &req.body));
        // In constant time: a forger learns nothing from how fast a wrong guess fails.
        if !digest::eq_hex(claimed.trim(), &expected) {
            return Err(PluginError::invalid_input(format!(
                "the {SIGNATURE_HEADER} does not match the body"
            )));
        }
        let payment: Payment = serde_json::from_slice(&req.body).map_err(|e| {
            PluginError::internal(format!("a signed callback that is not a payment: {e}"))
        })?;
        Ok(Callback {
            update: payment.into_update()?,
            reply: InboundReply::text("ok"),
        })
    }

    // No `refund`: the SDK's default answers `unsupported`, and `describe` does not claim
    // `Features::REFUNDS`, so Keel never asks.
}

keel_sdk::export_gateway!(VoucherPay);

/// The body of `POST /v1/payments`.
#[derive(Serialize)]
struct NewPayment<'a> {
    amount: String,
    currency: &'a str,
    reference: &'a str,
    description: &'a str,
    email: &'a str,
    return_url: &'a str,
    callback_url: &'a str,
}

/// VoucherPay's answer to `POST /v1/payments` (other fields are ignored).
#[derive(Deserialize)]
struct Created {
    id: String,
    pay_url: String,
    status_url: String,
}

/// A payment as VoucherPay describes it: its answer to a poll, and a callback's body.
#[derive(Deserialize)]
struct Payment {
    id: String,
    reference: String,
    status: String,
    amount: String,
    currency: String,
}

impl Payment {
    /// The update Keel acts on. A status word or an amount we cannot read is `internal`:
    /// never paid on a guess.
    fn into_update(self) -> Result<PaymentUpdate, PluginError> {
        let status = match self.status.as_str() {
            "pending" => PaymentStatus::Pending,
            "paid" => PaymentStatus::Paid,
            "failed" => PaymentStatus::Failed,
            "cancelled" => PaymentStatus::Cancelled,
            "refunded" => PaymentStatus::Refunded,
            "disputed" => PaymentStatus::Disputed,
            other => {
                return Err(PluginError::internal(format!(
                    "VoucherPay sent the unknown status `{other}`"
                )));
            }
        };
        // "25.00" USD is {minor: 2500, currency: "USD"}, exactly, or an error.
        let amount = Money::from_major(&self.amount, &self.currency).map_err(|_| {
            PluginError::internal(format!(
                "VoucherPay sent the amount {:?} {:?}, which is not money",
                self.amount, self.currency
            ))
        })?;
        Ok(PaymentUpdate {
            reference: self.reference,
            provider_reference: self.id,
            status,
            amount: Some(amount),
            provider_status: self.status,
        })
    }
}

/// The `api_base` setting, without a trailing `/`.
fn api_base() -> Result<String, PluginError> {
    Ok(config::require("api_base")?
        .trim_end_matches('/')
        .to_owned())
}

#[cfg(test)]
mod tests;
