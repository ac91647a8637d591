//! Privacy: export of everything held about a patron, erasure (no personal data left anywhere
//! in the database, report counts unchanged, logins gone, idempotent), and the retention purge.
//!
//! The personal-data scan reads the table and column names from the database itself
//! (`sqlite_master` / `information_schema`), so tables added later are covered automatically.

use chrono::{Duration, SecondsFormat, Utc};
use rapport::{
    auth::Scope,
    domain::privacy::{self, PURGE_BATCH},
};
use rapport_tests::{GqlResponse, TestApp, TestOptions, server::spawn_on, spawn_app};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    audit::{audit_events, create_service, record_interaction},
    consent::{UPDATE_MINE, create_patron, uuid_of},
};

const PATRON_LOGIN: &str = "mutation($c: String!, $p: String!) { patronLogin(cardNumber: $c, pin: $p) {
    accessToken refreshToken } }";
const ERASE: &str = "mutation($id: ID!) { erasePatron(id: $id) {
    patronId erased erasedAt interactionsAnonymised consentEventsDeleted tagsDeleted } }";
const ERASE_ME: &str = "mutation { eraseMe { patronId erased interactionsAnonymised } }";
const EXPORT: &str = "query($id: ID!) { exportPatronData(id: $id) }";
const EXPORT_MINE: &str = "{ exportMyData }";

// ---------------------------------------------------------------------------------------------
// Helpers

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.expect(sql)
}

/// Every (table, column) of the database, read from its catalogue.
async fn all_columns(db: &DatabaseConnection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let sql = "SELECT CAST(table_name AS TEXT) AS t, CAST(column_name AS TEXT) AS c \
                       FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2";
            for row in rows(db, sql).await {
                out.push((row.try_get::<String>("", "t").unwrap(), row.try_get::<String>("", "c").unwrap()));
            }
        }
        _ => {
            let tables = rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").await;
            for table in tables {
                let table: String = table.try_get("", "name").unwrap();
                for column in rows(db, &format!("PRAGMA table_info(\"{table}\")")).await {
                    out.push((table.clone(), column.try_get::<String>("", "name").unwrap()));
                }
            }
        }
    }
    assert!(out.iter().any(|(t, _)| t == "patron") && out.iter().any(|(t, _)| t == "audit_event"), "{out:?}");
    out
}

/// Where each of `needles` (case-insensitive) appears: every column of every table, read as
/// text; one statement per column.
async fn scan(db: &DatabaseConnection, needles: &[&str]) -> Vec<Vec<String>> {
    let mut found = vec![Vec::new(); needles.len()];
    let patterns: Vec<String> = needles.iter().map(|n| format!("%{}%", n.to_lowercase().replace('\'', "''"))).collect();
    for (table, column) in all_columns(db).await {
        let counts: Vec<String> = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| format!("COUNT(CASE WHEN LOWER(CAST(\"{column}\" AS TEXT)) LIKE '{p}' THEN 1 END) AS n{i}"))
            .collect();
        let sql = format!("SELECT {} FROM \"{table}\"", counts.join(", "));
        let row = rows(db, &sql).await.remove(0);
        for (i, locations) in found.iter_mut().enumerate() {
            let n = row.try_get::<i64>("", &format!("n{i}")).unwrap();
            if n > 0 {
                locations.push(format!("{table}.{column} ({n})"));
            }
        }
    }
    found
}

async fn occurrences(db: &DatabaseConnection, needle: &str) -> Vec<String> {
    scan(db, &[needle]).await.remove(0)
}

/// Assert none of `needles` is anywhere in the database.
async fn assert_gone(db: &DatabaseConnection, needles: &[&str]) {
    for (needle, found) in needles.iter().zip(scan(db, needles).await) {
        assert!(found.is_empty(), "`{needle}` is still stored in {found:?}");
    }
}

/// Assert every one of `needles` is stored somewhere (the scan sees what is there).
async fn assert_stored(db: &DatabaseConnection, needles: &[&str]) {
    for (needle, found) in needles.iter().zip(scan(db, needles).await) {
        assert!(!found.is_empty(), "`{needle}` should be stored");
    }
}

/// The counts reports are built from: interactions by service, by patron type, by channel and
/// kind, with ratings.
async fn report_counts(db: &DatabaseConnection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT s.code AS k, COUNT(*) AS n FROM interaction i JOIN service s ON s.id = i.service_id \
         GROUP BY s.code ORDER BY 1",
        "SELECT patron_type AS k, COUNT(*) AS n FROM interaction GROUP BY patron_type ORDER BY 1",
        "SELECT channel || '/' || kind AS k, COUNT(*) AS n FROM interaction GROUP BY channel, kind ORDER BY 1",
        "SELECT CAST(rating AS TEXT) AS k, COUNT(*) AS n FROM interaction WHERE rating IS NOT NULL GROUP BY rating ORDER BY 1",
        "SELECT 'total' AS k, COUNT(*) AS n FROM interaction",
    ] {
        for row in rows(db, sql).await {
            out.push(format!("{}={}", row.try_get::<String>("", "k").unwrap(), row.try_get::<i64>("", "n").unwrap()));
        }
    }
    out
}

fn ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A patron with every kind of personal data, a PIN and interactions carrying comments and
/// notes. Returns the global id.
struct Person {
    id: String,
    card: &'static str,
    pin: &'static str,
    secrets: Vec<String>,
}

async fn person(app: &TestApp, tag: &str, services: &[String], pin: &'static str, card: &'static str) -> Person {
    let name = format!("Zebedee {tag} Quillfeather");
    let email = format!("zebedee.{tag}@example.org").to_lowercase();
    let phone = format!("+44 7700 90{}", &card[card.len() - 4..]);
    let label = format!("label-{tag}-vip");
    let id = create_patron(
        app,
        card,
        &name,
        json!({ "email": email, "phone": phone, "tags": [label, "shared-tag"], "homeBranch": "Main",
                "consents": [{ "purpose": "MARKETING_EMAIL", "granted": true, "textVersion": "v1" }] }),
    )
    .await;
    app.client
        .query(
            Some(&app.staff_token()),
            "mutation($p: ID!, $pin: String!) { setPatronPin(patronId: $p, pin: $pin) { id } }",
            json!({ "p": id, "pin": pin }),
        )
        .await
        .ok();
    let mut secrets = vec![name, email, phone, card.to_owned(), label];
    for (i, svc) in services.iter().enumerate() {
        let comment = format!("comment-{tag}-{i}-was-lovely");
        let notes = format!("note-{tag}-{i}-call-back");
        record_interaction(
            app,
            json!({ "patronId": id, "serviceId": svc, "kind": if i % 2 == 0 { "VISIT" } else { "LOAN" },
                    "channel": if i % 2 == 0 { "IN_PERSON" } else { "WEB" }, "occurredAt": ago(i as i64 + 1),
                    "rating": (i % 5) + 1, "comment": comment, "staffNotes": notes }),
        )
        .await;
        secrets.push(comment);
        secrets.push(notes);
    }
    Person { id, card, pin, secrets }
}

fn strs(secrets: &[String]) -> Vec<&str> {
    secrets.iter().map(String::as_str).collect()
}

async fn login(app: &TestApp, card: &str, pin: &str) -> GqlResponse {
    app.client.query(None, PATRON_LOGIN, json!({ "c": card, "p": pin })).await
}

// ---------------------------------------------------------------------------------------------
// Export

#[tokio::test]
async fn export_holds_everything_about_the_patron_and_nothing_of_others() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let services = vec![create_service(&app, "EXP-A").await, create_service(&app, "EXP-B").await];
    let ada = person(&app, "exporta", &services, "2468", "EXP-0001").await;
    let bob = person(&app, "exportb", &services[..1], "1357", "EXP-0002").await;
    let ada_token = app.patron_token(uuid_of(&ada.id));
    app.client
        .query(
            Some(&ada_token),
            UPDATE_MINE,
            json!({ "i": { "textVersion": "v2", "consents": [{ "purpose": "PERSONALISATION", "granted": true }] } }),
        )
        .await
        .ok();
    // Someone on the staff looks the patron up: the export says so.
    app.client.query(Some(&staff), "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": ada.id })).await.ok();

    let resp = app.client.query(Some(&staff), EXPORT, json!({ "id": ada.id })).await;
    let doc = resp.ok()["exportPatronData"].clone();
    assert_eq!(doc["format"], privacy::EXPORT_FORMAT);
    let patron = &doc["patron"];
    assert_eq!(patron["id"], uuid_of(&ada.id).to_string());
    assert_eq!(patron["name"], ada.secrets[0].as_str());
    assert_eq!(patron["email"], ada.secrets[1].as_str());
    assert_eq!(patron["phone"], ada.secrets[2].as_str());
    assert_eq!(patron["cardNumber"], ada.card);
    assert_eq!(patron["status"], "ACTIVE");
    assert_eq!(patron["hasPin"], true);
    assert_eq!(doc["tags"], json!(["label-exporta-vip", "shared-tag"]));
    assert_eq!(doc["consents"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(doc["consents"]["current"].as_array().unwrap().len(), 2);
    assert_eq!(doc["consents"]["history"][1]["source"], "APP");
    let interactions = doc["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 2);
    assert!(interactions.iter().all(|i| i["staffNotes"].as_str().is_some_and(|n| n.starts_with("note-exporta"))));
    assert!(interactions.iter().all(|i| i["comment"].as_str().is_some_and(|c| c.starts_with("comment-exporta"))));
    assert!(interactions.iter().all(|i| i["service"]["code"].as_str().is_some_and(|c| c.starts_with("EXP-"))));
    let audit: Vec<(String, String)> = doc["auditEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actorRole"].as_str().unwrap().to_owned()))
        .collect();
    for expected in
        [("CREATE_PATRON", "STAFF"), ("UPDATE_CONSENT", "PATRON"), ("READ_PATRON", "STAFF"), ("EXPORT_PATRON", "STAFF")]
    {
        assert!(audit.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} missing from {audit:?}");
    }
    // Nothing of the other patron, and never the PIN hash.
    let text = doc.to_string();
    for secret in &bob.secrets {
        assert!(!text.contains(secret.as_str()), "{secret} of another patron leaked into the export");
    }
    assert!(!text.contains(&uuid_of(&bob.id).to_string()));
    assert!(!text.contains("argon2"), "the PIN hash is never exported");

    // The patron's own export: the same data, without staff notes.
    let resp = app.client.query(Some(&ada_token), EXPORT_MINE, json!({})).await;
    let mine = resp.ok()["exportMyData"].clone();
    assert_eq!(mine["patron"]["name"], ada.secrets[0].as_str());
    assert_eq!(mine["tags"], doc["tags"]);
    let interactions = mine["interactions"].as_array().unwrap();
    assert_eq!(interactions.len(), 2);
    assert!(interactions.iter().all(|i| i.get("staffNotes").is_none() && i["comment"].is_string()));
    assert!(!mine.to_string().contains("note-exporta"));
    let exports = mine["auditEvents"].as_array().unwrap().iter().filter(|e| e["action"] == "EXPORT_PATRON").count();
    assert_eq!(exports, 2, "the staff export and this one");

    // Who may export.
    app.client.query(None, EXPORT_MINE, json!({})).await.expect_code("UNAUTHENTICATED");
    app.client.query(None, EXPORT, json!({ "id": ada.id })).await.expect_code("UNAUTHENTICATED");
    let everything = app.partner_token(&Scope::ALL);
    for token in [staff.clone(), app.admin_token(), everything.clone(), app.funder_token(Uuid::now_v7())] {
        app.client.query(Some(&token), EXPORT_MINE, json!({})).await.expect_code("FORBIDDEN");
    }
    for token in [ada_token.clone(), everything, app.funder_token(Uuid::now_v7())] {
        app.client.query(Some(&token), EXPORT, json!({ "id": ada.id })).await.expect_code("FORBIDDEN");
    }
    app.client.query(Some(&app.admin_token()), EXPORT, json!({ "id": ada.id })).await.ok();
    let unknown = rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Patron, Uuid::now_v7());
    app.client.query(Some(&staff), EXPORT, json!({ "id": unknown.as_str() })).await.expect_code("NOT_FOUND");
    let resp = app.client.query(Some(&staff), EXPORT, json!({ "id": "nope" })).await;
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["extensions"]["field"], "id");
}

// ---------------------------------------------------------------------------------------------
// Erasure

#[tokio::test]
async fn erasure_leaves_no_personal_data_and_keeps_every_count() {
    let app = spawn_app().await;
    let db = app.state.db.clone();
    let services = vec![
        create_service(&app, "ERA-A").await,
        create_service(&app, "ERA-B").await,
        create_service(&app, "ERA-C").await,
    ];
    let ada = person(&app, "erasea", &services, "2468", "ERA-0001").await;
    let bob = person(&app, "eraseb", &services[1..], "1357", "ERA-0002").await;
    // A patron's own consent change, and staff reading the patron: both leave audit events.
    let resp = login(&app, ada.card, ada.pin).await;
    let access = resp.ok()["patronLogin"]["accessToken"].as_str().unwrap().to_owned();
    let refresh = resp.ok()["patronLogin"]["refreshToken"].as_str().unwrap().to_owned();
    app.client
        .query(
            Some(&access),
            UPDATE_MINE,
            json!({ "i": { "textVersion": "v2", "consents": [{ "purpose": "MARKETING_SMS", "granted": true }] } }),
        )
        .await
        .ok();
    app.client
        .query(Some(&app.staff_token()), "query($id: ID!) { patron(id: $id) { name email } }", json!({ "id": ada.id }))
        .await
        .ok();
    app.state.audit.flush().await;
    let before = report_counts(&db).await;
    // The scan sees what is there: everything of both patrons before erasure.
    assert_stored(&db, &strs(&ada.secrets)).await;
    assert_stored(&db, &strs(&bob.secrets)).await;

    let resp = app.client.query(Some(&app.admin_token()), ERASE, json!({ "id": ada.id })).await;
    let erased = resp.ok()["erasePatron"].clone();
    assert_eq!(erased["patronId"], ada.id.as_str());
    assert_eq!(erased["erased"], true);
    assert_eq!(erased["interactionsAnonymised"], 3);
    assert_eq!(erased["consentEventsDeleted"], 2);
    assert_eq!(erased["tagsDeleted"], 2);

    // Nothing personal of the erased patron remains anywhere; the other patron is untouched.
    app.state.audit.flush().await;
    assert_gone(&db, &strs(&ada.secrets)).await;
    assert_stored(&db, &strs(&bob.secrets)).await;
    assert_eq!(report_counts(&db).await, before, "the counts used by reports are unchanged");
    let remaining = rows(&db, "SELECT COUNT(*) AS n FROM interaction WHERE patron_id IS NULL").await;
    assert_eq!(remaining[0].try_get::<i64>("", "n").unwrap(), 3);

    // The record stays, without personal data.
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "query($id: ID!) { patron(id: $id) { name email phone cardNumber status erasedAt tags consents { purpose }
                interactions { totalCount } } }",
            json!({ "id": ada.id }),
        )
        .await;
    let patron = resp.ok()["patron"].clone();
    assert_eq!(
        (&patron["name"], &patron["email"], &patron["phone"], &patron["cardNumber"]),
        (&Value::Null, &Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(patron["status"], "ERASED");
    assert!(patron["erasedAt"].is_string());
    assert_eq!(patron["tags"], json!([]));
    assert_eq!(patron["consents"], json!([]));
    assert_eq!(patron["interactions"]["totalCount"], 0);

    // The patron's logins are gone: the session's tokens and the card + PIN.
    app.client.query(Some(&access), "{ me { id } }", json!({})).await.expect_code("UNAUTHENTICATED");
    let resp = app
        .client
        .query(None, "mutation($t: String!) { refreshToken(token: $t) { accessToken } }", json!({ "t": refresh }))
        .await;
    resp.expect_code("UNAUTHENTICATED");
    login(&app, ada.card, ada.pin).await.expect_code("UNAUTHENTICATED");
    login(&app, bob.card, bob.pin).await.ok();
    // A token minted outside any session stands for no one either.
    let minted = app.patron_token(uuid_of(&ada.id));
    app.client.query(Some(&minted), "{ me { id } }", json!({})).await.expect_code("UNAUTHENTICATED");
    app.client.query(Some(&minted), EXPORT_MINE, json!({})).await.expect_code("UNAUTHENTICATED");

    // Erasing again succeeds and changes nothing.
    let resp = app.client.query(Some(&app.admin_token()), ERASE, json!({ "id": ada.id })).await;
    let again = resp.ok()["erasePatron"].clone();
    assert_eq!(again["erased"], false);
    assert_eq!(again["erasedAt"], erased["erasedAt"]);
    assert_eq!(again["interactionsAnonymised"], 0);
    assert_eq!(report_counts(&db).await, before);

    // The audit trail keeps who erased whom, with counts only.
    let events = audit_events(&app, json!({ "targetPatronId": ada.id, "action": "ERASE_PATRON" })).await;
    let details: Vec<&str> = events.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(
        details,
        vec![
            "already erased; nothing changed",
            "interactions anonymised: 3; consent events deleted: 2; tags deleted: 2; logins disabled",
        ]
    );
    assert!(events.iter().all(|e| e["actorRole"] == "ADMIN"));
    assert_gone(&db, &strs(&ada.secrets)).await;

    // An erased patron can no longer be changed or given new interactions.
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: UpdatePatronInput!) { updatePatron(input: $i) { id } }",
            json!({ "i": { "id": ada.id, "name": "Back Again" } }),
        )
        .await;
    resp.expect_code("CONFLICT");
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": { "patronId": ada.id, "serviceId": services[0], "kind": "VISIT", "channel": "WEB" } }),
        )
        .await;
    resp.expect_code("BAD_USER_INPUT");
}

#[tokio::test]
async fn patrons_may_erase_themselves_and_admins_anyone() {
    let app = spawn_app().await;
    let services = vec![create_service(&app, "SELF-A").await];
    let ada = person(&app, "selfa", &services, "2468", "SELF-0001").await;
    let bob = person(&app, "selfb", &services, "1357", "SELF-0002").await;
    let ada_minted = app.patron_token(uuid_of(&ada.id));
    let bob_minted = app.patron_token(uuid_of(&bob.id));

    // Who may not.
    app.client.query(None, ERASE, json!({ "id": ada.id })).await.expect_code("UNAUTHENTICATED");
    app.client.query(None, ERASE_ME, json!({})).await.expect_code("UNAUTHENTICATED");
    let everything = app.partner_token(&Scope::ALL);
    for token in [app.staff_token(), everything.clone(), app.funder_token(Uuid::now_v7()), bob_minted.clone()] {
        app.client.query(Some(&token), ERASE, json!({ "id": ada.id })).await.expect_code("FORBIDDEN");
    }
    for token in [app.staff_token(), app.admin_token(), everything, app.funder_token(Uuid::now_v7())] {
        app.client.query(Some(&token), ERASE_ME, json!({})).await.expect_code("FORBIDDEN");
    }
    let resp = app.client.query(Some(&app.admin_token()), ERASE, json!({ "id": "nope" })).await;
    resp.expect_code("BAD_USER_INPUT");
    let unknown = rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::Patron, Uuid::now_v7());
    app.client.query(Some(&app.admin_token()), ERASE, json!({ "id": unknown.as_str() })).await.expect_code("NOT_FOUND");
    // Nothing was erased by the refused calls.
    let resp = login(&app, ada.card, ada.pin).await;
    let session = resp.ok()["patronLogin"]["accessToken"].as_str().unwrap().to_owned();

    // A patron erases themself (here with a token minted outside any session, which also ends).
    let resp = app.client.query(Some(&ada_minted), ERASE_ME, json!({})).await;
    assert_eq!(resp.ok()["eraseMe"]["erased"], true);
    assert_eq!(resp.ok()["eraseMe"]["interactionsAnonymised"], 1);
    app.client.query(Some(&ada_minted), "{ me { id } }", json!({})).await.expect_code("UNAUTHENTICATED");
    app.client.query(Some(&session), "{ me { id } }", json!({})).await.expect_code("UNAUTHENTICATED");
    login(&app, ada.card, ada.pin).await.expect_code("UNAUTHENTICATED");
    app.state.audit.flush().await;
    assert_gone(&app.state.db, &strs(&ada.secrets)).await;
    let events = audit_events(&app, json!({ "targetPatronId": ada.id, "action": "ERASE_PATRON" })).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actorRole"], "PATRON");

    // The other patron through `erasePatron` with their own id; an admin repeating it is fine.
    let resp = app.client.query(Some(&bob_minted), ERASE, json!({ "id": bob.id })).await;
    assert_eq!(resp.ok()["erasePatron"]["erased"], true);
    let resp = app.client.query(Some(&app.admin_token()), ERASE, json!({ "id": bob.id })).await;
    assert_eq!(resp.ok()["erasePatron"]["erased"], false);
    assert_gone(&app.state.db, &strs(&bob.secrets)).await;
}

// ---------------------------------------------------------------------------------------------
// Retention

#[tokio::test]
async fn the_retention_job_anonymises_only_old_interactions() {
    let app = spawn_app().await;
    let db = app.state.db.clone();
    let svc = create_service(&app, "RET-A").await;
    let ada = create_patron(&app, "RET-0001", "Ada Retention", json!({})).await;
    let mut old = Vec::new();
    let mut recent = Vec::new();
    for days in [400, 31, 29, 1] {
        let comment = format!("ret-comment-{days}-days");
        let notes = format!("ret-notes-{days}-days");
        record_interaction(
            &app,
            json!({ "patronId": ada, "serviceId": svc, "kind": "CONSULTATION", "channel": "PHONE",
                    "occurredAt": ago(days), "rating": 4, "comment": comment, "staffNotes": notes }),
        )
        .await;
        let bucket = if days > 30 { &mut old } else { &mut recent };
        bucket.push(comment);
        bucket.push(notes);
    }
    let before = report_counts(&db).await;

    // A second instance on the same database with a retention period runs the job at start.
    let second = spawn_on(app.database.clone(), TestOptions::default().with("RETENTION_DAYS", "30")).await;
    let mut done = false;
    for _ in 0..100 {
        let left = rows(&db, "SELECT COUNT(*) AS n FROM interaction WHERE patron_id IS NULL").await;
        if left[0].try_get::<i64>("", "n").unwrap() == 2 {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(done, "the scheduled purge anonymised the two old interactions");
    assert_gone(&db, &strs(&old)).await;
    for kept in &recent {
        assert_eq!(occurrences(&db, kept).await, vec!["interaction.".to_owned() + kept_column(kept) + " (1)"]);
    }
    assert_eq!(report_counts(&db).await, before, "the counts used by reports are unchanged");
    // The patron still sees their recent interactions; the old ones are no longer theirs.
    let resp =
        app.client.query(Some(&app.patron_token(uuid_of(&ada))), "{ interactions { totalCount } }", json!({})).await;
    assert_eq!(resp.ok()["interactions"]["totalCount"], 2);
    let events = audit_events(&second, json!({ "action": "RETENTION_PURGE" })).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actorRole"], "SYSTEM");
    assert_eq!(events[0]["actor"], "system:retention");
    assert!(events[0]["detail"].as_str().unwrap().starts_with("interactions anonymised: 2;"));
    assert_eq!(events[0]["targetPatronId"], Value::Null);
    // Running it again finds nothing to do.
    assert_eq!(privacy::purge_older_than(&db, 30, "test").await.unwrap(), 0);
}

fn kept_column(value: &str) -> &'static str {
    if value.starts_with("ret-comment") { "comment" } else { "staff_notes" }
}

#[tokio::test]
async fn the_purge_works_in_bounded_batches() {
    let app = spawn_app().await;
    let db = app.state.db.clone();
    let svc = create_service(&app, "RET-B").await;
    let ada = create_patron(&app, "RET-0101", "Ada Batches", json!({})).await;
    let (svc_id, ada_id) = (uuid_of(&svc), uuid_of(&ada));
    // More old rows than one batch holds, written directly (recording them one by one through
    // the API would take minutes).
    let total = PURGE_BATCH as usize + 37;
    // Literals as the drivers store them: UUIDs are BLOBs in SQLite, times RFC 3339 text.
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let uuid = |id: Uuid| if sqlite { format!("X'{}'", id.simple()) } else { format!("'{id}'") };
    let long_ago = (Utc::now() - Duration::days(90)).to_rfc3339_opts(SecondsFormat::Micros, false);
    for chunk in (0..total).collect::<Vec<_>>().chunks(1_000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| {
                format!(
                    "({}, {}, {}, 'PUBLIC', 'VISIT', 'WEB', '{long_ago}', 'bulk-comment-{i}', 'bulk-notes-{i}', \
                     '{long_ago}', '{long_ago}')",
                    uuid(Uuid::now_v7()),
                    uuid(ada_id),
                    uuid(svc_id)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO interaction (id, patron_id, service_id, patron_type, kind, channel, occurred_at, comment, \
             staff_notes, created_at, updated_at) VALUES {}",
            values.join(", ")
        );
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    }
    record_interaction(
        &app,
        json!({ "patronId": ada, "serviceId": svc, "kind": "VISIT", "channel": "WEB", "occurredAt": ago(2),
                "comment": "bulk-comment-recent" }),
    )
    .await;
    let before = report_counts(&db).await;

    let cutoff = Utc::now() - Duration::days(30);
    let changed = privacy::purge_before(&db, cutoff, "test").await.unwrap();
    assert_eq!(changed, total as u64);
    assert_eq!(report_counts(&db).await, before);
    let linked = rows(&db, "SELECT COUNT(*) AS n FROM interaction WHERE patron_id IS NOT NULL").await;
    assert_eq!(linked[0].try_get::<i64>("", "n").unwrap(), 1, "only the recent interaction keeps its patron");
    assert_eq!(occurrences(&db, "bulk-comment-").await, vec!["interaction.comment (1)".to_owned()]);
    assert!(occurrences(&db, "bulk-notes-").await.is_empty());

    // `rapport purge` does the same with RETENTION_DAYS (nothing left here) and reports it.
    let report = privacy::purge_command(&db, Some(30)).await.unwrap();
    assert_eq!(report.interactions_anonymised, 0);
    assert!(report.to_string().starts_with("interactions older than 30 days anonymised: 0"));
    let report = privacy::purge_command(&db, None).await.unwrap();
    assert!(report.to_string().starts_with("RETENTION_DAYS is not set"));
}

#[tokio::test]
async fn retention_days_must_be_a_positive_number() {
    let lookup = |value: &'static str| {
        move |key: &str| match key {
            "RETENTION_DAYS" => Some(value.to_owned()),
            "JWT_SECRET" => Some("x".repeat(40)),
            _ => None,
        }
    };
    assert_eq!(rapport::config::Settings::from_lookup(lookup("365")).unwrap().retention_days, Some(365));
    assert!(rapport::config::Settings::from_lookup(lookup("0")).is_err());
    assert!(rapport::config::Settings::from_lookup(lookup("a year")).is_err());
    assert_eq!(rapport::config::Settings::from_lookup(|_| None).unwrap().retention_days, None);
}
