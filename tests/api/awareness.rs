//! Awareness gaps on data with a known answer: 4 active online learners and 6 active members of
//! the public; one service everybody uses, one only the public uses, one used by one patron of
//! each type, one the public uses but that is no longer offered, one offered to the public only.

use rapport_tests::spawn_app;
use serde_json::{Value, json};

use crate::recommendations::{create_patron, record, use_of};

const GAPS: &str = "query($t: PatronType!, $first: Int) { awarenessGaps(patronType: $t, first: $first) {
    service { code } reachInSegment reachOverall index segmentUsers segmentActivePatrons users activePatrons } }";

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test]
async fn gaps_of_a_segment_on_known_data() {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let mut services = Vec::new();
    for code in ["ALL", "PUBLIC-ONLY", "RARE", "RETIRED", "FOR-PUBLIC"] {
        let audience = if code == "FOR-PUBLIC" { json!(["PUBLIC"]) } else { json!([]) };
        let resp = app
            .client
            .query(
                Some(&staff),
                "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
                json!({ "i": { "code": code, "name": format!("Service {code}"), "category": "REFERENCE",
                               "audience": audience } }),
            )
            .await;
        services.push(resp.ok()["createService"]["id"].as_str().unwrap().to_owned());
    }
    let (all, public_only, rare, retired) = (&services[0], &services[1], &services[2], &services[3]);
    let for_public = &services[4];
    let mut uses = Vec::new();
    for k in 0..4 {
        let p = create_patron(&app, &format!("OL-{k}"), "ONLINE_LEARNER", false).await;
        uses.push(use_of(&p, all, 10 + k));
        if k == 0 {
            uses.push(use_of(&p, rare, 3));
        }
    }
    for k in 0..6 {
        let p = create_patron(&app, &format!("PU-{k}"), "PUBLIC", false).await;
        uses.push(use_of(&p, all, 20 + k));
        uses.push(use_of(&p, public_only, 5));
        uses.push(use_of(&p, retired, 5));
        uses.push(use_of(&p, for_public, 6));
        if k == 0 {
            uses.push(use_of(&p, rare, 2));
        }
    }
    // Not active: the last interaction is more than 365 days old.
    let lapsed = create_patron(&app, "OL-OLD", "ONLINE_LEARNER", false).await;
    uses.push(use_of(&lapsed, public_only, 400));
    record(&app, uses).await;
    let resp = app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdateServiceInput!) { updateService(input: $i) { id } }",
            json!({ "i": { "id": retired, "active": false } }),
        )
        .await;
    resp.ok();

    let resp = app.client.query(Some(&staff), GAPS, json!({ "t": "ONLINE_LEARNER" })).await;
    let gaps = resp.ok()["awarenessGaps"].as_array().unwrap().clone();
    let codes: Vec<&str> = gaps.iter().map(|g| g["service"]["code"].as_str().unwrap()).collect();
    // RETIRED is inactive; FOR-PUBLIC is not offered to online learners: neither is a gap.
    assert_eq!(codes, ["PUBLIC-ONLY", "ALL", "RARE"], "{gaps:#?}");
    let public_gap = &gaps[0];
    assert_eq!(public_gap["segmentActivePatrons"], 4);
    assert_eq!(public_gap["activePatrons"], 10);
    assert_eq!(public_gap["segmentUsers"], 0);
    assert_eq!(public_gap["users"], 6);
    assert!(close(&public_gap["reachInSegment"], 0.0) && close(&public_gap["reachOverall"], 0.6), "{public_gap}");
    assert!(close(&public_gap["index"], 0.0));
    assert!(close(&gaps[1]["index"], 100.0), "{:#}", gaps[1]);
    // RARE: 1 of 4 online learners (0.25) against 2 of 10 overall (0.2).
    assert!(close(&gaps[2]["reachInSegment"], 0.25) && close(&gaps[2]["reachOverall"], 0.2));
    assert!(close(&gaps[2]["index"], 125.0), "{:#}", gaps[2]);

    let resp = app.client.query(Some(&staff), GAPS, json!({ "t": "ONLINE_LEARNER", "first": 1 })).await;
    assert_eq!(resp.ok()["awarenessGaps"].as_array().unwrap().len(), 1);
    // The public's smallest relative use: RARE (0.167 / 0.2).
    let resp = app.client.query(Some(&staff), GAPS, json!({ "t": "PUBLIC", "first": 1 })).await;
    let public = &resp.ok()["awarenessGaps"][0];
    assert_eq!(public["service"]["code"], "RARE");
    assert!(close(&public["index"], 100.0 * (1.0 / 6.0) / 0.2), "{public}");
    // A segment without active patrons has no gaps to show.
    let resp = app.client.query(Some(&staff), GAPS, json!({ "t": "CHILD" })).await;
    assert_eq!(resp.ok()["awarenessGaps"], json!([]));

    let resp = app.client.query(Some(&staff), GAPS, json!({ "t": "PUBLIC", "first": 0 })).await;
    resp.expect_code("BAD_USER_INPUT");
    let partner = app.partner_token(&[rapport::auth::Scope::ReportsRead]);
    let resp = app.client.query(Some(&partner), GAPS, json!({ "t": "PUBLIC" })).await;
    assert_eq!(resp.ok()["awarenessGaps"][0]["service"]["code"], "RARE");
}
