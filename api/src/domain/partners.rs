//! Partner clients: API clients of partner systems with a secret (shown once, stored as an
//! argon2id hash) and scopes. Admins manage them; a client exchanges its credentials for an
//! access token (the `partnerToken` mutation and OAuth 2.0 client credentials at
//! `/oauth/token`).

use std::{collections::BTreeSet, net::IpAddr};

use chrono::{DateTime, TimeZone, Utc};
use entity::{partner_client, revoked_token::RevocationKind};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    validation,
};
use crate::{
    auth::{Capability, Role, Scope, TokenRequest, Viewer, password, revocation, throttle},
    error::{AppError, AppResult},
    state::AppState,
};

const CLIENT_ID_PREFIX: &str = "rpc_";
const SECRET_PREFIX: &str = "rps_";

/// A client together with its secret, returned once on creation and rotation.
#[derive(Debug, Clone)]
pub struct ClientWithSecret {
    pub client: partner_client::Model,
    pub secret: String,
}

/// A minted partner access token.
#[derive(Debug, Clone)]
pub struct PartnerToken {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    pub expires_in: u64,
    pub scopes: Vec<Scope>,
}

/// The scopes stored on a client.
pub fn scopes_of(client: &partner_client::Model) -> Vec<Scope> {
    let set: BTreeSet<Scope> = client.scopes.split_whitespace().filter_map(|s| s.parse().ok()).collect();
    set.into_iter().collect()
}

fn encode_scopes(scopes: &[Scope]) -> String {
    let set: BTreeSet<Scope> = scopes.iter().copied().collect();
    set.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// Parse an OAuth `scope` parameter (space-separated); unknown scopes are refused.
pub fn parse_scope_param(raw: &str) -> AppResult<Vec<Scope>> {
    raw.split_whitespace()
        .map(|s| s.parse::<Scope>().map_err(|_| AppError::bad_field("scope", format!("unknown scope `{s}`"))))
        .collect()
}

fn require_admin(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::Administer)
}

pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    window: &PageWindow,
) -> AppResult<Page<partner_client::Model>> {
    require_admin(viewer)?;
    Keyset::new(Expr::col(partner_client::Column::CreatedAt), Expr::col(partner_client::Column::Id), SortDirection::Asc)
        .fetch(db, partner_client::Entity::find(), window, |m| Cursor::new(SortValue::Time(m.created_at), m.id))
        .await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer) -> AppResult<u64> {
    require_admin(viewer)?;
    Ok(partner_client::Entity::find().count(db).await?)
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<partner_client::Model> {
    require_admin(viewer)?;
    partner_client::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("partner client"))
}

/// Register a client; the secret is in the answer and nowhere else.
pub async fn create(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    name: &str,
    scopes: &[Scope],
) -> AppResult<ClientWithSecret> {
    require_admin(viewer)?;
    let name = validation::required_text(name, "input.name", 200)?;
    if scopes.is_empty() {
        return Err(AppError::bad_field("input.scopes", "give the client at least one scope"));
    }
    let secret = password::random_token(SECRET_PREFIX);
    let secret_hash = password::hash_secret(&secret).await?;
    let client = partner_client::ActiveModel {
        id: Set(Uuid::now_v7()),
        client_id: Set(password::random_id(CLIENT_ID_PREFIX, 12)),
        name: Set(name),
        secret_hash: Set(secret_hash),
        scopes: Set(encode_scopes(scopes)),
        token_family_id: Set(Uuid::now_v7()),
        created_at: Set(Utc::now()),
        rotated_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    tracing::info!(client = %client.client_id, by = %viewer.subject(), "partner client created");
    Ok(ClientWithSecret { client, secret })
}

/// End every access token issued to the client so far.
async fn revoke_issued_tokens(db: &impl ConnectionTrait, state: &AppState, family: Uuid) -> AppResult<()> {
    let expires_at = revocation::session_expiry(state.jwt.access_ttl(), state.jwt.leeway());
    revocation::revoke(db, &state.cache, RevocationKind::Session, &family.to_string(), expires_at).await
}

/// Issue a new secret; the old one stops working, and so do tokens issued with it.
pub async fn rotate_secret(state: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<ClientWithSecret> {
    let existing = get(&state.db, viewer, id).await?;
    if existing.revoked_at.is_some() {
        return Err(AppError::conflict("this partner client is revoked"));
    }
    let old_family = existing.token_family_id;
    let secret = password::random_token(SECRET_PREFIX);
    let secret_hash = password::hash_secret(&secret).await?;
    let mut model: partner_client::ActiveModel = existing.into();
    model.secret_hash = Set(secret_hash);
    model.token_family_id = Set(Uuid::now_v7());
    model.rotated_at = Set(Some(Utc::now()));
    let client = model.update(&state.db).await?;
    revoke_issued_tokens(&state.db, state, old_family).await?;
    tracing::info!(client = %client.client_id, by = %viewer.subject(), "partner secret rotated");
    Ok(ClientWithSecret { client, secret })
}

/// Revoke a client for good: no new tokens, and its current tokens stop working. Idempotent.
pub async fn revoke(state: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<partner_client::Model> {
    let existing = get(&state.db, viewer, id).await?;
    if existing.revoked_at.is_some() {
        return Ok(existing);
    }
    let old_family = existing.token_family_id;
    let mut model: partner_client::ActiveModel = existing.into();
    model.revoked_at = Set(Some(Utc::now()));
    model.token_family_id = Set(Uuid::now_v7());
    let client = model.update(&state.db).await?;
    revoke_issued_tokens(&state.db, state, old_family).await?;
    tracing::info!(client = %client.client_id, by = %viewer.subject(), "partner client revoked");
    Ok(client)
}

/// Exchange client credentials for an access token with the client's scopes, or the subset
/// asked for. Bad credentials are `UNAUTHENTICATED` (unknown client and wrong secret alike, in
/// the same time); scopes the client does not hold are `BAD_USER_INPUT` on `scope`; repeated
/// failures are throttled per client and address.
#[tracing::instrument(skip_all)]
pub async fn issue_token(
    state: &AppState,
    client_id: &str,
    secret: &str,
    requested: Option<&[Scope]>,
    ip: Option<IpAddr>,
) -> AppResult<PartnerToken> {
    let client_id = client_id.trim();
    let counters = throttle::counters(&state.settings.auth, "partner", client_id, ip);
    throttle::check(&state.cache, &counters).await?;
    let client = if client_id.is_empty() || client_id.len() > 128 {
        None
    } else {
        partner_client::Entity::find().filter(partner_client::Column::ClientId.eq(client_id)).one(&state.db).await?
    };
    let client = client.filter(|c| c.revoked_at.is_none());
    let matches = password::verify_secret(secret, client.as_ref().map(|c| c.secret_hash.as_str())).await?;
    let client = match client {
        Some(client) if matches => client,
        _ => {
            throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
            return Err(AppError::Unauthenticated("invalid client credentials".into()));
        }
    };
    throttle::record_success(&state.cache, &counters[0]).await;
    let granted = scopes_of(&client);
    let scopes = match requested {
        None | Some([]) => granted,
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
                return Err(AppError::bad_field("scope", format!("this client may not ask for `{}`", extra.as_str())));
            }
            let set: BTreeSet<Scope> = requested.iter().copied().collect();
            set.into_iter().collect()
        }
    };
    let request = TokenRequest {
        role: Role::Partner,
        subject: client.client_id.clone(),
        funder_id: None,
        scopes: scopes.clone(),
        ttl: None,
    };
    let (access_token, claims) = state.jwt.mint_in_session(&request, Some(&client.token_family_id.to_string()))?;
    let expires_at = Utc
        .timestamp_opt(claims.exp, 0)
        .single()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("token expiry out of range")))?;
    Ok(PartnerToken { access_token, expires_at, expires_in: state.jwt.access_ttl().as_secs(), scopes })
}
