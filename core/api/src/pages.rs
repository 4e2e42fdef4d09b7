//! The web pages: server-rendered HTML from minijinja templates embedded in the binary,
//! each replaceable by a file of the same name in the host's theme folder
//! (`[server] theme_dir`, `<theme_dir>/web/<name>`), read once when the server starts.
//!
//! Every page goes out with the same guard headers ([`Page`]): a Content-Security-Policy
//! that allows only this origin plus the inline style and script carrying the response's
//! nonce, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` (a pay link in the URL
//! must not leak to another site), `Cache-Control: no-store` and `nosniff`.
//!
//! - [`pay`]: the pay page of a pay link (`/pay/…`).

pub mod pay;

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::path::Path;

/// The templates Keel ships, by name: what a theme may replace.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/web/base.html")),
    ("keel.css", include_str!("../templates/web/keel.css")),
    ("pay.html", include_str!("../templates/web/pay.html")),
    (
        "pay_return.html",
        include_str!("../templates/web/pay_return.html"),
    ),
    (
        "pay_error.html",
        include_str!("../templates/web/pay_error.html"),
    ),
];

/// The pages' templates, built-in or the theme's.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates.
    pub fn builtin() -> Templates {
        Templates::load(None).expect("the built-in templates parse")
    }

    /// The templates with `<theme_dir>/web/<name>` replacing the built-in `name` where the
    /// file exists. A file that cannot be read or does not parse is an error naming it.
    pub fn load(theme_dir: Option<&Path>) -> Result<Templates, String> {
        let mut env = Environment::new();
        // Rendering is bounded: a theme's runaway loop ends as an error, not a hung request.
        env.set_fuel(Some(200_000));
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        for &(name, builtin) in TEMPLATES {
            let themed = match theme_dir {
                Some(dir) => {
                    let path = dir.join("web").join(name);
                    match std::fs::read_to_string(&path) {
                        Ok(text) => Some(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                    }
                }
                None => None,
            };
            let added = match themed {
                Some(text) => env.add_template_owned(name, text),
                None => env.add_template(name, builtin),
            };
            added.map_err(|e| format!("web template {name}: {e}"))?;
        }
        Ok(Templates { env })
    }

    /// Renders `name` with `context`.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(context)
    }
}

/// A rendered page with its status and the pages' guard headers.
pub struct Page {
    pub status: StatusCode,
    pub html: String,
    /// The nonce of this response's inline style and script.
    pub csp_nonce: String,
    /// More headers (`Location`, `Set-Cookie`).
    pub headers: HeaderMap,
}

/// A fresh nonce for one response's Content-Security-Policy.
pub fn csp_nonce() -> String {
    keel_app::pay_links::new_nonce()
}

/// The guard headers every page and the pages' JSON carry.
pub fn guard_headers(headers: &mut HeaderMap, csp_nonce: Option<&str>) {
    let csp = match csp_nonce {
        // No `form-action`: the pay form's answer redirects the browser to the gateway's
        // site, which a `form-action 'self'` would block in some browsers.
        Some(n) => format!(
            "default-src 'self'; script-src 'nonce-{n}'; style-src 'nonce-{n}'; img-src 'self'; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        ),
        None => "default-src 'none'; frame-ancestors 'none'".to_owned(),
    };
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, &csp);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.html,
        )
            .into_response();
        guard_headers(res.headers_mut(), Some(&self.csp_nonce));
        res.headers_mut().extend(self.headers);
        res
    }
}

/// A page that could not be rendered (a theme's template failing at run time): logged,
/// answered with a plain sentence.
pub fn broken(e: &minijinja::Error) -> Response {
    tracing::error!(error = %e, "a web template failed to render");
    let mut res = (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This page could not be shown; the problem has been logged.",
    )
        .into_response();
    guard_headers(res.headers_mut(), None);
    res
}

/// The title an error page gets for its status.
fn error_title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "This request could not be read",
        403 => "This link cannot be used",
        404 => "Not found",
        410 => "This link has expired",
        413 => "This request is too large",
        415 => "This request could not be read",
        503 => "Please try again shortly",
        s if s >= 500 => "Something went wrong",
        _ => "This cannot be done",
    }
}

/// The error page of `error`: its status, a title for it and its sentence (an internal
/// error's cause was logged by [`ApiError::internal`] and is not shown).
pub fn error_page(templates: &Templates, seller: &str, error: &ApiError) -> Response {
    let nonce = csp_nonce();
    let rendered = templates.render(
        "pay_error.html",
        minijinja::context! {
            seller => seller,
            csp_nonce => &nonce,
            title => error_title(error.status),
            message => &error.message,
            code => &error.code,
        },
    );
    match rendered {
        Ok(html) => {
            let mut headers = HeaderMap::new();
            if let Some(secs) = error.retry_after_secs
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                headers.insert(header::RETRY_AFTER, v);
            }
            Page {
                status: error.status,
                html,
                csp_nonce: nonce,
                headers,
            }
            .into_response()
        }
        Err(e) => broken(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_templates_parse_and_a_theme_replaces_one() {
        let builtin = Templates::builtin();
        let html = builtin
            .render(
                "pay_error.html",
                minijinja::context! { seller => "<Acme>", csp_nonce => "n", title => "T", message => "m" },
            )
            .unwrap();
        assert!(html.contains("&lt;Acme&gt;"), "values are escaped: {html}");
        assert!(html.contains("<style nonce=\"n\">"), "{html}");

        let dir = std::env::temp_dir().join(format!("keel-theme-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("web")).unwrap();
        std::fs::write(dir.join("web/pay_error.html"), "themed {{ message }}").unwrap();
        let themed = Templates::load(Some(&dir)).unwrap();
        let html = themed
            .render("pay_error.html", minijinja::context! { message => "m" })
            .unwrap();
        assert_eq!(html, "themed m");
        std::fs::write(dir.join("web/pay.html"), "{% if %}").unwrap();
        let e = Templates::load(Some(&dir)).unwrap_err();
        assert!(e.contains("pay.html"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
