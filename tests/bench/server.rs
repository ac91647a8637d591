//! The real `rapport` binary as a child process: start, probe, measure, stop.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rapport::{
    auth::{JwtKeys, Role, Scope, TokenRequest},
    config::Settings,
};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::SetupArgs;

/// The HS256 secret of the benchmark server; tokens are minted with it in-process.
pub const BENCH_JWT_SECRET: &str = "rapport-bench-secret-at-least-thirty-two-bytes-long";

/// How the server is configured: the environment it gets, and the token keys that match it.
#[derive(Clone)]
pub struct ServerConfig {
    pub bin: PathBuf,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

impl ServerConfig {
    /// The benchmark configuration: rate limits off (one client plays thousands of users),
    /// warnings-only logs, long-lived tokens.
    pub fn new(setup: &SetupArgs, database_url: &str, log_name: &str) -> anyhow::Result<Self> {
        let bin = match &setup.server_bin {
            Some(bin) => bin.clone(),
            None => default_server_bin()?,
        };
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), database_url.to_owned()),
            ("JWT_SECRET".into(), BENCH_JWT_SECRET.into()),
            ("JWT_ACCESS_TTL_SECS".into(), "86400".into()),
            ("DATABASE_MAX_CONNECTIONS".into(), setup.pool.to_string()),
            ("RAPPORT_SHUTDOWN_TIMEOUT_SECS".into(), "30".into()),
            ("RAPPORT_CACHE_PREFIX".into(), format!("rapport-bench:{}:", std::process::id())),
            ("RUST_LOG".into(), "warn".into()),
        ];
        for role in ["ANONYMOUS", "PATRON", "FUNDER", "PARTNER", "STAFF", "ADMIN"] {
            env.push((format!("RAPPORT_RATE_LIMIT_{role}"), "0".into()));
        }
        if let Some(redis) = &setup.redis_url {
            env.push(("REDIS_URL".into(), redis.clone()));
        }
        if let Some(workers) = setup.workers {
            env.push(("RAPPORT_WORKERS".into(), workers.to_string()));
        }
        std::fs::create_dir_all(&setup.out).with_context(|| format!("create {}", setup.out.display()))?;
        Ok(Self { bin, env, log: setup.out.join(log_name) })
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        let env = self.env.clone();
        Ok(Settings::from_lookup(move |key| env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()))?)
    }
}

/// `target/release/rapport`, found next to this binary (both are built into the same folder).
fn default_server_bin() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locate the bench binary")?;
    let dir = me.parent().context("bench binary has no folder")?;
    let candidate = dir.join("rapport");
    if candidate.exists() {
        return Ok(candidate);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let candidate = Path::new(&target).join("release").join("rapport");
    if candidate.exists() {
        return Ok(candidate);
    }
    bail!("no rapport binary found; build it with `cargo build --release --bin rapport` or pass --server-bin")
}

/// Mints tokens the server accepts.
pub struct Tokens {
    keys: JwtKeys,
}

impl Tokens {
    pub fn new(config: &ServerConfig) -> anyhow::Result<Self> {
        Ok(Self { keys: JwtKeys::from_settings(&config.settings()?.jwt)? })
    }

    fn mint(&self, role: Role, subject: String, funder_id: Option<Uuid>, scopes: Vec<Scope>) -> anyhow::Result<String> {
        let request = TokenRequest { role, subject, funder_id, scopes, ttl: Some(Duration::from_secs(86_400)) };
        Ok(self.keys.mint(&request).map_err(|e| anyhow::anyhow!("mint token: {e}"))?.0)
    }

    pub fn staff(&self) -> anyhow::Result<String> {
        self.mint(Role::Staff, "bench-staff".into(), None, vec![])
    }

    pub fn patron(&self, id: Uuid) -> anyhow::Result<String> {
        self.mint(Role::Patron, id.to_string(), None, vec![])
    }

    pub fn funder(&self, id: Uuid) -> anyhow::Result<String> {
        self.mint(Role::Funder, "bench-funder".into(), Some(id), vec![])
    }

    pub fn partner(&self) -> anyhow::Result<String> {
        self.mint(Role::Partner, "bench-partner".into(), None, Scope::ALL.to_vec())
    }
}

/// A running server.
pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub base: String,
    pub http: reqwest::Client,
    pub started_in: Duration,
}

impl ServerProcess {
    /// Start on a free port and wait until `/healthz` answers (60 s at most).
    pub async fn start(config: &ServerConfig) -> anyhow::Result<Self> {
        let port = rapport_tests::redis_server::free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log)
            .with_context(|| format!("open {}", config.log.display()))?;
        let started = Instant::now();
        let mut command = Command::new(&config.bin);
        command
            .arg("serve")
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RAPPORT_BIND", format!("127.0.0.1:{port}"))
            // As the container image runs it (see the Dockerfile): glibc hands large freed
            // blocks back to the system instead of keeping the peak of a load spike.
            .env("MALLOC_MMAP_THRESHOLD_", "131072")
            .env("MALLOC_TRIM_THRESHOLD_", "131072")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().with_context(|| format!("start {}", config.bin.display()))?;
        let pid = child.id().context("server exited at once")?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let mut server =
            Self { child, pid, base: format!("http://127.0.0.1:{port}"), http, started_in: Duration::ZERO };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = server.http.get(format!("{}/healthz", server.base)).send().await
                && response.status().is_success()
            {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("server exited with {status} during start-up; see {}", config.log.display());
            }
            if Instant::now() > deadline {
                bail!("server did not answer /healthz within 60 s; see {}", config.log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.started_in = started.elapsed();
        Ok(server)
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid)
    }

    /// The sum of every series of a Prometheus counter or gauge.
    pub async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await?.error_for_status()?.text().await?;
        Ok(sum_metric(&text, name))
    }

    /// SQL statements run so far.
    pub async fn statements(&self) -> anyhow::Result<f64> {
        self.metric("rapport_db_statements_total").await
    }

    pub async fn healthy(&self) -> bool {
        match self.http.get(format!("{}/healthz", self.base)).timeout(Duration::from_secs(2)).send().await {
            Ok(response) => response.status().is_success(),
            Err(_) => false,
        }
    }

    /// Ask the server to stop gracefully, as an orchestrator would.
    pub async fn sigterm(&self) -> anyhow::Result<()> {
        let status = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid);
        }
        Ok(())
    }

    /// Wait for the process to exit (after [`Self::sigterm`]); `None` on timeout.
    pub async fn wait(&mut self, timeout: Duration) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(Some(status?)),
            Err(_) => Ok(None),
        }
    }

    /// Stop: SIGTERM, then SIGKILL after 30 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.sigterm().await?;
        if self.wait(Duration::from_secs(30)).await?.is_none() {
            self.child.kill().await?;
        }
        Ok(())
    }
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn sum_metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ' | b'{')))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}
