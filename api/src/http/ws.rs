//! Subscriptions over WebSocket at `/graphql` (a `GET` with `Upgrade: websocket`), speaking
//! `graphql-transport-ws` (and the legacy `graphql-ws` subprotocol).
//!
//! The client authenticates in `connection_init` with `{ "Authorization": "Bearer <token>" }`
//! or `{ "token": "<token>" }`. A bad token closes the socket with 4403 (Forbidden), as the
//! protocol recommends; no token gives an anonymous connection, whose subscriptions are refused
//! with `UNAUTHENTICATED`. Built on actix-ws and async-graphql's protocol engine (rather than the
//! adapter's actor) so the close code can be chosen.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use async_graphql::{
    Data,
    http::{WebSocket, WebSocketProtocols, WsMessage},
};
use futures_util::StreamExt;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::ratelimit::{self, ClientIp};
use crate::{
    auth::{self, Viewer},
    error::{AppError, ErrorCode},
    graphql::{AppSchema, loaders::AppLoader},
    state::AppState,
};

/// Closed when `connection_init` carries a token that does not verify.
const CLOSE_FORBIDDEN: u16 = 4403;
/// Closed when no `connection_init` arrives in time.
const CLOSE_INIT_TIMEOUT: u16 = 4408;
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A client silent (not even answering pings) this long is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Whether a `GET /graphql` asks for a WebSocket.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn subprotocol(req: &HttpRequest) -> Option<WebSocketProtocols> {
    req.headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.split(',').find_map(|p| WebSocketProtocols::from_str(p.trim()).ok()))
}

fn plain_error(status: StatusCode, code: ErrorCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }))
}

/// Accept the upgrade and serve the connection in the background.
pub async fn upgrade(
    req: HttpRequest,
    payload: web::Payload,
    schema: web::Data<AppSchema>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(protocol) = subprotocol(&req) else {
        return plain_error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadUserInput,
            "WebSocket clients must offer the `graphql-transport-ws` subprotocol",
        );
    };
    let ip = ClientIp::of(&req);
    // Opening a connection counts as one request of the address (the token comes later).
    if let Err(exceeded) = ratelimit::check(&state, &Viewer::anonymous(), &ip, 1).await {
        let err = AppError::RateLimited { retry_after_secs: exceeded.retry_after_secs };
        let mut response = plain_error(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, &err.to_string());
        if let Ok(value) = header::HeaderValue::from_str(&exceeded.retry_after_secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let (mut response, session, messages) = match actix_ws::handle(&req, payload) {
        Ok(parts) => parts,
        Err(err) => return err.error_response(),
    };
    response
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static(protocol.sec_websocket_protocol()));
    let max_message = state.limits().max_body_bytes;
    let messages = messages.max_frame_size(max_message).aggregate_continuations().max_continuation_size(max_message);
    actix_web::rt::spawn(serve(session, messages, schema.get_ref().clone(), state.get_ref().clone(), protocol, ip));
    response
}

/// An `Authorization` entry of a JSON object, without its `Bearer ` prefix.
fn authorization(object: &Json) -> Option<&str> {
    let value = object.get("Authorization").or_else(|| object.get("authorization")).and_then(Json::as_str)?;
    Some(value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or(value).trim())
}

/// The token in a `connection_init` payload, if any.
fn token_in(payload: &Json) -> Option<&str> {
    authorization(payload)
        .or_else(|| payload.get("headers").and_then(authorization))
        .or_else(|| payload.get("token").and_then(Json::as_str).map(str::trim))
}

async fn connection_data(state: &AppState, ip: ClientIp, payload: &Json) -> Result<Data, AppError> {
    let viewer = match token_in(payload) {
        None => Viewer::anonymous(),
        Some("") => return Err(AppError::Unauthenticated("empty token".into())),
        Some(token) => auth::authenticate(state, token).await?,
    };
    let mut data = Data::default();
    data.insert(viewer);
    data.insert(ip);
    data.insert(AppLoader::for_request(state.db.clone()));
    Ok(data)
}

async fn serve(
    mut session: Session,
    mut incoming: actix_ws::AggregatedMessageStream,
    schema: AppSchema,
    state: AppState,
    protocol: WebSocketProtocols,
    ip: ClientIp,
) {
    let rejected = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicBool::new(false));
    let (to_engine, from_client) = mpsc::unbounded_channel::<Vec<u8>>();
    let init = {
        let (rejected, acknowledged) = (rejected.clone(), acknowledged.clone());
        move |payload: Json| async move {
            match connection_data(&state, ip, &payload).await {
                Ok(data) => {
                    acknowledged.store(true, Ordering::Relaxed);
                    Ok(data)
                }
                Err(err) => {
                    rejected.store(true, Ordering::Relaxed);
                    Err(async_graphql::Error::new(err.to_string()))
                }
            }
        }
    };
    let engine = WebSocket::new(
        schema,
        futures_util::stream::unfold(from_client, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) }),
        protocol,
    )
    .on_connection_init(init);
    tokio::pin!(engine);
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut last_seen = Instant::now();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let close = loop {
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    last_seen = Instant::now();
                    if to_engine.send(text.as_bytes().to_vec()).is_err() {
                        break None;
                    }
                }
                Some(Ok(AggregatedMessage::Binary(bytes))) => {
                    last_seen = Instant::now();
                    if to_engine.send(bytes.to_vec()).is_err() {
                        break None;
                    }
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    last_seen = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => last_seen = Instant::now(),
                Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => break None,
            },
            reply = engine.next() => match reply {
                Some(WsMessage::Text(text)) => {
                    if session.text(text).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if rejected.load(Ordering::Relaxed) { CLOSE_FORBIDDEN } else { code };
                    break Some(CloseReason { code: CloseCode::from(code), description: Some(reason) });
                }
                None => break None,
            },
            _ = &mut init_deadline, if !acknowledged.load(Ordering::Relaxed) => {
                break Some(CloseReason {
                    code: CloseCode::from(CLOSE_INIT_TIMEOUT),
                    description: Some("Connection initialisation timeout".into()),
                });
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= CLIENT_TIMEOUT || session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    let _ = session.close(close).await;
}
