//! `bench resilience`: break things under load and report what clients saw, as figures.
//!
//! - Redis killed under load (and restarted): failed requests, and how soon the server writes
//!   to Redis again.
//! - PostgreSQL connections terminated under load: failures, how fast they failed, what they
//!   said, and how long until requests succeed again (same process, no restart).
//! - SIGTERM during a write load: drain time, and writes acknowledged vs found in the database.
//! - The bad-input storm: statuses and codes, 5xx, memory before and after.

use std::{
    collections::{BTreeMap, HashSet},
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rapport_tests::{
    redis_server::RedisServer,
    storm::{self, StormContext, StormReport},
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    Backend, SetupArgs, dataset,
    scenarios::{Context, Scenario},
    server::{BENCH_JWT_SECRET, ServerConfig, ServerProcess, Tokens},
};

/// One request of a timed load.
#[derive(Debug, Clone)]
struct Sample {
    /// Start, since the load began.
    at: Duration,
    latency: Duration,
    error: Option<String>,
}

/// A load that runs until told to stop, keeping every request's outcome.
struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    workers: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
}

impl Load {
    fn start(server: &ServerProcess, context: &Arc<Context>, scenario: Scenario, concurrency: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        let workers = (0..concurrency)
            .map(|i| {
                let (stop, http, context) = (stop.clone(), http.clone(), context.clone());
                let base = server.base.clone();
                tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(i as u64);
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let call = context.call(scenario, &mut rng);
                        let at = started.elapsed();
                        let error = send(&http, &base, &call).await.err();
                        samples.push(Sample { at, latency: started.elapsed() - at, error });
                    }
                    samples
                })
            })
            .collect();
        Self { stop, started, workers }
    }

    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for worker in self.workers {
            if let Ok(samples) = worker.await {
                all.extend(samples);
            }
        }
        all.sort_by_key(|s| s.at);
        all
    }
}

async fn send(http: &reqwest::Client, base: &str, call: &crate::scenarios::Call) -> Result<Value, String> {
    let url = format!("{base}{}", call.path);
    let mut request = if call.get {
        http.get(url)
    } else {
        http.post(url).header("content-type", "application/json").body(call.body.as_ref().clone())
    };
    if let Some(token) = &call.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("no response: {e}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("{status}: body: {e}"))?;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = value["errors"][0]["extensions"]["code"].as_str();
    if !status.is_success() || value["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        let message = value["errors"][0]["message"].as_str().unwrap_or_default();
        return Err(format!("{} {}: {}", status.as_u16(), code.unwrap_or("-"), truncate(message, 160)));
    }
    Ok(value)
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Failures by message, most frequent first (at most five).
fn failure_kinds(samples: &[Sample]) -> Vec<(String, u64)> {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples.iter().filter_map(|s| s.error.as_ref()) {
        *kinds.entry(s.clone()).or_default() += 1;
    }
    let mut kinds: Vec<(String, u64)> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds.truncate(5);
    kinds
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisOutcome {
    pub requests: u64,
    pub failures: u64,
    pub failure_kinds: Vec<(String, u64)>,
    pub p99_ms_while_down: f64,
    pub down_secs: f64,
    /// From Redis answering again to the first cache key written by the server.
    pub cache_back_after_secs: Option<f64>,
    pub cache_errors: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresOutcome {
    pub requests: u64,
    pub failures: u64,
    pub failure_kinds: Vec<(String, u64)>,
    pub connections_terminated: u64,
    pub slowest_failure_ms: f64,
    pub acquire_timeout_secs: u64,
    /// From the last termination to the first second without failures.
    pub recovered_after_secs: Option<f64>,
    pub same_process: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SigtermOutcome {
    pub requests_before_sigterm: u64,
    pub in_flight_at_sigterm: u64,
    pub in_flight_completed: u64,
    pub refused_after_sigterm: u64,
    pub drain_secs: Option<f64>,
    pub exit_status: String,
    pub writes_acknowledged: u64,
    pub acknowledged_found: u64,
    pub rows_written: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StormOutcome {
    pub report: StormReport,
    pub rss_before_mb: f64,
    pub rss_peak_after_mb: f64,
    pub rss_after_settle_mb: f64,
    pub alive: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct ResilienceResult {
    pub database: String,
    pub redis: Option<RedisOutcome>,
    pub postgres: Option<PostgresOutcome>,
    pub sigterm: Option<SigtermOutcome>,
    pub storm: Option<StormOutcome>,
    pub skipped: Vec<String>,
}

pub async fn run(
    setup: &SetupArgs,
    concurrency: usize,
    storm_requests: usize,
    checks: &[String],
) -> anyhow::Result<()> {
    let data = dataset::prepare(setup).await?;
    let mut result = ResilienceResult {
        database: match setup.database {
            Backend::Postgres => "postgres".into(),
            Backend::Sqlite => "sqlite".into(),
        },
        ..ResilienceResult::default()
    };
    let wants = |name: &str| checks.iter().any(|c| c.trim() == name);
    if wants("redis") {
        match RedisServer::start("bench resilience: redis").await {
            Some(redis) => result.redis = Some(redis_killed(setup, &data.url, redis, concurrency).await?),
            None => result.skipped.push("redis: redis-server is not installed".into()),
        }
    }
    if wants("postgres") {
        if setup.database == Backend::Postgres {
            result.postgres = Some(postgres_killed(setup, &data.url, concurrency).await?);
        } else {
            result.skipped.push("postgres: needs --database postgres".into());
        }
    }
    if wants("sigterm") {
        result.sigterm = Some(sigterm_drain(setup, &data.url, concurrency).await?);
    }
    if wants("storm") {
        result.storm = Some(bad_input_storm(setup, &data.url, storm_requests).await?);
    }
    std::fs::create_dir_all(&setup.out)?;
    let stem = format!("resilience-{}", result.database);
    std::fs::write(setup.out.join(format!("{stem}.json")), serde_json::to_vec_pretty(&result)?)?;
    let text = markdown(&result);
    std::fs::write(setup.out.join(format!("{stem}.md")), &text)?;
    println!("{text}");
    Ok(())
}

fn p99_ms(samples: &[&Sample]) -> f64 {
    let mut latencies: Vec<u128> = samples.iter().map(|s| s.latency.as_millis()).collect();
    latencies.sort_unstable();
    latencies.get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1))).copied().unwrap_or(0) as f64
}

async fn redis_keys(url: &str, prefix: &str) -> u64 {
    let Ok(client) = redis::Client::open(url) else {
        return 0;
    };
    let Ok(Ok(mut conn)) =
        tokio::time::timeout(Duration::from_millis(500), client.get_multiplexed_async_connection()).await
    else {
        return 0;
    };
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap_or_default();
    keys.len() as u64
}

async fn redis_killed(
    setup: &SetupArgs,
    url: &str,
    mut redis: RedisServer,
    concurrency: usize,
) -> anyhow::Result<RedisOutcome> {
    eprintln!("resilience: Redis killed under load …");
    let mut setup = setup.clone();
    setup.redis_url = Some(redis.url());
    let config = ServerConfig::new(&setup, url, "server-resilience-redis.log")?;
    let prefix =
        config.env.iter().find(|(k, _)| k == "RAPPORT_CACHE_PREFIX").map(|(_, v)| v.clone()).unwrap_or_default();
    let tokens = Tokens::new(&config)?;
    let server = ServerProcess::start(&config).await?;
    let context = Arc::new(Context::load(&server, &tokens).await?);
    let errors_before = server.metric("rapport_cache_errors_total").await?;
    let load = Load::start(&server, &context, Scenario::Mix, concurrency);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = load.started.elapsed();
    redis.kill().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    redis.restart().await;
    let back_at = load.started.elapsed();
    let back = Instant::now();
    let mut cache_back_after_secs = None;
    while back.elapsed() < Duration::from_secs(20) {
        if redis_keys(&redis.url(), &prefix).await > 0 {
            cache_back_after_secs = Some(back.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = load.finish().await;
    let cache_errors = server.metric("rapport_cache_errors_total").await? - errors_before;
    server.stop().await?;
    let down: Vec<&Sample> = samples.iter().filter(|s| s.at >= killed_at && s.at < back_at).collect();
    Ok(RedisOutcome {
        requests: samples.len() as u64,
        failures: samples.iter().filter(|s| s.error.is_some()).count() as u64,
        failure_kinds: failure_kinds(&samples),
        p99_ms_while_down: p99_ms(&down),
        down_secs: (back_at - killed_at).as_secs_f64(),
        cache_back_after_secs,
        cache_errors,
    })
}

async fn terminate_backends(admin_url: &str, database: &str) -> anyhow::Result<u64> {
    let db = sea_orm::Database::connect(admin_url).await?;
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            [database.into()],
        ))
        .await?;
    db.close().await?;
    Ok(rows.len() as u64)
}

async fn postgres_killed(setup: &SetupArgs, url: &str, concurrency: usize) -> anyhow::Result<PostgresOutcome> {
    eprintln!("resilience: PostgreSQL connections terminated under load …");
    let acquire_timeout_secs = 5;
    let config = ServerConfig::new(setup, url, "server-resilience-postgres.log")?
        .with("DATABASE_ACQUIRE_TIMEOUT_SECS", &acquire_timeout_secs.to_string());
    let tokens = Tokens::new(&config)?;
    let mut server = ServerProcess::start(&config).await?;
    let context = Arc::new(Context::load(&server, &tokens).await?);
    let database = dataset::database_name(setup);
    let load = Load::start(&server, &context, Scenario::PatronApp, concurrency);
    let mut terminated = 0;
    let mut last_kill = Duration::ZERO;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        terminated += terminate_backends(&setup.admin_url, &database).await?;
        last_kill = load.started.elapsed();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let samples = load.finish().await;
    let same_process = server.wait(Duration::ZERO).await?.is_none() && server.healthy().await;
    server.stop().await?;
    let slowest_failure_ms =
        samples.iter().filter(|s| s.error.is_some()).map(|s| s.latency.as_secs_f64() * 1_000.0).fold(0.0, f64::max);
    // The first whole second after the last kill from which no request failed.
    let last_failure = samples.iter().filter(|s| s.error.is_some()).map(|s| s.at + s.latency).max();
    let recovered_after_secs = match last_failure {
        None => Some(0.0),
        Some(t) if t > last_kill => {
            let tail_ok = samples.iter().any(|s| s.at > t && s.error.is_none());
            tail_ok.then(|| (t - last_kill).as_secs_f64())
        }
        Some(_) => Some(0.0),
    };
    Ok(PostgresOutcome {
        requests: samples.len() as u64,
        failures: samples.iter().filter(|s| s.error.is_some()).count() as u64,
        failure_kinds: failure_kinds(&samples),
        connections_terminated: terminated,
        slowest_failure_ms,
        acquire_timeout_secs,
        recovered_after_secs,
        same_process,
    })
}

/// Writers of the SIGTERM check: batches of 20 single-source interactions, each acknowledged
/// batch remembered by its external ids.
async fn sigterm_drain(setup: &SetupArgs, url: &str, concurrency: usize) -> anyhow::Result<SigtermOutcome> {
    eprintln!("resilience: SIGTERM during a write load …");
    let config = ServerConfig::new(setup, url, "server-resilience-sigterm.log")?;
    let tokens = Tokens::new(&config)?;
    let mut server = ServerProcess::start(&config).await?;
    let context = Arc::new(Context::load(&server, &tokens).await?);
    let partner = tokens.partner()?;
    let staff = context.staff_token();
    let services: Vec<String> = {
        let body = json!({ "query": "{ services(first: 20) { nodes { id active } } }" });
        let value: Value = server
            .http
            .post(format!("{}/graphql", server.base))
            .bearer_auth(&*staff)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        value["data"]["services"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["active"] == true)
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect()
    };
    if services.is_empty() {
        anyhow::bail!("the library has no active service to record interactions against");
    }
    let source = format!("bench-sigterm-{}", uuid::Uuid::now_v7().simple());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let counter = Arc::new(AtomicU64::new(0));
    let sigterm_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::new(std::sync::Mutex::new(None));
    let started = Instant::now();
    let writers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (http, counter, sigterm_at) = (http.clone(), counter.clone(), sigterm_at.clone());
            let (base, partner, services, source) =
                (server.base.clone(), partner.clone(), services.clone(), source.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(i as u64);
                // (acknowledged ids, sent before SIGTERM and answered after, refused after SIGTERM)
                let mut acknowledged = Vec::new();
                let (mut before, mut in_flight, mut in_flight_ok, mut refused) = (0u64, 0u64, 0u64, 0u64);
                loop {
                    let signalled = sigterm_at.lock().map(|g| *g).unwrap_or(None);
                    if signalled.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                        break;
                    }
                    let first = counter.fetch_add(20, Ordering::Relaxed);
                    let ids: Vec<String> = (first..first + 20).map(|n| format!("w-{n}")).collect();
                    let items: Vec<Value> = ids
                        .iter()
                        .map(|id| {
                            json!({
                                "serviceId": services[rng.random_range(0..services.len())],
                                "patronType": "PUBLIC", "kind": "VISIT", "channel": "IN_PERSON",
                                "source": source, "externalId": id,
                            })
                        })
                        .collect();
                    let body = json!({
                        "query": "mutation($input: RecordInteractionsInput!) { recordInteractions(input: $input) { created alreadyPresent } }",
                        "variables": { "input": { "interactions": items } },
                    });
                    let sent_before = signalled.is_none();
                    let result = http.post(format!("{base}/graphql")).bearer_auth(&partner).json(&body).send().await;
                    let answered_after = sigterm_at.lock().map(|g| g.is_some()).unwrap_or(false);
                    let ok = match result {
                        Ok(response) if response.status().is_success() => {
                            let value: Value = response.json().await.unwrap_or(Value::Null);
                            value["errors"].is_null() && value["data"]["recordInteractions"]["created"] == 20
                        }
                        _ => false,
                    };
                    if ok {
                        acknowledged.extend(ids);
                    }
                    match (sent_before, answered_after) {
                        (true, false) => before += 1,
                        (true, true) => {
                            in_flight += 1;
                            in_flight_ok += u64::from(ok);
                        }
                        (false, _) => {
                            refused += u64::from(!ok);
                            if !ok {
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
                (acknowledged, before, in_flight, in_flight_ok, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.sigterm().await?;
    if let Ok(mut guard) = sigterm_at.lock() {
        *guard = Some(Instant::now());
    }
    let signalled = Instant::now();
    let status = server.wait(Duration::from_secs(40)).await?;
    let drain_secs = status.map(|_| signalled.elapsed().as_secs_f64());
    let mut acknowledged = Vec::new();
    let (mut before, mut in_flight, mut in_flight_ok, mut refused) = (0, 0, 0, 0);
    for writer in writers {
        let (ids, b, f, fo, r) = writer.await?;
        acknowledged.extend(ids);
        before += b;
        in_flight += f;
        in_flight_ok += fo;
        refused += r;
    }
    eprintln!("  {} writes acknowledged over {:.1} s", acknowledged.len(), started.elapsed().as_secs_f64());
    let db = dataset::connect(url).await?;
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            if backend == DbBackend::Postgres {
                "SELECT external_id FROM interaction WHERE source = $1"
            } else {
                "SELECT external_id FROM interaction WHERE source = ?"
            },
            [source.clone().into()],
        ))
        .await?;
    let found: HashSet<String> = rows.iter().filter_map(|r| r.try_get::<String>("", "external_id").ok()).collect();
    db.close().await?;
    let acknowledged_found = acknowledged.iter().filter(|id| found.contains(*id)).count() as u64;
    if status.is_none() {
        server.stop().await.context("server did not stop after SIGTERM")?;
    }
    Ok(SigtermOutcome {
        requests_before_sigterm: before,
        in_flight_at_sigterm: in_flight,
        in_flight_completed: in_flight_ok,
        refused_after_sigterm: refused,
        drain_secs,
        exit_status: status.map_or_else(|| "still running after 40 s".into(), |s| s.to_string()),
        writes_acknowledged: acknowledged.len() as u64,
        acknowledged_found,
        rows_written: found.len() as u64,
    })
}

async fn bad_input_storm(setup: &SetupArgs, url: &str, requests: usize) -> anyhow::Result<StormOutcome> {
    eprintln!("resilience: bad-input storm of {requests} requests …");
    let config = ServerConfig::new(setup, url, "server-resilience-storm.log")?;
    let tokens = Tokens::new(&config)?;
    let mut server = ServerProcess::start(&config).await?;
    let context = Arc::new(Context::load(&server, &tokens).await?);
    // A short ordinary load first, so the baseline includes warmed caches and pools.
    crate::load::measure(
        &server,
        &context,
        Scenario::Mix,
        16,
        &crate::load::RunOptions { duration: Duration::from_secs(3), warmup: Duration::ZERO, concurrency: vec![] },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server.rss_bytes().unwrap_or(0);
    let storm_context = StormContext {
        tokens: vec![context.staff_token().to_string(), tokens.partner()?],
        jwt_secret: Some(BENCH_JWT_SECRET.into()),
        max_body_bytes: config.settings()?.limits.max_body_bytes,
    };
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid) = (sampling.clone(), server.pid);
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(crate::server::rss_of(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let report = storm::run(&server.base, &storm_context, 20_261_122, requests, 16, Duration::from_secs(30)).await;
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after = server.rss_bytes().unwrap_or(0);
    let alive = server.wait(Duration::ZERO).await?.is_none() && server.healthy().await;
    server.stop().await?;
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(StormOutcome {
        report,
        rss_before_mb: mb(rss_before),
        rss_peak_after_mb: mb(peak),
        rss_after_settle_mb: mb(rss_after),
        alive,
    })
}

fn kinds_text(kinds: &[(String, u64)]) -> String {
    if kinds.is_empty() {
        return "none".into();
    }
    kinds.iter().map(|(k, n)| format!("{n}× `{k}`")).collect::<Vec<_>>().join("; ")
}

pub fn markdown(result: &ResilienceResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Resilience on {} ({}).\n", result.database, crate::report::Machine::this().describe());
    if let Some(r) = &result.redis {
        let _ = writeln!(
            out,
            "- **Redis killed under load** (mix, down {:.1} s): {} requests, {} failed ({}); p99 while down {:.0} ms; \
             cache written to Redis again {} after it came back; {:.0} cache errors counted.",
            r.down_secs,
            r.requests,
            r.failures,
            kinds_text(&r.failure_kinds),
            r.p99_ms_while_down,
            r.cache_back_after_secs.map_or("never (20 s)".into(), |s| format!("{s:.1} s")),
            r.cache_errors
        );
    }
    if let Some(p) = &result.postgres {
        let _ = writeln!(
            out,
            "- **PostgreSQL connections terminated** (3 rounds, {} backends, patron app load): {} requests, {} failed \
             ({}); slowest failure {:.0} ms (acquire timeout {} s); recovered {} after the last round; same process: {}.",
            p.connections_terminated,
            p.requests,
            p.failures,
            kinds_text(&p.failure_kinds),
            p.slowest_failure_ms,
            p.acquire_timeout_secs,
            p.recovered_after_secs.map_or("not within the run".into(), |s| format!("{s:.1} s")),
            p.same_process
        );
    }
    if let Some(s) = &result.sigterm {
        let _ = writeln!(
            out,
            "- **SIGTERM during writes** (batches of 20): {} batches before, {} in flight at the signal ({} completed), \
             {} refused after; drained and exited in {} ({}); writes acknowledged {} / found in the database {} \
             (rows written {}).",
            s.requests_before_sigterm,
            s.in_flight_at_sigterm,
            s.in_flight_completed,
            s.refused_after_sigterm,
            s.drain_secs.map_or("—".into(), |d| format!("{d:.2} s")),
            s.exit_status,
            s.writes_acknowledged,
            s.acknowledged_found,
            s.rows_written
        );
    }
    if let Some(s) = &result.storm {
        let r = &s.report;
        let statuses: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let codes: Vec<String> = r.codes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            out,
            "- **Bad-input storm**: {} requests in {:.1} s; 5xx: {}; no answer: {}; INTERNAL codes: {}; statuses {{{}}}; \
             codes {{{}}}; largest answer {} bytes; slowest {} ms; server alive: {}; RSS {:.0} MB before, {:.0} MB peak, \
             {:.0} MB 5 s after.",
            r.requests,
            r.elapsed_secs,
            r.server_errors,
            r.transport_errors,
            r.internal_codes,
            statuses.join(", "),
            codes.join(", "),
            r.largest_response_bytes,
            r.slowest_ms,
            s.alive,
            s.rss_before_mb,
            s.rss_peak_after_mb,
            s.rss_after_settle_mb
        );
        for example in &r.examples {
            let _ = writeln!(
                out,
                "  - #{} {} → {}: `{}` → `{}`",
                example.index,
                example.kind,
                example.status,
                truncate(&example.request, 160).replace('`', "'"),
                truncate(&example.response, 200).replace('`', "'")
            );
        }
    }
    for skipped in &result.skipped {
        let _ = writeln!(out, "- skipped {skipped}");
    }
    out
}
