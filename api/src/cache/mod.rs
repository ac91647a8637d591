//! One cache interface over two stores: Redis when `REDIS_URL` is set, in-process (moka)
//! otherwise. Callers never see a cache failure: a miss and an unreachable store look the same,
//! so every read falls back to the database.

pub mod memory;

use std::time::Duration;

pub use memory::MemoryCache;

/// What every cache store offers. Values are opaque bytes; keys are namespaced by the caller
/// through `Cache::key`.
#[async_trait::async_trait]
pub trait CacheStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Option<Vec<u8>>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration);
    async fn delete(&self, key: &str);
    /// Increment the counter at `key`, creating it with `window` to live; returns the new count
    /// and the time left in the window, or `None` when the store is unavailable.
    async fn incr(&self, key: &str, window: Duration) -> Option<(u64, Duration)>;
    /// A short name for logs and metrics.
    fn kind(&self) -> &'static str;
}

/// The shared cache handle: a store plus a key prefix (tests and tenants get their own).
#[derive(Clone)]
pub struct Cache {
    store: std::sync::Arc<dyn CacheStore>,
    prefix: String,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("store", &self.store.kind()).field("prefix", &self.prefix).finish()
    }
}

impl Cache {
    pub fn new(store: std::sync::Arc<dyn CacheStore>, prefix: impl Into<String>) -> Self {
        Self { store, prefix: prefix.into() }
    }

    pub fn in_memory(prefix: impl Into<String>) -> Self {
        Self::new(std::sync::Arc::new(MemoryCache::new(100_000)), prefix)
    }

    pub fn kind(&self) -> &'static str {
        self.store.kind()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.store.get(&self.key(key)).await
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        self.store.set(&self.key(key), value, ttl).await
    }

    pub async fn delete(&self, key: &str) {
        self.store.delete(&self.key(key)).await
    }

    pub async fn incr(&self, key: &str, window: Duration) -> Option<(u64, Duration)> {
        self.store.incr(&self.key(key), window).await
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
