//! `bench run` (load, serve, measure every cell, write JSON and Markdown) and `bench summary`
//! (the README table and the ratios the issue asks for, across runs at different scales).

use std::{fmt::Write as _, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::{
    Backend, SetupArgs, dataset,
    load::{self, Cell, RunOptions},
    scenarios::{Context, Plan, Scenario},
    server::{ServerConfig, ServerProcess, Tokens},
};

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib: kib / (1024.0 * 1024.0),
            cpu,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
        }
    }

    pub fn describe(&self) -> String {
        format!("{} cores ({}), {:.0} GiB RAM, Linux {}", self.cores, self.cpu, self.memory_gib, self.kernel)
    }
}

/// Everything one `bench run` measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub finished_at: String,
    pub machine: Machine,
    pub database: String,
    pub patrons: usize,
    pub interactions: usize,
    pub load_seconds: Option<f64>,
    pub load_interactions_per_sec: Option<f64>,
    pub pool: u32,
    pub redis: bool,
    pub duration_secs: f64,
    pub server_start_secs: f64,
    pub idle_rss_mb: f64,
    pub recommendations_in_c: bool,
    pub cells: Vec<Cell>,
}

pub async fn run(setup: &SetupArgs, plan: &Plan, options: &RunOptions) -> anyhow::Result<()> {
    let data = dataset::prepare(setup).await?;
    let backend = match setup.database {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let config = ServerConfig::new(setup, &data.url, &format!("server-{}.log", data.name))?;
    let tokens = Tokens::new(&config)?;
    let server = ServerProcess::start(&config).await?;
    eprintln!("server pid {} at {} (ready in {:.2} s)", server.pid, server.base, server.started_in.as_secs_f64());
    let context = Arc::new(Context::load(&server, &tokens).await?);
    if context.recommendations.is_none() {
        eprintln!("note: the schema has no Patron.recommendations field; scenario (c) runs without it");
    }
    let idle_rss_mb = server.rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    let mut cells = Vec::new();
    for &scenario in &plan.scenarios {
        for &concurrency in &options.concurrency {
            let cell = load::measure(&server, &context, scenario, concurrency, options).await?;
            eprintln!(
                "{:<5} c={:<4} {:>9.1} req/s  p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  errors {:>5}  stmts/req {:>6.2}  rss {:>6.1} MB{}",
                cell.scenario,
                cell.concurrency,
                cell.rps,
                cell.p50_ms,
                cell.p95_ms,
                cell.p99_ms,
                cell.errors,
                cell.statements_per_request,
                cell.rss_max_mb,
                if scenario == Scenario::PartnerBatch || cell.items_per_sec > 0.0 {
                    format!("  {:.0} interactions/s", cell.items_per_sec)
                } else {
                    String::new()
                }
            );
            for example in &cell.error_examples {
                eprintln!("      error: {example}");
            }
            cells.push(cell);
        }
    }
    let server_start_secs = server.started_in.as_secs_f64();
    server.stop().await?;
    let result = RunResult {
        finished_at: chrono::Utc::now().to_rfc3339(),
        machine: Machine::this(),
        database: backend.into(),
        patrons: setup.patrons,
        interactions: setup.interactions,
        load_seconds: data.load.as_ref().map(|l| l.seconds),
        load_interactions_per_sec: data.load.as_ref().map(|l| l.interactions_per_sec),
        pool: setup.pool,
        redis: setup.redis_url.is_some(),
        duration_secs: options.duration.as_secs_f64(),
        server_start_secs,
        idle_rss_mb,
        recommendations_in_c: context.recommendations.is_some(),
        cells,
    };
    let stem = format!("run-{backend}-{}-{}", setup.patrons, setup.interactions);
    let json_path = setup.out.join(format!("{stem}.json"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&result)?)?;
    let md_path = setup.out.join(format!("{stem}.md"));
    std::fs::write(&md_path, markdown(&result))?;
    eprintln!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// The table of one run.
pub fn markdown(result: &RunResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} patrons, {} interactions on {}{}; {:.0} s per cell; pool {}; {}.\n",
        result.patrons,
        result.interactions,
        if result.database == "postgres" { "PostgreSQL" } else { "SQLite" },
        if result.redis { " + Redis" } else { " (in-process cache)" },
        result.duration_secs,
        result.pool,
        result.machine.describe()
    );
    if let (Some(seconds), Some(rate)) = (result.load_seconds, result.load_interactions_per_sec) {
        let _ = writeln!(out, "Library loaded in {seconds:.1} s ({rate:.0} interactions/s, roll-ups included).\n");
    }
    let _ = writeln!(out, "| scenario | clients | req/s | p50 ms | p95 ms | p99 ms | errors | SQL/req | RSS MB |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for cell in &result.cells {
        let rate = if cell.items_per_sec > 0.0 && cell.scenario == "f" {
            format!("{:.1} ({:.0} interactions/s)", cell.rps, cell.items_per_sec)
        } else {
            format!("{:.1}", cell.rps)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0} |",
            cell.title,
            cell.concurrency,
            rate,
            cell.p50_ms,
            cell.p95_ms,
            cell.p99_ms,
            cell.errors,
            cell.statements_per_request,
            cell.rss_max_mb
        );
    }
    if !result.recommendations_in_c {
        let _ = writeln!(out, "\n(c) ran without recommendations: the schema measured had none.");
    }
    out
}

fn cell<'a>(result: &'a RunResult, scenario: &str, concurrency: usize) -> Option<&'a Cell> {
    result.cells.iter().find(|c| c.scenario == scenario && c.concurrency == concurrency)
}

/// The ratios of the issue, over the given runs.
pub fn summary(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for file in files {
        let text = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
        runs.push(serde_json::from_slice::<RunResult>(&text).with_context(|| format!("parse {}", file.display()))?);
    }
    runs.sort_by_key(|r| (r.database.clone(), r.interactions));
    let mut out = String::new();
    for run in &runs {
        let _ = writeln!(out, "### {} interactions, {}\n", run.interactions, run.database);
        out.push_str(&markdown(run));
        out.push('\n');
    }
    let _ = writeln!(out, "### Ratios\n");
    for run in &runs {
        let levels: Vec<usize> = run.cells.iter().filter(|c| c.scenario == "a").map(|c| c.concurrency).collect();
        let ratios: Vec<String> = levels
            .iter()
            .filter_map(|&n| {
                let (a, b) = (cell(run, "a", n)?, cell(run, "b", n)?);
                Some(format!("{n}: {:.0}%", 100.0 * b.rps / a.rps.max(1e-9)))
            })
            .collect();
        if !ratios.is_empty() {
            let _ = writeln!(
                out,
                "- (b)/(a) throughput, {} interactions on {}, by clients: {} (target ≥ 50%)",
                run.interactions,
                run.database,
                ratios.join(", ")
            );
        }
        let statements: Vec<String> = levels
            .iter()
            .filter_map(|&n| {
                let (d10, d100) = (cell(run, "d10", n)?, cell(run, "d100", n)?);
                Some(format!("{n}: {:.2} → {:.2}", d10.statements_per_request, d100.statements_per_request))
            })
            .collect();
        if !statements.is_empty() {
            let _ = writeln!(
                out,
                "- (d) SQL statements per request, page 10 → page 100, {} interactions, by clients: {} (target: equal)",
                run.interactions,
                statements.join(", ")
            );
        }
        let ingest = run.cells.iter().filter(|c| c.scenario == "f").map(|c| c.items_per_sec).fold(0.0, f64::max);
        if ingest > 0.0 {
            let _ = writeln!(
                out,
                "- (f) best batch ingest, {} interactions on {}: {ingest:.0} interactions/s (target ≥ 20,000 on PostgreSQL)",
                run.interactions, run.database
            );
        }
        // The allocator keeps most of what it once took, so each scenario's figure at 256
        // clients also carries what the scenarios before it needed.
        let rss: Vec<String> = run
            .cells
            .iter()
            .filter(|c| c.concurrency == 256)
            .map(|c| format!("{} {:.0} MB", c.scenario, c.rss_max_mb))
            .collect();
        if !rss.is_empty() {
            let _ = writeln!(
                out,
                "- server RSS at 256 clients, {} interactions, in run order: {} (target ≤ 150 MB)",
                run.interactions,
                rss.join(", ")
            );
        }
    }
    let postgres: Vec<&RunResult> = runs.iter().filter(|r| r.database == "postgres").collect();
    if let (Some(small), Some(large)) = (postgres.first(), postgres.last())
        && large.interactions > small.interactions
    {
        for n in [1usize, 16, 64, 256] {
            if let (Some(s), Some(l)) = (cell(small, "e", n), cell(large, "e", n)) {
                let _ = writeln!(
                    out,
                    "- (e) at {} / (e) at {} interactions, {n} clients: p50 latency ×{:.2}, throughput ×{:.2} (target: latency ≤ ×2)",
                    large.interactions,
                    small.interactions,
                    l.p50_ms / s.p50_ms.max(1e-9),
                    l.rps / s.rps.max(1e-9)
                );
            }
        }
    }
    println!("{out}");
    Ok(())
}
