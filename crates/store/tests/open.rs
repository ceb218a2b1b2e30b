//! Opening a store by URL: schemes, file creation, and errors that keep secrets out.

use switchboard_store::{open, StoreError};

#[tokio::test]
async fn unknown_scheme_is_named() {
    let err = open("mysql://app:hunter2@db/app")
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::UnsupportedScheme { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("`mysql`") && !text.contains("hunter2"),
        "{text}"
    );
}

#[tokio::test]
async fn url_without_scheme_is_refused() {
    let err = open("./data/switchboard.db").await.err().expect("refused");
    assert!(err.to_string().contains("(none)"), "{err}");
}

#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    // Port 1 on loopback: refused at once.
    for url in [
        "postgres://switchboard:hunter2@127.0.0.1:1/switchboard",
        "postgresql://switchboard:hunter%402@127.0.0.1:1/switchboard",
    ] {
        let err = open(url).await.err().expect("unreachable");
        let text = format!("{err} {err:?}");
        assert!(matches!(err, StoreError::Open { .. }), "{text}");
        assert!(!text.contains("hunter"), "{text}");
    }
}

#[tokio::test]
async fn sqlite_file_and_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("switchboard.db");
    let store = open(&format!("sqlite://{}", path.display())).await.unwrap();
    store.ping().await.unwrap();
    assert!(path.is_file());
}

#[tokio::test]
async fn sqlite_in_memory_works() {
    let store = open("sqlite::memory:").await.unwrap();
    store.ping().await.unwrap();
    assert!(store.first_sighting("k", 1).await.unwrap());
    assert!(!store.first_sighting("k", 2).await.unwrap());
}

#[tokio::test]
async fn sqlite_directory_that_cannot_be_created_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let url = format!("sqlite://{}/sub/switchboard.db", file.display());
    let err = open(&url).await.err().expect("refused");
    assert!(
        matches!(
            err,
            StoreError::Open {
                backend: "SQLite",
                ..
            }
        ),
        "{err}"
    );
}
