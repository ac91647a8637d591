//! OAuth 2.0 for partner systems and the published signing keys.
//!
//! - `POST /oauth/token`: the client credentials grant (RFC 6749 §4.4), form-encoded, with the
//!   client authenticated by HTTP Basic or by `client_id`/`client_secret` in the body (§2.3.1),
//!   answering with the standard token response (§5.1) or error body (§5.2). Stock OAuth
//!   libraries work against it.
//! - `GET /.well-known/jwks.json`: the public keys that verify access tokens (RFC 7517), empty
//!   for HS256.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::json;

use super::graphql::ClientIp;
use crate::{
    auth::Scope,
    domain::partners::{self, parse_scope_param},
    error::AppError,
    state::AppState,
};

/// Longest form body accepted.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// An RFC 6749 §5.2 error.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .content_type("application/json");
    if status == StatusCode::UNAUTHORIZED {
        response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="rapport", charset="UTF-8""#));
    }
    response.json(json!({ "error": error, "error_description": description }))
}

fn invalid_request(description: &str) -> HttpResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> HttpResponse {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed")
}

/// Decode `%XX` escapes and `+` (application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks of
/// Basic credentials). `None` for malformed escapes or non-UTF-8 results.
fn form_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Client credentials from `Authorization: Basic`, if that header is used.
fn basic_credentials(req: &HttpRequest) -> Option<Result<(String, String), ()>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let parsed = (|| {
        let value = value.to_str().ok()?;
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    })();
    Some(parsed.ok_or(()))
}

/// `POST /oauth/token`
pub async fn token(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        .unwrap_or(false);
    if !form_type {
        return invalid_request("the body must be application/x-www-form-urlencoded");
    }
    if body.len() > MAX_FORM_BYTES {
        return invalid_request("the body is too large");
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return invalid_request("the body is not UTF-8");
    };
    let Ok(pairs) = web::Query::<Vec<(String, String)>>::from_query(text) else {
        return invalid_request("the body is not valid form encoding");
    };
    let pairs = pairs.into_inner();
    // RFC 6749 §3.2: parameters must not be repeated.
    let mut seen = std::collections::HashSet::new();
    if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
        return invalid_request(&format!("parameter `{name}` is repeated"));
    }
    let param = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());

    match param("grant_type") {
        None => return invalid_request("missing `grant_type`"),
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only the client_credentials grant is supported",
            );
        }
    }

    let (client_id, client_secret) = match (basic_credentials(&req), param("client_id"), param("client_secret")) {
        (Some(Err(())), _, _) => return invalid_client(),
        (Some(Ok(_)), _, Some(_)) => {
            return invalid_request("use one way to authenticate the client: Basic or the body, not both");
        }
        // A `client_id` in the body next to Basic credentials must name the same client.
        (Some(Ok((id, _))), Some(body_id), None) if body_id != id => return invalid_client(),
        (Some(Ok(credentials)), _, None) => credentials,
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, _, _) => return invalid_client(),
    };

    let requested: Option<Vec<Scope>> = match param("scope").map(parse_scope_param) {
        None => None,
        Some(Ok(scopes)) => Some(scopes),
        Some(Err(err)) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &err.to_string()),
    };

    let ip = ClientIp::of(&req).0;
    match partners::issue_token(&state, &client_id, &client_secret, requested.as_deref(), ip).await {
        Ok(token) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(json!({
                "access_token": token.access_token,
                "token_type": "Bearer",
                "expires_in": token.expires_in,
                "scope": token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            })),
        Err(AppError::Unauthenticated(_)) => invalid_client(),
        Err(AppError::BadInput { message, .. }) => oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &message),
        Err(AppError::RateLimited { retry_after_secs }) => {
            let mut response = oauth_error(
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                "too many failed attempts; retry later",
            );
            if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(err) => {
            if let AppError::Internal(cause) = &err {
                tracing::error!(error = ?cause, "token endpoint failed");
            }
            oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the token could not be issued")
        }
    }
}

/// `GET /.well-known/jwks.json`
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .json(state.jwt.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_escapes() {
        assert_eq!(form_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_decode("plain").as_deref(), Some("plain"));
        assert_eq!(form_decode("bad%G1"), None);
        assert_eq!(form_decode("cut%4"), None);
    }
}
