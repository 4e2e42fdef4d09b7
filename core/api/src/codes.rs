//! Every error code the API answers with, each with its one HTTP status.
//!
//! One kind of bad input gets one code, and one code one status, on every route:
//! [`ApiError`](crate::error::ApiError) takes a use case's error's status from this table
//! (`status_of`), so a code cannot answer 409 on one route and 422 on another.
//! `tests/error_codes.rs` keeps the table true: every code the sources can produce is
//! listed here with the status its constructor gives, every code listed is produced
//! somewhere, and every error code the OpenAPI document or `docs/` mention (as
//! "409" and the code in backticks) is listed with that status.

use axum::http::StatusCode;

/// (code, status), sorted by code.
pub const CODES: &[(&str, u16)] = &[
    ("account_exists", 409),
    ("account_not_found", 404),
    ("addon_alone", 422),
    ("addon_not_offered", 422),
    ("already_reversed", 409),
    ("amount_mismatch", 409),
    ("amount_overflow", 422),
    ("amounts_not_allowed", 422),
    ("amounts_required", 422),
    ("anniversary_off_billing_day", 422),
    ("api_key_client_closed", 401),
    ("api_key_revoked", 401),
    ("billing_cycle_not_recurring", 422),
    ("billing_run_contended", 409),
    ("callback_refused", 400),
    ("cannot_deactivate_self", 409),
    ("client_changed", 422),
    ("client_closed", 409),
    ("client_has_history", 409),
    ("code_taken", 409),
    ("conflict", 409),
    ("control_account", 409),
    ("credit_exceeds_invoice", 422),
    ("credit_limit_below_spent", 409),
    ("currency_mismatch", 422),
    ("cycle_not_allowed", 422),
    ("date_out_of_range", 422),
    ("date_outside_billing_period", 422),
    ("delivery_held", 409),
    ("delivery_pending", 409),
    ("discount_too_large", 422),
    ("duplicate_addon", 422),
    ("duplicate_amount", 422),
    ("duplicate_cycle", 422),
    ("duplicate_line", 422),
    ("duplicate_option", 422),
    ("duplicate_option_name", 422),
    ("duplicate_price", 422),
    ("duplicate_product", 422),
    ("duplicate_sequence", 422),
    ("duplicate_value_name", 422),
    ("email_taken", 409),
    ("empty_credit_note", 422),
    ("empty_invoice", 422),
    ("empty_number_format", 422),
    ("empty_order", 422),
    ("empty_proration_period", 422),
    ("endpoint_disabled", 409),
    ("ends_before_start", 422),
    ("entry_not_found", 404),
    ("exchange_rate_exists", 409),
    ("field_not_writable", 403),
    ("forbidden", 403),
    ("gateway_misconfigured", 503),
    ("gateway_unavailable", 503),
    ("idempotency_key_in_use", 409),
    ("idempotency_key_required", 400),
    ("idempotency_key_reused", 422),
    ("idempotent_secret_not_replayed", 409),
    ("insufficient_wallet_balance", 409),
    ("internal", 500),
    ("invalid_address", 422),
    ("invalid_allocation", 422),
    ("invalid_amount", 422),
    ("invalid_api_key", 401),
    ("invalid_billing_day", 422),
    ("invalid_body", 400),
    ("invalid_character", 422),
    ("invalid_country", 422),
    ("invalid_credentials", 401),
    ("invalid_credit_limit", 422),
    ("invalid_cursor", 422),
    ("invalid_date", 422),
    ("invalid_days", 422),
    ("invalid_due_on", 422),
    ("invalid_dunning_policy", 422),
    ("invalid_email", 422),
    ("invalid_events", 422),
    ("invalid_exchange_rate", 422),
    ("invalid_field", 422),
    ("invalid_form", 400),
    ("invalid_form_token", 403),
    ("invalid_gateway", 422),
    ("invalid_idempotency_key", 400),
    ("invalid_json", 400),
    ("invalid_language", 422),
    ("invalid_lead_days", 422),
    ("invalid_limit", 422),
    ("invalid_lines", 422),
    ("invalid_max_uses", 422),
    ("invalid_method", 422),
    ("invalid_metrics_token", 401),
    ("invalid_percent", 422),
    ("invalid_phone", 422),
    ("invalid_promo_code", 422),
    ("invalid_promo_value", 422),
    ("invalid_proration_days", 422),
    ("invalid_quantity", 422),
    ("invalid_quantity_range", 422),
    ("invalid_query", 400),
    ("invalid_region", 422),
    ("invalid_sequence_width", 422),
    ("invalid_services_per_client", 422),
    ("invalid_slug", 422),
    ("invalid_status", 422),
    ("invalid_stock", 422),
    ("invalid_tax", 422),
    ("invalid_tax_class", 422),
    ("invalid_tax_rate", 422),
    ("invalid_tax_rule", 422),
    ("invalid_template", 422),
    ("invalid_text", 422),
    ("invalid_transition", 409),
    ("invalid_url", 422),
    ("invoice_changed", 409),
    ("invoice_has_payments", 409),
    ("invoice_issued", 409),
    ("invoice_not_cancellable", 409),
    ("invoice_not_collectable", 409),
    ("invoice_not_creditable", 409),
    ("invoice_not_issued", 409),
    ("invoice_not_payable", 409),
    ("job_state", 409),
    ("last_active_admin", 409),
    ("line_not_creditable", 422),
    ("malformed_api_key", 401),
    ("malformed_authorization", 401),
    ("method_not_allowed", 405),
    ("missing_client", 422),
    ("missing_credentials", 401),
    ("missing_field", 422),
    ("missing_sequence", 422),
    ("name_taken", 409),
    ("negative_amount", 422),
    ("negative_invoice", 422),
    ("negative_line_amount", 422),
    ("negative_price", 422),
    ("no_change", 422),
    ("no_option_price", 422),
    ("no_price", 422),
    ("non_positive_amount", 422),
    ("not_an_addon", 422),
    ("not_configured", 503),
    ("not_empty", 409),
    ("not_found", 404),
    ("not_ready", 503),
    ("nothing_to_credit", 409),
    ("notifier_unavailable", 503),
    ("nul_character", 400),
    ("number_format_too_long", 422),
    ("order_has_payments", 409),
    ("order_not_pending", 409),
    ("out_of_stock", 422),
    ("overpayment", 422),
    ("pay_link_expired", 410),
    ("pay_link_invalid", 403),
    ("payload_too_large", 413),
    ("payment_in_progress", 409),
    ("payment_invalid", 422),
    ("payment_reference_used", 409),
    ("payment_refused", 422),
    ("payment_reversal_refused", 409),
    ("payment_reversed", 409),
    ("payment_state_conflict", 409),
    ("percent_not_allowed", 422),
    ("policy_name_taken", 409),
    ("product_retired", 422),
    ("promo_exhausted", 422),
    ("promo_exhausted_for_client", 422),
    ("promo_expired", 422),
    ("promo_no_amount_for_currency", 422),
    ("promo_not_applicable", 422),
    ("promo_not_applicable_cycle", 422),
    ("promo_not_applicable_product", 422),
    ("promo_not_started", 422),
    ("quantity_out_of_range", 422),
    ("rate_limited", 429),
    ("reason_required", 422),
    ("request_timeout", 503),
    ("same_currency", 422),
    ("service_changed", 409),
    ("service_closed", 409),
    ("service_not_active", 409),
    ("service_not_recurring", 409),
    ("slug_taken", 409),
    ("staff_inactive", 401),
    ("staff_role_invalid", 401),
    ("stock_below_sold", 422),
    ("tax_rule_exists", 409),
    ("too_few_postings", 422),
    ("too_many_decimals", 422),
    ("too_many_items", 422),
    ("too_many_pending_payments", 409),
    ("unbalanced_brace", 422),
    ("unbalanced_entry", 422),
    ("unknown_addon", 422),
    ("unknown_billing_cycle", 422),
    ("unknown_channel", 422),
    ("unknown_client_group", 422),
    ("unknown_currency", 422),
    ("unknown_event", 422),
    ("unknown_event_type", 422),
    ("unknown_field", 422),
    ("unknown_gateway", 422),
    ("unknown_line", 422),
    ("unknown_message", 404),
    ("unknown_option", 422),
    ("unknown_option_value", 422),
    ("unknown_payment", 404),
    ("unknown_policy", 422),
    ("unknown_product", 422),
    ("unknown_product_group", 422),
    ("unknown_promo_code", 422),
    ("unknown_token", 422),
    ("unsupported_media_type", 415),
    ("weak_password", 422),
    ("webhook_refused", 403),
    ("webhook_url_not_allowed", 422),
    ("wrong_type", 422),
    ("wrong_value_count", 422),
];

/// The OpenAPI schema of an error's `code`: one of [`CODES`], with each code's status
/// listed in its description.
pub fn schema() -> utoipa::openapi::Object {
    let statuses = CODES
        .iter()
        .map(|(code, status)| format!("{status} `{code}`"))
        .collect::<Vec<_>>()
        .join(", ");
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .description(Some(format!(
            "Machine-readable and stable; each code is always answered with the same status: {statuses}."
        )))
        .enum_values(Some(CODES.iter().map(|(code, _)| *code)))
        .build()
}

/// The status of `code`, if it is one of [`CODES`].
pub fn status_of(code: &str) -> Option<StatusCode> {
    CODES
        .binary_search_by(|(c, _)| c.cmp(&code))
        .ok()
        .and_then(|i| StatusCode::from_u16(CODES[i].1).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_unique_snake_case_with_error_statuses() {
        for pair in CODES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, status) in CODES {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!((400..600).contains(status), "{code}: {status}");
            assert_eq!(status_of(code).map(|s| s.as_u16()), Some(*status));
        }
        assert_eq!(status_of("no_such_code"), None);
    }
}
