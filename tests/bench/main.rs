//! `bench`: load and resilience figures for the real `rapport` server, run as a child process
//! on a generated library (PostgreSQL or SQLite). See the README section "Benchmarks".
//!
//! ```sh
//! cargo build --release --bin rapport -p rapport-api
//! cargo run --release -p rapport-tests --bin bench -- run --patrons 3000 --interactions 100000
//! cargo run --release -p rapport-tests --bin bench -- resilience
//! cargo run --release -p rapport-tests --bin bench -- summary bench-results/run-*.json
//! ```

mod dataset;
mod load;
mod report;
mod resilience;
mod scenarios;
mod server;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "bench", about = "Benchmark and resilience harness for the rapport server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load a library, start the server and drive every scenario at every concurrency level.
    Run(RunArgs),
    /// Redis killed, PostgreSQL connections killed, SIGTERM during writes, bad-input storm.
    Resilience(ResilienceArgs),
    /// Print the README table and ratios from one or more `run` result files.
    Summary(SummaryArgs),
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Where the data lives and which server binary serves it.
#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    #[arg(long, value_enum, default_value = "postgres")]
    pub database: Backend,
    /// PostgreSQL server URL with rights to create databases (its database name is ignored).
    #[arg(long, env = "BENCH_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub admin_url: String,
    /// Patrons in the generated library.
    #[arg(long, default_value_t = 3_000)]
    pub patrons: usize,
    /// Interactions in the generated library (over two years).
    #[arg(long, default_value_t = 100_000)]
    pub interactions: usize,
    /// Keep an existing `rapport_bench_<patrons>_<interactions>` library instead of reloading it.
    #[arg(long)]
    pub reuse: bool,
    /// The `rapport` binary (default: target/release/rapport next to this binary).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Redis for the server's cache (default: the in-process cache).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// The server's database pool size.
    #[arg(long, default_value_t = 16)]
    pub pool: u32,
    /// The server's HTTP workers (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Where results, logs and SQLite files go.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// Measured time per scenario and concurrency level, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before each measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    concurrency: Vec<usize>,
    /// a healthz, b catalogue, c patron app, d staff search (d10 and d100), e funder report,
    /// f partner batches, g mix.
    #[arg(long, value_delimiter = ',', default_value = "a,b,c,d,e,f,g")]
    scenarios: Vec<String>,
}

#[derive(Args, Debug)]
struct ResilienceArgs {
    #[command(flatten)]
    setup: SetupArgs,
    /// Concurrent clients of the load under which things are broken.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests of the bad-input storm.
    #[arg(long, default_value_t = 10_000)]
    storm_requests: usize,
    /// Only these checks: redis, postgres, sigterm, storm.
    #[arg(long, value_delimiter = ',', default_value = "redis,postgres,sigterm,storm")]
    checks: Vec<String>,
}

#[derive(Args, Debug)]
struct SummaryArgs {
    /// `run-*.json` files written by `bench run`.
    files: Vec<PathBuf>,
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((raw, "s"), |i| raw.split_at(i));
    let value: f64 = number.parse().map_err(|_| format!("`{raw}` is not a duration like 10s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit `{other}` (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                let plan = scenarios::Plan::parse(&args.scenarios)?;
                let options =
                    load::RunOptions { duration: args.duration, warmup: args.warmup, concurrency: args.concurrency };
                report::run(&args.setup, &plan, &options).await
            }
            Command::Resilience(args) => {
                resilience::run(&args.setup, args.concurrency, args.storm_requests, &args.checks).await
            }
            Command::Summary(args) => report::summary(&args.files),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
