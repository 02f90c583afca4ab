//! The errors a request can end in, and the one place that maps each to
//! its HTTP status.

use std::error::Error as StdError;
use std::fmt::{self, Write as _};

use crate::store::StoreError;

/// Why a request was not answered with `200`.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not what `POST /send` takes; the text says why.
    BadRequest(String),
    /// The body or the value is larger than its limit; the text says which.
    TooLarge(String),
    /// The body is not declared as `application/json`.
    UnsupportedMediaType,
    /// No such path.
    NotFound,
    /// The path exists, but not for this method; `allow` lists the methods
    /// it takes.
    MethodNotAllowed { allow: &'static str },
    /// The store failed; whether that means `503` or `500` depends on how.
    Store(StoreError),
    /// The handler panicked; the panic's text has gone to the log.
    Panic,
    /// The request arrived after the server began to stop.
    ShuttingDown,
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType => 415,
            Self::Store(error) if error.is_unavailable() => 503,
            Self::ShuttingDown => 503,
            Self::Store(_) | Self::Panic => 500,
        }
    }

    /// The text the client sees: precise about its own input, and silent
    /// about the database's internals.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadRequest(reason) | Self::TooLarge(reason) => reason.clone(),
            Self::UnsupportedMediaType => "the body must be sent as application/json".to_owned(),
            Self::NotFound => "no such path".to_owned(),
            Self::MethodNotAllowed { allow } => {
                format!("this path takes only {allow}")
            }
            Self::Store(error) if error.is_unavailable() => {
                "the database is unavailable; try again shortly".to_owned()
            }
            Self::Store(_) | Self::Panic => "internal error".to_owned(),
            Self::ShuttingDown => "the service is stopping; try again shortly".to_owned(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(_) => f.write_str("the request could not use the database"),
            Self::Panic => f.write_str("the handler panicked"),
            _ => f.write_str(&self.client_message()),
        }
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// An error with all its causes, `outer: inner: innermost`, for the log.
pub fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let _ = write!(text, ": {error}");
        cause = error.source();
    }
    // Drivers end some messages with a newline, which would split a log
    // line.
    text.replace('\n', " ").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_input_error_has_its_status() {
        assert_eq!(ApiError::BadRequest("x".into()).status(), 400);
        assert_eq!(ApiError::NotFound.status(), 404);
        assert_eq!(ApiError::MethodNotAllowed { allow: "POST" }.status(), 405);
        assert_eq!(ApiError::TooLarge("x".into()).status(), 413);
        assert_eq!(ApiError::UnsupportedMediaType.status(), 415);
        assert_eq!(ApiError::Panic.status(), 500);
    }

    #[test]
    fn store_errors_are_503_when_the_database_is_away_and_500_otherwise() {
        let lost = diesel::result::Error::BrokenTransactionManager;
        let unavailable = ApiError::Store(StoreError::Contended(lost));
        let refused = ApiError::Store(StoreError::Query(diesel::result::Error::NotFound));

        assert_eq!(unavailable.status(), 503);
        assert_eq!(refused.status(), 500);
        assert_eq!(refused.client_message(), "internal error");
    }

    #[test]
    fn the_chain_names_every_cause_on_one_line() {
        let error = ApiError::Store(StoreError::Query(diesel::result::Error::NotFound));

        assert_eq!(
            chain(&error),
            "the request could not use the database: the database refused a statement: \
             Record not found"
        );
    }
}
