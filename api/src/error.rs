//! The one error type of the domain boundary. Resolvers and HTTP handlers return it; the mapping
//! to a GraphQL `extensions.code` lives in `graphql::errors`, and to HTTP statuses in `http`.

use sea_orm::{DbErr, SqlErr};

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{message}")]
    BadInput { field: Option<String>, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    TooComplex(String),
    /// The database could not be reached or dropped the connection (restart, failover, pool
    /// exhausted): worth retrying. Code `INTERNAL`, HTTP 503 where a status is chosen; the cause
    /// is logged, never sent.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// Anything unexpected. The cause is logged, never sent to clients.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The fixed set of codes clients see in `extensions.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    BadUserInput,
    NotFound,
    Conflict,
    RateLimited,
    QueryTooComplex,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadUserInput | ErrorCode::QueryTooComplex => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
        }
    }
}

impl AppError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::BadInput { .. } => ErrorCode::BadUserInput,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::TooComplex(_) => ErrorCode::QueryTooComplex,
            AppError::Unavailable(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status where a handler picks one: the code's, except 503 for `Unavailable`.
    pub fn http_status(&self) -> u16 {
        match self {
            AppError::Unavailable(_) => 503,
            other => other.code().http_status(),
        }
    }

    pub fn unauthenticated() -> Self {
        AppError::Unauthenticated("authentication required".into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }

    /// Invalid input in a named field (the GraphQL input path, e.g. `input.email`).
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput { field: Some(field.into()), message: message.into() }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadInput { field: None, message: message.into() }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        AppError::Conflict(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(cause.into())
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        // Constraint violations are the client's doing; callers that know which constraint map
        // them to a precise message first. Never pass the SQL text on.
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                AppError::conflict("a record with the same unique value already exists")
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                AppError::bad_input("a referenced record does not exist or is still in use")
            }
            _ if is_unavailable(&err) => AppError::Unavailable(anyhow::Error::new(err).context("database unavailable")),
            _ => AppError::Internal(anyhow::Error::new(err).context("database error")),
        }
    }
}

/// Whether the database failed to answer rather than refused the statement: no connection in
/// time, the connection dropped, or the server ended the session (SQLSTATE class 08, connection
/// exception, or 57P0x, e.g. `pg_terminate_backend` and shutdowns).
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::Error as Sqlx};
    let sqlx = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed | Sqlx::Tls(_) => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::{ConnAcquireErr, RuntimeErr, sqlx};

    use super::*;

    fn sqlx_err(err: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
    }

    #[test]
    fn outages_are_unavailable_and_other_failures_internal() {
        let unavailable = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            sqlx_err(sqlx::Error::PoolTimedOut),
            sqlx_err(sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))),
        ];
        for err in unavailable {
            let app = AppError::from(err);
            assert!(matches!(app, AppError::Unavailable(_)), "{app:?}");
            assert_eq!((app.code(), app.http_status()), (ErrorCode::Internal, 503));
            assert!(!app.to_string().contains("pool"), "the cause is not sent: {app}");
        }
        let internal = AppError::from(sqlx_err(sqlx::Error::RowNotFound));
        assert!(matches!(internal, AppError::Internal(_)));
        assert_eq!(internal.http_status(), 500);
    }
}
