//! `libraryStats` on data whose answers are known, and its role rules.

use chrono::{Duration, SecondsFormat, Utc};
use rapport::auth::Scope;
use rapport_tests::spawn_app;
use serde_json::json;
use uuid::Uuid;

use crate::engagement::{interact, patron, service};

const STATS: &str = "query($from: DateTime!, $to: DateTime!) { libraryStats(from: $from, to: $to) {
    activePatrons newPatrons activeFirstHalf retainedPatrons retention interactions
    interactionsByChannel { channel interactions } interactionsByKind { kind interactions }
    topServices { service { code } interactions patrons }
    averageSatisfaction ratingCount nps npsResponses lifecycle { stage patrons } } }";

fn uuid_of(gid: &str) -> Uuid {
    rapport::graphql::ids::decode_global_id(&async_graphql::ID(gid.to_owned())).expect("a global id").1
}

#[tokio::test]
async fn library_stats_on_known_data() {
    let app = spawn_app().await;
    let (s1, s2, s3) = (service(&app, "ST1").await, service(&app, "ST2").await, service(&app, "ST3").await);
    let p1 = patron(&app, "ST-1").await;
    let p2 = patron(&app, "ST-2").await;
    let p3 = patron(&app, "ST-3").await;
    let p4 = patron(&app, "ST-4").await;
    let _p5 = patron(&app, "ST-5").await;
    interact(&app, &p1, &s1, 15, "IN_PERSON", Some(5)).await;
    interact(&app, &p1, &s1, 2, "WEB", Some(3)).await;
    interact(&app, &p2, &s2, 15, "IN_PERSON", None).await;
    interact(&app, &p3, &s2, 3, "WEB", Some(4)).await;
    interact(&app, &p4, &s3, 70, "WEB", Some(1)).await;
    for (p, score) in [(&p1, 10), (&p2, 9), (&p3, 3)] {
        let token = app.patron_token(uuid_of(p));
        app.client
            .query(Some(&token), "mutation($s: Int!) { answerNps(score: $s) { score } }", json!({ "s": score }))
            .await
            .ok();
    }

    let now = Utc::now();
    let vars = json!({
        "from": (now - Duration::days(20)).to_rfc3339_opts(SecondsFormat::Secs, true),
        "to": (now + Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    let resp = app.client.query(Some(&app.staff_token()), STATS, vars.clone()).await;
    let s = &resp.ok()["libraryStats"];
    assert_eq!(s["activePatrons"], 3, "{s:#}");
    assert_eq!(s["newPatrons"], 5);
    assert_eq!(s["activeFirstHalf"], 2);
    assert_eq!(s["retainedPatrons"], 1);
    assert_eq!(s["retention"], 0.5);
    assert_eq!(s["interactions"], 4);
    assert_eq!(
        s["interactionsByChannel"],
        json!([{ "channel": "IN_PERSON", "interactions": 2 }, { "channel": "WEB", "interactions": 2 }])
    );
    assert_eq!(s["interactionsByKind"], json!([{ "kind": "VISIT", "interactions": 4 }]));
    assert_eq!(
        s["topServices"],
        json!([
            { "service": { "code": "ST1" }, "interactions": 2, "patrons": 1 },
            { "service": { "code": "ST2" }, "interactions": 2, "patrons": 2 },
        ])
    );
    assert_eq!(s["averageSatisfaction"], 4.0);
    assert_eq!(s["ratingCount"], 3);
    assert_eq!(s["npsResponses"], 3);
    let nps = s["nps"].as_f64().expect("nps");
    assert!((nps - 100.0 / 3.0).abs() < 1e-9, "{nps}");
    let lifecycle: Vec<(String, u64)> = s["lifecycle"]
        .as_array()
        .expect("lifecycle")
        .iter()
        .map(|c| (c["stage"].as_str().expect("stage").to_owned(), c["patrons"].as_u64().expect("n")))
        .collect();
    let expected: Vec<(String, u64)> = [("NEW", 4), ("ACTIVE", 0), ("AT_RISK", 1), ("LAPSED", 0), ("NEVER_ENGAGED", 0)]
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n))
        .collect();
    assert_eq!(lifecycle, expected);

    // Roles.
    let reports = app.partner_token(&[Scope::ReportsRead]);
    assert_eq!(app.client.query(Some(&reports), STATS, vars.clone()).await.ok()["libraryStats"]["interactions"], 4);
    assert_eq!(
        app.client.query(Some(&app.admin_token()), STATS, vars.clone()).await.ok()["libraryStats"]["activePatrons"],
        3
    );
    let other = app.partner_token(&[Scope::PatronsRead, Scope::InteractionsRead]);
    app.client.query(Some(&other), STATS, vars.clone()).await.expect_code("FORBIDDEN");
    let patron_token = app.patron_token(uuid_of(&p1));
    app.client.query(Some(&patron_token), STATS, vars.clone()).await.expect_code("FORBIDDEN");
    app.client.query(Some(&app.funder_token(Uuid::now_v7())), STATS, vars.clone()).await.expect_code("FORBIDDEN");
    app.client.query(None, STATS, vars.clone()).await.expect_code("UNAUTHENTICATED");

    // An empty or reversed window is bad input naming `to`.
    let bad = json!({ "from": vars["to"], "to": vars["from"] });
    let resp = app.client.query(Some(&app.staff_token()), STATS, bad).await;
    resp.expect_code("BAD_USER_INPUT");
    assert_eq!(resp.errors()[0]["extensions"]["field"], "to");
}
