//! Automatic persisted queries (Apollo's protocol) and the allow-list mode.

use std::sync::Arc;

use rapport_tests::{
    GqlResponse, TestApp, TestClient, TestOptions, redis_server::SharedRedis, server::spawn_on, spawn_app,
    spawn_app_with,
};
use serde_json::{Value, json};

const DOC: &str = "query Catalogue { services(first: 3) { totalCount edges { node { code } } } }";

fn sha(doc: &str) -> String {
    rapport::http::persisted::sha256_hex(doc)
}

fn extension(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn hash_only(app: &TestApp, token: Option<&str>, hash: &str) -> GqlResponse {
    app.client.post_json(token, &json!({ "extensions": extension(hash) })).await
}

async fn with_document(app: &TestApp, token: Option<&str>, doc: &str, hash: &str) -> GqlResponse {
    app.client.post_json(token, &json!({ "query": doc, "extensions": extension(hash) })).await
}

async fn get_hash_only(app: &TestApp, hash: &str) -> GqlResponse {
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("extensions", extension(hash).to_string())])
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    TestClient::read(resp).await
}

#[track_caller]
fn assert_not_found(resp: &GqlResponse) {
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.errors()[0]["message"], "PersistedQueryNotFound");
    resp.expect_code("PERSISTED_QUERY_NOT_FOUND");
    assert!(resp.body.get("data").is_none());
}

#[tokio::test]
async fn the_apollo_round_trip_over_post_and_get() {
    let app = spawn_app().await;
    let hash = sha(DOC);
    // 1. The client tries the hash alone; the server does not know it.
    assert_not_found(&hash_only(&app, None, &hash).await);
    assert_not_found(&get_hash_only(&app, &hash).await);
    // 2. It sends the document with the hash: checked, stored, run.
    let resp = with_document(&app, None, DOC, &hash).await;
    assert!(resp.ok()["services"]["totalCount"].is_number());
    // 3. From now on the hash alone is enough, over POST and over GET (cacheable by CDNs).
    hash_only(&app, None, &hash).await.ok();
    let resp = get_hash_only(&app, &hash).await;
    resp.ok();
    let cache = resp.header("cache-control").unwrap_or_default();
    assert!(cache.contains("public") && cache.contains("max-age"), "{cache}");
    // Upper-case hex is the same hash.
    hash_only(&app, None, &hash.to_ascii_uppercase()).await.ok();
    // Variables and operation names travel as usual.
    let doc = "query One($n: Int) { services(first: $n) { edges { node { code } } } }";
    with_document(&app, None, doc, &sha(doc)).await.ok();
    let resp = app
        .client
        .post_json(
            None,
            &json!({ "extensions": extension(&sha(doc)), "variables": { "n": 1 }, "operationName": "One" }),
        )
        .await;
    resp.ok();
}

#[tokio::test]
async fn bad_hashes_and_versions_are_bad_user_input() {
    let app = spawn_app().await;
    let resp = with_document(&app, None, DOC, &sha("{ something else }")).await;
    assert_eq!(resp.status, 400);
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["message"], "provided sha does not match query");
    // Nothing was stored under the wrong hash.
    assert_not_found(&hash_only(&app, None, &sha("{ something else }")).await);

    let resp = app
        .client
        .post_json(None, &json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": sha(DOC) } } }))
        .await;
    resp.expect_code("BAD_USER_INPUT");
    let resp = hash_only(&app, None, "not-a-hash").await;
    resp.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn mutations_by_hash_are_post_only_and_batches_mix() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let mutation = r#"mutation { createService(input: {code: "APQ", name: "By hash", category: OTHER}) { code } }"#;
    let resp = with_document(&app, Some(&staff), mutation, &sha(mutation)).await;
    assert_eq!(resp.ok()["createService"]["code"], "APQ");
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("extensions", extension(&sha(mutation)).to_string())])
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);

    // A batch: one known hash, one unknown, one plain query; each answered on its own.
    with_document(&app, None, DOC, &sha(DOC)).await.ok();
    let batch = json!([
        { "extensions": extension(&sha(DOC)) },
        { "extensions": extension(&sha("{ unknown }")) },
        { "query": "{ services { totalCount } }" },
    ]);
    let resp = app.client.post_json(None, &batch).await;
    let items = resp.body.as_array().unwrap();
    assert!(items[0]["data"]["services"].is_object(), "{}", resp.body);
    assert_eq!(items[1]["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
    assert!(items[2]["data"]["services"].is_object());
}

#[tokio::test]
async fn allow_list_mode_runs_only_registered_documents() {
    let app = spawn_app_with(TestOptions::default().with("RAPPORT_PERSISTED_ONLY", "1")).await;
    let hash = sha(DOC);
    // Anonymous callers may not run or register new documents.
    let resp = app.client.query(None, DOC, json!({})).await;
    assert_eq!(resp.status, 403);
    resp.expect_code("FORBIDDEN");
    with_document(&app, None, DOC, &hash).await.expect_code("FORBIDDEN");
    assert_not_found(&hash_only(&app, None, &hash).await);
    // Neither may patrons or partners.
    let patron = app.patron_token(uuid::Uuid::now_v7());
    with_document(&app, Some(&patron), DOC, &hash).await.expect_code("FORBIDDEN");

    // Staff register it (a build step of the app) ...
    with_document(&app, Some(&app.staff_token()), DOC, &hash).await.ok();
    // ... then everyone may run it, by hash or with the document.
    hash_only(&app, None, &hash).await.ok();
    get_hash_only(&app, &hash).await.ok();
    with_document(&app, None, DOC, &hash).await.ok();
    hash_only(&app, Some(&patron), &hash).await.ok();
    // Staff tools may still send any document.
    app.client.query(Some(&app.admin_token()), "{ services { totalCount } }", json!({})).await.ok();
    // Others still may not.
    app.client.query(None, "{ services { totalCount } }", json!({})).await.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn instances_share_persisted_documents_through_redis() {
    let Some(redis) = SharedRedis::get("instances_share_persisted_documents_through_redis").await else {
        return;
    };
    let options = TestOptions::default().with("REDIS_URL", &redis.url);
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_on(Arc::clone(&a.database), options).await;
    let hash = sha(DOC);
    assert_not_found(&hash_only(&b, None, &hash).await);
    with_document(&a, None, DOC, &hash).await.ok();
    hash_only(&b, None, &hash).await.ok();
    get_hash_only(&b, &hash).await.ok();
}
