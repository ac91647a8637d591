//! Interactions: recording one and in idempotent all-or-nothing batches, every filter,
//! pagination both ways, nested connections, and the role rules (staff notes included).

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use rapport::{
    auth::Scope,
    graphql::ids::{NodeKind, decode_global_id, to_global_id},
};
use rapport_tests::{GqlResponse, TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

const FIELDS: &str = "id patronType kind channel occurredAt branch staffMember rating comment source externalId
    createdAt updatedAt service { code } patron { name }";

const RECORD: &str = "mutation($i: RecordInteractionInput!) {
    recordInteraction(input: $i) { id patronType kind channel occurredAt branch staffMember rating comment
        staffNotes source externalId createdAt service { code } patron { name } }
}";

const BATCH: &str = "mutation($i: RecordInteractionsInput!) {
    recordInteractions(input: $i) { created alreadyPresent results { index created interaction { id externalId } } }
}";

const LIST: &str = "query($first: Int, $after: String, $last: Int, $before: String,
                          $filter: InteractionsFilter, $order: InteractionOrder) {
    interactions(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
        totalCount
        edges { cursor node { id externalId occurredAt } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&async_graphql::ID(gid.to_owned())).expect("a global id").1
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[track_caller]
fn expect_field(resp: &GqlResponse, code: &str, field: &str) {
    resp.expect_code(code);
    assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{:#}", resp.body);
}

/// Create a service as staff; returns its global id.
async fn service(app: &TestApp, code: &str) -> String {
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

/// Create a patron as staff; returns its global id.
async fn patron(app: &TestApp, card: &str, name: &str, patron_type: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
            json!({ "i": { "cardNumber": card, "name": name, "patronType": patron_type } }),
        )
        .await;
    str_at(resp.ok(), "/createPatron/id").to_owned()
}

async fn record(app: &TestApp, token: &str, input: Value) -> GqlResponse {
    app.client.query(Some(token), RECORD, json!({ "i": input })).await
}

async fn batch(app: &TestApp, token: &str, items: &[Value]) -> GqlResponse {
    app.client.query(Some(token), BATCH, json!({ "i": { "interactions": items } })).await
}

async fn list(app: &TestApp, token: &str, vars: Value) -> GqlResponse {
    app.client.query(Some(token), LIST, vars).await
}

async fn total(app: &TestApp, filter: Value) -> u64 {
    let resp = list(app, &app.staff_token(), json!({ "first": 1, "filter": filter })).await;
    resp.ok()["interactions"]["totalCount"].as_u64().expect("totalCount")
}

fn external_ids(resp: &GqlResponse) -> Vec<String> {
    resp.ok()["interactions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["externalId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn page_info(resp: &GqlResponse) -> (bool, bool) {
    let info = &resp.ok()["interactions"]["pageInfo"];
    (info["hasNextPage"].as_bool().unwrap(), info["hasPreviousPage"].as_bool().unwrap())
}

fn cursor(resp: &GqlResponse, which: &str) -> String {
    str_at(resp.ok(), &format!("/interactions/pageInfo/{which}")).to_owned()
}

/// A synced interaction `n` minutes before `base`.
fn item(patron: &str, service: &str, source: &str, n: i64, base: DateTime<Utc>) -> Value {
    json!({
        "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": "IN_PERSON",
        "occurredAt": time(base - Duration::minutes(n)), "source": source, "externalId": format!("e-{n:04}"),
    })
}

#[tokio::test]
async fn record_one_and_read_it_back() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "REF").await;
    let ada = patron(&app, "LIB-0001", "Ada Lovelace", "FACULTY").await;
    let at = (Utc::now() - Duration::hours(2)).trunc_subsecs(6);
    let resp = record(
        &app,
        &staff,
        json!({
            "patronId": ada, "serviceId": svc, "patronType": "CHILD", "kind": "REFERENCE_QUESTION",
            "channel": "CHAT", "occurredAt": time(at), "branch": " Main ", "staffMember": "Grace",
            "rating": 5, "comment": "Very helpful", "staffNotes": "Follow up on thesis",
            "source": "chat-tool", "externalId": "c-1",
        }),
    )
    .await;
    let node = resp.ok()["recordInteraction"].clone();
    // The patron's type is snapshotted; the input's type only applies to walk-ins.
    assert_eq!(node["patronType"], "FACULTY");
    assert_eq!(node["kind"], "REFERENCE_QUESTION");
    assert_eq!(node["channel"], "CHAT");
    assert_eq!(node["occurredAt"].as_str().map(|t| t.parse::<DateTime<Utc>>().unwrap()), Some(at));
    assert_eq!(node["branch"], "Main");
    assert_eq!(node["staffMember"], "Grace");
    assert_eq!(node["rating"], 5);
    assert_eq!(node["comment"], "Very helpful");
    assert_eq!(node["staffNotes"], "Follow up on thesis");
    assert_eq!(node["source"], "chat-tool");
    assert_eq!(node["externalId"], "c-1");
    assert_eq!(node["service"]["code"], "REF");
    assert_eq!(node["patron"]["name"], "Ada Lovelace");
    let id = node["id"].as_str().unwrap().to_owned();
    assert_eq!(decode_global_id(&async_graphql::ID(id.clone())).map(|(k, _)| k), Some(NodeKind::Interaction));

    // Read back by id and through `node`: the same values.
    let q = format!("query($id: ID!) {{ interaction(id: $id) {{ {FIELDS} }} }}");
    let resp = app.client.query(Some(&staff), &q, json!({ "id": id })).await;
    let read = &resp.ok()["interaction"];
    for field in ["id", "patronType", "kind", "channel", "occurredAt", "branch", "rating", "createdAt"] {
        assert_eq!(read[field], node[field], "{field}");
    }
    let resp = app
        .client
        .query(
            Some(&staff),
            "query($id: ID!) { node(id: $id) { id ... on Interaction { kind } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(resp.ok()["node"]["kind"], "REFERENCE_QUESTION");

    // A repeat with the same (source, externalId) writes nothing and returns the stored row.
    let resp = record(
        &app,
        &staff,
        json!({ "patronId": ada, "serviceId": svc, "kind": "VISIT", "channel": "WEB", "source": "chat-tool", "externalId": "c-1" }),
    )
    .await;
    assert_eq!(resp.ok()["recordInteraction"]["id"], id.as_str());
    assert_eq!(resp.ok()["recordInteraction"]["kind"], "REFERENCE_QUESTION");
    assert_eq!(total(&app, json!({})).await, 1);

    // Unknown and malformed ids.
    let missing = to_global_id(NodeKind::Interaction, Uuid::now_v7());
    let resp = app.client.query(Some(&staff), &q, json!({ "id": missing })).await;
    resp.expect_code("NOT_FOUND");
    let resp = app.client.query(Some(&staff), &q, json!({ "id": svc })).await;
    expect_field(&resp, "BAD_USER_INPUT", "id");
}

#[tokio::test]
async fn walk_ins_need_a_patron_type_and_have_no_patron() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "EVENTS").await;
    let resp =
        record(&app, &staff, json!({ "serviceId": svc, "kind": "EVENT_ATTENDANCE", "channel": "IN_PERSON" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.patronType");
    let resp = record(
        &app,
        &staff,
        json!({ "serviceId": svc, "kind": "EVENT_ATTENDANCE", "channel": "IN_PERSON", "patronType": "CHILD" }),
    )
    .await;
    let node = &resp.ok()["recordInteraction"];
    assert_eq!(node["patronType"], "CHILD");
    assert!(node["patron"].is_null());
    // Defaults to now.
    let at: DateTime<Utc> = node["occurredAt"].as_str().unwrap().parse().unwrap();
    assert!((Utc::now() - at).num_seconds().abs() < 60);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "LOANS").await;
    let ada = patron(&app, "LIB-0001", "Ada", "PUBLIC").await;
    let base = json!({ "patronId": ada, "serviceId": svc, "kind": "LOAN", "channel": "IN_PERSON" });
    let with = |extra: Value| {
        let mut v = base.clone();
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    };
    let long = |n: usize| "x".repeat(n);
    let cases = [
        (json!({ "rating": 0 }), "input.rating"),
        (json!({ "rating": 6 }), "input.rating"),
        (json!({ "occurredAt": time(Utc::now() + Duration::minutes(30)) }), "input.occurredAt"),
        (json!({ "comment": long(2_001) }), "input.comment"),
        (json!({ "staffNotes": long(5_001) }), "input.staffNotes"),
        (json!({ "branch": long(101) }), "input.branch"),
        (json!({ "staffMember": long(201) }), "input.staffMember"),
        (json!({ "source": "lms" }), "input.externalId"),
        (json!({ "externalId": "x-1" }), "input.source"),
        (json!({ "source": long(201), "externalId": "x" }), "input.source"),
        (json!({ "source": "lms", "externalId": long(201) }), "input.externalId"),
        (json!({ "patronId": to_global_id(NodeKind::Patron, Uuid::now_v7()) }), "input.patronId"),
        (json!({ "serviceId": to_global_id(NodeKind::Service, Uuid::now_v7()) }), "input.serviceId"),
        (json!({ "patronId": svc }), "input.patronId"),
        (json!({ "serviceId": "garbage" }), "input.serviceId"),
    ];
    for (extra, field) in cases {
        let resp = record(&app, &staff, with(extra.clone())).await;
        expect_field(&resp, "BAD_USER_INPUT", field);
    }
    // Within the limits, it records; a little clock drift is tolerated.
    let ok = with(json!({ "comment": long(2_000), "occurredAt": time(Utc::now() + Duration::minutes(2)) }));
    record(&app, &staff, ok).await.ok();
    assert_eq!(total(&app, json!({})).await, 1);
}

#[tokio::test]
async fn batches_are_idempotent_on_source_and_external_id() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "ERES").await;
    let ada = patron(&app, "LIB-0001", "Ada", "ONLINE_LEARNER").await;
    let base = Utc::now();
    let items: Vec<Value> = (0..500).map(|n| item(&ada, &svc, "lms", n, base)).collect();

    let resp = batch(&app, &staff, &items).await;
    let first = resp.ok()["recordInteractions"].clone();
    assert_eq!(first["created"], 500);
    assert_eq!(first["alreadyPresent"], 0);
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
        assert_eq!(r["created"], true);
        assert_eq!(r["interaction"]["externalId"], format!("e-{i:04}"));
    }
    assert_eq!(total(&app, json!({})).await, 500);

    // The same batch again: nothing created, every item already present with its stored id.
    let resp = batch(&app, &staff, &items).await;
    let again = resp.ok()["recordInteractions"].clone();
    assert_eq!(again["created"], 0);
    assert_eq!(again["alreadyPresent"], 500);
    for (a, b) in again["results"].as_array().unwrap().iter().zip(results) {
        assert_eq!(a["created"], false);
        assert_eq!(a["interaction"]["id"], b["interaction"]["id"]);
    }
    assert_eq!(total(&app, json!({})).await, 500);

    // A mix of old and new keys, a repeat inside the batch, and rows without keys.
    let mut mixed: Vec<Value> = (495..505).map(|n| item(&ada, &svc, "lms", n, base)).collect();
    mixed.push(item(&ada, &svc, "lms", 504, base));
    mixed.push(item(&ada, &svc, "other-system", 1, base));
    let mut keyless = item(&ada, &svc, "lms", 0, base);
    keyless.as_object_mut().unwrap().retain(|k, _| k != "source" && k != "externalId");
    mixed.push(keyless.clone());
    mixed.push(keyless);
    let resp = batch(&app, &staff, &mixed).await;
    let out = &resp.ok()["recordInteractions"];
    assert_eq!(out["created"], 5 + 1 + 2);
    assert_eq!(out["alreadyPresent"], 5 + 1);
    let results = out["results"].as_array().unwrap();
    assert_eq!(results[9]["created"], true);
    assert_eq!(results[10]["created"], false, "a repeat within the batch is already present");
    assert_eq!(results[10]["interaction"]["id"], results[9]["interaction"]["id"]);
    assert_eq!(total(&app, json!({})).await, 508);

    // An empty batch is fine.
    let resp = batch(&app, &staff, &[]).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 0);
}

#[tokio::test]
async fn concurrent_retries_of_a_batch_create_no_duplicates() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "ILL").await;
    let ada = patron(&app, "LIB-0001", "Ada", "PUBLIC").await;
    let base = Utc::now();
    let items: Vec<Value> = (0..200).map(|n| item(&ada, &svc, "sync", n, base)).collect();
    let calls = (0..4).map(|_| batch(&app, &staff, &items));
    let responses = futures_util::future::join_all(calls).await;
    let mut created = 0;
    for resp in &responses {
        let out = &resp.ok()["recordInteractions"];
        assert_eq!(out["created"].as_u64().unwrap() + out["alreadyPresent"].as_u64().unwrap(), 200);
        created += out["created"].as_u64().unwrap();
    }
    assert_eq!(created, 200, "each key is created exactly once across concurrent calls");
    assert_eq!(total(&app, json!({})).await, 200);
}

#[tokio::test]
async fn a_bad_row_rejects_the_whole_batch() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "WRITING").await;
    let ada = patron(&app, "LIB-0001", "Ada", "PUBLIC").await;
    let base = Utc::now();
    let good: Vec<Value> = (0..50).map(|n| item(&ada, &svc, "lms", n, base)).collect();

    let mut items = good.clone();
    items[37]["serviceId"] = json!(to_global_id(NodeKind::Service, Uuid::now_v7()));
    let resp = batch(&app, &staff, &items).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.interactions[37].serviceId");

    let mut items = good.clone();
    items[3]["rating"] = json!(9);
    let resp = batch(&app, &staff, &items).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.interactions[3].rating");

    let mut items = good.clone();
    items[12]["patronId"] = json!(to_global_id(NodeKind::Patron, Uuid::now_v7()));
    let resp = batch(&app, &staff, &items).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.interactions[12].patronId");

    let mut items = good.clone();
    items[49]["patronId"] = json!("not-an-id");
    let resp = batch(&app, &staff, &items).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.interactions[49].patronId");
    assert_eq!(total(&app, json!({})).await, 0, "nothing from a rejected batch is stored");

    // 1001 items are refused before anything is looked at; 1000 is fine.
    let many: Vec<Value> = (0..1001).map(|n| item(&ada, &svc, "bulk", n, base)).collect();
    let resp = batch(&app, &staff, &many).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.interactions");
    assert_eq!(total(&app, json!({})).await, 0);
    let resp = batch(&app, &staff, &many[..1000]).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 1000);
}

/// Seed a small, varied history; returns (ada, bob, ref service, loans service, base time).
async fn seed_varied(app: &TestApp) -> (String, String, String, String, DateTime<Utc>) {
    let staff = app.staff_token();
    let reference = service(app, "REF").await;
    let loans = service(app, "LOANS").await;
    let ada = patron(app, "LIB-0001", "Ada", "FACULTY").await;
    let bob = patron(app, "LIB-0002", "Bob", "ALUMNI").await;
    let base = (Utc::now() - Duration::days(1)).date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let row = |id: &str, who: &str, svc: &str, kind: &str, channel: &str, hours: i64, branch: Value, rating: Value| {
        json!({ "patronId": who, "serviceId": svc, "kind": kind, "channel": channel,
                "occurredAt": time(base - Duration::hours(hours)), "branch": branch, "rating": rating,
                "source": "seed", "externalId": id })
    };
    let items = vec![
        row("a1", &ada, &reference, "REFERENCE_QUESTION", "CHAT", 1, json!("Main"), json!(5)),
        row("a2", &ada, &loans, "LOAN", "IN_PERSON", 2, json!("Main"), Value::Null),
        row("a3", &ada, &loans, "LOAN", "WEB", 3, json!("East"), json!(3)),
        row("b1", &bob, &reference, "CONSULTATION", "PHONE", 4, json!("East"), Value::Null),
        row("b2", &bob, &loans, "LOAN", "IN_PERSON", 5, Value::Null, json!(4)),
        row("b3", &bob, &reference, "REFERENCE_QUESTION", "EMAIL", 6, json!("Main"), Value::Null),
    ];
    batch(app, &staff, &items).await.ok();
    (ada, bob, reference, loans, base)
}

#[tokio::test]
async fn every_filter_selects_the_right_rows() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let (ada, bob, reference, loans, base) = seed_varied(&app).await;
    let ids = |filter: Value| {
        let app = &app;
        let staff = staff.clone();
        async move {
            let resp = list(app, &staff, json!({ "first": 50, "filter": filter })).await;
            let mut ids = external_ids(&resp);
            ids.sort();
            ids
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(ids(json!({})).await, s(&["a1", "a2", "a3", "b1", "b2", "b3"]));
    assert_eq!(ids(json!({ "patronId": ada })).await, s(&["a1", "a2", "a3"]));
    assert_eq!(ids(json!({ "patronId": bob, "serviceId": reference })).await, s(&["b1", "b3"]));
    assert_eq!(ids(json!({ "serviceId": loans })).await, s(&["a2", "a3", "b2"]));
    assert_eq!(ids(json!({ "kinds": ["LOAN"] })).await, s(&["a2", "a3", "b2"]));
    assert_eq!(ids(json!({ "kinds": ["CONSULTATION", "REFERENCE_QUESTION"] })).await, s(&["a1", "b1", "b3"]));
    assert_eq!(ids(json!({ "channels": ["IN_PERSON"] })).await, s(&["a2", "b2"]));
    assert_eq!(ids(json!({ "channels": ["CHAT", "EMAIL"] })).await, s(&["a1", "b3"]));
    assert_eq!(ids(json!({ "branch": "Main" })).await, s(&["a1", "a2", "b3"]));
    assert_eq!(ids(json!({ "branch": "East", "kinds": ["LOAN"] })).await, s(&["a3"]));
    assert_eq!(ids(json!({ "hasRating": true })).await, s(&["a1", "a3", "b2"]));
    assert_eq!(ids(json!({ "hasRating": false })).await, s(&["a2", "b1", "b3"]));
    // Half-open time range: [from, to).
    let range =
        json!({ "occurredFrom": time(base - Duration::hours(5)), "occurredTo": time(base - Duration::hours(2)) });
    assert_eq!(ids(range).await, s(&["a3", "b1", "b2"]));
    assert_eq!(ids(json!({ "occurredFrom": time(base - Duration::hours(1)) })).await, s(&["a1"]));
    assert_eq!(ids(json!({ "occurredTo": time(base - Duration::hours(5)) })).await, s(&["b3"]));
    assert_eq!(total(&app, json!({ "kinds": ["LOAN"], "patronId": bob })).await, 1);

    let resp = list(
        &app,
        &staff,
        json!({ "filter": { "occurredFrom": time(base), "occurredTo": time(base - Duration::hours(1)) } }),
    )
    .await;
    expect_field(&resp, "BAD_USER_INPUT", "filter.occurredTo");
    let resp = list(&app, &staff, json!({ "filter": { "patronId": reference } })).await;
    expect_field(&resp, "BAD_USER_INPUT", "filter.patronId");

    // The same filters work on nested connections.
    let q = "query($id: ID!) { patron(id: $id) {
        interactions(filter: { kinds: [LOAN] }) { totalCount edges { node { kind service { code } } } }
    } }";
    let resp = app.client.query(Some(&staff), q, json!({ "id": ada })).await;
    let nested = &resp.ok()["patron"]["interactions"];
    assert_eq!(nested["totalCount"], 2);
    assert!(nested["edges"].as_array().unwrap().iter().all(|e| e["node"]["service"]["code"] == "LOANS"));
    let q = "query($id: ID!) { service(id: $id) {
        interactions(filter: { hasRating: true }) { totalCount edges { node { rating patron { name } } } }
    } }";
    let resp = app.client.query(Some(&staff), q, json!({ "id": reference })).await;
    let nested = &resp.ok()["service"]["interactions"];
    assert_eq!(nested["totalCount"], 1);
    assert_eq!(nested["edges"][0]["node"]["patron"]["name"], "Ada");
}

#[tokio::test]
async fn pagination_walks_both_ways_and_stays_stable() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "REF").await;
    let ada = patron(&app, "LIB-0001", "Ada", "PUBLIC").await;
    let base = Utc::now() - Duration::hours(1);
    // 25 rows; pairs share a time so the id has to break ties.
    let items: Vec<Value> = (0..25)
        .map(|n| {
            let mut v = item(&ada, &svc, "lms", n, base);
            v["occurredAt"] = json!(time(base - Duration::minutes(n / 2)));
            v
        })
        .collect();
    batch(&app, &staff, &items).await.ok();
    let everything = external_ids(&list(&app, &staff, json!({ "first": 100 })).await);
    assert_eq!(everything.len(), 25);

    // Forward, newest first, in pages of 10.
    let mut forward = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let resp = list(&app, &staff, json!({ "first": 10, "after": after })).await;
        forward.extend(external_ids(&resp));
        pages += 1;
        let (next, previous) = page_info(&resp);
        assert_eq!(previous, after.is_some());
        if !next {
            break;
        }
        after = Some(cursor(&resp, "endCursor"));
        // A newer row arriving mid-walk does not shift later pages.
        if pages == 1 {
            record(&app, &staff, json!({ "patronId": ada, "serviceId": svc, "kind": "VISIT", "channel": "WEB" }))
                .await
                .ok();
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(forward, everything);

    // Backward from the end with `last`/`before` gives the same order.
    let mut backward: Vec<String> = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let resp = list(
            &app,
            &staff,
            json!({ "last": 10, "before": before, "filter": { "occurredTo": time(base + Duration::seconds(1)) } }),
        )
        .await;
        let mut page = external_ids(&resp);
        page.extend(backward);
        backward = page;
        let (next, previous) = page_info(&resp);
        assert_eq!(next, before.is_some());
        if !previous {
            break;
        }
        before = Some(cursor(&resp, "startCursor"));
    }
    assert_eq!(backward, everything);

    // Oldest first.
    let resp = list(&app, &staff, json!({ "first": 100, "order": { "direction": "ASC" }, "filter": { "occurredTo": time(base + Duration::seconds(1)) } })).await;
    let mut reversed = everything.clone();
    reversed.reverse();
    assert_eq!(external_ids(&resp), reversed);

    // Page-size and cursor checks.
    let resp = list(&app, &staff, json!({ "first": 101 })).await;
    expect_field(&resp, "BAD_USER_INPUT", "first");
    let resp = list(&app, &staff, json!({ "first": 5, "after": "bogus" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "after");
    let resp = list(&app, &staff, json!({ "first": 0 })).await;
    assert_eq!(resp.ok()["interactions"]["edges"].as_array().unwrap().len(), 0);

    // Nested connections page with `after` and `before` too.
    let q = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String, $to: DateTime) {
        patron(id: $id) { interactions(first: $first, after: $after, last: $last, before: $before,
                                       filter: { occurredTo: $to }) {
            edges { node { externalId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
    let to = time(base + Duration::seconds(1));
    let mut nested = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let resp = app.client.query(Some(&staff), q, json!({ "id": ada, "first": 7, "after": after, "to": to })).await;
        let conn = &resp.ok()["patron"]["interactions"];
        nested.extend(
            conn["edges"].as_array().unwrap().iter().map(|e| e["node"]["externalId"].as_str().unwrap().to_owned()),
        );
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(nested, everything);
    let resp = app.client.query(Some(&staff), q, json!({ "id": ada, "last": 4, "to": to })).await;
    let conn = &resp.ok()["patron"]["interactions"];
    let last_four: Vec<String> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["externalId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(last_four, everything[21..]);
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
    let before = conn["pageInfo"]["startCursor"].as_str().unwrap().to_owned();
    let resp = app.client.query(Some(&staff), q, json!({ "id": ada, "last": 4, "before": before, "to": to })).await;
    let conn = &resp.ok()["patron"]["interactions"];
    let prior: Vec<String> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["externalId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(prior, everything[17..21]);
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn staff_notes_are_for_staff_only() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "REF").await;
    let ada = patron(&app, "LIB-0001", "Ada", "PUBLIC").await;
    let resp = record(
        &app,
        &staff,
        json!({ "patronId": ada, "serviceId": svc, "kind": "CONSULTATION", "channel": "IN_PERSON", "staffNotes": "private" }),
    )
    .await;
    let id = resp.ok()["recordInteraction"]["id"].as_str().unwrap().to_owned();
    let q = "query($id: ID!) { interaction(id: $id) { kind staffNotes } }";
    let resp = app.client.query(Some(&app.admin_token()), q, json!({ "id": id })).await;
    assert_eq!(resp.ok()["interaction"]["staffNotes"], "private");

    let partner = app.partner_token(&[Scope::InteractionsRead, Scope::InteractionsWrite, Scope::PatronsRead]);
    for token in [partner.clone(), app.patron_token(uuid_of(&ada))] {
        let resp = app.client.query(Some(&token), q, json!({ "id": id })).await;
        resp.expect_code("FORBIDDEN");
        assert_eq!(resp.errors()[0]["path"], json!(["interaction", "staffNotes"]), "{:#}", resp.body);
        // The rest of the interaction is still there; only the field is refused.
        let resp = app
            .client
            .query(Some(&token), "query($id: ID!) { interaction(id: $id) { kind } }", json!({ "id": id }))
            .await;
        assert_eq!(resp.ok()["interaction"]["kind"], "CONSULTATION");
    }
    // Partners may record interactions, but not write staff notes.
    let resp = record(
        &app,
        &partner,
        json!({ "patronId": ada, "serviceId": svc, "kind": "VISIT", "channel": "WEB", "staffNotes": "sneaky" }),
    )
    .await;
    resp.expect_code("FORBIDDEN");
    let resp = app
        .client
        .query(
            Some(&partner),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { kind } }",
            json!({ "i": { "patronId": ada, "serviceId": svc, "kind": "VISIT", "channel": "WEB" } }),
        )
        .await;
    assert_eq!(resp.ok()["recordInteraction"]["kind"], "VISIT");
}

#[tokio::test]
async fn patrons_see_only_their_own_interactions() {
    let app = spawn_app().await;
    let (ada, bob, reference, _loans, _) = seed_varied(&app).await;
    let ada_token = app.patron_token(uuid_of(&ada));
    let resp = list(&app, &ada_token, json!({ "first": 50 })).await;
    let mut own = external_ids(&resp);
    own.sort();
    assert_eq!(own, ["a1", "a2", "a3"]);
    assert_eq!(resp.ok()["interactions"]["totalCount"], 3);
    let resp = list(&app, &ada_token, json!({ "filter": { "patronId": ada } })).await;
    assert_eq!(external_ids(&resp).len(), 3);

    let resp = list(&app, &ada_token, json!({ "filter": { "patronId": bob } })).await;
    resp.expect_code("FORBIDDEN");

    // Another patron's interaction by id is refused; their own is fine, patron included.
    let bobs = list(&app, &app.staff_token(), json!({ "first": 1, "filter": { "patronId": bob } })).await;
    let bob_interaction = str_at(bobs.ok(), "/interactions/edges/0/node/id").to_owned();
    let q = "query($id: ID!) { interaction(id: $id) { id patron { name } service { code } } }";
    let resp = app.client.query(Some(&ada_token), q, json!({ "id": bob_interaction })).await;
    resp.expect_code("FORBIDDEN");
    let resp = app
        .client
        .query(Some(&ada_token), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": bob_interaction }))
        .await;
    resp.expect_code("FORBIDDEN");
    let adas = list(&app, &ada_token, json!({ "first": 1 })).await;
    let ada_interaction = str_at(adas.ok(), "/interactions/edges/0/node/id").to_owned();
    let resp = app.client.query(Some(&ada_token), q, json!({ "id": ada_interaction })).await;
    assert_eq!(resp.ok()["interaction"]["patron"]["name"], "Ada");

    // Nested under a service, a patron still sees only their own rows.
    let q = "query($id: ID!) { service(id: $id) { interactions { totalCount edges { node { externalId } } } } }";
    let resp = app.client.query(Some(&ada_token), q, json!({ "id": reference })).await;
    assert_eq!(resp.ok()["service"]["interactions"]["totalCount"], 1);
    assert_eq!(resp.ok()["service"]["interactions"]["edges"][0]["node"]["externalId"], "a1");

    // Patrons do not record interactions.
    let resp =
        record(&app, &ada_token, json!({ "patronId": ada, "serviceId": reference, "kind": "VISIT", "channel": "WEB" }))
            .await;
    resp.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn partners_need_the_interactions_scopes() {
    let app = spawn_app().await;
    let (ada, _bob, reference, _loans, _) = seed_varied(&app).await;
    let input = json!({ "patronId": ada, "serviceId": reference, "kind": "VISIT", "channel": "WEB" });

    let reader = app.partner_token(&[Scope::InteractionsRead]);
    let resp = list(&app, &reader, json!({ "first": 50 })).await;
    assert_eq!(external_ids(&resp).len(), 6);
    let resp = batch(&app, &reader, std::slice::from_ref(&input)).await;
    resp.expect_code("FORBIDDEN");
    let resp = app
        .client
        .query(
            Some(&reader),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    resp.expect_code("FORBIDDEN");

    // Without patrons:read, the patron of an interaction is refused (on that field only).
    let resp = app
        .client
        .query(Some(&reader), "{ interactions(first: 1) { edges { node { kind patron { name } } } } }", json!({}))
        .await;
    resp.expect_code("FORBIDDEN");
    assert_eq!(resp.errors()[0]["path"][4], "patron", "{:#}", resp.body);
    let both = app.partner_token(&[Scope::InteractionsRead, Scope::PatronsRead]);
    let resp = app
        .client
        .query(Some(&both), "{ interactions(first: 1) { edges { node { patron { name } } } } }", json!({}))
        .await;
    resp.ok();

    let writer = app.partner_token(&[Scope::InteractionsWrite]);
    let resp = batch(&app, &writer, std::slice::from_ref(&input)).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 1);
    let resp = list(&app, &writer, json!({ "first": 50 })).await;
    assert_eq!(external_ids(&resp).len(), 7, "a write scope implies reading");

    let other = app.partner_token(&[Scope::PatronsRead, Scope::ServicesWrite]);
    list(&app, &other, json!({})).await.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn anonymous_and_funders_are_refused() {
    let app = spawn_app().await;
    let (ada, _bob, reference, _loans, _) = seed_varied(&app).await;
    let some_interaction =
        str_at(list(&app, &app.staff_token(), json!({ "first": 1 })).await.ok(), "/interactions/edges/0/node/id")
            .to_owned();
    let input = json!({ "patronId": ada, "serviceId": reference, "kind": "VISIT", "channel": "WEB" });
    let funder = app.funder_token(Uuid::now_v7());
    for (token, code) in [(None, "UNAUTHENTICATED"), (Some(funder.as_str()), "FORBIDDEN")] {
        let resp = app.client.query(token, LIST, json!({})).await;
        resp.expect_code(code);
        let resp = app
            .client
            .query(token, "query($id: ID!) { interaction(id: $id) { id } }", json!({ "id": some_interaction }))
            .await;
        resp.expect_code(code);
        let resp = app.client.query(token, RECORD, json!({ "i": input })).await;
        resp.expect_code(code);
        let resp = app.client.query(token, BATCH, json!({ "i": { "interactions": [input] } })).await;
        resp.expect_code(code);
        // Even with garbage ids, the caller learns first that they may not write.
        let resp = app
            .client
            .query(
                token,
                BATCH,
                json!({ "i": { "interactions": [{ "serviceId": "x", "kind": "VISIT", "channel": "WEB" }] } }),
            )
            .await;
        resp.expect_code(code);
    }
    assert_eq!(total(&app, json!({})).await, 6);
}

/// A patron's history keeps naming a service after it is retired; looking the retired service up
/// directly stays refused.
#[tokio::test]
async fn history_names_retired_services() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let svc = service(&app, "OLD-ILL").await;
    let who = patron(&app, "RET-1", "Rita Retired", "PUBLIC").await;
    let at = (Utc::now() - Duration::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let input = json!({ "patronId": who, "serviceId": svc, "kind": "LOAN", "channel": "IN_PERSON", "occurredAt": at });
    record(&app, &staff, input).await.ok();
    let retire = "mutation($i: UpdateServiceInput!) { updateService(input: $i) { active } }";
    app.client.query(Some(&staff), retire, json!({ "i": { "id": svc, "active": false } })).await.ok();

    let token = app.patron_token(decode_global_id(&async_graphql::ID(who.clone())).unwrap().1);
    let mine = "{ me { interactions(first: 5) { edges { node { service { code active } } } } } }";
    let resp = app.client.query(Some(&token), mine, json!({})).await;
    assert_eq!(
        resp.ok()["me"]["interactions"]["edges"][0]["node"]["service"],
        json!({ "code": "OLD-ILL", "active": false })
    );
    let direct =
        app.client.query(Some(&token), "query($id: ID!) { service(id: $id) { code } }", json!({ "id": svc })).await;
    direct.expect_code("FORBIDDEN");
}
