//! Fresh databases per test: an SQLite file in a temporary folder by default; with
//! `TEST_DATABASE_URL`, a PostgreSQL database copied from a migrated template and dropped after.

use std::sync::OnceLock;

use redis::Commands;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use tokio::sync::Mutex;

/// Where a test's data lives; dropping it removes the database.
pub struct TestDatabase {
    pub url: String,
    kind: Kind,
}

enum Kind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }
}

pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty())
}

/// Replace the database name of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[host_start..].find('/') {
        Some(i) => &base[..host_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

static TEMPLATE_LOCK: OnceLock<Mutex<bool>> = OnceLock::new();

fn template_name() -> String {
    format!("rapport_tpl_{}", env!("RAPPORT_MIGRATIONS_FINGERPRINT"))
}

async fn admin_exec(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let db = Database::connect(admin_url).await?;
    let result = db.execute_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned())).await;
    db.close().await?;
    result?;
    Ok(())
}

async fn database_exists(admin_url: &str, name: &str) -> anyhow::Result<bool> {
    let db = Database::connect(admin_url).await?;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS one FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?;
    db.close().await?;
    Ok(row.is_some())
}

/// Create (once per migration fingerprint) a migrated template database.
async fn ensure_template(admin_url: &str) -> anyhow::Result<String> {
    let lock = TEMPLATE_LOCK.get_or_init(|| Mutex::new(false));
    let mut ready = lock.lock().await;
    let name = template_name();
    if *ready {
        return Ok(name);
    }
    if !database_exists(admin_url, &name).await? {
        // Build under a temporary name and rename, so a crash never leaves a half-migrated template.
        let building = format!("{name}_build_{}", std::process::id());
        admin_exec(admin_url, &format!("DROP DATABASE IF EXISTS {building}")).await?;
        admin_exec(admin_url, &format!("CREATE DATABASE {building}")).await?;
        let db = Database::connect(with_database(admin_url, &building)).await?;
        rapport::db::migrate(&db).await?;
        db.close().await?;
        let renamed = admin_exec(admin_url, &format!("ALTER DATABASE {building} RENAME TO {name}")).await;
        if renamed.is_err() {
            // Another test process won the race; use its template.
            admin_exec(admin_url, &format!("DROP DATABASE IF EXISTS {building}")).await?;
        }
    }
    *ready = true;
    Ok(name)
}

pub async fn fresh_database() -> anyhow::Result<TestDatabase> {
    match postgres_admin_url() {
        None => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("rapport.db").display());
            Ok(TestDatabase { url, kind: Kind::Sqlite { _dir: dir } })
        }
        Some(admin_url) => {
            let template = ensure_template(&admin_url).await?;
            let name = format!("rapport_test_{}", uuid::Uuid::new_v4().simple());
            // Copies from one template cannot overlap; serialise them.
            {
                let _guard = TEMPLATE_LOCK.get_or_init(|| Mutex::new(true)).lock().await;
                admin_exec(&admin_url, &format!("CREATE DATABASE {name} TEMPLATE {template}")).await?;
            }
            Ok(TestDatabase { url: with_database(&admin_url, &name), kind: Kind::Postgres { admin_url, name } })
        }
    }
}

/// An empty, unmigrated database (for migration tests).
pub async fn empty_database() -> anyhow::Result<TestDatabase> {
    match postgres_admin_url() {
        None => fresh_database().await,
        Some(admin_url) => {
            let name = format!("rapport_test_{}", uuid::Uuid::new_v4().simple());
            admin_exec(&admin_url, &format!("CREATE DATABASE {name}")).await?;
            Ok(TestDatabase { url: with_database(&admin_url, &name), kind: Kind::Postgres { admin_url, name } })
        }
    }
}

/// Deletes the keys the servers of one test database wrote to the shared test Redis (cached
/// catalogue, persisted queries, rate-limit counters), so runs do not accumulate keys.
fn forget_redis_keys(database_url: &str) {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else { return };
    let pattern = format!("{}*", crate::server::cache_prefix_for(database_url));
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(2)) else { return };
    let keys: Vec<String> = match conn.scan_match::<_, String>(&pattern) {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _ = redis::cmd("DEL").arg(chunk).exec(&mut conn);
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        forget_redis_keys(&self.url);
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            // Drop runs inside the test's runtime; do the blocking work on a thread of its own.
            let handle = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    let _ = rt.block_on(admin_exec(&admin_url, &sql));
                }
            });
            let _ = handle.join();
        }
    }
}
