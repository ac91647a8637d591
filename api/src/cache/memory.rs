//! The in-process store: moka with a per-entry time to live.

use std::time::{Duration, Instant};

use moka::{Expiry, future::Cache as Moka, ops::compute::Op};

#[derive(Clone)]
struct Entry {
    value: Vec<u8>,
    ttl: Duration,
    /// When a counter's window started (counters only).
    started: Instant,
}

/// Values live for their own TTL, renewed when overwritten.
struct ValueTtl;

impl Expiry<String, Entry> for ValueTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _now: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Counters live for their window, however often they are incremented.
struct CounterWindow;

impl Expiry<String, Entry> for CounterWindow {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub struct MemoryCache {
    entries: Moka<String, Entry>,
    counters: Moka<String, Entry>,
}

impl MemoryCache {
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: Moka::builder().max_capacity(max_entries).expire_after(ValueTtl).build(),
            counters: Moka::builder().max_capacity(max_entries).expire_after(CounterWindow).build(),
        }
    }
}

#[async_trait::async_trait]
impl super::CacheStore for MemoryCache {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.get(key).await.map(|e| e.value)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        self.entries.insert(key.to_owned(), Entry { value: value.to_vec(), ttl, started: Instant::now() }).await;
    }

    async fn delete(&self, key: &str) {
        self.entries.invalidate(key).await;
        self.counters.invalidate(key).await;
    }

    async fn incr_by(&self, key: &str, by: u64, window: Duration) -> Option<(u64, Duration)> {
        let now = Instant::now();
        let result = self
            .counters
            .entry(key.to_owned())
            .and_compute_with(|existing| {
                let next = match existing.map(|e| e.into_value()) {
                    Some(entry) if now.duration_since(entry.started) < entry.ttl => {
                        let count = u64::from_le_bytes(entry.value.try_into().unwrap_or([0; 8])).saturating_add(by);
                        Entry { value: count.to_le_bytes().to_vec(), ttl: entry.ttl, started: entry.started }
                    }
                    _ => Entry { value: by.to_le_bytes().to_vec(), ttl: window, started: now },
                };
                std::future::ready(Op::Put(next))
            })
            .await;
        let entry = result.into_entry()?.into_value();
        let count = u64::from_le_bytes(entry.value.clone().try_into().unwrap_or([0; 8]));
        let left = entry.ttl.saturating_sub(now.duration_since(entry.started));
        Some((count, left))
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CacheStore;

    #[tokio::test]
    async fn stores_expires_and_counts() {
        let cache = MemoryCache::new(100);
        cache.set("a", b"1", Duration::from_secs(60)).await;
        assert_eq!(cache.get("a").await.as_deref(), Some(&b"1"[..]));
        cache.delete("a").await;
        assert_eq!(cache.get("a").await, None);
        assert_eq!(cache.incr("n", Duration::from_secs(60)).await.map(|c| c.0), Some(1));
        assert_eq!(cache.incr("n", Duration::from_secs(60)).await.map(|c| c.0), Some(2));
    }
}
