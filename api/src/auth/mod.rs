//! Who is asking: tokens, the viewer they become, and what each viewer may do; password and
//! PIN hashing, token revocation and login throttling.

pub mod bootstrap;
pub mod jwt;
pub mod password;
pub mod revocation;
pub mod throttle;
pub mod viewer;

pub use jwt::{Claims, JwtKeys, TokenRequest};
pub use viewer::{Capability, Principal, Role, Scope, Viewer};

use crate::{
    error::{AppError, AppResult},
    state::AppState,
};

/// Turn a bearer token into a viewer: signature, claims, then revocation of the token (`jti`)
/// and of its session (`sid`). Every transport should authenticate through this (the GraphQL
/// schema also re-checks revocation for requests that carry a viewer, see
/// `graphql::revocation`).
pub async fn authenticate(state: &AppState, token: &str) -> AppResult<Viewer> {
    let (viewer, _) = state.jwt.verify(token)?;
    ensure_not_revoked(state, &viewer).await?;
    Ok(viewer)
}

/// `UNAUTHENTICATED` when the viewer's token or session has been revoked.
pub async fn ensure_not_revoked(state: &AppState, viewer: &Viewer) -> AppResult<()> {
    let token = revocation::TokenRef { jti: viewer.token_id.as_deref(), session_id: viewer.session_id.as_deref() };
    if revocation::is_revoked(&state.db, &state.cache, token).await? {
        Err(AppError::Unauthenticated("this token has been revoked".into()))
    } else {
        Ok(())
    }
}
