//! The Redis store, shared by every instance of a deployment.
//!
//! It fails open: a Redis that is down, slow or restarting never fails or stalls a request.
//! - The connection is made lazily (on first use), so a Redis that is down at start-up neither
//!   blocks nor fails start-up.
//! - Every call is bounded by a short timeout (`REDIS_TIMEOUT_MS`, 250 ms by default) for the
//!   connection and for the answer.
//! - A circuit breaker stops calling Redis for `REDIS_BREAKER_COOLDOWN_MS` after
//!   `REDIS_BREAKER_FAILURES` consecutive failures, then lets one call through to probe it; a
//!   success closes it again (the connection manager reconnects on its own).
//! - Any failure is a miss (reads), a no-op (writes) or an in-process count (counters, so rate
//!   limits and login throttling keep working per instance); it is counted in `/metrics` and
//!   logged at `warn` at most every 10 seconds, at `debug` otherwise.

use std::{
    sync::{
        Arc, Weak,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use redis::{
    RedisError, RedisResult,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{CacheStore, MemoryCache};
use crate::{config::CacheSettings, metrics::Metrics};

/// How often a failure is logged at `warn` (the rest go to `debug`).
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How often an idle subscription checks that Redis still answers.
const SUBSCRIPTION_PING_EVERY: Duration = Duration::from_secs(15);
/// The longest wait between two attempts to re-subscribe.
const RESUBSCRIBE_MAX_WAIT: Duration = Duration::from_secs(2);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Consecutive failures open the breaker for a cool-down; after it, one probe per cool-down
/// goes through until one succeeds.
struct Breaker {
    threshold: u32,
    cooldown_ms: u64,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which Redis is skipped; 0 while closed.
    open_until: AtomicU64,
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown_ms: millis(cooldown).max(1),
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Whether a call may go to Redis now.
    fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = self.now_ms();
        if now < until {
            return false;
        }
        // Half-open: the caller that re-arms the window probes; re-arming first means a probe that
        // is cancelled half-way cannot leave the breaker stuck.
        self.open_until
            .compare_exchange(until, now.saturating_add(self.cooldown_ms).max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Returns true when this success closed an open breaker.
    fn success(&self) -> bool {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        self.open_until.load(Ordering::Acquire) != 0 && self.open_until.swap(0, Ordering::AcqRel) != 0
    }

    /// Returns true when this failure opened the breaker.
    fn failure(&self) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if failures < self.threshold {
            return false;
        }
        let until = self.now_ms().saturating_add(self.cooldown_ms).max(1);
        self.open_until.swap(until, Ordering::AcqRel) == 0
    }
}

/// Logs at `warn` at most once per `WARN_EVERY`, at `debug` otherwise.
struct LogLimiter {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last warning, plus one (0 = never).
    last: AtomicU64,
}

impl LogLimiter {
    fn new() -> Self {
        Self { epoch: Instant::now(), last: AtomicU64::new(0) }
    }

    fn should_warn(&self) -> bool {
        let now = millis(self.epoch.elapsed()).saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= millis(WARN_EVERY))
            && self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

fn reason(err: &RedisError) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connection_refusal() {
        "refused"
    } else if err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error() {
        "connection"
    } else {
        "command"
    }
}

pub struct RedisStore {
    client: redis::Client,
    manager: ConnectionManager,
    timeout: Duration,
    breaker: Breaker,
    /// Counters while Redis is unavailable: limits keep working, per instance.
    fallback: MemoryCache,
    metrics: Arc<Metrics>,
    log: LogLimiter,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Parse the URL and prepare a lazily connected manager; nothing touches the network here.
    pub fn new(url: &str, settings: &CacheSettings, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.redis_timeout))
            .set_response_timeout(Some(settings.redis_timeout))
            // One attempt per (re)connection: the breaker decides when to try again.
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| anyhow::anyhow!("Redis connection manager: {e}"))?;
        Ok(Self {
            client,
            manager,
            timeout: settings.redis_timeout,
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cooldown),
            fallback: MemoryCache::new(100_000),
            metrics,
            log: LogLimiter::new(),
        })
    }

    fn failed(&self, operation: &'static str, reason: &'static str, detail: &str) {
        self.metrics.cache_error(operation, reason);
        let opened = self.breaker.failure();
        if opened {
            self.metrics.cache_breaker_open.set(1);
        }
        if opened || self.log.should_warn() {
            tracing::warn!(
                operation,
                reason,
                error = detail,
                breaker_open = opened,
                "Redis unavailable; serving without it"
            );
        } else {
            tracing::debug!(operation, reason, error = detail, "Redis call failed");
        }
    }

    /// Run one Redis call under the breaker and the timeout; `None` on any failure.
    async fn run<T, F, Fut>(&self, operation: &'static str, call: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.breaker.allow() {
            self.metrics.cache_error(operation, "breaker_open");
            return None;
        }
        match tokio::time::timeout(self.timeout, call(self.manager.clone())).await {
            Ok(Ok(value)) => {
                if self.breaker.success() {
                    self.metrics.cache_breaker_open.set(0);
                    tracing::info!("Redis reachable again; cache back in use");
                }
                Some(value)
            }
            Ok(Err(err)) => {
                self.failed(operation, reason(&err), &err.to_string());
                None
            }
            Err(_) => {
                self.failed(operation, "timeout", "no answer in time");
                None
            }
        }
    }

    /// Publish a message on a channel; false when Redis could not take it.
    pub async fn publish(&self, channel: &str, payload: &[u8]) -> bool {
        self.run("publish", |mut conn| async move {
            redis::cmd("PUBLISH").arg(channel).arg(payload).query_async::<i64>(&mut conn).await
        })
        .await
        .is_some()
    }

    /// Listen on `channel` for as long as `sink` lives, handing each message to `deliver`. The
    /// subscription runs on its own connection and is made again whenever it is lost (a Redis
    /// restart, a dropped connection, a ping without answer).
    pub fn spawn_subscriber<S, F>(self: &Arc<Self>, channel: String, sink: Weak<S>, deliver: F)
    where
        S: Send + Sync + 'static,
        F: Fn(&S, &[u8]) + Send + Sync + 'static,
    {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(50);
            loop {
                let Some(this) = store.upgrade() else { return };
                if sink.strong_count() == 0 {
                    return;
                }
                match this.listen(&channel, &sink, &deliver).await {
                    Listen::Stopped => return,
                    Listen::Lost { received } => {
                        if received {
                            wait = Duration::from_millis(50);
                        }
                    }
                }
                drop(this);
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RESUBSCRIBE_MAX_WAIT);
            }
        });
    }

    async fn listen<S, F>(&self, channel: &str, sink: &Weak<S>, deliver: &F) -> Listen
    where
        F: Fn(&S, &[u8]),
    {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), connect).await {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(err)) => {
                self.log_subscription(&err.to_string());
                return Listen::Lost { received: false };
            }
            Err(_) => {
                self.log_subscription("no answer in time");
                return Listen::Lost { received: false };
            }
        };
        tracing::info!(channel, "subscribed to Redis events");
        self.metrics.event("redis_subscribed");
        let (mut control, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval(SUBSCRIPTION_PING_EVERY);
        ping.tick().await;
        let mut received = false;
        loop {
            tokio::select! {
                message = messages.next() => {
                    let Some(message) = message else {
                        self.log_subscription("subscription connection closed");
                        return Listen::Lost { received: true };
                    };
                    let Some(target) = sink.upgrade() else { return Listen::Stopped };
                    received = true;
                    deliver(&target, message.get_payload_bytes());
                }
                _ = ping.tick() => {
                    if sink.strong_count() == 0 {
                        return Listen::Stopped;
                    }
                    let answered = tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), control.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        self.log_subscription("ping without answer");
                        return Listen::Lost { received };
                    }
                }
            }
        }
    }

    fn log_subscription(&self, detail: &str) {
        self.metrics.cache_error("subscribe", "connection");
        if self.log.should_warn() {
            tracing::warn!(error = detail, "Redis event subscription lost; retrying");
        } else {
            tracing::debug!(error = detail, "Redis event subscription attempt failed");
        }
    }
}

enum Listen {
    /// Nobody listens any more (the application was dropped).
    Stopped,
    /// The connection was lost; `received` tells whether it had worked for a while.
    Lost { received: bool },
}

#[async_trait::async_trait]
impl CacheStore for RedisStore {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.run(
            "get",
            |mut conn| async move { redis::cmd("GET").arg(key).query_async::<Option<Vec<u8>>>(&mut conn).await },
        )
        .await
        .flatten()
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) {
        let ms = millis(ttl);
        if ms == 0 {
            return;
        }
        self.run("set", |mut conn| async move {
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ms).query_async::<()>(&mut conn).await
        })
        .await;
    }

    async fn delete(&self, key: &str) {
        self.run("delete", |mut conn| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut conn).await })
            .await;
    }

    async fn delete_many(&self, keys: &[String]) {
        self.run("delete", |mut conn| async move { redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await })
            .await;
    }

    async fn incr_by(&self, key: &str, by: u64, window: Duration) -> Option<(u64, Duration)> {
        let window_ms = millis(window).max(1);
        let counted = self
            .run("incr", |mut conn| async move {
                // One round trip: count, start the window only if none is running, read what is left.
                redis::pipe()
                    .cmd("INCRBY")
                    .arg(key)
                    .arg(by)
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(window_ms)
                    .arg("NX")
                    .ignore()
                    .cmd("PTTL")
                    .arg(key)
                    .query_async::<(u64, i64)>(&mut conn)
                    .await
            })
            .await;
        match counted {
            Some((count, left_ms)) => {
                let left = u64::try_from(left_ms).map(Duration::from_millis).unwrap_or(window);
                Some((count, left))
            }
            None => self.fallback.incr_by(key, by, window).await,
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_consecutive_failures_and_probes_after_cooldown() {
        let breaker = Breaker::new(3, Duration::from_millis(30));
        assert!(breaker.allow());
        assert!(!breaker.failure());
        assert!(!breaker.failure());
        assert!(breaker.failure(), "third failure opens");
        assert!(!breaker.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert!(breaker.allow(), "one probe after the cool-down");
        assert!(!breaker.allow(), "only one probe");
        assert!(breaker.success(), "a successful probe closes");
        assert!(breaker.allow());
        assert!(!breaker.failure(), "counting starts again");
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_fast_miss_and_counters_fall_back() {
        let settings = CacheSettings {
            redis_timeout: Duration::from_millis(100),
            breaker_failures: 2,
            breaker_cooldown: Duration::from_secs(60),
            catalogue_ttl: Duration::from_secs(30),
            persisted_query_ttl: Duration::from_secs(60),
            persisted_only: false,
        };
        // Port 1 on localhost: nothing listens there.
        let store = RedisStore::new("redis://127.0.0.1:1", &settings, Arc::new(Metrics::new())).unwrap();
        let started = Instant::now();
        for _ in 0..20 {
            assert_eq!(store.get("k").await, None);
            store.set("k", b"v", Duration::from_secs(1)).await;
        }
        assert_eq!(store.incr_by("n", 2, Duration::from_secs(60)).await.map(|c| c.0), Some(2));
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert!(store.metrics.render().contains("breaker_open"));
    }
}
