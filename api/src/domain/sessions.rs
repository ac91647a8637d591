//! Login sessions: account and patron logins, refresh-token rotation with reuse detection,
//! logout, and revoking every session of a subject (disabled accounts, PIN resets, erasure).
//!
//! A login starts a session: a family of refresh tokens, one live at a time. Each access token
//! minted in the session carries the family id as its `sid`, so revoking the family (logout,
//! reuse of a rotated refresh token, a disabled account) also revokes its access tokens at once.
//! Refresh tokens are opaque random strings stored only as SHA-256 digests.

use std::net::IpAddr;

use chrono::{DateTime, TimeZone, Utc};
use entity::{
    account::{self, AccountRole},
    enums::PatronStatus,
    patron,
    refresh_token::{self, SubjectKind},
    revoked_token::RevocationKind,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    auth::{
        Role, TokenRequest, Viewer,
        password::{self, sha256_hex},
        revocation, throttle,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// Prefix of refresh tokens, so a leaked one is recognisable (e.g. by secret scanners).
const REFRESH_PREFIX: &str = "rrt_";

/// What a successful login or refresh hands back.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub viewer: Viewer,
}

/// The one answer to every failed login: which part was wrong is not revealed.
pub fn invalid_credentials() -> AppError {
    AppError::Unauthenticated("invalid credentials".into())
}

fn invalid_refresh_token() -> AppError {
    AppError::Unauthenticated("invalid or expired refresh token".into())
}

/// Who a session is for.
enum Subject {
    Account(account::Model),
    Patron(patron::Model),
}

impl Subject {
    fn kind(&self) -> SubjectKind {
        match self {
            Subject::Account(_) => SubjectKind::Account,
            Subject::Patron(_) => SubjectKind::Patron,
        }
    }

    fn token_request(&self) -> AppResult<TokenRequest> {
        let (role, subject, funder_id) = match self {
            Subject::Account(account) => {
                let role = match account.role {
                    AccountRole::Admin => Role::Admin,
                    AccountRole::Staff => Role::Staff,
                    AccountRole::Funder => Role::Funder,
                };
                if role == Role::Funder && account.funder_id.is_none() {
                    return Err(AppError::internal(anyhow::anyhow!("funder account {} has no funder", account.id)));
                }
                (role, account.id.to_string(), account.funder_id)
            }
            Subject::Patron(patron) => (Role::Patron, patron.id.to_string(), None),
        };
        Ok(TokenRequest { role, subject, funder_id, scopes: vec![], ttl: None })
    }
}

/// Whether a patron may log in at all: not erased, and with a PIN.
fn patron_can_log_in(patron: &patron::Model) -> bool {
    patron.status != PatronStatus::Erased && patron.pin_hash.is_some()
}

fn timestamp(secs: i64) -> AppResult<DateTime<Utc>> {
    Utc.timestamp_opt(secs, 0).single().ok_or_else(|| AppError::internal(anyhow::anyhow!("timestamp out of range")))
}

// ---------------------------------------------------------------------------------------------
// Logins

/// Staff, admin and funder login by email and password.
#[tracing::instrument(skip_all)]
pub async fn login(state: &AppState, email: &str, password: &str, ip: Option<IpAddr>) -> AppResult<IssuedSession> {
    let email = email.trim().to_lowercase();
    let counters = throttle::counters(&state.settings.auth, "account", &email, ip);
    throttle::check(&state.cache, &counters).await?;
    let account = account::Entity::find().filter(account::Column::Email.eq(&email)).one(&state.db).await?;
    // Unknown accounts are checked against a decoy: the same work, the same answer.
    let matches = password::verify_secret(password, account.as_ref().map(|a| a.password_hash.as_str())).await?;
    let account = match account {
        Some(account) if matches && account.disabled_at.is_none() => account,
        _ => {
            throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
            return Err(invalid_credentials());
        }
    };
    throttle::record_success(&state.cache, &counters[0]).await;
    tracing::info!(account = %account.id, "account logged in");
    start_session(state, Subject::Account(account)).await
}

/// Patron login by library card number and PIN.
#[tracing::instrument(skip_all)]
pub async fn patron_login(
    state: &AppState,
    card_number: &str,
    pin: &str,
    ip: Option<IpAddr>,
) -> AppResult<IssuedSession> {
    let card = card_number.trim().to_ascii_uppercase();
    let counters = throttle::counters(&state.settings.auth, "card", &card, ip);
    throttle::check(&state.cache, &counters).await?;
    let patron = if card.is_empty() || card.len() > 64 {
        None
    } else {
        patron::Entity::find().filter(patron::Column::CardNumber.eq(&card)).one(&state.db).await?
    };
    let patron = patron.filter(patron_can_log_in);
    let matches = password::verify_secret(pin, patron.as_ref().and_then(|p| p.pin_hash.as_deref())).await?;
    let patron = match patron {
        Some(patron) if matches => patron,
        _ => {
            throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
            return Err(invalid_credentials());
        }
    };
    throttle::record_success(&state.cache, &counters[0]).await;
    tracing::info!(patron = %patron.id, "patron logged in");
    start_session(state, Subject::Patron(patron)).await
}

async fn start_session(state: &AppState, subject: Subject) -> AppResult<IssuedSession> {
    let family_id = Uuid::now_v7();
    let (refresh_token, refresh_expires_at) =
        insert_refresh_token(&state.db, state, &subject, family_id, Uuid::now_v7()).await?;
    issue(state, &subject, family_id, refresh_token, refresh_expires_at)
}

/// Store a new refresh token of `family_id` (only its digest) and return the token.
async fn insert_refresh_token(
    db: &impl ConnectionTrait,
    state: &AppState,
    subject: &Subject,
    family_id: Uuid,
    id: Uuid,
) -> AppResult<(String, DateTime<Utc>)> {
    let token = password::random_token(REFRESH_PREFIX);
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(state.settings.auth.refresh_ttl).unwrap_or(chrono::Duration::days(30));
    let expires_at = now + ttl;
    refresh_token::ActiveModel {
        id: Set(id),
        family_id: Set(family_id),
        token_hash: Set(sha256_hex(&token)),
        subject_kind: Set(subject.kind()),
        account_id: Set(match subject {
            Subject::Account(a) => Some(a.id),
            Subject::Patron(_) => None,
        }),
        patron_id: Set(match subject {
            Subject::Patron(p) => Some(p.id),
            Subject::Account(_) => None,
        }),
        issued_at: Set(now),
        expires_at: Set(expires_at),
        rotated_at: Set(None),
        revoked_at: Set(None),
        replaced_by: Set(None),
    }
    .insert(db)
    .await?;
    Ok((token, expires_at))
}

fn issue(
    state: &AppState,
    subject: &Subject,
    family_id: Uuid,
    refresh_token: String,
    refresh_expires_at: DateTime<Utc>,
) -> AppResult<IssuedSession> {
    let (access_token, claims) = state.jwt.mint_in_session(&subject.token_request()?, Some(&family_id.to_string()))?;
    let (viewer, _) = state.jwt.verify(&access_token)?;
    Ok(IssuedSession {
        access_token,
        access_expires_at: timestamp(claims.exp)?,
        refresh_token,
        refresh_expires_at,
        viewer,
    })
}

// ---------------------------------------------------------------------------------------------
// Refresh

/// Exchange a refresh token for a new access token and a new refresh token. The presented
/// token stops working; presenting it again later revokes the whole session (it was copied).
#[tracing::instrument(skip_all)]
pub async fn refresh(state: &AppState, token: &str, ip: Option<IpAddr>) -> AppResult<IssuedSession> {
    let counters: Vec<_> = ip.map(|ip| throttle::Counter::address(&state.settings.auth, ip)).into_iter().collect();
    throttle::check(&state.cache, &counters).await?;
    let fail = || async {
        throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
        invalid_refresh_token()
    };
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Err(fail().await);
    }
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(sha256_hex(token)))
        .one(&state.db)
        .await?
    else {
        return Err(fail().await);
    };
    let now = Utc::now();
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(invalid_refresh_token());
    }
    if row.rotated_at.is_some() {
        tracing::warn!(family = %row.family_id, "rotated refresh token presented again; revoking its session");
        revoke_family(&state.db, state, row.family_id).await?;
        return Err(invalid_refresh_token());
    }
    let Some(subject) = load_subject(&state.db, &row).await? else {
        revoke_family(&state.db, state, row.family_id).await?;
        return Err(invalid_refresh_token());
    };
    let txn = state.db.begin().await?;
    let successor = Uuid::now_v7();
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .col_expr(refresh_token::Column::ReplacedBy, Expr::value(successor))
        .filter(refresh_token::Column::Id.eq(row.id))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        // Another request rotated it first: two holders of one token.
        txn.rollback().await?;
        tracing::warn!(family = %row.family_id, "refresh token used twice at once; revoking its session");
        revoke_family(&state.db, state, row.family_id).await?;
        return Err(invalid_refresh_token());
    }
    let (refresh_token, refresh_expires_at) =
        insert_refresh_token(&txn, state, &subject, row.family_id, successor).await?;
    txn.commit().await?;
    issue(state, &subject, row.family_id, refresh_token, refresh_expires_at)
}

/// The subject of a refresh token, if it may still log in.
async fn load_subject(db: &impl ConnectionTrait, row: &refresh_token::Model) -> AppResult<Option<Subject>> {
    Ok(match (row.subject_kind, row.account_id, row.patron_id) {
        (SubjectKind::Account, Some(id), _) => {
            account::Entity::find_by_id(id).one(db).await?.filter(|a| a.disabled_at.is_none()).map(Subject::Account)
        }
        (SubjectKind::Patron, _, Some(id)) => {
            patron::Entity::find_by_id(id).one(db).await?.filter(patron_can_log_in).map(Subject::Patron)
        }
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------------
// Logout and revocation

/// End the viewer's session: the access token presented (by `jti`), its session (login
/// sessions), and the session of `refresh_token` when given. Idempotent.
pub async fn logout(state: &AppState, viewer: &Viewer, refresh_token: Option<&str>) -> AppResult<()> {
    if !viewer.is_authenticated() && refresh_token.is_none() {
        return Err(AppError::unauthenticated());
    }
    if let (Some(jti), Some(exp)) = (viewer.token_id.as_deref(), viewer.token_expires_at) {
        let expires_at = revocation::access_expiry(exp, state.jwt.leeway())?;
        revocation::revoke(&state.db, &state.cache, RevocationKind::Access, jti, expires_at).await?;
    }
    // A partner's `sid` is its client's token generation, shared by all its tokens: a partner
    // logging out ends this token only.
    if viewer.role() != Some(Role::Partner)
        && let Some(family) = viewer.session_id.as_deref().and_then(|s| s.parse::<Uuid>().ok())
    {
        revoke_family(&state.db, state, family).await?;
    }
    if let Some(token) = refresh_token.map(str::trim).filter(|t| !t.is_empty() && t.len() <= 256) {
        let row = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(sha256_hex(token)))
            .one(&state.db)
            .await?;
        if let Some(row) = row {
            revoke_family(&state.db, state, row.family_id).await?;
        }
    }
    Ok(())
}

/// Revoke one session: every refresh token of the family, and (through its `sid`) every access
/// token minted in it.
pub async fn revoke_family(db: &impl ConnectionTrait, state: &AppState, family_id: Uuid) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    let expires_at = revocation::session_expiry(state.jwt.access_ttl(), state.jwt.leeway());
    revocation::revoke(db, &state.cache, RevocationKind::Session, &family_id.to_string(), expires_at).await
}

/// Revoke every live session matching `owner`, except `keep` (the caller's own session when
/// they change their own password or PIN). Returns how many sessions were revoked.
async fn revoke_sessions(
    db: &impl ConnectionTrait,
    state: &AppState,
    owner: Condition,
    keep: Option<Uuid>,
) -> AppResult<u64> {
    let mut live = Condition::all()
        .add(owner)
        .add(refresh_token::Column::RevokedAt.is_null())
        .add(refresh_token::Column::ExpiresAt.gt(Utc::now()));
    if let Some(keep) = keep {
        live = live.add(refresh_token::Column::FamilyId.ne(keep));
    }
    let families: Vec<Uuid> = refresh_token::Entity::find()
        .select_only()
        .column(refresh_token::Column::FamilyId)
        .distinct()
        .filter(live)
        .into_tuple()
        .all(db)
        .await?;
    for family in &families {
        revoke_family(db, state, *family).await?;
    }
    Ok(families.len() as u64)
}

/// Revoke every session of a patron (erasure, PIN reset). `db` may be the caller's transaction;
/// `state` provides the cache and token lifetimes. Returns how many sessions were revoked.
pub async fn revoke_all_sessions_for_patron(
    db: &impl ConnectionTrait,
    state: &AppState,
    patron_id: Uuid,
) -> AppResult<u64> {
    revoke_sessions(db, state, Condition::all().add(refresh_token::Column::PatronId.eq(patron_id)), None).await
}

/// Revoke every session of an account (disabled, password reset).
pub async fn revoke_all_sessions_for_account(
    db: &impl ConnectionTrait,
    state: &AppState,
    account_id: Uuid,
) -> AppResult<u64> {
    revoke_sessions(db, state, Condition::all().add(refresh_token::Column::AccountId.eq(account_id)), None).await
}

/// Revoke the other sessions of a subject after they changed their own secret.
pub(crate) async fn revoke_other_sessions(
    db: &impl ConnectionTrait,
    state: &AppState,
    viewer: &Viewer,
) -> AppResult<u64> {
    let keep = viewer.session_id.as_deref().and_then(|s| s.parse::<Uuid>().ok());
    let owner = match (viewer.patron_id(), viewer.account_id()) {
        (Some(patron_id), _) => refresh_token::Column::PatronId.eq(patron_id),
        (None, Some(account_id)) => refresh_token::Column::AccountId.eq(account_id),
        (None, None) => return Ok(0),
    };
    revoke_sessions(db, state, Condition::all().add(owner), keep).await
}

/// Stop a patron from logging in: the PIN is removed and every session revoked. Used on
/// erasure; `db` may be the caller's transaction. Idempotent.
pub async fn disable_patron_login(db: &impl ConnectionTrait, state: &AppState, patron_id: Uuid) -> AppResult<()> {
    patron::Entity::update_many()
        .col_expr(patron::Column::PinHash, Expr::value(Option::<String>::None))
        .col_expr(patron::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(patron::Column::Id.eq(patron_id))
        .filter(patron::Column::PinHash.is_not_null())
        .exec(db)
        .await?;
    revoke_all_sessions_for_patron(db, state, patron_id).await?;
    Ok(())
}

/// Delete refresh tokens that expired more than a day ago (and revocations past their expiry
/// are purged as new ones are written). For `rapport purge` and scheduled jobs.
pub async fn purge_expired(db: &impl ConnectionTrait) -> AppResult<u64> {
    let cutoff = Utc::now() - chrono::Duration::days(1);
    let deleted =
        refresh_token::Entity::delete_many().filter(refresh_token::Column::ExpiresAt.lt(cutoff)).exec(db).await?;
    Ok(deleted.rows_affected)
}
