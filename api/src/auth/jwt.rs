//! Minting and verifying access tokens.
//!
//! Every token names its key in the header (`kid`). Verification picks the key by `kid`, but the
//! algorithm belongs to the key, never to the token: `alg: none`, algorithm confusion (an HS256
//! token "signed" with an RS256 public key) and unknown keys all fail. After a key rotation the
//! previous keys stay in the ring for verification only, so their tokens work until they expire.

use std::collections::BTreeSet;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::viewer::{Principal, Role, Scope, Viewer};
use crate::{
    config::{JwtAlgorithm, JwtSettings},
    error::{AppError, AppResult},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funder_id: Option<Uuid>,
    /// OAuth-style space-separated scopes (partners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The session the token belongs to (a login's refresh family, a partner client's token
    /// generation): revoking the session revokes every access token that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
}

/// What a new token should say.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    pub subject: String,
    pub funder_id: Option<Uuid>,
    pub scopes: Vec<Scope>,
    /// Lifetime; the configured access TTL when `None`.
    pub ttl: Option<std::time::Duration>,
}

/// One key that verifies tokens, with its algorithm pinned.
struct VerifyingKey {
    kid: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
    /// The public JWK (asymmetric keys only).
    jwk: Option<Jwk>,
}

pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    /// The current key first, then earlier keys (verification only).
    keys: Vec<VerifyingKey>,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("kids", &self.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid {what} key: {source}")]
    Invalid { what: &'static str, source: jsonwebtoken::errors::Error },
    #[error("{0}")]
    Missing(&'static str),
    #[error("the private key does not match the public key")]
    Mismatch,
    #[error("two signing keys share the key id `{0}`")]
    DuplicateKid(String),
}

fn invalid(what: &'static str) -> impl Fn(jsonwebtoken::errors::Error) -> KeyError {
    move |source| KeyError::Invalid { what, source }
}

/// `kid` of an HS256 secret: a digest, so instances sharing the secret agree on it without
/// publishing anything about the secret itself.
fn secret_kid(secret: &[u8]) -> String {
    let digest = Sha256::new().chain_update(b"rapport-hs256-kid:").chain_update(secret).finalize();
    format!("hs-{}", &URL_SAFE_NO_PAD.encode(digest)[..16])
}

/// The RFC 7638 thumbprint of a public key, as its `kid`.
fn public_jwk(decoding: &DecodingKey, algorithm: Algorithm) -> Result<(String, Jwk), KeyError> {
    let mut jwk = Jwk::from_decoding_key(decoding, Some(algorithm)).map_err(invalid("public"))?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(invalid("public"))?;
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok((kid, jwk))
}

/// Split a PEM bundle into its `BEGIN`/`END` blocks.
fn pem_blocks(bundle: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in bundle.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            current = Some(format!("{line}\n"));
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

/// A public PEM key of either supported family; the algorithm follows from the key type.
fn public_pem_key(pem: &str) -> Result<(Algorithm, DecodingKey), KeyError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((Algorithm::RS256, key));
    }
    DecodingKey::from_ed_pem(pem.as_bytes()).map(|key| (Algorithm::EdDSA, key)).map_err(invalid("previous public"))
}

impl JwtKeys {
    pub fn from_settings(settings: &JwtSettings) -> Result<Self, KeyError> {
        let (algorithm, encoding, decoding) = match settings.algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = settings.secret.expose_secret().as_bytes();
                (Algorithm::HS256, Some(EncodingKey::from_secret(secret)), DecodingKey::from_secret(secret))
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa => {
                let public = settings
                    .public_key_pem
                    .as_deref()
                    .ok_or(KeyError::Missing("a public key is required for RS256/EdDSA"))?;
                let rsa = settings.algorithm == JwtAlgorithm::Rs256;
                let decoding = if rsa {
                    DecodingKey::from_rsa_pem(public.as_bytes()).map_err(invalid("public"))?
                } else {
                    DecodingKey::from_ed_pem(public.as_bytes()).map_err(invalid("public"))?
                };
                let encoding = match &settings.private_key_pem {
                    Some(private) if rsa => Some(
                        EncodingKey::from_rsa_pem(private.expose_secret().as_bytes()).map_err(invalid("private"))?,
                    ),
                    Some(private) => {
                        Some(EncodingKey::from_ed_pem(private.expose_secret().as_bytes()).map_err(invalid("private"))?)
                    }
                    None => None,
                };
                (if rsa { Algorithm::RS256 } else { Algorithm::EdDSA }, encoding, decoding)
            }
        };
        let mut keys = Vec::new();
        let (current_kid, jwk) = match algorithm {
            Algorithm::HS256 => (secret_kid(settings.secret.expose_secret().as_bytes()), None),
            _ => {
                let (kid, jwk) = public_jwk(&decoding, algorithm)?;
                (kid, Some(jwk))
            }
        };
        let current_kid = settings.key_id.clone().unwrap_or(current_kid);
        keys.push(Self::verifying_key(settings, current_kid, algorithm, decoding, jwk));
        for secret in &settings.previous_secrets {
            let secret = secret.expose_secret().as_bytes();
            let kid = secret_kid(secret);
            keys.push(Self::verifying_key(settings, kid, Algorithm::HS256, DecodingKey::from_secret(secret), None));
        }
        for pem in settings.previous_public_keys_pem.as_deref().map(pem_blocks).unwrap_or_default() {
            let (algorithm, decoding) = public_pem_key(&pem)?;
            let (kid, jwk) = public_jwk(&decoding, algorithm)?;
            keys.push(Self::verifying_key(settings, kid, algorithm, decoding, Some(jwk)));
        }
        let mut seen = BTreeSet::new();
        for key in &keys {
            if !seen.insert(key.kid.as_str()) {
                return Err(KeyError::DuplicateKid(key.kid.clone()));
            }
        }
        let keys = Self { algorithm, encoding, keys, settings: settings.clone() };
        keys.check_pair()?;
        Ok(keys)
    }

    fn verifying_key(
        settings: &JwtSettings,
        kid: String,
        algorithm: Algorithm,
        decoding: DecodingKey,
        jwk: Option<Jwk>,
    ) -> VerifyingKey {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        let jwk = jwk.map(|mut jwk| {
            jwk.common.key_id = Some(kid.clone());
            jwk
        });
        VerifyingKey { kid, algorithm, decoding, validation, jwk }
    }

    /// A private key that does not match the public key would mint tokens nobody can verify:
    /// refuse to start instead.
    fn check_pair(&self) -> Result<(), KeyError> {
        if self.encoding.is_none() {
            return Ok(());
        }
        let request = TokenRequest {
            role: Role::Staff,
            subject: "key-check".into(),
            funder_id: None,
            scopes: vec![],
            ttl: Some(std::time::Duration::from_secs(60)),
        };
        let (token, _) = self.mint(&request).map_err(|_| KeyError::Mismatch)?;
        self.verify(&token).map(|_| ()).map_err(|_| KeyError::Mismatch)
    }

    pub fn access_ttl(&self) -> std::time::Duration {
        self.settings.access_ttl
    }

    /// Allowed clock skew: a token is accepted up to this long after its `exp`.
    pub fn leeway(&self) -> std::time::Duration {
        self.settings.leeway
    }

    /// The `kid` new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        self.keys.first().map(|k| k.kid.as_str()).unwrap_or_default()
    }

    /// The public keys that verify tokens (current first), for `/.well-known/jwks.json`.
    /// Empty for HS256: a shared secret is never published.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().filter_map(|k| k.jwk.clone()).collect() }
    }

    /// Mint a signed access token; returns the token and its claims.
    pub fn mint(&self, request: &TokenRequest) -> AppResult<(String, Claims)> {
        self.mint_in_session(request, None)
    }

    /// Mint a signed access token that belongs to a session (`sid`), so revoking the session
    /// revokes the token.
    pub fn mint_in_session(&self, request: &TokenRequest, session_id: Option<&str>) -> AppResult<(String, Claims)> {
        let encoding = self
            .encoding
            .as_ref()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no private key configured to sign tokens")))?;
        let now = Utc::now().timestamp();
        let ttl = request.ttl.unwrap_or(self.settings.access_ttl).as_secs() as i64;
        let scope = (!request.scopes.is_empty())
            .then(|| request.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "));
        let claims = Claims {
            sub: request.subject.clone(),
            role: request.role.as_str().to_owned(),
            funder_id: request.funder_id,
            scope,
            sid: session_id.map(str::to_owned),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.current_kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, encoding)
            .map_err(|e| AppError::internal(anyhow::Error::new(e).context("signing token")))?;
        Ok((token, claims))
    }

    /// Verify a bearer token's signature and claims and turn it into a viewer. Every failure is
    /// `UNAUTHENTICATED`, with no detail an attacker could use. Revocation is checked separately
    /// (see `auth::revocation`), since it needs the cache and the database.
    pub fn verify(&self, token: &str) -> AppResult<(Viewer, Claims)> {
        let rejected = |reason: &dyn std::fmt::Display| {
            tracing::debug!(%reason, "rejected token");
            AppError::Unauthenticated("invalid or expired token".into())
        };
        let header = jsonwebtoken::decode_header(token).map_err(|e| rejected(&e))?;
        // A token without `kid` (minted before keys had ids) can only be for the current key.
        let key = match header.kid.as_deref() {
            Some(kid) => self.keys.iter().find(|k| k.kid == kid),
            None => self.keys.first(),
        }
        .ok_or_else(|| rejected(&"unknown key id"))?;
        if header.alg != key.algorithm {
            return Err(rejected(&"algorithm does not match the key"));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation).map_err(|e| rejected(&e))?;
        let claims = data.claims;
        let principal = principal_from_claims(&claims).ok_or_else(|| rejected(&"claims name no valid principal"))?;
        let viewer = Viewer {
            principal: Some(principal),
            token_id: Some(claims.jti.clone()),
            session_id: claims.sid.clone(),
            token_expires_at: Some(claims.exp),
        };
        Ok((viewer, claims))
    }
}

fn principal_from_claims(claims: &Claims) -> Option<Principal> {
    let role: Role = claims.role.parse().ok()?;
    let sub = claims.sub.clone();
    Some(match role {
        Role::Admin => Principal::Admin { account_id: sub },
        Role::Staff => Principal::Staff { account_id: sub },
        Role::Patron => Principal::Patron { patron_id: sub.parse().ok()? },
        Role::Funder => Principal::Funder { account_id: sub, funder_id: claims.funder_id? },
        Role::Partner => {
            let scopes: BTreeSet<Scope> =
                claims.scope.as_deref().unwrap_or_default().split_whitespace().filter_map(|s| s.parse().ok()).collect();
            Principal::Partner { client_id: sub, scopes }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Settings::from_lookup(move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())).unwrap()
    }

    fn keys() -> JwtKeys {
        JwtKeys::from_settings(&settings(&[]).jwt).unwrap()
    }

    fn staff() -> TokenRequest {
        TokenRequest { role: Role::Staff, subject: "s".into(), funder_id: None, scopes: vec![], ttl: None }
    }

    #[test]
    fn round_trips_a_partner_token() {
        let keys = keys();
        let (token, _) = keys
            .mint(&TokenRequest {
                role: Role::Partner,
                subject: "crm-sync".into(),
                funder_id: None,
                scopes: vec![Scope::PatronsRead, Scope::InteractionsWrite],
                ttl: None,
            })
            .unwrap();
        let (viewer, _) = keys.verify(&token).unwrap();
        assert!(viewer.has_scope(Scope::PatronsRead));
        assert!(!viewer.has_scope(Scope::PatronsWrite));
    }

    #[test]
    fn a_funder_token_needs_a_funder() {
        let keys = keys();
        let (token, _) = keys
            .mint(&TokenRequest { role: Role::Funder, subject: "f".into(), funder_id: None, scopes: vec![], ttl: None })
            .unwrap();
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn tokens_name_their_key_and_carry_the_session() {
        let keys = keys();
        let (token, claims) = keys.mint_in_session(&staff(), Some("family-1")).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(keys.current_kid()));
        assert!(keys.current_kid().starts_with("hs-"));
        let (viewer, _) = keys.verify(&token).unwrap();
        assert_eq!(viewer.session_id.as_deref(), Some("family-1"));
        assert_eq!(viewer.token_expires_at, Some(claims.exp));
        assert!(keys.jwks().keys.is_empty(), "an HS256 secret is never published");
    }

    #[test]
    fn previous_secrets_verify_but_do_not_sign() {
        let old_secret = "an-older-secret-that-is-at-least-32-bytes";
        let old = JwtKeys::from_settings(&settings(&[("JWT_SECRET", old_secret)]).jwt).unwrap();
        let (old_token, _) = old.mint(&staff()).unwrap();
        let rotated = JwtKeys::from_settings(
            &settings(&[
                ("JWT_SECRET", "the-new-secret-that-is-also-32-bytes-long"),
                ("JWT_PREVIOUS_SECRETS", old_secret),
            ])
            .jwt,
        )
        .unwrap();
        assert!(rotated.verify(&old_token).is_ok());
        let (new_token, _) = rotated.mint(&staff()).unwrap();
        assert!(old.verify(&new_token).is_err());
        assert_ne!(rotated.current_kid(), old.current_kid());
    }

    #[test]
    fn splits_pem_bundles() {
        let bundle = "junk\n-----BEGIN PUBLIC KEY-----\nAAA\n-----END PUBLIC KEY-----\n\n-----BEGIN PUBLIC KEY-----\nBBB\n-----END PUBLIC KEY-----\n";
        let blocks = pem_blocks(bundle);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].contains("BBB"));
    }
}
