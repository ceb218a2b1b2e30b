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
