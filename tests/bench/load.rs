//! The load driver: N workers, each a client sending its next call as soon as the previous one
//! is answered, for a fixed time. Latencies go into HDR histograms (merged at the end); the
//! server's statement counter and resident memory are read around and during the measurement.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::{
    scenarios::{Context, Scenario},
    server::ServerProcess,
};

pub struct RunOptions {
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
}

/// One scenario at one concurrency level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub scenario: String,
    pub title: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// SQL statements the server ran, divided by requests.
    pub statements_per_request: f64,
    /// Interactions written per second (partner batches).
    pub items_per_sec: f64,
    pub cache_hits: f64,
    pub cache_misses: f64,
    /// Highest resident memory of the server seen during the measurement.
    pub rss_max_mb: f64,
    pub error_examples: Vec<String>,
}

/// What one worker saw.
struct Tally {
    histogram: Histogram<u64>,
    requests: u64,
    errors: u64,
    items: u64,
    examples: Vec<String>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        // 1 µs to 120 s at 3 significant digits.
        Ok(Self {
            histogram: Histogram::new_with_bounds(1, 120_000_000, 3)?,
            requests: 0,
            errors: 0,
            items: 0,
            examples: Vec::new(),
        })
    }
}

/// Whether a GraphQL answer carries errors, without parsing the whole body.
fn has_errors(body: &[u8]) -> bool {
    body.windows(9).any(|w| w == b"\"errors\":")
}

async fn worker(
    http: reqwest::Client,
    base: Arc<str>,
    context: Arc<Context>,
    scenario: Scenario,
    until: Instant,
    seed: u64,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    let mut rng = StdRng::seed_from_u64(seed);
    while Instant::now() < until {
        let call = context.call(scenario, &mut rng);
        let url = format!("{base}{}", call.path);
        let mut request = if call.get {
            http.get(url)
        } else {
            http.post(url).header("content-type", "application/json").body(call.body.as_ref().clone())
        };
        if let Some(token) = &call.token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(body) if status.is_success() && !has_errors(&body) => Ok(()),
                    Ok(body) => {
                        // Show the errors, which follow the data in a partial answer.
                        let from = body.windows(9).position(|w| w == b"\"errors\":").unwrap_or(0);
                        let excerpt = &body[from..body.len().min(from + 300)];
                        Err(format!("{status}: {}", String::from_utf8_lossy(excerpt)))
                    }
                    Err(err) => Err(format!("{status}: reading the body: {err}")),
                }
            }
            Err(err) => Err(format!("no response: {err}")),
        };
        let micros = started.elapsed().as_micros().clamp(1, 120_000_000) as u64;
        tally.histogram.saturating_record(micros);
        tally.requests += 1;
        match outcome {
            Ok(()) => tally.items += call.items,
            Err(example) => {
                tally.errors += 1;
                if tally.examples.len() < 2 {
                    tally.examples.push(example);
                }
            }
        }
    }
    Ok(tally)
}

/// Drive `scenario` with `concurrency` clients for `duration`.
async fn drive(
    server: &ServerProcess,
    context: &Arc<Context>,
    scenario: Scenario,
    concurrency: usize,
    duration: Duration,
    seed: u64,
) -> anyhow::Result<(Tally, f64, u64)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?;
    let base: Arc<str> = Arc::from(server.base.as_str());
    let started = Instant::now();
    let until = started + duration;
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        let pid = server.pid;
        tokio::spawn(async move {
            let mut max = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(crate::server::rss_of(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            max.max(crate::server::rss_of(pid).unwrap_or(0))
        })
    };
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            tokio::spawn(worker(
                http.clone(),
                base.clone(),
                context.clone(),
                scenario,
                until,
                seed.wrapping_mul(1_000_003) + i as u64,
            ))
        })
        .collect();
    let mut total = Tally::new()?;
    for handle in workers {
        let tally = handle.await??;
        total.histogram.add(&tally.histogram)?;
        total.requests += tally.requests;
        total.errors += tally.errors;
        total.items += tally.items;
        for example in tally.examples {
            if total.examples.len() < 3 {
                total.examples.push(example);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss = sampler.await?;
    Ok((total, seconds, rss))
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1_000.0
}

/// Warm up, then measure one cell.
pub async fn measure(
    server: &ServerProcess,
    context: &Arc<Context>,
    scenario: Scenario,
    concurrency: usize,
    options: &RunOptions,
) -> anyhow::Result<Cell> {
    if !options.warmup.is_zero() {
        drive(server, context, scenario, concurrency, options.warmup, 7).await?;
    }
    let statements = server.statements().await?;
    let hits = server.metric("rapport_cache_hits_total").await?;
    let misses = server.metric("rapport_cache_misses_total").await?;
    let (tally, seconds, rss) = drive(server, context, scenario, concurrency, options.duration, 42).await?;
    let statements = server.statements().await? - statements;
    let hits = server.metric("rapport_cache_hits_total").await? - hits;
    let misses = server.metric("rapport_cache_misses_total").await? - misses;
    let h = &tally.histogram;
    let requests = tally.requests.max(1) as f64;
    Ok(Cell {
        scenario: scenario.key(),
        title: scenario.title(),
        concurrency,
        seconds,
        requests: tally.requests,
        errors: tally.errors,
        rps: tally.requests as f64 / seconds,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        statements_per_request: statements / requests,
        items_per_sec: tally.items as f64 / seconds,
        cache_hits: hits,
        cache_misses: misses,
        rss_max_mb: rss as f64 / (1024.0 * 1024.0),
        error_examples: tally.examples,
    })
}
