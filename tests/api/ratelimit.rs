//! Rate limits per viewer: budgets per role, 429 with `Retry-After` and `RATE_LIMITED`, batches
//! counted by operation, anonymous callers by address, shared across instances through Redis.

use std::sync::Arc;

use rapport_tests::{
    GqlResponse, TestApp, TestClient, TestOptions, redis_server::SharedRedis, server::spawn_on, spawn_app_with,
};
use serde_json::{Value, json};

const QUERY: &str = "{ services(first: 1) { totalCount } }";

async fn ask(app: &TestApp, token: Option<&str>) -> GqlResponse {
    app.client.query(token, QUERY, json!({})).await
}

#[track_caller]
fn assert_limited(resp: &GqlResponse) {
    assert_eq!(resp.status, 429, "{}", resp.body);
    resp.expect_code("RATE_LIMITED");
    let retry: u64 = resp.header("retry-after").expect("Retry-After header").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(resp.errors()[0]["extensions"]["retryAfter"].as_u64(), Some(retry));
    assert!(resp.body.get("data").is_none());
}

#[tokio::test]
async fn anonymous_callers_get_their_budget_then_429() {
    let app = spawn_app_with(TestOptions::default().with("RAPPORT_RATE_LIMIT_ANONYMOUS", "5")).await;
    for _ in 0..5 {
        ask(&app, None).await.ok();
    }
    assert_limited(&ask(&app, None).await);
    // GET counts too.
    let resp = app.client.http.get(app.url("/graphql")).query(&[("query", QUERY)]).send().await.unwrap();
    assert_limited(&TestClient::read(resp).await);
    // Other roles have budgets of their own.
    ask(&app, Some(&app.staff_token())).await.ok();
    assert!(app.metric(r#"rapport_rate_limited_total{role="ANONYMOUS"}"#).await >= 2.0);
}

#[tokio::test]
async fn budgets_are_per_role_and_per_subject() {
    let app = spawn_app_with(
        TestOptions::default()
            .with("RAPPORT_RATE_LIMIT_STAFF", "3")
            .with("RAPPORT_RATE_LIMIT_ADMIN", "0")
            .with("RAPPORT_RATE_LIMIT_PATRON", "2"),
    )
    .await;
    let staff = app.staff_token();
    for _ in 0..3 {
        ask(&app, Some(&staff)).await.ok();
    }
    assert_limited(&ask(&app, Some(&staff)).await);
    // Another token of the same subject shares the budget: it is the subject that is limited.
    assert_limited(&ask(&app, Some(&app.staff_token())).await);
    // Admins are unlimited here (0); anonymous callers and other patrons have their own budgets.
    for _ in 0..10 {
        ask(&app, Some(&app.admin_token())).await.ok();
    }
    ask(&app, None).await.ok();
    let first = app.patron_token(uuid::Uuid::now_v7());
    let second = app.patron_token(uuid::Uuid::now_v7());
    for _ in 0..2 {
        ask(&app, Some(&first)).await;
    }
    assert_limited(&ask(&app, Some(&first)).await);
    assert_ne!(ask(&app, Some(&second)).await.status, 429);
}

#[tokio::test]
async fn a_batch_counts_as_its_number_of_operations() {
    let app = spawn_app_with(TestOptions::default().with("RAPPORT_RATE_LIMIT_ANONYMOUS", "5")).await;
    let batch: Vec<Value> = (0..3).map(|_| json!({ "query": QUERY })).collect();
    let resp = app.client.post_json(None, &json!(batch)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.as_array().map(Vec::len), Some(3));
    // 3 used, 2 left: a batch of 3 does not fit.
    assert_limited(&app.client.post_json(None, &json!(batch)).await);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let send = |app: &TestApp, forwarded: &str| {
        let request = app
            .client
            .http
            .post(app.url("/graphql"))
            .header("x-forwarded-for", forwarded.to_owned())
            .json(&json!({ "query": QUERY }));
        async move { TestClient::read(request.send().await.unwrap()).await }
    };
    // Not trusted: a forged header does not buy a fresh budget.
    let app = spawn_app_with(TestOptions::default().with("RAPPORT_RATE_LIMIT_ANONYMOUS", "2")).await;
    send(&app, "203.0.113.1").await.ok();
    send(&app, "203.0.113.2").await.ok();
    assert_limited(&send(&app, "203.0.113.3").await);

    // Trusted: each client address has its own budget.
    let app = spawn_app_with(
        TestOptions::default().with("RAPPORT_RATE_LIMIT_ANONYMOUS", "2").with("RAPPORT_TRUST_PROXY", "1"),
    )
    .await;
    for _ in 0..2 {
        send(&app, "198.51.100.1, 203.0.113.1").await.ok();
    }
    assert_limited(&send(&app, "198.51.100.1, 203.0.113.1").await);
    send(&app, "203.0.113.2").await.ok();
}

#[tokio::test]
async fn instances_share_budgets_through_redis() {
    let Some(redis) = SharedRedis::get("instances_share_budgets_through_redis").await else {
        return;
    };
    let options = TestOptions::default().with("REDIS_URL", &redis.url).with("RAPPORT_RATE_LIMIT_PARTNER", "4");
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_on(Arc::clone(&a.database), options).await;
    let partner = a.partner_token(&[rapport::auth::Scope::ServicesRead]);
    ask(&a, Some(&partner)).await.ok();
    ask(&b, Some(&partner)).await.ok();
    ask(&a, Some(&partner)).await.ok();
    ask(&b, Some(&partner)).await.ok();
    assert_limited(&ask(&a, Some(&partner)).await);
    assert_limited(&ask(&b, Some(&partner)).await);
}
