//! Per-viewer rate limits: requests per minute by role (`RAPPORT_RATE_LIMIT_<ROLE>`), counted
//! per token subject, or per client address for anonymous callers, in fixed one-minute windows
//! through `cache.incr_by`: shared by every instance through Redis, in-process without it. A
//! batch counts as its number of operations.

use std::{net::IpAddr, time::Duration};

use actix_web::{HttpRequest, http::header};

use crate::{auth::Viewer, config::RateLimits, state::AppState};

const WINDOW: Duration = Duration::from_secs(60);

/// The client's address, attached to every GraphQL request (login throttling, rate limits):
/// the peer address, or with `RAPPORT_TRUST_PROXY=1` the last address in `X-Forwarded-For` (the
/// one your proxy saw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl ClientIp {
    pub fn of(req: &HttpRequest) -> Self {
        let trust_proxy = req.app_data::<actix_web::web::Data<AppState>>().is_some_and(|s| s.settings.trust_proxy);
        Self::resolve(req, trust_proxy)
    }

    pub fn resolve(req: &HttpRequest, trust_proxy: bool) -> Self {
        let forwarded = trust_proxy
            .then(|| req.headers().get(header::HeaderName::from_static("x-forwarded-for")))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').map(str::trim).find(|s| !s.is_empty()))
            .and_then(|s| s.parse::<IpAddr>().ok());
        ClientIp(forwarded.or_else(|| req.peer_addr().map(|addr| addr.ip())))
    }
}

/// Why a request was refused: wait this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub retry_after_secs: u64,
}

fn budget(limits: &RateLimits, viewer: &Viewer) -> (&'static str, u64) {
    use crate::auth::Role;
    match viewer.role() {
        None => ("ANONYMOUS", limits.anonymous),
        Some(Role::Patron) => ("PATRON", limits.patron),
        Some(Role::Funder) => ("FUNDER", limits.funder),
        Some(Role::Partner) => ("PARTNER", limits.partner),
        Some(Role::Staff) => ("STAFF", limits.staff),
        Some(Role::Admin) => ("ADMIN", limits.admin),
    }
}

/// Count `cost` requests against the viewer's budget. When the cache cannot count (never for
/// the in-process store; Redis falls back to in-process counters), the request goes through.
pub async fn check(state: &AppState, viewer: &Viewer, ip: &ClientIp, cost: u64) -> Result<(), Exceeded> {
    let (role, limit) = budget(&state.settings.rate_limits, viewer);
    if limit == 0 {
        return Ok(());
    }
    let key = match (viewer.is_authenticated(), ip.0) {
        (true, _) => format!("rl:{role}:{}", viewer.subject()),
        (false, Some(ip)) => format!("rl:{role}:{ip}"),
        (false, None) => format!("rl:{role}:unknown"),
    };
    let Some((count, left)) = state.cache.incr_by(&key, cost.max(1), WINDOW).await else {
        return Ok(());
    };
    if count <= limit {
        return Ok(());
    }
    state.metrics.rate_limited(role);
    // Whole seconds, rounded up, at least one: retrying sooner would be refused again.
    let retry_after_secs = left.as_millis().div_ceil(1_000).max(1);
    Err(Exceeded { retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(60) })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn forwarded_for_only_when_trusted() {
        let peer: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let req = TestRequest::default()
            .peer_addr(peer)
            .insert_header(("x-forwarded-for", "203.0.113.9, 198.51.100.7"))
            .to_http_request();
        assert_eq!(ClientIp::resolve(&req, false).0, Some(peer.ip()));
        assert_eq!(ClientIp::resolve(&req, true).0, "198.51.100.7".parse().ok());
        let bare = TestRequest::default().peer_addr(peer).insert_header(("x-forwarded-for", "junk")).to_http_request();
        assert_eq!(ClientIp::resolve(&bare, true).0, Some(peer.ip()));
    }
}
