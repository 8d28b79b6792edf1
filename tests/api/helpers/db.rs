//! A fresh database per test: a SQLite file in a temporary folder, or a new PostgreSQL database on the
//! server named by `TEST_DATABASE_URL`.

use std::sync::Arc;

use jsm_sso::config::DatabaseUrl;
use sqlx::Connection;

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend, when `TEST_DATABASE_URL` is set. In CI (`CI` set) its absence fails the
    /// test, so a green run always covers PostgreSQL.
    pub fn postgres() -> Option<Backend> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ if std::env::var("CI").is_ok() => panic!("CI must set TEST_DATABASE_URL so the PostgreSQL run happens"),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("test.db").display())).unwrap();
                TestDb { url, _dir: Some(Arc::new(dir)) }
            }
            Backend::Postgres(server) => {
                let name = format!("jsm_sso_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&server).await.expect("TEST_DATABASE_URL answers");
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
                let mut url = url::Url::parse(&server).unwrap();
                url.set_path(&name);
                TestDb { url: DatabaseUrl::parse(url.as_str()).unwrap(), _dir: None }
            }
        }
    }

    /// Runs a query returning one integer (for assertions on raw rows).
    pub async fn scalar(&self, sql: &str) -> i64 {
        self.rows(sql).await.first().map(|r| r[0].parse().unwrap()).unwrap_or(0)
    }

    /// Raw rows as strings, read with a plain connection (no application code in between).
    pub async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::Row;
        fn cell<'r, R: Row>(row: &'r R, i: usize) -> String
        where
            usize: sqlx::ColumnIndex<R>,
            Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                return v.unwrap_or_default();
            }
            row.try_get::<Option<i64>, _>(i).ok().flatten().map(|v| v.to_string()).unwrap_or_default()
        }
        match self.url.kind() {
            jsm_sso::config::DatabaseKind::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(self.url.expose()).await.unwrap();
                let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
                rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
            }
            jsm_sso::config::DatabaseKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(self.url.expose()).await.unwrap();
                let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
                rows.iter().map(|r| (0..r.columns().len()).map(|i| cell(r, i)).collect()).collect()
            }
        }
    }
}
