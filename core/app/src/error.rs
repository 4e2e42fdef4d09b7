//! Use-case errors. Each says what a person should know; the API layer owns the mapping to
//! HTTP statuses, and internal causes are logged there, never shown.

use keel_domain::client::FieldError;
use keel_domain::contact::ContactError;
use keel_domain::ledger::LedgerError;
use keel_domain::money::MoneyError;
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
    /// The request conflicts with the current state (a duplicate, a record with history).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
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
