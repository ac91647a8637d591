//! Segments: every rule part and their combinations on patrons with a known answer, members
//! paging, validation, erased patrons, `node`, and the segment size on the demo library.

use std::{collections::BTreeSet, time::Instant};

use chrono::{Duration, SecondsFormat, Utc};
use rapport::auth::Scope;
use rapport_tests::{TestApp, TestOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::{
    audit::{create_service, record_interaction},
    consent::create_patron,
};

pub(crate) const CREATE: &str = "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { id name size
    rule { patronTypes tags homeBranches lifecycleStages servicesUsed servicesNeverUsed lastActivityBefore
           lastActivityAfter consentTo consentToChannels } } }";
const SEGMENT: &str = "query($id: ID!, $after: String) { segment(id: $id) { id name size
    members(first: 2, after: $after) { totalCount edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }";

fn ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Create a segment as staff with `rule`; returns the created segment.
pub(crate) async fn create_segment(app: &TestApp, name: &str, rule: Value) -> Value {
    let resp = app.client.query(Some(&app.staff_token()), CREATE, json!({ "i": { "name": name, "rule": rule } })).await;
    resp.ok()["createSegment"].clone()
}

/// The member names of a rule (every page), checked against its size.
async fn members_of(app: &TestApp, rule: Value) -> BTreeSet<String> {
    let segment = create_segment(app, "probe", rule).await;
    let id = segment["id"].as_str().unwrap().to_owned();
    let mut names = BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let resp = app.client.query(Some(&app.staff_token()), SEGMENT, json!({ "id": id, "after": after })).await;
        let members = resp.ok()["segment"]["members"].clone();
        assert_eq!(members["totalCount"], segment["size"]);
        for edge in members["edges"].as_array().unwrap() {
            names.insert(edge["node"]["name"].as_str().unwrap().to_owned());
        }
        if members["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = members["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(names.len() as u64, segment["size"].as_u64().unwrap(), "{segment}");
    names
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

struct World {
    app: TestApp,
    service_a: String,
    service_b: String,
}

/// Six patrons with known answers (see each one), one of them erased.
async fn world() -> World {
    let app = spawn_app().await;
    let service_a = create_service(&app, "SEG-A").await;
    let service_b = create_service(&app, "SEG-B").await;
    let staff = app.staff_token();
    let used = |patron: &str, service: &str, days: i64| json!({ "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": "WEB", "occurredAt": ago(days) });
    let email = json!([{ "purpose": "MARKETING_EMAIL", "granted": true }]);
    // p1: online learner, distance, Online branch, used A 40 and 1 days ago (ACTIVE), email consent.
    let p1 = create_patron(
        &app,
        "SEG-0001",
        "P1 Ada",
        json!({ "patronType": "ONLINE_LEARNER", "tags": ["distance"], "homeBranch": "Online", "consents": email }),
    )
    .await;
    record_interaction(&app, used(&p1, &service_a, 40)).await;
    record_interaction(&app, used(&p1, &service_a, 1)).await;
    // p2: faculty, Main, used B 100 days ago (AT_RISK), no consent.
    let p2 = create_patron(&app, "SEG-0002", "P2 Bob", json!({ "patronType": "FACULTY", "homeBranch": "Main" })).await;
    record_interaction(&app, used(&p2, &service_b, 100)).await;
    // p3: public, vip, Main, used A 400 and B 200 days ago (LAPSED), SMS consent given then withdrawn.
    let p3 = create_patron(
        &app,
        "SEG-0003",
        "P3 Cy",
        json!({ "tags": ["vip"], "homeBranch": "Main", "consents": [{ "purpose": "MARKETING_SMS", "granted": true }] }),
    )
    .await;
    record_interaction(&app, used(&p3, &service_a, 400)).await;
    record_interaction(&app, used(&p3, &service_b, 200)).await;
    let withdraw = "mutation($i: UpdatePatronInput!) { updatePatron(input: $i) { id } }";
    let resp = app
        .client
        .query(
            Some(&staff),
            withdraw,
            json!({ "i": { "id": p3, "consents": [{ "purpose": "MARKETING_SMS", "granted": false }] } }),
        )
        .await;
    resp.ok();
    // p4: online learner, no interaction, new record (NEW), in-app consent.
    create_patron(
        &app,
        "SEG-0004",
        "P4 Di",
        json!({ "patronType": "ONLINE_LEARNER", "consents": [{ "purpose": "MARKETING_IN_APP", "granted": true }] }),
    )
    .await;
    // p5: would match almost everything, but is erased.
    let p5 = create_patron(
        &app,
        "SEG-0005",
        "P5 Ed",
        json!({ "patronType": "ONLINE_LEARNER", "tags": ["distance", "vip"], "homeBranch": "Main", "consents": email }),
    )
    .await;
    record_interaction(&app, used(&p5, &service_a, 2)).await;
    let erase = "mutation($id: ID!) { erasePatron(id: $id) { erased } }";
    app.client.query(Some(&app.admin_token()), erase, json!({ "id": p5 })).await.ok();
    // p6: faculty, Science, used A 50 and 10 days ago (ACTIVE), email consent given then withdrawn.
    let p6 = create_patron(
        &app,
        "SEG-0006",
        "P6 Fay",
        json!({ "patronType": "FACULTY", "homeBranch": "Science", "consents": email }),
    )
    .await;
    record_interaction(&app, used(&p6, &service_a, 50)).await;
    record_interaction(&app, used(&p6, &service_a, 10)).await;
    let resp = app
        .client
        .query(
            Some(&staff),
            withdraw,
            json!({ "i": { "id": p6, "consents": [{ "purpose": "MARKETING_EMAIL", "granted": false }] } }),
        )
        .await;
    resp.ok();
    World { app, service_a, service_b }
}

#[tokio::test]
async fn every_rule_part_and_combinations_select_the_known_members() {
    let w = world().await;
    let (a, b) = (w.service_a.as_str(), w.service_b.as_str());
    let all = set(&["P1 Ada", "P2 Bob", "P3 Cy", "P4 Di", "P6 Fay"]);
    let cases: Vec<(&str, Value, BTreeSet<String>)> = vec![
        ("empty rule: everyone but the erased", json!({}), all.clone()),
        ("patron types", json!({ "patronTypes": ["ONLINE_LEARNER"] }), set(&["P1 Ada", "P4 Di"])),
        ("tags, any of", json!({ "tags": ["distance", "vip"] }), set(&["P1 Ada", "P3 Cy"])),
        ("home branches", json!({ "homeBranches": ["Main", "Science"] }), set(&["P2 Bob", "P3 Cy", "P6 Fay"])),
        ("lifecycle ACTIVE", json!({ "lifecycleStages": ["ACTIVE"] }), set(&["P1 Ada", "P6 Fay"])),
        ("lifecycle NEW", json!({ "lifecycleStages": ["NEW"] }), set(&["P4 Di"])),
        ("lifecycle AT_RISK or LAPSED", json!({ "lifecycleStages": ["AT_RISK", "LAPSED"] }), set(&["P2 Bob", "P3 Cy"])),
        ("services used", json!({ "servicesUsed": [a] }), set(&["P1 Ada", "P3 Cy", "P6 Fay"])),
        ("services used, any of", json!({ "servicesUsed": [a, b] }), set(&["P1 Ada", "P2 Bob", "P3 Cy", "P6 Fay"])),
        ("services never used", json!({ "servicesNeverUsed": [a] }), set(&["P2 Bob", "P4 Di"])),
        ("services never used, none of", json!({ "servicesNeverUsed": [a, b] }), set(&["P4 Di"])),
        ("last activity before", json!({ "lastActivityBefore": ago(30) }), set(&["P2 Bob", "P3 Cy"])),
        ("last activity after", json!({ "lastActivityAfter": ago(30) }), set(&["P1 Ada", "P6 Fay"])),
        (
            "last activity between",
            json!({ "lastActivityAfter": ago(150), "lastActivityBefore": ago(30) }),
            set(&["P2 Bob"]),
        ),
        ("consent, latest decision", json!({ "consentTo": ["MARKETING_EMAIL"] }), set(&["P1 Ada"])),
        ("consent withdrawn", json!({ "consentToChannels": ["SMS"] }), set(&[])),
        ("consent by channel, any of", json!({ "consentToChannels": ["IN_APP", "EMAIL"] }), set(&["P1 Ada", "P4 Di"])),
        (
            "purposes and channels together",
            json!({ "consentTo": ["MARKETING_IN_APP"], "consentToChannels": ["EMAIL"] }),
            set(&["P1 Ada", "P4 Di"]),
        ),
        (
            "types AND services",
            json!({ "patronTypes": ["ONLINE_LEARNER", "FACULTY"], "servicesUsed": [a] }),
            set(&["P1 Ada", "P6 Fay"]),
        ),
        (
            "types AND services AND recent activity",
            json!({ "patronTypes": ["ONLINE_LEARNER", "FACULTY"], "servicesUsed": [a], "lastActivityAfter": ago(5) }),
            set(&["P1 Ada"]),
        ),
        (
            "branch AND stage AND never used",
            json!({ "homeBranches": ["Main"], "lifecycleStages": ["LAPSED", "AT_RISK"], "servicesNeverUsed": [a] }),
            set(&["P2 Bob"]),
        ),
        (
            "consent AND type excludes everyone",
            json!({ "consentTo": ["MARKETING_EMAIL"], "patronTypes": ["FACULTY"] }),
            set(&[]),
        ),
    ];
    for (name, rule, expected) in cases {
        assert_eq!(members_of(&w.app, rule.clone()).await, expected, "{name}: {rule}");
    }
}

#[tokio::test]
async fn segments_store_a_typed_rule_and_can_be_changed_listed_and_refetched() {
    let w = world().await;
    let staff = w.app.staff_token();
    let rule = json!({ "patronTypes": ["FACULTY", "FACULTY"], "tags": [" vip "], "lifecycleStages": ["AT_RISK"],
                       "servicesUsed": [w.service_a], "servicesNeverUsed": [w.service_b],
                       "lastActivityAfter": "2025-01-01T00:00:00Z", "consentTo": ["MARKETING_EMAIL"],
                       "consentToChannels": ["IN_APP"] });
    let created = create_segment(&w.app, "  Faculty at risk  ", rule).await;
    assert_eq!(created["name"], "Faculty at risk");
    let stored = &created["rule"];
    assert_eq!(stored["patronTypes"], json!(["FACULTY"]));
    assert_eq!(stored["tags"], json!(["vip"]));
    assert_eq!(stored["homeBranches"], json!([]));
    assert_eq!(stored["lifecycleStages"], json!(["AT_RISK"]));
    assert_eq!(stored["servicesUsed"], json!([w.service_a]));
    assert_eq!(stored["servicesNeverUsed"], json!([w.service_b]));
    assert_eq!(stored["lastActivityAfter"], "2025-01-01T00:00:00+00:00");
    assert_eq!(stored["lastActivityBefore"], Value::Null);
    assert_eq!(stored["consentTo"], json!(["MARKETING_EMAIL"]));
    assert_eq!(stored["consentToChannels"], json!(["IN_APP"]));
    assert_eq!(created["size"], 0);
    let id = created["id"].as_str().unwrap().to_owned();

    // Renaming keeps the rule; a new rule replaces it entirely.
    let update = "mutation($id: ID!, $i: UpdateSegmentInput!) { updateSegment(id: $id, input: $i) {
        name size rule { patronTypes tags } } }";
    let resp = w.app.client.query(Some(&staff), update, json!({ "id": id, "i": { "name": "Renamed" } })).await;
    assert_eq!(resp.ok()["updateSegment"]["rule"]["patronTypes"], json!(["FACULTY"]));
    let resp = w
        .app
        .client
        .query(Some(&staff), update, json!({ "id": id, "i": { "rule": { "patronTypes": ["ONLINE_LEARNER"] } } }))
        .await;
    let updated = resp.ok()["updateSegment"].clone();
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["rule"]["tags"], json!([]));
    assert_eq!(updated["size"], 2);

    // Listed oldest first; refetched through node.
    create_segment(&w.app, "Second", json!({})).await;
    let resp = w
        .app
        .client
        .query(
            Some(&staff),
            "{ segments(first: 1) { totalCount edges { node { name } }
        pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let page = resp.ok()["segments"].clone();
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["edges"][0]["node"]["name"], "Renamed");
    let resp = w
        .app
        .client
        .query(
            Some(&staff),
            "query($a: String) { segments(first: 5, after: $a) { edges { node { name } } } }",
            json!({ "a": page["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(resp.ok()["segments"]["edges"][0]["node"]["name"], "Second");
    // Sizes of a whole page come from one batched statement and agree with each segment's own.
    let before = w.app.sql_statements().await;
    let resp =
        w.app.client.query(Some(&staff), "{ segments(first: 50) { edges { node { name size } } } }", json!({})).await;
    let used = w.app.sql_statements().await - before;
    let sizes: Vec<(String, u64)> = resp.ok()["segments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["node"]["name"].as_str().unwrap().to_owned(), e["node"]["size"].as_u64().unwrap()))
        .collect();
    assert_eq!(sizes, vec![("Renamed".to_owned(), 2), ("Second".to_owned(), 5)]);
    assert!(used <= 4, "{used} statements for a page of segments with sizes");
    let resp = w
        .app
        .client
        .query(
            Some(&staff),
            "query($id: ID!) { node(id: $id) { id ... on Segment { name size } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(resp.ok()["node"]["name"], "Renamed");
    assert_eq!(resp.ok()["node"]["size"], 2);

    // Unknown segment, wrong kind of id.
    let unknown = rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Segment, uuid::Uuid::now_v7());
    let resp = w.app.client.query(Some(&staff), SEGMENT, json!({ "id": unknown.as_str() })).await;
    resp.expect_code("NOT_FOUND");
    let resp = w.app.client.query(Some(&staff), SEGMENT, json!({ "id": w.service_a })).await;
    resp.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn bad_rules_are_refused_with_the_field() {
    let w = world().await;
    let staff = w.app.staff_token();
    let unknown_service =
        rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Service, uuid::Uuid::now_v7());
    let too_many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
    for (rule, field) in [
        (json!({ "servicesUsed": [unknown_service.as_str()] }), "input.rule.servicesUsed"),
        (json!({ "servicesNeverUsed": ["nope"] }), "input.rule.servicesNeverUsed"),
        (json!({ "servicesUsed": [w.service_a], "servicesNeverUsed": [w.service_a] }), "input.rule.servicesNeverUsed"),
        (json!({ "lastActivityBefore": ago(10), "lastActivityAfter": ago(5) }), "input.rule.lastActivityBefore"),
        (json!({ "tags": ["  "] }), "input.rule.tags"),
        (json!({ "tags": too_many }), "input.rule.tags"),
        (json!({ "homeBranches": ["x".repeat(101)] }), "input.rule.homeBranches"),
    ] {
        let resp = w.app.client.query(Some(&staff), CREATE, json!({ "i": { "name": "Bad", "rule": rule } })).await;
        resp.expect_code("BAD_USER_INPUT");
        assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{}", resp.body);
    }
    let resp = w.app.client.query(Some(&staff), CREATE, json!({ "i": { "name": " ", "rule": {} } })).await;
    resp.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn members_need_patron_reads_as_well_as_campaign_reads() {
    let w = world().await;
    let segment = create_segment(&w.app, "All", json!({})).await;
    let id = segment["id"].as_str().unwrap();
    let campaigns_only = w.app.partner_token(&[Scope::CampaignsRead]);
    let q = "query($id: ID!) { segment(id: $id) { name size } }";
    let resp = w.app.client.query(Some(&campaigns_only), q, json!({ "id": id })).await;
    assert_eq!(resp.ok()["segment"]["size"], 5);
    let resp = w.app.client.query(Some(&campaigns_only), SEGMENT, json!({ "id": id })).await;
    resp.expect_code("FORBIDDEN");
    let both = w.app.partner_token(&[Scope::CampaignsRead, Scope::PatronsRead]);
    let resp = w.app.client.query(Some(&both), SEGMENT, json!({ "id": id })).await;
    assert_eq!(resp.ok()["segment"]["members"]["totalCount"], 5);
    // A read scope does not write.
    let resp = w.app.client.query(Some(&campaigns_only), CREATE, json!({ "i": { "name": "x", "rule": {} } })).await;
    resp.expect_code("FORBIDDEN");
}

/// The demo library: segments that differ, sized well under a second on either database.
#[tokio::test]
async fn segment_sizes_on_the_demo_library_are_fast() {
    let app = spawn_app_with(TestOptions { demo: true, ..TestOptions::default() }).await;
    let staff = app.staff_token();
    let resp =
        app.client.query(Some(&staff), "{ services(first: 100) { edges { node { id code } } } }", json!({})).await;
    let services = resp.ok()["services"]["edges"].as_array().unwrap().clone();
    let service = |code: &str| {
        services
            .iter()
            .find(|e| e["node"]["code"] == code)
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let rules = [
        json!({ "patronTypes": ["ONLINE_LEARNER"], "lifecycleStages": ["LAPSED", "AT_RISK"] }),
        json!({ "patronTypes": ["FACULTY"], "lifecycleStages": ["ACTIVE"] }),
        json!({ "tags": ["distance", "part-time"], "servicesUsed": [service("EMBEDDED")],
                "servicesNeverUsed": [service("WRITING-CTR")], "consentToChannels": ["EMAIL", "IN_APP"] }),
        json!({ "lastActivityBefore": ago(90), "lastActivityAfter": ago(365), "consentTo": ["MARKETING_EMAIL"],
                "homeBranches": ["Main Library", "Online"] }),
    ];
    let mut sizes = Vec::new();
    for rule in rules {
        let segment = create_segment(&app, "demo", rule.clone()).await;
        let id = segment["id"].as_str().unwrap().to_owned();
        let started = Instant::now();
        let resp =
            app.client.query(Some(&staff), "query($id: ID!) { segment(id: $id) { size } }", json!({ "id": id })).await;
        let elapsed = started.elapsed();
        let size = resp.ok()["segment"]["size"].as_u64().unwrap();
        println!(
            "segment size {size} in {:.1} ms on {}: {rule}",
            elapsed.as_secs_f64() * 1000.0,
            if app.is_postgres() { "PostgreSQL" } else { "SQLite" }
        );
        assert!(elapsed.as_secs_f64() < 1.0, "size took {elapsed:?} for {rule}");
        sizes.push(size);
    }
    assert!(sizes[0] > 0 && sizes[1] > 0 && sizes[2] > 0, "{sizes:?}");
    assert_ne!(sizes[0], sizes[1]);
}
