//! Use-case errors. Each says what a person should know; the API layer owns the mapping to
//! HTTP statuses, and internal causes are logged there, never shown.

use keel_domain::client::FieldError;
use keel_domain::contact::ContactError;
use keel_domain::ledger::LedgerError;
use keel_domain::money::MoneyError;
use keel_domain::text::{Rule, TextError};
use keel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The thing does not exist, or the actor's scope does not see it (never told apart).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// Authenticated, but the actor lacks a permission.
    #[error("this action needs the {permission} permission")]
    Forbidden { permission: &'static str },
    /// Authenticated, but the actor may not set this field (`keel_domain::client::CLIENT_FIELD_WRITERS`).
    #[error("{field} is set by {writers}; this key may not change it")]
    FieldForbidden {
        field: String,
        writers: &'static str,
    },
    /// No valid credentials.
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Input that breaks a rule; `field` names where.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Text that breaks the input rule of `keel_domain::text` (a NUL, a line break in a
    /// label, a bidi override, too long, nothing visible); `field` is the input's path.
    /// Kept apart from [`AppError::Invalid`] so the API can name the problem.
    #[error("{field}: {error}")]
    InvalidText { field: String, error: TextError },
    /// The request conflicts with the current state (a duplicate, a record with history).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The host has not configured what this needs (`[email] smtp_url` for an email);
    /// `setting` names the key. No retry mends it until the host changes the configuration.
    #[error("{message}")]
    NotConfigured {
        setting: &'static str,
        message: String,
    },
    /// Something Keel depends on (a gateway, a provider) did not answer; the same request
    /// may succeed later (`retry_after` seconds, when known). Nothing was changed.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after: Option<u32>,
    },
    #[error(transparent)]
    Ledger(LedgerError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    pub fn invalid(
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> AppError {
        AppError::Invalid {
            code,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    /// Checks `value` for `field` against its text `rule` (see `keel_domain::text::limits`).
    pub fn check_text(field: &str, value: &str, rule: Rule) -> Result<(), AppError> {
        rule.check(value).map_err(|error| AppError::InvalidText {
            field: field.to_string(),
            error,
        })
    }

    /// [`AppError::check_text`] for an optional field: absent is fine.
    pub fn check_optional_text(
        field: &str,
        value: Option<&str>,
        rule: Rule,
    ) -> Result<(), AppError> {
        value.map_or(Ok(()), |v| AppError::check_text(field, v, rule))
    }

    /// True for refusals of the input itself (no retry or other state can mend them).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            AppError::Invalid { .. } | AppError::InvalidText { .. }
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> AppError {
        AppError::Internal(Box::new(e))
    }
}

/// For `map_err`: a store `NotFound` becomes "`what` not found"; anything else converts as usual.
pub fn not_found(what: &'static str) -> impl Fn(StoreError) -> AppError {
    move |e| match e {
        StoreError::NotFound => AppError::NotFound { what },
        other => other.into(),
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        match e {
            StoreError::NotFound => AppError::NotFound { what: "record" },
            StoreError::Ledger(l) => AppError::Ledger(l),
            StoreError::Conflict { constraint } => conflict_for(&constraint),
            other => AppError::internal(other),
        }
    }
}

/// What a unique constraint means to the person who hit it.
fn conflict_for(constraint: &str) -> AppError {
    match constraint {
        "clients_owner_email_key" => {
            AppError::conflict("email_taken", "a client with this email already exists")
        }
        "contacts_client_email_key" => AppError::conflict(
            "email_taken",
            "this client already has a contact with this email",
        ),
        "staff_email_key" => {
            AppError::conflict("email_taken", "a staff user with this email already exists")
        }
        "client_has_history" => AppError::conflict(
            "client_has_history",
            "this client has financial history or API keys and cannot be deleted; set its status to closed instead",
        ),
        "ledger_accounts_code_key" => {
            AppError::conflict("account_exists", "an account with this code already exists")
        }
        "product_groups_slug_key" => AppError::conflict(
            "slug_taken",
            "a product group with this slug already exists",
        ),
        "products_slug_key" => {
            AppError::conflict("slug_taken", "a product with this slug already exists")
        }
        "promotions_code_key" => {
            AppError::conflict("code_taken", "a promotion with this code already exists")
        }
        "tax_rules_place_key" => AppError::conflict(
            "tax_rule_exists",
            "a tax rule for this tax class, country, region and level already exists",
        ),
        "client_groups_name_key" => {
            AppError::conflict("name_taken", "a client group with this name already exists")
        }
        "exchange_rates_pair_key" => AppError::conflict(
            "exchange_rate_exists",
            "a rate for these currencies from this moment already exists; add one from another moment",
        ),
        other => AppError::conflict(
            "conflict",
            format!("conflicts with an existing record ({other})"),
        ),
    }
}

impl From<LedgerError> for AppError {
    fn from(e: LedgerError) -> AppError {
        AppError::Ledger(e)
    }
}

impl From<MoneyError> for AppError {
    fn from(e: MoneyError) -> AppError {
        AppError::Invalid {
            code: e.code(),
            field: None,
            message: e.to_string(),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> AppError {
        if let Some(error) = e.text {
            return AppError::InvalidText {
                field: e.field.to_string(),
                error,
            };
        }
        AppError::Invalid {
            code: "invalid_field",
            field: Some(e.field.to_string()),
            message: e.to_string(),
        }
    }
}

impl From<ContactError> for AppError {
    fn from(e: ContactError) -> AppError {
        AppError::Invalid {
            code: e.code(),
            field: Some(e.field().to_string()),
            message: e.to_string(),
        }
    }
}
