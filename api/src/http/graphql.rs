//! GraphQL over HTTP, following the specification rather than the adapter: `Accept`
//! negotiation, 400 without `data` for request errors under `application/graphql-response+json`,
//! 415 for non-JSON POSTs, 405 for mutations over GET, body and batch limits. On top: per-viewer
//! rate limits (429), automatic persisted queries, and the WebSocket upgrade for subscriptions.

use std::{sync::Arc, time::Instant};

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use async_graphql::{BatchRequest, Request, Response, http::GraphiQLSource, parser::types::OperationType};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

pub use super::ratelimit::ClientIp;
use super::{
    negotiate::{ResponseType, is_json_content_type, negotiate, wants_html},
    persisted::{NOT_FOUND_CODE, NOT_FOUND_MESSAGE, Persisted, Refusal},
    ratelimit, ws,
};
use crate::{
    auth::Viewer,
    cache::catalogue::SharedAnswer,
    domain::audit::RequestId,
    error::{AppError, ErrorCode},
    graphql::{AppSchema, errors::ExecutionMarker, loaders::AppLoader, observe::OperationKind},
    state::AppState,
};

/// An HTTP answer with GraphQL-shaped errors and no `data`, for failures before execution.
fn request_failure(status: StatusCode, media: ResponseType, code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }))
}

/// Resolve the viewer from `Authorization`. A token that is present but bad, expired or revoked
/// is an error (401), never silently anonymous.
pub async fn viewer_from_request(req: &HttpRequest, state: &AppState) -> Result<Viewer, AppError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(Viewer::anonymous());
    };
    let value = value.to_str().map_err(|_| AppError::Unauthenticated("malformed Authorization header".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AppError::Unauthenticated("expected `Authorization: Bearer <token>`".into()))?;
    crate::auth::authenticate(state, token).await
}

/// The answer when the viewer could not be resolved: 401 for a bad token; a failure to check it
/// (revocations unreadable) keeps its own code and status, so a client does not throw away a good
/// token because the database blinked.
fn unauthenticated(media: ResponseType, err: &AppError) -> HttpResponse {
    if !matches!(err, AppError::Unauthenticated(_)) {
        if let AppError::Internal(cause) | AppError::Unavailable(cause) = err {
            tracing::warn!(error = ?cause, "could not authenticate the request");
        }
        let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return request_failure(status, media, err.code(), &err.to_string());
    }
    let mut response = request_failure(StatusCode::UNAUTHORIZED, media, ErrorCode::Unauthenticated, &err.to_string());
    if let Ok(value) = header::HeaderValue::from_str(r#"Bearer error="invalid_token""#) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 429 with `Retry-After` and a `RATE_LIMITED` error carrying `retryAfter`.
fn rate_limited(media: ResponseType, exceeded: ratelimit::Exceeded) -> HttpResponse {
    let retry = exceeded.retry_after_secs;
    let message = AppError::RateLimited { retry_after_secs: retry }.to_string();
    HttpResponse::build(StatusCode::TOO_MANY_REQUESTS)
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, retry.to_string()))
        .json(json!({ "errors": [{
            "message": message,
            "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfter": retry }
        }]}))
}

fn header_str(req: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn persisted(state: &AppState) -> Persisted<'_> {
    let cache = &state.settings.cache;
    Persisted::new(&state.cache, cache.persisted_query_ttl, cache.persisted_only)
}

/// The body and status of a refused persisted-query request. `PersistedQueryNotFound` is
/// answered 200 whatever the media type: Apollo clients stop using persisted queries when they
/// see a 400, instead of sending the document.
fn refusal_body(refusal: &Refusal) -> (StatusCode, Json) {
    let (status, message, code) = match refusal {
        Refusal::NotFound => (StatusCode::OK, NOT_FOUND_MESSAGE.to_owned(), NOT_FOUND_CODE),
        Refusal::BadInput(message) => (StatusCode::BAD_REQUEST, message.clone(), ErrorCode::BadUserInput.as_str()),
        Refusal::NotRegistered => (
            StatusCode::FORBIDDEN,
            "this server runs only registered persisted queries".to_owned(),
            ErrorCode::Forbidden.as_str(),
        ),
    };
    (status, json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }))
}

fn refused(media: ResponseType, refusal: &Refusal) -> HttpResponse {
    let (status, body) = refusal_body(refusal);
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `POST /graphql`
pub async fn post(
    req: HttpRequest,
    mut payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(media) = negotiate(header_str(&req, header::ACCEPT)) else {
        return not_acceptable();
    };
    if !is_json_content_type(header_str(&req, header::CONTENT_TYPE)) {
        state.metrics.reject("unsupported_media_type");
        return request_failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            ErrorCode::BadUserInput,
            "POST bodies must be `application/json`",
        );
    }
    let limit = state.limits().max_body_bytes;
    let too_large = || {
        state.metrics.reject("payload_too_large");
        request_failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            media,
            ErrorCode::BadUserInput,
            &format!("request body exceeds {limit} bytes"),
        )
    };
    let declared = header_str(&req, header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return request_failure(StatusCode::BAD_REQUEST, media, ErrorCode::BadUserInput, "could not read the body");
        };
        if body.len() + chunk.len() > limit {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            state.metrics.reject("bad_json");
            let message = if serde_json::from_slice::<Json>(&body).is_ok() {
                format!("invalid GraphQL request parameters: {err}")
            } else {
                "the body is not valid JSON".to_owned()
            };
            return request_failure(StatusCode::BAD_REQUEST, media, ErrorCode::BadUserInput, &message);
        }
    };
    let viewer = match viewer_from_request(&req, &state).await {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(media, &err),
    };
    let ip = ClientIp::of(&req);
    match batch {
        BatchRequest::Single(mut request) => {
            if let Err(exceeded) = ratelimit::check(&state, &viewer, &ip, 1).await {
                return rate_limited(media, exceeded);
            }
            if let Err(refusal) = persisted(&state).resolve(&viewer, &mut request).await {
                state.metrics.reject("persisted_query");
                return refused(media, &refusal);
            }
            let request = request.data(request_id_of(&req));
            execute_single(&schema, &state, viewer, &ip, request, media, false).await
        }
        BatchRequest::Batch(requests) => {
            if requests.len() > state.limits().max_batch {
                state.metrics.reject("batch_too_large");
                return request_failure(
                    StatusCode::BAD_REQUEST,
                    media,
                    ErrorCode::QueryTooComplex,
                    &format!("a batch may hold at most {} operations", state.limits().max_batch),
                );
            }
            let cost = u64::try_from(requests.len()).unwrap_or(u64::MAX);
            if let Err(exceeded) = ratelimit::check(&state, &viewer, &ip, cost).await {
                return rate_limited(media, exceeded);
            }
            // The items of one HTTP request share its id in logs and audit events.
            let id = request_id_of(&req);
            let requests = requests.into_iter().map(|r| r.data(id)).collect();
            execute_batch(&schema, &state, viewer, &ip, requests, media).await
        }
    }
}

/// The operation a GET would run, refused (405) unless it is a query.
fn refuse_non_query(state: &AppState, request: &Request, media: ResponseType) -> Option<HttpResponse> {
    let document = crate::graphql::limits::parse_document(&request.query).ok()?;
    let (_, operation) = document.operations.iter().find(|(name, _)| match &request.operation_name {
        Some(wanted) => name.is_some_and(|n| n.as_str() == wanted),
        None => true,
    })?;
    if operation.node.ty == OperationType::Query {
        return None;
    }
    state.metrics.reject("mutation_over_get");
    let mut response = request_failure(
        StatusCode::METHOD_NOT_ALLOWED,
        media,
        ErrorCode::BadUserInput,
        "only queries may be sent with GET; use POST",
    );
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("POST"));
    Some(response)
}

/// `GET /graphql`: queries only (also by persisted-query hash); GraphiQL for a browser; the
/// WebSocket upgrade for subscriptions.
pub async fn get(
    req: HttpRequest,
    payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if ws::is_upgrade(&req) {
        return ws::upgrade(req, payload, schema, state).await;
    }
    let accept = header_str(&req, header::ACCEPT);
    let params = match web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string()) {
        Ok(params) => params.into_inner(),
        Err(_) => {
            return request_failure(
                StatusCode::BAD_REQUEST,
                negotiate(accept).unwrap_or(ResponseType::Json),
                ErrorCode::BadUserInput,
                "malformed query string",
            );
        }
    };
    if wants_html(accept) && !params.contains_key("query") && !params.contains_key("extensions") {
        return HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .title("Rapport GraphiQL")
                .finish(),
        );
    }
    let Some(media) = negotiate(accept) else {
        return not_acceptable();
    };
    let bad = |message: String| request_failure(StatusCode::BAD_REQUEST, media, ErrorCode::BadUserInput, &message);
    let query = params.get("query").filter(|q| !q.trim().is_empty());
    let mut request = Request::new(query.cloned().unwrap_or_default());
    request.operation_name = params.get("operationName").filter(|n| !n.is_empty()).cloned();
    if let Some(raw) = params.get("variables").filter(|v| !v.is_empty()) {
        match serde_json::from_str(raw) {
            Ok(variables) => request.variables = variables,
            Err(_) => return bad("`variables` must be a JSON object".into()),
        }
    }
    if let Some(raw) = params.get("extensions").filter(|v| !v.is_empty()) {
        match serde_json::from_str(raw) {
            Ok(extensions) => request.extensions = extensions,
            Err(_) => return bad("`extensions` must be a JSON object".into()),
        }
    }
    if query.is_none() && !request.extensions.contains_key("persistedQuery") {
        return bad("missing `query` parameter".into());
    }
    // GET must never change anything: refuse mutations before executing.
    if let Some(refusal) = refuse_non_query(&state, &request, media) {
        return refusal;
    }
    let viewer = match viewer_from_request(&req, &state).await {
        Ok(viewer) => viewer,
        Err(err) => return unauthenticated(media, &err),
    };
    let ip = ClientIp::of(&req);
    if let Err(exceeded) = ratelimit::check(&state, &viewer, &ip, 1).await {
        return rate_limited(media, exceeded);
    }
    if let Err(refusal) = persisted(&state).resolve(&viewer, &mut request).await {
        state.metrics.reject("persisted_query");
        return refused(media, &refusal);
    }
    // A document found by its hash gets the same check.
    if query.is_none()
        && let Some(refusal) = refuse_non_query(&state, &request, media)
    {
        return refusal;
    }
    let request = request.data(request_id_of(&req));
    execute_single(&schema, &state, viewer, &ip, request, media, true).await
}

/// The id the request logger gave this HTTP request (echoed as `X-Request-Id`), so audit
/// events and log lines of one request share it.
fn request_id_of(req: &HttpRequest) -> RequestId {
    req.extensions().get::<tracing_actix_web::RequestId>().map_or_else(RequestId::generate, |id| RequestId(**id))
}

fn not_acceptable() -> HttpResponse {
    HttpResponse::NotAcceptable().content_type("application/json; charset=utf-8").json(json!({ "errors": [{
        "message": "supported response types: application/graphql-response+json, application/json",
        "extensions": { "code": ErrorCode::BadUserInput.as_str() }
    }]}))
}

struct Executed {
    response: Response,
    request_error: bool,
    kind: &'static str,
}

impl Executed {
    fn outcome(&self) -> &'static str {
        if self.request_error {
            "request_error"
        } else if self.response.is_err() {
            "field_error"
        } else {
            "ok"
        }
    }
}

async fn run(schema: &AppSchema, state: &AppState, viewer: &Viewer, ip: &ClientIp, request: Request) -> Executed {
    let marker = Arc::new(ExecutionMarker::default());
    let kind = Arc::new(OperationKind::default());
    let loader = AppLoader::for_request(state.db.clone());
    let activity = AppLoader::activity(&loader);
    let request = request
        .data(viewer.clone())
        .data(ip.clone())
        .data(loader)
        .data(marker.clone())
        .data(kind.clone())
        // `viewer_from_request` already checked revocation for this request.
        .data(crate::graphql::revocation::RevocationChecked);
    // Loader batches wait for the request to go quiet, so a relation is fetched in one batch.
    let response = AppLoader::track(activity, schema.execute(request)).await;
    let request_error = !marker.executed() && response.is_err();
    Executed { response, request_error, kind: kind.get() }
}

/// The response body: request errors carry no `data` key at all.
fn body_of(executed: &Executed) -> Json {
    let mut body = serde_json::to_value(&executed.response).unwrap_or_else(|_| json!({}));
    if executed.request_error
        && let Some(object) = body.as_object_mut()
    {
        object.remove("data");
    }
    body
}

fn cache_control(viewer: &Viewer, response: &Response, is_get: bool) -> String {
    if viewer.is_authenticated() {
        // Per-viewer data must never land in a shared cache.
        return "private, no-store".into();
    }
    match (is_get, response.is_ok(), response.cache_control.value()) {
        (true, true, Some(value)) if response.cache_control.public && response.cache_control.max_age > 0 => {
            format!("public, {value}")
        }
        _ => "no-store".into(),
    }
}

async fn execute_single(
    schema: &AppSchema,
    state: &AppState,
    viewer: Viewer,
    ip: &ClientIp,
    request: Request,
    media: ResponseType,
    is_get: bool,
) -> HttpResponse {
    let started = Instant::now();
    // Anonymous answers made only of cacheable fields are the same for everyone: served whole
    // from the catalogue cache, without parsing, validating or executing the document again.
    let shared = (!viewer.is_authenticated()).then(|| answer_fingerprint(&request)).flatten();
    let catalogue = crate::graphql::services::catalogue(state);
    if let Some(fingerprint) = &shared
        && let Some(answer) = catalogue.cached_answer(fingerprint).await
    {
        state.metrics.record_request("query", "ok", started.elapsed());
        let cache_control = if is_get { format!("public, max-age={}", answer.max_age) } else { "no-store".into() };
        return HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, media.content_type()))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::VARY, "Authorization, Accept"))
            .body(answer.body);
    }
    let Some(_permit) = admit(state).await else {
        return busy(media);
    };
    let executed = run(schema, state, &viewer, ip, request).await;
    state.metrics.record_request(executed.kind, executed.outcome(), started.elapsed());
    if let Some(fingerprint) = &shared
        && executed.response.is_ok()
        && executed.response.cache_control.public
        && executed.response.cache_control.max_age > 0
        && let Ok(body) = serde_json::to_string(&body_of(&executed))
    {
        let answer = SharedAnswer { max_age: executed.response.cache_control.max_age, body };
        catalogue.store_answer(fingerprint, &answer).await;
    }
    let status = if executed.request_error && media == ResponseType::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header((header::CACHE_CONTROL, cache_control(&viewer, &executed.response, is_get)))
        .insert_header((header::VARY, "Authorization, Accept"));
    if let Some(retry) = retry_after(&executed.response) {
        builder.insert_header((header::RETRY_AFTER, retry.to_string()));
    }
    builder.json(body_of(&executed))
}

/// A slot to execute in, waiting at most the database acquire timeout: past that, the server is
/// overloaded and says so rather than queueing without end.
async fn admit(state: &AppState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    let wait = state.settings.database.acquire_timeout;
    match tokio::time::timeout(wait, state.operations.acquire()).await {
        Ok(Ok(permit)) => Some(permit),
        _ => {
            state.metrics.reject("busy");
            None
        }
    }
}

/// 503 with `Retry-After` when no execution slot freed up in time.
fn busy(media: ResponseType) -> HttpResponse {
    let mut response = request_failure(
        StatusCode::SERVICE_UNAVAILABLE,
        media,
        ErrorCode::Internal,
        "the server is busy; try again shortly",
    );
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

/// What makes two anonymous requests the same: the document, the operation and the variables.
fn answer_fingerprint(request: &Request) -> Option<String> {
    let key = serde_json::to_vec(&(&request.query, &request.operation_name, &request.variables)).ok()?;
    Some(format!("{:x}", Sha256::digest(key)))
}

/// One item of a batch: its persisted query settled, then run; a refused item answers alone.
async fn run_item(
    schema: &AppSchema,
    state: &AppState,
    viewer: &Viewer,
    ip: &ClientIp,
    mut request: Request,
) -> Result<Executed, Refusal> {
    persisted(state).resolve(viewer, &mut request).await?;
    Ok(run(schema, state, viewer, ip, request).await)
}

async fn execute_batch(
    schema: &AppSchema,
    state: &AppState,
    viewer: Viewer,
    ip: &ClientIp,
    requests: Vec<Request>,
    media: ResponseType,
) -> HttpResponse {
    let started = Instant::now();
    let Some(_permit) = admit(state).await else {
        return busy(media);
    };
    let results = futures_util::future::join_all(
        requests.into_iter().map(|request| run_item(schema, state, &viewer, ip, request)),
    )
    .await;
    let outcome = results
        .iter()
        .map(|r| match r {
            Ok(executed) => executed.outcome(),
            Err(_) => "request_error",
        })
        .max_by_key(|outcome| match *outcome {
            "request_error" => 2,
            "field_error" => 1,
            _ => 0,
        })
        .unwrap_or("ok");
    state.metrics.record_request("batch", outcome, started.elapsed());
    let body: Vec<Json> = results
        .iter()
        .map(|r| match r {
            Ok(executed) => body_of(executed),
            Err(refusal) => refusal_body(refusal).1,
        })
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header((
            header::CACHE_CONTROL,
            if viewer.is_authenticated() { "private, no-store" } else { "no-store" },
        ))
        .insert_header((header::VARY, "Authorization, Accept"))
        .json(body)
}

fn retry_after(response: &Response) -> Option<u64> {
    response.errors.iter().find_map(|e| {
        e.extensions.as_ref().and_then(|ext| ext.get("retryAfter")).and_then(|v| match v {
            async_graphql::Value::Number(n) => n.as_u64(),
            _ => None,
        })
    })
}
