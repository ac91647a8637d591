//! Spawning the real server on port 0 against a fresh database.

use std::{sync::Arc, time::Duration};

use rapport::{
    auth::{Role, Scope, TokenRequest},
    config::Settings,
    startup::Application,
    state::AppState,
};
use uuid::Uuid;

use crate::{client::TestClient, db::TestDatabase};

/// Extra settings for one test server.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Additional environment-style settings, e.g. `("RAPPORT_MAX_DEPTH", "5")`.
    pub env: Vec<(String, String)>,
    /// Fill the database with the demo library before serving.
    pub demo: bool,
}

impl TestOptions {
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: AppState,
    pub client: TestClient,
    pub database: Arc<TestDatabase>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub const TEST_JWT_SECRET: &str = "rapport-test-secret-at-least-thirty-two-bytes-long";

pub fn init_logging() {
    if std::env::var("TEST_LOG").is_ok() {
        rapport::telemetry::init("debug,sqlx=warn", false, std::io::stdout);
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// Start the server on a fresh, migrated database. Panics (it is a test) when that fails.
pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    init_logging();
    let database = crate::db::fresh_database().await.expect("create test database");
    spawn_on(Arc::new(database), options).await
}

/// Start a server on an existing database (e.g. a second instance sharing one database).
pub async fn spawn_on(database: Arc<TestDatabase>, options: TestOptions) -> TestApp {
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database.url.clone()),
        ("RAPPORT_BIND".into(), "127.0.0.1:0".into()),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("RAPPORT_WORKERS".into(), "2".into()),
        ("DATABASE_MAX_CONNECTIONS".into(), "5".into()),
        ("RAPPORT_SHUTDOWN_TIMEOUT_SECS".into(), "5".into()),
    ];
    if let Ok(redis) = std::env::var("TEST_REDIS_URL") {
        env.push(("REDIS_URL".into(), redis));
    }
    // Tests run in parallel on one Redis: each database gets its own key prefix, which the
    // instances sharing that database (spawn_on) share, like a real deployment.
    env.push(("RAPPORT_CACHE_PREFIX".into(), cache_prefix_for(&database.url)));
    if options.demo {
        env.push(("RAPPORT_DEMO".into(), "1".into()));
    }
    env.extend(options.env);
    let lookup = move |key: &str| env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let settings = Settings::from_lookup(lookup).expect("test settings");
    let app = Application::build(settings).await.expect("build application");
    let port = app.port();
    let state = app.state().clone();
    let server = tokio::spawn(app.run_until_stopped());
    let address = format!("http://127.0.0.1:{port}");
    let client = TestClient::new(&address);
    let test_app = TestApp { address, port, state, client, database, server };
    test_app.wait_until_ready().await;
    test_app
}

/// The cache prefix of the instances serving one test database.
pub fn cache_prefix_for(database_url: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    database_url.hash(&mut hasher);
    format!("rapport-test:{:016x}:{}:", hasher.finish(), std::process::id())
}

impl TestApp {
    /// The sum of every series of a metric in `/metrics` (e.g. `rapport_cache_hits_total`, or
    /// one series with its labels: `rapport_cache_hits_total{area="catalogue"}`).
    pub async fn metric(&self, name: &str) -> f64 {
        let text =
            self.client.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("body");
        text.lines()
            .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .fold(0.0, |sum, v| sum + v)
    }

    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            if let Ok(resp) = self.client.http.get(format!("{}/healthz", self.address)).send().await
                && resp.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn mint(&self, request: TokenRequest) -> String {
        self.state.jwt.mint(&request).expect("mint token").0
    }

    pub fn admin_token(&self) -> String {
        self.mint(TokenRequest {
            role: Role::Admin,
            subject: "admin-1".into(),
            funder_id: None,
            scopes: vec![],
            ttl: None,
        })
    }

    pub fn staff_token(&self) -> String {
        self.mint(TokenRequest {
            role: Role::Staff,
            subject: "staff-1".into(),
            funder_id: None,
            scopes: vec![],
            ttl: None,
        })
    }

    pub fn patron_token(&self, patron_id: Uuid) -> String {
        self.mint(TokenRequest {
            role: Role::Patron,
            subject: patron_id.to_string(),
            funder_id: None,
            scopes: vec![],
            ttl: None,
        })
    }

    pub fn funder_token(&self, funder_id: Uuid) -> String {
        self.mint(TokenRequest {
            role: Role::Funder,
            subject: "funder-account-1".into(),
            funder_id: Some(funder_id),
            scopes: vec![],
            ttl: None,
        })
    }

    pub fn partner_token(&self, scopes: &[Scope]) -> String {
        self.mint(TokenRequest {
            role: Role::Partner,
            subject: "partner-1".into(),
            funder_id: None,
            scopes: scopes.to_vec(),
            ttl: None,
        })
    }

    /// Total SQL statements the server has run so far (from `/metrics`).
    pub async fn sql_statements(&self) -> u64 {
        let text =
            self.client.http.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("body");
        text.lines()
            .filter(|l| l.starts_with("rapport_db_statements_total"))
            .filter_map(|l| l.rsplit(' ').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    pub fn is_postgres(&self) -> bool {
        self.database.is_postgres()
    }

    /// Stop the server task (the database is dropped with the last handle).
    pub fn stop(&self) {
        self.server.abort();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
