//! Bank transfer: the offline gateway every host offers. `initiate` answers with the
//! host's bank details and the reference the payer must quote; the payment stays pending
//! until an admin records it against the invoice.

use keel_sdk::gateway::{Gateway, NextAction, PaymentRequest, PaymentStarted, PaymentStatus};
use keel_sdk::{Features, PluginError, PluginInfo, config};

struct BankTransfer;

impl Gateway for BankTransfer {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "Bank transfer",
            env!("CARGO_PKG_VERSION"),
            "Shows the payer your bank details; you record the payment when it arrives",
            Features::empty(),
        )
    }

    fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
        let instructions = config::require("instructions")?;
        let prefix = config::get("reference_prefix").unwrap_or_default();
        let reference = payer_reference(&prefix, &req.invoice_id);
        Ok(PaymentStarted {
            provider_reference: reference.clone(),
            status: PaymentStatus::Pending,
            action: NextAction::Instructions(format!(
                "{}\n\nAmount: {} (minor units of {})\nReference: {reference}",
                instructions.trim_end(),
                req.amount.minor,
                req.amount.currency,
            )),
            state: None,
        })
    }
}

/// `INV-2026-000123`: the prefix, a dash, the invoice id; no prefix, just the id.
fn payer_reference(prefix: &str, invoice_id: &str) -> String {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        invoice_id.to_owned()
    } else {
        format!("{prefix}-{invoice_id}")
    }
}

keel_sdk::export_gateway!(BankTransfer);

#[cfg(test)]
mod tests {
    use keel_sdk::testing::FakeHost;
    use keel_sdk::{Contact, Money};

    use super::*;

    fn request() -> PaymentRequest {
        PaymentRequest {
            reference: "pay_1".into(),
            invoice_id: "2026-000123".into(),
            amount: Money::new(1050, "USD"),
            description: "Invoice 2026-000123".into(),
            payer: Contact {
                first_name: "Tendai".into(),
                last_name: "Moyo".into(),
                company: None,
                email: "tendai@example.com".into(),
                phone: None,
                address: None,
            },
            return_url: "https://billing.example.com/return".into(),
            callback_url: "https://billing.example.com/callback".into(),
            method: None,
        }
    }

    #[test]
    fn instructions_carry_the_reference() {
        let _host = FakeHost::new()
            .setting("instructions", "Bank: First Bank\nAccount: 123456")
            .setting("reference_prefix", "INV")
            .install();
        let started = BankTransfer::initiate(request()).unwrap();
        assert_eq!(started.provider_reference, "INV-2026-000123");
        assert_eq!(started.status, PaymentStatus::Pending);
        let NextAction::Instructions(text) = started.action else {
            panic!("not instructions")
        };
        assert!(
            text.starts_with("Bank: First Bank\nAccount: 123456\n\n"),
            "{text}"
        );
        assert!(text.ends_with("Reference: INV-2026-000123"), "{text}");
    }

    #[test]
    fn missing_instructions_is_misconfigured() {
        let _host = FakeHost::new().install();
        let err = BankTransfer::initiate(request()).unwrap_err();
        assert!(matches!(err, PluginError::Misconfigured(m) if m.contains("instructions")));
    }

    #[test]
    fn empty_prefix_gives_the_bare_invoice_id() {
        assert_eq!(payer_reference(" ", "42"), "42");
        assert_eq!(payer_reference("KEEL", "42"), "KEEL-42");
    }
}
