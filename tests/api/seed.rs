//! The demo library: written once and fast, served through the API, shaped the way later
//! features need (segments, co-usage, rhythm, lifecycle), and deterministic.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Instant,
};

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use rapport::seed::{self, DemoScale};
use rapport_tests::{
    db::{TestDatabase, fresh_database},
    server::{TestOptions, spawn_on},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, JsonValue, QueryResult, Statement};
use serde_json::json;
use uuid::Uuid;

/// A pool on `database`, migrated, without starting a server.
async fn connect(database: &TestDatabase) -> DatabaseConnection {
    let url = database.url.clone();
    let settings = rapport::config::Settings::from_lookup(move |key| (key == "DATABASE_URL").then(|| url.clone()))
        .expect("settings");
    let db = rapport::db::connect(&settings.database, None).await.expect("connect");
    rapport::db::migrate(&db).await.expect("migrate");
    db
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.expect(sql)
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let rows = rows(db, &format!("SELECT COUNT(*) AS n FROM {table}")).await;
    rows[0].try_get::<i64>("", "n").expect("count")
}

fn midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    at.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

#[tokio::test]
async fn demo_library_is_written_fast_once_and_served() {
    rapport_tests::server::init_logging();
    let database = Arc::new(fresh_database().await.expect("database"));
    let db = connect(&database).await;
    let backend = if database.is_postgres() { "PostgreSQL" } else { "SQLite" };

    let started = Instant::now();
    assert!(seed::seed_demo_if_empty(&db).await.expect("seed"), "an empty database gets the demo library");
    let seconds = started.elapsed().as_secs_f64();
    println!("default demo library (3,000 patrons, 100,000 interactions) written on {backend} in {seconds:.2} s");
    assert!(seconds < 120.0, "seeding took {seconds:.1} s");

    // Seeding again (and starting a demo server on it) writes nothing more.
    assert!(!seed::seed_demo_if_empty(&db).await.expect("seed again"));
    let counts = [
        ("service", count(&db, "service").await),
        ("patron", count(&db, "patron").await),
        ("interaction", count(&db, "interaction").await),
        ("funder", count(&db, "funder").await),
        ("funding", count(&db, "funding").await),
        ("consent_event", count(&db, "consent_event").await),
        ("patron_tag", count(&db, "patron_tag").await),
        ("nps_response", count(&db, "nps_response").await),
    ];
    println!("demo library rows: {counts:?}");
    let get = |table: &str| counts.iter().find(|(t, _)| *t == table).map(|(_, n)| *n).unwrap_or_default();
    assert!((28..=34).contains(&get("service")));
    assert_eq!(get("patron"), 3_000);
    assert_eq!(get("interaction"), 100_000);
    assert_eq!(get("funder"), 5);
    assert!((10..=15).contains(&get("funding")));
    assert!(get("consent_event") > 3_000);
    assert!(get("patron_tag") > 500);
    assert!((300..=2_500).contains(&get("nps_response")), "some patrons answered the NPS question");

    check_structure(&db).await;
    check_principals(&db).await;
    db.close().await.expect("close");

    let app = spawn_on(database.clone(), TestOptions { demo: true, ..Default::default() }).await;
    let staff = app.staff_token();
    let response = app
        .client
        .query(
            Some(&staff),
            "{ services { totalCount } patrons { totalCount } interactions { totalCount } funders { totalCount } }",
            json!({}),
        )
        .await;
    let data = response.ok();
    assert_eq!(data["services"]["totalCount"], json!(get("service")));
    assert_eq!(data["patrons"]["totalCount"], json!(3_000));
    assert_eq!(data["interactions"]["totalCount"], json!(100_000));
    assert_eq!(data["funders"]["totalCount"], json!(5));
    // Two services are retired: the public catalogue shows the active ones.
    let public = app.client.query(None, "{ services { totalCount } }", json!({})).await;
    assert_eq!(public.ok()["services"]["totalCount"], json!(get("service") - 2));
    // The dashboard has an NPS, and engaged patrons lean towards promoting the library.
    let to = chrono::Utc::now().to_rfc3339();
    let from = (chrono::Utc::now() - Duration::days(365)).to_rfc3339();
    let stats = app
        .client
        .query(
            Some(&staff),
            "query($from: DateTime!, $to: DateTime!) { libraryStats(from: $from, to: $to) { nps npsResponses } }",
            json!({ "from": from, "to": to }),
        )
        .await;
    let nps = stats.ok()["libraryStats"]["nps"].as_f64().expect("an NPS over the last year");
    assert!((-100.0..=100.0).contains(&nps) && nps > 0.0, "{nps}");
    // The server's own start did not add a second library.
    assert_eq!(count(&app.state.db, "interaction").await, 100_000);
}

/// The shape of the data that engagement, recommendations, segments and funder reports use.
async fn check_structure(db: &DatabaseConnection) {
    let anchor = midnight(Utc::now());

    // Patron types and branches.
    let mut by_type: HashMap<String, i64> = HashMap::new();
    for row in rows(db, "SELECT patron_type, COUNT(*) AS n FROM patron GROUP BY patron_type").await {
        by_type.insert(row.try_get("", "patron_type").unwrap(), row.try_get("", "n").unwrap());
    }
    assert_eq!(by_type.len(), 7, "{by_type:?}");
    let share = |t: &str| by_type.get(t).copied().unwrap_or_default() as f64 / 3_000.0;
    assert!((0.25..0.35).contains(&share("ONLINE_LEARNER")), "{by_type:?}");
    assert!((0.30..0.40).contains(&share("ON_CAMPUS_STUDENT")), "{by_type:?}");
    let branches: HashSet<String> = rows(db, "SELECT DISTINCT home_branch FROM patron WHERE home_branch IS NOT NULL")
        .await
        .iter()
        .map(|r| r.try_get("", "home_branch").unwrap())
        .collect();
    for branch in ["Main Library", "Science Library", "Health Sciences Library", "Law Library", "Online"] {
        assert!(branches.contains(branch), "{branches:?}");
    }

    // Every interaction, with its service code.
    struct Row {
        patron: Option<Uuid>,
        code: String,
        at: DateTime<Utc>,
        channel: String,
        patron_type: String,
        rated: bool,
    }
    let all: Vec<Row> = rows(
        db,
        "SELECT i.patron_id, s.code, i.occurred_at, i.channel, i.patron_type, i.rating \
         FROM interaction i JOIN service s ON s.id = i.service_id",
    )
    .await
    .iter()
    .map(|r| Row {
        patron: r.try_get("", "patron_id").unwrap(),
        code: r.try_get("", "code").unwrap(),
        at: r.try_get("", "occurred_at").unwrap(),
        channel: r.try_get("", "channel").unwrap(),
        patron_type: r.try_get("", "patron_type").unwrap(),
        rated: r.try_get::<Option<i16>>("", "rating").unwrap().is_some(),
    })
    .collect();
    let total = all.len() as f64;
    assert!(all.iter().all(|r| r.at >= anchor - Duration::days(731) && r.at < anchor + Duration::days(1)));
    let rated = all.iter().filter(|r| r.rated).count() as f64 / total;
    assert!((0.08..0.16).contains(&rated), "rated share {rated}");
    let anonymous = all.iter().filter(|r| r.patron.is_none()).count() as f64 / total;
    assert!((0.005..0.05).contains(&anonymous), "anonymous share {anonymous}");

    // Weekly rhythm in the buildings; academic seasons for students.
    let in_person: Vec<&Row> = all.iter().filter(|r| r.channel == "IN_PERSON").collect();
    let weekend = in_person.iter().filter(|r| matches!(r.at.weekday(), Weekday::Sat | Weekday::Sun)).count() as f64;
    let weekday = in_person.len() as f64 - weekend;
    assert!(weekday / 5.0 > 1.8 * weekend / 2.0, "weekday {weekday} vs weekend {weekend}");
    let students = |month: u32| {
        all.iter().filter(|r| r.patron_type == "ON_CAMPUS_STUDENT" && r.at.month() == month).count() as f64
    };
    assert!(students(10) > 2.0 * students(7), "October {} vs July {}", students(10), students(7));

    // Heavy tail, never engaged and lapsed patrons.
    let mut per_patron: HashMap<Uuid, (usize, DateTime<Utc>, HashSet<&str>)> = HashMap::new();
    for r in &all {
        if let Some(p) = r.patron {
            let entry = per_patron.entry(p).or_insert((0, r.at, HashSet::new()));
            entry.0 += 1;
            entry.1 = entry.1.max(r.at);
            entry.2.insert(r.code.as_str());
        }
    }
    let engaged = per_patron.len() as f64;
    let never = 1.0 - engaged / 3_000.0;
    assert!((0.07..0.18).contains(&never), "never engaged {never}");
    let mut counts: Vec<usize> = per_patron.values().map(|v| v.0).collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top_decile: usize = counts.iter().take(counts.len() / 10).sum();
    let linked: usize = counts.iter().sum();
    assert!(top_decile as f64 > 0.3 * linked as f64, "top 10% hold {top_decile} of {linked}");
    let lapsed = per_patron.values().filter(|v| v.1 < anchor - Duration::days(180)).count() as f64 / engaged;
    assert!((0.08..0.5).contains(&lapsed), "lapsed share {lapsed}");
    let recent = per_patron.values().filter(|v| v.1 >= anchor - Duration::days(30)).count() as f64 / engaged;
    assert!(recent > 0.25, "active in the last 30 days {recent}");

    // Co-usage: services of one persona go together more than chance.
    let users = |code: &str| per_patron.values().filter(|v| v.2.contains(code)).count() as f64;
    let both = |a: &str, b: &str| per_patron.values().filter(|v| v.2.contains(a) && v.2.contains(b)).count() as f64;
    let lift = |a: &str, b: &str| (both(a, b) / users(a)) / (users(b) / engaged);
    for (a, b) in [
        ("CHAT-REF", "EMBEDDED"),
        ("LAPTOP-LOAN", "STUDY-ROOMS"),
        ("ILL", "RESEARCH-CONSULT"),
        ("STORY-TIME", "HOMEWORK-HELP"),
    ] {
        let l = lift(a, b);
        println!("co-usage lift {a} -> {b}: {l:.2}");
        assert!(l > 1.3, "lift {a} -> {b} = {l}");
    }
    assert!(lift("EMBEDDED", "STUDY-ROOMS") < 1.0);

    // Funded services: large ones have monthly segment cells of five or more patrons, small ones fewer.
    let monthly_cells = |code: &str| {
        let mut cells: HashMap<(i32, u32, &str), HashSet<Uuid>> = HashMap::new();
        for r in all.iter().filter(|r| r.code == code) {
            if let Some(p) = r.patron {
                cells.entry((r.at.year(), r.at.month(), r.patron_type.as_str())).or_default().insert(p);
            }
        }
        let small = cells.values().filter(|c| c.len() < 5).count();
        (cells.len() - small, small)
    };
    for code in ["EMBEDDED", "WRITING-CTR", "ACCESS-TECH", "HOMEWORK-HELP"] {
        let (visible, suppressed) = monthly_cells(code);
        println!("{code}: {visible} monthly segment cells with >= 5 patrons, {suppressed} with fewer");
        assert!(suppressed > 0, "{code} has no small cells");
    }
    assert!(monthly_cells("EMBEDDED").0 >= 20);
    assert!(monthly_cells("WRITING-CTR").0 >= 20);

    // Consents: about 60% currently allow personalisation.
    let mut latest: HashMap<(Uuid, String), (DateTime<Utc>, bool)> = HashMap::new();
    for r in rows(db, "SELECT patron_id, purpose, granted, recorded_at FROM consent_event").await {
        let key = (r.try_get("", "patron_id").unwrap(), r.try_get("", "purpose").unwrap());
        let value = (r.try_get("", "recorded_at").unwrap(), r.try_get("", "granted").unwrap());
        let slot = latest.entry(key).or_insert(value);
        if value.0 > slot.0 {
            *slot = value;
        }
    }
    let personalised =
        latest.iter().filter(|((_, purpose), (_, granted))| purpose == "PERSONALISATION" && *granted).count() as f64;
    assert!((0.45..0.72).contains(&(personalised / 3_000.0)), "personalisation {personalised}");
    for purpose in ["MARKETING_EMAIL", "MARKETING_SMS", "MARKETING_PUSH", "MARKETING_IN_APP"] {
        assert!(latest.keys().any(|(_, p)| p == purpose), "{purpose}");
    }

    let synced = count(db, "interaction WHERE source = 'demo' AND external_id IS NOT NULL").await;
    assert!(synced > 10_000 && synced < 90_000, "synced {synced}");
    let inactive = count(db, "service WHERE active = false").await;
    assert_eq!(inactive, 2);
}

async fn check_principals(db: &DatabaseConnection) {
    let principals = seed::demo_principals(db).await.expect("principals");
    assert_eq!(principals.patron_card.as_deref(), Some(seed::SHOWCASE_CARD));
    assert_eq!(principals.funder_name.as_deref(), Some("Department of Education – Digital Learning Fund"));
    let patron = principals.patron_id.expect("demo patron");
    let profile =
        rows(db, &format!("SELECT patron_type, status FROM patron WHERE card_number = '{}'", seed::SHOWCASE_CARD))
            .await;
    assert_eq!(profile[0].try_get::<String>("", "patron_type").unwrap(), "ONLINE_LEARNER");
    assert_eq!(profile[0].try_get::<String>("", "status").unwrap(), "ACTIVE");
    let history: Vec<String> = rows(
        db,
        "SELECT s.code FROM interaction i JOIN service s ON s.id = i.service_id \
         JOIN patron p ON p.id = i.patron_id WHERE p.card_number = 'D-000001'",
    )
    .await
    .iter()
    .map(|r| r.try_get("", "code").unwrap())
    .collect();
    let distinct: HashSet<&String> = history.iter().collect();
    println!("demo patron {patron}: {} interactions with {} services", history.len(), distinct.len());
    assert!(history.len() >= 40 && distinct.len() >= 4 && distinct.len() < 20);
    let consents = rows(
        db,
        "SELECT c.granted FROM consent_event c JOIN patron p ON p.id = c.patron_id \
         WHERE p.card_number = 'D-000001' AND c.purpose = 'PERSONALISATION'",
    )
    .await;
    assert!(!consents.is_empty() && consents.iter().all(|r| r.try_get::<bool>("", "granted").unwrap()));
}

/// Every row of every demo table, in a stable order.
async fn dump(db: &DatabaseConnection) -> Vec<(String, Vec<JsonValue>)> {
    let mut out = Vec::new();
    for (table, order) in [
        ("service", "id"),
        ("funder", "id"),
        ("funding", "id"),
        ("patron", "id"),
        ("patron_tag", "patron_id, tag"),
        ("consent_event", "id"),
        ("interaction", "id"),
        ("nps_response", "id"),
    ] {
        let statement =
            Statement::from_string(db.get_database_backend(), format!("SELECT * FROM {table} ORDER BY {order}"));
        let rows = JsonValue::find_by_statement(statement).all(db).await.expect("dump");
        out.push((table.to_owned(), rows));
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_the_same_library() {
    let scale = DemoScale {
        patrons: 240,
        interactions: 6_000,
        days: 730,
        anchor: Some(DateTime::parse_from_rfc3339("2026-03-15T00:00:00Z").unwrap().to_utc()),
    };
    let mut dumps = Vec::new();
    for seed_value in [7, 7, 8] {
        let database = fresh_database().await.expect("database");
        let db = connect(&database).await;
        let report = seed::generate(&db, &scale, seed_value).await.expect("generate");
        assert_eq!(report.patrons, 240);
        assert_eq!(report.interactions, 6_000);
        assert_eq!(count(&db, "interaction").await, 6_000);
        // A filled database is never seeded again, demo data or not.
        assert!(!seed::seed_demo_if_empty(&db).await.expect("seed"));
        dumps.push(dump(&db).await);
        if seed_value == 8 {
            // Without the showcase card, the demo patron is the busiest active online learner.
            db.execute_unprepared("UPDATE patron SET card_number = 'X-000001' WHERE card_number = 'D-000001'")
                .await
                .expect("update");
            let principals = seed::demo_principals(&db).await.expect("principals");
            let card = principals.patron_card.expect("a demo patron");
            let row = rows(&db, &format!("SELECT patron_type, status FROM patron WHERE card_number = '{card}'")).await;
            assert_eq!(row[0].try_get::<String>("", "patron_type").unwrap(), "ONLINE_LEARNER");
            assert_eq!(row[0].try_get::<String>("", "status").unwrap(), "ACTIVE");
            assert!(principals.funder_id.is_some());
        }
        db.close().await.expect("close");
    }
    for ((table, a), (_, b)) in dumps[0].iter().zip(&dumps[1]) {
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{table}: rows differ");
        }
    }
    // A different seed gives a different library (same catalogue codes, different ids and history).
    let ids = |d: &Vec<(String, Vec<JsonValue>)>, table: &str| -> Vec<JsonValue> {
        d.iter().find(|(t, _)| t == table).map(|(_, rows)| rows.iter().map(|r| r["id"].clone()).collect()).unwrap()
    };
    assert_ne!(ids(&dumps[0], "interaction"), ids(&dumps[2], "interaction"));
    assert_ne!(ids(&dumps[0], "patron"), ids(&dumps[2], "patron"));
    // All dates hang off the anchor.
    let interactions = &dumps[0].iter().find(|(t, _)| t == "interaction").unwrap().1;
    let anchor = scale.anchor.unwrap();
    for row in interactions {
        let at: DateTime<Utc> = serde_json::from_value(row["occurred_at"].clone())
            .or_else(|_| row["occurred_at"].as_str().unwrap_or_default().replace(' ', "T").parse())
            .expect("occurred_at");
        assert!(at < anchor && at >= anchor - Duration::days(730), "{at}");
    }
}
