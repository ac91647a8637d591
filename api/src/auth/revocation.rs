//! Revoked access tokens and sessions.
//!
//! The database table `revoked_token` is the source of truth; the cache answers the check on
//! every request. The cache holds one key per live revocation plus a marker saying "every live
//! revocation is loaded". While the marker is present, a token is revoked exactly when its key
//! is there, so a warm check costs cache look-ups and no SQL. Without the marker (first request,
//! marker expired, cache restarted or unreachable) the live revocations are read from the
//! database in one statement, and the answer comes from what was read.
//!
//! A revocation writes the row, sets its key and drops the marker, so the next check reloads
//! from the database even if setting the key was lost. With the in-process cache, a revocation
//! made by another instance is seen after at most [`LOADED_TTL`]; with Redis, at once.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use entity::revoked_token::{self, RevocationKind};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict};

use crate::{
    cache::Cache,
    error::{AppError, AppResult},
};

const LOADED_KEY: &str = "auth:revocations:loaded";

/// How long a loaded revocation list is trusted before it is read again.
pub const LOADED_TTL: Duration = Duration::from_secs(300);

/// Rows are kept this long past their expiry, then purged on a later revocation.
const PURGE_AFTER: chrono::Duration = chrono::Duration::hours(1);

fn cache_key(kind: RevocationKind, id: &str) -> String {
    format!("auth:revoked:{}:{id}", kind.as_str())
}

/// What to check for one token.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenRef<'a> {
    pub jti: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

impl TokenRef<'_> {
    fn keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if let Some(jti) = self.jti {
            keys.push(cache_key(RevocationKind::Access, jti));
        }
        if let Some(sid) = self.session_id {
            keys.push(cache_key(RevocationKind::Session, sid));
        }
        keys
    }
}

/// Whether the token (by `jti`) or its session (by `sid`) has been revoked.
pub async fn is_revoked(db: &impl ConnectionTrait, cache: &Cache, token: TokenRef<'_>) -> AppResult<bool> {
    let keys = token.keys();
    if keys.is_empty() {
        return Ok(false);
    }
    if cache.get(LOADED_KEY).await.is_none() {
        let live = load(db, cache).await?;
        return Ok(keys.iter().any(|k| live.contains(k)));
    }
    let found = futures_util::future::join_all(keys.iter().map(|k| cache.get(k))).await;
    Ok(found.iter().any(Option::is_some))
}

/// Read every live revocation into the cache; returns their cache keys.
async fn load(db: &impl ConnectionTrait, cache: &Cache) -> AppResult<HashSet<String>> {
    let now = Utc::now();
    let rows = revoked_token::Entity::find().filter(revoked_token::Column::ExpiresAt.gt(now)).all(db).await?;
    let mut live = HashSet::with_capacity(rows.len());
    for row in rows {
        let key = cache_key(row.kind, &row.jti);
        if let Ok(ttl) = (row.expires_at - now).to_std() {
            cache.set(&key, b"1", ttl).await;
        }
        live.insert(key);
    }
    cache.set(LOADED_KEY, b"1", LOADED_TTL).await;
    Ok(live)
}

/// Revoke one access token (by `jti`) or one session (by `sid`) until `expires_at`, when every
/// token it could match has expired anyway. Idempotent.
pub async fn revoke(
    db: &impl ConnectionTrait,
    cache: &Cache,
    kind: RevocationKind,
    id: &str,
    expires_at: DateTime<Utc>,
) -> AppResult<()> {
    let now = Utc::now();
    let row = revoked_token::ActiveModel {
        jti: Set(id.to_owned()),
        kind: Set(kind),
        expires_at: Set(expires_at),
        created_at: Set(now),
    };
    revoked_token::Entity::insert(row)
        .on_conflict(
            OnConflict::column(revoked_token::Column::Jti).update_column(revoked_token::Column::ExpiresAt).to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(now - PURGE_AFTER))
        .exec(db)
        .await?;
    if let Ok(ttl) = (expires_at - now).to_std() {
        cache.set(&cache_key(kind, id), b"1", ttl).await;
    }
    cache.delete(LOADED_KEY).await;
    Ok(())
}

/// The expiry for a revocation of an access token whose `exp` is `exp` (seconds), allowing for
/// the verification leeway.
pub fn access_expiry(exp: i64, leeway: Duration) -> AppResult<DateTime<Utc>> {
    let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX / 2);
    Utc.timestamp_opt(exp.saturating_add(leeway), 0)
        .single()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("token expiry out of range")))
}

/// The expiry for a session revocation: every access token of the session, minted at most now
/// with the access lifetime, has expired by then.
pub fn session_expiry(access_ttl: Duration, leeway: Duration) -> DateTime<Utc> {
    let span = chrono::Duration::from_std(access_ttl + leeway).unwrap_or(chrono::Duration::days(1));
    Utc::now() + span
}
