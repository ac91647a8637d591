//! Campaigns: reproducible holdout assignment, deliveries only with consent, idempotent launch
//! and delivery marks, the in-app inbox, conversion and lift (with and without an effect), open
//! campaigns on the dashboard, privacy, and the demo campaign.

use std::collections::BTreeSet;

use chrono::{Duration, SecondsFormat, Utc};
use rapport::{auth::Scope, domain::campaigns::in_holdout};
use rapport_tests::{TestApp, TestOptions, spawn_app, spawn_app_with};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    audit::{create_service, record_interaction},
    consent::{create_patron, uuid_of},
    segments::create_segment,
};

const CREATE: &str = "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id status } }";
const LAUNCH: &str = "mutation($id: ID!) { launchCampaign(id: $id) { id status launchedAt endsAt } }";
const STATS: &str = "query($id: ID!) { campaign(id: $id) { status stats { targeted holdout skippedNoConsent
    deliveries delivered opened converted holdoutEligible holdoutConverted treatmentConversionRate
    holdoutConversionRate lift liftConfidenceInterval { low high } } } }";
const PENDING: &str = "query($c: CampaignChannel!) { pendingDeliveries(channel: $c, first: 100) {
    edges { node { id address message channel } } } }";
const INBOX: &str = "{ myInbox { edges { node { id message read openedAt deliveredAt promotedService { code } } } } }";

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

async fn create_campaign(app: &TestApp, input: Value) -> String {
    let resp = app.client.query(Some(&app.staff_token()), CREATE, json!({ "i": input })).await;
    let created = resp.ok()["createCampaign"].clone();
    assert_eq!(created["status"], "DRAFT");
    created["id"].as_str().unwrap().to_owned()
}

async fn launch(app: &TestApp, id: &str) -> Value {
    app.client.query(Some(&app.staff_token()), LAUNCH, json!({ "id": id })).await.ok()["launchCampaign"].clone()
}

async fn stats(app: &TestApp, id: &str) -> Value {
    app.client.query(Some(&app.staff_token()), STATS, json!({ "id": id })).await.ok()["campaign"]["stats"].clone()
}

/// `n` patrons tagged `tag`, each consenting to `purpose` when `consents(i)`; their global ids.
async fn patrons(app: &TestApp, tag: &str, n: usize, purpose: &str, consents: impl Fn(usize) -> bool) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let card = format!("{}-{i:04}", tag.to_uppercase());
        let extra = json!({ "tags": [tag], "phone": format!("+44 7700 9{i:05}"), "email": format!("{tag}{i}@example.org"),
                            "consents": [{ "purpose": purpose, "granted": consents(i) }] });
        out.push(create_patron(app, &card, &format!("{tag} {i:04}"), extra).await);
    }
    out
}

#[tokio::test]
async fn launch_assigns_reproducibly_and_delivers_only_with_consent() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let service = create_service(&app, "CMP-A").await;
    let people = patrons(&app, "sms", 40, "MARKETING_SMS", |i| i % 2 == 0).await;
    // An erased member of the rule is never a member of the campaign.
    let erased = create_patron(&app, "SMS-9999", "sms gone", json!({ "tags": ["sms"] })).await;
    app.client
        .query(
            Some(&app.admin_token()),
            "mutation($id: ID!) { erasePatron(id: $id) { erased } }",
            json!({ "id": erased }),
        )
        .await
        .ok();
    let segment = create_segment(&app, "SMS people", json!({ "tags": ["sms"] })).await;
    let segment_id = segment["id"].as_str().unwrap();
    assert_eq!(segment["size"], 40);
    let input = json!({ "name": "Try it", "segmentId": segment_id, "promotedServiceId": service, "channel": "SMS",
                        "message": "Come and see", "holdoutPercent": 30, "conversionWindowDays": 14 });

    // Validation.
    for (patch, field) in [
        (json!({ "holdoutPercent": 51 }), "input.holdoutPercent"),
        (json!({ "holdoutPercent": -1 }), "input.holdoutPercent"),
        (json!({ "conversionWindowDays": 0 }), "input.conversionWindowDays"),
        (json!({ "message": "  " }), "input.message"),
        (json!({ "segmentId": service }), "input.segmentId"),
        (json!({ "promotedServiceId": segment_id }), "input.promotedServiceId"),
    ] {
        let mut bad = input.clone();
        bad.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        let resp = app.client.query(Some(&staff), CREATE, json!({ "i": bad })).await;
        resp.expect_code("BAD_USER_INPUT");
        assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{}", resp.body);
    }

    let id = create_campaign(&app, input).await;
    let before = stats(&app, &id).await;
    assert_eq!((before["targeted"].as_u64(), before["deliveries"].as_u64()), (Some(0), Some(0)));
    assert_eq!(before["lift"], Value::Null);
    let launched = launch(&app, &id).await;
    assert_eq!(launched["status"], "LAUNCHED");
    assert!(launched["endsAt"].as_str() > launched["launchedAt"].as_str());
    // A campaign launches once, even when two launches race.
    app.client.query(Some(&staff), LAUNCH, json!({ "id": id })).await.expect_code("CONFLICT");
    let racing = create_campaign(
        &app,
        json!({ "name": "Race", "segmentId": segment_id, "promotedServiceId": service, "channel": "PUSH",
                "message": "Go", "holdoutPercent": 0 }),
    )
    .await;
    let (a, b) = tokio::join!(
        app.client.query(Some(&staff), LAUNCH, json!({ "id": racing })),
        app.client.query(Some(&staff), LAUNCH, json!({ "id": racing }))
    );
    let mut outcomes = vec![a.error_code(), b.error_code()];
    outcomes.sort();
    assert_eq!(outcomes, vec![None, Some("CONFLICT".to_owned())], "{} {}", a.body, b.body);
    let raced = stats(&app, &racing).await;
    // Nobody consented to push messages: everyone was counted once, nobody got one.
    assert_eq!(
        (raced["targeted"].as_u64(), raced["skippedNoConsent"].as_u64(), raced["deliveries"].as_u64()),
        (Some(40), Some(40), Some(0))
    );

    // The split is the documented hash of (campaign, patron); deliveries only with consent.
    let campaign_uuid = uuid_of(&id);
    let held: BTreeSet<usize> = (0..40).filter(|i| in_holdout(campaign_uuid, uuid_of(&people[*i]), 30)).collect();
    let treated_consenting: BTreeSet<usize> = (0..40).filter(|i| !held.contains(i) && i % 2 == 0).collect();
    let s = stats(&app, &id).await;
    assert_eq!(s["holdout"].as_u64(), Some(held.len() as u64));
    assert_eq!(s["targeted"].as_u64(), Some(40 - held.len() as u64));
    assert_eq!(s["deliveries"].as_u64(), Some(treated_consenting.len() as u64));
    assert_eq!(s["skippedNoConsent"].as_u64(), Some(40 - held.len() as u64 - treated_consenting.len() as u64));
    assert_eq!(s["holdoutEligible"].as_u64(), Some(held.iter().filter(|i| *i % 2 == 0).count() as u64));
    assert_eq!(s["delivered"], 0);
    assert!(!held.is_empty() && !treated_consenting.is_empty());

    // Waiting for a partner tool, with the address to send to.
    let reader = app.partner_token(&[Scope::CampaignsRead]);
    let resp = app.client.query(Some(&reader), PENDING, json!({ "c": "SMS" })).await;
    let pending = resp.ok()["pendingDeliveries"]["edges"].as_array().unwrap().clone();
    let recipients: BTreeSet<String> =
        pending.iter().map(|e| e["node"]["address"].as_str().unwrap().to_owned()).collect();
    let expected: BTreeSet<String> = treated_consenting.iter().map(|i| format!("+44 7700 9{i:05}")).collect();
    assert_eq!(recipients, expected);
    assert!(pending.iter().all(|e| e["node"]["message"] == "Come and see" && e["node"]["channel"] == "SMS"));
    let resp = app.client.query(Some(&reader), PENDING, json!({ "c": "EMAIL" })).await;
    assert_eq!(resp.ok()["pendingDeliveries"]["edges"], json!([]));
    // `patron` is a patron record: refused to a campaigns-only partner.
    let with_patron = "{ pendingDeliveries(channel: SMS) { edges { node { patron { id } } } } }";
    let resp = app.client.query(Some(&staff), with_patron, json!({})).await;
    assert!(resp.ok()["pendingDeliveries"]["edges"][0]["node"]["patron"]["id"].is_string());
    app.client.query(Some(&reader), with_patron, json!({})).await.expect_code("FORBIDDEN");

    // Marks are idempotent; a read scope cannot mark.
    let ids: Vec<String> = pending.iter().map(|e| e["node"]["id"].as_str().unwrap().to_owned()).collect();
    let writer = app.partner_token(&[Scope::CampaignsWrite]);
    let mark = "mutation($ids: [ID!]!) { markDelivered(ids: $ids) { updated } }";
    let open = "mutation($ids: [ID!]!) { markOpened(ids: $ids) { updated } }";
    app.client.query(Some(&reader), mark, json!({ "ids": ids })).await.expect_code("FORBIDDEN");
    let resp = app.client.query(Some(&writer), mark, json!({ "ids": ids[..2] })).await;
    assert_eq!(resp.ok()["markDelivered"]["updated"], 2);
    let resp = app.client.query(Some(&writer), mark, json!({ "ids": ids })).await;
    assert_eq!(resp.ok()["markDelivered"]["updated"].as_u64(), Some(ids.len() as u64 - 2));
    let resp = app.client.query(Some(&writer), mark, json!({ "ids": ids })).await;
    assert_eq!(resp.ok()["markDelivered"]["updated"], 0);
    let resp = app.client.query(Some(&writer), open, json!({ "ids": [ids[0], ids[0]] })).await;
    assert_eq!(resp.ok()["markOpened"]["updated"], 1);
    let resp = app.client.query(Some(&writer), open, json!({ "ids": [ids[0]] })).await;
    assert_eq!(resp.ok()["markOpened"]["updated"], 0);
    app.client.query(Some(&writer), mark, json!({ "ids": [] })).await.expect_code("BAD_USER_INPUT");
    app.client.query(Some(&writer), mark, json!({ "ids": [service] })).await.expect_code("BAD_USER_INPUT");
    let resp = app.client.query(Some(&reader), PENDING, json!({ "c": "SMS" })).await;
    assert_eq!(resp.ok()["pendingDeliveries"]["edges"], json!([]));
    let s = stats(&app, &id).await;
    assert_eq!(s["delivered"], s["deliveries"]);
    assert_eq!(s["opened"], 1);

    // The dashboard counts launched campaigns still in their window; drafts are not open.
    create_campaign(
        &app,
        json!({ "name": "Draft", "segmentId": segment_id, "promotedServiceId": service, "channel": "EMAIL",
                "message": "Later" }),
    )
    .await;
    let dashboard = "query($f: DateTime!, $t: DateTime!) { libraryStats(from: $f, to: $t) { openCampaigns } }";
    let window = json!({ "f": (Utc::now() - Duration::days(30)).to_rfc3339(), "t": (Utc::now() + Duration::days(1)).to_rfc3339() });
    let resp = app.client.query(Some(&staff), dashboard, window).await;
    assert_eq!(resp.ok()["libraryStats"]["openCampaigns"], 2, "the two launched ones");
    let past = json!({ "f": (Utc::now() - Duration::days(60)).to_rfc3339(), "t": (Utc::now() - Duration::days(30)).to_rfc3339() });
    let resp = app.client.query(Some(&staff), dashboard, past).await;
    assert_eq!(resp.ok()["libraryStats"]["openCampaigns"], 0);
}

#[tokio::test]
async fn in_app_messages_reach_the_inbox_and_are_marked_read_by_their_patron() {
    let app = spawn_app().await;
    let service = create_service(&app, "CMP-APP").await;
    let people = patrons(&app, "app", 6, "MARKETING_IN_APP", |i| i != 5).await;
    let segment = create_segment(&app, "App users", json!({ "tags": ["app"] })).await;
    let id = create_campaign(
        &app,
        json!({ "name": "In the app", "segmentId": segment["id"], "promotedServiceId": service, "channel": "IN_APP",
                "message": "New: chat with a librarian", "holdoutPercent": 0 }),
    )
    .await;
    launch(&app, &id).await;
    let s = stats(&app, &id).await;
    assert_eq!(
        (s["targeted"].as_u64(), s["deliveries"].as_u64(), s["skippedNoConsent"].as_u64()),
        (Some(6), Some(5), Some(1))
    );
    assert_eq!(s["delivered"], 5, "in-app messages are delivered at launch");

    let mine = app.patron_token(uuid_of(&people[0]));
    let resp = app.client.query(Some(&mine), INBOX, json!({})).await;
    let inbox = resp.ok()["myInbox"]["edges"].as_array().unwrap().clone();
    assert_eq!(inbox.len(), 1);
    let message = &inbox[0]["node"];
    assert_eq!(message["message"], "New: chat with a librarian");
    assert_eq!(message["read"], false);
    assert_eq!(message["promotedService"]["code"], "CMP-APP");
    assert!(message["deliveredAt"].is_string());
    let delivery = message["id"].as_str().unwrap().to_owned();
    // The patron who did not consent has an empty inbox; in-app messages are never pending.
    let resp = app.client.query(Some(&app.patron_token(uuid_of(&people[5]))), INBOX, json!({})).await;
    assert_eq!(resp.ok()["myInbox"]["edges"], json!([]));
    let resp = app.client.query(Some(&app.staff_token()), PENDING, json!({ "c": "IN_APP" })).await;
    assert_eq!(resp.ok()["pendingDeliveries"]["edges"], json!([]));

    let read = "mutation($id: ID!) { markInboxRead(deliveryId: $id) { id read openedAt } }";
    let other = app.patron_token(uuid_of(&people[1]));
    app.client.query(Some(&other), read, json!({ "id": delivery })).await.expect_code("FORBIDDEN");
    let resp = app.client.query(Some(&mine), read, json!({ "id": delivery })).await;
    let first = resp.ok()["markInboxRead"].clone();
    assert_eq!(first["read"], true);
    let resp = app.client.query(Some(&mine), read, json!({ "id": delivery })).await;
    assert_eq!(resp.ok()["markInboxRead"]["openedAt"], first["openedAt"], "idempotent");
    let unknown =
        rapport::graphql::ids::to_global_id(rapport::graphql::ids::NodeKind::CampaignDelivery, Uuid::now_v7());
    app.client.query(Some(&mine), read, json!({ "id": unknown.as_str() })).await.expect_code("NOT_FOUND");
    // Patrons see their own message through node, not another's.
    let node = "query($id: ID!) { node(id: $id) { id } }";
    app.client.query(Some(&mine), node, json!({ "id": delivery })).await.ok();
    app.client.query(Some(&other), node, json!({ "id": delivery })).await.expect_code("FORBIDDEN");
    // The campaign itself is staff-facing.
    let resp = app.client.query(Some(&mine), "{ myInbox { edges { node { campaign { name } } } } }", json!({})).await;
    resp.expect_code("FORBIDDEN");
    assert_eq!(stats(&app, &id).await["opened"], 1);
}

/// Record a use of `service` now by each patron of `who`.
async fn convert(app: &TestApp, service: &str, who: &[&String]) {
    for patron in who {
        record_interaction(
            app,
            json!({ "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": "WEB", "occurredAt": now() }),
        )
        .await;
    }
}

#[tokio::test]
async fn the_lift_over_the_holdout_has_a_confidence_interval() {
    let app = spawn_app().await;
    let promoted = create_service(&app, "CMP-LIFT").await;
    let neutral = create_service(&app, "CMP-NONE").await;
    let people = patrons(&app, "lift", 200, "MARKETING_IN_APP", |_| true).await;
    let segment = create_segment(&app, "Everyone", json!({ "tags": ["lift"] })).await;
    let campaign = |name: &str, service: &str| {
        json!({ "name": name, "segmentId": segment["id"], "promotedServiceId": service, "channel": "IN_APP",
                "message": "Try it", "holdoutPercent": 50, "conversionWindowDays": 7 })
    };
    let effect = create_campaign(&app, campaign("Effect", &promoted)).await;
    let none = create_campaign(&app, campaign("No effect", &neutral)).await;
    // A use before the launch is not a conversion.
    convert(&app, &promoted, &people.iter().take(20).collect::<Vec<_>>()).await;
    convert(&app, &neutral, &people.iter().take(20).collect::<Vec<_>>()).await;
    launch(&app, &effect).await;
    launch(&app, &none).await;

    // With an effect: 40% of the treatment group converts, 10% of the holdout.
    let split = |campaign: &str| -> (Vec<&String>, Vec<&String>) {
        people.iter().partition(|p| !in_holdout(uuid_of(campaign), uuid_of(p), 50))
    };
    let (treated, held) = split(&effect);
    let (t_conv, h_conv) = (treated.len() * 4 / 10, held.len() / 10);
    convert(&app, &promoted, &treated[..t_conv]).await;
    convert(&app, &promoted, &held[..h_conv]).await;
    let s = stats(&app, &effect).await;
    println!("with an effect: {s}");
    assert_eq!(s["converted"].as_u64(), Some(t_conv as u64));
    assert_eq!(s["holdoutConverted"].as_u64(), Some(h_conv as u64));
    assert_eq!(s["deliveries"].as_u64(), Some(treated.len() as u64));
    assert_eq!(s["holdoutEligible"].as_u64(), Some(held.len() as u64));
    let (p1, p0) = (t_conv as f64 / treated.len() as f64, h_conv as f64 / held.len() as f64);
    let lift = s["lift"].as_f64().unwrap();
    assert!((lift - (p1 - p0)).abs() < 1e-9 && (lift - 0.30).abs() < 0.03, "{lift}");
    let se = (p1 * (1.0 - p1) / treated.len() as f64 + p0 * (1.0 - p0) / held.len() as f64).sqrt();
    let (low, high) =
        (s["liftConfidenceInterval"]["low"].as_f64().unwrap(), s["liftConfidenceInterval"]["high"].as_f64().unwrap());
    assert!((low - (lift - 1.96 * se)).abs() < 1e-3 && (high - (lift + 1.96 * se)).abs() < 1e-3, "{low} {high}");
    assert!(low > 0.0, "the interval excludes 0: [{low}, {high}]");

    // Without an effect: both groups convert at 20%.
    let (treated, held) = split(&none);
    convert(&app, &neutral, &treated[..treated.len() / 5]).await;
    convert(&app, &neutral, &held[..held.len() / 5]).await;
    let s = stats(&app, &none).await;
    println!("without an effect: {s}");
    let lift = s["lift"].as_f64().unwrap();
    assert!(lift.abs() < 0.02, "{lift}");
    let (low, high) =
        (s["liftConfidenceInterval"]["low"].as_f64().unwrap(), s["liftConfidenceInterval"]["high"].as_f64().unwrap());
    assert!(low < 0.0 && high > 0.0, "the interval includes 0: [{low}, {high}]");
    // The effect campaign did not count the neutral service.
    assert_eq!(stats(&app, &effect).await["converted"].as_u64(), Some(t_conv as u64));
}

#[tokio::test]
async fn erasure_unlinks_memberships_and_deliveries_and_the_export_lists_them() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let service = create_service(&app, "CMP-PRIV").await;
    let people = patrons(&app, "priv", 4, "MARKETING_IN_APP", |_| true).await;
    let segment = create_segment(&app, "Private", json!({ "tags": ["priv"] })).await;
    let id = create_campaign(
        &app,
        json!({ "name": "Privacy", "segmentId": segment["id"], "promotedServiceId": service, "channel": "IN_APP",
                "message": "Hello", "holdoutPercent": 0 }),
    )
    .await;
    launch(&app, &id).await;
    let export = "query($id: ID!) { exportPatronData(id: $id) }";
    let resp = app.client.query(Some(&staff), export, json!({ "id": people[0] })).await;
    let doc = resp.ok()["exportPatronData"].clone();
    let campaigns = doc["campaigns"].as_array().unwrap();
    assert_eq!(campaigns.len(), 1);
    assert_eq!(campaigns[0]["campaign"], "Privacy");
    assert_eq!(campaigns[0]["group"], "TREATMENT");
    assert_eq!(campaigns[0]["message"], "Hello");
    assert!(campaigns[0]["delivery"]["deliveredAt"].is_string());
    let resp = app.client.query(Some(&app.patron_token(uuid_of(&people[0]))), "{ exportMyData }", json!({})).await;
    assert_eq!(resp.ok()["exportMyData"]["campaigns"].as_array().unwrap().len(), 1);

    let before = stats(&app, &id).await;
    let erase = "mutation($id: ID!) { erasePatron(id: $id) { erased } }";
    app.client.query(Some(&app.admin_token()), erase, json!({ "id": people[0] })).await.ok();
    let after = stats(&app, &id).await;
    assert_eq!(before, after, "counts stay");
    let patron = uuid_of(&people[0]).to_string();
    for table in ["campaign_member", "campaign_delivery"] {
        let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE CAST(patron_id AS TEXT) = '{patron}'");
        let rows = app
            .state
            .db
            .query_all_raw(sea_orm::Statement::from_string(app.state.db.get_database_backend(), sql))
            .await
            .unwrap();
        assert_eq!(rows[0].try_get::<i64>("", "n").unwrap(), 0, "{table} still names the patron");
    }
    // Others keep theirs.
    let resp = app.client.query(Some(&app.patron_token(uuid_of(&people[1]))), INBOX, json!({})).await;
    assert_eq!(resp.ok()["myInbox"]["edges"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_demo_library_has_segments_and_a_campaign_with_a_lift() {
    let app = spawn_app_with(TestOptions { demo: true, ..TestOptions::default() }).await;
    let staff = app.staff_token();
    let resp = app.client.query(Some(&staff), "{ segments { edges { node { name size } } } }", json!({})).await;
    let segments = resp.ok()["segments"]["edges"].as_array().unwrap().clone();
    println!("demo segments: {segments:?}");
    assert_eq!(segments.len(), 3);
    let sizes: Vec<u64> = segments.iter().map(|s| s["node"]["size"].as_u64().unwrap()).collect();
    assert!(sizes.iter().all(|s| *s > 0) && sizes[0] != sizes[1] && sizes[1] != sizes[2], "{sizes:?}");
    let resp = app
        .client
        .query(
            Some(&staff),
            "{ campaigns { edges { node { id name status channel segment { name } promotedService { code } } } } }",
            json!({}),
        )
        .await;
    let campaigns = resp.ok()["campaigns"]["edges"].as_array().unwrap().clone();
    assert_eq!(campaigns.len(), 1);
    let campaign = &campaigns[0]["node"];
    assert_eq!(campaign["status"], "LAUNCHED");
    assert_eq!(campaign["segment"]["name"], "Active students");
    let s = stats(&app, campaign["id"].as_str().unwrap()).await;
    println!("demo campaign {}: {s}", campaign["name"]);
    assert!(s["deliveries"].as_u64().unwrap() > 0 && s["holdoutEligible"].as_u64().unwrap() > 0, "{s}");
    assert!(s["opened"].as_u64().unwrap() > 0 && s["delivered"] == s["deliveries"], "{s}");
    assert!(s["lift"].as_f64().unwrap() > 0.1, "{s}");
    assert!(s["liftConfidenceInterval"]["low"].as_f64().unwrap() > 0.0, "{s}");
    let dashboard = "query($f: DateTime!, $t: DateTime!) { libraryStats(from: $f, to: $t) { openCampaigns } }";
    let window = json!({ "f": (Utc::now() - Duration::days(30)).to_rfc3339(), "t": Utc::now().to_rfc3339() });
    assert_eq!(app.client.query(Some(&staff), dashboard, window).await.ok()["libraryStats"]["openCampaigns"], 1);
}
