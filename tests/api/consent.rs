//! Consent: given and withdrawn by the patron in the app and by staff on their behalf, the
//! current state derived from the history, the history connection, validation, and the roles
//! matrix of every consent operation.

use rapport::{auth::Scope, domain::consent, graphql::ids::decode_global_id};
use rapport_tests::{GqlResponse, TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) const UPDATE_MINE: &str = "mutation($i: UpdateMyConsentsInput!) {
    updateMyConsents(input: $i) {
        recorded { purpose granted source textVersion recordedAt }
        consents { purpose granted source textVersion }
    }
}";

pub(crate) const UPDATE_PATRONS: &str = "mutation($i: UpdatePatronConsentsInput!) {
    updatePatronConsents(input: $i) {
        recorded { purpose granted source textVersion }
        consents { purpose granted source }
        patron { id }
    }
}";

const HISTORY: &str = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
    patron(id: $id) {
        consents { purpose granted source textVersion }
        consentHistory(first: $first, after: $after, last: $last, before: $before) {
            totalCount
            edges { cursor node { purpose granted source textVersion recordedAt } }
            pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
        }
    }
}";

pub(crate) fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&async_graphql::ID(gid.to_owned())).expect("a global id").1
}

#[track_caller]
fn expect_field(resp: &GqlResponse, code: &str, field: &str) {
    resp.expect_code(code);
    assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{:#}", resp.body);
}

/// Create a patron as staff with `extra` input fields; returns its global id.
pub(crate) async fn create_patron(app: &TestApp, card: &str, name: &str, extra: Value) -> String {
    let mut input = json!({ "cardNumber": card, "name": name, "patronType": "PUBLIC" });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    resp.ok()["createPatron"]["id"].as_str().expect("id").to_owned()
}

fn summary(list: &Value) -> Vec<(String, bool, String, Value)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|c| {
            let c = if c.get("node").is_some() { &c["node"] } else { c };
            (
                c["purpose"].as_str().unwrap().to_owned(),
                c["granted"].as_bool().unwrap(),
                c["source"].as_str().unwrap().to_owned(),
                c["textVersion"].clone(),
            )
        })
        .collect()
}

fn entry(purpose: &str, granted: bool, source: &str, version: Option<&str>) -> (String, bool, String, Value) {
    (purpose.to_owned(), granted, source.to_owned(), version.map_or(Value::Null, |v| json!(v)))
}

async fn history(app: &TestApp, token: &str, patron: &str, vars: Value) -> GqlResponse {
    let mut vars = vars;
    vars["id"] = json!(patron);
    app.client.query(Some(token), HISTORY, vars).await
}

#[tokio::test]
async fn consent_is_given_and_withdrawn_and_the_history_kept() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let ada = create_patron(
        &app,
        "CON-0001",
        "Ada Consent",
        json!({ "consents": [{ "purpose": "MARKETING_EMAIL", "granted": true, "textVersion": "v1" }] }),
    )
    .await;
    let other = create_patron(&app, "CON-0002", "Other Consent", json!({})).await;
    let me = app.patron_token(uuid_of(&ada));

    // The patron gives personalisation and withdraws email marketing from the app.
    let resp = app
        .client
        .query(
            Some(&me),
            UPDATE_MINE,
            json!({ "i": { "textVersion": "v2", "consents": [
                { "purpose": "PERSONALISATION", "granted": true },
                { "purpose": "MARKETING_EMAIL", "granted": false },
            ] } }),
        )
        .await;
    let data = resp.ok()["updateMyConsents"].clone();
    assert_eq!(
        summary(&data["recorded"]),
        vec![entry("PERSONALISATION", true, "APP", Some("v2")), entry("MARKETING_EMAIL", false, "APP", Some("v2"))]
    );
    assert_eq!(
        summary(&data["consents"]),
        vec![entry("PERSONALISATION", true, "APP", Some("v2")), entry("MARKETING_EMAIL", false, "APP", Some("v2"))]
    );

    // ... and changes their mind on email.
    let resp = app
        .client
        .query(
            Some(&me),
            UPDATE_MINE,
            json!({ "i": { "textVersion": "v3", "consents": [{ "purpose": "MARKETING_EMAIL", "granted": true }] } }),
        )
        .await;
    assert_eq!(
        summary(&resp.ok()["updateMyConsents"]["consents"]),
        vec![entry("PERSONALISATION", true, "APP", Some("v2")), entry("MARKETING_EMAIL", true, "APP", Some("v3"))]
    );

    // Staff record an imported SMS consent on the patron's behalf.
    let resp = app
        .client
        .query(
            Some(&staff),
            UPDATE_PATRONS,
            json!({ "i": { "patronId": ada, "source": "IMPORT", "textVersion": "crm-7",
                           "consents": [{ "purpose": "MARKETING_SMS", "granted": true }] } }),
        )
        .await;
    let data = resp.ok()["updatePatronConsents"].clone();
    assert_eq!(summary(&data["recorded"]), vec![entry("MARKETING_SMS", true, "IMPORT", Some("crm-7"))]);
    assert_eq!(data["patron"]["id"], ada.as_str());
    // STAFF is the default source.
    let resp = app
        .client
        .query(
            Some(&staff),
            UPDATE_PATRONS,
            json!({ "i": { "patronId": ada, "consents": [{ "purpose": "MARKETING_PUSH", "granted": false }] } }),
        )
        .await;
    assert_eq!(
        summary(&resp.ok()["updatePatronConsents"]["recorded"]),
        vec![entry("MARKETING_PUSH", false, "STAFF", None)]
    );

    // The history, newest first; the current state is the latest event per purpose.
    let resp = history(&app, &staff, &ada, json!({ "first": 10 })).await;
    let patron = resp.ok()["patron"].clone();
    let all = vec![
        entry("MARKETING_PUSH", false, "STAFF", None),
        entry("MARKETING_SMS", true, "IMPORT", Some("crm-7")),
        entry("MARKETING_EMAIL", true, "APP", Some("v3")),
        entry("MARKETING_EMAIL", false, "APP", Some("v2")),
        entry("PERSONALISATION", true, "APP", Some("v2")),
        entry("MARKETING_EMAIL", true, "STAFF", Some("v1")),
    ];
    assert_eq!(summary(&patron["consentHistory"]["edges"]), all);
    assert_eq!(patron["consentHistory"]["totalCount"], 6);
    assert_eq!(
        summary(&patron["consents"]),
        vec![
            entry("PERSONALISATION", true, "APP", Some("v2")),
            entry("MARKETING_EMAIL", true, "APP", Some("v3")),
            entry("MARKETING_SMS", true, "IMPORT", Some("crm-7")),
            entry("MARKETING_PUSH", false, "STAFF", None),
        ]
    );

    // Pages of two walk the same history forwards and backwards.
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let resp = history(&app, &staff, &ada, json!({ "first": 2, "after": after })).await;
        let conn = resp.ok()["patron"]["consentHistory"].clone();
        walked.extend(summary(&conn["edges"]));
        if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(walked, all);
    let resp = history(&app, &staff, &ada, json!({ "last": 2 })).await;
    let conn = resp.ok()["patron"]["consentHistory"].clone();
    assert_eq!(summary(&conn["edges"]), all[4..].to_vec());
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], true);
    let before = conn["pageInfo"]["startCursor"].as_str().unwrap().to_owned();
    let resp = history(&app, &staff, &ada, json!({ "last": 3, "before": before })).await;
    assert_eq!(summary(&resp.ok()["patron"]["consentHistory"]["edges"]), all[1..4].to_vec());

    // The patron reads their own history; the other patron has none.
    let resp = app.client.query(Some(&me), "{ me { consentHistory(first: 10) { totalCount } } }", json!({})).await;
    assert_eq!(resp.ok()["me"]["consentHistory"]["totalCount"], 6);
    let resp = history(&app, &staff, &other, json!({})).await;
    assert_eq!(resp.ok()["patron"]["consentHistory"]["totalCount"], 0);
    assert_eq!(resp.ok()["patron"]["consents"], json!([]));

    // What later features ask, through the consent module only.
    use consent::ConsentPurpose;
    let db = &app.state.db;
    let (ada_id, other_id) = (uuid_of(&ada), uuid_of(&other));
    assert!(consent::has_consent(db, ada_id, ConsentPurpose::MarketingEmail).await.unwrap());
    assert!(consent::has_consent(db, ada_id, ConsentPurpose::Personalisation).await.unwrap());
    assert!(!consent::has_consent(db, ada_id, ConsentPurpose::MarketingPush).await.unwrap(), "withdrawn");
    assert!(!consent::has_consent(db, ada_id, ConsentPurpose::MarketingInApp).await.unwrap(), "never given");
    assert!(!consent::has_consent(db, other_id, ConsentPurpose::MarketingEmail).await.unwrap());
    let sms = consent::consenting(db, &[ada_id, other_id], ConsentPurpose::MarketingSms).await.unwrap();
    assert_eq!(sms.into_iter().collect::<Vec<_>>(), vec![ada_id]);
    let current = consent::current_consents(db, &[ada_id, other_id]).await.unwrap();
    assert_eq!(current.get(&ada_id).map(Vec::len), Some(4));
    assert!(!current.contains_key(&other_id));
}

#[tokio::test]
async fn consent_input_is_validated() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let ada = create_patron(&app, "CON-0101", "Ada Valid", json!({})).await;
    let me = app.patron_token(uuid_of(&ada));
    let mine = |input: Value| {
        let me = me.clone();
        let app = &app;
        async move { app.client.query(Some(&me), UPDATE_MINE, json!({ "i": input })).await }
    };
    let email = json!({ "purpose": "MARKETING_EMAIL", "granted": true });
    expect_field(&mine(json!({ "textVersion": "v1", "consents": [] })).await, "BAD_USER_INPUT", "input.consents");
    expect_field(
        &mine(json!({ "textVersion": "v1", "consents": [email, { "purpose": "MARKETING_EMAIL", "granted": false }] }))
            .await,
        "BAD_USER_INPUT",
        "input.consents",
    );
    expect_field(
        &mine(json!({ "textVersion": "  ", "consents": [email] })).await,
        "BAD_USER_INPUT",
        "input.textVersion",
    );
    expect_field(
        &mine(json!({ "textVersion": "v".repeat(51), "consents": [email] })).await,
        "BAD_USER_INPUT",
        "input.textVersion",
    );

    let staff_update = |input: Value| {
        let staff = staff.clone();
        let app = &app;
        async move { app.client.query(Some(&staff), UPDATE_PATRONS, json!({ "i": input })).await }
    };
    expect_field(
        &staff_update(json!({ "patronId": ada, "source": "APP", "consents": [email] })).await,
        "BAD_USER_INPUT",
        "input.source",
    );
    expect_field(
        &staff_update(json!({ "patronId": "not-an-id", "consents": [email] })).await,
        "BAD_USER_INPUT",
        "input.patronId",
    );
    expect_field(&staff_update(json!({ "patronId": ada, "consents": [] })).await, "BAD_USER_INPUT", "input.consents");
    let unknown = rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Patron, Uuid::now_v7());
    staff_update(json!({ "patronId": unknown.as_str(), "consents": [email] })).await.expect_code("NOT_FOUND");

    // Nothing was recorded by the refused calls.
    let resp = history(&app, &staff, &ada, json!({})).await;
    assert_eq!(resp.ok()["patron"]["consentHistory"]["totalCount"], 0);

    // An erased patron's consents can no longer change.
    app.client
        .query(Some(&app.admin_token()), "mutation($id: ID!) { erasePatron(id: $id) { erased } }", json!({ "id": ada }))
        .await
        .ok();
    staff_update(json!({ "patronId": ada, "consents": [email] })).await.expect_code("CONFLICT");
}

#[tokio::test]
async fn consent_operations_follow_the_roles_matrix() {
    let app = spawn_app().await;
    let ada = create_patron(&app, "CON-0201", "Ada Roles", json!({})).await;
    let bob = create_patron(&app, "CON-0202", "Bob Roles", json!({})).await;
    let mine = json!({ "i": { "textVersion": "v1", "consents": [{ "purpose": "MARKETING_SMS", "granted": true }] } });
    let for_ada = json!({ "i": { "patronId": ada, "consents": [{ "purpose": "MARKETING_SMS", "granted": true }] } });
    let funder = app.funder_token(Uuid::now_v7());
    let reader = app.partner_token(&[Scope::PatronsRead]);
    let writer = app.partner_token(&[Scope::PatronsWrite]);
    let interactions_only = app.partner_token(&[Scope::InteractionsRead]);
    let ada_token = app.patron_token(uuid_of(&ada));

    // updateMyConsents: patrons only.
    app.client.query(None, UPDATE_MINE, mine.clone()).await.expect_code("UNAUTHENTICATED");
    for token in [app.staff_token(), app.admin_token(), funder.clone(), writer.clone()] {
        app.client.query(Some(&token), UPDATE_MINE, mine.clone()).await.expect_code("FORBIDDEN");
    }
    app.client.query(Some(&ada_token), UPDATE_MINE, mine).await.ok();

    // updatePatronConsents: staff, admins, partners with patrons:write.
    app.client.query(None, UPDATE_PATRONS, for_ada.clone()).await.expect_code("UNAUTHENTICATED");
    for token in [ada_token.clone(), funder.clone(), reader.clone(), interactions_only.clone()] {
        app.client.query(Some(&token), UPDATE_PATRONS, for_ada.clone()).await.expect_code("FORBIDDEN");
    }
    for token in [app.staff_token(), app.admin_token(), writer] {
        app.client.query(Some(&token), UPDATE_PATRONS, for_ada.clone()).await.ok();
    }

    // consentHistory: as reading the patron record.
    let resp = history(&app, &reader, &ada, json!({})).await;
    assert_eq!(resp.ok()["patron"]["consentHistory"]["totalCount"], 4);
    history(&app, &interactions_only, &ada, json!({})).await.expect_code("FORBIDDEN");
    history(&app, &funder, &ada, json!({})).await.expect_code("FORBIDDEN");
    history(&app, &ada_token, &bob, json!({})).await.expect_code("FORBIDDEN");
    let resp = app.client.query(None, HISTORY, json!({ "id": ada })).await;
    resp.expect_code("UNAUTHENTICATED");
    history(&app, &ada_token, &ada, json!({})).await.ok();
}

#[tokio::test]
async fn nested_consent_histories_are_batched() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    for i in 0..8 {
        let decisions = json!([{ "purpose": "MARKETING_EMAIL", "granted": true }, { "purpose": "PERSONALISATION", "granted": i % 2 == 0 }]);
        create_patron(&app, &format!("CON-1{i:03}"), &format!("Batch {i}"), json!({ "consents": decisions })).await;
    }
    let query = "query($n: Int) { patrons(first: $n) { edges { node {
        consents { purpose } consentHistory(first: 1) { totalCount edges { node { purpose } } } } } } }";
    let mut fewest = Vec::new();
    for n in [2, 8] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let before = app.sql_statements().await;
            let resp = app.client.query(Some(&staff), query, json!({ "n": n })).await;
            let edges = resp.ok()["patrons"]["edges"].as_array().unwrap().clone();
            assert_eq!(edges.len(), n);
            assert!(edges.iter().all(|e| e["node"]["consentHistory"]["totalCount"] == 2));
            runs.push(app.sql_statements().await - before);
        }
        fewest.push(runs.into_iter().min().unwrap());
    }
    assert_eq!(fewest[0], fewest[1], "statements must not grow with the number of patrons: {fewest:?}");
}
