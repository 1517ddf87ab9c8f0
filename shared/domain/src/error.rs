use serde::Serialize;

/// One invalid input field, named by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// The row of an uploaded file (CSV) the field is in, numbered as a spreadsheet shows it:
    /// the header is row 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<u64>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), row: None }
    }

    /// The error of one cell of an uploaded file: its row and column.
    pub fn in_row(row: u64, column: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: column.into(), message: message.into(), row: Some(row) }
    }
}

/// What can go wrong in the domain, independent of transport and storage.
/// Each variant has one stable meaning that the API maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("organization suspended")]
    Suspended,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("the organization must keep at least one owner")]
    LastOwner,
    #[error("plan limit reached: {0}")]
    LimitReached(&'static str),
    #[error("the item changed since it was read")]
    StaleVersion,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("too many {what}; retry in {retry_after_secs} s")]
    RateLimited { what: &'static str, retry_after_secs: u64 },
    #[error("the caller's email address is not verified")]
    EmailNotVerified,
    #[error("invalid cursor")]
    InvalidCursor,
    #[error("storage unavailable")]
    Unavailable,
    /// The month's chat tokens are spent: more at `resets_at_epoch` (epoch seconds).
    #[error("the chat token budget is exhausted until {resets_at_epoch}")]
    BudgetExhausted { resets_at_epoch: i64 },
}

impl DomainError {
    pub fn invalid(field: &str, message: &str) -> Self {
        DomainError::Invalid(vec![FieldError::new(field, message)])
    }
}
