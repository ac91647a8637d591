//! Prometheus metrics, rendered at `/metrics`: GraphQL requests by operation type and outcome,
//! their latency, SQL statements, the database pool, the cache (hits, misses, errors), rate-limit
//! rejections and the subscription event bus.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicI64, AtomicU64},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use sea_orm::{DatabaseConnection, DbBackend};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// What a cache key is for: its first segment (`catalogue`, `apq`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub area: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheErrorLabels {
    pub operation: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub graphql_requests: Family<RequestLabels, Counter>,
    pub graphql_latency: HistogramFamily<OperationLabels>,
    pub db_statements: Family<OutcomeLabels, Counter<u64, AtomicU64>>,
    pub db_statement_seconds: Histogram,
    pub http_rejections: Family<OutcomeLabels, Counter>,
    pub cache_hits: Family<CacheLabels, Counter>,
    pub cache_misses: Family<CacheLabels, Counter>,
    pub cache_errors: Family<CacheErrorLabels, Counter>,
    /// 1 while the Redis circuit breaker is open.
    pub cache_breaker_open: Gauge<i64, AtomicI64>,
    pub rate_limited: Family<RoleLabels, Counter>,
    pub events: Family<EventLabels, Counter>,
    db_pool: Family<PoolLabels, Gauge<i64, AtomicI64>>,
    db_pool_max: Gauge<i64, AtomicI64>,
    pool_source: OnceLock<DatabaseConnection>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter()
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rapport");
        let graphql_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests by operation type (query, mutation, subscription, batch) and outcome",
            graphql_requests.clone(),
        );
        let graphql_latency: HistogramFamily<OperationLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "graphql_request_seconds",
            "GraphQL request latency by operation type",
            graphql_latency.clone(),
        );
        let db_statements = Family::<OutcomeLabels, Counter<u64, AtomicU64>>::default();
        registry.register("db_statements", "SQL statements executed", db_statements.clone());
        let db_statement_seconds = Histogram::new(latency_buckets());
        registry.register("db_statement_seconds", "SQL statement latency", db_statement_seconds.clone());
        let http_rejections = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_rejections",
            "Requests refused before execution (limits, bad requests)",
            http_rejections.clone(),
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register("cache_hits", "Cache reads that found a value, by key area", cache_hits.clone());
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_misses",
            "Cache reads that found nothing (or failed), by key area",
            cache_misses.clone(),
        );
        let cache_errors = Family::<CacheErrorLabels, Counter>::default();
        registry.register(
            "cache_errors",
            "Cache store failures (each one served as a miss), by operation and reason",
            cache_errors.clone(),
        );
        let cache_breaker_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "cache_breaker_open",
            "1 while the Redis circuit breaker skips Redis",
            cache_breaker_open.clone(),
        );
        let rate_limited = Family::<RoleLabels, Counter>::default();
        registry.register("rate_limited", "Requests refused by the rate limiter, by role", rate_limited.clone());
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Subscription events (published, delivered from Redis, publish failures)",
            events.clone(),
        );
        let db_pool = Family::<PoolLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("db_pool_connections", "Database pool connections by state", db_pool.clone());
        let db_pool_max = Gauge::<i64, AtomicI64>::default();
        registry.register("db_pool_max_connections", "Database pool size limit", db_pool_max.clone());
        Self {
            registry,
            graphql_requests,
            graphql_latency,
            db_statements,
            db_statement_seconds,
            http_rejections,
            cache_hits,
            cache_misses,
            cache_errors,
            cache_breaker_open,
            rate_limited,
            events,
            db_pool,
            db_pool_max,
            pool_source: OnceLock::new(),
        }
    }

    /// Report this connection's pool in `/metrics` (read at each scrape).
    pub fn watch_pool(&self, db: DatabaseConnection) {
        let _ = self.pool_source.set(db);
    }

    pub fn record_statement(&self, elapsed: Duration, failed: bool) {
        let outcome = if failed { "error" } else { "ok" };
        self.db_statements.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
        self.db_statement_seconds.observe(elapsed.as_secs_f64());
    }

    /// One GraphQL request: `operation` is `query`, `mutation`, `subscription`, `batch` or
    /// `unknown` (the document did not parse); `outcome` is `ok`, `field_error` or
    /// `request_error`.
    pub fn record_request(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.graphql_requests
            .get_or_create(&RequestLabels { operation: operation.into(), outcome: outcome.into() })
            .inc();
        self.graphql_latency
            .get_or_create(&OperationLabels { operation: operation.into() })
            .observe(elapsed.as_secs_f64());
    }

    /// A subscription started (or was refused): counted, with no latency (it lives on).
    pub fn record_subscription(&self, outcome: &str) {
        self.graphql_requests
            .get_or_create(&RequestLabels { operation: "subscription".into(), outcome: outcome.into() })
            .inc();
    }

    pub fn reject(&self, reason: &str) {
        self.http_rejections.get_or_create(&OutcomeLabels { outcome: reason.into() }).inc();
    }

    pub fn cache_lookup(&self, area: &str, hit: bool) {
        let labels = CacheLabels { area: area.into() };
        if hit {
            self.cache_hits.get_or_create(&labels).inc();
        } else {
            self.cache_misses.get_or_create(&labels).inc();
        }
    }

    pub fn cache_error(&self, operation: &str, reason: &str) {
        self.cache_errors.get_or_create(&CacheErrorLabels { operation: operation.into(), reason: reason.into() }).inc();
    }

    pub fn rate_limited(&self, role: &str) {
        self.rate_limited.get_or_create(&RoleLabels { role: role.into() }).inc();
    }

    pub fn event(&self, event: &str) {
        self.events.get_or_create(&EventLabels { event: event.into() }).inc();
    }

    fn refresh_pool(&self) {
        let Some(db) = self.pool_source.get() else {
            return;
        };
        // The pool accessors panic on the wrong backend: ask only for the one in use.
        let (size, idle, max) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => return,
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let size = i64::from(size);
        self.db_pool.get_or_create(&PoolLabels { state: "idle".into() }).set(idle);
        self.db_pool.get_or_create(&PoolLabels { state: "in_use".into() }).set((size - idle).max(0));
        self.db_pool_max.set(i64::from(max));
    }

    pub fn render(&self) -> String {
        self.refresh_pool();
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_cache_and_rate_limits() {
        let metrics = Metrics::new();
        metrics.record_request("query", "ok", Duration::from_millis(3));
        metrics.cache_lookup("catalogue", true);
        metrics.cache_lookup("catalogue", false);
        metrics.cache_error("get", "timeout");
        metrics.rate_limited("ANONYMOUS");
        let text = metrics.render();
        assert!(text.contains(r#"rapport_graphql_requests_total{operation="query",outcome="ok"} 1"#), "{text}");
        assert!(text.contains(r#"rapport_cache_hits_total{area="catalogue"} 1"#), "{text}");
        assert!(text.contains(r#"rapport_cache_misses_total{area="catalogue"} 1"#), "{text}");
        assert!(text.contains("rapport_rate_limited_total"), "{text}");
        assert!(text.contains("rapport_graphql_request_seconds_bucket"), "{text}");
    }
}
