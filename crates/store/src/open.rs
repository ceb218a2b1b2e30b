use std::sync::Arc;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::{Store, StoreError};

/// Opens the store named by `url` and brings its schema up to date:
/// `sqlite://PATH` (file and directories created if missing), `sqlite::memory:`, or
/// `postgres://…` / `postgresql://…`. The query parameters `batch_max` and `linger_us` set how
/// the store's writer batches writes (see [`crate::DEFAULT_BATCH_MAX`] and
/// [`crate::DEFAULT_LINGER`]); the others go to the database driver.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    sqlx::any::install_default_drivers();
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::open(url).await?)),
        _ => Err(StoreError::UnsupportedScheme {
            scheme: printable(scheme),
        }),
    }
}

/// The scheme as the caller wrote it, if it looks like one (it is never part of a secret then).
fn printable(scheme: &str) -> String {
    let looks_like_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if looks_like_scheme {
        scheme.to_owned()
    } else {
        "(none)".to_owned()
    }
}
