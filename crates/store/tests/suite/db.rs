//! A fresh, empty database per test: a temporary SQLite file, or a new PostgreSQL database on
//! the server named by `SWITCHBOARD_TEST_POSTGRES_URL`.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};
use switchboard_store::Store;

pub const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

pub enum TestDb {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A directory that does not exist yet: opening the store creates it.
        let path = dir.path().join("data").join("switchboard.db");
        TestDb::Sqlite {
            url: format!("sqlite://{}", path.display()),
            _dir: dir,
        }
    }

    /// None (after saying so on stderr) when no PostgreSQL server is configured. A configured
    /// server that does not answer fails the test: CI must not skip silently.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
            // Straight to stderr, past the test harness's capture, so that the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: {POSTGRES_URL_VAR} is not set (see crates/store/README.md: PostgreSQL tests)"
            );
            return None;
        };
        let name = unique_database_name();
        admin_connection(&admin_url)
            .await
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("CREATE DATABASE");
        let mut url = url::Url::parse(&admin_url).expect("valid PostgreSQL URL");
        url.set_path(&name);
        Some(TestDb::Postgres {
            url: url.to_string(),
            admin_url,
            name,
        })
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// One more store on this database; two stores stand for two processes.
    pub async fn open(&self) -> Arc<dyn Store> {
        switchboard_store::open(self.url())
            .await
            .unwrap_or_else(|e| panic!("open the test store: {e}"))
    }

    /// Runs `sql` (a single COUNT) directly, to see what the store wrote.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(self.url())
            .await
            .expect("connect for a count");
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count");
        conn.close().await.expect("close");
        n
    }

    /// Runs `sql` directly, as an operator would.
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(self.url())
            .await
            .expect("connect to execute");
        sqlx::query(sql).execute(&mut conn).await.expect("execute");
        conn.close().await.expect("close");
    }

    pub async fn remove(self) {
        if let TestDb::Postgres {
            admin_url, name, ..
        } = self
        {
            // A pool of the store under test may still be closing its connections: try again.
            let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let mut attempt = 0;
            loop {
                attempt += 1;
                match admin_connection(&admin_url)
                    .await
                    .execute(drop.as_str())
                    .await
                {
                    Ok(_) => break,
                    Err(e) if attempt < 5 => {
                        eprintln!("DROP DATABASE {name} failed ({e}); trying again");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("DROP DATABASE {name}: {e}"),
                }
            }
        }
    }
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
        panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
    })
}

fn unique_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "switchboard_test_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
