//! The audit trail: staff, admin and partner reads of patron records and interactions and every
//! write to patron data are recorded (one request id per request, one event per patron touched),
//! a patron reading their own data is not; only admins read the trail; queued events are
//! written on a graceful shutdown.

use std::collections::HashSet;

use chrono::{Duration, SecondsFormat, Utc};
use rapport::auth::Scope;
use rapport_tests::{GqlResponse, TestApp, spawn_app};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::consent::{UPDATE_MINE, create_patron, uuid_of};

pub(crate) const EVENTS: &str = "query($filter: AuditEventsFilter, $first: Int, $after: String) {
    auditEvents(filter: $filter, first: $first, after: $after) {
        totalCount
        edges { cursor node { id occurredAt actor actorRole action targetPatronId detail requestId } }
        pageInfo { hasNextPage endCursor }
    }
}";

/// Create a service as staff; returns its global id.
pub(crate) async fn create_service(app: &TestApp, code: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
            json!({ "i": { "code": code, "name": format!("Service {code}"), "category": "REFERENCE" } }),
        )
        .await;
    resp.ok()["createService"]["id"].as_str().expect("id").to_owned()
}

/// Record an interaction as staff; returns its global id.
pub(crate) async fn record_interaction(app: &TestApp, input: Value) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    resp.ok()["recordInteraction"]["id"].as_str().expect("id").to_owned()
}

/// Every audit event matching `filter`, newest first (after flushing the queue).
pub(crate) async fn audit_events(app: &TestApp, filter: Value) -> Vec<Value> {
    app.state.audit.flush().await;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let resp = app
            .client
            .query(Some(&app.admin_token()), EVENTS, json!({ "filter": filter, "first": 100, "after": after }))
            .await;
        let conn = resp.ok()["auditEvents"].clone();
        out.extend(conn["edges"].as_array().unwrap().iter().map(|e| e["node"].clone()));
        if conn["pageInfo"]["hasNextPage"] != true {
            return out;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}

fn actions_for(events: &[Value], target: &str) -> Vec<String> {
    let mut actions: Vec<String> = events
        .iter()
        .filter(|e| e["targetPatronId"] == target)
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    actions.sort();
    actions
}

/// Events recorded by one request, found by the request id of one of them.
fn same_request<'a>(events: &'a [Value], request_id: &Value) -> Vec<&'a Value> {
    events.iter().filter(|e| &e["requestId"] == request_id).collect()
}

async fn query(app: &TestApp, token: &str, query: &str, vars: Value) -> GqlResponse {
    app.client.query(Some(token), query, vars).await
}

#[tokio::test]
async fn staff_and_partner_access_is_recorded_but_not_a_patron_reading_themself() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let partner = app.partner_token(&[Scope::PatronsRead, Scope::InteractionsRead]);
    let svc = create_service(&app, "AUD").await;
    let ada = create_patron(&app, "AUD-0001", "Ada Audit", json!({})).await;
    let bob = create_patron(&app, "AUD-0002", "Bob Audit", json!({})).await;
    let at = (Utc::now() - Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Micros, true);
    for patron in [&ada, &ada, &bob] {
        record_interaction(
            &app,
            json!({ "patronId": patron, "serviceId": svc, "kind": "VISIT", "channel": "IN_PERSON", "occurredAt": at }),
        )
        .await;
    }
    // Writes so far: the creations and the recorded interactions, by staff.
    let events = audit_events(&app, json!({})).await;
    assert_eq!(actions_for(&events, &ada), vec!["CREATE_PATRON", "RECORD_INTERACTION", "RECORD_INTERACTION"]);
    assert_eq!(actions_for(&events, &bob), vec!["CREATE_PATRON", "RECORD_INTERACTION"]);
    assert!(events.iter().all(|e| e["actor"] == "staff-1" && e["actorRole"] == "STAFF"));
    let recorded: Vec<&Value> = events.iter().filter(|e| e["action"] == "RECORD_INTERACTION").collect();
    assert!(recorded.iter().all(|e| e["detail"] == "interactions recorded: 1"), "{recorded:#?}");
    let start = Utc::now();

    // A staff read of one record.
    query(&app, &staff, "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": ada })).await.ok();
    // A staff list page: one event per patron returned.
    query(&app, &staff, "{ patrons(first: 10) { edges { node { id } } } }", json!({})).await.ok();
    // A partner reading interactions, each with its patron: one READ_INTERACTIONS and one
    // READ_PATRON per patron, however many rows name them.
    let resp =
        query(&app, &partner, "{ interactions(first: 10) { edges { node { id patron { name } } } } }", json!({})).await;
    assert_eq!(resp.ok()["interactions"]["edges"].as_array().unwrap().len(), 3);
    // A nested connection and a `node` lookup by staff.
    let resp = query(
        &app,
        &staff,
        "query($id: ID!) { node(id: $id) { ... on Patron { interactions(first: 5) { edges { node { id } } } } } }",
        json!({ "id": bob }),
    )
    .await;
    let interaction = resp.ok()["node"]["interactions"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    query(&app, &staff, "query($id: ID!) { interaction(id: $id) { kind } }", json!({ "id": interaction })).await.ok();

    // The patron reading their own data leaves no trace.
    let ada_token = app.patron_token(uuid_of(&ada));
    let resp = query(
        &app,
        &ada_token,
        "{ me { name consents { purpose } consentHistory { totalCount } interactions { edges { node { id patron { name } } } } } }",
        json!({}),
    )
    .await;
    resp.ok();
    query(&app, &ada_token, "{ interactions(first: 5) { edges { node { id } } } }", json!({})).await.ok();

    let from = start.to_rfc3339_opts(SecondsFormat::Micros, true);
    let events = audit_events(&app, json!({ "from": from })).await;
    assert!(events.iter().all(|e| e["actorRole"] != "PATRON"), "patron self-reads are not audited: {events:#?}");
    let by = |actor: &str, action: &str, target: &str| {
        events.iter().filter(|e| e["actor"] == actor && e["action"] == action && e["targetPatronId"] == target).count()
    };
    assert_eq!(by("staff-1", "READ_PATRON", &ada), 1);
    assert_eq!(by("staff-1", "LIST_PATRONS", &ada), 1);
    assert_eq!(by("staff-1", "LIST_PATRONS", &bob), 1);
    assert_eq!(by("partner-1", "READ_INTERACTIONS", &ada), 1, "once per patron per request");
    assert_eq!(by("partner-1", "READ_INTERACTIONS", &bob), 1);
    assert_eq!(by("partner-1", "READ_PATRON", &ada), 1, "once per patron per request");
    assert_eq!(by("partner-1", "READ_PATRON", &bob), 1);
    assert_eq!(by("staff-1", "READ_PATRON", &bob), 1, "node(id:)");
    assert_eq!(by("staff-1", "READ_INTERACTIONS", &bob), 2, "nested connection, then interaction(id:)");
    assert!(events.iter().all(|e| e["actorRole"] == "STAFF" || e["actorRole"] == "PARTNER"));
    assert_eq!(events.len(), 10, "{events:#?}");

    // Events of one request share its id; different requests have different ids.
    let partner_events: Vec<&Value> = events.iter().filter(|e| e["actor"] == "partner-1").collect();
    assert_eq!(partner_events.len(), 4);
    assert_eq!(same_request(&events, &partner_events[0]["requestId"]).len(), 4);
    let request_ids: HashSet<String> = events.iter().map(|e| e["requestId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(request_ids.len(), 5, "one id per request: {request_ids:?}");

    // The id is the HTTP request's own, echoed as `X-Request-Id` (and in its log lines).
    let resp = query(&app, &staff, "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": ada })).await;
    resp.ok();
    let http_id = resp.header("x-request-id").expect("X-Request-Id");
    let events = audit_events(&app, json!({})).await;
    assert_eq!(same_request(&events, &json!(http_id)).len(), 1, "{http_id} in {events:#?}");

    // Writes are recorded for everyone, the patron included; details name fields, not values.
    let resp = query(
        &app,
        &staff,
        "mutation($i: UpdatePatronInput!) { updatePatron(input: $i) { id } }",
        json!({ "i": { "id": ada, "name": "Ada Renamed", "email": "ada.renamed@example.org",
                        "consents": [{ "purpose": "MARKETING_EMAIL", "granted": true }] } }),
    )
    .await;
    resp.ok();
    query(
        &app,
        &ada_token,
        UPDATE_MINE,
        json!({ "i": { "textVersion": "v9", "consents": [{ "purpose": "MARKETING_SMS", "granted": false }] } }),
    )
    .await
    .ok();
    let events =
        audit_events(&app, json!({ "targetPatronId": ada, "actions": ["UPDATE_PATRON", "UPDATE_CONSENT"] })).await;
    let summary: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actorRole"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("UPDATE_CONSENT".into(), "PATRON".into(), "source: APP; decisions recorded: 1".into()),
            ("UPDATE_CONSENT".into(), "STAFF".into(), "source: STAFF; decisions recorded: 1".into()),
            ("UPDATE_PATRON".into(), "STAFF".into(), "fields: name, email; consents recorded: 1".into()),
        ]
    );
    assert_eq!(events[0]["actor"], uuid_of(&ada).to_string());
}

#[tokio::test]
async fn the_trail_is_filtered_and_paged_for_admins_only() {
    let app = spawn_app().await;
    let ada = create_patron(&app, "AUD-0101", "Ada Filter", json!({})).await;
    let bob = create_patron(&app, "AUD-0102", "Bob Filter", json!({})).await;
    let partner = app.partner_token(&[Scope::PatronsRead]);
    for _ in 0..3 {
        query(&app, &partner, "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": ada })).await.ok();
    }
    let middle = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    query(&app, &partner, "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": bob })).await.ok();

    let all = audit_events(&app, json!({})).await;
    assert_eq!(all.len(), 6, "two creations, four reads");
    let times: Vec<String> = all.iter().map(|e| e["occurredAt"].as_str().unwrap().to_owned()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(times, sorted, "newest first");

    assert_eq!(audit_events(&app, json!({ "actor": "partner-1" })).await.len(), 4);
    assert_eq!(audit_events(&app, json!({ "actor": "staff-1" })).await.len(), 2);
    assert_eq!(audit_events(&app, json!({ "targetPatronId": ada })).await.len(), 4);
    assert_eq!(audit_events(&app, json!({ "action": "READ_PATRON", "targetPatronId": bob })).await.len(), 1);
    let at = middle.to_rfc3339_opts(SecondsFormat::Micros, true);
    assert_eq!(audit_events(&app, json!({ "from": at })).await.len(), 1);
    assert_eq!(audit_events(&app, json!({ "to": at })).await.len(), 5);

    // Pages of two, with a total.
    let admin = app.admin_token();
    let resp = query(&app, &admin, EVENTS, json!({ "first": 2, "filter": { "actor": "partner-1" } })).await;
    let conn = resp.ok()["auditEvents"].clone();
    assert_eq!(conn["totalCount"], 4);
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let resp = query(
        &app,
        &admin,
        EVENTS,
        json!({ "first": 2, "after": conn["pageInfo"]["endCursor"], "filter": { "actor": "partner-1" } }),
    )
    .await;
    let next = resp.ok()["auditEvents"].clone();
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let ids: HashSet<&str> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .chain(next["edges"].as_array().unwrap())
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);

    // Bad filters name the field.
    let resp = query(&app, &admin, EVENTS, json!({ "filter": { "targetPatronId": "nope" } })).await;
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["extensions"]["field"], "filter.targetPatronId");
    let resp = query(&app, &admin, EVENTS, json!({ "filter": { "from": at, "to": "2000-01-01T00:00:00Z" } })).await;
    resp.expect_code("BAD_USER_INPUT");

    // Admins only.
    app.client.query(None, EVENTS, json!({})).await.expect_code("UNAUTHENTICATED");
    let everything = app.partner_token(&Scope::ALL);
    for token in [app.staff_token(), app.patron_token(uuid_of(&ada)), app.funder_token(Uuid::now_v7()), everything] {
        query(&app, &token, EVENTS, json!({})).await.expect_code("FORBIDDEN");
    }
}

#[tokio::test]
async fn queued_events_are_written_on_shutdown() {
    let app = spawn_app().await;
    let ada = create_patron(&app, "AUD-0201", "Ada Shutdown", json!({})).await;
    let staff = app.staff_token();
    query(&app, &staff, "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": ada })).await.ok();
    // No flush: the drain on shutdown writes what is still queued.
    app.state.audit.shutdown().await;
    let count = |action: &'static str| {
        let db = app.state.db.clone();
        async move {
            let sql = format!("SELECT COUNT(*) AS n FROM audit_event WHERE action = '{action}'");
            let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
            rows[0].try_get::<i64>("", "n").unwrap()
        }
    };
    assert_eq!(count("READ_PATRON").await, 1);
    assert_eq!(count("CREATE_PATRON").await, 1);
    // After the writer stopped, events are written by the request itself: none is lost.
    query(&app, &staff, "{ patrons(first: 5) { edges { node { id } } } }", json!({})).await.ok();
    assert_eq!(count("LIST_PATRONS").await, 1);
}
