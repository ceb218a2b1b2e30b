use std::sync::Arc;

use crate::sql_store::SqlStore;
use crate::{postgres, sqlite, Store, StoreError};

/// Opens the store named by `url` and brings its schema up to date:
/// `sqlite://PATH` (file and directories created if missing), `sqlite::memory:`, or
/// `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    sqlx::any::install_default_drivers();
    let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
    let store = match scheme {
        "sqlite" => {
            let _setup = sqlite::SetupLock::acquire(url).await?;
            let pool = sqlite::connect(url).await?;
            SqlStore::migrated(pool, &sqlite::DIALECT, url).await?
        }
        "postgres" | "postgresql" => {
            let pool = postgres::connect(url).await?;
            SqlStore::migrated(pool, &postgres::DIALECT, url).await?
        }
        _ => {
            return Err(StoreError::UnsupportedScheme {
                scheme: printable(scheme),
            })
        }
    };
    Ok(Arc::new(store))
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
