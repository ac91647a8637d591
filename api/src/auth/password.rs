//! Secrets at rest: argon2id hashes of passwords, PINs and partner secrets, SHA-256 digests of
//! opaque refresh tokens, and the rules new passwords and PINs must meet.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool, a few at a time (each hash
//! holds 19 MiB): a burst of logins queues instead of exhausting memory.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Shortest acceptable account password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password or secret, in bytes: enough for any passphrase, short enough that
/// nobody can make the server hash megabytes.
pub const MAX_SECRET_BYTES: usize = 1024;

/// Concurrent argon2 computations across the process.
static HASHING: Semaphore = Semaphore::const_new(4);

/// A fixed salt for the decoy computation when there is no stored hash to check against.
const DECOY_SALT: &[u8] = b"rapport-decoy-salt-0001";

/// argon2id v19 with the crate's defaults (the OWASP recommendation: 19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    let _permit = HASHING.acquire().await.map_err(|e| AppError::internal(anyhow::Error::new(e)))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal(anyhow::Error::new(e).context("hashing task failed")))
}

/// Hash a secret into an argon2id PHC string with a fresh random salt.
pub async fn hash_secret(secret: &str) -> AppResult<String> {
    let secret = secret.as_bytes().to_vec();
    blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        argon2()
            .hash_password_with_salt(&secret, &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hashing failed: {e}")))
    })
    .await?
}

/// Whether `secret` matches the stored PHC string. With no stored hash (unknown account, no
/// PIN set) the same work is done against a decoy, so the answer takes as long either way.
pub async fn verify_secret(secret: &str, stored: Option<&str>) -> AppResult<bool> {
    let secret = secret.as_bytes().to_vec();
    let stored = stored.map(str::to_owned);
    blocking(move || {
        // Over-long input is never valid; it still costs one hash of bounded length.
        let input = if secret.len() > MAX_SECRET_BYTES { &secret[..MAX_SECRET_BYTES] } else { &secret[..] };
        let parsed = stored.as_deref().and_then(|s| PasswordHash::new(s).ok());
        match parsed {
            Some(hash) if secret.len() <= MAX_SECRET_BYTES => argon2().verify_password(input, &hash).is_ok(),
            _ => {
                let _ = argon2().hash_password_with_salt(input, DECOY_SALT);
                false
            }
        }
    })
    .await
}

/// A new random token: `prefix` then 32 random bytes in base64url.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A short random identifier: `prefix` then `len` random bytes in base64url.
pub fn random_id(prefix: &str, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Hex SHA-256, for high-entropy tokens (refresh tokens) where a slow hash adds nothing, and
/// for cache keys that must not contain personal data.
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Account passwords: at least 12 characters, at most 1 KiB, not only whitespace.
pub fn check_password(password: &str, field: &str) -> AppResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AppError::bad_field(
            field,
            format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_SECRET_BYTES {
        return Err(AppError::bad_field(field, format!("the password may have at most {MAX_SECRET_BYTES} bytes")));
    }
    if password.trim().is_empty() {
        return Err(AppError::bad_field(field, "the password must not be only spaces"));
    }
    Ok(())
}

/// Patron PINs: 4 to 12 digits.
pub fn check_pin(pin: &str, field: &str) -> AppResult<()> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AppError::bad_field(field, "the PIN must be 4 to 12 digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_decoys_fail() {
        let hash = hash_secret("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(verify_secret("correct horse battery", Some(&hash)).await.unwrap());
        assert!(!verify_secret("wrong", Some(&hash)).await.unwrap());
        assert!(!verify_secret("anything", None).await.unwrap());
        assert!(!verify_secret("anything", Some("not a phc string")).await.unwrap());
    }

    #[test]
    fn rules() {
        assert!(check_password("short", "p").is_err());
        assert!(check_password("long enough password", "p").is_ok());
        assert!(check_password(&" ".repeat(20), "p").is_err());
        assert!(check_pin("1234", "pin").is_ok());
        assert!(check_pin("123", "pin").is_err());
        assert!(check_pin("12a4", "pin").is_err());
        assert!(check_pin("1234567890123", "pin").is_err());
        assert_eq!(sha256_hex("abc").len(), 64);
        assert!(random_token("rt_").starts_with("rt_"));
        assert_ne!(random_token(""), random_token(""));
    }
}
