//! The one place where errors become `extensions.code`. Resolvers return `AppError` with `?`;
//! async-graphql keeps it as the error's source, and this extension shapes every error of every
//! transport (HTTP, batch, WebSocket) into the fixed set of codes, hiding internal causes.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    ErrorExtensionValues, Response, ServerError, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextSubscribe},
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;

use crate::error::{AppError, ErrorCode};

/// Set once execution starts, so the HTTP layer can tell request errors (parse, validation,
/// unknown operation: answered 400) from field errors (answered 200 with partial data).
#[derive(Debug, Default)]
pub struct ExecutionMarker(AtomicBool);

impl ExecutionMarker {
    pub fn executed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct ErrorShaping;

impl ExtensionFactory for ErrorShaping {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorShapingExtension)
    }
}

struct ErrorShapingExtension;

#[async_trait::async_trait]
impl Extension for ErrorShapingExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        shape_all(&mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                shape_all(&mut response);
                response
            })
            .boxed()
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(marker) = ctx.data_opt::<Arc<ExecutionMarker>>() {
            marker.0.store(true, Ordering::Relaxed);
        }
        next.run(ctx, operation_name).await
    }
}

/// Errors listed in one response. Past this the rest are counted in one closing error: a
/// request whose every row fails (a page of rows each denied, say) would otherwise answer with
/// one error per row, many megabytes for a query within the complexity limit.
pub const MAX_ERRORS: usize = 100;

fn shape_all(response: &mut Response) {
    if response.errors.len() > MAX_ERRORS {
        let omitted = response.errors.split_off(MAX_ERRORS - 1);
        let mut summary = ServerError::new(format!("{} more errors omitted", omitted.len()), None);
        // The closing error carries the code of the first omitted one: clients that branch on
        // codes see nothing new.
        if let Some(mut first) = omitted.into_iter().next() {
            shape(&mut first);
            if let Some(code) = first.extensions.as_ref().and_then(|ext| ext.get("code")) {
                summary.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", code.clone());
            }
        }
        response.errors.push(summary);
    }
    for error in &mut response.errors {
        shape(error);
    }
}

fn set_code(error: &mut ServerError, code: ErrorCode) {
    error.extensions.get_or_insert_with(ErrorExtensionValues::default).set("code", code.as_str());
}

fn has_code(error: &ServerError) -> bool {
    error.extensions.as_ref().is_some_and(|ext| ext.get("code").is_some())
}

/// Give one error its code and a message safe to show.
pub fn shape(error: &mut ServerError) {
    if has_code(error) {
        return;
    }
    let source = error.source.clone();
    let app_error: Option<&AppError> = source
        .as_deref()
        .and_then(|s| s.downcast_ref::<AppError>().or_else(|| s.downcast_ref::<Arc<AppError>>().map(|a| a.as_ref())));
    match (app_error, &source) {
        (Some(app), _) => {
            let code = app.code();
            match app {
                AppError::Internal(cause) => tracing::error!(error = ?cause, path = ?error.path, "internal error"),
                AppError::Unavailable(cause) => {
                    tracing::warn!(error = ?cause, path = ?error.path, "database unavailable")
                }
                _ => {}
            }
            error.message = app.to_string();
            set_code(error, code);
            let ext = error.extensions.get_or_insert_with(ErrorExtensionValues::default);
            match app {
                AppError::BadInput { field: Some(field), .. } => ext.set("field", field.as_str()),
                AppError::RateLimited { retry_after_secs } => ext.set("retryAfter", Value::from(*retry_after_secs)),
                _ => {}
            }
        }
        (None, Some(_)) => {
            // A cause nobody mapped (a database error passed on with `?`, say): log it, hide it.
            tracing::error!(message = %error.message, path = ?error.path, "unmapped error");
            error.message = "internal error".into();
            set_code(error, ErrorCode::Internal);
        }
        (None, None) => {
            // async-graphql's own errors: parse, validation, input coercion, limits.
            let code =
                if is_limit_message(&error.message) { ErrorCode::QueryTooComplex } else { ErrorCode::BadUserInput };
            set_code(error, code);
        }
    }
}

fn is_limit_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("nested too deep")
        || m.contains("too complex")
        || m.contains("recursion")
        || m.contains("recursive")
        || m.contains("too many directives")
}

/// A request-level error with a code, for errors raised outside resolvers.
pub fn request_error(code: ErrorCode, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    set_code(&mut error, code);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(error: &ServerError) -> Option<String> {
        error.extensions.as_ref().and_then(|e| e.get("code")).map(|v| v.to_string())
    }

    #[test]
    fn app_errors_get_their_code_and_internal_causes_are_hidden() {
        let err: async_graphql::Error = AppError::bad_field("input.email", "not an email").into();
        let mut server = err.into_server_error(async_graphql::Pos::default());
        shape(&mut server);
        assert_eq!(code_of(&server).as_deref(), Some("\"BAD_USER_INPUT\""));

        let err: async_graphql::Error = AppError::internal(anyhow::anyhow!("SELECT secret FROM x")).into();
        let mut server = err.into_server_error(async_graphql::Pos::default());
        shape(&mut server);
        assert_eq!(server.message, "internal error");
        assert_eq!(code_of(&server).as_deref(), Some("\"INTERNAL\""));
    }

    #[test]
    fn unmapped_sources_are_internal() {
        let err: async_graphql::Error = std::io::Error::other("disk full at /var/lib").into();
        let mut server = err.into_server_error(async_graphql::Pos::default());
        shape(&mut server);
        assert_eq!(server.message, "internal error");
    }
}
