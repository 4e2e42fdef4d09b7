//! The pay page of a pay link ([`keel_app::pay_links`]); what it shows and does is
//! [`keel_app::pay_page`], this module is its HTTP and HTML.
//!
//! - `GET /pay/{token}`: the invoice and one form per method the enabled gateways offer.
//!   Each form carries its own nonce and a form token, HMAC(token, nonce) under the
//!   installation's form key.
//! - `POST /pay/{token}` (form-encoded `csrf`, `nonce`, `gateway`, `method`, `phone`, at
//!   most [`MAX_FORM_BYTES`]): checks the form token in constant time, then starts the
//!   payment as the invoice's client with the nonce as its request key (a double click
//!   starts one payment) and answers 303: to the gateway's page, or to the return page.
//!   A refusal shows the page again with the reason and its status.
//! - `GET /pay/return/{reference}`: where a payment stands (gateways send the payer back
//!   here); while pending, a small script asks `GET /pay/status/{reference}` (JSON) every
//!   two seconds and, once it settles, puts the page's new content in place without a
//!   reload. Without JavaScript the page's Refresh button opens
//!   `/pay/return/{reference}?refresh=1`. Both the status and a refresh ask the gateway
//!   about a pending attempt at most every [`pay_page::ASK_EVERY`]
//!   ([`pay_page::refresh`]), so a late or lost callback still ends as paid.
//!
//! - `GET /pay/{token}/invoice.pdf`: the link's invoice as a PDF (what the page shows, as a
//!   file): a WhatsApp template's document header points here. The link's expiry and
//!   signature are checked as for the page; a refusal is the same error page.
//!
//! Links between these pages are relative (`return/{reference}`, `../{token}`), so they
//! work behind a proxy that serves Keel under a path. The pay link a browser paid with is
//! kept in a cookie (`keel_pay`, HttpOnly, SameSite=Lax, the pay pages' path only) so the
//! return page can link back to the invoice; without it the page shows no way back.

use crate::State;
use crate::error::ApiError;
use crate::pages::{Page, csp_nonce, error_page, guard_headers};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keel_app::gateway_payments::{ActionView, AttemptView, StartInput};
use keel_app::pay_links;
use keel_app::pay_page::{self, PageState};
use keel_store::attempts::AttemptState;
use serde::Serialize;

/// The largest pay form read (a few hundred bytes in practice); a larger one is 413.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// The longest value of one form field.
const MAX_FIELD_CHARS: usize = 200;
/// The cookie that remembers the pay link a browser paid with.
const COOKIE: &str = "keel_pay";
/// How long the cookie is kept, in seconds (a day: long enough to come back from a gateway).
const COOKIE_SECONDS: u32 = 24 * 3600;

pub fn router() -> Router<State> {
    Router::new()
        .route("/pay/{token}", get(show).post(submit))
        .route("/pay/{token}/invoice.pdf", get(pdf))
        .route("/pay/return/{reference}", get(returned))
        .route("/pay/status/{reference}", get(status))
}

/// The seller's name for the pages' header.
fn seller(state: &State) -> String {
    let name = state.app.billing.seller.name.trim();
    if name.is_empty() {
        "Billing".to_owned()
    } else {
        name.to_owned()
    }
}

/// `error` as a page for a person (the pay pages' refusals, a timeout of one of them).
pub(crate) fn refuse(state: &State, error: &ApiError) -> Response {
    error_page(&state.pages, &seller(state), error)
}

fn invalid_link() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "pay_link_invalid",
        "This pay link is not valid: it may have been copied incompletely or changed. Ask for a new one.",
    )
}

/// One form of the page, as its template reads it.
#[derive(Serialize)]
struct MethodForm {
    gateway: String,
    method: Option<String>,
    label: String,
    needs_phone: bool,
    nonce: String,
    csrf: String,
}

/// The form a refused payment came from: shown again with the same nonce when trying again
/// may work (the gateway did not answer), so the retry resumes the same attempt.
struct Retry<'a> {
    gateway: &'a str,
    method: &'a str,
    nonce: &'a str,
}

/// The pay page of `token`, with `error` (a refused payment) above the forms.
async fn pay_page_response(
    state: &State,
    token: &str,
    error: Option<&ApiError>,
    retry: Option<Retry<'_>>,
) -> Response {
    let app = &state.app;
    let page = match pay_page::open(app, token).await {
        Ok(p) => p,
        Err(e) => return refuse(state, &ApiError::from(e)),
    };
    let mut methods = Vec::with_capacity(page.methods.len());
    for m in page.methods {
        let nonce = match &retry {
            Some(r) if r.gateway == m.gateway && r.method == m.method.as_deref().unwrap_or("") => {
                r.nonce.to_owned()
            }
            _ => pay_links::new_nonce(),
        };
        let csrf = match pay_links::form_token(app, token, &nonce).await {
            Ok(c) => c,
            Err(e) => return refuse(state, &ApiError::from(e)),
        };
        methods.push(MethodForm {
            gateway: m.gateway,
            method: m.method,
            label: m.label,
            needs_phone: m.needs_phone,
            nonce,
            csrf,
        });
    }
    let nonce = csp_nonce();
    let state_word = match page.state {
        PageState::Payable => "payable",
        PageState::Paid => "paid",
        PageState::Cancelled => "cancelled",
        PageState::Closed => "closed",
    };
    let rendered = state.pages.render(
        "pay.html",
        minijinja::context! {
            seller => seller(state),
            csp_nonce => &nonce,
            invoice => &page.invoice,
            state => state_word,
            methods => &methods,
            error => error.map(|e| e.message.as_str()),
        },
    );
    match rendered {
        Ok(html) => Page {
            status: error.map_or(StatusCode::OK, |e| e.status),
            html,
            csp_nonce: nonce,
            headers: HeaderMap::new(),
        }
        .into_response(),
        Err(e) => crate::pages::broken(&e),
    }
}

async fn show(
    axum::extract::State(state): axum::extract::State<State>,
    token: Result<axum::extract::Path<String>, PathRejection>,
) -> Response {
    match token {
        Ok(axum::extract::Path(token)) => pay_page_response(&state, &token, None, None).await,
        Err(_) => refuse(&state, &invalid_link()),
    }
}

/// The link's invoice as a PDF.
async fn pdf(
    axum::extract::State(state): axum::extract::State<State>,
    token: Result<axum::extract::Path<String>, PathRejection>,
) -> Response {
    let Ok(axum::extract::Path(token)) = token else {
        return refuse(&state, &invalid_link());
    };
    match pay_page::pdf(&state.app, &token).await {
        Ok((number, bytes)) => crate::routes::invoices::pdf_response(&number, bytes),
        Err(e) => refuse(&state, &ApiError::from(e)),
    }
}

/// The pay form as posted.
#[derive(Debug, Default, PartialEq, Eq)]
struct PayForm {
    csrf: String,
    nonce: String,
    gateway: String,
    method: String,
    phone: String,
}

/// Decodes one `application/x-www-form-urlencoded` name or value strictly: `+` is a space,
/// `%` must start two hex digits, the result must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or("a `%` in the form is not followed by two hex digits")?;
                let hex = std::str::from_utf8(hex).map_err(|e| e.to_string())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the form's text is not UTF-8".to_owned())
}

/// Reads the pay form: known fields only, each at most once, no control characters.
fn parse_form(body: &[u8]) -> Result<PayForm, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the form is not text".to_owned())?;
    let mut form = PayForm::default();
    let mut seen = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| "a form field has no `=`".to_owned())?;
        let name = decode(name)?;
        let value = decode(value)?;
        if value.chars().count() > MAX_FIELD_CHARS {
            return Err(format!("the form field `{name}` is too long"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("the form field `{name}` holds a control character"));
        }
        let slot = match name.as_str() {
            "csrf" => &mut form.csrf,
            "nonce" => &mut form.nonce,
            "gateway" => &mut form.gateway,
            "method" => &mut form.method,
            "phone" => &mut form.phone,
            _ => return Err("the form has a field this page does not send".to_owned()),
        };
        if seen.contains(&name) {
            return Err(format!("the form field `{name}` is given twice"));
        }
        *slot = value;
        seen.push(name);
    }
    Ok(form)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Where the payer goes after starting `attempt`: the gateway's page while it waits for
/// the payer there (an http(s) address only), else the return page.
fn next_location(attempt: &AttemptView) -> String {
    if attempt.state == AttemptState::Pending
        && let Some(ActionView::Redirect { url }) = &attempt.action
        && (url.starts_with("https://") || url.starts_with("http://"))
    {
        return url.clone();
    }
    // Relative to /pay/{token}: /pay/return/{reference}. References are letters, digits
    // and dashes.
    format!("return/{}", attempt.reference)
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    guard_headers(res.headers_mut(), None);
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().insert(header::SET_COOKIE, c);
    }
    res
}

async fn submit(
    axum::extract::State(state): axum::extract::State<State>,
    token: Result<axum::extract::Path<String>, PathRejection>,
    req: Request<Body>,
) -> Response {
    let Ok(axum::extract::Path(token)) = token else {
        return refuse(&state, &invalid_link());
    };
    let (parts, body) = req.into_parts();
    if !is_form(&parts.headers) {
        return refuse(
            &state,
            &ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the form as application/x-www-form-urlencoded, as the page does.",
            ),
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(
            &state,
            &ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The form sent is larger than this page accepts.",
            ),
        );
    };
    let form = match parse_form(&bytes) {
        Ok(f) => f,
        Err(why) => {
            return refuse(
                &state,
                &ApiError::bad_request(
                    "invalid_form",
                    format!("The form could not be read: {why}."),
                ),
            );
        }
    };
    let app = &state.app;
    // The link first: a forged or expired one is told so whatever the form holds.
    if let Err(e) = pay_links::verify(app, &token).await {
        return refuse(&state, &ApiError::from(e));
    }
    let genuine = !form.nonce.is_empty()
        && !form.csrf.is_empty()
        && match pay_links::check_form_token(app, &token, &form.nonce, &form.csrf).await {
            Ok(ok) => ok,
            Err(e) => return refuse(&state, &ApiError::from(e)),
        };
    if !genuine {
        return refuse(
            &state,
            &ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_form_token",
                "This form is not one this page gave out (or it was changed). Open the pay link again and use the form there.",
            ),
        );
    }
    let input = StartInput {
        gateway: form.gateway.clone(),
        method: Some(form.method.clone()).filter(|m| !m.trim().is_empty()),
        phone: Some(form.phone.clone()).filter(|p| !p.trim().is_empty()),
    };
    match pay_page::pay(app, &token, &input, &form.nonce).await {
        Ok(attempt) => {
            let secure = if app.payments.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            // No Path: the cookie's path is the pay pages' folder, whatever prefix a proxy
            // serves Keel under.
            let cookie = format!(
                "{COOKIE}={token}; Max-Age={COOKIE_SECONDS}; HttpOnly; SameSite=Lax{secure}"
            );
            see_other(&next_location(&attempt), Some(cookie))
        }
        Err(e) => {
            let error = ApiError::from(e);
            let retry = (error.status == StatusCode::SERVICE_UNAVAILABLE).then_some(Retry {
                gateway: &form.gateway,
                method: &form.method,
                nonce: &form.nonce,
            });
            pay_page_response(&state, &token, Some(&error), retry).await
        }
    }
}

/// The pay link this browser paid with, from the cookie.
fn remembered_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The return page's query: `refresh` (any value) when the payer pressed Refresh.
#[derive(serde::Deserialize)]
struct ReturnQuery {
    refresh: Option<String>,
}

async fn returned(
    axum::extract::State(state): axum::extract::State<State>,
    reference: Result<axum::extract::Path<String>, PathRejection>,
    query: Result<axum::extract::Query<ReturnQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(axum::extract::Path(reference)) = reference else {
        return refuse(&state, &ApiError::not_found("payment attempt"));
    };
    let app = &state.app;
    // The payer's arrival shows what Keel knows (the callback usually comes first); a
    // press of Refresh also asks the gateway.
    let asked = query.is_ok_and(|q| q.refresh.is_some());
    let shown = if asked {
        pay_page::refresh(app, &reference).await
    } else {
        pay_page::attempt(app, &reference).await
    };
    let attempt = match shown {
        Ok(a) => a,
        Err(e) => return refuse(&state, &ApiError::from(e)),
    };
    // A way back to the invoice only with the link this browser paid that invoice with.
    let mut pay_url = None;
    if let Some(token) = remembered_link(&headers)
        && pay_links::verify(app, &token).await.ok() == Some(attempt.invoice.id)
    {
        pay_url = Some(format!("../{token}"));
    }
    let nonce = csp_nonce();
    let rendered = state.pages.render(
        "pay_return.html",
        minijinja::context! {
            seller => seller(&state),
            csp_nonce => &nonce,
            attempt => &attempt,
            pay_url => pay_url,
            status_url => format!("../status/{}", attempt.reference),
            refresh_url => format!("{}?refresh=1", attempt.reference),
        },
    );
    match rendered {
        Ok(html) => Page {
            status: StatusCode::OK,
            html,
            csp_nonce: nonce,
            headers: HeaderMap::new(),
        }
        .into_response(),
        Err(e) => crate::pages::broken(&e),
    }
}

/// What the return page's script asks.
#[derive(Serialize)]
struct StatusAnswer {
    state: AttemptState,
    provider_status: Option<String>,
    settled: bool,
}

async fn status(
    axum::extract::State(state): axum::extract::State<State>,
    reference: Result<axum::extract::Path<String>, PathRejection>,
) -> Response {
    let mut res = match reference {
        Err(_) => ApiError::not_found("payment attempt").into_response(),
        Ok(axum::extract::Path(reference)) => {
            match pay_page::refresh(&state.app, &reference).await {
                Ok(a) => axum::Json(StatusAnswer {
                    state: a.state,
                    provider_status: a.provider_status,
                    settled: a.settled,
                })
                .into_response(),
                Err(e) => ApiError::from(e).into_response(),
            }
        }
    };
    guard_headers(res.headers_mut(), None);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_read_strictly() {
        let form =
            parse_form(b"csrf=ab&nonce=cd&gateway=bank-transfer&method=&phone=%2B263+77").unwrap();
        assert_eq!(
            form,
            PayForm {
                csrf: "ab".into(),
                nonce: "cd".into(),
                gateway: "bank-transfer".into(),
                method: String::new(),
                phone: "+263 77".into(),
            }
        );
        for bad in [
            &b"csrf=%zz"[..],
            b"csrf=%4",
            b"csrf=%+1",
            b"csrf",
            b"csrf=a&csrf=b",
            b"admin=1",
            b"phone=%00",
            b"phone=%0a",
            b"phone=%ff",
            b"\xff=1",
        ] {
            assert!(parse_form(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_form(format!("phone={}", "1".repeat(201)).as_bytes()).is_err());
        assert_eq!(parse_form(b"").unwrap(), PayForm::default());
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; keel_pay=v1.2.3.ab; b=2"),
        );
        assert_eq!(remembered_link(&h).as_deref(), Some("v1.2.3.ab"));
        assert_eq!(remembered_link(&HeaderMap::new()), None);
    }
}
