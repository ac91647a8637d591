//! Accounts (staff, admin and funder logins) and patron PINs. Admins manage accounts; staff set
//! patrons' PINs; everyone with a login changes their own secret.

use chrono::Utc;
use entity::{
    account::{self, AccountRole},
    enums::PatronStatus,
    funder, patron,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    search, sessions, validation,
};
use crate::{
    auth::{Capability, Viewer, password, throttle},
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub role: AccountRole,
    pub funder_id: Option<Uuid>,
    pub display_name: String,
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    pub roles: Vec<AccountRole>,
    /// Only disabled (true) or only enabled (false) accounts.
    pub disabled: Option<bool>,
    /// Case-insensitive text in email or display name.
    pub text: Option<String>,
}

fn require_admin(viewer: &Viewer) -> AppResult<()> {
    viewer.require(Capability::Administer)
}

fn condition(filter: &AccountFilter) -> Condition {
    let mut cond = Condition::all();
    if !filter.roles.is_empty() {
        cond = cond.add(account::Column::Role.is_in(filter.roles.iter().copied()));
    }
    match filter.disabled {
        Some(true) => cond = cond.add(account::Column::DisabledAt.is_not_null()),
        Some(false) => cond = cond.add(account::Column::DisabledAt.is_null()),
        None => {}
    }
    if let Some(text) = search::normalise(filter.text.as_deref()) {
        cond = cond.add(
            Condition::any()
                .add(search::contains_ci(Expr::col(account::Column::Email), &text))
                .add(search::contains_ci(Expr::col(account::Column::DisplayName), &text)),
        );
    }
    cond
}

/// Accounts ordered by email (admins only).
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &AccountFilter,
    window: &PageWindow,
) -> AppResult<Page<account::Model>> {
    require_admin(viewer)?;
    let select = account::Entity::find().filter(condition(filter));
    Keyset::new(Expr::col(account::Column::Email), Expr::col(account::Column::Id), SortDirection::Asc)
        .fetch(db, select, window, |m| Cursor::new(SortValue::Text(m.email.clone()), m.id))
        .await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer, filter: &AccountFilter) -> AppResult<u64> {
    require_admin(viewer)?;
    Ok(account::Entity::find().filter(condition(filter)).count(db).await?)
}

/// One account: admins any, everyone with an account their own.
pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<account::Model> {
    if viewer.account_id() != Some(id) {
        require_admin(viewer)?;
    }
    account::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("account"))
}

fn email_conflict(err: AppError) -> AppError {
    match err {
        AppError::Conflict(_) => AppError::conflict("an account with this email already exists"),
        other => other,
    }
}

/// Validate a new account and hash its password.
async fn build(db: &impl ConnectionTrait, input: NewAccount) -> AppResult<account::ActiveModel> {
    let email = validation::email(&input.email, "input.email")?.to_lowercase();
    password::check_password(&input.password, "input.password")?;
    let display_name = validation::required_text(&input.display_name, "input.displayName", 200)?;
    match (input.role, input.funder_id) {
        (AccountRole::Funder, None) => {
            return Err(AppError::bad_field("input.funderId", "a FUNDER account needs the funder it belongs to"));
        }
        (AccountRole::Funder, Some(funder_id)) => {
            if funder::Entity::find_by_id(funder_id).one(db).await?.is_none() {
                return Err(AppError::bad_field("input.funderId", "no such funder"));
            }
        }
        (_, Some(_)) => {
            return Err(AppError::bad_field("input.funderId", "only FUNDER accounts belong to a funder"));
        }
        (_, None) => {}
    }
    let password_hash = password::hash_secret(&input.password).await?;
    let now = Utc::now();
    Ok(account::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email),
        password_hash: Set(password_hash),
        role: Set(input.role),
        funder_id: Set(input.funder_id),
        display_name: Set(display_name),
        disabled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
}

pub async fn create(db: &impl ConnectionTrait, viewer: &Viewer, input: NewAccount) -> AppResult<account::Model> {
    require_admin(viewer)?;
    let model = build(db, input).await?;
    let created = model.insert(db).await.map_err(|e| email_conflict(e.into()))?;
    tracing::info!(account = %created.id, role = created.role.as_str(), by = %viewer.subject(), "account created");
    Ok(created)
}

/// Bootstrap: create an admin without a viewer (`rapport create-admin`, demo data).
pub async fn create_unchecked(db: &impl ConnectionTrait, input: NewAccount) -> AppResult<account::Model> {
    let model = build(db, input).await?;
    model.insert(db).await.map_err(|e| email_conflict(e.into()))
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> AppResult<account::Model> {
    account::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("account"))
}

/// Stop an account from logging in and end its sessions. Idempotent. Admins cannot disable
/// themselves (someone must be left to re-enable accounts).
pub async fn disable(state: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<account::Model> {
    require_admin(viewer)?;
    if viewer.account_id() == Some(id) {
        return Err(AppError::conflict("you cannot disable your own account"));
    }
    let existing = find(&state.db, id).await?;
    let model = if existing.disabled_at.is_some() {
        existing
    } else {
        let mut model: account::ActiveModel = existing.into();
        let now = Utc::now();
        model.disabled_at = Set(Some(now));
        model.updated_at = Set(now);
        model.update(&state.db).await?
    };
    sessions::revoke_all_sessions_for_account(&state.db, state, id).await?;
    tracing::info!(account = %id, by = %viewer.subject(), "account disabled");
    Ok(model)
}

/// Let a disabled account log in again. Idempotent.
pub async fn enable(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<account::Model> {
    require_admin(viewer)?;
    let existing = find(db, id).await?;
    if existing.disabled_at.is_none() {
        return Ok(existing);
    }
    let mut model: account::ActiveModel = existing.into();
    model.disabled_at = Set(None);
    model.updated_at = Set(Utc::now());
    let model = model.update(db).await?;
    tracing::info!(account = %id, by = %viewer.subject(), "account enabled");
    Ok(model)
}

/// Set a new password chosen by an admin; the account's sessions end.
pub async fn reset_password(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
    new_password: &str,
) -> AppResult<account::Model> {
    require_admin(viewer)?;
    password::check_password(new_password, "newPassword")?;
    let existing = find(&state.db, id).await?;
    let hash = password::hash_secret(new_password).await?;
    let mut model: account::ActiveModel = existing.into();
    model.password_hash = Set(hash);
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    sessions::revoke_all_sessions_for_account(&state.db, state, id).await?;
    tracing::info!(account = %id, by = %viewer.subject(), "account password reset");
    Ok(model)
}

/// An account holder changes their own password; their other sessions end.
pub async fn change_own_password(
    state: &AppState,
    viewer: &Viewer,
    current: &str,
    new_password: &str,
    ip: Option<std::net::IpAddr>,
) -> AppResult<account::Model> {
    viewer.require_authenticated()?;
    let Some(id) = viewer.account_id() else {
        return Err(viewer.denied("change an account password (this login has no account)"));
    };
    password::check_password(new_password, "newPassword")?;
    let counters = throttle::counters(&state.settings.auth, "account-id", &id.to_string(), ip);
    throttle::check(&state.cache, &counters).await?;
    let existing = find(&state.db, id).await?;
    if !password::verify_secret(current, Some(&existing.password_hash)).await? {
        throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
        return Err(AppError::bad_field("currentPassword", "the current password is not correct"));
    }
    throttle::record_success(&state.cache, &counters[0]).await;
    let hash = password::hash_secret(new_password).await?;
    let mut model: account::ActiveModel = existing.into();
    model.password_hash = Set(hash);
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    sessions::revoke_other_sessions(&state.db, state, viewer).await?;
    Ok(model)
}

// ---------------------------------------------------------------------------------------------
// Patron PINs

/// Staff set or reset a patron's PIN (a forgotten PIN, a new card); the patron's sessions end.
pub async fn set_patron_pin(state: &AppState, viewer: &Viewer, patron_id: Uuid, pin: &str) -> AppResult<patron::Model> {
    if !viewer.is_staff() {
        return Err(viewer.denied("set patron PINs"));
    }
    password::check_pin(pin, "pin")?;
    let existing =
        patron::Entity::find_by_id(patron_id).one(&state.db).await?.ok_or_else(|| AppError::not_found("patron"))?;
    if existing.status == PatronStatus::Erased {
        return Err(AppError::conflict("an erased patron cannot log in"));
    }
    let hash = password::hash_secret(pin).await?;
    let mut model: patron::ActiveModel = existing.into();
    model.pin_hash = Set(Some(hash));
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    sessions::revoke_all_sessions_for_patron(&state.db, state, patron_id).await?;
    tracing::info!(patron = %patron_id, by = %viewer.subject(), "patron PIN set");
    Ok(model)
}

/// A patron changes their own PIN; their other sessions end.
pub async fn change_own_pin(
    state: &AppState,
    viewer: &Viewer,
    current: &str,
    new_pin: &str,
    ip: Option<std::net::IpAddr>,
) -> AppResult<patron::Model> {
    viewer.require_authenticated()?;
    let Some(patron_id) = viewer.patron_id() else {
        return Err(viewer.denied("change a patron PIN (only patrons have one)"));
    };
    password::check_pin(new_pin, "newPin")?;
    let counters = throttle::counters(&state.settings.auth, "patron", &patron_id.to_string(), ip);
    throttle::check(&state.cache, &counters).await?;
    let existing =
        patron::Entity::find_by_id(patron_id).one(&state.db).await?.ok_or_else(|| AppError::not_found("patron"))?;
    if existing.status == PatronStatus::Erased {
        return Err(AppError::conflict("an erased patron cannot log in"));
    }
    if !password::verify_secret(current, existing.pin_hash.as_deref()).await? {
        throttle::record_failure(&state.cache, &state.settings.auth, &counters).await;
        return Err(AppError::bad_field("currentPin", "the current PIN is not correct"));
    }
    throttle::record_success(&state.cache, &counters[0]).await;
    let hash = password::hash_secret(new_pin).await?;
    let mut model: patron::ActiveModel = existing.into();
    model.pin_hash = Set(Some(hash));
    model.updated_at = Set(Utc::now());
    let model = model.update(&state.db).await?;
    sessions::revoke_other_sessions(&state.db, state, viewer).await?;
    Ok(model)
}
