//! Funder reports: known answers from roll-ups, k-anonymity with complementary suppression,
//! CSV, roles, range limits and roll-up rebuild = incremental maintenance.

use async_graphql::ID;
use rapport::{
    auth::Scope,
    graphql::ids::{NodeKind, decode_global_id, to_global_id},
};
use rapport_tests::{TestApp, spawn_app};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

const REPORT: &str = "query($f: ID!, $from: Date!, $to: Date!, $g: ReportGranularity!) {
  fundingReport(funderId: $f, from: $from, to: $to, granularity: $g) {
    funderId k
    services { serviceName
      periods { start end metrics { ...M } }
      totals { ...M } }
    totals { ...M }
  } }
  fragment M on ReportMetrics {
    interactions { value suppressed } uniquePatrons { value suppressed }
    newPatrons { value suppressed } returningPatrons { value suppressed }
    averageSatisfaction { value suppressed } ratingCount { value suppressed }
    byChannel { channel interactions { value suppressed } uniquePatrons { value suppressed } }
    byPatronType { patronType interactions { value suppressed } uniquePatrons { value suppressed } }
    fundingAttributed { minorUnits currency } costPerInteraction { minorUnits currency }
  }";

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&ID(gid.to_owned())).expect("a global id").1
}

async fn create(app: &TestApp, mutation: &str, field: &str, input: Value) -> String {
    let resp = app.client.query(Some(&app.staff_token()), mutation, json!({ "i": input })).await;
    resp.ok()[field]["id"].as_str().expect("an id").to_owned()
}

struct Fixture {
    app: TestApp,
    funder: String,
    other_funder: String,
    /// P1..P6.
    publics: Vec<String>,
}

/// Service A (funded 1200.00 EUR over 2026) and service C (not funded by this funder).
/// January: P1..P6 (PUBLIC) one IN_PERSON visit each rated 4, P1 also one WEB, Q1 (FACULTY) one
/// IN_PERSON; February: P1..P5 IN_PERSON; March: P1, P2 IN_PERSON. Service C: 7 visits in January.
async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let svc = "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }";
    let a = create(
        &app,
        svc,
        "createService",
        json!({ "code": "RPT-A", "name": "Alpha", "category": "TUTORING", "active": true }),
    )
    .await;
    let c = create(
        &app,
        svc,
        "createService",
        json!({ "code": "RPT-C", "name": "Gamma", "category": "TUTORING", "active": true }),
    )
    .await;
    let fun = "mutation($i: CreateFunderInput!) { createFunder(input: $i) { id } }";
    let funder = create(&app, fun, "createFunder", json!({ "name": "City", "kind": "GOVERNMENT" })).await;
    let other_funder = create(&app, fun, "createFunder", json!({ "name": "Other", "kind": "DONOR" })).await;
    let grant = "mutation($i: CreateFundingInput!) { createFunding(input: $i) { id } }";
    create(
        &app,
        grant,
        "createFunding",
        json!({ "funderId": funder, "serviceId": a, "amount": "1200.00",
        "currency": "EUR", "startsOn": "2026-01-01", "endsOn": "2026-12-31" }),
    )
    .await;
    create(
        &app,
        grant,
        "createFunding",
        json!({ "funderId": other_funder, "serviceId": c, "amount": "10.00",
        "currency": "EUR", "startsOn": "2026-01-01", "endsOn": "2026-12-31" }),
    )
    .await;
    let pat = "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }";
    let mut publics = Vec::new();
    for i in 1..=6 {
        publics.push(
            create(
                &app,
                pat,
                "createPatron",
                json!({ "cardNumber": format!("RPT-P{i}"), "name": format!("P{i}"), "patronType": "PUBLIC" }),
            )
            .await,
        );
    }
    let q1 =
        create(&app, pat, "createPatron", json!({ "cardNumber": "RPT-Q1", "name": "Q1", "patronType": "FACULTY" }))
            .await;
    let item = |patron: &str, service: &str, channel: &str, at: &str, rating: Option<i32>| json!({ "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": channel, "occurredAt": at, "rating": rating });
    let mut items = Vec::new();
    for p in &publics {
        items.push(item(p, &a, "IN_PERSON", "2026-01-10T10:00:00Z", Some(4)));
        items.push(item(p, &c, "IN_PERSON", "2026-01-10T11:00:00Z", None));
    }
    items.push(item(&publics[0], &a, "WEB", "2026-01-11T10:00:00Z", None));
    items.push(item(&q1, &a, "IN_PERSON", "2026-01-12T10:00:00Z", None));
    items.push(item(&q1, &c, "IN_PERSON", "2026-01-12T10:00:00Z", None));
    let batch = "mutation($i: RecordInteractionsInput!) { recordInteractions(input: $i) { created } }";
    let resp = app.client.query(Some(&app.staff_token()), batch, json!({ "i": { "interactions": items } })).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 15, "{:#}", resp.body);
    // Later ones one by one (the single-record path maintains the roll-ups too).
    let one = "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }";
    for p in &publics[..5] {
        let resp = app
            .client
            .query(
                Some(&app.staff_token()),
                one,
                json!({ "i": item(p, &a, "IN_PERSON", "2026-02-03T10:00:00Z", None) }),
            )
            .await;
        resp.ok();
    }
    for p in &publics[..2] {
        let resp = app
            .client
            .query(
                Some(&app.staff_token()),
                one,
                json!({ "i": item(p, &a, "IN_PERSON", "2026-03-05T10:00:00Z", None) }),
            )
            .await;
        resp.ok();
    }
    Fixture { app, funder, other_funder, publics }
}

fn vars(funder: &str, from: &str, to: &str, g: &str) -> Value {
    json!({ "f": funder, "from": from, "to": to, "g": g })
}

fn visible(v: &Value, n: i64) {
    assert_eq!(v, &json!({ "value": n, "suppressed": false }));
}

fn hidden(v: &Value) {
    assert_eq!(v, &json!({ "value": null, "suppressed": true }));
}

#[tokio::test]
async fn monthly_report_has_known_answers_and_suppression() {
    let f = fixture().await;
    let resp = f
        .app
        .client
        .query(Some(&f.app.staff_token()), REPORT, vars(&f.funder, "2026-01-01", "2026-03-31", "MONTH"))
        .await;
    let r = &resp.ok()["fundingReport"];
    assert_eq!(r["k"], 5);
    let services = r["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "only the funded service: {r:#}");
    let s = &services[0];
    assert_eq!(s["serviceName"], "Alpha");
    let periods = s["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 3);
    assert_eq!(periods[0]["start"], "2026-01-01");
    assert_eq!(periods[0]["end"], "2026-01-31");
    let jan = &periods[0]["metrics"];
    visible(&jan["interactions"], 8);
    visible(&jan["uniquePatrons"], 7);
    visible(&jan["newPatrons"], 7);
    visible(&jan["returningPatrons"], 0);
    visible(&jan["ratingCount"], 6);
    assert_eq!(jan["averageSatisfaction"]["value"], 4.0);
    // WEB has one patron: suppressed; IN_PERSON would reveal it by subtraction: suppressed too.
    for ch in jan["byChannel"].as_array().unwrap() {
        hidden(&ch["interactions"]);
    }
    // FACULTY has one patron, PUBLIC is suppressed as its complement.
    for t in jan["byPatronType"].as_array().unwrap() {
        hidden(&t["interactions"]);
    }
    // 1200.00 EUR over 365 days, 31 days in January.
    assert_eq!(jan["fundingAttributed"]["minorUnits"], 120_000 * 31 / 365);
    assert_eq!(jan["costPerInteraction"]["minorUnits"], 120_000 * 31 / 365 / 8);
    // March has 2 patrons: suppressed; February (next smallest) is suppressed as its complement.
    let mar = &periods[2]["metrics"];
    hidden(&mar["interactions"]);
    hidden(&mar["uniquePatrons"]);
    assert!(mar["averageSatisfaction"]["suppressed"].as_bool().unwrap());
    assert!(mar["fundingAttributed"]["minorUnits"].as_i64().is_some());
    assert!(mar["costPerInteraction"].is_null());
    let feb = &periods[1]["metrics"];
    hidden(&feb["interactions"]);
    // Service totals: 15 interactions, 7 patrons, all new in the range.
    let t = &s["totals"];
    visible(&t["interactions"], 15);
    visible(&t["uniquePatrons"], 7);
    visible(&t["newPatrons"], 7);
    visible(&t["returningPatrons"], 0);
    assert_eq!(t["fundingAttributed"]["minorUnits"], 120_000 * 90 / 365);
    visible(&r["totals"]["interactions"], 15);

    // February alone: 5 patrons, all returning.
    let resp = f
        .app
        .client
        .query(Some(&f.app.staff_token()), REPORT, vars(&f.funder, "2026-02-01", "2026-02-28", "MONTH"))
        .await;
    let feb = &resp.ok()["fundingReport"]["services"][0]["periods"][0]["metrics"];
    visible(&feb["interactions"], 5);
    visible(&feb["uniquePatrons"], 5);
    visible(&feb["newPatrons"], 0);
    visible(&feb["returningPatrons"], 5);
    let in_person = &feb["byChannel"][0];
    assert_eq!(in_person["channel"], "IN_PERSON");
    visible(&in_person["interactions"], 5);
}

#[tokio::test]
async fn roles_and_range_limits() {
    let f = fixture().await;
    let app = &f.app;
    let v = vars(&f.funder, "2026-01-01", "2026-03-31", "QUARTER");
    let own = app.funder_token(uuid_of(&f.funder));
    let resp = app.client.query(Some(&own), REPORT, v.clone()).await;
    visible(&resp.ok()["fundingReport"]["services"][0]["periods"][0]["metrics"]["interactions"], 15);
    let other = app.funder_token(uuid_of(&f.other_funder));
    app.client.query(Some(&other), REPORT, v.clone()).await.expect_code("FORBIDDEN");
    app.client.query(Some(&app.partner_token(&[Scope::PatronsRead])), REPORT, v.clone()).await.expect_code("FORBIDDEN");
    app.client.query(Some(&app.partner_token(&[Scope::ReportsRead])), REPORT, v.clone()).await.ok();
    app.client.query(Some(&app.admin_token()), REPORT, v.clone()).await.ok();
    app.client.query(Some(&app.patron_token(Uuid::now_v7())), REPORT, v.clone()).await.expect_code("FORBIDDEN");
    app.client.query(None, REPORT, v).await.expect_code("UNAUTHENTICATED");
    let staff = app.staff_token();
    for (from, to, g) in [
        ("2026-01-01", "2027-03-01", "DAY"),
        ("2020-01-01", "2026-01-01", "MONTH"),
        ("2026-03-01", "2026-01-01", "WEEK"),
    ] {
        app.client.query(Some(&staff), REPORT, vars(&f.funder, from, to, g)).await.expect_code("BAD_USER_INPUT");
    }
    let missing = to_global_id(NodeKind::Funder, Uuid::now_v7());
    app.client
        .query(Some(&staff), REPORT, vars(missing.as_str(), "2026-01-01", "2026-01-31", "DAY"))
        .await
        .expect_code("NOT_FOUND");
}

#[tokio::test]
async fn csv_has_rows_and_suppressed_cells() {
    let f = fixture().await;
    let app = &f.app;
    let path = format!("/reports/funding/{}.csv?from=2026-01-01&to=2026-03-31&granularity=MONTH", f.funder);
    let resp = app.client.http.get(app.url(&path)).bearer_auth(app.staff_token()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let body = resp.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("service_id,service_name,scope,period_start"));
    assert!(lines[0].ends_with(",suppressed,nps_respondents,nps_score"));
    let jan = lines.iter().find(|l| l.contains(",PERIOD,2026-01-01,2026-01-31,ALL,")).unwrap();
    assert!(jan.contains(",ALL,,8,7,7,0,4.00,6,101.91,12.73,EUR,false"), "{jan}");
    let web = lines.iter().find(|l| l.contains(",PERIOD,2026-01-01,2026-01-31,CHANNEL,WEB,")).unwrap();
    assert!(web.ends_with(",WEB,,,,,,,,,,true,,"), "{web}");
    let mar = lines.iter().find(|l| l.contains(",PERIOD,2026-03-01,2026-03-31,ALL,")).unwrap();
    assert!(mar.contains(",ALL,,,,,,,,"), "{mar}");
    assert!(mar.ends_with(",true,,"));
    assert!(lines.iter().any(|l| l.contains(",TOTAL,2026-01-01,2026-03-31,ALL,,15,7,7,0,")), "{body}");

    let other = app.funder_token(uuid_of(&f.other_funder));
    let resp = app.client.http.get(app.url(&path)).bearer_auth(other).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let resp = app.client.http.get(app.url(&path)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let bad = format!("/reports/funding/{}.csv?from=2026-01-01&to=nope", f.funder);
    let resp = app.client.http.get(app.url(&bad)).bearer_auth(app.staff_token()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
}

/// The global ids of a patron's interactions, oldest first.
async fn interactions_of(app: &TestApp, patron: &str) -> Vec<String> {
    let q = "query($id: ID!) { patron(id: $id) { interactions(first: 50) { edges { node { id } } } } }";
    let resp = app.client.query(Some(&app.staff_token()), q, json!({ "id": patron })).await;
    resp.ok()["patron"]["interactions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A patron's (re-)rating moves the satisfaction of the report (roll-ups updated in the same
/// transaction, equal to a rebuild), and the report carries the NPS of the funded services'
/// users, suppressed below k respondents.
#[tokio::test]
async fn ratings_and_nps_reach_the_report() {
    let f = fixture().await;
    let app = &f.app;
    let rate = "mutation($id: ID!, $r: Int!) { rateInteraction(interactionId: $id, rating: $r) { rating } }";
    let nps = "mutation($s: Int!) { answerNps(score: $s) { score } }";
    let token = |p: &String| app.patron_token(uuid_of(p));
    // P1's January visit of A (rated 4) becomes 1; P2's February visit of A (unrated) gets 5.
    let p1 = interactions_of(app, &f.publics[0]).await;
    let p2 = interactions_of(app, &f.publics[1]).await;
    let p1_jan_a = &p1[0];
    assert_eq!(p2.len(), 4, "{p2:?}");
    let p2_feb_a = &p2[2];
    app.client.query(Some(&token(&f.publics[0])), rate, json!({ "id": p1_jan_a, "r": 1 })).await.ok();
    app.client.query(Some(&token(&f.publics[1])), rate, json!({ "id": p2_feb_a, "r": 5 })).await.ok();

    let resp =
        app.client.query(Some(&app.staff_token()), REPORT, vars(&f.funder, "2026-01-01", "2026-03-31", "MONTH")).await;
    let r = &resp.ok()["fundingReport"];
    let jan = &r["services"][0]["periods"][0]["metrics"];
    visible(&jan["ratingCount"], 6);
    assert_eq!(jan["averageSatisfaction"]["value"], 3.5, "(5 × 4 + 1) / 6");
    let totals = &r["services"][0]["totals"];
    visible(&totals["ratingCount"], 7);
    let avg = totals["averageSatisfaction"]["value"].as_f64().unwrap();
    assert!((avg - 26.0 / 7.0).abs() < 1e-9, "{avg}");
    let incremental = dump(app).await;
    rapport::domain::rollups::rebuild(&app.state.db).await.unwrap();
    assert_eq!(incremental, dump(app).await, "rating updates equal a rebuild");

    // NPS: four respondents among the users of A are fewer than k = 5.
    let today = chrono::Utc::now().date_naive().to_string();
    for (p, score) in f.publics.iter().zip([10, 10, 9, 3]) {
        app.client.query(Some(&token(p)), nps, json!({ "s": score })).await.ok();
    }
    let outsider = create(
        app,
        "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
        "createPatron",
        json!({ "cardNumber": "RPT-Z", "name": "Z", "patronType": "PUBLIC" }),
    )
    .await;
    app.client.query(Some(&token(&outsider)), nps, json!({ "s": 0 })).await.ok();
    let q = "query($f: ID!, $from: Date!, $to: Date!) { fundingReport(funderId: $f, from: $from, to: $to, granularity: QUARTER) { nps { respondents { value suppressed } score suppressed } } }";
    let staff = app.staff_token();
    let resp = app.client.query(Some(&staff), q, json!({ "f": f.funder, "from": "2026-01-01", "to": today })).await;
    assert_eq!(
        resp.ok()["fundingReport"]["nps"],
        json!({ "respondents": { "value": null, "suppressed": true }, "score": null, "suppressed": true })
    );
    app.client.query(Some(&token(&f.publics[4])), nps, json!({ "s": 7 })).await.ok();
    // Another range (reports are cached per range): 3 promoters, 1 detractor of 5; the outsider
    // who used no funded service does not count.
    let resp = app.client.query(Some(&staff), q, json!({ "f": f.funder, "from": "2026-01-02", "to": today })).await;
    assert_eq!(
        resp.ok()["fundingReport"]["nps"],
        json!({ "respondents": { "value": 5, "suppressed": false }, "score": 40.0, "suppressed": false })
    );
    let path = format!("/reports/funding/{}.csv?from=2026-01-02&to={today}&granularity=QUARTER", f.funder);
    let body = app.client.http.get(app.url(&path)).bearer_auth(&staff).send().await.unwrap().text().await.unwrap();
    let total = body.lines().find(|l| l.contains(",TOTAL,")).unwrap();
    assert!(total.ends_with(",5,40.0"), "{total}");
}

async fn dump(app: &TestApp) -> Vec<String> {
    let db = &app.state.db;
    let mut out = Vec::new();
    for sql in [
        "SELECT service_id, day, patron_type, channel, interactions, rating_sum, rating_count FROM interaction_daily \
         ORDER BY service_id, day, patron_type, channel",
        "SELECT service_id, day, patron_id, channel, patron_type FROM service_patron_day \
         ORDER BY service_id, day, patron_id, channel, patron_type",
        "SELECT service_id, patron_id, first_day FROM service_patron_first ORDER BY service_id, patron_id",
    ] {
        let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
        for row in rows {
            let service: Uuid = row.try_get_by_index(0).unwrap();
            let a: String = match row.try_get_by_index::<chrono::NaiveDate>(1) {
                Ok(d) => d.to_string(),
                Err(_) => row.try_get_by_index::<Uuid>(1).unwrap().to_string(),
            };
            let b: String = match row.try_get_by_index::<Uuid>(2) {
                Ok(u) => u.to_string(),
                Err(_) => row
                    .try_get_by_index::<String>(2)
                    .or_else(|_| row.try_get_by_index::<chrono::NaiveDate>(2).map(|d| d.to_string()))
                    .unwrap(),
            };
            out.push(format!("{service} {a} {b}"));
        }
        out.push("--".to_owned());
    }
    out
}

#[tokio::test]
async fn rebuild_equals_incremental() {
    let f = fixture().await;
    let before = dump(&f.app).await;
    assert!(before.len() > 10, "{before:?}");
    let report = rapport::domain::rollups::rebuild(&f.app.state.db).await.unwrap();
    assert_eq!(report.interactions, 22);
    let after = dump(&f.app).await;
    assert_eq!(before, after);
    let totals = "SELECT interactions FROM interaction_daily";
    let db = &f.app.state.db;
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), totals)).await.unwrap();
    let sum: i64 = rows.iter().map(|r| r.try_get_by_index::<i64>(0).unwrap()).sum();
    assert_eq!(sum, 22);
}

/// Timing of a one-year monthly report on the demo library (100k interactions; another scale
/// with `REPORT_TIMING_PATRONS` and `REPORT_TIMING_INTERACTIONS`). Run with
/// `-- --ignored reports::demo_report_timing --nocapture`.
#[tokio::test]
#[ignore]
async fn demo_report_timing() {
    use rapport::domain::reports::{Granularity, ReportQuery, funding_report};
    let app = spawn_app().await;
    let mut scale = rapport::seed::DemoScale::default();
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok());
    scale.patrons = env("REPORT_TIMING_PATRONS").unwrap_or(scale.patrons);
    scale.interactions = env("REPORT_TIMING_INTERACTIONS").unwrap_or(scale.interactions);
    let seeded = std::time::Instant::now();
    rapport::seed::generate(&app.state.db, &scale, 42).await.unwrap();
    println!("SEEDED {} patrons, {} interactions in {:?}", scale.patrons, scale.interactions, seeded.elapsed());
    let db = &app.state.db;
    let sql = "SELECT funder_id FROM funding GROUP BY funder_id ORDER BY COUNT(*) DESC, funder_id LIMIT 1";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    let funder_id: Uuid = row.try_get_by_index(0).unwrap();
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(364);
    let q = ReportQuery { funder_id, from, to, granularity: Granularity::Month };
    for run in 1..=3 {
        let started = std::time::Instant::now();
        let report = funding_report(&app.state.db, q, 5).await.unwrap();
        println!("REPORT run {run}: {} services, {:?} (uncached)", report.services.len(), started.elapsed());
    }
}
