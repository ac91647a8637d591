//! Recommendations on data with a known structure: two clusters of services used together, the
//! popular one (A) and a smaller one (B). The offline evaluation must find every held-out
//! service and beat the popularity baseline; a patron of cluster B is recommended the rest of
//! B; consent decides the kind; the per-patron cache is invalidated by new interactions and
//! consent changes.

use chrono::{Duration, SecondsFormat, Utc};
use rapport::domain::recommendations;
use rapport_tests::{TestApp, spawn_app};
use serde_json::{Value, json};

use crate::consent::uuid_of;

const RECO_HITS: &str = r#"rapport_cache_hits_total{area="reco"}"#;

const MINE: &str = "query($first: Int) { myRecommendations(first: $first) {
    kind items { service { code } score reason } } }";

const OF_PATRON: &str = "query($id: ID!, $first: Int) { patron(id: $id) { recommendations(first: $first) {
    kind items { service { code } score reason } } } }";

struct World {
    app: TestApp,
    /// Code → global id.
    services: Vec<(String, String)>,
}

impl World {
    fn service(&self, code: &str) -> &str {
        &self.services.iter().find(|(c, _)| c == code).expect("a service").1
    }
}

async fn create_service(app: &TestApp, code: &str) -> String {
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

pub(crate) async fn create_patron(app: &TestApp, card: &str, patron_type: &str, personalisation: bool) -> String {
    let consents = if personalisation { json!([{ "purpose": "PERSONALISATION", "granted": true }]) } else { json!([]) };
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
            json!({ "i": { "cardNumber": card, "name": format!("Patron {card}"), "patronType": patron_type,
                           "consents": consents } }),
        )
        .await;
    resp.ok()["createPatron"]["id"].as_str().expect("id").to_owned()
}

/// One interaction input: `patron` used `service` `days_ago` days ago.
pub(crate) fn use_of(patron: &str, service: &str, days_ago: i64) -> Value {
    json!({ "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": "IN_PERSON",
            "occurredAt": (Utc::now() - Duration::days(days_ago)).to_rfc3339_opts(SecondsFormat::Secs, true) })
}

pub(crate) async fn record(app: &TestApp, interactions: Vec<Value>) {
    for chunk in interactions.chunks(500) {
        let resp = app
            .client
            .query(
                Some(&app.staff_token()),
                "mutation($i: RecordInteractionsInput!) { recordInteractions(input: $i) { created } }",
                json!({ "i": { "interactions": chunk } }),
            )
            .await;
        assert_eq!(resp.ok()["recordInteractions"]["created"], json!(chunk.len()), "{:#}", resp.body);
    }
}

/// Cluster A (A1–A4) used by 16 patrons, cluster B (B1–B4) by 8, all of type PUBLIC; each
/// patron takes up three services of their cluster on three different days.
async fn world() -> World {
    let app = spawn_app().await;
    let mut services = Vec::new();
    for code in ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4"] {
        services.push((code.to_owned(), create_service(&app, code).await));
    }
    let world = World { app, services };
    let mut uses = Vec::new();
    for (cluster, patrons) in [("A", 16), ("B", 8)] {
        for k in 0..patrons {
            let patron = create_patron(&world.app, &format!("{cluster}-{k:03}"), "PUBLIC", false).await;
            for (step, days_ago) in [30, 20, 10].into_iter().enumerate() {
                let code = format!("{cluster}{}", (k + step) % 4 + 1);
                uses.push(use_of(&patron, world.service(&code), days_ago));
            }
        }
    }
    record(&world.app, uses).await;
    world
}

fn codes(recommendations: &Value) -> Vec<String> {
    recommendations["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["service"]["code"].as_str().expect("code").to_owned())
        .collect()
}

#[tokio::test]
async fn offline_evaluation_finds_the_held_out_service_and_beats_popularity() {
    let w = world().await;
    let report = recommendations::evaluate(&w.app.state.db).await.expect("evaluation");
    assert_eq!(report.patrons, 24, "{report}");
    assert_eq!(report.skipped_inactive, 0);
    // Every held-out service is one of the two services of the patron's cluster not used yet.
    assert_eq!(report.hits, 24, "{report}");
    // Popularity ranks the four A services first: B patrons' held-out B service is missed
    // whenever the other unused B service wins the fifth place.
    assert!(report.baseline_hits < report.hits, "{report}");
    assert!(report.hit_rate() > report.baseline_hit_rate());
}

#[tokio::test]
async fn personalised_ranking_follows_co_usage_with_reasons() {
    let w = world().await;
    let patron = create_patron(&w.app, "B-NEW", "PUBLIC", true).await;
    record(&w.app, vec![use_of(&patron, w.service("B1"), 5), use_of(&patron, w.service("B2"), 4)]).await;
    let token = w.app.patron_token(uuid_of(&patron));
    let resp = w.app.client.query(Some(&token), MINE, json!({ "first": 3 })).await;
    let mine = resp.ok()["myRecommendations"].clone();
    assert_eq!(mine["kind"], "PERSONALISED");
    let got = codes(&mine);
    assert_eq!(got.len(), 3, "{mine:#}");
    assert_eq!(&got[..2], ["B3", "B4"], "{mine:#}");
    assert!(!got.contains(&"B1".to_owned()) && !got.contains(&"B2".to_owned()), "used services are left out");
    let reason = mine["items"][0]["reason"].as_str().expect("reason");
    assert!(reason == "Often used by people who use Service B1" || reason == "Often used by people who use Service B2");
    // The third is the most popular service among members of the public, for that reason.
    assert_eq!(mine["items"][2]["reason"], "Popular with members of the public", "{mine:#}");
    let scores: Vec<f64> = mine["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|p| p[0] >= p[1]), "{scores:?}");

    // Staff read the same through the patron record.
    let resp = w.app.client.query(Some(&w.app.staff_token()), OF_PATRON, json!({ "id": patron, "first": 3 })).await;
    assert_eq!(resp.ok()["patron"]["recommendations"], mine);

    // A service deactivated after the ranking was cached is no longer offered.
    let resp = w
        .app
        .client
        .query(
            Some(&w.app.staff_token()),
            "mutation($i: UpdateServiceInput!) { updateService(input: $i) { id } }",
            json!({ "i": { "id": w.service("B3"), "active": false } }),
        )
        .await;
    resp.ok();
    let resp = w.app.client.query(Some(&token), MINE, json!({ "first": 3 })).await;
    let got = codes(&resp.ok()["myRecommendations"]);
    assert_eq!(got[0], "B4", "{got:?}");
    assert!(!got.contains(&"B3".to_owned()));
}

#[tokio::test]
async fn without_consent_the_ranking_of_the_patron_type_uses_no_history() {
    let w = world().await;
    let b_user = create_patron(&w.app, "B-NOC", "PUBLIC", false).await;
    record(&w.app, vec![use_of(&b_user, w.service("B1"), 5), use_of(&b_user, w.service("B2"), 4)]).await;
    let newcomer = create_patron(&w.app, "NEW-NOC", "PUBLIC", false).await;
    let staff = w.app.staff_token();
    let of = |id: String| {
        let app = &w.app;
        let staff = staff.clone();
        async move {
            let resp = app.client.query(Some(&staff), OF_PATRON, json!({ "id": id, "first": 8 })).await;
            resp.ok()["patron"]["recommendations"].clone()
        }
    };
    let with_history = of(b_user).await;
    let without = of(newcomer).await;
    assert_eq!(with_history["kind"], "BY_PATRON_TYPE");
    // The same list as for a patron of the type without any history: the A services first.
    assert_eq!(with_history, without);
    assert_eq!(&codes(&with_history)[..4], ["A1", "A2", "A3", "A4"], "{with_history:#}");
    assert!(codes(&with_history).contains(&"B1".to_owned()), "history is not read: used services may appear");
    assert_eq!(with_history["items"][0]["reason"], "Popular with members of the public");

    // A type nobody of which used anything falls back to the whole library.
    let child = create_patron(&w.app, "CHILD-1", "CHILD", false).await;
    let resp = w.app.client.query(Some(&staff), OF_PATRON, json!({ "id": child, "first": 2 })).await;
    let items = &resp.ok()["patron"]["recommendations"]["items"];
    assert_eq!(items[0]["reason"], "Popular across the library", "{items:#}");
}

#[tokio::test]
async fn cache_is_invalidated_by_new_interactions_and_consent_changes() {
    let w = world().await;
    let patron = create_patron(&w.app, "B-CACHE", "PUBLIC", true).await;
    record(&w.app, vec![use_of(&patron, w.service("B1"), 5), use_of(&patron, w.service("B2"), 4)]).await;
    let token = w.app.patron_token(uuid_of(&patron));
    let mine = || async {
        let resp = w.app.client.query(Some(&token), MINE, json!({ "first": 5 })).await;
        resp.ok()["myRecommendations"].clone()
    };
    let before = mine().await;
    assert_eq!(codes(&before)[0], "B3", "{before:#}");
    let hits = w.app.metric(RECO_HITS).await;
    assert_eq!(mine().await, before);
    assert!(w.app.metric(RECO_HITS).await > hits, "the second read is served from the cache");

    // Using the top recommendation removes it at once (the cached ranking is dropped).
    record(&w.app, vec![use_of(&patron, w.service("B3"), 0)]).await;
    let after = mine().await;
    assert_eq!(after["kind"], "PERSONALISED");
    assert!(!codes(&after).contains(&"B3".to_owned()), "{after:#}");
    assert_eq!(codes(&after)[0], "B4", "{after:#}");

    // Withdrawing consent switches to the ranking of the type at once.
    let withdraw = json!({ "i": { "consents": [{ "purpose": "PERSONALISATION", "granted": false }],
                                  "textVersion": "v1" } });
    let resp = w.app.client.query(Some(&token), crate::consent::UPDATE_MINE, withdraw).await;
    resp.ok();
    let by_type = mine().await;
    assert_eq!(by_type["kind"], "BY_PATRON_TYPE", "{by_type:#}");
    assert_eq!(codes(&by_type)[0], "A1");

    // Given again by staff on the patron's behalf: personalised again, from fresh data.
    let give = json!({ "i": { "patronId": patron, "source": "STAFF",
                              "consents": [{ "purpose": "PERSONALISATION", "granted": true }] } });
    let resp = w.app.client.query(Some(&w.app.staff_token()), crate::consent::UPDATE_PATRONS, give).await;
    resp.ok();
    let again = mine().await;
    assert_eq!(again["kind"], "PERSONALISED");
    assert_eq!(codes(&again)[0], "B4", "{again:#}");
}

#[tokio::test]
async fn access_rules_and_bad_input() {
    let app = spawn_app().await;
    let own = create_patron(&app, "OWN-1", "FACULTY", true).await;
    let other = create_patron(&app, "OTHER-1", "FACULTY", true).await;
    let token = app.patron_token(uuid_of(&own));
    // A patron may read their own through the record, not another patron's.
    let resp = app.client.query(Some(&token), OF_PATRON, json!({ "id": own })).await;
    assert_eq!(resp.ok()["patron"]["recommendations"], json!({ "kind": "PERSONALISED", "items": [] }));
    app.client.query(Some(&token), OF_PATRON, json!({ "id": other })).await.expect_code("FORBIDDEN");
    // Partners may read patron records but not recommendations.
    let partner = app.partner_token(&rapport::auth::Scope::ALL);
    app.client.query(Some(&partner), OF_PATRON, json!({ "id": own })).await.expect_code("FORBIDDEN");
    app.client.query(None, MINE, json!({})).await.expect_code("UNAUTHENTICATED");
    app.client.query(Some(&app.staff_token()), MINE, json!({})).await.expect_code("FORBIDDEN");
    for first in [0, 51] {
        let resp = app.client.query(Some(&token), MINE, json!({ "first": first })).await;
        resp.expect_code("BAD_USER_INPUT");
        assert_eq!(resp.errors()[0]["extensions"]["field"], "first", "{:#}", resp.body);
    }
}
