//! What the server shares between requests: built once at start-up.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{auth::JwtKeys, cache::Cache, config::Settings, metrics::Metrics};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub jwt: Arc<JwtKeys>,
    pub metrics: Arc<Metrics>,
    pub cache: Cache,
}

impl AppState {
    pub fn limits(&self) -> &crate::config::Limits {
        &self.settings.limits
    }
}
