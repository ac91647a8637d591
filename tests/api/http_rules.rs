//! The GraphQL-over-HTTP rules, each checked on the wire.

use rapport_tests::{TestApp, TestClient, TestOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const CATALOGUE: &str = "{ services(first: 2) { edges { node { code name } } } }";

async fn post_raw(app: &TestApp, content_type: Option<&str>, accept: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = app.client.http.post(app.url("/graphql")).body(body.to_owned());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

fn content_type(resp: &reqwest::Response) -> String {
    resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn post_json_answers_in_the_accepted_media_type() {
    let app = spawn_app().await;
    let body = json!({ "query": CATALOGUE }).to_string();

    let resp = post_raw(&app, Some("application/json"), Some("application/graphql-response+json"), &body).await;
    assert_eq!(resp.status(), 200);
    assert!(content_type(&resp).starts_with("application/graphql-response+json"));

    let resp = post_raw(&app, Some("application/json"), Some("application/json"), &body).await;
    assert_eq!(resp.status(), 200);
    assert!(content_type(&resp).starts_with("application/json"));

    // No Accept: the legacy type, as the spec says. (reqwest sends `*/*` unless told otherwise, so
    // send an empty header, which servers must treat like a missing one.)
    let resp = post_raw(&app, Some("application/json"), Some(""), &body).await;
    assert!(content_type(&resp).starts_with("application/json"));

    let resp = post_raw(&app, Some("application/json; charset=utf-8"), Some("*/*"), &body).await;
    assert_eq!(resp.status(), 200);
    assert!(content_type(&resp).starts_with("application/graphql-response+json"));

    let resp = post_raw(&app, Some("application/json"), Some("text/html"), &body).await;
    assert_eq!(resp.status(), 406);
}

#[tokio::test]
async fn request_errors_are_400_without_data_under_graphql_response_json() {
    let app = spawn_app().await;
    for (query, what) in [
        ("{ services { ", "parse error"),
        ("{ noSuchField }", "validation error"),
        ("query A { services { totalCount } } query B { services { totalCount } }", "no operation chosen"),
    ] {
        let body = json!({ "query": query }).to_string();
        let resp = post_raw(&app, Some("application/json"), Some("application/graphql-response+json"), &body).await;
        assert_eq!(resp.status(), 400, "{what}");
        assert!(content_type(&resp).starts_with("application/graphql-response+json"), "{what}");
        let parsed = TestClient::read(resp).await;
        assert!(parsed.body.get("data").is_none(), "{what}: {}", parsed.body);
        parsed.expect_code("BAD_USER_INPUT");
    }
    // Unknown operation name and variables of the wrong type are request errors too.
    let body = json!({ "query": "query A { services { totalCount } }", "operationName": "B" }).to_string();
    let resp = post_raw(&app, Some("application/json"), Some("application/graphql-response+json"), &body).await;
    assert_eq!(resp.status(), 400);
    let body = json!({
        "query": "query Q($n: Int) { services(first: $n) { totalCount } }",
        "variables": { "n": "ten" }
    })
    .to_string();
    let resp = post_raw(&app, Some("application/json"), Some("application/graphql-response+json"), &body).await;
    assert_eq!(resp.status(), 400);
    let parsed = TestClient::read(resp).await;
    assert!(parsed.body.get("data").is_none());
}

#[tokio::test]
async fn request_errors_are_200_without_data_under_legacy_json() {
    let app = spawn_app().await;
    let body = json!({ "query": "{ noSuchField }" }).to_string();
    let resp = post_raw(&app, Some("application/json"), Some("application/json"), &body).await;
    assert_eq!(resp.status(), 200);
    let parsed = TestClient::read(resp).await;
    assert!(parsed.body.get("data").is_none());
    parsed.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn field_errors_keep_200_and_data() {
    let app = spawn_app().await;
    // An anonymous caller asking for a patron: the field fails, the request does not.
    let resp = app
        .client
        .query(None, "{ services(first: 1) { totalCount } patron(id: \"UGF0cm9uOng\") { id } }", json!({}))
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.get("data").is_some());
    assert!(!resp.errors().is_empty());
}

#[tokio::test]
async fn posts_must_be_json() {
    let app = spawn_app().await;
    let body = json!({ "query": CATALOGUE }).to_string();
    for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/graphql"), None] {
        let resp = post_raw(&app, ct, Some("application/graphql-response+json"), &body).await;
        assert_eq!(resp.status(), 415, "content type {ct:?}");
    }
    let resp = post_raw(&app, Some("application/json"), Some("application/graphql-response+json"), "{not json").await;
    assert_eq!(resp.status(), 400);
    let parsed = TestClient::read(resp).await;
    parsed.expect_code("BAD_USER_INPUT");
    let resp = post_raw(&app, Some("application/json"), None, r#"{"query": 42}"#).await;
    assert_eq!(resp.status(), 400);
    let resp = post_raw(&app, Some("application/json"), None, r#""just a string""#).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn get_runs_queries_but_never_mutations() {
    let app = spawn_app().await;
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", CATALOGUE)])
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let parsed = TestClient::read(resp).await;
    parsed.ok();

    let mutation = r#"mutation { createService(input: {code: "X1", name: "X", category: OTHER}) { id } }"#;
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", mutation)])
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));

    // Operation selected by name out of a document that also holds a mutation.
    let doc = format!(
        "query Q {CATALOGUE} mutation M {{ createService(input: {{code: \"X2\", name: \"X\", category: OTHER}}) {{ id }} }}"
    );
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", doc.as_str()), ("operationName", "M")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", doc.as_str()), ("operationName", "Q")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", "query ($n: Int) { services(first: $n) { totalCount } }"), ("variables", "{\"n\": 1}")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", CATALOGUE), ("variables", "not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn browsers_get_graphiql() {
    let app = spawn_app().await;
    let resp = app.client.http.get(app.url("/graphql")).header("accept", "text/html,*/*").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(content_type(&resp).starts_with("text/html"));
    assert!(resp.text().await.unwrap().to_lowercase().contains("graphiql"));
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_refused() {
    let app =
        spawn_app_with(TestOptions::default().with("RAPPORT_MAX_BODY_BYTES", "2048").with("RAPPORT_MAX_BATCH", "3"))
            .await;
    let big = json!({ "query": CATALOGUE, "variables": { "pad": "x".repeat(4096) } }).to_string();
    let resp = post_raw(&app, Some("application/json"), None, &big).await;
    assert_eq!(resp.status(), 413);

    let batch: Vec<Value> = (0..4).map(|_| json!({ "query": CATALOGUE })).collect();
    let resp = app.client.http.post(app.url("/graphql")).json(&batch).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    TestClient::read(resp).await.expect_code("QUERY_TOO_COMPLEX");

    let batch: Vec<Value> = (0..3).map(|_| json!({ "query": CATALOGUE })).collect();
    let resp = app.client.http.post(app.url("/graphql")).json(&batch).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn depth_complexity_and_alias_limits() {
    let app = spawn_app_with(
        TestOptions::default()
            .with("RAPPORT_MAX_DEPTH", "3")
            .with("RAPPORT_MAX_ALIASES", "2")
            .with("RAPPORT_MAX_COMPLEXITY", "1000"),
    )
    .await;
    let resp = app.client.query(None, CATALOGUE, json!({})).await;
    assert_eq!(resp.status, 400);
    resp.expect_code("QUERY_TOO_COMPLEX");

    let aliases = "{ a: services { totalCount } b: services { totalCount } c: services { totalCount } }";
    let resp = app.client.query(None, aliases, json!({})).await;
    resp.expect_code("QUERY_TOO_COMPLEX");

    let app = spawn_app_with(TestOptions::default().with("RAPPORT_MAX_COMPLEXITY", "3")).await;
    let resp =
        app.client.query(None, "{ services { totalCount pageInfo { hasNextPage hasPreviousPage } } }", json!({})).await;
    resp.expect_code("QUERY_TOO_COMPLEX");
}

/// A connection costs its selection once per row it may return, so nested pages cannot multiply
/// past the limit; a page where every row fails answers with at most `MAX_ERRORS` errors.
#[tokio::test]
async fn nested_pages_cost_their_rows_and_errors_are_capped() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let nested = |n: u32| {
        format!(
            "{{ patrons(first: {n}) {{ edges {{ node {{ interactions(first: {n}) {{ edges {{ node {{ id service {{ name }} }} }} }} }} }} }} }}"
        )
    };
    app.client.query(Some(&staff), &nested(10), json!({})).await.ok();
    let resp = app.client.query(Some(&staff), &nested(100), json!({})).await;
    assert_eq!(resp.status, 400);
    resp.expect_code("QUERY_TOO_COMPLEX");

    let create = "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }";
    for i in 0..60 {
        let input = json!({ "code": format!("CAP-{i}"), "name": format!("Service {i}"), "category": "OTHER" });
        app.client.query(Some(&staff), create, json!({ "i": input })).await.ok();
    }
    // Anonymous callers may list services but not their fundings: one error per row, 120 rows.
    let rows = "{ a: services(first: 100) { edges { node { fundings { id } } } } \
                b: services(first: 100) { edges { node { fundings { id } } } } }";
    let resp = app.client.query(None, rows, json!({})).await;
    let errors = resp.errors();
    assert_eq!(errors.len(), rapport::graphql::errors::MAX_ERRORS, "{:#}", resp.body);
    let last = errors.last().unwrap();
    assert_eq!(last["message"], "21 more errors omitted");
    assert_eq!(last["extensions"]["code"], errors[0]["extensions"]["code"]);
}

#[tokio::test]
async fn fragment_bombs_are_refused_before_execution() {
    let app = spawn_app().await;
    let mut doc = String::from("query { services { ...F0 } }\n");
    doc.push_str("fragment F0 on ServiceConnection { totalCount ...F1 ...F1 }\n");
    for i in 1..20 {
        doc.push_str(&format!("fragment F{i} on ServiceConnection {{ totalCount ...F{} ...F{} }}\n", i + 1, i + 1));
    }
    doc.push_str("fragment F20 on ServiceConnection { totalCount }\n");
    let resp = app.client.query(None, &doc, json!({})).await;
    assert_eq!(resp.status, 400);
    resp.expect_code("QUERY_TOO_COMPLEX");
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    for header in ["Bearer not.a.token", "Basic dXNlcjpwYXNz", "Bearer ", "Token abc"] {
        let resp = app
            .client
            .http
            .post(app.url("/graphql"))
            .header("authorization", header)
            .json(&json!({ "query": CATALOGUE }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{header}");
        TestClient::read(resp).await.expect_code("UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn health_readiness_metrics_and_schema() {
    let app = spawn_app().await;
    let resp = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["database"], true);
    app.client.query(None, CATALOGUE, json!({})).await.ok();
    let metrics = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("rapport_db_statements_total"));
    assert!(metrics.contains("rapport_graphql_requests_total"));
    let sdl = reqwest::get(app.url("/schema.graphql")).await.unwrap().text().await.unwrap();
    assert!(sdl.contains("type Query"));
}

#[tokio::test]
async fn cache_headers_public_for_anonymous_catalogue_private_when_authenticated() {
    let app = spawn_app().await;
    let resp = app.client.http.get(app.url("/graphql")).query(&[("query", CATALOGUE)]).send().await.unwrap();
    let cache = resp.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cache.contains("public") && cache.contains("max-age="), "{cache}");

    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", CATALOGUE)])
        .bearer_auth(app.staff_token())
        .send()
        .await
        .unwrap();
    let cache = resp.headers().get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cache.contains("private"), "{cache}");

    let resp = app.client.query(None, CATALOGUE, json!({})).await;
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
}

/// Past the configured number of executing operations, requests wait for a slot; when none frees
/// up within the database acquire timeout the answer is 503 with `Retry-After`, not a pile-up.
#[tokio::test]
async fn operations_past_the_admission_limit_wait_then_get_503() {
    let app = spawn_app_with(
        TestOptions::default()
            .with("RAPPORT_MAX_CONCURRENT_OPERATIONS", "2")
            .with("DATABASE_ACQUIRE_TIMEOUT_SECS", "1"),
    )
    .await;
    let staff = app.staff_token();
    let query = "{ patrons(first: 5) { totalCount } }";
    let answers =
        futures_util::future::join_all((0..12).map(|_| app.client.query(Some(&staff), query, json!({})))).await;
    assert!(answers.iter().all(|a| a.status == 200 && a.errors().is_empty()), "queued, then served");

    let held = app.state.operations.clone().acquire_many_owned(2).await.expect("the permits");
    let started = std::time::Instant::now();
    let resp = app.client.query(Some(&staff), query, json!({})).await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("retry-after").as_deref(), Some("1"));
    resp.expect_code("INTERNAL");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    drop(held);
    app.client.query(Some(&staff), query, json!({})).await.ok();
}
