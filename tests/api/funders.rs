//! Funders and fundings: CRUD, validation, pagination and the funder role rules.

use async_graphql::ID;
use rapport::{
    auth::Scope,
    graphql::ids::{NodeKind, decode_global_id, to_global_id},
};
use rapport_tests::{GqlResponse, TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

const CREATE_SERVICE: &str = "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }";
const CREATE_FUNDER: &str = "mutation($i: CreateFunderInput!) { createFunder(input: $i) { id name kind } }";
const CREATE_FUNDING: &str = "mutation($i: CreateFundingInput!) { createFunding(input: $i) { id } }";

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&ID(gid.to_owned())).expect("a global id").1
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

#[track_caller]
fn expect_field(resp: &GqlResponse, code: &str, field: &str) {
    resp.expect_code(code);
    assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{:#}", resp.body);
}

async fn service(app: &TestApp, code: &str, active: bool) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            CREATE_SERVICE,
            json!({ "i": { "code": code, "name": format!("Service {code}"), "category": "TUTORING", "active": active } }),
        )
        .await;
    str_at(resp.ok(), "/createService/id").to_owned()
}

async fn funder(app: &TestApp, name: &str, kind: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            CREATE_FUNDER,
            json!({ "i": { "name": name, "kind": kind, "notes": "secret" } }),
        )
        .await;
    str_at(resp.ok(), "/createFunder/id").to_owned()
}

async fn funding(app: &TestApp, funder: &str, service: &str, amount: &str, currency: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            CREATE_FUNDING,
            json!({ "i": { "funderId": funder, "serviceId": service, "amount": amount, "currency": currency,
                           "startsOn": "2026-01-01", "endsOn": "2026-12-31" } }),
        )
        .await;
    str_at(resp.ok(), "/createFunding/id").to_owned()
}

const FUNDER_DETAIL: &str = "query($id: ID!) { funder(id: $id) {
    id name kind contactEmail website notes createdAt updatedAt
    fundings { id name amount { amount currency minorUnits } startsOn endsOn createdAt
               funder { id } service { id code } }
    totalFunding { amount currency minorUnits }
} }";

#[tokio::test]
async fn staff_create_read_and_update_funders_and_fundings() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let tutoring = service(&app, "TUTOR", true).await;
    let workshops = service(&app, "WORKSHOPS", true).await;

    let resp = app
        .client
        .query(
            Some(&staff),
            CREATE_FUNDER,
            json!({ "i": { "name": "  Reading Foundation ", "kind": "FOUNDATION", "contactEmail": "grants@reading.org",
                           "website": "https://reading.org/grants", "notes": "renews in spring" } }),
        )
        .await;
    let created = resp.ok();
    assert_eq!(created["createFunder"]["name"], "Reading Foundation");
    assert_eq!(created["createFunder"]["kind"], "FOUNDATION");
    let funder_gid = str_at(created, "/createFunder/id").to_owned();

    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: CreateFundingInput!) { createFunding(input: $i) {
                id name amount { amount currency minorUnits } startsOn endsOn funder { name } service { code } } }",
            json!({ "i": { "funderId": funder_gid, "serviceId": tutoring, "name": "GR-2026-01", "amount": "12500.5",
                           "currency": "eur", "startsOn": "2026-01-01", "endsOn": "2026-12-31" } }),
        )
        .await;
    let grant = &resp.ok()["createFunding"];
    assert_eq!(grant["name"], "GR-2026-01");
    assert_eq!(grant["amount"], json!({ "amount": "12500.50", "currency": "EUR", "minorUnits": 1_250_050 }));
    assert_eq!(grant["startsOn"], "2026-01-01");
    assert_eq!(grant["endsOn"], "2026-12-31");
    assert_eq!(grant["funder"]["name"], "Reading Foundation");
    assert_eq!(grant["service"]["code"], "TUTOR");
    let grant_gid = grant["id"].as_str().unwrap().to_owned();
    funding(&app, &funder_gid, &workshops, "99.50", "EUR").await;
    funding(&app, &funder_gid, &workshops, "5000", "JPY").await;

    let resp = app.client.query(Some(&staff), FUNDER_DETAIL, json!({ "id": funder_gid })).await;
    let f = &resp.ok()["funder"];
    assert_eq!(f["id"], funder_gid.as_str());
    assert_eq!(f["contactEmail"], "grants@reading.org");
    assert_eq!(f["website"], "https://reading.org/grants");
    assert_eq!(f["notes"], "renews in spring");
    assert_eq!(f["fundings"].as_array().unwrap().len(), 3);
    assert!(f["fundings"].as_array().unwrap().iter().all(|g| g["funder"]["id"] == funder_gid.as_str()));
    assert_eq!(
        f["totalFunding"],
        json!([
            { "amount": "12600.00", "currency": "EUR", "minorUnits": 1_260_000 },
            { "amount": "5000", "currency": "JPY", "minorUnits": 5000 },
        ])
    );

    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFunderInput!) { updateFunder(input: $i) { name kind contactEmail website notes } }",
            json!({ "i": { "id": funder_gid, "name": "Reading Trust", "kind": "DONOR", "website": "", "notes": "" } }),
        )
        .await;
    assert_eq!(
        resp.ok()["updateFunder"],
        json!({ "name": "Reading Trust", "kind": "DONOR", "contactEmail": "grants@reading.org", "website": null,
                "notes": null })
    );

    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) {
                name amount { amount currency } startsOn endsOn service { code } } }",
            json!({ "i": { "id": grant_gid, "amount": "20000", "endsOn": "2027-06-30", "serviceId": workshops } }),
        )
        .await;
    assert_eq!(
        resp.ok()["updateFunding"],
        json!({ "name": "GR-2026-01", "amount": { "amount": "20000.00", "currency": "EUR" }, "startsOn": "2026-01-01",
                "endsOn": "2027-06-30", "service": { "code": "WORKSHOPS" } })
    );
    // A new currency needs the amount again.
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) { id } }",
            json!({ "i": { "id": grant_gid, "currency": "USD" } }),
        )
        .await;
    expect_field(&resp, "BAD_USER_INPUT", "input.amount");
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) { amount { amount currency } } }",
            json!({ "i": { "id": grant_gid, "currency": "USD", "amount": "21000.25" } }),
        )
        .await;
    assert_eq!(resp.ok()["updateFunding"]["amount"], json!({ "amount": "21000.25", "currency": "USD" }));

    // Unknown rows.
    let missing = to_global_id(NodeKind::Funder, Uuid::now_v7());
    let resp =
        app.client.query(Some(&staff), "query($id: ID!) { funder(id: $id) { id } }", json!({ "id": missing })).await;
    resp.expect_code("NOT_FOUND");
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) { id } }",
            json!({ "i": { "id": to_global_id(NodeKind::Funding, Uuid::now_v7()), "name": "x" } }),
        )
        .await;
    resp.expect_code("NOT_FOUND");
    // A service id is not a funder id.
    let resp =
        app.client.query(Some(&staff), "query($id: ID!) { funder(id: $id) { id } }", json!({ "id": tutoring })).await;
    expect_field(&resp, "BAD_USER_INPUT", "id");
}

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let service_gid = service(&app, "ILL", true).await;
    let funder_gid = funder(&app, "City Council", "GOVERNMENT").await;
    let base = json!({ "funderId": funder_gid, "serviceId": service_gid, "amount": "100.00", "currency": "EUR",
                       "startsOn": "2026-01-01", "endsOn": "2026-12-31" });
    let with = |changes: Value| {
        let mut input = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            input[k] = v.clone();
        }
        json!({ "i": input })
    };
    let cases = [
        (json!({ "amount": "-5.00" }), "input.amount"),
        (json!({ "amount": "10.125" }), "input.amount"),
        (json!({ "amount": "ten" }), "input.amount"),
        (json!({ "amount": "100.5", "currency": "JPY" }), "input.amount"),
        (json!({ "amount": "99999999999999999999" }), "input.amount"),
        (json!({ "currency": "EURO" }), "input.currency"),
        (json!({ "currency": "€" }), "input.currency"),
        (json!({ "endsOn": "2025-12-31" }), "input.endsOn"),
        (json!({ "serviceId": to_global_id(NodeKind::Service, Uuid::now_v7()) }), "input.serviceId"),
        (json!({ "serviceId": funder_gid }), "input.serviceId"),
        (json!({ "funderId": to_global_id(NodeKind::Funder, Uuid::now_v7()) }), "input.funderId"),
        (json!({ "funderId": "garbage" }), "input.funderId"),
        (json!({ "name": "x".repeat(201) }), "input.name"),
    ];
    for (changes, field) in cases {
        let resp = app.client.query(Some(&staff), CREATE_FUNDING, with(changes.clone())).await;
        assert!(resp.data().is_null() || resp.data()["createFunding"].is_null(), "{changes}: {:#}", resp.body);
        expect_field(&resp, "BAD_USER_INPUT", field);
    }
    // Three decimals are right for dinars; a one-day grant is fine.
    let resp = app
        .client
        .query(
            Some(&staff),
            CREATE_FUNDING,
            with(json!({ "amount": "10.125", "currency": "BHD", "endsOn": "2026-01-01" })),
        )
        .await;
    resp.ok();
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) { id } }",
            json!({ "i": { "id": str_at(resp.data(), "/createFunding/id"), "startsOn": "2026-02-01" } }),
        )
        .await;
    expect_field(&resp, "BAD_USER_INPUT", "input.endsOn");

    let funder_cases = [
        (json!({ "name": "   ", "kind": "DONOR" }), "input.name"),
        (json!({ "name": "n".repeat(201), "kind": "DONOR" }), "input.name"),
        (json!({ "name": "Ok", "kind": "DONOR", "contactEmail": "not-an-email" }), "input.contactEmail"),
        (json!({ "name": "Ok", "kind": "DONOR", "website": "ftp://example.org" }), "input.website"),
        (json!({ "name": "Ok", "kind": "DONOR", "website": "https://" }), "input.website"),
        (
            json!({ "name": "Ok", "kind": "DONOR", "website": format!("https://e.org/{}", "a".repeat(300)) }),
            "input.website",
        ),
    ];
    for (input, field) in funder_cases {
        let resp = app.client.query(Some(&staff), CREATE_FUNDER, json!({ "i": input })).await;
        expect_field(&resp, "BAD_USER_INPUT", field);
    }
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateFunderInput!) { updateFunder(input: $i) { id } }",
            json!({ "i": { "id": funder_gid, "contactEmail": "a b@example.org" } }),
        )
        .await;
    expect_field(&resp, "BAD_USER_INPUT", "input.contactEmail");
    // Nothing invalid was stored.
    let resp = app
        .client
        .query(
            Some(&staff),
            "query($id: ID!) { funder(id: $id) { contactEmail fundings { id } } }",
            json!({ "id": funder_gid }),
        )
        .await;
    let f = &resp.ok()["funder"];
    assert!(f["contactEmail"].is_null());
    assert_eq!(f["fundings"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn funders_paginate_filter_and_count() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    for (name, kind) in [
        ("Echo Corp", "COMPANY"),
        ("Alpha Trust", "FOUNDATION"),
        ("Delta Council", "GOVERNMENT"),
        ("Bravo Fund", "FOUNDATION"),
        ("Charlie Donor", "DONOR"),
    ] {
        funder(&app, name, kind).await;
    }
    let page = "query($first: Int, $after: String, $last: Int, $before: String, $filter: FundersFilter,
                      $order: FunderOrder) {
        funders(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
            totalCount edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
    let names = |v: &Value| -> Vec<String> {
        v["funders"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let resp = app.client.query(Some(&staff), page, json!({ "first": 2, "after": after })).await;
        let data = resp.ok();
        assert_eq!(data["funders"]["totalCount"], 5);
        seen.extend(names(data));
        if !data["funders"]["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = Some(str_at(data, "/funders/pageInfo/endCursor").to_owned());
    }
    assert_eq!(seen, ["Alpha Trust", "Bravo Fund", "Charlie Donor", "Delta Council", "Echo Corp"]);

    // Backwards from the end.
    let resp = app.client.query(Some(&staff), page, json!({ "last": 2 })).await;
    let data = resp.ok();
    assert_eq!(names(data), ["Delta Council", "Echo Corp"]);
    assert_eq!(data["funders"]["pageInfo"]["hasPreviousPage"], true);
    let before = str_at(data, "/funders/pageInfo/startCursor").to_owned();
    let resp = app.client.query(Some(&staff), page, json!({ "last": 2, "before": before })).await;
    assert_eq!(names(resp.ok()), ["Bravo Fund", "Charlie Donor"]);

    // Filters and order.
    let resp = app
        .client
        .query(
            Some(&staff),
            page,
            json!({ "filter": { "kinds": ["FOUNDATION", "DONOR"] }, "order": { "direction": "DESC" } }),
        )
        .await;
    let data = resp.ok();
    assert_eq!(names(data), ["Charlie Donor", "Bravo Fund", "Alpha Trust"]);
    assert_eq!(data["funders"]["totalCount"], 3);
    let resp = app.client.query(Some(&staff), page, json!({ "filter": { "text": "COUN" } })).await;
    assert_eq!(names(resp.ok()), ["Delta Council"]);
    let resp = app.client.query(Some(&staff), page, json!({ "filter": { "text": "%" } })).await;
    assert_eq!(resp.ok()["funders"]["totalCount"], 0);
    let resp =
        app.client.query(Some(&staff), page, json!({ "order": { "field": "CREATED_AT", "direction": "DESC" } })).await;
    assert_eq!(names(resp.ok()), ["Charlie Donor", "Bravo Fund", "Delta Council", "Alpha Trust", "Echo Corp"]);

    // Bad page arguments.
    let resp = app.client.query(Some(&staff), page, json!({ "first": 1000 })).await;
    expect_field(&resp, "BAD_USER_INPUT", "first");
    let resp = app.client.query(Some(&staff), page, json!({ "first": 1, "after": "nonsense" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "after");
}

#[tokio::test]
async fn funder_role_rules() {
    let app = spawn_app().await;
    let service_gid = service(&app, "EVENTS", true).await;
    let own = funder(&app, "Own Foundation", "FOUNDATION").await;
    let other = funder(&app, "Other Foundation", "FOUNDATION").await;
    let own_grant = funding(&app, &own, &service_gid, "100.00", "EUR").await;
    funding(&app, &other, &service_gid, "900.00", "EUR").await;
    let funder_token = app.funder_token(uuid_of(&own));
    let by_id =
        "query($id: ID!) { funder(id: $id) { name fundings { id amount { amount } } totalFunding { amount } } }";

    // Staff and admins read everything, notes included.
    for token in [app.staff_token(), app.admin_token()] {
        let resp =
            app.client.query(Some(&token), "{ funders { totalCount edges { node { notes } } } }", json!({})).await;
        let data = resp.ok();
        assert_eq!(data["funders"]["totalCount"], 2);
        assert!(data["funders"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["notes"] == "secret"));
        let resp = app.client.query(Some(&token), by_id, json!({ "id": other })).await;
        assert_eq!(resp.ok()["funder"]["name"], "Other Foundation");
    }

    // A funder reads its own funder and fundings...
    let resp = app.client.query(Some(&funder_token), by_id, json!({ "id": own })).await;
    let f = &resp.ok()["funder"];
    assert_eq!(f["name"], "Own Foundation");
    assert_eq!(f["fundings"], json!([{ "id": own_grant, "amount": { "amount": "100.00" } }]));
    assert_eq!(f["totalFunding"], json!([{ "amount": "100.00" }]));
    // ...its list holds only its own row...
    let resp =
        app.client.query(Some(&funder_token), "{ funders { totalCount edges { node { id } } } }", json!({})).await;
    let data = resp.ok();
    assert_eq!(data["funders"]["totalCount"], 1);
    assert_eq!(data["funders"]["edges"], json!([{ "node": { "id": own } }]));
    // ...another funder is refused, not hidden...
    let resp = app.client.query(Some(&funder_token), by_id, json!({ "id": other })).await;
    resp.expect_code("FORBIDDEN");
    assert!(resp.data()["funder"].is_null());
    // ...and so is a funder that does not exist (no probing for ids).
    let resp = app
        .client
        .query(Some(&funder_token), by_id, json!({ "id": to_global_id(NodeKind::Funder, Uuid::now_v7()) }))
        .await;
    resp.expect_code("FORBIDDEN");
    // Staff notes are not for funders.
    let resp = app
        .client
        .query(Some(&funder_token), "query($id: ID!) { funder(id: $id) { name notes } }", json!({ "id": own }))
        .await;
    resp.expect_code("FORBIDDEN");
    assert_eq!(resp.errors()[0]["path"], json!(["funder", "notes"]));
    // Funders do not write.
    let resp = app
        .client
        .query(
            Some(&funder_token),
            "mutation($i: UpdateFunderInput!) { updateFunder(input: $i) { id } }",
            json!({ "i": { "id": own, "name": "Mine now" } }),
        )
        .await;
    resp.expect_code("FORBIDDEN");

    // Partners (whatever their scopes), patrons and anonymous callers see no funder.
    let denied = [
        (Some(app.partner_token(&Scope::ALL)), "FORBIDDEN"),
        (Some(app.partner_token(&[])), "FORBIDDEN"),
        (Some(app.patron_token(Uuid::now_v7())), "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ];
    for (token, code) in &denied {
        let resp = app.client.query(token.as_deref(), "{ funders { totalCount } }", json!({})).await;
        resp.expect_code(code);
        let resp = app.client.query(token.as_deref(), by_id, json!({ "id": own })).await;
        resp.expect_code(code);
        let resp = app
            .client
            .query(token.as_deref(), CREATE_FUNDER, json!({ "i": { "name": "Sneaky", "kind": "OTHER" } }))
            .await;
        resp.expect_code(code);
    }
}

#[tokio::test]
async fn service_fundings_depend_on_the_viewer() {
    let app = spawn_app().await;
    let open = service(&app, "OPEN", true).await;
    let closed = service(&app, "CLOSED", false).await;
    let a = funder(&app, "Funder A", "COMPANY").await;
    let b = funder(&app, "Funder B", "DONOR").await;
    let a_open = funding(&app, &a, &open, "10.00", "USD").await;
    let b_open = funding(&app, &b, &open, "20.00", "USD").await;
    let a_closed = funding(&app, &a, &closed, "30.00", "USD").await;
    let query = "query($id: ID!) { service(id: $id) { code fundings { id funder { name } } } }";
    let ids = |resp: &GqlResponse| -> Vec<String> {
        let mut ids: Vec<String> = resp.ok()["service"]["fundings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut both = vec![a_open.clone(), b_open.clone()];
    both.sort();

    let resp = app.client.query(Some(&app.staff_token()), query, json!({ "id": open })).await;
    assert_eq!(ids(&resp), both);
    let resp = app.client.query(Some(&app.funder_token(uuid_of(&a))), query, json!({ "id": open })).await;
    assert_eq!(ids(&resp), std::slice::from_ref(&a_open));
    let resp = app.client.query(Some(&app.funder_token(uuid_of(&b))), query, json!({ "id": open })).await;
    assert_eq!(ids(&resp), [b_open]);

    // The catalogue is public, its fundings are not.
    for (token, code) in [(None, "UNAUTHENTICATED"), (Some(app.patron_token(Uuid::now_v7())), "FORBIDDEN")] {
        let resp = app.client.query(token.as_deref(), query, json!({ "id": open })).await;
        resp.expect_code(code);
        assert_eq!(resp.errors()[0]["path"], json!(["service", "fundings"]));
    }

    // A funder sees the inactive service it funds through its grant, not through the catalogue.
    let token = app.funder_token(uuid_of(&a));
    let resp = app
        .client
        .query(
            Some(&token),
            "query($id: ID!) { funder(id: $id) { fundings { id service { code active } } } }",
            json!({ "id": a }),
        )
        .await;
    let fundings = resp.ok()["funder"]["fundings"].as_array().unwrap().clone();
    assert_eq!(fundings.len(), 2);
    assert!(fundings.iter().any(|f| f["id"] == a_closed.as_str() && f["service"]["code"] == "CLOSED"));
    let resp =
        app.client.query(Some(&token), "query($id: ID!) { service(id: $id) { code } }", json!({ "id": closed })).await;
    resp.expect_code("FORBIDDEN");
}

#[tokio::test]
async fn nested_fundings_are_batched() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let query = "{ funders(first: 50) { edges { node { name totalFunding { amount }
        fundings { amount { amount } funder { name } service { code fundings { id } } } } } } }";
    let mut counts = Vec::new();
    for round in 0..2 {
        let service_gid = service(&app, &format!("SVC-{round}"), true).await;
        for i in 0..5 {
            let f = funder(&app, &format!("Funder {round}-{i}"), "DONOR").await;
            funding(&app, &f, &service_gid, "1.00", "EUR").await;
            funding(&app, &f, &service_gid, "2.00", "EUR").await;
        }
        let before = app.sql_statements().await;
        app.client.query(Some(&staff), query, json!({})).await.ok();
        counts.push(app.sql_statements().await - before);
    }
    // Twice the funders, fundings and services: the same number of statements.
    assert_eq!(counts[0], counts[1], "statement counts {counts:?}");
    // funders, their fundings, the fundings' funders, services and the services' fundings.
    assert!((1..=5).contains(&counts[0]), "statement counts {counts:?}");
}
