//! Login throttling: failed attempts are counted per identity (account email, card number,
//! partner client, patron) and per client address, in the shared cache. Once a counter reaches
//! its limit within the window, further attempts on it are refused with `RATE_LIMITED` (and a
//! retry-after) before any password is checked, until the window ends.
//!
//! Identities are hashed into the keys, so no email or card number sits in the cache. Unknown
//! identities are counted exactly like known ones. When the cache is unreachable, throttling is
//! skipped rather than locking everybody out.

use std::net::IpAddr;

use chrono::Utc;

use super::password::sha256_hex;
use crate::{
    cache::Cache,
    config::AuthSettings,
    error::{AppError, AppResult},
};

/// One counter: an identity or an address, with its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    name: String,
    limit: u64,
}

impl Counter {
    /// Failed attempts on one identity, e.g. `("account", "ada@example.org")`.
    pub fn identity(settings: &AuthSettings, kind: &str, value: &str) -> Self {
        Self { name: format!("{kind}:{}", &sha256_hex(value)[..32]), limit: settings.login_max_failures }
    }

    /// Failed attempts from one client address.
    pub fn address(settings: &AuthSettings, ip: IpAddr) -> Self {
        Self { name: format!("ip:{ip}"), limit: settings.login_max_failures_per_ip }
    }

    fn failures_key(&self) -> String {
        format!("auth:throttle:failures:{}", self.name)
    }

    fn block_key(&self) -> String {
        format!("auth:throttle:blocked:{}", self.name)
    }
}

/// The counters of one attempt: the identity, and the address when known.
pub fn counters(settings: &AuthSettings, kind: &str, identity: &str, ip: Option<IpAddr>) -> Vec<Counter> {
    let mut counters = vec![Counter::identity(settings, kind, identity)];
    counters.extend(ip.map(|ip| Counter::address(settings, ip)));
    counters
}

/// Refuse the attempt when any counter is blocked.
pub async fn check(cache: &Cache, counters: &[Counter]) -> AppResult<()> {
    let now = Utc::now().timestamp();
    let mut wait = 0;
    for counter in counters.iter().filter(|c| c.limit > 0) {
        let until = cache
            .get(&counter.block_key())
            .await
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<i64>().ok());
        if let Some(until) = until.filter(|until| *until > now) {
            wait = wait.max(until - now);
        }
    }
    if wait > 0 { Err(AppError::RateLimited { retry_after_secs: wait.unsigned_abs() }) } else { Ok(()) }
}

/// Count a failed attempt on every counter; those reaching their limit block until their window
/// ends.
pub async fn record_failure(cache: &Cache, settings: &AuthSettings, counters: &[Counter]) {
    for counter in counters.iter().filter(|c| c.limit > 0) {
        let Some((count, left)) = cache.incr(&counter.failures_key(), settings.login_failure_window).await else {
            continue;
        };
        if count >= counter.limit {
            let left = left.max(std::time::Duration::from_secs(1));
            let until = Utc::now().timestamp() + i64::try_from(left.as_secs()).unwrap_or(i64::MAX / 4) + 1;
            cache.set(&counter.block_key(), until.to_string().as_bytes(), left).await;
        }
    }
}

/// Forget the failures of an identity after a successful login (addresses keep their count:
/// one success must not let an address keep guessing other accounts).
pub async fn record_success(cache: &Cache, identity: &Counter) {
    cache.delete(&identity.failures_key()).await;
}
