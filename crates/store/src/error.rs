/// What went wrong in the store. The text never holds credentials: errors raised while opening
/// the store have the URL's password cut out.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL scheme `{scheme}` is not supported: use sqlite://PATH or postgres://…")]
    UnsupportedScheme { scheme: String },
    #[error("cannot open the {backend} store: {reason}")]
    Open {
        backend: &'static str,
        reason: String,
    },
    #[error("{what} `{id}` is not in the store")]
    NotFound { what: &'static str, id: String },
    #[error("stored {what} cannot be read: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn open(backend: &'static str, reason: impl ToString, url: &str) -> Self {
        StoreError::Open {
            backend,
            reason: without_password(&reason.to_string(), url),
        }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> Self {
        StoreError::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

/// `text` with the password of `url` (as written and percent-decoded) replaced by `****`.
fn without_password(text: &str, url: &str) -> String {
    let Some(password) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    else {
        return text.to_owned();
    };
    let decoded = percent_encoding::percent_decode_str(&password)
        .decode_utf8_lossy()
        .into_owned();
    [password, decoded]
        .iter()
        .filter(|p| !p.is_empty())
        .fold(text.to_owned(), |acc, p| acc.replace(p.as_str(), "****"))
}

/// A SQLite error, as the `sqlx` error that [`StoreError::Query`] holds.
#[derive(Debug)]
pub(crate) struct SqliteFailure {
    message: String,
    /// SQLite's extended result code.
    code: Option<i32>,
}

impl std::fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl sqlx::error::DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.code.map(|c| c.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        match self.code {
            Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY | ffi::SQLITE_CONSTRAINT_UNIQUE) => {
                sqlx::error::ErrorKind::UniqueViolation
            }
            Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => sqlx::error::ErrorKind::ForeignKeyViolation,
            Some(ffi::SQLITE_CONSTRAINT_NOTNULL) => sqlx::error::ErrorKind::NotNullViolation,
            Some(ffi::SQLITE_CONSTRAINT_CHECK) => sqlx::error::ErrorKind::CheckViolation,
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let message = message.unwrap_or_else(|| failure.to_string());
                StoreError::Query(sqlx::Error::Database(Box::new(SqliteFailure {
                    message,
                    code: Some(failure.extended_code),
                })))
            }
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..) => StoreError::corrupt("column", error),
            other => StoreError::Query(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

impl StoreError {
    /// The store was closed, or its writer is gone.
    pub(crate) fn closed() -> Self {
        StoreError::Query(sqlx::Error::PoolClosed)
    }

    /// For every caller of a batch that failed as a whole: the same error, as text.
    pub(crate) fn batch_failed(error: &StoreError) -> Self {
        StoreError::Query(sqlx::Error::Protocol(format!(
            "the transaction holding this write failed: {error}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_never_show_the_password() {
        let url = "postgres://app:s%40cret@db.internal/app";
        let err = StoreError::open("postgres", "auth failed for s@cret (s%40cret)", url);
        let text = err.to_string();
        assert!(
            !text.contains("s@cret") && !text.contains("s%40cret"),
            "{text}"
        );
        assert!(text.contains("****"), "{text}");
    }
}
