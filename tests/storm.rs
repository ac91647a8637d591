//! A bad-input storm: malformed JSON, random and mutated GraphQL documents, deep nesting, alias
//! and fragment bombs, oversized bodies and variables, garbage and forged tokens, wrong content
//! types. Shared by the `resilience` tests (in-process server) and `bench resilience` (the
//! release binary as a child process). Every request is drawn from a seeded RNG, so a finding
//! can be replayed with [`request`] and its index.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{StreamExt, stream};
use jsonwebtoken::{EncodingKey, Header};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde::Serialize;
use serde_json::{Value, json};

/// What the storm may use to reach deeper than the front door.
#[derive(Debug, Clone, Default)]
pub struct StormContext {
    /// Valid tokens (e.g. staff, patron), so mutated documents also reach the resolvers.
    pub tokens: Vec<String>,
    /// The server's HS256 secret, to forge expired and mis-addressed but well-signed tokens.
    pub jwt_secret: Option<String>,
    /// The server's body limit; oversized bodies are made just above it.
    pub max_body_bytes: usize,
}

/// One request of the storm.
#[derive(Debug, Clone)]
pub struct StormRequest {
    pub kind: &'static str,
    pub method: reqwest::Method,
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

/// A response worth showing: the request that caused it and the start of the answer.
#[derive(Debug, Clone, Serialize)]
pub struct StormExample {
    pub index: usize,
    pub kind: &'static str,
    pub status: u16,
    pub request: String,
    pub response: String,
}

/// What the storm found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StormReport {
    pub requests: usize,
    pub seed: u64,
    pub elapsed_secs: f64,
    /// Requests per HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// Responses per first `extensions.code` (`-` when the body carried none).
    pub codes: BTreeMap<String, u64>,
    /// Requests per kind of bad input.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Responses with status 5xx.
    pub server_errors: u64,
    /// Responses whose errors include `INTERNAL`.
    pub internal_codes: u64,
    /// Requests that got no response at all (connection reset or refused, timeout).
    pub transport_errors: u64,
    pub largest_response_bytes: usize,
    pub slowest_ms: u64,
    /// A few requests per problem: 5xx, INTERNAL, transport errors, responses over 1 MB.
    pub examples: Vec<StormExample>,
}

impl StormReport {
    /// Nothing a client could call a server failure.
    pub fn clean(&self) -> bool {
        self.server_errors == 0 && self.transport_errors == 0
    }
}

/// Responses larger than this are reported as examples (a bad request deserves a small answer).
const LARGE_RESPONSE: usize = 1024 * 1024;
const EXAMPLES_PER_PROBLEM: usize = 5;

/// Valid documents the mutations start from (all exist in the schema).
const VALID_DOCUMENTS: &[&str] = &[
    "{ services(first: 10) { totalCount nodes { id code name category channels } } }",
    "query Q($first: Int) { patrons(first: $first, filter: { text: \"an\" }) { nodes { id name interactions(first: 3) { nodes { kind occurredAt service { name } } } } } }",
    "{ viewer { authenticated role subject } }",
    "{ interactions(first: 5) { edges { cursor node { id kind channel rating patron { name } } } pageInfo { hasNextPage endCursor } } }",
    "{ funders(first: 5) { nodes { id name fundings { amount { amount currency } } } } }",
    "mutation { recordInteraction(input: { serviceId: \"x\", kind: VISIT, channel: WEB, patronType: PUBLIC }) { id } }",
    "query { node(id: \"UGF0cm9uOjE=\") { id ... on Patron { name } } }",
    "{ me { name consents { purpose granted } interactions(first: 20) { nodes { id kind } } } }",
];

const FIELDS: &[&str] = &[
    "services",
    "patrons",
    "patron",
    "me",
    "interactions",
    "interaction",
    "funders",
    "node",
    "viewer",
    "nodes",
    "edges",
    "node",
    "id",
    "name",
    "totalCount",
    "pageInfo",
    "service",
    "fundings",
    "__typename",
    "__schema",
    "__type",
    "types",
    "fields",
    "engagement",
    "consents",
    "fundingReport",
    "libraryStats",
];

const PUNCTUATION: &[&str] =
    &["{", "}", "(", ")", ":", "...", "$", "@", "!", "[", "]", "=", "|", "&", "\"", "\"\"\"", ",", "#"];

const KEYWORDS: &[&str] = &[
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "true",
    "false",
    "null",
    "include",
    "skip",
    "Int",
    "String",
    "ID",
    "first",
    "after",
    "filter",
    "input",
    "if",
];

/// The request with index `index` of the storm seeded with `seed`.
pub fn request(seed: u64, index: usize, context: &StormContext) -> StormRequest {
    let mut rng = StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let token = if rng.random_bool(0.5) { context.tokens.choose(&mut rng).cloned() } else { None };
    let mut req = match index % 12 {
        0 => malformed_json(&mut rng),
        1 => random_document(&mut rng),
        2 | 3 => mutated_document(&mut rng),
        4 => deep_nesting(&mut rng),
        5 => alias_or_fragment_bomb(&mut rng),
        6 => oversized(&mut rng, context.max_body_bytes),
        7 => bad_token(&mut rng, context),
        8 => wrong_content_type(&mut rng),
        9 => bad_variables(&mut rng),
        10 => bad_batch(&mut rng),
        _ => bad_get(&mut rng),
    };
    if req.authorization.is_none()
        && let Some(token) = token
    {
        req.authorization = Some(format!("Bearer {token}").into_bytes());
    }
    req
}

fn graphql_post(kind: &'static str, body: Vec<u8>) -> StormRequest {
    StormRequest {
        kind,
        method: reqwest::Method::POST,
        path: "/graphql".into(),
        content_type: Some("application/json".into()),
        authorization: None,
        body,
    }
}

fn json_body(query: &str, variables: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap_or_default()
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.random::<u8>()).collect()
}

fn malformed_json(rng: &mut StdRng) -> StormRequest {
    let valid = String::from_utf8(json_body(VALID_DOCUMENTS[rng.random_range(0..VALID_DOCUMENTS.len())], json!({})))
        .unwrap_or_default();
    let body: Vec<u8> = match rng.random_range(0..12) {
        0 => valid.as_bytes()[..rng.random_range(0..valid.len())].to_vec(),
        1 => {
            let len = rng.random_range(1..2_000);
            random_bytes(rng, len)
        }
        2 => br#"{"query": 5}"#.to_vec(),
        3 => br#"{"query": null, "variables": []}"#.to_vec(),
        4 => b"[]".to_vec(),
        5 => format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        6 => format!(
            "{{\"query\": \"{{ viewer {{ role }} }}\", \"variables\": {}1{}}}",
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        )
        .into_bytes(),
        7 => {
            let mut bytes = valid.into_bytes();
            let at = rng.random_range(0..bytes.len());
            bytes.insert(at, 0xFF);
            bytes
        }
        8 => br#"{"query": "{ viewer { role } }", "query": "{ services { totalCount } }"}"#.to_vec(),
        9 => b"\"just a string\"".to_vec(),
        10 => br#"{"query": "{ viewer { role } }", "operationName": 42, "extensions": "x"}"#.to_vec(),
        _ => Vec::new(),
    };
    graphql_post("malformed_json", body)
}

fn random_token(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0..=3 => (*FIELDS.choose(rng).unwrap_or(&"id")).to_owned(),
        4..=6 => (*PUNCTUATION.choose(rng).unwrap_or(&"{")).to_owned(),
        7 | 8 => (*KEYWORDS.choose(rng).unwrap_or(&"query")).to_owned(),
        _ => rng.random_range(-1_000_000i64..1_000_000).to_string(),
    }
}

fn random_document(rng: &mut StdRng) -> StormRequest {
    let len = rng.random_range(1..200);
    let document: Vec<String> = (0..len).map(|_| random_token(rng)).collect();
    graphql_post("random_document", json_body(&document.join(" "), json!({})))
}

fn mutated_document(rng: &mut StdRng) -> StormRequest {
    let mut chars: Vec<char> = VALID_DOCUMENTS[rng.random_range(0..VALID_DOCUMENTS.len())].chars().collect();
    for _ in 0..rng.random_range(1..6) {
        if chars.is_empty() {
            break;
        }
        let at = rng.random_range(0..chars.len());
        match rng.random_range(0..6) {
            0 => {
                chars.remove(at);
            }
            1 => chars
                .insert(at, *['{', '}', '(', ')', '$', '"', '\\', '@', ':', '\u{0}', 'é'].choose(rng).unwrap_or(&'{')),
            2 => {
                let end = (at + rng.random_range(1..30)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                for (i, c) in copy.into_iter().enumerate() {
                    chars.insert(end + i, c);
                }
            }
            3 => {
                let other = rng.random_range(0..chars.len());
                chars.swap(at, other);
            }
            4 => {
                let word: Vec<char> = random_token(rng).chars().collect();
                for (i, c) in word.into_iter().enumerate() {
                    chars.insert(at + i, c);
                }
            }
            _ => {
                // Swap a number for an extreme one: page sizes, ids and counts at the edges.
                let extreme = ["-1", "0", "2147483648", "99999999999999999999", "1e308", "-0.5", "null"]
                    .choose(rng)
                    .unwrap_or(&"-1");
                for (i, c) in extreme.chars().enumerate() {
                    chars.insert(at + i, c);
                }
            }
        }
    }
    let document: String = chars.into_iter().collect();
    let variables = if rng.random_bool(0.5) { json!({ "first": rng.random_range(-5i64..500) }) } else { json!({}) };
    graphql_post("mutated_document", json_body(&document, variables))
}

fn deep_nesting(rng: &mut StdRng) -> StormRequest {
    let document = match rng.random_range(0..4) {
        // Valid fields, nested past the depth limit.
        0 => {
            let depth = rng.random_range(5..60);
            let mut doc = String::from("{ patrons(first: 100) { nodes { id ");
            for _ in 0..depth {
                doc.push_str("interactions(first: 100) { nodes { patron { id ");
            }
            for _ in 0..depth {
                doc.push_str("} } } ");
            }
            doc.push_str("} } }");
            doc
        }
        // Selection sets nested until the parser gives up (a stack overflow would kill the server).
        1 => {
            let depth = rng.random_range(500..20_000);
            format!("{}{}", "{ a ".repeat(depth), "}".repeat(depth))
        }
        2 => {
            let depth = rng.random_range(500..20_000);
            format!("{{ viewer(x: {}1{}) {{ role }} }}", "[".repeat(depth), "]".repeat(depth))
        }
        _ => {
            let depth = rng.random_range(500..20_000);
            format!("{{ viewer(x: {}1{}) {{ role }} }}", "{a: ".repeat(depth), "}".repeat(depth))
        }
    };
    graphql_post("deep_nesting", json_body(&document, json!({})))
}

fn alias_or_fragment_bomb(rng: &mut StdRng) -> StormRequest {
    let document = match rng.random_range(0..5) {
        0 => {
            let count = rng.random_range(31..3_000);
            let body: String =
                (0..count).map(|i| format!("a{i}: services(first: 100) {{ nodes {{ id name }} }} ")).collect();
            format!("{{ {body} }}")
        }
        1 => {
            // Exponential expansion: each fragment spreads the next one twice.
            let levels = rng.random_range(10..40);
            let mut doc = String::from("query { ...F0 }\n");
            for level in 0..levels {
                doc.push_str(&format!(
                    "fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}\n",
                    next = level + 1
                ));
            }
            doc.push_str(&format!("fragment F{levels} on QueryRoot {{ services(first: 100) {{ totalCount }} }}\n"));
            doc
        }
        2 => "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }".to_owned(),
        3 => {
            // Many aliases on a cheap field, under the alias cap but wide.
            let count = rng.random_range(10..31);
            let body: String = (0..count)
                .map(|i| {
                    format!(
                        "p{i}: patrons(first: 100) {{ nodes {{ interactions(first: 100) {{ nodes {{ id }} }} }} }} "
                    )
                })
                .collect();
            format!("{{ {body} }}")
        }
        _ => {
            let count = rng.random_range(100..5_000);
            format!("{{ viewer {{ {} }} }}", "__typename ".repeat(count))
        }
    };
    graphql_post("alias_fragment_bomb", json_body(&document, json!({})))
}

fn oversized(rng: &mut StdRng, limit: usize) -> StormRequest {
    let limit = if limit == 0 { 2 * 1024 * 1024 } else { limit };
    let body = match rng.random_range(0..4) {
        0 => json_body(&format!("{{ viewer {{ role }} }} #{}", "x".repeat(limit + 10)), json!({})),
        1 => json_body(
            "query($s: String) { services(filter: { text: $s }) { totalCount } }",
            json!({ "s": "x".repeat(limit / 2) }),
        ),
        2 => json_body(
            "query($ids: [ID!]!) { viewer { role } }",
            json!({ "ids": (0..rng.random_range(10_000..200_000)).collect::<Vec<u32>>() }),
        ),
        _ => json_body(
            "mutation($input: RecordInteractionsInput!) { recordInteractions(input: $input) { created } }",
            json!({ "input": { "interactions": (0..rng.random_range(1_001..3_000)).map(|i| json!({
                "serviceId": format!("bogus-{i}"), "kind": "VISIT", "channel": "WEB", "patronType": "PUBLIC"
            })).collect::<Vec<_>>() } }),
        ),
    };
    graphql_post("oversized", body)
}

fn forge(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::default(), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap_or_default()
}

fn bad_token(rng: &mut StdRng, context: &StormContext) -> StormRequest {
    let now = chrono::Utc::now().timestamp();
    let admin = json!({
        "sub": "storm", "role": "ADMIN", "iss": "rapport", "aud": "rapport-api",
        "exp": now + 600, "nbf": now - 5, "iat": now - 5, "jti": "storm",
    });
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header: Vec<u8> = match rng.random_range(0..12) {
        0 => {
            let len = rng.random_range(1..300);
            random_bytes(rng, len).into_iter().filter(|b| *b != b'\n' && *b != b'\r').collect()
        }
        1 => format!("Bearer {}.{}.", encode(&json!({"alg": "none", "typ": "JWT"})), encode(&admin)).into_bytes(),
        2 => format!("Bearer {}", forge(&admin, "not-the-server-secret-but-long-enough-to-sign")).into_bytes(),
        3 => {
            let mut claims = admin.clone();
            claims["exp"] = json!(now - 3_600);
            format!(
                "Bearer {}",
                forge(&claims, context.jwt_secret.as_deref().unwrap_or("unknown-secret-0123456789abcdef"))
            )
            .into_bytes()
        }
        4 => {
            let mut claims = admin.clone();
            claims["aud"] = json!("someone-else");
            claims["role"] = json!("GOD");
            format!(
                "Bearer {}",
                forge(&claims, context.jwt_secret.as_deref().unwrap_or("unknown-secret-0123456789abcdef"))
            )
            .into_bytes()
        }
        5 => format!("Bearer {}", "A".repeat(rng.random_range(1_000..7_000))).into_bytes(),
        6 => b"Basic YWRtaW46YWRtaW4=".to_vec(),
        7 => b"Bearer".to_vec(),
        8 => format!(
            "Bearer {}.{}.{}",
            encode(&json!({"alg": "HS256", "kid": "../../etc/passwd"})),
            encode(&admin),
            "sig"
        )
        .into_bytes(),
        9 => format!("Bearer {}.{}.x", encode(&json!({"alg": "RS256"})), URL_SAFE_NO_PAD.encode(random_bytes(rng, 64)))
            .into_bytes(),
        10 => {
            // A valid token with its payload swapped for an admin one.
            let token = context.tokens.choose(rng).cloned().unwrap_or_default();
            let parts: Vec<&str> = token.split('.').collect();
            match parts.as_slice() {
                [h, _, s] => format!("Bearer {h}.{}.{s}", encode(&admin)).into_bytes(),
                _ => b"Bearer a.b.c".to_vec(),
            }
        }
        _ => "Bearer \u{00e9}\u{00e8}".as_bytes().to_vec(),
    };
    let mut req = graphql_post(
        "bad_token",
        json_body("{ viewer { authenticated role } patrons(first: 1) { totalCount } }", json!({})),
    );
    req.authorization = Some(header);
    req
}

fn wrong_content_type(rng: &mut StdRng) -> StormRequest {
    let body = json_body("{ viewer { role } }", json!({}));
    let mut req = graphql_post("wrong_content_type", body);
    req.content_type = match rng.random_range(0..9) {
        0 => Some("text/plain".into()),
        1 => Some("application/xml".into()),
        2 => Some("multipart/form-data; boundary=xyz".into()),
        3 => None,
        4 => Some("application/json; charset=latin1".into()),
        5 => Some("application/x-www-form-urlencoded".into()),
        6 => Some("\u{0}garbage/\u{7f}".into()),
        7 => Some("application/graphql".into()),
        _ => Some("image/png".into()),
    };
    if rng.random_bool(0.2) {
        req.method = [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH]
            .choose(rng)
            .cloned()
            .unwrap_or(reqwest::Method::PUT);
    }
    req
}

fn bad_variables(rng: &mut StdRng) -> StormRequest {
    let (query, variables) = match rng.random_range(0..8) {
        0 => ("query($first: Int) { services(first: $first) { totalCount } }", json!({ "first": "ten" })),
        1 => ("query($first: Int) { patrons(first: $first) { totalCount } }", json!({ "first": 1e300 })),
        2 => (
            "query($after: String) { patrons(first: 5, after: $after) { totalCount } }",
            json!({ "after": "!!not-a-cursor" }),
        ),
        3 => {
            ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": URL_SAFE_NO_PAD.encode(random_bytes(rng, 20)) }))
        }
        4 => (
            "query($f: ID!, $from: Date!, $to: Date!) { fundingReport(funderId: $f, from: $from, to: $to, granularity: DAY) { k } }",
            json!({ "f": "x", "from": "2024-13-45", "to": "0000-00-00" }),
        ),
        5 => ("query($first: Int) { interactions(first: $first, last: 5) { totalCount } }", json!({ "first": -1 })),
        6 => ("query { services { totalCount } }", json!("not an object")),
        _ => (
            "mutation($input: RecordInteractionInput!) { recordInteraction(input: $input) { id } }",
            json!({ "input": { "serviceId": "\u{0}", "kind": "NOPE", "channel": 5, "rating": 99, "occurredAt": "yesterday" } }),
        ),
    };
    graphql_post("bad_variables", json_body(query, variables))
}

fn bad_batch(rng: &mut StdRng) -> StormRequest {
    let size = *[0usize, 1, 11, 50, 500].choose(rng).unwrap_or(&11);
    let item = |i: usize| {
        json!({ "query": format!(
            "{{ a{i}: patrons(first: 100) {{ nodes {{ interactions(first: 100) {{ nodes {{ patron {{ interactions(first: 100) {{ totalCount }} }} }} }} }} }} }}"
        ) })
    };
    let batch: Vec<Value> = (0..size).map(item).collect();
    graphql_post("bad_batch", serde_json::to_vec(&batch).unwrap_or_default())
}

fn bad_get(rng: &mut StdRng) -> StormRequest {
    let garbage = URL_SAFE_NO_PAD.encode(random_bytes(rng, 40));
    let path = match rng.random_range(0..6) {
        0 => format!("/graphql?query={garbage}"),
        1 => "/graphql?query=mutation%20%7B%20logout%20%7D".to_owned(),
        2 => format!("/graphql?query=%7Bviewer%7Brole%7D%7D&variables={garbage}"),
        3 => format!(
            "/graphql?extensions=%7B%22persistedQuery%22%3A%7B%22sha256Hash%22%3A%22{garbage}%22%2C%22version%22%3A1%7D%7D"
        ),
        4 => format!("/graphql?query={}", "%7B".repeat(3_000)),
        _ => format!("/{garbage}"),
    };
    StormRequest {
        kind: "bad_get",
        method: reqwest::Method::GET,
        path,
        content_type: None,
        authorization: None,
        body: Vec::new(),
    }
}

fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    if bytes.len() > max { format!("{text}… ({} bytes)", bytes.len()) } else { text }
}

enum Outcome {
    Response { status: u16, code: String, internal: bool, body: Vec<u8>, elapsed: Duration },
    Transport(String),
}

async fn send(http: &reqwest::Client, base: &str, req: &StormRequest, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut builder = http.request(req.method.clone(), format!("{base}{}", req.path)).timeout(timeout);
    if let Some(ct) = &req.content_type {
        match reqwest::header::HeaderValue::from_bytes(ct.as_bytes()) {
            Ok(value) => builder = builder.header(reqwest::header::CONTENT_TYPE, value),
            Err(_) => builder = builder.header(reqwest::header::CONTENT_TYPE, "application/octet-stream"),
        }
    }
    if let Some(auth) = &req.authorization
        && let Ok(value) = reqwest::header::HeaderValue::from_bytes(auth)
    {
        builder = builder.header(reqwest::header::AUTHORIZATION, value);
    }
    if !req.body.is_empty() {
        builder = builder.body(req.body.clone());
    }
    match builder.send().await {
        Err(err) => Outcome::Transport(err.to_string()),
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Err(err) => Outcome::Transport(format!("status {status}, body: {err}")),
                Ok(body) => {
                    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let codes: Vec<String> = parsed_codes(&parsed);
                    let code = codes.first().cloned().unwrap_or_else(|| "-".to_owned());
                    let internal = codes.iter().any(|c| c == "INTERNAL");
                    Outcome::Response { status, code, internal, body: body.to_vec(), elapsed: started.elapsed() }
                }
            }
        }
    }
}

fn parsed_codes(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut collect = |v: &Value| {
        for e in v["errors"].as_array().into_iter().flatten() {
            if let Some(code) = e["extensions"]["code"].as_str() {
                out.push(code.to_owned());
            }
        }
    };
    match body {
        Value::Array(items) => items.iter().for_each(&mut collect),
        other => collect(other),
    }
    out
}

/// Send `requests` storm requests to the server at `base` (e.g. `http://127.0.0.1:8080`),
/// `concurrency` at a time; a request with no answer after `timeout` counts as a transport error.
pub async fn run(
    base: &str,
    context: &StormContext,
    seed: u64,
    requests: usize,
    concurrency: usize,
    timeout: Duration,
) -> StormReport {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap_or_default();
    let context = Arc::new(context.clone());
    let started = Instant::now();
    let mut report = StormReport { requests, seed, ..StormReport::default() };
    let mut examples: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut results = stream::iter(0..requests)
        .map(|index| {
            let http = http.clone();
            let context = context.clone();
            async move {
                let req = request(seed, index, &context);
                let outcome = send(&http, base, &req, timeout).await;
                (index, req, outcome)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((index, req, outcome)) = results.next().await {
        *report.kinds.entry(req.kind).or_default() += 1;
        let problem = match outcome {
            Outcome::Transport(err) => {
                report.transport_errors += 1;
                Some(("transport", 0, err.into_bytes()))
            }
            Outcome::Response { status, code, internal, body, elapsed } => {
                *report.statuses.entry(status).or_default() += 1;
                *report.codes.entry(code).or_default() += 1;
                report.largest_response_bytes = report.largest_response_bytes.max(body.len());
                report.slowest_ms = report.slowest_ms.max(elapsed.as_millis() as u64);
                if status >= 500 {
                    report.server_errors += 1;
                    Some(("5xx", status, body))
                } else if internal {
                    report.internal_codes += 1;
                    Some(("internal", status, body))
                } else if body.len() > LARGE_RESPONSE {
                    Some(("large", status, body))
                } else {
                    None
                }
            }
        };
        if let Some((problem, status, body)) = problem {
            let seen = examples.entry(problem).or_default();
            if *seen < EXAMPLES_PER_PROBLEM {
                *seen += 1;
                report.examples.push(StormExample {
                    index,
                    kind: req.kind,
                    status,
                    request: format!(
                        "{} {} {}",
                        req.method,
                        excerpt(req.path.as_bytes(), 200),
                        excerpt(&req.body, 300)
                    ),
                    response: excerpt(&body, 400),
                });
            }
        }
    }
    report.elapsed_secs = started.elapsed().as_secs_f64();
    report
}
