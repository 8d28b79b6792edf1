//! Storage. SQLite and PostgreSQL are both first class: one `Store`, two pools, and the same SQL for
//! both wherever the dialects agree (they agree on everything used so far: `$n` parameters,
//! `ON CONFLICT`, `RETURNING`, BIGINT Unix times).

mod connect;
mod idps;
mod login_events;
pub mod portal;
mod saml_flow;
mod secrets;
mod sp_keys;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use connect::{ConnectInstallation, NewConnectInstallation};
pub use idps::SaveIdpError;
pub use login_events::{LoginEvent, LoginEventFilter};
pub use saml_flow::{CustomerSession, PendingRequest};
pub use secrets::{SecretRotationReport, sealing_context};
pub use sp_keys::{NewSpKey, StoredSpKey};

use crate::config::{DatabaseKind, DatabaseUrl};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// Runs the same body against whichever pool backs the store. The body is compiled once per backend, so
/// any SQL or type that one of them does not support is a compile error, not a runtime surprise.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Connects (creating a SQLite file and its folder when needed). Migrations are not run here.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        let pool = match url.kind() {
            DatabaseKind::Sqlite => {
                if let Some(dir) =
                    url.sqlite_path().as_deref().and_then(|p| p.parent()).filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Database(sqlx::Error::Configuration(
                            format!("cannot create the database folder {}: {e}", dir.display()).into(),
                        ))
                    })?;
                }
                let options = SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5));
                Pool::Sqlite(SqlitePoolOptions::new().max_connections(8).connect_with(options).await?)
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())?;
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(16)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_with(options)
                        .await?,
                )
            }
        };
        Ok(Store { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATIONS.run(p).await?,
        }
        Ok(())
    }

    pub fn kind(&self) -> DatabaseKind {
        match self.pool {
            Pool::Sqlite(_) => DatabaseKind::Sqlite,
            Pool::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// Is the database reachable? (for `/readyz`)
    pub async fn ping(&self) -> bool {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

pub(crate) fn unix(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_unix(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}
