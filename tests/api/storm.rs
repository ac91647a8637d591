//! A bad-input storm: ten thousand malformed, mutated, oversized and forged requests from a
//! seeded generator, sent concurrently. Every answer must be below 500, every JSON error must
//! carry a known `extensions.code` and no SQL, the server must keep serving afterwards, and the
//! memory it used must come back near its baseline.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures_util::{StreamExt, stream};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use rapport::auth::Scope;
use rapport_tests::{TestApp, TestOptions, server::TEST_JWT_SECRET, spawn_app_with};
use reqwest::{Method, header::HeaderValue};
use serde_json::{Value, json};

const SEED: u64 = 0x5EED_0006;
const REQUESTS: usize = 10_000;
const CONCURRENCY: usize = 16;
/// The storm must be over well within this; a hang fails the test instead of stalling CI.
const STORM_DEADLINE: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RSS_GROWTH_KIB: u64 = 100 * 1024;

const CODES: [&str; 9] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
    "INTERNAL",
    "PERSISTED_QUERY_NOT_FOUND",
];

const CATALOGUE: &str = "{ services(first: 5) { totalCount edges { cursor node { id code name category channels audience active } } pageInfo { hasNextPage endCursor } } }";
const WHO: &str = "{ viewer { authenticated role subject scopes } }";

/// Real operations of the schema, the seeds of the mutated documents. `$id` is a real global id.
const DOCS: &[&str] = &[
    CATALOGUE,
    WHO,
    "query S($id: ID) { service(id: $id) { id code name description interactions(first: 3) { totalCount edges { node { id kind channel } } } fundings { id amount { amount currency } } } }",
    "{ services(first: 3, filter: {categories: [LOANS, EVENTS], active: true, text: \"lo\"}, orderBy: {field: CODE, direction: DESC}) { edges { node { code } } } }",
    "{ patrons(first: 10, filter: {text: \"a\", patronTypes: [PUBLIC]}) { totalCount edges { cursor node { id cardNumber name email tags consents { purpose granted } } } pageInfo { endCursor } } }",
    "query P($id: ID!) { patron(id: $id) { id name email status patronType consentHistory(first: 2) { totalCount } } }",
    "{ me { id name consents { purpose granted recordedAt } } }",
    "{ interactions(first: 20, orderBy: {field: OCCURRED_AT, direction: DESC}, filter: {kinds: [VISIT], channels: [IN_PERSON]}) { totalCount edges { node { id kind channel occurredAt rating staffNotes patron { id name } service { code } } } } }",
    "query I($id: ID!) { interaction(id: $id) { id kind patron { id } service { name } } }",
    "{ funders(first: 5) { totalCount edges { node { id name kind notes fundings { id startsOn endsOn amount { amount currency minorUnits } } totalFunding { amount currency } } } } }",
    "query F($id: ID!) { funder(id: $id) { id name website fundings { service { code } } } }",
    "query N($id: ID!) { node(id: $id) { id __typename ... on Patron { name } ... on Service { code } ... on Funder { name } ... on Interaction { kind } } }",
    "mutation { createService(input: {code: \"STORM-X\", name: \"Storm\", category: OTHER, channels: [WEB]}) { id code } }",
    "mutation { createPatron(input: {cardNumber: \"STORM-0001\", name: \"Storm Patron\", patronType: PUBLIC, tags: [\"a\"]}) { id } }",
    "mutation R($id: ID!) { recordInteraction(input: {serviceId: $id, patronType: PUBLIC, kind: VISIT, channel: WEB, rating: 4}) { id } }",
    "mutation { createFunder(input: {name: \"Storm Fund\", kind: FOUNDATION, website: \"https://example.org\"}) { id } }",
    "mutation U($id: ID!) { updatePatron(input: {id: $id, name: \"Renamed\", tags: [\"x\", \"y\"]}) { id name tags } }",
];

/// What the storm needs from the seeded server.
struct Fixtures {
    base: String,
    max_body: usize,
    max_batch: usize,
    valid_tokens: Vec<String>,
    staff: String,
    forged: Vec<String>,
    ids: Vec<String>,
    service_id: String,
    patron_id: String,
}

/// One request to send.
struct Case {
    family: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Case {
    fn new(family: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self { family, method, path: path.into(), headers: Vec::new(), body: None }
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn bearer(self, token: Option<&str>) -> Self {
        match token {
            Some(token) => self.header("authorization", format!("Bearer {token}")),
            None => self,
        }
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("a non-empty choice")
}

fn accept(rng: &mut StdRng) -> &'static str {
    *pick(rng, &["application/graphql-response+json", "application/json", "*/*", "application/json, */*;q=0.5"])
}

/// A JSON POST to `/graphql` with a well-formed envelope.
fn post(family: &'static str, rng: &mut StdRng, body: impl Into<Vec<u8>>, token: Option<&str>) -> Case {
    Case::new(family, Method::POST, "/graphql")
        .header("content-type", "application/json")
        .header("accept", accept(rng))
        .bearer(token)
        .body(body)
}

fn gql(query: &str, variables: Value) -> Vec<u8> {
    json!({ "query": query, "variables": variables }).to_string().into_bytes()
}

/// No token, or one the server accepts, so the request reaches the executor.
fn maybe_token<'a>(rng: &mut StdRng, fx: &'a Fixtures) -> Option<&'a str> {
    if rng.random_bool(0.4) { None } else { Some(pick(rng, &fx.valid_tokens).as_str()) }
}

fn vars_for(doc: &str, rng: &mut StdRng, fx: &Fixtures) -> Value {
    if doc.contains("$id") { json!({ "id": pick(rng, &fx.ids) }) } else { json!({}) }
}

fn random_ascii(rng: &mut StdRng, len: usize) -> String {
    (0..len).map(|_| char::from(rng.random_range(0x20u8..0x7f))).collect()
}

fn random_ident(rng: &mut StdRng) -> String {
    let len = rng.random_range(1..12);
    let mut name = String::from("z");
    for _ in 0..len {
        name.push(*pick(rng, &['a', 'q', 'x', 'k', '_', '0', '7', 'W', 'Z']));
    }
    name
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Percent-encode everything but the unreserved characters.
fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

const ODD_CHARS: &[char] = &[
    '{', '}', '(', ')', '[', ']', ':', '$', '@', '!', '.', ',', '"', '\\', '#', '=', '|', '&', '\n', ' ', 'a', 'Z',
    '_', '0', '9', '-', 'é', '😀', '\u{0}', '\u{202e}', '\u{feff}', '\u{fffd}', '\u{7f}',
];

/// Delete, duplicate, swap, insert and truncate characters of a document.
fn mutate(doc: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = doc.chars().collect();
    for _ in 0..rng.random_range(1..=6) {
        if chars.is_empty() {
            chars.push('{');
        }
        let at = rng.random_range(0..chars.len());
        match rng.random_range(0..7) {
            0 => {
                chars.remove(at);
            }
            1 => {
                let end = (at + rng.random_range(1..20)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                let times = if rng.random_bool(0.1) { rng.random_range(10..200) } else { 1 };
                for _ in 0..times {
                    chars.splice(at..at, copy.iter().copied());
                }
            }
            2 => {
                let other = rng.random_range(0..chars.len());
                chars.swap(at, other);
            }
            3 => chars.insert(at, *pick(rng, ODD_CHARS)),
            4 => chars[at] = *pick(rng, ODD_CHARS),
            5 => chars.truncate(at),
            _ => {
                let end = (at + rng.random_range(1..10)).min(chars.len());
                let ident: Vec<char> = random_ident(rng).chars().collect();
                chars.splice(at..end, ident);
            }
        }
    }
    chars.into_iter().collect()
}

fn malformed_json(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let valid = json!({ "query": CATALOGUE, "variables": { "a": [1, 2, { "b": "c" }] } }).to_string();
    let body: Vec<u8> = match rng.random_range(0..9) {
        0 => (0..rng.random_range(0..512)).map(|_| rng.random::<u8>()).collect(),
        1 => valid.as_bytes()[..rng.random_range(0..valid.len())].to_vec(),
        2 => format!("{valid}{}", random_ascii(rng, 5)).into_bytes(),
        3 => "{".repeat(rng.random_range(1..20_000)).into_bytes(),
        4 => "[".repeat(rng.random_range(100..50_000)).into_bytes(),
        5 => {
            let mut bytes = valid.clone().into_bytes();
            let at = rng.random_range(0..bytes.len());
            bytes.insert(at, *pick(rng, &[0u8, 0xff, 0xc0, 0xed, 0x80, b'\\', b'"']));
            bytes
        }
        6 => br#"{"query": "{ services { totalCount } }", "variables": {"a": "\ud800"}}"#.to_vec(),
        7 => pick(
            rng,
            &["", " ", "null,", "{'query': '{ viewer { role } }'}", "{\"query\": \"x\",}", "NaN", "\u{feff}{}"],
        )
        .as_bytes()
        .to_vec(),
        _ => {
            let mut bytes = valid.into_bytes();
            bytes.retain(|b| *b != b'"' || rng.random_bool(0.8));
            bytes
        }
    };
    let token = maybe_token(rng, fx);
    post("malformed_json", rng, body, token)
}

fn json_not_graphql(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let depth = rng.random_range(50..3_000);
    let deep = format!(
        "{{\"query\": \"{{ viewer {{ role }} }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let body = match rng.random_range(0..15) {
        0 => json!(rng.random::<i64>()).to_string(),
        1 => json!([1, 2, 3]).to_string(),
        2 => json!({ "query": 42 }).to_string(),
        3 => json!({ "query": null }).to_string(),
        4 => json!({}).to_string(),
        5 => json!({ "variables": "x" }).to_string(),
        6 => json!({ "query": WHO, "variables": [1, 2] }).to_string(),
        7 => json!({ "query": WHO, "operationName": 5 }).to_string(),
        8 => json!({ "query": WHO, "extensions": "x" }).to_string(),
        9 => json!({ "query": [WHO] }).to_string(),
        10 => json!({ "query": WHO, "variables": { "x": 1e300, "y": -0.0, "z": u64::MAX } }).to_string(),
        11 => json!({ "query": WHO, "query ": 1, "": null }).to_string(),
        12 => deep,
        13 => r#"{"query": "{ viewer { role } }", "query": "{ services { totalCount } }"}"#.to_owned(),
        _ => json!("just a string").to_string(),
    };
    let token = maybe_token(rng, fx);
    post("json_not_graphql", rng, body, token)
}

fn mutated_doc(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let doc = *pick(rng, DOCS);
    let mutated = mutate(doc, rng);
    let variables = vars_for(doc, rng, fx);
    let token = maybe_token(rng, fx);
    post("mutated_doc", rng, gql(&mutated, variables), token)
}

fn wrong_args(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let ints = [
        "99999999999999999999999",
        "-1",
        "0",
        "2147483648",
        "-2147483649",
        "1e309",
        "1.5",
        "\"ten\"",
        "null",
        "[1]",
        "{a: 1}",
        "true",
        "ACTIVE",
        "$undefined",
    ];
    let random_id = b64(format!("Patron:{}", random_ascii(rng, 20)).as_bytes());
    let wrong_kind = b64(format!("Service:{}", uuid::Uuid::now_v7()).as_bytes());
    let ids = ["123", "\"\"", "\"UGF0cm9uOng\"", "null", "\"!!!\"", "[\"a\"]"];
    let id = match rng.random_range(0..3) {
        0 => format!("\"{random_id}\""),
        1 => format!("\"{wrong_kind}\""),
        _ => (*pick(rng, &ids)).to_owned(),
    };
    let int = *pick(rng, &ints);
    let cursor = format!("\"{}\"", b64(random_ascii(rng, 30).as_bytes()));
    let date = *pick(
        rng,
        &["\"not a date\"", "\"9999-99-99T99:99:99Z\"", "\"+275760-09-13T00:00:00Z\"", "1", "\"2025-02-30\"", "\"\""],
    );
    let amount =
        *pick(rng, &["\"1e999\"", "\"NaN\"", "\"-0\"", "\"99999999999999999999999.99\"", "\"1.234\"", "12", "\"\""]);
    let currency = *pick(rng, &["\"XXX\"", "\"€€€\"", "\"\"", "\"eur\"", "\"EURO\""]);
    let (doc, variables) = match rng.random_range(0..16) {
        0 => (format!("{{ services(first: {int}) {{ totalCount }} }}"), json!({})),
        1 => (format!("{{ patrons(last: {int}) {{ totalCount }} }}"), json!({})),
        2 => (format!("{{ interactions(first: 5, after: {cursor}) {{ totalCount }} }}"), json!({})),
        3 => (format!("{{ services(before: {cursor}, last: 2) {{ totalCount }} }}"), json!({})),
        4 => (format!("{{ patron(id: {id}) {{ id }} }}"), json!({})),
        5 => (format!("{{ node(id: {id}) {{ id }} }}"), json!({})),
        6 => (format!("{{ interactions(filter: {{occurredFrom: {date}}}) {{ totalCount }} }}"), json!({})),
        7 => ("{ services(filter: {categories: [NOPE]}) { totalCount } }".to_owned(), json!({})),
        8 => (format!("{{ service(code: {int}) {{ id }} }}"), json!({})),
        9 => {
            let value = pick(
                rng,
                &[
                    json!(1e300),
                    json!(-1),
                    json!("x"),
                    json!([1]),
                    json!({ "a": 1 }),
                    json!(9_007_199_254_740_993_u64),
                    json!(i64::MIN),
                    json!("9".repeat(500)),
                ],
            )
            .clone();
            ("query Q($n: Int) { services(first: $n) { totalCount } }".to_owned(), json!({ "n": value }))
        }
        10 => (
            format!(
                "mutation {{ createFunding(input: {{funderId: {id}, serviceId: \"{}\", amount: {amount}, currency: {currency}, startsOn: {date}, endsOn: \"2030-01-01\"}}) {{ id }} }}",
                fx.service_id
            ),
            json!({}),
        ),
        11 => (
            format!(
                "mutation {{ recordInteraction(input: {{serviceId: \"{}\", patronType: PUBLIC, kind: VISIT, channel: WEB, rating: {int}, occurredAt: {date}}}) {{ id }} }}",
                fx.service_id
            ),
            json!({}),
        ),
        12 => (
            "mutation Q($i: CreatePatronInput!) { createPatron(input: $i) { id } }".to_owned(),
            json!({ "i": { "cardNumber": pick(rng, &[json!(12), json!(""), json!("x"), json!("A".repeat(100)), json!(null)]), "name": 5, "patronType": "NOPE" } }),
        ),
        13 => (
            format!(
                "mutation {{ updatePatron(input: {{id: {id}, tags: [{}]}}) {{ id }} }}",
                vec!["\"t\""; rng.random_range(1..200)].join(",")
            ),
            json!({}),
        ),
        14 => (format!("{{ funders(first: {int}, filter: {{}}) {{ totalCount }} }}"), json!({})),
        _ => (
            "query Q($id: ID!) { patron(id: $id) { id } }".to_owned(),
            json!({ "id": pick(rng, &[json!(1), json!(null), json!([]), json!({})]) }),
        ),
    };
    let token = maybe_token(rng, fx);
    post("wrong_args", rng, gql(&doc, variables), token)
}

fn unknown_fields(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let ident = random_ident(rng);
    let doc = match rng.random_range(0..9) {
        0 => format!("{{ services {{ {ident} }} }}"),
        1 => format!("{{ {ident} }}"),
        2 => "{ __schema { types { name fields { name args { name } } } } }".to_owned(),
        3 => "{ __type(name: \"Patron\") { name fields { name type { name } } } }".to_owned(),
        4 => format!("{{ services({ident}: 1) {{ totalCount }} }}"),
        5 => format!("{{ services {{ ... on {ident} {{ id }} }} }}"),
        6 => format!("query($x: {ident}) {{ viewer {{ role }} }}"),
        7 => format!("subscription {{ {ident} }}"),
        _ => format!("{{ viewer {{ role @{ident} }} }}"),
    };
    let token = maybe_token(rng, fx);
    post("unknown_fields", rng, gql(&doc, json!({})), token)
}

fn deep_nesting(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let depth = if rng.random_bool(0.7) { rng.random_range(50..200) } else { rng.random_range(200..5_000) };
    let doc = match rng.random_range(0..7) {
        0 => format!("{}{}", "{ a ".repeat(depth), "}".repeat(depth)),
        1 => {
            let mut doc = String::from("{ services(first: 1) { edges { node { ");
            for _ in 0..depth / 4 {
                doc.push_str("interactions(first: 1) { edges { node { service { ");
            }
            doc.push_str("code ");
            for _ in 0..depth / 4 {
                doc.push_str("} } } } ");
            }
            doc.push_str("} } } }");
            doc
        }
        2 => format!(
            "{{ services(filter: {{categories: {}LOANS{}}}) {{ totalCount }} }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        3 => format!("{{ services(filter: {}{}) {{ totalCount }} }}", "{a: ".repeat(depth), "}".repeat(depth)),
        4 => format!("{{ {}__typename{} }}", "... on QueryRoot { ".repeat(depth), " }".repeat(depth)),
        5 => "{".repeat(depth * 4),
        _ => format!("query Q($v: [[Int]]) {{ viewer {{ role }} }} # {}", "(".repeat(depth)),
    };
    let token = maybe_token(rng, fx);
    post("deep_nesting", rng, gql(&doc, json!({})), token)
}

fn alias_bomb(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let count = rng.random_range(100..2_000);
    let field = *pick(
        rng,
        &[
            "__typename",
            "services { totalCount }",
            "viewer { role }",
            "patrons(first: 100) { edges { node { id tags } } }",
        ],
    );
    let mut doc = String::from("{ ");
    for n in 0..count {
        let _ = write!(doc, "a{n}: {field} ");
    }
    doc.push('}');
    let token = maybe_token(rng, fx);
    post("alias_bomb", rng, gql(&doc, json!({})), token)
}

fn fragment_bomb(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let levels = rng.random_range(10..40);
    let doc = match rng.random_range(0..5) {
        0 => {
            let mut doc = String::from("query { ...F0 }\n");
            for i in 0..levels {
                let _ = writeln!(doc, "fragment F{i} on QueryRoot {{ viewer {{ role }} ...F{} ...F{} }}", i + 1, i + 1);
            }
            let _ = writeln!(doc, "fragment F{levels} on QueryRoot {{ services {{ totalCount }} }}");
            doc
        }
        1 => "query { ...A } fragment A on QueryRoot { viewer { role } ...B } fragment B on QueryRoot { ...A }"
            .to_owned(),
        2 => "query { ...A } fragment A on QueryRoot { ...A }".to_owned(),
        3 => {
            let mut doc = String::from("query { viewer { role } }\n");
            for i in 0..levels * 50 {
                let _ = writeln!(doc, "fragment U{i} on QueryRoot {{ viewer {{ role }} }}");
            }
            doc
        }
        _ => format!(
            "query {{ {} }} fragment F on QueryRoot {{ services {{ totalCount }} }}",
            "...F ".repeat(levels * 50)
        ),
    };
    let token = maybe_token(rng, fx);
    post("fragment_bomb", rng, gql(&doc, json!({})), token)
}

fn directive_spam(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let count = rng.random_range(10..2_000);
    let (doc, variables) = match rng.random_range(0..6) {
        0 => (format!("{{ viewer {{ role {} }} }}", "@include(if: true) ".repeat(count)), json!({})),
        1 => (format!("{{ services {} {{ totalCount }} }}", "@skip(if: false) ".repeat(count)), json!({})),
        2 => (format!("{{ viewer {{ role {} }} }}", "@nope(x: 1) ".repeat(count)), json!({})),
        3 => (format!("query Q {} {{ viewer {{ role }} }}", "@deprecated ".repeat(count)), json!({})),
        4 => ("query Q($v: Boolean!) { viewer { role @include(if: $v) } }".to_owned(), json!({ "v": "yes" })),
        _ => ("{ viewer { role @include @skip(if: 1) } }".to_owned(), json!({})),
    };
    let token = maybe_token(rng, fx);
    post("directive_spam", rng, gql(&doc, variables), token)
}

fn long_strings(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let len = rng.random_range(1_000..400_000);
    let long = "x".repeat(len);
    let (doc, variables, token) = match rng.random_range(0..7) {
        0 => (format!("{{ service(code: \"{long}\") {{ id }} }}"), json!({}), None),
        1 => (
            "query Q($t: String) { patrons(filter: {text: $t}) { totalCount } }".to_owned(),
            json!({ "t": long }),
            Some(fx.staff.as_str()),
        ),
        2 => (format!("query {long} {{ viewer {{ role }} }}"), json!({}), None),
        3 => (format!("{{ {long}: viewer {{ role }} }}"), json!({}), None),
        4 => (format!("{{ viewer {{ role }} }} #{long}"), json!({}), None),
        5 => (format!("{{ service(code: \"{}\") {{ id }} }}", "\\u0041".repeat(len / 6)), json!({}), None),
        _ => (
            "mutation Q($n: String) { createFunder(input: {name: $n, kind: OTHER, notes: $n}) { id } }".to_owned(),
            json!({ "n": long }),
            Some(fx.staff.as_str()),
        ),
    };
    post("long_strings", rng, gql(&doc, variables), token)
}

fn unicode_nul(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let text = (*pick(
        rng,
        &[
            "a\u{0}b",
            "\u{0}",
            "\u{202e}evil",
            "😀😀",
            "\u{feff}",
            "ﬀ",
            "İstanbul",
            "\u{10ffff}",
            "%_\\",
            "'; --",
            "\u{0}%",
        ],
    ))
    .to_owned();
    let staff = Some(fx.staff.as_str());
    let (doc, variables, token) = match rng.random_range(0..10) {
        0 => ("query Q($t: String) { patrons(filter: {text: $t}) { totalCount } }".to_owned(), json!({ "t": text }), staff),
        1 => ("query Q($t: String) { services(filter: {text: $t}) { totalCount } }".to_owned(), json!({ "t": text }), None),
        2 => ("query Q($t: String) { service(code: $t) { id } }".to_owned(), json!({ "t": text }), None),
        3 => (
            "mutation Q($t: String!) { createPatron(input: {cardNumber: $t, name: $t, patronType: PUBLIC, tags: [$t], homeBranch: $t, email: $t}) { id } }"
                .to_owned(),
            json!({ "t": text }),
            staff,
        ),
        4 => (
            "mutation Q($t: String!) { createService(input: {code: $t, name: $t, description: $t, category: OTHER}) { id } }"
                .to_owned(),
            json!({ "t": text }),
            staff,
        ),
        5 => (
            "mutation Q($t: String, $s: ID!) { recordInteraction(input: {serviceId: $s, patronType: PUBLIC, kind: VISIT, channel: WEB, comment: $t, branch: $t, staffNotes: $t, source: $t, externalId: $t}) { id } }"
                .to_owned(),
            json!({ "t": text, "s": fx.service_id }),
            staff,
        ),
        6 => (
            "mutation Q($t: String!) { createFunder(input: {name: $t, kind: OTHER, website: $t, contactEmail: $t}) { id } }".to_owned(),
            json!({ "t": text }),
            staff,
        ),
        7 => ("query Q($t: ID!) { node(id: $t) { id } }".to_owned(), json!({ "t": text }), staff),
        8 => ("{ sérvices { totalCount } }".to_owned(), json!({}), None),
        _ => (
            "mutation Q($id: ID!, $t: String) { updatePatron(input: {id: $id, name: $t, homeBranch: $t, tags: [$t]}) { id } }".to_owned(),
            json!({ "id": fx.patron_id, "t": text }),
            staff,
        ),
    };
    let body = if rng.random_bool(0.2) {
        // A raw NUL and other control characters inside the document itself.
        gql(&format!("{doc}\u{0}\u{1}"), variables)
    } else {
        gql(&doc, variables)
    };
    post("unicode_nul", rng, body, token)
}

fn oversized(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let over = fx.max_body + rng.random_range(1..64 * 1024);
    let body = match rng.random_range(0..4) {
        0 => gql(WHO, json!({ "pad": "x".repeat(over) })),
        1 => gql(&format!("{{ viewer {{ role }} }} #{}", "y".repeat(over)), json!({})),
        2 => {
            let item = json!({ "query": CATALOGUE }).to_string();
            format!("[{}]", vec![item.as_str(); over / item.len() + 1].join(",")).into_bytes()
        }
        _ => vec![b'{'; over],
    };
    let token = maybe_token(rng, fx);
    post("oversized", rng, body, token)
}

fn bad_tokens(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let valid = pick(rng, &fx.valid_tokens).clone();
    let claims =
        json!({ "sub": "x", "role": "ADMIN", "iss": "rapport", "aud": "rapport-api", "exp": 4_102_444_800_i64 });
    let payload = b64(claims.to_string().as_bytes());
    let header: Vec<u8> = match rng.random_range(0..14) {
        0 => format!("Bearer {}", {
            let len = rng.random_range(1..200);
            random_ascii(rng, len)
        })
        .into_bytes(),
        1 => format!("Bearer {}.{}.{}", b64(b"x"), b64(b"y"), b64(b"z")).into_bytes(),
        2 => format!("Bearer {}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#)).into_bytes(),
        3 => format!("Bearer {}.{payload}.c2ln", b64(br#"{"alg":"NonE"}"#)).into_bytes(),
        4 => format!("Bearer {}", pick(rng, &fx.forged)).into_bytes(),
        5 => {
            let mut parts: Vec<&str> = valid.split('.').collect();
            if parts.len() == 3 {
                parts[1] = &payload;
            }
            format!("Bearer {}", parts.join(".")).into_bytes()
        }
        6 => format!("Bearer {}", &valid[..rng.random_range(0..valid.len())]).into_bytes(),
        7 => format!("Bearer {valid}{}", random_ascii(rng, 1)).into_bytes(),
        8 => format!("Bearer {}.{payload}.c2ln", b64(br#"{"alg":"RS256","kid":"../../etc/passwd"}"#)).into_bytes(),
        9 => format!("Bearer {}", "A".repeat(rng.random_range(4_000..16_000))).into_bytes(),
        10 => {
            let mut bytes = b"Bearer ".to_vec();
            bytes.extend((0..40).map(|_| rng.random_range(0x80u8..=0xff)));
            bytes
        }
        11 => (*pick(
            rng,
            &["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer", "Token abc", "Bearer  a  b", "Bearer \t"],
        ))
        .as_bytes()
        .to_vec(),
        12 => format!("bEaReR {valid}").into_bytes(),
        _ => format!("Bearer {}", b64(&(0..rng.random_range(10..300)).map(|_| rng.random::<u8>()).collect::<Vec<_>>()))
            .into_bytes(),
    };
    let doc = *pick(rng, &[WHO, CATALOGUE]);
    Case::new("bad_tokens", Method::POST, "/graphql")
        .header("content-type", "application/json")
        .header("accept", accept(rng))
        .header("authorization", header)
        .body(gql(doc, json!({})))
}

fn content_type_method(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let body = gql(WHO, json!({}));
    match rng.random_range(0..5) {
        0 => {
            let ct = *pick(
                rng,
                &[
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/graphql",
                    "application/json; charset=utf-16",
                    "application/jsonx",
                    "",
                    "application/json, text/plain",
                    "\u{7f}garbage",
                    "application/graphql-response+json",
                    "application/json;;;",
                ],
            );
            Case::new("content_type", Method::POST, "/graphql")
                .header("content-type", ct)
                .header("accept", accept(rng))
                .body(body)
        }
        1 => {
            let acc = *pick(
                rng,
                &["text/html", "image/png", "application/xml", "application/json;q=0", "*/*;q=abc", ";;,,", "\u{1}"],
            );
            Case::new("accept", Method::POST, "/graphql")
                .header("content-type", "application/json")
                .header("accept", acc)
                .body(body)
        }
        2 => {
            let method = pick(
                rng,
                &[
                    Method::PUT,
                    Method::DELETE,
                    Method::PATCH,
                    Method::OPTIONS,
                    Method::HEAD,
                    Method::TRACE,
                    Method::CONNECT,
                ],
            )
            .clone();
            Case::new("method", method, "/graphql").header("content-type", "application/json").body(body)
        }
        3 => {
            let path = *pick(
                rng,
                &[
                    "/graphql/",
                    "/GRAPHQL",
                    "/graphql/../healthz",
                    "/%00",
                    "/metrics",
                    "/schema.graphql",
                    "/.well-known/jwks.json",
                    "/readyz",
                    "/nope",
                    "//graphql",
                    "/graphql;x",
                ],
            );
            let method = pick(rng, &[Method::GET, Method::POST]).clone();
            Case::new("paths", method, path).header("content-type", "application/json").body(body)
        }
        _ => {
            let form = match rng.random_range(0..5) {
                0 => "grant_type=client_credentials&client_id=junk&client_secret=junk".to_owned(),
                1 => format!("grant_type={}", enc(&random_ascii(rng, 30))),
                2 => "grant_type=password&username=%00&password=%ff%fe".to_owned(),
                3 => "%%%&&&===".to_owned(),
                _ => format!("grant_type=client_credentials&client_id={}", "a".repeat(100_000)),
            };
            let ct = *pick(rng, &["application/x-www-form-urlencoded", "application/json", "text/plain"]);
            let token = maybe_token(rng, fx);
            Case::new("oauth", Method::POST, "/oauth/token").header("content-type", ct).bearer(token).body(form)
        }
    }
}

fn get_odd(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let query = match rng.random_range(0..14) {
        0 => String::new(),
        1 => "?query=".to_owned(),
        2 => "?query=%zz%".to_owned(),
        3 => "?query=%00%00&variables=%00".to_owned(),
        4 => format!("?query={}&query={}", enc(WHO), enc(CATALOGUE)),
        5 => format!(
            "?query={}&variables={}",
            enc("query($n: Int) { services(first: $n) { totalCount } }"),
            enc(*pick(rng, &["not json", "[1]", "{\"n\":1e999}", "{\"n\":\"x\"}", "null"]))
        ),
        6 => {
            format!("?query={}&extensions={}", enc(WHO), enc(*pick(rng, &["garbage", "{\"persistedQuery\":1}", "[]"])))
        }
        7 => format!("?query={}&operationName={}", enc(WHO), enc(&random_ascii(rng, 20))),
        8 => format!("?query={}", enc(&mutate(*pick(rng, DOCS), rng))),
        9 => format!("?query={}", "a".repeat(rng.random_range(10_000..100_000))),
        10 => format!(
            "?query={}",
            enc("mutation { createService(input: {code: \"GETX\", name: \"x\", category: OTHER}) { id } }")
        ),
        11 => format!("?query={}", enc("subscription { x }")),
        12 => format!(
            "?{}",
            (0..rng.random_range(1..200))
                .map(|_| format!("{}={}", random_ident(rng), random_ident(rng)))
                .collect::<Vec<_>>()
                .join("&")
        ),
        _ => format!(
            "?query={}",
            (0..rng.random_range(1..100)).map(|_| format!("%{:02X}", rng.random::<u8>())).collect::<String>()
        ),
    };
    let acc = *pick(rng, &["application/graphql-response+json", "application/json", "*/*", "text/html"]);
    let token = maybe_token(rng, fx);
    Case::new("get_odd", Method::GET, format!("/graphql{query}")).header("accept", acc).bearer(token)
}

fn batches(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let item = |rng: &mut StdRng| -> Value {
        match rng.random_range(0..7) {
            0 => json!({ "query": CATALOGUE }),
            1 => {
                let doc = *pick(rng, DOCS);
                json!({ "query": mutate(doc, rng) })
            }
            2 => json!(42),
            3 => json!("x"),
            4 => json!({}),
            5 => json!({ "query": 1 }),
            _ => json!({ "query": WHO }),
        }
    };
    let body = match rng.random_range(0..5) {
        0 => "[]".to_owned(),
        1 => Value::Array(
            (0..rng.random_range(fx.max_batch + 1..fx.max_batch * 5)).map(|_| json!({ "query": CATALOGUE })).collect(),
        )
        .to_string(),
        2 => Value::Array((0..rng.random_range(1..=fx.max_batch)).map(|_| item(rng)).collect()).to_string(),
        3 => json!([[{ "query": WHO }], [{ "query": WHO }]]).to_string(),
        _ => {
            let mut doc = String::from("{ ");
            for n in 0..25 {
                let _ = write!(
                    doc,
                    "a{n}: services(first: 100) {{ edges {{ node {{ interactions(first: 100) {{ totalCount }} }} }} }} "
                );
            }
            doc.push('}');
            Value::Array((0..fx.max_batch).map(|_| json!({ "query": doc })).collect()).to_string()
        }
    };
    let token = maybe_token(rng, fx);
    post("batches", rng, body, token)
}

fn persisted(rng: &mut StdRng, fx: &Fixtures) -> Case {
    let hash: String = (0..64).map(|_| *pick(rng, &['0', '1', 'a', 'f', '9', 'c'])).collect();
    let body = match rng.random_range(0..5) {
        0 => json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
        1 => json!({ "query": WHO, "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
        2 => json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": "zz" } } }),
        3 => json!({ "extensions": { "persistedQuery": "yes" } }),
        _ => json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": random_ascii(rng, 64) } } }),
    };
    let token = maybe_token(rng, fx);
    post("persisted", rng, body.to_string(), token)
}

fn valid(rng: &mut StdRng, fx: &Fixtures, index: usize) -> Case {
    let (doc, variables, token): (String, Value, Option<&str>) = match rng.random_range(0..6) {
        0 => (CATALOGUE.to_owned(), json!({}), None),
        1 => {
            let doc = *pick(rng, &DOCS[..12]);
            (doc.to_owned(), vars_for(doc, rng, fx), maybe_token(rng, fx))
        }
        2 => (
            "mutation Q($c: String!) { createService(input: {code: $c, name: \"Storm service\", category: OTHER}) { id code } }".to_owned(),
            json!({ "c": format!("STORM-{index}") }),
            Some(fx.staff.as_str()),
        ),
        3 => (
            "mutation Q($c: String!) { createPatron(input: {cardNumber: $c, name: \"Storm\", patronType: PUBLIC}) { id } }".to_owned(),
            json!({ "c": format!("ST-{index}") }),
            Some(fx.staff.as_str()),
        ),
        4 => (
            "mutation Q($s: ID!, $p: ID) { recordInteraction(input: {serviceId: $s, patronId: $p, kind: VISIT, channel: IN_PERSON}) { id } }".to_owned(),
            json!({ "s": fx.service_id, "p": fx.patron_id }),
            Some(fx.staff.as_str()),
        ),
        _ => (WHO.to_owned(), json!({}), Some(pick(rng, &fx.valid_tokens).as_str())),
    };
    post("valid", rng, gql(&doc, variables), token)
}

type Generator = fn(&mut StdRng, &Fixtures) -> Case;

/// The families of bad input and their weights.
const FAMILIES: &[(u32, Generator)] = &[
    (8, malformed_json),
    (6, json_not_graphql),
    (16, mutated_doc),
    (8, wrong_args),
    (4, unknown_fields),
    (4, deep_nesting),
    (3, alias_bomb),
    (3, fragment_bomb),
    (3, directive_spam),
    (3, long_strings),
    (6, unicode_nul),
    (1, oversized),
    (8, bad_tokens),
    (6, content_type_method),
    (6, get_odd),
    (5, batches),
    (2, persisted),
];
const VALID_WEIGHT: u32 = 10;

/// Request `index` of the storm, from its own seeded generator so each case can be built lazily.
fn generate(index: usize, fx: &Fixtures) -> Case {
    let mut rng = StdRng::seed_from_u64(SEED ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let total: u32 = FAMILIES.iter().map(|(w, _)| w).sum::<u32>() + VALID_WEIGHT;
    let mut roll = rng.random_range(0..total);
    for (weight, generator) in FAMILIES {
        if roll < *weight {
            return generator(&mut rng, fx);
        }
        roll -= weight;
    }
    valid(&mut rng, fx, index)
}

fn leaks_sql(text: &str) -> bool {
    let lower = text.to_lowercase();
    text.contains("SELECT")
        || text.contains("INSERT")
        || lower.contains("sqlite")
        || lower.contains("postgres")
        || lower.contains("syntax error at")
}

/// What is wrong with one answer, if anything.
fn inspect(status: u16, body: &[u8], codes: &mut BTreeMap<String, usize>) -> Vec<String> {
    let mut problems = Vec::new();
    if status >= 500 {
        problems.push(format!("status {status}"));
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        if status >= 400 && leaks_sql(&String::from_utf8_lossy(body)) {
            problems.push("SQL in a non-JSON error body".to_owned());
        }
        return problems;
    };
    let responses = match &value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for response in responses {
        let Some(errors) = response.get("errors").and_then(Value::as_array) else { continue };
        for error in errors {
            let code = error["extensions"]["code"].as_str().unwrap_or("<none>");
            *codes.entry(code.to_owned()).or_default() += 1;
            if !CODES.contains(&code) {
                problems.push(format!("error code {code}"));
            }
            if leaks_sql(error["message"].as_str().unwrap_or_default()) {
                problems.push("SQL in an error message".to_owned());
            }
        }
    }
    if status >= 400 && leaks_sql(&value.to_string()) {
        problems.push("SQL in an error body".to_owned());
    }
    problems
}

/// This process's resident set in KiB; the server runs in the test process, so this is the
/// server and the test client together.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sign(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).expect("sign a test token")
}

async fn setup(app: &TestApp) -> Fixtures {
    let admin = app.admin_token();
    let staff = app.staff_token();
    let create = |query: &'static str, path: &'static str| {
        let admin = admin.clone();
        async move {
            let resp = app.client.query(Some(&admin), query, json!({})).await;
            resp.ok().pointer(path).and_then(Value::as_str).expect("created id").to_owned()
        }
    };
    let service_id = create(
        "mutation { createService(input: {code: \"STORM\", name: \"Storm\", category: OTHER}) { id } }",
        "/createService/id",
    )
    .await;
    let patron_id = create(
        "mutation { createPatron(input: {cardNumber: \"STORM-P\", name: \"Storm Patron\", patronType: PUBLIC, tags: [\"storm\"]}) { id } }",
        "/createPatron/id",
    )
    .await;
    let funder_id =
        create("mutation { createFunder(input: {name: \"Storm Fund\", kind: FOUNDATION}) { id } }", "/createFunder/id")
            .await;
    let resp = app
        .client
        .query(
            Some(&admin),
            "mutation Q($s: ID!, $p: ID) { recordInteraction(input: {serviceId: $s, patronId: $p, kind: VISIT, channel: IN_PERSON, staffNotes: \"n\"}) { id } }",
            json!({ "s": service_id, "p": patron_id }),
        )
        .await;
    let interaction_id = resp.ok()["recordInteraction"]["id"].as_str().expect("interaction id").to_owned();

    let uuid_of =
        |id: &str| rapport::graphql::ids::decode_global_id(&async_graphql::ID(id.to_owned())).expect("a global id").1;
    let valid_tokens = vec![
        admin.clone(),
        staff.clone(),
        app.patron_token(uuid_of(&patron_id)),
        app.funder_token(uuid_of(&funder_id)),
        app.partner_token(&Scope::ALL),
    ];
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": "forged-admin", "role": "ADMIN", "iss": "rapport", "aud": "rapport-api",
        "exp": now + 600, "nbf": now - 5, "iat": now - 5, "jti": uuid::Uuid::now_v7().to_string(),
    });
    let kid = app.state.jwt.current_kid().to_owned();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 3_600);
    let mut wrong_audience = claims.clone();
    wrong_audience["aud"] = json!("someone-else");
    let forged = vec![
        sign(&claims, b"not-the-secret-but-long-enough-to-look-real", Some(&kid)),
        sign(&claims, b"x", None),
        sign(&expired, TEST_JWT_SECRET.as_bytes(), Some(&kid)),
        sign(&wrong_audience, TEST_JWT_SECRET.as_bytes(), Some(&kid)),
        sign(&json!({ "role": "ADMIN" }), TEST_JWT_SECRET.as_bytes(), Some(&kid)),
    ];
    let limits = app.state.limits();
    Fixtures {
        base: app.address.clone(),
        max_body: limits.max_body_bytes,
        max_batch: limits.max_batch,
        valid_tokens,
        staff,
        forged,
        ids: vec![service_id.clone(), patron_id.clone(), funder_id, interaction_id],
        service_id,
        patron_id,
    }
}

/// Send one case: its status and body, or the transport error.
async fn send(http: &reqwest::Client, base: &str, case: Case) -> Result<(u16, Vec<u8>), reqwest::Error> {
    let mut request = http.request(case.method, format!("{base}{}", case.path));
    for (name, value) in case.headers {
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            request = request.header(name, value);
        }
    }
    if let Some(body) = case.body {
        request = request.body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    Ok((status, body.to_vec()))
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    families: BTreeMap<&'static str, usize>,
    codes: BTreeMap<String, usize>,
    transport_errors: BTreeMap<&'static str, usize>,
    problems: Vec<String>,
    problem_count: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_input_storm_gets_no_5xx_and_leaves_the_server_healthy() {
    // Everyone comes from 127.0.0.1 with a handful of tokens: the rate limits would turn most of
    // the storm into 429s before it reaches the parser, so they are off here.
    let mut options = TestOptions::default();
    for role in ["ANONYMOUS", "PATRON", "FUNDER", "PARTNER", "STAFF", "ADMIN"] {
        options = options.with(&format!("RAPPORT_RATE_LIMIT_{role}"), "0");
    }
    let app = spawn_app_with(options).await;
    let fx = setup(&app).await;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("http client");

    // Warm up (pools, caches, lazily built statics) before taking the baseline.
    for _ in 0..50 {
        app.client.query(None, CATALOGUE, json!({})).await.ok();
        app.client.query(Some(&fx.staff), DOCS[4], json!({})).await.ok();
    }
    let rss_before = rss_kib();

    let started = Instant::now();
    let mut tally = Tally::default();
    let fx_ref = &fx;
    let http_ref = &http;
    let storm = stream::iter(0..REQUESTS)
        .map(|index| async move {
            let case = generate(index, fx_ref);
            let family = case.family;
            let summary = format!("{} {} {}", case.method, family, index);
            (family, summary, send(http_ref, &fx_ref.base, case).await)
        })
        .buffer_unordered(CONCURRENCY)
        .for_each(|(family, summary, result)| {
            *tally.families.entry(family).or_default() += 1;
            match result {
                Ok((status, body)) => {
                    *tally.statuses.entry(status).or_default() += 1;
                    let problems = inspect(status, &body, &mut tally.codes);
                    if !problems.is_empty() {
                        tally.problem_count += 1;
                        if tally.problems.len() < 20 {
                            let excerpt: String = String::from_utf8_lossy(&body).chars().take(400).collect();
                            tally.problems.push(format!("{summary}: {problems:?}: {excerpt}"));
                        }
                    }
                }
                Err(err) => {
                    *tally.transport_errors.entry(family).or_default() += 1;
                    if tally.problems.len() < 20 {
                        tally.problems.push(format!("{summary}: transport error: {err}"));
                    }
                }
            }
            std::future::ready(())
        });
    tokio::time::timeout(STORM_DEADLINE, storm).await.expect("the storm finished within its deadline");
    let elapsed = started.elapsed();

    // Still alive and still right.
    let health = http.get(app.url("/healthz")).send().await.expect("healthz after the storm");
    assert_eq!(health.status(), 200);
    app.client.query(None, CATALOGUE, json!({})).await.ok();
    let resp = app
        .client
        .query(Some(&fx.staff), "query P($id: ID!) { patron(id: $id) { name } }", json!({ "id": fx.patron_id }))
        .await;
    assert_eq!(resp.ok()["patron"]["name"], "Storm Patron");

    drop(http);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kib();

    let sent: usize = tally.families.values().sum();
    let answered: usize = tally.statuses.values().sum();
    println!(
        "bad-input storm: seed {SEED:#x}, {sent} requests, {CONCURRENCY} at a time, {:.1} s ({:.0} req/s)",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64()
    );
    println!("  by status: {:?}", tally.statuses);
    println!("  by family: {:?}", tally.families);
    println!("  error codes: {:?}", tally.codes);
    println!("  transport errors: {:?}", tally.transport_errors);
    println!(
        "  test-process RSS (server + client): {} MiB before, {} MiB after ({:+} MiB)",
        rss_before / 1024,
        rss_after / 1024,
        (rss_after as i64 - rss_before as i64) / 1024
    );

    assert_eq!(sent, REQUESTS);
    assert!(
        tally.problems.is_empty(),
        "{} bad answers and {} transport errors, first ones:\n{}",
        tally.problem_count,
        sent - answered,
        tally.problems.join("\n")
    );
    assert_eq!(tally.statuses.range(500..).map(|(_, n)| n).sum::<usize>(), 0);
    assert!(
        rss_after.saturating_sub(rss_before) < MAX_RSS_GROWTH_KIB,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
