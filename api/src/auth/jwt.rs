//! Minting and verifying access tokens. The algorithm is pinned by configuration, never taken
//! from the token, so `alg: none` and algorithm-confusion tokens fail verification.

use std::collections::BTreeSet;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
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

pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    settings: JwtSettings,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid {what} key: {source}")]
    Invalid { what: &'static str, source: jsonwebtoken::errors::Error },
    #[error("{0}")]
    Missing(&'static str),
}

impl JwtKeys {
    pub fn from_settings(settings: &JwtSettings) -> Result<Self, KeyError> {
        let invalid = |what| move |source| KeyError::Invalid { what, source };
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
                    Some(private) if rsa => {
                        Some(EncodingKey::from_rsa_pem(private.expose_secret().as_bytes()).map_err(invalid("private"))?)
                    }
                    Some(private) => {
                        Some(EncodingKey::from_ed_pem(private.expose_secret().as_bytes()).map_err(invalid("private"))?)
                    }
                    None => None,
                };
                (if rsa { Algorithm::RS256 } else { Algorithm::EdDSA }, encoding, decoding)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Ok(Self { algorithm, encoding, decoding, validation, settings: settings.clone() })
    }

    pub fn access_ttl(&self) -> std::time::Duration {
        self.settings.access_ttl
    }

    /// Mint a signed access token; returns the token and its claims.
    pub fn mint(&self, request: &TokenRequest) -> AppResult<(String, Claims)> {
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
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            exp: now + ttl,
            nbf: now,
            iat: now,
            jti: Uuid::now_v7().to_string(),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|e| AppError::internal(anyhow::Error::new(e).context("signing token")))?;
        Ok((token, claims))
    }

    /// Verify a bearer token and turn it into a viewer. Every failure is `UNAUTHENTICATED`,
    /// with no detail an attacker could use.
    pub fn verify(&self, token: &str) -> AppResult<(Viewer, Claims)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|err| {
            tracing::debug!(error = %err, "rejected token");
            AppError::Unauthenticated("invalid or expired token".into())
        })?;
        let claims = data.claims;
        let principal = principal_from_claims(&claims)
            .ok_or_else(|| AppError::Unauthenticated("invalid or expired token".into()))?;
        Ok((Viewer { principal: Some(principal), token_id: Some(claims.jti.clone()) }, claims))
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
            let scopes: BTreeSet<Scope> = claims
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect();
            Principal::Partner { client_id: sub, scopes }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys() -> JwtKeys {
        let settings = Settings::from_lookup(|_| None).unwrap();
        JwtKeys::from_settings(&settings.jwt).unwrap()
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
}
