//! No N+1: the number of SQL statements of a nested query does not grow with the number of rows.
//! Counts come from the server's own statement counter (`/metrics`).

use chrono::{Duration, SecondsFormat, Utc};
use rapport_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

/// Statements the server ran to answer `query`, for each of three runs (the count must not
/// depend on the run either: batches are cut when the request goes quiet, not by a timer).
async fn statements_for(app: &TestApp, query: &str, variables: Value) -> (u64, Vec<u64>, Value) {
    let token = app.staff_token();
    let mut runs = Vec::new();
    let mut data = Value::Null;
    for _ in 0..3 {
        let before = app.sql_statements().await;
        let resp = app.client.query(Some(&token), query, variables.clone()).await;
        data = resp.ok().clone();
        runs.push(app.sql_statements().await - before);
    }
    (runs.iter().copied().min().unwrap_or_default(), runs, data)
}

/// `patrons` patrons and `services` services, each patron with `per_patron` interactions
/// spread over the services, recorded in batches.
async fn seed(app: &TestApp, patrons: usize, services: usize, per_patron: usize) {
    let staff = app.staff_token();
    let mut service_ids = Vec::new();
    for s in 0..services {
        let resp = app
            .client
            .query(
                Some(&staff),
                "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
                json!({ "i": { "code": format!("SVC-{s}"), "name": format!("Service {s}"), "category": "REFERENCE" } }),
            )
            .await;
        service_ids.push(resp.ok()["createService"]["id"].as_str().unwrap().to_owned());
    }
    let mut items = Vec::new();
    let base = Utc::now() - Duration::days(1);
    for p in 0..patrons {
        let resp = app
            .client
            .query(
                Some(&staff),
                "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
                json!({ "i": { "cardNumber": format!("CARD-{p:04}"), "name": format!("Patron {p}"), "patronType": "PUBLIC" } }),
            )
            .await;
        let patron = resp.ok()["createPatron"]["id"].as_str().unwrap().to_owned();
        for n in 0..per_patron {
            let at = base - Duration::minutes((p * per_patron + n) as i64);
            items.push(json!({
                "patronId": patron, "serviceId": service_ids[(p + n) % services], "kind": "VISIT",
                "channel": "IN_PERSON", "occurredAt": at.to_rfc3339_opts(SecondsFormat::Micros, true),
            }));
        }
    }
    for chunk in items.chunks(1000) {
        let resp = app
            .client
            .query(
                Some(&staff),
                "mutation($i: RecordInteractionsInput!) { recordInteractions(input: $i) { created } }",
                json!({ "i": { "interactions": chunk } }),
            )
            .await;
        assert_eq!(resp.ok()["recordInteractions"]["created"], chunk.len());
    }
}

fn edges(data: &Value, pointer: &str) -> usize {
    data.pointer(pointer).and_then(Value::as_array).map(Vec::len).unwrap_or_default()
}

/// Most statements a nested query may take, whatever its size.
const BOUND: u64 = 6;

#[track_caller]
fn check(what: &str, small: (u64, &[u64]), large: (u64, &[u64])) {
    println!("statements: {what}: small = {} {:?}, large = {} {:?}", small.0, small.1, large.0, large.1);
    let all: Vec<u64> = small.1.iter().chain(large.1).copied().collect();
    assert!(all.iter().all(|n| *n == small.0), "{what}: the statement count varies with the number of rows: {all:?}");
    assert!(small.0 <= BOUND, "{what}: too many statements: {}", small.0);
}

#[tokio::test]
async fn interactions_with_patron_and_service_take_constant_statements() {
    let app = spawn_app().await;
    seed(&app, 20, 5, 6).await;
    let query =
        "query($n: Int!) { interactions(first: $n) { edges { node { id patron { name } service { name } } } } }";
    let (small, small_runs, data) = statements_for(&app, query, json!({ "n": 10 })).await;
    assert_eq!(edges(&data, "/interactions/edges"), 10);
    let (large, large_runs, data) = statements_for(&app, query, json!({ "n": 100 })).await;
    assert_eq!(edges(&data, "/interactions/edges"), 100);
    check("interactions(first: 10 | 100) { patron service }", (small, &small_runs), (large, &large_runs));
}

#[tokio::test]
async fn patrons_with_their_latest_interactions_take_constant_statements() {
    let app = spawn_app().await;
    seed(&app, 50, 8, 12).await;
    let query = "query($n: Int!) { patrons(first: $n) { edges { node { name
        interactions(first: 10) { edges { node { id service { name } } } } } } } }";
    let (small, small_runs, data) = statements_for(&app, query, json!({ "n": 5 })).await;
    assert_eq!(edges(&data, "/patrons/edges"), 5);
    assert_eq!(edges(&data, "/patrons/edges/4/node/interactions/edges"), 10);
    let (large, large_runs, data) = statements_for(&app, query, json!({ "n": 50 })).await;
    assert_eq!(edges(&data, "/patrons/edges"), 50);
    assert!(data["patrons"]["edges"].as_array().unwrap().iter().all(|e| edges(e, "/node/interactions/edges") == 10));
    check("patrons(first: 5 | 50) { interactions(first: 10) { service } }", (small, &small_runs), (large, &large_runs));

    // With `totalCount` and a cursor on the nested connection: still constant.
    let query = "query($n: Int!) { patrons(first: $n) { edges { node { name
        interactions(first: 3) { totalCount pageInfo { endCursor } edges { node { id } } } } } } }";
    let (small, small_runs, _) = statements_for(&app, query, json!({ "n": 5 })).await;
    let (large, large_runs, data) = statements_for(&app, query, json!({ "n": 50 })).await;
    assert!(data["patrons"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["interactions"]["totalCount"] == 12));
    check("patrons(first: 5 | 50) { interactions { totalCount } }", (small, &small_runs), (large, &large_runs));

    // Services with their interactions batch the same way.
    let query = "query($n: Int!) { services(first: $n) { edges { node { name
        interactions(first: 5) { totalCount edges { node { patron { name } } } } } } } }";
    let (small, small_runs, _) = statements_for(&app, query, json!({ "n": 2 })).await;
    let (large, large_runs, data) = statements_for(&app, query, json!({ "n": 8 })).await;
    assert_eq!(edges(&data, "/services/edges"), 8);
    check("services(first: 2 | 8) { interactions { totalCount patron } }", (small, &small_runs), (large, &large_runs));
}
