//! The public catalogue through the shared cache.
//!
//! Only answers that do not depend on who asks are cached: those for viewers limited to the
//! active catalogue (anonymous callers, patrons, funders, partners without `services:read`).
//! Staff and partners who see inactive services always read the database.
//!
//! Keys are versioned: every key holds the current catalogue version, a random token stored in
//! the cache itself and replaced by each `createService`/`updateService`. A write on instance A
//! therefore changes the key instance B reads next, so B never serves what A replaced; nothing
//! has to be deleted, old entries simply expire. The one window of staleness: if Redis was
//! unreachable while the write happened, the version could not be replaced and other instances
//! serve their cached answers until these expire (`RAPPORT_CATALOGUE_CACHE_TTL_SECS`, 30 s).

use std::time::Duration;

use entity::service;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::Cache;
use crate::{
    auth::{Capability, Viewer},
    domain::{
        pagination::{Cursor, Page, PageWindow, SortDirection},
        services::{self as domain, ServiceFilter, ServiceSort},
    },
    error::{AppError, AppResult},
};

const VERSION_KEY: &str = "catalogue-version";
/// The version outlives any entry; if it is evicted, a new one is drawn (a few misses, no harm).
const VERSION_TTL: Duration = Duration::from_secs(7 * 86_400);
/// Entries of different builds never mix during a rolling upgrade.
const LAYOUT: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize, Deserialize)]
struct CachedPage {
    items: Vec<(Cursor, service::Model)>,
    has_next_page: bool,
    has_previous_page: bool,
    total: Option<u64>,
}

/// A serialised answer everyone gets alike, with the `max-age` its fields allow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedAnswer {
    pub max_age: i32,
    pub body: String,
}

/// Catalogue reads and the invalidation that goes with writes.
pub struct Catalogue<'a> {
    cache: &'a Cache,
    ttl: Duration,
}

impl<'a> Catalogue<'a> {
    /// `ttl` zero turns catalogue caching off.
    pub fn new(cache: &'a Cache, ttl: Duration) -> Self {
        Self { cache, ttl }
    }

    /// Whether this viewer's answers are the same as everybody's (the active catalogue only).
    pub fn is_shared(viewer: &Viewer) -> bool {
        !viewer.can(Capability::ReadAllServices) && !viewer.is_staff()
    }

    fn enabled_for(&self, viewer: &Viewer) -> bool {
        !self.ttl.is_zero() && Self::is_shared(viewer)
    }

    async fn version(&self) -> String {
        if let Some(version) = self.cache.get(VERSION_KEY).await.and_then(|bytes| String::from_utf8(bytes).ok()) {
            return version;
        }
        let version = Uuid::new_v4().simple().to_string();
        self.cache.set(VERSION_KEY, version.as_bytes(), VERSION_TTL).await;
        version
    }

    /// After a catalogue write (already committed): every instance reads new keys from now on.
    pub async fn invalidate(&self) {
        let version = Uuid::new_v4().simple().to_string();
        self.cache.set(VERSION_KEY, version.as_bytes(), VERSION_TTL).await;
    }

    /// A whole anonymous GraphQL answer built only from catalogue fields, by the request's
    /// fingerprint (see `http::graphql`), under the current version: a catalogue write retires it
    /// like every other entry. `None` when caching is off or nothing is stored.
    pub async fn cached_answer(&self, fingerprint: &str) -> Option<SharedAnswer> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = Self::key(&self.version().await, &format!("answer:{fingerprint}"));
        self.cache.get_json::<SharedAnswer>(&key).await
    }

    /// Keeps `answer` for at most its own `max_age` and the catalogue TTL.
    pub async fn store_answer(&self, fingerprint: &str, answer: &SharedAnswer) {
        let ttl = self.ttl.min(Duration::from_secs(u64::try_from(answer.max_age).unwrap_or(0)));
        if ttl.is_zero() {
            return;
        }
        let key = Self::key(&self.version().await, &format!("answer:{fingerprint}"));
        self.cache.set_json(&key, answer, ttl).await;
    }

    fn key(version: &str, what: &str) -> String {
        format!("catalogue:{LAYOUT}:{version}:{what}")
    }

    /// One page of the catalogue, with the total count when `with_total`.
    pub async fn list(
        &self,
        db: &impl ConnectionTrait,
        viewer: &Viewer,
        filter: &ServiceFilter,
        sort: ServiceSort,
        direction: SortDirection,
        window: &PageWindow,
        with_total: bool,
    ) -> AppResult<(Page<service::Model>, Option<u64>)> {
        let load = || async {
            let page = domain::list(db, viewer, filter, sort, direction, window).await?;
            let total = if with_total { Some(domain::count(db, viewer, filter).await?) } else { None };
            Ok::<_, AppError>((page, total))
        };
        if !self.enabled_for(viewer) {
            return load().await;
        }
        // Asking for inactive services is refused for these viewers: let the domain say so.
        if filter.active == Some(false) {
            return load().await;
        }
        let fingerprint = Sha256::digest(format!("{filter:?}|{sort:?}|{direction:?}|{window:?}|{with_total}"));
        let key = Self::key(&self.version().await, &format!("list:{fingerprint:x}"));
        if let Some(cached) = self.cache.get_json::<CachedPage>(&key).await {
            let page = Page {
                items: cached.items,
                has_next_page: cached.has_next_page,
                has_previous_page: cached.has_previous_page,
            };
            return Ok((page, cached.total));
        }
        let (page, total) = load().await?;
        let cached = CachedPage {
            items: page.items.clone(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
            total,
        };
        self.cache.set_json(&key, &cached, self.ttl).await;
        Ok((page, total))
    }

    /// One service by id.
    pub async fn by_id(&self, db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<service::Model> {
        if !self.enabled_for(viewer) {
            return domain::get(db, viewer, id).await;
        }
        let key = Self::key(&self.version().await, &format!("id:{id}"));
        self.one(&key, viewer, domain::get(db, viewer, id)).await
    }

    /// One service by code (any case, as the domain accepts it).
    pub async fn by_code(&self, db: &impl ConnectionTrait, viewer: &Viewer, code: &str) -> AppResult<service::Model> {
        if !self.enabled_for(viewer) {
            return domain::get_by_code(db, viewer, code).await;
        }
        let key = Self::key(&self.version().await, &format!("code:{}", code.trim().to_ascii_uppercase()));
        self.one(&key, viewer, domain::get_by_code(db, viewer, code)).await
    }

    async fn one(
        &self,
        key: &str,
        viewer: &Viewer,
        load: impl Future<Output = AppResult<service::Model>>,
    ) -> AppResult<service::Model> {
        if let Some(model) = self.cache.get_json::<service::Model>(key).await {
            // Only visible rows are stored, but the check is cheap and keeps the rule in one place.
            domain::check_visible(viewer, &model)?;
            return Ok(model);
        }
        let model = load.await?;
        self.cache.set_json(key, &model, self.ttl).await;
        Ok(model)
    }
}
