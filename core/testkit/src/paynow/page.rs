//! The fake's HTML: the checkout page a payer's browser sees at `browserurl` (plain forms, no
//! script, so a headless browser or an HTTP client can press its buttons) and an index of
//! transactions for a person running `keel-fake`.

use super::{Transaction, is_pending, wire};

/// The page at `/Payment/ConfirmPayment/<paynowreference>`; `path` is the path it was asked
/// for, which its forms post back to.
pub(super) fn checkout(t: &Transaction, path: &str) -> String {
    let amount = wire::two_places(&t.amount).unwrap_or_else(|| t.amount.clone());
    let info = t
        .field("additionalinfo")
        .map(|info| {
            format!(
                "<dt>Details</dt><dd id=\"additionalinfo\">{}</dd>",
                html(info)
            )
        })
        .unwrap_or_default();
    let actions = if is_pending(&t.status) {
        let form = |action: &str, label: &str| {
            format!(
                "<form method=\"post\" action=\"{path}\">\
                 <input type=\"hidden\" name=\"action\" value=\"{action}\">\
                 <button type=\"submit\" id=\"{action}\">{label}</button></form>\n",
                path = html(path),
            )
        };
        format!("{}{}", form("pay", "Pay"), form("cancel", "Cancel"))
    } else if t.return_url.is_empty() {
        "<p>This transaction is closed.</p>\n".to_owned()
    } else {
        format!(
            "<p>This transaction is closed. <a id=\"return\" href=\"{}\">Return to the merchant</a></p>\n",
            html(&t.return_url)
        )
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <title>Paynow (fake): payment {pref}</title></head>\n<body>\n\
         <h1>Paynow test payment</h1>\n\
         <p>Keel's fake Paynow: no money moves.</p>\n\
         <dl><dt>Reference</dt><dd id=\"reference\">{reference}</dd>\
         <dt>Amount</dt><dd id=\"amount\">{amount}</dd>{info}\
         <dt>Paynow reference</dt><dd id=\"paynowreference\">{pref}</dd>\
         <dt>Status</dt><dd id=\"status\">{status}</dd></dl>\n{actions}</body></html>\n",
        pref = html(&t.paynow_reference),
        reference = html(&t.reference),
        amount = html(&amount),
        status = html(&t.status),
    )
}

/// `/`: every transaction, newest first, each linked to its checkout page.
pub(super) fn index(transactions: &[Transaction]) -> String {
    let mut rows = String::new();
    for t in transactions.iter().rev() {
        let link = format!("/Payment/ConfirmPayment/{}", t.paynow_reference);
        rows.push_str(&format!(
            "<tr><td><a href=\"{link}\">{pref}</a></td><td>{reference}</td><td>{amount}</td>\
             <td>{method}</td><td>{phone}</td><td>{status}</td></tr>\n",
            link = html(&link),
            pref = html(&t.paynow_reference),
            reference = html(&t.reference),
            amount = html(&t.amount),
            method = html(t.method.as_deref().unwrap_or("web")),
            phone = html(t.phone.as_deref().unwrap_or("")),
            status = html(&t.status),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Paynow (fake)</title></head>\n\
         <body>\n<h1>Paynow (fake): transactions</h1>\n\
         <table><tr><th>Paynow reference</th><th>Reference</th><th>Amount</th><th>Method</th>\
         <th>Phone</th><th>Status</th></tr>\n{rows}</table>\n</body></html>\n"
    )
}

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
