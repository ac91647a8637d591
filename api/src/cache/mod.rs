//! One cache interface over two stores: Redis when `REDIS_URL` is set, in-process (moka)
//! otherwise. Callers never see a cache failure: a miss and an unreachable store look the same,
//! so every read falls back to the database.
//!
//! Keys are `area:rest` (`catalogue:…`, `apq:…`, `rl:…`); the area labels the hit and miss
//! counters in `/metrics`. Every key gets the configured prefix, so several libraries (or
//! parallel tests) can share one Redis.

pub mod catalogue;
pub mod memory;
pub mod redis;

use std::{sync::Arc, time::Duration};

pub use memory::MemoryCache;
pub use redis::RedisStore;

use secrecy::ExposeSecret;

use crate::{config::Settings, events::Events, metrics::Metrics};

/// The cache and the event bus the settings ask for: Redis when `REDIS_URL` is set (connected
/// lazily: a Redis that is down does not stop start-up), in-process otherwise.
pub fn from_settings(settings: &Settings, metrics: Arc<Metrics>) -> anyhow::Result<(Cache, Events)> {
    let prefix = settings.cache_prefix.clone();
    match &settings.redis_url {
        None => {
            let cache = Cache::in_memory(prefix).with_metrics(metrics.clone());
            Ok((cache, Events::in_process(metrics)))
        }
        Some(url) => {
            let store = Arc::new(RedisStore::new(url.expose_secret(), &settings.cache, metrics.clone())?);
            let events = Events::with_redis(store.clone(), format!("{prefix}events"), metrics.clone());
            Ok((Cache::new(store, prefix).with_metrics(metrics), events))
        }
    }
}

/// What every cache store offers. Values are opaque bytes; keys are namespaced by the caller
/// through `Cache::key`.
#[async_trait::async_trait]
pub trait CacheStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration);
    async fn delete(&self, key: &str);
    /// Delete several keys (one round trip where the store allows it).
    async fn delete_many(&self, keys: &[String]) {
        for key in keys {
            self.delete(key).await;
        }
    }
    /// Add `by` to the counter at `key`, creating it with `window` to live (a fixed window: later
    /// increments do not extend it); returns the new count and the time left in the window, or
    /// `None` when the store is unavailable.
    async fn incr_by(&self, key: &str, by: u64, window: Duration) -> Option<(u64, Duration)>;
    /// `incr_by(key, 1, window)`.
    async fn incr(&self, key: &str, window: Duration) -> Option<(u64, Duration)> {
        self.incr_by(key, 1, window).await
    }
    /// A short name for logs and metrics.
    fn kind(&self) -> &'static str;
}

/// The shared cache handle: a store plus a key prefix (tests and tenants get their own).
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn CacheStore>,
    prefix: String,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("store", &self.store.kind()).field("prefix", &self.prefix).finish()
    }
}

/// The area of a key, for metrics: the part before the first `:`.
fn area(key: &str) -> &str {
    key.split(':').next().unwrap_or(key)
}

impl Cache {
    pub fn new(store: Arc<dyn CacheStore>, prefix: impl Into<String>) -> Self {
        Self { store, prefix: prefix.into(), metrics: None }
    }

    pub fn in_memory(prefix: impl Into<String>) -> Self {
        Self::new(Arc::new(MemoryCache::new(100_000)), prefix)
    }

    /// Count hits and misses in these metrics.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }

    /// The prefix every key gets (also the namespace of pub/sub channels).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let value = self.store.get(&self.key(key)).await;
        if let Some(metrics) = &self.metrics {
            metrics.cache_lookup(area(key), value.is_some());
        }
        value
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        self.store.set(&self.key(key), value, ttl).await
    }

    pub async fn delete(&self, key: &str) {
        self.store.delete(&self.key(key)).await
    }

    pub async fn delete_many(&self, keys: impl IntoIterator<Item = String>) {
        let keys: Vec<String> = keys.into_iter().map(|k| self.key(&k)).collect();
        if !keys.is_empty() {
            self.store.delete_many(&keys).await
        }
    }

    pub async fn incr(&self, key: &str, window: Duration) -> Option<(u64, Duration)> {
        self.store.incr_by(&self.key(key), 1, window).await
    }

    pub async fn incr_by(&self, key: &str, by: u64, window: Duration) -> Option<(u64, Duration)> {
        self.store.incr_by(&self.key(key), by, window).await
    }

    /// JSON helpers: a value that does not decode is treated as a miss.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key).await.and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    pub async fn set_json<T: serde::Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.set(key, &bytes, ttl).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefixes_keys_and_counts_hits_by_area() {
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(MemoryCache::new(100));
        let a = Cache::new(store.clone(), "a:").with_metrics(metrics.clone());
        let b = Cache::new(store, "b:");
        a.set("apq:x", b"1", Duration::from_secs(60)).await;
        assert_eq!(b.get("apq:x").await, None);
        assert_eq!(a.get("apq:x").await.as_deref(), Some(&b"1"[..]));
        assert_eq!(a.get("apq:y").await, None);
        let text = metrics.render();
        assert!(text.contains(r#"rapport_cache_hits_total{area="apq"} 1"#), "{text}");
        assert!(text.contains(r#"rapport_cache_misses_total{area="apq"} 1"#), "{text}");
        assert_eq!(a.incr_by("rl:x", 3, Duration::from_secs(60)).await.map(|c| c.0), Some(3));
        assert_eq!(a.incr("rl:x", Duration::from_secs(60)).await.map(|c| c.0), Some(4));
    }
}
