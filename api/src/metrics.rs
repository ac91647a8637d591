//! Prometheus metrics, rendered at `/metrics`.

use std::{sync::atomic::AtomicU64, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub graphql_requests: Family<RequestLabels, Counter>,
    pub graphql_latency: Histogram,
    pub db_statements: Family<OutcomeLabels, Counter<u64, AtomicU64>>,
    pub db_statement_seconds: Histogram,
    pub http_rejections: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0].into_iter()
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
            "GraphQL operations by type and outcome",
            graphql_requests.clone(),
        );
        let graphql_latency = Histogram::new(latency_buckets());
        registry.register("graphql_request_seconds", "GraphQL request latency", graphql_latency.clone());
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
        Self { registry, graphql_requests, graphql_latency, db_statements, db_statement_seconds, http_rejections }
    }

    pub fn record_statement(&self, elapsed: Duration, failed: bool) {
        let outcome = if failed { "error" } else { "ok" };
        self.db_statements.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc();
        self.db_statement_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn record_request(&self, operation: &str, outcome: &str, elapsed: Duration) {
        self.graphql_requests
            .get_or_create(&RequestLabels { operation: operation.into(), outcome: outcome.into() })
            .inc();
        self.graphql_latency.observe(elapsed.as_secs_f64());
    }

    pub fn reject(&self, reason: &str) {
        self.http_rejections.get_or_create(&OutcomeLabels { outcome: reason.into() }).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
