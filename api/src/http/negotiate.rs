//! Media types of the GraphQL-over-HTTP specification: which response type the client accepts,
//! and whether a POST body is JSON.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// `application/graphql-response+json`: request errors are 4xx.
    GraphqlResponseJson,
    /// `application/json`: the legacy type; well-formed requests are answered 200.
    Json,
}

impl ResponseType {
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
            ResponseType::Json => "application/json; charset=utf-8",
        }
    }
}

pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Pick the response type from an `Accept` header. `None` means nothing we can produce is
/// acceptable (answer 406). A missing header means `application/json`, as the spec asks.
pub fn negotiate(accept: Option<&str>) -> Option<ResponseType> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(ResponseType::Json);
    };
    let mut best: Option<(f32, u8, ResponseType)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        if q <= 0.0 {
            continue;
        }
        // Specific types beat wildcards at equal q; the new type beats the legacy one.
        let candidate = match media.as_str() {
            GRAPHQL_RESPONSE_JSON => Some((3, ResponseType::GraphqlResponseJson)),
            "application/json" => Some((2, ResponseType::Json)),
            "application/*" | "*/*" => Some((1, ResponseType::GraphqlResponseJson)),
            _ => None,
        };
        if let Some((rank, kind)) = candidate
            && best.is_none_or(|(bq, brank, _)| q > bq || (q == bq && rank > brank))
        {
            best = Some((q, rank, kind));
        }
    }
    best.map(|(_, _, kind)| kind)
}

/// Whether the client prefers an HTML page (a browser opening `/graphql`).
pub fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|item| item.trim().to_ascii_lowercase().starts_with("text/html")))
}

/// A POST body must be `application/json`, optionally with `charset=utf-8`.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else { return false };
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_the_spec() {
        assert_eq!(negotiate(None), Some(ResponseType::Json));
        assert_eq!(negotiate(Some("application/json")), Some(ResponseType::Json));
        assert_eq!(negotiate(Some("application/graphql-response+json")), Some(ResponseType::GraphqlResponseJson));
        assert_eq!(
            negotiate(Some("application/graphql-response+json, application/json;q=0.9")),
            Some(ResponseType::GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(Some("application/graphql-response+json;q=0.5, application/json")),
            Some(ResponseType::Json)
        );
        assert_eq!(negotiate(Some("*/*")), Some(ResponseType::GraphqlResponseJson));
        assert_eq!(negotiate(Some("text/html")), None);
        assert_eq!(negotiate(Some("application/json;q=0")), None);
    }

    #[test]
    fn recognises_json_bodies() {
        assert!(is_json_content_type(Some("application/json")));
        assert!(is_json_content_type(Some("application/json; charset=UTF-8")));
        assert!(!is_json_content_type(Some("application/json; charset=latin1")));
        assert!(!is_json_content_type(Some("text/plain")));
        assert!(!is_json_content_type(None));
    }
}
