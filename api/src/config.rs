//! Typed settings: defaults, then environment overrides. Built once at start-up and passed in.

use std::{path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};

/// The HS256 secret used when none is configured. Fine on a laptop, refused in production.
pub const DEVELOPMENT_JWT_SECRET: &str = "rapport-development-secret-do-not-use-in-production";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { name, message: message.into() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    EdDsa,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    /// HS256 shared secret.
    pub secret: SecretString,
    /// PEM private key (RS256/EdDSA) used to mint tokens; optional for verify-only deployments.
    pub private_key_pem: Option<SecretString>,
    /// PEM public key (RS256/EdDSA) used to verify tokens.
    pub public_key_pem: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// Allowed clock skew when checking `exp` and `nbf`.
    pub leeway: Duration,
    /// `kid` of the current key; derived from the key when unset.
    pub key_id: Option<String>,
    /// PEM public keys (one or more blocks) of earlier RS256/EdDSA keys: their tokens still
    /// verify until they expire, new tokens use the current key.
    pub previous_public_keys_pem: Option<String>,
    /// Earlier HS256 secrets, still accepted for verification after a rotation.
    pub previous_secrets: Vec<SecretString>,
}

/// Sessions and logins.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Lifetime of a refresh token (each rotation issues a new one).
    pub refresh_ttl: Duration,
    /// Failed logins per account (or card number, or partner client) within the window before
    /// further attempts are refused.
    pub login_max_failures: u64,
    /// Failed logins per client address within the window.
    pub login_max_failures_per_ip: u64,
    pub login_failure_window: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub max_body_bytes: usize,
    pub default_page_size: u64,
    pub max_page_size: u64,
    pub max_bulk_interactions: usize,
    /// GraphQL operations executing at once per process; `None`: twice the database pool. A
    /// request past it waits (at most the database acquire timeout) before it is parsed and run,
    /// so memory stays bounded by the operations actually running, not by the clients waiting.
    pub max_concurrent_operations: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 5_000,
            max_aliases: 30,
            max_batch: 10,
            max_body_bytes: 2 * 1024 * 1024,
            default_page_size: 20,
            max_page_size: 100,
            max_bulk_interactions: 1_000,
            max_concurrent_operations: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    pub fn is_sqlite(&self) -> bool {
        self.url.expose_secret().starts_with("sqlite:")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub bind: String,
    pub database: DatabaseSettings,
    pub redis_url: Option<SecretString>,
    /// Prefix of every cache key, so instances of different libraries (or tests) can share a Redis.
    pub cache_prefix: String,
    pub jwt: JwtSettings,
    pub auth: AuthSettings,
    pub limits: Limits,
    /// Fill an empty database with the demo library on start.
    pub demo: bool,
    /// Seconds a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    pub log_format_json: bool,
    /// HTTP worker threads; one per core when unset.
    pub workers: Option<usize>,
    /// Redis behaviour, catalogue and persisted-query caching.
    pub cache: CacheSettings,
    /// Requests per minute per viewer, by role.
    pub rate_limits: RateLimits,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy you run).
    pub trust_proxy: bool,
    /// Interactions older than this many days lose their patron link, comment and staff notes
    /// (hourly job and `rapport purge`); unset keeps them forever (`RETENTION_DAYS`).
    pub retention_days: Option<u32>,
    /// Lifecycle stage thresholds (see `domain::engagement`).
    pub lifecycle: LifecycleSettings,
    /// Funder reports suppress cells counting fewer patrons than this (`RAPPORT_K_ANONYMITY`,
    /// default 5, at least 3).
    pub k_anonymity: u32,
}

/// Day thresholds of the patron lifecycle stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// A patron whose first interaction (or, without any, whose record) is younger than this is NEW
    /// (`RAPPORT_LIFECYCLE_NEW_DAYS`, default 30).
    pub new_days: u32,
    /// No interaction for this many days makes a patron AT_RISK (`RAPPORT_LIFECYCLE_AT_RISK_DAYS`, default 60).
    pub at_risk_days: u32,
    /// No interaction for this many days makes a patron LAPSED (`RAPPORT_LIFECYCLE_LAPSED_DAYS`, default 180).
    pub lapsed_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self { new_days: 30, at_risk_days: 60, lapsed_days: 180 }
    }
}

/// How the cache behaves: Redis timeouts and circuit breaker, what is cached for how long.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Connect and response timeout of every Redis call.
    pub redis_timeout: Duration,
    /// Consecutive Redis failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker skips Redis before probing it again.
    pub breaker_cooldown: Duration,
    /// Lifetime of cached catalogue answers (0 = no catalogue caching). Also the longest another
    /// instance can serve a stale catalogue if Redis was unreachable when a write happened.
    pub catalogue_ttl: Duration,
    /// Lifetime of stored persisted-query documents.
    pub persisted_query_ttl: Duration,
    /// Accept only documents already registered (automatic persisted queries allow-list).
    pub persisted_only: bool,
}

/// Requests per minute per viewer (token subject; client address for anonymous callers);
/// 0 means unlimited.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub anonymous: u64,
    pub patron: u64,
    pub funder: u64,
    pub partner: u64,
    pub staff: u64,
    pub admin: u64,
}

impl Settings {
    /// Settings from the process environment (after an optional `.env`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Settings from any key lookup, so tests can pass their own values without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let environment = match get("RAPPORT_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => return Err(invalid("RAPPORT_ENV", format!("unknown environment `{other}`"))),
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| default_sqlite_url(&PathBuf::from("data")));
        let algorithm = match get("JWT_ALGORITHM").as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("HS256") => JwtAlgorithm::Hs256,
            Some("RS256") => JwtAlgorithm::Rs256,
            Some("EDDSA") => JwtAlgorithm::EdDsa,
            Some(other) => return Err(invalid("JWT_ALGORITHM", format!("unsupported algorithm `{other}`"))),
        };
        let read_pem = |name: &'static str, path_key: &'static str| -> Result<Option<String>, ConfigError> {
            if let Some(pem) = get(name) {
                return Ok(Some(pem));
            }
            match get(path_key) {
                Some(path) => std::fs::read_to_string(&path)
                    .map(Some)
                    .map_err(|e| invalid(path_key, format!("cannot read {path}: {e}"))),
                None => Ok(None),
            }
        };
        let jwt = JwtSettings {
            algorithm,
            secret: SecretString::from(get("JWT_SECRET").unwrap_or_else(|| DEVELOPMENT_JWT_SECRET.to_owned())),
            private_key_pem: read_pem("JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE")?.map(SecretString::from),
            public_key_pem: read_pem("JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY_FILE")?,
            issuer: get("JWT_ISSUER").unwrap_or_else(|| "rapport".to_owned()),
            audience: get("JWT_AUDIENCE").unwrap_or_else(|| "rapport-api".to_owned()),
            access_ttl: Duration::from_secs(parse_num(&get, "JWT_ACCESS_TTL_SECS", 900)?),
            leeway: Duration::from_secs(parse_num(&get, "JWT_LEEWAY_SECS", 30)?),
            key_id: get("JWT_KEY_ID"),
            previous_public_keys_pem: read_pem("JWT_PREVIOUS_PUBLIC_KEYS", "JWT_PREVIOUS_PUBLIC_KEYS_FILE")?,
            previous_secrets: get("JWT_PREVIOUS_SECRETS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| SecretString::from(s.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let auth = AuthSettings {
            refresh_ttl: Duration::from_secs(parse_num(&get, "REFRESH_TTL_SECS", 30 * 86_400)?),
            login_max_failures: parse_num(&get, "LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_per_ip: parse_num(&get, "LOGIN_MAX_FAILURES_PER_IP", 50)?,
            login_failure_window: Duration::from_secs(parse_num(&get, "LOGIN_FAILURE_WINDOW_SECS", 900)?),
        };
        let defaults = Limits::default();
        let limits = Limits {
            max_depth: parse_num(&get, "RAPPORT_MAX_DEPTH", defaults.max_depth)?,
            max_complexity: parse_num(&get, "RAPPORT_MAX_COMPLEXITY", defaults.max_complexity)?,
            max_aliases: parse_num(&get, "RAPPORT_MAX_ALIASES", defaults.max_aliases)?,
            max_batch: parse_num(&get, "RAPPORT_MAX_BATCH", defaults.max_batch)?,
            max_body_bytes: parse_num(&get, "RAPPORT_MAX_BODY_BYTES", defaults.max_body_bytes)?,
            default_page_size: parse_num(&get, "RAPPORT_DEFAULT_PAGE_SIZE", defaults.default_page_size)?,
            max_page_size: parse_num(&get, "RAPPORT_MAX_PAGE_SIZE", defaults.max_page_size)?,
            max_bulk_interactions: parse_num(&get, "RAPPORT_MAX_BULK", defaults.max_bulk_interactions)?,
            max_concurrent_operations: match get("RAPPORT_MAX_CONCURRENT_OPERATIONS") {
                Some(_) => Some(parse_num(&get, "RAPPORT_MAX_CONCURRENT_OPERATIONS", 0usize)?.max(1)),
                None => None,
            },
        };
        let settings = Settings {
            environment,
            bind: get("RAPPORT_BIND").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            database: DatabaseSettings {
                url: SecretString::from(database_url),
                max_connections: parse_num(&get, "DATABASE_MAX_CONNECTIONS", 16)?,
                min_connections: parse_num(&get, "DATABASE_MIN_CONNECTIONS", 1)?,
                connect_timeout: Duration::from_secs(parse_num(&get, "DATABASE_CONNECT_TIMEOUT_SECS", 5)?),
                acquire_timeout: Duration::from_secs(parse_num(&get, "DATABASE_ACQUIRE_TIMEOUT_SECS", 5)?),
            },
            redis_url: get("REDIS_URL").map(SecretString::from),
            cache_prefix: get("RAPPORT_CACHE_PREFIX").unwrap_or_else(|| "rapport:".to_owned()),
            jwt,
            auth,
            limits,
            demo: matches!(get("RAPPORT_DEMO").as_deref(), Some("1" | "true" | "yes")),
            shutdown_timeout: Duration::from_secs(parse_num(&get, "RAPPORT_SHUTDOWN_TIMEOUT_SECS", 30)?),
            log_format_json: matches!(get("RAPPORT_LOG_FORMAT").as_deref(), Some("json")),
            workers: get("RAPPORT_WORKERS")
                .map(|w| w.parse())
                .transpose()
                .map_err(|_| invalid("RAPPORT_WORKERS", "must be a number"))?,
            cache: CacheSettings {
                redis_timeout: Duration::from_millis(parse_num(&get, "REDIS_TIMEOUT_MS", 250)?),
                breaker_failures: parse_num(&get, "REDIS_BREAKER_FAILURES", 3)?,
                breaker_cooldown: Duration::from_millis(parse_num(&get, "REDIS_BREAKER_COOLDOWN_MS", 5_000)?),
                catalogue_ttl: Duration::from_secs(parse_num(&get, "RAPPORT_CATALOGUE_CACHE_TTL_SECS", 30)?),
                persisted_query_ttl: Duration::from_secs(parse_num(
                    &get,
                    "RAPPORT_PERSISTED_QUERY_TTL_SECS",
                    30 * 86_400,
                )?),
                persisted_only: matches!(get("RAPPORT_PERSISTED_ONLY").as_deref(), Some("1" | "true" | "yes")),
            },
            rate_limits: RateLimits {
                anonymous: parse_num(&get, "RAPPORT_RATE_LIMIT_ANONYMOUS", 600)?,
                patron: parse_num(&get, "RAPPORT_RATE_LIMIT_PATRON", 600)?,
                funder: parse_num(&get, "RAPPORT_RATE_LIMIT_FUNDER", 600)?,
                partner: parse_num(&get, "RAPPORT_RATE_LIMIT_PARTNER", 3_000)?,
                staff: parse_num(&get, "RAPPORT_RATE_LIMIT_STAFF", 3_000)?,
                admin: parse_num(&get, "RAPPORT_RATE_LIMIT_ADMIN", 6_000)?,
            },
            trust_proxy: matches!(get("RAPPORT_TRUST_PROXY").as_deref(), Some("1" | "true" | "yes")),
            retention_days: match get("RETENTION_DAYS") {
                None => None,
                Some(raw) => match raw.trim().parse::<u32>() {
                    Ok(days) if days > 0 => Some(days),
                    _ => return Err(invalid("RETENTION_DAYS", format!("`{raw}` is not a positive number of days"))),
                },
            },
            lifecycle: LifecycleSettings {
                new_days: parse_num(&get, "RAPPORT_LIFECYCLE_NEW_DAYS", 30)?,
                at_risk_days: parse_num(&get, "RAPPORT_LIFECYCLE_AT_RISK_DAYS", 60)?,
                lapsed_days: parse_num(&get, "RAPPORT_LIFECYCLE_LAPSED_DAYS", 180)?,
            },
            k_anonymity: match parse_num(&get, "RAPPORT_K_ANONYMITY", 5u32)? {
                k if k >= 3 => k,
                _ => return Err(invalid("RAPPORT_K_ANONYMITY", "must be at least 3")),
            },
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Refuse configurations that would be unsafe or cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let life = self.lifecycle;
        if life.at_risk_days == 0 || life.at_risk_days >= life.lapsed_days {
            return Err(invalid(
                "RAPPORT_LIFECYCLE_AT_RISK_DAYS",
                "must be positive and below RAPPORT_LIFECYCLE_LAPSED_DAYS",
            ));
        }
        let jwt = &self.jwt;
        match jwt.algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = jwt.secret.expose_secret();
                if self.environment == Environment::Production && secret == DEVELOPMENT_JWT_SECRET {
                    return Err(invalid(
                        "JWT_SECRET",
                        "refusing to start in production with the development JWT secret; set JWT_SECRET",
                    ));
                }
                if secret.len() < 32 {
                    return Err(invalid("JWT_SECRET", "must be at least 32 bytes"));
                }
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa => {
                if jwt.public_key_pem.is_none() {
                    return Err(invalid("JWT_PUBLIC_KEY_FILE", "RS256/EdDSA need a public key (PEM)"));
                }
            }
        }
        if self.limits.max_page_size == 0 || self.limits.default_page_size > self.limits.max_page_size {
            return Err(invalid("RAPPORT_DEFAULT_PAGE_SIZE", "must be between 1 and RAPPORT_MAX_PAGE_SIZE"));
        }
        Ok(())
    }
}

/// The embedded default: an SQLite file in `dir`, created on first start.
pub fn default_sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("rapport.db").display())
}

fn parse_num<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| invalid(name, format!("`{raw}` is not a valid number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Settings::from_lookup(move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_to_embedded_sqlite_on_localhost() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(s.database.is_sqlite());
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn production_refuses_the_development_secret() {
        let err = settings(&[("RAPPORT_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("development JWT secret"));
        assert!(settings(&[("RAPPORT_ENV", "production"), ("JWT_SECRET", &"x".repeat(40))]).is_ok());
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(settings(&[("RAPPORT_MAX_DEPTH", "deep")]).is_err());
    }
}
