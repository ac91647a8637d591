//! Every GraphQL request that carries a token is checked against revocations before it runs,
//! whatever the transport (POST, GET, batch, WebSocket): a logged-out or revoked token is
//! `UNAUTHENTICATED`. The check itself lives in `auth::revocation` and costs no SQL when the
//! cache is warm.

use std::{any::TypeId, sync::Arc};

use async_graphql::{
    Request, ServerResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
};

use super::errors::request_error;
use crate::{
    auth::{self, Viewer},
    error::AppError,
    state::AppState,
};

pub struct RevocationCheck;

/// Request data set by a transport that has already checked the token (HTTP answers 401 itself).
#[derive(Debug, Clone, Copy)]
pub struct RevocationChecked;

impl ExtensionFactory for RevocationCheck {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RevocationCheckExtension)
    }
}

struct RevocationCheckExtension;

#[async_trait::async_trait]
impl Extension for RevocationCheckExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.data.get(&TypeId::of::<RevocationChecked>()).is_some() {
            return next.run(ctx, request).await;
        }
        // The viewer is request data (HTTP) or connection data (WebSocket).
        let viewer = request
            .data
            .get(&TypeId::of::<Viewer>())
            .and_then(|data| data.downcast_ref::<Viewer>())
            .or_else(|| ctx.data_opt::<Viewer>());
        if let (Some(viewer), Some(state)) = (viewer, ctx.data_opt::<AppState>())
            && (viewer.token_id.is_some() || viewer.session_id.is_some())
            && let Err(err) = auth::ensure_not_revoked(state, viewer).await
        {
            if let AppError::Internal(cause) = &err {
                tracing::error!(error = ?cause, "revocation check failed");
            }
            return Err(request_error(err.code(), err.to_string()));
        }
        next.run(ctx, request).await
    }
}
