//! Resilience that fits in CI time: a bad-input storm of 10,000 requests gets no 5xx and leaves
//! the server serving; on PostgreSQL, connections terminated under load fail fast with a clear
//! error and the pool recovers without a restart. (Redis killed under load is in `cache`; the
//! SIGTERM drain needs a child process and runs in `bench resilience`.)

use std::time::{Duration, Instant};

use rapport::auth::Scope;
use rapport_tests::{
    TestApp, TestOptions, spawn_app_with,
    storm::{self, StormContext},
};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

fn no_rate_limits() -> TestOptions {
    ["ANONYMOUS", "PATRON", "FUNDER", "PARTNER", "STAFF", "ADMIN"]
        .into_iter()
        .fold(TestOptions::default(), |options, role| options.with(&format!("RAPPORT_RATE_LIMIT_{role}"), "0"))
}

async fn healthy(app: &TestApp) -> bool {
    app.client.http.get(app.url("/healthz")).send().await.is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn a_storm_of_ten_thousand_bad_requests_gets_no_5xx_and_the_server_keeps_serving() {
    let app = spawn_app_with(no_rate_limits()).await;
    let context = StormContext {
        tokens: vec![app.staff_token(), app.partner_token(&Scope::ALL)],
        jwt_secret: Some(rapport_tests::server::TEST_JWT_SECRET.into()),
        max_body_bytes: app.state.settings.limits.max_body_bytes,
    };
    let report = storm::run(&app.address, &context, 20_261_122, 10_000, 16, Duration::from_secs(30)).await;
    println!(
        "storm: {} requests in {:.1} s, statuses {:?}, codes {:?}, 5xx {}, no answer {}, INTERNAL {}, largest {} bytes",
        report.requests,
        report.elapsed_secs,
        report.statuses,
        report.codes,
        report.server_errors,
        report.transport_errors,
        report.internal_codes,
        report.largest_response_bytes
    );
    for example in &report.examples {
        println!(
            "  #{} {} {}: {} -> {}",
            example.index, example.kind, example.status, example.request, example.response
        );
    }
    assert!(report.clean(), "5xx or unanswered requests: {:#?}", report.examples);
    assert!(healthy(&app).await, "the server stopped answering after the storm");
    app.client
        .query(Some(&app.staff_token()), "{ services(first: 1) { totalCount } }", serde_json::json!({}))
        .await
        .ok();
}

fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn postgres_connections_killed_under_load_fail_fast_and_the_pool_recovers() {
    let Some(admin_url) = rapport_tests::db::postgres_admin_url() else {
        println!("SKIPPED postgres_connections_killed_under_load: needs TEST_DATABASE_URL");
        return;
    };
    let app = spawn_app_with(no_rate_limits().with("DATABASE_ACQUIRE_TIMEOUT_SECS", "2")).await;
    let token = app.staff_token();
    let query = "{ patrons(first: 5) { totalCount nodes { id } } services(first: 5) { totalCount } }";
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(7);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, token) = (app.client.clone(), token.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while Instant::now() < stop_at {
                    let sent = started.elapsed();
                    let response = client.query(Some(&token), query, serde_json::json!({})).await;
                    outcomes.push((sent, started.elapsed() - sent, response.status, response.codes()));
                }
                outcomes
            })
        })
        .collect();
    let name = database_name(&app.database.url);
    let admin = Database::connect(&admin_url).await.unwrap();
    let mut killed = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        killed += admin
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                [name.clone().into()],
            ))
            .await
            .unwrap()
            .len();
    }
    let last_kill = started.elapsed();
    admin.close().await.unwrap();
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await.unwrap());
    }
    let failures: Vec<_> =
        outcomes.iter().filter(|(_, _, status, codes)| *status != 200 || !codes.is_empty()).collect();
    println!(
        "pg kill: {killed} backends terminated, {} requests, {} failed: {:?}",
        outcomes.len(),
        failures.len(),
        failures.iter().map(|(_, latency, status, codes)| (status, codes, latency)).take(5).collect::<Vec<_>>()
    );
    assert!(killed > 0, "no backend was terminated");
    for (_, latency, status, codes) in &failures {
        // Fail fast: within the acquire timeout (2 s) plus the connect timeout's first attempt.
        assert!(*latency < Duration::from_secs(8), "a failed request hung for {latency:?}");
        assert!(*status < 500 || *status == 503, "unexpected status {status}");
        assert!(
            codes.iter().all(|c| ["INTERNAL", "SERVICE_UNAVAILABLE", "UNAVAILABLE"].contains(&c.as_str()))
                || codes.is_empty(),
            "unclear codes {codes:?}"
        );
    }
    // Recovered without a restart: the last second of the run had no failure.
    let tail: Vec<_> = outcomes.iter().filter(|(sent, _, _, _)| *sent > last_kill + Duration::from_secs(3)).collect();
    assert!(!tail.is_empty(), "no request after the kills");
    assert!(
        tail.iter().all(|(_, _, status, codes)| *status == 200 && codes.is_empty()),
        "requests still failing 3 s after the last kill: {:?}",
        tail.iter().filter(|(_, _, s, c)| *s != 200 || !c.is_empty()).take(3).collect::<Vec<_>>()
    );
    assert!(healthy(&app).await);
}
