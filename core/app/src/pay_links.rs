//! Pay links: a signed, expiring capability to pay one invoice, and the installation's key
//! that signs them.
//!
//! A link is `{public_url}/pay/{token}`, the token `v1.{invoice id}.{expiry}.{mac}`:
//! the expiry in Unix seconds, the mac the HMAC-SHA256 of `keel-pay-link/v1/{invoice
//! id}/{expiry}` under the link key, in lowercase hex. Verification parses the token
//! strictly (canonical numbers only, so one link has one spelling), compares the mac in
//! constant time, and only then reads the expiry: a forged token learns nothing, an expired
//! genuine one is told so. Whoever holds a link may see that invoice's number, dates, lines
//! and amounts and pay it through an enabled gateway, acting as the invoice's client
//! ([`crate::Ctx::pay_link`]) and nothing more.
//!
//! The key: `[server] link_secret` when the host sets it, else one Keel makes at first need
//! and keeps in the database (`site_secrets`, row `pay_links`, insert-if-absent so every
//! process agrees). Two keys are derived from it, one for links and one for the pay page's
//! form tokens ([`form_token`]), so a value signed for one purpose never passes for the
//! other. Changing the secret voids every link sent.
//!
//! A leaf of the effects layer: [`crate::notify`] puts a link into invoice messages.

use crate::{App, AppError, Ctx};
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use keel_domain::access::Permission;
use keel_domain::ids::InvoiceId;
use keel_domain::lifecycle::InvoiceStatus;
use keel_store::Tx;
use serde::Serialize;
use sha2::Sha256;
use std::sync::OnceLock;
use utoipa::ToSchema;

type HmacSha256 = Hmac<Sha256>;

/// The `site_secrets` row holding the key Keel made.
pub const SECRET_NAME: &str = "pay_links";
/// How long a link works when `[payments] link_days` is not set.
pub const DEFAULT_LINK_DAYS: u32 = 30;
/// The shortest `[server] link_secret` accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The longest token read; anything longer is refused before any work.
const MAX_TOKEN_CHARS: usize = 200;
const VERSION: &str = "v1";

/// How pay links are made (`[server] link_secret`, `[payments] link_days`).
#[derive(Clone)]
pub struct Settings {
    /// The host's secret; none: Keel's own, kept in the database.
    pub secret: Option<String>,
    /// Days a link works from the moment it is made.
    pub link_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secret: None,
            link_days: DEFAULT_LINK_DAYS,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("link_days", &self.link_days)
            .finish()
    }
}

/// The two keys derived from the installation's secret.
#[derive(Clone)]
struct Keys {
    link: [u8; 32],
    form: [u8; 32],
}

impl Keys {
    fn derive(secret: &[u8]) -> Keys {
        let sub = |purpose: &[u8]| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(purpose);
            mac.finalize().into_bytes().into()
        };
        Keys {
            link: sub(b"keel pay link key"),
            form: sub(b"keel pay form key"),
        }
    }
}

/// The pay links' settings and the keys, loaded once (an `App` and its clones share them).
pub struct Links {
    settings: Settings,
    /// Set from the host's secret at once, or from the database's after the first read of a
    /// committed row. Never from a row this process wrote in a transaction that might still
    /// roll back (see [`Links::keys_in`]).
    keys: OnceLock<Keys>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for Links {
    fn default() -> Self {
        Links::new(Settings::default())
    }
}

impl Links {
    pub fn new(settings: Settings) -> Links {
        let keys = OnceLock::new();
        if let Some(secret) = &settings.secret {
            let _ = keys.set(Keys::derive(secret.as_bytes()));
        }
        Links { settings, keys }
    }

    pub fn link_days(&self) -> u32 {
        self.settings.link_days
    }

    /// The keys, reading (or making) the database's secret when the host set none.
    async fn keys(&self, app: &App) -> Result<Keys, AppError> {
        if let Some(k) = self.keys.get() {
            return Ok(k.clone());
        }
        let stored =
            keel_store::site_secrets::get_or_insert(&app.db, SECRET_NAME, &new_secret(), app.now())
                .await?;
        // Committed: every process now signs with this one.
        Ok(self
            .keys
            .get_or_init(|| Keys::derive(stored.as_bytes()))
            .clone())
    }

    /// The keys inside the caller's transaction (a notification queued with its invoice).
    /// A secret written here commits with the caller, so it is not kept until it is read
    /// again outside a transaction.
    async fn keys_in(&self, tx: &mut Tx, app: &App) -> Result<Keys, AppError> {
        if let Some(k) = self.keys.get() {
            return Ok(k.clone());
        }
        let stored =
            keel_store::site_secrets::get_or_insert_in(tx, SECRET_NAME, &new_secret(), app.now())
                .await?;
        Ok(Keys::derive(stored.as_bytes()))
    }

    /// Loads the key now (at start-up), so the first page is not the one that makes it.
    pub async fn warm(&self, app: &App) -> Result<(), AppError> {
        self.keys(app).await.map(|_| ())
    }
}

/// 32 random bytes, hex.
fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn link_mac(keys: &Keys, invoice: i64, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(&keys.link).expect("HMAC takes any key");
    mac.update(format!("keel-pay-link/{VERSION}/{invoice}/{expires}").as_bytes());
    mac
}

fn sign(keys: &Keys, invoice: InvoiceId, expires_at: DateTime<Utc>) -> String {
    let expires = expires_at.timestamp();
    let tag = link_mac(keys, invoice.get(), expires)
        .finalize()
        .into_bytes();
    format!("{VERSION}.{}.{expires}.{}", invoice.get(), hex::encode(tag))
}

/// A positive decimal number written the one way (`12`, never `012` or `+12`).
fn canonical_number(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.len() > 1 && text.starts_with('0') {
        return None;
    }
    text.parse().ok().filter(|n| *n > 0)
}

fn refused() -> AppError {
    AppError::Unauthorized {
        code: "pay_link_invalid",
        message: "This pay link is not valid: it may have been copied incompletely or changed. \
                  Ask for a new one."
            .to_owned(),
    }
}

/// The invoice a token names, when the token is genuine and not expired at `now`.
fn check(keys: &Keys, token: &str, now: DateTime<Utc>) -> Result<InvoiceId, AppError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(refused());
    }
    let mut parts = token.split('.');
    let (Some(VERSION), Some(invoice), Some(expires), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(refused());
    };
    let (Some(invoice), Some(expires)) = (canonical_number(invoice), canonical_number(expires))
    else {
        return Err(refused());
    };
    // Lowercase hex only: one spelling per link.
    if tag.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(refused());
    }
    let tag = hex::decode(tag).map_err(|_| refused())?;
    link_mac(keys, invoice, expires)
        .verify_slice(&tag)
        .map_err(|_| refused())?;
    let expires_at = DateTime::<Utc>::from_timestamp(expires, 0).ok_or_else(refused)?;
    if now >= expires_at {
        return Err(AppError::Unauthorized {
            code: "pay_link_expired",
            message: format!(
                "This pay link expired on {}. Ask for a new one.",
                expires_at.format("%Y-%m-%d")
            ),
        });
    }
    Ok(InvoiceId(invoice))
}

/// A pay link and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PayLink {
    /// `{public_url}/pay/{token}`: open it in a browser to pay the invoice.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

fn link(app: &App, keys: &Keys, invoice: InvoiceId) -> PayLink {
    let days = i64::from(app.pay_links.link_days().max(1));
    let expires_at = app.now() + Duration::days(days);
    let base = app.payments.public_url.trim_end_matches('/');
    PayLink {
        url: format!("{base}/pay/{}", sign(keys, invoice, expires_at)),
        expires_at,
    }
}

/// A pay link for `invoice`: staff for any invoice, a reseller or a client for one in its
/// scope (another's is not found). A draft has nothing to pay yet.
pub async fn pay_link(app: &App, ctx: &Ctx, invoice: InvoiceId) -> Result<PayLink, AppError> {
    ctx.require(Permission::BillingRead)?;
    let inv = keel_store::invoices::get_invoice(&app.db, ctx.actor.scope(), invoice)
        .await?
        .ok_or(AppError::NotFound { what: "invoice" })?;
    if inv.status == InvoiceStatus::Draft {
        return Err(AppError::conflict(
            "invoice_not_issued",
            format!(
                "invoice {} is a draft; issue it before sending a pay link",
                inv.display()
            ),
        ));
    }
    let keys = app.pay_links.keys(app).await?;
    Ok(link(app, &keys, inv.id))
}

/// The pay link of an invoice, made inside the caller's transaction (for a message queued
/// with it). The caller decides whether the invoice is one to pay.
pub async fn url_in(tx: &mut Tx, app: &App, invoice: InvoiceId) -> Result<String, AppError> {
    let keys = app.pay_links.keys_in(tx, app).await?;
    Ok(link(app, &keys, invoice).url)
}

/// A link to `invoice`'s PDF: its pay link's `/invoice.pdf`, working as long as the pay
/// link does ([`crate::pay_page::pdf`]). Made when a message carrying the invoice is sent,
/// so it is fresh however long the message waited.
pub async fn pdf_url(app: &App, invoice: InvoiceId) -> Result<String, AppError> {
    let keys = app.pay_links.keys(app).await?;
    Ok(format!("{}/invoice.pdf", link(app, &keys, invoice).url))
}

/// The invoice a pay link's token names: refused (`pay_link_invalid`, 403) when it is
/// malformed or was not made with this installation's key, `pay_link_expired` (410) when
/// its time is up.
pub async fn verify(app: &App, token: &str) -> Result<InvoiceId, AppError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(refused());
    }
    let keys = app.pay_links.keys(app).await?;
    check(&keys, token, app.now())
}

fn form_mac(keys: &Keys, token: &str, nonce: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(&keys.form).expect("HMAC takes any key");
    // Lengths first, so no two (token, nonce) pairs write the same bytes.
    mac.update(format!("{}:{}:", token.len(), nonce.len()).as_bytes());
    mac.update(token.as_bytes());
    mac.update(nonce.as_bytes());
    mac
}

/// A fresh nonce for one rendering of the pay page's forms: 16 random bytes, hex. It is
/// also the request key of the payment the form starts (a double click starts one).
pub fn new_nonce() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The form token of the pay page for `token` rendered with `nonce`: HMAC-SHA256 under the
/// form key, hex.
pub async fn form_token(app: &App, token: &str, nonce: &str) -> Result<String, AppError> {
    let keys = app.pay_links.keys(app).await?;
    Ok(hex::encode(
        form_mac(&keys, token, nonce).finalize().into_bytes(),
    ))
}

/// Whether `given` is the form token of (`token`, `nonce`), compared in constant time.
pub async fn check_form_token(
    app: &App,
    token: &str,
    nonce: &str,
    given: &str,
) -> Result<bool, AppError> {
    let keys = app.pay_links.keys(app).await?;
    let Ok(given) = hex::decode(given) else {
        return Ok(false);
    };
    Ok(form_mac(&keys, token, nonce).verify_slice(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn keys() -> Keys {
        Keys::derive(b"0123456789abcdef0123456789abcdef")
    }

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, day, 9, 0, 0).unwrap()
    }

    fn code(e: AppError) -> &'static str {
        match e {
            AppError::Unauthorized { code, .. } => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_names_its_invoice_until_it_expires() {
        let token = sign(&keys(), InvoiceId(42), at(20));
        assert!(token.starts_with("v1.42."), "{token}");
        assert_eq!(check(&keys(), &token, at(10)).unwrap(), InvoiceId(42));
        assert_eq!(
            code(check(&keys(), &token, at(20)).unwrap_err()),
            "pay_link_expired"
        );
        assert_eq!(
            code(check(&keys(), &token, at(25)).unwrap_err()),
            "pay_link_expired"
        );
    }

    #[test]
    fn a_changed_or_malformed_token_is_refused() {
        let token = sign(&keys(), InvoiceId(42), at(20));
        let expires = at(20).timestamp();
        let tag = token.rsplit('.').next().unwrap();
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let later = at(28).timestamp();
        let table = [
            String::from_utf8(flipped).unwrap(),
            format!("v1.43.{expires}.{tag}"),
            format!("v1.042.{expires}.{tag}"),
            format!("v1.42.{later}.{tag}"),
            format!("v2.42.{expires}.{tag}"),
            format!("v1.42.{expires}.{}", tag.to_uppercase()),
            format!("v1.42.{expires}.{tag}.x"),
            format!("v1.42.{expires}"),
            format!("v1.-42.{expires}.{tag}"),
            "".to_owned(),
            "v1...".to_owned(),
            "x".repeat(5000),
        ];
        for bad in table {
            assert_eq!(
                code(check(&keys(), &bad, at(10)).unwrap_err()),
                "pay_link_invalid",
                "{bad}"
            );
        }
        // Another installation's key.
        let other = Keys::derive(b"another secret, another installation");
        assert_eq!(
            code(check(&other, &token, at(10)).unwrap_err()),
            "pay_link_invalid"
        );
    }

    #[test]
    fn form_tokens_are_bound_to_the_link_and_the_nonce() {
        let k = keys();
        let tag = |t: &str, n: &str| hex::encode(form_mac(&k, t, n).finalize().into_bytes());
        assert_eq!(tag("a", "n1"), tag("a", "n1"));
        assert_ne!(tag("a", "n1"), tag("a", "n2"));
        assert_ne!(tag("a", "n1"), tag("b", "n1"));
        assert_ne!(tag("ab", "c"), tag("a", "bc"));
        // The link key and the form key differ: a link's mac is no form token.
        assert_ne!(k.link, k.form);
    }
}
