//! What the server shares between requests: built once at start-up.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{auth::JwtKeys, cache::Cache, config::Settings, events::Events, metrics::Metrics};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub jwt: Arc<JwtKeys>,
    pub metrics: Arc<Metrics>,
    pub cache: Cache,
    /// Events for subscriptions, shared across instances through Redis.
    pub events: Events,
    /// The audit trail's background writer (flushed on graceful shutdown).
    pub audit: crate::domain::audit::AuditLog,
    /// Admission of GraphQL operations (see `Limits::max_concurrent_operations`).
    pub operations: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn limits(&self) -> &crate::config::Limits {
        &self.settings.limits
    }
}
