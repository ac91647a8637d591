//! Automatic persisted queries, compatible with Apollo's protocol.
//!
//! A client sends `extensions.persistedQuery = { version: 1, sha256Hash }` and no `query`; if
//! the document is known it runs, otherwise the answer is the error `PersistedQueryNotFound`
//! (`extensions.code = "PERSISTED_QUERY_NOT_FOUND"`, the one code outside our fixed set, because
//! Apollo clients look for it) and the client sends the document again with its hash. The hash
//! is checked (a mismatch is `BAD_USER_INPUT`) and the document stored through the cache, so
//! every instance knows it. Hash-only requests work over GET too, which keeps URLs short enough
//! for CDNs.
//!
//! With `RAPPORT_PERSISTED_ONLY=1` (allow-list mode) only known documents run. Documents are
//! registered by sending them with their hash from a STAFF or ADMIN token (a build step of the
//! app does this once per release); staff and admins may also send any document without a
//! hash, as their tools need. Everyone else gets `FORBIDDEN` for a document that is not
//! registered.

use std::time::Duration;

use async_graphql::{Request, Value};
use sha2::{Digest, Sha256};

use crate::{auth::Viewer, cache::Cache};

pub const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";
pub const NOT_FOUND_CODE: &str = "PERSISTED_QUERY_NOT_FOUND";

/// Why a request's document cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Hash-only request for a document this deployment does not know (yet).
    NotFound,
    /// Malformed `persistedQuery` extension, or a hash that does not match the document.
    BadInput(String),
    /// Allow-list mode: the document is not registered and the viewer may not register it.
    NotRegistered,
}

pub struct Persisted<'a> {
    cache: &'a Cache,
    ttl: Duration,
    only_known: bool,
}

fn key(hash: &str) -> String {
    format!("apq:{hash}")
}

/// Lower-case hex SHA-256 of a document, as clients compute it.
pub fn sha256_hex(document: &str) -> String {
    format!("{:x}", Sha256::digest(document.as_bytes()))
}

/// The `sha256Hash` of a `persistedQuery` extension, checked.
fn requested_hash(extension: &Value) -> Result<String, Refusal> {
    let bad = |message: &str| Refusal::BadInput(message.to_owned());
    let Value::Object(fields) = extension else {
        return Err(bad("`extensions.persistedQuery` must be an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(bad("unsupported persisted query version; use version 1")),
    }
    let Some(Value::String(hash)) = fields.get("sha256Hash") else {
        return Err(bad("`extensions.persistedQuery.sha256Hash` is required"));
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("`sha256Hash` must be 64 hexadecimal digits"));
    }
    Ok(hash.to_ascii_lowercase())
}

impl<'a> Persisted<'a> {
    pub fn new(cache: &'a Cache, ttl: Duration, only_known: bool) -> Self {
        Self { cache, ttl, only_known }
    }

    async fn known(&self, hash: &str) -> Option<String> {
        self.cache.get(&key(hash)).await.and_then(|bytes| String::from_utf8(bytes).ok())
    }

    async fn store(&self, hash: &str, document: &str) {
        // Only documents that parse: the store is not a place to park arbitrary text.
        if crate::graphql::limits::parse_document(document).is_ok() {
            self.cache.set(&key(hash), document.as_bytes(), self.ttl).await;
        }
    }

    /// Settle the document of `request`: fill it in from the store for a hash-only request,
    /// check and store a document sent with its hash, apply the allow-list.
    pub async fn resolve(&self, viewer: &Viewer, request: &mut Request) -> Result<(), Refusal> {
        let may_register = viewer.is_staff();
        let Some(extension) = request.extensions.get("persistedQuery") else {
            if self.only_known && !may_register && !request.query.trim().is_empty() {
                return Err(Refusal::NotRegistered);
            }
            return Ok(());
        };
        let hash = requested_hash(extension)?;
        if request.query.trim().is_empty() {
            request.query = self.known(&hash).await.ok_or(Refusal::NotFound)?;
            return Ok(());
        }
        if sha256_hex(&request.query) != hash {
            return Err(Refusal::BadInput("provided sha does not match query".into()));
        }
        if !self.only_known || may_register {
            self.store(&hash, &request.query).await;
            return Ok(());
        }
        match self.known(&hash).await {
            Some(_) => Ok(()),
            None => Err(Refusal::NotRegistered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;

    fn with_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        let extension: serde_json::Value = serde_json::json!({ "version": 1, "sha256Hash": hash });
        request.extensions.insert("persistedQuery".into(), Value::from_json(extension).unwrap());
        request
    }

    #[tokio::test]
    async fn round_trip_mismatch_and_allow_list() {
        let cache = Cache::in_memory("t:");
        let apq = Persisted::new(&cache, Duration::from_secs(60), false);
        let anonymous = Viewer::anonymous();
        let doc = "{ services { totalCount } }";
        let hash = sha256_hex(doc);
        assert_eq!(apq.resolve(&anonymous, &mut with_hash("", &hash)).await, Err(Refusal::NotFound));
        assert!(apq.resolve(&anonymous, &mut with_hash(doc, &"0".repeat(64))).await.is_err());
        assert_eq!(apq.resolve(&anonymous, &mut with_hash(doc, &hash)).await, Ok(()));
        let mut hash_only = with_hash("", &hash.to_ascii_uppercase());
        assert_eq!(apq.resolve(&anonymous, &mut hash_only).await, Ok(()));
        assert_eq!(hash_only.query, doc);

        let strict = Persisted::new(&cache, Duration::from_secs(60), true);
        let other = "{ services { edges { cursor } } }";
        assert_eq!(strict.resolve(&anonymous, &mut Request::new(other)).await, Err(Refusal::NotRegistered));
        assert_eq!(
            strict.resolve(&anonymous, &mut with_hash(other, &sha256_hex(other))).await,
            Err(Refusal::NotRegistered)
        );
        let staff = Viewer::new(Principal::Staff { account_id: "s".into() });
        assert_eq!(strict.resolve(&staff, &mut with_hash(other, &sha256_hex(other))).await, Ok(()));
        assert_eq!(strict.resolve(&anonymous, &mut with_hash(other, &sha256_hex(other))).await, Ok(()));
    }
}
