//! `initiate`: picks the integration by currency and the checkout by method, sends the
//! signed request, and reads Paynow's reply (PROVIDERS.md 1.2, 1.4).

use keel_sdk::gateway::{NextAction, PaymentRequest, PaymentStarted, PaymentStatus};
use keel_sdk::http::{Request, form_encode};
use keel_sdk::{Money, PluginError, kv};

use crate::message::{Message, Outbound};
use crate::settings::{EXPONENT, Integration, Settings};
use crate::{reference_key, send};

/// The longest reference Paynow takes as `merchanttrace`.
pub const MERCHANT_TRACE_MAX: usize = 32;

/// The method strings `initiate` accepts, for error messages.
const METHODS: &str = "web (or none), ecocash, onemoney, innbucks, paygo (or omari), \
                       vmc:<token>, zimswitch:<token>";

/// How the payer pays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkout {
    /// Paynow's hosted page: the payer's browser goes there.
    Web,
    /// Express checkout debiting a mobile wallet: Paynow pushes a prompt to `phone`.
    Wallet { method: &'static str, phone: String },
    /// Express checkout with a card token from an earlier tokenised payment.
    Token { method: &'static str, token: String },
}

impl Checkout {
    /// Reads the payer's choice (`req.method`): none or `web`, a wallet (which needs
    /// `phone`), or `vmc:<token>` / `zimswitch:<token>`. Method names ignore case.
    pub fn choose(method: Option<&str>, phone: Option<&str>) -> Result<Self, PluginError> {
        let method = method.map(str::trim).unwrap_or_default();
        if let Some((name, token)) = method.split_once(':') {
            let method = match name.trim().to_ascii_lowercase().as_str() {
                "vmc" => "vmc",
                "zimswitch" => "zimswitch",
                _ => return Err(unknown_method(method)),
            };
            let token = token.trim();
            if token.is_empty() {
                return Err(PluginError::invalid_input(format!(
                    "the method `{method}:` needs a card token after the colon"
                )));
            }
            return Ok(Self::Token {
                method,
                token: token.to_owned(),
            });
        }
        let method = match method.to_ascii_lowercase().as_str() {
            "" | "web" => return Ok(Self::Web),
            "ecocash" => "ecocash",
            "onemoney" => "onemoney",
            "innbucks" => "innbucks",
            // Some revisions of Paynow's docs call O'mari `omari`; the API takes `paygo`.
            "paygo" | "omari" => "paygo",
            _ => return Err(unknown_method(method)),
        };
        let phone = phone.filter(|p| !p.trim().is_empty()).ok_or_else(|| {
            PluginError::invalid_input(format!(
                "paying with {method} needs the payer's mobile number (payer phone), and none was given"
            ))
        })?;
        Ok(Self::Wallet {
            method,
            phone: local_phone(phone).ok_or_else(|| {
                PluginError::invalid_input(format!(
                    "paying with {method} needs a Zimbabwean mobile number (payer phone), \
                     like +263771234567 or 0771234567; {phone:?} is not one"
                ))
            })?,
        })
    }

    /// The endpoint under `<api_url>/interface/`.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Self::Web => "initiatetransaction",
            Self::Wallet { .. } | Self::Token { .. } => "remotetransaction",
        }
    }
}

fn unknown_method(method: &str) -> PluginError {
    PluginError::invalid_input(format!(
        "Paynow has no payment method {method:?}; use one of: {METHODS}"
    ))
}

/// A Zimbabwean number as Paynow's wallets want it: `+263 77 123 4567`, `263771234567` and
/// `0771234567` all become `0771234567`. `None` when it is not ten digits starting with 0
/// once spaces, dashes, dots and brackets are gone.
pub fn local_phone(phone: &str) -> Option<String> {
    let digits: String = phone
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let national = match digits.strip_prefix("+263").or(digits.strip_prefix("263")) {
        Some(rest) => format!("0{}", rest.strip_prefix('0').unwrap_or(rest)),
        None => digits,
    };
    let valid = national.len() == 10
        && national.starts_with('0')
        && national.bytes().all(|b| b.is_ascii_digit());
    valid.then_some(national)
}

/// The amount as Paynow takes it, `"25.00"`; zero or negative is invalid input.
pub fn amount_text(amount: &Money) -> Result<String, PluginError> {
    if amount.minor <= 0 {
        return Err(PluginError::invalid_input(format!(
            "a Paynow payment must be for more than zero (got {} minor units of {})",
            amount.minor, amount.currency
        )));
    }
    Ok(amount.to_decimal(EXPONENT))
}

/// The fields of the initiate request, signed, in the order Paynow's documentation lists
/// them: `id, reference, amount, additionalinfo, returnurl, resulturl, authemail`, then
/// `phone, method` or `method, token` for express checkout, `merchanttrace` (the reference,
/// when it fits in 32 characters), `status=Message` and `hash`.
pub fn request_fields(
    req: &PaymentRequest,
    checkout: &Checkout,
    integration: &Integration,
    auth_email: Option<&str>,
) -> Result<Vec<(&'static str, String)>, PluginError> {
    let amount = amount_text(&req.amount)?;
    let auth_email = auth_email.unwrap_or(req.payer.email.trim());
    if checkout != &Checkout::Web && auth_email.is_empty() {
        return Err(PluginError::invalid_input(
            "Paynow's express checkout needs an e-mail address: the payer has none and the \
             setting `auth_email` is not set",
        ));
    }
    let trace = merchant_trace(&req.reference);
    if let (Checkout::Token { method, .. }, None) = (checkout, trace) {
        return Err(PluginError::invalid_input(format!(
            "paying with a {method} token needs a merchant trace, and the reference {:?} is \
             longer than the {MERCHANT_TRACE_MAX} characters Paynow takes",
            req.reference
        )));
    }
    let mut message = Outbound::new()
        .field("id", integration.id.as_str())
        .field("reference", req.reference.as_str())
        .field("amount", amount)
        .optional("additionalinfo", Some(&req.description))
        .field("returnurl", req.return_url.as_str())
        .field("resulturl", req.callback_url.as_str())
        .optional("authemail", Some(auth_email));
    message = match checkout {
        Checkout::Web => message,
        Checkout::Wallet { method, phone } => message
            .field("phone", phone.as_str())
            .field("method", *method),
        Checkout::Token { method, token } => message
            .field("method", *method)
            .field("token", token.as_str()),
    };
    Ok(message
        .optional("merchanttrace", trace)
        .field("status", "Message")
        .signed(&integration.key))
}

/// The reference as `merchanttrace`, when it is short enough to be one.
pub fn merchant_trace(reference: &str) -> Option<&str> {
    (reference.chars().count() <= MERCHANT_TRACE_MAX).then_some(reference)
}

/// Starts the payment; see [`crate::Paynow`].
pub fn initiate(req: PaymentRequest) -> Result<PaymentStarted, PluginError> {
    let settings = Settings::load()?;
    let currency = &req.amount.currency;
    let integration = settings.integration(currency).ok_or_else(|| {
        PluginError::refused(format!(
            "Paynow is not set up for {currency} payments here (it takes {})",
            settings.currencies()
        ))
    })?;
    let checkout = Checkout::choose(req.method.as_deref(), req.payer.phone.as_deref())?;
    let fields = request_fields(&req, &checkout, integration, settings.auth_email.as_deref())?;
    // Before the request: a status update or a poll for this reference must find the
    // integration whose key signs it even if this call dies waiting for the reply.
    kv::set(
        &reference_key(&req.reference),
        integration.currency.as_bytes(),
    )?;
    let request = Request::post(settings.endpoint(checkout.endpoint())).form(&fields);
    let reply = send(request)?;
    started(&reply, &req.reference, &checkout, integration)
}

/// Reads an initiate reply: `status=Ok` with a verified hash, or `status=Error`.
fn started(
    reply: &Message,
    reference: &str,
    checkout: &Checkout,
    integration: &Integration,
) -> Result<PaymentStarted, PluginError> {
    let status = reply.get("status").unwrap_or_default();
    if !status.eq_ignore_ascii_case("ok") {
        return Err(refusal(reply, integration));
    }
    reply.verify(&integration.key).map_err(|why| {
        PluginError::internal(format!(
            "Paynow's reply did not verify ({why}) with the {} integration's key",
            integration.currency
        ))
    })?;
    let unexpected = |why: String| {
        PluginError::internal(format!("Paynow's reply is not one the plugin knows: {why}"))
    };
    let provider_reference = reply
        .get("paynowreference")
        .filter(|r| !r.is_empty())
        .unwrap_or(reference)
        .to_owned();
    let action = match checkout {
        Checkout::Web => {
            NextAction::Redirect(reply.require("browserurl").map_err(unexpected)?.into())
        }
        Checkout::Wallet { method, .. } | Checkout::Token { method, .. } => {
            NextAction::Instructions(instructions(reply, method))
        }
    };
    Ok(PaymentStarted {
        provider_reference,
        status: PaymentStatus::Pending,
        action,
        // The poll URL; when Paynow gave none, `poll` traces the payment instead.
        state: reply
            .get("pollurl")
            .filter(|url| !url.is_empty())
            .map(str::to_owned),
    })
}

/// What an error reply means. Paynow answers `Invalid id.` for an unknown integration and
/// `Invalid Hash.  Hash should start with: …` when the key is wrong: the settings need
/// fixing. Any other error (`Insufficient balance`, `Invalid amount field`, a method the
/// integration does not have) is Paynow saying no to this payment.
fn refusal(reply: &Message, integration: &Integration) -> PluginError {
    let status = reply.get("status").unwrap_or_default().trim();
    // Paynow's PHP and Java SDKs also expect `Invalid id.` as the status itself.
    let error = if status.eq_ignore_ascii_case("error") {
        reply.get("error").unwrap_or_default().trim()
    } else if is_invalid_id(status) {
        status
    } else {
        return PluginError::internal(format!(
            "Paynow answered with the status {status:?}, which the plugin does not know"
        ));
    };
    if is_invalid_id(error) || error.to_ascii_lowercase().starts_with("invalid hash") {
        return PluginError::misconfigured(format!(
            "Paynow refused the {} integration ({error}): check {}",
            integration.currency,
            integration.setting_names()
        ));
    }
    if error.is_empty() {
        return PluginError::refused("Paynow refused the payment without saying why");
    }
    PluginError::refused(error.to_owned())
}

fn is_invalid_id(text: &str) -> bool {
    text.trim_end_matches('.')
        .eq_ignore_ascii_case("invalid id")
}

/// The text the payer sees for express checkout: Paynow's instructions, and for InnBucks
/// and PayGo the authorisation code, its expiry and how to pay with it.
fn instructions(reply: &Message, method: &str) -> String {
    let field = |name: &str| reply.get(name).map(str::trim).filter(|v| !v.is_empty());
    let mut text = field("instructions")
        .unwrap_or("Approve the payment on your phone when it asks.")
        .replace("\r\n", "\n");
    if let Some(code) = field("authorizationcode") {
        text.push_str(&format!("\n\nAuthorisation code: {code}"));
        if let Some(expires) = field("authorizationexpires") {
            text.push_str(&format!("\nValid until: {expires}"));
        }
        if method == "innbucks" {
            let query = form_encode([("pymInnCode", code)]);
            text.push_str(&format!(
                "\nOpen in InnBucks: schinn.wbpycode://innbucks.co.zw?{query}"
            ));
        }
        if let Some(qr) = field("authorizationqr") {
            text.push_str(&format!("\nQR code: {qr}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_read_without_case_and_omari_is_paygo() {
        let wallet = |method: &'static str| Checkout::Wallet {
            method,
            phone: "0771111111".into(),
        };
        let phone = Some("+263771111111");
        for (given, expected) in [
            (None, Checkout::Web),
            (Some("web"), Checkout::Web),
            (Some(" "), Checkout::Web),
            (Some("ecocash"), wallet("ecocash")),
            (Some("EcoCash"), wallet("ecocash")),
            (Some("onemoney"), wallet("onemoney")),
            (Some("innbucks"), wallet("innbucks")),
            (Some("paygo"), wallet("paygo")),
            (Some("omari"), wallet("paygo")),
            (
                Some("vmc:{11111111-1111-1111-1111-111111111111}"),
                Checkout::Token {
                    method: "vmc",
                    token: "{11111111-1111-1111-1111-111111111111}".into(),
                },
            ),
            (
                Some("ZimSwitch:11112222"),
                Checkout::Token {
                    method: "zimswitch",
                    token: "11112222".into(),
                },
            ),
        ] {
            assert_eq!(
                Checkout::choose(given, phone).unwrap(),
                expected,
                "{given:?}"
            );
        }
        assert_eq!(Checkout::Web.endpoint(), "initiatetransaction");
        assert_eq!(wallet("ecocash").endpoint(), "remotetransaction");
    }

    #[test]
    fn unknown_methods_list_the_known_ones() {
        for method in ["paypal", "visa:123", "ecocash:0771111111"] {
            let err = Checkout::choose(Some(method), Some("0771111111")).unwrap_err();
            let PluginError::InvalidInput(message) = err else {
                panic!("{err:?}")
            };
            assert!(message.contains(&format!("{method:?}")), "{message}");
            assert!(
                message.contains("ecocash, onemoney, innbucks, paygo"),
                "{message}"
            );
        }
        let err = Checkout::choose(Some("vmc:"), None).unwrap_err();
        assert!(matches!(&err, PluginError::InvalidInput(m) if m.contains("card token")));
    }

    #[test]
    fn wallets_need_a_zimbabwean_phone() {
        let err = Checkout::choose(Some("ecocash"), None).unwrap_err();
        assert_eq!(
            err,
            PluginError::invalid_input(
                "paying with ecocash needs the payer's mobile number (payer phone), and none was given"
            )
        );
        let err = Checkout::choose(Some("onemoney"), Some("+27 82 123 4567")).unwrap_err();
        assert!(matches!(&err, PluginError::InvalidInput(m) if m.contains("Zimbabwean")));
        for (given, local) in [
            ("+263771111111", Some("0771111111")),
            ("+263 77 111 1111", Some("0771111111")),
            ("263771111111", Some("0771111111")),
            ("+2630771111111", Some("0771111111")),
            ("077-111-1111", Some("0771111111")),
            ("0771111111", Some("0771111111")),
            ("771111111", None),
            ("07711111112", None),
            ("+27821234567", None),
            ("07711x1111", None),
        ] {
            assert_eq!(local_phone(given).as_deref(), local, "{given}");
        }
    }

    #[test]
    fn amounts_have_two_places_and_must_be_positive() {
        for (minor, text) in [
            (1, "0.01"),
            (2500, "25.00"),
            (123_456, "1234.56"),
            (10, "0.10"),
        ] {
            assert_eq!(amount_text(&Money::new(minor, "USD")).unwrap(), text);
        }
        for minor in [0, -2500] {
            let err = amount_text(&Money::new(minor, "ZWG")).unwrap_err();
            assert!(matches!(err, PluginError::InvalidInput(_)), "{minor}");
        }
    }

    #[test]
    fn merchant_trace_is_the_reference_up_to_32_characters() {
        let short = "a".repeat(32);
        assert_eq!(merchant_trace(&short), Some(short.as_str()));
        assert_eq!(merchant_trace(&"a".repeat(33)), None);
    }
}
