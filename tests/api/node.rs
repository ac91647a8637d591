//! `node(id:)`: every object type refetched by its global id, with the access rules of its own
//! query.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rapport::graphql::ids::{NodeKind, decode_global_id, to_global_id};
use rapport_tests::{TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id
    ... on Service { code }
    ... on Patron { name }
    ... on Interaction { kind }
    ... on Funder { name }
    ... on Funding { amount { amount currency } }
} }";

struct World {
    app: TestApp,
    service: String,
    inactive_service: String,
    patron: String,
    interaction: String,
    funder: String,
    other_funder: String,
    funding: String,
    other_funding: String,
}

async fn create(app: &TestApp, mutation: &str, input: Value) -> String {
    let query = format!("mutation($i: {}Input!) {{ {}(input: $i) {{ id }} }}", input_type(mutation), mutation);
    let resp = app.client.query(Some(&app.staff_token()), &query, json!({ "i": input })).await;
    resp.ok()[mutation]["id"].as_str().unwrap_or_else(|| panic!("{mutation}: {:#}", resp.body)).to_owned()
}

fn input_type(mutation: &str) -> String {
    let mut chars = mutation.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

async fn world() -> World {
    let app = spawn_app().await;
    let service =
        create(&app, "createService", json!({ "code": "CHAT", "name": "Chat reference", "category": "REFERENCE" }))
            .await;
    let inactive_service = create(
        &app,
        "createService",
        json!({ "code": "OLD", "name": "Old service", "category": "OTHER", "active": false }),
    )
    .await;
    let patron = create(
        &app,
        "createPatron",
        json!({ "cardNumber": "P-0001", "name": "Ada Lovelace", "patronType": "FACULTY" }),
    )
    .await;
    let interaction = create(
        &app,
        "recordInteraction",
        json!({ "patronId": patron, "serviceId": service, "kind": "REFERENCE_QUESTION", "channel": "CHAT",
                "occurredAt": "2026-01-15T10:00:00Z" }),
    )
    .await;
    let funder = create(&app, "createFunder", json!({ "name": "Reading Foundation", "kind": "FOUNDATION" })).await;
    let other_funder = create(&app, "createFunder", json!({ "name": "City Council", "kind": "GOVERNMENT" })).await;
    let grant = |f: &str| {
        json!({ "funderId": f, "serviceId": service, "amount": "1500.00", "currency": "GBP",
                "startsOn": "2026-01-01", "endsOn": "2026-12-31" })
    };
    let funding = create(&app, "createFunding", grant(&funder)).await;
    let other_funding = create(&app, "createFunding", grant(&other_funder)).await;
    World { app, service, inactive_service, patron, interaction, funder, other_funder, funding, other_funding }
}

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&ID(gid.to_owned())).expect("a global id").1
}

#[tokio::test]
async fn node_refetches_every_type() {
    let w = world().await;
    let staff = w.app.staff_token();
    let cases = [
        (&w.service, json!({ "__typename": "Service", "id": w.service, "code": "CHAT" })),
        (&w.patron, json!({ "__typename": "Patron", "id": w.patron, "name": "Ada Lovelace" })),
        (&w.interaction, json!({ "__typename": "Interaction", "id": w.interaction, "kind": "REFERENCE_QUESTION" })),
        (&w.funder, json!({ "__typename": "Funder", "id": w.funder, "name": "Reading Foundation" })),
        (
            &w.funding,
            json!({ "__typename": "Funding", "id": w.funding, "amount": { "amount": "1500.00", "currency": "GBP" } }),
        ),
    ];
    for (id, expected) in cases {
        let resp = w.app.client.query(Some(&staff), NODE, json!({ "id": id })).await;
        assert_eq!(resp.ok()["node"], expected);
    }
    // The public catalogue needs no token.
    let resp = w.app.client.query(None, NODE, json!({ "id": w.service })).await;
    assert_eq!(resp.ok()["node"]["code"], "CHAT");
    // Only the interface's field, without fragments.
    let resp = w.app.client.query(None, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": w.service })).await;
    assert_eq!(resp.ok()["node"]["id"], w.service.as_str());
}

#[tokio::test]
async fn bad_and_unknown_ids() {
    let w = world().await;
    let staff = w.app.staff_token();
    let bad = [
        "garbage".to_owned(),
        String::new(),
        URL_SAFE_NO_PAD.encode(format!("Nope:{}", Uuid::now_v7())),
        URL_SAFE_NO_PAD.encode("Service:not-a-uuid"),
    ];
    for id in bad {
        let resp = w.app.client.query(Some(&staff), NODE, json!({ "id": id })).await;
        resp.expect_code("BAD_USER_INPUT");
        assert_eq!(resp.errors()[0]["extensions"]["field"], "id");
        assert!(resp.data()["node"].is_null());
    }
    for kind in [NodeKind::Service, NodeKind::Patron, NodeKind::Interaction, NodeKind::Funder, NodeKind::Funding] {
        let id = to_global_id(kind, Uuid::now_v7());
        let resp = w.app.client.query(Some(&staff), NODE, json!({ "id": id })).await;
        resp.expect_code("NOT_FOUND");
    }
}

#[tokio::test]
async fn node_keeps_the_access_rules() {
    let w = world().await;
    let app = &w.app;
    let funder = app.funder_token(uuid_of(&w.funder));
    let patron = app.patron_token(uuid_of(&w.patron));
    let check = |token: Option<String>, id: String, code: &'static str| async move {
        let resp = app.client.query(token.as_deref(), NODE, json!({ "id": id })).await;
        resp.expect_code(code);
        assert!(resp.data()["node"].is_null(), "{:#}", resp.body);
    };
    // Anonymous callers see only the active catalogue.
    check(None, w.patron.clone(), "UNAUTHENTICATED").await;
    check(None, w.interaction.clone(), "UNAUTHENTICATED").await;
    check(None, w.funder.clone(), "UNAUTHENTICATED").await;
    check(None, w.funding.clone(), "UNAUTHENTICATED").await;
    check(Some(patron.clone()), w.inactive_service.clone(), "FORBIDDEN").await;
    // A funder sees its own funder and fundings, nothing else.
    check(Some(funder.clone()), w.other_funder.clone(), "FORBIDDEN").await;
    check(Some(funder.clone()), w.other_funding.clone(), "FORBIDDEN").await;
    check(Some(funder.clone()), w.patron.clone(), "FORBIDDEN").await;
    check(Some(funder.clone()), w.interaction.clone(), "FORBIDDEN").await;
    for id in [&w.funder, &w.funding, &w.service] {
        let resp = app.client.query(Some(&funder), NODE, json!({ "id": id })).await;
        assert_eq!(resp.ok()["node"]["id"], id.as_str());
    }
    // A patron sees itself, not funders.
    let resp = app.client.query(Some(&patron), NODE, json!({ "id": w.patron })).await;
    assert_eq!(resp.ok()["node"]["__typename"], "Patron");
    check(Some(patron.clone()), w.funder.clone(), "FORBIDDEN").await;
    check(Some(patron), w.funding.clone(), "FORBIDDEN").await;
}
