//! Engagement (score, stage, lifecycle filter) and patron feedback (ratings, NPS), on data whose
//! answers are known, with the role rules.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rapport::{auth::Scope, graphql::ids::decode_global_id};
use rapport_tests::{TestApp, TestOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use uuid::Uuid;

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&async_graphql::ID(gid.to_owned())).expect("a global id").1
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub async fn service(app: &TestApp, code: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
            json!({ "i": { "code": code, "name": format!("Service {code}"), "category": "REFERENCE" } }),
        )
        .await;
    str_at(resp.ok(), "/createService/id").to_owned()
}

pub async fn patron(app: &TestApp, card: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
            json!({ "i": { "cardNumber": card, "name": format!("Patron {card}"), "patronType": "PUBLIC" } }),
        )
        .await;
    str_at(resp.ok(), "/createPatron/id").to_owned()
}

/// Record an interaction `days_ago` days ago; returns its global id.
pub async fn interact(
    app: &TestApp,
    patron: &str,
    service: &str,
    days_ago: i64,
    channel: &str,
    rating: Option<i32>,
) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": {
                "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": channel,
                "occurredAt": time(Utc::now() - Duration::days(days_ago)), "rating": rating,
            } }),
        )
        .await;
    str_at(resp.ok(), "/recordInteraction/id").to_owned()
}

const ENGAGEMENT: &str = "query($id: ID!) { patron(id: $id) { engagement {
    firstInteractionAt lastInteractionAt interactionsLast90Days distinctServices score lifecycleStage } } }";

async fn engagement(app: &TestApp, token: &str, id: &str) -> Value {
    let resp = app.client.query(Some(token), ENGAGEMENT, json!({ "id": id })).await;
    resp.ok()["patron"]["engagement"].clone()
}

async fn by_stage(app: &TestApp, stages: &[&str]) -> Vec<String> {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "query($f: PatronsFilter) { patrons(first: 50, filter: $f) { totalCount edges { node { id } } } }",
            json!({ "f": { "lifecycleStages": stages } }),
        )
        .await;
    let data = resp.ok();
    let mut ids: Vec<String> = data["patrons"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(data["patrons"]["totalCount"].as_u64(), Some(ids.len() as u64));
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<&String>) -> Vec<String> {
    ids.sort();
    ids.into_iter().cloned().collect()
}

#[tokio::test]
async fn engagement_scores_stages_and_filter() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let (s1, s2, s3) = (service(&app, "E1").await, service(&app, "E2").await, service(&app, "E3").await);
    let active = patron(&app, "ENG-A").await;
    let new = patron(&app, "ENG-B").await;
    let at_risk = patron(&app, "ENG-C").await;
    let lapsed = patron(&app, "ENG-D").await;
    let idle = patron(&app, "ENG-E").await;
    interact(&app, &active, &s1, 100, "IN_PERSON", None).await;
    interact(&app, &active, &s2, 10, "WEB", None).await;
    interact(&app, &active, &s3, 5, "WEB", None).await;
    interact(&app, &new, &s1, 2, "WEB", None).await;
    interact(&app, &at_risk, &s1, 100, "WEB", None).await;
    interact(&app, &lapsed, &s2, 200, "WEB", None).await;

    // recency 40×(1−5/365) + frequency 35×ln3/ln21 + breadth 25×3/5 = 67.08
    let a = engagement(&app, &staff, &active).await;
    assert_eq!(a["score"], 67, "{a:#}");
    assert_eq!(a["lifecycleStage"], "ACTIVE");
    assert_eq!(a["interactionsLast90Days"], 2);
    assert_eq!(a["distinctServices"], 3);
    assert!(a["firstInteractionAt"].as_str().expect("first") < a["lastInteractionAt"].as_str().expect("last"));
    // 40×(1−2/365) + 35×ln2/ln21 + 5 = 52.75
    let b = engagement(&app, &staff, &new).await;
    assert_eq!((b["score"].as_i64(), b["lifecycleStage"].as_str()), (Some(53), Some("NEW")), "{b:#}");
    // 40×265/365 + 0 + 5 = 34.04
    let c = engagement(&app, &staff, &at_risk).await;
    assert_eq!((c["score"].as_i64(), c["lifecycleStage"].as_str()), (Some(34), Some("AT_RISK")), "{c:#}");
    // 40×165/365 + 0 + 5 = 23.08
    let d = engagement(&app, &staff, &lapsed).await;
    assert_eq!((d["score"].as_i64(), d["lifecycleStage"].as_str()), (Some(23), Some("LAPSED")), "{d:#}");
    let e = engagement(&app, &staff, &idle).await;
    assert_eq!(e["score"], 0);
    assert_eq!(e["lifecycleStage"], "NEW");
    assert_eq!(e["firstInteractionAt"], Value::Null);
    assert_eq!(e["interactionsLast90Days"], 0);

    assert_eq!(by_stage(&app, &["AT_RISK", "LAPSED"]).await, sorted(vec![&at_risk, &lapsed]));
    assert_eq!(by_stage(&app, &["NEW"]).await, sorted(vec![&new, &idle]));
    assert_eq!(by_stage(&app, &["ACTIVE"]).await, vec![active.clone()]);
    assert!(by_stage(&app, &["NEVER_ENGAGED"]).await.is_empty());

    // One grouped statement for the engagement of a whole page of patrons.
    let list = "{ patrons(first: 50) { edges { node { engagement { score lifecycleStage } } } } }";
    let before = app.sql_statements().await;
    app.client.query(Some(&staff), list, json!({})).await.ok();
    let small = app.sql_statements().await - before;
    for i in 0..5 {
        let p = patron(&app, &format!("ENG-X{i}")).await;
        interact(&app, &p, &s1, 1, "WEB", None).await;
    }
    let before = app.sql_statements().await;
    app.client.query(Some(&staff), list, json!({})).await.ok();
    assert_eq!(app.sql_statements().await - before, small, "statement count grows with patrons");

    // Roles: partners with patrons:read may read it; patrons (even about themselves), funders
    // and anonymous callers may not.
    let partner = app.partner_token(&[Scope::PatronsRead]);
    assert_eq!(engagement(&app, &partner, &active).await["score"], 67);
    let me = app.patron_token(uuid_of(&active));
    app.client.query(Some(&me), "{ me { engagement { score } } }", json!({})).await.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn never_engaged_uses_the_configured_threshold() {
    let app = spawn_app_with(TestOptions::default().with("RAPPORT_LIFECYCLE_NEW_DAYS", "0")).await;
    let s = service(&app, "NE1").await;
    let idle = patron(&app, "NE-A").await;
    let recent = patron(&app, "NE-B").await;
    interact(&app, &recent, &s, 1, "WEB", None).await;
    let staff = app.staff_token();
    assert_eq!(engagement(&app, &staff, &idle).await["lifecycleStage"], "NEVER_ENGAGED");
    assert_eq!(engagement(&app, &staff, &recent).await["lifecycleStage"], "ACTIVE");
    assert_eq!(by_stage(&app, &["NEVER_ENGAGED"]).await, vec![idle]);
}

const RATE: &str = "mutation($id: ID!, $r: Int!, $c: String) {
    rateInteraction(interactionId: $id, rating: $r, comment: $c) { id rating comment } }";
const NPS: &str =
    "mutation($s: Int!, $c: String) { answerNps(score: $s, comment: $c) { score comment answeredAt nextAllowedAt } }";

#[tokio::test]
async fn patrons_rate_their_own_interactions_and_answer_nps_once_per_90_days() {
    let app = spawn_app().await;
    let s = service(&app, "FB1").await;
    let alice = patron(&app, "FB-A").await;
    let bob = patron(&app, "FB-B").await;
    let mine = interact(&app, &alice, &s, 1, "WEB", None).await;
    let theirs = interact(&app, &bob, &s, 1, "WEB", None).await;
    let alice_token = app.patron_token(uuid_of(&alice));

    let resp = app.client.query(Some(&alice_token), RATE, json!({ "id": mine, "r": 4, "c": " helpful " })).await;
    assert_eq!(resp.ok()["rateInteraction"], json!({ "id": mine, "rating": 4, "comment": "helpful" }));
    app.client.query(Some(&alice_token), RATE, json!({ "id": theirs, "r": 4 })).await.expect_code("FORBIDDEN");
    let resp = app.client.query(Some(&alice_token), RATE, json!({ "id": mine, "r": 6 })).await;
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["extensions"]["field"], "rating");
    app.client.query(Some(&app.staff_token()), RATE, json!({ "id": mine, "r": 4 })).await.expect_code("FORBIDDEN");
    app.client.query(Some(&app.admin_token()), RATE, json!({ "id": mine, "r": 4 })).await.expect_code("FORBIDDEN");
    app.client.query(None, RATE, json!({ "id": mine, "r": 4 })).await.expect_code("UNAUTHENTICATED");

    let resp = app.client.query(Some(&alice_token), NPS, json!({ "s": 11 })).await;
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["extensions"]["field"], "score");
    let resp = app.client.query(Some(&alice_token), NPS, json!({ "s": 9, "c": "great" })).await;
    let answer = &resp.ok()["answerNps"];
    assert_eq!((answer["score"].as_i64(), answer["comment"].as_str()), (Some(9), Some("great")));
    let next = answer["nextAllowedAt"].as_str().expect("next").to_owned();
    let resp = app.client.query(Some(&alice_token), NPS, json!({ "s": 10 })).await;
    resp.expect_code("CONFLICT");
    let message = resp.errors()[0]["message"].as_str().expect("message").to_owned();
    assert!(message.contains(&next[..10]), "{message} should name {next}");
    // Another patron is not affected; staff may not answer.
    let bob_token = app.patron_token(uuid_of(&bob));
    app.client.query(Some(&bob_token), NPS, json!({ "s": 3 })).await.ok();
    app.client.query(Some(&app.staff_token()), NPS, json!({ "s": 3 })).await.expect_code("FORBIDDEN");
    app.client.query(None, NPS, json!({ "s": 3 })).await.expect_code("UNAUTHENTICATED");
}

/// Simultaneous answers from one patron: exactly one is recorded, the others are CONFLICT.
#[tokio::test]
async fn simultaneous_nps_answers_record_one() {
    let app = spawn_app().await;
    let carol = patron(&app, "FB-C").await;
    let token = app.patron_token(uuid_of(&carol));
    let answers = (0..8).map(|i| app.client.query(Some(&token), NPS, json!({ "s": i })));
    let responses = futures_util::future::join_all(answers).await;
    let recorded = responses.iter().filter(|r| r.errors().is_empty()).count();
    let conflicts = responses.iter().filter(|r| r.error_code().as_deref() == Some("CONFLICT")).count();
    assert_eq!((recorded, conflicts), (1, 7), "{:?}", responses.iter().map(|r| &r.body).collect::<Vec<_>>());
}
