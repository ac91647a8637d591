//! Patrons: create, update, read, list with filters, ordering and pagination, validation, and
//! the role rules of DESIGN.md.

use rapport::auth::Scope;
use rapport_tests::{GqlResponse, TestApp, spawn_app};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

const FIELDS: &str = "id cardNumber name email phone patronType homeBranch status tags
    consents { purpose granted source textVersion recordedAt } createdAt updatedAt";

const LIST: &str = "query($first: Int, $after: String, $last: Int, $before: String,
                          $filter: PatronsFilter, $order: PatronOrder) {
    patrons(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $order) {
        totalCount
        edges { cursor node { cardNumber name } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}";

const GET: &str = "query($id: ID!) { patron(id: $id) { id cardNumber name } }";

fn create_mutation() -> String {
    format!("mutation($i: CreatePatronInput!) {{ createPatron(input: $i) {{ {FIELDS} }} }}")
}

fn update_mutation() -> String {
    format!("mutation($i: UpdatePatronInput!) {{ updatePatron(input: $i) {{ {FIELDS} }} }}")
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

#[track_caller]
fn expect_field(resp: &GqlResponse, code: &str, field: &str) {
    resp.expect_code(code);
    assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{:#}", resp.body);
}

async fn create(app: &TestApp, token: &str, input: Value) -> GqlResponse {
    app.client.query(Some(token), &create_mutation(), json!({ "i": input })).await
}

async fn update(app: &TestApp, token: &str, input: Value) -> GqlResponse {
    app.client.query(Some(token), &update_mutation(), json!({ "i": input })).await
}

/// Create a patron as staff and return its global id.
async fn patron(app: &TestApp, input: Value) -> String {
    let resp = create(app, &app.staff_token(), input).await;
    str_at(resp.ok(), "/createPatron/id").to_owned()
}

async fn simple(app: &TestApp, card: &str, name: &str) -> String {
    patron(app, json!({ "cardNumber": card, "name": name, "patronType": "PUBLIC" })).await
}

async fn list(app: &TestApp, vars: Value) -> GqlResponse {
    app.client.query(Some(&app.staff_token()), LIST, vars).await
}

fn column(resp: &GqlResponse, field: &str) -> Vec<String> {
    resp.ok()["patrons"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"][field].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn cards(resp: &GqlResponse) -> Vec<String> {
    column(resp, "cardNumber")
}

fn names(resp: &GqlResponse) -> Vec<String> {
    column(resp, "name")
}

fn page_info(resp: &GqlResponse) -> (bool, bool) {
    let info = &resp.ok()["patrons"]["pageInfo"];
    (info["hasNextPage"].as_bool().unwrap(), info["hasPreviousPage"].as_bool().unwrap())
}

fn end_cursor(resp: &GqlResponse) -> String {
    str_at(resp.ok(), "/patrons/pageInfo/endCursor").to_owned()
}

fn start_cursor(resp: &GqlResponse) -> String {
    str_at(resp.ok(), "/patrons/pageInfo/startCursor").to_owned()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

fn uuid_of(gid: &str) -> Uuid {
    rapport::graphql::ids::decode_global_id(&async_graphql::ID(gid.to_owned())).expect("a global id").1
}

/// Erasure has its own feature; here the database is changed directly to get an erased row.
async fn erase_by_card(app: &TestApp, card: &str) {
    let sql = format!(
        "UPDATE patron SET name = NULL, card_number = NULL, email = NULL, phone = NULL, status = 'ERASED' \
         WHERE card_number = '{card}'"
    );
    app.state.db.execute_unprepared(&sql).await.expect("erase patron");
}

#[tokio::test]
async fn create_then_read_and_update_a_patron() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let resp = create(
        &app,
        &staff,
        json!({
            "cardNumber": " lib-0001 ",
            "name": "  Ada Lovelace ",
            "email": "ada@example.org",
            "phone": "+44 20 7946 0958",
            "patronType": "FACULTY",
            "homeBranch": "Main",
            "tags": ["stem", " mentor ", "stem"],
            "consents": [
                { "purpose": "MARKETING_EMAIL", "granted": true, "textVersion": "v1" },
                { "purpose": "PERSONALISATION", "granted": false }
            ]
        }),
    )
    .await;
    let created = resp.ok()["createPatron"].clone();
    assert_eq!(created["cardNumber"], "LIB-0001");
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(created["email"], "ada@example.org");
    assert_eq!(created["phone"], "+44 20 7946 0958");
    assert_eq!(created["patronType"], "FACULTY");
    assert_eq!(created["homeBranch"], "Main");
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["tags"], json!(["mentor", "stem"]));
    // One current consent per purpose, in the order purposes are declared.
    let consents = created["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 2);
    assert_eq!(consents[0]["purpose"], "PERSONALISATION");
    assert_eq!(consents[0]["granted"], false);
    assert_eq!(consents[0]["source"], "STAFF");
    assert_eq!(consents[0]["textVersion"], Value::Null);
    assert_eq!(consents[1]["purpose"], "MARKETING_EMAIL");
    assert_eq!(consents[1]["granted"], true);
    assert_eq!(consents[1]["textVersion"], "v1");
    assert!(created.get("pinHash").is_none());
    let id = created["id"].as_str().unwrap().to_owned();

    let resp = app
        .client
        .query(Some(&staff), &format!("query($id: ID!) {{ patron(id: $id) {{ {FIELDS} }} }}"), json!({ "id": id }))
        .await;
    assert_eq!(resp.ok()["patron"], created);

    // Partial update: omitted fields stay, null clears, tags are replaced, consents appended.
    let resp = update(
        &app,
        &staff,
        json!({
            "id": id,
            "name": "Augusta Ada King",
            "email": null,
            "patronType": "ALUMNI",
            "status": "INACTIVE",
            "tags": ["alumni"],
            "consents": [{ "purpose": "MARKETING_EMAIL", "granted": false }]
        }),
    )
    .await;
    let updated = resp.ok()["updatePatron"].clone();
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["name"], "Augusta Ada King");
    assert_eq!(updated["email"], Value::Null);
    assert_eq!(updated["phone"], "+44 20 7946 0958");
    assert_eq!(updated["cardNumber"], "LIB-0001");
    assert_eq!(updated["homeBranch"], "Main");
    assert_eq!(updated["patronType"], "ALUMNI");
    assert_eq!(updated["status"], "INACTIVE");
    assert_eq!(updated["tags"], json!(["alumni"]));
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(updated["updatedAt"].as_str().unwrap() >= created["updatedAt"].as_str().unwrap());
    let consents = updated["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 2);
    assert_eq!(consents[1]["purpose"], "MARKETING_EMAIL");
    assert_eq!(consents[1]["granted"], false, "the latest decision wins");
    assert_eq!(consents[0]["granted"], false);

    // An empty string clears too, and the tags can be removed altogether.
    let resp = update(&app, &staff, json!({ "id": id, "homeBranch": "", "phone": null, "tags": [] })).await;
    let updated = resp.ok()["updatePatron"].clone();
    assert_eq!(updated["homeBranch"], Value::Null);
    assert_eq!(updated["phone"], Value::Null);
    assert_eq!(updated["tags"], json!([]));
    assert_eq!(updated["name"], "Augusta Ada King");

    // Unknown ids.
    let missing = rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Patron, Uuid::now_v7());
    app.client.query(Some(&staff), GET, json!({ "id": missing })).await.expect_code("NOT_FOUND");
    update(&app, &staff, json!({ "id": missing, "name": "Nobody" })).await.expect_code("NOT_FOUND");
    app.client.query(Some(&staff), GET, json!({ "id": "not-an-id" })).await.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let valid = json!({ "cardNumber": "V-0001", "name": "Valid Person", "patronType": "PUBLIC" });
    let with = |key: &str, value: Value| {
        let mut input = valid.clone();
        input[key] = value;
        input
    };
    let cases = [
        (with("cardNumber", json!("x")), "input.cardNumber"),
        (with("cardNumber", json!("has spaces in it")), "input.cardNumber"),
        (with("name", json!("   ")), "input.name"),
        (with("name", json!("n".repeat(201))), "input.name"),
        (with("email", json!("not-an-email")), "input.email"),
        (with("phone", json!("call me maybe")), "input.phone"),
        (with("homeBranch", json!("b".repeat(101))), "input.homeBranch"),
        (with("status", json!("ERASED")), "input.status"),
        (with("tags", json!(["ok", "  "])), "input.tags"),
        (with("tags", json!(["t".repeat(51)])), "input.tags"),
        (with("tags", json!((0..21).map(|i| format!("tag{i}")).collect::<Vec<_>>())), "input.tags"),
        (
            with(
                "consents",
                json!([{ "purpose": "MARKETING_SMS", "granted": true }, { "purpose": "MARKETING_SMS", "granted": false }]),
            ),
            "input.consents",
        ),
    ];
    for (input, field) in cases {
        let resp = create(&app, &staff, input.clone()).await;
        assert!(resp.data().is_null() || resp.data()["createPatron"].is_null(), "{input}: {:#}", resp.body);
        expect_field(&resp, "BAD_USER_INPUT", field);
    }
    // Twenty tags after removing duplicates are fine.
    let tags: Vec<String> = (0..25).map(|i| format!("tag{}", i % 20)).collect();
    let resp = create(&app, &staff, with("tags", json!(tags))).await;
    assert_eq!(resp.ok()["createPatron"]["tags"].as_array().unwrap().len(), 20);
    let id = str_at(resp.data(), "/createPatron/id").to_owned();

    // Nothing half-created by the refused attempts.
    let resp = list(&app, json!({})).await;
    assert_eq!(resp.ok()["patrons"]["totalCount"], 1);

    // Updates are checked the same way.
    let cases = [
        (json!({ "id": id, "name": "" }), "input.name"),
        (json!({ "id": id, "email": "nope@" }), "input.email"),
        (json!({ "id": id, "phone": "12" }), "input.phone"),
        (json!({ "id": id, "cardNumber": "!" }), "input.cardNumber"),
        (json!({ "id": id, "status": "ERASED" }), "input.status"),
        (json!({ "id": id, "tags": [""] }), "input.tags"),
        (json!({ "id": "garbage", "name": "X" }), "input.id"),
        (
            json!({ "id": rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Service, Uuid::now_v7()), "name": "X" }),
            "input.id",
        ),
    ];
    for (input, field) in cases {
        let resp = update(&app, &staff, input).await;
        expect_field(&resp, "BAD_USER_INPUT", field);
    }
    // A refused update changes nothing, not even the tags given alongside.
    let resp = update(&app, &staff, json!({ "id": id, "tags": ["new"], "email": "bad" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "input.email");
    let resp =
        app.client.query(Some(&staff), "query($id: ID!) { patron(id: $id) { tags } }", json!({ "id": id })).await;
    assert_eq!(resp.ok()["patron"]["tags"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn card_numbers_are_unique() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let first = simple(&app, "U-0001", "First Person").await;
    simple(&app, "U-0002", "Second Person").await;

    // Card numbers are compared after normalising to upper case.
    let resp = create(&app, &staff, json!({ "cardNumber": "u-0001", "name": "Copy", "patronType": "PUBLIC",
                                            "tags": ["x"], "consents": [{ "purpose": "MARKETING_PUSH", "granted": true }] }))
        .await;
    resp.expect_code("CONFLICT");
    assert_eq!(resp.errors()[0]["message"], "card number already in use");
    let resp = update(&app, &staff, json!({ "id": first, "cardNumber": "U-0002" })).await;
    resp.expect_code("CONFLICT");
    assert_eq!(resp.errors()[0]["message"], "card number already in use");

    // The failed create left no patron, tags or consents behind.
    let resp = list(&app, json!({ "filter": { "tags": ["x"] } })).await;
    assert_eq!(resp.ok()["patrons"]["totalCount"], 0);
    let resp = list(&app, json!({})).await;
    assert_eq!(resp.ok()["patrons"]["totalCount"], 2);
    // Keeping one's own card number is not a conflict.
    update(&app, &staff, json!({ "id": first, "cardNumber": "U-0001", "name": "Renamed" })).await.ok();
}

/// Five patrons whose name, card number and creation orders all differ.
async fn seed_five(app: &TestApp) {
    for input in [
        json!({ "cardNumber": "K-0300", "name": "Dorothy Vaughan", "email": "dorothy@nasa.test", "patronType": "FACULTY",
                "homeBranch": "Harbour", "tags": ["stem"] }),
        json!({ "cardNumber": "K-0100", "name": "Bram Stoker", "email": "bram@dracula.test", "patronType": "PUBLIC",
                "homeBranch": "Harbour", "tags": ["fiction"] }),
        json!({ "cardNumber": "K-0500", "name": "Ada Lovelace", "email": "ada@example.org", "patronType": "FACULTY",
                "homeBranch": "Main", "tags": ["stem", "mentor"] }),
        json!({ "cardNumber": "K-0200", "name": "Edmund Hillary", "patronType": "ALUMNI", "tags": ["mentor", "outdoors"] }),
        json!({ "cardNumber": "K-0400", "name": "Clara Barton", "patronType": "ONLINE_LEARNER", "homeBranch": "Main",
                "status": "INACTIVE" }),
    ] {
        patron(app, input).await;
    }
}

#[tokio::test]
async fn filters_select_the_right_patrons() {
    let app = spawn_app().await;
    seed_five(&app).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["K-0500", "K-0100", "K-0400", "K-0300", "K-0200"]),
        // Text: case-insensitive, in name, card number or email; wildcards are literal.
        (json!({ "text": "LOVE" }), vec!["K-0500"]),
        (json!({ "text": "dracula" }), vec!["K-0100"]),
        (json!({ "text": "k-04" }), vec!["K-0400"]),
        (json!({ "text": "  " }), vec!["K-0500", "K-0100", "K-0400", "K-0300", "K-0200"]),
        (json!({ "text": "%" }), vec![]),
        (json!({ "text": "_" }), vec![]),
        (json!({ "text": ".test" }), vec!["K-0100", "K-0300"]),
        // Patron types: any of.
        (json!({ "patronTypes": ["FACULTY"] }), vec!["K-0500", "K-0300"]),
        (json!({ "patronTypes": ["FACULTY", "ALUMNI"] }), vec!["K-0500", "K-0300", "K-0200"]),
        (json!({ "patronTypes": [] }), vec!["K-0500", "K-0100", "K-0400", "K-0300", "K-0200"]),
        // Tags: any of, exact.
        (json!({ "tags": ["stem"] }), vec!["K-0500", "K-0300"]),
        (json!({ "tags": ["mentor", "fiction"] }), vec!["K-0500", "K-0100", "K-0200"]),
        (json!({ "tags": ["ste"] }), vec![]),
        // Statuses.
        (json!({ "statuses": ["INACTIVE"] }), vec!["K-0400"]),
        (json!({ "statuses": ["ACTIVE"] }), vec!["K-0500", "K-0100", "K-0300", "K-0200"]),
        (json!({ "statuses": ["ERASED"] }), vec![]),
        // Home branch.
        (json!({ "homeBranch": "Main" }), vec!["K-0500", "K-0400"]),
        (json!({ "homeBranch": "Nowhere" }), vec![]),
        // Combined: every filter must hold.
        (json!({ "tags": ["stem", "mentor"], "homeBranch": "Harbour" }), vec!["K-0300"]),
        (
            json!({ "text": "a", "patronTypes": ["FACULTY"], "statuses": ["ACTIVE"], "tags": ["mentor"] }),
            vec!["K-0500"],
        ),
    ];
    for (filter, expected) in cases {
        let resp = list(&app, json!({ "filter": filter })).await;
        assert_eq!(cards(&resp), strings(&expected), "filter {filter}");
        assert_eq!(resp.data()["patrons"]["totalCount"], expected.len(), "totalCount for {filter}");
    }
    let many: Vec<String> = (0..101).map(|i| format!("tag{i}")).collect();
    expect_field(&list(&app, json!({ "filter": { "tags": many } })).await, "BAD_USER_INPUT", "filter.tags");
    // totalCount counts across pages.
    let resp = list(&app, json!({ "first": 1, "filter": { "patronTypes": ["FACULTY"] } })).await;
    assert_eq!(cards(&resp), strings(&["K-0500"]));
    assert_eq!(resp.data()["patrons"]["totalCount"], 2);
}

#[tokio::test]
async fn ordering_both_directions() {
    let app = spawn_app().await;
    seed_five(&app).await;
    let cases = [
        (json!({}), vec!["K-0500", "K-0100", "K-0400", "K-0300", "K-0200"]),
        (json!({ "field": "NAME" }), vec!["K-0500", "K-0100", "K-0400", "K-0300", "K-0200"]),
        (json!({ "field": "NAME", "direction": "DESC" }), vec!["K-0200", "K-0300", "K-0400", "K-0100", "K-0500"]),
        (json!({ "field": "CARD_NUMBER" }), vec!["K-0100", "K-0200", "K-0300", "K-0400", "K-0500"]),
        (
            json!({ "field": "CARD_NUMBER", "direction": "DESC" }),
            vec!["K-0500", "K-0400", "K-0300", "K-0200", "K-0100"],
        ),
        (json!({ "field": "CREATED_AT" }), vec!["K-0300", "K-0100", "K-0500", "K-0200", "K-0400"]),
        (json!({ "field": "CREATED_AT", "direction": "DESC" }), vec!["K-0400", "K-0200", "K-0500", "K-0100", "K-0300"]),
    ];
    for (order, expected) in cases {
        // Whole list, and walked two at a time forwards, and backwards from the end.
        let resp = list(&app, json!({ "order": order })).await;
        assert_eq!(cards(&resp), strings(&expected), "order {order}");
        let mut walked = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let resp = list(&app, json!({ "order": order, "first": 2, "after": after })).await;
            walked.extend(cards(&resp));
            if !page_info(&resp).0 {
                break;
            }
            after = Some(end_cursor(&resp));
        }
        assert_eq!(walked, strings(&expected), "forward pages for {order}");
        let mut walked = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let resp = list(&app, json!({ "order": order, "last": 2, "before": before })).await;
            let mut page = cards(&resp);
            page.extend(walked);
            walked = page;
            if !page_info(&resp).1 {
                break;
            }
            before = Some(start_cursor(&resp));
        }
        assert_eq!(walked, strings(&expected), "backward pages for {order}");
    }
    // Equal names are ordered by id, i.e. by creation for v7 ids, and never repeat across pages.
    simple(&app, "T-0001", "Twin").await;
    simple(&app, "T-0002", "Twin").await;
    simple(&app, "T-0003", "Twin").await;
    let filter = json!({ "text": "twin" });
    let page1 = list(&app, json!({ "filter": filter, "first": 2 })).await;
    let page2 = list(&app, json!({ "filter": filter, "first": 2, "after": end_cursor(&page1) })).await;
    let mut all = cards(&page1);
    all.extend(cards(&page2));
    assert_eq!(all, strings(&["T-0001", "T-0002", "T-0003"]));
}

#[tokio::test]
async fn pagination_edges() {
    let app = spawn_app().await;
    for i in 1..=7 {
        simple(&app, &format!("P-{i:04}"), &format!("Patron{i:02}")).await;
    }
    let all: Vec<String> = (1..=7).map(|i| format!("Patron{i:02}")).collect();

    let p1 = list(&app, json!({ "first": 3 })).await;
    assert_eq!(names(&p1), all[0..3]);
    assert_eq!(page_info(&p1), (true, false));
    assert_eq!(p1.data()["patrons"]["totalCount"], 7);
    let p2 = list(&app, json!({ "first": 3, "after": end_cursor(&p1) })).await;
    assert_eq!(names(&p2), all[3..6]);
    assert_eq!(page_info(&p2), (true, true));
    let p3 = list(&app, json!({ "first": 3, "after": end_cursor(&p2) })).await;
    assert_eq!(names(&p3), all[6..7]);
    assert_eq!(page_info(&p3), (false, true));
    // Every edge cursor continues right after its row.
    let third = p1.data()["patrons"]["edges"][2]["cursor"].as_str().unwrap().to_owned();
    assert_eq!(third, end_cursor(&p1));

    // Backwards.
    let last = list(&app, json!({ "last": 3 })).await;
    assert_eq!(names(&last), all[4..7]);
    assert_eq!(page_info(&last), (false, true));
    let before = list(&app, json!({ "last": 3, "before": start_cursor(&last) })).await;
    assert_eq!(names(&before), all[1..4]);
    assert_eq!(page_info(&before), (true, true));
    let start = list(&app, json!({ "last": 3, "before": start_cursor(&before) })).await;
    assert_eq!(names(&start), all[0..1]);
    assert_eq!(page_info(&start), (true, false));

    // Descending pages.
    let d1 = list(&app, json!({ "first": 4, "order": { "field": "NAME", "direction": "DESC" } })).await;
    assert_eq!(names(&d1), strings(&["Patron07", "Patron06", "Patron05", "Patron04"]));
    let d2 =
        list(&app, json!({ "first": 4, "after": end_cursor(&d1), "order": { "field": "NAME", "direction": "DESC" } }))
            .await;
    assert_eq!(names(&d2), strings(&["Patron03", "Patron02", "Patron01"]));
    assert_eq!(page_info(&d2), (false, true));

    // Empty pages and the size cap.
    let empty = list(&app, json!({ "first": 0 })).await;
    assert_eq!(names(&empty), Vec::<String>::new());
    assert_eq!(empty.data()["patrons"]["totalCount"], 7);
    let full = list(&app, json!({ "first": 100 })).await;
    assert_eq!(names(&full), all);
    assert_eq!(page_info(&full), (false, false));
    let default = list(&app, json!({})).await;
    assert_eq!(names(&default), all);
    expect_field(&list(&app, json!({ "first": 101 })).await, "BAD_USER_INPUT", "first");
    expect_field(&list(&app, json!({ "last": 101 })).await, "BAD_USER_INPUT", "last");
    expect_field(&list(&app, json!({ "first": -1 })).await, "BAD_USER_INPUT", "first");
    list(&app, json!({ "first": 1, "last": 1 })).await.expect_code("BAD_USER_INPUT");

    // Cursors that are not ours.
    expect_field(&list(&app, json!({ "first": 2, "after": "garbage" })).await, "BAD_USER_INPUT", "after");
    expect_field(&list(&app, json!({ "last": 2, "before": "!!!" })).await, "BAD_USER_INPUT", "before");
    let by_time = list(&app, json!({ "first": 1, "order": { "field": "CREATED_AT" } })).await;
    let resp = list(&app, json!({ "first": 2, "after": end_cursor(&by_time) })).await;
    expect_field(&resp, "BAD_USER_INPUT", "after");

    // Stability: rows inserted between page fetches are neither skipped nor repeated.
    let page = list(&app, json!({ "first": 3 })).await;
    let mut seen = names(&page);
    let mut cursor = end_cursor(&page);
    simple(&app, "P-0000", "Patron00").await; // sorts before the cursor: not on later pages
    simple(&app, "P-0035", "Patron035").await; // sorts after it: shows up once
    loop {
        let page = list(&app, json!({ "first": 3, "after": cursor })).await;
        seen.extend(names(&page));
        if !page_info(&page).0 {
            break;
        }
        cursor = end_cursor(&page);
    }
    assert_eq!(
        seen,
        strings(&["Patron01", "Patron02", "Patron03", "Patron035", "Patron04", "Patron05", "Patron06", "Patron07"])
    );

    // Erased patrons have no name or card number: they sort first and pages still walk them.
    erase_by_card(&app, "P-0002").await;
    erase_by_card(&app, "P-0005").await;
    for field in ["NAME", "CARD_NUMBER"] {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let mut walked = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = list(&app, json!({ "first": 2, "after": after, "order": order })).await;
                walked.extend(names(&page));
                if !page_info(&page).0 {
                    break;
                }
                after = Some(end_cursor(&page));
            }
            assert_eq!(walked.len(), 9, "{order}: {walked:?}");
            let erased = walked.iter().filter(|n| n.is_empty()).count();
            assert_eq!(erased, 2, "{order}: {walked:?}");
            let blanks: Vec<usize> = walked.iter().enumerate().filter(|(_, n)| n.is_empty()).map(|(i, _)| i).collect();
            if direction == "ASC" {
                assert_eq!(blanks, vec![0, 1], "{order}");
            } else {
                assert_eq!(blanks, vec![7, 8], "{order}");
            }
        }
    }
}

#[tokio::test]
async fn erased_patrons_cannot_be_changed() {
    let app = spawn_app().await;
    let id = simple(&app, "E-0001", "To Be Erased").await;
    erase_by_card(&app, "E-0001").await;
    let resp = update(&app, &app.staff_token(), json!({ "id": id, "name": "Back Again" })).await;
    resp.expect_code("CONFLICT");
    let resp = app.client.query(Some(&app.staff_token()), GET, json!({ "id": id })).await;
    assert_eq!(resp.ok()["patron"]["name"], Value::Null);
    assert_eq!(resp.ok()["patron"]["cardNumber"], Value::Null);
}

#[tokio::test]
async fn roles_decide_who_reads_and_writes_patrons() {
    let app = spawn_app().await;
    let me = patron(&app, json!({ "cardNumber": "R-0001", "name": "Self Person", "patronType": "CHILD",
                                  "tags": ["secret-label"], "consents": [{ "purpose": "MARKETING_IN_APP", "granted": true }] }))
        .await;
    let other = simple(&app, "R-0002", "Other Person").await;
    let my_token = app.patron_token(uuid_of(&me));
    let reader = app.partner_token(&[Scope::PatronsRead]);
    let writer = app.partner_token(&[Scope::PatronsWrite]);
    let unscoped = app.partner_token(&[Scope::ServicesRead, Scope::InteractionsRead]);
    let funder = app.funder_token(Uuid::now_v7());
    let new_input = |card: &str| json!({ "cardNumber": card, "name": "Someone", "patronType": "PUBLIC" });
    let app_ref = &app;
    let query = move |token: Option<String>, q: &'static str, vars: Value| async move {
        app_ref.client.query(token.as_deref(), q, vars).await
    };
    const LIST_Q: &str = "{ patrons { totalCount edges { node { name tags } } } }";
    const TAGS: &str = "query($id: ID!) { patron(id: $id) { name tags } }";
    const CONSENTS: &str = "query($id: ID!) { patron(id: $id) { name consents { purpose granted } } }";
    const ME: &str = "{ me { id name cardNumber consents { purpose granted } } }";

    // Staff and admins: everything.
    for token in [app.staff_token(), app.admin_token()] {
        let resp = query(Some(token.clone()), LIST_Q, json!({})).await;
        assert_eq!(resp.ok()["patrons"]["totalCount"], 2);
        let resp = query(Some(token.clone()), TAGS, json!({ "id": me })).await;
        assert_eq!(resp.ok()["patron"]["tags"], json!(["secret-label"]));
        query(Some(token.clone()), TAGS, json!({ "id": other })).await.ok();
        query(Some(token.clone()), ME, json!({})).await.expect_code("FORBIDDEN");
    }
    let admin = app.admin_token();
    create(&app, &admin, new_input("R-0003")).await.ok();
    update(&app, &admin, json!({ "id": other, "homeBranch": "North" })).await.ok();

    // A patron: own record (without tags) and `me`; nobody else's, and no list.
    let resp = query(Some(my_token.clone()), CONSENTS, json!({ "id": me })).await;
    assert_eq!(resp.ok()["patron"]["name"], "Self Person");
    assert_eq!(resp.ok()["patron"]["consents"], json!([{ "purpose": "MARKETING_IN_APP", "granted": true }]));
    let resp = query(Some(my_token.clone()), ME, json!({})).await;
    assert_eq!(resp.ok()["me"]["id"], me.as_str());
    assert_eq!(resp.ok()["me"]["cardNumber"], "R-0001");
    let resp = query(Some(my_token.clone()), TAGS, json!({ "id": me })).await;
    resp.expect_code("FORBIDDEN");
    assert_eq!(resp.errors()[0]["path"], json!(["patron", "tags"]));
    query(Some(my_token.clone()), GET, json!({ "id": other })).await.expect_code("FORBIDDEN");
    query(Some(my_token.clone()), LIST_Q, json!({})).await.expect_code("FORBIDDEN");
    query(Some(my_token.clone()), "{ patrons(first: 1) { edges { node { id } } } }", json!({}))
        .await
        .expect_code("FORBIDDEN");
    let node = "query($id: ID!) { node(id: $id) { id } }";
    query(Some(my_token.clone()), node, json!({ "id": other })).await.expect_code("FORBIDDEN");
    create(&app, &my_token, new_input("R-0004")).await.expect_code("FORBIDDEN");
    update(&app, &my_token, json!({ "id": me, "name": "Me Myself" })).await.expect_code("FORBIDDEN");
    // A patron token for a record that does not exist (any more).
    let ghost = app.patron_token(Uuid::now_v7());
    query(Some(ghost), ME, json!({})).await.expect_code("NOT_FOUND");

    // Partners: reading needs patrons:read (or write), writing patrons:write.
    let resp = query(Some(reader.clone()), LIST_Q, json!({})).await;
    assert_eq!(resp.ok()["patrons"]["totalCount"], 3);
    let resp = query(Some(reader.clone()), TAGS, json!({ "id": me })).await;
    assert_eq!(resp.ok()["patron"]["tags"], json!(["secret-label"]));
    create(&app, &reader, new_input("R-0005")).await.expect_code("FORBIDDEN");
    update(&app, &reader, json!({ "id": other, "name": "Changed" })).await.expect_code("FORBIDDEN");
    query(Some(reader.clone()), ME, json!({})).await.expect_code("FORBIDDEN");
    let resp = create(&app, &writer, new_input("R-0006")).await;
    assert_eq!(resp.ok()["createPatron"]["cardNumber"], "R-0006");
    let resp = update(&app, &writer, json!({ "id": other, "name": "Changed By Partner" })).await;
    assert_eq!(resp.ok()["updatePatron"]["name"], "Changed By Partner");
    query(Some(writer.clone()), GET, json!({ "id": other })).await.ok();
    query(Some(unscoped.clone()), LIST_Q, json!({})).await.expect_code("FORBIDDEN");
    query(Some(unscoped.clone()), GET, json!({ "id": me })).await.expect_code("FORBIDDEN");
    create(&app, &unscoped, new_input("R-0007")).await.expect_code("FORBIDDEN");

    // Funders never see a patron.
    query(Some(funder.clone()), LIST_Q, json!({})).await.expect_code("FORBIDDEN");
    query(Some(funder.clone()), GET, json!({ "id": me })).await.expect_code("FORBIDDEN");
    query(Some(funder.clone()), ME, json!({})).await.expect_code("FORBIDDEN");
    create(&app, &funder, new_input("R-0008")).await.expect_code("FORBIDDEN");
    update(&app, &funder, json!({ "id": me, "name": "X" })).await.expect_code("FORBIDDEN");

    // Anonymous callers are asked to log in.
    query(None, LIST_Q, json!({})).await.expect_code("UNAUTHENTICATED");
    query(None, GET, json!({ "id": me })).await.expect_code("UNAUTHENTICATED");
    query(None, ME, json!({})).await.expect_code("UNAUTHENTICATED");
    let resp = app.client.query(None, &create_mutation(), json!({ "i": new_input("R-0009") })).await;
    resp.expect_code("UNAUTHENTICATED");
    let resp = app.client.query(None, &update_mutation(), json!({ "i": { "id": me, "name": "X" } })).await;
    resp.expect_code("UNAUTHENTICATED");

    // None of the refused writes happened.
    let resp = list(&app, json!({})).await;
    assert_eq!(cards(&resp), strings(&["R-0002", "R-0001", "R-0003", "R-0006"]));
}

#[tokio::test]
async fn tags_and_consents_are_batched() {
    let app = spawn_app().await;
    for i in 0..12 {
        patron(
            &app,
            json!({ "cardNumber": format!("B-{i:04}"), "name": format!("Batch{i:02}"), "patronType": "PUBLIC",
                    "tags": [format!("t{}", i % 3), "all"],
                    "consents": [{ "purpose": "PERSONALISATION", "granted": i % 2 == 0 },
                                 { "purpose": "MARKETING_SMS", "granted": true }] }),
        )
        .await;
    }
    let query = "query($n: Int) { patrons(first: $n) { edges { node { name tags consents { purpose granted } } } } }";
    let staff = app.staff_token();
    let mut costs = Vec::new();
    for n in [2, 12] {
        let before = app.sql_statements().await;
        let resp = app.client.query(Some(&staff), query, json!({ "n": n })).await;
        let edges = resp.ok()["patrons"]["edges"].as_array().unwrap().clone();
        assert_eq!(edges.len(), n as usize);
        for edge in &edges {
            assert_eq!(edge["node"]["tags"].as_array().unwrap().len(), 2);
            assert_eq!(edge["node"]["consents"].as_array().unwrap().len(), 2);
        }
        costs.push(app.sql_statements().await - before);
    }
    assert_eq!(costs[0], costs[1], "statements for 2 vs 12 patrons: {costs:?}");
}

#[tokio::test]
async fn a_patron_lists_its_own_interactions() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
            json!({ "i": { "code": "CHAT", "name": "Chat reference", "category": "REFERENCE" } }),
        )
        .await;
    let service = str_at(resp.ok(), "/createService/id").to_owned();
    let ada = simple(&app, "I-0001", "Ada Lovelace").await;
    let bram = simple(&app, "I-0002", "Bram Stoker").await;
    for (who, day) in [(&ada, 1), (&ada, 2), (&bram, 3)] {
        let resp = app
            .client
            .query(
                Some(&staff),
                "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
                json!({ "i": { "patronId": who, "serviceId": service, "kind": "VISIT", "channel": "IN_PERSON",
                               "occurredAt": format!("2026-02-0{day}T09:00:00Z") } }),
            )
            .await;
        resp.ok();
    }
    let query = "query($id: ID!) { patron(id: $id) { interactions { totalCount edges { node { id } } } } }";
    let resp = app.client.query(Some(&staff), query, json!({ "id": ada })).await;
    assert_eq!(resp.ok()["patron"]["interactions"]["totalCount"], 2);
    assert_eq!(resp.ok()["patron"]["interactions"]["edges"].as_array().unwrap().len(), 2);
    let resp = app
        .client
        .query(Some(&app.patron_token(uuid_of(&bram))), "{ me { interactions { totalCount } } }", json!({}))
        .await;
    assert_eq!(resp.ok()["me"]["interactions"]["totalCount"], 1);
}
